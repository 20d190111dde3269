//! The engine's half of cross-site overflow: holds at the origin, reservations and
//! transfers at the target.

use std::time::Duration;

use hotline_core::agent::AgentStatus;
use hotline_core::channel::Channel;
use hotline_core::event::EventBody;
use hotline_core::ids::{ContactId, QueueId, SiteId, TenantId};
use hotline_core::time::Timestamp;

use super::*;
use crate::config::SiteConfig;
use crate::ids::IdSource;

const SITE: &str = r#"
[[tenant]]
id = "acme"
skills = ["billing"]

[[queue]]
tenant = "acme"
id = "billing"
skills = [{ skill = "billing", min = 2 }]

[[agent]]
id = "ann"
serves = [{ tenant = "acme", skills = [{ skill = "billing", level = 3 }] }]
"#;

fn engine(site: &str) -> Engine {
    let text = format!("site = \"{site}\"\n{SITE}");
    let config = SiteConfig::from_toml(&text, "test.toml").unwrap();
    Engine::new(&config, IdSource::sequential(0)).unwrap()
}

fn t(secs: f64) -> Timestamp {
    Timestamp((secs * 1e6) as u64)
}

fn c(n: u128) -> ContactId {
    ContactId::from_u128(n)
}

fn tenant() -> TenantId {
    TenantId::new("acme").unwrap()
}

fn queue() -> QueueId {
    QueueId::new("billing").unwrap()
}

fn arrival(n: u128) -> Arrival {
    let mut a = Arrival::new(c(n), tenant(), queue(), Channel::Voice);
    a.customer = Some("+15550100".into());
    a
}

fn ready(e: &mut Engine, now: Timestamp) -> u32 {
    let ix = e.agent_index(&"ann".parse().unwrap()).unwrap();
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

fn kinds(e: &mut Engine) -> Vec<(ContactId, &'static str)> {
    e.drain_events()
        .filter_map(|ev| match ev.body {
            EventBody::Contact(c) => Some((c.contact, c.kind.name())),
            _ => None,
        })
        .collect()
}

fn offers(e: &mut Engine) -> Vec<(ContactId, u32)> {
    e.drain_effects()
        .filter_map(|f| match f {
            Effect::Offer(o) => Some((o.contact, o.agent_ix)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_held_contact_keeps_its_place_and_is_offered_to_nobody() {
    let mut o = engine("north");
    o.arrive(t(0.0), arrival(1)).unwrap();
    o.arrive(t(1.0), arrival(2)).unwrap();
    let held = o.hold(t(5.0), c(1)).unwrap();
    assert_eq!(held.waited_ms, 5_000);
    assert_eq!(held.customer.as_deref(), Some("+15550100"));
    o.check_invariants().unwrap();
    // An agent comes free: the held contact is skipped, the next one is offered.
    let ann = ready(&mut o, t(6.0));
    assert_eq!(offers(&mut o), vec![(c(2), ann)]);
    // A second hold of the same contact is refused, as is holding an offered one.
    assert!(matches!(
        o.hold(t(6.0), c(1)),
        Err(AcdError::NotHoldable { .. })
    ));
    assert!(matches!(
        o.hold(t(6.0), c(2)),
        Err(AcdError::NotHoldable { .. })
    ));
    // Released, it is back ahead of later arrivals.
    o.arrive(t(7.0), arrival(3)).unwrap();
    assert!(o.release_hold(t(8.0), c(1)).unwrap());
    let waiting = o.waiting_longer_than(t(8.0), &tenant(), &queue(), Duration::ZERO, 10);
    let order: Vec<ContactId> = waiting.iter().map(|w| w.0).collect();
    assert_eq!(
        order,
        vec![c(1), c(3)],
        "released contact first, in its place"
    );
    o.check_invariants().unwrap();
}

#[test]
fn a_transfer_moves_the_contact_with_one_terminal_event_per_site() {
    let mut o = engine("north");
    let mut s = engine("south");
    let ann = ready(&mut s, t(0.0));
    o.arrive(t(0.0), arrival(1)).unwrap();
    let moving = o.hold(t(30.0), c(1)).unwrap();
    let r = s
        .reserve(t(30.0), &tenant(), &queue(), Duration::from_secs(2))
        .unwrap();
    assert_eq!(r.agent.as_str(), "ann");
    s.check_invariants().unwrap();
    // While reserved, a local contact at the target does not get the agent.
    s.arrive(t(30.1), arrival(9)).unwrap();
    assert!(
        offers(&mut s).is_empty(),
        "the reserved slot is not offered"
    );
    s.hang_up(t(30.2), c(9)).unwrap();
    kinds(&mut s);
    s.transfer_in(t(30.5), r.id, moving.clone()).unwrap();
    assert_eq!(
        offers(&mut s),
        vec![(c(1), ann)],
        "offered to the reserved agent"
    );
    // A retried transfer is answered the same and changes nothing.
    s.transfer_in(t(30.6), r.id, moving.clone()).unwrap();
    assert!(offers(&mut s).is_empty());
    assert!(
        !o.transfer_out(t(30.6), c(1), &SiteId::new("south").unwrap(), "waited 30 s")
            .unwrap()
    );
    o.check_invariants().unwrap();
    s.check_invariants().unwrap();
    assert_eq!(
        kinds(&mut o),
        vec![(c(1), "arrived"), (c(1), "queued"), (c(1), "overflowed")]
    );
    let south: Vec<_> = s.drain_events().collect();
    assert!(
        south.iter().all(|e| e.trace == moving.trace),
        "one trace across sites"
    );
    let names: Vec<&str> = south
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Contact(c) => Some(c.kind.name()),
            _ => None,
        })
        .collect();
    assert_eq!(names, vec!["arrived", "queued", "offered"]);
    assert_eq!(o.contact_count(), 0);
}

#[test]
fn an_expired_reservation_gives_the_slot_back_and_refuses_the_late_transfer() {
    let mut o = engine("north");
    let mut s = engine("south");
    let ann = ready(&mut s, t(0.0));
    o.arrive(t(0.0), arrival(1)).unwrap();
    let moving = o.hold(t(1.0), c(1)).unwrap();
    let r = s
        .reserve(t(1.0), &tenant(), &queue(), Duration::from_secs(2))
        .unwrap();
    assert_eq!(s.next_deadline(), Some(t(3.0)));
    s.tick(t(3.0));
    s.check_invariants().unwrap();
    assert_eq!(
        s.transfer_in(t(3.1), r.id, moving),
        Err(TransferRefusal::UnknownReservation(r.id))
    );
    // The slot is free again: a local arrival gets the agent.
    s.arrive(t(3.2), arrival(5)).unwrap();
    assert_eq!(offers(&mut s), vec![(c(5), ann)]);
    // The origin takes its contact back.
    assert!(o.release_hold(t(3.2), c(1)).unwrap());
    o.check_invariants().unwrap();
}

#[test]
fn a_target_refuses_without_a_free_agent_or_with_its_own_line() {
    let mut s = engine("south");
    assert!(matches!(
        s.reserve(t(0.0), &tenant(), &queue(), Duration::from_secs(2)),
        Err(ReserveRefusal::NoAgent { .. })
    ));
    s.arrive(t(0.0), arrival(1)).unwrap();
    assert!(matches!(
        s.reserve(t(0.0), &tenant(), &queue(), Duration::from_secs(2)),
        Err(ReserveRefusal::LocalWaiting { waiting: 1, .. })
    ));
    assert!(matches!(
        s.reserve(
            t(0.0),
            &tenant(),
            &QueueId::new("nope").unwrap(),
            Duration::from_secs(2)
        ),
        Err(ReserveRefusal::UnknownQueue { .. })
    ));
    // A transfer that does not match its reservation is refused and changes nothing.
    let mut s = engine("south");
    ready(&mut s, t(0.0));
    let r = s
        .reserve(t(0.0), &tenant(), &queue(), Duration::from_secs(2))
        .unwrap();
    let mut wrong = engine("north");
    wrong.arrive(t(0.0), arrival(2)).unwrap();
    let mut moving = wrong.hold(t(0.0), c(2)).unwrap();
    moving.channel = Channel::Chat;
    assert!(matches!(
        s.transfer_in(t(0.1), r.id, moving),
        Err(TransferRefusal::Mismatch { .. })
    ));
    assert_eq!(s.contact_count(), 0);
    s.check_invariants().unwrap();
}

#[test]
fn a_hang_up_while_held_is_abandoned_where_the_hold_ends() {
    // Released: abandoned at the origin.
    let mut o = engine("north");
    o.arrive(t(0.0), arrival(1)).unwrap();
    o.hold(t(1.0), c(1)).unwrap();
    o.hang_up(t(2.0), c(1)).unwrap();
    assert_eq!(kinds(&mut o).last(), Some(&(c(1), "queued")), "nothing yet");
    assert!(!o.release_hold(t(3.0), c(1)).unwrap());
    assert_eq!(kinds(&mut o), vec![(c(1), "abandoned")]);
    o.check_invariants().unwrap();
    // Transferred: overflowed here, and the caller is told to hang up at the target.
    o.arrive(t(4.0), arrival(2)).unwrap();
    o.hold(t(5.0), c(2)).unwrap();
    o.hang_up(t(5.5), c(2)).unwrap();
    assert!(
        o.transfer_out(t(6.0), c(2), &SiteId::new("south").unwrap(), "x")
            .unwrap()
    );
    let terminal: Vec<_> = kinds(&mut o).into_iter().filter(|k| k.0 == c(2)).collect();
    assert_eq!(terminal.last(), Some(&(c(2), "overflowed")));
    assert!(!terminal.iter().any(|k| k.1 == "abandoned"));
    o.check_invariants().unwrap();
}

#[test]
fn a_reserved_agent_who_logs_out_gives_the_reservation_up() {
    let mut s = engine("south");
    let ann = ready(&mut s, t(0.0));
    let r = s
        .reserve(t(0.0), &tenant(), &queue(), Duration::from_secs(30))
        .unwrap();
    s.agent_gone(t(1.0), ann);
    s.check_invariants().unwrap();
    assert!(!s.cancel_reservation(t(1.0), r.id), "already gone");
}
