//! One routing replica: its store, its Raft, and the gRPC server other replicas and
//! `hotline ops` reach.
//!
//! [`RoutingNode::start`] opens the redb store, starts openraft and serves the `Raft` and
//! `RoutingAdmin` gRPC services on a bound listener (so tests bind port 0). Writes go
//! through [`RoutingNode::write`] from any replica: a follower forwards them to the leader
//! it knows. Reads are local ([`RoutingNode::read`], a few hundred ms stale at worst) or
//! linearizable ([`RoutingNode::read_linearizable`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hotline_core::ids::SiteId;
use hotline_proto::routing::v1 as pb;
use openraft::errors::{ClientWriteError, RaftError};
use openraft::type_config::async_runtime::WatchReceiver;
use openraft::{ChangeMembers, Instant as _, ServerState};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;

use crate::network::{GrpcNetwork, RaftService};
use crate::state::{Command, Refusal, Response, RoutingState, SiteStatus, check_membership_change};
use crate::store::{self, FsyncMeter, FsyncStats, StateHandle, StoreConfig, StoreError};
use crate::typ::{NodeId, Raft, SiteNode, TypeConfig};

/// Metadata key a replica sets on a write it forwards, so the leader it reached never
/// forwards it again (a write bounces at most once while leadership moves).
const FORWARDED: &str = "x-hotline-forwarded";

/// How long a write waits for a leader to be known before it fails as retryable.
const LEADER_WAIT: Duration = Duration::from_secs(3);

/// What a routing replica needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This replica's id in the Raft group; unique and never reused.
    pub id: NodeId,
    /// The site it belongs to; empty for a witness.
    pub site: String,
    /// A witness votes but runs no ACD.
    pub witness: bool,
    /// Where the store lives (`routing.redb` inside it); ignored in memory.
    pub data_dir: PathBuf,
    /// How the store opens and group-commits.
    pub store: StoreConfig,
    /// Raft's timings.
    pub timing: RaftTiming,
    /// How much Raft folds into one replication message.
    pub batching: RaftBatching,
}

/// How much Raft folds into one message to a follower: larger batches carry a burst of
/// writes in fewer round trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftBatching {
    /// Most log entries in one `AppendEntries` (openraft's `max_payload_entries`).
    pub max_payload_entries: u64,
    /// Replicate entries as soon as the leader's log accepted them, before they are
    /// durable there (openraft's `broadcast_submitted_on_append`); off by default, since
    /// earlier sends carry fewer entries each.
    pub broadcast_on_append: bool,
}

impl Default for RaftBatching {
    fn default() -> Self {
        Self {
            max_payload_entries: 300,
            broadcast_on_append: false,
        }
    }
}

/// Raft's timings, tuned so a lost leader is replaced well within a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftTiming {
    /// How often the leader reaches every follower, in milliseconds.
    pub heartbeat_ms: u64,
    /// The shortest wait without a leader before a follower stands for election.
    pub election_min_ms: u64,
    /// The longest such wait; each follower draws between the two.
    pub election_max_ms: u64,
}

impl Default for RaftTiming {
    fn default() -> Self {
        // A follower notices a dead leader after 150–300 ms; with one pre-vote and one vote
        // round trip on a LAN, a new leader is up well within the 1 s goal. Pre-vote keeps
        // a follower that merely missed heartbeats under load from unseating a live leader.
        Self {
            heartbeat_ms: 50,
            election_min_ms: 150,
            election_max_ms: 300,
        }
    }
}

/// Why a routing replica could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store could not be opened or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The data directory cannot be made.
    #[error("routing replica data directory {path}: {reason}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the file system said.
        reason: String,
    },
    /// Raft's timings or settings are inconsistent.
    #[error("routing replica {id}: bad Raft configuration: {reason}")]
    Config {
        /// The replica.
        id: NodeId,
        /// What openraft said.
        reason: String,
    },
    /// No leader is known yet (an election is under way, or this replica is cut off from
    /// a majority). Safe to retry.
    #[error(
        "no routing leader is known to replica {id} after {waited_ms} ms: an election is under way or this site is cut off from the majority; retry, and check `hotline ops cluster status`"
    )]
    NoLeader {
        /// The replica asked.
        id: NodeId,
        /// How long it waited.
        waited_ms: u64,
    },
    /// The leader changed while the write was in flight; it may or may not have been
    /// applied. Commands are written so that a retry is refused as a duplicate or changes
    /// nothing twice.
    #[error(
        "the routing leader changed while the write was in flight: it may or may not have been applied; {0}"
    )]
    Uncertain(String),
    /// The state machine refused the command; nothing of it was applied.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// A membership change was refused before it was proposed.
    #[error("membership change refused: {0}")]
    Membership(String),
    /// Forwarding to the leader failed.
    #[error("forwarding to the routing leader at {addr} failed: {message}")]
    Forward {
        /// The leader's address.
        addr: String,
        /// What gRPC said.
        message: String,
    },
    /// Raft stopped (shutdown or a fatal storage error).
    #[error("routing replica {id} has stopped: {reason}")]
    Stopped {
        /// The replica.
        id: NodeId,
        /// Why.
        reason: String,
    },
    /// The gRPC server could not run.
    #[error("routing replica {id} cannot serve on {addr}: {reason}")]
    Serve {
        /// The replica.
        id: NodeId,
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
}

impl NodeError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::NoLeader { .. } | Self::Forward { .. } | Self::Uncertain(_)
        )
    }
}

/// A committed and applied write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Written {
    /// The state machine's answer (never `Refused`: a refusal is [`NodeError::Refused`]).
    pub response: Response,
    /// The log index the command was committed at.
    pub index: u64,
}

/// One member of the routing group as a status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Replica id.
    pub id: NodeId,
    /// Its site (empty for a witness).
    pub site: String,
    /// Where it is reached.
    pub rpc_addr: String,
    /// Votes, runs no ACD.
    pub witness: bool,
    /// A voter (true) or a learner catching up (false).
    pub voter: bool,
    /// The last log index the leader knows it holds (leader's view only).
    pub matched: Option<u64>,
}

/// A replica's view of the routing group: what `hotline ops cluster status` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The replica answering.
    pub id: NodeId,
    /// Its site.
    pub site: String,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub role: String,
    /// The leader it knows, if any.
    pub leader: Option<NodeId>,
    /// The current term.
    pub term: u64,
    /// The last log index it holds.
    pub last_log_index: Option<u64>,
    /// The last index committed by the group, as it knows.
    pub committed: Option<u64>,
    /// The last index its state machine applied.
    pub last_applied: Option<u64>,
    /// Milliseconds since a quorum last acknowledged this leader (leader only): large means
    /// it is cut off.
    pub millis_since_quorum_ack: Option<u64>,
    /// Every member, voters first.
    pub members: Vec<Member>,
    /// The store's commit (fsync) figures since it opened.
    pub fsync_p50_us: u64,
    /// 99th percentile commit time.
    pub fsync_p99_us: u64,
    /// Commits so far.
    pub fsync_commits: u64,
}

// === impl RoutingNode ===

/// A running routing replica. Cheap to clone; every clone is the same replica.
#[derive(Clone)]
pub struct RoutingNode {
    inner: Arc<Inner>,
}

struct Inner {
    id: NodeId,
    site: String,
    raft: Raft,
    state: StateHandle,
    fsync: FsyncMeter,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for RoutingNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutingNode")
            .field("id", &self.inner.id)
            .field("site", &self.inner.site)
            .field("addr", &self.inner.addr)
            .finish()
    }
}

impl RoutingNode {
    /// Opens the store, starts Raft and serves gRPC on `listener` until
    /// [`shutdown`](Self::shutdown). The replica joins nothing by itself: a new group is
    /// made with [`bootstrap`](Self::bootstrap), a new member is added by the leader
    /// ([`add_member`](Self::add_member)), and a restarted member picks up where it was.
    pub async fn start(config: NodeConfig, listener: TcpListener) -> Result<Self, NodeError> {
        Self::start_with(config, listener, tonic::service::Routes::default()).await
    }

    /// As [`start`](Self::start), also serving `extra` gRPC services on the same port
    /// (a site's `SiteLink` for cross-site overflow).
    pub async fn start_with(
        config: NodeConfig,
        listener: TcpListener,
        extra: tonic::service::Routes,
    ) -> Result<Self, NodeError> {
        let network = GrpcNetwork::new(config.id);
        Self::start_on(config, listener, extra, network, |_| {}).await
    }

    /// As [`start`](Self::start), but replicas reach one another through `router`'s
    /// in-process network (a [`Router::direct`](crate::testing::Router::direct) one for
    /// benchmarks) instead of gRPC; the admin service is still served on `listener`, and
    /// a write made at a follower is still forwarded over gRPC.
    #[cfg(feature = "testing")]
    pub async fn start_in_process(
        config: NodeConfig,
        listener: TcpListener,
        router: &crate::testing::Router,
    ) -> Result<Self, NodeError> {
        let network = router.network(config.id);
        let id = config.id;
        let extra = tonic::service::Routes::default();
        Self::start_on(config, listener, extra, network, |raft| {
            router.register(id, raft.clone());
        })
        .await
    }

    /// Starts a replica whose Raft talks through `network`; `started` sees its Raft before
    /// any write reaches it.
    async fn start_on<N>(
        config: NodeConfig,
        listener: TcpListener,
        extra: tonic::service::Routes,
        network: N,
        started: impl FnOnce(&Raft),
    ) -> Result<Self, NodeError>
    where
        N: openraft::network::RaftNetworkFactory<TypeConfig>,
        N::Network: openraft::network::NetSnapshot<TypeConfig, SnapshotData = Vec<u8>>,
    {
        let id = config.id;
        let addr = listener.local_addr().map_err(|e| NodeError::Serve {
            id,
            addr: "?".into(),
            reason: e.to_string(),
        })?;
        let raft_config = openraft::Config {
            cluster_name: "hotline-routing".into(),
            heartbeat_interval: config.timing.heartbeat_ms,
            election_timeout_min: config.timing.election_min_ms,
            election_timeout_max: config.timing.election_max_ms,
            enable_pre_vote: Some(true),
            // Keep enough log for a replica that was down for a while to catch up without
            // a snapshot, and snapshot often enough that a restart replays little.
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(20_000),
            max_in_snapshot_log_to_keep: 5_000,
            max_payload_entries: config.batching.max_payload_entries,
            broadcast_submitted_on_append: Some(config.batching.broadcast_on_append),
            ..Default::default()
        }
        .validate()
        .map_err(|e| NodeError::Config {
            id,
            reason: e.to_string(),
        })?;

        let path = config.data_dir.join("routing.redb");
        if config.store.durability == store::Durability::Durable {
            std::fs::create_dir_all(&config.data_dir).map_err(|e| NodeError::DataDir {
                path: config.data_dir.clone(),
                reason: e.to_string(),
            })?;
        }
        let store_config = config.store.clone();
        let (log, sm) = tokio::task::spawn_blocking(move || store::open(&path, &store_config))
            .await
            .map_err(|e| NodeError::Stopped {
                id,
                reason: e.to_string(),
            })??;
        let state = sm.state_handle();
        let fsync = log.fsync_meter();
        let raft = Raft::new(id, Arc::new(raft_config), network, log, sm)
            .await
            .map_err(|e| NodeError::Stopped {
                id,
                reason: e.to_string(),
            })?;
        started(&raft);

        let (stop, mut stopped) = watch::channel(false);
        let raft_service = RaftService::new(raft.clone()).into_server();
        let inner = Arc::new(Inner {
            id,
            site: config.site.clone(),
            raft,
            state,
            fsync,
            addr,
            stop,
            server: std::sync::Mutex::new(None),
        });
        let node = RoutingNode { inner };
        let admin =
            pb::routing_admin_server::RoutingAdminServer::new(AdminService { node: node.clone() });
        let incoming = TcpListenerStream::new(listener);
        let server = tokio::spawn(async move {
            let result = tonic::transport::Server::builder()
                .tcp_nodelay(true)
                .initial_stream_window_size(crate::network::STREAM_WINDOW_BYTES)
                .initial_connection_window_size(crate::network::CONNECTION_WINDOW_BYTES)
                .add_routes(extra)
                .add_service(raft_service)
                .add_service(admin)
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!(replica = id, %addr, error = %e, "routing gRPC server stopped");
            }
        });
        *node
            .inner
            .server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(server);
        tracing::info!(replica = id, site = %config.site, %addr, "routing replica started");
        Ok(node)
    }

    /// This replica's id.
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// The address its gRPC server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The underlying Raft, for tests and benchmarks.
    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// The store's commit (fsync) figures so far.
    pub fn fsync_stats(&self) -> FsyncStats {
        self.inner.fsync.stats()
    }

    /// Makes a new group of `members` (this replica among them). Does nothing if this
    /// replica already belongs to a group, so every site of a fresh install may call it.
    pub async fn bootstrap(&self, members: BTreeMap<NodeId, SiteNode>) -> Result<(), NodeError> {
        let raft = &self.inner.raft;
        if raft.is_initialized().await.map_err(|e| self.stopped(e))? {
            return Ok(());
        }
        let voters: BTreeSet<NodeId> = members.keys().copied().collect();
        check_membership_change(&BTreeSet::new(), &BTreeSet::new(), &voters)
            .map_err(|r| NodeError::Membership(r.to_string()))?;
        match raft.initialize(members).await {
            Ok(()) => Ok(()),
            // Another member initialized first, or this one did before a restart.
            Err(RaftError::APIError(openraft::errors::InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(NodeError::Membership(e.to_string())),
        }
    }

    /// Commits `command` through the leader (forwarded if this replica is not it) and
    /// answers once it is applied here or at the leader.
    pub async fn write(&self, command: Command) -> Result<Written, NodeError> {
        self.write_inner(command, true).await
    }

    async fn write_inner(&self, command: Command, may_forward: bool) -> Result<Written, NodeError> {
        let started = Instant::now();
        loop {
            match self.inner.raft.client_write(command.clone()).await {
                Ok(reply) => return written(reply.data, reply.log_id.index),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                    match forward.leader_node {
                        Some(leader) if may_forward && forward.leader_id != Some(self.inner.id) => {
                            return forward_write(&leader.rpc_addr, &command).await;
                        }
                        _ => {}
                    }
                    if started.elapsed() >= LEADER_WAIT {
                        return Err(NodeError::NoLeader {
                            id: self.inner.id,
                            waited_ms: started.elapsed().as_millis() as u64,
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(RaftError::APIError(ClientWriteError::LogEntryDiscarded(forward))) => {
                    return Err(NodeError::Uncertain(forward.to_string()));
                }
                Err(RaftError::APIError(e)) => return Err(NodeError::Membership(e.to_string())),
                Err(RaftError::Fatal(e)) => return Err(self.stopped(e)),
            }
        }
    }

    /// Runs `f` on this replica's copy of the state: no network, possibly a few hundred
    /// milliseconds behind the leader. What routing decisions use.
    pub fn read<T>(&self, f: impl FnOnce(&RoutingState) -> T) -> T {
        self.inner.state.read(f)
    }

    /// Runs `f` on a state that includes every write committed before the call, confirmed
    /// with a quorum. What admin reads use.
    pub async fn read_linearizable<T>(
        &self,
        f: impl FnOnce(&RoutingState) -> T,
    ) -> Result<T, NodeError> {
        let wanted = self.read_index(true).await?;
        self.inner
            .raft
            .wait(Some(LEADER_WAIT))
            .applied_index_at_least(Some(wanted), "linearizable read")
            .await
            .map_err(|e| NodeError::Stopped {
                id: self.inner.id,
                reason: e.to_string(),
            })?;
        Ok(self.read(f))
    }

    /// The index a linearizable read must wait for: the leader's, confirmed with a quorum
    /// (asked over gRPC when this replica is a follower).
    async fn read_index(&self, may_forward: bool) -> Result<u64, NodeError> {
        let started = Instant::now();
        loop {
            match self
                .inner
                .raft
                .ensure_linearizable(openraft::raft::ReadPolicy::ReadIndex)
                .await
            {
                Ok(read) => return Ok(read.index()),
                Err(RaftError::Fatal(f)) => return Err(self.stopped(f)),
                Err(RaftError::APIError(e)) => {
                    let forward = match &e {
                        openraft::errors::LinearizableReadError::ForwardToLeader(f) => {
                            f.leader_node.clone()
                        }
                        _ => None,
                    };
                    if let (true, Some(leader)) = (may_forward, forward) {
                        let mut client = AdminClient::connect(&leader.rpc_addr).await?;
                        return client.read_index().await;
                    }
                    if started.elapsed() >= LEADER_WAIT {
                        return Err(NodeError::NoLeader {
                            id: self.inner.id,
                            waited_ms: started.elapsed().as_millis() as u64,
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// This replica's view of the group.
    pub fn status(&self) -> ClusterStatus {
        let metrics = self.inner.raft.metrics().borrow_watched().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let matched: BTreeMap<NodeId, Option<u64>> = metrics
            .replication
            .as_ref()
            .map(|r| {
                r.iter()
                    .map(|(id, log)| (*id, log.as_ref().map(|l| l.index)))
                    .collect()
            })
            .unwrap_or_default();
        let mut members: Vec<Member> = membership
            .nodes()
            .map(|(id, node)| Member {
                id: *id,
                site: node.site.clone(),
                rpc_addr: node.rpc_addr.clone(),
                witness: node.witness,
                voter: voters.contains(id),
                matched: matched.get(id).copied().flatten(),
            })
            .collect();
        members.sort_by_key(|m| (!m.voter, m.id));
        let fsync = self.fsync_stats();
        ClusterStatus {
            id: self.inner.id,
            site: self.inner.site.clone(),
            role: match metrics.state {
                ServerState::Leader => "leader",
                ServerState::Follower => "follower",
                ServerState::Candidate => "candidate",
                ServerState::Learner => "learner",
                ServerState::Shutdown => "shutdown",
            }
            .into(),
            leader: metrics.current_leader,
            term: metrics.current_term,
            last_log_index: metrics.last_log_index,
            committed: metrics.cluster_committed.map(|l| l.index),
            last_applied: metrics.last_applied.map(|l| l.index),
            millis_since_quorum_ack: metrics
                .last_quorum_acked
                .map(|at| at.elapsed().as_millis() as u64),
            members,
            fsync_p50_us: fsync.p50_us,
            fsync_p99_us: fsync.p99_us,
            fsync_commits: fsync.commits,
        }
    }

    /// Adds a replica: first as a learner that catches up, then as a voter. Only the
    /// leader can; a follower answers with [`NodeError::Membership`] naming the leader.
    pub async fn add_member(&self, id: NodeId, node: SiteNode) -> Result<ClusterStatus, NodeError> {
        let raft = &self.inner.raft;
        let status = self.status();
        let voters: BTreeSet<NodeId> = status
            .members
            .iter()
            .filter(|m| m.voter)
            .map(|m| m.id)
            .collect();
        let mut proposed = voters.clone();
        proposed.insert(id);
        check_membership_change(&voters, &self.unreachable_voters(&status), &proposed)
            .map_err(|r| NodeError::Membership(r.to_string()))?;
        raft.add_learner(id, node, true)
            .await
            .map_err(|e| self.membership_error(e))?;
        raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(|e| self.membership_error(e))?;
        Ok(self.status())
    }

    /// Removes a voter, refused if the rest could not keep quorum.
    pub async fn remove_member(&self, id: NodeId) -> Result<ClusterStatus, NodeError> {
        let status = self.status();
        let voters: BTreeSet<NodeId> = status
            .members
            .iter()
            .filter(|m| m.voter)
            .map(|m| m.id)
            .collect();
        if !voters.contains(&id) {
            return Err(NodeError::Membership(format!(
                "replica {id} is not a voter of the routing group (voters: {voters:?})"
            )));
        }
        let mut proposed = voters.clone();
        proposed.remove(&id);
        check_membership_change(&voters, &self.unreachable_voters(&status), &proposed)
            .map_err(|r| NodeError::Membership(r.to_string()))?;
        self.inner
            .raft
            .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
            .await
            .map_err(|e| self.membership_error(e))?;
        Ok(self.status())
    }

    /// Voters the leader has not heard from lately (no heartbeat acknowledged within
    /// three election timeouts): a membership change must not count on them. Unknown off
    /// the leader, where every voter counts as reachable.
    fn unreachable_voters(&self, status: &ClusterStatus) -> BTreeSet<NodeId> {
        if status.role != "leader" {
            return BTreeSet::new();
        }
        let metrics = self.inner.raft.metrics().borrow_watched().clone();
        let Some(acks) = metrics.heartbeat.as_ref() else {
            return BTreeSet::new();
        };
        let limit = Duration::from_millis(3 * self.inner.raft.config().election_timeout_max);
        status
            .members
            .iter()
            .filter(|m| m.voter && m.id != status.id)
            .filter(|m| match acks.get(&m.id) {
                Some(Some(at)) => at.elapsed() > limit,
                _ => true,
            })
            .map(|m| m.id)
            .collect()
    }

    /// Sites whose replica the leader has not heard from for `down_after`, that the state
    /// still counts as serving: what [`watch_sites`](Self::watch_sites) marks down. Empty
    /// off the leader. A replica that has not answered this leader yet counts as silent
    /// only once the leader has led for `down_after` (`leading_for`), so a fresh leader
    /// does not mark down followers it has not reached yet.
    pub fn silent_sites(&self, down_after: Duration, leading_for: Duration) -> Vec<SiteId> {
        let metrics = self.inner.raft.metrics().borrow_watched().clone();
        if metrics.state != ServerState::Leader {
            return Vec::new();
        }
        let Some(acks) = metrics.heartbeat.as_ref() else {
            return Vec::new();
        };
        self.read(|state| {
            state
                .sites()
                .filter(|site| site.status != SiteStatus::Down && site.node_id != self.inner.id)
                .filter(|site| match acks.get(&site.node_id) {
                    Some(Some(at)) => at.elapsed() > down_after,
                    Some(None) => leading_for > down_after,
                    // Not a member the leader replicates to: not this watch's business.
                    None => false,
                })
                .map(|site| site.id.clone())
                .collect()
        })
    }

    /// While this replica leads, marks down every site whose replica has been silent for
    /// `down_after`, so survivors may take over its promises and overflow stops choosing
    /// it. Runs until `stop` turns true. A site brought back marks itself active again
    /// (`hotline site` does on start).
    pub async fn watch_sites(&self, down_after: Duration, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut leading_since: Option<(u64, Instant)> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let status = self.status();
            if status.role != "leader" {
                leading_since = None;
                continue;
            }
            // A new term is a new leadership, even if this replica led before.
            let since = match leading_since {
                Some((term, at)) if term == status.term => at,
                _ => leading_since.insert((status.term, Instant::now())).1,
            };
            for site in self.silent_sites(down_after, since.elapsed()) {
                let command = Command::SetSiteStatus {
                    site: site.clone(),
                    status: SiteStatus::Down,
                    at_ms: now_ms(),
                };
                match self.write(command).await {
                    Ok(written) => {
                        tracing::warn!(%site, index = written.index, silent_ms = down_after.as_millis() as u64, "site marked down: its routing replica stopped answering")
                    }
                    Err(e) => {
                        tracing::debug!(%site, error = %e, "could not mark the site down yet")
                    }
                }
            }
        }
    }

    fn membership_error(
        &self,
        e: RaftError<TypeConfig, ClientWriteError<TypeConfig>>,
    ) -> NodeError {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                NodeError::Membership(format!(
                    "only the leader changes membership; ask replica {:?} at {}",
                    f.leader_id,
                    f.leader_node
                        .map(|n| n.rpc_addr)
                        .unwrap_or_else(|| "(no leader known)".into())
                ))
            }
            RaftError::APIError(e) => NodeError::Membership(e.to_string()),
            RaftError::Fatal(f) => self.stopped(f),
        }
    }

    fn stopped(&self, e: impl std::fmt::Display) -> NodeError {
        NodeError::Stopped {
            id: self.inner.id,
            reason: e.to_string(),
        }
    }

    /// Stops serving, stops Raft and closes the store, so the same directory can be opened
    /// again.
    pub async fn shutdown(&self) {
        let _ = self.inner.stop.send(true);
        let server = self
            .inner
            .server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(server) = server {
            let _ = server.await;
        }
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(replica = self.inner.id, error = %e, "routing replica did not stop cleanly");
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn written(response: Response, index: u64) -> Result<Written, NodeError> {
    match response {
        Response::Refused(refusal) => Err(NodeError::Refused(refusal)),
        response => Ok(Written { response, index }),
    }
}

/// Sends a write to the leader's admin API, marked as forwarded.
async fn forward_write(addr: &str, command: &Command) -> Result<Written, NodeError> {
    let fail = |message: String| NodeError::Forward {
        addr: addr.to_owned(),
        message,
    };
    let mut client = AdminClient::connect(addr)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let command_json = serde_json::to_string(command).map_err(|e| fail(e.to_string()))?;
    let mut request = tonic::Request::new(pb::WriteRequest { command_json });
    request
        .metadata_mut()
        .insert(FORWARDED, tonic::metadata::MetadataValue::from_static("1"));
    match client.inner.write(request).await {
        Ok(reply) => {
            let reply = reply.into_inner();
            let response: Response =
                serde_json::from_str(&reply.response_json).map_err(|e| fail(e.to_string()))?;
            written(response, reply.log_index)
        }
        Err(status) => Err(status_to_error(addr, status)),
    }
}

/// Turns an admin API status back into the error the remote replica had.
fn status_to_error(addr: &str, status: tonic::Status) -> NodeError {
    match status.code() {
        tonic::Code::Aborted => match serde_json::from_str::<Refusal>(status.message()) {
            Ok(refusal) => NodeError::Refused(refusal),
            Err(_) => NodeError::Forward {
                addr: addr.to_owned(),
                message: status.message().to_owned(),
            },
        },
        tonic::Code::FailedPrecondition => NodeError::Membership(status.message().to_owned()),
        _ => NodeError::Forward {
            addr: addr.to_owned(),
            message: status.message().to_owned(),
        },
    }
}

fn error_to_status(e: &NodeError) -> tonic::Status {
    match e {
        NodeError::Refused(refusal) => tonic::Status::aborted(
            serde_json::to_string(refusal).unwrap_or_else(|_| refusal.to_string()),
        ),
        NodeError::Membership(m) => tonic::Status::failed_precondition(m.clone()),
        e if e.is_retryable() => tonic::Status::unavailable(e.to_string()),
        e => tonic::Status::internal(e.to_string()),
    }
}

/// A status as the `RoutingAdmin` API answers it.
fn status_reply(status: &ClusterStatus) -> Result<tonic::Response<pb::StatusReply>, tonic::Status> {
    let status_json =
        serde_json::to_string(status).map_err(|e| tonic::Status::internal(e.to_string()))?;
    Ok(tonic::Response::new(pb::StatusReply { status_json }))
}

// === impl AdminService ===

/// The `RoutingAdmin` gRPC service of one replica.
struct AdminService {
    node: RoutingNode,
}

impl AdminService {
    fn node(&self) -> Result<&RoutingNode, tonic::Status> {
        Ok(&self.node)
    }
}

#[tonic::async_trait]
impl pb::routing_admin_server::RoutingAdmin for AdminService {
    async fn write(
        &self,
        request: tonic::Request<pb::WriteRequest>,
    ) -> Result<tonic::Response<pb::WriteReply>, tonic::Status> {
        let node = self.node()?;
        let forwarded = request.metadata().contains_key(FORWARDED);
        let command: Command =
            serde_json::from_str(&request.into_inner().command_json).map_err(|e| {
                tonic::Status::invalid_argument(format!(
                    "command_json is not a routing command: {e}"
                ))
            })?;
        let written = node
            .write_inner(command, !forwarded)
            .await
            .map_err(|e| error_to_status(&e))?;
        Ok(tonic::Response::new(pb::WriteReply {
            response_json: serde_json::to_string(&written.response)
                .map_err(|e| tonic::Status::internal(e.to_string()))?,
            log_index: written.index,
        }))
    }

    async fn status(
        &self,
        _request: tonic::Request<pb::StatusRequest>,
    ) -> Result<tonic::Response<pb::StatusReply>, tonic::Status> {
        let status = self.node()?.status();
        status_reply(&status)
    }

    async fn state(
        &self,
        _request: tonic::Request<pb::StatusRequest>,
    ) -> Result<tonic::Response<pb::StateReply>, tonic::Status> {
        let state_json = self
            .node()?
            .read_linearizable(serde_json::to_string)
            .await
            .map_err(|e| error_to_status(&e))?
            .map_err(|e| tonic::Status::internal(e.to_string()))?;
        Ok(tonic::Response::new(pb::StateReply { state_json }))
    }

    async fn read_index(
        &self,
        _request: tonic::Request<pb::StatusRequest>,
    ) -> Result<tonic::Response<pb::ReadIndexReply>, tonic::Status> {
        let index = self
            .node()?
            .read_index(false)
            .await
            .map_err(|e| error_to_status(&e))?;
        Ok(tonic::Response::new(pb::ReadIndexReply { index }))
    }

    async fn add_member(
        &self,
        request: tonic::Request<pb::AddMemberRequest>,
    ) -> Result<tonic::Response<pb::StatusReply>, tonic::Status> {
        let request = request.into_inner();
        let node = SiteNode {
            site: request.site,
            rpc_addr: request.rpc_addr,
            witness: request.witness,
        };
        let status = self
            .node()?
            .add_member(request.node_id, node)
            .await
            .map_err(|e| error_to_status(&e))?;
        status_reply(&status)
    }

    async fn remove_member(
        &self,
        request: tonic::Request<pb::RemoveMemberRequest>,
    ) -> Result<tonic::Response<pb::StatusReply>, tonic::Status> {
        let status = self
            .node()?
            .remove_member(request.into_inner().node_id)
            .await
            .map_err(|e| error_to_status(&e))?;
        status_reply(&status)
    }
}

// === impl AdminClient ===

/// A client of one replica's admin API: what `hotline ops` uses.
#[derive(Debug, Clone)]
pub struct AdminClient {
    addr: String,
    inner: pb::routing_admin_client::RoutingAdminClient<tonic::transport::Channel>,
}

impl AdminClient {
    /// Connects to the replica at `host:port`.
    pub async fn connect(addr: &str) -> Result<Self, NodeError> {
        let fail = |message: String| NodeError::Forward {
            addr: addr.to_owned(),
            message,
        };
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| fail(format!("not a host:port address: {e}")))?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10));
        let channel = endpoint.connect().await.map_err(|e| {
            fail(format!(
                "cannot connect: {e}; is `hotline site` running there?"
            ))
        })?;
        Ok(Self {
            addr: addr.to_owned(),
            inner: pb::routing_admin_client::RoutingAdminClient::new(channel),
        })
    }

    fn decode_status(&self, reply: pb::StatusReply) -> Result<ClusterStatus, NodeError> {
        serde_json::from_str(&reply.status_json).map_err(|e| NodeError::Forward {
            addr: self.addr.clone(),
            message: e.to_string(),
        })
    }

    /// Commits a command through that replica (it forwards to the leader).
    pub async fn write(&mut self, command: &Command) -> Result<Written, NodeError> {
        let command_json = serde_json::to_string(command).map_err(|e| NodeError::Forward {
            addr: self.addr.clone(),
            message: e.to_string(),
        })?;
        match self.inner.write(pb::WriteRequest { command_json }).await {
            Ok(reply) => {
                let reply = reply.into_inner();
                let response: Response =
                    serde_json::from_str(&reply.response_json).map_err(|e| NodeError::Forward {
                        addr: self.addr.clone(),
                        message: e.to_string(),
                    })?;
                written(response, reply.log_index)
            }
            Err(status) => Err(status_to_error(&self.addr, status)),
        }
    }

    /// That replica's view of the group.
    pub async fn status(&mut self) -> Result<ClusterStatus, NodeError> {
        let reply = self
            .inner
            .status(pb::StatusRequest {})
            .await
            .map_err(|s| status_to_error(&self.addr, s))?;
        self.decode_status(reply.into_inner())
    }

    /// The whole routing state, read linearizably.
    pub async fn state(&mut self) -> Result<RoutingState, NodeError> {
        let reply = self
            .inner
            .state(pb::StatusRequest {})
            .await
            .map_err(|s| status_to_error(&self.addr, s))?;
        serde_json::from_str(&reply.into_inner().state_json).map_err(|e| NodeError::Forward {
            addr: self.addr.clone(),
            message: format!("the routing state does not decode: {e}"),
        })
    }

    /// The leader's confirmed commit index, for a linearizable read elsewhere.
    pub async fn read_index(&mut self) -> Result<u64, NodeError> {
        let reply = self
            .inner
            .read_index(pb::StatusRequest {})
            .await
            .map_err(|s| status_to_error(&self.addr, s))?;
        Ok(reply.into_inner().index)
    }

    /// Adds a member (the replica must be the leader).
    pub async fn add_member(
        &mut self,
        id: NodeId,
        node: &SiteNode,
    ) -> Result<ClusterStatus, NodeError> {
        let reply = self
            .inner
            .add_member(pb::AddMemberRequest {
                node_id: id,
                site: node.site.clone(),
                rpc_addr: node.rpc_addr.clone(),
                witness: node.witness,
            })
            .await
            .map_err(|s| status_to_error(&self.addr, s))?;
        self.decode_status(reply.into_inner())
    }

    /// Removes a voter (the replica must be the leader).
    pub async fn remove_member(&mut self, id: NodeId) -> Result<ClusterStatus, NodeError> {
        let reply = self
            .inner
            .remove_member(pb::RemoveMemberRequest { node_id: id })
            .await
            .map_err(|s| status_to_error(&self.addr, s))?;
        self.decode_status(reply.into_inner())
    }
}
