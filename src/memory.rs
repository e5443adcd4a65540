//! Giving freed heap memory back to the system after a burst of allocations.
//!
//! A full sync (the first list, a relist) parses megabytes of JSON whose buffers are
//! freed right after; glibc keeps such free chunks inside the heap, so the sidecar's
//! resident memory would stay at its peak for good (about twice the size of the
//! selected objects). `malloc_trim(0)` returns every free page of every arena to the
//! kernel. It walks the heap, so it runs only after full syncs, never per update.
//!
//! glibc's thresholds are dynamic: freeing one large buffer (a 2 MiB list page) raises
//! the mmap threshold to its size and the trim threshold to twice that, so later large
//! buffers come from the heap and megabytes stay at the top of a thread's arena, which
//! `malloc_trim` does not shrink (it trims the top of the main arena only). Fixed
//! thresholds ([`tune_allocator`]) keep large buffers in their own mappings, returned
//! when freed, and let every arena give back a free top above 128 KiB.

/// glibc's default thresholds, made fixed (see the module doc).
const THRESHOLD: i32 = 128 * 1024;

/// Fixes glibc's mmap and trim thresholds at their defaults. Call once, early.
#[allow(unsafe_code)]
pub(crate) fn tune_allocator() {
    // SAFETY: mallopt only sets two of the allocator's parameters; it takes no pointer
    // and locks the arenas itself.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, THRESHOLD);
        nix::libc::mallopt(nix::libc::M_TRIM_THRESHOLD, THRESHOLD);
    }
}

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
