//! `sonantica separate INPUT --model MODEL --out DIR`: HTDemucs stem separation.
//!
//! The input is decoded, resampled to the model rate and converted to its channel
//! count into a temporary file (so a long track never sits in memory), normalised
//! as the reference CLI does, separated segment by segment, and each finished
//! block is brought back to the input rate and staged as float. The stems are
//! encoded at the end, when the common clipping factor is known, each to a
//! temporary name that is renamed into place only when every stem is complete.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use sonantica_audio::{AudioWriter, ChannelLayout, Decoder, OutputFormat, Resampler, Speaker};
use sonantica_demucs::{load_separator, ApplyOptions, DemucsError, MixSource, Separator};

use crate::{interrupt, models};

/// Output file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StemFormat {
    /// 24-bit FLAC.
    Flac,
    /// 16-bit WAV.
    Wav,
    /// 32-bit float WAV (never clips).
    #[value(name = "wav-f32")]
    WavF32,
}

/// What to do with samples beyond full scale in integer formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClipMode {
    /// Divide all stems by one common factor, keeping their relative levels and sum.
    Rescale,
    /// Clamp each sample to full scale.
    Clamp,
    /// Write as is (integer formats then clamp).
    None,
}

/// Arguments of `sonantica separate`.
#[derive(Debug, Args)]
pub struct SeparateArgs {
    /// Audio file to separate (any format `analyze` reads).
    #[arg(value_name = "INPUT")]
    input: PathBuf,
    /// Model: htdemucs, htdemucs_ft, htdemucs_6s (from the model store) or a path to a
    /// .safetensors, .th or bag .yaml file.
    #[arg(long, default_value = "htdemucs")]
    model: String,
    /// Output folder; stems are written as DIR/{source}.{ext}.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "flac")]
    format: StemFormat,
    /// Random time shifts averaged (0: deterministic; more: slower, slightly better).
    #[arg(long, default_value_t = 1)]
    shifts: usize,
    /// Overlap between segments (0..1).
    #[arg(long, default_value_t = 0.25)]
    overlap: f64,
    /// Seed of the shift RNG.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Write only these stems, comma-separated (e.g. vocals,drums).
    #[arg(long, value_delimiter = ',', conflicts_with = "two_stems")]
    stems: Vec<String>,
    /// Write SOURCE and no_SOURCE (the sum of the others).
    #[arg(long, value_name = "SOURCE")]
    two_stems: Option<String>,
    /// Clipping in integer formats.
    #[arg(long, value_enum, default_value = "rescale")]
    clip: ClipMode,
    /// Write stems at the model's sample rate instead of the input's.
    #[arg(long)]
    keep_model_rate: bool,
    /// Model store folder (default: $SONANTICA_MODELS or ~/.local/share/sonantica/models).
    #[arg(long, value_name = "DIR")]
    models_dir: Option<PathBuf>,
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
    file: BufWriter<File>,
    frames: usize,
    peak: f32,
}

/// Runs the command.
pub fn run(args: SeparateArgs) -> Result<()> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 {
        bail!("--threads must be at least 1");
    }
    sonantica_demucs::ops::set_threads(threads);
    if !(0.0..1.0).contains(&args.overlap) {
        bail!("--overlap must be at least 0 and below 1");
    }
    let store = models::store_dir(args.models_dir.as_deref());
    let model_path = models::resolve(&args.model, &store)?;
    let separator = load_separator(&model_path)?;
    let sources: Vec<String> = separator.sources().to_vec();
    let wanted: Vec<String> = if let Some(two) = &args.two_stems {
        if !sources.contains(two) {
            bail!(
                "--two-stems {two}: the model's sources are {}",
                sources.join(", ")
            );
        }
        vec![two.clone(), format!("no_{two}")]
    } else if args.stems.is_empty() {
        sources.clone()
    } else {
        for s in &args.stems {
            if !sources.contains(s) {
                bail!(
                    "--stems {s}: the model's sources are {}",
                    sources.join(", ")
                );
            }
        }
        args.stems.clone()
    };

    // Pass 1: decode, convert to the model's rate and channels, stage to a temp
    // file, and measure the mean and spread of the mono mix for normalisation.
    let mut decoder = Decoder::open(&args.input)?;
    let info = decoder.info().clone();
    let model_rate = separator.samplerate();
    let model_ch = separator.audio_channels();
    let mut resampler = Resampler::new(info.sample_rate, model_rate, model_ch)?;
    let mut mix_file = tempfile::tempfile().context("cannot create a temporary file")?;
    let mut staged = BufWriter::new(&mut mix_file);
    let (mut frames, mut sum, mut sum_sq) = (0usize, 0f64, 0f64);
    let mut converted = vec![Vec::new(); model_ch];
    let mut resampled = vec![Vec::new(); model_ch];
    let mut write_frames =
        |planes: &mut [Vec<f32>], staged: &mut BufWriter<&mut File>| -> Result<()> {
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
    while let Some(block) = decoder.next_block()? {
        if interrupt::interrupted() {
            return Err(interrupt::Interrupted.into());
        }
        to_model_channels(block, info.layout, model_ch, &mut converted);
        resampler.process(&converted, &mut resampled)?;
        write_frames(&mut resampled, &mut staged).context("writing the temporary mix")?;
    }
    resampler.finish(&mut resampled)?;
    write_frames(&mut resampled, &mut staged).context("writing the temporary mix")?;
    staged.flush().context("writing the temporary mix")?;
    drop(staged);
    if frames < 2 {
        bail!("{}: too short to separate", args.input.display());
    }
    let mean = sum / frames as f64;
    let var = ((sum_sq - frames as f64 * mean * mean) / (frames as f64 - 1.0)).max(0.0);
    let std = var.sqrt() + 1e-8;
    let input_frames = decoder.frames_decoded() as usize;
    let mut mix = TempMix {
        file: mix_file,
        frames,
        channels: model_ch,
        mean,
        std,
        raw: Vec::new(),
    };

    // Pass 2: separate, denormalise, back to the output rate, stage as f32.
    let out_rate = if args.keep_model_rate {
        model_rate
    } else {
        info.sample_rate
    };
    let out_frames = if args.keep_model_rate {
        frames
    } else {
        input_frames
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create the folder", args.out.display()))?;
    let mut stages: Vec<Stage> = Vec::new();
    for name in &wanted {
        stages.push(Stage {
            name: name.clone(),
            file: BufWriter::new(
                tempfile::tempfile_in(&args.out).or_else(|_| tempfile::tempfile())?,
            ),
            frames: 0,
            peak: 0.0,
        });
    }
    let mut back: Vec<Resampler> = wanted
        .iter()
        .map(|_| Resampler::new(model_rate, out_rate, model_ch))
        .collect::<Result<_, _>>()?;
    let opts = ApplyOptions {
        shifts: args.shifts,
        overlap: args.overlap,
        seed: args.seed,
        ..ApplyOptions::default()
    };
    let bar = progress_bar(&separator, frames, &opts);
    let started = Instant::now();
    let mut stem_buf: Vec<Vec<f32>> = vec![Vec::new(); model_ch];
    let mut outs: Vec<Vec<Vec<f32>>> = vec![vec![Vec::new(); model_ch]; wanted.len()];
    let mut write_err: Option<anyhow::Error> = None;
    let result = separator.apply_stream(
        &mut mix,
        &opts,
        &mut |p| {
            if let Some(b) = &bar {
                b.set_length(p.total as u64);
                b.set_position(p.done as u64);
            }
            !interrupt::interrupted()
        },
        &mut |block| {
            let r = (|| -> Result<()> {
                for (w, name) in wanted.iter().enumerate() {
                    // The stem (or the sum of the others for no_SOURCE), denormalised.
                    for (c, buf) in stem_buf.iter_mut().enumerate() {
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
                    back[w].process(&stem_buf, &mut outs[w])?;
                    stage(&mut stages[w], &mut outs[w], out_frames)?;
                }
                Ok(())
            })();
            r.map_err(|e| {
                let msg = format!("{e:#}");
                write_err = Some(e);
                DemucsError::Input(msg)
            })
        },
    );
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    match result {
        Err(DemucsError::Cancelled) => return Err(interrupt::Interrupted.into()),
        Err(e) => return Err(write_err.unwrap_or_else(|| e.into())),
        Ok(()) => {}
    }
    for (w, r) in back.iter_mut().enumerate() {
        r.finish(&mut outs[w])?;
        stage(&mut stages[w], &mut outs[w], out_frames)?;
    }

    // Pass 3: encode with one common clipping factor.
    let peak = stages.iter().map(|s| s.peak).fold(0.0f32, f32::max);
    let (format, ext) = match args.format {
        StemFormat::Flac => (OutputFormat::Flac24, "flac"),
        StemFormat::Wav => (OutputFormat::Wav16, "wav"),
        StemFormat::WavF32 => (OutputFormat::WavF32, "wav"),
    };
    let factor = if format.is_integer() && args.clip == ClipMode::Rescale {
        (1.01 * peak).max(1.0)
    } else {
        1.0
    };
    let layout = ChannelLayout::default_for(model_ch);
    let mut writers = Vec::new();
    for s in &mut stages {
        let path = args.out.join(format!("{}.{ext}", s.name));
        let mut w = AudioWriter::create(&path, format, out_rate, layout)?;
        copy_stage(
            s,
            out_frames,
            model_ch,
            factor,
            args.clip == ClipMode::Clamp,
            &mut w,
        )
        .with_context(|| format!("writing {}", path.display()))?;
        writers.push((w, path));
    }
    let mut written = Vec::new();
    for (w, path) in writers {
        w.finish()?;
        written.push(path);
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "separated {} ({:.1} s of audio) in {:.1} s with {}: {}",
        args.input.display(),
        out_frames as f64 / f64::from(out_rate),
        secs,
        model_path.display(),
        written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if factor > 1.0 {
        eprintln!(
            "note: stems were scaled by {:.2} dB to avoid clipping (--clip rescale)",
            -20.0 * factor.log10()
        );
    }
    Ok(())
}

/// Appends finished output to a stage, up to `limit` frames.
fn stage(s: &mut Stage, planes: &mut [Vec<f32>], limit: usize) -> Result<()> {
    let n = planes.first().map_or(0, Vec::len);
    let take = n.min(limit.saturating_sub(s.frames));
    for i in 0..take {
        for p in planes.iter() {
            s.peak = s.peak.max(p[i].abs());
            s.file
                .write_all(&p[i].to_le_bytes())
                .context("writing a temporary stem")?;
        }
    }
    s.frames += take;
    for p in planes.iter_mut() {
        p.clear();
    }
    Ok(())
}

/// Encodes a staged stem, padding with silence to exactly `frames`.
fn copy_stage(
    s: &mut Stage,
    frames: usize,
    channels: usize,
    factor: f32,
    clamp: bool,
    w: &mut AudioWriter,
) -> Result<()> {
    s.file.flush()?;
    let file = s.file.get_mut();
    file.seek(SeekFrom::Start(0))?;
    let mut reader = std::io::BufReader::new(file);
    const BLOCK: usize = 4096;
    let mut raw = vec![0u8; BLOCK * channels * 4];
    let mut planes = vec![Vec::with_capacity(BLOCK); channels];
    let mut done = 0;
    while done < frames {
        let n = BLOCK.min(frames - done);
        let available = n.min(s.frames.saturating_sub(done));
        reader.read_exact(&mut raw[..available * channels * 4])?;
        for p in planes.iter_mut() {
            p.clear();
        }
        for frame in raw[..available * channels * 4].chunks_exact(channels * 4) {
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

fn progress_bar(sep: &Separator, frames: usize, opts: &ApplyOptions) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(sep.passes(frames, opts) as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "separating [{bar:30}] {percent:>3}% eta {eta} ({pos}/{len} segments)",
        )
        .ok()?
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(250));
    Some(bar)
}
