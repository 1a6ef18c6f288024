//! Throughput against the natural references, and fairness between tenants.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::BenchArgs;
use crate::report::{Report, Row};
use crate::server::{Site, install, operator};
use crate::wrk::{self, Load};

const TENANT: &str = "north-downs";
const COUNCIL: &str = "tandridge";
const EXPECTED: &str = "Hello from tandridge (north-downs)!";

/// The headers the gateway gives `hello`; sent by hand to `wasmtime serve`.
const CONTEXT: [(&str, &str); 2] = [
    ("x-guildhall-tenant", TENANT),
    ("x-guildhall-council", COUNCIL),
];

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

struct Target {
    name: &'static str,
    url: String,
    headers: &'static [(&'static str, &'static str)],
    runs: Vec<Load>,
}

impl Target {
    fn rps(&self) -> f64 {
        median(&mut self.runs.iter().map(|l| l.rps).collect::<Vec<_>>())
    }
    fn p50(&self) -> f64 {
        median(&mut self.runs.iter().map(|l| l.p50_ms).collect::<Vec<_>>())
    }
    fn p99(&self) -> f64 {
        median(&mut self.runs.iter().map(|l| l.p99_ms).collect::<Vec<_>>())
    }
    fn failures(&self) -> u64 {
        self.runs.iter().map(|l| l.non_2xx + l.socket_errors).sum()
    }
}

/// `wasmtime serve` on a free port with the `hello` component.
struct WasmtimeServe(Child, String);

impl WasmtimeServe {
    fn start(wasmtime: &Path) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let component = guildhall_test_artifacts::plugin("hello").component;
        // `-S cli`: a Rust wasm32-wasip2 component imports wasi:cli through std.
        let child = Command::new(wasmtime)
            .args(["serve", "-S", "cli", "--addr", &addr])
            .arg(&component)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start wasmtime serve")?;
        for _ in 0..100 {
            if std::net::TcpStream::connect(&addr).is_ok() {
                return Ok(Self(child, format!("http://{addr}/")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("wasmtime serve did not start listening on {addr}")
    }
}

impl Drop for WasmtimeServe {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn body(url: &str, headers: &[(&str, &str)]) -> anyhow::Result<String> {
    let mut request = reqwest::Client::new().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await?;
    if !response.status().is_success() {
        bail!("{url} answered {}", response.status());
    }
    Ok(response.text().await?)
}

/// The throughput comparison and metering's cost.
pub async fn run(
    bin: &Path,
    wasmtime: &Path,
    args: &BenchArgs,
    report: &mut Report,
) -> anyhow::Result<()> {
    let site = Site::new(bin, "http")?;
    let metered = site.config("metered", "")?;
    let unmetered = site.config("unmetered", "[metering]\nenabled = false\n")?;
    let token = site.standard(&metered)?;
    let server = site.serve(&metered)?;
    let client = operator(&token)?;
    install(&client, &server, TENANT, "hello", "0.1.0").await?;
    let unmetered_server = site.serve(&unmetered)?;
    let wasmtime = WasmtimeServe::start(wasmtime)?;

    let mut targets = vec![
        Target {
            name: "native",
            url: server.url(&format!("/_bench/native/{TENANT}/{COUNCIL}")),
            headers: &[],
            runs: Vec::new(),
        },
        Target {
            name: "plugin",
            url: server.url(&format!("/s/{TENANT}/{COUNCIL}/hello/")),
            headers: &[],
            runs: Vec::new(),
        },
        Target {
            name: "plugin-unmetered",
            url: unmetered_server.url(&format!("/s/{TENANT}/{COUNCIL}/hello/")),
            headers: &[],
            runs: Vec::new(),
        },
        Target {
            name: "wasmtime-serve",
            url: wasmtime.1.clone(),
            headers: &CONTEXT,
            runs: Vec::new(),
        },
    ];
    for target in &targets {
        let got = body(&target.url, target.headers).await?;
        if got != EXPECTED {
            bail!("{} answered {got:?}, not {EXPECTED:?}", target.name);
        }
        // Warm up: compile, caches, connections.
        wrk::run(&target.url, args.connections, 2, target.headers)?;
    }
    for round in 0..args.rounds as usize {
        for i in 0..targets.len() {
            let target = &mut targets[(i + round) % 4];
            let load = wrk::run(&target.url, args.connections, args.duration, target.headers)?;
            println!(
                "round {} {:>16}: {:>9.0} req/s  p50 {:.2} ms  p99 {:.2} ms",
                round + 1,
                target.name,
                load.rps,
                load.p50_ms,
                load.p99_ms
            );
            target.runs.push(load);
        }
    }
    let by = |name: &str| targets.iter().find(|t| t.name == name).expect("target");
    let (native, plugin, plain, serve) = (
        by("native"),
        by("plugin"),
        by("plugin-unmetered"),
        by("wasmtime-serve"),
    );
    report.throughput(
        args,
        targets
            .iter()
            .map(|t| (t.name, t.rps(), t.p50(), t.p99(), t.failures()))
            .collect(),
    );
    report.row(Row::ratio(
        "Plugin route ÷ native route (req/s)",
        plugin.rps() / native.rps(),
        "≥ 0.6",
        plugin.rps() / native.rps() >= 0.6,
    ));
    report.row(Row::ratio(
        "Plugin route ÷ wasmtime serve (req/s)",
        plugin.rps() / serve.rps(),
        "≥ 1.0",
        plugin.rps() / serve.rps() >= 1.0,
    ));
    let cost = 1.0 - plugin.rps() / plain.rps();
    report.row(Row::new(
        "Metering's cost on gateway throughput",
        format!("{:.1}%", cost * 100.0),
        "≤ 5%",
        cost <= 0.05,
    ));
    let failures: u64 = targets.iter().map(Target::failures).sum();
    if failures > 0 {
        bail!("{failures} requests failed during the throughput runs");
    }
    server.stop()?;
    unmetered_server.stop()?;
    Ok(())
}

/// Tenant A floods beyond its share while tenant B sends steady traffic.
pub async fn fairness(bin: &Path, args: &BenchArgs, report: &mut Report) -> anyhow::Result<()> {
    const B: &str = "the-marches";
    let site = Site::new(bin, "fairness")?;
    let config = site.config("fairness", "")?;
    let token = site.standard(&config)?;
    let server = site.serve(&config)?;
    let client = operator(&token)?;
    install(&client, &server, TENANT, "hello", "0.1.0").await?;
    install(&client, &server, B, "hello", "0.1.0").await?;
    let a_url = server.url(&format!("/s/{TENANT}/{COUNCIL}/hello/"));
    let b_url = server.url(&format!("/s/{B}/shropshire/hello/"));
    let steady = 8;
    let flood = 256;
    wrk::run(&b_url, steady, 2, &[])?;
    let solo = wrk::run(&b_url, steady, args.duration, &[])?;
    println!(
        "B alone: p99 {:.2} ms, {} failed",
        solo.p99_ms,
        solo.non_2xx + solo.socket_errors
    );

    let flood_seconds = args.duration + 4;
    let flooding = {
        let a_url = a_url.clone();
        std::thread::spawn(move || wrk::run(&a_url, flood, flood_seconds, &[]))
    };
    std::thread::sleep(Duration::from_secs(2));
    let shared = wrk::run(&b_url, steady, args.duration, &[])?;
    let a = flooding
        .join()
        .map_err(|_| anyhow::anyhow!("the flood thread panicked"))??;
    println!(
        "B under A's flood: p99 {:.2} ms, {} failed; A: {:.0} req/s, {} refused",
        shared.p99_ms,
        shared.non_2xx + shared.socket_errors,
        a.rps,
        a.non_2xx
    );
    let b_failed = shared.non_2xx + shared.socket_errors;
    report.fairness(steady, flood, &solo, &shared, &a);
    report.row(Row::new(
        "B's p99 under A's flood ÷ B's p99 alone",
        format!("{:.2}×", shared.p99_ms / solo.p99_ms),
        "≤ 2×",
        shared.p99_ms <= 2.0 * solo.p99_ms,
    ));
    report.row(Row::new(
        "B's failed requests under A's flood",
        b_failed.to_string(),
        "0",
        b_failed == 0,
    ));
    server.stop()?;
    Ok(())
}
