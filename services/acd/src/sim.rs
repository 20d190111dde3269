//! A discrete-event simulator of one site, in virtual time.
//!
//! It drives the real [`Engine`] and real [`AgentSession`]s — the code the actors run —
//! without mailboxes: arrivals are Poisson per stream, handle times exponential (default)
//! or lognormal, patience optionally exponential. Simulated agents answer at once, so
//! the figures can be checked against Erlang C (no patience) and Erlang A (exponential
//! patience). The same seed gives the same run, event for event.
//!
//! Figures are computed from the engine's events, the way KPI computes them: a contact
//! counts if it arrived after the warm-up; the run continues past the end of arrivals
//! until every counted contact has ended.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use hotline_core::agent::AgentTransition;
use hotline_core::channel::Channel;
use hotline_core::event::{ContactEventKind, EventBody};
use hotline_core::ids::{AgentId, ContactId, QueueId, SiteId, SkillId, TenantId};
use hotline_core::skill::{Proficiency, Skill, SkillRequirement};
use hotline_core::time::Timestamp;
use rand::{RngExt, SeedableRng};
use rand_distr::{Exp, LogNormal};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use crate::config::{AcdDefaults, AgentConfig, ConfigError, QueueConfig, SiteConfig, TenantConfig};
use crate::engine::{Arrival, Effect, Engine};
use crate::error::AcdError;
use crate::ids::IdSource;
use crate::session::{AgentProfile, AgentSession};

/// How long contacts take to handle (talk time; wrap-up comes from the queue).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "distribution")]
pub enum HandleTime {
    /// Exponential with this mean, in seconds (the M/M/c assumption).
    Exponential {
        /// Mean seconds.
        mean_secs: f64,
    },
    /// Lognormal with this mean (seconds) and coefficient of variation.
    Lognormal {
        /// Mean seconds.
        mean_secs: f64,
        /// Standard deviation ÷ mean.
        cv: f64,
    },
}

impl HandleTime {
    /// The mean, in seconds.
    pub fn mean_secs(&self) -> f64 {
        match *self {
            HandleTime::Exponential { mean_secs } | HandleTime::Lognormal { mean_secs, .. } => {
                mean_secs
            }
        }
    }
}

/// A Poisson stream of contacts into one queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stream {
    /// The tenant.
    pub tenant: TenantId,
    /// The queue.
    pub queue: QueueId,
    /// Mean arrivals per hour.
    pub per_hour: f64,
    /// Talk time; the run's default when absent.
    #[serde(default)]
    pub handle: Option<HandleTime>,
}

/// A simulation to run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The site: queues, skills, agents (all agents log in ready at time zero).
    pub site: SiteConfig,
    /// Where contacts come from.
    pub streams: Vec<Stream>,
    /// Default talk time.
    pub handle: HandleTime,
    /// Mean patience in seconds (exponential); `None` = customers never leave.
    pub patience_secs: Option<f64>,
    /// Hours of arrivals.
    pub hours: f64,
    /// Hours at the start whose arrivals are not counted (the system fills up).
    pub warmup_hours: f64,
    /// Service-level threshold, seconds.
    pub sl_secs: f64,
    /// The seed.
    pub seed: u64,
    /// Number of equal batches the counted window is split into, for batch-means
    /// confidence intervals.
    pub batches: u32,
}

impl SimConfig {
    /// One tenant, one queue, one skill, `agents` identical voice agents: the M/M/c (+M)
    /// system of the textbooks.
    pub fn single_queue(
        agents: u32,
        arrivals_per_hour: f64,
        aht_secs: f64,
        patience_secs: Option<f64>,
        hours: f64,
        sl_secs: f64,
        seed: u64,
    ) -> Self {
        let tenant = TenantId::new("sim").expect("valid id");
        let skill = SkillId::new("general").expect("valid id");
        let queue = QueueId::new("main").expect("valid id");
        let site = SiteConfig {
            site: SiteId::new("sim").expect("valid id"),
            defaults: AcdDefaults {
                no_answer_secs: 3600,
                max_missed: 0,
                reoffer_after_secs: 1,
            },
            providers: vec![],
            tenants: vec![TenantConfig {
                id: tenant.clone(),
                name: "Simulated tenant".into(),
                provider: None,
                skills: vec![skill.clone()],
            }],
            queues: vec![QueueConfig {
                sl_secs: sl_secs.round() as u32,
                ..QueueConfig::new(
                    tenant.clone(),
                    queue.clone(),
                    vec![SkillRequirement {
                        skill: skill.clone(),
                        min: Proficiency::MIN,
                    }],
                )
            }],
            agents: (0..agents)
                .map(|i| {
                    AgentConfig::new(
                        AgentId::new(format!("a{i}")).expect("valid id"),
                        tenant.clone(),
                        vec![Skill {
                            skill: skill.clone(),
                            level: Proficiency::new(3).expect("valid level"),
                        }],
                    )
                })
                .collect(),
        };
        SimConfig {
            site,
            streams: vec![Stream {
                tenant,
                queue,
                per_hour: arrivals_per_hour,
                handle: None,
            }],
            handle: HandleTime::Exponential {
                mean_secs: aht_secs,
            },
            patience_secs,
            hours,
            warmup_hours: 0.0,
            sl_secs,
            seed,
            batches: 20,
        }
    }
}

/// The `[sim]` table of a scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioSim {
    #[serde(rename = "stream")]
    streams: Vec<Stream>,
}

impl SimConfig {
    /// Reads a scenario: a site configuration (tenants, queues, agents) plus a `[sim]`
    /// table of `[[sim.stream]]` arrival streams. Run length, seed, default handle time
    /// and patience come from `base`, whose site and streams are replaced.
    pub fn from_scenario(
        text: &str,
        path: &str,
        base: SimConfig,
    ) -> Result<SimConfig, ConfigError> {
        let parse = |message: String| ConfigError::Parse {
            path: path.to_owned(),
            message,
        };
        let mut table: toml::Table = toml::from_str(text).map_err(|e| parse(e.to_string()))?;
        let sim = table
            .remove("sim")
            .ok_or_else(|| parse("missing [sim] table with [[sim.stream]] entries".into()))?;
        let sim: ScenarioSim = sim
            .try_into()
            .map_err(|e: toml::de::Error| parse(format!("[sim]: {e}")))?;
        let site: SiteConfig = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| parse(e.to_string()))?;
        site.validate()?;
        for (i, s) in sim.streams.iter().enumerate() {
            let owner = format!("[[sim.stream]] {} ({}/{})", i + 1, s.tenant, s.queue);
            if !site
                .queues
                .iter()
                .any(|q| q.tenant == s.tenant && q.id == s.queue)
            {
                return Err(ConfigError::Unknown {
                    owner,
                    kind: "queue",
                    value: format!("{}/{}", s.tenant, s.queue),
                });
            }
            if !(s.per_hour.is_finite() && s.per_hour >= 0.0) {
                return Err(ConfigError::Invalid {
                    owner,
                    message: format!("per_hour {} must be a number of contacts ≥ 0", s.per_hour),
                });
            }
        }
        if site.agents.is_empty() {
            return Err(ConfigError::Invalid {
                owner: path.to_owned(),
                message: "a scenario needs at least one [[agent]]".into(),
            });
        }
        Ok(SimConfig {
            site,
            streams: sim.streams,
            ..base
        })
    }
}

/// Figures of one batch (or of the whole run).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Contacts that arrived (counted window).
    pub offered: u64,
    /// Contacts an agent answered.
    pub answered: u64,
    /// Of those, within the service-level threshold.
    pub answered_in_sl: u64,
    /// Contacts whose customer left before an answer.
    pub abandoned: u64,
    /// Sum of answered contacts' waits, seconds.
    pub wait_secs: f64,
    /// Sum of handled contacts' handle times (talk + wrap-up), seconds.
    pub handle_secs: f64,
    /// Contacts handled to the end.
    pub handled: u64,
}

impl Figures {
    fn add(&mut self, o: &Figures) {
        self.offered += o.offered;
        self.answered += o.answered;
        self.answered_in_sl += o.answered_in_sl;
        self.abandoned += o.abandoned;
        self.wait_secs += o.wait_secs;
        self.handle_secs += o.handle_secs;
        self.handled += o.handled;
    }

    /// Answered within the threshold ÷ offered.
    pub fn service_level(&self) -> f64 {
        ratio(self.answered_in_sl as f64, self.offered as f64)
    }
    /// Mean wait of answered contacts, seconds.
    pub fn asa_secs(&self) -> f64 {
        ratio(self.wait_secs, self.answered as f64)
    }
    /// Abandoned ÷ offered.
    pub fn abandon_rate(&self) -> f64 {
        ratio(self.abandoned as f64, self.offered as f64)
    }
    /// Mean handle time, seconds.
    pub fn aht_secs(&self) -> f64 {
        ratio(self.handle_secs, self.handled as f64)
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

/// What a run found.
#[derive(Debug, Clone, Serialize)]
pub struct SimReport {
    /// Contacts that arrived in the counted window.
    pub offered: u64,
    /// Contacts an agent answered.
    pub answered: u64,
    /// Contacts whose customer left.
    pub abandoned: u64,
    /// Answered within `sl_secs` ÷ offered.
    pub service_level: f64,
    /// Mean wait of answered contacts, seconds.
    pub asa_secs: f64,
    /// Abandoned ÷ offered.
    pub abandon_rate: f64,
    /// Busy time ÷ staffed time over the counted window.
    pub occupancy: f64,
    /// Mean handle time (talk + wrap-up), seconds.
    pub aht_secs: f64,
    /// Agents staffed.
    pub agents: usize,
    /// Hours simulated (arrivals), warm-up included.
    pub hours: f64,
    /// Service-level threshold, seconds.
    pub sl_secs: f64,
    /// The seed.
    pub seed: u64,
    /// Every contact simulated, warm-up included.
    pub contacts_simulated: u64,
    /// Per-batch figures, for confidence intervals.
    pub batches: Vec<Figures>,
    /// Per-batch occupancy.
    pub batch_occupancy: Vec<f64>,
    /// Per queue (by the queue contacts arrived in), in stream order.
    pub queues: Vec<QueueReport>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Arrival(u32),
    Patience(ContactId),
    TalkEnd(ContactId, u32),
    WrapEnd(ContactId, u32),
}

struct Tracked {
    arrived: Timestamp,
    connected: Timestamp,
    batch: usize,
    stream: usize,
}

/// One queue's figures in a run (contacts counted by the queue they arrived in).
#[derive(Debug, Clone, Serialize)]
pub struct QueueReport {
    /// The tenant.
    pub tenant: TenantId,
    /// The queue.
    pub queue: QueueId,
    /// Contacts that arrived in the counted window.
    pub offered: u64,
    /// Answered.
    pub answered: u64,
    /// Abandoned.
    pub abandoned: u64,
    /// Answered within the threshold ÷ offered.
    pub service_level: f64,
    /// Mean wait of answered contacts, seconds.
    pub asa_secs: f64,
    /// Abandoned ÷ offered.
    pub abandon_rate: f64,
    /// Mean handle time, seconds.
    pub aht_secs: f64,
}

/// Runs a simulation; `progress` is called now and then with the fraction done (0–1).
pub fn run(config: &SimConfig, mut progress: impl FnMut(f64)) -> Result<SimReport, AcdError> {
    let mut rng = Pcg64Mcg::seed_from_u64(config.seed);
    let ids = IdSource::sequential(0);
    let mut engine = Engine::new(&config.site, ids.fork(0))?;
    let mut contact_ids = ids.fork(u64::MAX);
    let site = config.site.site.clone();
    let profiles = AgentProfile::all(&config.site);
    let mut sessions: Vec<AgentSession> = profiles
        .into_iter()
        .map(|p| {
            let stream = u64::from(p.ix) + 1;
            AgentSession::new(p, site.clone(), ids.fork(stream))
        })
        .collect();
    let start = Timestamp::ZERO;
    let us = |secs: f64| Duration::from_micros((secs * 1e6).round().max(0.0) as u64);
    let end = start + us(config.hours * 3600.0);
    let warm = start + us(config.warmup_hours * 3600.0);
    let window = end.since(warm).as_secs_f64().max(1e-9);
    let nb = config.batches.max(1) as usize;
    let batch_len = window / nb as f64;

    let mut heap: BinaryHeap<Reverse<(Timestamp, u64, Ev)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |heap: &mut BinaryHeap<_>, at: Timestamp, ev: Ev| {
        seq += 1;
        heap.push(Reverse((at, seq, ev)));
    };
    let mut gaps = Vec::new();
    for (i, s) in config.streams.iter().enumerate() {
        if s.per_hour <= 0.0 {
            continue;
        }
        let gap = Exp::new(s.per_hour / 3600.0).map_err(|e| {
            AcdError::Unavailable(format!("arrival rate {} per hour: {e}", s.per_hour))
        })?;
        let first = us(rng.sample(gap));
        push(&mut heap, start + first, Ev::Arrival(i as u32));
        gaps.push(Some(gap));
    }
    let handles: Vec<Sampler> = config
        .streams
        .iter()
        .map(|s| Sampler::new(s.handle.unwrap_or(config.handle)))
        .collect::<Result<_, _>>()?;
    let patience = config
        .patience_secs
        .map(|p| {
            Exp::new(1.0 / p)
                .map_err(|e| AcdError::Unavailable(format!("patience {p} seconds: {e}")))
        })
        .transpose()?;

    // Every agent logs in ready at the start.
    for (i, s) in sessions.iter_mut().enumerate() {
        s.apply(start, &AgentTransition::LogIn)?;
        s.apply(start, &AgentTransition::GoReady)?;
        s.drain_events();
        engine.set_availability(start, i as u32, s.availability());
    }
    engine.drain_events();

    let mut total = Figures::default();
    let mut per_stream = vec![Figures::default(); config.streams.len()];
    let mut batches = vec![Figures::default(); nb];
    let mut busy_area = vec![0.0f64; nb];
    let mut tracked: HashMap<ContactId, Tracked> = HashMap::new();
    let mut stream_of: HashMap<ContactId, u32> = HashMap::new();
    let mut wrap_of: HashMap<ContactId, Duration> = HashMap::new();
    let channels: Vec<Channel> = config
        .streams
        .iter()
        .map(|s| {
            config
                .site
                .queues
                .iter()
                .find(|q| q.tenant == s.tenant && q.id == s.queue)
                .map_or(Channel::Voice, |q| q.channel)
        })
        .collect();
    let mut busy: u64 = 0;
    let mut last_t = start;
    let mut simulated = 0u64;
    let mut effects = Vec::new();
    let mut events = Vec::new();
    let mut next_report = 0.0;
    let agents_n = sessions.len();

    let batch_of = |t: Timestamp| -> Option<usize> {
        if t < warm || t >= end {
            None
        } else {
            Some(((t.since(warm).as_secs_f64() / batch_len) as usize).min(nb - 1))
        }
    };

    loop {
        let heap_next = heap.peek().map(|Reverse((t, _, _))| *t);
        let engine_next = engine.next_deadline();
        let now = match (heap_next, engine_next) {
            (None, None) => break,
            (Some(h), Some(e)) if e <= h => e,
            (_, Some(e)) if heap_next.is_none() => e,
            (Some(h), _) => h,
            _ => break,
        };
        // Integrate busy agents over the counted window, split by batch.
        integrate(&mut busy_area, busy, last_t, now, warm, end, batch_len);
        last_t = now;
        if heap_next == Some(now) {
            let Reverse((_, _, ev)) = heap.pop().expect("peeked");
            match ev {
                Ev::Arrival(i) => {
                    let s = &config.streams[i as usize];
                    let contact = contact_ids.contact();
                    simulated += 1;
                    engine.arrive(
                        now,
                        Arrival::new(
                            contact,
                            s.tenant.clone(),
                            s.queue.clone(),
                            channels[i as usize],
                        ),
                    )?;
                    stream_of.insert(contact, i);
                    if let Some(p) = &patience {
                        push(&mut heap, now + us(rng.sample(p)), Ev::Patience(contact));
                    }
                    if let Some(gap) = &gaps[i as usize] {
                        let next = now + us(rng.sample(gap));
                        if next < end {
                            push(&mut heap, next, Ev::Arrival(i));
                        }
                    }
                    let frac = now.since(start).as_secs_f64() / end.since(start).as_secs_f64();
                    if frac >= next_report {
                        progress(frac.min(1.0));
                        next_report = frac + 0.01;
                    }
                }
                Ev::Patience(contact) => {
                    if let Some(state) = engine.contact_state(contact)
                        && (state.is_waiting()
                            || state == hotline_core::contact::ContactState::Offered)
                    {
                        engine.hang_up(now, contact)?;
                    }
                }
                Ev::TalkEnd(contact, agent) => {
                    sessions[agent as usize].apply(now, &AgentTransition::End(contact))?;
                    engine.ended(now, contact, agent)?;
                    let wrap = wrap_of.get(&contact).copied().unwrap_or_default();
                    if wrap.is_zero() {
                        sessions[agent as usize]
                            .apply(now, &AgentTransition::FinishWrapUp(contact))?;
                        engine.wrap_up_done(now, contact, agent)?;
                    } else {
                        push(&mut heap, now + wrap, Ev::WrapEnd(contact, agent));
                    }
                }
                Ev::WrapEnd(contact, agent) => {
                    sessions[agent as usize].apply(now, &AgentTransition::FinishWrapUp(contact))?;
                    engine.wrap_up_done(now, contact, agent)?;
                }
            }
        } else {
            engine.tick(now);
        }
        // Offers are answered at once; answering may free or take capacity, which can
        // produce more offers, so loop until the engine is quiet.
        loop {
            engine.take_output(&mut effects, &mut events);
            if effects.is_empty() {
                break;
            }
            for effect in effects.drain(..) {
                match effect {
                    Effect::Offer(o) => {
                        let a = o.agent_ix;
                        let session = &mut sessions[a as usize];
                        session.apply(now, &AgentTransition::Offer(o.contact, o.channel))?;
                        session.apply(now, &AgentTransition::Accept(o.contact))?;
                        engine.accepted(now, o.contact, a)?;
                        let stream = stream_of.get(&o.contact).copied().unwrap_or(0);
                        let talk = handles[stream as usize].sample(&mut rng);
                        push(&mut heap, now + us(talk), Ev::TalkEnd(o.contact, a));
                        wrap_of.insert(o.contact, o.wrap_up);
                    }
                    Effect::Rescind { agent_ix, contact } => {
                        sessions[agent_ix as usize]
                            .apply(now, &AgentTransition::Rescind(contact))?;
                    }
                    Effect::CustomerEnded { .. } | Effect::Transferred { .. } => {}
                }
            }
        }
        for s in sessions.iter_mut() {
            s.drain_events();
        }
        for e in events.drain(..) {
            let EventBody::Contact(c) = &e.body else {
                continue;
            };
            match &c.kind {
                ContactEventKind::Arrived { .. } => {
                    if let Some(b) = batch_of(e.at) {
                        let stream = stream_of.get(&c.contact).copied().unwrap_or(0) as usize;
                        tracked.insert(
                            c.contact,
                            Tracked {
                                arrived: e.at,
                                connected: e.at,
                                batch: b,
                                stream,
                            },
                        );
                        for f in [&mut total, &mut batches[b], &mut per_stream[stream]] {
                            f.offered += 1;
                        }
                    }
                }
                ContactEventKind::Connected { .. } => {
                    busy += 1;
                    if let Some(t) = tracked.get_mut(&c.contact) {
                        t.connected = e.at;
                        let wait = e.at.since(t.arrived).as_secs_f64();
                        for f in [&mut total, &mut batches[t.batch], &mut per_stream[t.stream]] {
                            f.answered += 1;
                            f.wait_secs += wait;
                            if wait <= config.sl_secs + 1e-9 {
                                f.answered_in_sl += 1;
                            }
                        }
                    }
                }
                ContactEventKind::Done { .. } => {
                    busy -= 1;
                    stream_of.remove(&c.contact);
                    wrap_of.remove(&c.contact);
                    if let Some(t) = tracked.remove(&c.contact) {
                        let handle = e.at.since(t.connected).as_secs_f64();
                        for f in [&mut total, &mut batches[t.batch], &mut per_stream[t.stream]] {
                            f.handled += 1;
                            f.handle_secs += handle;
                        }
                    }
                }
                k if k.is_terminal() => {
                    stream_of.remove(&c.contact);
                    if let Some(t) = tracked.remove(&c.contact)
                        && matches!(k, ContactEventKind::Abandoned { .. })
                    {
                        for f in [&mut total, &mut batches[t.batch], &mut per_stream[t.stream]] {
                            f.abandoned += 1;
                        }
                    }
                }
                _ => {}
            }
        }
    }
    progress(1.0);
    // Streams into the same queue add up.
    let mut queues: Vec<(TenantId, QueueId, Figures)> = Vec::new();
    for (s, f) in config.streams.iter().zip(per_stream) {
        match queues
            .iter_mut()
            .find(|(t, q, _)| t == &s.tenant && q == &s.queue)
        {
            Some((_, _, acc)) => acc.add(&f),
            None => queues.push((s.tenant.clone(), s.queue.clone(), f)),
        }
    }
    let queues = queues
        .into_iter()
        .map(|(tenant, queue, f)| QueueReport {
            tenant,
            queue,
            offered: f.offered,
            answered: f.answered,
            abandoned: f.abandoned,
            service_level: f.service_level(),
            asa_secs: f.asa_secs(),
            abandon_rate: f.abandon_rate(),
            aht_secs: f.aht_secs(),
        })
        .collect();
    let staffed = agents_n as f64 * window;
    let occupancy = ratio(busy_area.iter().sum(), staffed);
    let batch_occupancy = busy_area
        .iter()
        .map(|a| ratio(*a, agents_n as f64 * batch_len))
        .collect();
    Ok(SimReport {
        offered: total.offered,
        answered: total.answered,
        abandoned: total.abandoned,
        service_level: total.service_level(),
        asa_secs: total.asa_secs(),
        abandon_rate: total.abandon_rate(),
        occupancy,
        aht_secs: total.aht_secs(),
        agents: agents_n,
        hours: config.hours,
        sl_secs: config.sl_secs,
        seed: config.seed,
        contacts_simulated: simulated,
        batches,
        batch_occupancy,
        queues,
    })
}

/// Adds `busy × overlap` of `[from, to)` with each batch of the counted window.
fn integrate(
    area: &mut [f64],
    busy: u64,
    from: Timestamp,
    to: Timestamp,
    warm: Timestamp,
    end: Timestamp,
    batch_len: f64,
) {
    if busy == 0 || to <= warm || from >= end {
        return;
    }
    let a = from.max(warm).since(warm).as_secs_f64();
    let b = to.min(end).since(warm).as_secs_f64();
    let mut t = a;
    while t < b {
        let i = ((t / batch_len) as usize).min(area.len() - 1);
        let edge = ((i + 1) as f64 * batch_len).min(b);
        let edge = if edge <= t { b } else { edge };
        area[i] += busy as f64 * (edge - t);
        t = edge;
    }
}

/// A talk-time sampler.
enum Sampler {
    Exp(Exp<f64>),
    LogNormal(LogNormal<f64>),
}

impl Sampler {
    fn new(h: HandleTime) -> Result<Self, AcdError> {
        let bad = |e: &dyn std::fmt::Display| {
            AcdError::Unavailable(format!("handle time {h:?} is not a distribution: {e}"))
        };
        Ok(match h {
            HandleTime::Exponential { mean_secs } => {
                Sampler::Exp(Exp::new(1.0 / mean_secs).map_err(|e| bad(&e))?)
            }
            HandleTime::Lognormal { mean_secs, cv } => {
                Sampler::LogNormal(LogNormal::from_mean_cv(mean_secs, cv).map_err(|e| bad(&e))?)
            }
        })
    }

    fn sample(&self, rng: &mut Pcg64Mcg) -> f64 {
        match self {
            Sampler::Exp(d) => rng.sample(d),
            Sampler::LogNormal(d) => rng.sample(d),
        }
    }
}

#[cfg(test)]
mod tests;
