//! The C allocator's settings for a long-running server. On glibc each
//! thread that allocates may get an arena of its own, and freeing a large
//! block raises the size from which blocks are mapped rather than carved
//! from an arena; together they keep a catching-up mirror's buffers (read
//! on one thread, verified on others, freed on a third) resident after
//! they are freed, and a server's memory grows past what it holds.

/// Arenas the allocator may use, however many threads allocate.
const ARENAS: i32 = 2;
/// Blocks of this many bytes or more are mapped on their own, and given
/// back to the system when freed; fixed, so it never grows.
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Sets the allocator's arenas and mapping threshold (nothing off glibc).
/// Called first thing in `main`, before any other thread starts.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets the allocator's parameters; no other
    // thread exists yet to race with it.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}
