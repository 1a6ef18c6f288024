//! `cargo xtask bench`: every figure in BENCHMARKS.md, measured side by side in one run.
//!
//! Sections (all by default, or some with `--only`):
//! - `http`: `wrk` over loopback against (a) a native axum handler in the same server
//!   build, (b) the `hello` plugin through the gateway as an anonymous citizen, with
//!   metering on and off, (c) stock `wasmtime serve` running the identical component, the
//!   native route and `hello` again on a server at the default log level (`info`, one line
//!   per request to a file), and (d) `hello`'s source built the stock way (`hello-stock`)
//!   through the gateway and under `wasmtime serve`; rounds alternate the order, and the
//!   report gives medians and ratios.
//! - `examples`: every example plugin (Rust, JavaScript, Python) through the gateway.
//! - `fairness`: tenant A floods the gateway, with light calls and then with CPU-heavy
//!   ones, while tenant B sends steady traffic, against B alone.
//! - `scale`: start-up with 100 published plugins (cold and warm compile cache, and a new
//!   pod: the same database with an empty cache of its own), resident memory with 1,000
//!   tenants × 20 installs, and compile counts from `/metrics`.
//! - `micro`: the criterion benchmarks (instantiate + handle, kv, casbin at 10,000 rules,
//!   manifest validation, publishing 5 MiB) with percentiles where the targets need them.
//!
//! The report is printed and written to `<target>/bench/report.md`.

mod examples;
mod http;
mod micro;
mod report;
mod scale;
mod server;
mod stock;
mod wrk;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};

use crate::report::Report;

/// Project automation.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Build in release mode and run the benchmark harness.
    Bench(BenchArgs),
}

/// What to measure and for how long.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Seconds per wrk run.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// wrk connections for the throughput comparison.
    #[arg(long, default_value_t = 32)]
    pub connections: u32,
    /// Alternating rounds of the throughput comparison.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Only these sections (repeatable).
    #[arg(long, value_enum)]
    pub only: Vec<Section>,
}

/// A part of the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Section {
    /// Throughput and latency against the native route and `wasmtime serve`, at `warn` and
    /// at the default log level, and for `hello` built the stock way.
    Http,
    /// Every example plugin through the gateway.
    Examples,
    /// One tenant flooding (light calls, then CPU-heavy ones), another steady.
    Fairness,
    /// Start-up with 100 plugins (cold, warm, new pod); memory with 1,000 tenants × 20
    /// installs.
    Scale,
    /// Criterion micro-benchmarks.
    Micro,
}

/// The wasmtime version Guildhall embeds; `wasmtime serve` must be the same.
pub const WASMTIME_VERSION: &str = "48.0.8";

fn main() -> anyhow::Result<()> {
    let Cli {
        command: Task::Bench(args),
    } = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(args))
}

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository")
        .to_path_buf()
}

/// Cargo's target directory.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => repo().join("target"),
    }
}

/// Cargo, without the variables `cargo run` set for this program (`CARGO_MANIFEST_DIR`,
/// `CARGO_PKG_*` and the like): build scripts that watch them (ring's watches
/// `CARGO_MANIFEST_DIR`) would otherwise see them change between a build made here and one
/// made from a shell, and each would rebuild the other's dependencies from the start.
pub fn cargo() -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if key.starts_with("CARGO_PKG_")
            || matches!(
                key,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
            )
        {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Runs a command to completion and returns its stdout; fails with its stderr.
pub fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{cmd:?}");
    let output = cmd
        .output()
        .with_context(|| format!("cannot run {shown}"))?;
    if !output.status.success() {
        bail!(
            "{shown} failed: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn say(what: &str) {
    println!("\n==> {what}");
}

async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let wants = |s: Section| args.only.is_empty() || args.only.contains(&s);
    which("wrk", "install it with `apt-get install wrk`")?;
    let mut report = Report::new(&args)?;

    say("building guildhall (release, with the bench route)");
    let status = cargo()
        .current_dir(repo())
        .args([
            "build",
            "--release",
            "--locked",
            "--package",
            "guildhall",
            "--features",
            "bench",
        ])
        .status()?;
    if !status.success() {
        bail!("the release build failed");
    }
    let bin = target_dir().join("release/guildhall");

    if wants(Section::Http) {
        say("wasmtime serve");
        let wasmtime = wasmtime_cli()?;
        say(
            "throughput: native route, hello plugin (metering on and off, log levels warn and info), wasmtime serve, hello-stock",
        );
        http::run(&bin, &wasmtime, &args, &mut report).await?;
    }
    if wants(Section::Examples) {
        say("example plugins through the gateway");
        examples::run(&bin, &args, &mut report).await?;
    }
    if wants(Section::Fairness) {
        say("fairness: tenant A floods (light, then CPU-heavy calls), tenant B steady");
        http::fairness(&bin, &args, &mut report).await?;
    }
    if wants(Section::Scale) {
        say("scale: 100 plugins at start-up (cold, warm, new pod); 1,000 tenants × 20 installs");
        scale::run(&bin, &mut report).await?;
    }
    if wants(Section::Micro) {
        say("micro-benchmarks (criterion)");
        micro::run(&mut report)?;
    }

    let text = report.render();
    let out = target_dir().join("bench");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("report.md"), &text)?;
    println!("\n{text}");
    println!("(written to {})", out.join("report.md").display());
    Ok(())
}

/// Fails with a hint when `tool` is not on the PATH.
pub fn which(tool: &str, hint: &str) -> anyhow::Result<()> {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        bail!("{tool} is not installed: {hint}");
    }
    Ok(())
}

/// `wasmtime` at Guildhall's wasmtime version, installed from crates.io under the target
/// directory when missing.
fn wasmtime_cli() -> anyhow::Result<PathBuf> {
    let root = target_dir().join("bench-tools");
    let bin = root.join("bin/wasmtime");
    let current = Command::new(&bin)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if current.contains(WASMTIME_VERSION) {
        return Ok(bin);
    }
    println!(
        "installing wasmtime-cli {WASMTIME_VERSION} into {}",
        root.display()
    );
    let status = cargo()
        .env("CARGO_TARGET_DIR", root.join("build"))
        .args([
            "install",
            "wasmtime-cli",
            "--locked",
            "--version",
            WASMTIME_VERSION,
            "--root",
        ])
        .arg(&root)
        .status()?;
    if !status.success() {
        bail!("cannot install wasmtime-cli {WASMTIME_VERSION}");
    }
    Ok(bin)
}

#[cfg(test)]
mod tests {
    #[test]
    fn child_cargo_does_not_inherit_what_cargo_run_set() {
        // `cargo test` sets these for the test binary as `cargo run` does for the harness.
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        let cmd = super::cargo();
        let removed: Vec<_> = cmd
            .get_envs()
            .filter(|(_, value)| value.is_none())
            .map(|(key, _)| key.to_string_lossy().into_owned())
            .collect();
        assert!(
            removed.iter().any(|k| k == "CARGO_MANIFEST_DIR"),
            "{removed:?}"
        );
        assert!(removed.iter().any(|k| k == "CARGO_PKG_NAME"), "{removed:?}");
        assert!(
            !removed
                .iter()
                .any(|k| k == "CARGO_HOME" || k == "CARGO_TARGET_DIR")
        );
    }
}
