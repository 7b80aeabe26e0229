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
    /// The networks on a GPU, when one is in use.
    gpu: Option<GpuNets>,
}

/// The networks uploaded to a GPU, and why it stopped being used, if it did.
struct GpuNets {
    gpu: crate::gpu::Gpu,
    nets: Vec<crate::gpu::model::GpuHTDemucs>,
    failed: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for GpuNets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuNets").field("gpu", &self.gpu).finish()
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
            gpu: None,
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
            gpu: None,
        })
    }

    /// Runs the networks on `gpu` from now on: their weights are uploaded
    /// once, here. A GPU that fails mid-run (out of memory, lost, a driver
    /// error) hands the rest of the work back to the CPU; [`Self::gpu_failure`]
    /// says why.
    pub fn use_gpu(&mut self, gpu: &crate::gpu::Gpu) -> Result<(), DemucsError> {
        let nets = self
            .models
            .iter()
            .map(|m| crate::gpu::model::GpuHTDemucs::new(gpu, m))
            .collect::<Result<_, _>>()?;
        gpu.finish()?;
        self.gpu = Some(GpuNets {
            gpu: gpu.clone(),
            nets,
            failed: std::sync::Mutex::new(None),
        });
        Ok(())
    }

    /// The GPU the networks run on, if any.
    pub fn gpu(&self) -> Option<&crate::gpu::Gpu> {
        self.gpu.as_ref().map(|g| &g.gpu)
    }

    /// Why the GPU was given up for the CPU during a run, if it was.
    pub fn gpu_failure(&self) -> Option<String> {
        self.gpu
            .as_ref()
            .and_then(|g| g.failed.lock().ok().and_then(|f| f.clone()))
    }

    /// Where this separator computes, for people and job records: `CPU`,
    /// `GPU: <adapter>`, or `CPU (the GPU failed: <why>)` once a run gave the
    /// GPU up.
    pub fn device(&self) -> String {
        match (self.gpu(), self.gpu_failure()) {
            (None, _) => "CPU".to_owned(),
            (Some(_), Some(why)) => format!("CPU (the GPU failed: {why})"),
            (Some(g), None) => format!("GPU: {}", g.adapter()),
        }
    }

    /// One segment through network `m`: on the GPU while it works, else on
    /// the CPU.
    fn forward(&self, m: usize, input: &[Vec<f32>]) -> Result<Vec<Vec<Vec<f32>>>, DemucsError> {
        if let Some(g) = &self.gpu {
            if self.gpu_failure().is_none() {
                match g.nets[m].forward(&g.gpu, &self.models[m], input) {
                    Err(DemucsError::Gpu(e)) => {
                        if let Ok(mut f) = g.failed.lock() {
                            *f = Some(e);
                        }
                    }
                    other => return other,
                }
            }
        }
        self.models[m].forward(input)
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

    /// Forward passes a track of `length` samples takes, at most (with shifts the
    /// exact count depends on the random offsets; [`Progress::total`] is exact).
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

    /// Separates `mix` (`[channels][len]`, at the model rate) in memory; returns
    /// `[sources][channels][len]`. See [`Separator::apply_stream`].
    pub fn apply(
        &self,
        mix: &[Vec<f32>],
        opts: &ApplyOptions,
        progress: &mut dyn FnMut(Progress) -> bool,
    ) -> Result<Vec<Vec<Vec<f32>>>, DemucsError> {
        let mut source = MemorySource(mix);
        let sources = self.sources().len();
        let mut out =
            vec![vec![Vec::with_capacity(mix.first().map_or(0, Vec::len)); mix.len()]; sources];
        self.apply_stream(&mut source, opts, progress, &mut |block| {
            for (o, b) in out.iter_mut().zip(block) {
                for (oc, bc) in o.iter_mut().zip(b) {
                    oc.extend_from_slice(bc);
                }
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Separates a mix read through `source` with bounded memory: output is handed
    /// to `emit` in order, as `[sources][channels][n]` blocks, as soon as every
    /// segment (of every model and shift) that overlaps it has been computed. Only
    /// about two segments of audio are held, whatever the track length.
    ///
    /// The result is the reference `apply_model`'s: for each model and each shift,
    /// segments at `stride = int((1 - overlap) · segment)` weighted by a triangle
    /// raised to `transition_power` and normalised by the summed weights, shifts
    /// averaged, models combined with their per-source weights.
    pub fn apply_stream(
        &self,
        source: &mut dyn MixSource,
        opts: &ApplyOptions,
        progress: &mut dyn FnMut(Progress) -> bool,
        emit: &mut Emit<'_>,
    ) -> Result<(), DemucsError> {
        let length = self.check_input(source, opts)?;
        self.apply_range(source, opts, 0..length, progress, emit)
    }

    /// [`Separator::apply_stream`] for the frames `range` of the mix only: runs
    /// just the segments that overlap it, in the same order, and emits exactly
    /// the frames of `range`. Every emitted frame equals, bit for bit, the same
    /// frame of a run over the whole mix (the same segments are weighted and
    /// added in the same order), so a track can be separated from the middle
    /// first and the rest later, and the parts joined.
    pub fn apply_range(
        &self,
        source: &mut dyn MixSource,
        opts: &ApplyOptions,
        range: std::ops::Range<usize>,
        progress: &mut dyn FnMut(Progress) -> bool,
        emit: &mut Emit<'_>,
    ) -> Result<(), DemucsError> {
        let length = self.check_input(source, opts)?;
        if range.start >= range.end || range.end > length {
            return Err(DemucsError::Input(format!(
                "the range {range:?} is not a part of the mix's {length} frames"
            )));
        }
        let mut seqs = self.plan(length, opts);
        for s in &mut seqs {
            s.restrict_to(&range);
        }
        let total: usize = seqs.iter().map(|s| s.stop - s.next).sum();
        let mut done = 0;
        // Output accumulator for positions [flushed, flushed + acc len).
        let mut acc: Vec<Vec<Vec<f32>>> =
            vec![vec![Vec::new(); self.audio_channels()]; self.sources().len()];
        let mut flushed = range.start;
        let mut input = Vec::new();
        // One segment at a time, every thread inside it (its two branches side
        // by side, and each product split): the first stems are final after one
        // segment's time, not one thread's, and only one segment's activations
        // are held. Two segments side by side, one thread each, were 5–9 %
        // faster overall but peaked at 600 MB instead of 370 MB (BENCHMARKS.md).
        while let Some(job) = next_segment(&mut seqs, source, &mut input)? {
            let res = self.forward(seqs[job.seq].model, &job.input)?;
            seqs[job.seq].add_to(&mut acc, &res, &job, &range, flushed);
            input = job.input;
            done += 1;
            if !progress(Progress {
                done,
                total: total.max(done),
            }) {
                return Err(DemucsError::Cancelled);
            }
            // Everything before the earliest unprocessed segment is final.
            let frontier = seqs
                .iter()
                .filter(|s| s.next < s.stop)
                .map(|s| (s.origin + (s.next * s.stride) as isize).max(0) as usize)
                .min()
                .unwrap_or(range.end)
                .clamp(range.start, range.end);
            if frontier > flushed {
                emit(&take_front(&mut acc, frontier - flushed))?;
                flushed = frontier;
            }
        }
        Ok(())
    }

    /// Forward passes [`Separator::apply_range`] runs for `range` of a mix of
    /// `length` frames (exact: the shift offsets are seeded).
    pub fn passes_in(
        &self,
        length: usize,
        opts: &ApplyOptions,
        range: std::ops::Range<usize>,
    ) -> usize {
        self.plan(length, opts)
            .iter_mut()
            .map(|s| {
                s.restrict_to(&range);
                s.stop - s.next
            })
            .sum()
    }

    /// Checks the mix and the options; the mix's length.
    fn check_input(
        &self,
        source: &dyn MixSource,
        opts: &ApplyOptions,
    ) -> Result<usize, DemucsError> {
        let ch = self.audio_channels();
        if source.channels() != ch {
            return Err(DemucsError::Input(format!(
                "the model takes {ch} channels, got {}",
                source.channels()
            )));
        }
        if source.is_empty() {
            return Err(DemucsError::Input("empty input".into()));
        }
        if !(0.0..1.0).contains(&opts.overlap) || opts.transition_power < 1.0 {
            return Err(DemucsError::Input(
                "overlap must be in [0, 1) and transition power ≥ 1".into(),
            ));
        }
        Ok(source.len())
    }

    /// The sequences of segments to run: one per model and shift, each with its
    /// transition weights and per-source scale (bag weight over shifts).
    fn plan(&self, length: usize, opts: &ApplyOptions) -> Vec<Sequence> {
        let sources = self.sources().len();
        // Per-source normalisation of the bag weights.
        let totals: Vec<f32> = (0..sources)
            .map(|k| self.weights.iter().map(|w| w[k]).sum())
            .collect();
        let mut rng = Rng(opts.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut seqs = Vec::new();
        for (m, model) in self.models.iter().enumerate() {
            let seg = self.segment_length(model);
            let stride = (((1.0 - opts.overlap) * seg as f64) as usize).max(1);
            let half = seg / 2;
            let mut weight: Vec<f32> = (1..=half)
                .chain((1..=seg - half).rev())
                .map(|v| v as f32)
                .collect();
            let max = weight.iter().copied().fold(0.0f32, f32::max);
            weight
                .iter_mut()
                .for_each(|w| *w = (*w / max).powf(opts.transition_power as f32));
            let valid = if model.config().use_train_segment {
                model.config().training_length().max(seg)
            } else {
                seg
            };
            let scale: Vec<f32> = (0..sources)
                .map(|k| {
                    let bag = if self.models.len() > 1 {
                        self.weights[m][k] / totals[k]
                    } else {
                        1.0
                    };
                    bag / opts.shifts.max(1) as f32
                })
                .collect();
            let shifts: Vec<(isize, usize)> = if opts.shifts == 0 {
                vec![(0, length)]
            } else {
                // The mix is zero-padded by max_shift on each side and read from a
                // random offset in [0, max_shift]: in mix coordinates the sequence
                // starts at offset - max_shift, and its first max_shift - offset
                // outputs are dropped.
                let max_shift = (0.5 * f64::from(model.config().samplerate)) as usize;
                (0..opts.shifts)
                    .map(|_| {
                        let offset = rng.below_or_eq(max_shift);
                        (
                            offset as isize - max_shift as isize,
                            length + max_shift - offset,
                        )
                    })
                    .collect()
            };
            for (origin, n) in shifts {
                seqs.push(Sequence {
                    model: m,
                    origin,
                    n,
                    seg,
                    stride,
                    valid,
                    weight: weight.clone(),
                    scale: scale.clone(),
                    next: 0,
                    stop: n.div_ceil(stride),
                });
            }
        }
        seqs
    }
}

/// One segment to run: which sequence, where, and its input.
struct Segment {
    /// Index of its sequence.
    seq: usize,
    /// Start in the sequence's coordinates.
    start: usize,
    /// Frames of output it contributes.
    len: usize,
    /// Frames of padding before the contribution in the network's output.
    trim: usize,
    /// The network's input, `[channels][valid]`.
    input: Vec<Vec<f32>>,
}

/// The next segment in the order a sequential run takes them: always the
/// sequence whose next segment starts earliest. `spare` is an input buffer to
/// reuse.
fn next_segment(
    seqs: &mut [Sequence],
    source: &mut dyn MixSource,
    spare: &mut Vec<Vec<f32>>,
) -> Result<Option<Segment>, DemucsError> {
    {
        let pick = seqs
            .iter()
            .enumerate()
            .filter(|(_, s)| s.next < s.stop)
            .min_by_key(|(i, s)| (s.origin + (s.next * s.stride) as isize, *i))
            .map(|(i, _)| i);
        let Some(i) = pick else { return Ok(None) };
        let s = &mut seqs[i];
        let start = s.next * s.stride;
        let len = s.seg.min(s.n - start);
        // TensorChunk.padded: centred on the segment, real audio around it.
        let delta = s.valid - len;
        let read_from = s.origin + start as isize - (delta / 2) as isize;
        source.read(read_from, s.valid, spare)?;
        s.next += 1;
        Ok(Some(Segment {
            seq: i,
            start,
            len,
            trim: delta / 2,
            input: std::mem::take(spare),
        }))
    }
}

/// Removes the first `n` frames of every source and channel of the
/// accumulator (zeros where nothing was added), as an output block.
fn take_front(acc: &mut [Vec<Vec<f32>>], n: usize) -> Vec<Vec<Vec<f32>>> {
    acc.iter_mut()
        .map(|a| {
            a.iter_mut()
                .map(|c| {
                    if c.len() < n {
                        c.resize(n, 0.0);
                    }
                    c.drain(..n).collect()
                })
                .collect()
        })
        .collect()
}

/// Receives finished output blocks, `[sources][channels][n]`.
pub type Emit<'a> = dyn FnMut(&[Vec<Vec<f32>>]) -> Result<(), DemucsError> + 'a;

/// Where [`Separator::apply_stream`] reads the mix from.
pub trait MixSource {
    /// Frames in the mix.
    fn len(&self) -> usize;
    /// True when the mix is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Channels.
    fn channels(&self) -> usize;
    /// Fills `out` with `len` frames from `start` (which may be negative or run
    /// past the end: those frames are zeros), one `Vec` per channel.
    fn read(
        &mut self,
        start: isize,
        len: usize,
        out: &mut Vec<Vec<f32>>,
    ) -> Result<(), DemucsError>;
}

/// A mix held in memory.
pub struct MemorySource<'a>(pub &'a [Vec<f32>]);

impl MixSource for MemorySource<'_> {
    fn len(&self) -> usize {
        self.0.first().map_or(0, Vec::len)
    }

    fn channels(&self) -> usize {
        self.0.len()
    }

    fn read(
        &mut self,
        start: isize,
        len: usize,
        out: &mut Vec<Vec<f32>>,
    ) -> Result<(), DemucsError> {
        let total = self.len() as isize;
        out.resize_with(self.0.len(), Vec::new);
        for (o, c) in out.iter_mut().zip(self.0) {
            o.clear();
            o.extend((0..len as isize).map(|i| {
                let j = start + i;
                if j >= 0 && j < total {
                    c[j as usize]
                } else {
                    0.0
                }
            }));
        }
        Ok(())
    }
}

/// One pass of one model over the mix (one shift): segments at `k · stride` of a
/// sequence that starts at `origin` (mix coordinates) and is `n` frames long.
struct Sequence {
    model: usize,
    origin: isize,
    n: usize,
    seg: usize,
    stride: usize,
    valid: usize,
    weight: Vec<f32>,
    scale: Vec<f32>,
    /// The next segment to run, and the one after the last.
    next: usize,
    stop: usize,
}

impl Sequence {
    /// Keeps only the segments whose output overlaps `range` (mix frames).
    fn restrict_to(&mut self, range: &std::ops::Range<usize>) {
        let at = |k: usize| self.origin + (k * self.stride) as isize;
        let end = |k: usize| at(k) + self.seg.min(self.n - k * self.stride) as isize;
        while self.next < self.stop && end(self.next) <= range.start as isize {
            self.next += 1;
        }
        let mut stop = self.next;
        while stop < self.stop && at(stop) < range.end as isize {
            stop += 1;
        }
        self.stop = stop;
    }

    /// Adds a segment's network output `res` (`[sources][channels][..]`) into
    /// the accumulator `acc`, which starts at mix position `flushed`, each
    /// frame weighted by its transition weight over the sum of the weights of
    /// every segment covering it, and by the source's scale. Frames outside
    /// `range` (shift padding, or parts of the mix not asked for) are dropped.
    fn add_to(
        &self,
        acc: &mut [Vec<Vec<f32>>],
        res: &[Vec<Vec<f32>>],
        job: &Segment,
        range: &std::ops::Range<usize>,
        flushed: usize,
    ) {
        let (start, trim) = (job.start, job.trim);
        for q in start..start + job.len {
            let p = self.origin + q as isize;
            if p < range.start as isize || p >= range.end as isize {
                continue;
            }
            let norm = self.weight[q - start] / self.sum_weight(q);
            let at = p as usize - flushed;
            for (k, (a, r)) in acc.iter_mut().zip(res).enumerate() {
                let f = norm * self.scale[k];
                for (ac, rc) in a.iter_mut().zip(r) {
                    if ac.len() <= at {
                        ac.resize(at + 1, 0.0);
                    }
                    ac[at] += f * rc[trim + q - start];
                }
            }
        }
    }

    /// Sum of the transition weights of every segment covering position `q`
    /// (the reference's `sum_weight`).
    fn sum_weight(&self, q: usize) -> f32 {
        let mut sum = 0.0;
        let first = (q + 1).saturating_sub(self.seg).div_ceil(self.stride);
        let mut j = first;
        while j * self.stride <= q && j * self.stride < self.n {
            let start = j * self.stride;
            let len = self.seg.min(self.n - start);
            if q < start + len {
                sum += self.weight[q - start];
            }
            j += 1;
        }
        sum
    }
}
