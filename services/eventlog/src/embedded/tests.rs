//! Unit tests of the embedded log's framing, resynchronisation and index.

use super::frame::{self, Decoded};
use super::partition::SegInfo;
use crate::log::Message;

fn msg(key: &str, value: &str) -> Message {
    Message {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        timestamp_ms: -5,
    }
}

#[test]
fn a_framed_record_decodes_to_what_was_encoded() {
    let mut buf = Vec::new();
    frame::encode(&mut buf, 42, &msg("acme/c1", "hello"));
    assert_eq!(buf.len(), frame::framed_len(&msg("acme/c1", "hello")));
    match frame::decode(&buf) {
        Decoded::Frame(f) => {
            assert_eq!(
                (f.offset, f.timestamp_ms, f.key, f.value),
                (42, -5, &b"acme/c1"[..], &b"hello"[..])
            );
            assert_eq!(f.len, buf.len());
            assert_eq!(frame::parse(&buf), f);
        }
        other => panic!("expected a frame, got {other:?}"),
    }
}

#[test]
fn a_cut_off_frame_is_incomplete_and_a_flipped_bit_is_bad() {
    let mut buf = Vec::new();
    frame::encode(&mut buf, 1, &msg("k", "value"));
    assert!(matches!(
        frame::decode(&buf[..5]),
        Decoded::Incomplete { .. }
    ));
    assert!(matches!(
        frame::decode(&buf[..buf.len() - 1]),
        Decoded::Incomplete { .. }
    ));
    let mut bad = buf.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(frame::decode(&bad), Decoded::Bad("checksum mismatch"));
    let mut bad_magic = buf;
    bad_magic[0] ^= 1;
    assert_eq!(frame::decode(&bad_magic), Decoded::Bad("bad magic"));
}

#[test]
fn resync_finds_the_next_valid_frame_after_damage() {
    let mut buf = Vec::new();
    frame::encode(&mut buf, 0, &msg("k", "first"));
    let second = buf.len();
    frame::encode(&mut buf, 1, &msg("k", "second"));
    let third = buf.len();
    frame::encode(&mut buf, 2, &msg("k", "third"));
    buf[second + 14] ^= 0xff;
    assert_eq!(frame::resync(&buf, second + 1), Some(third));
    assert_eq!(frame::resync(&buf, third + 1), None);
}

#[test]
fn the_sparse_index_points_at_or_before_the_wanted_offset() {
    let seg = SegInfo {
        base: 100,
        path: std::sync::Arc::new("x".into()),
        len: 0,
        index: vec![(100, 0), (150, 4096), (200, 8192)],
        max_ts: 0,
        next_offset: 250,
    };
    assert_eq!(seg.position_for(100), 0);
    assert_eq!(seg.position_for(149), 0);
    assert_eq!(seg.position_for(150), 4096);
    assert_eq!(seg.position_for(240), 8192);
}
