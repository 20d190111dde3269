//! The embedded log against the conformance suite, and what only it promises:
//! durability across reopening, torn-tail repair, stepping over damage, retention,
//! the directory lock, group sharing and throughput.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hotline_eventlog::embedded::{EmbeddedConfig, EmbeddedLog, FsyncPolicy};
use hotline_eventlog::{
    Consumer, ConsumerConfig, Error, EventLog, Message, Poll, StartFrom, TopicSpec, testing,
};

const TOPIC: &str = "t";

fn config(fsync: FsyncPolicy) -> EmbeddedConfig {
    EmbeddedConfig {
        fsync,
        ..EmbeddedConfig::default()
    }
}

fn spec(partitions: u32) -> TopicSpec {
    TopicSpec {
        name: TOPIC.to_string(),
        partitions,
        retention: None,
        retention_bytes: None,
    }
}

/// Fixed-size messages, so byte positions in a segment are easy to compute.
fn message(i: usize, timestamp_ms: i64) -> Message {
    Message {
        key: b"key".to_vec(),
        value: format!("value-{i:06}").into_bytes(),
        timestamp_ms,
    }
}

/// 12 header + 20 fixed + 3 key + 12 value.
const FRAME: u64 = 47;

fn segment(dir: &Path, partition: u32, base: u64) -> PathBuf {
    dir.join(TOPIC)
        .join(partition.to_string())
        .join(format!("{base:020}.log"))
}

async fn send_all(log: &EmbeddedLog, range: std::ops::Range<usize>, ts: i64) -> Result<()> {
    let producer = log.producer()?;
    let batch = range.map(|i| message(i, ts)).collect();
    producer.send(TOPIC, batch).await?;
    Ok(())
}

/// Polls until `count` records arrived (damage reports collected too) or 10 s pass.
async fn read(consumer: &mut dyn Consumer, count: usize) -> Result<Poll> {
    let start = Instant::now();
    let mut all = Poll::default();
    while all.records.len() < count {
        if start.elapsed() > Duration::from_secs(10) {
            bail!("only {} of {count} records arrived", all.records.len());
        }
        let poll = consumer.poll(10_000, Duration::from_millis(200)).await?;
        all.records.extend(poll.records);
        all.skipped.extend(poll.skipped);
    }
    Ok(all)
}

async fn read_from_start(log: &EmbeddedLog, group: &str, count: usize) -> Result<Poll> {
    let mut c = log
        .consumer(ConsumerConfig::new(group, &[TOPIC]).starting(StartFrom::Earliest))
        .await?;
    read(c.as_mut(), count).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_log_passes_the_conformance_suite() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path(), EmbeddedConfig::default()).await?;
    testing::run_all(&log, "conformance").await;
    Ok(())
}

#[tokio::test]
async fn records_survive_reopening_under_every_fsync_policy() -> Result<()> {
    for fsync in [
        FsyncPolicy::Always,
        FsyncPolicy::Interval(Duration::from_millis(2)),
        FsyncPolicy::Never,
    ] {
        let dir = tempfile::tempdir()?;
        {
            let log = EmbeddedLog::open(dir.path(), config(fsync)).await?;
            log.ensure_topics(&[spec(3)]).await?;
            for chunk in 0..10 {
                send_all(&log, chunk * 100..(chunk + 1) * 100, 1).await?;
            }
        }
        let log = EmbeddedLog::open(dir.path(), config(fsync)).await?;
        let info = log.describe_topic(TOPIC).await?.context("topic kept")?;
        assert_eq!(info.partitions, 3, "{fsync:?}: metadata kept");
        let ends = log.end_offsets(TOPIC).await?;
        assert_eq!(
            ends.iter().sum::<u64>(),
            1000,
            "{fsync:?}: every record kept"
        );
        let poll = read_from_start(&log, "g", 1000).await?;
        let mut values: Vec<_> = poll.records.iter().map(|r| r.value.clone()).collect();
        values.sort();
        values.dedup();
        assert_eq!(values.len(), 1000, "{fsync:?}: every record readable once");
    }
    Ok(())
}

#[tokio::test]
async fn committed_offsets_survive_reopening() -> Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let log = EmbeddedLog::open(dir.path(), config(FsyncPolicy::Always)).await?;
        log.ensure_topics(&[spec(1)]).await?;
        send_all(&log, 0..10, 1).await?;
        let mut c = log.consumer(ConsumerConfig::new("g", &[TOPIC])).await?;
        read(c.as_mut(), 10).await?;
        c.commit(&[(TOPIC.to_string(), 0, 7)]).await?;
    }
    let log = EmbeddedLog::open(dir.path(), config(FsyncPolicy::Always)).await?;
    let mut c = log.consumer(ConsumerConfig::new("g", &[TOPIC])).await?;
    let poll = read(c.as_mut(), 3).await?;
    assert_eq!(poll.records[0].offset, 7);
    Ok(())
}

#[tokio::test]
async fn under_group_commit_a_send_returns_and_is_readable_before_its_fsync() -> Result<()> {
    // An interval far longer than the test: were `send` to wait for the fsync, or
    // readers for durability, this would hang for a minute.
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(
        dir.path(),
        config(FsyncPolicy::Interval(Duration::from_secs(60))),
    )
    .await?;
    log.ensure_topics(&[spec(1)]).await?;
    send_all(&log, 0..5, 1).await?;
    let started = Instant::now();
    send_all(&log, 5..10, 1).await?;
    let sent = started.elapsed();
    let poll = read_from_start(&log, "g", 10).await?;
    assert!(
        sent < Duration::from_secs(30),
        "send waited {sent:?}, as if for the fsync"
    );
    assert_eq!(poll.records.len(), 10);
    // Closing fsyncs what is left: everything is there after reopening.
    drop(log);
    let log = EmbeddedLog::open(dir.path(), config(FsyncPolicy::Always)).await?;
    assert_eq!(log.end_offsets(TOPIC).await?, vec![10]);
    Ok(())
}

#[tokio::test]
async fn a_group_committed_past_an_end_a_machine_crash_took_back_resumes_at_the_end() -> Result<()>
{
    let dir = tempfile::tempdir()?;
    {
        let log = EmbeddedLog::open(
            dir.path(),
            config(FsyncPolicy::Interval(Duration::from_millis(5))),
        )
        .await?;
        log.ensure_topics(&[spec(1)]).await?;
        send_all(&log, 0..10, 1).await?;
        let mut c = log.consumer(ConsumerConfig::new("g", &[TOPIC])).await?;
        read(c.as_mut(), 10).await?;
        c.commit(&[(TOPIC.to_string(), 0, 10)]).await?;
    }
    // A machine crash before the last fsync: the last four records never reached the
    // disk, but the group's offset file (fsynced on commit) says 10.
    let path = segment(dir.path(), 0, 0);
    let bytes = std::fs::read(&path)?;
    std::fs::write(&path, &bytes[..(6 * FRAME) as usize])?;

    let log = EmbeddedLog::open(dir.path(), config(FsyncPolicy::Always)).await?;
    assert_eq!(log.end_offsets(TOPIC).await?, vec![6]);
    // New records take offsets 6.. again; the group must get them, not skip them.
    send_all(&log, 100..103, 1).await?;
    let mut c = log.consumer(ConsumerConfig::new("g", &[TOPIC])).await?;
    let poll = read(c.as_mut(), 3).await?;
    let got: Vec<(u64, Vec<u8>)> = poll
        .records
        .iter()
        .map(|r| (r.offset, r.value.clone()))
        .collect();
    assert_eq!(
        got,
        (0..3)
            .map(|i| (6 + i as u64, message(100 + i, 1).value))
            .collect::<Vec<_>>()
    );
    Ok(())
}

#[tokio::test]
async fn a_torn_tail_is_cut_off_on_open_and_appends_continue_after_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let log = EmbeddedLog::open(dir.path(), config(FsyncPolicy::Always)).await?;
        log.ensure_topics(&[spec(1)]).await?;
        send_all(&log, 0..10, 1).await?;
    }
    let path = segment(dir.path(), 0, 0);
    let mut bytes = std::fs::read(&path)?;
    assert_eq!(bytes.len() as u64, 10 * FRAME);
    // Half of another frame, as a crash mid-write leaves it.
    let torn: Vec<u8> = bytes[..(FRAME / 2) as usize].to_vec();
    bytes.extend(torn);
    std::fs::write(&path, &bytes)?;

    let log = EmbeddedLog::open(dir.path(), config(FsyncPolicy::Always)).await?;
    assert_eq!(
        std::fs::metadata(&path)?.len(),
        10 * FRAME,
        "the torn tail is truncated"
    );
    assert_eq!(log.end_offsets(TOPIC).await?, vec![10]);
    send_all(&log, 10..11, 1).await?;
    let poll = read_from_start(&log, "g", 11).await?;
    let offsets: Vec<u64> = poll.records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..11).collect::<Vec<_>>());
    assert!(
        poll.skipped.is_empty(),
        "a repaired tail is not damage: {:?}",
        poll.skipped
    );
    Ok(())
}

#[tokio::test]
async fn a_corrupted_byte_mid_segment_is_skipped_with_its_offset_and_later_records_arrive()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let log = EmbeddedLog::open(dir.path(), config(FsyncPolicy::Always)).await?;
        log.ensure_topics(&[spec(1)]).await?;
        send_all(&log, 0..100, 1).await?;
    }
    let path = segment(dir.path(), 0, 0);
    let mut bytes = std::fs::read(&path)?;
    let damaged = 50 * FRAME;
    bytes[(damaged + FRAME - 3) as usize] ^= 0x5a; // inside record 50's value
    std::fs::write(&path, &bytes)?;

    let log = EmbeddedLog::open(dir.path(), config(FsyncPolicy::Always)).await?;
    assert_eq!(
        std::fs::metadata(&path)?.len(),
        100 * FRAME,
        "mid-segment damage is kept"
    );
    let poll = read_from_start(&log, "g", 99).await?;
    let offsets: Vec<u64> = poll.records.iter().map(|r| r.offset).collect();
    let expected: Vec<u64> = (0..100).filter(|o| *o != 50).collect();
    assert_eq!(
        offsets, expected,
        "every valid record, in order, around the damage"
    );
    assert_eq!(
        poll.skipped.len(),
        1,
        "one damage report: {:?}",
        poll.skipped
    );
    let s = &poll.skipped[0];
    assert_eq!((s.topic.as_str(), s.partition, s.offset), (TOPIC, 0, 50));
    assert!(
        s.location.contains(&path.display().to_string()),
        "{}",
        s.location
    );
    assert!(
        s.location.contains(&format!("byte {damaged}")),
        "{}",
        s.location
    );
    assert!(s.reason.contains("checksum"), "{}", s.reason);

    // Appends after reopening go on from the right offset.
    send_all(&log, 100..101, 1).await?;
    assert_eq!(log.end_offsets(TOPIC).await?, vec![101]);
    Ok(())
}

#[tokio::test]
async fn retention_deletes_old_segments_but_never_the_active_one() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(
        dir.path(),
        EmbeddedConfig {
            segment_bytes: 4096,
            ..config(FsyncPolicy::Never)
        },
    )
    .await?;
    log.ensure_topics(&[TopicSpec {
        retention: Some(Duration::from_secs(3600)),
        ..spec(1)
    }])
    .await?;
    // Old records fill several segments; recent ones come last.
    let old = 3000i64;
    send_all(&log, 0..400, old).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    send_all(&log, 400..410, now).await?;
    let partition_dir = dir.path().join(TOPIC).join("0");
    let before = std::fs::read_dir(&partition_dir)?.count();
    assert!(
        before >= 4,
        "records rolled into several segments, got {before}"
    );

    let report = log.enforce_retention().await?;
    let after: Vec<_> = std::fs::read_dir(&partition_dir)?.collect::<Result<_, _>>()?;
    assert_eq!(report.segments_deleted, before - after.len());
    assert!(
        report.segments_deleted >= 3,
        "old segments deleted: {report:?}"
    );
    assert!(!after.is_empty(), "the active segment stays");
    assert!(
        !segment(dir.path(), 0, 0).exists(),
        "the oldest segment is gone"
    );

    let mut c = log
        .consumer(ConsumerConfig::new("g", &[TOPIC]).starting(StartFrom::Earliest))
        .await?;
    let poll = read(c.as_mut(), 10).await?;
    assert!(
        poll.records[0].offset > 0,
        "reading starts at the earliest kept record"
    );
    assert_eq!(poll.records.last().map(|r| r.offset), Some(409));
    Ok(())
}

#[tokio::test]
async fn retention_by_bytes_keeps_a_partition_under_its_limit() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(
        dir.path(),
        EmbeddedConfig {
            segment_bytes: 4096,
            ..config(FsyncPolicy::Never)
        },
    )
    .await?;
    log.ensure_topics(&[TopicSpec {
        retention_bytes: Some(10_000),
        ..spec(1)
    }])
    .await?;
    send_all(&log, 0..1000, 1).await?;
    log.enforce_retention().await?;
    let total: u64 = std::fs::read_dir(dir.path().join(TOPIC).join("0"))?
        .map(|e| e.and_then(|e| e.metadata()).map(|m| m.len()))
        .sum::<Result<u64, _>>()?;
    assert!(total <= 10_000 + 4096, "kept {total} bytes");
    assert_eq!(
        log.end_offsets(TOPIC).await?,
        vec![1000],
        "offsets are not reset"
    );
    Ok(())
}

#[tokio::test]
async fn records_across_many_segments_read_in_order_and_a_commit_mid_segment_resumes_there()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    let small = EmbeddedConfig {
        segment_bytes: 4096,
        ..config(FsyncPolicy::Always)
    };
    {
        let log = EmbeddedLog::open(dir.path(), small.clone()).await?;
        log.ensure_topics(&[spec(1)]).await?;
        for chunk in 0..4 {
            send_all(&log, chunk * 500..(chunk + 1) * 500, 1).await?;
        }
        let poll = read_from_start(&log, "all", 2000).await?;
        let offsets: Vec<u64> = poll.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (0..2000).collect::<Vec<_>>());
        let mut c = log.consumer(ConsumerConfig::new("g", &[TOPIC])).await?;
        read(c.as_mut(), 2000).await?;
        c.commit(&[(TOPIC.to_string(), 0, 1234)]).await?;
    }
    let segments = std::fs::read_dir(dir.path().join(TOPIC).join("0"))?.count();
    assert!(segments > 10, "4 KiB segments rolled, got {segments}");
    // Reopened, the index is rebuilt from the segments.
    let log = EmbeddedLog::open(dir.path(), small).await?;
    let mut c = log.consumer(ConsumerConfig::new("g", &[TOPIC])).await?;
    let poll = read(c.as_mut(), 766).await?;
    assert_eq!(poll.records[0].offset, 1234);
    assert_eq!(poll.records[0].value, b"value-001234");
    assert_eq!(poll.records.len(), 766);
    Ok(())
}

#[tokio::test]
async fn a_second_open_of_the_same_directory_is_refused_naming_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let first = EmbeddedLog::open(dir.path(), EmbeddedConfig::default()).await?;
    match EmbeddedLog::open(dir.path(), EmbeddedConfig::default()).await {
        Err(Error::Config(msg)) => {
            assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
            assert!(msg.contains("in use"), "{msg}");
        }
        other => bail!("a second open must be refused, got {other:?}"),
    }
    drop(first);
    EmbeddedLog::open(dir.path(), EmbeddedConfig::default())
        .await
        .context("the lock is released when the log is dropped")?;
    Ok(())
}

#[tokio::test]
async fn sending_to_a_missing_topic_names_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path(), EmbeddedConfig::default()).await?;
    match log.producer()?.send("nope", vec![message(0, 0)]).await {
        Err(Error::UnknownTopic(t)) => assert_eq!(t, "nope"),
        other => bail!("expected UnknownTopic, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn consumers_of_one_group_share_its_partitions_and_take_over_when_one_leaves() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path(), config(FsyncPolicy::Never)).await?;
    log.ensure_topics(&[spec(4)]).await?;
    let producer = log.producer()?;
    let batch: Vec<Message> = (0..200)
        .map(|i| Message {
            key: format!("k{i}").into_bytes(),
            value: vec![1],
            timestamp_ms: 1,
        })
        .collect();
    producer.send(TOPIC, batch).await?;
    let mut a = log.consumer(ConsumerConfig::new("g", &[TOPIC])).await?;
    let mut b = log.consumer(ConsumerConfig::new("g", &[TOPIC])).await?;
    let pa = a.poll(1000, Duration::from_millis(100)).await?;
    let pb = b.poll(1000, Duration::from_millis(100)).await?;
    let parts = |p: &Poll| {
        let mut v: Vec<u32> = p.records.iter().map(|r| r.partition).collect();
        v.sort();
        v.dedup();
        v
    };
    let (sa, sb) = (parts(&pa), parts(&pb));
    assert!(
        sa.iter().all(|p| !sb.contains(p)),
        "no partition read by both: {sa:?} {sb:?}"
    );
    assert_eq!(
        pa.records.len() + pb.records.len(),
        200,
        "together they read everything"
    );
    drop(b);
    let rest = read(a.as_mut(), pb.records.len()).await?;
    assert_eq!(
        parts(&rest),
        sb,
        "the remaining consumer takes over the partitions of the one that left"
    );
    Ok(())
}

/// Producer → log → consumer with ≈150-byte values; prints events per second.
/// `cargo test -p hotline-eventlog --test embedded -- --ignored --nocapture throughput`
/// (`HOTLINE_BENCH_IN_FLIGHT`: sends outstanding at once, default 4; `HOTLINE_BENCH_BATCH`:
/// messages per send, default 2000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check; run it on purpose"]
async fn throughput_end_to_end() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let log = EmbeddedLog::open(dir.path(), EmbeddedConfig::default()).await?;
    log.ensure_topics(&[spec(12)]).await?;
    let total = 1_000_000usize;
    let env = |name: &str, default: usize| -> usize {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let batch_size = env("HOTLINE_BENCH_BATCH", 2_000);
    let in_flight_max = env("HOTLINE_BENCH_IN_FLIGHT", 4);
    let value = vec![7u8; 150];
    let mut consumer = log
        .consumer(ConsumerConfig::new("bench", &[TOPIC]).starting(StartFrom::Earliest))
        .await?;
    let start = Instant::now();
    let producer_log = log.clone();
    let produce = tokio::spawn(async move {
        let producer: std::sync::Arc<dyn hotline_eventlog::Producer> =
            std::sync::Arc::from(producer_log.producer()?);
        let mut in_flight = std::collections::VecDeque::new();
        for b in 0..total / batch_size {
            let batch: Vec<Message> = (0..batch_size)
                .map(|i| Message {
                    key: format!("tenant/contact-{}", (b * batch_size + i) % 5000).into_bytes(),
                    value: value.clone(),
                    timestamp_ms: 1,
                })
                .collect();
            let producer = producer.clone();
            in_flight.push_back(tokio::spawn(
                async move { producer.send(TOPIC, batch).await },
            ));
            if in_flight.len() >= in_flight_max
                && let Some(first) = in_flight.pop_front()
            {
                first.await??;
            }
        }
        for send in in_flight {
            send.await??;
        }
        anyhow::Ok(())
    });
    let mut got = 0;
    while got < total {
        if start.elapsed() > Duration::from_secs(120) {
            bail!("only {got} of {total} in 120 s");
        }
        got += consumer
            .poll(10_000, Duration::from_secs(1))
            .await?
            .records
            .len();
    }
    produce.await??;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{total} events end to end in {secs:.2} s ({in_flight_max} sends of {batch_size} in flight): {:.0} events/s",
        total as f64 / secs
    );
    Ok(())
}
