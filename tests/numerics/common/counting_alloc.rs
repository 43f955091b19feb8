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
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The smallest alignment `matrixmultiply` asks of its packing buffers (16 for its SSE2
/// kernel; 32 or 64 for AVX and AVX-512).
const PACKING_ALIGN: usize = 16;

/// Counts allocations made on the current thread (tests run on several threads).
struct CountingAllocator;

// Why unsafe: counting allocations needs a global allocator, and `GlobalAlloc` is an unsafe
// trait; this one only forwards to the system allocator.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() < PACKING_ALIGN {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations made so far on the current thread.
pub fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}
