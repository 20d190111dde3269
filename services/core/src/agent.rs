//! The agent state machine.
//!
//! An agent has a *presence* they choose (logged out, ready, not ready with a reason) and
//! up to [`Capacity`] *slots* per channel, each holding one contact that is offered
//! (reserved), on contact, or in wrap-up. The state people see ([`AgentStatus`]) is
//! derived from both: an agent with a contact is `on_contact` even if they asked to go
//! not ready meanwhile, and becomes `not_ready` when the contact and its wrap-up end.
//!
//! Invariants the machine keeps: never more slots on a channel than its capacity; never
//! two slots for one contact; offers only while ready; after `max_missed` unanswered
//! offers in a row the agent goes `not_ready(missed)` by itself.

use serde::{Deserialize, Serialize};

use crate::channel::{Capacity, Channel};
use crate::ids::ContactId;

/// Why an agent is not ready. Free text codes come from the tenant's configuration; the
/// system's own reasons are fixed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotReadyReason {
    /// Just logged in and has not gone ready yet.
    LoggedIn,
    /// Missed too many offers in a row.
    Missed,
    /// The agent's session was restarted after a failure.
    Recovered,
    /// A supervisor forced it.
    Supervisor,
    /// A reason code the agent chose (`break`, `lunch`, `training`, …).
    Code(String),
}

impl NotReadyReason {
    /// The reason as a label for events, metrics and pages.
    pub fn label(&self) -> &str {
        match self {
            NotReadyReason::LoggedIn => "logged_in",
            NotReadyReason::Missed => "missed",
            NotReadyReason::Recovered => "recovered",
            NotReadyReason::Supervisor => "supervisor",
            NotReadyReason::Code(c) => c,
        }
    }
}

/// What the agent chose.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Not working.
    LoggedOut,
    /// Willing to take contacts.
    Ready,
    /// Logged in but not taking new contacts.
    NotReady(NotReadyReason),
}

/// What a slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotPhase {
    /// Offered, not answered yet.
    Reserved,
    /// In conversation.
    OnContact,
    /// After the conversation.
    WrapUp,
}

/// One contact the agent holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Slot {
    /// The contact.
    pub contact: ContactId,
    /// Its channel, which decides whose capacity it uses.
    pub channel: Channel,
    /// Where it is.
    pub phase: SlotPhase,
}

/// The state shown to people and counted by KPI.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum AgentStatus {
    /// Not working.
    LoggedOut,
    /// Waiting for a contact.
    Ready,
    /// A contact is offered and ringing.
    Reserved,
    /// In conversation.
    OnContact,
    /// Wrapping up.
    WrapUp,
    /// Logged in, not taking contacts, with the reason.
    NotReady(String),
}

impl AgentStatus {
    /// The snake_case state name.
    pub fn name(&self) -> &'static str {
        match self {
            AgentStatus::LoggedOut => "logged_out",
            AgentStatus::Ready => "ready",
            AgentStatus::Reserved => "reserved",
            AgentStatus::OnContact => "on_contact",
            AgentStatus::WrapUp => "wrap_up",
            AgentStatus::NotReady(_) => "not_ready",
        }
    }
}

/// A change asked of an agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentTransition {
    /// Start working, not ready until they say so.
    LogIn,
    /// Take contacts.
    GoReady,
    /// Stop taking new contacts (current ones continue).
    GoNotReady(NotReadyReason),
    /// Stop working. Only without contacts in conversation or wrap-up; pending offers
    /// are withdrawn.
    LogOut,
    /// Reserve a slot for a contact.
    Offer(ContactId, Channel),
    /// The agent answered.
    Accept(ContactId),
    /// The agent rejected.
    Reject(ContactId),
    /// The agent did not answer in time.
    NoAnswer(ContactId),
    /// The offer was withdrawn (the customer hung up, or the router took it back).
    Rescind(ContactId),
    /// The conversation ended; wrap-up begins.
    End(ContactId),
    /// Wrap-up finished.
    FinishWrapUp(ContactId),
}

impl AgentTransition {
    /// A short name for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            AgentTransition::LogIn => "log_in",
            AgentTransition::GoReady => "go_ready",
            AgentTransition::GoNotReady(_) => "go_not_ready",
            AgentTransition::LogOut => "log_out",
            AgentTransition::Offer(..) => "offer",
            AgentTransition::Accept(_) => "accept",
            AgentTransition::Reject(_) => "reject",
            AgentTransition::NoAnswer(_) => "no_answer",
            AgentTransition::Rescind(_) => "rescind",
            AgentTransition::End(_) => "end",
            AgentTransition::FinishWrapUp(_) => "finish_wrap_up",
        }
    }
}

/// Why a transition was refused. Nothing changes when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IllegalAgentTransition {
    /// The agent's presence forbids it (e.g. an offer while not ready).
    #[error("an agent who is {presence} cannot {transition}")]
    Presence {
        /// The agent's presence, as a name.
        presence: &'static str,
        /// What was asked.
        transition: &'static str,
    },
    /// Every slot of the channel is taken.
    #[error("the agent has no free {channel} capacity (capacity {capacity})")]
    NoCapacity {
        /// The full channel.
        channel: Channel,
        /// Its capacity.
        capacity: u8,
    },
    /// The contact is not held by this agent in the phase the transition needs.
    #[error("contact {contact} is not {expected} by this agent")]
    NotHeld {
        /// The contact named.
        contact: ContactId,
        /// What the transition needed it to be.
        expected: &'static str,
    },
    /// The contact already has a slot.
    #[error("contact {0} is already held by this agent")]
    AlreadyHeld(ContactId),
    /// Logging out with contacts in conversation or wrap-up.
    #[error("the agent still has {0} contact(s) in conversation or wrap-up")]
    Busy(usize),
}

/// What an accepted transition did besides changing state, for the caller to act on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentOutcome {
    /// Offers withdrawn by this transition (logging out), to return to their queues.
    pub withdrawn: Vec<ContactId>,
    /// The agent went not ready by itself (too many missed offers).
    pub auto_not_ready: bool,
}

/// An agent's presence and slots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentMachine {
    presence: Presence,
    slots: Vec<Slot>,
    capacity: Capacity,
    /// Offers missed in a row; reset by an answered offer or by going ready.
    missed_in_row: u32,
    /// How many misses in a row send the agent not ready (0 = never).
    max_missed: u32,
}

impl AgentMachine {
    /// A logged-out agent with `capacity` who goes not ready after `max_missed` misses.
    pub fn new(capacity: Capacity, max_missed: u32) -> Self {
        Self {
            presence: Presence::LoggedOut,
            slots: Vec::new(),
            capacity,
            missed_in_row: 0,
            max_missed,
        }
    }

    /// An agent rebuilt after its session failed: logged in with `presence` (not
    /// logged out) and holding `slots` that were in conversation or wrap-up. Reserved
    /// slots are not restored: their offers went back to the queue.
    pub fn restore(
        capacity: Capacity,
        max_missed: u32,
        presence: Presence,
        slots: Vec<Slot>,
    ) -> Self {
        let presence = match presence {
            Presence::LoggedOut => Presence::NotReady(NotReadyReason::Recovered),
            p => p,
        };
        Self {
            presence,
            slots: slots
                .into_iter()
                .filter(|s| s.phase != SlotPhase::Reserved)
                .collect(),
            capacity,
            missed_in_row: 0,
            max_missed,
        }
    }

    /// What the agent chose.
    pub fn presence(&self) -> &Presence {
        &self.presence
    }

    /// The contacts held.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The agent's capacity per channel.
    pub fn capacity(&self) -> Capacity {
        self.capacity
    }

    /// Offers missed in a row.
    pub fn missed_in_row(&self) -> u32 {
        self.missed_in_row
    }

    /// Slots in use on `channel`.
    pub fn used(&self, channel: Channel) -> u8 {
        self.slots.iter().filter(|s| s.channel == channel).count() as u8
    }

    /// Whether a new contact on `channel` could be offered now.
    pub fn can_take(&self, channel: Channel) -> bool {
        self.presence == Presence::Ready && self.used(channel) < self.capacity.on(channel)
    }

    /// The state people see.
    pub fn status(&self) -> AgentStatus {
        let has = |p| self.slots.iter().any(|s| s.phase == p);
        if has(SlotPhase::OnContact) {
            AgentStatus::OnContact
        } else if has(SlotPhase::Reserved) {
            AgentStatus::Reserved
        } else if has(SlotPhase::WrapUp) {
            AgentStatus::WrapUp
        } else {
            match &self.presence {
                Presence::LoggedOut => AgentStatus::LoggedOut,
                Presence::Ready => AgentStatus::Ready,
                Presence::NotReady(r) => AgentStatus::NotReady(r.label().to_owned()),
            }
        }
    }

    fn presence_name(&self) -> &'static str {
        match self.presence {
            Presence::LoggedOut => "logged_out",
            Presence::Ready => "ready",
            Presence::NotReady(_) => "not_ready",
        }
    }

    fn slot(
        &self,
        contact: ContactId,
        phase: SlotPhase,
        expected: &'static str,
    ) -> Result<usize, IllegalAgentTransition> {
        self.slots
            .iter()
            .position(|s| s.contact == contact && s.phase == phase)
            .ok_or(IllegalAgentTransition::NotHeld { contact, expected })
    }

    /// Applies `t`; on an error nothing changes.
    pub fn apply(&mut self, t: &AgentTransition) -> Result<AgentOutcome, IllegalAgentTransition> {
        use AgentTransition as T;
        let presence_err = |m: &Self| IllegalAgentTransition::Presence {
            presence: m.presence_name(),
            transition: t.name(),
        };
        let mut outcome = AgentOutcome::default();
        match t {
            T::LogIn => {
                if self.presence != Presence::LoggedOut {
                    return Err(presence_err(self));
                }
                self.presence = Presence::NotReady(NotReadyReason::LoggedIn);
            }
            T::GoReady => {
                if self.presence == Presence::LoggedOut {
                    return Err(presence_err(self));
                }
                self.presence = Presence::Ready;
                self.missed_in_row = 0;
            }
            T::GoNotReady(reason) => {
                if self.presence == Presence::LoggedOut {
                    return Err(presence_err(self));
                }
                self.presence = Presence::NotReady(reason.clone());
            }
            T::LogOut => {
                if self.presence == Presence::LoggedOut {
                    return Err(presence_err(self));
                }
                let busy = self
                    .slots
                    .iter()
                    .filter(|s| s.phase != SlotPhase::Reserved)
                    .count();
                if busy > 0 {
                    return Err(IllegalAgentTransition::Busy(busy));
                }
                outcome.withdrawn = self.slots.drain(..).map(|s| s.contact).collect();
                self.presence = Presence::LoggedOut;
            }
            T::Offer(contact, channel) => {
                if self.presence != Presence::Ready {
                    return Err(presence_err(self));
                }
                if self.slots.iter().any(|s| s.contact == *contact) {
                    return Err(IllegalAgentTransition::AlreadyHeld(*contact));
                }
                let capacity = self.capacity.on(*channel);
                if self.used(*channel) >= capacity {
                    return Err(IllegalAgentTransition::NoCapacity {
                        channel: *channel,
                        capacity,
                    });
                }
                self.slots.push(Slot {
                    contact: *contact,
                    channel: *channel,
                    phase: SlotPhase::Reserved,
                });
            }
            T::Accept(contact) => {
                let i = self.slot(*contact, SlotPhase::Reserved, "offered")?;
                self.slots[i].phase = SlotPhase::OnContact;
                self.missed_in_row = 0;
            }
            T::Reject(contact) | T::Rescind(contact) => {
                let i = self.slot(*contact, SlotPhase::Reserved, "offered")?;
                self.slots.remove(i);
            }
            T::NoAnswer(contact) => {
                let i = self.slot(*contact, SlotPhase::Reserved, "offered")?;
                self.slots.remove(i);
                self.missed_in_row += 1;
                if self.max_missed > 0
                    && self.missed_in_row >= self.max_missed
                    && self.presence == Presence::Ready
                {
                    self.presence = Presence::NotReady(NotReadyReason::Missed);
                    outcome.auto_not_ready = true;
                }
            }
            T::End(contact) => {
                let i = self.slot(*contact, SlotPhase::OnContact, "in conversation")?;
                self.slots[i].phase = SlotPhase::WrapUp;
            }
            T::FinishWrapUp(contact) => {
                let i = self.slot(*contact, SlotPhase::WrapUp, "in wrap-up")?;
                self.slots.remove(i);
            }
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests;
