//! A deterministic simulated BLE medium that holds every node's radio: topology, scanning and advertising,
//! connections, per-link loss, latency, jitter, ATT MTU and bounded controller queues, scheduled and random faults,
//! all in virtual time.
//!
//! Invariant: the medium never reads a clock or an unseeded RNG. Everything it does happens while processing its
//! event queue, ordered by (time, sequence number), so the same seed, topology and sequence of calls
//! give the same events bit for bit. Packets on one link direction arrive in the order they were sent.
//!
//! # Driving N nodes
//!
//! ```
//! use hal::sim::{Medium, MediumConfig, Topology, LinkParams, SimInstant};
//! use hal::Radio;
//!
//! let topology = Topology::line(3, LinkParams::default()).unwrap();
//! let mut medium = Medium::new(MediumConfig::default(), topology, 42).unwrap();
//! let mut ready = Vec::new();
//! while let Some(t) = medium.next_wakeup() {
//!     if t > SimInstant::from_secs(1) { break; }
//!     medium.advance(t); // or: sleep until `t` on a real clock, then advance
//!     medium.take_ready(&mut ready);
//!     for &i in &ready {
//!         let mut radio = medium.radio(i).unwrap();
//!         while let Some(event) = radio.poll_event() {
//!             let _ = event; // hand it to node i; send its commands through `radio`
//!         }
//!     }
//! }
//! ```
//!
//! A harness keeps its nodes in a `Vec` indexed like the medium's and borrows one radio at a time
//! (`medium.radio(i)` returns a `SimRadio<'_>` that implements [`crate::Radio`]): no shared ownership needed.
//! `take_ready` lists the nodes with new events, so a step costs what happened, not the number of nodes.
//!
//! # Model
//!
//! - **Queues.** Each link direction has a controller buffer of `queue_capacity` packets draining one packet per
//!   `tx_interval`. A packet leaves the buffer at `max(now, previous departure + tx_interval)` and arrives at
//!   `max(previous arrival on that direction, departure + latency + jitter)`, unless lost (probability `loss`,
//!   decided at send time). A refused `send` sets a flag; the next departure raises `Writable`.
//! - **Connections.** `connect` needs the peer in range, alive and advertising, and both under `max_links`, at the
//!   moment `connect_delay` later; then both ends get `LinkUp` (central and peripheral), otherwise the central gets
//!   `LinkDown { ConnectFailed }`.
//! - **Faults.** `schedule_link_drop` drops every link between two nodes (`Timeout` at both ends);
//!   `random_link_lifetime` drops links at random. `schedule_crash` makes a node's radio inert: its unpolled events
//!   are discarded, its links go down (`RadioReset` at its end, `Timeout` at the peer's), it stops scanning and
//!   advertising and refuses commands with `Unavailable`. `schedule_restart` gives it a fresh radio (empty event
//!   queue); the harness recreates the node's own state. Packets queued or in flight on a link that goes down are
//!   lost and counted.

mod config;
mod queue;
mod radio;
mod topology;

use std::collections::VecDeque;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

pub use config::{LinkParams, MediumConfig, NodeStats, SimError, SimInstant};
pub use queue::{EventQueue, Key as EventKey, Queued};
pub use radio::SimRadio;
pub use topology::Topology;

use crate::{Advertisement, LinkDownReason, LinkId, PeerAddress, RadioEvent, Role};
use config::micros;
use topology::unit;

/// First byte of every simulated address: a BLE static random address has its top two bits set.
const ADDRESS_PREFIX: u8 = 0xc0;

/// Something the medium will do at a given time.
#[derive(Debug)]
enum Action {
    /// A packet leaves a direction's controller buffer.
    TxDone {
        slot: usize,
        generation: u32,
        dir: usize,
    },
    /// A packet arrives at the far end of a direction.
    Deliver {
        slot: usize,
        generation: u32,
        dir: usize,
        data: Vec<u8>,
    },
    /// A connect attempt completes or fails.
    ConnectDone { slot: usize, generation: u32 },
    /// A link's random lifetime ends.
    LifetimeEnd { slot: usize, generation: u32 },
    /// A scanning node hears the advertisers in range.
    ScanTick { node: usize, scan_generation: u32 },
    /// Every link between two nodes drops.
    DropLinks { a: usize, b: usize },
    /// A node crashes.
    Crash { node: usize },
    /// A crashed node restarts.
    Restart { node: usize },
}

/// One end of a link, and the direction that starts there.
#[derive(Debug)]
struct End {
    node: usize,
    /// The id this end's radio knows the link by; the peripheral's is assigned at `LinkUp`.
    id: LinkId,
    /// Packets in the controller buffer of the direction leaving this end.
    queued: usize,
    last_departure: Option<SimInstant>,
    last_arrival: SimInstant,
    /// Packets of this direction scheduled to arrive.
    in_flight: u64,
    /// A `send` was refused: raise `Writable` at the next departure.
    writable_wanted: bool,
}

impl End {
    fn new(node: usize, id: LinkId) -> Self {
        End {
            node,
            id,
            queued: 0,
            last_departure: None,
            last_arrival: SimInstant::ZERO,
            in_flight: 0,
            writable_wanted: false,
        }
    }
}

/// A link: `ends[0]` is the central, `ends[1]` the peripheral.
#[derive(Debug)]
struct Link {
    ends: [End; 2],
    up: bool,
    params: LinkParams,
}

/// A slab slot; its generation changes whenever its link goes, so actions for an old link are ignored.
#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    link: Option<Link>,
}

/// A link as its node sees it.
#[derive(Clone, Copy, Debug)]
struct NodeLink {
    id: LinkId,
    slot: usize,
    end: usize,
}

/// One node's radio state.
#[derive(Debug, Default)]
struct Node {
    alive: bool,
    scanning: bool,
    scan_generation: u32,
    advertising: Option<Advertisement>,
    events: VecDeque<RadioEvent>,
    links: Vec<NodeLink>,
    next_link_id: u32,
    ready: bool,
    stats: NodeStats,
}

/// The simulated medium and every node's radio on it. See the module docs for the model and how to drive it.
#[derive(Debug)]
pub struct Medium {
    config: MediumConfig,
    topology: Topology,
    now: SimInstant,
    rng: ChaCha8Rng,
    seq: u64,
    /// The scheduled actions, by (time, sequence number).
    queue: EventQueue<Action>,
    nodes: Vec<Node>,
    slots: Vec<Slot>,
    free_slots: Vec<usize>,
    ready: Vec<usize>,
    in_flight: u64,
    /// Reused by scan ticks for the advertisements heard.
    scratch: Vec<RadioEvent>,
}

impl Medium {
    /// A medium at time zero with one radio per topology node, all alive, idle and unconnected; `seed` drives every
    /// random choice (loss, jitter, scan offsets, link lifetimes).
    pub fn new(config: MediumConfig, topology: Topology, seed: u64) -> Result<Self, SimError> {
        config.validate()?;
        if u32::try_from(topology.node_count()).is_err() {
            return Err(SimError::InvalidConfig(format!(
                "{} nodes is too many",
                topology.node_count()
            )));
        }
        let nodes = (0..topology.node_count())
            .map(|_| Node {
                alive: true,
                ..Node::default()
            })
            .collect();
        Ok(Medium {
            config,
            topology,
            now: SimInstant::ZERO,
            rng: ChaCha8Rng::seed_from_u64(seed),
            seq: 0,
            queue: EventQueue::new(),
            nodes,
            slots: Vec::new(),
            free_slots: Vec::new(),
            ready: Vec::new(),
            in_flight: 0,
            scratch: Vec::new(),
        })
    }

    /// The current virtual time: the latest time passed to `advance`.
    pub fn now(&self) -> SimInstant {
        self.now
    }

    /// The configuration the medium was built with.
    pub fn config(&self) -> &MediumConfig {
        &self.config
    }

    /// The topology the medium was built with.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// How many nodes (radios) the medium holds.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Node `node`'s radio, borrowed until the next call on the medium; `None` if there is no such node.
    pub fn radio(&mut self, node: usize) -> Option<SimRadio<'_>> {
        (node < self.nodes.len()).then(|| SimRadio::new(self, node))
    }

    /// The address other radios know node `node` by (also for out-of-range indices: such an address reaches no one).
    pub fn address_of(node: usize) -> PeerAddress {
        let i = (node as u64).to_be_bytes();
        PeerAddress([ADDRESS_PREFIX, 0, i[4], i[5], i[6], i[7]])
    }

    /// The node an address belongs to, if any.
    pub fn node_of(&self, address: PeerAddress) -> Option<usize> {
        let [prefix, 0, a, b, c, d] = address.0 else {
            return None;
        };
        let node = u32::from_be_bytes([a, b, c, d]) as usize;
        (prefix == ADDRESS_PREFIX && node < self.nodes.len()).then_some(node)
    }

    /// Whether `node` is running (not crashed); `false` for out-of-range indices.
    pub fn is_alive(&self, node: usize) -> bool {
        self.nodes.get(node).is_some_and(|n| n.alive)
    }

    /// Node `node`'s counters.
    pub fn node_stats(&self, node: usize) -> Option<&NodeStats> {
        self.nodes.get(node).map(|n| &n.stats)
    }

    /// Every node's counters summed.
    pub fn total_stats(&self) -> NodeStats {
        let mut total = NodeStats::default();
        for n in &self.nodes {
            total.accumulate(&n.stats);
        }
        total
    }

    /// Packets queued or in flight right now: `sent = delivered + lost_random + lost_link_down + in flight`.
    pub fn packets_in_flight(&self) -> u64 {
        self.in_flight
    }

    /// Moves the nodes that received events since the last call into `out` (cleared first), in the order they
    /// first received one.
    pub fn take_ready(&mut self, out: &mut Vec<usize>) {
        out.clear();
        core::mem::swap(out, &mut self.ready);
        for &i in out.iter() {
            if let Some(n) = self.nodes.get_mut(i) {
                n.ready = false;
            }
        }
    }

    /// When the medium next has something to do; `None` when nothing is scheduled.
    pub fn next_wakeup(&self) -> Option<SimInstant> {
        self.queue.peek().map(|(at, _)| SimInstant::from_micros(at))
    }

    /// Processes everything due at or before `now`, in order, then sets the time to `now` (time never goes back:
    /// an earlier `now` processes what is due at the current time).
    pub fn advance(&mut self, now: SimInstant) {
        let target = now.max(self.now);
        while self
            .queue
            .peek()
            .is_some_and(|(at, _)| at <= target.as_micros())
        {
            let Some(s) = self.queue.pop() else { break };
            self.now = SimInstant::from_micros(s.key.0).max(self.now);
            self.process(s.value);
        }
        self.now = target;
    }

    /// Jumps to the next wake-up and processes everything due then; returns that time, `None` if idle.
    pub fn step(&mut self) -> Option<SimInstant> {
        let t = self.next_wakeup()?;
        self.advance(t);
        Some(t)
    }

    /// At `at` (or now, if earlier), drops every link between nodes `a` and `b` with `Timeout` at both ends.
    pub fn schedule_link_drop(
        &mut self,
        at: SimInstant,
        a: usize,
        b: usize,
    ) -> Result<(), SimError> {
        self.check_node(a)?;
        self.check_node(b)?;
        self.schedule(at.max(self.now), Action::DropLinks { a, b });
        Ok(())
    }

    /// At `at` (or now, if earlier), crashes `node` (see the module docs); nothing if it is already down.
    pub fn schedule_crash(&mut self, at: SimInstant, node: usize) -> Result<(), SimError> {
        self.check_node(node)?;
        self.schedule(at.max(self.now), Action::Crash { node });
        Ok(())
    }

    /// At `at` (or now, if earlier), restarts crashed `node` with a fresh radio; nothing if it is running.
    pub fn schedule_restart(&mut self, at: SimInstant, node: usize) -> Result<(), SimError> {
        self.check_node(node)?;
        self.schedule(at.max(self.now), Action::Restart { node });
        Ok(())
    }

    fn check_node(&self, node: usize) -> Result<(), SimError> {
        if node < self.nodes.len() {
            Ok(())
        } else {
            Err(SimError::NoSuchNode {
                node,
                count: self.nodes.len(),
            })
        }
    }

    /// Schedules `action` at `at` (every caller passes a time at or after now; the queue needs that, so it is kept
    /// here too).
    fn schedule(&mut self, at: SimInstant, action: Action) {
        let at = at.max(self.now);
        self.seq += 1;
        self.queue.push((at.as_micros(), self.seq), action);
    }

    fn process(&mut self, action: Action) {
        match action {
            Action::TxDone {
                slot,
                generation,
                dir,
            } => self.tx_done(slot, generation, dir),
            Action::Deliver {
                slot,
                generation,
                dir,
                data,
            } => self.deliver(slot, generation, dir, data),
            Action::ConnectDone { slot, generation } => self.connect_done(slot, generation),
            Action::LifetimeEnd { slot, generation } => {
                if self.link(slot, generation).is_some() {
                    self.tear_down(slot, [Some(LinkDownReason::Timeout); 2]);
                }
            }
            Action::ScanTick {
                node,
                scan_generation,
            } => self.scan_tick(node, scan_generation),
            Action::DropLinks { a, b } => self.drop_links(a, b),
            Action::Crash { node } => self.crash(node),
            Action::Restart { node } => {
                if let Some(n) = self.nodes.get_mut(node) {
                    if !n.alive {
                        n.alive = true;
                        n.events.clear();
                    }
                }
            }
        }
    }

    /// The link in `slot` if it is still the one of `generation`.
    fn link(&self, slot: usize, generation: u32) -> Option<&Link> {
        let s = self.slots.get(slot)?;
        if s.generation == generation {
            s.link.as_ref()
        } else {
            None
        }
    }

    fn link_mut(&mut self, slot: usize, generation: u32) -> Option<&mut Link> {
        let s = self.slots.get_mut(slot)?;
        if s.generation == generation {
            s.link.as_mut()
        } else {
            None
        }
    }

    /// Queues `event` on `node`'s radio, or counts it dropped if the radio's queue is full.
    fn push_event(&mut self, node: usize, event: RadioEvent) {
        let cap = self.config.event_queue_capacity;
        let Some(n) = self.nodes.get_mut(node) else {
            return;
        };
        if n.events.len() >= cap {
            n.stats.events_dropped += 1;
            return;
        }
        n.events.push_back(event);
        if !n.ready {
            n.ready = true;
            self.ready.push(node);
        }
    }

    fn tx_done(&mut self, slot: usize, generation: u32, dir: usize) {
        let Some(link) = self.link_mut(slot, generation) else {
            return;
        };
        let Some(end) = link.ends.get_mut(dir) else {
            return;
        };
        end.queued = end.queued.saturating_sub(1);
        if core::mem::take(&mut end.writable_wanted) {
            let (node, id) = (end.node, end.id);
            self.push_event(node, RadioEvent::Writable { link: id });
        }
    }

    fn deliver(&mut self, slot: usize, generation: u32, dir: usize, data: Vec<u8>) {
        // A packet of a link that went down was counted lost then.
        let Some(link) = self.link_mut(slot, generation) else {
            return;
        };
        let Some(from) = link.ends.get_mut(dir) else {
            return;
        };
        from.in_flight = from.in_flight.saturating_sub(1);
        let sender = from.node;
        let Some(to) = link.ends.get(1 - dir) else {
            return;
        };
        let (receiver, id) = (to.node, to.id);
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(n) = self.nodes.get_mut(sender) {
            n.stats.delivered += 1;
        }
        if let Some(n) = self.nodes.get_mut(receiver) {
            n.stats.received += 1;
        }
        self.push_event(receiver, RadioEvent::Packet { link: id, data });
    }

    fn connect_done(&mut self, slot: usize, generation: u32) {
        let Some(link) = self.link(slot, generation) else {
            return;
        };
        if link.up {
            return;
        }
        let (central, peripheral) = (link.ends[0].node, link.ends[1].node);
        let params = self.topology.edge(central, peripheral).copied();
        let max = self.config.max_links;
        let accepted = self
            .nodes
            .get(peripheral)
            .is_some_and(|p| p.alive && p.advertising.is_some() && p.links.len() < max);
        let Some(params) = params.filter(|_| accepted) else {
            self.tear_down(slot, [Some(LinkDownReason::ConnectFailed), None]);
            return;
        };
        let Some(p) = self.nodes.get_mut(peripheral) else {
            return;
        };
        let peripheral_id = LinkId(p.next_link_id);
        p.next_link_id = p.next_link_id.wrapping_add(1);
        p.links.push(NodeLink {
            id: peripheral_id,
            slot,
            end: 1,
        });
        let Some(link) = self.link_mut(slot, generation) else {
            return;
        };
        link.up = true;
        link.params = params;
        link.ends[1].id = peripheral_id;
        let central_id = link.ends[0].id;
        for (node, id, peer, role) in [
            (central, central_id, peripheral, Role::Central),
            (peripheral, peripheral_id, central, Role::Peripheral),
        ] {
            if let Some(n) = self.nodes.get_mut(node) {
                n.stats.links_up += 1;
            }
            let event = RadioEvent::LinkUp {
                link: id,
                peer: Medium::address_of(peer),
                att_mtu: params.att_mtu,
                role,
            };
            self.push_event(node, event);
        }
        if let Some(mean) = self.config.random_link_lifetime {
            let lifetime = self.rng.next_u64() % micros(mean).saturating_mul(2).saturating_add(1);
            let at = SimInstant::from_micros(self.now.as_micros().saturating_add(lifetime));
            self.schedule(at, Action::LifetimeEnd { slot, generation });
        }
    }

    /// Removes the link in `slot` from both nodes, counts its queued and in-flight packets lost, and raises
    /// `LinkDown` with `reasons[e]` at end `e` (none for `None`, or for a peripheral that never saw `LinkUp`).
    fn tear_down(&mut self, slot: usize, reasons: [Option<LinkDownReason>; 2]) {
        let Some(s) = self.slots.get_mut(slot) else {
            return;
        };
        let Some(link) = s.link.take() else { return };
        s.generation = s.generation.wrapping_add(1);
        self.free_slots.push(slot);
        for (e, end) in link.ends.iter().enumerate() {
            self.in_flight = self.in_flight.saturating_sub(end.in_flight);
            let Some(n) = self.nodes.get_mut(end.node) else {
                continue;
            };
            n.stats.lost_link_down += end.in_flight;
            let Some(pos) = n.links.iter().position(|l| l.slot == slot && l.end == e) else {
                continue;
            };
            n.links.swap_remove(pos);
            if let Some(reason) = reasons[e] {
                n.stats.links_down += 1;
                self.push_event(
                    end.node,
                    RadioEvent::LinkDown {
                        link: end.id,
                        reason,
                    },
                );
            }
        }
    }

    fn scan_tick(&mut self, node: usize, scan_generation: u32) {
        let Some(n) = self.nodes.get(node) else {
            return;
        };
        if !(n.alive && n.scanning && n.scan_generation == scan_generation) {
            return;
        }
        // A reused buffer: a scan tick allocates nothing once it has grown to the largest neighbourhood.
        let mut heard = core::mem::take(&mut self.scratch);
        for (peer, params) in self.topology.neighbours(node) {
            let Some(advertisement) = self
                .nodes
                .get(peer)
                .and_then(|p| p.advertising.filter(|_| p.alive))
            else {
                continue;
            };
            if unit(&mut self.rng) >= params.loss {
                let peer = Medium::address_of(peer);
                heard.push(RadioEvent::Discovered {
                    peer,
                    rssi: params.rssi,
                    advertisement,
                });
            }
        }
        for event in heard.drain(..) {
            self.push_event(node, event);
        }
        self.scratch = heard;
        let at = self.now + self.config.scan_interval;
        self.schedule(
            at,
            Action::ScanTick {
                node,
                scan_generation,
            },
        );
    }

    fn drop_links(&mut self, a: usize, b: usize) {
        let mut doomed: Vec<usize> = Vec::new();
        for node in [a, b] {
            let Some(n) = self.nodes.get(node) else {
                continue;
            };
            for l in &n.links {
                let other = self
                    .slots
                    .get(l.slot)
                    .and_then(|s| s.link.as_ref())
                    .map(|k| k.ends[1 - l.end].node);
                if other == Some(if node == a { b } else { a }) && !doomed.contains(&l.slot) {
                    doomed.push(l.slot);
                }
            }
        }
        doomed.sort_unstable();
        for slot in doomed {
            let up = self
                .slots
                .get(slot)
                .and_then(|s| s.link.as_ref())
                .is_some_and(|k| k.up);
            let reasons = if up {
                [Some(LinkDownReason::Timeout); 2]
            } else {
                [Some(LinkDownReason::ConnectFailed), None]
            };
            self.tear_down(slot, reasons);
        }
    }

    fn crash(&mut self, node: usize) {
        let Some(n) = self.nodes.get_mut(node) else {
            return;
        };
        if !n.alive {
            return;
        }
        n.alive = false;
        n.scanning = false;
        n.advertising = None;
        n.events.clear();
        n.stats.crashes += 1;
        let mut own: Vec<NodeLink> = n.links.clone();
        own.sort_unstable_by_key(|l| l.id);
        for l in own {
            let up = self
                .slots
                .get(l.slot)
                .and_then(|s| s.link.as_ref())
                .is_some_and(|k| k.up);
            let mut reasons = [None; 2];
            reasons[l.end] = Some(LinkDownReason::RadioReset);
            if up {
                reasons[1 - l.end] = Some(LinkDownReason::Timeout);
            }
            self.tear_down(l.slot, reasons);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Radio;

    #[test]
    fn addresses_round_trip() {
        let m = Medium::new(MediumConfig::default(), Topology::new(300), 0).unwrap();
        for node in [0, 1, 255, 256, 299] {
            assert_eq!(m.node_of(Medium::address_of(node)), Some(node));
        }
        assert_eq!(m.node_of(Medium::address_of(300)), None);
        assert_eq!(m.node_of(PeerAddress([0x40, 0, 0, 0, 0, 1])), None);
        assert_eq!(m.node_of(PeerAddress([0xc0, 1, 0, 0, 0, 1])), None);
    }

    #[test]
    fn idle_medium_has_no_wakeup_and_time_only_moves_forward() {
        let mut m = Medium::new(MediumConfig::default(), Topology::new(2), 0).unwrap();
        assert_eq!(m.next_wakeup(), None);
        assert_eq!(m.step(), None);
        m.advance(SimInstant::from_millis(10));
        m.advance(SimInstant::from_millis(4));
        assert_eq!(m.now(), SimInstant::from_millis(10));
        m.schedule_crash(SimInstant::ZERO, 1).unwrap();
        assert_eq!(
            m.next_wakeup(),
            Some(SimInstant::from_millis(10)),
            "past times are clamped to now"
        );
        assert_eq!(m.step(), Some(SimInstant::from_millis(10)));
        assert!(!m.is_alive(1) && m.is_alive(0) && !m.is_alive(2));
    }

    #[test]
    fn full_event_queue_drops_and_counts() {
        let config = MediumConfig {
            event_queue_capacity: 2,
            ..MediumConfig::default()
        };
        let topology = Topology::line(2, LinkParams::default()).unwrap();
        let mut m = Medium::new(config, topology, 0).unwrap();
        let advert = Advertisement::new(1, &[]).unwrap();
        m.radio(1).unwrap().start_advertising(&advert).unwrap();
        m.radio(0).unwrap().start_scanning().unwrap();
        m.advance(SimInstant::from_secs(2));
        assert_eq!(m.radio(0).unwrap().pending_events(), 2);
        assert_eq!(m.node_stats(0).unwrap().events_dropped, 2);
        let mut ready = Vec::new();
        m.take_ready(&mut ready);
        assert_eq!(ready, vec![0]);
        m.take_ready(&mut ready);
        assert!(ready.is_empty());
    }
}
