//! Shared by the desk's integration tests: a site ACD and its desk on 127.0.0.1:0,
//! and a small WebSocket client that waits for frames with a deadline.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hotline_acd::config::SiteConfig;
use hotline_acd::ids::IdSource;
use hotline_acd::site::{Site, SiteOptions};
use hotline_core::event::{Event, MemorySink};
use hotline_core::time::SystemClock;
use hotline_desk::{Desk, DeskConfig};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any awaited frame may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// The password of every test user.
pub const PASSWORD: &str = "s3cret-pw";

/// Two tenants: acme with two chat queues and a voice queue, globex with one chat queue.
pub const SITE: &str = r#"
site = "north"
[defaults]
no_answer_secs = 20
[[tenant]]
id = "acme"
skills = ["chat"]
[[tenant]]
id = "globex"
skills = ["chat"]

[[queue]]
tenant = "acme"
id = "webchat"
name = "Web chat"
channel = "chat"
skills = [{ skill = "chat", min = 1 }]
wrap_up_secs = 120
[[queue]]
tenant = "acme"
id = "vip"
name = "VIP chat"
channel = "chat"
skills = [{ skill = "chat", min = 3 }]
wrap_up_secs = 120
[[queue]]
tenant = "acme"
id = "phone"
skills = [{ skill = "chat", min = 1 }]
[[queue]]
tenant = "globex"
id = "help"
channel = "chat"
skills = [{ skill = "chat", min = 1 }]

[[agent]]
id = "ann"
name = "Ann"
capacity = { voice = 1, chat = 2 }
serves = [{ tenant = "acme", skills = [{ skill = "chat", level = 2 }] }]
[[agent]]
id = "bob"
name = "Bob"
capacity = { voice = 1, chat = 2 }
serves = [{ tenant = "acme", skills = [{ skill = "chat", level = 5 }] }]
[[agent]]
id = "gus"
name = "Gus"
capacity = { voice = 1, chat = 2 }
serves = [{ tenant = "globex", skills = [{ skill = "chat", level = 5 }] }]
"#;

/// The desk's configuration for [`SITE`]; `extra` goes at the top (settings).
pub fn desk_config(extra: &str) -> DeskConfig {
    let hash = hotline_desk::auth::hash_password(PASSWORD).expect("hashing works");
    let user = |tenant: &str, id: &str, name: &str, role: &str| {
        format!(
            "[[user]]\ntenant = \"{tenant}\"\nid = \"{id}\"\nname = \"{name}\"\nrole = \"{role}\"\npassword_hash = \"{hash}\"\n"
        )
    };
    let text = format!(
        r#"{extra}
[[tenant]]
id = "acme"
dispositions = ["resolved", "follow_up", "escalated"]
not_ready_reasons = ["break", "lunch"]
[[tenant.chat]]
entry = "web"
queue = "webchat"
greeting = "Welcome to Acme!"
questions = [{{ key = "name", prompt = "What is your name?" }}, {{ key = "topic", prompt = "What can we help you with?" }}]

[[tenant]]
id = "globex"
dispositions = ["done"]
[[tenant.chat]]
entry = "web"
queue = "help"

{}{}{}{}"#,
        user("acme", "ann", "Ann", "agent"),
        user("acme", "bob", "Bob", "agent"),
        user("acme", "sue", "Sue", "supervisor"),
        user("globex", "gus", "Gus", "agent"),
    ) + &user("globex", "gina", "Gina", "supervisor");
    DeskConfig::from_toml(&text, "test-desk.toml").expect("the test desk config is valid")
}

/// The site's sink in these tests: every event recorded, and given to the desk.
struct Tap {
    memory: Arc<MemorySink>,
    desk: std::sync::OnceLock<Desk>,
}

impl hotline_core::event::EventSink for Tap {
    fn publish(&self, events: &[Event]) {
        self.memory.publish(events);
        if let Some(desk) = self.desk.get() {
            desk.follow(events);
        }
    }
}

/// A site and its desk, served on 127.0.0.1.
pub struct Served {
    /// The site.
    pub site: Site,
    /// Every event (the site's and the desk's).
    pub events: Arc<MemorySink>,
    /// `127.0.0.1:PORT`.
    pub addr: std::net::SocketAddr,
    /// The password every staff user of the desk configuration has.
    pub password: &'static str,
}

/// Builds a desk's intake from its configuration, the running site and the sink.
pub type MakeIntake =
    Box<dyn FnOnce(&DeskConfig, &Site, Arc<MemorySink>) -> Arc<dyn hotline_desk::intake::Intake>>;

impl Served {
    /// Starts the site and the desk; `extra` goes at the top of the desk's config.
    pub async fn start(extra: &str) -> Served {
        let scripted: MakeIntake = Box::new(|config, _, _| {
            Arc::new(hotline_desk::intake::ScriptedIntake::new(Arc::new(
                config.clone(),
            )))
        });
        Served::start_with(SITE, desk_config(extra), PASSWORD, scripted).await
    }

    /// Starts the site of `site` (TOML) and a desk with `desk` and the intake `intake`
    /// makes; every staff user's password is `password`.
    pub async fn start_with(
        site: &str,
        desk: DeskConfig,
        password: &'static str,
        intake: MakeIntake,
    ) -> Served {
        let events = Arc::new(MemorySink::default());
        let config = SiteConfig::from_toml(site, "test-site.toml").expect("valid site");
        // The site's events are recorded and followed by the desk, as `hotline site` does.
        let tap = Arc::new(Tap {
            memory: events.clone(),
            desk: std::sync::OnceLock::new(),
        });
        let site = Site::start(
            config,
            SiteOptions {
                sink: tap.clone(),
                clock: Arc::new(SystemClock),
                ids: IdSource::Random,
                shards: 2,
            },
        )
        .await
        .expect("the site starts");
        let intake = intake(&desk, &site, events.clone());
        let desk = Desk::new(
            desk,
            site.clone(),
            events.clone(),
            hotline_desk::DeskOptions { intake },
        )
        .expect("the desk starts");
        let _ = tap.desk.set(desk.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let app = desk.router();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Served {
            site,
            events,
            addr,
            password,
        }
    }

    /// A client on `path` (`/desk/ws` or `/desk/ws/chat`).
    pub async fn client(&self, path: &str) -> Client {
        let url = format!("ws://{}{path}", self.addr);
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("the socket opens");
        Client {
            ws,
            next_id: 1,
            seen: Vec::new(),
            unread: std::collections::VecDeque::new(),
        }
    }

    /// A staff client logged in as `tenant/user`; returns it and its session token.
    pub async fn staff(&self, tenant: &str, user: &str) -> (Client, String) {
        let mut c = self.client("/desk/ws").await;
        let r = c
            .request(
                json!({"type": "login", "tenant": tenant, "user": user, "password": self.password}),
            )
            .await;
        assert_eq!(r["type"], "ack", "login of {tenant}/{user}: {r}");
        let welcome = c
            .seen_of("welcome")
            .expect("a welcome frame before the ack");
        let token = welcome["token"].as_str().expect("a token").to_owned();
        (c, token)
    }

    /// An agent logged in and gone ready.
    pub async fn ready(&self, tenant: &str, user: &str) -> Client {
        let (mut c, _) = self.staff(tenant, user).await;
        let r = c.request(json!({"type": "ready"})).await;
        assert_eq!(r["type"], "ack", "{tenant}/{user} going ready: {r}");
        c
    }

    /// Events published so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.events()
    }

    /// Waits until some event satisfies `f`.
    pub async fn event(&self, what: &str, f: impl Fn(&Event) -> bool) -> Event {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(e) = self.events().into_iter().find(|e| f(e)) {
                return e;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no event {what} within {WAIT:?}: {:#?}",
                self.events()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A WebSocket client speaking the desk's schema.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Every frame received, in order.
    pub seen: Vec<Value>,
    /// Frames no wait has taken yet.
    unread: std::collections::VecDeque<Value>,
}

impl Client {
    /// Sends raw text.
    pub async fn send_raw(&mut self, text: &str) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// Sends a request (adding `v` and an `id`) and waits for its ack or error.
    pub async fn request(&mut self, mut body: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        body["v"] = json!(1);
        body["id"] = json!(id);
        self.send_raw(&body.to_string()).await;
        // Only the answer is taken: frames pushed meanwhile stay for later waits.
        self.take(
            &format!("the answer to request {id} ({body})"),
            false,
            |f| {
                matches!(f["type"].as_str(), Some("ack" | "error" | "pong"))
                    && f["ref"] == json!(id)
            },
        )
        .await
    }

    /// The last frame of `type` received so far.
    pub fn seen_of(&self, kind: &str) -> Option<Value> {
        self.seen.iter().rev().find(|f| f["type"] == kind).cloned()
    }

    /// Waits for a frame satisfying `f` — the first such frame no earlier wait took, or a
    /// new one — and forgets the frames before it (the state they showed is past).
    pub async fn wait(&mut self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        self.take(what, true, f).await
    }

    async fn take(&mut self, what: &str, drop_older: bool, f: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.unread.iter().position(&f) {
            if drop_older {
                self.unread.drain(..i);
                return self.unread.pop_front().expect("in range");
            }
            return self.unread.remove(i).expect("in range");
        }
        if drop_older {
            self.unread.clear();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(&t).expect("the server sends JSON");
                    assert_eq!(v["v"], 1, "every server frame has v: 1: {v}");
                    self.seen.push(v.clone());
                    if f(&v) {
                        return v;
                    }
                    if !drop_older {
                        self.unread.push_back(v);
                    }
                }
                Ok(Some(Ok(_))) => {}
                Ok(other) => panic!("socket ended while waiting for {what}: {other:?}"),
                Err(_) => panic!("no {what} within {WAIT:?}; frames seen: {:#?}", self.seen),
            }
        }
    }

    /// Waits for an `agent` frame satisfying `f`.
    pub async fn agent(&mut self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        self.wait(what, |v| v["type"] == "agent" && f(v)).await
    }

    /// Closes the socket.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// A customer who started a chat and answered the intake's two questions; returns the
/// client, the chat token and the contact id.
pub async fn customer(served: &Served, name: &str, topic: &str) -> (Client, String, String) {
    let mut c = served.client("/desk/ws/chat").await;
    let r = c.request(json!({"type": "start", "tenant": "acme"})).await;
    assert_eq!(r["type"], "ack", "{r}");
    let chat = c.seen_of("chat").expect("a chat frame");
    let token = chat["token"].as_str().unwrap().to_owned();
    let contact = chat["contact"].as_str().unwrap().to_owned();
    c.wait("the name question", |f| {
        f["type"] == "message" && f["text"] == "What is your name?"
    })
    .await;
    assert_eq!(
        c.request(json!({"type": "message", "text": name})).await["type"],
        "ack"
    );
    c.wait("the topic question", |f| {
        f["type"] == "message" && f["text"] == "What can we help you with?"
    })
    .await;
    assert_eq!(
        c.request(json!({"type": "message", "text": topic})).await["type"],
        "ack"
    );
    c.wait("queued", |f| f["type"] == "chat" && f["state"] == "queued")
        .await;
    (c, token, contact)
}
