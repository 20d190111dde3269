//! Property tests of the routing state machine over random command sequences: a refused
//! command changes nothing, a promise is completed at most once and never lost, a down
//! site never claims or completes, the state round-trips through postcard and JSON, and
//! applying the same log twice gives the same state.

use std::collections::BTreeMap;

use hotline_core::ids::{AgentId, QueueId, SiteId, SkillId, TenantId};
use hotline_core::skill::{Proficiency, Skill, SkillRequirement};
use hotline_routing::state::{
    AgentProfile, Command, NewPromise, OverflowPolicy, OverflowTarget, PromiseId, PromiseKind,
    PromiseOutcome, PromiseState, Queue, QueueSummary, Response, RoutingState, SiteStatus,
    SkillReady, TenantSpec,
};
use proptest::prelude::*;

const SITES: [&str; 3] = ["north", "south", "east"];
const TENANTS: [&str; 2] = ["acme", "beta"];
const SKILLS: [&str; 3] = ["billing", "mandarin", "sales"];
const QUEUES: [&str; 2] = ["q1", "q2"];
const AGENTS: [&str; 3] = ["ann", "bob", "cho"];

fn site(i: usize) -> SiteId {
    SiteId::new(SITES[i % SITES.len()]).unwrap()
}
fn tenant(i: usize) -> TenantId {
    TenantId::new(TENANTS[i % TENANTS.len()]).unwrap()
}
fn skill(i: usize) -> SkillId {
    SkillId::new(SKILLS[i % SKILLS.len()]).unwrap()
}
fn queue(i: usize) -> QueueId {
    QueueId::new(QUEUES[i % QUEUES.len()]).unwrap()
}
fn agent(i: usize) -> AgentId {
    AgentId::new(AGENTS[i % AGENTS.len()]).unwrap()
}
fn level(l: u8) -> Proficiency {
    Proficiency::new(l).unwrap()
}

/// A command with its references left as small numbers; promises are picked among the
/// ones that exist when the op is applied, so claims and completions often hit.
#[derive(Debug, Clone)]
enum Op {
    AddSite(usize, u64),
    RemoveSite(usize),
    Status(usize, SiteStatus),
    AddSkill(usize, usize),
    RemoveSkill(usize, usize),
    PutQueue {
        add: bool,
        tenant: usize,
        queue: usize,
        skills: Vec<(usize, u8)>,
        overflow_to: Option<usize>,
    },
    RemoveQueue(usize, usize),
    PutAgent {
        add: bool,
        agent: usize,
        tenant: usize,
        skills: Vec<(usize, u8)>,
    },
    RemoveAgent(usize),
    Login(usize, usize),
    Logout(usize, usize),
    Summary {
        site: usize,
        at_ms: u64,
        rows: Vec<(usize, usize, u32, u64)>,
    },
    Create(usize, usize, usize),
    Claim(usize, usize),
    Release(usize, usize),
    Complete(usize, usize),
    TakeOver(usize, usize),
    BogusPromise(usize),
    Prune(u64),
    Batch(Vec<Op>),
}

fn status() -> impl Strategy<Value = SiteStatus> {
    prop_oneof![
        Just(SiteStatus::Active),
        Just(SiteStatus::Draining),
        Just(SiteStatus::Down)
    ]
}

fn skills() -> impl Strategy<Value = Vec<(usize, u8)>> {
    prop::collection::vec((0..4usize, 1..=5u8), 0..3)
}

fn leaf() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0..4usize, 1..5u64).prop_map(|(s, n)| Op::AddSite(s, n)),
        1 => (0..3usize).prop_map(Op::RemoveSite),
        3 => (0..3usize, status()).prop_map(|(s, st)| Op::Status(s, st)),
        1 => (0..2usize, 0..4usize).prop_map(|(t, k)| Op::AddSkill(t, k)),
        1 => (0..2usize, 0..3usize).prop_map(|(t, k)| Op::RemoveSkill(t, k)),
        1 => (any::<bool>(), 0..2usize, 0..2usize, skills(), prop::option::of(0..4usize)).prop_map(
            |(add, tenant, queue, skills, overflow_to)| Op::PutQueue {
                add,
                tenant,
                queue,
                skills,
                overflow_to
            }
        ),
        1 => (0..2usize, 0..2usize).prop_map(|(t, q)| Op::RemoveQueue(t, q)),
        1 => (any::<bool>(), 0..3usize, 0..3usize, skills()).prop_map(|(add, agent, tenant, skills)| {
            Op::PutAgent {
                add,
                agent,
                tenant,
                skills,
            }
        }),
        1 => (0..3usize).prop_map(Op::RemoveAgent),
        2 => (0..3usize, 0..3usize).prop_map(|(a, s)| Op::Login(a, s)),
        1 => (0..3usize, 0..3usize).prop_map(|(a, s)| Op::Logout(a, s)),
        2 => (
            0..4usize,
            0..2000u64,
            prop::collection::vec((0..2usize, 0..3usize, 0..3u32, 0..5000u64), 0..3)
        )
            .prop_map(|(site, at_ms, rows)| Op::Summary { site, at_ms, rows }),
        4 => (0..3usize, 0..2usize, 0..2usize).prop_map(|(s, t, q)| Op::Create(s, t, q)),
        4 => (any::<usize>(), 0..3usize).prop_map(|(p, s)| Op::Claim(p, s)),
        1 => (any::<usize>(), 0..3usize).prop_map(|(p, s)| Op::Release(p, s)),
        4 => (any::<usize>(), 0..3usize).prop_map(|(p, s)| Op::Complete(p, s)),
        3 => (any::<usize>(), 0..3usize).prop_map(|(p, s)| Op::TakeOver(p, s)),
        1 => (0..3usize).prop_map(Op::BogusPromise),
        1 => (0..3000u64).prop_map(Op::Prune),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => leaf(),
        1 => prop::collection::vec(leaf(), 1..4).prop_map(Op::Batch),
    ]
}

/// The configuration every sequence starts from: three sites, two tenants with skills
/// and queues, agents serving them.
fn preamble() -> Vec<Command> {
    let mut out = vec![];
    for (i, name) in SITES.iter().enumerate() {
        out.push(Command::AddSite {
            id: site(i),
            name: (*name).into(),
            node_id: i as u64 + 1,
            at_ms: 0,
        });
    }
    for t in 0..TENANTS.len() {
        out.push(Command::AddTenant(Box::new(TenantSpec {
            id: tenant(t),
            name: String::new(),
            provider: None,
            skills: vec![skill(0), skill(1)],
        })));
        for q in 0..QUEUES.len() {
            out.push(Command::AddQueue(Box::new(Queue::new(
                tenant(t),
                queue(q),
                vec![SkillRequirement {
                    skill: skill(q),
                    min: level(2),
                }],
            ))));
        }
    }
    for a in 0..AGENTS.len() {
        out.push(Command::AddAgent(Box::new(AgentProfile::new(
            agent(a),
            tenant(a),
            vec![Skill {
                skill: skill(0),
                level: level(3),
            }],
        ))));
    }
    out
}

/// Turns an op into a command against the current state.
fn resolve(state: &RoutingState, op: &Op, clock: u64) -> Command {
    let promises: Vec<PromiseId> = state.promises().map(|p| p.id).collect();
    let pick = |p: usize| {
        if promises.is_empty() {
            PromiseId { index: 1, slot: 0 }
        } else {
            promises[p % promises.len()]
        }
    };
    let reqs = |skills: &[(usize, u8)]| -> Vec<SkillRequirement> {
        skills
            .iter()
            .map(|(k, l)| SkillRequirement {
                skill: skill(*k),
                min: level(*l),
            })
            .collect()
    };
    match op {
        Op::AddSite(s, node) => Command::AddSite {
            id: SiteId::new(["north", "south", "east", "west"][*s]).unwrap(),
            name: String::new(),
            node_id: *node,
            at_ms: clock,
        },
        Op::RemoveSite(s) => Command::RemoveSite { id: site(*s) },
        Op::Status(s, status) => Command::SetSiteStatus {
            site: site(*s),
            status: *status,
            at_ms: clock,
        },
        Op::AddSkill(t, k) => Command::AddSkill {
            tenant: tenant(*t),
            skill: skill(*k),
        },
        Op::RemoveSkill(t, k) => Command::RemoveSkill {
            tenant: tenant(*t),
            skill: skill(*k),
        },
        Op::PutQueue {
            add,
            tenant: t,
            queue: q,
            skills,
            overflow_to,
        } => {
            let mut queue = Queue::new(tenant(*t), queue(*q), reqs(skills));
            queue.overflow = overflow_to.map(|s| OverflowPolicy {
                after_wait_secs: Some(10),
                expected_wait_above_secs: None,
                targets: vec![OverflowTarget {
                    site: SiteId::new(["north", "south", "east", "west"][s]).unwrap(),
                    penalty_ms: 100,
                }],
            });
            if *add {
                Command::AddQueue(Box::new(queue))
            } else {
                Command::UpdateQueue(Box::new(queue))
            }
        }
        Op::RemoveQueue(t, q) => Command::RemoveQueue {
            tenant: tenant(*t),
            queue: queue(*q),
        },
        Op::PutAgent {
            add,
            agent: a,
            tenant: t,
            skills,
        } => {
            let profile = AgentProfile::new(
                agent(*a),
                tenant(*t),
                skills
                    .iter()
                    .map(|(k, l)| Skill {
                        skill: skill(*k),
                        level: level(*l),
                    })
                    .collect(),
            );
            if *add {
                Command::AddAgent(Box::new(profile))
            } else {
                Command::UpdateAgent(Box::new(profile))
            }
        }
        Op::RemoveAgent(a) => Command::RemoveAgent { id: agent(*a) },
        Op::Login(a, s) => Command::AgentLogin {
            agent: agent(*a),
            site: site(*s),
            at_ms: clock,
        },
        Op::Logout(a, s) => Command::AgentLogout {
            agent: agent(*a),
            site: site(*s),
            at_ms: clock,
        },
        Op::Summary {
            site: s,
            at_ms,
            rows,
        } => Command::PublishSummary {
            site: SiteId::new(["north", "south", "east", "mars"][*s]).unwrap(),
            at_ms: *at_ms,
            queues: rows
                .iter()
                .map(|(t, q, ready, wait)| QueueSummary {
                    tenant: tenant(*t),
                    queue: QueueId::new(["q1", "q2", "q9"][*q]).unwrap(),
                    ready: *ready,
                    ready_by_skill: vec![SkillReady {
                        skill: skill(0),
                        at_least: [*ready, *ready, 0, 0, 0],
                    }],
                    waiting: 1,
                    oldest_wait_ms: *wait,
                    expected_wait_ms: *wait,
                })
                .collect(),
        },
        Op::Create(s, t, q) => Command::CreatePromise(Box::new(NewPromise {
            site: site(*s),
            kind: PromiseKind::Callback,
            tenant: tenant(*t),
            queue: queue(*q),
            customer: "+86 10 0000".into(),
            note: String::new(),
            contact: None,
            at_ms: clock,
        })),
        Op::Claim(p, s) => Command::ClaimPromise {
            id: pick(*p),
            site: site(*s),
            at_ms: clock,
        },
        Op::Release(p, s) => Command::ReleasePromise {
            id: pick(*p),
            site: site(*s),
            at_ms: clock,
        },
        Op::Complete(p, s) => Command::CompletePromise {
            id: pick(*p),
            site: site(*s),
            outcome: PromiseOutcome::Handled,
            at_ms: clock,
        },
        Op::TakeOver(p, s) => Command::TakeOverPromise {
            id: pick(*p),
            site: site(*s),
            at_ms: clock,
        },
        Op::BogusPromise(s) => Command::CompletePromise {
            id: PromiseId {
                index: u64::MAX,
                slot: 0,
            },
            site: site(*s),
            outcome: PromiseOutcome::Cancelled,
            at_ms: clock,
        },
        Op::Prune(before) => Command::PrunePromises {
            completed_before_ms: *before,
        },
        Op::Batch(ops) => Command::Batch(ops.iter().map(|o| resolve(state, o, clock)).collect()),
    }
}

/// Whether the command forgets completed promises (itself or inside a batch).
fn prunes(command: &Command) -> bool {
    match command {
        Command::PrunePromises { .. } => true,
        Command::Batch(inner) => inner.iter().any(prunes),
        _ => false,
    }
}

fn status_of(state: &RoutingState, s: &SiteId) -> Option<SiteStatus> {
    state.site(s).map(|s| s.status)
}

/// Applies the preamble and the ops, checking the step invariants; returns the log and
/// the responses so the caller can replay it.
fn run(ops: &[Op]) -> Result<(RoutingState, Vec<Command>, Vec<Response>), TestCaseError> {
    let mut state = RoutingState::default();
    let mut log = vec![];
    let mut responses = vec![];
    let mut completed: BTreeMap<PromiseId, PromiseState> = BTreeMap::new();
    for c in preamble() {
        let index = log.len() as u64 + 1;
        let r = state.apply(index, &c);
        prop_assert!(r.refusal().is_none(), "preamble {c:?}: {r:?}");
        log.push(c);
        responses.push(r);
    }
    for (step, op) in ops.iter().enumerate() {
        let index = log.len() as u64 + 1;
        let clock = 1000 + step as u64 * 10;
        let command = resolve(&state, op, clock);
        let before = state.clone();
        let response = state.apply(index, &command);

        if let Response::Refused(refusal) = &response {
            prop_assert_eq!(
                &state,
                &before,
                "refused {} ({}) changed the state",
                command,
                refusal
            );
        } else {
            prop_assert_eq!(state.applied, index);
        }

        // A down site never claims or completes.
        if let (
            Command::ClaimPromise { site, .. } | Command::CompletePromise { site, .. },
            Response::Applied,
        ) = (&command, &response)
        {
            prop_assert_ne!(status_of(&before, site), Some(SiteStatus::Down));
        }

        for p in before.promises() {
            match (&p.state, state.promise(&p.id)) {
                // None lost: an open promise stays until completed.
                // (A batch may complete and prune it in one go.)
                (s, None) if s.is_open() && !prunes(&command) => {
                    prop_assert!(false, "open promise {} vanished after {}", p.id, command)
                }
                // A completed promise never changes again (pruning may forget it).
                (PromiseState::Completed { .. }, Some(now)) => prop_assert_eq!(p, now),
                _ => {}
            }
        }
        for p in state.promises() {
            if let PromiseState::Completed { .. } = &p.state {
                let first = completed.entry(p.id).or_insert_with(|| p.state.clone());
                // Completed at most once: the same completion record, ever.
                prop_assert_eq!(&*first, &p.state, "promise {} completed twice", p.id);
            }
            // Every open promise is owned by a site that exists.
            if p.state.is_open() {
                prop_assert!(state.site(&p.owner).is_some());
            }
        }
        log.push(command);
        responses.push(response);
    }
    Ok((state, log, responses))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_command_sequences_keep_every_invariant(ops in prop::collection::vec(op(), 1..80)) {
        let (state, log, responses) = run(&ops)?;

        // Serde round-trips the snapshot.
        let bytes = postcard::to_allocvec(&state).unwrap();
        prop_assert_eq!(&postcard::from_bytes::<RoutingState>(&bytes).unwrap(), &state);
        let json = serde_json::to_string(&state).unwrap();
        prop_assert_eq!(&serde_json::from_str::<RoutingState>(&json).unwrap(), &state);

        // Deterministic: replaying the log gives the same state and responses.
        let mut replica = RoutingState::default();
        for (i, (c, r)) in log.iter().zip(&responses).enumerate() {
            let again = replica.apply(i as u64 + 1, c);
            prop_assert_eq!(&again, r);
        }
        prop_assert_eq!(&replica, &state);
        prop_assert_eq!(postcard::to_allocvec(&replica).unwrap(), bytes);
    }

    #[test]
    fn commands_and_responses_round_trip_through_postcard_and_json(ops in prop::collection::vec(op(), 1..30)) {
        let (_, log, responses) = run(&ops)?;
        for c in &log {
            let bytes = postcard::to_allocvec(c).unwrap();
            prop_assert_eq!(&postcard::from_bytes::<Command>(&bytes).unwrap(), c);
            let json = serde_json::to_string(c).unwrap();
            prop_assert_eq!(&serde_json::from_str::<Command>(&json).unwrap(), c);
        }
        for r in &responses {
            let bytes = postcard::to_allocvec(r).unwrap();
            prop_assert_eq!(&postcard::from_bytes::<Response>(&bytes).unwrap(), r);
        }
    }
}

/// The generator reaches the interesting paths, so the properties above are not vacuous.
#[test]
fn random_sequences_reach_claims_completions_and_takeovers() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};

    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..64 {
        let ops = prop::collection::vec(op(), 40..80)
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let (_, log, responses) = run(&ops).unwrap();
        for (c, r) in log.iter().zip(&responses) {
            let verdict = if r.refusal().is_some() {
                "refused"
            } else {
                "applied"
            };
            *seen.entry(format!("{c} {verdict}")).or_default() += 1;
        }
    }
    for kind in [
        "claim_promise applied",
        "complete_promise applied",
        "complete_promise refused",
        "take_over_promise applied",
        "publish_summary applied",
        "batch applied",
        "batch refused",
    ] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) > 0,
            "never saw {kind}: {seen:?}"
        );
    }
}
