//! Speaker layouts shared by every crate: how many channels, in which order, and
//! what the WAVE_FORMAT_EXTENSIBLE mask and ffmpeg call them.

use std::fmt;
use std::str::FromStr;

/// One loudspeaker position, with its WAVE_FORMAT_EXTENSIBLE bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Speaker {
    /// Front left.
    FrontLeft,
    /// Front right.
    FrontRight,
    /// Front centre.
    FrontCenter,
    /// Low-frequency effects.
    Lfe,
    /// Back (rear) left.
    BackLeft,
    /// Back (rear) right.
    BackRight,
    /// Side left.
    SideLeft,
    /// Side right.
    SideRight,
}

impl Speaker {
    /// The speaker's bit in a WAVE_FORMAT_EXTENSIBLE `dwChannelMask`.
    pub const fn wave_mask_bit(self) -> u32 {
        match self {
            Speaker::FrontLeft => 0x1,
            Speaker::FrontRight => 0x2,
            Speaker::FrontCenter => 0x4,
            Speaker::Lfe => 0x8,
            Speaker::BackLeft => 0x10,
            Speaker::BackRight => 0x20,
            Speaker::SideLeft => 0x200,
            Speaker::SideRight => 0x400,
        }
    }

    /// Short label as ffmpeg prints it (`FL`, `LFE`, ...).
    pub const fn label(self) -> &'static str {
        match self {
            Speaker::FrontLeft => "FL",
            Speaker::FrontRight => "FR",
            Speaker::FrontCenter => "FC",
            Speaker::Lfe => "LFE",
            Speaker::BackLeft => "BL",
            Speaker::BackRight => "BR",
            Speaker::SideLeft => "SL",
            Speaker::SideRight => "SR",
        }
    }

    /// True for surround positions (weighted 1.41 by ITU-R BS.1770).
    pub const fn is_surround(self) -> bool {
        matches!(
            self,
            Speaker::BackLeft | Speaker::BackRight | Speaker::SideLeft | Speaker::SideRight
        )
    }
}

const MONO: &[Speaker] = &[Speaker::FrontCenter];
const STEREO: &[Speaker] = &[Speaker::FrontLeft, Speaker::FrontRight];
const TWO_ONE: &[Speaker] = &[Speaker::FrontLeft, Speaker::FrontRight, Speaker::Lfe];
const FIVE_ONE: &[Speaker] = &[
    Speaker::FrontLeft,
    Speaker::FrontRight,
    Speaker::FrontCenter,
    Speaker::Lfe,
    Speaker::BackLeft,
    Speaker::BackRight,
];
const SEVEN_ONE: &[Speaker] = &[
    Speaker::FrontLeft,
    Speaker::FrontRight,
    Speaker::FrontCenter,
    Speaker::Lfe,
    Speaker::BackLeft,
    Speaker::BackRight,
    Speaker::SideLeft,
    Speaker::SideRight,
];

/// A channel layout: the named speaker layouts, or N channels with no positions.
///
/// Channel order is always the WAVE_FORMAT_EXTENSIBLE order (ascending mask bit),
/// which is also FLAC's default order for 1, 2, 6 and 8 channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelLayout {
    /// One channel (front centre).
    Mono,
    /// Front left, front right.
    Stereo,
    /// FL FR LFE (mask 0x0B).
    TwoPointOne,
    /// FL FR FC LFE BL BR (mask 0x3F).
    FivePointOne,
    /// FL FR FC LFE BL BR SL SR (mask 0x63F).
    SevenPointOne,
    /// N channels without speaker positions (for example several stems side by side).
    Discrete(u16),
}

impl ChannelLayout {
    /// The usual layout for a channel count: mono, stereo, 2.1 for 3, 5.1 for 6,
    /// 7.1 for 8, discrete otherwise.
    pub const fn default_for(channels: usize) -> Self {
        match channels {
            1 => ChannelLayout::Mono,
            2 => ChannelLayout::Stereo,
            3 => ChannelLayout::TwoPointOne,
            6 => ChannelLayout::FivePointOne,
            8 => ChannelLayout::SevenPointOne,
            // A u16 holds any real channel count; larger values are clamped.
            n if n <= u16::MAX as usize => ChannelLayout::Discrete(n as u16),
            _ => ChannelLayout::Discrete(u16::MAX),
        }
    }

    /// The layout whose WAVE_FORMAT_EXTENSIBLE mask is `mask` for `channels` channels.
    /// A zero mask (positions not given) gives [`ChannelLayout::default_for`]; a mask
    /// that names no known layout gives a discrete layout.
    pub fn from_wave_mask(mask: u32, channels: usize) -> Self {
        if mask == 0 {
            return ChannelLayout::default_for(channels);
        }
        [
            ChannelLayout::Mono,
            ChannelLayout::Stereo,
            ChannelLayout::TwoPointOne,
            ChannelLayout::FivePointOne,
            ChannelLayout::SevenPointOne,
        ]
        .into_iter()
        .find(|l| {
            l.channels() == channels
                && (l.wave_mask() == mask || l.alt_wave_masks().contains(&mask))
        })
        .unwrap_or(ChannelLayout::Discrete(
            channels.min(u16::MAX as usize) as u16
        ))
    }

    /// Number of channels.
    pub const fn channels(self) -> usize {
        match self {
            ChannelLayout::Discrete(n) => n as usize,
            other => other.speakers().len(),
        }
    }

    /// Speaker positions in channel order (empty for discrete layouts).
    pub const fn speakers(self) -> &'static [Speaker] {
        match self {
            ChannelLayout::Mono => MONO,
            ChannelLayout::Stereo => STEREO,
            ChannelLayout::TwoPointOne => TWO_ONE,
            ChannelLayout::FivePointOne => FIVE_ONE,
            ChannelLayout::SevenPointOne => SEVEN_ONE,
            ChannelLayout::Discrete(_) => &[],
        }
    }

    /// The WAVE_FORMAT_EXTENSIBLE `dwChannelMask` (0 for discrete layouts: no positions).
    pub fn wave_mask(self) -> u32 {
        self.speakers().iter().fold(0, |m, s| m | s.wave_mask_bit())
    }

    /// Other masks that mean the same layout in files written by other tools
    /// (5.1 with side instead of back surrounds).
    fn alt_wave_masks(self) -> &'static [u32] {
        match self {
            ChannelLayout::FivePointOne => &[0x60F],
            _ => &[],
        }
    }

    /// The name ffmpeg/ffprobe give this layout (`5.1`, `7.1`, `8 channels`).
    pub fn ffmpeg_name(self) -> String {
        match self {
            ChannelLayout::Mono => "mono".into(),
            ChannelLayout::Stereo => "stereo".into(),
            ChannelLayout::TwoPointOne => "2.1".into(),
            ChannelLayout::FivePointOne => "5.1".into(),
            ChannelLayout::SevenPointOne => "7.1".into(),
            ChannelLayout::Discrete(n) => format!("{n} channels"),
        }
    }

    /// Index of a speaker in this layout's channel order.
    pub fn index_of(self, speaker: Speaker) -> Option<usize> {
        self.speakers().iter().position(|s| *s == speaker)
    }
}

impl fmt::Display for ChannelLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelLayout::Discrete(n) => write!(f, "{n}ch"),
            other => f.write_str(&other.ffmpeg_name()),
        }
    }
}

/// Error for an unknown layout name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel layout {0:?}: expected mono, stereo, 2.1, 5.1, 7.1 or Nch")]
pub struct ParseLayoutError(pub String);

impl FromStr for ChannelLayout {
    type Err = ParseLayoutError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mono" | "1.0" => Ok(ChannelLayout::Mono),
            "stereo" | "2.0" => Ok(ChannelLayout::Stereo),
            "2.1" => Ok(ChannelLayout::TwoPointOne),
            "5.1" => Ok(ChannelLayout::FivePointOne),
            "7.1" => Ok(ChannelLayout::SevenPointOne),
            other => other
                .strip_suffix("ch")
                .and_then(|n| n.parse::<u16>().ok())
                .filter(|n| *n > 0)
                .map(ChannelLayout::Discrete)
                .ok_or_else(|| ParseLayoutError(s.to_string())),
        }
    }
}

impl serde::Serialize for ChannelLayout {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ChannelLayout {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_match_reference_values() {
        assert_eq!(ChannelLayout::TwoPointOne.wave_mask(), 0x0B);
        assert_eq!(ChannelLayout::FivePointOne.wave_mask(), 0x3F);
        assert_eq!(ChannelLayout::SevenPointOne.wave_mask(), 0x63F);
        assert_eq!(ChannelLayout::Stereo.wave_mask(), 0x3);
        assert_eq!(ChannelLayout::Mono.wave_mask(), 0x4);
    }

    #[test]
    fn side_five_one_mask_is_recognised() {
        assert_eq!(
            ChannelLayout::from_wave_mask(0x60F, 6),
            ChannelLayout::FivePointOne
        );
        assert_eq!(
            ChannelLayout::from_wave_mask(0x63F, 8),
            ChannelLayout::SevenPointOne
        );
        // 0xFF (what hound writes for 8 channels) names FLC/FRC, not the sides: not 7.1.
        assert_eq!(
            ChannelLayout::from_wave_mask(0xFF, 8),
            ChannelLayout::Discrete(8)
        );
        assert_eq!(
            ChannelLayout::from_wave_mask(0, 6),
            ChannelLayout::FivePointOne
        );
    }

    #[test]
    fn names_round_trip_through_from_str() {
        for l in [
            ChannelLayout::Mono,
            ChannelLayout::Stereo,
            ChannelLayout::TwoPointOne,
            ChannelLayout::FivePointOne,
            ChannelLayout::SevenPointOne,
            ChannelLayout::Discrete(12),
        ] {
            assert_eq!(l.to_string().parse::<ChannelLayout>(), Ok(l));
        }
        assert!("quad".parse::<ChannelLayout>().is_err());
        assert!("0ch".parse::<ChannelLayout>().is_err());
    }
}
