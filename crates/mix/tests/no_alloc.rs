//! The Stem Engine's process path (with live parameter changes) never allocates.

use sonantica_mix::{ChannelLayout, MatrixParams, Preset, Source, StemEngine, PRESETS};
use sonantica_testkit::alloc::{count_allocations, uncounted, CountingAlloc};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// The count is global across counted threads: one measurement at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn process_and_live_changes_do_not_allocate() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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

#[test]
fn stretching_and_live_tempo_and_pitch_changes_do_not_allocate() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = sonantica_mix::Stretcher::new(2, 48_000).expect("stretcher");
    let input: Vec<Vec<f32>> = (0..2)
        .map(|c| {
            (0..8192)
                .map(|i| ((i * (c + 3)) % 97) as f32 * 0.01 - 0.5)
                .collect()
        })
        .collect();
    let mut output = vec![vec![0.0f32; 128]; 2];
    let mut piece: Vec<Vec<f32>> = (0..2).map(|_| Vec::with_capacity(8192)).collect();
    let ((), allocs) = count_allocations(|| {
        for q in 0..3000usize {
            if q % 150 == 0 {
                let tempo = [1.0, 0.5, 0.8, 1.25, 1.5][(q / 150) % 5];
                let semis = [0.0, -12.0, 2.5, 7.0, 12.0, 0.0][(q / 150) % 6];
                s.set(tempo, semis).expect("parameters");
            }
            let need = s.input_needed(128);
            for (c, p) in piece.iter_mut().enumerate() {
                p.clear();
                p.extend((0..need).map(|i| input[c][(q * 131 + i) % 8192]));
            }
            s.push(&piece).expect("push");
            s.pull(&mut output).expect("pull");
        }
    });
    assert_eq!(allocs, 0, "allocations in the stretcher");
}
