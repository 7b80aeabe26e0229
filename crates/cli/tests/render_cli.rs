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
