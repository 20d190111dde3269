//! The feed: the one task that reads the event log and writes the engine.
//!
//! It polls the log, applies each event to the engine, and every flush interval takes
//! the rows the engine changed and its checkpoint and saves both, with the positions
//! they cover, in one store transaction — and only then commits the consumer offsets.
//! A few times a second it publishes every tenant's real-time snapshot on a `watch`
//! channel, which the HTTP side reads without touching the engine.
//!
//! Rows taken from the engine but not saved (the store was away) are kept and saved
//! with the next flush, so a store outage delays figures but loses none.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotline_core::time::Clock;
use hotline_eventlog::events::{ConsumerStats, EventConsumer, EventConsumerConfig, Position};
use hotline_eventlog::{ConsumerConfig, EventLog, topics};
use tokio::time::Instant;

use super::metrics::Metrics;
use super::{KpiConfig, KpiError, Result, Snapshots};
use crate::engine::Engine;
use crate::model::{IntervalKey, IntervalRow};
use crate::store::Store;

/// Records per poll.
const BATCH: usize = 1000;
/// How long one poll waits for a first record: short, so publishing and flushing keep
/// their rhythm when the log is quiet.
const POLL_WAIT: Duration = Duration::from_millis(50);
/// How often snapshots are published when nothing changed (the clock moves oldest
/// waits on).
const PUBLISH_EVERY: Duration = Duration::from_millis(200);
/// The shortest gap between two snapshots, so a busy log does not spend its time
/// building views nobody can read that fast.
const PUBLISH_GAP: Duration = Duration::from_millis(50);
/// How long to wait before polling again after the log was unavailable.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// A partition's position: `(topic, partition)` → the next offset to process.
pub type Positions = BTreeMap<(String, u32), u64>;

/// What [`restore`] found in the store.
pub struct Restored {
    /// The engine, resumed from the checkpoint or new.
    pub engine: Engine,
    /// The positions the checkpoint covers (empty without one).
    pub positions: Positions,
}

/// The engine as the consumer group's checkpoint left it, or a new one.
pub async fn restore(config: &KpiConfig, store: &Store) -> Result<Restored> {
    let saved = store.load_checkpoint(&config.consumer_group).await?;
    let Some((bytes, positions)) = saved else {
        return Ok(Restored {
            engine: Engine::new(config.engine.clone()),
            positions: Positions::new(),
        });
    };
    let engine =
        Engine::restore(config.engine.clone(), &bytes).map_err(|source| KpiError::Checkpoint {
            group: config.consumer_group.clone(),
            source,
        })?;
    let positions = positions
        .into_iter()
        .map(|(topic, partition, next)| ((topic, partition), next))
        .collect();
    Ok(Restored { engine, positions })
}

/// What [`Feed::start`] needs.
pub struct FeedArgs {
    /// The role's configuration (consumer group, flush interval, store URL).
    pub config: KpiConfig,
    /// Where events come from.
    pub log: Arc<dyn EventLog>,
    /// Where rows and the checkpoint go.
    pub store: Arc<Store>,
    /// The engine; the feed is its only writer.
    pub engine: Arc<Mutex<Engine>>,
    /// The positions the restored checkpoint covers: records below them are skipped.
    pub floor: Positions,
    /// Counters to keep.
    pub metrics: Arc<Metrics>,
    /// The time real-time snapshots are taken at.
    pub clock: Arc<dyn Clock>,
    /// Where snapshots are published.
    pub snapshots: tokio::sync::watch::Sender<Arc<Snapshots>>,
    /// Where the positions applied so far are published, for [`Kpi::drain`](super::Kpi::drain).
    pub progress: tokio::sync::watch::Sender<Positions>,
}

/// Moves checkpoint positions that lie past the end of their partition back to it.
///
/// The checkpoint counted records the log no longer has: a machine crash took back
/// records the embedded log had shown before fsyncing them (see the event log's
/// "Crashes"), or the topic was deleted and created again. Those contacts stay
/// counted — they happened — but the records that now reuse the offsets must not be
/// skipped as already applied.
async fn clamp_floor(log: &dyn EventLog, floor: &mut Positions) -> Result<()> {
    let names: std::collections::BTreeSet<String> = floor.keys().map(|(t, _)| t.clone()).collect();
    for topic in names {
        let ends = log
            .end_offsets(&topic)
            .await
            .map_err(|source| KpiError::Log {
                what: "read end offsets",
                source,
            })?;
        for ((t, partition), next) in floor.iter_mut() {
            if *t != topic {
                continue;
            }
            let end = ends.get(*partition as usize).copied().unwrap_or(0);
            if *next > end {
                tracing::warn!(
                    topic = %t, partition = *partition, checkpoint = *next, end,
                    "kpi: the checkpoint is past the end of the event log (records lost in a \
                     machine crash, or the topic recreated); reading on from the end"
                );
                *next = end;
            }
        }
    }
    Ok(())
}

// === impl Feed ===

/// The feed task's state.
pub struct Feed {
    args: FeedArgs,
    consumer: EventConsumer,
    /// The consumer's counters (quarantined, skipped, duplicates it dropped).
    consumer_stats: Arc<ConsumerStats>,
    /// Their values at the last look.
    seen_consumer: [u64; 3],
    /// The last position delivered per partition, for `commit_through`.
    delivered: BTreeMap<(String, u32), Position>,
    stop: tokio::sync::watch::Receiver<bool>,
    /// Next offset per partition, of everything applied (or skipped) so far.
    positions: Positions,
    /// Whether positions moved since the last successful save.
    moved: bool,
    /// Rows taken from the engine and not yet saved, newest per key.
    pending: BTreeMap<IntervalKey, IntervalRow>,
    /// The engine's counters at the last look, to turn them into counter increments.
    seen_applied: u64,
    seen_duplicates: u64,
}

impl Feed {
    /// Creates the topics if missing and joins the consumer group.
    pub async fn start(
        mut args: FeedArgs,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<Feed> {
        args.log
            .ensure_topics(&topics::specs())
            .await
            .map_err(|source| KpiError::Log {
                what: "ensure topics",
                source,
            })?;
        clamp_floor(args.log.as_ref(), &mut args.floor).await?;
        let consumer = EventConsumer::open(
            args.log.as_ref(),
            ConsumerConfig::new(args.config.consumer_group.clone(), &[topics::EVENTS]),
            EventConsumerConfig::default(),
        )
        .await
        .map_err(|source| KpiError::Log {
            what: "join consumer group",
            source,
        })?;
        let consumer_stats = consumer.stats();
        let (seen_applied, seen_duplicates) = {
            let engine = lock(&args.engine);
            (engine.stats().applied, engine.stats().duplicates)
        };
        Ok(Feed {
            positions: args.floor.clone(),
            args,
            consumer,
            consumer_stats,
            seen_consumer: [0; 3],
            delivered: BTreeMap::new(),
            stop,
            moved: false,
            pending: BTreeMap::new(),
            seen_applied,
            seen_duplicates,
        })
    }

    /// Polls, applies, flushes and publishes until told to stop; then flushes once
    /// more. Fails only on what retrying cannot fix.
    pub async fn run(mut self) -> Result<()> {
        let flush_every = Duration::from_millis(self.args.config.flush_interval_ms);
        let mut last_flush = Instant::now();
        let mut last_publish = Instant::now();
        // Applied events not yet in a published snapshot.
        let mut unpublished = false;
        self.publish();
        loop {
            if *self.stop.borrow() {
                break;
            }
            let mut stop = self.stop.clone();
            let poll = tokio::select! {
                _ = stop.changed() => break,
                poll = self.consumer.next_batch(BATCH, POLL_WAIT) => poll,
            };
            match poll {
                Ok(poll) => unpublished |= self.apply(poll),
                Err(e) if e.is_retryable() => {
                    tracing::warn!(error = %e, "kpi: event log unavailable; retrying");
                    tokio::select! {
                        _ = stop.changed() => break,
                        () = tokio::time::sleep(RETRY_AFTER) => {}
                    }
                }
                Err(source) => {
                    self.flush().await;
                    return Err(KpiError::Log {
                        what: "poll",
                        source,
                    });
                }
            }
            if last_flush.elapsed() >= flush_every {
                self.flush().await;
                self.update_lag().await;
                last_flush = Instant::now();
            }
            let since = last_publish.elapsed();
            if (unpublished && since >= PUBLISH_GAP) || since >= PUBLISH_EVERY {
                self.publish();
                last_publish = Instant::now();
                unpublished = false;
            }
        }
        self.flush().await;
        Ok(())
    }

    /// Applies a batch of events; returns whether any was new to the engine.
    fn apply(&mut self, batch: Vec<(Position, hotline_core::event::Event)>) -> bool {
        let metrics = &self.args.metrics;
        let mut applied = false;
        let mut engine = lock(&self.args.engine);
        for (at, event) in batch {
            let part = (at.topic.clone(), at.partition);
            if self
                .args
                .floor
                .get(&part)
                .is_some_and(|&floor| at.offset < floor)
            {
                // Already in the restored checkpoint: processed, so committable.
                metrics.replayed.inc();
                self.delivered.insert(part, at);
                continue;
            }
            applied |= engine.apply(&event);
            self.positions.insert(part.clone(), at.offset + 1);
            self.delivered.insert(part, at);
            self.moved = true;
        }
        let stats = engine.stats();
        drop(engine);
        if self.moved {
            self.args.progress.send_replace(self.positions.clone());
        }
        let c = &self.consumer_stats;
        let now = [
            c.quarantined_total.load(Ordering::Relaxed),
            c.skipped_total.load(Ordering::Relaxed),
            c.duplicates_total.load(Ordering::Relaxed),
        ];
        let [q, s, d] = std::array::from_fn(|i| now[i].saturating_sub(self.seen_consumer[i]));
        self.seen_consumer = now;
        metrics.quarantined.inc_by(q);
        metrics.skipped.inc_by(s);
        metrics
            .applied
            .inc_by(stats.applied.saturating_sub(self.seen_applied));
        metrics
            .duplicates
            .inc_by(d + stats.duplicates.saturating_sub(self.seen_duplicates));
        self.seen_applied = stats.applied;
        self.seen_duplicates = stats.duplicates;
        applied
    }

    /// Saves the changed rows and the checkpoint in one transaction, then commits the
    /// offsets they cover. A failure is logged and counted; the next flush retries.
    async fn flush(&mut self) {
        let (rows, checkpoint) = {
            let mut engine = lock(&self.args.engine);
            let rows = engine.take_dirty();
            (rows, engine.checkpoint())
        };
        self.pending
            .extend(rows.into_iter().map(|r| (r.key.clone(), r)));
        if self.pending.is_empty() && !self.moved {
            return;
        }
        let positions: Vec<(String, u32, u64)> = self
            .positions
            .iter()
            .map(|((t, p), o)| (t.clone(), *p, *o))
            .collect();
        let rows: Vec<IntervalRow> = self.pending.values().cloned().collect();
        let started = Instant::now();
        let saved = self
            .args
            .store
            .save(
                &rows,
                Some((&self.args.config.consumer_group, &checkpoint, &positions)),
            )
            .await;
        let metrics = &self.args.metrics;
        metrics
            .flush_seconds
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = saved {
            metrics.flush_failures.inc();
            tracing::warn!(error = %e, rows = rows.len(), "kpi: flush failed; retrying at the next flush");
            return;
        }
        self.pending.clear();
        self.moved = false;
        metrics
            .last_flush_ms
            .store(self.args.clock.now().millis(), Ordering::Relaxed);
        // After the store holds what they cover: at least once, never lost.
        let delivered: Vec<Position> = self.delivered.values().cloned().collect();
        // Without waiting for it: the checkpoint already holds these positions, and a
        // commit that waits for the broker holds up the feed a round trip.
        if let Err(e) = self.consumer.start_commit_through(&delivered).await {
            tracing::warn!(error = %e, "kpi: committing offsets failed; they are in the checkpoint");
        }
    }

    /// How far behind the log's end this consumer is.
    async fn update_lag(&mut self) {
        let Ok(ends) = self.args.log.end_offsets(topics::EVENTS).await else {
            return;
        };
        let behind: u64 = ends
            .iter()
            .enumerate()
            .map(|(p, end)| {
                let at = self
                    .positions
                    .get(&(topics::EVENTS.to_owned(), p as u32))
                    .copied()
                    .unwrap_or(0);
                end.saturating_sub(at)
            })
            .sum();
        self.args
            .metrics
            .lag
            .set(i64::try_from(behind).unwrap_or(i64::MAX));
    }

    /// Publishes every tenant's real-time view now.
    fn publish(&self) {
        let now_ms = self.args.clock.now().millis();
        let tenants = {
            let engine = lock(&self.args.engine);
            engine
                .tenants()
                .into_iter()
                .filter_map(|t| engine.realtime(&t, now_ms).map(|s| (t, s)))
                .collect()
        };
        self.args.snapshots.send_replace(Arc::new(Snapshots {
            at_ms: now_ms,
            tenants,
        }));
    }
}

/// The engine, whether or not a previous holder panicked (its state is still whole:
/// the engine never panics half-way through a mutation it cares about).
fn lock(engine: &Mutex<Engine>) -> std::sync::MutexGuard<'_, Engine> {
    engine.lock().unwrap_or_else(|e| e.into_inner())
}
