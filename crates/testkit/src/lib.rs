//! Helpers shared by the tests (and benchmarks) of the Sonántica crates.
//!
//! - [`signal`]: deterministic test signals (xorshift noise).
//! - [`snr`]: signal-to-error ratios.
//! - [`alloc`]: a counting global allocator, for "this path never allocates" tests.
//! - [`oracle`]: ffmpeg and ffprobe as independent oracles.
//! - [`cmd`]: a command runner that reports the command line, status, stdout and
//!   stderr when a command does not end the way a test expects (after ripgrep's
//!   `TestCommand`).
//!
//! This crate is for tests only (`publish = false`); it depends on std and
//! anyhow alone so that building it costs next to nothing.

pub mod alloc;
pub mod cmd;
pub mod oracle;
pub mod signal;
pub mod snr;
