//! What the KPI service's integration tests share: a real service on 127.0.0.1 port 0
//! over an embedded event log and a SQLite store in a temporary directory, event
//! builders for one tenant's contacts and agents, a small HTTP client, and polling
//! with a deadline.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotline_core::agent::AgentStatus;
use hotline_core::channel::Channel;
use hotline_core::event::{
    AgentEvent, AgentEventKind, ContactEvent, ContactEventKind, Event, EventBody,
};
use hotline_core::ids::{AgentId, ContactId, EventId, QueueId, SiteId, TenantId, TraceId};
use hotline_core::time::{Clock, SystemClock, Timestamp};
use hotline_eventlog::EventLog;
use hotline_eventlog::embedded::{EmbeddedConfig, EmbeddedLog};
use hotline_eventlog::events::message_for;
use hotline_eventlog::topics;
use hotline_kpi::service::{self, ApiKeyConfig, KpiConfig, Role};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Acme's wallboard key.
pub const ACME_KEY: &str = "acme-key-0123456789abcdef";
/// Globex's key.
pub const GLOBEX_KEY: &str = "globex-key-0123456789abcdef";
/// A provider key (every tenant).
pub const PROVIDER_KEY: &str = "provider-key-0123456789abcdef";

/// Polls `probe` every 50 ms until it returns `Some`, or panics after `within` naming
/// `what` and the last value seen.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("within {within:?}, expected {what}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

// === impl Env ===

/// A temporary directory holding the event log and the store, shared by the services
/// a test starts (one after the other, to test restarts).
pub struct Env {
    /// Deleted when the test ends.
    pub dir: tempfile::TempDir,
    /// The embedded event log.
    pub log: Arc<dyn EventLog>,
}

impl Env {
    /// A fresh log with Hotline's topics.
    pub async fn new() -> Env {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log = EmbeddedLog::open(dir.path().join("log"), EmbeddedConfig::default())
            .await
            .expect("the embedded log opens");
        let log: Arc<dyn EventLog> = Arc::new(log);
        log.ensure_topics(&topics::specs())
            .await
            .expect("topics can be created");
        Env { dir, log }
    }

    /// A config with three keys (acme, globex, provider), a SQLite store here and a
    /// short flush interval.
    pub fn config(&self) -> KpiConfig {
        let db = self.dir.path().join("kpi.db");
        KpiConfig {
            store_url: format!("sqlite://{}?mode=rwc", db.display()),
            flush_interval_ms: 100,
            api_keys: vec![
                ApiKeyConfig {
                    key: ACME_KEY.to_owned(),
                    tenant: Some("acme".to_owned()),
                    provider: false,
                    role: Role::Supervisor,
                },
                ApiKeyConfig {
                    key: GLOBEX_KEY.to_owned(),
                    tenant: Some("globex".to_owned()),
                    provider: false,
                    role: Role::TenantAdmin,
                },
                ApiKeyConfig {
                    key: PROVIDER_KEY.to_owned(),
                    tenant: None,
                    provider: true,
                    role: Role::Sre,
                },
            ],
            ..KpiConfig::default()
        }
    }

    /// Appends `events` to the events topic, durably.
    pub async fn publish(&self, events: &[Event]) {
        let producer = self.log.producer().expect("a producer");
        producer
            .send(topics::EVENTS, events.iter().map(message_for).collect())
            .await
            .expect("events are appended");
    }
}

// === impl Running ===

/// A KPI service running `service::run` on 127.0.0.1.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<service::Result<()>>,
}

impl Running {
    /// Starts the service on `addr` (port 0 for any).
    pub async fn start(env: &Env, config: KpiConfig, addr: SocketAddr) -> Running {
        let listener = TcpListener::bind(addr)
            .await
            .unwrap_or_else(|e| panic!("cannot bind {addr}: {e}"));
        let addr = listener.local_addr().expect("a local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(service::run(config, env.log.clone(), listener, async {
            let _ = stopped.await;
        }));
        let running = Running {
            addr,
            stop: Some(stop),
            task,
        };
        eventually(
            "the service to answer /healthz",
            Duration::from_secs(10),
            || {
                let addr = running.addr;
                async move {
                    let r = get(addr, "/healthz", None).await?;
                    (r.status == 200).then_some(()).ok_or(format!("{r:?}"))
                }
            },
        )
        .await;
        running
    }

    /// Asks it to stop and waits until it has flushed and exited.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), &mut self.task)
            .await
            .expect("the service stops within 15 s")
            .expect("the service task did not panic")
            .expect("the service stops without error");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// === HTTP ===

/// A response: status, headers (lower-cased names) and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: String,
}

impl Response {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `GET path` with `Authorization: Bearer key` when given; `Err` on a transport error.
pub async fn get(addr: SocketAddr, path: &str, key: Option<&str>) -> Result<Response, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .map_err(|_| format!("GET {path}: no complete answer in 10 s"))?
        .map_err(|e| format!("read: {e}"))?;
    let raw = String::from_utf8(raw).map_err(|e| format!("not UTF-8: {e}"))?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {raw:?}"))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest
            .split_once("\r\n")
            .ok_or_else(|| format!("bad chunk in {rest:?}"))?;
        let size =
            usize::from_str_radix(size.trim(), 16).map_err(|e| format!("chunk size: {e}"))?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(after.get(..size).ok_or("short chunk")?);
        rest = after.get(size + 2..).ok_or("short chunk")?;
    }
}

// === events ===

/// Builds one tenant's events at one site, timed from the wall clock so that they
/// fall in today's intervals.
pub struct Script {
    tenant: TenantId,
    site: SiteId,
    clock: SystemClock,
}

impl Script {
    /// Events of `tenant` at `site`.
    pub fn new(tenant: &str, site: &str) -> Script {
        Script {
            tenant: TenantId::new(tenant).expect("a valid tenant"),
            site: SiteId::new(site).expect("a valid site"),
            clock: SystemClock,
        }
    }

    fn at(&self, ago_ms: u64) -> Timestamp {
        Timestamp(self.clock.now().micros().saturating_sub(ago_ms * 1000))
    }

    fn event(&self, ago_ms: u64, body: EventBody) -> Event {
        Event {
            id: EventId::random(),
            at: self.at(ago_ms),
            tenant: self.tenant.clone(),
            site: self.site.clone(),
            trace: TraceId::random(),
            body,
        }
    }

    /// A contact event.
    pub fn contact(
        &self,
        ago_ms: u64,
        contact: ContactId,
        queue: &str,
        agent: Option<&str>,
        kind: ContactEventKind,
    ) -> Event {
        self.event(
            ago_ms,
            EventBody::Contact(ContactEvent {
                contact,
                channel: Channel::Voice,
                queue: Some(QueueId::new(queue).expect("a valid queue")),
                agent: agent.map(|a| AgentId::new(a).expect("a valid agent")),
                kind,
            }),
        )
    }

    /// An agent event.
    pub fn agent(
        &self,
        ago_ms: u64,
        agent: &str,
        kind: AgentEventKind,
        status: AgentStatus,
    ) -> Event {
        self.event(
            ago_ms,
            EventBody::Agent(AgentEvent {
                agent: AgentId::new(agent).expect("a valid agent"),
                kind,
                status,
            }),
        )
    }

    /// A contact that arrived and is still waiting in `queue`, queued `ago_ms` ago.
    pub fn waiting(&self, queue: &str, ago_ms: u64) -> Vec<Event> {
        let c = ContactId::random();
        vec![
            self.contact(
                ago_ms,
                c,
                queue,
                None,
                ContactEventKind::Arrived { customer: None },
            ),
            self.contact(
                ago_ms,
                c,
                queue,
                None,
                ContactEventKind::Queued { priority: 0 },
            ),
        ]
    }

    /// A contact answered by `agent` after `wait_ms` and handled to the end.
    pub fn handled(&self, queue: &str, agent: &str, wait_ms: u64) -> Vec<Event> {
        let c = ContactId::random();
        let start = wait_ms + 3000;
        vec![
            self.contact(
                start,
                c,
                queue,
                None,
                ContactEventKind::Arrived { customer: None },
            ),
            self.contact(
                start,
                c,
                queue,
                None,
                ContactEventKind::Queued { priority: 0 },
            ),
            self.contact(
                start - wait_ms + 10,
                c,
                queue,
                Some(agent),
                ContactEventKind::Offered { attempt: 1 },
            ),
            self.contact(
                start - wait_ms,
                c,
                queue,
                Some(agent),
                ContactEventKind::Connected { wait_ms },
            ),
            self.contact(
                2000,
                c,
                queue,
                Some(agent),
                ContactEventKind::WrapUpStarted { talk_ms: 1000 },
            ),
            self.contact(
                1000,
                c,
                queue,
                Some(agent),
                ContactEventKind::Done {
                    talk_ms: 1000,
                    hold_ms: 0,
                    wrap_ms: 1000,
                },
            ),
        ]
    }

    /// A contact whose customer hung up after `wait_ms` in `queue`.
    pub fn abandoned(&self, queue: &str, wait_ms: u64) -> Vec<Event> {
        let c = ContactId::random();
        vec![
            self.contact(
                wait_ms,
                c,
                queue,
                None,
                ContactEventKind::Arrived { customer: None },
            ),
            self.contact(
                wait_ms,
                c,
                queue,
                None,
                ContactEventKind::Queued { priority: 0 },
            ),
            self.contact(
                0,
                c,
                queue,
                None,
                ContactEventKind::Abandoned {
                    wait_ms,
                    while_offered: false,
                },
            ),
        ]
    }

    /// `agent` logs in and becomes ready.
    pub fn ready(&self, agent: &str) -> Vec<Event> {
        vec![
            self.agent(
                10,
                agent,
                AgentEventKind::LoggedIn,
                AgentStatus::NotReady("login".into()),
            ),
            self.agent(5, agent, AgentEventKind::Ready, AgentStatus::Ready),
        ]
    }

    /// `agent` goes not ready for `reason`.
    pub fn not_ready(&self, agent: &str, reason: &str) -> Event {
        self.agent(
            0,
            agent,
            AgentEventKind::NotReady {
                reason: reason.to_owned(),
            },
            AgentStatus::NotReady(reason.to_owned()),
        )
    }
}

/// A queue of a realtime answer (`{"queues": [...]}`) by its name.
pub fn queue<'a>(realtime: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    realtime["queues"]
        .as_array()?
        .iter()
        .find(|q| q["queue"] == name)
}

/// A figure of a queue's `today` list, by name (the first, the default definition).
pub fn today(queue: &serde_json::Value, name: &str) -> Option<f64> {
    queue["today"]
        .as_array()?
        .iter()
        .find(|f| f["name"] == name)?["value"]
        .as_f64()
}
