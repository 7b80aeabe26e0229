//! A live spectrum analyser: the last few thousand samples of the signal's mid
//! (the mean of its channels), Hann-windowed and transformed with `realfft`,
//! read as the level of log-spaced bands with a falling peak hold.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

use crate::MeterError;

/// How long a band's peak holds before it falls, in seconds.
const HOLD_S: f64 = 1.0;
/// How fast a held peak falls afterwards, in dB a second.
const FALL_DB_S: f64 = 20.0;
/// The level of a band with nothing in it (the display's floor and below).
pub const SPECTRUM_FLOOR_DB: f32 = -120.0;

/// Spectrum analyser over the mid of a planar signal.
///
/// Levels are in dBFS per band: the strongest bin of the band, scaled so that a
/// full-scale sine reads 0 dB. A band narrower than the bin spacing (the lowest
/// ones with a short window) reads the bin its centre falls in.
pub struct Spectrum {
    fft: Arc<dyn RealToComplex<f32>>,
    ring: Vec<f32>,
    at: usize,
    window: Vec<f32>,
    input: Vec<f32>,
    output: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// The first and one-past-last bin of each band.
    bins: Vec<(usize, usize)>,
    levels: Vec<f32>,
    peaks: Vec<f32>,
    held: Vec<f64>,
    lo_hz: f64,
    hi_hz: f64,
}

impl Spectrum {
    /// An analyser with a `size`-sample window (a power of two, 256 to 32768)
    /// and `bands` log-spaced bands from `lo_hz` to `hi_hz` (capped at Nyquist).
    pub fn new(
        sample_rate: u32,
        size: usize,
        bands: usize,
        lo_hz: f64,
        hi_hz: f64,
    ) -> Result<Self, MeterError> {
        let nyquist = f64::from(sample_rate) / 2.0;
        let hi_hz = hi_hz.min(nyquist);
        if !size.is_power_of_two() || !(256..=32768).contains(&size) {
            return Err(MeterError::InvalidConfig(format!(
                "spectrum window {size} is not a power of two in 256..=32768"
            )));
        }
        if bands == 0 || bands > 1024 || !(lo_hz > 0.0 && lo_hz < hi_hz) {
            return Err(MeterError::InvalidConfig(format!(
                "spectrum of {bands} bands from {lo_hz} to {hi_hz} Hz"
            )));
        }
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(size);
        let hz_per_bin = f64::from(sample_rate) / size as f64;
        let ratio = (hi_hz / lo_hz).ln();
        let edge = |i: usize| lo_hz * (ratio * i as f64 / bands as f64).exp();
        let last_bin = size / 2;
        let bins = (0..bands)
            .map(|i| {
                let (a, b) = (edge(i), edge(i + 1));
                let first = (a / hz_per_bin).ceil() as usize;
                let end = ((b / hz_per_bin).ceil() as usize).min(last_bin + 1);
                if first < end {
                    (first, end)
                } else {
                    let centre = ((a * b).sqrt() / hz_per_bin).round() as usize;
                    let centre = centre.min(last_bin);
                    (centre, centre + 1)
                }
            })
            .collect();
        // Hann; its coherent gain (0.5) is undone in the scaling below.
        let window = (0..size)
            .map(|i| {
                let x = std::f64::consts::PI * i as f64 / size as f64;
                (x.sin() * x.sin()) as f32
            })
            .collect();
        let scratch = fft.make_scratch_vec();
        Ok(Self {
            input: fft.make_input_vec(),
            output: fft.make_output_vec(),
            fft,
            ring: vec![0.0; size],
            at: 0,
            window,
            scratch,
            bins,
            levels: vec![SPECTRUM_FLOOR_DB; bands],
            peaks: vec![SPECTRUM_FLOOR_DB; bands],
            held: vec![0.0; bands],
            lo_hz,
            hi_hz,
        })
    }

    /// Adds a block of planar channels (their mean is analysed).
    pub fn push(&mut self, channels: &[&[f32]]) {
        let Some(first) = channels.first() else {
            return;
        };
        let scale = 1.0 / channels.len() as f32;
        let size = self.ring.len();
        for i in 0..first.len() {
            let mut v = 0.0;
            for ch in channels {
                v += ch.get(i).copied().unwrap_or(0.0);
            }
            self.ring[self.at] = v * scale;
            self.at = (self.at + 1) % size;
        }
    }

    /// Transforms the latest window and updates the band levels and peaks;
    /// `elapsed_s` is the time since the last call (for the peak's fall).
    pub fn update(&mut self, elapsed_s: f64) {
        let size = self.ring.len();
        // Oldest sample first.
        let (new, old) = self.ring.split_at(self.at);
        for ((x, s), w) in self
            .input
            .iter_mut()
            .zip(old.iter().chain(new))
            .zip(&self.window)
        {
            *x = s * w;
        }
        if self
            .fft
            .process_with_scratch(&mut self.input, &mut self.output, &mut self.scratch)
            .is_err()
        {
            return; // buffers are the planner's own sizes: cannot happen
        }
        // A sine of amplitude A gives |X| = A·N/4 under a Hann window.
        let norm = 4.0 / size as f32;
        for (k, &(a, b)) in self.bins.iter().enumerate() {
            let mut peak = 0.0f32;
            for c in &self.output[a..b] {
                peak = peak.max(c.norm_sqr());
            }
            let db = if peak > 0.0 {
                (20.0 * (peak.sqrt() * norm).log10()).max(SPECTRUM_FLOOR_DB)
            } else {
                SPECTRUM_FLOOR_DB
            };
            self.levels[k] = db;
            if db >= self.peaks[k] {
                self.peaks[k] = db;
                self.held[k] = 0.0;
            } else {
                self.held[k] += elapsed_s;
                if self.held[k] > HOLD_S {
                    let fall = (FALL_DB_S * elapsed_s) as f32;
                    self.peaks[k] = (self.peaks[k] - fall).max(db);
                }
            }
        }
    }

    /// Starts afresh (a new track): silence, no peaks.
    pub fn reset(&mut self) {
        self.ring.fill(0.0);
        self.at = 0;
        self.levels.fill(SPECTRUM_FLOOR_DB);
        self.peaks.fill(SPECTRUM_FLOOR_DB);
        self.held.fill(0.0);
    }

    /// The band levels in dBFS, lowest band first.
    pub fn levels(&self) -> &[f32] {
        &self.levels
    }

    /// The held peaks in dBFS.
    pub fn peaks(&self) -> &[f32] {
        &self.peaks
    }

    /// The lowest and highest frequency shown.
    pub fn range_hz(&self) -> (f64, f64) {
        (self.lo_hz, self.hi_hz)
    }

    /// The lower and upper edge of band `i` in Hz.
    pub fn band_hz(&self, i: usize) -> (f64, f64) {
        let n = self.levels.len() as f64;
        let ratio = (self.hi_hz / self.lo_hz).ln();
        let edge = |i: usize| self.lo_hz * (ratio * i as f64 / n).exp();
        (edge(i), edge(i + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f64, amp: f32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| {
                amp * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin() as f32
            })
            .collect()
    }

    #[test]
    fn a_1khz_sine_peaks_in_the_band_holding_1khz_at_its_level() {
        for rate in [44100, 48000] {
            let mut s = Spectrum::new(rate, 4096, 96, 20.0, 20000.0).expect("valid sizes");
            let x = sine(rate, 1000.0, 0.1, 8192);
            for block in x.chunks(128) {
                s.push(&[block, block]);
            }
            s.update(0.05);
            let (top, level) = s
                .levels()
                .iter()
                .enumerate()
                .fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
            let (lo, hi) = s.band_hz(top);
            assert!(
                lo <= 1000.0 && 1000.0 < hi,
                "{rate}: peak band {lo}..{hi} Hz"
            );
            // -20 dBFS; Hann's scalloping costs at most 1.42 dB between bins.
            assert!((-21.5..=-19.9).contains(&level), "{rate}: {level} dBFS");
        }
    }

    #[test]
    fn peaks_hold_then_fall_and_silence_reads_the_floor() {
        let mut s = Spectrum::new(48000, 1024, 32, 20.0, 20000.0).expect("valid sizes");
        let x = sine(48000, 1000.0, 1.0, 2048);
        s.push(&[&x]);
        s.update(0.05);
        let peak = s.peaks().iter().copied().fold(f32::MIN, f32::max);
        assert!(peak > -1.5, "{peak}");
        s.push(&[&vec![0.0; 2048]]);
        s.update(0.5);
        assert!(s.levels().iter().all(|&v| v == SPECTRUM_FLOOR_DB));
        assert_eq!(s.peaks().iter().copied().fold(f32::MIN, f32::max), peak);
        s.update(1.0); // 1.5 s after: 0.5 s of falling at 20 dB/s
        let fallen = s.peaks().iter().copied().fold(f32::MIN, f32::max);
        assert!((peak - fallen - 20.0).abs() < 0.01, "{peak} -> {fallen}");
        s.reset();
        assert!(s.peaks().iter().all(|&v| v == SPECTRUM_FLOOR_DB));
    }

    #[test]
    fn bad_sizes_are_refused() {
        assert!(Spectrum::new(48000, 1000, 32, 20.0, 20000.0).is_err());
        assert!(Spectrum::new(48000, 1024, 0, 20.0, 20000.0).is_err());
        assert!(Spectrum::new(48000, 1024, 32, 0.0, 20000.0).is_err());
    }
}
