//! Stem sources and the part each plays in a speaker layout.

use std::fmt;
use std::str::FromStr;

/// A separated source, named as Demucs names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Source {
    /// Drums and percussion.
    Drums,
    /// Bass.
    Bass,
    /// Everything else (pads, strings, effects, ambience).
    Other,
    /// Lead and backing vocals.
    Vocals,
    /// Guitar (six-source models).
    Guitar,
    /// Piano (six-source models).
    Piano,
}

/// How a source is placed by the surround upmix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Centre speaker (with a share kept in the front pair).
    Voice,
    /// Front pair, and its low end to the LFE.
    Rhythm,
    /// Front pair.
    Harmony,
    /// Spread to the surrounds through decorrelation (a share stays in front).
    Ambience,
}

impl Source {
    /// Every source, in Demucs order for the six-source model.
    pub const ALL: [Source; 6] = [
        Source::Drums,
        Source::Bass,
        Source::Other,
        Source::Vocals,
        Source::Guitar,
        Source::Piano,
    ];

    /// The four sources of htdemucs, in its order.
    pub const FOUR: [Source; 4] = [Source::Drums, Source::Bass, Source::Other, Source::Vocals];

    /// The six sources of htdemucs_6s, in its order.
    pub const SIX: [Source; 6] = Source::ALL;

    /// The file-name stem (`drums`, `vocals`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Source::Drums => "drums",
            Source::Bass => "bass",
            Source::Other => "other",
            Source::Vocals => "vocals",
            Source::Guitar => "guitar",
            Source::Piano => "piano",
        }
    }

    /// The upmix role: vocals to the centre, drums and bass to the fronts and LFE,
    /// guitar and piano to the fronts, "other" to the surrounds.
    pub const fn role(self) -> Role {
        match self {
            Source::Vocals => Role::Voice,
            Source::Drums | Source::Bass => Role::Rhythm,
            Source::Guitar | Source::Piano => Role::Harmony,
            Source::Other => Role::Ambience,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown source name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown source {0:?}: expected drums, bass, other, vocals, guitar or piano")]
pub struct ParseSourceError(pub String);

impl FromStr for Source {
    type Err = ParseSourceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::ALL
            .into_iter()
            .find(|src| src.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| ParseSourceError(s.to_string()))
    }
}
