//! Shared harness of the multi-node tests: a `SimNet` in virtual time, a fast-announcing node configuration, and a
//! record of every message received (payload, receiver) → count, so tests assert exactly-once delivery.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use hal::sim::{LinkParams, MediumConfig, SimInstant, Topology};
use mesh::node::{Event, NodeConfig};
use mesh::time::Duration;
use meshnode::simnet::{NetConfig, NetEvent, NetEventKind, SimNet};

/// Defaults, but announces and acks fast enough for scenarios of tens of virtual seconds.
pub fn test_node_config() -> NodeConfig {
    let mut c = NodeConfig::default();
    let r = &mut c.route;
    r.hello_interval = Duration::from_secs(3);
    r.neighbour_timeout = Duration::from_secs(10);
    r.announce_interval = Duration::from_secs(5);
    r.announce_jitter = Duration::from_millis(500);
    r.announce_soon = Duration::from_millis(500);
    r.announce_min_gap = Duration::from_secs(1);
    r.peer_timeout = Duration::from_secs(60);
    r.ack_timeout = Duration::from_secs(1);
    r.ack_backoff_factor = 1;
    r.max_attempts = 10;
    c.session.handshake_retry = Duration::from_secs(1);
    c.session.handshake_refill = Duration::from_millis(200);
    c
}

/// A line of `n` nodes, every edge with `loss`.
pub fn line(n: usize, loss: f64) -> Topology {
    Topology::line(
        n,
        LinkParams {
            loss,
            ..LinkParams::default()
        },
    )
    .expect("valid line")
}

/// A `cols`×`rows` grid, every edge with `loss`.
pub fn grid(cols: usize, rows: usize, loss: f64) -> Topology {
    let p = LinkParams {
        loss,
        ..LinkParams::default()
    };
    let mut t = Topology::new(cols * rows);
    for r in 0..rows {
        for c in 0..cols {
            let i = r * cols + c;
            if c + 1 < cols {
                t.add_edge(i, i + 1, p).expect("edge");
            }
            if r + 1 < rows {
                t.add_edge(i, i + cols, p).expect("edge");
            }
        }
    }
    t
}

/// A network under test and what it delivered.
pub struct Run {
    pub net: SimNet,
    pub seed: u64,
    /// (payload, receiver) → deliveries.
    pub got: HashMap<(Vec<u8>, usize), u32>,
    /// Every event seen, in order.
    pub log: Vec<NetEvent>,
}

impl Run {
    /// A network over `topology` with the test configuration; `tweak` may change the runtime config.
    pub fn new(topology: Topology, seed: u64, tweak: impl FnOnce(&mut NetConfig)) -> Run {
        let mut config = NetConfig {
            node: test_node_config(),
            seed,
            ..NetConfig::default()
        };
        tweak(&mut config);
        let medium = MediumConfig {
            scan_interval: StdDuration::from_millis(300),
            ..MediumConfig::default()
        };
        let net = SimNet::new(medium, topology, config).expect("network");
        Run {
            net,
            seed,
            got: HashMap::new(),
            log: Vec::new(),
        }
    }

    /// Runs to `secs` virtual seconds, recording deliveries.
    pub fn run_to(&mut self, secs: f64) {
        let end = SimInstant::from_micros((secs * 1e6) as u64);
        while self.net.now() < end {
            let next = (self.net.now() + StdDuration::from_millis(250)).min(end);
            self.net.run_until(next);
            self.absorb();
        }
    }

    fn absorb(&mut self) {
        for e in self.net.take_events() {
            if let NetEventKind::Node(Event::MessageReceived { payload, .. }) = &e.kind {
                *self.got.entry((payload.clone(), e.node)).or_insert(0) += 1;
            }
            self.log.push(e);
        }
    }

    /// Node `from` sends `text` privately to node `to`.
    pub fn send(&mut self, from: usize, to: usize, text: &str) {
        let peer = self.net.node_id(to);
        let r = self.net.send(from, peer, text.as_bytes());
        assert!(
            r.is_ok(),
            "seed {}: send {from} -> {to} refused: {r:?}",
            self.seed
        );
    }

    /// Node `from` broadcasts `text`.
    pub fn broadcast(&mut self, from: usize, text: &str) {
        let r = self.net.broadcast(from, text.as_bytes());
        assert!(
            r.is_ok(),
            "seed {}: broadcast from {from} refused: {r:?}",
            self.seed
        );
    }

    /// How many times node `at` received `text`.
    pub fn received(&self, text: &str, at: usize) -> u32 {
        self.got
            .get(&(text.as_bytes().to_vec(), at))
            .copied()
            .unwrap_or(0)
    }

    /// When node `at` first received `text`, if it did.
    pub fn received_at(&self, text: &str, at: usize) -> Option<SimInstant> {
        self.log.iter().find_map(|e| match &e.kind {
            NetEventKind::Node(Event::MessageReceived { payload, .. })
                if e.node == at && payload == text.as_bytes() =>
            {
                Some(e.at)
            }
            _ => None,
        })
    }

    /// Asserts `text` reached each of `nodes` exactly once.
    pub fn assert_once(&self, text: &str, nodes: impl IntoIterator<Item = usize>) {
        for n in nodes {
            let c = self.received(text, n);
            assert_eq!(
                c, 1,
                "seed {}: {text:?} delivered {c} times at node {n} (expected exactly once)",
                self.seed
            );
        }
    }
}
