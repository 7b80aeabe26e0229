//! `sonantica`: the Sonántica Neural Acoustic command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod analyze;

/// Sonántica Neural Acoustic: an active listening station.
#[derive(Debug, Parser)]
#[command(name = "sonantica", version, about, long_about = None)]
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Analyze(args) => analyze::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
