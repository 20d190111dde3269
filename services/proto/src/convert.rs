//! Domain ⇄ wire: [`hotline_core::event::Event`] to and from [`crate::events::v1::Event`], and
//! the bytes the event log carries.
//!
//! Encoding is total: every domain value has a wire form. Decoding is where bad data is
//! caught — a writer with a newer schema, a missing field, an enum value from the future,
//! an id of the wrong size or text — and each is refused with a [`DecodeError`] that
//! names the field (as `Message.field` in the `.proto`) and the value found, so a
//! quarantined event can be explained without a debugger.
//!
//! Ids of contacts, events and traces travel as 16 big-endian bytes: the UUID's own byte
//! order, so consumers in any language read the same UUID.
//!
//! The smaller helpers (`decode_channel`, `decode_name`, …) are public because the
//! gRPC adapters of other APIs that share these shapes need exactly the same checks.

use std::str::FromStr;

use hotline_core::agent::AgentStatus;
use hotline_core::channel::Channel;
use hotline_core::contact::{DeclineReason, FailReason, OverflowTarget};
use hotline_core::event::{
    AgentEvent, AgentEventKind, ContactEvent, ContactEventKind, Event, EventBody, OverflowOutcome,
    SCHEMA_VERSION,
};
use hotline_core::ids::{ContactId, EventId, InvalidId, TraceId};
use hotline_core::time::Timestamp;
use prost::Message;

use crate::events::v1 as pb;
use pb::{agent_event as pa, contact_event as pc};

/// Why bytes or a wire message could not become a domain event. Nothing here is worth
/// retrying: the same bytes fail the same way, so consumers quarantine the event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a protobuf `Event` at all (truncated, or another message).
    #[error("undecodable event: {0}")]
    Malformed(#[from] prost::DecodeError),
    /// The writer used a schema version this build does not know; reading it as ours
    /// could misreport what happened.
    #[error("unknown event schema_version {0} (this build reads {SCHEMA_VERSION})")]
    UnknownVersion(u32),
    /// A required field was absent (or, for an enum, left at `*_UNSPECIFIED`).
    #[error("{field} is missing")]
    Missing {
        /// The field, as `Message.field`.
        field: &'static str,
    },
    /// An enum field held a number this schema does not define (a newer writer's value).
    #[error("{field} has unknown value {value}")]
    UnknownEnum {
        /// The field, as `Message.field`.
        field: &'static str,
        /// The number found.
        value: i32,
    },
    /// A name (tenant, site, queue, agent) broke the rules for ids.
    #[error("{field} is not a valid {kind} id: {value:?} {reason}")]
    InvalidId {
        /// The field, as `Message.field`.
        field: &'static str,
        /// Which kind of id it should have been.
        kind: &'static str,
        /// The text found.
        value: String,
        /// The rule it broke.
        reason: &'static str,
    },
    /// A 128-bit id (contact, event, trace) was not 16 bytes long.
    #[error("{field} must be 16 bytes, got {len}")]
    IdLength {
        /// The field, as `Message.field`.
        field: &'static str,
        /// The length found.
        len: usize,
    },
    /// A number was wider than its domain type (proto has no byte-sized integers).
    #[error("{field} must be at most {max}, got {value}")]
    OutOfRange {
        /// The field, as `Message.field`.
        field: &'static str,
        /// The number found.
        value: u64,
        /// The largest value allowed.
        max: u64,
    },
}

/// Encodes an event as the bytes the event log carries.
pub fn encode_event(event: &Event) -> Vec<u8> {
    pb::Event::from(event).encode_to_vec()
}

/// Decodes an event from the event log's bytes, checking every field.
pub fn decode_event(bytes: &[u8]) -> Result<Event, DecodeError> {
    Event::try_from(pb::Event::decode(bytes)?)
}

// === impl Event ===

impl From<&Event> for pb::Event {
    fn from(e: &Event) -> Self {
        pb::Event {
            schema_version: SCHEMA_VERSION,
            id: uuid_bytes(e.id.as_u128()),
            at_micros: e.at.micros(),
            tenant: e.tenant.as_str().to_owned(),
            site: e.site.as_str().to_owned(),
            trace: uuid_bytes(e.trace.as_u128()),
            body: Some(match &e.body {
                EventBody::Contact(c) => pb::event::Body::Contact(c.into()),
                EventBody::Agent(a) => pb::event::Body::Agent(a.into()),
            }),
        }
    }
}

impl TryFrom<pb::Event> for Event {
    type Error = DecodeError;

    fn try_from(e: pb::Event) -> Result<Self, DecodeError> {
        // First, so that a newer writer's event is reported as such and not as whatever
        // field happens to look wrong under our reading.
        if e.schema_version != SCHEMA_VERSION {
            return Err(DecodeError::UnknownVersion(e.schema_version));
        }
        Ok(Event {
            id: EventId::from_u128(decode_u128("Event.id", &e.id)?),
            at: Timestamp(e.at_micros),
            tenant: decode_name("Event.tenant", &e.tenant)?,
            site: decode_name("Event.site", &e.site)?,
            trace: TraceId::from_u128(decode_u128("Event.trace", &e.trace)?),
            body: match e.body {
                Some(pb::event::Body::Contact(c)) => EventBody::Contact(c.try_into()?),
                Some(pb::event::Body::Agent(a)) => EventBody::Agent(a.try_into()?),
                None => {
                    return Err(DecodeError::Missing {
                        field: "Event.body",
                    });
                }
            },
        })
    }
}

// === impl ContactEvent ===

impl From<&ContactEvent> for pb::ContactEvent {
    fn from(c: &ContactEvent) -> Self {
        use pc::Kind;
        let kind = match &c.kind {
            ContactEventKind::Arrived { customer } => Kind::Arrived(pc::Arrived {
                customer: customer.as_deref().unwrap_or_default().to_owned(),
            }),
            ContactEventKind::IvrEntered => Kind::IvrEntered(pc::IvrEntered {}),
            ContactEventKind::Queued { priority } => Kind::Queued(pc::Queued {
                priority: u32::from(*priority),
            }),
            ContactEventKind::Expanded { step } => Kind::Expanded(pc::Expanded {
                step: u32::from(*step),
            }),
            ContactEventKind::Offered { attempt } => {
                Kind::Offered(pc::Offered { attempt: *attempt })
            }
            ContactEventKind::OfferDeclined { reason } => Kind::OfferDeclined(pc::OfferDeclined {
                reason: pb::DeclineReason::from(*reason).into(),
            }),
            ContactEventKind::Connected { wait_ms } => {
                Kind::Connected(pc::Connected { wait_ms: *wait_ms })
            }
            ContactEventKind::WrapUpStarted { talk_ms } => {
                Kind::WrapUpStarted(pc::WrapUpStarted { talk_ms: *talk_ms })
            }
            ContactEventKind::Done {
                talk_ms,
                hold_ms,
                wrap_ms,
            } => Kind::Done(pc::Done {
                talk_ms: *talk_ms,
                hold_ms: *hold_ms,
                wrap_ms: *wrap_ms,
            }),
            ContactEventKind::Abandoned {
                wait_ms,
                while_offered,
            } => Kind::Abandoned(pc::Abandoned {
                wait_ms: *wait_ms,
                while_offered: *while_offered,
            }),
            ContactEventKind::CallbackOffered => Kind::CallbackOffered(pc::CallbackOffered {}),
            ContactEventKind::CallbackRequested => {
                Kind::CallbackRequested(pc::CallbackRequested {})
            }
            ContactEventKind::Overflowed { to, reason } => Kind::Overflowed(pc::Overflowed {
                to: Some(to.into()),
                reason: reason.clone(),
            }),
            ContactEventKind::Transferred { to } => Kind::Transferred(pc::Transferred {
                to: Some(to.into()),
            }),
            ContactEventKind::Voicemail { reason } => Kind::Voicemail(pc::Voicemail {
                reason: reason.clone(),
            }),
            ContactEventKind::Failed { reason } => Kind::Failed(pc::Failed {
                reason: pb::FailReason::from(*reason).into(),
            }),
            ContactEventKind::IvrNode {
                flow,
                version,
                node,
            } => Kind::IvrNode(pc::IvrNode {
                flow: flow.clone(),
                version: *version,
                node: node.clone(),
            }),
            ContactEventKind::OverflowAttempt {
                to,
                reason,
                outcome,
                detail,
            } => Kind::OverflowAttempt(pc::OverflowAttempt {
                to: to
                    .as_ref()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                reason: reason.clone(),
                outcome: pb::OverflowOutcome::from(*outcome).into(),
                detail: detail.clone(),
            }),
            ContactEventKind::Dispositioned { code, notes } => {
                Kind::Dispositioned(pc::Dispositioned {
                    code: code.clone(),
                    notes: notes.clone(),
                })
            }
        };
        pb::ContactEvent {
            contact: uuid_bytes(c.contact.as_u128()),
            channel: pb::Channel::from(c.channel).into(),
            queue: c.queue.as_ref().map(|q| q.as_str().to_owned()),
            agent: c.agent.as_ref().map(|a| a.as_str().to_owned()),
            kind: Some(kind),
        }
    }
}

impl TryFrom<pb::ContactEvent> for ContactEvent {
    type Error = DecodeError;

    fn try_from(c: pb::ContactEvent) -> Result<Self, DecodeError> {
        use pc::Kind;
        let kind = match c.kind {
            Some(Kind::Arrived(k)) => ContactEventKind::Arrived {
                customer: (!k.customer.is_empty()).then(|| k.customer.into()),
            },
            Some(Kind::IvrEntered(pc::IvrEntered {})) => ContactEventKind::IvrEntered,
            Some(Kind::Queued(k)) => ContactEventKind::Queued {
                priority: decode_u8("ContactEvent.Queued.priority", k.priority)?,
            },
            Some(Kind::Expanded(k)) => ContactEventKind::Expanded {
                step: decode_u8("ContactEvent.Expanded.step", k.step)?,
            },
            Some(Kind::Offered(k)) => ContactEventKind::Offered { attempt: k.attempt },
            Some(Kind::OfferDeclined(k)) => ContactEventKind::OfferDeclined {
                reason: decode_decline_reason("ContactEvent.OfferDeclined.reason", k.reason)?,
            },
            Some(Kind::Connected(k)) => ContactEventKind::Connected { wait_ms: k.wait_ms },
            Some(Kind::WrapUpStarted(k)) => ContactEventKind::WrapUpStarted { talk_ms: k.talk_ms },
            Some(Kind::Done(k)) => ContactEventKind::Done {
                talk_ms: k.talk_ms,
                hold_ms: k.hold_ms,
                wrap_ms: k.wrap_ms,
            },
            Some(Kind::Abandoned(k)) => ContactEventKind::Abandoned {
                wait_ms: k.wait_ms,
                while_offered: k.while_offered,
            },
            Some(Kind::CallbackOffered(pc::CallbackOffered {})) => {
                ContactEventKind::CallbackOffered
            }
            Some(Kind::CallbackRequested(pc::CallbackRequested {})) => {
                ContactEventKind::CallbackRequested
            }
            Some(Kind::Overflowed(k)) => ContactEventKind::Overflowed {
                to: match k.to {
                    Some(to) => to.try_into()?,
                    None => {
                        return Err(DecodeError::Missing {
                            field: "ContactEvent.Overflowed.to",
                        });
                    }
                },
                reason: k.reason,
            },
            Some(Kind::Transferred(k)) => ContactEventKind::Transferred {
                to: match k.to {
                    Some(to) => to.try_into()?,
                    None => {
                        return Err(DecodeError::Missing {
                            field: "ContactEvent.Transferred.to",
                        });
                    }
                },
            },
            Some(Kind::Voicemail(k)) => ContactEventKind::Voicemail { reason: k.reason },
            Some(Kind::Failed(k)) => ContactEventKind::Failed {
                reason: decode_fail_reason("ContactEvent.Failed.reason", k.reason)?,
            },
            Some(Kind::IvrNode(k)) => ContactEventKind::IvrNode {
                flow: k.flow,
                version: k.version,
                node: k.node,
            },
            Some(Kind::OverflowAttempt(k)) => ContactEventKind::OverflowAttempt {
                to: (!k.to.is_empty())
                    .then(|| decode_name("ContactEvent.OverflowAttempt.to", &k.to))
                    .transpose()?,
                reason: k.reason,
                outcome: decode_overflow_outcome(
                    "ContactEvent.OverflowAttempt.outcome",
                    k.outcome,
                )?,
                detail: k.detail,
            },
            Some(Kind::Dispositioned(k)) => ContactEventKind::Dispositioned {
                code: k.code,
                notes: k.notes,
            },
            None => {
                return Err(DecodeError::Missing {
                    field: "ContactEvent.kind",
                });
            }
        };
        Ok(ContactEvent {
            contact: ContactId::from_u128(decode_u128("ContactEvent.contact", &c.contact)?),
            channel: decode_channel("ContactEvent.channel", c.channel)?,
            queue: c
                .queue
                .map(|q| decode_name("ContactEvent.queue", &q))
                .transpose()?,
            agent: c
                .agent
                .map(|a| decode_name("ContactEvent.agent", &a))
                .transpose()?,
            kind,
        })
    }
}

impl From<&OverflowTarget> for pb::OverflowTarget {
    fn from(to: &OverflowTarget) -> Self {
        use pb::overflow_target::Target;
        pb::OverflowTarget {
            target: Some(match to {
                OverflowTarget::Queue(q) => Target::Queue(q.as_str().to_owned()),
                OverflowTarget::Site(s) => Target::Site(s.as_str().to_owned()),
            }),
        }
    }
}

impl TryFrom<pb::OverflowTarget> for OverflowTarget {
    type Error = DecodeError;

    fn try_from(to: pb::OverflowTarget) -> Result<Self, DecodeError> {
        use pb::overflow_target::Target;
        match to.target {
            Some(Target::Queue(q)) => Ok(OverflowTarget::Queue(decode_name(
                "OverflowTarget.queue",
                &q,
            )?)),
            Some(Target::Site(s)) => Ok(OverflowTarget::Site(decode_name(
                "OverflowTarget.site",
                &s,
            )?)),
            None => Err(DecodeError::Missing {
                field: "OverflowTarget.target",
            }),
        }
    }
}

// === impl AgentEvent ===

impl From<&AgentEvent> for pb::AgentEvent {
    fn from(a: &AgentEvent) -> Self {
        use pa::Kind;
        let contact = |c: &ContactId| uuid_bytes(c.as_u128());
        let kind = match &a.kind {
            AgentEventKind::LoggedIn => Kind::LoggedIn(pa::LoggedIn {}),
            AgentEventKind::Ready => Kind::Ready(pa::Ready {}),
            AgentEventKind::NotReady { reason } => Kind::NotReady(pa::NotReady {
                reason: reason.clone(),
            }),
            AgentEventKind::LoggedOut => Kind::LoggedOut(pa::LoggedOut {}),
            AgentEventKind::Reserved { contact: c } => Kind::Reserved(pa::Reserved {
                contact: contact(c),
            }),
            AgentEventKind::OfferRejected { contact: c } => {
                Kind::OfferRejected(pa::OfferRejected {
                    contact: contact(c),
                })
            }
            AgentEventKind::OfferRescinded { contact: c } => {
                Kind::OfferRescinded(pa::OfferRescinded {
                    contact: contact(c),
                })
            }
            AgentEventKind::OfferMissed { contact: c, in_row } => {
                Kind::OfferMissed(pa::OfferMissed {
                    contact: contact(c),
                    in_row: *in_row,
                })
            }
            AgentEventKind::ContactStarted { contact: c } => {
                Kind::ContactStarted(pa::ContactStarted {
                    contact: contact(c),
                })
            }
            AgentEventKind::WrapUpStarted { contact: c } => {
                Kind::WrapUpStarted(pa::WrapUpStarted {
                    contact: contact(c),
                })
            }
            AgentEventKind::WrapUpExtended { contact: c, secs } => {
                Kind::WrapUpExtended(pa::WrapUpExtended {
                    contact: contact(c),
                    secs: *secs,
                })
            }
            AgentEventKind::WrapUpEnded { contact: c } => Kind::WrapUpEnded(pa::WrapUpEnded {
                contact: contact(c),
            }),
            AgentEventKind::Recovered => Kind::Recovered(pa::Recovered {}),
        };
        pb::AgentEvent {
            agent: a.agent.as_str().to_owned(),
            status: Some((&a.status).into()),
            kind: Some(kind),
        }
    }
}

impl TryFrom<pb::AgentEvent> for AgentEvent {
    type Error = DecodeError;

    fn try_from(a: pb::AgentEvent) -> Result<Self, DecodeError> {
        use pa::Kind;
        let contact = |field, bytes: &[u8]| decode_u128(field, bytes).map(ContactId::from_u128);
        let kind = match a.kind {
            Some(Kind::LoggedIn(pa::LoggedIn {})) => AgentEventKind::LoggedIn,
            Some(Kind::Ready(pa::Ready {})) => AgentEventKind::Ready,
            Some(Kind::NotReady(k)) => AgentEventKind::NotReady { reason: k.reason },
            Some(Kind::LoggedOut(pa::LoggedOut {})) => AgentEventKind::LoggedOut,
            Some(Kind::Reserved(k)) => AgentEventKind::Reserved {
                contact: contact("AgentEvent.Reserved.contact", &k.contact)?,
            },
            Some(Kind::OfferRejected(k)) => AgentEventKind::OfferRejected {
                contact: contact("AgentEvent.OfferRejected.contact", &k.contact)?,
            },
            Some(Kind::OfferRescinded(k)) => AgentEventKind::OfferRescinded {
                contact: contact("AgentEvent.OfferRescinded.contact", &k.contact)?,
            },
            Some(Kind::OfferMissed(k)) => AgentEventKind::OfferMissed {
                contact: contact("AgentEvent.OfferMissed.contact", &k.contact)?,
                in_row: k.in_row,
            },
            Some(Kind::ContactStarted(k)) => AgentEventKind::ContactStarted {
                contact: contact("AgentEvent.ContactStarted.contact", &k.contact)?,
            },
            Some(Kind::WrapUpStarted(k)) => AgentEventKind::WrapUpStarted {
                contact: contact("AgentEvent.WrapUpStarted.contact", &k.contact)?,
            },
            Some(Kind::WrapUpExtended(k)) => AgentEventKind::WrapUpExtended {
                contact: contact("AgentEvent.WrapUpExtended.contact", &k.contact)?,
                secs: k.secs,
            },
            Some(Kind::WrapUpEnded(k)) => AgentEventKind::WrapUpEnded {
                contact: contact("AgentEvent.WrapUpEnded.contact", &k.contact)?,
            },
            Some(Kind::Recovered(pa::Recovered {})) => AgentEventKind::Recovered,
            None => {
                return Err(DecodeError::Missing {
                    field: "AgentEvent.kind",
                });
            }
        };
        Ok(AgentEvent {
            agent: decode_name("AgentEvent.agent", &a.agent)?,
            kind,
            status: match a.status {
                Some(s) => decode_agent_status(s)?,
                None => {
                    return Err(DecodeError::Missing {
                        field: "AgentEvent.status",
                    });
                }
            },
        })
    }
}

impl From<&AgentStatus> for pb::AgentStatus {
    fn from(s: &AgentStatus) -> Self {
        let (state, reason) = match s {
            AgentStatus::LoggedOut => (pb::AgentState::LoggedOut, ""),
            AgentStatus::Ready => (pb::AgentState::Ready, ""),
            AgentStatus::Reserved => (pb::AgentState::Reserved, ""),
            AgentStatus::OnContact => (pb::AgentState::OnContact, ""),
            AgentStatus::WrapUp => (pb::AgentState::WrapUp, ""),
            AgentStatus::NotReady(reason) => (pb::AgentState::NotReady, reason.as_str()),
        };
        pb::AgentStatus {
            state: state.into(),
            not_ready_reason: reason.to_owned(),
        }
    }
}

/// Reads an agent's status. A `not_ready_reason` beside any state but not ready is
/// ignored, as the schema says it is meaningless there.
pub fn decode_agent_status(s: pb::AgentStatus) -> Result<AgentStatus, DecodeError> {
    const FIELD: &str = "AgentStatus.state";
    Ok(match pb::AgentState::try_from(s.state) {
        Ok(pb::AgentState::LoggedOut) => AgentStatus::LoggedOut,
        Ok(pb::AgentState::Ready) => AgentStatus::Ready,
        Ok(pb::AgentState::Reserved) => AgentStatus::Reserved,
        Ok(pb::AgentState::OnContact) => AgentStatus::OnContact,
        Ok(pb::AgentState::WrapUp) => AgentStatus::WrapUp,
        Ok(pb::AgentState::NotReady) => AgentStatus::NotReady(s.not_ready_reason),
        Ok(pb::AgentState::Unspecified) => return Err(DecodeError::Missing { field: FIELD }),
        Err(_) => {
            return Err(DecodeError::UnknownEnum {
                field: FIELD,
                value: s.state,
            });
        }
    })
}

// === impl enums ===

impl From<Channel> for pb::Channel {
    fn from(c: Channel) -> Self {
        match c {
            Channel::Voice => pb::Channel::Voice,
            Channel::Chat => pb::Channel::Chat,
            Channel::Callback => pb::Channel::Callback,
        }
    }
}

/// Reads a channel from the enum number in `field`.
pub fn decode_channel(field: &'static str, value: i32) -> Result<Channel, DecodeError> {
    match pb::Channel::try_from(value) {
        Ok(pb::Channel::Voice) => Ok(Channel::Voice),
        Ok(pb::Channel::Chat) => Ok(Channel::Chat),
        Ok(pb::Channel::Callback) => Ok(Channel::Callback),
        Ok(pb::Channel::Unspecified) => Err(DecodeError::Missing { field }),
        Err(_) => Err(DecodeError::UnknownEnum { field, value }),
    }
}

impl From<DeclineReason> for pb::DeclineReason {
    fn from(r: DeclineReason) -> Self {
        match r {
            DeclineReason::Rejected => pb::DeclineReason::Rejected,
            DeclineReason::NoAnswer => pb::DeclineReason::NoAnswer,
            DeclineReason::Refused => pb::DeclineReason::Refused,
            DeclineReason::AgentFailed => pb::DeclineReason::AgentFailed,
        }
    }
}

/// Reads a decline reason from the enum number in `field`.
pub fn decode_decline_reason(
    field: &'static str,
    value: i32,
) -> Result<DeclineReason, DecodeError> {
    match pb::DeclineReason::try_from(value) {
        Ok(pb::DeclineReason::Rejected) => Ok(DeclineReason::Rejected),
        Ok(pb::DeclineReason::NoAnswer) => Ok(DeclineReason::NoAnswer),
        Ok(pb::DeclineReason::Refused) => Ok(DeclineReason::Refused),
        Ok(pb::DeclineReason::AgentFailed) => Ok(DeclineReason::AgentFailed),
        Ok(pb::DeclineReason::Unspecified) => Err(DecodeError::Missing { field }),
        Err(_) => Err(DecodeError::UnknownEnum { field, value }),
    }
}

impl From<FailReason> for pb::FailReason {
    fn from(r: FailReason) -> Self {
        match r {
            FailReason::QueueFull => pb::FailReason::QueueFull,
            FailReason::MaxWait => pb::FailReason::MaxWait,
            FailReason::NoAgents => pb::FailReason::NoAgents,
            FailReason::Misrouted => pb::FailReason::Misrouted,
            FailReason::Internal => pb::FailReason::Internal,
        }
    }
}

/// Reads a fail reason from the enum number in `field`.
pub fn decode_fail_reason(field: &'static str, value: i32) -> Result<FailReason, DecodeError> {
    match pb::FailReason::try_from(value) {
        Ok(pb::FailReason::QueueFull) => Ok(FailReason::QueueFull),
        Ok(pb::FailReason::MaxWait) => Ok(FailReason::MaxWait),
        Ok(pb::FailReason::NoAgents) => Ok(FailReason::NoAgents),
        Ok(pb::FailReason::Misrouted) => Ok(FailReason::Misrouted),
        Ok(pb::FailReason::Internal) => Ok(FailReason::Internal),
        Ok(pb::FailReason::Unspecified) => Err(DecodeError::Missing { field }),
        Err(_) => Err(DecodeError::UnknownEnum { field, value }),
    }
}

impl From<OverflowOutcome> for pb::OverflowOutcome {
    fn from(o: OverflowOutcome) -> Self {
        match o {
            OverflowOutcome::NoSite => pb::OverflowOutcome::NoSite,
            OverflowOutcome::Refused => pb::OverflowOutcome::Refused,
            OverflowOutcome::TimedOut => pb::OverflowOutcome::TimedOut,
            OverflowOutcome::TransferFailed => pb::OverflowOutcome::TransferFailed,
        }
    }
}

/// Reads an overflow outcome from the enum number in `field`.
pub fn decode_overflow_outcome(
    field: &'static str,
    value: i32,
) -> Result<OverflowOutcome, DecodeError> {
    match pb::OverflowOutcome::try_from(value) {
        Ok(pb::OverflowOutcome::NoSite) => Ok(OverflowOutcome::NoSite),
        Ok(pb::OverflowOutcome::Refused) => Ok(OverflowOutcome::Refused),
        Ok(pb::OverflowOutcome::TimedOut) => Ok(OverflowOutcome::TimedOut),
        Ok(pb::OverflowOutcome::TransferFailed) => Ok(OverflowOutcome::TransferFailed),
        Ok(pb::OverflowOutcome::Unspecified) => Err(DecodeError::Missing { field }),
        Err(_) => Err(DecodeError::UnknownEnum { field, value }),
    }
}

// === ids and numbers ===

/// The wire form of a 128-bit id: 16 big-endian bytes, the UUID's own byte order.
pub fn uuid_bytes(id: u128) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

/// Reads a 128-bit id (contact, event, trace) from the 16 bytes in `field`.
pub fn decode_u128(field: &'static str, bytes: &[u8]) -> Result<u128, DecodeError> {
    <[u8; 16]>::try_from(bytes)
        .map(u128::from_be_bytes)
        .map_err(|_| DecodeError::IdLength {
            field,
            len: bytes.len(),
        })
}

/// Reads a name id (tenant, site, queue, agent, …) from the text in `field`, with the
/// same rules as configuration.
pub fn decode_name<T>(field: &'static str, text: &str) -> Result<T, DecodeError>
where
    T: FromStr<Err = InvalidId>,
{
    text.parse().map_err(|e: InvalidId| DecodeError::InvalidId {
        field,
        kind: e.kind,
        value: e.value,
        reason: e.reason,
    })
}

/// Narrows a wire `uint32` to the byte the domain holds.
fn decode_u8(field: &'static str, value: u32) -> Result<u8, DecodeError> {
    u8::try_from(value).map_err(|_| DecodeError::OutOfRange {
        field,
        value: u64::from(value),
        max: u64::from(u8::MAX),
    })
}

#[cfg(test)]
mod tests;
