//! Running `wrk` and reading its report.

use std::process::Command;

use anyhow::Context;

/// What one wrk run measured.
#[derive(Debug, Clone, Default)]
pub struct Load {
    /// Requests per second.
    pub rps: f64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// Responses that were not 2xx or 3xx.
    pub non_2xx: u64,
    /// Socket errors (connect, read, write, timeout).
    pub socket_errors: u64,
    /// Requests completed.
    pub requests: u64,
}

/// Runs `wrk` with two threads (one for a single connection: wrk needs a connection per
/// thread).
pub fn run(
    url: &str,
    connections: u32,
    seconds: u64,
    headers: &[(&str, &str)],
) -> anyhow::Result<Load> {
    let mut cmd = Command::new("wrk");
    cmd.args([
        &format!("-t{}", connections.clamp(1, 2)),
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--timeout",
        "10s",
        "--latency",
    ]);
    for (name, value) in headers {
        cmd.args(["-H", &format!("{name}: {value}")]);
    }
    cmd.arg(url);
    let out = crate::run(&mut cmd)?;
    parse(&out).with_context(|| format!("cannot read wrk's report:\n{out}"))
}

fn duration_ms(text: &str) -> Option<f64> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = number.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

/// Reads wrk's text report.
pub fn parse(out: &str) -> Option<Load> {
    let mut load = Load::default();
    for line in out.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("50%") {
            load.p50_ms = duration_ms(rest)?;
        } else if let Some(rest) = line.strip_prefix("99%") {
            load.p99_ms = duration_ms(rest)?;
        } else if let Some(rest) = line.strip_prefix("Requests/sec:") {
            load.rps = rest.trim().parse().ok()?;
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            load.non_2xx = rest.trim().parse().ok()?;
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            load.socket_errors = rest
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        } else if line.contains(" requests in ") {
            load.requests = line.split_whitespace().next()?.parse().ok()?;
        }
    }
    (load.rps > 0.0).then_some(load)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_wrk_report() {
        let out = "Running 10s test @ http://127.0.0.1:8080/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms  512.00us  15.00ms   80.00%
    Req/Sec     7.50k   300.00     8.00k    70.00%
  Latency Distribution
     50%  1.95ms
     75%    2.30ms
     90%    2.80ms
     99%  850.00us
  149000 requests in 10.00s, 20.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 12
Requests/sec:  14900.12
Transfer/sec:      2.00MB
";
        let load = parse(out).unwrap();
        assert_eq!(load.rps, 14900.12);
        assert_eq!(load.p50_ms, 1.95);
        assert_eq!(load.p99_ms, 0.85);
        assert_eq!(load.non_2xx, 12);
        assert_eq!(load.socket_errors, 5);
        assert_eq!(load.requests, 149_000);
    }
}
