//! The event log's contract: what every implementation (embedded, Kafka) provides.
//!
//! A log holds named **topics**, each split into **partitions**; a message goes to the
//! partition its key hashes to ([`partition_for`]), so messages with one key keep their
//! order. Within a partition every record has an **offset**, counted from 0. Consumers
//! belong to a **group**; a group's committed offset per partition is where its next
//! consumer starts. Delivery is at least once: a consumer commits after processing, so
//! after a crash it may see records again and must be idempotent.

use std::time::Duration;

use async_trait::async_trait;

/// A partition number within a topic.
pub type Partition = u32;
/// A record's position within its partition, from 0.
pub type Offset = u64;

/// The error type of the event log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The log cannot be reached now (broker down, timeout). Retrying later may work.
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    /// A topic that does not exist was named.
    #[error("topic {0:?} does not exist; run `hotline ops topics` to create it")]
    UnknownTopic(String),
    /// A topic exists but not as specified (e.g. fewer partitions than required).
    #[error("topic {topic:?}: {problem}")]
    TopicMismatch {
        /// The topic.
        topic: String,
        /// What differs, with both values.
        problem: String,
    },
    /// A configuration value is wrong.
    #[error("event log configuration: {0}")]
    Config(String),
    /// A file of the embedded log could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("open", "append to", "fsync", …).
        op: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Kafka refused or failed a request for a reason that is not "unavailable".
    #[error("kafka: {0}")]
    Kafka(String),
    /// The log is closed (shut down).
    #[error("event log closed")]
    Closed,
}

impl Error {
    /// Whether retrying the same call later may succeed (the broker may come back);
    /// everything else is fatal for that call.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A message to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The partition key (`tenant/contact` or `tenant/agent` for events).
    pub key: Vec<u8>,
    /// The payload (an encoded event).
    pub value: Vec<u8>,
    /// When the message was produced, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: Partition,
    /// Its offset within the partition.
    pub offset: Offset,
    /// The message's key.
    pub key: Vec<u8>,
    /// The message's payload.
    pub value: Vec<u8>,
    /// The producer's timestamp, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

/// Bytes a consumer had to skip because they could not be read as a record (a corrupt
/// segment). Reported so it can be logged, counted and quarantined; the consumer goes on
/// with the next readable record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: Partition,
    /// The offset the unreadable bytes were expected to hold (the first one skipped).
    pub offset: Offset,
    /// The file and byte position, or other location, of the damage.
    pub location: String,
    /// What was wrong (checksum mismatch, truncated record, …).
    pub reason: String,
}

/// What one [`Consumer::poll`] returns.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Poll {
    /// Records in order per partition.
    pub records: Vec<Record>,
    /// Damage found and stepped over while reading them.
    pub skipped: Vec<Skipped>,
}

/// A topic as it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Its name.
    pub name: String,
    /// How many partitions (order holds per key within one).
    pub partitions: u32,
    /// How long records are kept; `None` keeps them forever.
    pub retention: Option<Duration>,
    /// How many bytes per partition are kept at most; `None` has no limit.
    pub retention_bytes: Option<u64>,
}

/// A topic as the log has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Its name.
    pub name: String,
    /// How many partitions it has.
    pub partitions: u32,
    /// Its retention, where the log reports it.
    pub retention: Option<Duration>,
}

/// Where a consumer of a group with no committed offset (or told to ignore it) starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// The group's committed offset; the earliest kept record where there is none.
    Committed,
    /// The earliest kept record, whatever was committed (for replay).
    Earliest,
    /// Only records appended after the consumer started, where nothing was committed.
    Latest,
}

/// How to consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// The consumer group; committed offsets are kept per group.
    pub group: String,
    /// The topics to read.
    pub topics: Vec<String>,
    /// Where to start.
    pub start: StartFrom,
}

impl ConsumerConfig {
    /// A consumer of `group` reading `topics` from the group's committed offsets.
    pub fn new(group: impl Into<String>, topics: &[&str]) -> Self {
        Self {
            group: group.into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            start: StartFrom::Committed,
        }
    }

    /// The same, starting elsewhere.
    pub fn starting(mut self, start: StartFrom) -> Self {
        self.start = start;
        self
    }
}

/// The partition a key goes to: CRC-32 of the key modulo the partition count — the
/// same rule as librdkafka's `consistent` partitioner, so the embedded log and Kafka
/// place every key alike.
pub fn partition_for(key: &[u8], partitions: u32) -> Partition {
    if partitions <= 1 {
        return 0;
    }
    crc32fast::hash(key) % partitions
}

/// An event log: the embedded one or Kafka.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Which implementation this is (`"embedded"`, `"kafka"`), for logs and errors.
    fn kind(&self) -> &'static str;

    /// Creates each topic that is missing and checks each that exists against its spec
    /// (an existing topic with fewer partitions is a [`Error::TopicMismatch`]). Returns
    /// what the log now has, in the order of `specs`.
    async fn ensure_topics(&self, specs: &[TopicSpec]) -> Result<Vec<TopicInfo>>;

    /// The topic as the log has it, or `None` if it does not exist.
    async fn describe_topic(&self, name: &str) -> Result<Option<TopicInfo>>;

    /// Per partition, the offset the next appended record will get (the high
    /// watermark). A replay reads until it reaches these.
    async fn end_offsets(&self, topic: &str) -> Result<Vec<Offset>>;

    /// A producer. Cheap to share: one per process is enough.
    fn producer(&self) -> Result<Box<dyn Producer>>;

    /// A consumer in a group.
    async fn consumer(&self, config: ConsumerConfig) -> Result<Box<dyn Consumer>>;
}

/// Appends messages.
#[async_trait]
pub trait Producer: Send + Sync {
    /// Appends `messages` to `topic`, each to the partition its key hashes to, in the
    /// order given; returns once all are durable (Kafka: acknowledged by all in-sync
    /// replicas; embedded: under the fsync policy). On error none, some or all may have
    /// been appended: the caller retries the whole batch and consumers drop duplicates.
    async fn send(&self, topic: &str, messages: Vec<Message>) -> Result<()>;

    /// Hands `messages` to the log and returns once they are queued behind every batch
    /// this producer was handed before (so batches started one after another are
    /// appended in that order); the returned [`Delivery`] then resolves as
    /// [`Producer::send`] would. A caller keeps several batches in flight this way
    /// instead of waiting a round trip per batch. An error here means nothing of the
    /// batch is still in flight.
    ///
    /// The default appends the whole batch before it returns (no pipelining): right
    /// for a log whose `send` is a local append.
    async fn start_send(&self, topic: &str, messages: Vec<Message>) -> Result<Delivery> {
        self.send(topic, messages).await?;
        Ok(Box::pin(std::future::ready(Ok(()))))
    }
}

/// A batch handed to a log by [`Producer::start_send`]: resolves once it is durable, or
/// with the error [`Producer::send`] would have returned. It completes whether or not it
/// is polled; polling only observes the outcome.
pub type Delivery = std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>>;

/// Reads a group's share of its topics.
#[async_trait]
pub trait Consumer: Send {
    /// Up to `max` records (and any damage stepped over), waiting up to `wait` for the
    /// first. An empty poll is not an error.
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Poll>;

    /// Records that processing is done for everything before `next` in each
    /// `(topic, partition, next)`: the group's next consumer starts there.
    async fn commit(&mut self, positions: &[(String, Partition, Offset)]) -> Result<()>;

    /// Like [`Consumer::commit`], but returns without waiting for the positions to be
    /// stored, so a consumer that commits as it goes is not held up by a slow disk or a
    /// broker round trip. Commits are stored in the order made; a failure is logged
    /// (the embedded log also returns it from the next `commit` or `start_commit`;
    /// Kafka reports it to the consumer's commit callback only). A crash before one is stored
    /// means its records are delivered again — at least once, as always. The default
    /// waits, as `commit` does.
    async fn start_commit(&mut self, positions: &[(String, Partition, Offset)]) -> Result<()> {
        self.commit(positions).await
    }
}
