//! `hotline bench raft`: how fast the routing group commits.
//!
//! Starts `--replicas` real routing replicas in this process — each its own redb store
//! (a file in a temporary directory, or the log in memory), its own openraft and
//! its own gRPC server on 127.0.0.1 — bootstraps them into one group, and drives
//! `--writes` commands at the leader from `--clients` concurrent clients, each keeping
//! one write (or one `--batch` of writes) in flight. It reports commits per second,
//! commit latency (p50/p99/p99.9, as a client waits for `write` to return: committed by
//! a majority and applied at the leader) and, beside every figure, each replica's redb
//! commit (fsync) times and how many log entries one commit carried.
//!
//! openraft's own `benchmarks/minimal` is the baseline the issue compares the in-memory
//! figure with; it runs an in-memory log and an in-process network of function calls,
//! so it measures openraft alone, where this measures openraft plus gRPC, postcard and
//! redb. `--network in-process` takes gRPC out: the same replicas, stores and state
//! machine talk through [`Router::direct`], one function call per message, so what is
//! left beside openraft is our store and state machine. The README says how to run the
//! two side by side.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::TryStreamExt;
use hdrhistogram::Histogram;
use hotline_core::ids::{AgentId, QueueId, SiteId, SkillId, TenantId};
use hotline_routing::node::{NodeConfig, RaftBatching, RaftTiming, RoutingNode};
use hotline_routing::state::{
    AgentProfile, Command, Queue, QueueSummary, Response, SkillReady, TenantSpec,
};
use hotline_routing::store::{Durability, FsyncStats, StoreConfig};
use hotline_routing::testing::Router;
use hotline_routing::typ::SiteNode;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// Sites the summary payload's replicas stand for, by replica id.
const SITES: [&str; 5] = ["north", "south", "east", "west", "centre"];

/// The agent the `login` payload logs in.
const BENCH_AGENT: &str = "bench-agent";

/// Queues (and so rows) in one summary: a mid-sized tenant's site.
const SUMMARY_QUEUES: usize = 20;

/// Options of `hotline bench raft`.
#[derive(Debug, Clone, clap::Args)]
pub struct RaftArgs {
    /// Replicas in the group (1, 3 or 5), all in this process.
    #[arg(long, default_value_t = 3)]
    pub replicas: u64,
    /// Where the replicas store: `durable` (a redb file each, fsynced per group commit),
    /// `memory` (the log in memory, no fsync), or `both`, one after the other.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Both)]
    pub durability: DurabilityArg,
    /// Concurrent clients, each with one write (or one batch) in flight at the leader.
    #[arg(long, default_value_t = 256)]
    pub clients: u64,
    /// Writes measured, across all clients.
    #[arg(long, default_value_t = 200_000)]
    pub writes: u64,
    /// Writes a client submits together (`client_write_many`); 1 is one `write` at a time,
    /// what a site does.
    #[arg(long, default_value_t = 1)]
    pub batch: u64,
    /// Writes before the clock starts, so the log, the caches and the connections are warm.
    #[arg(long, default_value_t = 20_000)]
    pub warmup: u64,
    /// What each write carries: `noop` (nothing, the same as openraft's benchmark),
    /// `login` (an agent's login: small, looked up and validated) or `summary` (a site's
    /// live summary of 20 queues, what sites write a few times a second).
    #[arg(long, value_enum, default_value_t = PayloadArg::Noop)]
    pub payload: PayloadArg,
    /// Most log entries the store folds into one redb commit.
    #[arg(long, default_value_t = StoreConfig::default().max_batch)]
    pub max_batch: usize,
    /// How replicas reach one another: `grpc` (each its own server on 127.0.0.1, what a
    /// site runs) or `in-process` (function calls, as openraft's own benchmark).
    #[arg(long, value_enum, default_value_t = NetworkArg::Grpc)]
    pub network: NetworkArg,
    /// Most log entries in one `AppendEntries` to a follower.
    #[arg(long, default_value_t = RaftBatching::default().max_payload_entries)]
    pub max_payload_entries: u64,
    /// Replicate entries once the leader's log accepted them, before they are durable there.
    #[arg(long)]
    pub broadcast_on_append: bool,
    /// Where durable replicas keep their files (a fresh temporary directory inside it);
    /// default: the system's temporary directory. Put it on the disk you mean to measure.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Print one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

/// `--durability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DurabilityArg {
    /// A redb file per replica, fsynced on every group commit.
    Durable,
    /// The log in memory, snapshots in redb's in-memory backend.
    Memory,
    /// Durable, then in memory.
    Both,
}

/// `--network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NetworkArg {
    /// gRPC on loopback, one server per replica.
    Grpc,
    /// `Router::direct`: one function call per message.
    InProcess,
}

/// `--payload`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PayloadArg {
    /// `Command::Noop`.
    Noop,
    /// `Command::PublishSummary` with 20 rows.
    Summary,
    /// `Command::AgentLogin` of a known agent at an active site: a small command whose
    /// apply looks the agent and the site up and validates (a repeat login is accepted).
    Login,
}

/// Runs `hotline bench raft`.
pub fn raft(args: RaftArgs) -> anyhow::Result<()> {
    if !(1..=SITES.len() as u64).contains(&args.replicas) {
        bail!(
            "--replicas {} is not between 1 and {}",
            args.replicas,
            SITES.len()
        );
    }
    if args.clients == 0
        || args.writes == 0
        || args.batch == 0
        || args.max_batch == 0
        || args.max_payload_entries == 0
    {
        bail!(
            "--clients, --writes, --batch, --max-batch and --max-payload-entries must be positive"
        );
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = args.workers {
        builder.worker_threads(workers);
    }
    let runtime = builder
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let modes: &[Durability] = match args.durability {
        DurabilityArg::Durable => &[Durability::Durable],
        DurabilityArg::Memory => &[Durability::InMemory],
        DurabilityArg::Both => &[Durability::Durable, Durability::InMemory],
    };
    let mut runs = Vec::new();
    for &durability in modes {
        let run = runtime.block_on(run(&args, durability))?;
        if !args.json {
            print_run(&args, &run);
        }
        runs.push(run);
    }
    if args.json {
        let report = json!({
            "replicas": args.replicas,
            "clients": args.clients,
            "batch": args.batch,
            "writes": args.writes,
            "payload": payload_name(args.payload),
            "max_batch": args.max_batch,
            "network": network_name(args.network),
            "max_payload_entries": args.max_payload_entries,
            "broadcast_on_append": args.broadcast_on_append,
            "runs": runs.iter().map(Run::to_json).collect::<Vec<_>>(),
        });
        println!("{report}");
    }
    Ok(())
}

/// What one durability mode measured.
struct Run {
    durability: Durability,
    elapsed: Duration,
    writes: u64,
    /// Commit latency as clients saw it, in microseconds.
    latency: Histogram<u64>,
    /// Each replica's store commits, leader first.
    replicas: Vec<ReplicaFsync>,
}

/// One replica's store commits during the measured writes.
struct ReplicaFsync {
    id: u64,
    leader: bool,
    /// Cumulative since the store opened (setup and warm-up included: the meter keeps no
    /// window, and they are a small share of the commits).
    stats: FsyncStats,
    /// Commits during the measured writes.
    commits: u64,
    /// Log entries those commits made durable.
    entries: u64,
}

impl Run {
    fn commits_per_sec(&self) -> f64 {
        self.writes as f64 / self.elapsed.as_secs_f64()
    }

    fn latency_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    fn to_json(&self) -> Value {
        json!({
            "durability": durability_name(self.durability),
            "commits_per_sec": self.commits_per_sec(),
            "elapsed_s": self.elapsed.as_secs_f64(),
            "latency_ms": {
                "p50": self.latency_ms(0.50),
                "p99": self.latency_ms(0.99),
                "p999": self.latency_ms(0.999),
                "max": self.latency.max() as f64 / 1000.0,
            },
            "fsync": self.replicas.iter().map(|r| json!({
                "replica": r.id,
                "role": if r.leader { "leader" } else { "follower" },
                "commits": r.commits,
                "entries": r.entries,
                "entries_per_fsync": r.entries_per_commit(),
                "p50_us": r.stats.p50_us,
                "p99_us": r.stats.p99_us,
                "max_us": r.stats.max_us,
            })).collect::<Vec<_>>(),
        })
    }
}

impl ReplicaFsync {
    fn entries_per_commit(&self) -> f64 {
        self.entries as f64 / self.commits.max(1) as f64
    }
}

fn durability_name(d: Durability) -> &'static str {
    match d {
        Durability::Durable => "durable",
        Durability::InMemory => "memory",
    }
}

fn network_name(n: NetworkArg) -> &'static str {
    match n {
        NetworkArg::Grpc => "grpc",
        NetworkArg::InProcess => "in-process",
    }
}

fn payload_name(p: PayloadArg) -> &'static str {
    match p {
        PayloadArg::Noop => "noop",
        PayloadArg::Summary => "summary",
        PayloadArg::Login => "login",
    }
}

fn print_run(args: &RaftArgs, run: &Run) {
    println!(
        "routing group, {} replicas over {}, {} store, {} clients × batch {}, {} payload, {} entries per append{}",
        args.replicas,
        match args.network {
            NetworkArg::Grpc => "gRPC on loopback",
            NetworkArg::InProcess => "in-process calls",
        },
        durability_name(run.durability),
        args.clients,
        args.batch,
        payload_name(args.payload),
        args.max_payload_entries,
        if args.broadcast_on_append {
            ", broadcast on append"
        } else {
            ""
        },
    );
    println!(
        "  {:>10.0} commits/s  ({} writes in {:.2} s); commit latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        run.commits_per_sec(),
        run.writes,
        run.elapsed.as_secs_f64(),
        run.latency_ms(0.50),
        run.latency_ms(0.99),
        run.latency_ms(0.999),
        run.latency.max() as f64 / 1000.0,
    );
    for r in &run.replicas {
        if run.durability == Durability::InMemory {
            // The log never reaches redb in memory; only snapshots do.
            println!(
                "  replica {} ({:>8}): log in memory (no fsync), {} snapshot writes",
                r.id,
                if r.leader { "leader" } else { "follower" },
                r.commits,
            );
            continue;
        }
        println!(
            "  replica {} ({:>8}): {:>7} store commits, {:>6.1} entries each; commit (fsync) p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            r.id,
            if r.leader { "leader" } else { "follower" },
            r.commits,
            r.entries_per_commit(),
            r.stats.p50_us as f64 / 1000.0,
            r.stats.p99_us as f64 / 1000.0,
            r.stats.max_us as f64 / 1000.0,
        );
    }
}

/// Starts a group, measures it, stops it.
async fn run(args: &RaftArgs, durability: Durability) -> anyhow::Result<Run> {
    let parent = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir(),
    };
    let dir = tempfile::Builder::new()
        .prefix("hotline-bench-raft-")
        .tempdir_in(&parent)
        .with_context(|| format!("making a temporary directory in {}", parent.display()))?;
    let store = StoreConfig {
        durability,
        max_batch: args.max_batch,
        // A fresh file: nothing to verify.
        verify_on_open: false,
        ..match durability {
            Durability::Durable => StoreConfig::default(),
            Durability::InMemory => StoreConfig::in_memory(),
        }
    };
    let nodes = start_group(args, dir.path(), &store).await?;
    let result = measure(args, durability, &nodes).await;
    for node in &nodes {
        node.shutdown().await;
    }
    result
}

async fn start_group(
    args: &RaftArgs,
    dir: &Path,
    store: &StoreConfig,
) -> anyhow::Result<Vec<RoutingNode>> {
    let replicas = args.replicas;
    let router = Router::direct();
    let mut listeners = Vec::new();
    let mut members = BTreeMap::new();
    for id in 1..=replicas {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding a loopback port")?;
        members.insert(
            id,
            SiteNode {
                site: SITES[id as usize - 1].into(),
                rpc_addr: listener.local_addr()?.to_string(),
                witness: false,
            },
        );
        listeners.push((id, listener));
    }
    let mut nodes = Vec::new();
    for (id, listener) in listeners {
        let site = SITES[id as usize - 1];
        let config = NodeConfig {
            id,
            site: site.into(),
            witness: false,
            data_dir: dir.join(site),
            store: store.clone(),
            timing: RaftTiming::default(),
            batching: RaftBatching {
                max_payload_entries: args.max_payload_entries,
                broadcast_on_append: args.broadcast_on_append,
            },
        };
        let node = match args.network {
            NetworkArg::Grpc => RoutingNode::start(config, listener).await,
            NetworkArg::InProcess => RoutingNode::start_in_process(config, listener, &router).await,
        };
        nodes.push(node.with_context(|| format!("starting replica {id}"))?);
    }
    nodes[0].bootstrap(members).await?;
    Ok(nodes)
}

/// Polls until a replica leads, and returns it.
async fn leader(nodes: &[RoutingNode]) -> anyhow::Result<RoutingNode> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(node) = nodes.iter().find(|n| n.status().role == "leader") {
            return Ok(node.clone());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bail!("no routing leader within 10 s")
}

/// The commands that make the summary and login payloads valid: every site, a tenant, its
/// queues, an agent.
fn setup_commands(replicas: u64) -> anyhow::Result<Vec<Command>> {
    let tenant = TenantId::new("bench")?;
    let skills = vec![SkillId::new("billing")?, SkillId::new("sales")?];
    let mut commands = vec![Command::AddTenant(Box::new(TenantSpec {
        id: tenant.clone(),
        name: "Bench".into(),
        provider: None,
        skills,
    }))];
    for i in 0..SUMMARY_QUEUES {
        commands.push(Command::AddQueue(Box::new(Queue::new(
            tenant.clone(),
            QueueId::new(format!("q{i}"))?,
            vec![],
        ))));
    }
    for id in 1..=replicas {
        let site = SITES[id as usize - 1];
        commands.push(Command::AddSite {
            id: SiteId::new(site)?,
            name: site.to_uppercase(),
            node_id: id,
            at_ms: 1,
        });
    }
    commands.push(Command::AddAgent(Box::new(AgentProfile::new(
        AgentId::new(BENCH_AGENT)?,
        tenant,
        vec![],
    ))));
    Ok(commands)
}

/// A site's summary of every bench queue: about 1.6 KB encoded.
fn summary(site: &str) -> anyhow::Result<Command> {
    let tenant = TenantId::new("bench")?;
    let mut queues = Vec::with_capacity(SUMMARY_QUEUES);
    for i in 0..SUMMARY_QUEUES {
        let n = i as u32;
        queues.push(QueueSummary {
            tenant: tenant.clone(),
            queue: QueueId::new(format!("q{i}"))?,
            ready: n % 7,
            ready_by_skill: vec![
                SkillReady {
                    skill: SkillId::new("billing")?,
                    at_least: [9 + n, 7, 5, 2, 1],
                },
                SkillReady {
                    skill: SkillId::new("sales")?,
                    at_least: [4, 4, 3, 1, 0],
                },
            ],
            waiting: n * 3,
            oldest_wait_ms: 12_000 + u64::from(n) * 250,
            expected_wait_ms: 30_000 + u64::from(n) * 1_000,
        });
    }
    Ok(Command::PublishSummary {
        site: SiteId::new(site)?,
        // One stamp for the run: a summary older than the site's last is refused, and
        // concurrent clients' writes reach the log in no particular order.
        at_ms: 1_000,
        queues,
    })
}

async fn measure(
    args: &RaftArgs,
    durability: Durability,
    nodes: &[RoutingNode],
) -> anyhow::Result<Run> {
    let leader = leader(nodes).await?;
    for command in setup_commands(args.replicas)? {
        leader
            .write(command)
            .await
            .context("setting up the group")?;
    }
    let payload = Arc::new(match args.payload {
        PayloadArg::Noop => Command::Noop,
        PayloadArg::Summary => summary(SITES[leader.id() as usize - 1])?,
        PayloadArg::Login => Command::AgentLogin {
            agent: AgentId::new(BENCH_AGENT)?,
            site: SiteId::new(SITES[leader.id() as usize - 1])?,
            at_ms: 1_000,
        },
    });
    let label = format!("warm-up, {}", durability_name(durability));
    drive(args, &leader, &payload, args.warmup, &label).await?;

    let before: Vec<FsyncStats> = nodes.iter().map(RoutingNode::fsync_stats).collect();
    let started = Instant::now();
    let latency = drive(
        args,
        &leader,
        &payload,
        args.writes,
        durability_name(durability),
    )
    .await?;
    let elapsed = started.elapsed();

    // Followers commit what the leader committed a moment later; wait for them so their
    // counts cover the same entries.
    let target = leader.status().last_log_index;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline
        && nodes
            .iter()
            .any(|n| n.status().last_applied < target && n.id() != leader.id())
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let mut replicas: Vec<ReplicaFsync> = nodes
        .iter()
        .zip(before)
        .map(|(node, before)| {
            let stats = node.fsync_stats();
            ReplicaFsync {
                id: node.id(),
                leader: node.id() == leader.id(),
                commits: stats.commits - before.commits,
                entries: stats.entries - before.entries,
                stats,
            }
        })
        .collect();
    replicas.sort_by_key(|r| !r.leader);
    Ok(Run {
        durability,
        elapsed,
        writes: args.writes,
        latency,
        replicas,
    })
}

/// Sends `total` writes from `args.clients` clients and returns their commit latencies
/// in microseconds.
async fn drive(
    args: &RaftArgs,
    leader: &RoutingNode,
    payload: &Arc<Command>,
    total: u64,
    label: &str,
) -> anyhow::Result<Histogram<u64>> {
    let bar = if args.json || total == 0 {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{msg:>16} {bar:40} {pos}/{len} writes  {per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(label.to_owned());
        bar
    };
    let next = Arc::new(AtomicU64::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..args.clients {
        let leader = leader.clone();
        let payload = Arc::clone(payload);
        let next = Arc::clone(&next);
        let bar = bar.clone();
        let batch = args.batch;
        clients.spawn(async move { client(leader, payload, next, total, batch, bar).await });
    }
    let mut latency = new_histogram();
    while let Some(joined) = clients.join_next().await {
        latency.add(joined.context("a client panicked")??)?;
    }
    bar.finish_and_clear();
    Ok(latency)
}

/// One client: takes the next `batch` writes of the `total` until none are left, one
/// request in flight at a time.
async fn client(
    leader: RoutingNode,
    payload: Arc<Command>,
    next: Arc<AtomicU64>,
    total: u64,
    batch: u64,
    bar: ProgressBar,
) -> anyhow::Result<Histogram<u64>> {
    let mut latency = new_histogram();
    loop {
        let first = next.fetch_add(batch, Ordering::Relaxed);
        if first >= total {
            return Ok(latency);
        }
        let n = batch.min(total - first);
        let sent = Instant::now();
        if n == 1 {
            leader.write((*payload).clone()).await?;
        } else {
            let mut replies = leader
                .raft()
                .client_write_many((0..n).map(|_| (*payload).clone()))
                .await
                .context("the leader stopped")?;
            while let Some(reply) = replies.try_next().await.context("the leader stopped")? {
                let reply = reply.map_err(|e| anyhow::anyhow!("write failed: {e}"))?;
                if let Response::Refused(refusal) = reply.response {
                    bail!("write refused: {refusal}");
                }
            }
        }
        let took = sent.elapsed().as_micros() as u64;
        latency.saturating_record_n(took.max(1), n);
        bar.inc(n);
    }
}

/// One microsecond to one minute, three significant digits.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds are constant and valid")
}
