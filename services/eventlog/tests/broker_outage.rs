//! A Kafka outage under a steady stream of ACD events: the publisher must not block,
//! must keep what is published while the broker is away (in its spool), and deliver it
//! in order per key once a broker is back.
//!
//! The broker is tansu with memory storage, so a restarted broker has lost everything
//! it held. The assertion is built around that honestly:
//!
//! 1. events `0..before` are published, forwarded and read back by a consumer, all of
//!    them, before the broker is killed (the stream pauses for that check only);
//! 2. the broker is SIGKILLed and publishing resumes at once: events `before..during`
//!    are published into the outage;
//! 3. a broker restarts on the same port (empty; the test recreates the topic) while
//!    publishing goes on: `during..total`;
//! 4. a consumer of the new broker must receive every event `before..total` at least
//!    once, and per key the first deliveries come in publish order. Duplicates (a batch
//!    retried after a lost acknowledgement) are allowed and counted.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use common::{TansuBroker, eventually};
use hotline_core::channel::Channel;
use hotline_core::event::{ContactEvent, ContactEventKind, Event, EventBody, EventSink};
use hotline_core::ids::{ContactId, EventId, SiteId, TenantId, TraceId};
use hotline_core::time::Timestamp;
use hotline_eventlog::kafka::{KafkaConfig, KafkaLog};
use hotline_eventlog::publisher::{Publisher, PublisherConfig};
use hotline_eventlog::{Consumer, ConsumerConfig, EventLog, StartFrom, TopicSpec};

const TOPIC: &str = "outage.events";
const CONTACTS: u64 = 50;

fn spec() -> TopicSpec {
    TopicSpec {
        name: TOPIC.to_string(),
        partitions: 6,
        retention: None,
        retention_bytes: None,
    }
}

/// Event number `seq` (carried as the offer attempt) of contact `seq % CONTACTS`.
fn event(seq: u64) -> anyhow::Result<Event> {
    Ok(Event {
        id: EventId::from_u128(u128::from(seq) + 1),
        at: Timestamp(1_700_000_000_000_000 + seq * 1_000),
        tenant: TenantId::new("acme")?,
        site: SiteId::new("paris")?,
        trace: TraceId::from_u128(u128::from(seq)),
        body: EventBody::Contact(ContactEvent {
            contact: ContactId::from_u128(u128::from(seq % CONTACTS) + 1),
            channel: Channel::Voice,
            queue: None,
            agent: None,
            kind: ContactEventKind::Offered {
                attempt: u32::try_from(seq)?,
            },
        }),
    })
}

/// The publish sequence number and key of a record.
fn decode(value: &[u8]) -> anyhow::Result<(u64, String)> {
    let event = hotline_proto::decode_event(value).context("decode an event")?;
    let key = event.key();
    match event.body {
        EventBody::Contact(ContactEvent {
            kind: ContactEventKind::Offered { attempt },
            ..
        }) => Ok((u64::from(attempt), key)),
        other => anyhow::bail!("unexpected event {other:?}"),
    }
}

/// Publishes a steady stream (a batch of 10 every 2 ms) while `run` is set, up to
/// `limit`; counts what it published and the slowest `publish` call.
struct Stream {
    run: AtomicBool,
    limit: AtomicU64,
    published: AtomicU64,
    slowest_publish_us: AtomicU64,
}

impl Stream {
    async fn drive(
        self: Arc<Self>,
        publisher: Arc<Publisher>,
        stop: Arc<AtomicBool>,
    ) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(Duration::from_millis(2));
        while !stop.load(Ordering::Acquire) {
            tick.tick().await;
            if !self.run.load(Ordering::Acquire) {
                continue;
            }
            let from = self.published.load(Ordering::Acquire);
            let to = (from + 10).min(self.limit.load(Ordering::Acquire));
            if to <= from {
                continue;
            }
            let batch = (from..to).map(event).collect::<anyhow::Result<Vec<_>>>()?;
            let started = Instant::now();
            publisher.publish(&batch);
            let took = started.elapsed().as_micros() as u64;
            self.slowest_publish_us.fetch_max(took, Ordering::AcqRel);
            self.published.store(to, Ordering::Release);
        }
        Ok(())
    }

    async fn until_published(&self, n: u64) -> anyhow::Result<()> {
        self.limit.store(n, Ordering::Release);
        self.run.store(true, Ordering::Release);
        eventually(
            Duration::from_secs(60),
            &format!("publish {n} events"),
            || async { Ok((self.published.load(Ordering::Acquire) >= n).then_some(())) },
        )
        .await
    }
}

/// Reads until every sequence number in `want` was seen; returns the (seq, key) pairs
/// in the order read.
async fn read_until(
    consumer: &mut dyn Consumer,
    want: std::ops::Range<u64>,
) -> anyhow::Result<Vec<(u64, String)>> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut missing: HashSet<u64> = want.clone().collect();
    let mut read = Vec::new();
    while !missing.is_empty() {
        ensure!(
            Instant::now() < deadline,
            "{} of the events {want:?} never arrived (e.g. {:?})",
            missing.len(),
            missing.iter().min()
        );
        for r in consumer
            .poll(10_000, Duration::from_millis(200))
            .await?
            .records
        {
            let (seq, key) = decode(&r.value)?;
            missing.remove(&seq);
            read.push((seq, key));
        }
    }
    Ok(read)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_published_while_the_broker_is_down_arrive_in_order_once_it_is_back()
-> anyhow::Result<()> {
    let mut broker = TansuBroker::start()?;
    let port = broker.port();
    let log = KafkaLog::connect(KafkaConfig {
        request_timeout: Duration::from_secs(3),
        delivery_timeout: Duration::from_secs(2),
        verify_end_offsets: true,
        ..KafkaConfig::new(broker.addr())
    })
    .await?;
    log.ensure_topics(&[spec()]).await?;
    let spool = tempfile::tempdir()?;
    let publisher = Arc::new(
        Publisher::open(
            spool.path(),
            Arc::new(log.clone()),
            PublisherConfig {
                topic: TOPIC.to_string(),
                retry_min: Duration::from_millis(50),
                retry_max: Duration::from_millis(500),
                ..PublisherConfig::default()
            },
        )
        .await?,
    );
    let stream = Arc::new(Stream {
        run: AtomicBool::new(false),
        limit: AtomicU64::new(0),
        published: AtomicU64::new(0),
        slowest_publish_us: AtomicU64::new(0),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let driver = tokio::spawn(stream.clone().drive(publisher.clone(), stop.clone()));

    // 1. Before: published, forwarded and consumed, all of it.
    let before = 2_000;
    stream.until_published(before).await?;
    stream.run.store(false, Ordering::Release);
    let mut consumer = log
        .consumer(ConsumerConfig::new("outage-before", &[TOPIC]).starting(StartFrom::Earliest))
        .await?;
    read_until(consumer.as_mut(), 0..before).await?;
    drop(consumer);
    eventually(
        Duration::from_secs(30),
        "forward everything before the kill",
        || async { Ok((publisher.stats().pending == 0).then_some(())) },
    )
    .await?;

    // 2. Kill the broker; the stream goes on into the outage.
    broker.kill();
    let during = before + 2_000;
    stream.until_published(during).await?;
    // At least two failed forwards: the retry loop goes on (on a replaced producer).
    eventually(
        Duration::from_secs(30),
        "the forwarder retries in the outage",
        || async {
            let stats = publisher.stats();
            Ok((stats.last_error.is_some() && stats.retries >= 2).then_some(()))
        },
    )
    .await?;
    let outage = publisher.stats();
    ensure!(
        outage.pending > 0,
        "events pile up while the broker is down: {outage:?}"
    );
    println!("during the outage: {outage:?}");

    // 3. A broker returns on the same port, empty; the topic is recreated.
    let _broker = TansuBroker::start_on(port)?;
    eventually(Duration::from_secs(30), "recreate the topic", || async {
        Ok(log.ensure_topics(&[spec()]).await.ok())
    })
    .await?;
    let total = during + 2_000;
    stream.until_published(total).await?;
    stop.store(true, Ordering::Release);
    driver.await??;
    let report = publisher.shutdown(Duration::from_secs(60)).await;
    ensure!(
        report.flushed,
        "everything is forwarded once the broker is back: {report:?}"
    );
    ensure!(report.stats.dropped == 0, "nothing dropped: {report:?}");

    // 4. Everything from the kill on arrives, in order per key.
    let mut consumer = log
        .consumer(ConsumerConfig::new("outage-after", &[TOPIC]).starting(StartFrom::Earliest))
        .await?;
    let read = read_until(consumer.as_mut(), before..total).await?;
    let mut seen = HashSet::new();
    let mut last: HashMap<String, u64> = HashMap::new();
    let mut duplicates = 0;
    for (seq, key) in &read {
        if !seen.insert(*seq) {
            duplicates += 1;
            continue;
        }
        ensure!(
            (before..total).contains(seq),
            "event {seq} was never published after the restart point"
        );
        if let Some(prev) = last.insert(key.clone(), *seq) {
            ensure!(prev < *seq, "key {key}: event {seq} arrived after {prev}");
        }
    }
    let slowest = Duration::from_micros(stream.slowest_publish_us.load(Ordering::Acquire));
    println!(
        "outage: {} events after the kill delivered, {duplicates} duplicate(s), {} retries, slowest publish {slowest:?}",
        total - before,
        report.stats.retries
    );
    ensure!(
        slowest < Duration::from_millis(200),
        "publish blocked for {slowest:?}"
    );
    Ok(())
}
