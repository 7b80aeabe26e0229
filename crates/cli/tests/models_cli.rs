//! `sonantica models pull/list` against a local HTTP server that serves the fixture
//! checkpoints the way the Hugging Face hub does (LFS files behind a redirect whose
//! X-Linked-Etag is the file's SHA-256).

mod common;
use common::*;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use anyhow::Result;
use sha2::{Digest, Sha256};

struct Reply {
    status: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Serves `routes` on loopback until the test ends; returns the base URL.
fn serve(routes: HashMap<String, Reply>) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(match stream.try_clone() {
                Ok(s) => s,
                Err(_) => continue,
            });
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).map_or(true, |n| n == 0) || h == "\r\n" {
                    break;
                }
            }
            let (status, headers, body) = match routes.get(&path) {
                Some(r) => (r.status, r.headers.clone(), r.body.clone()),
                None => ("404 Not Found", Vec::new(), b"not found".to_vec()),
            };
            let mut head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    Ok(format!("http://{addr}"))
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hub(
    repo: &str,
    name: &str,
    member: &str,
    body: Vec<u8>,
    claimed_sha: String,
    routes: &mut HashMap<String, Reply>,
) {
    let root = format!("/{repo}/resolve/main");
    routes.insert(
        format!("{root}/{name}.yaml"),
        Reply {
            status: "200 OK",
            headers: vec![],
            body: format!("models: ['{member}']\n").into_bytes(),
        },
    );
    routes.insert(
        format!("{root}/{member}.safetensors"),
        Reply {
            status: "302 Found",
            headers: vec![
                ("Location".into(), format!("/cdn/{member}")),
                ("X-Linked-Etag".into(), format!("\"{claimed_sha}\"")),
            ],
            body: Vec::new(),
        },
    );
    routes.insert(
        format!("/cdn/{member}"),
        Reply {
            status: "200 OK",
            headers: vec![],
            body,
        },
    );
}

#[test]
fn pull_verifies_and_installs_then_separate_finds_the_model_by_name() -> Result<()> {
    let small4 = std::fs::read(demucs_fixtures().join("small4.safetensors"))?;
    let small6 = std::fs::read(demucs_fixtures().join("small6.safetensors"))?;
    let mut routes = HashMap::new();
    hub(
        "adefossez/HTDemucs",
        "htdemucs",
        "small4",
        small4.clone(),
        sha(&small4),
        &mut routes,
    );
    // A file whose hash does not match what the hub claims.
    hub(
        "adefossez/HTDemucs-6s",
        "htdemucs_6s",
        "small6",
        small6,
        sha(b"something else"),
        &mut routes,
    );
    let base = serve(routes)?;
    let dir = tempfile::tempdir()?;
    let store = dir.path().join("store");

    let o = sonantica(&["models", "list", "--models-dir", s(&store)])?;
    assert!(String::from_utf8_lossy(&o.stdout).contains("htdemucs     not installed"));

    sonantica_cmd(&[
        "models",
        "pull",
        "htdemucs",
        "--base-url",
        &base,
        "--models-dir",
        s(&store),
    ])
    .assert_success();
    assert_eq!(std::fs::read(store.join("small4.safetensors"))?, small4);
    assert!(store.join("htdemucs.yaml").is_file());
    let o = sonantica(&["models", "list", "--models-dir", s(&store)])?;
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("htdemucs     installed"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    let o = sonantica_cmd(&[
        "models",
        "pull",
        "htdemucs_6s",
        "--base-url",
        &base,
        "--models-dir",
        s(&store),
    ])
    .assert_exit_code(2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("SHA-256 mismatch"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!store.join("small6.safetensors").exists() && !store.join("htdemucs_6s.yaml").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&store)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert_eq!(leftovers.len(), 2, "only the verified model: {leftovers:?}");

    // The installed model separates by name.
    let input = dir.path().join("in.wav");
    let frames = 20_000;
    let tone: Vec<f32> = (0..frames).map(|i| (i as f32 * 0.02).sin() * 0.3).collect();
    let mut w = sonantica_audio::AudioWriter::create(
        &input,
        sonantica_audio::OutputFormat::Wav16,
        44_100,
        sonantica_audio::ChannelLayout::Stereo,
    )?;
    w.write(&[&tone, &tone])?;
    w.finish()?;
    let out = dir.path().join("stems");
    sonantica_cmd(&separate_args(
        &input,
        "htdemucs",
        &out,
        &["--models-dir", s(&store), "--shifts", "0"],
    ))
    .assert_success();
    assert_eq!(std::fs::read_dir(&out)?.count(), 4);
    Ok(())
}

#[test]
fn pull_without_network_says_which_files_to_fetch() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // Nothing listens on port 9 of loopback.
    let o = sonantica_cmd(&[
        "models",
        "pull",
        "htdemucs_ft",
        "--base-url",
        "http://127.0.0.1:9",
        "--models-dir",
        s(dir.path()),
    ])
    .assert_exit_code(2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Offline?") && err.contains("htdemucs_ft.yaml") && err.contains(s(dir.path())),
        "{err}"
    );
    let o = sonantica(&["models", "pull", "mdx_q", "--models-dir", s(dir.path())])?;
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown model"));
    Ok(())
}
