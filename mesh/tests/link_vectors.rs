//! Golden vectors of PROTOCOL.md §8.2, checked byte for byte against `mesh::link`.
//!
//! Invariant: each vector is produced exactly by a fresh `Fragmenter` (at the stated starting sequence number)
//! from the stated frame, and a fresh `Reassembler` turns its packets back into that frame with no drop.

mod common;

use mesh::link::{Fragmenter, Reassembler};
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
