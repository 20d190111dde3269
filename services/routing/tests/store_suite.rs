//! The routing store against openraft's own storage suite, on disk and in memory, and what a
//! restart and a damaged file look like.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Result;
use hotline_routing::state::{Command, RoutingState};
use hotline_routing::store::{self, LogStore, StateMachineStore, StoreConfig, StoreError};
use hotline_routing::typ::{SiteNode, TypeConfig};
use openraft::entry::RaftEntry;
use openraft::storage::{
    IOFlushed, RaftLogReader, RaftLogStorage, RaftSnapshotBuilder, RaftStateMachine,
};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::TypeConfigExt;
use openraft::{ErrorSubject, ErrorVerb, Membership, StorageError, StorageHelper};
use tempfile::TempDir;

type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;

fn suite_error(err: impl std::error::Error + Send + Sync + 'static) -> StorageError<TypeConfig> {
    StorageError::from_io_error(
        ErrorSubject::Store,
        ErrorVerb::Read,
        std::io::Error::other(err),
    )
}

/// A fresh store in its own temporary directory, fsyncing for real.
struct DurableStores;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for DurableStores {
    async fn build(
        &self,
    ) -> Result<(TempDir, LogStore, StateMachineStore), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().map_err(suite_error)?;
        let (log, sm) = store::open(&dir.path().join("routing.redb"), &StoreConfig::default())
            .map_err(suite_error)?;
        Ok((dir, log, sm))
    }
}

/// A fresh store on redb's in-memory backend.
struct InMemoryStores;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore> for InMemoryStores {
    async fn build(&self) -> Result<((), LogStore, StateMachineStore), StorageError<TypeConfig>> {
        let (log, sm) = store::open_in_memory().map_err(suite_error)?;
        Ok(((), log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_store_passes_the_openraft_storage_suite() -> Result<()> {
    Suite::test_all(DurableStores).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_store_passes_the_openraft_storage_suite() -> Result<()> {
    Suite::test_all(InMemoryStores).await?;
    Ok(())
}

fn log_id(term: u64, index: u64) -> LogId {
    openraft::testing::log_id::<TypeConfig>(term, 1, index)
}

fn noop(term: u64, index: u64) -> Entry {
    Entry::new_normal(log_id(term, index), Command::Noop)
}

fn membership(term: u64, index: u64) -> Entry {
    let voters = BTreeSet::from([1, 2, 3]);
    let nodes = voters
        .iter()
        .map(|id| {
            let node = SiteNode {
                site: format!("site-{id}"),
                rpc_addr: format!("10.0.0.{id}:7100"),
                witness: *id == 3,
            };
            (*id, node)
        })
        .collect::<BTreeMap<_, _>>();
    let membership = Membership::new(vec![voters], nodes).expect("voters are all nodes");
    Entry::new_membership(log_id(term, index), membership)
}

/// Appends and waits until openraft would hear the entries are durable.
async fn append_durably(log: &mut LogStore, entries: Vec<Entry>) -> Result<()> {
    let (tx, rx) = TypeConfig::oneshot();
    log.append(entries, IOFlushed::signal(tx)).await?;
    rx.await??;
    Ok(())
}

async fn apply(sm: &mut StateMachineStore, entries: Vec<Entry>) -> Result<()> {
    let stream = futures::stream::iter(entries.into_iter().map(|entry| Ok((entry, None))));
    sm.apply(stream).await?;
    Ok(())
}

#[tokio::test]
async fn reopened_store_finds_its_vote_logs_committed_id_and_snapshot() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("routing.redb");
    let vote = Vote::new_committed(3, 1);
    let entries: Vec<Entry> = std::iter::once(membership(1, 1))
        .chain((2..=10).map(|index| noop(3, index)))
        .collect();

    let state_at_snapshot = {
        let (mut log, mut sm) = store::open(&path, &StoreConfig::default())?;
        log.save_vote(&vote).await?;
        append_durably(&mut log, entries.clone()).await?;
        apply(&mut sm, entries[..6].to_vec()).await?;
        let snapshot = sm.get_snapshot_builder().await.build_snapshot().await?;
        assert_eq!(snapshot.meta.last_log_id, Some(log_id(3, 6)));
        log.purge(log_id(3, 4)).await?;
        // Not waited for: it must still reach the disk before the store closes.
        log.save_committed(Some(log_id(3, 8))).await?;
        sm.state_handle().read(RoutingState::clone)
    };

    let (mut log, mut sm) = store::open(&path, &StoreConfig::default())?;
    assert_eq!(log.read_vote().await?, Some(vote));
    assert_eq!(log.read_committed().await?, Some(log_id(3, 8)));
    let state = log.get_log_state().await?;
    assert_eq!(state.last_purged_log_id, Some(log_id(3, 4)));
    assert_eq!(state.last_log_id, Some(log_id(3, 10)));
    assert_eq!(
        log.try_get_log_entries(5..=10).await?,
        entries[4..].to_vec()
    );
    assert_eq!(log.try_get_log_entries(..5).await?, Vec::<Entry>::new());

    let current = sm
        .get_current_snapshot()
        .await?
        .expect("a snapshot was saved");
    assert_eq!(current.meta.last_log_id, Some(log_id(3, 6)));
    assert_eq!(current.meta.last_membership.log_id(), &Some(log_id(1, 1)));
    let (applied, stored_membership) = sm.applied_state().await?;
    assert_eq!(applied, Some(log_id(3, 6)));
    assert_eq!(stored_membership, current.meta.last_membership);
    assert_eq!(
        sm.state_handle().read(RoutingState::clone),
        state_at_snapshot
    );

    // openraft re-applies the committed entries after the snapshot on start-up.
    StorageHelper::new(&mut log, &mut sm)
        .get_initial_state()
        .await?;
    assert_eq!(sm.applied_state().await?.0, Some(log_id(3, 8)));
    Ok(())
}

fn open_error(path: &Path) -> StoreError {
    match store::open(path, &StoreConfig::default()) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(err) => err,
    }
}

#[test]
fn file_that_is_not_a_store_is_refused_with_an_error_naming_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("routing.redb");
    std::fs::write(&path, vec![0xA5; 64 * 1024])?;

    let err = open_error(&path);
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(!err.is_retryable());
    Ok(())
}

/// Ways a disk or an operator damages a file after the store wrote it.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// Every byte of the middle half flipped: the pages, past redb's header.
    FlippedPages,
    /// The second half gone, as after a copy cut short.
    Truncated,
    /// The first 4 KiB zeroed: the header and the commit slots.
    ZeroedHeader,
    /// One byte flipped in every 4 KiB page.
    BitRot,
}

impl Damage {
    fn apply(self, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        match self {
            Damage::FlippedPages => bytes[len / 4..len / 4 * 3]
                .iter_mut()
                .for_each(|b| *b ^= 0x5A),
            Damage::Truncated => bytes.truncate(len / 2),
            Damage::ZeroedHeader => bytes[..4096.min(len)].fill(0),
            Damage::BitRot => bytes
                .iter_mut()
                .step_by(4096)
                .skip(1)
                .for_each(|b| *b ^= 0x01),
        }
    }
}

#[tokio::test]
async fn store_whose_file_was_damaged_is_refused_with_an_error_naming_it() -> Result<()> {
    for damage in [
        Damage::FlippedPages,
        Damage::Truncated,
        Damage::ZeroedHeader,
        Damage::BitRot,
    ] {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("routing.redb");
        {
            let (mut log, _sm) = store::open(&path, &StoreConfig::default())?;
            append_durably(&mut log, (1..=200).map(|index| noop(1, index)).collect()).await?;
        }
        let mut bytes = std::fs::read(&path)?;
        damage.apply(&mut bytes);
        std::fs::write(&path, bytes)?;

        let err = open_error(&path);
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{damage:?}: {err}"
        );
    }
    Ok(())
}

#[test]
fn path_that_is_a_directory_is_refused_with_an_error_naming_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let err = open_error(dir.path());
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    Ok(())
}

#[test]
fn store_still_open_is_refused_with_a_retryable_error() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("routing.redb");
    let _open = store::open(&path, &StoreConfig::default())?;

    let err = open_error(&path);
    assert!(err.is_retryable(), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    Ok(())
}

#[test]
fn config_without_room_to_batch_is_refused() {
    let config = StoreConfig {
        max_batch: 0,
        ..StoreConfig::default()
    };
    let err = config.validate().expect_err("max_batch 0");
    assert!(err.to_string().contains("max_batch"), "{err}");
}

#[tokio::test]
async fn appends_queued_during_a_commit_share_the_next_commit() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut log, _sm) = store::open(&dir.path().join("routing.redb"), &StoreConfig::default())?;
    let appends = 500;
    let mut flushed = Vec::with_capacity(appends);
    for index in 1..=appends as u64 {
        let (tx, rx) = TypeConfig::oneshot();
        log.append([noop(1, index)], IOFlushed::signal(tx)).await?;
        flushed.push(rx);
    }
    for rx in flushed {
        rx.await??;
    }

    let stats = log.fsync_stats();
    assert_eq!(stats.entries, appends as u64);
    assert!(
        stats.commits < appends as u64 / 2,
        "{appends} appends took {} commits",
        stats.commits
    );
    assert_eq!(
        log.get_log_state().await?.last_log_id,
        Some(log_id(1, appends as u64))
    );
    Ok(())
}
