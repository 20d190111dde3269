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
use hotline_core::event::EventSink;
use hotline_core::ids::ContactId;
use hotline_core::time::Clock;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;

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
    /// Timer: the offer rang out.
    RingTimeout {
        /// The contact.
        contact: ContactId,
        /// Which offer (a later offer of the same contact ignores an older timer).
        generation: u64,
    },
    /// Timer: wrap-up time is over.
    WrapUpTimeout {
        /// The contact.
        contact: ContactId,
        /// Which wrap-up deadline (an extension supersedes the older timer).
        generation: u64,
    },
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
    /// Wrap-up times of restored wrap-up slots.
    pub restored_wrap_ups: Vec<(ContactId, Duration)>,
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
    /// Per held contact: the offer's wrap-up time and the current timer generation.
    timers: HashMap<ContactId, (Duration, u64)>,
    /// Wrap-up deadlines, for extensions.
    wrap_deadline: HashMap<ContactId, tokio::time::Instant>,
    generation: u64,
    last_status: AgentStatus,
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
            timers: HashMap::new(),
            wrap_deadline: HashMap::new(),
            generation: 0,
            last_status: status,
        };
        let now = state.clock.now();
        if let Some(ready) = args.login {
            state.session.apply(now, &AgentTransition::LogIn)?;
            if ready {
                state.session.apply(now, &AgentTransition::GoReady)?;
            }
        }
        for (contact, wrap) in args.restored_wrap_ups {
            state.timers.insert(contact, (wrap, 0));
            state.start_wrap_up(&myself, contact, wrap);
        }
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
                        self.generation += 1;
                        let generation = self.generation;
                        self.timers
                            .insert(offer.contact, (offer.wrap_up, generation));
                        let contact = offer.contact;
                        myself.send_after(offer.no_answer, move || AgentMsg::RingTimeout {
                            contact,
                            generation,
                        });
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
                    self.timers.remove(&contact);
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
                    let wrap = self.timers.get(&contact).map_or(Duration::ZERO, |t| t.0);
                    self.start_wrap_up(myself, contact, wrap);
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
                    if !accept {
                        self.timers.remove(&contact);
                    }
                    self.tell(if accept {
                        RouterMsg::Accepted { contact, agent: ix }
                    } else {
                        RouterMsg::Declined {
                            contact,
                            agent: ix,
                            reason: DeclineReason::Rejected,
                        }
                    });
                }
                answer(reply, r);
            }
            AgentMsg::RingTimeout {
                contact,
                generation,
            } => {
                let current = self.timers.get(&contact).map(|t| t.1) == Some(generation);
                let ringing = self
                    .session
                    .machine()
                    .slots()
                    .iter()
                    .any(|s| s.contact == contact && s.phase == SlotPhase::Reserved);
                if current
                    && ringing
                    && self
                        .session
                        .apply(now, &AgentTransition::NoAnswer(contact))
                        .is_ok()
                {
                    self.timers.remove(&contact);
                    self.endpoint.rescinded(myself, contact);
                    self.tell(RouterMsg::Declined {
                        contact,
                        agent: ix,
                        reason: DeclineReason::NoAnswer,
                    });
                }
            }
            AgentMsg::End { contact, reply } => {
                let r = self
                    .session
                    .apply(now, &AgentTransition::End(contact))
                    .map(|_| ());
                if r.is_ok() {
                    self.tell(RouterMsg::Ended { contact, agent: ix });
                    let wrap = self.timers.get(&contact).map_or(Duration::ZERO, |t| t.0);
                    self.start_wrap_up(myself, contact, wrap);
                }
                answer(reply, r);
            }
            AgentMsg::FinishWrapUp { contact, reply } => {
                let r = self.finish_wrap_up(contact);
                answer(reply, r);
            }
            AgentMsg::WrapUpTimeout {
                contact,
                generation,
            } => {
                if self.timers.get(&contact).map(|t| t.1) == Some(generation) {
                    let _ = self.finish_wrap_up(contact);
                }
            }
            AgentMsg::ExtendWrapUp {
                contact,
                secs,
                reply,
            } => {
                let r = match self.wrap_deadline.get(&contact).copied() {
                    Some(deadline) => {
                        let deadline = deadline + Duration::from_secs(secs.into());
                        self.wrap_deadline.insert(contact, deadline);
                        self.generation += 1;
                        let generation = self.generation;
                        if let Some(t) = self.timers.get_mut(&contact) {
                            t.1 = generation;
                        }
                        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                        myself.send_after(left, move || AgentMsg::WrapUpTimeout {
                            contact,
                            generation,
                        });
                        self.session.note_extension(now, contact, secs);
                        Ok(())
                    }
                    None => Err(AcdError::NotYours { contact }),
                };
                answer(reply, r);
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
                            self.timers.remove(&contact);
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
    }

    fn start_wrap_up(&mut self, myself: &ActorRef<AgentMsg>, contact: ContactId, wrap: Duration) {
        if wrap.is_zero() {
            let _ = self.finish_wrap_up(contact);
            return;
        }
        self.generation += 1;
        let generation = self.generation;
        self.timers.insert(contact, (wrap, generation));
        self.wrap_deadline
            .insert(contact, tokio::time::Instant::now() + wrap);
        myself.send_after(wrap, move || AgentMsg::WrapUpTimeout {
            contact,
            generation,
        });
    }

    fn finish_wrap_up(&mut self, contact: ContactId) -> Result<(), AcdError> {
        let now = self.clock.now();
        self.session
            .apply(now, &AgentTransition::FinishWrapUp(contact))?;
        self.timers.remove(&contact);
        self.wrap_deadline.remove(&contact);
        self.tell(RouterMsg::WrapUpDone {
            contact,
            agent: self.session.profile().ix,
        });
        Ok(())
    }

    fn tell(&self, msg: RouterMsg) {
        if self.router.cast(msg).is_err() {
            tracing::warn!(agent = %self.session.profile().id, "router gone; message dropped");
        }
    }

    /// Publishes the session's events and, when presence or status changed (or `force`),
    /// tells the router and the endpoint.
    fn report(&mut self, myself: &ActorRef<AgentMsg>, force: bool) {
        let events: Vec<_> = self.session.drain_events().collect();
        if events.is_empty() && !force {
            return;
        }
        let status = self.session.status();
        let changed = status != self.last_status;
        self.sink.publish(&events);
        let presence_changed = events.iter().any(|e| {
            matches!(
                &e.body,
                hotline_core::event::EventBody::Agent(a) if matches!(
                    a.kind,
                    hotline_core::event::AgentEventKind::LoggedIn
                        | hotline_core::event::AgentEventKind::Ready
                        | hotline_core::event::AgentEventKind::NotReady { .. }
                        | hotline_core::event::AgentEventKind::LoggedOut
                        | hotline_core::event::AgentEventKind::Recovered
                )
            )
        });
        if force || presence_changed {
            self.tell(RouterMsg::Availability {
                agent: self.session.profile().ix,
                availability: self.session.availability(),
            });
        }
        if force || changed {
            self.last_status = status.clone();
            self.endpoint.status_changed(myself, &status);
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
