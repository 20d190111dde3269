//! The demo load of `hotline up` and of a `hotline site` whose file asks for one:
//! synthetic callers (Poisson arrivals, impatient ones hang up, some ask for a callback)
//! and simulated agents (ring, usually answer, talk, wrap up, take breaks), so that
//! something happens without a phone or a desk.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use hotline_acd::agent::{AgentEndpoint, AgentLink};
use hotline_acd::config::SiteConfig;
use hotline_acd::engine::{Arrival, Offer};
use hotline_acd::site::Site;
use hotline_core::agent::NotReadyReason;
use hotline_core::event::{ContactEventKind, Event, EventBody};
use hotline_core::ids::{AgentId, ContactId};
use rand::{RngExt, SeedableRng};
use rand_distr::{Exp, LogNormal};
use rand_pcg::Pcg64Mcg;
use tokio::sync::mpsc;

use crate::cli::Failure;

/// What load to put on a site.
#[derive(Clone)]
pub struct DemoLoad {
    /// Synthetic arrivals per hour over all queues (0: none).
    pub arrivals_per_hour: f64,
    /// Mean talk time of the simulated agents, in seconds.
    pub talk_secs: f64,
    /// Seed of the load's randomness.
    pub seed: u64,
    /// The agents to log in here (all of the site's configured agents when `None`).
    pub agents: Option<Vec<AgentId>>,
    /// How a synthetic caller hangs up: through the site, or through something that
    /// also reaches a contact that moved to another site.
    pub hang_up: HangUp,
}

/// How a synthetic caller hangs up.
pub type HangUp = Arc<dyn Fn(ContactId) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

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
pub struct Demo {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    agents: Vec<AgentId>,
    open: Arc<Mutex<HashMap<ContactId, Open>>>,
    hang_up: HangUp,
}

impl Demo {
    /// Stops the synthetic load and ends every contact it has open — callers waiting
    /// hang up, conversations end and their wrap-ups finish — then logs the agents
    /// out, so every contact in the log has its terminal event, every agent its
    /// logout, and a restarted `hotline up` shows no ghosts.
    pub async fn wind_down(self, site: &Site) {
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
                Open::Waiting => (self.hang_up)(contact).await,
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

/// Logs the load's agents in and starts its callers; `events` are the site's events
/// (through a [`Tee`]).
pub async fn start_demo(
    site: &Site,
    config: &SiteConfig,
    args: &DemoLoad,
    events: mpsc::UnboundedReceiver<Event>,
) -> Result<Demo, Failure> {
    let (cues_tx, cues_rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    let logged_in: Vec<_> = config
        .agents
        .iter()
        .filter(|a| args.agents.as_ref().is_none_or(|only| only.contains(&a.id)))
        .collect();
    for a in &logged_in {
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
        args.hang_up.clone(),
    )));
    Ok(Demo {
        tasks,
        agents: logged_in.iter().map(|a| a.id.clone()).collect(),
        open,
        hang_up: args.hang_up.clone(),
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
    hang_up: HangUp,
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
        let (hang_up, answered) = (hang_up.clone(), answered.clone());
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let waiting = !answered.lock().expect("not poisoned").contains(&contact);
            if waiting {
                hang_up(contact).await;
            }
        });
    }
}
