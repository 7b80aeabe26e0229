//! API responsiveness under separation load: `GET /api/tracks` latency while two
//! separation jobs keep both cores busy, against the same requests on an idle
//! server. Loopback only, bounded in time and requests.
//!
//! `cargo bench -p sonantica --bench api_load`
//!
//! The server runs with two workers of one thread each and the small fixture
//! model (set `SONANTICA_BENCH_MODEL` to a model file to use another, e.g. the
//! full-size random-weight htdemucs that `tools/reference/parity_full.py` writes).
//! The library holds 200 tracks; each request asks for a page of 50.

#[path = "../tests/common/mod.rs"]
mod common;

use serde_json::json;
use sonantica_server::app::status::JobStatus;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use common::server::{song, Server};

const CLIENTS: usize = 4;
const WINDOW: Duration = Duration::from_secs(15);
const MAX_REQUESTS: usize = 20_000;

/// Latencies of `CLIENTS` threads requesting a page of tracks back to back for
/// `WINDOW` (or until `stop` says so), in milliseconds.
fn hammer(server: &Server, stop: &(dyn Fn() -> bool + Sync)) -> Result<Vec<f64>> {
    let start = Instant::now();
    let results: Vec<Result<Vec<f64>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|k| {
                scope.spawn(move || -> Result<Vec<f64>> {
                    let mut lat = Vec::new();
                    while start.elapsed() < WINDOW && lat.len() < MAX_REQUESTS / CLIENTS {
                        if k == 0 && stop() {
                            break;
                        }
                        let t = Instant::now();
                        let (status, body) = server.get("/api/tracks?limit=50&offset=20")?;
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                        anyhow::ensure!(status == 200, "status {status}");
                        anyhow::ensure!(body.len() > 1000, "short page");
                    }
                    Ok(lat)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("client panicked")))
            })
            .collect()
    });
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    all.sort_by(f64::total_cmp);
    Ok(all)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

fn report(label: &str, lat: &[f64], seconds: f64) {
    println!(
        "{label:<28} {:>6} requests  {:>7.0} req/s  p50 {:>6.2} ms  p95 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms",
        lat.len(),
        lat.len() as f64 / seconds,
        pct(lat, 0.5),
        pct(lat, 0.95),
        pct(lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
}

fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let mut extra = vec!["--workers", "2", "--threads", "1"];
    let model = std::env::var("SONANTICA_BENCH_MODEL").ok();
    if let Some(m) = &model {
        extra.extend(["--model", m.as_str()]);
    }
    let server = Server::start(&data, &extra)?;
    let short = dir.path().join("short.wav");
    song(&short, 0.2)?;
    for _ in 0..198 {
        server.upload(&short)?;
    }
    let long = dir.path().join("long.wav");
    song(&long, 600.0)?;
    let a = server.upload(&long)?;
    let b = server.upload(&long)?;
    // Let the background analyses of the uploads finish before measuring.
    std::thread::sleep(Duration::from_secs(3));

    let t = Instant::now();
    let idle = hammer(&server, &|| false)?;
    report("idle server", &idle, t.elapsed().as_secs_f64());

    let mut jobs = Vec::new();
    for track in [a, b] {
        let (status, job) = server.post(
            &format!("/api/tracks/{track}/separate"),
            "application/json",
            Vec::new(),
        )?;
        anyhow::ensure!(status == 202, "separate: {status} {job}");
        jobs.push(job["id"].as_i64().context("job id")?);
    }
    for &j in &jobs {
        server.wait(
            j,
            |v| v["status"] == json!(JobStatus::Running),
            Duration::from_secs(60),
        )?;
    }
    let both_running = || {
        jobs.iter().any(|j| {
            server
                .json(&format!("/api/jobs/{j}"))
                .map_or(true, |v| v["status"] != json!(JobStatus::Running))
        })
    };
    let t = Instant::now();
    let busy = hammer(&server, &both_running)?;
    let secs = t.elapsed().as_secs_f64();
    let still = !both_running();
    report("two separation jobs running", &busy, secs);
    let progress: Vec<String> = jobs
        .iter()
        .map(|j| {
            server
                .json(&format!("/api/jobs/{j}"))
                .map(|v| {
                    format!(
                        "{} {:.0}%",
                        v["status"],
                        100.0 * v["progress"].as_f64().unwrap_or(0.0)
                    )
                })
                .unwrap_or_default()
        })
        .collect();
    println!(
        "jobs after the window: {} (both still running through it: {still}); model: {}",
        progress.join(", "),
        model.as_deref().unwrap_or("small4 fixture")
    );
    println!(
        "p99 ratio busy/idle: {:.2}",
        pct(&busy, 0.99) / pct(&idle, 0.99)
    );
    Ok(())
}
