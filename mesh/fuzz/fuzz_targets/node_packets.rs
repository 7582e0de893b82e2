//! Fuzz target: arbitrary packets and LINK_ACKs into a node with two links must never panic, never leave a
//! deadline in the past, and never grow the node's memory past its bounds (PROTOCOL.md §3, §7.10).
//!
//! Invariant: the node is set up deterministically (fixed identity and seed, two links, the neighbour on link 1
//! known to acknowledge, a few frames sent and held there); each input is split into records by a length byte and
//! fed with a moving clock. A record's low bits choose its form: raw packet bytes, or a frame (half of them a
//! LINK_ACK built from the record's bytes, so the fuzzer reaches the key matching) wrapped in SINGLE packets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesh::identity::{Identity, NodeId};
use mesh::link::Fragmenter;
use mesh::node::{LinkId, Node, NodeConfig};
use mesh::time::{Duration, Instant};
use mesh::wire::LinkAck;

/// Far above what the configured bounds allow (held frames 32 KiB, reassembly 4 KiB per link, ...), far below
/// what an unbounded table would reach under a long input.
const MEMORY_BOUND: usize = 4 << 20;

fn node() -> (Node, NodeId) {
    let now = Instant::from_secs(1);
    let mut n = Node::new(Identity::from_secrets([1; 32], [2; 32]), NodeConfig::default(), [3; 32], now);
    let neighbour = NodeId([0x42; 8]);
    n.link_up(LinkId(1), 247, now);
    n.link_up(LinkId(2), 23, now);
    // The neighbour on link 1 acknowledges: from now on frames sent there are held.
    if let Ok(ack) = LinkAck::frame(neighbour, 1, &[(NodeId([9; 8]), 9)]) {
        feed(&mut n, LinkId(1), &ack, now);
    }
    for k in 0..4u8 {
        let _ = n.broadcast(&[b'f', k], now);
    }
    while n.poll_action().is_some() {}
    (n, neighbour)
}

fn feed(n: &mut Node, link: LinkId, frame: &[u8], now: Instant) {
    let mut f = Fragmenter::new();
    let Ok(packets) = f.fragment(frame, 247) else { return };
    for p in packets {
        let mut v = Vec::new();
        p.append_to(&mut v);
        n.handle_packet(link, &v, now);
    }
}

fuzz_target!(|data: &[u8]| {
    let (mut n, neighbour) = node();
    let mut now = Instant::from_secs(2);
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let k = (len as usize).min(tail.len());
        let (chunk, after) = tail.split_at(k);
        rest = after;
        let link = LinkId(1 + u32::from(len >> 7));
        match len & 3 {
            0 => n.handle_packet(link, chunk, now),
            1 => {
                let keys: Vec<(NodeId, u32)> = chunk
                    .chunks_exact(12)
                    .take(32)
                    .map(|c| {
                        let mut id = [0u8; 8];
                        id.copy_from_slice(&c[..8]);
                        (NodeId(id), u32::from_be_bytes([c[8], c[9], c[10], c[11]]))
                    })
                    .collect();
                if let Ok(ack) = LinkAck::frame(neighbour, u32::from(len), &keys) {
                    feed(&mut n, link, &ack, now);
                }
            }
            _ => feed(&mut n, link, chunk, now),
        }
        now = now + Duration::from_millis(u64::from(len) * 7);
        if n.poll_timeout().is_some_and(|t| t <= now) {
            n.handle_timeout(now);
            assert!(n.poll_timeout().is_none_or(|t| t > now), "deadline left in the past");
        }
        while n.poll_action().is_some() {}
        while n.poll_event().is_some() {}
        assert!(n.memory_bytes() < MEMORY_BOUND, "memory {}", n.memory_bytes());
        let s = n.stats();
        assert_eq!(
            s.hop_held,
            s.hop_acked + s.hop_implicit_acks + s.hop_gave_up + s.hop_link_gone + s.hop_waiting,
            "a wait ended twice or vanished"
        );
    }
});
