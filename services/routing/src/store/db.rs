//! The open redb file: its tables, its codec, and what the writer and the readers share.
//!
//! Three tables, every value postcard-encoded:
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `raft_log` | log index (`u64`) | the log entry |
//! | `raft_meta` | `vote`, `committed`, `last_purged`, `layout` | the vote, log ids, layout version |
//! | `snapshot` | `meta`, `data` | the snapshot's [`SnapshotMeta`], the [`RoutingState`] |
//!
//! In memory ([`Durability::InMemory`]) the log and its small records skip redb: the entries
//! live in [`Db::memory`] and the vote and log ids only in [`Db::meta`]; snapshots still go
//! through the writer into redb's in-memory backend, as they are rare and large.
//!
//! [`RoutingState`]: crate::state::RoutingState

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::writer::FsyncMeter;
use super::{Durability, StoreConfig, StoreError};
use crate::typ::TypeConfig;

/// A log id of the routing group.
pub(super) type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
/// A vote of the routing group.
pub(super) type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;
/// A log entry as openraft hands it over.
pub(super) type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
/// What a snapshot covers: its last log id and membership.
pub(super) type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;
/// A membership and the log id it was committed at.
pub(super) type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;

/// Log entries by index.
pub(super) const LOG: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("raft_log");
/// The log's small records, by name (see [`key`]).
pub(super) const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("raft_meta");
/// The current snapshot, by part (see [`key`]).
pub(super) const SNAPSHOT: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("snapshot");

/// The version of the table layout above; bumped when a table or encoding changes.
pub(super) const LAYOUT_VERSION: u64 = 1;

/// Keys of the `raft_meta` and `snapshot` tables.
pub(super) mod key {
    /// The last vote saved (`raft_meta`).
    pub(in crate::store) const VOTE: &str = "vote";
    /// The last committed log id saved (`raft_meta`).
    pub(in crate::store) const COMMITTED: &str = "committed";
    /// The last purged log id (`raft_meta`).
    pub(in crate::store) const LAST_PURGED: &str = "last_purged";
    /// The table layout version (`raft_meta`).
    pub(in crate::store) const LAYOUT: &str = "layout";
    /// The snapshot's metadata (`snapshot`).
    pub(in crate::store) const SNAPSHOT_META: &str = "meta";
    /// The snapshot's routing state (`snapshot`).
    pub(in crate::store) const SNAPSHOT_DATA: &str = "data";
}

/// An appended entry the writer has not committed yet, kept so readers see it at once.
#[derive(Debug, Clone)]
pub(super) struct Unflushed {
    /// The entry's log id, for `get_log_state` without decoding.
    pub(super) log_id: LogId,
    /// The encoded entry, shared with the write request so it is encoded once.
    pub(super) bytes: Arc<[u8]>,
}

/// The log's small records, cached so reads never touch the file.
#[derive(Debug, Clone, Default)]
pub(super) struct LogMeta {
    /// The last vote made durable.
    pub(super) vote: Option<Vote>,
    /// The last committed log id saved (durable with the next commit).
    pub(super) committed: Option<LogId>,
    /// The last purged log id made durable.
    pub(super) last_purged: Option<LogId>,
}

/// The open file and the state the writer, the log store and the readers share.
#[derive(Debug)]
pub(super) struct Db {
    /// The file, for every error and log line.
    pub(super) path: PathBuf,
    /// The database.
    pub(super) redb: Database,
    /// Entries appended but not yet committed, by index: always the newest, contiguous tail of
    /// the log, which readers lay over what the file holds.
    pub(super) tail: Mutex<BTreeMap<u64, Unflushed>>,
    /// With [`Durability::InMemory`], the log itself: entries as openraft hands them over,
    /// by index, never encoded and never written to redb. redb's in-memory backend copies
    /// pages on every commit, which was most of what an in-memory replica spent. `None` for a
    /// file, whose log is its `raft_log` table (with `tail` over it).
    pub(super) memory: Option<Mutex<BTreeMap<u64, Entry>>>,
    /// The cached vote, committed and last purged log ids (with [`Durability::InMemory`], the
    /// only copy).
    pub(super) meta: Mutex<LogMeta>,
    /// Every commit's duration.
    pub(super) meter: FsyncMeter,
    /// Dropped after `redb` (fields drop in order), which tells every [`StoreClosed`] the file
    /// is closed.
    closed: watch::Sender<()>,
}

/// Resolves once the store's file is closed, so the same path can be opened again in this
/// process: after `Raft::shutdown`, openraft's tasks drop the log store and the state machine
/// a moment later, not at once.
#[derive(Debug, Clone)]
pub struct StoreClosed {
    /// Sees the sender go when the file closes.
    closed: watch::Receiver<()>,
}

impl StoreClosed {
    /// Waits until the file is closed; at once if it already is.
    pub async fn wait(mut self) {
        while self.closed.changed().await.is_ok() {}
    }
}

impl Db {
    /// Opens or creates the file, checks its layout and loads the log's small records.
    pub(super) fn open(path: &Path, config: &StoreConfig) -> Result<Self, StoreError> {
        let mut builder = redb::Builder::new();
        builder.set_cache_size(config.cache_bytes);
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source: Box::new(source),
        };
        let (redb, created) = match config.durability {
            Durability::Durable => {
                builder.set_check_integrity_on_open(config.verify_on_open);
                let created = !path.exists();
                (builder.create(path).map_err(open_error)?, created)
            }
            Durability::InMemory => {
                let backend = redb::backends::InMemoryBackend::new();
                (
                    builder.create_with_backend(backend).map_err(open_error)?,
                    false,
                )
            }
        };
        let db = Self {
            path: path.to_owned(),
            redb,
            tail: Mutex::default(),
            memory: (config.durability == Durability::InMemory).then(Mutex::default),
            meta: Mutex::default(),
            meter: FsyncMeter::default(),
            closed: watch::Sender::new(()),
        };
        db.prepare()?;
        if created {
            db.sync_parent_dir()?;
        }
        *lock(&db.meta) = db.load_meta()?;
        Ok(db)
    }

    /// Creates the tables of a new file and refuses a layout this build does not know.
    fn prepare(&self) -> Result<(), StoreError> {
        let txn = self
            .redb
            .begin_write()
            .at(self, "begin a write transaction")?;
        {
            txn.open_table(LOG).at(self, "open the log table")?;
            txn.open_table(SNAPSHOT)
                .at(self, "open the snapshot table")?;
            let mut meta = txn.open_table(META).at(self, "open the meta table")?;
            let found = match meta.get(key::LAYOUT).at(self, "read the layout version")? {
                Some(bytes) => Some(self.decode::<u64>(|| "layout version".into(), bytes.value())?),
                None => None,
            };
            match found {
                Some(LAYOUT_VERSION) => {}
                Some(found) => {
                    return Err(StoreError::UnsupportedLayout {
                        path: self.path.clone(),
                        found,
                        supported: LAYOUT_VERSION,
                    });
                }
                None => {
                    let bytes = self.encode("layout version", &LAYOUT_VERSION)?;
                    meta.insert(key::LAYOUT, bytes.as_slice())
                        .at(self, "write the layout version")?;
                }
            }
        }
        txn.commit().at(self, "commit")
    }

    /// A new file's directory entry is only durable once its directory is synced.
    fn sync_parent_dir(&self) -> Result<(), StoreError> {
        let parent = match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| StoreError::Redb {
                path: self.path.clone(),
                action: "sync the directory of the new file",
                source: Box::new(redb::Error::Io(e)),
            })
    }

    fn load_meta(&self) -> Result<LogMeta, StoreError> {
        let txn = self
            .redb
            .begin_read()
            .at(self, "begin a read transaction")?;
        let table = txn.open_table(META).at(self, "open the meta table")?;
        let read = |name: &'static str| -> Result<Option<Vec<u8>>, StoreError> {
            let value = table.get(name).at(self, "read the meta table")?;
            Ok(value.map(|v| v.value().to_vec()))
        };
        let mut meta = LogMeta::default();
        if let Some(bytes) = read(key::VOTE)? {
            meta.vote = Some(self.decode(|| "vote".into(), &bytes)?);
        }
        if let Some(bytes) = read(key::COMMITTED)? {
            meta.committed = self.decode(|| "committed log id".into(), &bytes)?;
        }
        if let Some(bytes) = read(key::LAST_PURGED)? {
            meta.last_purged = Some(self.decode(|| "last purged log id".into(), &bytes)?);
        }
        Ok(meta)
    }

    /// A handle that resolves when this file closes.
    pub(super) fn closed(&self) -> StoreClosed {
        StoreClosed {
            closed: self.closed.subscribe(),
        }
    }

    /// The current snapshot's metadata and encoded routing state, if one was ever saved.
    pub(super) fn read_snapshot(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StoreError> {
        let txn = self
            .redb
            .begin_read()
            .at(self, "begin a read transaction")?;
        let table = txn
            .open_table(SNAPSHOT)
            .at(self, "open the snapshot table")?;
        let Some(meta) = table
            .get(key::SNAPSHOT_META)
            .at(self, "read the snapshot")?
        else {
            return Ok(None);
        };
        let meta: SnapshotMeta = self.decode(|| "snapshot metadata".into(), meta.value())?;
        let data = table
            .get(key::SNAPSHOT_DATA)
            .at(self, "read the snapshot")?
            .map(|data| data.value().to_vec())
            .ok_or_else(|| StoreError::Redb {
                path: self.path.clone(),
                action: "read the snapshot",
                source: Box::new(redb::Error::Corrupted(
                    "snapshot metadata without its data".into(),
                )),
            })?;
        Ok(Some((meta, data)))
    }

    /// Encodes a value with postcard; `what` names it in the error.
    pub(super) fn encode<T: Serialize + ?Sized>(
        &self,
        what: &'static str,
        value: &T,
    ) -> Result<Vec<u8>, StoreError> {
        postcard::to_allocvec(value).map_err(|source| StoreError::Encode {
            path: self.path.clone(),
            what,
            source,
        })
    }

    /// Decodes a stored record; `what` names it in the error and is only built on failure.
    pub(super) fn decode<T: DeserializeOwned>(
        &self,
        what: impl FnOnce() -> String,
        bytes: &[u8],
    ) -> Result<T, StoreError> {
        postcard::from_bytes(bytes).map_err(|source| StoreError::Decode {
            path: self.path.clone(),
            what: what(),
            source,
        })
    }
}

/// Names the file and the action on a redb failure.
pub(super) trait RedbResultExt<T> {
    /// `result.at(db, "read the log")?` turns any redb error into a [`StoreError::Redb`].
    fn at(self, db: &Db, action: &'static str) -> Result<T, StoreError>;
}

impl<T, E: Into<redb::Error>> RedbResultExt<T> for Result<T, E> {
    fn at(self, db: &Db, action: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Redb {
            path: db.path.clone(),
            action,
            source: Box::new(source.into()),
        })
    }
}

/// Locks a mutex whose holders never panic mid-update (they only insert, remove or assign).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
