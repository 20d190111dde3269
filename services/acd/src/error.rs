//! What can go wrong in the ACD, each naming the item and the value.

use hotline_core::agent::IllegalAgentTransition;
use hotline_core::channel::Channel;
use hotline_core::contact::IllegalContactTransition;
use hotline_core::ids::{AgentId, ContactId, QueueId, TenantId};

use crate::config::ConfigError;

/// An ACD error. Nothing changes when one is returned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AcdError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No such tenant at this site.
    #[error("unknown tenant {0}")]
    UnknownTenant(TenantId),
    /// No such queue for the tenant.
    #[error("tenant {tenant} has no queue {queue}")]
    UnknownQueue {
        /// The tenant.
        tenant: TenantId,
        /// The queue named.
        queue: QueueId,
    },
    /// No such agent profile at this site.
    #[error("unknown agent {0}")]
    UnknownAgent(AgentId),
    /// No such contact here (never was, or already ended).
    #[error("unknown contact {0} (it may have ended already)")]
    UnknownContact(ContactId),
    /// A contact id is already in use.
    #[error("contact {0} already exists")]
    DuplicateContact(ContactId),
    /// The contact's channel does not match the queue's.
    #[error("queue {queue} takes {expected} contacts, not {got}")]
    WrongChannel {
        /// The queue.
        queue: QueueId,
        /// Its channel.
        expected: Channel,
        /// The contact's channel.
        got: Channel,
    },
    /// An illegal contact transition.
    #[error("contact {contact}: {source}")]
    Contact {
        /// The contact.
        contact: ContactId,
        /// What was illegal.
        source: IllegalContactTransition,
    },
    /// An illegal agent transition.
    #[error("agent {agent}: {source}")]
    Agent {
        /// The agent.
        agent: AgentId,
        /// What was illegal.
        source: IllegalAgentTransition,
    },
    /// An answer to an offer that is no longer open (expired, rescinded, or never made).
    #[error("contact {contact} is not offered to agent {agent} (the offer may have expired)")]
    NotOffered {
        /// The contact.
        contact: ContactId,
        /// The agent who answered.
        agent: AgentId,
    },
    /// A cross-site hold asked of a contact that is not simply waiting in line (offered,
    /// a callback, already held), or its end asked of a contact that is not held.
    #[error("contact {contact} cannot be held for a transfer: it is {state}")]
    NotHoldable {
        /// The contact.
        contact: ContactId,
        /// What it is instead.
        state: &'static str,
    },
    /// An agent acting on a contact it does not hold.
    #[error("contact {contact} is not held by this agent")]
    NotYours {
        /// The contact.
        contact: ContactId,
    },
    /// The agent is already logged in at this site.
    #[error("agent {0} is already logged in")]
    AlreadyLoggedIn(AgentId),
    /// The agent is not logged in.
    #[error("agent {0} is not logged in")]
    NotLoggedIn(AgentId),
    /// The ACD is stopping or an actor is restarting; try again.
    #[error("the ACD is unavailable ({0}); try again")]
    Unavailable(String),
}

impl AcdError {
    pub(crate) fn contact(contact: ContactId, source: IllegalContactTransition) -> Self {
        AcdError::Contact { contact, source }
    }

    /// Whether the same request may succeed if retried.
    pub fn is_retryable(&self) -> bool {
        matches!(self, AcdError::Unavailable(_))
    }
}
