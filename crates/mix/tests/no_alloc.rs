//! The Stem Engine's process path (with live parameter changes) never allocates.

// A counting global allocator needs `unsafe impl GlobalAlloc`; it only forwards to
// the system allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use sonantica_mix::{ChannelLayout, MatrixParams, Preset, Source, StemEngine, PRESETS};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // Only the test's own thread is counted: the test harness's threads may
    // allocate at any time (more so on a loaded machine).
    static COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn count() {
    if COUNTED.with(std::cell::Cell::get) {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn process_and_live_changes_do_not_allocate() {
    let input: Vec<Vec<f32>> = (0..12).map(|c| vec![0.01 * c as f32; 128]).collect();
    let ins: Vec<&[f32]> = input.iter().map(Vec::as_slice).collect();
    let mut output = vec![vec![0.0f32; 128]; 8];
    let mut e = StemEngine::new(
        &Source::SIX,
        ChannelLayout::SevenPointOne,
        48_000,
        MatrixParams::default(),
    )
    .expect("engine");
    COUNTED.with(|c| c.set(true));
    let before = ALLOCS.load(Ordering::SeqCst);
    for q in 0..4000 {
        if q % 100 == 0 {
            let preset: &Preset = &PRESETS[(q / 100) % PRESETS.len()];
            e.apply_preset(preset);
            let _ = e.mixer().set_solo(Source::Guitar, q % 200 == 0);
            let p = MatrixParams {
                surround_delay_ms: 10.0 + (q % 7) as f32,
                crossover_hz: 60.0 + (q % 5) as f32 * 10.0,
                ..MatrixParams::default()
            };
            let _ = e.matrix().set_params(p);
        }
        let mut outs: Vec<&mut [f32]> = Vec::new();
        // Building the slice list is the caller's business; count only the engine.
        let taken = ALLOCS.load(Ordering::SeqCst);
        outs.extend(output.iter_mut().map(Vec::as_mut_slice));
        let built = ALLOCS.load(Ordering::SeqCst) - taken;
        e.process(&ins, &mut outs).expect("block");
        ALLOCS.fetch_sub(built, Ordering::SeqCst);
    }
    assert_eq!(
        ALLOCS.load(Ordering::SeqCst) - before,
        0,
        "allocations in the Stem Engine"
    );
}
