//! `sonantica analyze FILE...`

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use sonantica_audio::AudioInfo;
use sonantica_meter::{Loudness, Report};

/// Arguments of `sonantica analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Audio files (FLAC, WAV, MP3, Ogg Vorbis, AAC/M4A, ALAC).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Print one JSON object per file (one per line) instead of tables.
    #[arg(long)]
    json: bool,
}

/// One file's results as JSON.
#[derive(Debug, Serialize)]
struct FileJson<'a> {
    path: String,
    codec: &'a str,
    bits_per_sample: Option<u32>,
    layout: String,
    tags: serde_json::Map<String, serde_json::Value>,
    #[serde(flatten)]
    report: &'a Report,
}

pub use sonantica_pipeline::analysis::Analysis;

use sonantica_pipeline::sandbox::Isolation;

/// Runs the command; the exit code is 1 when any file failed.
pub fn run(args: AnalyzeArgs) -> Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let show_progress = std::io::stderr().is_terminal();
    let mut done: Vec<Analysis> = Vec::new();
    let mut failed = 0usize;
    // Each file is decoded by a child process with limits and streamed here:
    // a crafted file that would crash or exhaust the decoder is reported, and
    // the rest go on.
    let sandbox = Isolation::current_exe()?;
    for path in &args.files {
        let bar = progress_bar(&sandbox, path, show_progress);
        let result = sandbox.analyze(path, |frames| {
            if let Some(b) = &bar {
                b.inc(frames);
            }
        });
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        match result {
            Ok(a) => {
                let report = &a.report;
                if args.json {
                    let json = file_json(path, &a.info, report);
                    writeln!(out, "{}", serde_json::to_string(&json)?)?;
                } else {
                    write_table(&mut out, path, &a.info, report)?;
                }
                out.flush()?;
                done.push(a);
            }
            Err(e) => {
                failed += 1;
                // The library errors already name the file.
                let msg = format!("{e:#}");
                if msg.contains(&path.display().to_string()) {
                    eprintln!("error: {msg}");
                } else {
                    eprintln!("error: {}: {msg}", path.display());
                }
            }
        }
    }
    if done.len() > 1 && !args.json {
        write_album(&mut out, &done)?;
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn progress_bar(sandbox: &Isolation, path: &Path, show: bool) -> Option<ProgressBar> {
    if !show {
        return None;
    }
    // Only long files get a bar: the length comes from the header.
    let info = sandbox.probe(path).ok()?;
    let frames = info.frames?;
    if frames < u64::from(info.sample_rate) * 60 {
        return None;
    }
    let bar = ProgressBar::new(frames);
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {percent:>3}% eta {eta}")
        .ok()?
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(
        path.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    Some(bar)
}

fn file_json<'a>(path: &Path, info: &'a AudioInfo, report: &'a Report) -> FileJson<'a> {
    FileJson {
        path: path.display().to_string(),
        codec: &info.codec,
        bits_per_sample: info.bits_per_sample,
        layout: info.layout.to_string(),
        tags: info
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
        report,
    }
}

fn db(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "–".to_string(), |x| format!("{x:.1} {unit}"))
}

fn clock(seconds: f64) -> String {
    let total = seconds.max(0.0);
    let m = (total / 60.0).floor();
    format!("{}:{:04.1}", m as u64, total - m * 60.0)
}

fn write_table(out: &mut impl Write, path: &Path, info: &AudioInfo, r: &Report) -> Result<()> {
    writeln!(out, "{}", path.display())?;
    let bits = info
        .bits_per_sample
        .map(|b| format!(" · {b}-bit"))
        .unwrap_or_default();
    writeln!(
        out,
        "  format     {} · {:.1} kHz{bits} · {} ch ({}) · {}",
        info.codec,
        f64::from(info.sample_rate) / 1000.0,
        info.channels,
        info.layout,
        clock(r.duration_s)
    )?;
    writeln!(
        out,
        "  loudness   {} integrated · LRA {} · max momentary {} · max short-term {}",
        db(r.integrated_lufs, "LUFS"),
        db(r.loudness_range_lu, "LU"),
        db(r.max_momentary_lufs, "LUFS"),
        db(r.max_short_term_lufs, "LUFS"),
    )?;
    let clipping = if r.clip_events == 0 {
        "no clipping".to_string()
    } else {
        format!(
            "clipping: {} events, {} samples",
            r.clip_events, r.clipped_samples
        )
    };
    let tempo = r
        .bpm
        .map_or_else(|| "no steady beat".to_string(), |b| format!("{b:.1} BPM"));
    writeln!(
        out,
        "  music      {tempo} · key {}",
        r.key.as_deref().unwrap_or("–")
    )?;
    writeln!(
        out,
        "  peaks      true peak {} · sample peak {} · {clipping}",
        db(r.true_peak_dbtp, "dBTP"),
        db(r.sample_peak_dbfs, "dBFS"),
    )?;
    let per_channel = r
        .dr_channels
        .iter()
        .map(|d| format!("{d:.1}"))
        .collect::<Vec<_>>()
        .join(" / ");
    writeln!(
        out,
        "  dynamics   DR {} ({per_channel}) · crest {} · RMS {}",
        r.dr.map_or_else(|| "–".to_string(), |d| d.to_string()),
        db(r.crest_factor_db, "dB"),
        db(r.rms_dbfs, "dBFS"),
    )?;
    let corr = |v: Option<f64>| v.map_or_else(|| "–".to_string(), |x| format!("{x:+.2}"));
    let balance = match r.balance {
        Some(b) if b < -0.005 => format!("{:.0}% left", -b * 100.0),
        Some(b) if b > 0.005 => format!("{:.0}% right", b * 100.0),
        Some(_) => "centred".into(),
        None => "–".into(),
    };
    writeln!(
        out,
        "  stereo     correlation {} mean, {} min · width {} · balance {balance}",
        corr(r.correlation),
        corr(r.correlation_min),
        r.width
            .map_or_else(|| "–".to_string(), |w| format!("{:.0}%", w * 100.0)),
    )?;
    writeln!(out)?;
    Ok(())
}

fn write_album(out: &mut impl Write, done: &[Analysis]) -> Result<()> {
    let reports: Vec<&Report> = done.iter().map(|a| &a.report).collect();
    let drs: Vec<i32> = reports.iter().filter_map(|r| r.dr).collect();
    let album_dr = (!drs.is_empty())
        .then(|| (f64::from(drs.iter().sum::<i32>()) / drs.len() as f64).round() as i32);
    let integrated = Loudness::integrated_of(done.iter().map(|a| &a.loudness));
    let lra = Loudness::range_of(done.iter().map(|a| &a.loudness));
    let tp = reports
        .iter()
        .filter_map(|r| r.true_peak_dbtp)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let duration: f64 = reports.iter().map(|r| r.duration_s).sum();
    writeln!(
        out,
        "album ({} files, {}): DR {} · {} integrated · LRA {} · true peak {}",
        done.len(),
        clock(duration),
        album_dr.map_or_else(|| "–".to_string(), |d| d.to_string()),
        db(integrated, "LUFS"),
        db(lra, "LU"),
        db(tp, "dBTP"),
    )?;
    Ok(())
}
