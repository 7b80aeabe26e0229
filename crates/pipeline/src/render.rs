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

/// Mixes `stems` into `out` as `format` (written to a temporary name and renamed
/// when complete; `tags` as its Vorbis comments when FLAC), with the settings applied by `StemEngine::apply` as the
/// Studio's worklet applies them. `progress` gets `(frames done, total frames if known)`; when
/// `cancelled` returns true the call ends with [`PipelineError::Cancelled`] and leaves
/// no file.
pub fn render_mix(
    stems: &[(Source, PathBuf)],
    out: &Path,
    settings: &MixSettings,
    format: OutputFormat,
    tags: &[(String, String)],
    progress: &mut dyn FnMut(u64, Option<u64>),
    cancelled: &dyn Fn() -> bool,
) -> PipelineResult<Rendered> {
    let bad = |m: String| Err(PipelineError::BadInput(m));
    if format.extension() == "flac" && settings.layout.channels() > 8 {
        return bad("FLAC holds at most 8 channels".into());
    }
    let sources: Vec<Source> = stems.iter().map(|(s, _)| *s).collect();
    settings
        .check(&sources)
        .map_err(|e| PipelineError::BadInput(e.to_string()))?;

    let paths: Vec<PathBuf> = stems.iter().map(|(_, p)| p.clone()).collect();
    let (mut readers, rate, total) = open_stems(stems)?;
    let mut engine = StemEngine::new(&sources, settings.layout, rate, settings.params)?;
    engine.apply(settings)?;
    // A render starts at its settings, not with a ramp from unity.
    engine.reset();

    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| PipelineError::io(dir, e))?;
    }
    let mut writer = AudioWriter::create_tagged(out, format, rate, settings.layout, tags)?;

    const BLOCK: usize = 4096;
    let mut stem_bufs: Vec<Vec<Vec<f32>>> = readers
        .iter()
        .map(|(_, r)| vec![Vec::new(); r.info().channels])
        .collect();
    let mut input: Vec<Vec<f32>> = vec![Vec::with_capacity(BLOCK); 2 * readers.len()];
    let mut output: Vec<Vec<f32>> = vec![vec![0.0; BLOCK]; settings.layout.channels()];
    let (mut frames, mut clipped, mut peak) = (0u64, 0u64, 0.0f32);
    loop {
        if cancelled() {
            return Err(PipelineError::Cancelled);
        }
        let mut got = None;
        for (k, (_, reader)) in readers.iter_mut().enumerate() {
            let n = reader.read(BLOCK, &mut stem_bufs[k])?;
            match got {
                None => got = Some(n),
                Some(m) if m != n => {
                    let (short, long) = if n < m {
                        (&paths[k], &paths[0])
                    } else {
                        (&paths[0], &paths[k])
                    };
                    return bad(format!(
                        "stems have different lengths: {} ends at frame {}, {} goes on",
                        short.display(),
                        frames + n.min(m) as u64,
                        long.display(),
                    ));
                }
                _ => {}
            }
            // Mono stems play in both channels.
            let bufs = &stem_bufs[k];
            input[2 * k].clear();
            input[2 * k].extend_from_slice(&bufs[0]);
            input[2 * k + 1].clear();
            input[2 * k + 1].extend_from_slice(bufs.get(1).unwrap_or(&bufs[0]));
        }
        let n = got.unwrap_or(0);
        if n == 0 {
            break;
        }
        for o in &mut output {
            o.resize(n, 0.0);
        }
        engine.process(&input, &mut output)?;
        for o in &output {
            for &v in o.iter() {
                let a = v.abs();
                peak = peak.max(a);
                if a > 1.0 {
                    clipped += 1;
                }
            }
        }
        let refs: Vec<&[f32]> = output.iter().map(Vec::as_slice).collect();
        writer.write(&refs)?;
        frames += n as u64;
        progress(frames, total);
    }
    writer.finish()?;
    Ok(Rendered {
        frames,
        sample_rate: rate,
        clipped,
        peak,
    })
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
