//! Hostile and stray input to a UDP radio: wrong magic, other versions, truncated, unknown types, unknown links,
//! spoofed senders, oversize and out-of-order data, and arbitrary datagrams from a property test.
//!
//! Invariant: whatever arrives, the radio does not panic, counts every datagram once as accepted or in one drop
//! counter (`datagrams_received == accepted + dropped()`), ends each link id with at most one `LinkDown`, and
//! never delivers a packet longer than its link's ATT MTU - 3.

mod udp_common;

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use hal::udp::wire::{self, Message, MAGIC, MAX_DATAGRAM, VERSION};
use hal::udp::UdpStats;
use hal::{Advertisement, LinkId, Radio, RadioEvent};
use proptest::prelude::*;
use udp_common::{advert, config, connected, packets_on, pair, pump_until};

fn encoded(instance: u64, m: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    wire::encode(instance, m, &mut out);
    out
}

fn balanced(s: &UdpStats) -> bool {
    s.datagrams_received == s.accepted + s.dropped()
}

#[test]
fn stray_datagrams_on_the_socket_are_counted_and_dropped() {
    let (mut a, mut b) = pair(config(100), config(100));
    let (la, lb) = connected(&mut a, &mut b);
    let before = *a.stats();
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = a.local_addr();
    let keepalive = encoded(b.instance(), &Message::Keepalive { dst_link: la.0 });
    let mut wrong_version = keepalive.clone();
    wrong_version[4] = VERSION + 1;
    let mut unknown_type = keepalive.clone();
    unknown_type[5] = 200;
    let strays: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        vec![],
        wrong_version,
        keepalive[..9].to_vec(),
        unknown_type,
        vec![0; 4_000],
        [MAGIC.as_slice(), &[VERSION], &[5], &[0; 8]].concat(),
        encoded(b.instance(), &Message::Keepalive { dst_link: 999 }),
        // The right link and instance from the wrong address: spoofed.
        keepalive.clone(),
        encoded(
            b.instance(),
            &Message::Data {
                dst_link: la.0,
                seq: 0,
                payload: b"spoof".to_vec(),
            },
        ),
    ];
    for s in &strays {
        stranger.send_to(s, to).unwrap();
    }
    let mut seen = vec![Vec::new(), Vec::new()];
    let deadline = std::time::Instant::now() + udp_common::DEADLINE;
    while a.stats().datagrams_received < before.datagrams_received + strays.len() as u64 {
        while let Some(e) = a.poll_event() {
            seen[0].push(e);
        }
        assert!(std::time::Instant::now() < deadline, "{:?}", a.stats());
        std::thread::sleep(Duration::from_millis(1));
    }
    let s = a.stats();
    assert!(balanced(s), "{s:?}");
    assert_eq!(s.dropped_bad_magic - before.dropped_bad_magic, 2, "{s:?}");
    assert_eq!(s.dropped_oversize, 1);
    assert_eq!(s.dropped_bad_version, 1);
    assert_eq!(s.dropped_truncated, 2);
    assert_eq!(s.dropped_unknown_type, 1);
    assert_eq!(s.dropped_unknown_link, 3);
    assert!(seen[0].is_empty(), "{:?}", seen[0]);
    // The link still works, and the spoofed packet did not shift its sequence.
    b.send(lb, b"real").unwrap();
    pump_until(&mut [&mut a, &mut b], &mut seen, "real packet", |s| {
        !packets_on(&s[0], la).is_empty()
    });
    assert_eq!(packets_on(&seen[0], la), vec![b"real".to_vec()]);
    assert_eq!(a.stats().packets_missing, 0);
}

#[test]
fn data_out_of_order_or_too_long_is_dropped_never_reordered() {
    let (mut a, mut b) = pair(config(23), config(23));
    let (la, _) = connected(&mut a, &mut b);
    let from = SocketAddr::V4(b.local_addr());
    let now = a.now();
    let data = |seq: u32, len: usize| {
        encoded(
            b.instance(),
            &Message::Data {
                dst_link: la.0,
                seq,
                payload: vec![seq as u8; len],
            },
        )
    };
    for (seq, len) in [(5, 3), (3, 3), (5, 3), (6, 21), (6, 20), (7, 1)] {
        a.receive_datagram(from, &data(seq, len), now);
    }
    let got: Vec<Vec<u8>> = std::iter::from_fn(|| a.poll_event_at(now))
        .filter_map(|e| match e {
            RadioEvent::Packet { link, data } if link == la => Some(data),
            _ => None,
        })
        .collect();
    assert_eq!(got, vec![vec![5; 3], vec![6; 20], vec![7; 1]]);
    let s = a.stats();
    assert_eq!(
        (s.dropped_out_of_order, s.dropped_oversize),
        (2, 1),
        "{s:?}"
    );
    assert_eq!(s.packets_missing, 5, "seq 0..=4 never came");
    assert!(balanced(s));
}

/// A datagram that is well formed often enough to reach the radio's link logic.
fn datagram(peer_instance: u64) -> impl Strategy<Value = (bool, Vec<u8>)> {
    let link = 0u32..4;
    let mtu = prop_oneof![Just(23u16), Just(100), Just(517), any::<u16>()];
    let message = prop_oneof![
        (
            mtu.clone(),
            any::<u128>(),
            proptest::collection::vec(any::<u8>(), 0..10)
        )
            .prop_map(|(att_mtu, uuid, data)| Message::Beacon {
                att_mtu,
                advertisement: Advertisement::new(uuid, &data).unwrap()
            }),
        (link.clone(), mtu.clone())
            .prop_map(|(src_link, att_mtu)| Message::Connect { src_link, att_mtu }),
        (link.clone(), link.clone(), mtu).prop_map(|(dst_link, src_link, att_mtu)| {
            Message::Accept {
                dst_link,
                src_link,
                att_mtu,
            }
        }),
        link.clone()
            .prop_map(|dst_link| Message::Reject { dst_link }),
        (
            link.clone(),
            0u32..8,
            proptest::collection::vec(any::<u8>(), 0..600)
        )
            .prop_map(|(dst_link, seq, payload)| Message::Data {
                dst_link,
                seq,
                payload
            }),
        link.clone()
            .prop_map(|dst_link| Message::Keepalive { dst_link }),
        link.prop_map(|src_link| Message::Disconnect { src_link }),
    ];
    let instance = prop_oneof![3 => Just(peer_instance), 1 => any::<u64>()];
    let raw = proptest::collection::vec(any::<u8>(), 0..MAX_DATAGRAM + 50);
    prop_oneof![
        4 => (any::<bool>(), instance, message, any::<u16>(), any::<u8>()).prop_map(
            |(from_peer, instance, m, cut, flip)| {
                let mut bytes = encoded(instance, &m);
                // Now and then corrupt it: cut it short or flip a byte.
                match cut % 8 {
                    0 => bytes.truncate(usize::from(cut) % (bytes.len() + 1)),
                    1 => {
                        let i = usize::from(cut) % bytes.len();
                        bytes[i] ^= flip;
                    }
                    _ => {}
                }
                (from_peer, bytes)
            }
        ),
        1 => (any::<bool>(), raw),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_datagrams_never_break_the_radio(seed_datagrams in proptest::collection::vec(datagram(0), 1..40)) {
        let (mut a, mut b) = pair(config(100), config(247));
        a.start_advertising(&advert(1)).unwrap();
        a.start_scanning().unwrap();
        let (la, _) = connected(&mut b, &mut a);
        let peer = SocketAddr::V4(b.local_addr());
        let stranger: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let now = a.now();
        let mut mtus: HashMap<LinkId, u16> = HashMap::new();
        mtus.insert(la, 100);
        let mut down: HashSet<LinkId> = HashSet::new();
        for (i, (from_peer, mut bytes)) in seed_datagrams.into_iter().enumerate() {
            // The strategy was built with instance 0 as "the peer's"; put the real one in.
            if bytes.len() >= 14 && bytes[..4] == MAGIC && bytes[6..14] == [0; 8] {
                bytes[6..14].copy_from_slice(&b.instance().to_be_bytes());
            }
            let from = if from_peer { peer } else { stranger };
            let at = now + Duration::from_millis(i as u64);
            a.receive_datagram(from, &bytes, at);
            while let Some(e) = a.poll_event_at(at) {
                match e {
                    RadioEvent::LinkUp { link, att_mtu, .. } => {
                        prop_assert!((23..=100).contains(&att_mtu));
                        prop_assert!(mtus.insert(link, att_mtu).is_none(), "{link} up twice");
                    }
                    RadioEvent::LinkDown { link, .. } => {
                        prop_assert!(mtus.contains_key(&link), "{link} down but never up");
                        prop_assert!(down.insert(link), "{link} down twice");
                    }
                    RadioEvent::Packet { link, data } => {
                        let mtu = mtus.get(&link).copied().unwrap_or(0);
                        prop_assert!(!down.contains(&link));
                        prop_assert!(!data.is_empty() && data.len() <= usize::from(mtu) - 3);
                    }
                    _ => {}
                }
            }
            prop_assert!(balanced(a.stats()), "{:?}", a.stats());
        }
    }
}
