//! The harness's report: the machine, the run, each section's table, and the targets.

use std::fmt::Write as _;
use std::process::Command;

use crate::BenchArgs;
use crate::http::Flood;
use crate::micro::Figures;
use crate::scale::Startup;
use crate::wrk::Load;

/// One target's figures over the rounds (medians; failures summed).
#[derive(Debug)]
pub struct Measured {
    pub label: String,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub failed: u64,
    /// The server's log lines per request, for a Guildhall server.
    pub log_lines_per_request: Option<f64>,
}

/// A table of [`Measured`] rows.
fn measured_table(rows: &[Measured]) -> String {
    let mut s = String::from(
        "| Route | req/s | p50 | p99 | failed | log lines / request |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for m in rows {
        let lines = m
            .log_lines_per_request
            .map_or(String::new(), |l| format!("{l:.2}"));
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.2} ms | {:.2} ms | {} | {lines} |",
            m.label, m.rps, m.p50_ms, m.p99_ms, m.failed
        );
    }
    s
}

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

    /// A section of its own, in Markdown, after those before it.
    pub fn section(&mut self, text: String) {
        self.sections.push(text);
    }

    pub fn throughput(&mut self, args: &BenchArgs, rows: Vec<Measured>, notes: &str) {
        self.sections.push(format!(
            "## Throughput and latency (`hello`, {} connections)\n\n{}\n{notes}",
            args.connections,
            measured_table(&rows)
        ));
    }

    pub fn examples(&mut self, args: &BenchArgs, rows: Vec<Measured>) {
        self.sections.push(format!(
            "## Example plugins through the gateway ({} connections, metering on, logging at `warn`)\n\n{}",
            args.connections,
            measured_table(&rows)
        ));
    }

    pub fn fairness(&mut self, steady: u32, flood: u32, solo: &Load, floods: &[Flood]) {
        let mut s = format!(
            "## Fairness (B: {steady} connections steady; A: {flood} connections flooding)\n\n| | B req/s | B p50 | B p99 | B p99 ÷ alone | B failed | A req/s | A non-2xx | 429s (server) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        );
        let _ = writeln!(
            s,
            "| B alone | {:.0} | {:.2} ms | {:.2} ms | 1.00× | {} | | | |",
            solo.rps,
            solo.p50_ms,
            solo.p99_ms,
            solo.non_2xx + solo.socket_errors
        );
        for f in floods {
            let _ = writeln!(
                s,
                "| B while A floods with {} | {:.0} | {:.2} ms | {:.2} ms | {:.2}× | {} | {:.0} | {} | {} |",
                f.what,
                f.b.rps,
                f.b.p50_ms,
                f.b.p99_ms,
                f.b.p99_ms / solo.p99_ms,
                f.b.non_2xx + f.b.socket_errors,
                f.a.rps,
                f.a.non_2xx,
                f.refused
            );
        }
        s.push_str(
            "\nA's req/s counts every answer, 429s included; \"A non-2xx\" is wrk's count of A's \
             answers that were not 2xx or 3xx, \"429s (server)\" the server's own count of 429s \
             during the flood (both tenants; B's are in B failed). A flood of the native route \
             is the reference: no plugin runs and admission never sees it, so what it costs B \
             is the HTTP work of A's requests on the same cores, which no refusal after parsing \
             a request can remove.\n",
        );
        self.sections.push(s);
    }

    pub fn startup(&mut self, starts: &[(&str, Startup)]) {
        let mut s = String::from(
            "## Start-up with 100 published and installed plugins\n\n| Cache | start → ready | start → all 100 answered | compiled | loaded from local disk | loaded from the database (shared) |\n|---|---:|---:|---:|---:|---:|\n",
        );
        for (label, start) in starts {
            let _ = writeln!(
                s,
                "| {label} | {:.0} ms | {:.0} ms | {} | {} | {} |",
                start.ready.as_secs_f64() * 1e3,
                start.served.as_secs_f64() * 1e3,
                start.compiled,
                start.from_disk,
                start.shared
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of every table has as many cells as its header.
    #[test]
    fn tables_have_as_many_cells_as_their_headers() {
        let args = BenchArgs {
            duration: 10,
            connections: 32,
            rounds: 3,
            only: Vec::new(),
        };
        let mut report = Report::new(&args).unwrap();
        let load = Load {
            rps: 1000.0,
            p50_ms: 1.0,
            p99_ms: 2.0,
            non_2xx: 3,
            socket_errors: 0,
            requests: 10_000,
        };
        let measured = |log| Measured {
            label: "x".into(),
            rps: 1.0,
            p50_ms: 1.0,
            p99_ms: 1.0,
            failed: 0,
            log_lines_per_request: log,
        };
        report.throughput(&args, vec![measured(Some(1.0)), measured(None)], "");
        report.examples(&args, vec![measured(Some(0.0))]);
        let flood = Flood {
            what: "light calls".into(),
            b: load.clone(),
            a: load.clone(),
            refused: 3.0,
        };
        report.fairness(8, 256, &load, &[flood]);
        let start = Startup {
            ready: std::time::Duration::from_millis(16),
            served: std::time::Duration::from_millis(120),
            compiled: 0.0,
            from_disk: 100.0,
            shared: 0.0,
        };
        report.startup(&[("warm", start), ("new pod", start)]);
        report.row(Row::ratio("ratio", 0.5, "≥ 0.6×", false));
        let text = report.render();
        let mut header_cells = None;
        for line in text.lines() {
            if !line.starts_with('|') {
                header_cells = None;
                continue;
            }
            let cells = line.matches('|').count();
            match header_cells {
                None => header_cells = Some(cells),
                Some(n) => assert_eq!(cells, n, "{line}\n\n{text}"),
            }
        }
        assert!(
            text.contains("| ratio | 0.50× | ≥ 0.6× | **no** |"),
            "{text}"
        );
    }
}
