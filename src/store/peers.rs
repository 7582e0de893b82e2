//! Tree `peers`: what this node remembers about other nodes across restarts. Key: the peer's 8-byte node id.
//! Value: [`PeerRecord`] version 1 — the pin (public keys, whether the user trusted them explicitly, when pinned),
//! the last nickname heard, and when the peer was first and last seen (Unix seconds).
//!
//! Invariant: a stored pin's keys own the id they are stored under (checked on write and on read); a pin is flushed
//! to disk before [`super::Store::save_pin`] returns, so the node never uses a pin that a crash could forget.
//! Read-modify-write happens in one sled transaction per record.

use mesh::identity::{NodeId, PublicIdentity};
use serde::{Deserialize, Serialize};
use sled::transaction::ConflictableTransactionError;

use super::error::show_key;
use super::value::{decode, encode, Record};
use super::{Store, StoreError, TreeName};

/// Longest nickname kept, in bytes (what announces carry).
pub const MAX_NICKNAME: usize = 32;

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
        self.update_peer(id, now_unix, |r| {
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
        self.update_peer(id, now_unix, |r| r.pin = None)?;
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
        self.update_peer(id, now_unix, |r| {
            r.nickname = nickname.to_string();
            r.last_seen = r.last_seen.max(now_unix);
        })
    }

    /// Reads the record of `id` (or a new one first seen now), applies `change`, writes it, in one transaction.
    fn update_peer(
        &self,
        id: NodeId,
        now_unix: u64,
        change: impl Fn(&mut PeerRecord),
    ) -> Result<(), StoreError> {
        let tree = self.tree(TreeName::Peers);
        let result = tree.transaction(|tx| {
            let mut record = match tx.get(id.0)? {
                Some(v) => self
                    .decode_peer(id, &v)
                    .map_err(ConflictableTransactionError::Abort)?,
                None => PeerRecord {
                    first_seen: now_unix,
                    last_seen: now_unix,
                    ..PeerRecord::default()
                },
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
            Ok(())
        });
        result.map_err(|e| match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => self.db_error(e),
        })
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
