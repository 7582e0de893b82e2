//! Property tests of `mesh::link` (PROTOCOL.md §3): fragmenting then reassembling is the identity at every ATT
//! MTU; under seeded packet loss only frames sent whole are delivered, in order and byte-identical, and the
//! counters account for every frame; splices never deliver; arbitrary bytes never panic and memory stays bounded.
//!
//! Invariant: every test is deterministic (fixed proptest seed, no failure files, ChaCha-seeded loss, literal
//! times).

use mesh::link::{
    on_air_len, packet_count, Fragmenter, LinkError, PacketKind, Reassembler, ReassemblyConfig,
    ReassemblyStats, ATT_MTU_MAX, ATT_MTU_MIN, MAX_FRAME_LEN,
};
use mesh::time::{Duration, Instant};
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, RngSeed};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0x6d65_7368),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The packets of `frame` at `mtu`, each as its own Vec.
fn fragment(tx: &mut Fragmenter, frame: &[u8], mtu: u16) -> Vec<Vec<u8>> {
    tx.fragment(frame, mtu)
        .expect("valid frame and mtu")
        .map(|p| {
            let mut v = Vec::with_capacity(p.len());
            p.append_to(&mut v);
            v
        })
        .collect()
}

fn random_frame(rng: &mut ChaCha8Rng, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    rng.fill_bytes(&mut f);
    f
}

fn books_balance(rx: &Reassembler) -> bool {
    let s = rx.stats();
    s.started == s.delivered + s.frames_dropped() + u64::from(rx.has_partial())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn fragment_then_reassemble_is_identity(
        frame in prop::collection::vec(any::<u8>(), 1..=MAX_FRAME_LEN),
        mtu in ATT_MTU_MIN..=ATT_MTU_MAX,
        start_seq in 0u8..64,
    ) {
        let mut tx = Fragmenter::starting_at(start_seq);
        let mut rx = Reassembler::default();
        let packets = fragment(&mut tx, &frame, mtu);
        let n = packets.len();
        prop_assert_eq!(Ok(n), packet_count(frame.len(), mtu));
        let total: usize = packets.iter().map(Vec::len).sum();
        let overhead = if n == 1 { 1 } else { n + 1 };
        prop_assert_eq!(total, frame.len() + overhead);
        prop_assert_eq!(Ok(total), on_air_len(frame.len(), mtu));
        prop_assert_eq!(usize::from(tx.next_seq()), (usize::from(start_seq) + n) % 64);
        let now = Instant::from_secs(7);
        for (i, p) in packets.iter().enumerate() {
            prop_assert!(p.len() <= usize::from(mtu - 3));
            if i + 1 < n {
                prop_assert_eq!(p.len(), usize::from(mtu - 3));
                prop_assert_eq!(rx.push(p, now), Ok(None));
            } else {
                prop_assert_eq!(rx.push(p, now), Ok(Some(&frame[..])));
            }
        }
        prop_assert_eq!(rx.stats().delivered, 1);
        prop_assert!(books_balance(&rx));
    }

    #[test]
    fn loss_delivers_only_whole_frames_in_order(
        seed in any::<u64>(),
        loss_percent in 0u32..=50,
        lens in prop::collection::vec(1usize..=MAX_FRAME_LEN, 1..24),
        mtu in ATT_MTU_MIN..=ATT_MTU_MAX,
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut tx = Fragmenter::new();
        let mut rx = Reassembler::default();
        let mut now = Instant::from_millis(0);
        let mut delivered = Vec::new();
        // What the test expects, from the losses it chose.
        let mut expect_whole = Vec::new();
        let (mut expect_dropped, mut expect_never_started, mut expect_orphans) = (0u64, 0u64, 0u64);
        let mut errors = Vec::new();
        for &len in &lens {
            let frame = random_frame(&mut rng, len);
            let packets = fragment(&mut tx, &frame, mtu);
            let kept: Vec<bool> =
                packets.iter().map(|_| rng.next_u32() % 100 >= loss_percent).collect();
            let first_lost = kept.iter().position(|k| !k);
            match first_lost {
                None => expect_whole.push(frame.clone()),
                Some(0) => expect_never_started += 1,
                Some(_) => expect_dropped += 1,
            }
            if let Some(i) = first_lost {
                expect_orphans += kept[i..].iter().filter(|k| **k).count() as u64;
            }
            for (p, keep) in packets.iter().zip(&kept) {
                now = now + Duration::from_millis(1);
                if !keep {
                    continue;
                }
                match rx.push(p, now) {
                    Ok(Some(f)) => delivered.push(f.to_vec()),
                    Ok(None) => {}
                    Err(e) => errors.push(e),
                }
            }
        }
        // The last frame may still be open: its timeout closes the books.
        rx.remove_expired(now + Duration::from_secs(5));
        prop_assert!(!rx.has_partial());
        prop_assert_eq!(&delivered, &expect_whole);
        let s: ReassemblyStats = *rx.stats();
        prop_assert_eq!(s.delivered, expect_whole.len() as u64);
        prop_assert_eq!(s.frames_dropped(), expect_dropped);
        prop_assert_eq!(s.delivered + s.frames_dropped() + expect_never_started, lens.len() as u64);
        prop_assert_eq!(s.orphan_packets, expect_orphans);
        prop_assert_eq!(s.malformed_packets + s.dropped_malformed + s.dropped_too_long, 0);
        prop_assert!(books_balance(&rx));
        prop_assert!(errors.iter().all(|e| matches!(
            e,
            LinkError::Gap | LinkError::Orphan | LinkError::Interrupted | LinkError::TimedOut
        )));
    }

    #[test]
    fn splices_never_deliver(
        seed in any::<u64>(),
        len_a in 40usize..=MAX_FRAME_LEN,
        len_b in 40usize..=MAX_FRAME_LEN,
        mtu in ATT_MTU_MIN..=ATT_MTU_MAX,
        cut_a in any::<prop::sample::Index>(),
        cut_b in any::<prop::sample::Index>(),
        gap_frames in 0usize..3,
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut tx = Fragmenter::new();
        let a = fragment(&mut tx, &random_frame(&mut rng, len_a), mtu);
        // Frames sent between A and B and lost entirely.
        let mut lost_between = 0;
        for _ in 0..gap_frames {
            lost_between += fragment(&mut tx, &random_frame(&mut rng, 30), mtu).len();
        }
        let b = fragment(&mut tx, &random_frame(&mut rng, len_b), mtu);
        prop_assume!(a.len() >= 2 && b.len() >= 2);
        // Keep A's first `keep_a` packets (1..len) and B's packets from `from_b` (1..len) on.
        let keep_a = 1 + cut_a.index(a.len() - 1);
        let from_b = 1 + cut_b.index(b.len() - 1);
        let lost = (a.len() - keep_a) + lost_between + from_b;
        // §3.3: only a loss of a multiple of 64 packets is invisible to the sequence numbers.
        prop_assume!(lost % 64 != 0);
        let mut rx = Reassembler::default();
        let now = Instant::from_secs(1);
        for p in a[..keep_a].iter().chain(&b[from_b..]) {
            prop_assert!(!matches!(rx.push(p, now), Ok(Some(_))));
        }
        prop_assert_eq!(rx.stats().delivered, 0);
        prop_assert!(books_balance(&rx));
    }

    #[test]
    fn arbitrary_packets_never_panic_and_stay_bounded(
        max_frame_len in 1usize..=MAX_FRAME_LEN + 10,
        packets in prop::collection::vec(
            (0u64..3_000, prop::collection::vec(any::<u8>(), 0..600)),
            0..200,
        ),
    ) {
        let mut rx = Reassembler::new(ReassemblyConfig { max_frame_len, ..ReassemblyConfig::default() });
        let limit = max_frame_len.min(MAX_FRAME_LEN);
        let mut now = Instant::from_millis(0);
        for (step, p) in &packets {
            now = now + Duration::from_millis(*step);
            if let Ok(Some(f)) = rx.push(p, now) {
                prop_assert!(!f.is_empty() && f.len() <= limit);
            }
            prop_assert!(rx.heap_bytes() <= limit);
            prop_assert!(books_balance(&rx));
        }
        prop_assert_eq!(rx.stats().packets, packets.len() as u64);
    }

    /// Well-formed-looking headers with mostly consecutive sequence numbers reach the deeper rules.
    #[test]
    fn structured_adversarial_packets_stay_bounded(
        max_frame_len in 1usize..=MAX_FRAME_LEN,
        packets in prop::collection::vec(
            (0u8..4, any::<bool>(), any::<u8>(), 0u64..2_000, 0usize..515),
            0..300,
        ),
    ) {
        let mut rx = Reassembler::new(ReassemblyConfig { max_frame_len, ..ReassemblyConfig::default() });
        let mut seq = 0u8;
        let mut now = Instant::from_millis(0);
        for (kind, skip, count, step, len) in packets {
            seq = (seq + u8::from(skip) * 3 + 1) % 64;
            let mut p = vec![(kind << 6) | seq];
            if kind == PacketKind::First.code() {
                p.push(count);
            }
            p.resize(p.len() + len, 0xa5);
            now = now + Duration::from_millis(step);
            if let Ok(Some(f)) = rx.push(&p, now) {
                prop_assert!(!f.is_empty() && f.len() <= max_frame_len);
            }
            prop_assert!(rx.heap_bytes() <= max_frame_len);
            prop_assert!(books_balance(&rx));
        }
    }
}

#[test]
fn one_packet_payload_and_one_byte_more_at_mtu_edges() {
    for mtu in [ATT_MTU_MIN, ATT_MTU_MAX] {
        let payload = usize::from(mtu - 3);
        for (len, packets) in [(payload - 1, 1), (payload, 2)] {
            let frame: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let ps = fragment(&mut Fragmenter::new(), &frame, mtu);
            assert_eq!(ps.len(), packets, "mtu {mtu} len {len}");
            assert!(ps.iter().all(|p| p.len() <= payload));
            let mut rx = Reassembler::default();
            let mut out = None;
            for p in &ps {
                out = rx
                    .push(p, Instant::ZERO)
                    .expect("no loss")
                    .map(<[u8]>::to_vec);
            }
            assert_eq!(out, Some(frame));
        }
    }
}

#[test]
fn slow_frame_times_out_five_seconds_after_its_first_packet() {
    // 100 bytes at MTU 23: 6 packets, one per second from t = 100 s.
    let frame: Vec<u8> = (0..100).collect();
    let ps = fragment(&mut Fragmenter::new(), &frame, 23);
    assert_eq!(ps.len(), 6);
    let mut rx = Reassembler::default();
    for (i, p) in ps.iter().enumerate().take(5) {
        assert_eq!(rx.push(p, Instant::from_secs(100 + i as u64)), Ok(None));
    }
    assert_eq!(rx.expires_at(), Some(Instant::from_secs(105)));
    assert_eq!(
        rx.push(&ps[5], Instant::from_secs(105)),
        Err(LinkError::Orphan)
    );
    assert_eq!(rx.stats().dropped_timed_out, 1);

    // The same frame with its last packet at 104.999 s is delivered.
    let mut rx = Reassembler::default();
    for p in &ps[..5] {
        assert_eq!(rx.push(p, Instant::from_secs(100)), Ok(None));
    }
    assert_eq!(
        rx.push(&ps[5], Instant::from_millis(104_999)),
        Ok(Some(&frame[..]))
    );
}

#[test]
fn fresh_link_state_after_reconnection() {
    // A link drops mid-frame; the runtime makes a fresh Fragmenter and Reassembler for the new link, so the
    // tail of the old frame can never join the new link's packets.
    let frame: Vec<u8> = (0..60).collect();
    let old = fragment(&mut Fragmenter::new(), &frame, 23);
    let mut rx = Reassembler::default();
    assert_eq!(rx.push(&old[0], Instant::ZERO), Ok(None));
    let mut rx = Reassembler::default();
    assert_eq!(rx.push(&old[1], Instant::ZERO), Err(LinkError::Orphan));
    let new = fragment(&mut Fragmenter::new(), &frame, 23);
    let mut out = None;
    for p in &new {
        out = rx.push(p, Instant::ZERO).ok().flatten().map(<[u8]>::to_vec);
    }
    assert_eq!(out, Some(frame));
}
