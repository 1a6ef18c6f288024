//! Throughput against the natural references, and fairness between tenants.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::BenchArgs;
use crate::report::{Measured, Report, Row};
use crate::server::{Log, Server, Site, install, metric_where, operator};
use crate::wrk::{self, Load};

pub const TENANT: &str = "north-downs";
pub const COUNCIL: &str = "tandridge";
pub const EXPECTED: &str = "Hello from tandridge (north-downs)!";

/// The headers the gateway gives `hello`; sent by hand to `wasmtime serve`.
const CONTEXT: [(&str, &str); 2] = [
    ("x-guildhall-tenant", TENANT),
    ("x-guildhall-council", COUNCIL),
];

/// The median; `values` must not be empty.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One URL measured with wrk in every round.
pub struct Target<'a> {
    /// A short name for the console.
    pub name: &'static str,
    /// What the report calls it.
    pub label: String,
    pub url: String,
    pub headers: &'static [(&'static str, &'static str)],
    /// The Guildhall server answering, whose log lines are counted per request.
    pub server: Option<&'a Server>,
    pub runs: Vec<Load>,
    log_lines: u64,
}

impl<'a> Target<'a> {
    /// A target behind a Guildhall server.
    pub fn guildhall(name: &'static str, label: String, server: &'a Server, path: &str) -> Self {
        Self {
            name,
            label,
            url: server.url(path),
            headers: &[],
            server: Some(server),
            runs: Vec::new(),
            log_lines: 0,
        }
    }

    /// A target that is not a Guildhall server.
    fn other(
        name: &'static str,
        label: String,
        url: String,
        headers: &'static [(&'static str, &'static str)],
    ) -> Self {
        Self {
            name,
            label,
            url,
            headers,
            server: None,
            runs: Vec::new(),
            log_lines: 0,
        }
    }

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

    /// Medians over the rounds, for the report.
    pub fn measured(&self) -> Measured {
        let requests: u64 = self.runs.iter().map(|l| l.requests).sum();
        Measured {
            label: self.label.clone(),
            rps: self.rps(),
            p50_ms: self.p50(),
            p99_ms: self.p99(),
            failed: self.failures(),
            log_lines_per_request: self
                .server
                .map(|_| self.log_lines as f64 / requests.max(1) as f64),
        }
    }
}

/// Checks what each target answers (`expected`, when given, or any 2xx), warms each up
/// for 2 s, then runs wrk against each `args.rounds` times for `args.duration` seconds at
/// `args.connections`, the order rotating each round. Counts each Guildhall server's log
/// lines during the measured runs (and empties its log after each run).
pub async fn measure(
    targets: &mut [Target<'_>],
    expected: Option<&str>,
    args: &BenchArgs,
) -> anyhow::Result<()> {
    for target in targets.iter() {
        let got = body(&target.url, target.headers).await?;
        if let Some(expected) = expected
            && got != expected
        {
            bail!("{} answered {got:?}, not {expected:?}", target.name);
        }
        // Warm up: compile, caches, connections.
        wrk::run(&target.url, args.connections, 2, target.headers)?;
    }
    for round in 0..args.rounds as usize {
        for i in 0..targets.len() {
            let n = targets.len();
            let target = &mut targets[(i + round) % n];
            if let Some(server) = target.server {
                server.take_log_lines()?;
            }
            let load = wrk::run(&target.url, args.connections, args.duration, target.headers)?;
            if let Some(server) = target.server {
                target.log_lines += server.take_log_lines()?;
            }
            println!(
                "round {} {:>20}: {:>9.0} req/s  p50 {:.2} ms  p99 {:.2} ms",
                round + 1,
                target.name,
                load.rps,
                load.p50_ms,
                load.p99_ms
            );
            target.runs.push(load);
        }
    }
    Ok(())
}

/// `wasmtime serve` on a free port with `component`.
struct WasmtimeServe(Child, String);

impl WasmtimeServe {
    fn start(wasmtime: &Path, component: &Path) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        // `-S cli`: a Rust wasm32-wasip2 component imports wasi:cli through std.
        let child = Command::new(wasmtime)
            .args(["serve", "-S", "cli", "--addr", &addr])
            .arg(component)
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

/// The body of a GET of `url`; fails unless it answers 2xx.
pub async fn body(url: &str, headers: &[(&str, &str)]) -> anyhow::Result<String> {
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

fn kib(path: &Path) -> anyhow::Result<f64> {
    Ok(std::fs::metadata(path)?.len() as f64 / 1024.0)
}

/// The throughput comparison: the native route and `hello` through the gateway at the
/// harness's `warn` and at the default `info`, metering's cost, `wasmtime serve`, and
/// `hello` built the stock way through the gateway and under `wasmtime serve`.
pub async fn run(
    bin: &Path,
    wasmtime: &Path,
    args: &BenchArgs,
    report: &mut Report,
) -> anyhow::Result<()> {
    println!(
        "building {} (hello's source, stock build)",
        crate::stock::NAME
    );
    let stock = crate::stock::hello()?;
    let hello = guildhall_test_artifacts::plugin("hello");

    let site = Site::new(bin, "http")?;
    let metered = site.config("metered", "")?;
    let unmetered = site.config("unmetered", "[metering]\nenabled = false\n")?;
    // The configuration's default log level: one line per request, to a file.
    let info = site.config_with("info", Log::Default, &site.dir.join("cache"), "")?;
    let token = site.standard(&metered)?;
    site.cli(&metered, &["plugins", "publish", path_str(&stock.dir)?])?;
    let server = site.serve(&metered)?;
    let client = operator(&token)?;
    install(&client, &server, TENANT, "hello", "0.1.0").await?;
    install(&client, &server, TENANT, crate::stock::NAME, "0.1.0").await?;
    let unmetered_server = site.serve(&unmetered)?;
    let info_server = site.serve(&info)?;
    let serve_hello = WasmtimeServe::start(wasmtime, &hello.component)?;
    let serve_stock = WasmtimeServe::start(wasmtime, &stock.component)?;

    let native = format!("/_bench/native/{TENANT}/{COUNCIL}");
    let plugin = format!("/s/{TENANT}/{COUNCIL}/hello/");
    let stock_path = format!("/s/{TENANT}/{COUNCIL}/{}/", crate::stock::NAME);
    let version = crate::WASMTIME_VERSION;
    let mut targets = vec![
        Target::guildhall(
            "native",
            "(a) native axum handler, same server and layers".into(),
            &server,
            &native,
        ),
        Target::guildhall(
            "plugin",
            "(b) `hello` through the gateway, metering on".into(),
            &server,
            &plugin,
        ),
        Target::guildhall(
            "plugin-unmetered",
            "(b′) `hello` through the gateway, metering off".into(),
            &unmetered_server,
            &plugin,
        ),
        Target::other(
            "wasmtime-serve",
            format!("(c) `wasmtime serve` {version}, same component"),
            serve_hello.1.clone(),
            &CONTEXT,
        ),
        Target::guildhall(
            "native-info",
            "(a) native route, default log level (`info`)".into(),
            &info_server,
            &native,
        ),
        Target::guildhall(
            "plugin-info",
            "(b) `hello` through the gateway, default log level (`info`)".into(),
            &info_server,
            &plugin,
        ),
        Target::guildhall(
            "stock",
            format!(
                "(d) `{}`: `hello` built the stock way, through the gateway",
                crate::stock::NAME
            ),
            &server,
            &stock_path,
        ),
        Target::other(
            "wasmtime-serve-stock",
            format!("(e) `wasmtime serve` {version}, `{}`", crate::stock::NAME),
            serve_stock.1.clone(),
            &CONTEXT,
        ),
    ];
    // Every route answers the same bytes, the stock build too.
    measure(&mut targets, Some(EXPECTED), args).await?;

    let by = |name: &str| targets.iter().find(|t| t.name == name).expect("target");
    let ratio = |a: &str, b: &str| by(a).rps() / by(b).rps();
    let notes = format!(
        "Request logging is at `warn` for every server except the two rows marked `info` (the \
         configuration's default, one line per request); each server's stderr goes to a file \
         (`<target>/bench/http/<config>.log`), emptied between runs. Components: `hello` \
         {:.0} KiB (64 KiB stack, the plugins workspace's size-optimised profile), `{}` {:.0} \
         KiB (the same source built with Cargo's default release profile, Rust's default 1 MiB \
         stack, no link arguments).\n",
        kib(&hello.component)?,
        crate::stock::NAME,
        kib(&stock.component)?,
    );
    report.throughput(args, targets.iter().map(Target::measured).collect(), &notes);
    for (what, plugin, native) in [
        ("log level `warn`", "plugin", "native"),
        ("default log level `info`", "plugin-info", "native-info"),
        ("stock-built `hello`, `warn`", "stock", "native"),
    ] {
        let r = ratio(plugin, native);
        report.row(Row::ratio(
            &format!("Plugin route ÷ native route (req/s), {what}"),
            r,
            "≥ 0.6×",
            r >= 0.6,
        ));
    }
    for (what, plugin, serve) in [
        ("`hello`", "plugin", "wasmtime-serve"),
        ("stock-built `hello`", "stock", "wasmtime-serve-stock"),
    ] {
        let r = ratio(plugin, serve);
        report.row(Row::ratio(
            &format!("Plugin route ÷ `wasmtime serve` (req/s), {what}"),
            r,
            "≥ 2.5×",
            r >= 2.5,
        ));
    }
    let cost = 1.0 - ratio("plugin", "plugin-unmetered");
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
    drop(targets);
    server.stop()?;
    unmetered_server.stop()?;
    info_server.stop()?;
    Ok(())
}

/// A path as UTF-8, for a command line.
pub fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// What B saw while A flooded, and what A got.
#[derive(Debug)]
pub struct Flood {
    /// What A's calls were.
    pub what: String,
    /// B's steady traffic meanwhile.
    pub b: Load,
    /// A's flood.
    pub a: Load,
    /// 429s the server answered during the flood (its `/metrics`).
    pub refused: f64,
}

/// The 429s the server has answered (its request histogram's count).
async fn refused(server: &Server) -> anyhow::Result<f64> {
    metric_where(
        server,
        "http_server_request_duration_seconds_count",
        "http_response_status_code=\"429\"",
    )
    .await
}

/// A floods `a_url` with `flood` connections while B sends steady traffic to `b_url`.
async fn flood(
    server: &Server,
    what: String,
    a_url: &str,
    b_url: &str,
    steady: u32,
    flood: u32,
    args: &BenchArgs,
) -> anyhow::Result<Flood> {
    let before = refused(server).await?;
    let flood_seconds = args.duration + 4;
    let flooding = {
        let a_url = a_url.to_string();
        std::thread::spawn(move || wrk::run(&a_url, flood, flood_seconds, &[]))
    };
    std::thread::sleep(Duration::from_secs(2));
    let b = wrk::run(b_url, steady, args.duration, &[])?;
    let a = flooding
        .join()
        .map_err(|_| anyhow::anyhow!("the flood thread panicked"))??;
    let refused = refused(server).await? - before;
    println!(
        "B while A floods with {what}: p99 {:.2} ms, {} failed; A: {:.0} req/s, {} non-2xx, {refused} refused with 429",
        b.p99_ms,
        b.non_2xx + b.socket_errors,
        a.rps,
        a.non_2xx
    );
    // Let the flood's last calls drain before anything else is measured.
    std::thread::sleep(Duration::from_secs(2));
    Ok(Flood {
        what,
        b,
        a,
        refused,
    })
}

/// Tenant A floods beyond its share while tenant B sends steady traffic: A's calls light
/// (`hello`), then CPU-heavy (`fixture-spin`).
pub async fn fairness(bin: &Path, args: &BenchArgs, report: &mut Report) -> anyhow::Result<()> {
    const B: &str = "the-marches";
    const SPIN: &str = "fixture-spin";
    let site = Site::new(bin, "fairness")?;
    // Both tenants' clients are this machine's loopback address: the per-client connection
    // cap is raised as the chart raises it for its ingress, where every connection comes
    // from the proxy, so that the flood's 256 connections do not close B's at accept.
    let config = site.config("fairness", "[server]\nmax_connections_per_client = 4096\n")?;
    let token = site.standard(&config)?;
    let spin = guildhall_test_artifacts::plugin(SPIN);
    site.cli(&config, &["plugins", "publish", path_str(&spin.dir)?])?;
    let server = site.serve(&config)?;
    let client = operator(&token)?;
    install(&client, &server, TENANT, "hello", "0.1.0").await?;
    install(&client, &server, TENANT, SPIN, "0.1.0").await?;
    install(&client, &server, B, "hello", "0.1.0").await?;
    let a_light = server.url(&format!("/s/{TENANT}/{COUNCIL}/hello/"));
    let a_heavy = server.url(&format!("/s/{TENANT}/{COUNCIL}/{SPIN}/"));
    let b_url = server.url(&format!("/s/{B}/shropshire/hello/"));
    // The reference: requests no plugin answers and admission never sees, only the
    // server's HTTP work (the same layers, a handler that formats a line).
    let a_native = server.url(&format!("/_bench/native/{TENANT}/{COUNCIL}"));
    let steady = 8;
    let flood_connections = 256;

    // What one of A's heavy calls costs: one connection, nothing else running.
    let answer = body(&a_heavy, &[]).await?;
    if !answer.starts_with("spun ") {
        bail!("{SPIN} answered {answer:?}");
    }
    wrk::run(&a_heavy, 1, 2, &[])?;
    let heavy_alone = wrk::run(&a_heavy, 1, 5, &[])?;
    println!(
        "{SPIN} alone, one connection: p50 {:.2} ms",
        heavy_alone.p50_ms
    );

    wrk::run(&b_url, steady, 2, &[])?;
    let solo = wrk::run(&b_url, steady, args.duration, &[])?;
    println!(
        "B alone: p99 {:.2} ms, {} failed",
        solo.p99_ms,
        solo.non_2xx + solo.socket_errors
    );
    let floods = [
        flood(
            &server,
            "light calls (`hello`)".into(),
            &a_light,
            &b_url,
            steady,
            flood_connections,
            args,
        )
        .await?,
        flood(
            &server,
            format!(
                "CPU-heavy calls (`{SPIN}`, {:.2} ms each alone)",
                heavy_alone.p50_ms
            ),
            &a_heavy,
            &b_url,
            steady,
            flood_connections,
            args,
        )
        .await?,
        flood(
            &server,
            "requests to the native route (reference: no plugin, no admission, the HTTP work alone)"
                .into(),
            &a_native,
            &b_url,
            steady,
            flood_connections,
            args,
        )
        .await?,
    ];
    report.fairness(steady, flood_connections, &solo, &floods);
    // The targets are for plugin calls; the reference row has none.
    for (flood, kind) in floods.iter().zip(["light", "CPU-heavy"]) {
        let ratio = flood.b.p99_ms / solo.p99_ms;
        report.row(Row::ratio(
            &format!("B's p99 under A's flood ÷ B's p99 alone, {kind} calls"),
            ratio,
            "≤ 2×",
            ratio <= 2.0,
        ));
        let failed = flood.b.non_2xx + flood.b.socket_errors;
        report.row(Row::new(
            &format!("B's failed requests under A's flood, {kind} calls"),
            failed.to_string(),
            "0",
            failed == 0,
        ));
    }
    server.stop()?;
    Ok(())
}
