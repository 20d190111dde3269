//! A fixed-width bit set over agent indices.
//!
//! Hand-written rather than taken from `fixedbitset` because the router's hot loop needs
//! the raw words of two sets at once (eligible ∧ available) without an iterator adapter or
//! a temporary set; this is the whole of it.

/// One bit per agent index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Bits {
    words: Vec<u64>,
}

impl Bits {
    /// A set with room for `len` indices, all clear.
    pub(crate) fn with_len(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(64)],
        }
    }

    pub(crate) fn set(&mut self, i: usize, on: bool) {
        let (w, b) = (i / 64, i % 64);
        if on {
            self.words[w] |= 1 << b;
        } else {
            self.words[w] &= !(1 << b);
        }
    }

    pub(crate) fn get(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Whether the two sets share any index.
    pub(crate) fn intersects(&self, other: &Bits) -> bool {
        self.words.iter().zip(&other.words).any(|(a, b)| a & b != 0)
    }

    /// Calls `f` with every index in both sets, in ascending order.
    #[inline]
    pub(crate) fn for_each_common(&self, other: &Bits, mut f: impl FnMut(usize)) {
        for (w, (a, b)) in self.words.iter().zip(&other.words).enumerate() {
            let mut bits = a & b;
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                f(w * 64 + i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_indices_are_visited_in_order_across_words() {
        let mut a = Bits::with_len(200);
        let mut b = Bits::with_len(200);
        for i in [0, 3, 64, 130, 199] {
            a.set(i, true);
        }
        for i in [3, 64, 65, 199] {
            b.set(i, true);
        }
        let mut seen = vec![];
        a.for_each_common(&b, |i| seen.push(i));
        assert_eq!(seen, vec![3, 64, 199]);
        assert!(a.intersects(&b));
        a.set(3, false);
        assert!(!a.get(3));
    }
}
