//! The metering path does not allocate once the Inspector is built (with the
//! bounded loudness history used for live metering).

// A counting global allocator needs `unsafe impl GlobalAlloc`; it only forwards to
// the system allocator.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use sonantica_meter::{ChannelLayout, Inspector, InspectorConfig, LoudnessHistory};

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
fn process_readings_and_goniometer_do_not_allocate() {
    let mut config = InspectorConfig::new(48_000, ChannelLayout::Stereo);
    config.history = LoudnessHistory::Bounded;
    let mut ins = Inspector::new(config).expect("valid config");
    let block: Vec<f32> = (0..128).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
    let mut pts = [(0.0f32, 0.0f32); 256];
    // 30 s of 128-frame quanta, as the AudioWorklet delivers them.
    COUNTED.with(|c| c.set(true));
    let before = ALLOCS.load(Ordering::SeqCst);
    for _ in 0..(30 * 48_000 / 128) {
        ins.process(&[&block, &block]).expect("stereo");
        let r = ins.readings();
        std::hint::black_box(r);
        ins.goniometer().latest(&mut pts);
    }
    let after = ALLOCS.load(Ordering::SeqCst);
    assert_eq!(after - before, 0, "allocations on the metering path");
}
