//! Neighbours and peers: hellos, announces, timeouts, forged identities.

mod node_medium;

use mesh::link::Fragmenter;
use mesh::node::{Event, LinkId, RelayPolicy};
use mesh::time::Duration;
use mesh::wire::Announce;
use node_medium::{identity, Medium, MTU};

#[test]
fn two_neighbours_exchange_hellos_and_announces() {
    let mut m = Medium::new(2, RelayPolicy::Managed);
    m.connect(0, 1);
    m.run_for(Duration::from_millis(100));
    let (a, b) = (m.id(0), m.id(1));
    let e0 = m.take_events(0);
    assert!(e0.contains(&Event::NeighbourUp {
        link: LinkId(0),
        peer: b
    }));
    assert!(e0.contains(&Event::PeerAppeared {
        peer: b,
        nickname: "node1".into()
    }));
    let n = m.nodes[1].neighbours();
    assert_eq!(n.len(), 1);
    assert_eq!((n[0].peer, n[0].nickname.as_str()), (a, "node0"));
    assert_eq!(m.nodes[1].peers()[0].hops, 1);
    // Hellos repeat and mesh-wide announces flow; the neighbour stays up.
    m.run_for(Duration::from_secs(130));
    assert!(!m
        .take_events(0)
        .iter()
        .any(|e| matches!(e, Event::NeighbourDown { .. })));
    assert!(m.nodes[0].stats().frames_in >= 10);
    m.disconnect(0);
    assert!(m.take_events(0).contains(&Event::NeighbourDown {
        link: LinkId(0),
        peer: b
    }));
}

#[test]
fn silent_neighbour_times_out_then_peer_is_gone() {
    let mut m = Medium::new(2, RelayPolicy::Managed);
    m.connect(0, 1);
    m.run_for(Duration::from_secs(1));
    m.take_events(0);
    m.loss = 1000;
    m.run_for(Duration::from_secs(60));
    let b = m.id(1);
    assert!(m.take_events(0).contains(&Event::NeighbourDown {
        link: LinkId(0),
        peer: b
    }));
    m.run_for(Duration::from_secs(200));
    assert!(m.take_events(0).contains(&Event::PeerGone { peer: b }));
    assert!(m.nodes[0].peers().is_empty());
}

#[test]
fn announce_under_someone_elses_id_is_refused() {
    let mut m = Medium::line(3, RelayPolicy::Managed);
    m.run_for(Duration::from_secs(1));
    for i in 0..3 {
        m.take_events(i);
    }
    // An attacker signs with its own keys but claims node 2's id as source, mesh-wide (TTL 7).
    let victim = m.id(2);
    let mut frame = Announce::sign_frame(&identity(9), 77, 7, 3, "node2").unwrap();
    frame[6..14].copy_from_slice(&victim.0);
    let mut f = Fragmenter::starting_at(0);
    let packets: Vec<Vec<u8>> = f
        .fragment(&frame, MTU)
        .unwrap()
        .map(|p| {
            let mut v = Vec::new();
            p.append_to(&mut v);
            v
        })
        .collect();
    let before = m.nodes[1].stats();
    // Inject it on a fresh link of node 1 (as if from a new neighbour).
    let now = m.now;
    m.nodes[1].link_up(LinkId(50), MTU, now);
    for p in &packets {
        m.nodes[1].handle_packet(LinkId(50), p, now);
    }
    let after = m.nodes[1].stats();
    assert_eq!(after.drop_bad_signature, before.drop_bad_signature + 1);
    assert_eq!(
        after.relayed, before.relayed,
        "a forged announce is not relayed"
    );
    // The genuine peer entry keeps the genuine keys.
    let p = m.nodes[1]
        .peers()
        .into_iter()
        .find(|p| p.id == victim)
        .unwrap();
    assert_eq!(p.fingerprint, identity(2).public().fingerprint());
}

#[test]
fn second_id_claiming_a_nickname_is_flagged() {
    let mut configs: Vec<_> = (0..3)
        .map(|i| node_medium::config(i, RelayPolicy::Managed))
        .collect();
    configs[2].nickname = "node1".into();
    let mut m = Medium::with_configs(configs);
    m.connect(0, 1);
    m.run_for(Duration::from_secs(1));
    m.connect(0, 2);
    m.run_for(Duration::from_secs(1));
    let ev = m.take_events(0);
    let (b, c) = (m.id(1), m.id(2));
    assert!(ev.iter().any(
        |e| matches!(e, Event::NicknameConflict { peer, holder, .. } if *peer == c && *holder == b)
    ));
    let flagged: Vec<_> = m.nodes[0]
        .peers()
        .into_iter()
        .filter(|p| p.nickname_conflict)
        .map(|p| p.id)
        .collect();
    assert_eq!(flagged, [c]);
}

/// PROTOCOL.md §7.2: an announce whose signed content (keys, capabilities, nickname) is identical to the last one
/// verified for its source only refreshes liveness, so it is not verified again. This test pins both sides of that
/// rule: an identical-content copy with a broken signature changes nothing but liveness, while a copy that would
/// change anything (here the nickname) is verified and refused.
#[test]
fn unchanged_announces_skip_verification_but_changes_are_verified() {
    let mut m = Medium::line(3, RelayPolicy::Managed);
    m.run_for(Duration::from_secs(5));
    let victim = m.id(2);
    let caps = mesh::node::NodeConfig::default().capabilities;
    let inject = |m: &mut Medium, frame: &[u8], link: u32| {
        let now = m.now;
        m.nodes[1].link_up(LinkId(link), MTU, now);
        let mut f = Fragmenter::starting_at(0);
        for p in f.fragment(frame, MTU).unwrap() {
            let mut v = Vec::new();
            p.append_to(&mut v);
            m.nodes[1].handle_packet(LinkId(link), &v, now);
        }
    };
    let peer = |m: &Medium| {
        m.nodes[1]
            .peers()
            .into_iter()
            .find(|p| p.id == victim)
            .unwrap()
    };
    assert_eq!(peer(&m).nickname, "node2");

    // Same content as node 2's genuine announces, signature broken: accepted as a liveness refresh only.
    let mut same = Announce::sign_frame(&identity(2), 0x5151_0001, 7, caps, "node2").unwrap();
    let last = same.len() - 1;
    same[last] ^= 0x01;
    let before = m.nodes[1].stats();
    inject(&mut m, &same, 60);
    let after = m.nodes[1].stats();
    assert_eq!(after.announces_unchanged, before.announces_unchanged + 1);
    assert_eq!(after.drop_bad_signature, before.drop_bad_signature);
    assert_eq!(peer(&m).nickname, "node2");
    assert_eq!(peer(&m).fingerprint, identity(2).public().fingerprint());

    // A new nickname with a broken signature: verified, refused, nothing changes.
    let mut renamed = Announce::sign_frame(&identity(2), 0x5151_0002, 7, caps, "mallory").unwrap();
    let last = renamed.len() - 1;
    renamed[last] ^= 0x01;
    let before = m.nodes[1].stats();
    inject(&mut m, &renamed, 61);
    let after = m.nodes[1].stats();
    assert_eq!(after.drop_bad_signature, before.drop_bad_signature + 1);
    assert_eq!(after.announces_unchanged, before.announces_unchanged);
    assert_eq!(peer(&m).nickname, "node2");
}

/// A node that joins a formed mesh learns the peers behind its new neighbour from that neighbour's PEER_SYNC at
/// once, with the right hop count, instead of at their next mesh-wide announce (up to `announce_interval` later).
#[test]
fn a_joining_node_learns_distant_peers_from_its_new_neighbour() {
    let mut m = Medium::new(4, RelayPolicy::Managed);
    m.connect(0, 1);
    m.connect(1, 2);
    // Let 0, 1 and 2 know each other and their first announces pass, well before the next round (60 s ± 6 s).
    m.run_for(Duration::from_secs(5));
    assert_eq!(m.nodes[0].peers().len(), 2);
    // Node 3 joins next to node 2: nodes 0 and 1 are two and three hops away and will not announce for ~50 s.
    m.connect(2, 3);
    m.run_for(Duration::from_millis(500));
    let peers = m.nodes[3].peers();
    let hops = |i: usize| peers.iter().find(|p| p.id == m.id(i)).map(|p| p.hops);
    assert_eq!(hops(2), Some(1));
    assert_eq!(hops(1), Some(2), "peers: {peers:?}");
    assert_eq!(hops(0), Some(3), "peers: {peers:?}");
    assert!(m.nodes[2].stats().peer_syncs_sent >= 2);
    assert!(m.nodes[3].stats().peer_syncs_received >= 2);
    // PEER_SYNC is link-local: node 1 and 0 learn node 3 from its own announce, not from a relayed sync.
    assert_eq!(m.nodes[1].stats().peer_syncs_received, 0);
    // A message to the far end now goes without waiting for an announce.
    let (far, now) = (m.id(0), m.now);
    let id = m.nodes[3]
        .send(far, b"hello from the newcomer", now)
        .unwrap();
    m.run_for(Duration::from_secs(3));
    assert_eq!(
        node_medium::received(&m.take_events(0), b"hello from the newcomer"),
        1
    );
    assert_eq!(node_medium::confirmed(&m.take_events(3), id), 1);
}

/// Packets of `frame` as a neighbour would send them on a fresh link.
fn packets_of(frame: &[u8]) -> Vec<Vec<u8>> {
    Fragmenter::starting_at(0)
        .fragment(frame, MTU)
        .unwrap()
        .map(|p| {
            let mut v = Vec::new();
            p.append_to(&mut v);
            v
        })
        .collect()
}

/// A PEER_SYNC from a neighbour (`src`) to `dst` carrying `announce` (a whole ANNOUNCE frame) with `hops` and `age_s`.
fn peer_sync(
    src: mesh::identity::NodeId,
    dst: mesh::identity::NodeId,
    announce: &[u8],
    hops: u8,
    age_s: u16,
) -> Vec<u8> {
    use mesh::wire::{decode, encode_body, Body, Header, Kind, PeerSync};
    let Ok((h, Body::Announce(a))) = decode(announce) else {
        panic!("an announce frame");
    };
    let body = PeerSync {
        hops,
        age_s,
        frame_id: h.frame_id,
        peer: h.src,
        announce: a,
    };
    let header = Header {
        kind: Kind::PeerSync,
        ttl: 0,
        frame_id: 5,
        src,
        dst,
    };
    encode_body(&header, &Body::PeerSync(body)).unwrap()
}

/// Hostile or stale PEER_SYNCs change nothing: a forged announce inside is refused and counted, one older than
/// `peer_timeout` is ignored and counted, and a genuine one is taken with its age and hops.
#[test]
fn peer_sync_is_checked_like_an_announce() {
    let mut m = Medium::new(1, RelayPolicy::Managed);
    m.run_for(Duration::from_secs(30));
    let me = m.id(0);
    let neighbour = identity(5).node_id();
    let stranger = identity(6);
    let genuine = Announce::sign_frame(&stranger, 1234, 7, 3, "stranger").unwrap();
    let now = m.now;
    m.nodes[0].link_up(LinkId(9), MTU, now);
    let inject = |m: &mut Medium, frame: &[u8]| {
        let now = m.now;
        for p in packets_of(frame) {
            m.nodes[0].handle_packet(LinkId(9), &p, now);
        }
    };
    // The nickname changed after signing: the signature no longer covers it.
    let mut forged = genuine.clone();
    let n = forged.len() - 64 - 1;
    forged[n] ^= 0x01;
    let before = m.nodes[0].stats();
    inject(&mut m, &peer_sync(neighbour, me, &forged, 1, 0));
    let after = m.nodes[0].stats();
    assert_eq!(after.drop_bad_signature, before.drop_bad_signature + 1);
    assert!(m.nodes[0].peers().is_empty());
    // Too old to be alive.
    inject(&mut m, &peer_sync(neighbour, me, &genuine, 1, 200));
    assert_eq!(m.nodes[0].stats().drop_peer_sync, 1);
    assert!(m.nodes[0].peers().is_empty());
    // A sync for this node itself is ignored too.
    let mine = Announce::sign_frame(&identity(0), 77, 7, 3, "node0").unwrap();
    inject(&mut m, &peer_sync(neighbour, me, &mine, 1, 0));
    assert_eq!(m.nodes[0].stats().drop_peer_sync, 2);
    // Genuine: the peer appears, 4 hops away (3 from the neighbour), last heard 20 s ago.
    inject(&mut m, &peer_sync(neighbour, me, &genuine, 3, 20));
    let peers = m.nodes[0].peers();
    assert_eq!(peers.len(), 1);
    assert_eq!((peers[0].id, peers[0].hops), (stranger.node_id(), 4));
    assert_eq!(peers[0].nickname, "stranger");
    assert_eq!(
        m.now.saturating_since(peers[0].last_heard),
        Duration::from_secs(20)
    );
    assert_eq!(m.nodes[0].stats().peer_syncs_received, 1);
    // The same sync on a frame addressed to someone else, or with a TTL, is not taken.
    let other = peer_sync(neighbour, identity(7).node_id(), &genuine, 1, 0);
    inject(&mut m, &other);
    let mut travelling = peer_sync(neighbour, me, &genuine, 1, 0);
    travelling[1] = 3;
    let wire_before = m.nodes[0].stats().drop_wire;
    inject(&mut m, &travelling);
    assert_eq!(m.nodes[0].stats().drop_wire, wire_before + 1);
    assert_eq!(m.nodes[0].stats().peer_syncs_received, 1);
    assert_eq!(m.nodes[0].peers()[0].hops, 4);
}
