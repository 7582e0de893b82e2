//! The session table (PROTOCOL.md §6.10): per peer the named slots `previous` (decrypt-only, in grace),
//! `current` (sends and decrypts) and `next` (a handshake in progress), plus the peer's queue and rate limits.
//!
//! Invariant: at most `max_peers` peers; a peer is evicted only by [`Table::make_room`], which picks the peer
//! with the longest idle established session and no handshake in progress (peers with no state at all first);
//! when every peer is in a handshake the new peer is refused. A `Session` in `current` is the only one that
//! ever seals a TRANSPORT or ACK.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::mem::size_of;

use super::handshake::Handshake;
use super::timers::{Clock, TokenBucket};
use super::transport::{Receiver, Sender};
use crate::identity::{NodeId, PublicIdentity};
use crate::time::Instant;
use crate::wire::Kind;

/// One established session.
#[derive(Debug)]
pub struct Session {
    /// Session id (chosen by the initiator).
    pub id: u8,
    /// The peer's keys, as authenticated by the handshake.
    pub remote: PublicIdentity,
    /// Send half.
    pub tx: Sender,
    /// Receive half.
    pub rx: Receiver,
    /// Handshake completion.
    pub established: Instant,
    /// Last frame sent or accepted.
    pub last_activity: Instant,
    /// TRANSPORT frames sent plus accepted (§6.9).
    pub messages: u64,
    /// Sealed frames and plaintext bytes sent.
    pub tx_frames: u64,
    /// Plaintext bytes sent.
    pub tx_bytes: u64,
    /// Sealed frames accepted.
    pub rx_frames: u64,
    /// Plaintext bytes accepted.
    pub rx_bytes: u64,
    /// Set once replaced: decrypt-only until then.
    pub retired_until: Option<Instant>,
    /// Reached a hard limit: never sends again.
    pub hard_limit: bool,
    /// A renewal was due but could not start (handshake cap or rate limit): not retried before this instant.
    pub renewal_retry_at: Option<Instant>,
    /// Initiator only: HANDSHAKE_3 kept until the peer proves it has the session, to answer a resent
    /// HANDSHAKE_2.
    pub confirm: Option<Vec<u8>>,
}

impl Session {
    /// A session established at `established` with no traffic yet.
    pub fn new(
        id: u8,
        remote: PublicIdentity,
        tx: Sender,
        rx: Receiver,
        established: Instant,
        confirm: Option<Vec<u8>>,
    ) -> Self {
        Session {
            id,
            remote,
            tx,
            rx,
            established,
            last_activity: established,
            messages: 0,
            tx_frames: 0,
            tx_bytes: 0,
            rx_frames: 0,
            rx_bytes: 0,
            retired_until: None,
            renewal_retry_at: None,
            hard_limit: false,
            confirm,
        }
    }

    /// The limit clock of this session.
    pub fn clock(&self, renewing: bool) -> Clock {
        let (tx_epoch_started, tx_in_epoch) = self.tx.epoch_clock();
        Clock {
            established: self.established,
            last_activity: self.last_activity,
            messages: self.messages,
            tx_epoch_started,
            tx_in_epoch,
            retired_until: self.retired_until,
            renewing,
            hard_limit: self.hard_limit,
            renewal_retry_at: self.renewal_retry_at,
        }
    }

    /// Bytes this session owns: its struct plus heap.
    pub fn memory_bytes(&self) -> usize {
        size_of::<Session>() + self.confirm.as_ref().map_or(0, |c| c.capacity())
    }
}

/// A message waiting for a session.
#[derive(Debug)]
pub struct Queued {
    /// TRANSPORT or ACK.
    pub kind: Kind,
    /// The plaintext.
    pub plaintext: Vec<u8>,
}

/// Everything kept about one peer.
#[derive(Debug)]
pub struct Peer {
    /// Replaced session, decrypt-only during its grace.
    pub previous: Option<Box<Session>>,
    /// The session that sends.
    pub current: Option<Session>,
    /// A handshake in progress.
    pub next: Option<Handshake>,
    /// HANDSHAKE_1 rate limit.
    pub bucket: TokenBucket,
    /// Messages waiting for `current`.
    pub queue: VecDeque<Queued>,
    /// Last UNKNOWN_SESSION sent to this peer.
    pub last_unknown_reply: Option<Instant>,
    /// Responder only: the HANDSHAKE_1 answered by `next`, to recognise a resent one.
    pub answered_first: Option<Vec<u8>>,
}

impl Peer {
    /// A peer with no state yet.
    pub fn new(bucket: TokenBucket) -> Self {
        Peer {
            previous: None,
            current: None,
            next: None,
            bucket,
            queue: VecDeque::new(),
            last_unknown_reply: None,
            answered_first: None,
        }
    }

    /// True when nothing is left worth keeping.
    pub fn is_empty(&self) -> bool {
        self.previous.is_none()
            && self.current.is_none()
            && self.next.is_none()
            && self.queue.is_empty()
    }

    /// Whether `id` is in use in any slot (§6.2: a new id must not be).
    pub fn id_in_use(&self, id: u8) -> bool {
        self.previous.as_ref().is_some_and(|s| s.id == id)
            || self.current.as_ref().is_some_and(|s| s.id == id)
            || self.next.as_ref().is_some_and(|h| h.session_id == id)
    }

    /// The established session named `id`, current first.
    pub fn session_mut(&mut self, id: u8) -> Option<&mut Session> {
        match (&mut self.current, &mut self.previous) {
            (Some(c), _) if c.id == id => Some(c),
            (_, Some(p)) if p.id == id => Some(p),
            _ => None,
        }
    }

    /// Bytes this peer owns: struct, sessions, queue, handshake buffers.
    pub fn memory_bytes(&self) -> usize {
        size_of::<Peer>()
            + self.previous.as_deref().map_or(0, Session::memory_bytes)
            + self.current.as_ref().map_or(0, Session::memory_bytes)
            + self.next.as_ref().map_or(0, |h| {
                size_of::<Handshake>() + h.last_sent.capacity() + HANDSHAKE_STATE_ESTIMATE
            })
            + self.queue.capacity() * size_of::<Queued>()
            + self
                .queue
                .iter()
                .map(|q| q.plaintext.capacity())
                .sum::<usize>()
            + self.answered_first.as_ref().map_or(0, |v| v.capacity())
    }
}

/// Rough heap of a `snow::HandshakeState` (symmetric state, DH keys, boxed primitives); only handshakes in
/// progress carry it.
pub const HANDSHAKE_STATE_ESTIMATE: usize = 1024;

/// All peers.
#[derive(Debug)]
pub struct Table {
    peers: BTreeMap<NodeId, Box<Peer>>,
    max_peers: usize,
}

impl Table {
    /// An empty table of at most `max_peers` peers.
    pub fn new(max_peers: usize) -> Self {
        Table {
            peers: BTreeMap::new(),
            max_peers,
        }
    }

    /// The peer, if it has state.
    pub fn get(&self, peer: &NodeId) -> Option<&Peer> {
        self.peers.get(peer).map(|p| &**p)
    }

    /// The peer, mutably.
    pub fn get_mut(&mut self, peer: &NodeId) -> Option<&mut Peer> {
        self.peers.get_mut(peer).map(|p| &mut **p)
    }

    /// Every peer id.
    pub fn ids(&self) -> Vec<NodeId> {
        self.peers.keys().copied().collect()
    }

    /// Every peer.
    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &Peer)> {
        self.peers.iter().map(|(id, p)| (id, &**p))
    }

    /// Handshakes in progress.
    pub fn handshakes(&self) -> usize {
        self.peers.values().filter(|p| p.next.is_some()).count()
    }

    /// Removes a peer.
    pub fn remove(&mut self, peer: &NodeId) -> Option<Peer> {
        self.peers.remove(peer).map(|p| *p)
    }

    /// Removes peers with nothing left.
    pub fn prune(&mut self) {
        self.peers.retain(|_, p| !p.is_empty());
    }

    /// Ensures `peer` could be inserted: if the table is full, evicts per §6.10 and returns the evicted peer.
    /// `Err(())` when every peer has a handshake in progress (`TableFull`).
    pub fn make_room(&mut self, peer: &NodeId) -> Result<Option<(NodeId, Peer)>, ()> {
        if self.peers.contains_key(peer) || self.peers.len() < self.max_peers {
            return Ok(None);
        }
        let victim = self
            .peers
            .iter()
            .filter(|(_, p)| p.next.is_none())
            .min_by_key(|(_, p)| p.current.as_ref().map(|s| s.last_activity))
            .map(|(id, _)| *id)
            .ok_or(())?;
        Ok(self.peers.remove(&victim).map(|p| (victim, *p)))
    }

    /// The peer's entry, created if needed; call [`Self::make_room`] first.
    pub fn entry(&mut self, peer: NodeId, bucket: TokenBucket) -> &mut Peer {
        self.peers
            .entry(peer)
            .or_insert_with(|| Box::new(Peer::new(bucket)))
    }

    /// Peers with state.
    pub fn len(&self) -> usize {
        self.peers.len()
    }
}
