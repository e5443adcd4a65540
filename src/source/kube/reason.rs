//! Why a watch request failed, as a metric label and in plain words for `/readyz` and the
//! log ("the API server answered 503 Service Unavailable to the ConfigMap list"), never a
//! debug dump of nested error types.

use super::layer;
use super::probe::STALLED;
use kube::runtime::watcher;
use std::error::Error as StdError;
use std::io::ErrorKind;

/// A classified failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// Label of `configsnap_watch_errors_total`: `unavailable`, `throttled`, `refused`,
    /// `timeout`, `gone`, `stalled`, `decode`, `forbidden` or `other`.
    pub reason: &'static str,
    /// What happened, in plain words.
    pub cause: String,
}

impl Failure {
    fn new(reason: &'static str, cause: String) -> Self {
        Self { reason, cause }
    }
}

/// Classifies an error of the watch of `kind` (e.g. "ConfigMap").
#[must_use]
pub(crate) fn classify(error: &watcher::Error, kind: &str) -> Failure {
    match error {
        watcher::Error::InitialListFailed(e) => classify_client(e, &format!("the {kind} list")),
        watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
            classify_client(e, &format!("the {kind} watch"))
        }
        watcher::Error::WatchError(status) => {
            if status.code == 410 {
                let cause = format!(
                    "the API server no longer has the {kind} watch's resourceVersion (410 Gone); listing again"
                );
                Failure::new("gone", cause)
            } else {
                answered(status.code, &status.message, &format!("the {kind} watch"))
            }
        }
        watcher::Error::NoResourceVersion => {
            Failure::new("decode", format!("the API server sent a {kind} answer without a resourceVersion"))
        }
    }
}

/// Classifies a client error of `request` ("the ConfigMap list").
fn classify_client(error: &kube::Error, request: &str) -> Failure {
    match error {
        kube::Error::Api(status) => answered(status.code, &status.message, request),
        kube::Error::SerdeError(e) => {
            Failure::new("decode", format!("could not decode the API server's answer to {request}: {e}"))
        }
        kube::Error::FromUtf8(_) | kube::Error::LinesCodecMaxLineLengthExceeded => {
            Failure::new("decode", format!("could not decode the API server's answer to {request}"))
        }
        _ => classify_chain(error, request),
    }
}

/// An HTTP error status from the API server.
fn answered(code: u16, message: &str, request: &str) -> Failure {
    let phrase = http::StatusCode::from_u16(code).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
    let reason = match code {
        429 => "throttled",
        504 => "timeout",
        410 => "gone",
        401 | 403 => "forbidden",
        500..=599 => "unavailable",
        _ => "other",
    };
    let mut cause = format!("the API server answered {code} {phrase} to {request}");
    // The server's words matter for client errors (RBAC, bad selector), not for outages.
    if (400..500).contains(&code) && code != 429 && !message.is_empty() {
        cause = format!("{cause}: {message}");
    }
    Failure::new(reason, cause)
}

/// Connection-level failures, found by walking the error's sources.
fn classify_chain(error: &kube::Error, request: &str) -> Failure {
    let mut connect = false;
    let mut io_kind = None;
    for e in chain(error) {
        match e.downcast_ref::<layer::Error>() {
            Some(layer::Error::NoAnswer(idle)) => {
                let cause =
                    format!("the API server did not answer {request} within {}s; retrying", idle.as_secs());
                return Failure::new(STALLED, cause);
            }
            Some(layer::Error::Silent(idle)) => {
                let cause = format!(
                    "{request} sent no event and no bookmark for {}s; reconnecting from its resourceVersion",
                    idle.as_secs()
                );
                return Failure::new(STALLED, cause);
            }
            None => {}
        }
        if e.downcast_ref::<hyper_util::client::legacy::Error>().is_some_and(|e| e.is_connect()) {
            connect = true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            io_kind = io_kind.or(Some(io.kind()));
        }
    }
    match (connect, io_kind) {
        (_, Some(ErrorKind::TimedOut)) => {
            Failure::new("timeout", format!("connecting to the API server for {request} timed out"))
        }
        (true, Some(ErrorKind::ConnectionRefused)) => {
            Failure::new("refused", format!("the API server refused the connection for {request}"))
        }
        (true, _) => Failure::new(
            "refused",
            format!("could not connect to the API server for {request}: {}", innermost(error)),
        ),
        (false, Some(ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe)) => {
            Failure::new("other", format!("the connection of {request} broke"))
        }
        (false, _) => Failure::new("other", format!("{request} failed: {}", innermost(error))),
    }
}

/// `error` and its sources; an `io::Error` wrapping another error yields that error too
/// (its `source()` skips it).
fn chain<'a>(error: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        out.push(e);
        if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref) {
            out.push(inner);
            next = inner.source();
        } else {
            next = e.source();
        }
    }
    out
}

/// The deepest error's message: the one that says what actually happened.
fn innermost(error: &kube::Error) -> String {
    chain(error).last().map_or_else(|| error.to_string(), ToString::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;
    use std::time::Duration;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Status::failure("injected", "Reason").with_code(code).boxed())
    }

    #[test]
    fn error_statuses_get_a_reason_and_plain_words() {
        let table = [
            (
                api(503),
                "unavailable",
                "the API server answered 503 Service Unavailable to the ConfigMap list",
            ),
            (api(429), "throttled", "the API server answered 429 Too Many Requests to the ConfigMap list"),
            (api(504), "timeout", "the API server answered 504 Gateway Timeout to the ConfigMap list"),
            (api(403), "forbidden", "the API server answered 403 Forbidden to the ConfigMap list: injected"),
            (
                api(500),
                "unavailable",
                "the API server answered 500 Internal Server Error to the ConfigMap list",
            ),
        ];
        for (error, reason, cause) in table {
            let failure = classify(&watcher::Error::InitialListFailed(error), "ConfigMap");
            assert_eq!(failure, Failure::new(reason, cause.into()));
        }
    }

    #[test]
    fn a_410_error_event_is_gone_and_a_watch_start_names_the_watch() {
        let gone = Status::failure("too old resource version", "Expired").with_code(410).boxed();
        assert_eq!(classify(&watcher::Error::WatchError(gone), "Secret").reason, "gone");
        let failure = classify(&watcher::Error::WatchStartFailed(api(503)), "Secret");
        assert!(failure.cause.ends_with("to the Secret watch"), "{}", failure.cause);
    }

    #[test]
    fn a_silent_watch_body_is_stalled_through_the_io_error_that_wraps_it() {
        let silent: tower::BoxError = Box::new(layer::Error::Silent(Duration::from_secs(120)));
        let error = kube::Error::ReadEvents(std::io::Error::other(silent));
        let failure = classify(&watcher::Error::WatchFailed(error), "ConfigMap");
        assert_eq!(failure.reason, "stalled");
        assert!(failure.cause.contains("no event and no bookmark for 120s"), "{}", failure.cause);
        let no_answer: tower::BoxError = Box::new(layer::Error::NoAnswer(Duration::from_secs(5)));
        let failure =
            classify(&watcher::Error::InitialListFailed(kube::Error::Service(no_answer)), "ConfigMap");
        assert_eq!(failure.reason, "stalled");
    }

    #[test]
    fn a_broken_connection_and_bad_json_are_said_plainly() {
        let eof = kube::Error::ReadEvents(std::io::Error::new(ErrorKind::UnexpectedEof, "eof"));
        let failure = classify(&watcher::Error::WatchFailed(eof), "ConfigMap");
        assert_eq!(failure, Failure::new("other", "the connection of the ConfigMap watch broke".into()));
        let json = serde_json::from_str::<u8>("x").expect_err("not JSON");
        let failure = classify(&watcher::Error::WatchFailed(kube::Error::SerdeError(json)), "ConfigMap");
        assert_eq!(failure.reason, "decode");
    }
}
