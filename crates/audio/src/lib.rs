//! Audio I/O for Sonántica.
//!
//! - [`layout`]: [`ChannelLayout`], the speaker-layout vocabulary every crate shares
//!   (always available, wasm32-safe).
//! - [`decode`]: streaming decode of FLAC, WAV, MP3, Ogg Vorbis, AAC/M4A and ALAC
//!   through symphonia, packet by packet, so a long file never sits in memory.
//! - [`encode`]: streaming FLAC (16/24-bit, 1-8 channels) and WAV (16/24-bit int,
//!   32-bit float, WAVE_FORMAT_EXTENSIBLE) writers that write to a temporary name
//!   and rename into place only when complete.
//! - [`opus`]: an Ogg Opus stream encoded as it is written (opus-rs, `ogg`),
//!   for players that ask the station for a smaller file.
//! - [`resample`]: streaming sample-rate conversion with rubato.
//!
//! Samples are planar `f32` in [-1, 1) everywhere.

pub mod layout;
pub use layout::{ChannelLayout, ParseLayoutError, Speaker};

#[cfg(feature = "io")]
mod error;
#[cfg(feature = "io")]
pub use error::AudioError;

#[cfg(feature = "io")]
pub mod atomic;
#[cfg(feature = "io")]
pub mod decode;
#[cfg(feature = "io")]
pub mod encode;
#[cfg(feature = "io")]
pub mod opus;
#[cfg(feature = "io")]
pub mod resample;

#[cfg(feature = "io")]
pub use decode::{embedded_picture, AudioInfo, BlockReader, Decoder};
#[cfg(feature = "io")]
pub use encode::{AudioWriter, OutputFormat};
#[cfg(feature = "io")]
pub use opus::OggOpusWriter;
#[cfg(feature = "io")]
pub use resample::Resampler;
