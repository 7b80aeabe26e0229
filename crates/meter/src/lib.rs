//! **The Inspector**: the meter bridge of a mastering engineer, as streaming meters
//! over planar `f32` blocks.
//!
//! [`Inspector`] runs every meter at once over caller-owned blocks:
//! - loudness (ITU-R BS.1770 / EBU R128 through the `ebur128` crate): momentary,
//!   short-term, integrated, loudness range and true peak;
//! - dynamics: sample peak, RMS, crest factor (live and whole-track), the official
//!   DR value per channel and overall, clipping (runs of ≥ 3 full-scale samples);
//! - stereo image: phase correlation (≈300 ms integration, plus whole-track mean and
//!   minimum), stereo width (side energy share) and balance;
//! - goniometer points for drawing (rotated M/S, decimated into a fixed ring);
//! - a spectrum analyser ([`Spectrum`]: log-spaced bands with peak hold).
//!
//! [`OverviewBuilder`] draws a whole track small for a seek bar (envelope,
//! clipped spots, short-term loudness); [`TempoKey`] estimates its tempo (with
//! the beat grid) and key.
//!
//! It does no I/O, allocates only in its constructor (with
//! [`LoudnessHistory::Bounded`]), and gives the same results whatever block sizes
//! the signal arrives in. It builds for `wasm32-unknown-unknown`, where the web
//! player runs the very same code.

mod dynamics;
mod goniometer;
mod loudness;
mod overview;
mod spectrum;
mod stereo;
mod tempo_key;
mod true_peak;

pub use dynamics::{ClipCounter, DrMeter};
pub use goniometer::Goniometer;
pub use loudness::{Loudness, LoudnessHistory, MAX_CHANNELS};
pub use overview::{Overview, OverviewBuilder, FINE_S};
pub use sonantica_audio::ChannelLayout;
pub use spectrum::{Spectrum, SPECTRUM_FLOOR_DB};
pub use stereo::StereoImage;
pub use tempo_key::{Key, Tempo, TempoKey, PITCH_CLASSES};
pub use true_peak::TruePeak;

/// Errors from constructing or feeding meters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MeterError {
    /// The meter was built for a different number of channels.
    #[error("expected {expected} channels, got {got}")]
    ChannelMismatch {
        /// Channels the meter was built for.
        expected: usize,
        /// Channels given.
        got: usize,
    },
    /// The channels of one block have different lengths.
    #[error("the channels of a block have different lengths")]
    LengthMismatch,
    /// A parameter is out of range.
    #[error("invalid meter configuration: {0}")]
    InvalidConfig(String),
}

/// Converts a linear amplitude to dB, `None` for zero.
pub fn amplitude_db(x: f64) -> Option<f64> {
    (x > 0.0).then(|| 20.0 * x.log10())
}

/// Settings for an [`Inspector`].
#[derive(Debug, Clone, PartialEq)]
pub struct InspectorConfig {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channel layout of the input (sets the BS.1770 channel weights; the first two
    /// channels feed the stereo-image meters).
    pub layout: ChannelLayout,
    /// Bit depth whose full scale counts as clipping (16 for CD audio; lossy and
    /// float sources are judged at 16 bits).
    pub clip_bits: u32,
    /// How the loudness meter keeps its gating history.
    pub history: LoudnessHistory,
    /// Goniometer points kept in the ring.
    pub goniometer_capacity: usize,
    /// Goniometer points produced per second of audio.
    pub goniometer_rate: u32,
    /// Run the loudness meter (LUFS, LRA, true peak) inside the Inspector. An
    /// offline analyser may turn it off and run a [`Loudness`] on another thread,
    /// then fill the report with [`Loudness::fill_report`].
    pub measure_loudness: bool,
}

impl InspectorConfig {
    /// Defaults for offline analysis: exact loudness history, 16-bit clip threshold.
    pub fn new(sample_rate: u32, layout: ChannelLayout) -> Self {
        Self {
            sample_rate,
            layout,
            clip_bits: 16,
            history: LoudnessHistory::Exact,
            goniometer_capacity: 2048,
            goniometer_rate: 6000,
            measure_loudness: true,
        }
    }
}

/// What the meters show right now (for live display). All levels in dB; `None`
/// where there is nothing to measure yet (silence, or too little audio).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Readings {
    /// Seconds of audio measured.
    pub time_s: f64,
    /// Momentary loudness (400 ms), LUFS.
    pub momentary_lufs: Option<f64>,
    /// Short-term loudness (3 s), LUFS.
    pub short_term_lufs: Option<f64>,
    /// Integrated loudness so far, LUFS.
    pub integrated_lufs: Option<f64>,
    /// Loudness range so far, LU.
    pub loudness_range_lu: Option<f64>,
    /// Highest true peak so far, dBTP.
    pub true_peak_dbtp: Option<f64>,
    /// Highest sample peak so far, dBFS.
    pub sample_peak_dbfs: Option<f64>,
    /// Crest factor of the last 300 ms window, dB.
    pub crest_db: Option<f64>,
    /// Phase correlation over the last ≈300 ms (-1..+1).
    pub correlation: Option<f64>,
    /// Stereo width over the last ≈300 ms: side energy share, 0 (mono) .. 1 (anti-phase).
    pub width: Option<f64>,
    /// Balance over the last ≈300 ms: -1 (all left) .. +1 (all right).
    pub balance: Option<f64>,
    /// Clip events so far.
    pub clip_events: u64,
}

/// Whole-signal results, as `sonantica analyze` prints them.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Report {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Number of channels.
    pub channels: usize,
    /// Frames measured.
    pub frames: u64,
    /// Duration in seconds.
    pub duration_s: f64,
    /// Integrated loudness, LUFS (`None` if everything is below the -70 LUFS gate).
    pub integrated_lufs: Option<f64>,
    /// Loudness range (EBU Tech 3342), LU.
    pub loudness_range_lu: Option<f64>,
    /// Highest momentary loudness, LUFS.
    pub max_momentary_lufs: Option<f64>,
    /// Highest short-term loudness, LUFS.
    pub max_short_term_lufs: Option<f64>,
    /// True peak (4× oversampled, 2× at ≥ 96 kHz), dBTP.
    pub true_peak_dbtp: Option<f64>,
    /// Sample peak, dBFS.
    pub sample_peak_dbfs: Option<f64>,
    /// RMS level over all channels, dBFS (a full-scale sine reads -3.01).
    pub rms_dbfs: Option<f64>,
    /// Crest factor: sample peak over RMS, dB (a sine reads 3.01).
    pub crest_factor_db: Option<f64>,
    /// Official DR value (mean over channels, rounded).
    pub dr: Option<i32>,
    /// Unrounded DR per channel, dB.
    pub dr_channels: Vec<f64>,
    /// Mean phase correlation over time (non-silent 10 ms steps of the 300 ms meter).
    pub correlation: Option<f64>,
    /// Lowest phase correlation the 300 ms meter showed.
    pub correlation_min: Option<f64>,
    /// Stereo width over the whole signal: side energy share, 0..1.
    pub width: Option<f64>,
    /// Balance over the whole signal, -1 (left) .. +1 (right).
    pub balance: Option<f64>,
    /// Samples that are part of a clip event.
    pub clipped_samples: u64,
    /// Runs of ≥ 3 consecutive full-scale samples.
    pub clip_events: u64,
    /// Estimated tempo in BPM ([`TempoKey`], whole-track analysis only).
    pub bpm: Option<f64>,
    /// Time of the first beat of the estimated beat grid, in seconds.
    pub beat_offset_s: Option<f64>,
    /// Estimated key, e.g. `"A minor"` ([`TempoKey`], whole-track analysis only).
    pub key: Option<String>,
}

/// All meters at once. See the crate documentation.
pub struct Inspector {
    config: InspectorConfig,
    channels: usize,
    frames: u64,
    loudness: Option<Loudness>,
    dr: DrMeter,
    clips: ClipCounter,
    stereo: StereoImage,
    goniometer: Goniometer,
    // Live crest window (global sample positions, so independent of block size).
    crest_len: u64,
    crest_pos: u64,
    crest_peak: f32,
    crest_sumsq: Vec<f64>,
    crest_db: Option<f64>,
}

impl std::fmt::Debug for Inspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inspector")
            .field("config", &self.config)
            .field("frames", &self.frames)
            .finish()
    }
}

impl Inspector {
    /// Builds every meter; this is the only place that allocates.
    pub fn new(config: InspectorConfig) -> Result<Self, MeterError> {
        let channels = config.layout.channels();
        if channels == 0 || channels > MAX_CHANNELS {
            return Err(MeterError::InvalidConfig(format!(
                "the Inspector takes 1 to {MAX_CHANNELS} channels, not {channels}"
            )));
        }
        if !(8_000..=768_000).contains(&config.sample_rate) {
            return Err(MeterError::InvalidConfig(format!(
                "sample rate {} Hz is outside 8 kHz..768 kHz",
                config.sample_rate
            )));
        }
        if !(8..=32).contains(&config.clip_bits) {
            return Err(MeterError::InvalidConfig(format!(
                "clip bit depth {}",
                config.clip_bits
            )));
        }
        let rate = config.sample_rate;
        Ok(Self {
            loudness: if config.measure_loudness {
                Some(Loudness::new(rate, config.layout, config.history)?)
            } else {
                None
            },
            dr: DrMeter::new(channels, rate)?,
            clips: ClipCounter::new(channels, config.clip_bits),
            stereo: StereoImage::new(rate),
            goniometer: Goniometer::new(config.goniometer_capacity, rate, config.goniometer_rate)?,
            crest_len: (u64::from(rate) * 3 / 10).max(1),
            crest_pos: 0,
            crest_peak: 0.0,
            crest_sumsq: vec![0.0; channels],
            crest_db: None,
            channels,
            frames: 0,
            config,
        })
    }

    /// The configuration the meters were built with.
    pub fn config(&self) -> &InspectorConfig {
        &self.config
    }

    /// Measures one block: one slice per channel, all the same length. Does not
    /// allocate (with [`LoudnessHistory::Bounded`]).
    pub fn process(&mut self, input: &[&[f32]]) -> Result<(), MeterError> {
        if input.len() != self.channels {
            return Err(MeterError::ChannelMismatch {
                expected: self.channels,
                got: input.len(),
            });
        }
        let n = input[0].len();
        if input.iter().any(|c| c.len() != n) {
            return Err(MeterError::LengthMismatch);
        }
        if n == 0 {
            return Ok(());
        }
        if let Some(l) = self.loudness.as_mut() {
            l.process(input);
        }
        self.dr.process(input);
        self.clips.process(input);
        let (l, r) = if self.channels >= 2 {
            (input[0], input[1])
        } else {
            (input[0], input[0])
        };
        self.stereo.process(l, r);
        self.goniometer.process(l, r);
        self.process_crest(input);
        self.frames += n as u64;
        Ok(())
    }

    fn process_crest(&mut self, input: &[&[f32]]) {
        let n = input[0].len();
        let mut i = 0;
        while i < n {
            let take = ((self.crest_len - self.crest_pos) as usize).min(n - i);
            for (x, acc) in input.iter().zip(self.crest_sumsq.iter_mut()) {
                let (mut pk, mut ss) = (self.crest_peak, *acc);
                for &s in &x[i..i + take] {
                    pk = pk.max(s.abs());
                    ss += f64::from(s) * f64::from(s);
                }
                self.crest_peak = pk;
                *acc = ss;
            }
            i += take;
            self.crest_pos += take as u64;
            if self.crest_pos == self.crest_len {
                let ms = self.crest_sumsq.iter().sum::<f64>()
                    / (self.crest_len as f64 * self.channels as f64);
                self.crest_db =
                    (ms > 0.0).then(|| 20.0 * (f64::from(self.crest_peak) / ms.sqrt()).log10());
                self.crest_pos = 0;
                self.crest_peak = 0.0;
                self.crest_sumsq.iter_mut().for_each(|x| *x = 0.0);
            }
        }
    }

    fn peak(&self) -> f32 {
        (0..self.channels)
            .map(|c| self.dr.peak(c))
            .fold(0.0f32, f32::max)
    }

    /// Current readings for a live display.
    pub fn readings(&self) -> Readings {
        let peak = self.peak();
        Readings {
            time_s: self.frames as f64 / f64::from(self.config.sample_rate),
            momentary_lufs: self.loudness.as_ref().and_then(Loudness::momentary),
            short_term_lufs: self.loudness.as_ref().and_then(Loudness::short_term),
            integrated_lufs: self.loudness.as_ref().and_then(Loudness::integrated),
            loudness_range_lu: self.loudness.as_ref().and_then(Loudness::range),
            true_peak_dbtp: self
                .loudness
                .as_ref()
                .and_then(Loudness::true_peak)
                .and_then(amplitude_db),
            sample_peak_dbfs: amplitude_db(f64::from(peak)),
            crest_db: self.crest_db,
            correlation: self.stereo.correlation(),
            width: self.stereo.width(),
            balance: self.stereo.balance(),
            clip_events: self.clips.events(),
        }
    }

    /// The goniometer's point ring.
    pub fn goniometer(&self) -> &Goniometer {
        &self.goniometer
    }

    /// Whole-signal results so far.
    pub fn report(&self) -> Report {
        let peak = self.peak();
        let total_ss: f64 = (0..self.channels).map(|c| self.dr.sum_of_squares(c)).sum();
        let ms = if self.frames > 0 {
            total_ss / (self.frames as f64 * self.channels as f64)
        } else {
            0.0
        };
        let rms = ms.sqrt();
        let dr_channels = self.dr.channel_values();
        let dr = if dr_channels.is_empty() {
            None
        } else {
            Some((dr_channels.iter().sum::<f64>() / dr_channels.len() as f64).round() as i32)
        };
        let mut report = Report {
            sample_rate: self.config.sample_rate,
            channels: self.channels,
            frames: self.frames,
            duration_s: self.frames as f64 / f64::from(self.config.sample_rate),
            integrated_lufs: None,
            loudness_range_lu: None,
            max_momentary_lufs: None,
            max_short_term_lufs: None,
            true_peak_dbtp: None,
            sample_peak_dbfs: amplitude_db(f64::from(peak)),
            rms_dbfs: amplitude_db(rms),
            crest_factor_db: (rms > 0.0).then(|| 20.0 * (f64::from(peak) / rms).log10()),
            dr,
            dr_channels,
            correlation: self.stereo.mean_correlation(),
            correlation_min: self.stereo.min_correlation(),
            width: self.stereo.total_width(),
            balance: self.stereo.total_balance(),
            clipped_samples: self.clips.clipped_samples(),
            clip_events: self.clips.events(),
            bpm: None,
            beat_offset_s: None,
            key: None,
        };
        if let Some(l) = &self.loudness {
            l.fill_report(&mut report);
        }
        report
    }

    /// The loudness meter (for album measurements with [`Loudness::integrated_of`]);
    /// `None` when built with `measure_loudness: false`.
    pub fn loudness(&self) -> Option<&Loudness> {
        self.loudness.as_ref()
    }

    /// Forgets everything measured; keeps the configuration and the allocations.
    pub fn reset(&mut self) {
        if let Some(l) = self.loudness.as_mut() {
            l.reset();
        }
        self.dr.reset();
        self.clips.reset();
        self.stereo.reset();
        self.goniometer.reset();
        self.crest_pos = 0;
        self.crest_peak = 0.0;
        self.crest_sumsq.iter_mut().for_each(|x| *x = 0.0);
        self.crest_db = None;
        self.frames = 0;
    }

    /// Meters add no delay: readings refer to the last sample processed.
    pub fn latency_frames(&self) -> usize {
        0
    }
}
