//! Biquads and the Linkwitz-Riley crossover.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

/// Biquad coefficients (RBJ audio-EQ cookbook), normalised by a0.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Coeffs {
    b0: f64,
    b1: f64,
    b2: f64,
    a1: f64,
    a2: f64,
}

impl Coeffs {
    /// Second-order Butterworth (Q = 1/√2) low-pass at `freq` Hz.
    pub fn lowpass(freq: f64, rate: f64) -> Self {
        let w = 2.0 * PI * freq / rate;
        let (s, c) = w.sin_cos();
        let alpha = s / (2.0 * FRAC_1_SQRT_2);
        let a0 = 1.0 + alpha;
        Self {
            b0: (1.0 - c) / 2.0 / a0,
            b1: (1.0 - c) / a0,
            b2: (1.0 - c) / 2.0 / a0,
            a1: -2.0 * c / a0,
            a2: (1.0 - alpha) / a0,
        }
    }

    /// Second-order Butterworth high-pass at `freq` Hz.
    pub fn highpass(freq: f64, rate: f64) -> Self {
        let w = 2.0 * PI * freq / rate;
        let (s, c) = w.sin_cos();
        let alpha = s / (2.0 * FRAC_1_SQRT_2);
        let a0 = 1.0 + alpha;
        Self {
            b0: (1.0 + c) / 2.0 / a0,
            b1: -(1.0 + c) / a0,
            b2: (1.0 + c) / 2.0 / a0,
            a1: -2.0 * c / a0,
            a2: (1.0 - alpha) / a0,
        }
    }
}

/// One biquad section (transposed direct form II, f64 state).
#[derive(Debug, Clone, Copy, Default)]
pub struct Biquad {
    c: Coeffs,
    z1: f64,
    z2: f64,
}

impl Biquad {
    /// A section with these coefficients and zero state.
    pub fn new(c: Coeffs) -> Self {
        Self {
            c,
            z1: 0.0,
            z2: 0.0,
        }
    }

    /// Changes the coefficients, keeping the state.
    pub fn set(&mut self, c: Coeffs) {
        self.c = c;
    }

    /// Filters one sample.
    #[inline]
    pub fn tick(&mut self, x: f64) -> f64 {
        let c = &self.c;
        let y = c.b0 * x + self.z1;
        self.z1 = c.b1 * x - c.a1 * y + self.z2;
        self.z2 = c.b2 * x - c.a2 * y;
        y
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        self.z1 = 0.0;
        self.z2 = 0.0;
    }
}

/// Which half of a crossover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    /// Below the crossover.
    Low,
    /// Above the crossover.
    High,
}

/// A 4th-order Linkwitz-Riley filter: two identical Butterworth sections, -6 dB at
/// the crossover frequency and 24 dB per octave beyond it; the low and high halves
/// sum to an all-pass, so bass management does not colour the mix.
#[derive(Debug, Clone, Copy)]
pub struct LinkwitzRiley {
    band: Band,
    rate: f64,
    stages: [Biquad; 2],
}

impl LinkwitzRiley {
    /// A low- or high-pass at `freq` Hz for `rate` Hz audio.
    pub fn new(band: Band, freq: f64, rate: f64) -> Self {
        let c = Self::coeffs(band, freq, rate);
        Self {
            band,
            rate,
            stages: [Biquad::new(c), Biquad::new(c)],
        }
    }

    fn coeffs(band: Band, freq: f64, rate: f64) -> Coeffs {
        let f = freq.clamp(10.0, rate * 0.45);
        match band {
            Band::Low => Coeffs::lowpass(f, rate),
            Band::High => Coeffs::highpass(f, rate),
        }
    }

    /// Moves the crossover frequency (keeps the filter state; no allocation).
    pub fn set_frequency(&mut self, freq: f64) {
        let c = Self::coeffs(self.band, freq, self.rate);
        for s in &mut self.stages {
            s.set(c);
        }
    }

    /// Filters one sample.
    #[inline]
    pub fn tick(&mut self, x: f64) -> f64 {
        let y = self.stages[0].tick(x);
        self.stages[1].tick(y)
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        for s in &mut self.stages {
            s.reset();
        }
    }
}
