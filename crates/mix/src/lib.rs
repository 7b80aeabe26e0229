//! **The Stem Engine**: turns a set of sample-aligned stems into what the listener
//! wants to hear, on any speaker layout.
//!
//! - [`StemMixer`]: per-stem gain (down to -inf), mute and solo, every change
//!   ramped over 20 ms; [`Preset`]s (Karaoke, A cappella, Musician, ...) are data.
//! - [`ChannelMatrix`]: routes the mixed stems to mono, stereo, 2.1 (Linkwitz-Riley
//!   LFE), or a stem-driven 5.1/7.1 upmix: vocals to the centre, drums and bass to
//!   the fronts and their low end to the LFE, "other" to decorrelated surrounds.
//! - [`StemEngine`]: both, over any block size, driven by one [`MixSettings`].
//!
//! Input stems are stereo and interleaved by stem in planar form: channels
//! `2k, 2k + 1` are the left and right of stem `k`. Everything is real-time safe:
//! constructors allocate, `process` never does, takes no locks, and gives the same
//! output whatever the block size. No I/O, no heavy dependencies: it builds for
//! `wasm32-unknown-unknown`, where the web player runs the same code.

mod decorrelate;
mod engine;
mod filter;
mod matrix;
mod mixer;
mod preset;
mod ramp;
mod settings;
mod source;
mod stretch;

pub use decorrelate::{Decorrelator, MAX_DELAY_S};
pub use engine::StemEngine;
pub use filter::{Band, Biquad, Coeffs, LinkwitzRiley};
pub use matrix::{ChannelMatrix, MatrixParams};
pub use mixer::StemMixer;
pub use preset::{Preset, PRESETS};
pub use ramp::Ramp;
pub use settings::{MixSettings, MAX_GAIN_DB};
pub use sonantica_audio::ChannelLayout;
pub use source::{ParseSourceError, Role, Source};
pub use stretch::{Stretcher, MAX_TEMPO, MAX_TRANSPOSE, MIN_TEMPO};

/// Most stems a mix takes (six-source models).
pub const MAX_STEMS: usize = 6;

/// Length of every gain ramp, in seconds.
pub const RAMP_S: f64 = 0.02;

/// Errors from building or driving the Stem Engine.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MixError {
    /// No stems were given.
    #[error("no stems to mix")]
    NoStems,
    /// More than [`MAX_STEMS`] stems.
    #[error("at most {MAX_STEMS} stems can be mixed, not {0}")]
    TooManyStems(usize),
    /// A source appears twice.
    #[error("the stem {0} is given twice")]
    DuplicateSource(Source),
    /// A source that is not among the stems.
    #[error("there is no {0} stem in this mix")]
    UnknownSource(Source),
    /// Wrong number of input or output channels.
    #[error("expected {expected} channels, got {got}")]
    ChannelMismatch {
        /// Channels expected.
        expected: usize,
        /// Channels given.
        got: usize,
    },
    /// The channels of a block have different lengths.
    #[error("the channels of a block have different lengths")]
    LengthMismatch,
    /// The output layout cannot be rendered.
    #[error("cannot render to {0}: use mono, stereo, 2.1, 5.1 or 7.1")]
    UnsupportedLayout(ChannelLayout),
    /// A parameter is out of range.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
}

/// dB to linear gain; `-inf` (or anything below -144 dB) is silence.
pub fn db_to_gain(db: f32) -> f32 {
    if db <= -144.0 {
        0.0
    } else {
        10f32.powf(db / 20.0)
    }
}

pub(crate) fn check_block<I: AsRef<[f32]>, O: AsMut<[f32]>>(
    input: &[I],
    inputs: usize,
    output: &mut [O],
    outputs: usize,
) -> Result<usize, MixError> {
    if input.len() != inputs {
        return Err(MixError::ChannelMismatch {
            expected: inputs,
            got: input.len(),
        });
    }
    if output.len() != outputs {
        return Err(MixError::ChannelMismatch {
            expected: outputs,
            got: output.len(),
        });
    }
    let n = input.first().map_or(0, |c| c.as_ref().len());
    if input.iter().any(|c| c.as_ref().len() != n)
        || output.iter_mut().any(|c| c.as_mut().len() != n)
    {
        return Err(MixError::LengthMismatch);
    }
    Ok(n)
}
