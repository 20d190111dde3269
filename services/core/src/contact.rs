//! The contact state machine.
//!
//! ```text
//! arrived ─▶ ivr ─▶ queued ◀──────────────▶ offered ─▶ connected ─▶ wrap_up ─▶ done
//!    │        │       │  ▲  (decline: back in place)      │
//!    │        │       │  └──────── transfer (an agent's) ─┘
//!    │        │       ▼  │                                                
//!    │        │   callback_requested ─▶ offered …                          
//!    └────────┴───────┴──▶ abandoned | overflowed (to a site) | voicemail | failed
//! ```
//!
//! A contact waiting in a queue may move to another queue (overflow within a site, or a
//! supervisor's move) and stays `queued`; overflow to another site ends its life here.
//! [`ContactLife::apply`] accepts every legal transition and refuses every other one with
//! an [`IllegalContactTransition`] naming both the state and the transition.

use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, QueueId, SiteId};

/// Where a contact is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactState {
    /// Reached the site; nothing decided yet.
    Arrived,
    /// In an IVR flow.
    Ivr,
    /// Waiting in a queue for an agent.
    Queued,
    /// The customer asked to be called back; the request keeps its place in line.
    CallbackRequested,
    /// Offered to one agent, who has not answered yet.
    Offered,
    /// Talking (or chatting) with an agent.
    Connected,
    /// The conversation is over; the agent is wrapping up.
    WrapUp,
    /// Handled. Terminal.
    Done,
    /// The customer left before an agent answered. Terminal.
    Abandoned,
    /// Handed to another site. Terminal here; the other site continues it.
    Overflowed,
    /// The customer left a voicemail. Terminal.
    Voicemail,
    /// Ended by the system (queue full, no agents, an error). Terminal.
    Failed,
}

impl ContactState {
    /// Whether the contact's life at this site is over.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            ContactState::Done
                | ContactState::Abandoned
                | ContactState::Overflowed
                | ContactState::Voicemail
                | ContactState::Failed
        )
    }

    /// Whether the contact is waiting for an agent (in line, as a call or a callback).
    pub const fn is_waiting(self) -> bool {
        matches!(self, ContactState::Queued | ContactState::CallbackRequested)
    }

    /// The snake_case name used in events, metrics and pages.
    pub const fn as_str(self) -> &'static str {
        match self {
            ContactState::Arrived => "arrived",
            ContactState::Ivr => "ivr",
            ContactState::Queued => "queued",
            ContactState::CallbackRequested => "callback_requested",
            ContactState::Offered => "offered",
            ContactState::Connected => "connected",
            ContactState::WrapUp => "wrap_up",
            ContactState::Done => "done",
            ContactState::Abandoned => "abandoned",
            ContactState::Overflowed => "overflowed",
            ContactState::Voicemail => "voicemail",
            ContactState::Failed => "failed",
        }
    }
}

/// Why an offer did not become a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    /// The agent pressed reject.
    Rejected,
    /// The agent did not answer in time.
    NoAnswer,
    /// The agent's session refused the offer (went not ready, logged out, full).
    Refused,
    /// The agent's session crashed and was restarted.
    AgentFailed,
}

/// Where an overflow sends a contact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowTarget {
    /// Another queue of the same tenant at this site; the contact keeps its age.
    Queue(QueueId),
    /// Another site; the contact's life here ends.
    Site(SiteId),
}

/// Why the system ended a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    /// The queue was at its maximum size.
    QueueFull,
    /// The contact waited the queue's maximum time.
    MaxWait,
    /// No agent able to serve the queue was logged in.
    NoAgents,
    /// The contact named a queue that does not exist or cannot take it.
    Misrouted,
    /// Anything else the system could not recover from.
    Internal,
}

/// A change asked of a contact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactTransition {
    /// Start an IVR flow.
    EnterIvr,
    /// Join a queue.
    Enqueue(QueueId),
    /// Offer to an agent.
    Offer(AgentId),
    /// The agent took it.
    Accept,
    /// The offer ended without a conversation; the contact returns to its place.
    Decline(DeclineReason),
    /// The customer chose to be called back; the request keeps its place.
    RequestCallback,
    /// Move to another queue or site.
    Overflow(OverflowTarget),
    /// The conversation ended; wrap-up begins.
    End,
    /// Wrap-up finished.
    Finish,
    /// The customer left before an agent answered.
    Abandon,
    /// The customer left a voicemail.
    Voicemail,
    /// The system ended the contact.
    Fail(FailReason),
    /// The agent in conversation handed the contact to another queue: it waits there
    /// again (as a live contact, no longer a callback).
    Transfer(QueueId),
}

impl ContactTransition {
    /// A short name for error messages and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            ContactTransition::EnterIvr => "enter_ivr",
            ContactTransition::Enqueue(_) => "enqueue",
            ContactTransition::Offer(_) => "offer",
            ContactTransition::Accept => "accept",
            ContactTransition::Decline(_) => "decline",
            ContactTransition::RequestCallback => "request_callback",
            ContactTransition::Overflow(_) => "overflow",
            ContactTransition::End => "end",
            ContactTransition::Finish => "finish",
            ContactTransition::Abandon => "abandon",
            ContactTransition::Voicemail => "voicemail",
            ContactTransition::Fail(_) => "fail",
            ContactTransition::Transfer(_) => "transfer",
        }
    }
}

/// A transition that is not legal from the contact's state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a contact in state {} cannot {}", from.as_str(), transition.name())]
pub struct IllegalContactTransition {
    /// The state the contact was in (and stays in).
    pub from: ContactState,
    /// What was asked.
    pub transition: ContactTransition,
}

/// A contact's position in its life. Small and `Copy` so engines embed it per contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContactLife {
    state: ContactState,
    /// Whether the contact waits as a callback, so a declined offer returns it to
    /// `callback_requested` rather than `queued`.
    callback: bool,
}

impl Default for ContactLife {
    fn default() -> Self {
        Self::new()
    }
}

impl ContactLife {
    /// A contact that has just arrived.
    pub const fn new() -> Self {
        Self {
            state: ContactState::Arrived,
            callback: false,
        }
    }

    /// The current state.
    pub const fn state(&self) -> ContactState {
        self.state
    }

    /// Whether the contact waits as a callback (the customer is no longer on the line).
    pub const fn is_callback(&self) -> bool {
        self.callback
    }

    /// Applies `t`, returning the new state; on an illegal transition nothing changes.
    pub fn apply(
        &mut self,
        t: &ContactTransition,
    ) -> Result<ContactState, IllegalContactTransition> {
        use ContactState as S;
        use ContactTransition as T;
        let next = match (self.state, t) {
            (S::Arrived, T::EnterIvr) => S::Ivr,
            (S::Arrived | S::Ivr, T::Enqueue(_)) => S::Queued,
            (S::Queued | S::CallbackRequested, T::Offer(_)) => S::Offered,
            (S::Offered, T::Accept) => S::Connected,
            (S::Offered, T::Decline(_)) => {
                if self.callback {
                    S::CallbackRequested
                } else {
                    S::Queued
                }
            }
            (S::Queued, T::RequestCallback) => {
                self.callback = true;
                S::CallbackRequested
            }
            (s @ (S::Queued | S::CallbackRequested), T::Overflow(OverflowTarget::Queue(_))) => s,
            (S::Queued | S::CallbackRequested, T::Overflow(OverflowTarget::Site(_))) => {
                S::Overflowed
            }
            (S::Connected, T::End) => S::WrapUp,
            (S::Connected, T::Transfer(_)) => {
                self.callback = false;
                S::Queued
            }
            (S::WrapUp, T::Finish) => S::Done,
            (S::Arrived | S::Ivr | S::Queued | S::Offered, T::Abandon) if !self.callback => {
                S::Abandoned
            }
            (S::Ivr | S::Queued, T::Voicemail) => S::Voicemail,
            (s, T::Fail(_)) if !s.is_terminal() => S::Failed,
            (from, _) => {
                return Err(IllegalContactTransition {
                    from,
                    transition: t.clone(),
                });
            }
        };
        self.state = next;
        Ok(next)
    }
}

#[cfg(test)]
mod tests;
