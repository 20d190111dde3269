//! The ACD inside `hotline site`, and what it tells the routing group.
//!
//! - [`seed`]: the configuration a site's ACD file holds (providers, tenants, queues,
//!   agents) written into the routing state when the routing state does not have it
//!   yet — one all-or-nothing batch. What the routing state already holds wins: it is the
//!   install's source of truth once written.
//! - [`summary`]: the site's live figures per queue (ready agents, waiting contacts,
//!   oldest wait, expected wait), published as one `PublishSummary` command a few times a
//!   second so other sites can choose where a waiting contact would be served sooner.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hotline_acd::config::{self as acd, SiteConfig};
use hotline_acd::engine::SiteSnapshot;
use hotline_acd::site::Site;
use hotline_core::ids::{QueueId, SiteId, TenantId};
use hotline_routing::node::{NodeError, RoutingNode};
use hotline_routing::state::{
    AgentProfile, Command, ExpandStep, ItemKind, OverflowPolicy, Provider, Queue, QueueAction,
    QueueSummary, Refusal, RoutingState, Serves, Strategy, TenantSpec,
};

fn strategy(s: acd::Strategy) -> Strategy {
    match s {
        acd::Strategy::LongestIdle => Strategy::LongestIdle,
        acd::Strategy::MostSkilled => Strategy::MostSkilled,
        acd::Strategy::RoundRobin => Strategy::RoundRobin,
        acd::Strategy::FewestContacts => Strategy::FewestContacts,
        acd::Strategy::LeastOccupied => Strategy::LeastOccupied,
    }
}

fn action(a: &acd::QueueAction) -> QueueAction {
    match a {
        acd::QueueAction::Stay => QueueAction::Stay,
        acd::QueueAction::Overflow { queue } => QueueAction::Overflow {
            queue: queue.clone(),
        },
        acd::QueueAction::Callback => QueueAction::Callback,
        acd::QueueAction::Voicemail => QueueAction::Voicemail,
        acd::QueueAction::Disconnect => QueueAction::Disconnect,
    }
}

fn queue(q: &acd::QueueConfig) -> Queue {
    let mut out = Queue::new(q.tenant.clone(), q.id.clone(), q.skills.clone());
    out.name = q.name.clone();
    out.channel = q.channel;
    out.priority = q.priority;
    out.strategy = strategy(q.strategy);
    out.sl_secs = q.sl_secs;
    // The ACD's target is a fraction; the routing state keeps whole percent (no floats in
    // replicated state, so every replica compares equal).
    out.sl_target_percent = (q.sl_target * 100.0).round().clamp(0.0, 100.0) as u8;
    out.wrap_up_secs = q.wrap_up_secs;
    out.no_answer_secs = q.no_answer_secs;
    out.max_size = q.max_size;
    out.max_wait_secs = q.max_wait_secs;
    out.on_max_wait = action(&q.on_max_wait);
    out.when_full = action(&q.when_full);
    out.when_no_agents = action(&q.when_no_agents);
    out.expand = q
        .expand
        .iter()
        .map(|e| ExpandStep {
            after_secs: e.after_secs,
            relax: e.relax.clone(),
            drop: e.drop.clone(),
            add: e.add.clone(),
            widen_to: e.widen_to.clone(),
        })
        .collect();
    out
}

/// The queue with every reference to another queue taken out (overflow becomes disconnect or stay, no
/// widening, steps that only widened left out), so it can be added before the queues it names.
fn without_queue_references(q: &Queue) -> Queue {
    // Only for the moment between the two commands of the same batch: nothing ever
    // routes by the bare form.
    let unlink = |a: &QueueAction, instead: QueueAction| match a {
        QueueAction::Overflow { .. } => instead,
        other => other.clone(),
    };
    let mut bare = q.clone();
    bare.on_max_wait = unlink(&q.on_max_wait, QueueAction::Disconnect);
    bare.when_full = unlink(&q.when_full, QueueAction::Disconnect);
    bare.when_no_agents = unlink(&q.when_no_agents, QueueAction::Stay);
    for step in &mut bare.expand {
        step.widen_to = None;
    }
    // A step that only widened says nothing once unlinked.
    bare.expand
        .retain(|s| s.relax.is_some() || s.drop.is_some() || s.add.is_some());
    bare
}

fn agent(a: &acd::AgentConfig) -> Option<AgentProfile> {
    // The ACD's validation refuses an agent who serves no tenant; such a row is skipped.
    let first = a.serves.first()?;
    let mut profile = AgentProfile::new(a.id.clone(), first.tenant.clone(), first.skills.clone());
    profile.name = a.name.clone();
    profile.provider = a.provider.clone();
    profile.capacity = a.capacity;
    profile.max_missed = a.max_missed;
    profile.serves = a
        .serves
        .iter()
        .map(|s| Serves {
            tenant: s.tenant.clone(),
            skills: s.skills.clone(),
        })
        .collect();
    Some(profile)
}

/// What of the ACD file the routing state lacks, as one all-or-nothing batch; `None`
/// when it has everything (by id: what it holds is not overwritten).
pub fn seed(config: &SiteConfig, state: &RoutingState) -> Option<Command> {
    let mut commands = Vec::new();
    for p in &config.providers {
        if state.provider(&p.id).is_none() {
            commands.push(Command::AddProvider(Provider {
                id: p.id.clone(),
                name: p.name.clone(),
            }));
        }
    }
    for t in &config.tenants {
        if state.tenant(&t.id).is_none() {
            commands.push(Command::AddTenant(Box::new(TenantSpec {
                id: t.id.clone(),
                name: t.name.clone(),
                provider: t.provider.clone(),
                skills: t.skills.clone(),
            })));
        }
    }
    // Queues may name each other (overflow, widening), even in a cycle, and the state
    // refuses a reference to a queue it does not hold yet: add every new queue without
    // its references first, then give those that have some their full form.
    let mut linked = Vec::new();
    for q in &config.queues {
        if state.queue(&q.tenant, &q.id).is_none() {
            let full = queue(q);
            let bare = without_queue_references(&full);
            if bare != full {
                linked.push(Command::UpdateQueue(Box::new(full)));
            }
            commands.push(Command::AddQueue(Box::new(bare)));
        }
    }
    commands.extend(linked);
    for a in &config.agents {
        if state.agent(&a.id).is_none()
            && let Some(profile) = agent(a)
        {
            commands.push(Command::AddAgent(Box::new(profile)));
        }
    }
    (!commands.is_empty()).then_some(Command::Batch(commands))
}

/// The site's live figures for every queue the routing state knows, from one ACD
/// snapshot. The expected wait is the queue's backlog shared among the agents who can
/// take it, times the handle time seen so far (the queue's service-level threshold when
/// nothing has been answered yet): crude, cheap, and monotone in what matters.
pub fn summary(snapshot: &SiteSnapshot, state: &RoutingState) -> Vec<QueueSummary> {
    snapshot
        .queues
        .iter()
        .filter(|q| state.queue(&q.tenant, &q.queue).is_some())
        .map(|q| {
            let answered = q.counters.answered.max(1);
            let handle_ms = if q.counters.answered > 0 {
                q.counters.answered_wait_ms / answered + q.sl_secs * 1_000
            } else {
                q.sl_secs * 1_000
            };
            let expected_wait_ms = if q.agents_available > q.waiting {
                0
            } else {
                let servers = u64::from(q.agents_logged_in.max(1));
                (u64::from(q.waiting) + 1) * handle_ms / servers
            };
            QueueSummary {
                tenant: q.tenant.clone(),
                queue: q.queue.clone(),
                ready: q.agents_available,
                ready_by_skill: Vec::new(),
                waiting: q.waiting,
                oldest_wait_ms: (q.oldest_wait_secs * 1_000.0) as u64,
                expected_wait_ms,
            }
        })
        .collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Seeds the routing state once a leader is known, then publishes the site's summary
/// every `every` until `stop` turns true. A refused or failed publish is logged and the
/// next one tried: a summary is only as good as its freshness.
pub async fn publish(
    node: RoutingNode,
    site: Site,
    site_id: SiteId,
    config: SiteConfig,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // Seed first: summaries name queues, which the state must know.
    let mut refusals = 0;
    while let Some(batch) = node.read(|s| seed(&config, s)) {
        match node.write(batch).await {
            Ok(_) => break,
            // Another site of the cluster seeded the same items first: look again at
            // what is still missing, once.
            Err(NodeError::Refused(_)) if refusals == 0 => {
                refusals += 1;
                let _ = node.read_linearizable(|_| ()).await;
            }
            Err(NodeError::Refused(refusal)) => {
                tracing::warn!(site = %site_id, %refusal, "the ACD file's configuration was refused by the routing state; summaries cover the queues it knows");
                break;
            }
            Err(e) => {
                tracing::debug!(site = %site_id, error = %e, "routing state not writable yet; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        }
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let snapshot = match site.snapshot().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(site = %site_id, error = %e, "no ACD snapshot for the summary");
                continue;
            }
        };
        let queues = node.read(|s| summary(&snapshot, s));
        let command = Command::PublishSummary {
            site: site_id.clone(),
            at_ms: now_ms(),
            queues,
        };
        if let Err(e) = node.write(command).await {
            tracing::debug!(site = %site_id, error = %e, "summary not published");
        }
    }
}

/// What the ACD's events tell [`record_logins`], in order.
pub enum LoginNote {
    /// An agent logged in (`login`) or out at this site.
    Changed {
        /// The agent.
        agent: hotline_core::ids::AgentId,
        /// In, or out.
        login: bool,
    },
    /// Answered once every note before it is recorded (or given up on): how a stopping
    /// site waits for its agents' logouts to reach the routing state.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Records the site's agent logins and logouts (the ACD's `logged_in`/`logged_out`
/// events) in the routing state, so the group knows where each agent is. An agent
/// already logged in at another site is logged out here again: one place at a time.
pub async fn record_logins(
    node: RoutingNode,
    site: Site,
    site_id: SiteId,
    mut logins: tokio::sync::mpsc::UnboundedReceiver<LoginNote>,
) {
    while let Some(note) = logins.recv().await {
        let (agent, login) = match note {
            LoginNote::Changed { agent, login } => (agent, login),
            LoginNote::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        let command = |at_ms| {
            if login {
                Command::AgentLogin {
                    agent: agent.clone(),
                    site: site_id.clone(),
                    at_ms,
                }
            } else {
                Command::AgentLogout {
                    agent: agent.clone(),
                    site: site_id.clone(),
                    at_ms,
                }
            }
        };
        // The agent's profile may not be seeded yet, or the group may be electing.
        for attempt in 0..50 {
            match node.write(command(now_ms())).await {
                Ok(_) => break,
                Err(NodeError::Refused(Refusal::AgentLoggedInElsewhere {
                    site: other, ..
                })) => {
                    tracing::warn!(%agent, %other, "agent is logged in at another site; logging them out here");
                    let _ = site.agent(agent.clone()).log_out().await;
                    break;
                }
                // A logout of an agent the group does not have here (its login was
                // refused, or another site's login replaced it): nothing to undo.
                Err(NodeError::Refused(Refusal::AgentNotLoggedIn { .. })) if !login => break,
                Err(e @ NodeError::Stopped { .. }) => {
                    tracing::warn!(%agent, login, error = %e, "the routing replica has stopped; the agent's login is not recorded");
                    break;
                }
                Err(e) if attempt == 49 => {
                    tracing::warn!(%agent, login, error = %e, "could not record the agent's login in the routing state");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

/// Sets the cross-site overflow policies of a site's file on their queues, once the
/// queues are in the routing state (seeded by some site), unless already set so.
pub async fn set_overflow_policies(
    node: RoutingNode,
    policies: Vec<(TenantId, QueueId, OverflowPolicy)>,
) {
    for (tenant, queue, policy) in policies {
        for attempt in 0..150 {
            let current = node.read(|s| s.queue(&tenant, &queue).cloned());
            let Some(mut q) = current else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            if q.overflow.as_ref() == Some(&policy) {
                break;
            }
            q.overflow = Some(policy.clone());
            match node.write(Command::UpdateQueue(Box::new(q))).await {
                Ok(_) => {
                    tracing::info!(%tenant, %queue, "cross-site overflow policy set");
                    break;
                }
                // A target site that has not registered yet (sites start in any order):
                // wait for it like for the queue, and say so if it never comes.
                Err(NodeError::Refused(Refusal::Unknown {
                    kind: ItemKind::Site,
                    ..
                })) if attempt < 149 => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(NodeError::Refused(refusal)) => {
                    tracing::warn!(%tenant, %queue, %refusal, "the file's overflow policy was refused");
                    break;
                }
                Err(e) if attempt == 149 => {
                    tracing::warn!(%tenant, %queue, error = %e, "could not set the overflow policy");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_routing::state::Response;

    #[test]
    fn the_demo_acd_file_seeds_an_empty_routing_state_in_one_batch_and_then_nothing_is_missing() {
        let config = crate::cli::load_site(None).expect("the bundled demo loads");
        let mut state = RoutingState::default();
        let batch = seed(&config, &state).expect("an empty state lacks everything");
        let response = state.apply(1, &batch);
        assert!(matches!(response, Response::Batch(_)), "{response:?}");
        assert_eq!(state.tenants().count(), config.tenants.len());
        for q in &config.queues {
            let stored = state.queue(&q.tenant, &q.id).expect("every queue is there");
            // Cross-queue references survive the two-step add.
            assert_eq!(stored, &queue(q), "queue {}", q.id);
        }
        assert_eq!(seed(&config, &state), None);
    }
}
