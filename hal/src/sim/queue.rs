//! The medium's event queue: a monotone priority queue (radix heap) of scheduled actions keyed by
//! `(time, sequence)`.
//!
//! Invariant: keys come out in increasing order, exactly as from a binary heap ordered by `(time, sequence)`. It is
//! fast when every key pushed is at least the last key popped, as in the medium (which schedules nothing in its past,
//! and whose sequence numbers only grow); an earlier key is still ordered correctly, at the cost of re-sorting the
//! buckets around it. Bucket 0 holds the keys equal to `last` (the most recent key the buckets were arranged
//! around); bucket `b > 0` holds the keys whose highest bit differing from `last`, in the 128-bit number
//! `time << 64 | sequence`, is bit `b - 1`. A push appends to one bucket; a pop empties the lowest non-empty bucket
//! into lower ones around its smallest key. Entries only ever move to lower buckets, and each bucket is a plain
//! `Vec` walked front to back, so a run with hundreds of thousands of packets in flight costs a few sequential
//! passes per packet instead of a dozen cache misses of a binary heap's sift. The actions travel with their keys:
//! copying them along those sequential passes is cheaper than fetching them from a side table at random.

/// An event's key: virtual time in microseconds, then a sequence number that breaks ties.
pub type Key = (u64, u64);

/// One queued value with its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queued<T> {
    /// When, and in which order among equal times.
    pub key: Key,
    /// What.
    pub value: T,
}

/// Entries of capacity an emptied bucket keeps for reuse.
const RETAINED: usize = 4096;

/// Buckets: one for "equal to `last`", 64 for the sequence bits, 64 for the time bits.
const BUCKETS: usize = 129;

/// A priority queue of values by `(time, sequence)` keys, fastest when keys never go below the last one popped
/// (a radix heap; the simulated medium's event queue).
#[derive(Debug)]
pub struct EventQueue<T> {
    buckets: Vec<Vec<Queued<T>>>,
    /// Bit `b - 1` is set when bucket `b` (1..=128) holds entries.
    occupied: u128,
    last: Key,
    /// The smallest key held.
    min: Option<Key>,
    len: usize,
}

impl<T> Default for EventQueue<T> {
    fn default() -> Self {
        EventQueue::new()
    }
}

impl<T> EventQueue<T> {
    /// An empty queue.
    pub fn new() -> Self {
        EventQueue {
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            occupied: 0,
            last: (0, 0),
            min: None,
            len: 0,
        }
    }

    /// The smallest key held.
    pub fn peek(&self) -> Option<Key> {
        self.min
    }

    /// Queues `value` under `key`. A key below the last one popped costs a pass over the queue.
    pub fn push(&mut self, key: Key, value: T) {
        if key < self.last {
            self.rebase(key);
        }
        self.place(Queued { key, value });
        self.len += 1;
        if self.min.is_none_or(|m| key < m) {
            self.min = Some(key);
        }
    }

    /// Removes and returns the entry with the smallest key.
    pub fn pop(&mut self) -> Option<Queued<T>> {
        if self.len == 0 {
            return None;
        }
        if self.buckets.first().is_some_and(Vec::is_empty) {
            let i = self.occupied.trailing_zeros() as usize + 1;
            let mut bucket = core::mem::take(self.buckets.get_mut(i)?);
            self.occupied &= !(1 << (i - 1));
            self.last = bucket.iter().map(|e| e.key).min()?;
            for e in bucket.drain(..) {
                self.place(e);
            }
            // Keep the emptied bucket's allocation for the entries that will fill it again, unless it is large:
            // buckets that each kept their largest size would together hold several times the queue's peak.
            if bucket.capacity() <= RETAINED {
                if let Some(b) = self.buckets.get_mut(i) {
                    *b = bucket;
                }
            }
        }
        let e = self.buckets.first_mut()?.pop()?;
        self.len -= 1;
        self.min = self.lowest();
        Some(e)
    }

    /// The smallest key, found in the lowest non-empty bucket.
    fn lowest(&self) -> Option<Key> {
        if let Some(e) = self.buckets.first().and_then(|b| b.first()) {
            return Some(e.key);
        }
        if self.occupied == 0 {
            return None;
        }
        let i = self.occupied.trailing_zeros() as usize + 1;
        self.buckets.get(i)?.iter().map(|e| e.key).min()
    }

    /// Appends `e` to the bucket its key belongs in around `last`.
    /// Arranges every entry around `last`, a key no larger than any held.
    fn rebase(&mut self, last: Key) {
        self.last = last;
        let held: Vec<Queued<T>> = self.buckets.iter_mut().flat_map(|b| b.drain(..)).collect();
        self.occupied = 0;
        for e in held {
            self.place(e);
        }
    }

    fn place(&mut self, e: Queued<T>) {
        let b = self.bucket_of(e.key);
        if b > 0 {
            self.occupied |= 1 << (b - 1);
        }
        if let Some(bucket) = self.buckets.get_mut(b) {
            bucket.push(e);
        }
    }

    fn bucket_of(&self, (time, seq): Key) -> usize {
        let (last_time, last_seq) = self.last;
        if time != last_time {
            64 + (64 - (time ^ last_time).leading_zeros()) as usize
        } else {
            (64 - (seq ^ last_seq).leading_zeros()) as usize
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    #[test]
    fn pops_in_key_order_and_takes_pushes_between_pops() {
        let mut q = EventQueue::new();
        assert_eq!(q.pop(), None);
        for (i, key) in [(5, 1), (3, 2), (5, 3), (3, 4), (0, 5)]
            .into_iter()
            .enumerate()
        {
            q.push(key, i);
        }
        assert_eq!(q.peek(), Some((0, 5)));
        assert_eq!(q.pop().map(|e| e.value), Some(4));
        assert_eq!(q.pop().map(|e| e.key), Some((3, 2)));
        // Later than the last pop, earlier than what is held.
        q.push((3, 6), 9);
        q.push((4, 7), 10);
        let rest: Vec<Key> = std::iter::from_fn(|| q.pop().map(|e| e.key)).collect();
        assert_eq!(rest, [(3, 4), (3, 6), (4, 7), (5, 1), (5, 3)]);
        assert_eq!((q.pop(), q.peek()), (None, None));
    }

    proptest::proptest! {
        #[test]
        fn same_order_as_a_binary_heap(
            ops in proptest::collection::vec(
                (0u8..4, 0u64..3_000_000, proptest::bool::ANY, proptest::bool::weighted(0.05)),
                1..600,
            ),
        ) {
            // Mostly a medium's schedule (times at or after the last popped one, sequence numbers growing), now
            // and then a time in the past.
            let mut q = EventQueue::new();
            let mut heap = BinaryHeap::new();
            let (mut now, mut seq) = (0u64, 0u64);
            for (pops, delay, near, past) in ops {
                seq += 1;
                let at = if past {
                    now.saturating_sub(delay % 1_000)
                } else {
                    now + if near { delay % 50 } else { delay }
                };
                q.push((at, seq), seq);
                heap.push(Reverse((at, seq)));
                for _ in 0..pops {
                    let want = heap.pop().map(|Reverse(k)| k);
                    proptest::prop_assert_eq!(q.pop().map(|e| e.key), want);
                    if let Some((at, _)) = want {
                        now = now.max(at);
                    }
                    proptest::prop_assert_eq!(q.peek(), heap.peek().map(|Reverse(k)| *k));
                }
            }
            while let Some(Reverse(want)) = heap.pop() {
                let got = q.pop();
                proptest::prop_assert_eq!(got.map(|e| e.key), Some(want));
                proptest::prop_assert_eq!(got.map(|e| e.value), Some(want.1));
            }
            proptest::prop_assert_eq!(q.pop(), None);
        }
    }
}
