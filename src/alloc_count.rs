//! A counting global allocator: the heap bytes live right now, so benchmarks can report memory per session and
//! per link as measured, not estimated; and, per thread, the bytes that thread holds and their peak since
//! `reset_thread_peak`, so `simulate` can report the most memory each policy's run held while the two run side by
//! side on two threads. The cost is one relaxed atomic add and two thread-local updates per allocation and free.
//!
//! Invariant: the thread-local counters are `const`-initialised `Cell`s with no destructor, so touching them from
//! inside the allocator never allocates; after a thread's locals are gone (`try_with` fails) it is just not
//! counted per thread. Bytes freed on another thread than the one that allocated them make the per-thread figure
//! approximate; a simulation allocates and frees on its own thread.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_LIVE: Cell<isize> = const { Cell::new(0) };
    static THREAD_PEAK: Cell<isize> = const { Cell::new(0) };
}

fn grow(size: usize) {
    LIVE.fetch_add(size, Ordering::Relaxed);
    let size = isize::try_from(size).unwrap_or(isize::MAX);
    let _ = THREAD_LIVE.try_with(|live| {
        let now = live.get().saturating_add(size);
        live.set(now);
        let _ = THREAD_PEAK.try_with(|peak| {
            if now > peak.get() {
                peak.set(now);
            }
        });
    });
}

fn shrink(size: usize) {
    LIVE.fetch_sub(size, Ordering::Relaxed);
    let size = isize::try_from(size).unwrap_or(isize::MAX);
    let _ = THREAD_LIVE.try_with(|live| live.set(live.get().saturating_sub(size)));
}

// SAFETY: every call is forwarded unchanged to the system allocator; we only count sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        shrink(layout.size());
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grow(layout.size());
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            shrink(layout.size());
            grow(new_size);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap bytes currently allocated by this process.
pub fn live_bytes() -> usize {
    LIVE.load(Ordering::Relaxed)
}

/// Heap bytes the calling thread holds now (allocated by it and not yet freed).
pub fn thread_live_bytes() -> usize {
    THREAD_LIVE.with(|l| usize::try_from(l.get()).unwrap_or(0))
}

/// The most heap bytes the calling thread held at once since its last [`reset_thread_peak`].
pub fn thread_peak_bytes() -> usize {
    THREAD_PEAK.with(|p| usize::try_from(p.get()).unwrap_or(0))
}

/// Starts a new peak measurement on the calling thread from the bytes it holds now.
pub fn reset_thread_peak() {
    let live = THREAD_LIVE.with(Cell::get);
    THREAD_PEAK.with(|p| p.set(live));
}
