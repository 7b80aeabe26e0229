//! The real `sonantica serve` binary over loopback: upload, separate with a small
//! fixture model, and the stems served are those `sonantica separate` writes for
//! the same input and settings; then `kill -9` during a second job, restart, and
//! the job completes exactly once with no partial stems.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use common::{demucs_fixtures, s, sonantica};
use serde_json::Value;
use sonantica_audio::{AudioWriter, ChannelLayout, Decoder, OutputFormat};

const TOKEN: &str = "serve-cli-test-token-0123456789";

/// A running server; killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(data: &Path) -> Result<Server> {
        let model = demucs_fixtures().join("small4.safetensors");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sonantica"))
            .args([
                "serve",
                "--data-dir",
                s(data),
                "--listen",
                "127.0.0.1:0",
                "--model",
                s(&model),
                "--threads",
                "2",
                "--job-lease-secs",
                "2",
            ])
            .env("SONANTICA_TOKEN", TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let Some(line) = lines.next() else {
                let _ = child.kill();
                bail!("the server exited before listening");
            };
            let line = line?;
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split('/').next().unwrap_or_default();
                break format!("http://{addr}");
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Server { child, base })
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into()
    }

    fn get(&self, path: &str) -> Result<(u16, Vec<u8>)> {
        let mut res = Self::agent()
            .get(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .call()?;
        let status = res.status().as_u16();
        Ok((
            status,
            res.body_mut().with_config().limit(1 << 30).read_to_vec()?,
        ))
    }

    fn json(&self, path: &str) -> Result<Value> {
        let (status, body) = self.get(path)?;
        let v: Value = serde_json::from_slice(&body)?;
        if status >= 400 {
            bail!("GET {path}: {status} {v}");
        }
        Ok(v)
    }

    fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> Result<(u16, Value)> {
        let mut res = Self::agent()
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .header("Content-Type", content_type)
            .send(&body[..])?;
        let status = res.status().as_u16();
        let v: Value = serde_json::from_slice(&res.body_mut().read_to_vec()?)?;
        Ok((status, v))
    }

    fn upload(&self, file: &Path) -> Result<i64> {
        let boundary = "serve-cli-boundary";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\r\n",
            file.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
        )
        .into_bytes();
        body.extend(std::fs::read(file)?);
        body.extend(format!("\r\n--{boundary}--\r\n").bytes());
        let (status, v) = self.post(
            "/api/tracks",
            &format!("multipart/form-data; boundary={boundary}"),
            body,
        )?;
        if status != 201 {
            bail!("upload: {status} {v}");
        }
        v["id"].as_i64().context("track id")
    }

    fn wait(&self, job: i64, until: impl Fn(&Value) -> bool, limit: Duration) -> Result<Value> {
        let start = Instant::now();
        loop {
            let j = self.json(&format!("/api/jobs/{job}"))?;
            if until(&j) {
                return Ok(j);
            }
            if start.elapsed() > limit {
                bail!("job {job} is still {j}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stereo test "song": two detuned tones with a beat, different per channel,
/// and a noise-like click train, so every stem carries something.
fn song(path: &Path, seconds: f64) -> Result<()> {
    let rate = 44_100u32;
    let n = (seconds * f64::from(rate)) as usize;
    let mut l = Vec::with_capacity(n);
    let mut r = Vec::with_capacity(n);
    let mut seed = 0x2545_f491_u32;
    for i in 0..n {
        let t = i as f64 / f64::from(rate);
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let noise = (f64::from(seed) / f64::from(u32::MAX) - 0.5) * 0.2;
        let click = if (t * 2.0).fract() < 0.02 { noise } else { 0.0 };
        let tone = |f: f64| (2.0 * std::f64::consts::PI * f * t).sin();
        l.push((0.3 * tone(110.0) + 0.2 * tone(440.0) + click) as f32);
        r.push((0.3 * tone(110.0) + 0.2 * tone(554.4) + click) as f32);
    }
    let mut w = AudioWriter::create(path, OutputFormat::Wav16, rate, ChannelLayout::Stereo)?;
    w.write(&[&l, &r])?;
    w.finish()?;
    Ok(())
}

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

    let server = Server::start(&data)?;
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
        |j| j["status"] != "queued" && j["status"] != "running",
        Duration::from_secs(120),
    )?;
    assert_eq!(done["status"], "done", "{done}");

    // The same input through `sonantica separate` with the same model and settings.
    let cli_out = dir.path().join("cli");
    let model = demucs_fixtures().join("small4.safetensors");
    let out = sonantica(&[
        "separate",
        s(&input),
        "--model",
        s(&model),
        "--out",
        s(&cli_out),
        "--threads",
        "2",
    ])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
        |j| j["status"] == "running" && j["progress"].as_f64().unwrap_or(0.0) > 0.0,
        Duration::from_secs(60),
    )?;
    assert_eq!(running["attempts"], 1);
    drop(server); // SIGKILL: no chance to clean up.
    let stems_dir: PathBuf = data.join(format!("media/stems/{long_track}"));
    assert!(
        !stems_dir.join("small4").exists(),
        "nothing landed before the kill"
    );

    let server = Server::start(&data)?;
    let done = server.wait(
        long_job,
        |j| j["status"] != "queued" && j["status"] != "running",
        Duration::from_secs(300),
    )?;
    assert_eq!(done["status"], "done", "{done}");
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
        ["small4"],
        "no staging folder or second copy left"
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
