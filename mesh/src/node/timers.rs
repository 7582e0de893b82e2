//! Everything time-driven in the node (PROTOCOL.md §7): hellos, neighbour timeouts, hop-by-hop acks and resends,
//! mesh-wide announces, peer expiry, managed relay delays, private message retries and expiry, held broadcasts,
//! table pruning.
//!
//! Invariant: after `handle_timeout(now)`, no deadline that `poll_timeout` reports is at or before `now`
//! (each rule either acts on a due deadline or moves it into the future), so a runtime never spins; calling
//! `handle_timeout` early is harmless because every rule checks its own deadline.

use super::{DeliveryFailure, Event, LinkId, Node};
use crate::identity::NodeId;
use crate::time::Instant;
use crate::wire::Announce;

impl Node {
    /// Runs every rule whose deadline has come.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.sessions.handle_timeout(now);
        self.link_timers(now);
        self.hop_timers(now);
        if self.next_announce <= now {
            self.send_announce(now);
        }
        for peer in self.peers.remove_stale(self.config.route.peer_timeout, now) {
            self.push_event(Event::PeerGone { peer });
        }
        for r in self.relays.take_due(now) {
            let n = self.transmit_all(&r.frame, &r.skip, now);
            self.stats.relayed = self.stats.relayed.saturating_add(n);
        }
        for m in self.outbox.take_expired(now) {
            self.stats.outbox_expired = self.stats.outbox_expired.saturating_add(1);
            self.persist(super::Persist::OutboxRemove { to: m.to, id: m.id });
            self.push_event(Event::DeliveryFailed {
                to: m.to,
                id: m.id,
                reason: DeliveryFailure::Expired,
            });
        }
        let backoff = self.backoff();
        for (to, id, payload) in self.outbox.take_retries(&backoff, now) {
            self.stats.retries = self.stats.retries.saturating_add(1);
            self.send_private(to, id, &payload, now);
        }
        while self
            .pending_broadcasts
            .front()
            .is_some_and(|(_, _, e)| *e <= now)
        {
            self.pending_broadcasts.pop_front();
            self.stats.drop_pending_broadcast = self.stats.drop_pending_broadcast.saturating_add(1);
        }
        while self.early.front().is_some_and(|(_, _, e)| *e <= now) {
            self.early.pop_front();
            self.stats.drop_early = self.stats.drop_early.saturating_add(1);
        }
        self.dup.remove_expired(now);
        self.routes.remove_expired(now);
        self.seen.remove_expired(now);
        self.pump(now);
    }

    /// The earliest instant at which [`Node::handle_timeout`] has something to do.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let r = &self.config.route;
        let links = self.links.values().flat_map(|l| {
            [
                Some(l.next_hello),
                l.neighbour.map(|_| l.last_heard + r.neighbour_timeout),
                l.reassembler.expires_at(),
            ]
        });
        [
            self.sessions.poll_timeout(),
            Some(self.next_announce),
            self.peers.next_expiry(r.peer_timeout),
            self.relays.next_due(),
            self.outbox.next_deadline(),
            self.pending_broadcasts.front().map(|(_, _, e)| *e),
            self.early.front().map(|(_, _, e)| *e),
            self.hop_next_deadline(),
        ]
        .into_iter()
        .chain(links)
        .flatten()
        .min()
    }

    /// Hellos, neighbour timeouts and reassembly expiry, per link.
    fn link_timers(&mut self, now: Instant) {
        let r = &self.config.route;
        let (hello, timeout) = (r.hello_interval, r.neighbour_timeout);
        let mut hellos: alloc::vec::Vec<LinkId> = alloc::vec::Vec::new();
        let mut lost: alloc::vec::Vec<(LinkId, NodeId)> = alloc::vec::Vec::new();
        for (link, s) in self.links.iter_mut() {
            if s.reassembler.remove_expired(now) {
                self.stats.drop_link = self.stats.drop_link.saturating_add(1);
            }
            if let Some(peer) = s.neighbour {
                if s.last_heard + timeout <= now {
                    s.neighbour = None;
                    lost.push((*link, peer));
                }
            }
            if s.next_hello <= now {
                s.next_hello = now + hello;
                hellos.push(*link);
            }
        }
        for (link, peer) in lost {
            self.neighbour_lost(link, peer);
        }
        for link in hellos {
            self.send_hello(link, now);
        }
    }

    /// Sends the mesh-wide announce and schedules the next one `announce_interval ± announce_jitter` later.
    fn send_announce(&mut self, now: Instant) {
        let r = &self.config.route;
        let (interval, jitter, ttl) = (r.announce_interval, r.announce_jitter, r.default_ttl);
        let frame_id = rand_chacha::rand_core::RngCore::next_u32(&mut self.rng);
        let nick = super::nickname_prefix(&self.config.nickname);
        if let Ok(frame) = Announce::sign_frame(
            &self.identity,
            frame_id,
            ttl,
            self.config.capabilities,
            nick,
        ) {
            self.originate(frame, now);
        }
        self.last_announce = Some(now);
        let spread = self.random_below(jitter + jitter);
        self.next_announce = now + interval - jitter + spread;
        if self.next_announce <= now {
            self.next_announce = now + interval.max(crate::time::Duration::from_millis(1));
        }
    }

    /// A new neighbour: bring the next mesh-wide announce forward to within `announce_soon`, but never closer
    /// than `announce_min_gap` to the previous one, so that a forming mesh learns its peers quickly.
    pub(super) fn announce_soon(&mut self, now: Instant) {
        let r = &self.config.route;
        let (soon, gap) = (r.announce_soon, r.announce_min_gap);
        let mut at = now + self.random_below(soon);
        if let Some(last) = self.last_announce {
            at = at.max(last + gap);
        }
        if at < self.next_announce {
            self.next_announce = at;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Action, NodeConfig};
    use super::*;
    use crate::identity::Identity;
    use crate::time::Duration;

    fn node() -> Node {
        let id = Identity::from_secrets([1; 32], [2; 32]);
        Node::new(id, NodeConfig::default(), [3; 32], Instant::from_millis(0))
    }

    #[test]
    fn deadlines_are_never_in_the_past_and_spurious_calls_are_harmless() {
        let mut n = node();
        n.link_up(LinkId(1), 247, Instant::from_millis(0));
        let first = n.poll_timeout().unwrap();
        assert!(
            first <= Instant::from_millis(2_000),
            "first announce within announce_soon"
        );
        // Early (spurious) calls change nothing that is due later.
        n.handle_timeout(Instant::from_millis(0));
        assert_eq!(n.poll_timeout(), Some(first));
        let mut now = Instant::from_millis(0);
        for step in [1u64, 7, 500, 1_999, 15_000, 15_001, 60_000, 250_000] {
            now = Instant::from_millis(step);
            n.handle_timeout(now);
            let next = n.poll_timeout().unwrap();
            assert!(
                next > now,
                "at {step} ms the next deadline {next:?} is not in the future"
            );
        }
        // Hellos went out on the link (first at link_up, then each hello_interval).
        let hellos = core::iter::from_fn(|| n.poll_action())
            .filter(|a| matches!(a, Action::Transmit { link, .. } if *link == LinkId(1)))
            .count();
        assert!(hellos >= 4, "{hellos} packets at {now:?}");
    }

    #[test]
    fn announce_soon_respects_the_minimum_gap() {
        let mut n = node();
        n.handle_timeout(Instant::from_millis(2_000));
        let last = n.last_announce.unwrap();
        n.announce_soon(last);
        assert!(n.next_announce >= last + n.config.route.announce_min_gap);
        // A later request never pushes an earlier announce back.
        let soon = n.next_announce;
        n.announce_soon(last + Duration::from_secs(30));
        assert_eq!(n.next_announce, soon);
    }

    #[test]
    fn neighbour_without_frames_times_out() {
        let mut n = node();
        n.link_up(LinkId(4), 247, Instant::from_millis(0));
        if let Some(s) = n.links.get_mut(&LinkId(4)) {
            s.neighbour = Some(NodeId([9; 8]));
        }
        n.handle_timeout(Instant::from_secs(49));
        assert!(n.poll_event().is_none());
        n.handle_timeout(Instant::from_secs(50));
        let ev = core::iter::from_fn(|| n.poll_event()).collect::<alloc::vec::Vec<_>>();
        assert!(ev.contains(&Event::NeighbourDown {
            link: LinkId(4),
            peer: NodeId([9; 8])
        }));
    }
}
