//! A naive router: the baseline the routing benchmarks compare against.
//!
//! It keeps agents in a list and waiting contacts in a list. A contact that arrives scans
//! every agent, comparing skills by name; an agent that becomes free scans every waiting
//! contact for the best one it can take (priority, then age). This is how a first
//! implementation — or a SQL query per decision — routes; the engine's bit-set index and
//! ordered waiting sets are measured against it on the same workload.

use hotline_core::channel::Channel;
use hotline_core::ids::{SkillId, TenantId};

use crate::config::SiteConfig;

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
    priority: u8,
    skills: Vec<(SkillId, u8)>,
}

struct Waiting {
    queue: usize,
    priority: u8,
    seq: u64,
}

/// The naive router. See the module documentation.
pub struct NaiveRouter {
    agents: Vec<NaiveAgent>,
    queues: Vec<NaiveQueue>,
    waiting: Vec<Waiting>,
    seq: u64,
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
                        let skills = s.skills.iter().map(|k| (k.skill.clone(), k.level.get()));
                        (s.tenant.clone(), skills.collect())
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
                priority: q.priority,
                skills: q
                    .skills
                    .iter()
                    .map(|r| (r.skill.clone(), r.min.get()))
                    .collect(),
            })
            .collect();
        Self {
            agents,
            queues,
            waiting: Vec::new(),
            seq: 0,
        }
    }

    fn eligible(&self, agent: usize, queue: usize) -> bool {
        let a = &self.agents[agent];
        let q = &self.queues[queue];
        let Some((_, skills)) = a.serves.iter().find(|(t, _)| *t == q.tenant) else {
            return false;
        };
        q.skills
            .iter()
            .all(|(skill, min)| skills.iter().any(|(s, level)| s == skill && level >= min))
    }

    /// A contact arrives in `queue`: the longest-idle eligible agent with room takes it
    /// (returned), or it waits.
    pub fn arrive(&mut self, queue: usize) -> Option<usize> {
        let ch = self.queues[queue].channel.index();
        let mut best: Option<(u64, usize)> = None;
        for (i, a) in self.agents.iter().enumerate() {
            if !a.ready || a.used[ch] >= a.capacity[ch] || !self.eligible(i, queue) {
                continue;
            }
            if best.is_none_or(|(b, _)| a.idle_since < b) {
                best = Some((a.idle_since, i));
            }
        }
        match best {
            Some((_, i)) => {
                self.agents[i].used[ch] += 1;
                Some(i)
            }
            None => {
                self.seq += 1;
                self.waiting.push(Waiting {
                    queue,
                    priority: self.queues[queue].priority,
                    seq: self.seq,
                });
                None
            }
        }
    }

    /// The agent finishes a contact of `queue` and takes the best waiting contact it can
    /// (returning that contact's queue), or goes idle.
    pub fn release(&mut self, agent: usize, queue: usize, now: u64) -> Option<usize> {
        let ch = self.queues[queue].channel.index();
        self.agents[agent].used[ch] -= 1;
        let mut best: Option<(u8, u64, usize)> = None;
        for (i, w) in self.waiting.iter().enumerate() {
            let room = {
                let a = &self.agents[agent];
                let wc = self.queues[w.queue].channel.index();
                a.used[wc] < a.capacity[wc]
            };
            if !room || !self.eligible(agent, w.queue) {
                continue;
            }
            let better =
                best.is_none_or(|(p, s, _)| w.priority > p || (w.priority == p && w.seq < s));
            if better {
                best = Some((w.priority, w.seq, i));
            }
        }
        match best {
            Some((_, _, i)) => {
                let w = self.waiting.remove(i);
                let wc = self.queues[w.queue].channel.index();
                self.agents[agent].used[wc] += 1;
                Some(w.queue)
            }
            None => {
                self.agents[agent].idle_since = now;
                None
            }
        }
    }

    /// Contacts waiting.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::mixed_skills;

    #[test]
    fn the_naive_router_assigns_free_agents_and_queues_the_rest() {
        let config = mixed_skills(4, 2, 3);
        let mut n = NaiveRouter::new(&config);
        let mut taken = vec![];
        for t in 0..10 {
            if let Some(a) = n.arrive(t % 2) {
                taken.push((a, t % 2));
            }
        }
        assert!(!taken.is_empty());
        assert_eq!(taken.len() + n.waiting(), 10);
        let (a, q) = taken[0];
        let before = n.waiting();
        if n.release(a, q, 20).is_some() {
            assert_eq!(n.waiting(), before - 1);
        }
    }
}
