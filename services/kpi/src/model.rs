//! The shapes KPI answers in: figures that name their definition, the real-time view,
//! and interval rows. Shared by the engine (which fills them), the store (which keeps
//! interval rows) and the HTTP API, `/metrics` and the wallboard (which serve them).
//!
//! Every figure carries the id and version of the definition it was computed with
//! (`services/kpi/DEFINITIONS.md` writes each one out), so two numbers with the same
//! name but different rules can never be confused.

use serde::{Deserialize, Serialize};

/// One computed figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// What it is, e.g. `service_level`, `asa_secs`, `abandon_rate`.
    pub name: String,
    /// Its value; `None` when undefined (nothing to divide by).
    pub value: Option<f64>,
    /// The definition it was computed with, e.g. `sl.abandons_in_denominator`.
    pub definition: String,
    /// The version of that definition.
    pub version: u32,
}

/// The length of a reporting interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalLength {
    /// 15 minutes.
    Min15,
    /// One hour.
    Hour,
    /// One day (UTC days until tenant time zones arrive with business hours).
    Day,
}

impl IntervalLength {
    /// Every length, shortest first.
    pub const ALL: [IntervalLength; 3] = [
        IntervalLength::Min15,
        IntervalLength::Hour,
        IntervalLength::Day,
    ];

    /// Its length in milliseconds.
    pub const fn millis(self) -> u64 {
        match self {
            IntervalLength::Min15 => 15 * 60 * 1000,
            IntervalLength::Hour => 3600 * 1000,
            IntervalLength::Day => 24 * 3600 * 1000,
        }
    }

    /// The name used in the API and the store: `15m`, `1h`, `1d`.
    pub const fn name(self) -> &'static str {
        match self {
            IntervalLength::Min15 => "15m",
            IntervalLength::Hour => "1h",
            IntervalLength::Day => "1d",
        }
    }

    /// The length named `15m`, `1h` or `1d`.
    pub fn parse(name: &str) -> Option<Self> {
        IntervalLength::ALL.into_iter().find(|l| l.name() == name)
    }
}

/// What an interval row is about, within its tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum Dimension {
    /// The whole tenant.
    Tenant,
    /// One queue.
    Queue(String),
    /// One site.
    Site(String),
    /// One agent.
    Agent(String),
}

/// The kind of a [`Dimension`], without its id: what a query selects ("every queue").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DimensionKind {
    /// The whole tenant.
    Tenant,
    /// Queues.
    Queue,
    /// Sites.
    Site,
    /// Agents.
    Agent,
}

impl DimensionKind {
    /// The name used in the API and the store: `tenant`, `queue`, `site`, `agent`.
    pub const fn name(self) -> &'static str {
        match self {
            DimensionKind::Tenant => "tenant",
            DimensionKind::Queue => "queue",
            DimensionKind::Site => "site",
            DimensionKind::Agent => "agent",
        }
    }

    /// The kind named `tenant`, `queue`, `site` or `agent`.
    pub fn parse(name: &str) -> Option<Self> {
        [
            DimensionKind::Tenant,
            DimensionKind::Queue,
            DimensionKind::Site,
            DimensionKind::Agent,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

impl Dimension {
    /// Its kind.
    pub fn kind(&self) -> DimensionKind {
        match self {
            Dimension::Tenant => DimensionKind::Tenant,
            Dimension::Queue(_) => DimensionKind::Queue,
            Dimension::Site(_) => DimensionKind::Site,
            Dimension::Agent(_) => DimensionKind::Agent,
        }
    }

    /// Its id within the kind (`""` for the tenant itself).
    pub fn id(&self) -> &str {
        match self {
            Dimension::Tenant => "",
            Dimension::Queue(id) | Dimension::Site(id) | Dimension::Agent(id) => id,
        }
    }

    /// The dimension of `kind` with `id` (the id is ignored for the tenant).
    pub fn from_parts(kind: DimensionKind, id: &str) -> Self {
        match kind {
            DimensionKind::Tenant => Dimension::Tenant,
            DimensionKind::Queue => Dimension::Queue(id.to_owned()),
            DimensionKind::Site => Dimension::Site(id.to_owned()),
            DimensionKind::Agent => Dimension::Agent(id.to_owned()),
        }
    }
}

/// Which row: tenant, dimension, interval length and start.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IntervalKey {
    /// The tenant.
    pub tenant: String,
    /// What the row is about.
    pub dimension: Dimension,
    /// The interval's length.
    pub length: IntervalLength,
    /// The interval's start, milliseconds since the Unix epoch (a multiple of the length).
    pub start_ms: u64,
}

/// The counters an interval row keeps. Every figure is computed from these, so rows
/// add up (an hour is the sum of its quarters) and can be recomputed from the log.
/// Contacts count in the interval in which they *arrived* (queued), times in the
/// interval in which they were spent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Contacts that entered a queue.
    pub offered: u64,
    /// Of those, answered by an agent.
    pub answered: u64,
    /// Of the answered, within the queue's service-level threshold.
    pub answered_within_sl: u64,
    /// Contacts whose customer left before an answer (short abandons included).
    pub abandoned: u64,
    /// Of those, abandoned within the short-abandon threshold.
    pub short_abandoned: u64,
    /// Of the abandoned, within the service-level threshold (for the variant that
    /// counts them as met).
    pub abandoned_within_sl: u64,
    /// Sum of waits of answered contacts, ms.
    pub answer_wait_ms: u64,
    /// Sum of waits of abandoned contacts, ms.
    pub abandon_wait_ms: u64,
    /// Contacts whose handling ended (wrap-up done).
    pub handled: u64,
    /// Sum of talk time of handled contacts, ms.
    pub talk_ms: u64,
    /// Sum of hold time of handled contacts, ms.
    pub hold_ms: u64,
    /// Sum of wrap-up time of handled contacts, ms.
    pub wrap_ms: u64,
    /// Contacts moved to another queue or site.
    pub overflowed: u64,
    /// Contacts transferred by an agent.
    pub transferred: u64,
    /// Contacts that ended in voicemail, callback request, or failure.
    pub other_exits: u64,
    /// Answered contacts of a known customer whose resolution window has passed.
    pub fcr_eligible: u64,
    /// Of those, with no repeat contact from the same customer within the window.
    pub fcr_resolved: u64,
    /// Agent time logged in, ms (agent and tenant rows; split across intervals).
    pub staffed_ms: u64,
    /// Agent time on contact or in wrap-up, ms.
    pub busy_ms: u64,
    /// Agent time reserved (ringing), ms.
    pub reserved_ms: u64,
    /// Agent time not ready, ms.
    pub not_ready_ms: u64,
    /// Answered contacts of a known customer whose resolution window is still open:
    /// while this is above zero the row's first-contact resolution is provisional.
    #[serde(default)]
    pub fcr_pending: u64,
}

/// One interval row: its key, its counters and the figures computed from them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalRow {
    /// Which row.
    pub key: IntervalKey,
    /// What was counted.
    pub counters: Counters,
    /// What was computed, each naming its definition.
    pub figures: Vec<Figure>,
}

/// Agents by their true state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentsByState {
    /// Ready for a contact.
    pub ready: u32,
    /// Being offered a contact (ringing).
    pub reserved: u32,
    /// In conversation.
    pub on_contact: u32,
    /// Wrapping up.
    pub wrap_up: u32,
    /// Not ready, counted per reason (`break`, `missed`, …), sorted by reason.
    pub not_ready: Vec<(String, u32)>,
}

/// One queue now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueNow {
    /// The site whose queue it is.
    pub site: String,
    /// The queue.
    pub queue: String,
    /// Contacts waiting (queued, not ringing).
    pub waiting: u32,
    /// Contacts being offered to an agent now.
    pub ringing: u32,
    /// How long the oldest waiting contact has waited, ms (0 when none waits).
    pub oldest_wait_ms: u64,
    /// Agents who served this queue's contacts today, by state now.
    pub agents: AgentsByState,
    /// Today's figures (the current day interval): at least `service_level`,
    /// `asa_secs`, `abandon_rate`, `offered`, `answered`, `abandoned`.
    pub today: Vec<Figure>,
}

/// One agent now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentNow {
    /// The agent.
    pub agent: String,
    /// The site where they are logged in.
    pub site: String,
    /// Their state's name (`ready`, `on_contact`, `not_ready`, …).
    pub state: String,
    /// The not-ready reason, when not ready.
    pub reason: Option<String>,
    /// Since when, ms since the Unix epoch.
    pub since_ms: u64,
}

/// A tenant's real-time view: what the wallboard shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealtimeSnapshot {
    /// The tenant.
    pub tenant: String,
    /// As of when, ms since the Unix epoch (the newest event applied, or the clock).
    pub at_ms: u64,
    /// Every queue that has seen a contact, sorted by site then queue.
    pub queues: Vec<QueueNow>,
    /// Agents by state across the tenant.
    pub agents: AgentsByState,
    /// Each logged-in agent, sorted by id.
    pub agent_list: Vec<AgentNow>,
}
