//! Golden vectors of PROTOCOL.md §8.2, checked byte for byte against `mesh::link`.
//!
//! Invariant: each vector is produced exactly by a fresh `Fragmenter` (at the stated starting sequence number)
//! from the stated frame, and a fresh `Reassembler` turns its packets back into that frame with no drop.

mod common;

use mesh::link::{Fragmenter, LinkError, Reassembler, ReassemblyConfig};
use mesh::time::Instant;

/// Fragments `frame` at `mtu` from `start_seq`, checks the concatenated packets against vector `name` and the
/// packet lengths against `lens`, then reassembles the vector's packets and checks the frame comes back.
fn check(name: &str, frame_len: u8, mtu: u16, start_seq: u8, lens: &[usize]) {
    let frame: Vec<u8> = (0..frame_len).collect();
    let expected = common::vector(name);

    let mut tx = Fragmenter::starting_at(start_seq);
    let mut got = Vec::new();
    let mut got_lens = Vec::new();
    for p in tx.fragment(&frame, mtu).expect("valid frame and mtu") {
        p.append_to(&mut got);
        got_lens.push(p.len());
    }
    assert_eq!(hex::encode(&got), hex::encode(&expected), "vector {name}");
    assert_eq!(got_lens, lens, "vector {name}: packet boundaries");

    let mut rx = Reassembler::default();
    let mut rest = expected.as_slice();
    let mut delivered = None;
    for &len in lens {
        let (packet, tail) = rest.split_at(len);
        rest = tail;
        delivered = rx
            .push(packet, Instant::from_secs(1))
            .unwrap_or_else(|e| panic!("vector {name}: {e}"))
            .map(<[u8]>::to_vec);
    }
    assert!(rest.is_empty());
    assert_eq!(delivered, Some(frame), "vector {name}: reassembly");
}

#[test]
fn packet_single() {
    check("packet_single", 10, 247, 5, &[11]);
}

#[test]
fn packets_mtu23_frame50() {
    check("packets_mtu23_frame50", 50, 23, 0, &[20, 20, 14]);
}

#[test]
fn packets_mtu23_frame19() {
    check("packets_mtu23_frame19", 19, 23, 0, &[20]);
}

#[test]
fn packets_mtu23_frame20() {
    check("packets_mtu23_frame20", 20, 23, 0, &[20, 3]);
}

#[test]
fn packets_mtu23_seq62_frame40() {
    check("packets_mtu23_seq62_frame40", 40, 23, 62, &[20, 20, 4]);
}

/// Splits a vector into its packets at the given lengths.
fn split(vector: &[u8], lens: &[usize]) -> Vec<Vec<u8>> {
    let mut rest = vector;
    lens.iter()
        .map(|&len| {
            let (p, tail) = rest.split_at(len);
            rest = tail;
            p.to_vec()
        })
        .collect()
}

#[test]
fn vector_with_a_lost_middle_is_not_delivered() {
    let ps = split(&common::vector("packets_mtu23_frame50"), &[20, 20, 14]);
    let mut rx = Reassembler::default();
    let now = Instant::from_secs(1);
    assert_eq!(rx.push(&ps[0], now), Ok(None));
    assert_eq!(rx.push(&ps[2], now), Err(LinkError::Orphan));
    assert_eq!(rx.stats().dropped_gap, 1);
    assert_eq!(rx.stats().delivered, 0);
}

#[test]
fn vector_with_its_last_relabelled_middle_is_malformed() {
    let mut ps = split(&common::vector("packets_mtu23_frame50"), &[20, 20, 14]);
    ps[2][0] &= 0x3f; // LAST (0b01) -> MIDDLE (0b00), same seq
    let mut rx = Reassembler::default();
    let now = Instant::from_secs(1);
    assert_eq!(rx.push(&ps[0], now), Ok(None));
    assert_eq!(rx.push(&ps[1], now), Ok(None));
    assert_eq!(rx.push(&ps[2], now), Err(LinkError::Malformed));
    assert!(!rx.has_partial());
}

#[test]
fn vector_over_a_lower_receiver_limit_is_too_long() {
    let ps = split(&common::vector("packets_mtu23_frame20"), &[20, 3]);
    let mut rx = Reassembler::new(ReassemblyConfig {
        max_frame_len: 19,
        ..ReassemblyConfig::default()
    });
    let now = Instant::from_secs(1);
    assert_eq!(rx.push(&ps[0], now), Ok(None));
    assert_eq!(rx.push(&ps[1], now), Err(LinkError::TooLong));
    assert_eq!(rx.stats().dropped_too_long, 1);
    // The 19-byte SINGLE is exactly at the limit and is delivered.
    let single = common::vector("packets_mtu23_frame19");
    let mut rx = Reassembler::new(ReassemblyConfig {
        max_frame_len: 19,
        ..ReassemblyConfig::default()
    });
    assert_eq!(
        rx.push(&single, now).map(|f| f.map(<[u8]>::len)),
        Ok(Some(19))
    );
}

#[test]
fn vector_packets_out_of_order_are_never_delivered() {
    let ps = split(&common::vector("packets_mtu23_seq62_frame40"), &[20, 20, 4]);
    for order in [[1, 0, 2], [0, 2, 1], [2, 1, 0], [1, 2, 0], [2, 0, 1]] {
        let mut rx = Reassembler::default();
        for i in order {
            assert!(
                !matches!(rx.push(&ps[i], Instant::from_secs(1)), Ok(Some(_))),
                "{order:?}"
            );
        }
    }
}
