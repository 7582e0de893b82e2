//! The duplicate cache (PROTOCOL.md §7.3): which `(src, frame_id)` pairs this node has already handled.
//!
//! Invariant: at most `capacity` entries; an entry lives `lifetime` from its first sighting; when full, the
//! oldest entry is evicted (and counted) to make room, so a flood of new frames can never grow memory or stop the
//! node from accepting fresh traffic.

use alloc::collections::{BTreeMap, VecDeque};

use crate::identity::NodeId;
use crate::time::{Duration, Instant};

/// A frame's identity as relays see it.
pub type FrameKey = (NodeId, u32);

/// Bounded, lifetime-limited set of frame keys.
#[derive(Clone, Debug)]
pub struct DupCache {
    capacity: usize,
    lifetime: Duration,
    expiry: BTreeMap<FrameKey, Instant>,
    order: VecDeque<(FrameKey, Instant)>,
    evictions: u64,
}

impl DupCache {
    /// An empty cache.
    pub fn new(capacity: usize, lifetime: Duration) -> Self {
        DupCache {
            capacity,
            lifetime,
            expiry: BTreeMap::new(),
            order: VecDeque::new(),
            evictions: 0,
        }
    }

    /// True if `key` was seen and has not expired.
    pub fn contains(&self, key: &FrameKey, now: Instant) -> bool {
        self.expiry.get(key).is_some_and(|&e| e > now)
    }

    /// Records `key`. Returns `true` if it is new (not seen or expired), `false` for a duplicate.
    pub fn insert(&mut self, key: FrameKey, now: Instant) -> bool {
        self.remove_expired(now);
        if self.contains(&key, now) {
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
                        self.evictions = self.evictions.saturating_add(1);
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

    /// Drops every entry whose lifetime has passed.
    pub fn remove_expired(&mut self, now: Instant) {
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

    /// Entries evicted early because the cache was full.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.expiry.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.expiry.is_empty()
    }

    /// Approximate heap bytes.
    pub fn memory_bytes(&self) -> usize {
        self.expiry.len() * (core::mem::size_of::<(FrameKey, Instant)>() * 2 + 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
