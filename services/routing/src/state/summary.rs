//! Live site summaries: what each site publishes a few times a second so every other
//! site can decide where a waiting contact would be served sooner.
//!
//! One `PublishSummary` command per site carries the whole batch and replaces that
//! site's previous summary; applying it costs one lookup per row, no clone of the state.

use std::collections::BTreeMap;

use hotline_core::ids::{QueueId, SkillId, TenantId};
use serde::{Deserialize, Serialize};

/// Ready agents holding one skill, counted per minimum proficiency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkillReady {
    /// The skill (of the row's tenant).
    pub skill: SkillId,
    /// `at_least[i]`: ready agents with this skill at proficiency `i + 1` or better, so
    /// the figures never increase from left to right.
    pub at_least: [u32; 5],
}

/// One queue's live figures at one site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSummary {
    /// The tenant.
    pub tenant: TenantId,
    /// The queue.
    pub queue: QueueId,
    /// Ready agents who meet every requirement of this queue. Overflow decides on this
    /// figure: per-skill counts cannot tell whether one agent holds all the skills.
    pub ready: u32,
    /// Ready agents by skill and proficiency, for dashboards and finer routing.
    #[serde(default)]
    pub ready_by_skill: Vec<SkillReady>,
    /// Contacts waiting in the queue.
    pub waiting: u32,
    /// How long the oldest of them has waited.
    pub oldest_wait_ms: u64,
    /// How long a contact arriving now would wait, as the site estimates it.
    pub expected_wait_ms: u64,
}

/// The last summary a site published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteSummary {
    /// When the site measured it (its clock, stamped in the command).
    pub at_ms: u64,
    /// Rows by tenant, then queue.
    pub queues: BTreeMap<TenantId, BTreeMap<QueueId, QueueSummary>>,
}

impl SiteSummary {
    /// The row for one queue, if the site published one.
    pub fn queue(&self, tenant: &TenantId, queue: &QueueId) -> Option<&QueueSummary> {
        self.queues.get(tenant)?.get(queue)
    }
}
