//! The routing layer (PROTOCOL.md §7): neighbours, the duplicate cache, relay policy, learned routes,
//! hop-by-hop acknowledgements with resends, end-to-end acknowledgements with retries, and the outbox.
//!
//! Every piece is a small sans-IO table with a bound from [`RouteConfig`], an `expires_at` per entry and a
//! counter for what it dropped; [`crate::node::Node`] ties them together. Invariant: no table grows past its
//! configured capacity, whatever arrives from the air.

pub mod dup;
pub mod hop;
pub mod relay;
pub mod reliable;
pub mod tables;

use core::fmt;

use crate::time::Duration;
use crate::wire::DEFAULT_TTL;

/// The runtime's id for a radio link (maps `hal::LinkId` one to one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u32);

/// Names a message. Private messages: the id carried in the TRANSPORT plaintext (PROTOCOL.md §7.6);
/// broadcast and channel messages: the frame id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub u64);

/// How a node relays flooded frames (PROTOCOL.md §7.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RelayPolicy {
    /// Forward every new frame at once on every link except the one it came from.
    Naive,
    /// Forward after a random delay, skipping links whose neighbour already sent the frame, cancelling when
    /// enough copies were heard; unicast follows a learned route when there is one.
    #[default]
    Managed,
}

/// Every limit and interval of the routing layer. `Default` gives the values of PROTOCOL.md §7.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouteConfig {
    /// The relay policy.
    pub policy: RelayPolicy,
    /// TTL of frames this node originates (mesh-wide announces, broadcasts, unicast).
    pub default_ttl: u8,
    /// Entries in the duplicate cache.
    pub dup_capacity: usize,
    /// How long a `(src, frame_id)` stays in the duplicate cache.
    pub dup_lifetime: Duration,
    /// Upper bound (exclusive) of the random relay delay of the managed policy.
    pub relay_delay_max: Duration,
    /// Managed policy: cancel a pending relay once this many copies were heard.
    pub suppression_threshold: u8,
    /// Relays waiting for their delay, at most.
    pub max_pending_relays: usize,
    /// Interval of link-local hellos.
    pub hello_interval: Duration,
    /// A link with no frame for this long loses its neighbour.
    pub neighbour_timeout: Duration,
    /// Mean interval of mesh-wide announces.
    pub announce_interval: Duration,
    /// Random spread (±) added to each announce interval.
    pub announce_jitter: Duration,
    /// The first mesh-wide announce, and one soon after a new neighbour, go out within this random delay.
    pub announce_soon: Duration,
    /// Mesh-wide announces are never closer together than this.
    pub announce_min_gap: Duration,
    /// A peer with no announce for this long is gone.
    pub peer_timeout: Duration,
    /// Known peers (most recently heard first) whose announces a node hands to each new neighbour (PEER_SYNC).
    pub peer_sync_max: usize,
    /// Entries in the peers table.
    pub max_peers: usize,
    /// Entries in the route table.
    pub max_routes: usize,
    /// Lifetime of a learned route.
    pub route_lifetime: Duration,
    /// A routed frame that expects an answer breaks its route unless a frame from the destination arrives
    /// within this time.
    pub route_confirm_timeout: Duration,
    /// First wait for an ACK before resending a private message.
    pub ack_timeout: Duration,
    /// Each retry waits this many times longer than the previous one.
    pub ack_backoff_factor: u32,
    /// The longest wait between two sends of a message.
    pub ack_timeout_max: Duration,
    /// Sends of a message (first one included) before it moves to the outbox.
    pub max_attempts: u32,
    /// Early resends (PROTOCOL.md §7.7): when a peer becomes reachable again (a hello binds it to a link, or a
    /// route to it is learned from an announce or PEER_SYNC while the node had none, or a new session replaces
    /// one the peer said it lost), its unacknowledged messages and its handshake in progress are resent at once
    /// instead of at their retry instants.
    pub early_resend: bool,
    /// A peer's work is resent early at most once per this interval (a flapping link cannot make a storm).
    pub early_resend_gap: Duration,
    /// Messages to one peer resent early at once, at most (the rest keep their retry instants).
    pub early_resend_max: usize,
    /// Private messages waiting for an ACK, at most.
    pub max_in_flight: usize,
    /// Messages in the outbox, at most.
    pub outbox_capacity: usize,
    /// How long an accepted private message may wait before `DeliveryFailed`.
    pub outbox_lifetime: Duration,
    /// Message ids remembered per peer for exactly-once delivery.
    pub seen_per_peer: usize,
    /// How long a received message id is remembered.
    pub seen_lifetime: Duration,
    /// Broadcasts held until their sender's announce arrives, at most.
    pub max_pending_broadcasts: usize,
    /// How long such a broadcast is held.
    pub pending_broadcast_lifetime: Duration,
    /// Sealed frames held because they arrived before their session's HANDSHAKE_3 (PROTOCOL.md §6.8), at most.
    pub max_early_frames: usize,
    /// How long such a frame is held.
    pub early_frame_lifetime: Duration,
    /// Hop-by-hop acknowledgements (PROTOCOL.md §7.10): acknowledge the frames received on each link and resend
    /// the frames a link's neighbour did not acknowledge. Runs on a link only when both ends have it on.
    pub hop_acks: bool,
    /// How long a receiver gathers keys before it sends a LINK_ACK.
    pub hop_ack_delay: Duration,
    /// Resend timeout of a link before its first round-trip sample.
    pub hop_rto_initial: Duration,
    /// Lower bound of the resend timeout.
    pub hop_rto_min: Duration,
    /// Upper bound of the resend timeout (backoff included).
    pub hop_rto_max: Duration,
    /// Sends of a frame on one link (the first included) before that link gives up on it.
    pub hop_max_sends: u8,
    /// Frames held for resending, at most.
    pub hop_max_frames: usize,
    /// Bytes of frames held for resending, at most.
    pub hop_max_bytes: usize,
}

impl Default for RouteConfig {
    fn default() -> Self {
        RouteConfig {
            policy: RelayPolicy::Managed,
            default_ttl: DEFAULT_TTL,
            dup_capacity: 1024,
            dup_lifetime: Duration::from_secs(120),
            relay_delay_max: Duration::from_millis(40),
            suppression_threshold: 3,
            max_pending_relays: 256,
            hello_interval: Duration::from_secs(15),
            neighbour_timeout: Duration::from_secs(50),
            announce_interval: Duration::from_secs(60),
            announce_jitter: Duration::from_secs(6),
            announce_soon: Duration::from_secs(1),
            announce_min_gap: Duration::from_millis(1_500),
            peer_timeout: Duration::from_secs(200),
            peer_sync_max: 32,
            max_peers: 512,
            max_routes: 512,
            route_lifetime: Duration::from_secs(120),
            route_confirm_timeout: Duration::from_secs(1),
            ack_timeout: Duration::from_secs(2),
            ack_backoff_factor: 2,
            ack_timeout_max: Duration::from_secs(16),
            max_attempts: 8,
            early_resend: true,
            early_resend_gap: Duration::from_secs(2),
            early_resend_max: 32,
            max_in_flight: 256,
            outbox_capacity: 256,
            outbox_lifetime: Duration::from_secs(3600),
            seen_per_peer: 256,
            seen_lifetime: Duration::from_secs(600),
            max_pending_broadcasts: 32,
            pending_broadcast_lifetime: Duration::from_secs(30),
            max_early_frames: 8,
            early_frame_lifetime: Duration::from_secs(20),
            hop_acks: true,
            hop_ack_delay: Duration::from_millis(10),
            hop_rto_initial: Duration::from_millis(250),
            hop_rto_min: Duration::from_millis(50),
            hop_rto_max: Duration::from_secs(4),
            hop_max_sends: 4,
            hop_max_frames: 64,
            hop_max_bytes: 32 * 1024,
        }
    }
}

/// Why the routing layer refused something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RouteError {
    /// A bounded table is full and nothing could be evicted.
    TableFull,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::TableFull => f.write_str("routing table full"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RouteError {}
