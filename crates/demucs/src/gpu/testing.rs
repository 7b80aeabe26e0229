//! What the GPU unit tests share: a device, the fixture models, inputs and
//! the comparison.

use super::Gpu;

/// The machine's GPU, a software one included (lavapipe in CI); without one
/// the test fails, saying what to install.
pub(crate) fn gpu() -> Gpu {
    match Gpu::open(true) {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}

/// A fixture model of `tests/fixtures`.
pub(crate) fn fixture(name: &str) -> crate::Separator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    match crate::load_separator(&path) {
        Ok(s) => s,
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// `n` floats of xorshift noise in [-1, 1).
pub(crate) fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// The largest difference relative to the largest magnitude of `want`.
pub(crate) fn rel(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f64, |m, v| m.max(f64::from(v.abs())));
    let worst = got
        .iter()
        .zip(want)
        .fold(0.0f64, |m, (a, b)| m.max(f64::from((a - b).abs())));
    worst / scale.max(1e-30)
}
