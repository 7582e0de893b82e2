//! What travels over one simulated link: in-order delivery under jitter, random loss within statistical bounds,
//! bounded queues with `QueueFull` then `Writable`, ATT MTU enforcement and the errors for bad commands.
//!
//! Invariant: every test is seeded and runs in virtual time; the expected numbers follow from the seed.

mod common;

use std::time::Duration;

use common::{clean, connect, drain, line, packets_at, run_for};
use hal::sim::{LinkParams, Medium, MediumConfig, SimInstant};
use hal::{LinkId, Radio, RadioErrorKind, RadioEvent, Role};

fn roomy() -> MediumConfig {
    MediumConfig {
        queue_capacity: 20_000,
        tx_interval: Duration::from_micros(100),
        ..MediumConfig::default()
    }
}

#[test]
fn link_up_reports_roles_peers_and_mtu() {
    let mut m = line(2, clean(5, 185), MediumConfig::default(), 1);
    m.radio(1)
        .unwrap()
        .start_advertising(&common::advert(1))
        .unwrap();
    let id = m.radio(0).unwrap().connect(Medium::address_of(1)).unwrap();
    m.advance(SimInstant::from_millis(29));
    assert!(
        drain(&mut m, 0).is_empty(),
        "no LinkUp before the connection delay"
    );
    m.advance(SimInstant::from_millis(30));
    let up0 = drain(&mut m, 0);
    let up1 = drain(&mut m, 1);
    assert_eq!(
        up0,
        vec![RadioEvent::LinkUp {
            link: id,
            peer: Medium::address_of(1),
            att_mtu: 185,
            role: Role::Central
        }]
    );
    assert!(matches!(
        up1.as_slice(),
        [RadioEvent::LinkUp { peer, att_mtu: 185, role: Role::Peripheral, .. }] if *peer == Medium::address_of(0)
    ));
    assert_eq!(m.node_stats(0).unwrap().links_up, 1);
    assert_eq!(m.node_stats(1).unwrap().links_up, 1);
}

#[test]
fn packets_stay_in_order_under_jitter() {
    let params = LinkParams {
        loss: 0.0,
        latency: Duration::from_millis(5),
        jitter: Duration::from_millis(40),
        att_mtu: 23,
        rssi: -50,
    };
    let mut m = line(2, params, roomy(), 7);
    let (a, b) = connect(&mut m, 0, 1);
    let mut trace = Vec::new();
    for i in 0u32..500 {
        m.radio(0).unwrap().send(a, &i.to_be_bytes()).unwrap();
        m.radio(1)
            .unwrap()
            .send(b, &(1_000_000 + i).to_be_bytes())
            .unwrap();
        run_for(&mut m, Duration::from_micros(300), &mut trace);
    }
    run_for(&mut m, Duration::from_secs(1), &mut trace);
    let expect_at_1: Vec<Vec<u8>> = (0u32..500).map(|i| i.to_be_bytes().to_vec()).collect();
    let expect_at_0: Vec<Vec<u8>> = (0u32..500)
        .map(|i| (1_000_000 + i).to_be_bytes().to_vec())
        .collect();
    assert_eq!(packets_at(&trace, 1), expect_at_1);
    assert_eq!(packets_at(&trace, 0), expect_at_0);
    // Jitter really acted: the gaps between arrivals are not all the same.
    let times: Vec<u64> = trace
        .iter()
        .filter(|(_, n, e)| *n == 1 && matches!(e, RadioEvent::Packet { .. }))
        .map(|(t, _, _)| *t)
        .collect();
    let gaps: std::collections::BTreeSet<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.len() > 10, "arrival gaps {gaps:?}");
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn loss_rate_is_within_statistical_bounds() {
    let params = LinkParams {
        loss: 0.10,
        ..LinkParams::default()
    };
    let mut m = line(2, params, roomy(), 2024);
    let (a, _) = connect(&mut m, 0, 1);
    for i in 0u32..10_000 {
        m.radio(0).unwrap().send(a, &i.to_be_bytes()).unwrap();
    }
    let mut trace = Vec::new();
    run_for(&mut m, Duration::from_secs(5), &mut trace);
    let received = packets_at(&trace, 1);
    let stats = *m.node_stats(0).unwrap();
    assert_eq!(stats.sent, 10_000);
    assert_eq!(stats.delivered, received.len() as u64);
    assert_eq!(stats.delivered + stats.lost_random, 10_000);
    assert_eq!(m.node_stats(1).unwrap().received, received.len() as u64);
    assert_eq!(m.packets_in_flight(), 0);
    // Expected 1000 lost, σ = 30: ±4σ.
    assert!(
        (880..=1120).contains(&stats.lost_random),
        "lost {}",
        stats.lost_random
    );
    // Survivors keep their order.
    assert!(received.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn full_queue_refuses_then_signals_writable() {
    let config = MediumConfig {
        queue_capacity: 4,
        tx_interval: Duration::from_millis(2),
        ..MediumConfig::default()
    };
    let mut m = line(2, clean(5, 247), config, 3);
    let (a, _) = connect(&mut m, 0, 1);
    // The first packet leaves the buffer at once (at the next advance); fill the rest.
    for i in 0u8..4 {
        m.radio(0).unwrap().send(a, &[i]).unwrap();
    }
    let err = m.radio(0).unwrap().send(a, &[4]).unwrap_err();
    assert_eq!(err.kind(), RadioErrorKind::QueueFull);
    assert!(err.to_string().contains("4 packets"), "{err}");
    assert_eq!(m.node_stats(0).unwrap().rejected_queue_full, 1);
    assert!(drain(&mut m, 0).is_empty());
    // The first departure (now) frees a slot and raises Writable once.
    m.advance(m.now());
    assert_eq!(drain(&mut m, 0), vec![RadioEvent::Writable { link: a }]);
    m.radio(0).unwrap().send(a, &[4]).unwrap();
    assert_eq!(
        m.radio(0).unwrap().send(a, &[5]).unwrap_err().kind(),
        RadioErrorKind::QueueFull
    );
    let mut trace = Vec::new();
    run_for(&mut m, Duration::from_millis(3), &mut trace);
    assert!(trace
        .iter()
        .any(|(_, n, e)| *n == 0 && *e == RadioEvent::Writable { link: a }));
    assert_eq!(
        m.radio(0).unwrap().send(a, &[5]).map_err(|e| e.kind()),
        Ok(())
    );
    run_for(&mut m, Duration::from_secs(1), &mut trace);
    assert_eq!(
        packets_at(&trace, 1),
        (0u8..6).map(|i| vec![i]).collect::<Vec<_>>()
    );
    // No Writable without a refused send first.
    assert_eq!(
        trace
            .iter()
            .filter(|(_, n, e)| *n == 0 && matches!(e, RadioEvent::Writable { .. }))
            .count(),
        1
    );
}

#[test]
fn queue_drains_at_the_configured_rate() {
    let config = MediumConfig {
        queue_capacity: 100,
        tx_interval: Duration::from_millis(1),
        ..MediumConfig::default()
    };
    let mut m = line(2, clean(10, 247), config, 4);
    let (a, _) = connect(&mut m, 0, 1);
    let start = m.now().as_micros();
    for i in 0u8..50 {
        m.radio(0).unwrap().send(a, &[i]).unwrap();
    }
    let mut trace = Vec::new();
    run_for(&mut m, Duration::from_secs(1), &mut trace);
    let times: Vec<u64> = trace
        .iter()
        .filter(|(_, n, _)| *n == 1)
        .map(|(t, _, _)| t - start)
        .collect();
    let expected: Vec<u64> = (0..50).map(|i| 10_000 + i * 1_000).collect();
    assert_eq!(times, expected);
}

#[test]
fn att_mtu_bounds_the_packet() {
    let mut m = line(2, clean(5, 23), MediumConfig::default(), 5);
    let (a, b) = connect(&mut m, 0, 1);
    m.radio(0).unwrap().send(a, &[7; 20]).unwrap();
    m.radio(1).unwrap().send(b, &[8; 20]).unwrap();
    let err = m.radio(0).unwrap().send(a, &[7; 21]).unwrap_err();
    assert_eq!(err.kind(), RadioErrorKind::PacketTooLong);
    assert_eq!(
        err.to_string(),
        format!("packet of 21 bytes exceeds 20 bytes (ATT MTU - 3) on {a}")
    );
    assert_eq!(
        m.radio(0).unwrap().send(a, &[]).unwrap_err().kind(),
        RadioErrorKind::InvalidArgument
    );
    assert_eq!(m.node_stats(0).unwrap().sent, 1);
    let mut trace = Vec::new();
    run_for(&mut m, Duration::from_secs(1), &mut trace);
    assert_eq!(packets_at(&trace, 1), vec![vec![7; 20]]);
    assert_eq!(packets_at(&trace, 0), vec![vec![8; 20]]);
}

#[test]
fn bad_commands_fail_with_their_kind() {
    let mut m = line(
        3,
        clean(5, 247),
        MediumConfig {
            max_links: 1,
            ..MediumConfig::default()
        },
        6,
    );
    let mut r = m.radio(0).unwrap();
    assert_eq!(
        r.send(LinkId(99), &[1]).unwrap_err().kind(),
        RadioErrorKind::NoSuchLink
    );
    assert_eq!(
        r.disconnect(LinkId(99)).unwrap_err().kind(),
        RadioErrorKind::NoSuchLink
    );
    assert_eq!(
        r.connect(Medium::address_of(0)).unwrap_err().kind(),
        RadioErrorKind::InvalidArgument
    );
    assert_eq!(
        r.connect(Medium::address_of(3)).unwrap_err().kind(),
        RadioErrorKind::InvalidArgument
    );
    assert_eq!(
        r.connect(hal::PeerAddress([1; 6])).unwrap_err().kind(),
        RadioErrorKind::InvalidArgument
    );
    let pending = r.connect(Medium::address_of(1)).unwrap();
    // A link still connecting is not up: nothing can be sent on it yet.
    assert_eq!(
        r.send(pending, &[1]).unwrap_err().kind(),
        RadioErrorKind::NoSuchLink
    );
    let err = r.connect(Medium::address_of(2)).unwrap_err();
    assert_eq!(err.kind(), RadioErrorKind::TooManyLinks);
    assert!(err.to_string().contains("maximum of 1"), "{err}");
    assert!(m.radio(3).is_none());
    assert!(
        m.node_of(Medium::address_of(2)) == Some(2) && m.node_of(Medium::address_of(3)).is_none()
    );
}
