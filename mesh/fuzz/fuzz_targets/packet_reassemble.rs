//! Fuzz target: arbitrary packet streams into one `Reassembler`, with time advancing between packets.
//!
//! Input: 2 bytes of configuration (max_frame_len, big-endian, taken as 1 + value % 4096), then records of
//! `time step (1 byte, x 100 ms) || length (2 bytes, big-endian, taken modulo 600) || packet bytes`. The last
//! record takes what is left if shorter. Invariant checked: no panic, no delivered frame is empty or longer than
//! max_frame_len, the heap stays within the configured bound, and the frame counters balance.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesh::link::{Reassembler, ReassemblyConfig};
use mesh::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let Some((cfg, mut rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let max_frame_len = 1 + usize::from(u16::from_be_bytes(*cfg)) % 4096;
    let mut rx = Reassembler::new(ReassemblyConfig {
        max_frame_len,
        ..ReassemblyConfig::default()
    });
    let mut now = Instant::from_millis(0);
    while let Some((head, tail)) = rest.split_first_chunk::<3>() {
        now = now + Duration::from_millis(u64::from(head[0]) * 100);
        let len = usize::from(u16::from_be_bytes([head[1], head[2]])) % 600;
        let (packet, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;
        if let Ok(Some(frame)) = rx.push(packet, now) {
            assert!(!frame.is_empty());
            assert!(
                frame.len() <= max_frame_len,
                "{} > {max_frame_len}",
                frame.len()
            );
        }
        assert!(rx.heap_bytes() <= max_frame_len);
        if head[0] == 0xff {
            rx.remove_expired(now);
        }
        let s = rx.stats();
        assert_eq!(
            s.started,
            s.delivered + s.frames_dropped() + u64::from(rx.has_partial())
        );
    }
});
