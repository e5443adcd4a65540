//! Real-client tests: the kube-rs 5 client and `kube::runtime::watcher` over the socket.

mod events;
mod recovery;
mod support;
mod watcher;
