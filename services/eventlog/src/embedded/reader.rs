//! Reading a partition from a position: what a consumer does on every poll.
//!
//! A [`Cursor`] is the next offset a consumer wants in one partition and an open file
//! positioned at it. Reading takes the partition's [`View`](super::partition::View)
//! for a moment to learn how far it may read, then reads the segment file in large
//! chunks outside any lock. Damage (a frame whose checksum fails) is reported as a
//! [`Skipped`] with the file, byte position and the offset expected there, and the
//! reader resynchronises on the next valid frame.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use super::frame::{self, Decoded};
use super::partition::{PartitionLog, io};
use crate::log::{Offset, Record, Result, Skipped};

/// How much a reader reads from a file at once.
const CHUNK: u64 = 256 * 1024;

/// Where a consumer is in one partition.
#[derive(Debug)]
pub(crate) struct Cursor {
    /// The partition.
    pub part: Arc<PartitionLog>,
    /// The next offset to hand out.
    pub next: Offset,
    /// The segment file being read, if one is open.
    reader: Option<SegReader>,
}

/// An open segment file and a window of its bytes.
#[derive(Debug)]
pub(crate) struct SegReader {
    base: Offset,
    path: Arc<PathBuf>,
    file: File,
    /// Bytes of the file starting at `buf_pos`.
    buf: Vec<u8>,
    buf_pos: u64,
    /// The position of the next frame to read.
    pub pos: u64,
}

impl SegReader {
    pub fn open(base: Offset, path: Arc<PathBuf>, pos: u64) -> Result<Self> {
        let file = File::open(&*path).map_err(io("open", &path))?;
        Ok(Self {
            base,
            path,
            file,
            buf: Vec::new(),
            buf_pos: pos,
            pos,
        })
    }

    /// Makes the window cover `[at, at + n)`; `false` if that reaches past `limit`.
    fn fill(&mut self, at: u64, n: u64, limit: u64) -> Result<bool> {
        let want_end = at + n;
        if want_end > limit {
            return Ok(false);
        }
        let buf_end = self.buf_pos + self.buf.len() as u64;
        if at >= self.buf_pos && want_end <= buf_end {
            return Ok(true);
        }
        if at < self.buf_pos || at > buf_end {
            self.buf.clear();
        } else {
            self.buf.drain(..(at - self.buf_pos) as usize);
        }
        self.buf_pos = at;
        let have_end = at + self.buf.len() as u64;
        let read_to = limit.min(want_end.max(at + CHUNK));
        let old = self.buf.len();
        self.buf.resize(old + (read_to - have_end) as usize, 0);
        self.file
            .seek(SeekFrom::Start(have_end))
            .and_then(|_| self.file.read_exact(&mut self.buf[old..]))
            .map_err(io("read", &self.path))?;
        Ok(true)
    }

    /// The window's bytes from `at` to its end.
    pub fn bytes_from(&self, at: u64) -> &[u8] {
        &self.buf[(at - self.buf_pos) as usize..]
    }
}

/// What one step of reading found.
pub(crate) enum Step {
    /// A record at `pos`, `len` bytes long.
    Frame { len: u64 },
    /// Unreadable bytes at `pos`; reading resumes at `resume`.
    Damage { reason: &'static str, resume: u64 },
    /// Nothing more is visible in this segment.
    End,
}

impl Cursor {
    /// A cursor that starts at `next`.
    pub fn new(part: Arc<PartitionLog>, next: Offset) -> Self {
        Self {
            part,
            next,
            reader: None,
        }
    }

    /// Whether records are visible past this cursor.
    pub fn has_data(&self) -> bool {
        self.next < self.part.view().end
    }

    /// Reads up to `max` records into `out`, reporting damage into `skipped`.
    pub fn read(
        &mut self,
        max: usize,
        out: &mut Vec<Record>,
        skipped: &mut Vec<Skipped>,
    ) -> Result<()> {
        let mut taken = 0;
        while taken < max {
            // Learn, under the lock, which segment to read and how far.
            let (limit, is_last, next_base) = {
                let view = self.part.view();
                if self.next >= view.end || view.segments.is_empty() {
                    return Ok(());
                }
                let earliest = view.segments[0].base;
                if self.next < earliest {
                    tracing::info!(
                        topic = %self.part.topic, partition = self.part.partition,
                        from = self.next, to = earliest,
                        "records were removed by retention; continuing at the earliest kept"
                    );
                    self.next = earliest;
                    self.reader = None;
                }
                let idx = match &self.reader {
                    Some(r) => view.segments.iter().position(|s| s.base == r.base),
                    None => None,
                };
                let idx = match idx {
                    Some(i) => i,
                    None => {
                        let i = view.segment_for(self.next).unwrap_or(0);
                        let seg = &view.segments[i];
                        let pos = seg.position_for(self.next);
                        self.reader = Some(SegReader::open(seg.base, seg.path.clone(), pos)?);
                        i
                    }
                };
                let seg = &view.segments[idx];
                let next_base = view.segments.get(idx + 1).map(|s| s.base);
                (seg.len, next_base.is_none(), next_base)
            };
            let Some(reader) = self.reader.as_mut() else {
                return Ok(());
            };
            while taken < max {
                let pos = reader.pos;
                match step(reader, limit)? {
                    Step::End => break,
                    Step::Frame { len } => {
                        reader.pos += len;
                        let f = frame::parse(reader.bytes_from(pos));
                        if f.offset < self.next {
                            continue;
                        }
                        self.next = f.offset + 1;
                        taken += 1;
                        out.push(Record {
                            topic: self.part.topic.clone(),
                            partition: self.part.partition,
                            offset: f.offset,
                            key: f.key.to_vec(),
                            value: f.value.to_vec(),
                            timestamp_ms: f.timestamp_ms,
                        });
                    }
                    Step::Damage { reason, resume } => {
                        skipped.push(Skipped {
                            topic: self.part.topic.clone(),
                            partition: self.part.partition,
                            offset: self.next,
                            location: format!("{} byte {pos}", reader.path.display()),
                            reason: reason.to_string(),
                        });
                        reader.pos = resume;
                    }
                }
            }
            if taken >= max {
                return Ok(());
            }
            // This segment is read up to what is visible.
            match next_base {
                Some(base) if !is_last => {
                    self.next = self.next.max(base);
                    self.reader = None;
                }
                _ => return Ok(()),
            }
        }
        Ok(())
    }
}

/// Reads the frame at the reader's position, or finds where to resume after damage.
pub(crate) fn step(reader: &mut SegReader, limit: u64) -> Result<Step> {
    let pos = reader.pos;
    if pos >= limit {
        return Ok(Step::End);
    }
    let reason = if reader.fill(pos, frame::HEADER as u64, limit)? {
        match frame::decode(reader.bytes_from(pos)) {
            Decoded::Frame(f) => return Ok(Step::Frame { len: f.len as u64 }),
            Decoded::Bad(reason) => reason,
            Decoded::Incomplete { need } => {
                if reader.fill(pos, need as u64, limit)? {
                    match frame::decode(reader.bytes_from(pos)) {
                        Decoded::Frame(f) => return Ok(Step::Frame { len: f.len as u64 }),
                        Decoded::Bad(reason) => reason,
                        Decoded::Incomplete { .. } => "truncated record",
                    }
                } else {
                    "truncated record"
                }
            }
        }
    } else {
        "truncated record"
    };
    // Damage: look at the rest of the visible segment for the next valid frame.
    reader.fill(pos, limit - pos, limit)?;
    let resume = match frame::resync(reader.bytes_from(pos), 1) {
        Some(rel) => pos + rel as u64,
        None => limit,
    };
    Ok(Step::Damage { reason, resume })
}
