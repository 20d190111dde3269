//! The embedded event log: durable segment files on local disk, the default of
//! `hotline up` and the ACD publisher's spool. One process owns a directory.
//!
//! # Layout on disk
//!
//! ```text
//! dir/LOCK                                  advisory lock: one process at a time
//! dir/<topic>/topic.json                    partitions and retention (replaced atomically)
//! dir/<topic>/<partition>/<base offset>.log segments, 20-digit base offset of the first record
//! dir/groups/<group>.json                   a group's committed offsets (replaced atomically)
//! ```
//!
//! # How data flows
//!
//! [`Producer::send`] hands a batch to the writer thread ([`writer`]) and waits. The
//! writer frames records ([`frame`]: magic, CRC-32, length, offset, timestamp, key,
//! value) into one buffer per partition, writes each with one call, makes the records
//! visible in each partition's view ([`partition`]) and answers — after an fsync under
//! [`FsyncPolicy::Always`], at once under the default group commit
//! ([`FsyncPolicy::Interval`]), whose fsync runs on a thread of its own. Consumers
//! ([`group`]) wait on a `watch` channel the writer bumps, then read segment files
//! directly on a blocking thread ([`reader`]), stepping over damaged bytes and
//! reporting them as [`Skipped`](crate::log::Skipped).
//!
//! # Crashes
//!
//! A process crash loses nothing that was acknowledged: it is in the page cache. A
//! machine crash (power, kernel) can take back what was written since the last fsync
//! under `Interval` (one interval, more if that fsync was slow) and anything under
//! `Never` — records consumers may already have read and committed, as with a Kafka
//! broker that loses its page cache. On opening, a consumer group whose committed
//! offset is past the end of its partition resumes at the end (with a warning), so new
//! records are never skipped; services that keep positions of their own (KPI's
//! checkpoint) check them against [`EventLog::end_offsets`] the same way.
//! `FsyncPolicy::Always` never acknowledges or shows a record before its fsync.
//!
//! Opening scans every segment once to rebuild the sparse index; a torn record at the
//! end of a partition's newest segment (a crash mid-write) is cut off, damage anywhere
//! else is kept and stepped over by readers. A background task deletes whole sealed
//! segments past the topic's retention (by the newest record's timestamp) or beyond
//! its byte limit; the segment being appended to is never deleted.
//!
//! Consumer groups: a group's partitions are split among its live consumers in this
//! process (see [`group`]).

mod frame;
mod group;
mod partition;
mod reader;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};

use crate::log::{
    Consumer, ConsumerConfig, Error, EventLog, Message, Offset, Producer, Result, TopicInfo,
    TopicSpec,
};
use group::{EmbeddedConsumer, Groups, write_atomically};
use partition::{PartitionLog, io};
use writer::{Append, WriterConfig};

/// When appended records are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// fsync before every `send` returns and before readers see the records (batches
    /// arriving together share one fsync). Survives a machine crash; every batch
    /// waits for the disk.
    Always,
    /// Group commit in the background: `send` returns, and readers see the records,
    /// once they are written; a thread of its own fsyncs every file written at most
    /// this long later. Survives a process crash; a machine crash can take back the
    /// last interval (see "Crashes" in the module docs). A slow fsync delays nobody.
    Interval(Duration),
    /// Never fsync; the OS writes pages back when it likes. Survives a process crash,
    /// not a machine crash.
    Never,
}

/// How the embedded log behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedConfig {
    /// When appends are made durable.
    pub fsync: FsyncPolicy,
    /// A segment is sealed and a new one started once it reaches this size; retention
    /// deletes whole segments, so this is also its granularity.
    pub segment_bytes: u64,
    /// How often retention runs.
    pub retention_check: Duration,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            fsync: FsyncPolicy::Interval(Duration::from_millis(5)),
            segment_bytes: 64 * 1024 * 1024,
            retention_check: Duration::from_secs(60),
        }
    }
}

impl EmbeddedConfig {
    /// Checks the values make sense.
    pub fn validate(&self) -> Result<()> {
        if self.segment_bytes < 4096 {
            return Err(Error::Config(format!(
                "segment_bytes must be at least 4096, got {}",
                self.segment_bytes
            )));
        }
        if self.retention_check.is_zero() {
            return Err(Error::Config(
                "retention_check must be more than zero".into(),
            ));
        }
        if let FsyncPolicy::Interval(d) = self.fsync
            && d.is_zero()
        {
            return Err(Error::Config(
                "fsync interval must be more than zero (use FsyncPolicy::Always)".into(),
            ));
        }
        Ok(())
    }
}

/// What one retention pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Segment files deleted.
    pub segments_deleted: usize,
    /// Bytes they held.
    pub bytes_deleted: u64,
}

/// Retention of a topic, as stored in `topic.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Retention {
    retention_ms: Option<u64>,
    retention_bytes: Option<u64>,
}

/// The file form of a topic's metadata.
#[derive(Debug, Serialize, Deserialize)]
struct TopicFile {
    name: String,
    partitions: u32,
    #[serde(flatten)]
    retention: Retention,
}

/// One topic, open.
#[derive(Debug)]
pub(crate) struct TopicLog {
    /// Its name.
    pub name: String,
    /// Its partitions, by number.
    pub partitions: Vec<Arc<PartitionLog>>,
    retention: Mutex<Retention>,
}

impl TopicLog {
    fn retention(&self) -> Retention {
        *self.retention.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn info(&self) -> TopicInfo {
        TopicInfo {
            name: self.name.clone(),
            partitions: self.partitions.len() as u32,
            retention: self.retention().retention_ms.map(Duration::from_millis),
        }
    }
}

/// The shared state of an open log; dropped when the last handle, producer and
/// consumer are gone, which stops the writer and releases the lock.
pub(crate) struct Inner {
    dir: PathBuf,
    topics: RwLock<HashMap<String, Arc<TopicLog>>>,
    /// Serialises topic creation.
    creating: Mutex<()>,
    groups: Groups,
    tx: Option<mpsc::Sender<Append>>,
    writer: Option<JoinHandle<()>>,
    /// Bumped when records become visible or a group's membership changes.
    wake: watch::Sender<u64>,
    members: AtomicU64,
    /// Held (locked) for as long as the log is open.
    _lock: File,
}

impl Inner {
    fn topic(&self, name: &str) -> Result<Arc<TopicLog>> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownTopic(name.to_string()))
    }

    fn next_member(&self) -> u64 {
        self.members.fetch_add(1, Ordering::Relaxed)
    }

    fn wake_all(&self) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish what it has and exit.
        self.tx.take();
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!(dir = %self.dir.display(), "event log writer thread panicked");
        }
    }
}

/// The embedded event log. Cheap to clone; every clone is the same log.
#[derive(Clone)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbeddedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedLog")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log in `dir`: takes the directory's lock, scans
    /// every topic's segments (truncating torn tails), starts the writer thread and the
    /// retention task. Must be called within a tokio runtime.
    ///
    /// Fails with [`Error::Config`] naming the directory if another process (or another
    /// open handle in this one) holds it.
    pub async fn open(dir: impl AsRef<Path>, config: EmbeddedConfig) -> Result<Self> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let scan_dir = dir.clone();
        let (lock, topics) = tokio::task::spawn_blocking(move || open_dir(&scan_dir))
            .await
            .map_err(|e| Error::Unavailable(format!("opening the event log failed: {e}")))??;
        let (tx, rx) = mpsc::channel();
        let (wake, _) = watch::channel(0u64);
        let writer_wake = wake.clone();
        let writer_config = WriterConfig {
            fsync: config.fsync,
            segment_bytes: config.segment_bytes,
        };
        let writer = std::thread::Builder::new()
            .name("eventlog-writer".into())
            .spawn(move || writer::run(rx, writer_config, writer_wake))
            .map_err(io("start the writer thread for", &dir))?;
        let inner = Arc::new(Inner {
            dir,
            topics: RwLock::new(topics),
            creating: Mutex::new(()),
            groups: Groups::default(),
            tx: Some(tx),
            writer: Some(writer),
            wake,
            members: AtomicU64::new(0),
            _lock: lock,
        });
        tokio::spawn(retention_task(
            Arc::downgrade(&inner),
            config.retention_check,
        ));
        Ok(Self { inner })
    }

    /// The directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Runs retention now (the background task does this every
    /// [`EmbeddedConfig::retention_check`]): deletes sealed segments whose newest record
    /// is older than the topic's retention, then the oldest while a partition holds more
    /// than its byte limit. Never the segment being appended to.
    pub async fn enforce_retention(&self) -> Result<RetentionReport> {
        self.enforce_retention_at(now_ms()).await
    }

    /// [`enforce_retention`](Self::enforce_retention) as if the time were `now_ms`
    /// (milliseconds since the epoch), for tests and virtual time.
    pub async fn enforce_retention_at(&self, now_ms: i64) -> Result<RetentionReport> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || enforce_retention(&inner, now_ms))
            .await
            .map_err(|e| Error::Unavailable(format!("retention task failed: {e}")))?
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Takes the lock and opens every topic found in `dir`.
fn open_dir(dir: &Path) -> Result<(File, HashMap<String, Arc<TopicLog>>)> {
    fs::create_dir_all(dir.join("groups")).map_err(io("create", dir))?;
    let lock_path = dir.join("LOCK");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io("open", &lock_path))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(Error::Config(format!(
                "event log directory {} is in use by another process (lock file {} is held); \
                 stop it or choose another directory",
                dir.display(),
                lock_path.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io("lock", &lock_path)(e)),
    }
    let mut topics = HashMap::new();
    for entry in fs::read_dir(dir).map_err(io("list", dir))? {
        let entry = entry.map_err(io("list", dir))?;
        let meta_path = entry.path().join("topic.json");
        if !meta_path.is_file() {
            continue;
        }
        let bytes = fs::read(&meta_path).map_err(io("read", &meta_path))?;
        let meta: TopicFile = serde_json::from_slice(&bytes).map_err(|e| {
            Error::Config(format!(
                "topic metadata {} is unreadable: {e}",
                meta_path.display()
            ))
        })?;
        let mut partitions = Vec::with_capacity(meta.partitions as usize);
        for p in 0..meta.partitions {
            let pdir = entry.path().join(p.to_string());
            let part = if pdir.is_dir() {
                PartitionLog::open(&meta.name, p, pdir)?
            } else {
                PartitionLog::create(&meta.name, p, pdir)?
            };
            partitions.push(Arc::new(part));
        }
        topics.insert(
            meta.name.clone(),
            Arc::new(TopicLog {
                name: meta.name,
                partitions,
                retention: Mutex::new(meta.retention),
            }),
        );
    }
    group::clamp_committed(dir, &topics)?;
    Ok((lock, topics))
}

/// Topic names become directory names: Kafka's rules, minus the `groups` directory.
fn check_topic_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name != "groups"
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "topic name {name:?} is not allowed: use 1-249 of [A-Za-z0-9._-], not \"groups\""
        )))
    }
}

fn retention_of(spec: &TopicSpec) -> Retention {
    Retention {
        retention_ms: spec.retention.map(|d| d.as_millis() as u64),
        retention_bytes: spec.retention_bytes,
    }
}

fn write_topic_file(dir: &Path, name: &str, partitions: u32, retention: Retention) -> Result<()> {
    let file = TopicFile {
        name: name.to_string(),
        partitions,
        retention,
    };
    let bytes = serde_json::to_vec_pretty(&file)
        .map_err(|e| Error::Config(format!("cannot encode metadata of topic {name:?}: {e}")))?;
    write_atomically(&dir.join(name).join("topic.json"), &bytes)
}

/// Creates or checks one topic.
fn ensure_topic(inner: &Inner, spec: &TopicSpec) -> Result<TopicInfo> {
    check_topic_name(&spec.name)?;
    if spec.partitions == 0 {
        return Err(Error::Config(format!(
            "topic {:?} must have at least one partition",
            spec.name
        )));
    }
    let _creating = inner.creating.lock().unwrap_or_else(|e| e.into_inner());
    let wanted = retention_of(spec);
    if let Ok(topic) = inner.topic(&spec.name) {
        let have = topic.partitions.len() as u32;
        if have < spec.partitions {
            return Err(Error::TopicMismatch {
                topic: spec.name.clone(),
                problem: format!(
                    "has {have} partitions, {} required; partitions cannot be added to an \
                     embedded topic without moving keys",
                    spec.partitions
                ),
            });
        }
        if topic.retention() != wanted {
            write_topic_file(&inner.dir, &spec.name, have, wanted)?;
            *topic.retention.lock().unwrap_or_else(|e| e.into_inner()) = wanted;
        }
        return Ok(topic.info());
    }
    let tdir = inner.dir.join(&spec.name);
    fs::create_dir_all(&tdir).map_err(io("create", &tdir))?;
    let mut partitions = Vec::with_capacity(spec.partitions as usize);
    for p in 0..spec.partitions {
        partitions.push(Arc::new(PartitionLog::create(
            &spec.name,
            p,
            tdir.join(p.to_string()),
        )?));
    }
    // The metadata goes last: a topic without it is not a topic yet.
    write_topic_file(&inner.dir, &spec.name, spec.partitions, wanted)?;
    let topic = Arc::new(TopicLog {
        name: spec.name.clone(),
        partitions,
        retention: Mutex::new(wanted),
    });
    let info = topic.info();
    inner
        .topics
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(spec.name.clone(), topic);
    Ok(info)
}

fn enforce_retention(inner: &Inner, now_ms: i64) -> Result<RetentionReport> {
    let topics: Vec<Arc<TopicLog>> = inner
        .topics
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect();
    let mut report = RetentionReport::default();
    for topic in topics {
        let retention = topic.retention();
        if retention.retention_ms.is_none() && retention.retention_bytes.is_none() {
            continue;
        }
        let cutoff = retention
            .retention_ms
            .map(|ms| now_ms.saturating_sub(ms.min(i64::MAX as u64) as i64));
        for part in &topic.partitions {
            let doomed = {
                let mut view = part.view();
                let mut total: u64 = view.segments.iter().map(|s| s.len).sum();
                let mut n = 0;
                while n + 1 < view.segments.len() {
                    let seg = &view.segments[n];
                    let too_old = cutoff.is_some_and(|c| seg.max_ts < c);
                    let too_big = retention.retention_bytes.is_some_and(|b| total > b);
                    if !(too_old || too_big) {
                        break;
                    }
                    total -= seg.len;
                    n += 1;
                }
                view.segments.drain(..n).collect::<Vec<_>>()
            };
            for seg in doomed {
                tracing::info!(
                    topic = %topic.name, partition = part.partition, file = %seg.path.display(),
                    base = seg.base, "retention: deleting segment"
                );
                fs::remove_file(&*seg.path).map_err(io("delete", &seg.path))?;
                report.segments_deleted += 1;
                report.bytes_deleted += seg.len;
            }
        }
    }
    Ok(report)
}

async fn retention_task(inner: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let result =
            tokio::task::spawn_blocking(move || enforce_retention(&strong, now_ms())).await;
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "event log retention failed; will retry"),
            Err(e) => tracing::warn!(error = %e, "event log retention task failed; will retry"),
        }
    }
}

// === impl EventLog ===

#[async_trait]
impl EventLog for EmbeddedLog {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn ensure_topics(&self, specs: &[TopicSpec]) -> Result<Vec<TopicInfo>> {
        let inner = self.inner.clone();
        let specs = specs.to_vec();
        tokio::task::spawn_blocking(move || specs.iter().map(|s| ensure_topic(&inner, s)).collect())
            .await
            .map_err(|e| Error::Unavailable(format!("topic creation task failed: {e}")))?
    }

    async fn describe_topic(&self, name: &str) -> Result<Option<TopicInfo>> {
        Ok(self.inner.topic(name).ok().map(|t| t.info()))
    }

    async fn end_offsets(&self, topic: &str) -> Result<Vec<Offset>> {
        let topic = self.inner.topic(topic)?;
        Ok(topic.partitions.iter().map(|p| p.view().end).collect())
    }

    fn producer(&self) -> Result<Box<dyn Producer>> {
        Ok(Box::new(EmbeddedProducer {
            inner: self.inner.clone(),
        }))
    }

    async fn consumer(&self, config: ConsumerConfig) -> Result<Box<dyn Consumer>> {
        Ok(Box::new(EmbeddedConsumer::join(
            self.inner.clone(),
            config,
        )?))
    }
}

/// Appends through the writer thread.
struct EmbeddedProducer {
    inner: Arc<Inner>,
}

#[async_trait]
impl Producer for EmbeddedProducer {
    async fn send(&self, topic: &str, messages: Vec<Message>) -> Result<()> {
        let topic = self.inner.topic(topic)?;
        if messages.is_empty() {
            return Ok(());
        }
        if let Some(m) = messages
            .iter()
            .find(|m| frame::framed_len(m) > frame::MAX_BODY)
        {
            return Err(Error::Config(format!(
                "a message with {} bytes of key and value is larger than the embedded log's record limit of {} bytes",
                m.key.len() + m.value.len(),
                frame::MAX_BODY
            )));
        }
        let (reply, answer) = oneshot::channel();
        let tx = self.inner.tx.as_ref().ok_or(Error::Closed)?;
        tx.send(Append {
            topic,
            messages,
            reply,
        })
        .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }
}
