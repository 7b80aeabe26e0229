//! One description of a mix: what the Studio's worklet plays, what `POST /mix`
//! and `sonantica render` write. Every consumer builds a [`MixSettings`] and hands
//! it whole to [`StemEngine::apply`](crate::StemEngine::apply), so there is one
//! place that turns settings into gains.
//!
//! A preset is a starting point: it fills in the gain of every stem it names, and
//! `gains_db` then says what each stem really plays at (a fader shows that gain,
//! not an offset from the preset). Mute and solo are applied last, exactly as
//! listed: a preset never clears them behind the listener's back; a UI that wants
//! "press a preset, start afresh" builds that with [`MixSettings::from_preset`].

use sonantica_audio::ChannelLayout;

use crate::{MatrixParams, MixError, Preset, Source};

/// Highest stem gain a mix accepts, in dB.
pub const MAX_GAIN_DB: f32 = 24.0;

/// Everything that decides what a mix sounds like.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "wire::Wire", into = "wire::Wire")
)]
pub struct MixSettings {
    /// The preset the mix starts from (`None`: every stem at 0 dB).
    pub preset: Option<&'static Preset>,
    /// Gains in dB that replace the preset's for these stems; `f32::NEG_INFINITY`
    /// removes a stem. In JSON: `{"drums": 5.0, "vocals": null}` (null is −∞).
    pub gains_db: Vec<(Source, f32)>,
    /// Muted stems.
    pub mute: Vec<Source>,
    /// Soloed stems: if any, only they sound (a muted stem stays silent).
    pub solo: Vec<Source>,
    /// Output speaker layout: mono, stereo, 2.1, 5.1 or 7.1.
    pub layout: ChannelLayout,
    /// Upmix and bass-management parameters.
    pub params: MatrixParams,
    /// Tempo, 0.5 to 1.5 (1 = as recorded), without changing the pitch.
    pub tempo: f64,
    /// Transposition in semitones, −12 to +12 (a fraction is cents), without
    /// changing the tempo.
    pub transpose: f64,
}

impl Default for MixSettings {
    fn default() -> Self {
        Self {
            preset: None,
            gains_db: Vec::new(),
            mute: Vec::new(),
            solo: Vec::new(),
            layout: ChannelLayout::Stereo,
            params: MatrixParams::default(),
            tempo: 1.0,
            transpose: 0.0,
        }
    }
}

impl MixSettings {
    /// A fresh mix from `preset`: its gains, no mute or solo, stereo.
    pub fn from_preset(preset: &'static Preset) -> Self {
        Self {
            preset: Some(preset),
            ..Self::default()
        }
    }

    /// The gain `source` plays at in dB before mute and solo: the last entry of
    /// `gains_db` for it, else the preset's, else 0.
    pub fn gain_db(&self, source: Source) -> f32 {
        self.gains_db
            .iter()
            .rev()
            .find(|(s, _)| *s == source)
            .map(|(_, g)| *g)
            .or_else(|| self.preset.map(|p| p.gain_db(source)))
            .unwrap_or(0.0)
    }

    /// Whether `source` is heard at all (not muted, soloed if anything is, and
    /// not at −∞).
    pub fn is_audible(&self, source: Source) -> bool {
        let soloed = self.solo.is_empty() || self.solo.contains(&source);
        !self.mute.contains(&source) && soloed && self.gain_db(source) > f32::NEG_INFINITY
    }

    /// Checks the settings against a set of stems: every named stem is among
    /// `sources`, gains are at most [`MAX_GAIN_DB`] and not NaN, the layout can be
    /// rendered, and the matrix parameters, tempo and transposition are in range.
    pub fn check(&self, sources: &[Source]) -> Result<(), MixError> {
        for s in self
            .gains_db
            .iter()
            .map(|(s, _)| s)
            .chain(&self.mute)
            .chain(&self.solo)
        {
            if !sources.contains(s) {
                return Err(MixError::UnknownSource(*s));
            }
        }
        self.check_values()
    }

    /// The checks that do not depend on the stems.
    pub(crate) fn check_values(&self) -> Result<(), MixError> {
        for (s, db) in &self.gains_db {
            if db.is_nan() || *db > MAX_GAIN_DB {
                return Err(MixError::InvalidParameter(format!(
                    "gain of {s} {db} dB: at most +{MAX_GAIN_DB} dB"
                )));
            }
        }
        if !matches!(
            self.layout,
            ChannelLayout::Mono
                | ChannelLayout::Stereo
                | ChannelLayout::TwoPointOne
                | ChannelLayout::FivePointOne
                | ChannelLayout::SevenPointOne
        ) {
            return Err(MixError::UnsupportedLayout(self.layout));
        }
        crate::stretch::check_params(self.tempo, self.transpose)?;
        self.params.validate()
    }
}

#[cfg(feature = "serde")]
mod wire {
    //! The JSON form, with the names the HTTP API has always used.
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::{ChannelLayout, MatrixParams, MixError, MixSettings, Preset, Source};
    use crate::PRESETS;

    #[derive(Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Wire {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        preset: Option<String>,
        #[serde(default)]
        gains: BTreeMap<String, Option<f32>>,
        #[serde(default)]
        mute: Vec<String>,
        #[serde(default)]
        solo: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        layout: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vocal_front_share: Option<f32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ambience_front: Option<f32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        surround_level: Option<f32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        surround_delay_ms: Option<f32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        crossover_hz: Option<f32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lfe_gain: Option<f32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mains_highpass: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tempo: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transpose: Option<f64>,
    }

    fn source(name: &str) -> Result<Source, MixError> {
        name.parse()
            .map_err(|e: crate::ParseSourceError| MixError::InvalidParameter(e.to_string()))
    }

    fn sources(names: &[String]) -> Result<Vec<Source>, MixError> {
        let mut out: Vec<Source> = Vec::with_capacity(names.len());
        for n in names {
            let s = source(n)?;
            if !out.contains(&s) {
                out.push(s);
            }
        }
        Ok(out)
    }

    impl TryFrom<Wire> for MixSettings {
        type Error = MixError;
        fn try_from(w: Wire) -> Result<Self, MixError> {
            let preset = match w.preset.as_deref() {
                None => None,
                Some(id) => Some(Preset::by_id(id).ok_or_else(|| {
                    let ids: Vec<&str> = PRESETS.iter().map(|p| p.id).collect();
                    MixError::InvalidParameter(format!(
                        "unknown preset {id:?}: expected one of {}",
                        ids.join(", ")
                    ))
                })?),
            };
            let gains_db = w
                .gains
                .iter()
                .map(|(name, db)| Ok((source(name)?, db.unwrap_or(f32::NEG_INFINITY))))
                .collect::<Result<Vec<_>, MixError>>()?;
            let layout: ChannelLayout = match &w.layout {
                None => ChannelLayout::Stereo,
                Some(l) => l
                    .parse()
                    .map_err(|e| MixError::InvalidParameter(format!("layout {l:?}: {e}")))?,
            };
            let d = MatrixParams::default();
            let settings = MixSettings {
                preset,
                gains_db,
                mute: sources(&w.mute)?,
                solo: sources(&w.solo)?,
                layout,
                params: MatrixParams {
                    vocal_front_share: w.vocal_front_share.unwrap_or(d.vocal_front_share),
                    ambience_front: w.ambience_front.unwrap_or(d.ambience_front),
                    surround_level: w.surround_level.unwrap_or(d.surround_level),
                    surround_delay_ms: w.surround_delay_ms.unwrap_or(d.surround_delay_ms),
                    crossover_hz: w.crossover_hz.unwrap_or(d.crossover_hz),
                    lfe_gain: w.lfe_gain.unwrap_or(d.lfe_gain),
                    mains_highpass: w.mains_highpass.unwrap_or(d.mains_highpass),
                },
                tempo: w.tempo.unwrap_or(1.0),
                transpose: w.transpose.unwrap_or(0.0),
            };
            settings.check_values()?;
            Ok(settings)
        }
    }

    impl From<MixSettings> for Wire {
        fn from(s: MixSettings) -> Self {
            let names = |v: &[Source]| v.iter().map(|s| s.name().to_string()).collect();
            let p = s.params;
            Wire {
                preset: s.preset.map(|p| p.id.to_string()),
                gains: s
                    .gains_db
                    .iter()
                    .map(|(src, db)| (src.name().to_string(), db.is_finite().then_some(*db)))
                    .collect(),
                mute: names(&s.mute),
                solo: names(&s.solo),
                layout: Some(s.layout.to_string()),
                vocal_front_share: Some(p.vocal_front_share),
                ambience_front: Some(p.ambience_front),
                surround_level: Some(p.surround_level),
                surround_delay_ms: Some(p.surround_delay_ms),
                crossover_hz: Some(p.crossover_hz),
                lfe_gain: Some(p.lfe_gain),
                mains_highpass: Some(p.mains_highpass),
                // Left out at their defaults, so mixes saved before them read the same.
                tempo: (s.tempo != 1.0).then_some(s.tempo),
                transpose: (s.transpose != 0.0).then_some(s.transpose),
            }
        }
    }
}
