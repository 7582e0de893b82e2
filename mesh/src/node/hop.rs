//! Hop-by-hop acknowledgements on the node's links (PROTOCOL.md §7.10): which received frames are acknowledged,
//! which sent frames are held, what a LINK_ACK does, and the timers that send acks and resend frames.
//!
//! Invariant: a LINK_ACK only ever removes waits of the link it arrived on (and marks that link's neighbour as
//! one that acknowledges); it never creates state. The node sends at most one LINK_ACK per frame it received and
//! never acknowledges a LINK_ACK, so acknowledgements cannot loop or amplify. Every wait ends exactly once: acked
//! (explicitly or by a copy), given up after `hop_max_sends`, or dropped with its link, each counted.

use alloc::vec::Vec;

use super::{LinkId, Node};
use crate::route::dup::FrameKey;
use crate::route::hop::{keys_per_ack, Resend};
use crate::time::{Duration, Instant};
use crate::wire::{self, Body, FrameView, Header, Kind, LinkAck};

impl Node {
    /// A frame was just put on `link`: hold it until the neighbour acknowledges it, if that neighbour does.
    pub(super) fn hold_for_ack(&mut self, link: LinkId, frame: &[u8], now: Instant) {
        let r = &self.config.route;
        if !r.hop_acks {
            return;
        }
        let Some(state) = self.links.get(&link) else {
            return;
        };
        if !state.peer_acks {
            return;
        }
        let Ok(view) = FrameView::new_checked(frame) else {
            return;
        };
        if view.kind_code() == Kind::LinkAck.code() {
            return;
        }
        let key = (view.src(), view.frame_id());
        let rto = state
            .rtt
            .rto(r.hop_rto_initial, r.hop_rto_min, r.hop_rto_max);
        match self.unacked.hold(key, frame, link, rto, now) {
            Ok(true) => self.stats.hop_held = self.stats.hop_held.saturating_add(1),
            Ok(false) => {}
            Err(_) => self.stats.hop_unheld = self.stats.hop_unheld.saturating_add(1),
        }
    }

    /// A frame other than a LINK_ACK, with key `key`, arrived on `link` (new or not, for us or not). If this node
    /// holds the same frame for that link, the neighbour's copy is its acknowledgement, and ours (which crossed
    /// it) is the neighbour's: nothing more is sent. Otherwise the key is acknowledged, once the neighbour is
    /// known to acknowledge too, or at once for a `hello` (which is how each end learns that the other does).
    pub(super) fn hop_heard(&mut self, link: LinkId, key: FrameKey, hello: bool, now: Instant) {
        if !self.config.route.hop_acks {
            return;
        }
        if self.unacked.ack(&key, link).is_some() {
            self.stats.hop_implicit_acks = self.stats.hop_implicit_acks.saturating_add(1);
            return;
        }
        let delay = self.config.route.hop_ack_delay;
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        if !(state.peer_acks || hello) {
            return;
        }
        let capacity = keys_per_ack(state.att_mtu);
        if state.acks.push(key, delay, capacity, now) {
            self.flush_acks(link);
        }
    }

    /// A LINK_ACK arrived on `link`: the keys it names stop waiting there.
    pub(super) fn on_link_ack(
        &mut self,
        link: LinkId,
        frame: &[u8],
        header: &Header,
        now: Instant,
    ) {
        if !self.config.route.hop_acks {
            self.stats.drop_hop_ack_off = self.stats.drop_hop_ack_off.saturating_add(1);
            return;
        }
        let Ok((_, Body::LinkAck(ack))) = wire::decode(frame) else {
            return self.count_wire();
        };
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        if state.neighbour.is_some_and(|n| n != header.src) {
            self.stats.drop_hop_ack_foreign = self.stats.drop_hop_ack_foreign.saturating_add(1);
            return;
        }
        state.peer_acks = true;
        self.stats.hop_acks_received = self.stats.hop_acks_received.saturating_add(1);
        for key in ack.keys() {
            let hello = key.0 == self.id && state.last_hello.is_some_and(|(id, _)| id == key.1);
            let hello_sent = if hello { state.last_hello.take() } else { None };
            match self.unacked.ack(&key, link) {
                Some(w) => {
                    // Karn's rule: the ack of a resent frame may answer any of its copies.
                    if w.sends == 1 {
                        state.rtt.sample(now.saturating_since(w.sent_at));
                    }
                    self.stats.hop_acked = self.stats.hop_acked.saturating_add(1);
                }
                None => match hello_sent {
                    Some((_, at)) => state.rtt.sample(now.saturating_since(at)),
                    None => {
                        self.stats.hop_ack_unmatched =
                            self.stats.hop_ack_unmatched.saturating_add(1)
                    }
                },
            }
        }
    }

    /// Sends the keys waiting on `link` as one LINK_ACK.
    fn flush_acks(&mut self, link: LinkId) {
        let Some(state) = self.links.get_mut(&link) else {
            return;
        };
        let keys = state.acks.take();
        if keys.is_empty() {
            return;
        }
        let frame_id = rand_chacha::rand_core::RngCore::next_u32(&mut self.rng);
        if let Ok(frame) = LinkAck::frame(self.id, frame_id, &keys) {
            if self.put_on_link(link, &frame) {
                self.stats.hop_acks_sent = self.stats.hop_acks_sent.saturating_add(1);
            }
        }
    }

    /// Acks whose gathering delay ended go out; frames whose resend timeout passed are resent (the wait doubling
    /// each time, up to `hop_rto_max`) or, after `hop_max_sends` sends, given up.
    pub(super) fn hop_timers(&mut self, now: Instant) {
        let due: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, s)| s.acks.due().is_some_and(|d| d <= now))
            .map(|(l, _)| *l)
            .collect();
        for link in due {
            self.flush_acks(link);
        }
        let r = &self.config.route;
        let (max_sends, initial, min, max) = (
            r.hop_max_sends,
            r.hop_rto_initial,
            r.hop_rto_min,
            r.hop_rto_max,
        );
        for (key, link) in self.unacked.due(now) {
            let Some(state) = self.links.get(&link) else {
                // Not reachable: waits leave with their link. Drop it rather than spin on it.
                if self.unacked.ack(&key, link).is_some() {
                    self.stats.hop_link_gone = self.stats.hop_link_gone.saturating_add(1);
                }
                continue;
            };
            let sends = self.unacked.sends(&key, link);
            let base = state.rtt.rto(initial, min, max).total_millis();
            let wait = Duration::from_millis(
                base.saturating_mul(1u64 << sends.min(16))
                    .min(max.total_millis()),
            );
            match self.unacked.resend(&key, link, max_sends, wait, now) {
                Resend::Send(frame) => {
                    self.stats.hop_resends = self.stats.hop_resends.saturating_add(1);
                    self.put_on_link(link, &frame);
                }
                Resend::GaveUp => {
                    self.stats.hop_gave_up = self.stats.hop_gave_up.saturating_add(1);
                }
                Resend::NotDue => {}
            }
        }
    }

    /// `link` went down (or was restarted): its waits are dropped and counted.
    pub(super) fn hop_link_gone(&mut self, link: LinkId) {
        let n = self.unacked.remove_link(link) as u64;
        self.stats.hop_link_gone = self.stats.hop_link_gone.saturating_add(n);
    }

    /// The earliest hop deadline: an ack to send or a frame to resend.
    pub(super) fn hop_next_deadline(&self) -> Option<Instant> {
        let acks = self.links.values().filter_map(|l| l.acks.due()).min();
        [acks, self.unacked.next_due()].into_iter().flatten().min()
    }
}
