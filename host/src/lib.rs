//! Switchyard: a multi-tenant, WebAssembly-extensible webhook event router.
//!
//! ```text
//! source --HTTP--> api::ingest --(durable insert, 202)--> pipeline --> routes (match)
//!     --> runtime (tenant Wasm plugins) --> store outbox --> delivery (sign, POST, retry)
//! ```
//!
//! # Layout
//! - [`config`]: defaults, TOML file, `SWITCHYARD_*` environment; validated at start-up.
//! - [`event`]: the canonical event and prefixed ids.
//! - [`fixtures`]: the seed vendor payloads, embedded for plugin dry runs.
//! - [`sources`]: one adapter per inbound envelope, plus inbound signature checks.
//! - [`signing`]: Standard Webhooks HMAC signatures, pure functions.
//! - [`routes`]: route documents, validation, and the atomically swapped live table.
//! - [`runtime`]: wasmtime engine, plugin compilation, sandboxed invocation, host capabilities.
//! - [`pipeline`]: pending events through routes and plugins into the outbox.
//! - [`quota`]: per-tenant ingest rate limits (the other quotas are checked where they apply).
//! - [`retention`]: the background pruner of finished work past its retention.
//! - [`delivery`]: the outbox worker, retry schedule, and the guarded HTTP client.
//! - [`store`]: sqlx over an embedded SQLite file or PostgreSQL; every state change is
//!   transactional.
//! - [`cluster`]: several nodes on one PostgreSQL database: heartbeats, take-over of a dead
//!   node's work, and changes made through one node reaching the others.
//! - [`api`]: the axum HTTP API.
//! - [`trace`]: W3C trace context, and the router's own spans exported over OTLP when configured.
//! - [`metrics`]: the Prometheus page (`GET /metrics`): handles the hot path records through,
//!   tenant labels capped into `other`.
//!
//! # Running
//! [`run`] is the one entry point: the binary calls it with a bound listener, and tests call it
//! on port 0 with a cancellation token for shutdown.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! let config = switchyard::config::Config::default();
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! switchyard::run(config, listener, shutdown).await?;
//! # Ok(()) }
//! ```

pub mod api;
pub mod cluster;
pub mod config;
pub mod delivery;
pub mod event;
pub mod fixtures;
pub mod metrics;
pub mod pipeline;
pub mod quota;
pub mod retention;
pub mod routes;
pub mod runtime;
pub mod signing;
pub mod sources;
pub mod store;
pub mod trace;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::api::AppState;
use crate::config::Config;
use crate::delivery::DeliveryWorker;
use crate::pipeline::{Pipeline, TenantGate};
use crate::retention::Pruner;
use crate::routes::RouteTable;
use crate::runtime::Runtime;
use crate::store::handoff::{DeliveryQueue, DeliveryQueueLimits, EventQueue, EventQueueLimits};
use crate::store::{KvQuota, Store, Writer, WriterParts};

/// How long shutdown waits for work in flight before giving up on it (it is resumed on the
/// next start: nothing in flight is lost, at worst repeated).
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// Most writes committed together by the writer (see `store::Writer`).
const WRITER_BATCH: usize = 512;

/// Runs the router until `shutdown` is cancelled: the API on `listener`, the pipeline and
/// the delivery worker. Work that was pending at the last stop (or crash) resumes.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    config.validate()?;
    create_private_dir(&config.data_dir).with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let keys = store::secrets::keyring(&config.data_dir, config.secrets.key.as_deref(), &config.secrets.previous_keys)
        .context("loading the secrets key")?;
    let url = config.database_url()?;
    let store =
        Store::open_url(&url, keys).await.with_context(|| format!("opening the store at {}", url.redacted()))?;
    let resealed = store.reseal_secrets().await.context("sealing stored secrets under secrets.key")?;
    if resealed > 0 {
        tracing::info!(resealed, "stored secrets sealed under the current secrets key");
    }
    // Spans of events and attempts go to the collector, if one is configured (`trace::otlp`).
    let (tracer, exporter) = trace::otlp::start(&config.tracing).context("starting the OTLP trace exporter")?;
    // Registers this node; frees what a stopped process left leased (on PostgreSQL only that
    // of nodes dead for cluster.node_timeout: live nodes keep theirs).
    let taken = store.start_node(config.cluster.node_timeout).await.context("registering this node")?;
    if taken.deliveries + taken.events > 0 {
        tracing::info!(
            deliveries = taken.deliveries,
            events = taken.events,
            "resuming work interrupted by the last stop"
        );
    }
    tracing::info!(node = store.node(), backend = store.backend(), "node registered");

    // The hot path: the writer hands committed work to these queues (see `store::handoff`).
    let event_queue = Arc::new(EventQueue::new(EventQueueLimits {
        per_tenant: config.pipeline.queue_per_tenant,
        total_bytes: config.pipeline.queue_bytes,
    }));
    event_queue.set_backlog(store.pending_per_tenant().await?);
    let delivery_queue = Arc::new(DeliveryQueue::new(DeliveryQueueLimits {
        max_jobs: config.delivery.queue_jobs,
        max_bytes: config.delivery.queue_bytes,
        per_tenant: config.delivery.queue_jobs_per_tenant,
    }));
    let metrics = Arc::new(metrics::Metrics::new(
        config.metrics.max_tenant_labels,
        metrics::PoolSizes {
            pipeline: config.pipeline.concurrency,
            delivery: config.delivery.concurrency,
            wasm: config.plugins.max_instances as usize,
        },
    ));
    // Stored tenants take their labels first, oldest first, so labels survive restarts.
    let mut tenants = store.list_tenants().await?;
    tenants.sort_by_key(|t| t.created_at);
    for tenant in tenants {
        metrics.tenant(&tenant.id, &tenant.name);
    }
    let writer_stop = CancellationToken::new();
    let (writer, writer_task) = Writer::spawn(
        WriterParts {
            store: store.clone(),
            events: event_queue.clone(),
            deliveries: delivery_queue.clone(),
            max_batch: WRITER_BATCH,
            metrics: metrics.writer(),
        },
        writer_stop.clone(),
    );

    let kv_quota = |name: &str| {
        let p = config.policy(name);
        KvQuota { max_keys: p.max_kv_keys, max_bytes: p.max_kv_bytes }
    };
    let defaults = &config.tenant_defaults;
    let runtime = Arc::new(
        Runtime::new(&config.plugins, &config.data_dir.join("artifacts"), store.clone())?
            .with_writer(writer.clone())
            .with_metrics(metrics.clone())
            .with_tenant_limits(config.tenants.keys().map(|name| (name.clone(), config.plugin_limits(name))))
            .with_kv_quotas(
                KvQuota { max_keys: defaults.max_kv_keys, max_bytes: defaults.max_kv_bytes },
                config.tenants.keys().map(|name| (name.clone(), kv_quota(name))),
            ),
    );
    // Before anything compiles: artifacts of deleted versions and of other engines go.
    let removed = runtime.collect_artifacts(&store.plugin_shas().await?);
    if removed > 0 {
        tracing::info!(removed, "removed compiled plugin artifacts nothing uses");
    }
    let routes = Arc::new(RouteTable::default());
    routes::load_all(&store, &runtime, &routes).await?;
    let admin_token = admin_token(&config)?;

    let delivery_wake = Arc::new(Notify::new());
    let config = Arc::new(config);
    // Pipeline events, dry runs and rerun replays share one set of per-tenant limits.
    let gate = TenantGate::new(config.pipeline.clone());
    let pipeline = Arc::new(Pipeline {
        store: store.clone(),
        runtime: runtime.clone(),
        routes: routes.clone(),
        queue: event_queue.clone(),
        writer: writer.clone(),
        config: config.pipeline.clone(),
        first_delivery_delay: config.delivery.retry_schedule[0],
        limits: pipeline::EventLimitsTable::new(&config),
        gate: gate.clone(),
        metrics: metrics.clone(),
        tracer: tracer.clone(),
    });
    let delivery = Arc::new(
        DeliveryWorker::new(
            store.clone(),
            config.delivery.clone(),
            delivery_queue,
            writer.clone(),
            delivery_wake.clone(),
        )
        .with_metrics(metrics.clone())
        .with_tracer(tracer.clone()),
    );
    let pruner = Pruner { store: store.clone(), config: config.clone() };
    let cluster = cluster::Cluster {
        store: store.clone(),
        runtime: runtime.clone(),
        routes: routes.clone(),
        events: event_queue.clone(),
        delivery_wake: delivery_wake.clone(),
        config: config.cluster.clone(),
    };
    let routes_dir = match &config.routes_dir {
        Some(dir) => {
            anyhow::ensure!(dir.is_dir(), "routes_dir {} is not a directory", dir.display());
            Some(routes::RoutesDir {
                dir: dir.clone(),
                config: config.clone(),
                store: store.clone(),
                runtime: runtime.clone(),
                table: routes.clone(),
            })
        }
        None => None,
    };
    let store_is_shared = store.is_shared();
    let state = AppState {
        store,
        writer,
        events: event_queue,
        runtime,
        routes,
        config: config.clone(),
        admin_token: admin_token.into(),
        delivery_wake,
        ingest_limits: Arc::default(),
        gate,
        shutdown: shutdown.clone(),
        metrics,
        tracer,
    };

    let workers = CancellationToken::new();
    let pipeline_task = tokio::spawn(pipeline.run(workers.clone()));
    let delivery_task = tokio::spawn(delivery.run(workers.clone()));
    let pruner_task = tokio::spawn(pruner.run(workers.clone()));
    // Stopped after the writer's last commit, so what it gives back at leaving is truly unfinished.
    let cluster_stop = CancellationToken::new();
    let cluster_task = store_is_shared.then(|| tokio::spawn(cluster.run(cluster_stop.clone())));
    if let Some(routes_dir) = routes_dir {
        let stop = workers.clone();
        let (ready, applied) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            if let Err(e) = routes_dir.run(stop, ready).await {
                tracing::error!("watching the routes directory stopped: {e:#}");
            }
        });
        // Serve once the files' routes are live (an error above drops `ready`: serve anyway).
        let _ = applied.await;
    }

    tracing::info!(addr = %listener.local_addr()?, data_dir = %config.data_dir.display(), "switchyard listening");
    // Shutdown begins with `/readyz` answering 503; the server keeps serving for
    // `server.shutdown_delay` so load balancers notice, then drains.
    let stop_serving = CancellationToken::new();
    tokio::spawn({
        let (begun, stop, delay) = (shutdown.clone(), stop_serving.clone(), config.server.shutdown_delay);
        async move {
            begun.cancelled().await;
            if !delay.is_zero() {
                tracing::info!(delay = ?delay, "shutdown begun: /readyz answers 503; still serving for server.shutdown_delay");
                tokio::time::sleep(delay).await;
            }
            stop.cancel();
        }
    });
    let served = api::server::serve(listener, api::app(state), &config.server, stop_serving).await;

    // Workers first (their last completions and attempts go to the writer), then the writer
    // commits what is queued.
    workers.cancel();
    let drained = tokio::time::timeout(DRAIN_DEADLINE, async {
        let _ = pipeline_task.await;
        let _ = delivery_task.await;
        let _ = pruner_task.await;
        writer_stop.cancel();
        let _ = writer_task.await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!("shutdown deadline reached; unfinished work resumes on next start");
    }
    cluster_stop.cancel();
    if let Some(task) = cluster_task {
        let _ = task.await;
    }
    if let Some(exporter) = exporter {
        exporter.shutdown().await;
    }
    served.context("serving HTTP")
}

/// The admin token: configured, or generated once and kept in the data directory.
fn admin_token(config: &Config) -> anyhow::Result<String> {
    if let Some(token) = &config.admin_token {
        return Ok(token.clone());
    }
    let path = config.data_dir.join("admin-token");
    if path.exists() {
        let token = std::fs::read_to_string(&path)?.trim().to_owned();
        anyhow::ensure!(token.len() >= 16, "{} holds no usable token", path.display());
        return Ok(token);
    }
    let token = format!("sya_{}", hex::encode(rand::random::<[u8; 24]>()));
    write_private(&path, &token)?;
    // Printed once, on first start, so the operator can copy it; later starts only say where it is.
    println!("Generated admin token (saved to {}):\n  {token}", path.display());
    Ok(token)
}

/// Creates the data directory (and any missing parents) readable by the router's user only:
/// it holds every tenant's events, secrets and keys. An existing directory is left as it is.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())?;
    Ok(())
}
