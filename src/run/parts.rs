//! Building the parts `run` wires together, each from its own part of the [`Config`]: the
//! admin listener, the sources, the target dir, the last-good store and the pipeline.

use super::Error;
use crate::cli::{Admin, Config, Output};
use crate::events::Events;
use crate::kube_events::{Pod, Publisher};
use crate::pipeline::{self, Parts, Pipeline};
use crate::reload::Reloader;
use crate::snapshot::Renderer;
use crate::snapshot::manifest::Origin;
use crate::source::{self, Combined, Notifier, SharedInventory};
use crate::validate::Validator;
use crate::{lastgood, writer};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use std::pin::Pin;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A long-running task, named for its span.
pub(super) type Task = (&'static str, Pin<Box<dyn Future<Output = ()> + Send>>);

/// The sources' combined view and the tasks that keep it current.
pub(super) struct Sources {
    pub(super) inventory: SharedInventory,
    pub(super) changes: tokio::sync::watch::Receiver<source::Change>,
    pub(super) tasks: Vec<Task>,
    /// The Kubernetes Event publisher's task, when Events are on.
    pub(super) publisher: Option<Task>,
    pub(super) namespace: String,
}

/// The admin listener; none with `--once`.
pub(super) async fn bind_admin(admin: &Admin) -> Result<Option<tokio::net::TcpListener>, Error> {
    if admin.once {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind(admin.listen)
        .await
        .map_err(|source| Error::Listen { addr: admin.listen, source })?;
    Ok(Some(listener))
}

/// What produces the snapshots: written in manifests, checked on restore.
pub(super) fn origin(config: &Config, namespace: &str) -> Origin {
    Origin {
        namespace: namespace.to_owned(),
        selector: config.source.selector.clone(),
        layout: config.output.render.layout,
    }
}

/// Opens the target dir. One that refuses writes is usable only when it holds a complete
/// snapshot: the app keeps reading it (degraded on `/readyz`) and updates land once it
/// takes writes. An empty or damaged one is the mount's or the securityContext's to fix.
pub(super) async fn open_target(
    output: &Output,
    origin: Origin,
    events: &Events,
) -> Result<(writer::Writer, bool), Error> {
    let (dir, grace) = (output.dir.clone(), output.gc_grace);
    let opened = tokio::task::spawn_blocking(move || {
        let writer = writer::Writer::open(&dir, origin)?.with_gc_grace(grace);
        // Only a refusal counts: a full volume is handled per object by the swaps.
        let refused = writer.probe_writable().err().filter(writer::Error::target_refuses_writes);
        let complete = refused.is_some() && matches!(writer::read_current(&dir), Ok(Some(_)));
        Ok((writer, refused, complete))
    })
    .await
    .expect("opening the target dir must not panic");
    let (writer, refused, complete) = opened.map_err(Error::Target)?;
    match refused {
        Some(error) if complete => {
            events.observe(crate::outcome::Outcome::TargetUnwritable(&error));
            Ok((writer, true))
        }
        Some(error) => Err(Error::Target(error)),
        None => Ok((writer, false)),
    }
}

/// Opens the last-good store, when `--state-dir` is set.
pub(super) async fn open_last_good(
    output: &Output,
    origin: Origin,
) -> Result<Option<Arc<lastgood::Store>>, Error> {
    let Some(dir) = output.state_dir.clone() else { return Ok(None) };
    let opened = tokio::task::spawn_blocking(move || lastgood::Store::open(&dir, origin))
        .await
        .expect("opening the state dir must not panic");
    Ok(Some(Arc::new(opened.map_err(Error::State)?)))
}

/// The pipeline over `sources`: render, validate, write, reload, keep the last good; its
/// outcomes (and the reloader's) go to `events`.
pub(super) fn pipeline(
    config: &Config,
    sources: (SharedInventory, tokio::sync::watch::Receiver<source::Change>),
    (writer, target_refuses_writes): (writer::Writer, bool),
    store: Option<Arc<lastgood::Store>>,
    events: &Events,
) -> Pipeline {
    let safety = &config.safety;
    let settings = pipeline::Settings {
        debounce: config.debounce,
        startup_timeout: safety.startup_timeout,
        rules: pipeline::policy::Rules {
            allow_empty: safety.allow_empty,
            reload_on_start: config.reload.reload_on_start,
            reload_configured: config.reload.is_configured(),
            rollback_on_refusal: safety.rollback_on_refusal,
        },
        verify: safety.verify.clone(),
    };
    let parts = Parts {
        inventory: sources.0,
        changes: sources.1,
        renderer: Renderer::new(config.output.render),
        writer: Arc::new(writer),
        validator: Validator::new(
            safety.validate_syntax,
            safety.validate_cmd.clone(),
            safety.validate_timeout,
        ),
        store,
        reloader: Reloader::new(config.reload.clone(), events.reporter()),
        reporter: events.reporter(),
        target_refuses_writes,
    };
    Pipeline::new(settings, parts)
}

/// Builds the configured sources: mounted dirs, or the API (ConfigMaps, and Secrets).
/// With Events on, `events` publishes them from now on.
pub(super) async fn start_sources(
    config: &Config,
    events: &mut Events,
    cancel: &CancellationToken,
) -> Result<Sources, Error> {
    let wanted = &config.source;
    if !wanted.from_dirs.is_empty() {
        let (notifier, changes) = Notifier::new(1);
        let (inventory, task) = source::dir::watch(
            wanted.from_dirs.clone(),
            notifier,
            events.reporter().source(),
            cancel.clone(),
        );
        let tasks: Vec<Task> = vec![("directory", Box::pin(task))];
        return Ok(Sources { inventory, changes, tasks, publisher: None, namespace: String::new() });
    }
    let connection =
        source::kube::Connection::load(wanted.kubeconfig.as_deref(), wanted.watch_idle_timeout).await?;
    let namespace =
        source::kube::resolve_namespace(wanted.namespace.as_deref(), connection.default_namespace());
    let mut publisher = None;
    if config.admin.events && !config.admin.once {
        let pod = config.admin.pod.clone().map(|(name, uid)| Pod { namespace: namespace.clone(), name, uid });
        let busy = events.pipeline_busy();
        let (handle, task) = Publisher::start(
            connection.client()?,
            pod,
            wanted.secrets,
            events.metrics_arc(),
            busy,
            cancel.clone(),
        );
        *events = events.clone().with_publisher(handle);
        publisher = Some(("events", Box::pin(task) as Pin<Box<dyn Future<Output = ()> + Send>>));
    }
    let selection = source::kube::Selection {
        namespace: namespace.clone(),
        selector: wanted.selector.clone(),
        names: wanted.names.clone(),
        streaming_list: wanted.streaming_list,
    };
    let (notifier, changes) = Notifier::new(1 + usize::from(wanted.secrets));
    let (configmaps, task) = source::kube::watch::<ConfigMap>(
        &connection,
        selection.clone(),
        notifier.clone(),
        events.reporter().source(),
        cancel.clone(),
    )?;
    let mut inventories = vec![configmaps];
    let mut tasks: Vec<Task> = vec![("configmaps", Box::pin(task))];
    if wanted.secrets {
        let (secrets, task) = source::kube::watch::<Secret>(
            &connection,
            selection,
            notifier,
            events.reporter().source(),
            cancel.clone(),
        )?;
        inventories.push(secrets);
        tasks.push(("secrets", Box::pin(task)));
    }
    Ok(Sources { inventory: Arc::new(Combined(inventories)), changes, tasks, publisher, namespace })
}
