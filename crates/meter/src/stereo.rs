//! Phase correlation, stereo width and balance from the same three running sums.
//!
//! With ⟨·⟩ a one-pole average (time constant 300 ms) or a whole-signal sum:
//! ρ = ⟨LR⟩ / √(⟨L²⟩⟨R²⟩); with M = (L+R)/2, S = (L-R)/2 the side share is
//! E_S / (E_M + E_S) = (⟨L²⟩ + ⟨R²⟩ - 2⟨LR⟩) / (2(⟨L²⟩ + ⟨R²⟩)); balance is
//! (⟨R²⟩ - ⟨L²⟩) / (⟨L²⟩ + ⟨R²⟩).

/// Energy below which (per sample, about -70 dBFS) the image is not measured.
const SILENCE: f64 = 1e-7;

/// Stereo-image meter over a left/right pair.
#[derive(Debug, Clone)]
pub struct StereoImage {
    coeff: f64,
    ll: f64,
    rr: f64,
    lr: f64,
    total_ll: f64,
    total_rr: f64,
    total_lr: f64,
    hop: u64,
    pos: u64,
    corr_sum: f64,
    corr_count: u64,
    corr_min: f64,
}

impl StereoImage {
    /// A meter for `sample_rate`, integrating over 300 ms and sampling the live
    /// correlation every 10 ms for the whole-signal mean and minimum.
    pub fn new(sample_rate: u32) -> Self {
        let tau = 0.3 * f64::from(sample_rate);
        Self {
            coeff: 1.0 - (-1.0 / tau).exp(),
            ll: 0.0,
            rr: 0.0,
            lr: 0.0,
            total_ll: 0.0,
            total_rr: 0.0,
            total_lr: 0.0,
            hop: (u64::from(sample_rate) / 100).max(1),
            pos: 0,
            corr_sum: 0.0,
            corr_count: 0,
            corr_min: f64::INFINITY,
        }
    }

    /// Measures a block of left and right samples (equal lengths).
    pub fn process(&mut self, left: &[f32], right: &[f32]) {
        let n = left.len().min(right.len());
        let mut i = 0;
        while i < n {
            let take = ((self.hop - self.pos) as usize).min(n - i);
            let (mut ll, mut rr, mut lr) = (self.ll, self.rr, self.lr);
            // Totals accumulate in place (not per block) so that the summation order
            // does not depend on the block size.
            let (mut tll, mut trr, mut tlr) = (self.total_ll, self.total_rr, self.total_lr);
            let k = self.coeff;
            for (&l, &r) in left[i..i + take].iter().zip(&right[i..i + take]) {
                let (l, r) = (f64::from(l), f64::from(r));
                let (pll, prr, plr) = (l * l, r * r, l * r);
                ll += k * (pll - ll);
                rr += k * (prr - rr);
                lr += k * (plr - lr);
                tll += pll;
                trr += prr;
                tlr += plr;
            }
            (self.ll, self.rr, self.lr) = (ll, rr, lr);
            (self.total_ll, self.total_rr, self.total_lr) = (tll, trr, tlr);
            i += take;
            self.pos += take as u64;
            if self.pos == self.hop {
                self.pos = 0;
                if let Some(c) = self.correlation() {
                    self.corr_sum += c;
                    self.corr_count += 1;
                    self.corr_min = self.corr_min.min(c);
                }
            }
        }
    }

    /// Live phase correlation (-1..+1); `None` in silence or when one side is silent.
    pub fn correlation(&self) -> Option<f64> {
        correlation(self.ll, self.rr, self.lr)
    }

    /// Live stereo width (side energy share, 0..1).
    pub fn width(&self) -> Option<f64> {
        width(self.ll, self.rr, self.lr)
    }

    /// Live balance (-1 left .. +1 right).
    pub fn balance(&self) -> Option<f64> {
        balance(self.ll, self.rr)
    }

    /// Mean of the live correlation over the non-silent 10 ms steps so far.
    pub fn mean_correlation(&self) -> Option<f64> {
        (self.corr_count > 0).then(|| self.corr_sum / self.corr_count as f64)
    }

    /// Lowest live correlation so far.
    pub fn min_correlation(&self) -> Option<f64> {
        (self.corr_count > 0).then_some(self.corr_min)
    }

    /// Stereo width over everything measured.
    pub fn total_width(&self) -> Option<f64> {
        width(self.total_ll, self.total_rr, self.total_lr)
    }

    /// Balance over everything measured.
    pub fn total_balance(&self) -> Option<f64> {
        balance(self.total_ll, self.total_rr)
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        let (coeff, hop) = (self.coeff, self.hop);
        *self = Self {
            coeff,
            hop,
            ll: 0.0,
            rr: 0.0,
            lr: 0.0,
            total_ll: 0.0,
            total_rr: 0.0,
            total_lr: 0.0,
            pos: 0,
            corr_sum: 0.0,
            corr_count: 0,
            corr_min: f64::INFINITY,
        };
    }
}

fn correlation(ll: f64, rr: f64, lr: f64) -> Option<f64> {
    // Both sides must carry signal: the correlation of a signal with silence is
    // undefined, and a meter should not swing to 0 on a hard-panned source's tail.
    let scale = ll.max(rr);
    if ll <= SILENCE * 1e-3 || rr <= SILENCE * 1e-3 || scale < SILENCE {
        return None;
    }
    Some((lr / (ll * rr).sqrt()).clamp(-1.0, 1.0))
}

fn width(ll: f64, rr: f64, lr: f64) -> Option<f64> {
    let e = ll + rr;
    (e > SILENCE * 1e-3).then(|| ((e - 2.0 * lr) / (2.0 * e)).clamp(0.0, 1.0))
}

fn balance(ll: f64, rr: f64) -> Option<f64> {
    let e = ll + rr;
    (e > SILENCE * 1e-3).then(|| (rr - ll) / e)
}
