//! Helpers shared by the simulator's integration tests: small media, connecting two nodes, and running virtual
//! time while recording every event every node sees.
//!
//! Invariant: nothing here reads a clock; every run is a function of the medium's seed and the calls made.
#![allow(dead_code)]

use std::time::Duration;

use hal::sim::{LinkParams, Medium, MediumConfig, SimInstant, Topology};
use hal::{Advertisement, LinkId, Radio, RadioEvent, Role};

/// The service UUID the tests advertise.
pub const SERVICE: u128 = 0x6d65_7368_6e6f_6465_0000_0000_0000_0001;

/// One event as a node saw it: (time in µs, node, event).
pub type Traced = (u64, usize, RadioEvent);

/// A medium of `nodes` nodes on a line, every edge with `params`.
pub fn line(nodes: usize, params: LinkParams, config: MediumConfig, seed: u64) -> Medium {
    Medium::new(config, Topology::line(nodes, params).unwrap(), seed).unwrap()
}

/// Link parameters without jitter or loss and with a fixed latency.
pub fn clean(latency_ms: u64, att_mtu: u16) -> LinkParams {
    LinkParams {
        loss: 0.0,
        latency: Duration::from_millis(latency_ms),
        jitter: Duration::ZERO,
        att_mtu,
        rssi: -55,
    }
}

/// An advertisement carrying `node` as its data.
pub fn advert(node: usize) -> Advertisement {
    Advertisement::new(SERVICE, &(node as u64).to_be_bytes()).unwrap()
}

/// Drains every event node `node` has ready.
pub fn drain(medium: &mut Medium, node: usize) -> Vec<RadioEvent> {
    let mut radio = medium.radio(node).unwrap();
    std::iter::from_fn(|| radio.poll_event()).collect()
}

/// Steps the medium until `until`, recording every event of every node (in the order `take_ready` lists nodes).
pub fn run_until(medium: &mut Medium, until: SimInstant, trace: &mut Vec<Traced>) {
    let mut ready = Vec::new();
    while let Some(t) = medium.next_wakeup().filter(|&t| t <= until) {
        medium.advance(t);
        medium.take_ready(&mut ready);
        for &node in &ready {
            for event in drain(medium, node) {
                trace.push((t.as_micros(), node, event));
            }
        }
    }
    medium.advance(until);
}

/// Has `peripheral` advertise and `central` connect to it; runs until both see `LinkUp` and returns their link ids.
pub fn connect(medium: &mut Medium, central: usize, peripheral: usize) -> (LinkId, LinkId) {
    medium
        .radio(peripheral)
        .unwrap()
        .start_advertising(&advert(peripheral))
        .unwrap();
    let address = Medium::address_of(peripheral);
    let id = medium.radio(central).unwrap().connect(address).unwrap();
    let mut trace = Vec::new();
    let until = medium.now() + medium.config().connect_delay;
    run_until(medium, until, &mut trace);
    let mut ids = (None, None);
    for (_, node, event) in trace {
        if let RadioEvent::LinkUp { link, role, .. } = event {
            match (node, role) {
                (n, Role::Central) if n == central && link == id => ids.0 = Some(link),
                (n, Role::Peripheral) if n == peripheral => ids.1 = Some(link),
                _ => {}
            }
        }
    }
    (
        ids.0.expect("central LinkUp"),
        ids.1.expect("peripheral LinkUp"),
    )
}

/// The packets `node` received in `trace`, in order.
pub fn packets_at(trace: &[Traced], node: usize) -> Vec<Vec<u8>> {
    trace
        .iter()
        .filter(|(_, n, _)| *n == node)
        .filter_map(|(_, _, e)| match e {
            RadioEvent::Packet { data, .. } => Some(data.clone()),
            _ => None,
        })
        .collect()
}

/// Steps the medium for `span` of virtual time from now, recording events (see [`run_until`]).
pub fn run_for(medium: &mut Medium, span: Duration, trace: &mut Vec<Traced>) {
    let until = medium.now() + span;
    run_until(medium, until, trace);
}
