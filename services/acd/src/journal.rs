//! The journal: what a restarted router rebuilds the site from.
//!
//! The engine writes a [`JournalOp`] at each change a restore needs (a contact joins its
//! first queue, moves to another, is answered, goes to wrap-up, asks for a callback,
//! ends), and the router applies them to the journal after each message, together with
//! publishing that message's events; it writes every login, logout and change of
//! presence too. The journal keeps only what is still open: contacts not yet ended, and
//! logged-in agents with their endpoints. It lives outside the router (shared with the
//! site's supervisor), so a router that panics loses at most the message it was
//! handling — whose sender gets an error it can retry.
//!
//! Why operations and not the events: the journal sits on the router's hot path, and
//! reading every event back (most of which a restore does not need: offers, declines,
//! bullseye steps) and cloning ids out of them was about 15% of the instructions of the
//! router's handler (callgrind, `hotline bench routing`). An operation is a few plain words, the ids in it are the engine's
//! indices (the same configuration gives a restarted engine the same ones), and a
//! message that changes nothing the journal keeps (an offer declined, a flush) does not
//! take its lock. Contacts are kept by the engine's key for them, so applying an
//! operation is an index, not a hash lookup; a restarted engine puts contacts back
//! under new keys, and the router then [re-keys](Journal::rekey) the journal.

use std::sync::Arc;

use hotline_core::channel::Channel;
use hotline_core::contact::ContactState;
use hotline_core::ids::{ContactId, TraceId};
use hotline_core::time::Timestamp;
use rustc_hash::FxHashMap;

use crate::agent::AgentEndpoint;
use crate::engine::Availability;

/// A change to the open contacts, as the engine reports it for the journal. Contacts
/// are named by the engine's key for them; tenants, queues and agents by the engine's
/// indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalOp {
    /// A contact joined its first queue at this site (from here on it is restored).
    Opened {
        /// The engine's key for the contact.
        key: usize,
        /// The contact.
        contact: ContactId,
        /// Its tenant's index.
        tenant: u32,
        /// Its queue's index.
        queue: u32,
        /// Its channel.
        channel: Channel,
        /// Its priority.
        priority: u8,
        /// Its trace.
        trace: TraceId,
        /// When it joined.
        at: Timestamp,
    },
    /// A waiting contact joined another queue (an overflow or a supervisor's move).
    Requeued {
        /// The engine's key for the contact.
        key: usize,
        /// The new queue's index.
        queue: u32,
        /// Its priority there.
        priority: u8,
        /// When it joined.
        at: Timestamp,
    },
    /// An agent answered.
    Connected {
        /// The engine's key for the contact.
        key: usize,
        /// The agent's index.
        agent: u32,
        /// When.
        at: Timestamp,
    },
    /// The conversation ended; wrap-up began.
    WrapUp {
        /// The engine's key for the contact.
        key: usize,
        /// When.
        at: Timestamp,
    },
    /// The agent transferred the contact: it waits again (the `Requeued` that follows
    /// names the queue), its wait measured from `at`.
    Transferred {
        /// The engine's key for the contact.
        key: usize,
        /// When.
        at: Timestamp,
    },
    /// The customer asked for a callback.
    Callback {
        /// The engine's key for the contact.
        key: usize,
    },
    /// The contact ended here (done, abandoned, voicemail, failed).
    Closed {
        /// The engine's key for the contact.
        key: usize,
    },
}

/// An open contact as the journal knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournaledContact {
    /// Arrival order at this site (earlier first).
    pub seq: u64,
    /// The contact.
    pub contact: ContactId,
    /// Its tenant's index in the engine.
    pub tenant: u32,
    /// Its current queue's index in the engine.
    pub queue: u32,
    /// Its channel.
    pub channel: Channel,
    /// Its priority.
    pub priority: u8,
    /// Its trace.
    pub trace: TraceId,
    /// When it first joined a queue here.
    pub queued_at: Timestamp,
    /// When it joined its current queue.
    pub in_queue_since: Timestamp,
    /// Where it is: queued or callback_requested (offers are not tracked: an offered
    /// contact is restored as waiting), connected or wrap_up.
    pub state: ContactState,
    /// Whether it waits as a callback.
    pub callback: bool,
    /// The index of the agent in conversation with it (connected, wrap-up).
    pub agent: Option<u32>,
    /// Offers made so far, as far as the journal knows (not tracked: 0).
    pub attempts: u32,
    /// When it was answered.
    pub connected_at: Timestamp,
    /// When the conversation ended.
    pub ended_at: Timestamp,
}

/// A logged-in agent as the journal knows it.
#[derive(Clone)]
pub struct JournaledAgent {
    /// Where its offers go.
    pub endpoint: Arc<dyn AgentEndpoint>,
    /// Its last reported presence.
    pub availability: Option<Availability>,
}

/// The journal. See the module documentation.
#[derive(Default)]
pub struct Journal {
    /// Open contacts by the engine's key (a slot per key the engine has used).
    contacts: Vec<Option<JournaledContact>>,
    seq: u64,
    agents: FxHashMap<u32, JournaledAgent>,
}

impl Journal {
    /// Applies the engine's operations, in order.
    pub fn apply(&mut self, ops: &[JournalOp]) {
        for op in ops {
            match *op {
                JournalOp::Opened {
                    key,
                    contact,
                    tenant,
                    queue,
                    channel,
                    priority,
                    trace,
                    at,
                } => {
                    self.seq += 1;
                    if self.contacts.len() <= key {
                        self.contacts.resize(key + 1, None);
                    }
                    self.contacts[key] = Some(JournaledContact {
                        seq: self.seq,
                        contact,
                        tenant,
                        queue,
                        channel,
                        priority,
                        trace,
                        queued_at: at,
                        in_queue_since: at,
                        state: ContactState::Queued,
                        callback: false,
                        agent: None,
                        attempts: 0,
                        connected_at: at,
                        ended_at: at,
                    });
                }
                JournalOp::Requeued {
                    key,
                    queue,
                    priority,
                    at,
                } => {
                    if let Some(Some(j)) = self.contacts.get_mut(key) {
                        j.queue = queue;
                        j.priority = priority;
                        j.in_queue_since = at;
                    }
                }
                JournalOp::Connected { key, agent, at } => {
                    if let Some(Some(j)) = self.contacts.get_mut(key) {
                        j.state = ContactState::Connected;
                        j.agent = Some(agent);
                        j.connected_at = at;
                    }
                }
                JournalOp::WrapUp { key, at } => {
                    if let Some(Some(j)) = self.contacts.get_mut(key) {
                        j.state = ContactState::WrapUp;
                        j.ended_at = at;
                    }
                }
                JournalOp::Transferred { key, at } => {
                    if let Some(Some(j)) = self.contacts.get_mut(key) {
                        j.state = ContactState::Queued;
                        j.callback = false;
                        j.agent = None;
                        j.queued_at = at;
                    }
                }
                JournalOp::Callback { key } => {
                    if let Some(Some(j)) = self.contacts.get_mut(key) {
                        j.callback = true;
                        j.state = ContactState::CallbackRequested;
                    }
                }
                JournalOp::Closed { key } => {
                    if let Some(slot) = self.contacts.get_mut(key) {
                        *slot = None;
                    }
                }
            }
        }
    }

    /// Files the open contacts under the keys a restarted engine gave them (every other
    /// entry is dropped: a contact it could not put back cannot be restored later
    /// either). Their arrival order is kept.
    pub fn rekey(&mut self, restored: impl IntoIterator<Item = (usize, JournaledContact)>) {
        self.contacts.clear();
        for (key, c) in restored {
            if self.contacts.len() <= key {
                self.contacts.resize(key + 1, None);
            }
            self.contacts[key] = Some(c);
        }
    }

    /// An agent logged in.
    pub fn login(&mut self, agent: u32, endpoint: Arc<dyn AgentEndpoint>) {
        self.agents.insert(
            agent,
            JournaledAgent {
                endpoint,
                availability: None,
            },
        );
    }

    /// An agent logged out.
    pub fn logout(&mut self, agent: u32) {
        self.agents.remove(&agent);
    }

    /// An agent's presence changed.
    pub fn availability(&mut self, agent: u32, availability: &Availability) {
        if let Some(a) = self.agents.get_mut(&agent) {
            a.availability = Some(availability.clone());
        }
    }

    /// Open contacts in arrival order.
    pub fn contacts(&self) -> Vec<JournaledContact> {
        let mut v: Vec<_> = self.contacts.iter().flatten().copied().collect();
        v.sort_by_key(|c| c.seq);
        v
    }

    /// Logged-in agents by index.
    pub fn agents(&self) -> Vec<(u32, JournaledAgent)> {
        let mut v: Vec<_> = self.agents.iter().map(|(k, a)| (*k, a.clone())).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Contact `n` under engine key `n`.
    fn opened(n: usize, at: u64, priority: u8) -> JournalOp {
        JournalOp::Opened {
            key: n,
            contact: ContactId::from_u128(n as u128),
            tenant: 0,
            queue: 0,
            channel: Channel::Voice,
            priority,
            trace: TraceId::from_u128(n as u128),
            at: Timestamp(at),
        }
    }

    #[test]
    fn the_journal_keeps_open_contacts_in_arrival_order_and_forgets_ended_ones() {
        let mut j = Journal::default();
        let c = ContactId::from_u128;
        j.apply(&[
            opened(2, 1, 3),
            opened(1, 2, 0),
            JournalOp::Connected {
                key: 1,
                agent: 7,
                at: Timestamp(4),
            },
            opened(3, 5, 0),
            JournalOp::Requeued {
                key: 3,
                queue: 2,
                priority: 1,
                at: Timestamp(6),
            },
            JournalOp::Closed { key: 3 },
        ]);
        let open = j.contacts();
        assert_eq!(open.len(), 2);
        assert_eq!(open[0].contact, c(2));
        assert_eq!((open[0].state, open[0].priority), (ContactState::Queued, 3));
        assert_eq!(open[1].state, ContactState::Connected);
        assert_eq!(open[1].agent, Some(7));
        assert_eq!(open[1].connected_at, Timestamp(4));
    }

    #[test]
    fn a_moved_contact_keeps_its_first_arrival_time_and_a_callback_is_remembered() {
        let mut j = Journal::default();
        j.apply(&[
            opened(1, 1, 0),
            JournalOp::Requeued {
                key: 1,
                queue: 4,
                priority: 2,
                at: Timestamp(9),
            },
            JournalOp::Callback { key: 1 },
        ]);
        let open = j.contacts();
        assert_eq!((open[0].queue, open[0].priority), (4, 2));
        assert_eq!(
            (open[0].queued_at, open[0].in_queue_since),
            (Timestamp(1), Timestamp(9))
        );
        assert_eq!(open[0].state, ContactState::CallbackRequested);
        assert!(open[0].callback);
    }

    #[test]
    fn a_rekeyed_journal_follows_the_new_keys_and_keeps_arrival_order() {
        let mut j = Journal::default();
        j.apply(&[opened(5, 1, 0), opened(9, 2, 0), opened(7, 3, 0)]);
        let open = j.contacts();
        // A restarted engine put them back under keys 0, 1 (and could not restore 7).
        j.rekey([(0, open[0]), (1, open[1])]);
        j.apply(&[
            JournalOp::Connected {
                key: 1,
                agent: 3,
                at: Timestamp(4),
            },
            opened(2, 5, 0),
        ]);
        let open = j.contacts();
        let ids: Vec<_> = open.iter().map(|o| o.contact.as_u128()).collect();
        assert_eq!(ids, vec![5, 9, 2]);
        assert_eq!(open[1].agent, Some(3));
    }
}
