//! The criterion benchmarks, read back from their output.

use std::collections::BTreeMap;

use anyhow::bail;

use crate::report::{Report, Row};

/// `(package, bench)` pairs, in the order they run.
const BENCHES: [(&str, &str); 3] = [
    ("guildhall-domain", "manifest"),
    ("guildhall-authz", "authz"),
    ("guildhall", "runtime"),
];

/// A criterion estimate: the middle of its confidence interval, in microseconds.
fn micros(value: &str, unit: &str) -> Option<f64> {
    let n: f64 = value.parse().ok()?;
    Some(match unit {
        "ps" => n / 1e6,
        "ns" => n / 1e3,
        "µs" | "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        _ => return None,
    })
}

/// Means (criterion) and percentiles (`PERCENTILES` lines) by benchmark name.
#[derive(Debug, Default)]
pub struct Figures {
    pub means_us: BTreeMap<String, f64>,
    pub percentiles_us: BTreeMap<String, (f64, f64)>,
}

pub fn parse(out: &str, figures: &mut Figures) {
    let mut last_name: Option<String> = None;
    for line in out.lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("PERCENTILES ") {
            let mut parts = rest.split_whitespace();
            let name = parts.next().unwrap_or_default().to_string();
            let field = |key: &str| {
                rest.split_whitespace()
                    .find_map(|p| p.strip_prefix(key)?.parse::<f64>().ok())
            };
            if let (Some(p50), Some(p99)) = (field("p50_us="), field("p99_us=")) {
                figures.percentiles_us.insert(name, (p50, p99));
            }
            continue;
        }
        // "name    time:   [1.0 µs 1.1 µs 1.2 µs]" or the name alone on the line before.
        if let Some(at) = trimmed.find("time:") {
            let head = trimmed[..at].trim();
            if !head.is_empty() {
                last_name = Some(head.to_string());
            }
            let inside = trimmed[at + 5..]
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']');
            let words: Vec<&str> = inside.split_whitespace().collect();
            if let (Some(name), [_, _, mid, unit, ..]) = (&last_name, words.as_slice())
                && let Some(us) = micros(mid, unit)
            {
                figures.means_us.insert(name.clone(), us);
            }
        } else if !trimmed.is_empty()
            && !trimmed.contains(' ')
            && !line.starts_with(' ')
            && !trimmed.starts_with("Benchmarking")
        {
            last_name = Some(trimmed.to_string());
        }
    }
}

pub fn run(report: &mut Report) -> anyhow::Result<()> {
    let mut figures = Figures::default();
    for (package, bench) in BENCHES {
        println!("cargo bench -p {package} --bench {bench}");
        let output = crate::cargo()
            .current_dir(crate::repo())
            .args([
                "bench", "--locked", "-p", package, "--bench", bench, "--", "--noplot",
            ])
            .output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "cargo bench -p {package} failed:\n{text}\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        parse(&text, &mut figures);
    }
    for (name, us) in &figures.means_us {
        println!("{name}: mean {us:.2} µs");
    }
    report.micro(&figures);
    if let Some((p50, _)) = figures.percentiles_us.get("instantiate_and_handle_hello") {
        report.row(Row::new(
            "Instantiate + handle `hello`, p50",
            format!("{p50:.1} µs"),
            "≤ 10 µs",
            *p50 <= 10.0,
        ));
    }
    if let Some(section) = trust_checks(&figures) {
        report.section(section);
    }
    if let Some((_, p99)) = figures.percentiles_us.get("casbin_check_10k_rules") {
        report.row(Row::new(
            "casbin check with 10,000 rules, p99",
            format!("{p99:.2} µs"),
            "≤ 10 µs",
            *p99 <= 10.0,
        ));
    }
    Ok(())
}

/// The trust-boundary checks' cost per call beside instantiate + handle: the body read under
/// its cap and deadline less the same read unbounded, and a memory budget reservation.
fn trust_checks(figures: &Figures) -> Option<String> {
    let mean = |name: &str| figures.means_us.get(name).copied();
    let bounded = mean("trust_checks/body_read_with_cap_and_deadline")?;
    let unbounded = mean("trust_checks/body_read_unbounded")?;
    let budget = mean("trust_checks/memory_budget_reserve_and_release")?;
    let call = mean("instantiate_and_handle_hello")?;
    let deadline = (bounded - unbounded).max(0.0);
    let ns = |us: f64| format!("{:.0} ns", us * 1000.0);
    Some(format!(
        "## Cost of the trust-boundary checks per call (criterion means)\n\n\
         | Check | cost | share of instantiate + handle `hello` ({call:.2} µs) |\n|---|---:|---:|\n\
         | body cap and deadline (a 1 KiB body read with them: {} − without: {}) | {} | {:.2}% |\n\
         | memory budget (reserve the call's cap, give it back) | {} | {:.2}% |\n\
         | both | {} | {:.2}% |\n",
        ns(bounded),
        ns(unbounded),
        ns(deadline),
        100.0 * deadline / call,
        ns(budget),
        100.0 * budget / call,
        ns(deadline + budget),
        100.0 * (deadline + budget) / call,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_criterion_and_percentile_lines() {
        let out = "PERCENTILES instantiate_and_handle_hello p50_us=81.20 p99_us=140.50 n=5000
instantiate_and_handle_hello
                        time:   [80.123 µs 81.456 µs 82.789 µs]
                        change: [-1.0% +0.5% +2.0%] (p = 0.50 > 0.05)
manifest_parse_and_validate time:   [12.000 µs 12.500 µs 13.000 µs]
prepare_hello/compile   time:   [160.00 ms 170.00 ms 180.00 ms]
";
        let mut f = Figures::default();
        parse(out, &mut f);
        assert_eq!(f.means_us["instantiate_and_handle_hello"], 81.456);
        assert_eq!(f.means_us["manifest_parse_and_validate"], 12.5);
        assert_eq!(f.means_us["prepare_hello/compile"], 170_000.0);
        assert_eq!(
            f.percentiles_us["instantiate_and_handle_hello"],
            (81.2, 140.5)
        );
    }

    #[test]
    fn the_checks_cost_is_the_difference_and_the_reservation() {
        let out = "trust_checks/body_read_unbounded
                        time:   [400.00 ns 500.00 ns 600.00 ns]
trust_checks/body_read_with_cap_and_deadline
                        time:   [500.00 ns 600.00 ns 700.00 ns]
trust_checks/memory_budget_reserve_and_release
                        time:   [40.000 ns 50.000 ns 60.000 ns]
instantiate_and_handle_hello
                        time:   [9.0000 µs 10.000 µs 11.000 µs]
";
        let mut f = Figures::default();
        parse(out, &mut f);
        let section = trust_checks(&f).expect("all four figures");
        assert!(section.contains("| body cap and deadline"), "{section}");
        assert!(section.contains("| 100 ns | 1.00% |"), "{section}");
        assert!(section.contains("| 50 ns | 0.50% |"), "{section}");
        assert!(section.contains("| both | 150 ns | 1.50% |"), "{section}");
        f.means_us
            .remove("trust_checks/memory_budget_reserve_and_release");
        assert!(trust_checks(&f).is_none());
    }
}
