//! openraft's state machine on the routing store: committed commands go through
//! [`RoutingState::apply`]; snapshots are the postcard-encoded state, kept in the store's file.
//!
//! The state itself lives in memory. What survives a restart is the last snapshot (loaded on
//! open) and the log after it, which openraft re-applies up to the saved committed log id, so
//! applying needs no write of its own.

use std::fmt;
use std::io;
use std::sync::{Arc, PoisonError, RwLock};

use futures::{Stream, TryStreamExt};
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend};

use super::StoreError;
use super::db::{Db, LogId, SnapshotMeta, StoredMembership};
use super::writer::{WriteOp, Writer};
use crate::state::{Response, RoutingState};
use crate::typ::TypeConfig;

/// A snapshot as openraft moves it: the metadata and the postcard-encoded [`RoutingState`].
type RoutingSnapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, Vec<u8>>;

/// The routing group's state machine: the [`RoutingState`], the last applied log id and the
/// last membership, with snapshots in the store's redb file. Hand it to [`openraft::Raft::new`].
pub struct StateMachineStore {
    /// The file, to read snapshots.
    db: Arc<Db>,
    /// The one writer, shared with the log store, to save snapshots.
    writer: Arc<Writer>,
    /// The state, shared with every [`StateHandle`].
    state: Arc<RwLock<RoutingState>>,
    /// The last entry applied, of any kind.
    last_applied: Option<LogId>,
    /// The last membership applied, which openraft asks for on start-up and in snapshots.
    last_membership: StoredMembership,
}

/// Reads the routing state while Raft owns the state machine: for the admin API and the sites.
#[derive(Clone)]
pub struct StateHandle {
    /// The state the state machine applies to.
    state: Arc<RwLock<RoutingState>>,
}

/// Builds one snapshot from the state as it was when openraft asked for the builder, while the
/// state machine goes on applying.
pub struct SnapshotBuilder {
    /// The file, for errors and encoding.
    db: Arc<Db>,
    /// The writer, to save the snapshot.
    writer: Arc<Writer>,
    /// What the snapshot covers.
    meta: SnapshotMeta,
    /// The state at `meta.last_log_id`.
    state: RoutingState,
}

impl StateMachineStore {
    /// Loads the last snapshot, if any, as the starting state.
    pub(super) fn load(db: Arc<Db>, writer: Arc<Writer>) -> Result<Self, StoreError> {
        let (state, last_applied, last_membership) = match db.read_snapshot()? {
            Some((meta, data)) => {
                let state = db.decode(|| "routing state of the stored snapshot".into(), &data)?;
                (state, meta.last_log_id, meta.last_membership)
            }
            None => Default::default(),
        };
        tracing::info!(
            path = %db.path.display(),
            last_applied = %last_applied.as_ref().map_or("none".to_owned(), ToString::to_string),
            "routing state loaded"
        );
        Ok(Self {
            db,
            writer,
            state: Arc::new(RwLock::new(state)),
            last_applied,
            last_membership,
        })
    }

    /// A handle that reads the state while Raft owns this state machine.
    pub fn state_handle(&self) -> StateHandle {
        StateHandle {
            state: Arc::clone(&self.state),
        }
    }

    fn snapshot_builder(&self) -> SnapshotBuilder {
        SnapshotBuilder {
            db: Arc::clone(&self.db),
            writer: Arc::clone(&self.writer),
            meta: SnapshotMeta {
                last_log_id: self.last_applied,
                last_membership: self.last_membership.clone(),
            },
            state: self.state_handle().read(RoutingState::clone),
        }
    }
}

impl StateHandle {
    /// Runs `f` on the current state. The state machine waits while `f` runs: keep it short.
    pub fn read<T>(&self, f: impl FnOnce(&RoutingState) -> T) -> T {
        // A panic in `RoutingState::apply` stops the Raft node; what it left is still readable.
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        f(&state)
    }
}

impl fmt::Debug for StateMachineStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateMachineStore")
            .field("path", &self.db.path)
            .field("last_applied", &self.last_applied)
            .finish()
    }
}

impl fmt::Debug for StateHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateHandle").finish_non_exhaustive()
    }
}

impl fmt::Debug for SnapshotBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotBuilder")
            .field("path", &self.db.path)
            .field("last_log_id", &self.meta.last_log_id)
            .finish()
    }
}

// === impl SnapshotBuilder ===

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<RoutingSnapshot, io::Error> {
        let data = self.db.encode("routing state", &self.state)?;
        let meta = self.meta.clone();
        let last_log_id = meta.last_log_id;
        let encoded_meta = self.db.encode("snapshot metadata", &meta)?;
        let saved = data.clone();
        self.writer
            .call(|done| WriteOp::SaveSnapshot {
                last_log_id,
                meta: encoded_meta,
                data: saved,
                force: false,
                done,
            })
            .await?;
        tracing::info!(path = %self.db.path.display(), meta = %meta, bytes = data.len(), "routing snapshot built");
        Ok(Snapshot {
            meta,
            snapshot: data,
        })
    }
}

// === impl StateMachineStore ===

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            let response = match entry.payload {
                EntryPayload::Normal(command) => {
                    let mut state = self.state.write().map_err(|_| {
                        io::Error::other(format!(
                            "routing store {}: an earlier apply panicked; the routing state is not trustworthy",
                            self.db.path.display()
                        ))
                    })?;
                    state.apply(entry.log_id.index, &command)
                }
                // A blank entry only marks a new leader's term: nothing to apply.
                EntryPayload::Blank => Response::Applied,
                // Membership is Raft's, not the routing state's: remember it for snapshots.
                EntryPayload::Membership(membership) => {
                    self.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                    Response::Applied
                }
            };
            self.last_applied = Some(entry.log_id);
            if let Some(responder) = responder {
                responder.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshot_builder()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Self::SnapshotData,
    ) -> Result<(), io::Error> {
        let state: RoutingState = self.db.decode(
            || format!("routing state of the snapshot received for {meta}"),
            &snapshot,
        )?;
        let encoded_meta = self.db.encode("snapshot metadata", meta)?;
        let last_log_id = meta.last_log_id;
        self.writer
            .call(|done| WriteOp::SaveSnapshot {
                last_log_id,
                meta: encoded_meta,
                data: snapshot,
                force: true,
                done,
            })
            .await?;
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = state;
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        tracing::info!(path = %self.db.path.display(), meta = %meta, "routing snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<RoutingSnapshot>, io::Error> {
        Ok(self.db.read_snapshot()?.map(|(meta, data)| Snapshot {
            meta,
            snapshot: data,
        }))
    }
}
