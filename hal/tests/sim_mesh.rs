//! Many nodes on the simulated medium: random geometric topologies, discovery and connection only in range, the
//! same seed giving the same event trace bit for bit (and another seed another), and a 500-node run.
//!
//! Invariant: every test is seeded and runs in virtual time; the harness below reacts to events the way a node
//! runtime would (advertise, scan, connect on discovery, send on every link) and records everything it sees.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{advert, clean, drain, line, run_for, Traced, SERVICE};
use hal::sim::{LinkParams, Medium, MediumConfig, SimInstant, Topology};
use hal::{LinkDownReason, LinkId, Radio, RadioEvent};

#[test]
fn geometric_topologies_are_connected_seeded_and_range_bound() {
    let side = 1_000.0;
    let range = Topology::connecting_range(200, side);
    for seed in 0..5 {
        let t = Topology::random_geometric(200, side, range, LinkParams::default(), seed).unwrap();
        assert!(t.is_connected(), "seed {seed}");
        assert_eq!(t.node_count(), 200);
        for a in 0..200 {
            let (ax, ay) = t.position(a).unwrap();
            assert!((0.0..side).contains(&ax) && (0.0..side).contains(&ay));
            for b in 0..200 {
                let (bx, by) = t.position(b).unwrap();
                let d = ((ax - bx).powi(2) + (ay - by).powi(2)).sqrt();
                let edge = t.edge(a, b);
                assert_eq!(edge.is_some(), a != b && d < range, "{a}-{b} at {d}");
                if let Some(p) = edge {
                    assert!((-90..=-40).contains(&p.rssi), "rssi {}", p.rssi);
                }
            }
        }
    }
    let again = Topology::random_geometric(200, side, range, LinkParams::default(), 3).unwrap();
    assert_eq!(
        again,
        Topology::random_geometric(200, side, range, LinkParams::default(), 3).unwrap()
    );
    assert_ne!(
        again,
        Topology::random_geometric(200, side, range, LinkParams::default(), 4).unwrap()
    );
}

fn discovered_peers(events: &[RadioEvent]) -> Vec<(hal::PeerAddress, i8)> {
    events
        .iter()
        .filter_map(|e| match e {
            RadioEvent::Discovered {
                peer,
                rssi,
                advertisement,
            } => {
                assert_eq!(advertisement.service_uuid(), SERVICE);
                Some((*peer, *rssi))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn discovery_and_connection_only_in_range() {
    let mut m = line(3, clean(5, 247), MediumConfig::default(), 11);
    m.radio(0).unwrap().start_scanning().unwrap();
    m.radio(0).unwrap().start_scanning().unwrap();
    m.radio(1).unwrap().start_advertising(&advert(1)).unwrap();
    m.radio(2).unwrap().start_advertising(&advert(2)).unwrap();
    m.radio(2).unwrap().start_scanning().unwrap();
    let mut trace = Vec::new();
    run_for(&mut m, Duration::from_secs(2), &mut trace);
    let at0: Vec<RadioEvent> = trace
        .iter()
        .filter(|(_, n, _)| *n == 0)
        .map(|(_, _, e)| e.clone())
        .collect();
    let heard = discovered_peers(&at0);
    // Once per 500 ms scan interval, from a random first offset: 4 times in 2 s; only node 1 is in range.
    assert_eq!(heard, vec![(Medium::address_of(1), -55); 4]);
    assert!(
        matches!(&at0[0], RadioEvent::Discovered { advertisement, .. } if advertisement.data() == 1u64.to_be_bytes())
    );
    // Node 2 hears node 1 (it advertises too), node 1 is not scanning and hears nothing.
    let at2: Vec<RadioEvent> = trace
        .iter()
        .filter(|(_, n, _)| *n == 2)
        .map(|(_, _, e)| e.clone())
        .collect();
    assert_eq!(
        discovered_peers(&at2),
        vec![(Medium::address_of(1), -55); at2.len()]
    );
    assert!(!at2.is_empty());
    assert!(!trace.iter().any(|(_, n, _)| *n == 1));

    // Out of range: the connect fails after the connection delay.
    let far = m.radio(0).unwrap().connect(Medium::address_of(2)).unwrap();
    m.radio(0).unwrap().stop_scanning().unwrap();
    m.radio(2).unwrap().stop_scanning().unwrap();
    let mut trace = Vec::new();
    run_for(&mut m, Duration::from_secs(2), &mut trace);
    assert_eq!(
        trace,
        vec![(
            trace[0].0,
            0,
            RadioEvent::LinkDown {
                link: far,
                reason: LinkDownReason::ConnectFailed
            }
        )]
    );

    // In range but not advertising: fails too.
    m.radio(1).unwrap().stop_advertising().unwrap();
    let quiet = m.radio(0).unwrap().connect(Medium::address_of(1)).unwrap();
    let mut trace = Vec::new();
    run_for(&mut m, Duration::from_secs(1), &mut trace);
    assert_eq!(
        trace.iter().map(|(_, _, e)| e.clone()).collect::<Vec<_>>(),
        vec![RadioEvent::LinkDown {
            link: quiet,
            reason: LinkDownReason::ConnectFailed
        }]
    );

    // A crashed advertiser is not heard.
    m.radio(1).unwrap().start_advertising(&advert(1)).unwrap();
    m.schedule_crash(m.now(), 1).unwrap();
    m.radio(0).unwrap().start_scanning().unwrap();
    let mut trace = Vec::new();
    run_for(&mut m, Duration::from_secs(2), &mut trace);
    assert!(
        discovered_peers(&drain(&mut m, 0)).is_empty() && trace.iter().all(|(_, n, _)| *n != 0)
    );
}

#[test]
fn peripheral_at_its_link_limit_refuses_connections() {
    let mut t = Topology::new(3);
    t.add_edge(0, 2, LinkParams::default()).unwrap();
    t.add_edge(1, 2, LinkParams::default()).unwrap();
    let mut m = Medium::new(
        MediumConfig {
            max_links: 1,
            ..MediumConfig::default()
        },
        t,
        12,
    )
    .unwrap();
    let _ = common::connect(&mut m, 0, 2);
    let id = m.radio(1).unwrap().connect(Medium::address_of(2)).unwrap();
    let mut trace = Vec::new();
    run_for(&mut m, Duration::from_secs(1), &mut trace);
    assert_eq!(
        trace
            .iter()
            .map(|(_, n, e)| (*n, e.clone()))
            .collect::<Vec<_>>(),
        vec![(
            1,
            RadioEvent::LinkDown {
                link: id,
                reason: LinkDownReason::ConnectFailed
            }
        )]
    );
}

/// A node as a harness would keep it: its links and the peers it is connecting to.
#[derive(Default)]
struct HarnessNode {
    links: Vec<(LinkId, usize)>,
    connecting: Vec<(LinkId, usize)>,
    was_alive: bool,
}

/// Runs `n` nodes on a random geometric topology for `seconds` of virtual time: everyone advertises and scans,
/// connects to discovered peers with a higher index (up to 3 links), and sends one packet per link every 20 ms.
/// Node 3 crashes at 2 s and restarts at 3 s. Returns every event seen and the total stats.
fn scenario(seed: u64, n: usize, seconds: u64) -> (Vec<Traced>, hal::sim::NodeStats) {
    let params = LinkParams {
        loss: 0.05,
        latency: Duration::from_millis(4),
        jitter: Duration::from_millis(3),
        att_mtu: 64,
        rssi: 0,
    };
    let side = 100.0;
    let topology =
        Topology::random_geometric(n, side, Topology::connecting_range(n, side), params, seed)
            .unwrap();
    let config = MediumConfig {
        random_link_lifetime: Some(Duration::from_secs(3)),
        ..MediumConfig::default()
    };
    let mut m = Medium::new(config, topology, seed).unwrap();
    m.schedule_crash(SimInstant::from_secs(2), 3).unwrap();
    m.schedule_restart(SimInstant::from_secs(3), 3).unwrap();
    let mut nodes: Vec<HarnessNode> = (0..n).map(|_| HarnessNode::default()).collect();
    let mut trace = Vec::new();
    let mut ready = Vec::new();
    let tick = Duration::from_millis(20);
    let mut next_tick = SimInstant::ZERO;
    let end = SimInstant::from_secs(seconds);
    while m.now() < end {
        let t = m.next_wakeup().map_or(next_tick, |w| w.min(next_tick));
        m.advance(t);
        if t == next_tick {
            next_tick = next_tick + tick;
            for (i, node) in nodes.iter_mut().enumerate() {
                let mut radio = m.radio(i).unwrap();
                let alive = radio.start_scanning().is_ok();
                if alive && !node.was_alive {
                    radio.start_advertising(&advert(i)).unwrap();
                }
                node.was_alive = alive;
                for &(link, _) in &node.links {
                    let _ = radio.send(link, &(t.as_micros() as u32).to_be_bytes());
                }
            }
        }
        m.take_ready(&mut ready);
        for &i in &ready {
            let mut radio = m.radio(i).unwrap();
            let node = &mut nodes[i];
            while let Some(event) = radio.poll_event() {
                match &event {
                    RadioEvent::Discovered { peer, .. } => {
                        let j = u32::from_be_bytes([peer.0[2], peer.0[3], peer.0[4], peer.0[5]])
                            as usize;
                        let known = node
                            .links
                            .iter()
                            .chain(&node.connecting)
                            .any(|&(_, p)| p == j);
                        if j > i && !known && node.links.len() + node.connecting.len() < 3 {
                            if let Ok(link) = radio.connect(*peer) {
                                node.connecting.push((link, j));
                            }
                        }
                    }
                    RadioEvent::LinkUp { link, peer, .. } => {
                        let j = u32::from_be_bytes([peer.0[2], peer.0[3], peer.0[4], peer.0[5]])
                            as usize;
                        node.connecting.retain(|&(l, _)| l != *link);
                        node.links.push((*link, j));
                    }
                    RadioEvent::LinkDown { link, .. } => {
                        node.connecting.retain(|&(l, _)| l != *link);
                        node.links.retain(|&(l, _)| l != *link);
                    }
                    RadioEvent::Packet { .. } | RadioEvent::Writable { .. } => {}
                }
                trace.push((t.as_micros(), i, event));
            }
        }
    }
    (trace, m.total_stats())
}

#[test]
fn same_seed_same_trace_other_seed_other_trace() {
    let (a, stats_a) = scenario(99, 40, 5);
    let (b, stats_b) = scenario(99, 40, 5);
    assert_eq!(a.len(), b.len());
    assert!(a == b, "traces of the same seed differ");
    assert_eq!(stats_a, stats_b);
    let kinds: BTreeSet<&str> = a
        .iter()
        .map(|(_, _, e)| match e {
            RadioEvent::Discovered { .. } => "discovered",
            RadioEvent::LinkUp { .. } => "up",
            RadioEvent::LinkDown { .. } => "down",
            RadioEvent::Packet { .. } => "packet",
            RadioEvent::Writable { .. } => "writable",
        })
        .collect();
    assert!(
        ["discovered", "up", "down", "packet"]
            .iter()
            .all(|k| kinds.contains(k)),
        "{kinds:?}"
    );
    assert!(
        stats_a.lost_random > 0 && stats_a.lost_link_down > 0 && stats_a.crashes == 1,
        "{stats_a:?}"
    );
    let (c, _) = scenario(100, 40, 5);
    assert!(a != c, "traces of different seeds are equal");
}

#[test]
fn five_hundred_nodes_run() {
    let (trace, stats) = scenario(5, 500, 3);
    assert!(stats.links_up >= 500, "{stats:?}");
    assert!(stats.delivered > 10_000, "{stats:?}");
    assert_eq!(stats.events_dropped, 0);
    assert!(!trace.is_empty());
}
