//! The journal: what a restarted router rebuilds the site from.
//!
//! The router writes every contact event it produces into the journal as it handles a
//! message, and every login, logout and change of presence. The journal keeps only what
//! is still open: contacts without a terminal event, and logged-in agents with their
//! endpoints. It lives outside the router (shared with the site's supervisor), so a
//! router that panics loses at most the message it was handling — whose sender gets an
//! error it can retry.

use std::sync::Arc;

use hotline_core::contact::ContactState;
use hotline_core::event::{ContactEventKind, Event, EventBody};
use hotline_core::ids::{AgentId, ContactId, QueueId, TenantId, TraceId};
use hotline_core::time::Timestamp;
use rustc_hash::FxHashMap;

use crate::agent::AgentEndpoint;
use crate::engine::Availability;
use hotline_core::channel::Channel;

/// An open contact as the journal knows it.
#[derive(Debug, Clone)]
pub struct JournaledContact {
    /// Arrival order at this site (earlier first).
    pub seq: u64,
    /// The contact.
    pub contact: ContactId,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its current queue, once queued.
    pub queue: Option<QueueId>,
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
    /// The agent in conversation with it (connected, wrap-up).
    pub agent: Option<AgentId>,
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
    contacts: FxHashMap<ContactId, JournaledContact>,
    seq: u64,
    agents: FxHashMap<u32, JournaledAgent>,
}

impl Journal {
    /// Records contact events (agent events are ignored).
    pub fn record(&mut self, events: &[Event]) {
        for e in events {
            let EventBody::Contact(c) = &e.body else {
                continue;
            };
            if c.kind.is_terminal() {
                self.contacts.remove(&c.contact);
                continue;
            }
            // Offers are not restored (an offered contact waits again), so their events
            // need no bookkeeping: the journal stays on the router's hot path.
            if matches!(
                c.kind,
                ContactEventKind::Offered { .. }
                    | ContactEventKind::OfferDeclined { .. }
                    | ContactEventKind::Expanded { .. }
                    | ContactEventKind::CallbackOffered
            ) {
                continue;
            }
            if matches!(c.kind, ContactEventKind::Arrived) {
                self.seq += 1;
                self.contacts.insert(
                    c.contact,
                    JournaledContact {
                        seq: self.seq,
                        contact: c.contact,
                        tenant: e.tenant.clone(),
                        queue: None,
                        channel: c.channel,
                        priority: 0,
                        trace: e.trace,
                        queued_at: e.at,
                        in_queue_since: e.at,
                        state: ContactState::Arrived,
                        callback: false,
                        agent: None,
                        attempts: 0,
                        connected_at: e.at,
                        ended_at: e.at,
                    },
                );
                continue;
            }
            let Some(j) = self.contacts.get_mut(&c.contact) else {
                continue;
            };
            match &c.kind {
                ContactEventKind::Queued { priority } => {
                    if j.state == ContactState::Arrived {
                        j.queued_at = e.at;
                        j.state = ContactState::Queued;
                    }
                    j.priority = *priority;
                    j.queue = c.queue.clone();
                    j.in_queue_since = e.at;
                }
                ContactEventKind::Connected { .. } => {
                    j.state = ContactState::Connected;
                    j.agent = c.agent.clone();
                    j.connected_at = e.at;
                }
                ContactEventKind::WrapUpStarted { .. } => {
                    j.state = ContactState::WrapUp;
                    j.ended_at = e.at;
                }
                ContactEventKind::CallbackRequested => {
                    j.callback = true;
                    j.state = ContactState::CallbackRequested;
                }
                _ => {}
            }
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
        let mut v: Vec<_> = self.contacts.values().cloned().collect();
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
    use hotline_core::event::ContactEvent;
    use hotline_core::ids::{EventId, SiteId};

    use super::*;

    fn ev(n: u128, at: u64, agent: Option<&str>, kind: ContactEventKind) -> Event {
        Event {
            id: EventId::from_u128(at.into()),
            at: Timestamp(at),
            tenant: TenantId::new("acme").unwrap(),
            site: SiteId::new("s1").unwrap(),
            trace: TraceId::from_u128(n),
            body: EventBody::Contact(ContactEvent {
                contact: ContactId::from_u128(n),
                channel: Channel::Voice,
                queue: Some(QueueId::new("q").unwrap()),
                agent: agent.map(|a| AgentId::new(a).unwrap()),
                kind,
            }),
        }
    }

    #[test]
    fn the_journal_keeps_open_contacts_in_arrival_order_and_forgets_ended_ones() {
        let mut j = Journal::default();
        j.record(&[
            ev(2, 1, None, ContactEventKind::Arrived),
            ev(2, 1, None, ContactEventKind::Queued { priority: 3 }),
            ev(1, 2, None, ContactEventKind::Arrived),
            ev(1, 2, None, ContactEventKind::Queued { priority: 0 }),
            ev(1, 3, Some("ann"), ContactEventKind::Offered { attempt: 1 }),
            ev(
                1,
                4,
                Some("ann"),
                ContactEventKind::Connected { wait_ms: 2 },
            ),
            ev(3, 5, None, ContactEventKind::Arrived),
            ev(3, 5, None, ContactEventKind::Queued { priority: 0 }),
            ev(
                3,
                6,
                None,
                ContactEventKind::Abandoned {
                    wait_ms: 1,
                    while_offered: false,
                },
            ),
        ]);
        let open = j.contacts();
        assert_eq!(open.len(), 2);
        assert_eq!(open[0].contact, ContactId::from_u128(2));
        assert_eq!((open[0].state, open[0].priority), (ContactState::Queued, 3));
        assert_eq!(open[1].state, ContactState::Connected);
        assert_eq!(open[1].agent.as_ref().map(|a| a.as_str()), Some("ann"));
        assert_eq!(open[1].connected_at, Timestamp(4));
    }
}
