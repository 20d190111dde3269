//! Cross-site overflow, the engine's half: holding a waiting contact while another site
//! is asked for an agent, and reserving an agent here for a contact waiting elsewhere.
//!
//! The handshake (DESIGN.md, "Routing state and cross-site overflow"):
//!
//! ```text
//!   origin                                   target
//!   hold(contact)         ── reserve ──▶     reserve(tenant, queue, ttl)
//!                         ◀─ reservation ─   (an agent's slot is taken for ttl)
//!   transfer_out(contact) ◀─ accepted ────   transfer_in(reservation, contact)
//!   or release(contact)   (refused, timeout, failed transfer: the contact is back in
//!                          its place, offered here again)
//! ```
//!
//! A held contact keeps its place and its count in the queue but is offered to nobody:
//! at any moment it can be offered at one site only. A customer who hangs up while held
//! is abandoned when the hold ends here (released), or at the target after the
//! transfer — never at both, so each site still ends each contact with exactly one
//! terminal event.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use hotline_core::channel::Channel;
use hotline_core::contact::{ContactState, ContactTransition, OverflowTarget};
use hotline_core::event::ContactEventKind;
use hotline_core::ids::{AgentId, ContactId, QueueId, SiteId, TenantId, TraceId};
use hotline_core::time::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Arrival, Engine};
use crate::error::AcdError;

/// How many accepted transfers a site remembers, so a retried transfer is answered
/// with the same result rather than taken twice.
const TRANSFERS_REMEMBERED: usize = 4096;

/// A contact on its way to another site: what the target needs to queue it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferContact {
    /// The contact (it keeps its id across sites).
    pub contact: ContactId,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its queue (the target queues it in the queue of the same id).
    pub queue: QueueId,
    /// Its channel.
    pub channel: Channel,
    /// Its priority.
    pub priority: u8,
    /// The trace of its journey, so one trace spans both sites.
    pub trace: TraceId,
    /// How long it has waited at the origin, in milliseconds.
    pub waited_ms: u64,
    /// Who the customer is, if known.
    pub customer: Option<Arc<str>>,
}

/// An agent's slot held at this site for a contact waiting at another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The reservation's id at this site.
    pub id: u64,
    /// The agent reserved.
    pub agent: AgentId,
    /// When the slot is given back if no transfer comes.
    pub expires: Timestamp,
}

/// Why this site will not reserve an agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReserveRefusal {
    /// The tenant or queue is not served here.
    #[error("queue {tenant}/{queue} is not served at this site")]
    UnknownQueue {
        /// The tenant.
        tenant: TenantId,
        /// The queue.
        queue: QueueId,
    },
    /// The queue's own contacts are waiting: they come first.
    #[error("{waiting} contacts already wait in {queue} here")]
    LocalWaiting {
        /// The queue.
        queue: QueueId,
        /// How many wait.
        waiting: usize,
    },
    /// No eligible agent is ready with room on the channel.
    #[error("no ready agent with room for {queue} here")]
    NoAgent {
        /// The queue.
        queue: QueueId,
    },
}

/// Why a transfer was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferRefusal {
    /// The reservation is unknown: it expired (its slot went back) or never existed.
    #[error("reservation {0} is unknown or expired")]
    UnknownReservation(u64),
    /// The contact does not match what was reserved.
    #[error("reservation {id} was for {reserved}, not {offered}")]
    Mismatch {
        /// The reservation.
        id: u64,
        /// What it was for (tenant/queue).
        reserved: String,
        /// What came (tenant/queue).
        offered: String,
    },
    /// The contact is already here under another reservation.
    #[error("contact {0} is already at this site")]
    Duplicate(ContactId),
}

pub(super) struct ReservationRec {
    agent: u32,
    tenant: u32,
    queue: u32,
    channel: Channel,
    expires: Timestamp,
}

/// The engine's remote-overflow bookkeeping.
#[derive(Default)]
pub(super) struct Remote {
    next_id: u64,
    pub(super) reservations: rustc_hash::FxHashMap<u64, ReservationRec>,
    /// Accepted transfers by reservation id, oldest first (bounded).
    transferred: VecDeque<(u64, ContactId)>,
}

impl Remote {
    /// Slots reservations hold, per agent and channel (for the invariant check).
    pub(super) fn held_slots(&self) -> impl Iterator<Item = (u32, Channel)> + '_ {
        self.reservations.values().map(|r| (r.agent, r.channel))
    }

    pub(super) fn next_expiry(&self) -> Option<Timestamp> {
        self.reservations.values().map(|r| r.expires).min()
    }
}

// === impl Engine: the origin's half ===

impl Engine {
    /// Holds a waiting contact for a cross-site transfer: it keeps its place and count
    /// in the queue but is offered to nobody until [`Engine::release_hold`] or
    /// [`Engine::transfer_out`]. Only a contact in line (not a callback, not offered)
    /// can be held.
    pub fn hold(
        &mut self,
        now: Timestamp,
        contact: ContactId,
    ) -> Result<TransferContact, AcdError> {
        let key = self.key_of(contact)?;
        let c = &self.contacts[key];
        if c.life.state() != ContactState::Queued || c.held {
            return Err(AcdError::NotHoldable {
                contact,
                state: if c.held {
                    "held"
                } else {
                    c.life.state().as_str()
                },
            });
        }
        self.unschedule(key);
        let c = &mut self.contacts[key];
        let k = c.key();
        c.held = true;
        let qi = c.queue as usize;
        self.queues[qi].waiting[c.step as usize].remove(&k);
        let c = &self.contacts[key];
        Ok(TransferContact {
            contact,
            tenant: self.tenants[c.tenant as usize].clone(),
            queue: self.queues[qi].id.clone(),
            channel: c.channel,
            priority: c.priority,
            trace: c.trace,
            waited_ms: now.since(c.queued_at).as_millis() as u64,
            customer: c.customer.clone(),
        })
    }

    /// Ends a hold without a transfer: the contact is back in its place and may be
    /// offered here again. A customer who hung up meanwhile is abandoned now. Returns
    /// whether the contact is still here.
    pub fn release_hold(&mut self, now: Timestamp, contact: ContactId) -> Result<bool, AcdError> {
        let key = self.held_key(contact)?;
        let c = &mut self.contacts[key];
        c.held = false;
        let (k, qi, step) = (c.key(), c.queue as usize, c.step as usize);
        self.queues[qi].waiting[step].insert(k, key);
        if self.contacts[key].hung_up {
            self.hang_up(now, contact)?;
            return Ok(false);
        }
        // Timers that came due while held run now.
        self.fire(now, key);
        Ok(self.contacts.contains(key) && self.contacts[key].id == contact)
    }

    /// The target took the held contact: it has overflowed to `site` (terminal here).
    /// Returns whether the customer hung up while held, so the caller tells the target.
    pub fn transfer_out(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        site: &SiteId,
        reason: &str,
    ) -> Result<bool, AcdError> {
        let key = self.held_key(contact)?;
        self.contacts[key].held = false;
        let hung_up = self.contacts[key].hung_up;
        self.leave_queue(key);
        let c = &mut self.contacts[key];
        c.life
            .apply(&ContactTransition::Overflow(OverflowTarget::Site(
                site.clone(),
            )))
            .map_err(|e| AcdError::contact(contact, e))?;
        let qi = c.queue as usize;
        self.queues[qi].counters.overflowed += 1;
        self.emit(
            now,
            key,
            None,
            ContactEventKind::Overflowed {
                to: OverflowTarget::Site(site.clone()),
                reason: reason.to_owned(),
            },
        );
        self.remove(key);
        Ok(hung_up)
    }

    /// A hang-up while held is remembered, not acted on: the hold's end decides where
    /// the contact is abandoned. Returns whether the contact was held.
    pub(super) fn hang_up_held(&mut self, key: usize) -> bool {
        let c = &mut self.contacts[key];
        if c.held {
            c.hung_up = true;
        }
        c.held
    }

    fn held_key(&self, contact: ContactId) -> Result<usize, AcdError> {
        let key = self.key_of(contact)?;
        if !self.contacts[key].held {
            return Err(AcdError::NotHoldable {
                contact,
                state: "not held",
            });
        }
        Ok(key)
    }

    /// Waiting contacts of `tenant`/`queue` (in line, not held, not callbacks) that have
    /// waited at least `min_wait`, oldest first, at most `limit`: what the overflow
    /// worker considers.
    pub fn waiting_longer_than(
        &self,
        now: Timestamp,
        tenant: &TenantId,
        queue: &QueueId,
        min_wait: Duration,
        limit: usize,
    ) -> Vec<(ContactId, TraceId, Duration)> {
        let Some(&t) = self.tenant_ix.get(tenant) else {
            return Vec::new();
        };
        let Some(&qi) = self.queue_ix[t as usize].get(queue) else {
            return Vec::new();
        };
        let q = &self.queues[qi as usize];
        let mut out: Vec<(u64, ContactId, TraceId, Duration)> = q
            .waiting
            .iter()
            .flat_map(|w| w.values())
            .map(|&key| &self.contacts[key])
            .filter(|c| c.life.state() == ContactState::Queued)
            .map(|c| (c.seq, c.id, c.trace, now.since(c.queued_at)))
            .filter(|(_, _, _, w)| *w >= min_wait)
            .collect();
        out.sort_unstable_by_key(|(seq, ..)| *seq);
        out.truncate(limit);
        out.into_iter().map(|(_, c, t, w)| (c, t, w)).collect()
    }
}

// === impl Engine: the target's half ===

impl Engine {
    /// Reserves a ready agent who can take `tenant`/`queue` for `ttl`, for a contact
    /// waiting at another site. The agent's slot is taken (no local offer uses it) until
    /// the transfer comes or the reservation expires.
    pub fn reserve(
        &mut self,
        now: Timestamp,
        tenant: &TenantId,
        queue: &QueueId,
        ttl: Duration,
    ) -> Result<Reservation, ReserveRefusal> {
        let unknown = || ReserveRefusal::UnknownQueue {
            tenant: tenant.clone(),
            queue: queue.clone(),
        };
        let t = *self.tenant_ix.get(tenant).ok_or_else(unknown)?;
        let qi = *self.queue_ix[t as usize].get(queue).ok_or_else(unknown)?;
        let q = &self.queues[qi as usize];
        let waiting: usize = q.waiting.iter().map(|w| w.len()).sum();
        if waiting > 0 {
            return Err(ReserveRefusal::LocalWaiting {
                queue: queue.clone(),
                waiting,
            });
        }
        let channel = q.channel;
        // The queue's widest ring: the contact has waited long already.
        let eligible = &q.steps[q.steps.len() - 1].eligible;
        let available = &self.available[channel.index()];
        let mut best: Option<(Timestamp, u32)> = None;
        eligible.for_each_common(available, |a| {
            let idle = self.ranks[a].idle_since;
            if best.is_none_or(|(b, _)| idle < b) {
                best = Some((idle, a as u32));
            }
        });
        let (_, agent) = best.ok_or_else(|| ReserveRefusal::NoAgent {
            queue: queue.clone(),
        })?;
        self.agents[agent as usize].used[channel.index()] += 1;
        self.refresh_available(agent);
        let r = &mut self.remote;
        r.next_id += 1;
        let id = r.next_id;
        let expires = now + ttl;
        r.reservations.insert(
            id,
            ReservationRec {
                agent,
                tenant: t,
                queue: qi,
                channel,
                expires,
            },
        );
        Ok(Reservation {
            id,
            agent: self.agents[agent as usize].id.clone(),
            expires,
        })
    }

    /// Gives a reservation's slot back (the origin cancelled, or it expired).
    pub fn cancel_reservation(&mut self, now: Timestamp, id: u64) -> bool {
        let Some(r) = self.remote.reservations.remove(&id) else {
            return false;
        };
        self.free_reserved_slot(now, r.agent, r.channel);
        true
    }

    fn free_reserved_slot(&mut self, now: Timestamp, agent: u32, channel: Channel) {
        let ag = &mut self.agents[agent as usize];
        ag.used[channel.index()] = ag.used[channel.index()].saturating_sub(1);
        if ag.used.iter().all(|&u| u == 0) {
            self.ranks[agent as usize].idle_since = now;
        }
        self.refresh_available(agent);
        self.try_agent(now, agent);
    }

    /// Drops the reservations of an agent who left (logged out or failed).
    pub(super) fn drop_reservations_of(&mut self, now: Timestamp, agent: u32) {
        let ids: Vec<u64> = self
            .remote
            .reservations
            .iter()
            .filter(|(_, r)| r.agent == agent)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.cancel_reservation(now, id);
        }
    }

    /// Gives back the slots of reservations whose time is up.
    pub(super) fn expire_reservations(&mut self, now: Timestamp) {
        let due: Vec<u64> = self
            .remote
            .reservations
            .iter()
            .filter(|(_, r)| r.expires <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            tracing::debug!(reservation = id, "reservation expired without a transfer");
            self.cancel_reservation(now, id);
        }
    }

    /// Takes a contact transferred from another site under reservation `id`: it arrives
    /// here (same id and trace), joins the queue and is offered to the reserved agent.
    /// A retry of a transfer already taken answers `Ok` again and changes nothing.
    pub fn transfer_in(
        &mut self,
        now: Timestamp,
        id: u64,
        t: TransferContact,
    ) -> Result<(), TransferRefusal> {
        if self
            .remote
            .transferred
            .iter()
            .any(|&(r, c)| r == id && c == t.contact)
        {
            return Ok(());
        }
        let r = self
            .remote
            .reservations
            .get(&id)
            .ok_or(TransferRefusal::UnknownReservation(id))?;
        let reserved_tenant = &self.tenants[r.tenant as usize];
        let reserved_queue = &self.queues[r.queue as usize].id;
        if *reserved_tenant != t.tenant || *reserved_queue != t.queue || r.channel != t.channel {
            return Err(TransferRefusal::Mismatch {
                id,
                reserved: format!("{reserved_tenant}/{reserved_queue}"),
                offered: format!("{}/{}", t.tenant, t.queue),
            });
        }
        if self.contact_ix.contains_key(&t.contact) {
            return Err(TransferRefusal::Duplicate(t.contact));
        }
        let r = self
            .remote
            .reservations
            .remove(&id)
            .expect("looked up above");
        // The slot goes back to the agent just before the contact is offered to it.
        let ag = &mut self.agents[r.agent as usize];
        ag.used[r.channel.index()] -= 1;
        self.refresh_available(r.agent);
        let arrival = Arrival {
            contact: t.contact,
            tenant: t.tenant,
            queue: t.queue,
            channel: t.channel,
            priority: Some(t.priority),
            trace: Some(t.trace),
            customer: t.customer,
        };
        let offered_to_reserved = self.arrive_for(now, arrival, r.agent);
        debug_assert!(offered_to_reserved.is_ok(), "checked above");
        let rem = &mut self.remote;
        if rem.transferred.len() == TRANSFERS_REMEMBERED {
            rem.transferred.pop_front();
        }
        rem.transferred.push_back((id, t.contact));
        Ok(())
    }
}
