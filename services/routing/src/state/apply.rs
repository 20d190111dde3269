//! Validation and mutation of each command.
//!
//! Every handler checks everything first and mutates only once nothing can fail, so a
//! refused single command leaves the state untouched without a copy.

use std::collections::{BTreeMap, BTreeSet};

use hotline_core::channel::Channel;
use hotline_core::ids::{AgentId, ProviderId, QueueId, SiteId, SkillId, TenantId};

use super::RoutingState;
use super::command::{Command, Response};
use super::config::{
    AgentLocation, AgentProfile, BusinessHours, Flow, FlowVersion, MAX_FLOW_BODY_LEN,
    OverflowPolicy, Provider, Queue, QueueAction, Site, SiteStatus, Tenant, TenantSpec, check_date,
    check_name, check_text, check_tz, duplicate, invalid, referenced, unknown,
};
use super::error::{ItemKind, Refusal};
use super::promise::{Handover, NewPromise, Promise, PromiseId, PromiseOutcome, PromiseState};
use super::summary::{QueueSummary, SiteSummary};

type Applied = Result<Response, Refusal>;

impl RoutingState {
    /// Applies one command that is not a batch.
    pub(super) fn apply_one(&mut self, index: u64, slot: &mut u32, command: &Command) -> Applied {
        match command {
            Command::Noop => Ok(Response::Applied),
            Command::Batch(inner) => self.apply_sequence(index, slot, inner).map(Response::Batch),
            Command::AddProvider(p) => self.add_provider(p),
            Command::UpdateProvider(p) => self.update_provider(p),
            Command::RemoveProvider { id } => self.remove_provider(id),
            Command::AddTenant(spec) => self.add_tenant(spec),
            Command::UpdateTenant { id, name, provider } => {
                self.update_tenant(id, name, provider.as_ref())
            }
            Command::RemoveTenant { id } => self.remove_tenant(id),
            Command::AddSkill { tenant, skill } => self.add_skill(tenant, skill),
            Command::RemoveSkill { tenant, skill } => self.remove_skill(tenant, skill),
            Command::AddQueue(q) => self.put_queue(q, true),
            Command::UpdateQueue(q) => self.put_queue(q, false),
            Command::RemoveQueue { tenant, queue } => self.remove_queue(tenant, queue),
            Command::AddBusinessHours(h) => self.put_hours(h, true),
            Command::UpdateBusinessHours(h) => self.put_hours(h, false),
            Command::RemoveBusinessHours { tenant, id } => self.remove_hours(tenant, id),
            Command::PublishFlow {
                tenant,
                name,
                body,
                make_current,
                at_ms,
            } => self.publish_flow(tenant, name, body, *make_current, *at_ms),
            Command::SetCurrentFlow {
                tenant,
                name,
                version,
            } => self.set_current_flow(tenant, name, *version),
            Command::AddAgent(a) => self.put_agent(a, true),
            Command::UpdateAgent(a) => self.put_agent(a, false),
            Command::RemoveAgent { id } => self.remove_agent(id),
            Command::AgentLogin { agent, site, at_ms } => self.login(agent, site, *at_ms),
            Command::AgentLogout { agent, site, at_ms } => self.logout(agent, site, *at_ms),
            Command::AddSite {
                id,
                name,
                node_id,
                at_ms,
            } => self.add_site(id, name, *node_id, *at_ms),
            Command::SetSiteStatus {
                site,
                status,
                at_ms,
            } => self.set_site_status(site, *status, *at_ms),
            Command::RemoveSite { id } => self.remove_site(id),
            Command::PublishSummary {
                site,
                at_ms,
                queues,
            } => self.publish_summary(site, *at_ms, queues),
            Command::CreatePromise(p) => self.create_promise(index, slot, p),
            Command::ClaimPromise { id, site, at_ms } => self.claim(id, site, *at_ms),
            Command::ReleasePromise { id, site, at_ms } => self.release(id, site, *at_ms),
            Command::CompletePromise {
                id,
                site,
                outcome,
                at_ms,
            } => self.complete(id, site, *outcome, *at_ms),
            Command::TakeOverPromise { id, site, at_ms } => self.take_over(id, site, *at_ms),
            Command::PrunePromises {
                completed_before_ms,
            } => Ok(self.prune(*completed_before_ms)),
        }
    }

    // === providers and tenants ===

    fn add_provider(&mut self, p: &Provider) -> Applied {
        check_text(&format!("provider {}", p.id), "name", &p.name)?;
        if self.providers.contains_key(&p.id) {
            return Err(duplicate(ItemKind::Provider, &p.id));
        }
        self.providers.insert(p.id.clone(), p.clone());
        Ok(Response::Applied)
    }

    fn update_provider(&mut self, p: &Provider) -> Applied {
        check_text(&format!("provider {}", p.id), "name", &p.name)?;
        let Some(slot) = self.providers.get_mut(&p.id) else {
            return Err(unknown("update_provider", ItemKind::Provider, &p.id));
        };
        *slot = p.clone();
        Ok(Response::Applied)
    }

    fn remove_provider(&mut self, id: &ProviderId) -> Applied {
        if !self.providers.contains_key(id) {
            return Err(unknown("remove_provider", ItemKind::Provider, id));
        }
        if let Some(t) = self
            .tenants
            .values()
            .find(|t| t.provider.as_ref() == Some(id))
        {
            return Err(referenced(
                ItemKind::Provider,
                id,
                format!("tenant {}", t.id),
            ));
        }
        if let Some(a) = self
            .agents
            .values()
            .find(|a| a.provider.as_ref() == Some(id))
        {
            return Err(referenced(
                ItemKind::Provider,
                id,
                format!("agent {}", a.id),
            ));
        }
        self.providers.remove(id);
        Ok(Response::Applied)
    }

    fn check_provider(&self, owner: &str, provider: Option<&ProviderId>) -> Result<(), Refusal> {
        match provider {
            Some(p) if !self.providers.contains_key(p) => {
                Err(unknown(owner, ItemKind::Provider, p))
            }
            _ => Ok(()),
        }
    }

    fn add_tenant(&mut self, spec: &TenantSpec) -> Applied {
        let owner = format!("tenant {}", spec.id);
        check_text(&owner, "name", &spec.name)?;
        self.check_provider(&owner, spec.provider.as_ref())?;
        if self.tenants.contains_key(&spec.id) {
            return Err(duplicate(ItemKind::Tenant, &spec.id));
        }
        let mut skills = BTreeSet::new();
        for s in &spec.skills {
            if !skills.insert(s.clone()) {
                return Err(duplicate(ItemKind::Skill, format!("{}/{s}", spec.id)));
            }
        }
        self.tenants.insert(
            spec.id.clone(),
            Tenant {
                id: spec.id.clone(),
                name: spec.name.clone(),
                provider: spec.provider.clone(),
                skills,
                queues: BTreeMap::new(),
                business_hours: BTreeMap::new(),
                flows: BTreeMap::new(),
            },
        );
        Ok(Response::Applied)
    }

    fn update_tenant(
        &mut self,
        id: &TenantId,
        name: &str,
        provider: Option<&ProviderId>,
    ) -> Applied {
        let owner = format!("tenant {id}");
        check_text(&owner, "name", name)?;
        self.check_provider(&owner, provider)?;
        let Some(t) = self.tenants.get_mut(id) else {
            return Err(unknown("update_tenant", ItemKind::Tenant, id));
        };
        t.name = name.to_owned();
        t.provider = provider.cloned();
        Ok(Response::Applied)
    }

    fn remove_tenant(&mut self, id: &TenantId) -> Applied {
        if !self.tenants.contains_key(id) {
            return Err(unknown("remove_tenant", ItemKind::Tenant, id));
        }
        if let Some(a) = self
            .agents
            .values()
            .find(|a| a.serves.iter().any(|s| &s.tenant == id))
        {
            return Err(referenced(ItemKind::Tenant, id, format!("agent {}", a.id)));
        }
        if let Some(p) = self
            .promises
            .values()
            .find(|p| &p.tenant == id && p.state.is_open())
        {
            return Err(referenced(
                ItemKind::Tenant,
                id,
                format!("open promise {}", p.id),
            ));
        }
        self.tenants.remove(id);
        for s in self.summaries.values_mut() {
            s.queues.remove(id);
        }
        Ok(Response::Applied)
    }

    fn tenant_or_refuse(&self, owner: &str, id: &TenantId) -> Result<&Tenant, Refusal> {
        self.tenants
            .get(id)
            .ok_or_else(|| unknown(owner, ItemKind::Tenant, id))
    }

    fn add_skill(&mut self, tenant: &TenantId, skill: &SkillId) -> Applied {
        let t = self.tenant_or_refuse("add_skill", tenant)?;
        if t.skills.contains(skill) {
            return Err(duplicate(ItemKind::Skill, format!("{tenant}/{skill}")));
        }
        self.tenant_mut(tenant).skills.insert(skill.clone());
        Ok(Response::Applied)
    }

    fn remove_skill(&mut self, tenant: &TenantId, skill: &SkillId) -> Applied {
        let t = self.tenant_or_refuse("remove_skill", tenant)?;
        let id = format!("{tenant}/{skill}");
        if !t.skills.contains(skill) {
            return Err(unknown("remove_skill", ItemKind::Skill, id));
        }
        if let Some(q) = t
            .queues
            .values()
            .find(|q| q.skill_references().any(|s| s == skill))
        {
            return Err(referenced(
                ItemKind::Skill,
                id,
                format!("queue {tenant}/{}", q.id),
            ));
        }
        if let Some(a) = self.agents.values().find(|a| {
            a.serves
                .iter()
                .any(|s| &s.tenant == tenant && s.skills.iter().any(|k| &k.skill == skill))
        }) {
            return Err(referenced(ItemKind::Skill, id, format!("agent {}", a.id)));
        }
        self.tenant_mut(tenant).skills.remove(skill);
        Ok(Response::Applied)
    }

    /// The tenant, known to exist because the caller checked it.
    fn tenant_mut(&mut self, id: &TenantId) -> &mut Tenant {
        self.tenants
            .get_mut(id)
            .expect("the handler checked that the tenant exists")
    }

    // === queues ===

    fn put_queue(&mut self, q: &Queue, add: bool) -> Applied {
        let command = if add { "add_queue" } else { "update_queue" };
        let t = self.tenant_or_refuse(command, &q.tenant)?;
        let key = format!("{}/{}", q.tenant, q.id);
        match (add, t.queues.contains_key(&q.id)) {
            (true, true) => return Err(duplicate(ItemKind::Queue, key)),
            (false, false) => return Err(unknown(command, ItemKind::Queue, key)),
            _ => {}
        }
        self.check_queue(t, q)?;
        if !add {
            // Queues that overflow or widen into this one must keep the same channel.
            if let Some(other) = t.queues.values().find(|o| {
                o.id != q.id && o.channel != q.channel && o.queue_references().any(|r| r == &q.id)
            }) {
                return Err(invalid(
                    &format!("queue {key}"),
                    format!(
                        "queue {}/{} sends contacts of channel {} here, so the channel cannot become {}",
                        q.tenant, other.id, other.channel, q.channel
                    ),
                ));
            }
        }
        self.tenant_mut(&q.tenant)
            .queues
            .insert(q.id.clone(), q.clone());
        Ok(Response::Applied)
    }

    /// The ACD's queue rules, plus business hours and the overflow policy.
    fn check_queue(&self, t: &Tenant, q: &Queue) -> Result<(), Refusal> {
        let owner = format!("queue {}/{}", q.tenant, q.id);
        let owner = owner.as_str();
        check_text(owner, "name", &q.name)?;
        let mut seen = BTreeSet::new();
        for r in &q.skills {
            if !t.skills.contains(&r.skill) {
                return Err(unknown(owner, ItemKind::Skill, &r.skill));
            }
            if !seen.insert(&r.skill) {
                return Err(invalid(
                    owner,
                    format!("skill {} is required twice", r.skill),
                ));
            }
        }
        if q.sl_target_percent > 100 {
            return Err(invalid(
                owner,
                format!(
                    "sl_target_percent {} must be between 0 and 100",
                    q.sl_target_percent
                ),
            ));
        }
        if q.max_size == Some(0) {
            return Err(invalid(
                owner,
                "max_size 0 would refuse every contact; omit it for no limit".into(),
            ));
        }
        let mut last = 0;
        for (i, step) in q.expand.iter().enumerate() {
            let at = format!("{owner} expand step {}", i + 1);
            if step.after_secs <= last {
                return Err(invalid(
                    &at,
                    format!(
                        "after_secs {} must be greater than the previous step's {last}",
                        step.after_secs
                    ),
                ));
            }
            last = step.after_secs;
            if step.relax.is_none()
                && step.drop.is_none()
                && step.add.is_none()
                && step.widen_to.is_none()
            {
                return Err(invalid(
                    &at,
                    "says nothing: give relax, drop, add or widen_to".into(),
                ));
            }
            for s in [step.relax.as_ref().map(|r| &r.skill), step.drop.as_ref()]
                .into_iter()
                .flatten()
            {
                if !q.skills.iter().any(|r| &r.skill == s) {
                    return Err(invalid(
                        &at,
                        format!(
                            "skill {s} is not one of the queue's skills, so it cannot be relaxed or dropped"
                        ),
                    ));
                }
            }
            if let Some(add) = &step.add
                && !t.skills.contains(&add.skill)
            {
                return Err(unknown(&at, ItemKind::Skill, &add.skill));
            }
        }
        if matches!(q.when_full, QueueAction::Stay | QueueAction::Callback) {
            return Err(invalid(
                owner,
                "when_full must be overflow, voicemail or disconnect: a full queue cannot keep the contact".into(),
            ));
        }
        if q.on_max_wait == QueueAction::Stay {
            return Err(invalid(
                owner,
                "on_max_wait cannot be stay; omit max_wait_secs for no limit".into(),
            ));
        }
        if q.when_no_agents == QueueAction::Callback {
            return Err(invalid(
                owner,
                "when_no_agents cannot be callback: nobody could call back".into(),
            ));
        }
        for target in q.queue_references() {
            if target == &q.id {
                return Err(invalid(
                    owner,
                    format!("queue {target} cannot overflow or widen to itself"),
                ));
            }
            let Some(other) = t.queues.get(target) else {
                return Err(unknown(
                    owner,
                    ItemKind::Queue,
                    format!("{}/{target}", q.tenant),
                ));
            };
            if other.channel != q.channel {
                return Err(invalid(
                    owner,
                    format!(
                        "queue {target} takes {} but this queue takes {}",
                        other.channel, q.channel
                    ),
                ));
            }
        }
        if let Some(h) = &q.business_hours
            && !t.business_hours.contains_key(h)
        {
            return Err(unknown(
                owner,
                ItemKind::BusinessHours,
                format!("{}/{h}", q.tenant),
            ));
        }
        if let Some(policy) = &q.overflow {
            self.check_overflow(owner, policy)?;
        }
        Ok(())
    }

    fn check_overflow(&self, owner: &str, policy: &OverflowPolicy) -> Result<(), Refusal> {
        let owner = format!("{owner} overflow");
        if policy.after_wait_secs.is_none() && policy.expected_wait_above_secs.is_none() {
            return Err(invalid(
                &owner,
                "has no trigger: give after_wait_secs, expected_wait_above_secs or both".into(),
            ));
        }
        if policy.targets.is_empty() {
            return Err(invalid(&owner, "has no target site".into()));
        }
        let mut seen = BTreeSet::new();
        for target in &policy.targets {
            if !self.sites.contains_key(&target.site) {
                return Err(unknown(&owner, ItemKind::Site, &target.site));
            }
            if !seen.insert(&target.site) {
                return Err(invalid(
                    &owner,
                    format!("site {} is a target twice", target.site),
                ));
            }
        }
        Ok(())
    }

    fn remove_queue(&mut self, tenant: &TenantId, queue: &QueueId) -> Applied {
        let t = self.tenant_or_refuse("remove_queue", tenant)?;
        let key = format!("{tenant}/{queue}");
        if !t.queues.contains_key(queue) {
            return Err(unknown("remove_queue", ItemKind::Queue, key));
        }
        if let Some(other) = t
            .queues
            .values()
            .find(|o| &o.id != queue && o.queue_references().any(|r| r == queue))
        {
            return Err(referenced(
                ItemKind::Queue,
                key,
                format!("queue {tenant}/{}", other.id),
            ));
        }
        if let Some(p) = self
            .promises
            .values()
            .find(|p| &p.tenant == tenant && &p.queue == queue && p.state.is_open())
        {
            return Err(referenced(
                ItemKind::Queue,
                key,
                format!("open promise {}", p.id),
            ));
        }
        self.tenant_mut(tenant).queues.remove(queue);
        for s in self.summaries.values_mut() {
            if let Some(rows) = s.queues.get_mut(tenant) {
                rows.remove(queue);
                if rows.is_empty() {
                    s.queues.remove(tenant);
                }
            }
        }
        Ok(Response::Applied)
    }

    // === business hours and flows ===

    fn put_hours(&mut self, h: &BusinessHours, add: bool) -> Applied {
        let command = if add {
            "add_business_hours"
        } else {
            "update_business_hours"
        };
        let t = self.tenant_or_refuse(command, &h.tenant)?;
        let owner = format!("business hours {}/{}", h.tenant, h.id);
        check_name(&owner, ItemKind::BusinessHours, &h.id)?;
        let key = format!("{}/{}", h.tenant, h.id);
        match (add, t.business_hours.contains_key(&h.id)) {
            (true, true) => return Err(duplicate(ItemKind::BusinessHours, key)),
            (false, false) => return Err(unknown(command, ItemKind::BusinessHours, key)),
            _ => {}
        }
        check_tz(&owner, &h.tz)?;
        let mut by_day: BTreeMap<_, Vec<(u16, u16)>> = BTreeMap::new();
        for i in &h.open {
            if i.opens_min >= i.closes_min || i.closes_min > 1440 {
                return Err(invalid(
                    &owner,
                    format!(
                        "{:?} interval {}-{} must open before it closes, within 0-1440 minutes",
                        i.day, i.opens_min, i.closes_min
                    ),
                ));
            }
            by_day
                .entry(i.day)
                .or_default()
                .push((i.opens_min, i.closes_min));
        }
        for (day, intervals) in &mut by_day {
            intervals.sort_unstable();
            if let Some(w) = intervals.windows(2).find(|w| w[1].0 < w[0].1) {
                return Err(invalid(
                    &owner,
                    format!(
                        "{day:?} intervals {}-{} and {}-{} overlap",
                        w[0].0, w[0].1, w[1].0, w[1].1
                    ),
                ));
            }
        }
        let mut holidays = BTreeSet::new();
        for d in &h.holidays {
            check_date(&owner, d)?;
            if !holidays.insert(d) {
                return Err(invalid(&owner, format!("holiday {d} is listed twice")));
            }
        }
        self.tenant_mut(&h.tenant)
            .business_hours
            .insert(h.id.clone(), h.clone());
        Ok(Response::Applied)
    }

    fn remove_hours(&mut self, tenant: &TenantId, id: &str) -> Applied {
        let t = self.tenant_or_refuse("remove_business_hours", tenant)?;
        let key = format!("{tenant}/{id}");
        if !t.business_hours.contains_key(id) {
            return Err(unknown(
                "remove_business_hours",
                ItemKind::BusinessHours,
                key,
            ));
        }
        if let Some(q) = t
            .queues
            .values()
            .find(|q| q.business_hours.as_deref() == Some(id))
        {
            return Err(referenced(
                ItemKind::BusinessHours,
                key,
                format!("queue {tenant}/{}", q.id),
            ));
        }
        self.tenant_mut(tenant).business_hours.remove(id);
        Ok(Response::Applied)
    }

    fn publish_flow(
        &mut self,
        tenant: &TenantId,
        name: &str,
        body: &str,
        make_current: bool,
        at_ms: u64,
    ) -> Applied {
        let t = self.tenant_or_refuse("publish_flow", tenant)?;
        let owner = format!("flow {tenant}/{name}");
        check_name(&owner, ItemKind::Flow, name)?;
        if body.is_empty() || body.len() > MAX_FLOW_BODY_LEN {
            return Err(invalid(
                &owner,
                format!(
                    "body is {} bytes; a flow needs 1 to {MAX_FLOW_BODY_LEN}",
                    body.len()
                ),
            ));
        }
        let last = t.flows.get(name).map_or(0, |f| f.versions.len());
        let Some(version) = u32::try_from(last).ok().and_then(|v| v.checked_add(1)) else {
            return Err(invalid(&owner, "has too many versions".into()));
        };
        let flow = self
            .tenant_mut(tenant)
            .flows
            .entry(name.to_owned())
            .or_insert_with(|| Flow {
                versions: vec![],
                current: 1,
            });
        flow.versions.push(FlowVersion {
            version,
            body: body.to_owned(),
            published_at_ms: at_ms,
        });
        if make_current {
            flow.current = version;
        }
        Ok(Response::FlowPublished { version })
    }

    fn set_current_flow(&mut self, tenant: &TenantId, name: &str, version: u32) -> Applied {
        let t = self.tenant_or_refuse("set_current_flow", tenant)?;
        let key = format!("{tenant}/{name}");
        let Some(flow) = t.flows.get(name) else {
            return Err(unknown("set_current_flow", ItemKind::Flow, key));
        };
        if flow.version(version).is_none() {
            return Err(unknown(
                &format!("flow {key}"),
                ItemKind::FlowVersion,
                version,
            ));
        }
        if let Some(f) = self.tenant_mut(tenant).flows.get_mut(name) {
            f.current = version;
        }
        Ok(Response::Applied)
    }

    // === agents ===

    fn put_agent(&mut self, a: &AgentProfile, add: bool) -> Applied {
        let command = if add { "add_agent" } else { "update_agent" };
        match (add, self.agents.contains_key(&a.id)) {
            (true, true) => return Err(duplicate(ItemKind::Agent, &a.id)),
            (false, false) => return Err(unknown(command, ItemKind::Agent, &a.id)),
            _ => {}
        }
        let owner = format!("agent {}", a.id);
        check_text(&owner, "name", &a.name)?;
        self.check_provider(&owner, a.provider.as_ref())?;
        if a.serves.is_empty() {
            return Err(invalid(
                &owner,
                "serves no tenant: give at least one".into(),
            ));
        }
        if Channel::ALL.iter().all(|c| a.capacity.on(*c) == 0) {
            return Err(invalid(&owner, "has no capacity on any channel".into()));
        }
        let mut tenants = BTreeSet::new();
        for s in &a.serves {
            let t = self.tenant_or_refuse(&owner, &s.tenant)?;
            if !tenants.insert(&s.tenant) {
                return Err(invalid(&owner, format!("serves tenant {} twice", s.tenant)));
            }
            let mut skills = BTreeSet::new();
            for k in &s.skills {
                let at = format!("{owner} (tenant {})", s.tenant);
                if !t.skills.contains(&k.skill) {
                    return Err(unknown(&at, ItemKind::Skill, &k.skill));
                }
                if !skills.insert(&k.skill) {
                    return Err(invalid(&at, format!("has skill {} twice", k.skill)));
                }
            }
        }
        self.agents.insert(a.id.clone(), a.clone());
        Ok(Response::Applied)
    }

    fn remove_agent(&mut self, id: &AgentId) -> Applied {
        if !self.agents.contains_key(id) {
            return Err(unknown("remove_agent", ItemKind::Agent, id));
        }
        if let Some(AgentLocation::LoggedIn { site, .. }) = self.locations.get(id) {
            return Err(referenced(
                ItemKind::Agent,
                id,
                format!("a login at site {site}"),
            ));
        }
        self.agents.remove(id);
        self.locations.remove(id);
        Ok(Response::Applied)
    }

    fn login(&mut self, agent: &AgentId, site: &SiteId, at_ms: u64) -> Applied {
        if !self.agents.contains_key(agent) {
            return Err(unknown("agent_login", ItemKind::Agent, agent));
        }
        self.site_with_status(site, "log agents in", &[SiteStatus::Active])?;
        match self.locations.get(agent) {
            Some(AgentLocation::LoggedIn { site: s, .. }) if s == site => {
                return Ok(Response::Applied);
            }
            Some(AgentLocation::LoggedIn { site: s, .. }) => {
                return Err(Refusal::AgentLoggedInElsewhere {
                    agent: agent.to_string(),
                    site: s.to_string(),
                });
            }
            _ => {}
        }
        self.locations.insert(
            agent.clone(),
            AgentLocation::LoggedIn {
                site: site.clone(),
                since_ms: at_ms,
            },
        );
        Ok(Response::Applied)
    }

    fn logout(&mut self, agent: &AgentId, site: &SiteId, at_ms: u64) -> Applied {
        if !self.agents.contains_key(agent) {
            return Err(unknown("agent_logout", ItemKind::Agent, agent));
        }
        match self.locations.get(agent) {
            Some(AgentLocation::LoggedIn { site: s, .. }) if s == site => {}
            _ => {
                return Err(Refusal::AgentNotLoggedIn {
                    agent: agent.to_string(),
                    site: site.to_string(),
                });
            }
        }
        self.locations
            .insert(agent.clone(), AgentLocation::LoggedOut { since_ms: at_ms });
        Ok(Response::Applied)
    }

    // === sites ===

    /// The site, refused if unknown or not in one of `allowed`.
    fn site_with_status(
        &self,
        site: &SiteId,
        action: &str,
        allowed: &[SiteStatus],
    ) -> Result<&Site, Refusal> {
        let Some(s) = self.sites.get(site) else {
            return Err(unknown(action, ItemKind::Site, site));
        };
        if !allowed.contains(&s.status) {
            return Err(Refusal::SiteUnavailable {
                site: site.to_string(),
                status: s.status,
                action: action.to_owned(),
            });
        }
        Ok(s)
    }

    fn add_site(&mut self, id: &SiteId, name: &str, node_id: u64, at_ms: u64) -> Applied {
        check_text(&format!("site {id}"), "name", name)?;
        if self.sites.contains_key(id) {
            return Err(duplicate(ItemKind::Site, id));
        }
        if let Some(other) = self.sites.values().find(|s| s.node_id == node_id) {
            return Err(Refusal::Duplicate {
                kind: ItemKind::Node,
                id: format!("{node_id} (site {})", other.id),
            });
        }
        self.sites.insert(
            id.clone(),
            Site {
                id: id.clone(),
                name: name.to_owned(),
                node_id,
                status: SiteStatus::Active,
                since_ms: at_ms,
            },
        );
        Ok(Response::Applied)
    }

    fn set_site_status(&mut self, site: &SiteId, status: SiteStatus, at_ms: u64) -> Applied {
        let Some(s) = self.sites.get_mut(site) else {
            return Err(unknown("set_site_status", ItemKind::Site, site));
        };
        if s.status == status {
            return Ok(Response::Applied);
        }
        s.status = status;
        s.since_ms = at_ms;
        if status == SiteStatus::Down {
            self.summaries.remove(site);
            for location in self.locations.values_mut() {
                if matches!(location, AgentLocation::LoggedIn { site: s, .. } if s == site) {
                    *location = AgentLocation::LoggedOut { since_ms: at_ms };
                }
            }
        }
        Ok(Response::Applied)
    }

    fn remove_site(&mut self, id: &SiteId) -> Applied {
        if !self.sites.contains_key(id) {
            return Err(unknown("remove_site", ItemKind::Site, id));
        }
        for t in self.tenants.values() {
            if let Some(q) = t.queues.values().find(|q| {
                q.overflow
                    .as_ref()
                    .is_some_and(|p| p.targets.iter().any(|x| &x.site == id))
            }) {
                return Err(referenced(
                    ItemKind::Site,
                    id,
                    format!("the overflow policy of queue {}/{}", t.id, q.id),
                ));
            }
        }
        if let Some(agent) = self.agents_at(id).next() {
            return Err(referenced(
                ItemKind::Site,
                id,
                format!("agent {agent}, logged in there"),
            ));
        }
        if let Some(p) = self.open_promises_of(id).next() {
            return Err(referenced(
                ItemKind::Site,
                id,
                format!("open promise {} (take it over first)", p.id),
            ));
        }
        self.sites.remove(id);
        self.summaries.remove(id);
        Ok(Response::Applied)
    }

    // === summaries ===

    fn publish_summary(&mut self, site: &SiteId, at_ms: u64, rows: &[QueueSummary]) -> Applied {
        self.site_with_status(
            site,
            "publish summaries",
            &[SiteStatus::Active, SiteStatus::Draining],
        )?;
        if let Some(previous) = self.summaries.get(site)
            && previous.at_ms > at_ms
        {
            return Err(Refusal::StaleSummary {
                site: site.to_string(),
                at_ms,
                previous_ms: previous.at_ms,
            });
        }
        let owner = format!("summary of site {site}");
        let mut queues: BTreeMap<TenantId, BTreeMap<QueueId, QueueSummary>> = BTreeMap::new();
        for row in rows {
            let t = self.tenant_or_refuse(&owner, &row.tenant)?;
            let key = format!("{}/{}", row.tenant, row.queue);
            if !t.queues.contains_key(&row.queue) {
                return Err(unknown(&owner, ItemKind::Queue, key));
            }
            let mut skills = BTreeSet::new();
            for s in &row.ready_by_skill {
                if !t.skills.contains(&s.skill) {
                    return Err(unknown(
                        &format!("{owner} row {key}"),
                        ItemKind::Skill,
                        &s.skill,
                    ));
                }
                if !skills.insert(&s.skill) || s.at_least.windows(2).any(|w| w[1] > w[0]) {
                    return Err(invalid(
                        &format!("{owner} row {key}"),
                        format!(
                            "skill {} must appear once with counts that never increase with proficiency, got {:?}",
                            s.skill, s.at_least
                        ),
                    ));
                }
            }
            let by_queue = queues.entry(row.tenant.clone()).or_default();
            if by_queue.insert(row.queue.clone(), row.clone()).is_some() {
                return Err(invalid(&owner, format!("queue {key} has two rows")));
            }
        }
        self.summaries
            .insert(site.clone(), SiteSummary { at_ms, queues });
        Ok(Response::Applied)
    }

    // === promises ===

    fn create_promise(&mut self, index: u64, slot: &mut u32, p: &NewPromise) -> Applied {
        self.site_with_status(&p.site, "take new promises", &[SiteStatus::Active])?;
        if self.queue(&p.tenant, &p.queue).is_none() {
            self.tenant_or_refuse("create_promise", &p.tenant)?;
            return Err(unknown(
                "create_promise",
                ItemKind::Queue,
                format!("{}/{}", p.tenant, p.queue),
            ));
        }
        let owner = format!("{:?} promise for {}/{}", p.kind, p.tenant, p.queue);
        if p.customer.is_empty() {
            return Err(invalid(&owner, "names no customer to call back".into()));
        }
        check_text(&owner, "customer", &p.customer)?;
        check_text(&owner, "note", &p.note)?;
        let id = PromiseId { index, slot: *slot };
        if self.promises.contains_key(&id) {
            return Err(duplicate(ItemKind::Promise, id));
        }
        *slot = slot
            .checked_add(1)
            .ok_or_else(|| invalid(&owner, "too many promises in one log entry".into()))?;
        self.promises.insert(
            id,
            Promise {
                id,
                kind: p.kind,
                tenant: p.tenant.clone(),
                queue: p.queue.clone(),
                customer: p.customer.clone(),
                note: p.note.clone(),
                contact: p.contact,
                created_at_ms: p.at_ms,
                created_by: p.site.clone(),
                owner: p.site.clone(),
                state: PromiseState::Pending,
                attempts: 0,
                handovers: vec![],
            },
        );
        Ok(Response::Created { id })
    }

    /// The promise, refused if unknown or already completed.
    fn open_promise(&self, id: &PromiseId, action: &str) -> Result<&Promise, Refusal> {
        let Some(p) = self.promises.get(id) else {
            return Err(unknown(action, ItemKind::Promise, id));
        };
        if let PromiseState::Completed { site, at_ms, .. } = &p.state {
            return Err(Refusal::AlreadyCompleted {
                promise: *id,
                by: site.to_string(),
                at_ms: *at_ms,
            });
        }
        Ok(p)
    }

    fn promise_mut(&mut self, id: &PromiseId) -> &mut Promise {
        self.promises
            .get_mut(id)
            .expect("the handler checked that the promise exists")
    }

    fn claim(&mut self, id: &PromiseId, site: &SiteId, at_ms: u64) -> Applied {
        let p = self.open_promise(id, "claim_promise")?;
        self.site_with_status(
            site,
            "claim promises",
            &[SiteStatus::Active, SiteStatus::Draining],
        )?;
        if &p.owner != site {
            return Err(Refusal::NotOwner {
                promise: *id,
                site: site.to_string(),
                owner: p.owner.to_string(),
            });
        }
        if p.state != PromiseState::Pending {
            return Err(state_refusal(p, site, "claim"));
        }
        self.promise_mut(id).state = PromiseState::Claimed {
            site: site.clone(),
            at_ms,
        };
        Ok(Response::Applied)
    }

    /// Refuses unless `site` holds the claim, and is up.
    fn check_claimer(&self, p: &Promise, site: &SiteId, action: &str) -> Result<(), Refusal> {
        self.site_with_status(
            site,
            &format!("{action} promises"),
            &[SiteStatus::Active, SiteStatus::Draining],
        )?;
        match &p.state {
            PromiseState::Claimed { site: s, .. } if s == site => Ok(()),
            _ => Err(state_refusal(p, site, action)),
        }
    }

    fn release(&mut self, id: &PromiseId, site: &SiteId, _at_ms: u64) -> Applied {
        let p = self.open_promise(id, "release_promise")?;
        self.check_claimer(p, site, "release")?;
        let p = self.promise_mut(id);
        p.state = PromiseState::Pending;
        p.attempts = p.attempts.saturating_add(1);
        Ok(Response::Applied)
    }

    fn complete(
        &mut self,
        id: &PromiseId,
        site: &SiteId,
        outcome: PromiseOutcome,
        at_ms: u64,
    ) -> Applied {
        let p = self.open_promise(id, "complete_promise")?;
        self.check_claimer(p, site, "complete")?;
        self.promise_mut(id).state = PromiseState::Completed {
            site: site.clone(),
            at_ms,
            outcome,
        };
        Ok(Response::Applied)
    }

    fn take_over(&mut self, id: &PromiseId, site: &SiteId, at_ms: u64) -> Applied {
        let p = self.open_promise(id, "take_over_promise")?;
        self.site_with_status(site, "take over promises", &[SiteStatus::Active])?;
        let owner_status = self.sites.get(&p.owner).map(|s| s.status);
        if owner_status != Some(SiteStatus::Down) {
            return Err(Refusal::OwnerNotDown {
                promise: *id,
                owner: p.owner.to_string(),
                // A promise's owner cannot be removed while the promise is open.
                status: owner_status.unwrap_or(SiteStatus::Down),
            });
        }
        let p = self.promise_mut(id);
        p.handovers.push(Handover {
            from: p.owner.clone(),
            to: site.clone(),
            at_ms,
        });
        p.owner = site.clone();
        p.state = PromiseState::Pending;
        Ok(Response::Applied)
    }

    fn prune(&mut self, completed_before_ms: u64) -> Response {
        let before = self.promises.len();
        self.promises.retain(|_, p| match p.state {
            PromiseState::Completed { at_ms, .. } => at_ms >= completed_before_ms,
            _ => true,
        });
        Response::Removed {
            count: (before - self.promises.len()) as u64,
        }
    }
}

fn state_refusal(p: &Promise, site: &SiteId, action: &str) -> Refusal {
    Refusal::PromiseState {
        promise: p.id,
        state: p.state.to_string(),
        site: site.to_string(),
        action: action.to_owned(),
    }
}
