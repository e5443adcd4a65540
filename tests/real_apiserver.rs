//! Against a real kube-apiserver and etcd (`scripts/control-plane`, built from Kubernetes'
//! own Go modules): every claim the README makes about Kubernetes — the RBAC the sidecar
//! needs, the kubectl flows users run, Events the server accepts, what survives an
//! outage — proven on the server a user's pod talks to, as the `deploy/base`
//! ServiceAccount, never as admin. Each test starts its own control plane.

#[path = "real_apiserver/cluster.rs"]
mod cluster;

#[path = "real_apiserver/flows.rs"]
mod flows;

#[path = "real_apiserver/rbac.rs"]
mod rbac;

#[path = "real_apiserver/outage.rs"]
mod outage;

#[path = "real_apiserver/idle.rs"]
mod idle;

#[path = "real_apiserver/fleet.rs"]
mod fleet;

#[path = "real_apiserver/events.rs"]
mod events;

#[path = "real_apiserver/secrets.rs"]
mod secrets;

#[path = "real_apiserver/streaming.rs"]
mod streaming;
