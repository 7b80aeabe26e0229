//! `sonantica render --stems DIR --out FILE`: mixes a set of stems through the
//! Stem Engine to any layout, the same code the web player runs. The work is
//! `sonantica_server::app::render`, which `POST /api/tracks/{id}/mix` also runs.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use sonantica_audio::{ChannelLayout, OutputFormat};
use sonantica_mix::{MatrixParams, MixSettings, Preset, Source, PRESETS};
use sonantica_pipeline::render::{find_stems, render_mix, Rendered, Span};
use sonantica_pipeline::PipelineError;

use crate::interrupt;

/// Output bit depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BitDepth {
    /// 16-bit integer.
    #[value(name = "16")]
    Int16,
    /// 24-bit integer.
    #[value(name = "24")]
    Int24,
    /// 32-bit float (WAV only).
    #[value(name = "32f")]
    Float32,
}

/// Arguments of `sonantica render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Folder holding the stems as `{source}.flac` or `{source}.wav` (drums, bass,
    /// other, vocals; plus guitar and piano for six-stem sets), as written by
    /// `sonantica separate`.
    #[arg(long, value_name = "DIR")]
    stems: PathBuf,
    /// Output file; the format follows the extension (.flac or .wav).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Speaker layout: mono, stereo, 2.1, 5.1 or 7.1.
    #[arg(long, default_value = "stereo")]
    layout: ChannelLayout,
    /// Focus preset: original, karaoke, acappella, musician, bass-practice, drum-practice.
    #[arg(long, value_parser = parse_preset)]
    preset: Option<&'static Preset>,
    /// Stem gain in dB, applied after the preset (repeatable), e.g. `--gain vocals=-6`.
    #[arg(long, value_name = "SOURCE=DB", value_parser = parse_gain)]
    gain: Vec<(Source, f32)>,
    /// Silence a stem (repeatable).
    #[arg(long, value_name = "SOURCE")]
    mute: Vec<Source>,
    /// Play only the soloed stems (repeatable).
    #[arg(long, value_name = "SOURCE")]
    solo: Vec<Source>,
    /// LFE crossover frequency in Hz (2.1, 5.1, 7.1).
    #[arg(long, value_name = "HZ", default_value_t = 80.0)]
    crossover: f32,
    /// Share of the vocals kept in the front pair for 5.1/7.1 (0 = all in the centre).
    #[arg(long, value_name = "0..1", default_value_t = 0.2)]
    vocal_front_share: f32,
    /// Level of the decorrelated surrounds for 5.1/7.1 (linear, 1 = default).
    #[arg(long, value_name = "GAIN", default_value_t = 1.0)]
    surround_level: f32,
    /// Delay of the left surround in ms for 5.1/7.1 (right +4.3 ms, 7.1 backs +6 ms).
    #[arg(long, value_name = "MS", default_value_t = 15.0)]
    surround_delay_ms: f32,
    /// Level of the LFE channel (linear, 1 = default).
    #[arg(long, value_name = "GAIN", default_value_t = 1.0)]
    lfe_gain: f32,
    /// High-pass the main channels at the crossover (bass management).
    #[arg(long)]
    mains_highpass: bool,
    /// Tempo, 0.5 to 1.5, without changing the pitch (0.8 plays at 80 %).
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0)]
    tempo: f64,
    /// Transpose by this many semitones, -12 to +12, without changing the tempo
    /// (a fraction is cents: -0.5 is 50 cents down).
    #[arg(
        long,
        value_name = "SEMITONES",
        default_value_t = 0.0,
        allow_hyphen_values = true
    )]
    transpose: f64,
    /// Render from this time of the track, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
    start: f64,
    /// Render up to this time of the track, in seconds (default: its end).
    #[arg(long, value_name = "SECONDS")]
    end: Option<f64>,
    /// Bit depth of the output.
    #[arg(long, value_enum, default_value = "24")]
    bit_depth: BitDepth,
}

/// " · tempo 0.80 · -2 semitones" for a render that changes them.
fn practice_note(settings: &MixSettings) -> String {
    let mut note = String::new();
    if settings.tempo != 1.0 {
        note += &format!(" · tempo {:.2}", settings.tempo);
    }
    if settings.transpose != 0.0 {
        note += &format!(" · {:+} semitones", settings.transpose);
    }
    note
}

fn parse_preset(s: &str) -> Result<&'static Preset, String> {
    Preset::by_id(s).ok_or_else(|| {
        let ids: Vec<&str> = PRESETS.iter().map(|p| p.id).collect();
        format!("unknown preset {s:?}: expected one of {}", ids.join(", "))
    })
}

fn parse_gain(s: &str) -> Result<(Source, f32), String> {
    let (name, db) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected SOURCE=DB, e.g. vocals=-6"))?;
    let source: Source = name.parse().map_err(|e| format!("{e}"))?;
    let db = match db.trim() {
        "-inf" | "off" => f32::NEG_INFINITY,
        v => v
            .parse::<f32>()
            .map_err(|_| format!("{s:?}: {v:?} is not a number of dB"))?,
    };
    Ok((source, db))
}

fn output_format(path: &Path, depth: BitDepth) -> Result<OutputFormat> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    Ok(match (ext.as_deref(), depth) {
        (Some("flac"), BitDepth::Int16) => OutputFormat::Flac16,
        (Some("flac"), BitDepth::Int24) => OutputFormat::Flac24,
        (Some("flac"), BitDepth::Float32) => {
            bail!("FLAC cannot hold 32-bit float samples; write a .wav for --bit-depth 32f")
        }
        (Some("wav"), BitDepth::Int16) => OutputFormat::Wav16,
        (Some("wav"), BitDepth::Int24) => OutputFormat::Wav24,
        (Some("wav"), BitDepth::Float32) => OutputFormat::WavF32,
        _ => bail!("{}: the output must end in .flac or .wav", path.display()),
    })
}

/// Runs the command.
pub fn run(args: RenderArgs) -> Result<()> {
    let format = output_format(&args.out, args.bit_depth)?;
    if format.extension() == "flac" && args.layout.channels() > 8 {
        bail!("FLAC holds at most 8 channels");
    }
    let stems = find_stems(&args.stems)?;
    // The same description of a mix the Studio plays and `POST /mix` renders.
    let settings = MixSettings {
        layout: args.layout,
        preset: args.preset,
        gains_db: args.gain.clone(),
        mute: args.mute.clone(),
        solo: args.solo.clone(),
        params: MatrixParams {
            crossover_hz: args.crossover,
            vocal_front_share: args.vocal_front_share,
            surround_level: args.surround_level,
            surround_delay_ms: args.surround_delay_ms,
            lfe_gain: args.lfe_gain,
            mains_highpass: args.mains_highpass,
            ..MatrixParams::default()
        },
        tempo: args.tempo,
        transpose: args.transpose,
    };
    let span = Span {
        start_s: args.start,
        end_s: args.end,
    };
    span.check().map_err(anyhow::Error::msg)?;
    // Checked before any work, naming the folder (the render checks again).
    let sources: Vec<Source> = stems.iter().map(|(s, _)| *s).collect();
    settings
        .check(&sources)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.stems.display()))?;
    let mut bar: Option<ProgressBar> = None;
    let result = render_mix(
        &stems,
        &args.out,
        &settings,
        span,
        format,
        &[],
        &mut |done, total| {
            if bar.is_none() {
                bar = progress(total);
            }
            if let Some(b) = &bar {
                b.set_position(done);
            }
        },
        &interrupt::interrupted,
    );
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let Rendered {
        frames,
        sample_rate: rate,
        clipped,
        peak,
    } = match result {
        Err(PipelineError::Cancelled) => return Err(interrupt::Interrupted.into()),
        r => r?,
    };
    let seconds = frames as f64 / f64::from(rate);
    eprintln!(
        "wrote {}: {} · {} · {:.1} s{}",
        args.out.display(),
        args.layout,
        match format {
            OutputFormat::Flac16 => "16-bit FLAC",
            OutputFormat::Flac24 => "24-bit FLAC",
            OutputFormat::Wav16 => "16-bit WAV",
            OutputFormat::Wav24 => "24-bit WAV",
            OutputFormat::WavF32 => "32-bit float WAV",
        },
        seconds,
        args.preset
            .map(|p| format!(" · {}", p.name))
            .unwrap_or_default()
            + &practice_note(&settings)
    );
    if clipped > 0 && format.is_integer() {
        eprintln!(
            "warning: {clipped} samples clipped (peak {:+.1} dBFS); lower the gains or write --bit-depth 32f to a .wav",
            20.0 * peak.log10()
        );
    }
    Ok(())
}

fn progress(total: Option<u64>) -> Option<ProgressBar> {
    let total = total?;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("rendering [{bar:30}] {percent:>3}% eta {eta}")
            .ok()?
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}
