//! The station's defences, tried against the real binary as a browser on
//! another site, a stranger with a worker's address, and ten listeners at once
//! would: a session cookie ends at logout and another origin cannot use it; the
//! worker API takes only the worker token and refuses stems that do not fit
//! the job; multistem windows stream with bounded memory.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use common::server::{song, Server, TOKEN, WORKER_TOKEN};
use serde_json::Value;
use sonantica_audio::{AudioWriter, ChannelLayout, OutputFormat};

/// Status and JSON body (or `null`) of a request built by `build`.
fn call(req: ureq::RequestBuilder<ureq::typestate::WithoutBody>) -> Result<(u16, Value, Vec<u8>)> {
    let mut res = req.call()?;
    reply(&mut res)
}

fn send(
    req: ureq::RequestBuilder<ureq::typestate::WithBody>,
    body: &[u8],
) -> Result<(u16, Value, Vec<u8>)> {
    let mut res = req.send(body)?;
    reply(&mut res)
}

fn reply(res: &mut ureq::http::Response<ureq::Body>) -> Result<(u16, Value, Vec<u8>)> {
    let status = res.status().as_u16();
    let body = res.body_mut().with_config().limit(1 << 30).read_to_vec()?;
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok((status, json, body))
}

/// A 24-bit stereo FLAC of `seconds` at `rate` with `channels` channels.
fn flac(path: &Path, seconds: f64, rate: u32, channels: usize) -> Result<Vec<u8>> {
    let n = (seconds * f64::from(rate)) as usize;
    let tone: Vec<f32> = (0..n)
        .map(|i| (0.1 * (i as f64 * 0.05).sin()) as f32)
        .collect();
    let planes: Vec<&[f32]> = (0..channels).map(|_| tone.as_slice()).collect();
    let mut w = AudioWriter::create(
        path,
        OutputFormat::Flac24,
        rate,
        ChannelLayout::default_for(channels),
    )?;
    w.write(&planes)?;
    w.finish()?;
    Ok(std::fs::read(path)?)
}

#[test]
fn a_session_cookie_ends_at_logout_and_other_sites_cannot_use_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = Server::start(&dir.path().join("data"), &[])?;
    let agent = Server::agent();
    let url = |p: &str| format!("{}{p}", server.base);
    let login = |proto: Option<&str>| -> Result<String> {
        let mut req = agent
            .post(url("/api/login"))
            .header("Content-Type", "application/json");
        if let Some(p) = proto {
            req = req.header("X-Forwarded-Proto", p);
        }
        let res = req.send(format!(r#"{{"token":"{TOKEN}"}}"#))?;
        anyhow::ensure!(res.status() == 204, "login: {}", res.status());
        Ok(res
            .headers()
            .get("set-cookie")
            .context("no cookie")?
            .to_str()?
            .to_owned())
    };
    let set = login(None)?;
    assert!(!set.contains(TOKEN), "the cookie is not the token: {set}");
    assert!(set.contains("HttpOnly") && !set.contains("Secure"), "{set}");
    assert!(login(Some("https"))?.contains("; Secure"), "behind TLS");
    let cookie = set.split(';').next().unwrap_or_default().to_owned();

    let (status, _, _) = call(agent.get(url("/api/tracks")).header("Cookie", &cookie))?;
    assert_eq!(status, 200);
    // A page on another origin (another port is another origin) cannot change
    // anything with the cookie, whatever its browser says.
    for (name, value) in [
        ("Origin", "http://127.0.0.1:9999"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Site", "same-site"),
    ] {
        let (status, body, _) = send(
            agent
                .post(url("/api/library/separate"))
                .header("Cookie", &cookie)
                .header("Content-Type", "application/json")
                .header(name, value),
            b"{}",
        )?;
        assert_eq!(
            (status, &body["error"]),
            (403, &Value::from("forbidden")),
            "{name}: {value}"
        );
    }
    // A form or text/plain body (what a page can send without asking) is refused.
    let (status, body, _) = send(
        agent
            .post(url("/api/library/separate"))
            .header("Cookie", &cookie)
            .header("Sec-Fetch-Site", "same-origin")
            .header("Content-Type", "text/plain"),
        b"{}",
    )?;
    assert_eq!(
        (status, &body["error"]),
        (415, &Value::from("unsupported_media"))
    );
    // The Studio cannot be framed.
    let res = agent.get(url("/")).call()?;
    assert_eq!(
        res.headers().get("x-frame-options").map(|v| v.as_bytes()),
        Some(&b"DENY"[..])
    );
    assert!(res.headers().contains_key("content-security-policy"));

    // Logout ends the session: the copy of the cookie no longer works.
    let (status, _, _) = send(
        agent
            .post(url("/api/logout"))
            .header("Cookie", &cookie)
            .header("Sec-Fetch-Site", "same-origin"),
        b"",
    )?;
    assert_eq!(status, 204);
    let (status, body, _) = call(agent.get(url("/api/tracks")).header("Cookie", &cookie))?;
    assert_eq!(
        (status, &body["error"]),
        (401, &Value::from("unauthorized"))
    );
    // Without a queue there is no worker API.
    let (status, _, _) = send(
        agent
            .post(url("/api/worker/jobs/1/claim"))
            .header("Authorization", format!("Bearer {WORKER_TOKEN}"))
            .header("Content-Type", "application/json"),
        br#"{"worker":"w"}"#,
    )?;
    assert_eq!(status, 404);
    Ok(())
}

/// A station with a (never reached) Redis queue: jobs wait for workers, and
/// this test is the worker.
fn queued_station(data: &Path) -> Result<Server> {
    Server::start(data, &["--queue", "redis://127.0.0.1:9"])
}

/// Claims the job of `track` as worker `w`, with the worker token.
fn claim(server: &Server, track: i64) -> Result<i64> {
    let (status, job) = server.post(
        &format!("/api/tracks/{track}/separate"),
        "application/json",
        Vec::new(),
    )?;
    anyhow::ensure!(status == 202, "separate: {status} {job}");
    let id = job["id"].as_i64().context("job id")?;
    let (status, reply, _) = send(
        Server::agent()
            .post(format!("{}/api/worker/jobs/{id}/claim", server.base))
            .header("Authorization", format!("Bearer {WORKER_TOKEN}"))
            .header("Content-Type", "application/json"),
        br#"{"worker":"w"}"#,
    )?;
    anyhow::ensure!(status == 200 && reply["outcome"] == "claimed", "{reply}");
    Ok(id)
}

fn put_stem(server: &Server, job: i64, source: &str, body: &[u8]) -> Result<(u16, Value)> {
    let (status, json, _) = send(
        Server::agent()
            .put(format!(
                "{}/api/worker/jobs/{job}/stems/{source}?worker=w",
                server.base
            ))
            .header("Authorization", format!("Bearer {WORKER_TOKEN}"))
            .header("Content-Type", "audio/flac"),
        body,
    )?;
    Ok((status, json))
}

fn complete(server: &Server, job: i64, sources: &str) -> Result<(u16, Value)> {
    let (status, json, _) = send(
        Server::agent()
            .post(format!("{}/api/worker/jobs/{job}/complete", server.base))
            .header("Authorization", format!("Bearer {WORKER_TOKEN}"))
            .header("Content-Type", "application/json"),
        format!(r#"{{"worker":"w","sources":{sources}}}"#).as_bytes(),
    )?;
    Ok((status, json))
}

const FOUR: [&str; 4] = ["drums", "bass", "other", "vocals"];
const FOUR_JSON: &str = r#"["drums","bass","other","vocals"]"#;

#[test]
fn the_worker_api_takes_only_the_worker_token_and_refuses_stems_that_do_not_fit() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let server = queued_station(&data)?;
    let input = dir.path().join("song.wav");
    song(&input, 2.0)?;
    let track = server.upload(&input)?;
    let (status, job) = server.post(
        &format!("/api/tracks/{track}/separate"),
        "application/json",
        Vec::new(),
    )?;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_i64().context("job id")?;
    let claim_with = |auth: Option<&str>| -> Result<(u16, Value)> {
        let mut req = Server::agent()
            .post(format!("{}/api/worker/jobs/{id}/claim", server.base))
            .header("Content-Type", "application/json");
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let (s, j, _) = send(req, br#"{"worker":"w"}"#)?;
        Ok((s, j))
    };
    assert_eq!(claim_with(None)?.0, 401);
    assert_eq!(claim_with(Some("Bearer not-the-worker-token"))?.0, 401);
    // The user's token is not a worker's.
    let (status, body) = claim_with(Some(&format!("Bearer {TOKEN}")))?;
    assert_eq!((status, &body["error"]), (403, &Value::from("forbidden")));
    let (status, body) = claim_with(Some(&format!("Bearer {WORKER_TOKEN}")))?;
    assert_eq!((status, &body["outcome"]), (200, &Value::from("claimed")));
    // The worker token fetches the job's audio, and nothing else.
    let audio_url = body["audio_url"].as_str().context("audio_url")?;
    let (status, _, audio) = call(
        Server::agent()
            .get(format!("{}{audio_url}", server.base))
            .header("Authorization", format!("Bearer {WORKER_TOKEN}")),
    )?;
    assert_eq!((status, audio), (200, std::fs::read(&input)?));
    let (status, _, _) = call(
        Server::agent()
            .get(format!("{}/api/tracks", server.base))
            .header("Authorization", format!("Bearer {WORKER_TOKEN}")),
    )?;
    assert_eq!(status, 401);

    // Stems that do not fit the job: 422, and nothing kept.
    let stems_dir = data.join(format!("media/stems/{track}"));
    let scratch = dir.path().join("stem.flac");
    for (what, source, bytes) in [
        ("8 kHz", "vocals", flac(&scratch, 2.0, 8_000, 2)?),
        ("8 channels", "vocals", flac(&scratch, 2.0, 44_100, 8)?),
        ("mono", "vocals", flac(&scratch, 2.0, 44_100, 1)?),
        (
            "1 s of a 2 s track",
            "vocals",
            flac(&scratch, 1.0, 44_100, 2)?,
        ),
        ("no such source", "kazoo", flac(&scratch, 2.0, 44_100, 2)?),
    ] {
        let (status, body) = put_stem(&server, id, source, &bytes)?;
        assert_eq!(
            (status, &body["error"]),
            (422, &Value::from("bad_stems")),
            "{what}: {body}"
        );
        assert!(!stems_dir.exists(), "{what}: something was kept");
    }
    let (status, body) = complete(&server, id, r#"["drums","drums","bass","other","vocals"]"#)?;
    assert_eq!(
        (status, &body["error"]),
        (422, &Value::from("bad_stems")),
        "{body}"
    );
    // Stems of two lengths (each within the track's slack) are no separation.
    let good = flac(&scratch, 2.0, 44_100, 2)?;
    let shorter = flac(&scratch, 1.9, 44_100, 2)?;
    for source in FOUR {
        let bytes = if source == "bass" { &shorter } else { &good };
        assert_eq!(put_stem(&server, id, source, bytes)?.0, 204, "{source}");
    }
    let (status, body) = complete(&server, id, FOUR_JSON)?;
    assert_eq!(
        (status, &body["error"]),
        (422, &Value::from("bad_stems")),
        "{body}"
    );
    assert!(!stems_dir.exists(), "refused stems are all removed");
    // A fitting set is stored.
    for source in FOUR {
        assert_eq!(put_stem(&server, id, source, &good)?.0, 204, "{source}");
    }
    let (status, body) = complete(&server, id, FOUR_JSON)?;
    assert_eq!(
        (status, &body["status"]),
        (200, &Value::from("done")),
        "{body}"
    );
    let stems = server.json(&format!("/api/tracks/{track}/stems"))?;
    assert_eq!(stems.as_array().map(Vec::len), Some(4), "{stems}");
    Ok(())
}

/// Resident memory of a process in bytes.
fn rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .context("VmRSS")?
        .parse()?;
    Ok(kb * 1024)
}

#[test]
fn ten_concurrent_60_s_windows_add_less_than_100_mb_of_memory() -> Result<()> {
    const SECONDS: f64 = 70.0;
    let dir = tempfile::tempdir()?;
    let server = queued_station(&dir.path().join("data"))?;
    let input = dir.path().join("song.wav");
    song(&input, SECONDS)?;
    let track = server.upload(&input)?;
    // Stems through the worker API (no separation needed to have some).
    let job = claim(&server, track)?;
    let stem = flac(&dir.path().join("stem.flac"), SECONDS, 44_100, 2)?;
    for source in FOUR {
        assert_eq!(put_stem(&server, job, source, &stem)?.0, 204, "{source}");
    }
    let (status, body) = complete(&server, job, FOUR_JSON)?;
    anyhow::ensure!(status == 200, "complete: {body}");
    // One window first, so that what every later request shares (the
    // multichannel file, buffers the allocator keeps) is there before measuring.
    let window = format!("/api/tracks/{track}/multistem?start_s=5&duration_s=60");
    let (status, first) = server.get(&window)?;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&first));
    std::thread::sleep(Duration::from_millis(500));
    let before = rss(server.pid())?;
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done, pid) = (Arc::clone(&peak), Arc::clone(&done), server.pid());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                if let Ok(r) = rss(pid) {
                    peak.fetch_max(r, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let results: Vec<Result<(u16, usize)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                s.spawn(|| {
                    let (status, body) = server.get(&window)?;
                    Ok((status, body.len()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| bail!("a request thread panicked"))
            })
            .collect()
    });
    done.store(true, Ordering::SeqCst);
    let _ = sampler.join();
    for r in results {
        let (status, len) = r?;
        assert_eq!((status, len), (200, first.len()));
    }
    // 60 s of 8 channels of f32 is 85 MB a window: ten built in memory would
    // be 850 MB.
    let samples = 60 * 44_100 * 8 * 4;
    assert!(
        (samples..samples + 256).contains(&first.len()),
        "a 60 s 8-channel float WAV: {} bytes",
        first.len()
    );
    let added = peak.load(Ordering::SeqCst).saturating_sub(before);
    eprintln!(
        "ten 60 s windows: RSS {:.1} MB before, peak +{:.1} MB",
        before as f64 / 1e6,
        added as f64 / 1e6
    );
    assert!(
        added < 100_000_000,
        "ten windows added {added} bytes of RSS"
    );
    Ok(())
}
