//! The publisher against the embedded log as spool and a target that can be switched
//! off (an embedded log whose producer answers `Unavailable` while "down").

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use hotline_core::channel::Channel;
use hotline_core::event::{ContactEvent, ContactEventKind, Event, EventBody, EventSink};
use hotline_core::ids::{ContactId, EventId, SiteId, TenantId, TraceId};
use hotline_core::time::Timestamp;

use super::*;
use crate::embedded::{EmbeddedConfig, EmbeddedLog, FsyncPolicy};
use crate::log::{Record, TopicInfo};

/// The target of these tests: an embedded log whose producer a test wraps (to refuse
/// sends while "down", or to pipeline them as Kafka does).
struct Target {
    log: EmbeddedLog,
    wrap: WrapProducer,
}

/// Wraps the embedded log's producer.
type WrapProducer = Box<dyn Fn(Box<dyn Producer>) -> Box<dyn Producer> + Send + Sync>;

/// Refuses sends while `down` is set.
struct FlakyProducer {
    inner: Box<dyn Producer>,
    down: Arc<AtomicBool>,
}

#[async_trait]
impl Producer for FlakyProducer {
    async fn send(&self, topic: &str, messages: Vec<Message>) -> Result<()> {
        if self.down.load(Ordering::Acquire) {
            return Err(Error::Unavailable("test target is down".into()));
        }
        self.inner.send(topic, messages).await
    }
}

#[async_trait]
impl EventLog for Target {
    fn kind(&self) -> &'static str {
        "test target"
    }
    async fn ensure_topics(&self, specs: &[TopicSpec]) -> Result<Vec<TopicInfo>> {
        self.log.ensure_topics(specs).await
    }
    async fn describe_topic(&self, name: &str) -> Result<Option<TopicInfo>> {
        self.log.describe_topic(name).await
    }
    async fn end_offsets(&self, topic: &str) -> Result<Vec<u64>> {
        self.log.end_offsets(topic).await
    }
    fn producer(&self) -> Result<Box<dyn Producer>> {
        Ok((self.wrap)(self.log.producer()?))
    }
    async fn consumer(&self, config: ConsumerConfig) -> Result<Box<dyn Consumer>> {
        self.log.consumer(config).await
    }
}

fn fast() -> EmbeddedConfig {
    EmbeddedConfig {
        fsync: FsyncPolicy::Never,
        ..EmbeddedConfig::default()
    }
}

fn config() -> PublisherConfig {
    PublisherConfig {
        topic: "events".to_string(),
        retry_min: Duration::from_millis(10),
        retry_max: Duration::from_millis(50),
        ..PublisherConfig::default()
    }
}

/// The "events" topic (4 partitions) in an embedded log at `dir`.
async fn events_log(dir: &std::path::Path) -> EmbeddedLog {
    let log = EmbeddedLog::open(dir, fast()).await.expect("open target");
    log.ensure_topics(&[TopicSpec {
        name: "events".into(),
        partitions: 4,
        retention: None,
        retention_bytes: None,
    }])
    .await
    .expect("events topic");
    log
}

/// A target that refuses sends while the returned flag is set.
async fn target(dir: &std::path::Path) -> (Arc<Target>, Arc<AtomicBool>) {
    let down = Arc::new(AtomicBool::new(false));
    let flag = down.clone();
    let target = Target {
        log: events_log(dir).await,
        wrap: Box::new(move |inner| {
            Box::new(FlakyProducer {
                inner,
                down: flag.clone(),
            })
        }),
    };
    (Arc::new(target), down)
}

/// Event `n` of contact `n % contacts`.
fn event(n: u64, contacts: u64) -> Event {
    Event {
        id: EventId::from_u128(n as u128 + 1),
        at: Timestamp(1_700_000_000_000_000 + n),
        tenant: TenantId::new("acme").expect("tenant id"),
        site: SiteId::new("paris").expect("site id"),
        trace: TraceId::from_u128(n as u128),
        body: EventBody::Contact(ContactEvent {
            contact: ContactId::from_u128((n % contacts) as u128 + 1),
            channel: Channel::Voice,
            queue: None,
            agent: None,
            kind: ContactEventKind::Offered { attempt: n as u32 },
        }),
    }
}

/// Reads `n` records of the target's "events" topic from the start.
async fn read_all(log: &dyn EventLog, n: usize) -> Vec<Record> {
    let mut consumer = log
        .consumer(ConsumerConfig::new("check", &["events"]).starting(StartFrom::Earliest))
        .await
        .expect("consumer");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "read {} of {n}",
            out.len()
        );
        out.extend(
            consumer
                .poll(10_000, Duration::from_millis(100))
                .await
                .expect("poll")
                .records,
        );
    }
    out
}

/// The attempt numbers (= publish sequence) per key, in the order read.
fn sequences(records: &[Record]) -> std::collections::HashMap<Vec<u8>, Vec<u32>> {
    let mut out: std::collections::HashMap<Vec<u8>, Vec<u32>> = Default::default();
    for r in records {
        let e = hotline_proto::decode_event(&r.value).expect("decodable");
        let EventBody::Contact(c) = e.body else {
            panic!("contact events only")
        };
        let ContactEventKind::Offered { attempt } = c.kind else {
            panic!("offered only")
        };
        out.entry(r.key.clone()).or_default().push(attempt);
    }
    out
}

async fn wait_forwarded(p: &Publisher, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while p.stats().forwarded < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "forwarded {:?} of {n}",
            p.stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_the_target_in_publish_order_per_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (target, _) = target(&dir.path().join("target")).await;
    let p = Publisher::open(dir.path().join("spool"), target.clone(), config())
        .await
        .expect("publisher");
    for n in 0..1_000 {
        p.publish(&[event(n, 7)]);
    }
    wait_forwarded(&p, 1_000).await;
    let report = p.shutdown(Duration::from_secs(5)).await;
    assert!(report.flushed, "{report:?}");
    assert_eq!(report.stats.pending_bytes, 0);
    let records = read_all(target.as_ref(), 1_000).await;
    for (key, seq) in sequences(&records) {
        assert!(
            seq.windows(2).all(|w| w[0] < w[1]),
            "{key:?} out of order: {seq:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_does_not_wait_for_a_target_that_is_down_and_replays_the_backlog_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (target, down) = target(&dir.path().join("target")).await;
    down.store(true, Ordering::Release);
    let p = Publisher::open(dir.path().join("spool"), target.clone(), config())
        .await
        .expect("publisher");
    let started = std::time::Instant::now();
    for n in 0..2_000 {
        p.publish(&[event(n, 13)]);
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "publish blocked: {:?}",
        started.elapsed()
    );
    // Everything reaches the spool; nothing the target.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while p.stats().spooled < 2_000 || p.stats().retries == 0 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", p.stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = p.stats();
    assert_eq!((stats.forwarded, stats.pending), (0, 2_000));
    assert!(
        stats
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("down")),
        "{stats:?}"
    );

    down.store(false, Ordering::Release);
    wait_forwarded(&p, 2_000).await;
    assert_eq!(p.stats().last_error, None);
    let records = read_all(target.as_ref(), 2_000).await;
    assert_eq!(records.len(), 2_000);
    for (key, seq) in sequences(&records) {
        assert!(
            seq.windows(2).all(|w| w[0] < w[1]),
            "{key:?} out of order: {seq:?}"
        );
    }
    p.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_beyond_the_pending_bound_are_dropped_and_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (target, down) = target(&dir.path().join("target")).await;
    down.store(true, Ordering::Release);
    let ten: u64 = (0..10)
        .map(|n| message_bytes(&message_for(&event(n, 1))))
        .sum();
    let p = Publisher::open(
        dir.path().join("spool"),
        target.clone(),
        PublisherConfig {
            max_pending_bytes: ten,
            ..config()
        },
    )
    .await
    .expect("publisher");
    for n in 0..25 {
        p.publish(&[event(n, 1)]);
    }
    let stats = p.stats();
    assert_eq!((stats.accepted, stats.dropped), (10, 15), "{stats:?}");
    down.store(false, Ordering::Release);
    wait_forwarded(&p, 10).await;
    // Room again: accepted.
    p.publish(&[event(25, 1)]);
    wait_forwarded(&p, 11).await;
    assert_eq!(p.stats().dropped, 15);
    p.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_publisher_forwards_what_the_last_one_left_in_the_spool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (target, down) = target(&dir.path().join("target")).await;
    down.store(true, Ordering::Release);
    {
        let p = Publisher::open(dir.path().join("spool"), target.clone(), config())
            .await
            .expect("publisher");
        for n in 0..100 {
            p.publish(&[event(n, 3)]);
        }
        let report = p.shutdown(Duration::from_millis(300)).await;
        assert!(!report.flushed, "the target is down: {report:?}");
        assert_eq!(report.stats.spooled, 100);
    }
    down.store(false, Ordering::Release);
    let p = Publisher::open(dir.path().join("spool"), target.clone(), config())
        .await
        .expect("publisher again");
    p.publish(&[event(100, 3)]);
    wait_forwarded(&p, 1).await;
    let records = read_all(target.as_ref(), 101).await;
    let seq = sequences(&records);
    assert_eq!(seq.values().map(Vec::len).sum::<usize>(), 101);
    for (key, seq) in seq {
        assert!(
            seq.windows(2).all(|w| w[0] < w[1]),
            "{key:?} out of order: {seq:?}"
        );
    }
    let report = p.shutdown(Duration::from_secs(5)).await;
    assert!(report.flushed, "{report:?}");
    assert_eq!(report.stats.backlog_forwarded, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_mode_appends_to_the_log_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (target, _) = target(dir.path()).await;
    let p = Publisher::direct(target.clone(), config()).expect("publisher");
    p.publish(&(0..50).map(|n| event(n, 5)).collect::<Vec<_>>());
    let report = p.shutdown(Duration::from_secs(5)).await;
    assert!(report.flushed, "{report:?}");
    assert_eq!(read_all(target.as_ref(), 50).await.len(), 50);
    // After shutdown, publishing is refused and counted.
    p.publish(&[event(50, 5)]);
    assert_eq!(p.stats().dropped, 1);
}

#[test]
fn a_bad_config_names_the_value_that_is_wrong() {
    let err = PublisherConfig {
        max_pending_bytes: 0,
        ..PublisherConfig::default()
    }
    .validate()
    .expect_err("zero bound");
    assert!(err.to_string().contains("max_pending_bytes"), "{err}");
    let err = PublisherConfig {
        retry_min: Duration::from_secs(10),
        retry_max: Duration::from_secs(1),
        ..PublisherConfig::default()
    }
    .validate()
    .expect_err("min above max");
    assert!(err.to_string().contains("retry_min"), "{err}");
}

/// A target that pipelines like Kafka: `start_send` queues a batch and returns; the
/// test decides when queued batches land (appended to `log`, in order) or fail. A
/// failure breaks the target as a fatal error breaks librdkafka's idempotent producer
/// (the gapless guarantee): everything queued or started behind it fails too, until
/// the next `send` (the forwarder's resend, on what would be a fresh producer), which
/// appends at once.
struct Piped {
    target: Arc<Target>,
    queue: Arc<std::sync::Mutex<PipeQueue>>,
}

#[derive(Default)]
struct PipeQueue {
    waiting: std::collections::VecDeque<(Vec<Message>, tokio::sync::oneshot::Sender<Result<()>>)>,
    /// Batches handed over by `start_send`.
    started: usize,
    /// Most batches that were waiting at once.
    most_waiting: usize,
    /// Batches sent with `send`.
    resent: usize,
    /// A batch failed and no `send` came since.
    broken: bool,
}

struct PipedProducer {
    inner: Box<dyn Producer>,
    queue: Arc<std::sync::Mutex<PipeQueue>>,
}

#[async_trait]
impl Producer for PipedProducer {
    async fn send(&self, topic: &str, messages: Vec<Message>) -> Result<()> {
        {
            let mut q = self.queue.lock().expect("queue");
            q.resent += 1;
            q.broken = false;
        }
        self.inner.send(topic, messages).await
    }

    async fn start_send(&self, _topic: &str, messages: Vec<Message>) -> Result<Delivery> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut q = self.queue.lock().expect("queue");
        q.started += 1;
        if q.broken {
            return Ok(Box::pin(std::future::ready(Err(Error::Unavailable(
                "test target is broken".into(),
            )))));
        }
        q.waiting.push_back((messages, tx));
        q.most_waiting = q.most_waiting.max(q.waiting.len());
        Ok(Box::pin(async move {
            rx.await
                .unwrap_or_else(|_| Err(Error::Unavailable("test target went away".into())))
        }))
    }
}

impl Piped {
    async fn open(dir: &std::path::Path) -> Self {
        let queue: Arc<std::sync::Mutex<PipeQueue>> = Default::default();
        let shared = queue.clone();
        let target = Target {
            log: events_log(dir).await,
            wrap: Box::new(move |inner| {
                Box::new(PipedProducer {
                    inner,
                    queue: shared.clone(),
                })
            }),
        };
        Self {
            target: Arc::new(target),
            queue,
        }
    }

    fn started(&self) -> usize {
        self.queue.lock().expect("queue").started
    }

    /// Lands (`fail` false) or fails every batch waiting now, oldest first; returns how
    /// many.
    async fn release(&self, fail: bool) -> usize {
        let (waiting, broken) = {
            let mut q = self.queue.lock().expect("queue");
            q.broken |= fail;
            (q.waiting.drain(..).collect::<Vec<_>>(), q.broken)
        };
        let n = waiting.len();
        let producer = self.target.log.producer().expect("producer");
        for (messages, tx) in waiting {
            let outcome = if broken {
                Err(Error::Unavailable("test target lost the batch".into()))
            } else {
                producer.send("events", messages).await
            };
            let _ = tx.send(outcome);
        }
        n
    }

    async fn wait_started(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.started() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the forwarder started {} batches, expected {n} while earlier ones were unacknowledged",
                self.started()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A publisher forwarding to a [`Piped`] target, fed three rounds of 100 events, each
/// round started as a batch while the ones before it are unacknowledged.
async fn three_rounds_in_flight(dir: &std::path::Path) -> (Piped, Publisher) {
    let piped = Piped::open(&dir.join("target")).await;
    let p = Publisher::open(dir.join("spool"), piped.target.clone(), config())
        .await
        .expect("publisher");
    for round in 0..3u64 {
        for n in round * 100..(round + 1) * 100 {
            p.publish(&[event(n, 7)]);
        }
        piped.wait_started(round as usize + 1).await;
    }
    (piped, p)
}

/// Lands what the target is sent until all 300 events are forwarded, shuts the
/// publisher down and checks the target holds each event once, in order per key.
async fn land_all_three_rounds(piped: &Piped, p: &Publisher) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while p.stats().forwarded < 300 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", p.stats());
        let _ = piped.release(false).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let report = p.shutdown(Duration::from_secs(5)).await;
    assert!(report.flushed, "{report:?}");
    let records = read_all(piped.target.as_ref(), 300).await;
    assert_eq!(
        records.len(),
        300,
        "each event once (a lost batch never landed)"
    );
    for (key, seq) in sequences(&records) {
        assert!(
            seq.windows(2).all(|w| w[0] < w[1]),
            "{key:?} out of order: {seq:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forwarder_keeps_several_batches_in_flight_and_they_land_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (piped, p) = three_rounds_in_flight(dir.path()).await;
    assert!(
        piped.queue.lock().expect("queue").most_waiting >= 3,
        "batches were not in flight together"
    );
    assert_eq!(p.stats().forwarded, 0, "nothing is acknowledged yet");
    land_all_three_rounds(&piped, &p).await;
    assert_eq!(piped.queue.lock().expect("queue").resent, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_goes_again_with_every_batch_behind_it_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (piped, p) = three_rounds_in_flight(dir.path()).await;
    // The broker loses every batch in flight: the first fails and those behind it too.
    let lost = piped.release(true).await;
    assert!(lost >= 3, "{lost} batches were in flight");
    land_all_three_rounds(&piped, &p).await;
    assert!(p.stats().retries >= 1, "{:?}", p.stats());
    assert!(
        piped.queue.lock().expect("queue").resent >= lost,
        "the failed batch and every batch behind it go again"
    );
}
