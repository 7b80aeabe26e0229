//! Stems published as they are made: every part equals the finished files
//! sample for sample, a separation started in the middle publishes from there
//! first, and the stems do not depend on where it started.

use std::path::{Path, PathBuf};

use sonantica_audio::{AudioWriter, ChannelLayout, Decoder, OutputFormat};
use sonantica_demucs::{ApplyOptions, Checkpoint, HTDemucs, Separator};
use sonantica_pipeline::separate::{
    separate_file, separate_file_live, ClipMode, LiveStems, SeparateSettings, StemFormat,
};
use sonantica_pipeline::{PipelineError, PipelineResult};

fn separator() -> anyhow::Result<Separator> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../demucs/tests/fixtures/small4.safetensors");
    Ok(Separator::single(HTDemucs::load(
        Checkpoint::load_safetensors(&path)?,
    )?))
}

/// A stereo excerpt beyond full scale (a float file: a sweep, clicks and noise;
/// some stems pass full scale too, so clamping is exercised) at `rate`.
fn write_input(dir: &Path, rate: u32, seconds: f64) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("in-{rate}.wav"));
    let n = (seconds * f64::from(rate)) as usize;
    let mut seed = 7u32;
    let mut noise = move || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    };
    let (mut l, mut r) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let t = i as f64 / f64::from(rate);
        let tone = (2.0 * std::f64::consts::PI * (110.0 + 300.0 * t) * t).sin() as f32;
        let beat = if (t * 4.0).fract() < 0.05 { 0.9 } else { 0.0 };
        l.push(1.8 * tone + beat * noise());
        r.push(1.5 * tone - 0.3 * noise());
    }
    let mut w = AudioWriter::create(
        &path,
        OutputFormat::WavF32,
        rate,
        ChannelLayout::default_for(2),
    )?;
    w.write(&[&l, &r])?;
    w.finish()?;
    Ok(path)
}

/// Collects the published parts into whole stems, in order of arrival; asks
/// for the seconds in `seeks` after as many parts as each says (a listener
/// seeking while the job runs).
#[derive(Default)]
struct Parts {
    starts: Vec<(usize, usize)>,
    stems: Vec<Vec<Vec<f32>>>,
    seeks: Vec<(usize, f64)>,
    /// Parts published when each seek was asked for.
    sought_after: Vec<usize>,
}

impl LiveStems for Parts {
    fn wanted_s(&mut self) -> Option<f64> {
        let (after, s) = *self.seeks.first()?;
        if self.starts.len() < after {
            return None;
        }
        self.seeks.remove(0);
        self.sought_after.push(self.starts.len());
        Some(s)
    }

    fn ready(&mut self, at: usize, block: &[Vec<Vec<f32>>]) -> PipelineResult<()> {
        let n = block[0][0].len();
        self.starts.push((at, n));
        if self.stems.is_empty() {
            self.stems = vec![vec![Vec::new(); block[0].len()]; block.len()];
        }
        for (s, b) in self.stems.iter_mut().zip(block) {
            for (sc, bc) in s.iter_mut().zip(b) {
                if sc.len() < at + n {
                    sc.resize(at + n, f32::NAN);
                }
                sc[at..at + n].copy_from_slice(bc);
            }
        }
        Ok(())
    }
}

fn settings(from_s: Option<f64>) -> SeparateSettings {
    SeparateSettings {
        clip: ClipMode::Clamp,
        apply: ApplyOptions {
            shifts: 1,
            seed: 5,
            ..ApplyOptions::default()
        },
        from_s,
        ..SeparateSettings::default()
    }
}

fn decode(path: &Path) -> anyhow::Result<Vec<Vec<f32>>> {
    Ok(Decoder::read_all(path)?.1)
}

#[test]
fn parts_published_while_separating_equal_the_finished_files_and_start_where_asked(
) -> anyhow::Result<()> {
    let sep = separator()?;
    let dir = tempfile::tempdir()?;
    for rate in [44_100u32, 48_000] {
        let input = write_input(dir.path(), rate, 4.0)?;
        let whole_dir = dir.path().join(format!("whole-{rate}"));
        let whole = separate_file(
            &input,
            &sep,
            &whole_dir,
            &settings(None),
            &mut |_| {},
            &|| false,
        )?;
        let mut parts = Parts::default();
        let from_dir = dir.path().join(format!("from-{rate}"));
        let done = separate_file_live(
            &input,
            &sep,
            &from_dir,
            &settings(Some(2.5)),
            &mut |_| {},
            &|| false,
            &mut parts,
        )?;
        // The first part starts at the requested second, on a whole output
        // frame that falls on a whole model frame, within one grid step.
        let first = parts.starts[0].0;
        let grid = if rate == 44_100 { 1 } else { 160 };
        let asked = (2.5 * f64::from(rate)) as usize;
        assert!(
            first <= asked && asked - first < grid && first % grid == 0,
            "{rate} Hz: first part at frame {first}, asked {asked}"
        );
        assert!(
            parts.starts.iter().any(|&(at, _)| at == 0),
            "the start of the track comes after"
        );
        let clipped = compare(rate, &parts, &done, &whole)?;
        assert!(
            clipped > 0,
            "the test signal drives some stem past full scale"
        );
    }
    Ok(())
}

#[test]
fn publishing_parts_refuses_a_clip_factor_that_needs_the_whole_track() -> anyhow::Result<()> {
    let sep = separator()?;
    let dir = tempfile::tempdir()?;
    let input = write_input(dir.path(), 44_100, 1.0)?;
    let settings = SeparateSettings {
        clip: ClipMode::Rescale,
        format: StemFormat::Flac,
        ..settings(None)
    };
    let r = separate_file_live(
        &input,
        &sep,
        &dir.path().join("out"),
        &settings,
        &mut |_| {},
        &|| false,
        &mut Parts::default(),
    );
    assert!(matches!(r, Err(PipelineError::BadInput(_))), "{r:?}");
    assert!(!dir.path().join("out").join("drums.flac").exists());
    Ok(())
}

/// The frame on the output grid at or before second `s` (44.1 kHz: the
/// model's rate, every frame; 48 kHz: every 160th).
fn on_grid(rate: u32, s: f64) -> usize {
    let grid = if rate == 44_100 { 1 } else { 160 };
    let asked = (s * f64::from(rate)) as usize;
    asked / grid * grid
}

#[test]
fn a_seek_while_separating_moves_the_next_part_there_and_changes_no_sample() -> anyhow::Result<()> {
    let sep = separator()?;
    let dir = tempfile::tempdir()?;
    for rate in [44_100u32, 48_000] {
        let input = write_input(dir.path(), rate, 16.0)?;
        let whole = separate_file(
            &input,
            &sep,
            &dir.path().join(format!("whole-{rate}")),
            &settings(None),
            &mut |_| {},
            &|| false,
        )?;
        // Forward past what the running part would soon reach, then back.
        let mut parts = Parts {
            seeks: vec![(1, 12.0), (6, 6.0)],
            ..Parts::default()
        };
        let mut last = (0, 0);
        let done = separate_file_live(
            &input,
            &sep,
            &dir.path().join(format!("sought-{rate}")),
            &settings(None),
            &mut |p| last = (p.done, p.total),
            &|| false,
            &mut parts,
        )?;
        assert_eq!(parts.sought_after.len(), 2, "both seeks were asked for");
        for (k, want) in [(0, 12.0), (1, 6.0)] {
            let next = parts.starts[parts.sought_after[k]].0;
            assert_eq!(
                next,
                on_grid(rate, want),
                "{rate} Hz: the part after the seek to {want} s starts there (parts {:?})",
                parts.starts
            );
        }
        assert_eq!(last.0, last.1, "progress ends at its total: {last:?}");
        // Every frame published exactly once.
        let frames = whole_len(&whole)?;
        let mut covered = vec![0u8; frames];
        for &(at, n) in &parts.starts {
            covered[at..at + n].iter_mut().for_each(|c| *c += 1);
        }
        assert!(
            covered.iter().all(|&c| c == 1),
            "{rate} Hz: a frame was published {} times or never",
            covered.iter().find(|&&c| c != 1).copied().unwrap_or(1)
        );
        compare(rate, &parts, &done, &whole)?;
    }
    Ok(())
}

fn whole_len(whole: &sonantica_pipeline::separate::Separated) -> anyhow::Result<usize> {
    Ok(decode(&whole.stems[0].1)?[0].len())
}

/// The parts equal the finished files bit for bit, and those equal a run from
/// the start exactly at the model's rate, within the resampler's rounding
/// across the parts' seams otherwise. Returns how many samples sit at full
/// scale (clamped).
fn compare(
    rate: u32,
    parts: &Parts,
    done: &sonantica_pipeline::separate::Separated,
    whole: &sonantica_pipeline::separate::Separated,
) -> anyhow::Result<usize> {
    let mut clipped = 0;
    for (k, (name, path)) in done.stems.iter().enumerate() {
        let file = decode(path)?;
        let whole_file = decode(&whole.stems[k].1)?;
        for c in 0..2 {
            assert_eq!(parts.stems[k][c].len(), file[c].len(), "{rate} {name}");
            let differs = parts.stems[k][c]
                .iter()
                .zip(&file[c])
                .position(|(a, b)| a.to_bits() != b.to_bits());
            assert_eq!(
                differs, None,
                "{rate} Hz {name} ch {c}: the part differs from the file"
            );
            clipped += file[c].iter().filter(|v| v.abs() >= 1.0 - 1e-6).count();
            let worst = file[c]
                .iter()
                .zip(&whole_file[c])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            let tolerance = if rate == 44_100 { 0.0 } else { 1e-5 };
            assert!(
                worst <= tolerance,
                "{rate} Hz {name} ch {c}: {worst} from the stems of a run from the start"
            );
        }
    }
    Ok(clipped)
}
