//! Where a waiting contact should overflow to: a pure read of the local replica (a few
//! hundred milliseconds stale is fine; the target site confirms with a reservation).
//!
//! # Scoring
//!
//! Among the queue's policy targets, a site is a **candidate** when it is not the
//! contact's own site, is `Active`, published a summary no older than
//! `max_staleness_ms` (`now_ms - at_ms`, saturating at 0 for a clock ahead of ours), and
//! that summary has a row for the queue with `ready > 0` (ready agents who meet every
//! requirement of the queue). Each candidate scores
//!
//! ```text
//! score_ms = expected_wait_ms (the target's, for this queue) + penalty_ms (the policy's weight)
//! ```
//!
//! Lowest score wins; ties go to more ready agents, then to the earlier target in the
//! policy (the administrator's order of preference). All integers, so every site picks
//! the same site from the same state.

use std::cmp::Reverse;

use hotline_core::ids::{QueueId, SiteId, TenantId};

use super::RoutingState;
use super::config::SiteStatus;

/// The site a contact should overflow to, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverflowChoice {
    /// The target site.
    pub site: SiteId,
    /// `expected_wait_ms + penalty_ms`; lower is better.
    pub score_ms: u64,
    /// The target's expected wait for the queue.
    pub expected_wait_ms: u64,
    /// The policy's weight for that site.
    pub penalty_ms: u32,
    /// Ready agents there who meet the queue's requirements.
    pub ready: u32,
    /// How old the target's summary was.
    pub summary_age_ms: u64,
    /// One line for logs and traces.
    pub reason: String,
}

/// Why a policy target was not a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverflowSkip {
    /// It is the contact's own site.
    IsOrigin,
    /// It is draining or down.
    NotActive(SiteStatus),
    /// It has published no summary (or is unknown).
    NoSummary,
    /// Its summary is older than allowed.
    Stale {
        /// How old it is.
        age_ms: u64,
    },
    /// Its summary has no row for the queue: it serves no agent of it.
    QueueNotServed,
    /// No ready agent there meets the queue's requirements.
    NoReadyAgents,
}

/// One target of the policy, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverflowCandidate {
    /// The target site.
    pub site: SiteId,
    /// Its score, or why it was skipped.
    pub verdict: Result<OverflowChoice, OverflowSkip>,
}

impl RoutingState {
    /// Every target of the queue's overflow policy, in policy order, with its score or
    /// the reason it was skipped: what `hotline ops` shows when asked why a contact did
    /// or did not overflow. Empty if the queue is unknown or has no policy.
    pub fn overflow_candidates(
        &self,
        tenant: &TenantId,
        queue: &QueueId,
        from_site: &SiteId,
        now_ms: u64,
        max_staleness_ms: u64,
    ) -> Vec<OverflowCandidate> {
        let Some(policy) = self.queue(tenant, queue).and_then(|q| q.overflow.as_ref()) else {
            return vec![];
        };
        policy
            .targets
            .iter()
            .map(|target| {
                let verdict = (|| {
                    if &target.site == from_site {
                        return Err(OverflowSkip::IsOrigin);
                    }
                    let site = self.site(&target.site).ok_or(OverflowSkip::NoSummary)?;
                    if site.status != SiteStatus::Active {
                        return Err(OverflowSkip::NotActive(site.status));
                    }
                    let summary = self.summary(&target.site).ok_or(OverflowSkip::NoSummary)?;
                    let age_ms = now_ms.saturating_sub(summary.at_ms);
                    if age_ms > max_staleness_ms {
                        return Err(OverflowSkip::Stale { age_ms });
                    }
                    let row = summary
                        .queue(tenant, queue)
                        .ok_or(OverflowSkip::QueueNotServed)?;
                    if row.ready == 0 {
                        return Err(OverflowSkip::NoReadyAgents);
                    }
                    let score_ms = row
                        .expected_wait_ms
                        .saturating_add(u64::from(target.penalty_ms));
                    Ok(OverflowChoice {
                        site: target.site.clone(),
                        score_ms,
                        expected_wait_ms: row.expected_wait_ms,
                        penalty_ms: target.penalty_ms,
                        ready: row.ready,
                        summary_age_ms: age_ms,
                        reason: format!(
                            "site {}: expected wait {} ms + penalty {} ms = {score_ms}, {} ready, summary {age_ms} ms old",
                            target.site, row.expected_wait_ms, target.penalty_ms, row.ready
                        ),
                    })
                })();
                OverflowCandidate {
                    site: target.site.clone(),
                    verdict,
                }
            })
            .collect()
    }

    /// The best site to overflow a contact of `tenant`/`queue` waiting at `from_site`
    /// to, by the scoring in this module's documentation; `None` when no target
    /// qualifies (the contact stays where it is).
    pub fn best_overflow_site(
        &self,
        tenant: &TenantId,
        queue: &QueueId,
        from_site: &SiteId,
        now_ms: u64,
        max_staleness_ms: u64,
    ) -> Option<OverflowChoice> {
        self.overflow_candidates(tenant, queue, from_site, now_ms, max_staleness_ms)
            .into_iter()
            .enumerate()
            .filter_map(|(i, c)| c.verdict.ok().map(|choice| (i, choice)))
            .min_by_key(|(i, c)| (c.score_ms, Reverse(c.ready), *i))
            .map(|(_, c)| c)
    }
}
