//! The Stem Engine's process path (with live parameter changes) never allocates.

use sonantica_mix::{ChannelLayout, MatrixParams, Preset, Source, StemEngine, PRESETS};
use sonantica_testkit::alloc::{count_allocations, uncounted, CountingAlloc};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

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
    let ((), allocs) = count_allocations(|| {
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
            uncounted(|| outs.extend(output.iter_mut().map(Vec::as_mut_slice)));
            e.process(&ins, &mut outs).expect("block");
        }
    });
    assert_eq!(allocs, 0, "allocations in the Stem Engine");
}
