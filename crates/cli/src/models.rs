//! `sonantica models list|pull`: the local model store, where named models
//! (`htdemucs`, `htdemucs_ft`, `htdemucs_6s`) live. The store and downloads are
//! `sonantica_pipeline::{models, download}`, shared with the station.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use sonantica_pipeline::download::{installed_size, pull, PullEvent};
pub use sonantica_pipeline::models::{resolve, store_dir, KNOWN};
use sonantica_pipeline::PipelineError;

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
            let mut bar: Option<ProgressBar> = None;
            let result = pull(
                &name,
                &base_url,
                &store,
                &mut |event| show(event, &mut bar),
                &crate::interrupt::interrupted,
            );
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
            match result {
                Ok(()) => {
                    eprintln!("installed {name} in {}", store.display());
                    Ok(())
                }
                Err(PipelineError::Cancelled) => Err(crate::interrupt::Interrupted.into()),
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// A pull's progress on stderr: a bar on a terminal, a line per file.
fn show(event: PullEvent, bar: &mut Option<ProgressBar>) {
    match event {
        PullEvent::AlreadyPresent(file) => eprintln!("{}: already present", file.display()),
        PullEvent::Started { file, len } if std::io::stderr().is_terminal() => {
            let b = ProgressBar::new(len.unwrap_or(0));
            if let Ok(style) =
                ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} eta {eta}")
            {
                b.set_style(style.progress_chars("=> "));
            }
            b.set_message(
                file.file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default(),
            );
            *bar = Some(b);
        }
        PullEvent::Received(n) => {
            if let Some(b) = bar {
                b.inc(n);
            }
        }
        PullEvent::Verified(file) => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
            eprintln!("{}: verified", file.display());
        }
        _ => {}
    }
}
