//! The production event log: Kafka, through rdkafka (librdkafka, bundled).
//!
//! # Why it looks like this
//!
//! - **Placement**: every message is sent to an explicit partition computed with
//!   [`partition_for`](crate::log::partition_for) (CRC-32 of the key), and the producer
//!   is also configured with `partitioner=consistent` (the same CRC-32 rule), so Kafka
//!   and the embedded log place every key alike whichever path is taken.
//! - **Durability and order**: `acks=all` and `enable.idempotence=true`, so a retried
//!   batch is neither duplicated nor reordered by the broker. [`Producer::send`] waits
//!   for every delivery report and maps failures onto [`Error`]: a broker that is down
//!   or slow is [`Error::Unavailable`] (retryable), everything else is fatal for the call.
//!   A producer that librdkafka declared fatally broken (an idempotence state the broker
//!   no longer knows, e.g. after a broker restart that lost its state) is replaced by a
//!   fresh one before the error is returned, so the caller's retry can succeed.
//!   Measured against tansu 0.6.0 (the test broker): it accepts the idempotent producer
//!   (`InitProducerId` works, batches are acknowledged), so idempotence stays on and
//!   no fallback is needed. What it does not survive is a restart with memory storage:
//!   the new broker does not know the old producer id, never acknowledges its batches
//!   and raises no fatal error, so every message times out. Hence the replacement on
//!   timeout; with it, delivery resumes within one `delivery_timeout`. The fallback,
//!   `idempotence: false` ([`KafkaConfig::idempotence`]: one request in flight per
//!   broker, so order holds), is for brokers that refuse `InitProducerId`; against a
//!   restarted tansu it resumes at once (~0.1 s, measured) as there is no producer id
//!   to lose.
//! - **Throughput**: `linger.ms=5`, batches of up to 10 000 messages or 1 MB, lz4.
//!   Measured on a 2-core machine against tansu (debug build, shared machine):
//!   460 000–520 000 events/s of ~157 bytes through `send` in batches of 10 000;
//!   a bare `FutureProducer` queueing 100 000 and then awaiting them did
//!   320 000–390 000/s in the same runs (`tests/kafka.rs` prints both).
//! - **Consumers** are group members with `enable.auto.commit=false`; [`Consumer::commit`]
//!   commits explicit offsets synchronously. [`StartFrom::Earliest`] rewinds each
//!   partition to its beginning the first time this consumer is assigned it, ignoring
//!   what the group committed.
//! - **Admin**: topics are created through the admin API and read back from cluster
//!   metadata; metadata is always fetched for all topics, never for one by name, so
//!   looking at a topic never auto-creates it.
//!
//! # Data flow
//!
//! ```text
//! send(topic, messages) ─▶ partition_for(key) ─▶ FutureProducer ─▶ broker
//!                                          ◀── delivery reports (awaited, in order)
//! broker ─▶ StreamConsumer (group) ─▶ poll ─▶ Record ─▶ caller ─▶ commit(explicit)
//! ```
//!
//! # Layout
//!
//! - this module: [`KafkaConfig`], [`KafkaLog`] (topics, metadata, watermarks), error
//!   mapping.
//! - [`producer`]: [`KafkaProducer`], the batch sender.
//! - [`consumer`]: [`KafkaConsumer`], the group member.

pub mod consumer;
pub mod producer;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use rdkafka::producer::Producer as _;

use crate::log::{
    Consumer, ConsumerConfig, Error, EventLog, Offset, Producer, Result, StartFrom, TopicInfo,
    TopicSpec,
};

pub use consumer::KafkaConsumer;
pub use producer::KafkaProducer;

/// How to reach Kafka and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]` of one or more brokers (`bootstrap.servers`).
    pub bootstrap_servers: String,
    /// The client id brokers log and quota by (`client.id`); consumers append `-consumer`.
    pub client_id: String,
    /// Extra librdkafka properties, applied last, so they override Hotline's choices
    /// (e.g. `security.protocol`, `sasl.*`, `linger.ms`).
    pub properties: BTreeMap<String, String>,
    /// How long metadata, admin, watermark and commit requests may take.
    pub request_timeout: Duration,
    /// How long librdkafka keeps trying to deliver one message before failing it
    /// (`message.timeout.ms`); bounds how long [`Producer::send`] can take.
    pub delivery_timeout: Duration,
    /// Consumer group session timeout (`session.timeout.ms`). Short (6 s) so that
    /// group joins and failovers are quick; Kafka's own default makes joins slow.
    pub session_timeout: Duration,
    /// Replication factor for topics this log creates; `None` takes the broker's
    /// default (`default.replication.factor`).
    pub replication_factor: Option<u16>,
    /// Whether the producer is idempotent (`enable.idempotence`). When off, at most one
    /// request is in flight per broker so a retry cannot reorder a partition.
    pub idempotence: bool,
    /// Whether [`EventLog::end_offsets`] reads past the reported high watermark to find
    /// the true end. Apache Kafka reports it right; tansu 0.6 (the test broker) reports
    /// the base offset of the partition's last batch + 1, so a replay would stop short.
    /// On, each call reads the last batch of every non-empty partition (one fetch).
    pub verify_end_offsets: bool,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap_servers: "127.0.0.1:9092".to_string(),
            client_id: "hotline".to_string(),
            properties: BTreeMap::new(),
            request_timeout: Duration::from_secs(10),
            delivery_timeout: Duration::from_secs(30),
            session_timeout: Duration::from_secs(6),
            replication_factor: None,
            idempotence: true,
            verify_end_offsets: false,
        }
    }
}

impl KafkaConfig {
    /// The defaults, for the given brokers.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            ..Self::default()
        }
    }

    /// Checks every value, naming the one that is wrong.
    pub fn validate(&self) -> Result<()> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err(Error::Config(
                "kafka bootstrap_servers is empty; give host:port of at least one broker"
                    .to_string(),
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err(Error::Config("kafka client_id is empty".to_string()));
        }
        for (name, value) in [
            ("request_timeout", self.request_timeout),
            ("delivery_timeout", self.delivery_timeout),
            ("session_timeout", self.session_timeout),
        ] {
            if value.is_zero() || value > Duration::from_secs(3600) {
                return Err(Error::Config(format!(
                    "kafka {name} is {value:?}; it must be more than 0 and at most 1 h"
                )));
            }
        }
        if self.session_timeout < Duration::from_secs(1) {
            return Err(Error::Config(format!(
                "kafka session_timeout is {:?}; brokers refuse less than 1 s",
                self.session_timeout
            )));
        }
        if self.replication_factor == Some(0) {
            return Err(Error::Config(
                "kafka replication_factor is 0; use at least 1, or leave it unset for the broker's default"
                    .to_string(),
            ));
        }
        Ok(())
    }

    /// Properties every client (producer, consumer, admin) shares.
    fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", &self.client_id)
            // Reconnect quickly after a broker restart (librdkafka's default backs off
            // to 10 s).
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "1000")
            .set("socket.keepalive.enable", "true")
            // Never create a topic by touching it: topics come from `ensure_topics`.
            .set("allow.auto.create.topics", "false");
        c
    }

    fn apply_extra(&self, c: &mut ClientConfig) {
        for (k, v) in &self.properties {
            c.set(k, v);
        }
    }

    fn producer_config(&self) -> ClientConfig {
        let mut c = self.base();
        c.set("acks", "all")
            .set("partitioner", "consistent")
            .set("message.timeout.ms", millis(self.delivery_timeout))
            .set("request.timeout.ms", millis(self.request_timeout))
            // Throughput: fill large batches and let them wait a few ms for company.
            .set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            .set("batch.size", "1000000")
            .set("queue.buffering.max.messages", "1000000")
            .set("queue.buffering.max.kbytes", "1048576")
            .set("compression.type", "lz4")
            .set("retry.backoff.ms", "100")
            .set("retry.backoff.max.ms", "1000");
        if self.idempotence {
            // A batch that fails in a way that would leave a gap in a partition's
            // sequence stops the producer instead (it is then replaced, see
            // producer.rs): batches pipelined behind it can never land before it.
            c.set("enable.idempotence", "true")
                .set("enable.gapless.guarantee", "true");
        } else {
            c.set("enable.idempotence", "false")
                .set("max.in.flight.requests.per.connection", "1");
        }
        self.apply_extra(&mut c);
        c
    }

    fn consumer_config(&self, group: &str, reset: &str) -> ClientConfig {
        let mut c = self.base();
        c.set("client.id", format!("{}-consumer", self.client_id))
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", reset)
            .set("session.timeout.ms", millis(self.session_timeout))
            .set(
                "heartbeat.interval.ms",
                millis((self.session_timeout / 3).max(Duration::from_millis(100))),
            )
            .set("enable.partition.eof", "false")
            // A broker with nothing new answers a fetch after at most this long: the
            // latency floor for a quiet partition. 100 ms measured p50 64 ms / p99 135 ms
            // ACD -> tansu -> KPI at 50k events/s; 10 ms gave 34 / 71 ms.
            .set("fetch.wait.max.ms", "10")
            .set("socket.timeout.ms", millis(self.request_timeout));
        self.apply_extra(&mut c);
        c
    }

    fn admin_config(&self) -> ClientConfig {
        let mut c = self.base();
        c.set("client.id", format!("{}-admin", self.client_id));
        self.apply_extra(&mut c);
        c
    }
}

fn millis(d: Duration) -> String {
    d.as_millis().min(i32::MAX as u128).to_string()
}

// === impl KafkaLog ===

/// The Kafka event log. Cloning is cheap; clones share clients.
#[derive(Clone)]
pub struct KafkaLog {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    config: KafkaConfig,
    admin: AdminClient<DefaultClientContext>,
    /// The one producer every [`KafkaProducer`] shares; replaced when librdkafka
    /// declares it fatally broken.
    producer: producer::Shared,
    /// Partition counts of topics seen, so `send` need not ask for metadata each time;
    /// dropped for a topic when a send to it fails.
    partitions: Mutex<HashMap<String, u32>>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("bootstrap_servers", &self.inner.config.bootstrap_servers)
            .field("client_id", &self.inner.config.client_id)
            .finish_non_exhaustive()
    }
}

impl KafkaLog {
    /// Builds the clients without talking to a broker: for processes that must start
    /// while Kafka is away (the ACD's publisher spools until it returns).
    pub fn new(config: KafkaConfig) -> Result<Self> {
        config.validate()?;
        let admin = config
            .admin_config()
            .create::<AdminClient<DefaultClientContext>>()
            .map_err(|e| config_error("admin client", e))?;
        let producer = producer::Shared::new(&config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                admin,
                producer,
                partitions: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Builds the clients and checks that a broker answers within the request timeout
    /// ([`Error::Unavailable`] if none does).
    pub async fn connect(config: KafkaConfig) -> Result<Self> {
        let log = Self::new(config)?;
        log.metadata().await?;
        Ok(log)
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &KafkaConfig {
        &self.inner.config
    }

    /// A producer of this log with its concrete type (for throughput measurements and
    /// callers that want [`KafkaProducer::flush`]).
    pub fn kafka_producer(&self) -> KafkaProducer {
        KafkaProducer::new(self.inner.clone())
    }

    /// Cluster metadata for all topics (never for one by name: that may auto-create it).
    async fn metadata(&self) -> Result<Metadata> {
        self.inner.metadata().await
    }
}

impl Inner {
    pub(crate) fn producer(&self) -> &producer::Shared {
        &self.producer
    }

    async fn metadata(&self) -> Result<Metadata> {
        let client = self.producer.current();
        let timeout = self.config.request_timeout;
        tokio::task::spawn_blocking(move || client.client().fetch_metadata(None, timeout))
            .await
            .map_err(|e| Error::Kafka(format!("metadata task failed: {e}")))?
            .map_err(|e| map_error("fetch metadata", e))
    }

    /// The partition count of `topic`, from the cache or metadata.
    pub(crate) async fn partitions_of(&self, topic: &str) -> Result<u32> {
        if let Some(n) = self.cached_partitions(topic) {
            return Ok(n);
        }
        let info = topic_info(&self.metadata().await?, topic)?
            .ok_or_else(|| Error::UnknownTopic(topic.to_string()))?;
        self.lock_partitions()
            .insert(topic.to_string(), info.partitions);
        Ok(info.partitions)
    }

    fn cached_partitions(&self, topic: &str) -> Option<u32> {
        self.lock_partitions().get(topic).copied()
    }

    /// Forgets what is known of `topic`'s partitions (after a failed send: the topic may
    /// have been recreated).
    pub(crate) fn forget_partitions(&self, topic: &str) {
        self.lock_partitions().remove(topic);
    }

    fn lock_partitions(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.partitions.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn describe(&self, name: &str) -> Result<Option<TopicInfo>> {
        let Some(mut info) = topic_info(&self.metadata().await?, name)? else {
            return Ok(None);
        };
        info.retention = self.retention_of(name).await;
        Ok(Some(info))
    }

    /// `retention.ms` as the broker reports it; `None` if it reports none, reports
    /// "forever" (-1), or cannot describe configs.
    async fn retention_of(&self, name: &str) -> Option<Duration> {
        let opts = AdminOptions::new().request_timeout(Some(self.config.request_timeout));
        let results = self
            .admin
            .describe_configs([&ResourceSpecifier::Topic(name)], &opts)
            .await
            .ok()?;
        let resource = results.into_iter().next()?.ok()?;
        let value = resource.get("retention.ms")?.value.clone()?;
        let ms: i64 = value.parse().ok()?;
        u64::try_from(ms).ok().map(Duration::from_millis)
    }
}

fn topic_info(metadata: &Metadata, name: &str) -> Result<Option<TopicInfo>> {
    let Some(topic) = metadata.topics().iter().find(|t| t.name() == name) else {
        return Ok(None);
    };
    if let Some(code) = topic.error() {
        let code = RDKafkaErrorCode::from(code);
        if code == RDKafkaErrorCode::UnknownTopicOrPartition {
            return Ok(None);
        }
        return Err(map_code(&format!("describe topic {name:?}"), code));
    }
    if topic.partitions().is_empty() {
        return Ok(None);
    }
    Ok(Some(TopicInfo {
        name: name.to_string(),
        partitions: topic.partitions().len() as u32,
        retention: None,
    }))
}

/// The true end of each partition, reading from `high - 1` (the last batch, on a broker
/// that reports its base offset + 1) to the last record (see
/// [`KafkaConfig::verify_end_offsets`]). Blocking.
fn true_ends(config: &KafkaConfig, topic: &str, highs: Vec<Offset>) -> Result<Vec<Offset>> {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    use rdkafka::message::Message as _;

    let mut tpl = rdkafka::TopicPartitionList::new();
    for (p, &high) in highs.iter().enumerate() {
        if high > 0 {
            tpl.add_partition_offset(topic, p as i32, rdkafka::Offset::Offset(high as i64 - 1))
                .map_err(|e| map_error(&format!("read the end of {topic}/{p}"), e))?;
        }
    }
    if tpl.count() == 0 {
        return Ok(highs);
    }
    let mut c = config.base();
    c.set("client.id", format!("{}-ends", config.client_id))
        .set("group.id", format!("{}-ends", config.client_id))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50");
    config.apply_extra(&mut c);
    let consumer: BaseConsumer = c
        .create()
        .map_err(|e| config_error("end-offset reader", e))?;
    consumer
        .assign(&tpl)
        .map_err(|e| map_error(&format!("read the end of {topic}"), e))?;
    let mut ends = highs.clone();
    let mut heard = vec![false; highs.len()];
    let deadline = std::time::Instant::now() + config.request_timeout;
    // Read until every partition delivered its last batch, then until a quiet poll.
    loop {
        let all = heard.iter().zip(&highs).all(|(h, &high)| *h || high == 0);
        let wait = if all {
            Duration::from_millis(200)
        } else {
            Duration::from_millis(100)
        };
        match consumer.poll(wait) {
            Some(Ok(m)) => {
                let p = m.partition() as usize;
                if p < ends.len() {
                    heard[p] = true;
                    ends[p] = ends[p].max(m.offset().max(0) as Offset + 1);
                }
            }
            Some(Err(e)) => return Err(map_error(&format!("read the end of {topic}"), e)),
            None if all => return Ok(ends),
            None => {}
        }
        if std::time::Instant::now() >= deadline {
            return Err(Error::Unavailable(format!(
                "reading the end of {topic} took longer than {:?}",
                config.request_timeout
            )));
        }
    }
}

fn check_spec(spec: &TopicSpec, info: &TopicInfo) -> Result<()> {
    if info.partitions < spec.partitions {
        return Err(Error::TopicMismatch {
            topic: spec.name.clone(),
            problem: format!(
                "has {} partitions, {} required; add partitions with kafka-topics --alter",
                info.partitions, spec.partitions
            ),
        });
    }
    Ok(())
}

#[async_trait]
impl EventLog for KafkaLog {
    fn kind(&self) -> &'static str {
        "kafka"
    }

    async fn ensure_topics(&self, specs: &[TopicSpec]) -> Result<Vec<TopicInfo>> {
        let metadata = self.metadata().await?;
        let mut missing = Vec::new();
        for spec in specs {
            if spec.partitions == 0 {
                return Err(Error::Config(format!(
                    "topic {:?} asks for 0 partitions; at least 1 is needed",
                    spec.name
                )));
            }
            match topic_info(&metadata, &spec.name)? {
                Some(info) => check_spec(spec, &info)?,
                None => missing.push(spec),
            }
        }
        if !missing.is_empty() {
            self.create(&missing).await?;
        }
        let mut out = Vec::with_capacity(specs.len());
        for spec in specs {
            let info = self.wait_for_topic(spec).await?;
            self.inner
                .lock_partitions()
                .insert(spec.name.clone(), info.partitions);
            out.push(info);
        }
        Ok(out)
    }

    async fn describe_topic(&self, name: &str) -> Result<Option<TopicInfo>> {
        self.inner.describe(name).await
    }

    async fn end_offsets(&self, topic: &str) -> Result<Vec<Offset>> {
        let partitions = topic_info(&self.metadata().await?, topic)?
            .ok_or_else(|| Error::UnknownTopic(topic.to_string()))?
            .partitions;
        let client = self.inner.producer.current();
        let config = self.inner.config.clone();
        let name = topic.to_string();
        tokio::task::spawn_blocking(move || {
            let timeout = config.request_timeout;
            let highs = (0..partitions as i32)
                .map(|p| {
                    client
                        .client()
                        .fetch_watermarks(&name, p, timeout)
                        .map(|(_, high)| high.max(0) as Offset)
                        .map_err(|e| map_error(&format!("fetch watermarks of {name}/{p}"), e))
                })
                .collect::<Result<Vec<_>>>()?;
            if config.verify_end_offsets {
                true_ends(&config, &name, highs)
            } else {
                Ok(highs)
            }
        })
        .await
        .map_err(|e| Error::Kafka(format!("watermark task failed: {e}")))?
    }

    fn producer(&self) -> Result<Box<dyn Producer>> {
        Ok(Box::new(self.kafka_producer()))
    }

    async fn consumer(&self, config: ConsumerConfig) -> Result<Box<dyn Consumer>> {
        let metadata = self.metadata().await?;
        for topic in &config.topics {
            if topic_info(&metadata, topic)?.is_none() {
                return Err(Error::UnknownTopic(topic.clone()));
            }
        }
        // A `Latest` consumer starts where the partitions end now, not where they end
        // when the group join completes (seconds later).
        let mut ends = HashMap::new();
        if config.start == StartFrom::Latest {
            for topic in &config.topics {
                for (p, end) in self.end_offsets(topic).await?.into_iter().enumerate() {
                    ends.insert((topic.clone(), p as i32), end as i64);
                }
            }
        }
        Ok(Box::new(KafkaConsumer::with_ends(
            &self.inner.config,
            config,
            ends,
        )?))
    }
}

impl KafkaLog {
    async fn create(&self, specs: &[&TopicSpec]) -> Result<()> {
        // -1: the broker's default replication factor.
        let replication = self.inner.config.replication_factor.map_or(-1, i32::from);
        let settings: Vec<Vec<(&'static str, String)>> = specs
            .iter()
            .map(|spec| {
                let mut s = vec![(
                    "retention.ms",
                    spec.retention
                        .map_or_else(|| "-1".to_string(), |r| r.as_millis().to_string()),
                )];
                if let Some(bytes) = spec.retention_bytes {
                    s.push(("retention.bytes", bytes.to_string()));
                }
                s
            })
            .collect();
        let topics: Vec<NewTopic<'_>> = specs
            .iter()
            .zip(&settings)
            .map(|(spec, settings)| {
                settings.iter().fold(
                    NewTopic::new(
                        &spec.name,
                        spec.partitions as i32,
                        TopicReplication::Fixed(replication),
                    ),
                    |t, (k, v)| t.set(k, v),
                )
            })
            .collect();
        let opts = AdminOptions::new()
            .request_timeout(Some(self.inner.config.request_timeout))
            .operation_timeout(Some(self.inner.config.request_timeout));
        let results = self
            .inner
            .admin
            .create_topics(&topics, &opts)
            .await
            .map_err(|e| map_error("create topics", e))?;
        for result in results {
            match result {
                Ok(_) => {}
                // Someone else created it between our look and our create: fine, it is
                // checked against its spec below.
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => return Err(map_code(&format!("create topic {name:?}"), code)),
            }
        }
        Ok(())
    }

    /// Waits (up to the request timeout) until metadata shows `spec`'s topic with all
    /// its partitions, then checks it.
    async fn wait_for_topic(&self, spec: &TopicSpec) -> Result<TopicInfo> {
        let deadline = tokio::time::Instant::now() + self.inner.config.request_timeout;
        loop {
            if let Some(info) = self.inner.describe(&spec.name).await? {
                if info.partitions >= spec.partitions || tokio::time::Instant::now() >= deadline {
                    check_spec(spec, &info)?;
                    return Ok(info);
                }
            } else if tokio::time::Instant::now() >= deadline {
                return Err(Error::Unavailable(format!(
                    "topic {:?} was created but metadata did not show it within {:?}",
                    spec.name, self.inner.config.request_timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

// === error mapping ===

fn config_error(what: &str, e: KafkaError) -> Error {
    Error::Config(format!("cannot build the kafka {what}: {e}"))
}

/// Maps an rdkafka error onto the log's: transport trouble and timeouts are
/// [`Error::Unavailable`] (retryable), an unknown topic is [`Error::UnknownTopic`]'s
/// cousin (reported with what was being done), the rest is [`Error::Kafka`].
pub(crate) fn map_error(what: &str, e: KafkaError) -> Error {
    match &e {
        KafkaError::ClientConfig(..) | KafkaError::ClientCreation(_) => {
            Error::Config(format!("{what}: {e}"))
        }
        KafkaError::Canceled => Error::Unavailable(format!("{what}: request canceled ({e})")),
        _ => match e.rdkafka_error_code() {
            Some(code) => map_code(what, code),
            None => Error::Kafka(format!("{what}: {e}")),
        },
    }
}

/// Maps a librdkafka or broker error code (see [`map_error`]).
pub(crate) fn map_code(what: &str, code: RDKafkaErrorCode) -> Error {
    if is_unavailable(code) {
        Error::Unavailable(format!("{what}: {code} ({code:?})"))
    } else {
        Error::Kafka(format!("{what}: {code} ({code:?})"))
    }
}

/// Whether `code` means "the cluster cannot be reached or is not ready now".
pub(crate) fn is_unavailable(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::BrokerTransportFailure
            | C::Resolve
            | C::MessageTimedOut
            | C::AllBrokersDown
            | C::OperationTimedOut
            | C::TimedOutQueue
            | C::QueueFull
            | C::Retry
            | C::WaitingForCoordinator
            | C::Fatal
            | C::PurgeInflight
            | C::PurgeQueue
            | C::LeaderNotAvailable
            | C::NotLeaderForPartition
            | C::RequestTimedOut
            | C::BrokerNotAvailable
            | C::ReplicaNotAvailable
            | C::NetworkException
            | C::CoordinatorLoadInProgress
            | C::CoordinatorNotAvailable
            | C::NotCoordinator
            | C::NotEnoughReplicas
            | C::NotEnoughReplicasAfterAppend
            | C::RebalanceInProgress
            | C::OutOfOrderSequenceNumber
            | C::UnknownProducerId
            | C::InvalidProducerEpoch
            | C::KafkaStorageError
            | C::FencedLeaderEpoch
            | C::UnknownLeaderEpoch
            | C::PreferredLeaderNotAvailable
            | C::ThrottlingQuotaExceeded
    )
}
