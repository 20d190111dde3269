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

/// An embedded log that refuses sends while `down` is set.
struct Flaky {
    log: EmbeddedLog,
    down: Arc<AtomicBool>,
}

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
impl EventLog for Flaky {
    fn kind(&self) -> &'static str {
        "flaky"
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
        Ok(Box::new(FlakyProducer {
            inner: self.log.producer()?,
            down: self.down.clone(),
        }))
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

async fn target(dir: &std::path::Path) -> (Arc<Flaky>, Arc<AtomicBool>) {
    let log = EmbeddedLog::open(dir, fast()).await.expect("open target");
    log.ensure_topics(&[TopicSpec {
        name: "events".into(),
        partitions: 4,
        retention: None,
        retention_bytes: None,
    }])
    .await
    .expect("events topic");
    let down = Arc::new(AtomicBool::new(false));
    (
        Arc::new(Flaky {
            log,
            down: down.clone(),
        }),
        down,
    )
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
