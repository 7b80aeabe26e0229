//! The STFT and inverse STFT exactly as HTDemucs calls `torch.stft`/`torch.istft`
//! (`_spec`/`_ispec` in `htdemucs.py`, `spectro`/`ispectro` in `spec.py`): periodic
//! Hann window, `normalized=True`, `center=True` with reflect padding, the Nyquist
//! bin dropped and two frames trimmed at each end.

use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

/// Reflect padding as `pad1d` does (no edge repetition; inputs shorter than the
/// padding are first zero-extended on the right, as the reference does).
pub fn pad_reflect(x: &[f32], left: usize, right: usize) -> Vec<f32> {
    let len = x.len();
    let max_pad = left.max(right);
    if len <= max_pad {
        let extra = max_pad - len + 1;
        let extra_right = right.min(extra);
        let extra_left = extra - extra_right;
        let mut y = vec![0.0; extra_left];
        y.extend_from_slice(x);
        y.extend(std::iter::repeat_n(0.0, extra_right));
        return pad_reflect(&y, left - extra_left, right - extra_right);
    }
    let mut out = Vec::with_capacity(len + left + right);
    out.extend((1..=left).rev().map(|i| x[i]));
    out.extend_from_slice(x);
    out.extend((1..=right).map(|i| x[len - 1 - i]));
    out
}

/// STFT/ISTFT plans for one FFT size.
pub struct Stft {
    nfft: usize,
    hop: usize,
    window: Vec<f32>,
    fwd: Arc<dyn RealToComplex<f32>>,
    inv: Arc<dyn ComplexToReal<f32>>,
}

impl std::fmt::Debug for Stft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stft").field("nfft", &self.nfft).finish()
    }
}

impl Stft {
    /// Plans for `nfft` (hop `nfft / 4`).
    pub fn new(nfft: usize) -> Self {
        let mut planner = RealFftPlanner::<f32>::new();
        let window = (0..nfft)
            .map(|n| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / nfft as f64).cos()) as f32
            })
            .collect();
        Self {
            nfft,
            hop: nfft / 4,
            window,
            fwd: planner.plan_fft_forward(nfft),
            inv: planner.plan_fft_inverse(nfft),
        }
    }

    /// `_spec` of one channel: `[nfft/2, ceil(len/hop)]` complex, frequency-major.
    pub fn spec(&self, x: &[f32]) -> (Vec<Complex32>, usize) {
        let (n, hl) = (self.nfft, self.hop);
        let le = x.len().div_ceil(hl);
        let pad = hl / 2 * 3;
        let padded = pad_reflect(x, pad, pad + le * hl - x.len());
        // torch.stft(center=True) reflect-pads nfft/2 more on each side.
        let centred = pad_reflect(&padded, n / 2, n / 2);
        let fr = n / 2;
        let mut out = vec![Complex32::new(0.0, 0.0); fr * le];
        let mut frame = vec![0.0f32; n];
        let mut spectrum = self.fwd.make_output_vec();
        let mut scratch = self.fwd.make_scratch_vec();
        let norm = 1.0 / (n as f32).sqrt();
        for t in 0..le {
            let start = (t + 2) * hl;
            for (i, f) in frame.iter_mut().enumerate() {
                *f = centred[start + i] * self.window[i];
            }
            // Lengths match the plan, so this cannot fail.
            let _ = self
                .fwd
                .process_with_scratch(&mut frame, &mut spectrum, &mut scratch);
            for k in 0..fr {
                out[k * le + t] = spectrum[k] * norm;
            }
        }
        (out, le)
    }

    /// `_ispec`: `z` is `[nfft/2, frames]` complex; returns `length` samples.
    pub fn ispec(&self, z: &[Complex32], frames: usize, length: usize) -> Vec<f32> {
        let (n, hl) = (self.nfft, self.hop);
        let fr = n / 2;
        let pad = hl / 2 * 3;
        let le = hl * length.div_ceil(hl) + 2 * pad;
        // Two zero frames are added on each side, and the Nyquist bin (zero).
        let total = frames + 4;
        let full = n + hl * (total - 1);
        let mut acc = vec![0.0f32; full];
        let mut env = vec![0.0f32; full];
        let mut spectrum = self.inv.make_input_vec();
        let mut frame = vec![0.0f32; n];
        let mut scratch = self.inv.make_scratch_vec();
        // normalized=True: × √n, and the inverse FFT's 1/n.
        let scale = 1.0 / (n as f32).sqrt();
        for t in 0..total {
            let start = t * hl;
            if (2..2 + frames).contains(&t) {
                for k in 0..fr {
                    spectrum[k] = z[k * frames + t - 2];
                }
                spectrum[fr] = Complex32::new(0.0, 0.0);
                // A real signal's DC bin is real: the imaginary part is ignored, as
                // the C2R transform torch uses does.
                spectrum[0].im = 0.0;
                let _ = self
                    .inv
                    .process_with_scratch(&mut spectrum, &mut frame, &mut scratch);
                for i in 0..n {
                    acc[start + i] += frame[i] * scale * self.window[i];
                }
            }
            for i in 0..n {
                env[start + i] += self.window[i] * self.window[i];
            }
        }
        // center=True: the first nfft/2 samples are padding; output `le` samples.
        let mut x = vec![0.0f32; le];
        for (i, v) in x.iter_mut().enumerate() {
            let j = i + n / 2;
            if j < full && env[j] > 1e-11 {
                *v = acc[j] / env[j];
            }
        }
        x[pad..pad + length].to_vec()
    }
}
