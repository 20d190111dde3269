//! The KPI role: reads the event log, feeds the engine, persists interval rows, and
//! serves the JSON API, `/metrics` and the live wallboard.
//!
//! # Layout
//!
//! - [`config`]: [`KpiConfig`] — listen address, store, consumer group, engine, flush
//!   interval, API keys, wallboard — with `validate()`.
//! - [`feed`]: the one task that owns the consumer and drives the engine: poll, apply,
//!   flush rows and checkpoint in one transaction, then commit offsets; publishes the
//!   real-time [`Snapshots`] a few times a second.
//! - [`auth`]: API keys to [`auth::Caller`]s (one tenant, or every tenant for a provider).
//! - [`http`]: the axum routes.
//! - [`metrics`]: the service's counters and the real-time gauges, as OpenMetrics text.
//!
//! # Data flow
//!
//! ```text
//! EventLog ──poll──▶ feed ──apply──▶ Engine (behind a mutex; the feed is its only writer)
//!                     │  every flush_interval_ms: take_dirty + checkpoint
//!                     │      ──▶ Store::save (one transaction) ──then──▶ commit offsets
//!                     └──realtime──▶ watch<Snapshots> ──▶ /api/kpi/realtime, /stream, /metrics
//! HTTP /api/kpi/intervals ──▶ Store rows ∪ Engine's open rows
//! ```
//!
//! # Restart without loss or double counting
//!
//! Offsets are committed only after the store holds the rows and the checkpoint that
//! cover them, so a crash can only make the service re-read records. The checkpoint
//! records, per partition, the next offset it covers; on start the engine is restored
//! from it and records below those positions are dropped (and counted as replayed),
//! and anything else seen twice is dropped by the engine's event-id dedupe.
//!
//! # Embedding
//!
//! [`run`] is the whole role on a bound listener. `hotline up` embeds the pieces
//! instead: [`Kpi::start`] returns a handle whose [`Kpi::router`] is merged into the
//! process's HTTP server; that server's graceful shutdown calls [`KpiCloser::close`]
//! (open wallboard streams end only once the feed stops), and [`Kpi::shutdown`] then
//! waits for the last flush.

pub mod auth;
pub mod config;
pub mod feed;
pub mod http;
pub mod metrics;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotline_core::time::{Clock, SystemClock};
use hotline_eventlog::{EventLog, topics};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::engine::{CheckpointError, DEFINITIONS};
use crate::model::RealtimeSnapshot;
use crate::store::{Store, StoreError};

pub use config::{ApiKeyConfig, ConfigError, KpiConfig, Role, WallboardConfig};
pub use http::DefinitionInfo;

/// What can stop the KPI role.
#[derive(Debug, thiserror::Error)]
pub enum KpiError {
    /// The configuration cannot work; nothing was started.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The engine's part of the configuration cannot work.
    #[error("kpi config: engine.{0}")]
    EngineConfig(String),
    /// The interval store could not be opened or read (its errors name the URL,
    /// without credentials).
    #[error("kpi store: {0}")]
    Store(#[from] StoreError),
    /// The stored checkpoint of the consumer group cannot be read by this engine.
    #[error(
        "kpi checkpoint of consumer group {group:?}: {source}; \
         rebuild it with `hotline kpi replay`"
    )]
    Checkpoint {
        /// The consumer group.
        group: String,
        /// Why.
        #[source]
        source: CheckpointError,
    },
    /// The event log refused something that retrying will not fix.
    #[error("kpi event log ({what}): {source}")]
    Log {
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: hotline_eventlog::Error,
    },
    /// The HTTP server failed.
    #[error("kpi http server: {0}")]
    Serve(#[source] std::io::Error),
    /// The feed task panicked or was cancelled.
    #[error("kpi feed task ended abnormally: {0}")]
    Feed(String),
}

/// `Result` with [`KpiError`].
pub type Result<T, E = KpiError> = std::result::Result<T, E>;

/// The latest real-time view of every tenant, published by the feed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshots {
    /// When it was taken, ms since the epoch (the service's clock).
    pub at_ms: u64,
    /// Per tenant.
    pub tenants: BTreeMap<String, RealtimeSnapshot>,
}

/// One line per definition, for `/api/kpi/definitions`; `DEFINITIONS.md` writes each
/// out in full. A definition the engine adds before this table learns it still gets
/// listed, pointing at the document.
const DESCRIPTIONS: &[(&str, &str)] = &[
    (
        "count.offered",
        "contacts that entered a queue, counted in the interval they arrived",
    ),
    ("count.answered", "offered contacts an agent answered"),
    (
        "count.abandoned",
        "offered contacts whose customer left before an answer, short abandons included",
    ),
    (
        "count.short_abandoned",
        "abandons with a wait below the short-abandon threshold",
    ),
    ("count.handled", "contacts whose wrap-up ended"),
    (
        "sl.abandons_in_denominator",
        "answered within the threshold / (answered + abandoned); the default service level",
    ),
    (
        "sl.answered_only",
        "answered within the threshold / answered",
    ),
    (
        "sl.short_abandons_excluded",
        "answered within the threshold / (answered + abandoned - short abandons)",
    ),
    (
        "asa",
        "average speed of answer: total wait of answered contacts / answered, seconds",
    ),
    (
        "aht",
        "average handle time: (talk + hold + wrap-up) / handled, seconds",
    ),
    ("abandon_rate", "abandoned / offered"),
    (
        "abandon_rate.short_abandons_excluded",
        "(abandoned - short abandons) / (offered - short abandons)",
    ),
    (
        "abandon_wait",
        "average wait of abandoned contacts, seconds",
    ),
    (
        "occupancy",
        "agent time on contact or in wrap-up / (staffed - not ready) time; undefined on queue rows",
    ),
    (
        "transfer_rate",
        "contacts transferred by an agent / answered",
    ),
    (
        "overflow_rate",
        "contacts moved to another queue or site / offered",
    ),
    (
        "fcr.no_repeat_within_window",
        "answered contacts of a known customer with no repeat within the window / those whose window has passed",
    ),
    (
        "cost.per_handled_contact",
        "(staffed agent cost + line minutes + per-contact fees) / handled",
    ),
    (
        "erlang_c.service_level",
        "staffing forecast, Erlang C (M/M/c): P(answered within the threshold)",
    ),
    (
        "erlang_c.asa",
        "staffing forecast, Erlang C: mean wait of answered contacts, zero waits included, seconds",
    ),
    (
        "erlang_c.occupancy",
        "staffing forecast, Erlang C: offered load / agents",
    ),
    (
        "erlang_c.prob_wait",
        "staffing forecast, Erlang C: probability an arriving contact has to wait",
    ),
    (
        "erlang_c.offered_load",
        "staffing forecast: arrival rate x AHT, Erlangs",
    ),
    (
        "erlang_a.service_level",
        "with abandonment, Erlang A (M/M/c+M): P(answered within the threshold) over all arrivals",
    ),
    (
        "erlang_a.asa",
        "with abandonment, Erlang A: mean wait of answered contacts, seconds",
    ),
    (
        "erlang_a.abandon_rate",
        "with abandonment, Erlang A: fraction of arrivals that abandon",
    ),
    (
        "erlang_a.occupancy",
        "with abandonment, Erlang A: answered load / agents",
    ),
];

/// Every definition a figure may name — the engine's, then the staffing forecast's —
/// with its version and one line, for `/api/kpi/definitions`.
pub fn definitions() -> Vec<DefinitionInfo> {
    let describe = |id: &str| {
        DESCRIPTIONS
            .iter()
            .find(|(d, _)| *d == id)
            .map_or("see services/kpi/DEFINITIONS.md", |(_, text)| text)
            .to_owned()
    };
    let engine = DEFINITIONS.iter().map(|(id, version)| (*id, *version));
    let staffing = DESCRIPTIONS
        .iter()
        .filter(|(id, _)| id.starts_with("erlang_"))
        .map(|(id, _)| (*id, 1));
    engine
        .chain(staffing)
        .map(|(id, version)| DefinitionInfo {
            id: id.to_owned(),
            version,
            description: describe(id),
        })
        .collect()
}

// === impl Kpi ===

/// A started KPI role without its HTTP listener: what `hotline up` embeds.
pub struct Kpi {
    /// What the routes read.
    state: http::ApiState,
    /// Tells the feed to flush and stop.
    stop: watch::Sender<bool>,
    /// Becomes true when the feed has ended (stopped, or failed).
    ended: watch::Receiver<bool>,
    /// The feed's task.
    feed: JoinHandle<Result<()>>,
    /// The positions the feed has applied up to, per partition.
    progress: watch::Receiver<feed::Positions>,
    /// The log it reads, to know where its end is.
    log: Arc<dyn EventLog>,
}

impl Kpi {
    /// Validates `config`, opens the store, restores the engine from the consumer
    /// group's checkpoint and starts the feed, on the wall clock.
    pub async fn start(config: KpiConfig, log: Arc<dyn EventLog>) -> Result<Kpi> {
        Self::start_with_clock(config, log, Arc::new(SystemClock)).await
    }

    /// The same with another clock (tests, simulations).
    pub async fn start_with_clock(
        config: KpiConfig,
        log: Arc<dyn EventLog>,
        clock: Arc<dyn Clock>,
    ) -> Result<Kpi> {
        config.validate()?;
        config.engine.validate().map_err(KpiError::EngineConfig)?;
        let store = Store::connect(&config.store_url)
            .await?
            .with_config(config.engine.clone());
        let store = Arc::new(store);
        let metrics = Arc::new(metrics::Metrics::new());
        let restored = feed::restore(&config, &store).await?;
        let engine = Arc::new(Mutex::new(restored.engine));
        let (snapshots_tx, snapshots) = watch::channel(Arc::new(Snapshots::default()));
        let (stop, stop_rx) = watch::channel(false);
        let (ended_tx, ended) = watch::channel(false);
        let (progress_tx, progress) = watch::channel(restored.positions.clone());
        let feed_log = log.clone();
        let feed = feed::Feed::start(
            feed::FeedArgs {
                config: config.clone(),
                log: feed_log,
                store: store.clone(),
                engine: engine.clone(),
                floor: restored.positions,
                metrics: metrics.clone(),
                clock: clock.clone(),
                snapshots: snapshots_tx,
                progress: progress_tx,
            },
            stop_rx,
        )
        .await?;
        let task = tokio::spawn(async move {
            let result = feed.run().await;
            let _ = ended_tx.send(true);
            result
        });
        let state = http::ApiState {
            keys: Arc::new(auth::Keys::new(&config.api_keys)),
            snapshots,
            engine,
            engine_config: Arc::new(config.engine.clone()),
            store,
            metrics,
            wallboard: config.wallboard.clone(),
            clock,
        };
        if config.api_keys.is_empty() {
            tracing::warn!("kpi: no [[api_key]] configured; every API request will answer 401");
        }
        Ok(Kpi {
            state,
            stop,
            ended,
            feed: task,
            progress,
            log,
        })
    }

    /// Adds a collector of the embedding process (e.g. the ACD's event publisher) to
    /// `/metrics`, shown to provider keys under `hotline_`.
    pub fn register_collector(&self, collector: Box<dyn prometheus_client::collector::Collector>) {
        self.state.metrics.register_collector(collector);
    }

    /// See [`KpiCloser::drain`].
    pub async fn drain(&self, within: Duration) -> bool {
        self.closer().drain(within).await
    }

    /// The routes: `/api/kpi/…`, `/metrics`, `/wallboard` — no `/healthz`, so that it
    /// merges into a process that has its own (`hotline up`).
    pub fn router(&self) -> axum::Router {
        http::router(self.state.clone())
    }

    /// A handle that starts the shutdown from elsewhere — typically the graceful
    /// shutdown future of the HTTP server the [`Kpi::router`] is merged into, because
    /// open wallboard streams only end once the feed stops:
    ///
    /// ```ignore
    /// let closer = kpi.closer();
    /// axum::serve(listener, app)
    ///     .with_graceful_shutdown(async move { shutdown_signal().await; closer.close() })
    ///     .await?;
    /// kpi.shutdown().await?;
    /// ```
    pub fn closer(&self) -> KpiCloser {
        KpiCloser {
            stop: self.stop.clone(),
            progress: self.progress.clone(),
            log: self.log.clone(),
        }
    }

    /// The latest published snapshots (for `hotline up`'s own status output).
    pub fn snapshots(&self) -> Arc<Snapshots> {
        self.state.snapshots.borrow().clone()
    }

    /// Completes when the feed has ended — after [`Kpi::shutdown`], or on its own when
    /// it failed (then [`Kpi::shutdown`] returns why).
    pub fn ended(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut ended = self.ended.clone();
        async move {
            let _ = ended.wait_for(|e| *e).await;
        }
    }

    /// Flushes what the engine holds, commits offsets and stops the feed; open
    /// wallboard streams end. Returns the feed's error if it had failed.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(true);
        match self.feed.await {
            Ok(result) => result,
            Err(e) => Err(KpiError::Feed(e.to_string())),
        }
    }
}

/// Starts a [`Kpi`]'s shutdown without waiting for it; see [`Kpi::closer`].
#[derive(Clone)]
pub struct KpiCloser {
    stop: watch::Sender<bool>,
    progress: watch::Receiver<feed::Positions>,
    log: Arc<dyn EventLog>,
}

impl std::fmt::Debug for KpiCloser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KpiCloser")
            .field("log", &self.log.kind())
            .finish_non_exhaustive()
    }
}

impl KpiCloser {
    /// Waits until the feed has applied everything the event log held when this was
    /// called (or `within` passed): what a clean shutdown does after the producers
    /// stopped, so the stored figures cover every event in the log. Returns whether it
    /// caught up. Records that were not events (quarantined, duplicates) at the very
    /// end of a partition are not counted as applied, so it may time out on them.
    pub async fn drain(&self, within: Duration) -> bool {
        let Ok(ends) = self.log.end_offsets(topics::EVENTS).await else {
            return false;
        };
        let mut progress = self.progress.clone();
        let caught_up = |at: &feed::Positions| {
            ends.iter().enumerate().all(|(p, end)| {
                *end == 0
                    || at
                        .get(&(topics::EVENTS.to_owned(), p as u32))
                        .is_some_and(|o| o >= end)
            })
        };
        tokio::time::timeout(within, progress.wait_for(|at| caught_up(at)))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Tells the feed to flush and stop; open wallboard streams end right after.
    pub fn close(&self) {
        let _ = self.stop.send(true);
    }
}

/// Runs the KPI role on `listener` until `shutdown` completes (then flushes and
/// returns), or until the feed fails (then returns why).
pub async fn run(
    config: KpiConfig,
    log: Arc<dyn EventLog>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let kpi = Kpi::start(config, log).await?;
    serve(kpi, listener, shutdown).await
}

/// Serves a started [`Kpi`] on `listener` until `shutdown` completes or its feed ends.
pub async fn serve(
    kpi: Kpi,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let ended = kpi.ended();
    let closer = kpi.closer();
    let graceful = async move {
        tokio::select! {
            () = shutdown => {}
            () = ended => {}
        }
        // The feed's last flush drops the snapshot channel, which ends every open
        // stream, so the server's graceful shutdown is not held up by wallboards.
        closer.close();
    };
    let app = kpi
        .router()
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(graceful)
        .await;
    let fed = kpi.shutdown().await;
    served.map_err(KpiError::Serve)?;
    fed
}

#[cfg(test)]
mod tests;
