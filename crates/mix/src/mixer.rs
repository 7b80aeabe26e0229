//! Per-stem gain, mute and solo.

use crate::{
    check_block, db_to_gain, MixError, MixSettings, Preset, Ramp, Source, MAX_STEMS, RAMP_S,
};

/// Samples processed per inner pass (the ramp scratch size).
pub(crate) const CHUNK: usize = 256;

/// Mixes N stereo stems: channels `2k, 2k+1` of the input are stem `k`; the output
/// has the same channels, each stem scaled by its gain. If any stem is soloed, only
/// soloed stems sound; a muted stem is silent even when soloed.
#[derive(Debug, Clone)]
pub struct StemMixer {
    sources: Vec<Source>,
    gain_db: Vec<f32>,
    mute: Vec<bool>,
    solo: Vec<bool>,
    ramps: Vec<Ramp>,
    scratch: Vec<f32>,
}

impl StemMixer {
    /// A mixer for these sources (each at most once, 1 to 6), all at 0 dB.
    pub fn new(sources: &[Source], sample_rate: u32) -> Result<Self, MixError> {
        if sources.is_empty() {
            return Err(MixError::NoStems);
        }
        if sources.len() > MAX_STEMS {
            return Err(MixError::TooManyStems(sources.len()));
        }
        for (i, s) in sources.iter().enumerate() {
            if sources[..i].contains(s) {
                return Err(MixError::DuplicateSource(*s));
            }
        }
        if sample_rate == 0 {
            return Err(MixError::InvalidParameter("sample rate 0".into()));
        }
        let len = (RAMP_S * f64::from(sample_rate)).round() as u32;
        let n = sources.len();
        Ok(Self {
            sources: sources.to_vec(),
            gain_db: vec![0.0; n],
            mute: vec![false; n],
            solo: vec![false; n],
            ramps: vec![Ramp::new(1.0, len); n],
            scratch: vec![0.0; CHUNK],
        })
    }

    /// The sources, in channel order.
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    fn index(&self, source: Source) -> Result<usize, MixError> {
        self.sources
            .iter()
            .position(|s| *s == source)
            .ok_or(MixError::UnknownSource(source))
    }

    /// Sets a stem's gain in dB (`f32::NEG_INFINITY` for silence).
    pub fn set_gain_db(&mut self, source: Source, db: f32) -> Result<(), MixError> {
        if db.is_nan() || db > 24.0 {
            return Err(MixError::InvalidParameter(format!(
                "gain {db} dB: at most +24 dB"
            )));
        }
        let i = self.index(source)?;
        self.gain_db[i] = db;
        self.update_targets();
        Ok(())
    }

    /// A stem's gain in dB.
    pub fn gain_db(&self, source: Source) -> Result<f32, MixError> {
        Ok(self.gain_db[self.index(source)?])
    }

    /// Mutes or unmutes a stem.
    pub fn set_mute(&mut self, source: Source, mute: bool) -> Result<(), MixError> {
        let i = self.index(source)?;
        self.mute[i] = mute;
        self.update_targets();
        Ok(())
    }

    /// Solos or unsolos a stem.
    pub fn set_solo(&mut self, source: Source, solo: bool) -> Result<(), MixError> {
        let i = self.index(source)?;
        self.solo[i] = solo;
        self.update_targets();
        Ok(())
    }

    /// Applies a preset: its gains (0 dB for sources it does not list), no mutes,
    /// no solos. Sources the preset names that are not in this mix are ignored.
    pub fn apply_preset(&mut self, preset: &Preset) {
        for (i, s) in self.sources.iter().enumerate() {
            self.gain_db[i] = preset.gain_db(*s);
        }
        self.mute.iter_mut().for_each(|m| *m = false);
        self.solo.iter_mut().for_each(|m| *m = false);
        self.update_targets();
    }

    /// Takes the gains, mutes and solos of `settings` (checked first: on an error
    /// nothing changes). Changes ramp like any other.
    pub fn apply(&mut self, settings: &MixSettings) -> Result<(), MixError> {
        settings.check(&self.sources)?;
        for (i, s) in self.sources.iter().enumerate() {
            self.gain_db[i] = settings.gain_db(*s);
            self.mute[i] = settings.mute.contains(s);
            self.solo[i] = settings.solo.contains(s);
        }
        self.update_targets();
        Ok(())
    }

    /// The linear gain each stem is heading for, after mute and solo.
    pub fn target_gain(&self, source: Source) -> Result<f32, MixError> {
        Ok(self.ramps[self.index(source)?].target())
    }

    fn update_targets(&mut self) {
        let any_solo = self.solo.iter().any(|s| *s);
        for i in 0..self.sources.len() {
            let audible = !self.mute[i] && (!any_solo || self.solo[i]);
            self.ramps[i].set(if audible {
                db_to_gain(self.gain_db[i])
            } else {
                0.0
            });
        }
    }

    /// Scales each stem of `input` into `output` (both `2 × stems` channels).
    pub fn process<I: AsRef<[f32]>, O: AsMut<[f32]>>(
        &mut self,
        input: &[I],
        output: &mut [O],
    ) -> Result<(), MixError> {
        let channels = 2 * self.sources.len();
        let n = check_block(input, channels, output, channels)?;
        let mut start = 0;
        while start < n {
            let len = CHUNK.min(n - start);
            self.run(input, start, output, start, len);
            start += len;
        }
        Ok(())
    }

    /// Processes `len ≤ CHUNK` frames from `input[..][from..]` into `output[..][to..]`.
    pub(crate) fn run<I: AsRef<[f32]>, O: AsMut<[f32]>>(
        &mut self,
        input: &[I],
        from: usize,
        output: &mut [O],
        to: usize,
        len: usize,
    ) {
        for (k, ramp) in self.ramps.iter_mut().enumerate() {
            let gains = &mut self.scratch[..len];
            let steady = ramp.fill(gains);
            for c in 2 * k..2 * k + 2 {
                let x = &input[c].as_ref()[from..from + len];
                let y = &mut output[c].as_mut()[to..to + len];
                match steady {
                    Some(g) => {
                        for (o, i) in y.iter_mut().zip(x) {
                            *o = i * g;
                        }
                    }
                    None => {
                        for ((o, i), g) in y.iter_mut().zip(x).zip(gains.iter()) {
                            *o = i * g;
                        }
                    }
                }
            }
        }
    }

    /// Jumps every gain to its target (no ramp): for a fresh render.
    pub fn reset(&mut self) {
        for r in &mut self.ramps {
            let t = r.target();
            r.jump(t);
        }
    }

    /// The mixer adds no delay.
    pub fn latency_frames(&self) -> usize {
        0
    }
}
