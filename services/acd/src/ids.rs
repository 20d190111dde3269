//! Where event and contact ids come from: random time-ordered UUIDs (v7) in production,
//! counters in simulations and tests so a seed reproduces a run exactly.
//!
//! Random ids draw their random bits from a per-source PRNG seeded once from the
//! operating system: asking the kernel for every id (as `Uuid::now_v7` does) cost a
//! system call per event and was the largest item in the router's profile.

use hotline_core::ids::{ContactId, EventId, TraceId};
use rand::{Rng, RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

/// A source of 128-bit ids.
#[derive(Debug, Clone)]
pub enum IdSource {
    /// Time-ordered random UUIDs (v7).
    Random,
    /// Time-ordered UUIDs (v7) whose 74 non-time bits are a random start drawn once
    /// plus a counter (what `Random` becomes on first use): unique within the source,
    /// unguessable across sources, and no random draw per id.
    Seeded {
        /// The random start.
        base: u128,
        /// Ids handed out so far.
        count: u64,
    },
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

    /// A source of the same kind on another stream: for sequential sources, this
    /// stream's number plus `stream`, so forks of forks stay apart.
    pub fn fork(&self, stream: u64) -> Self {
        match self {
            IdSource::Random | IdSource::Seeded { .. } => IdSource::Random,
            IdSource::Sequential { stream: mine, .. } => {
                IdSource::sequential(mine.wrapping_add(stream))
            }
        }
    }

    fn next(&mut self) -> u128 {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.next_at(millis)
    }

    fn next_at(&mut self, millis: u64) -> u128 {
        match self {
            IdSource::Random => {
                let mut seed = [0u8; 16];
                rand::rng().fill_bytes(&mut seed);
                let base = Pcg64Mcg::from_seed(seed).random::<u128>();
                *self = IdSource::Seeded { base, count: 0 };
                self.next_at(millis)
            }
            IdSource::Seeded { base, count } => {
                *count += 1;
                let tail = base.wrapping_add(u128::from(*count));
                // RFC 9562 layout: 48-bit milliseconds, version 7, 12 bits, variant 10,
                // 62 bits.
                let rand_a = (tail >> 62) & 0xfff;
                let rand_b = tail & ((1u128 << 62) - 1);
                (u128::from(millis & 0xffff_ffff_ffff) << 80)
                    | (0x7 << 76)
                    | (rand_a << 64)
                    | (0b10 << 62)
                    | rand_b
            }
            IdSource::Sequential { stream, last } => {
                *last += 1;
                (u128::from(*stream) << 64) | u128::from(*last)
            }
        }
    }

    /// A new id for an event that happened `at` (its time orders the UUID, so no clock
    /// is read per event).
    pub fn event(&mut self, at: hotline_core::time::Timestamp) -> EventId {
        EventId::from_u128(self.next_at(at.millis()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_version_seven_distinct_and_time_ordered() {
        let mut ids = IdSource::Random;
        let a = ids.event(hotline_core::time::Timestamp(1_000_000_000));
        let b = ids.event(hotline_core::time::Timestamp(1_002_000_000));
        assert_ne!(a, b);
        assert_eq!(a.0.get_version_num(), 7);
        assert_eq!(a.0.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(a.0.get_timestamp().map(|t| t.to_unix().0), Some(1_000));
        assert!(a.0.as_u128() >> 80 < b.0.as_u128() >> 80 || a < b);
    }

    #[test]
    fn sequential_streams_never_collide() {
        let mut a = IdSource::sequential(1);
        let mut b = a.fork(2);
        let t = hotline_core::time::Timestamp(0);
        assert_ne!(a.event(t), b.event(t));
        assert_eq!(a.event(t).as_u128(), (1u128 << 64) | 2);
    }
}
