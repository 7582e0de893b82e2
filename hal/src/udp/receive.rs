//! The receiving half of `UdpRadio`: what each decoded datagram does to the radio's links and events.
//!
//! Invariant: `receive_datagram` counts every datagram once, in `accepted` or in one `dropped_*` counter, and a
//! datagram changes a link only when it comes from that link's peer (address and instance); nothing here panics on
//! any input.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::time::Instant;

use super::wire::{self, Malformed, Message};
use super::{peer_address, v4, Link, State, UdpRadio, READ_BUDGET, RSSI};
use crate::{gatt_payload_len, LinkDownReason, LinkId, RadioEvent, Role};

/// Why a datagram was dropped; each maps to one counter.
#[derive(Clone, Copy, Debug)]
enum Drop {
    Malformed(Malformed),
    Oversize,
    UnknownLink,
    Own,
    OutOfOrder,
}

impl UdpRadio {
    /// What the radio does with one datagram from `from` read at `now`: exactly what happens to a datagram read
    /// from its socket. Public so tests and fuzzers can feed datagrams without a network.
    pub fn receive_datagram(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) {
        let now = self.at(now);
        self.stats.datagrams_received += 1;
        match self.handle(from, bytes, now) {
            Ok(()) => self.stats.accepted += 1,
            Err(Drop::Malformed(m)) => {
                let s = &mut self.stats;
                *match m {
                    Malformed::BadMagic => &mut s.dropped_bad_magic,
                    Malformed::BadVersion => &mut s.dropped_bad_version,
                    Malformed::Truncated => &mut s.dropped_truncated,
                    Malformed::UnknownType => &mut s.dropped_unknown_type,
                    Malformed::Oversize => &mut s.dropped_oversize,
                    Malformed::BadField => &mut s.dropped_bad_field,
                } += 1;
            }
            Err(Drop::Oversize) => self.stats.dropped_oversize += 1,
            Err(Drop::UnknownLink) => self.stats.dropped_unknown_link += 1,
            Err(Drop::Own) => self.stats.dropped_own += 1,
            Err(Drop::OutOfOrder) => self.stats.dropped_out_of_order += 1,
        }
    }

    /// Reads up to a budget of datagrams, stopping early when the socket is dry or the event queue is full.
    pub(super) fn read_socket(&mut self, now: Instant) {
        let mut buf = core::mem::take(&mut self.rx_buf);
        self.more_input = true;
        for _ in 0..READ_BUDGET {
            if self.events.len() >= self.config.event_queue_capacity {
                break;
            }
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let bytes = buf.get(..n).unwrap_or(&[]);
                    self.receive_datagram(from, bytes, now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.more_input = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.stats.recv_errors += 1,
            }
        }
        self.rx_buf = buf;
    }

    fn handle(&mut self, from: SocketAddr, bytes: &[u8], now: Instant) -> Result<(), Drop> {
        let from = v4(from).ok_or(Drop::UnknownLink)?;
        let d = wire::decode(bytes).map_err(Drop::Malformed)?;
        if d.instance == self.instance {
            return Err(Drop::Own);
        }
        let instance = d.instance;
        match d.message {
            Message::Beacon { advertisement, .. } => {
                if self.scanning {
                    self.push_droppable(RadioEvent::Discovered {
                        peer: peer_address(from),
                        rssi: RSSI,
                        advertisement,
                    });
                }
                Ok(())
            }
            Message::Connect { src_link, att_mtu } => {
                self.on_connect(from, instance, src_link, att_mtu, now);
                Ok(())
            }
            Message::Accept {
                dst_link,
                src_link,
                att_mtu,
            } => self.on_accept(from, instance, dst_link, src_link, att_mtu, now),
            Message::Reject { dst_link } => match self.links.get(&dst_link) {
                Some(l) if l.peer == from && matches!(l.state, State::Connecting { .. }) => {
                    self.tear_down(dst_link, LinkDownReason::ConnectFailed, false);
                    Ok(())
                }
                _ => Err(Drop::UnknownLink),
            },
            Message::Data {
                dst_link,
                seq,
                payload,
            } => self.on_data(from, instance, dst_link, seq, payload, now),
            Message::Keepalive { dst_link } => {
                let l = self.peer_link(dst_link, from, instance)?;
                l.last_heard = now;
                Ok(())
            }
            Message::Disconnect { src_link } => {
                let id = self
                    .links
                    .iter()
                    .find(|(_, l)| {
                        l.peer == from
                            && l.remote == Some(src_link)
                            && l.peer_instance == Some(instance)
                    })
                    .map(|(id, _)| *id)
                    .ok_or(Drop::UnknownLink)?;
                self.tear_down(id, LinkDownReason::RemoteDisconnect, false);
                Ok(())
            }
        }
    }

    /// The up link `id` if `from`/`instance` is its peer.
    fn peer_link(&mut self, id: u32, from: SocketAddrV4, instance: u64) -> Result<&mut Link, Drop> {
        self.links
            .get_mut(&id)
            .filter(|l| {
                matches!(l.state, State::Up) && l.peer == from && l.peer_instance == Some(instance)
            })
            .ok_or(Drop::UnknownLink)
    }

    fn on_connect(
        &mut self,
        from: SocketAddrV4,
        instance: u64,
        src_link: u32,
        offer: u16,
        now: Instant,
    ) {
        let existing = self
            .links
            .iter()
            .find(|(_, l)| l.peer == from)
            .map(|(id, l)| (*id, l.state, l.peer_instance, l.remote));
        let mut abandoned = None;
        match existing {
            Some((id, State::Up, Some(inst), remote)) if inst == instance => {
                if remote == Some(src_link) {
                    // Our ACCEPT was lost: say it again.
                    if let Some(l) = self.links.get(&id) {
                        let accept = Message::Accept {
                            dst_link: src_link,
                            src_link: id,
                            att_mtu: l.att_mtu,
                        };
                        self.send_message(from, &accept);
                    }
                } else {
                    self.reject(from, src_link);
                }
                return;
            }
            Some((id, State::Up, _, _)) => {
                // The peer restarted: its old incarnation is gone.
                self.tear_down(id, LinkDownReason::Timeout, false);
            }
            Some((id, State::Connecting { .. }, _, _)) => {
                self.stats.connect_collisions += 1;
                if self.instance < instance {
                    // We win and stay central; the peer accepts our CONNECT.
                    return;
                }
                abandoned = Some(id);
            }
            None => {}
        }
        let full = self.links.len() >= self.config.max_links;
        if abandoned.is_none() && (self.advertising.is_none() || full) {
            self.reject(from, src_link);
            return;
        }
        self.accept(from, instance, src_link, offer, now);
        if let Some(id) = abandoned {
            self.tear_down(id, LinkDownReason::ConnectFailed, false);
        }
    }

    fn reject(&mut self, to: SocketAddrV4, src_link: u32) {
        self.stats.connects_rejected += 1;
        self.send_message(to, &Message::Reject { dst_link: src_link });
    }

    fn accept(
        &mut self,
        from: SocketAddrV4,
        instance: u64,
        src_link: u32,
        offer: u16,
        now: Instant,
    ) {
        let att_mtu = offer.min(self.config.att_mtu);
        let id = self.alloc_id();
        self.links.insert(
            id,
            Link::new(
                from,
                Some(instance),
                Some(src_link),
                State::Up,
                att_mtu,
                now,
            ),
        );
        let accept = Message::Accept {
            dst_link: src_link,
            src_link: id,
            att_mtu,
        };
        self.send_message(from, &accept);
        self.link_up(id, from, att_mtu, Role::Peripheral);
    }

    fn link_up(&mut self, id: u32, peer: SocketAddrV4, att_mtu: u16, role: Role) {
        self.stats.links_up += 1;
        self.events.push_back(RadioEvent::LinkUp {
            link: LinkId(id),
            peer: peer_address(peer),
            att_mtu,
            role,
        });
    }

    fn on_accept(
        &mut self,
        from: SocketAddrV4,
        instance: u64,
        dst_link: u32,
        src_link: u32,
        att_mtu: u16,
        now: Instant,
    ) -> Result<(), Drop> {
        let offer = self.config.att_mtu;
        let Some(l) = self.links.get_mut(&dst_link).filter(|l| l.peer == from) else {
            // A connect we abandoned: have the acceptor close its end.
            self.send_message(from, &Message::Disconnect { src_link: dst_link });
            return Err(Drop::UnknownLink);
        };
        match l.state {
            State::Connecting { .. } => {
                l.state = State::Up;
                l.peer_instance = Some(instance);
                l.remote = Some(src_link);
                l.att_mtu = att_mtu.min(offer);
                l.last_heard = now;
                l.next_tx = now;
                let mtu = l.att_mtu;
                self.link_up(dst_link, from, mtu, Role::Central);
                Ok(())
            }
            State::Up if l.peer_instance == Some(instance) && l.remote == Some(src_link) => {
                l.last_heard = now;
                Ok(())
            }
            State::Up => Err(Drop::UnknownLink),
        }
    }

    fn on_data(
        &mut self,
        from: SocketAddrV4,
        instance: u64,
        dst_link: u32,
        seq: u32,
        payload: Vec<u8>,
        now: Instant,
    ) -> Result<(), Drop> {
        let l = self.peer_link(dst_link, from, instance)?;
        l.last_heard = now;
        if payload.len() > gatt_payload_len(l.att_mtu) {
            return Err(Drop::Oversize);
        }
        // Serial-number arithmetic: a negative distance is a packet older than one already delivered.
        let ahead = seq.wrapping_sub(l.rx_next) as i32;
        if ahead < 0 {
            return Err(Drop::OutOfOrder);
        }
        l.rx_next = seq.wrapping_add(1);
        self.stats.packets_missing += ahead as u64;
        if self.push_droppable(RadioEvent::Packet {
            link: LinkId(dst_link),
            data: payload,
        }) {
            self.stats.packets_received += 1;
        }
        Ok(())
    }
}
