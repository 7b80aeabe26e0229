//! Streaming sample-rate conversion with rubato's synchronous FFT resampler.
//!
//! The wrapper hides rubato's fixed chunk size and its delay: output is aligned with
//! the input (the resampler's delay is dropped) and, after [`Resampler::finish`],
//! exactly `round(frames_in · to / from)` frames long, whatever block sizes were fed.

use rubato::{FftFixedIn, Resampler as _};

use crate::AudioError;

const CHUNK: usize = 1024;

/// Converts planar audio from one sample rate to another, block by block.
pub struct Resampler {
    inner: Option<FftFixedIn<f32>>,
    from: u32,
    to: u32,
    channels: usize,
    pending: Vec<Vec<f32>>,
    scratch: Vec<Vec<f32>>,
    to_skip: usize,
    frames_in: u64,
    frames_out: u64,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("channels", &self.channels)
            .finish()
    }
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz for `channels` channels. Equal rates
    /// pass samples through untouched.
    pub fn new(from: u32, to: u32, channels: usize) -> Result<Self, AudioError> {
        if from == 0 || to == 0 || channels == 0 {
            return Err(AudioError::InvalidArgument(format!(
                "cannot resample {channels} channels from {from} Hz to {to} Hz"
            )));
        }
        let inner = if from == to {
            None
        } else {
            Some(
                FftFixedIn::<f32>::new(from as usize, to as usize, CHUNK, 2, channels)
                    .map_err(|e| AudioError::InvalidArgument(format!("resampler: {e}")))?,
            )
        };
        let (to_skip, out_max) = inner
            .as_ref()
            .map_or((0, 0), |r| (r.output_delay(), r.output_frames_max()));
        Ok(Self {
            inner,
            from,
            to,
            channels,
            pending: vec![Vec::with_capacity(CHUNK); channels],
            scratch: vec![vec![0.0; out_max]; channels],
            to_skip,
            frames_in: 0,
            frames_out: 0,
        })
    }

    /// Output frames for `frames_in` input frames once finished.
    pub fn output_len(&self, frames_in: u64) -> u64 {
        (frames_in * u64::from(self.to) + u64::from(self.from) / 2) / u64::from(self.from)
    }

    /// Resamples `input` and appends the result to `out` (one `Vec` per channel).
    pub fn process<I: AsRef<[f32]>>(
        &mut self,
        input: &[I],
        out: &mut [Vec<f32>],
    ) -> Result<(), AudioError> {
        if input.len() != self.channels || out.len() != self.channels {
            return Err(AudioError::InvalidArgument(format!(
                "resampler set up for {} channels, got {} in and {} out",
                self.channels,
                input.len(),
                out.len()
            )));
        }
        let n = input.first().map_or(0, |c| c.as_ref().len());
        if input.iter().any(|c| c.as_ref().len() != n) {
            return Err(AudioError::InvalidArgument(
                "channels of different lengths".into(),
            ));
        }
        self.frames_in += n as u64;
        if self.inner.is_none() {
            for (o, i) in out.iter_mut().zip(input) {
                o.extend_from_slice(i.as_ref());
            }
            self.frames_out += n as u64;
            return Ok(());
        }
        let mut pos = 0;
        while pos < n {
            let take = (CHUNK - self.pending[0].len()).min(n - pos);
            for (p, i) in self.pending.iter_mut().zip(input) {
                p.extend_from_slice(&i.as_ref()[pos..pos + take]);
            }
            pos += take;
            if self.pending[0].len() == CHUNK {
                self.run(false, out, u64::MAX)?;
            }
        }
        Ok(())
    }

    /// Flushes the resampler's tail into `out`. The resampler can then be reused
    /// for a new stream.
    pub fn finish(&mut self, out: &mut [Vec<f32>]) -> Result<(), AudioError> {
        let target = self.output_len(self.frames_in);
        if self.inner.is_some() {
            let mut first = true;
            while self.frames_out < target {
                self.run(first, out, target)?;
                first = false;
            }
        }
        self.reset();
        Ok(())
    }

    /// Forgets all state.
    pub fn reset(&mut self) {
        if let Some(r) = self.inner.as_mut() {
            r.reset();
            self.to_skip = r.output_delay();
        }
        for p in &mut self.pending {
            p.clear();
        }
        self.frames_in = 0;
        self.frames_out = 0;
    }

    fn run(&mut self, partial: bool, out: &mut [Vec<f32>], limit: u64) -> Result<(), AudioError> {
        let Some(r) = self.inner.as_mut() else {
            return Ok(());
        };
        let (_, produced) = if partial || self.pending[0].len() < CHUNK {
            let input = if self.pending[0].is_empty() {
                None
            } else {
                Some(&self.pending[..])
            };
            r.process_partial_into_buffer(input, &mut self.scratch, None)
        } else {
            r.process_into_buffer(&self.pending, &mut self.scratch, None)
        }
        .map_err(|e| AudioError::InvalidArgument(format!("resampler: {e}")))?;
        for p in &mut self.pending {
            p.clear();
        }
        let skip = self.to_skip.min(produced);
        self.to_skip -= skip;
        let avail = (produced - skip) as u64;
        let emit = avail.min(limit.saturating_sub(self.frames_out)) as usize;
        for (o, s) in out.iter_mut().zip(&self.scratch) {
            o.extend_from_slice(&s[skip..skip + emit]);
        }
        self.frames_out += emit as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| {
                (0.5 * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin())
                    as f32
            })
            .collect()
    }

    fn snr_db(reference: &[f32], test: &[f32]) -> f64 {
        let (mut s, mut e) = (0.0f64, 0.0f64);
        for (r, t) in reference.iter().zip(test) {
            s += f64::from(*r).powi(2);
            e += f64::from(r - t).powi(2);
        }
        10.0 * (s / e.max(1e-30)).log10()
    }

    fn run_blocks(from: u32, to: u32, input: &[f32], block: usize) -> Vec<f32> {
        let mut r = Resampler::new(from, to, 1).expect("valid rates");
        let mut out = vec![Vec::new()];
        for chunk in input.chunks(block) {
            r.process(&[chunk], &mut out).expect("process");
        }
        r.finish(&mut out).expect("finish");
        out.pop().unwrap_or_default()
    }

    #[test]
    fn sine_resampled_44k1_to_48k_matches_analytic_sine() {
        let n = 44_100;
        let out = run_blocks(44_100, 48_000, &sine(1000.0, 44_100, n), 1000);
        assert_eq!(out.len(), 48_000, "length is round(n · to / from)");
        let expected = sine(1000.0, 48_000, 48_000);
        // Away from the edges (where the input starts and stops abruptly) the output
        // is the same sine at the new rate, aligned in time.
        let snr = snr_db(&expected[2000..46_000], &out[2000..46_000]);
        assert!(snr > 80.0, "SNR {snr:.1} dB, want > 80 dB");
    }

    #[test]
    fn output_does_not_depend_on_block_size() {
        let input = sine(440.0, 48_000, 30_000);
        let a = run_blocks(48_000, 44_100, &input, 1);
        let b = run_blocks(48_000, 44_100, &input, 7);
        let c = run_blocks(48_000, 44_100, &input, 4096);
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.len(), 27_563);
    }

    #[test]
    fn equal_rates_pass_through() {
        let input = sine(440.0, 44_100, 1234);
        assert_eq!(run_blocks(44_100, 44_100, &input, 100), input);
    }
}
