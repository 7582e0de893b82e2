//! Who can hear whom in the simulated medium: an undirected graph whose edges carry `LinkParams`, built by hand
//! (`Topology::new` + `add_edge`) or as a seeded random geometric graph (nodes in a square, an edge between any two
//! within radio range, RSSI falling with distance).
//!
//! Invariant: adjacency is symmetric (an edge a–b is stored at both a and b with the same parameters), each node's
//! list is sorted by peer index with no duplicates and no self-loops, and every stored `LinkParams` is valid.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::config::{LinkParams, SimError};

/// One direction of an edge as stored at a node.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Edge {
    peer: usize,
    params: LinkParams,
}

/// The medium's graph: which nodes are in range of each other, and how each link behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct Topology {
    adjacency: Vec<Vec<Edge>>,
    positions: Vec<(f64, f64)>,
}

/// Placements `random_geometric` tries before it gives up.
const GEOMETRIC_ATTEMPTS: u32 = 100;

impl Topology {
    /// `nodes` nodes and no edges.
    pub fn new(nodes: usize) -> Self {
        Topology {
            adjacency: vec![Vec::new(); nodes],
            positions: Vec::new(),
        }
    }

    /// A line 0–1–2–…–(n-1), every edge with `params`.
    pub fn line(nodes: usize, params: LinkParams) -> Result<Self, SimError> {
        let mut t = Topology::new(nodes);
        for i in 1..nodes {
            t.add_edge(i - 1, i, params)?;
        }
        Ok(t)
    }

    /// A random geometric graph: `nodes` points placed uniformly in a `side`×`side` square (seeded), an edge between
    /// any two closer than `range`, each edge with `params` except its RSSI, which falls linearly from -40 dBm at
    /// distance 0 to -90 dBm at `range`. Placements are redrawn until the graph is connected; after 100 failures
    /// it returns [`SimError::NotConnected`]. [`Topology::connecting_range`] suggests a range.
    pub fn random_geometric(
        nodes: usize,
        side: f64,
        range: f64,
        params: LinkParams,
        seed: u64,
    ) -> Result<Self, SimError> {
        params.validate()?;
        if !(side > 0.0 && side.is_finite() && range > 0.0 && range.is_finite()) {
            return Err(SimError::InvalidConfig(format!(
                "side {side} and range {range} must be positive"
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..GEOMETRIC_ATTEMPTS {
            let positions: Vec<(f64, f64)> = (0..nodes)
                .map(|_| (unit(&mut rng) * side, unit(&mut rng) * side))
                .collect();
            let mut t = Topology::new(nodes);
            let range2 = range * range;
            for a in 0..nodes {
                for b in a + 1..nodes {
                    let (dx, dy) = (
                        positions[a].0 - positions[b].0,
                        positions[a].1 - positions[b].1,
                    );
                    let d2 = dx * dx + dy * dy;
                    if d2 < range2 {
                        // sqrt is exactly rounded (IEEE 754), so the RSSI is the same on every platform.
                        let rssi = (-40.0 - 50.0 * d2.sqrt() / range)
                            .round()
                            .clamp(-127.0, 0.0) as i8;
                        t.add_edge(a, b, LinkParams { rssi, ..params })?;
                    }
                }
            }
            if t.is_connected() {
                t.positions = positions;
                return Ok(t);
            }
        }
        Err(SimError::NotConnected {
            nodes,
            range,
            attempts: GEOMETRIC_ATTEMPTS,
        })
    }

    /// A radio range that makes a random geometric graph of `nodes` nodes in a `side`×`side` square connected with
    /// high probability: 1.3 × side × sqrt(ln n / (π n)), the connectivity threshold with a margin.
    pub fn connecting_range(nodes: usize, side: f64) -> f64 {
        let n = nodes.max(2) as f64;
        1.3 * side * (n.ln() / (core::f64::consts::PI * n)).sqrt()
    }

    /// Adds (or replaces) the edge a–b with `params`.
    pub fn add_edge(&mut self, a: usize, b: usize, params: LinkParams) -> Result<(), SimError> {
        params.validate()?;
        let count = self.adjacency.len();
        for node in [a, b] {
            if node >= count {
                return Err(SimError::NoSuchNode { node, count });
            }
        }
        if a == b {
            return Err(SimError::InvalidConfig(format!(
                "edge from node {a} to itself"
            )));
        }
        for (from, to) in [(a, b), (b, a)] {
            let list = &mut self.adjacency[from];
            match list.binary_search_by_key(&to, |e| e.peer) {
                Ok(i) => list[i].params = params,
                Err(i) => list.insert(i, Edge { peer: to, params }),
            }
        }
        Ok(())
    }

    /// How many nodes the graph has.
    pub fn node_count(&self) -> usize {
        self.adjacency.len()
    }

    /// How many (undirected) edges the graph has.
    pub fn edge_count(&self) -> usize {
        self.adjacency.iter().map(Vec::len).sum::<usize>() / 2
    }

    /// The parameters of edge a–b, `None` if they are not in range (or either index is out of bounds).
    pub fn edge(&self, a: usize, b: usize) -> Option<&LinkParams> {
        let list = self.adjacency.get(a)?;
        let i = list.binary_search_by_key(&b, |e| e.peer).ok()?;
        list.get(i).map(|e| &e.params)
    }

    /// The nodes in range of `node`, in increasing index order, with their edge parameters.
    pub fn neighbours(&self, node: usize) -> impl Iterator<Item = (usize, &LinkParams)> + '_ {
        self.adjacency
            .get(node)
            .into_iter()
            .flatten()
            .map(|e| (e.peer, &e.params))
    }

    /// Where `node` was placed, for geometric topologies.
    pub fn position(&self, node: usize) -> Option<(f64, f64)> {
        self.positions.get(node).copied()
    }

    /// Whether every node can reach every other over edges (an empty or one-node graph is connected).
    pub fn is_connected(&self) -> bool {
        let n = self.adjacency.len();
        if n <= 1 {
            return true;
        }
        let mut seen = vec![false; n];
        let mut stack = vec![0usize];
        seen[0] = true;
        let mut reached = 1;
        while let Some(node) = stack.pop() {
            for e in &self.adjacency[node] {
                if !seen[e.peer] {
                    seen[e.peer] = true;
                    reached += 1;
                    stack.push(e.peer);
                }
            }
        }
        reached == n
    }
}

/// A uniform draw in [0, 1) with 53 bits of precision.
pub(crate) fn unit(rng: &mut impl RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_are_symmetric_sorted_and_replaced() {
        let mut t = Topology::new(4);
        let p = LinkParams::default();
        t.add_edge(2, 0, p).unwrap();
        t.add_edge(0, 1, p).unwrap();
        t.add_edge(0, 2, LinkParams { rssi: -80, ..p }).unwrap();
        assert_eq!(t.edge_count(), 2);
        assert_eq!(
            t.neighbours(0).map(|(n, _)| n).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(t.edge(2, 0).unwrap().rssi, -80);
        assert_eq!(t.edge(0, 2).unwrap().rssi, -80);
        assert!(t.edge(0, 3).is_none());
        assert!(t.edge(9, 0).is_none());
        assert!(!t.is_connected());
        t.add_edge(3, 1, p).unwrap();
        assert!(t.is_connected());
    }

    #[test]
    fn bad_edges_are_refused() {
        let mut t = Topology::new(2);
        let p = LinkParams::default();
        assert_eq!(
            t.add_edge(0, 5, p),
            Err(SimError::NoSuchNode { node: 5, count: 2 })
        );
        assert!(t.add_edge(1, 1, p).is_err());
        assert!(t.add_edge(0, 1, LinkParams { att_mtu: 10, ..p }).is_err());
        assert_eq!(t.edge_count(), 0);
    }

    #[test]
    fn line_and_trivial_connectivity() {
        let t = Topology::line(5, LinkParams::default()).unwrap();
        assert_eq!(t.edge_count(), 4);
        assert!(t.is_connected());
        assert!(Topology::new(0).is_connected());
        assert!(Topology::new(1).is_connected());
        assert!(!Topology::new(2).is_connected());
    }

    #[test]
    fn geometric_rejects_bad_geometry() {
        let p = LinkParams::default();
        assert!(Topology::random_geometric(10, 0.0, 1.0, p, 1).is_err());
        assert!(Topology::random_geometric(10, 1.0, f64::NAN, p, 1).is_err());
        let err = Topology::random_geometric(50, 1000.0, 1.0, p, 1).unwrap_err();
        assert!(
            matches!(err, SimError::NotConnected { nodes: 50, .. }),
            "{err}"
        );
    }

    #[test]
    fn unit_draws_stay_in_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..1000 {
            let u = unit(&mut rng);
            assert!((0.0..1.0).contains(&u));
        }
    }
}
