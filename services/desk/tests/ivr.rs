//! Chats answered by the IVR over the real gateway: the demo site's ACD, the demo desk
//! configuration and the demo flows directory (what `hotline up` runs), a customer on
//! a real WebSocket, and an agent who is offered what the flow collected.

mod support;

use std::path::Path;
use std::sync::Arc;

use hotline_acd::ids::IdSource;
use hotline_acd::site::TokioClock;
use hotline_core::event::{ContactEventKind, Event, EventBody};
use hotline_core::time::Timestamp;
use hotline_desk::{DeskConfig, Flows, IvrIntake};
use hotline_ivr::{Catalog, SessionOptions};
use serde_json::{Value, json};
use support::{Client, MakeIntake, Served};

/// Monday 1 June 2026, 10:00 in London: the demo's office is open.
const OPEN: Timestamp = Timestamp(1_780_304_400 * 1_000_000);

const DEMO_SITE: &str = include_str!("../../hotline/demo/site.toml");

/// The demo site and desk with the IVR intake over the demo flows, its clock in office
/// hours.
async fn demo() -> Served {
    let desk = DeskConfig::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/demo/desk.toml"
    )))
    .expect("the demo desk config is valid");
    let site = hotline_acd::config::SiteConfig::from_toml(DEMO_SITE, "site.toml").unwrap();
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../hotline/demo/flows"
    ));
    let flows = Flows::from_dir(dir, Catalog::from_site(&site)).expect("the demo flows load");
    let intake: MakeIntake = Box::new(move |config, site, sink| {
        let options = SessionOptions {
            sink,
            clock: Arc::new(TokioClock::starting_at(OPEN)),
            ids: IdSource::Random,
        };
        let config = Arc::new(config.clone());
        Arc::new(IvrIntake::new(config, flows, site.id().clone(), options).expect("flows named"))
    });
    Served::start_with(DEMO_SITE, desk, "demo", intake).await
}

async fn bot_says(c: &mut Client, starting: &str) -> Value {
    c.wait(&format!("the bot saying {starting:?}"), |f| {
        f["type"] == "message"
            && f["from"] == "bot"
            && f["text"].as_str().is_some_and(|t| t.starts_with(starting))
    })
    .await
}

async fn type_in(c: &mut Client, text: &str) {
    let r = c.request(json!({"type": "message", "text": text})).await;
    assert_eq!(r["type"], "ack", "{r}");
}

/// A customer who started a chat of acme's web entry; the client and the contact id.
async fn start_chat(served: &Served) -> (Client, String) {
    let mut c = served.client("/desk/ws/chat").await;
    let r = c.request(json!({"type": "start", "tenant": "acme"})).await;
    assert_eq!(r["type"], "ack", "{r}");
    let contact = c.seen_of("chat").expect("a chat frame")["contact"]
        .as_str()
        .unwrap()
        .to_owned();
    (c, contact)
}

/// The contact's events, by name (`ivr_node` with its node).
fn path_of(events: &[Event], contact: &str) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Contact(c) if c.contact.to_string() == contact => Some(match &c.kind {
                ContactEventKind::IvrNode { node, .. } => format!("ivr_node {node}"),
                k => k.name().to_owned(),
            }),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_answered_by_the_ivr_reaches_the_agent_with_what_the_flow_collected() {
    let served = demo().await;
    let mut fatima = served.ready("acme", "fatima").await;
    let (mut cust, contact) = start_chat(&served).await;

    bot_says(&mut cust, "Welcome to Acme Insurance.").await;
    bot_says(&mut cust, "For claims, press 1 or say claims.").await;
    type_in(&mut cust, "I had an accident").await;
    bot_says(&mut cust, "Please enter your 8-digit policy number").await;
    type_in(&mut cust, "1234 5678").await;
    bot_says(&mut cust, "An agent will join this chat shortly.").await;
    cust.wait("queued", |f| f["type"] == "chat" && f["state"] == "queued")
        .await;

    let offer = fatima.agent("the offer", |a| a["offer"].is_object()).await;
    let o = &offer["offer"];
    assert_eq!(o["contact"], contact.as_str());
    assert_eq!(o["queue"], "webchat");
    assert_eq!(
        o["attributes"],
        json!({"channel": "chat", "intent": "claims", "policy": "12345678"})
    );

    let events = served.events();
    let path = path_of(&events, &contact);
    let arrived = path.iter().position(|k| k == "arrived");
    assert_eq!(
        path[..7],
        [
            "ivr_entered",
            "ivr_node greeting",
            "ivr_node office_hours",
            "ivr_node main_menu",
            "ivr_node policy_number",
            "ivr_node claims_route",
            "ivr_node chat_queue",
        ],
        "{path:?}"
    );
    assert_eq!(arrived, Some(7), "the IVR runs before the ACD: {path:?}");
    let traces: std::collections::BTreeSet<_> = events
        .iter()
        .filter(|e| matches!(&e.body, EventBody::Contact(c) if c.contact.to_string() == contact))
        .map(|e| e.trace)
        .collect();
    assert_eq!(traces.len(), 1, "one journey, one trace: {traces:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_who_leaves_mid_ivr_is_an_abandon_with_the_path_on_record() {
    let served = demo().await;
    let (mut cust, contact) = start_chat(&served).await;
    bot_says(&mut cust, "For claims, press 1 or say claims.").await;
    type_in(&mut cust, "claims please").await;
    bot_says(&mut cust, "Please enter your 8-digit policy number").await;
    assert_eq!(cust.request(json!({"type": "leave"})).await["type"], "ack");

    served
        .event("the abandon", |e| {
            matches!(&e.body, EventBody::Contact(c)
                if c.contact.to_string() == contact && c.kind.name() == "abandoned")
        })
        .await;
    assert_eq!(
        path_of(&served.events(), &contact),
        [
            "ivr_entered",
            "ivr_node greeting",
            "ivr_node office_hours",
            "ivr_node main_menu",
            "ivr_node policy_number",
            "abandoned",
        ],
        "never queued, so never arrived"
    );
}
