//! Helpers shared by the UDP backend's integration tests: loopback radios on ephemeral ports that list each other
//! as static peers, and bounded polling loops that record every event each radio reports.
//!
//! Invariant: every loop here ends by a deadline of a few seconds (a test fails rather than hangs); the sleeps in
//! them only keep the loop from spinning, and correctness never depends on their length.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hal::udp::{peer_address, UdpConfig, UdpRadio};
use hal::{Advertisement, LinkId, PeerAddress, Radio, RadioEvent, Role};

/// The service UUID the tests advertise.
pub const SERVICE: u128 = 0x6d65_7368_6e6f_6465_0000_0000_0000_0002;

/// How long any polling loop may run before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// A loopback configuration with fast beacons and a keepalive timeout long enough that a loaded machine does not
/// drop links during a test (timeouts are tested in injected time).
pub fn config(att_mtu: u16) -> UdpConfig {
    UdpConfig {
        att_mtu,
        beacon_interval: Duration::from_millis(20),
        keepalive_interval: Duration::from_millis(200),
        keepalive_timeout: Duration::from_secs(2),
        ..UdpConfig::default()
    }
}

/// The advertisement of node `n`.
pub fn advert(n: u8) -> Advertisement {
    Advertisement::new(SERVICE, &[n]).unwrap()
}

/// The address other radios know `radio` by.
pub fn addr_of(radio: &UdpRadio) -> PeerAddress {
    peer_address(radio.local_addr())
}

/// Two radios on 127.0.0.1 with ephemeral ports, each in the other's static peer list.
pub fn pair(a: UdpConfig, b: UdpConfig) -> (UdpRadio, UdpRadio) {
    let mut ra = UdpRadio::new(a).unwrap();
    let mut rb = UdpRadio::new(b).unwrap();
    ra.add_static_peer(SocketAddr::V4(rb.local_addr())).unwrap();
    rb.add_static_peer(SocketAddr::V4(ra.local_addr())).unwrap();
    (ra, rb)
}

/// Polls every radio (real clock) and appends what each reports to `seen[i]` until `done(seen)` holds; panics
/// with `what` and everything seen after [`DEADLINE`].
pub fn pump_until(
    radios: &mut [&mut UdpRadio],
    seen: &mut Vec<Vec<RadioEvent>>,
    what: &str,
    mut done: impl FnMut(&[Vec<RadioEvent>]) -> bool,
) {
    seen.resize(radios.len(), Vec::new());
    let start = Instant::now();
    loop {
        for (i, r) in radios.iter_mut().enumerate() {
            while let Some(e) = r.poll_event() {
                seen[i].push(e);
            }
        }
        if done(seen) {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "timed out waiting for {what}; seen: {seen:#?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Polls every radio at injected time `at` until none has anything more, appending to `seen[i]`.
pub fn settle_at(radios: &mut [&mut UdpRadio], seen: &mut Vec<Vec<RadioEvent>>, at: Instant) {
    seen.resize(radios.len(), Vec::new());
    // Two rounds: what one radio sent in the first is read by the others in the second.
    for _ in 0..3 {
        for (i, r) in radios.iter_mut().enumerate() {
            while let Some(e) = r.poll_event_at(at) {
                seen[i].push(e);
            }
        }
    }
}

/// The first `LinkUp` in `events`: (link, peer, att_mtu, role).
pub fn link_up(events: &[RadioEvent]) -> Option<(LinkId, PeerAddress, u16, Role)> {
    events.iter().find_map(|e| match e {
        RadioEvent::LinkUp {
            link,
            peer,
            att_mtu,
            role,
        } => Some((*link, *peer, *att_mtu, *role)),
        _ => None,
    })
}

/// How many `LinkUp`s `events` holds.
pub fn link_ups(events: &[RadioEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, RadioEvent::LinkUp { .. }))
        .count()
}

/// The packets `events` holds for `link`, in order.
pub fn packets_on(events: &[RadioEvent], link: LinkId) -> Vec<Vec<u8>> {
    events
        .iter()
        .filter_map(|e| match e {
            RadioEvent::Packet { link: l, data } if *l == link => Some(data.clone()),
            _ => None,
        })
        .collect()
}

/// Connects `a` (advertising not needed) to `b` (made to advertise) and returns each end's link id and events.
pub fn connected(a: &mut UdpRadio, b: &mut UdpRadio) -> (LinkId, LinkId) {
    b.start_advertising(&advert(2)).unwrap();
    let la = a.connect(addr_of(b)).unwrap();
    let mut seen = Vec::new();
    pump_until(&mut [a, b], &mut seen, "link up", |s| {
        link_up(&s[0]).is_some() && link_up(&s[1]).is_some()
    });
    let (la2, _, _, role_a) = link_up(&seen[0]).unwrap();
    let (lb, _, _, role_b) = link_up(&seen[1]).unwrap();
    assert_eq!((la2, role_a, role_b), (la, Role::Central, Role::Peripheral));
    (la, lb)
}
