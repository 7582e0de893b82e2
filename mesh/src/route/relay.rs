//! Pending relays of the managed policy (PROTOCOL.md §7.4): frames waiting out their random delay.
//!
//! Each entry remembers which links already delivered a copy of its frame (their neighbours have it, so the
//! relay skips them) and how many copies were heard in all; reaching the suppression threshold cancels the relay.
//! Invariant: at most `capacity` entries, one per frame key; a full queue refuses (and counts) new entries
//! rather than dropping ones already promised.

use alloc::vec::Vec;

use super::dup::FrameKey;
use super::LinkId;
use crate::time::Instant;

/// A frame waiting for its relay delay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRelay {
    /// The frame's key.
    pub key: FrameKey,
    /// The frame, TTL already decremented.
    pub frame: Vec<u8>,
    /// When to send it.
    pub due: Instant,
    /// Links whose neighbour already sent us this frame.
    pub skip: Vec<LinkId>,
    /// Copies heard (the first one included).
    pub copies: u8,
}

/// What hearing another copy did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyHeard {
    /// No relay was pending for that frame.
    NotPending,
    /// The relay is still pending; the link is skipped.
    Noted,
    /// The threshold was reached: the relay is cancelled.
    Suppressed,
}

/// The queue of pending relays.
#[derive(Clone, Debug, Default)]
pub struct PendingRelays {
    capacity: usize,
    entries: Vec<PendingRelay>,
    refused: u64,
}

impl PendingRelays {
    /// An empty queue of at most `capacity` relays.
    pub fn new(capacity: usize) -> Self {
        PendingRelays {
            capacity,
            entries: Vec::new(),
            refused: 0,
        }
    }

    /// Queues a relay. Returns `false` (and counts it) when the queue is full.
    pub fn schedule(&mut self, key: FrameKey, frame: Vec<u8>, due: Instant, from: LinkId) -> bool {
        if self.entries.len() >= self.capacity {
            self.refused = self.refused.saturating_add(1);
            return false;
        }
        let skip = alloc::vec![from];
        self.entries.push(PendingRelay {
            key,
            frame,
            due,
            skip,
            copies: 1,
        });
        true
    }

    /// Another copy of `key` arrived on `link`. The relay is cancelled once `threshold` copies were heard *and*
    /// the neighbours on all `links_up` links sent one (a relay that would still reach a neighbour is never
    /// suppressed: in sparse areas that neighbour may have no other way to get the frame).
    pub fn heard_copy(
        &mut self,
        key: &FrameKey,
        link: LinkId,
        threshold: u8,
        links_up: usize,
    ) -> CopyHeard {
        let Some(pos) = self.entries.iter().position(|e| e.key == *key) else {
            return CopyHeard::NotPending;
        };
        let Some(e) = self.entries.get_mut(pos) else {
            return CopyHeard::NotPending;
        };
        e.copies = e.copies.saturating_add(1);
        if !e.skip.contains(&link) {
            e.skip.push(link);
        }
        if threshold > 0 && e.copies >= threshold && e.skip.len() >= links_up {
            self.entries.swap_remove(pos);
            return CopyHeard::Suppressed;
        }
        CopyHeard::Noted
    }

    /// A copy of `key` arrived with TTL `ttl`: the pending relay, if any, goes out with at least `ttl - 1`. The
    /// first copy to arrive may have come the long way round (the managed delays and hop-by-hop resends make
    /// that common); relaying the TTL of the shortest path keeps nodes near the TTL limit within reach. Only the
    /// TTL byte changes, as for any relay (PROTOCOL.md §4.3).
    pub fn raise_ttl(&mut self, key: &FrameKey, ttl: u8) {
        let Some(e) = self.entries.iter_mut().find(|e| e.key == *key) else {
            return;
        };
        let wanted = ttl.min(crate::wire::MAX_TTL).saturating_sub(1);
        let Some(current) = e.frame.get_mut(1) else {
            return;
        };
        if wanted > *current {
            *current = wanted;
        }
    }

    /// Removes and returns every relay due at `now`, earliest first.
    pub fn take_due(&mut self, now: Instant) -> Vec<PendingRelay> {
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.entries.len() {
            if self.entries.get(i).is_some_and(|e| e.due <= now) {
                due.push(self.entries.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|e| e.due);
        due
    }

    /// The earliest due instant.
    pub fn next_due(&self) -> Option<Instant> {
        self.entries.iter().map(|e| e.due).min()
    }

    /// Relays refused because the queue was full.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Relays pending.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Approximate heap bytes.
    pub fn memory_bytes(&self) -> usize {
        self.entries
            .iter()
            .map(|e| {
                core::mem::size_of::<PendingRelay>() + e.frame.capacity() + e.skip.capacity() * 4
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::NodeId;

    #[test]
    fn copies_skip_links_then_suppress() {
        let mut q = PendingRelays::new(2);
        let k = (NodeId([1; 8]), 5);
        let t = Instant::from_millis(100);
        assert!(q.schedule(k, alloc::vec![1, 2], t, LinkId(1)));
        assert_eq!(q.heard_copy(&k, LinkId(2), 3, 3), CopyHeard::Noted);
        // Three copies, but the neighbour on link 4 has not sent one: the relay stays.
        assert_eq!(q.heard_copy(&k, LinkId(3), 3, 4), CopyHeard::Noted);
        assert_eq!(q.heard_copy(&k, LinkId(4), 3, 4), CopyHeard::Suppressed);
        assert!(q.is_empty());
        assert_eq!(q.heard_copy(&k, LinkId(3), 3, 4), CopyHeard::NotPending);
    }

    #[test]
    fn a_copy_with_more_hops_left_raises_the_pending_ttl() {
        let mut q = PendingRelays::new(2);
        let k = (NodeId([1; 8]), 5);
        let mut frame = alloc::vec![0x22u8; 30];
        frame[1] = 3;
        assert!(q.schedule(k, frame, Instant::from_millis(10), LinkId(1)));
        q.raise_ttl(&k, 3);
        q.raise_ttl(&(NodeId([2; 8]), 5), 9);
        assert_eq!(q.take_due(Instant::from_millis(0)).len(), 0);
        q.raise_ttl(&k, 6);
        q.raise_ttl(&k, 4);
        q.raise_ttl(&k, 200);
        let due = q.take_due(Instant::from_millis(10));
        assert_eq!(due.first().map(|r| r.frame[1]), Some(14));
        assert_eq!(
            due.first().map(|r| r.frame[0]),
            Some(0x22),
            "nothing else changes"
        );
    }

    #[test]
    fn due_relays_come_out_in_order_and_full_queue_refuses() {
        let mut q = PendingRelays::new(2);
        let a = (NodeId([1; 8]), 1);
        let b = (NodeId([1; 8]), 2);
        assert!(q.schedule(a, alloc::vec![1], Instant::from_millis(30), LinkId(1)));
        assert!(q.schedule(b, alloc::vec![2], Instant::from_millis(10), LinkId(2)));
        assert!(!q.schedule(
            (NodeId([2; 8]), 3),
            alloc::vec![3],
            Instant::ZERO,
            LinkId(1)
        ));
        assert_eq!(q.refused(), 1);
        assert_eq!(q.next_due(), Some(Instant::from_millis(10)));
        let due = q.take_due(Instant::from_millis(40));
        assert_eq!(due.iter().map(|e| e.key).collect::<Vec<_>>(), [b, a]);
        assert_eq!(
            due.first().map(|e| e.skip.clone()),
            Some(alloc::vec![LinkId(2)])
        );
    }
}
