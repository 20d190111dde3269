//! A one-replica Raft group on the durable routing store: commands commit through openraft,
//! a snapshot is taken, and after a shutdown the reopened store brings the state back.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use hotline_routing::state::{Command, Response, RoutingState};
use hotline_routing::store::{
    self, FsyncMeter, StateHandle, StateMachineStore, StoreClosed, StoreConfig,
};
use hotline_routing::typ::{SiteNode, TypeConfig};
use openraft::error::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::async_runtime::watch::WatchReceiver;
use openraft::{AnyError, Config, SnapshotPolicy};

/// A lone replica never calls its peers; if it did, they would be unreachable.
struct NoPeers;

impl RaftNetworkFactory<TypeConfig> for NoPeers {
    type Network = NoPeers;

    async fn new_client(&mut self, _target: u64, _node: &SiteNode) -> Self::Network {
        NoPeers
    }
}

fn unreachable() -> RPCError<TypeConfig> {
    RPCError::Unreachable(Unreachable::new(&AnyError::error(
        "a lone replica has no peers",
    )))
}

impl RaftNetworkV2<TypeConfig> for NoPeers {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        Err(unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        Err(unreachable())
    }

    async fn full_snapshot(
        &mut self,
        _vote: openraft::type_config::alias::VoteOf<TypeConfig>,
        _snapshot: openraft::type_config::alias::SnapshotOf<TypeConfig, Vec<u8>>,
        _cancel: impl std::future::Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        Err(StreamingError::Unreachable(Unreachable::new(
            &AnyError::error("a lone replica has no peers"),
        )))
    }
}

/// openraft 0.10's `Raft` names its state machine; `typ::Raft` leaves it at `()`.
type Raft = openraft::Raft<TypeConfig, StateMachineStore>;

const WAIT: Option<Duration> = Some(Duration::from_secs(20));

/// A running replica and the handles kept before its store went to openraft.
struct Replica {
    raft: Raft,
    state: StateHandle,
    closed: StoreClosed,
    fsync: FsyncMeter,
}

async fn start(path: &Path) -> Result<Replica> {
    let config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        snapshot_policy: SnapshotPolicy::Never,
        max_in_snapshot_log_to_keep: 10,
        ..Config::default()
    }
    .validate()?;
    let (log, sm) = store::open(path, &StoreConfig::default())?;
    let state = sm.state_handle();
    let closed = log.closed();
    let fsync = log.fsync_meter();
    let raft = Raft::new(1, Arc::new(config), NoPeers, log, sm).await?;
    Ok(Replica {
        raft,
        state,
        closed,
        fsync,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lone_replica_commits_snapshots_and_recovers_its_state_after_a_restart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("routing.redb");
    let writes = 2_000u64;

    let Replica {
        raft,
        state,
        closed,
        fsync,
    } = start(&path).await?;
    let node = SiteNode {
        site: "north".into(),
        rpc_addr: "127.0.0.1:0".into(),
        witness: false,
    };
    raft.initialize(BTreeMap::from([(1, node)])).await?;
    raft.wait(WAIT).current_leader(1, "elected").await?;

    // Many clients at once, so the leader's appends pile up behind each commit.
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..writes {
        let raft = raft.clone();
        clients.spawn(async move { raft.client_write(Command::Noop).await });
    }
    while let Some(written) = clients.join_next().await {
        assert_eq!(written??.data, Response::Applied);
    }
    let took = started.elapsed();
    let metrics = raft.metrics().borrow_watched().clone();
    let last = metrics.last_applied.expect("applied");
    println!(
        "{writes} client writes in {took:.2?} ({:.0}/s); redb commits: {:?}",
        writes as f64 / took.as_secs_f64(),
        fsync.stats(),
    );

    raft.trigger().snapshot().await?;
    raft.wait(WAIT).snapshot(last, "snapshot taken").await?;
    // A few more after the snapshot, which the restart must re-apply from the log.
    for _ in 0..5 {
        raft.client_write(Command::Noop).await?;
    }
    let before = state.read(RoutingState::clone);
    let applied_before = raft.metrics().borrow_watched().last_applied;
    raft.shutdown().await?;
    drop(raft);
    tokio::time::timeout(Duration::from_secs(5), closed.wait()).await?;

    let Replica { raft, state, .. } = start(&path).await?;
    let applied_index = applied_before.map(|log_id| log_id.index);
    raft.wait(WAIT)
        .applied_index_at_least(applied_index, "re-applied")
        .await?;
    assert_eq!(raft.metrics().borrow_watched().snapshot, Some(last));
    assert_eq!(state.read(RoutingState::clone), before);
    raft.shutdown().await?;
    Ok(())
}

/// Client writes through openraft on one durable replica: what the store leaves of its speed
/// once Raft's own work is added. Timing-sensitive, so ignored by default; run it alone with
/// `cargo test --release -p hotline-routing --test store_raft -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "timing-sensitive: run alone, with --release"]
async fn lone_replica_makes_fifty_thousand_client_writes_a_second_durable() -> Result<()> {
    const CLIENTS: u64 = 256;
    const WRITES_PER_CLIENT: u64 = 400;
    let dir = tempfile::tempdir()?;
    let Replica { raft, fsync, .. } = start(&dir.path().join("routing.redb")).await?;
    let node = SiteNode::default();
    raft.initialize(BTreeMap::from([(1, node)])).await?;
    raft.wait(WAIT).current_leader(1, "elected").await?;

    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let raft = raft.clone();
        clients.spawn(async move {
            let mut latency = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
            for _ in 0..WRITES_PER_CLIENT {
                let sent = Instant::now();
                raft.client_write(Command::Noop).await?;
                let micros = u64::try_from(sent.elapsed().as_micros())?;
                latency.saturating_record(micros.max(1));
            }
            anyhow::Ok(latency)
        });
    }
    let mut latency = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    while let Some(client) = clients.join_next().await {
        latency.add(client??)?;
    }
    let took = started.elapsed();
    let writes = CLIENTS * WRITES_PER_CLIENT;
    let rate = writes as f64 / took.as_secs_f64();
    let p99 = latency.value_at_quantile(0.99);
    println!(
        "{CLIENTS} clients, {writes} writes in {took:.2?}: {rate:.0}/s; write p50 {} µs, p99 {p99} µs, \
         max {} µs; store: {:?}",
        latency.value_at_quantile(0.50),
        latency.max(),
        fsync.stats(),
    );
    raft.shutdown().await?;
    assert!(rate >= 50_000.0, "{rate:.0} writes/s");
    assert!(p99 <= 10_000, "p99 {p99} µs");
    Ok(())
}
