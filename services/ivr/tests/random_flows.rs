//! Random flows: the parser and validator never panic on them, and every flow that
//! passes the checks ends each session in exactly one outcome, whatever the customer
//! does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hotline_core::channel::Channel;
use hotline_core::time::Timestamp;
use hotline_ivr::{Catalog, Effect, Input, Machine, TenantCatalog, check};
use proptest::prelude::*;

fn catalog() -> Catalog {
    let acme = TenantCatalog::default()
        .with_queue("claims".parse().unwrap(), Channel::Voice)
        .with_skill("english".parse().unwrap());
    Catalog::default().with_tenant("acme".parse().unwrap(), acme)
}

/// One node: a type and the node indices its targets point at (an index past the end
/// is a dangling name).
#[derive(Debug, Clone)]
struct Spec {
    kind: u8,
    targets: Vec<usize>,
}

fn name(i: usize) -> String {
    format!("n{i}")
}

fn render(specs: &[Spec]) -> String {
    let mut y = String::from(
        "flow: main\ntenant: acme\ncalendars:\n  c:\n    timezone: Asia/Shanghai\n    open: [{ days: mon-fri, from: \"09:00\", to: \"18:00\" }]\n    holidays: [2026-10-01]\nnodes:\n",
    );
    for (i, s) in specs.iter().enumerate() {
        let t = |k: usize| name(s.targets[k % s.targets.len()]);
        y.push_str(&format!("  {}:\n", name(i)));
        let body = match s.kind % 9 {
            0 => format!("type: say\nprompt: hi\nnext: {}", t(0)),
            1 => format!(
                "type: menu\nprompt: pick\ntimeout_secs: 3\nretries: 1\nchoices:\n  - {{ digit: 1, keywords: [yes], goto: {} }}\n  - {{ digit: 2, goto: {} }}\non_failure: {}",
                t(0),
                t(1),
                t(2)
            ),
            2 => format!(
                "type: collect\nprompt: number\nattribute: a\nmax_length: 4\nterminator: \"#\"\nnext: {}\non_failure: {}",
                t(0),
                t(1)
            ),
            3 => format!(
                "type: hours\ncalendar: c\nopen: {}\nclosed: {}\nholiday: {}",
                t(0),
                t(1),
                t(2)
            ),
            4 => format!("type: set\nattributes: {{ a: \"12\" }}\nnext: {}", t(0)),
            5 => format!(
                "type: branch\nattribute: a\ncases: [{{ equals: \"12\", goto: {} }}, {{ present: false, goto: {} }}]\ndefault: {}",
                t(0),
                t(1),
                t(2)
            ),
            6 => format!(
                "type: callback\nqueue: claims\nnumber: a\nno_number: {}",
                t(0)
            ),
            7 => "type: queue\nqueue: claims\nskills: [english]".to_owned(),
            _ => "type: end".to_owned(),
        };
        for line in body.lines() {
            y.push_str("    ");
            y.push_str(line);
            y.push('\n');
        }
    }
    y
}

/// A flow of `n` nodes: each node's first target is the next node, so most flows hang
/// together; the other targets go anywhere, back or forward (loops, some refused), and
/// one in twenty names no node (refused). The last node ends the flow.
fn flows() -> impl Strategy<Value = Vec<Spec>> {
    (2usize..9).prop_flat_map(|n| {
        let node = (0u8..7, prop::collection::vec((0usize..=n, 0u8..20), 2..4));
        (prop::collection::vec(node, n - 1), 7u8..9).prop_map(move |(nodes, last)| {
            let mut specs: Vec<Spec> = nodes
                .into_iter()
                .enumerate()
                .map(|(i, (kind, rest))| {
                    let mut targets = vec![i + 1];
                    targets.extend(
                        rest.into_iter()
                            .map(|(t, roll)| if roll == 0 { n } else { t % n }),
                    );
                    Spec { kind, targets }
                })
                .collect();
            specs.push(Spec {
                kind: last,
                targets: vec![0],
            });
            specs
        })
    })
}

fn input() -> impl Strategy<Value = Option<Input>> {
    prop_oneof![
        Just(None), // let the deadline pass
        "[0-9#]{1,3}".prop_map(|d| Some(Input::Digits(d))),
        prop::sample::select(vec!["1", "2", "yes", "12", "no"])
            .prop_map(|t| Some(Input::Text(t.into()))),
        Just(Some(Input::HangUp)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn valid_random_flows_end_every_session_in_one_outcome(
        specs in flows(),
        inputs in prop::collection::vec(input(), 0..30),
        hour in 0u64..(24 * 7),
    ) {
        let text = render(&specs);
        let Ok(flow) = check::load(&text, "random.yaml", &catalog()) else {
            return Ok(()); // refused with diagnostics, which is all a bad flow may do
        };
        let mut m = Machine::new(Arc::new(flow), BTreeMap::new());
        let mut now = Timestamp(1_790_000_000_000_000) + Duration::from_secs(hour * 3600);
        let mut fx = m.start(now);
        for i in inputs {
            match i {
                Some(i) => fx.extend(m.input(now, i)),
                None => {
                    now = m.deadline().unwrap_or(now);
                    fx.extend(m.timeout(now));
                }
            }
        }
        for _ in 0..200 {
            let Some(d) = m.deadline() else { break };
            now = d;
            fx.extend(m.timeout(now));
        }
        let outcomes = fx.iter().filter(|e| matches!(e, Effect::Finished(_))).count();
        prop_assert_eq!(outcomes, 1, "flow:\n{}\neffects: {:?}", text, fx);
        let flow_error = fx.iter().any(|e| matches!(e, Effect::Finished(hotline_ivr::Outcome::End { reason }) if reason.starts_with("flow error")));
        prop_assert!(!flow_error, "a checked flow never hits the interpreter's guards:\n{}", text);
    }

    #[test]
    fn mangled_flow_text_is_refused_or_accepted_but_never_panics(
        specs in flows(),
        cut in 0usize..2000,
        junk in "[ :\\-\\[\\]{}#a-z0-9\n]{0,12}",
    ) {
        let text = render(&specs);
        let mut cut = cut.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let mangled = format!("{}{}{}", &text[..cut], junk, &text[cut..]);
        if let Err(e) = check::load(&mangled, "m.yaml", &catalog()) {
            prop_assert!(!e.diagnostics.is_empty());
            for d in &e.diagnostics {
                prop_assert!(d.pos.line >= 1 && d.pos.col >= 1, "{:?}", d);
            }
        }
    }
}
