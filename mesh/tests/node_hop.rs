//! Hop-by-hop acknowledgements and resends (PROTOCOL.md §7.10) between two nodes on one link, with every packet
//! on air visible to the test: which frames are acknowledged, batching, resends, give-ups, bounds, duplicates,
//! hostile LINK_ACKs, and a property test over arbitrary loss patterns.
//!
//! Invariant: deterministic. Time is literal milliseconds, the only randomness is the nodes' seeded RNGs and
//! proptest's fixed seed, and a test decides packet by packet which ones the link loses.

use mesh::identity::{Identity, NodeId};
use mesh::node::{Action, Event, LinkId, Node, NodeConfig, NodeStats, SessionState};
use mesh::session::SessionEvent;
use mesh::time::{Duration, Instant};
use mesh::wire::{encode, Header, Kind, LinkAck};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use std::cell::Cell;

const LINK: LinkId = LinkId(1);
const MTU: u16 = 247;
const A: usize = 0;
const B: usize = 1;

/// The kind code of the frame a SINGLE packet carries (every frame here fits one packet at ATT MTU 247).
fn kind_of(packet: &[u8]) -> Option<u8> {
    (packet.first()? & 0xc0 == 0xc0).then(|| packet.get(1).map(|b| b & 0x1f))?
}

const BROADCAST: u8 = 0x02;
const LINK_ACK: u8 = 0x0c;

/// Two nodes and one link between them, 5 ms each way, in order.
struct Pair {
    nodes: [Node; 2],
    now: Instant,
    /// (arrival, to, packet)
    air: Vec<(Instant, usize, Vec<u8>)>,
    /// Every packet put on air: (from, packet).
    sent: Vec<(usize, Vec<u8>)>,
    events: [Vec<Event>; 2],
    /// Counters when the test proper began (after `settled`).
    base: [NodeStats; 2],
}

/// The hop counters of a node since a baseline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Hop {
    held: u64,
    waiting: u64,
    acked: u64,
    implicit: u64,
    resends: u64,
    gave_up: u64,
    unheld: u64,
    link_gone: u64,
    unmatched: u64,
    acks_sent: u64,
    acks_received: u64,
    off: u64,
    foreign: u64,
    duplicates: u64,
    drop_wire: u64,
}

impl Hop {
    fn between(base: &NodeStats, s: &NodeStats) -> Hop {
        Hop {
            held: s.hop_held - base.hop_held,
            waiting: s.hop_waiting,
            acked: s.hop_acked - base.hop_acked,
            implicit: s.hop_implicit_acks - base.hop_implicit_acks,
            resends: s.hop_resends - base.hop_resends,
            gave_up: s.hop_gave_up - base.hop_gave_up,
            unheld: s.hop_unheld - base.hop_unheld,
            link_gone: s.hop_link_gone - base.hop_link_gone,
            unmatched: s.hop_ack_unmatched - base.hop_ack_unmatched,
            acks_sent: s.hop_acks_sent - base.hop_acks_sent,
            acks_received: s.hop_acks_received - base.hop_acks_received,
            off: s.drop_hop_ack_off - base.drop_hop_ack_off,
            foreign: s.drop_hop_ack_foreign - base.drop_hop_ack_foreign,
            duplicates: s.duplicates - base.duplicates,
            drop_wire: s.drop_wire - base.drop_wire,
        }
    }
}

fn config(acks: bool) -> NodeConfig {
    let mut c = NodeConfig::default();
    c.route.hop_acks = acks;
    c
}

impl Pair {
    fn new(a: NodeConfig, b: NodeConfig) -> Pair {
        let now = Instant::from_millis(1_000);
        let mk = |i: u8, c| {
            Node::new(
                Identity::from_secrets([i + 1; 32], [i + 101; 32]),
                c,
                [i + 7; 32],
                now,
            )
        };
        let mut p = Pair {
            nodes: [mk(0, a), mk(1, b)],
            now,
            air: Vec::new(),
            sent: Vec::new(),
            events: [Vec::new(), Vec::new()],
            base: [NodeStats::default(), NodeStats::default()],
        };
        for n in &mut p.nodes {
            n.link_up(LINK, MTU, now);
        }
        p
    }

    fn id(&self, i: usize) -> NodeId {
        self.nodes[i].node_id()
    }

    fn stats(&self, i: usize) -> NodeStats {
        self.nodes[i].stats()
    }

    /// Hop counters of node `i` since the test proper began.
    fn hop(&self, i: usize) -> Hop {
        Hop::between(&self.base[i], &self.stats(i))
    }

    /// Moves every node output onto the air, asking `lose` about each packet.
    fn collect(&mut self, lose: &mut dyn FnMut(usize, &[u8]) -> bool) {
        for i in 0..2 {
            while let Some(Action::Transmit { link, packet }) = self.nodes[i].poll_action() {
                if link != LINK {
                    continue; // a link to nobody in this test
                }
                self.sent.push((i, packet.clone()));
                if !lose(i, &packet) {
                    let at = self.now + Duration::from_millis(5);
                    self.air.push((at, 1 - i, packet));
                }
            }
            while let Some(e) = self.nodes[i].poll_event() {
                self.events[i].push(e);
            }
        }
    }

    /// Runs to `end`, jumping from one wake-up to the next.
    fn run_until(&mut self, end: Instant, lose: &mut dyn FnMut(usize, &[u8]) -> bool) {
        loop {
            self.collect(lose);
            let next_packet = self.air.iter().map(|a| a.0).min();
            let next_timer = self.nodes.iter().filter_map(|n| n.poll_timeout()).min();
            let Some(next) = [next_packet, next_timer].into_iter().flatten().min() else {
                break;
            };
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            let now = self.now;
            let due: Vec<_> = self.air.iter().filter(|a| a.0 <= now).cloned().collect();
            self.air.retain(|a| a.0 > now);
            for (_, to, packet) in due {
                self.nodes[to].handle_packet(LINK, &packet, now);
            }
            for n in &mut self.nodes {
                if n.poll_timeout().is_some_and(|t| t <= now) {
                    n.handle_timeout(now);
                }
            }
        }
        self.now = end;
    }

    fn run_for(&mut self, ms: u64, lose: &mut dyn FnMut(usize, &[u8]) -> bool) {
        let end = self.now + Duration::from_millis(ms);
        self.run_until(end, lose);
    }

    /// Up, hellos exchanged and acknowledged (both ends know the other acknowledges), first mesh-wide announces
    /// sent: nothing is due for a while. Counters start from here.
    fn settled(a: NodeConfig, b: NodeConfig) -> Pair {
        let mut p = Pair::new(a, b);
        p.run_for(3_000, &mut |_, _| false);
        p.sent.clear();
        p.events = [Vec::new(), Vec::new()];
        p.base = [p.stats(A), p.stats(B)];
        p
    }

    fn received(&self, i: usize, payload: &[u8]) -> usize {
        self.events[i]
            .iter()
            .filter(|e| matches!(e, Event::MessageReceived { payload: p, .. } if p == payload))
            .count()
    }

    fn count_sent(&self, from: usize, kind: u8) -> usize {
        self.sent
            .iter()
            .filter(|(f, p)| *f == from && kind_of(p) == Some(kind))
            .count()
    }

    /// Hands node `to` a frame as if its neighbour had sent it.
    fn inject(&mut self, to: usize, frame: &[u8]) {
        let mut packets = Vec::new();
        for p in mesh::link::Fragmenter::starting_at(40)
            .fragment(frame, MTU)
            .unwrap()
        {
            let mut v = Vec::new();
            p.append_to(&mut v);
            packets.push(v);
        }
        let now = self.now;
        for p in packets {
            self.nodes[to].handle_packet(LINK, &p, now);
        }
    }
}

/// Every wait ended exactly once or is still open.
fn waits_balance(s: &NodeStats) -> bool {
    s.hop_held
        == s.hop_acked + s.hop_implicit_acks + s.hop_gave_up + s.hop_link_gone + s.hop_waiting
}

#[test]
fn hellos_teach_both_ends_and_frames_are_then_acknowledged() {
    let mut p = Pair::new(config(true), config(true));
    // Hello out at link-up, 5 ms on air, acknowledged 10 ms later, 5 ms back.
    p.run_for(30, &mut |_, _| false);
    for i in [A, B] {
        let s = p.stats(i);
        assert_eq!(
            s.hop_acks_sent, 1,
            "node {i} acknowledged the other's hello"
        );
        assert_eq!(s.hop_acks_received, 1);
        assert_eq!(s.hop_ack_unmatched, 0, "the ack matched our last hello");
        assert_eq!(
            s.hop_held, 0,
            "the hello went out before the link was known to acknowledge"
        );
    }
    let mut p = Pair::settled(config(true), config(true));
    let now = p.now;
    p.nodes[A].broadcast(b"one", now).unwrap();
    p.run_for(500, &mut |_, _| false);
    assert_eq!(p.received(B, b"one"), 1);
    let (a, b) = (p.hop(A), p.hop(B));
    assert_eq!((a.held, a.acked, a.resends, a.waiting), (1, 1, 0, 0));
    assert_eq!((b.acks_sent, b.held), (1, 0));
    assert!(waits_balance(&p.stats(A)));
}

#[test]
fn keys_of_a_burst_share_one_ack_and_a_full_batch_goes_at_once() {
    let mut p = Pair::settled(config(true), config(true));
    let now = p.now;
    for k in 0..3u8 {
        p.nodes[A].broadcast(&[b'x', k], now).unwrap();
    }
    p.run_for(500, &mut |_, _| false);
    assert_eq!(p.count_sent(B, LINK_ACK), 1, "three frames, one LINK_ACK");
    assert_eq!(p.hop(A).acked, 3);
    // 18 keys fill a packet at ATT MTU 247: that ack leaves at once, the 19th key waits for the delay.
    p.sent.clear();
    let now = p.now;
    for k in 0..19u8 {
        p.nodes[A].broadcast(&[b'y', k], now).unwrap();
    }
    p.run_for(9, &mut |_, _| false);
    assert_eq!(
        p.count_sent(B, LINK_ACK),
        1,
        "the full batch went before the 10 ms delay"
    );
    p.run_for(500, &mut |_, _| false);
    assert_eq!(p.count_sent(B, LINK_ACK), 2);
    assert_eq!(p.hop(A).acked, 3 + 19);
    assert_eq!(p.hop(A).resends, 0);
}

#[test]
fn a_lost_frame_is_resent_and_delivered_once() {
    let mut p = Pair::settled(config(true), config(true));
    let now = p.now;
    p.nodes[A].broadcast(b"lost once", now).unwrap();
    let mut first = true;
    p.run_for(1_000, &mut |from, pk| {
        let lose = from == A && kind_of(pk) == Some(BROADCAST) && first;
        first &= !lose;
        lose
    });
    assert_eq!(p.received(B, b"lost once"), 1);
    let a = p.hop(A);
    assert_eq!((a.resends, a.acked, a.gave_up), (1, 1, 0));
    assert_eq!(p.count_sent(A, BROADCAST), 2);
}

#[test]
fn a_lost_ack_makes_a_duplicate_that_is_acknowledged_but_not_delivered_again() {
    let mut p = Pair::settled(config(true), config(true));
    let now = p.now;
    p.nodes[A].broadcast(b"ack lost", now).unwrap();
    let mut first = true;
    p.run_for(1_000, &mut |from, pk| {
        let lose = from == B && kind_of(pk) == Some(LINK_ACK) && first;
        first &= !lose;
        lose
    });
    assert_eq!(p.received(B, b"ack lost"), 1, "the resend is a duplicate");
    let (a, b) = (p.hop(A), p.hop(B));
    assert_eq!((a.resends, a.acked), (1, 1));
    assert_eq!(b.duplicates, 1);
    assert_eq!(
        p.count_sent(B, LINK_ACK),
        2,
        "the duplicate was acknowledged again"
    );
}

#[test]
fn a_link_that_loses_everything_is_given_up_after_max_sends() {
    let mut p = Pair::settled(config(true), config(true));
    let now = p.now;
    p.nodes[A].broadcast(b"into the void", now).unwrap();
    let mut lose_all = |from: usize, pk: &[u8]| from == A && kind_of(pk) == Some(BROADCAST);
    p.run_for(10_000, &mut lose_all);
    let a = p.hop(A);
    assert_eq!(p.count_sent(A, BROADCAST), 4, "hop_max_sends");
    assert_eq!((a.resends, a.gave_up, a.waiting), (3, 1, 0));
    assert!(waits_balance(&p.stats(A)));
    assert_eq!(p.received(B, b"into the void"), 0);
}

#[test]
fn resend_waits_double() {
    let mut p = Pair::settled(config(true), config(true));
    let start = p.now;
    p.nodes[A].broadcast(b"backoff", start).unwrap();
    let mut lose = |from: usize, pk: &[u8]| from == A && kind_of(pk) == Some(BROADCAST);
    p.collect(&mut lose);
    let mut sends = vec![0];
    for _ in 0..1_000 {
        p.run_for(1, &mut lose);
        if p.count_sent(A, BROADCAST) > sends.len() {
            sends.push((p.now - start).total_millis());
        }
    }
    // After the settle's samples the link's timeout is the 50 ms floor; then twice as long per resend.
    assert_eq!(sends, [0, 50, 150, 350]);
    assert_eq!(p.hop(A).gave_up, 1);
}

#[test]
fn crossing_copies_acknowledge_each_other_without_a_link_ack() {
    let mut naive = config(true);
    naive.route.policy = mesh::node::RelayPolicy::Naive;
    let mut p = Pair::settled(naive.clone(), naive);
    // A third node's frame reaches both ends at once over other links; both relay it to each other at once.
    let third = Identity::from_secrets([9; 32], [99; 32]);
    let frame = mesh::wire::Broadcast::sign_frame(&third, 0x5151, 5, b"crossing").unwrap();
    let now = p.now;
    for n in p.nodes.iter_mut() {
        n.link_up(LinkId(9), MTU, now);
        for pk in mesh::link::Fragmenter::new().fragment(&frame, MTU).unwrap() {
            let mut v = Vec::new();
            pk.append_to(&mut v);
            n.handle_packet(LinkId(9), &v, now);
        }
    }
    p.run_for(500, &mut |_, _| false);
    let (a, b) = (p.hop(A), p.hop(B));
    assert_eq!((a.held, a.implicit), (1, 1), "{a:?}");
    assert_eq!((b.held, b.implicit), (1, 1), "{b:?}");
    assert_eq!(p.count_sent(A, BROADCAST) + p.count_sent(B, BROADCAST), 2);
    assert_eq!(
        p.count_sent(A, LINK_ACK) + p.count_sent(B, LINK_ACK),
        0,
        "the crossed copies needed no LINK_ACK"
    );
    assert!(waits_balance(&p.stats(A)) && waits_balance(&p.stats(B)));
}

#[test]
fn acks_off_at_one_end_means_nothing_is_held_or_acknowledged() {
    let mut p = Pair::new(config(true), config(false));
    p.run_for(3_000, &mut |_, _| false);
    let (a, b) = (p.stats(A), p.stats(B));
    assert_eq!(b.hop_acks_sent, 0);
    assert_eq!(b.drop_hop_ack_off, 1, "A's ack of B's hello, refused");
    assert_eq!(a.hop_acks_sent, 1, "A acknowledges only the hello");
    let now = p.now;
    p.nodes[A].broadcast(b"plain", now).unwrap();
    p.nodes[B].broadcast(b"plain too", now).unwrap();
    p.run_for(2_000, &mut |_, _| false);
    assert_eq!(p.received(B, b"plain"), 1);
    assert_eq!(p.received(A, b"plain too"), 1);
    let (a, b) = (p.stats(A), p.stats(B));
    assert_eq!((a.hop_held, b.hop_held), (0, 0));
    assert_eq!(a.hop_acks_sent, 1, "A never learned that B acknowledges");
}

#[test]
fn hostile_link_acks_are_counted_and_change_nothing() {
    let mut p = Pair::settled(config(true), config(true));
    let now = p.now;
    p.nodes[A].broadcast(b"guarded", now).unwrap();
    p.collect(&mut |_, _| true); // the frame is lost: A waits for B's ack
    let key = (p.id(A), {
        let (_, pk) = p.sent.last().unwrap();
        u32::from_be_bytes(pk[3..7].try_into().unwrap())
    });
    // From a node that is not the link's neighbour: refused, the wait stays.
    let mallory = NodeId([0x66; 8]);
    p.inject(A, &LinkAck::frame(mallory, 1, &[key]).unwrap());
    assert_eq!((p.hop(A).foreign, p.hop(A).waiting), (1, 1));
    // A relayed TTL (not link-local): refused as a wire error.
    let mut relayed = LinkAck::frame(p.id(B), 2, &[key]).unwrap();
    relayed[1] = 3;
    p.inject(A, &relayed);
    assert_eq!((p.hop(A).drop_wire, p.hop(A).waiting), (1, 1));
    // Malformed body.
    let mut cut = LinkAck::frame(p.id(B), 3, &[key]).unwrap();
    cut.pop();
    p.inject(A, &cut);
    assert_eq!((p.hop(A).drop_wire, p.hop(A).waiting), (2, 1));
    // A flood of acks for frames A never sent: counted, and no memory grows (the first ones warm the link's
    // reassembly buffer: 32 keys take two packets).
    let flood = |p: &mut Pair, from: u32, to: u32| {
        for k in from..to {
            let keys: Vec<(NodeId, u32)> = (0..32).map(|j| (NodeId([7; 8]), k * 32 + j)).collect();
            let ack = LinkAck::frame(p.id(B), 100 + k, &keys).unwrap();
            p.inject(A, &ack);
        }
    };
    flood(&mut p, 0, 10);
    let memory = p.nodes[A].memory_bytes();
    flood(&mut p, 10, 2_000);
    assert_eq!(p.nodes[A].memory_bytes(), memory, "memory grew");
    let a = p.hop(A);
    assert_eq!((a.unmatched, a.waiting, a.acked), (64_000, 1, 0));
    // A LINK_ACK is never acknowledged.
    p.run_for(10, &mut |_, _| true);
    assert_eq!(p.count_sent(A, LINK_ACK), 0);
    // The genuine ack ends the wait.
    p.inject(A, &LinkAck::frame(p.id(B), 9_999, &[key]).unwrap());
    let a = p.hop(A);
    assert_eq!((a.waiting, a.acked), (0, 1));
    assert!(waits_balance(&p.stats(A)));
}

#[test]
fn the_hold_is_bounded_and_refusals_are_counted() {
    let mut small = config(true);
    small.route.hop_max_frames = 4;
    let mut p = Pair::settled(small, config(true));
    let now = p.now;
    for k in 0..10u8 {
        p.nodes[A].broadcast(&[b'h', k], now).unwrap();
    }
    p.collect(&mut |_, _| true);
    let a = p.hop(A);
    assert_eq!((a.held, a.unheld, a.waiting), (4, 6, 4));
    // Bytes: a frame that alone exceeds the bound is sent unheld.
    let mut tiny = config(true);
    tiny.route.hop_max_bytes = 100;
    let mut q = Pair::settled(tiny, config(true));
    let now = q.now;
    q.nodes[A].broadcast(&[b'z'; 200], now).unwrap();
    q.collect(&mut |_, _| true);
    assert_eq!((q.hop(A).held, q.hop(A).unheld), (0, 1));
}

#[test]
fn reassembly_and_session_counters_outlive_their_links() {
    let mut p = Pair::settled(config(true), config(true));
    let (now, peer) = (p.now, p.id(B));
    p.nodes[A].send(peer, b"counted", now).unwrap();
    p.run_for(2_000, &mut |_, _| false);
    let before = p.nodes[B].reassembly_stats();
    assert!(
        before.delivered > 0 && before.packets >= before.delivered,
        "{before:?}"
    );
    // A copy of A's TRANSPORT under another frame id gets past the duplicate cache; the session layer refuses its
    // nonce as a replay (before spending an AEAD check) and counts it by reason.
    let mut forged = p
        .sent
        .iter()
        .find(|(from, pk)| *from == A && kind_of(pk) == Some(0x06))
        .map(|(_, pk)| pk[1..].to_vec())
        .unwrap();
    forged[2] ^= 0xff; // a byte of the frame id
    p.inject(B, &forged);
    assert_eq!(p.stats(B).drop_session, 1);
    assert_eq!(p.nodes[B].session_drops().replay, 1);
    let now = p.now;
    let before = p.nodes[B].reassembly_stats();
    p.nodes[B].link_down(LINK, now);
    let after = p.nodes[B].reassembly_stats();
    assert_eq!(
        after, before,
        "a link's counters are kept when it goes down"
    );
    // A restarted link starts a fresh reassembler; the totals still hold the old one's counts.
    p.nodes[B].link_up(LINK, MTU, now);
    assert_eq!(p.nodes[B].reassembly_stats(), before);
}

#[test]
fn link_down_ends_its_waits() {
    let mut p = Pair::settled(config(true), config(true));
    let now = p.now;
    p.nodes[A].broadcast(b"gone", now).unwrap();
    p.collect(&mut |_, _| true);
    assert_eq!(p.hop(A).waiting, 1);
    p.nodes[A].link_down(LINK, now);
    let a = p.hop(A);
    assert_eq!((a.waiting, a.link_gone), (0, 1));
    assert!(waits_balance(&p.stats(A)));
}

#[test]
fn unknown_kinds_are_acknowledged_too() {
    let mut p = Pair::settled(config(true), config(true));
    let header = Header {
        kind: Kind::Unknown(0x1e),
        ttl: 3,
        frame_id: 77,
        src: NodeId([0x42; 8]),
        dst: NodeId([0x43; 8]),
    };
    let frame = encode(&header, b"from the future").unwrap();
    p.inject(B, &frame);
    p.run_for(50, &mut |_, _| false);
    assert_eq!(p.count_sent(B, LINK_ACK), 1);
}

/// One packet's fate: `true` loses it.
fn loss_pattern() -> impl Strategy<Value = Vec<bool>> {
    prop::collection::vec(prop::bool::weighted(0.3), 0..64)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        rng_seed: RngSeed::Fixed(0x6d65_7368),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Whatever the link loses: each broadcast is delivered at most once; it is delivered whenever one of its
    /// copies got through; every wait ends exactly once; nothing is left waiting once the schedule has run out.
    #[test]
    fn any_loss_pattern_delivers_at_most_once_and_closes_every_wait(
        pattern in loss_pattern(),
        frames in 1usize..6,
    ) {
        let mut p = Pair::settled(config(true), config(true));
        let now = p.now;
        for k in 0..frames {
            p.nodes[A].broadcast(&[b'p', k as u8], now).unwrap();
        }
        let mut fate = pattern.into_iter();
        let mut arrived = vec![0usize; frames];
        let mut lose = |from: usize, pk: &[u8]| {
            let lost = fate.next().unwrap_or(false);
            if !lost && from == A && kind_of(pk) == Some(BROADCAST) {
                if let Some(&k) = pk.get(1 + 22 + 1) {
                    if let Some(n) = arrived.get_mut(usize::from(k)) {
                        *n += 1;
                    }
                }
            }
            lost
        };
        p.run_for(20_000, &mut lose);
        for (k, copies) in arrived.iter().enumerate() {
            let got = p.received(B, &[b'p', k as u8]);
            prop_assert!(got <= 1, "frame {} delivered {} times", k, got);
            prop_assert_eq!(got == 1, *copies > 0, "frame {} copies {}", k, copies);
        }
        let a = p.stats(A);
        prop_assert!(waits_balance(&a), "{:?}", a);
        prop_assert_eq!(a.hop_waiting, 0);
        prop_assert!(p.count_sent(A, BROADCAST) <= frames * 4);
    }
}

/// Node A sends one private message to B; the first copy of HANDSHAKE_3 is lost on the link, so the TRANSPORT
/// right behind it arrives first (PROTOCOL.md §6.8, §7.10). Returns the pair after 5 s.
fn transport_overtakes_handshake_3(max_early_frames: usize) -> Pair {
    let mut b = config(true);
    b.route.max_early_frames = max_early_frames;
    let mut p = Pair::settled(config(true), b);
    let (now, peer) = (p.now, p.id(B));
    p.nodes[A].send(peer, b"early bird", now).unwrap();
    let mut first = true;
    p.run_for(5_000, &mut |from, pk| {
        let lose = from == A && kind_of(pk) == Some(0x05) && first;
        first &= !lose;
        lose
    });
    p
}

#[test]
fn a_transport_that_overtakes_its_handshake_3_waits_for_it() {
    let p = transport_overtakes_handshake_3(8);
    let (a, b) = (p.stats(A), p.stats(B));
    assert_eq!(p.received(B, b"early bird"), 1);
    assert_eq!((b.early_held, b.early_released, b.drop_early), (1, 1, 0));
    assert_eq!(a.retries, 0, "delivered without an end-to-end retry");
    assert!(p.events[A]
        .iter()
        .any(|e| matches!(e, Event::DeliveryConfirmed { .. })));
    // Without the hold the frame is refused and only the end-to-end retry (2 s later) delivers it.
    let p = transport_overtakes_handshake_3(0);
    let (a, b) = (p.stats(A), p.stats(B));
    assert_eq!(p.received(B, b"early bird"), 1);
    assert_eq!((b.early_held, b.drop_early), (0, 1));
    assert_eq!(a.retries, 1);
}

/// A renewal's HANDSHAKE_3 is lost once, so the first TRANSPORT its initiator seals under the renewed session
/// arrives before it (PROTOCOL.md §6.8): it is held, and opened once the renewal completes, like a first session's
/// early frames (it used to wait out its 20 s hold and cost an end-to-end retry). Returns the pair and which node
/// started the renewal.
fn transport_overtakes_a_renewal(max_early_frames: usize) -> (Pair, usize) {
    let mut a = config(true);
    a.session.max_messages = 10; // renewal from 8 messages (80 %)
    a.route.max_early_frames = max_early_frames;
    let mut p = Pair::settled(a.clone(), a);
    // The first HANDSHAKE_3 after the first session's is the renewal's: lose it once, and note who sent it.
    let (hs3, initiator) = (Cell::new(0), Cell::new(None));
    let mut lose = |from: usize, pk: &[u8]| {
        if kind_of(pk) != Some(0x05) {
            return false;
        }
        hs3.set(hs3.get() + 1);
        if hs3.get() == 2 {
            initiator.set(Some(from));
        }
        hs3.get() == 2
    };
    // Messages one at a time until the renewal's HANDSHAKE_3 is lost.
    let mut k = 0u8;
    'send: loop {
        assert!(k < 10, "no renewal HANDSHAKE_3 went out");
        let (now, peer) = (p.now, p.id(B));
        p.nodes[A].send(peer, &[b'r', k], now).unwrap();
        k += 1;
        for _ in 0..100 {
            p.run_for(5, &mut lose);
            if initiator.get().is_some() {
                break 'send;
            }
        }
    }
    // The initiator sends at once, on the renewed session, before the link resends its HANDSHAKE_3.
    let from = initiator.get().unwrap();
    let (now, peer) = (p.now, p.id(1 - from));
    p.nodes[from].send(peer, b"after renewal", now).unwrap();
    p.run_for(5_000, &mut lose);
    (p, from)
}

#[test]
fn a_transport_that_overtakes_a_renewals_handshake_3_waits_for_it() {
    let (p, from) = transport_overtakes_a_renewal(8);
    let (sender, receiver) = (p.stats(from), p.stats(1 - from));
    for i in [A, B] {
        assert!(p.events[i]
            .iter()
            .any(|e| matches!(e, Event::Session(SessionEvent::Renewed { .. }))));
    }
    assert_eq!(p.received(1 - from, b"after renewal"), 1);
    assert_eq!(
        (
            receiver.early_held,
            receiver.early_released,
            receiver.drop_early
        ),
        (1, 1, 0)
    );
    assert_eq!(sender.retries, 0, "delivered without an end-to-end retry");
}

/// `Node::peers` tells a first handshake, an established session and a renewal apart.
#[test]
fn peers_show_handshaking_established_and_renewing() {
    let state = |p: &Pair, i: usize| {
        let other = p.id(1 - i);
        p.nodes[i]
            .peers()
            .into_iter()
            .find(|x| x.id == other)
            .map(|x| x.session)
    };
    let mut c = config(true);
    c.session.max_messages = 10;
    let mut p = Pair::settled(c.clone(), c);
    assert_eq!(state(&p, A), Some(SessionState::None));
    let (now, peer) = (p.now, p.id(B));
    p.nodes[A].send(peer, b"hi", now).unwrap();
    assert_eq!(state(&p, A), Some(SessionState::Handshaking));
    p.run_for(1_000, &mut |_, _| false);
    assert_eq!(state(&p, A), Some(SessionState::Established));
    assert!(state(&p, A).unwrap().is_established());
    // Up to the renewal threshold, then the first HANDSHAKE_2 of the renewal is held back: both ends renewing.
    let mut renewing = false;
    for k in 0..8u8 {
        let now = p.now;
        p.nodes[A].send(peer, &[b's', k], now).unwrap();
        p.run_for(300, &mut |_, pk| kind_of(pk) == Some(0x04));
        if [A, B]
            .iter()
            .any(|&i| state(&p, i) == Some(SessionState::Renewing))
        {
            renewing = true;
            break;
        }
    }
    assert!(renewing, "no renewal in progress");
    p.run_for(10_000, &mut |_, _| false);
    assert_eq!(state(&p, A), Some(SessionState::Established));
    assert_eq!(state(&p, B), Some(SessionState::Established));
    assert_eq!(SessionState::Renewing.name(), "renewing");
}

#[test]
fn early_frames_are_bounded_and_expire() {
    let mut a = config(true);
    a.route.ack_timeout = Duration::from_secs(100); // no end-to-end retry during the test
    let mut b = config(true);
    b.route.max_early_frames = 2;
    let mut p = Pair::settled(a, b);
    let (now, peer) = (p.now, p.id(B));
    for k in 0..3u8 {
        p.nodes[A].send(peer, &[b'e', k], now).unwrap();
    }
    // HANDSHAKE_3 never gets through: the three TRANSPORTs behind it wait for it, at most 2 at a time.
    let mut no_third = |from: usize, pk: &[u8]| from == A && kind_of(pk) == Some(0x05);
    p.run_for(1_000, &mut no_third);
    let b = p.stats(B);
    assert_eq!((b.early_held, b.drop_early, b.early_released), (3, 1, 0));
    // A goes quiet; what B holds must still go.
    let now = p.now;
    p.nodes[A].link_down(LINK, now);
    p.run_for(18_000, &mut no_third);
    assert_eq!(p.stats(B).drop_early, 1, "still within the 20 s lifetime");
    p.run_for(2_000, &mut no_third);
    let b = p.stats(B);
    assert_eq!((b.drop_early, b.early_released), (3, 0), "expired");
    assert_eq!(p.received(B, &[b'e', 0]), 0);
}
