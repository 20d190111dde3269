//! The topics Hotline uses.
//!
//! | topic | key | what | partitions | retention |
//! | --- | --- | --- | --- | --- |
//! | `hotline.events.v1` | `tenant/contact` or `tenant/agent` | every contact and agent event, protobuf (`proto/hotline/events/v1`) | 12 | 7 days |
//! | `hotline.quarantine.v1` | the source `topic/partition/offset` | records a consumer could not decode, with why (JSON envelope) | 1 | 30 days |
//!
//! One topic carries contact and agent events together: every consumer needs both, and
//! order holds per key (one contact, one agent), which is all any consumer relies on.

use std::time::Duration;

use crate::log::TopicSpec;

/// Every contact and agent event.
pub const EVENTS: &str = "hotline.events.v1";
/// What consumers could not decode.
pub const QUARANTINE: &str = "hotline.quarantine.v1";

/// Partitions of [`EVENTS`]: enough for a dozen consumers per group to share the load.
pub const EVENTS_PARTITIONS: u32 = 12;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// The topics as Hotline wants them.
pub fn specs() -> Vec<TopicSpec> {
    vec![
        TopicSpec {
            name: EVENTS.to_string(),
            partitions: EVENTS_PARTITIONS,
            retention: Some(7 * DAY),
            retention_bytes: None,
        },
        TopicSpec {
            name: QUARANTINE.to_string(),
            partitions: 1,
            retention: Some(30 * DAY),
            retention_bytes: None,
        },
    ]
}
