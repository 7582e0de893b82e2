//! The duplicate cache (PROTOCOL.md §7.3): which `(src, frame_id)` pairs this node has already handled.
//!
//! Invariant: at most `capacity` entries; an entry lives `lifetime` from its first sighting; when full, the
//! oldest entry is evicted (and counted) to make room, so a flood of new frames can never grow memory or stop the
//! node from accepting fresh traffic.
//!
//! # Shape
//!
//! Every frame a node hears, each copy of it from each neighbour, passes through [`DupCache::insert`], so a
//! lookup must cost a constant, not a walk of the table. `order` is a FIFO of `(key, expires)` in insertion
//! order (the expiry and eviction order). `index` is an open-addressing hash table over it (linear probing,
//! backward-shift deletion, load at most 1/2): each occupied slot holds the key's hash (its home slot) and the
//! position in `order` of the key's latest entry. The hash is SipHash-1-3 under a per-node secret key, so frames
//! crafted on air cannot pile up in one probe chain. A key's entry counts as live while its latest `order` entry
//! is the one the index points to; an `order` entry popped from the front removes the key from the index only
//! if it carries the key's current expiry (exactly as if the index were a map from key to expiry).

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use sha2::{Digest, Sha256};

use crate::identity::NodeId;
use crate::time::{Duration, Instant};

/// A frame's identity as relays see it.
pub type FrameKey = (NodeId, u32);

/// Domain separation of the hash key derived from a node's seed.
const HASH_KEY_LABEL: &[u8] = b"meshnode dup-cache hash key";
/// The bit that marks an index slot occupied (slot layout: `occupied | hash (31 bits) << 32 | sequence (32 bits)`).
const OCCUPIED: u64 = 1 << 63;
/// The smallest index table allocated.
const MIN_SLOTS: usize = 16;

/// Bounded, lifetime-limited set of frame keys.
#[derive(Clone, Debug)]
pub struct DupCache {
    capacity: usize,
    lifetime: Duration,
    /// `(key, expires)` in insertion order; entry `i` has sequence number `head + i` (wrapping).
    order: VecDeque<(FrameKey, Instant)>,
    /// Sequence number of `order.front()`.
    head: u32,
    /// Open-addressing slots, a power of two in number (or none); 0 is empty.
    index: Vec<u64>,
    /// Keys in the index.
    len: usize,
    hash_key: [u64; 2],
    evictions: u64,
}

impl DupCache {
    /// An empty cache hashing with a fixed key (for tests and trusted input; a node uses [`DupCache::with_seed`]).
    pub fn new(capacity: usize, lifetime: Duration) -> Self {
        DupCache {
            capacity,
            lifetime,
            order: VecDeque::new(),
            head: 0,
            index: Vec::new(),
            len: 0,
            hash_key: [0; 2],
            evictions: 0,
        }
    }

    /// An empty cache whose hash key is derived from the node's secret `seed`, so its probe chains cannot be
    /// predicted from the air.
    pub fn with_seed(capacity: usize, lifetime: Duration, seed: &[u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(HASH_KEY_LABEL)
            .chain_update(seed)
            .finalize();
        let mut k0 = [0u8; 8];
        let mut k1 = [0u8; 8];
        k0.copy_from_slice(&digest[..8]);
        k1.copy_from_slice(&digest[8..16]);
        DupCache {
            hash_key: [u64::from_le_bytes(k0), u64::from_le_bytes(k1)],
            ..DupCache::new(capacity, lifetime)
        }
    }

    /// True if `key` was seen and has not expired.
    pub fn contains(&self, key: &FrameKey, now: Instant) -> bool {
        self.find(key, self.hash(key))
            .is_some_and(|slot| self.expiry_of(slot) > now)
    }

    /// Records `key`. Returns `true` if it is new (not seen or expired), `false` for a duplicate.
    pub fn insert(&mut self, key: FrameKey, now: Instant) -> bool {
        self.remove_expired(now);
        let hash = self.hash(&key);
        if self
            .find(&key, hash)
            .is_some_and(|slot| self.expiry_of(slot) > now)
        {
            return false;
        }
        if self.capacity == 0 {
            return true;
        }
        while self.len >= self.capacity {
            match self.pop_front() {
                Some(true) => self.evictions = self.evictions.saturating_add(1),
                Some(false) => {}
                None => break,
            }
        }
        let expires = now + self.lifetime;
        let seq = self.head.wrapping_add(self.order.len() as u32);
        self.order.push_back((key, expires));
        // An expired entry of `key` not purged yet (time went backwards) is replaced, as a map insert would.
        match self.find(&key, hash) {
            Some(slot) => {
                if let Some(s) = self.index.get_mut(slot) {
                    *s = (*s & !u64::from(u32::MAX)) | u64::from(seq);
                }
            }
            None => {
                self.reserve_one();
                self.place(pack(hash, seq));
                self.len += 1;
            }
        }
        true
    }

    /// Drops every entry whose lifetime has passed.
    pub fn remove_expired(&mut self, now: Instant) {
        while self.order.front().is_some_and(|&(_, at)| at <= now) {
            self.pop_front();
        }
    }

    /// Entries evicted early because the cache was full.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Approximate heap bytes.
    pub fn memory_bytes(&self) -> usize {
        self.order.capacity() * core::mem::size_of::<(FrameKey, Instant)>()
            + self.index.capacity() * core::mem::size_of::<u64>()
    }

    // ---- the index ----

    /// SipHash-1-3 of the key (node id, then frame id, as two little-endian words) under `hash_key`.
    fn hash(&self, key: &FrameKey) -> u32 {
        let (id, frame_id) = key;
        sip13(
            self.hash_key,
            u64::from_le_bytes(id.0),
            u64::from(*frame_id),
        ) as u32
    }

    fn mask(&self) -> usize {
        self.index.len().wrapping_sub(1)
    }

    /// The `order` entry an occupied slot points to.
    fn entry_of(&self, slot: usize) -> Option<&(FrameKey, Instant)> {
        let seq = *self.index.get(slot)? as u32;
        self.order.get(seq.wrapping_sub(self.head) as usize)
    }

    fn expiry_of(&self, slot: usize) -> Instant {
        self.entry_of(slot).map_or(Instant::ZERO, |&(_, at)| at)
    }

    /// The slot holding `key`, if any.
    fn find(&self, key: &FrameKey, hash: u32) -> Option<usize> {
        if self.index.is_empty() {
            return None;
        }
        let mask = self.mask();
        let tag = tag_of(hash);
        let mut i = hash as usize & mask;
        loop {
            let s = *self.index.get(i)?;
            if s == 0 {
                return None;
            }
            if (s >> 32) as u32 == tag && self.entry_of(i).is_some_and(|(k, _)| k == key) {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// Puts an occupied slot value in the first free slot of its probe chain (the table has room).
    fn place(&mut self, value: u64) {
        let mask = self.mask();
        let mut i = home_of(value) & mask;
        while let Some(s) = self.index.get_mut(i) {
            if *s == 0 {
                *s = value;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    /// Grows the table so one more key keeps the load at most 1/2.
    fn reserve_one(&mut self) {
        if (self.len + 1) * 2 <= self.index.len() {
            return;
        }
        let slots = (self.index.len() * 2).max(MIN_SLOTS);
        let old = core::mem::replace(&mut self.index, alloc::vec![0; slots]);
        for value in old.into_iter().filter(|&s| s != 0) {
            self.place(value);
        }
    }

    /// Empties `slot`, shifting later members of its probe chain back so every key stays reachable from its home.
    fn remove_slot(&mut self, slot: usize) {
        let mask = self.mask();
        let mut hole = slot;
        let mut i = (slot + 1) & mask;
        loop {
            let s = self.index.get(i).copied().unwrap_or(0);
            if s == 0 {
                break;
            }
            let home = home_of(s) & mask;
            // The member at `i` may move into the hole when the hole lies on its path from home to `i`.
            if (i.wrapping_sub(home) & mask) >= (i.wrapping_sub(hole) & mask) {
                if let Some(h) = self.index.get_mut(hole) {
                    *h = s;
                }
                hole = i;
            }
            i = (i + 1) & mask;
        }
        if let Some(h) = self.index.get_mut(hole) {
            *h = 0;
        }
    }

    /// Pops the oldest `order` entry; `Some(true)` if it was its key's current entry and the key left the index.
    fn pop_front(&mut self) -> Option<bool> {
        let &(key, at) = self.order.front()?;
        let slot = self
            .find(&key, self.hash(&key))
            .filter(|&slot| self.expiry_of(slot) == at);
        if let Some(slot) = slot {
            self.remove_slot(slot);
            self.len -= 1;
        }
        self.order.pop_front();
        self.head = self.head.wrapping_add(1);
        Some(slot.is_some())
    }
}

/// The occupied tag stored for `hash`.
fn tag_of(hash: u32) -> u32 {
    hash | (OCCUPIED >> 32) as u32
}

/// An occupied slot value.
fn pack(hash: u32, seq: u32) -> u64 {
    (u64::from(tag_of(hash)) << 32) | u64::from(seq)
}

/// The home position bits of a slot value (the table has at most 2^31 slots).
fn home_of(value: u64) -> usize {
    ((value >> 32) as u32 & !((OCCUPIED >> 32) as u32)) as usize
}

/// SipHash-1-3 of the 16-byte message `m0 || m1` (little-endian words) under key `k`.
fn sip13(k: [u64; 2], m0: u64, m1: u64) -> u64 {
    let mut v = [
        k[0] ^ 0x736f_6d65_7073_6575,
        k[1] ^ 0x646f_7261_6e64_6f6d,
        k[0] ^ 0x6c79_6765_6e65_7261,
        k[1] ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    for m in [m0, m1, 16 << 56] {
        v[3] ^= m;
        round(&mut v);
        v[0] ^= m;
    }
    v[2] ^= 0xff;
    round(&mut v);
    round(&mut v);
    round(&mut v);
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;

    fn key(n: u8, f: u32) -> FrameKey {
        (NodeId([n; 8]), f)
    }

    #[test]
    fn new_then_duplicate_then_expired() {
        let mut c = DupCache::new(4, Duration::from_secs(10));
        let t = Instant::from_millis(1_000);
        assert!(c.insert(key(1, 7), t));
        assert!(!c.insert(key(1, 7), t + Duration::from_secs(9)));
        assert!(c.insert(key(1, 7), t + Duration::from_secs(10)));
        assert_eq!(c.evictions(), 0);
    }

    #[test]
    fn full_cache_evicts_oldest_and_counts() {
        let mut c = DupCache::new(2, Duration::from_secs(10));
        let t = Instant::from_millis(0);
        assert!(c.insert(key(1, 1), t));
        assert!(c.insert(key(1, 2), t));
        assert!(c.insert(key(1, 3), t));
        assert_eq!(c.len(), 2);
        assert_eq!(c.evictions(), 1);
        assert!(!c.contains(&key(1, 1), t));
        assert!(c.contains(&key(1, 3), t));
    }

    #[test]
    fn zero_capacity_treats_all_as_new() {
        let mut c = DupCache::new(0, Duration::from_secs(10));
        let t = Instant::from_millis(5);
        assert!(c.insert(key(2, 2), t));
        assert!(c.insert(key(2, 2), t));
        assert!(c.is_empty());
    }

    #[test]
    fn remove_expired_keeps_live_entries() {
        let mut c = DupCache::new(8, Duration::from_secs(10));
        assert!(c.insert(key(1, 1), Instant::from_secs(0)));
        assert!(c.insert(key(1, 2), Instant::from_secs(5)));
        c.remove_expired(Instant::from_secs(10));
        assert_eq!(c.len(), 1);
        assert!(c.contains(&key(1, 2), Instant::from_secs(10)));
        assert!(!c.contains(&key(1, 2), Instant::from_secs(15)));
        assert!(c.memory_bytes() > 0);
    }

    #[test]
    fn sip13_matches_the_reference() {
        // SipHash-1-3 of the bytes 00..0f under the all-zero key, as the reference construction (and Rust's
        // std `DefaultHasher`, SipHash-1-3 with a zero key) computes it.
        assert_eq!(
            sip13([0, 0], 0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908),
            0x8972_1884_33a5_c5b7
        );
        let seeded = DupCache::with_seed(4, Duration::from_secs(1), &[7; 32]);
        assert_ne!(seeded.hash_key, [0; 2]);
    }

    /// The cache as a map from key to expiry plus an insertion-order queue: what the index must behave like.
    struct Model {
        capacity: usize,
        lifetime: Duration,
        expiry: BTreeMap<FrameKey, Instant>,
        order: VecDeque<(FrameKey, Instant)>,
        evictions: u64,
    }

    impl Model {
        fn remove_expired(&mut self, now: Instant) {
            while let Some(&(key, at)) = self.order.front() {
                if at > now {
                    break;
                }
                self.order.pop_front();
                if self.expiry.get(&key) == Some(&at) {
                    self.expiry.remove(&key);
                }
            }
        }

        fn insert(&mut self, key: FrameKey, now: Instant) -> bool {
            self.remove_expired(now);
            if self.expiry.get(&key).is_some_and(|&e| e > now) {
                return false;
            }
            if self.capacity == 0 {
                return true;
            }
            while self.expiry.len() >= self.capacity {
                match self.order.pop_front() {
                    Some((old, at)) => {
                        if self.expiry.get(&old) == Some(&at) {
                            self.expiry.remove(&old);
                            self.evictions += 1;
                        }
                    }
                    None => break,
                }
            }
            let expires = now + self.lifetime;
            self.expiry.insert(key, expires);
            self.order.push_back((key, expires));
            true
        }
    }

    proptest::proptest! {
        #[test]
        fn behaves_like_a_map_with_an_order_queue(
            capacity in 0usize..40,
            lifetime in 0u64..50,
            ops in proptest::collection::vec((0u8..6, 0u32..30, 0u64..20, proptest::bool::ANY), 1..400),
        ) {
            let lifetime = Duration::from_millis(lifetime);
            let mut c = DupCache::with_seed(capacity, lifetime, &[capacity as u8; 32]);
            let mut m = Model {
                capacity,
                lifetime,
                expiry: BTreeMap::new(),
                order: VecDeque::new(),
                evictions: 0,
            };
            let mut now = 100u64;
            for (n, f, step, back) in ops {
                // Time mostly moves forward, sometimes back: the cache must match the map either way.
                now = if back { now.saturating_sub(step) } else { now + step };
                let t = Instant::from_millis(now);
                let k = key(n, f);
                proptest::prop_assert_eq!(c.insert(k, t), m.insert(k, t));
                proptest::prop_assert_eq!(c.len(), m.expiry.len());
                proptest::prop_assert_eq!(c.evictions(), m.evictions);
                for probe in [key(n, f), key(n, f.wrapping_add(1)), key(n.wrapping_add(1), f)] {
                    let expected = m.expiry.get(&probe).is_some_and(|&e| e > t);
                    proptest::prop_assert_eq!(c.contains(&probe, t), expected);
                }
            }
            c.remove_expired(Instant::from_millis(now + 1_000));
            m.remove_expired(Instant::from_millis(now + 1_000));
            proptest::prop_assert_eq!(c.len(), m.expiry.len());
        }
    }
}
