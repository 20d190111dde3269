//! Synthetic sites for benchmarks and load tests: many agents with mixed skills over
//! many queues, generated from a seed.

use hotline_core::ids::{AgentId, QueueId, SiteId, SkillId, TenantId};
use hotline_core::skill::{Proficiency, Skill, SkillRequirement};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::config::{AcdDefaults, AgentConfig, QueueConfig, SiteConfig, Strategy, TenantConfig};

/// Skills in the generated tenant's catalogue.
pub const SKILLS: usize = 20;

/// A site with `agents` voice agents and `queues` queues of one tenant. Each queue needs
/// one or two of 20 skills at level 1–3 and uses one of the five strategies in turn;
/// each agent has four to seven skills at level 1–5 (and at least one queue it can
/// serve). The same seed gives the same site.
pub fn mixed_skills(agents: usize, queues: usize, seed: u64) -> SiteConfig {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let tenant = TenantId::new("bench").expect("valid id");
    let skill = |i: usize| SkillId::new(format!("s{i}")).expect("valid id");
    let level = |l: u8| Proficiency::new(l).expect("valid level");
    let strategies = [
        Strategy::LongestIdle,
        Strategy::MostSkilled,
        Strategy::RoundRobin,
        Strategy::FewestContacts,
        Strategy::LeastOccupied,
    ];
    let queue_cfgs: Vec<QueueConfig> = (0..queues)
        .map(|q| {
            let first = q % SKILLS;
            let mut skills = vec![SkillRequirement {
                skill: skill(first),
                min: level(rng.random_range(1..=3)),
            }];
            if rng.random_bool(0.5) {
                let second = (first + 1 + rng.random_range(0..SKILLS - 1)) % SKILLS;
                skills.push(SkillRequirement {
                    skill: skill(second),
                    min: level(rng.random_range(1..=2)),
                });
            }
            QueueConfig {
                priority: rng.random_range(0..3),
                strategy: strategies[q % strategies.len()],
                ..QueueConfig::new(
                    tenant.clone(),
                    QueueId::new(format!("q{q}")).expect("valid id"),
                    skills,
                )
            }
        })
        .collect();
    let agent_cfgs = (0..agents)
        .map(|a| {
            let n = rng.random_range(4..=7);
            let mut skills: Vec<Skill> = Vec::new();
            // Guarantee one queue: the skills of queue a % queues at level 5.
            for r in &queue_cfgs[a % queues.max(1)].skills {
                skills.push(Skill {
                    skill: r.skill.clone(),
                    level: Proficiency::MAX,
                });
            }
            while skills.len() < n {
                let s = skill(rng.random_range(0..SKILLS));
                if skills.iter().all(|k| k.skill != s) {
                    skills.push(Skill {
                        skill: s,
                        level: level(rng.random_range(1..=5)),
                    });
                }
            }
            AgentConfig::new(
                AgentId::new(format!("agent{a}")).expect("valid id"),
                tenant.clone(),
                skills,
            )
        })
        .collect();
    SiteConfig {
        site: SiteId::new("bench").expect("valid id"),
        defaults: AcdDefaults::default(),
        providers: vec![],
        tenants: vec![TenantConfig {
            id: tenant,
            name: "Benchmark tenant".into(),
            provider: None,
            skills: (0..SKILLS).map(skill).collect(),
        }],
        queues: queue_cfgs,
        agents: agent_cfgs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_site_is_valid_and_every_agent_can_serve_a_queue() {
        let c = mixed_skills(1000, 50, 1);
        c.validate().unwrap();
        assert_eq!((c.agents.len(), c.queues.len()), (1000, 50));
        assert_eq!(mixed_skills(10, 5, 9), mixed_skills(10, 5, 9));
    }
}
