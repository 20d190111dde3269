//! openraft's log storage on the routing store: [`LogStore`] writes through the writer thread,
//! [`LogReader`] reads the file with the unflushed tail laid over it.
//!
//! An append returns as soon as its entries are in the unflushed tail (so they are readable,
//! as openraft requires) and queued for the writer; openraft hears they are durable from the
//! callback, once their commit is on disk. A vote, a truncation and a purge wait for their
//! commit before returning, so a reader never sees a vote that is not durable nor an entry
//! that was removed. The committed log id is only cached and queued: it becomes durable with
//! the next commit, and losing the latest one in a crash is safe.
//!
//! In memory ([`Durability::InMemory`](super::Durability::InMemory)) every log write is done
//! when it returns: the entries go into [`Db::memory`] as they are, the vote and log ids into
//! the cached meta, and the append's callback fires at once, as nothing is more durable later.

use std::fmt;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{OptionalSend, RaftTypeConfig};
use redb::{ReadableDatabase, ReadableTable};

use super::StoreError;
use super::db::{self, Db, Entry, LOG, LogId, RedbResultExt, StoreClosed, Unflushed, Vote};
use super::writer::{FsyncMeter, FsyncStats, WriteOp, Writer};
use crate::typ::TypeConfig;

/// The Raft log of the routing group: vote, committed log id, entries and last purged log id,
/// all in the store's redb file. Hand it to [`openraft::Raft::new`].
pub struct LogStore {
    /// The file and the state shared with the readers.
    db: Arc<Db>,
    /// The one writer, shared with the state machine.
    writer: Arc<Writer>,
}

/// Reads the log for a replication task while the [`LogStore`] keeps writing; openraft makes
/// one per task.
#[derive(Clone)]
pub struct LogReader {
    /// The file and the unflushed tail.
    db: Arc<Db>,
}

impl LogReader {
    /// The index of the last entry purged from the log (covered by a snapshot since), as
    /// the store has it now; Raft's metrics report it a moment later.
    pub fn last_purged_index(&self) -> Option<u64> {
        db::lock(&self.db.meta).last_purged.map(|p| p.index)
    }
}

impl LogStore {
    pub(super) fn new(db: Arc<Db>, writer: Arc<Writer>) -> Self {
        Self { db, writer }
    }

    /// The file this store lives in: for logs and operators.
    pub fn path(&self) -> &Path {
        &self.db.path
    }

    /// A handle on the commit figures that keeps working after this store is handed to openraft.
    pub fn fsync_meter(&self) -> FsyncMeter {
        self.db.meter.clone()
    }

    /// Resolves once the file is closed (this store, the state machine and their readers all
    /// dropped): keep one before handing the store to openraft, to reopen the same path after
    /// `Raft::shutdown` in the same process.
    pub fn closed(&self) -> StoreClosed {
        self.db.closed()
    }

    /// How the commits have gone so far: count, entries, p50/p99/max duration.
    pub fn fsync_stats(&self) -> FsyncStats {
        self.db.meter.stats()
    }
}

impl fmt::Debug for LogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogStore")
            .field("path", &self.db.path)
            .finish()
    }
}

impl fmt::Debug for LogReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogReader")
            .field("path", &self.db.path)
            .finish()
    }
}

// === impl LogReader ===

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        Ok(read_entries(&self.db, &range)?)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(db::lock(&self.db.meta).vote)
    }
}

// === impl LogStore ===

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        Ok(read_entries(&self.db, &range)?)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(db::lock(&self.db.meta).vote)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged_log_id = db::lock(&self.db.meta).last_purged;
        let last_log_id = last_log_id(&self.db)?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader {
            db: Arc::clone(&self.db),
        }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        if self.db.memory.is_some() {
            db::lock(&self.db.meta).vote = Some(*vote);
            return Ok(());
        }
        let bytes = self.db.encode("vote", vote)?;
        let vote = *vote;
        self.writer
            .call(|done| WriteOp::SaveVote { vote, bytes, done })
            .await?;
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        if self.db.memory.is_some() {
            db::lock(&self.db.meta).committed = committed;
            return Ok(());
        }
        let bytes = self.db.encode("committed log id", &committed)?;
        db::lock(&self.db.meta).committed = committed;
        self.writer.send(WriteOp::SaveCommitted { bytes }).await?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(db::lock(&self.db.meta).committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = <TypeConfig as RaftTypeConfig>::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        if let Some(memory) = &self.db.memory {
            db::lock(memory).extend(entries.into_iter().map(|e| (e.log_id.index, e)));
            callback.io_completed(Ok(()));
            return Ok(());
        }
        let entries = entries.into_iter();
        let mut encoded = Vec::with_capacity(entries.size_hint().0);
        let mut unflushed = Vec::with_capacity(entries.size_hint().0);
        for entry in entries {
            let bytes: Arc<[u8]> = self.db.encode("log entry", &entry)?.into();
            let index = entry.log_id.index;
            encoded.push((index, Arc::clone(&bytes)));
            unflushed.push((
                index,
                Unflushed {
                    log_id: entry.log_id,
                    bytes,
                },
            ));
        }
        // Readable before this returns, durable when the callback fires.
        db::lock(&self.db.tail).extend(unflushed);
        self.writer
            .send(WriteOp::Append {
                entries: encoded,
                callback,
            })
            .await?;
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        let from = last_log_id.map_or(0, |log_id| log_id.index + 1);
        if let Some(memory) = &self.db.memory {
            db::lock(memory).split_off(&from);
            return Ok(());
        }
        self.writer
            .call(|done| WriteOp::Truncate { from, done })
            .await?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        if db::lock(&self.db.meta).last_purged.as_ref() >= Some(&log_id) {
            return Ok(());
        }
        if let Some(memory) = &self.db.memory {
            // The mark first, then the entries: a reader never sees them gone while the
            // mark still says they are there.
            db::lock(&self.db.meta).last_purged = Some(log_id);
            let mut memory = db::lock(memory);
            let kept = memory.split_off(&(log_id.index + 1));
            *memory = kept;
            return Ok(());
        }
        let bytes = self.db.encode("last purged log id", &log_id)?;
        self.writer
            .call(|done| WriteOp::Purge {
                log_id,
                bytes,
                done,
            })
            .await?;
        Ok(())
    }
}

// === reading ===

/// The entries in `range`, from the file and from the unflushed tail.
fn read_entries(db: &Db, range: &impl RangeBounds<u64>) -> Result<Vec<Entry>, StoreError> {
    let Some((start, end)) = index_span(range) else {
        return Ok(Vec::new());
    };
    if let Some(memory) = &db.memory {
        let memory = db::lock(memory);
        let range = (
            Bound::Included(start),
            end.map_or(Bound::Unbounded, Bound::Excluded),
        );
        return Ok(memory.range(range).map(|(_, e)| e.clone()).collect());
    }
    // The writer commits before it drops entries from the tail, so with the transaction opened
    // under the tail's lock every entry is in the tail or visible to the transaction, or both.
    let (txn, tail_start, unflushed) = {
        let tail = db::lock(&db.tail);
        let txn = db.redb.begin_read().at(db, "begin a read transaction")?;
        let tail_start = tail.keys().next().copied();
        let unflushed: Vec<(u64, Arc<[u8]>)> = tail
            .range((
                Bound::Included(start),
                end.map_or(Bound::Unbounded, Bound::Excluded),
            ))
            .map(|(index, entry)| (*index, Arc::clone(&entry.bytes)))
            .collect();
        (txn, tail_start, unflushed)
    };

    // The tail is the newest part of the log: from its first index on, it is the truth.
    let stored_end = match (end, tail_start) {
        (Some(end), Some(tail)) => Some(end.min(tail)),
        (end, tail) => end.or(tail),
    };
    let mut entries = Vec::new();
    if stored_end.is_none_or(|stored_end| start < stored_end) {
        let table = txn.open_table(LOG).at(db, "open the log table")?;
        let rows = match stored_end {
            Some(stored_end) => table.range(start..stored_end),
            None => table.range(start..),
        }
        .at(db, "read the log")?;
        for row in rows {
            let (index, bytes) = row.at(db, "read the log")?;
            let index = index.value();
            entries.push(decode_entry(db, index, bytes.value())?);
        }
    }
    for (index, bytes) in unflushed {
        entries.push(decode_entry(db, index, &bytes)?);
    }
    Ok(entries)
}

/// The last entry's log id, unflushed or stored.
fn last_log_id(db: &Db) -> Result<Option<LogId>, StoreError> {
    if let Some(memory) = &db.memory {
        return Ok(db::lock(memory).last_key_value().map(|(_, e)| e.log_id));
    }
    let txn = {
        let tail = db::lock(&db.tail);
        if let Some((_, last)) = tail.last_key_value() {
            return Ok(Some(last.log_id));
        }
        db.redb.begin_read().at(db, "begin a read transaction")?
    };
    let table = txn.open_table(LOG).at(db, "open the log table")?;
    let Some((index, bytes)) = table.last().at(db, "read the log")? else {
        return Ok(None);
    };
    Ok(Some(decode_entry(db, index.value(), bytes.value())?.log_id))
}

fn decode_entry(db: &Db, index: u64, bytes: &[u8]) -> Result<Entry, StoreError> {
    db.decode(|| format!("log entry {index}"), bytes)
}

/// A range of indexes as `start..end` (`end` `None` for unbounded), `None` when empty.
fn index_span(range: &impl RangeBounds<u64>) -> Option<(u64, Option<u64>)> {
    let start = match range.start_bound() {
        Bound::Included(&start) => start,
        Bound::Excluded(&start) => start.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&end) => end.checked_add(1),
        Bound::Excluded(&end) => Some(end),
        Bound::Unbounded => None,
    };
    if end.is_some_and(|end| start >= end) {
        return None;
    }
    Some((start, end))
}

#[cfg(test)]
mod tests;
