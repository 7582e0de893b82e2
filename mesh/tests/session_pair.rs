//! Two session endpoints pumped against each other in simulated time: handshakes in every order, crossed
//! handshakes, loss/duplication/reordering, rekey, renewal, limits, idle expiry, replays, bit flips, pinning,
//! close, table eviction and the handshake rate limit.
mod common;

use mesh::identity::{Identity, NodeId};
use mesh::session::*;
use mesh::time::{Duration, Instant};
use mesh::wire::{Header, Kind};

fn ident(n: u8) -> Identity {
    Identity::from_secrets([n; 32], [n.wrapping_add(100); 32])
}

fn node(n: u8, cfg: SessionConfig) -> Sessions {
    Sessions::new(ident(n), cfg, [n; 32])
}

/// A deterministic LCG for loss, duplication and reordering.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Endpoints A and B with frame queues between them.
struct Pair {
    a: Sessions,
    b: Sessions,
    now: Instant,
    loss: u64,
    dup: u64,
    reorder: u64,
    rng: Lcg,
    /// Drops every frame for which this returns true (kind code, from A?).
    filter: Box<dyn FnMut(u8, bool) -> bool>,
    got_a: Vec<Delivered>,
    got_b: Vec<Delivered>,
    ev_a: Vec<SessionEvent>,
    ev_b: Vec<SessionEvent>,
}

impl Pair {
    fn new(cfg: SessionConfig) -> Self {
        Pair {
            a: node(1, cfg.clone()),
            b: node(2, cfg),
            now: Instant::from_secs(1),
            loss: 0,
            dup: 0,
            reorder: 0,
            rng: Lcg(7),
            filter: Box::new(|_, _| false),
            got_a: vec![],
            got_b: vec![],
            ev_a: vec![],
            ev_b: vec![],
        }
    }
    fn ids(&self) -> (NodeId, NodeId) {
        (self.a.node_id(), self.b.node_id())
    }
    /// Moves frames until both sides are quiet.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            for from_a in [true, false] {
                let mut batch = vec![];
                let src = if from_a { &mut self.a } else { &mut self.b };
                while let Some(o) = src.poll_transmit() {
                    batch.push(o.frame);
                }
                if batch.len() > 1 && self.rng.chance(self.reorder) {
                    batch.reverse();
                }
                for f in batch {
                    moved = true;
                    if (self.filter)(f[0] & 0x1f, from_a) || self.rng.chance(self.loss) {
                        continue;
                    }
                    let copies = if self.rng.chance(self.dup) { 2 } else { 1 };
                    for _ in 0..copies {
                        let dst = if from_a { &mut self.b } else { &mut self.a };
                        if let Ok(Some(d)) = dst.handle_frame(&f, self.now) {
                            if from_a {
                                self.got_b.push(d)
                            } else {
                                self.got_a.push(d)
                            }
                        }
                    }
                }
            }
            while let Some(e) = self.a.poll_event() {
                self.ev_a.push(e);
            }
            while let Some(e) = self.b.poll_event() {
                self.ev_b.push(e);
            }
            if !moved {
                return;
            }
        }
        panic!("pump did not settle");
    }
    /// Advances time to `t`, firing timers on the way, and pumps.
    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        let mut spins = 0;
        loop {
            spins += 1;
            assert!(
                spins < 10_000,
                "timers do not make progress at {:?}",
                self.now
            );
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .filter(|t| *t <= end)
                .min();
            let Some(t) = next else { break };
            if t < self.now {
                panic!("poll_timeout {t:?} in the past at {:?}", self.now);
            }
            self.now = t.max(self.now);
            self.a.handle_timeout(self.now);
            self.b.handle_timeout(self.now);
            self.pump();
        }
        self.now = end;
        self.a.handle_timeout(end);
        self.b.handle_timeout(end);
        self.pump();
    }
    fn send_a(&mut self, msg: &[u8]) -> Result<SendOutcome, SessionError> {
        let (_, b) = self.ids();
        self.a.send(b, Kind::Transport, msg, self.now)
    }
    fn send_b(&mut self, msg: &[u8]) -> Result<SendOutcome, SessionError> {
        let (a, _) = self.ids();
        self.b.send(a, Kind::Transport, msg, self.now)
    }
    fn established(&mut self) {
        self.send_a(b"hello").unwrap();
        self.pump();
        assert_eq!(self.got_b.len(), 1);
    }
}

fn no_padding() -> SessionConfig {
    let mut c = SessionConfig::default();
    c.padding_buckets = vec![];
    c
}

#[test]
fn handshake_either_side_first_delivers_both_ways() {
    for a_first in [true, false] {
        let mut p = Pair::new(SessionConfig::default());
        if a_first {
            p.send_a(b"one").unwrap();
        } else {
            p.send_b(b"one").unwrap();
        }
        p.pump();
        p.send_a(b"from a").unwrap();
        p.send_b(b"from b").unwrap();
        p.pump();
        assert!(p.got_b.iter().any(|d| d.plaintext == b"from a"));
        assert!(p.got_a.iter().any(|d| d.plaintext == b"from b"));
        assert!(p
            .ev_a
            .iter()
            .any(|e| matches!(e, SessionEvent::Established { .. })));
        assert!(p
            .ev_b
            .iter()
            .any(|e| matches!(e, SessionEvent::Established { .. })));
        let (a, b) = p.ids();
        assert_eq!(p.a.remote_identity(&b), Some(*ident(2).public()));
        assert_eq!(p.b.pinned(&a), Some(ident(1).public()));
    }
}

#[test]
fn crossed_handshakes_finish_exactly_one_session() {
    let mut p = Pair::new(SessionConfig::default());
    assert_eq!(p.send_a(b"a").unwrap(), SendOutcome::Queued);
    assert_eq!(p.send_b(b"b").unwrap(), SendOutcome::Queued);
    p.pump();
    assert_eq!(p.got_a.len(), 1);
    assert_eq!(p.got_b.len(), 1);
    let (a, b) = p.ids();
    let sa = p.a.session_stats(&b, p.now).unwrap();
    let sb = p.b.session_stats(&a, p.now).unwrap();
    assert_eq!(sa.session_id, sb.session_id);
    let established = p
        .ev_a
        .iter()
        .filter(|e| matches!(e, SessionEvent::Established { .. }))
        .count();
    assert_eq!(established, 1);
}

#[test]
fn each_lost_handshake_message_is_retransmitted() {
    for lost_kind in [3u8, 4, 5] {
        let mut p = Pair::new(SessionConfig::default());
        let mut dropped = false;
        p.filter = Box::new(move |k, _| {
            if k == lost_kind && !dropped {
                dropped = true;
                return true;
            }
            false
        });
        p.send_a(b"x").unwrap();
        p.pump();
        p.advance(Duration::from_secs(6));
        p.send_a(b"y").unwrap();
        p.pump();
        assert!(
            p.got_b.iter().any(|d| d.plaintext == b"y"),
            "lost kind {lost_kind}"
        );
    }
}

#[test]
fn handshake_times_out_after_three_retries() {
    let mut p = Pair::new(SessionConfig::default());
    p.filter = Box::new(|_, from_a| from_a);
    p.send_a(b"x").unwrap();
    p.pump();
    p.advance(Duration::from_secs(21));
    assert!(p.ev_a.iter().any(|e| matches!(
        e,
        SessionEvent::HandshakeFailed {
            reason: HandshakeFailure::Timeout,
            ..
        }
    )));
    assert_eq!(p.a.poll_timeout(), None);
}

#[test]
fn transport_survives_loss_duplication_and_reordering() {
    let mut p = Pair::new(SessionConfig::default());
    p.established();
    p.loss = 20;
    p.dup = 30;
    p.reorder = 50;
    for i in 0..200u32 {
        p.send_a(&i.to_be_bytes()).unwrap();
        if i % 3 == 0 {
            p.pump();
        }
    }
    p.pump();
    let mut seen: Vec<u32> = p.got_b[1..]
        .iter()
        .map(|d| u32::from_be_bytes(d.plaintext[..4].try_into().unwrap()))
        .collect();
    let n = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), n, "a duplicate was delivered");
    assert!(n > 120 && n < 200, "{n}");
    assert!(p.b.drops().replay > 0);
}

#[test]
fn rekey_every_250_and_late_previous_epoch_within_grace_only() {
    let mut p = Pair::new(no_padding());
    p.established();
    let (a, b) = p.ids();
    let mut late = vec![];
    for i in 0..260u32 {
        p.a.send(b, Kind::Ack, &i.to_be_bytes(), p.now).unwrap();
        let f = p.a.poll_transmit().unwrap().frame;
        if i == 248 || i == 247 {
            late.push(f);
        } else {
            p.b.handle_frame(&f, p.now).unwrap();
        }
    }
    assert_eq!(p.a.session_stats(&b, p.now).unwrap().tx_epoch, 1);
    assert_eq!(p.b.session_stats(&a, p.now).unwrap().rx_epoch, 1);
    // Inside the grace the late frame of epoch 0 opens; after it, it is a stale epoch.
    assert!(p
        .b
        .handle_frame(&late[0], p.now + Duration::from_secs(29))
        .unwrap()
        .is_some());
    assert_eq!(
        p.b.handle_frame(&late[1], p.now + Duration::from_secs(31)),
        Err(SessionError::StaleEpoch)
    );
}

#[test]
fn renewal_starts_at_800_messages_and_sending_moves_to_the_new_session() {
    let mut p = Pair::new(SessionConfig::default());
    p.established();
    let (_, b) = p.ids();
    let first = p.a.session_stats(&b, p.now).unwrap().session_id;
    for i in 0..799u32 {
        p.send_a(&i.to_be_bytes()).unwrap();
        p.pump();
    }
    assert!(p
        .ev_a
        .iter()
        .any(|e| matches!(e, SessionEvent::RenewalStarted { .. })));
    assert!(p
        .ev_a
        .iter()
        .any(|e| matches!(e, SessionEvent::Renewed { .. })));
    let second = p.a.session_stats(&b, p.now).unwrap();
    assert_ne!(second.session_id, first);
    p.send_a(b"on new").unwrap();
    p.pump();
    assert_eq!(p.got_b.last().unwrap().plaintext, b"on new");
    // The old session is erased after the renewal grace.
    p.advance(Duration::from_secs(61));
    assert_eq!(
        p.a.session_stats(&b, p.now).unwrap().session_id,
        second.session_id
    );
}

#[test]
fn hard_limit_at_1000_messages_never_sends_on_old_session() {
    let mut p = Pair::new(SessionConfig::default());
    p.established();
    p.filter = Box::new(|k, _| (3..=5).contains(&k));
    for i in 0..999u32 {
        assert_eq!(
            p.send_a(&i.to_be_bytes()).unwrap(),
            SendOutcome::Sent,
            "{i}"
        );
        p.pump();
    }
    assert_eq!(p.send_a(b"late").unwrap(), SendOutcome::Queued);
    p.pump();
    assert!(p.got_b.iter().all(|d| d.plaintext != b"late"));
    p.advance(Duration::from_secs(25));
    assert!(p.ev_a.iter().any(|e| matches!(
        e,
        SessionEvent::Expired {
            reason: ExpiryReason::Messages,
            ..
        }
    )));
}

#[test]
fn hard_limit_at_one_hour_and_renewal_before_it() {
    let mut cfg = SessionConfig::default();
    cfg.idle_timeout = Duration::from_secs(2 * 3600);
    let mut p = Pair::new(cfg);
    p.established();
    p.filter = Box::new(|k, _| (3..=5).contains(&k));
    p.advance(Duration::from_secs(2881));
    assert!(p
        .ev_a
        .iter()
        .any(|e| matches!(e, SessionEvent::RenewalStarted { .. })));
    p.advance(Duration::from_secs(3600 - 2881));
    assert_eq!(p.send_a(b"after").unwrap(), SendOutcome::Queued);
    p.advance(Duration::from_secs(30));
    assert!(p.ev_a.iter().any(|e| matches!(
        e,
        SessionEvent::Expired {
            reason: ExpiryReason::Age,
            ..
        }
    )));
}

#[test]
fn idle_session_expires_after_ten_minutes() {
    let mut p = Pair::new(SessionConfig::default());
    p.established();
    p.advance(Duration::from_secs(599));
    let (a, b) = p.ids();
    assert!(p.a.is_established(&b));
    p.advance(Duration::from_secs(2));
    assert!(!p.a.is_established(&b) && !p.b.is_established(&a));
    assert!(p.ev_a.iter().any(|e| matches!(
        e,
        SessionEvent::Expired {
            reason: ExpiryReason::Idle,
            ..
        }
    )));
}

#[test]
fn replays_are_rejected() {
    let mut p = Pair::new(SessionConfig::default());
    p.established();
    p.send_a(b"once").unwrap();
    let f = p.a.poll_transmit().unwrap().frame;
    assert!(p.b.handle_frame(&f, p.now).unwrap().is_some());
    assert_eq!(p.b.handle_frame(&f, p.now), Err(SessionError::Replay));
    assert_eq!(p.b.drops().replay, 1);
}

#[test]
fn every_flipped_bit_is_rejected_without_state_change() {
    let mut p = Pair::new(SessionConfig::default());
    p.established();
    let (a, _) = p.ids();
    p.send_a(b"integrity").unwrap();
    let f = p.a.poll_transmit().unwrap().frame;
    let before = p.b.session_stats(&a, p.now).unwrap();
    for bit in 0..f.len() * 8 {
        if bit / 8 == 1 {
            continue; // the TTL is not authenticated (§4.4)
        }
        let mut g = f.clone();
        g[bit / 8] ^= 1 << (bit % 8);
        assert!(p.b.handle_frame(&g, p.now).is_err(), "bit {bit}");
        assert_eq!(p.b.session_stats(&a, p.now).unwrap(), before, "bit {bit}");
    }
    assert_eq!(
        p.b.handle_frame(&f, p.now).unwrap().unwrap().plaintext,
        b"integrity"
    );
}

#[test]
fn changed_keys_for_a_pinned_id_are_untrusted_until_trust() {
    let mut p = Pair::new(SessionConfig::default());
    let (a, b) = p.ids();
    p.a.import_pins(&[(b, *ident(9).public())]);
    p.send_a(b"x").unwrap();
    p.pump();
    assert!(p.ev_a.iter().any(|e| matches!(e, SessionEvent::UntrustedIdentity { peer, pinned, presented }
        if *peer == b && *pinned == ident(9).public().fingerprint() && *presented == ident(2).public().fingerprint())));
    assert!(!p.a.is_established(&b) && !p.b.is_established(&a));
    p.advance(Duration::from_secs(30));
    assert_eq!(p.a.trust(b).unwrap(), *ident(2).public());
    p.send_a(b"y").unwrap();
    p.pump();
    assert!(p.got_b.iter().any(|d| d.plaintext == b"y"));
    assert_eq!(p.a.export_pins(), vec![(b, *ident(2).public())]);
}

#[test]
fn close_by_either_end_is_learned_by_both_and_close_all() {
    for a_closes in [true, false] {
        let mut p = Pair::new(SessionConfig::default());
        p.established();
        let (a, b) = p.ids();
        if a_closes {
            p.a.close(b, p.now).unwrap()
        } else {
            p.b.close(a, p.now).unwrap()
        }
        p.pump();
        assert!(!p.a.is_established(&b) && !p.b.is_established(&a));
        let remote = if a_closes { &p.ev_b } else { &p.ev_a };
        assert!(remote.iter().any(|e| matches!(
            e,
            SessionEvent::Closed {
                by: CloseOrigin::Remote,
                reason: CloseReason::User,
                ..
            }
        )));
    }
    for reason in [CloseReason::User, CloseReason::Shutdown] {
        let mut p = Pair::new(SessionConfig::default());
        p.established();
        p.a.close_all(reason, p.now);
        p.pump();
        assert!(p.ev_b.iter().any(|e| matches!(
            e,
            SessionEvent::Closed { reason: r, .. } if *r == reason
        )));
    }
}

#[test]
fn lost_close_is_recovered_by_unknown_session() {
    let mut p = Pair::new(SessionConfig::default());
    p.established();
    let (a, b) = p.ids();
    p.b.close(a, p.now).unwrap();
    let _ = p.b.poll_transmit(); // CLOSE lost
    p.send_a(b"into the void").unwrap();
    p.pump();
    // B answered UNKNOWN_SESSION, A started a new handshake and the queue moved to the new session.
    p.send_a(b"again").unwrap();
    p.pump();
    assert!(p.got_b.iter().any(|d| d.plaintext == b"again"));
    assert!(p.a.is_established(&b));
}

#[test]
fn table_full_evicts_longest_idle_or_refuses() {
    let mut cfg = SessionConfig::default();
    cfg.max_peers = 2;
    let mut hub = node(1, cfg.clone());
    let mut others: Vec<Sessions> = (2..=4).map(|n| node(n, cfg.clone())).collect();
    let mut now = Instant::from_secs(1);
    let exchange = |hub: &mut Sessions, others: &mut Vec<Sessions>, now: Instant| {
        for _ in 0..10 {
            while let Some(o) = hub.poll_transmit() {
                if let Some(n) = others.iter_mut().find(|n| n.node_id() == o.to) {
                    let _ = n.handle_frame(&o.frame, now);
                }
            }
            for n in others.iter_mut() {
                while let Some(o) = n.poll_transmit() {
                    let _ = hub.handle_frame(&o.frame, now);
                }
            }
        }
    };
    for i in 0..2 {
        let id = others[i].node_id();
        hub.send(id, Kind::Transport, b"hi", now).unwrap();
        exchange(&mut hub, &mut others, now);
        now = now + Duration::from_secs(10);
    }
    let (first, third) = (others[0].node_id(), others[2].node_id());
    hub.send(third, Kind::Transport, b"hi", now).unwrap();
    exchange(&mut hub, &mut others, now);
    assert!(!hub.is_established(&first) && hub.is_established(&third));
    while let Some(e) = others[0].poll_event() {
        if let SessionEvent::Closed { reason, .. } = e {
            assert_eq!(reason, CloseReason::Evicted);
        }
    }
    assert!(!others[0].is_established(&hub.node_id()));
    // Every slot in a handshake: refused.
    let mut cfg1 = SessionConfig::default();
    cfg1.max_peers = 1;
    let mut lone = node(5, cfg1);
    lone.send(NodeId([1; 8]), Kind::Transport, b"x", now)
        .unwrap();
    assert_eq!(
        lone.send(NodeId([2; 8]), Kind::Transport, b"x", now),
        Err(SessionError::TableFull)
    );
}

#[test]
fn handshake_rate_limit_two_then_one_per_two_seconds() {
    let mut b = node(2, SessionConfig::default());
    let bid = b.node_id();
    let firsts: Vec<Vec<u8>> = (0..4u8)
        .map(|i| {
            let mut a = Sessions::new(ident(1), SessionConfig::default(), [i + 50; 32]);
            a.send(bid, Kind::Transport, b"x", Instant::ZERO).unwrap();
            a.poll_transmit().unwrap().frame
        })
        .collect();
    let t = Instant::from_secs(100);
    assert!(b.handle_frame(&firsts[0], t).is_ok());
    assert!(b.handle_frame(&firsts[1], t).is_ok());
    assert_eq!(
        b.handle_frame(&firsts[2], t),
        Err(SessionError::RateLimited)
    );
    assert!(b
        .handle_frame(&firsts[3], t + Duration::from_secs(2))
        .is_ok());
    // A resent HANDSHAKE_1 already answered costs no token and gets the same answer.
    let _ = std::iter::from_fn(|| b.poll_transmit()).count();
    assert!(b
        .handle_frame(&firsts[3], t + Duration::from_secs(2))
        .is_ok());
    assert_eq!(b.poll_transmit().unwrap().frame[0] & 0x1f, 4);
}

#[test]
fn sealed_frame_verifies_with_bare_chacha20poly1305() {
    use chacha20poly1305::aead::AeadInPlace;
    use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
    let header = Header {
        kind: Kind::Transport,
        ttl: 7,
        frame_id: 0x0102_0304,
        src: NodeId([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]),
        dst: NodeId([0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xf0, 0x01]),
    };
    let frame = seal_with_key(Key([0x42; 32]), 1, 300, &header, 5, b"meshnode", &[]).unwrap();
    assert_eq!(frame, common::vector("session_transport_epoch1"));
    // Independent check: REKEY by hand, then open with the bare AEAD per §6.4.
    let mut k1 = [0u8; 32];
    let _ = ChaCha20Poly1305::new(&[0x42; 32].into())
        .encrypt_in_place_detached(&aead_nonce(u64::MAX), &[], &mut k1)
        .unwrap();
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&300u64.to_le_bytes());
    let mut ad = vec![frame[0]];
    ad.extend_from_slice(&frame[2..32]);
    let (ct, tag) = frame[32..].split_at(frame.len() - 48);
    let mut pt = ct.to_vec();
    ChaCha20Poly1305::new(&k1.into())
        .decrypt_in_place_detached(&nonce.into(), &ad, &mut pt, tag.into())
        .unwrap();
    assert_eq!(pt, b"meshnode");
    assert_eq!(frame[23], 1);
    assert_eq!(rekey(&Key([0x42; 32])).0, k1);
}

#[test]
fn established_session_memory_is_small() {
    let mut p = Pair::new(SessionConfig::default());
    p.established();
    p.pump();
    let (a, b) = p.ids();
    let bytes = p.a.peer_memory_bytes(&b).unwrap();
    println!("session_bytes per established idle peer: {bytes}");
    assert!(bytes < 4096, "{bytes}");
    assert!(p.b.peer_memory_bytes(&a).unwrap() < 4096);
}

/// A forged HANDSHAKE_2 or HANDSHAKE_3 (right addresses and session id, bytes that do not verify) is dropped
/// without touching the handshake in progress: the genuine message that follows completes it. Any node of the
/// mesh can put any source on a frame, so a forgery must not be able to abort a handshake.
#[test]
fn forged_handshake_messages_do_not_abort_the_handshake() {
    let cfg = SessionConfig::default();
    let (mut a, mut b) = (node(1, cfg.clone()), node(2, cfg));
    let (ida, idb) = (a.node_id(), b.node_id());
    let now = Instant::from_secs(1);
    let forge = |frame: &[u8]| {
        let mut f = frame.to_vec();
        let last = f.len() - 1;
        f[last] ^= 0x01; // inside the Noise message: its last AEAD tag no longer verifies
        f
    };
    assert_eq!(
        a.send(idb, Kind::Transport, b"hi", now),
        Ok(SendOutcome::Queued)
    );
    let first = a.poll_transmit().unwrap();
    assert_eq!(b.handle_frame(&first.frame, now), Ok(None));
    let second = b.poll_transmit().unwrap();
    assert_eq!(second.frame[0] & 0x1f, Kind::Handshake2.code());

    let forged = forge(&second.frame);
    assert_eq!(
        a.handle_frame(&forged, now),
        Err(SessionError::Handshake(HandshakeFailure::Rejected))
    );
    assert!(!a.is_established(&idb));
    assert_eq!(a.handle_frame(&second.frame, now), Ok(None));
    assert!(
        a.is_established(&idb),
        "the genuine HANDSHAKE_2 still completes the initiator"
    );

    let mut third = None;
    let mut transport = vec![];
    while let Some(o) = a.poll_transmit() {
        if o.frame[0] & 0x1f == Kind::Handshake3.code() {
            third = Some(o.frame);
        } else {
            transport.push(o.frame);
        }
    }
    let third = third.expect("HANDSHAKE_3 sent");
    assert_eq!(
        b.handle_frame(&forge(&third), now),
        Err(SessionError::Handshake(HandshakeFailure::Rejected))
    );
    assert!(!b.is_established(&ida));
    assert_eq!(b.handle_frame(&third, now), Ok(None));
    assert!(
        b.is_established(&ida),
        "the genuine HANDSHAKE_3 still completes the responder"
    );
    let delivered: Vec<_> = transport
        .iter()
        .filter_map(|f| b.handle_frame(f, now).ok().flatten())
        .collect();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].plaintext, b"hi");
    while let Some(e) = a.poll_event() {
        assert!(!matches!(e, SessionEvent::HandshakeFailed { .. }), "{e:?}");
    }
    while let Some(e) = b.poll_event() {
        assert!(!matches!(e, SessionEvent::HandshakeFailed { .. }), "{e:?}");
    }
}
