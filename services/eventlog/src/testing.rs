//! The conformance suite: the properties every [`EventLog`] must have, written only
//! against the trait so the embedded log and Kafka run exactly the same checks.
//!
//! Each property is a `pub async fn` taking the log and a topic prefix; every topic and
//! group it uses starts with that prefix, so the suite can run against a shared broker
//! (give each run a unique prefix, e.g. with the process id and time). [`run_all`] runs
//! them all. Failures panic with a message saying what was expected, as assertions do.
//!
//! Timings are generous because a real broker takes seconds to join a group: waits are
//! poll loops with a deadline ([`DEADLINE`]), never bare sleeps.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::log::{
    Consumer, ConsumerConfig, Error, EventLog, Message, Offset, Partition, Record, Result,
    StartFrom, TopicSpec, partition_for,
};

/// How long a property waits for records before it fails.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// How long each poll inside a wait loop waits.
const POLL_WAIT: Duration = Duration::from_millis(500);

/// Runs every property, each on its own topics under `prefix`.
pub async fn run_all(log: &dyn EventLog, prefix: &str) {
    topics_are_created_once_and_checked_against_their_spec(log, &format!("{prefix}.topics")).await;
    records_arrive_in_order_per_key_on_the_partition_of_their_key(log, &format!("{prefix}.order"))
        .await;
    end_offsets_count_what_was_sent_per_partition(log, &format!("{prefix}.end")).await;
    a_new_consumer_resumes_after_the_last_commit_and_redelivers_the_rest(
        log,
        &format!("{prefix}.commit"),
    )
    .await;
    earliest_replays_everything_whatever_was_committed(log, &format!("{prefix}.earliest")).await;
    latest_skips_what_was_there_before(log, &format!("{prefix}.latest")).await;
    an_empty_poll_returns_within_its_wait(log, &format!("{prefix}.empty")).await;
    a_large_batch_arrives_intact(log, &format!("{prefix}.large")).await;
    batches_started_one_after_another_land_in_that_order(log, &format!("{prefix}.pipelined")).await;
    background_commits_take_effect_in_the_order_made(log, &format!("{prefix}.bgcommit")).await;
}

// === helpers ===

/// A one-partition topic holding ten records (`v0`..`v9`, key `k`), and a consumer of
/// a fresh group that has read all ten: returns the topic, the group and the consumer.
async fn ten_read(log: &dyn EventLog, prefix: &str) -> (String, String, Box<dyn Consumer>) {
    let topic = format!("{prefix}.t");
    create(log, &topic, 1).await;
    let batch = (0..10).map(|i| message("k", format!("v{i}"))).collect();
    send(log, &topic, batch).await;
    let group = format!("{prefix}.g");
    let mut first = ok(
        log.consumer(ConsumerConfig::new(&group, &[&topic])).await,
        "make the first consumer",
    );
    let records = poll_count(first.as_mut(), 10, "first consumer reads all ten").await;
    assert_eq!(
        records[0].offset, 0,
        "a group with no commit starts at the earliest"
    );
    (topic, group, first)
}

fn ok<T>(result: Result<T>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e}"),
    }
}

fn spec(name: &str, partitions: u32) -> TopicSpec {
    TopicSpec {
        name: name.to_string(),
        partitions,
        retention: Some(Duration::from_secs(24 * 3600)),
        retention_bytes: None,
    }
}

fn message(key: &str, value: impl Into<Vec<u8>>) -> Message {
    Message {
        key: key.as_bytes().to_vec(),
        value: value.into(),
        timestamp_ms: 1_700_000_000_000,
    }
}

async fn create(log: &dyn EventLog, name: &str, partitions: u32) {
    ok(
        log.ensure_topics(&[spec(name, partitions)]).await,
        &format!("create topic {name}"),
    );
}

async fn send(log: &dyn EventLog, topic: &str, messages: Vec<Message>) {
    let producer = ok(log.producer(), "make a producer");
    ok(
        producer.send(topic, messages).await,
        &format!("send to {topic}"),
    );
}

/// Polls until `enough` says the records so far suffice, or [`DEADLINE`] passes.
async fn poll_until(
    consumer: &mut dyn Consumer,
    what: &str,
    mut enough: impl FnMut(&[Record]) -> bool,
) -> Vec<Record> {
    let start = Instant::now();
    let mut records = Vec::new();
    while !enough(&records) {
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: gave up after {DEADLINE:?} with {} records",
            records.len()
        );
        let poll = ok(consumer.poll(1000, POLL_WAIT).await, what);
        assert!(
            poll.skipped.is_empty(),
            "{what}: nothing should be damaged, got {:?}",
            poll.skipped
        );
        records.extend(poll.records);
    }
    records
}

/// Polls until `count` records arrived.
async fn poll_count(consumer: &mut dyn Consumer, count: usize, what: &str) -> Vec<Record> {
    poll_until(consumer, what, |r| r.len() >= count).await
}

// === properties ===

/// `ensure_topics` creates what is missing, is idempotent, reports an existing topic
/// with too few partitions as a mismatch, and `describe_topic` agrees.
pub async fn topics_are_created_once_and_checked_against_their_spec(
    log: &dyn EventLog,
    prefix: &str,
) {
    let a = format!("{prefix}.a");
    let b = format!("{prefix}.b");
    assert_eq!(
        ok(log.describe_topic(&a).await, "describe a missing topic"),
        None,
        "a topic never created is described as None"
    );
    let specs = [spec(&a, 3), spec(&b, 1)];
    let first = ok(log.ensure_topics(&specs).await, "ensure topics");
    assert_eq!(first.len(), 2, "one TopicInfo per spec");
    assert_eq!(
        (first[0].name.as_str(), first[0].partitions),
        (a.as_str(), 3)
    );
    assert_eq!(
        (first[1].name.as_str(), first[1].partitions),
        (b.as_str(), 1)
    );
    let again = ok(
        log.ensure_topics(&specs).await,
        "ensure the same topics again",
    );
    assert_eq!(
        again
            .iter()
            .map(|t| (&t.name, t.partitions))
            .collect::<Vec<_>>(),
        first
            .iter()
            .map(|t| (&t.name, t.partitions))
            .collect::<Vec<_>>(),
        "ensuring twice changes nothing"
    );
    let described = ok(log.describe_topic(&a).await, "describe a topic")
        .unwrap_or_else(|| panic!("topic {a} exists after ensure_topics"));
    assert_eq!(described.partitions, 3);
    match log.ensure_topics(&[spec(&a, 5)]).await {
        Err(Error::TopicMismatch { topic, problem }) => {
            assert_eq!(topic, a, "the mismatch names the topic");
            assert!(
                problem.contains('3') && problem.contains('5'),
                "the mismatch gives both partition counts: {problem}"
            );
        }
        other => {
            panic!("asking for more partitions than {a} has must be a mismatch, got {other:?}")
        }
    }
}

/// Messages with one key come back in the order sent, each on `partition_for(key)`.
pub async fn records_arrive_in_order_per_key_on_the_partition_of_their_key(
    log: &dyn EventLog,
    prefix: &str,
) {
    let topic = format!("{prefix}.t");
    let partitions = 4;
    create(log, &topic, partitions).await;
    let keys: Vec<String> = (0..20).map(|k| format!("tenant/contact-{k}")).collect();
    let per_key = 50;
    let mut batch = Vec::new();
    for seq in 0..per_key {
        for key in &keys {
            batch.push(message(key, format!("{key}#{seq}")));
        }
        if batch.len() >= 200 {
            send(log, &topic, std::mem::take(&mut batch)).await;
        }
    }
    send(log, &topic, batch).await;
    let group = format!("{prefix}.g");
    let mut consumer = ok(
        log.consumer(ConsumerConfig::new(&group, &[&topic]).starting(StartFrom::Earliest))
            .await,
        "make a consumer",
    );
    let total = keys.len() * per_key;
    let records = poll_count(consumer.as_mut(), total, "read every record").await;
    let mut last: HashMap<Vec<u8>, i64> = HashMap::new();
    let mut seen = HashSet::new();
    for r in &records {
        let key = String::from_utf8_lossy(&r.key).to_string();
        assert_eq!(
            r.partition,
            partition_for(&r.key, partitions),
            "key {key} is on the partition partition_for gives"
        );
        let value = String::from_utf8_lossy(&r.value).to_string();
        let (vkey, seq) = value
            .rsplit_once('#')
            .unwrap_or_else(|| panic!("value {value:?} is one we sent"));
        assert_eq!(vkey, key, "the value came with its own key");
        let seq: i64 = seq
            .parse()
            .unwrap_or_else(|_| panic!("value {value:?} has a sequence"));
        let prev = last.insert(r.key.clone(), seq).unwrap_or(-1);
        assert!(
            seq > prev,
            "key {key}: {seq} came after {prev}, out of order"
        );
        seen.insert(value);
    }
    assert_eq!(seen.len(), total, "every message arrived");
}

/// `end_offsets` is, per partition, how many records went there.
pub async fn end_offsets_count_what_was_sent_per_partition(log: &dyn EventLog, prefix: &str) {
    let topic = format!("{prefix}.t");
    let partitions = 3;
    create(log, &topic, partitions).await;
    assert_eq!(
        ok(log.end_offsets(&topic).await, "end offsets of a new topic"),
        vec![0; partitions as usize],
        "a new topic's end offsets are all 0"
    );
    let mut expected = vec![0 as Offset; partitions as usize];
    let mut batch = Vec::new();
    for i in 0..30 {
        let key = format!("key-{i}");
        expected[partition_for(key.as_bytes(), partitions) as usize] += 1;
        batch.push(message(&key, vec![i as u8]));
    }
    send(log, &topic, batch).await;
    assert_eq!(
        ok(log.end_offsets(&topic).await, "end offsets"),
        expected,
        "end offsets count the records each partition got"
    );
    match log.end_offsets(&format!("{prefix}.missing")).await {
        Err(Error::UnknownTopic(name)) => assert!(name.ends_with(".missing")),
        other => panic!("end offsets of a missing topic must be UnknownTopic, got {other:?}"),
    }
}

/// A consumer that commits part of what it read and goes away: the group's next
/// consumer starts right after the commit, so the uncommitted rest comes again.
pub async fn a_new_consumer_resumes_after_the_last_commit_and_redelivers_the_rest(
    log: &dyn EventLog,
    prefix: &str,
) {
    let (topic, group, mut first) = ten_read(log, prefix).await;
    ok(
        first.commit(&[(topic.clone(), 0 as Partition, 6)]).await,
        "commit through offset 5",
    );
    drop(first);
    let mut second = ok(
        log.consumer(ConsumerConfig::new(&group, &[&topic])).await,
        "make the second consumer",
    );
    let records = poll_count(second.as_mut(), 4, "second consumer reads the rest").await;
    let offsets: Vec<Offset> = records.iter().map(|r| r.offset).collect();
    assert_eq!(
        offsets[..4],
        [6, 7, 8, 9],
        "the next consumer starts after the commit and gets the uncommitted records again"
    );
    assert_eq!(records[0].value, b"v6");
}

/// `StartFrom::Earliest` reads from the start even when the group committed further.
pub async fn earliest_replays_everything_whatever_was_committed(log: &dyn EventLog, prefix: &str) {
    let topic = format!("{prefix}.t");
    create(log, &topic, 2).await;
    let batch = (0..20)
        .map(|i| message(&format!("k{i}"), format!("v{i}")))
        .collect();
    send(log, &topic, batch).await;
    let group = format!("{prefix}.g");
    {
        let mut reader = ok(
            log.consumer(ConsumerConfig::new(&group, &[&topic])).await,
            "make a consumer",
        );
        let records = poll_count(reader.as_mut(), 20, "read everything once").await;
        let mut ends: BTreeMap<Partition, Offset> = BTreeMap::new();
        for r in &records {
            let e = ends.entry(r.partition).or_default();
            *e = (*e).max(r.offset + 1);
        }
        let positions: Vec<_> = ends
            .into_iter()
            .map(|(p, o)| (topic.clone(), p, o))
            .collect();
        ok(reader.commit(&positions).await, "commit everything");
    }
    let mut replay = ok(
        log.consumer(ConsumerConfig::new(&group, &[&topic]).starting(StartFrom::Earliest))
            .await,
        "make a replaying consumer",
    );
    let records = poll_count(replay.as_mut(), 20, "replay everything").await;
    let values: HashSet<Vec<u8>> = records.iter().map(|r| r.value.clone()).collect();
    assert_eq!(
        values.len(),
        20,
        "a replay from the earliest sees every record again"
    );
}

/// `StartFrom::Latest` in a group with no commit sees only what is sent after it
/// started. Markers are sent until the consumer sees one, since a broker may take a
/// while to assign it partitions.
pub async fn latest_skips_what_was_there_before(log: &dyn EventLog, prefix: &str) {
    let topic = format!("{prefix}.t");
    create(log, &topic, 1).await;
    let old = (0..5).map(|i| message("k", format!("old{i}"))).collect();
    send(log, &topic, old).await;
    let group = format!("{prefix}.g");
    let mut consumer = ok(
        log.consumer(ConsumerConfig::new(&group, &[&topic]).starting(StartFrom::Latest))
            .await,
        "make a consumer starting at the latest",
    );
    let producer = ok(log.producer(), "make a producer");
    let start = Instant::now();
    let mut got = Vec::new();
    let mut marker = 0;
    while got.is_empty() {
        assert!(
            start.elapsed() < DEADLINE,
            "a consumer starting at the latest saw none of {marker} new markers in {DEADLINE:?}"
        );
        ok(
            producer
                .send(&topic, vec![message("k", format!("new{marker}"))])
                .await,
            "send a marker",
        );
        marker += 1;
        got.extend(ok(consumer.poll(100, POLL_WAIT).await, "poll").records);
    }
    for r in &got {
        assert!(
            r.value.starts_with(b"new"),
            "a consumer starting at the latest must not see {:?}",
            String::from_utf8_lossy(&r.value)
        );
    }
}

/// A poll with nothing to read returns empty, about when its wait is over.
pub async fn an_empty_poll_returns_within_its_wait(log: &dyn EventLog, prefix: &str) {
    let topic = format!("{prefix}.t");
    create(log, &topic, 1).await;
    let mut consumer = ok(
        log.consumer(ConsumerConfig::new(format!("{prefix}.g"), &[&topic]))
            .await,
        "make a consumer",
    );
    let wait = Duration::from_millis(300);
    for _ in 0..2 {
        let start = Instant::now();
        let poll = ok(consumer.poll(10, wait).await, "poll an empty topic");
        let took = start.elapsed();
        assert!(
            poll.records.is_empty() && poll.skipped.is_empty(),
            "nothing to read"
        );
        assert!(
            took < wait + Duration::from_secs(5),
            "an empty poll with wait {wait:?} took {took:?}"
        );
    }
}

/// Ten thousand messages in one send all arrive, byte for byte.
pub async fn a_large_batch_arrives_intact(log: &dyn EventLog, prefix: &str) {
    let topic = format!("{prefix}.t");
    create(log, &topic, 3).await;
    let count = 10_000;
    let value_of = |i: usize| -> Vec<u8> {
        let mut v = format!("{i:08}:").into_bytes();
        v.extend((0..150).map(|j| ((i * 31 + j * 7) % 251) as u8));
        v
    };
    let batch = (0..count)
        .map(|i| message(&format!("tenant/{}", i % 97), value_of(i)))
        .collect();
    send(log, &topic, batch).await;
    let mut consumer = ok(
        log.consumer(
            ConsumerConfig::new(format!("{prefix}.g"), &[&topic]).starting(StartFrom::Earliest),
        )
        .await,
        "make a consumer",
    );
    let records = poll_count(consumer.as_mut(), count, "read the large batch").await;
    let mut seen = vec![false; count];
    for r in &records {
        let i: usize = std::str::from_utf8(&r.value[..8])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("record at offset {} has a value we sent", r.offset));
        assert_eq!(r.value, value_of(i), "message {i} arrived byte for byte");
        assert_eq!(
            r.key,
            format!("tenant/{}", i % 97).into_bytes(),
            "message {i} kept its key"
        );
        assert_eq!(
            r.timestamp_ms, 1_700_000_000_000,
            "message {i} kept its timestamp"
        );
        seen[i] = true;
    }
    assert!(
        seen.iter().all(|s| *s),
        "every message of the batch arrived"
    );
}

/// Batches handed over with `start_send` before any is acknowledged land in the order
/// they were started, and each delivery reports success.
pub async fn batches_started_one_after_another_land_in_that_order(
    log: &dyn EventLog,
    prefix: &str,
) {
    let topic = format!("{prefix}.t");
    create(log, &topic, 1).await;
    let producer = ok(log.producer(), "make a producer");
    let mut deliveries = Vec::new();
    for b in 0..5 {
        let batch = (0..200)
            .map(|i| message("k", format!("{:06}", b * 200 + i)))
            .collect();
        deliveries.push(ok(
            producer.start_send(&topic, batch).await,
            "start a batch",
        ));
    }
    for (b, d) in deliveries.into_iter().enumerate() {
        ok(d.await, &format!("delivery of batch {b}"));
    }
    let mut consumer = ok(
        log.consumer(
            ConsumerConfig::new(format!("{prefix}.g"), &[&topic]).starting(StartFrom::Earliest),
        )
        .await,
        "make a consumer",
    );
    let records = poll_count(consumer.as_mut(), 1_000, "read the five batches").await;
    let values: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.value).into_owned())
        .collect();
    let expected: Vec<String> = (0..1_000).map(|i| format!("{i:06}")).collect();
    assert_eq!(values, expected, "the batches landed in the order started");
}

/// Commits made with `start_commit` are stored in the order made: after a commit of 3
/// and then of 6, the group's next consumer starts at 6 (once the second is stored).
pub async fn background_commits_take_effect_in_the_order_made(log: &dyn EventLog, prefix: &str) {
    let (topic, group, mut first) = ten_read(log, prefix).await;
    ok(
        first
            .start_commit(&[(topic.clone(), 0 as Partition, 3)])
            .await,
        "start a commit through offset 2",
    );
    ok(
        first
            .start_commit(&[(topic.clone(), 0 as Partition, 6)])
            .await,
        "start a commit through offset 5",
    );
    drop(first);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let mut next = ok(
            log.consumer(ConsumerConfig::new(&group, &[&topic])).await,
            "make the next consumer",
        );
        let records = poll_count(next.as_mut(), 1, "the next consumer reads").await;
        match records[0].offset {
            6 => break,
            0 | 3 if tokio::time::Instant::now() < deadline => {
                // Not stored yet; a later consumer will see it.
                drop(next);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!(
                "the group's next consumer started at offset {other}; the commits of 3 then 6 should leave it at 6"
            ),
        }
    }
}
