//! The tenant context: which tenant a request acts for, as whom.
//!
//! Every request reaching a service carries one (from an API key or a signed session
//! token, later); every stored row and event carries its tenant. Code that looks up a
//! tenant's object with another tenant's context must answer "not found".

use serde::{Deserialize, Serialize};

use crate::ids::{ProviderId, TenantId};

/// What a caller may do. Ordered from most to least powerful within a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An outsourcing provider's administrator: every tenant the provider hosts.
    ProviderAdmin,
    /// A tenant's administrator: configuration of that tenant.
    TenantAdmin,
    /// Watches queues and agents, forces agent states, moves contacts.
    Supervisor,
    /// Handles contacts.
    Agent,
    /// Read-only access for site reliability engineers.
    SreReadOnly,
}

/// The tenant a request acts for and the roles it holds there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantContext {
    /// The provider hosting the tenant, when there is one.
    pub provider: Option<ProviderId>,
    /// The tenant every read and write is confined to.
    pub tenant: TenantId,
    /// What the caller may do there.
    pub roles: Vec<Role>,
}

impl TenantContext {
    /// A context for `tenant` with the given roles and no provider.
    pub fn new(tenant: TenantId, roles: impl IntoIterator<Item = Role>) -> Self {
        Self {
            provider: None,
            tenant,
            roles: roles.into_iter().collect(),
        }
    }

    /// Whether the caller holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether an object owned by `owner` is visible to this context. Objects of other
    /// tenants are invisible (callers answer "not found", never "forbidden").
    pub fn can_see(&self, owner: &TenantId) -> bool {
        &self.tenant == owner
    }
}
