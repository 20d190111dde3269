//! `hotline bench …`: the benchmarks the README quotes. Each prints a readable report,
//! or one JSON object on its last line with `--json`. Ratios are against baselines run in
//! the same process, because this machine is shared and absolute figures drift.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use hotline_acd::agent::{AgentCmd, AgentEndpoint, AgentLink};
use hotline_acd::config::SiteConfig;
use hotline_acd::engine::{Arrival, Availability, Effect, Engine, Offer};
use hotline_acd::ids::IdSource;
use hotline_acd::naive::NaiveRouter;
use hotline_acd::router::RouterMsg;
use hotline_acd::sim::{self, SimConfig};
use hotline_acd::site::{Site, SiteOptions};
use hotline_acd::workload::mixed_skills;
use hotline_core::agent::AgentStatus;
use hotline_core::event::{ContactEventKind, Event, EventBody, EventSink};
use hotline_core::ids::{ContactId, QueueId, TenantId};
use hotline_core::time::{SystemClock, Timestamp};
use serde_json::json;

use crate::cli::Failure;

/// Options of `hotline bench routing`.
#[derive(Debug, Clone, clap::Args)]
pub struct RoutingArgs {
    /// Agents (mixed skills).
    #[arg(long, default_value_t = 1000)]
    pub agents: usize,
    /// Queues.
    #[arg(long, default_value_t = 50)]
    pub queues: usize,
    /// Contacts pushed through the actors as fast as they go (throughput).
    #[arg(long, default_value_t = 300_000)]
    pub contacts: u64,
    /// Most contacts in flight (sent, not yet done) during the throughput run: the
    /// backlog a busy site carries.
    #[arg(long, default_value_t = 2_000)]
    pub window: u64,
    /// Contacts pushed through before the throughput clock starts, so the heap and the
    /// maps have grown to their working size (a running site is warm).
    #[arg(long, default_value_t = 50_000)]
    pub warmup: u64,
    /// Contacts sent at a steady rate for each latency measurement.
    #[arg(long, default_value_t = 10_000)]
    pub latency_contacts: u64,
    /// The steady rate, contacts per second (paced by sleeping, so the sender does not
    /// take a core from the actors; the rate reached is reported). Above 1,000/s the
    /// runtime's millisecond timer releases contacts in bursts, which then queue behind
    /// each other.
    #[arg(long, default_value_t = 1_000)]
    pub latency_rate: u64,
    /// Decisions in each in-process engine-versus-naive comparison.
    #[arg(long, default_value_t = 20_000)]
    pub direct_decisions: u64,
    /// Waiting contacts in the backlog scenario.
    #[arg(long, default_value_t = 2_000)]
    pub backlog: usize,
    /// Workload seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Agent shards (actors owning agents' sessions).
    #[arg(long, default_value_t = SiteOptions::default_shards())]
    pub shards: usize,
    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Who sends the throughput run's arrivals: a runtime task, as the SIP and HTTP
    /// edges do, or an OS thread outside the runtime.
    #[arg(long, value_enum, default_value_t = Driver::Task)]
    pub driver: Driver,
    /// Print one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

/// Who sends the throughput run's arrivals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Driver {
    /// A task on the runtime, waiting for room in the window without polling.
    Task,
    /// An OS thread, sleeping 50 µs at a time while the window is full.
    Thread,
}

/// Counts offers and completions as the router publishes them, and notes when each
/// offer was published (splitting the offer latency at the router).
struct Counter {
    offered: AtomicU64,
    done: AtomicU64,
    epoch: Instant,
    /// Per contact: when the router published its offer, nanoseconds from `epoch`.
    routed: Arc<Vec<AtomicU64>>,
    /// The task driver waits here for room in the window...
    room: tokio::sync::Notify,
    /// ...when this is set, until `done` reaches `wake_at`.
    waiting: std::sync::atomic::AtomicBool,
    wake_at: AtomicU64,
}

impl Counter {
    /// Waits until `done` is at least `n` (the driver's wait for room: it is woken once
    /// per half window, not polled).
    async fn wait_for(&self, n: u64) {
        while self.done.load(Ordering::SeqCst) < n {
            self.wake_at.store(n, Ordering::SeqCst);
            self.waiting.store(true, Ordering::SeqCst);
            if self.done.load(Ordering::SeqCst) >= n {
                self.waiting.store(false, Ordering::SeqCst);
                break;
            }
            self.room.notified().await;
        }
    }
}

impl EventSink for Counter {
    fn publish(&self, events: &[Event]) {
        for e in events {
            if let EventBody::Contact(c) = &e.body {
                match c.kind {
                    ContactEventKind::Offered { .. } => {
                        self.offered.fetch_add(1, Ordering::Relaxed);
                        let n = (c.contact.as_u128() & 0xffff_ffff) as usize;
                        if let Some(slot) = self.routed.get(n) {
                            slot.store(self.epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
                        }
                    }
                    ContactEventKind::Done { .. } => {
                        let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
                        if self.waiting.load(Ordering::SeqCst)
                            && done >= self.wake_at.load(Ordering::SeqCst)
                            && self.waiting.swap(false, Ordering::SeqCst)
                        {
                            self.room.notify_one();
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// An agent that answers at once and ends at once (zero talk, zero wrap-up), and
/// records each offer's latency from the moment its arrival was sent.
struct AutoAnswer {
    epoch: Instant,
    sent: Arc<Vec<AtomicU64>>,
    latency: Arc<Vec<AtomicU64>>,
}

impl AgentEndpoint for AutoAnswer {
    fn offered(&self, me: &AgentLink, offer: &Offer) {
        let n = (offer.contact.as_u128() & 0xffff_ffff) as usize;
        if let (Some(sent), Some(slot)) = (self.sent.get(n), self.latency.get(n)) {
            let now = self.epoch.elapsed().as_nanos() as u64;
            slot.store(
                now.saturating_sub(sent.load(Ordering::Relaxed)),
                Ordering::Relaxed,
            );
        }
        me.send(AgentCmd::Answer {
            contact: offer.contact,
            accept: true,
        });
        me.send(AgentCmd::End(offer.contact));
    }
}

fn percentile_us(latency: &[AtomicU64], range: std::ops::Range<usize>, q: f64) -> f64 {
    let mut h = Histogram::<u64>::new(3).expect("valid histogram");
    for l in &latency[range] {
        let v = l.load(Ordering::Relaxed);
        if v > 0 {
            let _ = h.record(v);
        }
    }
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Offer latency percentiles, microseconds.
#[derive(Debug, Clone, Copy)]
struct Percentiles {
    p50: f64,
    p99: f64,
    p999: f64,
}

impl Percentiles {
    fn of(latency: &[AtomicU64], range: std::ops::Range<usize>) -> Self {
        Percentiles {
            p50: percentile_us(latency, range.clone(), 0.5),
            p99: percentile_us(latency, range.clone(), 0.99),
            p999: percentile_us(latency, range, 0.999),
        }
    }

    fn json(&self) -> serde_json::Value {
        json!({ "p50": self.p50, "p99": self.p99, "p999": self.p999 })
    }
}

/// Calls `send(i)` for `i` in `0..count`, `interval` apart, from a runtime task (the
/// pacing every latency run shares); returns the rate reached.
async fn pace(
    count: u64,
    interval: Duration,
    mut send: impl FnMut(u64) + Send + 'static,
) -> Result<f64, Failure> {
    let start = Instant::now();
    tokio::spawn(async move {
        for i in 0..count {
            let due = start + interval * i as u32;
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
            send(i);
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("pacer task panicked"))?;
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

/// The floor under the offer latency on this machine: the same pacing and the same two
/// hops an arrival takes (into one task, on to another: the router, then the agent's
/// shard) with nothing to do at either, through bare tokio tasks and channels.
async fn floor_tasks(count: u64, interval: Duration) -> Result<Percentiles, Failure> {
    let n = count as usize;
    let epoch = Instant::now();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let latency: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let (first_tx, mut first_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let (second_tx, mut second_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    tokio::spawn(async move {
        while let Some(i) = first_rx.recv().await {
            let _ = second_tx.send(i);
        }
    });
    let (l, s) = (latency.clone(), sent.clone());
    let last = tokio::spawn(async move {
        while let Some(i) = second_rx.recv().await {
            let now = epoch.elapsed().as_nanos() as u64;
            l[i].store(
                now.saturating_sub(s[i].load(Ordering::Relaxed)),
                Ordering::Relaxed,
            );
        }
    });
    let s = sent.clone();
    pace(count, interval, move |i| {
        s[i as usize].store(epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let _ = first_tx.send(i as usize);
    })
    .await?;
    last.await
        .map_err(|_| anyhow::anyhow!("floor task panicked"))?;
    Ok(Percentiles::of(&latency, 0..n))
}

/// One hop of the actor floor: forwards to the next hop, or records the latency.
enum Hop {
    Forward(ractor::ActorRef<usize>),
    Record {
        epoch: Instant,
        sent: Arc<Vec<AtomicU64>>,
        latency: Arc<Vec<AtomicU64>>,
        done: Arc<AtomicU64>,
    },
}

/// The actor floor's hop actor (its state says where a message goes next).
struct HopActor;

impl ractor::Actor for HopActor {
    type Msg = usize;
    type State = Hop;
    type Arguments = Hop;

    async fn pre_start(
        &self,
        _myself: ractor::ActorRef<usize>,
        hop: Hop,
    ) -> Result<Hop, ractor::ActorProcessingErr> {
        Ok(hop)
    }

    async fn handle(
        &self,
        _myself: ractor::ActorRef<usize>,
        i: usize,
        hop: &mut Hop,
    ) -> Result<(), ractor::ActorProcessingErr> {
        match hop {
            Hop::Forward(next) => {
                let _ = next.cast(i);
            }
            Hop::Record {
                epoch,
                sent,
                latency,
                done,
            } => {
                let now = epoch.elapsed().as_nanos() as u64;
                latency[i].store(
                    now.saturating_sub(sent[i].load(Ordering::Relaxed)),
                    Ordering::Relaxed,
                );
                done.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

/// The same floor through two ractor actors (the framework the ACD's actors run on).
async fn floor_actors(count: u64, interval: Duration) -> Result<Percentiles, Failure> {
    let n = count as usize;
    let epoch = Instant::now();
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let latency: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicU64::new(0));
    let record = Hop::Record {
        epoch,
        sent: sent.clone(),
        latency: latency.clone(),
        done: done.clone(),
    };
    let (second, _) = ractor::Actor::spawn(None, HopActor, record)
        .await
        .context("floor actor")?;
    let (first, _) = ractor::Actor::spawn(None, HopActor, Hop::Forward(second.clone()))
        .await
        .context("floor actor")?;
    let (s, to) = (sent.clone(), first.clone());
    pace(count, interval, move |i| {
        s[i as usize].store(epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let _ = to.cast(i as usize);
    })
    .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.load(Ordering::Relaxed) < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    first.stop(None);
    second.stop(None);
    Ok(Percentiles::of(&latency, 0..n))
}

/// Runs `hotline bench routing`.
pub fn routing(args: RoutingArgs) -> Result<(), Failure> {
    if args.agents == 0 || args.queues == 0 || args.contacts == 0 || args.latency_rate == 0 {
        return Err(Failure::Config(
            "--agents, --queues, --contacts and --latency-rate must be positive".into(),
        ));
    }
    let config = mixed_skills(args.agents, args.queues, args.seed);
    let say = |s: String| {
        if !args.json {
            eprintln!("{s}");
        }
    };

    say(format!(
        "in-process decisions, {} agents × {} queues …",
        args.agents, args.queues
    ));
    let idle_engine = direct_idle_engine(&config, args.direct_decisions)?;
    let idle_naive = direct_idle_naive(&config, args.direct_decisions);
    let backlog_engine = direct_backlog_engine(&config, args.direct_decisions, args.backlog)?;
    let backlog_naive = direct_backlog_naive(&config, args.direct_decisions, args.backlog);

    let interval = Duration::from_secs_f64(1.0 / args.latency_rate as f64);
    let paced_engine = direct_paced_engine(&config, args.latency_contacts, interval)?;

    say("through the actors …".into());
    let runtime = if std::env::var_os("HOTLINE_BENCH_CURRENT_THREAD").is_some() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if let Some(w) = args.workers {
            b.worker_threads(w.max(1));
        }
        b.enable_all().build()
    }
    .context("runtime")?;
    let actors = runtime.block_on(through_actors(&config, &args))?;
    let throughput = actors.decisions_per_sec;
    let report = json!({
        "agents": args.agents,
        "queues": args.queues,
        "actors": {
            "decisions_per_sec": throughput,
            "contacts": args.contacts,
            "window": args.window,
            "full_speed_offer_latency_us": { "p50": actors.saturated_p50, "p99": actors.saturated_p99 },
            "steady_rate_per_sec": actors.achieved_rate,
            "offer_latency_us": actors.from_task.json(),
            "engine_decision_at_steady_rate_us": paced_engine.json(),
            "offer_latency_split_us": { "to_router": actors.to_router.json(), "router_to_shard": actors.to_shard.json() },
            "floor_latency_us": { "tasks": actors.floor_tasks.json(), "actors": actors.floor_actors.json() },
            "offer_latency_from_outside_thread_us": { "p50": actors.thread_p50, "p99": actors.thread_p99 },
        },
        "in_process": {
            "idle_floor": { "engine_decisions_per_sec": idle_engine, "naive_decisions_per_sec": idle_naive, "ratio": idle_engine / idle_naive },
            "backlog": { "waiting": args.backlog, "engine_decisions_per_sec": backlog_engine, "naive_decisions_per_sec": backlog_naive, "ratio": backlog_engine / backlog_naive },
        },
        "actors_vs_naive": {
            "idle_floor": throughput / idle_naive,
            "backlog": throughput / backlog_naive,
        },
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "Routing, {} agents × {} queues with mixed skills",
            args.agents, args.queues
        );
        println!("  through the actors (router + agent shards, events published):");
        println!(
            "    {:>12.0} decisions/s  ({} contacts, offered, answered and ended)",
            throughput, args.contacts
        );
        println!(
            "    offer latency at {:.0} contacts/s sent from a runtime task: p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs",
            actors.achieved_rate, actors.from_task.p50, actors.from_task.p99, actors.from_task.p999
        );
        println!(
            "      of which sent → router published the offer: p50 {:.1} µs, p99 {:.1} µs; → the agent's shard presented it: p50 {:.1} µs, p99 {:.1} µs",
            actors.to_router.p50, actors.to_router.p99, actors.to_shard.p50, actors.to_shard.p99
        );
        println!(
            "    the engine alone at the same rate, arrival to offer on one thread: p50 {:.1} µs, p99 {:.1} µs",
            paced_engine.p50, paced_engine.p99
        );
        println!(
            "    floor at the same rate, two hops with nothing to do: tokio tasks p50 {:.1} µs, p99 {:.1} µs; ractor actors p50 {:.1} µs, p99 {:.1} µs",
            actors.floor_tasks.p50,
            actors.floor_tasks.p99,
            actors.floor_actors.p50,
            actors.floor_actors.p99
        );
        println!(
            "    offer latency at the same rate sent from an outside thread: p50 {:.1} µs, p99 {:.1} µs",
            actors.thread_p50, actors.thread_p99
        );
        println!(
            "    (at full speed with {} in flight, queueing included: p50 {:.0} µs, p99 {:.0} µs)",
            args.window, actors.saturated_p50, actors.saturated_p99
        );
        println!("  in process, same workload, decisions/s:");
        println!(
            "    idle floor (contact picks agent):  engine {idle_engine:>10.0}  naive {idle_naive:>10.0}  ratio {:.1}×",
            idle_engine / idle_naive
        );
        println!(
            "    backlog of {} (agent picks contact): engine {backlog_engine:>10.0}  naive {backlog_naive:>10.0}  ratio {:.1}×",
            args.backlog,
            backlog_engine / backlog_naive
        );
        println!(
            "  actors vs naive: {:.1}× (idle floor), {:.1}× (backlog)",
            throughput / idle_naive,
            throughput / backlog_naive
        );
    }
    Ok(())
}

struct ActorFigures {
    achieved_rate: f64,
    decisions_per_sec: f64,
    saturated_p50: f64,
    saturated_p99: f64,
    /// Offer latency at the steady rate, sent from a runtime task.
    from_task: Percentiles,
    /// Of that, from sending to the router publishing the offer...
    to_router: Percentiles,
    /// ...and from there to the agent's shard presenting it.
    to_shard: Percentiles,
    /// Two hops through bare tokio tasks at the same rate.
    floor_tasks: Percentiles,
    /// Two hops through bare ractor actors at the same rate.
    floor_actors: Percentiles,
    thread_p50: f64,
    thread_p99: f64,
}

async fn through_actors(config: &SiteConfig, args: &RoutingArgs) -> Result<ActorFigures, Failure> {
    let total = (args.warmup + args.contacts + 2 * args.latency_contacts) as usize + 1;
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let latency: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let epoch = Instant::now();
    let routed: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let counter = Arc::new(Counter {
        offered: AtomicU64::new(0),
        done: AtomicU64::new(0),
        epoch,
        routed: routed.clone(),
        room: tokio::sync::Notify::new(),
        waiting: std::sync::atomic::AtomicBool::new(false),
        wake_at: AtomicU64::new(0),
    });
    let site = Site::start(
        config.clone(),
        SiteOptions {
            sink: counter.clone(),
            clock: Arc::new(SystemClock),
            ids: IdSource::Random,
            shards: args.shards,
        },
    )
    .await
    .context("site")?;
    for a in &config.agents {
        let endpoint = Arc::new(AutoAnswer {
            epoch,
            sent: sent.clone(),
            latency: latency.clone(),
        });
        site.login(a.id.clone(), endpoint, true)
            .await
            .context("login")?;
    }
    // Let every agent's ready reach the router.
    site.snapshot().await.context("snapshot")?;
    let tenant = config.tenants[0].id.clone();
    let queues: Vec<QueueId> = config.queues.iter().map(|q| q.id.clone()).collect();
    let router = site.router().clone();
    let sent_at = sent.clone();
    let send = move |n: u64, q: &QueueId| {
        sent[n as usize].store(epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
        // Fresh ids, as an edge parsing a request would make them.
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

    // Throughput: as fast as the actors go, with at most `window` contacts in flight;
    // decisions/s until the last contact is done.
    let (contacts, window) = (args.warmup + args.contacts, args.window.max(1));
    let (sender_counter, sender_send, sender_queues) =
        (counter.clone(), send.clone(), queues.clone());
    let sender = match args.driver {
        Driver::Thread => {
            let sender = std::thread::spawn(move || {
                for n in 1..=contacts {
                    while n > sender_counter.done.load(Ordering::Relaxed) + window {
                        // Sleep rather than spin: on two cores a spinning sender steals
                        // the actors' CPU.
                        std::thread::sleep(Duration::from_micros(50));
                    }
                    sender_send(n, &sender_queues[(n as usize * 7) % sender_queues.len()]);
                }
            });
            tokio::task::spawn_blocking(move || sender.join().is_ok())
        }
        Driver::Task => tokio::spawn(async move {
            for n in 1..=contacts {
                if n > sender_counter.done.load(Ordering::Relaxed) + window {
                    // The window is full: wait for half of it to drain, so the driver
                    // is woken once per half window rather than once per contact.
                    sender_counter.wait_for(n - window / 2).await;
                }
                sender_send(n, &sender_queues[(n as usize * 7) % sender_queues.len()]);
                if n % 64 == 0 {
                    // Let the router start on what it was sent (from this worker's
                    // LIFO slot, which the other worker cannot steal).
                    tokio::task::yield_now().await;
                }
            }
            true
        }),
    };
    wait_done(&counter, args.warmup).await;
    let started = Instant::now();
    wait_done(&counter, contacts).await;
    let elapsed = started.elapsed().as_secs_f64();
    if !sender.await.unwrap_or(false) {
        return Err(anyhow::anyhow!("sender panicked").into());
    }
    let decisions_per_sec = args.contacts as f64 / elapsed;
    let saturated = args.warmup as usize + 1..contacts as usize + 1;
    let saturated_p50 = percentile_us(&latency, saturated.clone(), 0.5);
    let saturated_p99 = percentile_us(&latency, saturated, 0.99);

    // Latency, twice at the same steady rate: sent from a tokio task (how the SIP and
    // HTTP edges hand contacts to the router: already on a runtime worker), and from a
    // separate OS thread (every arrival must first wake a parked worker).
    let interval = Duration::from_secs_f64(1.0 / args.latency_rate as f64);
    let first = contacts + 1;
    let mid = contacts + args.latency_contacts;
    let task_send = send.clone();
    let task_queues = queues.clone();
    let achieved_rate = pace(args.latency_contacts, interval, move |i| {
        let n = first + i;
        task_send(n, &task_queues[(n as usize * 7) % task_queues.len()]);
    })
    .await?;
    wait_done(&counter, mid).await;
    let from_task = first as usize..mid as usize + 1;
    let (to_router, to_shard) = split(&sent_at, &routed, &latency, from_task.clone());

    // The floor under that figure, in the same minutes: the same pacing and two hops,
    // with nothing to do at either.
    let floor_tasks = floor_tasks(args.latency_contacts, interval).await?;
    let floor_actors = floor_actors(args.latency_contacts, interval).await?;

    let (first_t, last) = (mid + 1, mid + args.latency_contacts);
    let pacer = std::thread::spawn(move || {
        let start = Instant::now();
        for (i, n) in (first_t..=last).enumerate() {
            let due = start + interval * i as u32;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            send(n, &queues[(n as usize * 7) % queues.len()]);
        }
    });
    pacer
        .join()
        .map_err(|_| anyhow::anyhow!("pacer thread panicked"))?;
    wait_done(&counter, last).await;
    let from_thread = first_t as usize..last as usize + 1;
    let figures = ActorFigures {
        achieved_rate,
        decisions_per_sec,
        saturated_p50,
        saturated_p99,
        from_task: Percentiles::of(&latency, from_task),
        to_router,
        to_shard,
        floor_tasks,
        floor_actors,
        thread_p50: percentile_us(&latency, from_thread.clone(), 0.5),
        thread_p99: percentile_us(&latency, from_thread, 0.99),
    };
    site.stop().await;
    Ok(figures)
}

/// The offer latency split at the router: sent → offer published, published → offered.
/// `offered` holds latencies from sending, the others times from the epoch.
fn split(
    sent: &[AtomicU64],
    routed: &[AtomicU64],
    offered: &[AtomicU64],
    range: std::ops::Range<usize>,
) -> (Percentiles, Percentiles) {
    let load = |v: &[AtomicU64], i: usize| v[i].load(Ordering::Relaxed);
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for i in range {
        let (s, r, l) = (load(sent, i), load(routed, i), load(offered, i));
        if s > 0 && r >= s && l > 0 {
            first.push(AtomicU64::new((r - s).max(1)));
            second.push(AtomicU64::new((s + l).saturating_sub(r).max(1)));
        }
    }
    (
        Percentiles::of(&first, 0..first.len()),
        Percentiles::of(&second, 0..second.len()),
    )
}

async fn wait_done(counter: &Counter, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while counter.done.load(Ordering::Relaxed) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn all_ready(engine: &mut Engine, n: usize) {
    for a in 0..n as u32 {
        engine.set_availability(
            Timestamp(1),
            a,
            Availability {
                logged_in: true,
                ready: true,
                status: AgentStatus::Ready,
            },
        );
    }
}

fn arrival(n: u64, tenant: &TenantId, queue: &QueueId) -> Arrival {
    Arrival::new(
        ContactId::from_u128(u128::from(n)),
        tenant.clone(),
        queue.clone(),
        hotline_core::channel::Channel::Voice,
    )
}

/// Engine, idle floor: half the agents busy; each decision is a contact arriving and
/// picking an agent, who then finishes at once.
fn direct_idle_engine(config: &SiteConfig, decisions: u64) -> Result<f64, Failure> {
    let mut e = Engine::new(config, IdSource::sequential(0)).map_err(|e| anyhow::anyhow!(e))?;
    all_ready(&mut e, config.agents.len());
    let tenant = config.tenants[0].id.clone();
    let queues: Vec<QueueId> = config.queues.iter().map(|q| q.id.clone()).collect();
    let (mut fx, mut ev) = (Vec::new(), Vec::new());
    let mut n = 0;
    for i in 0..config.agents.len() / 2 {
        n += 1;
        e.arrive(Timestamp(2), arrival(n, &tenant, &queues[i % queues.len()]))
            .map_err(|e| anyhow::anyhow!(e))?;
    }
    e.take_output(&mut fx, &mut ev);
    for f in fx.drain(..) {
        if let Effect::Offer(o) = f {
            e.accepted(Timestamp(2), o.contact, o.agent_ix)
                .map_err(|e| anyhow::anyhow!(e))?;
        }
    }
    ev.clear();
    let start = Instant::now();
    for i in 0..decisions {
        n += 1;
        let now = Timestamp(3 + i);
        e.arrive(
            now,
            arrival(n, &tenant, &queues[(i as usize * 7) % queues.len()]),
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        e.take_output(&mut fx, &mut ev);
        for f in fx.drain(..) {
            if let Effect::Offer(o) = f {
                e.accepted(now, o.contact, o.agent_ix)
                    .map_err(|e| anyhow::anyhow!(e))?;
                e.ended(now, o.contact, o.agent_ix)
                    .map_err(|e| anyhow::anyhow!(e))?;
                e.wrap_up_done(now, o.contact, o.agent_ix)
                    .map_err(|e| anyhow::anyhow!(e))?;
            }
        }
        e.take_output(&mut fx, &mut ev);
        fx.clear();
        ev.clear();
    }
    Ok(decisions as f64 / start.elapsed().as_secs_f64())
}

/// The engine alone at the latency run's pace (sleeping between contacts, so its
/// caches go as cold as the actors' do): how long each decision takes, from the arrival
/// to the offer, on one thread.
fn direct_paced_engine(
    config: &SiteConfig,
    count: u64,
    interval: Duration,
) -> Result<Percentiles, Failure> {
    let mut e = Engine::new(config, IdSource::sequential(0)).map_err(|e| anyhow::anyhow!(e))?;
    all_ready(&mut e, config.agents.len());
    let tenant = config.tenants[0].id.clone();
    let queues: Vec<QueueId> = config.queues.iter().map(|q| q.id.clone()).collect();
    let (mut fx, mut ev) = (Vec::new(), Vec::new());
    let took: Vec<AtomicU64> = (0..count).map(|_| AtomicU64::new(0)).collect();
    let start = Instant::now();
    for i in 0..count {
        let due = start + interval * i as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let at = Timestamp(3 + i);
        let t0 = Instant::now();
        e.arrive(
            at,
            arrival(i + 1, &tenant, &queues[(i as usize * 7) % queues.len()]),
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        e.take_output(&mut fx, &mut ev);
        took[i as usize].store(t0.elapsed().as_nanos().max(1) as u64, Ordering::Relaxed);
        for f in fx.drain(..) {
            if let Effect::Offer(o) = f {
                e.accepted(at, o.contact, o.agent_ix)
                    .map_err(|e| anyhow::anyhow!(e))?;
                e.ended(at, o.contact, o.agent_ix)
                    .map_err(|e| anyhow::anyhow!(e))?;
                e.wrap_up_done(at, o.contact, o.agent_ix)
                    .map_err(|e| anyhow::anyhow!(e))?;
            }
        }
        e.take_output(&mut fx, &mut ev);
        fx.clear();
        ev.clear();
    }
    Ok(Percentiles::of(&took, 0..count as usize))
}

fn direct_idle_naive(config: &SiteConfig, decisions: u64) -> f64 {
    let mut r = NaiveRouter::new(config);
    let q = config.queues.len();
    for i in 0..config.agents.len() / 2 {
        r.arrive(i % q);
    }
    let start = Instant::now();
    for i in 0..decisions {
        let queue = (i as usize * 7) % q;
        if let Some(a) = r.arrive(queue) {
            r.release(a, queue, i);
        }
    }
    decisions as f64 / start.elapsed().as_secs_f64()
}

/// Engine, backlog: every agent busy and `backlog` contacts waiting; each decision is an
/// agent finishing and picking the best waiting contact, while a new one arrives.
fn direct_backlog_engine(
    config: &SiteConfig,
    decisions: u64,
    backlog: usize,
) -> Result<f64, Failure> {
    let mut e = Engine::new(config, IdSource::sequential(0)).map_err(|e| anyhow::anyhow!(e))?;
    all_ready(&mut e, config.agents.len());
    let tenant = config.tenants[0].id.clone();
    let queues: Vec<QueueId> = config.queues.iter().map(|q| q.id.clone()).collect();
    let mut fx = Vec::new();
    let mut busy: Vec<(ContactId, u32)> = Vec::new();
    let mut n = 0u64;
    let mut now = Timestamp(2);
    while busy.len() < config.agents.len() || e.contact_count() < config.agents.len() + backlog {
        n += 1;
        let queue = &queues[(n as usize * 7) % queues.len()];
        arrive_and_answer(&mut e, now, arrival(n, &tenant, queue), &mut busy, &mut fx)?;
        if n > 100 * (config.agents.len() + backlog) as u64 {
            break;
        }
    }
    let start = Instant::now();
    for i in 0..decisions as usize {
        now = Timestamp(now.0 + 1);
        let k = (i * 7919) % busy.len();
        let (c, a) = busy.swap_remove(k);
        e.ended(now, c, a).map_err(|e| anyhow::anyhow!(e))?;
        e.wrap_up_done(now, c, a).map_err(|e| anyhow::anyhow!(e))?;
        n += 1;
        let queue = &queues[(n as usize * 7) % queues.len()];
        arrive_and_answer(&mut e, now, arrival(n, &tenant, queue), &mut busy, &mut fx)?;
    }
    Ok(decisions as f64 / start.elapsed().as_secs_f64())
}

/// A contact arrives; if an agent is offered it, the agent answers and is busy with it.
fn arrive_and_answer(
    e: &mut Engine,
    now: Timestamp,
    a: Arrival,
    busy: &mut Vec<(ContactId, u32)>,
    effects: &mut Vec<Effect>,
) -> Result<(), Failure> {
    e.arrive(now, a).map_err(|e| anyhow::anyhow!(e))?;
    e.take_effects(effects);
    for f in effects.drain(..) {
        if let Effect::Offer(o) = f {
            e.accepted(now, o.contact, o.agent_ix)
                .map_err(|e| anyhow::anyhow!(e))?;
            busy.push((o.contact, o.agent_ix));
        }
    }
    e.clear_events();
    Ok(())
}

fn direct_backlog_naive(config: &SiteConfig, decisions: u64, backlog: usize) -> f64 {
    let mut r = NaiveRouter::new(config);
    let q = config.queues.len();
    let mut busy: Vec<(usize, usize)> = Vec::new();
    let mut n = 0usize;
    while busy.len() < config.agents.len() || r.waiting() < backlog {
        n += 1;
        let queue = (n * 7) % q;
        if let Some(a) = r.arrive(queue) {
            busy.push((a, queue));
        }
        if n > 100 * (config.agents.len() + backlog) {
            break;
        }
    }
    let start = Instant::now();
    for t in 0..decisions {
        let k = (t as usize * 7919) % busy.len();
        let (a, queue) = busy.swap_remove(k);
        if let Some(next) = r.release(a, queue, t) {
            busy.push((a, next));
        }
        n += 1;
        let queue = (n * 7) % q;
        if let Some(a) = r.arrive(queue) {
            busy.push((a, queue));
        }
    }
    decisions as f64 / start.elapsed().as_secs_f64()
}

/// Options of `hotline bench sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimBenchArgs {
    /// Agents.
    #[arg(long, default_value_t = 100)]
    pub agents: u32,
    /// Simulated hours (at 95% occupancy, AHT 180 s).
    #[arg(long, default_value_t = 1000.0)]
    pub hours: f64,
    /// Print one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

/// Runs `hotline bench sim`.
pub fn sim(args: SimBenchArgs) -> Result<(), Failure> {
    if args.agents == 0 || args.hours.is_nan() || args.hours <= 0.0 {
        return Err(Failure::Config(
            "--agents and --hours must be positive".into(),
        ));
    }
    let per_hour = 0.95 * f64::from(args.agents) / 180.0 * 3600.0;
    let cfg = SimConfig::single_queue(
        args.agents,
        per_hour,
        180.0,
        Some(300.0),
        args.hours,
        20.0,
        1,
    );
    let start = Instant::now();
    let r = sim::run(&cfg, |_| {}).context("simulation")?;
    let wall = start.elapsed().as_secs_f64();
    let per_minute = r.contacts_simulated as f64 / wall * 60.0;
    if args.json {
        println!(
            "{}",
            json!({ "contacts_simulated": r.contacts_simulated, "wall_secs": wall, "contacts_per_minute": per_minute })
        );
    } else {
        println!(
            "Simulator: {} contacts ({} agents, {} h at 95% load) in {:.2} s: {:.2} M contacts per minute of wall time",
            r.contacts_simulated,
            args.agents,
            args.hours,
            wall,
            per_minute / 1e6
        );
    }
    Ok(())
}
