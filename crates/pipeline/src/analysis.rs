//! Offline analysis of a whole file with every Inspector meter: what
//! `sonantica analyze` prints and what the library stores with each track.

use std::path::Path;
use std::sync::{mpsc, Arc};

use sonantica_audio::{AudioInfo, Decoder};
use sonantica_meter::{
    Inspector, InspectorConfig, Loudness, LoudnessHistory, Overview, OverviewBuilder, Report,
    TempoKey,
};

use crate::sandbox::Stream;
use crate::{PipelineError, PipelineResult};

/// A file measured to the end.
pub struct Analysis {
    /// The stream's properties.
    pub info: AudioInfo,
    /// Every result.
    pub report: Report,
    /// The loudness meter, kept for album loudness.
    pub loudness: Loudness,
    /// The track at a glance, for a seek bar (at most [`OVERVIEW_COLUMNS`]).
    pub overview: Overview,
}

/// Columns of a track's [`Analysis::overview`]: a seek bar's width in pixels
/// on a large screen.
pub const OVERVIEW_COLUMNS: usize = 2000;

type Block = Arc<Vec<Vec<f32>>>;

/// Decodes `path` and runs every meter over it; `progress` gets the frames of each
/// block as it is measured.
///
/// The work is split over two cores: one thread reads the decoded blocks
/// (from a sandboxed child, which decodes on the same core) and runs the
/// true-peak meter (4× oversampling, vectorised) and the tempo and key
/// estimator; the caller's runs the
/// loudness meter (K-weighting and gating), the overview and the rest of the
/// Inspector. Each decoded block is shared between them, not copied twice.
pub fn analyze_file(path: &Path, progress: impl FnMut(u64)) -> PipelineResult<Analysis> {
    analyze_source(Stream::Here(Decoder::open(path)?), path, progress)
}

/// [`analyze_file`] over decoded audio from anywhere (a sandboxed child's
/// stream); `path` names the file in errors.
pub fn analyze_source(
    mut decoder: Stream,
    path: &Path,
    mut progress: impl FnMut(u64),
) -> PipelineResult<Analysis> {
    let info = decoder.info().clone();
    let mut config = InspectorConfig::new(info.sample_rate, info.layout);
    // Clipping is judged at the source's own full scale; float and lossy sources
    // are judged at 16 bits, the resolution they are usually played at.
    config.clip_bits = match info.bits_per_sample {
        Some(bits) if !info.float => bits.clamp(8, 24),
        _ => 16,
    };
    config.measure_loudness = false;
    let mut overview = OverviewBuilder::new(info.sample_rate, config.clip_bits);
    let mut inspector = Inspector::new(config)?;
    let mut loudness = Loudness::with_parts(
        info.sample_rate,
        info.layout,
        LoudnessHistory::Exact,
        true,
        false,
    )?;
    let mut true_peak = Loudness::with_parts(
        info.sample_rate,
        info.layout,
        LoudnessHistory::Exact,
        false,
        true,
    )?;

    let mut tempo_key = TempoKey::new(info.sample_rate);
    std::thread::scope(|scope| -> PipelineResult<()> {
        let (tx, rx) = mpsc::sync_channel::<Block>(16);
        let true_peak = &mut true_peak;
        let tempo_key = &mut tempo_key;
        let reader = scope.spawn(move || -> PipelineResult<()> {
            while let Some(block) = decoder.take_block()? {
                let shared: Block = Arc::new(block);
                if tx.send(Arc::clone(&shared)).is_err() {
                    break;
                }
                let refs: Vec<&[f32]> = shared.iter().map(Vec::as_slice).collect();
                true_peak.process(&refs);
                tempo_key.process(&refs);
            }
            Ok(())
        });
        for block in rx {
            let refs: Vec<&[f32]> = block.iter().map(Vec::as_slice).collect();
            inspector.process(&refs)?;
            loudness.process(&refs);
            overview.process(&refs);
            overview.loudness(loudness.short_term_now());
            progress(block.first().map_or(0, |c| c.len() as u64));
        }
        match reader.join() {
            Ok(r) => r,
            Err(_) => Err(PipelineError::Internal(format!(
                "{}: the decoder thread failed",
                path.display()
            ))),
        }
    })?;
    let mut report = inspector.report();
    loudness.fill_report(&mut report);
    true_peak.fill_report(&mut report);
    if let Some(t) = tempo_key.tempo() {
        report.bpm = Some((t.bpm * 10.0).round() / 10.0);
        report.beat_offset_s = Some((t.offset_s * 1000.0).round() / 1000.0);
    }
    report.key = tempo_key.key().map(|k| k.to_string());
    Ok(Analysis {
        info,
        report,
        loudness,
        overview: overview.finish(OVERVIEW_COLUMNS),
    })
}
