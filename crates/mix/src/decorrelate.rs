//! Decorrelation for surround channels: a short delay (precedence effect: 10-25 ms
//! is heard as spaciousness, not echo) followed by a cascade of Schroeder all-pass
//! sections, which keep the magnitude spectrum but scramble the phase so that a
//! surround is not a delayed copy of its front.

/// Longest delay a decorrelator can be set to, in seconds.
pub const MAX_DELAY_S: f64 = 0.05;

const ALLPASS_GAIN: f32 = 0.5;

#[derive(Debug, Clone)]
struct Allpass {
    buf: Vec<f32>,
    pos: usize,
}

impl Allpass {
    fn new(len: usize) -> Self {
        Self {
            buf: vec![0.0; len.max(1)],
            pos: 0,
        }
    }

    /// Filters a block in place: y[n] = -g·x[n] + x[n-D] + g·y[n-D], with
    /// w = x + g·w[n-D] stored.
    fn process(&mut self, x: &mut [f32]) {
        let len = self.buf.len();
        let mut pos = self.pos;
        for v in x.iter_mut() {
            let delayed = self.buf[pos];
            let w = *v + ALLPASS_GAIN * delayed;
            *v = delayed - ALLPASS_GAIN * w;
            self.buf[pos] = w;
            pos += 1;
            if pos == len {
                pos = 0;
            }
        }
        self.pos = pos;
    }

    fn reset(&mut self) {
        self.buf.iter_mut().for_each(|v| *v = 0.0);
        self.pos = 0;
    }
}

/// One decorrelated feed: delay line plus three all-passes.
#[derive(Debug, Clone)]
pub struct Decorrelator {
    line: Vec<f32>,
    write: usize,
    delay: usize,
    /// Delay being faded out after a change, and how far the fade has gone.
    old_delay: usize,
    fade: u32,
    fade_len: u32,
    allpasses: [Allpass; 3],
}

impl Decorrelator {
    /// A decorrelator at `rate` Hz with `delay_s` seconds of delay; `seed` picks
    /// one of several mutually prime all-pass tunings, so that decorrelators with
    /// different seeds are also decorrelated from each other.
    pub fn new(rate: u32, delay_s: f64, seed: usize) -> Self {
        let max = (MAX_DELAY_S * f64::from(rate)).ceil() as usize + 1;
        // All-pass lengths in ms, mutually prime in samples at common rates.
        const TUNINGS: [[f64; 3]; 4] = [
            [4.77, 3.13, 1.73],
            [5.31, 2.89, 1.37],
            [4.13, 3.47, 1.91],
            [5.77, 2.61, 1.19],
        ];
        let t = TUNINGS[seed % TUNINGS.len()];
        let ms = |v: f64| (v * 1e-3 * f64::from(rate)).round() as usize;
        let delay = Self::samples(delay_s, rate, max);
        Self {
            line: vec![0.0; max],
            write: 0,
            delay,
            old_delay: delay,
            fade: 0,
            fade_len: (rate / 50).max(1),
            allpasses: [
                Allpass::new(ms(t[0])),
                Allpass::new(ms(t[1])),
                Allpass::new(ms(t[2])),
            ],
        }
    }

    fn samples(delay_s: f64, rate: u32, max: usize) -> usize {
        ((delay_s.clamp(0.0, MAX_DELAY_S) * f64::from(rate)).round() as usize).min(max - 1)
    }

    /// Changes the delay live: the old and new delay taps cross-fade over 20 ms.
    pub fn set_delay(&mut self, delay_s: f64, rate: u32) {
        let d = Self::samples(delay_s, rate, self.line.len());
        if d != self.delay {
            self.old_delay = self.delay;
            self.delay = d;
            self.fade = self.fade_len;
        }
    }

    /// Processes a block (`input` and `output` of equal length). Sample by sample
    /// the arithmetic is the same whatever the block length.
    pub fn process(&mut self, input: &[f32], output: &mut [f32]) {
        let len = self.line.len();
        for (x, y) in input.iter().zip(output.iter_mut()) {
            self.line[self.write] = *x;
            let w = self.write;
            let tap = |d: usize| self.line[if w >= d { w - d } else { w + len - d }];
            let mut v = tap(self.delay);
            if self.fade > 0 {
                let g = self.fade as f32 / self.fade_len as f32;
                v = v * (1.0 - g) + tap(self.old_delay) * g;
                self.fade -= 1;
            }
            *y = v;
            self.write += 1;
            if self.write == len {
                self.write = 0;
            }
        }
        for a in &mut self.allpasses {
            a.process(output);
        }
    }

    /// Clears the state.
    pub fn reset(&mut self) {
        self.line.iter_mut().for_each(|v| *v = 0.0);
        self.write = 0;
        self.fade = 0;
        self.old_delay = self.delay;
        for a in &mut self.allpasses {
            a.reset();
        }
    }
}
