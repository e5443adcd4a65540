//! Command-line flags (what the user typed, [`Args`]) and their validation into a ready
//! [`Config`], so runtime code never re-parses. Every flag also reads `CONFIGSNAP_<FLAG>`.

pub mod preflight;
mod values;

use crate::reload::signal::SignalTarget;
use crate::snapshot::Layout;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;
use tracing_subscriber::filter::LevelFilter;

pub use values::{DurationArg, FileMode, MAX_DURATION, SignalName};

/// Exit code for a usage error (`EX_USAGE` from sysexits.h).
pub const EXIT_USAGE: u8 = 64;

/// Shortest `--watch-idle-timeout`.
const WATCH_IDLE_TIMEOUT_MIN: Duration = Duration::from_secs(1);
/// Longest `--watch-idle-timeout`: kube asks the server to end each watch after 290 s and
/// silently replaces one quiet for 295 s, so a longer timeout would never fire.
const WATCH_IDLE_TIMEOUT_MAX: Duration = Duration::from_secs(290);
/// Default admin address. Port 9403 because the apps configsnap sits next to own the usual
/// ones: 9090 is Prometheus, 9093 Alertmanager, 9100 node-exporter, 3000 Grafana, 8404
/// HAProxy's stats, 80/8080 nginx; 9403 is in Prometheus's exporter range and taken by none.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9403";

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags as typed.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "configsnap",
    version,
    about = "Atomic, outage-proof config snapshots from Kubernetes ConfigMaps, with reloads",
    long_about = None,
    max_term_width = 100
)]
#[allow(clippy::struct_excessive_bools)] // Each bool is an independent on/off flag.
pub struct Args {
    // --- source ---
    /// Namespace to watch [default: the pod's own: service-account namespace file, else POD_NAMESPACE, else the kubeconfig context]
    #[arg(long, env = "CONFIGSNAP_NAMESPACE", help_heading = "Source")]
    pub namespace: Option<String>,
    /// Label selector for ConfigMaps (=, ==, !=, in, notin, exists, !key)
    #[arg(long, env = "CONFIGSNAP_SELECTOR", default_value = "", help_heading = "Source")]
    pub selector: String,
    /// Only these ConfigMaps (repeatable; env: comma-separated)
    #[arg(long = "name", env = "CONFIGSNAP_NAME", value_delimiter = ',', help_heading = "Source")]
    pub names: Vec<String>,
    /// Also Secrets matching the selector (needs RBAC on secrets)
    #[arg(long, env = "CONFIGSNAP_SECRETS", help_heading = "Source")]
    pub secrets: bool,
    /// Read kubelet-mounted ConfigMap dirs instead of the API (repeatable; no RBAC needed; alias --volume-dir, as configmap-reload)
    #[arg(
        long = "from-dir",
        visible_alias = "volume-dir",
        env = "CONFIGSNAP_FROM_DIR",
        value_delimiter = ',',
        help_heading = "Source"
    )]
    pub from_dirs: Vec<PathBuf>,

    /// Get the initial state as a watch stream (WatchList, `sendInitialEvents`) instead of a LIST
    #[arg(long, env = "CONFIGSNAP_STREAMING_LIST", help_heading = "Source")]
    pub streaming_list: bool,

    /// Replace a watch that sends no event and no bookmark for this long (1s to 290s)
    #[arg(long, env = "CONFIGSNAP_WATCH_IDLE_TIMEOUT", default_value = "2m", help_heading = "Source")]
    pub watch_idle_timeout: DurationArg,

    /// Kubeconfig file [default: in-cluster config in a pod, else KUBECONFIG or ~/.kube/config]
    #[arg(long, env = "CONFIGSNAP_KUBECONFIG", help_heading = "Source")]
    pub kubeconfig: Option<PathBuf>,

    // --- output ---
    /// Target directory on the volume shared with the app (its parent must exist)
    #[arg(long, env = "CONFIGSNAP_DIR", help_heading = "Output")]
    pub dir: PathBuf,
    /// Also create missing parents of --dir
    #[arg(long, env = "CONFIGSNAP_CREATE_DIR", help_heading = "Output")]
    pub create_dir: bool,
    /// File layout: <configmap>/<key> (by-name) or <key> (flat)
    #[arg(long, env = "CONFIGSNAP_LAYOUT", value_enum, default_value_t = Layout::ByName, help_heading = "Output")]
    pub layout: Layout,
    /// Mode of written files, octal (annotation configsnap.io/file-mode overrides; Secrets 0600)
    #[arg(long, env = "CONFIGSNAP_FILE_MODE", default_value = "0644", help_heading = "Output")]
    pub file_mode: FileMode,
    /// Largest accepted value in bytes; a larger one rejects its ConfigMap
    #[arg(long, env = "CONFIGSNAP_MAX_FILE_SIZE", default_value_t = 1024 * 1024, help_heading = "Output")]
    pub max_file_size: usize,
    /// Keep each replaced snapshot readable this long, so a reader that resolved `..data` before a swap never finds its files gone (0 = remove at once)
    #[arg(long, env = "CONFIGSNAP_GC_GRACE", default_value = "30s", help_heading = "Output")]
    pub gc_grace: DurationArg,
    /// Directory for the last-good copy (off when unset)
    #[arg(long, env = "CONFIGSNAP_STATE_DIR", help_heading = "Output")]
    pub state_dir: Option<PathBuf>,

    // --- reload ---
    /// Signal sent to the reload target
    #[arg(long, env = "CONFIGSNAP_SIGNAL", default_value = "HUP", help_heading = "Reload")]
    pub signal: SignalName,
    /// Signal the top process of this name (needs shareProcessNamespace)
    #[arg(long, env = "CONFIGSNAP_PROCESS_NAME", help_heading = "Reload")]
    pub process_name: Option<String>,
    /// Signal the pid written in this file (read at each reload)
    #[arg(long, env = "CONFIGSNAP_PID_FILE", help_heading = "Reload")]
    pub pid_file: Option<PathBuf>,
    /// HTTP reload endpoint, http:// or https:// (repeatable; env: comma-separated)
    #[arg(
        long = "webhook-url",
        env = "CONFIGSNAP_WEBHOOK_URL",
        value_delimiter = ',',
        help_heading = "Reload"
    )]
    pub webhook_urls: Vec<String>,
    /// HTTP method of the webhook
    #[arg(long, env = "CONFIGSNAP_WEBHOOK_METHOD", default_value = "POST", help_heading = "Reload")]
    pub webhook_method: String,
    /// Timeout of one webhook call
    #[arg(long, env = "CONFIGSNAP_WEBHOOK_TIMEOUT", default_value = "5s", help_heading = "Reload")]
    pub webhook_timeout: DurationArg,
    /// Retries of a failed webhook call (jittered exponential backoff)
    #[arg(long, env = "CONFIGSNAP_WEBHOOK_RETRIES", default_value_t = 5, help_heading = "Reload")]
    pub webhook_retries: u32,
    /// Status the webhook must answer [default: any 2xx]
    #[arg(long, env = "CONFIGSNAP_WEBHOOK_STATUS_CODE", help_heading = "Reload")]
    pub webhook_status_code: Option<u16>,
    /// File of `Name: value` lines sent as webhook headers (e.g. a bearer token), read at each call; values never logged
    #[arg(long, env = "CONFIGSNAP_WEBHOOK_HEADER_FILE", help_heading = "Reload")]
    pub webhook_header_file: Option<PathBuf>,
    /// Command run after each swap, with CONFIGSNAP_DIR and CONFIGSNAP_HASH set: run directly (no shell) unless it has shell syntax
    #[arg(long, env = "CONFIGSNAP_EXEC", help_heading = "Reload")]
    #[arg(long, env = "CONFIGSNAP_EXEC", help_heading = "Reload")]
    pub exec: Option<String>,
    /// Time limit of the --exec command
    #[arg(long, env = "CONFIGSNAP_EXEC_TIMEOUT", default_value = "30s", help_heading = "Reload")]
    pub exec_timeout: DurationArg,
    /// Quiet window after a change before swapping (0 = at once)
    #[arg(long, env = "CONFIGSNAP_DEBOUNCE", default_value = "100ms", help_heading = "Reload")]
    pub debounce: DurationArg,
    /// Longest delay of a swap under a constant stream of changes
    #[arg(long, env = "CONFIGSNAP_MAX_WAIT", default_value = "1s", help_heading = "Reload")]
    pub max_wait: DurationArg,
    /// Also reload after the first sync (for apps started before configsnap)
    #[arg(long, env = "CONFIGSNAP_RELOAD_ON_START", help_heading = "Reload")]
    pub reload_on_start: bool,

    // --- safety ---
    /// Check .json, .yaml/.yml and .toml files before swapping
    #[arg(long, env = "CONFIGSNAP_VALIDATE_SYNTAX", help_heading = "Safety")]
    pub validate_syntax: bool,
    /// Command run on the staged snapshot (CONFIGSNAP_STAGED_DIR); exit 0 = good; run directly (no shell) unless it has shell syntax
    #[arg(long, env = "CONFIGSNAP_VALIDATE_CMD", help_heading = "Safety")]
    pub validate_cmd: Option<String>,
    /// Time limit of the --validate-cmd command
    #[arg(long, env = "CONFIGSNAP_VALIDATE_TIMEOUT", default_value = "30s", help_heading = "Safety")]
    pub validate_timeout: DurationArg,
    /// After a reload this URL must answer 2xx, or the previous snapshot is restored
    #[arg(long, env = "CONFIGSNAP_VERIFY_URL", help_heading = "Safety")]
    pub verify_url: Option<String>,
    /// How long --verify-url may take to answer 2xx
    #[arg(long, env = "CONFIGSNAP_VERIFY_TIMEOUT", default_value = "10s", help_heading = "Safety")]
    pub verify_timeout: DurationArg,
    /// When the app refuses a reload (HTTP error status, non-zero exit), restore the last good snapshot
    #[arg(
        long,
        env = "CONFIGSNAP_ROLLBACK_ON_REFUSAL",
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL",
        help_heading = "Safety"
    )]
    pub rollback_on_refusal: bool,
    /// Swap in a selection with no object at all (default: keep the previous files)
    #[arg(long, env = "CONFIGSNAP_ALLOW_EMPTY", help_heading = "Safety")]
    pub allow_empty: bool,
    /// Wait this long for the API before restoring the last-good copy
    #[arg(long, env = "CONFIGSNAP_STARTUP_TIMEOUT", default_value = "5s", help_heading = "Safety")]
    pub startup_timeout: DurationArg,

    // --- run ---
    /// One sync, write, reload, then exit (init container)
    #[arg(long, env = "CONFIGSNAP_ONCE", help_heading = "Run")]
    pub once: bool,
    /// Address of /healthz, /readyz and /metrics
    #[arg(long, env = "CONFIGSNAP_LISTEN", default_value = DEFAULT_LISTEN, help_heading = "Run")]
    pub listen: SocketAddr,
    /// Log format
    #[arg(long, env = "CONFIGSNAP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, help_heading = "Run")]
    pub log_format: LogFormat,
    /// Log level: error, warn, info, debug, trace (RUST_LOG directives, when set, refine it)
    #[arg(long, env = "CONFIGSNAP_LOG_LEVEL", default_value = "info", help_heading = "Run")]
    pub log_level: LevelFilter,
    /// Time to finish in-flight work after SIGTERM
    #[arg(long, env = "CONFIGSNAP_SHUTDOWN_GRACE", default_value = "10s", help_heading = "Run")]
    pub shutdown_grace: DurationArg,
    /// Publish Kubernetes Events on the ConfigMaps and Secrets concerned (rejected, refused, rolled back, applied)
    #[arg(
        long,
        env = "CONFIGSNAP_EVENTS",
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL",
        help_heading = "Run"
    )]
    pub events: bool,
    /// This Pod's name (downward API metadata.name): Events are related to it
    #[arg(long, env = "POD_NAME", help_heading = "Run")]
    pub pod_name: Option<String>,
    /// This Pod's uid (downward API metadata.uid)
    #[arg(long, env = "POD_UID", help_heading = "Run")]
    pub pod_uid: Option<String>,
}

/// Validated, ready-to-use settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Namespace, when given on the command line.
    pub namespace: Option<String>,
    /// Label selector ("" = all).
    pub selector: String,
    /// Only these names (empty = all).
    pub names: Vec<String>,
    /// Also Secrets.
    pub secrets: bool,
    /// Mounted directories to read instead of the API.
    pub from_dirs: Vec<PathBuf>,
    /// Explicit kubeconfig file.
    pub kubeconfig: Option<PathBuf>,
    /// A watch silent this long is replaced.
    pub watch_idle_timeout: Duration,
    /// The initial state as a watch stream instead of a LIST.
    pub streaming_list: bool,
    /// Target dir.
    pub dir: PathBuf,
    /// Create missing parents of the target dir.
    pub create_dir: bool,
    /// Rendering settings.
    pub render: crate::snapshot::RenderOptions,
    /// How long a replaced snapshot stays readable.
    pub gc_grace: Duration,
    /// Last-good dir.
    pub state_dir: Option<PathBuf>,
    /// Reload settings.
    pub reload: crate::reload::Settings,
    /// Quiet window.
    pub debounce: Duration,
    /// Longest delay.
    pub max_wait: Duration,
    /// Syntax checks.
    pub validate_syntax: bool,
    /// Validation command.
    pub validate_cmd: Option<String>,
    /// Validation command time limit.
    pub validate_timeout: Duration,
    /// Verification URL.
    pub verify_url: Option<hyper::Uri>,
    /// Verification time limit.
    pub verify_timeout: Duration,
    /// Time to wait for the API before restoring last-good.
    pub startup_timeout: Duration,
    /// One-shot mode.
    pub once: bool,
    /// Admin listen address.
    pub listen: SocketAddr,
    /// Log format.
    pub log_format: LogFormat,
    /// Default log level.
    pub log_level: LevelFilter,
    /// Shutdown grace period.
    pub shutdown_grace: Duration,
    /// Roll back when the app refuses a reload.
    pub rollback_on_refusal: bool,
    /// Swap in an empty selection.
    pub allow_empty: bool,
    /// Publish Kubernetes Events.
    pub events: bool,
    /// This Pod's name and uid, when known.
    pub pod: Option<(String, Option<String>)>,
}

/// A flag combination or value that cannot work.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Error {
    /// Invalid label selector.
    #[error(transparent)]
    Selector(#[from] crate::selector::Error),
    /// Two flags that exclude each other.
    #[error("--{0} and --{1} cannot be used together")]
    Conflict(&'static str, &'static str),
    /// A URL that is not http(s)://host[:port]/path.
    #[error("--{flag} {url:?} is not a valid http:// or https:// URL: {reason}")]
    Url {
        /// The flag.
        flag: &'static str,
        /// The value.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A value out of range.
    #[error("--{flag}: {reason}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        reason: String,
    },
}

// === impl Args ===

impl Args {
    /// Validates the flags into a [`Config`]; does no I/O.
    pub fn into_config(self) -> Result<Config, Error> {
        crate::selector::validate(&self.selector)?;
        if let Some(namespace) = &self.namespace {
            validate_namespace(namespace)?;
        }
        if self.webhook_status_code.is_some_and(|code| !(100..=599).contains(&code)) {
            return Err(Error::Invalid { flag: "webhook-status-code", reason: "must be 100..599".into() });
        }
        if self.process_name.is_some() && self.pid_file.is_some() {
            return Err(Error::Conflict("process-name", "pid-file"));
        }
        if !self.from_dirs.is_empty() && self.secrets {
            return Err(Error::Conflict("from-dir", "secrets"));
        }
        if !(WATCH_IDLE_TIMEOUT_MIN..=WATCH_IDLE_TIMEOUT_MAX).contains(&self.watch_idle_timeout.0) {
            return Err(Error::Invalid {
                flag: "watch-idle-timeout",
                reason: "must be between 1s and 290s (the API server ends every watch after 290s)".into(),
            });
        }
        if self.max_wait.0 < self.debounce.0 {
            return Err(Error::Invalid { flag: "max-wait", reason: "must be at least --debounce".into() });
        }
        let webhooks = self
            .webhook_urls
            .iter()
            .map(|url| parse_http_url("webhook-url", url))
            .collect::<Result<Vec<_>, _>>()?;
        let method = hyper::Method::from_bytes(self.webhook_method.to_uppercase().as_bytes())
            .map_err(|e| Error::Invalid { flag: "webhook-method", reason: e.to_string() })?;
        let verify_url =
            self.verify_url.as_deref().map(|url| parse_http_url("verify-url", url)).transpose()?;
        let reloads = self.process_name.is_some()
            || self.pid_file.is_some()
            || !self.webhook_urls.is_empty()
            || self.exec.is_some();
        if verify_url.is_some() && !reloads {
            return Err(Error::Invalid {
                flag: "verify-url",
                reason: "verifies the app after a reload, so it needs a reload method: \
                         --process-name, --pid-file, --webhook-url or --exec"
                    .into(),
            });
        }
        let target = match (self.process_name, self.pid_file) {
            (Some(name), None) => Some(SignalTarget::ProcessName(name)),
            (None, Some(path)) => Some(SignalTarget::PidFile(path)),
            _ => None,
        };
        let reload = crate::reload::Settings {
            signal: self.signal.0,
            target,
            webhooks,
            webhook_method: method,
            webhook_timeout: self.webhook_timeout.0,
            webhook_retries: self.webhook_retries,
            webhook_status: self.webhook_status_code,
            webhook_header_file: self.webhook_header_file,
            exec: self.exec,
            exec_timeout: self.exec_timeout.0,
            reload_on_start: self.reload_on_start,
        };
        Ok(Config {
            namespace: self.namespace,
            selector: self.selector,
            names: self.names,
            secrets: self.secrets,
            from_dirs: self.from_dirs,
            kubeconfig: self.kubeconfig,
            watch_idle_timeout: self.watch_idle_timeout.0,
            streaming_list: self.streaming_list,
            dir: self.dir,
            create_dir: self.create_dir,
            render: crate::snapshot::RenderOptions {
                layout: self.layout,
                file_mode: self.file_mode.0,
                secret_file_mode: 0o600,
                max_file_bytes: self.max_file_size,
            },
            gc_grace: self.gc_grace.0,
            state_dir: self.state_dir,
            reload,
            debounce: self.debounce.0,
            max_wait: self.max_wait.0,
            validate_syntax: self.validate_syntax,
            validate_cmd: self.validate_cmd,
            validate_timeout: self.validate_timeout.0,
            verify_url,
            verify_timeout: self.verify_timeout.0,
            rollback_on_refusal: self.rollback_on_refusal,
            allow_empty: self.allow_empty,
            startup_timeout: self.startup_timeout.0,
            once: self.once,
            listen: self.listen,
            log_format: self.log_format,
            log_level: self.log_level,
            shutdown_grace: self.shutdown_grace.0,
            events: self.events,
            pod: self.pod_name.clone().filter(|n| !n.is_empty()).map(|n| (n, self.pod_uid.clone())),
        })
    }
}

/// A namespace is one DNS-1123 label: `--namespace a,b` would otherwise watch a namespace
/// that cannot exist and report an empty snapshot as ready.
fn validate_namespace(namespace: &str) -> Result<(), Error> {
    let fail = |reason: &str| Error::Invalid { flag: "namespace", reason: format!("{namespace:?} {reason}") };
    if namespace.contains(',') {
        return Err(fail("names several namespaces; configsnap watches one (run one sidecar per namespace)"));
    }
    let valid_chars = namespace.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let alnum_ends = namespace.starts_with(|c: char| c.is_ascii_alphanumeric())
        && namespace.ends_with(|c: char| c.is_ascii_alphanumeric());
    if namespace.is_empty() || namespace.len() > 63 || !valid_chars || !alnum_ends {
        return Err(fail(
            "is not a namespace name (one DNS label: at most 63 of a-z, 0-9 and '-', alphanumeric at both ends)",
        ));
    }
    Ok(())
}

/// Accepts `http(s)://host[:port][/path]`; credentials in it are allowed but never logged.
fn parse_http_url(flag: &'static str, url: &str) -> Result<hyper::Uri, Error> {
    let fail = |reason: String| Error::Url { flag, url: crate::reload::redact_url(url), reason };
    let uri: hyper::Uri = url.parse().map_err(|e: hyper::http::uri::InvalidUri| fail(e.to_string()))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(fail("only http:// and https:// are supported".into()));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(fail("no host".into()));
    }
    Ok(uri)
}

#[cfg(test)]
#[path = "cli/tests.rs"]
mod tests;
