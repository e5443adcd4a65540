//! configsnap: turns the ConfigMaps of a namespace into atomically swapped snapshots on a
//! shared volume, and tells the app to reload when the content really changed.
//!
//! `lib.rs` only wires modules; [`run::run`] is the whole program behind `main`.

pub mod cli;
pub mod events;
pub mod http;
pub mod jitter;
pub mod keypath;
pub mod kube_events;
pub mod lastgood;
pub mod memory;
pub mod metrics;
pub mod outcome;
pub mod pipeline;
pub mod reload;
pub mod run;
pub mod selector;
pub mod snapshot;
pub mod source;
pub mod status;
pub mod telemetry;
pub mod validate;
pub mod writer;

#[cfg(test)]
mod fuzz;
