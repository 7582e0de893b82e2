//! Frames from the air (PROTOCOL.md §7.1–§7.6, §7.10): header checks, hop-by-hop acknowledgements, hellos, the
//! duplicate cache, relaying, and delivery to the session layer, the peers table or the application.
//!
//! Invariant: a relay decision reads only the header view (plus, for ANNOUNCE and BROADCAST, whether a signature
//! is known to be bad) and changes only the TTL byte; a frame whose header fails the rules of §4.3 is dropped
//! and counted, never relayed.

use alloc::vec::Vec;

use super::{Event, LinkId, MessageId, MessageKind, Node, RelayPolicy};
use crate::identity::NodeId;
use crate::route::dup::FrameKey;
use crate::route::relay::CopyHeard;
use crate::route::reliable::{decode_ack, decode_transport, encode_ack};
use crate::route::tables::AnnounceProof;
use crate::session::{Delivered, SessionError};
use crate::time::Instant;
use crate::wire::{self, Body, FrameView, Header, Kind, WireError, MAX_TTL, VERSION};

impl Node {
    /// One reassembled frame from `link`.
    pub(super) fn handle_frame(&mut self, link: LinkId, frame: Vec<u8>, now: Instant) {
        self.stats.frames_in = self.stats.frames_in.saturating_add(1);
        if let Some(state) = self.links.get_mut(&link) {
            state.last_heard = now;
        }
        let Ok(view) = FrameView::new_checked(&frame[..]) else {
            return self.count_wire();
        };
        let header = match Header::parse(&view) {
            Ok(h) => Some(h),
            Err(WireError::UnknownKind(_)) if unknown_kind_header_ok(&view) => None,
            Err(_) => return self.count_wire(),
        };
        let (src, dst, ttl) = (view.src(), view.dst(), view.ttl());
        let key: FrameKey = (src, view.frame_id());
        if let Some(h) = header.filter(|h| h.kind == Kind::LinkAck) {
            return self.on_link_ack(link, &frame, &h, now);
        }
        // §7.10: every other frame that passed the header rules is acknowledged to the link's neighbour (or
        // acknowledges our own copy), whatever happens to it next.
        let hello = ttl == 0 && header.is_some_and(|h| h.kind == Kind::Announce);
        self.hop_heard(link, key, hello, now);
        if src == self.id {
            self.stats.drop_own = self.stats.drop_own.saturating_add(1);
            return;
        }
        if ttl == 0 {
            // TTL 0 is never relayed (relays never emit it), so it proves a direct neighbour: a hello, or a
            // link-local frame from it.
            match header {
                Some(h) if h.kind == Kind::Announce => self.on_hello(link, &frame, &h, now),
                Some(h) if h.kind == Kind::PeerSync && dst == self.id => {
                    self.on_peer_sync(link, &frame, now);
                }
                Some(h) if h.kind == Kind::PeerSync => {}
                _ if dst == self.id => self.deliver_local(header, &frame, now),
                _ => {}
            }
            return;
        }
        if !self.dup.insert(key, now) {
            self.stats.duplicates = self.stats.duplicates.saturating_add(1);
            self.relays.raise_ttl(&key, ttl);
            let threshold = self.config.route.suppression_threshold;
            let links_up = self.links.len();
            if self.relays.heard_copy(&key, link, threshold, links_up) == CopyHeard::Suppressed {
                self.stats.suppressed = self.stats.suppressed.saturating_add(1);
            }
            return;
        }
        let hops = self
            .config
            .route
            .default_ttl
            .saturating_sub(ttl)
            .saturating_add(1);
        // Only an announce uses it (§7.7 trigger): a route to `src` learned now is a new one.
        let route_new = header.as_ref().is_some_and(|h| h.kind == Kind::Announce)
            && !self.routes.usable(&src, now);
        self.routes
            .learn(src, link, hops, self.config.route.route_lifetime, now);
        let Some(h) = header else {
            // Unknown kind: relayed by the header rules, dropped at its destination.
            if dst == self.id {
                return self.count_wire();
            }
            return self.relay(link, key, frame, now);
        };
        match h.kind {
            Kind::Announce => {
                if self.on_announce(&frame, &h, hops, route_new, now) {
                    self.relay(link, key, frame, now);
                }
            }
            Kind::Broadcast => {
                if self.on_broadcast(&frame, &h, now) {
                    self.relay(link, key, frame, now);
                }
            }
            Kind::Channel => {
                self.on_channel(&frame, &h);
                self.relay(link, key, frame, now);
            }
            _ if dst == self.id => self.deliver_local(Some(h), &frame, now),
            _ => self.relay(link, key, frame, now),
        }
    }

    pub(super) fn count_wire(&mut self) {
        self.stats.drop_wire = self.stats.drop_wire.saturating_add(1);
    }

    /// Forwards a new frame by the relay policy. The TTL is decremented in place; frames with TTL below 2 stop.
    fn relay(&mut self, from: LinkId, key: FrameKey, mut frame: Vec<u8>, now: Instant) {
        if self.config.capabilities & wire::body::CAP_RELAY == 0 {
            return;
        }
        let mut view = FrameView::new_unchecked(&mut frame[..]);
        if view.decrement_ttl().is_none() {
            self.stats.ttl_expired = self.stats.ttl_expired.saturating_add(1);
            return;
        }
        let (dst, kind) = (view.dst(), view.kind_code());
        match self.config.route.policy {
            RelayPolicy::Naive => {
                let n = self.transmit_all(&frame, &[from], now);
                self.stats.relayed = self.stats.relayed.saturating_add(n);
            }
            _ => {
                if !dst.is_broadcast() {
                    if let Some(link) = self.unicast_link(dst, kind, now).filter(|l| *l != from) {
                        self.stats.routed_unicast = self.stats.routed_unicast.saturating_add(1);
                        self.stats.relayed = self.stats.relayed.saturating_add(1);
                        self.transmit(link, &frame, now);
                        return;
                    }
                }
                let delay = self.random_below(self.config.route.relay_delay_max);
                // A full queue refuses and counts (see `PendingRelays::refused`).
                let _ = self.relays.schedule(key, frame, now + delay, from);
            }
        }
    }

    /// A link-local hello: binds the link to the verified sender.
    fn on_hello(&mut self, link: LinkId, frame: &[u8], header: &Header, now: Instant) {
        let Ok((_, Body::Announce(a))) = wire::decode(frame) else {
            return self.count_wire();
        };
        let peer = header.src;
        // §7.2: a hello on a link already bound to `peer` whose signed content equals the last verified one
        // only refreshes liveness; anything else is verified.
        let bound = self
            .links
            .get(&link)
            .is_some_and(|s| s.neighbour == Some(peer));
        let known = bound && self.peer_unchanged(peer, &a, 1, now);
        if !known && a.verify(header).is_err() {
            self.stats.drop_bad_signature = self.stats.drop_bad_signature.saturating_add(1);
            return;
        }
        let previous = self.links.get_mut(&link).map(|s| s.neighbour.replace(peer));
        let new_neighbour = match previous {
            None => return,
            Some(Some(old)) if old == peer => false,
            Some(old) => {
                if let Some(old) = old {
                    self.neighbour_lost(link, old);
                }
                self.push_event(Event::NeighbourUp { link, peer });
                self.announce_soon(now);
                true
            }
        };
        self.routes
            .learn(peer, link, 1, self.config.route.route_lifetime, now);
        if new_neighbour {
            // §7.7: what was sent to this neighbour while it was away goes again now (before `peer_heard`, whose
            // wake-up of waiting messages sends those once).
            self.peer_reachable(peer, now);
        }
        self.peer_heard(header, &a, 1, known, now, now);
        if new_neighbour {
            self.send_peer_sync(link, peer, now);
        }
    }

    /// Hands a new neighbour on `link` the announces of the peers this node heard most recently (§7.2), so that it
    /// knows them now rather than at their next announce.
    fn send_peer_sync(&mut self, link: LinkId, neighbour: NodeId, now: Instant) {
        let max = self.config.route.peer_sync_max;
        let timeout = self.config.route.peer_timeout;
        let known: Vec<(NodeId, crate::route::tables::Peer)> = self
            .peers
            .most_recent()
            .filter(|(id, p)| **id != neighbour && now.saturating_since(p.last_heard) < timeout)
            .take(max)
            .map(|(id, p)| (*id, p.clone()))
            .collect();
        for (id, p) in known {
            let age_s =
                u16::try_from(now.saturating_since(p.last_heard).secs()).unwrap_or(u16::MAX);
            let body = Body::PeerSync(wire::PeerSync {
                hops: p.hops.clamp(1, MAX_TTL),
                age_s,
                frame_id: p.proof.frame_id,
                peer: id,
                announce: wire::Announce {
                    public: p.public,
                    capabilities: p.capabilities,
                    nickname: &p.nickname,
                    signature: p.proof.signature,
                },
            });
            let header = Header {
                kind: Kind::PeerSync,
                ttl: 0,
                frame_id: rand_chacha::rand_core::RngCore::next_u32(&mut self.rng),
                src: self.id,
                dst: neighbour,
            };
            if let Ok(frame) = wire::encode_body(&header, &body) {
                self.transmit(link, &frame, now);
                self.stats.peer_syncs_sent = self.stats.peer_syncs_sent.saturating_add(1);
            }
        }
    }

    /// A PEER_SYNC from the neighbour on `link`: the embedded announce is taken as if it had come from that
    /// neighbour's side of the mesh, `hops + 1` away and last heard `age` ago; it is never relayed.
    fn on_peer_sync(&mut self, link: LinkId, frame: &[u8], now: Instant) {
        let Ok((_, Body::PeerSync(sync))) = wire::decode(frame) else {
            return self.count_wire();
        };
        let r = &self.config.route;
        let (timeout, lifetime) = (r.peer_timeout, r.route_lifetime);
        let age = crate::time::Duration::from_secs(u64::from(sync.age_s));
        if sync.peer == self.id || age >= timeout {
            self.stats.drop_peer_sync = self.stats.drop_peer_sync.saturating_add(1);
            return;
        }
        let heard = now - age;
        let hops = sync.hops.saturating_add(1);
        let fresher = self
            .peers
            .get(&sync.peer)
            .is_some_and(|p| p.last_heard >= heard);
        let known = fresher || self.peer_unchanged(sync.peer, &sync.announce, hops, heard);
        if !known && sync.verify().is_err() {
            self.stats.drop_bad_signature = self.stats.drop_bad_signature.saturating_add(1);
            return;
        }
        self.stats.peer_syncs_received = self.stats.peer_syncs_received.saturating_add(1);
        if age < lifetime {
            let route_new = !self.routes.usable(&sync.peer, now);
            self.routes.learn(sync.peer, link, hops, lifetime, heard);
            if route_new {
                // §7.7: the new neighbour leads to this peer: what was sent to it meanwhile goes again now.
                self.peer_reachable(sync.peer, now);
            }
        }
        if !fresher {
            self.peer_heard(
                &sync.announce_header(),
                &sync.announce,
                hops,
                known,
                heard,
                now,
            );
        }
    }

    /// Refreshes `peer` when `a` carries exactly the keys, capabilities and nickname last verified for it.
    fn peer_unchanged(
        &mut self,
        peer: NodeId,
        a: &wire::Announce<'_>,
        hops: u8,
        now: Instant,
    ) -> bool {
        let fresh =
            self.peers
                .refresh_identical(peer, &a.public, a.nickname, a.capabilities, hops, now);
        if fresh {
            self.stats.announces_unchanged = self.stats.announces_unchanged.saturating_add(1);
        }
        fresh
    }

    /// A mesh-wide announce. Returns whether to relay it (not when its signature or id is bad). `route_new`: it
    /// taught the first usable route to its sender, which is then reachable again (§7.7, early resends).
    fn on_announce(
        &mut self,
        frame: &[u8],
        header: &Header,
        hops: u8,
        route_new: bool,
        now: Instant,
    ) -> bool {
        let Ok((_, Body::Announce(a))) = wire::decode(frame) else {
            self.count_wire();
            return false;
        };
        // §7.2: content identical to the last verified announce of this src only refreshes liveness.
        let known = self.peer_unchanged(header.src, &a, hops, now);
        if !known && a.verify(header).is_err() {
            self.stats.drop_bad_signature = self.stats.drop_bad_signature.saturating_add(1);
            return false;
        }
        // Before `peer_heard`: the messages it wakes from `Waiting` go out there, once.
        if route_new {
            self.peer_reachable(header.src, now);
        }
        self.peer_heard(header, &a, hops, known, now, now);
        true
    }

    /// A verified announce or hello from `header.src`, heard at `heard` (`refreshed`: its unchanged entry was
    /// already refreshed): peers table, events, held broadcasts, waiting messages.
    fn peer_heard(
        &mut self,
        header: &Header,
        a: &wire::Announce<'_>,
        hops: u8,
        refreshed: bool,
        heard: Instant,
        now: Instant,
    ) {
        let peer = header.src;
        if !refreshed {
            let proof = AnnounceProof {
                frame_id: header.frame_id,
                signature: a.signature,
            };
            self.peer_updated(peer, a, proof, hops, heard);
        }
        self.release_broadcasts(peer, now);
        let backoff = self.backoff();
        let woken = self.outbox.wake(peer, &backoff, now);
        for (id, payload) in woken {
            self.stats.outbox_flushed = self.stats.outbox_flushed.saturating_add(1);
            self.send_private(peer, id, &payload, now);
        }
    }

    /// Writes a verified announce into the peers table, with its events.
    fn peer_updated(
        &mut self,
        peer: NodeId,
        a: &wire::Announce<'_>,
        proof: AnnounceProof,
        hops: u8,
        now: Instant,
    ) {
        let u = self
            .peers
            .update(peer, a.public, a.nickname, a.capabilities, proof, hops, now);
        if u.appeared {
            self.push_event(Event::PeerAppeared {
                peer,
                nickname: alloc::string::String::from(a.nickname),
            });
        }
        if let Some(holder) = u.conflict_with {
            if u.appeared {
                self.push_event(Event::NicknameConflict {
                    peer,
                    nickname: alloc::string::String::from(a.nickname),
                    holder,
                });
            }
        }
    }

    /// A new BROADCAST. Returns whether to relay it: yes unless its signature is known bad.
    fn on_broadcast(&mut self, frame: &[u8], header: &Header, now: Instant) -> bool {
        let Ok((_, Body::Broadcast(b))) = wire::decode(frame) else {
            self.count_wire();
            return false;
        };
        let Some(public) = self.peers.get(&header.src).map(|p| p.public) else {
            // Unverifiable for now: hold it (bounded) until the sender's announce arrives.
            let cap = self.config.route.max_pending_broadcasts;
            if cap == 0 {
                self.stats.drop_pending_broadcast =
                    self.stats.drop_pending_broadcast.saturating_add(1);
                return true;
            }
            if self.pending_broadcasts.len() >= cap {
                self.pending_broadcasts.pop_front();
                self.stats.drop_pending_broadcast =
                    self.stats.drop_pending_broadcast.saturating_add(1);
            }
            let expires = now + self.config.route.pending_broadcast_lifetime;
            self.pending_broadcasts
                .push_back((header.src, frame.to_vec(), expires));
            return true;
        };
        if b.verify(header, &public).is_err() {
            self.stats.drop_bad_signature = self.stats.drop_bad_signature.saturating_add(1);
            return false;
        }
        self.push_event(Event::MessageReceived {
            from: header.src,
            kind: MessageKind::Broadcast,
            id: MessageId(u64::from(header.frame_id)),
            payload: b.message.to_vec(),
        });
        true
    }

    /// Verifies and delivers the held broadcasts of `src` now that its keys are known.
    fn release_broadcasts(&mut self, src: NodeId, now: Instant) {
        if !self.pending_broadcasts.iter().any(|(s, _, _)| *s == src) {
            return;
        }
        let (mine, rest): (Vec<_>, Vec<_>) = core::mem::take(&mut self.pending_broadcasts)
            .into_iter()
            .partition(|(s, _, _)| *s == src);
        self.pending_broadcasts = rest.into_iter().collect();
        for (_, frame, _) in mine {
            if let Ok(view) = FrameView::new_checked(&frame[..]) {
                if let Ok(h) = Header::parse(&view) {
                    let _ = self.on_broadcast(&frame, &h, now);
                }
            }
        }
    }

    /// A CHANNEL frame: opened if this node joined its channel.
    fn on_channel(&mut self, frame: &[u8], header: &Header) {
        let Ok((_, Body::Channel(c))) = wire::decode(frame) else {
            return self.count_wire();
        };
        let Some((name, key)) = self.channels.iter().find(|(_, k)| k.tag() == c.channel_tag) else {
            return;
        };
        let name = name.clone();
        let event = match crate::channel::open_frame(key, frame) {
            Ok(payload) => Event::MessageReceived {
                from: header.src,
                kind: MessageKind::Channel(name),
                id: MessageId(u64::from(header.frame_id)),
                payload,
            },
            Err(_) => {
                self.stats.channel_unreadable = self.stats.channel_unreadable.saturating_add(1);
                Event::ChannelUnreadable {
                    channel: name,
                    from: header.src,
                }
            }
        };
        self.push_event(event);
    }

    /// A unicast frame addressed to this node: the session layer.
    fn deliver_local(&mut self, header: Option<Header>, frame: &[u8], now: Instant) {
        let Some(h) = header else {
            return self.count_wire();
        };
        match self.sessions.handle_frame(frame, now) {
            Ok(Some(d)) => self.on_delivered(d, now),
            Ok(None) if h.kind == Kind::UnknownSession => self.peer_lost_session(h.src),
            Ok(None) => {}
            Err(SessionError::HandshakeIncomplete) => self.hold_early(h.src, frame, now),
            Err(_) => self.stats.drop_session = self.stats.drop_session.saturating_add(1),
        }
    }

    /// A sealed frame for a session whose HANDSHAKE_3 has not arrived yet (PROTOCOL.md §6.8): held, bounded,
    /// until the session is established ([`Node::release_early`]) or the hold's lifetime ends.
    fn hold_early(&mut self, from: NodeId, frame: &[u8], now: Instant) {
        let r = &self.config.route;
        let (cap, lifetime) = (r.max_early_frames, r.early_frame_lifetime);
        if cap == 0 {
            self.stats.drop_early = self.stats.drop_early.saturating_add(1);
            return;
        }
        if self.early.len() >= cap {
            self.early.pop_front();
            self.stats.drop_early = self.stats.drop_early.saturating_add(1);
        }
        self.early.push_back((from, frame.to_vec(), now + lifetime));
        self.stats.early_held = self.stats.early_held.saturating_add(1);
    }

    /// The session with `peer` is established: the sealed frames held for it are opened now, in arrival order.
    pub(super) fn release_early(&mut self, peer: NodeId, now: Instant) {
        if !self.early.iter().any(|(from, _, _)| *from == peer) {
            return;
        }
        let (mine, rest): (Vec<_>, Vec<_>) = core::mem::take(&mut self.early)
            .into_iter()
            .partition(|(from, _, _)| *from == peer);
        self.early = rest.into_iter().collect();
        for (_, frame, _) in mine {
            self.stats.early_released = self.stats.early_released.saturating_add(1);
            match self.sessions.handle_frame(&frame, now) {
                Ok(Some(d)) => self.on_delivered(d, now),
                Ok(None) => {}
                Err(_) => self.stats.drop_session = self.stats.drop_session.saturating_add(1),
            }
        }
    }

    /// A decrypted TRANSPORT or ACK.
    fn on_delivered(&mut self, d: Delivered, now: Instant) {
        match d.kind {
            Kind::Transport => {
                let Some((id, payload)) = decode_transport(&d.plaintext) else {
                    return self.count_wire();
                };
                if self.seen.insert(d.from, id, now) {
                    self.persist(super::Persist::Seen {
                        from: d.from,
                        id,
                        at: now,
                    });
                    self.push_event(Event::MessageReceived {
                        from: d.from,
                        kind: MessageKind::Private,
                        id,
                        payload: payload.to_vec(),
                    });
                } else {
                    self.stats.duplicate_messages = self.stats.duplicate_messages.saturating_add(1);
                }
                // Always (re-)ack: the previous ACK may have been lost.
                let ack = encode_ack(&[id]);
                match self.sessions.send(d.from, Kind::Ack, &ack, now) {
                    Ok(_) => self.stats.acks_sent = self.stats.acks_sent.saturating_add(1),
                    Err(_) => self.stats.drop_session = self.stats.drop_session.saturating_add(1),
                }
            }
            Kind::Ack => {
                let Some(ids) = decode_ack(&d.plaintext) else {
                    return self.count_wire();
                };
                for id in ids {
                    if self.outbox.ack(d.from, id) {
                        self.persist(super::Persist::OutboxRemove { to: d.from, id });
                        self.push_event(Event::DeliveryConfirmed { to: d.from, id });
                    }
                }
            }
            _ => {}
        }
    }
}

/// Header rules of PROTOCOL.md §4.3 that apply to a kind this node does not know.
fn unknown_kind_header_ok<T: AsRef<[u8]>>(view: &FrameView<T>) -> bool {
    view.version() == VERSION
        && view.kind_code() != 0
        && view.ttl() <= MAX_TTL
        && !view.src().is_broadcast()
        && view.src() != view.dst()
}
