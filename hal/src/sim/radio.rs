//! `SimRadio`: one node's radio on the simulated medium, lent out by `Medium::radio`, implementing `Radio`.
//!
//! Invariant: a command either fails with a typed error and changes nothing but a counter, or changes the medium at
//! the current virtual time and schedules its consequences; nothing happens before the medium is advanced. A
//! crashed node's radio refuses every command with `Unavailable`.

use super::{unit, Action, End, Link, Medium, NodeLink, Slot};
use crate::{
    gatt_payload_len, Advertisement, LinkDownReason, LinkId, PeerAddress, Radio, RadioError,
    RadioEvent,
};

/// Node `node`'s radio, borrowing the medium; get one with `Medium::radio`.
#[derive(Debug)]
pub struct SimRadio<'m> {
    medium: &'m mut Medium,
    node: usize,
}

impl<'m> SimRadio<'m> {
    pub(super) fn new(medium: &'m mut Medium, node: usize) -> Self {
        SimRadio { medium, node }
    }

    /// The index of the node this radio belongs to.
    pub fn node(&self) -> usize {
        self.node
    }

    /// This radio's own address.
    pub fn address(&self) -> PeerAddress {
        Medium::address_of(self.node)
    }

    /// Events waiting to be polled.
    pub fn pending_events(&self) -> usize {
        self.medium
            .nodes
            .get(self.node)
            .map_or(0, |n| n.events.len())
    }

    fn check_alive(&self) -> Result<(), RadioError> {
        if self.medium.is_alive(self.node) {
            Ok(())
        } else {
            Err(RadioError::Unavailable(format!(
                "node {} has crashed and not restarted",
                self.node
            )))
        }
    }

    /// The node's view of `link` if it exists.
    fn find(&self, link: LinkId) -> Option<NodeLink> {
        self.medium
            .nodes
            .get(self.node)?
            .links
            .iter()
            .find(|l| l.id == link)
            .copied()
    }

    /// [`Radio::send`] for a packet the caller owns: the medium keeps the buffer instead of copying it, and a
    /// refused packet comes back with the error (to wait in a backlog, say).
    pub fn send_owned(
        &mut self,
        link: LinkId,
        packet: Vec<u8>,
    ) -> Result<(), (RadioError, Vec<u8>)> {
        self.send_packet(link, packet)
    }

    /// Queues `packet` on `link` (see [`Radio::send`]); on refusal, nothing changes but a counter and the packet
    /// is handed back.
    fn send_packet<P: AsRef<[u8]> + Into<Vec<u8>>>(
        &mut self,
        link: LinkId,
        packet: P,
    ) -> Result<(), (RadioError, P)> {
        if let Err(e) = self.check_alive() {
            return Err((e, packet));
        }
        let Some(l) = self.find(link) else {
            return Err((RadioError::NoSuchLink(link), packet));
        };
        let m = &mut *self.medium;
        let (capacity, tx_interval, now) = (m.config.queue_capacity, m.config.tx_interval, m.now);
        let Some(s) = m.slots.get_mut(l.slot) else {
            return Err((RadioError::NoSuchLink(link), packet));
        };
        let generation = s.generation;
        let Some(k) = s.link.as_mut().filter(|k| k.up) else {
            return Err((RadioError::NoSuchLink(link), packet));
        };
        let max = gatt_payload_len(k.params.att_mtu);
        if let Err(e) = crate::radio::check_packet(link, packet.as_ref(), max) {
            return Err((e, packet));
        }
        let params = k.params;
        let Some(end) = k.ends.get_mut(l.end) else {
            return Err((RadioError::NoSuchLink(link), packet));
        };
        if end.queued >= capacity {
            end.writable_wanted = true;
            if let Some(n) = m.nodes.get_mut(self.node) {
                n.stats.rejected_queue_full += 1;
            }
            return Err((RadioError::QueueFull { link, capacity }, packet));
        }
        end.queued += 1;
        let departure = match end.last_departure {
            Some(prev) => now.max(prev + tx_interval),
            None => now,
        };
        end.last_departure = Some(departure);
        // Both draws happen for every packet so that one link's loss setting does not shift the others' streams.
        let jitter = m
            .rng
            .next_u64_below(super::micros(params.jitter).saturating_add(1));
        let lost = unit(&mut m.rng) < params.loss;
        let dir = l.end;
        let arrival = if lost {
            None
        } else {
            let at = (departure + params.latency)
                .as_micros()
                .saturating_add(jitter);
            let at = end.last_arrival.max(super::SimInstant::from_micros(at));
            end.last_arrival = at;
            end.in_flight += 1;
            Some(at)
        };
        if let Some(n) = m.nodes.get_mut(self.node) {
            n.stats.sent += 1;
            if lost {
                n.stats.lost_random += 1;
            }
        }
        m.schedule(
            departure,
            Action::TxDone {
                slot: l.slot,
                generation,
                dir,
            },
        );
        if let Some(at) = arrival {
            m.in_flight += 1;
            m.schedule(
                at,
                Action::Deliver {
                    slot: l.slot,
                    generation,
                    dir,
                    data: packet.into(),
                },
            );
        }
        Ok(())
    }
}

impl Radio for SimRadio<'_> {
    fn start_scanning(&mut self) -> Result<(), RadioError> {
        self.check_alive()?;
        let m = &mut *self.medium;
        let interval = super::micros(m.config.scan_interval);
        let Some(n) = m.nodes.get_mut(self.node) else {
            return Ok(());
        };
        if n.scanning {
            return Ok(());
        }
        n.scanning = true;
        n.scan_generation = n.scan_generation.wrapping_add(1);
        let scan_generation = n.scan_generation;
        // A random first offset keeps nodes that start together from hearing everything in lockstep.
        let offset = m.rng.next_u64_below(interval);
        let at = super::SimInstant::from_micros(m.now.as_micros().saturating_add(offset));
        m.schedule(
            at,
            Action::ScanTick {
                node: self.node,
                scan_generation,
            },
        );
        Ok(())
    }

    fn stop_scanning(&mut self) -> Result<(), RadioError> {
        self.check_alive()?;
        if let Some(n) = self.medium.nodes.get_mut(self.node) {
            n.scanning = false;
        }
        Ok(())
    }

    fn start_advertising(&mut self, advertisement: &Advertisement) -> Result<(), RadioError> {
        self.check_alive()?;
        if let Some(n) = self.medium.nodes.get_mut(self.node) {
            n.advertising = Some(*advertisement);
        }
        Ok(())
    }

    fn stop_advertising(&mut self) -> Result<(), RadioError> {
        self.check_alive()?;
        if let Some(n) = self.medium.nodes.get_mut(self.node) {
            n.advertising = None;
        }
        Ok(())
    }

    fn connect(&mut self, peer: PeerAddress) -> Result<LinkId, RadioError> {
        self.check_alive()?;
        let m = &mut *self.medium;
        let Some(target) = m.node_of(peer) else {
            return Err(RadioError::InvalidArgument(format!(
                "no simulated node has address {peer}"
            )));
        };
        if target == self.node {
            return Err(RadioError::InvalidArgument(format!(
                "node {} cannot connect to itself",
                self.node
            )));
        }
        let max = m.config.max_links;
        let Some(n) = m.nodes.get_mut(self.node) else {
            return Err(RadioError::Unavailable(format!("no node {}", self.node)));
        };
        if n.links.len() >= max {
            return Err(RadioError::TooManyLinks { max });
        }
        let id = LinkId(n.next_link_id);
        n.next_link_id = n.next_link_id.wrapping_add(1);
        let link = Link {
            ends: [End::new(self.node, id), End::new(target, LinkId(u32::MAX))],
            up: false,
            params: super::LinkParams::default(),
        };
        let slot = match m.free_slots.pop() {
            Some(slot) => slot,
            None => {
                m.slots.push(Slot::default());
                m.slots.len() - 1
            }
        };
        let Some(s) = m.slots.get_mut(slot) else {
            return Err(RadioError::Unavailable("link table inconsistent".into()));
        };
        s.link = Some(link);
        let generation = s.generation;
        n.links.push(NodeLink { id, slot, end: 0 });
        let at = m.now + m.config.connect_delay;
        m.schedule(at, Action::ConnectDone { slot, generation });
        Ok(id)
    }

    fn disconnect(&mut self, link: LinkId) -> Result<(), RadioError> {
        self.check_alive()?;
        let Some(l) = self.find(link) else {
            return Err(RadioError::NoSuchLink(link));
        };
        let up = self
            .medium
            .slots
            .get(l.slot)
            .and_then(|s| s.link.as_ref())
            .is_some_and(|k| k.up);
        let mut reasons = [None; 2];
        reasons[l.end] = Some(LinkDownReason::LocalDisconnect);
        if up {
            reasons[1 - l.end] = Some(LinkDownReason::RemoteDisconnect);
        }
        self.medium.tear_down(l.slot, reasons);
        Ok(())
    }

    fn send(&mut self, link: LinkId, packet: &[u8]) -> Result<(), RadioError> {
        self.send_packet(link, packet).map_err(|(e, _)| e)
    }

    fn poll_event(&mut self) -> Option<RadioEvent> {
        self.medium.nodes.get_mut(self.node)?.events.pop_front()
    }
}

/// Uniform draws below a bound, for the medium's RNG.
trait BelowExt {
    /// A draw in 0..bound (0 when bound is 0); the modulo bias is below 2^-40 for bounds under 2^24.
    fn next_u64_below(&mut self, bound: u64) -> u64;
}

impl<R: rand_core::RngCore> BelowExt for R {
    fn next_u64_below(&mut self, bound: u64) -> u64 {
        let x = self.next_u64();
        if bound == 0 {
            0
        } else {
            x % bound
        }
    }
}
