//! The node: the sans-IO state machine that ties link, wire, session and route together (PROTOCOL.md §7).
//!
//! Invariant: `Node` never reads a clock or the air; every input carries `now`, every output is polled.

mod api;

use alloc::collections::VecDeque;
use alloc::vec::Vec;

pub use crate::route::{RelayPolicy, RouteConfig};
pub use api::*;

use crate::identity::{Identity, NodeId};
use crate::session::Sessions;
use crate::time::Instant;

/// Placeholder for the password channel key until `mesh::channel` lands; replaced by a re-export of
/// `mesh::channel::ChannelKey`.
#[derive(Clone)]
pub struct ChannelKey(pub [u8; 32]);

/// One mesh node.
pub struct Node {
    id: NodeId,
    config: NodeConfig,
    sessions: Sessions,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    stats: NodeStats,
}

impl Node {
    /// A node for `identity`.
    pub fn new(identity: Identity, config: NodeConfig, rng_seed: [u8; 32], now: Instant) -> Node {
        let _ = now;
        let id = identity.node_id();
        let sessions = Sessions::new(identity, config.session.clone(), rng_seed);
        Node {
            id,
            config,
            sessions,
            actions: VecDeque::new(),
            events: VecDeque::new(),
            stats: NodeStats::default(),
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.id
    }

    /// A link came up.
    pub fn link_up(&mut self, link: LinkId, att_mtu: u16, now: Instant) {
        let _ = (link, att_mtu, now, &self.config);
    }

    /// A link went down.
    pub fn link_down(&mut self, link: LinkId, now: Instant) {
        let _ = (link, now);
    }

    /// A packet arrived on `link`.
    pub fn handle_packet(&mut self, link: LinkId, packet: &[u8], now: Instant) {
        let _ = (link, packet, now);
    }

    /// Timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
    }

    /// Sends a private message.
    pub fn send(
        &mut self,
        peer: NodeId,
        payload: &[u8],
        now: Instant,
    ) -> Result<MessageId, NodeError> {
        let _ = (peer, payload, now);
        Err(NodeError::InvalidPeer)
    }

    /// Broadcasts a signed message.
    pub fn broadcast(&mut self, payload: &[u8], now: Instant) -> Result<MessageId, NodeError> {
        let _ = (payload, now);
        Err(NodeError::MessageTooLong)
    }

    /// Joins a channel.
    pub fn join_channel(&mut self, name: &str, key: ChannelKey) -> Result<(), NodeError> {
        let _ = (name, key);
        Ok(())
    }

    /// Leaves a channel.
    pub fn leave_channel(&mut self, name: &str) -> Result<(), NodeError> {
        let _ = name;
        Err(NodeError::NotJoined)
    }

    /// Sends on a channel.
    pub fn send_channel(
        &mut self,
        name: &str,
        payload: &[u8],
        now: Instant,
    ) -> Result<MessageId, NodeError> {
        let _ = (name, payload, now);
        Err(NodeError::NotJoined)
    }

    /// Closes the session with `peer`.
    pub fn close_session(&mut self, peer: NodeId, now: Instant) -> Result<(), NodeError> {
        self.sessions.close(peer, now).map_err(NodeError::from)
    }

    /// Closes every session.
    pub fn close_all(&mut self, now: Instant) {
        self.sessions.close_all(now);
    }

    /// Trusts the identity a peer presented.
    pub fn trust(&mut self, peer: NodeId) -> Result<(), NodeError> {
        self.sessions
            .trust(peer)
            .map(|_| ())
            .map_err(NodeError::from)
    }

    /// The next action.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call `handle_timeout`.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions.poll_timeout()
    }

    /// Counters.
    pub fn stats(&self) -> NodeStats {
        self.stats
    }

    /// Neighbours.
    pub fn neighbours(&self) -> Vec<NeighbourInfo> {
        Vec::new()
    }

    /// Peers.
    pub fn peers(&self) -> Vec<PeerInfo> {
        Vec::new()
    }

    /// Memory estimate.
    pub fn memory_bytes(&self) -> usize {
        core::mem::size_of::<Node>() + self.sessions.memory_bytes()
    }
}
