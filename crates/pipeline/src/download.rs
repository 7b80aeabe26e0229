//! Installing a named model into the store: its bag file and every member's
//! weights from the Hugging Face hub, each checked against the SHA-256 the hub
//! vouches for. A file lands under its name only once it is complete and
//! verified, and the bag last, so a bag in the store means a usable model.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::models::KNOWN;
use crate::{PipelineError, PipelineResult};

/// What a pull is doing, for a progress display.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PullEvent {
    /// A member's file is already in the store: not downloaded again.
    AlreadyPresent(PathBuf),
    /// A download starts (its length, when the server says).
    Started {
        /// Where it will land.
        file: PathBuf,
        /// Bytes expected.
        len: Option<u64>,
    },
    /// More bytes of the current download arrived (this many).
    Received(u64),
    /// The current download is complete and its SHA-256 matches.
    Verified(PathBuf),
}

/// The total size of an installed bag and its members, or `None` when any file
/// is missing.
pub fn installed_size(bag: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(bag).ok()?;
    let members = sonantica_demucs::bag_members(&text).ok()?;
    let dir = bag.parent()?;
    let mut total = std::fs::metadata(bag).ok()?.len();
    for m in members {
        total += std::fs::metadata(dir.join(format!("{m}.safetensors")))
            .ok()?
            .len();
    }
    Some(total)
}

/// Installs the known model `name` from the hub at `base` (e.g.
/// `https://huggingface.co`) into `store`. `cancelled` is polled while bytes
/// arrive; a cancelled or failed pull keeps only complete, verified files.
pub fn pull(
    name: &str,
    base: &str,
    store: &Path,
    events: &mut dyn FnMut(PullEvent),
    cancelled: &dyn Fn() -> bool,
) -> PipelineResult<()> {
    let known = KNOWN.iter().find(|k| k.name == name).ok_or_else(|| {
        PipelineError::BadInput(format!(
            "unknown model {name:?}: known models are htdemucs, htdemucs_ft, htdemucs_6s"
        ))
    })?;
    std::fs::create_dir_all(store).map_err(|e| PipelineError::io(store, e))?;
    let base = base.trim_end_matches('/');
    let root = format!("{base}/{}/resolve/main", known.repo);
    let offline = |e: PipelineError| -> PipelineError {
        match e {
            PipelineError::Download(m) => PipelineError::Download(format!(
                "{m}\nOffline? Download {root}/{name}.yaml and every {{model}}.safetensors it lists \
                 (for {name}: see https://huggingface.co/{}/tree/main) into {}",
                known.repo,
                store.display()
            )),
            other => other,
        }
    };
    let agent = agent();
    let (resp, _) = get(&agent, &format!("{root}/{name}.yaml")).map_err(offline)?;
    let yaml = resp
        .into_body()
        .read_to_string()
        .map_err(|e| PipelineError::Download(format!("{root}/{name}.yaml: {e}")))?;
    let members = sonantica_demucs::bag_members(&yaml)
        .map_err(|e| PipelineError::Download(format!("{name}.yaml: {e}")))?;
    for sig in &members {
        let file = store.join(format!("{sig}.safetensors"));
        if file.is_file() {
            events(PullEvent::AlreadyPresent(file));
            continue;
        }
        download(
            &agent,
            &format!("{root}/{sig}.safetensors"),
            &file,
            events,
            cancelled,
        )
        .map_err(offline)?;
    }
    // The bag file last: a bag in the store means its members are complete.
    let bag = store.join(format!("{name}.yaml"));
    let io = |e| PipelineError::io(&bag, e);
    let mut tmp = tempfile::NamedTempFile::new_in(store).map_err(io)?;
    tmp.write_all(yaml.as_bytes()).map_err(io)?;
    tmp.persist(&bag).map_err(|e| io(e.error))?;
    Ok(())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(15)))
        .build()
        .into()
}

/// The SHA-256 a hub response vouches for: Hugging Face sends it as the ETag of
/// LFS files (`X-Linked-Etag` on the redirect to the CDN).
fn sha_header(resp: &ureq::http::Response<ureq::Body>) -> Option<String> {
    ["x-linked-etag", "etag"].iter().find_map(|h| {
        let v = resp.headers().get(*h)?.to_str().ok()?;
        let v = v
            .trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_ascii_lowercase();
        (v.len() == 64 && v.chars().all(|c| c.is_ascii_hexdigit())).then_some(v)
    })
}

/// GETs `url`, following redirects by hand so that the first response's hash
/// header is kept (ureq's own redirects would drop it). Returns the final
/// response and the expected SHA-256, if any.
fn get(
    agent: &ureq::Agent,
    url: &str,
) -> PipelineResult<(ureq::http::Response<ureq::Body>, Option<String>)> {
    let fail = |m: String| PipelineError::Download(m);
    let mut url = url.to_string();
    let mut sha = None;
    for _ in 0..10 {
        let resp = agent
            .get(&url)
            .call()
            .map_err(|e| fail(format!("cannot reach {url}: {e}")))?;
        sha = sha.or_else(|| sha_header(&resp));
        let status = resp.status().as_u16();
        if (300..400).contains(&status) {
            let next = resp
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| fail(format!("{url}: redirect without a location")))?
                .to_string();
            url = if next.starts_with("http") {
                next
            } else {
                let origin: String = url.split('/').take(3).collect::<Vec<_>>().join("/");
                format!("{origin}{next}")
            };
            continue;
        }
        if status != 200 {
            return Err(fail(format!("{url}: HTTP {status}")));
        }
        return Ok((resp, sha));
    }
    Err(fail(format!("{url}: too many redirects")))
}

fn download(
    agent: &ureq::Agent,
    url: &str,
    dest: &Path,
    events: &mut dyn FnMut(PullEvent),
    cancelled: &dyn Fn() -> bool,
) -> PipelineResult<()> {
    let (resp, sha) = get(agent, url)?;
    let expected = sha.ok_or_else(|| {
        PipelineError::Download(format!(
            "{url}: the server gave no SHA-256 to verify the file against"
        ))
    })?;
    let len = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let dir = dest.parent().unwrap_or(Path::new("."));
    let io = |e| PipelineError::io(dest, e);
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    events(PullEvent::Started {
        file: dest.to_path_buf(),
        len,
    });
    let mut reader = resp.into_body().into_reader();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        if cancelled() {
            return Err(PipelineError::Cancelled);
        }
        let n = reader
            .read(&mut buf)
            .map_err(|e| PipelineError::Download(format!("downloading {url}: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n]).map_err(io)?;
        events(PullEvent::Received(n as u64));
    }
    let got: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if got != expected {
        return Err(PipelineError::Download(format!(
            "{url}: SHA-256 mismatch (got {got}, expected {expected}); the file was not kept"
        )));
    }
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(dest).map_err(|e| io(e.error))?;
    events(PullEvent::Verified(dest.to_path_buf()));
    Ok(())
}
