//! `sonantica render` run as a user runs it.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;

use anyhow::Result;
use sonantica_audio::{AudioWriter, ChannelLayout, Decoder, OutputFormat};
use sonantica_testkit::oracle::ffprobe_layout;
use sonantica_testkit::signal::XorShift64;

const NAMES: [&str; 4] = ["drums", "bass", "other", "vocals"];

/// Noise in [-0.2, 0.2).
fn noise(n: usize, seed: u64) -> Vec<f32> {
    XorShift64::seeded(seed).centred_noise(n, 0.4)
}

/// Writes a four-stem set of independent stereo noise (24-bit FLAC).
fn make_stems(dir: &Path, frames: usize, rate: u32) -> Result<()> {
    for (k, name) in NAMES.iter().enumerate() {
        let l = noise(frames, 2 * k as u64 + 1);
        let r = noise(frames, 2 * k as u64 + 2);
        let mut w = AudioWriter::create(
            &dir.join(format!("{name}.flac")),
            OutputFormat::Flac24,
            rate,
            ChannelLayout::Stereo,
        )?;
        w.write(&[&l, &r])?;
        w.finish()?;
    }
    Ok(())
}

/// The arguments `render --stems STEMS --out OUT EXTRA...`.
fn render_args<'a>(stems: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["render", "--stems", s(stems), "--out", s(out)];
    args.extend_from_slice(extra);
    args
}

fn stems_of(dir: &Path) -> Result<Vec<Vec<Vec<f32>>>> {
    NAMES
        .iter()
        .map(|n| Ok(Decoder::read_all(dir.join(format!("{n}.flac")))?.1))
        .collect()
}

#[test]
fn stereo_render_is_the_sum_and_karaoke_drops_the_vocals() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let stems_dir = dir.path().join("stems");
    std::fs::create_dir(&stems_dir)?;
    make_stems(&stems_dir, 30_000, 44_100)?;
    let stems = stems_of(&stems_dir)?;
    for (preset, keep) in [
        ("original", vec![0, 1, 2, 3]),
        ("karaoke", vec![0, 1, 2]),
        ("acappella", vec![3]),
    ] {
        let out = dir.path().join(format!("{preset}.wav"));
        sonantica_cmd(&render_args(
            &stems_dir,
            &out,
            &["--preset", preset, "--bit-depth", "32f"],
        ))
        .assert_success();
        let (info, mix) = Decoder::read_all(&out)?;
        assert_eq!(info.channels, 2);
        assert_eq!(info.sample_rate, 44_100);
        for ch in 0..2 {
            assert_eq!(mix[ch].len(), 30_000);
            for i in 0..30_000 {
                let want = keep.iter().fold(0.0f32, |a, &k| a + stems[k][ch][i]);
                assert_eq!(
                    mix[ch][i].to_bits(),
                    want.to_bits(),
                    "{preset} ch {ch} frame {i}"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn multichannel_renders_carry_their_layout_and_the_centre_carries_the_vocals() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let stems_dir = dir.path().join("stems");
    std::fs::create_dir(&stems_dir)?;
    make_stems(&stems_dir, 44_100, 48_000)?;
    let vocals = &stems_of(&stems_dir)?[3];
    let mid: Vec<f32> = vocals[0]
        .iter()
        .zip(&vocals[1])
        .map(|(l, r)| 0.5 * (l + r))
        .collect();
    for (layout, ext, want) in [
        ("mono", "flac", "mono"),
        ("2.1", "flac", "2.1"),
        ("5.1", "flac", "5.1"),
        ("7.1", "flac", "7.1"),
        ("5.1", "wav", "5.1"),
        ("7.1", "wav", "7.1"),
    ] {
        let out = dir.path().join(format!("mix-{layout}.{ext}"));
        sonantica_cmd(&render_args(&stems_dir, &out, &["--layout", layout])).assert_success();
        assert_eq!(ffprobe_layout(&out)?.0, want, "{layout} .{ext}");
        if layout == "5.1" || layout == "7.1" {
            let (_, ch) = Decoder::read_all(&out)?;
            // Channel 3 (FC in WAVE order) holds the vocals' mid.
            let dot: f64 = ch[2]
                .iter()
                .zip(&mid)
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            let ea: f64 = ch[2].iter().map(|a| f64::from(*a).powi(2)).sum();
            let eb: f64 = mid.iter().map(|b| f64::from(*b).powi(2)).sum();
            let rho = dot / (ea * eb).sqrt();
            assert!(
                rho > 0.999,
                "{layout}: centre vs vocal mid correlation {rho:.5}"
            );
        }
    }
    Ok(())
}

#[test]
fn bad_stem_sets_and_options_are_clear_errors_that_leave_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let stems_dir = dir.path().join("stems");
    std::fs::create_dir(&stems_dir)?;
    make_stems(&stems_dir, 10_000, 44_100)?;
    let outdir = dir.path().join("out");
    std::fs::create_dir(&outdir)?;
    let out = outdir.join("mix.flac");
    let check = |extra: &[&str], needle: &str| -> Result<()> {
        let o = sonantica_cmd(&render_args(&stems_dir, &out, extra)).assert_exit_code(2);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(needle),
            "{extra:?}: expected {needle:?} in {err}"
        );
        assert!(files_in(&outdir)?.is_empty(), "{extra:?} left files behind");
        Ok(())
    };
    check(&["--gain", "kazoo=3"], "unknown source")?;
    check(&["--gain", "piano=3"], "no piano stem")?;
    check(&["--solo", "guitar"], "no guitar stem")?;
    check(&["--preset", "party"], "unknown preset")?;
    check(&["--layout", "quad"], "unknown channel layout")?;
    check(&["--bit-depth", "32f"], "FLAC cannot hold 32-bit float")?;
    check(&["--tempo", "2"], "tempo 2: expected 0.5 to 1.5")?;
    check(&["--transpose", "-13"], "transpose -13 semitones")?;
    check(
        &["--start", "5", "--end", "4"],
        "expected a time after the start",
    )?;
    check(&["--start", "3"], "past the end of the stems")?;

    // Different lengths.
    let short = noise(5_000, 99);
    let mut w = AudioWriter::create(
        &stems_dir.join("bass.flac"),
        OutputFormat::Flac24,
        44_100,
        ChannelLayout::Stereo,
    )?;
    w.write(&[&short, &short])?;
    w.finish()?;
    check(&[], "different lengths")?;
    // Different rates.
    let mut w = AudioWriter::create(
        &stems_dir.join("bass.flac"),
        OutputFormat::Flac24,
        48_000,
        ChannelLayout::Stereo,
    )?;
    let long = noise(10_000, 98);
    w.write(&[&long, &long])?;
    w.finish()?;
    check(&[], "different sample rates")?;
    // A missing stem.
    std::fs::remove_file(stems_dir.join("bass.flac"))?;
    check(&[], "missing stem bass")?;
    // Not a folder.
    let o = sonantica(&render_args(&dir.path().join("nope"), &out, &[]))?;
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a folder of stems"));
    // Output type.
    let o = sonantica(&render_args(&stems_dir, &outdir.join("mix.mp3"), &[]))?;
    assert!(String::from_utf8_lossy(&o.stderr).contains(".flac or .wav"));
    assert!(files_in(&outdir)?.is_empty());
    Ok(())
}

#[test]
fn ctrl_c_stops_a_render_and_leaves_no_partial_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let stems_dir = dir.path().join("stems");
    std::fs::create_dir(&stems_dir)?;
    // 20 minutes of digital silence: tiny as FLAC, but long enough to render that
    // the interrupt lands mid-way.
    let frames = 20 * 60 * 44_100;
    let zeros = vec![0.0f32; 44_100];
    for name in NAMES {
        let mut w = AudioWriter::create(
            &stems_dir.join(format!("{name}.flac")),
            OutputFormat::Flac16,
            44_100,
            ChannelLayout::Stereo,
        )?;
        for _ in 0..frames / 44_100 {
            w.write(&[&zeros, &zeros])?;
        }
        w.finish()?;
    }
    let outdir = dir.path().join("out");
    std::fs::create_dir(&outdir)?;
    let child = Command::new(env!("CARGO_BIN_EXE_sonantica"))
        .args(render_args(
            &stems_dir,
            &outdir.join("long.wav"),
            &["--layout", "7.1"],
        ))
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    std::thread::sleep(std::time::Duration::from_millis(400));
    let partial = files_in(&outdir)?;
    assert_eq!(partial.len(), 1, "a temporary file is being written");
    assert!(
        partial[0].to_string_lossy().ends_with(".partial"),
        "{partial:?}"
    );
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()?;
    let o = child.wait_with_output()?;
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("interrupted"));
    assert!(files_in(&outdir)?.is_empty(), "nothing may be left behind");
    Ok(())
}

/// A stem set for practice renders: drums are 1 ms bursts every 0.5 s from
/// 0.25 s, "other" a 440 Hz tone with three harmonics, bass and vocals a loud
/// 1 kHz tone that Karaoke must not remove (bass) or must remove (vocals).
fn practice_stems(dir: &Path, seconds: f64) -> Result<()> {
    let rate = 44_100.0;
    let n = (seconds * rate) as usize;
    let tone = |f: f64, a: f64| -> Vec<f32> {
        (0..n)
            .map(|i| {
                let t = i as f64 / rate;
                (1..=3)
                    .map(|h| a / h as f64 * (std::f64::consts::TAU * f * h as f64 * t).sin())
                    .sum::<f64>() as f32
            })
            .collect()
    };
    let bursts: Vec<f32> = (0..n)
        .map(|i| {
            let t = i as f64 / rate - 0.25;
            if t >= 0.0 && t % 0.5 < 0.001 {
                0.7
            } else {
                0.0
            }
        })
        .collect();
    let silent = vec![0.0f32; n];
    for (name, x) in [
        ("drums", bursts),
        ("bass", silent.clone()),
        ("other", tone(440.0, 0.1)),
        ("vocals", tone(1000.0, 0.3)),
    ] {
        let mut w = AudioWriter::create(
            &dir.join(format!("{name}.flac")),
            OutputFormat::Flac24,
            44_100,
            ChannelLayout::Stereo,
        )?;
        w.write(&[&x, &x])?;
        w.finish()?;
    }
    Ok(())
}

/// The strongest frequency between `lo` and `hi` Hz in `x` (Hann window,
/// parabolic peak), found with a plain DFT over that band.
fn strongest_hz(x: &[f32], rate: f64, lo: f64, hi: f64) -> f64 {
    let n = x.len();
    let level = |f: f64| -> f64 {
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &v) in x.iter().enumerate() {
            let w = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos();
            let p = std::f64::consts::TAU * f * i as f64 / rate;
            re += f64::from(v) * w * p.cos();
            im -= f64::from(v) * w * p.sin();
        }
        (re * re + im * im).sqrt()
    };
    let step = 0.25;
    let mut best = (lo, 0.0);
    let mut f = lo;
    while f <= hi {
        let l = level(f);
        if l > best.1 {
            best = (f, l);
        }
        f += step;
    }
    best.0
}

#[test]
fn a_practice_render_slows_transposes_and_cuts_to_the_frame() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let stems_dir = dir.path().join("stems");
    std::fs::create_dir(&stems_dir)?;
    practice_stems(&stems_dir, 6.0)?;
    let out = dir.path().join("practice.wav");
    let o = sonantica(&render_args(
        &stems_dir,
        &out,
        &[
            "--preset",
            "karaoke",
            "--tempo",
            "0.8",
            "--transpose",
            "-2",
            "--start",
            "1",
            "--end",
            "4",
            "--bit-depth",
            "32f",
        ],
    ))?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let note = String::from_utf8_lossy(&o.stderr);
    assert!(
        note.contains("tempo 0.80") && note.contains("-2 semitones"),
        "{note}"
    );

    // Length: 3 s of the track at 0.8 is 3.75 s, to the frame, as ffprobe counts it.
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0", "-count_packets"])
        .args([
            "-show_entries",
            "stream=duration_ts",
            "-of",
            "csv=p=0",
            s(&out),
        ])
        .output()?;
    let ffprobe_frames: u64 = String::from_utf8_lossy(&probe.stdout).trim().parse()?;
    assert_eq!(ffprobe_frames, 165_375, "3 s / 0.8 at 44.1 kHz");
    let (_, audio) = Decoder::read_all(&out)?;
    assert_eq!(audio[0].len(), 165_375);

    // Attacks: the bursts at 1.25, 1.75, ... s of the track land at (t − 1) / 0.8.
    let rate = 44_100.0;
    let x = &audio[0];
    for k in 0..6 {
        let t = 1.25 + 0.5 * k as f64;
        let want = (t - 1.0) / 0.8;
        let from = ((want - 0.05) * rate) as usize;
        let to = (((want + 0.05) * rate) as usize).min(x.len());
        let first = x[from..to]
            .iter()
            .position(|v| v.abs() > 0.3)
            .map(|i| (from + i) as f64 / rate)
            .unwrap_or(f64::NAN);
        assert!(
            (first - want).abs() <= 0.005,
            "burst {k}: at {first:.4} s, expected {want:.4} s ± 5 ms"
        );
    }

    // Pitch: the 440 Hz tone is two semitones down; the vocals' 1 kHz is gone.
    let quiet: Vec<f32> = x[(0.3 * rate) as usize..(0.3 * rate) as usize + 16_384].to_vec();
    let f = strongest_hz(&quiet, rate, 300.0, 500.0);
    let want = 440.0 * 2f64.powf(-2.0 / 12.0);
    assert!(
        (f - want).abs() / want < 0.005,
        "the tone is at {f:.2} Hz, expected {want:.2} Hz"
    );
    // Between 700 Hz and 1 kHz: the tone's second harmonic (784 Hz), not the
    // transposed vocals (891 Hz), which are louder but muted by Karaoke.
    let f_hi = strongest_hz(&quiet, rate, 700.0, 1000.0);
    assert!(
        (f_hi - 880.0 * 2f64.powf(-2.0 / 12.0)).abs() < 5.0,
        "the strongest from 700 Hz to 1 kHz is at {f_hi:.1} Hz, not the tone's second harmonic"
    );
    Ok(())
}
