//! Command-line flags (what the user typed, [`Args`]) and their validation into a ready
//! [`Config`], so runtime code never re-parses. Every flag also reads `CONFIGSNAP_<FLAG>`.

mod config;
pub mod preflight;
mod values;

use crate::snapshot::Layout;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;
use tracing_subscriber::filter::LevelFilter;

pub use crate::telemetry::LogFormat;
pub use config::{Admin, Config, Output, Safety, Source};
#[cfg(test)]
pub(crate) use values::MAX_DURATION;
pub use values::{DurationArg, FileMode, SignalName};

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
pub(crate) const DEFAULT_LISTEN: &str = "0.0.0.0:9403";

/// Flags as typed, one group per stage (each group is its `--help` heading).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "configsnap",
    version,
    about = "Atomic, outage-proof config snapshots from Kubernetes ConfigMaps, with reloads",
    long_about = None,
    max_term_width = 100
)]
pub struct Args {
    /// Where the objects come from: the API (namespace, selector, names) or mounted dirs.
    #[command(flatten)]
    pub source: SourceArgs,
    /// What is written and where: the target dir, its layout and modes, the last-good copy.
    #[command(flatten)]
    pub output: OutputArgs,
    /// How the app is told: a signal, webhooks or a command, and when.
    #[command(flatten)]
    pub reload: ReloadArgs,
    /// What keeps a bad snapshot away from the app: checks, verification, rollback, holds.
    #[command(flatten)]
    pub safety: SafetyArgs,
    /// The process itself: mode, admin address, logs, shutdown, Kubernetes Events.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Where the objects come from: the API (namespace, selector, names) or mounted dirs.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Source")]
pub struct SourceArgs {
    /// Namespace to watch [default: the pod's own: service-account namespace file, else POD_NAMESPACE, else the kubeconfig context]
    #[arg(long, env = "CONFIGSNAP_NAMESPACE")]
    pub namespace: Option<String>,
    /// Label selector for ConfigMaps (=, ==, !=, in, notin, key (exists), !key)
    #[arg(long, env = "CONFIGSNAP_SELECTOR", default_value = "")]
    pub selector: String,
    /// Only these ConfigMaps (repeatable; env: comma-separated)
    #[arg(long = "name", env = "CONFIGSNAP_NAME", value_delimiter = ',')]
    pub names: Vec<String>,
    /// Also Secrets matching the selector (needs RBAC on secrets)
    #[arg(long, env = "CONFIGSNAP_SECRETS")]
    pub secrets: bool,
    /// Read kubelet-mounted ConfigMap dirs instead of the API (repeatable; no RBAC needed; alias --volume-dir, as configmap-reload)
    #[arg(
        long = "from-dir",
        visible_alias = "volume-dir",
        env = "CONFIGSNAP_FROM_DIR",
        value_delimiter = ','
    )]
    pub(crate) from_dirs: Vec<PathBuf>,

    /// Get the initial state as a watch stream (WatchList, `sendInitialEvents`) instead of a LIST
    #[arg(long, env = "CONFIGSNAP_STREAMING_LIST")]
    pub(crate) streaming_list: bool,

    /// Replace a watch that sends no event and no bookmark for this long (1s to 290s)
    #[arg(long, env = "CONFIGSNAP_WATCH_IDLE_TIMEOUT", default_value = "2m")]
    pub(crate) watch_idle_timeout: DurationArg,

    /// Kubeconfig file [default: in-cluster config in a pod, else KUBECONFIG or ~/.kube/config]
    #[arg(long, env = "CONFIGSNAP_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

/// What is written and where: the target dir, its layout and modes, the last-good copy.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Target directory on the volume shared with the app (its parent must exist)
    #[arg(long, env = "CONFIGSNAP_DIR")]
    pub dir: PathBuf,
    /// Also create missing parents of --dir
    #[arg(long, env = "CONFIGSNAP_CREATE_DIR")]
    pub create_dir: bool,
    /// File layout: <configmap>/<key> (by-name) or <key> (flat)
    #[arg(long, env = "CONFIGSNAP_LAYOUT", value_enum, default_value_t = Layout::ByName)]
    pub layout: Layout,
    /// Mode of written files, octal (annotation configsnap.io/file-mode overrides; Secrets 0600)
    #[arg(long, env = "CONFIGSNAP_FILE_MODE", default_value = "0644")]
    pub(crate) file_mode: FileMode,
    /// Largest accepted value in bytes; a larger one rejects its ConfigMap
    #[arg(long, env = "CONFIGSNAP_MAX_FILE_SIZE", default_value_t = 1024 * 1024)]
    pub(crate) max_file_size: usize,
    /// Keep each replaced snapshot readable this long, so a reader that resolved `..data` before a swap never finds its files gone (0 = remove at once)
    #[arg(long, env = "CONFIGSNAP_GC_GRACE", default_value = "30s")]
    pub(crate) gc_grace: DurationArg,
    /// Directory for the last-good copy (off when unset)
    #[arg(long, env = "CONFIGSNAP_STATE_DIR")]
    pub(crate) state_dir: Option<PathBuf>,
}

/// How the app is told: a signal, webhooks or a command, and when.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Reload")]
pub struct ReloadArgs {
    /// Signal sent to the reload target
    #[arg(long, env = "CONFIGSNAP_SIGNAL", default_value = "HUP")]
    pub signal: SignalName,
    /// Signal the top process of this name (needs shareProcessNamespace)
    #[arg(long, env = "CONFIGSNAP_PROCESS_NAME")]
    pub(crate) process_name: Option<String>,
    /// Signal the pid written in this file (read at each reload)
    #[arg(long, env = "CONFIGSNAP_PID_FILE")]
    pub pid_file: Option<PathBuf>,
    /// HTTP reload endpoint, http:// or https:// (repeatable; env: comma-separated)
    #[arg(long = "webhook-url", env = "CONFIGSNAP_WEBHOOK_URL", value_delimiter = ',')]
    pub(crate) webhook_urls: Vec<String>,
    /// HTTP method of the webhook
    #[arg(long, env = "CONFIGSNAP_WEBHOOK_METHOD", default_value = "POST")]
    pub(crate) webhook_method: String,
    /// Timeout of one webhook call
    #[arg(long, env = "CONFIGSNAP_WEBHOOK_TIMEOUT", default_value = "5s")]
    pub(crate) webhook_timeout: DurationArg,
    /// Retries of a failed webhook call (jittered exponential backoff)
    #[arg(long, env = "CONFIGSNAP_WEBHOOK_RETRIES", default_value_t = 5)]
    pub(crate) webhook_retries: u32,
    /// Status the webhook must answer [default: any 2xx]
    #[arg(long, env = "CONFIGSNAP_WEBHOOK_STATUS_CODE")]
    pub(crate) webhook_status_code: Option<u16>,
    /// File of `Name: value` lines sent as webhook headers (e.g. a bearer token), read at each call; values never logged
    #[arg(long, env = "CONFIGSNAP_WEBHOOK_HEADER_FILE")]
    pub(crate) webhook_header_file: Option<PathBuf>,
    /// Command run after each swap, with CONFIGSNAP_DIR and CONFIGSNAP_HASH set: run directly (no shell) unless it has shell syntax
    #[arg(long, env = "CONFIGSNAP_EXEC")]
    pub exec: Option<String>,
    /// Time limit of the --exec command
    #[arg(long, env = "CONFIGSNAP_EXEC_TIMEOUT", default_value = "30s")]
    pub(crate) exec_timeout: DurationArg,
    /// Quiet window after a change before swapping (0 = at once)
    #[arg(long, env = "CONFIGSNAP_DEBOUNCE", default_value = "100ms")]
    pub debounce: DurationArg,
    /// Longest delay of a swap under a constant stream of changes
    #[arg(long, env = "CONFIGSNAP_MAX_WAIT", default_value = "1s")]
    pub(crate) max_wait: DurationArg,
    /// Also reload after the first sync (for apps started before configsnap)
    #[arg(long, env = "CONFIGSNAP_RELOAD_ON_START")]
    pub(crate) reload_on_start: bool,
}

/// What keeps a bad snapshot away from the app: checks, verification, rollback, holds.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Safety")]
#[allow(clippy::struct_excessive_bools)] // Each bool is an independent on/off flag.
pub struct SafetyArgs {
    /// Check .json, .yaml/.yml and .toml files before swapping
    #[arg(long, env = "CONFIGSNAP_VALIDATE_SYNTAX")]
    pub(crate) validate_syntax: bool,
    /// Command run on the staged snapshot (CONFIGSNAP_STAGED_DIR); exit 0 = good; run directly (no shell) unless it has shell syntax
    #[arg(long, env = "CONFIGSNAP_VALIDATE_CMD")]
    pub(crate) validate_cmd: Option<String>,
    /// Time limit of the --validate-cmd command
    #[arg(long, env = "CONFIGSNAP_VALIDATE_TIMEOUT", default_value = "30s")]
    pub(crate) validate_timeout: DurationArg,
    /// After a reload this URL must answer 2xx, or the previous snapshot is restored
    #[arg(long, env = "CONFIGSNAP_VERIFY_URL")]
    pub(crate) verify_url: Option<String>,
    /// How long --verify-url may take to answer 2xx
    #[arg(long, env = "CONFIGSNAP_VERIFY_TIMEOUT", default_value = "10s")]
    pub(crate) verify_timeout: DurationArg,
    /// When the app refuses a reload (HTTP error status, non-zero exit), restore the last good snapshot
    #[arg(
        long,
        env = "CONFIGSNAP_ROLLBACK_ON_REFUSAL",
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub(crate) rollback_on_refusal: bool,
    /// Swap in a selection with no object at all (default: keep the previous files)
    #[arg(long, env = "CONFIGSNAP_ALLOW_EMPTY")]
    pub(crate) allow_empty: bool,
    /// Wait this long for the API before restoring the last-good copy
    #[arg(long, env = "CONFIGSNAP_STARTUP_TIMEOUT", default_value = "5s")]
    pub(crate) startup_timeout: DurationArg,
}

/// The process itself: mode, admin address, logs, shutdown, Kubernetes Events.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Run")]
pub struct RunArgs {
    /// One sync, write, reload, then exit (init container)
    #[arg(long, env = "CONFIGSNAP_ONCE")]
    pub once: bool,
    /// Address of /healthz, /readyz and /metrics
    #[arg(long, env = "CONFIGSNAP_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Log format
    #[arg(long, env = "CONFIGSNAP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log level: error, warn, info, debug, trace (RUST_LOG directives, when set, refine it)
    #[arg(long, env = "CONFIGSNAP_LOG_LEVEL", default_value = "info")]
    pub log_level: LevelFilter,
    /// Time to finish in-flight work after SIGTERM
    #[arg(long, env = "CONFIGSNAP_SHUTDOWN_GRACE", default_value = "10s")]
    pub(crate) shutdown_grace: DurationArg,
    /// Publish Kubernetes Events on the ConfigMaps and Secrets concerned (rejected, refused, rolled back, applied)
    #[arg(
        long,
        env = "CONFIGSNAP_EVENTS",
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub events: bool,
    /// This Pod's name (downward API metadata.name): Events are related to it
    #[arg(long, env = "POD_NAME")]
    pub(crate) pod_name: Option<String>,
    /// This Pod's uid (downward API metadata.uid)
    #[arg(long, env = "POD_UID")]
    pub(crate) pod_uid: Option<String>,
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
