//! Durable promises: callbacks and voicemails a customer was promised, kept in the
//! routing state so that no site's death loses them and none is done twice.
//!
//! # Rules
//!
//! - A promise is created by an **active** site, which becomes its owner (a draining or
//!   down site takes no new promises).
//! - Only the **owner** may claim it (`Pending → Claimed`), and not while it is down.
//! - Only the **claimer** may release it (`Claimed → Pending`, attempts + 1) or complete
//!   it (`Claimed → Completed`), and not while it is down.
//! - A completed promise never changes again: a second completion is refused.
//! - When the owner is **down**, any **active** site may take an open (pending or
//!   claimed) promise over: it becomes the owner and the promise is pending again.
//!   The first takeover wins; a second finds the owner active and is refused.

use std::fmt;
use std::str::FromStr;

use hotline_core::ids::{ContactId, QueueId, SiteId, TenantId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A promise's id, derived from the Raft log index of the command that created it (and
/// its position among the promises created by that entry, for batches), so every
/// replica assigns the same id without a counter or randomness.
///
/// Written `index.slot` (`1042.0`), as a string in JSON and postcard alike, so it can key
/// a JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PromiseId {
    /// The log index of the creating command.
    pub index: u64,
    /// Its position among the promises that command created, from 0.
    pub slot: u32,
}

impl fmt::Display for PromiseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.index, self.slot)
    }
}

/// A text that is not `index.slot`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid promise id {0:?}: write it index.slot, e.g. 1042.0")]
pub struct InvalidPromiseId(pub String);

impl FromStr for PromiseId {
    type Err = InvalidPromiseId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || InvalidPromiseId(s.to_owned());
        let (i, n) = s.split_once('.').ok_or_else(bad)?;
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(i) || !digits(n) {
            return Err(bad());
        }
        Ok(PromiseId {
            index: i.parse().map_err(|_| bad())?,
            slot: n.parse().map_err(|_| bad())?,
        })
    }
}

impl Serialize for PromiseId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PromiseId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What was promised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromiseKind {
    /// Call the customer back.
    Callback,
    /// Listen to the customer's voicemail and act on it.
    Voicemail,
}

/// How a completed promise ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromiseOutcome {
    /// Done: the customer was called back, or the voicemail was handled.
    Handled,
    /// The customer could not be reached and no further attempt will be made.
    Unreachable,
    /// The customer (or a supervisor) cancelled it.
    Cancelled,
}

/// Where a promise is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PromiseState {
    /// Waiting for its owner to claim it.
    Pending,
    /// An agent of `site` is working on it.
    Claimed {
        /// The claiming site (always the owner).
        site: SiteId,
        /// When.
        at_ms: u64,
    },
    /// Done, once and for all.
    Completed {
        /// The site that completed it.
        site: SiteId,
        /// When.
        at_ms: u64,
        /// How it ended.
        outcome: PromiseOutcome,
    },
}

impl PromiseState {
    /// Whether it still needs work (pending or claimed).
    pub fn is_open(&self) -> bool {
        !matches!(self, PromiseState::Completed { .. })
    }
}

impl fmt::Display for PromiseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PromiseState::Pending => f.write_str("pending"),
            PromiseState::Claimed { site, at_ms } => write!(f, "claimed by {site} at {at_ms} ms"),
            PromiseState::Completed { site, at_ms, .. } => {
                write!(f, "completed by {site} at {at_ms} ms")
            }
        }
    }
}

/// What a site asks for when it creates a promise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPromise {
    /// The creating site, which becomes the owner (must be active).
    pub site: SiteId,
    /// Callback or voicemail.
    pub kind: PromiseKind,
    /// The tenant.
    pub tenant: TenantId,
    /// The queue whose agents will do it.
    pub queue: QueueId,
    /// Whom to call back: a number or a channel handle (non-empty).
    pub customer: String,
    /// A note, or the recording's reference for a voicemail.
    #[serde(default)]
    pub note: String,
    /// The contact it came from, if any, so events and KPI can join them.
    #[serde(default)]
    pub contact: Option<ContactId>,
    /// When the customer asked.
    pub at_ms: u64,
}

/// One change of owner after the previous owner went down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    /// The down owner.
    pub from: SiteId,
    /// The survivor.
    pub to: SiteId,
    /// When.
    pub at_ms: u64,
}

/// A durable promise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promise {
    /// Its id.
    pub id: PromiseId,
    /// Callback or voicemail.
    pub kind: PromiseKind,
    /// The tenant (every row carries one).
    pub tenant: TenantId,
    /// The queue whose agents do it.
    pub queue: QueueId,
    /// Whom to call back.
    pub customer: String,
    /// A note or recording reference.
    pub note: String,
    /// The contact it came from.
    pub contact: Option<ContactId>,
    /// When the customer asked.
    pub created_at_ms: u64,
    /// The site that created it.
    pub created_by: SiteId,
    /// The site responsible for it now.
    pub owner: SiteId,
    /// Where it is in its life.
    pub state: PromiseState,
    /// How many claims were released without completing (failed attempts).
    pub attempts: u32,
    /// Every takeover, oldest first, for audit.
    pub handovers: Vec<Handover>,
}
