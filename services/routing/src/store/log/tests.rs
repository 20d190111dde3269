//! `index_span` against the standard library's own reading of a range.

use std::ops::Bound;

use proptest::prelude::*;

use super::index_span;

/// The indexes a `(start, end)` span covers, within `0..=limit`.
fn covered(span: Option<(u64, Option<u64>)>, limit: u64) -> Vec<u64> {
    match span {
        None => Vec::new(),
        Some((start, end)) => (start..=limit)
            .take_while(|i| end.is_none_or(|end| *i < end))
            .collect(),
    }
}

fn bound(kind: u8, at: u64) -> Bound<u64> {
    match kind % 3 {
        0 => Bound::Included(at),
        1 => Bound::Excluded(at),
        _ => Bound::Unbounded,
    }
}

proptest! {
    #[test]
    fn span_covers_exactly_the_indexes_the_range_contains(
        start_kind in any::<u8>(),
        start in 0u64..40,
        end_kind in any::<u8>(),
        end in 0u64..40,
    ) {
        let range = (bound(start_kind, start), bound(end_kind, end));
        let expected: Vec<u64> = (0..=50).filter(|i| std::ops::RangeBounds::contains(&range, i)).collect();
        prop_assert_eq!(covered(index_span(&range), 50), expected);
    }
}

#[test]
fn span_reaching_the_last_index_is_unbounded_and_one_past_it_is_empty() {
    assert_eq!(index_span(&(7..=u64::MAX)), Some((7, None)));
    assert_eq!(
        index_span(&(Bound::Excluded(u64::MAX), Bound::Unbounded)),
        None
    );
    assert_eq!(index_span(&(3..3)), None);
    assert_eq!(index_span(&(..)), Some((0, None)));
}
