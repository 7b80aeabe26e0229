//! Times one segment's forward pass of a model, best of N, on a fixed input:
//! `cargo run --release -p sonantica-demucs --example forward_bench -- MODEL
//! [runs] [threads]`. Steadier than timing whole separations on a shared
//! machine, for comparing two builds of the engine.
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: forward_bench MODEL [runs] [threads]");
    let runs: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(3);
    let threads: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(1);
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
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let out = model.forward(&mix).expect("forward");
        times.push(t.elapsed().as_secs_f64());
        std::hint::black_box(out);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{} ({}): best {:.3} s, median {:.3} s of {runs}, {threads} thread(s)",
        path,
        sonantica_demucs::simd::level().name(),
        times[0],
        times[runs / 2]
    );
}
