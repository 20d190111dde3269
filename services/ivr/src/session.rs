//! The session actor: one per contact in a flow.
//!
//! [`Session::start`] spawns a [`SessionActor`] that owns the contact's [`Machine`],
//! feeds it the customer's [`Input`]s and its timeouts, records an `ivr_entered` event
//! and an `ivr_node` event for every node entered, and hands prompts and the final
//! outcome to the channel through the [`SessionHandle`]. Timeouts are tokio timers
//! measured against the injected [`Clock`], so under `tokio::time::pause` with a clock
//! that follows tokio time a test walks through minutes of menus in microseconds.
//!
//! The session ends itself once the flow produces its outcome (retries are bounded and
//! the validator refuses failure paths that loop, so a customer who never answers still
//! reaches one); a customer who leaves is an
//! [`Outcome::Abandoned`] and an `abandoned` event (only the IVR knows it happened
//! there). Every other outcome is the caller's to carry out: queue the contact in the
//! ACD, record the voicemail, place the transfer, close the contact.

use std::collections::BTreeMap;
use std::sync::Arc;

use hotline_acd::ids::IdSource;
use hotline_core::channel::Channel;
use hotline_core::event::{ContactEvent, ContactEventKind, Event, EventBody, EventSink};
use hotline_core::ids::{ContactId, SiteId, TenantId, TraceId};
use hotline_core::time::Clock;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::flow::Prompt;
use crate::machine::{Effect, Input, Machine, Outcome};
use crate::registry::PublishedFlow;

/// The contact a session runs for.
#[derive(Debug, Clone)]
pub struct ContactInfo {
    /// The contact.
    pub contact: ContactId,
    /// Its tenant; must be the flow's.
    pub tenant: TenantId,
    /// The site the session runs at.
    pub site: SiteId,
    /// The contact's trace (its events join the same journey).
    pub trace: TraceId,
    /// Its channel, readable by the flow as the `channel` attribute.
    pub channel: Channel,
    /// Who the customer is as the channel knows them (caller number, chat user), readable
    /// as the `caller` attribute and the default number for a callback.
    pub customer: Option<String>,
    /// Attributes known before the flow starts (a chat's pre-chat form, a campaign code).
    pub attributes: BTreeMap<String, String>,
}

/// What a session needs besides its flow and contact.
#[derive(Clone)]
pub struct SessionOptions {
    /// Where `ivr_entered`, `ivr_node` and `abandoned` events go.
    pub sink: Arc<dyn EventSink>,
    /// Time, for events, deadlines and business hours.
    pub clock: Arc<dyn Clock>,
    /// Where event ids come from.
    pub ids: IdSource,
}

/// What a session tells its channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Play (voice) or show (chat) this prompt.
    Prompt(Prompt),
    /// The flow is over; the last output of a session.
    Finished(Finished),
}

/// How a session ended, with everything its next owner needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// What to do with the contact.
    pub outcome: Outcome,
    /// Attributes collected and set (and those the session started with): what the
    /// agent's desktop shows beside the contact.
    pub attributes: BTreeMap<String, String>,
    /// The flow's name.
    pub flow: String,
    /// The flow version the contact went through.
    pub version: u32,
    /// The node it ended in.
    pub node: String,
}

/// Why a session could not be started or reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The contact's tenant is not the flow's.
    #[error(
        "flow {flow:?} belongs to tenant {flow_tenant}, not to the contact's tenant {contact_tenant}; start the contact's own tenant's flow"
    )]
    WrongTenant {
        /// The flow.
        flow: String,
        /// Its tenant.
        flow_tenant: TenantId,
        /// The contact's.
        contact_tenant: TenantId,
    },
    /// The actor could not be spawned.
    #[error("cannot start the IVR session: {0}")]
    Spawn(String),
    /// The session has ended; its outcome was the last output.
    #[error("the IVR session has ended; read its outcome from the outputs")]
    Ended,
}

/// The way in and out of a running session.
#[derive(Debug)]
pub struct SessionHandle {
    input: SessionInput,
    outputs: mpsc::UnboundedReceiver<Output>,
}

/// A cloneable sender of the customer's input to one session (for a channel task that
/// reads the customer while another reads the outputs).
#[derive(Debug, Clone)]
pub struct SessionInput {
    actor: ActorRef<SessionMsg>,
}

impl SessionInput {
    /// Hands the session what the customer did.
    pub fn send(&self, input: Input) -> Result<(), SessionError> {
        self.actor
            .send_message(SessionMsg::Input(input))
            .map_err(|_| SessionError::Ended)
    }
}

impl SessionHandle {
    /// Hands the session what the customer did.
    pub fn send(&self, input: Input) -> Result<(), SessionError> {
        self.input.send(input)
    }

    /// The customer left.
    pub fn hang_up(&self) -> Result<(), SessionError> {
        self.input.send(Input::HangUp)
    }

    /// The next output; `None` once the session has ended and every output was read.
    pub async fn recv(&mut self) -> Option<Output> {
        self.outputs.recv().await
    }

    /// Reads outputs until the outcome, returning the prompts seen on the way and the
    /// outcome (`None` if the session stopped without one).
    pub async fn until_finished(&mut self) -> (Vec<Prompt>, Option<Finished>) {
        let mut prompts = Vec::new();
        while let Some(out) = self.outputs.recv().await {
            match out {
                Output::Prompt(p) => prompts.push(p),
                Output::Finished(f) => return (prompts, Some(f)),
            }
        }
        (prompts, None)
    }

    /// A sender for the input, and the receiver of the outputs.
    pub fn into_parts(self) -> (SessionInput, mpsc::UnboundedReceiver<Output>) {
        (self.input, self.outputs)
    }
}

/// Starting sessions.
pub struct Session;

impl Session {
    /// Starts a session of `flow` for `contact`: records `ivr_entered`, enters the start
    /// node, and returns the handle. Prompts of the first nodes are already waiting in
    /// the outputs when this returns.
    pub async fn start(
        flow: Arc<PublishedFlow>,
        contact: ContactInfo,
        options: SessionOptions,
    ) -> Result<SessionHandle, SessionError> {
        if flow.flow().tenant != contact.tenant {
            return Err(SessionError::WrongTenant {
                flow: flow.flow().name.clone(),
                flow_tenant: flow.flow().tenant.clone(),
                contact_tenant: contact.tenant,
            });
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let args = SessionArgs {
            flow,
            contact,
            options,
            outputs: tx,
        };
        let (actor, _) = Actor::spawn(None, SessionActor, args)
            .await
            .map_err(|e| SessionError::Spawn(e.to_string()))?;
        Ok(SessionHandle {
            input: SessionInput { actor },
            outputs: rx,
        })
    }
}

// === the actor ===

/// What a session actor handles.
#[derive(Debug)]
pub enum SessionMsg {
    /// The customer did something.
    Input(Input),
    /// A timer fired; the number tells stale timers from the current one.
    Deadline(u64),
}

/// What a session actor is started with.
pub struct SessionArgs {
    /// The flow version to run.
    pub flow: Arc<PublishedFlow>,
    /// The contact.
    pub contact: ContactInfo,
    /// Sink, clock, ids.
    pub options: SessionOptions,
    /// Where prompts and the outcome go.
    pub outputs: mpsc::UnboundedSender<Output>,
}

/// A session's state: the machine and what it reports to.
pub struct SessionState {
    machine: Machine,
    flow: Arc<PublishedFlow>,
    contact: ContactInfo,
    options: SessionOptions,
    outputs: mpsc::UnboundedSender<Output>,
    /// The armed timer, aborted when a newer deadline replaces it.
    timer: Option<JoinHandle<Result<(), ractor::MessagingErr<SessionMsg>>>>,
    /// Numbers the timers, so a timer that fires after being replaced is ignored.
    generation: u64,
}

impl SessionState {
    fn new(args: SessionArgs) -> Self {
        let SessionArgs {
            flow,
            contact,
            options,
            outputs,
        } = args;
        let mut attributes = contact.attributes.clone();
        attributes.insert("channel".to_owned(), contact.channel.as_str().to_owned());
        if let Some(c) = &contact.customer {
            attributes.insert("caller".to_owned(), c.clone());
        } else {
            attributes.remove("caller");
        }
        SessionState {
            machine: Machine::new(flow.flow().clone(), attributes),
            flow,
            contact,
            options,
            outputs,
            timer: None,
            generation: 0,
        }
    }

    fn event(&mut self, kind: ContactEventKind) -> Event {
        let at = self.options.clock.now();
        Event {
            id: self.options.ids.event(at),
            at,
            tenant: self.contact.tenant.clone(),
            site: self.contact.site.clone(),
            trace: self.contact.trace,
            body: EventBody::Contact(ContactEvent {
                contact: self.contact.contact,
                channel: self.contact.channel,
                queue: None,
                agent: None,
                kind,
            }),
        }
    }

    /// Publishes the effects' events and sends their outputs.
    fn apply(&mut self, effects: Vec<Effect>, mut events: Vec<Event>) {
        let mut outputs = Vec::new();
        for fx in effects {
            match fx {
                Effect::Entered(node) => {
                    let kind = ContactEventKind::IvrNode {
                        flow: self.flow.flow().name.clone(),
                        version: self.flow.version(),
                        node,
                    };
                    events.push(self.event(kind));
                }
                Effect::Prompt(p) => outputs.push(Output::Prompt(p)),
                Effect::Finished(outcome) => {
                    if matches!(outcome, Outcome::Abandoned { .. }) {
                        events.push(self.event(ContactEventKind::Abandoned {
                            wait_ms: 0,
                            while_offered: false,
                        }));
                    }
                    tracing::debug!(contact = %self.contact.contact, outcome = outcome.name(), "ivr session finished");
                    outputs.push(Output::Finished(Finished {
                        outcome,
                        attributes: self.machine.attributes().clone(),
                        flow: self.flow.flow().name.clone(),
                        version: self.flow.version(),
                        node: self.machine.node_id().to_owned(),
                    }));
                }
            }
        }
        if !events.is_empty() {
            self.options.sink.publish(&events);
        }
        for out in outputs {
            // A channel that stopped listening still gets its events recorded.
            let _ = self.outputs.send(out);
        }
    }

    /// Arms a timer for the machine's deadline, replacing any earlier one.
    fn rearm(&mut self, myself: &ActorRef<SessionMsg>) {
        if let Some(t) = self.timer.take() {
            t.abort();
        }
        if let Some(deadline) = self.machine.deadline() {
            self.generation += 1;
            let generation = self.generation;
            let delay = deadline.since(self.options.clock.now());
            self.timer = Some(myself.send_after(delay, move || SessionMsg::Deadline(generation)));
        }
    }

    /// After a step: re-arm the timer, or stop once the outcome is out.
    fn settle(&mut self, myself: &ActorRef<SessionMsg>) {
        if self.machine.is_finished() {
            if let Some(t) = self.timer.take() {
                t.abort();
            }
            myself.stop(None);
        } else {
            self.rearm(myself);
        }
    }
}

/// The session actor.
pub struct SessionActor;

impl Actor for SessionActor {
    type Msg = SessionMsg;
    type State = SessionState;
    type Arguments = SessionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SessionMsg>,
        args: SessionArgs,
    ) -> Result<SessionState, ActorProcessingErr> {
        let mut state = SessionState::new(args);
        let entered = vec![state.event(ContactEventKind::IvrEntered)];
        let now = state.options.clock.now();
        let effects = state.machine.start(now);
        state.apply(effects, entered);
        state.settle(&myself);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<SessionMsg>,
        msg: SessionMsg,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        let now = state.options.clock.now();
        let effects = match msg {
            SessionMsg::Input(input) => state.machine.input(now, input),
            SessionMsg::Deadline(g) if g == state.generation => state.machine.timeout(now),
            SessionMsg::Deadline(_) => return Ok(()),
        };
        state.apply(effects, vec![]);
        state.settle(&myself);
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SessionMsg>,
        state: &mut SessionState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(t) = state.timer.take() {
            t.abort();
        }
        Ok(())
    }
}
