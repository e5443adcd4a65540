//! The second stage of the flags: [`Args`] validated into a ready [`Config`], one part per
//! stage, so runtime code never re-parses and each stage gets only its own settings.

use super::{
    Args, Error, LogFormat, OutputArgs, ReloadArgs, RunArgs, SafetyArgs, SourceArgs, WATCH_IDLE_TIMEOUT_MAX,
    WATCH_IDLE_TIMEOUT_MIN, parse_http_url, validate_namespace,
};
use crate::pipeline::debounce::Debounce;
use crate::reload::signal::SignalTarget;
use crate::reload::verify::Verify;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tracing_subscriber::filter::LevelFilter;

/// Validated, ready-to-use settings, one part per stage.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the objects come from.
    pub source: Source,
    /// What is written and where.
    pub output: Output,
    /// How the app is told, and the quiet window before a swap.
    pub reload: crate::reload::Settings,
    /// How long a burst of changes may settle before a swap.
    pub debounce: Debounce,
    /// What keeps a bad snapshot away from the app.
    pub safety: Safety,
    /// The process: mode, admin server, logs, shutdown, Events.
    pub admin: Admin,
}

/// The source's settings.
#[derive(Debug, Clone)]
pub struct Source {
    /// Namespace, when given on the command line.
    pub namespace: Option<String>,
    /// Label selector ("" = all).
    pub selector: String,
    /// Only these names (empty = all).
    pub names: Vec<String>,
    /// Also Secrets.
    pub secrets: bool,
    /// Mounted directories to read instead of the API.
    pub(crate) from_dirs: Vec<PathBuf>,
    /// Explicit kubeconfig file.
    pub kubeconfig: Option<PathBuf>,
    /// A watch silent this long is replaced.
    pub(crate) watch_idle_timeout: Duration,
    /// The initial state as a watch stream instead of a LIST.
    pub(crate) streaming_list: bool,
}

/// The renderer's and the writer's settings.
#[derive(Debug, Clone)]
pub struct Output {
    /// Target dir.
    pub dir: PathBuf,
    /// Create missing parents of the target dir.
    pub create_dir: bool,
    /// Rendering settings.
    pub(crate) render: crate::snapshot::RenderOptions,
    /// How long a replaced snapshot stays readable.
    pub(crate) gc_grace: Duration,
    /// Last-good dir.
    pub(crate) state_dir: Option<PathBuf>,
}

/// The checks before and after a swap, and the pipeline's rules.
#[derive(Debug, Clone)]
pub struct Safety {
    /// Syntax checks.
    pub(crate) validate_syntax: bool,
    /// Validation command.
    pub(crate) validate_cmd: Option<String>,
    /// Validation command time limit.
    pub(crate) validate_timeout: Duration,
    /// Verification after a reload.
    pub verify: Option<Verify>,
    /// Roll back when the app refuses a reload.
    pub(crate) rollback_on_refusal: bool,
    /// Swap in an empty selection.
    pub(crate) allow_empty: bool,
    /// Time to wait for the API before restoring last-good.
    pub(crate) startup_timeout: Duration,
}

/// The process's own settings.
#[derive(Debug, Clone)]
pub struct Admin {
    /// One-shot mode.
    pub once: bool,
    /// Admin listen address.
    pub listen: SocketAddr,
    /// Log format.
    pub log_format: LogFormat,
    /// Default log level.
    pub log_level: LevelFilter,
    /// Shutdown grace period.
    pub(crate) shutdown_grace: Duration,
    /// Publish Kubernetes Events.
    pub events: bool,
    /// This Pod's name and uid, when known.
    pub pod: Option<(String, Option<String>)>,
}

// === impl Args ===

impl Args {
    /// Validates the flags into a [`Config`]; does no I/O.
    pub fn into_config(self) -> Result<Config, Error> {
        let reload_configured = self.reload.process_name.is_some()
            || self.reload.pid_file.is_some()
            || !self.reload.webhook_urls.is_empty()
            || self.reload.exec.is_some();
        if self.safety.verify_url.is_some() && !reload_configured {
            return Err(Error::Invalid {
                flag: "verify-url",
                reason: "verifies the app after a reload, so it needs a reload method: \
                         --process-name, --pid-file, --webhook-url or --exec"
                    .into(),
            });
        }
        let debounce = Debounce { quiet: self.reload.debounce.0, max_wait: self.reload.max_wait.0 };
        if debounce.max_wait < debounce.quiet {
            return Err(Error::Invalid { flag: "max-wait", reason: "must be at least --debounce".into() });
        }
        Ok(Config {
            source: self.source.into_source()?,
            output: self.output.into_output(),
            reload: self.reload.into_settings()?,
            debounce,
            safety: self.safety.into_safety()?,
            admin: self.run.into_admin(),
        })
    }
}

// === impl SourceArgs ===

impl SourceArgs {
    fn into_source(self) -> Result<Source, Error> {
        crate::selector::validate(&self.selector)?;
        if let Some(namespace) = &self.namespace {
            validate_namespace(namespace)?;
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
        Ok(Source {
            namespace: self.namespace,
            selector: self.selector,
            names: self.names,
            secrets: self.secrets,
            from_dirs: self.from_dirs,
            kubeconfig: self.kubeconfig,
            watch_idle_timeout: self.watch_idle_timeout.0,
            streaming_list: self.streaming_list,
        })
    }
}

// === impl OutputArgs ===

impl OutputArgs {
    fn into_output(self) -> Output {
        Output {
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
        }
    }
}

// === impl ReloadArgs ===

impl ReloadArgs {
    fn into_settings(self) -> Result<crate::reload::Settings, Error> {
        if self.webhook_status_code.is_some_and(|code| !(100..=599).contains(&code)) {
            return Err(Error::Invalid { flag: "webhook-status-code", reason: "must be 100..599".into() });
        }
        let target = match (self.process_name, self.pid_file) {
            (Some(_), Some(_)) => return Err(Error::Conflict("process-name", "pid-file")),
            (Some(name), None) => Some(SignalTarget::ProcessName(name)),
            (None, Some(path)) => Some(SignalTarget::PidFile(path)),
            (None, None) => None,
        };
        let webhooks = self
            .webhook_urls
            .iter()
            .map(|url| parse_http_url("webhook-url", url))
            .collect::<Result<Vec<_>, _>>()?;
        let webhook_method = hyper::Method::from_bytes(self.webhook_method.to_uppercase().as_bytes())
            .map_err(|e| Error::Invalid { flag: "webhook-method", reason: e.to_string() })?;
        Ok(crate::reload::Settings {
            signal: self.signal.0,
            target,
            webhooks,
            webhook_method,
            webhook_timeout: self.webhook_timeout.0,
            webhook_retries: self.webhook_retries,
            webhook_status: self.webhook_status_code,
            webhook_header_file: self.webhook_header_file,
            exec: self.exec,
            exec_timeout: self.exec_timeout.0,
            reload_on_start: self.reload_on_start,
        })
    }
}

// === impl SafetyArgs ===

impl SafetyArgs {
    fn into_safety(self) -> Result<Safety, Error> {
        let verify = self.verify_url.as_deref().map(|url| parse_http_url("verify-url", url)).transpose()?;
        Ok(Safety {
            validate_syntax: self.validate_syntax,
            validate_cmd: self.validate_cmd,
            validate_timeout: self.validate_timeout.0,
            verify: verify.map(|url| Verify { url, timeout: self.verify_timeout.0 }),
            rollback_on_refusal: self.rollback_on_refusal,
            allow_empty: self.allow_empty,
            startup_timeout: self.startup_timeout.0,
        })
    }
}

// === impl RunArgs ===

impl RunArgs {
    fn into_admin(self) -> Admin {
        Admin {
            once: self.once,
            listen: self.listen,
            log_format: self.log_format,
            log_level: self.log_level,
            shutdown_grace: self.shutdown_grace.0,
            events: self.events,
            pod: self.pod_name.filter(|n| !n.is_empty()).map(|n| (n, self.pod_uid)),
        }
    }
}
