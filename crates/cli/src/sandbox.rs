//! `sonantica sandbox TASK FILE` (hidden): the child side of
//! `sonantica_pipeline::sandbox`. Lowers its own address-space and CPU limits,
//! then reads the untrusted file and answers with JSON lines on stdout. The
//! parent (the station, `sonantica analyze`) turns a crash or a kill into a
//! clean error about the file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use sonantica_pipeline::sandbox::{child_main, Task};

/// Arguments of `sonantica sandbox`.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// `probe` (headers and tags), `stream` (the decoded samples, to the
    /// parent) or `cover` (an album cover as JPEG).
    task: String,
    /// Address-space limit in bytes.
    #[arg(long)]
    memory_bytes: u64,
    /// CPU-time limit in seconds.
    #[arg(long)]
    cpu_seconds: u64,
    /// The file to read.
    file: PathBuf,
}

/// Runs the task under the limits; exit 0 on success, 3 when the file is not
/// readable audio (the JSON answer says why).
pub fn run(args: SandboxArgs) -> Result<ExitCode> {
    let task = Task::from_name(&args.task).context("unknown sandbox task")?;
    rlimit::setrlimit(rlimit::Resource::AS, args.memory_bytes, args.memory_bytes)
        .context("setting the address-space limit")?;
    rlimit::setrlimit(
        rlimit::Resource::CPU,
        args.cpu_seconds,
        args.cpu_seconds + 5,
    )
    .context("setting the CPU-time limit")?;
    let stdout = std::io::stdout();
    // Block-buffered: a stream is megabytes of samples.
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let ok = child_main(task, &args.file, &mut out);
    std::io::Write::flush(&mut out).context("writing the answer")?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
