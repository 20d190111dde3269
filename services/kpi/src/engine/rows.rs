//! One tenant's interval rows, laid out for the apply path.
//!
//! An event touches about a dozen rows (three lengths × tenant, site, queue, agent), so
//! finding a row must not compare strings down a tree nor clone its key. Rows are kept
//! by dimension in a hash map (one hash of the dimension per row touched, no clone
//! unless the dimension is new), then by `(length, start)` in a small tree of plain
//! integers. Whether a row changed since the last [`Rows::take_dirty`] is a flag on the
//! row; the first change pushes its key on a list, which is sorted when taken.
//!
//! Everything that leaves this type is in key order `(dimension, length, start)`, as
//! the `BTreeMap` it replaces gave it: [`Rows::take_dirty`], [`Rows::matching`] and the
//! serialized form (the same list of pairs as before), so the checkpoint's bytes
//! depend only on the rows, never on the order events came in.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::RowKey;
use crate::model::{Counters, Dimension, IntervalLength};
use rustc_hash::FxHashMap as FastMap;

/// A row's counters and whether they changed since they were last taken.
#[derive(Debug, Default, Clone)]
struct Row {
    counters: Counters,
    dirty: bool,
}

/// The rows of one tenant: see the module docs.
#[derive(Debug, Default)]
pub(super) struct Rows {
    /// By dimension, then by (length, start).
    by_dim: FastMap<Dimension, BTreeMap<(IntervalLength, u64), Row>>,
    /// Keys of the rows whose `dirty` flag is set, in the order they were first changed.
    dirty: Vec<RowKey>,
}

impl Rows {
    /// The row `(dim, len, start)`, created if missing, marked dirty.
    pub(super) fn touch(
        &mut self,
        dim: &Dimension,
        len: IntervalLength,
        start: u64,
    ) -> &mut Counters {
        if !self.by_dim.contains_key(dim) {
            self.by_dim.insert(dim.clone(), BTreeMap::new());
        }
        let by_time = self.by_dim.get_mut(dim).expect("inserted above");
        let row = by_time.entry((len, start)).or_default();
        if !row.dirty {
            row.dirty = true;
            self.dirty.push((dim.clone(), len, start));
        }
        &mut row.counters
    }

    /// The row `(dim, len, start)`, if it exists.
    pub(super) fn get(
        &self,
        dim: &Dimension,
        len: IntervalLength,
        start: u64,
    ) -> Option<&Counters> {
        self.by_dim
            .get(dim)
            .and_then(|m| m.get(&(len, start)))
            .map(|r| &r.counters)
    }

    /// The rows changed since the last call, sorted by key, their flags cleared.
    pub(super) fn take_dirty(&mut self) -> Vec<(RowKey, Counters)> {
        let mut keys = std::mem::take(&mut self.dirty);
        keys.sort_unstable();
        keys.into_iter()
            .filter_map(|(dim, len, start)| {
                let row = self.by_dim.get_mut(&dim)?.get_mut(&(len, start))?;
                row.dirty = false;
                let counters = row.counters.clone();
                Some(((dim, len, start), counters))
            })
            .collect()
    }

    /// Rows of length `len` starting in `[from_ms, to_ms)` whose dimension `keep`
    /// accepts, sorted by dimension then start.
    pub(super) fn matching(
        &self,
        len: IntervalLength,
        from_ms: u64,
        to_ms: u64,
        keep: impl Fn(&Dimension) -> bool,
    ) -> Vec<(&Dimension, u64, &Counters)> {
        let mut out: Vec<(&Dimension, u64, &Counters)> = Vec::new();
        if from_ms >= to_ms {
            return out;
        }
        for (dim, by_time) in &self.by_dim {
            if !keep(dim) {
                continue;
            }
            out.extend(
                by_time
                    .range((len, from_ms)..(len, to_ms))
                    .map(|(&(_, start), r)| (dim, start, &r.counters)),
            );
        }
        out.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        out
    }

    /// Drops every row starting before `cutoff`.
    pub(super) fn retain_from(&mut self, cutoff: u64) {
        self.by_dim.retain(|_, by_time| {
            by_time.retain(|&(_, start), _| start >= cutoff);
            !by_time.is_empty()
        });
        self.dirty.retain(|&(_, _, start)| start >= cutoff);
    }

    /// Every row, sorted by key.
    fn sorted(&self) -> Vec<((&Dimension, IntervalLength, u64), &Counters)> {
        let mut all: Vec<_> = self
            .by_dim
            .iter()
            .flat_map(|(dim, by_time)| {
                by_time
                    .iter()
                    .map(move |(&(len, start), r)| ((dim, len, start), &r.counters))
            })
            .collect();
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

impl Serialize for Rows {
    /// A list of `[key, counters]` pairs in key order; dirty flags are not state.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.sorted())
    }
}

impl<'de> Deserialize<'de> for Rows {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pairs = Vec::<(RowKey, Counters)>::deserialize(d)?;
        let mut rows = Rows::default();
        for ((dim, len, start), counters) in pairs {
            rows.by_dim.entry(dim).or_default().insert(
                (len, start),
                Row {
                    counters,
                    dirty: false,
                },
            );
        }
        Ok(rows)
    }
}
