//! Multi-hop behaviour on lines and a small grid: broadcast, private messages with relayed handshakes, loss and
//! retries, duplicates and reordering, TTL exhaustion, unknown kinds, outbox flush, channels, managed vs naive.

mod node_medium;

use mesh::channel::ChannelKey;
use mesh::identity::NodeId;
use mesh::link::Fragmenter;
use mesh::node::{Event, LinkId, MessageKind, NodeError, PayloadKind, RelayPolicy};
use mesh::session::{CloseReason, SessionEvent};
use mesh::time::Duration;
use mesh::wire::{encode, Header, Kind};
use node_medium::{confirmed, received, Medium, MTU};

fn settle(m: &mut Medium) {
    m.run_for(Duration::from_secs(5));
    for i in 0..m.nodes.len() {
        m.take_events(i);
    }
}

#[test]
fn broadcast_reaches_every_node_of_a_line_once() {
    let mut m = Medium::line(6, RelayPolicy::Managed);
    settle(&mut m);
    let now = m.now;
    m.nodes[0].broadcast(b"hello line", now).unwrap();
    m.run_for(Duration::from_secs(2));
    for i in 1..6 {
        assert_eq!(received(&m.take_events(i), b"hello line"), 1, "node {i}");
    }
}

#[test]
fn private_message_across_the_line_with_relayed_handshake() {
    let mut m = Medium::line(6, RelayPolicy::Managed);
    settle(&mut m);
    let (now, dst) = (m.now, m.id(5));
    assert_eq!(m.nodes[0].peers().len(), 5, "every peer announced");
    assert_eq!(m.nodes[0].peer_nickname(&dst), Some("node5"));
    assert_eq!(
        m.nodes[0].peer_nickname(&m.id(0)),
        None,
        "not a peer of itself"
    );
    let id = m.nodes[0].send(dst, b"secret", now).unwrap();
    m.run_for(Duration::from_secs(5));
    let e5 = m.take_events(5);
    assert_eq!(received(&e5, b"secret"), 1);
    assert!(e5.iter().any(|e| matches!(
        e,
        Event::MessageReceived {
            kind: MessageKind::Private,
            ..
        }
    )));
    assert_eq!(confirmed(&m.take_events(0), id), 1);
    assert!(m.nodes[0].stats().handshakes >= 1);
    assert!(
        m.nodes[2].stats().relayed >= 3,
        "middle nodes relayed the handshake and messages"
    );
    // A second message reuses the session and the learned routes.
    let now = m.now;
    let id2 = m.nodes[0].send(dst, b"again", now).unwrap();
    m.run_for(Duration::from_secs(5));
    assert_eq!(received(&m.take_events(5), b"again"), 1);
    assert_eq!(confirmed(&m.take_events(0), id2), 1);
    assert!(m.nodes[0].stats().routed_unicast >= 1);
}

#[test]
fn loss_duplicates_and_reordering_still_deliver_exactly_once() {
    for (policy, hop_acks) in [
        (RelayPolicy::Managed, true),
        (RelayPolicy::Naive, true),
        (RelayPolicy::Managed, false),
        (RelayPolicy::Naive, false),
    ] {
        let configs = (0..4)
            .map(|i| {
                let mut c = node_medium::config(i, policy);
                c.route.hop_acks = hop_acks;
                c
            })
            .collect();
        let mut m = Medium::with_configs(configs);
        for i in 0..3 {
            m.connect(i, i + 1);
        }
        settle(&mut m);
        m.loss = 100;
        m.dup = 100;
        m.jitter_ms = 30;
        let dst = m.id(3);
        let mut ids = Vec::new();
        for k in 0..10u8 {
            let now = m.now;
            ids.push(m.nodes[0].send(dst, &[b'm', k], now).unwrap());
            m.run_for(Duration::from_millis(500));
        }
        m.run_for(Duration::from_secs(300));
        let e3 = m.take_events(3);
        let e0 = m.take_events(0);
        for k in 0..10u8 {
            assert_eq!(
                received(&e3, &[b'm', k]),
                1,
                "{policy:?} acks {hop_acks}: message {k}"
            );
        }
        for id in ids {
            assert_eq!(confirmed(&e0, id), 1, "{policy:?}");
        }
        // The losses were repaired: hop by hop where links acknowledge, end to end where they do not.
        let s = m.nodes[0].stats();
        if hop_acks {
            assert!(s.hop_resends > 0, "{policy:?}: loss forced hop resends");
        } else {
            assert!(s.retries > 0, "{policy:?}: loss forced retries");
        }
    }
}

/// The reason the peer learns when node 0 closes every session, by the user's request or by stopping.
fn close_all_reason_learned_by_the_peer(by_user: bool) -> Vec<CloseReason> {
    let mut m = Medium::line(3, RelayPolicy::Managed);
    settle(&mut m);
    let (now, dst) = (m.now, m.id(2));
    m.nodes[0].send(dst, b"open a session", now).unwrap();
    m.run_for(Duration::from_secs(5));
    assert_eq!(received(&m.take_events(2), b"open a session"), 1);
    let now = m.now;
    let reason = if by_user {
        CloseReason::User
    } else {
        CloseReason::Shutdown
    };
    m.nodes[0].close_all(reason, now);
    m.run_for(Duration::from_secs(2));
    m.take_events(2)
        .into_iter()
        .filter_map(|e| match e {
            Event::Session(SessionEvent::Closed { reason, .. }) => Some(reason),
            _ => None,
        })
        .collect()
}

#[test]
fn close_all_tells_peers_user_or_shutdown() {
    assert_eq!(
        close_all_reason_learned_by_the_peer(true),
        vec![CloseReason::User]
    );
    assert_eq!(
        close_all_reason_learned_by_the_peer(false),
        vec![CloseReason::Shutdown]
    );
}

#[test]
fn ttl_bounds_the_flood() {
    let mut configs: Vec<_> = (0..6)
        .map(|i| node_medium::config(i, RelayPolicy::Managed))
        .collect();
    configs[0].route.default_ttl = 3;
    let mut m = Medium::with_configs(configs);
    for i in 0..5 {
        m.connect(i, i + 1);
    }
    settle(&mut m);
    let now = m.now;
    m.nodes[0].broadcast(b"short", now).unwrap();
    m.run_for(Duration::from_secs(2));
    let got: Vec<usize> = (1..6)
        .map(|i| received(&m.take_events(i), b"short"))
        .collect();
    assert_eq!(got, [1, 1, 1, 0, 0]);
    assert!(m.nodes[3].stats().ttl_expired >= 1);
}

#[test]
fn unknown_kinds_are_relayed_and_dropped_at_their_destination() {
    let mut m = Medium::line(5, RelayPolicy::Managed);
    settle(&mut m);
    let header = Header {
        kind: Kind::Unknown(0x1f),
        ttl: 7,
        frame_id: 9,
        src: NodeId([0x42; 8]),
        dst: m.id(4),
    };
    let frame = encode(&header, b"from the future").unwrap();
    let mut packets = Vec::new();
    for p in Fragmenter::starting_at(60).fragment(&frame, MTU).unwrap() {
        let mut v = Vec::new();
        p.append_to(&mut v);
        packets.push(v);
    }
    let now = m.now;
    m.nodes[1].link_up(LinkId(40), MTU, now);
    let before = m.nodes[4].stats().drop_wire;
    for p in &packets {
        m.nodes[1].handle_packet(LinkId(40), p, now);
    }
    m.run_for(Duration::from_secs(1));
    assert!(m.nodes[3].stats().relayed >= 1);
    assert_eq!(m.nodes[4].stats().drop_wire, before + 1);
}

#[test]
fn outbox_flushes_when_the_peer_appears() {
    let mut m = Medium::new(3, RelayPolicy::Managed);
    m.connect(0, 1);
    settle(&mut m);
    let (now, dst) = (m.now, m.id(2));
    let id = m.nodes[0].send(dst, b"later", now).unwrap();
    m.run_for(Duration::from_secs(30));
    assert_eq!(confirmed(&m.take_events(0), id), 0);
    m.connect(1, 2);
    m.run_for(Duration::from_secs(10));
    assert_eq!(received(&m.take_events(2), b"later"), 1);
    assert_eq!(confirmed(&m.take_events(0), id), 1);
    assert!(m.nodes[0].stats().outbox_flushed >= 1);
    assert_eq!(m.nodes[0].stats().outbox_len, 0);
}

#[test]
fn undeliverable_message_fails_at_expiry() {
    let mut configs: Vec<_> = (0..2)
        .map(|i| node_medium::config(i, RelayPolicy::Managed))
        .collect();
    configs[0].route.outbox_lifetime = Duration::from_secs(60);
    let mut m = Medium::with_configs(configs);
    settle(&mut m);
    let now = m.now;
    let id = m.nodes[0].send(NodeId([9; 8]), b"nobody", now).unwrap();
    m.run_for(Duration::from_secs(61));
    let ev = m.take_events(0);
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::DeliveryFailed { id: i, .. } if *i == id)));
}

#[test]
fn joining_past_max_channels_is_too_many_channels_not_invalid() {
    let mut m = Medium::line(2, RelayPolicy::Managed);
    let max = m.nodes[0].max_channels();
    for i in 0..max {
        let name = format!("c{i}");
        let key = ChannelKey::from_bytes(&name, [1; 32]).unwrap();
        m.nodes[0].join_channel(&name, key).unwrap();
    }
    let extra = ChannelKey::from_bytes("extra", [1; 32]).unwrap();
    let err = m.nodes[0].join_channel("extra", extra).unwrap_err();
    assert_eq!(err, NodeError::TooManyChannels { joined: max });
    assert_eq!(
        err.to_string(),
        format!("this node has joined {max} channels, the most it can; leave one first")
    );
    // Rejoining one already joined replaces its key, full or not; a key for another name stays invalid.
    let again = ChannelKey::from_bytes("c0", [2; 32]).unwrap();
    m.nodes[0].join_channel("c0", again).unwrap();
    let other = ChannelKey::from_bytes("c1", [2; 32]).unwrap();
    assert_eq!(
        m.nodes[0].join_channel("c0", other),
        Err(NodeError::InvalidChannel)
    );
}

#[test]
fn channel_members_read_and_wrong_password_is_reported() {
    let mut m = Medium::line(4, RelayPolicy::Managed);
    settle(&mut m);
    let good = ChannelKey::from_bytes("ops", [7; 32]).unwrap();
    let bad = ChannelKey::from_bytes("ops", [8; 32]).unwrap();
    m.nodes[0].join_channel("ops", good.clone()).unwrap();
    m.nodes[3].join_channel("ops", good).unwrap();
    m.nodes[2].join_channel("ops", bad).unwrap();
    let now = m.now;
    m.nodes[0].send_channel("ops", b"meet at 5", now).unwrap();
    m.run_for(Duration::from_secs(2));
    assert_eq!(received(&m.take_events(3), b"meet at 5"), 1);
    assert_eq!(received(&m.take_events(1), b"meet at 5"), 0);
    let e2 = m.take_events(2);
    assert!(e2
        .iter()
        .any(|e| matches!(e, Event::ChannelUnreadable { channel, .. } if channel == "ops")));
    assert!(m.nodes[0].leave_channel("ops").is_ok());
    assert!(m.nodes[0].send_channel("ops", b"x", now).is_err());
}

#[test]
fn max_payload_of_each_kind_is_accepted_and_delivered_and_one_byte_more_is_refused() {
    let mut m = Medium::line(2, RelayPolicy::Managed);
    settle(&mut m);
    let key = ChannelKey::from_bytes("ops", [7; 32]).unwrap();
    m.nodes[0].join_channel("ops", key.clone()).unwrap();
    m.nodes[1].join_channel("ops", key).unwrap();
    let dst = m.id(1);
    let node = &m.nodes[0];
    assert_eq!(node.max_payload(PayloadKind::Private), 3063);
    assert_eq!(node.max_payload(PayloadKind::Broadcast), 1024);
    assert_eq!(node.max_payload(PayloadKind::Channel), 4026);
    for kind in [
        PayloadKind::Private,
        PayloadKind::Broadcast,
        PayloadKind::Channel,
    ] {
        let max = m.nodes[0].max_payload(kind);
        let now = m.now;
        let send = |node: &mut mesh::node::Node, payload: &[u8]| match kind {
            PayloadKind::Private => node.send(dst, payload, now),
            PayloadKind::Broadcast => node.broadcast(payload, now),
            PayloadKind::Channel => node.send_channel("ops", payload, now),
        };
        assert_eq!(
            send(&mut m.nodes[0], &vec![b'y'; max + 1]),
            Err(NodeError::MessageTooLong),
            "{kind:?}"
        );
        let payload = vec![b'x'; max];
        send(&mut m.nodes[0], &payload).unwrap();
        m.run_for(Duration::from_secs(3));
        assert_eq!(received(&m.take_events(1), &payload), 1, "{kind:?}");
    }
    let now = m.now;
    assert_eq!(m.nodes[0].broadcast(b"", now), Err(NodeError::EmptyMessage));
    assert!(m.nodes[0].send(dst, b"", now).is_ok());
    assert!(m.nodes[0].send_channel("ops", b"", now).is_ok());
}

#[test]
fn max_private_payload_follows_the_padding_buckets() {
    let mut unpadded = mesh::node::NodeConfig::default();
    unpadded.session.padding_buckets = Vec::new();
    let mut m = Medium::with_configs(vec![unpadded.clone(), unpadded]);
    m.connect(0, 1);
    settle(&mut m);
    let max = m.nodes[0].max_payload(PayloadKind::Private);
    // The frame less header (22), sealed fields (10), AEAD tag (16) and message id (8).
    assert_eq!(max, 4096 - 22 - 10 - 16 - 8);
    let (now, dst) = (m.now, m.id(1));
    assert_eq!(
        m.nodes[0].send(dst, &vec![0; max + 1], now),
        Err(NodeError::MessageTooLong)
    );
    let payload = vec![b'z'; max];
    m.nodes[0].send(dst, &payload, now).unwrap();
    m.run_for(Duration::from_secs(3));
    assert_eq!(received(&m.take_events(1), &payload), 1);
}

/// A 5×5 grid; `hop_acks` on or off at every node; `loss` per mille on every link. Four broadcasts, each checked
/// at every node. Returns the medium, the packets the broadcasts cost, and the receptions missed.
fn grid(policy: RelayPolicy, hop_acks: bool, loss: u64) -> (Medium, u64, usize) {
    let side = 5;
    let configs = (0..side * side)
        .map(|i| {
            let mut c = node_medium::config(i, policy);
            c.route.hop_acks = hop_acks;
            c
        })
        .collect();
    let mut m = Medium::with_configs(configs);
    for r in 0..side {
        for c in 0..side {
            let i = r * side + c;
            if c + 1 < side {
                m.connect(i, i + 1);
            }
            if r + 1 < side {
                m.connect(i, i + side);
            }
        }
    }
    settle(&mut m);
    m.loss = loss;
    let start = m.total_packets_out();
    for (k, src) in [12usize, 7, 17, 11].into_iter().enumerate() {
        let now = m.now;
        m.nodes[src].broadcast(&[b'b', k as u8], now).unwrap();
        m.run_for(Duration::from_secs(1));
    }
    let mut missed = 0;
    for i in 0..side * side {
        let ev = m.take_events(i);
        for (k, src) in [12usize, 7, 17, 11].into_iter().enumerate() {
            if i != src {
                let got = received(&ev, &[b'b', k as u8]);
                assert!(
                    got <= 1,
                    "{policy:?}: node {i} got broadcast {k} {got} times"
                );
                missed += 1 - got;
            }
        }
    }
    let used = m.total_packets_out() - start;
    (m, used, missed)
}

#[test]
fn managed_relaying_uses_fewer_transmissions_than_naive_on_a_grid() {
    // The relay policy alone: hop-by-hop acknowledgements off. (With them on, a loss-free 5×5 grid costs both
    // policies about the same: every managed copy draws a LINK_ACK, while naive's crossing copies acknowledge
    // each other for free.)
    let (_, naive, missed_naive) = grid(RelayPolicy::Naive, false, 0);
    let (managed_medium, managed, missed_managed) = grid(RelayPolicy::Managed, false, 0);
    assert_eq!((missed_naive, missed_managed), (0, 0));
    assert!(
        managed * 100 <= naive * 80,
        "managed {managed} vs naive {naive}"
    );
    assert!(
        managed_medium
            .nodes
            .iter()
            .map(|n| n.stats().suppressed)
            .sum::<u64>()
            > 0
    );
}

/// A line of 6 at `loss` per mille, `hop_acks` on or off everywhere: five broadcasts from node 0. Returns the
/// medium and the receptions missed.
fn lossy_line(policy: RelayPolicy, hop_acks: bool, loss: u64) -> (Medium, usize) {
    let configs = (0..6)
        .map(|i| {
            let mut c = node_medium::config(i, policy);
            c.route.hop_acks = hop_acks;
            c
        })
        .collect();
    let mut m = Medium::with_configs(configs);
    for i in 0..5 {
        m.connect(i, i + 1);
    }
    settle(&mut m);
    m.loss = loss;
    for k in 0..5u8 {
        let now = m.now;
        m.nodes[0].broadcast(&[b'l', k], now).unwrap();
        m.run_for(Duration::from_secs(1));
    }
    let mut missed = 0;
    for i in 1..6 {
        let ev = m.take_events(i);
        for k in 0..5u8 {
            let got = received(&ev, &[b'l', k]);
            assert!(
                got <= 1,
                "{policy:?}: node {i} got broadcast {k} {got} times"
            );
            missed += 1 - got;
        }
    }
    (m, missed)
}

#[test]
fn hop_acknowledgements_repair_a_lossy_line_under_both_policies() {
    for policy in [RelayPolicy::Naive, RelayPolicy::Managed] {
        let (_, missed_without) = lossy_line(policy, false, 200);
        let (m, missed_with) = lossy_line(policy, true, 200);
        assert!(
            missed_without >= 5,
            "{policy:?}: only {missed_without} of 25 receptions missed without hop acks"
        );
        assert_eq!(
            missed_with, 0,
            "{policy:?}: receptions missed with hop acks"
        );
        let resends: u64 = m.nodes.iter().map(|n| n.stats().hop_resends).sum();
        assert!(resends > 0, "{policy:?}");
    }
}
