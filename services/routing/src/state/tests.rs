//! Unit tests of the state machine: each rule, refused with its reason and nothing changed.

use std::collections::BTreeSet;

use hotline_core::ids::{AgentId, ProviderId, QueueId, SiteId, SkillId, TenantId};
use hotline_core::skill::{Proficiency, Skill, SkillRequirement};

use super::*;

fn tenant() -> TenantId {
    TenantId::new("acme").unwrap()
}
fn skill(s: &str) -> SkillId {
    SkillId::new(s).unwrap()
}
fn queue_id(s: &str) -> QueueId {
    QueueId::new(s).unwrap()
}
fn site(s: &str) -> SiteId {
    SiteId::new(s).unwrap()
}
fn agent_id(s: &str) -> AgentId {
    AgentId::new(s).unwrap()
}
fn req(s: &str, min: u8) -> SkillRequirement {
    SkillRequirement {
        skill: skill(s),
        min: Proficiency::new(min).unwrap(),
    }
}
fn has(s: &str, level: u8) -> Skill {
    Skill {
        skill: skill(s),
        level: Proficiency::new(level).unwrap(),
    }
}

/// A state and the next log index, applying commands the way a replica does.
struct Fixture {
    state: RoutingState,
    index: u64,
}

impl Fixture {
    /// Sites north (node 1), south (2), east (3); tenant acme with skills billing and
    /// mandarin; queue billing requiring billing ≥ 2; agent ann serving acme.
    fn new() -> Self {
        let mut f = Fixture {
            state: RoutingState::default(),
            index: 0,
        };
        for (i, s) in ["north", "south", "east"].iter().enumerate() {
            f.ok(Command::AddSite {
                id: site(s),
                name: s.to_string(),
                node_id: i as u64 + 1,
                at_ms: 0,
            });
        }
        f.ok(Command::AddTenant(Box::new(TenantSpec {
            id: tenant(),
            name: "Acme".into(),
            provider: None,
            skills: vec![skill("billing"), skill("mandarin")],
        })));
        f.ok(Command::AddQueue(Box::new(Queue::new(
            tenant(),
            queue_id("billing"),
            vec![req("billing", 2)],
        ))));
        f.ok(Command::AddAgent(Box::new(AgentProfile::new(
            agent_id("ann"),
            tenant(),
            vec![has("billing", 3)],
        ))));
        f
    }

    fn apply(&mut self, command: Command) -> Response {
        self.index += 1;
        self.state.apply(self.index, &command)
    }

    fn ok(&mut self, command: Command) -> Response {
        let shown = format!("{command:?}");
        let r = self.apply(command);
        assert!(r.refusal().is_none(), "{shown} was refused: {r:?}");
        r
    }

    /// Applies a command that must be refused, checks that nothing changed, and returns
    /// the refusal.
    fn refused(&mut self, command: Command) -> Refusal {
        let before = self.state.clone();
        let r = self.apply(command);
        assert_eq!(self.state, before, "a refused command changed the state");
        match r {
            Response::Refused(refusal) => refusal,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn create_promise(&mut self, at: &str) -> PromiseId {
        match self.ok(Command::CreatePromise(Box::new(NewPromise {
            site: site(at),
            kind: PromiseKind::Callback,
            tenant: tenant(),
            queue: queue_id("billing"),
            customer: "+8613800000000".into(),
            note: String::new(),
            contact: None,
            at_ms: 10,
        }))) {
            Response::Created { id } => id,
            other => panic!("expected Created, got {other:?}"),
        }
    }

    fn status(&mut self, s: &str, status: SiteStatus) {
        self.ok(Command::SetSiteStatus {
            site: site(s),
            status,
            at_ms: 100,
        });
    }

    fn summary(&mut self, s: &str, at_ms: u64, ready: u32, expected_wait_ms: u64) -> Response {
        self.apply(Command::PublishSummary {
            site: site(s),
            at_ms,
            queues: vec![row(ready, expected_wait_ms)],
        })
    }

    fn with_overflow(&mut self, targets: &[(&str, u32)]) {
        let mut q = self
            .state
            .queue(&tenant(), &queue_id("billing"))
            .unwrap()
            .clone();
        q.overflow = Some(OverflowPolicy {
            after_wait_secs: Some(30),
            expected_wait_above_secs: None,
            targets: targets
                .iter()
                .map(|(s, p)| OverflowTarget {
                    site: site(s),
                    penalty_ms: *p,
                })
                .collect(),
        });
        self.ok(Command::UpdateQueue(Box::new(q)));
    }
}

fn row(ready: u32, expected_wait_ms: u64) -> QueueSummary {
    QueueSummary {
        tenant: tenant(),
        queue: queue_id("billing"),
        ready,
        ready_by_skill: vec![SkillReady {
            skill: skill("billing"),
            at_least: [ready, ready, ready, 0, 0],
        }],
        waiting: 0,
        oldest_wait_ms: 0,
        expected_wait_ms,
    }
}

// === configuration ===

#[test]
fn queue_naming_unknown_skill_is_refused_and_nothing_changes() {
    let mut f = Fixture::new();
    let refusal = f.refused(Command::AddQueue(Box::new(Queue::new(
        tenant(),
        queue_id("sales"),
        vec![req("french", 1)],
    ))));
    assert_eq!(
        refusal,
        Refusal::Unknown {
            owner: "queue acme/sales".into(),
            kind: ItemKind::Skill,
            id: "french".into()
        }
    );
    assert_eq!(
        refusal.to_string(),
        "queue acme/sales names unknown skill \"french\""
    );
}

#[test]
fn duplicate_ids_are_refused() {
    let mut f = Fixture::new();
    let r = f.refused(Command::AddQueue(Box::new(Queue::new(
        tenant(),
        queue_id("billing"),
        vec![],
    ))));
    assert!(
        matches!(r, Refusal::Duplicate { kind: ItemKind::Queue, ref id } if id == "acme/billing")
    );
    let r = f.refused(Command::AddSite {
        id: site("west"),
        name: "West".into(),
        node_id: 2,
        at_ms: 0,
    });
    assert!(
        matches!(
            r,
            Refusal::Duplicate {
                kind: ItemKind::Node,
                ..
            }
        ),
        "{r}"
    );
    let r = f.refused(Command::AddTenant(Box::new(TenantSpec {
        id: TenantId::new("beta").unwrap(),
        name: String::new(),
        provider: None,
        skills: vec![skill("a"), skill("a")],
    })));
    assert!(
        matches!(
            r,
            Refusal::Duplicate {
                kind: ItemKind::Skill,
                ..
            }
        ),
        "{r}"
    );
}

#[test]
fn updating_a_queue_that_does_not_exist_is_refused() {
    let mut f = Fixture::new();
    let r = f.refused(Command::UpdateQueue(Box::new(Queue::new(
        tenant(),
        queue_id("nope"),
        vec![],
    ))));
    assert!(
        matches!(
            r,
            Refusal::Unknown {
                kind: ItemKind::Queue,
                ..
            }
        ),
        "{r}"
    );
}

#[test]
fn overflow_to_a_site_that_does_not_exist_is_refused() {
    let mut f = Fixture::new();
    let mut q = Queue::new(tenant(), queue_id("sales"), vec![]);
    q.overflow = Some(OverflowPolicy {
        after_wait_secs: Some(10),
        expected_wait_above_secs: None,
        targets: vec![OverflowTarget {
            site: site("atlantis"),
            penalty_ms: 0,
        }],
    });
    let r = f.refused(Command::AddQueue(Box::new(q.clone())));
    assert!(r.to_string().contains("unknown site \"atlantis\""), "{r}");
    q.overflow.as_mut().unwrap().targets[0].site = site("south");
    q.overflow.as_mut().unwrap().after_wait_secs = None;
    let r = f.refused(Command::AddQueue(Box::new(q)));
    assert!(r.to_string().contains("has no trigger"), "{r}");
}

#[test]
fn agent_profile_with_unknown_tenant_or_skill_is_refused() {
    let mut f = Fixture::new();
    let r = f.refused(Command::AddAgent(Box::new(AgentProfile::new(
        agent_id("bob"),
        TenantId::new("ghost").unwrap(),
        vec![],
    ))));
    assert!(r.to_string().contains("unknown tenant \"ghost\""), "{r}");
    let r = f.refused(Command::AddAgent(Box::new(AgentProfile::new(
        agent_id("bob"),
        tenant(),
        vec![has("juggling", 2)],
    ))));
    assert_eq!(
        r.to_string(),
        "agent bob (tenant acme) names unknown skill \"juggling\""
    );
}

#[test]
fn proficiency_outside_one_to_five_cannot_even_be_decoded() {
    // Proficiency is validated by its type, so such a command never reaches the log:
    // the admin API refuses it when it parses the body.
    let json = r#"{"AddAgent":{"id":"bob","serves":[{"tenant":"acme","skills":[{"skill":"billing","level":6}]}]}}"#;
    let err = serde_json::from_str::<Command>(json).unwrap_err();
    assert!(
        err.to_string().contains("proficiency 6 is out of range"),
        "{err}"
    );
    assert!(serde_json::from_str::<Command>(&json.replace(":6", ":5")).is_ok());
}

#[test]
fn deleting_a_skill_still_referenced_is_refused_and_allowed_once_free() {
    let mut f = Fixture::new();
    let r = f.refused(Command::RemoveSkill {
        tenant: tenant(),
        skill: skill("billing"),
    });
    assert_eq!(
        r.to_string(),
        "skill \"acme/billing\" is still referenced by queue acme/billing; remove or change that first"
    );
    // mandarin is named by an agent only.
    f.ok(Command::UpdateAgent(Box::new(AgentProfile::new(
        agent_id("ann"),
        tenant(),
        vec![has("mandarin", 5)],
    ))));
    let r = f.refused(Command::RemoveSkill {
        tenant: tenant(),
        skill: skill("mandarin"),
    });
    assert!(r.to_string().contains("agent ann"), "{r}");
    f.ok(Command::RemoveQueue {
        tenant: tenant(),
        queue: queue_id("billing"),
    });
    f.ok(Command::RemoveSkill {
        tenant: tenant(),
        skill: skill("billing"),
    });
}

#[test]
fn deleting_a_site_still_referenced_is_refused() {
    let mut f = Fixture::new();
    f.with_overflow(&[("south", 0)]);
    let r = f.refused(Command::RemoveSite { id: site("south") });
    assert!(
        r.to_string()
            .contains("overflow policy of queue acme/billing"),
        "{r}"
    );
    f.ok(Command::AgentLogin {
        agent: agent_id("ann"),
        site: site("east"),
        at_ms: 1,
    });
    let r = f.refused(Command::RemoveSite { id: site("east") });
    assert!(r.to_string().contains("agent ann"), "{r}");
    f.create_promise("north");
    let r = f.refused(Command::RemoveSite { id: site("north") });
    assert!(r.to_string().contains("open promise"), "{r}");
}

#[test]
fn removing_a_provider_named_by_a_tenant_is_refused() {
    let mut f = Fixture::new();
    let p = ProviderId::new("outsourcer").unwrap();
    f.ok(Command::AddProvider(Provider {
        id: p.clone(),
        name: "O".into(),
    }));
    f.ok(Command::UpdateTenant {
        id: tenant(),
        name: "Acme".into(),
        provider: Some(p.clone()),
    });
    let r = f.refused(Command::RemoveProvider { id: p });
    assert!(r.to_string().contains("tenant acme"), "{r}");
}

#[test]
fn queue_rules_of_the_acd_apply_here_too() {
    let mut f = Fixture::new();
    let mut q = Queue::new(tenant(), queue_id("sales"), vec![req("billing", 1)]);
    q.when_full = QueueAction::Stay;
    assert!(
        f.refused(Command::AddQueue(Box::new(q.clone())))
            .to_string()
            .contains("when_full")
    );
    q.when_full = QueueAction::Overflow {
        queue: queue_id("sales"),
    };
    assert!(
        f.refused(Command::AddQueue(Box::new(q.clone())))
            .to_string()
            .contains("itself")
    );
    q.when_full = QueueAction::Overflow {
        queue: queue_id("billing"),
    };
    q.sl_target_percent = 101;
    assert!(
        f.refused(Command::AddQueue(Box::new(q.clone())))
            .to_string()
            .contains("sl_target_percent")
    );
    q.sl_target_percent = 90;
    q.expand = vec![ExpandStep {
        after_secs: 30,
        relax: Some(req("mandarin", 1)),
        drop: None,
        add: None,
        widen_to: None,
    }];
    assert!(
        f.refused(Command::AddQueue(Box::new(q.clone())))
            .to_string()
            .contains("cannot be relaxed")
    );
    q.expand[0].relax = Some(req("billing", 1));
    f.ok(Command::AddQueue(Box::new(q)));
    let r = f.refused(Command::RemoveQueue {
        tenant: tenant(),
        queue: queue_id("billing"),
    });
    assert!(r.to_string().contains("queue acme/sales"), "{r}");
}

#[test]
fn business_hours_are_validated_and_guarded_by_the_queues_that_follow_them() {
    let mut f = Fixture::new();
    let mut h = BusinessHours {
        tenant: tenant(),
        id: "office".into(),
        tz: "Asia/Shanghai".into(),
        open: vec![
            OpenInterval {
                day: Weekday::Monday,
                opens_min: 9 * 60,
                closes_min: 18 * 60,
            },
            OpenInterval {
                day: Weekday::Monday,
                opens_min: 17 * 60,
                closes_min: 20 * 60,
            },
        ],
        holidays: vec!["2027-02-29".into()],
    };
    assert!(
        f.refused(Command::AddBusinessHours(Box::new(h.clone())))
            .to_string()
            .contains("overlap")
    );
    h.open.pop();
    assert!(
        f.refused(Command::AddBusinessHours(Box::new(h.clone())))
            .to_string()
            .contains("2027-02-29")
    );
    h.holidays = vec!["2028-02-29".into(), "2027-10-01".into()];
    h.tz = "not a zone".into();
    assert!(
        f.refused(Command::AddBusinessHours(Box::new(h.clone())))
            .to_string()
            .contains("IANA")
    );
    h.tz = "Asia/Shanghai".into();
    f.ok(Command::AddBusinessHours(Box::new(h)));
    let mut q = f
        .state
        .queue(&tenant(), &queue_id("billing"))
        .unwrap()
        .clone();
    q.business_hours = Some("office".into());
    f.ok(Command::UpdateQueue(Box::new(q)));
    let r = f.refused(Command::RemoveBusinessHours {
        tenant: tenant(),
        id: "office".into(),
    });
    assert!(r.to_string().contains("queue acme/billing"), "{r}");
}

#[test]
fn flow_versions_increase_and_all_are_kept_with_a_current_pointer() {
    let mut f = Fixture::new();
    let publish = |make_current| Command::PublishFlow {
        tenant: tenant(),
        name: "main".into(),
        body: format!("menu {make_current}"),
        make_current,
        at_ms: 5,
    };
    assert_eq!(f.ok(publish(false)), Response::FlowPublished { version: 1 });
    assert_eq!(f.ok(publish(false)), Response::FlowPublished { version: 2 });
    assert_eq!(f.state.current_flow(&tenant(), "main").unwrap().version, 1);
    assert_eq!(f.ok(publish(true)), Response::FlowPublished { version: 3 });
    assert_eq!(f.state.current_flow(&tenant(), "main").unwrap().version, 3);
    f.ok(Command::SetCurrentFlow {
        tenant: tenant(),
        name: "main".into(),
        version: 2,
    });
    assert_eq!(f.state.current_flow(&tenant(), "main").unwrap().version, 2);
    let r = f.refused(Command::SetCurrentFlow {
        tenant: tenant(),
        name: "main".into(),
        version: 4,
    });
    assert!(r.to_string().contains("unknown flow version \"4\""), "{r}");
    assert_eq!(
        f.state.tenant(&tenant()).unwrap().flows["main"]
            .versions
            .len(),
        3
    );
}

// === agents ===

#[test]
fn an_agent_logged_in_at_one_site_must_log_out_before_logging_in_at_another() {
    let mut f = Fixture::new();
    let login = |s: &str| Command::AgentLogin {
        agent: agent_id("ann"),
        site: site(s),
        at_ms: 7,
    };
    f.ok(login("north"));
    assert_eq!(
        f.state.agent_location(&agent_id("ann")),
        Some(&AgentLocation::LoggedIn {
            site: site("north"),
            since_ms: 7
        })
    );
    let r = f.refused(login("south"));
    assert!(matches!(r, Refusal::AgentLoggedInElsewhere { ref site, .. } if site == "north"));
    let r = f.refused(Command::AgentLogout {
        agent: agent_id("ann"),
        site: site("south"),
        at_ms: 8,
    });
    assert!(matches!(r, Refusal::AgentNotLoggedIn { .. }));
    f.ok(Command::AgentLogout {
        agent: agent_id("ann"),
        site: site("north"),
        at_ms: 8,
    });
    f.ok(login("south"));
    assert_eq!(f.state.agents_at(&site("south")).count(), 1);
}

#[test]
fn a_site_marked_down_logs_its_agents_out_and_loses_its_summary() {
    let mut f = Fixture::new();
    f.ok(Command::AgentLogin {
        agent: agent_id("ann"),
        site: site("north"),
        at_ms: 7,
    });
    assert!(f.summary("north", 50, 1, 0).refusal().is_none());
    f.status("north", SiteStatus::Down);
    assert_eq!(
        f.state.agent_location(&agent_id("ann")),
        Some(&AgentLocation::LoggedOut { since_ms: 100 })
    );
    assert!(f.state.summary(&site("north")).is_none());
    let r = f.refused(Command::AgentLogin {
        agent: agent_id("ann"),
        site: site("north"),
        at_ms: 101,
    });
    assert!(matches!(
        r,
        Refusal::SiteUnavailable {
            status: SiteStatus::Down,
            ..
        }
    ));
}

// === summaries ===

#[test]
fn a_summary_replaces_the_previous_one_and_an_older_one_is_refused() {
    let mut f = Fixture::new();
    assert!(f.summary("north", 50, 2, 1000).refusal().is_none());
    assert!(f.summary("north", 60, 1, 500).refusal().is_none());
    let s = f.state.summary(&site("north")).unwrap();
    assert_eq!(s.at_ms, 60);
    assert_eq!(s.queue(&tenant(), &queue_id("billing")).unwrap().ready, 1);
    let r = f.refused(Command::PublishSummary {
        site: site("north"),
        at_ms: 55,
        queues: vec![],
    });
    assert!(matches!(
        r,
        Refusal::StaleSummary {
            previous_ms: 60,
            ..
        }
    ));
}

#[test]
fn a_summary_from_an_unknown_or_down_site_is_refused() {
    let mut f = Fixture::new();
    let r = f.refused(Command::PublishSummary {
        site: site("mars"),
        at_ms: 1,
        queues: vec![],
    });
    assert!(r.to_string().contains("unknown site \"mars\""), "{r}");
    f.status("south", SiteStatus::Down);
    let before = f.state.clone();
    let r = f.summary("south", 200, 1, 0);
    assert!(matches!(
        r,
        Response::Refused(Refusal::SiteUnavailable { .. })
    ));
    assert_eq!(f.state, before);
}

#[test]
fn a_summary_row_for_an_unknown_queue_or_with_bad_counts_is_refused() {
    let mut f = Fixture::new();
    let mut bad = row(1, 0);
    bad.queue = queue_id("nope");
    let r = f.refused(Command::PublishSummary {
        site: site("north"),
        at_ms: 1,
        queues: vec![bad],
    });
    assert!(r.to_string().contains("unknown queue \"acme/nope\""), "{r}");
    let mut bad = row(1, 0);
    bad.ready_by_skill[0].at_least = [1, 2, 0, 0, 0];
    let r = f.refused(Command::PublishSummary {
        site: site("north"),
        at_ms: 1,
        queues: vec![bad],
    });
    assert!(r.to_string().contains("never increase"), "{r}");
    let r = f.refused(Command::PublishSummary {
        site: site("north"),
        at_ms: 1,
        queues: vec![row(1, 0), row(2, 0)],
    });
    assert!(r.to_string().contains("two rows"), "{r}");
}

// === overflow ===

#[test]
fn best_overflow_site_picks_the_lowest_expected_wait_plus_penalty() {
    let mut f = Fixture::new();
    f.with_overflow(&[("north", 0), ("south", 5_000), ("east", 0)]);
    f.summary("south", 1_000, 3, 0);
    f.summary("east", 1_000, 1, 2_000);
    let best = f
        .state
        .best_overflow_site(&tenant(), &queue_id("billing"), &site("north"), 1_200, 500)
        .unwrap();
    // east: 2000 + 0 beats south: 0 + 5000; north is the origin.
    assert_eq!(best.site, site("east"));
    assert_eq!(best.score_ms, 2_000);
    assert!(best.reason.contains("penalty 0 ms"), "{}", best.reason);
    let candidates =
        f.state
            .overflow_candidates(&tenant(), &queue_id("billing"), &site("north"), 1_200, 500);
    assert_eq!(candidates[0].verdict, Err(OverflowSkip::IsOrigin));
    assert_eq!(candidates[1].verdict.as_ref().unwrap().score_ms, 5_000);
}

#[test]
fn overflow_skips_stale_draining_and_agentless_sites() {
    let mut f = Fixture::new();
    f.with_overflow(&[("south", 0), ("east", 0)]);
    f.summary("south", 1_000, 3, 0);
    f.summary("east", 1_000, 0, 0);
    let best = |f: &Fixture, now| {
        f.state
            .best_overflow_site(&tenant(), &queue_id("billing"), &site("north"), now, 500)
    };
    assert_eq!(best(&f, 1_500).unwrap().site, site("south"));
    assert_eq!(best(&f, 1_501), None, "south's summary is stale by then");
    f.status("south", SiteStatus::Draining);
    assert_eq!(best(&f, 1_200), None);
    let c =
        f.state
            .overflow_candidates(&tenant(), &queue_id("billing"), &site("north"), 1_200, 500);
    assert_eq!(
        c[0].verdict,
        Err(OverflowSkip::NotActive(SiteStatus::Draining))
    );
    assert_eq!(c[1].verdict, Err(OverflowSkip::NoReadyAgents));
}

#[test]
fn overflow_ties_go_to_more_ready_agents_then_policy_order() {
    let mut f = Fixture::new();
    f.with_overflow(&[("south", 0), ("east", 0)]);
    f.summary("south", 1_000, 1, 0);
    f.summary("east", 1_000, 1, 0);
    let best = |f: &Fixture| {
        f.state
            .best_overflow_site(&tenant(), &queue_id("billing"), &site("north"), 1_000, 500)
            .unwrap()
            .site
    };
    assert_eq!(best(&f), site("south"));
    f.summary("east", 1_000, 2, 0);
    assert_eq!(best(&f), site("east"));
}

#[test]
fn the_overflow_trigger_fires_on_either_condition() {
    let p = OverflowPolicy {
        after_wait_secs: Some(30),
        expected_wait_above_secs: Some(60),
        targets: vec![],
    };
    assert!(!p.triggered(29_999, 60_000));
    assert!(p.triggered(30_000, 0));
    assert!(p.triggered(0, 60_001));
}

// === promises ===

#[test]
fn a_promise_goes_pending_claimed_completed_and_a_second_completion_is_refused() {
    let mut f = Fixture::new();
    let id = f.create_promise("north");
    assert_eq!(
        id,
        PromiseId {
            index: f.index,
            slot: 0
        }
    );
    f.ok(Command::ClaimPromise {
        id,
        site: site("north"),
        at_ms: 20,
    });
    let complete = Command::CompletePromise {
        id,
        site: site("north"),
        outcome: PromiseOutcome::Handled,
        at_ms: 30,
    };
    f.ok(complete.clone());
    let r = f.refused(complete);
    assert!(
        matches!(r, Refusal::AlreadyCompleted { at_ms: 30, .. }),
        "{r}"
    );
}

#[test]
fn only_the_owner_may_claim_and_only_the_claimer_may_complete() {
    let mut f = Fixture::new();
    let id = f.create_promise("north");
    let r = f.refused(Command::ClaimPromise {
        id,
        site: site("south"),
        at_ms: 20,
    });
    assert!(matches!(r, Refusal::NotOwner { .. }), "{r}");
    let r = f.refused(Command::CompletePromise {
        id,
        site: site("north"),
        outcome: PromiseOutcome::Handled,
        at_ms: 20,
    });
    assert!(r.to_string().contains("is pending"), "{r}");
    f.ok(Command::ClaimPromise {
        id,
        site: site("north"),
        at_ms: 20,
    });
    let r = f.refused(Command::CompletePromise {
        id,
        site: site("south"),
        outcome: PromiseOutcome::Handled,
        at_ms: 21,
    });
    assert!(r.to_string().contains("claimed by north"), "{r}");
    f.ok(Command::ReleasePromise {
        id,
        site: site("north"),
        at_ms: 22,
    });
    assert_eq!(f.state.promise(&id).unwrap().attempts, 1);
    assert_eq!(f.state.promise(&id).unwrap().state, PromiseState::Pending);
}

#[test]
fn a_draining_site_takes_no_new_promises_but_works_off_its_own() {
    let mut f = Fixture::new();
    let id = f.create_promise("north");
    f.status("north", SiteStatus::Draining);
    let r = f.refused(Command::CreatePromise(Box::new(NewPromise {
        site: site("north"),
        kind: PromiseKind::Voicemail,
        tenant: tenant(),
        queue: queue_id("billing"),
        customer: "x".into(),
        note: "rec-1".into(),
        contact: None,
        at_ms: 1,
    })));
    assert_eq!(
        r.to_string(),
        "site \"north\" is draining and may not take new promises"
    );
    f.ok(Command::ClaimPromise {
        id,
        site: site("north"),
        at_ms: 20,
    });
}

#[test]
fn a_down_site_may_not_claim_or_complete_and_a_survivor_takes_over() {
    let mut f = Fixture::new();
    let pending = f.create_promise("north");
    let claimed = f.create_promise("north");
    f.ok(Command::ClaimPromise {
        id: claimed,
        site: site("north"),
        at_ms: 20,
    });
    let r = f.refused(Command::TakeOverPromise {
        id: pending,
        site: site("south"),
        at_ms: 25,
    });
    assert!(
        matches!(
            r,
            Refusal::OwnerNotDown {
                status: SiteStatus::Active,
                ..
            }
        ),
        "{r}"
    );
    f.status("north", SiteStatus::Down);
    let r = f.refused(Command::ClaimPromise {
        id: pending,
        site: site("north"),
        at_ms: 101,
    });
    assert!(matches!(r, Refusal::SiteUnavailable { .. }), "{r}");
    let r = f.refused(Command::CompletePromise {
        id: claimed,
        site: site("north"),
        outcome: PromiseOutcome::Handled,
        at_ms: 101,
    });
    assert!(matches!(r, Refusal::SiteUnavailable { .. }), "{r}");

    let ids: Vec<_> = f
        .state
        .promises_to_take_over(&site("south"))
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, vec![pending, claimed]);
    assert!(f.state.promises_to_take_over(&site("north")).is_empty());
    let take = |id, s: &str| Command::TakeOverPromise {
        id,
        site: site(s),
        at_ms: 110,
    };
    f.ok(Command::Batch(vec![
        take(pending, "south"),
        take(claimed, "south"),
    ]));
    let r = f.refused(take(claimed, "east"));
    assert!(
        matches!(r, Refusal::OwnerNotDown { .. }),
        "the first takeover wins: {r}"
    );
    let p = f.state.promise(&claimed).unwrap();
    assert_eq!(p.owner, site("south"));
    assert_eq!(p.state, PromiseState::Pending);
    assert_eq!(p.handovers.len(), 1);

    // The old owner comes back: it no longer owns nor holds the claim.
    f.status("north", SiteStatus::Active);
    let r = f.refused(Command::CompletePromise {
        id: claimed,
        site: site("north"),
        outcome: PromiseOutcome::Handled,
        at_ms: 200,
    });
    assert!(matches!(r, Refusal::PromiseState { .. }), "{r}");
    assert!(f.state.promises_to_take_over(&site("south")).is_empty());
}

#[test]
fn completed_promises_are_pruned_and_open_ones_kept() {
    let mut f = Fixture::new();
    let done = f.create_promise("north");
    let open = f.create_promise("north");
    f.ok(Command::ClaimPromise {
        id: done,
        site: site("north"),
        at_ms: 20,
    });
    f.ok(Command::CompletePromise {
        id: done,
        site: site("north"),
        outcome: PromiseOutcome::Unreachable,
        at_ms: 30,
    });
    assert_eq!(
        f.ok(Command::PrunePromises {
            completed_before_ms: 30
        }),
        Response::Removed { count: 0 }
    );
    assert_eq!(
        f.ok(Command::PrunePromises {
            completed_before_ms: 31
        }),
        Response::Removed { count: 1 }
    );
    assert!(f.state.promise(&done).is_none());
    assert!(f.state.promise(&open).is_some());
}

// === batches ===

#[test]
fn a_batch_applies_all_or_none_and_names_the_refused_command() {
    let mut f = Fixture::new();
    let before = f.state.clone();
    let r = f.apply(Command::Batch(vec![
        Command::AddSkill {
            tenant: tenant(),
            skill: skill("french"),
        },
        Command::AddSkill {
            tenant: tenant(),
            skill: skill("french"),
        },
    ]));
    assert_eq!(f.state, before);
    let Response::Refused(Refusal::InBatch {
        position, command, ..
    }) = &r
    else {
        panic!("{r:?}")
    };
    assert_eq!((*position, command.as_str()), (1, "add_skill"));
    assert!(r.refusal().unwrap().to_string().contains("already exists"));
}

#[test]
fn promises_created_in_one_batch_get_consecutive_slots() {
    let mut f = Fixture::new();
    let new = NewPromise {
        site: site("north"),
        kind: PromiseKind::Callback,
        tenant: tenant(),
        queue: queue_id("billing"),
        customer: "c".into(),
        note: String::new(),
        contact: None,
        at_ms: 1,
    };
    let r = f.ok(Command::Batch(vec![
        Command::CreatePromise(Box::new(new.clone())),
        Command::Batch(vec![Command::CreatePromise(Box::new(new))]),
    ]));
    let index = f.index;
    assert_eq!(
        r,
        Response::Batch(vec![
            Response::Created {
                id: PromiseId { index, slot: 0 }
            },
            Response::Batch(vec![Response::Created {
                id: PromiseId { index, slot: 1 }
            }]),
        ])
    );
    assert_eq!(f.state.applied, index);
}

#[test]
fn a_refused_command_does_not_move_applied() {
    let mut f = Fixture::new();
    let applied = f.state.applied;
    f.refused(Command::RemoveSite { id: site("mars") });
    assert_eq!(f.state.applied, applied);
    f.ok(Command::Noop);
    assert_eq!(f.state.applied, f.index);
}

// === serde ===

#[test]
fn the_state_round_trips_through_postcard_and_json() {
    let mut f = Fixture::new();
    f.with_overflow(&[("south", 10)]);
    f.summary("south", 5, 1, 2);
    let id = f.create_promise("north");
    f.ok(Command::ClaimPromise {
        id,
        site: site("north"),
        at_ms: 20,
    });
    f.ok(Command::PublishFlow {
        tenant: tenant(),
        name: "main".into(),
        body: "你好".into(),
        make_current: true,
        at_ms: 1,
    });
    let bytes = postcard::to_allocvec(&f.state).unwrap();
    assert_eq!(
        postcard::from_bytes::<RoutingState>(&bytes).unwrap(),
        f.state
    );
    let json = serde_json::to_string(&f.state).unwrap();
    assert_eq!(
        serde_json::from_str::<RoutingState>(&json).unwrap(),
        f.state
    );
    assert!(
        json.contains(&format!("\"{id}\"")),
        "promise ids key JSON objects"
    );
}

#[test]
fn promise_ids_read_and_write_as_index_dot_slot() {
    let id: PromiseId = "1042.3".parse().unwrap();
    assert_eq!(
        id,
        PromiseId {
            index: 1042,
            slot: 3
        }
    );
    assert_eq!(id.to_string(), "1042.3");
    for bad in ["", "1042", "1042.", ".3", "a.b", "1.2.3", "-1.0"] {
        assert!(bad.parse::<PromiseId>().is_err(), "{bad}");
    }
}

#[test]
fn command_kinds_display_as_short_names() {
    assert_eq!(Command::Noop.to_string(), "noop");
    assert_eq!(
        Command::RemoveSite { id: site("x") }.to_string(),
        "remove_site"
    );
}

// === membership ===

fn set(ids: &[u64]) -> BTreeSet<u64> {
    ids.iter().copied().collect()
}

#[test]
fn membership_change_to_no_voters_is_refused() {
    assert_eq!(
        check_membership_change(&set(&[1, 2, 3]), &set(&[]), &set(&[])),
        Err(Refusal::NoVoters)
    );
}

#[test]
fn two_voters_without_a_witness_are_refused_with_advice() {
    let r = check_membership_change(&set(&[1]), &set(&[]), &set(&[1, 2])).unwrap_err();
    assert!(r.to_string().contains("add a witness"), "{r}");
    assert!(check_membership_change(&set(&[1]), &set(&[]), &set(&[1, 2, 3])).is_ok());
    assert!(check_membership_change(&set(&[]), &set(&[]), &set(&[1])).is_ok());
}

#[test]
fn membership_change_needs_a_reachable_majority_of_both_sets() {
    // Replacing a lost voter 3 by 4 while 1 and 2 are up: fine.
    assert!(check_membership_change(&set(&[1, 2, 3]), &set(&[3]), &set(&[1, 2, 4])).is_ok());
    // Two of three current voters down: the change cannot commit.
    let r = check_membership_change(&set(&[1, 2, 3]), &set(&[2, 3]), &set(&[1, 4, 5])).unwrap_err();
    assert_eq!(
        r,
        Refusal::NoMajority {
            which: "current".into(),
            voters: vec![1, 2, 3],
            reachable: 1,
            needed: 2
        }
    );
    // Adding two voters that are down: the proposed set would have 3 of 5, fine; 4
    // down of 5 is not.
    assert!(
        check_membership_change(&set(&[1, 2, 3]), &set(&[4, 5]), &set(&[1, 2, 3, 4, 5])).is_ok()
    );
    let r = check_membership_change(&set(&[1, 2, 3]), &set(&[3, 4, 5]), &set(&[1, 2, 3, 4, 5]))
        .unwrap_err();
    assert!(
        matches!(r, Refusal::NoMajority { ref which, reachable: 2, needed: 3, .. } if which == "proposed"),
        "{r}"
    );
}
