//! Early resends (PROTOCOL.md §7.7): outbound work for a peer that was lost with a link goes out again as soon as
//! the peer is reachable again, instead of when its retry timer fires.
//!
//! Triggers, each for one peer: a hello binds it to a link (`NeighbourUp`); a route to it is learned from an
//! ANNOUNCE or PEER_SYNC while the node had no usable route to it; a new session with it is established after it
//! answered UNKNOWN_SESSION (every message sealed on the session it lost is gone).
//!
//! Invariant: each trigger resends each piece of the peer's work at most once, and the two reachability triggers
//! resend a peer's work at most once per `early_resend_gap` and at most `early_resend_max` messages at a time;
//! everything left out keeps its retry instant and is counted. A message resent early takes its next scheduled
//! send (same message id, so the receiver delivers it once), so early resends never add sends beyond a message's
//! `max_attempts` except one per gap once those are used up.

use alloc::vec::Vec;

use super::Node;
use crate::identity::NodeId;
use crate::time::Instant;

impl Node {
    /// `peer` has just become reachable again (a neighbour bound, or a route to it learned): its handshake in
    /// progress and its messages waiting for an ACK are resent now, within the gap and size bounds.
    pub(super) fn peer_reachable(&mut self, peer: NodeId, now: Instant) {
        let r = &self.config.route;
        if !r.early_resend {
            return;
        }
        let gap = r.early_resend_gap;
        let handshaking = self.sessions.handshake_in_progress(&peer);
        // Messages waiting for a handshake are queued in the session layer and leave when it completes: resending
        // them would queue them twice. Only the handshake goes again.
        let messages = if handshaking && !self.sessions.is_established(&peer) {
            0
        } else {
            self.outbox.in_flight_to(peer)
        };
        let work = messages as u64 + u64::from(handshaking);
        if work == 0 {
            return;
        }
        if self
            .resumed
            .get(&peer)
            .is_some_and(|at| now.saturating_since(*at) < gap)
        {
            self.stats.early_resends_limited =
                self.stats.early_resends_limited.saturating_add(work);
            return;
        }
        // Bounded by `cap`: entries are made only for peers with work (outbox, handshakes); one older than the gap
        // counts as absent (checked by time above), and those are pruned here, only when the map is full, before
        // a new peer is refused. No timer needs to forget them.
        let cap = self
            .config
            .route
            .outbox_capacity
            .saturating_add(self.config.session.max_handshakes)
            .max(1);
        if self.resumed.len() >= cap && !self.resumed.contains_key(&peer) {
            self.resumed.retain(|_, at| now.saturating_since(*at) < gap);
            if self.resumed.len() >= cap {
                self.stats.early_resends_limited =
                    self.stats.early_resends_limited.saturating_add(work);
                return;
            }
        }
        self.resumed.insert(peer, now);
        if handshaking && self.sessions.resend_handshake(peer, now) {
            self.stats.early_handshakes = self.stats.early_handshakes.saturating_add(1);
        }
        if messages > 0 {
            self.resend_messages(peer, now);
        }
    }

    /// Resends `peer`'s messages waiting for an ACK now (at most `early_resend_max`), each taking its next
    /// scheduled send.
    fn resend_messages(&mut self, peer: NodeId, now: Instant) {
        let backoff = self.backoff();
        let max = self.config.route.early_resend_max;
        let (resent, left) = self.outbox.resend_now(peer, max, &backoff, now);
        self.stats.early_resends_limited =
            self.stats.early_resends_limited.saturating_add(left as u64);
        for (id, payload) in resent {
            self.stats.early_resends = self.stats.early_resends.saturating_add(1);
            self.send_private(peer, id, &payload, now);
        }
    }

    /// `peer` answered one of our sealed frames with UNKNOWN_SESSION and a handshake with it is under way: the
    /// messages sealed on the session it lost are resent on the new one once it is established.
    pub(super) fn peer_lost_session(&mut self, peer: NodeId) {
        if !self.config.route.early_resend {
            return;
        }
        // Bounded by the session table: a peer is marked only while a handshake with it is in progress. Marks are
        // cleared when the handshake ends or the peer's state is closed or expires; a handshake erased without an
        // event (one with no session yet, closed or evicted) leaves a mark that is pruned here when the set is full.
        if !self.sessions.handshake_in_progress(&peer) {
            return;
        }
        let cap = self.config.session.max_peers.max(1);
        if self.lost_sessions.len() >= cap && !self.lost_sessions.contains(&peer) {
            let sessions = &self.sessions;
            self.lost_sessions
                .retain(|p| sessions.handshake_in_progress(p));
        }
        if self.lost_sessions.len() < cap {
            self.lost_sessions.insert(peer);
        }
    }

    /// Sessions established (or renewed) and handshakes failed in the last pump: a peer marked by
    /// [`Node::peer_lost_session`] gets its unacknowledged messages resent on its new session; a failed
    /// handshake clears the mark (the messages keep their retry instants), as does a close or expiry that leaves
    /// no handshake ([`Node::pump`]).
    pub(super) fn sessions_replaced(&mut self, new: &[NodeId], failed: &[NodeId], now: Instant) {
        for peer in failed {
            self.lost_sessions.remove(peer);
        }
        let marked: Vec<NodeId> = new
            .iter()
            .filter(|p| self.lost_sessions.remove(p))
            .copied()
            .collect();
        for peer in marked {
            self.resend_messages(peer, now);
        }
    }
}
