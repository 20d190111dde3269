//! The desk against a real site ACD, over real WebSockets on 127.0.0.1: whole chats,
//! reconnects, transfers, supervisors, tenant isolation, authentication and bad input.

mod support;

use std::sync::Arc;
use std::time::Duration;

use hotline_core::event::{ContactEventKind, EventBody};
use serde_json::json;
use support::{Served, customer};

fn is_contact(e: &hotline_core::event::Event, contact: &str, name: &str) -> bool {
    matches!(&e.body, EventBody::Contact(c) if c.contact.to_string() == contact && c.kind.name() == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_goes_through_intake_to_an_agent_and_ends_with_a_disposition() {
    let served = Served::start("").await;
    let (mut ann, _) = served.staff("acme", "ann").await;
    ann.agent("logged in, not ready", |a| a["state"] == "not_ready")
        .await;
    assert_eq!(ann.request(json!({"type": "ready"})).await["type"], "ack");
    let (mut cust, _, contact) = customer(&served, "Wang Fang", "billing").await;

    let offer = ann
        .agent("the offer", |a| {
            a["offer"].is_object() && a["state"] == "reserved"
        })
        .await;
    let o = &offer["offer"];
    assert_eq!(o["contact"], contact.as_str());
    assert_eq!(o["queue"], "webchat");
    assert_eq!(
        o["attributes"],
        json!({"name": "Wang Fang", "topic": "billing"})
    );
    assert!(o["rings_out_at_ms"].as_u64().unwrap() > offer["since_ms"].as_u64().unwrap());
    let said: Vec<&str> = o["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert!(
        said.contains(&"Welcome to Acme!") && said.contains(&"billing"),
        "{said:?}"
    );

    assert_eq!(
        ann.request(json!({"type": "accept", "contact": contact}))
            .await["type"],
        "ack"
    );
    cust.wait("connected to Ann", |f| {
        f["type"] == "chat" && f["state"] == "connected" && f["agent"] == "Ann"
    })
    .await;
    assert_eq!(
        ann.request(
            json!({"type": "send", "contact": contact, "text": "Hello Wang, how can I help?"})
        )
        .await["type"],
        "ack"
    );
    cust.wait("Ann's message", |f| {
        f["type"] == "message" && f["from"] == "agent" && f["name"] == "Ann"
    })
    .await;
    assert_eq!(
        cust.request(json!({"type": "message", "text": "My bill is wrong"}))
            .await["type"],
        "ack"
    );
    ann.wait("the customer's message", |f| {
        f["type"] == "message" && f["from"] == "customer" && f["text"] == "My bill is wrong"
    })
    .await;

    assert_eq!(
        ann.request(json!({"type": "end", "contact": contact}))
            .await["type"],
        "ack"
    );
    cust.wait("the chat ended", |f| {
        f["type"] == "chat" && f["state"] == "ended"
    })
    .await;
    ann.agent("wrap-up", |a| {
        a["state"] == "wrap_up" && a["contacts"][0]["phase"] == "wrap_up"
    })
    .await;
    let bad = ann
        .request(json!({"type": "wrap_up", "contact": contact, "code": "sold", "notes": ""}))
        .await;
    assert_eq!(
        (bad["type"].as_str(), bad["code"].as_str()),
        (Some("error"), Some("bad_message"))
    );
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .contains("resolved, follow_up, escalated"),
        "{bad}"
    );
    let r = ann.request(json!({"type": "wrap_up", "contact": contact, "code": "resolved", "notes": "refund issued"})).await;
    assert_eq!(r["type"], "ack", "{r}");
    let done = ann
        .agent("free again", |a| {
            a["contacts"].as_array().unwrap().is_empty() && a["state"] == "ready"
        })
        .await;
    assert_eq!(done["figures"]["answered"], 1);
    assert_eq!(done["figures"]["handled"], 1);
    assert_eq!(done["figures"]["offered"], 1);

    let disp = served
        .event("dispositioned", |e| {
            is_contact(e, &contact, "dispositioned")
        })
        .await;
    let arrived = served
        .event("arrived", |e| is_contact(e, &contact, "arrived"))
        .await;
    served
        .event("done", |e| is_contact(e, &contact, "done"))
        .await;
    assert_eq!(
        (disp.trace, disp.tenant.as_str(), disp.site.as_str()),
        (arrived.trace, "acme", "north")
    );
    let EventBody::Contact(c) = &disp.body else {
        unreachable!()
    };
    assert_eq!(c.agent.as_ref().map(|a| a.as_str()), Some("ann"));
    assert_eq!(
        c.kind,
        ContactEventKind::Dispositioned {
            code: "resolved".into(),
            notes: "refund issued".into()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_agents_and_customers_keep_their_contact_and_its_history() {
    let served = Served::start("").await;
    let (mut ann, token) = served.staff("acme", "ann").await;
    ann.request(json!({"type": "ready"})).await;
    let (cust, chat_token, contact) = customer(&served, "Li Lei", "delivery").await;
    ann.agent("the offer", |a| a["offer"].is_object()).await;

    // The agent's page drops while the offer rings: it comes back with the offer.
    ann.close().await;
    let mut ann = served.client("/desk/ws").await;
    assert_eq!(
        ann.request(json!({"type": "resume", "token": token})).await["type"],
        "ack"
    );
    let back = ann.seen_of("agent").expect("the state after resuming");
    assert_eq!(back["offer"]["contact"], contact.as_str());
    assert_eq!(back["offer"]["attributes"]["topic"], "delivery");
    ann.request(json!({"type": "accept", "contact": contact}))
        .await;
    ann.request(json!({"type": "send", "contact": contact, "text": "Checking your parcel"}))
        .await;

    // The customer's page drops and resumes within the grace period: same chat.
    cust.close().await;
    let mut cust = served.client("/desk/ws/chat").await;
    assert_eq!(
        cust.request(json!({"type": "resume", "token": chat_token}))
            .await["type"],
        "ack"
    );
    let view = cust.seen_of("chat").unwrap();
    assert_eq!(
        (view["contact"].as_str(), view["state"].as_str()),
        (Some(contact.as_str()), Some("connected"))
    );
    assert!(
        view["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["text"] == "Checking your parcel"),
        "{view}"
    );
    cust.request(json!({"type": "message", "text": "Thanks!"}))
        .await;

    ann.close().await;
    let mut ann = served.client("/desk/ws").await;
    ann.request(json!({"type": "resume", "token": token})).await;
    let back = ann.seen_of("agent").unwrap();
    let lines: Vec<&str> = back["contacts"][0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert!(
        lines.ends_with(&["Ann joined the chat", "Checking your parcel", "Thanks!"]),
        "{lines:?}"
    );
    assert!(
        !served
            .events()
            .iter()
            .any(|e| is_contact(e, &contact, "abandoned"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_who_leaves_while_queued_is_an_abandon() {
    let served = Served::start("").await;
    let (mut cust, _, contact) = customer(&served, "Zhang Wei", "returns").await;
    served
        .event("queued", |e| is_contact(e, &contact, "queued"))
        .await;
    assert_eq!(cust.request(json!({"type": "leave"})).await["type"], "ack");
    let e = served
        .event("abandoned", |e| is_contact(e, &contact, "abandoned"))
        .await;
    let EventBody::Contact(c) = &e.body else {
        unreachable!()
    };
    assert!(
        matches!(
            c.kind,
            ContactEventKind::Abandoned {
                while_offered: false,
                ..
            }
        ),
        "{:?}",
        c.kind
    );
    let r = cust
        .request(json!({"type": "message", "text": "hello?"}))
        .await;
    assert_eq!(r["code"], "unknown_session", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_the_acd_ends_by_itself_ends_on_the_customers_page_with_a_reason() {
    // Nobody logged in, and web chats may wait 1 s before the queue disconnects them.
    let site = support::SITE.replace(
        "name = \"Web chat\"\n",
        "name = \"Web chat\"\nmax_wait_secs = 1\non_max_wait = { action = \"disconnect\" }\n",
    );
    let scripted: support::MakeIntake = Box::new(|config, _, _| {
        Arc::new(hotline_desk::intake::ScriptedIntake::new(Arc::new(
            config.clone(),
        )))
    });
    let served =
        Served::start_with(&site, support::desk_config(""), support::PASSWORD, scripted).await;
    let (mut cust, _, contact) = customer(&served, "Zhang Wei", "returns").await;
    served
        .event("failed", |e| is_contact(e, &contact, "failed"))
        .await;
    cust.wait("the reason", |f| {
        f["type"] == "message"
            && f["text"]
                .as_str()
                .is_some_and(|t| t.contains("no agent can take your chat"))
    })
    .await;
    cust.wait("the chat ended", |f| {
        f["type"] == "chat" && f["state"] == "ended"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_whose_page_never_comes_back_is_an_abandon_after_the_grace_period() {
    let served = Served::start("customer_grace_secs = 1").await;
    let (cust, token, contact) = customer(&served, "Chen Jie", "account").await;
    cust.close().await;
    served
        .event("abandoned", |e| is_contact(e, &contact, "abandoned"))
        .await;
    let mut again = served.client("/desk/ws/chat").await;
    let r = again
        .request(json!({"type": "resume", "token": token}))
        .await;
    assert_eq!(r["code"], "unknown_session", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transferred_chat_reaches_the_next_agent_with_its_history() {
    let served = Served::start("").await;
    let (mut ann, _) = served.staff("acme", "ann").await;
    let (mut bob, _) = served.staff("acme", "bob").await;
    ann.request(json!({"type": "ready"})).await;
    let (mut cust, _, contact) = customer(&served, "Wu Min", "upgrade").await;
    ann.agent("the offer", |a| a["offer"].is_object()).await;
    ann.request(json!({"type": "accept", "contact": contact}))
        .await;
    ann.request(json!({"type": "send", "contact": contact, "text": "Let me get a specialist"}))
        .await;

    let r = ann
        .request(json!({"type": "transfer", "contact": contact, "queue": "phone"}))
        .await;
    assert_eq!(
        r["code"], "refused",
        "a chat cannot go to a voice queue: {r}"
    );
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("takes voice contacts"),
        "{r}"
    );
    let r = ann
        .request(json!({"type": "transfer", "contact": contact, "queue": "vip"}))
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    cust.wait("told about the transfer", |f| {
        f["type"] == "chat" && f["state"] == "queued"
    })
    .await;
    let a = ann
        .agent("wrap-up after the transfer", |a| {
            a["contacts"][0]["phase"] == "wrap_up"
        })
        .await;
    assert_eq!(a["figures"]["transferred"], 1);

    bob.request(json!({"type": "ready"})).await;
    let offer = bob.agent("Bob's offer", |a| a["offer"].is_object()).await;
    let lines: Vec<&str> = offer["offer"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert!(lines.contains(&"Let me get a specialist"), "{lines:?}");
    assert_eq!(offer["offer"]["queue"], "vip");
    bob.request(json!({"type": "accept", "contact": contact}))
        .await;
    cust.wait("connected to Bob", |f| {
        f["type"] == "chat" && f["agent"] == "Bob"
    })
    .await;
    ann.request(json!({"type": "wrap_up", "contact": contact, "code": "escalated"}))
        .await;
    let e = served
        .event("transferred", |e| is_contact(e, &contact, "transferred"))
        .await;
    let EventBody::Contact(c) = &e.body else {
        unreachable!()
    };
    assert_eq!(
        (
            c.queue.as_ref().unwrap().as_str(),
            c.agent.as_ref().unwrap().as_str()
        ),
        ("webchat", "ann")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_sees_the_tenant_live_forces_states_and_moves_waiting_chats() {
    let served = Served::start("").await;
    let mut ann = served.ready("acme", "ann").await;
    ann.request(json!({"type": "not_ready", "reason": "lunch"}))
        .await;
    let (mut sue, _) = served.staff("acme", "sue").await;
    let (_cust, _, contact) = customer(&served, "Zhou Yu", "invoice").await;
    let view = sue
        .wait("the waiting chat", |f| {
            f["type"] == "supervisor" && f["waiting"].as_array().is_some_and(|w| !w.is_empty())
        })
        .await;
    let queues: Vec<&str> = view["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["queue"].as_str().unwrap())
        .collect();
    assert_eq!(queues, ["webchat", "vip", "phone"], "acme's queues only");
    let agents: Vec<&str> = view["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agent"].as_str().unwrap())
        .collect();
    assert_eq!(agents, ["ann", "bob"], "agents serving acme only");
    assert_eq!(view["waiting"][0]["attributes"]["topic"], "invoice");

    let r = sue
        .request(json!({"type": "move_contact", "contact": contact, "queue": "vip"}))
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    sue.wait("the chat waiting in vip", |f| {
        f["type"] == "supervisor" && f["waiting"][0]["queue"] == "vip"
    })
    .await;
    served
        .event("overflowed by the supervisor", |e| {
            is_contact(e, &contact, "overflowed")
        })
        .await;

    let r = sue
        .request(json!({"type": "force_state", "agent": "ann", "state": "ready"}))
        .await;
    assert_eq!(r["type"], "ack", "{r}");
    ann.agent("forced ready", |a| a["state"] == "ready").await;
    sue.request(json!({"type": "force_state", "agent": "ann", "state": "not_ready"}))
        .await;
    ann.agent("forced not ready", |a| {
        a["state"] == "not_ready" && a["reason"] == "supervisor"
    })
    .await;
    let r = sue
        .request(json!({"type": "accept", "contact": contact}))
        .await;
    assert_eq!(r["code"], "forbidden", "a supervisor is not an agent: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_contact_answers_not_found_to_agents_and_supervisors() {
    let served = Served::start("").await;
    let mut ann = served.ready("acme", "ann").await;
    let (_cust, _, contact) = customer(&served, "Sun Li", "card").await;
    ann.agent("the offer", |a| a["offer"].is_object()).await;
    let (mut gus, _) = served.staff("globex", "gus").await;
    gus.request(json!({"type": "ready"})).await;
    for req in [
        json!({"type": "accept", "contact": contact}),
        json!({"type": "send", "contact": contact, "text": "hi"}),
        json!({"type": "transfer", "contact": contact, "queue": "help"}),
        json!({"type": "wrap_up", "contact": contact, "code": "done"}),
    ] {
        let r = gus.request(req.clone()).await;
        assert_eq!(r["code"], "not_found", "{req}: {r}");
    }
    let (mut gina, _) = served.staff("globex", "gina").await;
    let r = gina
        .request(json!({"type": "move_contact", "contact": contact, "queue": "help"}))
        .await;
    assert_eq!(r["code"], "not_found", "{r}");
    let r = gina
        .request(json!({"type": "force_state", "agent": "ann", "state": "not_ready"}))
        .await;
    assert_eq!(r["code"], "not_found", "{r}");
    let view = gina
        .wait("globex's view", |f| f["type"] == "supervisor")
        .await;
    assert!(view["waiting"].as_array().unwrap().is_empty(), "{view}");
    assert!(!view.to_string().contains(&contact), "{view}");
    // Ann's offer is untouched.
    assert_eq!(
        ann.request(json!({"type": "accept", "contact": contact}))
            .await["type"],
        "ack"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_that_do_not_match_the_schema_get_an_error_and_change_nothing() {
    let served = Served::start("").await;
    let mut ann = served.ready("acme", "ann").await;
    let before = ann.agent("ready", |a| a["state"] == "ready").await;
    for bad in [
        "not json".to_owned(),
        json!({"type": "not_ready", "reason": "break"}).to_string(),
        json!({"v": 9, "type": "not_ready", "reason": "break"}).to_string(),
        json!({"v": 1, "type": "not_ready"}).to_string(),
        json!({"v": 1, "type": "not_ready", "reason": "break", "force": true}).to_string(),
        json!({"v": 1, "type": "not_ready", "reason": "nap"}).to_string(),
        json!({"v": 1, "type": "go_home"}).to_string(),
    ] {
        ann.send_raw(&bad).await;
        let e = ann
            .wait(&format!("an error for {bad}"), |f| f["type"] == "error")
            .await;
        assert!(!e["message"].as_str().unwrap().is_empty(), "{e}");
    }
    assert_eq!(ann.request(json!({"type": "ping"})).await["type"], "pong");
    let snap = served.site.snapshot().await.unwrap();
    let a = snap
        .agents
        .iter()
        .find(|a| a.agent.as_str() == "ann")
        .unwrap();
    assert_eq!(a.status.name(), "ready", "no bad frame changed Ann's state");
    assert!(
        ann.seen.iter().rfind(|f| f["type"] == "agent") == Some(&before),
        "no new state pushed"
    );

    let mut cust = served.client("/desk/ws/chat").await;
    let r = cust
        .request(json!({"type": "start", "tenant": "initech"}))
        .await;
    assert_eq!(r["code"], "not_found", "{r}");
    let r = cust.request(json!({"type": "message", "text": "hi"})).await;
    assert_eq!(r["code"], "not_logged_in", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_and_an_expired_session_must_log_in_again() {
    let served = Served::start("session_ttl_secs = 1").await;
    let mut c = served.client("/desk/ws").await;
    for (tenant, user, password) in [
        ("acme", "ann", "wrong"),
        ("globex", "ann", support::PASSWORD),
        ("acme", "nobody", "x"),
    ] {
        let r = c
            .request(json!({"type": "login", "tenant": tenant, "user": user, "password": password}))
            .await;
        assert_eq!(r["code"], "bad_credentials", "{tenant}/{user}: {r}");
        assert_eq!(
            r["message"],
            "wrong tenant, user or password; check them and try again"
        );
    }
    let r = c.request(json!({"type": "ready"})).await;
    assert_eq!(r["code"], "not_logged_in", "{r}");
    assert!(
        served
            .site
            .snapshot()
            .await
            .unwrap()
            .agents
            .iter()
            .all(|a| a.status.name() == "logged_out")
    );

    let (mut ann, token) = served.staff("acme", "ann").await;
    // Waits out the session's one-second lifetime.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let r = ann.request(json!({"type": "ready"})).await;
    assert_eq!(r["code"], "session_expired", "{r}");
    let mut again = served.client("/desk/ws").await;
    let r = again
        .request(json!({"type": "resume", "token": token}))
        .await;
    assert_eq!(r["code"], "unknown_session", "{r}");
    let r = again
        .request(json!({"type": "resume", "token": "0".repeat(64)}))
        .await;
    assert_eq!(r["code"], "unknown_session", "{r}");
}
