//! `apply_model` with the reference semantics (`apply.py`): overlapping segments
//! with triangular transition weights, context padding from real neighbouring
//! audio (`TensorChunk.padded`), the shift trick with a seeded RNG, and bags of
//! models with per-source weights.

use crate::model::HTDemucs;
use crate::DemucsError;

/// How to apply a model to a whole track.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApplyOptions {
    /// Random time shifts averaged (0: none, deterministic).
    pub shifts: usize,
    /// Overlap between segments, 0..1.
    pub overlap: f64,
    /// Sharpness of the transition between segments (≥ 1).
    pub transition_power: f64,
    /// Seed of the shift RNG.
    pub seed: u64,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            shifts: 1,
            overlap: 0.25,
            transition_power: 1.0,
            seed: 0,
        }
    }
}

/// Progress of a separation, in model forward passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Passes done.
    pub done: usize,
    /// Passes in all.
    pub total: usize,
}

/// A single network or a bag of networks with per-source weights.
#[derive(Debug)]
pub struct Separator {
    models: Vec<HTDemucs>,
    /// `weights[model][source]`.
    weights: Vec<Vec<f32>>,
    /// Segment override of the bag, in seconds.
    segment: Option<(u64, u64)>,
}

/// A view of `[channels][len]` audio: `length` samples from `offset` of a base
/// signal, which can provide real context around it (`TensorChunk`).
#[derive(Clone, Copy)]
struct Chunk<'a> {
    base: &'a [Vec<f32>],
    offset: usize,
    length: usize,
}

impl<'a> Chunk<'a> {
    fn whole(base: &'a [Vec<f32>]) -> Self {
        let length = base.first().map_or(0, Vec::len);
        Self {
            base,
            offset: 0,
            length,
        }
    }

    /// `TensorChunk(self, offset, length)`.
    fn sub(&self, offset: usize, length: usize) -> Self {
        Self {
            base: self.base,
            offset: self.offset + offset,
            length: length.min(self.length - offset),
        }
    }

    /// `TensorChunk.padded`: centred on the chunk, filled with the base signal's
    /// real samples where they exist and zeros past its ends.
    fn padded(&self, target: usize) -> Vec<Vec<f32>> {
        let total = self.base.first().map_or(0, Vec::len) as isize;
        let delta = target as isize - self.length as isize;
        let start = self.offset as isize - delta / 2;
        self.base
            .iter()
            .map(|c| {
                (0..target as isize)
                    .map(|i| {
                        let j = start + i;
                        if j >= 0 && j < total {
                            c[j as usize]
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

/// xorshift64*: the shift RNG (the reference uses Python's unseeded `random`; ours
/// is seeded so that a separation can be repeated exactly).
struct Rng(u64);

impl Rng {
    fn below_or_eq(&mut self, max: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (v % (max as u64 + 1)) as usize
    }
}

impl Separator {
    /// A separator for one network.
    pub fn single(model: HTDemucs) -> Self {
        let s = model.config().sources.len();
        Self {
            models: vec![model],
            weights: vec![vec![1.0; s]],
            segment: None,
        }
    }

    /// A bag: every model must have the same sources, rate and channels; `weights`
    /// is one row per model (all ones if `None`).
    pub fn bag(
        models: Vec<HTDemucs>,
        weights: Option<Vec<Vec<f32>>>,
        segment: Option<(u64, u64)>,
    ) -> Result<Self, DemucsError> {
        let first = models
            .first()
            .ok_or_else(|| DemucsError::Input("a bag needs at least one model".into()))?;
        let (sources, rate, ch) = (
            first.config().sources.clone(),
            first.config().samplerate,
            first.config().audio_channels,
        );
        for m in &models {
            let c = m.config();
            if c.sources != sources || c.samplerate != rate || c.audio_channels != ch {
                return Err(DemucsError::Input(
                    "the models of a bag must share sources, sample rate and channels".into(),
                ));
            }
        }
        let weights = match weights {
            None => vec![vec![1.0; sources.len()]; models.len()],
            Some(w) => {
                if w.len() != models.len() || w.iter().any(|r| r.len() != sources.len()) {
                    return Err(DemucsError::Input(format!(
                        "bag weights must be {} rows of {} values",
                        models.len(),
                        sources.len()
                    )));
                }
                w
            }
        };
        Ok(Self {
            models,
            weights,
            segment,
        })
    }

    /// Source names, in output order.
    pub fn sources(&self) -> &[String] {
        &self.models[0].config().sources
    }

    /// Sample rate the models run at.
    pub fn samplerate(&self) -> u32 {
        self.models[0].config().samplerate
    }

    /// Audio channels the models take.
    pub fn audio_channels(&self) -> usize {
        self.models[0].config().audio_channels
    }

    /// Networks in the bag.
    pub fn models(&self) -> &[HTDemucs] {
        &self.models
    }

    /// Forward passes a track of `length` samples takes.
    pub fn passes(&self, length: usize, opts: &ApplyOptions) -> usize {
        let extra = if opts.shifts > 0 {
            self.samplerate() as usize / 2
        } else {
            0
        };
        self.models
            .iter()
            .map(|m| {
                let seg = self.segment_length(m);
                let stride = ((1.0 - opts.overlap) * seg as f64) as usize;
                (length + extra).div_ceil(stride.max(1)) * opts.shifts.max(1)
            })
            .sum()
    }

    fn segment_length(&self, m: &HTDemucs) -> usize {
        let own = m.config().training_length();
        match self.segment {
            Some((n, d)) => own.min((n * u64::from(m.config().samplerate) / d) as usize),
            None => own,
        }
    }

    /// Separates `mix` (`[channels][len]`, at the model rate); returns
    /// `[sources][channels][len]`. `progress` is called after every forward pass;
    /// returning `false` cancels.
    pub fn apply(
        &self,
        mix: &[Vec<f32>],
        opts: &ApplyOptions,
        progress: &mut dyn FnMut(Progress) -> bool,
    ) -> Result<Vec<Vec<Vec<f32>>>, DemucsError> {
        if mix.len() != self.audio_channels() {
            return Err(DemucsError::Input(format!(
                "the model takes {} channels, got {}",
                self.audio_channels(),
                mix.len()
            )));
        }
        let length = mix[0].len();
        if length == 0 || mix.iter().any(|c| c.len() != length) {
            return Err(DemucsError::Input(
                "empty input or channels of different lengths".into(),
            ));
        }
        if !(0.0..1.0).contains(&opts.overlap) || opts.transition_power < 1.0 {
            return Err(DemucsError::Input(
                "overlap must be in [0, 1) and transition power ≥ 1".into(),
            ));
        }
        let sources = self.sources().len();
        let ch = mix.len();
        let mut state = Run {
            done: 0,
            total: self.passes(length, opts),
            progress,
        };
        let mut estimates = vec![vec![vec![0.0f32; length]; ch]; sources];
        let mut totals = vec![0.0f32; sources];
        let mut rng = Rng(opts.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        for (model, weights) in self.models.iter().zip(&self.weights) {
            let out = self.apply_shifted(model, mix, opts, &mut rng, &mut state)?;
            for (k, w) in weights.iter().enumerate() {
                for (e, o) in estimates[k].iter_mut().zip(&out[k]) {
                    e.iter_mut().zip(o).for_each(|(a, b)| *a += b * w);
                }
                totals[k] += w;
            }
        }
        if self.models.len() > 1 {
            for (k, total) in totals.iter().enumerate() {
                for c in &mut estimates[k] {
                    c.iter_mut().for_each(|v| *v /= total);
                }
            }
        }
        Ok(estimates)
    }

    fn apply_shifted(
        &self,
        model: &HTDemucs,
        mix: &[Vec<f32>],
        opts: &ApplyOptions,
        rng: &mut Rng,
        state: &mut Run<'_>,
    ) -> Result<Vec<Vec<Vec<f32>>>, DemucsError> {
        let length = mix[0].len();
        if opts.shifts == 0 {
            return self.apply_split(model, Chunk::whole(mix), opts, state);
        }
        let max_shift = (0.5 * f64::from(model.config().samplerate)) as usize;
        let padded_mix = Chunk::whole(mix).padded(length + 2 * max_shift);
        let padded = Chunk::whole(&padded_mix);
        let mut out: Option<Vec<Vec<Vec<f32>>>> = None;
        for _ in 0..opts.shifts {
            let offset = rng.below_or_eq(max_shift);
            let shifted = padded.sub(offset, length + max_shift - offset);
            let res = self.apply_split(model, shifted, opts, state)?;
            let skip = max_shift - offset;
            let acc =
                out.get_or_insert_with(|| vec![vec![vec![0.0; length]; mix.len()]; res.len()]);
            for (a, r) in acc.iter_mut().zip(&res) {
                for (ac, rc) in a.iter_mut().zip(r) {
                    ac.iter_mut()
                        .zip(&rc[skip..skip + length])
                        .for_each(|(x, y)| *x += y);
                }
            }
        }
        let mut out = out.unwrap_or_default();
        let n = opts.shifts as f32;
        out.iter_mut().flatten().flatten().for_each(|v| *v /= n);
        Ok(out)
    }

    fn apply_split(
        &self,
        model: &HTDemucs,
        chunk: Chunk<'_>,
        opts: &ApplyOptions,
        state: &mut Run<'_>,
    ) -> Result<Vec<Vec<Vec<f32>>>, DemucsError> {
        let length = chunk.length;
        let ch = chunk.base.len();
        let sources = model.config().sources.len();
        let seg = self.segment_length(model);
        let stride = ((1.0 - opts.overlap) * seg as f64) as usize;
        let half = seg / 2;
        let mut weight: Vec<f32> = (1..=half)
            .chain((1..=seg - half).rev())
            .map(|v| v as f32)
            .collect();
        let max = weight.iter().copied().fold(0.0f32, f32::max);
        weight
            .iter_mut()
            .for_each(|w| *w = (*w / max).powf(opts.transition_power as f32));
        let mut out = vec![vec![vec![0.0f32; length]; ch]; sources];
        let mut sum_weight = vec![0.0f32; length];
        let valid = model.config().training_length().max(seg);
        for offset in (0..length).step_by(stride.max(1)) {
            let sub = chunk.sub(offset, seg);
            let input = sub.padded(if model.config().use_train_segment {
                valid
            } else {
                seg
            });
            let res = model.forward(&input)?;
            state.step()?;
            // center_trim to the chunk's own length.
            let delta = input[0].len() - sub.length;
            let start = delta / 2;
            for (o, r) in out.iter_mut().zip(&res) {
                for (oc, rc) in o.iter_mut().zip(r) {
                    for i in 0..sub.length {
                        oc[offset + i] += weight[i] * rc[start + i];
                    }
                }
            }
            for i in 0..sub.length {
                sum_weight[offset + i] += weight[i];
            }
        }
        for o in out.iter_mut().flatten() {
            o.iter_mut().zip(&sum_weight).for_each(|(v, w)| *v /= w);
        }
        Ok(out)
    }
}

struct Run<'a> {
    done: usize,
    total: usize,
    progress: &'a mut dyn FnMut(Progress) -> bool,
}

impl Run<'_> {
    fn step(&mut self) -> Result<(), DemucsError> {
        self.done += 1;
        if (self.progress)(Progress {
            done: self.done,
            total: self.total.max(self.done),
        }) {
            Ok(())
        } else {
            Err(DemucsError::Cancelled)
        }
    }
}
