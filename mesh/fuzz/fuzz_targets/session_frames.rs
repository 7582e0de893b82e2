//! Fuzz target: arbitrary frames into an established session endpoint must never panic.
//!
//! Invariant: the endpoint is set up deterministically (two identities, fixed seeds, one exchanged message), then
//! each input is split into frames by a length byte and fed with a moving clock; whatever comes out is ignored.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesh::identity::Identity;
use mesh::session::{SessionConfig, Sessions};
use mesh::time::{Duration, Instant};
use mesh::wire::Kind;

fn established() -> (Sessions, Vec<Vec<u8>>) {
    let mut a = Sessions::new(Identity::from_secrets([1; 32], [2; 32]), SessionConfig::default(), [1; 32]);
    let mut b = Sessions::new(Identity::from_secrets([3; 32], [4; 32]), SessionConfig::default(), [2; 32]);
    let now = Instant::from_secs(1);
    let _ = a.send(b.node_id(), Kind::Transport, b"hello", now);
    let mut seen = Vec::new();
    for _ in 0..8 {
        while let Some(o) = a.poll_transmit() {
            let _ = b.handle_frame(&o.frame, now);
            seen.push(o.frame);
        }
        while let Some(o) = b.poll_transmit() {
            let _ = a.handle_frame(&o.frame, now);
        }
    }
    (b, seen)
}

fuzz_target!(|data: &[u8]| {
    let (mut b, seen) = established();
    let mut now = Instant::from_secs(2);
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let n = (len as usize).min(tail.len());
        let (chunk, after) = tail.split_at(n);
        rest = after;
        // Half the time, mutate a real frame so the fuzzer reaches the AEAD and replay paths.
        let frame = match (len & 1, seen.last()) {
            (1, Some(base)) => {
                let mut f = base.clone();
                let flen = f.len().max(1);
                for (i, x) in chunk.iter().enumerate() {
                    if let Some(slot) = f.get_mut(i % flen) {
                        *slot ^= x;
                    }
                }
                f
            }
            _ => chunk.to_vec(),
        };
        let _ = b.handle_frame(&frame, now);
        now = now + Duration::from_millis(u64::from(len) * 100);
        b.handle_timeout(now);
        while b.poll_transmit().is_some() {}
        while b.poll_event().is_some() {}
        let _ = b.poll_timeout();
    }
});
