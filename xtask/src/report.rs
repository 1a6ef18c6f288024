//! The harness's report: the machine, the run, each section's table, and the targets.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use crate::BenchArgs;
use crate::micro::Figures;
use crate::wrk::Load;

/// One target: what was measured against what is wanted.
#[derive(Debug)]
pub struct Row {
    what: String,
    measured: String,
    target: String,
    met: bool,
}

impl Row {
    pub fn new(what: &str, measured: String, target: &str, met: bool) -> Self {
        Self {
            what: what.to_string(),
            measured,
            target: target.to_string(),
            met,
        }
    }

    pub fn ratio(what: &str, ratio: f64, target: &str, met: bool) -> Self {
        Self::new(what, format!("{ratio:.2}×"), target, met)
    }
}

/// The report being built.
#[derive(Debug)]
pub struct Report {
    header: String,
    sections: Vec<String>,
    rows: Vec<Row>,
}

fn first_line(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines().next().unwrap_or_default().trim().to_string()
        })
        .unwrap_or_default()
}

impl Report {
    pub fn new(args: &BenchArgs) -> anyhow::Result<Self> {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    l.strip_prefix("model name")?
                        .split(':')
                        .nth(1)
                        .map(str::trim)
                        .map(String::from)
                })
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    let kib: f64 = l
                        .strip_prefix("MemTotal:")?
                        .split_whitespace()
                        .next()?
                        .parse()
                        .ok()?;
                    Some(kib / 1024.0 / 1024.0)
                })
            })
            .unwrap_or(0.0);
        let commit = first_line(
            Command::new("git")
                .args(["rev-parse", "--short", "HEAD"])
                .current_dir(crate::repo()),
        );
        let dirty = !first_line(
            Command::new("git")
                .args(["status", "--porcelain"])
                .current_dir(crate::repo()),
        )
        .is_empty();
        let date = first_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]));
        let mut header = String::new();
        let _ = writeln!(header, "# Guildhall benchmark report\n");
        let _ = writeln!(header, "- Date: {date}");
        let _ = writeln!(
            header,
            "- Commit: {commit}{}",
            if dirty {
                " (with uncommitted changes)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            header,
            "- Machine: {cores} cores ({cpu}), {memory:.0} GiB RAM"
        );
        let _ = writeln!(
            header,
            "- Toolchain: {}",
            first_line(Command::new("rustc").arg("-V"))
        );
        let _ = writeln!(
            header,
            "- wrk: {}",
            first_line(Command::new("wrk").arg("-v"))
        );
        let _ = writeln!(
            header,
            "- Runs: wrk, 2 threads, {} s per run; {} alternating rounds at {} connections; medians reported",
            args.duration, args.rounds, args.connections
        );
        Ok(Self {
            header,
            sections: Vec::new(),
            rows: Vec::new(),
        })
    }

    pub fn row(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub fn throughput(&mut self, args: &BenchArgs, targets: Vec<(&str, f64, f64, f64, u64)>) {
        let mut s = format!(
            "## Throughput and latency (`hello`, {} connections)\n\n| Route | req/s | p50 | p99 | failed |\n|---|---:|---:|---:|---:|\n",
            args.connections
        );
        for (name, rps, p50, p99, failed) in targets {
            let label = match name {
                "native" => "(a) native axum handler, same server and layers",
                "plugin" => "(b) `hello` through the gateway, metering on",
                "plugin-unmetered" => "(b′) `hello` through the gateway, metering off",
                "wasmtime-serve" => "(c) `wasmtime serve` 48.0.8, same component",
                other => other,
            };
            let _ = writeln!(
                s,
                "| {label} | {rps:.0} | {p50:.2} ms | {p99:.2} ms | {failed} |"
            );
        }
        self.sections.push(s);
    }

    pub fn fairness(&mut self, steady: u32, flood: u32, solo: &Load, shared: &Load, a: &Load) {
        let mut s = format!(
            "## Fairness (B: {steady} connections steady; A: {flood} connections flooding)\n\n| | B req/s | B p50 | B p99 | B failed | A req/s | A refused (429) |\n|---|---:|---:|---:|---:|---:|---:|\n"
        );
        let _ = writeln!(
            s,
            "| B alone | {:.0} | {:.2} ms | {:.2} ms | {} | | |",
            solo.rps,
            solo.p50_ms,
            solo.p99_ms,
            solo.non_2xx + solo.socket_errors
        );
        let _ = writeln!(
            s,
            "| B while A floods | {:.0} | {:.2} ms | {:.2} ms | {} | {:.0} | {} |",
            shared.rps,
            shared.p50_ms,
            shared.p99_ms,
            shared.non_2xx + shared.socket_errors,
            a.rps,
            a.non_2xx
        );
        self.sections.push(s);
    }

    pub fn startup(
        &mut self,
        cold: (Duration, Duration, f64, f64),
        warm: (Duration, Duration, f64, f64),
    ) {
        let mut s = String::from(
            "## Start-up with 100 published and installed plugins\n\n| Cache | start → ready | start → all 100 answered | compiled | loaded from disk |\n|---|---:|---:|---:|---:|\n",
        );
        for (label, (ready, served, compiled, disk)) in [("cold", cold), ("warm", warm)] {
            let _ = writeln!(
                s,
                "| {label} | {:.0} ms | {:.0} ms | {compiled} | {disk} |",
                ready.as_secs_f64() * 1e3,
                served.as_secs_f64() * 1e3
            );
        }
        self.sections.push(s);
    }

    pub fn memory(&mut self, tenants: usize, plugins: usize, idle: f64, rss: f64, compiles: f64) {
        self.sections.push(format!(
            "## Memory with {tenants} tenants × {plugins} installs\n\n| | Resident memory |\n|---|---:|\n| idle, after start | {idle:.0} MiB |\n| every install called once | {rss:.0} MiB |\n\nComponents compiled: {compiles} ({plugins} digests).\n"
        ));
    }

    pub fn micro(&mut self, figures: &Figures) {
        let mut s = String::from(
            "## Micro-benchmarks (criterion means; percentiles timed one call at a time)\n\n| Benchmark | mean | p50 | p99 |\n|---|---:|---:|---:|\n",
        );
        let show = |us: f64| {
            if us >= 1000.0 {
                format!("{:.2} ms", us / 1000.0)
            } else {
                format!("{us:.2} µs")
            }
        };
        for (name, mean) in &figures.means_us {
            let (p50, p99) = figures
                .percentiles_us
                .get(name)
                .map_or((String::new(), String::new()), |(a, b)| {
                    (show(*a), show(*b))
                });
            let _ = writeln!(s, "| {name} | {} | {p50} | {p99} |", show(*mean));
        }
        for (name, (p50, p99)) in &figures.percentiles_us {
            if !figures.means_us.contains_key(name) {
                let _ = writeln!(s, "| {name} | | {} | {} |", show(*p50), show(*p99));
            }
        }
        self.sections.push(s);
    }

    pub fn render(&self) -> String {
        let mut out = self.header.clone();
        out.push_str(
            "\n## Targets\n\n| Measure | Measured | Target | Met |\n|---|---:|---:|:---:|\n",
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                r.what,
                r.measured,
                r.target,
                if r.met { "yes" } else { "**no**" }
            );
        }
        for section in &self.sections {
            out.push('\n');
            out.push_str(section);
        }
        out
    }
}
