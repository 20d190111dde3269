//! An in-memory network between Raft replicas of one process, with faults drawn from a seed.
//!
//! [`Router`] hands each replica a [`RouterNetwork`] (openraft's network factory) whose
//! [`RouterPeer`]s call the target's [`openraft::Raft`] directly. Every message goes through
//! the same gate: a target that is not registered (crashed) or a link that is cut answers
//! [`RPCError::Unreachable`] at once; otherwise the request waits a random delay, may be lost
//! (the sender then times out), is delivered if the link is still up on arrival, and its reply
//! travels back the same way (delay, loss, link checked again). A lost reply is the nasty case
//! on purpose: the target acted, the sender does not know.
//!
//! Delays are `tokio::time::sleep`s, so under a paused clock they cost no real time, and every
//! random draw comes from one generator seeded at [`Router::new`].
//!
//! [`Router::direct`] is the same network without the fault machinery: no timers, no draws,
//! no second look at the link for the reply; a message is one function call to the target's
//! Raft, as in openraft's own `benchmarks/minimal`. `hotline bench raft --network in-process`
//! runs on it to measure the replicas without gRPC. Cuts and crashes still answer
//! [`RPCError::Unreachable`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use openraft::errors::{RPCError, ReplicationClosed, StreamingError, Timeout, Unreachable};
use openraft::network::{RPCOption, RPCTypes, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::storage::RaftStateMachine;
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::store::StateMachineStore;
use crate::typ::{NodeId, SiteNode, TypeConfig};

/// How the links that are up misbehave. The default is a perfect network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkFaults {
    /// Chance that one message (a request or a reply) is lost, from 0 to 1.
    pub loss: f64,
    /// The shortest time a message takes.
    pub min_delay: Duration,
    /// The longest; each message draws between the two.
    pub max_delay: Duration,
}

impl Default for LinkFaults {
    fn default() -> Self {
        Self {
            loss: 0.0,
            min_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        }
    }
}

/// What the router did with the messages so far: to check that a test's faults happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouterStats {
    /// Requests that reached their target.
    pub delivered: u64,
    /// Requests or replies lost on the way (loss, or a link cut while in flight).
    pub lost: u64,
    /// Requests refused at once: target not registered or link cut.
    pub unreachable: u64,
}

/// The whole simulated network: registered replicas, cut links, link faults and the seeded
/// generator. Cheap to clone; every clone is the same network.
pub struct Router<SM = StateMachineStore>
where
    SM: RaftStateMachine<TypeConfig>,
{
    inner: Arc<Mutex<Fabric<SM>>>,
}

struct Fabric<SM>
where
    SM: RaftStateMachine<TypeConfig>,
{
    /// Every draw of a run comes from here, so a seed replays the same faults.
    rng: Pcg64Mcg,
    /// The replicas that are up.
    nodes: BTreeMap<NodeId, openraft::Raft<TypeConfig, SM>>,
    /// Directed links `(from, to)` that carry nothing.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// How the other links behave.
    faults: LinkFaults,
    /// Counters.
    stats: RouterStats,
    /// Made by [`Router::direct`]: messages are plain calls, [`Fabric::faults`] are not drawn.
    direct: bool,
}

/// How one message travels.
enum Route<SM>
where
    SM: RaftStateMachine<TypeConfig>,
{
    /// A direct network's plain call to this target.
    Direct(openraft::Raft<TypeConfig, SM>),
    /// A direct network's target is down or the link is cut.
    Unreachable,
    /// Through the fault gate: [`Router::leg`] decides.
    Gate,
}

/// What the gate decided for one leg of a message.
enum Leg {
    /// Arrives after this delay.
    Arrives(Duration),
    /// Lost after this delay (the sender notices only by timing out).
    Lost,
}

impl<SM> Clone for Router<SM>
where
    SM: RaftStateMachine<TypeConfig>,
{
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<SM> fmt::Debug for Router<SM>
where
    SM: RaftStateMachine<TypeConfig, SnapshotData = Vec<u8>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fabric = self.lock();
        f.debug_struct("Router")
            .field("nodes", &fabric.nodes.keys().collect::<Vec<_>>())
            .field("cut", &fabric.cut)
            .field("faults", &fabric.faults)
            .field("stats", &fabric.stats)
            .finish()
    }
}

impl<SM> Router<SM>
where
    SM: RaftStateMachine<TypeConfig, SnapshotData = Vec<u8>>,
{
    /// A perfect network with no replica yet, whose faults will be drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        Self::with_mode(seed, false)
    }

    /// A network that never delays or loses a message and sets no timers: each request is
    /// one call to the target's Raft, for measuring replicas without a transport. Cuts and
    /// unregistered targets still answer unreachable; [`set_faults`](Self::set_faults) is
    /// refused (it panics), since this network never draws them.
    pub fn direct() -> Self {
        Self::with_mode(0, true)
    }

    fn with_mode(seed: u64, direct: bool) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Fabric {
                rng: Pcg64Mcg::seed_from_u64(seed),
                nodes: BTreeMap::new(),
                cut: BTreeSet::new(),
                faults: LinkFaults::default(),
                stats: RouterStats::default(),
                direct,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Fabric<SM>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The network factory to give replica `id`'s [`openraft::Raft::new`].
    pub fn network(&self, id: NodeId) -> RouterNetwork<SM> {
        RouterNetwork {
            router: self.clone(),
            id,
        }
    }

    /// Makes replica `id` reachable (again, after a restart) through `raft`.
    pub fn register(&self, id: NodeId, raft: openraft::Raft<TypeConfig, SM>) {
        self.lock().nodes.insert(id, raft);
    }

    /// Takes replica `id` off the network, as a crash does: messages to it are unreachable
    /// from now on. Returns its Raft so the caller can shut it down.
    pub fn unregister(&self, id: NodeId) -> Option<openraft::Raft<TypeConfig, SM>> {
        self.lock().nodes.remove(&id)
    }

    /// The replicas registered now.
    pub fn registered(&self) -> Vec<NodeId> {
        self.lock().nodes.keys().copied().collect()
    }

    /// Sets how every link that is up behaves from now on.
    ///
    /// # Panics
    ///
    /// On a [`Router::direct`] network, which never draws faults.
    pub fn set_faults(&self, faults: LinkFaults) {
        let mut fabric = self.lock();
        assert!(
            !fabric.direct,
            "Router::direct carries no link faults; use Router::new(seed)"
        );
        fabric.faults = faults;
    }

    /// How links behave now.
    pub fn faults(&self) -> LinkFaults {
        self.lock().faults
    }

    /// Cuts the directed link `from → to` only: `to` still reaches `from`.
    pub fn cut(&self, from: NodeId, to: NodeId) {
        self.lock().cut.insert((from, to));
    }

    /// Restores the directed link `from → to`.
    pub fn mend(&self, from: NodeId, to: NodeId) {
        self.lock().cut.remove(&(from, to));
    }

    /// Splits the network into `groups`: a replica reaches only the replicas of its own group
    /// (both ways). Replicas in no group are cut from everyone. Replaces earlier cuts.
    pub fn partition(&self, groups: &[&[NodeId]]) {
        let mut fabric = self.lock();
        let all: BTreeSet<NodeId> = (fabric.nodes.keys().copied())
            .chain(groups.iter().flat_map(|g| g.iter().copied()))
            .collect();
        let group_of = |id: NodeId| groups.iter().position(|g| g.contains(&id));
        fabric.cut.clear();
        for &a in &all {
            for &b in &all {
                if a != b && (group_of(a).is_none() || group_of(a) != group_of(b)) {
                    fabric.cut.insert((a, b));
                }
            }
        }
    }

    /// Cuts replica `id` from every other replica, both ways, keeping other cuts.
    pub fn isolate(&self, id: NodeId, peers: impl IntoIterator<Item = NodeId>) {
        let mut fabric = self.lock();
        for peer in peers {
            if peer != id {
                fabric.cut.insert((id, peer));
                fabric.cut.insert((peer, id));
            }
        }
    }

    /// Restores every link (link faults stay as set).
    pub fn heal(&self) {
        self.lock().cut.clear();
    }

    /// Whether a message from `from` to `to` is let through now (ignoring loss).
    pub fn is_linked(&self, from: NodeId, to: NodeId) -> bool {
        from == to || !self.lock().cut.contains(&(from, to))
    }

    /// The replicas among `members` that `id` can exchange messages with both ways now,
    /// itself included: fewer than a majority of `members` means `id` is cut off in a
    /// minority and must not commit anything.
    pub fn reachable_from(&self, id: NodeId, members: &[NodeId]) -> Vec<NodeId> {
        let fabric = self.lock();
        members
            .iter()
            .copied()
            .filter(|&m| {
                m == id || (!fabric.cut.contains(&(id, m)) && !fabric.cut.contains(&(m, id)))
            })
            .collect()
    }

    /// What happened to the messages so far.
    pub fn stats(&self) -> RouterStats {
        self.lock().stats
    }

    /// How a message `from → to` goes: straight to its target on a [`Router::direct`]
    /// network (counted as delivered), or through the gate.
    fn route(&self, from: NodeId, to: NodeId) -> Route<SM> {
        let mut fabric = self.lock();
        if !fabric.direct {
            return Route::Gate;
        }
        match fabric.nodes.get(&to) {
            Some(raft) if !fabric.cut.contains(&(from, to)) => {
                let raft = raft.clone();
                fabric.stats.delivered += 1;
                Route::Direct(raft)
            }
            _ => {
                fabric.stats.unreachable += 1;
                Route::Unreachable
            }
        }
    }

    /// Draws one leg of a message `from → to`: `None` if it cannot even be sent.
    fn leg(&self, from: NodeId, to: NodeId) -> Option<Leg> {
        let mut fabric = self.lock();
        if !fabric.nodes.contains_key(&to) || fabric.cut.contains(&(from, to)) {
            fabric.stats.unreachable += 1;
            return None;
        }
        let LinkFaults {
            loss,
            min_delay,
            max_delay,
        } = fabric.faults;
        let delay = if max_delay > min_delay {
            fabric.rng.random_range(min_delay..=max_delay)
        } else {
            min_delay
        };
        if loss > 0.0 && fabric.rng.random_bool(loss.min(1.0)) {
            fabric.stats.lost += 1;
            return Some(Leg::Lost);
        }
        Some(Leg::Arrives(delay))
    }

    /// The target if the link `from → to` is still up when a message arrives; a link cut or a
    /// target crashed while it was in flight loses it.
    fn arrive(&self, from: NodeId, to: NodeId) -> Option<openraft::Raft<TypeConfig, SM>> {
        let mut fabric = self.lock();
        match fabric.nodes.get(&to) {
            Some(raft) if !fabric.cut.contains(&(from, to)) => {
                let raft = raft.clone();
                fabric.stats.delivered += 1;
                Some(raft)
            }
            _ => {
                fabric.stats.lost += 1;
                None
            }
        }
    }

    /// Whether the reply `to → from` gets back, after its delay.
    async fn reply_arrives(&self, from: NodeId, to: NodeId) -> bool {
        match self.leg(to, from) {
            Some(Leg::Arrives(delay)) => {
                tokio::time::sleep(delay).await;
                // The sender must still be up and reachable to hear it.
                let mut fabric = self.lock();
                let up = fabric.nodes.contains_key(&from) && !fabric.cut.contains(&(to, from));
                if !up {
                    fabric.stats.lost += 1;
                }
                up
            }
            _ => false,
        }
    }
}

/// Why one exchange failed, before it is shaped into the error type of its RPC.
enum Failure {
    /// Refused at once.
    Unreachable(String),
    /// Lost: the sender waited its deadline.
    Timeout(Duration),
    /// The target's Raft answered with an error (it is stopping).
    Target(String),
}

// === impl RouterNetwork ===

/// One replica's side of the [`Router`]: openraft's network factory for that replica.
pub struct RouterNetwork<SM = StateMachineStore>
where
    SM: RaftStateMachine<TypeConfig>,
{
    router: Router<SM>,
    id: NodeId,
}

impl<SM> RaftNetworkFactory<TypeConfig> for RouterNetwork<SM>
where
    SM: RaftStateMachine<TypeConfig, SnapshotData = Vec<u8>>,
{
    type Network = RouterPeer<SM>;

    async fn new_client(&mut self, target: NodeId, _node: &SiteNode) -> RouterPeer<SM> {
        RouterPeer {
            router: self.router.clone(),
            from: self.id,
            to: target,
        }
    }
}

/// Messages from one replica to one target through the [`Router`].
pub struct RouterPeer<SM = StateMachineStore>
where
    SM: RaftStateMachine<TypeConfig>,
{
    router: Router<SM>,
    from: NodeId,
    to: NodeId,
}

impl<SM> RouterPeer<SM>
where
    SM: RaftStateMachine<TypeConfig, SnapshotData = Vec<u8>>,
{
    /// Carries one request and its reply through the gate, within `ttl`.
    async fn exchange<T, E, F, Fut>(&self, ttl: Duration, call: F) -> Result<T, Failure>
    where
        E: fmt::Display,
        F: FnOnce(openraft::Raft<TypeConfig, SM>) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let (from, to) = (self.from, self.to);
        let router = &self.router;
        let unreachable = || {
            Failure::Unreachable(format!(
                "replica {to} is down or the link {from} → {to} is cut"
            ))
        };
        match router.route(from, to) {
            Route::Direct(target) => {
                return call(target)
                    .await
                    .map_err(|e| Failure::Target(format!("replica {to}: {e}")));
            }
            Route::Unreachable => return Err(unreachable()),
            Route::Gate => {}
        }
        let delay = match router.leg(from, to) {
            None => return Err(unreachable()),
            Some(Leg::Lost) => {
                tokio::time::sleep(ttl).await;
                return Err(Failure::Timeout(ttl));
            }
            Some(Leg::Arrives(delay)) => delay,
        };
        let exchange = async {
            tokio::time::sleep(delay).await;
            let Some(target) = router.arrive(from, to) else {
                // Lost in flight: the sender hears nothing until its deadline.
                return std::future::pending().await;
            };
            let reply = call(target)
                .await
                .map_err(|e| Failure::Target(format!("replica {to}: {e}")))?;
            if router.reply_arrives(from, to).await {
                Ok(reply)
            } else {
                // The target acted; its reply is lost, and the sender times out.
                std::future::pending().await
            }
        };
        match tokio::time::timeout(ttl, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Timeout(ttl)),
        }
    }

    fn rpc_error(&self, action: RPCTypes, failure: Failure) -> RPCError<TypeConfig> {
        match failure {
            Failure::Unreachable(why) => RPCError::Unreachable(Unreachable::from_string(why)),
            Failure::Timeout(timeout) => RPCError::Timeout(self.timeout(action, timeout)),
            Failure::Target(why) => RPCError::Unreachable(Unreachable::from_string(why)),
        }
    }

    fn timeout(&self, action: RPCTypes, timeout: Duration) -> Timeout<TypeConfig> {
        Timeout {
            action,
            id: self.from,
            target: self.to,
            timeout,
        }
    }
}

impl<SM> RaftNetworkV2<TypeConfig> for RouterPeer<SM>
where
    SM: RaftStateMachine<TypeConfig, SnapshotData = Vec<u8>>,
{
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.exchange(option.soft_ttl(), |raft| async move {
            raft.append_entries(rpc).await
        })
        .await
        .map_err(|f| self.rpc_error(RPCTypes::AppendEntries, f))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.exchange(
            option.soft_ttl(),
            |raft| async move { raft.vote(rpc).await },
        )
        .await
        .map_err(|f| self.rpc_error(RPCTypes::Vote, f))
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.exchange(
            option.soft_ttl(),
            |raft| async move { raft.pre_vote(rpc).await },
        )
        .await
        .map_err(|f| self.rpc_error(RPCTypes::Vote, f))
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, Vec<u8>>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let send = self.exchange(option.hard_ttl(), |raft| async move {
            raft.install_full_snapshot(vote, snapshot).await
        });
        let result = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            result = send => result,
        };
        result.map_err(|failure| match failure {
            Failure::Unreachable(why) | Failure::Target(why) => {
                StreamingError::Unreachable(Unreachable::from_string(why))
            }
            Failure::Timeout(timeout) => {
                StreamingError::Timeout(self.timeout(RPCTypes::InstallSnapshot, timeout))
            }
        })
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.exchange(option.soft_ttl(), |raft| async move {
            raft.handle_transfer_leader(req).await
        })
        .await
        .map_err(|f| self.rpc_error(RPCTypes::TransferLeader, f))
    }
}
