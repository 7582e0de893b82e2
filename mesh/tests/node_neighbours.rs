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
