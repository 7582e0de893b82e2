//! Faults in the simulated medium: disconnects, scheduled link drops with packets in flight, random link
//! lifetimes, node crashes and restarts, and the packet accounting that must balance through all of them.
//!
//! Invariant: every test is seeded and runs in virtual time; every link id seen in a `LinkUp` or returned by
//! `connect` is ended by exactly one `LinkDown`.

mod common;

use std::time::Duration;

use common::{advert, clean, connect, drain, line, packets_at, run_for};
use hal::sim::{LinkParams, Medium, MediumConfig, SimInstant};
use hal::{LinkDownReason, Radio, RadioErrorKind, RadioEvent};

fn link_downs(events: &[RadioEvent]) -> Vec<(hal::LinkId, LinkDownReason)> {
    events
        .iter()
        .filter_map(|e| match e {
            RadioEvent::LinkDown { link, reason } => Some((*link, *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn disconnect_reports_local_and_remote() {
    let mut m = line(2, clean(5, 247), MediumConfig::default(), 1);
    let (a, b) = connect(&mut m, 0, 1);
    m.radio(1).unwrap().disconnect(b).unwrap();
    assert_eq!(
        link_downs(&drain(&mut m, 1)),
        vec![(b, LinkDownReason::LocalDisconnect)]
    );
    assert_eq!(
        link_downs(&drain(&mut m, 0)),
        vec![(a, LinkDownReason::RemoteDisconnect)]
    );
    assert_eq!(
        m.radio(0).unwrap().send(a, &[1]).unwrap_err().kind(),
        RadioErrorKind::NoSuchLink
    );
    assert_eq!(
        m.radio(1).unwrap().disconnect(b).unwrap_err().kind(),
        RadioErrorKind::NoSuchLink
    );
}

#[test]
fn abandoning_a_connect_tells_only_the_central() {
    let mut m = line(2, clean(5, 247), MediumConfig::default(), 2);
    m.radio(1).unwrap().start_advertising(&advert(1)).unwrap();
    let id = m.radio(0).unwrap().connect(Medium::address_of(1)).unwrap();
    m.radio(0).unwrap().disconnect(id).unwrap();
    assert_eq!(
        link_downs(&drain(&mut m, 0)),
        vec![(id, LinkDownReason::LocalDisconnect)]
    );
    let mut trace = Vec::new();
    run_for(&mut m, Duration::from_secs(1), &mut trace);
    assert_eq!(trace, vec![]);
    assert_eq!(m.node_stats(0).unwrap().links_down, 1);
    assert_eq!(m.node_stats(1).unwrap().links_up, 0);
}

#[test]
fn scheduled_drop_downs_both_ends_and_loses_packets_in_flight() {
    let mut m = line(2, clean(50, 247), MediumConfig::default(), 3);
    let (a, b) = connect(&mut m, 0, 1);
    for i in 0u8..5 {
        m.radio(0).unwrap().send(a, &[i]).unwrap();
    }
    let drop_at = m.now() + Duration::from_millis(10);
    m.schedule_link_drop(drop_at, 1, 0).unwrap();
    let mut trace = Vec::new();
    run_for(&mut m, Duration::from_secs(1), &mut trace);
    let at0: Vec<RadioEvent> = trace
        .iter()
        .filter(|(_, n, _)| *n == 0)
        .map(|(_, _, e)| e.clone())
        .collect();
    let at1: Vec<RadioEvent> = trace
        .iter()
        .filter(|(_, n, _)| *n == 1)
        .map(|(_, _, e)| e.clone())
        .collect();
    assert_eq!(
        at0,
        vec![RadioEvent::LinkDown {
            link: a,
            reason: LinkDownReason::Timeout
        }]
    );
    assert_eq!(
        at1,
        vec![RadioEvent::LinkDown {
            link: b,
            reason: LinkDownReason::Timeout
        }]
    );
    assert!(trace.iter().all(|(t, _, _)| *t == drop_at.as_micros()));
    let s = m.node_stats(0).unwrap();
    assert_eq!((s.sent, s.delivered, s.lost_link_down), (5, 0, 5));
    assert_eq!(m.packets_in_flight(), 0);
    assert_eq!(
        m.radio(0).unwrap().send(a, &[9]).unwrap_err().kind(),
        RadioErrorKind::NoSuchLink
    );
    // The two can connect again, under new ids.
    let (a2, b2) = connect(&mut m, 0, 1);
    assert!(a2 != a && b2 != b);
    assert!(m.schedule_link_drop(SimInstant::ZERO, 0, 2).is_err());
}

#[test]
fn crash_takes_links_down_at_both_ends_and_restart_gives_a_fresh_radio() {
    let mut m = line(3, clean(20, 247), MediumConfig::default(), 4);
    let (l01, l10) = connect(&mut m, 0, 1);
    let (l21, l12) = connect(&mut m, 2, 1);
    // Node 1 receives a packet it never polls, and has one of its own in flight when it crashes.
    m.radio(0).unwrap().send(l01, b"unpolled").unwrap();
    m.advance(m.now() + Duration::from_millis(25));
    m.radio(1).unwrap().send(l12, b"in flight").unwrap();
    m.schedule_crash(m.now(), 1).unwrap();
    m.advance(m.now());
    assert!(!m.is_alive(1));
    assert_eq!(
        drain(&mut m, 0),
        vec![RadioEvent::LinkDown {
            link: l01,
            reason: LinkDownReason::Timeout
        }]
    );
    assert_eq!(
        drain(&mut m, 2),
        vec![RadioEvent::LinkDown {
            link: l21,
            reason: LinkDownReason::Timeout
        }]
    );
    // The crashed radio dropped its unpolled packet and reports its own links reset, in link id order.
    let at1 = drain(&mut m, 1);
    assert_eq!(
        link_downs(&at1),
        vec![
            (l10, LinkDownReason::RadioReset),
            (l12, LinkDownReason::RadioReset)
        ]
    );
    assert_eq!(at1.len(), 2);
    let mut r1 = m.radio(1).unwrap();
    assert_eq!(
        r1.start_advertising(&advert(1)).unwrap_err().kind(),
        RadioErrorKind::Unavailable
    );
    assert_eq!(
        r1.send(l10, &[1]).unwrap_err().kind(),
        RadioErrorKind::Unavailable
    );
    assert_eq!(
        r1.connect(Medium::address_of(0)).unwrap_err().kind(),
        RadioErrorKind::Unavailable
    );
    // Connecting to a crashed node fails.
    let id = m.radio(0).unwrap().connect(Medium::address_of(1)).unwrap();
    let mut trace = Vec::new();
    run_for(&mut m, Duration::from_millis(100), &mut trace);
    assert_eq!(
        trace,
        vec![(
            trace[0].0,
            0,
            RadioEvent::LinkDown {
                link: id,
                reason: LinkDownReason::ConnectFailed
            }
        )]
    );
    // Restart: inert no more, no links, not advertising until told; new links work.
    m.schedule_restart(m.now(), 1).unwrap();
    m.advance(m.now());
    assert!(m.is_alive(1));
    assert!(drain(&mut m, 1).is_empty());
    let (l01b, l10b) = connect(&mut m, 0, 1);
    assert!(
        l10b != l10 && l10b != l12,
        "link ids are not reused after a restart"
    );
    m.radio(0).unwrap().send(l01b, b"again").unwrap();
    let mut trace = Vec::new();
    run_for(&mut m, Duration::from_millis(100), &mut trace);
    assert_eq!(packets_at(&trace, 1), vec![b"again".to_vec()]);
    let s1 = m.node_stats(1).unwrap();
    assert_eq!((s1.crashes, s1.lost_link_down), (1, 1));
    assert_eq!(m.total_stats().crashes, 1);
}

#[test]
fn crash_and_restart_of_a_running_or_crashed_node_are_idempotent() {
    let mut m = line(2, clean(5, 247), MediumConfig::default(), 5);
    m.schedule_restart(SimInstant::ZERO, 0).unwrap();
    m.schedule_crash(SimInstant::from_millis(1), 0).unwrap();
    m.schedule_crash(SimInstant::from_millis(2), 0).unwrap();
    m.advance(SimInstant::from_millis(3));
    assert!(!m.is_alive(0));
    assert_eq!(m.node_stats(0).unwrap().crashes, 1);
    assert!(m.schedule_crash(SimInstant::ZERO, 2).is_err());
    assert!(m.schedule_restart(SimInstant::ZERO, 7).is_err());
}

#[test]
fn random_link_lifetimes_drop_links_with_timeout() {
    let config = MediumConfig {
        random_link_lifetime: Some(Duration::from_millis(500)),
        ..MediumConfig::default()
    };
    let mut m = line(2, clean(5, 247), config, 6);
    let (a, b) = connect(&mut m, 0, 1);
    let up_at = m.now();
    let mut trace = Vec::new();
    run_for(&mut m, Duration::from_secs(2), &mut trace);
    let downs: Vec<_> = trace
        .iter()
        .filter(|(_, _, e)| matches!(e, RadioEvent::LinkDown { .. }))
        .collect();
    assert_eq!(downs.len(), 2, "{trace:?}");
    assert!(downs
        .iter()
        .all(|(t, _, _)| *t <= up_at.as_micros() + 1_000_000));
    assert!(downs.contains(&&(
        downs[0].0,
        0,
        RadioEvent::LinkDown {
            link: a,
            reason: LinkDownReason::Timeout
        }
    )));
    assert!(downs.contains(&&(
        downs[0].0,
        1,
        RadioEvent::LinkDown {
            link: b,
            reason: LinkDownReason::Timeout
        }
    )));
}

#[test]
fn packet_accounting_balances_through_faults() {
    let params = LinkParams {
        loss: 0.2,
        latency: Duration::from_millis(30),
        jitter: Duration::from_millis(30),
        ..LinkParams::default()
    };
    let mut m = line(4, params, MediumConfig::default(), 7);
    let links = [
        connect(&mut m, 0, 1),
        connect(&mut m, 2, 1),
        connect(&mut m, 3, 2),
    ];
    m.schedule_crash(m.now() + Duration::from_millis(40), 1)
        .unwrap();
    m.schedule_link_drop(m.now() + Duration::from_millis(60), 2, 3)
        .unwrap();
    let mut trace = Vec::new();
    for _ in 0..20 {
        for (central, (c, p)) in [(0, links[0]), (2, links[1]), (3, links[2])] {
            let peripheral = if central == 3 { 2 } else { 1 };
            let _ = m.radio(central).unwrap().send(c, &[1, 2, 3]);
            let _ = m.radio(peripheral).unwrap().send(p, &[4, 5]);
        }
        run_for(&mut m, Duration::from_millis(5), &mut trace);
        let t = m.total_stats();
        assert_eq!(
            t.sent,
            t.delivered + t.lost_random + t.lost_link_down + m.packets_in_flight()
        );
        assert_eq!(t.delivered, t.received);
    }
    run_for(&mut m, Duration::from_secs(1), &mut trace);
    let t = m.total_stats();
    assert_eq!(m.packets_in_flight(), 0);
    assert_eq!(t.sent, t.delivered + t.lost_random + t.lost_link_down);
    assert!(
        t.lost_random > 0 && t.lost_link_down > 0 && t.delivered > 0,
        "{t:?}"
    );
    let per_node_sent: u64 = (0..4).map(|i| m.node_stats(i).unwrap().sent).sum();
    assert_eq!(per_node_sent, t.sent);
}
