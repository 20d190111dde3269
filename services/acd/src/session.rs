//! One agent's session: the core agent state machine plus who the agent is, turned into
//! agent events. Pure, so the agent shards and the simulator share it.

use hotline_core::agent::{
    AgentMachine, AgentOutcome, AgentStatus, AgentTransition, NotReadyReason, Presence, Slot,
};
use hotline_core::channel::Capacity;
use hotline_core::event::{AgentEvent, AgentEventKind, Event, EventBody};
use hotline_core::ids::{AgentId, SiteId, TenantId, TraceId};
use hotline_core::time::Timestamp;

use crate::config::SiteConfig;
use crate::engine::Availability;
use crate::error::AcdError;
use crate::ids::IdSource;

/// Who an agent is at this site: what the session needs from configuration.
#[derive(Debug, Clone)]
pub struct AgentProfile {
    /// The agent.
    pub id: AgentId,
    /// Its index in the engine.
    pub ix: u32,
    /// Tenants served; each gets the agent's events.
    pub tenants: Vec<TenantId>,
    /// Contacts per channel.
    pub capacity: Capacity,
    /// Misses in a row before not ready.
    pub max_missed: u32,
}

impl AgentProfile {
    /// Every agent profile of a configuration, in engine index order.
    pub fn all(config: &SiteConfig) -> Vec<AgentProfile> {
        config
            .agents
            .iter()
            .enumerate()
            .map(|(i, a)| AgentProfile {
                id: a.id.clone(),
                ix: i as u32,
                tenants: a.serves.iter().map(|s| s.tenant.clone()).collect(),
                capacity: a.capacity,
                max_missed: a.max_missed.unwrap_or(config.defaults.max_missed),
            })
            .collect()
    }
}

/// An agent's session. See the module documentation.
pub struct AgentSession {
    profile: AgentProfile,
    site: SiteId,
    trace: TraceId,
    ids: IdSource,
    machine: AgentMachine,
    events: Vec<Event>,
}

impl AgentSession {
    /// A logged-out session.
    pub fn new(mut profile: AgentProfile, site: SiteId, mut ids: IdSource) -> Self {
        let machine = AgentMachine::new(profile.capacity, profile.max_missed);
        // Own copies of the ids cloned into every event (see `TenantId::detached`).
        profile.id = profile.id.detached();
        profile.tenants = profile.tenants.iter().map(|t| t.detached()).collect();
        let site = site.detached();
        Self {
            trace: ids.trace(),
            profile,
            site,
            ids,
            machine,
            events: Vec::new(),
        }
    }

    /// A session rebuilt after a failure, holding `slots`; emits a `recovered` event.
    pub fn restore(
        profile: AgentProfile,
        site: SiteId,
        ids: IdSource,
        now: Timestamp,
        ready: bool,
        slots: Vec<Slot>,
    ) -> Self {
        let mut s = Self::new(profile, site, ids);
        let presence = if ready {
            Presence::Ready
        } else {
            Presence::NotReady(NotReadyReason::Recovered)
        };
        s.machine =
            AgentMachine::restore(s.profile.capacity, s.profile.max_missed, presence, slots);
        s.emit(now, AgentEventKind::Recovered);
        s
    }

    /// Who the agent is.
    pub fn profile(&self) -> &AgentProfile {
        &self.profile
    }

    /// The state machine, read-only.
    pub fn machine(&self) -> &AgentMachine {
        &self.machine
    }

    /// What the router needs to know.
    pub fn availability(&self) -> Availability {
        let presence = self.machine.presence();
        Availability {
            logged_in: presence != &Presence::LoggedOut,
            ready: presence == &Presence::Ready,
            status: match presence {
                Presence::LoggedOut => AgentStatus::LoggedOut,
                Presence::Ready => AgentStatus::Ready,
                Presence::NotReady(r) => AgentStatus::NotReady(r.label().to_owned()),
            },
        }
    }

    /// The state people see.
    pub fn status(&self) -> AgentStatus {
        self.machine.status()
    }

    /// Applies a transition and records its events; on error nothing changes.
    pub fn apply(&mut self, now: Timestamp, t: &AgentTransition) -> Result<AgentOutcome, AcdError> {
        let mut events = std::mem::take(&mut self.events);
        let r = self.apply_into(now, t, &mut events);
        self.events = events;
        r
    }

    /// Applies a transition and appends its events to `events` rather than keeping them:
    /// an agent shard gathers every agent's events in one buffer it publishes, so no
    /// session grows (and frees) a buffer of its own for each transition.
    pub fn apply_into(
        &mut self,
        now: Timestamp,
        t: &AgentTransition,
        events: &mut Vec<Event>,
    ) -> Result<AgentOutcome, AcdError> {
        let before = self.machine.missed_in_row();
        let out = self.machine.apply(t).map_err(|source| AcdError::Agent {
            agent: self.profile.id.clone(),
            source,
        })?;
        let kind = match t {
            AgentTransition::LogIn => AgentEventKind::LoggedIn,
            AgentTransition::GoReady => AgentEventKind::Ready,
            AgentTransition::GoNotReady(r) => AgentEventKind::NotReady {
                reason: r.label().to_owned(),
            },
            AgentTransition::LogOut => {
                for &contact in &out.withdrawn {
                    self.emit_into(events, now, AgentEventKind::OfferRescinded { contact });
                }
                AgentEventKind::LoggedOut
            }
            AgentTransition::Offer(contact, _) => AgentEventKind::Reserved { contact: *contact },
            AgentTransition::Accept(contact) => {
                AgentEventKind::ContactStarted { contact: *contact }
            }
            AgentTransition::Reject(contact) => AgentEventKind::OfferRejected { contact: *contact },
            AgentTransition::NoAnswer(contact) => AgentEventKind::OfferMissed {
                contact: *contact,
                in_row: before + 1,
            },
            AgentTransition::Rescind(contact) => {
                AgentEventKind::OfferRescinded { contact: *contact }
            }
            AgentTransition::End(contact) => AgentEventKind::WrapUpStarted { contact: *contact },
            AgentTransition::FinishWrapUp(contact) => {
                AgentEventKind::WrapUpEnded { contact: *contact }
            }
        };
        self.emit_into(events, now, kind);
        if out.auto_not_ready {
            self.emit_into(
                events,
                now,
                AgentEventKind::NotReady {
                    reason: NotReadyReason::Missed.label().to_owned(),
                },
            );
        }
        Ok(out)
    }

    /// Records a wrap-up extension (no state change).
    pub fn note_extension(
        &mut self,
        now: Timestamp,
        contact: hotline_core::ids::ContactId,
        secs: u32,
    ) {
        self.emit(now, AgentEventKind::WrapUpExtended { contact, secs });
    }

    /// Events recorded since the last call.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, Event> {
        self.events.drain(..)
    }

    /// Moves the events recorded since the last call to the end of `out`, and lets go
    /// of the buffer: an idle agent should not keep a few events' worth of memory.
    pub fn move_events_into(&mut self, out: &mut Vec<Event>) {
        out.append(&mut self.events);
        self.events.shrink_to_fit();
    }

    fn emit(&mut self, now: Timestamp, kind: AgentEventKind) {
        let mut events = std::mem::take(&mut self.events);
        self.emit_into(&mut events, now, kind);
        self.events = events;
    }

    fn emit_into(&mut self, out: &mut Vec<Event>, now: Timestamp, kind: AgentEventKind) {
        let status = self.machine.status();
        for tenant in &self.profile.tenants {
            out.push(Event {
                id: self.ids.event(now),
                at: now,
                tenant: tenant.clone(),
                site: self.site.clone(),
                trace: self.trace,
                body: EventBody::Agent(AgentEvent {
                    agent: self.profile.id.clone(),
                    kind: kind.clone(),
                    status: status.clone(),
                }),
            });
        }
    }
}
