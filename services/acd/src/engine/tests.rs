use std::time::Duration;

use hotline_core::agent::AgentStatus;
use hotline_core::channel::Channel;
use hotline_core::contact::{ContactState, DeclineReason};
use hotline_core::event::{ContactEventKind, Event, EventBody};
use hotline_core::ids::{ContactId, QueueId, TenantId};
use hotline_core::time::Timestamp;
use proptest::prelude::{ProptestConfig, any, prop_assert_eq, prop_oneof, proptest};
use proptest::strategy::Strategy as _;

use super::*;
use crate::config::SiteConfig;
use crate::ids::IdSource;

const BASE: &str = r#"
site = "s1"
[[tenant]]
id = "acme"
skills = ["billing", "english", "spanish", "general"]
[[tenant]]
id = "globex"
skills = ["support"]
"#;

fn engine(extra: &str) -> Engine {
    let text = format!("{BASE}\n{extra}");
    let config = SiteConfig::from_toml(&text, "test.toml").unwrap();
    Engine::new(&config, IdSource::sequential(0)).unwrap()
}

fn t(secs: f64) -> Timestamp {
    Timestamp((secs * 1e6) as u64)
}

fn c(n: u128) -> ContactId {
    ContactId::from_u128(n)
}

fn arrival(n: u128, queue: &str) -> Arrival {
    Arrival::new(
        c(n),
        TenantId::new("acme").unwrap(),
        QueueId::new(queue).unwrap(),
        Channel::Voice,
    )
}

fn ready(e: &mut Engine, now: Timestamp, agent: &str) -> u32 {
    let ix = e.agent_index(&agent.parse().unwrap()).unwrap();
    e.set_availability(
        now,
        ix,
        Availability {
            logged_in: true,
            ready: true,
            status: AgentStatus::Ready,
        },
    );
    ix
}

/// The offers made since the last call, as (contact, agent index).
fn offers(e: &mut Engine) -> Vec<(ContactId, u32)> {
    e.drain_effects()
        .filter_map(|f| match f {
            Effect::Offer(o) => Some((o.contact, o.agent_ix)),
            _ => None,
        })
        .collect()
}

fn kinds(e: &mut Engine) -> Vec<(ContactId, &'static str)> {
    e.drain_events()
        .filter_map(|ev| match ev.body {
            EventBody::Contact(c) => Some((c.contact, c.kind.name())),
            _ => None,
        })
        .collect()
}

fn handle(e: &mut Engine, now: Timestamp, contact: ContactId, agent: u32) {
    e.accepted(now, contact, agent).unwrap();
    e.ended(now, contact, agent).unwrap();
    e.wrap_up_done(now, contact, agent).unwrap();
}

const ONE_QUEUE: &str = r#"
[[queue]]
tenant = "acme"
id = "billing"
skills = [{ skill = "billing", min = 2 }]

[[agent]]
id = "ann"
serves = [{ tenant = "acme", skills = [{ skill = "billing", level = 3 }] }]
[[agent]]
id = "bob"
serves = [{ tenant = "acme", skills = [{ skill = "billing", level = 5 }] }]
"#;

#[test]
fn a_contact_is_offered_at_once_to_a_ready_eligible_agent() {
    let mut e = engine(ONE_QUEUE);
    let ann = ready(&mut e, t(0.0), "ann");
    e.arrive(t(1.0), arrival(1, "billing")).unwrap();
    assert_eq!(offers(&mut e), vec![(c(1), ann)]);
    assert_eq!(
        kinds(&mut e),
        vec![(c(1), "arrived"), (c(1), "queued"), (c(1), "offered")]
    );
    e.check_invariants().unwrap();
}

#[test]
fn contacts_are_served_by_priority_then_age() {
    let mut e = engine(ONE_QUEUE);
    e.arrive(t(1.0), arrival(1, "billing")).unwrap();
    e.arrive(
        t(2.0),
        Arrival {
            priority: Some(5),
            ..arrival(2, "billing")
        },
    )
    .unwrap();
    e.arrive(t(3.0), arrival(3, "billing")).unwrap();
    let ann = ready(&mut e, t(4.0), "ann");
    assert_eq!(offers(&mut e), vec![(c(2), ann)]);
    handle(&mut e, t(5.0), c(2), ann);
    assert_eq!(offers(&mut e), vec![(c(1), ann)]);
    handle(&mut e, t(6.0), c(1), ann);
    assert_eq!(offers(&mut e), vec![(c(3), ann)]);
    e.check_invariants().unwrap();
}

#[test]
fn a_rejected_contact_returns_to_its_place_not_the_tail() {
    let mut e = engine(ONE_QUEUE);
    e.arrive(t(1.0), arrival(1, "billing")).unwrap();
    e.arrive(t(2.0), arrival(2, "billing")).unwrap();
    let ann = ready(&mut e, t(3.0), "ann");
    assert_eq!(offers(&mut e), vec![(c(1), ann)]);
    e.declined(t(4.0), c(1), ann, DeclineReason::Rejected)
        .unwrap();
    // Ann is skipped for contact 1 for a while, so she gets contact 2; contact 1 keeps
    // the head of the line for the next agent.
    assert_eq!(offers(&mut e), vec![(c(2), ann)]);
    let bob = ready(&mut e, t(5.0), "bob");
    assert_eq!(offers(&mut e), vec![(c(1), bob)]);
    e.check_invariants().unwrap();
}

#[test]
fn answering_an_expired_offer_is_refused_and_changes_nothing() {
    let mut e = engine(ONE_QUEUE);
    let ann = ready(&mut e, t(0.0), "ann");
    e.arrive(t(1.0), arrival(1, "billing")).unwrap();
    offers(&mut e);
    e.declined(t(16.0), c(1), ann, DeclineReason::NoAnswer)
        .unwrap();
    let err = e.accepted(t(17.0), c(1), ann).unwrap_err();
    assert!(matches!(err, AcdError::NotOffered { .. }), "{err}");
    assert_eq!(e.contact_state(c(1)), Some(ContactState::Queued));
    e.check_invariants().unwrap();
}

#[test]
fn a_caller_hanging_up_while_offered_is_an_abandon_and_withdraws_the_offer() {
    let mut e = engine(ONE_QUEUE);
    let ann = ready(&mut e, t(0.0), "ann");
    e.arrive(t(10.0), arrival(1, "billing")).unwrap();
    offers(&mut e);
    kinds(&mut e);
    e.hang_up(t(12.5), c(1)).unwrap();
    let effects: Vec<_> = e.drain_effects().collect();
    assert_eq!(
        effects,
        vec![Effect::Rescind {
            agent_ix: ann,
            contact: c(1)
        }]
    );
    let events: Vec<Event> = e.drain_events().collect();
    let EventBody::Contact(ev) = &events[0].body else {
        panic!()
    };
    assert_eq!(
        ev.kind,
        ContactEventKind::Abandoned {
            wait_ms: 2500,
            while_offered: true
        }
    );
    assert_eq!(e.contact_state(c(1)), None);
    // Ann is free again at once.
    e.arrive(t(13.0), arrival(2, "billing")).unwrap();
    assert_eq!(offers(&mut e), vec![(c(2), ann)]);
    e.check_invariants().unwrap();
}

#[test]
fn unknown_tenant_queue_or_channel_is_refused_and_changes_nothing() {
    let mut e = engine(ONE_QUEUE);
    let err = e
        .arrive(
            t(1.0),
            Arrival {
                tenant: "nobody".parse().unwrap(),
                ..arrival(1, "billing")
            },
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "unknown tenant nobody");
    let err = e.arrive(t(1.0), arrival(1, "sales")).unwrap_err();
    assert_eq!(err.to_string(), "tenant acme has no queue sales");
    let err = e
        .arrive(
            t(1.0),
            Arrival {
                channel: Channel::Chat,
                ..arrival(1, "billing")
            },
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "queue billing takes voice contacts, not chat"
    );
    assert_eq!(e.contact_count(), 0);
    assert!(kinds(&mut e).is_empty());
    e.arrive(t(1.0), arrival(1, "billing")).unwrap();
    assert!(matches!(
        e.arrive(t(1.0), arrival(1, "billing")),
        Err(AcdError::DuplicateContact(_))
    ));
}

fn strategy_engine(strategy: &str) -> Engine {
    engine(&format!(
        r#"
[[queue]]
tenant = "acme"
id = "q"
strategy = "{strategy}"
skills = [{{ skill = "billing" }}, {{ skill = "english" }}]
[[queue]]
tenant = "acme"
id = "other"
skills = [{{ skill = "general" }}]
[[agent]]
id = "a0"
serves = [{{ tenant = "acme", skills = [{{ skill = "billing", level = 2 }}, {{ skill = "english", level = 2 }}, {{ skill = "general", level = 1 }}] }}]
[[agent]]
id = "a1"
serves = [{{ tenant = "acme", skills = [{{ skill = "billing", level = 5 }}, {{ skill = "english", level = 4 }}, {{ skill = "general", level = 1 }}] }}]
[[agent]]
id = "a2"
serves = [{{ tenant = "acme", skills = [{{ skill = "billing", level = 3 }}, {{ skill = "english", level = 3 }}, {{ skill = "general", level = 1 }}] }}]
"#
    ))
}

#[test]
fn longest_idle_picks_the_agent_free_the_longest() {
    let mut e = strategy_engine("longest_idle");
    ready(&mut e, t(2.0), "a0");
    let a1 = ready(&mut e, t(1.0), "a1");
    ready(&mut e, t(3.0), "a2");
    e.arrive(t(5.0), arrival(1, "q")).unwrap();
    assert_eq!(offers(&mut e), vec![(c(1), a1)]);
}

#[test]
fn most_skilled_picks_the_highest_proficiency_then_the_longest_idle() {
    let mut e = strategy_engine("most_skilled");
    ready(&mut e, t(1.0), "a0");
    ready(&mut e, t(2.0), "a2");
    let a1 = ready(&mut e, t(3.0), "a1");
    e.arrive(t(5.0), arrival(1, "q")).unwrap();
    assert_eq!(offers(&mut e), vec![(c(1), a1)]);
}

#[test]
fn round_robin_takes_agents_in_turn() {
    let mut e = strategy_engine("round_robin");
    for a in ["a0", "a1", "a2"] {
        ready(&mut e, t(0.0), a);
    }
    let mut order = vec![];
    for n in 1..=4u128 {
        e.arrive(t(n as f64), arrival(n, "q")).unwrap();
        let o = offers(&mut e);
        let (_, a) = o[0];
        order.push(a);
        handle(&mut e, t(n as f64), c(n), a);
        offers(&mut e);
    }
    assert_eq!(order, vec![0, 1, 2, 0]);
}

#[test]
fn fewest_contacts_picks_the_agent_who_handled_the_fewest() {
    let mut e = strategy_engine("fewest_contacts");
    let a0 = ready(&mut e, t(0.0), "a0");
    // a0 handles two contacts from another queue; a1 handles one.
    for n in 1..=2u128 {
        e.arrive(t(1.0), arrival(n, "other")).unwrap();
        offers(&mut e);
        handle(&mut e, t(2.0), c(n), a0);
    }
    let a1 = ready(&mut e, t(2.0), "a1");
    e.arrive(t(3.0), arrival(3, "other")).unwrap();
    assert_eq!(offers(&mut e), vec![(c(3), a0)]);
    handle(&mut e, t(3.0), c(3), a0);
    let a2 = ready(&mut e, t(4.0), "a2");
    e.arrive(t(5.0), arrival(4, "q")).unwrap();
    let got = offers(&mut e);
    assert!(
        got == vec![(c(4), a1)] || got == vec![(c(4), a2)],
        "{got:?}"
    );
    assert_ne!(got[0].1, a0);
}

#[test]
fn least_occupied_picks_the_agent_with_the_lowest_occupancy() {
    let mut e = strategy_engine("least_occupied");
    let a0 = ready(&mut e, t(0.0), "a0");
    let a1 = ready(&mut e, t(0.0), "a1");
    // a0 is idle longer, but busy 90 of 100 s; a1 busy 10 of 100 s.
    e.arrive(t(0.0), arrival(1, "other")).unwrap();
    let first = offers(&mut e)[0].1;
    let (busy_long, busy_short) = if first == a0 { (a0, a1) } else { (a1, a0) };
    e.accepted(t(0.0), c(1), busy_long).unwrap();
    e.arrive(t(0.0), arrival(2, "other")).unwrap();
    offers(&mut e);
    e.accepted(t(0.0), c(2), busy_short).unwrap();
    e.ended(t(10.0), c(2), busy_short).unwrap();
    e.wrap_up_done(t(10.0), c(2), busy_short).unwrap();
    e.ended(t(90.0), c(1), busy_long).unwrap();
    e.wrap_up_done(t(90.0), c(1), busy_long).unwrap();
    // Longest idle would pick busy_short (free since 10 s); least occupied agrees, so
    // make it disagree: busy_short becomes the most recently free.
    e.arrive(t(95.0), arrival(3, "other")).unwrap();
    let o = offers(&mut e)[0].1;
    handle(&mut e, t(95.0), c(3), o);
    e.arrive(t(100.0), arrival(4, "q")).unwrap();
    assert_eq!(offers(&mut e), vec![(c(4), busy_short)]);
}

const BULLSEYE: &str = r#"
[[queue]]
tenant = "acme"
id = "vip"
skills = [{ skill = "billing", min = 5 }, { skill = "spanish", min = 3 }]
[[queue.expand]]
after_secs = 10
relax = { skill = "billing", min = 3 }
[[queue.expand]]
after_secs = 20
drop = "spanish"
[[queue.expand]]
after_secs = 30
add = { skill = "general", min = 4 }
[[queue.expand]]
after_secs = 40
widen_to = "other"

[[queue]]
tenant = "acme"
id = "other"
skills = [{ skill = "english" }]

[[agent]]
id = "relaxed"
serves = [{ tenant = "acme", skills = [{ skill = "billing", level = 3 }, { skill = "spanish", level = 3 }] }]
[[agent]]
id = "dropped"
serves = [{ tenant = "acme", skills = [{ skill = "billing", level = 4 }] }]
[[agent]]
id = "alternative"
serves = [{ tenant = "acme", skills = [{ skill = "general", level = 4 }] }]
[[agent]]
id = "widened"
serves = [{ tenant = "acme", skills = [{ skill = "english", level = 1 }] }]
"#;

#[test]
fn bullseye_steps_relax_drop_add_and_widen_in_time() {
    for (agent, step_secs) in [
        ("relaxed", 10.0),
        ("dropped", 20.0),
        ("alternative", 30.0),
        ("widened", 40.0),
    ] {
        let mut e = engine(BULLSEYE);
        let ix = ready(&mut e, t(0.0), agent);
        e.arrive(t(0.0), arrival(1, "vip")).unwrap();
        assert!(offers(&mut e).is_empty(), "{agent} took it before any step");
        e.tick(t(step_secs - 0.001));
        assert!(offers(&mut e).is_empty(), "{agent} took it too early");
        assert_eq!(e.next_deadline(), Some(t(step_secs)), "{agent}");
        e.tick(t(step_secs));
        assert_eq!(offers(&mut e), vec![(c(1), ix)], "{agent}");
        let expanded = kinds(&mut e)
            .iter()
            .filter(|(_, k)| *k == "expanded")
            .count();
        assert!(expanded >= 1);
        e.check_invariants().unwrap();
    }
}

#[test]
fn a_free_agent_takes_only_contacts_whose_step_reaches_it() {
    let mut e = engine(BULLSEYE);
    e.arrive(t(0.0), arrival(1, "vip")).unwrap();
    e.arrive(t(15.0), arrival(2, "vip")).unwrap();
    e.tick(t(15.0));
    let ix = ready(&mut e, t(16.0), "dropped");
    assert!(offers(&mut e).is_empty());
    e.tick(t(20.0));
    // Contact 1 reached the "drop spanish" step; contact 2 has not.
    assert_eq!(offers(&mut e), vec![(c(1), ix)]);
}

fn limits(extra: &str) -> Engine {
    engine(&format!(
        r#"
[[queue]]
tenant = "acme"
id = "main"
skills = [{{ skill = "billing" }}]
{extra}
[[queue]]
tenant = "acme"
id = "backup"
skills = [{{ skill = "general" }}]
[[agent]]
id = "ann"
serves = [{{ tenant = "acme", skills = [{{ skill = "billing", level = 3 }}] }}]
[[agent]]
id = "gus"
serves = [{{ tenant = "acme", skills = [{{ skill = "general", level = 3 }}] }}]
"#
    ))
}

fn terminal_kind(e: &mut Engine, contact: ContactId) -> Option<ContactEventKind> {
    e.drain_events().find_map(|ev| match ev.body {
        EventBody::Contact(c) if c.contact == contact && c.kind.is_terminal() => Some(c.kind),
        _ => None,
    })
}

#[test]
fn a_full_queue_overflows_arrivals_to_its_backup_queue() {
    let mut e = limits("max_size = 1\nwhen_full = { action = \"overflow\", queue = \"backup\" }");
    e.arrive(t(0.0), arrival(1, "main")).unwrap();
    e.arrive(t(1.0), arrival(2, "main")).unwrap();
    let gus = ready(&mut e, t(2.0), "gus");
    assert_eq!(offers(&mut e), vec![(c(2), gus)]);
    let overflowed = kinds(&mut e)
        .into_iter()
        .filter(|(_, k)| *k == "overflowed")
        .collect::<Vec<_>>();
    assert_eq!(overflowed, vec![(c(2), "overflowed")]);
    e.check_invariants().unwrap();
}

#[test]
fn a_full_queue_can_send_arrivals_to_voicemail_or_disconnect_them() {
    let mut e = limits("max_size = 1\nwhen_full = { action = \"voicemail\" }");
    e.arrive(t(0.0), arrival(1, "main")).unwrap();
    e.arrive(t(1.0), arrival(2, "main")).unwrap();
    assert!(matches!(
        terminal_kind(&mut e, c(2)),
        Some(ContactEventKind::Voicemail { .. })
    ));
    let mut e = limits("max_size = 1");
    e.arrive(t(0.0), arrival(1, "main")).unwrap();
    e.arrive(t(1.0), arrival(2, "main")).unwrap();
    assert_eq!(
        terminal_kind(&mut e, c(2)),
        Some(ContactEventKind::Failed {
            reason: hotline_core::contact::FailReason::QueueFull
        })
    );
    e.check_invariants().unwrap();
}

#[test]
fn the_maximum_wait_applies_the_queue_policy_at_its_time() {
    let mut e = limits("max_wait_secs = 60\non_max_wait = { action = \"disconnect\" }");
    e.arrive(t(0.0), arrival(1, "main")).unwrap();
    e.tick(t(59.9));
    assert_eq!(e.contact_state(c(1)), Some(ContactState::Queued));
    e.tick(t(60.0));
    assert_eq!(e.contact_state(c(1)), None);
    assert_eq!(
        terminal_kind(&mut e, c(1)),
        Some(ContactEventKind::Failed {
            reason: hotline_core::contact::FailReason::MaxWait
        })
    );
}

#[test]
fn a_callback_offered_at_max_wait_keeps_its_place_in_line() {
    let mut e = limits("max_wait_secs = 30\non_max_wait = { action = \"callback\" }");
    e.arrive(t(0.0), arrival(1, "main")).unwrap();
    e.arrive(t(5.0), arrival(2, "main")).unwrap();
    e.tick(t(30.0));
    assert!(kinds(&mut e).contains(&(c(1), "callback_offered")));
    e.request_callback(t(31.0), c(1)).unwrap();
    assert_eq!(e.contact_state(c(1)), Some(ContactState::CallbackRequested));
    // A callback cannot be abandoned: the customer is not on the line.
    assert!(e.hang_up(t(32.0), c(1)).is_err());
    let ann = ready(&mut e, t(40.0), "ann");
    let offer = e
        .drain_effects()
        .find_map(|f| match f {
            Effect::Offer(o) => Some(o),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (offer.contact, offer.agent_ix, offer.callback),
        (c(1), ann, true)
    );
    e.check_invariants().unwrap();
}

#[test]
fn with_no_agent_logged_in_an_arrival_follows_the_queue_policy() {
    let mut e = limits("when_no_agents = { action = \"overflow\", queue = \"backup\" }");
    e.arrive(t(0.0), arrival(1, "main")).unwrap();
    assert!(kinds(&mut e).contains(&(c(1), "overflowed")));
    // Once an eligible agent is logged in (even not ready), arrivals stay.
    let ann = e.agent_index(&"ann".parse().unwrap()).unwrap();
    e.set_availability(
        t(1.0),
        ann,
        Availability {
            logged_in: true,
            ready: false,
            status: AgentStatus::NotReady("break".into()),
        },
    );
    e.arrive(t(2.0), arrival(2, "main")).unwrap();
    assert!(!kinds(&mut e).contains(&(c(2), "overflowed")));
    assert_eq!(e.contact_state(c(2)), Some(ContactState::Queued));
}

#[test]
fn overflow_loops_in_configuration_end_the_contact_instead_of_bouncing_forever() {
    let mut e = engine(
        r#"
[[queue]]
tenant = "acme"
id = "a"
max_size = 1
when_full = { action = "overflow", queue = "b" }
[[queue]]
tenant = "acme"
id = "b"
max_size = 1
when_full = { action = "overflow", queue = "a" }
"#,
    );
    e.arrive(t(0.0), arrival(1, "a")).unwrap();
    e.arrive(t(0.0), arrival(2, "b")).unwrap();
    e.arrive(t(0.0), arrival(3, "a")).unwrap();
    assert!(matches!(
        terminal_kind(&mut e, c(3)),
        Some(ContactEventKind::Failed { .. })
    ));
    e.check_invariants().unwrap();
}

#[test]
fn a_chat_agent_takes_up_to_three_chats_and_a_shared_agent_serves_two_tenants() {
    let mut e = engine(
        r#"
[[queue]]
tenant = "acme"
id = "chat"
channel = "chat"
skills = [{ skill = "english" }]
[[queue]]
tenant = "globex"
id = "help"
skills = [{ skill = "support" }]
[[agent]]
id = "sam"
capacity = { voice = 1, chat = 3 }
serves = [
  { tenant = "acme", skills = [{ skill = "english", level = 2 }] },
  { tenant = "globex", skills = [{ skill = "support", level = 2 }] },
]
"#,
    );
    let sam = ready(&mut e, t(0.0), "sam");
    for n in 1..=4u128 {
        e.arrive(
            t(n as f64),
            Arrival {
                channel: Channel::Chat,
                ..arrival(n, "chat")
            },
        )
        .unwrap();
    }
    let got = offers(&mut e);
    assert_eq!(got, vec![(c(1), sam), (c(2), sam), (c(3), sam)]);
    e.arrive(
        t(5.0),
        Arrival {
            tenant: "globex".parse().unwrap(),
            ..arrival(9, "help")
        },
    )
    .unwrap();
    assert_eq!(offers(&mut e), vec![(c(9), sam)]);
    e.accepted(t(6.0), c(1), sam).unwrap();
    e.ended(t(7.0), c(1), sam).unwrap();
    e.wrap_up_done(t(8.0), c(1), sam).unwrap();
    assert_eq!(offers(&mut e), vec![(c(4), sam)]);
    e.check_invariants().unwrap();
}

#[test]
fn a_failed_agent_session_returns_its_offers_and_keeps_its_conversations() {
    let mut e = engine(ONE_QUEUE);
    let ann = ready(&mut e, t(0.0), "ann");
    e.arrive(t(1.0), arrival(1, "billing")).unwrap();
    offers(&mut e);
    e.accepted(t(2.0), c(1), ann).unwrap();
    let r = e.agent_failed(t(3.0), ann);
    assert!(r.was_ready);
    assert_eq!(r.slots.len(), 1);
    assert_eq!(r.slots[0].0.contact, c(1));
    // Not offered anything until the new session reports in.
    e.arrive(t(4.0), arrival(2, "billing")).unwrap();
    assert!(offers(&mut e).is_empty());
    e.check_invariants().unwrap();
}

#[test]
fn a_supervisor_move_keeps_the_contacts_age_in_the_new_queue() {
    let mut e = limits("");
    e.arrive(t(0.0), arrival(1, "main")).unwrap();
    e.arrive(t(5.0), arrival(2, "backup")).unwrap();
    e.move_contact(
        t(10.0),
        c(1),
        &QueueId::new("backup").unwrap(),
        "supervisor",
    )
    .unwrap();
    let gus = ready(&mut e, t(11.0), "gus");
    assert_eq!(offers(&mut e), vec![(c(1), gus)]);
    let err = e
        .move_contact(t(12.0), c(2), &QueueId::new("nope").unwrap(), "supervisor")
        .unwrap_err();
    assert_eq!(err.to_string(), "tenant acme has no queue nope");
}

#[test]
fn a_restarted_engine_puts_back_from_the_journal_what_the_first_one_left_open() {
    let mut e = limits("");
    e.keep_journal();
    let ann = ready(&mut e, t(0.0), "ann");
    e.arrive(t(1.0), arrival(3, "main")).unwrap();
    handle(&mut e, t(2.0), c(3), ann);
    e.arrive(t(3.0), arrival(2, "main")).unwrap();
    e.accepted(t(4.0), c(2), ann).unwrap();
    e.arrive(t(5.0), arrival(1, "main")).unwrap();
    let backup = QueueId::new("backup").unwrap();
    e.move_contact(t(6.0), c(1), &backup, "supervisor").unwrap();
    e.request_callback(t(7.0), c(1)).unwrap();
    let mut journal = crate::journal::Journal::default();
    journal.apply(e.journal_ops());
    let open = journal.contacts();
    // The ended contact is gone; the others are in arrival order, the moved one with
    // its first arrival time kept.
    assert_eq!(
        open.iter().map(|j| j.contact).collect::<Vec<_>>(),
        vec![c(2), c(1)]
    );
    assert_eq!(
        (open[1].queued_at, open[1].in_queue_since),
        (t(5.0), t(6.0))
    );

    let mut r = limits("");
    let ann = ready(&mut r, t(8.0), "ann");
    let held: Vec<_> = open
        .iter()
        .map(|j| r.restore_contact(t(8.0), j).unwrap())
        .collect();
    assert_eq!(
        held[0].map(|(a, s, _)| (a, s.contact, s.phase)),
        Some((ann, c(2), SlotPhase::OnContact))
    );
    assert_eq!(held[1], None);
    assert_eq!(r.contact_state(c(1)), Some(ContactState::CallbackRequested));
    r.rematch(t(8.0));
    assert!(offers(&mut r).is_empty());
    // Still waiting in the queue it was moved to.
    let gus = ready(&mut r, t(9.0), "gus");
    assert_eq!(offers(&mut r), vec![(c(1), gus)]);
    r.check_invariants().unwrap();
}

#[test]
fn the_snapshot_shows_waiting_contacts_oldest_wait_and_agents_by_state() {
    let mut e = engine(ONE_QUEUE);
    e.arrive(t(0.0), arrival(1, "billing")).unwrap();
    e.arrive(t(5.0), arrival(2, "billing")).unwrap();
    let ann = ready(&mut e, t(6.0), "ann");
    e.accepted(t(7.0), c(1), ann).unwrap();
    let snap = e.snapshot(t(10.0));
    let q = &snap.queues[0];
    assert_eq!((q.waiting, q.offered), (1, 0));
    assert!((q.oldest_wait_secs - 5.0).abs() < 1e-9);
    assert_eq!(q.counters.answered, 1);
    assert_eq!(snap.agents[0].status, AgentStatus::OnContact);
    assert_eq!(snap.agents[1].status, AgentStatus::LoggedOut);
}

#[derive(Debug, Clone)]
enum Op {
    Arrive(u8),
    Ready(u8),
    NotReady(u8),
    Accept(u8),
    Decline(u8),
    End(u8),
    Finish(u8),
    HangUp(u8),
    Advance(u8),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..2).prop_map(Op::Arrive),
        1 => (0u8..4).prop_map(Op::Ready),
        1 => (0u8..4).prop_map(Op::NotReady),
        2 => any::<u8>().prop_map(Op::Accept),
        1 => any::<u8>().prop_map(Op::Decline),
        2 => any::<u8>().prop_map(Op::End),
        2 => any::<u8>().prop_map(Op::Finish),
        1 => any::<u8>().prop_map(Op::HangUp),
        1 => (1u8..60).prop_map(Op::Advance),
    ]
}

const FUZZ: &str = r#"
[[queue]]
tenant = "acme"
id = "q0"
skills = [{ skill = "billing", min = 4 }]
max_size = 4
when_full = { action = "overflow", queue = "q1" }
max_wait_secs = 90
on_max_wait = { action = "voicemail" }
[[queue.expand]]
after_secs = 20
relax = { skill = "billing", min = 1 }
[[queue]]
tenant = "acme"
id = "q1"
strategy = "round_robin"
skills = [{ skill = "general" }]
wrap_up_secs = 5
[[agent]]
id = "a0"
serves = [{ tenant = "acme", skills = [{ skill = "billing", level = 5 }] }]
[[agent]]
id = "a1"
serves = [{ tenant = "acme", skills = [{ skill = "billing", level = 2 }, { skill = "general", level = 2 }] }]
[[agent]]
id = "a2"
capacity = { voice = 1 }
serves = [{ tenant = "acme", skills = [{ skill = "general", level = 2 }] }]
[[agent]]
id = "a3"
serves = [{ tenant = "acme", skills = [{ skill = "billing", level = 4 }, { skill = "general", level = 5 }] }]
"#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random sequences of arrivals, agent moves, answers, hang-ups and time: after every
    /// step the engine is consistent (no agent over capacity, every offer names one agent,
    /// waiting sets exact), and once everyone is served every arrival has exactly one
    /// terminal event.
    #[test]
    fn random_operations_keep_the_engine_consistent_and_lose_no_contact(
        ops in proptest::collection::vec(op(), 1..120)
    ) {
        let mut e = engine(FUZZ);
        let mut now = 0.0;
        let mut next = 1u128;
        let mut events: Vec<Event> = vec![];
        let mut offered: Vec<(ContactId, u32)> = vec![];
        let mut connected: Vec<(ContactId, u32)> = vec![];
        let mut wrapping: Vec<(ContactId, u32)> = vec![];
        let pick = |v: &mut Vec<(ContactId, u32)>, i: u8| -> Option<(ContactId, u32)> {
            if v.is_empty() { None } else { let k = i as usize % v.len(); Some(v.remove(k)) }
        };
        for op in ops {
            let at = t(now);
            match op {
                Op::Arrive(q) => {
                    e.arrive(at, arrival(next, &format!("q{q}"))).unwrap();
                    next += 1;
                }
                Op::Ready(a) => { ready(&mut e, at, &format!("a{a}")); }
                Op::NotReady(a) => e.set_availability(at, u32::from(a), Availability {
                    logged_in: true, ready: false, status: AgentStatus::NotReady("break".into()),
                }),
                Op::Accept(i) => if let Some((c, a)) = pick(&mut offered, i) {
                    e.accepted(at, c, a).unwrap();
                    connected.push((c, a));
                },
                Op::Decline(i) => if let Some((c, a)) = pick(&mut offered, i) {
                    e.declined(at, c, a, DeclineReason::Rejected).unwrap();
                },
                Op::End(i) => if let Some((c, a)) = pick(&mut connected, i) {
                    e.ended(at, c, a).unwrap();
                    wrapping.push((c, a));
                },
                Op::Finish(i) => if let Some((c, a)) = pick(&mut wrapping, i) {
                    e.wrap_up_done(at, c, a).unwrap();
                },
                Op::HangUp(i) => {
                    let live: Vec<ContactId> = (1..next).map(c).filter(|&x| {
                        matches!(e.contact_state(x), Some(ContactState::Queued | ContactState::Offered | ContactState::Connected))
                    }).collect();
                    if !live.is_empty() {
                        let x = live[i as usize % live.len()];
                        let was = e.contact_state(x);
                        e.hang_up(at, x).unwrap();
                        offered.retain(|(y, _)| *y != x);
                        if was == Some(ContactState::Connected)
                            && let Some(k) = connected.iter().position(|(y, _)| *y == x)
                        {
                            wrapping.push(connected.remove(k));
                        }
                    }
                }
                Op::Advance(s) => { now += f64::from(s); e.tick(t(now)); }
            }
            for f in e.drain_effects() {
                match f {
                    Effect::Offer(o) => offered.push((o.contact, o.agent_ix)),
                    Effect::Rescind { contact, .. } => offered.retain(|(y, _)| *y != contact),
                    Effect::CustomerEnded { .. } | Effect::Transferred { .. } => {}
                }
            }
            events.extend(e.drain_events());
            prop_assert_eq!(e.check_invariants(), Ok(()));
            let mut seen: Vec<ContactId> = offered.iter().map(|(c, _)| *c).collect();
            seen.sort();
            seen.dedup();
            prop_assert_eq!(seen.len(), offered.len(), "a contact offered twice at once");
        }
        // Drain: everyone ready, answer everything, and wait out the voicemail limit.
        for a in 0..4 { ready(&mut e, t(now), &format!("a{a}")); }
        for _ in 0..1000 {
            for f in e.drain_effects() {
                if let Effect::Offer(o) = f { offered.push((o.contact, o.agent_ix)); }
            }
            if let Some((c, a)) = offered.pop() { e.accepted(t(now), c, a).unwrap(); connected.push((c, a)); continue; }
            if let Some((c, a)) = connected.pop() { e.ended(t(now), c, a).unwrap(); wrapping.push((c, a)); continue; }
            if let Some((c, a)) = wrapping.pop() { e.wrap_up_done(t(now), c, a).unwrap(); continue; }
            if e.contact_count() == 0 { break; }
            now += 30.0;
            e.tick(t(now));
        }
        events.extend(e.drain_events());
        prop_assert_eq!(e.contact_count(), 0);
        let mut terminal = std::collections::HashMap::<ContactId, u32>::new();
        for ev in &events {
            if let EventBody::Contact(c) = &ev.body && c.kind.is_terminal() {
                *terminal.entry(c.contact).or_default() += 1;
            }
        }
        for n in 1..next {
            prop_assert_eq!(terminal.get(&c(n)).copied(), Some(1), "contact {} terminal events", n);
        }
        let _ = Duration::ZERO;
    }
}

#[test]
fn agents_failing_together_never_receive_each_others_returned_offers() {
    let mut e = engine(ONE_QUEUE);
    let ann = ready(&mut e, t(0.0), "ann");
    let bob = ready(&mut e, t(0.5), "bob");
    e.arrive(t(1.0), arrival(1, "billing")).unwrap();
    assert_eq!(offers(&mut e), vec![(c(1), ann)]);
    let r = e.agents_failed(t(2.0), &[ann, bob]);
    assert_eq!(r.len(), 2);
    // Contact 1 went back in line, not to bob (who failed with ann).
    assert!(offers(&mut e).is_empty());
    assert_eq!(e.contact_state(c(1)), Some(ContactState::Queued));
    e.check_invariants().unwrap();
}

#[test]
fn when_the_last_eligible_agent_logs_out_waiting_contacts_follow_the_no_agents_policy() {
    let mut e = limits("when_no_agents = { action = \"overflow\", queue = \"backup\" }");
    let ann = ready(&mut e, t(0.0), "ann");
    e.arrive(t(1.0), arrival(1, "main")).unwrap();
    assert_eq!(offers(&mut e), vec![(c(1), ann)]);
    e.accepted(t(1.0), c(1), ann).unwrap();
    e.arrive(t(2.0), arrival(2, "main")).unwrap();
    e.arrive(t(3.0), arrival(3, "main")).unwrap();
    // Going not ready keeps the contacts waiting: ann is still logged in.
    e.set_availability(
        t(4.0),
        ann,
        Availability {
            logged_in: true,
            ready: false,
            status: AgentStatus::NotReady("break".into()),
        },
    );
    assert_eq!(e.contact_state(c(2)), Some(ContactState::Queued));
    kinds(&mut e);
    e.ended(t(5.0), c(1), ann).unwrap();
    e.wrap_up_done(t(5.0), c(1), ann).unwrap();
    e.set_availability(
        t(6.0),
        ann,
        Availability {
            logged_in: false,
            ready: false,
            status: AgentStatus::LoggedOut,
        },
    );
    let moved: Vec<_> = kinds(&mut e)
        .into_iter()
        .filter(|(_, k)| *k == "overflowed")
        .collect();
    assert_eq!(moved, vec![(c(2), "overflowed"), (c(3), "overflowed")]);
    // In the backup queue they keep their order.
    let gus = ready(&mut e, t(7.0), "gus");
    assert_eq!(offers(&mut e), vec![(c(2), gus)]);
    e.check_invariants().unwrap();
}

// === transfers ===

const TRANSFER: &str = r#"
[[queue]]
tenant = "acme"
id = "billing"
skills = [{ skill = "billing", min = 1 }]
wrap_up_secs = 30

[[queue]]
tenant = "acme"
id = "general"
skills = [{ skill = "general", min = 1 }]

[[queue]]
tenant = "acme"
id = "webchat"
channel = "chat"
skills = [{ skill = "general", min = 1 }]

[[queue]]
tenant = "globex"
id = "support"
skills = [{ skill = "support", min = 1 }]

[[agent]]
id = "ann"
capacity = { voice = 1, chat = 3 }
serves = [{ tenant = "acme", skills = [{ skill = "billing", level = 3 }, { skill = "general", level = 3 }] }]
[[agent]]
id = "bob"
serves = [{ tenant = "acme", skills = [{ skill = "general", level = 3 }] }]
"#;

fn queue(id: &str) -> QueueId {
    QueueId::new(id).unwrap()
}

/// Ann answers contact 1 in billing; returns Ann's index.
fn ann_in_conversation(e: &mut Engine) -> u32 {
    let ann = ready(e, t(0.0), "ann");
    e.arrive(t(1.0), arrival(1, "billing")).unwrap();
    assert_eq!(offers(e), vec![(c(1), ann)]);
    e.accepted(t(2.0), c(1), ann).unwrap();
    kinds(e);
    ann
}

#[test]
fn a_transferred_contact_waits_in_the_target_queue_while_the_agent_wraps_up() {
    let mut e = engine(TRANSFER);
    let ann = ann_in_conversation(&mut e);
    e.transfer(t(10.0), c(1), ann, &queue("general")).unwrap();
    let effects: Vec<_> = e.drain_effects().collect();
    assert_eq!(
        effects,
        vec![Effect::Transferred {
            agent_ix: ann,
            contact: c(1)
        }],
        "no offer to Ann, who is wrapping it up"
    );
    let events: Vec<Event> = e.drain_events().collect();
    let contact_events: Vec<_> = events
        .iter()
        .filter_map(|ev| match &ev.body {
            EventBody::Contact(ce) => Some(ce.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(contact_events.len(), 2, "{contact_events:?}");
    assert_eq!(
        contact_events[0].kind,
        ContactEventKind::Transferred {
            to: OverflowTarget::Queue(queue("general"))
        }
    );
    assert_eq!(contact_events[0].queue, Some(queue("billing")));
    assert_eq!(
        contact_events[0].agent.as_ref().map(|a| a.as_str()),
        Some("ann")
    );
    assert_eq!(
        contact_events[1].kind,
        ContactEventKind::Queued { priority: 0 }
    );
    assert_eq!(contact_events[1].queue, Some(queue("general")));
    assert_eq!(e.contact_state(c(1)), Some(ContactState::Queued));
    e.check_invariants().unwrap();
    let snap = e.snapshot(t(10.0));
    let ann_snap = &snap.agents[ann as usize];
    assert_eq!(ann_snap.status, AgentStatus::WrapUp);
    assert_eq!(
        ann_snap.used,
        [1, 0, 0],
        "Ann's slot stays taken in wrap-up"
    );
    let general = snap
        .queues
        .iter()
        .find(|q| q.queue.as_str() == "general")
        .unwrap();
    assert_eq!(general.waiting, 1);
    assert_eq!(
        general.oldest_wait_secs, 0.0,
        "the new wait starts at the transfer"
    );

    // Bob takes it; its offer says it waited from the transfer.
    let bob = ready(&mut e, t(12.0), "bob");
    let offered: Vec<_> = e.drain_effects().collect();
    match offered.as_slice() {
        [Effect::Offer(o)] => {
            assert_eq!((o.contact, o.agent_ix, o.waited_ms), (c(1), bob, 2000));
        }
        other => panic!("expected one offer to Bob, got {other:?}"),
    }
    handle(&mut e, t(20.0), c(1), bob);
    assert_eq!(e.contact_state(c(1)), None);
    // Ann's wrap-up of it ends later and frees her.
    e.wrap_up_done(t(25.0), c(1), ann).unwrap();
    e.check_invariants().unwrap();
    e.arrive(t(26.0), arrival(2, "billing")).unwrap();
    assert_eq!(offers(&mut e), vec![(c(2), ann)]);
    e.check_invariants().unwrap();
}

#[test]
fn a_transfer_the_engine_cannot_do_is_refused_and_changes_nothing() {
    let mut e = engine(TRANSFER);
    let ann = ann_in_conversation(&mut e);
    let bob = ready(&mut e, t(3.0), "bob");
    let before = format!("{:?}", e.snapshot(t(4.0)));
    let cases: [(u32, ContactId, &str, &str); 5] = [
        (ann, c(1), "nowhere", "tenant acme has no queue nowhere"),
        (ann, c(1), "support", "tenant acme has no queue support"),
        (
            ann,
            c(1),
            "webchat",
            "queue webchat takes chat contacts, not voice",
        ),
        (bob, c(1), "general", "not held by this agent"),
        (ann, c(9), "general", "unknown contact"),
    ];
    for (agent, contact, to, says) in cases {
        let err = e.transfer(t(4.0), contact, agent, &queue(to)).unwrap_err();
        assert!(err.to_string().contains(says), "{to}: {err}");
        assert_eq!(e.drain_effects().count(), 0);
        assert_eq!(e.drain_events().count(), 0);
    }
    assert_eq!(format!("{:?}", e.snapshot(t(4.0))), before);
    assert_eq!(e.contact_state(c(1)), Some(ContactState::Connected));
    e.check_invariants().unwrap();
}

#[test]
fn a_contact_still_ringing_cannot_be_transferred() {
    let mut e = engine(TRANSFER);
    let ann = ready(&mut e, t(0.0), "ann");
    e.arrive(t(1.0), arrival(1, "billing")).unwrap();
    offers(&mut e);
    let err = e
        .transfer(t(2.0), c(1), ann, &queue("general"))
        .unwrap_err();
    assert!(err.to_string().contains("cannot transfer"), "{err}");
    assert_eq!(e.contact_state(c(1)), Some(ContactState::Offered));
    e.check_invariants().unwrap();
}

#[test]
fn the_journal_restores_a_transferred_contact_as_waiting_in_its_new_queue() {
    let mut e = engine(TRANSFER);
    e.keep_journal();
    let ann = ann_in_conversation(&mut e);
    e.transfer(t(10.0), c(1), ann, &queue("general")).unwrap();
    let mut journal = crate::journal::Journal::default();
    journal.apply(e.journal_ops());
    let open = journal.contacts();
    assert_eq!(open.len(), 1);
    let general = e.queue_ix[0][&queue("general")];
    assert_eq!(
        (
            open[0].state,
            open[0].agent,
            open[0].queue,
            open[0].queued_at
        ),
        (ContactState::Queued, None, general, t(10.0))
    );
}

#[test]
fn an_agent_whose_shard_fails_keeps_its_transfer_wrap_up() {
    let mut e = engine(TRANSFER);
    let ann = ann_in_conversation(&mut e);
    e.transfer(t(10.0), c(1), ann, &queue("general")).unwrap();
    let recovery = e.agent_failed(t(11.0), ann);
    assert_eq!(recovery.slots.len(), 1);
    assert_eq!(recovery.slots[0].0.phase, SlotPhase::WrapUp);
    assert_eq!(recovery.slots[0].1, Duration::from_secs(30));
    e.check_invariants().unwrap();
}
