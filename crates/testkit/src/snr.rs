//! Signal-to-error ratios.

/// `10 log10(signal / error)` for two energies, with the error floored at 1e-30
/// so that identical signals give a large finite figure.
pub fn ratio_db(signal: f64, error: f64) -> f64 {
    10.0 * (signal / error.max(1e-30)).log10()
}

/// Signal-to-error ratio of `got` against `reference`, in dB (over the shorter
/// of the two).
pub fn snr_db(reference: &[f32], got: &[f32]) -> f64 {
    let (mut s, mut e) = (0.0f64, 0.0f64);
    for (r, g) in reference.iter().zip(got) {
        s += f64::from(*r).powi(2);
        e += f64::from(r - g).powi(2);
    }
    ratio_db(s, e)
}

/// The best SNR of `test` against `reference`, in dB, over the alignments within
/// ±`max_lag` frames (lossy decoders may trim encoder delay differently). Frames
/// within `max_lag` of either end of the reference are left out.
pub fn aligned_snr_db(reference: &[f32], test: &[f32], max_lag: usize) -> f64 {
    let (r, t) = (reference, test);
    let mut best = f64::NEG_INFINITY;
    for lag in -(max_lag as i64)..=(max_lag as i64) {
        let (mut s, mut e) = (0.0f64, 0.0f64);
        let n = r.len().min(t.len()) as i64 - max_lag as i64 * 2;
        for i in max_lag as i64..n {
            let j = i + lag;
            if j < 0 || j as usize >= t.len() {
                continue;
            }
            let (a, b) = (f64::from(r[i as usize]), f64::from(t[j as usize]));
            s += a * a;
            e += (a - b) * (a - b);
        }
        best = best.max(ratio_db(s, e));
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snr_of_a_scaled_copy() {
        let x: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.1).sin()).collect();
        let y: Vec<f32> = x.iter().map(|v| v * 0.9).collect();
        assert!((snr_db(&x, &y) - 20.0).abs() < 1e-3);
        assert!(snr_db(&x, &x) > 290.0);
    }

    #[test]
    fn aligned_snr_finds_the_lag() {
        let x: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut shifted = vec![0.0f32; 5];
        shifted.extend(&x);
        assert!(snr_db(&x, &shifted) < 10.0);
        assert!(aligned_snr_db(&x, &shifted, 8) > 290.0);
    }
}
