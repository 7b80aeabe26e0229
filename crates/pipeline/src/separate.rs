//! Stem separation of a file: decode → model rate and channels → HTDemucs →
//! back to the input rate → one file per stem. `sonantica separate` and the
//! server's job workers both run this, so their stems are identical.
//!
//! The input is decoded, resampled to the model rate and converted to its channel
//! count into a temporary file (so a long track never sits in memory), normalised
//! as the reference CLI does, separated segment by segment, and each finished
//! block is brought back to the input rate and staged as float. Each stem is
//! encoded to a temporary name that is renamed into place only when all are
//! complete. Where every part is final when it is made (clamped, unclipped or
//! float stems) the files grow as the separation goes, from the start of the
//! track up to the first part not made yet; with [`ClipMode::Rescale`] the
//! common factor is known only at the end, and the stems are encoded then.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sonantica_audio::{AudioWriter, ChannelLayout, OutputFormat, Resampler, Speaker};
use sonantica_demucs::{ApplyOptions, DemucsError, MixSource, Progress, Separator};

use crate::sandbox::{Isolation, Stream};
use crate::{PipelineError, PipelineResult};

/// Output file format of the stems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StemFormat {
    /// 24-bit FLAC.
    #[default]
    Flac,
    /// 16-bit WAV.
    Wav,
    /// 32-bit float WAV (never clips).
    WavF32,
}

/// What to do with samples beyond full scale in integer formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClipMode {
    /// Divide all stems by one common factor, keeping their relative levels and sum.
    #[default]
    Rescale,
    /// Clamp each sample to full scale.
    Clamp,
    /// Write as is (integer formats then clamp).
    None,
}

/// Which stems to write.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StemSelection {
    /// Every source of the model.
    #[default]
    All,
    /// These sources only.
    Only(Vec<String>),
    /// `SOURCE` and `no_SOURCE` (the sum of the others).
    TwoStems(String),
}

/// How to separate.
#[derive(Debug, Clone, Default)]
pub struct SeparateSettings {
    /// Output format.
    pub format: StemFormat,
    /// Clipping in integer formats.
    pub clip: ClipMode,
    /// Write at the model's rate instead of the input's.
    pub keep_model_rate: bool,
    /// Shifts, overlap, seed and segment.
    pub apply: ApplyOptions,
    /// Which stems.
    pub stems: StemSelection,
    /// Where the input is decoded: in a sandboxed child for files this process
    /// did not write (the station's jobs), here for the user's own file.
    pub decode_in: Isolation,
    /// Where to start: the stems from this second (on a whole output frame
    /// at or before it) to the end are made first, then the start's.
    pub from_s: Option<f64>,
}

/// What [`separate_file`] wrote.
#[derive(Debug, Clone)]
pub struct Separated {
    /// `(stem name, file)` in the model's source order.
    pub stems: Vec<(String, PathBuf)>,
    /// Length of the stems in seconds.
    pub seconds: f64,
    /// Sample rate of the stems.
    pub sample_rate: u32,
    /// The common factor all stems were divided by to avoid clipping (1: none).
    pub rescale: f32,
    /// Seconds from the call until the first part of the stems was final
    /// (decoding the track, then one segment, with the default settings).
    pub first_final_s: Option<f64>,
}

impl StemFormat {
    fn output(self) -> (OutputFormat, &'static str) {
        match self {
            StemFormat::Flac => (OutputFormat::Flac24, "flac"),
            StemFormat::Wav => (OutputFormat::Wav16, "wav"),
            StemFormat::WavF32 => (OutputFormat::WavF32, "wav"),
        }
    }
}

/// The stem names a selection writes, checked against the model's sources.
pub fn wanted_stems(sources: &[String], selection: &StemSelection) -> PipelineResult<Vec<String>> {
    match selection {
        StemSelection::All => Ok(sources.to_vec()),
        StemSelection::TwoStems(two) => {
            if !sources.contains(two) {
                return Err(PipelineError::BadInput(format!(
                    "no {two} stem to split off: the model's sources are {}",
                    sources.join(", ")
                )));
            }
            Ok(vec![two.clone(), format!("no_{two}")])
        }
        StemSelection::Only(list) => {
            for s in list {
                if !sources.contains(s) {
                    return Err(PipelineError::BadInput(format!(
                        "no {s} stem: the model's sources are {}",
                        sources.join(", ")
                    )));
                }
            }
            Ok(list.clone())
        }
    }
}

/// Separates `input` into `out_dir/{stem}.{ext}`.
///
/// `progress` sees each finished segment; `cancelled` is polled while decoding and
/// between segments, and when it returns true the call ends with
/// [`PipelineError::Cancelled`], leaving no stem file behind.
pub fn separate_file(
    input: &Path,
    separator: &Separator,
    out_dir: &Path,
    settings: &SeparateSettings,
    progress: &mut dyn FnMut(&Progress),
    cancelled: &dyn Fn() -> bool,
) -> PipelineResult<Separated> {
    separate_file_live(
        input,
        separator,
        out_dir,
        settings,
        progress,
        cancelled,
        &mut (),
    )
}

/// [`separate_file`] that also hands every part of the stems to `live` the
/// moment it is final. That needs the stems' clipping settled part by part: an
/// integer format with [`ClipMode::Rescale`] (one factor from the whole
/// track's peak) is refused.
pub fn separate_file_live(
    input: &Path,
    separator: &Separator,
    out_dir: &Path,
    settings: &SeparateSettings,
    progress: &mut dyn FnMut(&Progress),
    cancelled: &dyn Fn() -> bool,
    live: &mut dyn LiveStems,
) -> PipelineResult<Separated> {
    let started = std::time::Instant::now();
    if !(0.0..1.0).contains(&settings.apply.overlap) {
        return Err(PipelineError::BadInput(
            "the segment overlap must be at least 0 and below 1".into(),
        ));
    }
    if live.wants_parts()
        && settings.format.output().0.is_integer()
        && settings.clip == ClipMode::Rescale
    {
        return Err(PipelineError::BadInput(
            "stems published as they are made cannot be rescaled by the whole track's peak: \
             clamp them, or write float"
                .into(),
        ));
    }
    if settings
        .from_s
        .is_some_and(|f| !(f.is_finite() && f >= 0.0))
    {
        return Err(PipelineError::BadInput(
            "the start of a separation must be a number of seconds ≥ 0".into(),
        ));
    }
    let wanted = wanted_stems(separator.sources(), &settings.stems)?;
    let (mut mix, info, input_frames) = stage_mix(
        settings.decode_in.stream(input)?,
        input,
        separator,
        cancelled,
    )?;
    let (out_rate, out_frames) = if settings.keep_model_rate {
        (separator.samplerate(), mix.frames)
    } else {
        (info.sample_rate, input_frames)
    };
    std::fs::create_dir_all(out_dir).map_err(|e| PipelineError::io(out_dir, e))?;
    live.begin(out_rate, out_frames)?;
    let (format, _) = settings.format.output();
    let growing = if format.is_integer() && settings.clip == ClipMode::Rescale {
        None
    } else {
        Some(Encoder::create(
            &wanted,
            separator.audio_channels(),
            out_dir,
            (out_rate, out_frames),
            settings,
            1.0,
        )?)
    };
    let (mut stages, first_final_s, growing) = separate_to_stages(
        separator,
        &mut mix,
        &wanted,
        out_dir,
        (out_rate, out_frames),
        settings,
        progress,
        cancelled,
        live,
        growing,
        started,
    )?;
    let mut done = encode_stages(
        &mut stages,
        growing,
        out_dir,
        (out_rate, out_frames),
        settings,
        cancelled,
    )?;
    done.first_final_s = first_final_s;
    Ok(done)
}

/// Pass 1: decodes `input`, converts it to the model's rate and channels into a
/// temporary file, and measures the mean and spread of the mono mix for
/// normalisation. Returns the staged mix, the input's description and how many
/// frames it decoded to.
fn stage_mix(
    mut decoder: Stream,
    input: &Path,
    separator: &Separator,
    cancelled: &dyn Fn() -> bool,
) -> PipelineResult<(TempMix, sonantica_audio::AudioInfo, usize)> {
    let info = decoder.info().clone();
    let mut decoded = 0usize;
    let model_ch = separator.audio_channels();
    let mut resampler = Resampler::new(info.sample_rate, separator.samplerate(), model_ch)?;
    let mut mix_file = tempfile::tempfile().map_err(|e| PipelineError::io("temporary mix", e))?;
    let mut staged = BufWriter::new(&mut mix_file);
    let (mut frames, mut sum, mut sum_sq) = (0usize, 0f64, 0f64);
    let mut converted = vec![Vec::new(); model_ch];
    let mut resampled = vec![Vec::new(); model_ch];
    let mut write_frames =
        |planes: &mut [Vec<f32>], staged: &mut BufWriter<&mut File>| -> std::io::Result<()> {
            let n = planes.first().map_or(0, Vec::len);
            for i in 0..n {
                let mut m = 0.0f64;
                for p in planes.iter() {
                    staged.write_all(&p[i].to_le_bytes())?;
                    m += f64::from(p[i]);
                }
                m /= planes.len() as f64;
                sum += m;
                sum_sq += m * m;
            }
            frames += n;
            for p in planes.iter_mut() {
                p.clear();
            }
            Ok(())
        };
    let mix_err = |e: std::io::Error| PipelineError::io("temporary mix", e);
    while let Some(block) = decoder.next_block()? {
        if cancelled() {
            return Err(PipelineError::Cancelled);
        }
        decoded += block.first().map_or(0, Vec::len);
        to_model_channels(block, info.layout, model_ch, &mut converted);
        resampler.process(&converted, &mut resampled)?;
        write_frames(&mut resampled, &mut staged).map_err(mix_err)?;
    }
    resampler.finish(&mut resampled)?;
    write_frames(&mut resampled, &mut staged).map_err(mix_err)?;
    staged.flush().map_err(mix_err)?;
    drop(staged);
    if frames < 2 {
        return Err(PipelineError::BadInput(format!(
            "{}: too short to separate",
            input.display()
        )));
    }
    let mean = sum / frames as f64;
    let var = ((sum_sq - frames as f64 * mean * mean) / (frames as f64 - 1.0)).max(0.0);
    let mix = TempMix {
        file: mix_file,
        frames,
        channels: model_ch,
        mean,
        std: var.sqrt() + 1e-8,
        raw: Vec::new(),
    };
    Ok((mix, info, decoded))
}

/// Pass 2: separates the staged mix region by region (see [`Plan`]); each
/// wanted stem is denormalised, resampled to `out_rate` and staged as f32 (at
/// most `out_frames` frames) in a temporary file in `out_dir`, and handed to
/// `live` as it will be encoded. Between segments `live` may ask for another
/// place ([`LiveStems::wanted_s`]: the listener sought there): the region
/// stops where it got to and the next one starts there.
#[allow(clippy::too_many_arguments)]
fn separate_to_stages(
    separator: &Separator,
    mix: &mut TempMix,
    wanted: &[String],
    out_dir: &Path,
    (out_rate, out_frames): (u32, usize),
    settings: &SeparateSettings,
    progress: &mut dyn FnMut(&Progress),
    cancelled: &dyn Fn() -> bool,
    live: &mut dyn LiveStems,
    growing: Option<Encoder>,
    started: std::time::Instant,
) -> PipelineResult<(Vec<Stage>, Option<f64>, Option<Encoder>)> {
    let tmp_err = |e: std::io::Error| PipelineError::io(out_dir, e);
    let model_rate = separator.samplerate();
    let model_ch = separator.audio_channels();
    let mut stages: Vec<Stage> = Vec::new();
    for name in wanted {
        let file = tempfile::tempfile_in(out_dir)
            .or_else(|_| tempfile::tempfile())
            .map_err(tmp_err)?;
        stages.push(Stage {
            name: name.clone(),
            channels: model_ch,
            file,
            frames: 0,
            peak: 0.0,
        });
    }
    let mut plan = Plan::new(mix.frames, out_frames, model_rate, out_rate);
    let (format, _) = settings.format.output();
    let mut out = Publisher {
        live,
        format,
        clamp: settings.clip == ClipMode::Clamp,
        final_block: vec![vec![Vec::new(); model_ch]; wanted.len()],
        first_final: None,
        started,
        growing,
    };
    // A seek that lands this close ahead of where the region is publishing
    // does not stop it: the region gets there sooner than a new one would.
    let lookahead = 10 * out_rate as usize;
    let mut cursor = settings.from_s.map_or(0, |s| plan.aligned(s));
    let mut sought: Option<usize> = None;
    let mut passes_done = 0;
    loop {
        let next = sought
            .take()
            .and_then(|w| plan.gap_at(w))
            .or_else(|| plan.next_gap(cursor));
        let Some(kept) = next else { break };
        let region = plan.region(kept.clone());
        let passes = separator.passes_in(mix.frames, &settings.apply, region.clone());
        let total = passes_done + plan.passes_left(separator, &settings.apply);
        let mut run = RegionRun {
            separator,
            wanted,
            mean_std: (mix.mean, mix.std),
            back: wanted
                .iter()
                .map(|_| Resampler::new(model_rate, out_rate, model_ch))
                .collect::<Result<_, _>>()?,
            stem_buf: vec![Vec::new(); model_ch],
            outs: vec![vec![Vec::new(); model_ch]; wanted.len()],
            // Output frames of this region's computed range, from its start.
            at: out_at(region.start, model_rate, out_rate),
            keep: kept.clone(),
        };
        let mut write_err: Option<PipelineError> = None;
        let mut stopped_for: Option<usize> = None;
        let mut region_done = 0;
        let result = separator.apply_range(
            mix,
            &settings.apply,
            region,
            &mut |p| {
                region_done = p.done;
                progress(&Progress {
                    done: passes_done + p.done,
                    total,
                });
                !cancelled()
            },
            &mut |block| {
                let step = run
                    .add(block)
                    .and_then(|()| out.publish(&mut run, &mut stages, &mut plan));
                if let Err(e) = step {
                    let msg = e.to_string();
                    write_err = Some(e);
                    return Err(DemucsError::Input(msg));
                }
                if let Some(w) = out.live.wanted_s().map(|s| plan.wanted_at(s)) {
                    let soon = run.at.max(kept.start)..(run.at + lookahead).min(kept.end);
                    if plan.gap_at(w).is_some() && !soon.contains(&w) {
                        stopped_for = Some(w);
                        // Unwinds apply_range; told apart from a cancel below.
                        return Err(DemucsError::Cancelled);
                    }
                }
                Ok(())
            },
        );
        match result {
            Err(DemucsError::Cancelled) if stopped_for.is_some() && !cancelled() => {
                // What the region published so far is final; the rest of it
                // is a gap again, made later with fresh context.
                sought = stopped_for;
                cursor = kept.end;
                passes_done += region_done;
                continue;
            }
            Err(DemucsError::Cancelled) => return Err(PipelineError::Cancelled),
            Err(e) => return Err(write_err.unwrap_or_else(|| e.into())),
            Ok(()) => {}
        }
        for (w, r) in run.back.iter_mut().enumerate() {
            r.finish(&mut run.outs[w])?;
        }
        out.publish(&mut run, &mut stages, &mut plan)?;
        // Done even where the resampler's last frames fall short of its end
        // (the files are padded to the track's length).
        plan.mark(kept.clone());
        passes_done += passes;
        cursor = kept.end;
        if let Some(w) = out.live.wanted_s() {
            sought = Some(plan.wanted_at(w));
        }
    }
    Ok((stages, out.first_final, out.growing))
}

/// Where the stems go as they are made: the stage files and `live`.
struct Publisher<'a> {
    live: &'a mut dyn LiveStems,
    format: OutputFormat,
    clamp: bool,
    /// `[stem][channel]`: the part being handed to `live`.
    final_block: Vec<Vec<Vec<f32>>>,
    /// Seconds from the start until the first part was final.
    first_final: Option<f64>,
    started: std::time::Instant,
    /// The stem files, written up to the first part not made yet (when the
    /// parts are final as they are made).
    growing: Option<Encoder>,
}

impl Publisher<'_> {
    /// Stages (and hands to `live`) the part of the region's resampled output
    /// that it keeps, and marks it done in `plan`.
    fn publish(
        &mut self,
        run: &mut RegionRun,
        stages: &mut [Stage],
        plan: &mut Plan,
    ) -> PipelineResult<()> {
        let n = run.outs.first().and_then(|o| o.first()).map_or(0, Vec::len);
        let (from, to) = (run.at.max(run.keep.start), (run.at + n).min(run.keep.end));
        if from < to {
            let started = self.started;
            self.first_final
                .get_or_insert_with(|| started.elapsed().as_secs_f64());
            let skip = from - run.at;
            let wants_parts = self.live.wants_parts();
            for (w, out) in run.outs.iter().enumerate() {
                stage(&mut stages[w], out, skip..skip + to - from, from)
                    .map_err(|e| PipelineError::io("a temporary stem", e))?;
                if !wants_parts {
                    continue;
                }
                let (format, clamp) = (self.format, self.clamp);
                for (f, o) in self.final_block[w].iter_mut().zip(out) {
                    f.clear();
                    f.extend(
                        o[skip..skip + to - from].iter().map(|&v| {
                            format.round_trip(if clamp { v.clamp(-1.0, 1.0) } else { v })
                        }),
                    );
                }
            }
            if wants_parts {
                self.live.ready(from, &self.final_block)?;
            }
            plan.mark(from..to);
            if let Some(enc) = self.growing.as_mut() {
                enc.grow(stages, plan.made_from_start())?;
            }
        }
        run.at += n;
        run.outs.iter_mut().flatten().for_each(Vec::clear);
        Ok(())
    }
}

/// Receives stems the moment they are final: `block` is `[stem][channel][n]`
/// from output frame `at`, each sample exactly as the finished stem file will
/// decode it. Parts arrive in the order they are made, which is the track's
/// order unless the separation starts elsewhere (`from_s`).
pub trait LiveStems {
    /// Called once before the first part: the stems' rate and length.
    fn begin(&mut self, rate: u32, frames: usize) -> PipelineResult<()> {
        let _ = (rate, frames);
        Ok(())
    }

    /// Takes one finished part.
    fn ready(&mut self, at: usize, block: &[Vec<Vec<f32>>]) -> PipelineResult<()>;

    /// False when the parts are not looked at (they are then not made).
    fn wants_parts(&self) -> bool {
        true
    }

    /// Asked between segments: a second of the track the listener now wants
    /// first (they sought there), once per request. Stems not final there
    /// are made from there next; `None` carries on in order.
    fn wanted_s(&mut self) -> Option<f64> {
        None
    }
}

/// A [`LiveStems`] that takes nothing.
impl LiveStems for () {
    fn ready(&mut self, _: usize, _: &[Vec<Vec<f32>>]) -> PipelineResult<()> {
        Ok(())
    }

    fn wants_parts(&self) -> bool {
        false
    }
}

/// What of the track is separated, and the next part to separate. Parts of
/// the stems are made in the track's order unless the listener starts
/// elsewhere (`from_s`) or seeks while the job runs: then from there to the
/// next part already made, then on from there, then from the start. Each part
/// starts on a model frame that falls on a whole output frame (the grid) and
/// is computed with a second of context on each side, so the resampled stems
/// run on seamlessly across parts (at equal rates nothing is resampled and no
/// context is needed). The network's own output is the same bit for bit
/// whatever the parts ([`Separator::apply_range`]).
struct Plan {
    /// Model frames of the mix.
    frames: usize,
    /// Output frames of the stems.
    out_frames: usize,
    model_rate: u32,
    out_rate: u32,
    /// One grid step in model frames and in output frames.
    grid: (usize, usize),
    /// Model frames of context on each side of a part.
    context: usize,
    /// Output frames published, sorted and merged.
    done: Vec<std::ops::Range<usize>>,
}

impl Plan {
    fn new(frames: usize, out_frames: usize, model_rate: u32, out_rate: u32) -> Self {
        let g = gcd(model_rate, out_rate);
        let grid = ((model_rate / g) as usize, (out_rate / g) as usize);
        let context = if model_rate == out_rate {
            0
        } else {
            (model_rate as usize).div_ceil(grid.0) * grid.0
        };
        Self {
            frames,
            out_frames,
            model_rate,
            out_rate,
            grid,
            context,
            done: Vec::new(),
        }
    }

    /// The output frame on the grid at or before second `s` of the track.
    fn aligned(&self, s: f64) -> usize {
        if !(s.is_finite() && s > 0.0) {
            return 0;
        }
        let m = ((s * f64::from(self.model_rate)) as usize).min(self.frames.saturating_sub(1));
        out_at(
            m / self.grid.0 * self.grid.0,
            self.model_rate,
            self.out_rate,
        )
    }

    /// Where to go for a listener who wants second `s`: the grid point at or
    /// before it, or, when that is made already (`s` lies just past the end
    /// of a part, as where a reader reaches the edge of the stems made), the
    /// start of the part not made that follows.
    fn wanted_at(&self, s: f64) -> usize {
        let a = self.aligned(s);
        if self.gap_at(a).is_some() {
            return a;
        }
        let t = if s.is_finite() && s > 0.0 {
            (s * f64::from(self.out_rate)) as usize
        } else {
            0
        };
        self.done
            .iter()
            .find(|d| d.contains(&a))
            .map(|d| d.end)
            .filter(|&e| e <= t && self.gap_at(e).is_some())
            .unwrap_or(a)
    }

    /// The part not made yet that starts at output frame `t`: to the next part
    /// made, or the end. `None` when `t` is made already or past the end.
    fn gap_at(&self, t: usize) -> Option<std::ops::Range<usize>> {
        if t >= self.out_frames || self.done.iter().any(|d| d.contains(&t)) {
            return None;
        }
        let end = self
            .done
            .iter()
            .map(|d| d.start)
            .find(|&s| s > t)
            .unwrap_or(self.out_frames);
        Some(t..end)
    }

    /// Every part not made yet, in the track's order.
    fn gaps(&self) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        let starts = std::iter::once(0).chain(self.done.iter().map(|d| d.end));
        let ends = self
            .done
            .iter()
            .map(|d| d.start)
            .chain(std::iter::once(self.out_frames));
        starts.zip(ends).filter(|(s, e)| s < e).map(|(s, e)| s..e)
    }

    /// The next part to make: from `cursor` on, else the first one left.
    fn next_gap(&self, cursor: usize) -> Option<std::ops::Range<usize>> {
        self.gap_at(cursor)
            .or_else(|| self.gaps().find(|g| g.start >= cursor))
            .or_else(|| self.gaps().next())
    }

    /// The model frames to compute to make output frames `kept`.
    fn region(&self, kept: std::ops::Range<usize>) -> std::ops::Range<usize> {
        let (gm, go) = self.grid;
        let start = (kept.start / go * gm).saturating_sub(self.context);
        let end = if kept.end >= self.out_frames {
            self.frames
        } else {
            (kept.end.div_ceil(go) * gm + self.context).min(self.frames)
        };
        start..end.max(start + 1).min(self.frames)
    }

    /// Passes of the network left to make every part not made yet.
    fn passes_left(&self, separator: &Separator, opts: &ApplyOptions) -> usize {
        self.gaps()
            .map(|g| separator.passes_in(self.frames, opts, self.region(g)))
            .sum()
    }

    /// Output frames `r` are made.
    /// Output frames made from the start of the track without a gap.
    fn made_from_start(&self) -> usize {
        self.done
            .first()
            .filter(|r| r.start == 0)
            .map_or(0, |r| r.end)
    }

    fn mark(&mut self, r: std::ops::Range<usize>) {
        merge_spans(&mut self.done, r);
    }
}

/// Adds `span` to sorted, disjoint `spans`, joining what touches.
pub fn merge_spans(spans: &mut Vec<std::ops::Range<usize>>, span: std::ops::Range<usize>) {
    if span.is_empty() {
        return;
    }
    spans.push(span);
    spans.sort_by_key(|r| r.start);
    let mut merged: Vec<std::ops::Range<usize>> = Vec::with_capacity(spans.len());
    for r in spans.drain(..) {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    *spans = merged;
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The output frame of model frame `m` (exact on the grid of [`Plan`]).
fn out_at(m: usize, model_rate: u32, out_rate: u32) -> usize {
    (m as u64 * u64::from(out_rate) / u64::from(model_rate)) as usize
}

/// One region's way from the network's output to stems at the output rate.
struct RegionRun<'a> {
    separator: &'a Separator,
    wanted: &'a [String],
    mean_std: (f64, f64),
    back: Vec<Resampler>,
    stem_buf: Vec<Vec<f32>>,
    /// `[stem][channel]`: resampled, not yet published.
    outs: Vec<Vec<Vec<f32>>>,
    /// Output frame of `outs`' first sample.
    at: usize,
    /// Output frames this region contributes.
    keep: std::ops::Range<usize>,
}

impl RegionRun<'_> {
    /// Makes each wanted stem of a block of network output (the stem, or the
    /// sum of the others for `no_SOURCE`), denormalised and resampled.
    fn add(&mut self, block: &[Vec<Vec<f32>>]) -> PipelineResult<()> {
        let sources = self.separator.sources();
        let (mean, std) = self.mean_std;
        for (w, name) in self.wanted.iter().enumerate() {
            for (c, buf) in self.stem_buf.iter_mut().enumerate() {
                let n = block[0][c].len();
                buf.clear();
                buf.resize(n, 0.0);
                for (k, src) in sources.iter().enumerate() {
                    let take = if let Some(rest) = name.strip_prefix("no_") {
                        src != rest
                    } else {
                        src == name
                    };
                    if take {
                        buf.iter_mut().zip(&block[k][c]).for_each(|(o, v)| *o += v);
                    }
                }
                let parts = if name.starts_with("no_") {
                    sources.len() - 1
                } else {
                    1
                } as f64;
                for v in buf.iter_mut() {
                    // Each source gets the mean back, as the reference does.
                    *v = (f64::from(*v) * std + mean * parts) as f32;
                }
            }
            self.back[w].process(&self.stem_buf, &mut self.outs[w])?;
        }
        Ok(())
    }
}

/// Pass 3: encodes what is left of every staged stem into
/// `out_dir/{stem}.{ext}` (all of it, with one common clipping factor so the
/// stems still add up to the mix, unless `growing` already holds the start),
/// and renames the files into place.
fn encode_stages(
    stages: &mut [Stage],
    growing: Option<Encoder>,
    out_dir: &Path,
    (out_rate, out_frames): (u32, usize),
    settings: &SeparateSettings,
    cancelled: &dyn Fn() -> bool,
) -> PipelineResult<Separated> {
    let mut enc = match growing {
        Some(enc) => enc,
        None => {
            let peak = stages.iter().map(|s| s.peak).fold(0.0f32, f32::max);
            let (format, _) = settings.format.output();
            let factor = if format.is_integer() && settings.clip == ClipMode::Rescale {
                (1.01 * peak).max(1.0)
            } else {
                1.0
            };
            let names: Vec<String> = stages.iter().map(|s| s.name.clone()).collect();
            let channels = stages.first().map_or(2, |s| s.channels);
            Encoder::create(
                &names,
                channels,
                out_dir,
                (out_rate, out_frames),
                settings,
                factor,
            )?
        }
    };
    if cancelled() {
        return Err(PipelineError::Cancelled);
    }
    // The rest, padded with silence to the track's exact length.
    enc.grow(stages, out_frames)?;
    let factor = enc.factor;
    let mut written = Vec::new();
    for (name, w, path) in enc.writers {
        w.finish()?;
        written.push((name, path));
    }
    Ok(Separated {
        stems: written,
        seconds: out_frames as f64 / f64::from(out_rate),
        sample_rate: out_rate,
        rescale: factor,
        first_final_s: None,
    })
}

/// The stem files being written (under temporary names until they are
/// finished), each up to the same frame.
struct Encoder {
    /// `(stem, writer, final path)` in the order of the stages.
    writers: Vec<(String, AudioWriter, PathBuf)>,
    /// Frames written to every file.
    written: usize,
    /// The stems' length: nothing is written beyond it.
    frames: usize,
    /// What the samples are divided by.
    factor: f32,
    clamp: bool,
}

impl Encoder {
    fn create(
        names: &[String],
        channels: usize,
        out_dir: &Path,
        (out_rate, frames): (u32, usize),
        settings: &SeparateSettings,
        factor: f32,
    ) -> PipelineResult<Self> {
        let (format, ext) = settings.format.output();
        let layout = ChannelLayout::default_for(channels);
        let writers = names
            .iter()
            .map(|name| {
                let path = out_dir.join(format!("{name}.{ext}"));
                let w = AudioWriter::create(&path, format, out_rate, layout)?;
                Ok((name.clone(), w, path))
            })
            .collect::<PipelineResult<_>>()?;
        Ok(Self {
            writers,
            written: 0,
            frames,
            factor,
            clamp: settings.clip == ClipMode::Clamp,
        })
    }

    /// Encodes every stage from where the files end up to frame `to` (frames
    /// not staged are silence: the end of the track past the resampler's
    /// last output).
    fn grow(&mut self, stages: &[Stage], to: usize) -> PipelineResult<()> {
        let to = to.min(self.frames);
        if to <= self.written {
            return Ok(());
        }
        for (s, (_, w, _)) in stages.iter().zip(self.writers.iter_mut()) {
            copy_stage(s, self.written..to, self.factor, self.clamp, w)?;
        }
        self.written = to;
        Ok(())
    }
}

/// The mix after conversion, in a temporary file of interleaved f32 frames.
struct TempMix {
    file: File,
    frames: usize,
    channels: usize,
    mean: f64,
    std: f64,
    raw: Vec<u8>,
}

impl MixSource for TempMix {
    fn len(&self) -> usize {
        self.frames
    }

    fn channels(&self) -> usize {
        self.channels
    }

    fn read(
        &mut self,
        start: isize,
        len: usize,
        out: &mut Vec<Vec<f32>>,
    ) -> Result<(), DemucsError> {
        out.resize_with(self.channels, Vec::new);
        for o in out.iter_mut() {
            o.clear();
            o.resize(len, 0.0);
        }
        let from = start.max(0) as usize;
        let to = ((start + len as isize).max(0) as usize).min(self.frames);
        if to <= from {
            return Ok(());
        }
        let bytes = (to - from) * self.channels * 4;
        self.raw.resize(bytes, 0);
        self.file
            .read_exact_at(&mut self.raw, (from * self.channels * 4) as u64)
            .map_err(|e| DemucsError::Input(format!("reading the temporary mix: {e}")))?;
        let skip = (from as isize - start) as usize;
        let (mean, std) = (self.mean as f32, self.std as f32);
        for (i, frame) in self.raw.chunks_exact(self.channels * 4).enumerate() {
            for (c, s) in frame.chunks_exact(4).enumerate() {
                let v = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
                out[c][skip + i] = (v - mean) / std;
            }
        }
        Ok(())
    }
}

/// Converts decoded channels to the model's stereo: mono is duplicated, 2.1/5.1/7.1
/// are folded down with the ITU-R BS.775 coefficients (LFE dropped), other layouts
/// keep their first two channels.
fn to_model_channels(block: &[Vec<f32>], layout: ChannelLayout, want: usize, out: &mut [Vec<f32>]) {
    let n = block.first().map_or(0, Vec::len);
    for o in out.iter_mut() {
        o.clear();
        o.resize(n, 0.0);
    }
    if want == 1 {
        for c in block {
            out[0]
                .iter_mut()
                .zip(c)
                .for_each(|(o, v)| *o += v / block.len() as f32);
        }
        return;
    }
    match block.len() {
        1 => {
            for o in out.iter_mut() {
                o.copy_from_slice(&block[0]);
            }
        }
        _ if !layout.speakers().is_empty() && block.len() > 2 => {
            const G: f32 = std::f32::consts::FRAC_1_SQRT_2;
            for (speaker, c) in layout.speakers().iter().zip(block) {
                let (l, r) = match speaker {
                    Speaker::FrontLeft => (1.0, 0.0),
                    Speaker::FrontRight => (0.0, 1.0),
                    Speaker::FrontCenter => (G, G),
                    Speaker::BackLeft | Speaker::SideLeft => (G, 0.0),
                    Speaker::BackRight | Speaker::SideRight => (0.0, G),
                    _ => (0.0, 0.0),
                };
                for i in 0..n {
                    out[0][i] += l * c[i];
                    out[1][i] += r * c[i];
                }
            }
        }
        _ => {
            for (o, c) in out.iter_mut().zip(block) {
                o.copy_from_slice(c);
            }
        }
    }
}

/// One output file being staged as interleaved f32.
struct Stage {
    name: String,
    channels: usize,
    file: File,
    /// The end of what was written (the parts before it are all written once
    /// the separation is done, in whatever order they came).
    frames: usize,
    peak: f32,
}

/// Writes frames `range` of `planes` to a stage at output frame `at`.
fn stage(
    s: &mut Stage,
    planes: &[Vec<f32>],
    range: std::ops::Range<usize>,
    at: usize,
) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(range.len() * planes.len() * 4);
    for i in range.clone() {
        for p in planes {
            s.peak = s.peak.max(p[i].abs());
            bytes.extend_from_slice(&p[i].to_le_bytes());
        }
    }
    s.file
        .write_all_at(&bytes, (at * planes.len() * 4) as u64)?;
    s.frames = s.frames.max(at + range.len());
    Ok(())
}

/// Encodes frames `range` of a staged stem (silence where nothing was
/// staged).
fn copy_stage(
    s: &Stage,
    range: std::ops::Range<usize>,
    factor: f32,
    clamp: bool,
    w: &mut AudioWriter,
) -> PipelineResult<()> {
    let err = |e: std::io::Error| PipelineError::io("temporary stem", e);
    let channels = s.channels;
    const BLOCK: usize = 4096;
    let mut raw = vec![0u8; BLOCK.min(range.len()) * channels * 4];
    let mut planes = vec![Vec::with_capacity(BLOCK); channels];
    let mut done = range.start;
    while done < range.end {
        let n = BLOCK.min(range.end - done);
        let available = n.min(s.frames.saturating_sub(done));
        let bytes = &mut raw[..available * channels * 4];
        s.file
            .read_exact_at(bytes, (done * channels * 4) as u64)
            .map_err(err)?;
        for p in planes.iter_mut() {
            p.clear();
        }
        for frame in bytes.chunks_exact(channels * 4) {
            for (c, b) in frame.chunks_exact(4).enumerate() {
                let mut v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]) / factor;
                if clamp {
                    v = v.clamp(-1.0, 1.0);
                }
                planes[c].push(v);
            }
        }
        for p in planes.iter_mut() {
            p.resize(n, 0.0);
        }
        let refs: Vec<&[f32]> = planes.iter().map(Vec::as_slice).collect();
        w.write(&refs)?;
        done += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_merge_when_they_touch_and_stay_apart_when_they_do_not() {
        let mut s = Vec::new();
        merge_spans(&mut s, 100..200);
        merge_spans(&mut s, 0..50);
        assert_eq!(s, vec![0..50, 100..200]);
        merge_spans(&mut s, 50..100);
        assert_eq!(s, vec![0..200]);
        merge_spans(&mut s, 300..400);
        merge_spans(&mut s, 150..250);
        merge_spans(&mut s, 7..7);
        assert_eq!(s, vec![0..250, 300..400]);
    }

    #[test]
    fn the_plan_goes_on_from_a_seek_then_wraps_to_the_first_gap() {
        // 48 kHz out of a 44.1 kHz model: a grid step is 147 model frames,
        // 160 output frames; a part has 300 grid steps of context.
        let mut plan = Plan::new(441_000, 480_000, 44_100, 48_000);
        assert_eq!(plan.aligned(1.0), 48_000);
        assert_eq!(plan.aligned(1.0001), 48_000, "down to the grid");
        assert_eq!(plan.next_gap(0), Some(0..480_000));
        plan.mark(0..10_000);
        plan.mark(96_000..200_000);
        assert_eq!(plan.gap_at(5_000), None, "made already");
        // A listener at the edge of what is made (10_000, off the grid): the
        // gap's start, not the grid point inside the made part before it.
        assert_eq!(plan.wanted_at(10_000.0 / 48_000.0), 10_000);
        assert_eq!(plan.wanted_at(0.5), 24_000, "on the grid inside a gap");
        assert_eq!(plan.wanted_at(0.1), 4_800, "made already: its grid point");
        assert_eq!(
            plan.gap_at(50_000),
            Some(50_000..96_000),
            "up to the next part made"
        );
        assert_eq!(
            plan.next_gap(150_000),
            Some(200_000..480_000),
            "on from the cursor"
        );
        plan.mark(200_000..480_000);
        assert_eq!(
            plan.next_gap(480_000),
            Some(10_000..96_000),
            "then from the start"
        );
        // The model frames for a part: a grid step before it, a second of
        // context each side.
        let r = plan.region(10_000..96_000);
        assert_eq!(r.start, 0, "no context before the start of the mix");
        assert_eq!(r.end, 96_000 / 160 * 147 + 44_100);
        assert_eq!(
            plan.region(96_160..480_000),
            (96_160 / 160 * 147 - 44_100)..441_000
        );
    }
}
