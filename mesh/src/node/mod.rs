//! The node: the sans-IO state machine that ties link, wire, session and route together (PROTOCOL.md §7).
//!
//! [`Node`] dispatches; the logic lives in [`crate::link`] (packets), [`crate::wire`] (frames),
//! [`crate::session`] (Noise) and [`crate::route`] (tables and policies). This file holds the public methods and
//! the plumbing every path shares (originating frames, putting them on links); `inbound.rs` handles frames from
//! the air, `hop.rs` the hop-by-hop acknowledgements and resends, and `timers.rs` everything time-driven.
//! Invariant: `Node` never reads a clock or the air; every input carries `now`, every output is polled, and every
//! queue it owns is bounded with a drop counter.

mod api;
mod hop;
mod inbound;
mod resume;
mod timers;

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

pub use crate::route::{RelayPolicy, RouteConfig};
pub use api::*;

use crate::identity::{Identity, NodeId};
use crate::link::{Fragmenter, Reassembler, ReassemblyStats};
use crate::route::dup::DupCache;
use crate::route::hop::{AckBatch, Rtt, Unacked};
use crate::route::relay::PendingRelays;
use crate::route::reliable::{encode_transport, Backoff, OutMessage, OutState, Outbox, SeenSet};
use crate::route::tables::{Peers, Routes};
use crate::session::{
    padded_len, CloseReason, DropCounters, SessionSnapshot, Sessions, SEALED_OVERHEAD,
};
use crate::time::{Duration, Instant};
use crate::wire::{self, Announce, Broadcast, FrameView, Kind};

pub use crate::channel::ChannelKey;

/// Bound on packets waiting in `poll_action`; beyond it the oldest are dropped and counted.
const MAX_ACTIONS: usize = 65_536;
/// Bound on events waiting in `poll_event`; beyond it the oldest are dropped and counted.
const MAX_EVENTS: usize = 4_096;

/// One link as the node sees it.
struct LinkState {
    att_mtu: u16,
    fragmenter: Fragmenter,
    reassembler: Reassembler,
    neighbour: Option<NodeId>,
    last_heard: Instant,
    next_hello: Instant,
    /// The neighbour acknowledges frames on this link (a LINK_ACK came from it): frames sent here are held until
    /// acknowledged (PROTOCOL.md §7.10).
    peer_acks: bool,
    /// Round-trip estimate from those acknowledgements.
    rtt: Rtt,
    /// Keys of frames received here, waiting to be acknowledged.
    acks: AckBatch,
    /// Frame id and send time of the last hello: acknowledged before `peer_acks` is known, its ack gives the
    /// link's first round-trip sample.
    last_hello: Option<(u32, Instant)>,
}

/// One mesh node.
///
/// Method groups, in the order a runtime calls them:
/// 1. construction: [`Node::new`];
/// 2. input, one at a time: [`Node::link_up`] / [`Node::link_down`] (the radio), [`Node::handle_packet`] (a
///    packet from a link), [`Node::handle_timeout`] (when the instant of [`Node::poll_timeout`] has passed;
///    spurious calls are harmless), and the application's [`Node::send`], [`Node::broadcast`],
///    [`Node::join_channel`], [`Node::leave_channel`], [`Node::send_channel`], [`Node::close_session`],
///    [`Node::close_all`], [`Node::trust`];
/// 3. output, drained after every input: [`Node::poll_action`] (perform each transmit), [`Node::poll_event`],
///    then [`Node::poll_timeout`] to re-arm the timer;
/// 4. inspection: [`Node::stats`], [`Node::neighbours`], [`Node::peers`], [`Node::memory_bytes`].
pub struct Node {
    identity: Identity,
    id: NodeId,
    config: NodeConfig,
    rng: ChaCha20Rng,
    sessions: Sessions,
    links: BTreeMap<LinkId, LinkState>,
    peers: Peers,
    routes: Routes,
    dup: DupCache,
    relays: PendingRelays,
    unacked: Unacked,
    outbox: Outbox,
    seen: SeenSet,
    pending_broadcasts: VecDeque<(NodeId, Vec<u8>, Instant)>,
    /// Sealed frames that arrived before the HANDSHAKE_3 of their session: (from, frame, expires).
    early: VecDeque<(NodeId, Vec<u8>, Instant)>,
    /// The reassembly counters of links that went down or were restarted (those up are read from their links).
    reassembly_gone: ReassemblyStats,
    channels: BTreeMap<String, ChannelKey>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    stats: NodeStats,
    next_announce: Instant,
    last_announce: Option<Instant>,
    /// When each peer's work was last resent early (PROTOCOL.md §7.7): at most once per `early_resend_gap`.
    resumed: BTreeMap<NodeId, Instant>,
    /// Peers that answered UNKNOWN_SESSION while a handshake with them got under way: their unacknowledged
    /// messages go again on the new session.
    lost_sessions: BTreeSet<NodeId>,
}

impl core::fmt::Debug for Node {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .field("links", &self.links.len())
            .field("secrets", &"<redacted>")
            .finish()
    }
}

impl Node {
    /// A node for `identity`. Every random choice (frame and message ids, relay delays, announce jitter, and
    /// through the session layer ephemeral keys) comes from a ChaCha20 RNG seeded with `rng_seed`. The first
    /// mesh-wide announce is scheduled within `announce_soon` of `now`.
    pub fn new(identity: Identity, config: NodeConfig, rng_seed: [u8; 32], now: Instant) -> Node {
        let mut rng = ChaCha20Rng::from_seed(rng_seed);
        let mut session_seed = [0u8; 32];
        rng.fill_bytes(&mut session_seed);
        let id = identity.node_id();
        let sessions = Sessions::new(identity.clone(), config.session.clone(), session_seed);
        let r = &config.route;
        let mut node = Node {
            identity,
            id,
            rng,
            sessions,
            links: BTreeMap::new(),
            peers: Peers::new(r.max_peers),
            routes: Routes::new(r.max_routes),
            dup: DupCache::with_seed(r.dup_capacity, r.dup_lifetime, &rng_seed),
            relays: PendingRelays::new(r.max_pending_relays),
            unacked: Unacked::new(r.hop_max_frames, r.hop_max_bytes),
            outbox: Outbox::new(r.outbox_capacity),
            seen: SeenSet::new(r.seen_per_peer, r.max_peers, r.seen_lifetime),
            pending_broadcasts: VecDeque::new(),
            early: VecDeque::new(),
            reassembly_gone: ReassemblyStats::default(),
            channels: BTreeMap::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            stats: NodeStats::default(),
            next_announce: now,
            last_announce: None,
            resumed: BTreeMap::new(),
            lost_sessions: BTreeSet::new(),
            config,
        };
        node.next_announce = now + node.random_below(node.config.route.announce_soon);
        node
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.id
    }

    /// The nickname this node announces (as configured; announces carry at most its first 32 bytes).
    pub fn nickname(&self) -> &str {
        &self.config.nickname
    }

    /// A link came up with the given ATT MTU: the node sends its link-local hello on it at once and every
    /// `hello_interval` after. A link already up is restarted (fresh fragmenter and reassembler).
    pub fn link_up(&mut self, link: LinkId, att_mtu: u16, now: Instant) {
        if let Some(old) = self.links.remove(&link) {
            self.reassembly_gone.add(old.reassembler.stats());
            self.hop_link_gone(link);
            if let Some(peer) = old.neighbour {
                self.neighbour_lost(link, peer);
            }
        }
        self.links.insert(
            link,
            LinkState {
                att_mtu,
                fragmenter: Fragmenter::new(),
                reassembler: Reassembler::new(self.config.reassembly),
                neighbour: None,
                last_heard: now,
                next_hello: now + self.config.route.hello_interval,
                peer_acks: false,
                rtt: Rtt::default(),
                acks: AckBatch::default(),
                last_hello: None,
            },
        );
        self.send_hello(link, now);
    }

    /// A link went down: its neighbour (if any) is reported gone and every route over it is forgotten.
    pub fn link_down(&mut self, link: LinkId, now: Instant) {
        if let Some(state) = self.links.remove(&link) {
            self.reassembly_gone.add(state.reassembler.stats());
            self.hop_link_gone(link);
            if let Some(peer) = state.neighbour {
                self.neighbour_lost(link, peer);
            }
        }
        self.pump(now);
    }

    /// A packet arrived on `link`. Packets on links not up are dropped and counted.
    pub fn handle_packet(&mut self, link: LinkId, packet: &[u8], now: Instant) {
        self.stats.packets_in = self.stats.packets_in.saturating_add(1);
        let Some(state) = self.links.get_mut(&link) else {
            self.stats.drop_unknown_link = self.stats.drop_unknown_link.saturating_add(1);
            return;
        };
        let frame = match state.reassembler.push(packet, now) {
            Ok(Some(frame)) => Some(frame.to_vec()),
            Ok(None) => None,
            Err(_) => {
                self.stats.drop_link = self.stats.drop_link.saturating_add(1);
                None
            }
        };
        if let Some(frame) = frame {
            self.handle_frame(link, frame, now);
        }
        self.pump(now);
    }

    /// Sends a private message to `peer` over a Noise session (started if needed). The message is kept until
    /// acknowledged ([`Event::DeliveryConfirmed`]) or given up ([`Event::DeliveryFailed`] at expiry or eviction).
    /// A peer not currently announced gets it when it appears.
    pub fn send(
        &mut self,
        peer: NodeId,
        payload: &[u8],
        now: Instant,
    ) -> Result<MessageId, NodeError> {
        if peer == self.id || peer.is_broadcast() {
            return Err(NodeError::InvalidPeer);
        }
        if !self.private_fits(payload.len()) {
            return Err(NodeError::MessageTooLong);
        }
        let id = MessageId(self.rng.next_u64());
        let backoff = self.backoff();
        let present = self.peers.get(&peer).is_some();
        let state = if present {
            OutState::InFlight {
                attempts: 1,
                next_retry: now + backoff.wait_after(1),
            }
        } else {
            OutState::Waiting
        };
        let expires = now + self.config.route.outbox_lifetime;
        let msg = OutMessage {
            to: peer,
            id,
            payload: payload.to_vec(),
            expires,
            state,
        };
        if let Some(evicted) = self.outbox.push(msg) {
            self.stats.outbox_drops = self.stats.outbox_drops.saturating_add(1);
            if evicted.id == id && evicted.to == peer {
                return Err(NodeError::OutboxFull);
            }
            self.persist(Persist::OutboxRemove {
                to: evicted.to,
                id: evicted.id,
            });
            self.push_event(Event::DeliveryFailed {
                to: evicted.to,
                id: evicted.id,
                reason: DeliveryFailure::OutboxFull,
            });
        }
        self.persist(Persist::OutboxAdd {
            to: peer,
            id,
            payload: payload.to_vec(),
            expires,
        });
        if present {
            self.send_private(peer, id, payload, now);
        }
        self.pump(now);
        Ok(id)
    }

    /// Whether a private message of `len` bytes, with its message id and padded to its bucket (PROTOCOL.md §6.6,
    /// §7.6), fits one sealed frame.
    fn private_fits(&self, len: usize) -> bool {
        let inner = len.saturating_add(crate::route::reliable::MESSAGE_ID_LEN);
        let padded = padded_len(inner, &self.config.session.padding_buckets).unwrap_or(inner);
        padded.saturating_add(SEALED_OVERHEAD) <= wire::MAX_FRAME_LEN
    }

    /// The longest payload, in bytes, that [`Node::send`], [`Node::broadcast`] or [`Node::send_channel`] accepts
    /// (PROTOCOL.md §7.12); one byte more is refused with [`NodeError::MessageTooLong`]. With the default padding
    /// buckets: private 3063 (the 4096-byte frame less 48 bytes of header and sealing, padded to a multiple of
    /// 1024, less the padding marker and the 8-byte message id), broadcast 1024, channel 4026.
    pub fn max_payload(&self, kind: PayloadKind) -> usize {
        match kind {
            PayloadKind::Broadcast => wire::body::MAX_BROADCAST_LEN,
            PayloadKind::Channel => crate::channel::MAX_CHANNEL_PLAINTEXT_LEN,
            PayloadKind::Private => {
                // Padding only grows with the length: the largest length that fits, by bisection.
                let (mut fits, mut too_long) = (0, wire::MAX_FRAME_LEN);
                if !self.private_fits(fits) {
                    return 0;
                }
                while too_long - fits > 1 {
                    let mid = fits + (too_long - fits) / 2;
                    if self.private_fits(mid) {
                        fits = mid;
                    } else {
                        too_long = mid;
                    }
                }
                fits
            }
        }
    }

    /// Signs `payload` and floods it to every node ([`MessageKind::Broadcast`]). Returns the frame id.
    pub fn broadcast(&mut self, payload: &[u8], now: Instant) -> Result<MessageId, NodeError> {
        let frame_id = self.rng.next_u32();
        let frame = Broadcast::sign_frame(
            &self.identity,
            frame_id,
            self.config.route.default_ttl,
            payload,
        )
        .map_err(|e| match e {
            wire::WireError::TooLong => NodeError::MessageTooLong,
            wire::WireError::BadField if payload.is_empty() => NodeError::EmptyMessage,
            wire::WireError::BadField => NodeError::MessageTooLong,
            other => NodeError::Wire(other),
        })?;
        self.originate(frame, now);
        self.pump(now);
        Ok(MessageId(u64::from(frame_id)))
    }

    /// Joins the password channel `name` with `key` (derived for that name, see [`ChannelKey::derive`]); frames
    /// of that channel are then opened and delivered. Joining again replaces the key. Refused with
    /// [`NodeError::InvalidChannel`] when the key is for another name, [`NodeError::TooManyChannels`] when
    /// `max_channels` others are joined.
    pub fn join_channel(&mut self, name: &str, key: ChannelKey) -> Result<(), NodeError> {
        if key.name() != name {
            return Err(NodeError::InvalidChannel);
        }
        if !self.channels.contains_key(name) && self.channels.len() >= self.config.max_channels {
            return Err(NodeError::TooManyChannels {
                joined: self.channels.len(),
            });
        }
        self.channels.insert(String::from(name), key);
        Ok(())
    }

    /// The names of the joined channels, in order.
    pub fn joined_channels(&self) -> impl Iterator<Item = &str> + '_ {
        self.channels.keys().map(String::as_str)
    }

    /// Whether the channel `name` is joined.
    pub fn has_joined(&self, name: &str) -> bool {
        self.channels.contains_key(name)
    }

    /// How many channels may be joined at once (`NodeConfig::max_channels`).
    pub fn max_channels(&self) -> usize {
        self.config.max_channels
    }

    /// Leaves the channel `name`.
    pub fn leave_channel(&mut self, name: &str) -> Result<(), NodeError> {
        self.channels
            .remove(name)
            .map(|_| ())
            .ok_or(NodeError::NotJoined)
    }

    /// Seals `payload` for the joined channel `name` and floods it. Returns the frame id.
    pub fn send_channel(
        &mut self,
        name: &str,
        payload: &[u8],
        now: Instant,
    ) -> Result<MessageId, NodeError> {
        let key = self.channels.get(name).ok_or(NodeError::NotJoined)?;
        let frame_id = self.rng.next_u32();
        let frame = crate::channel::seal_frame(
            key,
            self.id,
            frame_id,
            self.config.route.default_ttl,
            payload,
            &mut self.rng,
        )
        .map_err(|e| match e {
            crate::channel::ChannelError::MessageTooLong(_) => NodeError::MessageTooLong,
            _ => NodeError::InvalidChannel,
        })?;
        self.originate(frame, now);
        self.pump(now);
        Ok(MessageId(u64::from(frame_id)))
    }

    /// Closes the session with `peer` (CLOSE, reason user).
    pub fn close_session(&mut self, peer: NodeId, now: Instant) -> Result<(), NodeError> {
        let r = self.sessions.close(peer, now).map_err(NodeError::from);
        self.pump(now);
        r
    }

    /// Closes every session, telling each peer `reason`: [`CloseReason::Shutdown`] when the node stops,
    /// [`CloseReason::User`] at the user's request (`ctl close --all`, as for [`Node::close_session`]).
    pub fn close_all(&mut self, reason: CloseReason, now: Instant) {
        self.sessions.close_all(reason, now);
        self.pump(now);
    }

    /// Adopts the keys `peer` presented in a handshake refused for an identity mismatch (PROTOCOL.md §6.7).
    pub fn trust(&mut self, peer: NodeId) -> Result<(), NodeError> {
        let r = self
            .sessions
            .trust(peer)
            .map(|_| ())
            .map_err(NodeError::from);
        self.drain_persist();
        r
    }

    /// Adds pins from the store (before [`Node::restore_session`]). Returns how many were taken.
    pub fn import_pins(&mut self, pins: &[(NodeId, crate::identity::PublicIdentity)]) -> usize {
        self.sessions.import_pins(pins)
    }

    /// Resumes a stored session without a handshake (PROTOCOL.md §6.11; see
    /// [`crate::session::Sessions::restore`]).
    pub fn restore_session(
        &mut self,
        snapshot: &SessionSnapshot,
        now: Instant,
    ) -> Result<(), NodeError> {
        let r = self
            .sessions
            .restore(snapshot, now)
            .map_err(NodeError::from);
        self.pump(now);
        r
    }

    /// Puts a stored, unacknowledged message back in the outbox (PROTOCOL.md §7.8). It waits for its peer to be
    /// heard, then is sent again under the same id, so the receiver delivers it once. Messages past `expires`
    /// fail at the next timeout. Refused with [`NodeError::OutboxFull`] when the outbox is full.
    pub fn restore_message(
        &mut self,
        to: NodeId,
        id: MessageId,
        payload: &[u8],
        expires: Instant,
    ) -> Result<(), NodeError> {
        if to == self.id || to.is_broadcast() {
            return Err(NodeError::InvalidPeer);
        }
        if self.outbox.len() >= self.config.route.outbox_capacity {
            return Err(NodeError::OutboxFull);
        }
        let msg = OutMessage {
            to,
            id,
            payload: payload.to_vec(),
            expires,
            state: OutState::Waiting,
        };
        match self.outbox.push(msg) {
            None => Ok(()),
            Some(_) => Err(NodeError::OutboxFull),
        }
    }

    /// Remembers a delivered message id from the store, so a resend of it is acknowledged but not delivered again.
    pub fn restore_seen(&mut self, from: NodeId, id: MessageId, at: Instant) {
        self.seen.insert(from, id, at);
    }

    /// The next packet to transmit.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event for the application.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Counters.
    pub fn stats(&self) -> NodeStats {
        let mut s = self.stats;
        s.dup_evictions = self.dup.evictions();
        s.peer_evictions = self.peers.evictions();
        s.route_evictions = self.routes.evictions();
        s.routes_learned = self.routes.learned();
        s.routes_broken = self.routes.broken();
        s.drop_relay_queue = self.relays.refused();
        s.seen_evictions = self.seen.evictions();
        s.outbox_len = self.outbox.len() as u64;
        s.hop_waiting = self.unacked.open_waits() as u64;
        s
    }

    /// The packet reassembly counters of every link this node has had, summed (PROTOCOL.md §3): what `drop_link`
    /// counts, by reason.
    pub fn reassembly_stats(&self) -> ReassemblyStats {
        let mut total = self.reassembly_gone;
        for l in self.links.values() {
            total.add(l.reassembler.stats());
        }
        total
    }

    /// The session layer's refusals, by reason (replays, stale epochs, decrypt failures, rate limits, ...): what
    /// `drop_session` counts, and more (refused sends, handshake messages ignored).
    pub fn session_drops(&self) -> DropCounters {
        *self.sessions.drops()
    }

    /// Neighbours bound to links.
    pub fn neighbours(&self) -> Vec<NeighbourInfo> {
        self.links
            .iter()
            .filter_map(|(link, s)| {
                let peer = s.neighbour?;
                Some(NeighbourInfo {
                    link: *link,
                    peer,
                    nickname: self
                        .peers
                        .get(&peer)
                        .map(|p| p.nickname.clone())
                        .unwrap_or_default(),
                    last_heard: s.last_heard,
                })
            })
            .collect()
    }

    /// The nickname `id` announced, if it is a known peer: one table lookup, where [`Node::peers`] builds every
    /// peer's info (and fingerprint).
    pub fn peer_nickname(&self, id: &NodeId) -> Option<&str> {
        self.peers.get(id).map(|p| p.nickname.as_str())
    }

    /// Peers known from their announces.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.peers
            .iter()
            .map(|(id, p)| PeerInfo {
                id: *id,
                nickname: p.nickname.clone(),
                fingerprint: p.public.fingerprint(),
                last_heard: p.last_heard,
                hops: p.hops,
                session: match (
                    self.sessions.is_established(id),
                    self.sessions.handshake_in_progress(id),
                ) {
                    (true, true) => SessionState::Renewing,
                    (true, false) => SessionState::Established,
                    (false, true) => SessionState::Handshaking,
                    (false, false) => SessionState::None,
                },
                nickname_conflict: p.nickname_conflict,
            })
            .collect()
    }

    /// How many peers are marked as having lost their session (UNKNOWN_SESSION while a handshake with them got
    /// under way): for tests of the early-resend bookkeeping.
    #[doc(hidden)]
    pub fn lost_session_marks(&self) -> usize {
        self.lost_sessions.len()
    }

    /// An estimate of the heap and inline memory this node holds.
    pub fn memory_bytes(&self) -> usize {
        let links: usize = self
            .links
            .values()
            .map(|l| {
                core::mem::size_of::<LinkState>()
                    + l.reassembler.heap_bytes()
                    + l.acks.memory_bytes()
            })
            .sum();
        let pending: usize = self
            .pending_broadcasts
            .iter()
            .chain(self.early.iter())
            .map(|(_, f, _)| f.capacity() + 48)
            .sum();
        let actions: usize = self
            .actions
            .iter()
            .map(|a| match a {
                Action::Transmit { packet, .. } => packet.capacity() + 32,
                Action::Persist(Persist::OutboxAdd { payload, .. }) => payload.capacity() + 64,
                Action::Persist(_) => core::mem::size_of::<Action>(),
            })
            .sum();
        core::mem::size_of::<Node>()
            + self.sessions.memory_bytes()
            + links
            + self.peers.memory_bytes()
            + self.routes.memory_bytes()
            + self.dup.memory_bytes()
            + self.relays.memory_bytes()
            + self.unacked.memory_bytes()
            + self.outbox.memory_bytes()
            + self.seen.memory_bytes()
            + pending
            + actions
            + self.events.len() * core::mem::size_of::<Event>()
            + self.resumed.len() * (core::mem::size_of::<(NodeId, Instant)>() + 16)
            + self.lost_sessions.len() * (core::mem::size_of::<NodeId>() + 16)
    }

    // ---- shared plumbing ----

    fn backoff(&self) -> Backoff {
        let r = &self.config.route;
        Backoff {
            ack_timeout: r.ack_timeout,
            factor: r.ack_backoff_factor,
            max_attempts: r.max_attempts,
            max_wait: r.ack_timeout_max,
        }
    }

    /// A uniformly random span in `0..max` (zero when `max` is zero).
    fn random_below(&mut self, max: Duration) -> Duration {
        match max.total_millis() {
            0 => Duration::ZERO,
            m => Duration::from_millis(self.rng.next_u64() % m),
        }
    }

    fn push_event(&mut self, event: Event) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
            self.stats.events_dropped = self.stats.events_dropped.saturating_add(1);
        }
        self.events.push_back(event);
    }

    /// Hands one private message to the session layer as TRANSPORT.
    fn send_private(&mut self, peer: NodeId, id: MessageId, payload: &[u8], now: Instant) {
        let plaintext = encode_transport(id, payload);
        if self
            .sessions
            .send(peer, Kind::Transport, &plaintext, now)
            .is_err()
        {
            self.stats.drop_session = self.stats.drop_session.saturating_add(1);
        }
    }

    /// Fragments `frame` for `link`, queues its packets, and holds it for resending until the link's neighbour
    /// acknowledges it (when hop-by-hop acknowledgements run on the link, §7.10).
    fn transmit(&mut self, link: LinkId, frame: &[u8], now: Instant) {
        if self.put_on_link(link, frame) {
            self.hold_for_ack(link, frame, now);
        }
    }

    /// Fragments `frame` for `link` and queues its packets; false when the link is not up or the frame cannot be
    /// fragmented (counted).
    fn put_on_link(&mut self, link: LinkId, frame: &[u8]) -> bool {
        let Some(state) = self.links.get_mut(&link) else {
            return false;
        };
        let Ok(packets) = state.fragmenter.fragment(frame, state.att_mtu) else {
            self.stats.drop_link = self.stats.drop_link.saturating_add(1);
            return false;
        };
        self.stats.frames_out = self.stats.frames_out.saturating_add(1);
        for p in packets {
            let mut packet = Vec::with_capacity(p.len());
            p.append_to(&mut packet);
            if self.actions.len() >= MAX_ACTIONS {
                // Persist records are never dropped: the oldest packet goes instead (or this one).
                match self
                    .actions
                    .iter()
                    .position(|a| matches!(a, Action::Transmit { .. }))
                {
                    Some(pos) => {
                        self.actions.remove(pos);
                    }
                    None => {
                        self.stats.actions_dropped = self.stats.actions_dropped.saturating_add(1);
                        continue;
                    }
                }
                self.stats.actions_dropped = self.stats.actions_dropped.saturating_add(1);
            }
            self.stats.packets_out = self.stats.packets_out.saturating_add(1);
            self.actions.push_back(Action::Transmit { link, packet });
        }
        true
    }

    /// Queues a record for the store, when persistence is on. Never dropped.
    fn persist(&mut self, record: Persist) {
        if self.config.session.persist {
            self.stats.persist_records = self.stats.persist_records.saturating_add(1);
            self.actions.push_back(Action::Persist(record));
        }
    }

    /// Moves the session layer's records into the action queue.
    fn drain_persist(&mut self) {
        while let Some(r) = self.sessions.poll_persist() {
            self.persist(Persist::Session(r));
        }
    }

    /// Sends `frame` on every up link except those in `skip`; returns how many links it went out on.
    fn transmit_all(&mut self, frame: &[u8], skip: &[LinkId], now: Instant) -> u64 {
        let links: Vec<LinkId> = self
            .links
            .keys()
            .filter(|l| !skip.contains(l))
            .copied()
            .collect();
        for l in &links {
            self.transmit(*l, frame, now);
        }
        links.len() as u64
    }

    /// Puts a frame this node originated on air: it enters the duplicate cache (so echoes are not relayed back);
    /// a unicast frame follows a learned route under the managed policy, everything else goes on every link.
    fn originate(&mut self, frame: Vec<u8>, now: Instant) {
        let Ok(view) = FrameView::new_checked(&frame[..]) else {
            return;
        };
        let (dst, key, kind) = (view.dst(), (view.src(), view.frame_id()), view.kind_code());
        self.dup.insert(key, now);
        self.stats.frames_originated = self.stats.frames_originated.saturating_add(1);
        if kind == Kind::Handshake1.code() {
            self.stats.handshakes = self.stats.handshakes.saturating_add(1);
        }
        if !dst.is_broadcast() {
            if let Some(link) = self.unicast_link(dst, kind, now) {
                self.stats.routed_unicast = self.stats.routed_unicast.saturating_add(1);
                self.transmit(link, &frame, now);
                return;
            }
        }
        self.transmit_all(&frame, &[], now);
    }

    /// The one link a unicast frame of kind `kind` for `dst` should take, if any: the managed policy only.
    fn unicast_link(&mut self, dst: NodeId, kind: u8, now: Instant) -> Option<LinkId> {
        if self.config.route.policy != RelayPolicy::Managed {
            return None;
        }
        let expects_answer = [Kind::Handshake1, Kind::Handshake2, Kind::Transport]
            .iter()
            .any(|k| k.code() == kind);
        let confirm = self.config.route.route_confirm_timeout;
        let link = self.routes.lookup(&dst, expects_answer, confirm, now)?;
        self.links.contains_key(&link).then_some(link)
    }

    /// Sends the link-local hello (ANNOUNCE, TTL 0) on `link`.
    fn send_hello(&mut self, link: LinkId, now: Instant) {
        let frame_id = self.rng.next_u32();
        let nick = nickname_prefix(&self.config.nickname);
        if let Ok(frame) =
            Announce::sign_frame(&self.identity, frame_id, 0, self.config.capabilities, nick)
        {
            if let Some(state) = self.links.get_mut(&link) {
                state.last_hello = Some((frame_id, now));
            }
            self.transmit(link, &frame, now);
        }
    }

    /// The neighbour on `link` is gone: event, and its routes are forgotten.
    fn neighbour_lost(&mut self, link: LinkId, peer: NodeId) {
        self.routes.remove_link(link);
        self.push_event(Event::NeighbourDown { link, peer });
    }

    /// Drains the session layer: frames go on air, events are counted and passed on, and a newly established or
    /// renewed session opens the sealed frames that arrived before its HANDSHAKE_3 (which may send more: loop).
    fn pump(&mut self, now: Instant) {
        loop {
            // Records first: a frame sealed under a new nonce reservation must not go on air before it is stored.
            self.drain_persist();
            while let Some(out) = self.sessions.poll_transmit() {
                self.originate(out.frame, now);
            }
            let (mut established, mut renewed, mut failed) = (Vec::new(), Vec::new(), Vec::new());
            while let Some(ev) = self.sessions.poll_event() {
                use crate::session::SessionEvent as S;
                let c = match &ev {
                    S::Established { peer, .. } => {
                        established.push(*peer);
                        Some(&mut self.stats.sessions_established)
                    }
                    S::Rekeyed { .. } => Some(&mut self.stats.rekeys),
                    S::Renewed { peer } => {
                        renewed.push(*peer);
                        Some(&mut self.stats.renewals)
                    }
                    S::HandshakeFailed { peer, .. } => {
                        failed.push(*peer);
                        None
                    }
                    // Closing (local, remote, eviction, close-all) or expiry may erase a handshake without a
                    // HandshakeFailed: its lost-session mark goes too, or stale marks fill their table.
                    S::Closed { peer, .. } | S::Expired { peer, .. } => {
                        if !self.sessions.handshake_in_progress(peer) {
                            self.lost_sessions.remove(peer);
                        }
                        None
                    }
                    _ => None,
                };
                if let Some(c) = c {
                    *c = c.saturating_add(1);
                }
                self.push_event(Event::Session(ev));
            }
            if established.is_empty() && renewed.is_empty() && failed.is_empty() {
                return;
            }
            // A renewal's early frames wait for its HANDSHAKE_3 exactly like a first session's (§6.8).
            established.append(&mut renewed);
            for peer in &established {
                self.release_early(*peer, now);
            }
            self.sessions_replaced(&established, &failed, now);
        }
    }
}

/// The longest prefix of `nick` that fits an announce, cut at a char boundary.
fn nickname_prefix(nick: &str) -> &str {
    let mut end = nick.len().min(wire::body::MAX_NICKNAME_LEN);
    while end > 0 && !nick.is_char_boundary(end) {
        end -= 1;
    }
    nick.get(..end).unwrap_or_default()
}
