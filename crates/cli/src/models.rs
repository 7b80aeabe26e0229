//! `sonantica models list|pull`: the local model store, where named models
//! (`htdemucs`, `htdemucs_ft`, `htdemucs_6s`) live. Resolving a model argument
//! is `sonantica_server::app::models`, shared with the server.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
pub use sonantica_server::app::models::{resolve, store_dir, KNOWN};

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

/// `sonantica models ...`
#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    command: ModelsCommand,
    /// Model store folder (default: $SONANTICA_MODELS or ~/.local/share/sonantica/models).
    #[arg(long, value_name = "DIR", global = true)]
    models_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// Show the known models and whether they are installed.
    List,
    /// Download a model's official files from the Hugging Face hub into the store,
    /// verifying each file's SHA-256.
    Pull {
        /// htdemucs, htdemucs_ft or htdemucs_6s.
        name: String,
        /// Hub address (for mirrors and tests).
        #[arg(
            long,
            env = "SONANTICA_HF_ENDPOINT",
            default_value = "https://huggingface.co"
        )]
        base_url: String,
    },
}

/// Runs `models list` / `models pull`.
pub fn run(args: ModelsArgs) -> Result<()> {
    let store = store_dir(args.models_dir.as_deref());
    match args.command {
        ModelsCommand::List => {
            println!("model store: {}", store.display());
            for k in KNOWN {
                let bag = store.join(format!("{}.yaml", k.name));
                let status = match installed_size(&bag) {
                    Some(bytes) => format!("installed ({:.0} MB)", bytes as f64 / 1e6),
                    None => "not installed".to_string(),
                };
                println!("  {:<12} {:<24} {}", k.name, status, k.description);
            }
            Ok(())
        }
        ModelsCommand::Pull { name, base_url } => {
            pull(&name, base_url.trim_end_matches('/'), &store)
        }
    }
}

/// Total size of a bag and its members, if all are present.
fn installed_size(bag: &Path) -> Option<u64> {
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
/// header is kept. Returns the final response and the expected SHA-256, if any.
fn get(
    agent: &ureq::Agent,
    url: &str,
) -> Result<(ureq::http::Response<ureq::Body>, Option<String>)> {
    let mut url = url.to_string();
    let mut sha = None;
    for _ in 0..10 {
        let resp = agent
            .get(&url)
            .call()
            .with_context(|| format!("cannot reach {url}"))?;
        sha = sha.or_else(|| sha_header(&resp));
        let status = resp.status().as_u16();
        if (300..400).contains(&status) {
            let next = resp
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .context("redirect without a location")?
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
            bail!("{url}: HTTP {status}");
        }
        return Ok((resp, sha));
    }
    bail!("{url}: too many redirects")
}

fn pull(name: &str, base: &str, store: &Path) -> Result<()> {
    let known = KNOWN.iter().find(|k| k.name == name).with_context(|| {
        format!("unknown model {name:?}: known models are htdemucs, htdemucs_ft, htdemucs_6s")
    })?;
    std::fs::create_dir_all(store)
        .with_context(|| format!("{}: cannot create the model store", store.display()))?;
    let root = format!("{base}/{}/resolve/main", known.repo);
    let offline = |e: anyhow::Error| -> anyhow::Error {
        anyhow::anyhow!(
            "{e:#}\nOffline? Download {root}/{name}.yaml and every {{model}}.safetensors it lists \
             (for {name}: see https://huggingface.co/{}/tree/main) into {}",
            known.repo,
            store.display()
        )
    };
    let agent = agent();
    let (resp, _) = get(&agent, &format!("{root}/{name}.yaml")).map_err(offline)?;
    let yaml = resp
        .into_body()
        .read_to_string()
        .with_context(|| format!("{root}/{name}.yaml"))?;
    let members =
        sonantica_demucs::bag_members(&yaml).map_err(|e| anyhow::anyhow!("{name}.yaml: {e}"))?;
    for sig in &members {
        let file = store.join(format!("{sig}.safetensors"));
        if file.is_file() {
            eprintln!("{}: already present", file.display());
            continue;
        }
        download(&agent, &format!("{root}/{sig}.safetensors"), &file).map_err(offline)?;
    }
    // The bag file last: a bag in the store means its members are complete.
    let mut tmp = tempfile::NamedTempFile::new_in(store)?;
    tmp.write_all(yaml.as_bytes())?;
    tmp.persist(store.join(format!("{name}.yaml")))?;
    eprintln!("installed {name} in {}", store.display());
    Ok(())
}

fn download(agent: &ureq::Agent, url: &str, dest: &Path) -> Result<()> {
    let (resp, sha) = get(agent, url)?;
    let expected = sha
        .with_context(|| format!("{url}: the server gave no SHA-256 to verify the file against"))?;
    let len = resp
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let dir = dest.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    let bar = if std::io::stderr().is_terminal() {
        let b = ProgressBar::new(len.unwrap_or(0));
        if let Ok(style) =
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} eta {eta}")
        {
            b.set_style(style.progress_chars("=> "));
        }
        b.set_message(
            dest.file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
        );
        Some(b)
    } else {
        None
    };
    let mut reader = resp.into_body().into_reader();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        if crate::interrupt::interrupted() {
            return Err(crate::interrupt::Interrupted.into());
        }
        let n = reader
            .read(&mut buf)
            .with_context(|| format!("downloading {url}"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n])
            .with_context(|| format!("writing {}", dest.display()))?;
        if let Some(b) = &bar {
            b.inc(n as u64);
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let got: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if got != expected {
        bail!("{url}: SHA-256 mismatch (got {got}, expected {expected}); the file was not kept");
    }
    tmp.as_file().sync_all()?;
    tmp.persist(dest)
        .with_context(|| format!("{}", dest.display()))?;
    eprintln!("{}: verified", dest.display());
    Ok(())
}

use std::io::IsTerminal;
