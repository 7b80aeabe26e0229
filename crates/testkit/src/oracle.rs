//! ffmpeg and ffprobe as independent oracles.
//!
//! These need `ffmpeg` and `ffprobe` on the PATH (`.ci/run` installs them); the
//! helpers fail, rather than skip, when the tools are missing.

use std::path::Path;

use anyhow::{Context, Result};

use crate::cmd::TestCommand;

const FFMPEG_MISSING: &str = "ffmpeg must be installed (apt-get install ffmpeg)";

/// Runs `ffmpeg` with `leading` and then `args`; its output if it succeeded.
fn run_ffmpeg(leading: &[&str], args: &[&str]) -> Result<std::process::Output> {
    let mut cmd = TestCommand::new("ffmpeg");
    cmd.args(leading).args(args);
    let out = cmd.output().context(FFMPEG_MISSING)?;
    cmd.check(out)
}

/// Runs `ffmpeg -hide_banner -loglevel error -y ARGS` (quiet; overwrites its
/// outputs); an error with ffmpeg's stderr if it fails.
pub fn ffmpeg(args: &[&str]) -> Result<()> {
    run_ffmpeg(&["-hide_banner", "-loglevel", "error", "-y"], args)?;
    Ok(())
}

/// Runs `ffmpeg -hide_banner -nostats -y ARGS` and returns its log (stderr),
/// for filters that report there, such as `ebur128`.
pub fn ffmpeg_log(args: &[&str]) -> Result<String> {
    let out = run_ffmpeg(&["-hide_banner", "-nostats", "-y"], args)?;
    Ok(String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Decodes `path` with ffmpeg to `channels` planes of f32.
pub fn ffmpeg_decode(path: &Path, channels: usize) -> Result<Vec<Vec<f32>>> {
    let mut cmd = TestCommand::new("ffmpeg");
    cmd.args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(path)
        .args(["-f", "f32le", "-acodec", "pcm_f32le", "-"]);
    let out = cmd.output().context(FFMPEG_MISSING)?;
    let out = cmd.check(out).context("ffmpeg decode failed")?;
    let samples: Vec<f32> = out
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let mut planes = vec![Vec::with_capacity(samples.len() / channels); channels];
    for frame in samples.chunks_exact(channels) {
        for (p, s) in planes.iter_mut().zip(frame) {
            p.push(*s);
        }
    }
    Ok(planes)
}

/// The channel layout name (such as `5.1`, or `unknown`) and the channel count
/// that ffprobe reports for the first audio stream of `path`.
pub fn ffprobe_layout(path: &Path) -> Result<(String, usize)> {
    let mut cmd = TestCommand::new("ffprobe");
    cmd.args([
        "-v",
        "error",
        "-select_streams",
        "a:0",
        "-show_entries",
        "stream=channel_layout,channels",
        "-of",
        "default=noprint_wrappers=1",
    ])
    .arg(path);
    let out = cmd.output().context("ffprobe must be installed")?;
    let out = cmd.check(out)?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut layout = String::new();
    let mut channels = 0;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("channel_layout=") {
            layout = v.to_string();
        }
        if let Some(v) = line.strip_prefix("channels=") {
            channels = v.parse()?;
        }
    }
    Ok((layout, channels))
}
