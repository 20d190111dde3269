//! One topic partition on disk: its segment files, what readers may see of them, and
//! the recovery scan that runs when the log is opened.
//!
//! A partition is a directory of segments named by the offset of their first record
//! (`00000000000000000000.log`). Only the newest segment is appended to. What readers
//! may see is the [`View`]: for each segment its visible length and a sparse index
//! (offset → byte position every few KiB). The writer thread moves the view forward
//! once records are written — under `FsyncPolicy::Always` only once they are fsynced,
//! so there a reader never hands out a record that a machine crash could take back.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::frame;
use super::reader::{SegReader, Step, step};
use crate::log::{Error, Offset, Partition, Result};

/// A sparse index entry is added at least every this many bytes.
pub(crate) const INDEX_EVERY: u64 = 4096;

/// One segment as readers see it.
#[derive(Debug, Clone)]
pub(crate) struct SegInfo {
    /// The offset of its first record (and its file name).
    pub base: Offset,
    /// Its file.
    pub path: Arc<PathBuf>,
    /// How many bytes readers may read.
    pub len: u64,
    /// Offset → byte position, ascending, sparse.
    pub index: Vec<(Offset, u64)>,
    /// The newest record's timestamp, `i64::MIN` when it has none.
    pub max_ts: i64,
    /// One past its last record's offset (its base when it has none).
    pub next_offset: Offset,
}

impl SegInfo {
    /// The byte position to start scanning from to find `offset`.
    pub fn position_for(&self, offset: Offset) -> u64 {
        match self.index.partition_point(|&(o, _)| o <= offset) {
            0 => 0,
            i => self.index[i - 1].1,
        }
    }
}

/// What readers may see of a partition.
#[derive(Debug, Default)]
pub(crate) struct View {
    /// Segments, oldest first; never empty once the partition is open.
    pub segments: Vec<SegInfo>,
    /// The offset the next record will get (the high watermark).
    pub end: Offset,
}

impl View {
    /// The index of the segment that holds `offset`, if any is old enough.
    pub fn segment_for(&self, offset: Offset) -> Option<usize> {
        match self.segments.partition_point(|s| s.base <= offset) {
            0 => None,
            i => Some(i - 1),
        }
    }
}

/// One partition of a topic.
#[derive(Debug)]
pub(crate) struct PartitionLog {
    /// The topic it belongs to.
    pub topic: String,
    /// Its number.
    pub partition: Partition,
    /// Its directory.
    pub dir: PathBuf,
    /// What readers may see; the writer thread and retention update it.
    view: Mutex<View>,
}

impl PartitionLog {
    /// Creates the directory and first segment of a new partition.
    pub fn create(topic: &str, partition: Partition, dir: PathBuf) -> Result<Self> {
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let path = segment_path(&dir, 0);
        File::create(&path).map_err(io("create", &path))?;
        Ok(Self {
            topic: topic.to_string(),
            partition,
            dir,
            view: Mutex::new(View {
                segments: vec![SegInfo {
                    base: 0,
                    path: Arc::new(path),
                    len: 0,
                    index: Vec::new(),
                    max_ts: i64::MIN,
                    next_offset: 0,
                }],
                end: 0,
            }),
        })
    }

    /// Opens an existing partition: scans every segment, rebuilds the sparse index,
    /// truncates a torn tail of the newest segment and reports damage elsewhere.
    pub fn open(topic: &str, partition: Partition, dir: PathBuf) -> Result<Self> {
        let mut bases = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io("list", &dir))? {
            let entry = entry.map_err(io("list", &dir))?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".log")) else {
                continue;
            };
            if let Ok(base) = stem.parse::<Offset>() {
                bases.push(base);
            }
        }
        bases.sort_unstable();
        if bases.is_empty() {
            let path = segment_path(&dir, 0);
            File::create(&path).map_err(io("create", &path))?;
            bases.push(0);
        }
        let mut segments = Vec::with_capacity(bases.len());
        let last = bases.len() - 1;
        for (i, &base) in bases.iter().enumerate() {
            segments.push(scan_segment(segment_path(&dir, base), base, i == last)?);
        }
        let end = segments.last().map_or(0, |s| s.next_offset);
        Ok(Self {
            topic: topic.to_string(),
            partition,
            dir,
            view: Mutex::new(View { segments, end }),
        })
    }

    /// The view, locked. Held only for short, non-blocking work.
    pub fn view(&self) -> MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The file of the segment starting at `base`.
pub(crate) fn segment_path(dir: &Path, base: Offset) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

/// Maps an I/O error to [`Error::Io`] naming the operation and the file.
pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { op, path, source }
}

/// Reads a segment through, building its index. Damage followed by valid records is
/// kept (readers step over it); damage at the end of the newest segment is a write
/// the process did not finish before it died, and is cut off. Reads in chunks, so
/// memory stays small however large the segment.
fn scan_segment(path: PathBuf, base: Offset, is_last: bool) -> Result<SegInfo> {
    let file_len = fs::metadata(&path).map_err(io("stat", &path))?.len();
    let path = Arc::new(path);
    let mut info = SegInfo {
        base,
        path: path.clone(),
        len: file_len,
        index: Vec::new(),
        max_ts: i64::MIN,
        next_offset: base,
    };
    let mut reader = SegReader::open(base, path, 0)?;
    let mut last_indexed: Option<u64> = None;
    loop {
        let pos = reader.pos;
        match step(&mut reader, file_len)? {
            Step::End => break,
            Step::Frame { len } => {
                let f = frame::parse(reader.bytes_from(pos));
                if last_indexed.is_none_or(|l| pos - l >= INDEX_EVERY) {
                    info.index.push((f.offset, pos));
                    last_indexed = Some(pos);
                }
                info.max_ts = info.max_ts.max(f.timestamp_ms);
                info.next_offset = f.offset + 1;
                reader.pos += len;
            }
            Step::Damage { reason, resume } if resume < file_len => {
                tracing::warn!(
                    file = %info.path.display(), byte = pos, reason,
                    expected_offset = info.next_offset,
                    "damaged record in the middle of a segment; readers will skip {} bytes",
                    resume - pos
                );
                last_indexed = None;
                reader.pos = resume;
            }
            Step::Damage { reason, .. } if is_last => {
                tracing::warn!(
                    file = %info.path.display(), byte = pos, reason,
                    dropped_bytes = file_len - pos,
                    "torn tail after a crash; truncating the segment"
                );
                let file = OpenOptions::new()
                    .write(true)
                    .open(&*info.path)
                    .map_err(io("open", &info.path))?;
                file.set_len(pos).map_err(io("truncate", &info.path))?;
                file.sync_all().map_err(io("fsync", &info.path))?;
                info.len = pos;
                break;
            }
            Step::Damage { reason, .. } => {
                tracing::warn!(
                    file = %info.path.display(), byte = pos, reason,
                    expected_offset = info.next_offset,
                    "damaged bytes at the end of a sealed segment; readers will skip them"
                );
                break;
            }
        }
    }
    Ok(info)
}
