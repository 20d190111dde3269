//! [`ShardedMap`]: a hash map split into 64 smaller ones of staggered sizes, so that
//! growing never stops the world.
//!
//! A `HashMap` grows by allocating a table twice the size and moving every entry into
//! it at once. For the maps that grow with traffic — recently seen event ids, contacts
//! of the last hour — that one move is a pause: a million entries took 100–250 ms on a
//! shared 2-core machine, which showed up as the event pipeline's p99.
//!
//! Split over 64 shards, each growth moves a few percent of the entries. But shards of
//! equal size all reach their growth threshold within the same few thousand inserts,
//! and 64 growths in a row are the same pause again, smeared over a few batches (seen:
//! 20–40 ms per batch of a few thousand events). So the shards are deliberately
//! unequal: shard `i` takes a share of the keys proportional to `2^(i/64)`, the largest
//! twice the smallest. Their thresholds then fall evenly over every doubling of the
//! map, one growth every ~1% of inserts, each moving at most ~3% of the entries.
//! Lookups stay one hash, one table read and one probe.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::hash::{BuildHasher, Hash};

use rustc_hash::{FxBuildHasher, FxHashMap};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How many maps a [`ShardedMap`] is split into.
const SHARDS: usize = 64;

/// Hash bins mapped onto shards by [`STAGGER`] (a power of two).
const BINS: usize = 1024;

/// Bin → shard, giving shard `i` a share of the bins proportional to `2^(i/64)`: bin
/// `j` stands for `x = (j + ½) / BINS` in `[0, 1)` and goes to `⌊64 · log2(1 + x)⌋`.
static STAGGER: [u8; BINS] = stagger();

const fn stagger() -> [u8; BINS] {
    let mut table = [0u8; BINS];
    let mut j = 0;
    while j < BINS {
        // y = 1 + x in 32-bit fixed point; five squarings give y^32 < 2^32 (so the last
        // product fits in 128 bits), the sixth y^64; its integer log2 is 64·log2(y).
        let mut y: u128 = (1u128 << 32) + (((2 * j as u128 + 1) << 32) / (2 * BINS as u128));
        let mut k = 0;
        while k < 6 {
            y = (y * y) >> 32;
            k += 1;
        }
        let shard = (127 - y.leading_zeros()) - 32;
        table[j] = if shard as usize >= SHARDS {
            (SHARDS - 1) as u8
        } else {
            shard as u8
        };
        j += 1;
    }
    table
}

/// A hash map in [`SHARDS`] parts; see the [module docs](self).
///
/// Serialised as one map with its keys in order, so equal maps encode the same.
pub struct ShardedMap<K, V> {
    shards: Box<[FxHashMap<K, V>]>,
}

impl<K, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| FxHashMap::default()).collect(),
        }
    }
}

impl<K: Hash + Eq, V> ShardedMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        // Bits 32..42 of the hash each shard's own table uses: its bucket index takes the
        // low bits and its control bytes the top seven, so fixing these bits per shard
        // costs the shard's table nothing.
        STAGGER[((FxBuildHasher.hash_one(key) >> 32) as usize) & (BINS - 1)] as usize
    }

    /// The entry of `key`, to look at or fill in.
    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        let s = self.shard(&key);
        self.shards[s].entry(key)
    }

    /// Inserts, returning the value `key` had.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        let s = self.shard(&key);
        self.shards[s].insert(key, value)
    }

    /// The value of `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[self.shard(key)].get(key)
    }

    /// Whether `key` is in the map.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }

    /// Removes `key`, returning its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let s = self.shard(key);
        self.shards[s].remove(key)
    }

    /// Keeps only the entries `f` says to keep.
    pub fn retain(&mut self, mut f: impl FnMut(&K, &mut V) -> bool) {
        for shard in self.shards.iter_mut() {
            shard.retain(&mut f);
        }
    }
}

impl<K, V> ShardedMap<K, V> {
    /// How many entries.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len()).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.is_empty())
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flat_map(|s| s.iter())
    }

    /// Every entry, to change its value, in no particular order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.shards.iter_mut().flat_map(|s| s.iter_mut())
    }

    /// Every value, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.shards.iter().flat_map(|s| s.values())
    }
}

impl<K: Hash + Eq, V> FromIterator<(K, V)> for ShardedMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = Self::new();
        for (k, v) in iter {
            map.insert(k, v);
        }
        map
    }
}

impl<K: fmt::Debug + Ord, V: fmt::Debug> fmt::Debug for ShardedMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut entries: Vec<(&K, &V)> = self.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        f.debug_map().entries(entries).finish()
    }
}

impl<K: Serialize + Ord, V: Serialize> Serialize for ShardedMap<K, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut entries: Vec<(&K, &V)> = self.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        s.collect_map(entries)
    }
}

impl<'de, K, V> Deserialize<'de> for ShardedMap<K, V>
where
    K: Deserialize<'de> + Hash + Eq + Ord,
    V: Deserialize<'de>,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(BTreeMap::<K, V>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_behaves_like_a_hash_map_and_spreads_its_keys_over_every_shard() {
        let mut map = ShardedMap::new();
        let mut reference = std::collections::HashMap::new();
        for i in 0u128..10_000 {
            let key = i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834);
            assert_eq!(map.insert(key, i), reference.insert(key, i));
        }
        for i in (0u128..10_000).step_by(3) {
            let key = i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834);
            assert_eq!(map.remove(&key), reference.remove(&key));
        }
        assert_eq!(map.len(), reference.len());
        for (k, v) in &reference {
            assert_eq!(map.get(k), Some(v));
        }
        // Sequential ids (what event and contact ids mostly are) spread too.
        let mut sequential = ShardedMap::new();
        for i in 0u128..6_400 {
            sequential.insert(i, ());
        }
        let smallest = sequential.shards.iter().map(|s| s.len()).min().unwrap();
        assert!(smallest > 50, "a shard holds only {smallest} of 6,400 keys");
        map.retain(|_, v| *v % 2 == 0);
        reference.retain(|_, v| *v % 2 == 0);
        assert_eq!(map.len(), reference.len());
    }

    #[test]
    fn the_shards_are_staggered_so_their_growths_spread_over_each_doubling() {
        // Shard shares follow 2^(i/64): the largest about twice the smallest.
        let mut bins = [0usize; SHARDS];
        for &s in STAGGER.iter() {
            bins[s as usize] += 1;
        }
        assert!(
            bins.iter().all(|&b| b > 0),
            "a shard gets no bins: {bins:?}"
        );
        assert!(
            bins.windows(2).all(|w| w[0] <= w[1] + 1),
            "shares do not grow with the shard index: {bins:?}"
        );
        let (small, large) = (
            bins[..8].iter().sum::<usize>(),
            bins[56..].iter().sum::<usize>(),
        );
        let ratio = large as f64 / small as f64;
        assert!(
            (1.7..2.3).contains(&ratio),
            "largest ÷ smallest shares {ratio:.2}"
        );

        // Insert 200k keys and note when each shard's table grows. Over the last
        // doubling (100k → 200k) the growths must be spread out: equal shards would
        // all grow within a few percent of inserts of each other.
        let n = 200_000u128;
        let mut map = ShardedMap::new();
        let mut capacities: Vec<usize> = map.shards.iter().map(|s| s.capacity()).collect();
        let mut growths = Vec::new();
        for i in 0..n {
            let key = i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834);
            let s = map.shard(&key);
            map.insert(key, ());
            if map.shards[s].capacity() != capacities[s] {
                capacities[s] = map.shards[s].capacity();
                growths.push(i);
            }
        }
        let late: Vec<u128> = growths.into_iter().filter(|&g| g >= n / 2).collect();
        assert!(
            late.len() >= 32,
            "only {} growths in the last doubling",
            late.len()
        );
        let window = n / 20;
        let busiest = late
            .iter()
            .map(|&start| {
                late.iter()
                    .filter(|&&g| g >= start && g < start + window)
                    .count()
            })
            .max()
            .unwrap_or(0);
        assert!(
            busiest <= 16,
            "{busiest} of {} growths within {window} inserts",
            late.len()
        );
    }

    #[test]
    fn it_serialises_as_one_ordered_map_and_reads_back_equal() {
        let map: ShardedMap<u32, &str> = [(3, "c"), (1, "a"), (2, "b")].into_iter().collect();
        let json = serde_json::to_string(&map).unwrap();
        assert_eq!(json, r#"{"1":"a","2":"b","3":"c"}"#);
        let back: ShardedMap<u32, String> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back.get(&2).map(String::as_str), Some("b"));
    }
}
