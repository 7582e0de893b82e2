//! Sessions at rest (PROTOCOL.md §6.11): what a runtime stores so that established sessions survive a restart
//! without a handshake and never reuse a nonce, and how [`Sessions`] hands it out and takes it back.
//!
//! Shape: with [`SessionConfig::persist`] on, [`Sessions::poll_persist`] yields a [`SessionRecord`] whenever what
//! a restart needs has changed: a snapshot of a peer's `current` session when it is new, when its send nonce enters
//! a new reservation block, when either direction changes epoch, and every 32 messages (so the message limit
//! counts on); `Removed` when a peer's session is gone; `Pin` when a peer is pinned or re-trusted. Changes are
//! found by comparing each session with a small fingerprint of what was last handed out, so no code path that
//! changes a session can forget to report it.
//!
//! Invariant: a runtime that makes every record durable before it transmits any frame polled after it never sees
//! a (key, nonce) pair on air twice, whatever the moment of a crash: a snapshot always covers every nonce sealed so
//! far with its reservation, and a restored sender starts past that reservation. Snapshots hold keys: they are
//! zeroized on drop and `Debug` prints no secret.

use alloc::collections::BTreeMap;
use core::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::table::Session;
use super::transport::{Key, Receiver, ReceiverState, Sender, SenderState};
use super::{SessionError, Sessions};
use crate::identity::{NodeId, PublicIdentity};
use crate::time::Instant;

/// Messages (sent plus accepted) between two snapshots taken for the message count alone.
const MESSAGES_PER_SNAPSHOT: u64 = 32;

/// Everything a node needs to resume one established session after a restart. Instants are the runtime's
/// (a runtime that restarts must use a clock that continues, e.g. wall-clock milliseconds).
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SessionSnapshot {
    /// The peer.
    pub peer: [u8; 8],
    /// Session id.
    pub session_id: u8,
    /// The peer's Ed25519 key, as authenticated by the handshake.
    pub remote_ed25519: [u8; 32],
    /// The peer's X25519 static key.
    pub remote_x25519: [u8; 32],
    /// When the session was established (its age runs from here, §6.9).
    pub established_ms: u64,
    /// Last frame sent or accepted.
    pub last_activity_ms: u64,
    /// TRANSPORT frames sent plus accepted (§6.9).
    pub messages: u64,
    /// Send key of the current epoch.
    pub tx_key: [u8; 32],
    /// Send epoch.
    pub tx_epoch: u32,
    /// When the send epoch began.
    pub tx_epoch_started_ms: u64,
    /// Frames sealed in the send epoch.
    pub tx_in_epoch: u64,
    /// Every send nonce below this may have been used; a restored session sends from here.
    pub tx_reserved: u64,
    /// Receive key of the current epoch.
    pub rx_key: [u8; 32],
    /// Receive epoch.
    pub rx_epoch: u32,
    /// Highest nonce accepted when the snapshot was taken.
    pub rx_highest: Option<u64>,
}

impl fmt::Debug for SessionSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionSnapshot")
            .field("peer", &NodeId(self.peer))
            .field("session_id", &self.session_id)
            .field("messages", &self.messages)
            .field("tx_epoch", &self.tx_epoch)
            .field("tx_reserved", &self.tx_reserved)
            .field("rx_epoch", &self.rx_epoch)
            .field("keys", &"<redacted>")
            .finish()
    }
}

impl SessionSnapshot {
    /// The peer's id.
    pub fn peer_id(&self) -> NodeId {
        NodeId(self.peer)
    }

    fn of(peer: NodeId, s: &Session) -> Self {
        let tx = s.tx.state();
        let rx = s.rx.state();
        SessionSnapshot {
            peer: peer.0,
            session_id: s.id,
            remote_ed25519: s.remote.ed25519,
            remote_x25519: s.remote.x25519,
            established_ms: s.established.total_millis(),
            last_activity_ms: s.last_activity.total_millis(),
            messages: s.messages,
            tx_key: tx.key.0,
            tx_epoch: tx.epoch,
            tx_epoch_started_ms: tx.epoch_started.total_millis(),
            tx_in_epoch: tx.in_epoch,
            tx_reserved: tx.reserved,
            rx_key: rx.key.0,
            rx_epoch: rx.epoch,
            rx_highest: rx.highest,
        }
    }
}

/// One change for the store.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionRecord {
    /// Store this session of `peer`, replacing any earlier one.
    Snapshot(SessionSnapshot),
    /// `peer` has no session any more: delete it from the store.
    Removed {
        /// The peer.
        peer: NodeId,
    },
    /// `peer` is pinned to `keys` (first session, or re-trusted by the user).
    Pin {
        /// The peer.
        peer: NodeId,
        /// Its keys.
        keys: PublicIdentity,
    },
}

/// What was last handed out for a peer's session: a new value means a new snapshot is due.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Stamp {
    session_id: u8,
    tx_epoch: u32,
    tx_reserved: u64,
    rx_epoch: u32,
    rx_highest: Option<u64>,
    message_block: u64,
}

impl Stamp {
    fn of(s: &Session) -> Self {
        Stamp {
            session_id: s.id,
            tx_epoch: s.tx.epoch(),
            tx_reserved: s.tx.reserved(),
            rx_epoch: s.rx.epoch(),
            rx_highest: s.rx.highest(),
            message_block: s.messages / MESSAGES_PER_SNAPSHOT,
        }
    }
}

/// The persistence bookkeeping of [`Sessions`].
#[derive(Debug, Default)]
pub(super) struct Persisted {
    /// Per peer with a stored session, the stamp of its last snapshot.
    stamps: BTreeMap<NodeId, Stamp>,
    /// Pins to hand out, in order.
    pins: alloc::collections::VecDeque<(NodeId, PublicIdentity)>,
}

impl Persisted {
    pub(super) fn pin(&mut self, peer: NodeId, keys: PublicIdentity) {
        self.pins.push_back((peer, keys));
    }
}

impl Sessions {
    /// The next change to store, if sessions are persisted (PROTOCOL.md §6.11). Drain it after every input, before
    /// [`Sessions::poll_transmit`], and make each record durable before transmitting anything polled after it.
    pub fn poll_persist(&mut self) -> Option<SessionRecord> {
        if !self.cfg.persist {
            return None;
        }
        if let Some((peer, keys)) = self.persisted.pins.pop_front() {
            return Some(SessionRecord::Pin { peer, keys });
        }
        // Sessions gone since the last snapshot.
        let gone = self
            .persisted
            .stamps
            .keys()
            .find(|peer| {
                self.table
                    .get(peer)
                    .and_then(|p| p.current.as_ref())
                    .is_none()
            })
            .copied();
        if let Some(peer) = gone {
            self.persisted.stamps.remove(&peer);
            return Some(SessionRecord::Removed { peer });
        }
        // Sessions new or changed.
        let (peer, stamp, snapshot) = self.table.iter().find_map(|(peer, p)| {
            let s = p.current.as_ref()?;
            let stamp = Stamp::of(s);
            (self.persisted.stamps.get(peer) != Some(&stamp))
                .then(|| (*peer, stamp, SessionSnapshot::of(*peer, s)))
        })?;
        self.persisted.stamps.insert(peer, stamp);
        Some(SessionRecord::Snapshot(snapshot))
    }

    /// Resumes a stored session as the `current` session of its peer, with no handshake: sending continues past the
    /// stored nonce reservation, receiving refuses every nonce up to the stored highest, and the limits count on
    /// from the stored establishment time and message count. Refused when the keys contradict the peer's pin
    /// ([`SessionError::UntrustedIdentity`]), when the peer already has a session, or when the table is full.
    /// Import pins first.
    pub fn restore(
        &mut self,
        snapshot: &SessionSnapshot,
        now: Instant,
    ) -> Result<(), SessionError> {
        let peer = snapshot.peer_id();
        let remote = PublicIdentity {
            ed25519: snapshot.remote_ed25519,
            x25519: snapshot.remote_x25519,
        };
        if peer == self.id || peer.is_broadcast() || remote.node_id() != peer {
            return Err(SessionError::InvalidPeer);
        }
        match self.pins.get(&peer) {
            Some(pinned) if *pinned != remote => return Err(SessionError::UntrustedIdentity),
            Some(_) => {}
            None => {
                if !self.pins.pin_new(peer, &remote) {
                    return Err(SessionError::TableFull);
                }
            }
        }
        if self
            .table
            .get(&peer)
            .is_some_and(|p| p.current.is_some() || p.next.is_some())
        {
            return Err(SessionError::AlreadyEstablished);
        }
        self.ensure_peer(peer, now)?;
        let block = if self.cfg.persist {
            self.cfg.nonce_reservation
        } else {
            0
        };
        let tx = Sender::restore(
            &SenderState {
                key: Key(snapshot.tx_key),
                epoch: snapshot.tx_epoch,
                epoch_started: Instant::from_millis(snapshot.tx_epoch_started_ms),
                in_epoch: snapshot.tx_in_epoch,
                reserved: snapshot.tx_reserved,
            },
            block,
        );
        let rx = Receiver::restore(&ReceiverState {
            key: Key(snapshot.rx_key),
            epoch: snapshot.rx_epoch,
            highest: snapshot.rx_highest,
        });
        let mut session = Session::new(
            snapshot.session_id,
            remote,
            tx,
            rx,
            Instant::from_millis(snapshot.established_ms),
            None,
        );
        session.last_activity = Instant::from_millis(snapshot.last_activity_ms);
        session.messages = snapshot.messages;
        let stamp = Stamp::of(&session);
        let p = self.table.get_mut(&peer).ok_or(SessionError::TableFull)?;
        p.current = Some(session);
        self.persisted.stamps.insert(peer, stamp);
        // Limits, expiry and renewal apply at once: a session that aged out while the node was down goes now.
        self.apply_rules(peer, now);
        Ok(())
    }
}
