//! Engine tests: every figure against hand-computed values, duplicates, interval
//! boundaries, tenant isolation, FCR revisions, checkpoints, and a property test that
//! any interleaving preserving per-key order gives the same final state.

use std::collections::BTreeMap;
use std::sync::Arc;

use hotline_core::agent::AgentStatus;
use hotline_core::channel::Channel;
use hotline_core::contact::{DeclineReason, FailReason, OverflowTarget};
use hotline_core::event::{
    AgentEvent, AgentEventKind, ContactEvent, ContactEventKind, Event, EventBody,
};
use hotline_core::ids::{AgentId, ContactId, EventId, QueueId, SiteId, TenantId, TraceId};
use hotline_core::time::Timestamp;
use proptest::prelude::*;

use super::*;
use crate::model::{Counters, Figure};

// === builders ===

/// Builds events with increasing ids.
#[derive(Default)]
struct Log {
    next: u128,
    events: Vec<Event>,
}

impl Log {
    fn push(&mut self, at_ms: u64, tenant: &str, site: &str, body: EventBody) -> Event {
        self.next += 1;
        let e = Event {
            id: EventId::from_u128(self.next),
            at: Timestamp(at_ms * 1000),
            tenant: TenantId::new(tenant).unwrap(),
            site: SiteId::new(site).unwrap(),
            trace: TraceId::from_u128(0),
            body,
        };
        self.events.push(e.clone());
        e
    }

    #[allow(clippy::too_many_arguments)]
    fn contact(
        &mut self,
        at_ms: u64,
        tenant: &str,
        site: &str,
        contact: u128,
        queue: Option<&str>,
        agent: Option<&str>,
        kind: ContactEventKind,
    ) -> Event {
        let body = EventBody::Contact(ContactEvent {
            contact: ContactId::from_u128(contact),
            channel: Channel::Voice,
            queue: queue.map(|q| QueueId::new(q).unwrap()),
            agent: agent.map(|a| AgentId::new(a).unwrap()),
            kind,
        });
        self.push(at_ms, tenant, site, body)
    }

    fn agent(
        &mut self,
        at_ms: u64,
        tenant: &str,
        site: &str,
        agent: &str,
        status: AgentStatus,
    ) -> Event {
        let kind = match &status {
            AgentStatus::LoggedOut => AgentEventKind::LoggedOut,
            AgentStatus::Ready => AgentEventKind::Ready,
            AgentStatus::NotReady(r) => AgentEventKind::NotReady { reason: r.clone() },
            AgentStatus::Reserved => AgentEventKind::Reserved {
                contact: ContactId::from_u128(0),
            },
            AgentStatus::OnContact => AgentEventKind::ContactStarted {
                contact: ContactId::from_u128(0),
            },
            AgentStatus::WrapUp => AgentEventKind::WrapUpStarted {
                contact: ContactId::from_u128(0),
            },
        };
        let body = EventBody::Agent(AgentEvent {
            agent: AgentId::new(agent).unwrap(),
            kind,
            status,
        });
        self.push(at_ms, tenant, site, body)
    }

    /// One answered contact: arrived, queued, offered, connected, wrap-up, done.
    #[allow(clippy::too_many_arguments)]
    fn answered(
        &mut self,
        tenant: &str,
        contact: u128,
        customer: Option<&str>,
        queue: &str,
        agent: &str,
        queued_ms: u64,
        wait_ms: u64,
        talk_ms: u64,
        hold_ms: u64,
        wrap_ms: u64,
    ) {
        let (t, s, q, a) = (tenant, "s1", Some(queue), Some(agent));
        let arrived = ContactEventKind::Arrived {
            customer: customer.map(Arc::from),
        };
        self.contact(queued_ms, t, s, contact, None, None, arrived);
        self.contact(
            queued_ms,
            t,
            s,
            contact,
            q,
            None,
            ContactEventKind::Queued { priority: 0 },
        );
        let answer = queued_ms + wait_ms;
        self.contact(
            answer,
            t,
            s,
            contact,
            q,
            a,
            ContactEventKind::Offered { attempt: 1 },
        );
        self.contact(
            answer,
            t,
            s,
            contact,
            q,
            a,
            ContactEventKind::Connected { wait_ms },
        );
        let end = answer + talk_ms;
        self.contact(
            end,
            t,
            s,
            contact,
            q,
            a,
            ContactEventKind::WrapUpStarted { talk_ms },
        );
        let done = ContactEventKind::Done {
            talk_ms,
            hold_ms,
            wrap_ms,
        };
        self.contact(end + wrap_ms, t, s, contact, q, a, done);
    }

    /// One abandoned contact.
    fn abandoned(
        &mut self,
        tenant: &str,
        contact: u128,
        queue: &str,
        queued_ms: u64,
        wait_ms: u64,
    ) {
        let arrived = ContactEventKind::Arrived { customer: None };
        self.contact(queued_ms, tenant, "s1", contact, None, None, arrived);
        let q = Some(queue);
        let queued = ContactEventKind::Queued { priority: 0 };
        self.contact(queued_ms, tenant, "s1", contact, q, None, queued);
        let gone = ContactEventKind::Abandoned {
            wait_ms,
            while_offered: false,
        };
        self.contact(queued_ms + wait_ms, tenant, "s1", contact, q, None, gone);
    }
}

fn engine_of(config: EngineConfig, events: &[Event]) -> Engine {
    let mut e = Engine::new(config);
    for ev in events {
        e.apply(ev);
    }
    e
}

fn query(
    tenant: &str,
    length: IntervalLength,
    dimension: Option<DimensionFilter>,
) -> IntervalQuery {
    IntervalQuery {
        tenant: tenant.into(),
        length,
        from_ms: 0,
        to_ms: u64::MAX,
        dimension,
    }
}

fn row_counters(
    e: &Engine,
    tenant: &str,
    length: IntervalLength,
    dim: Dimension,
    start_ms: u64,
) -> Counters {
    e.intervals(&query(tenant, length, Some(DimensionFilter::Is(dim))))
        .into_iter()
        .find(|r| r.key.start_ms == start_ms)
        .map(|r| r.counters)
        .unwrap_or_default()
}

fn value(figures: &[Figure], definition: &str, name: &str) -> Option<f64> {
    figures
        .iter()
        .find(|f| f.definition == definition && f.name == name)
        .unwrap_or_else(|| panic!("no figure {name} ({definition})"))
        .value
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

const MIN: u64 = 60_000;

// === figures ===

#[test]
fn every_figure_matches_its_hand_computed_value() {
    let c = Counters {
        offered: 10,
        answered: 6,
        answered_within_sl: 4,
        abandoned: 3,
        short_abandoned: 1,
        abandoned_within_sl: 1,
        answer_wait_ms: 60_000,
        abandon_wait_ms: 30_000,
        handled: 5,
        talk_ms: 500_000,
        hold_ms: 50_000,
        wrap_ms: 100_000,
        overflowed: 1,
        transferred: 2,
        other_exits: 0,
        fcr_eligible: 4,
        fcr_resolved: 3,
        staffed_ms: 3_600_000,
        busy_ms: 1_800_000,
        reserved_ms: 0,
        not_ready_ms: 600_000,
        fcr_pending: 1,
    };
    let cost = CostModel {
        agent_cost_per_staffed_hour: 30.0,
        voice_cost_per_talk_minute: 0.6,
        cost_per_handled_contact: 1.0,
    };
    let tenant = Dimension::Tenant;
    let ctx = FigureContext {
        cost: Some(&cost),
        dimension: Some(&tenant),
    };
    let f = figures(&c, &ctx);
    assert!(close(value(&f, "count.offered", "offered"), 10.0));
    assert!(close(
        value(&f, "sl.abandons_in_denominator", "service_level"),
        4.0 / 9.0
    ));
    assert!(close(
        value(&f, "sl.answered_only", "service_level"),
        4.0 / 6.0
    ));
    assert!(close(
        value(&f, "sl.short_abandons_excluded", "service_level"),
        0.5
    ));
    assert!(close(value(&f, "asa", "asa_secs"), 10.0));
    assert!(close(value(&f, "aht", "aht_secs"), 130.0));
    assert!(close(value(&f, "abandon_rate", "abandon_rate"), 0.3));
    assert!(close(
        value(&f, "abandon_rate.short_abandons_excluded", "abandon_rate"),
        2.0 / 9.0
    ));
    assert!(close(
        value(&f, "abandon_wait", "avg_abandon_wait_secs"),
        10.0
    ));
    assert!(close(value(&f, "occupancy", "occupancy"), 0.6));
    assert!(close(
        value(&f, "transfer_rate", "transfer_rate"),
        2.0 / 6.0
    ));
    assert!(close(value(&f, "overflow_rate", "overflow_rate"), 0.1));
    assert!(close(
        value(&f, "fcr.no_repeat_within_window", "fcr_rate"),
        0.75
    ));
    assert!(close(
        value(&f, "fcr.no_repeat_within_window", "fcr_pending"),
        1.0
    ));
    // 30 × 1 h + 0.6 × 550 s / 60 + 1 × 5 = 40.5, over 5 handled.
    assert!(close(
        value(&f, "cost.per_handled_contact", "cost_per_contact"),
        8.1
    ));
    // The default service level comes first among its name.
    let first_sl = f.iter().find(|x| x.name == "service_level").unwrap();
    assert_eq!(first_sl.definition, "sl.abandons_in_denominator");
    // Every figure names a known definition and version.
    for x in &f {
        assert!(
            DEFINITIONS
                .iter()
                .any(|(d, v)| *d == x.definition && *v == x.version),
            "{x:?}"
        );
    }
}

#[test]
fn figures_with_nothing_to_divide_by_are_undefined_not_zero() {
    let f = figures(&Counters::default(), &FigureContext::default());
    for name in [
        "service_level",
        "asa_secs",
        "aht_secs",
        "abandon_rate",
        "occupancy",
        "fcr_rate",
        "cost_per_contact",
    ] {
        assert!(
            f.iter()
                .filter(|x| x.name == name)
                .all(|x| x.value.is_none()),
            "{name}"
        );
    }
    assert_eq!(value(&f, "count.offered", "offered"), Some(0.0));
}

#[test]
fn queue_rows_have_no_occupancy_and_no_cost_built_on_agent_time() {
    let c = Counters {
        handled: 2,
        staffed_ms: 1000,
        busy_ms: 500,
        ..Counters::default()
    };
    let cost = CostModel {
        agent_cost_per_staffed_hour: 10.0,
        ..CostModel::default()
    };
    let q = Dimension::Queue("q1".into());
    let f = figures(
        &c,
        &FigureContext {
            cost: Some(&cost),
            dimension: Some(&q),
        },
    );
    assert_eq!(value(&f, "occupancy", "occupancy"), None);
    assert_eq!(
        value(&f, "cost.per_handled_contact", "cost_per_contact"),
        None
    );
}

#[test]
fn a_tenant_without_a_cost_model_has_no_cost_per_contact() {
    let mut config = EngineConfig::default();
    config.costs.insert("t2".into(), CostModel::default());
    let ctx = FigureContext::for_tenant(&config, "t1");
    assert!(ctx.cost.is_none());
    assert!(FigureContext::for_tenant(&config, "t2").cost.is_none());
}

// === counting ===

/// Four contacts in one quarter hour: two answered (one within 20 s), one short and one
/// long abandon.
fn quarter_hour() -> Log {
    let mut log = Log::default();
    log.answered(
        "t1",
        1,
        Some("+8610"),
        "q1",
        "a1",
        1000,
        10_000,
        60_000,
        5_000,
        10_000,
    );
    log.abandoned("t1", 2, "q1", 2000, 3000);
    log.abandoned("t1", 3, "q1", 3000, 30_000);
    log.answered("t1", 4, None, "q1", "a2", 4000, 30_000, 20_000, 0, 0);
    log
}

#[test]
fn contacts_count_in_their_queued_interval_with_hand_computed_counters() {
    let e = engine_of(EngineConfig::default(), &quarter_hour().events);
    let expected = Counters {
        offered: 4,
        answered: 2,
        answered_within_sl: 1,
        abandoned: 2,
        short_abandoned: 1,
        abandoned_within_sl: 1,
        answer_wait_ms: 40_000,
        abandon_wait_ms: 33_000,
        handled: 2,
        talk_ms: 75_000,
        hold_ms: 5_000,
        wrap_ms: 10_000,
        fcr_pending: 1,
        ..Counters::default()
    };
    for dim in [
        Dimension::Tenant,
        Dimension::Queue("q1".into()),
        Dimension::Site("s1".into()),
    ] {
        for len in IntervalLength::ALL {
            assert_eq!(
                row_counters(&e, "t1", len, dim.clone(), 0),
                expected,
                "{dim:?} {len:?}"
            );
        }
    }
    let a1 = row_counters(
        &e,
        "t1",
        IntervalLength::Min15,
        Dimension::Agent("a1".into()),
        0,
    );
    assert_eq!(
        (a1.answered, a1.handled, a1.talk_ms, a1.hold_ms, a1.wrap_ms),
        (1, 1, 55_000, 5_000, 10_000)
    );
    let rows = e.intervals(&query(
        "t1",
        IntervalLength::Min15,
        Some(DimensionFilter::Is(Dimension::Tenant)),
    ));
    let f = &rows[0].figures;
    assert!(close(
        value(f, "sl.abandons_in_denominator", "service_level"),
        0.25
    ));
    assert!(close(value(f, "sl.answered_only", "service_level"), 0.5));
    assert!(close(
        value(f, "sl.short_abandons_excluded", "service_level"),
        1.0 / 3.0
    ));
    assert!(close(value(f, "asa", "asa_secs"), 20.0));
    assert!(close(value(f, "aht", "aht_secs"), 45.0));
    assert!(close(
        value(f, "abandon_wait", "avg_abandon_wait_secs"),
        16.5
    ));
}

#[test]
fn a_queue_threshold_override_changes_only_that_queue() {
    let mut config = EngineConfig::default();
    config.service_level_overrides.push(ServiceLevelOverride {
        tenant: "t1".into(),
        queue: "q1".into(),
        secs: 40,
    });
    let e = engine_of(config, &quarter_hour().events);
    let c = row_counters(
        &e,
        "t1",
        IntervalLength::Day,
        Dimension::Queue("q1".into()),
        0,
    );
    assert_eq!((c.answered_within_sl, c.abandoned_within_sl), (2, 2));
}

#[test]
fn duplicate_events_are_ignored() {
    let log = quarter_hour();
    let mut e = engine_of(EngineConfig::default(), &log.events);
    let before = e.intervals(&query("t1", IntervalLength::Min15, None));
    for ev in &log.events {
        assert!(!e.apply(ev), "{ev:?} applied twice");
    }
    assert_eq!(
        e.intervals(&query("t1", IntervalLength::Min15, None)),
        before
    );
    assert_eq!(e.stats().duplicates, log.events.len() as u64);
}

#[test]
fn agent_time_is_split_across_interval_boundaries() {
    let mut log = Log::default();
    let h14 = 14 * 60 * MIN;
    log.agent(h14 + 50 * MIN, "t1", "s1", "a1", AgentStatus::Ready);
    log.agent(h14 + 55 * MIN, "t1", "s1", "a1", AgentStatus::OnContact);
    log.agent(h14 + 70 * MIN, "t1", "s1", "a1", AgentStatus::WrapUp);
    log.agent(h14 + 80 * MIN, "t1", "s1", "a1", AgentStatus::Ready);
    log.agent(h14 + 90 * MIN, "t1", "s1", "a1", AgentStatus::LoggedOut);
    let e = engine_of(EngineConfig::default(), &log.events);
    let a = Dimension::Agent("a1".into());
    let q = |len, start| {
        let c = row_counters(&e, "t1", len, a.clone(), start);
        (c.staffed_ms / MIN, c.busy_ms / MIN)
    };
    assert_eq!(q(IntervalLength::Min15, h14 + 45 * MIN), (10, 5));
    assert_eq!(q(IntervalLength::Min15, h14 + 60 * MIN), (15, 15));
    assert_eq!(q(IntervalLength::Min15, h14 + 75 * MIN), (15, 5));
    assert_eq!(q(IntervalLength::Hour, h14), (10, 5));
    assert_eq!(q(IntervalLength::Hour, h14 + 60 * MIN), (30, 20));
    assert_eq!(q(IntervalLength::Day, 0), (40, 25));
    let t = row_counters(&e, "t1", IntervalLength::Day, Dimension::Tenant, 0);
    assert_eq!(t.staffed_ms, 40 * MIN);
    let rows = e.intervals(&query(
        "t1",
        IntervalLength::Day,
        Some(DimensionFilter::Is(a.clone())),
    ));
    assert!(close(
        value(&rows[0].figures, "occupancy", "occupancy"),
        0.625
    ));
}

#[test]
fn not_ready_time_is_left_out_of_occupancy() {
    let mut log = Log::default();
    log.agent(0, "t1", "s1", "a1", AgentStatus::OnContact);
    log.agent(
        10 * MIN,
        "t1",
        "s1",
        "a1",
        AgentStatus::NotReady("break".into()),
    );
    log.agent(20 * MIN, "t1", "s1", "a1", AgentStatus::Ready);
    log.agent(30 * MIN, "t1", "s1", "a1", AgentStatus::LoggedOut);
    let e = engine_of(EngineConfig::default(), &log.events);
    let rows = e.intervals(&query(
        "t1",
        IntervalLength::Hour,
        Some(DimensionFilter::Is(Dimension::Tenant)),
    ));
    assert_eq!(rows[0].counters.not_ready_ms, 10 * MIN);
    assert!(close(
        value(&rows[0].figures, "occupancy", "occupancy"),
        0.5
    ));
}

#[test]
fn an_overflow_to_another_queue_counts_once_for_the_tenant() {
    let mut log = Log::default();
    let (t, s) = ("t1", "s1");
    log.contact(
        0,
        t,
        s,
        1,
        None,
        None,
        ContactEventKind::Arrived { customer: None },
    );
    log.contact(
        0,
        t,
        s,
        1,
        Some("q1"),
        None,
        ContactEventKind::Queued { priority: 0 },
    );
    let over = ContactEventKind::Overflowed {
        to: OverflowTarget::Queue(QueueId::new("q2").unwrap()),
        reason: "max_wait".into(),
    };
    log.contact(30_000, t, s, 1, Some("q1"), None, over);
    log.contact(
        30_000,
        t,
        s,
        1,
        Some("q2"),
        None,
        ContactEventKind::Queued { priority: 0 },
    );
    log.contact(
        35_000,
        t,
        s,
        1,
        Some("q2"),
        Some("a1"),
        ContactEventKind::Connected { wait_ms: 35_000 },
    );
    let e = engine_of(EngineConfig::default(), &log.events);
    let day = IntervalLength::Day;
    let q1 = row_counters(&e, t, day, Dimension::Queue("q1".into()), 0);
    let q2 = row_counters(&e, t, day, Dimension::Queue("q2".into()), 0);
    let tenant = row_counters(&e, t, day, Dimension::Tenant, 0);
    assert_eq!((q1.offered, q1.overflowed, q1.answered), (1, 1, 0));
    assert_eq!((q2.offered, q2.answered, q2.answer_wait_ms), (1, 1, 35_000));
    assert_eq!(
        (tenant.offered, tenant.overflowed, tenant.answered),
        (1, 1, 1)
    );
}

#[test]
fn a_contact_overflowed_to_another_site_is_offered_once_for_the_tenant() {
    let mut log = Log::default();
    let t = "t1";
    log.contact(
        0,
        t,
        "s1",
        1,
        None,
        None,
        ContactEventKind::Arrived { customer: None },
    );
    log.contact(
        0,
        t,
        "s1",
        1,
        Some("q1"),
        None,
        ContactEventKind::Queued { priority: 0 },
    );
    let over = ContactEventKind::Overflowed {
        to: OverflowTarget::Site(SiteId::new("s2").unwrap()),
        reason: "no_agents".into(),
    };
    log.contact(10_000, t, "s1", 1, Some("q1"), None, over);
    log.contact(
        11_000,
        t,
        "s2",
        1,
        None,
        None,
        ContactEventKind::Arrived { customer: None },
    );
    log.contact(
        11_000,
        t,
        "s2",
        1,
        Some("q1"),
        None,
        ContactEventKind::Queued { priority: 0 },
    );
    log.contact(
        16_000,
        t,
        "s2",
        1,
        Some("q1"),
        Some("a1"),
        ContactEventKind::Connected { wait_ms: 5_000 },
    );
    let e = engine_of(EngineConfig::default(), &log.events);
    let day = IntervalLength::Day;
    let tenant = row_counters(&e, t, day, Dimension::Tenant, 0);
    assert_eq!(
        (tenant.offered, tenant.answered, tenant.answer_wait_ms),
        (1, 1, 16_000)
    );
    let s1 = row_counters(&e, t, day, Dimension::Site("s1".into()), 0);
    let s2 = row_counters(&e, t, day, Dimension::Site("s2".into()), 0);
    assert_eq!((s1.offered, s1.overflowed, s1.answered), (1, 1, 0));
    assert_eq!((s2.offered, s2.answered, s2.answer_wait_ms), (1, 1, 5_000));
}

#[test]
fn transfers_count_for_the_queue_left_and_the_agent_who_transferred() {
    let mut log = Log::default();
    log.answered("t1", 1, None, "q1", "a1", 0, 1000, 0, 0, 0);
    let tr = ContactEventKind::Transferred {
        to: OverflowTarget::Queue(QueueId::new("q2").unwrap()),
    };
    // Rewrite the tail: transferred during the conversation, before the done.
    log.events.truncate(4);
    log.contact(5_000, "t1", "s1", 1, Some("q1"), Some("a1"), tr);
    let e = engine_of(EngineConfig::default(), &log.events);
    let day = IntervalLength::Day;
    assert_eq!(
        row_counters(&e, "t1", day, Dimension::Queue("q1".into()), 0).transferred,
        1
    );
    assert_eq!(
        row_counters(&e, "t1", day, Dimension::Agent("a1".into()), 0).transferred,
        1
    );
    assert_eq!(
        row_counters(&e, "t1", day, Dimension::Tenant, 0).transferred,
        1
    );
}

#[test]
fn callbacks_voicemail_and_failures_are_other_exits_and_a_callback_answer_is_not_an_answer() {
    let mut log = Log::default();
    let (t, s, q) = ("t1", "s1", Some("q1"));
    for c in 1..=3 {
        log.contact(
            0,
            t,
            s,
            c,
            None,
            None,
            ContactEventKind::Arrived { customer: None },
        );
        log.contact(
            0,
            t,
            s,
            c,
            q,
            None,
            ContactEventKind::Queued { priority: 0 },
        );
    }
    log.contact(1000, t, s, 1, q, None, ContactEventKind::CallbackRequested);
    log.contact(
        600_000,
        t,
        s,
        1,
        q,
        Some("a1"),
        ContactEventKind::Connected { wait_ms: 600_000 },
    );
    let done = ContactEventKind::Done {
        talk_ms: 1000,
        hold_ms: 0,
        wrap_ms: 0,
    };
    log.contact(601_000, t, s, 1, q, Some("a1"), done);
    log.contact(
        1000,
        t,
        s,
        2,
        q,
        None,
        ContactEventKind::Voicemail {
            reason: "max_wait".into(),
        },
    );
    log.contact(
        1000,
        t,
        s,
        3,
        q,
        None,
        ContactEventKind::Failed {
            reason: FailReason::QueueFull,
        },
    );
    let e = engine_of(EngineConfig::default(), &log.events);
    let c = row_counters(&e, t, IntervalLength::Day, Dimension::Tenant, 0);
    assert_eq!(
        (c.offered, c.other_exits, c.answered, c.handled),
        (3, 3, 0, 1)
    );
}

#[test]
fn an_abandon_in_the_ivr_is_not_offered_and_not_abandoned() {
    let mut log = Log::default();
    log.contact(
        0,
        "t1",
        "s1",
        1,
        None,
        None,
        ContactEventKind::Arrived { customer: None },
    );
    log.contact(0, "t1", "s1", 1, None, None, ContactEventKind::IvrEntered);
    let gone = ContactEventKind::Abandoned {
        wait_ms: 0,
        while_offered: false,
    };
    log.contact(5000, "t1", "s1", 1, None, None, gone);
    let e = engine_of(EngineConfig::default(), &log.events);
    assert_eq!(
        row_counters(&e, "t1", IntervalLength::Day, Dimension::Tenant, 0),
        Counters::default()
    );
}

// === first-contact resolution ===

fn fcr_config() -> EngineConfig {
    EngineConfig {
        fcr_window_secs: 3600,
        ..EngineConfig::default()
    }
}

fn fcr(e: &Engine) -> (u64, u64, u64) {
    let c = row_counters(e, "t1", IntervalLength::Day, Dimension::Tenant, 0);
    (c.fcr_pending, c.fcr_eligible, c.fcr_resolved)
}

#[test]
fn fcr_stays_pending_until_the_window_passes_then_counts_resolved() {
    let mut log = Log::default();
    log.answered("t1", 1, Some("+861"), "q1", "a1", 0, 1000, 1000, 0, 0);
    let mut e = engine_of(fcr_config(), &log.events);
    assert_eq!(fcr(&e), (1, 0, 0));
    // Anything of the tenant moves its watermark past the window.
    e.apply(&log.agent(3_600_000, "t1", "s1", "a1", AgentStatus::Ready));
    assert_eq!(fcr(&e), (0, 1, 1));
}

#[test]
fn a_repeat_within_the_window_makes_the_first_contact_unresolved() {
    let mut log = Log::default();
    log.answered("t1", 1, Some("+861"), "q1", "a1", 0, 1000, 1000, 0, 0);
    log.abandoned("t1", 9, "q1", 10, 1); // another customer's noise
    log.contact(
        100_000,
        "t1",
        "s1",
        2,
        None,
        None,
        ContactEventKind::Arrived {
            customer: Some(Arc::from("+861")),
        },
    );
    log.agent(7_200_000, "t1", "s1", "a1", AgentStatus::Ready);
    let e = engine_of(fcr_config(), &log.events);
    assert_eq!(fcr(&e), (0, 1, 0));
}

#[test]
fn a_late_repeat_revises_a_decided_resolution() {
    let mut log = Log::default();
    log.answered("t1", 1, Some("+861"), "q1", "a1", 0, 1000, 1000, 0, 0);
    let mut e = engine_of(fcr_config(), &log.events);
    e.apply(&log.agent(4_000_000, "t1", "s1", "a1", AgentStatus::Ready));
    assert_eq!(fcr(&e), (0, 1, 1));
    // The repeat happened at 30 min, but its event is read only now.
    e.apply(&log.contact(
        1_800_000,
        "t1",
        "s1",
        2,
        None,
        None,
        ContactEventKind::Arrived {
            customer: Some(Arc::from("+861")),
        },
    ));
    assert_eq!(fcr(&e), (0, 1, 0));
}

#[test]
fn contacts_without_a_customer_do_not_count_for_fcr() {
    let mut log = Log::default();
    log.answered("t1", 1, None, "q1", "a1", 0, 1000, 1000, 0, 0);
    log.agent(7_200_000, "t1", "s1", "a1", AgentStatus::Ready);
    let e = engine_of(fcr_config(), &log.events);
    assert_eq!(fcr(&e), (0, 0, 0));
}

// === real time ===

#[test]
fn realtime_shows_waiting_ringing_oldest_wait_and_agents_by_true_state() {
    let mut log = Log::default();
    let (t, s) = ("t1", "s1");
    for (c, at) in [(1, 1000), (2, 5000), (3, 8000)] {
        log.contact(
            at,
            t,
            s,
            c,
            None,
            None,
            ContactEventKind::Arrived { customer: None },
        );
        log.contact(
            at,
            t,
            s,
            c,
            Some("q1"),
            None,
            ContactEventKind::Queued { priority: 0 },
        );
    }
    log.contact(
        9000,
        t,
        s,
        2,
        Some("q1"),
        Some("a1"),
        ContactEventKind::Offered { attempt: 1 },
    );
    log.contact(
        9500,
        t,
        s,
        3,
        Some("q1"),
        Some("a2"),
        ContactEventKind::Offered { attempt: 1 },
    );
    let declined = ContactEventKind::OfferDeclined {
        reason: DeclineReason::Rejected,
    };
    log.contact(9800, t, s, 3, Some("q1"), Some("a2"), declined);
    log.agent(0, t, s, "a1", AgentStatus::Reserved);
    log.agent(0, t, s, "a2", AgentStatus::NotReady("break".into()));
    log.agent(0, t, s, "a3", AgentStatus::NotReady("break".into()));
    log.agent(0, t, s, "a4", AgentStatus::NotReady("lunch".into()));
    log.agent(0, t, s, "a5", AgentStatus::WrapUp);
    log.agent(0, t, s, "a6", AgentStatus::LoggedOut);
    let e = engine_of(EngineConfig::default(), &log.events);
    let rt = e.realtime("t1", 11_000).unwrap();
    assert_eq!(rt.queues.len(), 1);
    let q = &rt.queues[0];
    assert_eq!((q.waiting, q.ringing, q.oldest_wait_ms), (2, 1, 10_000));
    assert_eq!(rt.agents.reserved, 1);
    assert_eq!(rt.agents.wrap_up, 1);
    assert_eq!(
        rt.agents.not_ready,
        vec![("break".into(), 2), ("lunch".into(), 1)]
    );
    assert_eq!(rt.agent_list.len(), 5);
    assert_eq!(rt.agent_list[1].reason.as_deref(), Some("break"));
    assert!(e.realtime("nobody", 0).is_none());
}

#[test]
fn realtime_today_figures_and_served_agents_come_from_the_current_day() {
    let log = quarter_hour();
    let mut e = engine_of(EngineConfig::default(), &log.events);
    e.apply(
        &Log {
            next: 1000,
            events: vec![],
        }
        .agent(200_000, "t1", "s1", "a1", AgentStatus::Ready),
    );
    let rt = e.realtime("t1", 300_000).unwrap();
    let q = &rt.queues[0];
    assert_eq!(value(&q.today, "count.offered", "offered"), Some(4.0));
    assert_eq!(q.agents.ready, 1, "a1 answered in q1 today and is ready");
    let tomorrow = e.realtime("t1", DAY_MS + 1).unwrap();
    assert_eq!(
        value(&tomorrow.queues[0].today, "count.offered", "offered"),
        Some(0.0)
    );
    assert_eq!(tomorrow.queues[0].agents.ready, 0);
}

// === tenancy, checkpoints, pruning, config ===

#[test]
fn tenants_are_isolated_even_with_the_same_ids() {
    let mut log = Log::default();
    log.answered("t1", 1, Some("+861"), "q1", "a1", 0, 1000, 1000, 0, 0);
    log.abandoned("t2", 1, "q1", 0, 40_000);
    log.agent(0, "t2", "s1", "a1", AgentStatus::Ready);
    log.agent(MIN, "t2", "s1", "a1", AgentStatus::LoggedOut);
    let both = engine_of(EngineConfig::default(), &log.events);
    let only_t1: Vec<Event> = log
        .events
        .iter()
        .filter(|e| e.tenant.as_str() == "t1")
        .cloned()
        .collect();
    let alone = engine_of(EngineConfig::default(), &only_t1);
    for len in IntervalLength::ALL {
        assert_eq!(
            both.intervals(&query("t1", len, None)),
            alone.intervals(&query("t1", len, None))
        );
    }
    assert_eq!(both.tenants(), vec!["t1".to_owned(), "t2".to_owned()]);
    let t2 = row_counters(&both, "t2", IntervalLength::Day, Dimension::Tenant, 0);
    assert_eq!(
        (t2.offered, t2.abandoned, t2.answered, t2.staffed_ms),
        (1, 1, 0, MIN)
    );
    assert!(both.realtime("t1", 0).unwrap().agent_list.is_empty());
}

#[test]
fn a_restored_checkpoint_resumes_without_double_counting() {
    let log = quarter_hour();
    let (first, rest) = log.events.split_at(7);
    let mut e = engine_of(EngineConfig::default(), first);
    e.take_dirty();
    let bytes = e.checkpoint();
    let mut resumed = Engine::restore(EngineConfig::default(), &bytes).unwrap();
    assert_eq!(resumed.checkpoint(), bytes, "a checkpoint restores exactly");
    // Re-reading records the checkpoint already covers changes nothing.
    for ev in first.iter().chain(rest) {
        resumed.apply(ev);
    }
    let all = engine_of(EngineConfig::default(), &log.events);
    for len in IntervalLength::ALL {
        assert_eq!(
            resumed.intervals(&query("t1", len, None)),
            all.intervals(&query("t1", len, None))
        );
    }
}

#[test]
fn a_damaged_checkpoint_is_refused_with_its_size() {
    let err = Engine::restore(EngineConfig::default(), b"{not json").unwrap_err();
    assert!(err.to_string().contains("9 bytes"), "{err}");
}

#[test]
fn take_dirty_returns_changed_rows_once_and_prunes_old_days() {
    let mut log = Log::default();
    log.abandoned("t1", 1, "q1", 0, 1000);
    let mut e = engine_of(EngineConfig::default(), &log.events);
    let dirty = e.take_dirty();
    assert_eq!(
        dirty.len(),
        9,
        "tenant, site and queue rows, three lengths each"
    );
    assert!(e.take_dirty().is_empty());
    // Three days later: day 0 is beyond today and yesterday.
    log.abandoned("t1", 2, "q1", 3 * DAY_MS, 1000);
    for ev in &log.events[3..] {
        e.apply(ev);
    }
    assert_eq!(e.take_dirty().len(), 9);
    assert!(
        e.intervals(&query("t1", IntervalLength::Day, None))
            .iter()
            .all(|r| r.key.start_ms == 3 * DAY_MS)
    );
    // A late event for day 0 is dropped and counted, not written as a partial row.
    e.apply(&log.contact(
        5000,
        "t1",
        "s1",
        3,
        Some("q1"),
        None,
        ContactEventKind::Queued { priority: 0 },
    ));
    assert!(e.take_dirty().is_empty());
    assert_eq!(e.stats().late_dropped, 9);
}

#[test]
fn config_errors_name_the_field_and_the_value() {
    assert!(EngineConfig::default().validate().is_ok());
    let bad = EngineConfig {
        service_level_secs: 0,
        ..EngineConfig::default()
    };
    assert!(bad.validate().unwrap_err().contains("service_level_secs"));
    let mut bad = EngineConfig::default();
    bad.costs.insert(
        "t1".into(),
        CostModel {
            voice_cost_per_talk_minute: -1.0,
            ..CostModel::default()
        },
    );
    let err = bad.validate().unwrap_err();
    assert!(
        err.contains("costs.t1.voice_cost_per_talk_minute") && err.contains("-1"),
        "{err}"
    );
    let parsed: EngineConfig = serde_json::from_str(r#"{"short_abandon_secs": 3}"#).unwrap();
    assert_eq!(
        (parsed.short_abandon_secs, parsed.service_level_secs),
        (3, 20)
    );
}

// === replay exactness ===

/// A small deterministic generator, so a proptest seed describes a whole history.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random history of two tenants, as one event list per key (in key order), with
/// duplicates re-delivered later within their key.
fn history(seed: u64) -> Vec<Vec<Event>> {
    let mut rng = Rng(seed | 1);
    let mut keys: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    let mut log = Log::default();
    let customers = [None, Some("c1"), Some("c2"), Some("c3")];
    for tenant in ["t1", "t2"] {
        for n in 0..(4 + rng.below(10)) as u128 {
            let start = rng.below(3 * 3600 * 1000);
            let customer = customers[rng.below(4) as usize].map(Arc::from);
            let clock = std::cell::Cell::new(start);
            let step = |rng: &mut Rng| {
                clock.set(clock.get() + rng.below(40_000));
                clock.get()
            };
            let t = start;
            let (s, q1, q2, a) = (
                "s1",
                Some("q1"),
                Some("q2"),
                Some(["a1", "a2"][rng.below(2) as usize]),
            );
            log.contact(
                t,
                tenant,
                s,
                n,
                None,
                None,
                ContactEventKind::Arrived { customer },
            );
            log.contact(
                t,
                tenant,
                s,
                n,
                q1,
                None,
                ContactEventKind::Queued { priority: 0 },
            );
            let queued = t;
            let answer = |log: &mut Log, rng: &mut Rng, site: &str, q: Option<&str>, since: u64| {
                let at = step(rng);
                log.contact(
                    at,
                    tenant,
                    site,
                    n,
                    q,
                    a,
                    ContactEventKind::Offered { attempt: 1 },
                );
                log.contact(
                    at,
                    tenant,
                    site,
                    n,
                    q,
                    a,
                    ContactEventKind::Connected {
                        wait_ms: at - since,
                    },
                );
                let talk = rng.below(300_000);
                log.contact(
                    at + talk,
                    tenant,
                    site,
                    n,
                    q,
                    a,
                    ContactEventKind::WrapUpStarted { talk_ms: talk },
                );
                let wrap = rng.below(60_000);
                let done = ContactEventKind::Done {
                    talk_ms: talk,
                    hold_ms: talk / 4,
                    wrap_ms: wrap,
                };
                log.contact(at + talk + wrap, tenant, site, n, q, a, done);
            };
            match rng.below(7) {
                0 => answer(&mut log, &mut rng, s, q1, queued),
                1 => {
                    let at = step(&mut rng);
                    let gone = ContactEventKind::Abandoned {
                        wait_ms: at - queued,
                        while_offered: false,
                    };
                    log.contact(at, tenant, s, n, q1, None, gone);
                }
                2 => {
                    let at = step(&mut rng);
                    let over = ContactEventKind::Overflowed {
                        to: OverflowTarget::Queue(QueueId::new("q2").unwrap()),
                        reason: "max_wait".into(),
                    };
                    log.contact(at, tenant, s, n, q1, None, over);
                    log.contact(
                        at,
                        tenant,
                        s,
                        n,
                        q2,
                        None,
                        ContactEventKind::Queued { priority: 0 },
                    );
                    answer(&mut log, &mut rng, s, q2, queued);
                }
                3 => {
                    let at = step(&mut rng);
                    let over = ContactEventKind::Overflowed {
                        to: OverflowTarget::Site(SiteId::new("s2").unwrap()),
                        reason: "no_agents".into(),
                    };
                    log.contact(at, tenant, s, n, q1, None, over);
                    let customer = None;
                    log.contact(
                        at,
                        tenant,
                        "s2",
                        n,
                        None,
                        None,
                        ContactEventKind::Arrived { customer },
                    );
                    log.contact(
                        at,
                        tenant,
                        "s2",
                        n,
                        q1,
                        None,
                        ContactEventKind::Queued { priority: 0 },
                    );
                    answer(&mut log, &mut rng, "s2", q1, at);
                }
                4 => {
                    log.contact(
                        step(&mut rng),
                        tenant,
                        s,
                        n,
                        q1,
                        None,
                        ContactEventKind::CallbackRequested,
                    );
                    answer(&mut log, &mut rng, s, q1, queued);
                }
                5 => {
                    let at = step(&mut rng);
                    log.contact(
                        at,
                        tenant,
                        s,
                        n,
                        q1,
                        a,
                        ContactEventKind::Connected {
                            wait_ms: at - queued,
                        },
                    );
                    let tr = ContactEventKind::Transferred {
                        to: OverflowTarget::Queue(QueueId::new("q2").unwrap()),
                    };
                    log.contact(step(&mut rng), tenant, s, n, q1, a, tr);
                    log.contact(
                        clock.get(),
                        tenant,
                        s,
                        n,
                        q2,
                        None,
                        ContactEventKind::Queued { priority: 0 },
                    );
                    answer(&mut log, &mut rng, s, q2, queued);
                }
                _ => {
                    let vm = ContactEventKind::Voicemail {
                        reason: "max_wait".into(),
                    };
                    log.contact(step(&mut rng), tenant, s, n, q1, None, vm);
                }
            }
        }
        for agent in ["a1", "a2", "a3"] {
            let mut t = rng.below(3600 * 1000);
            let statuses = [
                AgentStatus::Ready,
                AgentStatus::Reserved,
                AgentStatus::OnContact,
                AgentStatus::WrapUp,
                AgentStatus::NotReady("break".into()),
                AgentStatus::NotReady("lunch".into()),
            ];
            for _ in 0..rng.below(12) {
                let st = statuses[rng.below(statuses.len() as u64) as usize].clone();
                log.agent(t, tenant, "s1", agent, st);
                t += rng.below(30 * MIN);
            }
            if rng.below(2) == 0 {
                log.agent(t, tenant, "s1", agent, AgentStatus::LoggedOut);
            }
        }
    }
    for e in std::mem::take(&mut log.events) {
        keys.entry(e.key()).or_default().push(e);
    }
    // At-least-once delivery: some events come again later within their key.
    for events in keys.values_mut() {
        let n = events.len() as u64;
        for _ in 0..rng.below(3) {
            let dup = events[rng.below(n) as usize].clone();
            events.push(dup);
        }
    }
    keys.into_values().collect()
}

/// Merges per-key lists in an order picked by `choices`, keeping order within each key.
fn interleave(mut keys: Vec<Vec<Event>>, choices: &[u32]) -> Vec<Event> {
    for k in &mut keys {
        k.reverse();
    }
    let mut out = Vec::new();
    let mut i = 0;
    while keys.iter().any(|k| !k.is_empty()) {
        let open: Vec<usize> = (0..keys.len()).filter(|&k| !keys[k].is_empty()).collect();
        let pick = open[choices.get(i).copied().unwrap_or(0) as usize % open.len()];
        i += 1;
        out.extend(keys[pick].pop());
    }
    out
}

fn replay_config() -> EngineConfig {
    EngineConfig {
        fcr_window_secs: 1800,
        dedupe_horizon_secs: 86_400,
        ..EngineConfig::default()
    }
}

fn everything(e: &Engine) -> Vec<crate::model::IntervalRow> {
    let mut out = Vec::new();
    for t in e.tenants() {
        for len in IntervalLength::ALL {
            out.extend(e.intervals(&query(&t, len, None)));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_interleaving_that_keeps_per_key_order_gives_the_same_final_state(
        seed in any::<u64>(),
        choices in proptest::collection::vec(any::<u32>(), 0..400),
    ) {
        let keys = history(seed);
        let in_key_order: Vec<Event> = keys.iter().flatten().cloned().collect();
        let shuffled = interleave(keys, &choices);
        let a = engine_of(replay_config(), &in_key_order);
        let b = engine_of(replay_config(), &shuffled);
        prop_assert_eq!(everything(&a), everything(&b));
        let end = in_key_order.iter().map(|e| e.at.millis()).max().unwrap_or(0);
        for t in a.tenants() {
            prop_assert_eq!(a.realtime(&t, end), b.realtime(&t, end));
        }
        prop_assert_eq!(a.checkpoint(), b.checkpoint());
    }
}

#[test]
fn definitions_md_writes_out_every_definition() {
    let doc = include_str!("../../DEFINITIONS.md");
    for (id, version) in DEFINITIONS {
        assert!(
            doc.contains(&format!("`{id}`")),
            "DEFINITIONS.md does not define {id}"
        );
        assert_eq!(
            *version, 1,
            "{id}: a new version needs its own section in DEFINITIONS.md"
        );
    }
    for term in [
        "服务水平",
        "平均处理时间",
        "放弃电话",
        "平均放弃等待时间",
        "平均延迟时间",
        "一次性解决率",
        "座席占用率",
        "平均单呼成本",
    ] {
        assert!(doc.contains(term), "{term}");
    }
}

/// What happens to one contact in [`the_indexed_prune_forgets_exactly_what_a_full_scan_forgets`].
#[derive(Debug, Clone)]
enum Fate {
    Answered {
        talk_s: u64,
    },
    Abandoned,
    /// Arrives and queues, and nothing more: stays open until `keep_days` forgets it.
    LeftOpen,
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        5 => (1u64..1_800).prop_map(|talk_s| Fate::Answered { talk_s }),
        2 => Just(Fate::Abandoned),
        1 => Just(Fate::LeftOpen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The prune visits only what its time indexes say may have expired; it must forget
    /// exactly what scanning every contact, case and customer forgets, after every event,
    /// over two days of event time (so `keep_days` forgets contacts left open) with short
    /// horizons (so ids, cases, customers and contacts come and go), and the same again
    /// after a restore, which rebuilds the indexes.
    #[test]
    fn the_indexed_prune_forgets_exactly_what_a_full_scan_forgets(
        contacts in prop::collection::vec((1u64..3_600, 0usize..6, fate()), 40..120),
    ) {
        let config = EngineConfig {
            fcr_window_secs: 900,
            dedupe_horizon_secs: 600,
            keep_days: 1,
            ..EngineConfig::default()
        };
        let mut log = Log::default();
        let mut at_ms = 0;
        for (n, (gap_s, customer, fate)) in contacts.iter().enumerate() {
            at_ms += gap_s * 1000;
            let customer = format!("+86{customer}");
            let id = n as u128 + 1;
            match fate {
                Fate::Answered { talk_s } => log.answered(
                    "t1", id, Some(&customer), "q1", "a1", at_ms, 5_000, talk_s * 1000, 0, 2_000,
                ),
                Fate::Abandoned => log.abandoned("t1", id, "q1", at_ms, 30_000),
                Fate::LeftOpen => {
                    let arrived = ContactEventKind::Arrived { customer: Some(customer.as_str().into()) };
                    log.contact(at_ms, "t1", "s1", id, None, None, arrived);
                    let queued = ContactEventKind::Queued { priority: 0 };
                    log.contact(at_ms, "t1", "s1", id, Some("q1"), None, queued);
                }
            }
        }
        // Per-key order is kept; across contacts the log is close to time order.
        let mut indexed = Engine::new(config.clone());
        let mut scanned = Engine::new(config.clone());
        let half = log.events.len() / 2;
        for (i, event) in log.events.iter().enumerate() {
            if i == half {
                // A restore rebuilds the indexes from the maps.
                indexed = Engine::restore(config.clone(), &indexed.checkpoint()).unwrap();
            }
            indexed.apply(event);
            state::FULL_SCAN_PRUNE.with(|f| f.set(true));
            scanned.apply(event);
            state::FULL_SCAN_PRUNE.with(|f| f.set(false));
            prop_assert!(
                indexed.checkpoint() == scanned.checkpoint(),
                "the engines differ after event {i} of {}: {event:?}", log.events.len()
            );
        }
        prop_assert!(indexed.stats().applied > 0);
    }
}
