//! EBU R128 / ITU-R BS.1770 loudness and true peak, wrapping the `ebur128` crate
//! (which passes the EBU compliance signals; it is not rewritten here).

use ebur128::{Channel, EbuR128, Mode};
use sonantica_audio::{ChannelLayout, Speaker};

use crate::MeterError;

/// Most channels a loudness meter takes (the pieces of a block are gathered in a
/// fixed array so that feeding them does not allocate).
pub const MAX_CHANNELS: usize = 32;

/// How the integrated-loudness and LRA gating history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoudnessHistory {
    /// Every 100 ms block energy is kept: exact, memory grows with length
    /// (about 80 bytes per second). For offline analysis.
    Exact,
    /// A fixed histogram (0.1 LU bins): no allocation after construction, results
    /// within a few hundredths of an LU. For live metering.
    Bounded,
}

/// Loudness meter.
pub struct Loudness {
    meter: EbuR128,
    hop: usize,
    pos: usize,
    sub: usize,
    /// K-weighted energy of each of the last 300 10 ms steps (only when the sample
    /// rate is a multiple of 100 Hz, so that 10 ms is a whole number of frames).
    steps: Option<Vec<f64>>,
    step_index: usize,
    loudness: bool,
    /// The true-peak meter, when this meter measures true peak.
    peak: Option<crate::TruePeak>,
    max_momentary: f64,
    max_short_term: f64,
    /// The short-term loudness as of the last 10 ms step (or 100 ms block).
    last_short_term: Option<f64>,
}

impl std::fmt::Debug for Loudness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loudness").field("hop", &self.hop).finish()
    }
}

/// 10 ms steps in 3 s.
const STEPS: usize = 300;

fn energy_lufs(e: f64) -> Option<f64> {
    (e > 0.0).then(|| 10.0 * e.log10() - 0.691)
}

fn lufs(x: Result<f64, ebur128::Error>) -> Option<f64> {
    x.ok().filter(|v| v.is_finite())
}

impl Loudness {
    /// A loudness meter for `layout` at `sample_rate`. BS.1770 channel weights: 1.0
    /// for front channels, 1.41 for surrounds, LFE excluded; discrete channels all
    /// count at 1.0.
    pub fn new(
        sample_rate: u32,
        layout: ChannelLayout,
        history: LoudnessHistory,
    ) -> Result<Self, MeterError> {
        Self::with_parts(sample_rate, layout, history, true, true)
    }

    /// A meter that measures only loudness (`loudness`), only true peak
    /// (`true_peak`), or both. An offline analyser runs the two parts on different
    /// threads: they are independent, and each is about half the work.
    pub fn with_parts(
        sample_rate: u32,
        layout: ChannelLayout,
        history: LoudnessHistory,
        loudness: bool,
        true_peak: bool,
    ) -> Result<Self, MeterError> {
        let channels = layout.channels();
        if channels == 0 || channels > MAX_CHANNELS {
            return Err(MeterError::InvalidConfig(format!(
                "loudness meter takes 1 to {MAX_CHANNELS} channels, not {channels}"
            )));
        }
        let mut mode = Mode::empty();
        if loudness {
            mode |= Mode::M | Mode::S | Mode::I | Mode::LRA;
            if history == LoudnessHistory::Bounded {
                mode |= Mode::HISTOGRAM;
            }
        }
        if !loudness && !true_peak {
            return Err(MeterError::InvalidConfig(
                "a loudness meter that measures nothing".into(),
            ));
        }
        if mode.is_empty() {
            // True peak only (our own meter): ebur128 is never fed.
            mode = Mode::SAMPLE_PEAK;
        }
        let err = |e: ebur128::Error| MeterError::InvalidConfig(format!("loudness meter: {e:?}"));
        let mut meter = EbuR128::new(channels as u32, sample_rate, mode).map_err(err)?;
        let map: Vec<Channel> = if layout.speakers().is_empty() {
            vec![Channel::Center; channels]
        } else {
            layout
                .speakers()
                .iter()
                .map(|s| match s {
                    Speaker::FrontLeft => Channel::Left,
                    Speaker::FrontRight => Channel::Right,
                    Speaker::FrontCenter => Channel::Center,
                    Speaker::Lfe => Channel::Unused,
                    Speaker::BackLeft | Speaker::SideLeft => Channel::LeftSurround,
                    Speaker::BackRight | Speaker::SideRight => Channel::RightSurround,
                    _ => Channel::Center,
                })
                .collect()
        };
        meter.set_channel_map(&map).map_err(err)?;
        Ok(Self {
            meter,
            // ebur128 computes a gating block every (rate + 5) / 10 samples.
            hop: (sample_rate as usize + 5) / 10,
            pos: 0,
            sub: 0,
            steps: (loudness && sample_rate.is_multiple_of(100)).then(|| vec![0.0; STEPS]),
            loudness,
            peak: if true_peak {
                Some(crate::TruePeak::new(sample_rate, channels)?)
            } else {
                None
            },
            step_index: 0,
            max_momentary: f64::NEG_INFINITY,
            max_short_term: f64::NEG_INFINITY,
            last_short_term: None,
        })
    }

    /// Measures a block.
    ///
    /// The block is fed to ebur128 in pieces that end on a fixed 10 ms grid (ten
    /// steps per ebur128 100 ms gating block), where the maxima are updated. Tech
    /// 3341 cases 10-14 require maxima within 0.1 LU of a burst's level whatever its
    /// alignment, which a 400 ms window read only every 100 ms misses by up to
    /// 0.6 LU; and because the grid is counted from the first sample, the maxima do
    /// not depend on how the caller blocks the signal.
    ///
    /// Reading ebur128's momentary value costs a pass over 400 ms of samples (and
    /// short-term over 3 s), which at 100 reads per second was most of the analysis
    /// time. Instead the energy of each 10 ms step is read once (a 10 ms window of
    /// ebur128's own K-weighted data) and momentary/short-term are averaged from the
    /// last 40/300 steps. At sample rates that are not a multiple of 100 Hz the
    /// steps are not whole frames, and the values are read from ebur128 directly.
    pub fn process(&mut self, input: &[&[f32]]) {
        if let Some(peak) = self.peak.as_mut() {
            peak.process(input);
        }
        if !self.loudness {
            return;
        }
        let n = input.first().map_or(0, |c| c.len());
        let mut i = 0;
        let mut parts: [&[f32]; MAX_CHANNELS] = [&[]; MAX_CHANNELS];
        let k = input.len().min(MAX_CHANNELS);
        while i < n {
            let stop = (self.sub + 1) * self.hop / 10;
            let take = (stop - self.pos).min(n - i);
            for (p, x) in parts.iter_mut().zip(input) {
                *p = &x[i..i + take];
            }
            // The channel count was checked by the constructor and the caller, which
            // is the only error ebur128 reports here.
            let _ = self.meter.add_frames_planar_f32(&parts[..k]);
            i += take;
            self.pos += take;
            if self.pos == stop {
                self.sub += 1;
                self.step();
                if self.sub == 10 {
                    self.sub = 0;
                    self.pos = 0;
                }
            }
        }
    }

    fn step(&mut self) {
        let (momentary, short_term) = match self.steps.as_mut() {
            Some(steps) => {
                let e = lufs(self.meter.loudness_window(10))
                    .map_or(0.0, |l| 10f64.powf((l + 0.691) / 10.0));
                steps[self.step_index] = e;
                self.step_index = (self.step_index + 1) % STEPS;
                let last = |count: usize| {
                    (1..=count)
                        .map(|back| steps[(self.step_index + STEPS - back) % STEPS])
                        .sum::<f64>()
                        / count as f64
                };
                (energy_lufs(last(40)), energy_lufs(last(STEPS)))
            }
            None => (
                self.momentary(),
                if self.sub == 10 {
                    self.short_term()
                } else {
                    None
                },
            ),
        };
        if let Some(m) = momentary {
            self.max_momentary = self.max_momentary.max(m);
        }
        if let Some(s) = short_term {
            self.max_short_term = self.max_short_term.max(s);
        }
        if short_term.is_some() || self.steps.is_some() {
            self.last_short_term = short_term;
        }
    }

    /// The short-term loudness (LUFS) as the meter last computed it for its
    /// maximum, every 10 ms (every 100 ms at rates that are not a multiple of
    /// 100 Hz): free to ask for after every block, unlike [`Self::short_term`],
    /// which measures the whole 3 s window again. `None` until measured and
    /// in silence.
    pub fn short_term_now(&self) -> Option<f64> {
        self.last_short_term
    }

    /// Momentary loudness (last 400 ms), LUFS.
    pub fn momentary(&self) -> Option<f64> {
        lufs(self.meter.loudness_momentary())
    }

    /// Short-term loudness (last 3 s), LUFS.
    pub fn short_term(&self) -> Option<f64> {
        lufs(self.meter.loudness_shortterm())
    }

    /// Integrated loudness, LUFS.
    pub fn integrated(&self) -> Option<f64> {
        lufs(self.meter.loudness_global())
    }

    /// Loudness range, LU.
    pub fn range(&self) -> Option<f64> {
        lufs(self.meter.loudness_range())
    }

    /// Highest momentary loudness on the 10 ms grid, LUFS.
    pub fn max_momentary(&self) -> Option<f64> {
        self.max_momentary.is_finite().then_some(self.max_momentary)
    }

    /// Highest short-term loudness on the 10 ms grid, LUFS.
    pub fn max_short_term(&self) -> Option<f64> {
        self.max_short_term
            .is_finite()
            .then_some(self.max_short_term)
    }

    /// Highest true peak over all channels (linear); `None` unless this meter
    /// measures true peak, and in silence.
    pub fn true_peak(&self) -> Option<f64> {
        let best = f64::from(self.peak.as_ref()?.peak());
        (best > 0.0).then_some(best)
    }

    /// Writes this meter's results into the loudness fields of a report.
    /// Only the parts this meter measures are written.
    pub fn fill_report(&self, report: &mut crate::Report) {
        if self.loudness {
            report.integrated_lufs = self.integrated();
            report.loudness_range_lu = self.range();
            report.max_momentary_lufs = self.max_momentary();
            report.max_short_term_lufs = self.max_short_term();
        }
        if self.peak.is_some() {
            report.true_peak_dbtp = self.true_peak().and_then(crate::amplitude_db);
        }
    }

    /// Integrated loudness over several programmes measured separately, gated as
    /// one (an album's loudness).
    pub fn integrated_of<'a>(meters: impl IntoIterator<Item = &'a Loudness>) -> Option<f64> {
        let inner: Vec<&EbuR128> = meters.into_iter().map(|m| &m.meter).collect();
        lufs(EbuR128::loudness_global_multiple(inner.into_iter()))
    }

    /// Loudness range over several programmes measured separately, as one.
    pub fn range_of<'a>(meters: impl IntoIterator<Item = &'a Loudness>) -> Option<f64> {
        let inner: Vec<&EbuR128> = meters.into_iter().map(|m| &m.meter).collect();
        lufs(EbuR128::loudness_range_multiple(inner))
    }

    /// Forgets everything.
    pub fn reset(&mut self) {
        self.meter.reset();
        if let Some(peak) = self.peak.as_mut() {
            peak.reset();
        }
        self.pos = 0;
        self.sub = 0;
        self.step_index = 0;
        if let Some(steps) = self.steps.as_mut() {
            steps.iter_mut().for_each(|e| *e = 0.0);
        }
        self.max_momentary = f64::NEG_INFINITY;
        self.max_short_term = f64::NEG_INFINITY;
        self.last_short_term = None;
    }
}
