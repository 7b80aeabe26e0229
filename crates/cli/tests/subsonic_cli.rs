//! The OpenSubsonic API as Subsonic players use it: py-opensonic (a client
//! library from PyPI that nobody here wrote) drives the real `sonantica serve`
//! over loopback, with a library of tagged albums with cover art made by
//! ffmpeg, one track of it separated. The client's checks are in
//! `tests/subsonic/player.py`; this test makes the library, starts the station,
//! separates the track and runs it.
//!
//! The client lives in a Python virtual environment that `scripts/test`
//! makes (`target/subsonic-venv`, or `$SONANTICA_TEST_PYTHON`); without it the
//! test fails and says how to make it, it is never skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use common::s;
use common::server::Server;
use serde_json::{json, Value};
use sonantica_server::app::status::JobStatus;

/// The Python with py-opensonic installed.
fn python() -> Result<PathBuf> {
    let python = std::env::var_os("SONANTICA_TEST_PYTHON").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/subsonic-venv/bin/python"),
        PathBuf::from,
    );
    let ok = Command::new(&python)
        .args(["-c", "import libopensonic"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        bail!(
            "{} cannot import py-opensonic: run scripts/test (it makes target/subsonic-venv), \
             or set SONANTICA_TEST_PYTHON to a Python that has it",
            python.display()
        );
    }
    Ok(python)
}

fn ffmpeg(args: &[&str]) -> Result<()> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .output()
        .context("ffmpeg (scripts/test installs it)")?;
    if !out.status.success() {
        bail!("ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// One album's tracks: title, track number, seconds, tone (Hz).
type Tracks<'a> = &'a [(&'a str, u32, f64, u32)];

/// Writes an album under `root/folder` with ffmpeg and returns what a client
/// should see of it. `cover`: a cover.jpg beside the files (`folder`) or a
/// picture in each file (`embedded`).
#[allow(clippy::too_many_arguments)]
fn album(
    root: &Path,
    folder: &str,
    (title, artist, year, genre): (&str, &str, u32, &str),
    ext: &str,
    cover: &str,
    tracks: Tracks,
) -> Result<Value> {
    let dir = root.join(folder);
    std::fs::create_dir_all(&dir)?;
    let picture = dir.join(if cover == "folder" {
        "cover.jpg"
    } else {
        ".picture.png"
    });
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=0x3060c0:s=800x640",
        "-frames:v",
        "1",
        s(&picture),
    ])?;
    let mut list = Vec::new();
    for &(name, number, seconds, hz) in tracks {
        let file = dir.join(format!("{number:02} {name}.{ext}"));
        let tone = format!("sine=frequency={hz}:duration={seconds}:sample_rate=44100");
        let mut meta = vec![
            format!("title={name}"),
            format!("artist={artist}"),
            format!("album_artist={artist}"),
            format!("album={title}"),
            format!("track={number}"),
            format!("date={year}"),
            format!("genre={genre}"),
        ];
        if number == 1 && ext == "flac" {
            // Timed lyrics (LRC) in the tags, as taggers store them.
            meta.push(format!(
                "lyrics=[00:00.50]{name} falls\n[00:01.75]on the snow"
            ));
        }
        let mut args: Vec<String> = vec!["-f".into(), "lavfi".into(), "-i".into(), tone];
        if cover == "embedded" {
            args.extend(["-i".into(), s(&picture).into()]);
            args.extend(
                [
                    "-map",
                    "0:a",
                    "-map",
                    "1:v",
                    "-c:v",
                    "png",
                    "-disposition:v",
                    "attached_pic",
                ]
                .map(String::from),
            );
        }
        args.extend(["-ac".into(), "2".into()]);
        for m in &meta {
            args.extend(["-metadata".into(), m.clone()]);
        }
        if ext == "mp3" {
            args.extend(
                ["-c:a", "libmp3lame", "-b:a", "128k", "-id3v2_version", "3"].map(String::from),
            );
        }
        args.push(s(&file).into());
        ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        list.push(json!({"title": name, "track": number, "seconds": seconds, "file": s(&file)}));
    }
    if cover == "embedded" {
        std::fs::remove_file(&picture)?;
    }
    Ok(json!({
        "title": title, "artist": artist, "year": year, "genre": genre,
        "suffix": ext, "tracks": list,
    }))
}

#[test]
fn subsonic_players_browse_search_stream_and_see_covers() -> Result<()> {
    let python = python()?;
    let dir = tempfile::tempdir()?;
    let music = dir.path().join("music");
    let albums = vec![
        album(
            &music,
            "Aurora Band/Northern Lights",
            ("Northern Lights", "Aurora Band", 2019, "Ambient"),
            "flac",
            "folder",
            &[
                ("Green Veil", 1, 3.0, 330),
                ("Solar Wind", 2, 2.5, 440),
                ("Polar Night", 3, 2.0, 550),
            ],
        )?,
        album(
            &music,
            "The Beatniks/Second Coming",
            ("Second Coming", "The Beatniks", 2021, "Rock"),
            "mp3",
            "embedded",
            &[("Road Song", 1, 2.0, 220), ("Last Train Home", 2, 3.5, 260)],
        )?,
    ];
    let data = dir.path().join("data");
    let server = Server::start(
        &data,
        &["--library", s(&music), "--subsonic-password", "sesame"],
    )?;
    // The start-up scan files the five tracks under their two albums.
    let started = Instant::now();
    loop {
        let albums = server.json("/api/albums")?;
        let n = albums["total"].as_i64().unwrap_or(0);
        let tracks = server.json("/api/tracks")?["total"].as_i64().unwrap_or(0);
        if n == 2 && tracks == 5 {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the library scan did not find the albums: {albums}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // One track separated (with the fixture model): the Karaoke and A cappella
    // playlists hold it.
    let found = server.json("/api/tracks?q=green%20veil")?;
    let track = found["items"][0]["id"].as_i64().context("Green Veil")?;
    let (status, job) = server.post(
        &format!("/api/tracks/{track}/separate"),
        "application/json",
        b"{}".to_vec(),
    )?;
    assert_eq!(status, 202, "{job}");
    let done = server.wait(
        job["id"].as_i64().context("job id")?,
        |j| j["status"] == json!(JobStatus::Done) || j["status"] == json!(JobStatus::Failed),
        Duration::from_secs(180),
    )?;
    assert_eq!(done["status"], json!(JobStatus::Done), "{done}");
    // An API key from the Studio's Players page, for a player that signs in
    // with one.
    let (status, key) = server.post(
        "/api/subsonic/keys",
        "application/json",
        br#"{"name":"py-opensonic"}"#.to_vec(),
    )?;
    assert_eq!(status, 201, "{key}");
    let expected = dir.path().join("expected.json");
    std::fs::write(
        &expected,
        serde_json::to_vec(&json!({
            "user": "admin", "password": "sesame", "albums": albums,
            "separated": "Green Veil", "work": s(dir.path()),
            "api_key": key["key"], "api_key_id": key["id"], "token": common::server::TOKEN,
        }))?,
    )?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/subsonic/player.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(&server.base)
        .arg(&expected)
        .output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{said}");
    assert!(
        out.status.success(),
        "the Subsonic client's checks failed:\n{said}"
    );
    assert!(said.contains("all checks passed"), "{said}");
    Ok(())
}
