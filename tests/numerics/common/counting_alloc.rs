//! The test binary's global allocator: it counts allocations per thread, for tests that prove
//! a hot path allocates nothing. The count is the calling thread's own, so tests running on
//! other threads of this binary at the same time do not disturb it.
//!
//! Not counted: allocations aligned to 16 bytes or more. Those are `matrixmultiply`'s packing
//! buffers (one per packed product, freed before it returns; the crate has no way to pass one
//! in). Nothing of ours asks for such alignment, so everything else is counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    // Why `const` and a plain `Cell`: no lazy initialisation and no destructor, so reaching it
    // from inside the allocator never allocates (or recurses into the allocator).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The smallest alignment `matrixmultiply` asks of its packing buffers (16 for its SSE2
/// kernel; 32 or 64 for AVX and AVX-512).
const PACKING_ALIGN: usize = 16;

/// Counts one allocation of `layout` on the current thread.
fn count(layout: Layout) {
    if layout.align() < PACKING_ALIGN {
        // Why `try_with`: the allocator must never panic; while a thread is being torn down
        // its thread-locals may be gone, and such an allocation is simply not counted.
        let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
    }
}

/// Counts allocations made on the current thread, and forwards every call to the system
/// allocator.
struct CountingAllocator;

// Why unsafe: counting allocations needs a global allocator, and `GlobalAlloc` is an unsafe
// trait; this one only forwards to the system allocator.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout);
        // SAFETY: forwarded unchanged to the system allocator, under the caller's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout);
        // SAFETY: forwarded unchanged to the system allocator, under the caller's contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    // Why: the default `realloc` allocates, copies and frees; the system's may grow in place.
    // A reallocation counts as an allocation (a `Vec` growing in a hot path is one).
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // `layout.align()` is the alignment of the new block too.
        count(layout);
        // SAFETY: forwarded unchanged to the system allocator, under the caller's contract
        // (`ptr` came from this allocator, that is from `System`, with `layout`).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator, under the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations made so far on the current thread.
pub fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}
