//! Scale-out with the real binaries on loopback: one `sonantica serve --queue`,
//! two `sonantica worker` processes and a real `redis-server` (with append-only
//! persistence). A batch is separated with every job done exactly once; a worker
//! killed mid-job has its job finished by the other; Redis and then the station
//! are killed and restarted mid-batch, and nothing is lost or done twice. A
//! remote worker's stems are served part by part while it makes them.

mod common;

use serde_json::json;
use sonantica_server::app::status::JobStatus;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use common::scale::{free_port, Redis, Worker};
use common::server::{song, Server};
use serde_json::Value;
use sonantica_audio::Decoder;

fn station(data: &Path, port: u16, queue: &str) -> Result<Server> {
    Server::start(
        data,
        &[
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--queue",
            queue,
            "--job-lease-secs",
            "3",
        ],
    )
}

fn jobs(server: &Server) -> Result<Vec<Value>> {
    Ok(server
        .json("/api/jobs?limit=1000")?
        .as_array()
        .context("jobs")?
        .clone())
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> Result<bool>) -> Result<()> {
    let start = Instant::now();
    loop {
        // The station may be restarting: errors count as "not yet".
        if ok().unwrap_or(false) {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn done_count(server: &Server) -> Result<usize> {
    Ok(jobs(server)?
        .iter()
        .filter(|j| j["status"] == json!(JobStatus::Done))
        .count())
}

/// Every track has exactly one complete set of stems, each as long as the input,
/// and no staging folder is left.
fn check_stems(server: &Server, data: &Path, tracks: &[(i64, usize)]) -> Result<()> {
    for &(track, frames) in tracks {
        let stems = server.json(&format!("/api/tracks/{track}/stems"))?;
        assert_eq!(
            stems.as_array().map(Vec::len),
            Some(4),
            "track {track}: {stems}"
        );
        let dir = data.join(format!("media/stems/{track}"));
        let mut entries: Vec<String> = std::fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        assert_eq!(entries, ["small4", "small4.all.flac"], "track {track}");
        for source in ["drums", "bass", "other", "vocals"] {
            let (_, audio) = Decoder::read_all(dir.join(format!("small4/{source}.flac")))?;
            assert_eq!(audio[0].len(), frames, "track {track} {source}");
        }
    }
    Ok(())
}

#[test]
fn two_workers_share_a_batch_and_a_killed_workers_job_is_finished_by_the_other() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let redis_dir = dir.path().join("redis");
    std::fs::create_dir(&redis_dir)?;
    let redis = Redis::start(free_port()?, &redis_dir)?;
    let port = free_port()?;
    let server = station(&data, port, &redis.url())?;
    let base = server.base.clone();

    let long = dir.path().join("long.wav");
    song(&long, 60.0)?;
    let short = dir.path().join("short.wav");
    song(&short, 4.0)?;
    let mut tracks = vec![(server.upload(&long)?, 60 * 44_100)];
    for _ in 0..5 {
        tracks.push((server.upload(&short)?, 4 * 44_100));
    }
    let mut w1 = Some(Worker::start(&base, &redis.url(), "w1")?);
    let mut w2 = Some(Worker::start(&base, &redis.url(), "w2")?);
    let (status, batch) = server.post("/api/library/separate", "application/json", Vec::new())?;
    assert_eq!(
        (status, batch["queued"].as_i64()),
        (202, Some(6)),
        "{batch}"
    );

    // Kill the worker that runs the long job, mid-job.
    let long_job = jobs(&server)?
        .iter()
        .find(|j| j["track_id"] == tracks[0].0)
        .and_then(|j| j["id"].as_i64())
        .context("the long job")?;
    let running = server.wait(
        long_job,
        |j| j["status"] == json!(JobStatus::Running) && j["progress"].as_f64().unwrap_or(0.0) > 0.0,
        Duration::from_secs(60),
    )?;
    let victim = running["worker"].as_str().unwrap_or_default().to_owned();
    match victim.as_str() {
        "w1" => drop(w1.take()),
        "w2" => drop(w2.take()),
        other => bail!("unexpected worker {other:?}"),
    }

    wait_until("every job done", Duration::from_secs(240), || {
        Ok(done_count(&server)? == 6)
    })?;
    let all = jobs(&server)?;
    assert_eq!(all.len(), 6, "one job per track");
    for j in &all {
        assert_eq!(j["status"], json!(JobStatus::Done), "{j}");
        assert_eq!(j["device"], "CPU", "the worker reports its device: {j}");
        if j["id"] == long_job {
            assert_eq!(j["attempts"], 2, "taken over once: {j}");
            assert_ne!(
                j["worker"],
                victim.as_str(),
                "finished by the other worker: {j}"
            );
        } else {
            assert_eq!(j["attempts"], 1, "{j}");
        }
    }
    check_stems(&server, &data, &tracks)?;

    // SIGTERM hands the current job back; another worker then finishes it.
    let mut survivor = w1.or(w2).context("one worker is left")?;
    let again = server.upload(&long)?;
    let (_, job) = server.post(
        &format!("/api/tracks/{again}/separate"),
        "application/json",
        Vec::new(),
    )?;
    let job = job["id"].as_i64().context("job id")?;
    server.wait(
        job,
        |j| j["status"] == json!(JobStatus::Running) && j["progress"].as_f64().unwrap_or(0.0) > 0.0,
        Duration::from_secs(60),
    )?;
    let term = Command::new("kill")
        .args(["-TERM", &survivor.0.id().to_string()])
        .status()?;
    assert!(term.success());
    let status = survivor.0.wait()?;
    assert!(status.success(), "the worker exits cleanly: {status}");
    let back = server.json(&format!("/api/jobs/{job}"))?;
    assert_eq!(
        back["status"],
        json!(JobStatus::Queued),
        "handed back: {back}"
    );
    assert_eq!(back["attempts"], 0);
    let _w3 = Worker::start(&base, &redis.url(), "w3")?;
    let done = server.wait(
        job,
        |j| j["status"] == json!(JobStatus::Done),
        Duration::from_secs(120),
    )?;
    assert_eq!(
        (done["worker"].as_str(), done["attempts"].as_i64()),
        (Some("w3"), Some(1))
    );
    check_stems(&server, &data, &[(again, 60 * 44_100)])?;
    Ok(())
}

#[test]
fn restarting_redis_and_the_station_mid_batch_loses_and_repeats_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let redis_dir = dir.path().join("redis");
    std::fs::create_dir(&redis_dir)?;
    let mut redis = Redis::start(free_port()?, &redis_dir)?;
    let port = free_port()?;
    let mut server = station(&data, port, &redis.url())?;
    let base = server.base.clone();

    let short = dir.path().join("short.wav");
    song(&short, 6.0)?;
    let mut tracks = Vec::new();
    for _ in 0..10 {
        tracks.push((server.upload(&short)?, 6 * 44_100));
    }
    let logs: Vec<PathBuf> = ["w1", "w2"]
        .iter()
        .map(|n| dir.path().join(format!("{n}.log")))
        .collect();
    let mut workers = Vec::new();
    for (name, log) in ["w1", "w2"].iter().zip(&logs) {
        let file = std::fs::File::create(log)?;
        workers.push(Worker::start_logged(
            &base,
            &redis.url(),
            name,
            file.into(),
        )?);
    }
    let (status, _) = server.post("/api/library/separate", "application/json", Vec::new())?;
    assert_eq!(status, 202);

    // Each outage lasts long enough for both workers to run into it.
    wait_until("two jobs done", Duration::from_secs(120), || {
        Ok(done_count(&server)? >= 2)
    })?;
    redis.restart(Duration::from_secs(3))?;
    wait_until("five jobs done", Duration::from_secs(120), || {
        Ok(done_count(&server)? >= 5)
    })?;
    drop(server); // SIGKILL
    std::thread::sleep(Duration::from_secs(3));
    server = station(&data, port, &redis.url())?;
    wait_until("every job done", Duration::from_secs(240), || {
        Ok(done_count(&server)? == 10)
    })?;
    let all = jobs(&server)?;
    assert_eq!(all.len(), 10, "one job per track");
    assert!(all.iter().all(|j| j["status"] == json!(JobStatus::Done)));
    check_stems(&server, &data, &tracks)?;
    drop(workers);
    let text: String = logs
        .iter()
        .map(std::fs::read_to_string)
        .collect::<Result<_, _>>()?;
    assert!(
        text.contains("Redis"),
        "the workers saw Redis go away:\n{text}"
    );
    assert!(
        text.contains("station"),
        "the workers saw the station go away:\n{text}"
    );
    Ok(())
}

/// The ready spans of a job, as pairs of seconds.
fn ready_spans(job: &Value) -> Vec<(f64, f64)> {
    job["ready"]
        .as_array()
        .map(|spans| {
            spans
                .iter()
                .filter_map(|s| Some((s[0].as_f64()?, s[1].as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_remote_workers_stems_are_served_as_it_makes_them_from_where_asked() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let redis_dir = dir.path().join("redis");
    std::fs::create_dir(&redis_dir)?;
    let redis = Redis::start(free_port()?, &redis_dir)?;
    let server = station(&data, free_port()?, &redis.url())?;
    let seconds = 60.0;
    let file = dir.path().join("long.wav");
    song(&file, seconds)?;
    let track = server.upload(&file)?;
    let _worker = Worker::start(&server.base, &redis.url(), "w1")?;
    let separate = |body: &str| {
        server.post(
            &format!("/api/tracks/{track}/separate"),
            "application/json",
            body.as_bytes().to_vec(),
        )
    };
    let (status, job) = separate(r#"{"from_s": 30}"#)?;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_i64().context("job id")?;

    // While the worker runs it: the spans grow from 30 s; windows inside them
    // are served, windows outside them are refused; a listener's seek to 5 s
    // moves the worker there before it reaches the end of the track.
    let mut snapshots: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut windows: Vec<(String, Vec<u8>)> = Vec::new();
    let mut refused = 0;
    let mut moved = false;
    let start = Instant::now();
    loop {
        let j = server.json(&format!("/api/jobs/{id}"))?;
        if j["status"] == json!(JobStatus::Done) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(240), "too slow: {j}");
        let spans = ready_spans(&j);
        if j["status"] != json!(JobStatus::Running)
            || spans.is_empty()
            || snapshots.last() == Some(&spans)
        {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        assert_eq!(j["stems"], 4, "a running job says how many stems: {j}");
        if snapshots.is_empty() {
            assert_eq!(spans[0].0, 30.0, "the first part starts where asked: {j}");
            let (status, again) = separate(r#"{"from_s": 5}"#)?;
            assert_eq!((status, &again["id"]), (200, &json!(id)), "{again}");
        }
        let covers = |a: f64, b: f64| spans.iter().any(|&(s, e)| s <= a && b <= e);
        if covers(5.0, 6.0) && !covers(59.0, seconds) {
            moved = true;
        }
        snapshots.push(spans.clone());
        let (from, to) = spans[spans.len() - 1];
        let duration = (to - from - 0.002).min(0.5);
        if duration >= 0.01 {
            let query = format!("start_s={}&duration_s={duration}", to - 0.001 - duration);
            let (status, body) = server.get(&format!("/api/tracks/{track}/multistem?{query}"))?;
            assert_eq!(status, 200, "{query}: {}", String::from_utf8_lossy(&body));
            windows.push((query, body));
        }
        if !covers(1.0, 2.0) {
            let (status, body) = server.get(&format!(
                "/api/tracks/{track}/multistem?start_s=1&duration_s=1"
            ))?;
            if status == 200 {
                // Made between the snapshot and this request: checked with
                // the windows below.
                windows.push(("start_s=1&duration_s=1".into(), body));
                continue;
            }
            let body: Value = serde_json::from_slice(&body)?;
            assert_eq!(
                (status, &body["error"]),
                (409, &json!("not_ready")),
                "{body}"
            );
            assert!(
                !ready_spans(&body).is_empty(),
                "the refusal names the spans: {body}"
            );
            refused += 1;
        }
    }
    let done = server.json(&format!("/api/jobs/{id}"))?;
    assert_eq!(ready_spans(&done), vec![(0.0, seconds)], "{done}");
    assert!(snapshots.len() >= 3, "the spans grew: {snapshots:?}");
    assert!(refused > 0, "a window not made yet was refused");
    assert!(
        moved,
        "the seek to 5 s was made before the end: {snapshots:?}"
    );
    // Every window served while the worker ran equals the finished stems'.
    for (query, body) in &windows {
        let (status, after) = server.get(&format!("/api/tracks/{track}/multistem?{query}"))?;
        assert_eq!(status, 200);
        assert!(
            after == *body,
            "{query}: the window changed when the job finished"
        );
    }
    eprintln!(
        "{} snapshots, {} windows, {refused} refusals; first {:?}, last {:?}",
        snapshots.len(),
        windows.len(),
        snapshots.first(),
        snapshots.last()
    );
    Ok(())
}
