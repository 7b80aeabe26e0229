//! Allocator tuning for the commands that run a separation model.

/// Keeps memory that a separation frees inside the process for the next layer.
///
/// The network allocates and frees activation buffers of tens to hundreds of MB
/// per layer. glibc serves blocks above its mmap threshold (at most 32 MB) with
/// fresh `mmap`s and returns them with `munmap` on free, so every layer paid page
/// faults, kernel zeroing and TLB shootdowns between the two segment threads:
/// about 9 % of the CPU time of `separate` went to the kernel. With both
/// thresholds raised the blocks are reused instead (measured on the full-size
/// htdemucs, 30 s, 2 threads: system time 5.0 s → 1.8 s; peak RSS unchanged).
///
/// One arena for every thread: the engine's worker threads allocate blocks
/// that other threads free, and with an arena per thread each kept its own
/// high-water mark of freed blocks (htdemucs, 30 s, 2 threads: peak RSS 720 →
/// 621 MB, time unchanged).
///
/// Only for processes that exist to separate (`separate`, `worker`): the station
/// keeps the default so that an idle server hands its memory back.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const LIMIT: libc::c_int = 1 << 30;
        // SAFETY: mallopt only changes two of glibc's malloc parameters; it is
        // called before any separation thread starts, and a refusal (return 0)
        // just leaves the defaults.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, LIMIT);
            libc::mallopt(libc::M_TRIM_THRESHOLD, LIMIT);
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// Hands the memory that the last segment freed back to the system; called
/// after each segment by the commands that use [`keep_freed_memory`].
///
/// With the thresholds raised, the freed blocks stay in glibc's heap between
/// layers (the point of raising them), but the holes they leave grow from one
/// segment to the next as blocks of other sizes split them: peak RSS wandered
/// between 430 and 540 MB for the same 30 s run. Trimming once per segment
/// costs a few page faults per segment instead of per layer (htdemucs, 30 s,
/// 2 threads, interleaved: 465–524 MB → 368–374 MB, time unchanged within the
/// noise, system time +0.3 s).
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it takes
    // malloc's own lock and touches no memory that is in use.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}
