//! Where one segment's forward pass spends its time and memory, layer by layer:
//! `cargo run --release -p sonantica-demucs --example layer_profile -- MODEL
//! [threads]`. For each layer (PyTorch module names): wall time, CPU time of the
//! whole process, their ratio (how many cores the layer kept busy), the live
//! heap after it and the heap's peak during it. Linux only (reads
//! `/proc/self/stat`). The second of two runs is printed (the first pays for
//! first-touch page faults).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting the bytes live and their peak.
struct Counting;

// SAFETY: forwards every call to `System` unchanged; the counters are atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(live, Relaxed);
        // SAFETY: the caller's contract for `alloc`, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// User + system CPU seconds of this process (clock ticks of 10 ms).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat (Linux only)");
    let rest = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks = |i: usize| fields[i].parse::<f64>().expect("a tick count");
    (ticks(11) + ticks(12)) / 100.0
}

const MB: usize = 1 << 20;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: layer_profile MODEL [threads]");
    let threads: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(2);
    sonantica_demucs::ops::set_threads(threads);
    let sep = sonantica_demucs::load_separator(std::path::Path::new(&path)).expect("load");
    let model = &sep.models()[0];
    let n = model.config().training_length();
    let mix: Vec<Vec<f32>> = (0..model.config().audio_channels)
        .map(|c| {
            (0..n)
                .map(|i| ((i * 31 + c * 7) % 97) as f32 / 97.0 - 0.5)
                .collect()
        })
        .collect();
    println!(
        "{path} ({}), {threads} thread(s); heap after loading: {} MB",
        sonantica_demucs::simd::level().name(),
        LIVE.load(Relaxed) / MB
    );
    for run in 0..2 {
        PEAK.store(LIVE.load(Relaxed), Relaxed);
        let t0 = Instant::now();
        let c0 = cpu_seconds();
        let mut last = (0.0, c0);
        let mut rows = Vec::new();
        let mut mark = |name: &str| {
            let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds());
            let live = LIVE.load(Relaxed);
            rows.push((
                name.to_owned(),
                wall - last.0,
                cpu - last.1,
                live,
                PEAK.swap(live, Relaxed),
            ));
            last = (wall, cpu);
        };
        model
            .forward_traced(&mix, &mut |name, _| mark(name))
            .expect("forward");
        mark("(to waveforms)");
        if run == 1 {
            for (name, wall, cpu, live, peak) in &rows {
                println!(
                    "{name:30} wall {wall:6.3} s  cpu {cpu:6.3} s  cores {:4.2}  heap {:4} MB  peak {:4} MB",
                    cpu / wall.max(1e-9),
                    live / MB,
                    peak / MB
                );
            }
            let peak = rows.iter().map(|r| r.4).max().unwrap_or(0);
            println!(
                "total wall {:.3} s, cpu {:.3} s, heap peak {} MB",
                last.0,
                last.1 - c0,
                peak / MB
            );
        }
    }
}
