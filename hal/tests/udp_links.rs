//! Links between two UDP radios on loopback in one test process: discovery through static lists, connect with the
//! MTU and roles, in-order packets both ways, MTU enforcement, `QueueFull` then `Writable`, disconnects, keepalive
//! timeouts in injected time, the simultaneous-connect tie-break, peer restarts and construction errors.
//!
//! Invariant: traffic stays on 127.0.0.1 with ephemeral ports; every wait is a polling loop with a deadline, and
//! timer behaviour is driven by injected instants, not by sleeping.

mod udp_common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use hal::udp::{peer_address, UdpConfig, UdpRadio, RSSI};
use hal::{LinkDownReason, LinkId, Radio, RadioErrorKind, RadioEvent, Role};
use udp_common::{
    addr_of, advert, config, connected, link_up, link_ups, packets_on, pair, pump_until, settle_at,
};

#[test]
fn radios_discover_each_other_and_connect_with_the_smaller_mtu() {
    let (mut a, mut b) = pair(config(185), config(247));
    for (r, n) in [(&mut a, 1), (&mut b, 2)] {
        r.start_advertising(&advert(n)).unwrap();
        r.start_scanning().unwrap();
    }
    let (pa, pb) = (addr_of(&a), addr_of(&b));
    let mut seen = Vec::new();
    let heard = |events: &[RadioEvent], peer, n| {
        events.iter().any(|e| {
            *e == RadioEvent::Discovered {
                peer,
                rssi: RSSI,
                advertisement: advert(n),
            }
        })
    };
    pump_until(&mut [&mut a, &mut b], &mut seen, "discovery", |s| {
        heard(&s[0], pb, 2) && heard(&s[1], pa, 1)
    });

    let la = a.connect(pb).unwrap();
    pump_until(&mut [&mut a, &mut b], &mut seen, "link up", |s| {
        link_up(&s[0]).is_some() && link_up(&s[1]).is_some()
    });
    assert_eq!(link_up(&seen[0]), Some((la, pb, 185, Role::Central)));
    let (_, peer, mtu, role) = link_up(&seen[1]).unwrap();
    assert_eq!((peer, mtu, role), (pa, 185, Role::Peripheral));
    assert_eq!((link_ups(&seen[0]), link_ups(&seen[1])), (1, 1));
    assert_eq!((a.stats().links_up, b.stats().links_up), (1, 1));
}

#[test]
fn scanning_and_advertising_control_beacons_and_discovery() {
    let (mut a, mut b) = pair(config(247), config(247));
    b.start_advertising(&advert(2)).unwrap();
    let mut seen = Vec::new();
    // A is not scanning: B's beacons arrive and are ignored.
    let t0 = a.now().max(b.now());
    for step in 0..5 {
        settle_at(
            &mut [&mut a, &mut b],
            &mut seen,
            t0 + Duration::from_millis(25 * step),
        );
    }
    assert!(a.stats().accepted >= 3, "{:?}", a.stats());
    assert!(seen[0].is_empty(), "{:?}", seen[0]);
    a.start_scanning().unwrap();
    pump_until(&mut [&mut a, &mut b], &mut seen, "discovery", |s| {
        !s[0].is_empty()
    });
    // B stops advertising: once the beacons already sent are read, nothing more is discovered.
    b.stop_advertising().unwrap();
    let t1 = a.now().max(b.now());
    settle_at(&mut [&mut a, &mut b], &mut seen, t1);
    seen[0].clear();
    for step in 1..5 {
        settle_at(
            &mut [&mut a, &mut b],
            &mut seen,
            t1 + Duration::from_millis(25 * step),
        );
    }
    assert!(seen[0].is_empty(), "{:?}", seen[0]);
    assert_eq!(b.next_deadline(), None, "an idle radio has no timers");
}

#[test]
fn packets_flow_both_ways_in_order_under_flow_control() {
    let (mut a, mut b) = pair(config(100), config(100));
    let (la, lb) = connected(&mut a, &mut b);
    let msg = |from: u8, i: usize| vec![from; 1 + i % 97];
    let n = 300;
    let (mut next_a, mut next_b) = (0, 0);
    let mut seen = [Vec::new(), Vec::new()];
    let start = std::time::Instant::now();
    while packets_on(&seen[1], lb).len() < n || packets_on(&seen[0], la).len() < n {
        while next_a < n {
            match a.send(la, &msg(0xa, next_a)) {
                Ok(()) => next_a += 1,
                Err(e) if e.kind() == RadioErrorKind::QueueFull => break,
                Err(e) => panic!("{e}"),
            }
        }
        while next_b < n {
            match b.send(lb, &msg(0xb, next_b)) {
                Ok(()) => next_b += 1,
                Err(e) if e.kind() == RadioErrorKind::QueueFull => break,
                Err(e) => panic!("{e}"),
            }
        }
        while let Some(e) = a.poll_event() {
            seen[0].push(e);
        }
        while let Some(e) = b.poll_event() {
            seen[1].push(e);
        }
        assert!(start.elapsed() < udp_common::DEADLINE, "packets stalled");
        std::thread::sleep(Duration::from_millis(1));
    }
    let want_at_b: Vec<Vec<u8>> = (0..n).map(|i| msg(0xa, i)).collect();
    let want_at_a: Vec<Vec<u8>> = (0..n).map(|i| msg(0xb, i)).collect();
    assert_eq!(packets_on(&seen[1], lb), want_at_b);
    assert_eq!(packets_on(&seen[0], la), want_at_a);
    for r in [&a, &b] {
        let s = r.stats();
        assert_eq!((s.packets_sent, s.packets_received), (300, 300));
        assert_eq!((s.packets_missing, s.dropped()), (0, 0), "{s:?}");
    }
}

#[test]
fn packets_longer_than_the_mtu_are_refused() {
    let (mut a, mut b) = pair(config(23), config(517));
    let (la, lb) = connected(&mut a, &mut b);
    a.send(la, &[1; 20]).unwrap();
    let e = a.send(la, &[1; 21]).unwrap_err();
    assert_eq!(e.kind(), RadioErrorKind::PacketTooLong);
    assert!(e.to_string().contains("exceeds 20 bytes"), "{e}");
    assert_eq!(
        b.send(lb, &[]).unwrap_err().kind(),
        RadioErrorKind::InvalidArgument
    );
    assert_eq!(
        b.send(LinkId(77), &[1]).unwrap_err().kind(),
        RadioErrorKind::NoSuchLink
    );
    let mut seen = Vec::new();
    pump_until(&mut [&mut a, &mut b], &mut seen, "the packet", |s| {
        !packets_on(&s[1], lb).is_empty()
    });
    assert_eq!(packets_on(&seen[1], lb), vec![vec![1; 20]]);
}

#[test]
fn a_full_queue_refuses_then_signals_writable_as_it_drains() {
    let slow = UdpConfig {
        queue_capacity: 4,
        tx_interval: Duration::from_secs(1),
        keepalive_timeout: Duration::from_secs(60),
        ..config(247)
    };
    let (mut a, mut b) = pair(slow, config(247));
    let (la, lb) = connected(&mut a, &mut b);
    // One packet leaves at once, four wait in the queue, the sixth is refused.
    for i in 0..5u8 {
        a.send(la, &[i]).unwrap();
    }
    let e = a.send(la, &[5]).unwrap_err();
    assert_eq!(e.kind(), RadioErrorKind::QueueFull);
    assert_eq!(a.stats().rejected_queue_full, 1);
    let t0 = a.now();
    assert!(a
        .next_deadline()
        .is_some_and(|d| d <= t0 + Duration::from_secs(1)));
    assert_eq!(a.poll_event_at(t0 + Duration::from_millis(999)), None);
    assert_eq!(
        a.poll_event_at(t0 + Duration::from_secs(1)),
        Some(RadioEvent::Writable { link: la })
    );
    a.send(la, &[5]).unwrap();
    let mut seen = Vec::new();
    settle_at(
        &mut [&mut a, &mut b],
        &mut seen,
        t0 + Duration::from_secs(5),
    );
    let got: Vec<Vec<u8>> = packets_on(&seen[1], lb);
    assert_eq!(got, (0..6u8).map(|i| vec![i]).collect::<Vec<_>>());
    assert!(!seen[0]
        .iter()
        .any(|e| matches!(e, RadioEvent::Writable { .. })));
}

#[test]
fn disconnect_takes_the_link_down_at_both_ends() {
    let (mut a, mut b) = pair(config(247), config(247));
    let (la, lb) = connected(&mut a, &mut b);
    b.disconnect(lb).unwrap();
    assert_eq!(
        b.disconnect(lb).unwrap_err().kind(),
        RadioErrorKind::NoSuchLink
    );
    assert_eq!(
        b.send(lb, &[1]).unwrap_err().kind(),
        RadioErrorKind::NoSuchLink
    );
    let mut seen = Vec::new();
    let down = |link, reason| RadioEvent::LinkDown { link, reason };
    pump_until(&mut [&mut a, &mut b], &mut seen, "link down", |s| {
        s[0].contains(&down(la, LinkDownReason::RemoteDisconnect))
            && s[1].contains(&down(lb, LinkDownReason::LocalDisconnect))
    });
    assert_eq!(
        a.send(la, &[1]).unwrap_err().kind(),
        RadioErrorKind::NoSuchLink
    );
    assert_eq!((a.stats().links_down, b.stats().links_down), (1, 1));
}

#[test]
fn a_silent_peer_times_out_after_keepalive_timeout() {
    let (mut a, mut b) = pair(config(247), config(247));
    let (la, _) = connected(&mut a, &mut b);
    let mut seen = Vec::new();
    let t = a.now().max(b.now());
    settle_at(&mut [&mut a, &mut b], &mut seen, t);
    drop(b);
    let t0 = a.now();
    let timeout = a.config().keepalive_timeout;
    settle_at(&mut [&mut a], &mut seen, t0 + timeout / 2);
    assert!(seen[0].is_empty(), "{:?}", seen[0]);
    assert!(a.next_deadline().is_some_and(|d| d <= t0 + timeout));
    settle_at(&mut [&mut a], &mut seen, t0 + timeout);
    assert_eq!(
        seen[0],
        vec![RadioEvent::LinkDown {
            link: la,
            reason: LinkDownReason::Timeout
        }]
    );
}

#[test]
fn keepalives_hold_a_quiet_link_up() {
    let (mut a, mut b) = pair(config(247), config(247));
    connected(&mut a, &mut b);
    let t0 = a.now().max(b.now());
    let (interval, timeout) = (a.config().keepalive_interval, a.config().keepalive_timeout);
    let mut seen = Vec::new();
    let mut t = t0;
    while t < t0 + timeout * 5 {
        t += interval / 2;
        settle_at(&mut [&mut a, &mut b], &mut seen, t);
    }
    assert!(seen.iter().all(|s| s.is_empty()), "{seen:?}");
    assert!(a.stats().accepted >= 10 && b.stats().accepted >= 10);
}

#[test]
fn connects_fail_when_unanswered_or_refused() {
    let mut a = UdpRadio::new(config(247)).unwrap();
    // A socket that never answers.
    let mute = UdpSocket::bind("127.0.0.1:0").unwrap();
    let SocketAddr::V4(mute_addr) = mute.local_addr().unwrap() else {
        unreachable!()
    };
    let l = a.connect(peer_address(mute_addr)).unwrap();
    let t0 = a.now();
    let (interval, timeout) = (a.config().keepalive_interval, a.config().keepalive_timeout);
    let mut seen = Vec::new();
    let mut t = t0;
    while t + interval < t0 + timeout {
        t += interval;
        settle_at(&mut [&mut a], &mut seen, t);
    }
    assert!(seen[0].is_empty(), "retries, no failure yet: {:?}", seen[0]);
    settle_at(&mut [&mut a], &mut seen, t0 + timeout);
    let failed = RadioEvent::LinkDown {
        link: l,
        reason: LinkDownReason::ConnectFailed,
    };
    assert_eq!(seen[0], vec![failed]);
    let mut buf = [0u8; 64];
    mute.set_nonblocking(true).unwrap();
    let mut connects = 0;
    while mute.recv_from(&mut buf).is_ok() {
        connects += 1;
    }
    assert!(connects >= 5, "CONNECT is retried every keepalive interval");

    // A radio that does not advertise refuses at once.
    let (mut c, mut d) = pair(config(247), config(247));
    let l = c.connect(addr_of(&d)).unwrap();
    let mut seen = Vec::new();
    pump_until(&mut [&mut c, &mut d], &mut seen, "reject", |s| {
        !s[0].is_empty()
    });
    let refused = RadioEvent::LinkDown {
        link: l,
        reason: LinkDownReason::ConnectFailed,
    };
    assert_eq!(seen[0], vec![refused]);
    assert_eq!(d.stats().connects_rejected, 1);
    assert!(seen[1].is_empty());
}

#[test]
fn simultaneous_connects_yield_one_link() {
    for _ in 0..5 {
        let (mut a, mut b) = pair(config(247), config(247));
        a.start_advertising(&advert(1)).unwrap();
        b.start_advertising(&advert(2)).unwrap();
        let la = a.connect(addr_of(&b)).unwrap();
        let lb = b.connect(addr_of(&a)).unwrap();
        let a_wins = a.instance() < b.instance();
        let mut seen = Vec::new();
        pump_until(&mut [&mut a, &mut b], &mut seen, "one link", |s| {
            link_up(&s[0]).is_some() && link_up(&s[1]).is_some() && s[0].len() + s[1].len() >= 3
        });
        let (ua, _, _, ra) = link_up(&seen[0]).unwrap();
        let (ub, _, _, rb) = link_up(&seen[1]).unwrap();
        let failed = |link| RadioEvent::LinkDown {
            link,
            reason: LinkDownReason::ConnectFailed,
        };
        if a_wins {
            assert_eq!((ua, ra, rb), (la, Role::Central, Role::Peripheral));
            assert_eq!(seen[1].last(), Some(&failed(lb)));
        } else {
            assert_eq!((ub, rb, ra), (lb, Role::Central, Role::Peripheral));
            assert_eq!(seen[0].last(), Some(&failed(la)));
        }
        // Let retries and beacons run a while: still exactly one link each, and it carries data.
        let t = a.now().max(b.now());
        for step in 1..20 {
            settle_at(
                &mut [&mut a, &mut b],
                &mut seen,
                t + Duration::from_millis(50 * step),
            );
        }
        assert_eq!((link_ups(&seen[0]), link_ups(&seen[1])), (1, 1));
        assert_eq!(seen[0].len() + seen[1].len(), 3, "{seen:?}");
        a.send(ua, b"hello").unwrap();
        pump_until(&mut [&mut a, &mut b], &mut seen, "data", |s| {
            packets_on(&s[1], ub) == vec![b"hello".to_vec()]
        });
        assert_eq!(
            a.stats().connect_collisions + b.stats().connect_collisions,
            2
        );
    }
}

#[test]
fn one_link_per_pair_and_a_bounded_number_of_links() {
    let one = UdpConfig {
        max_links: 1,
        ..config(247)
    };
    let (mut a, mut b) = pair(one, config(247));
    let (_, lb) = connected(&mut a, &mut b);
    // A second connect to the same peer fails at once, from either side.
    let again = a.connect(addr_of(&b)).unwrap();
    assert_eq!(
        a.poll_event(),
        Some(RadioEvent::LinkDown {
            link: again,
            reason: LinkDownReason::ConnectFailed
        })
    );
    let c = UdpRadio::new(config(247)).unwrap();
    let e = a.connect(addr_of(&c)).unwrap_err();
    assert_eq!(e.kind(), RadioErrorKind::TooManyLinks);
    a.start_advertising(&advert(1)).unwrap();
    let back = b.connect(addr_of(&a)).unwrap();
    let mut seen = Vec::new();
    pump_until(&mut [&mut a, &mut b], &mut seen, "reject", |s| {
        !s[1].is_empty()
    });
    let refused = RadioEvent::LinkDown {
        link: back,
        reason: LinkDownReason::ConnectFailed,
    };
    assert_eq!(seen[1], vec![refused]);
    // The original link is untouched.
    b.send(lb, b"still here").unwrap();
    pump_until(&mut [&mut a, &mut b], &mut seen, "data", |s| {
        s[0].iter().any(|e| matches!(e, RadioEvent::Packet { .. }))
    });
}

#[test]
fn a_restarted_peer_replaces_its_old_link() {
    let (mut a, mut b) = pair(config(247), config(247));
    let (la, _) = connected(&mut a, &mut b);
    let b_addr = b.local_addr();
    drop(b);
    let mut b2 = UdpRadio::new(UdpConfig {
        bind: SocketAddr::V4(b_addr),
        ..config(247)
    })
    .unwrap();
    a.start_advertising(&advert(1)).unwrap();
    let l2 = b2.connect(addr_of(&a)).unwrap();
    let mut seen = Vec::new();
    pump_until(&mut [&mut a, &mut b2], &mut seen, "relink", |s| {
        link_up(&s[0]).is_some() && link_up(&s[1]).is_some()
    });
    assert_eq!(
        seen[0].first(),
        Some(&RadioEvent::LinkDown {
            link: la,
            reason: LinkDownReason::Timeout
        })
    );
    let (new_a, peer, _, role) = link_up(&seen[0]).unwrap();
    assert_ne!(new_a, la);
    assert_eq!((peer, role), (peer_address(b_addr), Role::Peripheral));
    assert_eq!(
        link_up(&seen[1]).map(|u| (u.0, u.3)),
        Some((l2, Role::Central))
    );
}

#[test]
fn construction_errors_say_what_to_do() {
    let a = UdpRadio::new(config(247)).unwrap();
    let taken = UdpConfig {
        bind: SocketAddr::V4(a.local_addr()),
        ..config(247)
    };
    let e = UdpRadio::new(taken).unwrap_err();
    assert_eq!(e.kind(), RadioErrorKind::Unavailable);
    assert!(
        e.to_string()
            .contains("is in use: pick another port with --udp-bind"),
        "{e}"
    );
    let foreign = UdpConfig {
        bind: "192.0.2.1:7000".parse().unwrap(),
        ..config(247)
    };
    let e = UdpRadio::new(foreign).unwrap_err();
    assert_eq!(e.kind(), RadioErrorKind::Unavailable);
    assert!(
        e.to_string().contains("not an address of this machine"),
        "{e}"
    );
    let e = UdpRadio::new(config(600)).unwrap_err();
    assert_eq!(e.kind(), RadioErrorKind::InvalidArgument);
    assert!(e.to_string().contains("ATT MTU 600"), "{e}");
    let mut a = a;
    let e = a.connect(addr_of(&a)).unwrap_err();
    assert_eq!(e.kind(), RadioErrorKind::InvalidArgument);
    let e = a
        .connect(hal::PeerAddress([127, 0, 0, 1, 0, 0]))
        .unwrap_err();
    assert_eq!(e.kind(), RadioErrorKind::InvalidArgument);
    let e = a
        .add_static_peer("[::1]:7000".parse().unwrap())
        .unwrap_err();
    assert_eq!(e.kind(), RadioErrorKind::InvalidArgument);
}

#[test]
fn next_deadline_reports_timers_and_waiting_events() {
    let mut a = UdpRadio::new(config(247)).unwrap();
    assert_eq!(a.next_deadline(), None);
    a.start_advertising(&advert(1)).unwrap();
    let t = a.now();
    assert_eq!(a.next_deadline(), Some(t), "first beacon is due at once");
    assert_eq!(a.poll_event_at(t), None);
    assert_eq!(a.next_deadline(), Some(t + a.config().beacon_interval));
    a.stop_advertising().unwrap();
    let mute = UdpSocket::bind("127.0.0.1:0").unwrap();
    let SocketAddr::V4(m) = mute.local_addr().unwrap() else {
        unreachable!()
    };
    a.connect(peer_address(m)).unwrap();
    let t = a.now();
    assert_eq!(
        a.next_deadline(),
        Some(t + a.config().keepalive_interval),
        "connect retry"
    );
    let b = UdpRadio::new(config(247)).unwrap();
    a.connect(addr_of(&b)).unwrap();
    let again = a.connect(addr_of(&b)).unwrap();
    assert_eq!(a.next_deadline(), Some(a.now()), "an event is waiting");
    assert!(matches!(
        a.poll_event(),
        Some(RadioEvent::LinkDown { link, .. }) if link == again
    ));
}
