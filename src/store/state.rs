//! The node's state at rest (PROTOCOL.md §6.11, §7.7, §7.8): sessions, nonce reservations, the outbox and delivered
//! message ids, written from the node's `Action::Persist` records and read back at start.
//!
//! | tree | key | value (record version) |
//! |---|---|---|
//! | `sessions` | peer id (8) | [`SealedSession`] v1: the session snapshot (keys, epochs, counters) in postcard, sealed with the storage key, associated data `("session", ["sessions", peer, [1]])` |
//! | `nonces` | peer id (8) | [`NonceReservation`] v1: session id and send nonce reservation, the same as in the snapshot, kept in clear so that a reader can audit reservations without the passphrase; at load the larger of the two wins |
//! | `outbox` | destination (8) ‖ message id (8, big-endian) | [`StoredMessage`] v1: expiry (node ms) and the payload sealed with the storage key, associated data `("outbox", ["outbox", key, [1]])` |
//! | `seen` | sender (8) ‖ message id (8, big-endian) | [`SeenMessage`] v1: delivery time (node ms); entries older than `seen_lifetime` are deleted at load |
//!
//! Invariant: [`Store::apply_node_records`] writes a batch of records in one sled transaction over those four trees
//! (pins first, through [`Store::save_pin`]) and returns only after the database is flushed, so the node may then
//! transmit what depends on them. Nothing read back is trusted blindly: a value that does not decode or a sealed
//! blob that does not open is [`StoreError::Corrupt`] naming tree and key, never silently skipped.

use mesh::identity::NodeId;
use mesh::node::{MessageId, Persist};
use mesh::session::{SessionRecord, SessionSnapshot};
use mesh::time::Instant;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use zeroize::Zeroizing;

use super::value::{decode, encode, Record};
use super::{associated_data, unix_now, Store, StoreError, TreeName};

/// Tree `sessions`, version 1.
#[derive(Serialize, Deserialize)]
pub struct SealedSession {
    /// `nonce24 ‖ ciphertext ‖ tag` of the postcard snapshot.
    pub sealed: Vec<u8>,
}

impl Record for SealedSession {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "stored session";
}

/// The snapshot itself, inside the seal (its own version byte, so its shape can change independently).
#[derive(Serialize, Deserialize)]
struct SnapshotBody(SessionSnapshot);

impl Record for SnapshotBody {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "session snapshot";
}

/// Tree `nonces`, version 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonceReservation {
    /// The session it belongs to.
    pub session_id: u8,
    /// Send nonces below this may have been used.
    pub reserved: u64,
}

impl Record for NonceReservation {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "nonce reservation";
}

/// Tree `outbox`, version 1.
#[derive(Serialize, Deserialize)]
pub struct StoredMessage {
    /// When the message is given up, node milliseconds.
    pub expires_ms: u64,
    /// The payload, sealed.
    pub sealed: Vec<u8>,
}

impl Record for StoredMessage {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "outbox message";
}

/// Tree `seen`, version 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenMessage {
    /// When it was delivered, node milliseconds.
    pub at_ms: u64,
}

impl Record for SeenMessage {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "delivered message id";
}

/// What a node restarts from.
#[derive(Debug, Default)]
pub struct NodeState {
    /// Stored sessions, reservations reconciled.
    pub sessions: Vec<SessionSnapshot>,
    /// Unacknowledged messages: destination, id, payload, expiry.
    pub outbox: Vec<(NodeId, MessageId, Zeroizing<Vec<u8>>, Instant)>,
    /// Delivered message ids still within their lifetime: sender, id, delivery time.
    pub seen: Vec<(NodeId, MessageId, Instant)>,
    /// Seen entries deleted for age at this load.
    pub seen_pruned: usize,
}

fn pair_key(a: NodeId, id: MessageId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&a.0);
    k[8..].copy_from_slice(&id.0.to_be_bytes());
    k
}

fn split_pair_key(k: &[u8]) -> Option<(NodeId, MessageId)> {
    let k: &[u8; 16] = k.try_into().ok()?;
    let mut node = [0u8; 8];
    node.copy_from_slice(&k[..8]);
    let mut id = [0u8; 8];
    id.copy_from_slice(&k[8..]);
    Some((NodeId(node), MessageId(u64::from_be_bytes(id))))
}

fn node_key(k: &[u8]) -> Option<NodeId> {
    let k: [u8; 8] = k.try_into().ok()?;
    Some(NodeId(k))
}

fn session_ad(peer: &NodeId) -> Vec<u8> {
    associated_data(
        "session",
        &[b"sessions", &peer.0, &[SealedSession::VERSION]],
    )
}

fn outbox_ad(key: &[u8]) -> Vec<u8> {
    associated_data("outbox", &[b"outbox", key, &[StoredMessage::VERSION]])
}

/// A write in the transaction: tree, key, value (`None` deletes).
type Write = (TreeName, Vec<u8>, Option<Zeroizing<Vec<u8>>>);

impl Store {
    fn corrupt_value(
        &self,
        tree: TreeName,
        key: &[u8],
        detail: impl std::fmt::Display,
    ) -> StoreError {
        StoreError::Corrupt {
            path: self.db_path().to_path_buf(),
            detail: format!("tree {} key {}: {detail}", tree.name(), hex(key)),
        }
    }

    fn value_error(&self, e: super::value::ValueError) -> StoreError {
        StoreError::Corrupt {
            path: self.db_path().to_path_buf(),
            detail: format!("cannot encode a record: {e}"),
        }
    }

    /// Writes `records` (in order) and flushes: pins through [`Store::save_pin`], everything else in one
    /// transaction. Returns once the database is durable, with the bytes of keys and values written in the
    /// transaction (what write amplification is measured against).
    pub fn apply_node_records(&self, records: &[Persist]) -> Result<u64, StoreError> {
        let mut writes: Vec<Write> = Vec::new();
        for record in records {
            match record {
                Persist::Session(SessionRecord::Pin { peer, keys }) => {
                    let trusted = self
                        .peer(*peer)?
                        .and_then(|r| r.pin)
                        .is_some_and(|p| p.keys() != *keys);
                    self.save_pin(*peer, keys, trusted, unix_now())?;
                }
                Persist::Session(SessionRecord::Snapshot(snap)) => {
                    let peer = snap.peer_id();
                    let body =
                        encode(&SnapshotBody(snap.clone())).map_err(|e| self.value_error(e))?;
                    let sealed = self
                        .storage_key()
                        .seal(&session_ad(&peer), &body)
                        .map_err(|e| self.corrupt_value(TreeName::Sessions, &peer.0, e))?;
                    let value =
                        encode(&SealedSession { sealed }).map_err(|e| self.value_error(e))?;
                    writes.push((TreeName::Sessions, peer.0.to_vec(), Some(value)));
                    let reservation = NonceReservation {
                        session_id: snap.session_id,
                        reserved: snap.tx_reserved,
                    };
                    let value = encode(&reservation).map_err(|e| self.value_error(e))?;
                    writes.push((TreeName::Nonces, peer.0.to_vec(), Some(value)));
                }
                Persist::Session(SessionRecord::Removed { peer }) => {
                    writes.push((TreeName::Sessions, peer.0.to_vec(), None));
                    writes.push((TreeName::Nonces, peer.0.to_vec(), None));
                }
                Persist::OutboxAdd {
                    to,
                    id,
                    payload,
                    expires,
                } => {
                    let key = pair_key(*to, *id);
                    let sealed = self
                        .storage_key()
                        .seal(&outbox_ad(&key), payload)
                        .map_err(|e| self.corrupt_value(TreeName::Outbox, &key, e))?;
                    let value = encode(&StoredMessage {
                        expires_ms: expires.total_millis(),
                        sealed,
                    })
                    .map_err(|e| self.value_error(e))?;
                    writes.push((TreeName::Outbox, key.to_vec(), Some(value)));
                }
                Persist::OutboxRemove { to, id } => {
                    writes.push((TreeName::Outbox, pair_key(*to, *id).to_vec(), None));
                }
                Persist::Seen { from, id, at } => {
                    let value = encode(&SeenMessage {
                        at_ms: at.total_millis(),
                    })
                    .map_err(|e| self.value_error(e))?;
                    writes.push((TreeName::Seen, pair_key(*from, *id).to_vec(), Some(value)));
                }
                other => {
                    tracing::warn!(?other, "a node record this store does not know; not stored")
                }
            }
        }
        if !writes.is_empty() {
            let t = |n: TreeName| self.tree(n);
            let trees = (
                t(TreeName::Sessions),
                t(TreeName::Nonces),
                t(TreeName::Outbox),
                t(TreeName::Seen),
            );
            let result: Result<(), TransactionError<()>> =
                trees.transaction(|(sessions, nonces, outbox, seen)| {
                    for (tree, key, value) in &writes {
                        let tree = match tree {
                            TreeName::Sessions => sessions,
                            TreeName::Nonces => nonces,
                            TreeName::Outbox => outbox,
                            TreeName::Seen => seen,
                            _ => return Err(ConflictableTransactionError::Abort(())),
                        };
                        match value {
                            Some(v) => tree.insert(key.as_slice(), v.as_slice())?,
                            None => tree.remove(key.as_slice())?,
                        };
                    }
                    Ok(())
                });
            result.map_err(|e| StoreError::Corrupt {
                path: self.db_path().to_path_buf(),
                detail: format!("cannot write the node's state: {e:?}"),
            })?;
        }
        self.flush()?;
        Ok(writes
            .iter()
            .map(|(_, k, v)| (k.len() + v.as_ref().map_or(0, |v| v.len())) as u64)
            .sum())
    }

    /// Reads everything a restarting node needs; deletes delivered-message ids older than `seen_lifetime_ms` at
    /// `now_ms`. With `resume_sessions` off, stored sessions are deleted instead of returned.
    pub fn load_node_state(
        &self,
        now: Instant,
        seen_lifetime_ms: u64,
        resume_sessions: bool,
    ) -> Result<NodeState, StoreError> {
        let mut state = NodeState::default();
        let sessions = self.tree(TreeName::Sessions);
        let nonces = self.tree(TreeName::Nonces);
        if !resume_sessions {
            sessions
                .clear()
                .map_err(|e| self.corrupt_value(TreeName::Sessions, b"", e))?;
            nonces
                .clear()
                .map_err(|e| self.corrupt_value(TreeName::Nonces, b"", e))?;
        }
        for item in sessions.iter() {
            let (k, v) = item.map_err(|e| self.corrupt_value(TreeName::Sessions, b"", e))?;
            let peer = node_key(&k)
                .ok_or_else(|| self.corrupt_value(TreeName::Sessions, &k, "not a node id"))?;
            let sealed: SealedSession =
                decode(&v).map_err(|e| self.corrupt_value(TreeName::Sessions, &k, e))?;
            let body = self
                .storage_key()
                .open(&session_ad(&peer), &sealed.sealed)
                .map_err(|e| self.corrupt_value(TreeName::Sessions, &k, e))?;
            let SnapshotBody(mut snap) =
                decode(&body).map_err(|e| self.corrupt_value(TreeName::Sessions, &k, e))?;
            if snap.peer_id() != peer {
                return Err(self.corrupt_value(
                    TreeName::Sessions,
                    &k,
                    "session stored under another peer",
                ));
            }
            if let Some(v) = nonces
                .get(&k)
                .map_err(|e| self.corrupt_value(TreeName::Nonces, &k, e))?
            {
                let r: NonceReservation =
                    decode(&v).map_err(|e| self.corrupt_value(TreeName::Nonces, &k, e))?;
                if r.session_id == snap.session_id {
                    snap.tx_reserved = snap.tx_reserved.max(r.reserved);
                }
            }
            state.sessions.push(snap);
        }
        for item in self.tree(TreeName::Outbox).iter() {
            let (k, v) = item.map_err(|e| self.corrupt_value(TreeName::Outbox, b"", e))?;
            let (to, id) = split_pair_key(&k).ok_or_else(|| {
                self.corrupt_value(TreeName::Outbox, &k, "not a destination and message id")
            })?;
            let m: StoredMessage =
                decode(&v).map_err(|e| self.corrupt_value(TreeName::Outbox, &k, e))?;
            let payload = self
                .storage_key()
                .open(&outbox_ad(&k), &m.sealed)
                .map_err(|e| self.corrupt_value(TreeName::Outbox, &k, e))?;
            state
                .outbox
                .push((to, id, payload, Instant::from_millis(m.expires_ms)));
        }
        state.seen_pruned = self.sweep_seen(now, seen_lifetime_ms, |from, id, at| {
            state.seen.push((from, id, at))
        })?;
        self.flush()?;
        Ok(state)
    }
}

impl Store {
    /// Deletes delivered-message ids older than `lifetime_ms` at `now`: a running node calls it now and then, so the
    /// `seen` tree holds about one lifetime of traffic. Returns how many were deleted.
    pub fn prune_seen(&self, now: Instant, lifetime_ms: u64) -> Result<usize, StoreError> {
        self.sweep_seen(now, lifetime_ms, |_, _, _| {})
    }

    /// One pass over `seen`: deletes the ids older than `lifetime_ms` at `now`, hands every other one to `keep`.
    /// Returns how many were deleted.
    fn sweep_seen(
        &self,
        now: Instant,
        lifetime_ms: u64,
        mut keep: impl FnMut(NodeId, MessageId, Instant),
    ) -> Result<usize, StoreError> {
        let seen = self.tree(TreeName::Seen);
        let mut stale = Vec::new();
        for item in seen.iter() {
            let (k, v) = item.map_err(|e| self.corrupt_value(TreeName::Seen, b"", e))?;
            let (from, id) = split_pair_key(&k).ok_or_else(|| {
                self.corrupt_value(TreeName::Seen, &k, "not a sender and message id")
            })?;
            let s: SeenMessage =
                decode(&v).map_err(|e| self.corrupt_value(TreeName::Seen, &k, e))?;
            if s.at_ms.saturating_add(lifetime_ms) <= now.total_millis() {
                stale.push(k);
            } else {
                keep(from, id, Instant::from_millis(s.at_ms));
            }
        }
        for k in &stale {
            seen.remove(k)
                .map_err(|e| self.corrupt_value(TreeName::Seen, k, e))?;
        }
        Ok(stale.len())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &std::path::Path) -> Store {
        crate::store::open_for_tests(dir)
    }

    fn snapshot(peer: NodeId, reserved: u64) -> SessionSnapshot {
        SessionSnapshot {
            peer: peer.0,
            session_id: 7,
            remote_ed25519: [1; 32],
            remote_x25519: [2; 32],
            established_ms: 10,
            last_activity_ms: 20,
            messages: 3,
            tx_key: [0xaa; 32],
            tx_epoch: 1,
            tx_epoch_started_ms: 15,
            tx_in_epoch: 2,
            tx_reserved: reserved,
            rx_key: [0xbb; 32],
            rx_epoch: 0,
            rx_highest: Some(4),
        }
    }

    #[test]
    fn records_round_trip_through_the_database_and_secrets_are_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let (p, q) = (NodeId([3; 8]), NodeId([4; 8]));
        {
            let store = open(dir.path());
            store
                .apply_node_records(&[
                    Persist::Session(SessionRecord::Snapshot(snapshot(p, 128))),
                    Persist::Session(SessionRecord::Snapshot(snapshot(q, 128))),
                    Persist::Session(SessionRecord::Removed { peer: q }),
                    Persist::OutboxAdd {
                        to: p,
                        id: MessageId(9),
                        payload: b"a secret message".to_vec(),
                        expires: Instant::from_millis(5_000),
                    },
                    Persist::OutboxAdd {
                        to: q,
                        id: MessageId(10),
                        payload: b"acknowledged".to_vec(),
                        expires: Instant::from_millis(5_000),
                    },
                    Persist::OutboxRemove {
                        to: q,
                        id: MessageId(10),
                    },
                    Persist::Seen {
                        from: p,
                        id: MessageId(1),
                        at: Instant::from_millis(1_000),
                    },
                    Persist::Seen {
                        from: p,
                        id: MessageId(2),
                        at: Instant::from_millis(100_000),
                    },
                ])
                .unwrap();
            // A later reservation only in the clear tree still wins at load (the larger one is always safe).
            let r = encode(&NonceReservation {
                session_id: 7,
                reserved: 256,
            })
            .unwrap();
            store
                .tree(TreeName::Nonces)
                .insert(p.0, r.as_slice())
                .unwrap();
            store.flush().unwrap();
        }
        // Nothing secret is in the files in clear.
        let mut all = Vec::new();
        for e in walk(&dir.path().join("db")) {
            all.extend(std::fs::read(e).unwrap());
        }
        assert!(!contains(&all, &[0xaa; 32]) && !contains(&all, b"a secret message"));
        let store = open(dir.path());
        let state = store
            .load_node_state(Instant::from_millis(200_000), 150_000, true)
            .unwrap();
        assert_eq!(state.sessions.len(), 1);
        assert_eq!(state.sessions[0].peer_id(), p);
        assert_eq!(state.sessions[0].tx_reserved, 256);
        assert_eq!(state.outbox.len(), 1);
        assert_eq!(&state.outbox[0].2[..], b"a secret message");
        assert_eq!(
            state.seen,
            [(p, MessageId(2), Instant::from_millis(100_000))]
        );
        assert_eq!(state.seen_pruned, 1);
        // Resumption off: stored sessions are deleted, the rest stays.
        let state = store
            .load_node_state(Instant::from_millis(200_000), 150_000, false)
            .unwrap();
        assert!(state.sessions.is_empty() && state.outbox.len() == 1);
        assert!(store.tree(TreeName::Nonces).is_empty());
    }

    #[test]
    fn a_damaged_session_or_message_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = NodeId([3; 8]);
        let store = open(dir.path());
        store
            .apply_node_records(&[Persist::Session(SessionRecord::Snapshot(snapshot(p, 128)))])
            .unwrap();
        let tree = store.tree(TreeName::Sessions);
        let mut v = tree.get(p.0).unwrap().unwrap().to_vec();
        let last = v.len() - 1;
        v[last] ^= 1;
        tree.insert(p.0, v).unwrap();
        let e = store
            .load_node_state(Instant::from_millis(0), 1, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tree sessions key 0303030303030303"), "{e}");
        // Moving a sealed blob to another peer's key does not open either.
        tree.remove(p.0).unwrap();
        store
            .apply_node_records(&[Persist::Session(SessionRecord::Snapshot(snapshot(p, 128)))])
            .unwrap();
        let v = tree.get(p.0).unwrap().unwrap();
        tree.remove(p.0).unwrap();
        tree.insert([5u8; 8], v).unwrap();
        assert!(store
            .load_node_state(Instant::from_millis(0), 1, true)
            .is_err());
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }
}
