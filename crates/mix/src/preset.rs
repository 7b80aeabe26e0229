//! Focus presets: named gain settings, as data so that a UI can list, show and
//! tweak them.

use crate::Source;

/// A named stem balance. Sources not listed play at 0 dB; applying a preset also
/// clears every mute and solo.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Preset {
    /// Identifier used on the command line and in the API (`karaoke`).
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// One line for a tooltip.
    pub description: &'static str,
    /// Gains in dB; `f32::NEG_INFINITY` removes the source.
    pub gains_db: &'static [(Source, f32)],
}

const OUT: f32 = f32::NEG_INFINITY;

/// Every preset, in the order a UI shows them.
pub const PRESETS: &[Preset] = &[
    Preset {
        id: "original",
        name: "Original",
        description: "Every stem at unity: the original mix",
        gains_db: &[],
    },
    Preset {
        id: "karaoke",
        name: "Karaoke",
        description: "Vocals out: sing along",
        gains_db: &[(Source::Vocals, OUT)],
    },
    Preset {
        id: "acappella",
        name: "A cappella",
        description: "Vocals only",
        gains_db: &[
            (Source::Drums, OUT),
            (Source::Bass, OUT),
            (Source::Other, OUT),
            (Source::Guitar, OUT),
            (Source::Piano, OUT),
        ],
    },
    Preset {
        id: "musician",
        name: "Musician",
        description: "Bass and drums up, vocals down: hear the groove",
        gains_db: &[
            (Source::Drums, 3.0),
            (Source::Bass, 4.0),
            (Source::Vocals, -9.0),
        ],
    },
    Preset {
        id: "bass-practice",
        name: "Bass practice",
        description: "Bass out: play the bass line yourself",
        gains_db: &[(Source::Bass, OUT)],
    },
    Preset {
        id: "drum-practice",
        name: "Drum practice",
        description: "Drums out: play the drums yourself",
        gains_db: &[(Source::Drums, OUT)],
    },
];

impl Preset {
    /// The preset with this id (case-insensitive).
    pub fn by_id(id: &str) -> Option<&'static Preset> {
        PRESETS
            .iter()
            .find(|p| p.id.eq_ignore_ascii_case(id.trim()))
    }

    /// The gain this preset gives `source`, in dB.
    pub fn gain_db(&self, source: Source) -> f32 {
        self.gains_db
            .iter()
            .find(|(s, _)| *s == source)
            .map_or(0.0, |(_, g)| *g)
    }
}
