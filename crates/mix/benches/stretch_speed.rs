//! Cost of tempo and pitch (the `Stretcher`) on one core, driven as the Studio's
//! worklet drives it: 128-frame quanta of stereo at 44.1 kHz. Prints the CPU
//! time per second of output audio and the slowest single quantum, against the
//! 2.9 ms a 128-frame quantum lasts. Runs of the settings are interleaved.
//!
//! `cargo bench -p sonantica-mix --bench stretch_speed [-- FILE.f32]` (FILE: raw
//! little-endian f32 stereo at 44.1 kHz, e.g. from
//! `ffmpeg -i song.ogg -f f32le -ac 2 -ar 44100 song.f32`; default: 60 s of
//! chords and noise bursts).

use std::time::Instant;

use sonantica_mix::Stretcher;
use sonantica_testkit::signal::XorShift64;

const FS: u32 = 44_100;
const Q: usize = 128;

fn music() -> Vec<Vec<f32>> {
    if let Some(path) = std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        let bytes = std::fs::read(&path).expect("readable raw f32 file");
        let all: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        return (0..2)
            .map(|c| all.iter().skip(c).step_by(2).copied().collect())
            .collect();
    }
    let n = 60 * FS as usize;
    let mut rng = XorShift64::new(0x9E37_79B9_7F4A_7C15);
    let noise = rng.centred_noise(n, 0.4);
    (0..2)
        .map(|c| {
            (0..n)
                .map(|i| {
                    let t = i as f64 / f64::from(FS);
                    let chord = [220.0, 277.2, 329.6, 440.0 + 3.0 * c as f64]
                        .iter()
                        .map(|f| (std::f64::consts::TAU * f * t).sin() * 0.1)
                        .sum::<f64>();
                    let burst = if (t % 0.25) < 0.02 {
                        f64::from(noise[i])
                    } else {
                        0.0
                    };
                    (chord + burst) as f32
                })
                .collect()
        })
        .collect()
}

/// (seconds of CPU per second of output, slowest quantum in seconds).
fn run(input: &[Vec<f32>], tempo: f64, semitones: f64) -> (f64, f64) {
    let mut s = Stretcher::new(2, FS).expect("stretcher");
    s.set(tempo, semitones).expect("parameters");
    s.reset();
    let len = input[0].len();
    let out_len = ((len as f64 / tempo) as usize / Q) * Q - 8 * Q;
    let mut piece: Vec<Vec<f32>> = (0..2).map(|_| Vec::with_capacity(16_384)).collect();
    let mut out = vec![vec![0.0f32; Q]; 2];
    let (mut fed, mut made, mut worst) = (0usize, 0usize, 0.0f64);
    let start = Instant::now();
    while made < out_len {
        let q = Instant::now();
        let need = s.input_needed(Q);
        for (c, p) in piece.iter_mut().enumerate() {
            p.clear();
            p.extend((fed..fed + need).map(|i| input[c].get(i).copied().unwrap_or(0.0)));
        }
        fed += need;
        s.push(&piece).expect("push");
        s.pull(&mut out).expect("pull");
        worst = worst.max(q.elapsed().as_secs_f64());
        made += Q;
    }
    std::hint::black_box(&out);
    let total = start.elapsed().as_secs_f64();
    (total / (made as f64 / f64::from(FS)), worst)
}

fn main() {
    let input = music();
    let cases = [(0.75, 0.0), (1.25, 0.0), (1.0, -2.0), (0.8, 3.0)];
    let mut results: Vec<Vec<(f64, f64)>> = vec![Vec::new(); cases.len()];
    for _ in 0..5 {
        for (k, &(t, p)) in cases.iter().enumerate() {
            results[k].push(run(&input, t, p));
        }
    }
    println!(
        "stereo, {:.0} s at {FS} Hz, 128-frame quanta, one thread, median of 5 interleaved runs:",
        input[0].len() as f64 / f64::from(FS)
    );
    for (k, &(t, p)) in cases.iter().enumerate() {
        let mut per_s: Vec<f64> = results[k].iter().map(|r| r.0).collect();
        let mut worst: Vec<f64> = results[k].iter().map(|r| r.1).collect();
        per_s.sort_by(f64::total_cmp);
        worst.sort_by(f64::total_cmp);
        println!(
            "  tempo {t:.2}, {p:+} st: {:.1} ms CPU per second of output ({:.1} % of a core); \
             slowest quantum {:.2} ms of 2.90 ms",
            per_s[2] * 1e3,
            per_s[2] * 100.0,
            worst[2] * 1e3
        );
    }
}
