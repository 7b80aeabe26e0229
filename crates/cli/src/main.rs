//! `sonantica`: the Sonántica Neural Acoustic command line and server.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod alloc;
mod analyze;
mod interrupt;
mod models;
mod render;
mod sandbox;
mod separate;
mod serve;
mod worker;

/// Sonántica Neural Acoustic: an active listening station.
#[derive(Debug, Parser)]
#[command(name = "sonantica", version, about, long_about = None, args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure recordings like a mastering engineer's meter bridge: loudness (LUFS,
    /// LRA, true peak), dynamics (DR, crest factor, clipping) and stereo image
    /// (correlation, width, balance).
    Analyze(analyze::AnalyzeArgs),
    /// Mix a folder of stems (as `sonantica separate` writes them) through the Stem
    /// Engine: presets, per-stem gain/mute/solo, and mono, stereo, 2.1, 5.1 or 7.1
    /// output to FLAC or WAV.
    Render(render::RenderArgs),
    /// Split a track into stems (drums, bass, other, vocals; six with htdemucs_6s)
    /// with HTDemucs, natively: no Python, no PyTorch.
    Separate(separate::SeparateArgs),
    /// List or download separation models (the local model store).
    Models(models::ModelsArgs),
    /// Run the listening station: the library, separation as background jobs, and
    /// the HTTP API (on 127.0.0.1:7878 by default).
    Serve(serve::ServeArgs),
    /// Take separation jobs from a station's Redis queue (`serve --queue`) on this
    /// machine: separate locally, upload the stems to the station.
    Worker(worker::WorkerArgs),
    /// Read an untrusted file under memory and CPU limits (what the station and
    /// `analyze` run as a child process).
    #[command(hide = true)]
    Sandbox(sandbox::SandboxArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_) | Command::Sandbox(_)) {
        // The server handles its own signals (graceful shutdown).
        interrupt::install();
    }
    if matches!(cli.command, Command::Separate(_) | Command::Worker(_)) {
        alloc::keep_freed_memory();
    }
    let result = match cli.command {
        Command::Analyze(args) => analyze::run(args),
        Command::Render(args) => render::run(args).map(|()| ExitCode::SUCCESS),
        Command::Separate(args) => separate::run(args).map(|()| ExitCode::SUCCESS),
        Command::Models(args) => models::run(args).map(|()| ExitCode::SUCCESS),
        Command::Serve(args) => serve::run(args).map(|()| ExitCode::SUCCESS),
        Command::Worker(args) => worker::run(args).map(|()| ExitCode::SUCCESS),
        Command::Sandbox(args) => sandbox::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) if e.is::<interrupt::Interrupted>() => {
            eprintln!("{e}");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
