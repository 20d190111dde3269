//! The Kafka event log against a real broker: tansu (Kafka protocol, memory storage),
//! one per test, started by `common::TansuBroker` on a free 127.0.0.1 port.
//!
//! Besides behaviour, two measurements print their figures (run with `--nocapture`):
//! `KafkaLog::send` throughput next to a bare rdkafka `FutureProducer` in the same run,
//! and what the idempotent producer does when the broker restarts empty.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use common::{TansuBroker, eventually};
use hotline_eventlog::kafka::{KafkaConfig, KafkaLog};
use hotline_eventlog::{
    Consumer, ConsumerConfig, Error, EventLog, Message, Record, StartFrom, TopicSpec, partition_for,
};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

fn spec(name: &str, partitions: u32) -> TopicSpec {
    TopicSpec {
        name: name.to_string(),
        partitions,
        retention: Some(Duration::from_secs(3600)),
        retention_bytes: None,
    }
}

fn config(broker: &TansuBroker) -> KafkaConfig {
    KafkaConfig {
        request_timeout: Duration::from_secs(5),
        delivery_timeout: Duration::from_secs(10),
        // tansu reports the last batch's base offset + 1 as the high watermark.
        verify_end_offsets: true,
        ..KafkaConfig::new(broker.addr())
    }
}

fn message(key: &str, value: &str) -> Message {
    Message {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        timestamp_ms: 1_700_000_000_000,
    }
}

/// Polls until `n` records came, or fails after `within`.
async fn read(
    consumer: &mut dyn Consumer,
    n: usize,
    within: Duration,
) -> anyhow::Result<Vec<Record>> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < n {
        ensure!(
            Instant::now() < deadline,
            "read {} of {n} records within {within:?}",
            out.len()
        );
        let poll = consumer.poll(10_000, Duration::from_millis(200)).await?;
        out.extend(poll.records);
    }
    Ok(out)
}

fn positions(records: &[Record]) -> Vec<(String, u32, u64)> {
    let mut next: BTreeMap<(String, u32), u64> = BTreeMap::new();
    for r in records {
        let e = next.entry((r.topic.clone(), r.partition)).or_default();
        *e = (*e).max(r.offset + 1);
    }
    next.into_iter().map(|((t, p), o)| (t, p, o)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_a_port_nobody_listens_on_is_unavailable() -> anyhow::Result<()> {
    let port = common::free_port()?;
    let config = KafkaConfig {
        request_timeout: Duration::from_secs(1),
        ..KafkaConfig::new(format!("127.0.0.1:{port}"))
    };
    let started = Instant::now();
    let err = KafkaLog::connect(config)
        .await
        .expect_err("nothing listens there");
    ensure!(
        err.is_retryable(),
        "expected a retryable error, got {err:?}"
    );
    ensure!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_names_the_value_that_is_wrong() {
    let err = KafkaLog::new(KafkaConfig::new("")).expect_err("empty servers");
    assert!(err.to_string().contains("bootstrap_servers"), "{err}");
    let err = KafkaLog::new(KafkaConfig {
        session_timeout: Duration::ZERO,
        ..KafkaConfig::default()
    })
    .expect_err("zero session timeout");
    assert!(err.to_string().contains("session_timeout"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ensure_topics_creates_what_is_missing_and_refuses_too_few_partitions() -> anyhow::Result<()>
{
    let broker = TansuBroker::start()?;
    let log = KafkaLog::connect(config(&broker)).await?;
    assert_eq!(log.describe_topic("t.created").await?, None);

    let infos = log
        .ensure_topics(&[spec("t.created", 4), spec("t.single", 1)])
        .await?;
    assert_eq!(
        infos
            .iter()
            .map(|i| (i.name.as_str(), i.partitions))
            .collect::<Vec<_>>(),
        [("t.created", 4), ("t.single", 1)]
    );
    // Idempotent: a second call finds them.
    let again = log.ensure_topics(&[spec("t.created", 4)]).await?;
    assert_eq!(again[0].partitions, 4);
    // Fewer partitions than required is a mismatch naming both counts.
    match log.ensure_topics(&[spec("t.created", 8)]).await {
        Err(Error::TopicMismatch { topic, problem }) => {
            assert_eq!(topic, "t.created");
            assert!(problem.contains('4') && problem.contains('8'), "{problem}");
        }
        other => anyhow::bail!("expected a mismatch, got {other:?}"),
    }
    let described = log
        .describe_topic("t.created")
        .await?
        .context("t.created exists")?;
    println!("describe_topic reports retention {:?}", described.retention);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_lands_on_the_partition_partition_for_names_in_send_order() -> anyhow::Result<()>
{
    let broker = TansuBroker::start()?;
    let log = KafkaLog::connect(config(&broker)).await?;
    log.ensure_topics(&[spec("t.keys", 6)]).await?;
    let producer = log.producer()?;
    let mut sent = Vec::new();
    for i in 0..300 {
        sent.push(message(
            &format!("tenant/contact-{}", i % 17),
            &format!("{i}"),
        ));
    }
    producer.send("t.keys", sent.clone()).await?;

    let mut consumer = log
        .consumer(ConsumerConfig::new("g.keys", &["t.keys"]))
        .await?;
    let records = read(consumer.as_mut(), 300, Duration::from_secs(30)).await?;
    let mut last_per_key: HashMap<Vec<u8>, u64> = HashMap::new();
    for r in &records {
        assert_eq!(
            r.partition,
            partition_for(&r.key, 6),
            "key {:?}",
            String::from_utf8_lossy(&r.key)
        );
        assert_eq!(r.timestamp_ms, 1_700_000_000_000);
        let i: u64 = String::from_utf8_lossy(&r.value).parse()?;
        if let Some(prev) = last_per_key.insert(r.key.clone(), i) {
            assert!(prev < i, "key order broken: {prev} then {i}");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_resumes_after_its_commit_and_earliest_ignores_the_commit() -> anyhow::Result<()> {
    let broker = TansuBroker::start()?;
    let log = KafkaLog::connect(config(&broker)).await?;
    log.ensure_topics(&[spec("t.commit", 2)]).await?;
    let producer = log.producer()?;
    producer
        .send(
            "t.commit",
            (0..10)
                .map(|i| message(&format!("k{i}"), &format!("{i}")))
                .collect(),
        )
        .await?;

    let mut first = log
        .consumer(ConsumerConfig::new("g.commit", &["t.commit"]))
        .await?;
    let records = read(first.as_mut(), 10, Duration::from_secs(30)).await?;
    first.commit(&positions(&records)).await?;
    drop(first);

    producer
        .send(
            "t.commit",
            (10..15)
                .map(|i| message(&format!("k{i}"), &format!("{i}")))
                .collect(),
        )
        .await?;
    let mut second = log
        .consumer(ConsumerConfig::new("g.commit", &["t.commit"]))
        .await?;
    let rest = read(second.as_mut(), 5, Duration::from_secs(30)).await?;
    let mut values: Vec<String> = rest
        .iter()
        .map(|r| String::from_utf8_lossy(&r.value).into_owned())
        .collect();
    values.sort();
    assert_eq!(values, ["10", "11", "12", "13", "14"]);
    drop(second);

    let mut replay = log
        .consumer(ConsumerConfig::new("g.commit", &["t.commit"]).starting(StartFrom::Earliest))
        .await?;
    let all = read(replay.as_mut(), 15, Duration::from_secs(30)).await?;
    assert_eq!(all.len(), 15);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latest_consumer_sees_what_is_sent_after_it_was_created_only() -> anyhow::Result<()> {
    let broker = TansuBroker::start()?;
    let log = KafkaLog::connect(config(&broker)).await?;
    log.ensure_topics(&[spec("t.latest", 2)]).await?;
    let producer = log.producer()?;
    producer
        .send("t.latest", vec![message("old", "old")])
        .await?;
    let mut consumer = log
        .consumer(ConsumerConfig::new("g.latest", &["t.latest"]).starting(StartFrom::Latest))
        .await?;
    // Sent before the group join completes: still after the consumer was created.
    producer
        .send("t.latest", vec![message("new", "new")])
        .await?;
    let records = read(consumer.as_mut(), 1, Duration::from_secs(30)).await?;
    assert_eq!(
        records.iter().map(|r| r.value.clone()).collect::<Vec<_>>(),
        [b"new".to_vec()]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naming_a_topic_that_does_not_exist_is_unknown_topic() -> anyhow::Result<()> {
    let broker = TansuBroker::start()?;
    let log = KafkaLog::connect(config(&broker)).await?;
    let producer = log.producer()?;
    assert!(
        matches!(producer.send("t.none", vec![message("k", "v")]).await, Err(Error::UnknownTopic(t)) if t == "t.none")
    );
    assert!(matches!(
        log.end_offsets("t.none").await,
        Err(Error::UnknownTopic(_))
    ));
    assert!(matches!(
        log.consumer(ConsumerConfig::new("g", &["t.none"])).await,
        Err(Error::UnknownTopic(_))
    ));
    // Looking did not create it.
    assert_eq!(log.describe_topic("t.none").await?, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_while_the_broker_is_down_fails_as_unavailable_within_the_delivery_timeout()
-> anyhow::Result<()> {
    let mut broker = TansuBroker::start()?;
    let log = KafkaLog::connect(KafkaConfig {
        delivery_timeout: Duration::from_secs(2),
        ..config(&broker)
    })
    .await?;
    log.ensure_topics(&[spec("t.down", 3)]).await?;
    let producer = log.producer()?;
    producer
        .send("t.down", vec![message("k", "before")])
        .await?;
    broker.kill();
    let started = Instant::now();
    let err = producer
        .send(
            "t.down",
            (0..50)
                .map(|i| message(&format!("k{i}"), "during"))
                .collect(),
        )
        .await
        .expect_err("the broker is gone");
    ensure!(
        err.is_retryable(),
        "expected a retryable error, got {err:?}"
    );
    ensure!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    println!("send while down: {err} after {:?}", started.elapsed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idempotent_producer_delivers_again_after_the_broker_restarts_empty()
-> anyhow::Result<()> {
    let mut broker = TansuBroker::start()?;
    let port = broker.port();
    let log = KafkaLog::connect(KafkaConfig {
        delivery_timeout: Duration::from_secs(3),
        ..config(&broker)
    })
    .await?;
    assert!(log.config().idempotence, "idempotence is on by default");
    log.ensure_topics(&[spec("t.restart", 3)]).await?;
    let producer = log.producer()?;
    producer
        .send(
            "t.restart",
            (0..100).map(|i| message(&format!("k{i}"), "one")).collect(),
        )
        .await?;

    broker.kill();
    let _broker = TansuBroker::start_on(port)?;
    // Memory storage: the topic is gone with the old broker; recreate it.
    eventually(Duration::from_secs(30), "recreate the topic", || async {
        Ok(log.ensure_topics(&[spec("t.restart", 3)]).await.ok())
    })
    .await?;
    let outcomes = eventually(Duration::from_secs(60), "send after the restart", || {
        let producer = &producer;
        async move {
            match producer
                .send(
                    "t.restart",
                    (0..100).map(|i| message(&format!("k{i}"), "two")).collect(),
                )
                .await
            {
                Ok(()) => Ok(Some(())),
                Err(e) => {
                    println!("send after restart: {e}");
                    Ok(None)
                }
            }
        }
    })
    .await;
    outcomes?;
    let mut consumer = log
        .consumer(ConsumerConfig::new("g.restart", &["t.restart"]).starting(StartFrom::Earliest))
        .await?;
    let records = read(consumer.as_mut(), 100, Duration::from_secs(30)).await?;
    ensure!(
        records.iter().all(|r| r.value == b"two"),
        "only what was sent after the restart is there"
    );
    Ok(())
}

/// Not an assertion of a rate (the machine is shared), a measurement: prints events/s of
/// `KafkaLog::send` (batches of 10 000, awaited) and of a bare `FutureProducer` with the
/// same settings (all queued, then every report awaited), for real encoded contact
/// events (~130 bytes with key). Three alternating rounds each after a warm-up; the best
/// round of each is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_log_send_keeps_pace_with_a_bare_rdkafka_producer() -> anyhow::Result<()> {
    const N: usize = 100_000;
    const BATCH: usize = 10_000;
    const ROUNDS: usize = 3;
    let broker = TansuBroker::start()?;
    let log = KafkaLog::connect(config(&broker)).await?;
    log.ensure_topics(&[spec("t.bare", 12), spec("t.log", 12)])
        .await?;
    let messages: Vec<Message> = (0..N as u64)
        .map(|n| contact_event(n).map(|e| hotline_eventlog::events::message_for(&e)))
        .collect::<anyhow::Result<_>>()?;
    let bytes = messages
        .iter()
        .map(|m| m.key.len() + m.value.len())
        .sum::<usize>()
        / N;

    // Bare rdkafka, the same settings as KafkaLog's producer.
    let bare: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.addr())
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("partitioner", "consistent")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("compression.type", "lz4")
        .create()?;
    let producer = log.producer()?;
    producer.send("t.log", messages[..100].to_vec()).await?;
    bare.send(
        FutureRecord::to("t.bare").key("warm").payload("up"),
        Duration::from_secs(5),
    )
    .await
    .map_err(|(e, _)| e)?;

    let (mut best_bare, mut best_log) = (0f64, 0f64);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let mut deliveries = Vec::with_capacity(N);
        for m in &messages {
            let record = FutureRecord::to("t.bare")
                .key(m.key.as_slice())
                .payload(m.value.as_slice())
                .timestamp(m.timestamp_ms);
            deliveries.push(bare.send_result(record).map_err(|(e, _)| e)?);
        }
        for d in deliveries {
            d.await?.map_err(|(e, _)| e)?;
        }
        best_bare = best_bare.max(N as f64 / started.elapsed().as_secs_f64());

        let batches: Vec<Vec<Message>> = messages.chunks(BATCH).map(<[Message]>::to_vec).collect();
        let started = Instant::now();
        for batch in batches {
            producer.send("t.log", batch).await?;
        }
        best_log = best_log.max(N as f64 / started.elapsed().as_secs_f64());
    }
    // Every event arrived.
    let total: u64 = log.end_offsets("t.log").await?.iter().sum();
    assert_eq!(total, (ROUNDS * N + 100) as u64);
    println!(
        "throughput, {N} events of ~{bytes} bytes, best of {ROUNDS}: bare FutureProducer {best_bare:.0}/s, \
         KafkaLog::send (batches of {BATCH}) {best_log:.0}/s, ratio {:.2}",
        best_log / best_bare
    );
    Ok(())
}

fn contact_event(n: u64) -> anyhow::Result<hotline_core::event::Event> {
    use hotline_core::event::{ContactEvent, ContactEventKind, Event, EventBody};
    use hotline_core::ids::{AgentId, ContactId, EventId, QueueId, SiteId, TenantId, TraceId};
    Ok(Event {
        id: EventId::random(),
        at: hotline_core::time::Timestamp(1_700_000_000_000_000 + n * 1_000),
        tenant: TenantId::new("tenant-1")?,
        site: SiteId::new("paris")?,
        trace: TraceId::random(),
        body: EventBody::Contact(ContactEvent {
            contact: ContactId::from_u128(u128::from(n % 1_000)),
            channel: hotline_core::channel::Channel::Voice,
            queue: Some(QueueId::new("billing")?),
            agent: Some(AgentId::new(format!("agent-{}", n % 200))?),
            kind: ContactEventKind::Connected {
                wait_ms: n % 60_000,
            },
        }),
    })
}

// === the conformance suite (hotline_eventlog::testing), one broker per property ===

macro_rules! conformance {
    ($($property:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $property() -> anyhow::Result<()> {
            let broker = TansuBroker::start()?;
            let log = KafkaLog::connect(config(&broker)).await?;
            hotline_eventlog::testing::$property(&log, concat!("conf.", stringify!($property))).await;
            Ok(())
        }
    )*};
}

conformance!(
    topics_are_created_once_and_checked_against_their_spec,
    records_arrive_in_order_per_key_on_the_partition_of_their_key,
    end_offsets_count_what_was_sent_per_partition,
    a_new_consumer_resumes_after_the_last_commit_and_redelivers_the_rest,
    earliest_replays_everything_whatever_was_committed,
    latest_skips_what_was_there_before,
    an_empty_poll_returns_within_its_wait,
    a_large_batch_arrives_intact,
    batches_started_one_after_another_land_in_that_order,
    background_commits_take_effect_in_the_order_made,
);

/// A measurement, too: the ACD's path end to end — `Publisher::publish` (non-blocking)
/// → embedded spool → forwarder → `KafkaLog::send` — for a burst of 100 000 events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publisher_forwards_a_burst_through_its_spool_to_kafka() -> anyhow::Result<()> {
    use hotline_core::event::EventSink;
    use hotline_eventlog::publisher::{Publisher, PublisherConfig};
    const N: u64 = 100_000;
    let broker = TansuBroker::start()?;
    let log = KafkaLog::connect(config(&broker)).await?;
    log.ensure_topics(&[spec("t.publisher", 12)]).await?;
    let spool = tempfile::tempdir()?;
    let publisher = Publisher::open(
        spool.path(),
        std::sync::Arc::new(log.clone()),
        PublisherConfig {
            topic: "t.publisher".to_string(),
            ..PublisherConfig::default()
        },
    )
    .await?;
    let events = (0..N)
        .map(contact_event)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let started = Instant::now();
    for chunk in events.chunks(100) {
        publisher.publish(chunk);
    }
    let handed_over = started.elapsed();
    eventually(Duration::from_secs(120), "forward the burst", || async {
        Ok((publisher.stats().forwarded >= N).then_some(()))
    })
    .await?;
    let forwarded = started.elapsed();
    let report = publisher.shutdown(Duration::from_secs(10)).await;
    assert!(report.flushed, "{report:?}");
    let total: u64 = log.end_offsets("t.publisher").await?.iter().sum();
    assert_eq!(total, N);
    println!(
        "publisher: {N} events handed over in {handed_over:?}, all acknowledged by kafka after {forwarded:?} ({:.0}/s)",
        N as f64 / forwarded.as_secs_f64()
    );
    Ok(())
}
