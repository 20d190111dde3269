//! How one record is laid out in a segment file, and how a reader finds its way back
//! after damage.
//!
//! ```text
//! magic u32 | crc u32 | len u32 | offset u64 | timestamp i64 | key_len u32 | key | value
//!                       └──────────────── covered by crc (CRC-32, crc32fast) ───────────┘
//! ```
//!
//! All integers are little-endian. `len` counts the bytes after it (the body). The CRC
//! covers `len` and the body, so a flipped length is caught like any other damage. A
//! reader that meets a bad frame resynchronises by scanning forward for the magic
//! followed by a frame whose CRC holds ([`resync`]).

use crate::log::{Message, Offset};

/// Marks the start of every frame: `HLG1`.
pub(crate) const MAGIC: u32 = u32::from_le_bytes(*b"HLG1");
/// Bytes before the body: magic, crc, len.
pub(crate) const HEADER: usize = 12;
/// Bytes of the body before the key: offset, timestamp, key length.
const BODY_FIXED: usize = 20;
/// The largest body a frame may have; a bigger length is damage, not a record.
pub(crate) const MAX_BODY: usize = 64 * 1024 * 1024;

/// The size on disk of a message once framed.
pub(crate) fn framed_len(message: &Message) -> usize {
    HEADER + BODY_FIXED + message.key.len() + message.value.len()
}

/// Appends `message`, framed with `offset`, to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, offset: Offset, message: &Message) {
    let body_len = BODY_FIXED + message.key.len() + message.value.len();
    let start = out.len();
    out.reserve(HEADER + body_len);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // crc, filled in below
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&message.timestamp_ms.to_le_bytes());
    out.extend_from_slice(&(message.key.len() as u32).to_le_bytes());
    out.extend_from_slice(&message.key);
    out.extend_from_slice(&message.value);
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// A frame read from bytes, borrowing its key and value.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    /// The record's offset.
    pub offset: Offset,
    /// The producer's timestamp (ms since the epoch).
    pub timestamp_ms: i64,
    /// The key.
    pub key: &'a [u8],
    /// The value.
    pub value: &'a [u8],
    /// The frame's whole length on disk.
    pub len: usize,
}

/// What reading a frame at the start of some bytes found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded<'a> {
    /// A whole, valid frame.
    Frame(Frame<'a>),
    /// The bytes end before the frame does: `need` bytes would be required to judge.
    Incomplete {
        /// How many bytes from the frame's start are needed.
        need: usize,
    },
    /// Not a valid frame.
    Bad(&'static str),
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// Reads the frame that `bytes` starts with.
pub(crate) fn decode(bytes: &[u8]) -> Decoded<'_> {
    if bytes.len() < HEADER {
        return Decoded::Incomplete { need: HEADER };
    }
    if u32_at(bytes, 0) != MAGIC {
        return Decoded::Bad("bad magic");
    }
    let body_len = u32_at(bytes, 8) as usize;
    if !(BODY_FIXED..=MAX_BODY).contains(&body_len) {
        return Decoded::Bad("implausible record length");
    }
    let total = HEADER + body_len;
    if bytes.len() < total {
        return Decoded::Incomplete { need: total };
    }
    if crc32fast::hash(&bytes[8..total]) != u32_at(bytes, 4) {
        return Decoded::Bad("checksum mismatch");
    }
    let body = &bytes[HEADER..total];
    let key_len = u32_at(body, 16) as usize;
    if key_len > body_len - BODY_FIXED {
        return Decoded::Bad("key longer than record");
    }
    Decoded::Frame(Frame {
        offset: u64_at(body, 0),
        timestamp_ms: u64_at(body, 8) as i64,
        key: &body[BODY_FIXED..BODY_FIXED + key_len],
        value: &body[BODY_FIXED + key_len..],
        len: total,
    })
}

/// Reads a frame that [`decode`] has already found valid, without checking it again.
pub(crate) fn parse(bytes: &[u8]) -> Frame<'_> {
    let total = HEADER + u32_at(bytes, 8) as usize;
    let body = &bytes[HEADER..total];
    let key_len = u32_at(body, 16) as usize;
    Frame {
        offset: u64_at(body, 0),
        timestamp_ms: u64_at(body, 8) as i64,
        key: &body[BODY_FIXED..BODY_FIXED + key_len],
        value: &body[BODY_FIXED + key_len..],
        len: total,
    }
}

/// Where, at or after `from`, the next valid frame in `bytes` starts. `None` if there
/// is none wholly inside `bytes` (a frame cut off by the end of `bytes` does not count).
pub(crate) fn resync(bytes: &[u8], from: usize) -> Option<usize> {
    let magic = MAGIC.to_le_bytes();
    let mut at = from;
    while at + HEADER <= bytes.len() {
        let rel = bytes[at..].windows(4).position(|w| w == magic)?;
        at += rel;
        if let Decoded::Frame(_) = decode(&bytes[at..]) {
            return Some(at);
        }
        at += 1;
    }
    None
}
