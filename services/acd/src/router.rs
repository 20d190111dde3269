//! The router actor: owner of the site's [`Engine`] and supervisor of the agent actors.
//!
//! Every contact and agent message funnels through here, so routing decisions are made
//! by one owner of the matching index without locks. The handler is thin: it calls the
//! engine, then [`RouterState::flush`] publishes the engine's events, delivers its
//! effects to agent actors and re-arms the timer for the engine's next deadline.
//!
//! Supervision: an agent actor that panics is restarted with the contacts it held in
//! conversation or wrap-up; the offers it held go back to their places in line.

use std::collections::HashMap;
use std::sync::Arc;

use hotline_core::contact::DeclineReason;
use hotline_core::event::{Event, EventSink};
use hotline_core::ids::{AgentId, ContactId, QueueId};
use hotline_core::time::{Clock, Timestamp};
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use crate::agent::{AgentActor, AgentArgs, AgentEndpoint, AgentMsg};
use crate::config::SiteConfig;
use crate::engine::{Arrival, Availability, Effect, Engine, SiteSnapshot};
use crate::error::AcdError;
use crate::ids::IdSource;
use crate::session::{AgentProfile, AgentSession};

type Reply<T> = Option<RpcReplyPort<Result<T, AcdError>>>;

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
    /// An agent logs in at this site.
    Login {
        /// The agent.
        agent: AgentId,
        /// Where the agent's offers go.
        endpoint: Arc<dyn AgentEndpoint>,
        /// Go ready right after logging in.
        ready: bool,
        /// The new agent actor.
        reply: RpcReplyPort<Result<ActorRef<AgentMsg>, AcdError>>,
    },
    /// Looks up a logged-in agent's actor.
    Agent(AgentId, RpcReplyPort<Result<ActorRef<AgentMsg>, AcdError>>),
    /// From an agent actor: the agent answered.
    Accepted {
        /// The contact.
        contact: ContactId,
        /// The agent's index.
        agent: u32,
    },
    /// From an agent actor: the offer ended without a conversation.
    Declined {
        /// The contact.
        contact: ContactId,
        /// The agent's index.
        agent: u32,
        /// Why.
        reason: DeclineReason,
    },
    /// From an agent actor: the agent ended the conversation.
    Ended {
        /// The contact.
        contact: ContactId,
        /// The agent's index.
        agent: u32,
        /// Wrap-up finished at once too (a queue without wrap-up time): one message
        /// instead of two.
        finished: bool,
    },
    /// From an agent actor: wrap-up finished.
    WrapUpDone {
        /// The contact.
        contact: ContactId,
        /// The agent's index.
        agent: u32,
    },
    /// From an agent actor: presence changed.
    Availability {
        /// The agent's index.
        agent: u32,
        /// The new availability.
        availability: Availability,
    },
    /// Timer: run the engine's due timers.
    Tick,
    /// The site as a status page shows it.
    Snapshot(RpcReplyPort<SiteSnapshot>),
    /// The engine's consistency check (tests).
    CheckInvariants(RpcReplyPort<Result<(), String>>),
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
}

struct AgentEntry {
    actor: ActorRef<AgentMsg>,
    endpoint: Arc<dyn AgentEndpoint>,
}

/// The router's state.
pub struct RouterState {
    engine: Engine,
    profiles: Vec<AgentProfile>,
    agents: Vec<Option<AgentEntry>>,
    by_actor: HashMap<ActorId, u32>,
    sink: Arc<dyn EventSink>,
    clock: Arc<dyn Clock>,
    ids: IdSource,
    /// When the pending tick fires, if one is pending.
    tick_at: Option<Timestamp>,
    /// Agent sessions started so far (gives each a distinct id stream).
    sessions: u64,
    effects: Vec<Effect>,
    events: Vec<Event>,
}

/// The router actor. See the module documentation.
pub struct RouterActor;

impl Actor for RouterActor {
    type Msg = RouterMsg;
    type State = RouterState;
    type Arguments = RouterArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<RouterMsg>,
        args: RouterArgs,
    ) -> Result<RouterState, ActorProcessingErr> {
        let engine = Engine::new(&args.config, args.ids.fork(0))?;
        let profiles = AgentProfile::all(&args.config);
        Ok(RouterState {
            agents: profiles.iter().map(|_| None).collect(),
            profiles,
            engine,
            by_actor: HashMap::new(),
            sink: args.sink,
            clock: args.clock,
            ids: args.ids,
            tick_at: None,
            sessions: 0,
            effects: Vec::new(),
            events: Vec::new(),
        })
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
        let now = state.clock.now();
        let e = &mut state.engine;
        match msg {
            RouterMsg::Arrive(a, reply) => answer(reply, e.arrive(now, a)),
            RouterMsg::HangUp(c, reply) => answer(reply, e.hang_up(now, c)),
            RouterMsg::RequestCallback(c, reply) => answer(reply, e.request_callback(now, c)),
            RouterMsg::Move { contact, to, reply } => {
                answer(reply, e.move_contact(now, contact, &to, "supervisor"))
            }
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
            } => e.set_availability(now, agent, availability),
            RouterMsg::Tick => {
                state.tick_at = None;
                e.tick(now);
            }
            RouterMsg::Snapshot(reply) => {
                let _ = reply.send(e.snapshot(now));
            }
            RouterMsg::CheckInvariants(reply) => {
                let _ = reply.send(e.check_invariants());
            }
            RouterMsg::Agent(agent, reply) => {
                let r = e.agent_index(&agent).and_then(|ix| {
                    state.agents[ix as usize]
                        .as_ref()
                        .map(|a| a.actor.clone())
                        .ok_or(AcdError::NotLoggedIn(agent))
                });
                let _ = reply.send(r);
            }
            RouterMsg::Login {
                agent,
                endpoint,
                ready,
                reply,
            } => {
                let r = state.login(&myself, agent, endpoint, ready).await;
                let _ = reply.send(r);
            }
        }
        state.flush(&myself);
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<RouterMsg>,
        evt: SupervisionEvent,
        state: &mut RouterState,
    ) -> Result<(), ActorProcessingErr> {
        match evt {
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                if let Some(ix) = state.by_actor.remove(&cell.get_id()) {
                    state.agents[ix as usize] = None;
                    // Offers that reached the actor after it began logging out are
                    // lost with its mailbox; return them to their places.
                    let now = state.clock.now();
                    state.engine.agent_gone(now, ix);
                    state.flush(&myself);
                }
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                if let Some(ix) = state.by_actor.remove(&cell.get_id()) {
                    tracing::warn!(agent = %state.profiles[ix as usize].id, error = %err, "agent actor failed; restarting");
                    state.restart(&myself, ix).await?;
                    state.flush(&myself);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

// === impl RouterState ===

impl RouterState {
    async fn login(
        &mut self,
        myself: &ActorRef<RouterMsg>,
        agent: AgentId,
        endpoint: Arc<dyn AgentEndpoint>,
        ready: bool,
    ) -> Result<ActorRef<AgentMsg>, AcdError> {
        let ix = self.engine.agent_index(&agent)?;
        if self.agents[ix as usize].is_some() {
            return Err(AcdError::AlreadyLoggedIn(agent));
        }
        let session = AgentSession::new(
            self.profiles[ix as usize].clone(),
            self.engine.site().clone(),
            self.next_ids(),
        );
        self.spawn(myself, ix, session, Some(ready), Vec::new(), endpoint)
            .await
    }

    async fn restart(&mut self, myself: &ActorRef<RouterMsg>, ix: u32) -> Result<(), AcdError> {
        let Some(entry) = self.agents[ix as usize].take() else {
            return Ok(());
        };
        let now = self.clock.now();
        let recovery = self.engine.agent_failed(now, ix);
        let restored = recovery
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
        self.spawn(myself, ix, session, None, restored, entry.endpoint)
            .await
            .map(|_| ())
    }

    async fn spawn(
        &mut self,
        myself: &ActorRef<RouterMsg>,
        ix: u32,
        session: AgentSession,
        login: Option<bool>,
        restored: Vec<(ContactId, std::time::Duration)>,
        endpoint: Arc<dyn AgentEndpoint>,
    ) -> Result<ActorRef<AgentMsg>, AcdError> {
        let args = AgentArgs {
            session,
            login,
            restored,
            router: myself.clone(),
            endpoint: endpoint.clone(),
            sink: self.sink.clone(),
            clock: self.clock.clone(),
        };
        let (actor, _) = Actor::spawn_linked(None, AgentActor, args, myself.get_cell())
            .await
            .map_err(|e| AcdError::Unavailable(format!("cannot start agent actor: {e}")))?;
        self.by_actor.insert(actor.get_id(), ix);
        self.agents[ix as usize] = Some(AgentEntry {
            actor: actor.clone(),
            endpoint,
        });
        Ok(actor)
    }

    fn next_ids(&mut self) -> IdSource {
        self.sessions += 1;
        self.ids.fork(self.sessions)
    }

    /// Publishes events, delivers effects, re-arms the tick.
    fn flush(&mut self, myself: &ActorRef<RouterMsg>) {
        self.engine.take_output(&mut self.effects, &mut self.events);
        while !self.effects.is_empty() {
            self.deliver();
            self.engine.take_output(&mut self.effects, &mut self.events);
        }
        if !self.events.is_empty() {
            self.sink.publish(&self.events);
            self.events.clear();
        }
        if let Some(next) = self.engine.next_deadline()
            && self.tick_at.is_none_or(|t| next < t)
        {
            self.tick_at = Some(next);
            let delay = next.since(self.clock.now());
            myself.send_after(delay, || RouterMsg::Tick);
        }
    }

    /// Sends effects to agent actors. An agent without a live actor cannot take an
    /// offer: it is marked gone, so its offers go back to their places (producing more
    /// effects, which the caller delivers in turn).
    fn deliver(&mut self) {
        let mut gone = Vec::new();
        for effect in self.effects.drain(..) {
            let (ix, msg) = match effect {
                Effect::Offer(o) => (o.agent_ix, AgentMsg::Offer(o)),
                Effect::Rescind { agent_ix, contact } => (agent_ix, AgentMsg::Rescind(contact)),
                Effect::CustomerEnded { agent_ix, contact } => {
                    (agent_ix, AgentMsg::CustomerEnded(contact))
                }
            };
            let delivered = self.agents[ix as usize]
                .as_ref()
                .is_some_and(|a| a.actor.cast(msg).is_ok());
            if !delivered && !gone.contains(&ix) {
                tracing::debug!(agent = ix, "effect for an agent without an actor");
                gone.push(ix);
            }
        }
        let now = self.clock.now();
        for ix in gone {
            if self.agents[ix as usize].is_none() {
                self.engine.agent_gone(now, ix);
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
