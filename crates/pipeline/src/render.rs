//! Mixing a set of stems through the Stem Engine into one file: what
//! `sonantica render` and `POST /api/tracks/{id}/mix` run, the same code the web
//! player's worklet runs.

use std::path::{Path, PathBuf};

use sonantica_audio::{AudioWriter, BlockReader, Decoder, OutputFormat};
use sonantica_mix::{MixSettings, Source, StemEngine};

use crate::{PipelineError, PipelineResult};

/// What [`render_mix`] wrote.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rendered {
    /// Frames written.
    pub frames: u64,
    /// Sample rate.
    pub sample_rate: u32,
    /// Samples beyond full scale (clipped in integer formats).
    pub clipped: u64,
    /// Highest absolute sample.
    pub peak: f32,
}

/// The stems found in a folder as `{source}.flac` or `{source}.wav`, in Demucs
/// order; a four- or six-stem set must be complete.
pub fn find_stems(dir: &Path) -> PipelineResult<Vec<(Source, PathBuf)>> {
    let bad = |m: String| Err(PipelineError::BadInput(m));
    if !dir.is_dir() {
        return bad(format!("{}: not a folder of stems", dir.display()));
    }
    let mut found = Vec::new();
    for source in Source::ALL {
        let candidates = ["flac", "wav"].map(|ext| dir.join(format!("{}.{ext}", source.name())));
        match candidates
            .iter()
            .filter(|p| p.is_file())
            .collect::<Vec<_>>()
            .as_slice()
        {
            [] => {}
            [one] => found.push((source, (*one).clone())),
            _ => {
                return bad(format!(
                    "{}: both {source}.flac and {source}.wav exist; keep one",
                    dir.display()
                ))
            }
        }
    }
    check_complete(&found.iter().map(|(s, _)| *s).collect::<Vec<_>>())
        .map_err(|m| PipelineError::BadInput(format!("{}: {m}", dir.display())))?;
    Ok(found)
}

/// Checks that `have` is a complete four- or six-stem set.
pub fn check_complete(have: &[Source]) -> Result<(), String> {
    let set: &[Source] = if have
        .iter()
        .any(|s| matches!(s, Source::Guitar | Source::Piano))
    {
        &Source::SIX
    } else {
        &Source::FOUR
    };
    if have.is_empty() {
        return Err(
            "no stems found (expected drums, bass, other and vocals as .flac or .wav)".into(),
        );
    }
    let missing: Vec<&str> = set
        .iter()
        .filter(|s| !have.contains(s))
        .map(|s| s.name())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "missing stem{} {} (a {}-stem set has {})",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", "),
            set.len(),
            set.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(())
}

/// The part of the track a render covers, in seconds of the original.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Span {
    /// Where to start (0: the beginning).
    pub start_s: f64,
    /// Where to stop (`None`: the end).
    pub end_s: Option<f64>,
}

impl Span {
    /// The whole track.
    pub const WHOLE: Span = Span {
        start_s: 0.0,
        end_s: None,
    };

    /// Checks the span on its own: a start ≥ 0 and an end after it.
    pub fn check(&self) -> Result<(), String> {
        if !(self.start_s.is_finite() && self.start_s >= 0.0) {
            return Err(format!("start {} s: expected a time ≥ 0", self.start_s));
        }
        match self.end_s {
            Some(e) if !(e.is_finite() && e > self.start_s) => Err(format!(
                "end {e} s: expected a time after the start ({} s)",
                self.start_s
            )),
            _ => Ok(()),
        }
    }
}

/// Mixes `stems` into `out` as `format` (written to a temporary name and renamed
/// when complete; `tags` as its Vorbis comments when FLAC), with the settings
/// applied by `StemEngine::apply` as the Studio's worklet applies them, over
/// `span` of the track. At a tempo other than 1 the file lasts the span's
/// length / tempo, to the frame. `progress` gets `(frames done, total frames if
/// known)`; when `cancelled` returns true the call ends with
/// [`PipelineError::Cancelled`] and leaves no file.
#[allow(clippy::too_many_arguments)]
pub fn render_mix(
    stems: &[(Source, PathBuf)],
    out: &Path,
    settings: &MixSettings,
    span: Span,
    format: OutputFormat,
    tags: &[(String, String)],
    progress: &mut dyn FnMut(u64, Option<u64>),
    cancelled: &dyn Fn() -> bool,
) -> PipelineResult<Rendered> {
    let bad = |m: String| Err(PipelineError::BadInput(m));
    if format.extension() == "flac" && settings.layout.channels() > 8 {
        return bad("FLAC holds at most 8 channels".into());
    }
    span.check().map_err(PipelineError::BadInput)?;
    let sources: Vec<Source> = stems.iter().map(|(s, _)| *s).collect();
    settings
        .check(&sources)
        .map_err(|e| PipelineError::BadInput(e.to_string()))?;

    let (mut stems_in, rate, total) = StemInput::open(stems)?;
    let to_frame = |s: f64| (s * f64::from(rate)).round() as u64;
    let first = to_frame(span.start_s);
    if let Some(total) = total.filter(|&t| first >= t) {
        return bad(format!(
            "the start ({} s) is past the end of the stems ({:.2} s)",
            span.start_s,
            total as f64 / f64::from(rate)
        ));
    }
    // Frames of the original to play: up to the span's end or the stems' end.
    let mut limit = span.end_s.map(|e| to_frame(e) - first);
    if let Some(t) = total {
        let left = t - first;
        limit = Some(limit.map_or(left, |l| l.min(left)));
    }
    let tempo = settings.tempo;
    let out_frames = |input: u64| (input as f64 / tempo).round() as u64;

    let mut engine = StemEngine::new(&sources, settings.layout, rate, settings.params)?;
    engine.apply(settings)?;
    // A render starts at its settings, not with a ramp from unity.
    engine.reset();
    stems_in.skip(first)?;

    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| PipelineError::io(dir, e))?;
    }
    let mut writer = AudioWriter::create_tagged(out, format, rate, settings.layout, tags)?;

    const BLOCK: usize = 4096;
    let mut output: Vec<Vec<f32>> = vec![vec![0.0; BLOCK]; settings.layout.channels()];
    let (mut frames, mut clipped, mut peak) = (0u64, 0u64, 0.0f32);
    // Frames of the original read; once the end is reached, the output's length.
    let mut read = 0u64;
    let mut target: Option<u64> = None;
    loop {
        if cancelled() {
            return Err(PipelineError::Cancelled);
        }
        let left = target.map(|t| t - frames);
        if left == Some(0) {
            break;
        }
        let n = left.map_or(BLOCK, |l| BLOCK.min(l as usize));
        let need = engine.input_frames_for(n);
        // The original up to the span's end, then silence for the look-ahead.
        let want = if target.is_some() {
            0
        } else {
            limit.map_or(need, |l| need.min((l - read) as usize))
        };
        let got = stems_in.read(want, need, read + first)?;
        read += got as u64;
        if target.is_none() && (got < want || limit == Some(read)) {
            target = Some(out_frames(read));
        }
        for o in &mut output {
            o.resize(n, 0.0);
        }
        engine.process(&stems_in.input, &mut output)?;
        // The last block may hold more than the span; it is cut to the frame.
        let keep = target.map_or(n, |t| n.min((t - frames) as usize));
        for o in &output {
            for &v in &o[..keep] {
                let a = v.abs();
                peak = peak.max(a);
                if a > 1.0 {
                    clipped += 1;
                }
            }
        }
        let refs: Vec<&[f32]> = output.iter().map(|o| &o[..keep]).collect();
        writer.write(&refs)?;
        frames += keep as u64;
        progress(frames, limit.map(out_frames));
    }
    writer.finish()?;
    Ok(Rendered {
        frames,
        sample_rate: rate,
        clipped,
        peak,
    })
}

/// The stems read in step, as the engine's input channels (mono stems play in
/// both channels).
struct StemInput {
    readers: Vec<(Source, BlockReader)>,
    paths: Vec<PathBuf>,
    bufs: Vec<Vec<Vec<f32>>>,
    input: Vec<Vec<f32>>,
}

impl StemInput {
    fn open(stems: &[(Source, PathBuf)]) -> PipelineResult<(Self, u32, Option<u64>)> {
        let (readers, rate, total) = open_stems(stems)?;
        let bufs = readers
            .iter()
            .map(|(_, r)| vec![Vec::new(); r.info().channels])
            .collect();
        let input = vec![Vec::new(); 2 * readers.len()];
        let paths = stems.iter().map(|(_, p)| p.clone()).collect();
        Ok((
            Self {
                readers,
                paths,
                bufs,
                input,
            },
            rate,
            total,
        ))
    }

    /// Reads and drops the first `frames` frames.
    fn skip(&mut self, frames: u64) -> PipelineResult<()> {
        let mut done = 0u64;
        while done < frames {
            let n = (frames - done).min(1 << 16) as usize;
            let got = self.read(n, 0, done)?;
            if got == 0 {
                break;
            }
            done += got as u64;
        }
        Ok(())
    }

    /// Fills `input` with up to `want` frames of every stem (all of the same
    /// length, or an error naming the short one), then silence up to `len`
    /// frames; returns the frames read. `at` is the first frame's index, for
    /// the error.
    fn read(&mut self, want: usize, len: usize, at: u64) -> PipelineResult<usize> {
        let mut got = None;
        for (k, (_, reader)) in self.readers.iter_mut().enumerate() {
            let n = if want == 0 {
                0
            } else {
                reader.read(want, &mut self.bufs[k])?
            };
            match got {
                None => got = Some(n),
                Some(m) if m != n => {
                    let (short, long) = if n < m {
                        (&self.paths[k], &self.paths[0])
                    } else {
                        (&self.paths[0], &self.paths[k])
                    };
                    return Err(PipelineError::BadInput(format!(
                        "stems have different lengths: {} ends at frame {}, {} goes on",
                        short.display(),
                        at + n.min(m) as u64,
                        long.display(),
                    )));
                }
                _ => {}
            }
            let bufs = &self.bufs[k];
            for (side, ch) in [0, 1].into_iter().zip([0, bufs.len().min(2) - 1]) {
                let dst = &mut self.input[2 * k + side];
                dst.clear();
                if n > 0 {
                    dst.extend_from_slice(&bufs[ch][..n]);
                }
                dst.resize(len.max(n), 0.0);
            }
        }
        Ok(got.unwrap_or(0))
    }
}

/// The stems opened for reading: the readers, the common sample rate and the
/// length in frames where every file declares it.
type OpenStems = (Vec<(Source, BlockReader)>, u32, Option<u64>);

/// Opens every stem and checks that they belong together: mono or stereo, one
/// sample rate, one declared length.
fn open_stems(stems: &[(Source, PathBuf)]) -> PipelineResult<OpenStems> {
    let bad = |m: String| Err(PipelineError::BadInput(m));
    let mut readers = Vec::new();
    for (source, path) in stems {
        let reader = BlockReader::new(Decoder::open(path)?);
        let info = reader.info();
        if info.channels > 2 {
            return bad(format!(
                "{}: stems must be mono or stereo, this has {} channels",
                path.display(),
                info.channels
            ));
        }
        readers.push((*source, reader));
    }
    let Some(rate) = readers.first().map(|(_, r)| r.info().sample_rate) else {
        return bad("no stems to mix".into());
    };
    for (_, r) in &readers {
        if r.info().sample_rate != rate {
            return bad(format!(
                "stems have different sample rates: {} is {} Hz, {} is {} Hz",
                readers[0].1.path().display(),
                rate,
                r.path().display(),
                r.info().sample_rate
            ));
        }
    }
    let declared: Vec<Option<u64>> = readers.iter().map(|(_, r)| r.info().frames).collect();
    if let (Some(Some(first)), true) = (declared.first(), declared.iter().all(Option::is_some)) {
        if let Some(((_, r), n)) = readers
            .iter()
            .zip(&declared)
            .find(|(_, n)| **n != Some(*first))
        {
            return bad(format!(
                "stems have different lengths: {} has {} frames, {} has {}",
                readers[0].1.path().display(),
                first,
                r.path().display(),
                n.unwrap_or_default()
            ));
        }
    }

    let total = declared.first().copied().flatten();
    Ok((readers, rate, total))
}
