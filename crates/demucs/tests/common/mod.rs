//! Fixture access and measures shared by the parity tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// A file of `tests/fixtures` (made by tools/reference/make_fixtures.py).
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Signal-to-error ratio of `got` against `reference`, in dB.
pub fn snr_db(reference: &[f32], got: &[f32]) -> f64 {
    let (mut s, mut e) = (0.0f64, 0.0f64);
    for (r, g) in reference.iter().zip(got) {
        s += f64::from(*r).powi(2);
        e += f64::from(r - g).powi(2);
    }
    10.0 * (s / e.max(1e-30)).log10()
}
