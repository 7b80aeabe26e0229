//! DR (the official "Measuring DR" v1.3 procedure) and clipping.

use crate::MeterError;

/// Histogram resolution for block RMS values, in dB. Each bin also keeps the exact
/// sum of its blocks' RMS², so the top-20 % mean is exact except for the one bin
/// that is only partly inside the top 20 %, where the bin's mean stands in (its
/// members differ by less than 0.05 dB).
const BIN_DB: f64 = 0.05;
const FLOOR_DB: f64 = -120.0;
const CEIL_DB: f64 = 10.0;
const BINS: usize = ((CEIL_DB - FLOOR_DB) / BIN_DB) as usize;

#[derive(Debug, Clone)]
struct DrChannel {
    counts: Vec<u32>,
    sums: Vec<f64>,
    blocks: u64,
    top_peaks: [f32; 2],
    closed_sumsq: f64,
    cur_sumsq: f64,
    cur_peak: f32,
}

/// The official DR meter: per channel, 3 s blocks; block RMS = √(2·Σx²/n) (a
/// full-scale sine reads 0 dB), block peak = max |x|;
/// DR = 20·log10(second-highest block peak / √(mean of the top 20 % of block RMS²)).
///
/// The signal's last, shorter block is measured too (as the reference meter does);
/// the top 20 % is `max(1, floor(0.2 · blocks))` blocks, and with a single block
/// its peak stands in for the second-highest. Allocation-free after construction:
/// block RMS values go into a fixed histogram, so memory does not grow with length.
#[derive(Debug, Clone)]
pub struct DrMeter {
    block_len: u64,
    pos: u64,
    channels: Vec<DrChannel>,
}

impl DrMeter {
    /// A DR meter for `channels` channels at `sample_rate`.
    pub fn new(channels: usize, sample_rate: u32) -> Result<Self, MeterError> {
        if channels == 0 || sample_rate == 0 {
            return Err(MeterError::InvalidConfig(
                "DR meter needs channels and a sample rate".into(),
            ));
        }
        Ok(Self {
            block_len: 3 * u64::from(sample_rate),
            pos: 0,
            channels: vec![
                DrChannel {
                    counts: vec![0; BINS],
                    sums: vec![0.0; BINS],
                    blocks: 0,
                    top_peaks: [0.0; 2],
                    closed_sumsq: 0.0,
                    cur_sumsq: 0.0,
                    cur_peak: 0.0,
                };
                channels
            ],
        })
    }

    /// Measures a block (one slice per channel, equal lengths).
    pub fn process(&mut self, input: &[&[f32]]) {
        let n = input.first().map_or(0, |c| c.len());
        let mut i = 0;
        while i < n {
            let take = ((self.block_len - self.pos) as usize).min(n - i);
            for (ch, x) in self.channels.iter_mut().zip(input) {
                let (mut ss, mut pk) = (ch.cur_sumsq, ch.cur_peak);
                for &s in &x[i..i + take] {
                    ss += f64::from(s) * f64::from(s);
                    pk = pk.max(s.abs());
                }
                ch.cur_sumsq = ss;
                ch.cur_peak = pk;
            }
            i += take;
            self.pos += take as u64;
            if self.pos == self.block_len {
                let len = self.block_len;
                for ch in &mut self.channels {
                    ch.close_block(len);
                }
                self.pos = 0;
            }
        }
    }

    /// DR per channel in dB (unrounded), counting the current partial block.
    /// Empty when nothing was measured or a channel is silent.
    pub fn channel_values(&self) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.channels.len());
        for ch in &self.channels {
            let mut c = ch.clone();
            if self.pos > 0 {
                c.close_block(self.pos);
            }
            match c.value() {
                Some(v) => out.push(v),
                None => return Vec::new(),
            }
        }
        out
    }

    /// Sum of squares of every sample of channel `ch` so far (the RMS meter shares
    /// the DR meter's pass over the samples).
    pub fn sum_of_squares(&self, ch: usize) -> f64 {
        self.channels
            .get(ch)
            .map_or(0.0, |c| c.closed_sumsq + c.cur_sumsq)
    }

    /// Highest absolute sample of channel `ch` so far.
    pub fn peak(&self, ch: usize) -> f32 {
        self.channels
            .get(ch)
            .map_or(0.0, |c| c.top_peaks[0].max(c.cur_peak))
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        self.pos = 0;
        for ch in &mut self.channels {
            ch.counts.iter_mut().for_each(|c| *c = 0);
            ch.sums.iter_mut().for_each(|s| *s = 0.0);
            ch.blocks = 0;
            ch.top_peaks = [0.0; 2];
            ch.closed_sumsq = 0.0;
            ch.cur_sumsq = 0.0;
            ch.cur_peak = 0.0;
        }
    }
}

impl DrChannel {
    fn close_block(&mut self, len: u64) {
        let rms2 = 2.0 * self.cur_sumsq / len as f64;
        let db = if rms2 > 0.0 {
            10.0 * rms2.log10()
        } else {
            FLOOR_DB
        };
        let bin = (((db - FLOOR_DB) / BIN_DB).floor().max(0.0) as usize).min(BINS - 1);
        self.counts[bin] += 1;
        self.sums[bin] += rms2;
        self.blocks += 1;
        self.closed_sumsq += self.cur_sumsq;
        let p = self.cur_peak;
        if p > self.top_peaks[0] {
            self.top_peaks = [p, self.top_peaks[0]];
        } else if p > self.top_peaks[1] {
            self.top_peaks[1] = p;
        }
        self.cur_sumsq = 0.0;
        self.cur_peak = 0.0;
    }

    fn value(&self) -> Option<f64> {
        if self.blocks == 0 {
            return None;
        }
        let want = ((self.blocks as f64 * 0.2).floor() as u64).max(1);
        let (mut left, mut sum) = (want, 0.0);
        for b in (0..BINS).rev() {
            if left == 0 {
                break;
            }
            let c = u64::from(self.counts[b]);
            if c == 0 {
                continue;
            }
            if c <= left {
                sum += self.sums[b];
                left -= c;
            } else {
                sum += self.sums[b] * left as f64 / c as f64;
                left = 0;
            }
        }
        let rms = (sum / want as f64).sqrt();
        let peak2 = if self.blocks >= 2 {
            self.top_peaks[1]
        } else {
            self.top_peaks[0]
        };
        (rms > 0.0 && peak2 > 0.0).then(|| 20.0 * (f64::from(peak2) / rms).log10())
    }
}

/// Counts clipping: runs of at least three consecutive samples at, or within one
/// LSB of, full scale (positive full scale of `bits`-bit PCM is 1 - 2^(1-bits)).
/// Runs continue across blocks.
#[derive(Debug, Clone)]
pub struct ClipCounter {
    threshold: f32,
    runs: Vec<u32>,
    events: u64,
    samples: u64,
}

impl ClipCounter {
    /// A counter for `channels` channels judged at `bits` bits of full scale.
    pub fn new(channels: usize, bits: u32) -> Self {
        let lsb = 1.0 / (1u64 << (bits.clamp(8, 32) - 1)) as f64;
        Self {
            threshold: (1.0 - 2.0 * lsb) as f32,
            runs: vec![0; channels],
            events: 0,
            samples: 0,
        }
    }

    /// Counts a block.
    pub fn process(&mut self, input: &[&[f32]]) {
        for (run, x) in self.runs.iter_mut().zip(input) {
            let mut r = *run;
            for &s in x.iter() {
                if s.abs() >= self.threshold {
                    r += 1;
                    if r == 3 {
                        self.events += 1;
                        self.samples += 3;
                    } else if r > 3 {
                        self.samples += 1;
                    }
                } else {
                    r = 0;
                }
            }
            *run = r;
        }
    }

    /// Clip events so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Samples inside clip events so far.
    pub fn clipped_samples(&self) -> u64 {
        self.samples
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        self.runs.iter_mut().for_each(|r| *r = 0);
        self.events = 0;
        self.samples = 0;
    }
}
