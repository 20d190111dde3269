//! Configuration the routing group agrees on: providers, tenants and their skills,
//! queues, business hours and IVR flows, agent profiles, sites.
//!
//! Shapes follow the ACD's site configuration (`hotline_acd::config`) field for field
//! where the ACD has the same notion, so a site can build its ACD configuration from the
//! routing state. Two deliberate differences: enums are externally tagged (the snapshot
//! is postcard, which cannot read internally tagged enums), and the service-level target
//! is a whole percentage (`sl_target_percent`) so the state stays `Eq` and hashes the
//! same on every replica.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use hotline_core::channel::{Capacity, Channel};
use hotline_core::ids::{AgentId, ProviderId, QueueId, SiteId, SkillId, TenantId};
use hotline_core::skill::{Skill, SkillRequirement};
use serde::{Deserialize, Serialize};

use super::error::{ItemKind, Refusal};

/// Longest display name, note or customer handle accepted, so one command cannot bloat
/// every replica's snapshot.
pub const MAX_TEXT_LEN: usize = 4096;
/// Longest IVR flow body accepted (every version is kept, on every replica).
pub const MAX_FLOW_BODY_LEN: usize = 256 * 1024;

/// An outsourcing company hosting tenants; agents and tenants may name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    /// Its id.
    pub id: ProviderId,
    /// A display name.
    #[serde(default)]
    pub name: String,
}

/// What adding a tenant carries: the tenant and its first skill catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSpec {
    /// Its id.
    pub id: TenantId,
    /// A display name.
    #[serde(default)]
    pub name: String,
    /// The provider hosting it, if any.
    #[serde(default)]
    pub provider: Option<ProviderId>,
    /// Skills its queues and agents may name; later changes go through `AddSkill`
    /// and `RemoveSkill`, which check references.
    #[serde(default)]
    pub skills: Vec<SkillId>,
}

/// A tenant and everything configured inside it. Items inside are keyed within the
/// tenant, so two tenants may both have a `billing` queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// A display name.
    pub name: String,
    /// The provider hosting it, if any.
    pub provider: Option<ProviderId>,
    /// The skill catalogue: every skill a queue or agent names must be here.
    pub skills: BTreeSet<SkillId>,
    /// Its queues.
    pub queues: BTreeMap<QueueId, Queue>,
    /// Its business-hours calendars, by id; queues name one.
    pub business_hours: BTreeMap<String, BusinessHours>,
    /// Its IVR flows, by name, every version kept.
    pub flows: BTreeMap<String, Flow>,
}

/// How a queue picks among several free agents (the ACD's `Strategy`, same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The agent idle the longest.
    #[default]
    LongestIdle,
    /// The highest proficiency in the queue's skills, ties by idle time.
    MostSkilled,
    /// Agents in turn.
    RoundRobin,
    /// The agent who has handled the fewest contacts, ties by idle time.
    FewestContacts,
    /// The agent with the lowest occupancy since login, ties by idle time.
    LeastOccupied,
}

/// What a queue does with a contact when a limit is reached (the ACD's `QueueAction`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueAction {
    /// Keep the contact where it is (only for "no agents logged in").
    Stay,
    /// Move it to another queue of the same tenant and channel; it keeps its age.
    Overflow {
        /// The target queue.
        queue: QueueId,
    },
    /// Offer the customer a callback that keeps their place in line.
    Callback,
    /// Send the customer to voicemail.
    Voicemail,
    /// End the contact.
    #[default]
    Disconnect,
}

/// One widening step of a queue's bullseye (the ACD's `ExpandStep`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpandStep {
    /// Seconds in the queue after which this step applies.
    pub after_secs: u32,
    /// Lower the minimum proficiency of one of the queue's skills.
    #[serde(default)]
    pub relax: Option<SkillRequirement>,
    /// Stop requiring one skill.
    #[serde(default)]
    pub drop: Option<SkillId>,
    /// Also accept agents with this alternative skill.
    #[serde(default)]
    pub add: Option<SkillRequirement>,
    /// Also accept every agent of another queue.
    #[serde(default)]
    pub widen_to: Option<QueueId>,
}

/// A queue: the ACD's `QueueConfig` plus what only the routing state knows (its
/// business hours and its cross-site overflow policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queue {
    /// The tenant owning it.
    pub tenant: TenantId,
    /// Its id within the tenant.
    pub id: QueueId,
    /// A display name.
    #[serde(default)]
    pub name: String,
    /// The channel it takes.
    pub channel: Channel,
    /// Skills an agent needs, each at a minimum proficiency (1–5).
    #[serde(default)]
    pub skills: Vec<SkillRequirement>,
    /// Contacts of higher-priority queues are served first (0–255).
    #[serde(default)]
    pub priority: u8,
    /// How a free agent is chosen.
    #[serde(default)]
    pub strategy: Strategy,
    /// Service-level threshold in seconds.
    pub sl_secs: u32,
    /// Service-level target in whole percent (0–100): 80 means 80% within `sl_secs`.
    pub sl_target_percent: u8,
    /// Wrap-up seconds after each contact.
    #[serde(default)]
    pub wrap_up_secs: u32,
    /// Ring time before an offer counts as missed (default: the site's).
    #[serde(default)]
    pub no_answer_secs: Option<u32>,
    /// Most contacts in the queue at once.
    #[serde(default)]
    pub max_size: Option<u32>,
    /// Longest wait in this queue before `on_max_wait` applies.
    #[serde(default)]
    pub max_wait_secs: Option<u32>,
    /// What happens at the maximum wait.
    #[serde(default)]
    pub on_max_wait: QueueAction,
    /// What happens to an arrival when the queue is full.
    #[serde(default)]
    pub when_full: QueueAction,
    /// What happens to an arrival when no agent who could serve it is logged in.
    pub when_no_agents: QueueAction,
    /// Bullseye expansion steps, in order of `after_secs`.
    #[serde(default)]
    pub expand: Vec<ExpandStep>,
    /// The tenant's business-hours calendar this queue follows (none: always open).
    #[serde(default)]
    pub business_hours: Option<String>,
    /// When and where a waiting contact may go to another site (none: never).
    #[serde(default)]
    pub overflow: Option<OverflowPolicy>,
}

impl Queue {
    /// A voice queue with every optional setting at the ACD's default (longest idle,
    /// 80% in 20 s, no limits, no overflow), for admin tools and tests.
    pub fn new(tenant: TenantId, id: QueueId, skills: Vec<SkillRequirement>) -> Self {
        Queue {
            tenant,
            id,
            name: String::new(),
            channel: Channel::Voice,
            skills,
            priority: 0,
            strategy: Strategy::LongestIdle,
            sl_secs: 20,
            sl_target_percent: 80,
            wrap_up_secs: 0,
            no_answer_secs: None,
            max_size: None,
            max_wait_secs: None,
            on_max_wait: QueueAction::Disconnect,
            when_full: QueueAction::Disconnect,
            when_no_agents: QueueAction::Stay,
            expand: vec![],
            business_hours: None,
            overflow: None,
        }
    }

    /// Every queue of the same tenant this one names (overflow actions, bullseye
    /// widening), so removal and channel changes can check references.
    pub fn queue_references(&self) -> impl Iterator<Item = &QueueId> {
        [&self.on_max_wait, &self.when_full, &self.when_no_agents]
            .into_iter()
            .filter_map(|a| match a {
                QueueAction::Overflow { queue } => Some(queue),
                _ => None,
            })
            .chain(self.expand.iter().filter_map(|s| s.widen_to.as_ref()))
    }

    /// Every skill this queue names (requirements and bullseye steps).
    pub fn skill_references(&self) -> impl Iterator<Item = &SkillId> {
        self.skills
            .iter()
            .map(|r| &r.skill)
            .chain(self.expand.iter().flat_map(|s| {
                [
                    s.relax.as_ref().map(|r| &r.skill),
                    s.drop.as_ref(),
                    s.add.as_ref().map(|r| &r.skill),
                ]
                .into_iter()
                .flatten()
            }))
    }
}

/// When a waiting contact may leave for another site, and which sites it may go to.
///
/// The site evaluates [`triggered`](Self::triggered) for each waiting contact; when it
/// fires, it asks [`RoutingState::best_overflow_site`](super::RoutingState::best_overflow_site)
/// where to go and starts the reserve/transfer handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverflowPolicy {
    /// Overflow once a contact has waited this long (seconds).
    #[serde(default)]
    pub after_wait_secs: Option<u32>,
    /// Overflow while the local expected wait for the queue exceeds this (seconds).
    #[serde(default)]
    pub expected_wait_above_secs: Option<u32>,
    /// Sites the contact may go to, in order of preference (ties go to the earlier one).
    pub targets: Vec<OverflowTarget>,
}

impl OverflowPolicy {
    /// Whether a contact that has waited `waited_ms`, in a queue whose local expected
    /// wait is `local_expected_wait_ms`, should look for another site: either trigger
    /// that is set and reached fires it (they are alternatives, not both required).
    pub fn triggered(&self, waited_ms: u64, local_expected_wait_ms: u64) -> bool {
        let waited = self
            .after_wait_secs
            .is_some_and(|s| waited_ms >= u64::from(s) * 1000);
        let expected = self
            .expected_wait_above_secs
            .is_some_and(|s| local_expected_wait_ms > u64::from(s) * 1000);
        waited || expected
    }
}

/// One site a queue may overflow to, with what sending a contact there costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverflowTarget {
    /// The site (must exist).
    pub site: SiteId,
    /// Latency/cost weight, as milliseconds of wait it is worth to avoid this site:
    /// added to the site's expected wait when choosing (0 = as good as local).
    #[serde(default)]
    pub penalty_ms: u32,
}

/// A day of the week, for business hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weekday {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

/// One weekly open interval in the calendar's local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenInterval {
    /// The day.
    pub day: Weekday,
    /// Minutes after local midnight when it opens (0–1439).
    pub opens_min: u16,
    /// Minutes after local midnight when it closes (after `opens_min`, at most 1440).
    pub closes_min: u16,
}

/// When a tenant's queues are open. Stored, validated and replicated here; evaluated by
/// the site, which has a time-zone database (this crate stays pure and clock-free).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessHours {
    /// The tenant.
    pub tenant: TenantId,
    /// Its id within the tenant, named by queues.
    pub id: String,
    /// IANA time-zone name (`Asia/Shanghai`, `Europe/Paris`, `UTC`).
    pub tz: String,
    /// Weekly open intervals; none overlap on the same day.
    pub open: Vec<OpenInterval>,
    /// Closed all day on these local dates, `YYYY-MM-DD`.
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// One IVR flow of a tenant: every version ever published, and which one runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// Every version, oldest first; version numbers are 1, 2, 3… with no gaps.
    pub versions: Vec<FlowVersion>,
    /// The version new contacts enter (rollback points it at an older one).
    pub current: u32,
}

impl Flow {
    /// The version new contacts enter.
    pub fn current(&self) -> &FlowVersion {
        self.version(self.current)
            .expect("current always names a published version")
    }

    /// One published version.
    pub fn version(&self, version: u32) -> Option<&FlowVersion> {
        let i = usize::try_from(version.checked_sub(1)?).ok()?;
        self.versions.get(i)
    }
}

/// One published version of an IVR flow; its body is the IVR's flow document, opaque here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowVersion {
    /// Its number, from 1, increasing per tenant and flow name.
    pub version: u32,
    /// The flow document.
    pub body: String,
    /// When it was published.
    pub published_at_ms: u64,
}

/// The skills an agent has for one tenant (the ACD's `ServesConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Serves {
    /// The tenant.
    pub tenant: TenantId,
    /// Skills for that tenant's queues, each at a proficiency (1–5).
    #[serde(default)]
    pub skills: Vec<Skill>,
}

/// An agent's profile (the ACD's `AgentConfig`): who they are and whom they serve.
/// Where they are logged in is [`AgentLocation`], kept apart because it changes all day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentProfile {
    /// The agent's id, unique in the installation.
    pub id: AgentId,
    /// A display name.
    #[serde(default)]
    pub name: String,
    /// The provider employing the agent, if any.
    #[serde(default)]
    pub provider: Option<ProviderId>,
    /// Contacts per channel at once.
    #[serde(default)]
    pub capacity: Capacity,
    /// Missed offers in a row before not ready (default: the site's).
    #[serde(default)]
    pub max_missed: Option<u32>,
    /// Tenants served, with skills for each.
    pub serves: Vec<Serves>,
}

impl AgentProfile {
    /// A voice agent serving one tenant with `skills`, for admin tools and tests.
    pub fn new(id: AgentId, tenant: TenantId, skills: Vec<Skill>) -> Self {
        AgentProfile {
            id,
            name: String::new(),
            provider: None,
            capacity: Capacity::default(),
            max_missed: None,
            serves: vec![Serves { tenant, skills }],
        }
    }
}

/// Where an agent is: their actor lives at the site where they logged in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentLocation {
    /// Logged in at `site` since `since_ms`.
    LoggedIn {
        /// The site hosting the agent's actor.
        site: SiteId,
        /// When they logged in.
        since_ms: u64,
    },
    /// Logged out (or their site went down) at `since_ms`.
    LoggedOut {
        /// When.
        since_ms: u64,
    },
}

/// A site's health as the routing group sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteStatus {
    /// Serving: takes contacts, overflow and new promises.
    Active,
    /// Finishing its work before maintenance: takes no overflow and no new promises, but
    /// still works off (claims, completes) its own.
    Draining,
    /// Gone: its agents are logged out, it may not claim or complete, and its open
    /// promises may be taken over by an active site.
    Down,
}

impl fmt::Display for SiteStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SiteStatus::Active => "active",
            SiteStatus::Draining => "draining",
            SiteStatus::Down => "down",
        })
    }
}

/// A site of the install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// Its id.
    pub id: SiteId,
    /// A display name.
    pub name: String,
    /// The Raft node id of its routing replica, so `hotline ops` can map votes to sites.
    pub node_id: u64,
    /// Its health.
    pub status: SiteStatus,
    /// When it entered that status.
    pub since_ms: u64,
}

// === validation helpers ===

/// Checks a name that has no typed id in `hotline_core` (business hours, flows) with the
/// same rule as the typed ids: 1–64 characters of `[A-Za-z0-9_.-]`.
pub(crate) fn check_name(owner: &str, kind: ItemKind, value: &str) -> Result<(), Refusal> {
    let ok = !value.is_empty()
        && value.len() <= hotline_core::ids::MAX_NAME_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            owner,
            format!(
                "{kind} name {value:?} must be 1-64 characters of ASCII letters, digits, '_', '-' and '.'"
            ),
        ))
    }
}

/// Checks free text against [`MAX_TEXT_LEN`].
pub(crate) fn check_text(owner: &str, field: &str, value: &str) -> Result<(), Refusal> {
    if value.len() > MAX_TEXT_LEN {
        return Err(invalid(
            owner,
            format!(
                "{field} is {} bytes; at most {MAX_TEXT_LEN} are accepted",
                value.len()
            ),
        ));
    }
    Ok(())
}

/// Checks the shape of an IANA zone name (`Area/Location`, `UTC`); whether the zone
/// exists is the site's business, since this crate carries no zone database.
pub(crate) fn check_tz(owner: &str, tz: &str) -> Result<(), Refusal> {
    let ok = !tz.is_empty()
        && tz.len() <= 64
        && !tz.starts_with('/')
        && !tz.ends_with('/')
        && !tz.contains("//")
        && tz
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            owner,
            format!("tz {tz:?} is not an IANA time-zone name such as \"Asia/Shanghai\" or \"UTC\""),
        ))
    }
}

/// Checks a `YYYY-MM-DD` calendar date (leap years included).
pub(crate) fn check_date(owner: &str, date: &str) -> Result<(), Refusal> {
    let bad = || {
        Err(invalid(
            owner,
            format!("holiday {date:?} is not a date written YYYY-MM-DD"),
        ))
    };
    let b = date.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return bad();
    }
    let num = |s: &str| {
        s.parse::<u32>()
            .ok()
            .filter(|_| s.bytes().all(|c| c.is_ascii_digit()))
    };
    let (Some(y), Some(m), Some(d)) = (num(&date[0..4]), num(&date[5..7]), num(&date[8..10]))
    else {
        return bad();
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return bad(),
    };
    if d == 0 || d > days {
        return bad();
    }
    Ok(())
}

pub(crate) fn invalid(owner: &str, message: String) -> Refusal {
    Refusal::Invalid {
        owner: owner.to_owned(),
        message,
    }
}

pub(crate) fn unknown(owner: &str, kind: ItemKind, id: impl ToString) -> Refusal {
    Refusal::Unknown {
        owner: owner.to_owned(),
        kind,
        id: id.to_string(),
    }
}

pub(crate) fn duplicate(kind: ItemKind, id: impl ToString) -> Refusal {
    Refusal::Duplicate {
        kind,
        id: id.to_string(),
    }
}

pub(crate) fn referenced(kind: ItemKind, id: impl ToString, by: impl ToString) -> Refusal {
    Refusal::StillReferenced {
        kind,
        id: id.to_string(),
        by: by.to_string(),
    }
}
