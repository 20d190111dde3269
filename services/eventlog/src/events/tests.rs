//! Unit tests of the event consumer, against a real embedded log in a temporary
//! directory: quarantine, deduplication, commits, and that nothing stalls it.

use std::time::{Duration, Instant};

use hotline_core::channel::Channel;
use hotline_core::event::{ContactEvent, ContactEventKind, Event, EventBody};
use hotline_core::ids::{ContactId, EventId, SiteId, TenantId, TraceId};
use hotline_core::time::Timestamp;
use prost::Message as _;

use super::*;
use crate::embedded::{EmbeddedConfig, EmbeddedLog, FsyncPolicy};
use crate::log::{ConsumerConfig, EventLog, StartFrom, TopicSpec};

const EVENTS: &str = "events";
const QUARANTINE: &str = "quarantine";

fn event(n: u128) -> Event {
    Event {
        // A UUID v7-like id: the top 48 bits are milliseconds.
        id: EventId::from_u128((1_700_000_000_000u128 << 80) | n),
        at: Timestamp(1_700_000_000_000_000 + n as u64),
        tenant: TenantId::new("acme").expect("valid tenant"),
        site: SiteId::new("paris").expect("valid site"),
        trace: TraceId::from_u128(7),
        body: EventBody::Contact(ContactEvent {
            contact: ContactId::from_u128(n),
            channel: Channel::Voice,
            queue: None,
            agent: None,
            kind: ContactEventKind::IvrEntered,
        }),
    }
}

fn raw(key: &str, value: Vec<u8>) -> Message {
    Message {
        key: key.as_bytes().to_vec(),
        value,
        timestamp_ms: 1_700_000_000_000,
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    log: EmbeddedLog,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EmbeddedLog::open(
        dir.path(),
        EmbeddedConfig {
            fsync: FsyncPolicy::Never,
            ..EmbeddedConfig::default()
        },
    )
    .await
    .expect("open log");
    let spec = |name: &str, partitions| TopicSpec {
        name: name.to_string(),
        partitions,
        retention: None,
        retention_bytes: None,
    };
    log.ensure_topics(&[spec(EVENTS, 1), spec(QUARANTINE, 1)])
        .await
        .expect("topics");
    Fixture { _dir: dir, log }
}

async fn consumer(log: &EmbeddedLog, group: &str) -> EventConsumer {
    EventConsumer::open(
        log,
        ConsumerConfig::new(group, &[EVENTS]).starting(StartFrom::Earliest),
        EventConsumerConfig {
            quarantine_topic: QUARANTINE.to_string(),
            ..EventConsumerConfig::default()
        },
    )
    .await
    .expect("consumer")
}

async fn send(log: &EmbeddedLog, messages: Vec<Message>) {
    log.producer()
        .expect("producer")
        .send(EVENTS, messages)
        .await
        .expect("send");
}

/// Reads events until `count` arrived or a deadline passes.
async fn events(c: &mut EventConsumer, count: usize) -> Vec<(Position, Event)> {
    let start = Instant::now();
    let mut out = Vec::new();
    while out.len() < count {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "only {} events",
            out.len()
        );
        out.extend(
            c.next_batch(100, Duration::from_millis(200))
                .await
                .expect("poll"),
        );
    }
    out
}

/// Every envelope in the quarantine topic, parsed.
async fn quarantined(log: &EmbeddedLog, count: usize) -> Vec<serde_json::Value> {
    let mut c = log
        .consumer(ConsumerConfig::new("q-reader", &[QUARANTINE]))
        .await
        .expect("quarantine consumer");
    let start = Instant::now();
    let mut out = Vec::new();
    while out.len() < count {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "only {} envelopes",
            out.len()
        );
        let poll = c.poll(100, Duration::from_millis(200)).await.expect("poll");
        for r in poll.records {
            out.push(serde_json::from_slice(&r.value).expect("envelope is JSON"));
        }
    }
    out
}

#[test]
fn message_for_keys_by_tenant_and_contact_and_round_trips() {
    let e = event(3);
    let m = message_for(&e);
    assert_eq!(m.key, e.key().into_bytes());
    assert_eq!(m.timestamp_ms, 1_700_000_000_000);
    assert_eq!(hotline_proto::decode_event(&m.value).expect("decodes"), e);
}

#[tokio::test]
async fn garbage_bytes_are_quarantined_with_their_offset_and_later_events_still_arrive() {
    let f = fixture().await;
    let e = event(1);
    send(
        &f.log,
        vec![
            raw(&e.key(), b"\xff\xfe not protobuf".to_vec()),
            message_for(&e),
        ],
    )
    .await;
    let mut c = consumer(&f.log, "g").await;
    let got = events(&mut c, 1).await;
    assert_eq!(
        got[0].1, e,
        "the valid event after the garbage is delivered"
    );
    assert_eq!(got[0].0.offset, 1);
    let stats = c.stats();
    assert_eq!(stats.quarantined_total.load(Ordering::Relaxed), 1);
    let q = quarantined(&f.log, 1).await;
    assert_eq!(q[0]["source_topic"], EVENTS);
    assert_eq!(q[0]["partition"], 0);
    assert_eq!(q[0]["offset"], 0);
    assert_eq!(q[0]["value_hex"], hex(b"\xff\xfe not protobuf"));
    assert!(q[0]["error"].as_str().is_some_and(|s| !s.is_empty()));
}

#[tokio::test]
async fn an_unknown_schema_version_is_quarantined_not_misread() {
    let f = fixture().await;
    let future = hotline_proto::events::v1::Event {
        schema_version: 99,
        ..Default::default()
    }
    .encode_to_vec();
    let e = event(2);
    send(&f.log, vec![raw("acme/x", future), message_for(&e)]).await;
    let mut c = consumer(&f.log, "g").await;
    let got = events(&mut c, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, e);
    let q = quarantined(&f.log, 1).await;
    assert!(
        q[0]["error"].as_str().is_some_and(|s| s.contains("99")),
        "the envelope says which version: {}",
        q[0]
    );
    assert_eq!(c.stats().quarantined_total.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_redelivered_event_is_dropped_as_a_duplicate() {
    let f = fixture().await;
    let (a, b) = (event(1), event(2));
    send(
        &f.log,
        vec![
            message_for(&a),
            message_for(&b),
            message_for(&a),
            message_for(&event(3)),
        ],
    )
    .await;
    let mut c = consumer(&f.log, "g").await;
    let got = events(&mut c, 3).await;
    let ids: Vec<_> = got.iter().map(|(_, e)| e.id).collect();
    assert_eq!(ids, vec![a.id, b.id, event(3).id]);
    assert_eq!(c.stats().duplicates_total.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn many_bad_records_in_a_row_do_not_stall_the_consumer() {
    let f = fixture().await;
    let mut batch: Vec<Message> = (0..500).map(|i| raw("k", vec![i as u8; 3])).collect();
    batch.push(message_for(&event(9)));
    send(&f.log, batch).await;
    let mut c = consumer(&f.log, "g").await;
    let got = events(&mut c, 1).await;
    assert_eq!(got[0].1, event(9));
    assert_eq!(got[0].0.offset, 500);
    assert_eq!(c.stats().quarantined_total.load(Ordering::Relaxed), 500);
}

#[tokio::test]
async fn commit_through_also_commits_trailing_quarantined_records() {
    let f = fixture().await;
    send(
        &f.log,
        vec![
            message_for(&event(1)),
            raw("k", b"bad".to_vec()),
            raw("k", b"bad".to_vec()),
        ],
    )
    .await;
    {
        let mut c = consumer(&f.log, "g").await;
        let got = events(&mut c, 1).await;
        // Make sure the trailing bad records were seen too.
        let start = Instant::now();
        while c.stats().quarantined_total.load(Ordering::Relaxed) < 2 {
            assert!(start.elapsed() < Duration::from_secs(10));
            c.next_batch(100, Duration::from_millis(100))
                .await
                .expect("poll");
        }
        let positions: Vec<Position> = got.into_iter().map(|(p, _)| p).collect();
        c.commit_through(&positions).await.expect("commit");
    }
    assert_eq!(
        f.log.end_offsets(EVENTS).await.expect("end"),
        vec![3],
        "three records were sent"
    );
    let mut again = EventConsumer::open(
        &f.log,
        ConsumerConfig::new("g", &[EVENTS]),
        EventConsumerConfig {
            quarantine_topic: QUARANTINE.to_string(),
            ..EventConsumerConfig::default()
        },
    )
    .await
    .expect("consumer");
    send(&f.log, vec![message_for(&event(4))]).await;
    let got = events(&mut again, 1).await;
    assert_eq!(
        got[0].0.offset, 3,
        "the restarted consumer starts after the bad records"
    );
    assert_eq!(again.stats().quarantined_total.load(Ordering::Relaxed), 0);
}

#[test]
fn dedupe_forgets_ids_older_than_its_horizon() {
    let mut d = Dedupe::new(Duration::from_secs(60), 1000);
    let id = |ms: u128, n: u128| (ms << 80) | n;
    assert!(d.first_time(id(1_000_000, 1)));
    assert!(
        !d.first_time(id(1_000_000, 1)),
        "a repeat within the horizon is a duplicate"
    );
    assert!(d.first_time(id(1_000_000 + 61_000, 2)));
    assert!(
        !d.seen.contains_key(&id(1_000_000, 1)),
        "an id older than the horizon is forgotten"
    );
    assert!(
        d.first_time(id(1_000_000, 1)),
        "too old to judge: delivered"
    );
}

#[test]
fn dedupe_memory_is_capped() {
    let mut d = Dedupe::new(Duration::from_secs(3600), 10);
    for n in 0..100 {
        assert!(d.first_time((5u128 << 80) | n));
    }
    assert!(d.seen.len() <= 10 && d.order.len() <= 10);
}

#[tokio::test]
async fn damage_in_the_log_is_counted_quarantined_with_its_location_and_stepped_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = EmbeddedConfig {
        fsync: FsyncPolicy::Always,
        ..EmbeddedConfig::default()
    };
    let (a, b, c) = (event(1), event(2), event(3));
    {
        let log = EmbeddedLog::open(dir.path(), config.clone())
            .await
            .expect("open");
        let spec = |name: &str| TopicSpec {
            name: name.to_string(),
            partitions: 1,
            retention: None,
            retention_bytes: None,
        };
        log.ensure_topics(&[spec(EVENTS), spec(QUARANTINE)])
            .await
            .expect("topics");
        send(
            &log,
            vec![message_for(&a), message_for(&b), message_for(&c)],
        )
        .await;
    }
    let first = message_for(&a);
    let first_len = 12 + 20 + first.key.len() + first.value.len();
    let path = dir
        .path()
        .join(EVENTS)
        .join("0")
        .join(format!("{:020}.log", 0));
    let mut bytes = std::fs::read(&path).expect("segment");
    bytes[first_len + 40] ^= 0xff; // inside the second record
    std::fs::write(&path, &bytes).expect("write segment");

    let log = EmbeddedLog::open(dir.path(), config).await.expect("reopen");
    let mut consumer = consumer(&log, "g").await;
    let got = events(&mut consumer, 2).await;
    let ids: Vec<_> = got.iter().map(|(_, e)| e.id).collect();
    assert_eq!(
        ids,
        vec![a.id, c.id],
        "the events around the damage still arrive"
    );
    assert_eq!(consumer.stats().skipped_total.load(Ordering::Relaxed), 1);
    let q = quarantined(&log, 1).await;
    assert_eq!(
        q[0]["offset"], 1,
        "the envelope names the offset expected there"
    );
    assert!(
        q[0]["location"]
            .as_str()
            .is_some_and(|l| l.contains(&format!("byte {first_len}"))),
        "the envelope says where the damage is: {}",
        q[0]
    );
}
