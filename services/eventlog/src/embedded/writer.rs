//! The writer thread: the only code that appends to segment files.
//!
//! Producers hand batches over a channel and wait on a oneshot. The thread takes every
//! batch waiting, frames the records into one buffer per partition and writes each
//! buffer with one `write` call. Then, by the [`FsyncPolicy`]:
//!
//! - `Always`: one fsync per file covers every batch in the round (group commit), then
//!   each partition's [`View`](super::partition::View) moves forward so consumers see
//!   the records, they are woken and the producers answered.
//! - `Interval`: the view moves forward and the producers are answered as soon as the
//!   records are written (in the page cache: a process crash cannot take them back),
//!   and the [`Syncer`] thread fsyncs what was written at most one interval later. A
//!   slow fsync — 30–70 ms happens a few times a minute on a shared disk — then delays
//!   neither appends nor readers; Kafka acknowledges and serves what is in its page
//!   cache in the same way. What a machine crash can take back is the last interval or
//!   so; see the [module docs](super) for what reopening does about it.
//! - `Never`: as `Interval` without the fsync.
//!
//! Running on its own OS threads, blocking file I/O never stalls the tokio runtime.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use super::frame;
use super::partition::{INDEX_EVERY, PartitionLog, SegInfo, io, segment_path};
use super::{FsyncPolicy, TopicLog};
use crate::log::{Error, Message, Offset, Result, partition_for};

/// At most this many batches are taken into one round.
const MAX_ROUND: usize = 1024;

/// A request to the writer thread.
pub(crate) struct Append {
    /// The topic.
    pub topic: Arc<TopicLog>,
    /// The messages, in order.
    pub messages: Vec<Message>,
    /// Where to answer once they are written, or durable under `Always` (or failed).
    pub reply: oneshot::Sender<Result<()>>,
}

/// How the writer thread behaves.
#[derive(Debug, Clone)]
pub(crate) struct WriterConfig {
    pub fsync: FsyncPolicy,
    pub segment_bytes: u64,
}

/// A failure kept to answer every batch that touched the partition.
#[derive(Debug, Clone)]
struct Failure {
    op: &'static str,
    path: std::path::PathBuf,
    kind: std::io::ErrorKind,
    message: String,
}

impl Failure {
    fn from_error(e: &Error) -> Self {
        match e {
            Error::Io { op, path, source } => Failure {
                op,
                path: path.clone(),
                kind: source.kind(),
                message: source.to_string(),
            },
            other => Failure {
                op: "write",
                path: Default::default(),
                kind: std::io::ErrorKind::Other,
                message: other.to_string(),
            },
        }
    }

    fn to_error(&self) -> Error {
        Error::Io {
            op: self.op,
            path: self.path.clone(),
            source: std::io::Error::new(
                self.kind,
                format!(
                    "{} (the partition refuses appends until the log is reopened)",
                    self.message
                ),
            ),
        }
    }
}

/// The writer's state for one partition.
struct PartWriter {
    part: Arc<PartitionLog>,
    /// The active segment (shared with the [`Syncer`], which fsyncs it).
    file: Arc<File>,
    /// The active segment's base and its bytes written so far.
    base: Offset,
    len: u64,
    /// The offset the next record gets.
    next: Offset,
    /// Framed records not yet written.
    buf: Vec<u8>,
    /// Segment changes not yet visible to readers.
    pending: Vec<SegInfo>,
    last_indexed: Option<u64>,
    /// Whether it was written since the last fsync.
    unsynced: bool,
    /// Whether it has changes not yet visible.
    unpublished: bool,
    failed: Option<Failure>,
}

impl PartWriter {
    fn open(part: Arc<PartitionLog>) -> Result<Self> {
        let (base, path, len, next, last_indexed) = {
            let view = part.view();
            let seg = view.segments.last().ok_or_else(|| {
                Error::Config(format!(
                    "partition directory {} has no segment",
                    part.dir.display()
                ))
            })?;
            (
                seg.base,
                seg.path.clone(),
                seg.len,
                view.end,
                seg.index.last().map(|i| i.1),
            )
        };
        let file = OpenOptions::new()
            .append(true)
            .open(&*path)
            .map_err(io("open", &path))?;
        Ok(Self {
            part,
            file: Arc::new(file),
            base,
            len,
            next,
            buf: Vec::with_capacity(64 * 1024),
            pending: Vec::new(),
            last_indexed,
            unsynced: false,
            unpublished: false,
            failed: None,
        })
    }

    /// The pending change of the active segment, created on first use.
    fn active(&mut self) -> &mut SegInfo {
        if self.pending.last().is_none_or(|s| s.base != self.base) {
            self.pending.push(SegInfo {
                base: self.base,
                path: Arc::new(segment_path(&self.part.dir, self.base)),
                len: self.len,
                index: Vec::new(),
                max_ts: i64::MIN,
                next_offset: self.next,
            });
        }
        let last = self.pending.len() - 1;
        &mut self.pending[last]
    }

    /// Frames `message` into the buffer, rolling to a new segment first if full.
    fn append(&mut self, message: &Message, config: &WriterConfig) -> Result<()> {
        let at = self.len + self.buf.len() as u64;
        if at > 0 && at + frame::framed_len(message) as u64 > config.segment_bytes {
            self.roll(config)?;
        }
        let at = self.len + self.buf.len() as u64;
        let offset = self.next;
        frame::encode(&mut self.buf, offset, message);
        self.next += 1;
        let index = self.last_indexed.is_none_or(|l| at - l >= INDEX_EVERY);
        if index {
            self.last_indexed = Some(at);
        }
        let next = self.next;
        let seg = self.active();
        if index {
            seg.index.push((offset, at));
        }
        seg.max_ts = seg.max_ts.max(message.timestamp_ms);
        seg.next_offset = next;
        Ok(())
    }

    /// Writes the buffer to the file with one call.
    fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let path = segment_path(&self.part.dir, self.base);
        (&*self.file)
            .write_all(&self.buf)
            .map_err(io("append to", &path))?;
        self.len += self.buf.len() as u64;
        self.buf.clear();
        let len = self.len;
        self.active().len = len;
        self.unsynced = true;
        self.unpublished = true;
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        if self.unsynced {
            let path = segment_path(&self.part.dir, self.base);
            self.file.sync_data().map_err(io("fsync", &path))?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Seals the active segment and starts the next one at the next offset.
    fn roll(&mut self, config: &WriterConfig) -> Result<()> {
        self.flush()?;
        if config.fsync != FsyncPolicy::Never {
            self.sync()?;
        }
        let path = segment_path(&self.part.dir, self.next);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io("create", &path))?;
        if config.fsync != FsyncPolicy::Never {
            File::open(&self.part.dir)
                .and_then(|d| d.sync_all())
                .map_err(io("fsync", &self.part.dir))?;
        }
        self.file = Arc::new(file);
        self.base = self.next;
        self.len = 0;
        self.last_indexed = None;
        self.active();
        self.unpublished = true;
        Ok(())
    }

    /// Makes everything written visible to readers.
    fn publish(&mut self) {
        if !self.unpublished {
            return;
        }
        let mut view = self.part.view();
        for seg in self.pending.drain(..) {
            match view.segments.iter_mut().rev().find(|s| s.base == seg.base) {
                Some(s) => {
                    s.len = seg.len;
                    s.index.extend(seg.index);
                    s.max_ts = s.max_ts.max(seg.max_ts);
                    s.next_offset = seg.next_offset;
                }
                None => view.segments.push(seg),
            }
        }
        view.end = self.next;
        self.unpublished = false;
    }

    fn fail(&mut self, e: &Error) {
        tracing::error!(
            topic = %self.part.topic, partition = self.part.partition, error = %e,
            "event log partition failed; it refuses appends until the log is reopened"
        );
        self.failed = Some(Failure::from_error(e));
    }
}

/// A batch waiting for its answer.
struct Waiting {
    reply: oneshot::Sender<Result<()>>,
    parts: Vec<usize>,
    error: Option<Error>,
}

/// The writer thread's loop; returns when every sender is gone.
pub(crate) fn run(rx: Receiver<Append>, config: WriterConfig, wake: watch::Sender<u64>) {
    let mut writers: HashMap<usize, PartWriter> = HashMap::new();
    let mut waiting: Vec<Waiting> = Vec::new();
    let mut syncer = match config.fsync {
        FsyncPolicy::Interval(every) => match Syncer::start(every) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(
                    error = %e,
                    "could not start the event log's fsync thread; fsyncing every write instead"
                );
                None
            }
        },
        _ => None,
    };
    // Without its syncer the interval policy falls back to syncing every round.
    let sync_in_round = config.fsync == FsyncPolicy::Always
        || (syncer.is_none() && config.fsync != FsyncPolicy::Never);
    loop {
        let Ok(first) = rx.recv() else {
            break;
        };
        let mut round = vec![first];
        while round.len() < MAX_ROUND {
            match rx.try_recv() {
                Ok(a) => round.push(a),
                Err(_) => break,
            }
        }
        if let Some(s) = &syncer {
            fail_synced(&mut writers, s.failures());
        }
        let mut dirty = Vec::new();
        for append in round {
            waiting.push(apply(append, &mut writers, &mut dirty, &config));
        }
        for key in &dirty {
            if let Some(w) = writers.get_mut(key)
                && w.failed.is_none()
                && let Err(e) = w.flush()
            {
                w.fail(&e);
            }
        }
        if sync_in_round {
            for w in writers.values_mut() {
                if w.failed.is_none()
                    && let Err(e) = w.sync()
                {
                    w.fail(&e);
                }
            }
        } else if let Some(s) = &syncer {
            for key in &dirty {
                if let Some(w) = writers.get_mut(key)
                    && w.failed.is_none()
                    && w.unsynced
                {
                    s.dirty(*key, &w.file, segment_path(&w.part.dir, w.base));
                    w.unsynced = false;
                }
            }
        }
        finish(&mut writers, &mut waiting, &wake);
    }
    // Every producer is gone: make what was written durable before the log closes.
    if let Some(s) = syncer.take() {
        fail_synced(&mut writers, s.close());
    }
    if config.fsync != FsyncPolicy::Never {
        for w in writers.values_mut() {
            if w.failed.is_none()
                && let Err(e) = w.sync()
            {
                w.fail(&e);
            }
        }
    }
    finish(&mut writers, &mut waiting, &wake);
}

/// Fails the partitions whose background fsync failed: what they acknowledged may not
/// be on disk, so they refuse appends until the log is reopened (and recovered).
fn fail_synced(writers: &mut HashMap<usize, PartWriter>, failed: Vec<(usize, Error)>) {
    for (key, e) in failed {
        if let Some(w) = writers.get_mut(&key)
            && w.failed.is_none()
        {
            w.fail(&e);
        }
    }
}

/// A segment file written since its last fsync.
struct Dirty {
    file: Arc<File>,
    path: PathBuf,
}

/// What the writer thread and the [`Syncer`] share.
#[derive(Default)]
struct SyncState {
    /// Files written since their last fsync, by partition.
    dirty: HashMap<usize, Dirty>,
    /// fsyncs that failed, by partition, for the writer to fail the partition.
    failed: Vec<(usize, Error)>,
    /// The writer is done: sync what is dirty and stop.
    closing: bool,
}

/// The interval policy's background fsync: at most once per interval, every segment
/// file written since the last one, on its own thread so that a slow fsync holds up
/// neither the writer nor the readers. The interval runs from the start of one round
/// of fsyncs to the start of the next, so a slow fsync is not followed by a full
/// interval of waiting too.
struct Syncer {
    shared: Arc<(Mutex<SyncState>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn lock(state: &Mutex<SyncState>) -> std::sync::MutexGuard<'_, SyncState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Syncer {
    fn start(every: Duration) -> std::io::Result<Self> {
        let shared = Arc::new((Mutex::new(SyncState::default()), Condvar::new()));
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("eventlog-fsync".into())
            .spawn(move || sync_loop(&theirs, every))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Notes that partition `key`'s segment `file` was written.
    fn dirty(&self, key: usize, file: &Arc<File>, path: PathBuf) {
        let (state, wake) = &*self.shared;
        lock(state).dirty.insert(
            key,
            Dirty {
                file: file.clone(),
                path,
            },
        );
        wake.notify_one();
    }

    /// The fsyncs that failed since the last look.
    fn failures(&self) -> Vec<(usize, Error)> {
        std::mem::take(&mut lock(&self.shared.0).failed)
    }

    /// Syncs what is dirty, stops the thread, and returns what failed.
    fn close(mut self) -> Vec<(usize, Error)> {
        lock(&self.shared.0).closing = true;
        self.shared.1.notify_one();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the event log's fsync thread panicked");
        }
        self.failures()
    }
}

fn sync_loop(shared: &(Mutex<SyncState>, Condvar), every: Duration) {
    let (state, wake) = shared;
    let mut last: Option<Instant> = None;
    loop {
        let files = {
            let mut s = lock(state);
            while s.dirty.is_empty() && !s.closing {
                s = wake.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            if s.dirty.is_empty() {
                return;
            }
            // Let more writes gather under this fsync (group commit), unless closing.
            if let Some(due) = last.map(|l| l + every) {
                let left = due.saturating_duration_since(Instant::now());
                s = wake
                    .wait_timeout_while(s, left, |s| !s.closing)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            std::mem::take(&mut s.dirty)
        };
        last = Some(Instant::now());
        let mut failed = Vec::new();
        for (key, d) in files {
            if let Err(e) = d.file.sync_data() {
                failed.push((key, io("fsync", &d.path)(e)));
            }
        }
        if !failed.is_empty() {
            lock(state).failed.extend(failed);
        }
    }
}

/// Frames one batch into its partitions' buffers.
fn apply(
    append: Append,
    writers: &mut HashMap<usize, PartWriter>,
    dirty: &mut Vec<usize>,
    config: &WriterConfig,
) -> Waiting {
    let Append {
        topic,
        messages,
        reply,
    } = append;
    let mut waiting = Waiting {
        reply,
        parts: Vec::new(),
        error: None,
    };
    let count = topic.partitions.len() as u32;
    for message in &messages {
        let part = &topic.partitions[partition_for(&message.key, count) as usize];
        let key = Arc::as_ptr(part) as usize;
        let w = match writers.entry(key) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => match PartWriter::open(part.clone()) {
                Ok(w) => v.insert(w),
                Err(e) => {
                    waiting.error = Some(e);
                    return waiting;
                }
            },
        };
        if let Some(f) = &w.failed {
            waiting.error = Some(f.to_error());
            return waiting;
        }
        if !waiting.parts.contains(&key) {
            waiting.parts.push(key);
        }
        if !dirty.contains(&key) {
            dirty.push(key);
        }
        if let Err(e) = w.append(message, config) {
            w.fail(&e);
            waiting.error = Some(e);
            return waiting;
        }
    }
    waiting
}

/// Publishes what was written, wakes consumers and answers the waiting producers.
fn finish(
    writers: &mut HashMap<usize, PartWriter>,
    waiting: &mut Vec<Waiting>,
    wake: &watch::Sender<u64>,
) {
    let mut published = false;
    for w in writers.values_mut() {
        if w.failed.is_none() && w.unpublished {
            w.publish();
            published = true;
        }
    }
    if published {
        wake.send_modify(|n| *n = n.wrapping_add(1));
    }
    for mut wait in waiting.drain(..) {
        let error = wait.error.take().or_else(|| {
            wait.parts
                .iter()
                .find_map(|k| writers.get(k).and_then(|w| w.failed.as_ref()))
                .map(Failure::to_error)
        });
        let _ = wait.reply.send(match error {
            Some(e) => Err(e),
            None => Ok(()),
        });
    }
}
