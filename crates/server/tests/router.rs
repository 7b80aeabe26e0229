//! Router tests: every endpoint's golden path and its auth, bad-input and
//! not-found cases, through the real router (no sockets), with a small fixture
//! model for separation. After each failure the test checks that nothing was left
//! on disk or in the database.

use serde_json::json;
use sonantica_server::app::status::{AnalysisStatus, JobStatus};
use sonantica_server::http::workers::ClaimOutcome;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::Value;
use sonantica_audio::{AudioWriter, ChannelLayout, Decoder, OutputFormat};
use sonantica_server::{App, Config};
use tower::ServiceExt;

const TOKEN: &str = "router-test-token-0123456789";
const WORKER_TOKEN: &str = "router-test-worker-token-0123456789";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../demucs/tests/fixtures")
}

struct Station {
    app: App,
    router: axum::Router,
    dir: tempfile::TempDir,
}

async fn station_with(edit: impl FnOnce(&mut Config), background: bool) -> Result<Station> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::new(dir.path().join("data"));
    config.token = Some(TOKEN.into());
    config.default_model = fixtures()
        .join("small4.safetensors")
        .to_string_lossy()
        .into_owned();
    config.threads = 1;
    config.job_lease = Duration::from_secs(2);
    edit(&mut config);
    let (app, shown) = App::open(config).await?;
    assert!(shown.is_none(), "a configured token is never printed");
    if background {
        app.start_background();
    }
    let router = sonantica_server::http::router(app.clone());
    Ok(Station { app, router, dir })
}

/// A station that puts jobs on a (never reached) Redis queue: its worker API
/// is on, and nothing runs jobs but the test acting as a worker.
async fn queued_station() -> Result<Station> {
    station_with(
        |c| {
            c.queue = Some("redis://127.0.0.1:9".into());
            c.worker_token = Some(WORKER_TOKEN.into());
        },
        false,
    )
    .await
}

async fn station() -> Result<Station> {
    station_with(|_| {}, true).await
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts an error reply: the status and the JSON `{error, detail}` shape.
    fn assert_error(&self, status: StatusCode, code: &str) -> Result<String> {
        let j = self.json()?;
        assert_eq!(self.status, status, "{j}");
        assert_eq!(j["error"], code, "{j}");
        let detail = j["detail"].as_str().unwrap_or_default().to_owned();
        assert!(!detail.is_empty(), "{j}");
        // Files are named relative to the media or library folder, never by
        // where the station keeps them (every test station lives in a temp dir).
        let tmp = std::env::temp_dir();
        assert!(
            !detail.contains(&*tmp.to_string_lossy()),
            "an absolute path in {detail:?}"
        );
        Ok(detail)
    }
}

impl Station {
    async fn send(&self, req: Request<Body>) -> Result<Reply> {
        let res = self.router.clone().oneshot(req).await?;
        let status = res.status();
        let headers = res.headers().clone();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await?
            .to_vec();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    fn req(&self, method: Method, uri: &str) -> axum::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
    }

    /// A request with the worker token.
    fn wreq(&self, method: Method, uri: &str) -> axum::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {WORKER_TOKEN}"))
    }

    /// A worker's JSON call.
    async fn worker_post(&self, uri: &str, body: &str) -> Result<Reply> {
        self.send(
            self.wreq(Method::POST, uri)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_owned()))?,
        )
        .await
    }

    async fn get(&self, uri: &str) -> Result<Reply> {
        self.send(self.req(Method::GET, uri).body(Body::empty())?)
            .await
    }

    async fn post_json(&self, uri: &str, body: &str) -> Result<Reply> {
        self.send(
            self.req(Method::POST, uri)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_owned()))?,
        )
        .await
    }

    async fn delete(&self, uri: &str) -> Result<Reply> {
        self.send(self.req(Method::DELETE, uri).body(Body::empty())?)
            .await
    }

    async fn upload(&self, name: &str, bytes: &[u8]) -> Result<Reply> {
        let boundary = "sonantica-test-boundary";
        let mut body = Vec::new();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        self.send(
            self.req(Method::POST, "/api/tracks")
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(Body::from(body))?,
        )
        .await
    }

    /// Uploads and returns the new track's id.
    async fn upload_id(&self, name: &str, bytes: &[u8]) -> Result<i64> {
        let r = self.upload(name, bytes).await?;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()?["id"].as_i64().context("id")
    }

    fn media(&self) -> PathBuf {
        self.dir.path().join("data/media")
    }

    async fn count(&self, table: &str) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(self.app.db())
            .await?;
        Ok(n)
    }

    /// Nothing half-done on disk: no temporary files, no staging folders, and
    /// exactly one upload file per uploaded track.
    async fn assert_clean(&self) -> Result<()> {
        let tmp: Vec<_> = std::fs::read_dir(self.media().join("tmp"))?.collect();
        assert!(tmp.is_empty(), "media/tmp holds {tmp:?}");
        let uploads = std::fs::read_dir(self.media().join("uploads"))?.count() as i64;
        let (tracks,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM tracks WHERE origin = 'upload'")
                .fetch_one(self.app.db())
                .await?;
        assert_eq!(uploads, tracks, "upload files vs upload tracks");
        for t in std::fs::read_dir(self.media().join("stems"))? {
            for e in std::fs::read_dir(t?.path())? {
                let name = e?.file_name().to_string_lossy().into_owned();
                assert!(!name.starts_with('.'), "staging left behind: {name}");
            }
        }
        Ok(())
    }

    async fn wait_job(&self, id: i64, until: &[JobStatus]) -> Result<Value> {
        for _ in 0..600 {
            let j = self.get(&format!("/api/jobs/{id}")).await?.json()?;
            if until.iter().any(|s| j["status"] == json!(s)) {
                return Ok(j);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("job {id} did not reach {until:?}")
    }

    async fn wait_analysis(&self, id: i64) -> Result<Value> {
        for _ in 0..400 {
            let t = self.get(&format!("/api/tracks/{id}")).await?.json()?;
            if t["analysis_status"] != json!(AnalysisStatus::Pending) {
                return Ok(t);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("analysis of track {id} did not finish")
    }
}

/// A WAV of `seconds` with a different sine in each channel (left `a` Hz at
/// amplitude 0.5, right `b` Hz at 0.25), as bytes.
fn wav(seconds: f64, a: f64, b: f64) -> Result<Vec<u8>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("t.wav");
    write_tone(&path, seconds, a, b, OutputFormat::Wav16)?;
    Ok(std::fs::read(path)?)
}

/// The stems of a WAV file's `bytes` made on the CPU with the fixture model,
/// as a worker makes them (in a folder that lives as long as the first value).
fn cpu_stems(bytes: &[u8]) -> Result<(tempfile::TempDir, sonantica_pipeline::separate::Separated)> {
    use sonantica_pipeline::separate::{separate_file, SeparateSettings};
    let work = tempfile::tempdir()?;
    let input = work.path().join("in.wav");
    std::fs::write(&input, bytes)?;
    let separator = sonantica_demucs::load_separator(&fixtures().join("small4.safetensors"))?;
    let done = separate_file(
        &input,
        &separator,
        &work.path().join("stems"),
        &SeparateSettings::default(),
        &mut |_| {},
        &|| false,
    )?;
    Ok((work, done))
}

fn write_tone(path: &Path, seconds: f64, a: f64, b: f64, format: OutputFormat) -> Result<()> {
    let rate = 44_100u32;
    let n = (seconds * f64::from(rate)) as usize;
    let t = |i: usize| i as f64 / f64::from(rate);
    let left: Vec<f32> = (0..n)
        .map(|i| (0.5 * (2.0 * std::f64::consts::PI * a * t(i)).sin()) as f32)
        .collect();
    let right: Vec<f32> = (0..n)
        .map(|i| (0.25 * (2.0 * std::f64::consts::PI * b * t(i)).sin()) as f32)
        .collect();
    let mut w = AudioWriter::create(path, format, rate, ChannelLayout::Stereo)?;
    w.write(&[&left, &right])?;
    w.finish()?;
    Ok(())
}

/// A 24-bit FLAC of `seconds` of a quiet sine in every channel, as bytes.
fn flac(seconds: f64, rate: u32, channels: usize) -> Result<Vec<u8>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.flac");
    let n = (seconds * f64::from(rate)) as usize;
    let tone: Vec<f32> = (0..n)
        .map(|i| (0.1 * (i as f64 * 0.05).sin()) as f32)
        .collect();
    let planes: Vec<&[f32]> = (0..channels).map(|_| tone.as_slice()).collect();
    let mut w = AudioWriter::create(
        &path,
        OutputFormat::Flac24,
        rate,
        ChannelLayout::default_for(channels),
    )?;
    w.write(&planes)?;
    w.finish()?;
    Ok(std::fs::read(path)?)
}

fn decode(path: &Path) -> Result<Vec<Vec<f32>>> {
    Ok(Decoder::read_all(path)?.1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_call_but_health_and_login_needs_the_token() -> Result<()> {
    let st = station().await?;
    let health = st
        .send(Request::get("/api/health").body(Body::empty())?)
        .await?;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()?["status"], "ok");
    let spec = st
        .send(Request::get("/api/openapi.json").body(Body::empty())?)
        .await?;
    assert_eq!(spec.status, StatusCode::OK);

    for (method, uri) in [
        (Method::GET, "/api/tracks"),
        (Method::POST, "/api/tracks"),
        (Method::GET, "/api/tracks/1"),
        (Method::DELETE, "/api/tracks/1"),
        (Method::GET, "/api/tracks/1/audio"),
        (Method::GET, "/api/tracks/1/overview"),
        (Method::GET, "/api/tracks/1/stems"),
        (Method::GET, "/api/tracks/1/stems/vocals"),
        (Method::GET, "/api/tracks/1/stems.zip"),
        (Method::GET, "/api/tracks/1/multistem"),
        (Method::GET, "/api/tracks/1/stream?rate=48000"),
        (Method::POST, "/api/tracks/1/mix"),
        (Method::POST, "/api/tracks/1/separate"),
        (Method::GET, "/api/jobs"),
        (Method::GET, "/api/jobs/1"),
        (Method::DELETE, "/api/jobs/1"),
        (Method::GET, "/api/jobs/1/events"),
        (Method::POST, "/api/library/scan"),
        (Method::POST, "/api/library/separate"),
        (Method::GET, "/api/models"),
        (Method::GET, "/api/albums"),
        (Method::GET, "/api/albums/1"),
        (Method::GET, "/api/albums/1/cover"),
        (Method::GET, "/api/artists"),
    ] {
        let none = st
            .send(
                Request::builder()
                    .method(method.clone())
                    .uri(uri)
                    .body(Body::empty())?,
            )
            .await?;
        none.assert_error(StatusCode::UNAUTHORIZED, "unauthorized")?;
        assert_eq!(none.headers[header::WWW_AUTHENTICATE], "Bearer");
        let wrong = st
            .send(
                Request::builder()
                    .method(method.clone())
                    .uri(uri)
                    .header(header::AUTHORIZATION, "Bearer not-the-token-at-all")
                    .body(Body::empty())?,
            )
            .await?;
        wrong.assert_error(StatusCode::UNAUTHORIZED, "unauthorized")?;
    }

    // Browsers log in for a cookie.
    let bad_login = st
        .send(
            Request::post("/api/login")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"token":"wrong-token-wrong-token"}"#))?,
        )
        .await?;
    bad_login.assert_error(StatusCode::UNAUTHORIZED, "unauthorized")?;
    let login = st
        .send(
            Request::post("/api/login")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(format!(r#"{{"token":"{TOKEN}"}}"#)))?,
        )
        .await?;
    assert_eq!(login.status, StatusCode::NO_CONTENT);
    let cookie = login.headers[header::SET_COOKIE].to_str()?.to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let pair = cookie.split(';').next().unwrap_or_default().to_owned();
    let with_cookie = st
        .send(
            Request::get("/api/tracks")
                .header(header::COOKIE, format!("theme=dark; {pair}"))
                .body(Body::empty())?,
        )
        .await?;
    assert_eq!(with_cookie.status, StatusCode::OK);
    let logout = st
        .send(Request::post("/api/logout").body(Body::empty())?)
        .await?;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    assert!(logout.headers[header::SET_COOKIE]
        .to_str()?
        .contains("Max-Age=0"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_token_is_shown_once_and_stored_hashed() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (app, shown) = App::open(Config::new(dir.path())).await?;
    let token = shown.context("first run shows a token")?;
    assert!(app.auth().check_token(&token));
    assert!(!app.auth().check_token("something else"));
    let (stored,): (String,) = sqlx::query_as("SELECT value FROM settings")
        .fetch_one(app.db())
        .await?;
    assert!(!stored.contains(&token), "the token itself is not stored");
    drop(app);
    let (again, shown) = App::open(Config::new(dir.path())).await?;
    assert!(shown.is_none(), "a second start shows nothing");
    assert!(again.auth().check_token(&token));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_stores_the_track_and_its_analysis_matches_the_signal() -> Result<()> {
    let st = station().await?;
    let up = st
        .upload("../../Tone Test.wav", &wav(3.0, 441.0, 882.0)?)
        .await?;
    assert_eq!(
        up.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&up.body)
    );
    let t = up.json()?;
    let id = t["id"].as_i64().context("id")?;
    assert_eq!(t["title"], "Tone Test");
    assert_eq!(t["original_name"], "../../Tone Test.wav");
    assert_eq!(t["codec"], "pcm_s16le");
    assert_eq!(t["sample_rate"], 44100);
    assert_eq!(t["channels"], 2);
    assert_eq!(t["is_separated"], false);
    // The client's file name never becomes a path.
    let stored: Vec<_> = std::fs::read_dir(st.media().join("uploads"))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    assert_eq!(stored.len(), 1);
    assert!(stored[0].ends_with(".wav") && !stored[0].contains("Tone"));

    let t = st.wait_analysis(id).await?;
    assert_eq!(t["analysis_status"], json!(AnalysisStatus::Done), "{t}");
    let a = &t["analysis"];
    // Left peak 0.5 (-6.02 dBFS), right 0.25; independent sines: correlation ~0.
    let peak = a["sample_peak_dbfs"].as_f64().context("peak")?;
    assert!((peak - -6.02).abs() < 0.05, "sample peak {peak}");
    let corr = a["correlation"].as_f64().context("correlation")?;
    assert!(corr.abs() < 0.02, "correlation {corr}");
    let dur = a["duration_s"].as_f64().context("duration")?;
    assert!((dur - 3.0).abs() < 1e-6, "duration {dur}");
    // The seek bar's overview: 3 s in 60 columns of 50 ms; the envelope of the
    // louder (left) sine, 0.5 = 64/127; no clipping; once the whole 3 s are in,
    // the short-term loudness of a steady signal is its integrated loudness.
    let o = st
        .get(&format!("/api/tracks/{id}/overview"))
        .await?
        .json()?;
    let cols = o["max"].as_array().context("max")?;
    assert_eq!(cols.len(), 60, "{o}");
    assert!((o["seconds_per_column"].as_f64().unwrap_or(0.0) - 0.05).abs() < 1e-9);
    assert!(cols.iter().all(|m| m == 64), "{o}");
    assert!(o["min"].as_array().context("min")?.iter().all(|m| m == -64));
    assert_eq!(o["clipped"], json!([]));
    let last = o["loudness"][59].as_f64().context("loudness")?;
    let integrated = a["integrated_lufs"].as_f64().context("integrated")?;
    assert!(
        (last - integrated).abs() < 0.2,
        "short-term {last} vs integrated {integrated}"
    );

    // Range as RFC 9110 has it: a suffix longer than the file is the whole file
    // (206), another unit or several ranges are ignored (200, the whole file).
    let whole = st.get(&format!("/api/tracks/{id}/audio")).await?;
    for (range, status) in [
        ("bytes=-999999999", StatusCode::PARTIAL_CONTENT),
        ("items=0-9", StatusCode::OK),
        ("bytes=0-9, 20-29", StatusCode::OK),
    ] {
        let r = st
            .send(
                st.req(Method::GET, &format!("/api/tracks/{id}/audio"))
                    .header(header::RANGE, range)
                    .body(Body::empty())?,
            )
            .await?;
        assert_eq!(
            (r.status, r.body.len()),
            (status, whole.body.len()),
            "{range}"
        );
    }

    let list = st.get("/api/tracks?q=tone&limit=10").await?.json()?;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], id);
    let none = st.get("/api/tracks?q=zzz").await?.json()?;
    assert_eq!(none["total"], 0);
    // LIKE wildcards in a search are literal.
    let percent = st.get("/api/tracks?q=%25").await?.json()?;
    assert_eq!(percent["total"], 0);
    st.get("/api/tracks?limit=0")
        .await?
        .assert_error(StatusCode::BAD_REQUEST, "bad_request")?;
    st.get("/api/tracks?offset=x")
        .await?
        .assert_error(StatusCode::BAD_REQUEST, "bad_request")?;
    st.assert_clean().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_refused_and_leave_nothing_behind() -> Result<()> {
    let st = station_with(|c| c.max_upload_bytes = 200_000, true).await?;
    let text = st
        .upload("song.mp3", b"this is not audio at all, just text")
        .await?;
    let detail = text.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media")?;
    assert!(detail.contains("song.mp3"), "{detail}");
    st.upload("empty.wav", b"")
        .await?
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media")?;
    // Audio inside, wrong name outside: accepted, stored by its real type.
    let flac_dir = tempfile::tempdir()?;
    let flac = flac_dir.path().join("x.flac");
    write_tone(&flac, 0.5, 300.0, 500.0, OutputFormat::Flac16)?;
    let renamed = st
        .upload("actually-flac.mp3", &std::fs::read(&flac)?)
        .await?;
    assert_eq!(renamed.status, StatusCode::CREATED);
    assert_eq!(renamed.json()?["codec"], "flac");
    // Too large: 3 s of 16-bit stereo is 529 kB.
    let big = st.upload("big.wav", &wav(3.0, 100.0, 200.0)?).await?;
    big.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "too_large")?;
    // Not multipart, or no `file` field.
    let not_multipart = st.post_json("/api/tracks", "{}").await?;
    not_multipart.assert_error(StatusCode::BAD_REQUEST, "bad_request")?;
    let no_field = st
        .send(
            st.req(Method::POST, "/api/tracks")
                .header(header::CONTENT_TYPE, "multipart/form-data; boundary=b")
                .body(Body::from(
                    "--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--b--\r\n",
                ))?,
        )
        .await?;
    no_field.assert_error(StatusCode::BAD_REQUEST, "bad_request")?;
    let broken = st
        .send(
            st.req(Method::POST, "/api/tracks")
                .header(header::CONTENT_TYPE, "multipart/form-data; boundary=b")
                .body(Body::from(
                    "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF",
                ))?,
        )
        .await?;
    assert!(broken.status.is_client_error(), "{}", broken.status);
    assert_eq!(st.count("tracks").await?, 1, "only the FLAC was added");
    st.assert_clean().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_are_404_and_malformed_ids_400() -> Result<()> {
    let st = station().await?;
    for uri in [
        "/api/tracks/999",
        "/api/tracks/999/audio",
        "/api/tracks/999/stems",
        "/api/tracks/999/stems/vocals",
        "/api/tracks/999/stems.zip",
        "/api/tracks/999/multistem",
        "/api/jobs/999",
        "/api/jobs/999/events",
        "/api/nothing-here",
    ] {
        st.get(uri)
            .await?
            .assert_error(StatusCode::NOT_FOUND, "not_found")?;
    }
    st.post_json("/api/tracks/999/separate", "")
        .await?
        .assert_error(StatusCode::NOT_FOUND, "not_found")?;
    st.post_json("/api/tracks/999/mix", "{}")
        .await?
        .assert_error(StatusCode::NOT_FOUND, "not_found")?;
    st.delete("/api/jobs/999")
        .await?
        .assert_error(StatusCode::NOT_FOUND, "not_found")?;
    st.delete("/api/tracks/999")
        .await?
        .assert_error(StatusCode::NOT_FOUND, "not_found")?;
    for uri in ["/api/tracks/abc", "/api/jobs/1.5", "/api/tracks/x/audio"] {
        st.get(uri)
            .await?
            .assert_error(StatusCode::BAD_REQUEST, "bad_request")?;
    }
    let wrong_method = st
        .send(st.req(Method::PUT, "/api/tracks").body(Body::empty())?)
        .await?;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    // A track without stems has none to serve.
    let id = st.upload_id("t.wav", &wav(0.5, 200.0, 300.0)?).await?;
    let detail = st
        .get(&format!("/api/tracks/{id}/stems/vocals"))
        .await?
        .assert_error(StatusCode::NOT_FOUND, "not_found")?;
    assert!(detail.contains("separate"), "{detail}");
    st.post_json(&format!("/api/tracks/{id}/mix"), "{}")
        .await?
        .assert_error(StatusCode::NOT_FOUND, "not_found")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separation_runs_as_a_job_and_serves_stems_zip_and_mixes() -> Result<()> {
    let st = station().await?;
    let id = st.upload_id("mix.wav", &wav(2.0, 220.0, 330.0)?).await?;
    let queued = st
        .post_json(&format!("/api/tracks/{id}/separate"), "")
        .await?;
    assert_eq!(queued.status, StatusCode::ACCEPTED);
    let job = queued.json()?;
    let job_id = job["id"].as_i64().context("job id")?;
    assert_eq!(job["model"], "small4");
    // Asking again while it is active returns the same job.
    let again = st
        .post_json(
            &format!("/api/tracks/{id}/separate"),
            r#"{"model":"small4"}"#,
        )
        .await?;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json()?["id"], job_id);

    let done = st
        .wait_job(job_id, &[JobStatus::Done, JobStatus::Failed])
        .await?;
    assert_eq!(done["status"], json!(JobStatus::Done), "{done}");
    assert_eq!(done["progress"], 1.0);
    assert_eq!(done["attempts"], 1);
    assert_eq!(done["device"], "CPU", "a station without --device gpu");
    // The file the Studio plays was written with the stems: it is there the
    // moment the job is done, before anyone asks for it.
    assert!(
        st.media()
            .join(format!("stems/{id}/small4.all.flac"))
            .is_file(),
        "the multistem file is made by the job"
    );
    // Once the stems exist, asking again returns the finished job.
    let after = st
        .post_json(&format!("/api/tracks/{id}/separate"), "")
        .await?;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(after.json()?["id"], job_id);
    assert_eq!(st.count("jobs").await?, 1);

    let t = st.get(&format!("/api/tracks/{id}")).await?.json()?;
    assert_eq!(t["is_separated"], true);
    let stems = st.get(&format!("/api/tracks/{id}/stems")).await?.json()?;
    let sources: Vec<&str> = stems
        .as_array()
        .context("stems")?
        .iter()
        .filter_map(|s| s["source"].as_str())
        .collect();
    assert_eq!(sources, ["drums", "bass", "other", "vocals"]);
    let dir = st.media().join(format!("stems/{id}/small4"));
    let files: Vec<PathBuf> = sources
        .iter()
        .map(|s| dir.join(format!("{s}.flac")))
        .collect();
    for f in &files {
        assert!(f.is_file(), "{}", f.display());
    }

    // A stem with HTTP Range: exactly the bytes asked for.
    let vocals = std::fs::read(&files[3])?;
    let part = st
        .send(
            st.req(Method::GET, &format!("/api/tracks/{id}/stems/vocals"))
                .header(header::RANGE, "bytes=100-1099")
                .body(Body::empty())?,
        )
        .await?;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.body, vocals[100..1100]);
    let whole = st
        .get(&format!("/api/tracks/{id}/stems/vocals?model=small4"))
        .await?;
    assert_eq!(whole.status, StatusCode::OK);
    assert_eq!(whole.body, vocals);
    // Sources and models are matched, never joined onto a path.
    st.get(&format!(
        "/api/tracks/{id}/stems/..%2F..%2F..%2Fsonantica.db"
    ))
    .await?
    .assert_error(StatusCode::NOT_FOUND, "not_found")?;
    st.get(&format!(
        "/api/tracks/{id}/stems/vocals?model=..%2F..%2Fuploads"
    ))
    .await?
    .assert_error(StatusCode::BAD_REQUEST, "bad_request")?;
    st.get(&format!("/api/tracks/{id}/stems/vocals?model=other_model"))
        .await?
        .assert_error(StatusCode::NOT_FOUND, "not_found")?;

    // The zip holds the stem files byte for byte.
    let zip = st.get(&format!("/api/tracks/{id}/stems.zip")).await?;
    assert_eq!(zip.status, StatusCode::OK);
    assert_eq!(zip.headers[header::CONTENT_TYPE], "application/zip");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip.body))?;
    assert_eq!(archive.len(), 4);
    for (s, f) in sources.iter().zip(&files) {
        let mut entry = archive.by_name(&format!("{s}.flac"))?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes)?;
        assert_eq!(bytes, std::fs::read(f)?, "{s}");
    }

    // All stems in one 8-channel file: channel 2k and 2k+1 are stem k's left and
    // right, sample for sample (both 24-bit FLAC of the same samples).
    let multi = st.get(&format!("/api/tracks/{id}/multistem")).await?;
    assert_eq!(multi.status, StatusCode::OK);
    assert_eq!(multi.headers[header::CONTENT_TYPE], "audio/flac");
    let mp = tempfile::tempdir()?;
    let multi_path = mp.path().join("all.flac");
    std::fs::write(&multi_path, &multi.body)?;
    let all = decode(&multi_path)?;
    assert_eq!(all.len(), 8);
    for (k, f) in files.iter().enumerate() {
        let stem = decode(f)?;
        assert_eq!(all[2 * k], stem[0], "stem {k} left");
        assert_eq!(all[2 * k + 1], stem[1], "stem {k} right");
    }
    // A window of it: 32-bit float WAV of exactly those frames of every channel.
    let rate = 44_100.0;
    let win = st
        .get(&format!(
            "/api/tracks/{id}/multistem?start_s=0.5&duration_s=0.25"
        ))
        .await?;
    assert_eq!(win.status, StatusCode::OK);
    assert_eq!(win.headers[header::CONTENT_TYPE], "audio/wav");
    let win_path = mp.path().join("window.wav");
    std::fs::write(&win_path, &win.body)?;
    let (win_info, window) = Decoder::read_all(&win_path)?;
    assert_eq!((win_info.sample_rate, window.len()), (44_100, 8));
    let (from, len) = ((0.5 * rate) as usize, (0.25 * rate) as usize);
    for (c, ch) in window.iter().enumerate() {
        assert_eq!(
            ch.as_slice(),
            &all[c][from..from + len],
            "window channel {c}"
        );
    }
    for (query, why) in [
        ("duration_s=0", "duration_s"),
        ("duration_s=61", "at most 60"),
        ("start_s=-1", "start_s"),
        ("start_s=NaN", "start_s"),
        ("start_s=3600", "past the end"),
    ] {
        let bad = st
            .get(&format!("/api/tracks/{id}/multistem?{query}"))
            .await?;
        let detail = bad.assert_error(StatusCode::BAD_REQUEST, "bad_request")?;
        assert!(detail.contains(why), "{query}: {detail}");
    }
    st.assert_clean().await?;
    let part = st
        .send(
            st.req(Method::GET, &format!("/api/tracks/{id}/multistem"))
                .header(header::RANGE, "bytes=0-9")
                .body(Body::empty())?,
        )
        .await?;
    assert_eq!(
        (part.status, part.body.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &multi.body[..10])
    );

    // Karaoke = drums + bass + other: checked against the sum of the decoded stems.
    let mix = st
        .post_json(
            &format!("/api/tracks/{id}/mix"),
            r#"{"preset":"karaoke","format":"wav","bit_depth":"32f"}"#,
        )
        .await?;
    assert_eq!(
        mix.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&mix.body)
    );
    assert_eq!(mix.headers[header::CONTENT_TYPE], "audio/wav");
    let out = tempfile::tempdir()?;
    let mix_path = out.path().join("k.wav");
    std::fs::write(&mix_path, &mix.body)?;
    let got = decode(&mix_path)?;
    let stems_audio: Vec<Vec<Vec<f32>>> = files.iter().map(|f| decode(f)).collect::<Result<_>>()?;
    let mut worst = 0.0f32;
    for c in 0..2 {
        for i in 0..got[c].len() {
            let want = stems_audio[0][c][i] + stems_audio[1][c][i] + stems_audio[2][c][i];
            worst = worst.max((got[c][i] - want).abs());
        }
    }
    assert_eq!(got[0].len(), stems_audio[0][0].len());
    assert!(
        worst < 1e-6,
        "karaoke differs from drums+bass+other by {worst}"
    );
    // A practice render (Save mix with tempo, transposition and a loop): the
    // part lasts its length / tempo to the frame, and holds exactly what
    // `sonantica render` (pipeline::render) makes of the same stems.
    let practice = st
        .post_json(
            &format!("/api/tracks/{id}/mix"),
            r#"{"preset":"karaoke","tempo":0.8,"transpose":-2,"start_s":0.5,"end_s":1.5,"format":"wav","bit_depth":"32f"}"#,
        )
        .await?;
    assert_eq!(
        practice.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&practice.body)
    );
    let practice_path = out.path().join("p.wav");
    std::fs::write(&practice_path, &practice.body)?;
    let heard = decode(&practice_path)?;
    assert_eq!(
        heard[0].len(),
        55_125,
        "1 s of the track at 0.8 at 44.1 kHz"
    );
    let cli_path = out.path().join("cli.wav");
    let settings: sonantica_mix::MixSettings =
        serde_json::from_str(r#"{"preset":"karaoke","tempo":0.8,"transpose":-2}"#)?;
    let stem_set: Vec<(sonantica_mix::Source, PathBuf)> = sources
        .iter()
        .zip(&files)
        .map(|(s, f)| Ok((s.parse()?, f.clone())))
        .collect::<Result<_>>()?;
    sonantica_pipeline::render::render_mix(
        &stem_set,
        &cli_path,
        &settings,
        sonantica_pipeline::render::Span {
            start_s: 0.5,
            end_s: Some(1.5),
        },
        sonantica_audio::OutputFormat::WavF32,
        &[],
        &mut |_, _| {},
        &|| false,
    )?;
    assert_eq!(
        decode(&cli_path)?,
        heard,
        "Save mix and sonantica render agree"
    );
    for (bad, why) in [
        (r#"{"tempo":2}"#, "tempo 2"),
        (r#"{"transpose":12.5}"#, "transpose 12.5"),
        (r#"{"start_s":1.5,"end_s":1}"#, "after the start"),
        (r#"{"start_s":"soon"}"#, "number of seconds"),
        (r#"{"start_s":9}"#, "past the end"),
    ] {
        let detail = st
            .post_json(&format!("/api/tracks/{id}/mix"), bad)
            .await?
            .assert_error(StatusCode::BAD_REQUEST, "bad_request")?;
        assert!(detail.contains(why), "{bad}: {detail}");
    }
    // A 5.1 FLAC render has six channels.
    let surround = st
        .post_json(&format!("/api/tracks/{id}/mix"), r#"{"layout":"5.1"}"#)
        .await?;
    assert_eq!(surround.headers[header::CONTENT_TYPE], "audio/flac");
    let sp = out.path().join("s.flac");
    std::fs::write(&sp, &surround.body)?;
    assert_eq!(decode(&sp)?.len(), 6);
    // Bad mix settings.
    for bad in [
        r#"{"preset":"disco"}"#,
        r#"{"layout":"9.2"}"#,
        r#"{"format":"flac","bit_depth":"32f"}"#,
        r#"{"gains":{"kazoo":-3}}"#,
        r#"{"mute":["piano"]}"#,
        r#"{"volume":3}"#,
        "not json",
    ] {
        st.post_json(&format!("/api/tracks/{id}/mix"), bad)
            .await?
            .assert_error(StatusCode::BAD_REQUEST, "bad_request")?;
    }
    let huge = format!(r#"{{"preset":"{}"}}"#, "x".repeat(100_000));
    st.post_json(&format!("/api/tracks/{id}/mix"), &huge)
        .await?
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "too_large")?;

    // The event stream of a finished job: one `job` event, then it ends.
    let events = st.get(&format!("/api/jobs/{job_id}/events")).await?;
    assert_eq!(events.headers[header::CONTENT_TYPE], "text/event-stream");
    let text = String::from_utf8(events.body)?;
    assert_eq!(text.matches("event: job").count(), 1, "{text}");
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .context("a data line")?;
    let event: Value = serde_json::from_str(data.trim())?;
    assert_eq!(event["status"], json!(JobStatus::Done), "{text}");

    // Deleting the track removes its files and rows.
    assert_eq!(
        st.delete(&format!("/api/tracks/{id}")).await?.status,
        StatusCode::NO_CONTENT
    );
    assert!(!dir.exists());
    assert_eq!(st.count("stems").await?, 0);
    assert_eq!(st.count("jobs").await?, 0);
    st.assert_clean().await?;
    // Its id (the highest) and its job's are never given out again: a client's
    // stale reference finds nothing rather than another track.
    let next = st.upload_id("after.wav", &wav(0.5, 200.0, 300.0)?).await?;
    assert!(next > id, "track id {next} after deleting {id}");
    let (status, job) = st
        .post_json(&format!("/api/tracks/{next}/separate"), "{}")
        .await
        .map(|r| (r.status, r.json()))?;
    assert_eq!(status, StatusCode::ACCEPTED);
    let next_job = job?["id"].as_i64().context("job id")?;
    assert!(next_job > job_id, "job id {next_job} after {job_id}");
    st.get(&format!("/api/tracks/{id}"))
        .await?
        .assert_error(StatusCode::NOT_FOUND, "not_found")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_cancelled_and_bad_models_refused() -> Result<()> {
    // No workers: jobs stay queued.
    let st = station_with(|_| {}, false).await?;
    let id = st.upload_id("t.wav", &wav(0.5, 200.0, 300.0)?).await?;
    for (body, status, code) in [
        (
            r#"{"model":"../../etc/passwd"}"#,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            r#"{"model":"nope"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "model_unavailable",
        ),
        (
            r#"{"model":"htdemucs_6s"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "model_unavailable",
        ),
        (r#"{"model":3}"#, StatusCode::BAD_REQUEST, "bad_request"),
    ] {
        let detail = st
            .post_json(&format!("/api/tracks/{id}/separate"), body)
            .await?
            .assert_error(status, code)?;
        if body.contains("6s") {
            assert!(
                detail.contains("sonantica models pull htdemucs_6s"),
                "{detail}"
            );
        }
    }
    assert_eq!(st.count("jobs").await?, 0);

    let job = st
        .post_json(&format!("/api/tracks/{id}/separate"), "")
        .await?
        .json()?;
    let job_id = job["id"].as_i64().context("job id")?;
    assert_eq!(job["status"], json!(JobStatus::Queued));
    let listed = st.get("/api/jobs?status=queued").await?.json()?;
    assert_eq!(listed[0]["id"], job_id);
    st.get("/api/jobs?status=sleeping")
        .await?
        .assert_error(StatusCode::BAD_REQUEST, "bad_request")?;
    let cancelled = st.delete(&format!("/api/jobs/{job_id}")).await?;
    assert_eq!(cancelled.status, StatusCode::OK);
    assert_eq!(cancelled.json()?["status"], json!(JobStatus::Cancelled));
    st.delete(&format!("/api/jobs/{job_id}"))
        .await?
        .assert_error(StatusCode::CONFLICT, "conflict")?;
    // After a cancel, a new request queues a new job.
    let next = st
        .post_json(&format!("/api/tracks/{id}/separate"), "")
        .await?;
    assert_eq!(next.status, StatusCode::ACCEPTED);
    assert_ne!(next.json()?["id"], job_id);
    // A batch skips tracks with an active job.
    let batch = st.post_json("/api/library/separate", "").await?;
    assert_eq!(batch.status, StatusCode::ACCEPTED);
    assert_eq!(batch.json()?["queued"], 0);
    let models = st.get("/api/models").await?.json()?;
    let small = models
        .as_array()
        .context("models")?
        .iter()
        .find(|m| m["name"] == "small4")
        .context("the default model is listed")?;
    assert_eq!(small["installed"], true);
    assert_eq!(small["default"], true);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_job_stops_it_and_leaves_no_stems() -> Result<()> {
    let st = station().await?;
    let id = st.upload_id("long.wav", &wav(120.0, 200.0, 300.0)?).await?;
    let job = st
        .post_json(&format!("/api/tracks/{id}/separate"), "")
        .await?
        .json()?;
    let job_id = job["id"].as_i64().context("job id")?;
    let mut running = Value::Null;
    for _ in 0..600 {
        running = st.get(&format!("/api/jobs/{job_id}")).await?.json()?;
        if running["status"] == json!(JobStatus::Running)
            && running["progress"].as_f64() > Some(0.0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(running["status"], json!(JobStatus::Running), "{running}");
    assert!(
        running["eta_s"].as_f64().is_some(),
        "a running job has an ETA: {running}"
    );
    let cancelled = st.delete(&format!("/api/jobs/{job_id}")).await?;
    assert_eq!(cancelled.status, StatusCode::OK);
    assert_eq!(cancelled.json()?["status"], json!(JobStatus::Cancelled));
    // The worker notices between segments and cleans up its staging folder.
    let staging = st.media().join(format!("stems/{id}"));
    for _ in 0..200 {
        let busy = staging.exists() && std::fs::read_dir(&staging)?.next().is_some();
        if !busy {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = st.get(&format!("/api/jobs/{job_id}")).await?.json()?;
    assert_eq!(after["status"], json!(JobStatus::Cancelled), "{after}");
    assert!(after["progress"].as_f64() < Some(1.0));
    assert_eq!(st.count("stems").await?, 0);
    st.assert_clean().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_jobs_run_before_library_batches() -> Result<()> {
    let st = station_with(|_| {}, false).await?;
    let mut ids = Vec::new();
    for k in 0..3 {
        let t = st
            .upload(&format!("{k}.wav"), &wav(0.3, 200.0, 300.0)?)
            .await?
            .json()?;
        ids.push(t["id"].as_i64().context("id")?);
    }
    let batch = st.post_json("/api/library/separate", "").await?.json()?;
    assert_eq!(batch["queued"], 3);
    // The last track is then asked for interactively: its job already exists at
    // batch priority, so a new interactive one is not created...
    let (first, created) = st
        .app
        .jobs()
        .enqueue(
            ids[2],
            None,
            sonantica_server::app::jobs::PRIORITY_INTERACTIVE,
        )
        .await?;
    assert!(!created, "the batch job is returned");
    assert_eq!((first.track_id, first.priority), (ids[2], 0));
    // ...but a track added later and asked for directly jumps the queue.
    let late = st.upload_id("late.wav", &wav(0.3, 200.0, 300.0)?).await?;
    let interactive = st
        .post_json(&format!("/api/tracks/{late}/separate"), "")
        .await?
        .json()?;
    let claimed = st
        .app
        .jobs()
        .claim_job("test-worker")
        .await?
        .context("a job")?;
    assert_eq!(claimed.id, interactive["id"].as_i64().context("id")?);
    let second = st
        .app
        .jobs()
        .claim_job("test-worker")
        .await?
        .context("a job")?;
    assert_eq!(second.track_id, ids[0], "then the batch, oldest first");
    assert_ne!(first.id, claimed.id);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_worker_stopped_is_taken_again_after_its_lease() -> Result<()> {
    let st = station_with(|c| c.job_lease = Duration::from_millis(300), false).await?;
    let id = st.upload_id("t.wav", &wav(0.3, 200.0, 300.0)?).await?;
    let job = st
        .post_json(&format!("/api/tracks/{id}/separate"), "")
        .await?
        .json()?;
    let claimed = st
        .app
        .jobs()
        .claim_job("worker-that-dies")
        .await?
        .context("claimed")?;
    assert_eq!(claimed.id, job["id"].as_i64().context("id")?);
    assert!(
        st.app.jobs().claim_job("other").await?.is_none(),
        "held under lease"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let again = st
        .app
        .jobs()
        .claim_job("other")
        .await?
        .context("taken again")?;
    assert_eq!(again.id, claimed.id);
    assert_eq!(again.attempts, 2);
    assert_eq!(again.worker.as_deref(), Some("other"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_records_its_error_and_leaves_no_stems() -> Result<()> {
    let st = station().await?;
    let id = st.upload_id("t.wav", &wav(1.0, 200.0, 300.0)?).await?;
    // Damage the stored file: the header declares more audio than is there.
    let upload = std::fs::read_dir(st.media().join("uploads"))?
        .next()
        .context("the upload")??
        .path();
    let bytes = std::fs::read(&upload)?;
    std::fs::write(&upload, &bytes[..bytes.len() / 2])?;
    let job = st
        .post_json(&format!("/api/tracks/{id}/separate"), "")
        .await?
        .json()?;
    let done = st
        .wait_job(
            job["id"].as_i64().context("id")?,
            &[JobStatus::Done, JobStatus::Failed],
        )
        .await?;
    assert_eq!(done["status"], json!(JobStatus::Failed));
    let error = done["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("truncated") || error.contains("incomplete"),
        "{error}"
    );
    assert_eq!(st.count("stems").await?, 0);
    assert!(!st.media().join(format!("stems/{id}/small4")).exists());
    st.assert_clean().await
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_file_in_the_library_is_scanned_and_a_linked_folder_is_not() -> Result<()> {
    let lib = tempfile::tempdir()?;
    let elsewhere = tempfile::tempdir()?;
    write_tone(
        &elsewhere.path().join("kept.flac"),
        0.5,
        200.0,
        300.0,
        OutputFormat::Flac16,
    )?;
    std::fs::create_dir(elsewhere.path().join("more"))?;
    write_tone(
        &elsewhere.path().join("more/deep.wav"),
        0.5,
        250.0,
        350.0,
        OutputFormat::Wav16,
    )?;
    std::os::unix::fs::symlink(
        elsewhere.path().join("kept.flac"),
        lib.path().join("linked.flac"),
    )?;
    std::os::unix::fs::symlink(elsewhere.path().join("more"), lib.path().join("more"))?;
    let root = lib.path().to_path_buf();
    let st = station_with(move |c| c.library = Some(root), false).await?;
    let r = st.post_json("/api/library/scan", "").await?.json()?;
    assert_eq!(r["added"], 1, "{r}");
    let list = st.get("/api/tracks").await?.json()?;
    assert_eq!(list["items"][0]["library_path"], "linked.flac");
    let id = &list["items"][0]["id"];
    let audio = st.get(&format!("/api/tracks/{id}/audio")).await?;
    assert_eq!(
        audio.body,
        std::fs::read(elsewhere.path().join("kept.flac"))?
    );
    // Unchanged at the next scan (the stamp is the file's, not the link's).
    let again = st.post_json("/api/library/scan", "").await?.json()?;
    assert_eq!(
        (again["added"].as_i64(), again["unchanged"].as_i64()),
        (Some(0), Some(1))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_scan_follows_the_folder_without_touching_it() -> Result<()> {
    let lib = tempfile::tempdir()?;
    std::fs::create_dir(lib.path().join("album"))?;
    write_tone(
        &lib.path().join("album/one.flac"),
        0.5,
        200.0,
        300.0,
        OutputFormat::Flac16,
    )?;
    write_tone(
        &lib.path().join("two.wav"),
        0.5,
        250.0,
        350.0,
        OutputFormat::Wav16,
    )?;
    std::fs::write(lib.path().join("fake.mp3"), "not audio")?;
    std::fs::write(lib.path().join("cover.jpg"), "not considered")?;
    let snapshot = |root: &Path| -> Result<Vec<(PathBuf, Vec<u8>)>> {
        let mut v = Vec::new();
        for e in walkdir::WalkDir::new(root).sort_by_file_name() {
            let e = e?;
            if e.file_type().is_file() {
                v.push((e.path().to_path_buf(), std::fs::read(e.path())?));
            }
        }
        Ok(v)
    };
    let before = snapshot(lib.path())?;
    let root = lib.path().to_path_buf();
    let st = station_with(move |c| c.library = Some(root), false).await?;
    let r = st.post_json("/api/library/scan", "").await?;
    assert_eq!(r.status, StatusCode::OK);
    let r = r.json()?;
    assert_eq!(
        (r["added"].as_i64(), r["failed"][0][0].as_str()),
        (Some(2), Some("fake.mp3"))
    );
    let again = st.post_json("/api/library/scan", "").await?.json()?;
    assert_eq!(
        (again["added"].as_i64(), again["unchanged"].as_i64()),
        (Some(0), Some(2))
    );
    let list = st.get("/api/tracks").await?.json()?;
    let paths: Vec<&str> = list["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|t| t["library_path"].as_str())
        .collect();
    assert_eq!(paths.len(), 2);
    assert!(paths.contains(&"album/one.flac") && paths.contains(&"two.wav"));
    // Library audio is served from the folder.
    let two = list["items"]
        .as_array()
        .context("items")?
        .iter()
        .find(|t| t["library_path"] == "two.wav")
        .context("two")?;
    let audio = st.get(&format!("/api/tracks/{}/audio", two["id"])).await?;
    assert_eq!(audio.body, std::fs::read(lib.path().join("two.wav"))?);
    // Library tracks cannot be deleted through the API.
    st.delete(&format!("/api/tracks/{}", two["id"]))
        .await?
        .assert_error(StatusCode::CONFLICT, "conflict")?;
    assert_eq!(
        snapshot(lib.path())?,
        before,
        "the library folder is unchanged"
    );

    // Changed and removed files.
    std::thread::sleep(Duration::from_millis(20));
    write_tone(
        &lib.path().join("two.wav"),
        1.0,
        250.0,
        350.0,
        OutputFormat::Wav16,
    )?;
    std::fs::remove_file(lib.path().join("album/one.flac"))?;
    let r = st.post_json("/api/library/scan", "").await?.json()?;
    assert_eq!(
        (r["changed"].as_i64(), r["removed"].as_i64()),
        (Some(1), Some(1)),
        "{r}"
    );
    let t = st
        .get(&format!("/api/tracks/{}", two["id"]))
        .await?
        .json()?;
    assert_eq!(t["duration_s"], 1.0);
    assert_eq!(st.count("tracks").await?, 1);

    // Without a library folder there is nothing to scan.
    let plain = station_with(|_| {}, false).await?;
    plain
        .post_json("/api/library/scan", "")
        .await?
        .assert_error(StatusCode::CONFLICT, "conflict")?;
    Ok(())
}

/// The samples of a `/stream` answer: its channel count and planar channels.
fn stream_samples(r: &Reply) -> Result<(usize, Vec<Vec<f32>>)> {
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "audio/wav");
    let b = &r.body;
    anyhow::ensure!(b.len() >= 44 && &b[36..40] == b"data", "no WAV header");
    assert_eq!(u16::from_le_bytes([b[20], b[21]]), 3, "32-bit float");
    let channels = usize::from(u16::from_le_bytes([b[22], b[23]]));
    let data = &b[44..];
    assert_eq!(data.len() % (4 * channels), 0);
    let frames = data.len() / (4 * channels);
    let mut planes = vec![Vec::with_capacity(frames); channels];
    for (i, v) in data.chunks_exact(4).enumerate() {
        planes[i % channels].push(f32::from_le_bytes([v[0], v[1], v[2], v[3]]));
    }
    Ok((channels, planes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_is_the_track_from_where_asked_at_the_players_rate() -> Result<()> {
    let st = station().await?;
    let bytes = wav(2.0, 440.0, 660.0)?;
    let id = st.upload_id("stream.wav", &bytes).await?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("t.wav"), &bytes)?;
    let original = decode(&dir.path().join("t.wav"))?;
    // At the track's own rate: its samples, exactly, from the start or from 0.5 s.
    for (start, from) in [("0", 0usize), ("0.5", 22_050)] {
        let r = st
            .get(&format!(
                "/api/tracks/{id}/stream?rate=44100&start_s={start}"
            ))
            .await?;
        assert_eq!(r.headers["x-frames"], (88_200 - from).to_string());
        let (channels, got) = stream_samples(&r)?;
        assert_eq!(channels, 2);
        for (g, o) in got.iter().zip(&original) {
            assert_eq!(g.len(), o.len() - from, "start {start}");
            let worst = g
                .iter()
                .zip(&o[from..])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst == 0.0, "start {start}: {worst}");
        }
    }
    // At 48 kHz: as long as the track, and the same tones (checked against the
    // sines the file was made of, away from the ends).
    let r = st
        .get(&format!("/api/tracks/{id}/stream?rate=48000"))
        .await?;
    let (_, got) = stream_samples(&r)?;
    assert_eq!(got[0].len(), 96_000);
    for (ch, (amp, hz)) in [(0.5, 440.0), (0.25, 660.0)].into_iter().enumerate() {
        let worst = (2400..93_600)
            .map(|i| {
                let want = amp * (2.0 * std::f64::consts::PI * hz * i as f64 / 48_000.0).sin();
                (f64::from(got[ch][i]) - want).abs()
            })
            .fold(0.0, f64::max);
        assert!(worst < 1e-3, "channel {ch}: {worst}");
    }
    // Bad requests say what is wrong.
    for (query, status) in [
        ("rate=1000", StatusCode::BAD_REQUEST),
        ("rate=48000&start_s=-1", StatusCode::BAD_REQUEST),
        ("rate=48000&start_s=5", StatusCode::BAD_REQUEST),
        ("", StatusCode::BAD_REQUEST),
        ("rate=48000&model=..%2Fx", StatusCode::BAD_REQUEST),
        ("rate=48000&model=htdemucs", StatusCode::NOT_FOUND),
    ] {
        let r = st.get(&format!("/api/tracks/{id}/stream?{query}")).await?;
        assert_eq!(
            r.status,
            status,
            "{query}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    let r = st.get("/api/tracks/999/stream?rate=48000").await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route() -> Result<()> {
    let st = station().await?;
    let doc = st.get("/api/openapi.json").await?.json()?;
    let paths = doc["paths"].as_object().context("paths")?;
    for (path, methods) in [
        ("/api/health", &["get"][..]),
        ("/api/login", &["post"]),
        ("/api/logout", &["post"]),
        ("/api/tracks", &["get", "post"]),
        ("/api/tracks/{id}", &["get", "delete"]),
        ("/api/tracks/{id}/audio", &["get"]),
        ("/api/tracks/{id}/overview", &["get"]),
        ("/api/albums", &["get"]),
        ("/api/albums/{id}", &["get"]),
        ("/api/albums/{id}/cover", &["get"]),
        ("/api/artists", &["get"]),
        ("/api/tracks/{id}/stems", &["get"]),
        ("/api/tracks/{id}/stems/{source}", &["get"]),
        ("/api/tracks/{id}/stems.zip", &["get"]),
        ("/api/tracks/{id}/multistem", &["get"]),
        ("/api/tracks/{id}/stream", &["get"]),
        ("/api/tracks/{id}/mix", &["post"]),
        ("/api/tracks/{id}/separate", &["post"]),
        ("/api/jobs", &["get"]),
        ("/api/jobs/{id}", &["get", "delete"]),
        ("/api/jobs/{id}/events", &["get"]),
        ("/api/library/scan", &["post"]),
        ("/api/library/separate", &["post"]),
        ("/api/models", &["get"]),
        ("/api/playlists", &["get"]),
        ("/api/playlists/{id}", &["get"]),
        ("/api/subsonic", &["get"]),
        ("/api/subsonic/login", &["put"]),
        ("/api/subsonic/keys", &["post"]),
        ("/api/subsonic/keys/{id}", &["delete"]),
        ("/api/worker/jobs/{id}/claim", &["post"]),
        ("/api/worker/jobs/{id}/audio", &["get"]),
        ("/api/worker/jobs/{id}/progress", &["post"]),
        ("/api/worker/jobs/{id}/stems/{source}", &["put"]),
        ("/api/worker/jobs/{id}/parts", &["put"]),
        ("/api/worker/jobs/{id}/complete", &["post"]),
        ("/api/worker/jobs/{id}/fail", &["post"]),
        ("/api/worker/jobs/{id}/release", &["post"]),
    ] {
        for m in methods {
            assert!(paths[path][*m].is_object(), "{m} {path} is not documented");
        }
    }
    assert_eq!(paths.len(), 38, "documented paths: {:?}", paths.keys());
    assert!(doc["components"]["schemas"]["TrackDto"].is_object());
    assert!(doc["components"]["securitySchemes"]["token"].is_object());
    assert!(doc["components"]["securitySchemes"]["worker_token"].is_object());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_workers_complete_a_job_once_and_duplicates_change_nothing() -> Result<()> {
    let st = queued_station().await?;
    let track = st.upload_id("t.wav", &wav(1.0, 200.0, 300.0)?).await?;
    let job = st
        .post_json(&format!("/api/tracks/{track}/separate"), "")
        .await?
        .json()?;
    let id = job["id"].as_i64().context("job id")?;
    // What a worker computes, done here with the same code.
    let (_work, done) = cpu_stems(&wav(1.0, 200.0, 300.0)?)?;
    let base = format!("/api/worker/jobs/{id}");
    let put = |source: &str, worker: &str, body: Vec<u8>| {
        st.wreq(
            Method::PUT,
            &format!("{base}/stems/{source}?worker={worker}"),
        )
        .body(Body::from(body))
    };

    st.worker_post(&format!("{base}/claim"), r#"{"worker":"a b"}"#)
        .await?
        .assert_error(StatusCode::BAD_REQUEST, "bad_request")?;
    let claim = st
        .worker_post(&format!("{base}/claim"), r#"{"worker":"wA"}"#)
        .await?
        .json()?;
    assert_eq!(claim["outcome"], json!(ClaimOutcome::Claimed), "{claim}");
    assert_eq!(
        claim["audio_url"],
        format!("/api/worker/jobs/{id}/audio?worker=wA")
    );
    // The worker fetches the track through its own route, while it holds the job.
    let audio = st
        .send(
            st.wreq(Method::GET, &format!("{base}/audio?worker=wA"))
                .body(Body::empty())?,
        )
        .await?;
    assert_eq!(audio.status, StatusCode::OK);
    assert_eq!(audio.body, wav(1.0, 200.0, 300.0)?);
    st.send(
        st.wreq(Method::GET, &format!("{base}/audio?worker=wB"))
            .body(Body::empty())?,
    )
    .await?
    .assert_error(StatusCode::CONFLICT, "conflict")?;
    let busy = st
        .worker_post(&format!("{base}/claim"), r#"{"worker":"wB"}"#)
        .await?
        .json()?;
    assert_eq!(busy["outcome"], json!(ClaimOutcome::Busy));
    let p = st
        .worker_post(
            &format!("{base}/progress"),
            r#"{"worker":"wA","progress":0.5,"eta_s":2}"#,
        )
        .await?
        .json()?;
    assert_eq!(p["continue"], true);
    let shown = st.get(&format!("/api/jobs/{id}")).await?.json()?;
    assert_eq!(
        (shown["progress"].as_f64(), shown["worker"].as_str()),
        (Some(0.5), Some("wA"))
    );
    assert_eq!(shown["device"], Value::Null, "an older worker names none");
    // A worker names its device; the job shows it. Not one line: refused.
    let p = st
        .worker_post(
            &format!("{base}/progress"),
            r#"{"worker":"wA","progress":0.5,"device":"GPU: Radeon 780M (integrated GPU, Vulkan)"}"#,
        )
        .await?
        .json()?;
    assert_eq!(p["continue"], true);
    let shown = st.get(&format!("/api/jobs/{id}")).await?.json()?;
    assert_eq!(shown["device"], "GPU: Radeon 780M (integrated GPU, Vulkan)");
    st.worker_post(
        &format!("{base}/progress"),
        r#"{"worker":"wA","progress":0.5,"device":"GPU\n<script>"}"#,
    )
    .await?
    .assert_error(StatusCode::BAD_REQUEST, "bad_request")?;
    let p = st
        .worker_post(
            &format!("{base}/progress"),
            r#"{"worker":"wB","progress":0.5}"#,
        )
        .await?
        .json()?;
    assert_eq!(p["continue"], false, "not wB's job");

    let stem_bytes: Vec<(String, Vec<u8>)> = done
        .stems
        .iter()
        .map(|(s, p)| Ok((s.clone(), std::fs::read(p)?)))
        .collect::<Result<_>>()?;
    st.send(put("vocals", "wB", stem_bytes[3].1.clone())?)
        .await?
        .assert_error(StatusCode::CONFLICT, "conflict")?;
    st.send(put("vocals", "wA", wav(0.2, 100.0, 100.0)?)?)
        .await?
        .assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media")?;
    st.send(put("..%2F..%2Fx", "wA", stem_bytes[3].1.clone())?)
        .await?
        .assert_error(StatusCode::BAD_REQUEST, "bad_request")?;
    // Stems that do not fit the job are refused (422) and nothing is kept:
    // another rate, too many channels, too short, a name that is no source.
    let staged = || -> Result<Vec<String>> {
        Ok(std::fs::read_dir(st.media().join(format!("stems/{track}")))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default())
    };
    for (what, source, bytes) in [
        ("8 kHz", "vocals", flac(1.0, 8_000, 2)?),
        ("8 channels", "vocals", flac(1.0, 44_100, 8)?),
        ("0.2 s", "vocals", flac(0.2, 44_100, 2)?),
        ("no such source", "kazoo", stem_bytes[3].1.clone()),
    ] {
        let detail = st
            .send(put(source, "wA", bytes)?)
            .await?
            .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "bad_stems")?;
        assert_eq!(staged()?, Vec::<String>::new(), "{what}: {detail}");
    }
    for (what, sources) in [
        ("twice", r#"["drums","drums","bass","other","vocals"]"#),
        ("five", r#"["drums","bass","other","vocals","guitar"]"#),
    ] {
        st.worker_post(
            &format!("{base}/complete"),
            &format!(r#"{{"worker":"wA","sources":{sources}}}"#),
        )
        .await?
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "bad_stems")
        .context(what)?;
    }
    // An upload outside the completed set makes the whole set refused, and
    // every upload of the job goes.
    for (source, bytes) in stem_bytes
        .iter()
        .chain([&("guitar".to_owned(), stem_bytes[0].1.clone())])
    {
        let r = st.send(put(source, "wA", bytes.clone())?).await?;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{source}");
    }
    let complete = r#"{"worker":"wA","sources":["drums","bass","other","vocals"]}"#;
    st.worker_post(&format!("{base}/complete"), complete)
        .await?
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "bad_stems")?;
    assert_eq!(staged()?, Vec::<String>::new());
    assert_eq!(st.count("stems").await?, 0);
    // A code of its own, so that a worker can tell "upload again" from other conflicts.
    let detail = st
        .worker_post(&format!("{base}/complete"), complete)
        .await?
        .assert_error(StatusCode::CONFLICT, "stems_missing")?;
    assert!(detail.contains("upload them again"), "{detail}");
    for (source, bytes) in &stem_bytes {
        let r = st.send(put(source, "wA", bytes.clone())?).await?;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{source}");
    }
    let finished = st
        .worker_post(&format!("{base}/complete"), complete)
        .await?;
    assert_eq!(finished.status, StatusCode::OK);
    assert_eq!(finished.json()?["status"], json!(JobStatus::Done));
    assert!(st
        .media()
        .join(format!("stems/{track}/small4.all.flac"))
        .is_file());
    let stored = |source: &str| {
        std::fs::read(
            st.media()
                .join(format!("stems/{track}/small4/{source}.flac")),
        )
    };
    for (source, bytes) in &stem_bytes {
        assert_eq!(&stored(source)?, bytes, "{source}");
    }

    // The message delivered again: nothing to do. A late duplicate upload and a
    // repeated completion change nothing.
    let again = st
        .worker_post(&format!("{base}/claim"), r#"{"worker":"wB"}"#)
        .await?
        .json()?;
    assert_eq!(again["outcome"], json!(ClaimOutcome::Finished));
    st.send(put("vocals", "wA", stem_bytes[0].1.clone())?)
        .await?
        .assert_error(StatusCode::CONFLICT, "conflict")?;
    assert_eq!(
        st.worker_post(&format!("{base}/complete"), complete)
            .await?
            .status,
        StatusCode::OK
    );
    assert_eq!(
        stored("vocals")?,
        stem_bytes[3].1,
        "the stored vocals are untouched"
    );
    assert_eq!(
        st.get(&format!("/api/jobs/{id}")).await?.json()?["attempts"],
        1
    );
    st.assert_clean().await?;

    // Handing back and failing.
    let other = st.upload_id("u.wav", &wav(0.5, 200.0, 300.0)?).await?;
    let j2 = st
        .post_json(&format!("/api/tracks/{other}/separate"), "")
        .await?
        .json()?["id"]
        .as_i64()
        .context("id")?;
    let b2 = format!("/api/worker/jobs/{j2}");
    st.worker_post(&format!("{b2}/claim"), r#"{"worker":"wA"}"#)
        .await?;
    st.send(
        st.wreq(Method::PUT, &format!("{b2}/stems/drums?worker=wA"))
            .body(Body::from(stem_bytes[0].1.clone()))?,
    )
    .await?;
    assert_eq!(
        st.worker_post(&format!("{b2}/release"), r#"{"worker":"wA"}"#)
            .await?
            .status,
        StatusCode::NO_CONTENT
    );
    let released = st.get(&format!("/api/jobs/{j2}")).await?.json()?;
    assert_eq!(
        (released["status"].clone(), released["attempts"].as_i64()),
        (json!(JobStatus::Queued), Some(0))
    );
    st.assert_clean().await?;
    st.worker_post(&format!("{b2}/claim"), r#"{"worker":"wB"}"#)
        .await?;
    st.worker_post(&format!("{b2}/fail"), r#"{"worker":"wA","error":"x"}"#)
        .await?
        .assert_error(StatusCode::CONFLICT, "conflict")?;
    assert_eq!(
        st.worker_post(
            &format!("{b2}/fail"),
            r#"{"worker":"wB","error":"out of memory"}"#
        )
        .await?
        .status,
        StatusCode::NO_CONTENT
    );
    let failed = st.get(&format!("/api/jobs/{j2}")).await?.json()?;
    assert_eq!(
        (failed["status"].clone(), failed["error"].as_str()),
        (json!(JobStatus::Failed), Some("out of memory"))
    );
    assert!(
        !st.media().join(format!("stems/{other}")).exists(),
        "a failed first separation leaves no folder"
    );

    // Cancelling a job a worker holds removes its uploads and the empty folder.
    let third = st.upload_id("v.wav", &wav(0.5, 200.0, 300.0)?).await?;
    let j3 = st
        .post_json(&format!("/api/tracks/{third}/separate"), "")
        .await?
        .json()?["id"]
        .as_i64()
        .context("id")?;
    let b3 = format!("/api/worker/jobs/{j3}");
    st.worker_post(&format!("{b3}/claim"), r#"{"worker":"wA"}"#)
        .await?;
    let r = st
        .send(
            st.wreq(Method::PUT, &format!("{b3}/stems/drums?worker=wA"))
                .body(Body::from(flac(0.5, 44_100, 2)?))?,
        )
        .await?;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(st.media().join(format!("stems/{third}")).exists());
    assert_eq!(
        st.delete(&format!("/api/jobs/{j3}")).await?.status,
        StatusCode::OK
    );
    assert!(
        !st.media().join(format!("stems/{third}")).exists(),
        "a cancelled job leaves nothing"
    );
    st.worker_post("/api/worker/jobs/999/claim", r#"{"worker":"wA"}"#)
        .await?
        .assert_error(StatusCode::NOT_FOUND, "not_found")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_api_takes_only_the_worker_token_and_is_off_without_a_queue() -> Result<()> {
    let routes = [
        (Method::POST, "/api/worker/jobs/1/claim"),
        (Method::GET, "/api/worker/jobs/1/audio?worker=w"),
        (Method::POST, "/api/worker/jobs/1/progress"),
        (Method::PUT, "/api/worker/jobs/1/stems/vocals?worker=w"),
        (
            Method::PUT,
            "/api/worker/jobs/1/parts?worker=w&at=0&frames=10&stems=4",
        ),
        (Method::POST, "/api/worker/jobs/1/complete"),
        (Method::POST, "/api/worker/jobs/1/fail"),
        (Method::POST, "/api/worker/jobs/1/release"),
    ];
    // Running its jobs itself, the station has no worker API at all.
    let plain = station_with(|_| {}, false).await?;
    for (method, uri) in &routes {
        let detail = plain
            .send(plain.req(method.clone(), uri).body(Body::empty())?)
            .await?
            .assert_error(StatusCode::NOT_FOUND, "not_found")?;
        assert!(detail.contains("--queue"), "{detail}");
    }
    // A queue needs a worker token of its own.
    let dir = tempfile::tempdir()?;
    let mut config = Config::new(dir.path());
    config.queue = Some("redis://127.0.0.1:9".into());
    assert!(App::open(config.clone()).await.is_err());
    config.token = Some(TOKEN.into());
    config.worker_token = Some(TOKEN.into());
    assert!(
        App::open(config).await.is_err(),
        "the access token is no worker token"
    );

    let st = queued_station().await?;
    let (session, _) = st.app.auth().login(TOKEN, "test").await?;
    for (method, uri) in &routes {
        let with = |auth: Option<(header::HeaderName, String)>| {
            let mut r = Request::builder().method(method.clone()).uri(*uri);
            if let Some((k, v)) = auth {
                r = r.header(k, v);
            }
            r.header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"worker":"w"}"#))
        };
        st.send(with(None)?)
            .await?
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized")?;
        st.send(with(Some((
            header::AUTHORIZATION,
            "Bearer not-a-token-at-all".into(),
        )))?)
        .await?
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized")?;
        // The user's credentials open everything else, not this.
        st.send(with(Some((
            header::AUTHORIZATION,
            format!("Bearer {TOKEN}"),
        )))?)
        .await?
        .assert_error(StatusCode::FORBIDDEN, "forbidden")?;
        st.send(with(Some((
            header::COOKIE,
            format!("sonantica_session={session}"),
        )))?)
        .await?
        .assert_error(StatusCode::FORBIDDEN, "forbidden")?;
        // The worker token reaches the handler (no job 1: 404).
        let r = st
            .send({
                let mut r = Request::builder()
                    .method(method.clone())
                    .uri(*uri)
                    .header(header::AUTHORIZATION, format!("Bearer {WORKER_TOKEN}"));
                r = r.header(header::CONTENT_TYPE, "application/json");
                r.body(Body::from(
                    r#"{"worker":"w","sources":[],"progress":0,"error":"x"}"#,
                ))?
            })
            .await?;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {uri}");
    }
    // ... and it opens nothing but the worker API.
    st.send(st.wreq(Method::GET, "/api/tracks").body(Body::empty())?)
        .await?
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_redis_queue_the_models_live_on_the_workers() -> Result<()> {
    // Jobs go to remote workers, which have their own model stores: a model the
    // station does not have is accepted; a name that is not a name is not.
    let st = queued_station().await?;
    let id = st.upload_id("t.wav", &wav(0.3, 200.0, 300.0)?).await?;
    let r = st
        .post_json(
            &format!("/api/tracks/{id}/separate"),
            r#"{"model":"htdemucs_6s"}"#,
        )
        .await?;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.json()?["model"], "htdemucs_6s");
    st.post_json(&format!("/api/tracks/{id}/separate"), r#"{"model":"../x"}"#)
        .await?
        .assert_error(StatusCode::BAD_REQUEST, "bad_request")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_studio_and_its_wasm_module_are_served_without_a_token() -> Result<()> {
    let st = station_with(|_| {}, false).await?;
    for (path, kind, start) in [
        ("/", "text/html", &b"<!doctype html>"[..]),
        ("/app.js", "text/javascript", b"// The Studio"),
        (
            "/worklet.js",
            "text/javascript",
            b"// The Studio's AudioWorklet",
        ),
        ("/style.css", "text/css", b"/*"),
        ("/sonantica.wasm", "application/wasm", b"\0asm"),
        ("/js/player.js", "text/javascript", b"// The player"),
    ] {
        let r = st.send(Request::get(path).body(Body::empty())?).await?;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(
            r.headers[header::CONTENT_TYPE].to_str()?.starts_with(kind),
            "{path}"
        );
        assert!(r.body.starts_with(start), "{path}");
        // No other site may frame the Studio, and it runs only its own code.
        assert_eq!(r.headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
        let csp = r.headers[header::CONTENT_SECURITY_POLICY].to_str()?;
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
    }
    // The module exports what the worklet calls.
    let wasm = sonantica_server::http::studio::WASM;
    for name in [
        "son_meter_new",
        "son_meter_process",
        "son_engine_new",
        "son_engine_process",
        "son_preset_gain_db",
        "son_meter_spectrum",
    ] {
        assert!(
            wasm.windows(name.len()).any(|w| w == name.as_bytes()),
            "the module exports {name}"
        );
    }
    // Every module the page imports is served (a module added to web/js but
    // not to the station would break the page), and nothing else is.
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    let mut sources = vec![std::fs::read_to_string(web.join("app.js"))?];
    for entry in std::fs::read_dir(web.join("js"))? {
        sources.push(std::fs::read_to_string(entry?.path())?);
    }
    let mut imported = std::collections::BTreeSet::new();
    for text in &sources {
        for part in text
            .split("from './")
            .skip(1)
            .chain(text.split("import('./").skip(1))
        {
            let name = part.split('\'').next().unwrap_or_default();
            imported.insert(name.trim_start_matches("js/").to_string());
        }
    }
    assert!(imported.len() >= 8, "{imported:?}");
    for name in &imported {
        let r = st
            .send(Request::get(format!("/js/{name}")).body(Body::empty())?)
            .await?;
        assert_eq!(r.status, StatusCode::OK, "/js/{name}");
    }
    let r = st
        .send(Request::get("/js/../app.js").body(Body::empty())?)
        .await?;
    assert_ne!(r.status, StatusCode::OK);
    let r = st
        .send(Request::get("/js/nope.js").body(Body::empty())?)
        .await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_at_logout_refuse_other_sites_and_wrong_logins_back_off() -> Result<()> {
    let st = station_with(|_| {}, false).await?;
    let login = |token: &str| {
        Request::post("/api/login")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(format!(r#"{{"token":"{token}"}}"#)))
    };
    let ok = st.send(login(TOKEN)?).await?;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    let set = ok.headers[header::SET_COOKIE].to_str()?.to_owned();
    let pair = set.split(';').next().unwrap_or_default().to_owned();
    // The cookie is a session id, not the access token.
    assert!(!set.contains(TOKEN), "{set}");
    let with_cookie = |method: Method, uri: &str, site: Option<(&str, &str)>| {
        let mut r = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::COOKIE, pair.clone());
        if let Some((name, value)) = site {
            r = r.header(name, value);
        }
        r.body(Body::empty())
    };
    assert_eq!(
        st.send(with_cookie(Method::GET, "/api/tracks", None)?)
            .await?
            .status,
        StatusCode::OK
    );
    // A page on another origin (another port counts) cannot use the cookie to
    // change anything; the Studio's own page can.
    for site in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "http://127.0.0.1:9999"),
    ] {
        st.send(with_cookie(Method::POST, "/api/library/scan", Some(site))?)
            .await?
            .assert_error(StatusCode::FORBIDDEN, "forbidden")?;
    }
    let same = st
        .send(with_cookie(
            Method::POST,
            "/api/library/scan",
            Some(("sec-fetch-site", "same-origin")),
        )?)
        .await?;
    assert_eq!(same.status, StatusCode::CONFLICT, "no library folder here");
    // A body that is not JSON (a form, text/plain) is refused.
    let text = st
        .send(
            st.req(Method::POST, "/api/library/separate")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from(r#"{"model":"small4"}"#))?,
        )
        .await?;
    text.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media")?;
    // Logout ends the session: the same cookie no longer works.
    let out = st
        .send(with_cookie(
            Method::POST,
            "/api/logout",
            Some(("sec-fetch-site", "same-origin")),
        )?)
        .await?;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    st.send(with_cookie(Method::GET, "/api/tracks", None)?)
        .await?
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized")?;
    // Wrong tokens: five are answered 401, then the client must wait (429 with
    // Retry-After), even with the right token.
    for _ in 0..5 {
        st.send(login("wrong-token-wrong-token")?)
            .await?
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized")?;
    }
    let slow = st.send(login("wrong-token-wrong-token")?).await?;
    slow.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts")?;
    assert!(slow.headers.contains_key(header::RETRY_AFTER));
    st.send(login(TOKEN)?)
        .await?
        .assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts")?;

    // A new access token ends every session made with the old one.
    let (id, _) = st.app.auth().login(TOKEN, "another client").await?;
    assert!(st.app.auth().check_session(&id).await);
    let data = st.dir.path().join("data");
    drop(st);
    let mut config = Config::new(&data);
    config.token = Some("a-brand-new-token-0123456789".into());
    let (again, _) = App::open(config).await?;
    assert!(!again.auth().check_session(&id).await);
    Ok(())
}

/// A 1 s FLAC at `path` with these tags, written by ffmpeg (an encoder this
/// project did not write, with its own tag names).
fn tagged(path: &Path, tags: &[(&str, &str)]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut args: Vec<String> = [
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100:duration=1",
        "-ac",
        "2",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for (k, v) in tags {
        args.push("-metadata".into());
        args.push(format!("{k}={v}"));
    }
    args.push(path.to_string_lossy().into_owned());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    sonantica_testkit::oracle::ffmpeg(&refs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn albums_artists_and_search_come_from_the_tags() -> Result<()> {
    let lib = tempfile::tempdir()?;
    let l = lib.path();
    let north = [
        ("album", "Legends of the North"),
        ("album_artist", "Wesnoth Project"),
        ("date", "2006-05-01"),
        ("genre", "Soundtrack"),
    ];
    for (file, title, disc, track) in [
        ("north/d2-01.flac", "Zeta", "2/2", "1"),
        ("north/d1-02.flac", "Beta", "1/2", "2/9"),
        ("north/d1-01.flac", "Alpha", "1/2", "1"),
    ] {
        let mut t = north.to_vec();
        t.extend([
            ("title", title),
            ("disc", disc),
            ("track", track),
            ("artist", "Aleksi"),
        ]);
        tagged(&l.join(file), &t)?;
    }
    // A bonus track of the same album in its folder without the album artist
    // tag belongs to it all the same.
    tagged(
        &l.join("north/bonus.flac"),
        &[
            ("album", "Legends of the North"),
            ("title", "Bonus"),
            ("artist", "Guest"),
            ("disc", "2"),
            ("track", "2"),
        ],
    )?;
    // No album artist: the folder groups; one artist, so it is the album's.
    for (file, title) in [("hymns/1.flac", "Legends"), ("hymns/2.flac", "Charge")] {
        tagged(
            &l.join(file),
            &[
                ("album", "Battle Hymns"),
                ("artist", "Westlund"),
                ("title", title),
            ],
        )?;
    }
    // Two artists in one folder and album: various artists.
    for (file, artist) in [("mix/1.flac", "Ann"), ("mix/2.flac", "Bob")] {
        tagged(
            &l.join(file),
            &[("album", "Mix"), ("artist", artist), ("title", artist)],
        )?;
    }
    tagged(
        &l.join("single.flac"),
        &[("title", "Lonely"), ("artist", "Westlund")],
    )?;
    // Covers: a cover.jpg beside the Battle Hymns files (red), a PNG embedded
    // in the first North track (blue); the Mix has none.
    sonantica_testkit::oracle::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=0xC81E28:s=800x800",
        "-frames:v",
        "1",
        &l.join("hymns/Cover.JPG").to_string_lossy(),
    ])?;
    let blue = l.join("blue.png");
    sonantica_testkit::oracle::ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=0x1E3CC8:s=300x200",
        "-frames:v",
        "1",
        &blue.to_string_lossy(),
    ])?;
    let plain = l.join("north/d1-01.flac");
    let with_picture = l.join("north/d1-01.tmp.flac");
    sonantica_testkit::oracle::ffmpeg(&[
        "-i",
        &plain.to_string_lossy(),
        "-i",
        &blue.to_string_lossy(),
        "-map",
        "0:a",
        "-map",
        "1:v",
        "-c:a",
        "copy",
        "-c:v",
        "png",
        "-disposition:v",
        "attached_pic",
        &with_picture.to_string_lossy(),
    ])?;
    std::fs::rename(&with_picture, &plain)?;
    std::fs::remove_file(&blue)?;
    let root = l.to_path_buf();
    let st = station_with(move |c| c.library = Some(root), false).await?;
    let r = st.post_json("/api/library/scan", "").await?.json()?;
    assert_eq!(r["added"], 9, "{r}");

    let albums = st.get("/api/albums").await?.json()?;
    let shown: Vec<(String, Value)> = albums["items"]
        .as_array()
        .context("items")?
        .iter()
        .map(|a| {
            (
                a["title"].as_str().unwrap_or_default().to_owned(),
                a["artist"].clone(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("Legends of the North".to_owned(), json!("Wesnoth Project")),
            ("Battle Hymns".to_owned(), json!("Westlund")),
            ("Mix".to_owned(), Value::Null),
        ],
        "by artist, various artists last"
    );
    assert_eq!(albums["total"], 3);
    let north_id = albums["items"][0]["id"].as_i64().context("id")?;
    let album = st.get(&format!("/api/albums/{north_id}")).await?.json()?;
    assert_eq!(
        (
            album["year"].as_i64(),
            album["discs"].as_i64(),
            album["tracks"].as_i64()
        ),
        (Some(2006), Some(2), Some(4))
    );
    let order: Vec<&str> = album["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|t| t["title"].as_str())
        .collect();
    assert_eq!(
        order,
        ["Alpha", "Beta", "Zeta", "Bonus"],
        "disc, then track number"
    );
    assert_eq!(album["items"][1]["track_no"], 2);
    assert_eq!(album["items"][2]["disc_no"], 2);
    assert_eq!(album["items"][0]["genre"], "Soundtrack");
    st.get("/api/albums/999")
        .await?
        .assert_error(StatusCode::NOT_FOUND, "not_found")?;

    // Covers, made once from the files, small, of the right picture.
    let cover_of = |v: &Value| -> Result<String> {
        Ok(v["cover_url"].as_str().context("cover_url")?.to_owned())
    };
    for (i, (w, h, rgb)) in [
        (300u32, 200u32, [0x1E, 0x3C, 0xC8]),
        (600, 600, [0xC8, 0x1E, 0x28]),
    ]
    .into_iter()
    .enumerate()
    {
        let r = st.get(&cover_of(&albums["items"][i])?).await?;
        assert_eq!(r.status, StatusCode::OK, "album {i}");
        assert_eq!(r.headers[header::CONTENT_TYPE], "image/jpeg");
        let img = image::load_from_memory(&r.body)?.to_rgb8();
        assert_eq!(img.dimensions(), (w, h), "album {i}");
        let p = img.get_pixel(w / 2, h / 2).0;
        for (got, want) in p.iter().zip(rgb) {
            assert!(got.abs_diff(want) <= 8, "album {i}: {p:?} vs {rgb:?}");
        }
    }
    st.get(&cover_of(&albums["items"][2])?)
        .await?
        .assert_error(StatusCode::NOT_FOUND, "not_found")?;
    let covers: Vec<_> = std::fs::read_dir(st.media().join("covers"))?.collect();
    assert_eq!(covers.len(), 2);

    let artists = st.get("/api/artists").await?.json()?;
    assert_eq!(
        artists,
        json!([
            {"name": "Aleksi", "albums": 1, "tracks": 3},
            {"name": "Ann", "albums": 1, "tracks": 1},
            {"name": "Bob", "albums": 1, "tracks": 1},
            {"name": "Guest", "albums": 1, "tracks": 1},
            {"name": "Wesnoth Project", "albums": 1, "tracks": 4},
            {"name": "Westlund", "albums": 1, "tracks": 3},
        ])
    );

    let titles = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t["title"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    // Words in any order, across fields, as prefixes.
    let hit = st.get("/api/tracks?q=westlund%20legends").await?.json()?;
    assert_eq!(titles(&hit), ["Legends"]);
    assert_eq!(
        titles(&st.get("/api/tracks?q=legend%20westl").await?.json()?),
        ["Legends"]
    );
    // Ranked: a title match before album matches.
    let legends = st.get("/api/tracks?q=legends").await?.json()?;
    assert_eq!(legends["total"], 5);
    assert_eq!(titles(&legends)[0], "Legends");
    // Album artist, genre and file name are searched too; syntax is just words.
    assert_eq!(st.get("/api/tracks?q=wesnoth").await?.json()?["total"], 4);
    assert_eq!(st.get("/api/tracks?q=soundtr").await?.json()?["total"], 3);
    assert_eq!(
        titles(&st.get("/api/tracks?q=single").await?.json()?),
        ["Lonely"]
    );
    // As FTS5 syntax, "north OR zzz" would find the four North tracks; as
    // words, nothing has "zzz".
    let or = st.get("/api/tracks?q=north%20OR%20zzz").await?;
    assert_eq!(
        (or.status, or.json()?["total"].as_i64()),
        (StatusCode::OK, Some(0))
    );
    assert_eq!(
        st.get("/api/tracks?q=north%20%22%2A").await?.json()?["total"],
        4
    );
    assert_eq!(st.get("/api/tracks?q=---").await?.json()?["total"], 0);
    // Filters and orders.
    let by_artist = st
        .get("/api/tracks?artist=westlund&sort=title")
        .await?
        .json()?;
    assert_eq!(titles(&by_artist), ["Charge", "Legends", "Lonely"]);
    let of_album = st
        .get(&format!(
            "/api/tracks?album={north_id}&sort=title&order=desc"
        ))
        .await?
        .json()?;
    assert_eq!(titles(&of_album), ["Zeta", "Bonus", "Beta", "Alpha"]);
    assert_eq!(
        st.get("/api/tracks?separated=true").await?.json()?["total"],
        0
    );
    st.get("/api/tracks?sort=loudness")
        .await?
        .assert_error(StatusCode::BAD_REQUEST, "bad_request")?;

    // Tracks stored before albums existed join them at the next start.
    sqlx::query("UPDATE tracks SET catalogued = 0, album_id = NULL")
        .execute(st.app.db())
        .await?;
    sqlx::query("DELETE FROM albums")
        .execute(st.app.db())
        .await?;
    // (A second station on the same data folder: the first one is idle.)
    let data = st.dir.path().join("data");
    let mut config = Config::new(&data);
    config.library = Some(l.to_path_buf());
    let (again, _) = App::open(config).await?;
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM albums")
        .fetch_one(again.db())
        .await?;
    assert_eq!(n, 3);
    let (ids,): (i64,) =
        sqlx::query_as("SELECT COUNT(DISTINCT album_id) FROM tracks WHERE album_id IS NOT NULL")
            .fetch_one(again.db())
            .await?;
    assert_eq!(ids, 3);
    // A folder that goes takes its album with it, and its id is not reused.
    std::fs::remove_dir_all(l.join("mix"))?;
    let router = sonantica_server::http::router(again.clone());
    let res = router
        .oneshot(
            Request::post("/api/library/scan")
                .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                .body(Body::empty())?,
        )
        .await?;
    assert_eq!(res.status(), StatusCode::OK);
    let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM albums")
        .fetch_one(again.db())
        .await?;
    assert_eq!(left, 2);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_stems_grow_from_where_asked_and_every_window_equals_the_finished_stems() -> Result<()>
{
    live_stems_grow_from_where_asked(station().await?, 60.0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_device_gpu_live_stems_grow_from_where_asked_as_on_the_cpu() -> Result<()> {
    let st = station_with(
        |c| c.device = sonantica_demucs::gpu::DeviceChoice::Gpu,
        true,
    )
    .await?;
    // 16 s: three parts (8.25 s to the end, then the start) on lavapipe, which
    // takes about 6 s per second of audio with this model.
    live_stems_grow_from_where_asked(st, 16.0).await
}

/// Separates a track of `seconds` from its middle (+0.25 s) on `st` while
/// fetching what is ready:
/// the spans grow, windows inside them are served and equal the finished
/// stems, one outside is refused, a stream started early equals the finished one.
async fn live_stems_grow_from_where_asked(st: Station, seconds: f64) -> Result<()> {
    let from = seconds / 2.0 + 0.25;
    let id = st
        .upload_id("long.wav", &wav(seconds, 220.0, 330.0)?)
        .await?;
    let started = std::time::Instant::now();
    let job = st
        .post_json(
            &format!("/api/tracks/{id}/separate"),
            &format!(r#"{{"from_s": {from}}}"#),
        )
        .await?;
    assert_eq!(job.status, StatusCode::ACCEPTED);
    let job = job.json()?;
    assert_eq!(job["from_s"], json!(from));
    assert_eq!(job["ready"], json!([]), "nothing is ready before it runs");
    let job_id = job["id"].as_i64().context("job id")?;
    let bad = st
        .post_json(&format!("/api/tracks/{id}/separate"), r#"{"from_s": -3}"#)
        .await?;
    bad.assert_error(StatusCode::BAD_REQUEST, "bad_request")?;

    // While it runs: the spans grow, windows inside them are served, and a
    // window outside them is a conflict that names them.
    let mut snapshots: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut windows: Vec<(String, Vec<u8>)> = Vec::new();
    let mut refused = 0;
    let mut fetched_at = 0.0;
    let stream_uri = format!("/api/tracks/{id}/stream?model=small4&rate=48000&start_s={from}");
    let mut live_stream = None;
    // Up to 10 min (a software GPU beside the other tests is slow).
    while started.elapsed() < Duration::from_secs(600) {
        let j = st.get(&format!("/api/jobs/{job_id}")).await?.json()?;
        if j["status"] != json!(JobStatus::Running) {
            if j["status"] == json!(JobStatus::Done) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        let spans = ready_spans(&j);
        let Some(&(start, end)) = spans.first() else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if snapshots.last() == Some(&spans) {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        if snapshots.is_empty() {
            assert_eq!(start, from, "the first ready span starts where asked: {j}");
            // A player streaming the stems from there: it gets them as they
            // are made, waiting at the edge of the ready span.
            let req = st.req(Method::GET, &stream_uri).body(Body::empty())?;
            let router = st.router.clone();
            live_stream = Some(tokio::spawn(async move {
                let res = router.oneshot(req).await?;
                let status = res.status();
                let body = axum::body::to_bytes(res.into_body(), usize::MAX).await?;
                anyhow::Ok((status, body.to_vec(), std::time::Instant::now()))
            }));
        }
        snapshots.push(spans.clone());
        // A window every 3 s of progress (each is compared with the finished
        // file's below, which decodes up to it).
        let covered: f64 = spans.iter().map(|(a, b)| b - a).sum();
        if covered < fetched_at + 3.0 && !windows.is_empty() {
            continue;
        }
        fetched_at = covered;
        // Up to the newest half second, inside the span.
        let duration = (end - start - 0.002).min(0.5);
        if duration < 0.01 {
            continue;
        }
        let query = format!("start_s={}&duration_s={duration}", end - 0.001 - duration);
        let win = st
            .get(&format!("/api/tracks/{id}/multistem?{query}"))
            .await?;
        assert_eq!(
            win.status,
            StatusCode::OK,
            "{query}: {}",
            String::from_utf8_lossy(&win.body)
        );
        windows.push((query, win.body));
        // The start of the track comes last.
        let early = st
            .get(&format!(
                "/api/tracks/{id}/multistem?start_s=1&duration_s=1"
            ))
            .await?;
        if early.status == StatusCode::CONFLICT {
            early.assert_error(StatusCode::CONFLICT, "not_ready")?;
            let named = early.json()?["ready"].clone();
            assert!(named.as_array().is_some_and(|a| !a.is_empty()), "{named}");
            refused += 1;
        }
    }
    let done = st.wait_job(job_id, &[JobStatus::Done]).await?;
    let job_done_at = std::time::Instant::now();
    eprintln!(
        "separated {seconds} s in {:.1} s; {} snapshots, {} windows",
        started.elapsed().as_secs_f64(),
        snapshots.len(),
        windows.len()
    );
    assert_eq!(ready_spans(&done), vec![(0.0, seconds)], "{done}");
    assert!(
        snapshots.len() >= 3,
        "the ready spans grew while the job ran: {snapshots:?}"
    );
    let covered = |s: &Vec<(f64, f64)>| s.iter().map(|(a, b)| b - a).sum::<f64>();
    assert!(
        snapshots
            .windows(2)
            .all(|w| covered(&w[1]) > covered(&w[0])),
        "each snapshot covers more: {snapshots:?}"
    );
    assert!(
        refused > 0,
        "a window not yet separated was refused at least once"
    );
    // The stream that started while the job ran holds what a stream of the
    // finished stems holds, and it ended before the job did (the part after
    // the start position is made first).
    let (status, streamed, ended_at) = live_stream.context("no live stream started")?.await??;
    assert_eq!(status, StatusCode::OK);
    let finished = st.get(&stream_uri).await?;
    assert_eq!(finished.status, StatusCode::OK);
    assert!(
        streamed == finished.body,
        "the live stream ({} bytes) differs from the finished one ({} bytes)",
        streamed.len(),
        finished.body.len()
    );
    assert!(
        ended_at < job_done_at,
        "the live stream ended before the job"
    );
    // Every window served while running equals the finished stems' window,
    // byte for byte (same WAV, same samples).
    for (query, body) in &windows {
        let after = st
            .get(&format!("/api/tracks/{id}/multistem?{query}"))
            .await?;
        assert_eq!(after.status, StatusCode::OK);
        assert!(
            after.body == *body,
            "{query}: the live window differs from the finished stems'"
        );
    }
    st.assert_clean().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_reaching_the_edge_of_the_stems_made_brings_the_job_back() -> Result<()> {
    let st = station().await?;
    let seconds = 120.0;
    let id = st
        .upload_id("long.wav", &wav(seconds, 220.0, 330.0)?)
        .await?;
    let path = format!("/api/tracks/{id}/separate");
    let separate = |from: f64| {
        let body = format!(r#"{{"from_s": {from}}}"#);
        let path = path.clone();
        let st = &st;
        async move { st.post_json(&path, &body).await }
    };
    let job = separate(30.0).await?.json()?;
    let job_id = job["id"].as_i64().context("job id")?;
    let spans = || async {
        anyhow::Ok(ready_spans(
            &st.get(&format!("/api/jobs/{job_id}")).await?.json()?,
        ))
    };
    let span_at =
        |spans: &[(f64, f64)], t: f64| spans.iter().copied().find(|s| s.0 <= t && t < s.1);
    // Stems from 30 s, then the listener seeks to 60 s: the job goes there.
    let mut edge = 0.0;
    for _ in 0..3000 {
        if let Some((_, end)) = span_at(&spans().await?, 30.0) {
            if end > 31.0 {
                separate(60.0).await?;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..3000 {
        let now = spans().await?;
        if span_at(&now, 60.0).is_some() {
            edge = span_at(&now, 30.0).context("the span from 30 s")?.1;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(edge > 30.0, "the job moved to 60 s");
    // And back: a player streams from 30 s, reaches the edge of the stems
    // made there, and the job returns to it long before it would have (after
    // 60 s → the end, then 0 s → 30 s).
    let req = st
        .req(
            Method::GET,
            &format!("/api/tracks/{id}/stream?model=small4&rate=44100&start_s=30"),
        )
        .body(Body::empty())?;
    let router = st.router.clone();
    let player = tokio::spawn(async move {
        let res = router.oneshot(req).await?;
        axum::body::to_bytes(res.into_body(), usize::MAX).await?;
        anyhow::Ok(())
    });
    let mut came_back = None;
    for _ in 0..6000 {
        let now = spans().await?;
        if span_at(&now, 30.0).is_some_and(|s| s.1 > edge + 1.0) {
            came_back = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    player.abort();
    let now = came_back.context("the stems after the edge were made")?;
    let from_60 = span_at(&now, 60.0).context("the span from 60 s")?;
    assert!(
        from_60.1 < seconds && span_at(&now, 1.0).is_none(),
        "back at {edge:.2} s before the end of the track and its start: {now:?}"
    );
    st.delete(&format!("/api/jobs/{job_id}")).await?;
    st.wait_job(job_id, &[JobStatus::Cancelled]).await?;
    Ok(())
}

/// Little-endian f32 frames of `stems` stereo stems, every sample `v`.
fn part_bytes(frames: usize, stems: usize, v: f32) -> Vec<u8> {
    std::iter::repeat_n(v.to_le_bytes(), frames * stems * 2)
        .flatten()
        .collect()
}

#[tokio::test]
async fn a_remote_workers_parts_are_checked_served_at_once_and_dropped_when_it_lets_go(
) -> Result<()> {
    let st = queued_station().await?;
    let track = st.upload_id("t.wav", &wav(2.0, 200.0, 300.0)?).await?;
    let frames = 88_200;
    let job = st
        .post_json(&format!("/api/tracks/{track}/separate"), "")
        .await?
        .json()?;
    let id = job["id"].as_i64().context("job id")?;
    let base = format!("/api/worker/jobs/{id}");
    let part = |worker: &str, at: usize, frames: usize, stems: usize, body: Vec<u8>| {
        st.wreq(
            Method::PUT,
            &format!("{base}/parts?worker={worker}&at={at}&frames={frames}&stems={stems}"),
        )
        .body(Body::from(body))
    };
    // Not claimed yet: nobody's parts are taken.
    st.send(part("wA", 0, frames, 4, part_bytes(100, 4, 0.1))?)
        .await?
        .assert_error(StatusCode::CONFLICT, "conflict")?;
    let claim = st
        .worker_post(&format!("{base}/claim"), r#"{"worker":"wA"}"#)
        .await?
        .json()?;
    assert_eq!(claim["outcome"], json!(ClaimOutcome::Claimed), "{claim}");

    // Hostile or broken parts are refused, and nothing of them is published.
    let mut nan = part_bytes(100, 4, 0.1);
    nan[40..44].copy_from_slice(&f32::NAN.to_le_bytes());
    for (what, req, status, code) in [
        (
            "another worker",
            part("wB", 0, frames, 4, part_bytes(100, 4, 0.1))?,
            StatusCode::CONFLICT,
            "conflict",
        ),
        (
            "five stems",
            part("wA", 0, frames, 5, part_bytes(100, 5, 0.1))?,
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_stems",
        ),
        (
            "ten times the track",
            part("wA", 0, frames * 10, 4, part_bytes(100, 4, 0.1))?,
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_stems",
        ),
        (
            "past the end",
            part("wA", frames - 50, frames, 4, part_bytes(100, 4, 0.1))?,
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_stems",
        ),
        (
            "half a frame",
            part("wA", 0, frames, 4, part_bytes(100, 4, 0.1)[..20].to_vec())?,
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_stems",
        ),
        (
            "empty",
            part("wA", 0, frames, 4, Vec::new())?,
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_stems",
        ),
        (
            "a NaN",
            part("wA", 0, frames, 4, nan)?,
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_stems",
        ),
        (
            "an overflowing start",
            part("wA", usize::MAX, frames, 4, part_bytes(100, 4, 0.1))?,
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_stems",
        ),
    ] {
        let detail = st
            .send(req)
            .await?
            .assert_error(status, code)
            .context(what)?;
        let j = st.get(&format!("/api/jobs/{id}")).await?.json()?;
        assert_eq!(j["ready"], json!([]), "{what}: {detail}");
    }

    // A good part: the job shows it ready, and a window inside it is served.
    let r = st
        .send(part("wA", 22_050, frames, 4, part_bytes(22_050, 4, 0.25))?)
        .await?;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()?, json!({"wanted_s": null}));
    let j = st.get(&format!("/api/jobs/{id}")).await?.json()?;
    assert_eq!(ready_spans(&j), vec![(0.5, 1.0)], "{j}");
    let win = st
        .get(&format!(
            "/api/tracks/{track}/multistem?start_s=0.6&duration_s=0.3"
        ))
        .await?;
    assert_eq!(
        win.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&win.body)
    );
    st.get(&format!(
        "/api/tracks/{track}/multistem?start_s=0.9&duration_s=0.3"
    ))
    .await?
    .assert_error(StatusCode::CONFLICT, "not_ready")?;
    // A part of another shape than the first is refused.
    st.send(part("wA", 0, frames - 1, 4, part_bytes(10, 4, 0.1))?)
        .await?
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "bad_stems")?;
    // A listener asks for another place: the worker hears it with its next part.
    let again = st
        .post_json(
            &format!("/api/tracks/{track}/separate"),
            r#"{"from_s": 1.5}"#,
        )
        .await?
        .json()?;
    assert_eq!(again["id"], json!(id));
    let r = st
        .send(part("wA", 44_100, frames, 4, part_bytes(4_410, 4, 0.25))?)
        .await?
        .json()?;
    assert_eq!(r, json!({"wanted_s": 1.5}));
    let j = st.get(&format!("/api/jobs/{id}")).await?.json()?;
    assert_eq!(
        ready_spans(&j),
        vec![(0.5, 1.1)],
        "adjacent parts merge: {j}"
    );

    // Handed back: what it sent is no longer served, and its parts are refused.
    st.worker_post(&format!("{base}/release"), r#"{"worker":"wA"}"#)
        .await?;
    let j = st.get(&format!("/api/jobs/{id}")).await?.json()?;
    assert_eq!(j["ready"], json!([]), "{j}");
    // (queued again, the job has no stems to show at all)
    st.get(&format!(
        "/api/tracks/{track}/multistem?start_s=0.6&duration_s=0.3"
    ))
    .await?
    .assert_error(StatusCode::NOT_FOUND, "not_found")?;
    st.send(part("wA", 0, frames, 4, part_bytes(100, 4, 0.1))?)
        .await?
        .assert_error(StatusCode::CONFLICT, "conflict")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_device_gpu_the_stations_jobs_run_on_the_gpu_and_match_the_cpu() -> Result<()> {
    // On lavapipe in CI (scripts/test installs it); no GPU is a failure here.
    let st = station_with(
        |c| c.device = sonantica_demucs::gpu::DeviceChoice::Gpu,
        true,
    )
    .await?;
    let health = st
        .send(Request::get("/api/health").body(Body::empty())?)
        .await?
        .json()?;
    let device = health["device"].as_str().unwrap_or_default().to_owned();
    assert!(
        device.contains("Vulkan") || device.contains("Metal") || device.contains("Dx12"),
        "health names the GPU: {health}"
    );
    let track = st.upload_id("t.wav", &wav(1.0, 200.0, 300.0)?).await?;
    let job = st
        .post_json(&format!("/api/tracks/{track}/separate"), "")
        .await?
        .json()?;
    let id = job["id"].as_i64().context("job id")?;
    // A software GPU is slow, the more so beside the other tests: up to 5 min.
    let mut done = Value::Null;
    for _ in 0..3000 {
        done = st.get(&format!("/api/jobs/{id}")).await?.json()?;
        let status = &done["status"];
        if status != &json!(JobStatus::Queued) && status != &json!(JobStatus::Running) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(done["status"], json!(JobStatus::Done), "{done}");
    // The job says where it ran: the GPU the health names.
    assert_eq!(done["device"], format!("GPU: {device}"), "{done}");
    // The same track on the CPU engine, with the same code.
    let (_work, cpu) = cpu_stems(&wav(1.0, 200.0, 300.0)?)?;
    for (source, path) in &cpu.stems {
        let want: Vec<f32> = decode(path)?.concat();
        let got: Vec<f32> = decode(
            &st.media()
                .join(format!("stems/{track}/small4/{source}.flac")),
        )?
        .concat();
        let snr = sonantica_testkit::snr::snr_db(&want, &got);
        assert!(snr >= 100.0, "{source}: {snr:.1} dB between GPU and CPU");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_opens_a_connection_while_a_job_writes_waits_instead_of_failing(
) -> Result<()> {
    let st = station_with(|_| {}, false).await?;
    let db = st.app.db();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(db)
        .await?;
    assert_eq!(mode, "wal", "readers never wait for a writer");
    // One connection holds the write lock (a job recording its stems) while
    // requests open fresh connections to read and to write.
    let mut held = db.begin().await?;
    sqlx::query("UPDATE settings SET value = value")
        .execute(&mut *held)
        .await?;
    let mut requests = Vec::new();
    for k in 0..6 {
        let db = db.clone();
        requests.push(tokio::spawn(async move {
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM tracks")
                .fetch_one(&db)
                .await?;
            sqlx::query("INSERT INTO settings (key, value) VALUES (?, '1')")
                .bind(format!("probe{k}"))
                .execute(&db)
                .await?;
            Ok::<i64, sqlx::Error>(n)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    held.commit().await?;
    for r in requests {
        assert_eq!(r.await??, 0, "each request read and then wrote");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_players_page_sets_the_subsonic_login_and_makes_and_revokes_keys() -> Result<()> {
    let st = station_with(|_| {}, false).await?;
    let fresh = st.get("/api/subsonic").await?.json()?;
    assert_eq!(
        fresh,
        json!({"user": "admin", "password_set": false, "keys": []})
    );
    let put = |body: &'static str| {
        st.send(
            st.req(Method::PUT, "/api/subsonic/login")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .expect("request"),
        )
    };
    assert_eq!(
        put(r#"{"user":"ana","password":"sesame"}"#).await?.status,
        StatusCode::NO_CONTENT
    );
    put(r#"{"password":"two\nlines"}"#)
        .await?
        .assert_error(StatusCode::BAD_REQUEST, "bad_request")?;
    let set = st.get("/api/subsonic").await?.json()?;
    assert_eq!(
        (set["user"].as_str(), set["password_set"].as_bool()),
        (Some("ana"), Some(true))
    );
    assert!(
        !set.to_string().contains("sesame"),
        "the password is never shown: {set}"
    );
    // The login works on /rest at once; the access token does not.
    let ping = st.get("/rest/ping?u=ana&p=sesame&f=json").await?.json()?;
    assert_eq!(ping["subsonic-response"]["status"], "ok", "{ping}");
    let made = st
        .post_json("/api/subsonic/keys", r#"{"name":"Phone"}"#)
        .await?;
    assert_eq!(made.status, StatusCode::CREATED);
    let made = made.json()?;
    let key = made["key"].as_str().context("key")?.to_owned();
    assert_eq!(key.len(), 64);
    let listed = st.get("/api/subsonic").await?.json()?;
    assert_eq!(listed["keys"].as_array().map(Vec::len), Some(1));
    assert!(listed["keys"][0]["key"].is_null() && !listed.to_string().contains(&key));
    let with_key = st
        .get(&format!("/rest/ping?apiKey={key}&f=json"))
        .await?
        .json()?;
    assert_eq!(with_key["subsonic-response"]["status"], "ok", "{with_key}");
    let used = st.get("/api/subsonic").await?.json()?;
    assert!(used["keys"][0]["last_used_at"].is_i64(), "{used}");
    let id = made["id"].as_i64().context("id")?;
    let revoke = || {
        st.send(
            st.req(Method::DELETE, &format!("/api/subsonic/keys/{id}"))
                .body(Body::empty())
                .expect("request"),
        )
    };
    assert_eq!(revoke().await?.status, StatusCode::NO_CONTENT);
    revoke()
        .await?
        .assert_error(StatusCode::NOT_FOUND, "not_found")?;
    let refused = st
        .get(&format!("/rest/ping?apiKey={key}&f=json"))
        .await?
        .json()?;
    assert_eq!(
        refused["subsonic-response"]["error"]["code"], 44,
        "{refused}"
    );
    st.post_json("/api/subsonic/keys", r#"{"name":""}"#)
        .await?
        .assert_error(StatusCode::BAD_REQUEST, "bad_request")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_right_after_start_while_the_station_analyses_never_find_the_database_locked(
) -> Result<()> {
    // Each upload catalogues its track in a transaction while the analysis
    // task writes the one before. With a deferred BEGIN, SQLite answered
    // "database is locked" at once (about half the runs of this test with
    // four copies of it running side by side); BEGIN IMMEDIATE waits.
    for i in 0..20 {
        let st = station().await?;
        for k in 0..3 {
            let r = st
                .upload(&format!("t{i}.wav"), &wav(1.0, 200.0 + k as f64, 300.0)?)
                .await?;
            assert_eq!(
                r.status,
                StatusCode::CREATED,
                "upload {i}/{k}: {}",
                String::from_utf8_lossy(&r.body)
            );
        }
    }
    Ok(())
}
