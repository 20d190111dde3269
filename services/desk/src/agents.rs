//! Agents logged in at this desk: what each one's page shows (state and time in it,
//! the ringing offer, the contacts held, the day's figures) and the
//! [`DeskEndpoint`] through which the ACD pushes offers and state changes.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use hotline_acd::agent::{AgentCmd, AgentEndpoint, AgentLink};
use hotline_acd::engine::Offer;
use hotline_core::agent::AgentStatus;
use hotline_core::channel::Channel;
use hotline_core::ids::{AgentId, ContactId, QueueId, TenantId, TraceId};
use hotline_core::time::Timestamp;

use crate::desk::Inner;
use crate::hub::Conn;
use crate::schema::{AgentState, ContactView, Figures, OfferView, ServerFrame};

/// Milliseconds in a day: figures restart at midnight UTC.
const DAY_MS: u64 = 86_400_000;

/// A contact an agent holds, as its desk knows it.
#[derive(Debug, Clone)]
pub struct Held {
    /// The contact.
    pub contact: ContactId,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its channel.
    pub channel: Channel,
    /// The queue it came from.
    pub queue: QueueId,
    /// Its trace (the disposition event joins it).
    pub trace: TraceId,
    /// In conversation (false: wrap-up, waiting for the disposition).
    pub connected: bool,
    /// Since when in that phase.
    pub since: Timestamp,
    /// When the conversation began.
    pub answered_at: Timestamp,
    /// When it ended (wrap-up began).
    pub ended_at: Option<Timestamp>,
    /// The customer left.
    pub customer_left: bool,
    /// The agent transferred it (counted, no disposition needed).
    pub transferred: bool,
}

/// The offer ringing at an agent.
#[derive(Debug, Clone)]
pub struct Ringing {
    /// What the ACD offered.
    pub offer: Offer,
    /// When it rings out.
    pub until: Timestamp,
}

/// The day's counters.
#[derive(Debug, Clone, Default)]
pub struct Day {
    index: u64,
    offered: u32,
    answered: u32,
    rejected: u32,
    missed: u32,
    transferred: u32,
    handled: u32,
    handle_ms: u64,
    ready_ms: u64,
    not_ready_ms: u64,
}

impl Day {
    fn roll(&mut self, now: Timestamp) {
        let index = now.millis() / DAY_MS;
        if index != self.index {
            *self = Day {
                index,
                ..Day::default()
            };
        }
    }
}

/// One agent logged in at this desk.
pub struct DeskAgent {
    /// The tenant of the agent's login: only this tenant's contacts are shown.
    pub tenant: TenantId,
    /// The agent.
    pub id: AgentId,
    /// Display name.
    pub name: String,
    /// Its state as the ACD last said.
    pub status: AgentStatus,
    /// Since when.
    pub since: Timestamp,
    /// The ringing offer.
    pub ringing: Option<Ringing>,
    /// Contacts in conversation or wrap-up.
    pub held: Vec<Held>,
    /// The day's figures.
    pub day: Day,
    /// Open pages of this agent.
    pub conns: Vec<Conn>,
}

impl DeskAgent {
    /// A freshly logged-in agent.
    pub fn new(tenant: TenantId, id: AgentId, name: String, now: Timestamp) -> Self {
        let mut day = Day::default();
        day.roll(now);
        DeskAgent {
            tenant,
            id,
            name,
            status: AgentStatus::NotReady("logged_in".into()),
            since: now,
            ringing: None,
            held: Vec::new(),
            day,
            conns: Vec::new(),
        }
    }

    /// Records a new state, adding the time spent in the old one to the day.
    pub fn set_status(&mut self, now: Timestamp, status: AgentStatus) {
        if status == self.status {
            return;
        }
        self.day.roll(now);
        let spent = now.since(self.since.max(Timestamp(self.day.index * DAY_MS * 1000)));
        match self.status {
            AgentStatus::Ready => self.day.ready_ms += spent.as_millis() as u64,
            AgentStatus::NotReady(_) => self.day.not_ready_ms += spent.as_millis() as u64,
            _ => {}
        }
        self.status = status;
        self.since = now;
    }

    /// Counts an offer.
    pub fn count(&mut self, now: Timestamp, what: Count) {
        self.day.roll(now);
        let d = &mut self.day;
        match what {
            Count::Offered => d.offered += 1,
            Count::Answered => d.answered += 1,
            Count::Rejected => d.rejected += 1,
            Count::Missed => d.missed += 1,
            Count::Transferred => d.transferred += 1,
            Count::Handled { handle_ms } => {
                d.handled += 1;
                d.handle_ms += handle_ms;
            }
        }
    }

    /// The day's figures, time in the current state included.
    pub fn figures(&self, now: Timestamp) -> Figures {
        let mut d = self.day.clone();
        d.roll(now);
        let current = now.since(self.since.max(Timestamp(d.index * DAY_MS * 1000)));
        match self.status {
            AgentStatus::Ready => d.ready_ms += current.as_millis() as u64,
            AgentStatus::NotReady(_) => d.not_ready_ms += current.as_millis() as u64,
            _ => {}
        }
        Figures {
            day: civil_day(d.index),
            offered: d.offered,
            answered: d.answered,
            rejected: d.rejected,
            missed: d.missed,
            transferred: d.transferred,
            handled: d.handled,
            aht_secs: if d.handled == 0 {
                0.0
            } else {
                d.handle_ms as f64 / 1000.0 / f64::from(d.handled)
            },
            ready_secs: d.ready_ms as f64 / 1000.0,
            not_ready_secs: d.not_ready_ms as f64 / 1000.0,
        }
    }

    /// The contact the agent holds, if it does.
    pub fn holding(&mut self, contact: &ContactId) -> Option<&mut Held> {
        self.held.iter_mut().find(|h| &h.contact == contact)
    }

    /// Sends a frame to every page of the agent, forgetting closed ones.
    pub fn tell(&mut self, frame: &ServerFrame) {
        self.conns.retain(|c| c.tx.send(frame.clone()).is_ok());
    }
}

/// What [`DeskAgent::count`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// An offer arrived.
    Offered,
    /// The agent accepted it.
    Answered,
    /// The agent rejected it.
    Rejected,
    /// It rang out or was withdrawn.
    Missed,
    /// The agent transferred a contact.
    Transferred,
    /// A contact was wrapped up, after this long in conversation and wrap-up.
    Handled {
        /// Conversation + wrap-up, ms.
        handle_ms: u64,
    },
}

/// `YYYY-MM-DD` of a day number since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil_day(days: u64) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Builds what an agent's page shows from the desk's state.
pub fn agent_state(a: &DeskAgent, hub: &crate::hub::Hub, now: Timestamp) -> AgentState {
    let empty = BTreeMap::new();
    let chat = |c: &ContactId| hub.get(c);
    AgentState {
        state: a.status.name(),
        reason: match &a.status {
            AgentStatus::NotReady(r) => Some(r.clone()),
            _ => None,
        },
        since_ms: a.since.millis(),
        offer: a.ringing.as_ref().map(|r| {
            let c = chat(&r.offer.contact);
            OfferView {
                contact: r.offer.contact,
                channel: r.offer.channel,
                queue: r.offer.queue.clone(),
                waited_ms: r.offer.waited_ms,
                rings_out_at_ms: r.until.millis(),
                attributes: c.map_or_else(|| empty.clone(), |c| c.attributes.clone()),
                history: c.map(|c| c.history()).unwrap_or_default(),
            }
        }),
        contacts: a
            .held
            .iter()
            .map(|h| {
                let c = chat(&h.contact);
                ContactView {
                    contact: h.contact,
                    channel: h.channel,
                    queue: h.queue.clone(),
                    phase: if h.connected { "connected" } else { "wrap_up" },
                    since_ms: h.since.millis(),
                    customer_left: h.customer_left,
                    attributes: c.map_or_else(|| empty.clone(), |c| c.attributes.clone()),
                    history: c.map(|c| c.history()).unwrap_or_default(),
                }
            })
            .collect(),
        figures: a.figures(now),
    }
}

/// The ACD's way into the desk for one agent. Calls come from the agent's shard actor
/// and only record and forward (no waiting).
pub struct DeskEndpoint {
    /// The agent.
    pub agent: AgentId,
    /// The desk (weak: a stopped desk leaves endpoints that do nothing).
    pub desk: Weak<Inner>,
}

impl AgentEndpoint for DeskEndpoint {
    fn offered(&self, link: &AgentLink, offer: &Offer) {
        let Some(desk) = self.desk.upgrade() else {
            return;
        };
        if !desk.offered(&self.agent, offer) {
            // Another tenant's contact: this desk session cannot show it, so it goes
            // straight back to its place for another agent.
            link.send(AgentCmd::Answer {
                contact: offer.contact,
                accept: false,
            });
        }
    }

    fn rescinded(&self, _link: &AgentLink, contact: ContactId) {
        if let Some(desk) = self.desk.upgrade() {
            desk.rescinded(&self.agent, contact);
        }
    }

    fn customer_ended(&self, _link: &AgentLink, contact: ContactId) {
        if let Some(desk) = self.desk.upgrade() {
            desk.customer_ended(&self.agent, contact);
        }
    }

    fn status_changed(&self, _link: &AgentLink, status: &AgentStatus) {
        if let Some(desk) = self.desk.upgrade() {
            desk.status_changed(&self.agent, status.clone());
        }
    }
}

/// Shared so the endpoint is cheap to hand to the ACD.
pub fn endpoint(agent: AgentId, desk: &Arc<Inner>) -> Arc<DeskEndpoint> {
    Arc::new(DeskEndpoint {
        agent,
        desk: Arc::downgrade(desk),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_named_by_their_utc_date() {
        assert_eq!(civil_day(0), "1970-01-01");
        assert_eq!(civil_day(20_454), "2026-01-01");
        assert_eq!(civil_day(19_782), "2024-02-29");
    }

    #[test]
    fn time_ready_and_not_ready_adds_up_and_restarts_at_midnight() {
        let t = |secs: u64| Timestamp(secs * 1_000_000);
        let day0 = 20_454 * 86_400;
        let mut a = DeskAgent::new(
            TenantId::new("acme").unwrap(),
            AgentId::new("ann").unwrap(),
            "Ann".into(),
            t(day0 + 100),
        );
        a.set_status(t(day0 + 160), AgentStatus::Ready);
        a.set_status(t(day0 + 190), AgentStatus::Reserved);
        let f = a.figures(t(day0 + 200));
        assert_eq!((f.not_ready_secs, f.ready_secs), (60.0, 30.0));
        a.set_status(t(day0 + 86_400 + 10), AgentStatus::Ready);
        let f = a.figures(t(day0 + 86_400 + 20));
        assert_eq!((f.day.as_str(), f.ready_secs), ("2026-01-02", 10.0));
    }
}
