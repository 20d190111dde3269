//! `/metrics`: what Prometheus scrapes from the KPI role.
//!
//! Two parts, encoded into one OpenMetrics text answer:
//!
//! - **the service's own counters** — events applied, duplicates, quarantined records,
//!   skipped (damaged) records, flushes and their durations, the consumer's lag — kept
//!   in one long-lived registry that the feed updates as it works. They say nothing
//!   about any tenant's traffic, but describe the shared service, so only provider keys
//!   see them.
//! - **the real-time gauges** per tenant, site and queue (waiting, ringing, oldest wait,
//!   agents by state), built at each scrape from the latest published snapshots, so a
//!   queue that disappears from a snapshot disappears from `/metrics` too. A tenant key
//!   sees its own tenant's gauges only.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::Snapshots;
use super::auth::Caller;
use crate::model::AgentsByState;

/// Labels of a per-queue series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    tenant: String,
    site: String,
    queue: String,
}

/// Labels of a per-queue agent count.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueStateLabels {
    tenant: String,
    site: String,
    queue: String,
    state: String,
    reason: String,
}

/// Labels of a per-tenant agent count.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantStateLabels {
    tenant: String,
    state: String,
    reason: String,
}

/// The service's own counters, shared by the feed (which counts) and `/metrics`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Events the engine applied (new to it).
    pub applied: Counter,
    /// Events dropped as already seen (by the consumer or the engine).
    pub duplicates: Counter,
    /// Records that could not be decoded and went to quarantine.
    pub quarantined: Counter,
    /// Damaged stretches of the log stepped over.
    pub skipped: Counter,
    /// Records below the checkpoint's positions, re-read after a restart and dropped.
    pub replayed: Counter,
    /// Flushes that failed (the store was unreachable); the next one retries.
    pub flush_failures: Counter,
    /// How long writing interval rows and the checkpoint took, seconds.
    pub flush_seconds: Histogram,
    /// Records in the log not yet read by this consumer, summed over partitions.
    pub lag: Gauge,
    /// When the last flush succeeded, ms since the epoch (0 before the first).
    pub last_flush_ms: AtomicU64,
    /// Collectors of the process the role is embedded in (the ACD's event publisher in
    /// `hotline up`), shown to provider keys beside the service counters.
    extra: std::sync::Mutex<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh counters, registered under `hotline_kpi_`.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hotline_kpi");
        let applied = Counter::default();
        let duplicates = Counter::default();
        let quarantined = Counter::default();
        let skipped = Counter::default();
        let replayed = Counter::default();
        let flush_failures = Counter::default();
        let flush_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        let lag = Gauge::default();
        registry.register(
            "events_applied",
            "Events the KPI engine applied",
            applied.clone(),
        );
        registry.register(
            "events_duplicate",
            "Events dropped because their id was already seen (delivery is at least once)",
            duplicates.clone(),
        );
        registry.register(
            "events_quarantined",
            "Records that could not be decoded and were quarantined",
            quarantined.clone(),
        );
        registry.register(
            "records_skipped",
            "Damaged stretches of the event log stepped over",
            skipped.clone(),
        );
        registry.register(
            "events_replayed",
            "Records re-read after a restart that the checkpoint already covered, dropped",
            replayed.clone(),
        );
        registry.register(
            "flush_failures",
            "Flushes of interval rows and the checkpoint that failed and will be retried",
            flush_failures.clone(),
        );
        registry.register_with_unit(
            "flush_duration",
            "Time to write interval rows and the checkpoint in one transaction",
            Unit::Seconds,
            flush_seconds.clone(),
        );
        registry.register(
            "consumer_lag_records",
            "Records in the event log this consumer has not read yet, over all partitions",
            lag.clone(),
        );
        Self {
            registry,
            applied,
            duplicates,
            quarantined,
            skipped,
            replayed,
            flush_failures,
            flush_seconds,
            lag,
            last_flush_ms: AtomicU64::new(0),
            extra: std::sync::Mutex::new(Registry::with_prefix("hotline")),
        }
    }

    /// Adds a collector whose series appear (under `hotline_`) to provider keys.
    pub fn register_collector(&self, collector: Box<dyn Collector>) {
        self.extra
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .register_collector(collector);
    }

    /// The OpenMetrics text `caller` may see: the service counters for provider keys,
    /// and the real-time gauges of every tenant the caller may read.
    pub fn render(&self, snapshots: &Snapshots, caller: &Caller) -> String {
        let gauges = realtime_registry(snapshots, caller);
        let mut out = String::new();
        // Writing into a String cannot fail.
        if caller.may_read_everything() {
            let _ = encode_registry(&mut out, &self.registry);
            let _ = encode_registry(
                &mut out,
                &self.extra.lock().unwrap_or_else(|e| e.into_inner()),
            );
        }
        let _ = encode_registry(&mut out, &gauges);
        let _ = encode_eof(&mut out);
        out
    }

    /// When the last flush succeeded, ms since the epoch.
    pub fn last_flush_ms(&self) -> u64 {
        self.last_flush_ms.load(Ordering::Relaxed)
    }
}

/// A one-scrape registry of the real-time gauges.
fn realtime_registry(snapshots: &Snapshots, caller: &Caller) -> Registry {
    let mut registry = Registry::with_prefix("hotline_kpi");
    let waiting = Family::<QueueLabels, Gauge>::default();
    let ringing = Family::<QueueLabels, Gauge>::default();
    let oldest = Family::<QueueLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let queue_agents = Family::<QueueStateLabels, Gauge>::default();
    let tenant_agents = Family::<TenantStateLabels, Gauge>::default();
    for (tenant, snap) in snapshots.tenants.iter().filter(|(t, _)| caller.may_read(t)) {
        for q in &snap.queues {
            let labels = QueueLabels {
                tenant: tenant.clone(),
                site: q.site.clone(),
                queue: q.queue.clone(),
            };
            waiting.get_or_create(&labels).set(i64::from(q.waiting));
            ringing.get_or_create(&labels).set(i64::from(q.ringing));
            oldest
                .get_or_create(&labels)
                .set(q.oldest_wait_ms as f64 / 1000.0);
            for (state, reason, n) in by_state(&q.agents) {
                queue_agents
                    .get_or_create(&QueueStateLabels {
                        tenant: tenant.clone(),
                        site: q.site.clone(),
                        queue: q.queue.clone(),
                        state: state.to_owned(),
                        reason,
                    })
                    .set(i64::from(n));
            }
        }
        for (state, reason, n) in by_state(&snap.agents) {
            tenant_agents
                .get_or_create(&TenantStateLabels {
                    tenant: tenant.clone(),
                    state: state.to_owned(),
                    reason,
                })
                .set(i64::from(n));
        }
    }
    registry.register(
        "queue_waiting",
        "Contacts waiting in the queue now",
        waiting,
    );
    registry.register(
        "queue_ringing",
        "Contacts being offered to an agent now",
        ringing,
    );
    registry.register_with_unit(
        "queue_oldest_wait",
        "How long the oldest waiting contact has waited",
        Unit::Seconds,
        oldest,
    );
    registry.register(
        "queue_agents",
        "Agents who served the queue today, by state now (not_ready by reason)",
        queue_agents,
    );
    registry.register(
        "agents",
        "Agents of the tenant by state now (not_ready by reason)",
        tenant_agents,
    );
    registry
}

/// `(state, reason, count)` for every state, not-ready split by reason.
fn by_state(a: &AgentsByState) -> Vec<(&'static str, String, u32)> {
    let mut out = vec![
        ("ready", String::new(), a.ready),
        ("reserved", String::new(), a.reserved),
        ("on_contact", String::new(), a.on_contact),
        ("wrap_up", String::new(), a.wrap_up),
    ];
    out.extend(
        a.not_ready
            .iter()
            .map(|(reason, n)| ("not_ready", reason.clone(), *n)),
    );
    out
}
