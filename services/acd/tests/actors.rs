//! The ACD's actors end to end, in tokio's paused (virtual) time.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotline_acd::AcdError;
use hotline_acd::agent::{AgentEndpoint, AgentLink};
use hotline_acd::config::SiteConfig;
use hotline_acd::engine::{Arrival, Offer};
use hotline_acd::ids::IdSource;
use hotline_acd::router::RouterMsg;
use hotline_acd::site::{Site, SiteOptions, TokioClock};
use hotline_core::agent::{AgentStatus, NotReadyReason, SlotPhase};
use hotline_core::channel::Channel;
use hotline_core::event::{AgentEventKind, ContactEventKind, EventBody, MemorySink};
use hotline_core::ids::{AgentId, ContactId, QueueId, TenantId};
use hotline_core::time::Timestamp;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

const CONFIG: &str = r#"
site = "s1"
[defaults]
no_answer_secs = 15
max_missed = 2
reoffer_after_secs = 5

[[tenant]]
id = "acme"
skills = ["billing", "general"]

[[queue]]
tenant = "acme"
id = "billing"
skills = [{ skill = "billing" }]
wrap_up_secs = 10

[[queue]]
tenant = "acme"
id = "general"
skills = [{ skill = "general" }]
max_wait_secs = 300
on_max_wait = { action = "voicemail" }

[[agent]]
id = "ann"
serves = [{ tenant = "acme", skills = [{ skill = "billing", level = 3 }, { skill = "general", level = 3 }] }]
[[agent]]
id = "bob"
serves = [{ tenant = "acme", skills = [{ skill = "billing", level = 3 }] }]
[[agent]]
id = "cat"
capacity = { voice = 1, chat = 2 }
serves = [{ tenant = "acme", skills = [{ skill = "general", level = 5 }] }]
"#;

/// An endpoint that records what reaches the agent; the test answers for the agent.
#[derive(Default)]
struct Recorder {
    /// (agent, contact) offers still ringing.
    ringing: Mutex<Vec<(AgentId, ContactId)>>,
    statuses: Mutex<Vec<(AgentId, AgentStatus)>>,
    agent: Mutex<Option<AgentId>>,
}

struct Endpoint {
    agent: AgentId,
    shared: Arc<Recorder>,
}

impl AgentEndpoint for Endpoint {
    fn offered(&self, _a: &AgentLink, offer: &Offer) {
        self.shared
            .ringing
            .lock()
            .unwrap()
            .push((self.agent.clone(), offer.contact));
    }
    fn rescinded(&self, _a: &AgentLink, contact: ContactId) {
        self.shared
            .ringing
            .lock()
            .unwrap()
            .retain(|(_, c)| *c != contact);
    }
    fn status_changed(&self, _a: &AgentLink, status: &AgentStatus) {
        self.shared
            .statuses
            .lock()
            .unwrap()
            .push((self.agent.clone(), status.clone()));
        let _ = &self.shared.agent;
    }
}

struct Harness {
    site: Site,
    sink: Arc<MemorySink>,
    rec: Arc<Recorder>,
    next: u128,
}

impl Harness {
    async fn start() -> Self {
        let config = SiteConfig::from_toml(CONFIG, "test.toml").unwrap();
        let sink = Arc::new(MemorySink::default());
        let site = Site::start(
            config,
            SiteOptions {
                sink: sink.clone(),
                clock: Arc::new(TokioClock::starting_at(Timestamp(1_000_000))),
                ids: IdSource::sequential(1),
                shards: 2,
            },
        )
        .await
        .unwrap();
        Harness {
            site,
            sink,
            rec: Arc::default(),
            next: 0,
        }
    }

    async fn login(&self, agent: &str, ready: bool) -> Result<(), AcdError> {
        let id: AgentId = agent.parse().unwrap();
        let endpoint = Arc::new(Endpoint {
            agent: id.clone(),
            shared: self.rec.clone(),
        });
        self.site.login(id, endpoint, ready).await.map(|_| ())
    }

    async fn arrive(&mut self, queue: &str) -> ContactId {
        self.next += 1;
        let contact = ContactId::from_u128(self.next);
        self.site
            .arrive(Arrival::new(
                contact,
                TenantId::new("acme").unwrap(),
                QueueId::new(queue).unwrap(),
                Channel::Voice,
            ))
            .await
            .unwrap();
        settle().await;
        contact
    }

    fn ringing(&self) -> Vec<(AgentId, ContactId)> {
        self.rec.ringing.lock().unwrap().clone()
    }

    fn agent(&self, name: &str) -> hotline_acd::site::AgentHandle {
        self.site.agent(name.parse().unwrap())
    }

    fn contact_events(&self, contact: ContactId) -> Vec<&'static str> {
        self.sink
            .events()
            .into_iter()
            .filter_map(|e| match e.body {
                EventBody::Contact(c) if c.contact == contact => Some(c.kind.name()),
                _ => None,
            })
            .collect()
    }
}

/// Lets every actor run until all are idle (paused time only advances when nothing can
/// run), plus a millisecond of virtual time.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

async fn advance(secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs)).await;
    settle().await;
}

#[tokio::test(start_paused = true)]
async fn a_contact_goes_from_arrival_through_wrap_up_to_done() {
    let mut h = Harness::start().await;
    h.login("bob", true).await.unwrap();
    settle().await;
    let c = h.arrive("billing").await;
    let bob: AgentId = "bob".parse().unwrap();
    assert_eq!(h.ringing(), vec![(bob.clone(), c)]);
    h.agent("bob").accept(c).await.unwrap();
    advance(60).await;
    h.agent("bob").end(c).await.unwrap();
    settle().await;
    assert_eq!(
        h.agent("bob").view().await.unwrap().status,
        AgentStatus::WrapUp
    );
    advance(10).await;
    assert_eq!(
        h.agent("bob").view().await.unwrap().status,
        AgentStatus::Ready
    );
    assert_eq!(
        h.contact_events(c),
        vec![
            "arrived",
            "queued",
            "offered",
            "connected",
            "wrap_up_started",
            "done"
        ]
    );
    let done = h.sink.events().into_iter().find_map(|e| match e.body {
        EventBody::Contact(x) if x.contact == c => match x.kind {
            ContactEventKind::Done {
                talk_ms, wrap_ms, ..
            } => Some((talk_ms, wrap_ms)),
            _ => None,
        },
        _ => None,
    });
    let (talk_ms, wrap_ms) = done.expect("a done event");
    // Virtual time: exact but for the test's own millisecond settles.
    assert!((60_000..60_010).contains(&talk_ms), "talk {talk_ms}");
    assert!((10_000..10_010).contains(&wrap_ms), "wrap {wrap_ms}");
    h.site.check_invariants().await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_agent_can_end_wrap_up_early_or_extend_it() {
    let mut h = Harness::start().await;
    h.login("bob", true).await.unwrap();
    let c = h.arrive("billing").await;
    let bob = h.agent("bob");
    bob.accept(c).await.unwrap();
    bob.end(c).await.unwrap();
    bob.extend_wrap_up(c, 30).await.unwrap();
    advance(20).await;
    assert_eq!(bob.view().await.unwrap().status, AgentStatus::WrapUp);
    advance(25).await;
    assert_eq!(bob.view().await.unwrap().status, AgentStatus::Ready);
    let c2 = h.arrive("billing").await;
    bob.accept(c2).await.unwrap();
    bob.end(c2).await.unwrap();
    bob.finish_wrap_up(c2).await.unwrap();
    settle().await;
    assert_eq!(bob.view().await.unwrap().status, AgentStatus::Ready);
    assert!(h.sink.events().iter().any(|e| matches!(
        &e.body,
        EventBody::Agent(a) if matches!(a.kind, AgentEventKind::WrapUpExtended { secs: 30, .. })
    )));
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_offer_rings_out_returns_to_its_place_and_two_misses_send_the_agent_not_ready()
 {
    let mut h = Harness::start().await;
    h.login("bob", true).await.unwrap();
    let c = h.arrive("billing").await;
    advance(15).await;
    assert!(h.ringing().is_empty(), "the offer must stop ringing");
    assert!(h.contact_events(c).contains(&"offer_declined"));
    // Re-offered to bob after the re-offer delay, missed again: bob goes not ready.
    advance(5).await;
    advance(15).await;
    let view = h.agent("bob").view().await.unwrap();
    assert_eq!(view.status, AgentStatus::NotReady("missed".into()));
    // The contact still waits, at the head of the line, for another agent.
    h.login("ann", true).await.unwrap();
    settle().await;
    assert_eq!(h.ringing(), vec![("ann".parse().unwrap(), c)]);
}

#[tokio::test(start_paused = true)]
async fn a_caller_hanging_up_while_ringing_ends_the_offer_at_once() {
    let mut h = Harness::start().await;
    h.login("bob", true).await.unwrap();
    let c = h.arrive("billing").await;
    advance(3).await;
    h.site.hang_up(c).await.unwrap();
    settle().await;
    assert!(h.ringing().is_empty());
    let err = h.agent("bob").accept(c).await.unwrap_err();
    assert!(matches!(err, AcdError::Agent { .. }), "{err}");
    let abandoned = h.sink.events().into_iter().find_map(|e| match e.body {
        EventBody::Contact(x) if x.contact == c => match x.kind {
            ContactEventKind::Abandoned {
                wait_ms,
                while_offered,
            } => Some((wait_ms, while_offered)),
            _ => None,
        },
        _ => None,
    });
    let (wait_ms, while_offered) = abandoned.expect("an abandoned event");
    assert!(while_offered);
    assert!((3_000..3_010).contains(&wait_ms), "wait {wait_ms}");
    assert_eq!(
        h.agent("bob").view().await.unwrap().status,
        AgentStatus::Ready
    );
}

#[tokio::test(start_paused = true)]
async fn a_crashed_agent_shard_is_restarted_with_its_conversation_and_its_offer_requeued() {
    let mut h = Harness::start().await;
    h.login("cat", true).await.unwrap();
    h.login("ann", false).await.unwrap();
    settle().await;
    let first = h.arrive("general").await;
    h.agent("cat").accept(first).await.unwrap();
    settle().await;
    // cat is on a voice contact (capacity 1): the next one waits for ann.
    let second = h.arrive("general").await;
    h.agent("cat").link().await.unwrap().inject_panic();
    settle().await;
    let view = h.agent("cat").view().await.unwrap();
    assert_eq!(view.slots.len(), 1);
    assert_eq!(
        (view.slots[0].contact, view.slots[0].phase),
        (first, SlotPhase::OnContact)
    );
    assert!(h.sink.events().iter().any(|e| matches!(
        &e.body,
        EventBody::Agent(a) if a.kind == AgentEventKind::Recovered
    )));
    h.agent("ann").go_ready().await.unwrap();
    settle().await;
    assert!(h.ringing().contains(&("ann".parse().unwrap(), second)));
    h.agent("cat").end(first).await.unwrap();
    settle().await;
    assert!(h.contact_events(first).contains(&"done"));
    h.site.check_invariants().await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn logging_in_twice_or_as_a_stranger_is_refused_and_logging_out_mid_contact_too() {
    let mut h = Harness::start().await;
    h.login("bob", true).await.unwrap();
    assert!(matches!(
        h.login("bob", true).await,
        Err(AcdError::AlreadyLoggedIn(_))
    ));
    assert_eq!(
        h.login("mallory", true).await.unwrap_err().to_string(),
        "unknown agent mallory"
    );
    let c = h.arrive("billing").await;
    h.agent("bob").accept(c).await.unwrap();
    let err = h.agent("bob").log_out().await.unwrap_err();
    assert!(err.to_string().contains("still has 1 contact"), "{err}");
    h.agent("bob").end(c).await.unwrap();
    h.agent("bob").finish_wrap_up(c).await.unwrap();
    h.agent("bob").log_out().await.unwrap();
    settle().await;
    assert!(matches!(
        h.agent("bob").view().await,
        Err(AcdError::NotLoggedIn(_))
    ));
}

/// `Site::stop` returns only once every actor has stopped and published what it had
/// buffered: a logout just before the stop is in the sink, with nothing left to wait for.
#[tokio::test]
async fn a_logout_right_before_the_site_stops_is_published_when_stop_returns() {
    let h = Harness::start().await;
    h.login("bob", true).await.unwrap();
    h.agent("bob").log_out().await.unwrap();
    h.site.stop().await;
    let kinds: Vec<_> = h
        .sink
        .events()
        .into_iter()
        .filter_map(|e| match e.body {
            EventBody::Agent(a) if a.agent.as_str() == "bob" => Some(a.kind),
            _ => None,
        })
        .collect();
    assert!(
        kinds.iter().any(|k| matches!(k, AgentEventKind::LoggedOut)),
        "bob's logout is not among the events published by the time stop returned: {kinds:?}"
    );
}

/// Seed-driven faults against the running actors: arrivals, answers, rejections, ring
/// timeouts, hang-ups, shard and router crashes, logouts and logins, in random order. After every
/// step: the engine is consistent, no agent session holds more than its capacity, and no
/// contact is reserved by two agents. At the end every arrival has exactly one terminal
/// event.
#[tokio::test(start_paused = true)]
async fn random_faults_never_break_the_invariants_or_lose_a_contact() {
    let seeds: u64 = std::env::var("HOTLINE_FAULT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    let from: u64 = std::env::var("HOTLINE_FAULT_SEED_FROM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    for seed in from..from + seeds {
        run_faults(seed, 150).await;
    }
}

async fn run_faults(seed: u64, steps: usize) {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let mut h = Harness::start().await;
    let agents = ["ann", "bob", "cat"];
    let mut logged: HashSet<&str> = HashSet::new();
    let mut arrived: Vec<ContactId> = Vec::new();
    for a in agents {
        h.login(a, true).await.unwrap();
        logged.insert(a);
    }
    settle().await;
    for step in 0..steps {
        let roll = rng.random_range(0..100);
        match roll {
            0..=24 => {
                let q = if rng.random_bool(0.5) {
                    "billing"
                } else {
                    "general"
                };
                arrived.push(h.arrive(q).await);
            }
            25..=44 => {
                let ringing = h.ringing();
                if !ringing.is_empty() {
                    let (a, c) = ringing[rng.random_range(0..ringing.len())].clone();
                    let accept = rng.random_bool(0.8);
                    let handle = h.site.agent(a);
                    let _ = if accept {
                        handle.accept(c).await
                    } else {
                        handle.reject(c).await
                    };
                }
            }
            45..=59 => {
                // End a random conversation.
                let a = agents[rng.random_range(0..agents.len())];
                if logged.contains(a)
                    && let Ok(view) = h.agent(a).view().await
                    && let Some(s) = view.slots.iter().find(|s| s.phase == SlotPhase::OnContact)
                {
                    let _ = h.agent(a).end(s.contact).await;
                }
            }
            60..=67 => {
                if !arrived.is_empty() {
                    let c = arrived[rng.random_range(0..arrived.len())];
                    let _ = h.site.hang_up(c).await;
                }
            }
            68..=73 => {
                let a = agents[rng.random_range(0..agents.len())];
                if logged.contains(a)
                    && let Ok(link) = h.agent(a).link().await
                {
                    link.inject_panic();
                }
            }
            74..=79 => {
                let a = agents[rng.random_range(0..agents.len())];
                if logged.contains(a) {
                    if h.agent(a).log_out().await.is_ok() {
                        logged.remove(a);
                    }
                } else if h.login(a, rng.random_bool(0.7)).await.is_ok() {
                    logged.insert(a);
                }
            }
            80..=87 => {
                let a = agents[rng.random_range(0..agents.len())];
                let handle = h.agent(a);
                let _ = if rng.random_bool(0.6) {
                    handle.go_ready().await
                } else {
                    handle
                        .go_not_ready(NotReadyReason::Code("break".into()))
                        .await
                };
            }
            88..=89 => {
                let _ = h.site.router().cast(RouterMsg::InjectPanic);
            }
            _ => advance(rng.random_range(1..20)).await,
        }
        settle().await;
        check(&h, &logged, seed, step).await;
    }
    // Drain: everyone logged in and ready, every offer answered, every conversation
    // ended, until nothing is left.
    for a in agents {
        if !logged.contains(a) && h.login(a, true).await.is_ok() {
            logged.insert(a);
        }
        let _ = h.agent(a).go_ready().await;
    }
    for _ in 0..400 {
        settle().await;
        for (a, c) in h.ringing() {
            let _ = h.site.agent(a).accept(c).await;
        }
        for a in agents {
            if let Ok(view) = h.agent(a).view().await {
                for s in view
                    .slots
                    .iter()
                    .filter(|s| s.phase == SlotPhase::OnContact)
                {
                    let _ = h.agent(a).end(s.contact).await;
                }
            }
        }
        advance(11).await;
        if h.site.snapshot().await.unwrap().contacts == 0 {
            break;
        }
    }
    let snap = h.site.snapshot().await.unwrap();
    assert_eq!(
        snap.contacts, 0,
        "seed {seed}: contacts left behind: {snap:?}"
    );
    let mut terminal: HashMap<ContactId, u32> = HashMap::new();
    for e in h.sink.events() {
        if let EventBody::Contact(c) = &e.body
            && c.kind.is_terminal()
        {
            *terminal.entry(c.contact).or_default() += 1;
        }
    }
    for c in &arrived {
        assert_eq!(
            terminal.get(c),
            Some(&1),
            "seed {seed}: contact {c} terminal events"
        );
    }
    h.site.stop().await;
}

async fn check(h: &Harness, logged: &HashSet<&str>, seed: u64, step: usize) {
    h.site
        .check_invariants()
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("seed {seed} step {step}: {e}"));
    let mut reserved: HashMap<ContactId, usize> = HashMap::new();
    let snap = h.site.snapshot().await.unwrap();
    for a in logged {
        let Ok(view) = h.agent(a).view().await else {
            continue;
        };
        // The agent's session and the router agree on every contact the agent holds:
        // no zombie offer, no forgotten conversation.
        let router_side = snap
            .agents
            .iter()
            .find(|s| s.agent.as_str() == *a)
            .map(|s| {
                let mut v: Vec<(ContactId, &'static str)> = s
                    .contacts
                    .iter()
                    .map(|h| (h.contact, h.state.as_str()))
                    .collect();
                v.sort();
                v
            })
            .unwrap_or_default();
        let mut agent_side: Vec<(ContactId, &'static str)> = view
            .slots
            .iter()
            .map(|s| {
                let state = match s.phase {
                    SlotPhase::Reserved => "offered",
                    SlotPhase::OnContact => "connected",
                    SlotPhase::WrapUp => "wrap_up",
                };
                (s.contact, state)
            })
            .collect();
        agent_side.sort();
        if agent_side != router_side && std::env::var_os("HOTLINE_FAULT_DUMP").is_some() {
            for e in h.sink.events() {
                eprintln!("EV {:?}", e.body);
            }
        }
        assert_eq!(
            agent_side, router_side,
            "seed {seed} step {step}: agent {a} and router disagree"
        );
        let voice = view
            .slots
            .iter()
            .filter(|s| s.channel == Channel::Voice)
            .count();
        assert!(
            voice <= 1,
            "seed {seed} step {step}: agent {a} holds {voice} voice contacts"
        );
        for s in view.slots.iter().filter(|s| s.phase == SlotPhase::Reserved) {
            *reserved.entry(s.contact).or_default() += 1;
        }
    }
    for (c, n) in reserved {
        assert!(
            n <= 1,
            "seed {seed} step {step}: contact {c} offered to {n} agents at once"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_crashed_router_is_restarted_from_the_journal_with_every_contact_in_its_place() {
    let mut h = Harness::start().await;
    h.login("bob", true).await.unwrap();
    h.login("cat", true).await.unwrap();
    settle().await;
    let talking = h.arrive("billing").await;
    h.agent("bob").accept(talking).await.unwrap();
    let ringing = h.arrive("general").await;
    let first = h.arrive("billing").await;
    let second = h.arrive("billing").await;
    settle().await;
    assert!(h.ringing().contains(&("cat".parse().unwrap(), ringing)));

    h.site.router().cast(RouterMsg::InjectPanic).unwrap();
    settle().await;

    h.site.check_invariants().await.unwrap().unwrap();
    let snap = h.site.snapshot().await.unwrap();
    assert_eq!(snap.contacts, 4, "no contact lost: {snap:?}");
    let bob = snap
        .agents
        .iter()
        .find(|a| a.agent.as_str() == "bob")
        .unwrap();
    assert_eq!(
        bob.status,
        AgentStatus::OnContact,
        "the conversation goes on"
    );
    // The contact that was ringing rings again (at the only agent who can take it).
    let cat = h.agent("cat").view().await.unwrap();
    assert_eq!(cat.slots.len(), 1);
    assert_eq!(cat.slots[0].contact, ringing);
    // Bob finishes; the waiting contacts keep their order.
    h.agent("bob").end(talking).await.unwrap();
    advance(10).await;
    let bob = h.agent("bob").view().await.unwrap();
    assert_eq!(bob.slots.first().map(|s| s.contact), Some(first), "{bob:?}");
    assert!(h.contact_events(talking).contains(&"done"));
    let _ = second;
}
