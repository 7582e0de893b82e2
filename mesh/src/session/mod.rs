//! End-to-end sessions between two nodes (PROTOCOL.md §6): Noise XX handshakes, sealed transport with epochs and
//! a replay window, limits and renewal, identity pinning and the session table, behind one sans-IO type,
//! [`Sessions`].
//!
//! Invariant: [`Sessions`] never reads a clock or an OS RNG: time comes in as `now`, randomness from the seed
//! given to [`Sessions::new`], so two runs with the same inputs produce the same frames. A frame that fails any
//! check changes no session state, only a drop counter (and at most one UNKNOWN_SESSION reply per peer per
//! second). Nothing reachable from input bytes panics.

mod handshake;
mod persist;
mod replay;
mod table;
mod timers;
mod transport;
mod trust;

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

pub use handshake::{HandshakeFailure, NOISE_PARAMS, PROLOGUE_LABEL};
pub use persist::{SessionRecord, SessionSnapshot};
pub use replay::{ReplayError, ReplayWindow, WINDOW as REPLAY_WINDOW};
pub use timers::{SessionConfig, NONCE_RESERVATION};
pub use transport::{aead_nonce, padded_len, rekey, unpadded_len, Key, SEALED_OVERHEAD};
pub use trust::{PinCheck, PinStore};

use handshake::Handshake;
use table::{Peer, Queued, Session, Table};
use timers::{due, next_deadline, Due, TokenBucket};
use transport::{OpenError, Receiver, Sender};

use crate::identity::{Identity, NodeId, PublicIdentity};
use crate::time::Instant;
use crate::wire::{self, FrameView, Header, Kind, Sealed, UnknownSession, HEADER_LEN};

mod api;
pub use api::*;

/// The session layer of one node.
///
/// Method groups, in the order a runtime calls them:
/// 1. construction: [`Sessions::new`], then optionally [`Sessions::import_pins`];
/// 2. input: [`Sessions::send`] (application messages), [`Sessions::handle_frame`] (frames addressed to this
///    node of kinds HANDSHAKE_1/2/3, TRANSPORT, ACK, CLOSE, UNKNOWN_SESSION), [`Sessions::handle_timeout`] (when
///    the instant from [`Sessions::poll_timeout`] has passed; spurious calls are harmless), and the user's
///    [`Sessions::close`], [`Sessions::close_all`], [`Sessions::trust`];
/// 3. output, drained after every input: [`Sessions::poll_transmit`] (complete frames), [`Sessions::poll_event`],
///    then [`Sessions::poll_timeout`] to re-arm the timer;
/// 4. inspection: [`Sessions::session_stats`], [`Sessions::drops`], [`Sessions::memory_bytes`],
///    [`Sessions::export_pins`].
pub struct Sessions {
    identity: Identity,
    id: NodeId,
    cfg: SessionConfig,
    rng: ChaCha20Rng,
    table: Table,
    pins: PinStore,
    transmits: VecDeque<Outgoing>,
    events: VecDeque<SessionEvent>,
    drops: DropCounters,
    last_stranger_reply: Option<Instant>,
    persisted: persist::Persisted,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("id", &self.id)
            .field("peers", &self.table.len())
            .field("secrets", &"<redacted>")
            .finish()
    }
}

/// Bound on frames and events waiting to be polled; beyond it the oldest are dropped and counted.
const MAX_OUTPUT: usize = 4096;

impl Sessions {
    /// A session layer for `identity`, with every random choice (ephemeral keys, frame ids, session ids) drawn
    /// from a ChaCha20 RNG seeded with `rng_seed`.
    pub fn new(identity: Identity, config: SessionConfig, rng_seed: [u8; 32]) -> Self {
        Sessions {
            id: identity.node_id(),
            identity,
            table: Table::new(config.max_peers),
            pins: PinStore::new(config.max_pins),
            cfg: config,
            rng: ChaCha20Rng::from_seed(rng_seed),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            drops: DropCounters::default(),
            last_stranger_reply: None,
            persisted: persist::Persisted::default(),
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.id
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }

    /// Sends `plaintext` to `peer` as TRANSPORT or ACK. Sent at once on a usable session; otherwise queued
    /// (bounded) and a handshake is started if none is in progress.
    pub fn send(
        &mut self,
        peer: NodeId,
        kind: Kind,
        plaintext: &[u8],
        now: Instant,
    ) -> Result<SendOutcome, SessionError> {
        if !matches!(kind, Kind::Transport | Kind::Ack) {
            return Err(SessionError::InvalidKind);
        }
        if peer == self.id || peer.is_broadcast() {
            return Err(SessionError::InvalidPeer);
        }
        let padded =
            padded_len(plaintext.len(), &self.cfg.padding_buckets).unwrap_or(plaintext.len());
        if padded.saturating_add(SEALED_OVERHEAD) > wire::MAX_FRAME_LEN {
            return Err(SessionError::MessageTooLong);
        }
        self.apply_rules(peer, now);
        if self.can_send(&peer) {
            return self.seal_and_push(peer, kind, plaintext, now).map(|()| {
                self.apply_rules(peer, now);
                SendOutcome::Sent
            });
        }
        self.ensure_peer(peer, now)?;
        let max_q = self.cfg.max_queued_per_peer;
        let p = self.table.get_mut(&peer).ok_or(SessionError::TableFull)?;
        if p.queue.len() >= max_q {
            return Err(self.count(SessionError::QueueFull));
        }
        p.queue.push_back(Queued {
            kind,
            plaintext: plaintext.to_vec(),
        });
        if p.next.is_none() {
            if let Err(e) = self.start_handshake(peer, now) {
                if let Some(p) = self.table.get_mut(&peer) {
                    p.queue.pop_back();
                }
                self.table.prune();
                return Err(e);
            }
        }
        Ok(SendOutcome::Queued)
    }

    /// Handles one frame addressed to this node. Returns the plaintext of an accepted TRANSPORT or ACK.
    pub fn handle_frame(
        &mut self,
        frame: &[u8],
        now: Instant,
    ) -> Result<Option<Delivered>, SessionError> {
        let result = self.handle_frame_inner(frame, now);
        if let Err(e) = &result {
            self.count(*e);
        }
        result
    }

    fn handle_frame_inner(
        &mut self,
        frame: &[u8],
        now: Instant,
    ) -> Result<Option<Delivered>, SessionError> {
        let view = FrameView::new_checked(frame)?;
        let header = Header::parse(&view)?;
        if header.dst != self.id {
            return Err(SessionError::NotForUs);
        }
        let peer = header.src;
        match header.kind {
            Kind::Handshake1 => self.on_first(peer, view.body(), now).map(|()| None),
            Kind::Handshake2 => self.on_second(peer, view.body(), now).map(|()| None),
            Kind::Handshake3 => self.on_third(peer, view.body(), now).map(|()| None),
            Kind::Transport | Kind::Ack | Kind::Close => {
                self.on_sealed(peer, header.kind, frame, view.body(), now)
            }
            Kind::UnknownSession => self
                .on_unknown_session(peer, view.body(), now)
                .map(|()| None),
            _ => Err(SessionError::NotSessionKind),
        }
    }

    /// Closes the session with `peer` (CLOSE reason 0) and forgets every state and queued message for it.
    pub fn close(&mut self, peer: NodeId, now: Instant) -> Result<(), SessionError> {
        self.close_with(peer, CloseReason::User, now)
    }

    /// Closes every session with CLOSE `reason`: [`CloseReason::User`] when the user closes them all,
    /// [`CloseReason::Shutdown`] when the node stops.
    pub fn close_all(&mut self, reason: CloseReason, now: Instant) {
        for peer in self.table.ids() {
            let _ = self.close_with(peer, reason, now);
        }
    }

    /// Re-trusts `peer` after an [`SessionEvent::UntrustedIdentity`]: its pin becomes the keys it last presented.
    pub fn trust(&mut self, peer: NodeId) -> Result<PublicIdentity, SessionError> {
        let keys = self
            .pins
            .trust_presented(peer)
            .ok_or(SessionError::NothingToTrust)?;
        if self.cfg.persist {
            self.persisted.pin(peer, keys);
        }
        Ok(keys)
    }

    /// Every pin as `(node id, keys)`, for persistence.
    pub fn export_pins(&self) -> Vec<(NodeId, PublicIdentity)> {
        self.pins.export()
    }

    /// Adds pins (from persistence or an out-of-band exchange). Returns how many were stored.
    pub fn import_pins(&mut self, pins: &[(NodeId, PublicIdentity)]) -> usize {
        pins.iter()
            .filter(|(id, k)| self.pins.import(*id, *k))
            .count()
    }

    /// The pin of `peer`.
    pub fn pinned(&self, peer: &NodeId) -> Option<&PublicIdentity> {
        self.pins.get(peer)
    }

    /// Runs timers: handshake retransmissions and timeouts, rekeys, renewals, expiries and grace ends due at
    /// `now`. Harmless when nothing is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        for peer in self.table.ids() {
            self.handshake_timer(peer, now);
            self.apply_rules(peer, now);
        }
        self.table.prune();
    }

    /// The next instant [`Self::handle_timeout`] has something to do.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut best: Option<Instant> = None;
        let mut consider = |t: Instant| best = Some(best.map_or(t, |b| b.min(t)));
        for (_, p) in self.table.iter() {
            let renewing = p.next.is_some();
            if let Some(h) = &p.next {
                consider(h.next_retry);
            }
            for s in p.current.iter().chain(p.previous.as_deref()) {
                consider(next_deadline(&self.cfg, &s.clock(renewing)));
            }
        }
        best
    }

    /// The next frame to put on air.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Outgoing> {
        self.transmits.pop_front()
    }

    /// The next event for the application.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// Figures of the session that currently sends to `peer`.
    pub fn session_stats(&self, peer: &NodeId, now: Instant) -> Option<SessionStats> {
        let s = self.table.get(peer)?.current.as_ref()?;
        Some(SessionStats {
            session_id: s.id,
            age: now.saturating_since(s.established),
            tx_epoch: s.tx.epoch(),
            rx_epoch: s.rx.epoch(),
            messages: s.messages,
            tx_frames: s.tx_frames,
            tx_bytes: s.tx_bytes,
            rx_frames: s.rx_frames,
            rx_bytes: s.rx_bytes,
            hard_limit: s.hard_limit,
        })
    }

    /// The keys `peer` authenticated with in its current session.
    pub fn remote_identity(&self, peer: &NodeId) -> Option<PublicIdentity> {
        self.table.get(peer)?.current.as_ref().map(|s| s.remote)
    }

    /// True when `peer` has a session that can send now.
    pub fn is_established(&self, peer: &NodeId) -> bool {
        self.can_send(peer)
    }

    /// True when a handshake with `peer` (first session or renewal) is in progress.
    pub fn handshake_in_progress(&self, peer: &NodeId) -> bool {
        self.table.get(peer).is_some_and(|p| p.next.is_some())
    }

    /// Resends the last handshake message to `peer` at once, because the peer has just become reachable again
    /// (a link to it came up, or a route to it was learned; PROTOCOL.md §6.8): the retry that was due next is
    /// taken now (a new frame, fresh frame id) and the retry timer restarts from now; a handshake with no retry
    /// left is resent once more and still gives up at its deadline. False when no handshake with `peer` is in
    /// progress.
    pub fn resend_handshake(&mut self, peer: NodeId, now: Instant) -> bool {
        let (retry, max) = (self.cfg.handshake_retry, self.cfg.handshake_retries);
        let Some(h) = self.table.get_mut(&peer).and_then(|p| p.next.as_mut()) else {
            return false;
        };
        if h.retries < max {
            h.retries += 1;
            h.next_retry = now + retry;
        }
        let (kind, sid, msg) = h.last_message();
        self.push_handshake(kind, peer, sid, &msg);
        true
    }

    /// Drop counters, one per reason.
    pub fn drops(&self) -> &DropCounters {
        &self.drops
    }

    /// Estimated memory of the session layer: `size_of` of every struct kept plus the heap each owns (queued
    /// plaintexts, buffered handshake messages, a fixed estimate of snow's state per handshake in progress).
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of::<Sessions>()
            + self
                .table
                .iter()
                .map(|(_, p)| p.memory_bytes())
                .sum::<usize>()
            + self
                .transmits
                .iter()
                .map(|o| o.frame.capacity())
                .sum::<usize>()
    }

    /// Estimated memory of the state kept for `peer` (for an established, idle session: the `Peer` struct and
    /// one `Session` with both directions' keys, ciphers and replay window).
    pub fn peer_memory_bytes(&self, peer: &NodeId) -> Option<usize> {
        self.table.get(peer).map(Peer::memory_bytes)
    }
}

/// Seals one frame exactly as a session would, from a direction key at epoch 0 moved `epoch` REKEYs forward and
/// the explicit `nonce`: for interoperability vectors (PROTOCOL.md §8.3) and tests. `None` if it does not fit.
pub fn seal_with_key(
    key: Key,
    epoch: u32,
    nonce: u64,
    header: &Header,
    session_id: u8,
    plaintext: &[u8],
    padding_buckets: &[usize],
) -> Option<Vec<u8>> {
    let mut tx = Sender::new(key, Instant::ZERO);
    for _ in 0..epoch.min(1024) {
        tx.rekey(Instant::ZERO);
    }
    tx.set_nonce(nonce);
    tx.seal(header, session_id, plaintext, padding_buckets)
}

mod engine;
