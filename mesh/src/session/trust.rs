//! Identity pinning (PROTOCOL.md §6.7): the first established session with a node id pins its two public keys;
//! later handshakes presenting other keys for that id are refused until the user re-trusts the peer.
//!
//! Invariant: the store holds at most `max_pins` pins and at most `max_pins` remembered rejections; a pin changes
//! only by a first session ([`PinStore::pin_new`]), by [`PinStore::trust_presented`] (the user's decision) or by
//! import/removal. Nothing here is secret: pins are public keys.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::identity::{Fingerprint, NodeId, PublicIdentity};

/// What checking presented keys against the pins says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinCheck {
    /// The id is pinned to these very keys.
    Pinned,
    /// The id is not pinned yet (trust on first use applies).
    New,
    /// The id is pinned to other keys.
    Mismatch {
        /// Fingerprint of the pinned keys.
        pinned: Fingerprint,
        /// Fingerprint of the keys presented.
        presented: Fingerprint,
    },
}

/// Pins and the keys last rejected per peer.
#[derive(Clone, Debug, Default)]
pub struct PinStore {
    pins: BTreeMap<NodeId, PublicIdentity>,
    rejected: BTreeMap<NodeId, PublicIdentity>,
    max: usize,
}

impl PinStore {
    /// An empty store of at most `max` pins.
    pub fn new(max: usize) -> Self {
        PinStore {
            pins: BTreeMap::new(),
            rejected: BTreeMap::new(),
            max,
        }
    }

    /// Checks `presented` for `peer`; a mismatch is remembered so that [`Self::trust_presented`] can adopt it.
    pub fn check(&mut self, peer: NodeId, presented: &PublicIdentity) -> PinCheck {
        match self.pins.get(&peer) {
            None => PinCheck::New,
            Some(p) if p == presented => PinCheck::Pinned,
            Some(p) => {
                let pinned = p.fingerprint();
                if !self.rejected.contains_key(&peer) && self.rejected.len() >= self.max {
                    // Bounded: forget the rejection with the smallest id.
                    self.rejected.pop_first();
                }
                self.rejected.insert(peer, *presented);
                PinCheck::Mismatch {
                    pinned,
                    presented: presented.fingerprint(),
                }
            }
        }
    }

    /// Pins `keys` for `peer` if it has no pin yet. False when the store is full (the handshake must fail: an
    /// unpinned session would defeat pinning).
    pub fn pin_new(&mut self, peer: NodeId, keys: &PublicIdentity) -> bool {
        if self.pins.contains_key(&peer) {
            return true;
        }
        if self.pins.len() >= self.max {
            return false;
        }
        self.pins.insert(peer, *keys);
        true
    }

    /// Whether a new pin could be added.
    pub fn has_room_for(&self, peer: &NodeId) -> bool {
        self.pins.contains_key(peer) || self.pins.len() < self.max
    }

    /// Replaces the pin of `peer` with the keys it last presented and were rejected. Returns the new pin.
    pub fn trust_presented(&mut self, peer: NodeId) -> Option<PublicIdentity> {
        let keys = self.rejected.remove(&peer)?;
        self.pins.insert(peer, keys);
        Some(keys)
    }

    /// The pin of `peer`.
    pub fn get(&self, peer: &NodeId) -> Option<&PublicIdentity> {
        self.pins.get(peer)
    }

    /// Every pin as `(node id, keys)`, for persistence.
    pub fn export(&self) -> Vec<(NodeId, PublicIdentity)> {
        self.pins.iter().map(|(id, k)| (*id, *k)).collect()
    }

    /// Adds or replaces the pin of `id` (from persistence or an out-of-band exchange). The keys are stored as
    /// given; a handshake still requires them to own `id`. False when the store is full.
    pub fn import(&mut self, id: NodeId, keys: PublicIdentity) -> bool {
        if !self.pins.contains_key(&id) && self.pins.len() >= self.max {
            return false;
        }
        self.rejected.remove(&id);
        self.pins.insert(id, keys);
        true
    }

    /// Forgets the pin of `peer`.
    pub fn remove(&mut self, peer: &NodeId) -> Option<PublicIdentity> {
        self.rejected.remove(peer);
        self.pins.remove(peer)
    }

    /// Number of pins.
    pub fn len(&self) -> usize {
        self.pins.len()
    }

    /// True when nothing is pinned.
    pub fn is_empty(&self) -> bool {
        self.pins.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(b: u8) -> PublicIdentity {
        PublicIdentity {
            ed25519: [b; 32],
            x25519: [b; 32],
        }
    }

    #[test]
    fn first_use_then_mismatch_then_trust() {
        let mut s = PinStore::new(4);
        let id = NodeId([1; 8]);
        assert_eq!(s.check(id, &keys(1)), PinCheck::New);
        assert!(s.pin_new(id, &keys(1)));
        assert_eq!(s.check(id, &keys(1)), PinCheck::Pinned);
        assert!(matches!(s.check(id, &keys(2)), PinCheck::Mismatch { .. }));
        assert_eq!(s.trust_presented(id), Some(keys(2)));
        assert_eq!(s.check(id, &keys(2)), PinCheck::Pinned);
        assert_eq!(s.trust_presented(id), None);
    }

    #[test]
    fn bounded_and_exportable() {
        let mut s = PinStore::new(2);
        assert!(s.import(keys(1).node_id(), keys(1)));
        assert!(s.import(keys(2).node_id(), keys(2)));
        assert!(!s.import(keys(3).node_id(), keys(3)));
        assert!(!s.pin_new(NodeId([9; 8]), &keys(9)));
        let exported = s.export();
        let mut t = PinStore::new(2);
        for (id, k) in exported {
            assert!(t.import(id, k));
        }
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(&keys(1).node_id()), Some(&keys(1)));
        for i in 0..10u8 {
            let _ = s.check(keys(1).node_id(), &keys(100 + i));
            let _ = s.check(keys(2).node_id(), &keys(100 + i));
        }
        assert!(s.rejected.len() <= 2);
    }
}
