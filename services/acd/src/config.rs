//! The site's ACD configuration: tenants, their skills, queues and agents.
//!
//! Read from TOML (`[[tenant]]`, `[[queue]]`, `[[agent]]` tables) and checked as a whole
//! before anything runs: every reference (a queue's skill, an overflow target, an
//! agent's tenant) must resolve, and every error names the item and the value.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use hotline_core::channel::{Capacity, Channel};
use hotline_core::ids::{AgentId, ProviderId, QueueId, SiteId, SkillId, TenantId};
use hotline_core::skill::{Skill, SkillRequirement};
use serde::{Deserialize, Serialize};

/// A configuration that cannot be used, with what and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// The operating system's reason.
        message: String,
    },
    /// The text is not valid TOML or does not match the schema.
    #[error("{path}: {message}")]
    Parse {
        /// The file (or `<string>`).
        path: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// Two items share an id.
    #[error("{kind} {id:?} is defined twice")]
    Duplicate {
        /// What kind of item.
        kind: &'static str,
        /// The repeated id.
        id: String,
    },
    /// A reference to something that does not exist.
    #[error("{owner} names unknown {kind} {value:?}")]
    Unknown {
        /// The item holding the reference, e.g. `queue acme/billing`.
        owner: String,
        /// What kind of thing was named.
        kind: &'static str,
        /// The name that did not resolve.
        value: String,
    },
    /// A value that is out of range or contradicts another.
    #[error("{owner}: {message}")]
    Invalid {
        /// The item.
        owner: String,
        /// What is wrong and what would be right.
        message: String,
    },
}

/// The whole ACD configuration of one site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// This site's id.
    pub site: SiteId,
    /// Settings that apply to every queue and agent unless they say otherwise.
    #[serde(default)]
    pub defaults: AcdDefaults,
    /// Outsourcing providers hosting tenants.
    #[serde(default, rename = "provider")]
    pub providers: Vec<ProviderConfig>,
    /// Tenants served at this site.
    #[serde(default, rename = "tenant")]
    pub tenants: Vec<TenantConfig>,
    /// Queues, each belonging to one tenant.
    #[serde(default, rename = "queue")]
    pub queues: Vec<QueueConfig>,
    /// Agents' profiles: who may log in here and what they can do.
    #[serde(default, rename = "agent")]
    pub agents: Vec<AgentConfig>,
}

/// Site-wide defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcdDefaults {
    /// Seconds an offer rings before it counts as missed.
    pub no_answer_secs: u32,
    /// Missed offers in a row that send an agent not ready (0 = never).
    pub max_missed: u32,
    /// Seconds before a contact is offered again to an agent who declined it.
    pub reoffer_after_secs: u32,
}

impl Default for AcdDefaults {
    fn default() -> Self {
        Self {
            no_answer_secs: 15,
            max_missed: 3,
            reoffer_after_secs: 30,
        }
    }
}

/// An outsourcing provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Its id.
    pub id: ProviderId,
    /// A display name.
    #[serde(default)]
    pub name: String,
}

/// A tenant and its skill catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Its id.
    pub id: TenantId,
    /// A display name.
    #[serde(default)]
    pub name: String,
    /// The provider hosting it, if any.
    #[serde(default)]
    pub provider: Option<ProviderId>,
    /// Every skill its queues and agents may name; a typo elsewhere is caught against it.
    pub skills: Vec<SkillId>,
}

/// How a queue picks among several free agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The agent idle the longest.
    #[default]
    LongestIdle,
    /// The highest proficiency in the queue's skills, ties by idle time.
    MostSkilled,
    /// Agents in turn.
    RoundRobin,
    /// The agent who has handled the fewest contacts, ties by idle time.
    FewestContacts,
    /// The agent with the lowest occupancy since login, ties by idle time.
    LeastOccupied,
}

impl Strategy {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::LongestIdle => "longest_idle",
            Strategy::MostSkilled => "most_skilled",
            Strategy::RoundRobin => "round_robin",
            Strategy::FewestContacts => "fewest_contacts",
            Strategy::LeastOccupied => "least_occupied",
        }
    }
}

/// What a queue does with a contact when a limit is reached.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action", deny_unknown_fields)]
pub enum QueueAction {
    /// Keep the contact where it is (only for "no agents logged in").
    Stay,
    /// Move it to another queue of the same tenant and channel; it keeps its age.
    Overflow {
        /// The target queue.
        queue: QueueId,
    },
    /// Offer the customer a callback that keeps their place in line.
    Callback,
    /// Send the customer to voicemail.
    Voicemail,
    /// End the contact.
    #[default]
    Disconnect,
}

/// One widening step of a queue's bullseye: after a wait, more agents qualify. Steps
/// only widen: an agent eligible at one step stays eligible at every later one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpandStep {
    /// Seconds in the queue after which this step applies.
    pub after_secs: u32,
    /// Lower the minimum proficiency of one of the queue's skills.
    #[serde(default)]
    pub relax: Option<SkillRequirement>,
    /// Stop requiring one skill.
    #[serde(default)]
    pub drop: Option<SkillId>,
    /// Also accept agents with this alternative skill.
    #[serde(default)]
    pub add: Option<SkillRequirement>,
    /// Also accept every agent of another queue.
    #[serde(default)]
    pub widen_to: Option<QueueId>,
}

/// A queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// The tenant owning it.
    pub tenant: TenantId,
    /// Its id within the tenant.
    pub id: QueueId,
    /// A display name.
    #[serde(default)]
    pub name: String,
    /// The channel it takes.
    #[serde(default = "voice")]
    pub channel: Channel,
    /// Skills an agent needs, each at a minimum proficiency.
    #[serde(default)]
    pub skills: Vec<SkillRequirement>,
    /// Contacts of higher-priority queues are served first (0–255).
    #[serde(default)]
    pub priority: u8,
    /// How a free agent is chosen.
    #[serde(default)]
    pub strategy: Strategy,
    /// Service-level threshold in seconds (answered within it counts as in SL).
    #[serde(default = "twenty")]
    pub sl_secs: u32,
    /// Service-level target, 0–1, shown beside the figure.
    #[serde(default = "eighty_percent")]
    pub sl_target: f64,
    /// Wrap-up seconds after each contact.
    #[serde(default)]
    pub wrap_up_secs: u32,
    /// Ring time before an offer counts as missed (default: the site's).
    #[serde(default)]
    pub no_answer_secs: Option<u32>,
    /// Most contacts in the queue at once.
    #[serde(default)]
    pub max_size: Option<u32>,
    /// Longest wait in this queue before `on_max_wait` applies.
    #[serde(default)]
    pub max_wait_secs: Option<u32>,
    /// What happens at the maximum wait.
    #[serde(default)]
    pub on_max_wait: QueueAction,
    /// What happens to an arrival when the queue is full.
    #[serde(default)]
    pub when_full: QueueAction,
    /// What happens to an arrival when no agent who could serve it is logged in.
    #[serde(default = "stay")]
    pub when_no_agents: QueueAction,
    /// Bullseye expansion steps, in order of `after_secs`.
    #[serde(default)]
    pub expand: Vec<ExpandStep>,
}

fn voice() -> Channel {
    Channel::Voice
}
fn twenty() -> u32 {
    20
}
fn eighty_percent() -> f64 {
    0.8
}
fn stay() -> QueueAction {
    QueueAction::Stay
}

/// The skills an agent has for one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServesConfig {
    /// The tenant.
    pub tenant: TenantId,
    /// Skills for that tenant's queues.
    #[serde(default)]
    pub skills: Vec<Skill>,
}

/// An agent's profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The agent's id.
    pub id: AgentId,
    /// A display name.
    #[serde(default)]
    pub name: String,
    /// The provider or tenant employing the agent is informational here; what matters is
    /// whom they serve.
    #[serde(default)]
    pub provider: Option<ProviderId>,
    /// Contacts per channel at once.
    #[serde(default)]
    pub capacity: Capacity,
    /// Missed offers in a row before not ready (default: the site's).
    #[serde(default)]
    pub max_missed: Option<u32>,
    /// Tenants served, with skills for each.
    #[serde(rename = "serves")]
    pub serves: Vec<ServesConfig>,
}

impl QueueConfig {
    /// A voice queue with every optional setting at its default (longest idle, 20 s
    /// service level, no wrap-up, no limits), for generated sites and tests.
    pub fn new(tenant: TenantId, id: QueueId, skills: Vec<SkillRequirement>) -> Self {
        QueueConfig {
            tenant,
            id,
            name: String::new(),
            channel: Channel::Voice,
            skills,
            priority: 0,
            strategy: Strategy::LongestIdle,
            sl_secs: twenty(),
            sl_target: eighty_percent(),
            wrap_up_secs: 0,
            no_answer_secs: None,
            max_size: None,
            max_wait_secs: None,
            on_max_wait: QueueAction::Disconnect,
            when_full: QueueAction::Disconnect,
            when_no_agents: QueueAction::Stay,
            expand: vec![],
        }
    }
}

impl AgentConfig {
    /// A voice agent serving one tenant with `skills`, for generated sites and tests.
    pub fn new(id: AgentId, tenant: TenantId, skills: Vec<Skill>) -> Self {
        AgentConfig {
            id,
            name: String::new(),
            provider: None,
            capacity: Capacity::default(),
            max_missed: None,
            serves: vec![ServesConfig { tenant, skills }],
        }
    }
}

impl SiteConfig {
    /// Parses and validates TOML text; `path` names it in errors.
    pub fn from_toml(text: &str, path: &str) -> Result<Self, ConfigError> {
        let config: SiteConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a TOML file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Checks every rule; the first error found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut providers = HashSet::new();
        for p in &self.providers {
            if !providers.insert(&p.id) {
                return Err(dup("provider", &p.id));
            }
        }
        let mut skills: HashMap<&TenantId, HashSet<&SkillId>> = HashMap::new();
        for t in &self.tenants {
            if let Some(p) = &t.provider
                && !providers.contains(p)
            {
                return Err(unknown(format!("tenant {}", t.id), "provider", p));
            }
            let mut set = HashSet::new();
            for s in &t.skills {
                if !set.insert(s) {
                    return Err(dup("skill", format!("{}/{}", t.id, s)));
                }
            }
            if skills.insert(&t.id, set).is_some() {
                return Err(dup("tenant", &t.id));
            }
        }
        let mut queues: HashMap<(&TenantId, &QueueId), &QueueConfig> = HashMap::new();
        for q in &self.queues {
            let owner = format!("queue {}/{}", q.tenant, q.id);
            let Some(catalogue) = skills.get(&q.tenant) else {
                return Err(unknown(owner, "tenant", &q.tenant));
            };
            if queues.insert((&q.tenant, &q.id), q).is_some() {
                return Err(dup("queue", format!("{}/{}", q.tenant, q.id)));
            }
            let mut seen = HashSet::new();
            for r in &q.skills {
                if !catalogue.contains(&r.skill) {
                    return Err(unknown(owner, "skill", &r.skill));
                }
                if !seen.insert(&r.skill) {
                    return Err(invalid(
                        owner,
                        format!("skill {} is required twice", r.skill),
                    ));
                }
            }
            if !(0.0..=1.0).contains(&q.sl_target) {
                return Err(invalid(
                    owner,
                    format!("sl_target {} must be between 0 and 1", q.sl_target),
                ));
            }
            if q.max_size == Some(0) {
                return Err(invalid(
                    owner,
                    "max_size 0 would refuse every contact; omit it for no limit".into(),
                ));
            }
            let mut last = 0;
            for (i, step) in q.expand.iter().enumerate() {
                let at = format!("{owner} expand step {}", i + 1);
                if step.after_secs <= last {
                    return Err(invalid(
                        at,
                        format!(
                            "after_secs {} must be greater than the previous step's {last}",
                            step.after_secs
                        ),
                    ));
                }
                last = step.after_secs;
                if step.relax.is_none()
                    && step.drop.is_none()
                    && step.add.is_none()
                    && step.widen_to.is_none()
                {
                    return Err(invalid(
                        at,
                        "says nothing: give relax, drop, add or widen_to".into(),
                    ));
                }
                for s in [step.relax.as_ref().map(|r| &r.skill), step.drop.as_ref()]
                    .into_iter()
                    .flatten()
                {
                    if !q.skills.iter().any(|r| &r.skill == s) {
                        return Err(invalid(
                            at,
                            format!(
                                "skill {s} is not one of the queue's skills, so it cannot be relaxed or dropped"
                            ),
                        ));
                    }
                }
                if let Some(add) = &step.add
                    && !catalogue.contains(&add.skill)
                {
                    return Err(unknown(at, "skill", &add.skill));
                }
            }
            match q.when_full {
                QueueAction::Stay | QueueAction::Callback => {
                    return Err(invalid(
                        owner,
                        "when_full must be overflow, voicemail or disconnect: a full queue cannot keep the contact".into(),
                    ));
                }
                _ => {}
            }
            if q.on_max_wait == QueueAction::Stay {
                return Err(invalid(
                    owner,
                    "on_max_wait cannot be stay; omit max_wait_secs for no limit".into(),
                ));
            }
            if q.when_no_agents == QueueAction::Callback {
                return Err(invalid(
                    owner,
                    "when_no_agents cannot be callback: nobody could call back".into(),
                ));
            }
        }
        for q in &self.queues {
            let owner = format!("queue {}/{}", q.tenant, q.id);
            let targets = [&q.on_max_wait, &q.when_full, &q.when_no_agents]
                .into_iter()
                .filter_map(|a| match a {
                    QueueAction::Overflow { queue } => Some(queue),
                    _ => None,
                })
                .chain(q.expand.iter().filter_map(|s| s.widen_to.as_ref()));
            for target in targets {
                let Some(t) = queues.get(&(&q.tenant, target)) else {
                    return Err(unknown(owner, "queue", target));
                };
                if target == &q.id {
                    return Err(invalid(
                        owner,
                        format!("queue {target} cannot overflow or widen to itself"),
                    ));
                }
                if t.channel != q.channel {
                    return Err(invalid(
                        owner,
                        format!(
                            "queue {target} takes {} but this queue takes {}",
                            t.channel, q.channel
                        ),
                    ));
                }
            }
        }
        let mut agents = HashSet::new();
        for a in &self.agents {
            let owner = format!("agent {}", a.id);
            if !agents.insert(&a.id) {
                return Err(dup("agent", &a.id));
            }
            if let Some(p) = &a.provider
                && !providers.contains(p)
            {
                return Err(unknown(owner, "provider", p));
            }
            if a.serves.is_empty() {
                return Err(invalid(
                    owner,
                    "serves no tenant: add a [[agent.serves]] table".into(),
                ));
            }
            if Channel::ALL.iter().all(|c| a.capacity.on(*c) == 0) {
                return Err(invalid(owner, "has no capacity on any channel".into()));
            }
            let mut tenants = HashSet::new();
            for s in &a.serves {
                let Some(catalogue) = skills.get(&s.tenant) else {
                    return Err(unknown(owner, "tenant", &s.tenant));
                };
                if !tenants.insert(&s.tenant) {
                    return Err(invalid(owner, format!("serves tenant {} twice", s.tenant)));
                }
                for sk in &s.skills {
                    if !catalogue.contains(&sk.skill) {
                        return Err(unknown(
                            format!("{owner} (tenant {})", s.tenant),
                            "skill",
                            &sk.skill,
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

fn dup(kind: &'static str, id: impl ToString) -> ConfigError {
    ConfigError::Duplicate {
        kind,
        id: id.to_string(),
    }
}

fn unknown(owner: String, kind: &'static str, value: impl ToString) -> ConfigError {
    ConfigError::Unknown {
        owner,
        kind,
        value: value.to_string(),
    }
}

fn invalid(owner: String, message: String) -> ConfigError {
    ConfigError::Invalid { owner, message }
}

#[cfg(test)]
mod tests;
