//! The commands a proposer puts in the Raft log, and what applying one answered.
//!
//! A command carries everything `apply` needs, time included (`at_ms`, stamped by the
//! proposer's clock), so every replica computes the same state.

use std::fmt;

use hotline_core::ids::{AgentId, ProviderId, QueueId, SiteId, SkillId, TenantId};
use serde::{Deserialize, Serialize};

use super::config::{AgentProfile, BusinessHours, Provider, Queue, SiteStatus, TenantSpec};
use super::error::Refusal;
use super::promise::{NewPromise, PromiseId, PromiseOutcome};
use super::summary::QueueSummary;

/// A change to the routing state, proposed through Raft.
///
/// `Add*` refuses an id that exists, `Update*` one that does not, `Remove*` one that is
/// still referenced.
///
/// The large payloads (queues, tenants, agents, hours, promises) are boxed: a command is
/// moved many times between a client, openraft, the log and the state machine, and keeping
/// every command, `Noop` and summaries included, near 100 bytes instead of ~290 took a
/// third of an in-memory replica's copying away. The encoding (JSON, postcard) is the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Changes nothing; used to check that the group commits.
    Noop,
    /// Several commands applied in order, all of them or none of them (a refusal names
    /// the position). Promises created inside get consecutive slots of the same index.
    Batch(Vec<Command>),

    /// Adds an outsourcing provider.
    AddProvider(Provider),
    /// Renames a provider.
    UpdateProvider(Provider),
    /// Removes a provider no tenant or agent names.
    RemoveProvider {
        /// The provider.
        id: ProviderId,
    },

    /// Adds a tenant with its first skills.
    AddTenant(Box<TenantSpec>),
    /// Changes a tenant's name or provider (skills have their own commands).
    UpdateTenant {
        /// The tenant.
        id: TenantId,
        /// Its new display name.
        name: String,
        /// Its new provider.
        provider: Option<ProviderId>,
    },
    /// Removes a tenant with its queues, hours and flows, once no agent serves it and
    /// no open promise belongs to it.
    RemoveTenant {
        /// The tenant.
        id: TenantId,
    },
    /// Adds a skill to a tenant's catalogue.
    AddSkill {
        /// The tenant.
        tenant: TenantId,
        /// The skill.
        skill: SkillId,
    },
    /// Removes a skill no queue or agent names.
    RemoveSkill {
        /// The tenant.
        tenant: TenantId,
        /// The skill.
        skill: SkillId,
    },

    /// Adds a queue.
    AddQueue(Box<Queue>),
    /// Replaces a queue's settings.
    UpdateQueue(Box<Queue>),
    /// Removes a queue no other queue names and no open promise waits in.
    RemoveQueue {
        /// The tenant.
        tenant: TenantId,
        /// The queue.
        queue: QueueId,
    },

    /// Adds a business-hours calendar.
    AddBusinessHours(Box<BusinessHours>),
    /// Replaces a business-hours calendar.
    UpdateBusinessHours(Box<BusinessHours>),
    /// Removes a calendar no queue follows.
    RemoveBusinessHours {
        /// The tenant.
        tenant: TenantId,
        /// The calendar.
        id: String,
    },

    /// Publishes the next version of an IVR flow (version 1 creates the flow).
    PublishFlow {
        /// The tenant.
        tenant: TenantId,
        /// The flow's name.
        name: String,
        /// The flow document.
        body: String,
        /// Make it the version new contacts enter (the first version always is).
        make_current: bool,
        /// When it was published.
        at_ms: u64,
    },
    /// Points a flow at one of its published versions (rollout or rollback).
    SetCurrentFlow {
        /// The tenant.
        tenant: TenantId,
        /// The flow's name.
        name: String,
        /// The version.
        version: u32,
    },

    /// Adds an agent profile.
    AddAgent(Box<AgentProfile>),
    /// Replaces an agent profile (their location is kept).
    UpdateAgent(Box<AgentProfile>),
    /// Removes a logged-out agent's profile.
    RemoveAgent {
        /// The agent.
        id: AgentId,
    },
    /// An agent logged in at a site: their actor lives there now.
    AgentLogin {
        /// The agent.
        agent: AgentId,
        /// The site (must be active).
        site: SiteId,
        /// When.
        at_ms: u64,
    },
    /// An agent logged out of the site they were logged in at.
    AgentLogout {
        /// The agent.
        agent: AgentId,
        /// The site asking (must be where they are logged in).
        site: SiteId,
        /// When.
        at_ms: u64,
    },

    /// Adds a site, active.
    AddSite {
        /// Its id.
        id: SiteId,
        /// A display name.
        name: String,
        /// The Raft node id of its replica (unique).
        node_id: u64,
        /// When.
        at_ms: u64,
    },
    /// Marks a site active, draining or down (down also logs its agents out).
    SetSiteStatus {
        /// The site.
        site: SiteId,
        /// The new status.
        status: SiteStatus,
        /// When.
        at_ms: u64,
    },
    /// Removes a site no overflow policy, agent or open promise names.
    RemoveSite {
        /// The site.
        id: SiteId,
    },

    /// A site's live summary, replacing its previous one.
    PublishSummary {
        /// The site (known, not down).
        site: SiteId,
        /// When the site measured it.
        at_ms: u64,
        /// One row per (tenant, queue) it serves.
        queues: Vec<QueueSummary>,
    },

    /// Creates a promise owned by the creating site; answers [`Response::Created`].
    CreatePromise(Box<NewPromise>),
    /// The owner starts working on a promise.
    ClaimPromise {
        /// The promise.
        id: PromiseId,
        /// The owner.
        site: SiteId,
        /// When.
        at_ms: u64,
    },
    /// The claimer gives a promise back (attempt failed; try again later).
    ReleasePromise {
        /// The promise.
        id: PromiseId,
        /// The claimer.
        site: SiteId,
        /// When.
        at_ms: u64,
    },
    /// The claimer finished a promise.
    CompletePromise {
        /// The promise.
        id: PromiseId,
        /// The claimer.
        site: SiteId,
        /// How it ended.
        outcome: PromiseOutcome,
        /// When.
        at_ms: u64,
    },
    /// An active site takes over an open promise of a down owner.
    TakeOverPromise {
        /// The promise.
        id: PromiseId,
        /// The survivor, the new owner.
        site: SiteId,
        /// When.
        at_ms: u64,
    },
    /// Forgets promises completed before a time, so the state does not grow forever
    /// (the event log keeps their history). Answers [`Response::Removed`].
    PrunePromises {
        /// Completed strictly before this.
        completed_before_ms: u64,
    },
}

/// What applying a [`Command`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The command was applied in full.
    Applied,
    /// A promise was created with this id.
    Created {
        /// The new promise's id.
        id: PromiseId,
    },
    /// A flow version was published with this number.
    FlowPublished {
        /// The new version.
        version: u32,
    },
    /// This many items were removed.
    Removed {
        /// How many.
        count: u64,
    },
    /// A batch was applied in full; one response per command, in order.
    Batch(Vec<Response>),
    /// The command broke an invariant and nothing of it was applied.
    Refused(Refusal),
}

impl Response {
    /// The refusal, if the command was refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Response::Refused(r) => Some(r),
            _ => None,
        }
    }
}

/// One line per command in Raft's logs: its kind, not its whole body.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Command::Noop => "noop",
            Command::Batch(_) => "batch",
            Command::AddProvider(_) => "add_provider",
            Command::UpdateProvider(_) => "update_provider",
            Command::RemoveProvider { .. } => "remove_provider",
            Command::AddTenant(_) => "add_tenant",
            Command::UpdateTenant { .. } => "update_tenant",
            Command::RemoveTenant { .. } => "remove_tenant",
            Command::AddSkill { .. } => "add_skill",
            Command::RemoveSkill { .. } => "remove_skill",
            Command::AddQueue(_) => "add_queue",
            Command::UpdateQueue(_) => "update_queue",
            Command::RemoveQueue { .. } => "remove_queue",
            Command::AddBusinessHours(_) => "add_business_hours",
            Command::UpdateBusinessHours(_) => "update_business_hours",
            Command::RemoveBusinessHours { .. } => "remove_business_hours",
            Command::PublishFlow { .. } => "publish_flow",
            Command::SetCurrentFlow { .. } => "set_current_flow",
            Command::AddAgent(_) => "add_agent",
            Command::UpdateAgent(_) => "update_agent",
            Command::RemoveAgent { .. } => "remove_agent",
            Command::AgentLogin { .. } => "agent_login",
            Command::AgentLogout { .. } => "agent_logout",
            Command::AddSite { .. } => "add_site",
            Command::SetSiteStatus { .. } => "set_site_status",
            Command::RemoveSite { .. } => "remove_site",
            Command::PublishSummary { .. } => "publish_summary",
            Command::CreatePromise(_) => "create_promise",
            Command::ClaimPromise { .. } => "claim_promise",
            Command::ReleasePromise { .. } => "release_promise",
            Command::CompletePromise { .. } => "complete_promise",
            Command::TakeOverPromise { .. } => "take_over_promise",
            Command::PrunePromises { .. } => "prune_promises",
        })
    }
}
