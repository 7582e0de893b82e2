//! Sessions at rest (PROTOCOL.md §6.11): a node that stores every `poll_persist` record before it transmits what it
//! polls next is killed at chosen moments and restarted from its store alone. It resumes its sessions without a
//! handshake, keeps counting their limits, refuses what it may have accepted before, and never seals two frames
//! with the same nonce under one key.

use std::collections::{BTreeMap, BTreeSet};

use mesh::identity::{Identity, NodeId, PublicIdentity};
use mesh::session::*;
use mesh::time::{Duration, Instant};
use mesh::wire::{FrameView, Kind, Sealed};

fn ident(n: u8) -> Identity {
    Identity::from_secrets([n; 32], [n.wrapping_add(100); 32])
}

fn config() -> SessionConfig {
    let mut c = SessionConfig::default();
    c.persist = true;
    c.padding_buckets = vec![];
    c
}

/// What a runtime's store holds for one node.
#[derive(Default)]
struct Store {
    sessions: BTreeMap<NodeId, SessionSnapshot>,
    pins: BTreeMap<NodeId, PublicIdentity>,
    writes: u64,
}

impl Store {
    fn apply(&mut self, r: SessionRecord) {
        self.writes += 1;
        match r {
            SessionRecord::Snapshot(s) => {
                self.sessions.insert(s.peer_id(), s);
            }
            SessionRecord::Removed { peer } => {
                self.sessions.remove(&peer);
            }
            SessionRecord::Pin { peer, keys } => {
                self.pins.insert(peer, keys);
            }
            other => panic!("unexpected record {other:?}"),
        }
    }

    /// A node started from this store alone.
    fn restart(&self, n: u8, seed: u8, now: Instant) -> Sessions {
        let mut s = Sessions::new(ident(n), config(), [seed; 32]);
        let pins: Vec<_> = self.pins.iter().map(|(p, k)| (*p, *k)).collect();
        s.import_pins(&pins);
        for snap in self.sessions.values() {
            s.restore(snap, now).unwrap();
        }
        s
    }
}

/// Node A (with a store) and node B, and every sealed frame A put on air as `(session id, nonce)`.
struct Net {
    a: Sessions,
    b: Sessions,
    store: Store,
    now: Instant,
    on_air: Vec<(u8, u64)>,
    handshake_frames_from_a: usize,
    got_a: Vec<Vec<u8>>,
    got_b: Vec<Vec<u8>>,
}

impl Net {
    fn new() -> Self {
        Net {
            a: Sessions::new(ident(1), config(), [1; 32]),
            b: Sessions::new(ident(2), SessionConfig::default(), [2; 32]),
            store: Store::default(),
            now: Instant::from_secs(1_000),
            on_air: vec![],
            handshake_frames_from_a: 0,
            got_a: vec![],
            got_b: vec![],
        }
    }

    fn ids(&self) -> (NodeId, NodeId) {
        (ident(1).node_id(), ident(2).node_id())
    }

    /// Moves frames until quiet. A's records are stored before any of its frames leaves.
    fn pump(&mut self) {
        for _ in 0..1_000 {
            while let Some(r) = self.a.poll_persist() {
                self.store.apply(r);
            }
            let mut moved = false;
            while let Some(o) = self.a.poll_transmit() {
                moved = true;
                let view = FrameView::new_checked(&o.frame[..]).unwrap();
                match view.kind_code() {
                    0x03..=0x05 => self.handshake_frames_from_a += 1,
                    0x06..=0x08 => {
                        let s = Sealed::parse(view.body()).unwrap();
                        self.on_air.push((s.session_id, s.nonce));
                    }
                    _ => {}
                }
                if let Ok(Some(d)) = self.b.handle_frame(&o.frame, self.now) {
                    if d.kind == Kind::Transport {
                        self.got_b.push(d.plaintext);
                    }
                }
            }
            while let Some(o) = self.b.poll_transmit() {
                moved = true;
                if let Ok(Some(d)) = self.a.handle_frame(&o.frame, self.now) {
                    if d.kind == Kind::Transport {
                        self.got_a.push(d.plaintext);
                    }
                }
            }
            if !moved {
                while let Some(r) = self.a.poll_persist() {
                    self.store.apply(r);
                }
                return;
            }
        }
        panic!("pump did not settle");
    }

    fn a_sends(&mut self, msg: &[u8]) {
        let (_, b) = self.ids();
        self.a.send(b, Kind::Transport, msg, self.now).unwrap();
        self.pump();
    }

    fn b_sends(&mut self, msg: &[u8]) {
        let (a, _) = self.ids();
        self.b.send(a, Kind::Transport, msg, self.now).unwrap();
        self.pump();
    }

    /// A is killed (everything not in its store is lost) and started again `after` later.
    fn crash_a(&mut self, after: Duration, seed: u8) {
        self.now = self.now + after;
        self.a = self.store.restart(1, seed, self.now);
    }

    fn assert_no_nonce_twice(&self) {
        let mut seen = BTreeSet::new();
        for pair in &self.on_air {
            assert!(seen.insert(*pair), "nonce used twice: {pair:?}");
        }
    }
}

#[test]
fn a_restarted_node_resumes_its_session_without_a_handshake() {
    let mut n = Net::new();
    n.a_sends(b"before");
    n.b_sends(b"reply");
    assert_eq!(n.handshake_frames_from_a, 2);
    let (a, b) = n.ids();
    assert!(n.store.sessions.contains_key(&b));
    assert_eq!(n.store.pins.get(&b), Some(ident(2).public()));
    // A frame B sent before the crash, captured to be replayed afterwards.
    n.b.send(a, Kind::Transport, b"old news", n.now).unwrap();
    let old = n.b.poll_transmit().unwrap().frame;
    assert!(n.a.handle_frame(&old, n.now).unwrap().is_some());
    // A runtime stores what the acceptance changed before it acts on the message.
    n.pump();

    n.crash_a(Duration::from_secs(30), 9);
    let before = n.on_air.clone();
    n.a_sends(b"after the restart");
    n.b_sends(b"welcome back");
    assert_eq!(n.handshake_frames_from_a, 2, "no new handshake");
    assert_eq!(n.got_b, [b"before".to_vec(), b"after the restart".to_vec()]);
    assert_eq!(n.got_a.last().unwrap(), b"welcome back");
    // The resumed sender skipped the rest of its reserved block.
    let max_before = before.iter().map(|(_, nonce)| *nonce).max().unwrap();
    let first_after = n.on_air[before.len()].1;
    assert!(first_after >= NONCE_RESERVATION && first_after > max_before);
    // Anything at or below what the receiver had accepted and acted on is refused.
    assert!(n.a.handle_frame(&old, n.now).is_err());
    n.assert_no_nonce_twice();
}

#[test]
fn no_nonce_is_sealed_twice_whatever_the_moment_of_the_crash() {
    for crash_after in (0..300).step_by(61).chain([127, 128, 129, 256]) {
        let mut n = Net::new();
        n.a_sends(b"first");
        for i in 0..crash_after {
            n.a_sends(format!("m{i}").as_bytes());
            if i % 50 == 0 {
                n.b_sends(b"ack-ish");
            }
        }
        n.crash_a(Duration::from_secs(1), 7);
        for i in 0..200 {
            n.a_sends(format!("after {i}").as_bytes());
        }
        n.assert_no_nonce_twice();
        assert_eq!(
            n.got_b.len(),
            1 + crash_after + 200,
            "crash after {crash_after}"
        );
        assert_eq!(n.handshake_frames_from_a, 2, "crash after {crash_after}");
        // Reservations cost about one write per 128 nonces, not one per message.
        assert!(
            n.store.writes < 20 + (crash_after as u64 + 200) / 16,
            "{} writes",
            n.store.writes
        );
    }
}

#[test]
fn limits_count_on_across_a_restart() {
    let mut n = Net::new();
    for i in 0..100 {
        n.a_sends(format!("m{i}").as_bytes());
    }
    let (_, b) = n.ids();
    let stored = n.store.sessions.get(&b).unwrap().messages;
    assert!((96..=100).contains(&stored), "{stored}");
    // Down for most of the session's hour: the restored session is past 80 % of max_age and renews at once, while
    // the old one keeps carrying messages.
    n.crash_a(Duration::from_secs(50 * 60), 3);
    assert_eq!(n.handshake_frames_from_a, 2);
    n.a_sends(b"late");
    assert!(n.handshake_frames_from_a > 2, "renewal started");
    assert_eq!(n.got_b.last().unwrap(), b"late");
    // Down past the hour: the stored session is dead on arrival; a message waits for a new handshake.
    n.crash_a(Duration::from_secs(2 * 60 * 60), 4);
    let hs = n.handshake_frames_from_a;
    n.a_sends(b"much later");
    assert!(n.handshake_frames_from_a > hs);
    assert_eq!(n.got_b.last().unwrap(), b"much later");
    n.assert_no_nonce_twice();
}

#[test]
fn a_stored_session_contradicting_a_pin_is_refused() {
    let mut n = Net::new();
    n.a_sends(b"hi");
    let (_, b) = n.ids();
    let mut snap = n.store.sessions.get(&b).unwrap().clone();
    let mut s = Sessions::new(ident(1), config(), [5; 32]);
    s.import_pins(&[(b, *ident(3).public())]);
    assert_eq!(
        s.restore(&snap, n.now),
        Err(SessionError::UntrustedIdentity)
    );
    // Keys that are not the peer's id at all.
    snap.remote_x25519[0] ^= 1;
    let mut s = Sessions::new(ident(1), config(), [5; 32]);
    assert_eq!(s.restore(&snap, n.now), Err(SessionError::InvalidPeer));
    // Nothing stored is handed out again, and the snapshot's Debug shows no key.
    let shown = format!("{snap:?}");
    assert!(shown.contains("<redacted>") && !shown.contains(&format!("{:?}", snap.tx_key)));
}

#[test]
fn close_removes_the_stored_session() {
    let mut n = Net::new();
    n.a_sends(b"hi");
    let (_, b) = n.ids();
    assert!(n.store.sessions.contains_key(&b));
    n.a.close(b, n.now).unwrap();
    n.pump();
    assert!(n.store.sessions.is_empty());
    // Without persistence nothing is ever handed out.
    let mut plain = Sessions::new(ident(1), SessionConfig::default(), [1; 32]);
    plain.send(b, Kind::Transport, b"x", n.now).unwrap();
    assert!(plain.poll_persist().is_none());
}
