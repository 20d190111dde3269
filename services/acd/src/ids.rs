//! Where event and contact ids come from: random (UUID v7) in production, counters in
//! simulations and tests so a seed reproduces a run exactly.

use hotline_core::ids::{ContactId, EventId, TraceId};

/// A source of 128-bit ids.
#[derive(Debug, Clone)]
pub enum IdSource {
    /// Time-ordered random UUIDs.
    Random,
    /// `stream << 64 | n` for n = 1, 2, …; distinct streams never collide.
    Sequential {
        /// Which stream (one per engine or agent session).
        stream: u64,
        /// The last number handed out.
        last: u64,
    },
}

impl IdSource {
    /// A sequential source on `stream`.
    pub fn sequential(stream: u64) -> Self {
        IdSource::Sequential { stream, last: 0 }
    }

    /// A source of the same kind on another stream.
    pub fn fork(&self, stream: u64) -> Self {
        match self {
            IdSource::Random => IdSource::Random,
            IdSource::Sequential { .. } => IdSource::sequential(stream),
        }
    }

    fn next(&mut self) -> u128 {
        match self {
            IdSource::Random => uuid_v7(),
            IdSource::Sequential { stream, last } => {
                *last += 1;
                (u128::from(*stream) << 64) | u128::from(*last)
            }
        }
    }

    /// A new event id.
    pub fn event(&mut self) -> EventId {
        EventId::from_u128(self.next())
    }

    /// A new contact id.
    pub fn contact(&mut self) -> ContactId {
        ContactId::from_u128(self.next())
    }

    /// A new trace id.
    pub fn trace(&mut self) -> TraceId {
        TraceId::from_u128(self.next())
    }
}

fn uuid_v7() -> u128 {
    ContactId::random().as_u128()
}
