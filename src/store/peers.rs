//! Tree `peers`: what this node remembers about other nodes across restarts. Key: the peer's 8-byte node id.
//! Value: [`PeerRecord`] version 1 — the pin (public keys, whether the user trusted them explicitly, when pinned),
//! the last nickname heard, and when the peer was first and last seen (Unix seconds).
//!
//! Invariant: a stored pin's keys own the id they are stored under (checked on write and on read); a pin is flushed
//! to disk before [`super::Store::save_pin`] returns, so the node never uses a pin that a crash could forget.
//! Read-modify-write happens in one sled transaction per record. The tree holds at most
//! [`super::Store::set_max_peer_records`] records for peers merely seen: a new one evicts the unpinned record
//! heard of longest ago, or is refused when every record holds a pin; both are counted ([`PeerStats`]). Pins are
//! never evicted (forgetting one would let changed keys in unnoticed); they are bounded by the node's pin store.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use mesh::identity::{NodeId, PublicIdentity};
use serde::{Deserialize, Serialize};
use sled::transaction::ConflictableTransactionError;

use super::error::show_key;
use super::value::{decode, encode, Record};
use super::{Store, StoreError, TreeName};

/// Longest nickname kept, in bytes (what announces carry).
pub const MAX_NICKNAME: usize = 32;
/// Peer records kept by default.
pub const DEFAULT_MAX_PEER_RECORDS: usize = 4096;

/// The bound on the peers tree and what it dropped.
#[derive(Debug)]
pub(super) struct PeerBound {
    limit: AtomicUsize,
    records: AtomicUsize,
    evicted: AtomicU64,
    refused: AtomicU64,
}

impl PeerBound {
    /// A bound over a tree holding `records` records.
    pub fn new(records: usize) -> PeerBound {
        PeerBound {
            limit: AtomicUsize::new(DEFAULT_MAX_PEER_RECORDS),
            records: AtomicUsize::new(records),
            evicted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }
}

/// The peers tree's size, bound and drops.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PeerStats {
    /// Records held.
    pub records: usize,
    /// Records held at most (pins may exceed it).
    pub limit: usize,
    /// Unpinned records evicted to make room.
    pub evicted: u64,
    /// Sightings of new peers not recorded because every record held a pin.
    pub refused: u64,
}

/// A pinned identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    /// Ed25519 public key.
    pub ed25519: [u8; 32],
    /// X25519 public key.
    pub x25519: [u8; 32],
    /// True when the user accepted these keys explicitly (`ctl trust`), false for trust on first use.
    pub trusted_by_user: bool,
    /// When the pin was written, Unix seconds.
    pub pinned_at: u64,
}

impl Pin {
    /// The pinned keys.
    pub fn keys(&self) -> PublicIdentity {
        PublicIdentity {
            ed25519: self.ed25519,
            x25519: self.x25519,
        }
    }
}

/// Tree `peers`, version 1.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    /// The pin, once a session was established (or the user trusted keys).
    pub pin: Option<Pin>,
    /// The nickname last heard (at most [`MAX_NICKNAME`] bytes).
    pub nickname: String,
    /// First time this node heard of the peer, Unix seconds.
    pub first_seen: u64,
    /// Last time, Unix seconds.
    pub last_seen: u64,
}

impl Record for PeerRecord {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "peer record";
}

/// Whether a new record must fit the bound.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Room {
    /// Pins: always written.
    Always,
    /// Sightings: only within the bound.
    WithinBound,
}

/// `s` cut to at most `max` bytes at a char boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Store {
    /// Every pin, as `mesh`'s `PinStore::import` / `Sessions::import_pins` take them.
    pub fn load_pins(&self) -> Result<Vec<(NodeId, PublicIdentity)>, StoreError> {
        Ok(self
            .peers()?
            .into_iter()
            .filter_map(|(id, r)| r.pin.map(|p| (id, p.keys())))
            .collect())
    }

    /// Every peer record, in node id order.
    pub fn peers(&self) -> Result<Vec<(NodeId, PeerRecord)>, StoreError> {
        let tree = self.tree(TreeName::Peers);
        let mut out = Vec::new();
        for item in tree.iter() {
            let (k, v) = item.map_err(|e| self.db_error(e))?;
            let id = self.peer_id(&k)?;
            out.push((id, self.decode_peer(id, &v)?));
        }
        Ok(out)
    }

    /// The record of `id`.
    pub fn peer(&self, id: NodeId) -> Result<Option<PeerRecord>, StoreError> {
        match self
            .tree(TreeName::Peers)
            .get(id.0)
            .map_err(|e| self.db_error(e))?
        {
            Some(v) => Ok(Some(self.decode_peer(id, &v)?)),
            None => Ok(None),
        }
    }

    /// Sets how many peer records the tree keeps (at least 1); see the module documentation.
    pub fn set_max_peer_records(&self, limit: usize) {
        self.peer_bound.limit.store(limit.max(1), Ordering::Relaxed);
    }

    /// The peers tree's size, bound and drops.
    pub fn peer_stats(&self) -> PeerStats {
        let b = &self.peer_bound;
        PeerStats {
            records: b.records.load(Ordering::Relaxed),
            limit: b.limit.load(Ordering::Relaxed),
            evicted: b.evicted.load(Ordering::Relaxed),
            refused: b.refused.load(Ordering::Relaxed),
        }
    }

    /// Pins `keys` for `id` (replacing an older pin) and flushes before returning. `trusted_by_user`: the user
    /// accepted these keys explicitly. The keys must own `id`.
    pub fn save_pin(
        &self,
        id: NodeId,
        keys: &PublicIdentity,
        trusted_by_user: bool,
        now_unix: u64,
    ) -> Result<(), StoreError> {
        if keys.node_id() != id {
            return Err(StoreError::PinMismatch {
                id: id.to_string(),
                owner: keys.node_id().to_string(),
            });
        }
        self.update_peer(id, now_unix, Room::Always, |r| {
            r.pin = Some(Pin {
                ed25519: keys.ed25519,
                x25519: keys.x25519,
                trusted_by_user,
                pinned_at: now_unix,
            });
        })?;
        self.flush()
    }

    /// Forgets the pin of `id` (the record's nickname and times stay), flushed before returning.
    pub fn remove_pin(&self, id: NodeId, now_unix: u64) -> Result<(), StoreError> {
        if self.peer(id)?.is_none() {
            return Ok(());
        }
        self.update_peer(id, now_unix, Room::Always, |r| r.pin = None)?;
        self.flush()
    }

    /// Notes that `id` was heard now with `nickname` (cut to [`MAX_NICKNAME`] bytes). Not flushed: seen times are
    /// not security-relevant, and sled writes them out within its flush interval (500 ms).
    pub fn record_peer_seen(
        &self,
        id: NodeId,
        nickname: &str,
        now_unix: u64,
    ) -> Result<(), StoreError> {
        let nickname = truncate(nickname, MAX_NICKNAME);
        self.update_peer(id, now_unix, Room::WithinBound, |r| {
            r.nickname = nickname.to_string();
            r.last_seen = r.last_seen.max(now_unix);
        })
    }

    /// Reads the record of `id` (or a new one first seen now), applies `change`, writes it, in one transaction.
    /// A new record first needs room (see the module documentation).
    fn update_peer(
        &self,
        id: NodeId,
        now_unix: u64,
        room: Room,
        change: impl Fn(&mut PeerRecord),
    ) -> Result<(), StoreError> {
        let tree = self.tree(TreeName::Peers);
        let exists = tree.contains_key(id.0).map_err(|e| self.db_error(e))?;
        if !exists && room == Room::WithinBound && !self.make_room()? {
            self.peer_bound.refused.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let result = tree.transaction(|tx| {
            let (mut record, created) = match tx.get(id.0)? {
                Some(v) => (
                    self.decode_peer(id, &v)
                        .map_err(ConflictableTransactionError::Abort)?,
                    false,
                ),
                None => (
                    PeerRecord {
                        first_seen: now_unix,
                        last_seen: now_unix,
                        ..PeerRecord::default()
                    },
                    true,
                ),
            };
            change(&mut record);
            let bytes = encode(&record).map_err(|e| {
                ConflictableTransactionError::Abort(StoreError::bad_value(
                    self.db_path(),
                    "peers",
                    &id.0,
                    e,
                ))
            })?;
            tx.insert(&id.0[..], &bytes[..])?;
            Ok(created)
        });
        let created = result.map_err(|e| match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => self.db_error(e),
        })?;
        if created {
            self.peer_bound.records.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Makes room for one more record: true when there is room (after evicting the unpinned records heard of
    /// longest ago while the tree is full), false when every record holds a pin.
    fn make_room(&self) -> Result<bool, StoreError> {
        let bound = &self.peer_bound;
        while bound.records.load(Ordering::Relaxed) >= bound.limit.load(Ordering::Relaxed) {
            let mut oldest: Option<(u64, NodeId)> = None;
            for (id, record) in self.peers()? {
                if record.pin.is_none() && oldest.is_none_or(|(seen, _)| record.last_seen < seen) {
                    oldest = Some((record.last_seen, id));
                }
            }
            let Some((_, victim)) = oldest else {
                return Ok(false);
            };
            self.tree(TreeName::Peers)
                .remove(victim.0)
                .map_err(|e| self.db_error(e))?;
            bound.records.fetch_sub(1, Ordering::Relaxed);
            bound.evicted.fetch_add(1, Ordering::Relaxed);
        }
        Ok(true)
    }

    fn peer_id(&self, key: &[u8]) -> Result<NodeId, StoreError> {
        <[u8; 8]>::try_from(key)
            .map(NodeId)
            .map_err(|_| StoreError::Corrupt {
                path: self.db_path().to_path_buf(),
                detail: format!("tree `peers`, key {}: not an 8-byte node id", show_key(key)),
            })
    }

    fn decode_peer(&self, id: NodeId, bytes: &[u8]) -> Result<PeerRecord, StoreError> {
        let record: PeerRecord =
            decode(bytes).map_err(|e| StoreError::bad_value(self.db_path(), "peers", &id.0, e))?;
        if let Some(pin) = &record.pin {
            if pin.keys().node_id() != id {
                return Err(StoreError::Corrupt {
                    path: self.db_path().to_path_buf(),
                    detail: format!(
                        "tree `peers`, key {}: the pinned keys belong to node {}",
                        show_key(&id.0),
                        pin.keys().node_id()
                    ),
                });
            }
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nicknames_are_cut_at_char_boundaries() {
        assert_eq!(truncate("abc", 2), "ab");
        assert_eq!(truncate("é", 1), "");
        assert_eq!(truncate(&"x".repeat(40), MAX_NICKNAME).len(), 32);
    }
}
