//! Goniometer (vectorscope) points: x = (L - R)/√2, y = (L + R)/√2, so a mono signal
//! draws a vertical line and anti-phase a horizontal one.

use crate::MeterError;

/// A fixed ring of decimated goniometer points for drawing.
#[derive(Debug, Clone)]
pub struct Goniometer {
    xs: Vec<f32>,
    ys: Vec<f32>,
    head: usize,
    written: u64,
    decimation: u64,
    phase: u64,
}

impl Goniometer {
    /// Keeps the latest `capacity` points, producing about `points_per_s` points per
    /// second of audio at `sample_rate`.
    pub fn new(capacity: usize, sample_rate: u32, points_per_s: u32) -> Result<Self, MeterError> {
        if capacity == 0 || points_per_s == 0 {
            return Err(MeterError::InvalidConfig(
                "goniometer needs a capacity and a rate".into(),
            ));
        }
        Ok(Self {
            xs: vec![0.0; capacity],
            ys: vec![0.0; capacity],
            head: 0,
            written: 0,
            decimation: (u64::from(sample_rate) / u64::from(points_per_s)).max(1),
            phase: 0,
        })
    }

    /// Adds the points of a block (every `decimation`-th sample, counted globally).
    pub fn process(&mut self, left: &[f32], right: &[f32]) {
        let n = left.len().min(right.len());
        let mut i = ((self.decimation - self.phase) % self.decimation) as usize;
        while i < n {
            let (l, r) = (left[i], right[i]);
            self.xs[self.head] = (l - r) * std::f32::consts::FRAC_1_SQRT_2;
            self.ys[self.head] = (l + r) * std::f32::consts::FRAC_1_SQRT_2;
            self.head = (self.head + 1) % self.xs.len();
            self.written += 1;
            i += self.decimation as usize;
        }
        self.phase = (self.phase + n as u64) % self.decimation;
    }

    /// Points produced since construction (lets a display tell what is new).
    pub fn points_written(&self) -> u64 {
        self.written
    }

    /// Copies the latest `out.len()` points (or fewer if fewer exist), oldest
    /// first, into `out`; returns how many were copied.
    pub fn latest(&self, out: &mut [(f32, f32)]) -> usize {
        let cap = self.xs.len();
        let n = out
            .len()
            .min(cap)
            .min(self.written.min(cap as u64) as usize);
        for (k, slot) in out.iter_mut().take(n).enumerate() {
            let idx = (self.head + cap - n + k) % cap;
            *slot = (self.xs[idx], self.ys[idx]);
        }
        n
    }

    /// Forgets all points.
    pub fn reset(&mut self) {
        self.head = 0;
        self.written = 0;
        self.phase = 0;
    }
}
