//! The one test kit of configsnap, used by `tests/`, `benches/` and `examples/`: each
//! helper is defined here once.
//!
//! - [`wait`]: bounded waits on a condition (never a sleep-and-hope);
//! - [`fs`]: what is on disk, read with plain std (never the product's own reader);
//! - [`net`]: free loopback ports and a plain HTTP GET;
//! - [`process`]: child processes killed on drop and by a panic hook;
//! - [`sidecar`]: the real `configsnap` process, its log, probes and metrics;
//! - [`metrics`]: a strict parser of the Prometheus text format;
//! - [`control_plane`]: a real kube-apiserver and etcd (`scripts/control-plane`);
//! - [`fake_apiserver`]: the in-process fake API server, for faults a real server cannot
//!   give on demand.

pub mod control_plane;
pub mod fs;
pub mod metrics;
pub mod net;
pub mod process;
pub mod sidecar;
pub mod wait;

pub use fake_apiserver;
pub use net::{fetch, free_port, http_get};
pub use sidecar::Sidecar;
pub use wait::{WAIT, poll, wait_for, wait_until};
