//! Rebuilding interval rows from the event log: `hotline kpi replay` and the check
//! that live figures equal what the log says.
//!
//! # Data flow
//!
//! ```text
//! EventLog::end_offsets (at start: the snapshot to replay)
//! EventLog ──raw Consumer, fresh group, from Earliest──▶ decode ──▶ fresh Engine (keep_days 0)
//!                                    └── until every partition reached its end offset
//! Engine rows ──Store::replace_all──▶ target store        compare(a, b) ──▶ Differences
//! ```
//!
//! Replay reads the raw [`Consumer`](hotline_eventlog::Consumer) rather than the
//! service's `EventConsumer`: it must see the offset of every record — duplicates and
//! undecodable ones included — to know when it has reached the end, and quarantining is
//! the live consumer's job. Duplicates are dropped by the engine itself (by event id,
//! within the configured dedupe horizon: pass a long one for logs with old
//! redeliveries). Records appended after the start are left
//! out, so a replay is a snapshot of the log as it was when it started.

use std::collections::BTreeMap;
use std::time::Duration;

use hotline_eventlog::{ConsumerConfig, EventLog, StartFrom, topics};

use crate::engine::{Engine, EngineConfig};
pub use crate::store::{Difference, compare};
use crate::store::{Store, StoreError};

/// A replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The event log failed.
    #[error("replay: event log ({what}): {source}")]
    Log {
        /// What was being done.
        what: &'static str,
        /// Why.
        #[source]
        source: hotline_eventlog::Error,
    },
    /// The target store failed.
    #[error("replay: writing the rebuilt rows: {0}")]
    Store(#[from] StoreError),
    /// The log stopped delivering before the end offsets were reached.
    #[error(
        "replay: the log delivered nothing for {idle_polls} polls with partitions still short of their end (partition: next/end): {remaining:?}"
    )]
    Stalled {
        /// How many empty polls in a row.
        idle_polls: u32,
        /// Per partition short of its end: (partition, next offset, end offset).
        remaining: Vec<(u32, u64, u64)>,
    },
}

/// How far a replay has come; reported after every poll.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayProgress {
    /// Records read (within the snapshot).
    pub records: u64,
    /// Events applied to the engine.
    pub applied: u64,
    /// Events dropped as duplicates.
    pub duplicates: u64,
    /// Records that could not be decoded (skipped; the live consumer quarantines them).
    pub undecodable: u64,
    /// Damaged stretches of the log stepped over.
    pub damaged: u64,
    /// Records still to read before the end offsets.
    pub remaining: u64,
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplaySummary {
    /// The final progress.
    pub progress: ReplayProgress,
    /// Rows written to the target store.
    pub rows: usize,
    /// Tenants seen.
    pub tenants: Vec<String>,
    /// The end offsets replayed to: (topic, partition, next offset), the positions a
    /// consumer resuming from the replayed state would start at.
    pub positions: Vec<(String, u32, u64)>,
    /// The rebuilt engine's checkpoint: saved with `positions` under the service's
    /// consumer group, the service resumes exactly where the replay ended.
    pub checkpoint: Vec<u8>,
}

/// How many records one poll asks for.
const BATCH: usize = 2000;
/// How long one poll waits for its first record.
const POLL_WAIT: Duration = Duration::from_millis(200);
/// Empty polls in a row (×[`POLL_WAIT`]) before a replay gives up.
const MAX_IDLE_POLLS: u32 = 150;

/// Reads [`topics::EVENTS`] from the beginning up to its end offsets at start through a
/// fresh engine (keeping every interval in memory), then replaces every row of
/// `store` with the rebuilt ones (its checkpoints are dropped: see
/// [`ReplaySummary::checkpoint`]).
pub async fn replay(
    log: &dyn EventLog,
    store: &Store,
    config: EngineConfig,
    mut progress: impl FnMut(ReplayProgress),
) -> Result<ReplaySummary, ReplayError> {
    let log_err = |what| move |source| ReplayError::Log { what, source };
    let end = log
        .end_offsets(topics::EVENTS)
        .await
        .map_err(log_err("reading end offsets"))?;
    // Next offset to read, per partition, for those with anything to read.
    let mut next: BTreeMap<u32, (u64, u64)> = end
        .iter()
        .enumerate()
        .filter(|(_, e)| **e > 0)
        .map(|(p, e)| (p as u32, (0, *e)))
        .collect();
    let mut engine = Engine::new(config.for_replay());
    let mut seen = ReplayProgress {
        remaining: end.iter().sum(),
        ..ReplayProgress::default()
    };
    if !next.is_empty() {
        let group = fresh_group();
        let mut consumer = log
            .consumer(ConsumerConfig::new(group, &[topics::EVENTS]).starting(StartFrom::Earliest))
            .await
            .map_err(log_err("opening a consumer"))?;
        let mut idle = 0;
        while next.values().any(|(n, e)| n < e) {
            let poll = consumer
                .poll(BATCH, POLL_WAIT)
                .await
                .map_err(log_err("polling"))?;
            let mut moved = false;
            for damage in &poll.skipped {
                if let Some((n, e)) = next.get_mut(&damage.partition)
                    && damage.offset < *e
                {
                    *n = (*n).max(damage.offset + 1);
                    seen.damaged += 1;
                    moved = true;
                }
            }
            for record in &poll.records {
                let Some((n, e)) = next.get_mut(&record.partition) else {
                    continue;
                };
                if record.topic != topics::EVENTS || record.offset >= *e {
                    continue; // appended after the start: not part of this snapshot
                }
                *n = (*n).max(record.offset + 1);
                moved = true;
                seen.records += 1;
                match hotline_proto::decode_event(&record.value) {
                    Ok(event) => {
                        if engine.apply(&event) {
                            seen.applied += 1;
                        } else {
                            seen.duplicates += 1;
                        }
                    }
                    Err(e) => {
                        seen.undecodable += 1;
                        tracing::warn!(
                            partition = record.partition, offset = record.offset, error = %e,
                            "replay: undecodable record skipped"
                        );
                    }
                }
            }
            seen.remaining = next.values().map(|(n, e)| e.saturating_sub(*n)).sum();
            progress(seen.clone());
            if moved {
                idle = 0;
            } else {
                idle += 1;
                if idle >= MAX_IDLE_POLLS {
                    return Err(ReplayError::Stalled {
                        idle_polls: idle,
                        remaining: next
                            .iter()
                            .filter(|(_, (n, e))| n < e)
                            .map(|(p, (n, e))| (*p, *n, *e))
                            .collect(),
                    });
                }
            }
        }
    }
    progress(seen.clone());
    let rows = engine.take_dirty();
    store.replace_all(&rows).await?;
    Ok(ReplaySummary {
        progress: seen,
        rows: rows.len(),
        tenants: engine.tenants(),
        positions: end
            .iter()
            .enumerate()
            .map(|(p, e)| (topics::EVENTS.to_owned(), p as u32, *e))
            .collect(),
        checkpoint: engine.checkpoint(),
    })
}

/// A consumer group no one has used, so the replay starts from the earliest record and
/// leaves no one else's offsets behind.
fn fresh_group() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    format!(
        "kpi-replay-{ms}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hotline_core::channel::Channel;
    use hotline_core::event::{ContactEvent, ContactEventKind, Event, EventBody};
    use hotline_core::ids::{AgentId, ContactId, EventId, QueueId, SiteId, TenantId, TraceId};
    use hotline_core::time::Timestamp;
    use hotline_eventlog::embedded::{EmbeddedConfig, EmbeddedLog};
    use hotline_eventlog::events::message_for;
    use hotline_eventlog::{Message, topics};

    use super::*;

    fn history() -> Vec<Event> {
        let mut out = Vec::new();
        let mut id = 0u128;
        for tenant in ["t1", "t2"] {
            for c in 0..40u128 {
                let start = (c as u64) * 97_000;
                let q = Some(QueueId::new("q1").unwrap());
                let a = Some(AgentId::new(format!("a{}", c % 3)).unwrap());
                let kinds: Vec<(u64, Option<AgentId>, ContactEventKind)> = if c % 4 == 0 {
                    vec![(
                        start + 9000,
                        None,
                        ContactEventKind::Abandoned {
                            wait_ms: 9000,
                            while_offered: false,
                        },
                    )]
                } else {
                    vec![
                        (
                            start + 5000,
                            a.clone(),
                            ContactEventKind::Connected { wait_ms: 5000 },
                        ),
                        (
                            start + 65_000,
                            a.clone(),
                            ContactEventKind::Done {
                                talk_ms: 60_000,
                                hold_ms: 1000,
                                wrap_ms: 0,
                            },
                        ),
                    ]
                };
                let customer = Some(Arc::from(format!("cust{}", c % 7).as_str()));
                let mut all = vec![
                    (start, None, ContactEventKind::Arrived { customer }),
                    (start, None, ContactEventKind::Queued { priority: 0 }),
                ];
                all.extend(kinds);
                for (at, agent, kind) in all {
                    id += 1;
                    let queue = if matches!(kind, ContactEventKind::Arrived { .. }) {
                        None
                    } else {
                        q.clone()
                    };
                    out.push(Event {
                        id: EventId::from_u128(id),
                        at: Timestamp(at * 1000),
                        tenant: TenantId::new(tenant).unwrap(),
                        site: SiteId::new("s1").unwrap(),
                        trace: TraceId::from_u128(0),
                        body: EventBody::Contact(ContactEvent {
                            contact: ContactId::from_u128(c),
                            channel: Channel::Voice,
                            queue,
                            agent,
                            kind,
                        }),
                    });
                }
            }
        }
        out
    }

    #[tokio::test]
    async fn a_replay_of_the_embedded_log_equals_the_live_rows_exactly() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let log = EmbeddedLog::open(dir.path(), EmbeddedConfig::default()).await?;
        log.ensure_topics(&topics::specs()).await?;
        let events = history();
        let mut messages: Vec<Message> = events.iter().map(message_for).collect();
        // At-least-once: a stretch delivered twice, and one record nobody can read.
        messages.extend(events[10..30].iter().map(message_for));
        messages.push(Message {
            key: b"t1/garbage".to_vec(),
            value: vec![0xff, 0x00, 0x13],
            timestamp_ms: 0,
        });
        log.producer()?.send(topics::EVENTS, messages).await?;

        // The live side: the same events through an engine into a store.
        let live = Store::connect("sqlite::memory:").await?;
        let mut engine = Engine::new(EngineConfig::default());
        for e in &events {
            engine.apply(e);
        }
        live.save(&engine.take_dirty(), None).await?;

        let target = Store::connect("sqlite::memory:").await?;
        let mut reports = Vec::new();
        let summary = replay(&log, &target, EngineConfig::default(), |p| reports.push(p)).await?;
        assert_eq!(summary.progress.applied, events.len() as u64);
        assert_eq!(summary.progress.duplicates, 20);
        assert_eq!(summary.progress.undecodable, 1);
        assert_eq!(summary.progress.remaining, 0);
        assert_eq!(summary.tenants, vec!["t1".to_owned(), "t2".to_owned()]);
        assert!(!reports.is_empty());
        assert!(
            compare(&live, &target, None).await?.is_empty(),
            "live and replay differ"
        );
        // Replaying again into the same store is idempotent.
        replay(&log, &target, EngineConfig::default(), |_| {}).await?;
        assert!(compare(&live, &target, None).await?.is_empty());
        // The checkpoint resumes an engine in the rebuilt state.
        let resumed = Engine::restore(EngineConfig::default(), &summary.checkpoint)?;
        assert_eq!(resumed.tenants(), summary.tenants);
        Ok(())
    }

    #[tokio::test]
    async fn a_replay_of_an_empty_log_writes_no_rows() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let log = EmbeddedLog::open(dir.path(), EmbeddedConfig::default()).await?;
        log.ensure_topics(&topics::specs()).await?;
        let target = Store::connect("sqlite::memory:").await?;
        let summary = replay(&log, &target, EngineConfig::default(), |_| {}).await?;
        assert_eq!((summary.rows, summary.progress.records), (0, 0));
        Ok(())
    }
}
