//! The KPI role's HTTP side: the JSON API, `/metrics`, the wallboard page and its
//! server-sent-event stream.
//!
//! Handlers never touch the engine's mutable state for real-time answers: they read
//! the latest [`Snapshots`] the feed publishes through a `watch` channel a few times a
//! second. Interval answers come from the store, merged with the engine's open (not yet
//! flushed) intervals, read under the engine's lock for as long as one query takes.
//!
//! | route | auth | what |
//! | --- | --- | --- |
//! | `GET /api/kpi/realtime[?tenant=]` | bearer | the tenant's [`RealtimeView`]: snapshot + targets |
//! | `GET /api/kpi/intervals?length=&from=&to=&dimension=&id=[&tenant=]` | bearer | interval rows |
//! | `GET /api/kpi/staffing?contacts=&interval_mins=&aht_secs=&sl=&sl_secs=[&patience_secs=]` | bearer | Erlang C staffing |
//! | `GET /api/kpi/definitions` | bearer | every definition with its version |
//! | `GET /api/kpi/stream?tenant=&key=` | bearer or `?key=` | snapshots as server-sent events |
//! | `GET /metrics` | bearer | OpenMetrics text |
//! | `GET /wallboard` | none (the page holds no data) | the live wallboard |
//!
//! [`run`](super::run) adds `GET /healthz`; an embedding process has its own.
//!
//! Errors are JSON `{"error": "…"}`: 401 says what to send, 404 for another tenant's
//! figures (the same answer as for a tenant that does not exist), 400 names the
//! parameter and its value.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::Stream;
use hotline_core::time::Clock;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::Snapshots;
use super::auth::{Caller, Keys};
use super::config::WallboardConfig;
use super::metrics::Metrics;
use crate::engine::{DimensionFilter, Engine, EngineConfig, IntervalQuery};
use crate::erlang::{self, ErlangA};
use crate::model::{
    Dimension, DimensionKind, Figure, IntervalKey, IntervalLength, IntervalRow, RealtimeSnapshot,
};
use crate::store::Store;

/// The wallboard page: one file, inline CSS and JS, no external resources.
const WALLBOARD: &str = include_str!("../../assets/wallboard.html");

/// The most interval rows one query may span per dimension value, so one request
/// cannot make the service build a year of 15-minute rows.
const MAX_INTERVALS: u64 = 5000;

/// Most agents a staffing answer may need before it is refused.
const MAX_STAFFING_AGENTS: u32 = 100_000;

/// What a request did wrong, or what failed while answering it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No key, or an unknown one: 401, saying what to send.
    #[error("{0}")]
    Unauthorized(String),
    /// Another tenant's figures, or a tenant with none: 404.
    #[error("{0}")]
    NotFound(String),
    /// A parameter is missing or has a bad value: 400, naming both.
    #[error("{0}")]
    BadRequest(String),
    /// The store could not answer; retrying later may work: 503.
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    /// A 400 naming the parameter, its value and the rule it broke.
    pub fn bad_param(name: &str, value: &str, problem: impl std::fmt::Display) -> Self {
        ApiError::BadRequest(format!("bad {name}={value:?}: {problem}"))
    }

    /// The 404 for a tenant the caller may not read, or that has no figures.
    pub fn unknown_tenant(tenant: &str) -> Self {
        ApiError::NotFound(format!("no figures for tenant {tenant}"))
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"hotline-kpi\""),
            );
        }
        response
    }
}

// === impl ApiState ===

/// What every handler reads. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    /// Who may read what.
    pub keys: Arc<Keys>,
    /// The latest real-time view of every tenant, published by the feed.
    pub snapshots: watch::Receiver<Arc<Snapshots>>,
    /// The engine, for its open intervals; the feed holds the lock while applying a batch.
    pub engine: Arc<Mutex<Engine>>,
    /// The engine's thresholds (each queue's service-level threshold), read without
    /// the engine's lock.
    pub engine_config: Arc<EngineConfig>,
    /// Flushed interval rows.
    pub store: Arc<Store>,
    /// The service's counters.
    pub metrics: Arc<Metrics>,
    /// Stream period and service-level target.
    pub wallboard: WallboardConfig,
    /// Today's start and the default `to` of interval queries.
    pub clock: Arc<dyn Clock>,
}

/// The KPI role's routes, with their state.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/kpi/realtime", get(realtime))
        .route("/api/kpi/intervals", get(intervals))
        .route("/api/kpi/staffing", get(staffing))
        .route("/api/kpi/definitions", get(definitions))
        .route("/api/kpi/stream", get(stream))
        .route("/metrics", get(metrics))
        .route("/wallboard", get(wallboard))
        .with_state(state)
}

/// A tenant's real-time view with what the wallboard colors it against.
#[derive(Debug, Clone, Serialize)]
pub struct RealtimeView {
    /// The service-level target tiles are colored against (0.8 = 80%).
    pub sl_target: f64,
    /// Per queue, in the snapshot's order: its service-level threshold, seconds.
    pub sl_threshold_secs: Vec<u64>,
    /// The snapshot.
    #[serde(flatten)]
    pub snapshot: RealtimeSnapshot,
}

#[derive(Debug, Deserialize)]
struct TenantParams {
    tenant: Option<String>,
    key: Option<String>,
}

impl ApiState {
    /// The tenant's latest snapshot. A tenant key always gets one (empty before its
    /// first event); a provider naming a tenant without any gets a 404.
    fn snapshot_of(&self, caller: &Caller, asked: Option<&str>) -> Result<RealtimeView, ApiError> {
        let tenant = caller.tenant(asked)?;
        let snapshots = self.snapshots.borrow().clone();
        let snapshot = match snapshots.tenants.get(tenant.as_str()) {
            Some(s) => s.clone(),
            None if !caller.may_read_everything() => RealtimeSnapshot {
                tenant: tenant.to_string(),
                at_ms: self.clock.now().millis(),
                queues: Vec::new(),
                agents: Default::default(),
                agent_list: Vec::new(),
            },
            None => return Err(ApiError::unknown_tenant(tenant.as_str())),
        };
        Ok(view(
            &self.engine_config,
            self.wallboard.sl_target,
            snapshot,
        ))
    }
}

/// A snapshot with the targets it is judged against.
fn view(engine: &EngineConfig, sl_target: f64, snapshot: RealtimeSnapshot) -> RealtimeView {
    let sl_threshold_secs = snapshot
        .queues
        .iter()
        .map(|q| engine.service_level_ms(&snapshot.tenant, &q.queue) / 1000)
        .collect();
    RealtimeView {
        sl_target,
        sl_threshold_secs,
        snapshot,
    }
}

async fn realtime(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(p): Query<TenantParams>,
) -> Result<Json<RealtimeView>, ApiError> {
    let caller = state.keys.caller(&headers, None)?;
    Ok(Json(state.snapshot_of(&caller, p.tenant.as_deref())?))
}

// === intervals ===

/// The query string of `/api/kpi/intervals`, as sent.
#[derive(Debug, Default, Deserialize)]
pub(super) struct IntervalParams {
    pub(super) tenant: Option<String>,
    pub(super) length: Option<String>,
    pub(super) from: Option<String>,
    pub(super) to: Option<String>,
    pub(super) dimension: Option<String>,
    pub(super) id: Option<String>,
}

/// What `/api/kpi/intervals` answers.
#[derive(Debug, Clone, Serialize)]
pub struct IntervalsAnswer {
    /// The tenant.
    pub tenant: String,
    /// `15m`, `1h` or `1d`.
    pub length: &'static str,
    /// The first interval start included, ms since the epoch.
    pub from_ms: u64,
    /// The end (exclusive), ms since the epoch.
    pub to_ms: u64,
    /// The rows, by dimension then start; open intervals come from the engine.
    pub rows: Vec<IntervalRow>,
}

fn parse_ms(name: &str, value: &str) -> Result<u64, ApiError> {
    value
        .parse::<u64>()
        .map_err(|_| ApiError::bad_param(name, value, "must be milliseconds since the Unix epoch"))
}

/// Checks the parameters of an interval query and builds it.
pub(super) fn interval_query(
    tenant: &str,
    p: &IntervalParams,
    now_ms: u64,
) -> Result<IntervalQuery, ApiError> {
    let length = match p.length.as_deref() {
        None => IntervalLength::Min15,
        Some(l) => IntervalLength::parse(l)
            .ok_or_else(|| ApiError::bad_param("length", l, "must be 15m, 1h or 1d"))?,
    };
    let day = IntervalLength::Day.millis();
    let from_ms = match p.from.as_deref() {
        None => now_ms - now_ms % day,
        Some(v) => parse_ms("from", v)?,
    };
    let to_ms = match p.to.as_deref() {
        None => now_ms.max(from_ms) + 1,
        Some(v) => parse_ms("to", v)?,
    };
    if to_ms <= from_ms {
        return Err(ApiError::bad_param(
            "to",
            &to_ms.to_string(),
            format!("must be after from={from_ms}"),
        ));
    }
    if (to_ms - from_ms) / length.millis() > MAX_INTERVALS {
        return Err(ApiError::bad_param(
            "to",
            &to_ms.to_string(),
            format!(
                "spans more than {MAX_INTERVALS} {} intervals from from={from_ms}; use a longer length or a shorter range",
                length.name()
            ),
        ));
    }
    let id = p.id.as_deref().filter(|i| !i.is_empty());
    let dimension = match p.dimension.as_deref() {
        None => None,
        Some(d) => {
            let kind = DimensionKind::parse(d).ok_or_else(|| {
                ApiError::bad_param("dimension", d, "must be tenant, queue, site or agent")
            })?;
            Some(match (kind, id) {
                (DimensionKind::Tenant, _) => DimensionFilter::Is(Dimension::Tenant),
                (kind, Some(id)) => DimensionFilter::Is(Dimension::from_parts(kind, id)),
                (kind, None) => DimensionFilter::Kind(kind),
            })
        }
    };
    if let (Some(i), None | Some(DimensionFilter::Is(Dimension::Tenant))) = (id, &dimension) {
        return Err(ApiError::bad_param(
            "id",
            i,
            "only goes with dimension=queue, site or agent",
        ));
    }
    Ok(IntervalQuery {
        tenant: tenant.to_owned(),
        length,
        from_ms,
        to_ms,
        dimension,
    })
}

async fn intervals(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(p): Query<IntervalParams>,
) -> Result<Json<IntervalsAnswer>, ApiError> {
    let caller = state.keys.caller(&headers, None)?;
    let tenant = caller.tenant(p.tenant.as_deref())?;
    if caller.may_read_everything()
        && !state
            .snapshots
            .borrow()
            .tenants
            .contains_key(tenant.as_str())
    {
        let in_engine = state
            .engine
            .lock()
            .map(|e| e.tenants().iter().any(|t| t == tenant.as_str()))
            .unwrap_or(false);
        let in_store = in_engine
            || state
                .store
                .tenants()
                .await
                .map_err(|e| ApiError::Unavailable(format!("interval store: {e}; retry shortly")))?
                .iter()
                .any(|t| t == tenant.as_str());
        if !in_store {
            return Err(ApiError::unknown_tenant(tenant.as_str()));
        }
    }
    let query = interval_query(tenant.as_str(), &p, state.clock.now().millis())?;
    let stored = state
        .store
        .intervals(&query)
        .await
        .map_err(|e| ApiError::Unavailable(format!("interval store: {e}; retry shortly")))?;
    let open = state
        .engine
        .lock()
        .map(|e| e.intervals(&query))
        .unwrap_or_default();
    // The engine's rows are at least as new as the store's.
    let mut rows: BTreeMap<IntervalKey, IntervalRow> =
        stored.into_iter().map(|r| (r.key.clone(), r)).collect();
    rows.extend(open.into_iter().map(|r| (r.key.clone(), r)));
    Ok(Json(IntervalsAnswer {
        tenant: tenant.to_string(),
        length: query.length.name(),
        from_ms: query.from_ms,
        to_ms: query.to_ms,
        rows: rows.into_values().collect(),
    }))
}

// === staffing ===

#[derive(Debug, Deserialize)]
struct StaffingParams {
    contacts: Option<String>,
    interval_mins: Option<String>,
    aht_secs: Option<String>,
    sl: Option<String>,
    sl_secs: Option<String>,
    patience_secs: Option<String>,
}

/// A number parameter: `default` when absent, else finite and accepted by `ok`.
fn number(
    name: &str,
    value: Option<&str>,
    default: Option<f64>,
    ok: impl Fn(f64) -> bool,
    rule: &str,
) -> Result<f64, ApiError> {
    match (value, default) {
        (None, Some(d)) => Ok(d),
        (None, None) => Err(ApiError::BadRequest(format!("missing {name}: it {rule}"))),
        (Some(v), _) => match v.parse::<f64>() {
            Ok(n) if n.is_finite() && ok(n) => Ok(n),
            _ => Err(ApiError::bad_param(name, v, format!("it {rule}"))),
        },
    }
}

/// What `/api/kpi/staffing` answers.
#[derive(Debug, Clone, Serialize)]
pub struct StaffingAnswer {
    /// Agents needed (Erlang C).
    pub agents: u32,
    /// What that staffing gives, each naming its definition.
    pub figures: Vec<Figure>,
    /// With the patience given: what abandonment (Erlang A) would do at that staffing.
    pub with_abandonment: Option<Vec<Figure>>,
}

fn figure(name: &str, value: f64, definition: &str) -> Figure {
    Figure {
        name: name.to_owned(),
        value: Some(value),
        definition: definition.to_owned(),
        version: 1,
    }
}

async fn staffing(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(p): Query<StaffingParams>,
) -> Result<Json<StaffingAnswer>, ApiError> {
    state.keys.caller(&headers, None)?;
    let contacts = number(
        "contacts",
        p.contacts.as_deref(),
        None,
        |n| n >= 0.0,
        "is the contacts forecast for the interval, 0 or more",
    )?;
    let interval_mins = number(
        "interval_mins",
        p.interval_mins.as_deref(),
        Some(30.0),
        |n| n > 0.0,
        "is the interval's length in minutes, above 0",
    )?;
    let aht_secs = number(
        "aht_secs",
        p.aht_secs.as_deref(),
        None,
        |n| n > 0.0,
        "is the average handle time in seconds, above 0",
    )?;
    let sl = number(
        "sl",
        p.sl.as_deref(),
        Some(0.8),
        |n| (0.0..=1.0).contains(&n),
        "is the service-level target, a fraction between 0 and 1 (0.8 means 80%)",
    )?;
    let sl_secs = number(
        "sl_secs",
        p.sl_secs.as_deref(),
        Some(20.0),
        |n| n >= 0.0,
        "is the service-level threshold in seconds, 0 or more",
    )?;
    let patience = match p.patience_secs.as_deref() {
        None => None,
        Some(v) => Some(number(
            "patience_secs",
            Some(v),
            None,
            |n| n > 0.0,
            "is the mean patience in seconds, above 0",
        )?),
    };
    let rate = contacts / (interval_mins * 60.0);
    let (agents, f) = erlang::staffing(rate, aht_secs, sl, sl_secs, MAX_STAFFING_AGENTS)
        .map_err(|e| ApiError::BadRequest(format!("{e}; check the forecast")))?;
    let figures = vec![
        figure("service_level", f.service_level, "erlang_c.service_level"),
        figure("asa_secs", f.asa_secs, "erlang_c.asa"),
        figure("occupancy", f.occupancy, "erlang_c.occupancy"),
        figure("prob_wait", f.prob_wait, "erlang_c.prob_wait"),
        figure(
            "offered_load_erlangs",
            f.offered_load_erlangs,
            "erlang_c.offered_load",
        ),
    ];
    let with_abandonment = match patience {
        None => None,
        Some(patience_secs) => {
            let w = ErlangA {
                arrival_rate: rate,
                handle_time_secs: aht_secs,
                patience_secs,
                agents,
                threshold_secs: sl_secs,
            }
            .figures()
            .map_err(|e| ApiError::bad_param("patience_secs", &patience_secs.to_string(), e))?;
            Some(vec![
                figure("service_level", w.service_level, "erlang_a.service_level"),
                figure("asa_secs", w.asa_secs, "erlang_a.asa"),
                figure("abandon_rate", w.abandon_rate, "erlang_a.abandon_rate"),
                figure("occupancy", w.occupancy, "erlang_a.occupancy"),
            ])
        }
    };
    Ok(Json(StaffingAnswer {
        agents,
        figures,
        with_abandonment,
    }))
}

// === definitions ===

/// One definition a figure may name.
#[derive(Debug, Clone, Serialize)]
pub struct DefinitionInfo {
    /// Its id, as figures name it.
    pub id: String,
    /// Its version.
    pub version: u32,
    /// What it computes, in one line.
    pub description: String,
}

async fn definitions(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<Vec<DefinitionInfo>>, ApiError> {
    state.keys.caller(&headers, None)?;
    Ok(Json(super::definitions()))
}

// === metrics, page, stream ===

async fn metrics(State(state): State<ApiState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = state.keys.caller(&headers, None)?;
    let snapshots = state.snapshots.borrow().clone();
    let body = state.metrics.render(&snapshots, &caller);
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

async fn wallboard() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], Html(WALLBOARD))
}

/// The stream's state between events.
struct StreamState {
    rx: watch::Receiver<Arc<Snapshots>>,
    tenant: String,
    first: bool,
    period: Duration,
    sl_target: f64,
    engine: Arc<EngineConfig>,
}

impl StreamState {
    fn event(&self) -> SseEvent {
        let snapshots = self.rx.borrow().clone();
        let snapshot = snapshots
            .tenants
            .get(&self.tenant)
            .cloned()
            .unwrap_or_else(|| RealtimeSnapshot {
                tenant: self.tenant.clone(),
                at_ms: snapshots.at_ms,
                queues: Vec::new(),
                agents: Default::default(),
                agent_list: Vec::new(),
            });
        let view = view(&self.engine, self.sl_target, snapshot);
        let event = SseEvent::default().event("snapshot");
        match event.clone().json_data(&view) {
            Ok(e) => e,
            Err(_) => event.data("{}"),
        }
    }
}

async fn stream(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(p): Query<TenantParams>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let caller = state.keys.caller(&headers, p.key.as_deref())?;
    // Refuses what /api/kpi/realtime refuses, before the stream starts.
    let view = state.snapshot_of(&caller, p.tenant.as_deref())?;
    let mut rx = state.snapshots.clone();
    rx.mark_unchanged();
    let start = StreamState {
        rx,
        tenant: view.snapshot.tenant,
        first: true,
        period: Duration::from_millis(state.wallboard.refresh_ms),
        sl_target: state.wallboard.sl_target,
        engine: state.engine_config.clone(),
    };
    let events = futures::stream::unfold(start, |mut s| async move {
        if s.first {
            s.first = false;
            // Tells the browser to reconnect a second after a drop.
            let event = s.event().retry(Duration::from_millis(1000));
            return Some((Ok(event), s));
        }
        // On change, or after a period without one; ends when the service stops.
        match tokio::time::timeout(s.period, s.rx.changed()).await {
            Ok(Err(_)) => None,
            Ok(Ok(())) | Err(_) => Some((Ok(s.event()), s)),
        }
    });
    Ok(Sse::new(events))
}
