//! Batch throughput of scale-out: a station with `--queue redis://…` and one or
//! two `sonantica worker` processes separating a batch of tracks, timed from the
//! batch request until the last job is done.
//!
//! `cargo bench -p sonantica --bench worker_throughput`
//!
//! Loopback only: a real `redis-server`, the release binary, the small fixture
//! model (`SONANTICA_BENCH_MODEL` for another model file). On one machine the
//! workers share its cores, so two workers can only win where one leaves cores
//! idle; the figures measure the queue's overhead and the sharing, not a second
//! machine's extra compute.

#[path = "../tests/common/mod.rs"]
mod common;

use serde_json::json;
use sonantica_server::app::status::JobStatus;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use common::demucs_fixtures;
use common::scale::{free_port, Redis, Worker};
use common::server::{song, Server, WORKER_TOKEN};

const TRACKS: usize = 8;
const SECONDS: f64 = 60.0;

fn run(workers: usize, threads: usize) -> Result<f64> {
    let dir = tempfile::tempdir()?;
    let redis_dir = dir.path().join("redis");
    std::fs::create_dir(&redis_dir)?;
    let redis = Redis::start(free_port()?, &redis_dir)?;
    let model = std::env::var("SONANTICA_BENCH_MODEL").unwrap_or_else(|_| {
        demucs_fixtures()
            .join("small4.safetensors")
            .to_string_lossy()
            .into_owned()
    });
    let server = Server::start(
        &dir.path().join("data"),
        &["--queue", &redis.url(), "--model", &model],
    )?;
    let input = dir.path().join("song.wav");
    song(&input, SECONDS)?;
    for _ in 0..TRACKS {
        server.upload(&input)?;
    }
    let mut procs = Vec::new();
    for n in 0..workers {
        procs.push(Worker(
            Command::new(env!("CARGO_BIN_EXE_sonantica"))
                .args([
                    "worker",
                    "--server",
                    &server.base,
                    "--queue",
                    &redis.url(),
                    "--model",
                    &model,
                    "--threads",
                    &threads.to_string(),
                    "--name",
                    &format!("bench{n}"),
                ])
                .env("SONANTICA_WORKER_TOKEN", WORKER_TOKEN)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        ));
    }
    // Let the uploads' background analyses finish first.
    std::thread::sleep(Duration::from_secs(2));
    let start = Instant::now();
    let (status, _) = server.post("/api/library/separate", "application/json", Vec::new())?;
    anyhow::ensure!(status == 202, "batch refused: {status}");
    loop {
        let jobs = server.json("/api/jobs?limit=1000")?;
        let jobs = jobs.as_array().context("jobs")?;
        if jobs.iter().any(|j| j["status"] == json!(JobStatus::Failed)) {
            anyhow::bail!("a job failed: {jobs:?}");
        }
        if jobs.len() == TRACKS && jobs.iter().all(|j| j["status"] == json!(JobStatus::Done)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(start.elapsed().as_secs_f64())
}

fn main() -> Result<()> {
    println!("batch: {TRACKS} tracks of {SECONDS:.0} s (44.1 kHz stereo)");
    let mut first = None;
    for (workers, threads) in [(1, 1), (2, 1), (1, 2)] {
        let secs = run(workers, threads)?;
        let base = *first.get_or_insert(secs);
        println!(
            "{workers} worker(s) x {threads} thread(s): {secs:6.1} s  {:5.1} tracks/min  {:5.1}x real time  speed-up {:.2}",
            TRACKS as f64 / secs * 60.0,
            TRACKS as f64 * SECONDS / secs,
            base / secs
        );
    }
    Ok(())
}
