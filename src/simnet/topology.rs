//! The topologies `simulate` and the tests build on `hal::sim::Topology`: a line, a grid, and a connected random
//! geometric graph whose density is a multiple of the range that just connects it.
//!
//! Invariant: every topology is a pure function of its arguments (the random one of its seed).

use hal::sim::{LinkParams, SimError, Topology};

/// The topologies `simulate` and the tests build, every edge with `params`. A random geometric graph uses
/// `range_factor` × [`Topology::connecting_range`] as radio range (1.0: just connected, sparse, with bridges).
pub fn build_topology(
    kind: TopologyKind,
    nodes: usize,
    params: LinkParams,
    seed: u64,
    range_factor: f64,
) -> Result<Topology, SimError> {
    match kind {
        TopologyKind::Line => Topology::line(nodes, params),
        TopologyKind::Grid => {
            let cols = (nodes as f64).sqrt().ceil().max(1.0) as usize;
            let mut t = Topology::new(nodes);
            for i in 0..nodes {
                if (i + 1) % cols != 0 && i + 1 < nodes {
                    t.add_edge(i, i + 1, params)?;
                }
                if i + cols < nodes {
                    t.add_edge(i, i + cols, params)?;
                }
            }
            Ok(t)
        }
        TopologyKind::Random => {
            let side = 100.0;
            let range = Topology::connecting_range(nodes, side) * range_factor;
            Topology::random_geometric(nodes, side, range, params, seed)
        }
    }
}

/// Which topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TopologyKind {
    /// 0–1–2–…: n-1 hops end to end.
    Line,
    /// A square-ish grid, 4 neighbours each.
    Grid,
    /// A connected random geometric graph.
    Random,
}

impl TopologyKind {
    /// The name used on the command line and in JSON (`line`, `grid`, `random`).
    pub fn name(self) -> &'static str {
        match self {
            TopologyKind::Line => "line",
            TopologyKind::Grid => "grid",
            TopologyKind::Random => "random",
        }
    }
}
