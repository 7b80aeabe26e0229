//! The metering path does not allocate once the Inspector is built (with the
//! bounded loudness history used for live metering).

use sonantica_meter::{ChannelLayout, Inspector, InspectorConfig, LoudnessHistory};
use sonantica_testkit::alloc::{count_allocations, CountingAlloc};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

#[test]
fn process_readings_and_goniometer_do_not_allocate() {
    let mut config = InspectorConfig::new(48_000, ChannelLayout::Stereo);
    config.history = LoudnessHistory::Bounded;
    let mut ins = Inspector::new(config).expect("valid config");
    let block: Vec<f32> = (0..128).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
    let mut pts = [(0.0f32, 0.0f32); 256];
    // 30 s of 128-frame quanta, as the AudioWorklet delivers them.
    let ((), allocs) = count_allocations(|| {
        for _ in 0..(30 * 48_000 / 128) {
            ins.process(&[&block, &block]).expect("stereo");
            let r = ins.readings();
            std::hint::black_box(r);
            ins.goniometer().latest(&mut pts);
        }
    });
    assert_eq!(allocs, 0, "allocations on the metering path");
}
