//! A real `redis-server` and `sonantica worker` children, for the scale-out
//! tests and the throughput benchmark.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::server::WORKER_TOKEN;
use super::{demucs_fixtures, s};

/// A free TCP port on loopback.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A redis-server child with append-only persistence in `dir`.
pub struct Redis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    /// Starts redis-server on `port` with its data in `dir`.
    pub fn start(port: u16, dir: &Path) -> Result<Redis> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                s(dir),
            ])
            .stdout(Stdio::null())
            .spawn()
            .context("redis-server must be installed (Debian: apt-get install redis-server)")?;
        let redis = Redis {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        let client = redis::Client::open(redis.url().as_str())?;
        let start = Instant::now();
        while client.get_connection().is_err() {
            if start.elapsed() > Duration::from_secs(10) {
                bail!("redis-server did not start");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(redis)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills Redis with SIGKILL (only its append-only file survives) and starts
    /// it again on the same port and data after `downtime`.
    pub fn restart(&mut self, downtime: Duration) -> Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(downtime);
        *self = Redis::start(self.port, &self.dir.clone())?;
        Ok(())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `sonantica worker` child.
pub struct Worker(pub Child);

impl Worker {
    /// Starts a worker with the fixture model, one thread, a 3 s visibility timeout.
    pub fn start(station: &str, queue: &str, name: &str) -> Result<Worker> {
        Self::start_logged(station, queue, name, Stdio::inherit())
    }

    /// Like [`Worker::start`], with stderr going to `log`.
    pub fn start_logged(station: &str, queue: &str, name: &str, log: Stdio) -> Result<Worker> {
        let model = demucs_fixtures().join("small4.safetensors");
        Ok(Worker(
            Command::new(env!("CARGO_BIN_EXE_sonantica"))
                .args([
                    "worker",
                    "--server",
                    station,
                    "--queue",
                    queue,
                    "--model",
                    s(&model),
                    "--threads",
                    "1",
                    "--visibility-timeout",
                    "3",
                    "--name",
                    name,
                ])
                .env("SONANTICA_WORKER_TOKEN", WORKER_TOKEN)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()?,
        ))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
