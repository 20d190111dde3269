//! The log store against a plain `BTreeMap` model, under random appends (left unflushed),
//! truncations, purges and reads: on a file, so the unflushed tail and the writer's commits
//! race freely, and in memory, where the log skips the writer.

use std::collections::BTreeMap;

use hotline_routing::state::Command;
use hotline_routing::store::{self, LogStore, StoreConfig};
use hotline_routing::typ::TypeConfig;
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, RaftLogReader, RaftLogStorage};
use openraft::type_config::TypeConfigExt;
use proptest::prelude::*;

type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
type Flushed = tokio::sync::oneshot::Receiver<Result<(), std::io::Error>>;

#[derive(Debug, Clone)]
enum Op {
    /// Appends this many entries and does not wait for them to be durable.
    Append(u8),
    /// Truncates after the n-th present entry (modulo), or after the last purged.
    Truncate(u8),
    /// Purges up to the n-th present entry (modulo).
    Purge(u8),
    /// Reads `len` entries from `start` past the first index.
    Read { start: u8, len: u8 },
    /// Waits for every append so far to be durable.
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..=4).prop_map(Op::Append),
        1 => any::<u8>().prop_map(Op::Truncate),
        1 => any::<u8>().prop_map(Op::Purge),
        3 => (any::<u8>(), any::<u8>()).prop_map(|(start, len)| Op::Read { start, len }),
        1 => Just(Op::Flush),
    ]
}

/// What the log should hold.
#[derive(Default)]
struct Model {
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    term: u64,
}

impl Model {
    fn next_index(&self) -> u64 {
        match (self.entries.last_key_value(), &self.last_purged) {
            (Some((index, _)), _) => index + 1,
            (None, Some(purged)) => purged.index + 1,
            (None, None) => 1,
        }
    }

    fn nth_present(&self, n: u8) -> Option<LogId> {
        let len = self.entries.len();
        (len > 0).then(|| {
            self.entries
                .values()
                .nth(n as usize % len)
                .expect("in range")
                .log_id
        })
    }
}

async fn check(log: &mut LogStore, model: &Model) -> Result<(), TestCaseError> {
    let state = log.get_log_state().await.map_err(fail)?;
    prop_assert_eq!(state.last_purged_log_id, model.last_purged);
    let last = model
        .entries
        .values()
        .last()
        .map(|e| e.log_id)
        .or(model.last_purged);
    prop_assert_eq!(state.last_log_id, last);
    Ok(())
}

fn fail(err: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(err.to_string())
}

/// Where the log under test lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A redb file: appends sit in the unflushed tail until the writer commits them.
    File,
    /// `Durability::InMemory`: the log itself in memory, every write done at once.
    Memory,
}

async fn run(ops: Vec<Op>, kind: Kind) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(fail)?;
    let (mut log, _sm) = match kind {
        Kind::File => store::open(
            &dir.path().join("routing.redb"),
            &StoreConfig {
                verify_on_open: false,
                ..StoreConfig::default()
            },
        ),
        Kind::Memory => store::open_in_memory(),
    }
    .map_err(fail)?;
    let mut reader = log.get_log_reader().await;
    let mut model = Model {
        term: 1,
        ..Model::default()
    };
    let mut pending: Vec<Flushed> = Vec::new();
    let mut appended = 0;

    for op in ops {
        match op {
            Op::Append(count) => {
                let first = model.next_index();
                let entries: Vec<Entry> = (first..first + u64::from(count))
                    .map(|index| {
                        let log_id = openraft::testing::log_id::<TypeConfig>(model.term, 1, index);
                        Entry::new_normal(log_id, Command::Noop)
                    })
                    .collect();
                let (tx, rx) = TypeConfig::oneshot();
                log.append(entries.clone(), IOFlushed::signal(tx))
                    .await
                    .map_err(fail)?;
                pending.push(rx);
                appended += u64::from(count);
                model
                    .entries
                    .extend(entries.into_iter().map(|e| (e.log_id.index, e)));
            }
            Op::Truncate(n) => {
                let keep = if n % 4 == 0 {
                    model.last_purged
                } else {
                    model.nth_present(n)
                };
                log.truncate_after(keep).await.map_err(fail)?;
                let from = keep.map_or(0, |log_id| log_id.index + 1);
                model.entries.retain(|index, _| *index < from);
                // The entries that replace them come from a newer leader.
                model.term += 1;
            }
            Op::Purge(n) => {
                if let Some(upto) = model.nth_present(n) {
                    log.purge(upto).await.map_err(fail)?;
                    model.entries.retain(|index, _| *index > upto.index);
                    model.last_purged = Some(upto);
                }
            }
            Op::Read { start, len } => {
                let first = model
                    .entries
                    .keys()
                    .next()
                    .copied()
                    .unwrap_or(model.next_index());
                let start = first + u64::from(start % 8);
                let end = start + u64::from(len % 12);
                let expected: Vec<Entry> = model
                    .entries
                    .range(start..end)
                    .map(|(_, e)| e.clone())
                    .collect();
                let got = log.try_get_log_entries(start..end).await.map_err(fail)?;
                prop_assert_eq!(&got, &expected);
                let got = reader.try_get_log_entries(start..end).await.map_err(fail)?;
                prop_assert_eq!(&got, &expected);
            }
            Op::Flush => {
                for rx in pending.drain(..) {
                    rx.await.map_err(fail)?.map_err(fail)?;
                }
            }
        }
        check(&mut log, &model).await?;
    }

    for rx in pending.drain(..) {
        rx.await.map_err(fail)?.map_err(fail)?;
    }
    let everything = log.try_get_log_entries(..).await.map_err(fail)?;
    let expected: Vec<Entry> = model.entries.values().cloned().collect();
    prop_assert_eq!(everything, expected);
    // A file commits every appended entry once; memory commits none of them.
    let committed = if kind == Kind::File { appended } else { 0 };
    prop_assert_eq!(log.fsync_stats().entries, committed);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn log_reads_match_the_model_whatever_the_writer_has_committed(ops in prop::collection::vec(op(), 1..60)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(fail)?;
        runtime.block_on(run(ops, Kind::File))?;
    }

    #[test]
    fn the_in_memory_log_reads_match_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(fail)?;
        runtime.block_on(run(ops, Kind::Memory))?;
    }
}
