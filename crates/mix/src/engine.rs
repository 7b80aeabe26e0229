//! Mixer, matrix and stretcher together, over any block size.

use sonantica_audio::ChannelLayout;

use crate::mixer::CHUNK;
use crate::stretch::PIECE;
use crate::{
    ChannelMatrix, MatrixParams, MixError, MixSettings, Preset, Source, StemMixer, Stretcher,
    MAX_STEMS,
};

/// The whole Stem Engine: stems in (2 × N channels), speakers out.
///
/// Tempo and transposition come last, on the speaker channels, so their cost
/// does not grow with the number of stems. Away from tempo 1 an output block
/// reads a different number of input frames:
/// [`input_frames_for`](Self::input_frames_for) says how many.
#[derive(Debug, Clone)]
pub struct StemEngine {
    mixer: StemMixer,
    matrix: ChannelMatrix,
    stretch: Stretcher,
    mixed: Vec<Vec<f32>>,
    staged: Vec<Vec<f32>>,
}

impl StemEngine {
    /// An engine for these stems, output layout and rate.
    pub fn new(
        sources: &[Source],
        layout: ChannelLayout,
        sample_rate: u32,
        params: MatrixParams,
    ) -> Result<Self, MixError> {
        let mixer = StemMixer::new(sources, sample_rate)?;
        let matrix = ChannelMatrix::new(sources, layout, sample_rate, params)?;
        let stretch = Stretcher::new(layout.channels(), sample_rate)?;
        Ok(Self {
            mixer,
            matrix,
            stretch,
            mixed: vec![vec![0.0; CHUNK]; 2 * sources.len().min(MAX_STEMS)],
            staged: vec![vec![0.0; CHUNK]; layout.channels()],
        })
    }

    /// The mixer (gains, mute, solo, presets).
    pub fn mixer(&mut self) -> &mut StemMixer {
        &mut self.mixer
    }

    /// The matrix (layout parameters).
    pub fn matrix(&mut self) -> &mut ChannelMatrix {
        &mut self.matrix
    }

    /// Applies a whole [`MixSettings`]: gains (preset, then per-stem gains), mute,
    /// solo, the matrix parameters, tempo and transposition. Its layout must be this engine's (the
    /// output channels are fixed when the engine is built). Checked first: on an
    /// error nothing changes. Changes ramp; call [`reset`](Self::reset) after it
    /// for a render that starts at these settings.
    pub fn apply(&mut self, settings: &MixSettings) -> Result<(), MixError> {
        settings.check(self.mixer.sources())?;
        let layout = self.matrix.layout();
        if settings.layout != layout {
            return Err(MixError::InvalidParameter(format!(
                "the settings are for {}, this engine renders {layout}",
                settings.layout
            )));
        }
        self.matrix.set_params(settings.params)?;
        self.stretch.set(settings.tempo, settings.transpose)?;
        self.mixer.apply(settings)
    }

    /// The stretcher (tempo and transposition).
    pub fn stretcher(&mut self) -> &mut Stretcher {
        &mut self.stretch
    }

    /// Shorthand for `mixer().apply_preset(..)`.
    pub fn apply_preset(&mut self, preset: &Preset) {
        self.mixer.apply_preset(preset);
    }

    /// Output channels.
    pub fn output_channels(&self) -> usize {
        self.matrix.layout().channels()
    }

    /// How many input frames the next [`process`](Self::process) of `frames`
    /// output frames reads: `frames` at tempo 1 without transposition.
    pub fn input_frames_for(&self, frames: usize) -> usize {
        self.stretch.input_needed(frames)
    }

    /// The input position (frames since the last [`reset`](Self::reset),
    /// fractional while stretching) that the next output frame plays.
    pub fn position(&self) -> f64 {
        self.stretch.position()
    }

    /// Processes a block of any length without allocating: `output`'s length in
    /// frames, reading exactly [`input_frames_for`](Self::input_frames_for) of
    /// it from `input`.
    pub fn process<I: AsRef<[f32]>, O: AsMut<[f32]>>(
        &mut self,
        input: &[I],
        output: &mut [O],
    ) -> Result<(), MixError> {
        let (n_in, n_out) = self.check(input, output)?;
        let need = self.input_frames_for(n_out);
        if n_in != need {
            return Err(MixError::InvalidParameter(format!(
                "{n_out} output frames read {need} input frames at tempo {} and pitch ratio {:.4}, \
                 not {n_in}",
                self.stretch.tempo(),
                self.stretch.pitch_ratio()
            )));
        }
        let (mut used, mut made) = (0, 0);
        while made < n_out {
            let piece = PIECE.min(n_out - made);
            let mut want = self.stretch.input_needed(piece);
            while want > 0 {
                let len = CHUNK.min(want);
                if used + len > n_in {
                    // Cannot happen while input_frames_for agrees with the
                    // pieces; an error, not a slice past the end, if it ever does.
                    return Err(MixError::InvalidParameter(format!(
                        "the stretcher asked for more than the {n_in} input frames it announced"
                    )));
                }
                self.mixer.run(input, used, &mut self.mixed, 0, len);
                self.matrix.run(&self.mixed, 0, &mut self.staged, 0, len);
                self.stretch.push_range(&self.staged, 0, len)?;
                used += len;
                want -= len;
            }
            self.stretch.pull_range(output, made, piece)?;
            made += piece;
        }
        debug_assert_eq!(used, n_in, "input_frames_for agrees with the pieces");
        Ok(())
    }

    /// Checks channel counts and that each side's channels have one length.
    fn check<I: AsRef<[f32]>, O: AsMut<[f32]>>(
        &self,
        input: &[I],
        output: &mut [O],
    ) -> Result<(usize, usize), MixError> {
        if input.len() != self.mixed.len() {
            return Err(MixError::ChannelMismatch {
                expected: self.mixed.len(),
                got: input.len(),
            });
        }
        if output.len() != self.output_channels() {
            return Err(MixError::ChannelMismatch {
                expected: self.output_channels(),
                got: output.len(),
            });
        }
        let n_in = input.first().map_or(0, |c| c.as_ref().len());
        let n_out = output.first_mut().map_or(0, |c| c.as_mut().len());
        if input.iter().any(|c| c.as_ref().len() != n_in)
            || output.iter_mut().any(|c| c.as_mut().len() != n_out)
        {
            return Err(MixError::LengthMismatch);
        }
        Ok((n_in, n_out))
    }

    /// Clears all state and finishes every ramp (for a new render or a seek).
    pub fn reset(&mut self) {
        self.mixer.reset();
        self.matrix.reset();
        self.stretch.reset();
    }

    /// The engine adds no delay (the stretcher reads ahead instead).
    pub fn latency_frames(&self) -> usize {
        0
    }
}
