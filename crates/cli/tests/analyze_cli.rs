//! `sonantica analyze` run as a user runs it: the real binary on real files.

mod common;
use common::*;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;
use sonantica_testkit::oracle::{ffmpeg, ffmpeg_log};

/// 20 s of music-like stereo: pink noise with a slow tremolo plus a tone, at a
/// level that gives real loudness range and a few true-peak overs.
fn program(dir: &Path, name: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "anoisesrc=color=pink:sample_rate=44100:duration=20:amplitude=0.5:seed=42",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=330:sample_rate=44100:duration=20",
        "-filter_complex",
        "[0]tremolo=f=0.3:d=0.7[n];[n][1]amerge=inputs=2,volume=0.9[a]",
        "-map",
        "[a]",
        "-c:a",
        "flac",
        path.to_str().context("utf-8 path")?,
    ])?;
    Ok(path)
}

fn field(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing or not a number in {v}"))
}

/// Reads I, LRA and true peak from ffmpeg's ebur128 summary.
fn ffmpeg_ebur128(path: &Path) -> Result<(f64, f64, f64)> {
    let log = ffmpeg_log(&[
        "-i",
        path.to_str().context("utf-8")?,
        "-af",
        "ebur128=peak=true",
        "-f",
        "null",
        "-",
    ])?;
    let summary = log.rsplit("Summary:").next().context("no summary")?;
    let grab = |label: &str| -> Result<f64> {
        let line = summary
            .lines()
            .find(|l| l.trim_start().starts_with(label))
            .context("label")?;
        Ok(line.split_whitespace().nth(1).context("value")?.parse()?)
    };
    Ok((grab("I:")?, grab("LRA:")?, grab("Peak:")?))
}

#[test]
fn json_output_has_every_documented_key_and_agrees_with_ffmpeg_ebur128() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = program(dir.path(), "program.flac")?;
    let out =
        sonantica_cmd(&["analyze", "--json", path.to_str().context("utf-8")?]).assert_success();
    let text = String::from_utf8(out.stdout)?;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON object per file");
    let v: Value = serde_json::from_str(lines[0])?;
    for key in [
        "path",
        "sample_rate",
        "channels",
        "duration_s",
        "integrated_lufs",
        "loudness_range_lu",
        "true_peak_dbtp",
        "sample_peak_dbfs",
        "dr",
        "crest_factor_db",
        "correlation",
        "width",
        "clipped_samples",
        "clip_events",
        "bpm",
        "beat_offset_s",
        "key",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["sample_rate"], 44_100);
    assert_eq!(v["channels"], 2);
    assert!((field(&v, "duration_s") - 20.0).abs() < 1e-9);

    // ffmpeg's ebur128 filter is an independent implementation of BS.1770.
    let (i, lra, tp) = ffmpeg_ebur128(&path)?;
    assert!(
        (field(&v, "integrated_lufs") - i).abs() <= 0.1,
        "I {} vs ffmpeg {i}",
        v["integrated_lufs"]
    );
    assert!(
        (field(&v, "loudness_range_lu") - lra).abs() <= 0.2,
        "LRA {} vs ffmpeg {lra}",
        v["loudness_range_lu"]
    );
    assert!(
        (field(&v, "true_peak_dbtp") - tp).abs() <= 0.2,
        "TP {} vs ffmpeg {tp}",
        v["true_peak_dbtp"]
    );
    // A tone in one channel and noise in the other are uncorrelated.
    assert!(
        field(&v, "correlation").abs() < 0.1,
        "correlation {}",
        v["correlation"]
    );
    Ok(())
}

#[test]
fn bad_files_get_one_line_errors_and_the_rest_are_still_analysed() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let good = program(d, "good.flac")?;
    let empty = d.join("empty.wav");
    std::fs::write(&empty, b"")?;
    let text = d.join("readme.flac");
    std::fs::write(&text, "not audio at all\n".repeat(100))?;
    let truncated = d.join("truncated.flac");
    let bytes = std::fs::read(&good)?;
    std::fs::write(&truncated, &bytes[..bytes.len() / 3])?;
    let missing = d.join("missing.ogg");

    let args: Vec<String> = [&empty, &good, &text, &truncated, &missing]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut argv = vec!["analyze", "--json"];
    argv.extend(args.iter().map(String::as_str));
    // Non-zero exit when a file fails.
    let out = sonantica_cmd(&argv).assert_exit_code(1);
    let stdout = String::from_utf8(out.stdout)?;
    let stderr = String::from_utf8(out.stderr)?;
    assert_eq!(
        stdout.lines().count(),
        1,
        "the good file is still analysed: {stdout}"
    );
    assert!(stdout.contains("good.flac"));
    let errors: Vec<&str> = stderr.lines().collect();
    assert_eq!(errors.len(), 4, "one line per bad file: {stderr}");
    for (name, reason) in [
        ("empty.wav", "empty"),
        ("readme.flac", "not"),
        ("truncated.flac", "truncated"),
        ("missing.ogg", "No such file"),
    ] {
        let line = errors
            .iter()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no error for {name}"));
        assert!(line.starts_with("error: "), "{line}");
        assert!(line.contains(reason), "{name}: {line}");
    }
    Ok(())
}

#[test]
fn table_output_shows_each_file_and_an_album_line() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let a = program(dir.path(), "a.flac")?;
    let b = dir.path().join("b.wav");
    ffmpeg(&[
        "-i",
        a.to_str().context("utf-8")?,
        "-af",
        "volume=-6dB",
        "-c:a",
        "pcm_s24le",
        b.to_str().context("utf-8")?,
    ])?;
    let out = sonantica_cmd(&[
        "analyze",
        a.to_str().context("utf-8")?,
        b.to_str().context("utf-8")?,
    ])
    .assert_success();
    let text = String::from_utf8(out.stdout)?;
    for needle in [
        "a.flac",
        "b.wav",
        "LUFS integrated",
        "true peak",
        "DR ",
        "correlation",
        "album (2 files, 0:40.0)",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    Ok(())
}

#[test]
fn a_generated_song_reports_its_tempo_beat_grid_and_key() -> Result<()> {
    use sonantica_audio::{AudioWriter, ChannelLayout, OutputFormat};
    // 24 s: noise-burst drums at 128 BPM from 0.25 s, over D minor chords
    // (i, iv, V, i; one bar each).
    let rate = 44_100usize;
    let n = 24 * rate;
    let bpm = 128.0;
    let beat = 60.0 / bpm;
    let mut rng = sonantica_testkit::signal::XorShift64::seeded(7);
    let noise = rng.centred_noise(n, 1.0);
    let chords: [[i32; 4]; 4] = [
        [50, 62, 65, 69],
        [55, 67, 70, 74],
        [57, 69, 73, 76],
        [50, 62, 65, 69],
    ];
    let x: Vec<f32> = (0..n)
        .map(|i| {
            let t = i as f64 / rate as f64;
            let since = (t - 0.25).rem_euclid(beat);
            let drum = if t >= 0.25 && since < 0.01 {
                0.5 * f64::from(noise[i])
            } else {
                0.0
            };
            let bar = ((t / (4.0 * beat)) as usize) % 4;
            let tones: f64 = chords[bar]
                .iter()
                .map(|&m| {
                    let f = 440.0 * 2f64.powf(f64::from(m - 69) / 12.0);
                    (std::f64::consts::TAU * f * t).sin() * 0.06
                })
                .sum();
            (drum + tones) as f32
        })
        .collect();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("song.flac");
    let mut w = AudioWriter::create(&path, OutputFormat::Flac24, 44_100, ChannelLayout::Stereo)?;
    w.write(&[&x, &x])?;
    w.finish()?;
    let out = sonantica_cmd(&["analyze", "--json", s(&path)]).assert_success();
    let v: Value = serde_json::from_str(String::from_utf8(out.stdout)?.trim())?;
    let got = field(&v, "bpm");
    assert!((got - bpm).abs() <= 1.0, "bpm {got}, expected {bpm} ± 1");
    let offset = field(&v, "beat_offset_s");
    let d = (offset - 0.25).rem_euclid(beat);
    assert!(
        d.min(beat - d) < 0.015,
        "beat grid at {offset} s misses the drums at 0.25 s"
    );
    assert_eq!(v["key"], "D minor");
    let table = sonantica_cmd(&["analyze", s(&path)]).assert_success();
    let text = String::from_utf8(table.stdout)?;
    assert!(text.contains("128.0 BPM · key D minor"), "{text}");
    Ok(())
}
