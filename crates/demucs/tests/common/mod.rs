//! Fixture access shared by the parity tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// A file of `tests/fixtures` (made by tools/reference/make_fixtures.py).
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}
