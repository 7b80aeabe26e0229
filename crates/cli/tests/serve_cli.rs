//! The real `sonantica serve` binary over loopback: upload, separate with a small
//! fixture model, and the stems served are those `sonantica separate` writes for
//! the same input and settings; then `kill -9` during a second job, restart, and
//! the job completes exactly once with no partial stems.

mod common;

use serde_json::json;
use sonantica_server::app::status::JobStatus;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use common::server::{song, Server};
use common::{demucs_fixtures, s, separate_args, sonantica_cmd};
use serde_json::Value;
use sonantica_audio::Decoder;

fn stem_files(dir: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    Ok(names)
}

#[test]
fn served_stems_match_the_cli_and_a_killed_job_completes_once_after_restart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let input = dir.path().join("song.wav");
    song(&input, 6.0)?;
    let long = dir.path().join("long.wav");
    song(&long, 90.0)?;

    let server = Server::start(&data, &[])?;
    assert_eq!(server.get("/api/health")?.0, 200);
    let track = server.upload(&input)?;
    let (status, job) = server.post(
        &format!("/api/tracks/{track}/separate"),
        "application/json",
        b"{}".to_vec(),
    )?;
    assert_eq!(status, 202, "{job}");
    let job_id = job["id"].as_i64().context("job id")?;
    let done = server.wait(
        job_id,
        |j| j["status"] != json!(JobStatus::Queued) && j["status"] != json!(JobStatus::Running),
        Duration::from_secs(120),
    )?;
    assert_eq!(done["status"], json!(JobStatus::Done), "{done}");

    // The same input through `sonantica separate` with the same model and settings.
    let cli_out = dir.path().join("cli");
    let model = demucs_fixtures().join("small4.safetensors");
    sonantica_cmd(&separate_args(
        &input,
        s(&model),
        &cli_out,
        &["--threads", "2"],
    ))
    .assert_success();
    let stems = server.json(&format!("/api/tracks/{track}/stems"))?;
    let stems = stems.as_array().context("stems")?;
    assert_eq!(stems.len(), 4);
    for stem in stems {
        let source = stem["source"].as_str().context("source")?;
        let (status, served) = server.get(stem["url"].as_str().context("url")?)?;
        assert_eq!(status, 200);
        let cli_file = cli_out.join(format!("{source}.flac"));
        let served_file = dir.path().join(format!("served-{source}.flac"));
        std::fs::write(&served_file, &served)?;
        let (a, b) = (
            Decoder::read_all(&served_file)?.1,
            Decoder::read_all(&cli_file)?.1,
        );
        assert_eq!(
            a, b,
            "{source}: served stem differs from `sonantica separate`"
        );
        assert_eq!(served, std::fs::read(&cli_file)?, "{source}: files differ");
    }

    // A long job, killed while it runs.
    let long_track = server.upload(&long)?;
    let (status, job) = server.post(
        &format!("/api/tracks/{long_track}/separate"),
        "application/json",
        Vec::new(),
    )?;
    assert_eq!(status, 202, "{job}");
    let long_job = job["id"].as_i64().context("job id")?;
    let running = server.wait(
        long_job,
        |j| j["status"] == json!(JobStatus::Running) && j["progress"].as_f64().unwrap_or(0.0) > 0.0,
        Duration::from_secs(60),
    )?;
    assert_eq!(running["attempts"], 1);
    drop(server); // SIGKILL: no chance to clean up.
    let stems_dir: PathBuf = data.join(format!("media/stems/{long_track}"));
    assert!(
        !stems_dir.join("small4").exists(),
        "nothing landed before the kill"
    );

    let server = Server::start(&data, &[])?;
    let done = server.wait(
        long_job,
        |j| j["status"] != json!(JobStatus::Queued) && j["status"] != json!(JobStatus::Running),
        Duration::from_secs(300),
    )?;
    assert_eq!(done["status"], json!(JobStatus::Done), "{done}");
    assert_eq!(
        done["attempts"], 2,
        "taken again once after the lease expired: {done}"
    );
    let jobs = server.json("/api/jobs?limit=1000")?;
    let for_track: Vec<&Value> = jobs
        .as_array()
        .context("jobs")?
        .iter()
        .filter(|j| j["track_id"] == long_track)
        .collect();
    assert_eq!(for_track.len(), 1, "one job for the track");
    assert_eq!(
        stem_files(&stems_dir)?,
        ["small4", "small4.all.flac"],
        "the stems and their multistem file; no staging folder or second copy left"
    );
    assert_eq!(
        stem_files(&stems_dir.join("small4"))?,
        ["bass.flac", "drums.flac", "other.flac", "vocals.flac"]
    );
    let stems = server.json(&format!("/api/tracks/{long_track}/stems"))?;
    assert_eq!(stems.as_array().map(Vec::len), Some(4));
    for f in ["bass", "drums", "other", "vocals"] {
        let (info, audio) = Decoder::read_all(stems_dir.join(format!("small4/{f}.flac")))?;
        assert_eq!(info.sample_rate, 44_100);
        assert_eq!(audio[0].len(), 90 * 44_100, "{f} is complete");
    }
    assert!(std::fs::read_dir(data.join("media/tmp"))?.next().is_none());
    Ok(())
}

#[test]
fn a_full_disk_fails_uploads_and_jobs_cleanly() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    // 4096 blocks: 2 MiB per file. The database stays far below it.
    let server = Server::start_with_file_limit(&data, 4096)?;
    let big = dir.path().join("big.wav");
    song(&big, 15.0)?; // 2.6 MB
    let boundary = "b";
    let mut body =
        b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.wav\"\r\n\r\n"
            .to_vec();
    body.extend(std::fs::read(&big)?);
    body.extend(b"\r\n--b--\r\n");
    let (status, err) = server.post(
        "/api/tracks",
        &format!("multipart/form-data; boundary={boundary}"),
        body,
    )?;
    assert_eq!(status, 507, "{err}");
    assert_eq!(err["error"], "disk_full");
    assert!(std::fs::read_dir(data.join("media/tmp"))?.next().is_none());
    assert!(std::fs::read_dir(data.join("media/uploads"))?
        .next()
        .is_none());

    // 6 s of 16-bit stereo (1.1 MB) fits, but the job's float staging (2.1 MB)
    // does not: the job fails with the reason and leaves no stems.
    let input = dir.path().join("song.wav");
    song(&input, 6.0)?;
    let track = server.upload(&input)?;
    let (status, job) = server.post(
        &format!("/api/tracks/{track}/separate"),
        "application/json",
        Vec::new(),
    )?;
    assert_eq!(status, 202, "{job}");
    let done = server.wait(
        job["id"].as_i64().context("job id")?,
        |j| j["status"] != json!(JobStatus::Queued) && j["status"] != json!(JobStatus::Running),
        Duration::from_secs(60),
    )?;
    assert_eq!(done["status"], json!(JobStatus::Failed), "{done}");
    let error = done["error"].as_str().unwrap_or_default();
    assert!(error.contains("too large"), "{error}");
    assert_eq!(
        server.json(&format!("/api/tracks/{track}/stems"))?,
        serde_json::json!([])
    );
    let stems_dir = data.join(format!("media/stems/{track}"));
    assert!(!stems_dir.exists() || stem_files(&stems_dir)?.is_empty());
    Ok(())
}
