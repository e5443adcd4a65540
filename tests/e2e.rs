//! End-to-end tests: the real `configsnap` binary against the fake Kubernetes API server
//! (real HTTP on loopback), with real files and real processes.

#[path = "e2e/support.rs"]
mod support;

#[path = "e2e/core.rs"]
mod core;

#[path = "e2e/reload.rs"]
mod reload;

#[path = "e2e/operate.rs"]
mod operate;

#[path = "e2e/degraded.rs"]
mod degraded;

#[path = "e2e/scale.rs"]
mod scale;

#[path = "e2e/failsafe.rs"]
mod failsafe;

#[path = "e2e/faults.rs"]
mod faults;

#[path = "e2e/ecosystem.rs"]
mod ecosystem;

#[path = "e2e/hostile.rs"]
mod hostile;

#[path = "e2e/events.rs"]
mod events;

#[path = "e2e/target_dir.rs"]
mod target_dir;

#[path = "e2e/validate_walk.rs"]
mod validate_walk;

#[path = "e2e/visible_links.rs"]
mod visible_links;

#[path = "e2e/readers.rs"]
mod readers;

#[path = "e2e/memory_limit.rs"]
mod memory_limit;
