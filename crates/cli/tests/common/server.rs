//! A `sonantica serve` child process on loopback, for the tests and the load
//! benchmark, with a small HTTP client for its API.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use sonantica_audio::{AudioWriter, ChannelLayout, OutputFormat};

use super::{demucs_fixtures, s};

pub const TOKEN: &str = "serve-cli-test-token-0123456789";
/// The worker token every test station gets (used only with `--queue`).
pub const WORKER_TOKEN: &str = "serve-cli-test-worker-token-0123";

/// A running server; killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Server {
    /// Starts a server on a free port with the small fixture model, 2 threads
    /// and a 2 s job lease; `extra` adds or overrides flags.
    pub fn start(data: &Path, extra: &[&str]) -> Result<Server> {
        Self::spawn(Command::new(env!("CARGO_BIN_EXE_sonantica")), data, extra)
    }

    /// Like [`Server::start`], with RLIMIT_FSIZE set so that any write past
    /// `blocks` 512-byte blocks of one file fails (EFBIG), the way a full disk
    /// fails with ENOSPC.
    pub fn start_with_file_limit(data: &Path, blocks: u64) -> Result<Server> {
        let mut sh = Command::new("sh");
        sh.args([
            "-c",
            &format!("trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\""),
            env!("CARGO_BIN_EXE_sonantica"),
        ]);
        Self::spawn(sh, data, &[])
    }

    fn spawn(mut command: Command, data: &Path, extra: &[&str]) -> Result<Server> {
        let model = demucs_fixtures().join("small4.safetensors");
        let mut child = command
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
            .args(extra)
            .env("SONANTICA_TOKEN", TOKEN)
            .env("SONANTICA_WORKER_TOKEN", WORKER_TOKEN)
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

    pub fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into()
    }

    pub fn get(&self, path: &str) -> Result<(u16, Vec<u8>)> {
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

    pub fn json(&self, path: &str) -> Result<Value> {
        let (status, body) = self.get(path)?;
        let v: Value = serde_json::from_slice(&body)?;
        if status >= 400 {
            bail!("GET {path}: {status} {v}");
        }
        Ok(v)
    }

    pub fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> Result<(u16, Value)> {
        let mut res = Self::agent()
            .post(format!("{}{path}", self.base))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .header("Content-Type", content_type)
            .send(&body[..])?;
        let status = res.status().as_u16();
        let v: Value = serde_json::from_slice(&res.body_mut().read_to_vec()?)?;
        Ok((status, v))
    }

    /// Uploads `file` as the multipart field `file`: the status and the JSON reply.
    pub fn upload_reply(&self, file: &Path) -> Result<(u16, Value)> {
        let boundary = "serve-cli-boundary";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\r\n",
            file.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
        )
        .into_bytes();
        body.extend(std::fs::read(file)?);
        body.extend(format!("\r\n--{boundary}--\r\n").bytes());
        self.post(
            "/api/tracks",
            &format!("multipart/form-data; boundary={boundary}"),
            body,
        )
    }

    /// Uploads `file`; the new track's id.
    pub fn upload(&self, file: &Path) -> Result<i64> {
        let (status, v) = self.upload_reply(file)?;
        if status != 201 {
            bail!("upload: {status} {v}");
        }
        v["id"].as_i64().context("track id")
    }

    /// Uploads `file`; the status alone.
    pub fn upload_status(&self, file: &Path) -> Result<u16> {
        Ok(self.upload_reply(file)?.0)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn wait(&self, job: i64, until: impl Fn(&Value) -> bool, limit: Duration) -> Result<Value> {
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
pub fn song(path: &Path, seconds: f64) -> Result<()> {
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
