//! What a flow may name outside itself: each tenant's queues (with their channel) and
//! skills. Built from the site's ACD configuration, so a flow is checked against the
//! queues and skills that will actually take its contacts.

use std::collections::{BTreeMap, BTreeSet};

use hotline_acd::config::SiteConfig;
use hotline_core::channel::Channel;
use hotline_core::ids::{QueueId, SkillId, TenantId};

/// The queues and skills of every tenant a flow may belong to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    tenants: BTreeMap<TenantId, TenantCatalog>,
}

/// One tenant's queues and skills.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantCatalog {
    /// Queue → the channel it takes.
    pub queues: BTreeMap<QueueId, Channel>,
    /// The tenant's skill catalogue.
    pub skills: BTreeSet<SkillId>,
}

impl TenantCatalog {
    /// Adds a queue taking `channel`.
    pub fn with_queue(mut self, queue: QueueId, channel: Channel) -> Self {
        self.queues.insert(queue, channel);
        self
    }

    /// Adds a skill.
    pub fn with_skill(mut self, skill: SkillId) -> Self {
        self.skills.insert(skill);
        self
    }
}

impl Catalog {
    /// The tenants, queues and skills of a site's ACD configuration.
    pub fn from_site(config: &SiteConfig) -> Self {
        let mut tenants: BTreeMap<TenantId, TenantCatalog> = BTreeMap::new();
        for t in &config.tenants {
            tenants
                .entry(t.id.clone())
                .or_default()
                .skills
                .extend(t.skills.iter().cloned());
        }
        for q in &config.queues {
            tenants
                .entry(q.tenant.clone())
                .or_default()
                .queues
                .insert(q.id.clone(), q.channel);
        }
        Catalog { tenants }
    }

    /// Adds (or replaces) one tenant.
    pub fn with_tenant(mut self, tenant: TenantId, catalog: TenantCatalog) -> Self {
        self.tenants.insert(tenant, catalog);
        self
    }

    /// One tenant's queues and skills.
    pub fn tenant(&self, tenant: &TenantId) -> Option<&TenantCatalog> {
        self.tenants.get(tenant)
    }

    /// The tenants it knows.
    pub fn tenants(&self) -> impl Iterator<Item = &TenantId> {
        self.tenants.keys()
    }
}
