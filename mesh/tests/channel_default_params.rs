//! The interoperable channel key derivation (PROTOCOL.md §7.9) with its real parameters: the key matches the
//! `channel_key_default` vector, and Argon2id really works in m = 19456 KiB of memory.
//!
//! Invariant: this binary holds one test, so the counting allocator below sees only `ChannelKey::derive`. It takes
//! about a tenth of a second in a debug build (dependencies are optimised, see the workspace profile).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use mesh::channel::{ChannelKey, ChannelParams};

/// The system allocator, remembering the largest single allocation.
struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only records sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn default_derivation_matches_vector_and_uses_19_mib() {
    LARGEST.store(0, Ordering::Relaxed);
    let key = ChannelKey::derive("general", b"correct horse battery staple").unwrap();
    let largest = LARGEST.load(Ordering::Relaxed);
    assert_eq!(
        key.as_bytes().to_vec(),
        common::vector("channel_key_default")
    );
    let memory = ChannelParams::DEFAULT.memory_kib as usize * 1024;
    assert_eq!(memory, 19456 * 1024);
    assert!(
        largest >= memory,
        "Argon2id working memory was {largest} bytes, expected at least {memory}"
    );
    // Same key through the explicit parameters.
    let again = ChannelKey::derive_with(
        "general",
        b"correct horse battery staple",
        ChannelParams::DEFAULT,
    )
    .unwrap();
    assert_eq!(again.as_bytes(), key.as_bytes());
    // And through caller-provided memory (how meshnode's key worker derives), in a buffer reused for a second key:
    // the same key both times, and no further allocation of working memory.
    let mut memory = mesh::channel::alloc_memory(ChannelParams::DEFAULT).unwrap();
    for _ in 0..2 {
        LARGEST.store(0, Ordering::Relaxed);
        let reused = ChannelKey::derive_with_memory(
            "general",
            b"correct horse battery staple",
            ChannelParams::DEFAULT,
            &mut memory,
        )
        .unwrap();
        assert_eq!(reused.as_bytes(), key.as_bytes());
        assert!(LARGEST.load(Ordering::Relaxed) < 1024 * 1024);
    }
}
