//! Helpers shared by the tests that run the real `sonantica` binary.
#![allow(dead_code)]

pub mod scale;
pub mod server;

use std::path::{Path, PathBuf};
use std::process::Output;

use sonantica_testkit::cmd::TestCommand;

/// `sonantica ARGS...`, to run and check.
pub fn sonantica_cmd(args: &[&str]) -> TestCommand {
    let mut cmd = TestCommand::new(env!("CARGO_BIN_EXE_sonantica"));
    cmd.args(args);
    cmd
}

/// Runs `sonantica ARGS...` and collects its output, whatever its exit status.
pub fn sonantica(args: &[&str]) -> anyhow::Result<Output> {
    sonantica_cmd(args).output()
}

/// The arguments `separate INPUT --model MODEL --out OUT EXTRA...`.
pub fn separate_args<'a>(
    input: &'a Path,
    model: &'a str,
    out: &'a Path,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec!["separate", s(input), "--model", model, "--out", s(out)];
    args.extend_from_slice(extra);
    args
}

/// A path as a command-line argument (the test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// The paths in `dir`, sorted; none if `dir` does not exist.
pub fn files_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    v.sort();
    Ok(v)
}

/// The separation fixtures of sonantica-demucs.
pub fn demucs_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../demucs/tests/fixtures")
}
