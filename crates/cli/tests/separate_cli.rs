//! `sonantica separate` run as a user runs it, with the small fixture models.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use sonantica_audio::{AudioWriter, ChannelLayout, Decoder, OutputFormat};
use sonantica_demucs::weights::read_tensors;
use sonantica_demucs::{load_separator, ApplyOptions};
use sonantica_testkit::cmd::TestCommand;
use sonantica_testkit::snr::snr_db;

fn fixture_mix() -> Result<Vec<Vec<f32>>> {
    let t = &read_tensors(&demucs_fixtures().join("mix.safetensors"))?["mix"];
    let n = t.shape[1];
    Ok((0..2)
        .map(|c| t.data[c * n..(c + 1) * n].to_vec())
        .collect())
}

fn write_wav(path: &Path, planes: &[Vec<f32>], rate: u32) -> Result<()> {
    let mut w = AudioWriter::create(path, OutputFormat::WavF32, rate, ChannelLayout::Stereo)?;
    let refs: Vec<&[f32]> = planes.iter().map(Vec::as_slice).collect();
    w.write(&refs)?;
    w.finish()?;
    Ok(())
}

#[test]
fn cli_stems_match_the_library_with_reference_normalisation() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mix = fixture_mix()?;
    let input = dir.path().join("mix.wav");
    write_wav(&input, &mix, 44_100)?;
    let out = dir.path().join("stems");
    let model = demucs_fixtures().join("small4.safetensors");
    let run = sonantica_cmd(&separate_args(
        &input,
        s(&model),
        &out,
        &["--shifts", "0", "--format", "wav-f32"],
    ))
    .assert_success();
    // It says how soon the first stems were final, and that was within the run.
    let said = String::from_utf8_lossy(&run.stderr);
    let number_after = |marker: &str| -> Result<f64> {
        said.split(marker)
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no number after {marker:?} in {said:?}"))
    };
    let first = number_after("the first stems were final after ")?;
    let total = number_after(") in ")?;
    assert!(first <= total, "first stems after {first} s of {total} s");

    // The reference CLI: normalise by the mono mix's mean and (unbiased) std,
    // apply_model, undo the normalisation.
    let n = mix[0].len();
    let mono: Vec<f64> = (0..n)
        .map(|i| (f64::from(mix[0][i]) + f64::from(mix[1][i])) / 2.0)
        .collect();
    let mean = mono.iter().sum::<f64>() / n as f64;
    let std =
        (mono.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0)).sqrt() + 1e-8;
    let normalised: Vec<Vec<f32>> = mix
        .iter()
        .map(|c| {
            c.iter()
                .map(|v| ((f64::from(*v) - mean) / std) as f32)
                .collect()
        })
        .collect();
    let sep = load_separator(&model)?;
    let opts = ApplyOptions {
        shifts: 0,
        ..ApplyOptions::default()
    };
    let reference = sep.apply(&normalised, &opts, &mut |_| true)?;
    for (k, name) in sep.sources().iter().enumerate() {
        let (info, got) = Decoder::read_all(out.join(format!("{name}.wav")))?;
        assert_eq!(info.sample_rate, 44_100);
        assert_eq!(got[0].len(), n, "{name}: same length as the input");
        let want: Vec<f32> = reference[k]
            .iter()
            .flatten()
            .map(|v| (f64::from(*v) * std + mean) as f32)
            .collect();
        let got: Vec<f32> = got.iter().flatten().copied().collect();
        let snr = snr_db(&want, &got);
        assert!(snr > 100.0, "{name}: {snr:.1} dB");
    }
    Ok(())
}

#[test]
fn subsets_two_stems_rates_and_six_sources() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mix = fixture_mix()?;
    // 48 kHz input: resampled to the model's 44.1 kHz and back.
    let input = dir.path().join("mix48.wav");
    let n48 = mix[0].len() * 48_000 / 44_100;
    let m48: Vec<Vec<f32>> = mix
        .iter()
        .map(|c| (0..n48).map(|i| c[i * 44_100 / 48_000]).collect())
        .collect();
    write_wav(&input, &m48, 48_000)?;
    let model = demucs_fixtures().join("small4.safetensors");
    let run = |out: &Path, extra: &[&str]| {
        let mut args = separate_args(&input, s(&model), out, &["--shifts", "0"]);
        if !extra.contains(&"--format") {
            args.extend_from_slice(&["--format", "wav-f32"]);
        }
        args.extend_from_slice(extra);
        sonantica_cmd(&args).assert_success();
    };
    let all = dir.path().join("all");
    run(&all, &[]);
    let (info, drums) = Decoder::read_all(all.join("drums.wav"))?;
    assert_eq!(
        (info.sample_rate, drums[0].len()),
        (48_000, n48),
        "stems come back at the input rate and length"
    );

    let two = dir.path().join("two");
    run(&two, &["--two-stems", "vocals"]);
    let mut names: Vec<String> = std::fs::read_dir(&two)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    assert_eq!(names, ["no_vocals.wav", "vocals.wav"]);
    // no_vocals is the sum of the other stems.
    let rest: Vec<Vec<Vec<f32>>> = ["drums", "bass", "other"]
        .iter()
        .map(|n| Ok(Decoder::read_all(all.join(format!("{n}.wav")))?.1))
        .collect::<Result<_>>()?;
    let (_, no_vocals) = Decoder::read_all(two.join("no_vocals.wav"))?;
    let sum: Vec<f32> = (0..2)
        .flat_map(|c| {
            (0..n48)
                .map(|i| rest.iter().map(|r| r[c][i]).sum::<f32>())
                .collect::<Vec<_>>()
        })
        .collect();
    let got: Vec<f32> = no_vocals.iter().flatten().copied().collect();
    assert!(snr_db(&sum, &got) > 100.0);

    let subset = dir.path().join("subset");
    run(
        &subset,
        &[
            "--stems",
            "vocals,drums",
            "--keep-model-rate",
            "--format",
            "flac",
        ],
    );
    let (info, _) = Decoder::read_all(subset.join("vocals.flac"))?;
    assert_eq!(info.sample_rate, 44_100, "--keep-model-rate");
    assert!(subset.join("drums.flac").is_file() && !subset.join("bass.flac").exists());

    let six = dir.path().join("six");
    let six_model = demucs_fixtures().join("small6.safetensors");
    sonantica_cmd(&separate_args(
        &input,
        s(&six_model),
        &six,
        &["--shifts", "0"],
    ))
    .assert_success();
    assert_eq!(std::fs::read_dir(&six)?.count(), 6);
    Ok(())
}

#[test]
fn bad_models_inputs_and_options_fail_cleanly() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("mix.wav");
    write_wav(&input, &fixture_mix()?, 44_100)?;
    let out = dir.path().join("out");
    let store = dir.path().join("store");
    let check = |args: &[&str], needle: &str| -> Result<()> {
        let o = sonantica_cmd(args).assert_exit_code(2);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: want {needle:?} in {err}");
        assert!(files_in(&out)?.is_empty(), "{args:?} left files");
        Ok(())
    };
    let model = demucs_fixtures().join("small4.safetensors");
    check(
        &separate_args(&input, "htdemucs", &out, &["--models-dir", s(&store)]),
        "sonantica models pull htdemucs",
    )?;
    check(&separate_args(&input, "kazoo", &out, &[]), "unknown model")?;
    let missing = dir.path().join("x.th");
    check(
        &separate_args(&input, s(&missing), &out, &[]),
        "no such model file",
    )?;
    check(
        &separate_args(&input, s(&model), &out, &["--stems", "guitar"]),
        "--stems guitar",
    )?;
    check(
        &separate_args(&input, s(&model), &out, &["--two-stems", "piano"]),
        "--two-stems piano",
    )?;
    let text = dir.path().join("notes.flac");
    std::fs::write(&text, "not audio")?;
    check(&separate_args(&text, s(&model), &out, &[]), "notes.flac")?;
    let truncated = dir.path().join("cut.safetensors");
    let bytes = std::fs::read(&model)?;
    std::fs::write(&truncated, &bytes[..bytes.len() / 3])?;
    check(
        &separate_args(&input, s(&truncated), &out, &[]),
        "cut.safetensors",
    )?;
    Ok(())
}

#[test]
fn a_failing_disk_gives_a_clear_error_and_leaves_nothing() -> Result<()> {
    // RLIMIT_FSIZE makes any write past 100 KiB fail (EFBIG, "File too large"),
    // the way a full disk fails with ENOSPC, without needing a small filesystem.
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("mix.wav");
    write_wav(&input, &fixture_mix()?, 44_100)?;
    let out = dir.path().join("out");
    let model = demucs_fixtures().join("small4.safetensors");
    let o = TestCommand::new("sh")
        .args(["-c", "trap '' XFSZ; ulimit -f 200; exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_sonantica"))
        .args(separate_args(
            &input,
            s(&model),
            &out,
            &["--shifts", "0", "--format", "wav-f32"],
        ))
        .assert_exit_code(2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("File too large"), "{err}");
    let left = files_in(&out)?;
    assert!(left.is_empty(), "files left behind: {left:?}");
    Ok(())
}

/// `seconds` of 16-bit stereo noise of peak `amp` in `path`.
fn noise_wav(path: &Path, seconds: usize, amp: f32) -> Result<()> {
    let n = seconds * 44_100;
    let mut state = 1u32;
    let noise: Vec<f32> = (0..n)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((state >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0) * amp
        })
        .collect();
    let mut w = AudioWriter::create(path, OutputFormat::Wav16, 44_100, ChannelLayout::Stereo)?;
    w.write(&[&noise, &noise])?;
    w.finish()?;
    Ok(())
}

#[test]
fn the_stem_files_grow_as_it_separates_and_end_as_a_run_that_writes_them_at_the_end() -> Result<()>
{
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("long.wav");
    noise_wav(&input, 40, 0.1)?;
    let model = demucs_fixtures().join("small4.safetensors");
    let out = dir.path().join("growing");
    let child = Command::new(env!("CARGO_BIN_EXE_sonantica"))
        .args(separate_args(
            &input,
            s(&model),
            &out,
            &["--shifts", "0", "--threads", "1"],
        ))
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    // While it runs: vocals grows under a hidden temporary name, and the
    // final name does not exist yet.
    let partial = |name: &str| -> Result<Option<std::path::PathBuf>> {
        Ok(files_in(&out)?.into_iter().find(|p| {
            p.file_name().and_then(|f| f.to_str()).is_some_and(|f| {
                f.starts_with(&format!(".{name}.flac.")) && f.ends_with(".partial")
            })
        }))
    };
    let mut sizes: Vec<u64> = Vec::new();
    let mut middle: Vec<u8> = Vec::new();
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(300) {
        let Some(p) = partial("vocals")? else {
            if out.join("vocals.flac").exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            continue;
        };
        let Ok(bytes) = std::fs::read(&p) else { break };
        if !out.join("vocals.flac").exists() && sizes.last() != Some(&(bytes.len() as u64)) {
            sizes.push(bytes.len() as u64);
            if sizes.len() == 3 {
                middle = bytes;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = child.wait_with_output()?;
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{said}");
    assert!(said.contains("the first stems were final after"), "{said}");
    assert!(
        sizes.len() >= 4 && sizes.windows(2).all(|w| w[0] < w[1]),
        "the file grew while the separation ran: {sizes:?}"
    );
    let finished = std::fs::read(out.join("vocals.flac"))?;
    let names: Vec<String> = files_in(&out)?
        .iter()
        .filter_map(|p| Some(p.file_name()?.to_str()?.to_owned()))
        .collect();
    assert_eq!(
        names,
        ["bass.flac", "drums.flac", "other.flac", "vocals.flac"],
        "nothing temporary is left"
    );
    // What had grown is the finished file, past the 42-byte header whose
    // STREAMINFO (length, MD5) is filled in at the end.
    assert!(middle.len() > 1000 && middle.len() < finished.len());
    assert!(
        middle[42..] == finished[42..middle.len()],
        "the growing file is the finished one's start"
    );

    // Written at the end instead (rescale needs the whole track's peak; this
    // quiet input needs no scaling): the same files, byte for byte.
    let at_end = dir.path().join("at_end");
    let run = sonantica_cmd(&separate_args(
        &input,
        s(&model),
        &at_end,
        &["--shifts", "0", "--threads", "1", "--clip", "rescale"],
    ))
    .assert_success();
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(!said.contains("scaled by"), "{said}");
    for name in ["bass", "drums", "other", "vocals"] {
        let a = std::fs::read(out.join(format!("{name}.flac")))?;
        let b = std::fs::read(at_end.join(format!("{name}.flac")))?;
        assert!(
            a == b,
            "{name}: the growing and the written-at-end files differ"
        );
    }
    Ok(())
}

#[test]
fn ctrl_c_stops_a_separation_and_leaves_no_stems() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // 60 s of noise: long enough that the interrupt lands mid-separation.
    let input = dir.path().join("long.wav");
    noise_wav(&input, 60, 0.2)?;
    let out = dir.path().join("stems");
    let model = demucs_fixtures().join("small4.safetensors");
    let child = Command::new(env!("CARGO_BIN_EXE_sonantica"))
        .args(separate_args(&input, s(&model), &out, &["--shifts", "0"]))
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    std::thread::sleep(std::time::Duration::from_millis(1500));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()?;
    let o = child.wait_with_output()?;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let left = files_in(&out)?;
    assert!(left.is_empty(), "files left behind: {left:?}");
    Ok(())
}

#[test]
fn device_gpu_separates_on_the_gpu_as_the_cpu_does() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("mix.wav");
    write_wav(&input, &fixture_mix()?, 44_100)?;
    let model = demucs_fixtures().join("small4.safetensors");
    let mut said = Vec::new();
    for device in ["cpu", "gpu"] {
        let out = dir.path().join(device);
        let run = sonantica_cmd(&separate_args(
            &input,
            s(&model),
            &out,
            &["--shifts", "0", "--format", "wav-f32", "--device", device],
        ))
        .assert_success();
        said.push(String::from_utf8_lossy(&run.stderr).into_owned());
    }
    assert!(said[0].contains("device: CPU"), "{}", said[0]);
    // lavapipe in CI: a software renderer on Vulkan.
    assert!(
        said[1].contains("device: ") && !said[1].contains("device: CPU"),
        "{}",
        said[1]
    );
    for name in ["drums", "bass", "other", "vocals"] {
        let cpu: Vec<f32> = Decoder::read_all(dir.path().join(format!("cpu/{name}.wav")))?
            .1
            .concat();
        let gpu: Vec<f32> = Decoder::read_all(dir.path().join(format!("gpu/{name}.wav")))?
            .1
            .concat();
        let snr = snr_db(&cpu, &gpu);
        assert!(
            snr >= 100.0,
            "{name}: {snr:.1} dB between the GPU and the CPU"
        );
    }
    // A device that does not exist is named as such.
    let bad = sonantica_cmd(&separate_args(
        &input,
        s(&model),
        &dir.path().join("bad"),
        &["--device", "cuda"],
    ))
    .assert_failure();
    let err = String::from_utf8_lossy(&bad.stderr).into_owned();
    assert!(err.contains("auto, cpu or gpu"), "{err}");
    Ok(())
}
