//! Helpers shared by the tests that run the real `sonantica` binary.
#![allow(dead_code)]

pub mod scale;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `sonantica ARGS...` and collects its output.
pub fn sonantica(args: &[&str]) -> anyhow::Result<Output> {
    Ok(Command::new(env!("CARGO_BIN_EXE_sonantica"))
        .args(args)
        .output()?)
}

/// A path as a command-line argument (the test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// The separation fixtures of sonantica-demucs.
pub fn demucs_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../demucs/tests/fixtures")
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
