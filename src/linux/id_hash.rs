//! A fast hasher for maps keyed by kernel ids (pids, uids, start times).
//!
//! The standard SipHash resists keys chosen to collide, which costs more
//! than the rest of a process-table update here. Pids and start times are
//! assigned by the kernel, not chosen by an attacker, so a multiplicative
//! hash is enough.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Folds each written integer in with a multiply (Fibonacci hashing).
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // The table uses the top bits for control bytes: mix them in.
        self.0 ^ (self.0 >> 29)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(K);
    }
}

/// A `HashMap` using [`IdHasher`].
pub type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn hash<T: Hash>(t: &T) -> u64 {
        BuildHasherDefault::<IdHasher>::default().hash_one(t)
    }

    #[test]
    fn distinct_ids_spread_and_maps_work() {
        let hashes: std::collections::HashSet<u64> = (0..10_000u32).map(|pid| hash(&pid)).collect();
        assert_eq!(hashes.len(), 10_000, "no collisions among sequential pids");
        assert_ne!(hash(&(1u32, 2u64)), hash(&(2u32, 1u64)));
        let mut m: IdMap<u32, &str> = IdMap::default();
        m.insert(7, "seven");
        assert_eq!(m.get(&7), Some(&"seven"));
        assert_eq!(hash(&b"ab".to_vec()), hash(&b"ab".to_vec()));
    }
}
