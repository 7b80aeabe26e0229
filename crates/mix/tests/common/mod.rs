//! Signals and measures shared by the Stem Engine tests.
#![allow(dead_code)]

use sonantica_mix::{ChannelLayout, MatrixParams, Source, StemEngine};
use sonantica_testkit::signal::noise;

pub const FS: u32 = 44_100;

pub fn sine(n: usize, freq: f64, amp: f32) -> Vec<f32> {
    (0..n)
        .map(|i| amp * (std::f64::consts::TAU * freq * i as f64 / f64::from(FS)).sin() as f32)
        .collect()
}

/// Four stereo noise stems (drums, bass, other, vocals), all independent.
pub fn four_stems(n: usize) -> Vec<Vec<f32>> {
    (0..8).map(|c| noise(n, 0.2, 100 + c as u64)).collect()
}

pub fn engine(layout: ChannelLayout) -> StemEngine {
    StemEngine::new(&Source::FOUR, layout, FS, MatrixParams::default()).expect("valid engine")
}

/// Runs an engine over the whole signal in blocks of `block`.
pub fn render(e: &mut StemEngine, stems: &[Vec<f32>], block: usize) -> Vec<Vec<f32>> {
    let n = stems[0].len();
    let mut out = vec![vec![0.0f32; n]; e.output_channels()];
    let mut i = 0;
    while i < n {
        let end = (i + block).min(n);
        let ins: Vec<&[f32]> = stems.iter().map(|c| &c[i..end]).collect();
        let mut outs: Vec<&mut [f32]> = out.iter_mut().map(|c| &mut c[i..end]).collect();
        e.process(&ins, &mut outs).expect("matching block");
        i = end;
    }
    out
}

pub fn energy(x: &[f32]) -> f64 {
    x.iter().map(|v| f64::from(*v) * f64::from(*v)).sum()
}

pub fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let ab: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    ab / (energy(a) * energy(b)).sqrt()
}

pub fn db(ratio: f64) -> f64 {
    10.0 * ratio.log10()
}

/// Amplitude of a steady sine in `x` (from its RMS).
pub fn sine_amplitude(x: &[f32]) -> f64 {
    (2.0 * energy(x) / x.len() as f64).sqrt()
}
