//! Giving freed heap memory back to the system after a burst of allocations.
//!
//! A full sync (the first list, a relist) parses megabytes of JSON whose buffers are
//! freed right after; glibc keeps such free chunks inside the heap, so the sidecar's
//! resident memory would stay at its peak for good (about twice the size of the
//! selected objects). `malloc_trim(0)` returns every free page of every arena to the
//! kernel. It walks the heap, so it runs only after full syncs, never per update.

/// Returns the free pages of the heap to the kernel. Blocking (walks the heap): call it
/// off the async threads.
#[allow(unsafe_code)]
pub(crate) fn release_free_memory() {
    // SAFETY: malloc_trim only inspects and trims the allocator's own free lists; it
    // takes no pointer and is thread-safe (it locks each arena).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        nix::libc::malloc_trim(0);
    }
}
