//! The interpreter, driven directly: no actor, no clock, time passed by hand.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hotline_core::time::Timestamp;
use proptest::prelude::*;

use super::*;
use crate::check::load;

/// Microseconds since the epoch of an RFC 3339 instant.
pub(crate) fn at(instant: &str) -> Timestamp {
    let ts: jiff::Timestamp = instant.parse().unwrap();
    Timestamp(u64::try_from(ts.as_microsecond()).unwrap())
}

fn flow(text: &str) -> Arc<Flow> {
    Arc::new(load(text, "t.yaml", &crate::tests::catalog()).unwrap_or_else(|e| panic!("{e}")))
}

fn demo() -> Arc<Flow> {
    flow(include_str!("../../../hotline/demo/flows/acme-main.yaml"))
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn prompts(fx: &[Effect]) -> Vec<&str> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Prompt(p) => Some(p.id.as_str()),
            _ => None,
        })
        .collect()
}

fn entered(fx: &[Effect]) -> Vec<&str> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Entered(n) => Some(n.as_str()),
            _ => None,
        })
        .collect()
}

fn outcome(fx: &[Effect]) -> Option<&Outcome> {
    fx.iter().find_map(|e| match e {
        Effect::Finished(o) => Some(o),
        _ => None,
    })
}

fn text(s: &str) -> Input {
    Input::Text(s.to_owned())
}

fn digits(s: &str) -> Input {
    Input::Digits(s.to_owned())
}

fn queue(name: &str) -> Outcome {
    Outcome::Queue {
        queue: name.parse().unwrap(),
        priority: None,
        skills: vec![],
    }
}

/// A weekday in office hours in London (Tuesday 1 December 2026, 10:00 GMT).
const OPEN: &str = "2026-12-01T10:00:00Z";

const MENU: &str = r#"
flow: main
tenant: acme
defaults: { timeout_secs: 5, retries: 2, invalid: { id: sorry, text: Sorry }, no_input: { id: hello, text: Hello? } }
nodes:
  menu:
    type: menu
    prompt: Pick
    choices:
      - { digit: 1, keywords: [claims, "lost card"], set: { intent: claims }, goto: claims }
      - { digit: 2, keywords: [中文], goto: sales }
    on_failure: failed
  claims:
    type: queue
    queue: claims
    priority: 7
    skills: [english]
  sales:
    type: queue
    queue: sales
  failed:
    type: end
    reason: no_choice
"#;

#[test]
fn a_menu_picks_by_digit_by_keyword_and_by_a_lone_typed_digit() {
    let f = flow(MENU);
    let t = at(OPEN);
    for input in [
        digits("1"),
        text("My CLAIMS please"),
        text(" 1 "),
        text("I lost card"),
    ] {
        let mut m = Machine::new(f.clone(), BTreeMap::new());
        assert_eq!(entered(&m.start(t)), vec!["menu"]);
        let fx = m.input(t, input.clone());
        assert_eq!(entered(&fx), vec!["claims"], "{input:?}");
        assert_eq!(
            outcome(&fx),
            Some(&Outcome::Queue {
                queue: "claims".parse().unwrap(),
                priority: Some(7),
                skills: vec!["english".parse().unwrap()],
            })
        );
        assert_eq!(
            m.attributes()["intent"],
            "claims",
            "the choice's `set` applies"
        );
    }
    let mut m = Machine::new(f, BTreeMap::new());
    m.start(t);
    assert_eq!(
        outcome(&m.input(t, text("我要中文服务"))),
        Some(&queue("sales"))
    );
}

#[test]
fn a_keyword_inside_another_word_does_not_pick() {
    let mut m = Machine::new(flow(MENU), BTreeMap::new());
    let t = at(OPEN);
    m.start(t);
    let fx = m.input(t, text("disclaimsx"));
    assert_eq!(prompts(&fx), vec!["sorry", "menu"]);
    assert!(outcome(&fx).is_none());
}

#[test]
fn a_menu_without_an_answer_asks_again_then_fails_over() {
    let mut m = Machine::new(flow(MENU), BTreeMap::new());
    let t0 = at(OPEN);
    assert_eq!(prompts(&m.start(t0)), vec!["menu"]);
    assert_eq!(m.deadline(), Some(t0 + Duration::from_secs(5)));
    assert!(
        m.timeout(t0 + Duration::from_secs(4)).is_empty(),
        "an early wake-up does nothing"
    );
    let t1 = t0 + Duration::from_secs(5);
    assert_eq!(prompts(&m.timeout(t1)), vec!["hello", "menu"]);
    let t2 = t1 + Duration::from_secs(5);
    assert_eq!(prompts(&m.input(t2, digits("9"))), vec!["sorry", "menu"]);
    let fx = m.timeout(t2 + Duration::from_secs(5));
    assert_eq!(entered(&fx), vec!["failed"]);
    assert_eq!(
        outcome(&fx),
        Some(&Outcome::End {
            reason: "no_choice".into()
        })
    );
    assert_eq!(m.deadline(), None);
    assert!(
        m.input(t2, digits("1")).is_empty(),
        "nothing after the outcome"
    );
    assert!(m.input(t2, Input::HangUp).is_empty(), "one outcome only");
}

const COLLECT: &str = r##"
flow: main
tenant: acme
nodes:
  account:
    type: collect
    prompt: Account?
    attribute: account
    min_length: 4
    max_length: 8
    terminator: "#"
    pattern: "[1-9][0-9]*"
    timeout_secs: 10
    inter_digit_secs: 3
    retries: 1
    invalid: Not valid
    next: done
    on_failure: gave_up
  done:
    type: queue
    queue: claims
  gave_up:
    type: end
    reason: no_account
"##;

#[test]
fn digits_accumulate_key_by_key_until_the_terminator() {
    let mut m = Machine::new(flow(COLLECT), BTreeMap::new());
    let t = at(OPEN);
    m.start(t);
    assert!(m.input(t, digits("12")).is_empty());
    assert_eq!(
        m.deadline(),
        Some(t + Duration::from_secs(3)),
        "inter-digit timeout"
    );
    assert!(m.input(t, digits("3")).is_empty());
    let fx = m.input(t, digits("45#"));
    assert_eq!(outcome(&fx), Some(&queue("claims")));
    assert_eq!(m.attributes()["account"], "12345");
}

#[test]
fn digits_end_at_the_maximum_length_or_after_a_pause() {
    let t = at(OPEN);
    let mut m = Machine::new(flow(COLLECT), BTreeMap::new());
    m.start(t);
    assert!(outcome(&m.input(t, digits("123456789"))).is_some());
    assert_eq!(
        m.attributes()["account"],
        "12345678",
        "entry ends at max_length"
    );

    let mut m = Machine::new(flow(COLLECT), BTreeMap::new());
    m.start(t);
    m.input(t, digits("4321"));
    let fx = m.timeout(t + Duration::from_secs(3));
    assert!(outcome(&fx).is_some(), "the pause ends entry: {fx:?}");
    assert_eq!(m.attributes()["account"], "4321");
}

#[test]
fn an_answer_that_fails_the_checks_is_asked_again_then_fails_over() {
    let t = at(OPEN);
    let mut m = Machine::new(flow(COLLECT), BTreeMap::new());
    m.start(t);
    let fx = m.input(t, digits("012#"));
    assert_eq!(
        prompts(&fx),
        vec!["account.invalid", "account"],
        "too short and a leading 0"
    );
    let fx = m.input(t, text("0123 4567"));
    assert_eq!(
        entered(&fx),
        vec!["gave_up"],
        "pattern refuses the leading 0; retries used up"
    );
    assert!(!m.attributes().contains_key("account"));
}

#[test]
fn typed_digits_on_chat_may_have_spaces_and_dashes() {
    let t = at(OPEN);
    let mut m = Machine::new(flow(COLLECT), attrs(&[("channel", "chat")]));
    m.start(t);
    assert!(outcome(&m.input(t, text(" 1234-5678 "))).is_some());
    assert_eq!(m.attributes()["account"], "12345678");
}

#[test]
fn office_hours_follow_the_time_zone_weekends_and_holidays() {
    let f = demo();
    let voice = attrs(&[("channel", "voice"), ("caller", "+441234567")]);
    let first_prompts = |when: &str| {
        let mut m = Machine::new(f.clone(), voice.clone());
        let fx = m.start(at(when));
        entered(&fx)
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    // Tuesday 1 December 2026, 10:00 in London: open.
    assert_eq!(
        first_prompts(OPEN),
        vec!["greeting", "office_hours", "main_menu"]
    );
    // 19:59 London is open, 20:00 is not (London is on GMT in December).
    assert!(first_prompts("2026-12-01T19:59:00Z").contains(&"main_menu".to_owned()));
    let closed = first_prompts("2026-12-01T20:00:00Z");
    assert_eq!(
        closed,
        vec![
            "greeting",
            "office_hours",
            "after_hours",
            "closed_route",
            "voicemail"
        ]
    );
    // In summer London is an hour ahead of UTC: 07:30 UTC is 08:30 there, open.
    assert!(first_prompts("2026-07-01T07:30:00Z").contains(&"main_menu".to_owned()));
    assert!(!first_prompts("2026-07-01T19:30:00Z").contains(&"main_menu".to_owned()));
    // Sunday closed; Saturday morning open.
    assert!(first_prompts("2026-12-06T10:00:00Z").contains(&"after_hours".to_owned()));
    assert!(first_prompts("2026-12-05T10:00:00Z").contains(&"main_menu".to_owned()));
    // Christmas Day, a Friday, at 10:00: the holiday branch.
    let christmas = first_prompts("2026-12-25T10:00:00Z");
    assert_eq!(christmas[..3], ["greeting", "office_hours", "holiday"]);
}

#[test]
fn after_hours_on_chat_ends_with_a_message_instead_of_voicemail() {
    let mut m = Machine::new(demo(), attrs(&[("channel", "chat")]));
    let fx = m.start(at("2026-12-01T22:00:00Z"));
    assert_eq!(
        outcome(&fx),
        Some(&Outcome::End {
            reason: "closed".into()
        })
    );
    assert_eq!(prompts(&fx), vec!["welcome", "after_hours", "closed_end"]);
}

#[test]
fn a_callback_without_a_number_asks_for_one_and_then_calls_it() {
    let t = at(OPEN);
    let mut m = Machine::new(demo(), attrs(&[("channel", "voice")]));
    m.start(t);
    m.input(t, digits("1"));
    m.input(t, text("12345678"));
    m.input(t, digits("2")); // a callback
    let fx = m.input(t, digits("1")); // on the number I am calling from: unknown
    assert_eq!(entered(&fx), vec!["callback_caller", "enter_number"]);
    let fx = m.input(t, digits("02079460000#"));
    assert_eq!(
        outcome(&fx),
        Some(&Outcome::Callback {
            queue: "claims".parse().unwrap(),
            number: "02079460000".into()
        })
    );
    assert_eq!(m.attributes()["policy"], "12345678");
    assert_eq!(m.attributes()["intent"], "claims");
}

#[test]
fn a_callback_node_without_a_fallback_queues_the_contact_rather_than_dropping_it() {
    let f =
        flow("flow: main\ntenant: acme\nnodes:\n  cb:\n    type: callback\n    queue: claims\n");
    let mut m = Machine::new(f.clone(), BTreeMap::new());
    assert_eq!(outcome(&m.start(at(OPEN))), Some(&queue("claims")));
    let mut m = Machine::new(f, attrs(&[("caller", "+4411")]));
    assert_eq!(
        outcome(&m.start(at(OPEN))),
        Some(&Outcome::Callback {
            queue: "claims".parse().unwrap(),
            number: "+4411".into()
        })
    );
}

#[test]
fn a_hang_up_anywhere_is_abandoned_in_that_node() {
    let t = at(OPEN);
    let mut m = Machine::new(demo(), attrs(&[("channel", "voice")]));
    m.start(t);
    m.input(t, digits("1"));
    let fx = m.input(t, Input::HangUp);
    assert_eq!(
        outcome(&fx),
        Some(&Outcome::Abandoned {
            node: "policy_number".into()
        })
    );
    assert_eq!(m.deadline(), None);
}

// === properties ===

#[derive(Debug, Clone)]
enum Step {
    In(Input),
    /// Let this many seconds pass, then wake the machine.
    Wait(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        prop::sample::select(vec![
            "1",
            "2",
            "3",
            "9",
            "claims",
            "sales",
            "中文",
            "hold",
            "callback",
            "",
            "12345678",
            "1234",
            "#",
            "*",
            "other",
            "0207946000",
        ])
        .prop_map(|s| Step::In(text(s))),
        "[0-9#*]{0,10}".prop_map(|s| Step::In(Input::Digits(s))),
        ".{0,20}".prop_map(|s| Step::In(Input::Text(s))),
        (0u8..40).prop_map(Step::Wait),
        Just(Step::In(Input::HangUp)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Whatever the customer does and however long they wait, the machine never panics,
    /// only enters nodes of the flow, produces at most one outcome, and — left alone
    /// long enough — exactly one.
    #[test]
    fn every_session_ends_in_exactly_one_outcome(
        steps in prop::collection::vec(step(), 0..40),
        start_hour in 0u64..(24 * 14),
        chat in any::<bool>(),
    ) {
        let f = demo();
        let channel = if chat { "chat" } else { "voice" };
        let mut m = Machine::new(f.clone(), attrs(&[("channel", channel)]));
        let mut now = at("2026-12-20T00:00:00Z") + Duration::from_secs(start_hour * 3600);
        let mut fx = m.start(now);
        for s in steps {
            match s {
                Step::In(i) => fx.extend(m.input(now, i)),
                Step::Wait(secs) => {
                    now = now + Duration::from_secs(u64::from(secs));
                    fx.extend(m.timeout(now));
                }
            }
        }
        // Left alone: every wait times out and retries are bounded.
        for _ in 0..100 {
            match m.deadline() {
                Some(d) => {
                    now = d;
                    fx.extend(m.timeout(now));
                }
                None => break,
            }
        }
        let finished = fx.iter().filter(|e| matches!(e, Effect::Finished(_))).count();
        prop_assert_eq!(finished, 1, "effects: {:?}", fx);
        prop_assert!(m.is_finished());
        prop_assert!(matches!(fx.last(), Some(Effect::Finished(_))), "the outcome is last");
        for n in entered(&fx) {
            prop_assert!(f.node(n).is_some(), "entered unknown node {}", n);
        }
    }
}
