//! The routing store as a simulated replica uses it: the same redb files and writer thread,
//! with tokio's paused clock held still while the writer works.
//!
//! The store commits on its own thread and wakes openraft from there. Under
//! `#[tokio::test(start_paused = true)]` tokio advances the paused clock as soon as every task
//! waits, and a task waiting for another thread counts as waiting: each commit would let
//! virtual time jump to the next timer (a heartbeat, an election timeout, a delayed message), by
//! however far the race with the writer thread went this time. These wrappers hold the clock
//! (a `spawn_blocking` task is in flight, which stops tokio from advancing a paused clock) for
//! as long as a store call waits for the writer, and make an append return only once it is
//! durable, so storage costs no virtual time and every run of a seed sees the same clock.

use std::fmt;
use std::io;
use std::ops::RangeBounds;

use futures::Stream;
use openraft::storage::{
    EntryResponder, IOFlushed, LogState, RaftLogReader, RaftLogStorage, RaftSnapshotBuilder,
    RaftStateMachine,
};
use openraft::type_config::TypeConfigExt;
use openraft::type_config::alias::{
    LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf, VoteOf,
};
use openraft::{OptionalSend, RaftTypeConfig};

use crate::store::{LogReader, LogStore, SnapshotBuilder, StateHandle, StateMachineStore};
use crate::typ::TypeConfig;

/// Stops tokio from advancing its paused clock until dropped. Outside a runtime, or with a
/// clock that is not paused, it changes nothing.
struct ClockHold {
    /// Dropping it ends the blocking task that holds the clock.
    _release: Option<std::sync::mpsc::Sender<()>>,
}

fn hold_clock() -> ClockHold {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return ClockHold { _release: None };
    };
    let (release, released) = std::sync::mpsc::channel::<()>();
    // Returns when `release` is dropped: tokio counts the task as blocking work in flight.
    drop(runtime.spawn_blocking(move || {
        let _ = released.recv();
    }));
    ClockHold {
        _release: Some(release),
    }
}

// === impl SimLogStore ===

/// [`LogStore`] for a simulated replica: every call that waits for the writer thread holds the
/// paused clock, and an append returns once its entries are durable.
pub struct SimLogStore {
    /// The real log store.
    inner: LogStore,
}

impl SimLogStore {
    /// Wraps a log store opened with [`crate::store::open`].
    pub fn new(inner: LogStore) -> Self {
        Self { inner }
    }

    /// The real store, e.g. for [`LogStore::closed`] before it is handed to openraft.
    pub fn inner(&self) -> &LogStore {
        &self.inner
    }
}

impl fmt::Debug for SimLogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SimLogStore").field(&self.inner).finish()
    }
}

impl RaftLogReader<TypeConfig> for SimLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<<TypeConfig as RaftTypeConfig>::Entry>, io::Error> {
        self.inner.try_get_log_entries(range).await
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<TypeConfig>>, io::Error> {
        self.inner.read_vote().await
    }
}

impl RaftLogStorage<TypeConfig> for SimLogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        self.inner.get_log_state().await
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.inner.get_log_reader().await
    }

    async fn save_vote(&mut self, vote: &VoteOf<TypeConfig>) -> Result<(), io::Error> {
        let _hold = hold_clock();
        self.inner.save_vote(vote).await
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogIdOf<TypeConfig>>,
    ) -> Result<(), io::Error> {
        let _hold = hold_clock();
        self.inner.save_committed(committed).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<TypeConfig>>, io::Error> {
        self.inner.read_committed().await
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
        let _hold = hold_clock();
        let (flushed, durable) = TypeConfig::oneshot();
        self.inner
            .append(entries, IOFlushed::signal(flushed))
            .await?;
        let result = durable.await.unwrap_or_else(|_| {
            Err(io::Error::other(
                "the routing store's writer dropped an append without reporting it",
            ))
        });
        callback.io_completed(result);
        Ok(())
    }

    async fn truncate_after(
        &mut self,
        last_log_id: Option<LogIdOf<TypeConfig>>,
    ) -> Result<(), io::Error> {
        let _hold = hold_clock();
        self.inner.truncate_after(last_log_id).await
    }

    async fn purge(&mut self, log_id: LogIdOf<TypeConfig>) -> Result<(), io::Error> {
        let _hold = hold_clock();
        self.inner.purge(log_id).await
    }
}

// === impl SimStateMachine ===

/// [`StateMachineStore`] for a simulated replica: saving a snapshot (built or installed) holds
/// the paused clock.
pub struct SimStateMachine {
    /// The real state machine.
    inner: StateMachineStore,
}

impl SimStateMachine {
    /// Wraps a state machine opened with [`crate::store::open`].
    pub fn new(inner: StateMachineStore) -> Self {
        Self { inner }
    }

    /// Reads the routing state while openraft owns the state machine.
    pub fn state_handle(&self) -> StateHandle {
        self.inner.state_handle()
    }
}

impl fmt::Debug for SimStateMachine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SimStateMachine").field(&self.inner).finish()
    }
}

/// [`SnapshotBuilder`] that holds the paused clock while the snapshot is saved.
pub struct SimSnapshotBuilder {
    /// The real builder.
    inner: SnapshotBuilder,
}

impl fmt::Debug for SimSnapshotBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SimSnapshotBuilder")
            .field(&self.inner)
            .finish()
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SimSnapshotBuilder {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<TypeConfig, Vec<u8>>, io::Error> {
        let _hold = hold_clock();
        self.inner.build_snapshot().await
    }
}

impl RaftStateMachine<TypeConfig> for SimStateMachine {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = SimSnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<TypeConfig>>, StoredMembershipOf<TypeConfig>), io::Error> {
        self.inner.applied_state().await
    }

    async fn apply<Strm>(&mut self, entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        self.inner.apply(entries).await
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SimSnapshotBuilder {
            inner: self.inner.get_snapshot_builder().await,
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<TypeConfig>,
        snapshot: Self::SnapshotData,
    ) -> Result<(), io::Error> {
        let _hold = hold_clock();
        self.inner.install_snapshot(meta, snapshot).await
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<SnapshotOf<TypeConfig, Self::SnapshotData>>, io::Error> {
        self.inner.get_current_snapshot().await
    }
}
