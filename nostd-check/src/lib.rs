//! Link-time proof that `mesh` needs no `std`: this staticlib is `#![no_std]`, so if `mesh` or any crate it
//! depends on linked `std`, the build would fail with a duplicate `panic_impl` lang item. Built by `scripts/test`.
#![no_std]

extern crate alloc;

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

/// A fixed-arena bump allocator: enough for a check crate that only has to link, never to run for long.
struct Bump {
    arena: UnsafeCell<[u8; 64 * 1024]>,
    next: AtomicUsize,
}

// SAFETY: allocation hands out disjoint ranges through an atomic cursor.
#[allow(unsafe_code)]
unsafe impl Sync for Bump {}

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = self.arena.get() as usize;
        let mut cur = self.next.load(Ordering::Relaxed);
        loop {
            let start = (base + cur).next_multiple_of(layout.align()) - base;
            let end = start + layout.size();
            if end > 64 * 1024 {
                return core::ptr::null_mut();
            }
            match self
                .next
                .compare_exchange(cur, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return (base + start) as *mut u8,
                Err(seen) => cur = seen,
            }
        }
    }
    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static ALLOC: Bump = Bump {
    arena: UnsafeCell::new([0; 64 * 1024]),
    next: AtomicUsize::new(0),
};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// Touches the core's public entry points so that they are linked into the archive.
#[no_mangle]
pub extern "C" fn meshnode_nostd_check() -> u64 {
    let id = mesh::identity::Identity::from_secrets([1; 32], [2; 32]);
    u64::from_le_bytes(id.node_id().0)
}
