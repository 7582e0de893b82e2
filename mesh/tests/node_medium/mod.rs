//! A small in-test medium for `mesh::node`: nodes, links as pairs (link `i` is `LinkId(i)` at both ends), packet
//! queues stamped with literal delivery times, and seeded loss / duplication / reordering. Deterministic.
#![allow(dead_code)]

use std::collections::BTreeMap;

use mesh::identity::{Identity, NodeId, PublicIdentity};
use mesh::node::{Action, Event, LinkId, MessageId, Node, NodeConfig, Persist, RelayPolicy};
use mesh::session::{SessionRecord, SessionSnapshot};
use mesh::time::{Duration, Instant};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

pub const MTU: u16 = 247;

pub fn identity(i: usize) -> Identity {
    Identity::from_secrets([i as u8 + 1; 32], [i as u8 + 101; 32])
}

pub fn config(i: usize, policy: RelayPolicy) -> NodeConfig {
    let mut c = NodeConfig::default();
    c.nickname = format!("node{i}");
    c.route.policy = policy;
    c
}

/// What a runtime's store holds for one node: every `Action::Persist` applied in order.
#[derive(Default)]
pub struct Store {
    pub sessions: BTreeMap<NodeId, SessionSnapshot>,
    pub pins: BTreeMap<NodeId, PublicIdentity>,
    pub outbox: BTreeMap<(NodeId, MessageId), (Vec<u8>, Instant)>,
    pub seen: BTreeMap<(NodeId, MessageId), Instant>,
    pub records: u64,
}

impl Store {
    fn apply(&mut self, p: Persist) {
        self.records += 1;
        match p {
            Persist::Session(SessionRecord::Snapshot(s)) => {
                self.sessions.insert(s.peer_id(), s);
            }
            Persist::Session(SessionRecord::Removed { peer }) => {
                self.sessions.remove(&peer);
            }
            Persist::Session(SessionRecord::Pin { peer, keys }) => {
                self.pins.insert(peer, keys);
            }
            Persist::OutboxAdd {
                to,
                id,
                payload,
                expires,
            } => {
                self.outbox.insert((to, id), (payload, expires));
            }
            Persist::OutboxRemove { to, id } => {
                self.outbox.remove(&(to, id));
            }
            Persist::Seen { from, id, at } => {
                self.seen.insert((from, id), at);
            }
            other => panic!("unexpected record {other:?}"),
        }
    }
}

pub struct Medium {
    pub nodes: Vec<Node>,
    pub configs: Vec<NodeConfig>,
    pub stores: Vec<Store>,
    pub links: Vec<(usize, usize)>,
    pub up: Vec<bool>,
    pub now: Instant,
    pub events: Vec<Vec<Event>>,
    /// Per mille.
    pub loss: u64,
    /// Per mille.
    pub dup: u64,
    /// Extra random delay up to this many ms (reorders packets).
    pub jitter_ms: u64,
    pub latency: Duration,
    /// Packets put on air.
    pub transmissions: u64,
    rng: ChaCha20Rng,
    queue: Vec<(Instant, u64, usize, LinkId, Vec<u8>)>,
    seq: u64,
}

impl Medium {
    pub fn new(n: usize, policy: RelayPolicy) -> Medium {
        Medium::with_configs((0..n).map(|i| config(i, policy)).collect())
    }

    pub fn with_configs(configs: Vec<NodeConfig>) -> Medium {
        let now = Instant::from_millis(1_000);
        let n = configs.len();
        let nodes = configs
            .iter()
            .enumerate()
            .map(|(i, c)| Node::new(identity(i), c.clone(), [i as u8 + 7; 32], now))
            .collect();
        Medium {
            nodes,
            stores: (0..n).map(|_| Store::default()).collect(),
            configs,
            links: Vec::new(),
            up: Vec::new(),
            now,
            events: vec![Vec::new(); n],
            loss: 0,
            dup: 0,
            jitter_ms: 0,
            latency: Duration::from_millis(5),
            transmissions: 0,
            rng: ChaCha20Rng::seed_from_u64(42),
            queue: Vec::new(),
            seq: 0,
        }
    }

    pub fn id(&self, i: usize) -> NodeId {
        self.nodes[i].node_id()
    }

    /// Adds and raises a link between `a` and `b`; returns its index.
    pub fn connect(&mut self, a: usize, b: usize) -> usize {
        let l = self.links.len();
        self.links.push((a, b));
        self.up.push(true);
        let now = self.now;
        self.nodes[a].link_up(LinkId(l as u32), MTU, now);
        self.nodes[b].link_up(LinkId(l as u32), MTU, now);
        l
    }

    pub fn disconnect(&mut self, l: usize) {
        self.up[l] = false;
        let (a, b) = self.links[l];
        let now = self.now;
        self.nodes[a].link_down(LinkId(l as u32), now);
        self.nodes[b].link_down(LinkId(l as u32), now);
    }

    pub fn line(n: usize, policy: RelayPolicy) -> Medium {
        let mut m = Medium::new(n, policy);
        for i in 0..n - 1 {
            m.connect(i, i + 1);
        }
        m
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        per_mille > 0 && self.rng.next_u64() % 1000 < per_mille
    }

    fn collect(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some(a) = self.nodes[i].poll_action() {
                let (link, packet) = match a {
                    Action::Transmit { link, packet } => (link, packet),
                    Action::Persist(p) => {
                        self.stores[i].apply(p);
                        continue;
                    }
                    _ => continue,
                };
                self.transmissions += 1;
                let Some(&(x, y)) = self.links.get(link.0 as usize) else {
                    continue;
                };
                if !self.up[link.0 as usize] {
                    continue;
                }
                let to = if x == i { y } else { x };
                if self.chance(self.loss) {
                    continue;
                }
                let copies = if self.chance(self.dup) { 2 } else { 1 };
                for _ in 0..copies {
                    let extra = if self.jitter_ms > 0 {
                        self.rng.next_u64() % self.jitter_ms
                    } else {
                        0
                    };
                    let at = self.now + self.latency + Duration::from_millis(extra);
                    self.seq += 1;
                    self.queue.push((at, self.seq, to, link, packet.clone()));
                }
            }
            while let Some(e) = self.nodes[i].poll_event() {
                self.events[i].push(e);
            }
        }
    }

    /// Runs until `end`, jumping from one wake-up to the next.
    pub fn run_until(&mut self, end: Instant) {
        for _ in 0..2_000_000 {
            self.collect();
            let next_packet = self.queue.iter().map(|q| q.0).min();
            let next_timer = self.nodes.iter().filter_map(|n| n.poll_timeout()).min();
            let Some(next) = [next_packet, next_timer].into_iter().flatten().min() else {
                self.now = end;
                return;
            };
            if next > end {
                self.now = end;
                return;
            }
            self.now = self.now.max(next);
            let now = self.now;
            self.queue.sort_by_key(|q| (q.0, q.1));
            let due = self.queue.iter().take_while(|q| q.0 <= now).count();
            let batch: Vec<_> = self.queue.drain(..due).collect();
            for (_, _, to, link, packet) in batch {
                self.nodes[to].handle_packet(link, &packet, now);
            }
            for n in self.nodes.iter_mut() {
                if n.poll_timeout().is_some_and(|t| t <= now) {
                    n.handle_timeout(now);
                    assert!(
                        n.poll_timeout().is_none_or(|t| t > now),
                        "timer in the past"
                    );
                }
            }
        }
        panic!("medium did not settle");
    }

    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        self.run_until(end);
    }

    /// Node `i`'s process dies and starts again from its store alone (a new RNG seed): its links drop (packets in
    /// flight on them are lost) and come back as new links.
    pub fn restart(&mut self, i: usize, seed: u8) {
        self.collect();
        let now = self.now;
        let mine: Vec<usize> = (0..self.links.len())
            .filter(|l| self.up[*l] && (self.links[*l].0 == i || self.links[*l].1 == i))
            .collect();
        for &l in &mine {
            self.up[l] = false;
            let (a, b) = self.links[l];
            let other = if a == i { b } else { a };
            self.nodes[other].link_down(LinkId(l as u32), now);
        }
        let store = &self.stores[i];
        let mut node = Node::new(identity(i), self.configs[i].clone(), [seed; 32], now);
        let pins: Vec<_> = store.pins.iter().map(|(p, k)| (*p, *k)).collect();
        node.import_pins(&pins);
        for s in store.sessions.values() {
            node.restore_session(s, now).unwrap();
        }
        for ((to, id), (payload, expires)) in &store.outbox {
            node.restore_message(*to, *id, payload, *expires).unwrap();
        }
        for ((from, id), at) in &store.seen {
            node.restore_seen(*from, *id, *at);
        }
        self.nodes[i] = node;
        for &l in &mine {
            let (a, b) = self.links[l];
            self.connect(a, b);
        }
    }

    pub fn take_events(&mut self, i: usize) -> Vec<Event> {
        self.collect();
        std::mem::take(&mut self.events[i])
    }

    pub fn total_packets_out(&self) -> u64 {
        self.nodes.iter().map(|n| n.stats().packets_out).sum()
    }
}

pub fn received(events: &[Event], payload: &[u8]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::MessageReceived { payload: p, .. } if p == payload))
        .count()
}

pub fn confirmed(events: &[Event], id: mesh::node::MessageId) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::DeliveryConfirmed { id: i, .. } if *i == id))
        .count()
}
