//! Durable Raft storage for the routing group: the log and the state machine in one redb file.
//!
//! # Layout
//!
//! - `db`: the open redb file, its tables and the codec; what the writer and the readers share.
//! - `writer`: the one thread that writes. It drains a queue and commits everything queued
//!   in one redb transaction (group commit), then reports each request done.
//! - `log`: [`LogStore`] and [`LogReader`], openraft's log storage on top of the writer.
//! - `state_machine`: [`StateMachineStore`], which applies committed commands to a
//!   [`RoutingState`](crate::state::RoutingState) and keeps its snapshots in the same file.
//! - `error`: [`StoreError`], which always names the file.
//!
//! # Data flow
//!
//! ```text
//! RaftCore ─append(entries, callback)─▶ LogStore ─┬─ unflushed tail (readable at once)
//!                                                 └─ queue ─▶ writer thread
//!                                                             one redb commit per batch (fsync)
//!                                                             ├─ drops the batch from the tail
//!                                                             └─ fires every callback of the batch
//! RaftCore ─apply(entries)─▶ StateMachineStore ─▶ RoutingState::apply ─▶ Response
//!                            └─ snapshot ─▶ queue ─▶ writer thread (same file)
//! ```
//!
//! Opening a file gives the log store and the state machine together: [`open`] for a file on
//! disk, [`open_in_memory`] for tests and simulations.

mod db;
mod error;
mod log;
mod state_machine;
mod writer;

use std::path::Path;
use std::sync::Arc;

pub use self::db::StoreClosed;
pub use self::error::StoreError;
pub use self::log::{LogReader, LogStore};
pub use self::state_machine::{SnapshotBuilder, StateHandle, StateMachineStore};
pub use self::writer::{FsyncMeter, FsyncStats};

/// Whether a commit survives a crash of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// A file on disk, every commit fsynced before Raft hears it is done: what a replica runs.
    #[default]
    Durable,
    /// The log in memory as openraft hands it over (snapshots in redb's in-memory backend):
    /// nothing survives the process, appends cost no encoding and no fsync. For
    /// tests and simulated clusters.
    InMemory,
}

/// How the routing store opens and batches its writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Durable for a replica, in memory for tests.
    pub durability: Durability,
    /// Bytes of redb page cache; the log's recent tail and the snapshot are what it holds.
    pub cache_bytes: usize,
    /// Verify every page's checksum when opening a file, so a damaged file is refused with an
    /// error instead of being trusted. Costs one read of the whole file at start-up. Off, redb
    /// trusts the pages, and a damaged one can panic inside it (debug builds) or surface later
    /// as a read error.
    pub verify_on_open: bool,
    /// Most write requests (appends, votes, truncations…) folded into one redb commit. Bounds
    /// how long one commit can take under a burst; the batch is whatever queued meanwhile.
    pub max_batch: usize,
    /// Write requests that may wait for the writer before `append` waits too: the back-pressure
    /// that keeps a slow disk from growing memory without bound.
    pub queue_depth: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            durability: Durability::Durable,
            cache_bytes: 64 * 1024 * 1024,
            verify_on_open: true,
            max_batch: 1024,
            queue_depth: 4096,
        }
    }
}

impl StoreConfig {
    /// The defaults in memory ([`Durability::InMemory`]), for tests and simulated clusters.
    pub fn in_memory() -> Self {
        Self {
            durability: Durability::InMemory,
            cache_bytes: 16 * 1024 * 1024,
            ..Self::default()
        }
    }

    /// Refuses a configuration that cannot work, saying which field and why.
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |field: &'static str, reason: &str| StoreError::InvalidConfig {
            field,
            reason: reason.to_owned(),
        };
        if self.max_batch == 0 {
            return Err(invalid("max_batch", "must be at least 1"));
        }
        if self.queue_depth == 0 {
            return Err(invalid("queue_depth", "must be at least 1"));
        }
        if self.cache_bytes == 0 {
            return Err(invalid("cache_bytes", "must be at least 1"));
        }
        Ok(())
    }
}

/// Opens (or creates) the routing store at `path` and returns its two halves for
/// [`openraft::Raft::new`].
///
/// With [`Durability::InMemory`] nothing is read from or written to `path`; it only names the
/// store in errors and logs. Opening blocks (it reads the file and, with
/// [`StoreConfig::verify_on_open`], checks all of it); call it before starting the node or from
/// `spawn_blocking`. A second open of a file that is still open fails with
/// [`StoreError::Open`], which [`StoreError::is_retryable`] says may succeed later.
///
/// The file closes once the log store, the state machine and every reader and snapshot builder
/// made from them are dropped; dropping the last of the two halves waits for the writer to
/// commit what is queued, so after `Raft::shutdown` the same path can be opened again.
pub fn open(
    path: &Path,
    config: &StoreConfig,
) -> Result<(LogStore, StateMachineStore), StoreError> {
    config.validate()?;
    let db = Arc::new(db::Db::open(path, config)?);
    let writer = Arc::new(writer::Writer::spawn(Arc::clone(&db), config)?);
    let state_machine = StateMachineStore::load(Arc::clone(&db), Arc::clone(&writer))?;
    let log = LogStore::new(db, writer);
    Ok((log, state_machine))
}

/// Opens a fresh store in memory with [`StoreConfig::in_memory`]: for tests and simulated
/// clusters, where a node's storage dies with it.
pub fn open_in_memory() -> Result<(LogStore, StateMachineStore), StoreError> {
    open(Path::new("<memory>"), &StoreConfig::in_memory())
}
