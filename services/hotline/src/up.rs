//! `hotline up`: the embedded default. One site with the demo configuration, synthetic
//! callers and simulated agents so that something happens; every event into the
//! embedded event log (under `--data-dir`); the KPI service reading it (interval tables
//! in SQLite beside it) with its API and live wallboard; and the status page — all on
//! one address.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use hotline_acd::agent::{AgentEndpoint, AgentLink};
use hotline_acd::config::SiteConfig;
use hotline_acd::engine::{Arrival, Offer};
use hotline_acd::ids::IdSource;
use hotline_acd::site::{Site, SiteOptions};
use hotline_core::agent::NotReadyReason;
use hotline_core::event::{ContactEventKind, Event, EventBody, EventSink};
use hotline_core::ids::{AgentId, ContactId};
use hotline_core::time::SystemClock;
use hotline_eventlog::publisher::Publisher;
use hotline_eventlog::topics;
use hotline_kpi::service::{ApiKeyConfig, Kpi, KpiConfig, Role};
use rand::{RngExt, SeedableRng};
use rand_distr::{Exp, LogNormal};
use rand_pcg::Pcg64Mcg;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::cli::{Failure, UpArgs, load_site};
use crate::logs::{self, LogTarget};

/// The bundled demo site.
pub const DEMO_SITE: &str = include_str!("../demo/site.toml");

/// Runs `hotline up` until Ctrl-C.
pub fn run(args: UpArgs) -> Result<(), Failure> {
    let config = load_site(args.config.as_ref())?;
    if !(args.arrivals_per_hour.is_finite() && args.arrivals_per_hour >= 0.0) {
        return Err(Failure::Config(
            "--arrivals-per-hour must be 0 or more".into(),
        ));
    }
    if !(args.talk_secs.is_finite() && args.talk_secs > 0.0) {
        return Err(Failure::Config(
            "--talk-secs must be a positive number of seconds".into(),
        ));
    }
    let runtime = crate::cli::runtime()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(args.listen).await.map_err(|e| {
            Failure::Config(format!(
                "cannot listen on {}: {e}; pick another address with --listen (port 0 picks a free one)",
                args.listen
            ))
        })?;
        let addr = listener.local_addr().context("listener address")?;
        let target = args
            .event_log
            .clone()
            .unwrap_or_else(|| LogTarget::Embedded(args.data_dir.join("events")));
        let log = logs::open(&target).await.map_err(|e| match e {
            Failure::Config(m) => Failure::Config(format!(
                "{m}; is another `hotline up` using --data-dir {}? stop it or pick another --data-dir",
                args.data_dir.display()
            )),
            other => other,
        })?;
        log.ensure_topics(&topics::specs()).await.map_err(|e| {
            Failure::Runtime(anyhow::anyhow!(
                "cannot create the topics of event log {target}: {e}"
            ))
        })?;
        let publisher =
            Arc::new(logs::publisher(&target, log.clone(), &args.data_dir.join("spool")).await?);
        let kpi_config = demo_kpi_config(&config, &args.data_dir);
        let keys: Vec<(Option<String>, String)> = kpi_config
            .api_keys
            .iter()
            .map(|k| (k.tenant.clone(), k.key.clone()))
            .collect();
        let kpi = Kpi::start(kpi_config, log.clone())
            .await
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot start KPI: {e}")))?;
        kpi.register_collector(Box::new(logs::PublisherMetrics(publisher.clone())));
        let (tx, rx) = mpsc::unbounded_channel();
        let site = Site::start(
            config.clone(),
            SiteOptions {
                sink: Arc::new(Tee {
                    publisher: publisher.clone(),
                    demo: ChannelSink(tx),
                }),
                clock: Arc::new(SystemClock),
                ids: IdSource::Random,
                shards: SiteOptions::default_shards(),
            },
        )
        .await
        .context("cannot start the site")?;
        let demo = if args.quiet {
            None
        } else {
            Some(start_demo(&site, &config, &args, rx).await?)
        };
        println!("Hotline is up: site {} with {} queue(s) and {} agent(s).", config.site, config.queues.len(), config.agents.len());
        println!("  status page:  http://{addr}/");
        println!("  status JSON:  http://{addr}/api/status   (one tenant: ?tenant=acme)");
        for (tenant, key) in &keys {
            match tenant.as_deref() {
                Some(t) => println!("  wallboard ({t}): http://{addr}/wallboard?key={key}   (中文: &lang=zh-CN)"),
                None => println!("  wallboard (provider key, any tenant): http://{addr}/wallboard?key={key}&tenant=acme"),
            }
        }
        if let Some((_, key)) = keys.first() {
            println!("  KPI API:      curl -H 'Authorization: Bearer {key}' http://{addr}/api/kpi/realtime");
        }
        println!("  metrics:      curl -H 'Authorization: Bearer demo-provider-sre-key' http://{addr}/metrics");
        println!("  event log:    {target}");
        println!("  data:         {} (KPI tables{})", args.data_dir.display(), if matches!(target, LogTarget::Kafka(_)) { ", event spool" } else { ", event log" });
        println!("Press Ctrl-C to stop.");
        let app = crate::status::app(site.clone()).merge(kpi.router());
        // On Ctrl-C: end the demo's contacts and log its agents out, stop the site (no new events), get its events into the log, let
        // KPI apply them all, then stop KPI — whose last flush ends the wallboards'
        // streams, which the server's graceful shutdown would otherwise wait for. The
        // stored figures then cover every event in the log (`hotline kpi replay
        // --compare` finds them identical).
        let closer = kpi.closer();
        let (stopping_site, stopping_publisher) = (site.clone(), publisher.clone());
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown_signal().await;
                println!("Stopping: the demo's callers leave, then the site, then its events into the log, then KPI …");
                if let Some(demo) = demo {
                    demo.wind_down(&stopping_site).await;
                }
                stopping_site.stop().await;
                let report = stopping_publisher.shutdown(Duration::from_secs(5)).await;
                if !report.flushed {
                    eprintln!(
                        "hotline: {} event(s) were not yet in the event log at shutdown",
                        report.stats.pending
                    );
                }
                if !closer.drain(Duration::from_secs(10)).await {
                    eprintln!("hotline: KPI had not applied every event within 10 s of stopping");
                }
                closer.close();
            })
            .await
            .context("web server failed")?;
        if let Err(e) = kpi.shutdown().await {
            eprintln!("hotline: KPI did not stop cleanly: {e}");
        }
        println!("Hotline stopped.");
        Ok(())
    })
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// The KPI service of `hotline up`: interval tables in SQLite in the data directory,
/// and demo API keys — one per tenant (its wallboard) and one for the provider.
fn demo_kpi_config(site: &SiteConfig, data_dir: &std::path::Path) -> KpiConfig {
    let mut api_keys: Vec<ApiKeyConfig> = site
        .tenants
        .iter()
        .map(|t| ApiKeyConfig {
            key: format!("demo-{}-wallboard-key", t.id),
            tenant: Some(t.id.to_string()),
            provider: false,
            role: Role::Supervisor,
        })
        .collect();
    api_keys.push(ApiKeyConfig {
        key: "demo-provider-sre-key".to_string(),
        tenant: None,
        provider: true,
        role: Role::Sre,
    });
    KpiConfig {
        store_url: format!("sqlite://{}?mode=rwc", data_dir.join("kpi.db").display()),
        consumer_group: "hotline-up-kpi".to_string(),
        api_keys,
        ..KpiConfig::default()
    }
}

/// Every event to the event log, and to the demo's synthetic callers.
struct Tee {
    publisher: Arc<Publisher>,
    demo: ChannelSink,
}

impl EventSink for Tee {
    fn publish(&self, events: &[Event]) {
        self.publisher.publish(events);
        self.demo.publish(events);
    }
}

/// Forwards events to the demo's synthetic callers.
struct ChannelSink(mpsc::UnboundedSender<Event>);

impl EventSink for ChannelSink {
    fn publish(&self, events: &[Event]) {
        for e in events {
            let _ = self.0.send(e.clone());
        }
    }
}

/// What a simulated agent is told.
enum Cue {
    Offered(AgentId, Offer),
}

/// A simulated agent's endpoint: offers go to the demo driver.
struct SimulatedAgent {
    agent: AgentId,
    cues: mpsc::UnboundedSender<Cue>,
}

impl AgentEndpoint for SimulatedAgent {
    fn offered(&self, _me: &AgentLink, offer: &Offer) {
        let _ = self
            .cues
            .send(Cue::Offered(self.agent.clone(), offer.clone()));
    }
}

/// Where an open contact of the demo is, so that stopping can end it.
#[derive(Debug, Clone)]
enum Open {
    /// Waiting or ringing: the caller can hang up.
    Waiting,
    /// In conversation with the agent.
    Talking(AgentId),
    /// In wrap-up with the agent.
    WrappingUp(AgentId),
}

/// The running demo: its tasks, its agents and the contacts it has open.
struct Demo {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    agents: Vec<AgentId>,
    open: Arc<Mutex<HashMap<ContactId, Open>>>,
}

impl Demo {
    /// Stops the synthetic load and ends every contact it has open — callers waiting
    /// hang up, conversations end and their wrap-ups finish — then logs the agents
    /// out, so every contact in the log has its terminal event, every agent its
    /// logout, and a restarted `hotline up` shows no ghosts.
    async fn wind_down(self, site: &Site) {
        for t in &self.tasks {
            t.abort();
        }
        let open: Vec<(ContactId, Open)> = lock(&self.open)
            .iter()
            .map(|(c, o)| (*c, o.clone()))
            .collect();
        for (contact, at) in open {
            // Each may be refused if the contact moved on meanwhile; that is fine.
            match at {
                Open::Waiting => {
                    let _ = site.hang_up(contact).await;
                }
                Open::Talking(agent) => {
                    let handle = site.agent(agent);
                    let _ = handle.end(contact).await;
                    let _ = handle.finish_wrap_up(contact).await;
                }
                Open::WrappingUp(agent) => {
                    let _ = site.agent(agent).finish_wrap_up(contact).await;
                }
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while !lock(&self.open).is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = lock(&self.open).len();
        if left > 0 {
            eprintln!("hotline: {left} demo contact(s) could not be ended before stopping");
        }
        for agent in self.agents {
            let _ = site.agent(agent).log_out().await;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn start_demo(
    site: &Site,
    config: &SiteConfig,
    args: &UpArgs,
    events: mpsc::UnboundedReceiver<Event>,
) -> Result<Demo, Failure> {
    let (cues_tx, cues_rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for a in &config.agents {
        let endpoint = Arc::new(SimulatedAgent {
            agent: a.id.clone(),
            cues: cues_tx.clone(),
        });
        site.login(a.id.clone(), endpoint, true)
            .await
            .with_context(|| format!("cannot log in demo agent {}", a.id))?;
        tasks.push(tokio::spawn(breaks(
            site.clone(),
            a.id.clone(),
            args.seed ^ hash(a.id.as_str()),
        )));
    }
    tasks.push(tokio::spawn(agents(
        site.clone(),
        cues_rx,
        args.talk_secs,
        args.seed,
    )));
    let answered = Arc::new(Mutex::new(HashSet::new()));
    let open = Arc::new(Mutex::new(HashMap::new()));
    // Not aborted on stop: it keeps the open contacts current while they are ended.
    tokio::spawn(watch(
        site.clone(),
        events,
        answered.clone(),
        open.clone(),
        args.seed,
    ));
    tasks.push(tokio::spawn(callers(
        site.clone(),
        config.clone(),
        args.arrivals_per_hour,
        answered,
        args.seed,
    )));
    Ok(Demo {
        tasks,
        agents: config.agents.iter().map(|a| a.id.clone()).collect(),
        open,
    })
}

fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Simulated agents: ring for a few seconds, usually answer, talk, end.
async fn agents(site: Site, mut cues: mpsc::UnboundedReceiver<Cue>, talk_secs: f64, seed: u64) {
    let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0xa6e7);
    let talk = LogNormal::from_mean_cv(talk_secs, 0.8).expect("positive talk time");
    while let Some(Cue::Offered(agent, offer)) = cues.recv().await {
        let ring = Duration::from_millis(rng.random_range(1000..5000));
        let roll: f64 = rng.random();
        let talk = Duration::from_secs_f64(rng.sample(talk).min(talk_secs * 10.0));
        let early = rng.random_bool(0.2);
        let handle = site.agent(agent);
        tokio::spawn(async move {
            tokio::time::sleep(ring).await;
            if roll < 0.03 {
                return; // rings out: counts as a missed offer
            }
            if roll < 0.07 {
                let _ = handle.reject(offer.contact).await;
                return;
            }
            if handle.accept(offer.contact).await.is_err() {
                return; // the caller hung up meanwhile
            }
            tokio::time::sleep(talk).await;
            let _ = handle.end(offer.contact).await;
            if early {
                tokio::time::sleep(offer.wrap_up / 3).await;
                let _ = handle.finish_wrap_up(offer.contact).await;
            }
        });
    }
}

/// Now and then an agent takes a short break.
async fn breaks(site: Site, agent: AgentId, seed: u64) {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let handle = site.agent(agent);
    loop {
        tokio::time::sleep(Duration::from_secs(rng.random_range(60..240))).await;
        if rng.random_bool(0.3) {
            let reason = ["break", "lunch", "training"][rng.random_range(0..3)];
            let _ = handle
                .go_not_ready(NotReadyReason::Code(reason.into()))
                .await;
            tokio::time::sleep(Duration::from_secs(rng.random_range(15..60))).await;
            let _ = handle.go_ready().await;
        }
    }
}

/// Watches events for what callers care about (answered contacts, callback offers)
/// and keeps the open contacts current.
async fn watch(
    site: Site,
    mut events: mpsc::UnboundedReceiver<Event>,
    answered: Arc<Mutex<HashSet<ContactId>>>,
    open: Arc<Mutex<HashMap<ContactId, Open>>>,
    seed: u64,
) {
    let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0xca11);
    while let Some(e) = events.recv().await {
        let EventBody::Contact(c) = &e.body else {
            continue;
        };
        {
            let mut open = lock(&open);
            match (&c.kind, &c.agent) {
                (ContactEventKind::Arrived { .. }, _) => {
                    open.insert(c.contact, Open::Waiting);
                }
                (ContactEventKind::Connected { .. }, Some(a)) => {
                    open.insert(c.contact, Open::Talking(a.clone()));
                }
                (ContactEventKind::WrapUpStarted { .. }, Some(a)) => {
                    open.insert(c.contact, Open::WrappingUp(a.clone()));
                }
                (k, _) if k.is_terminal() => {
                    open.remove(&c.contact);
                }
                _ => {}
            }
        }
        match c.kind {
            ContactEventKind::Connected { .. } => {
                answered.lock().expect("not poisoned").insert(c.contact);
            }
            ContactEventKind::CallbackOffered if rng.random_bool(0.6) => {
                let _ = site.request_callback(c.contact).await;
            }
            ref k if k.is_terminal() => {
                answered.lock().expect("not poisoned").remove(&c.contact);
            }
            _ => {}
        }
    }
}

/// Synthetic callers: Poisson arrivals spread over the queues; impatient ones hang up.
async fn callers(
    site: Site,
    config: SiteConfig,
    per_hour: f64,
    answered: Arc<Mutex<HashSet<ContactId>>>,
    seed: u64,
) {
    if per_hour <= 0.0 || config.queues.is_empty() {
        return;
    }
    let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0x5eed);
    let gap = Exp::new(per_hour / 3600.0).expect("positive rate");
    let patience = Exp::new(1.0 / 90.0).expect("positive rate");
    loop {
        tokio::time::sleep(Duration::from_secs_f64(rng.sample(gap))).await;
        let q = &config.queues[rng.random_range(0..config.queues.len())];
        let contact = ContactId::random();
        let mut arrival = Arrival::new(contact, q.tenant.clone(), q.id.clone(), q.channel);
        // A pool of callers small enough that some call again within the day, so
        // first-contact resolution has repeats to find.
        arrival.customer = Some(format!("+86 10 5555 {:04}", rng.random_range(0..400)).into());
        if let Err(e) = site.arrive(arrival).await {
            tracing::warn!(error = %e, "synthetic arrival refused");
            continue;
        }
        let wait = Duration::from_secs_f64(rng.sample(patience) + 5.0);
        let (site, answered) = (site.clone(), answered.clone());
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let waiting = !answered.lock().expect("not poisoned").contains(&contact);
            if waiting {
                // Refused if it was answered or ended meanwhile; that is fine.
                let _ = site.hang_up(contact).await;
            }
        });
    }
}
