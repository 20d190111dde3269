//! Events: one for every transition of a contact or an agent.
//!
//! Every event carries its id (consumers deduplicate on it), the time, the tenant (so
//! every consumer can keep tenants apart), the site, and a trace id (one contact's journey
//! is one trace). Contact events are keyed by tenant and contact, agent events by tenant
//! and agent, so order holds per key on a partitioned log.
//!
//! Figures consumers need (wait, talk and wrap-up times) travel in the events themselves,
//! so KPI can compute them without joining anything.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::agent::AgentStatus;
use crate::channel::Channel;
use crate::contact::{DeclineReason, FailReason, OverflowTarget};
use crate::ids::{AgentId, ContactId, EventId, QueueId, SiteId, TenantId, TraceId};
use crate::time::Timestamp;

/// The version of this event schema, carried by every encoded event so consumers can
/// refuse (and quarantine) versions they do not know.
pub const SCHEMA_VERSION: u32 = 1;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Unique id; consumers are idempotent on it.
    pub id: EventId,
    /// When it happened.
    pub at: Timestamp,
    /// Whose event it is.
    pub tenant: TenantId,
    /// Where it happened.
    pub site: SiteId,
    /// The trace of the contact's journey (for agent events, of the agent's session).
    pub trace: TraceId,
    /// What happened.
    pub body: EventBody,
}

impl Event {
    /// The partition key: tenant and contact, or tenant and agent.
    pub fn key(&self) -> String {
        match &self.body {
            EventBody::Contact(c) => format!("{}/{}", self.tenant, c.contact),
            EventBody::Agent(a) => format!("{}/{}", self.tenant, a.agent),
        }
    }

    /// Whether this event ends a contact's life at its site.
    pub fn is_terminal(&self) -> bool {
        matches!(&self.body, EventBody::Contact(c) if c.kind.is_terminal())
    }
}

/// A contact event or an agent event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum EventBody {
    /// Something happened to a contact.
    Contact(ContactEvent),
    /// Something happened to an agent.
    Agent(AgentEvent),
}

/// Something that happened to a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactEvent {
    /// The contact.
    pub contact: ContactId,
    /// Its channel.
    pub channel: Channel,
    /// The queue it was in when this happened, if any.
    pub queue: Option<QueueId>,
    /// The agent involved, if any.
    pub agent: Option<AgentId>,
    /// What happened.
    pub kind: ContactEventKind,
}

/// What happened to a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ContactEventKind {
    /// Reached the site.
    Arrived {
        /// Who the customer is, as the channel knows them (caller number, chat user,
        /// e-mail), when known: what first-contact resolution and the CRM's screen pop
        /// match on.
        customer: Option<Arc<str>>,
    },
    /// Entered an IVR flow.
    IvrEntered,
    /// Joined the queue named in the event.
    Queued {
        /// Its priority there (higher first).
        priority: u8,
    },
    /// Waited long enough for the queue's next expansion step (bullseye ring).
    Expanded {
        /// The step now in force (1 = first expansion).
        step: u8,
    },
    /// Offered to the agent named in the event.
    Offered {
        /// How many offers this contact has had, this one included.
        attempt: u32,
    },
    /// The offer to the agent named in the event ended without a conversation; the
    /// contact is back in its place.
    OfferDeclined {
        /// Why.
        reason: DeclineReason,
    },
    /// The agent took it.
    Connected {
        /// Time from queueing to answer, in milliseconds.
        wait_ms: u64,
    },
    /// The conversation ended; wrap-up began.
    WrapUpStarted {
        /// Time in conversation, in milliseconds.
        talk_ms: u64,
    },
    /// Wrap-up ended; the contact is handled. Terminal.
    Done {
        /// Time in conversation, in milliseconds (hold included).
        talk_ms: u64,
        /// Of the conversation, time the customer was on hold, in milliseconds.
        hold_ms: u64,
        /// Time in wrap-up, in milliseconds.
        wrap_ms: u64,
    },
    /// The customer left before an agent answered. Terminal.
    Abandoned {
        /// Time from queueing to hang-up, in milliseconds (0 if never queued).
        wait_ms: u64,
        /// Whether an agent was being offered the contact at that moment.
        while_offered: bool,
    },
    /// The customer was offered a callback (by queue policy).
    CallbackOffered,
    /// The customer chose a callback; it keeps its place.
    CallbackRequested,
    /// Moved to another queue (the event's queue is the one it left) or to another site
    /// (terminal here).
    Overflowed {
        /// Where it went.
        to: OverflowTarget,
        /// Why, e.g. `max_wait`, `queue_full`, `no_agents`, `supervisor`.
        reason: String,
    },
    /// An agent transferred the contact (the event's queue is the one it left, the
    /// event's agent the one who transferred it).
    Transferred {
        /// Where it went.
        to: OverflowTarget,
    },
    /// The customer left a voicemail. Terminal.
    Voicemail {
        /// Why it went to voicemail.
        reason: String,
    },
    /// The system ended it. Terminal.
    Failed {
        /// Why.
        reason: FailReason,
    },
    /// Entered a node of an IVR flow, so the path a contact took is on record.
    IvrNode {
        /// The flow's name.
        flow: String,
        /// The flow's version (the routing state's document version).
        version: u32,
        /// The node's id in the flow.
        node: String,
    },
    /// A cross-site overflow was tried for the contact and did not (yet) move it: the
    /// decision and why. A move that succeeds is an `overflowed` event to the site.
    OverflowAttempt {
        /// The site asked, if one qualified.
        to: Option<SiteId>,
        /// What made the queue's policy fire, e.g. `waited 30 s`, `expected wait 95 s`.
        reason: String,
        /// How it ended.
        outcome: OverflowOutcome,
        /// Details: the refusal's reason, the candidates passed over.
        detail: String,
    },
    /// The agent named in the event recorded how the contact ended (a disposition code
    /// and notes), during or after wrap-up.
    Dispositioned {
        /// The tenant's disposition code, e.g. `resolved`, `sale`, `escalated`.
        code: String,
        /// Free-text notes.
        notes: String,
    },
}

/// How a cross-site overflow attempt ended, when it did not move the contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowOutcome {
    /// No site qualified (none active, fresh, serving the queue, with ready agents).
    NoSite,
    /// The site refused the reservation (no free skilled agent after all, draining).
    Refused,
    /// The site did not answer in time.
    TimedOut,
    /// A reservation was made but the transfer failed; the contact kept its place.
    TransferFailed,
}

impl OverflowOutcome {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            OverflowOutcome::NoSite => "no_site",
            OverflowOutcome::Refused => "refused",
            OverflowOutcome::TimedOut => "timed_out",
            OverflowOutcome::TransferFailed => "transfer_failed",
        }
    }
}

impl ContactEventKind {
    /// Whether this event ends the contact's life at its site.
    pub fn is_terminal(&self) -> bool {
        match self {
            ContactEventKind::Done { .. }
            | ContactEventKind::Abandoned { .. }
            | ContactEventKind::Voicemail { .. }
            | ContactEventKind::Failed { .. } => true,
            ContactEventKind::Overflowed { to, .. } => matches!(to, OverflowTarget::Site(_)),
            _ => false,
        }
    }

    /// The snake_case name of the event.
    pub fn name(&self) -> &'static str {
        match self {
            ContactEventKind::Arrived { .. } => "arrived",
            ContactEventKind::IvrEntered => "ivr_entered",
            ContactEventKind::Queued { .. } => "queued",
            ContactEventKind::Expanded { .. } => "expanded",
            ContactEventKind::Offered { .. } => "offered",
            ContactEventKind::OfferDeclined { .. } => "offer_declined",
            ContactEventKind::Connected { .. } => "connected",
            ContactEventKind::WrapUpStarted { .. } => "wrap_up_started",
            ContactEventKind::Done { .. } => "done",
            ContactEventKind::Abandoned { .. } => "abandoned",
            ContactEventKind::CallbackOffered => "callback_offered",
            ContactEventKind::CallbackRequested => "callback_requested",
            ContactEventKind::Overflowed { .. } => "overflowed",
            ContactEventKind::Transferred { .. } => "transferred",
            ContactEventKind::Voicemail { .. } => "voicemail",
            ContactEventKind::Failed { .. } => "failed",
            ContactEventKind::IvrNode { .. } => "ivr_node",
            ContactEventKind::OverflowAttempt { .. } => "overflow_attempt",
            ContactEventKind::Dispositioned { .. } => "dispositioned",
        }
    }
}

/// Something that happened to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentEvent {
    /// The agent.
    pub agent: AgentId,
    /// What happened.
    pub kind: AgentEventKind,
    /// The agent's state after it, as people see it.
    pub status: AgentStatus,
}

/// What happened to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum AgentEventKind {
    /// Started working.
    LoggedIn,
    /// Chose to take contacts.
    Ready,
    /// Chose (or was sent) not ready.
    NotReady {
        /// The reason label.
        reason: String,
    },
    /// Stopped working.
    LoggedOut,
    /// A contact was offered to them.
    Reserved {
        /// The contact.
        contact: ContactId,
    },
    /// The agent rejected an offer.
    OfferRejected {
        /// The contact.
        contact: ContactId,
    },
    /// An offer was withdrawn (the customer hung up, or the agent logged out).
    OfferRescinded {
        /// The contact.
        contact: ContactId,
    },
    /// An offer went unanswered.
    OfferMissed {
        /// The contact.
        contact: ContactId,
        /// Misses in a row, this one included.
        in_row: u32,
    },
    /// A conversation began.
    ContactStarted {
        /// The contact.
        contact: ContactId,
    },
    /// A conversation ended and wrap-up began.
    WrapUpStarted {
        /// The contact.
        contact: ContactId,
    },
    /// Wrap-up was extended.
    WrapUpExtended {
        /// The contact.
        contact: ContactId,
        /// Added time, in seconds.
        secs: u32,
    },
    /// Wrap-up ended.
    WrapUpEnded {
        /// The contact.
        contact: ContactId,
    },
    /// The agent's session failed and was restarted.
    Recovered,
}

/// Where events go. The event log implements it (Kafka, or embedded segment files);
/// tests and the simulator use in-memory sinks. `publish` must not block for long: the
/// ACD calls it from its actors.
pub trait EventSink: Send + Sync + 'static {
    /// Hands over a batch of events, in order.
    fn publish(&self, events: &[Event]);
}

/// A sink that drops everything, for benchmarks that measure routing alone.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl EventSink for NullSink {
    fn publish(&self, _events: &[Event]) {}
}

/// A sink that keeps every event in memory, for tests and small tools.
#[derive(Debug, Default)]
pub struct MemorySink {
    events: std::sync::Mutex<Vec<Event>>,
}

impl MemorySink {
    /// A copy of everything published so far.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many events were published.
    pub fn len(&self) -> usize {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether nothing was published.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl EventSink for MemorySink {
    fn publish(&self, events: &[Event]) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(events);
    }
}
