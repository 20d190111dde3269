//! Consumer groups of the embedded log: who reads which partition, and the offsets a
//! group has committed.
//!
//! Several consumers may share a group. Each topic's partitions are split among the
//! group's live consumers that read it: partition `p` goes to the `p % n`-th consumer,
//! ordered by when they joined. A consumer joining or leaving (being dropped) bumps
//! the group's generation; every consumer re-checks its share at its next poll, and a
//! partition it newly owns starts at the group's committed offset. A commit for a
//! partition a consumer no longer owns is ignored, so a slow consumer cannot move
//! another's position; the records are delivered again (at least once).
//!
//! Committed offsets live in `dir/groups/<group>.json`, replaced atomically (write a
//! temporary file, fsync, rename, fsync the directory).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::partition::{PartitionLog, io};
use super::reader::Cursor;
use super::{Inner, TopicLog};
use crate::log::{Consumer, ConsumerConfig, Error, Offset, Partition, Poll, Result, StartFrom};

/// Committed offsets per topic and partition: the next offset to read.
pub(crate) type Offsets = BTreeMap<String, BTreeMap<Partition, Offset>>;

/// The file form of a group's committed offsets.
#[derive(Debug, Serialize, Deserialize)]
struct GroupFile {
    group: String,
    offsets: Offsets,
}

/// One group, in memory.
#[derive(Debug, Default)]
pub(crate) struct Group {
    /// What it has committed.
    offsets: Offsets,
    /// Live consumers (by member id, in joining order) and the topics each reads.
    members: BTreeMap<u64, Vec<String>>,
    /// Bumped whenever membership changes.
    generation: u64,
    /// Serialises writes of the group's file.
    file_lock: Arc<Mutex<()>>,
}

/// All groups of one log.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    groups: Mutex<HashMap<String, Group>>,
}

/// The file of `group`'s committed offsets. Group names may hold any character;
/// anything but `[A-Za-z0-9._-]` is percent-encoded.
pub(crate) fn group_path(dir: &Path, group: &str) -> PathBuf {
    let mut name = String::with_capacity(group.len() + 5);
    for b in group.bytes() {
        if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
            name.push(b as char);
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    name.push_str(".json");
    dir.join("groups").join(name)
}

fn load_offsets(dir: &Path, group: &str) -> Result<Offsets> {
    let path = group_path(dir, group);
    match fs::read(&path) {
        Ok(bytes) => parse_group_file(&path, &bytes).map(|f| f.offsets),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Offsets::new()),
        Err(e) => Err(io("read", &path)(e)),
    }
}

fn parse_group_file(path: &Path, bytes: &[u8]) -> Result<GroupFile> {
    serde_json::from_slice::<GroupFile>(bytes).map_err(|e| {
        Error::Config(format!(
            "committed offsets in {} are unreadable: {e}",
            path.display()
        ))
    })
}

/// Moves every group's committed offsets that lie past the end of their partition
/// back to that end, rewriting the group's file; called on opening, after recovery.
///
/// Such an offset means a machine crash took back records the group had read and
/// committed: under the interval or never fsync policies readers see records before
/// they are fsynced, while offset files are fsynced on every commit. Left alone, the
/// next records — which reuse those offsets — would be skipped.
pub(crate) fn clamp_committed(dir: &Path, topics: &HashMap<String, Arc<TopicLog>>) -> Result<()> {
    let groups = dir.join("groups");
    for entry in fs::read_dir(&groups).map_err(io("list", &groups))? {
        let path = entry.map_err(io("list", &groups))?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let bytes = fs::read(&path).map_err(io("read", &path))?;
        let mut file = parse_group_file(&path, &bytes)?;
        let mut moved = false;
        for (topic, offsets) in file.offsets.iter_mut() {
            let Some(t) = topics.get(topic) else {
                continue;
            };
            for (partition, next) in offsets.iter_mut() {
                let Some(part) = t.partitions.get(*partition as usize) else {
                    continue;
                };
                let end = part.view().end;
                if *next > end {
                    tracing::warn!(
                        group = %file.group, topic = %topic, partition = *partition,
                        committed = *next, end,
                        "committed offset is past the end of the partition (a machine crash \
                         took back records the group had read); resuming at the end"
                    );
                    *next = end;
                    moved = true;
                }
            }
        }
        if moved {
            let bytes = serde_json::to_vec_pretty(&file).map_err(|e| {
                Error::Config(format!(
                    "cannot encode offsets of group {:?}: {e}",
                    file.group
                ))
            })?;
            write_atomically(&path, &bytes)?;
        }
    }
    Ok(())
}

/// Writes `contents` to `path` atomically: temporary file, fsync, rename, fsync dir.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp).map_err(io("create", &tmp))?;
    file.write_all(contents).map_err(io("write", &tmp))?;
    file.sync_all().map_err(io("fsync", &tmp))?;
    fs::rename(&tmp, path).map_err(io("rename into place", path))?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io("fsync", parent))?;
    }
    Ok(())
}

impl Groups {
    fn with<T>(&self, dir: &Path, group: &str, f: impl FnOnce(&mut Group) -> T) -> Result<T> {
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        if !groups.contains_key(group) {
            let offsets = load_offsets(dir, group)?;
            groups.insert(
                group.to_string(),
                Group {
                    offsets,
                    ..Group::default()
                },
            );
        }
        let g = groups
            .get_mut(group)
            .ok_or_else(|| Error::Config(format!("group {group:?} vanished")))?;
        Ok(f(g))
    }
}

/// A consumer of the embedded log.
pub(crate) struct EmbeddedConsumer {
    inner: Arc<Inner>,
    group: String,
    member: u64,
    topics: Vec<Arc<TopicLog>>,
    start: StartFrom,
    /// The generation our share was computed for; `None` before the first.
    generation: Option<u64>,
    /// One cursor per owned partition.
    cursors: Vec<Cursor>,
    /// Positions of cursors handed to a read that has not come back (a cancelled
    /// poll); they are restored from here.
    in_flight: Vec<(Arc<PartitionLog>, Offset)>,
    /// Where the next poll starts reading, for fairness between partitions.
    rr: usize,
    wake: watch::Receiver<u64>,
    /// The file write of the last `start_commit`, if not yet waited for.
    storing: Option<tokio::task::JoinHandle<Result<()>>>,
}

impl EmbeddedConsumer {
    /// Joins `config.group`.
    pub(crate) fn join(inner: Arc<Inner>, config: ConsumerConfig) -> Result<Self> {
        let mut topics = Vec::with_capacity(config.topics.len());
        for name in &config.topics {
            topics.push(inner.topic(name)?);
        }
        let member = inner.next_member();
        let names = config.topics.clone();
        inner.groups.with(&inner.dir, &config.group, |g| {
            g.members.insert(member, names);
            g.generation += 1;
        })?;
        inner.wake_all();
        let wake = inner.wake.subscribe();
        Ok(Self {
            inner,
            group: config.group,
            member,
            topics,
            start: config.start,
            generation: None,
            cursors: Vec::new(),
            in_flight: Vec::new(),
            rr: 0,
            wake,
            storing: None,
        })
    }

    /// Recomputes which partitions this consumer owns, if membership changed.
    fn refresh(&mut self) -> Result<()> {
        if !self.in_flight.is_empty() {
            self.cursors = self
                .in_flight
                .drain(..)
                .map(|(part, next)| Cursor::new(part, next))
                .collect();
        }
        let member = self.member;
        let first = self.generation.is_none();
        let known = self.generation;
        let topics = self.topics.clone();
        let share = self.inner.groups.with(&self.inner.dir, &self.group, |g| {
            if known == Some(g.generation) {
                return None;
            }
            let mut owned = Vec::new();
            for topic in &topics {
                let readers: Vec<u64> = g
                    .members
                    .iter()
                    .filter(|(_, ts)| ts.iter().any(|t| *t == topic.name))
                    .map(|(m, _)| *m)
                    .collect();
                let Some(me) = readers.iter().position(|m| *m == member) else {
                    continue;
                };
                for (p, part) in topic.partitions.iter().enumerate() {
                    if p % readers.len() == me {
                        let committed = g.offsets.get(&topic.name).and_then(|o| o.get(&(p as u32)));
                        owned.push((part.clone(), committed.copied()));
                    }
                }
            }
            Some((g.generation, owned))
        })?;
        let Some((generation, owned)) = share else {
            return Ok(());
        };
        let mut old = std::mem::take(&mut self.cursors);
        for (part, committed) in owned {
            if let Some(i) = old.iter().position(|c| Arc::ptr_eq(&c.part, &part)) {
                self.cursors.push(old.swap_remove(i));
                continue;
            }
            let (earliest, end) = {
                let view = part.view();
                (view.segments.first().map_or(0, |s| s.base), view.end)
            };
            let next = match (self.start, committed) {
                (StartFrom::Earliest, _) if first => earliest,
                (_, Some(c)) => c,
                (StartFrom::Latest, None) => end,
                (_, None) => earliest,
            };
            self.cursors.push(Cursor::new(part, next));
        }
        self.generation = Some(generation);
        Ok(())
    }

    /// Reads up to `max` records from the owned partitions, on a blocking thread.
    ///
    /// Fair across partitions: each gets an equal share of `max` first, then what the
    /// others left unused goes round again. Draining one partition up to `max` before
    /// the next (as a plain round robin would) lets a busy log starve the partitions
    /// read last, and their records wait many polls: seconds behind the others.
    async fn read(&mut self, max: usize) -> Result<Poll> {
        let mut cursors = std::mem::take(&mut self.cursors);
        self.in_flight = cursors.iter().map(|c| (c.part.clone(), c.next)).collect();
        let start = self.rr;
        self.rr = self.rr.wrapping_add(1);
        let (cursors, result) = tokio::task::spawn_blocking(move || {
            let mut poll = Poll::default();
            let n = cursors.len();
            let mut result = Ok(());
            let share = max.div_ceil(n.max(1));
            'rounds: loop {
                let before = poll.records.len();
                for i in 0..n {
                    let left = max - poll.records.len();
                    if left == 0 {
                        break 'rounds;
                    }
                    let cursor = &mut cursors[(start + i) % n];
                    if !cursor.has_data() {
                        continue;
                    }
                    let take = left.min(share);
                    if let Err(e) = cursor.read(take, &mut poll.records, &mut poll.skipped) {
                        result = Err(e);
                        break 'rounds;
                    }
                }
                if poll.records.len() == before {
                    break;
                }
            }
            (cursors, result.map(|()| poll))
        })
        .await
        .map_err(|e| Error::Unavailable(format!("event log read task failed: {e}")))?;
        self.cursors = cursors;
        self.in_flight.clear();
        result
    }
}

#[async_trait]
impl Consumer for EmbeddedConsumer {
    async fn poll(&mut self, max: usize, wait: std::time::Duration) -> Result<Poll> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            self.wake.borrow_and_update();
            self.refresh()?;
            if max > 0 && self.cursors.iter().any(Cursor::has_data) {
                let poll = self.read(max).await?;
                if !poll.records.is_empty() || !poll.skipped.is_empty() {
                    return Ok(poll);
                }
            }
            match tokio::time::timeout_at(deadline, self.wake.changed()).await {
                Err(_) => return Ok(Poll::default()),
                Ok(Err(_)) => return Err(Error::Closed),
                Ok(Ok(())) => {}
            }
        }
    }

    async fn commit(&mut self, positions: &[(String, Partition, Offset)]) -> Result<()> {
        self.stored().await?;
        match self.store(positions)? {
            Some(write) => join_write(write.await),
            None => Ok(()),
        }
    }

    async fn start_commit(&mut self, positions: &[(String, Partition, Offset)]) -> Result<()> {
        // One write at a time, so they land in the order made (usually the last one
        // finished long ago).
        self.stored().await?;
        self.storing = self.store(positions)?;
        Ok(())
    }
}

fn join_write(joined: std::result::Result<Result<()>, tokio::task::JoinError>) -> Result<()> {
    joined.map_err(|e| Error::Unavailable(format!("event log commit task failed: {e}")))?
}

impl EmbeddedConsumer {
    /// Waits for the last `start_commit`'s write; its error, if it failed.
    async fn stored(&mut self) -> Result<()> {
        match self.storing.take() {
            Some(write) => join_write(write.await),
            None => Ok(()),
        }
    }

    /// Starts writing `positions` into the group's file, on the blocking pool; `None`
    /// when there is nothing to write.
    fn store(
        &mut self,
        positions: &[(String, Partition, Offset)],
    ) -> Result<Option<tokio::task::JoinHandle<Result<()>>>> {
        if positions.is_empty() {
            return Ok(None);
        }
        self.refresh()?;
        let owned: Vec<(String, Partition)> = self
            .cursors
            .iter()
            .map(|c| (c.part.topic.clone(), c.part.partition))
            .collect();
        let group = self.group.clone();
        let inner = self.inner.clone();
        let positions = positions.to_vec();
        Ok(Some(tokio::task::spawn_blocking(move || -> Result<()> {
            let dir = &inner.dir;
            let file_lock = inner.groups.with(dir, &group, |g| g.file_lock.clone())?;
            let _guard = file_lock.lock().unwrap_or_else(|e| e.into_inner());
            let snapshot = inner.groups.with(dir, &group, |g| {
                for (topic, partition, next) in positions {
                    if owned.iter().any(|(t, p)| *t == topic && *p == partition) {
                        g.offsets.entry(topic).or_default().insert(partition, next);
                    } else {
                        tracing::debug!(
                            group = %group, topic = %topic, partition, next,
                            "commit for a partition this consumer no longer owns; ignored"
                        );
                    }
                }
                g.offsets.clone()
            })?;
            let file = GroupFile {
                group: group.clone(),
                offsets: snapshot,
            };
            let bytes = serde_json::to_vec_pretty(&file).map_err(|e| {
                Error::Config(format!("cannot encode offsets of group {group:?}: {e}"))
            })?;
            write_atomically(&group_path(dir, &group), &bytes)
        })))
    }
}

impl Drop for EmbeddedConsumer {
    fn drop(&mut self) {
        let member = self.member;
        let left = self.inner.groups.with(&self.inner.dir, &self.group, |g| {
            g.members.remove(&member);
            g.generation += 1;
        });
        if left.is_ok() {
            self.inner.wake_all();
        }
    }
}
