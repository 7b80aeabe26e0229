//! Render speed of the Stem Engine: 4 stereo stems to 7.1 (LFE crossover and
//! four decorrelated surrounds), on one core, in multiples of real time.
//!
//! `cargo bench -p sonantica-mix --bench render_speed`

use std::time::Instant;

use sonantica_mix::{ChannelLayout, MatrixParams, Source, StemEngine};
use sonantica_testkit::signal::XorShift64;

fn main() {
    const FS: u32 = 44_100;
    const SECONDS: usize = 60;
    let n = SECONDS * FS as usize;
    let mut rng = XorShift64::new(0x2545_F491_4F6C_DD1D);
    let stems: Vec<Vec<f32>> = (0..8).map(|_| rng.centred_noise(n, 0.4)).collect();
    let mut out = vec![vec![0.0f32; n]; 8];
    let mut times = Vec::new();
    for _ in 0..7 {
        let mut e = StemEngine::new(
            &Source::FOUR,
            ChannelLayout::SevenPointOne,
            FS,
            MatrixParams::default(),
        )
        .expect("engine");
        let start = Instant::now();
        let mut i = 0;
        while i < n {
            let end = (i + 4096).min(n);
            let ins: Vec<&[f32]> = stems.iter().map(|c| &c[i..end]).collect();
            let mut outs: Vec<&mut [f32]> = out.iter_mut().map(|c| &mut c[i..end]).collect();
            e.process(&ins, &mut outs).expect("block");
            i = end;
        }
        times.push(start.elapsed().as_secs_f64());
    }
    std::hint::black_box(&out);
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "4 stems -> 7.1, {SECONDS} s at {FS} Hz, one thread: median {:.1} ms = {:.0}x real time (best {:.0}x)",
        median * 1e3,
        SECONDS as f64 / median,
        SECONDS as f64 / times[0]
    );
}
