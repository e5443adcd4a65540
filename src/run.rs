//! The program behind `main`: build the parts from a validated [`Config`], run one task per
//! concern, and shut down in order (unready, finish the step in progress, stop).

use crate::cli::Config;
use crate::events::Events;
use crate::kube_events::{Pod, Publisher};
use crate::metrics::Metrics;
use crate::pipeline::debounce::Debounce;
use crate::pipeline::{self, Parts, Pipeline};
use crate::reload::Reloader;
use crate::snapshot::Renderer;
use crate::snapshot::manifest::Origin;
use crate::source::{self, Combined, Notifier, SharedInventory};
use crate::status::StatusHandle;
use crate::validate::Validator;
use crate::{http, lastgood, writer};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use std::sync::Arc;
use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// Why configsnap could not run.
#[derive(Debug, Error)]
pub enum Error {
    /// The admin address is taken or not allowed.
    #[error("failed to listen on {addr}: {source}; choose another --listen address")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The target dir cannot be used.
    #[error("failed to open the target dir: {0}")]
    Target(#[source] writer::Error),
    /// The state dir cannot be used.
    #[error("failed to open the state dir: {0}")]
    State(#[source] lastgood::Error),
    /// No usable Kubernetes client configuration.
    #[error("{0}; check --kubeconfig (or KUBECONFIG), or read mounted ConfigMap dirs with --from-dir")]
    Kube(#[from] source::kube::Error),
    /// `--once` could not produce a snapshot.
    #[error(transparent)]
    Once(#[from] pipeline::Error),
}

// === impl Error ===

impl Error {
    /// The process exit code: [`crate::cli::EXIT_USAGE`] (64) for what a flag or the
    /// environment must fix, 1 for the rest.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Listen { .. } | Self::Kube(_) | Self::State(lastgood::Error::Unsafe { .. }) => {
                crate::cli::EXIT_USAGE
            }
            // A target dir we may not write to is the mount's or the securityContext's to fix.
            Self::Target(error) if matches!(error.label(), "permission" | "read_only") => {
                crate::cli::EXIT_USAGE
            }
            Self::Target(_) | Self::State(_) | Self::Once(_) => 1,
        }
    }
}

/// A target dir that refuses writes is usable only when it holds a complete snapshot: the
/// app keeps reading it (degraded on `/readyz`) and updates land once it takes writes. An
/// empty or damaged one is the mount's or the securityContext's to fix: exit 64.
async fn check_target(
    writer: writer::Writer,
    dir: &std::path::Path,
    events: &Events,
) -> Result<writer::Writer, Error> {
    let dir = dir.to_owned();
    let (writer, refused, complete) = tokio::task::spawn_blocking(move || {
        // Only a refusal counts: a full volume is handled per object by the swaps.
        let refused = writer.probe_writable().err().filter(writer::Error::target_refuses_writes);
        let complete = refused.is_some() && matches!(writer::read_current(&dir), Ok(Some(_)));
        (writer, refused, complete)
    })
    .await
    .expect("probing the target dir must not panic");
    match refused {
        Some(error) if complete => events.target_unwritable(&error),
        Some(error) => return Err(Error::Target(error)),
        None => {}
    }
    Ok(writer)
}

/// A source task, named for its span.
type SourceTask = (&'static str, std::pin::Pin<Box<dyn Future<Output = ()> + Send>>);

/// The sources' combined view and the tasks that keep it current.
struct Sources {
    inventory: SharedInventory,
    changes: tokio::sync::watch::Receiver<source::Change>,
    tasks: Vec<SourceTask>,
    /// The Kubernetes Event publisher's task, when Events are on.
    publisher: Option<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>>,
    namespace: String,
}

/// Runs configsnap until SIGTERM/SIGINT (or, with `--once`, one sync).
pub async fn run(config: Config) -> Result<(), Error> {
    let mut events = Events::new(Arc::new(Metrics::new()), StatusHandle::default());
    // Signals first: a SIGTERM during start-up drains like any other.
    let work = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(events.clone(), work.clone()));
    let listener = if config.once {
        None
    } else {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Listen { addr: config.listen, source })?;
        Some(listener)
    };
    let sources = start_sources(&config, &mut events, &work).await?;
    let origin = Origin {
        namespace: sources.namespace.clone(),
        selector: config.selector.clone(),
        layout: config.render.layout,
    };
    let (dir, target_origin, grace) = (config.dir.clone(), origin.clone(), config.gc_grace);
    let writer = tokio::task::spawn_blocking(move || {
        writer::Writer::open(&dir, target_origin).map(|w| w.with_gc_grace(grace))
    })
    .await
    .expect("opening the target dir must not panic")
    .map_err(Error::Target)?;
    let writer = check_target(writer, &config.dir, &events).await?;
    let durability = writer.durability();
    let store = match &config.state_dir {
        Some(dir) => {
            let (dir, origin) = (dir.clone(), origin.clone());
            let opened = tokio::task::spawn_blocking(move || lastgood::Store::open(&dir, origin))
                .await
                .expect("opening the state dir must not panic");
            Some(Arc::new(opened.map_err(Error::State)?))
        }
        None => None,
    };
    let settings = pipeline::Settings {
        debounce: Debounce { quiet: config.debounce, max_wait: config.max_wait },
        startup_timeout: config.startup_timeout,
        origin,
        rules: pipeline::policy::Rules {
            allow_empty: config.allow_empty,
            reload_on_start: config.reload.reload_on_start,
            reload_configured: config.reload.is_configured(),
            rollback_on_refusal: config.rollback_on_refusal,
        },
        verify: config
            .verify_url
            .clone()
            .map(|url| crate::reload::verify::Verify { url, timeout: config.verify_timeout }),
    };
    let parts = Parts {
        inventory: sources.inventory,
        changes: sources.changes,
        renderer: Renderer::new(config.render),
        writer: Arc::new(writer),
        validator: Validator::new(
            config.validate_syntax,
            config.validate_cmd.clone(),
            config.validate_timeout,
        ),
        store,
        reloader: Reloader::new(config.reload.clone(), events.clone()),
        events: events.clone(),
    };
    let pipeline = Pipeline::new(settings, parts);
    let tracker = TaskTracker::new();
    for (name, task) in sources.tasks {
        tracker.spawn(task.instrument(tracing::info_span!("source", kind = name)));
    }
    if let Some(task) = sources.publisher {
        tracker.spawn(task.instrument(tracing::info_span!("events")));
    }
    if config.once {
        let result = pipeline.once().await;
        work.cancel();
        tracker.close();
        let _ = tokio::time::timeout(config.shutdown_grace, tracker.wait()).await;
        return result.map_err(Error::from);
    }
    tracing::info!(
        namespace = %sources.namespace,
        dir = %config.dir.display(),
        durability = ?durability,
        listen = %config.listen,
        "configsnap started"
    );
    let admin = CancellationToken::new();
    let http_task = listener.map(|listener| {
        tokio::spawn(
            http::serve(listener, events.clone(), admin.clone(), longest_step(&config))
                .instrument(tracing::info_span!("http")),
        )
    });
    let mut pipeline_task =
        tokio::spawn(pipeline.run(work.clone()).instrument(tracing::info_span!("pipeline")));
    // The pipeline ends only when shutdown began (it drains), or when it failed.
    let pipeline_ended = tokio::select! {
        result = &mut pipeline_task => {
            if !work.is_cancelled() {
                let cause = result.err().map_or_else(|| "returned".to_owned(), |e| e.to_string());
                events.task_failed("pipeline", &cause);
                work.cancelled().await;
            }
            true
        }
        () = work.cancelled() => false,
    };
    // Unready already; the admin server keeps answering until the work is done.
    tracker.close();
    let work_done = async {
        // A finished JoinHandle must not be polled again.
        if !pipeline_ended {
            let _ = pipeline_task.await;
        }
        tracker.wait().await;
    };
    if tokio::time::timeout(config.shutdown_grace, work_done).await.is_err() {
        tracing::warn!(
            grace_ms = config.shutdown_grace.as_millis(),
            "tasks did not finish within the grace period"
        );
    }
    admin.cancel();
    if let Some(task) = http_task {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Builds the configured sources: mounted dirs, or the API (ConfigMaps, and Secrets).
async fn start_sources(
    config: &Config,
    events: &mut Events,
    cancel: &CancellationToken,
) -> Result<Sources, Error> {
    if !config.from_dirs.is_empty() {
        let (notifier, changes) = Notifier::new(1);
        let (inventory, task) =
            source::dir::watch(config.from_dirs.clone(), notifier, events.clone(), cancel.clone());
        return Ok(Sources {
            inventory,
            changes,
            tasks: vec![("directory", Box::pin(task))],
            publisher: None,
            namespace: String::new(),
        });
    }
    let connection =
        source::kube::Connection::load(config.kubeconfig.as_deref(), config.watch_idle_timeout).await?;
    let namespace =
        source::kube::resolve_namespace(config.namespace.as_deref(), connection.default_namespace());
    let mut publisher = None;
    if config.events && !config.once {
        let pod = config.pod.clone().map(|(name, uid)| Pod { namespace: namespace.clone(), name, uid });
        let busy = events.pipeline_busy();
        let (handle, task) = Publisher::start(
            connection.client()?,
            pod,
            config.secrets,
            events.metrics_arc(),
            busy,
            cancel.clone(),
        );
        *events = events.clone().with_publisher(handle);
        publisher = Some(Box::pin(task) as std::pin::Pin<Box<dyn Future<Output = ()> + Send>>);
    }
    let selection = source::kube::Selection {
        namespace: namespace.clone(),
        selector: config.selector.clone(),
        names: config.names.clone(),
        streaming_list: config.streaming_list,
    };
    let (notifier, changes) = Notifier::new(1 + usize::from(config.secrets));
    let (configmaps, task) = source::kube::watch::<ConfigMap>(
        &connection,
        selection.clone(),
        notifier.clone(),
        events.clone(),
        cancel.clone(),
    )?;
    let mut inventories = vec![configmaps];
    let mut tasks: Vec<SourceTask> = vec![("configmaps", Box::pin(task))];
    if config.secrets {
        let (secrets, task) =
            source::kube::watch::<Secret>(&connection, selection, notifier, events.clone(), cancel.clone())?;
        inventories.push(secrets);
        tasks.push(("secrets", Box::pin(task)));
    }
    Ok(Sources { inventory: Arc::new(Combined(inventories)), changes, tasks, publisher, namespace })
}

/// First SIGTERM/SIGINT: unready and drain. Second: exit at once.
async fn shutdown_on_signal(events: Events, work: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("cannot install signal handlers; SIGTERM ends the process without draining");
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::info!("shutdown signal received: unready, finishing the step in progress");
    events.status().update(|s| s.shutting_down = true);
    work.cancel();
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::warn!("second shutdown signal: exiting now");
    std::process::exit(130);
}

/// The longest a pipeline step may legitimately take (a validation command, a reload with
/// every webhook retry, a verification), with room to spare: `/healthz` reports a wedged
/// pipeline only beyond it.
fn longest_step(config: &Config) -> std::time::Duration {
    let reload = &config.reload;
    let retries = reload.webhook_retries.saturating_add(1);
    // Each webhook attempt: its timeout plus at most the 10 s backoff cap.
    let webhooks = (reload.webhook_timeout + std::time::Duration::from_secs(10)).saturating_mul(retries);
    let step = config.validate_timeout + reload.exec_timeout.max(webhooks) + config.verify_timeout;
    (step * 2).max(std::time::Duration::from_secs(300))
}
