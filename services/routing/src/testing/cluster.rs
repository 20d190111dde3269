//! A routing group of simulated replicas in one process: durable redb stores in a directory,
//! openraft over a [`Router`], crash and restart by replica id.
//!
//! A crash takes the replica off the network, shuts its Raft down and closes its store; the
//! files stay, so a restart reopens them and the replica comes back with its vote, log and last
//! snapshot, as after `kill -9` (shutting down also commits writes already queued, which a real
//! crash could lose; those were not yet reported durable, so Raft never counted on them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openraft::errors::{ClientWriteError, RaftError};
use openraft::type_config::alias::LogIdOf;
use openraft::type_config::async_runtime::WatchReceiver;
use openraft::{RaftMetrics, ServerState};

use super::router::Router;
use super::store::{SimLogStore, SimStateMachine};
use crate::node::RaftTiming;
use crate::state::{Command, Response, RoutingState};
use crate::store::{self, LogReader, StateHandle, StoreConfig, StoreError};
use crate::typ::{NodeId, SiteNode, TypeConfig};

/// A simulated replica's Raft.
pub type SimRaft = openraft::Raft<TypeConfig, SimStateMachine>;

/// How a simulated group is made.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Replica ids, `1..=replicas`.
    pub replicas: u64,
    /// Seeds the router's faults.
    pub seed: u64,
    /// Raft's timings: the same defaults a real replica runs.
    pub timing: RaftTiming,
    /// Build a snapshot every this many entries and keep few entries behind it, so a replica
    /// that was away catches up from a snapshot, not only from the log.
    pub snapshot_every: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            replicas: 3,
            seed: 0,
            timing: RaftTiming::default(),
            snapshot_every: 50,
        }
    }
}

/// Why the harness could not do what a test asked.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// openraft refused to start or initialize.
    #[error("replica {id}: {reason}")]
    Raft {
        /// The replica.
        id: NodeId,
        /// What openraft said.
        reason: String,
    },
    /// A condition a test waits for did not come true in time (virtual time under a paused
    /// clock).
    #[error("{what} did not happen within {within:?}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        within: Duration,
    },
}

/// How one client write ended.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOutcome {
    /// Committed and applied: the write is acknowledged.
    Acked {
        /// Where it was committed.
        log_id: LogIdOf<TypeConfig>,
        /// The state machine's answer (a refusal is an answer too: it was committed).
        response: Response,
    },
    /// The replica is not the leader (and names the one it knows, if any).
    NotLeader(Option<NodeId>),
    /// No answer in time: it may or may not be committed later.
    TimedOut,
    /// Anything else (the replica is down or stopping, or the entry was discarded).
    Failed(String),
}

impl WriteOutcome {
    /// Whether the group acknowledged the write.
    pub fn is_acked(&self) -> bool {
        matches!(self, WriteOutcome::Acked { .. })
    }
}

/// One replica of the group: its Raft while it is up, its store's files always.
struct Replica {
    /// Up: the Raft, the state and a log reader on its store.
    up: Option<Up>,
    /// Where its store lives.
    path: PathBuf,
}

struct Up {
    raft: SimRaft,
    state: StateHandle,
    log: LogReader,
}

/// A routing group of simulated replicas on one [`Router`].
pub struct Cluster {
    router: Router<SimStateMachine>,
    raft_config: Arc<openraft::Config>,
    replicas: BTreeMap<NodeId, Replica>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("router", &self.router)
            .field("up", &self.up_ids())
            .finish()
    }
}

impl Cluster {
    /// Starts `config.replicas` replicas with stores under `dir` and makes them one group.
    pub async fn start(dir: &Path, config: ClusterConfig) -> Result<Self, ClusterError> {
        let raft_config = openraft::Config {
            cluster_name: "hotline-routing-sim".into(),
            heartbeat_interval: config.timing.heartbeat_ms,
            election_timeout_min: config.timing.election_min_ms,
            election_timeout_max: config.timing.election_max_ms,
            enable_pre_vote: Some(true),
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: 2,
            purge_batch_size: 1,
            ..Default::default()
        }
        .validate()
        .map_err(|e| ClusterError::Raft {
            id: 0,
            reason: e.to_string(),
        })?;
        let mut cluster = Self {
            router: Router::new(config.seed),
            raft_config: Arc::new(raft_config),
            replicas: BTreeMap::new(),
        };
        for id in 1..=config.replicas {
            let path = dir.join(format!("replica-{id}.redb"));
            cluster.replicas.insert(id, Replica { up: None, path });
            cluster.restart(id).await?;
        }
        let members: BTreeMap<NodeId, SiteNode> = cluster
            .ids()
            .into_iter()
            .map(|id| {
                let node = SiteNode {
                    site: format!("site-{id}"),
                    rpc_addr: format!("sim:{id}"),
                    witness: false,
                };
                (id, node)
            })
            .collect();
        let first = cluster.raft(1).expect("replica 1 was just started");
        first
            .initialize(members)
            .await
            .map_err(|e| ClusterError::Raft {
                id: 1,
                reason: e.to_string(),
            })?;
        Ok(cluster)
    }

    /// The network, to cut links and set faults.
    pub fn router(&self) -> &Router<SimStateMachine> {
        &self.router
    }

    /// Every replica id, up or not.
    pub fn ids(&self) -> Vec<NodeId> {
        self.replicas.keys().copied().collect()
    }

    /// The replicas that are up.
    pub fn up_ids(&self) -> Vec<NodeId> {
        (self.replicas.iter())
            .filter(|(_, r)| r.up.is_some())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Replica `id`'s Raft, while it is up.
    pub fn raft(&self, id: NodeId) -> Option<&SimRaft> {
        Some(&self.replicas.get(&id)?.up.as_ref()?.raft)
    }

    /// Replica `id`'s Raft metrics now, while it is up.
    pub fn metrics(&self, id: NodeId) -> Option<RaftMetrics<TypeConfig>> {
        Some(self.raft(id)?.metrics().borrow_watched().clone())
    }

    /// A copy of replica `id`'s routing state, while it is up.
    pub fn state(&self, id: NodeId) -> Option<RoutingState> {
        Some(
            self.replicas
                .get(&id)?
                .up
                .as_ref()?
                .state
                .read(Clone::clone),
        )
    }

    /// Replica `id`'s log entry at `index` (`None` if it holds none there, or it is down),
    /// and the last index its state holds without a log entry (purged, or in its snapshot).
    pub async fn log_entry(
        &self,
        id: NodeId,
        index: u64,
    ) -> Result<(Option<crate::typ::Entry>, Option<u64>), ClusterError> {
        use openraft::storage::RaftLogReader;
        let Some(up) = self.replicas.get(&id).and_then(|r| r.up.as_ref()) else {
            return Ok((None, None));
        };
        let mut log = up.log.clone();
        let entries =
            log.try_get_log_entries(index..=index)
                .await
                .map_err(|e| ClusterError::Raft {
                    id,
                    reason: format!("reading log entry {index}: {e}"),
                })?;
        // An index at or below the last purged one, or covered by the snapshot, is in the
        // state only: installing a snapshot also drops the entries it covers that conflict.
        // The store's own purge mark is read as well as the metrics: Raft publishes its
        // metrics after the store has purged, so right after a purge they lag behind.
        let stored_purge = up.log.last_purged_index();
        let covered = self.metrics(id).and_then(|m| {
            let purged = m.purged.map(|p| p.index);
            let snapshot = m.snapshot.map(|s| s.index);
            purged.max(snapshot)
        });
        let covered = covered.max(stored_purge);
        Ok((entries.into_iter().next(), covered))
    }

    /// The replicas that say they lead now, with their terms (a cut-off old leader may still
    /// say so next to the new one).
    pub fn leaders(&self) -> Vec<(NodeId, u64)> {
        self.up_ids()
            .into_iter()
            .filter_map(|id| {
                let m = self.metrics(id)?;
                (m.state == ServerState::Leader).then_some((id, m.current_term))
            })
            .collect()
    }

    /// Waits until one of `among` leads with a term no other replica of `among` has passed,
    /// polling in virtual time.
    pub async fn wait_for_leader(
        &self,
        among: &[NodeId],
        within: Duration,
    ) -> Result<NodeId, ClusterError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let top_term = (among.iter())
                .filter_map(|id| self.metrics(*id))
                .map(|m| m.current_term)
                .max();
            let leader = (self.leaders().into_iter())
                .find(|(id, term)| among.contains(id) && Some(*term) == top_term);
            if let Some((id, _)) = leader {
                return Ok(id);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError::Timeout {
                    what: format!("a leader among replicas {among:?}"),
                    within,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Submits `command` to replica `id` and waits at most `within` for it to be committed.
    pub async fn write(&self, id: NodeId, command: Command, within: Duration) -> WriteOutcome {
        let Some(raft) = self.raft(id) else {
            return WriteOutcome::Failed(format!("replica {id} is down"));
        };
        match tokio::time::timeout(within, raft.client_write(command)).await {
            Err(_) => WriteOutcome::TimedOut,
            Ok(Ok(reply)) => WriteOutcome::Acked {
                log_id: reply.log_id,
                response: reply.data,
            },
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                WriteOutcome::NotLeader(f.leader_id)
            }
            Ok(Err(e)) => WriteOutcome::Failed(e.to_string()),
        }
    }

    /// Writes `command` through whoever leads, retrying on another replica while none does or
    /// the write times out, for at most `within`. A retried write may have been committed by
    /// an earlier attempt, so it should be one that is refused or harmless when done twice.
    pub async fn write_to_leader(&self, command: Command, within: Duration) -> WriteOutcome {
        let deadline = tokio::time::Instant::now() + within;
        let mut last = WriteOutcome::TimedOut;
        while tokio::time::Instant::now() < deadline {
            let target = (self.leaders().into_iter())
                .max_by_key(|(_, term)| *term)
                .map(|(id, _)| id);
            if let Some(id) = target {
                let left = deadline - tokio::time::Instant::now();
                last = self
                    .write(id, command.clone(), left.min(Duration::from_secs(1)))
                    .await;
                if last.is_acked() {
                    return last;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        last
    }

    /// Waits until every replica that is up has applied the same last log id as the leader
    /// committed, with equal routing states.
    pub async fn wait_converged(&self, within: Duration) -> Result<(), ClusterError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let ups = self.up_ids();
            let applied: Vec<_> = (ups.iter())
                .filter_map(|id| self.metrics(*id))
                .map(|m| m.last_applied)
                .collect();
            let states: Vec<_> = ups.iter().filter_map(|id| self.state(*id)).collect();
            let leader_committed = (self.leaders().into_iter())
                .max_by_key(|(_, t)| *t)
                .and_then(|(id, _)| self.metrics(id))
                .and_then(|m| m.cluster_committed);
            let same_applied = applied.windows(2).all(|w| w[0] == w[1]);
            let same_state = states.windows(2).all(|w| w[0] == w[1]);
            if leader_committed.is_some()
                && same_applied
                && same_state
                && applied.first().copied().flatten() == leader_committed
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError::Timeout {
                    what: format!(
                        "replicas {ups:?} converging (applied {applied:?}, leader committed {leader_committed:?})"
                    ),
                    within,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Crashes replica `id`: off the network, Raft stopped, store closed (files kept).
    pub async fn crash(&mut self, id: NodeId) {
        self.router.unregister(id);
        let Some(up) = self.replicas.get_mut(&id).and_then(|r| r.up.take()) else {
            return;
        };
        let Up { raft, state, log } = up;
        let _ = raft.shutdown().await;
        drop((raft, state, log));
    }

    /// Starts replica `id` on its store (a fresh one the first time), and puts it on the
    /// network. Does nothing if it is up.
    pub async fn restart(&mut self, id: NodeId) -> Result<(), ClusterError> {
        let Some(replica) = self.replicas.get(&id) else {
            return Err(ClusterError::Raft {
                id,
                reason: "no such replica".into(),
            });
        };
        if replica.up.is_some() {
            return Ok(());
        }
        let path = replica.path.clone();
        let store_config = StoreConfig {
            cache_bytes: 4 * 1024 * 1024,
            ..StoreConfig::default()
        };
        // Opening blocks; on the blocking pool it also holds a paused clock still. The
        // previous run's store may still be closing: retry while the file is busy.
        let (log, sm) = loop {
            let (path, config) = (path.clone(), store_config.clone());
            let opened = tokio::task::spawn_blocking(move || store::open(&path, &config))
                .await
                .map_err(|e| ClusterError::Raft {
                    id,
                    reason: format!("opening the store panicked: {e}"),
                })?;
            match opened {
                Ok(halves) => break halves,
                Err(e) if e.is_retryable() => tokio::task::yield_now().await,
                Err(e) => return Err(e.into()),
            }
        };
        let mut log = SimLogStore::new(log);
        let reader = {
            use openraft::storage::RaftLogStorage;
            log.get_log_reader().await
        };
        let sm = SimStateMachine::new(sm);
        let state = sm.state_handle();
        let raft = SimRaft::new(
            id,
            Arc::clone(&self.raft_config),
            self.router.network(id),
            log,
            sm,
        )
        .await
        .map_err(|e| ClusterError::Raft {
            id,
            reason: e.to_string(),
        })?;
        self.router.register(id, raft.clone());
        if let Some(replica) = self.replicas.get_mut(&id) {
            replica.up = Some(Up {
                raft,
                state,
                log: reader,
            });
        }
        Ok(())
    }

    /// Stops every replica.
    pub async fn shutdown(&mut self) {
        for id in self.ids() {
            self.crash(id).await;
        }
    }
}
