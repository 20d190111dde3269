//! `hotline up`: the embedded default. One site with the demo configuration, synthetic
//! callers and simulated agents so that something happens, and the status page.

use std::collections::HashSet;
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
use rand::{RngExt, SeedableRng};
use rand_distr::{Exp, LogNormal};
use rand_pcg::Pcg64Mcg;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::cli::{Failure, UpArgs, load_site};

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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(args.listen).await.map_err(|e| {
            Failure::Config(format!(
                "cannot listen on {}: {e}; pick another address with --listen (port 0 picks a free one)",
                args.listen
            ))
        })?;
        let addr = listener.local_addr().context("listener address")?;
        let (tx, rx) = mpsc::unbounded_channel();
        let site = Site::start(
            config.clone(),
            SiteOptions {
                sink: Arc::new(ChannelSink(tx)),
                clock: Arc::new(SystemClock),
                ids: IdSource::Random,
                shards: SiteOptions::default_shards(),
            },
        )
        .await
        .context("cannot start the site")?;
        if !args.quiet {
            start_demo(&site, &config, &args, rx).await?;
        }
        println!("Hotline is up: site {} with {} queue(s) and {} agent(s).", config.site, config.queues.len(), config.agents.len());
        println!("  status page:  http://{addr}/");
        println!("  status JSON:  http://{addr}/api/status   (one tenant: ?tenant=acme)");
        println!("Press Ctrl-C to stop.");
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        crate::status::serve(listener, site.clone(), shutdown)
            .await
            .context("status page server failed")?;
        site.stop().await;
        println!("Hotline stopped.");
        Ok(())
    })
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

async fn start_demo(
    site: &Site,
    config: &SiteConfig,
    args: &UpArgs,
    events: mpsc::UnboundedReceiver<Event>,
) -> Result<(), Failure> {
    let (cues_tx, cues_rx) = mpsc::unbounded_channel();
    for a in &config.agents {
        let endpoint = Arc::new(SimulatedAgent {
            agent: a.id.clone(),
            cues: cues_tx.clone(),
        });
        site.login(a.id.clone(), endpoint, true)
            .await
            .with_context(|| format!("cannot log in demo agent {}", a.id))?;
        tokio::spawn(breaks(
            site.clone(),
            a.id.clone(),
            args.seed ^ hash(a.id.as_str()),
        ));
    }
    tokio::spawn(agents(site.clone(), cues_rx, args.talk_secs, args.seed));
    let answered = Arc::new(Mutex::new(HashSet::new()));
    tokio::spawn(watch(site.clone(), events, answered.clone(), args.seed));
    tokio::spawn(callers(
        site.clone(),
        config.clone(),
        args.arrivals_per_hour,
        answered,
        args.seed,
    ));
    Ok(())
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

/// Watches events for what callers care about: answered contacts, callback offers.
async fn watch(
    site: Site,
    mut events: mpsc::UnboundedReceiver<Event>,
    answered: Arc<Mutex<HashSet<ContactId>>>,
    seed: u64,
) {
    let mut rng = Pcg64Mcg::seed_from_u64(seed ^ 0xca11);
    while let Some(e) = events.recv().await {
        let EventBody::Contact(c) = &e.body else {
            continue;
        };
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
        let arrival = Arrival::new(contact, q.tenant.clone(), q.id.clone(), q.channel);
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
