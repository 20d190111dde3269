//! Agent shards: the actors that own agents' sessions and their timers.
//!
//! Each logged-in agent's session (presence, slots, missed offers) and its ring and
//! wrap-up deadlines live in exactly one [`AgentShard`] actor, chosen by the agent's
//! index. A shard receives offers from the router, rings the agent's endpoint (a desk, a
//! phone, a simulated agent), runs the deadlines, and tells the router what the agent
//! did. It is the authority on its agents: an offer an agent cannot take (it just went
//! not ready, say) is refused and the contact returns to its place.
//!
//! Why shards and not one actor per agent: a ractor actor costs a task and two
//! unbounded mailboxes (~8 KiB idle) and a wake-up per message; an agent in a shard
//! costs its session (~0.5 KiB), and a busy shard drains its mailbox without parking.
//! Order per agent still holds: one agent's messages all go through one mailbox.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use hotline_core::agent::{AgentStatus, AgentTransition, NotReadyReason, Slot, SlotPhase};
use hotline_core::contact::DeclineReason;
use hotline_core::event::{AgentEventKind, Event, EventBody, EventSink};
use hotline_core::ids::ContactId;
use hotline_core::time::Clock;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rustc_hash::FxHashMap;
use serde::Serialize;
use tokio::time::Instant;

use crate::engine::{Names, Offer, OfferOrder};
use crate::error::AcdError;
use crate::router::RouterMsg;
use crate::session::AgentSession;

/// An optional reply port: endpoints may fire and forget, people's requests get answers.
pub type Reply<T> = Option<RpcReplyPort<Result<T, AcdError>>>;

/// How long a request waits for a shard before reporting it unavailable.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How offers and news reach the person (or program) behind an agent. Calls must return
/// quickly; an endpoint answers later through the [`AgentLink`] it is given.
pub trait AgentEndpoint: Send + Sync + 'static {
    /// A contact is offered; answer with [`AgentCmd::Answer`] before the ring time ends.
    fn offered(&self, agent: &AgentLink, offer: &Offer);
    /// An offer was withdrawn (the customer hung up, or it rang out).
    fn rescinded(&self, _agent: &AgentLink, _contact: ContactId) {}
    /// The customer ended the conversation; wrap-up has begun.
    fn customer_ended(&self, _agent: &AgentLink, _contact: ContactId) {}
    /// The agent's state changed (also called when a session starts or is restored).
    fn status_changed(&self, _agent: &AgentLink, _status: &AgentStatus) {}
}

/// What an agent (through its desk, phone or a program) asks of its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentCmd {
    /// Accept (true) or reject (false) an offer.
    Answer {
        /// The contact offered.
        contact: ContactId,
        /// Accept or reject.
        accept: bool,
    },
    /// End the conversation; wrap-up begins.
    End(ContactId),
    /// End wrap-up early.
    FinishWrapUp(ContactId),
    /// Extend wrap-up by some seconds.
    ExtendWrapUp {
        /// The contact.
        contact: ContactId,
        /// Seconds to add.
        secs: u32,
    },
    /// Take contacts.
    GoReady,
    /// Stop taking new contacts.
    GoNotReady(NotReadyReason),
    /// Log out (refused while a contact is in conversation or wrap-up).
    LogOut,
}

/// What a shard handles.
pub enum ShardMsg {
    /// From the router: a new session for a logging-in agent.
    Login {
        /// The session, logged out; the shard logs it in.
        session: Box<AgentSession>,
        /// Where the agent's offers go.
        endpoint: Arc<dyn AgentEndpoint>,
        /// Go ready right after logging in.
        ready: bool,
    },
    /// From the router: offer a contact.
    Offer(OfferOrder),
    /// From the router: withdraw an offer (the customer hung up).
    Rescind {
        /// The agent's index.
        agent: u32,
        /// The contact.
        contact: ContactId,
    },
    /// From the router: the customer ended the conversation.
    CustomerEnded {
        /// The agent's index.
        agent: u32,
        /// The contact.
        contact: ContactId,
    },
    /// From the router: the agent transferred the contact; its wrap-up begins.
    Transferred {
        /// The agent's index.
        agent: u32,
        /// The contact.
        contact: ContactId,
    },
    /// From an agent: a command, answered on `reply` when given.
    Command {
        /// The agent's index.
        agent: u32,
        /// What the agent asks.
        cmd: AgentCmd,
        /// Where to send the result.
        reply: Reply<()>,
    },
    /// An agent's view of itself.
    View {
        /// The agent's index.
        agent: u32,
        /// Where to send it.
        reply: RpcReplyPort<Result<AgentView, AcdError>>,
    },
    /// Timer: some deadline may have passed.
    Tick,
    /// Several messages from the router at once (in order).
    Batch(Vec<ShardMsg>),
    /// Self-addressed: send what this shard has queued for the router. Because the
    /// mailbox is first in, first out, everything already waiting is handled before this,
    /// so under load one batch carries many messages.
    Flush,
    /// Fault injection for tests and chaos drills: the shard panics, as a bug would make
    /// it. The router restarts it with its agents and no contact is lost.
    InjectPanic,
}

/// A handle on one agent: its shard and its index. Cheap to clone.
#[derive(Clone)]
pub struct AgentLink {
    shard: ActorRef<ShardMsg>,
    agent: u32,
}

impl AgentLink {
    pub(crate) fn new(shard: ActorRef<ShardMsg>, agent: u32) -> Self {
        Self { shard, agent }
    }

    /// The agent's index at its site.
    pub fn agent_index(&self) -> u32 {
        self.agent
    }

    pub(crate) fn shard_ref(&self) -> &ActorRef<ShardMsg> {
        &self.shard
    }

    /// Sends a command without waiting for its result (refusals are logged).
    pub fn send(&self, cmd: AgentCmd) {
        let _ = self.shard.cast(ShardMsg::Command {
            agent: self.agent,
            cmd,
            reply: None,
        });
    }

    /// Sends a command and waits for its result.
    pub async fn ask(&self, cmd: AgentCmd) -> Result<(), AcdError> {
        let agent = self.agent;
        match self
            .shard
            .call(
                |reply| ShardMsg::Command {
                    agent,
                    cmd,
                    reply: Some(reply),
                },
                Some(CALL_TIMEOUT),
            )
            .await
        {
            Ok(CallResult::Success(r)) => r,
            _ => Err(AcdError::Unavailable(
                "the agent's session is restarting".into(),
            )),
        }
    }

    /// The agent's own view.
    pub async fn view(&self) -> Result<AgentView, AcdError> {
        let agent = self.agent;
        match self
            .shard
            .call(|reply| ShardMsg::View { agent, reply }, Some(CALL_TIMEOUT))
            .await
        {
            Ok(CallResult::Success(r)) => r,
            _ => Err(AcdError::Unavailable(
                "the agent's session is restarting".into(),
            )),
        }
    }

    /// Fault injection: panics the agent's shard (tests and chaos drills).
    pub fn inject_panic(&self) {
        let _ = self.shard.cast(ShardMsg::InjectPanic);
    }
}

/// An agent as its own desk sees it.
#[derive(Debug, Clone, Serialize)]
pub struct AgentView {
    /// The state people see.
    pub status: AgentStatus,
    /// Contacts held.
    pub slots: Vec<Slot>,
    /// Offers missed in a row.
    pub missed_in_row: u32,
}

/// An agent a new shard starts with (after the previous one failed).
pub struct RestoredAgent {
    /// The restored session.
    pub session: AgentSession,
    /// Where its offers go.
    pub endpoint: Arc<dyn AgentEndpoint>,
    /// Its contacts with their wrap-up times.
    pub restored: Vec<(ContactId, Duration)>,
}

/// What the router hands a new shard.
pub struct ShardArgs {
    /// The router, to report to.
    pub router: ActorRef<RouterMsg>,
    /// Where agent events go.
    pub sink: Arc<dyn EventSink>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Agents restored from a failed shard (empty for a fresh one).
    pub agents: Vec<RestoredAgent>,
    /// Tenant and queue ids, this shard's own copies.
    pub names: Names,
}

/// A deadline running for a held contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deadline {
    /// Ringing until then.
    Ring(Instant),
    /// Wrapping up until then.
    WrapUp(Instant),
}

impl Deadline {
    fn at(self) -> Instant {
        match self {
            Deadline::Ring(t) | Deadline::WrapUp(t) => t,
        }
    }
}

/// A contact an agent holds.
#[derive(Debug, Clone, Copy)]
struct Held {
    wrap_up: Duration,
    deadline: Option<Deadline>,
}

/// The few contacts one agent holds (at most its capacity): a vector beats a hash map.
#[derive(Debug, Default)]
struct HeldSet(Vec<(ContactId, Held)>);

impl HeldSet {
    fn get(&self, c: &ContactId) -> Option<&Held> {
        self.0.iter().find(|(k, _)| k == c).map(|(_, h)| h)
    }

    fn get_mut(&mut self, c: &ContactId) -> Option<&mut Held> {
        self.0.iter_mut().find(|(k, _)| k == c).map(|(_, h)| h)
    }

    fn insert(&mut self, c: ContactId, h: Held) {
        match self.get_mut(&c) {
            Some(old) => *old = h,
            None => self.0.push((c, h)),
        }
    }

    fn remove(&mut self, c: &ContactId) -> Option<Held> {
        let i = self.0.iter().position(|(k, _)| k == c)?;
        Some(self.0.swap_remove(i).1)
    }
}

/// One agent inside a shard.
struct AgentEntry {
    session: AgentSession,
    endpoint: Arc<dyn AgentEndpoint>,
    held: HeldSet,
    last_status: AgentStatus,
}

/// A shard's state.
pub struct ShardState {
    /// Boxed: a hash map keeps up to twice as many slots as entries, and an entry is a
    /// few hundred bytes.
    agents: FxHashMap<u32, Box<AgentEntry>>,
    router: ActorRef<RouterMsg>,
    sink: Arc<dyn EventSink>,
    clock: Arc<dyn Clock>,
    /// Every running deadline, for the next tick.
    deadlines: BTreeSet<(Instant, u32, ContactId)>,
    /// When the pending tick fires.
    tick_at: Option<Instant>,
    /// The time of the message being handled (read once per message or batch).
    now: hotline_core::time::Timestamp,
    /// The same moment on tokio's clock, for deadlines.
    instant: Instant,
    /// Tenant and queue ids for building offers.
    names: Names,
    /// Messages for the router and events for the sink, sent at the next flush.
    outbox: Vec<RouterMsg>,
    /// Sessions append their events here as they happen (see `AgentSession::apply_into`).
    pending_events: Vec<Event>,
    /// How many of `pending_events` a report has already looked at: the rest are the
    /// agent's being reported (every transition is reported before another agent's).
    reported: usize,
    flush_armed: bool,
    me: ActorRef<ShardMsg>,
}

/// The agent shard actor. See the module documentation.
pub struct AgentShard;

impl Actor for AgentShard {
    type Msg = ShardMsg;
    type State = ShardState;
    type Arguments = ShardArgs;

    /// A shard that stops (the site stopping) publishes the events still waiting for
    /// the next flush — the last logouts among them — rather than dropping them with
    /// the flush message still in its mailbox.
    async fn post_stop(
        &self,
        _myself: ActorRef<ShardMsg>,
        state: &mut ShardState,
    ) -> Result<(), ActorProcessingErr> {
        if !state.pending_events.is_empty() {
            state.sink.publish(&state.pending_events);
            state.pending_events.clear();
        }
        Ok(())
    }

    async fn pre_start(
        &self,
        myself: ActorRef<ShardMsg>,
        args: ShardArgs,
    ) -> Result<ShardState, ActorProcessingErr> {
        let now = args.clock.now();
        let mut state = ShardState {
            agents: FxHashMap::default(),
            router: args.router,
            sink: args.sink,
            clock: args.clock,
            deadlines: BTreeSet::new(),
            tick_at: None,
            now,
            instant: Instant::now(),
            names: args.names,
            outbox: Vec::new(),
            pending_events: Vec::new(),
            reported: 0,
            flush_armed: false,
            me: myself.clone(),
        };
        for r in args.agents {
            let ix = r.session.profile().ix;
            let slots = r.session.machine().slots().to_vec();
            let mut entry = AgentEntry {
                last_status: r.session.status(),
                session: r.session,
                endpoint: r.endpoint,
                held: HeldSet::default(),
            };
            for (contact, wrap_up) in r.restored {
                entry.held.insert(
                    contact,
                    Held {
                        wrap_up,
                        deadline: None,
                    },
                );
            }
            state.agents.insert(ix, Box::new(entry));
            for s in slots.iter().filter(|s| s.phase == SlotPhase::WrapUp) {
                state.start_wrap_up(ix, s.contact, true);
            }
            state.report(&myself, ix, true);
        }
        state.arm(&myself);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<ShardMsg>,
        msg: ShardMsg,
        state: &mut ShardState,
    ) -> Result<(), ActorProcessingErr> {
        state.now = state.clock.now();
        state.instant = Instant::now();
        state.handle(&myself, msg);
        state.arm(&myself);
        Ok(())
    }
}

// === impl ShardState ===

impl ShardState {
    fn handle(&mut self, myself: &ActorRef<ShardMsg>, msg: ShardMsg) {
        match msg {
            ShardMsg::Login {
                session,
                endpoint,
                ready,
            } => {
                let ix = session.profile().ix;
                let now = self.now;
                let mut session = *session;
                let login = session.apply(now, &AgentTransition::LogIn);
                if ready && login.is_ok() {
                    let _ = session.apply(now, &AgentTransition::GoReady);
                }
                self.agents.insert(
                    ix,
                    Box::new(AgentEntry {
                        last_status: session.status(),
                        session,
                        endpoint,
                        held: HeldSet::default(),
                    }),
                );
                self.report(myself, ix, true);
            }
            ShardMsg::Offer(order) => self.offer(myself, order),
            ShardMsg::Rescind { agent, contact } => {
                if self
                    .apply(agent, &AgentTransition::Rescind(contact))
                    .is_ok()
                {
                    self.clear(agent, contact);
                    self.notify(myself, agent, |e, link| e.rescinded(link, contact));
                }
                self.report(myself, agent, false);
            }
            ShardMsg::CustomerEnded { agent, contact } => {
                if self.apply(agent, &AgentTransition::End(contact)).is_ok() {
                    self.notify(myself, agent, |e, link| e.customer_ended(link, contact));
                    self.start_wrap_up(agent, contact, true);
                }
                self.report(myself, agent, false);
            }
            ShardMsg::Transferred { agent, contact } => {
                // Refused only if the agent ended the conversation meanwhile: its
                // wrap-up runs already.
                if self.apply(agent, &AgentTransition::End(contact)).is_ok() {
                    self.start_wrap_up(agent, contact, true);
                }
                self.report(myself, agent, false);
            }
            ShardMsg::Command { agent, cmd, reply } => {
                let r = self.command(myself, agent, cmd);
                match reply {
                    Some(port) => {
                        let _ = port.send(r);
                    }
                    None => {
                        if let Err(e) = r {
                            tracing::debug!(error = %e, "agent command refused");
                        }
                    }
                }
                self.report(myself, agent, false);
            }
            ShardMsg::View { agent, reply } => {
                let r = self.agents.get(&agent).map_or_else(
                    || Err(self.not_logged_in(agent)),
                    |e| {
                        let m = e.session.machine();
                        Ok(AgentView {
                            status: m.status(),
                            slots: m.slots().to_vec(),
                            missed_in_row: m.missed_in_row(),
                        })
                    },
                );
                let _ = reply.send(r);
            }
            ShardMsg::Tick => {
                self.tick_at = None;
                self.expire(myself);
            }
            ShardMsg::Batch(msgs) => {
                for m in msgs {
                    self.handle(myself, m);
                }
            }
            ShardMsg::Flush => {
                self.flush_armed = false;
                if !self.pending_events.is_empty() {
                    self.sink.publish(&self.pending_events);
                    self.pending_events.clear();
                }
                self.reported = 0;
                if !self.outbox.is_empty()
                    && self
                        .router
                        .cast(RouterMsg::Batch(std::mem::take(&mut self.outbox)))
                        .is_err()
                {
                    tracing::warn!("router gone; messages dropped");
                }
            }
            ShardMsg::InjectPanic => panic!("fault injected into an agent shard (chaos drill)"),
        }
    }

    fn not_logged_in(&self, agent: u32) -> AcdError {
        AcdError::Unavailable(format!("agent #{agent} is not logged in at this shard"))
    }

    fn apply(&mut self, agent: u32, t: &AgentTransition) -> Result<(), AcdError> {
        let now = self.now;
        match self.agents.get_mut(&agent) {
            Some(e) => e
                .session
                .apply_into(now, t, &mut self.pending_events)
                .map(|_| ()),
            None => Err(self.not_logged_in(agent)),
        }
    }

    fn offer(&mut self, myself: &ActorRef<ShardMsg>, order: OfferOrder) {
        let agent = order.agent_ix;
        let t = AgentTransition::Offer(order.contact, order.channel);
        match self.apply(agent, &t) {
            Ok(()) => {
                let deadline = Deadline::Ring(self.instant + order.no_answer);
                self.set(agent, order.contact, order.wrap_up, Some(deadline));
                if let Some(e) = self.agents.get(&agent) {
                    let offer = self.names.offer(&order, e.session.profile().id.clone());
                    e.endpoint
                        .offered(&AgentLink::new(myself.clone(), agent), &offer);
                }
            }
            Err(e) => {
                tracing::debug!(agent, error = %e, "offer refused");
                self.tell(RouterMsg::Declined {
                    contact: order.contact,
                    agent,
                    reason: DeclineReason::Refused,
                });
            }
        }
        self.report(myself, agent, false);
    }

    fn command(
        &mut self,
        myself: &ActorRef<ShardMsg>,
        agent: u32,
        cmd: AgentCmd,
    ) -> Result<(), AcdError> {
        match cmd {
            AgentCmd::Answer { contact, accept } => {
                if accept {
                    self.apply(agent, &AgentTransition::Accept(contact))?;
                    let wrap = self.wrap_of(agent, contact);
                    self.set(agent, contact, wrap, None);
                    self.tell(RouterMsg::Accepted { contact, agent });
                } else {
                    self.apply(agent, &AgentTransition::Reject(contact))?;
                    self.clear(agent, contact);
                    self.tell(RouterMsg::Declined {
                        contact,
                        agent,
                        reason: DeclineReason::Rejected,
                    });
                }
                Ok(())
            }
            AgentCmd::End(contact) => {
                self.apply(agent, &AgentTransition::End(contact))?;
                let finished = self.start_wrap_up(agent, contact, false);
                self.tell(RouterMsg::Ended {
                    contact,
                    agent,
                    finished,
                });
                Ok(())
            }
            AgentCmd::FinishWrapUp(contact) => self.finish_wrap_up(agent, contact, true),
            AgentCmd::ExtendWrapUp { contact, secs } => {
                let held = self
                    .agents
                    .get(&agent)
                    .and_then(|e| e.held.get(&contact).copied());
                match held {
                    Some(Held {
                        wrap_up,
                        deadline: Some(Deadline::WrapUp(t)),
                    }) => {
                        let later = Deadline::WrapUp(t + Duration::from_secs(secs.into()));
                        self.set(agent, contact, wrap_up, Some(later));
                        let now = self.now;
                        if let Some(e) = self.agents.get_mut(&agent) {
                            e.session.note_extension(now, contact, secs);
                        }
                        Ok(())
                    }
                    _ => Err(AcdError::NotYours { contact }),
                }
            }
            AgentCmd::GoReady => self.apply(agent, &AgentTransition::GoReady),
            AgentCmd::GoNotReady(reason) => self.apply(agent, &AgentTransition::GoNotReady(reason)),
            AgentCmd::LogOut => {
                let now = self.now;
                let Some(e) = self.agents.get_mut(&agent) else {
                    return Err(self.not_logged_in(agent));
                };
                let out = e.session.apply(now, &AgentTransition::LogOut)?;
                for contact in out.withdrawn {
                    self.clear(agent, contact);
                    self.notify(myself, agent, |e, link| e.rescinded(link, contact));
                    self.tell(RouterMsg::Declined {
                        contact,
                        agent,
                        reason: DeclineReason::Refused,
                    });
                }
                self.report(myself, agent, false);
                self.agents.remove(&agent);
                self.tell(RouterMsg::LoggedOut { agent });
                Ok(())
            }
        }
    }

    fn wrap_of(&self, agent: u32, contact: ContactId) -> Duration {
        self.agents
            .get(&agent)
            .and_then(|e| e.held.get(&contact))
            .map_or(Duration::ZERO, |h| h.wrap_up)
    }

    /// Records what runs for a held contact, keeping the deadline index exact.
    fn set(
        &mut self,
        agent: u32,
        contact: ContactId,
        wrap_up: Duration,
        deadline: Option<Deadline>,
    ) {
        let Some(e) = self.agents.get_mut(&agent) else {
            return;
        };
        if let Some(old) = e.held.get(&contact).and_then(|h| h.deadline) {
            self.deadlines.remove(&(old.at(), agent, contact));
        }
        if let Some(d) = deadline {
            self.deadlines.insert((d.at(), agent, contact));
        }
        e.held.insert(contact, Held { wrap_up, deadline });
    }

    fn clear(&mut self, agent: u32, contact: ContactId) {
        if let Some(e) = self.agents.get_mut(&agent)
            && let Some(h) = e.held.remove(&contact)
            && let Some(d) = h.deadline
        {
            self.deadlines.remove(&(d.at(), agent, contact));
        }
    }

    /// Starts a contact's wrap-up. Without wrap-up time it ends at once: then, unless
    /// `tell`, the caller reports that along with the end (returns true).
    fn start_wrap_up(&mut self, agent: u32, contact: ContactId, tell: bool) -> bool {
        let wrap = self.wrap_of(agent, contact);
        if wrap.is_zero() {
            let done = self.finish_wrap_up(agent, contact, tell).is_ok();
            return done && !tell;
        }
        self.set(
            agent,
            contact,
            wrap,
            Some(Deadline::WrapUp(self.instant + wrap)),
        );
        false
    }

    fn finish_wrap_up(
        &mut self,
        agent: u32,
        contact: ContactId,
        tell: bool,
    ) -> Result<(), AcdError> {
        self.apply(agent, &AgentTransition::FinishWrapUp(contact))?;
        self.clear(agent, contact);
        if tell {
            self.tell(RouterMsg::WrapUpDone { contact, agent });
        }
        Ok(())
    }

    /// Handles every deadline that has passed: unanswered offers ring out, wrap-ups end.
    fn expire(&mut self, myself: &ActorRef<ShardMsg>) {
        let now = Instant::now();
        while let Some(&(at, agent, contact)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            let deadline = self
                .agents
                .get(&agent)
                .and_then(|e| e.held.get(&contact))
                .and_then(|h| h.deadline);
            match deadline {
                Some(Deadline::Ring(_))
                    if self
                        .apply(agent, &AgentTransition::NoAnswer(contact))
                        .is_ok() =>
                {
                    if let Some(e) = self.agents.get_mut(&agent) {
                        e.held.remove(&contact);
                    }
                    self.notify(myself, agent, |e, link| e.rescinded(link, contact));
                    self.tell(RouterMsg::Declined {
                        contact,
                        agent,
                        reason: DeclineReason::NoAnswer,
                    });
                }
                Some(Deadline::WrapUp(_)) => {
                    if let Some(e) = self.agents.get_mut(&agent)
                        && let Some(h) = e.held.get_mut(&contact)
                    {
                        h.deadline = None;
                    }
                    let _ = self.finish_wrap_up(agent, contact, true);
                }
                _ => {}
            }
            self.report(myself, agent, false);
        }
    }

    /// Makes sure a tick is pending for the earliest deadline.
    fn arm(&mut self, myself: &ActorRef<ShardMsg>) {
        let Some(&(next, _, _)) = self.deadlines.first() else {
            return;
        };
        if self.tick_at.is_some_and(|t| t <= next) {
            return;
        }
        self.tick_at = Some(next);
        myself.send_after(next.saturating_duration_since(Instant::now()), || {
            ShardMsg::Tick
        });
    }

    fn notify(
        &self,
        myself: &ActorRef<ShardMsg>,
        agent: u32,
        f: impl FnOnce(&dyn AgentEndpoint, &AgentLink),
    ) {
        if let Some(e) = self.agents.get(&agent) {
            f(e.endpoint.as_ref(), &AgentLink::new(myself.clone(), agent));
        }
    }

    /// Queues a message for the router; it leaves with the next flush.
    fn tell(&mut self, msg: RouterMsg) {
        if self.flush_armed {
            self.outbox.push(msg);
        } else {
            // The first message after a quiet spell goes at once; what follows it before
            // the flush goes in one batch.
            if self.router.cast(msg).is_err() {
                tracing::warn!("router gone; message dropped");
            }
            self.arm_flush();
        }
    }

    fn arm_flush(&mut self) {
        if !self.flush_armed {
            self.flush_armed = true;
            let _ = self.me.cast(ShardMsg::Flush);
        }
    }

    /// Publishes the agent's events and, when presence changed (or `force`), tells the
    /// router; when the status people see changed, tells the endpoint.
    fn report(&mut self, myself: &ActorRef<ShardMsg>, agent: u32, force: bool) {
        let start = std::mem::replace(&mut self.reported, self.pending_events.len());
        let Some(e) = self.agents.get_mut(&agent) else {
            return;
        };
        // Events the session kept itself (logging in, a restore, a wrap-up extension).
        e.session.move_events_into(&mut self.pending_events);
        self.reported = self.pending_events.len();
        let fresh = &self.pending_events[start..];
        if fresh.is_empty() && !force {
            return;
        }
        let presence_changed = fresh.iter().any(|ev| {
            matches!(
                &ev.body,
                EventBody::Agent(a) if matches!(
                    a.kind,
                    AgentEventKind::LoggedIn
                        | AgentEventKind::Ready
                        | AgentEventKind::NotReady { .. }
                        | AgentEventKind::LoggedOut
                        | AgentEventKind::Recovered
                )
            )
        });
        let status = e.session.status();
        let availability = (force || presence_changed).then(|| e.session.availability());
        if force || status != e.last_status {
            e.endpoint
                .status_changed(&AgentLink::new(myself.clone(), agent), &status);
            e.last_status = status;
        }
        if let Some(availability) = availability {
            self.tell(RouterMsg::Availability {
                agent,
                availability,
            });
        }
        self.arm_flush();
    }
}
