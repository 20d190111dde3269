//! A naive router: the baseline the routing benchmark compares against.
//!
//! It keeps agents in a list and contacts in a list and, for each decision, scans every
//! agent, comparing skills by name. This is how a first implementation (or a SQL query
//! per decision) routes; the engine's bit-set index is measured against it.

use hotline_core::channel::Channel;
use hotline_core::ids::{SkillId, TenantId};

use crate::config::{SiteConfig, Strategy};

struct NaiveAgent {
    serves: Vec<(TenantId, Vec<(SkillId, u8)>)>,
    capacity: [u8; 3],
    used: [u8; 3],
    ready: bool,
    idle_since: u64,
}

struct NaiveQueue {
    tenant: TenantId,
    channel: Channel,
    skills: Vec<(SkillId, u8)>,
    strategy: Strategy,
}

/// The naive router. See the module documentation.
pub struct NaiveRouter {
    agents: Vec<NaiveAgent>,
    queues: Vec<NaiveQueue>,
}

impl NaiveRouter {
    /// Builds it from the same configuration as the engine; every agent starts ready.
    pub fn new(config: &SiteConfig) -> Self {
        let agents = config
            .agents
            .iter()
            .map(|a| NaiveAgent {
                serves: a
                    .serves
                    .iter()
                    .map(|s| {
                        (
                            s.tenant.clone(),
                            s.skills
                                .iter()
                                .map(|k| (k.skill.clone(), k.level.get()))
                                .collect(),
                        )
                    })
                    .collect(),
                capacity: [a.capacity.voice, a.capacity.chat, a.capacity.callback],
                used: [0; 3],
                ready: true,
                idle_since: 0,
            })
            .collect();
        let queues = config
            .queues
            .iter()
            .map(|q| NaiveQueue {
                tenant: q.tenant.clone(),
                channel: q.channel,
                skills: q
                    .skills
                    .iter()
                    .map(|r| (r.skill.clone(), r.min.get()))
                    .collect(),
                strategy: q.strategy,
            })
            .collect();
        Self { agents, queues }
    }

    /// Picks the longest-idle eligible agent with room for a contact of queue `queue`
    /// and reserves it, or returns `None`.
    pub fn decide(&mut self, queue: usize, now: u64) -> Option<usize> {
        let q = &self.queues[queue];
        let ch = q.channel.index();
        let mut best: Option<(u64, usize)> = None;
        for (i, a) in self.agents.iter().enumerate() {
            if !a.ready || a.used[ch] >= a.capacity[ch] {
                continue;
            }
            let Some((_, skills)) = a.serves.iter().find(|(t, _)| *t == q.tenant) else {
                continue;
            };
            let eligible = q
                .skills
                .iter()
                .all(|(skill, min)| skills.iter().any(|(s, level)| s == skill && level >= min));
            if !eligible {
                continue;
            }
            let key = match q.strategy {
                Strategy::LongestIdle => a.idle_since,
                _ => a.idle_since,
            };
            if best.is_none_or(|(b, _)| key < b) {
                best = Some((key, i));
            }
        }
        let (_, i) = best?;
        self.agents[i].used[ch] += 1;
        self.agents[i].idle_since = now;
        Some(i)
    }

    /// Frees the agent's slot on the queue's channel.
    pub fn release(&mut self, queue: usize, agent: usize) {
        let ch = self.queues[queue].channel.index();
        self.agents[agent].used[ch] -= 1;
    }
}
