//! The agent actor: owner of one agent's session and its timers.
//!
//! It receives offers from the router, rings the agent's endpoint (a desk, a phone, a
//! simulated agent), runs the no-answer and wrap-up timers, and tells the router what the
//! agent did. It is the authority on the agent: an offer it cannot take (the agent just
//! went not ready, say) is refused and the contact returns to its place.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hotline_core::agent::{AgentStatus, AgentTransition, NotReadyReason, Slot, SlotPhase};
use hotline_core::contact::DeclineReason;
use hotline_core::event::{AgentEventKind, EventBody, EventSink};
use hotline_core::ids::ContactId;
use hotline_core::time::Clock;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use tokio::time::Instant;

use crate::engine::Offer;
use crate::error::AcdError;
use crate::router::RouterMsg;
use crate::session::AgentSession;

/// An optional reply port: endpoints may fire and forget, people's requests get answers.
pub type Reply<T> = Option<RpcReplyPort<Result<T, AcdError>>>;

/// How offers and news reach the person (or program) behind an agent. Calls must return
/// quickly; an endpoint answers later by sending [`AgentMsg`]s to the actor it is given.
pub trait AgentEndpoint: Send + Sync + 'static {
    /// A contact is offered; answer with [`AgentMsg::Answer`] before the ring time ends.
    fn offered(&self, agent: &ActorRef<AgentMsg>, offer: &Offer);
    /// An offer was withdrawn (the customer hung up).
    fn rescinded(&self, _agent: &ActorRef<AgentMsg>, _contact: ContactId) {}
    /// The customer ended the conversation; wrap-up has begun.
    fn customer_ended(&self, _agent: &ActorRef<AgentMsg>, _contact: ContactId) {}
    /// The agent's state changed (also called when a session starts or is restored).
    fn status_changed(&self, _agent: &ActorRef<AgentMsg>, _status: &AgentStatus) {}
}

/// What an agent's endpoint and the router may ask of the agent actor.
pub enum AgentMsg {
    /// From the router: offer a contact.
    Offer(Offer),
    /// From the router: withdraw an offer (the customer hung up).
    Rescind(ContactId),
    /// From the router: the customer ended the conversation.
    CustomerEnded(ContactId),
    /// The agent accepts or rejects an offer.
    Answer {
        /// The contact offered.
        contact: ContactId,
        /// Accept (true) or reject (false).
        accept: bool,
        /// Where to send the result.
        reply: Reply<()>,
    },
    /// The agent ends the conversation; wrap-up begins.
    End {
        /// The contact.
        contact: ContactId,
        /// Where to send the result.
        reply: Reply<()>,
    },
    /// The agent ends wrap-up early.
    FinishWrapUp {
        /// The contact.
        contact: ContactId,
        /// Where to send the result.
        reply: Reply<()>,
    },
    /// The agent extends wrap-up.
    ExtendWrapUp {
        /// The contact.
        contact: ContactId,
        /// Seconds to add.
        secs: u32,
        /// Where to send the result.
        reply: Reply<()>,
    },
    /// Take contacts.
    GoReady(Reply<()>),
    /// Stop taking new contacts.
    GoNotReady(NotReadyReason, Reply<()>),
    /// Log out (refused while a contact is in conversation or wrap-up).
    LogOut(Reply<()>),
    /// The agent's view of itself.
    View(RpcReplyPort<AgentView>),
    /// Timer: some ring or wrap-up deadline may have passed.
    Tick,
    /// Fault injection for tests and chaos drills: the actor panics, as a bug would make
    /// it. The router restarts it and no contact is lost.
    InjectPanic,
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

/// What the router hands a new agent actor.
pub struct AgentArgs {
    /// The session, logged out (a fresh login) or restored (after a failure).
    pub session: AgentSession,
    /// Whether this is a fresh login (log in, then go ready if `ready`).
    pub login: Option<bool>,
    /// Restored contacts (after a failure) with their wrap-up times.
    pub restored: Vec<(ContactId, Duration)>,
    /// The router, to report to.
    pub router: ActorRef<RouterMsg>,
    /// Where offers go.
    pub endpoint: Arc<dyn AgentEndpoint>,
    /// Where agent events go.
    pub sink: Arc<dyn EventSink>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// The agent actor's state.
pub struct AgentState {
    session: AgentSession,
    router: ActorRef<RouterMsg>,
    endpoint: Arc<dyn AgentEndpoint>,
    sink: Arc<dyn EventSink>,
    clock: Arc<dyn Clock>,
    /// Per held contact: its wrap-up time and the deadline running for it, if any.
    held: HashMap<ContactId, Held>,
    /// Reused buffer for the session's events.
    events: Vec<hotline_core::event::Event>,
    /// When the pending [`AgentMsg::Tick`] fires. One timer per agent, not one per
    /// offer: spawning a timer task per offer was the router benchmark's top cost.
    tick_at: Option<Instant>,
    last_status: AgentStatus,
}

/// What runs for a held contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deadline {
    /// Ringing until then.
    Ring(Instant),
    /// Wrapping up until then.
    WrapUp(Instant),
}

/// A contact the agent holds.
#[derive(Debug, Clone, Copy)]
struct Held {
    wrap_up: Duration,
    deadline: Option<Deadline>,
}

impl Held {
    fn due(&self) -> Option<Instant> {
        match self.deadline {
            Some(Deadline::Ring(t) | Deadline::WrapUp(t)) => Some(t),
            None => None,
        }
    }
}

/// The agent actor. See the module documentation.
pub struct AgentActor;

impl Actor for AgentActor {
    type Msg = AgentMsg;
    type State = AgentState;
    type Arguments = AgentArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<AgentMsg>,
        args: AgentArgs,
    ) -> Result<AgentState, ActorProcessingErr> {
        let status = args.session.status();
        let mut state = AgentState {
            session: args.session,
            router: args.router,
            endpoint: args.endpoint,
            sink: args.sink,
            clock: args.clock,
            held: HashMap::new(),
            events: Vec::new(),
            tick_at: None,
            last_status: status,
        };
        let now = state.clock.now();
        if let Some(ready) = args.login {
            state.session.apply(now, &AgentTransition::LogIn)?;
            if ready {
                state.session.apply(now, &AgentTransition::GoReady)?;
            }
        }
        let slots = state.session.machine().slots().to_vec();
        for (contact, wrap_up) in args.restored {
            state.held.insert(
                contact,
                Held {
                    wrap_up,
                    deadline: None,
                },
            );
            if slots
                .iter()
                .any(|s| s.contact == contact && s.phase == SlotPhase::WrapUp)
            {
                state.start_wrap_up(contact, true);
            }
        }
        state.arm(&myself);
        state.report(&myself, true);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<AgentMsg>,
        msg: AgentMsg,
        state: &mut AgentState,
    ) -> Result<(), ActorProcessingErr> {
        state.handle(&myself, msg);
        state.report(&myself, false);
        Ok(())
    }
}

// === impl AgentState ===

impl AgentState {
    fn handle(&mut self, myself: &ActorRef<AgentMsg>, msg: AgentMsg) {
        let now = self.clock.now();
        let ix = self.session.profile().ix;
        match msg {
            AgentMsg::Offer(offer) => {
                let t = AgentTransition::Offer(offer.contact, offer.channel);
                match self.session.apply(now, &t) {
                    Ok(_) => {
                        self.held.insert(
                            offer.contact,
                            Held {
                                wrap_up: offer.wrap_up,
                                deadline: Some(Deadline::Ring(Instant::now() + offer.no_answer)),
                            },
                        );
                        self.endpoint.offered(myself, &offer);
                    }
                    Err(e) => {
                        tracing::debug!(agent = %self.session.profile().id, error = %e, "offer refused");
                        self.tell(RouterMsg::Declined {
                            contact: offer.contact,
                            agent: ix,
                            reason: DeclineReason::Refused,
                        });
                    }
                }
            }
            AgentMsg::Rescind(contact) => {
                if self
                    .session
                    .apply(now, &AgentTransition::Rescind(contact))
                    .is_ok()
                {
                    self.held.remove(&contact);
                    self.endpoint.rescinded(myself, contact);
                }
            }
            AgentMsg::CustomerEnded(contact) => {
                if self
                    .session
                    .apply(now, &AgentTransition::End(contact))
                    .is_ok()
                {
                    self.endpoint.customer_ended(myself, contact);
                    self.start_wrap_up(contact, true);
                }
            }
            AgentMsg::Answer {
                contact,
                accept,
                reply,
            } => {
                let t = if accept {
                    AgentTransition::Accept(contact)
                } else {
                    AgentTransition::Reject(contact)
                };
                let r = self.session.apply(now, &t).map(|_| ());
                if r.is_ok() {
                    if accept {
                        if let Some(h) = self.held.get_mut(&contact) {
                            h.deadline = None;
                        }
                        self.tell(RouterMsg::Accepted { contact, agent: ix });
                    } else {
                        self.held.remove(&contact);
                        self.tell(RouterMsg::Declined {
                            contact,
                            agent: ix,
                            reason: DeclineReason::Rejected,
                        });
                    }
                }
                answer(reply, r);
            }
            AgentMsg::End { contact, reply } => {
                let r = self
                    .session
                    .apply(now, &AgentTransition::End(contact))
                    .map(|_| ());
                if r.is_ok() {
                    let finished = self.start_wrap_up(contact, false);
                    self.tell(RouterMsg::Ended {
                        contact,
                        agent: ix,
                        finished,
                    });
                }
                answer(reply, r);
            }
            AgentMsg::FinishWrapUp { contact, reply } => {
                let r = self.finish_wrap_up(contact, true);
                answer(reply, r);
            }
            AgentMsg::ExtendWrapUp {
                contact,
                secs,
                reply,
            } => {
                let r = match self.held.get_mut(&contact) {
                    Some(Held {
                        deadline: Some(Deadline::WrapUp(t)),
                        ..
                    }) => {
                        *t += Duration::from_secs(secs.into());
                        self.session.note_extension(now, contact, secs);
                        Ok(())
                    }
                    _ => Err(AcdError::NotYours { contact }),
                };
                answer(reply, r);
            }
            AgentMsg::Tick => {
                self.tick_at = None;
                self.expire(myself);
            }
            AgentMsg::GoReady(reply) => {
                let r = self
                    .session
                    .apply(now, &AgentTransition::GoReady)
                    .map(|_| ());
                answer(reply, r);
            }
            AgentMsg::GoNotReady(reason, reply) => {
                let r = self
                    .session
                    .apply(now, &AgentTransition::GoNotReady(reason))
                    .map(|_| ());
                answer(reply, r);
            }
            AgentMsg::LogOut(reply) => {
                let r = self.session.apply(now, &AgentTransition::LogOut);
                match r {
                    Ok(out) => {
                        for contact in out.withdrawn {
                            self.held.remove(&contact);
                            self.endpoint.rescinded(myself, contact);
                            self.tell(RouterMsg::Declined {
                                contact,
                                agent: ix,
                                reason: DeclineReason::Refused,
                            });
                        }
                        answer(reply, Ok(()));
                        self.report(myself, false);
                        myself.stop(Some("logged out".into()));
                    }
                    Err(e) => answer(reply, Err(e)),
                }
            }
            AgentMsg::View(reply) => {
                let m = self.session.machine();
                let _ = reply.send(AgentView {
                    status: m.status(),
                    slots: m.slots().to_vec(),
                    missed_in_row: m.missed_in_row(),
                });
            }
            AgentMsg::InjectPanic => panic!(
                "fault injected into agent {} (chaos drill)",
                self.session.profile().id
            ),
        }
        self.arm(myself);
    }

    /// Handles every deadline that has passed: unanswered offers ring out, wrap-ups end.
    fn expire(&mut self, myself: &ActorRef<AgentMsg>) {
        let at = Instant::now();
        let due: Vec<(ContactId, Deadline)> = self
            .held
            .iter()
            .filter_map(|(c, h)| {
                h.deadline
                    .filter(|_| h.due().is_some_and(|t| t <= at))
                    .map(|d| (*c, d))
            })
            .collect();
        let now = self.clock.now();
        let ix = self.session.profile().ix;
        for (contact, deadline) in due {
            match deadline {
                Deadline::Ring(_) => {
                    if self
                        .session
                        .apply(now, &AgentTransition::NoAnswer(contact))
                        .is_ok()
                    {
                        self.held.remove(&contact);
                        self.endpoint.rescinded(myself, contact);
                        self.tell(RouterMsg::Declined {
                            contact,
                            agent: ix,
                            reason: DeclineReason::NoAnswer,
                        });
                    }
                }
                Deadline::WrapUp(_) => {
                    let _ = self.finish_wrap_up(contact, true);
                }
            }
        }
    }

    /// Makes sure a tick is pending for the earliest deadline.
    fn arm(&mut self, myself: &ActorRef<AgentMsg>) {
        let Some(next) = self.held.values().filter_map(Held::due).min() else {
            return;
        };
        if self.tick_at.is_some_and(|t| t <= next) {
            return;
        }
        self.tick_at = Some(next);
        myself.send_after(next.saturating_duration_since(Instant::now()), || {
            AgentMsg::Tick
        });
    }

    /// Starts the contact's wrap-up. Without wrap-up time it ends at once: then, if
    /// `tell` is false, the caller reports that along with the end (returns true).
    fn start_wrap_up(&mut self, contact: ContactId, tell: bool) -> bool {
        let wrap = self
            .held
            .get(&contact)
            .map_or(Duration::ZERO, |h| h.wrap_up);
        if wrap.is_zero() {
            let done = self.finish_wrap_up(contact, tell).is_ok();
            return done && !tell;
        }
        self.held.insert(
            contact,
            Held {
                wrap_up: wrap,
                deadline: Some(Deadline::WrapUp(Instant::now() + wrap)),
            },
        );
        false
    }

    fn finish_wrap_up(&mut self, contact: ContactId, tell: bool) -> Result<(), AcdError> {
        let now = self.clock.now();
        self.session
            .apply(now, &AgentTransition::FinishWrapUp(contact))?;
        self.held.remove(&contact);
        if tell {
            self.tell(RouterMsg::WrapUpDone {
                contact,
                agent: self.session.profile().ix,
            });
        }
        Ok(())
    }

    fn tell(&self, msg: RouterMsg) {
        if self.router.cast(msg).is_err() {
            tracing::warn!(agent = %self.session.profile().id, "router gone; message dropped");
        }
    }

    /// Publishes the session's events and, when presence changed (or `force`), tells the
    /// router; when the status people see changed, tells the endpoint.
    fn report(&mut self, myself: &ActorRef<AgentMsg>, force: bool) {
        self.events.clear();
        self.events.extend(self.session.drain_events());
        if self.events.is_empty() && !force {
            return;
        }
        self.sink.publish(&self.events);
        let presence_changed = self.events.iter().any(|e| {
            matches!(
                &e.body,
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
        if force || presence_changed {
            self.tell(RouterMsg::Availability {
                agent: self.session.profile().ix,
                availability: self.session.availability(),
            });
        }
        let status = self.session.status();
        if force || status != self.last_status {
            self.endpoint.status_changed(myself, &status);
            self.last_status = status;
        }
    }
}

fn answer<T>(reply: Reply<T>, r: Result<T, AcdError>) {
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
}
