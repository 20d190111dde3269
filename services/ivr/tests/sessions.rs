//! Session actors end to end, in tokio's paused (virtual) time: timeouts that would take
//! minutes of wall time pass at once, and the clock the session reads follows them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hotline_acd::config::SiteConfig;
use hotline_acd::ids::IdSource;
use hotline_acd::site::TokioClock;
use hotline_core::channel::Channel;
use hotline_core::event::{ContactEventKind, EventBody, MemorySink};
use hotline_core::ids::{ContactId, TraceId};
use hotline_core::time::{Clock, Timestamp};
use hotline_ivr::{
    Catalog, ContactInfo, FlowRegistry, Input, Outcome, Output, PublishedFlow, Session,
    SessionError, SessionHandle, SessionOptions,
};

const SITE: &str = include_str!("../../hotline/demo/site.toml");
const DEMO: &str = include_str!("../../hotline/demo/flows/acme-main.yaml");

fn instant(rfc3339: &str) -> Timestamp {
    let ts: jiff::Timestamp = rfc3339.parse().unwrap();
    Timestamp(u64::try_from(ts.as_microsecond()).unwrap())
}

fn demo_flow() -> Arc<PublishedFlow> {
    let site = SiteConfig::from_toml(SITE, "site.toml").unwrap();
    let mut reg = FlowRegistry::new("acme".parse().unwrap(), Catalog::from_site(&site));
    reg.publish(DEMO, "acme-main.yaml")
        .unwrap_or_else(|e| panic!("{e}"))
}

struct Harness {
    session: SessionHandle,
    sink: Arc<MemorySink>,
    clock: Arc<TokioClock>,
}

impl Harness {
    async fn start(when: &str, channel: Channel, customer: Option<&str>) -> Harness {
        Self::start_flow(demo_flow(), when, channel, customer).await
    }

    async fn start_flow(
        flow: Arc<PublishedFlow>,
        when: &str,
        channel: Channel,
        customer: Option<&str>,
    ) -> Harness {
        let sink = Arc::new(MemorySink::default());
        let clock = Arc::new(TokioClock::starting_at(instant(when)));
        let contact = ContactInfo {
            contact: ContactId::from_u128(42),
            tenant: "acme".parse().unwrap(),
            site: "demo-1".parse().unwrap(),
            trace: TraceId::from_u128(7),
            channel,
            customer: customer.map(str::to_owned),
            attributes: BTreeMap::from([("campaign".to_owned(), "winter".to_owned())]),
        };
        let options = SessionOptions {
            sink: sink.clone(),
            clock: clock.clone(),
            ids: IdSource::sequential(1),
        };
        let session = Session::start(flow, contact, options).await.unwrap();
        Harness {
            session,
            sink,
            clock,
        }
    }

    /// The next prompt's id, and how long after the start it came.
    async fn prompt(&mut self) -> String {
        match self.session.recv().await {
            Some(Output::Prompt(p)) => p.id,
            other => panic!("expected a prompt, got {other:?}"),
        }
    }

    async fn prompts(&mut self, n: usize) -> Vec<String> {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(self.prompt().await);
        }
        v
    }

    /// From the start, through the greeting and the menu's "1", to the policy number.
    async fn reach_policy_number(&mut self) {
        assert_eq!(self.prompts(2).await, vec!["welcome", "main_menu"]);
        self.send(Input::Digits("1".into()));
        assert_eq!(self.prompt().await, "policy_number");
    }

    fn send(&self, input: Input) {
        self.session.send(input).unwrap();
    }

    /// The path of nodes recorded in events so far, checking every event's identity.
    fn path(&self) -> Vec<String> {
        self.sink
            .events()
            .into_iter()
            .filter_map(|e| {
                assert_eq!(e.tenant.as_str(), "acme");
                assert_eq!(e.site.as_str(), "demo-1");
                assert_eq!(e.trace, TraceId::from_u128(7));
                let EventBody::Contact(c) = e.body else {
                    panic!("only contact events")
                };
                assert_eq!(c.contact, ContactId::from_u128(42));
                match c.kind {
                    ContactEventKind::IvrNode {
                        flow,
                        version,
                        node,
                    } => {
                        assert_eq!((flow.as_str(), version), ("main", 1));
                        Some(node)
                    }
                    _ => None,
                }
            })
            .collect()
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.sink
            .events()
            .iter()
            .filter_map(|e| match &e.body {
                EventBody::Contact(c) => Some(c.kind.name()),
                EventBody::Agent(_) => None,
            })
            .collect()
    }
}

/// Tuesday 1 December 2026, 10:00 in London: open.
const OPEN: &str = "2026-12-01T10:00:00Z";

#[tokio::test(start_paused = true)]
async fn a_menu_left_unanswered_reprompts_on_its_timeout_then_takes_its_failure_path() {
    let mut h = Harness::start(OPEN, Channel::Voice, Some("+442079460000")).await;
    let t0 = h.clock.now();
    assert_eq!(h.prompts(2).await, vec!["welcome", "main_menu"]);
    assert_eq!(h.kinds()[..2], ["ivr_entered", "ivr_node"]);
    // No answer: after the 6 s timeout, "are you still there?" and the menu again.
    assert_eq!(h.prompts(2).await, vec!["still_there", "main_menu"]);
    assert_eq!(h.clock.now().since(t0), Duration::from_secs(6));
    assert_eq!(h.prompts(2).await, vec!["still_there", "main_menu"]);
    assert_eq!(h.clock.now().since(t0), Duration::from_secs(12));
    // Retries used up: the failure path queues for sales.
    let (prompts, finished) = h.session.until_finished().await;
    assert_eq!(h.clock.now().since(t0), Duration::from_secs(18));
    assert_eq!(
        prompts.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        vec!["sales_queue"]
    );
    let f = finished.expect("an outcome");
    assert_eq!(
        f.outcome,
        Outcome::Queue {
            queue: "sales".parse().unwrap(),
            priority: None,
            skills: vec![]
        }
    );
    assert_eq!(
        (f.flow.as_str(), f.version, f.node.as_str()),
        ("main", 1, "sales_queue")
    );
    assert_eq!(
        f.attributes["campaign"], "winter",
        "attributes given at the start are kept"
    );
    assert_eq!(f.attributes["caller"], "+442079460000");
    assert_eq!(
        h.path(),
        vec![
            "greeting",
            "office_hours",
            "main_menu",
            "sales_route",
            "sales_queue"
        ]
    );
    assert!(
        h.session.recv().await.is_none(),
        "the session ends after its outcome"
    );
    assert_eq!(h.session.send(Input::HangUp), Err(SessionError::Ended));
}

#[tokio::test(start_paused = true)]
async fn invalid_choices_are_explained_and_a_keyword_on_chat_routes_to_the_chat_queue() {
    let mut h = Harness::start(OPEN, Channel::Chat, None).await;
    assert_eq!(h.prompts(2).await, vec!["welcome", "main_menu"]);
    h.send(Input::Text("pizza".into()));
    assert_eq!(h.prompts(2).await, vec!["sorry", "main_menu"]);
    h.send(Input::Text("I want a QUOTE".into()));
    let (_, f) = h.session.until_finished().await;
    let f = f.unwrap();
    assert_eq!(
        f.outcome,
        Outcome::Queue {
            queue: "webchat".parse().unwrap(),
            priority: None,
            skills: vec![]
        }
    );
    assert_eq!(f.attributes["intent"], "sales");
    assert_eq!(f.attributes["channel"], "chat");
    assert!(
        !f.attributes.contains_key("caller"),
        "no customer identity was given"
    );
}

#[tokio::test(start_paused = true)]
async fn a_policy_number_is_checked_and_collected_for_the_agent() {
    let mut h = Harness::start(OPEN, Channel::Voice, Some("+442079460000")).await;
    h.reach_policy_number().await;
    // Too short: ended with the terminator after four digits.
    h.send(Input::Digits("1234#".into()));
    assert_eq!(h.prompts(2).await, vec!["policy_invalid", "policy_number"]);
    // Keyed one digit at a time, as DTMF arrives.
    for d in "87654321".chars() {
        h.send(Input::Digits(d.to_string()));
    }
    assert_eq!(h.prompt().await, "claims_offer");
    h.send(Input::Text("hold".into()));
    let (_, f) = h.session.until_finished().await;
    let f = f.unwrap();
    assert_eq!(f.attributes["policy"], "87654321");
    assert_eq!(f.attributes["intent"], "claims");
    assert_eq!(
        h.path(),
        vec![
            "greeting",
            "office_hours",
            "main_menu",
            "policy_number",
            "claims_route",
            "claims_offer",
            "claims_queue"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn digits_stop_after_the_inter_digit_pause_in_virtual_time() {
    let mut h = Harness::start(OPEN, Channel::Voice, None).await;
    h.reach_policy_number().await;
    let t0 = h.clock.now();
    h.send(Input::Digits("123".into()));
    // Three digits, then silence: after the 3 s inter-digit pause the entry is judged
    // (too short) and asked again.
    assert_eq!(h.prompts(2).await, vec!["policy_invalid", "policy_number"]);
    assert_eq!(h.clock.now().since(t0), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn after_hours_a_voice_caller_is_offered_voicemail_in_the_tenants_time_zone() {
    // 20:30 in London on a Tuesday (GMT in winter): closed.
    let mut h = Harness::start("2026-12-01T20:30:00Z", Channel::Voice, None).await;
    let (prompts, f) = h.session.until_finished().await;
    let ids: Vec<&str> = prompts.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, vec!["welcome", "after_hours", "voicemail"]);
    assert_eq!(
        f.unwrap().outcome,
        Outcome::Voicemail {
            queue: Some("claims".parse().unwrap()),
            max_secs: 120
        }
    );
    // 07:30 UTC in July is 08:30 in London (BST): open.
    let mut h = Harness::start("2026-07-07T07:30:00Z", Channel::Voice, None).await;
    assert_eq!(h.prompts(2).await, vec!["welcome", "main_menu"]);
}

#[tokio::test(start_paused = true)]
async fn on_a_holiday_the_holiday_message_plays_even_during_opening_hours() {
    // Friday 25 December 2026 at 11:00: a weekday within hours, but Christmas Day.
    let mut h = Harness::start("2026-12-25T11:00:00Z", Channel::Voice, None).await;
    let (prompts, f) = h.session.until_finished().await;
    let ids: Vec<&str> = prompts.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, vec!["welcome", "holiday", "voicemail"]);
    assert!(matches!(f.unwrap().outcome, Outcome::Voicemail { .. }));
    assert_eq!(
        h.path(),
        vec![
            "greeting",
            "office_hours",
            "holiday",
            "closed_route",
            "voicemail"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_hang_up_mid_flow_is_abandoned_with_its_event() {
    let mut h = Harness::start(OPEN, Channel::Voice, None).await;
    h.reach_policy_number().await;
    h.send(Input::Digits("12".into()));
    h.session.hang_up().unwrap();
    let (_, f) = h.session.until_finished().await;
    let f = f.unwrap();
    assert_eq!(
        f.outcome,
        Outcome::Abandoned {
            node: "policy_number".into()
        }
    );
    assert!(
        !f.attributes.contains_key("policy"),
        "a half-keyed number is not kept"
    );
    let kinds = h.kinds();
    assert_eq!(kinds.first(), Some(&"ivr_entered"));
    assert_eq!(kinds.last(), Some(&"abandoned"));
    assert_eq!(kinds.iter().filter(|k| **k == "abandoned").count(), 1);
    // Long after: no timer fires into a stopped session, nothing more is recorded.
    let before = h.sink.len();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(h.sink.len(), before);
}

#[tokio::test(start_paused = true)]
async fn a_flow_of_another_tenant_is_refused() {
    let site = SiteConfig::from_toml(SITE, "site.toml").unwrap();
    let globex = "flow: main\ntenant: globex\nnodes:\n  bye:\n    type: end\n";
    let mut reg = FlowRegistry::new("globex".parse().unwrap(), Catalog::from_site(&site));
    let flow = reg.publish(globex, "globex.yaml").unwrap();
    let contact = ContactInfo {
        contact: ContactId::from_u128(1),
        tenant: "acme".parse().unwrap(),
        site: "demo-1".parse().unwrap(),
        trace: TraceId::from_u128(1),
        channel: Channel::Chat,
        customer: None,
        attributes: BTreeMap::new(),
    };
    let sink = Arc::new(MemorySink::default());
    let options = SessionOptions {
        sink: sink.clone(),
        clock: Arc::new(TokioClock::starting_at(instant(OPEN))),
        ids: IdSource::sequential(1),
    };
    let err = Session::start(flow, contact, options).await.unwrap_err();
    assert!(
        err.to_string().contains("belongs to tenant globex"),
        "{err}"
    );
    assert!(sink.is_empty(), "nothing recorded for a refused session");
}

#[tokio::test(start_paused = true)]
async fn a_session_that_ends_at_once_still_records_its_path_and_stops() {
    let site = SiteConfig::from_toml(SITE, "site.toml").unwrap();
    let mut reg = FlowRegistry::new("acme".parse().unwrap(), Catalog::from_site(&site));
    let text = "flow: closed\ntenant: acme\nnodes:\n  sorry:\n    type: say\n    prompt: We are closed today.\n    next: bye\n  bye:\n    type: end\n    reason: closed\n";
    let flow = reg.publish(text, "closed.yaml").unwrap();
    let mut h = Harness::start_flow(flow, OPEN, Channel::Chat, None).await;
    let (prompts, f) = h.session.until_finished().await;
    assert_eq!(prompts[0].text, "We are closed today.");
    assert_eq!(
        f.unwrap().outcome,
        Outcome::End {
            reason: "closed".into()
        }
    );
    assert_eq!(h.kinds(), vec!["ivr_entered", "ivr_node", "ivr_node"]);
    assert!(h.session.recv().await.is_none());
}
