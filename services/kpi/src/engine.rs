//! The KPI engine: events in, real-time state and interval counters out.
//!
//! Pure: no I/O and no clock. Time comes from the events themselves and, for the
//! real-time view, from an explicit `now_ms`. The same code runs live (fed by the
//! service's consumer) and in `hotline kpi replay` (fed from the start of the log).
//!
//! # Data flow
//!
//! ```text
//! Event ──apply──▶ dedupe (event id, per tenant, bounded by a horizon)
//!                    └──▶ TenantState: open contacts, agent states, FCR cases
//!                           └──counters──▶ interval rows (15m, 1h, 1d × tenant, queue, site, agent)
//! rows ──take_dirty──▶ store        state ──checkpoint──▶ store (same transaction)
//! rows ──figures──▶ model::Figure (each names its definition, DEFINITIONS.md)
//! ```
//!
//! # Replay exactness
//!
//! The log keeps order per key (one contact, one agent) but not across keys. Every
//! counter is a sum of contributions that depend only on one key's events, except
//! first-contact resolution, which links contacts of one customer: its decisions are
//! revised when a late repeat arrives, and taken against the tenant's watermark (the
//! newest event time seen), which after the same set of events is the same in any
//! order. So the final state is identical for every interleaving — as long as no event
//! comes later than the dedupe horizon, and (live) no contribution falls in a pruned
//! interval; replay keeps everything ([`EngineConfig::keep_days`] = 0).
//!
//! Every state is kept per tenant, so one tenant's events never change another's figures.

mod figures;
mod rows;
mod state;

use std::collections::BTreeMap;

use hotline_core::event::Event;
use serde::{Deserialize, Serialize};

use crate::model::{Dimension, DimensionKind, IntervalKey, IntervalLength, IntervalRow};

pub use figures::{DEFINITIONS, FigureContext, figures};
use state::TenantState;

/// One day in milliseconds.
const DAY_MS: u64 = 24 * 3600 * 1000;

// === EngineConfig ===

/// How the engine counts: thresholds, windows, horizons and costs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Service-level threshold T in seconds: an answer with a wait of at most T meets
    /// the target. Queues without an override use it.
    pub service_level_secs: u32,
    /// Per (tenant, queue) thresholds, for queues whose target differs.
    pub service_level_overrides: Vec<ServiceLevelOverride>,
    /// Abandons with a wait strictly below this many seconds are short abandons
    /// (misdials, instant hang-ups), which some definitions leave out.
    pub short_abandon_secs: u32,
    /// First-contact resolution window: an answered contact is resolved when its
    /// customer does not come back within this many seconds of its arrival.
    pub fcr_window_secs: u64,
    /// How long event ids are remembered to drop duplicates, and how late an event may
    /// come and still revise first-contact decisions; seconds of event time.
    pub dedupe_horizon_secs: u64,
    /// How many UTC days of interval rows stay in memory (today counts as one); older
    /// rows are pruned after they were taken by [`Engine::take_dirty`] and late
    /// contributions to them are dropped (counted in [`EngineStats::late_dropped`]).
    /// 0 keeps everything: what a replay uses.
    pub keep_days: u32,
    /// Cost models per tenant; a tenant without one has no cost per contact.
    pub costs: BTreeMap<String, CostModel>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            service_level_secs: 20,
            service_level_overrides: Vec::new(),
            short_abandon_secs: 5,
            fcr_window_secs: 86_400,
            dedupe_horizon_secs: 3_600,
            keep_days: 2,
            costs: BTreeMap::new(),
        }
    }
}

impl EngineConfig {
    /// Checks every field; the error names the field and the value.
    pub fn validate(&self) -> Result<(), String> {
        if self.service_level_secs == 0 {
            return Err("service_level_secs must be at least 1, got 0".into());
        }
        for (i, o) in self.service_level_overrides.iter().enumerate() {
            if o.tenant.is_empty() || o.queue.is_empty() {
                return Err(format!(
                    "service_level_overrides[{i}] needs a tenant and a queue, got tenant {:?} queue {:?}",
                    o.tenant, o.queue
                ));
            }
            if o.secs == 0 {
                return Err(format!(
                    "service_level_overrides[{i}].secs (tenant {:?}, queue {:?}) must be at least 1, got 0",
                    o.tenant, o.queue
                ));
            }
        }
        if self.fcr_window_secs == 0 {
            return Err("fcr_window_secs must be at least 1, got 0".into());
        }
        if self.dedupe_horizon_secs == 0 {
            return Err("dedupe_horizon_secs must be at least 1, got 0".into());
        }
        for (tenant, c) in &self.costs {
            for (field, v) in [
                ("agent_cost_per_staffed_hour", c.agent_cost_per_staffed_hour),
                ("voice_cost_per_talk_minute", c.voice_cost_per_talk_minute),
                ("cost_per_handled_contact", c.cost_per_handled_contact),
            ] {
                if !v.is_finite() || v < 0.0 {
                    return Err(format!(
                        "costs.{tenant}.{field} must be a finite number >= 0, got {v}"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The same configuration keeping every interval in memory, for a replay.
    pub fn for_replay(mut self) -> Self {
        self.keep_days = 0;
        self
    }

    /// The service-level threshold of `queue` in `tenant`, in milliseconds.
    pub fn service_level_ms(&self, tenant: &str, queue: &str) -> u64 {
        self.service_level_overrides
            .iter()
            .find(|o| o.tenant == tenant && o.queue == queue)
            .map_or(self.service_level_secs, |o| o.secs) as u64
            * 1000
    }
}

/// A service-level threshold for one queue of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceLevelOverride {
    /// The tenant.
    pub tenant: String,
    /// The queue.
    pub queue: String,
    /// Its threshold, seconds.
    pub secs: u32,
}

/// What handling contacts costs a tenant; all zero (the default) leaves cost per
/// contact undefined rather than claiming it is free.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CostModel {
    /// Cost of one agent logged in for one hour (salary, seat, licences).
    pub agent_cost_per_staffed_hour: f64,
    /// Cost of one minute of line time (talk, hold included).
    pub voice_cost_per_talk_minute: f64,
    /// A fixed cost per handled contact (e.g. per-contact fees).
    pub cost_per_handled_contact: f64,
}

impl CostModel {
    /// Whether every rate is zero (no cost model).
    pub fn is_zero(&self) -> bool {
        self.agent_cost_per_staffed_hour == 0.0
            && self.voice_cost_per_talk_minute == 0.0
            && self.cost_per_handled_contact == 0.0
    }
}

// === IntervalQuery ===

/// Which interval rows: one tenant, one length, a time range, optionally a dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalQuery {
    /// The tenant (every query is within one).
    pub tenant: String,
    /// The interval length.
    pub length: IntervalLength,
    /// Rows starting at or after this, ms since the epoch.
    pub from_ms: u64,
    /// Rows starting before this, ms since the epoch.
    pub to_ms: u64,
    /// Only these rows; `None` for every dimension.
    pub dimension: Option<DimensionFilter>,
}

/// Which dimensions an [`IntervalQuery`] selects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DimensionFilter {
    /// Every row of this kind (every queue, every agent, …).
    Kind(DimensionKind),
    /// Exactly this one.
    Is(Dimension),
}

impl DimensionFilter {
    /// Whether `dimension` is selected.
    pub fn matches(&self, dimension: &Dimension) -> bool {
        match self {
            DimensionFilter::Kind(k) => dimension.kind() == *k,
            DimensionFilter::Is(d) => d == dimension,
        }
    }
}

impl IntervalQuery {
    /// Whether the row `key` answers this query.
    pub fn matches(&self, key: &IntervalKey) -> bool {
        key.tenant == self.tenant
            && key.length == self.length
            && key.start_ms >= self.from_ms
            && key.start_ms < self.to_ms
            && self
                .dimension
                .as_ref()
                .is_none_or(|f| f.matches(&key.dimension))
    }
}

// === Errors and stats ===

/// A checkpoint could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The bytes are not a checkpoint this engine wrote.
    #[error("engine checkpoint of {len} bytes is not readable: {source}")]
    Unreadable {
        /// Its size.
        len: usize,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// It was written by a different engine version.
    #[error("engine checkpoint has format version {found}, this engine reads version {expected}")]
    Version {
        /// What it says.
        found: u32,
        /// What this engine reads.
        expected: u32,
    },
}

/// What the engine did, for `/metrics` and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineStats {
    /// Events applied (duplicates excluded).
    pub applied: u64,
    /// Events dropped as duplicates of an event id seen within the horizon.
    pub duplicates: u64,
    /// Contributions dropped because their interval was already pruned from memory.
    pub late_dropped: u64,
}

// === Engine ===

const CHECKPOINT_VERSION: u32 = 1;

/// The KPI engine: see the module docs.
#[derive(Debug)]
pub struct Engine {
    /// How to count.
    config: EngineConfig,
    /// Everything per tenant, so tenants never mix.
    tenants: BTreeMap<String, TenantState>,
    /// What happened so far.
    stats: EngineStats,
}

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    version: u32,
    stats: EngineStats,
    tenants: BTreeMap<String, TenantState>,
}

impl Engine {
    /// An empty engine.
    pub fn new(config: EngineConfig) -> Engine {
        Engine {
            config,
            tenants: BTreeMap::new(),
            stats: EngineStats::default(),
        }
    }

    /// An engine resumed from [`Engine::checkpoint`]'s bytes, counting with `config`.
    pub fn restore(config: EngineConfig, bytes: &[u8]) -> Result<Engine, CheckpointError> {
        let cp: Checkpoint =
            serde_json::from_slice(bytes).map_err(|source| CheckpointError::Unreadable {
                len: bytes.len(),
                source,
            })?;
        if cp.version != CHECKPOINT_VERSION {
            return Err(CheckpointError::Version {
                found: cp.version,
                expected: CHECKPOINT_VERSION,
            });
        }
        let mut tenants = cp.tenants;
        for state in tenants.values_mut() {
            state.restored();
        }
        Ok(Engine {
            config,
            tenants,
            stats: cp.stats,
        })
    }

    /// The whole state (open contacts, agent states, FCR cases, recent event ids and the
    /// in-memory rows), to store in the same transaction as the rows taken by
    /// [`Engine::take_dirty`] just before. Deterministic: the same state gives the same
    /// bytes.
    pub fn checkpoint(&self) -> Vec<u8> {
        let cp = CheckpointRef {
            version: CHECKPOINT_VERSION,
            stats: self.stats,
            tenants: &self.tenants,
        };
        serde_json::to_vec(&cp).unwrap_or_default()
    }

    /// The configuration it counts with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// What it did so far.
    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// Applies one event. Returns false, changing nothing, if the event's id was
    /// already applied (within the dedupe horizon).
    pub fn apply(&mut self, event: &Event) -> bool {
        let tenant = self
            .tenants
            .entry(event.tenant.as_str().to_owned())
            .or_default();
        match tenant.apply(&self.config, event) {
            Some(late) => {
                self.stats.applied += 1;
                self.stats.late_dropped += late;
                true
            }
            None => {
                self.stats.duplicates += 1;
                false
            }
        }
    }

    /// Every tenant seen, sorted.
    pub fn tenants(&self) -> Vec<String> {
        self.tenants.keys().cloned().collect()
    }

    /// The tenant's real-time view at `now_ms`, or `None` for a tenant never seen.
    pub fn realtime(&self, tenant: &str, now_ms: u64) -> Option<crate::model::RealtimeSnapshot> {
        let state = self.tenants.get(tenant)?;
        Some(state.realtime(&self.config, tenant, now_ms))
    }

    /// The rows in memory that answer `q`, sorted by dimension then start, figures
    /// filled.
    pub fn intervals(&self, q: &IntervalQuery) -> Vec<IntervalRow> {
        let Some(state) = self.tenants.get(&q.tenant) else {
            return Vec::new();
        };
        let ctx = FigureContext::for_tenant(&self.config, &q.tenant);
        state
            .rows
            .matching(q.length, q.from_ms, q.to_ms, |dim| {
                q.dimension.as_ref().is_none_or(|f| f.matches(dim))
            })
            .into_iter()
            .map(|(dim, start, c)| {
                row(
                    &ctx,
                    IntervalKey {
                        tenant: q.tenant.clone(),
                        dimension: dim.clone(),
                        length: q.length,
                        start_ms: start,
                    },
                    c,
                )
            })
            .collect()
    }

    /// The rows changed since the last call, with their absolute counters (so writing
    /// one twice is harmless), sorted by key. Then prunes rows older than
    /// [`EngineConfig::keep_days`] from memory.
    pub fn take_dirty(&mut self) -> Vec<IntervalRow> {
        let mut out = Vec::new();
        for (name, state) in &mut self.tenants {
            let ctx = FigureContext::for_tenant(&self.config, name);
            for ((dim, len, start), c) in state.rows.take_dirty() {
                out.push(row(
                    &ctx,
                    IntervalKey {
                        tenant: name.clone(),
                        dimension: dim,
                        length: len,
                        start_ms: start,
                    },
                    &c,
                ));
            }
            if self.config.keep_days > 0 {
                let today = state.watermark_ms / DAY_MS * DAY_MS;
                let cutoff = today.saturating_sub(u64::from(self.config.keep_days - 1) * DAY_MS);
                state.prune_rows(cutoff);
            }
        }
        out
    }
}

#[derive(Serialize)]
struct CheckpointRef<'a> {
    version: u32,
    stats: EngineStats,
    tenants: &'a BTreeMap<String, TenantState>,
}

fn row(ctx: &FigureContext<'_>, key: IntervalKey, c: &crate::model::Counters) -> IntervalRow {
    IntervalRow {
        figures: figures(c, &ctx.with_dimension(&key.dimension)),
        counters: c.clone(),
        key,
    }
}

/// The start of the interval of `length` containing `t_ms`.
pub fn interval_start(length: IntervalLength, t_ms: u64) -> u64 {
    t_ms / length.millis() * length.millis()
}

/// Keys of rows, within one tenant.
type RowKey = (Dimension, IntervalLength, u64);

#[cfg(test)]
mod tests;
