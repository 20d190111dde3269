//! The routing state machine: pure, deterministic, validated.
//!
//! This is the contract the storage and the network build on: a [`RoutingState`] that
//! serializes whole (it is the snapshot), a [`Command`] that a proposer stamps with
//! everything `apply` needs (time included, so replicas agree), and a [`Response`] that
//! says what was applied or, as a typed [`Refusal`], why nothing was.
//!
//! # Layout
//!
//! - [`config`]: providers, tenants, skills, queues, business hours, IVR flows, agent
//!   profiles and locations, sites — shaped like the ACD's site configuration.
//! - [`summary`]: the live figures each site publishes a few times a second.
//! - [`promise`]: durable callbacks and voicemails, and the rules that keep each one
//!   done exactly once.
//! - [`command`]: [`Command`] and [`Response`].
//! - [`error`]: [`Refusal`], one variant per broken rule.
//! - `apply`: the validation and mutation of each command.
//! - [`overflow`]: which site a waiting contact should overflow to.
//! - [`membership`]: the quorum check `hotline ops` runs before changing voters.
//!
//! # All or nothing
//!
//! Every single command is validated in full against the current state before anything
//! is mutated, so the frequent ones (summaries, promise steps, logins) cost no copy.
//! A [`Command::Batch`] is applied to a clone that replaces the state only if every
//! command of it was applied; batches are admin operations, so the copy is affordable.
//! Either way a refused command leaves the state exactly as it was (`applied`
//! included: it is the index of the last command that was applied, not refused).
//!
//! # Determinism
//!
//! `apply` reads no clock and no randomness, iterates only ordered maps, and derives
//! promise ids from the log index, so every replica applying the same log holds the
//! same state, byte for byte in its snapshot.

pub mod command;
pub mod config;
pub mod error;
pub mod membership;
pub mod overflow;
pub mod promise;
pub mod summary;

mod apply;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use hotline_core::ids::{AgentId, ProviderId, QueueId, SiteId, TenantId};
use serde::{Deserialize, Serialize};

pub use command::{Command, Response};
pub use config::{
    AgentLocation, AgentProfile, BusinessHours, ExpandStep, Flow, FlowVersion, OpenInterval,
    OverflowPolicy, OverflowTarget, Provider, Queue, QueueAction, Serves, Site, SiteStatus,
    Strategy, Tenant, TenantSpec, Weekday,
};
pub use error::{ItemKind, Refusal};
pub use membership::check_membership_change;
pub use overflow::{OverflowCandidate, OverflowChoice, OverflowSkip};
pub use promise::{
    Handover, NewPromise, Promise, PromiseId, PromiseKind, PromiseOutcome, PromiseState,
};
pub use summary::{QueueSummary, SiteSummary, SkillReady};

/// Everything the routing group agrees on.
///
/// Fields other than `applied` are private: every change goes through
/// [`apply`](Self::apply), which keeps the references consistent; reads go through the
/// query methods.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingState {
    /// Index of the last command applied (0 before the first); a refused command does
    /// not move it.
    pub applied: u64,
    /// Outsourcing providers.
    providers: BTreeMap<ProviderId, Provider>,
    /// Tenants with their skills, queues, hours and flows.
    tenants: BTreeMap<TenantId, Tenant>,
    /// Sites and their status.
    sites: BTreeMap<SiteId, Site>,
    /// Agent profiles.
    agents: BTreeMap<AgentId, AgentProfile>,
    /// Where agents are; an agent who never logged in has no entry.
    locations: BTreeMap<AgentId, AgentLocation>,
    /// Each site's last summary; a down site has none.
    summaries: BTreeMap<SiteId, SiteSummary>,
    /// Durable promises, open and completed (until pruned).
    promises: BTreeMap<PromiseId, Promise>,
}

impl RoutingState {
    /// Applies the command committed at log `index`, all of it or none of it.
    pub fn apply(&mut self, index: u64, command: &Command) -> Response {
        let mut slot = 0;
        let result = match command {
            Command::Batch(commands) => {
                let mut work = self.clone();
                match work.apply_sequence(index, &mut slot, commands) {
                    Ok(responses) => {
                        *self = work;
                        Ok(Response::Batch(responses))
                    }
                    Err(refusal) => Err(refusal),
                }
            }
            other => self.apply_one(index, &mut slot, other),
        };
        match result {
            Ok(response) => {
                self.applied = index;
                response
            }
            Err(refusal) => Response::Refused(refusal),
        }
    }

    /// Applies `commands` in order to `self`, stopping at the first refusal. `self` is
    /// then partly changed, so callers run it on a copy they can throw away.
    fn apply_sequence(
        &mut self,
        index: u64,
        slot: &mut u32,
        commands: &[Command],
    ) -> Result<Vec<Response>, Refusal> {
        let mut responses = Vec::with_capacity(commands.len());
        for (position, command) in commands.iter().enumerate() {
            let result = match command {
                Command::Batch(inner) => {
                    self.apply_sequence(index, slot, inner).map(Response::Batch)
                }
                other => self.apply_one(index, slot, other),
            };
            match result {
                Ok(r) => responses.push(r),
                Err(refusal) => {
                    return Err(Refusal::InBatch {
                        position,
                        command: command.to_string(),
                        refusal: Box::new(refusal),
                    });
                }
            }
        }
        Ok(responses)
    }

    // === queries ===

    /// A provider.
    pub fn provider(&self, id: &ProviderId) -> Option<&Provider> {
        self.providers.get(id)
    }

    /// Every provider, by id.
    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }

    /// A tenant with everything configured inside it.
    pub fn tenant(&self, id: &TenantId) -> Option<&Tenant> {
        self.tenants.get(id)
    }

    /// Every tenant, by id.
    pub fn tenants(&self) -> impl Iterator<Item = &Tenant> {
        self.tenants.values()
    }

    /// One queue of a tenant.
    pub fn queue(&self, tenant: &TenantId, queue: &QueueId) -> Option<&Queue> {
        self.tenants.get(tenant)?.queues.get(queue)
    }

    /// The version of a tenant's IVR flow that new contacts enter.
    pub fn current_flow(&self, tenant: &TenantId, name: &str) -> Option<&FlowVersion> {
        Some(self.tenants.get(tenant)?.flows.get(name)?.current())
    }

    /// A site.
    pub fn site(&self, id: &SiteId) -> Option<&Site> {
        self.sites.get(id)
    }

    /// Every site, by id.
    pub fn sites(&self) -> impl Iterator<Item = &Site> {
        self.sites.values()
    }

    /// The site whose routing replica is Raft node `node_id`.
    pub fn site_by_node(&self, node_id: u64) -> Option<&Site> {
        self.sites.values().find(|s| s.node_id == node_id)
    }

    /// An agent's profile.
    pub fn agent(&self, id: &AgentId) -> Option<&AgentProfile> {
        self.agents.get(id)
    }

    /// Every agent profile, by id.
    pub fn agents(&self) -> impl Iterator<Item = &AgentProfile> {
        self.agents.values()
    }

    /// Where an agent is: `None` if unknown or never logged in.
    pub fn agent_location(&self, id: &AgentId) -> Option<&AgentLocation> {
        self.locations.get(id)
    }

    /// The agents logged in at `site`, by id, so a restarted site knows whom it hosts.
    pub fn agents_at<'a>(&'a self, site: &'a SiteId) -> impl Iterator<Item = &'a AgentId> + 'a {
        self.locations.iter().filter_map(move |(a, l)| match l {
            AgentLocation::LoggedIn { site: s, .. } if s == site => Some(a),
            _ => None,
        })
    }

    /// A site's last summary (none if it never published or is down).
    pub fn summary(&self, site: &SiteId) -> Option<&SiteSummary> {
        self.summaries.get(site)
    }

    /// A promise.
    pub fn promise(&self, id: &PromiseId) -> Option<&Promise> {
        self.promises.get(id)
    }

    /// Every promise, by id (creation order).
    pub fn promises(&self) -> impl Iterator<Item = &Promise> {
        self.promises.values()
    }

    /// The open promises `site` owns: its work list after a restart.
    pub fn open_promises_of<'a>(
        &'a self,
        site: &'a SiteId,
    ) -> impl Iterator<Item = &'a Promise> + 'a {
        self.promises
            .values()
            .filter(move |p| &p.owner == site && p.state.is_open())
    }

    /// The open promises of down sites that `survivor` may take over, by id: empty
    /// unless `survivor` is active. Each needs a [`Command::TakeOverPromise`]; if two
    /// survivors race, the first committed wins and the second is refused.
    pub fn promises_to_take_over(&self, survivor: &SiteId) -> Vec<&Promise> {
        if self.sites.get(survivor).map(|s| s.status) != Some(SiteStatus::Active) {
            return vec![];
        }
        self.promises
            .values()
            .filter(|p| {
                p.state.is_open()
                    && &p.owner != survivor
                    && self.sites.get(&p.owner).map(|s| s.status) == Some(SiteStatus::Down)
            })
            .collect()
    }
}
