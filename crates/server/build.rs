//! Builds `sonantica-wasm` for `wasm32-unknown-unknown`, so that the binary can
//! embed the module the Studio's AudioWorklet runs: the README's one run command
//! then builds everything.
//!
//! A nested `cargo build` with its own target folder (sharing the outer one would
//! deadlock on its lock). Cargo has no artifact dependencies on stable Rust yet,
//! which would be the built-in way to do this.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest.join("../..");
    for dir in ["../wasm", "../meter", "../mix", "../audio/src/layout.rs"] {
        println!("cargo:rerun-if-changed={dir}");
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    ensure_wasm_target();
    let target_dir = out.join("wasm-target");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .args([
            "build",
            "-p",
            "sonantica-wasm",
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            "wasm",
            "--locked",
            "--target-dir",
        ])
        .arg(&target_dir)
        // The outer build's settings are for the host (and clippy's wrapper would
        // lint the module again); the module is built plainly.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET");
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build sonantica-wasm: {e}"));
    if !status.success() {
        panic!(
            "building sonantica-wasm for wasm32-unknown-unknown failed; the target comes with \
             rust-toolchain.toml (or: rustup target add wasm32-unknown-unknown)"
        );
    }
    let built = target_dir.join("wasm32-unknown-unknown/wasm/sonantica_wasm.wasm");
    std::fs::copy(&built, out.join("sonantica.wasm"))
        .unwrap_or_else(|e| panic!("{}: {e}", built.display()));
}

/// A toolchain installed before `rust-toolchain.toml` asked for the wasm32 target
/// (rustup adds listed targets only when it installs the toolchain) lacks it:
/// add it with rustup, so that `cargo run --release -- serve` works on a fresh
/// clone with nothing else to do. Without rustup, the nested build says what is
/// missing.
fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let has_target = Command::new(&rustc)
        .args([
            "--print",
            "target-libdir",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .is_some_and(|dir| dir.is_dir());
    if has_target {
        return;
    }
    println!(
        "cargo:warning=adding the wasm32-unknown-unknown target with rustup (once) for the Studio's module"
    );
    let mut add = Command::new("rustup");
    add.args(["target", "add", "wasm32-unknown-unknown"]);
    if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") {
        add.args(["--toolchain", &toolchain]);
    }
    match add.status() {
        Ok(s) if s.success() => {}
        Ok(_) | Err(_) => println!(
            "cargo:warning=could not add the wasm32-unknown-unknown target; run `rustup target add wasm32-unknown-unknown`"
        ),
    }
}
