//! The router actor: owner of the site's [`Engine`] and supervisor of the agent shards.
//!
//! Every contact and agent message funnels through here, so routing decisions are made
//! by one owner of the matching index without locks. The handler is thin: it calls the
//! engine, then [`RouterState::flush`] publishes the engine's events, delivers its
//! effects to agent shards and re-arms the timer for the engine's next deadline.
//!
//! Supervision: an agent shard that panics is restarted with its agents and the contacts
//! they held in conversation or wrap-up; the offers they held go back to their places in
//! line. The router itself is supervised by the site ([`crate::site`]): after each
//! message it applies the engine's journal operations to the [`Journal`] and publishes
//! the message's events, and a new router rebuilds everything from the journal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hotline_core::contact::DeclineReason;
use hotline_core::event::EventSink;
use hotline_core::ids::{AgentId, ContactId, QueueId, SiteId, TenantId, TraceId};
use hotline_core::time::{Clock, Timestamp};
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::agent::{AgentEndpoint, AgentLink, AgentShard, RestoredAgent, ShardArgs, ShardMsg};
use crate::config::SiteConfig;
use crate::engine::{
    Arrival, Availability, Effect, Engine, Reservation, ReserveRefusal, SiteSnapshot,
    TransferContact, TransferRefusal,
};
use crate::error::AcdError;
use crate::ids::IdSource;
use crate::journal::{Journal, JournaledContact};
use crate::session::{AgentProfile, AgentSession};

type Reply<T> = Option<RpcReplyPort<Result<T, AcdError>>>;

/// What the router handles for cross-site overflow; see `engine/remote.rs`.
pub enum RemoteMsg {
    /// Origin: hold a waiting contact for a transfer.
    Hold(ContactId, RpcReplyPort<Result<TransferContact, AcdError>>),
    /// Origin: end a hold without a transfer; answers whether the contact is still here.
    Release(ContactId, RpcReplyPort<Result<bool, AcdError>>),
    /// Origin: the target took the contact; answers whether the customer hung up while
    /// it was held.
    TransferOut {
        /// The contact.
        contact: ContactId,
        /// Where it went.
        site: SiteId,
        /// Why it went.
        reason: String,
        /// The answer.
        reply: RpcReplyPort<Result<bool, AcdError>>,
    },
    /// Origin: contacts of a queue waiting at least this long, oldest first.
    Waiting {
        /// The tenant.
        tenant: TenantId,
        /// The queue.
        queue: QueueId,
        /// The least wait.
        min_wait: Duration,
        /// At most this many.
        limit: usize,
        /// The answer.
        reply: RpcReplyPort<Vec<(ContactId, TraceId, Duration)>>,
    },
    /// Target: reserve an agent for a contact waiting elsewhere.
    Reserve {
        /// The tenant.
        tenant: TenantId,
        /// The queue.
        queue: QueueId,
        /// How long the reservation holds.
        ttl: Duration,
        /// The answer.
        reply: RpcReplyPort<Result<Reservation, ReserveRefusal>>,
    },
    /// Target: give a reservation's slot back; answers whether it existed.
    Cancel(u64, RpcReplyPort<bool>),
    /// Target: take a transferred contact under a reservation.
    TransferIn {
        /// The reservation.
        reservation: u64,
        /// The contact.
        contact: TransferContact,
        /// The answer.
        reply: RpcReplyPort<Result<(), TransferRefusal>>,
    },
}

/// What the router handles.
pub enum RouterMsg {
    /// A contact arrives.
    Arrive(Arrival, Reply<()>),
    /// The customer hung up.
    HangUp(ContactId, Reply<()>),
    /// The customer asked for a callback.
    RequestCallback(ContactId, Reply<()>),
    /// A supervisor moves a waiting contact to another queue.
    Move {
        /// The contact.
        contact: ContactId,
        /// The target queue.
        to: QueueId,
        /// Where to send the result.
        reply: Reply<()>,
    },
    /// An agent in conversation transfers the contact to a queue.
    Transfer {
        /// The contact.
        contact: ContactId,
        /// The agent holding it.
        agent: AgentId,
        /// The target queue (same tenant and channel).
        to: QueueId,
        /// Where to send the result.
        reply: Reply<()>,
    },
    /// An agent logs in at this site.
    Login {
        /// The agent.
        agent: AgentId,
        /// Where the agent's offers go.
        endpoint: Arc<dyn AgentEndpoint>,
        /// Go ready right after logging in.
        ready: bool,
        /// A handle on the agent's session.
        reply: RpcReplyPort<Result<AgentLink, AcdError>>,
    },
    /// Looks up a logged-in agent's session.
    Agent(AgentId, RpcReplyPort<Result<AgentLink, AcdError>>),
    /// From a shard: the agent logged out and its session is gone.
    LoggedOut {
        /// The agent's index.
        agent: u32,
    },
    /// From an agent shard: the agent answered.
    Accepted {
        /// The contact.
        contact: ContactId,
        /// The agent's index.
        agent: u32,
    },
    /// From an agent shard: the offer ended without a conversation.
    Declined {
        /// The contact.
        contact: ContactId,
        /// The agent's index.
        agent: u32,
        /// Why.
        reason: DeclineReason,
    },
    /// From an agent shard: the agent ended the conversation.
    Ended {
        /// The contact.
        contact: ContactId,
        /// The agent's index.
        agent: u32,
        /// Wrap-up finished at once too (a queue without wrap-up time): one message
        /// instead of two.
        finished: bool,
    },
    /// From an agent shard: wrap-up finished.
    WrapUpDone {
        /// The contact.
        contact: ContactId,
        /// The agent's index.
        agent: u32,
    },
    /// From an agent shard: presence changed.
    Availability {
        /// The agent's index.
        agent: u32,
        /// The new availability.
        availability: Availability,
    },
    /// Timer: run the engine's due timers.
    Tick,
    /// Several messages from a shard at once (in order).
    Batch(Vec<RouterMsg>),
    /// Self-addressed: send queued effects to the shards. The mailbox is first in, first
    /// out, so under load one flush carries many.
    Flush,
    /// The site as a status page shows it.
    Snapshot(RpcReplyPort<SiteSnapshot>),
    /// The engine's consistency check (tests).
    CheckInvariants(RpcReplyPort<Result<(), String>>),
    /// Cross-site overflow: holds, reservations, transfers (engine/remote.rs).
    Remote(RemoteMsg),
    /// Fault injection for tests and chaos drills: the router panics, as a bug would
    /// make it. The site's supervisor restarts it from the journal.
    InjectPanic,
}

/// What the router starts from.
pub struct RouterArgs {
    /// The site's configuration (validated).
    pub config: SiteConfig,
    /// Where events go.
    pub sink: Arc<dyn EventSink>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Where ids come from.
    pub ids: IdSource,
    /// How many agent shards to run (at least one).
    pub shards: usize,
    /// The journal: restored from at start (empty for a new site), written as it goes.
    pub journal: Arc<Mutex<Journal>>,
}

/// The router's state.
pub struct RouterState {
    engine: Engine,
    profiles: Vec<AgentProfile>,
    /// Per agent: its endpoint while logged in.
    agents: Vec<Option<Arc<dyn AgentEndpoint>>>,
    shards: Vec<ActorRef<ShardMsg>>,
    /// Shard index by actor, for supervision events.
    by_actor: HashMap<ActorId, usize>,
    sink: Arc<dyn EventSink>,
    clock: Arc<dyn Clock>,
    ids: IdSource,
    /// When the pending tick fires, if one is pending.
    tick_at: Option<Timestamp>,
    /// Agent sessions started so far (gives each a distinct id stream).
    sessions: u64,
    effects: Vec<Effect>,
    /// Per shard: messages waiting for the next flush.
    outbox: Vec<Vec<ShardMsg>>,
    /// The time of the message being handled (read once per message or batch).
    now: Timestamp,
    journal: Arc<Mutex<Journal>>,
    /// After a restore: the journal's open contacts under the keys this engine gave
    /// them, filed with the first journal write (under the same lock as the operations
    /// that already name those keys).
    rekey: Option<Vec<(usize, JournaledContact)>>,
    flush_armed: bool,
}

/// The router actor. See the module documentation.
pub struct RouterActor;

impl Actor for RouterActor {
    type Msg = RouterMsg;
    type State = RouterState;
    type Arguments = RouterArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RouterMsg>,
        args: RouterArgs,
    ) -> Result<RouterState, ActorProcessingErr> {
        let mut engine = Engine::new(&args.config, args.ids.fork(0))?;
        engine.keep_journal();
        let profiles = AgentProfile::all(&args.config);
        let now = args.clock.now();
        let mut state = RouterState {
            agents: profiles.iter().map(|_| None).collect(),
            profiles,
            engine,
            shards: Vec::new(),
            by_actor: HashMap::new(),
            sink: args.sink,
            clock: args.clock,
            ids: args.ids,
            tick_at: None,
            sessions: 0,
            effects: Vec::new(),
            outbox: (0..args.shards.max(1)).map(|_| Vec::new()).collect(),
            now,
            flush_armed: false,
            journal: args.journal,
            rekey: None,
        };
        let restored = state.restore(now);
        for (k, agents) in restored.into_iter().enumerate() {
            let shard = state.spawn_shard(&myself, agents).await?;
            state.by_actor.insert(shard.get_id(), k);
            state.shards.push(shard);
        }
        state.journal_new();
        state.flush(&myself);
        Ok(state)
    }

    async fn post_stop(
        &self,
        myself: ActorRef<RouterMsg>,
        _state: &mut RouterState,
    ) -> Result<(), ActorProcessingErr> {
        myself.stop_children(Some("router stopped".into()));
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<RouterMsg>,
        msg: RouterMsg,
        state: &mut RouterState,
    ) -> Result<(), ActorProcessingErr> {
        state.now = state.clock.now();
        state.handle(&myself, msg);
        state.journal_new();
        state.flush(&myself);
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RouterMsg>,
        evt: SupervisionEvent,
        state: &mut RouterState,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(cell, err) = evt
            && let Some(k) = state.by_actor.remove(&cell.get_id())
        {
            tracing::warn!(shard = k, error = %err, "agent shard failed; restarting it with its agents");
            state.restart(&myself, k).await?;
            state.flush(&myself);
        }
        Ok(())
    }
}

// === impl RouterState ===

impl RouterState {
    /// Applies the engine's new journal operations and publishes its new events,
    /// together, after each message: a router that panics while handling a message has
    /// done neither for it, so the log never misses what the journal has (nor the
    /// reverse). A message that changed nothing the journal keeps takes no lock.
    fn journal_new(&mut self) {
        let ops = self.engine.journal_ops();
        if !ops.is_empty() || self.rekey.is_some() {
            let mut j = lock(&self.journal);
            if let Some(restored) = self.rekey.take() {
                j.rekey(restored);
            }
            j.apply(ops);
            drop(j);
            self.engine.clear_journal_ops();
        }
        let events = self.engine.events();
        if !events.is_empty() {
            self.sink.publish(events);
            self.engine.clear_events();
        }
    }

    /// Rebuilds the site from the journal (a no-op for a new site): agents' presence,
    /// then open contacts in arrival order, then matching. Returns, per shard, the agents
    /// to restore with the contacts they hold.
    fn restore(&mut self, now: Timestamp) -> Vec<Vec<RestoredAgent>> {
        let (agents, contacts) = {
            let j = lock(&self.journal);
            (j.agents(), j.contacts())
        };
        let n = self.outbox.len();
        let mut per_shard: Vec<Vec<RestoredAgent>> = (0..n).map(|_| Vec::new()).collect();
        if agents.is_empty() && contacts.is_empty() {
            return per_shard;
        }
        tracing::warn!(
            agents = agents.len(),
            contacts = contacts.len(),
            "restoring the site from the journal"
        );
        for (ix, a) in &agents {
            let availability = a.availability.clone().unwrap_or(Availability {
                logged_in: true,
                ready: false,
                status: hotline_core::agent::AgentStatus::NotReady("recovered".into()),
            });
            self.engine.set_availability(now, *ix, availability);
            self.agents[*ix as usize] = Some(a.endpoint.clone());
        }
        let mut held: HashMap<u32, Vec<(hotline_core::agent::Slot, std::time::Duration)>> =
            HashMap::new();
        for c in &contacts {
            match self.engine.restore_contact(now, c) {
                Ok(Some((agent, slot, wrap))) => held.entry(agent).or_default().push((slot, wrap)),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(contact = %c.contact, error = %e, "cannot restore contact")
                }
            }
        }
        self.rekey = Some(
            contacts
                .iter()
                .filter_map(|c| Some((self.engine.key_of(c.contact).ok()?, *c)))
                .collect(),
        );
        self.engine.rematch(now);
        for (ix, a) in agents {
            let slots = held.remove(&ix).unwrap_or_default();
            let ready = a.availability.as_ref().is_some_and(|av| av.ready);
            let session = AgentSession::restore(
                self.profiles[ix as usize].clone(),
                self.engine.site().clone(),
                self.next_ids(),
                now,
                ready,
                slots.iter().map(|(s, _)| *s).collect(),
            );
            per_shard[ix as usize % n].push(RestoredAgent {
                session,
                endpoint: a.endpoint,
                restored: slots.into_iter().map(|(s, w)| (s.contact, w)).collect(),
            });
        }
        per_shard
    }

    fn handle(&mut self, myself: &ActorRef<RouterMsg>, msg: RouterMsg) {
        let now = self.now;
        let e = &mut self.engine;
        match msg {
            RouterMsg::Arrive(a, reply) => answer(reply, e.arrive(now, a)),
            RouterMsg::HangUp(c, reply) => answer(reply, e.hang_up(now, c)),
            RouterMsg::RequestCallback(c, reply) => answer(reply, e.request_callback(now, c)),
            RouterMsg::Move { contact, to, reply } => {
                answer(reply, e.move_contact(now, contact, &to, "supervisor"))
            }
            RouterMsg::Transfer {
                contact,
                agent,
                to,
                reply,
            } => answer(
                reply,
                e.agent_index(&agent)
                    .and_then(|ix| e.transfer(now, contact, ix, &to)),
            ),
            RouterMsg::Accepted { contact, agent } => quiet(e.accepted(now, contact, agent)),
            RouterMsg::Declined {
                contact,
                agent,
                reason,
            } => quiet(e.declined(now, contact, agent, reason)),
            RouterMsg::Ended {
                contact,
                agent,
                finished,
            } => {
                quiet(e.ended(now, contact, agent));
                if finished {
                    quiet(e.wrap_up_done(now, contact, agent));
                }
            }
            RouterMsg::WrapUpDone { contact, agent } => quiet(e.wrap_up_done(now, contact, agent)),
            RouterMsg::Availability {
                agent,
                availability,
            } => {
                lock(&self.journal).availability(agent, &availability);
                self.engine.set_availability(now, agent, availability);
            }
            RouterMsg::Tick => {
                self.tick_at = None;
                e.tick(now);
            }
            RouterMsg::Batch(msgs) => {
                for m in msgs {
                    self.handle(myself, m);
                    self.engine.take_effects(&mut self.effects);
                    self.deliver(myself);
                }
            }
            RouterMsg::Flush => {
                self.flush_armed = false;
                for (k, out) in self.outbox.iter_mut().enumerate() {
                    if !out.is_empty()
                        && self.shards[k]
                            .cast(ShardMsg::Batch(std::mem::take(out)))
                            .is_err()
                    {
                        tracing::debug!(shard = k, "batch for a shard that is restarting");
                    }
                }
            }
            RouterMsg::Snapshot(reply) => {
                let _ = reply.send(e.snapshot(now));
            }
            RouterMsg::CheckInvariants(reply) => {
                let _ = reply.send(e.check_invariants());
            }
            RouterMsg::Remote(m) => self.handle_remote(m),
            RouterMsg::InjectPanic => panic!("fault injected into the router (chaos drill)"),
            RouterMsg::Agent(agent, reply) => {
                let r = e.agent_index(&agent).and_then(|ix| {
                    if self.agents[ix as usize].is_some() {
                        Ok(self.link(ix))
                    } else {
                        Err(AcdError::NotLoggedIn(agent))
                    }
                });
                let _ = reply.send(r);
            }
            RouterMsg::Login {
                agent,
                endpoint,
                ready,
                reply,
            } => {
                let r = self.login(agent, endpoint, ready);
                let _ = reply.send(r);
            }
            RouterMsg::LoggedOut { agent } => {
                self.agents[agent as usize] = None;
                lock(&self.journal).logout(agent);
                // Offers already on their way to the shard are refused there; this
                // returns any the engine still counts against the agent.
                e.agent_gone(now, agent);
            }
        }
    }

    fn handle_remote(&mut self, msg: RemoteMsg) {
        let now = self.now;
        let e = &mut self.engine;
        match msg {
            RemoteMsg::Hold(c, reply) => {
                let _ = reply.send(e.hold(now, c));
            }
            RemoteMsg::Release(c, reply) => {
                let _ = reply.send(e.release_hold(now, c));
            }
            RemoteMsg::TransferOut {
                contact,
                site,
                reason,
                reply,
            } => {
                let _ = reply.send(e.transfer_out(now, contact, &site, &reason));
            }
            RemoteMsg::Waiting {
                tenant,
                queue,
                min_wait,
                limit,
                reply,
            } => {
                let _ = reply.send(e.waiting_longer_than(now, &tenant, &queue, min_wait, limit));
            }
            RemoteMsg::Reserve {
                tenant,
                queue,
                ttl,
                reply,
            } => {
                let _ = reply.send(e.reserve(now, &tenant, &queue, ttl));
            }
            RemoteMsg::Cancel(id, reply) => {
                let _ = reply.send(e.cancel_reservation(now, id));
            }
            RemoteMsg::TransferIn {
                reservation,
                contact,
                reply,
            } => {
                let _ = reply.send(e.transfer_in(now, reservation, contact));
            }
        }
    }

    fn link(&self, ix: u32) -> AgentLink {
        let k = ix as usize % self.shards.len();
        AgentLink::new(self.shards[k].clone(), ix)
    }

    fn login(
        &mut self,
        agent: AgentId,
        endpoint: Arc<dyn AgentEndpoint>,
        ready: bool,
    ) -> Result<AgentLink, AcdError> {
        let ix = self.engine.agent_index(&agent)?;
        if self.agents[ix as usize].is_some() {
            return Err(AcdError::AlreadyLoggedIn(agent));
        }
        let session = AgentSession::new(
            self.profiles[ix as usize].clone(),
            self.engine.site().clone(),
            self.next_ids(),
        );
        let link = self.link(ix);
        link.shard_ref()
            .cast(ShardMsg::Login {
                session: Box::new(session),
                endpoint: endpoint.clone(),
                ready,
            })
            .map_err(|_| AcdError::Unavailable("the agent shard is restarting".into()))?;
        lock(&self.journal).login(ix, endpoint.clone());
        self.agents[ix as usize] = Some(endpoint);
        Ok(link)
    }

    /// Replaces failed shard `k`: every agent it held is rebuilt from what the engine
    /// knows (contacts in conversation or wrap-up kept, offers returned to the queue).
    async fn restart(&mut self, myself: &ActorRef<RouterMsg>, k: usize) -> Result<(), AcdError> {
        let now = self.clock.now();
        let n = self.shards.len();
        // Whatever was queued for the failed shard is void: the engine takes its agents'
        // offers back below, and the new shard starts from the engine's view.
        self.outbox[k].clear();
        let members: Vec<u32> = (0..self.agents.len() as u32)
            .filter(|&ix| ix as usize % n == k && self.agents[ix as usize].is_some())
            .collect();
        let recoveries = self.engine.agents_failed(now, &members);
        let mut restored = Vec::new();
        for (ix, recovery) in members.into_iter().zip(recoveries) {
            let endpoint = self.agents[ix as usize].clone().expect("logged in");
            let contacts = recovery
                .slots
                .iter()
                .map(|(s, w)| (s.contact, *w))
                .collect();
            let session = AgentSession::restore(
                self.profiles[ix as usize].clone(),
                self.engine.site().clone(),
                self.next_ids(),
                now,
                recovery.was_ready,
                recovery.slots.into_iter().map(|(s, _)| s).collect(),
            );
            restored.push(RestoredAgent {
                session,
                endpoint,
                restored: contacts,
            });
        }
        let shard = self.spawn_shard(myself, restored).await?;
        self.by_actor.insert(shard.get_id(), k);
        self.shards[k] = shard;
        Ok(())
    }

    async fn spawn_shard(
        &mut self,
        myself: &ActorRef<RouterMsg>,
        agents: Vec<RestoredAgent>,
    ) -> Result<ActorRef<ShardMsg>, AcdError> {
        let args = ShardArgs {
            router: myself.clone(),
            sink: self.sink.clone(),
            clock: self.clock.clone(),
            agents,
            names: self.engine.names(),
        };
        let (shard, _) = Actor::spawn_linked(None, AgentShard, args, myself.get_cell())
            .await
            .map_err(|e| AcdError::Unavailable(format!("cannot start an agent shard: {e}")))?;
        Ok(shard)
    }

    fn next_ids(&mut self) -> IdSource {
        self.sessions += 1;
        self.ids.fork(self.sessions)
    }

    /// Publishes events, delivers effects, re-arms the tick.
    fn flush(&mut self, myself: &ActorRef<RouterMsg>) {
        self.engine.take_effects(&mut self.effects);
        self.deliver(myself);
        if let Some(next) = self.engine.next_deadline()
            && self.tick_at.is_none_or(|t| next < t)
        {
            self.tick_at = Some(next);
            let delay = next.since(self.clock.now());
            myself.send_after(delay, || RouterMsg::Tick);
        }
    }

    /// Queues effects for the agent shards (sent at the next flush, with the events). A
    /// shard that is gone (it failed and is being restarted) loses them; the restart
    /// returns its agents' offers to their places.
    fn deliver(&mut self, myself: &ActorRef<RouterMsg>) {
        let n = self.shards.len();
        for effect in self.effects.drain(..) {
            let (ix, msg) = match effect {
                Effect::Offer(o) => (o.agent_ix, ShardMsg::Offer(o)),
                Effect::Rescind { agent_ix, contact } => (
                    agent_ix,
                    ShardMsg::Rescind {
                        agent: agent_ix,
                        contact,
                    },
                ),
                Effect::CustomerEnded { agent_ix, contact } => (
                    agent_ix,
                    ShardMsg::CustomerEnded {
                        agent: agent_ix,
                        contact,
                    },
                ),
                Effect::Transferred { agent_ix, contact } => (
                    agent_ix,
                    ShardMsg::Transferred {
                        agent: agent_ix,
                        contact,
                    },
                ),
            };
            let k = ix as usize % n;
            if self.flush_armed {
                self.outbox[k].push(msg);
            } else {
                // The first effect after a quiet spell goes at once (no flush hop on
                // an idle site); what follows it before the flush goes in one batch.
                if self.shards[k].cast(msg).is_err() {
                    tracing::debug!(shard = k, "effect for a shard that is restarting");
                }
                self.flush_armed = true;
                let _ = myself.cast(RouterMsg::Flush);
            }
        }
    }
}

fn answer(reply: Reply<()>, r: Result<(), AcdError>) {
    match reply {
        Some(port) => {
            let _ = port.send(r);
        }
        None => quiet(r),
    }
}

fn quiet(r: Result<(), AcdError>) {
    if let Err(e) = r {
        tracing::debug!(error = %e, "stale or refused message");
    }
}

/// Locks the journal; a panic elsewhere while it was held cannot leave it half-written
/// (every method completes or does nothing), so a poisoned lock is still usable.
fn lock(journal: &Mutex<Journal>) -> MutexGuard<'_, Journal> {
    journal.lock().unwrap_or_else(|e| e.into_inner())
}
