//! Typed identifiers.
//!
//! Names that people write in configuration (tenants, queues, skills, agents, sites,
//! providers) are short validated strings, so a config file and an event read the same.
//! Contacts and events are created by the million, so their ids are 128-bit numbers
//! (UUID v7 in production, counters in simulation) that are cheap to copy and compare.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A name in configuration was empty, too long or used characters outside `[A-Za-z0-9_.-]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id {value:?}: {reason}")]
pub struct InvalidId {
    /// Which kind of id (tenant, queue, …) was being parsed.
    pub kind: &'static str,
    /// The rejected text, so the message names it.
    pub value: String,
    /// What rule it broke.
    pub reason: &'static str,
}

/// The longest name accepted, so ids fit in log lines, metric labels and Kafka keys.
pub const MAX_NAME_LEN: usize = 64;

fn check_name(kind: &'static str, value: &str) -> Result<(), InvalidId> {
    let fail = |reason| {
        Err(InvalidId {
            kind,
            value: value.to_owned(),
            reason,
        })
    };
    if value.is_empty() {
        return fail("must not be empty");
    }
    if value.len() > MAX_NAME_LEN {
        return fail("must be at most 64 characters");
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return fail("may contain only ASCII letters, digits, '_', '-' and '.'");
    }
    Ok(())
}

macro_rules! name_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates `value` and wraps it.
            pub fn new(value: impl AsRef<str>) -> Result<Self, InvalidId> {
                let value = value.as_ref();
                check_name($kind, value)?;
                Ok(Self(Arc::from(value)))
            }

            /// The name as written in configuration.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// A copy with its own allocation. Ids are reference-counted; an actor that
            /// clones an id into every event should own a copy, so its counter is not
            /// shared (and bounced between cores) with other actors'.
            pub fn detached(&self) -> Self {
                Self(Arc::from(&*self.0))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::new(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_id!(
    /// An outsourcing company hosting many tenants on shared agents.
    ProviderId, "provider"
);
name_id!(
    /// An enterprise whose contacts are handled; every row and event carries one.
    TenantId, "tenant"
);
name_id!(
    /// A data center or city running its own ACD and IVR nodes.
    SiteId, "site"
);
name_id!(
    /// A queue, unique within its tenant.
    QueueId, "queue"
);
name_id!(
    /// An agent, unique within the installation so one person can serve several tenants.
    AgentId, "agent"
);
name_id!(
    /// A skill, unique within its tenant (`billing`, `mandarin`, …).
    SkillId, "skill"
);

macro_rules! number_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A fresh, time-ordered id (UUID v7) for production use.
            pub fn random() -> Self {
                Self(uuid::Uuid::now_v7())
            }

            /// A deterministic id from a number, for simulations and tests.
            pub const fn from_u128(n: u128) -> Self {
                Self(uuid::Uuid::from_u128(n))
            }

            /// The id as a number, for compact encodings.
            pub const fn as_u128(&self) -> u128 {
                self.0.as_u128()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, uuid::Error> {
                s.parse().map(Self)
            }
        }
    };
}

number_id!(
    /// One customer interaction, unique across sites (it keeps its id when it overflows).
    ContactId
);
number_id!(
    /// One event; consumers deduplicate on it because delivery is at least once.
    EventId
);
number_id!(
    /// The trace a contact's journey is recorded under, across sites.
    TraceId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_spaces_or_empty_are_refused_with_the_value() {
        let err = TenantId::new("acme corp").unwrap_err();
        assert_eq!(err.kind, "tenant");
        assert!(err.to_string().contains("\"acme corp\""), "{err}");
        assert!(QueueId::new("").is_err());
        assert!(SkillId::new("x".repeat(65)).is_err());
        assert_eq!(QueueId::new("sales-en.1").unwrap().as_str(), "sales-en.1");
    }

    #[test]
    fn ids_round_trip_through_json_and_refuse_bad_names() {
        let q = QueueId::new("billing").unwrap();
        let json = serde_json::to_string(&q).unwrap();
        assert_eq!(json, "\"billing\"");
        assert_eq!(serde_json::from_str::<QueueId>(&json).unwrap(), q);
        assert!(serde_json::from_str::<QueueId>("\"bad name\"").is_err());
        let c = ContactId::from_u128(7);
        let back: ContactId = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
