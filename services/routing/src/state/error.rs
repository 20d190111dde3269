//! Why a command was refused: one typed reason per broken rule, naming the item and the
//! value, so an operator reading `hotline ops` output knows what to fix.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::config::SiteStatus;
use super::promise::PromiseId;

/// The kind of item a refusal names, so messages read "unknown skill", "queue … already
/// exists" without stringly-typed kinds in the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// An outsourcing provider.
    Provider,
    /// A tenant.
    Tenant,
    /// A site.
    Site,
    /// A Raft node id given to a site.
    Node,
    /// A skill of a tenant.
    Skill,
    /// A queue of a tenant.
    Queue,
    /// A business-hours calendar of a tenant.
    BusinessHours,
    /// An IVR flow of a tenant.
    Flow,
    /// One published version of an IVR flow.
    FlowVersion,
    /// An agent profile.
    Agent,
    /// A durable promise (callback or voicemail).
    Promise,
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ItemKind::Provider => "provider",
            ItemKind::Tenant => "tenant",
            ItemKind::Site => "site",
            ItemKind::Node => "raft node",
            ItemKind::Skill => "skill",
            ItemKind::Queue => "queue",
            ItemKind::BusinessHours => "business hours",
            ItemKind::Flow => "flow",
            ItemKind::FlowVersion => "flow version",
            ItemKind::Agent => "agent",
            ItemKind::Promise => "promise",
        })
    }
}

/// A command (or a membership change) that would break an invariant; nothing of it was
/// applied. Replicated in [`Response::Refused`](super::Response::Refused), so it is data
/// (serde) as well as an error.
///
/// None of these is worth retrying unchanged: the same command against the same state is
/// refused again. A proposer may retry after the state changed (the site came back, the
/// reference was removed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum Refusal {
    /// An item with that id exists already.
    #[error("{kind} {id:?} already exists")]
    Duplicate {
        /// What kind of item.
        kind: ItemKind,
        /// The repeated id (`tenant/queue` for items inside a tenant).
        id: String,
    },
    /// A reference to something that does not exist.
    #[error("{owner} names unknown {kind} {id:?}")]
    Unknown {
        /// The item (or command) holding the reference, e.g. `queue acme/billing`.
        owner: String,
        /// What kind of thing was named.
        kind: ItemKind,
        /// The name that did not resolve.
        id: String,
    },
    /// The item cannot be removed while something still names it.
    #[error("{kind} {id:?} is still referenced by {by}; remove or change that first")]
    StillReferenced {
        /// What kind of item.
        kind: ItemKind,
        /// The item that was to be removed.
        id: String,
        /// The first referrer found, e.g. `queue acme/sales`.
        by: String,
    },
    /// A value out of range or contradicting another.
    #[error("{owner}: {message}")]
    Invalid {
        /// The item.
        owner: String,
        /// What is wrong and what would be right.
        message: String,
    },
    /// The site's status forbids what it asked for (a down site claiming, a draining
    /// site taking a new promise…).
    #[error("site {site:?} is {status} and may not {action}")]
    SiteUnavailable {
        /// The site.
        site: String,
        /// Its status when the command was applied.
        status: SiteStatus,
        /// What it tried to do.
        action: String,
    },
    /// Only the promise's owner site may claim it.
    #[error("promise {promise} is owned by site {owner:?}, not {site:?}")]
    NotOwner {
        /// The promise.
        promise: PromiseId,
        /// The site that asked.
        site: String,
        /// The owner.
        owner: String,
    },
    /// The promise is not in a state that allows the action (claiming a claimed promise,
    /// completing a pending one, completing another site's claim…).
    #[error("promise {promise} is {state}, so site {site:?} may not {action} it")]
    PromiseState {
        /// The promise.
        promise: PromiseId,
        /// Its state in words (`pending`, `claimed by north`).
        state: String,
        /// The site that asked.
        site: String,
        /// What it tried to do.
        action: String,
    },
    /// A promise is completed once; a second completion (or any change after it) is refused.
    #[error(
        "promise {promise} was already completed by site {by:?} at {at_ms} ms; it cannot change again"
    )]
    AlreadyCompleted {
        /// The promise.
        promise: PromiseId,
        /// The site that completed it.
        by: String,
        /// When.
        at_ms: u64,
    },
    /// Only a down site's promises may be taken over.
    #[error(
        "promise {promise} is owned by site {owner:?}, which is {status}; only a down site's promises may be taken over"
    )]
    OwnerNotDown {
        /// The promise.
        promise: PromiseId,
        /// Its owner.
        owner: String,
        /// The owner's status.
        status: SiteStatus,
    },
    /// A summary older than the one already applied for that site (a late retry).
    #[error(
        "summary from site {site:?} at {at_ms} ms is older than the one applied at {previous_ms} ms"
    )]
    StaleSummary {
        /// The site.
        site: String,
        /// The refused summary's time.
        at_ms: u64,
        /// The applied summary's time.
        previous_ms: u64,
    },
    /// An agent's actor lives at one site; the other site must log them out first.
    #[error("agent {agent:?} is logged in at site {site:?}; log them out there first")]
    AgentLoggedInElsewhere {
        /// The agent.
        agent: String,
        /// Where they are logged in.
        site: String,
    },
    /// A logout from a site where the agent is not logged in (a late or misdirected one).
    #[error("agent {agent:?} is not logged in at site {site:?}")]
    AgentNotLoggedIn {
        /// The agent.
        agent: String,
        /// The site that asked.
        site: String,
    },
    /// One command of a [`Command::Batch`](super::Command::Batch) was refused, so none was applied.
    #[error("command {position} of the batch ({command}) was refused: {refusal}")]
    InBatch {
        /// Its position in the batch, from 0.
        position: usize,
        /// Its kind.
        command: String,
        /// Why.
        refusal: Box<Refusal>,
    },
    /// A membership change to no voters at all.
    #[error("the proposed voter set is empty; a routing group needs at least one voter")]
    NoVoters,
    /// Two voters: losing either loses the majority, so a two-site install needs a witness.
    #[error(
        "two voters {voters:?} cannot lose either one and keep a majority: add a witness voter in a third place (three voters)"
    )]
    TwoVotersNeedWitness {
        /// The proposed voters.
        voters: Vec<u64>,
    },
    /// Too few voters reachable to commit the change, or to keep working after it.
    #[error(
        "{which} voters {voters:?}: only {reachable} reachable (not down), a majority needs {needed}; bring voters back or follow the quorum-loss runbook"
    )]
    NoMajority {
        /// `current` or `proposed`.
        which: String,
        /// That voter set.
        voters: Vec<u64>,
        /// How many of them are not down.
        reachable: usize,
        /// How many a majority is.
        needed: usize,
    },
}
