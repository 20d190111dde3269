//! `hotline bench events`: ACD → event log → KPI, end to end, against the embedded log
//! or a Kafka-protocol broker, with the log's bare producer measured in the same run.
//!
//! The real pieces run: a site's ACD actors (1,000 agents × 50 queues, agents answering
//! at once) publish through the [`Publisher`] (direct into the embedded log, or through
//! the durable spool to Kafka); an [`EventConsumer`] reads the topic, decodes and
//! dedupes, and the KPI [`Engine`] applies every event. "Visible" means applied by the
//! engine, so the next snapshot shows it. Latency is an event's time of applying minus
//! its time of production (both wall clock, one machine).
//!
//! Two phases: **throughput** (contacts as fast as the pipeline takes them, at most a
//! window of events published and not yet applied) and **latency** (a steady rate
//! well under saturation, as a live site runs). Then the **baseline**: the log's bare
//! producer — `EventLog::send` for the embedded log, librdkafka's own `FutureProducer`
//! for Kafka — sending as many messages of the same size as fast as it can.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use hotline_acd::agent::{AgentCmd, AgentEndpoint, AgentLink};
use hotline_acd::engine::{Arrival, Offer};
use hotline_acd::ids::IdSource;
use hotline_acd::router::RouterMsg;
use hotline_acd::site::{Site, SiteOptions};
use hotline_acd::workload::mixed_skills;
use hotline_core::event::{ContactEventKind, Event, EventBody, EventSink};
use hotline_core::ids::{ContactId, QueueId};
use hotline_core::time::{Clock, SystemClock};
use hotline_eventlog::embedded::{EmbeddedConfig, EmbeddedLog, FsyncPolicy};
use hotline_eventlog::events::{EventConsumer, EventConsumerConfig};
use hotline_eventlog::kafka::{KafkaConfig, KafkaLog};
use hotline_eventlog::publisher::{Publisher, PublisherConfig};
use hotline_eventlog::{ConsumerConfig, EventLog, Message, StartFrom, TopicSpec};
use hotline_kpi::engine::{Engine, EngineConfig};
use serde_json::json;
use tokio::sync::Mutex;

use crate::cli::Failure;

/// Options of `hotline bench events`.
#[derive(Debug, Clone, clap::Args)]
pub struct EventsArgs {
    /// A Kafka-protocol broker (`host:port`, e.g. from `ops/dev/start-tansu`); the
    /// embedded log in a temporary directory when absent.
    #[arg(long)]
    pub kafka: Option<String>,
    /// Contacts through the ACD in the throughput phase (about ten events each).
    #[arg(long, default_value_t = 100_000)]
    pub contacts: u64,
    /// Most events published and not yet applied by KPI in the throughput phase.
    #[arg(long, default_value_t = 20_000)]
    pub window: u64,
    /// Contacts per second in the latency phase (about ten events each).
    #[arg(long, default_value_t = 10_000)]
    pub latency_rate: u64,
    /// Seconds of the latency phase.
    #[arg(long, default_value_t = 5)]
    pub latency_secs: u64,
    /// Messages the bare producer sends for the baseline.
    #[arg(long, default_value_t = 400_000)]
    pub baseline_messages: u64,
    /// The embedded log's fsync policy: `always`, `never`, or the group-commit interval
    /// in milliseconds (the default, 5, is what `hotline up` uses).
    #[arg(long, default_value = "5")]
    pub fsync: String,
    /// Print one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

fn fsync_policy(s: &str) -> Result<FsyncPolicy, Failure> {
    match s {
        "always" => Ok(FsyncPolicy::Always),
        "never" => Ok(FsyncPolicy::Never),
        ms => ms
            .parse::<u64>()
            .ok()
            .filter(|&ms| ms > 0)
            .map(|ms| FsyncPolicy::Interval(Duration::from_millis(ms)))
            .ok_or_else(|| {
                Failure::Config(format!(
                    "--fsync {s:?}: give always, never, or a group-commit interval in ms (e.g. 5)"
                ))
            }),
    }
}

/// Counts what the ACD published, and feeds the real publisher.
struct Tee {
    publisher: Publisher,
    published: AtomicU64,
    done: AtomicU64,
}

impl EventSink for Tee {
    fn publish(&self, events: &[Event]) {
        self.publisher.publish(events);
        let done = events
            .iter()
            .filter(|e| matches!(&e.body, EventBody::Contact(c) if matches!(c.kind, ContactEventKind::Done { .. })))
            .count() as u64;
        self.published
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        self.done.fetch_add(done, Ordering::Relaxed);
    }
}

/// An agent that answers at once and ends at once.
struct AutoAnswer;

impl AgentEndpoint for AutoAnswer {
    fn offered(&self, me: &AgentLink, offer: &Offer) {
        me.send(AgentCmd::Answer {
            contact: offer.contact,
            accept: true,
        });
        me.send(AgentCmd::End(offer.contact));
    }
}

/// What the KPI side saw.
struct Applied {
    count: AtomicU64,
    /// Latencies (µs) of events produced at or after `since_us`.
    latency: Mutex<Histogram<u64>>,
    since_us: AtomicU64,
}

/// Runs `hotline bench events`.
pub fn events(args: EventsArgs) -> Result<(), Failure> {
    if args.contacts == 0 || args.window == 0 || args.latency_rate == 0 {
        return Err(Failure::Config(
            "--contacts, --window and --latency-rate must be positive".into(),
        ));
    }
    let runtime = crate::cli::runtime()?;
    runtime.block_on(run(args))
}

async fn run(args: EventsArgs) -> Result<(), Failure> {
    let say = |s: String| {
        if !args.json {
            eprintln!("{s}");
        }
    };
    let scratch = tempfile::tempdir().context("temporary directory")?;
    let embedded = EmbeddedConfig {
        fsync: fsync_policy(&args.fsync)?,
        ..EmbeddedConfig::default()
    };
    let (log, kind): (Arc<dyn EventLog>, &str) = match &args.kafka {
        Some(addr) => (
            Arc::new(
                KafkaLog::connect(KafkaConfig {
                    verify_end_offsets: true,
                    ..KafkaConfig::new(addr.clone())
                })
                .await
                .map_err(|e| Failure::Config(format!("--kafka {addr}: {e}")))?,
            ),
            "kafka",
        ),
        None => (
            Arc::new(
                EmbeddedLog::open(scratch.path().join("log"), embedded.clone())
                    .await
                    .context("embedded log")?,
            ),
            "embedded",
        ),
    };
    // A topic of its own per run, so earlier runs against the same broker don't count.
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let topic = format!("hotline.bench.{}", &run_id[..12]);
    log.ensure_topics(&[
        TopicSpec {
            name: topic.clone(),
            partitions: hotline_eventlog::topics::EVENTS_PARTITIONS,
            retention: Some(Duration::from_secs(3600)),
            retention_bytes: None,
        },
        hotline_eventlog::topics::specs()[1].clone(),
    ])
    .await
    .map_err(|e| Failure::Runtime(anyhow::anyhow!("creating topic {topic}: {e}")))?;
    let publisher_config = PublisherConfig {
        topic: topic.clone(),
        ..PublisherConfig::default()
    };
    let publisher = match &args.kafka {
        Some(_) => {
            let spool = EmbeddedLog::open(scratch.path().join("spool"), embedded.clone())
                .await
                .context("spool")?;
            Publisher::spooled(Arc::new(spool), log.clone(), publisher_config)
                .await
                .context("publisher")?
        }
        None => Publisher::direct(log.clone(), publisher_config).context("publisher")?,
    };
    let tee = Arc::new(Tee {
        publisher,
        published: AtomicU64::new(0),
        done: AtomicU64::new(0),
    });

    // The KPI side: consumer → engine.
    let applied = Arc::new(Applied {
        count: AtomicU64::new(0),
        latency: Mutex::new(Histogram::new(3).context("histogram")?),
        since_us: AtomicU64::new(u64::MAX),
    });
    let mut consumer = EventConsumer::open(
        log.as_ref(),
        ConsumerConfig::new(format!("bench-kpi-{run_id}"), &[topic.as_str()])
            .starting(StartFrom::Earliest),
        EventConsumerConfig::default(),
    )
    .await
    .context("consumer")?;
    let kpi_applied = applied.clone();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let kpi = tokio::spawn(async move {
        let mut engine = Engine::new(EngineConfig::default());
        let mut last_commit = Instant::now();
        let mut pending = Vec::new();
        loop {
            if *stop_rx.borrow() {
                break;
            }
            let batch = tokio::select! {
                b = consumer.next_batch(5_000, Duration::from_millis(50)) => b,
                _ = stop_rx.changed() => break,
            };
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "bench consumer");
                    continue;
                }
            };
            let now = SystemClock.now().micros();
            let since = kpi_applied.since_us.load(Ordering::Relaxed);
            let mut h = kpi_applied.latency.lock().await;
            for (pos, event) in &batch {
                engine.apply(event);
                let at = event.at.micros();
                if at >= since {
                    let _ = h.record(now.saturating_sub(at).max(1));
                }
                pending.push(pos.clone());
            }
            drop(h);
            kpi_applied
                .count
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            if last_commit.elapsed() > Duration::from_millis(200) {
                let _ = consumer.start_commit_through(&pending).await;
                pending.clear();
                last_commit = Instant::now();
            }
        }
        engine.stats().applied
    });

    // The ACD.
    let config = mixed_skills(1_000, 50, 7);
    let site = Site::start(
        config.clone(),
        SiteOptions {
            sink: tee.clone(),
            clock: Arc::new(SystemClock),
            ids: IdSource::Random,
            shards: SiteOptions::default_shards(),
        },
    )
    .await
    .context("site")?;
    for a in &config.agents {
        site.login(a.id.clone(), Arc::new(AutoAnswer), true)
            .await
            .context("login")?;
    }
    site.snapshot().await.context("snapshot")?;
    let tenant = config.tenants[0].id.clone();
    let queues: Vec<QueueId> = config.queues.iter().map(|q| q.id.clone()).collect();
    let router = site.router().clone();
    let send = move |n: u64| {
        let q = &queues[(n as usize * 7) % queues.len()];
        let _ = router.cast(RouterMsg::Arrive(
            Arrival::new(
                ContactId::from_u128(u128::from(n)),
                tenant.detached(),
                q.detached(),
                hotline_core::channel::Channel::Voice,
            ),
            None,
        ));
    };
    // Wait for the logins' events to be applied, so both phases start from quiet.
    settle(&tee, &applied, Duration::from_secs(60)).await?;

    // Throughput.
    say(format!(
        "throughput: {} contacts through ACD → {kind} log → KPI …",
        args.contacts
    ));
    let start_applied = applied.count.load(Ordering::Relaxed);
    applied
        .since_us
        .store(SystemClock.now().micros(), Ordering::Relaxed);
    let started = Instant::now();
    for n in 1..=args.contacts {
        // At most 2,000 contacts in the ACD and `window` events between the ACD and KPI.
        while n > tee.done.load(Ordering::Relaxed) + 2_000
            || tee.published.load(Ordering::Relaxed)
                > applied.count.load(Ordering::Relaxed) + args.window
        {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        send(n);
        if n % 256 == 0 {
            tokio::task::yield_now().await;
        }
    }
    while tee.done.load(Ordering::Relaxed) < args.contacts {
        if started.elapsed() > Duration::from_secs(600) {
            return Err(Failure::Runtime(anyhow::anyhow!(
                "the ACD finished only {} of {} contacts in 10 minutes",
                tee.done.load(Ordering::Relaxed),
                args.contacts
            )));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    settle(&tee, &applied, Duration::from_secs(300)).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let through = applied.count.load(Ordering::Relaxed) - start_applied;
    let events_per_sec = through as f64 / elapsed;
    let sat = percentiles(&applied).await;

    // Latency at a steady rate.
    say(format!(
        "latency: {} contacts/s for {} s …",
        args.latency_rate, args.latency_secs
    ));
    applied.latency.lock().await.reset();
    applied
        .since_us
        .store(SystemClock.now().micros(), Ordering::Relaxed);
    let interval = Duration::from_secs_f64(1.0 / args.latency_rate as f64);
    let total = args.latency_rate * args.latency_secs;
    let first = args.contacts + 1;
    let before = applied.count.load(Ordering::Relaxed);
    let steady_start = Instant::now();
    for i in 0..total {
        let due = steady_start + interval * i as u32;
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        send(first + i);
    }
    let steady_secs = steady_start.elapsed().as_secs_f64();
    while tee.done.load(Ordering::Relaxed) < args.contacts + total
        && steady_start.elapsed() < Duration::from_secs(300)
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    settle(&tee, &applied, Duration::from_secs(300)).await?;
    let steady_events = applied.count.load(Ordering::Relaxed) - before;
    let steady = percentiles(&applied).await;
    let _ = stop_tx.send(true);
    let engine_applied = kpi.await.context("kpi task")?;
    site.stop().await;
    let stats = tee.publisher.stats();

    // Baseline: the log's own producer, same message size.
    say(format!(
        "baseline: {} messages through the bare {} producer …",
        args.baseline_messages,
        if kind == "kafka" {
            "librdkafka"
        } else {
            "embedded"
        }
    ));
    let value_len = 150;
    let raw_topic = format!("{topic}.raw");
    log.ensure_topics(&[TopicSpec {
        name: raw_topic.clone(),
        partitions: hotline_eventlog::topics::EVENTS_PARTITIONS,
        retention: Some(Duration::from_secs(3600)),
        retention_bytes: None,
    }])
    .await
    .map_err(|e| Failure::Runtime(anyhow::anyhow!("creating topic {raw_topic}: {e}")))?;
    let baseline = match &args.kafka {
        Some(addr) => raw_kafka(addr, &raw_topic, args.baseline_messages, value_len).await?,
        None => raw_log(log.as_ref(), &raw_topic, args.baseline_messages, value_len).await?,
    };

    let report = json!({
        "log": kind,
        "throughput": {
            "contacts": args.contacts,
            "events": through,
            "events_per_sec": events_per_sec,
            "latency_ms": { "p50": sat.0, "p99": sat.1, "max": sat.2 },
        },
        "steady": {
            "contacts_per_sec": total as f64 / steady_secs,
            "events_per_sec": steady_events as f64 / steady_secs,
            "latency_ms": { "p50": steady.0, "p99": steady.1, "max": steady.2 },
        },
        "baseline_producer_msgs_per_sec": baseline,
        "ratio_to_baseline": events_per_sec / baseline,
        "kpi_engine_applied": engine_applied,
        "publisher": { "accepted": stats.accepted, "forwarded": stats.forwarded, "dropped": stats.dropped, "retries": stats.retries },
    });
    if args.json {
        println!("{report}");
    } else {
        println!("ACD → {kind} event log → KPI engine (1,000 agents × 50 queues)");
        println!(
            "  throughput: {events_per_sec:>10.0} events/s  ({through} events of {} contacts; latency while saturated p50 {:.1} ms, p99 {:.1} ms)",
            args.contacts, sat.0, sat.1
        );
        println!(
            "  steady {:.0} events/s: latency to KPI p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            steady_events as f64 / steady_secs,
            steady.0,
            steady.1,
            steady.2
        );
        println!(
            "  bare {} producer, {value_len}-byte messages: {baseline:>10.0} msgs/s; pipeline ÷ bare producer = {:.2}",
            if kind == "kafka" {
                "librdkafka"
            } else {
                "embedded-log"
            },
            events_per_sec / baseline
        );
    }
    Ok(())
}

/// Waits until KPI has applied everything published.
async fn settle(tee: &Tee, applied: &Applied, limit: Duration) -> Result<(), Failure> {
    let start = Instant::now();
    loop {
        let (p, a) = (
            tee.published.load(Ordering::Relaxed),
            applied.count.load(Ordering::Relaxed),
        );
        if a >= p {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(Failure::Runtime(anyhow::anyhow!(
                "KPI applied {a} of {p} published events within {limit:?}; the pipeline is stuck (is the broker up?)"
            )));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// p50, p99 and max latency in milliseconds.
async fn percentiles(applied: &Applied) -> (f64, f64, f64) {
    let h = applied.latency.lock().await;
    let ms = |v: u64| v as f64 / 1000.0;
    (
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
    )
}

fn messages(n: u64, value_len: usize) -> impl Iterator<Item = Message> {
    (0..n).map(move |i| Message {
        key: format!("bench/{}", i % 10_000).into_bytes(),
        value: vec![b'x'; value_len],
        timestamp_ms: 0,
    })
}

/// The embedded log's producer alone: messages/s.
async fn raw_log(
    log: &dyn EventLog,
    topic: &str,
    n: u64,
    value_len: usize,
) -> Result<f64, Failure> {
    let producer = log.producer().context("producer")?;
    let all: Vec<Message> = messages(n, value_len).collect();
    let start = Instant::now();
    for chunk in all.chunks(5_000) {
        producer
            .send(topic, chunk.to_vec())
            .await
            .context("baseline send")?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// librdkafka's own producer (FutureProducer, acks=all, idempotent, as Hotline's):
/// messages/s, every delivery awaited.
async fn raw_kafka(addr: &str, topic: &str, n: u64, value_len: usize) -> Result<f64, Failure> {
    use rdkafka::ClientConfig;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .create()
        .context("librdkafka producer")?;
    let value = vec![b'x'; value_len];
    let start = Instant::now();
    let mut inflight = Vec::with_capacity(10_000);
    for i in 0..n {
        let key = format!("bench/{}", i % 10_000);
        let record = FutureRecord::to(topic).key(&key).payload(&value);
        match producer.send_result(record) {
            Ok(f) => inflight.push(f),
            Err((e, _)) => {
                return Err(Failure::Runtime(anyhow::anyhow!("librdkafka send: {e}")));
            }
        }
        if inflight.len() >= 10_000 {
            for f in inflight.drain(..) {
                f.await
                    .context("delivery canceled")?
                    .map_err(|(e, _)| anyhow::anyhow!("delivery failed: {e}"))?;
            }
        }
    }
    for f in inflight.drain(..) {
        f.await
            .context("delivery canceled")?
            .map_err(|(e, _)| anyhow::anyhow!("delivery failed: {e}"))?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}
