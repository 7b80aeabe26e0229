//! Test-signal synthesis shared by the meter tests.
#![allow(dead_code)]

use sonantica_meter::{ChannelLayout, Inspector, InspectorConfig, LoudnessHistory, Report};

pub const TAU: f64 = std::f64::consts::TAU;

/// Amplitude for a level in dBFS (peak).
pub fn db(level: f64) -> f64 {
    10f64.powf(level / 20.0)
}

/// `seconds` of a `freq` Hz sine per channel at the given peak levels (dBFS).
pub fn sine(rate: u32, freq: f64, seconds: f64, levels_db: &[f64]) -> Vec<Vec<f32>> {
    let n = (seconds * f64::from(rate)).round() as usize;
    levels_db
        .iter()
        .map(|&l| {
            let a = db(l);
            (0..n)
                .map(|i| (a * (TAU * freq * i as f64 / f64::from(rate)).sin()) as f32)
                .collect()
        })
        .collect()
}

/// Silence.
pub fn silence(channels: usize, rate: u32, seconds: f64) -> Vec<Vec<f32>> {
    vec![vec![0.0; (seconds * f64::from(rate)).round() as usize]; channels]
}

/// Concatenates signals.
pub fn concat(parts: &[Vec<Vec<f32>>]) -> Vec<Vec<f32>> {
    let mut out = vec![Vec::new(); parts[0].len()];
    for p in parts {
        for (o, c) in out.iter_mut().zip(p) {
            o.extend_from_slice(c);
        }
    }
    out
}

/// An Inspector with exact loudness history.
pub fn inspector(rate: u32, layout: ChannelLayout) -> Inspector {
    Inspector::new(InspectorConfig::new(rate, layout)).expect("valid config")
}

/// An Inspector with bounded (histogram) loudness history.
pub fn bounded_inspector(rate: u32, layout: ChannelLayout) -> Inspector {
    let mut c = InspectorConfig::new(rate, layout);
    c.history = LoudnessHistory::Bounded;
    Inspector::new(c).expect("valid config")
}

/// Feeds a signal in blocks of `block` frames.
pub fn feed(ins: &mut Inspector, signal: &[Vec<f32>], block: usize) {
    let n = signal[0].len();
    let mut i = 0;
    while i < n {
        let end = (i + block).min(n);
        let refs: Vec<&[f32]> = signal.iter().map(|c| &c[i..end]).collect();
        ins.process(&refs).expect("matching channels");
        i = end;
    }
}

/// Measures a whole signal in one go.
pub fn measure(rate: u32, layout: ChannelLayout, signal: &[Vec<f32>]) -> Report {
    let mut ins = inspector(rate, layout);
    feed(&mut ins, signal, 4096);
    ins.report()
}

/// Asserts `value` is within `[target - below, target + above]`.
#[track_caller]
pub fn assert_within(what: &str, value: Option<f64>, target: f64, below: f64, above: f64) {
    let v = value.unwrap_or_else(|| panic!("{what}: no value"));
    assert!(
        v >= target - below && v <= target + above,
        "{what}: {v:.4}, want {target} (-{below}/+{above})"
    );
}
