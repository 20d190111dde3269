use std::path::PathBuf;

use hotline_acd::config::SiteConfig;
use hotline_acd::ids::IdSource;
use hotline_acd::site::TokioClock;
use hotline_core::event::{ContactEventKind, EventBody, MemorySink};
use hotline_core::ids::ContactId;
use hotline_core::time::Timestamp;

use super::*;

/// Monday 1 June 2026, 10:00 in London: the demo's office is open.
const OPEN: Timestamp = Timestamp(1_780_304_400 * 1_000_000);
/// The same Monday at 23:00 in London: closed.
const CLOSED: Timestamp = Timestamp(1_780_351_200 * 1_000_000);

fn demo_site() -> SiteConfig {
    SiteConfig::from_toml(
        include_str!("../../../hotline/demo/site.toml"),
        "demo/site.toml",
    )
    .unwrap()
}

fn flows_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../hotline/demo/flows"
    ))
}

fn demo_desk() -> Arc<DeskConfig> {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/demo/desk.toml"));
    Arc::new(DeskConfig::load(&path).unwrap())
}

fn demo_flows() -> Flows {
    Flows::from_dir(&flows_dir(), Catalog::from_site(&demo_site())).unwrap()
}

fn intake_at(now: Timestamp, sink: Arc<MemorySink>) -> IvrIntake {
    let options = SessionOptions {
        sink,
        clock: Arc::new(TokioClock::starting_at(now)),
        ids: IdSource::Random,
    };
    IvrIntake::new(
        demo_desk(),
        demo_flows(),
        "demo-1".parse().unwrap(),
        options,
    )
    .unwrap()
}

/// Runs one chat of the demo's web entry with these answers typed up front (and the
/// customer leaving after them when `leave`); the bot's lines and the outcome.
async fn chat(
    intake: &IvrIntake,
    answers: &[&str],
    leave: bool,
) -> (ContactId, Vec<String>, IntakeOutcome) {
    let contact = ContactId::random();
    let (chat, to_intake, mut said) =
        IntakeChat::new("acme".parse().unwrap(), "web".into(), contact);
    for a in answers {
        to_intake.send((*a).to_owned()).unwrap();
    }
    let keep = (!leave).then_some(to_intake);
    let outcome = intake.run(chat).await;
    drop(keep);
    let mut lines = Vec::new();
    while let Ok(l) = said.try_recv() {
        lines.push(l);
    }
    (contact, lines, outcome)
}

fn queued_in(outcome: &IntakeOutcome) -> (&str, &BTreeMap<String, String>) {
    match outcome {
        IntakeOutcome::Queue {
            queue, attributes, ..
        } => (queue.as_str(), attributes),
        other => panic!("not queued: {other:?}"),
    }
}

#[test]
fn the_demo_flows_directory_loads_against_the_demo_site_and_desk() {
    let flows = demo_flows();
    assert_eq!(flows.names(&"acme".parse().unwrap()), ["main"]);
    assert!(flows.names(&"globex".parse().unwrap()).is_empty());
    let desk = demo_desk();
    assert_eq!(desk.tenants[0].chat[0].flow.as_deref(), Some("main"));
    let options = SessionOptions {
        sink: Arc::new(MemorySink::default()),
        clock: Arc::new(hotline_core::time::SystemClock),
        ids: IdSource::Random,
    };
    IvrIntake::new(desk, flows, "demo-1".parse().unwrap(), options).unwrap();
}

#[tokio::test]
async fn every_chat_path_of_the_demo_flow_reaches_the_webchat_queue() {
    let intake = intake_at(OPEN, Arc::new(MemorySink::default()));
    let paths: [(&[&str], &str); 5] = [
        (&["claims", "1234 5678"], "claims"),
        (&["2"], "sales"),
        (&["I would like a quote"], "sales"),
        (&["3"], "claims"),
        (&["what?", "hmm", "no"], ""),
    ];
    for (answers, intent) in paths {
        let (_, lines, outcome) = chat(&intake, answers, false).await;
        assert!(
            lines[0].starts_with("Welcome to Acme Insurance"),
            "{lines:?}"
        );
        assert!(lines[1].starts_with("For claims, press 1"), "{lines:?}");
        let (queue, attributes) = queued_in(&outcome);
        assert_eq!(queue, "webchat", "{answers:?}: {lines:?}");
        assert_eq!(attributes["channel"], "chat");
        assert_eq!(
            attributes.get("intent").map_or("", String::as_str),
            intent,
            "{answers:?}"
        );
        assert!(
            !attributes.contains_key(FLOW_QUEUE_ATTRIBUTE),
            "{attributes:?}"
        );
    }
    let (_, _, outcome) = chat(&intake, &["claims", "12345678"], false).await;
    assert_eq!(queued_in(&outcome).1["policy"], "12345678");
    let (_, _, outcome) = chat(&intake, &["中文"], false).await;
    assert_eq!(queued_in(&outcome).1["language"], "zh");
}

#[tokio::test]
async fn after_hours_the_demo_flow_ends_the_chat_with_its_reason() {
    let intake = intake_at(CLOSED, Arc::new(MemorySink::default()));
    let (_, lines, outcome) = chat(&intake, &[], false).await;
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Our offices are closed")),
        "{lines:?}"
    );
    assert_eq!(
        outcome,
        IntakeOutcome::End {
            reason: "closed".into()
        }
    );
}

#[tokio::test]
async fn a_customer_who_leaves_mid_flow_is_recorded_as_an_abandon_with_the_path_taken() {
    let sink = Arc::new(MemorySink::default());
    let intake = intake_at(OPEN, sink.clone());
    let (contact, _, outcome) = chat(&intake, &["claims"], true).await;
    assert_eq!(
        outcome,
        IntakeOutcome::End {
            reason: CUSTOMER_LEFT.into()
        }
    );
    let kinds: Vec<String> = sink
        .events()
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Contact(c) if c.contact == contact => Some(match &c.kind {
                ContactEventKind::IvrNode { node, .. } => format!("ivr_node {node}"),
                k => k.name().to_owned(),
            }),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "ivr_entered",
            "ivr_node greeting",
            "ivr_node office_hours",
            "ivr_node main_menu",
            "ivr_node policy_number",
            "abandoned"
        ]
    );
}

#[test]
fn a_desk_config_naming_an_unknown_flow_is_refused_naming_the_file_entry_and_field() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/demo/desk.toml"))
        .unwrap()
        .replace("flow = \"main\"", "flow = \"acme-main\"");
    let desk = Arc::new(DeskConfig::from_toml(&text, "demo/desk.toml").unwrap());
    let options = SessionOptions {
        sink: Arc::new(MemorySink::default()),
        clock: Arc::new(hotline_core::time::SystemClock),
        ids: IdSource::Random,
    };
    let Err(e) = IvrIntake::new(desk, demo_flows(), "demo-1".parse().unwrap(), options) else {
        panic!("an unknown flow was accepted");
    };
    assert_eq!(
        e.to_string(),
        "demo/desk.toml: tenant[0] (acme).chat[0] (web): flow = \"acme-main\" is not a loaded IVR flow; \
         the flows of tenant acme are: main (a flow's name is its `flow:` line, not its file name)"
    );
}

#[test]
fn a_flows_directory_with_a_bad_file_is_refused_with_every_file_line_message() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(flows_dir().join("acme-main.yaml")).unwrap();
    std::fs::write(dir.path().join("a.yaml"), &good).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a flow").unwrap();
    let bad = good.replace("queue: webchat", "queue: webchats");
    std::fs::write(dir.path().join("b.yaml"), bad).unwrap();
    let catalog = Catalog::from_site(&demo_site());
    let e = Flows::from_dir(dir.path(), catalog.clone()).unwrap_err();
    let text = e.to_string();
    let b = dir.path().join("b.yaml").display().to_string();
    assert!(
        matches!(e, FlowsError::Invalid(ref v) if v.len() == 1),
        "{text}"
    );
    assert!(
        text.lines().count() == 2
            && text.lines().all(|l| l.starts_with(&format!("{b}:"))
                && l.contains("queue \"webchats\" is not a queue of tenant acme")),
        "{text}"
    );

    std::fs::write(dir.path().join("b.yaml"), &good).unwrap();
    let e = Flows::from_dir(dir.path(), catalog.clone()).unwrap_err();
    assert!(
        e.to_string()
            .contains("flow \"main\" of tenant acme is already defined in"),
        "{e}"
    );
    let e = Flows::from_dir(&dir.path().join("missing"), catalog).unwrap_err();
    assert!(e.to_string().starts_with("cannot read "), "{e}");
}

#[tokio::test]
async fn flow_outcomes_a_chat_cannot_carry_out_are_queued_with_a_note_or_ended() {
    let intake = intake_at(OPEN, Arc::new(MemorySink::default()));
    let (chat, _to, mut said) =
        IntakeChat::new("acme".parse().unwrap(), "web".into(), ContactId::random());
    let webchat: QueueId = "webchat".parse().unwrap();
    let finished = |outcome| Finished {
        outcome,
        attributes: [("intent".to_owned(), "claims".to_owned())].into(),
        flow: "main".into(),
        version: 1,
        node: "n".into(),
    };
    let claims: QueueId = "claims".parse().unwrap();

    let callback = Outcome::Callback {
        queue: claims.clone(),
        number: "+44 20 7946 0000".into(),
    };
    let out = intake.outcome(&chat, &webchat, finished(callback));
    let (queue, attributes) = queued_in(&out);
    assert_eq!(queue, "webchat");
    assert_eq!(attributes[REQUEST_ATTRIBUTE], "callback");
    assert_eq!(attributes["callback_number"], "+44 20 7946 0000");
    assert_eq!(attributes[FLOW_QUEUE_ATTRIBUTE], "claims");
    assert_eq!(attributes["intent"], "claims");

    let voicemail = Outcome::Voicemail {
        queue: Some(webchat.clone()),
        max_secs: 60,
    };
    let out = intake.outcome(&chat, &webchat, finished(voicemail));
    let (queue, attributes) = queued_in(&out);
    assert_eq!(queue, "webchat");
    assert_eq!(attributes[REQUEST_ATTRIBUTE], "voicemail");
    assert!(!attributes.contains_key(FLOW_QUEUE_ATTRIBUTE));

    let ended = |o| match intake.outcome(&chat, &webchat, finished(o)) {
        IntakeOutcome::End { reason } => reason,
        q => panic!("not ended: {q:?}"),
    };
    let no_queue = Outcome::Voicemail {
        queue: None,
        max_secs: 60,
    };
    assert_eq!(ended(no_queue), "voicemail_unavailable_on_chat");
    let transfer = Outcome::Transfer {
        to: "+44 20 7946 0999".into(),
    };
    assert_eq!(
        ended(transfer),
        "transfer_unsupported_on_chat:+44 20 7946 0999"
    );
    let end = Outcome::End {
        reason: "closed".into(),
    };
    assert_eq!(ended(end), "closed");
    let left = Outcome::Abandoned { node: "n".into() };
    assert_eq!(ended(left), CUSTOMER_LEFT);

    let mut lines = Vec::new();
    while let Ok(l) = said.try_recv() {
        lines.push(l);
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("cannot be transferred to +44 20 7946 0999")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn an_entry_without_a_flow_keeps_the_scripted_questions() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/demo/desk.toml"))
        .unwrap()
        .replace("flow = \"main\"\n", "");
    let desk = Arc::new(DeskConfig::from_toml(&text, "demo/desk.toml").unwrap());
    let options = SessionOptions {
        sink: Arc::new(MemorySink::default()),
        clock: Arc::new(TokioClock::starting_at(OPEN)),
        ids: IdSource::Random,
    };
    let intake = IvrIntake::new(desk, demo_flows(), "demo-1".parse().unwrap(), options).unwrap();
    let (_, lines, outcome) = chat(&intake, &["Wang Fang", "billing"], false).await;
    assert!(lines[0].starts_with("Welcome to Acme!"), "{lines:?}");
    let (queue, attributes) = queued_in(&outcome);
    assert_eq!(queue, "webchat");
    assert_eq!(attributes["name"], "Wang Fang");
    assert_eq!(attributes["topic"], "billing");
}
