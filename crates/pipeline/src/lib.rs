//! File-level work of Sonántica, with no server in it: what the CLI's offline
//! commands run and what the station's jobs call.
//!
//! - [`analysis`]: the Inspector over a whole file (loudness, true peak, DR, ...).
//! - [`separate`]: a file into stems with HTDemucs, staged and renamed into place.
//! - [`render`]: a set of stems through the Stem Engine into one file, from a
//!   [`sonantica_mix::MixSettings`].
//! - [`models`]: the model store (names, files, the data folder), and
//!   [`download`]: installing a named model into it.
//!
//! - [`sandbox`]: reading untrusted files in a child process with limits, and
//!   [`cover`]: album covers from those files.
//!
//! No axum, sqlx, redis or tokio: `sonantica analyze` links none of them.

pub mod analysis;
pub mod cover;
pub mod download;
mod error;
pub mod models;
pub mod render;
pub mod sandbox;
pub mod separate;

pub use error::{PipelineError, PipelineResult};
