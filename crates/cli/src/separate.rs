//! `sonantica separate INPUT --model MODEL --out DIR`: HTDemucs stem separation.
//! The work is `sonantica_server::app::separate`, the same code the server's job
//! workers run; this module is the command line around it.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use sonantica_demucs::gpu::DeviceChoice;
use sonantica_demucs::{load_separator, ApplyOptions};
use sonantica_pipeline::separate::{self, SeparateSettings, StemSelection};
use sonantica_pipeline::PipelineError;

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
    /// Clipping in integer formats. With clamp (the station's choice too) or
    /// none, the stem files grow as the separation goes; rescale needs the
    /// whole track's peak, so its stems are written at the end.
    #[arg(long, value_enum, default_value = "clamp")]
    clip: ClipMode,
    /// Write stems at the model's sample rate instead of the input's.
    #[arg(long)]
    keep_model_rate: bool,
    /// Where the network runs: auto (a hardware GPU if there is one, else the
    /// CPU), cpu, or gpu (any GPU, Mesa's software lavapipe included).
    #[arg(long, env = "SONANTICA_DEVICE", default_value = "auto", value_parser = parse_device)]
    device: DeviceChoice,
    /// Model store folder (default: $SONANTICA_MODELS or ~/.local/share/sonantica/models).
    #[arg(long, value_name = "DIR")]
    models_dir: Option<PathBuf>,
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
    let mut separator = load_separator(&model_path)?;
    let gpu = args
        .device
        .open()
        .with_context(|| format!("--device {}", args.device))?;
    if let Some(gpu) = &gpu {
        separator.use_gpu(gpu)?;
    }
    let settings = SeparateSettings {
        format: match args.format {
            StemFormat::Flac => separate::StemFormat::Flac,
            StemFormat::Wav => separate::StemFormat::Wav,
            StemFormat::WavF32 => separate::StemFormat::WavF32,
        },
        clip: match args.clip {
            ClipMode::Rescale => separate::ClipMode::Rescale,
            ClipMode::Clamp => separate::ClipMode::Clamp,
            ClipMode::None => separate::ClipMode::None,
        },
        keep_model_rate: args.keep_model_rate,
        apply: ApplyOptions {
            shifts: args.shifts,
            overlap: args.overlap,
            seed: args.seed,
            ..ApplyOptions::default()
        },
        stems: if let Some(two) = &args.two_stems {
            StemSelection::TwoStems(two.clone())
        } else if args.stems.is_empty() {
            StemSelection::All
        } else {
            StemSelection::Only(args.stems.clone())
        },
        // The user's own file, decoded here (as the reference CLI does).
        decode_in: sonantica_pipeline::sandbox::Isolation::InProcess,
        from_s: None,
    };
    // Check the stem names before the long work starts.
    separate::wanted_stems(separator.sources(), &settings.stems).map_err(|e| {
        match &settings.stems {
            StemSelection::TwoStems(two) => anyhow::anyhow!("--two-stems {two}: {e}"),
            StemSelection::Only(list) => {
                let bad = list
                    .iter()
                    .find(|s| !separator.sources().contains(s))
                    .map_or("", String::as_str);
                anyhow::anyhow!("--stems {bad}: {e}")
            }
            StemSelection::All => e.into(),
        }
    })?;
    let bar = progress_bar();
    let started = Instant::now();
    let result = separate::separate_file(
        &args.input,
        &separator,
        &args.out,
        &settings,
        &mut |p| {
            crate::alloc::release_freed();
            if let Some(b) = &bar {
                b.set_length(p.total as u64);
                b.set_position(p.done as u64);
            }
        },
        &interrupt::interrupted,
    );
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let done = match result {
        Err(PipelineError::Cancelled) => return Err(interrupt::Interrupted.into()),
        r => r?,
    };
    eprintln!(
        "separated {} ({:.1} s of audio) in {:.1} s with {}: {}",
        args.input.display(),
        done.seconds,
        started.elapsed().as_secs_f64(),
        model_path.display(),
        done.stems
            .iter()
            .map(|(_, p)| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    eprintln!(
        "device: {}",
        gpu.as_ref().map_or_else(
            || format!("CPU ({threads} threads)"),
            |g| format!(
                "{} (tensors took at most {} MB)",
                g.adapter(),
                g.memory().1.div_ceil(1 << 20)
            )
        )
    );
    if let Some(why) = separator.gpu_failure() {
        eprintln!("note: the GPU failed ({why}); the rest ran on the CPU");
    }
    if let Some(first) = done.first_final_s {
        eprintln!("the first stems were final after {first:.1} s");
    }
    if done.rescale > 1.0 {
        eprintln!(
            "note: stems were scaled by {:.2} dB to avoid clipping (--clip rescale)",
            -20.0 * done.rescale.log10()
        );
    }
    Ok(())
}

/// `--device` as clap reads it.
pub(crate) fn parse_device(s: &str) -> Result<DeviceChoice, String> {
    s.parse()
        .map_err(|e: sonantica_demucs::DemucsError| e.to_string())
}

fn progress_bar() -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(1);
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
