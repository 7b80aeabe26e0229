//! Mixer and matrix together, over any block size.

use sonantica_audio::ChannelLayout;

use crate::mixer::CHUNK;
use crate::{
    check_block, ChannelMatrix, MatrixParams, MixError, MixSettings, Preset, Source, StemMixer,
    MAX_STEMS,
};

/// The whole Stem Engine: stems in (2 × N channels), speakers out.
#[derive(Debug, Clone)]
pub struct StemEngine {
    mixer: StemMixer,
    matrix: ChannelMatrix,
    mixed: Vec<Vec<f32>>,
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
        Ok(Self {
            mixer,
            matrix,
            mixed: vec![vec![0.0; CHUNK]; 2 * sources.len().min(MAX_STEMS)],
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
    /// solo and the matrix parameters. Its layout must be this engine's (the
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
        self.mixer.apply(settings)
    }

    /// Shorthand for `mixer().apply_preset(..)`.
    pub fn apply_preset(&mut self, preset: &Preset) {
        self.mixer.apply_preset(preset);
    }

    /// Output channels.
    pub fn output_channels(&self) -> usize {
        self.matrix.layout().channels()
    }

    /// Processes a block of any length without allocating.
    pub fn process<I: AsRef<[f32]>, O: AsMut<[f32]>>(
        &mut self,
        input: &[I],
        output: &mut [O],
    ) -> Result<(), MixError> {
        let n = check_block(input, self.mixed.len(), output, self.output_channels())?;
        let mut start = 0;
        while start < n {
            let len = CHUNK.min(n - start);
            self.mixer.run(input, start, &mut self.mixed, 0, len);
            self.matrix.run(&self.mixed, 0, output, start, len);
            start += len;
        }
        Ok(())
    }

    /// Clears all state and finishes every ramp (for a new render or a seek).
    pub fn reset(&mut self) {
        self.mixer.reset();
        self.matrix.reset();
    }

    /// The engine adds no delay.
    pub fn latency_frames(&self) -> usize {
        0
    }
}
