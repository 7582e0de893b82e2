//! The many-node runtime: real `mesh::node::Node`s driven over the simulated medium (`hal::sim`), in virtual time
//! or paced to a real clock by the same loop. `simulate`, `demo` and the multi-node tests all run on it.
//!
//! Invariant: every node input is followed by draining the node's actions (onto the radio, or its link's bounded
//! backlog), its events (into [`SimNet::take_events`]) and re-arming its timer, so nothing a node produced is
//! left behind when time moves; time only moves forward, to the earliest of the medium's wake-up, a node timer or
//! a scheduled runtime action.
//!
//! # Shape
//!
//! One [`SimNet`] owns the [`Medium`] and one slot per medium node holding that node's identity, its `Node` (none
//! while crashed) and its links. A step at virtual time `t`: advance the medium to `t`; apply the runtime actions
//! due (crash: drop the `Node`; restart: a new `Node` with the same identity and fresh state); hand each node with
//! radio events its events; fire the node timers due (a `BinaryHeap` of `(deadline, node, generation)` with lazy
//! deletion, so 500 nodes cost what happens, not their number). Pacing (`set_pacing`) sleeps before each step
//! until the wall clock reaches `t / speed`; without it the loop jumps.
//!
//! # Links
//!
//! Every node advertises [`SERVICE_UUID`] with the first bytes of its node id and scans. On `Discovered` the node
//! connects when it has no link (up or connecting) to that address, holds fewer than `link_limit` links, the pair
//! is not partitioned, and its own address is the lower one: one link per pair, chosen without talking. A
//! `hal::LinkId` maps to `mesh::node::LinkId` with the same number (hal never reuses a link id on a radio, and a
//! restarted node is a new `Node`). When the medium answers `QueueFull`, packets wait in the link's backlog
//! (bounded by `backlog`, drops counted) and are flushed on `Writable`, in order.
//!
//! # Shared work
//!
//! Every node of a flood checks the same signatures; the nodes of a network share their verdicts
//! ([`mesh::identity::share_verdicts_on_this_thread`]), so each announce and broadcast is verified once per run
//! instead of once per node. A verdict is keyed by a hash of everything the check reads, so every node still
//! accepts and refuses exactly what its own check would.
//!
//! # Faults the medium lacks
//!
//! The medium keeps packet order and never duplicates. For tests the runtime can deliver a received packet twice
//! (`duplicate`) or hold one back and deliver it after the next packet of its link (`reorder`), and
//! [`SimNet::inject_frame`] hands a crafted frame to a node as if a neighbour had sent it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use hal::sim::{Medium, MediumConfig, SimError, SimInstant, Topology};
use hal::{
    Advertisement, LinkDownReason, LinkId as HalLinkId, PeerAddress, Radio, RadioErrorKind,
    RadioEvent,
};
use mesh::identity::{Identity, NodeId};
use mesh::link::Fragmenter;
use mesh::node::{Action, Event, LinkId, MessageId, Node, NodeConfig, NodeError};
use mesh::time::Instant;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

mod stats;
mod topology;

pub use stats::StatsSum;
pub use topology::{build_topology, TopologyKind};

/// Signature verdicts the nodes of a network share (see [`mesh::identity::share_verdicts_on_this_thread`]): enough
/// for every announce and broadcast in flight at once, so each is checked once, not once per node.
const SHARED_VERDICTS: usize = 8192;

/// The 128-bit service UUID every meshnode advertises ("meshnode" in ASCII, then a version).
pub const SERVICE_UUID: u128 = 0x6d65_7368_6e6f_6465_0000_0000_0000_0001;

/// How the runtime drives its nodes.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// The configuration every node starts from; its nickname is replaced by `node-<index>`.
    pub node: NodeConfig,
    /// Links (up or connecting) a node holds before it stops connecting to newly discovered peers.
    pub link_limit: usize,
    /// Packets per link held while the medium's queue is full; more are dropped and counted.
    pub backlog: usize,
    /// Probability that a received packet is handed to the node twice (a fault the medium does not make).
    pub duplicate: f64,
    /// Probability that a received packet is held back and handed over after the next packet of its link.
    pub reorder: f64,
    /// Seeds identities, node RNGs and the duplicate/reorder draws.
    pub seed: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            node: NodeConfig::default(),
            link_limit: 8,
            backlog: 256,
            duplicate: 0.0,
            reorder: 0.0,
            seed: 0,
        }
    }
}

/// Runtime counters (the medium and the nodes count the rest).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// `connect` calls made.
    pub connects: u64,
    /// Connects that ended in `ConnectFailed` or were refused at once.
    pub connect_failures: u64,
    /// Links that came up (counted at each end).
    pub links_up: u64,
    /// Links that went down (counted at each end).
    pub links_down: u64,
    /// Packets that waited in a link backlog because the medium's queue was full.
    pub backlogged: u64,
    /// Packets dropped because a link backlog was full or its link went down.
    pub backlog_drops: u64,
    /// Packets a node produced for a link the radio no longer has.
    pub dead_link_drops: u64,
    /// Received packets handed over twice.
    pub duplicated: u64,
    /// Received packets handed over after their successor.
    pub reordered: u64,
    /// Packets injected by `inject_frame`.
    pub injected: u64,
    /// Node crashes applied.
    pub crashes: u64,
    /// Node restarts applied.
    pub restarts: u64,
}

/// What happened, where and when.
#[derive(Clone, Debug)]
pub struct NetEvent {
    /// Virtual time.
    pub at: SimInstant,
    /// The node index.
    pub node: usize,
    /// What.
    pub kind: NetEventKind,
}

/// The runtime's own events and the nodes' events.
#[derive(Clone, Debug)]
pub enum NetEventKind {
    /// An event the node emitted.
    Node(Event),
    /// A radio link came up to node `peer`.
    LinkUp {
        /// The peer's index.
        peer: usize,
        /// The link's ATT MTU.
        att_mtu: u16,
    },
    /// A radio link to node `peer` went down (for a failed connect, `up` is false).
    LinkDown {
        /// The peer's index.
        peer: usize,
        /// Why, as the radio saw it.
        reason: LinkDownReason,
        /// Whether the link had come up.
        was_up: bool,
    },
    /// The node crashed: its state is gone.
    Crashed,
    /// The node restarted with its identity and fresh state.
    Restarted,
}

/// A runtime action scheduled at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scheduled {
    Crash(usize),
    Restart(usize),
}

/// One radio link of a node.
#[derive(Debug)]
struct LinkState {
    hal: HalLinkId,
    peer: PeerAddress,
    up: bool,
    backlog: VecDeque<Vec<u8>>,
    /// A received packet held back to be handed over after the next one (reorder fault).
    held: Option<Vec<u8>>,
}

/// One node's slot: identity, its `Node` while running, its links.
struct Slot {
    identity: Identity,
    id: NodeId,
    node: Option<Node>,
    /// Bumped at each restart; node timers of an older generation are stale.
    generation: u32,
    /// The deadline armed in the timer heap, in virtual milliseconds.
    timer_at: Option<u64>,
    links: Vec<LinkState>,
    /// Stats of earlier incarnations (crashed nodes), summed.
    retired: StatsSum,
}

/// A pair of nodes that may not link from `from` until `until`.
#[derive(Clone, Copy, Debug)]
struct Partition {
    a: usize,
    b: usize,
    from: SimInstant,
    until: SimInstant,
}

/// The many-node runtime. See the module docs.
pub struct SimNet {
    medium: Medium,
    config: NetConfig,
    slots: Vec<Slot>,
    timers: BinaryHeap<Reverse<(u64, usize, u32)>>,
    scheduled: BinaryHeap<Reverse<(SimInstant, u64, Scheduled)>>,
    seq: u64,
    partitions: Vec<Partition>,
    events: Vec<NetEvent>,
    /// Which events `take_events` keeps.
    keep: fn(&NetEventKind) -> bool,
    rng: ChaCha8Rng,
    stats: NetStats,
    pacing: Option<(StdInstant, SimInstant, f64)>,
    ready: Vec<usize>,
    now: SimInstant,
}

/// A virtual instant as the node's clock (milliseconds).
pub fn to_mesh(t: SimInstant) -> Instant {
    Instant::from_millis(t.as_micros() / 1_000)
}

/// A 32-byte seed from a 64-bit seed and two labels, deterministic.
fn derive_seed(seed: u64, a: u64, b: u64) -> [u8; 32] {
    let mut rng = ChaCha8Rng::seed_from_u64(
        seed ^ a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.wrapping_mul(0xc2b2_ae3d_27d4_eb4f),
    );
    let mut out = [0u8; 32];
    rng.fill_bytes(&mut out);
    out
}

/// The identity of node `index` in a network seeded with `seed` (the same across restarts and runs).
pub fn identity_for(seed: u64, index: usize) -> Identity {
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(derive_seed(seed, index as u64 + 1, 0x1d));
    Identity::generate(&mut rng)
}

fn keep_all(_: &NetEventKind) -> bool {
    true
}

fn keep_none(_: &NetEventKind) -> bool {
    false
}

/// A uniform draw in [0, 1).
fn unit(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

impl SimNet {
    /// A network of one node per topology node, every node advertising and scanning from time zero.
    pub fn new(
        medium_config: MediumConfig,
        topology: Topology,
        config: NetConfig,
    ) -> Result<Self, SimError> {
        let medium = Medium::new(medium_config, topology, config.seed)?;
        mesh::identity::share_verdicts_on_this_thread(SHARED_VERDICTS);
        let n = medium.node_count();
        let slots = (0..n)
            .map(|i| {
                let identity = identity_for(config.seed, i);
                Slot {
                    id: identity.node_id(),
                    identity,
                    node: None,
                    generation: 0,
                    timer_at: None,
                    links: Vec::new(),
                    retired: StatsSum::default(),
                }
            })
            .collect();
        let mut net = SimNet {
            medium,
            rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0x5eed),
            config,
            slots,
            timers: BinaryHeap::new(),
            scheduled: BinaryHeap::new(),
            seq: 0,
            partitions: Vec::new(),
            events: Vec::new(),
            keep: keep_all,
            stats: NetStats::default(),
            pacing: None,
            ready: Vec::new(),
            now: SimInstant::ZERO,
        };
        for i in 0..n {
            net.start_node(i);
        }
        Ok(net)
    }

    /// Paces the loop to the wall clock: virtual time runs `speed` times as fast as real time (from now on).
    pub fn set_pacing(&mut self, speed: Option<f64>) {
        self.pacing = speed
            .filter(|s| *s > 0.0 && s.is_finite())
            .map(|s| (StdInstant::now(), self.now, s));
    }

    /// Whether events are kept for `take_events` (on by default). Off, only the runtime counts.
    pub fn set_record_events(&mut self, on: bool) {
        self.keep = if on { keep_all } else { keep_none };
    }

    /// Keeps for `take_events` only the events `keep` accepts: a caller that reads a few kinds is spared the memory
    /// of the rest (a mesh learning its peers emits n^2 `PeerAppeared`).
    pub fn set_event_filter(&mut self, keep: fn(&NetEventKind) -> bool) {
        self.keep = keep;
    }

    /// The current virtual time.
    pub fn now(&self) -> SimInstant {
        self.now
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Node `i`'s id.
    pub fn node_id(&self, i: usize) -> NodeId {
        self.slots[i].id
    }

    /// Node `i`'s identity (the secret keys: for tests that forge frames).
    pub fn identity(&self, i: usize) -> &Identity {
        &self.slots[i].identity
    }

    /// Node `i`'s `Node`, `None` while crashed.
    pub fn node(&self, i: usize) -> Option<&Node> {
        self.slots.get(i)?.node.as_ref()
    }

    /// The medium (topology, stats).
    pub fn medium(&self) -> &Medium {
        &self.medium
    }

    /// The runtime's counters.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// The events since the last call, in order.
    pub fn take_events(&mut self) -> Vec<NetEvent> {
        std::mem::take(&mut self.events)
    }

    /// Links up at node `i`, with their peer's index.
    pub fn links_of(&self, i: usize) -> Vec<usize> {
        self.slots[i]
            .links
            .iter()
            .filter(|l| l.up)
            .filter_map(|l| self.medium.node_of(l.peer))
            .collect()
    }

    /// Node `i`'s counters, this incarnation and every earlier one summed.
    pub fn node_totals(&self, i: usize) -> StatsSum {
        let s = &self.slots[i];
        let mut sum = s.retired;
        if let Some(node) = &s.node {
            sum.add(&node.stats());
        }
        sum
    }

    /// Every node's counters summed.
    pub fn totals(&self) -> StatsSum {
        let mut sum = StatsSum::default();
        for i in 0..self.slots.len() {
            let t = self.node_totals(i);
            sum.merge(&t);
        }
        sum
    }

    /// Every running node's `memory_bytes`, summed.
    pub fn node_memory_bytes(&self) -> usize {
        self.slots
            .iter()
            .filter_map(|s| s.node.as_ref())
            .map(Node::memory_bytes)
            .sum()
    }

    /// Node `i` sends `payload` privately to `peer`.
    pub fn send(&mut self, i: usize, peer: NodeId, payload: &[u8]) -> Result<MessageId, NodeError> {
        let now = to_mesh(self.now);
        let slot = &mut self.slots[i];
        let node = slot.node.as_mut().ok_or(NodeError::InvalidPeer)?;
        let r = node.send(peer, payload, now);
        self.drain(i);
        r
    }

    /// Node `i` broadcasts `payload`.
    pub fn broadcast(&mut self, i: usize, payload: &[u8]) -> Result<MessageId, NodeError> {
        let now = to_mesh(self.now);
        let slot = &mut self.slots[i];
        let node = slot.node.as_mut().ok_or(NodeError::InvalidPeer)?;
        let r = node.broadcast(payload, now);
        self.drain(i);
        r
    }

    /// Runs `f` on node `i`'s `Node` (when running) at the current time, then drains what it produced.
    pub fn with_node<R>(&mut self, i: usize, f: impl FnOnce(&mut Node, Instant) -> R) -> Option<R> {
        let now = to_mesh(self.now);
        let r = f(self.slots.get_mut(i)?.node.as_mut()?, now);
        self.drain(i);
        Some(r)
    }

    /// Hands `frame` to node `i` as packets arriving on its link to node `from`, fragmented afresh (the receiver
    /// sees a sequence gap, as after a loss). Returns false when there is no such link.
    pub fn inject_frame(&mut self, i: usize, from: usize, frame: &[u8]) -> bool {
        let addr = Medium::address_of(from);
        let Some(link) = self.slots[i]
            .links
            .iter()
            .find(|l| l.up && l.peer == addr)
            .map(|l| l.hal)
        else {
            return false;
        };
        let mtu = 23;
        let mut fragmenter = Fragmenter::starting_at(32);
        let Ok(packets) = fragmenter.fragment(frame, mtu) else {
            return false;
        };
        let packets: Vec<Vec<u8>> = packets
            .map(|p| {
                let mut v = Vec::new();
                p.append_to(&mut v);
                v
            })
            .collect();
        let now = to_mesh(self.now);
        for p in packets {
            self.stats.injected += 1;
            if let Some(node) = self.slots[i].node.as_mut() {
                node.handle_packet(LinkId(link.0), &p, now);
            }
            self.drain(i);
        }
        true
    }

    /// At `at`, crashes node `i`: its radio goes inert, its links drop, its `Node` is discarded.
    pub fn schedule_crash(&mut self, at: SimInstant, i: usize) -> Result<(), SimError> {
        self.medium.schedule_crash(at, i)?;
        self.push_scheduled(at, Scheduled::Crash(i));
        Ok(())
    }

    /// At `at`, restarts crashed node `i` with its identity and fresh state.
    pub fn schedule_restart(&mut self, at: SimInstant, i: usize) -> Result<(), SimError> {
        self.medium.schedule_restart(at, i)?;
        self.push_scheduled(at, Scheduled::Restart(i));
        Ok(())
    }

    /// At `at`, drops the links between `a` and `b` once (they reconnect at the next discovery).
    pub fn schedule_link_drop(
        &mut self,
        at: SimInstant,
        a: usize,
        b: usize,
    ) -> Result<(), SimError> {
        self.medium.schedule_link_drop(at, a, b)
    }

    /// From `from` until `until`, nodes `a` and `b` hold no link: it is dropped at `from` and not reconnected
    /// before `until` (a partition of that edge).
    pub fn partition(
        &mut self,
        from: SimInstant,
        until: SimInstant,
        a: usize,
        b: usize,
    ) -> Result<(), SimError> {
        self.medium.schedule_link_drop(from, a, b)?;
        self.partitions.push(Partition { a, b, from, until });
        Ok(())
    }

    fn push_scheduled(&mut self, at: SimInstant, what: Scheduled) {
        self.seq += 1;
        self.scheduled
            .push(Reverse((at.max(self.now), self.seq, what)));
    }

    /// The next time anything happens: the medium, a node timer or a scheduled action.
    fn next_wakeup(&mut self) -> Option<SimInstant> {
        // Drop stale timer entries so the peek is a real deadline.
        while let Some(&Reverse((at, i, generation))) = self.timers.peek() {
            let s = &self.slots[i];
            if s.generation == generation && s.timer_at == Some(at) && s.node.is_some() {
                break;
            }
            self.timers.pop();
        }
        let timer = self
            .timers
            .peek()
            .map(|Reverse((at, _, _))| SimInstant::from_millis(*at));
        let scheduled = self.scheduled.peek().map(|Reverse((at, _, _))| *at);
        [self.medium.next_wakeup(), timer, scheduled]
            .into_iter()
            .flatten()
            .min()
    }

    /// Runs until virtual time `end` (everything due at `end` included), then sets the time to `end`.
    pub fn run_until(&mut self, end: SimInstant) {
        while let Some(t) = self.next_wakeup() {
            if t > end {
                break;
            }
            self.step_to(t.max(self.now));
        }
        if end > self.now {
            self.pace(end);
            self.medium.advance(end);
            self.now = end;
        }
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: StdDuration) {
        self.run_until(self.now + d);
    }

    fn pace(&self, t: SimInstant) {
        if let Some((wall0, sim0, speed)) = self.pacing {
            let virt = t.saturating_duration_since(sim0);
            let due = wall0 + virt.div_f64(speed);
            let now = StdInstant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
    }

    fn step_to(&mut self, t: SimInstant) {
        self.pace(t);
        self.medium.advance(t);
        self.now = t;
        // Runtime actions due.
        while let Some(&Reverse((at, _, what))) = self.scheduled.peek() {
            if at > t {
                break;
            }
            self.scheduled.pop();
            match what {
                Scheduled::Crash(i) => self.crash(i),
                Scheduled::Restart(i) => self.restart(i),
            }
        }
        self.partitions.retain(|p| p.until > t);
        // Radio events.
        let mut ready = std::mem::take(&mut self.ready);
        self.medium.take_ready(&mut ready);
        for &i in &ready {
            self.radio_events(i);
        }
        self.ready = ready;
        // Node timers due.
        let now_ms = t.as_micros() / 1_000;
        while let Some(&Reverse((at, i, generation))) = self.timers.peek() {
            if at > now_ms {
                break;
            }
            self.timers.pop();
            let s = &mut self.slots[i];
            if s.generation != generation || s.timer_at != Some(at) {
                continue;
            }
            s.timer_at = None;
            if let Some(node) = s.node.as_mut() {
                node.handle_timeout(Instant::from_millis(now_ms));
                self.drain(i);
            }
        }
    }

    fn start_node(&mut self, i: usize) {
        let seed = self.config.seed;
        let mut config = self.config.node.clone();
        config.nickname = format!("node-{i}");
        let s = &mut self.slots[i];
        let rng_seed = derive_seed(seed, i as u64 + 1, u64::from(s.generation) + 0x100);
        s.node = Some(Node::new(
            s.identity.clone(),
            config,
            rng_seed,
            to_mesh(self.now),
        ));
        s.timer_at = None;
        s.links.clear();
        let id = s.id;
        if let Some(mut radio) = self.medium.radio(i) {
            if let Ok(ad) = Advertisement::new(SERVICE_UUID, &id.0) {
                let _ = radio.start_advertising(&ad);
            }
            let _ = radio.start_scanning();
        }
        self.drain(i);
    }

    fn crash(&mut self, i: usize) {
        let s = &mut self.slots[i];
        if let Some(node) = s.node.take() {
            s.retired.add(&node.stats());
            s.generation += 1;
            s.timer_at = None;
            s.links.clear();
            self.stats.crashes += 1;
            self.record(i, NetEventKind::Crashed);
        }
    }

    fn restart(&mut self, i: usize) {
        if self.slots[i].node.is_none() && self.medium.is_alive(i) {
            self.slots[i].generation += 1;
            self.start_node(i);
            self.stats.restarts += 1;
            self.record(i, NetEventKind::Restarted);
        }
    }

    fn record(&mut self, node: usize, kind: NetEventKind) {
        if (self.keep)(&kind) {
            self.events.push(NetEvent {
                at: self.now,
                node,
                kind,
            });
        }
    }

    fn blocked(&self, a: usize, b: usize) -> bool {
        let now = self.now;
        self.partitions
            .iter()
            .any(|p| p.from <= now && ((p.a == a && p.b == b) || (p.a == b && p.b == a)))
    }

    /// Hands node `i` every event its radio holds.
    fn radio_events(&mut self, i: usize) {
        loop {
            let event = match self.medium.radio(i) {
                Some(mut r) => r.poll_event(),
                None => None,
            };
            let Some(event) = event else { break };
            if self.slots[i].node.is_none() {
                continue; // crashed: its radio's leftovers are meaningless
            }
            self.radio_event(i, event);
        }
    }

    fn radio_event(&mut self, i: usize, event: RadioEvent) {
        let now = to_mesh(self.now);
        match event {
            RadioEvent::Discovered {
                peer,
                advertisement,
                ..
            } => {
                if advertisement.service_uuid() != SERVICE_UUID {
                    return;
                }
                let own = Medium::address_of(i);
                let s = &self.slots[i];
                if peer <= own
                    || s.links.len() >= self.config.link_limit
                    || s.links.iter().any(|l| l.peer == peer)
                {
                    return;
                }
                if let Some(j) = self.medium.node_of(peer) {
                    if self.blocked(i, j) {
                        return;
                    }
                }
                self.stats.connects += 1;
                let result = self.medium.radio(i).map(|mut r| r.connect(peer));
                match result {
                    Some(Ok(link)) => self.slots[i].links.push(LinkState {
                        hal: link,
                        peer,
                        up: false,
                        backlog: VecDeque::new(),
                        held: None,
                    }),
                    _ => self.stats.connect_failures += 1,
                }
            }
            RadioEvent::LinkUp {
                link,
                peer,
                att_mtu,
                ..
            } => {
                let peer_index = self.medium.node_of(peer).unwrap_or(usize::MAX);
                // A partitioned pair refuses the link at once (the peripheral cannot refuse earlier).
                if peer_index != usize::MAX && self.blocked(i, peer_index) {
                    if let Some(mut r) = self.medium.radio(i) {
                        let _ = r.disconnect(link);
                    }
                    return;
                }
                let s = &mut self.slots[i];
                match s.links.iter_mut().find(|l| l.hal == link) {
                    Some(l) => l.up = true,
                    None => s.links.push(LinkState {
                        hal: link,
                        peer,
                        up: true,
                        backlog: VecDeque::new(),
                        held: None,
                    }),
                }
                self.stats.links_up += 1;
                self.record(
                    i,
                    NetEventKind::LinkUp {
                        peer: peer_index,
                        att_mtu,
                    },
                );
                if let Some(node) = self.slots[i].node.as_mut() {
                    node.link_up(LinkId(link.0), att_mtu, now);
                }
                self.drain(i);
            }
            RadioEvent::LinkDown { link, reason } => {
                let s = &mut self.slots[i];
                let Some(pos) = s.links.iter().position(|l| l.hal == link) else {
                    return;
                };
                let l = s.links.swap_remove(pos);
                self.stats.backlog_drops += l.backlog.len() as u64;
                let peer = self.medium.node_of(l.peer).unwrap_or(usize::MAX);
                if l.up {
                    self.stats.links_down += 1;
                    if let Some(node) = self.slots[i].node.as_mut() {
                        node.link_down(LinkId(link.0), now);
                    }
                } else {
                    self.stats.connect_failures += 1;
                }
                self.record(
                    i,
                    NetEventKind::LinkDown {
                        peer,
                        reason,
                        was_up: l.up,
                    },
                );
                self.drain(i);
            }
            RadioEvent::Packet { link, data } => {
                let (dup, hold) = (
                    self.config.duplicate > 0.0 && unit(&mut self.rng) < self.config.duplicate,
                    self.config.reorder > 0.0 && unit(&mut self.rng) < self.config.reorder,
                );
                let s = &mut self.slots[i];
                let Some(l) = s.links.iter_mut().find(|l| l.hal == link) else {
                    return;
                };
                if hold && l.held.is_none() {
                    l.held = Some(data);
                    self.stats.reordered += 1;
                    return;
                }
                let held = l.held.take();
                let mesh_link = LinkId(link.0);
                if let Some(node) = s.node.as_mut() {
                    node.handle_packet(mesh_link, &data, now);
                    if let Some(h) = held {
                        node.handle_packet(mesh_link, &h, now);
                    }
                    if dup {
                        node.handle_packet(mesh_link, &data, now);
                        self.stats.duplicated += 1;
                    }
                }
                self.drain(i);
            }
            RadioEvent::Writable { link } => self.flush(i, link),
        }
    }

    /// Sends link `link`'s backlog until the medium's queue is full again.
    fn flush(&mut self, i: usize, link: HalLinkId) {
        let Some(mut radio) = self.medium.radio(i) else {
            return;
        };
        let Some(l) = self.slots[i].links.iter_mut().find(|l| l.hal == link) else {
            return;
        };
        while let Some(p) = l.backlog.pop_front() {
            match radio.send_owned(link, p) {
                Ok(()) => {}
                Err((e, p)) if e.kind() == RadioErrorKind::QueueFull => {
                    l.backlog.push_front(p);
                    return;
                }
                Err(_) => {
                    self.stats.backlog_drops += l.backlog.len() as u64 + 1;
                    l.backlog.clear();
                    return;
                }
            }
        }
    }

    /// Drains node `i`'s actions onto the radio, its events into the log, and re-arms its timer.
    fn drain(&mut self, i: usize) {
        let s = &mut self.slots[i];
        let Some(node) = s.node.as_mut() else { return };
        let mut radio = self.medium.radio(i);
        while let Some(action) = node.poll_action() {
            if let Action::Transmit { link, packet } = action {
                let hal_link = HalLinkId(link.0);
                let Some(l) = s.links.iter_mut().find(|l| l.hal == hal_link && l.up) else {
                    self.stats.dead_link_drops += 1;
                    continue;
                };
                if !l.backlog.is_empty() {
                    if l.backlog.len() >= self.config.backlog {
                        self.stats.backlog_drops += 1;
                    } else {
                        l.backlog.push_back(packet);
                        self.stats.backlogged += 1;
                    }
                    continue;
                }
                let Some(r) = radio.as_mut() else { continue };
                // The medium keeps the node's buffer; a refused packet comes back for the backlog.
                match r.send_owned(hal_link, packet) {
                    Ok(()) => {}
                    Err((e, packet)) if e.kind() == RadioErrorKind::QueueFull => {
                        l.backlog.push_back(packet);
                        self.stats.backlogged += 1;
                    }
                    Err(_) => self.stats.dead_link_drops += 1,
                }
            }
        }
        while let Some(event) = node.poll_event() {
            let kind = NetEventKind::Node(event);
            if (self.keep)(&kind) {
                self.events.push(NetEvent {
                    at: self.now,
                    node: i,
                    kind,
                });
            }
        }
        let now_ms = self.now.as_micros() / 1_000;
        let deadline = node.poll_timeout().map(|t| {
            // A deadline in the past fires at the next millisecond, so a node can never stall the loop.
            t.total_millis().max(now_ms + 1)
        });
        if deadline != s.timer_at {
            s.timer_at = deadline;
            if let Some(at) = deadline {
                self.timers.push(Reverse((at, i, s.generation)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hal::sim::LinkParams;

    fn net(topology: Topology, medium: MediumConfig, seed: u64) -> SimNet {
        let config = NetConfig {
            seed,
            ..NetConfig::default()
        };
        SimNet::new(medium, topology, config).expect("network")
    }

    #[test]
    fn one_link_per_pair_and_every_edge_linked() {
        let t = build_topology(TopologyKind::Random, 30, LinkParams::default(), 5, 1.0).unwrap();
        let edges: Vec<(usize, usize)> = (0..30)
            .flat_map(|a| t.neighbours(a).map(move |(b, _)| (a, b)))
            .filter(|(a, b)| a < b)
            .collect();
        let mut n = net(t, MediumConfig::default(), 5);
        n.run_until(SimInstant::from_secs(3));
        for i in 0..30 {
            let mut links = n.links_of(i);
            let count = links.len();
            links.sort_unstable();
            links.dedup();
            assert_eq!(links.len(), count, "node {i} holds two links to one peer");
        }
        let degree = |i: usize| n.medium().topology().neighbours(i).count();
        for (a, b) in edges {
            assert!(
                n.links_of(a).contains(&b) || degree(a).max(degree(b)) > 8,
                "edge {a}-{b} never linked (degrees {}, {})",
                degree(a),
                degree(b)
            );
        }
    }

    #[test]
    fn same_seed_same_run() {
        let run = |seed| {
            let t =
                build_topology(TopologyKind::Grid, 9, LinkParams::default(), seed, 1.0).unwrap();
            let mut n = net(t, MediumConfig::default(), seed);
            n.run_until(SimInstant::from_secs(5));
            (n.medium().total_stats(), n.stats())
        };
        assert_eq!(run(3), run(3));
    }

    #[test]
    fn full_radio_queues_backlog_in_order_and_deliver() {
        let params = LinkParams {
            att_mtu: 23,
            ..LinkParams::default()
        };
        let medium = MediumConfig {
            queue_capacity: 2,
            ..MediumConfig::default()
        };
        let mut n = net(Topology::line(3, params).unwrap(), medium, 9);
        n.run_until(SimInstant::from_secs(5));
        let peer = n.node_id(2);
        n.send(0, peer, &[7u8; 900]).expect("send");
        n.run_until(SimInstant::from_secs(15));
        let got = n.take_events().into_iter().any(|e| {
            e.node == 2
                && matches!(&e.kind, NetEventKind::Node(Event::MessageReceived { payload, .. }) if payload.len() == 900)
        });
        assert!(n.stats().backlogged > 0, "{:?}", n.stats());
        assert_eq!(n.stats().backlog_drops, 0);
        assert!(
            got,
            "a 900-byte message over MTU 23 with 2-packet queues arrived"
        );
    }

    #[test]
    fn a_node_that_stalls_its_timer_cannot_stall_the_loop() {
        // Deadlines in the past are pushed to the next millisecond: time still advances.
        let mut n = net(
            Topology::line(2, LinkParams::default()).unwrap(),
            MediumConfig::default(),
            1,
        );
        n.run_until(SimInstant::from_secs(2));
        assert_eq!(n.now(), SimInstant::from_secs(2));
    }
}
