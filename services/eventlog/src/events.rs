//! The consumer side for services (KPI, CRM, KB): records in, domain events out.
//!
//! ```text
//! Consumer::poll ──▶ decode_event ──▶ dedupe by event id ──▶ (Position, Event) to the service
//!                       │                   └─ duplicate: counted, dropped
//!                       └─ undecodable, unknown schema version, or Skipped damage:
//!                          warn with topic/partition/offset, count, write a JSON
//!                          envelope to the quarantine topic — and go on
//! ```
//!
//! Nothing a record holds can stall an [`EventConsumer`]: a bad record is quarantined
//! and the next valid event is still delivered. Records the consumer disposed of itself
//! (quarantined, duplicates) are committed by [`EventConsumer::commit_through`] once
//! everything delivered before them in their partition is committed.
//!
//! Deduplication holds event ids in memory for a horizon measured by the ids' own
//! timestamps (event ids are UUID v7: their top 48 bits are milliseconds since the
//! epoch). An id older than the newest seen minus the horizon is forgotten; one that
//! arrives that late is delivered (consumers are idempotent anyway; this only spares
//! them the common case: a publisher's retry or a redelivery after a rebalance). The
//! memory is also capped at [`EventConsumerConfig::dedupe_max_ids`] ids (about 50
//! bytes each). A restarted process starts with an empty memory.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hotline_core::event::Event;
use hotline_core::sharded::ShardedMap;
use serde::Serialize;

use crate::log::{
    Consumer, ConsumerConfig, EventLog, Message, Offset, Partition, Poll, Producer, Record, Result,
    Skipped,
};
use crate::topics;

/// Encodes `event` as the message the log carries: keyed by [`Event::key`] so order
/// holds per contact or agent, the protobuf encoding as value, its time as timestamp.
pub fn message_for(event: &Event) -> Message {
    Message {
        key: event.key().into_bytes(),
        value: hotline_proto::encode_event(event),
        timestamp_ms: event.at.millis() as i64,
    }
}

/// Where a delivered event was in the log; hand it back to
/// [`EventConsumer::commit_through`] once processed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: Partition,
    /// The record's offset.
    pub offset: Offset,
}

/// Counters a service exposes on `/metrics`; shared, so read them from anywhere.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Events delivered to the service.
    pub delivered_total: AtomicU64,
    /// Records that could not be decoded (or had an unknown schema version).
    pub quarantined_total: AtomicU64,
    /// Damaged stretches of the log stepped over (reported by the log as `Skipped`).
    pub skipped_total: AtomicU64,
    /// Events dropped because their id was delivered before.
    pub duplicates_total: AtomicU64,
    /// Quarantine envelopes that could not be written (the damage is still logged).
    pub quarantine_errors_total: AtomicU64,
}

impl ConsumerStats {
    fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// How an [`EventConsumer`] behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventConsumerConfig {
    /// How long (by the ids' timestamps) an event id is remembered for deduplication.
    pub dedupe_horizon: Duration,
    /// The most ids remembered at once, whatever the horizon.
    pub dedupe_max_ids: usize,
    /// Where undecodable records go.
    pub quarantine_topic: String,
}

impl Default for EventConsumerConfig {
    fn default() -> Self {
        Self {
            dedupe_horizon: Duration::from_secs(10 * 60),
            dedupe_max_ids: 1_000_000,
            quarantine_topic: topics::QUARANTINE.to_string(),
        }
    }
}

/// What goes to the quarantine topic, as JSON.
#[derive(Debug, Serialize)]
struct Envelope<'a> {
    source_topic: &'a str,
    partition: Partition,
    offset: Offset,
    /// Why it could not be delivered.
    error: String,
    /// For damage: where in the log it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_hex: Option<String>,
    /// The record's value, hex-encoded (absent for damage: there is no value).
    #[serde(skip_serializing_if = "Option::is_none")]
    value_hex: Option<String>,
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The most ids [`Dedupe`]'s order queue reserves room for up front (64 MB).
const ORDER_PREALLOCATED: usize = 4 << 20;

/// Event ids seen recently, bounded by a horizon and a count.
#[derive(Debug)]
struct Dedupe {
    horizon_ms: u64,
    max_ids: usize,
    /// Sharded: at a million ids, one map's growth stalled delivery for 100+ ms.
    seen: ShardedMap<u128, ()>,
    /// Ids in the order first seen, for forgetting (an id's top 48 bits are its time).
    /// Allocated at its full size up front (up to [`ORDER_PREALLOCATED`]): a deque
    /// grows by copying every entry, 16 MB at a million ids. Pages not yet written
    /// are not resident, so the reservation costs memory only as ids arrive.
    order: VecDeque<u128>,
    newest_ms: u64,
}

impl Dedupe {
    fn new(horizon: Duration, max_ids: usize) -> Self {
        Self {
            horizon_ms: horizon.as_millis() as u64,
            max_ids: max_ids.max(1),
            seen: ShardedMap::new(),
            order: VecDeque::with_capacity(max_ids.clamp(1, ORDER_PREALLOCATED) + 1),
            newest_ms: 0,
        }
    }

    /// Whether `id` is new (and remembers it); `false` for a duplicate.
    fn first_time(&mut self, id: u128) -> bool {
        let ms = (id >> 80) as u64;
        let cutoff = self.newest_ms.saturating_sub(self.horizon_ms);
        if ms < cutoff {
            // Older than anything remembered: cannot judge, so deliver.
            return true;
        }
        if self.seen.insert(id, ()).is_some() {
            return false;
        }
        self.newest_ms = self.newest_ms.max(ms);
        self.order.push_back(id);
        let cutoff = self.newest_ms.saturating_sub(self.horizon_ms);
        while let Some(&old) = self.order.front() {
            if (old >> 80) as u64 >= cutoff && self.order.len() <= self.max_ids {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&old);
        }
        true
    }
}

/// What the consumer knows of one partition, to commit what it disposed of itself.
#[derive(Debug, Default, Clone, Copy)]
struct PartState {
    /// The highest offset delivered to the service.
    delivered: Option<Offset>,
    /// The highest offset quarantined or dropped as a duplicate.
    disposed: Option<Offset>,
    /// The highest offset the service committed through.
    committed: Option<Offset>,
    /// The next offset last committed to the log.
    sent: Option<Offset>,
}

/// Reads events for a service: decodes, drops duplicates, quarantines the rest.
pub struct EventConsumer {
    consumer: Box<dyn Consumer>,
    quarantine: Box<dyn Producer>,
    config: EventConsumerConfig,
    stats: Arc<ConsumerStats>,
    dedupe: Dedupe,
    parts: HashMap<(String, Partition), PartState>,
    /// Events decoded but not yet handed out (kept across a cancelled call).
    ready: Vec<(Position, Event)>,
    /// Quarantine envelopes not yet written (kept across a cancelled call).
    envelopes: Vec<Message>,
}

impl std::fmt::Debug for EventConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventConsumer")
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl EventConsumer {
    /// Wraps `consumer`; undecodable records go through `quarantine`.
    pub fn new(
        consumer: Box<dyn Consumer>,
        quarantine: Box<dyn Producer>,
        config: EventConsumerConfig,
    ) -> Self {
        let dedupe = Dedupe::new(config.dedupe_horizon, config.dedupe_max_ids);
        Self {
            consumer,
            quarantine,
            config,
            stats: Arc::new(ConsumerStats::default()),
            dedupe,
            parts: HashMap::new(),
            ready: Vec::new(),
            envelopes: Vec::new(),
        }
    }

    /// A consumer of `log` as `consumer` says, quarantining into the same log.
    pub async fn open(
        log: &dyn EventLog,
        consumer: ConsumerConfig,
        config: EventConsumerConfig,
    ) -> Result<Self> {
        let c = log.consumer(consumer).await?;
        let producer = log.producer()?;
        Ok(Self::new(c, producer, config))
    }

    /// The counters, to expose on `/metrics`.
    pub fn stats(&self) -> Arc<ConsumerStats> {
        self.stats.clone()
    }

    /// Up to `max` records' worth of events, waiting up to `wait` for the first.
    /// Duplicates are dropped and bad records quarantined, so fewer than `max` events
    /// (even none) may come back while the log has more. Cancel-safe (fit for
    /// `tokio::select!`) as far as the wrapped consumer's `poll` is.
    pub async fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<(Position, Event)>> {
        // Cancel safety: what a poll returned is kept in `self` until handed out, so a
        // `select!` that drops this future loses nothing; the next call hands it out.
        if self.ready.is_empty() && self.envelopes.is_empty() {
            let poll = self.consumer.poll(max, wait).await?;
            self.sort(poll);
        }
        if !self.envelopes.is_empty() {
            let count = self.envelopes.len();
            let sent = self
                .quarantine
                .send(&self.config.quarantine_topic, self.envelopes.clone())
                .await;
            self.envelopes.clear();
            if let Err(e) = sent {
                ConsumerStats::add(&self.stats.quarantine_errors_total, count as u64);
                tracing::error!(
                    topic = %self.config.quarantine_topic, error = %e, count,
                    "could not write to the quarantine topic; the records are logged above"
                );
            }
        }
        let events = std::mem::take(&mut self.ready);
        ConsumerStats::add(&self.stats.delivered_total, events.len() as u64);
        Ok(events)
    }

    /// Decodes a poll's records into `ready`, dropping duplicates and turning what
    /// cannot be delivered into quarantine envelopes.
    fn sort(&mut self, poll: Poll) {
        let (mut quarantined, mut duplicates) = (0, 0);
        for damage in &poll.skipped {
            let envelope = self.quarantine_damage(damage);
            self.envelopes.push(envelope);
        }
        for record in poll.records {
            let state = self
                .parts
                .entry((record.topic.clone(), record.partition))
                .or_default();
            match hotline_proto::decode_event(&record.value) {
                Ok(event) => {
                    if self.dedupe.first_time(event.id.as_u128()) {
                        state.delivered = Some(record.offset);
                        self.ready.push((
                            Position {
                                topic: record.topic,
                                partition: record.partition,
                                offset: record.offset,
                            },
                            event,
                        ));
                    } else {
                        tracing::debug!(
                            topic = %record.topic, partition = record.partition,
                            offset = record.offset, event = %event.id,
                            "duplicate event dropped"
                        );
                        state.disposed = Some(record.offset);
                        duplicates += 1;
                    }
                }
                Err(e) => {
                    state.disposed = Some(record.offset);
                    quarantined += 1;
                    self.envelopes
                        .push(quarantine_record(&record, &e.to_string()));
                }
            }
        }
        ConsumerStats::add(&self.stats.quarantined_total, quarantined);
        ConsumerStats::add(&self.stats.duplicates_total, duplicates);
        ConsumerStats::add(&self.stats.skipped_total, poll.skipped.len() as u64);
    }

    fn quarantine_damage(&self, damage: &Skipped) -> Message {
        tracing::warn!(
            topic = %damage.topic, partition = damage.partition, offset = damage.offset,
            location = %damage.location, reason = %damage.reason,
            "damaged records skipped in the event log; quarantined"
        );
        let envelope = Envelope {
            source_topic: &damage.topic,
            partition: damage.partition,
            offset: damage.offset,
            error: damage.reason.clone(),
            location: Some(&damage.location),
            timestamp_ms: None,
            key_hex: None,
            value_hex: None,
        };
        envelope_message(&envelope, now_ms())
    }

    /// Commits everything up to and including `positions` (per partition, the highest
    /// given), and with it whatever this consumer quarantined or dropped after the last
    /// event delivered in that partition once that event is committed. An empty slice
    /// commits only the latter.
    pub async fn commit_through(&mut self, positions: &[Position]) -> Result<()> {
        self.commit_positions(positions, true).await
    }

    /// Like [`EventConsumer::commit_through`], without waiting for the commit to be
    /// stored ([`Consumer::start_commit`]): for a consume loop that commits as it goes
    /// and must not stall on the disk or a broker round trip.
    pub async fn start_commit_through(&mut self, positions: &[Position]) -> Result<()> {
        self.commit_positions(positions, false).await
    }

    async fn commit_positions(&mut self, positions: &[Position], wait: bool) -> Result<()> {
        for p in positions {
            let state = self
                .parts
                .entry((p.topic.clone(), p.partition))
                .or_default();
            state.committed = Some(state.committed.map_or(p.offset, |c| c.max(p.offset)));
        }
        let mut commits = Vec::new();
        for ((topic, partition), state) in self.parts.iter_mut() {
            let caught_up = match (state.delivered, state.committed) {
                (None, _) => true,
                (Some(d), Some(c)) => c >= d,
                (Some(_), None) => false,
            };
            let through = if caught_up {
                state.committed.max(state.disposed)
            } else {
                state.committed
            };
            let Some(through) = through else { continue };
            let next = through + 1;
            if state.sent.is_none_or(|s| next > s) {
                commits.push((topic.clone(), *partition, next));
            }
        }
        if commits.is_empty() {
            return Ok(());
        }
        if wait {
            self.consumer.commit(&commits).await?;
        } else {
            self.consumer.start_commit(&commits).await?;
        }
        for (topic, partition, next) in commits {
            if let Some(state) = self.parts.get_mut(&(topic, partition)) {
                state.sent = Some(next);
            }
        }
        Ok(())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn quarantine_record(record: &Record, error: &str) -> Message {
    tracing::warn!(
        topic = %record.topic, partition = record.partition, offset = record.offset,
        error, "undecodable event quarantined"
    );
    let envelope = Envelope {
        source_topic: &record.topic,
        partition: record.partition,
        offset: record.offset,
        error: error.to_string(),
        location: None,
        timestamp_ms: Some(record.timestamp_ms),
        key_hex: Some(hex(&record.key)),
        value_hex: Some(hex(&record.value)),
    };
    envelope_message(&envelope, now_ms())
}

fn envelope_message(envelope: &Envelope<'_>, now_ms: i64) -> Message {
    Message {
        key: format!(
            "{}/{}/{}",
            envelope.source_topic, envelope.partition, envelope.offset
        )
        .into_bytes(),
        // Serialising a struct of strings and numbers cannot fail.
        value: serde_json::to_vec(envelope).unwrap_or_default(),
        timestamp_ms: now_ms,
    }
}

#[cfg(test)]
mod tests;
