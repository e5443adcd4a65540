//! Telling the app to reload after a swap: a signal, HTTP webhooks and a command, run
//! together; each attempt is reported as an [`Outcome::ReloadAttempted`](crate::outcome::Outcome::ReloadAttempted).

pub(crate) mod exec;
pub(crate) mod signal;
pub(crate) mod verify;
pub(crate) mod webhook;

use crate::outcome::Reporter;
use crate::snapshot::ContentHash;
use nix::sys::signal::Signal;
use signal::SignalTarget;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Reload settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Signal to send.
    pub signal: Signal,
    /// Who gets it (no signal when unset).
    pub target: Option<SignalTarget>,
    /// Webhook URLs.
    pub(crate) webhooks: Vec<hyper::Uri>,
    /// Webhook method.
    pub(crate) webhook_method: hyper::Method,
    /// Timeout of one webhook call.
    pub(crate) webhook_timeout: Duration,
    /// Retries after a failed webhook call.
    pub(crate) webhook_retries: u32,
    /// The status a webhook must answer (any 2xx when unset).
    pub(crate) webhook_status: Option<u16>,
    /// File of `Name: value` header lines for webhooks, read at each call.
    pub(crate) webhook_header_file: Option<PathBuf>,
    /// Command to run.
    pub exec: Option<String>,
    /// Command time limit.
    pub(crate) exec_timeout: Duration,
    /// Reload after the first sync too.
    pub(crate) reload_on_start: bool,
}

impl Settings {
    /// True when any reload method is configured.
    #[must_use]
    pub(crate) fn is_configured(&self) -> bool {
        self.target.is_some() || !self.webhooks.is_empty() || self.exec.is_some()
    }
}

/// How the app was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Method {
    /// A signal to a process.
    Signal,
    /// An HTTP call.
    Webhook,
    /// A command.
    Exec,
}

impl Method {
    /// Metric label.
    #[must_use]
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Signal => "signal",
            Self::Webhook => "webhook",
            Self::Exec => "exec",
        }
    }
}

/// Why a reload method failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// A human-readable cause.
    pub message: String,
    /// The app answered and said no (an HTTP error status, a non-zero exit): the content
    /// is refused. Otherwise the app could not be reached (connection error, timeout, no
    /// process), which says nothing about the content.
    pub refused: bool,
}

impl Failure {
    /// The app refused.
    #[must_use]
    pub(crate) fn refused(message: impl Into<String>) -> Self {
        Self { message: message.into(), refused: true }
    }

    /// The app could not be reached.
    #[must_use]
    pub(crate) fn unreachable(message: impl Into<String>) -> Self {
        Self { message: message.into(), refused: false }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// One reload attempt (after retries, for webhooks).
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    /// The failure, if it failed.
    pub result: Result<(), Failure>,
    /// Time taken.
    pub duration: Duration,
}

/// All attempts for one snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// Every attempt.
    pub attempts: Vec<Attempt>,
}

impl Outcome {
    /// True when every configured method succeeded.
    #[must_use]
    pub(crate) fn succeeded(&self) -> bool {
        self.attempts.iter().all(|a| a.result.is_ok())
    }

    /// True when a method was answered with a refusal.
    #[must_use]
    pub(crate) fn refused(&self) -> bool {
        self.attempts.iter().any(|a| a.result.as_ref().is_err_and(|f| f.refused))
    }

    /// Every failure's cause, joined.
    #[must_use]
    pub(crate) fn causes(&self) -> String {
        let causes: Vec<&str> = self
            .attempts
            .iter()
            .filter_map(|a| a.result.as_ref().err())
            .map(|f| f.message.as_str())
            .collect();
        causes.join("; ")
    }
}

/// Runs the configured reload methods.
#[derive(Debug, Clone)]
pub(crate) struct Reloader {
    settings: Arc<Settings>,
    http: webhook::Client,
    reporter: Reporter,
}

// === impl Reloader ===

impl Reloader {
    /// A reloader for these settings.
    #[must_use]
    pub(crate) fn new(settings: Settings, reporter: Reporter) -> Self {
        Self { settings: Arc::new(settings), http: webhook::Client::new(), reporter }
    }

    /// The settings.
    #[must_use]
    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Tells the app about snapshot `hash` in `dir`. Dropping the future cancels pending
    /// webhook retries and kills a running command: a newer snapshot supersedes it.
    pub(crate) async fn reload(&self, hash: ContentHash, dir: PathBuf) -> Outcome {
        let signal = async {
            let target = self.settings.target.clone()?;
            let started = Instant::now();
            let result = signal::send(target, self.settings.signal).await.map_err(Failure::unreachable);
            Some(self.record(Method::Signal, hash, started, result))
        };
        let exec = async {
            let command = self.settings.exec.as_deref()?;
            let started = Instant::now();
            let env = [
                ("CONFIGSNAP_DIR", dir.as_os_str().to_owned()),
                ("CONFIGSNAP_HASH", hash.to_string().into()),
            ];
            let result = exec::run("exec", command, &env, self.settings.exec_timeout).await.map(|_| ());
            Some(self.record(Method::Exec, hash, started, result))
        };
        let webhooks = futures::future::join_all(self.settings.webhooks.iter().map(|url| async move {
            let started = Instant::now();
            let result = self.http.deliver(url, &self.settings, hash).await;
            self.record(Method::Webhook, hash, started, result)
        }));
        let (signal, exec, webhooks) = tokio::join!(signal, exec, webhooks);
        let attempts = signal.into_iter().chain(exec).chain(webhooks).collect();
        Outcome { attempts }
    }

    fn record(
        &self,
        method: Method,
        hash: ContentHash,
        started: Instant,
        result: Result<(), Failure>,
    ) -> Attempt {
        let attempt = Attempt { result, duration: started.elapsed() };
        let result = attempt.result.as_ref().map_err(|f| f.message.as_str()).copied();
        let (method, took) = (method.label(), attempt.duration);
        self.reporter.report(crate::outcome::Outcome::ReloadAttempted { method, hash, took, result });
        attempt
    }
}

/// A URL with any `user:password@` and query string hidden, for logs and errors.
#[must_use]
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let userinfo = if authority.contains('@') { "***@" } else { "" };
    let path = path.split_once('?').map_or(path.to_owned(), |(p, _)| format!("{p}?***"));
    let scheme = if scheme.is_empty() { String::new() } else { format!("{scheme}://") };
    format!("{scheme}{userinfo}{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn credentials_and_queries_are_hidden() {
        assert_eq!(redact_url("http://u:p@host:9/-/reload?token=x"), "http://***@host:9/-/reload?***");
        assert_eq!(redact_url("http://host/x"), "http://host/x");
        assert_eq!(redact_url("host"), "host");
    }
}
