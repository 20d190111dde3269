//! One tenant's engine state and how each event changes it.
//!
//! A contact counts in the interval in which it entered its first queue: at the tenant
//! level its first queue anywhere, at a site its first queue there, in a queue (and for
//! the agent who answered) when it entered that queue. Times spent by agents count in
//! the intervals in which they were spent, split at interval boundaries. Each counter a
//! contact adds to a row is decided by that contact's own events, so rows are sums
//! that do not depend on the order in which different contacts' events arrive.
//!
//! First-contact resolution links contacts of one customer: each answered contact of
//! a known customer opens a *case*, pending until the tenant's watermark passes its
//! window, then decided (resolved unless the customer arrived again within the window)
//! — and revised if a repeat arrives later.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use hotline_core::agent::AgentStatus;
use hotline_core::contact::OverflowTarget;
use hotline_core::event::{AgentEvent, ContactEvent, ContactEventKind, Event, EventBody};
use hotline_core::ids::{ContactId, EventId};
use serde::{Deserialize, Serialize};

use super::rows::Rows;
use super::{DAY_MS, EngineConfig, interval_start};
use crate::model::{
    AgentNow, AgentsByState, Counters, Dimension, IntervalLength, QueueNow, RealtimeSnapshot,
};
use hotline_core::sharded::ShardedMap;

/// One tenant's state.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct TenantState {
    /// The newest event time applied, ms: the tenant's clock for decisions and pruning.
    pub(super) watermark_ms: u64,
    /// Interval rows in memory, and which changed since the last `take_dirty`.
    pub(super) rows: Rows,
    /// Rows starting before this were pruned; contributions to them are dropped.
    closed_before_ms: u64,
    /// Recent event ids and their times, to drop duplicates (sharded: it grows with
    /// traffic, and one big map's growth stalled the feed).
    seen: ShardedMap<EventId, u64>,
    /// The same ids by time (ms), to forget the oldest; rebuilt from `seen` on restore.
    #[serde(skip)]
    seen_by_time: BTreeMap<u64, Vec<EventId>>,
    /// Contacts, open or recently ended (sharded, as `seen`).
    contacts: ShardedMap<ContactId, ContactRec>,
    /// Logged-in agents.
    agents: BTreeMap<String, AgentRec>,
    /// Per customer: arrivals and answered contacts (FCR cases).
    customers: BTreeMap<String, CustomerRec>,
    /// FCR cases by contact.
    cases: BTreeMap<ContactId, FcrCase>,
    /// Pending cases by deadline.
    pending: BTreeSet<(u64, ContactId)>,
    /// Queues that have seen a contact, by site, then queue.
    queues: BTreeMap<String, BTreeMap<String, QueueRec>>,
    /// The watermark's minute at the last prune of contacts, ids and cases.
    pruned_minute: u64,
    /// What the prune looks at, by time, so that it visits only what may have expired
    /// instead of scanning every contact, case and customer (with an hour's horizon at
    /// 100k events/s, a full scan once a minute stalled the feed for tens of ms, more
    /// as the maps grew). Rebuilt on restore; see [`Expiry`].
    #[serde(skip)]
    expiry: Expiry,
    /// Contributions dropped in this event (reset per event).
    #[serde(skip)]
    late: u64,
}

/// A contact, across the sites it has visited.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct ContactRec {
    /// Who the customer is, if the channel knew.
    customer: Option<String>,
    /// Its first arrival, ms.
    arrived_ms: Option<u64>,
    /// When it entered its first queue anywhere (its tenant-level interval).
    tenant_start_ms: Option<u64>,
    /// Counted as answered at the tenant level.
    answered: bool,
    /// Counted as abandoned or as another exit at the tenant level.
    exited: bool,
    /// Counted as overflowed at the tenant level.
    overflowed: bool,
    /// Counted as transferred at the tenant level.
    transferred: bool,
    /// The customer asked for a callback: later answers are call-backs, not answers.
    callback: bool,
    /// Its life at each site.
    sites: BTreeMap<String, SiteLife>,
    /// Its newest event, ms.
    last_ms: u64,
    /// In [`Expiry::contacts`] (once per contact; rebuilt on restore).
    #[serde(skip)]
    indexed: bool,
}

/// Candidates for pruning, by the time from which they may expire. An entry is only a
/// hint: the prune checks the item's own state with the same predicate a full scan would,
/// and puts back (under a later time) what may expire later, so it removes exactly what
/// a full scan removes.
#[derive(Debug, Default)]
struct Expiry {
    /// Contacts by their `last_ms` when indexed (it only grows).
    contacts: BTreeMap<u64, Vec<ContactId>>,
    /// FCR cases (their arrival, their contact) by arrival, or by the prune that looks
    /// at a pending one again.
    cases: BTreeMap<u64, Vec<(u64, ContactId)>>,
    /// Customers by the time of an arrival of theirs.
    arrivals: BTreeMap<u64, Vec<String>>,
}

#[cfg(test)]
thread_local! {
    /// Makes this thread's prunes scan everything, as the reference for tests.
    pub(super) static FULL_SCAN_PRUNE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Takes every entry of `index` keyed before `before`.
fn expired<T>(index: &mut BTreeMap<u64, Vec<T>>, before: u64) -> Vec<(u64, T)> {
    let kept = index.split_off(&before);
    let gone = std::mem::replace(index, kept);
    gone.into_iter()
        .flat_map(|(at, items)| items.into_iter().map(move |item| (at, item)))
        .collect()
}

/// A contact's life at one site.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct SiteLife {
    /// When it entered its first queue here (its site-level interval and wait origin).
    start_ms: Option<u64>,
    /// Counted as answered at this site.
    answered: bool,
    /// Counted as abandoned or another exit at this site.
    exited: bool,
    /// Counted as overflowed at this site.
    overflowed: bool,
    /// Counted as transferred at this site.
    transferred: bool,
    /// Its queue legs here, in order.
    legs: Vec<Leg>,
    /// Which leg each agent answered it in.
    answered_in: BTreeMap<String, usize>,
    /// Where it is now.
    phase: Phase,
}

/// A stay in one queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Leg {
    /// The queue.
    queue: String,
    /// When it entered it (the queue-level interval).
    start_ms: u64,
    /// Counted as answered in it.
    answered: bool,
    /// Counted as abandoned or another exit in it.
    exited: bool,
    /// Still in it (not moved on by overflow or transfer).
    open: bool,
}

/// Where a contact is now, at one site.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
    /// Arrived or in the IVR.
    #[default]
    Arrived,
    /// Waiting in a queue.
    Waiting,
    /// Being offered to an agent.
    Ringing,
    /// Waiting for a callback (the customer is not on the line).
    Callback,
    /// Talking to an agent.
    Connected,
    /// The agent wraps up.
    WrapUp,
    /// Moving between queues (overflowed or transferred, not queued yet).
    Moving,
    /// Its life here is over.
    Ended,
}

/// An agent's state in this tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AgentRec {
    /// As people see it.
    status: AgentStatus,
    /// Since when, ms.
    since_ms: u64,
    /// Where logged in.
    site: String,
}

/// A customer's contacts, for FCR.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct CustomerRec {
    /// Every recent arrival: (time, contact).
    arrivals: BTreeSet<(u64, ContactId)>,
    /// Open or recently decided cases: (arrival, contact).
    cases: BTreeSet<(u64, ContactId)>,
}

/// An answered contact of a known customer.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FcrCase {
    /// The customer.
    customer: String,
    /// The contact's arrival, ms: the window starts here.
    arrived_ms: u64,
    /// The rows it counts in (dimension, time in the row's interval).
    rows: Vec<(Dimension, u64)>,
    /// Where it stands.
    state: CaseState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum CaseState {
    Pending,
    Resolved,
    Repeated,
}

/// Per queue: who served its contacts, for the real-time view.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct QueueRec {
    /// Agent → start of the last day (UTC, ms) they answered one of its contacts.
    served: BTreeMap<String, u64>,
}

/// Where an event counts: the dimension and the time that picks the interval.
type Target = (Dimension, u64);

impl TenantState {
    /// Applies `event`; `None` for a duplicate, else how many contributions were
    /// dropped as late.
    pub(super) fn apply(&mut self, cfg: &EngineConfig, event: &Event) -> Option<u64> {
        let at = event.at.millis();
        match self.seen.entry(event.id) {
            Entry::Occupied(_) => return None,
            Entry::Vacant(v) => {
                v.insert(at);
            }
        }
        self.seen_by_time.entry(at).or_default().push(event.id);
        self.watermark_ms = self.watermark_ms.max(at);
        self.late = 0;
        let site = event.site.as_str();
        match &event.body {
            EventBody::Contact(c) => self.on_contact(cfg, event.tenant.as_str(), site, at, c),
            EventBody::Agent(a) => self.on_agent(site, at, a),
        }
        self.decide_due(cfg);
        let minute = self.watermark_ms / 60_000;
        if minute != self.pruned_minute {
            self.pruned_minute = minute;
            self.prune(cfg);
        }
        Some(self.late)
    }

    // === counting ===

    /// Adds `f` to the rows of every length at each target.
    fn add(&mut self, targets: &[Target], f: impl Fn(&mut Counters)) {
        for (dim, t) in targets {
            for len in IntervalLength::ALL {
                let start = interval_start(len, *t);
                if start < self.closed_before_ms {
                    self.late += 1;
                    continue;
                }
                f(self.row(dim, len, start));
            }
        }
    }

    /// The row `(dim, len, start)`, created if missing, marked dirty.
    fn row(&mut self, dim: &Dimension, len: IntervalLength, start: u64) -> &mut Counters {
        self.rows.touch(dim, len, start)
    }

    /// Adds `ms` of time spent from `from_ms` to the rows at `dims`, split at every
    /// interval boundary.
    fn add_time(
        &mut self,
        dims: &[Dimension],
        from_ms: u64,
        to_ms: u64,
        f: fn(&mut Counters, u64),
    ) {
        for len in IntervalLength::ALL {
            let mut t = from_ms;
            while t < to_ms {
                let start = interval_start(len, t);
                let end = (start + len.millis()).min(to_ms);
                if start < self.closed_before_ms {
                    self.late += 1;
                } else {
                    for dim in dims {
                        f(self.row(dim, len, start), end - t);
                    }
                }
                t = end;
            }
        }
    }

    // === contacts ===

    fn on_contact(
        &mut self,
        cfg: &EngineConfig,
        tenant: &str,
        site: &str,
        at: u64,
        ev: &ContactEvent,
    ) {
        let mut rec = self.contacts.remove(&ev.contact).unwrap_or_default();
        rec.last_ms = rec.last_ms.max(at);
        // Taken out and put back in place (`put_back`), so the site's key is not rebuilt.
        let mut life = rec
            .sites
            .get_mut(site)
            .map(std::mem::take)
            .unwrap_or_default();
        let agent = ev.agent.as_ref().map(|a| a.as_str());
        let site_dim = || Dimension::Site(site.to_owned());
        match &ev.kind {
            ContactEventKind::Arrived { customer } => {
                if rec.arrived_ms.is_none() {
                    rec.arrived_ms = Some(at);
                    rec.customer = customer.as_deref().map(str::to_owned);
                    if let Some(c) = rec.customer.clone() {
                        self.note_arrival(cfg, &c, at, ev.contact);
                    }
                }
            }
            ContactEventKind::IvrEntered
            | ContactEventKind::IvrNode { .. }
            | ContactEventKind::Expanded { .. }
            | ContactEventKind::OverflowAttempt { .. }
            | ContactEventKind::Dispositioned { .. }
            | ContactEventKind::CallbackOffered => {}
            ContactEventKind::Queued { .. } => {
                let Some(queue) = ev.queue.as_ref().map(|q| q.as_str()) else {
                    self.put_back(ev.contact, rec, site, life);
                    return;
                };
                let same = life.legs.last().is_some_and(|l| l.open && l.queue == queue);
                if !same {
                    life.legs.push(Leg {
                        queue: queue.to_owned(),
                        start_ms: at,
                        answered: false,
                        exited: false,
                        open: true,
                    });
                    self.add(&[(Dimension::Queue(queue.to_owned()), at)], |c| {
                        c.offered += 1
                    });
                    if life.start_ms.is_none() {
                        life.start_ms = Some(at);
                        self.add(&[(site_dim(), at)], |c| c.offered += 1);
                    }
                    if rec.tenant_start_ms.is_none() {
                        rec.tenant_start_ms = Some(at);
                        self.add(&[(Dimension::Tenant, at)], |c| c.offered += 1);
                    }
                }
                self.queue_rec(site, queue);
                if life.phase != Phase::Callback {
                    life.phase = Phase::Waiting;
                }
            }
            ContactEventKind::Offered { .. } => {
                if life.phase == Phase::Waiting {
                    life.phase = Phase::Ringing;
                }
            }
            ContactEventKind::OfferDeclined { .. } => {
                if life.phase == Phase::Ringing {
                    life.phase = Phase::Waiting;
                }
            }
            ContactEventKind::Connected { wait_ms } => {
                life.phase = Phase::Connected;
                let Some(ix) = life.legs.len().checked_sub(1) else {
                    self.put_back(ev.contact, rec, site, life);
                    return;
                };
                if let Some(a) = agent {
                    life.answered_in.insert(a.to_owned(), ix);
                    let day = at / DAY_MS * DAY_MS;
                    let served = &mut self.queue_rec(site, &life.legs[ix].queue).served;
                    match served.get_mut(a) {
                        Some(d) => *d = day,
                        None => {
                            served.insert(a.to_owned(), day);
                        }
                    }
                }
                if !rec.callback {
                    let leg = &mut life.legs[ix];
                    let sl_ms = cfg.service_level_ms(tenant, &leg.queue);
                    let wait = *wait_ms;
                    let within = u64::from(wait <= sl_ms);
                    let answer = move |c: &mut Counters| {
                        c.answered += 1;
                        c.answer_wait_ms += wait;
                        c.answered_within_sl += within;
                    };
                    let mut fcr_rows = Vec::new();
                    if !leg.answered {
                        leg.answered = true;
                        let mut t = vec![(Dimension::Queue(leg.queue.clone()), leg.start_ms)];
                        if let Some(a) = agent {
                            t.push((Dimension::Agent(a.to_owned()), leg.start_ms));
                        }
                        fcr_rows.extend(t.iter().cloned());
                        self.add(&t, answer);
                    }
                    let site_start = life.start_ms.unwrap_or(at);
                    if !life.answered {
                        life.answered = true;
                        fcr_rows.push((site_dim(), site_start));
                        self.add(&[(site_dim(), site_start)], answer);
                    }
                    if !rec.answered {
                        rec.answered = true;
                        let t_start = rec.tenant_start_ms.unwrap_or(site_start);
                        let wait = wait + site_start.saturating_sub(t_start);
                        let within = u64::from(wait <= sl_ms);
                        fcr_rows.push((Dimension::Tenant, t_start));
                        self.add(&[(Dimension::Tenant, t_start)], move |c| {
                            c.answered += 1;
                            c.answer_wait_ms += wait;
                            c.answered_within_sl += within;
                        });
                        if let (Some(customer), Some(arrived)) =
                            (rec.customer.clone(), rec.arrived_ms)
                        {
                            self.open_case(cfg, ev.contact, customer, arrived, fcr_rows);
                        }
                    }
                }
            }
            ContactEventKind::WrapUpStarted { .. } => {
                if life.phase == Phase::Connected {
                    life.phase = Phase::WrapUp;
                }
            }
            ContactEventKind::Done {
                talk_ms,
                hold_ms,
                wrap_ms,
            } => {
                life.phase = Phase::Ended;
                let ix = agent
                    .and_then(|a| life.answered_in.get(a).copied())
                    .or(life.legs.len().checked_sub(1));
                let site_start = life.start_ms.unwrap_or(at);
                let mut t = vec![
                    (Dimension::Tenant, rec.tenant_start_ms.unwrap_or(site_start)),
                    (site_dim(), site_start),
                ];
                let leg_start = ix.map_or(at, |i| life.legs[i].start_ms);
                if let Some(i) = ix {
                    t.push((Dimension::Queue(life.legs[i].queue.clone()), leg_start));
                }
                if let Some(a) = agent {
                    t.push((Dimension::Agent(a.to_owned()), leg_start));
                }
                let (hold, talk, wrap) = (*hold_ms, talk_ms.saturating_sub(*hold_ms), *wrap_ms);
                self.add(&t, move |c| {
                    c.handled += 1;
                    c.talk_ms += talk;
                    c.hold_ms += hold;
                    c.wrap_ms += wrap;
                });
            }
            ContactEventKind::Abandoned { wait_ms, .. } => {
                life.phase = Phase::Ended;
                if !rec.callback {
                    let wait = *wait_ms;
                    let short = u64::from(wait < u64::from(cfg.short_abandon_secs) * 1000);
                    self.exit(
                        cfg,
                        tenant,
                        site,
                        &mut rec,
                        &mut life,
                        move |c, wait, sl_ms| {
                            c.abandoned += 1;
                            c.abandon_wait_ms += wait;
                            c.short_abandoned += short;
                            c.abandoned_within_sl += u64::from(wait <= sl_ms);
                        },
                        wait,
                    );
                }
            }
            ContactEventKind::CallbackRequested => {
                if !rec.callback {
                    self.exit(
                        cfg,
                        tenant,
                        site,
                        &mut rec,
                        &mut life,
                        |c, _, _| c.other_exits += 1,
                        0,
                    );
                    rec.callback = true;
                }
                life.phase = Phase::Callback;
            }
            ContactEventKind::Voicemail { .. } | ContactEventKind::Failed { .. } => {
                life.phase = Phase::Ended;
                if !rec.callback {
                    self.exit(
                        cfg,
                        tenant,
                        site,
                        &mut rec,
                        &mut life,
                        |c, _, _| c.other_exits += 1,
                        0,
                    );
                }
            }
            ContactEventKind::Overflowed { to, .. } | ContactEventKind::Transferred { to } => {
                let transfer = matches!(ev.kind, ContactEventKind::Transferred { .. });
                let f: fn(&mut Counters) = if transfer {
                    |c| c.transferred += 1
                } else {
                    |c| c.overflowed += 1
                };
                let mut t = Vec::new();
                if let Some(leg) = life.legs.last_mut().filter(|l| l.open) {
                    leg.open = false;
                    t.push((Dimension::Queue(leg.queue.clone()), leg.start_ms));
                    if let (true, Some(a)) = (transfer, agent) {
                        let ix = life
                            .answered_in
                            .get(a)
                            .copied()
                            .unwrap_or(life.legs.len() - 1);
                        t.push((Dimension::Agent(a.to_owned()), life.legs[ix].start_ms));
                    }
                }
                let site_start = life.start_ms.unwrap_or(at);
                let (site_flag, tenant_flag) = if transfer {
                    (&mut life.transferred, &mut rec.transferred)
                } else {
                    (&mut life.overflowed, &mut rec.overflowed)
                };
                if !*site_flag {
                    *site_flag = true;
                    t.push((site_dim(), site_start));
                }
                if !*tenant_flag {
                    *tenant_flag = true;
                    t.push((Dimension::Tenant, rec.tenant_start_ms.unwrap_or(site_start)));
                }
                self.add(&t, f);
                life.phase = match to {
                    OverflowTarget::Queue(_) => Phase::Moving,
                    OverflowTarget::Site(_) => Phase::Ended,
                };
            }
        }
        self.put_back(ev.contact, rec, site, life);
    }

    fn put_back(&mut self, id: ContactId, mut rec: ContactRec, site: &str, life: SiteLife) {
        match rec.sites.get_mut(site) {
            Some(slot) => *slot = life,
            None => {
                rec.sites.insert(site.to_owned(), life);
            }
        }
        if !rec.indexed {
            rec.indexed = true;
            self.expiry
                .contacts
                .entry(rec.last_ms)
                .or_default()
                .push(id);
        }
        self.contacts.insert(id, rec);
    }

    /// The queue's record, created if missing.
    fn queue_rec(&mut self, site: &str, queue: &str) -> &mut QueueRec {
        if !self.queues.contains_key(site) {
            self.queues.insert(site.to_owned(), BTreeMap::new());
        }
        let by_queue = self.queues.get_mut(site).expect("inserted above");
        if !by_queue.contains_key(queue) {
            by_queue.insert(queue.to_owned(), QueueRec::default());
        }
        by_queue.get_mut(queue).expect("inserted above")
    }

    /// Counts an exit (abandon, callback request, voicemail, failure) once per level,
    /// where the contact was neither answered nor already exited at that level.
    #[allow(clippy::too_many_arguments)]
    fn exit(
        &mut self,
        cfg: &EngineConfig,
        tenant: &str,
        site: &str,
        rec: &mut ContactRec,
        life: &mut SiteLife,
        f: impl Fn(&mut Counters, u64, u64),
        wait_ms: u64,
    ) {
        let Some(leg) = life.legs.last_mut() else {
            return; // never queued: not offered, so not an exit of any queue
        };
        let sl_ms = cfg.service_level_ms(tenant, &leg.queue);
        if !leg.answered && !leg.exited {
            leg.exited = true;
            let t = [(Dimension::Queue(leg.queue.clone()), leg.start_ms)];
            self.add(&t, |c| f(c, wait_ms, sl_ms));
        }
        let site_start = life.start_ms.unwrap_or(rec.last_ms);
        if !life.answered && !life.exited {
            life.exited = true;
            self.add(&[(Dimension::Site(site.to_owned()), site_start)], |c| {
                f(c, wait_ms, sl_ms)
            });
        }
        if !rec.answered && !rec.exited {
            rec.exited = true;
            let t_start = rec.tenant_start_ms.unwrap_or(site_start);
            let wait = wait_ms + site_start.saturating_sub(t_start);
            self.add(&[(Dimension::Tenant, t_start)], |c| f(c, wait, sl_ms));
        }
    }

    // === first-contact resolution ===

    fn note_arrival(&mut self, cfg: &EngineConfig, customer: &str, at: u64, contact: ContactId) {
        let window = cfg.fcr_window_secs * 1000;
        let cust = self.customers.entry(customer.to_owned()).or_default();
        cust.arrivals.insert((at, contact));
        self.expiry
            .arrivals
            .entry(at)
            .or_default()
            .push(customer.to_owned());
        // Cases this arrival repeats: arrived within the window before it.
        let lo = (at.saturating_sub(window), ContactId::from_u128(0));
        let revise: Vec<ContactId> = cust
            .cases
            .range((Bound::Included(lo), Bound::Excluded((at, contact))))
            .map(|&(_, c)| c)
            .collect();
        for c in revise {
            let Some(case) = self.cases.get_mut(&c) else {
                continue;
            };
            if case.state == CaseState::Resolved {
                case.state = CaseState::Repeated;
                let rows = case.rows.clone();
                self.add(&rows, |c| c.fcr_resolved = c.fcr_resolved.saturating_sub(1));
            }
        }
    }

    fn open_case(
        &mut self,
        cfg: &EngineConfig,
        contact: ContactId,
        customer: String,
        arrived_ms: u64,
        rows: Vec<Target>,
    ) {
        self.add(&rows, |c| c.fcr_pending += 1);
        self.customers
            .entry(customer.clone())
            .or_default()
            .cases
            .insert((arrived_ms, contact));
        self.cases.insert(
            contact,
            FcrCase {
                customer,
                arrived_ms,
                rows,
                state: CaseState::Pending,
            },
        );
        self.expiry
            .cases
            .entry(arrived_ms)
            .or_default()
            .push((arrived_ms, contact));
        self.pending
            .insert((arrived_ms + cfg.fcr_window_secs * 1000, contact));
    }

    /// Decides every pending case whose window the watermark has passed.
    fn decide_due(&mut self, cfg: &EngineConfig) {
        let window = cfg.fcr_window_secs * 1000;
        while let Some(&(deadline, contact)) = self.pending.first() {
            if deadline > self.watermark_ms {
                break;
            }
            self.pending.pop_first();
            let Some(case) = self.cases.get_mut(&contact) else {
                continue;
            };
            let repeated = self.customers.get(&case.customer).is_some_and(|cust| {
                cust.arrivals
                    .range((
                        Bound::Excluded((case.arrived_ms, contact)),
                        Bound::Included((
                            case.arrived_ms + window,
                            ContactId::from_u128(u128::MAX),
                        )),
                    ))
                    .next()
                    .is_some()
            });
            case.state = if repeated {
                CaseState::Repeated
            } else {
                CaseState::Resolved
            };
            let resolved = u64::from(!repeated);
            let rows = case.rows.clone();
            self.add(&rows, move |c| {
                c.fcr_pending = c.fcr_pending.saturating_sub(1);
                c.fcr_eligible += 1;
                c.fcr_resolved += resolved;
            });
        }
    }

    // === agents ===

    fn on_agent(&mut self, site: &str, at: u64, ev: &AgentEvent) {
        let id = ev.agent.as_str();
        // Time spent until now in the previous state (looked up in place: no key built).
        let spent = self.agents.get(id).filter(|p| at > p.since_ms).map(|p| {
            (
                p.status.clone(),
                p.since_ms,
                Dimension::Site(p.site.clone()),
            )
        });
        if let Some((status, since_ms, site_dim)) = spent {
            let dims = [Dimension::Agent(id.to_owned()), Dimension::Tenant, site_dim];
            self.account(&dims, &status, since_ms, at);
        }
        if ev.status == AgentStatus::LoggedOut {
            self.agents.remove(id);
            return;
        }
        match self.agents.get_mut(id) {
            Some(rec) => {
                // A clock step backwards never makes time negative.
                rec.since_ms = at.max(rec.since_ms);
                rec.status = ev.status.clone();
                if rec.site != site {
                    site.clone_into(&mut rec.site);
                }
            }
            None => {
                self.agents.insert(
                    id.to_owned(),
                    AgentRec {
                        status: ev.status.clone(),
                        since_ms: at,
                        site: site.to_owned(),
                    },
                );
            }
        }
    }

    fn account(&mut self, dims: &[Dimension], status: &AgentStatus, from: u64, to: u64) {
        if *status == AgentStatus::LoggedOut {
            return;
        }
        self.add_time(dims, from, to, |c, ms| c.staffed_ms += ms);
        match status {
            AgentStatus::OnContact | AgentStatus::WrapUp => {
                self.add_time(dims, from, to, |c, ms| c.busy_ms += ms)
            }
            AgentStatus::Reserved => self.add_time(dims, from, to, |c, ms| c.reserved_ms += ms),
            AgentStatus::NotReady(_) => self.add_time(dims, from, to, |c, ms| c.not_ready_ms += ms),
            AgentStatus::Ready | AgentStatus::LoggedOut => {}
        }
    }

    // === pruning ===

    /// Forgets the ids of events before `old` (ms): too old to come again as duplicates.
    fn forget_ids_before(&mut self, old: u64) {
        while let Some(entry) = self.seen_by_time.first_entry() {
            if *entry.key() >= old {
                break;
            }
            for id in entry.remove() {
                self.seen.remove(&id);
            }
        }
    }

    /// Forgets what can no longer matter: event ids, decided cases and arrivals beyond
    /// the horizon, and ended contacts.
    fn prune(&mut self, cfg: &EngineConfig) {
        #[cfg(test)]
        if FULL_SCAN_PRUNE.with(std::cell::Cell::get) {
            return self.prune_by_full_scan(cfg);
        }
        let horizon = cfg.dedupe_horizon_secs * 1000;
        let window = cfg.fcr_window_secs * 1000;
        let wm = self.watermark_ms;
        self.forget_ids_before(wm.saturating_sub(horizon));
        // Cases decided and past the window and horizon. A pending one is looked at
        // again at the next prune; an entry of a case replaced since is dropped.
        let cases_before = wm.saturating_sub(window + horizon);
        let mut touched: BTreeSet<String> = BTreeSet::new();
        let mut again = Vec::new();
        for (_, (arrived_ms, id)) in expired(&mut self.expiry.cases, cases_before) {
            let Some(case) = self.cases.get(&id) else {
                continue;
            };
            if case.state != CaseState::Pending && case.arrived_ms + window + horizon < wm {
                if let Some(case) = self.cases.remove(&id) {
                    if let Some(cust) = self.customers.get_mut(&case.customer) {
                        cust.cases.remove(&(case.arrived_ms, id));
                    }
                    touched.insert(case.customer);
                }
            } else if case.arrived_ms == arrived_ms {
                again.push((arrived_ms, id));
            }
        }
        if !again.is_empty() {
            self.expiry
                .cases
                .entry(cases_before)
                .or_default()
                .extend(again);
        }
        // Customers: arrivals past the window and horizon forgotten, and a customer with
        // neither arrivals nor cases left forgotten too.
        let arrivals_before = wm.saturating_sub(window + horizon);
        for (_, customer) in expired(&mut self.expiry.arrivals, arrivals_before) {
            touched.insert(customer);
        }
        for customer in touched {
            let Some(cust) = self.customers.get_mut(&customer) else {
                continue;
            };
            while let Some(&(t, _)) = cust.arrivals.first() {
                if t >= arrivals_before {
                    break;
                }
                cust.arrivals.pop_first();
            }
            if cust.arrivals.is_empty() && cust.cases.is_empty() {
                self.customers.remove(&customer);
            }
        }
        let stale_open = if cfg.keep_days == 0 {
            0
        } else {
            wm.saturating_sub(u64::from(cfg.keep_days) * DAY_MS)
        };
        // Contacts ended and quiet for the horizon, or quiet for `keep_days` in any
        // state. One that has had events since it was indexed goes back under its
        // newest time; one still open is looked at again at the next prune.
        let contacts_before = wm.saturating_sub(horizon).max(stale_open);
        let mut again = Vec::new();
        for (_, id) in expired(&mut self.expiry.contacts, contacts_before) {
            let Some(c) = self.contacts.get(&id) else {
                continue;
            };
            let ended = c.sites.values().all(|l| l.phase == Phase::Ended);
            if ended && c.last_ms + horizon < wm || c.last_ms < stale_open {
                self.contacts.remove(&id);
            } else if c.last_ms >= contacts_before {
                self.expiry.contacts.entry(c.last_ms).or_default().push(id);
            } else {
                again.push(id);
            }
        }
        if !again.is_empty() {
            self.expiry
                .contacts
                .entry(contacts_before)
                .or_default()
                .extend(again);
        }
        let yesterday = (wm / DAY_MS * DAY_MS).saturating_sub(DAY_MS);
        for q in self.queues.values_mut().flat_map(BTreeMap::values_mut) {
            q.served.retain(|_, day| *day >= yesterday);
        }
    }

    /// The prune as it was before [`Expiry`]: every contact, case and customer looked at.
    /// The reference the indexed prune is tested against.
    #[cfg(test)]
    fn prune_by_full_scan(&mut self, cfg: &EngineConfig) {
        let horizon = cfg.dedupe_horizon_secs * 1000;
        let window = cfg.fcr_window_secs * 1000;
        let wm = self.watermark_ms;
        self.forget_ids_before(wm.saturating_sub(horizon));
        let stale_cases: Vec<ContactId> = self
            .cases
            .iter()
            .filter(|(_, c)| c.state != CaseState::Pending && c.arrived_ms + window + horizon < wm)
            .map(|(id, _)| *id)
            .collect();
        for id in stale_cases {
            if let Some(case) = self.cases.remove(&id)
                && let Some(cust) = self.customers.get_mut(&case.customer)
            {
                cust.cases.remove(&(case.arrived_ms, id));
            }
        }
        let arrivals_before = wm.saturating_sub(window + horizon);
        self.customers.retain(|_, cust| {
            while let Some(&(t, _)) = cust.arrivals.first() {
                if t >= arrivals_before {
                    break;
                }
                cust.arrivals.pop_first();
            }
            !cust.arrivals.is_empty() || !cust.cases.is_empty()
        });
        let stale_open = if cfg.keep_days == 0 {
            0
        } else {
            wm.saturating_sub(u64::from(cfg.keep_days) * DAY_MS)
        };
        self.contacts.retain(|_, c| {
            let ended = c.sites.values().all(|l| l.phase == Phase::Ended);
            !(ended && c.last_ms + horizon < wm || c.last_ms < stale_open)
        });
        let yesterday = (wm / DAY_MS * DAY_MS).saturating_sub(DAY_MS);
        for q in self.queues.values_mut().flat_map(BTreeMap::values_mut) {
            q.served.retain(|_, day| *day >= yesterday);
        }
    }

    /// Drops rows starting before `cutoff` (all taken already) and refuses later
    /// contributions to them.
    pub(super) fn prune_rows(&mut self, cutoff: u64) {
        if cutoff <= self.closed_before_ms {
            return;
        }
        self.closed_before_ms = cutoff;
        self.rows.retain_from(cutoff);
    }

    /// Rebuilds what a checkpoint leaves out because it follows from the rest.
    pub(super) fn restored(&mut self) {
        self.seen_by_time.clear();
        for (&id, &at) in self.seen.iter() {
            self.seen_by_time.entry(at).or_default().push(id);
        }
        self.expiry = Expiry::default();
        for (&id, c) in self.contacts.iter_mut() {
            c.indexed = true;
            self.expiry.contacts.entry(c.last_ms).or_default().push(id);
        }
        for (&id, case) in &self.cases {
            self.expiry
                .cases
                .entry(case.arrived_ms)
                .or_default()
                .push((case.arrived_ms, id));
        }
        for (customer, cust) in &self.customers {
            for &(at, _) in &cust.arrivals {
                self.expiry
                    .arrivals
                    .entry(at)
                    .or_default()
                    .push(customer.clone());
            }
        }
    }

    // === real time ===

    pub(super) fn realtime(
        &self,
        cfg: &EngineConfig,
        tenant: &str,
        now_ms: u64,
    ) -> RealtimeSnapshot {
        let today = now_ms / DAY_MS * DAY_MS;
        let ctx = super::FigureContext::for_tenant(cfg, tenant);
        let mut waiting: BTreeMap<(&str, &str), (u32, u32, u64)> = BTreeMap::new();
        for rec in self.contacts.values() {
            for (site, life) in &rec.sites {
                let ringing = match life.phase {
                    Phase::Waiting => false,
                    Phase::Ringing => true,
                    _ => continue,
                };
                let Some(leg) = life.legs.last() else {
                    continue;
                };
                let e = waiting.entry((site, &leg.queue)).or_insert((0, 0, 0));
                if ringing {
                    e.1 += 1;
                } else {
                    e.0 += 1;
                }
                let since = life.start_ms.unwrap_or(leg.start_ms);
                e.2 = e.2.max(now_ms.saturating_sub(since));
            }
        }
        let queues = self
            .queues
            .iter()
            .flat_map(|(site, by_queue)| by_queue.iter().map(move |(queue, q)| (site, queue, q)))
            .map(|(site, queue, q)| {
                let (w, r, oldest) = waiting
                    .get(&(site.as_str(), queue.as_str()))
                    .copied()
                    .unwrap_or_default();
                let served = q
                    .served
                    .iter()
                    .filter(|(_, day)| **day == today)
                    .filter_map(|(a, _)| self.agents.get(a));
                let dim = Dimension::Queue(queue.clone());
                let today_figures = self
                    .rows
                    .get(&dim, IntervalLength::Day, today)
                    .map(|c| super::figures(c, &ctx.with_dimension(&dim)))
                    .unwrap_or_else(|| {
                        super::figures(&Counters::default(), &ctx.with_dimension(&dim))
                    });
                QueueNow {
                    site: site.clone(),
                    queue: queue.clone(),
                    waiting: w,
                    ringing: r,
                    oldest_wait_ms: oldest,
                    agents: by_state(served),
                    today: today_figures,
                }
            })
            .collect();
        let agent_list = self
            .agents
            .iter()
            .map(|(id, a)| AgentNow {
                agent: id.clone(),
                site: a.site.clone(),
                state: a.status.name().to_owned(),
                reason: match &a.status {
                    AgentStatus::NotReady(r) => Some(r.clone()),
                    _ => None,
                },
                since_ms: a.since_ms,
            })
            .collect();
        RealtimeSnapshot {
            tenant: tenant.to_owned(),
            at_ms: now_ms,
            queues,
            agents: by_state(self.agents.values()),
            agent_list,
        }
    }
}

fn by_state<'a>(agents: impl Iterator<Item = &'a AgentRec>) -> AgentsByState {
    let mut out = AgentsByState::default();
    let mut reasons: BTreeMap<String, u32> = BTreeMap::new();
    for a in agents {
        match &a.status {
            AgentStatus::Ready => out.ready += 1,
            AgentStatus::Reserved => out.reserved += 1,
            AgentStatus::OnContact => out.on_contact += 1,
            AgentStatus::WrapUp => out.wrap_up += 1,
            AgentStatus::NotReady(r) => *reasons.entry(r.clone()).or_default() += 1,
            AgentStatus::LoggedOut => {}
        }
    }
    out.not_ready = reasons.into_iter().collect();
    out
}
