//! Kubernetes Events where users look (`kubectl describe configmap`, `kubectl get events`):
//! a bounded queue and one background task that creates `events.k8s.io/v1` Events, so
//! event delivery never slows or blocks a swap or a reload.
//!
//! One Event per object version and reason, whatever the number of replicas: an Event's
//! name is derived from the object's uid, its resourceVersion and the reason, so every
//! replica of a Deployment that applies (or rejects) the same ConfigMap version writes
//! the same Event, the first one creates it and the others get `409 AlreadyExists`
//! (counted as `repeated`). A hundred replicas do not flood the object users look at;
//! what each replica did is in its own `/readyz`, metrics and log.
//!
//! What each happening says is built in [`notes`] (pure); this module queues, rate limits
//! and sends.

pub(crate) mod notes;
#[cfg(test)]
mod tests;

use crate::metrics::{Metrics, ResultLabel};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::runtime::events::EventType;
use sha2::Digest;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// `reportingController` of every Event.
pub(crate) const CONTROLLER: &str = "configsnap";
/// Events waiting to be sent; beyond this they are dropped and counted (a burst of
/// rejections must not grow memory while the API is slow).
const QUEUE: usize = 256;
/// The same event (object, reason, note) is sent at most once per window; a stuck bad
/// ConfigMap then costs the API server one write per window, not one per update.
const REPEAT_WINDOW: Duration = Duration::from_secs(300);
/// Rate-limit entries kept; older ones are forgotten first.
const REMEMBERED: usize = 1024;
/// One API write may take this long before it counts as failed (the queue waits behind it).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// After a 403 the API is asked again only this much later (RBAC may be granted later).
const FORBIDDEN_RETRY: Duration = Duration::from_secs(600);
/// At shutdown, queued events get this long to go out.
const DRAIN: Duration = Duration::from_secs(2);
/// An Event waits at most this long for the pipeline's step (a swap and its reload) to
/// end, so its HTTP work never competes with the update path, yet always goes out.
const STEP_WAIT: Duration = Duration::from_secs(5);

/// The sidecar's own Pod, from the downward API: every Event is `related` to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pod {
    /// Its namespace.
    pub namespace: String,
    /// Its name (also the `reportingInstance`).
    pub name: String,
    /// Its uid, when known.
    pub uid: Option<String>,
}

/// One Event to publish.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Notice {
    /// `Normal` or `Warning`.
    pub(crate) type_: EventType,
    /// `Rejected`, `ValidationFailed`, `ReloadFailed`, `RolledBack`, `SelectionHeld`, `Applied`.
    pub reason: &'static str,
    /// What the recorder calls the action (`Render`, `Validate`, `Reload`, `Swap`).
    pub(crate) action: &'static str,
    /// The message (at most [`notes::NOTE_BYTES`]).
    pub note: String,
    /// The object concerned.
    pub regarding: ObjectReference,
}

/// A handle that queues Events for the background task. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Publisher {
    queue: mpsc::Sender<Notice>,
    metrics: Arc<Metrics>,
    pod: Option<Pod>,
    redact: bool,
}

/// The longest `reportingInstance` the API server accepts.
const INSTANCE_BYTES: usize = 128;
/// The part of an Event's name taken from the regarded object's name (the rest is `.`
/// and 16 hex digits; names are at most 253 bytes).
const NAME_PREFIX_BYTES: usize = 200;

/// The background task's state.
struct Sender {
    client: kube::Client,
    /// `reportingInstance`: the Pod's name, else the controller's.
    instance: String,
    related: Option<ObjectReference>,
    metrics: Arc<Metrics>,
    sent: HashMap<(String, String, &'static str), (String, Instant)>,
    forbidden_until: Option<Instant>,
    failures_logged: bool,
    /// True while the pipeline is in a step.
    pipeline_busy: tokio::sync::watch::Receiver<bool>,
}

/// What became of one Event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sent,
    Repeated,
    Forbidden,
    Failed,
}

// === impl Publisher ===

impl Publisher {
    /// A publisher sending through `client`, and its task (run it until `cancel`; it then
    /// drains the queue for a moment). `redact` withholds free text that may quote file
    /// content (parser messages, command output) because Secrets are watched.
    /// `pipeline_busy` says when the pipeline is in a step; sending waits for its end.
    pub(crate) fn start(
        client: kube::Client,
        pod: Option<Pod>,
        redact: bool,
        metrics: Arc<Metrics>,
        pipeline_busy: tokio::sync::watch::Receiver<bool>,
        cancel: CancellationToken,
    ) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let mut instance = pod.as_ref().map_or_else(|| CONTROLLER.to_owned(), |p| p.name.clone());
        instance.truncate(INSTANCE_BYTES);
        let sender = Sender {
            client,
            instance,
            related: pod.as_ref().map(notes::pod_reference),
            metrics: Arc::clone(&metrics),
            sent: HashMap::new(),
            forbidden_until: None,
            failures_logged: false,
            pipeline_busy,
        };
        (Self { queue, metrics, pod, redact }, sender.run(receiver, cancel))
    }

    /// The sidecar's Pod, when known.
    #[must_use]
    pub(crate) fn pod(&self) -> Option<&Pod> {
        self.pod.as_ref()
    }

    /// True when free text that may quote file content must stay out of Events.
    #[must_use]
    pub(crate) fn redact(&self) -> bool {
        self.redact
    }

    /// Queues `notice`; never waits. A full queue drops it and counts the drop.
    pub(crate) fn send(&self, notice: Notice) {
        if let Err(error) = self.queue.try_send(notice) {
            self.metrics.events_dropped.inc();
            tracing::debug!(%error, "Kubernetes Event dropped: the queue is full or closed");
        }
    }
}

/// The `events.k8s.io/v1` Event of `notice`, named after the object version it regards
/// and the reason (see the module docs).
fn event_of(notice: &Notice, related: Option<&ObjectReference>, instance: &str) -> Event {
    let regarding = &notice.regarding;
    let type_ = match notice.type_ {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    };
    Event {
        metadata: ObjectMeta {
            name: Some(event_name(regarding, notice.reason)),
            namespace: regarding.namespace.clone(),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
        action: Some(notice.action.to_owned()),
        reason: Some(notice.reason.to_owned()),
        note: Some(notice.note.clone()),
        type_: Some(type_.to_owned()),
        regarding: Some(regarding.clone()),
        related: related.cloned(),
        reporting_controller: Some(CONTROLLER.to_owned()),
        reporting_instance: Some(instance.to_owned()),
        ..Event::default()
    }
}

/// `<object name>.<16 hex digits of sha256(kind, uid or name, resourceVersion, reason)>`.
fn event_name(regarding: &ObjectReference, reason: &str) -> String {
    let field = |v: &Option<String>| v.as_deref().unwrap_or_default().to_owned();
    let name = field(&regarding.name);
    let identity = regarding.uid.clone().unwrap_or_else(|| name.clone());
    let mut hasher = sha2::Sha256::new();
    for part in [field(&regarding.kind), identity, field(&regarding.resource_version), reason.to_owned()] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let digest: String = hasher.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect();
    let mut prefix = name;
    while prefix.len() > NAME_PREFIX_BYTES {
        prefix.pop();
    }
    format!("{}.{digest}", prefix.trim_end_matches(['.', '-']))
}

// === impl Sender ===

impl Sender {
    async fn run(mut self, mut receiver: mpsc::Receiver<Notice>, cancel: CancellationToken) {
        // A send cut short by shutdown is retried in the drain, not lost.
        let mut interrupted = None;
        loop {
            let notice = tokio::select! {
                () = cancel.cancelled() => break,
                notice = receiver.recv() => notice,
            };
            let Some(notice) = notice else { return };
            let sent = tokio::select! {
                () = cancel.cancelled() => false,
                () = self.after_the_step() => {
                    self.handle(&notice).await;
                    true
                }
            };
            if !sent {
                interrupted = Some(notice);
                break;
            }
        }
        receiver.close();
        let drain = async {
            if let Some(notice) = interrupted {
                self.handle(&notice).await;
            }
            while let Some(notice) = receiver.recv().await {
                self.handle(&notice).await;
            }
        };
        let _ = tokio::time::timeout(DRAIN, drain).await;
    }

    /// Waits (a bounded while) until the pipeline is not in a step.
    async fn after_the_step(&mut self) {
        let _ = tokio::time::timeout(STEP_WAIT, self.pipeline_busy.wait_for(|busy| !*busy)).await;
    }

    async fn handle(&mut self, notice: &Notice) {
        let outcome = self.publish(notice).await;
        let result = match outcome {
            Outcome::Sent => "sent",
            Outcome::Repeated => "repeated",
            Outcome::Forbidden => "forbidden",
            Outcome::Failed => "failed",
        };
        self.metrics.events.get_or_create(&ResultLabel { result }).inc();
    }

    async fn publish(&mut self, notice: &Notice) -> Outcome {
        let now = Instant::now();
        if self.forbidden_until.is_some_and(|until| now < until) {
            return Outcome::Forbidden;
        }
        let key = (
            notice.regarding.kind.clone().unwrap_or_default(),
            notice.regarding.name.clone().unwrap_or_default(),
            notice.reason,
        );
        if let Some((note, at)) = self.sent.get(&key)
            && *note == notice.note
            && now.duration_since(*at) < REPEAT_WINDOW
        {
            return Outcome::Repeated;
        }
        let event = event_of(notice, self.related.as_ref(), &self.instance);
        let namespace = notice.regarding.namespace.clone().unwrap_or_default();
        let api = kube::Api::<Event>::namespaced(self.client.clone(), &namespace);
        let sent =
            tokio::time::timeout(SEND_TIMEOUT, api.create(&kube::api::PostParams::default(), &event)).await;
        match sent {
            Ok(Ok(_)) => {
                self.forbidden_until = None;
                self.remember(key, notice.note.clone(), now);
                Outcome::Sent
            }
            // Another replica (or this one, before a restart) told it already.
            Ok(Err(kube::Error::Api(status))) if status.code == 409 => {
                self.remember(key, notice.note.clone(), now);
                Outcome::Repeated
            }
            Ok(Err(kube::Error::Api(status))) if status.code == 403 => {
                if self.forbidden_until.is_none() {
                    tracing::warn!(error = %status.message, retry_in_s = FORBIDDEN_RETRY.as_secs(), "the API forbids creating Events; grant create on events.k8s.io events, or pass --events=false; swaps and reloads go on");
                }
                self.forbidden_until = Some(now + FORBIDDEN_RETRY);
                Outcome::Forbidden
            }
            Ok(Err(error)) => self.failed(&error),
            Err(_) => self.failed(&format!("no answer within {SEND_TIMEOUT:?}")),
        }
    }

    fn failed(&mut self, error: &dyn std::fmt::Display) -> Outcome {
        // The API server's message is untrusted text: no raw newline reaches a log line.
        let error = error.to_string();
        let error = crate::keypath::Escaped(&error);
        if std::mem::replace(&mut self.failures_logged, true) {
            tracing::debug!(%error, "sending a Kubernetes Event failed");
        } else {
            tracing::warn!(%error, "sending a Kubernetes Event failed (further failures are logged at debug level)");
        }
        Outcome::Failed
    }

    fn remember(&mut self, key: (String, String, &'static str), note: String, now: Instant) {
        if self.sent.len() >= REMEMBERED {
            self.sent.retain(|_, (_, at)| now.duration_since(*at) < REPEAT_WINDOW);
            if self.sent.len() >= REMEMBERED {
                self.sent.clear();
            }
        }
        self.sent.insert(key, (note, now));
    }
}
