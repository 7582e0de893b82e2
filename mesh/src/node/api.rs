//! The value types of the node's public API: what [`super::Node`] takes, returns, emits and counts.
//!
//! Invariant: these types carry no secret; every enum is `#[non_exhaustive]` so the protocol can grow without
//! breaking runtimes, and every struct a runtime builds has a `Default`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::identity::{Fingerprint, NodeId};
use crate::link::{LinkError, ReassemblyConfig};
use crate::route::RouteConfig;
pub use crate::route::{LinkId, MessageId};
use crate::session::{SessionConfig, SessionError, SessionEvent, SessionRecord};
use crate::time::Instant;
use crate::wire::WireError;

/// Everything a node can be configured with. `Default` gives the values of PROTOCOL.md.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeConfig {
    /// The nickname announced to the mesh (at most 32 bytes of UTF-8; longer ones are cut at a char boundary).
    pub nickname: String,
    /// Capability bits announced (PROTOCOL.md §5.1).
    pub capabilities: u16,
    /// The session layer's limits.
    pub session: SessionConfig,
    /// The routing layer's limits and intervals.
    pub route: RouteConfig,
    /// Per-link reassembly bounds.
    pub reassembly: ReassemblyConfig,
    /// Password channels joined at once, at most.
    pub max_channels: usize,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            nickname: String::new(),
            capabilities: crate::wire::body::CAP_RELAY | crate::wire::body::CAP_SESSIONS,
            session: SessionConfig::default(),
            route: RouteConfig::default(),
            reassembly: ReassemblyConfig::default(),
            max_channels: 16,
        }
    }
}

/// Something the runtime must do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Send one GATT-sized packet on `link`.
    Transmit {
        /// The link.
        link: LinkId,
        /// The packet, at most `att_mtu - 3` bytes of that link.
        packet: Vec<u8>,
    },
    /// Make this record durable before performing any later action or publishing any later event (PROTOCOL.md
    /// §6.11). Only emitted with [`SessionConfig::persist`] on.
    Persist(Persist),
}

/// A change a node asks its runtime to store (PROTOCOL.md §6.11, §7.8). Replaying every record in order into a
/// store and handing the store back through [`Node::import_pins`], [`Node::restore_session`],
/// [`Node::restore_message`] and [`Node::restore_seen`] restarts the node where it stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Persist {
    /// A session snapshot, a removed session or a pin.
    Session(SessionRecord),
    /// A private message the application handed to [`Node::send`]: keep it until [`Persist::OutboxRemove`].
    OutboxAdd {
        /// The peer.
        to: NodeId,
        /// Its id.
        id: MessageId,
        /// The payload.
        payload: Vec<u8>,
        /// When it is given up (`DeliveryFailed(Expired)`).
        expires: Instant,
    },
    /// The message was acknowledged, expired or evicted: forget it.
    OutboxRemove {
        /// The peer.
        to: NodeId,
        /// Its id.
        id: MessageId,
    },
    /// A private message from `from` was delivered: remember its id for `seen_lifetime` after `at`, so that a
    /// restarted node does not deliver it again when the sender resends it.
    Seen {
        /// The sender.
        from: NodeId,
        /// The message id.
        id: MessageId,
        /// When it was delivered.
        at: Instant,
    },
}

/// What kind of message was received.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageKind {
    /// A signed public message to every node.
    Broadcast,
    /// A private message over a Noise session.
    Private,
    /// A message on a joined password channel, by name.
    Channel(String),
}

/// The kinds of message an application sends, for [`super::Node::max_payload`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PayloadKind {
    /// [`super::Node::send`]: a private message over a Noise session (0 bytes or more).
    Private,
    /// [`super::Node::broadcast`]: a signed message to every node (1 byte or more).
    Broadcast,
    /// [`super::Node::send_channel`]: a message on a joined password channel (0 bytes or more).
    Channel,
}

/// Why a private message was given up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryFailure {
    /// It stayed unacknowledged for the whole outbox lifetime.
    Expired,
    /// It was evicted from a full outbox to make room for a newer one.
    OutboxFull,
    /// The session layer refused it for good (for example, the peer's identity is not trusted).
    Refused,
}

/// Something the application may want to know or show.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A message for this node (private, broadcast or channel), delivered once.
    MessageReceived {
        /// The authenticated sender.
        from: NodeId,
        /// Which kind.
        kind: MessageKind,
        /// Its id.
        id: MessageId,
        /// The application payload.
        payload: Vec<u8>,
    },
    /// The peer acknowledged a private message.
    DeliveryConfirmed {
        /// The peer.
        to: NodeId,
        /// The message.
        id: MessageId,
    },
    /// A private message was given up.
    DeliveryFailed {
        /// The peer.
        to: NodeId,
        /// The message.
        id: MessageId,
        /// Why.
        reason: DeliveryFailure,
    },
    /// A verified announce from a node not in the peers table.
    PeerAppeared {
        /// The peer.
        peer: NodeId,
        /// Its announced nickname.
        nickname: String,
    },
    /// No announce from the peer for `peer_timeout`.
    PeerGone {
        /// The peer.
        peer: NodeId,
    },
    /// A verified link-local hello bound a neighbour to a link.
    NeighbourUp {
        /// The link.
        link: LinkId,
        /// The neighbour.
        peer: NodeId,
    },
    /// A neighbour timed out or its link went down.
    NeighbourDown {
        /// The link.
        link: LinkId,
        /// The neighbour.
        peer: NodeId,
    },
    /// A frame of a joined channel failed to open (wrong password).
    ChannelUnreadable {
        /// The channel name.
        channel: String,
        /// The claimed sender.
        from: NodeId,
    },
    /// A nickname already announced by another id was claimed by `peer` (PROTOCOL.md §7.2).
    NicknameConflict {
        /// The newer claimant.
        peer: NodeId,
        /// The nickname.
        nickname: String,
        /// The id that announced it first.
        holder: NodeId,
    },
    /// Something the session layer reports.
    Session(SessionEvent),
}

/// The state of the session with a peer, as shown by [`PeerInfo`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionState {
    /// No session and no handshake.
    None,
    /// A first handshake is in progress: no session yet.
    Handshaking,
    /// A session is established.
    Established,
    /// A session is established and a renewal handshake is in progress (§6.9).
    Renewing,
}

impl SessionState {
    /// Whether private messages can be sealed now (established, renewing or not).
    pub fn is_established(self) -> bool {
        matches!(self, SessionState::Established | SessionState::Renewing)
    }

    /// A lowercase name for tools: `none`, `handshaking`, `established`, `renewing`.
    pub fn name(self) -> &'static str {
        match self {
            SessionState::None => "none",
            SessionState::Handshaking => "handshaking",
            SessionState::Established => "established",
            SessionState::Renewing => "renewing",
        }
    }
}

/// A neighbour bound to a link.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NeighbourInfo {
    /// The link.
    pub link: LinkId,
    /// The neighbour's id.
    pub peer: NodeId,
    /// Its nickname as announced.
    pub nickname: String,
    /// When a frame last arrived on the link.
    pub last_heard: Instant,
}

/// A peer known from its announces.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerInfo {
    /// The peer's id.
    pub id: NodeId,
    /// Its nickname.
    pub nickname: String,
    /// Fingerprint of its keys.
    pub fingerprint: Fingerprint,
    /// When its last announce arrived.
    pub last_heard: Instant,
    /// Hops of its last announce (1 = neighbour).
    pub hops: u8,
    /// Our session with it.
    pub session: SessionState,
    /// The nickname is also claimed by another id.
    pub nickname_conflict: bool,
}

/// Counters of everything the node did and dropped. All saturating.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeStats {
    /// Packets handed to `handle_packet`.
    pub packets_in: u64,
    /// Packets emitted as `Action::Transmit`.
    pub packets_out: u64,
    /// Frames reassembled.
    pub frames_in: u64,
    /// Frames put on links (one per link).
    pub frames_out: u64,
    /// Frames this node originated (counted once, whatever the number of links).
    pub frames_originated: u64,
    /// Frames relayed (one per link a relay went out on).
    pub relayed: u64,
    /// Pending managed relays cancelled because enough copies were heard.
    pub suppressed: u64,
    /// Frames already in the duplicate cache.
    pub duplicates: u64,
    /// Duplicate cache entries evicted before their lifetime because it was full.
    pub dup_evictions: u64,
    /// Frames dropped for a wire error (malformed header or body).
    pub drop_wire: u64,
    /// Packets dropped or frames lost by reassembly.
    pub drop_link: u64,
    /// Frames refused by the session layer.
    pub drop_session: u64,
    /// Frames not relayed because their TTL ran out.
    pub ttl_expired: u64,
    /// Frames from this node's own id coming back.
    pub drop_own: u64,
    /// Announces or broadcasts whose signature failed.
    pub drop_bad_signature: u64,
    /// Announces and hellos whose signed content equalled the last verified one of their src: liveness
    /// refreshed without a new signature check (PROTOCOL.md §7.2).
    pub announces_unchanged: u64,
    /// Records handed to the runtime to store (`Action::Persist`).
    pub persist_records: u64,
    /// Known peers' announces handed to new neighbours (PEER_SYNC frames sent).
    pub peer_syncs_sent: u64,
    /// PEER_SYNC frames received and accepted.
    pub peer_syncs_received: u64,
    /// PEER_SYNC frames ignored: their peer was older than `peer_timeout`, or was this node.
    pub drop_peer_sync: u64,
    /// Packets on a link that is not up.
    pub drop_unknown_link: u64,
    /// Relays dropped because the pending-relay queue was full.
    pub drop_relay_queue: u64,
    /// Broadcasts dropped from the full pending buffer or expired there unverified.
    pub drop_pending_broadcast: u64,
    /// Peers evicted from the full peers table.
    pub peer_evictions: u64,
    /// Routes evicted from the full route table.
    pub route_evictions: u64,
    /// Routes learned.
    pub routes_learned: u64,
    /// Routes dropped because a frame expecting an answer got none in time.
    pub routes_broken: u64,
    /// Unicast frames sent on a learned route rather than flooded.
    pub routed_unicast: u64,
    /// Sealed frames held because they arrived before their session's HANDSHAKE_3 (PROTOCOL.md §6.8).
    pub early_held: u64,
    /// Held sealed frames opened once their session was established.
    pub early_released: u64,
    /// Held sealed frames dropped: evicted from the full hold or expired there.
    pub drop_early: u64,
    /// Private messages delivered twice and suppressed.
    pub duplicate_messages: u64,
    /// Seen-set entries evicted because it was full.
    pub seen_evictions: u64,
    /// HANDSHAKE_1 frames this node originated: first sends, retries and early resends, for first sessions and
    /// renewals alike (`sessions_established` and `renewals` count the handshakes that succeeded).
    pub handshakes: u64,
    /// Sessions established.
    pub sessions_established: u64,
    /// Rekeys (either direction).
    pub rekeys: u64,
    /// Session renewals completed.
    pub renewals: u64,
    /// Private message resends at their retry instant.
    pub retries: u64,
    /// Private messages resent ahead of their retry instant because their peer became reachable again, or
    /// because a new session replaced one the peer had lost (PROTOCOL.md §7.7, early resends). Not in `retries`.
    pub early_resends: u64,
    /// Handshake messages resent ahead of their retry instant because their peer became reachable again.
    pub early_handshakes: u64,
    /// Messages and handshakes not resent early because their peer's last early resend was less than
    /// `early_resend_gap` ago, or beyond `early_resend_max` messages: they keep their retry instants.
    pub early_resends_limited: u64,
    /// Acks sent.
    pub acks_sent: u64,
    /// Messages now in the outbox.
    pub outbox_len: u64,
    /// Messages evicted from the full outbox.
    pub outbox_drops: u64,
    /// Messages expired in the outbox.
    pub outbox_expired: u64,
    /// Messages delivered from the outbox after their peer reappeared.
    pub outbox_flushed: u64,
    /// Channel frames for a joined channel that failed to open.
    pub channel_unreadable: u64,
    /// Events dropped because nobody polled them.
    pub events_dropped: u64,
    /// Packets dropped because nobody polled the actions.
    pub actions_dropped: u64,
    /// LINK_ACK frames sent (PROTOCOL.md §7.10).
    pub hop_acks_sent: u64,
    /// LINK_ACK frames accepted.
    pub hop_acks_received: u64,
    /// Waits for a hop-by-hop acknowledgement started: one per frame and link it was held for. Each ends exactly
    /// once, as `hop_acked`, `hop_implicit_acks`, `hop_gave_up` or `hop_link_gone`, or is still waiting.
    pub hop_held: u64,
    /// Waits for a hop-by-hop acknowledgement now open (a gauge, like `outbox_len`).
    pub hop_waiting: u64,
    /// Frames a link's neighbour acknowledged with a LINK_ACK.
    pub hop_acked: u64,
    /// Frames a link's neighbour acknowledged by sending the same frame on that link.
    pub hop_implicit_acks: u64,
    /// Frames resent on a link whose neighbour did not acknowledge them in time.
    pub hop_resends: u64,
    /// Frames given up on one link after `hop_max_sends` sends without an acknowledgement.
    pub hop_gave_up: u64,
    /// Frames sent without being held for resending because the hold was full.
    pub hop_unheld: u64,
    /// Waits for an acknowledgement dropped because their link went down.
    pub hop_link_gone: u64,
    /// Acknowledged keys that matched no held frame (late, repeated or forged acknowledgements).
    pub hop_ack_unmatched: u64,
    /// LINK_ACK frames dropped because hop-by-hop acknowledgements are off on this node.
    pub drop_hop_ack_off: u64,
    /// LINK_ACK frames dropped because their source is not the neighbour bound to the link.
    pub drop_hop_ack_foreign: u64,
}

/// Why an application call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeError {
    /// The peer is this node or the broadcast address.
    InvalidPeer,
    /// The payload is longer than one frame of its kind can carry ([`super::Node::max_payload`]).
    MessageTooLong,
    /// The payload is empty where its kind needs at least one byte (a broadcast).
    EmptyMessage,
    /// The outbox / in-flight table is full and nothing older can be evicted.
    OutboxFull,
    /// No channel of that name is joined.
    NotJoined,
    /// The channel name is not valid, or the key is for another name.
    InvalidChannel,
    /// `joined` channels are joined, the most [`super::Node::max_channels`] allows: leave one first.
    TooManyChannels {
        /// How many channels are joined.
        joined: usize,
    },
    /// The session layer refused.
    Session(SessionError),
    /// A frame could not be built.
    Wire(WireError),
    /// A packet could not be built.
    Link(LinkError),
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::InvalidPeer => f.write_str("peer is this node or broadcast"),
            NodeError::MessageTooLong => f.write_str("message too long for one frame"),
            NodeError::EmptyMessage => {
                f.write_str("message empty: a broadcast carries at least one byte")
            }
            NodeError::OutboxFull => f.write_str("outbox full"),
            NodeError::NotJoined => f.write_str("channel not joined"),
            NodeError::InvalidChannel => f.write_str("invalid channel name"),
            NodeError::TooManyChannels { joined } => write!(
                f,
                "this node has joined {joined} channels, the most it can; leave one first"
            ),
            NodeError::Session(e) => write!(f, "session: {e}"),
            NodeError::Wire(e) => write!(f, "frame: {e}"),
            NodeError::Link(e) => write!(f, "link: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for NodeError {}

impl From<SessionError> for NodeError {
    fn from(e: SessionError) -> Self {
        NodeError::Session(e)
    }
}

impl From<WireError> for NodeError {
    fn from(e: WireError) -> Self {
        NodeError::Wire(e)
    }
}
