//! The one thread that writes the routing store, one redb commit per batch of requests.
//!
//! # Group commit
//!
//! Every write — log appends, votes, committed ids, truncations, purges, snapshots — is a
//! [`WriteOp`] on one queue, so they reach the file in the order they were made (openraft
//! requires its log writes serialized). The writer thread blocks for the first request, takes
//! every request queued behind it (up to [`StoreConfig::max_batch`]), writes them all in one
//! write transaction and commits once: one fsync however many requests. Only then does it
//! fire each request's callback, in order. While a commit is in flight, new requests pile up
//! and become the next batch, so the batch grows with the load and a quiet store still commits
//! each request at once, without waiting for company.
//!
//! [`StoreConfig::max_batch`]: super::StoreConfig::max_batch

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use openraft::storage::IOFlushed;
use redb::ReadableTable;
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use super::db::{self, Db, LOG, LogId, META, RedbResultExt, SNAPSHOT, SnapshotMeta, Vote, key};
use crate::typ::TypeConfig;

/// Where a caller waits for its write to be committed.
pub(super) type Done = oneshot::Sender<Result<(), StoreError>>;

/// One write request. Each is written in queue order within its batch's transaction.
pub(super) enum WriteOp {
    /// Appends entries; `callback` tells openraft they are durable.
    Append {
        /// The entries, encoded, by index.
        entries: Vec<(u64, Arc<[u8]>)>,
        /// openraft's flush notification.
        callback: IOFlushed<TypeConfig>,
    },
    /// Saves the vote; openraft waits for it.
    SaveVote {
        /// The vote, to publish to readers once durable.
        vote: Vote,
        /// The vote, encoded.
        bytes: Vec<u8>,
        /// The caller.
        done: Done,
    },
    /// Saves the committed log id. Nobody waits: it becomes durable with this batch, and a
    /// committed id older than the truth is safe (the state machine re-applies less).
    SaveCommitted {
        /// The committed log id (an `Option`), encoded.
        bytes: Vec<u8>,
    },
    /// Removes every entry from index `from` on.
    Truncate {
        /// The first index removed.
        from: u64,
        /// The caller.
        done: Done,
    },
    /// Removes every entry up to `log_id`, inclusive, and records it as the last purged.
    Purge {
        /// The last purged log id, to publish to readers once durable.
        log_id: LogId,
        /// The same, encoded.
        bytes: Vec<u8>,
        /// The caller.
        done: Done,
    },
    /// Replaces the current snapshot.
    SaveSnapshot {
        /// The snapshot's last log id, to keep a newer stored snapshot.
        last_log_id: Option<LogId>,
        /// The snapshot's metadata, encoded.
        meta: Vec<u8>,
        /// The routing state, encoded.
        data: Vec<u8>,
        /// Replace even a newer snapshot: an installed snapshot replaces the state machine,
        /// whereas a built one may finish after a newer one was installed and must lose.
        force: bool,
        /// The caller.
        done: Done,
    },
}

impl WriteOp {
    fn entries(&self) -> u64 {
        match self {
            WriteOp::Append { entries, .. } => entries.len() as u64,
            _ => 0,
        }
    }

    /// Tells the requester how its write ended.
    fn finish(self, result: Result<(), &str>, path: &std::path::Path) {
        let error = |reason: &str| StoreError::Failed {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        match self {
            WriteOp::Append { callback, .. } => {
                callback.io_completed(result.map_err(|reason| io::Error::from(error(reason))));
            }
            WriteOp::SaveVote { done, .. }
            | WriteOp::Truncate { done, .. }
            | WriteOp::Purge { done, .. }
            | WriteOp::SaveSnapshot { done, .. } => {
                // The caller may have given up waiting; the write stands either way.
                let _ = done.send(result.map_err(error));
            }
            WriteOp::SaveCommitted { .. } => {}
        }
    }
}

/// The handle on the writer thread, shared by the log store and the state machine. Dropping
/// the last one closes the queue and waits for the thread to commit what is queued and exit,
/// so the file is closed when the store is gone and can be opened again at once.
#[derive(Debug)]
pub(super) struct Writer {
    /// The queue; `None` once dropping.
    queue: Option<mpsc::Sender<WriteOp>>,
    /// The thread, joined on drop.
    thread: Option<JoinHandle<()>>,
    /// For errors.
    db: Arc<Db>,
}

impl Writer {
    /// Starts the writer thread on `db`.
    pub(super) fn spawn(db: Arc<Db>, config: &super::StoreConfig) -> Result<Self, StoreError> {
        let (queue, requests) = mpsc::channel(config.queue_depth);
        let max_batch = config.max_batch;
        let thread_db = Arc::clone(&db);
        let thread = std::thread::Builder::new()
            .name("routing-store-writer".into())
            .spawn(move || run(&thread_db, requests, max_batch))
            .map_err(|source| StoreError::Spawn {
                path: db.path.clone(),
                source,
            })?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
            db,
        })
    }

    /// Queues a write without waiting for it; waits only while the queue is full.
    pub(super) async fn send(&self, op: WriteOp) -> Result<(), StoreError> {
        let stopped = || StoreError::WriterStopped {
            path: self.db.path.clone(),
        };
        let queue = self.queue.as_ref().ok_or_else(stopped)?;
        queue.send(op).await.map_err(|_| stopped())
    }

    /// Queues a write and waits until it is committed.
    pub(super) async fn call(&self, op: impl FnOnce(Done) -> WriteOp) -> Result<(), StoreError> {
        let (done, committed) = oneshot::channel();
        self.send(op(done)).await?;
        committed.await.map_err(|_| StoreError::WriterStopped {
            path: self.db.path.clone(),
        })?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(path = %self.db.path.display(), "routing store writer panicked");
        }
    }
}

/// The writer thread: batch, commit, report, until the queue closes.
fn run(db: &Db, mut requests: mpsc::Receiver<WriteOp>, max_batch: usize) {
    let mut failure: Option<String> = None;
    let mut batch = Vec::with_capacity(max_batch.min(4096));
    while let Some(first) = requests.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match requests.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }

        if failure.is_none() {
            // Wall-clock on purpose: this measures the disk, not the routing logic.
            let started = Instant::now();
            announce_purges(db, &batch);
            // A panic inside redb (a damaged page, in a debug build) must reach openraft as a
            // storage error, not strand the batch's callbacks and hang the node.
            let written = panic::catch_unwind(AssertUnwindSafe(|| write(db, &batch)))
                .unwrap_or_else(|panicked| Err(panic_error(db, panicked.as_ref())));
            let took = started.elapsed();
            match written {
                Ok(()) => {
                    let entries = batch.iter().map(WriteOp::entries).sum();
                    db.meter.record(took, entries);
                    publish(db, &batch);
                }
                Err(err) => {
                    tracing::error!(path = %db.path.display(), error = %err, "routing store commit failed; refusing further writes");
                    failure = Some(err.to_string());
                }
            }
        }
        let result = failure.as_deref().map_or(Ok(()), Err);
        for op in batch.drain(..) {
            op.finish(result, &db.path);
        }
    }
}

fn panic_error(db: &Db, panicked: &(dyn std::any::Any + Send)) -> StoreError {
    let message = panicked
        .downcast_ref::<&str>()
        .map(|message| (*message).to_owned())
        .or_else(|| panicked.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    StoreError::Failed {
        path: db.path.clone(),
        reason: format!("redb panicked while writing: {message}"),
    }
}

/// Writes one batch in one transaction and commits it.
fn write(db: &Db, batch: &[WriteOp]) -> Result<(), StoreError> {
    let txn = db.redb.begin_write().at(db, "begin a write transaction")?;
    {
        let mut log = txn.open_table(LOG).at(db, "open the log table")?;
        let mut meta = txn.open_table(META).at(db, "open the meta table")?;
        let mut snapshot = txn.open_table(SNAPSHOT).at(db, "open the snapshot table")?;
        for op in batch {
            match op {
                WriteOp::Append { entries, .. } => {
                    for (index, bytes) in entries {
                        log.insert(*index, &**bytes).at(db, "append to the log")?;
                    }
                }
                WriteOp::SaveVote { bytes, .. } => {
                    meta.insert(key::VOTE, bytes.as_slice())
                        .at(db, "save the vote")?;
                }
                WriteOp::SaveCommitted { bytes } => {
                    meta.insert(key::COMMITTED, bytes.as_slice())
                        .at(db, "save the committed log id")?;
                }
                WriteOp::Truncate { from, .. } => {
                    log.retain_in(*from.., |_, _| false)
                        .at(db, "truncate the log")?;
                }
                WriteOp::Purge { log_id, bytes, .. } => {
                    meta.insert(key::LAST_PURGED, bytes.as_slice())
                        .at(db, "save the last purged log id")?;
                    log.retain_in(..=log_id.index, |_, _| false)
                        .at(db, "purge the log")?;
                }
                WriteOp::SaveSnapshot {
                    last_log_id,
                    meta: snapshot_meta,
                    data,
                    force,
                    ..
                } => {
                    if !force {
                        let stored = snapshot
                            .get(key::SNAPSHOT_META)
                            .at(db, "read the snapshot")?
                            .map(|bytes| {
                                db.decode::<SnapshotMeta>(
                                    || "snapshot metadata".into(),
                                    bytes.value(),
                                )
                            })
                            .transpose()?;
                        if stored.is_some_and(|stored| stored.last_log_id >= *last_log_id) {
                            continue;
                        }
                    }
                    snapshot
                        .insert(key::SNAPSHOT_META, snapshot_meta.as_slice())
                        .at(db, "save the snapshot")?;
                    snapshot
                        .insert(key::SNAPSHOT_DATA, data.as_slice())
                        .at(db, "save the snapshot")?;
                }
            }
        }
    }
    txn.commit().at(db, "commit")
}

/// After a commit: drops the committed entries from the unflushed tail and shows readers the
/// new vote (the last purged id was shown before the commit, by `announce_purges`). An
/// entry is dropped only if the tail still holds this very copy, so a later append at the
/// same index is never lost.
fn publish(db: &Db, batch: &[WriteOp]) {
    let mut tail = db::lock(&db.tail);
    for op in batch {
        if let WriteOp::Append { entries, .. } = op {
            for (index, bytes) in entries {
                if tail
                    .get(index)
                    .is_some_and(|unflushed| Arc::ptr_eq(&unflushed.bytes, bytes))
                {
                    tail.remove(index);
                }
            }
        }
    }
    drop(tail);
    let mut meta = db::lock(&db.meta);
    for op in batch {
        if let WriteOp::SaveVote { vote, .. } = op {
            meta.vote = Some(*vote);
        }
    }
}

/// Before a commit: shows readers the last purged id of the batch's purges, so that no
/// reader ever finds purged entries gone while the purge mark still says they are there
/// (the commit removes them from readers' view at once, `publish` runs after it). A
/// mark ahead of entries still present only hides entries already given up.
fn announce_purges(db: &Db, batch: &[WriteOp]) {
    let mut meta = db::lock(&db.meta);
    for op in batch {
        if let WriteOp::Purge { log_id, .. } = op
            && meta.last_purged.as_ref() < Some(log_id)
        {
            meta.last_purged = Some(*log_id);
        }
    }
}

/// Commit durations, shared between the writer thread and whoever reports them.
///
/// Cloning is cheap and every clone reads the same figures: keep one before handing the
/// [`LogStore`](super::LogStore) to openraft.
#[derive(Debug, Clone)]
pub struct FsyncMeter {
    /// The figures, updated by the writer after every commit.
    inner: Arc<Mutex<Meter>>,
}

#[derive(Debug)]
struct Meter {
    /// Commit durations in microseconds.
    micros: Histogram<u64>,
    /// Log entries made durable.
    entries: u64,
}

/// How the writer's commits have gone since the store was opened.
///
/// Each commit is one redb write transaction committed with one fsync (none in memory), so
/// `p99_us` is what a durable append waits at worst, give or take queueing, and
/// `entries / commits` is how many entries each fsync carried: the group-commit factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FsyncStats {
    /// redb commits.
    pub commits: u64,
    /// Log entries those commits made durable.
    pub entries: u64,
    /// Median commit duration, in microseconds.
    pub p50_us: u64,
    /// 99th percentile commit duration, in microseconds.
    pub p99_us: u64,
    /// Longest commit, in microseconds.
    pub max_us: u64,
}

impl Default for FsyncMeter {
    fn default() -> Self {
        // One microsecond to one minute at three significant digits: a few tens of KiB.
        let micros = Histogram::new_with_bounds(1, 60_000_000, 3)
            .expect("histogram bounds are constant and valid");
        Self {
            inner: Arc::new(Mutex::new(Meter { micros, entries: 0 })),
        }
    }
}

impl FsyncMeter {
    fn record(&self, took: Duration, entries: u64) {
        let mut meter = db::lock(&self.inner);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        meter.micros.saturating_record(micros.max(1));
        meter.entries += entries;
    }

    /// The figures so far.
    pub fn stats(&self) -> FsyncStats {
        let meter = db::lock(&self.inner);
        FsyncStats {
            commits: meter.micros.len(),
            entries: meter.entries,
            p50_us: meter.micros.value_at_quantile(0.50),
            p99_us: meter.micros.value_at_quantile(0.99),
            max_us: meter.micros.max(),
        }
    }
}
