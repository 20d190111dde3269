//! The matching engine: one site's queues, waiting contacts and the index of agents who
//! can take them, as plain synchronous code.
//!
//! The router actor owns one [`Engine`] and calls it for every message; the simulator
//! drives the same engine in virtual time. Every method takes `now`, changes state, and
//! leaves [`Effect`]s (offers to deliver, offers to withdraw) and [`Event`]s to be drained
//! by the caller; nothing here blocks, sleeps or reads a clock.
//!
//! # How a decision is made
//!
//! Each queue has bullseye *steps* (step 0 = its own skills; later steps widen). For
//! every step the engine keeps a bit set of the agents eligible there; steps only widen,
//! so each set contains the previous one. A bit set per channel marks the agents who are
//! ready and have free capacity. A contact that starts waiting (or widens a step) is
//! matched against `eligible[queue][step] ∧ available[channel]`, and the queue's strategy
//! picks one agent from that intersection. An agent who becomes free looks at the queues
//! it serves and takes the best waiting contact by priority, then age, among the steps it
//! is eligible at. Waiting contacts are kept per queue and step in ordered maps keyed by
//! `(priority, arrival sequence)`, so a declined contact goes back to exactly its place.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;
use std::time::Duration;

use hotline_core::agent::{AgentStatus, Slot, SlotPhase};
use hotline_core::channel::{Capacity, Channel};
use hotline_core::contact::{
    ContactLife, ContactState, ContactTransition, DeclineReason, FailReason, OverflowTarget,
};
use hotline_core::event::{ContactEvent, ContactEventKind, Event, EventBody};
use hotline_core::ids::{AgentId, ContactId, QueueId, SiteId, SkillId, TenantId, TraceId};
use hotline_core::time::Timestamp;
use serde::Serialize;
use slab::Slab;

use crate::bits::Bits;
use crate::config::{QueueAction, SiteConfig, Strategy};
use crate::error::AcdError;
use crate::ids::IdSource;
use crate::journal::{JournalOp, JournaledContact};

/// Overflow chains longer than this end the contact (a loop in configuration cannot
/// bounce a contact forever).
const MAX_OVERFLOW_HOPS: u32 = 8;

/// How many waiting contacts an agent looks past (ones it recently declined) per queue
/// step before giving up on that step.
const DECLINED_SCAN_LIMIT: usize = 16;

/// A new contact for the engine.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// Its id; unique across sites.
    pub contact: ContactId,
    /// The tenant whose contact it is.
    pub tenant: TenantId,
    /// The queue it asks for.
    pub queue: QueueId,
    /// Its channel; must match the queue's.
    pub channel: Channel,
    /// Priority (higher first); the queue's priority when absent.
    pub priority: Option<u8>,
    /// The trace of its journey; a new one when absent.
    pub trace: Option<TraceId>,
    /// Who the customer is (caller number, chat user), when the channel knows: carried
    /// on the `arrived` event for first-contact resolution and the CRM's screen pop.
    pub customer: Option<std::sync::Arc<str>>,
}

impl Arrival {
    /// An arrival with the queue's priority and a new trace.
    pub fn new(contact: ContactId, tenant: TenantId, queue: QueueId, channel: Channel) -> Self {
        Arrival {
            contact,
            tenant,
            queue,
            channel,
            priority: None,
            trace: None,
            customer: None,
        }
    }
}

/// An offer for an agent's session to deliver.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Offer {
    /// The agent.
    pub agent: AgentId,
    /// The agent's dense index in this engine (for the actor layer's lookups).
    #[serde(skip)]
    pub agent_ix: u32,
    /// The contact.
    pub contact: ContactId,
    /// Its tenant.
    pub tenant: TenantId,
    /// The queue it waited in.
    pub queue: QueueId,
    /// Its channel.
    pub channel: Channel,
    /// How many offers it has had, this one included.
    pub attempt: u32,
    /// How long it has waited, in milliseconds.
    pub waited_ms: u64,
    /// Whether it is a callback (the agent calls the customer).
    pub callback: bool,
    /// Ring time before the offer counts as missed.
    pub no_answer: Duration,
    /// Wrap-up time after the conversation.
    pub wrap_up: Duration,
    /// The trace of the contact's journey, so what the agent's desk records about it
    /// (a disposition) joins the same trace.
    pub trace: TraceId,
}

/// An offer as the engine decides it: indexes, no names. The agent's shard turns it
/// into an [`Offer`] with its own copies of the names ([`Names::offer`]), so no
/// reference-counted id crosses from the router's thread to the shard's with every offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OfferOrder {
    /// The agent's index.
    pub agent_ix: u32,
    /// The contact.
    pub contact: ContactId,
    /// The tenant's index.
    pub tenant_ix: u32,
    /// The queue's index.
    pub queue_ix: u32,
    /// The contact's channel.
    pub channel: Channel,
    /// How many offers it has had, this one included.
    pub attempt: u32,
    /// How long it has waited, in milliseconds.
    pub waited_ms: u64,
    /// Whether it is a callback.
    pub callback: bool,
    /// Ring time before the offer counts as missed.
    pub no_answer: Duration,
    /// Wrap-up time after the conversation.
    pub wrap_up: Duration,
    /// The trace of the contact's journey.
    pub trace: TraceId,
}

/// Tenant and queue ids by index, to turn [`OfferOrder`]s into [`Offer`]s.
#[derive(Debug, Clone, Default)]
pub struct Names {
    tenants: Vec<TenantId>,
    queues: Vec<QueueId>,
}

impl Names {
    /// Copies with their own allocations, for another actor (see `TenantId::detached`).
    pub fn detached(&self) -> Names {
        Names {
            tenants: self.tenants.iter().map(TenantId::detached).collect(),
            queues: self.queues.iter().map(QueueId::detached).collect(),
        }
    }

    /// The offer to show the agent.
    pub fn offer(&self, o: &OfferOrder, agent: AgentId) -> Offer {
        Offer {
            agent,
            agent_ix: o.agent_ix,
            contact: o.contact,
            tenant: self.tenants[o.tenant_ix as usize].clone(),
            queue: self.queues[o.queue_ix as usize].clone(),
            channel: o.channel,
            attempt: o.attempt,
            waited_ms: o.waited_ms,
            callback: o.callback,
            no_answer: o.no_answer,
            wrap_up: o.wrap_up,
            trace: o.trace,
        }
    }
}

/// Something the caller must do outside the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Deliver this offer to the agent.
    Offer(OfferOrder),
    /// Withdraw an offer (the customer hung up).
    Rescind {
        /// The agent's index.
        agent_ix: u32,
        /// The contact.
        contact: ContactId,
    },
    /// The customer ended a conversation; the agent's session starts wrap-up.
    CustomerEnded {
        /// The agent's index.
        agent_ix: u32,
        /// The contact.
        contact: ContactId,
    },
    /// The agent transferred a contact to a queue; the agent's session starts wrap-up
    /// for it while the contact waits in that queue.
    Transferred {
        /// The agent's index.
        agent_ix: u32,
        /// The contact.
        contact: ContactId,
    },
}

/// What the engine knows of an agent's availability, reported by the agent's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    /// Logged in at this site.
    pub logged_in: bool,
    /// Presence is ready (takes new contacts when capacity allows).
    pub ready: bool,
    /// The presence people see when the agent holds no contact (ready, not ready with
    /// its reason, logged out); the engine derives reserved, on contact and wrap-up.
    pub status: AgentStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Stay,
    Overflow(u32),
    Callback,
    Voicemail,
    Disconnect,
}

/// Running counters of a queue since the engine started, for status pages. KPI computes
/// the real figures from events.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QueueCounters {
    /// Contacts that joined the queue (arrivals and overflows in).
    pub entered: u64,
    /// Contacts an agent answered.
    pub answered: u64,
    /// Of those, answered within the queue's service-level threshold.
    pub answered_in_sl: u64,
    /// Contacts whose customer left while waiting.
    pub abandoned: u64,
    /// Contacts moved to another queue or site.
    pub overflowed: u64,
    /// Contacts sent to voicemail.
    pub voicemail: u64,
    /// Contacts the system ended (full, max wait, no agents).
    pub failed: u64,
    /// Sum of answered contacts' waits, in milliseconds.
    pub answered_wait_ms: u64,
}

struct StepRt {
    after: Duration,
    eligible: Bits,
}

struct QueueRt {
    id: QueueId,
    name: String,
    tenant: u32,
    channel: Channel,
    priority: u8,
    strategy: Strategy,
    sl: Duration,
    sl_target: f64,
    wrap_up: Duration,
    no_answer: Duration,
    max_size: Option<u32>,
    max_wait: Option<Duration>,
    on_max_wait: Act,
    when_full: Act,
    when_no_agents: Act,
    steps: Vec<StepRt>,
    /// Waiting contacts per step, keyed by (priority desc, arrival sequence).
    waiting: Vec<BTreeMap<(Reverse<u8>, u64), usize>>,
    /// Contacts in the queue: waiting or offered.
    len: u32,
    rr_cursor: u32,
    counters: QueueCounters,
    /// Per agent: the sum of its levels in this queue's skills (most-skilled strategy),
    /// by index, so a decision reads a dense vector rather than each agent's queues.
    scores: Vec<u16>,
}

struct AgentQueue {
    queue: u32,
    min_step: u8,
}

struct AgentRt {
    id: AgentId,
    name: String,
    serves: Vec<TenantId>,
    capacity: Capacity,
    used: [u8; 3],
    logged_in: bool,
    ready: bool,
    status: AgentStatus,
    queues: Vec<AgentQueue>,
}

impl AgentRt {
    fn has_room(&self, ch: Channel) -> bool {
        self.logged_in && self.ready && self.used[ch.index()] < self.capacity.on(ch)
    }
}

/// What the strategies weigh, per agent, kept in a dense vector apart from the rest of
/// the agent's record: a decision on an idle floor scans hundreds of candidates, and
/// reaching into each one's whole record (ids, names, vectors: several cache lines) was
/// the router's largest cost (perf, `hotline bench routing`).
#[derive(Debug, Clone, Copy, Default)]
struct AgentRank {
    idle_since: Timestamp,
    handled: u32,
    /// Contacts connected or in wrap-up (for occupancy).
    engaged: u8,
    busy_total: u64,
    busy_since: Timestamp,
    logged_total: u64,
    logged_since: Timestamp,
}

impl AgentRank {
    fn occupancy_ppm(&self, now: Timestamp, logged_in: bool) -> u64 {
        let busy = self.busy_total
            + if self.engaged > 0 {
                now.0.saturating_sub(self.busy_since.0)
            } else {
                0
            };
        let logged = self.logged_total
            + if logged_in {
                now.0.saturating_sub(self.logged_since.0)
            } else {
                0
            };
        busy.saturating_mul(1_000_000)
            .checked_div(logged)
            .unwrap_or(0)
    }
}

struct ContactRec {
    id: ContactId,
    tenant: u32,
    queue: u32,
    channel: Channel,
    priority: u8,
    seq: u64,
    life: ContactLife,
    trace: TraceId,
    /// When it first joined a queue at this site (waits are measured from here).
    queued_at: Timestamp,
    /// When it joined its current queue (steps and max wait are measured from here).
    in_queue_since: Timestamp,
    step: u8,
    agent: Option<u32>,
    attempts: u32,
    connected_at: Timestamp,
    ended_at: Timestamp,
    /// Agents who declined it, and until when they are skipped.
    declined: Vec<(u32, Timestamp)>,
    timer: Option<(Timestamp, u64)>,
    max_wait_done: bool,
    hops: u32,
    /// Counted in its queue's length (waiting or offered).
    in_queue: bool,
    /// Held for a cross-site transfer: in its queue, out of the waiting set.
    held: bool,
    /// The customer hung up while it was held.
    hung_up: bool,
    /// Who the customer is, if the channel knows.
    customer: Option<std::sync::Arc<str>>,
    /// Agents who transferred it and are still wrapping it up: never offered it again
    /// meanwhile (their session holds it already).
    transferred_by: Vec<u32>,
}

impl ContactRec {
    fn skips(&self, agent: u32, now: Timestamp) -> bool {
        self.transferred_by.contains(&agent)
            || self
                .declined
                .iter()
                .any(|&(a, until)| a == agent && until > now)
    }

    fn key(&self) -> (Reverse<u8>, u64) {
        (Reverse(self.priority), self.seq)
    }
}

/// A queue as a status page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct QueueSnapshot {
    /// The tenant.
    pub tenant: TenantId,
    /// The queue.
    pub queue: QueueId,
    /// Its display name (may be empty).
    pub name: String,
    /// Its channel.
    pub channel: Channel,
    /// Its strategy.
    pub strategy: &'static str,
    /// Contacts waiting (not yet offered), callbacks included.
    pub waiting: u32,
    /// Of those, callbacks.
    pub callbacks: u32,
    /// Contacts being offered right now.
    pub offered: u32,
    /// The longest current wait, in seconds.
    pub oldest_wait_secs: f64,
    /// Logged-in agents eligible at the queue's widest step.
    pub agents_logged_in: u32,
    /// Of those, ready with free capacity.
    pub agents_available: u32,
    /// Service-level threshold in seconds.
    pub sl_secs: u64,
    /// Service-level target.
    pub sl_target: f64,
    /// Counters since start.
    pub counters: QueueCounters,
}

/// An agent as a status page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AgentSnapshot {
    /// The agent.
    pub agent: AgentId,
    /// The agent's display name (may be empty).
    pub name: String,
    /// Tenants the agent serves.
    pub serves: Vec<TenantId>,
    /// State as people see it.
    pub status: AgentStatus,
    /// Contacts held per channel (voice, chat, callback).
    pub used: [u8; 3],
    /// Contacts answered since start.
    pub handled: u32,
    /// Seconds since the agent last became free (meaningful when ready).
    pub idle_secs: f64,
    /// Busy time ÷ logged-in time since start, 0–1.
    pub occupancy: f64,
    /// Contacts the agent holds (offered, connected or in wrap-up).
    pub contacts: Vec<HeldContact>,
}

/// A contact an agent holds, as the router sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldContact {
    /// The contact.
    pub contact: ContactId,
    /// Its tenant.
    pub tenant: TenantId,
    /// Its queue.
    pub queue: QueueId,
    /// Offered, connected or wrap-up.
    pub state: ContactState,
}

/// The whole site at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct SiteSnapshot {
    /// The site.
    pub site: SiteId,
    /// When the snapshot was taken.
    pub at: Timestamp,
    /// Every queue.
    pub queues: Vec<QueueSnapshot>,
    /// Every configured agent.
    pub agents: Vec<AgentSnapshot>,
    /// Contacts the engine holds (waiting, offered, connected, wrap-up).
    pub contacts: usize,
}

/// One site's matching engine. See the module documentation.
pub struct Engine {
    site: SiteId,
    ids: IdSource,
    tenants: Vec<TenantId>,
    tenant_ix: HashMap<TenantId, u32>,
    queues: Vec<QueueRt>,
    /// Per tenant: queue index by id (looked up by reference, no clone per arrival).
    queue_ix: Vec<HashMap<QueueId, u32>>,
    agents: Vec<AgentRt>,
    /// Per agent, what the strategies weigh (see [`AgentRank`]).
    ranks: Vec<AgentRank>,
    agent_ix: HashMap<AgentId, u32>,
    available: [Bits; 3],
    logged_in: Bits,
    contacts: Slab<ContactRec>,
    contact_ix: HashMap<ContactId, usize>,
    timers: BTreeMap<(Timestamp, u64), usize>,
    next_seq: u64,
    reoffer_after: Duration,
    effects: Vec<Effect>,
    events: Vec<Event>,
    /// Changes for the router's journal since it last took them; recorded only when
    /// [`Engine::keep_journal`] asked for them (the simulator has no journal).
    journal: Vec<JournalOp>,
    journaling: bool,
    /// Cross-site overflow: reservations made here for contacts waiting elsewhere.
    remote: remote::Remote,
    /// Wrap-ups of contacts their agents transferred (see [`Engine::transfer`]).
    holds: Vec<TransferHold>,
}

// === impl Engine: construction and lookups ===

impl Engine {
    /// Builds the engine from a validated configuration.
    pub fn new(config: &SiteConfig, ids: IdSource) -> Result<Self, AcdError> {
        config.validate()?;
        // Ids are detached copies: this engine's events clone them by the million, and
        // sharing their reference counts with other actors costs cache-line traffic.
        let mut e = Engine {
            site: config.site.detached(),
            ids,
            tenants: Vec::new(),
            tenant_ix: HashMap::default(),
            queues: Vec::new(),
            queue_ix: Vec::new(),
            agents: Vec::new(),
            ranks: Vec::new(),
            agent_ix: HashMap::default(),
            available: Default::default(),
            logged_in: Bits::default(),
            contacts: Slab::new(),
            contact_ix: HashMap::default(),
            timers: BTreeMap::new(),
            next_seq: 0,
            reoffer_after: Duration::from_secs(config.defaults.reoffer_after_secs.into()),
            effects: Vec::new(),
            events: Vec::new(),
            journal: Vec::new(),
            journaling: false,
            remote: remote::Remote::default(),
            holds: Vec::new(),
        };
        for (i, t) in config.tenants.iter().enumerate() {
            e.tenants.push(t.id.detached());
            e.tenant_ix.insert(t.id.clone(), i as u32);
        }
        e.queue_ix = (0..e.tenants.len()).map(|_| HashMap::default()).collect();
        for (i, q) in config.queues.iter().enumerate() {
            let t = e.tenant_ix[&q.tenant] as usize;
            e.queue_ix[t].insert(q.id.clone(), i as u32);
        }
        let n_agents = config.agents.len();
        let act = |e: &Engine, tenant: u32, a: &QueueAction| match a {
            QueueAction::Stay => Act::Stay,
            QueueAction::Overflow { queue } => Act::Overflow(e.queue_ix[tenant as usize][queue]),
            QueueAction::Callback => Act::Callback,
            QueueAction::Voicemail => Act::Voicemail,
            QueueAction::Disconnect => Act::Disconnect,
        };
        for q in &config.queues {
            let tenant = e.tenant_ix[&q.tenant];
            let mut steps = vec![StepRt {
                after: Duration::ZERO,
                eligible: Bits::with_len(n_agents),
            }];
            for s in &q.expand {
                steps.push(StepRt {
                    after: Duration::from_secs(s.after_secs.into()),
                    eligible: Bits::with_len(n_agents),
                });
            }
            let waiting = (0..steps.len()).map(|_| BTreeMap::new()).collect();
            let rt = QueueRt {
                id: q.id.detached(),
                name: q.name.clone(),
                tenant,
                channel: q.channel,
                priority: q.priority,
                strategy: q.strategy,
                sl: Duration::from_secs(q.sl_secs.into()),
                sl_target: q.sl_target,
                wrap_up: Duration::from_secs(q.wrap_up_secs.into()),
                no_answer: Duration::from_secs(
                    q.no_answer_secs
                        .unwrap_or(config.defaults.no_answer_secs)
                        .into(),
                ),
                max_size: q.max_size,
                max_wait: q.max_wait_secs.map(|s| Duration::from_secs(s.into())),
                on_max_wait: act(&e, tenant, &q.on_max_wait),
                when_full: act(&e, tenant, &q.when_full),
                when_no_agents: act(&e, tenant, &q.when_no_agents),
                steps,
                waiting,
                len: 0,
                rr_cursor: u32::MAX,
                counters: QueueCounters::default(),
                scores: vec![0; n_agents],
            };
            e.queues.push(rt);
        }
        for b in e.available.iter_mut() {
            *b = Bits::with_len(n_agents);
        }
        e.logged_in = Bits::with_len(n_agents);
        let eligibility = Eligibility::new(config);
        for (i, a) in config.agents.iter().enumerate() {
            let mut queues = Vec::new();
            for (qi, q) in config.queues.iter().enumerate() {
                if a.capacity.on(q.channel) == 0 {
                    continue;
                }
                if let Some((min_step, score)) = eligibility.of(a, qi) {
                    for s in &mut e.queues[qi].steps[min_step as usize..] {
                        s.eligible.set(i, true);
                    }
                    e.queues[qi].scores[i] = score;
                    queues.push(AgentQueue {
                        queue: qi as u32,
                        min_step,
                    });
                }
            }
            e.agents.push(AgentRt {
                id: a.id.detached(),
                name: a.name.clone(),
                serves: a.serves.iter().map(|s| s.tenant.clone()).collect(),
                capacity: a.capacity,
                used: [0; 3],
                logged_in: false,
                ready: false,
                status: AgentStatus::LoggedOut,
                queues,
            });
            e.ranks.push(AgentRank::default());
            e.agent_ix.insert(a.id.clone(), i as u32);
        }
        Ok(e)
    }

    /// Tenant and queue ids by index (copies of the engine's own).
    pub fn names(&self) -> Names {
        Names {
            tenants: self.tenants.clone(),
            queues: self.queues.iter().map(|q| q.id.clone()).collect(),
        }
        .detached()
    }

    /// This engine's site.
    pub fn site(&self) -> &SiteId {
        &self.site
    }

    /// The index of an agent, or an error naming it.
    pub fn agent_index(&self, agent: &AgentId) -> Result<u32, AcdError> {
        self.agent_ix
            .get(agent)
            .copied()
            .ok_or_else(|| AcdError::UnknownAgent(agent.clone()))
    }

    /// How many contacts the engine holds.
    pub fn contact_count(&self) -> usize {
        self.contacts.len()
    }

    /// The state of a contact the engine holds.
    pub fn contact_state(&self, contact: ContactId) -> Option<ContactState> {
        self.contact_ix
            .get(&contact)
            .map(|&k| self.contacts[k].life.state())
    }

    /// Effects produced since the last call.
    pub fn drain_effects(&mut self) -> std::vec::Drain<'_, Effect> {
        self.effects.drain(..)
    }

    /// Events produced since the last call.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, Event> {
        self.events.drain(..)
    }

    /// Takes the effects, leaving the events to be published from [`Engine::events`].
    pub fn take_effects(&mut self, effects: &mut Vec<Effect>) {
        effects.append(&mut self.effects);
    }

    /// Events produced and not yet cleared, oldest first.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Forgets the events (after they were published).
    pub fn clear_events(&mut self) {
        self.events.clear();
    }

    /// Takes both effects and events, leaving the engine's buffers empty.
    pub fn take_output(&mut self, effects: &mut Vec<Effect>, events: &mut Vec<Event>) {
        effects.append(&mut self.effects);
        events.append(&mut self.events);
    }

    /// Records a [`JournalOp`] at every change a restarted router needs, from now on.
    pub fn keep_journal(&mut self) {
        self.journaling = true;
    }

    /// Journal operations recorded and not yet cleared, oldest first.
    pub fn journal_ops(&self) -> &[JournalOp] {
        &self.journal
    }

    /// Forgets the journal operations (after they were applied).
    pub fn clear_journal_ops(&mut self) {
        self.journal.clear();
    }

    fn note(&mut self, op: JournalOp) {
        if self.journaling {
            self.journal.push(op);
        }
    }

    /// The earliest time [`Engine::tick`] has work to do.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let timer = self.timers.keys().next().map(|(t, _)| *t);
        match (timer, self.remote.next_expiry()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The engine's key for a contact it holds (what its journal operations name).
    pub(crate) fn key_of(&self, contact: ContactId) -> Result<usize, AcdError> {
        self.contact_ix
            .get(&contact)
            .copied()
            .ok_or(AcdError::UnknownContact(contact))
    }
}

// === impl Engine: contacts ===

impl Engine {
    /// A contact arrives and joins its queue (or meets the queue's limits).
    pub fn arrive(&mut self, now: Timestamp, a: Arrival) -> Result<(), AcdError> {
        self.arrive_preferring(now, a, None)
    }

    /// As [`Engine::arrive`], offering the contact to `agent` first (a reserved agent
    /// taking a contact from another site).
    pub(crate) fn arrive_for(
        &mut self,
        now: Timestamp,
        a: Arrival,
        agent: u32,
    ) -> Result<(), AcdError> {
        self.arrive_preferring(now, a, Some(agent))
    }

    fn arrive_preferring(
        &mut self,
        now: Timestamp,
        a: Arrival,
        prefer: Option<u32>,
    ) -> Result<(), AcdError> {
        let tenant = *self
            .tenant_ix
            .get(&a.tenant)
            .ok_or_else(|| AcdError::UnknownTenant(a.tenant.clone()))?;
        let qi = *self.queue_ix[tenant as usize]
            .get(&a.queue)
            .ok_or_else(|| AcdError::UnknownQueue {
                tenant: a.tenant.clone(),
                queue: a.queue.clone(),
            })?;
        let q = &self.queues[qi as usize];
        if q.channel != a.channel {
            return Err(AcdError::WrongChannel {
                queue: a.queue,
                expected: q.channel,
                got: a.channel,
            });
        }
        if self.contact_ix.contains_key(&a.contact) {
            return Err(AcdError::DuplicateContact(a.contact));
        }
        self.next_seq += 1;
        // A new trace takes its id from the event source at the message's time, like the
        // events' ids: time-ordered the same, without reading the clock per arrival.
        let trace = a
            .trace
            .unwrap_or_else(|| TraceId::from_u128(self.ids.event(now).as_u128()));
        let rec = ContactRec {
            id: a.contact,
            tenant,
            queue: qi,
            channel: a.channel,
            priority: a.priority.unwrap_or(q.priority),
            seq: self.next_seq,
            life: ContactLife::new(),
            trace,
            queued_at: now,
            in_queue_since: now,
            step: 0,
            agent: None,
            attempts: 0,
            connected_at: now,
            ended_at: now,
            declined: Vec::new(),
            timer: None,
            max_wait_done: false,
            hops: 0,
            in_queue: false,
            held: false,
            hung_up: false,
            customer: a.customer.clone(),
            transferred_by: Vec::new(),
        };
        let key = self.contacts.insert(rec);
        self.contact_ix.insert(a.contact, key);
        self.emit(
            now,
            key,
            None,
            ContactEventKind::Arrived {
                customer: a.customer,
            },
        );
        self.join_preferring(now, key, qi, prefer);
        Ok(())
    }

    /// Puts contact `key` (arrived, or leaving another queue) into queue `qi`, applying
    /// the queue's limits.
    fn join(&mut self, now: Timestamp, key: usize, qi: u32) {
        self.join_preferring(now, key, qi, None);
    }

    fn join_preferring(&mut self, now: Timestamp, key: usize, qi: u32, prefer: Option<u32>) {
        let q = &self.queues[qi as usize];
        let full = q.max_size.is_some_and(|m| q.len >= m);
        let nobody = q.when_no_agents != Act::Stay
            && !q
                .steps
                .last()
                .is_some_and(|s| s.eligible.intersects(&self.logged_in));
        let (act, reason) = if full {
            (q.when_full, FailReason::QueueFull)
        } else if nobody {
            (q.when_no_agents, FailReason::NoAgents)
        } else {
            (Act::Stay, FailReason::Internal)
        };
        let c = &mut self.contacts[key];
        c.hops += 1;
        if act != Act::Stay && c.hops > MAX_OVERFLOW_HOPS {
            // A loop of overflows in configuration: end it rather than bounce forever.
            self.finish_failed(now, key, reason);
            return;
        }
        let entering = c.life.state() == ContactState::Arrived;
        if entering {
            c.life
                .apply(&ContactTransition::Enqueue(
                    self.queues[qi as usize].id.clone(),
                ))
                .expect("an arrived contact can always be queued");
        }
        c.queue = qi;
        c.step = 0;
        c.in_queue_since = now;
        c.max_wait_done = false;
        c.in_queue = true;
        let q = &mut self.queues[qi as usize];
        q.len += 1;
        q.counters.entered += 1;
        let priority = c.priority;
        let op = if entering {
            JournalOp::Opened {
                key,
                contact: c.id,
                tenant: c.tenant,
                queue: qi,
                channel: c.channel,
                priority,
                trace: c.trace,
                at: now,
            }
        } else {
            JournalOp::Requeued {
                key,
                queue: qi,
                priority,
                at: now,
            }
        };
        self.emit(now, key, None, ContactEventKind::Queued { priority });
        self.note(op);
        let k = self.contacts[key].key();
        self.queues[qi as usize].waiting[0].insert(k, key);
        match act {
            Act::Stay => {
                self.schedule(key);
                let ch = self.contacts[key].channel;
                match prefer {
                    Some(a) if self.agents[a as usize].has_room(ch) => self.offer(now, key, a),
                    _ => self.try_contact(now, key),
                }
            }
            other => self.apply_action(now, key, other, reason),
        }
    }

    /// The customer hung up (or closed the chat).
    pub fn hang_up(&mut self, now: Timestamp, contact: ContactId) -> Result<(), AcdError> {
        let key = self.key_of(contact)?;
        if self.hang_up_held(key) {
            // The hold's end decides where the contact is abandoned (engine/remote.rs).
            return Ok(());
        }
        let c = &self.contacts[key];
        match c.life.state() {
            ContactState::Connected => {
                self.end_conversation(now, key, true);
                Ok(())
            }
            ContactState::Queued | ContactState::Offered => {
                let agent = c.agent;
                let while_offered = agent.is_some();
                self.leave_queue(key);
                let c = &mut self.contacts[key];
                c.life
                    .apply(&ContactTransition::Abandon)
                    .map_err(|e| AcdError::contact(contact, e))?;
                let wait_ms = now.since(c.queued_at).as_millis() as u64;
                if let Some(a) = agent {
                    self.contacts[key].agent = None;
                    self.release(now, a, key, false);
                    self.effects.push(Effect::Rescind {
                        agent_ix: a,
                        contact,
                    });
                }
                let qi = self.contacts[key].queue as usize;
                self.queues[qi].counters.abandoned += 1;
                self.emit(
                    now,
                    key,
                    agent,
                    ContactEventKind::Abandoned {
                        wait_ms,
                        while_offered,
                    },
                );
                self.remove(key);
                if let Some(a) = agent {
                    self.try_agent(now, a);
                }
                Ok(())
            }
            s => Err(AcdError::contact(
                contact,
                hotline_core::contact::IllegalContactTransition {
                    from: s,
                    transition: ContactTransition::Abandon,
                },
            )),
        }
    }

    /// The customer, waiting in line, asked to be called back; the request keeps its place.
    pub fn request_callback(&mut self, now: Timestamp, contact: ContactId) -> Result<(), AcdError> {
        let key = self.key_of(contact)?;
        self.contacts[key]
            .life
            .apply(&ContactTransition::RequestCallback)
            .map_err(|e| AcdError::contact(contact, e))?;
        self.emit(now, key, None, ContactEventKind::CallbackRequested);
        self.note(JournalOp::Callback { key });
        Ok(())
    }

    /// Moves a waiting contact to another queue of its tenant (a supervisor's move); it
    /// keeps its age.
    pub fn move_contact(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        to: &QueueId,
        reason: &str,
    ) -> Result<(), AcdError> {
        let key = self.key_of(contact)?;
        let to_ix = self.queue_taking(key, to)?;
        let c = &self.contacts[key];
        if !c.life.state().is_waiting() {
            return Err(AcdError::contact(
                contact,
                hotline_core::contact::IllegalContactTransition {
                    from: c.life.state(),
                    transition: ContactTransition::Overflow(OverflowTarget::Queue(to.clone())),
                },
            ));
        }
        self.overflow_to(now, key, to_ix, reason);
        Ok(())
    }

    /// The agent's session confirms the agent answered.
    pub fn accepted(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        agent: u32,
    ) -> Result<(), AcdError> {
        let key = self.offered_to(contact, agent)?;
        let c = &mut self.contacts[key];
        c.life
            .apply(&ContactTransition::Accept)
            .map_err(|e| AcdError::contact(contact, e))?;
        c.connected_at = now;
        c.in_queue = false;
        let wait = now.since(c.queued_at);
        let qi = c.queue as usize;
        let q = &mut self.queues[qi];
        q.len -= 1;
        q.counters.answered += 1;
        q.counters.answered_wait_ms += wait.as_millis() as u64;
        if wait <= q.sl {
            q.counters.answered_in_sl += 1;
        }
        let r = &mut self.ranks[agent as usize];
        r.handled += 1;
        if r.engaged == 0 {
            r.busy_since = now;
        }
        r.engaged += 1;
        self.emit(
            now,
            key,
            Some(agent),
            ContactEventKind::Connected {
                wait_ms: wait.as_millis() as u64,
            },
        );
        self.note(JournalOp::Connected {
            key,
            agent,
            at: now,
        });
        Ok(())
    }

    /// The agent's session reports the offer ended without a conversation; the contact
    /// returns to its place and the agent is skipped for it for a while.
    pub fn declined(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        agent: u32,
        reason: DeclineReason,
    ) -> Result<(), AcdError> {
        let key = self.offered_to(contact, agent)?;
        let until = now + self.reoffer_after;
        let c = &mut self.contacts[key];
        c.life
            .apply(&ContactTransition::Decline(reason))
            .map_err(|e| AcdError::contact(contact, e))?;
        c.agent = None;
        c.declined.retain(|&(_, u)| u > now);
        c.declined.push((agent, until));
        self.emit(
            now,
            key,
            Some(agent),
            ContactEventKind::OfferDeclined { reason },
        );
        self.release(now, agent, key, false);
        let (qi, step, k) = {
            let c = &self.contacts[key];
            (c.queue as usize, c.step as usize, c.key())
        };
        self.queues[qi].waiting[step].insert(k, key);
        self.schedule(key);
        self.try_contact(now, key);
        self.try_agent(now, agent);
        Ok(())
    }

    /// The conversation ended (agent side); wrap-up begins.
    pub fn ended(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        agent: u32,
    ) -> Result<(), AcdError> {
        let key = self.key_of(contact)?;
        let c = &self.contacts[key];
        if c.agent != Some(agent) {
            return Err(AcdError::NotYours { contact });
        }
        match c.life.state() {
            // The customer already ended it; the agent's end is the same fact.
            ContactState::WrapUp => Ok(()),
            _ => {
                self.end_conversation(now, key, false);
                Ok(())
            }
        }
    }

    fn end_conversation(&mut self, now: Timestamp, key: usize, by_customer: bool) {
        let c = &mut self.contacts[key];
        if c.life.apply(&ContactTransition::End).is_err() {
            return;
        }
        c.ended_at = now;
        let talk_ms = now.since(c.connected_at).as_millis() as u64;
        let agent = c.agent;
        let contact = c.id;
        self.emit(now, key, agent, ContactEventKind::WrapUpStarted { talk_ms });
        self.note(JournalOp::WrapUp { key, at: now });
        if by_customer && let Some(a) = agent {
            self.effects.push(Effect::CustomerEnded {
                agent_ix: a,
                contact,
            });
        }
    }

    /// Wrap-up finished; the contact is done and the agent's capacity is free again.
    pub fn wrap_up_done(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        agent: u32,
    ) -> Result<(), AcdError> {
        if self.end_transfer_hold(now, contact, agent) {
            return Ok(());
        }
        let key = self.key_of(contact)?;
        let c = &mut self.contacts[key];
        if c.agent != Some(agent) {
            return Err(AcdError::NotYours { contact });
        }
        c.life
            .apply(&ContactTransition::Finish)
            .map_err(|e| AcdError::contact(contact, e))?;
        let talk_ms = c.ended_at.since(c.connected_at).as_millis() as u64;
        let wrap_ms = now.since(c.ended_at).as_millis() as u64;
        self.emit(
            now,
            key,
            Some(agent),
            ContactEventKind::Done {
                talk_ms,
                hold_ms: 0,
                wrap_ms,
            },
        );
        self.release(now, agent, key, true);
        self.remove(key);
        self.try_agent(now, agent);
        Ok(())
    }

    fn offered_to(&self, contact: ContactId, agent: u32) -> Result<usize, AcdError> {
        let key = self.key_of(contact)?;
        let c = &self.contacts[key];
        if c.agent != Some(agent) || c.life.state() != ContactState::Offered {
            return Err(AcdError::NotOffered {
                contact,
                agent: self.agents[agent as usize].id.clone(),
            });
        }
        Ok(key)
    }

    /// Frees the agent's slot held by contact `key`.
    fn release(&mut self, now: Timestamp, agent: u32, key: usize, was_engaged: bool) {
        self.release_slot(now, agent, self.contacts[key].channel, was_engaged);
    }

    /// Frees one of the agent's slots on channel `ch`.
    fn release_slot(&mut self, now: Timestamp, agent: u32, ch: Channel, was_engaged: bool) {
        let ag = &mut self.agents[agent as usize];
        ag.used[ch.index()] -= 1;
        let r = &mut self.ranks[agent as usize];
        if was_engaged {
            r.engaged -= 1;
            if r.engaged == 0 {
                r.busy_total += now.0.saturating_sub(r.busy_since.0);
            }
        }
        if ag.used.iter().all(|&u| u == 0) {
            r.idle_since = now;
        }
        self.refresh_available(agent);
    }

    fn refresh_available(&mut self, agent: u32) {
        let ag = &self.agents[agent as usize];
        for ch in Channel::ALL {
            let on = ag.has_room(ch);
            self.available[ch.index()].set(agent as usize, on);
        }
    }

    /// Takes a waiting contact out of its queue's waiting set (not out of the queue).
    fn leave_queue(&mut self, key: usize) {
        self.unschedule(key);
        let c = &self.contacts[key];
        if c.life.state().is_waiting() {
            let k = c.key();
            self.queues[c.queue as usize].waiting[c.step as usize].remove(&k);
        }
        if c.in_queue {
            self.queues[c.queue as usize].len -= 1;
            self.contacts[key].in_queue = false;
        }
    }

    /// Forgets contact `key`, which has ended here.
    fn remove(&mut self, key: usize) {
        self.unschedule(key);
        let c = self.contacts.remove(key);
        self.contact_ix.remove(&c.id);
        self.note(JournalOp::Closed { key });
    }

    fn overflow_to(&mut self, now: Timestamp, key: usize, to: u32, reason: &str) {
        self.leave_queue(key);
        let to_id = self.queues[to as usize].id.clone();
        let c = &mut self.contacts[key];
        c.life
            .apply(&ContactTransition::Overflow(OverflowTarget::Queue(
                to_id.clone(),
            )))
            .expect("a waiting contact can always move to another queue");
        let from = c.queue as usize;
        self.queues[from].counters.overflowed += 1;
        self.emit(
            now,
            key,
            None,
            ContactEventKind::Overflowed {
                to: OverflowTarget::Queue(to_id),
                reason: reason.to_owned(),
            },
        );
        self.join(now, key, to);
    }

    fn apply_action(&mut self, now: Timestamp, key: usize, act: Act, reason: FailReason) {
        let label = match reason {
            FailReason::QueueFull => "queue_full",
            FailReason::MaxWait => "max_wait",
            FailReason::NoAgents => "no_agents",
            FailReason::Misrouted => "misrouted",
            FailReason::Internal => "internal",
        };
        match act {
            Act::Stay => {}
            Act::Overflow(to) => self.overflow_to(now, key, to, label),
            Act::Callback => {
                self.emit(now, key, None, ContactEventKind::CallbackOffered);
                self.schedule(key);
            }
            Act::Voicemail => {
                self.leave_queue(key);
                let c = &mut self.contacts[key];
                if c.life.apply(&ContactTransition::Voicemail).is_err() {
                    // A callback cannot leave a voicemail: the customer is gone.
                    self.finish_failed(now, key, reason);
                    return;
                }
                let qi = c.queue as usize;
                self.queues[qi].counters.voicemail += 1;
                self.emit(
                    now,
                    key,
                    None,
                    ContactEventKind::Voicemail {
                        reason: label.to_owned(),
                    },
                );
                self.remove(key);
            }
            Act::Disconnect => self.finish_failed(now, key, reason),
        }
    }

    fn finish_failed(&mut self, now: Timestamp, key: usize, reason: FailReason) {
        self.leave_queue(key);
        let c = &mut self.contacts[key];
        c.life
            .apply(&ContactTransition::Fail(reason))
            .expect("a live contact can always fail");
        let qi = c.queue as usize;
        self.queues[qi].counters.failed += 1;
        self.emit(now, key, None, ContactEventKind::Failed { reason });
        self.remove(key);
    }
}

// === impl Engine: agent transfers ===

/// An agent's wrap-up of a contact it transferred: the agent's slot stays taken until
/// its session reports the wrap-up done, while the contact itself waits in its new
/// queue. Not journaled: after a router restart the agent's restored session has no
/// such slot (its wrap-up of a transferred contact ends early) and neither has the
/// engine, so the two agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TransferHold {
    agent: u32,
    contact: ContactId,
    channel: Channel,
    tenant: u32,
    /// The queue it was transferred from (its wrap-up time applies).
    queue: u32,
}

impl Engine {
    /// An agent in conversation hands the contact to queue `to` of the same tenant and
    /// channel: a `transferred` event (naming the queue left and the agent), the agent's
    /// session goes to wrap-up for it ([`Effect::Transferred`]), and the contact waits
    /// in `to` again — its new wait measured from now, its priority kept — where any
    /// agent but the one wrapping it up may take it. Refused, changing nothing, when the
    /// agent does not hold the contact in conversation or the queue cannot take it.
    pub fn transfer(
        &mut self,
        now: Timestamp,
        contact: ContactId,
        agent: u32,
        to: &QueueId,
    ) -> Result<(), AcdError> {
        let key = self.key_of(contact)?;
        let c = &self.contacts[key];
        if c.agent != Some(agent) {
            return Err(AcdError::NotYours { contact });
        }
        let to_ix = self.queue_taking(key, to)?;
        let c = &mut self.contacts[key];
        c.life
            .apply(&ContactTransition::Transfer(to.clone()))
            .map_err(|e| AcdError::contact(contact, e))?;
        self.emit(
            now,
            key,
            Some(agent),
            ContactEventKind::Transferred {
                to: OverflowTarget::Queue(to.clone()),
            },
        );
        let c = &mut self.contacts[key];
        c.agent = None;
        c.declined.clear();
        c.queued_at = now;
        c.transferred_by.push(agent);
        self.holds.push(TransferHold {
            agent,
            contact,
            channel: c.channel,
            tenant: c.tenant,
            queue: c.queue,
        });
        self.note(JournalOp::Transferred { key, at: now });
        self.effects.push(Effect::Transferred {
            agent_ix: agent,
            contact,
        });
        self.join(now, key, to_ix);
        Ok(())
    }

    /// The index of queue `to` of contact `key`'s tenant, if it takes the contact's
    /// channel (for moves and transfers).
    fn queue_taking(&self, key: usize, to: &QueueId) -> Result<u32, AcdError> {
        let c = &self.contacts[key];
        let tenant = c.tenant as usize;
        let to_ix = *self.queue_ix[tenant]
            .get(to)
            .ok_or_else(|| AcdError::UnknownQueue {
                tenant: self.tenants[tenant].clone(),
                queue: to.clone(),
            })?;
        let expected = self.queues[to_ix as usize].channel;
        if expected != c.channel {
            return Err(AcdError::WrongChannel {
                queue: to.clone(),
                expected,
                got: c.channel,
            });
        }
        Ok(to_ix)
    }

    /// Ends the agent's wrap-up of a contact it transferred, if that is what this is:
    /// frees its slot and lets it take the contact again.
    fn end_transfer_hold(&mut self, now: Timestamp, contact: ContactId, agent: u32) -> bool {
        let Some(i) = self
            .holds
            .iter()
            .position(|h| h.agent == agent && h.contact == contact)
        else {
            return false;
        };
        let h = self.holds.swap_remove(i);
        if let Some(&key) = self.contact_ix.get(&contact) {
            self.contacts[key].transferred_by.retain(|&a| a != agent);
        }
        self.release_slot(now, agent, h.channel, true);
        self.try_agent(now, agent);
        true
    }

    /// The agent's transfer wrap-ups as slots, for its restarted session.
    fn hold_slots(&self, agent: u32) -> Vec<(Slot, Duration)> {
        self.holds
            .iter()
            .filter(|h| h.agent == agent)
            .map(|h| {
                let slot = Slot {
                    contact: h.contact,
                    channel: h.channel,
                    phase: SlotPhase::WrapUp,
                };
                (slot, self.queues[h.queue as usize].wrap_up)
            })
            .collect()
    }

    /// The agent's session is gone: its transfer wrap-ups end with it.
    fn drop_transfer_holds(&mut self, now: Timestamp, agent: u32) {
        let mine: Vec<ContactId> = self
            .holds
            .iter()
            .filter(|h| h.agent == agent)
            .map(|h| h.contact)
            .collect();
        for contact in mine {
            self.end_transfer_hold(now, contact, agent);
        }
    }
}

// === impl Engine: timers ===

impl Engine {
    fn schedule(&mut self, key: usize) {
        self.unschedule(key);
        let c = &self.contacts[key];
        if !c.life.state().is_waiting() {
            return;
        }
        let q = &self.queues[c.queue as usize];
        let mut at: Option<Timestamp> = None;
        let mut consider = |t: Timestamp| at = Some(at.map_or(t, |a| a.min(t)));
        if let Some(step) = q.steps.get(c.step as usize + 1) {
            consider(c.in_queue_since + step.after);
        }
        if let Some(max) = q.max_wait
            && !c.max_wait_done
        {
            consider(c.in_queue_since + max);
        }
        for &(_, until) in &c.declined {
            consider(until);
        }
        if let Some(at) = at {
            self.next_seq += 1;
            let tk = (at, self.next_seq);
            self.timers.insert(tk, key);
            self.contacts[key].timer = Some(tk);
        }
    }

    fn unschedule(&mut self, key: usize) {
        if let Some(tk) = self.contacts[key].timer.take() {
            self.timers.remove(&tk);
        }
    }

    /// Runs every timer due at `now`: bullseye steps, maximum waits, re-offers.
    pub fn tick(&mut self, now: Timestamp) {
        if self.remote.next_expiry().is_some_and(|t| t <= now) {
            self.expire_reservations(now);
        }
        while let Some((&tk, &key)) = self.timers.first_key_value() {
            if tk.0 > now {
                break;
            }
            self.timers.remove(&tk);
            self.contacts[key].timer = None;
            self.fire(now, key);
        }
    }

    fn fire(&mut self, now: Timestamp, key: usize) {
        let c = &self.contacts[key];
        let qi = c.queue as usize;
        let q = &self.queues[qi];
        if let Some(max) = q.max_wait
            && !c.max_wait_done
            && now >= c.in_queue_since + max
        {
            self.contacts[key].max_wait_done = true;
            let act = q.on_max_wait;
            self.apply_action(now, key, act, FailReason::MaxWait);
            if !self.contacts.contains(key) || self.contacts[key].queue as usize != qi {
                return;
            }
        }
        let c = &self.contacts[key];
        let mut step = c.step as usize;
        let q = &self.queues[qi];
        while step + 1 < q.steps.len() && now >= c.in_queue_since + q.steps[step + 1].after {
            step += 1;
        }
        if step != c.step as usize {
            let k = c.key();
            let old = c.step as usize;
            let q = &mut self.queues[qi];
            if q.waiting[old].remove(&k).is_some() {
                q.waiting[step].insert(k, key);
            }
            self.contacts[key].step = step as u8;
            self.emit(
                now,
                key,
                None,
                ContactEventKind::Expanded { step: step as u8 },
            );
        }
        self.contacts[key].declined.retain(|&(_, u)| u > now);
        self.schedule(key);
        self.try_contact(now, key);
    }
}

// === impl Engine: matching ===

impl Engine {
    /// Offers waiting contact `key` to the best available eligible agent, if any.
    ///
    /// The strategy is matched once per decision, not once per candidate: on an idle
    /// floor a decision weighs a hundred agents or more, and each strategy's loop is
    /// then its own tight loop (round-robin's distance without a division).
    fn try_contact(&mut self, now: Timestamp, key: usize) {
        let c = &self.contacts[key];
        if !c.life.state().is_waiting() {
            return;
        }
        let q = &self.queues[c.queue as usize];
        let eligible = &q.steps[c.step as usize].eligible;
        let available = &self.available[c.channel.index()];
        let agents = &self.ranks[..];
        let best = match q.strategy {
            Strategy::LongestIdle => lowest(
                eligible,
                available,
                agents,
                |a| !c.skips(a as u32, now),
                |_, r| (r.idle_since.0, 0),
            ),
            Strategy::MostSkilled => {
                let scores = &q.scores[..];
                lowest(
                    eligible,
                    available,
                    agents,
                    |a| !c.skips(a as u32, now),
                    |a, r| (u64::from(u16::MAX - scores[a]), r.idle_since.0),
                )
            }
            Strategy::RoundRobin => {
                let n = agents.len().max(1);
                let cursor = (q.rr_cursor.wrapping_add(1) as usize) % n;
                lowest(
                    eligible,
                    available,
                    agents,
                    |a| !c.skips(a as u32, now),
                    |a, _| {
                        let d = if a >= cursor {
                            a - cursor
                        } else {
                            a + n - cursor
                        };
                        (d as u64, 0)
                    },
                )
            }
            Strategy::FewestContacts => lowest(
                eligible,
                available,
                agents,
                |a| !c.skips(a as u32, now),
                |_, r| (u64::from(r.handled), r.idle_since.0),
            ),
            Strategy::LeastOccupied => lowest(
                eligible,
                available,
                agents,
                |a| !c.skips(a as u32, now),
                // Candidates are available, so logged in.
                |_, r| (r.occupancy_ppm(now, true), r.idle_since.0),
            ),
        };
        if let Some(agent) = best {
            self.offer(now, key, agent);
        }
    }

    /// Gives a free agent the best waiting contact it can take, repeatedly while it has
    /// room (an agent with three chat slots may take three contacts).
    fn try_agent(&mut self, now: Timestamp, agent: u32) {
        loop {
            let ag = &self.agents[agent as usize];
            if !ag.logged_in || !ag.ready {
                return;
            }
            let mut best: Option<((Reverse<u8>, u64), usize)> = None;
            for aq in &ag.queues {
                let q = &self.queues[aq.queue as usize];
                if !ag.has_room(q.channel) {
                    continue;
                }
                for waiting in &q.waiting[aq.min_step as usize..] {
                    let candidate = waiting
                        .iter()
                        .take(DECLINED_SCAN_LIMIT)
                        .find(|(_, k)| !self.contacts[**k].skips(agent, now));
                    if let Some((&k, &key)) = candidate
                        && best.is_none_or(|(b, _)| k < b)
                    {
                        best = Some((k, key));
                    }
                }
            }
            match best {
                Some((_, key)) => self.offer(now, key, agent),
                None => return,
            }
        }
    }

    fn offer(&mut self, now: Timestamp, key: usize, agent: u32) {
        self.unschedule(key);
        // The transition owns the agent's id: one clone, dropped with it.
        let agent_id = self.agents[agent as usize].id.clone();
        let c = &mut self.contacts[key];
        let k = c.key();
        let qi = c.queue as usize;
        let removed = self.queues[qi].waiting[c.step as usize].remove(&k);
        debug_assert!(removed.is_some(), "offered contact was not waiting");
        let callback = c.life.is_callback();
        c.life
            .apply(&ContactTransition::Offer(agent_id))
            .expect("a waiting contact can always be offered");
        c.agent = Some(agent);
        c.attempts += 1;
        let attempt = c.attempts;
        let (contact, channel, tenant, trace) = (c.id, c.channel, c.tenant, c.trace);
        let waited_ms = now.since(c.queued_at).as_millis() as u64;
        let q = &mut self.queues[qi];
        if q.strategy == Strategy::RoundRobin {
            q.rr_cursor = agent;
        }
        let offer = OfferOrder {
            agent_ix: agent,
            contact,
            tenant_ix: tenant,
            queue_ix: qi as u32,
            channel,
            attempt,
            waited_ms,
            callback,
            no_answer: q.no_answer,
            wrap_up: q.wrap_up,
            trace,
        };
        self.agents[agent as usize].used[channel.index()] += 1;
        self.refresh_available(agent);
        self.emit(now, key, Some(agent), ContactEventKind::Offered { attempt });
        self.effects.push(Effect::Offer(offer));
    }
}

/// The agent in both `eligible` and `available` that `admits` with the lowest `score`
/// (the lowest index among equals). Generic so that each strategy's call is one loop
/// with its score inlined.
#[inline(always)]
fn lowest(
    eligible: &Bits,
    available: &Bits,
    agents: &[AgentRank],
    admits: impl Fn(usize) -> bool,
    score: impl Fn(usize, &AgentRank) -> (u64, u64),
) -> Option<u32> {
    let mut best: Option<((u64, u64), u32)> = None;
    eligible.for_each_common(available, |a| {
        if !admits(a) {
            return;
        }
        let s = score(a, &agents[a]);
        if best.is_none_or(|(b, _)| s < b) {
            best = Some((s, a as u32));
        }
    });
    best.map(|(_, a)| a)
}

// === impl Engine: agents ===

impl Engine {
    /// The agent's session reports a change of presence.
    pub fn set_availability(&mut self, now: Timestamp, agent: u32, av: Availability) {
        let ag = &mut self.agents[agent as usize];
        let r = &mut self.ranks[agent as usize];
        let logging_out = !av.logged_in && ag.logged_in;
        if av.logged_in && !ag.logged_in {
            r.logged_since = now;
            r.idle_since = now;
        }
        if logging_out {
            r.logged_total += now.0.saturating_sub(r.logged_since.0);
        }
        if av.ready && !ag.ready && ag.used.iter().all(|&u| u == 0) {
            r.idle_since = now;
        }
        ag.logged_in = av.logged_in;
        ag.ready = av.ready;
        ag.status = av.status;
        self.logged_in.set(agent as usize, av.logged_in);
        self.refresh_available(agent);
        if logging_out {
            self.leave_when_empty(now, agent);
        }
        self.try_agent(now, agent);
    }

    /// The agent just logged out: a queue it could serve that now has no eligible agent
    /// logged in applies its "no agents" policy to the contacts waiting in it, as it
    /// would to an arrival (a queue that keeps them, `stay`, does nothing).
    fn leave_when_empty(&mut self, now: Timestamp, agent: u32) {
        let queues: Vec<u32> = self.agents[agent as usize]
            .queues
            .iter()
            .map(|aq| aq.queue)
            .collect();
        for qi in queues {
            let q = &self.queues[qi as usize];
            let act = q.when_no_agents;
            let widest = &q.steps.last().expect("a queue has step 0").eligible;
            if act == Act::Stay || widest.intersects(&self.logged_in) {
                continue;
            }
            let mut waiting: Vec<(u64, usize)> = q
                .waiting
                .iter()
                .flat_map(|w| w.values())
                .map(|&k| (self.contacts[k].seq, k))
                .collect();
            waiting.sort_unstable();
            for (_, key) in waiting {
                self.apply_action(now, key, act, FailReason::NoAgents);
            }
        }
    }

    /// The agents' sessions failed together (their shard crashed). Offers they held
    /// return to their places; contacts in conversation or wrap-up stay with the agents
    /// and are returned (with their wrap-up times) so the restarted sessions can take
    /// them over. All of them stop taking offers first, so a returned offer never goes
    /// to another agent of the same failed group.
    pub fn agents_failed(&mut self, now: Timestamp, agents: &[u32]) -> Vec<Recovery> {
        let was_ready: Vec<bool> = agents
            .iter()
            .map(|&a| self.agents[a as usize].ready)
            .collect();
        for &agent in agents {
            // No new offers until the restarted session reports its presence.
            let ag = &mut self.agents[agent as usize];
            ag.ready = false;
            ag.status = AgentStatus::NotReady("recovered".to_owned());
            self.refresh_available(agent);
        }
        agents
            .iter()
            .zip(was_ready)
            .map(|(&agent, was_ready)| {
                let mut slots = self.withdraw_offers(now, agent);
                slots.extend(self.hold_slots(agent));
                Recovery { slots, was_ready }
            })
            .collect()
    }

    /// One agent's session failed; see [`Engine::agents_failed`].
    pub fn agent_failed(&mut self, now: Timestamp, agent: u32) -> Recovery {
        self.agents_failed(now, &[agent])
            .pop()
            .expect("one recovery per agent")
    }

    /// The agent's session ended (logged out, or its actor is gone for good). Offers it
    /// held, including any still in flight to it, return to their places.
    pub fn agent_gone(&mut self, now: Timestamp, agent: u32) {
        self.drop_reservations_of(now, agent);
        self.set_availability(
            now,
            agent,
            Availability {
                logged_in: false,
                ready: false,
                status: AgentStatus::LoggedOut,
            },
        );
        self.withdraw_offers(now, agent);
        self.drop_transfer_holds(now, agent);
    }

    fn withdraw_offers(&mut self, now: Timestamp, agent: u32) -> Vec<(Slot, Duration)> {
        let held: Vec<(ContactId, ContactState, Channel, Duration)> = self
            .contacts
            .iter()
            .filter(|(_, c)| c.agent == Some(agent))
            .map(|(_, c)| {
                (
                    c.id,
                    c.life.state(),
                    c.channel,
                    self.queues[c.queue as usize].wrap_up,
                )
            })
            .collect();
        let mut keep = Vec::new();
        for (contact, state, channel, wrap_up) in held {
            let phase = match state {
                ContactState::Offered => {
                    // Cannot fail: the contact is offered to exactly this agent.
                    let _ = self.declined(now, contact, agent, DeclineReason::AgentFailed);
                    continue;
                }
                ContactState::Connected => SlotPhase::OnContact,
                ContactState::WrapUp => SlotPhase::WrapUp,
                _ => continue,
            };
            keep.push((
                Slot {
                    contact,
                    channel,
                    phase,
                },
                wrap_up,
            ));
        }
        keep
    }
}

/// What a restarted agent session takes over.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovery {
    /// Contacts in conversation or wrap-up, with their wrap-up times.
    pub slots: Vec<(Slot, Duration)>,
    /// Whether the agent was ready before the failure.
    pub was_ready: bool,
}

// === impl Engine: restoring after a router failure ===

impl Engine {
    /// Puts back an open contact a failed router held (see [`crate::journal`]). An
    /// offer in flight is not restored: the contact waits again in its place (the
    /// agents' shards are restarted too). A contact in conversation or wrap-up stays
    /// with its agent; that agent, slot and wrap-up time are returned for its session.
    /// Call in arrival order, after the agents' availability, then [`Engine::rematch`].
    pub fn restore_contact(
        &mut self,
        now: Timestamp,
        j: &JournaledContact,
    ) -> Result<Option<(u32, Slot, Duration)>, AcdError> {
        // The journal holds this engine's indices (a restarted router has the same
        // configuration); one out of range is a bug, reported rather than panicked on.
        let bad = |what: &str, ix: u32| {
            AcdError::Unavailable(format!(
                "journaled contact {} names {what} #{ix}, which this site does not have",
                j.contact
            ))
        };
        let tenant = j.tenant;
        let qi = j.queue;
        let queue = match self.queues.get(qi as usize) {
            Some(q) if q.tenant == tenant => q.id.clone(),
            _ => return Err(bad("queue", qi)),
        };
        let agent = match j.agent {
            Some(a) => match self.agents.get(a as usize) {
                Some(ag) => Some((a, ag.id.clone())),
                None => return Err(bad("agent", a)),
            },
            None => None,
        };
        let mut life = ContactLife::new();
        let illegal = |e| AcdError::contact(j.contact, e);
        life.apply(&ContactTransition::Enqueue(queue))
            .map_err(illegal)?;
        if j.callback {
            life.apply(&ContactTransition::RequestCallback)
                .map_err(illegal)?;
        }
        let held = match (j.state, agent) {
            (ContactState::Connected | ContactState::WrapUp, Some((a, agent))) => {
                life.apply(&ContactTransition::Offer(agent))
                    .map_err(illegal)?;
                life.apply(&ContactTransition::Accept).map_err(illegal)?;
                if j.state == ContactState::WrapUp {
                    life.apply(&ContactTransition::End).map_err(illegal)?;
                }
                Some(a)
            }
            _ => None,
        };
        if self.contact_ix.contains_key(&j.contact) {
            return Err(AcdError::DuplicateContact(j.contact));
        }
        self.next_seq += 1;
        let rec = ContactRec {
            id: j.contact,
            tenant,
            queue: qi,
            channel: j.channel,
            priority: j.priority,
            seq: self.next_seq,
            life,
            trace: j.trace,
            queued_at: j.queued_at,
            in_queue_since: j.in_queue_since,
            step: 0,
            agent: held,
            attempts: j.attempts,
            connected_at: j.connected_at,
            ended_at: j.ended_at,
            declined: Vec::new(),
            timer: None,
            max_wait_done: false,
            hops: 1,
            in_queue: held.is_none(),
            held: false,
            hung_up: false,
            customer: None,
            transferred_by: Vec::new(),
        };
        let key = self.contacts.insert(rec);
        self.contact_ix.insert(j.contact, key);
        if let Some(a) = held {
            self.agents[a as usize].used[j.channel.index()] += 1;
            let r = &mut self.ranks[a as usize];
            if r.engaged == 0 {
                r.busy_since = now;
            }
            r.engaged += 1;
            self.refresh_available(a);
            let phase = if j.state == ContactState::WrapUp {
                SlotPhase::WrapUp
            } else {
                SlotPhase::OnContact
            };
            let slot = Slot {
                contact: j.contact,
                channel: j.channel,
                phase,
            };
            return Ok(Some((a, slot, self.queues[qi as usize].wrap_up)));
        }
        let q = &mut self.queues[qi as usize];
        q.len += 1;
        let mut step = 0;
        while step + 1 < q.steps.len() && now >= j.in_queue_since + q.steps[step + 1].after {
            step += 1;
        }
        let c = &mut self.contacts[key];
        c.step = step as u8;
        let k = c.key();
        self.queues[qi as usize].waiting[step].insert(k, key);
        self.schedule(key);
        Ok(None)
    }

    /// Offers every waiting contact that can be offered now, oldest first (after a
    /// restore, when nothing was matched while contacts were put back).
    pub fn rematch(&mut self, now: Timestamp) {
        let mut keys: Vec<(u64, usize)> = self
            .contacts
            .iter()
            .filter(|(_, c)| c.life.state().is_waiting())
            .map(|(k, c)| (c.seq, k))
            .collect();
        keys.sort_unstable();
        for (_, k) in keys {
            self.try_contact(now, k);
        }
    }
}

// === impl Engine: events, snapshots, invariants ===

impl Engine {
    fn emit(&mut self, now: Timestamp, key: usize, agent: Option<u32>, kind: ContactEventKind) {
        let c = &self.contacts[key];
        let q = &self.queues[c.queue as usize];
        let queue = if c.life.state() == ContactState::Arrived {
            None
        } else {
            Some(q.id.clone())
        };
        let event = Event {
            id: self.ids.event(now),
            at: now,
            tenant: self.tenants[c.tenant as usize].clone(),
            site: self.site.clone(),
            trace: c.trace,
            body: EventBody::Contact(ContactEvent {
                contact: c.id,
                channel: c.channel,
                queue,
                agent: agent.map(|a| self.agents[a as usize].id.clone()),
                kind,
            }),
        };
        self.events.push(event);
    }

    /// The site as a status page shows it.
    pub fn snapshot(&self, now: Timestamp) -> SiteSnapshot {
        let mut oldest: Vec<Option<Timestamp>> = vec![None; self.queues.len()];
        let mut callbacks = vec![0u32; self.queues.len()];
        let mut offered = vec![0u32; self.queues.len()];
        // Per agent: (reserved, on contact, wrap-up) counts, to derive what people see.
        let mut phases = vec![(0u8, 0u8, 0u8); self.agents.len()];
        let mut held: Vec<Vec<HeldContact>> = vec![Vec::new(); self.agents.len()];
        for (_, c) in &self.contacts {
            let qi = c.queue as usize;
            if let Some(a) = c.agent {
                held[a as usize].push(HeldContact {
                    contact: c.id,
                    tenant: self.tenants[c.tenant as usize].clone(),
                    queue: self.queues[qi].id.clone(),
                    state: c.life.state(),
                });
                let p = &mut phases[a as usize];
                match c.life.state() {
                    ContactState::Offered => p.0 += 1,
                    ContactState::Connected => p.1 += 1,
                    ContactState::WrapUp => p.2 += 1,
                    _ => {}
                }
            }
            match c.life.state() {
                ContactState::Queued | ContactState::CallbackRequested | ContactState::Offered => {
                    let o = &mut oldest[qi];
                    *o = Some(o.map_or(c.queued_at, |t| t.min(c.queued_at)));
                    if c.life.state() == ContactState::CallbackRequested {
                        callbacks[qi] += 1;
                    }
                    if c.life.state() == ContactState::Offered {
                        offered[qi] += 1;
                    }
                }
                _ => {}
            }
        }
        for h in &self.holds {
            phases[h.agent as usize].2 += 1;
            held[h.agent as usize].push(HeldContact {
                contact: h.contact,
                tenant: self.tenants[h.tenant as usize].clone(),
                queue: self.queues[h.queue as usize].id.clone(),
                state: ContactState::WrapUp,
            });
        }
        let queues = self
            .queues
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let widest = &q.steps.last().expect("a queue has step 0").eligible;
                let mut logged = 0;
                widest.for_each_common(&self.logged_in, |_| logged += 1);
                let mut avail = 0;
                widest.for_each_common(&self.available[q.channel.index()], |_| avail += 1);
                QueueSnapshot {
                    tenant: self.tenants[q.tenant as usize].clone(),
                    queue: q.id.clone(),
                    name: q.name.clone(),
                    channel: q.channel,
                    strategy: q.strategy.as_str(),
                    waiting: q.waiting.iter().map(|w| w.len() as u32).sum(),
                    callbacks: callbacks[i],
                    offered: offered[i],
                    oldest_wait_secs: oldest[i].map_or(0.0, |t| now.since(t).as_secs_f64()),
                    agents_logged_in: logged,
                    agents_available: avail,
                    sl_secs: q.sl.as_secs(),
                    sl_target: q.sl_target,
                    counters: q.counters.clone(),
                }
            })
            .collect();
        let agents = self
            .agents
            .iter()
            .zip(&self.ranks)
            .zip(&phases)
            .zip(held)
            .map(
                |(((a, r), &(reserved, on_contact, wrap_up)), contacts)| AgentSnapshot {
                    agent: a.id.clone(),
                    name: a.name.clone(),
                    serves: a.serves.clone(),
                    status: if on_contact > 0 {
                        AgentStatus::OnContact
                    } else if reserved > 0 {
                        AgentStatus::Reserved
                    } else if wrap_up > 0 {
                        AgentStatus::WrapUp
                    } else {
                        a.status.clone()
                    },
                    used: a.used,
                    handled: r.handled,
                    idle_secs: if a.logged_in {
                        now.since(r.idle_since).as_secs_f64()
                    } else {
                        0.0
                    },
                    occupancy: r.occupancy_ppm(now, a.logged_in) as f64 / 1e6,
                    contacts,
                },
            )
            .collect();
        SiteSnapshot {
            site: self.site.clone(),
            at: now,
            queues,
            agents,
            contacts: self.contacts.len(),
        }
    }

    /// Checks the engine's internal consistency; tests call it after every step.
    ///
    /// - every waiting contact is in exactly its queue's waiting set for its step, and
    ///   nothing else is in any waiting set;
    /// - every offered contact names one agent, and each agent's used capacity equals
    ///   the contacts that name it, never above its capacity;
    /// - a queue's length counts its waiting and offered contacts;
    /// - availability bits match the agents' presence and room.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut used = vec![[0u8; 3]; self.agents.len()];
        let mut lens = vec![0u32; self.queues.len()];
        let mut in_sets = 0usize;
        for (key, c) in &self.contacts {
            let state = c.life.state();
            if self.contact_ix.get(&c.id) != Some(&key) {
                return Err(format!("contact {} is not indexed", c.id));
            }
            let in_set = self.queues[c.queue as usize].waiting[c.step as usize].get(&c.key());
            if (state.is_waiting() && !c.held) != (in_set == Some(&key)) {
                return Err(format!(
                    "contact {} in state {state:?} vs waiting set",
                    c.id
                ));
            }
            if state.is_waiting() || state == ContactState::Offered {
                lens[c.queue as usize] += 1;
            }
            match (state, c.agent) {
                (
                    ContactState::Offered | ContactState::Connected | ContactState::WrapUp,
                    Some(a),
                ) => {
                    used[a as usize][c.channel.index()] += 1;
                }
                (ContactState::Offered | ContactState::Connected | ContactState::WrapUp, None) => {
                    return Err(format!("contact {} is {state:?} without an agent", c.id));
                }
                (_, Some(_)) => return Err(format!("contact {} is {state:?} with an agent", c.id)),
                _ => {}
            }
            if state.is_terminal() {
                return Err(format!("terminal contact {} is still held", c.id));
            }
        }
        for h in &self.holds {
            used[h.agent as usize][h.channel.index()] += 1;
            let back = self.contact_ix.get(&h.contact).map(|&k| &self.contacts[k]);
            if back.is_some_and(|c| c.agent == Some(h.agent)) {
                return Err(format!(
                    "contact {} is both held by agent #{} and in a transfer wrap-up",
                    h.contact, h.agent
                ));
            }
        }
        for q in &self.queues {
            in_sets += q.waiting.iter().map(|w| w.len()).sum::<usize>();
        }
        let waiting = self
            .contacts
            .iter()
            .filter(|(_, c)| c.life.state().is_waiting() && !c.held)
            .count();
        if in_sets != waiting {
            return Err(format!(
                "{in_sets} entries in waiting sets, {waiting} waiting contacts"
            ));
        }
        for (i, q) in self.queues.iter().enumerate() {
            if q.len != lens[i] {
                return Err(format!(
                    "queue {} length {} but holds {}",
                    q.id, q.len, lens[i]
                ));
            }
        }
        for (a, ch) in self.remote.held_slots() {
            used[a as usize][ch.index()] += 1;
        }
        for (i, a) in self.agents.iter().enumerate() {
            if a.used != used[i] {
                return Err(format!(
                    "agent {} used {:?} but holds {:?}",
                    a.id, a.used, used[i]
                ));
            }
            for ch in Channel::ALL {
                if a.used[ch.index()] > a.capacity.on(ch) {
                    return Err(format!("agent {} over capacity on {ch}", a.id));
                }
                if self.available[ch.index()].get(i) != a.has_room(ch) {
                    return Err(format!("agent {} availability bit on {ch} is stale", a.id));
                }
            }
        }
        Ok(())
    }
}

/// Alternative clauses, each a list of (skill, minimum level) that must all be met.
type Clauses<'a> = Vec<Vec<(&'a SkillId, u8)>>;

/// Which queues (and from which step) each agent is eligible for.
struct Eligibility<'a> {
    config: &'a SiteConfig,
    /// Per queue, per step: alternative clauses, each a list of (skill, min level).
    clauses: Vec<Vec<Clauses<'a>>>,
    /// Per queue, per step: queues whose step-0 agents are also accepted.
    widen: Vec<Vec<Vec<usize>>>,
}

impl<'a> Eligibility<'a> {
    fn new(config: &'a SiteConfig) -> Self {
        let mut clauses = Vec::new();
        let mut widen = Vec::new();
        for q in &config.queues {
            let base: Vec<(&SkillId, u8)> =
                q.skills.iter().map(|r| (&r.skill, r.min.get())).collect();
            let mut current = vec![base];
            let mut steps = vec![current.clone()];
            let mut widen_steps = vec![vec![]];
            for s in &q.expand {
                if let Some(r) = &s.relax {
                    for clause in &mut current {
                        for (sk, min) in clause.iter_mut() {
                            if *sk == &r.skill {
                                *min = (*min).min(r.min.get());
                            }
                        }
                    }
                }
                if let Some(d) = &s.drop {
                    for clause in &mut current {
                        clause.retain(|(sk, _)| *sk != d);
                    }
                }
                if let Some(add) = &s.add {
                    current.push(vec![(&add.skill, add.min.get())]);
                }
                steps.push(current.clone());
                let w = s
                    .widen_to
                    .as_ref()
                    .and_then(|t| {
                        config
                            .queues
                            .iter()
                            .position(|o| o.tenant == q.tenant && &o.id == t)
                    })
                    .into_iter()
                    .collect();
                widen_steps.push(w);
            }
            clauses.push(steps);
            widen.push(widen_steps);
        }
        Self {
            config,
            clauses,
            widen,
        }
    }

    fn matches(&self, agent: &crate::config::AgentConfig, queue: usize, step: usize) -> bool {
        let q = &self.config.queues[queue];
        let Some(serves) = agent.serves.iter().find(|s| s.tenant == q.tenant) else {
            return false;
        };
        self.clauses[queue][step].iter().any(|clause| {
            clause.iter().all(|(sk, min)| {
                serves
                    .skills
                    .iter()
                    .any(|s| &s.skill == *sk && s.level.get() >= *min)
            })
        })
    }

    /// The first step at which `agent` is eligible for queue `qi`, and its skill score.
    fn of(&self, agent: &crate::config::AgentConfig, qi: usize) -> Option<(u8, u16)> {
        let q = &self.config.queues[qi];
        let serves = agent.serves.iter().find(|s| s.tenant == q.tenant)?;
        let steps = self.clauses[qi].len();
        let first = (0..steps).find(|&k| {
            self.matches(agent, qi, k)
                || self.widen[qi][k]
                    .iter()
                    .any(|&other| self.matches(agent, other, 0))
        })?;
        let score = q
            .skills
            .iter()
            .map(|r| {
                serves
                    .skills
                    .iter()
                    .find(|s| s.skill == r.skill)
                    .map_or(0, |s| u16::from(s.level.get()))
            })
            .sum();
        Some((first as u8, score))
    }
}

mod remote;
pub use remote::{Reservation, ReserveRefusal, TransferContact, TransferRefusal};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod remote_tests;
