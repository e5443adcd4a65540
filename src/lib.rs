//! configsnap: turns the ConfigMaps of a namespace into atomically swapped snapshots on a
//! shared volume, and tells the app to reload when the content really changed.
//!
//! `lib.rs` only wires modules. The public surface is what the binary, the tests and the
//! benchmark need:
//!
//! - [`cli`]: the flags as typed ([`cli::Args`], one group per stage) and validated
//!   ([`cli::Config`]);
//! - [`run`]: the whole program behind `main` ([`run::run`]);
//! - [`outcome`]: what the stages report ([`outcome::Outcome`]) and the types it carries;
//! - [`telemetry`]: logging set-up;
//! - [`disk`]: the on-disk format read back (a target dir or a last-good copy).
//!
//! Everything else is crate-private; `ARCHITECTURE.md` maps it. Data flows source →
//! snapshot (render) → validate → writer → reload → last-good, driven by the pipeline;
//! the observers (events, metrics, status, Kubernetes Events) only listen to outcomes.

#![warn(unreachable_pub)]

pub mod cli;
pub mod disk;
pub mod outcome;
pub mod run;
pub mod telemetry;

mod events;
mod http;
mod jitter;
mod keypath;
mod kube_events;
mod lastgood;
mod memory;
mod metrics;
mod pipeline;
mod reload;
mod selector;
mod snapshot;
mod source;
mod status;
mod validate;
mod writer;

#[cfg(test)]
mod fuzz;
