//! Start-up with many plugins, memory with many tenants, and compile-once.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::bail;
use futures::StreamExt;

use crate::report::{Report, Row};
use crate::server::{Log, Server, Site, install, metric, metric_where, operator};

/// `count` distinct plugins: `hello`'s code under different names and digests.
fn variants(site: &Site, prefix: &str, count: usize) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let hello = guildhall_test_artifacts::plugin("hello");
    let manifest = hello.manifest();
    let bytes = hello.bytes();
    let component = hello
        .component
        .file_name()
        .expect("component file")
        .to_owned();
    (0..count)
        .map(|i| {
            let name = format!("{prefix}-{i:03}");
            let dir = site.dir.join("plugins").join(&name);
            std::fs::create_dir_all(&dir)?;
            std::fs::write(
                dir.join("plugin.toml"),
                manifest.replace("name = \"hello\"", &format!("name = \"{name}\"")),
            )?;
            std::fs::write(
                dir.join(&component),
                guildhall_test_artifacts::with_custom_section(
                    &bytes,
                    "guildhall-variant",
                    name.as_bytes(),
                ),
            )?;
            Ok((name, dir))
        })
        .collect()
}

/// A `[secrets]` table with a new key, from `guildhall secrets generate-key`.
fn fresh_key(site: &Site, config: &Path) -> anyhow::Result<String> {
    let key = site.cli(config, &["secrets", "generate-key"])?;
    Ok(format!("[secrets]\nkey = \"{}\"\n", key.trim()))
}

async fn ready(server: &Server) -> anyhow::Result<Duration> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(server.url("/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(server.started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    bail!("the server was not ready within a minute")
}

/// Calls every URL once, `concurrency` at a time; fails on any non-2xx.
async fn call_all(urls: Vec<String>, concurrency: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let failures = futures::stream::iter(urls)
        .map(|url| {
            let client = client.clone();
            async move {
                match client.get(&url).send().await {
                    Ok(r) if r.status().is_success() => 0,
                    _ => 1,
                }
            }
        })
        .buffer_unordered(concurrency)
        .fold(0, |n, f| async move { n + f })
        .await;
    if failures > 0 {
        bail!("{failures} calls failed");
    }
    Ok(())
}

pub async fn run(bin: &Path, report: &mut Report) -> anyhow::Result<()> {
    startup(bin, report).await?;
    memory(bin, report).await
}

/// One start of a server with the 100 plugins installed.
#[derive(Debug, Clone, Copy)]
pub struct Startup {
    /// Process start to `/readyz` answering 200.
    pub ready: Duration,
    /// Process start to every one of the 100 plugins having answered.
    pub served: Duration,
    /// Components compiled (`/metrics`).
    pub compiled: f64,
    /// Compiled components loaded from this server's `runtime.cache_dir`.
    pub from_disk: f64,
    /// Compiled components loaded from what another replica shared through the database.
    pub shared: f64,
}

/// Starts a server with `config`, waits for it to be ready, calls every URL once, and reads
/// its compile counts.
async fn measure(
    site: &Site,
    config: &Path,
    urls: &[String],
    label: &str,
) -> anyhow::Result<(Server, Startup)> {
    let server = site.serve(config)?;
    let ready = ready(&server).await?;
    call_all(urls.iter().map(|u| server.url(u)).collect(), 4).await?;
    let served = server.started.elapsed();
    let hits = "guildhall_runtime_cache_hits_total";
    let startup = Startup {
        ready,
        served,
        compiled: metric(&server, "guildhall_runtime_compiles_total").await?,
        from_disk: metric_where(&server, hits, "cache=\"disk\"").await?,
        shared: metric_where(&server, hits, "cache=\"shared\"").await?,
    };
    println!(
        "{label}: ready in {:.0} ms, all 100 answered in {:.0} ms; {} compiled, {} from disk, {} shared",
        ready.as_secs_f64() * 1e3,
        served.as_secs_f64() * 1e3,
        startup.compiled,
        startup.from_disk,
        startup.shared,
    );
    Ok((server, startup))
}

/// Time from process start to ready, and to every one of 100 plugins answering: with the
/// compile cache cold, warm, and for a new pod (a server on the same database with a new,
/// empty `runtime.cache_dir`, which may load what the others compiled from the database).
async fn startup(bin: &Path, report: &mut Report) -> anyhow::Result<()> {
    let site = Site::new(bin, "startup")?;
    let config = site.config("startup", "")?;
    let token = site.standard(&config)?;
    let plugins = variants(&site, "scale", 100)?;
    for (_, dir) in &plugins {
        site.cli(&config, &["plugins", "publish", dir.to_str().unwrap()])?;
    }
    let server = site.serve(&config)?;
    let client = operator(&token)?;
    for (name, _) in &plugins {
        install(&client, &server, "north-downs", name, "0.1.0").await?;
    }
    server.stop()?;
    let urls: Vec<String> = plugins
        .iter()
        .map(|(name, _)| format!("/s/north-downs/tandridge/{name}/"))
        .collect();

    // Publishing and installing shared compiled artefacts under the key next to the
    // database. The three starts run under a fresh key of their own, so the cold start finds
    // nothing it may load and compiles every digest; the new pod then loads what the cold
    // start shared.
    std::fs::remove_dir_all(site.dir.join("cache"))?;
    let keyed = fresh_key(&site, &config)?;
    let config = site.config("startup-keyed", &keyed)?;
    let (server, cold) = measure(&site, &config, &urls, "cold cache").await?;
    // What it compiled is shared in the background: give the last of it time to land, as
    // it would on a replica that keeps running.
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.stop()?;
    let (server, warm) = measure(&site, &config, &urls, "warm cache").await?;
    server.stop()?;
    // A new pod: the same database (and so the key next to it), a cache folder of its own.
    let new_pod = site.config_with(
        "new-pod",
        Log::Warn,
        &site.dir.join("new-pod-cache"),
        &keyed,
    )?;
    let (server, pod) = measure(&site, &new_pod, &urls, "new pod, empty local cache").await?;
    server.stop()?;

    report.startup(&[
        ("cold", cold),
        ("warm", warm),
        ("new pod: same database, empty local cache", pod),
    ]);
    report.row(Row::new(
        "Start to 100 plugins answering, warm cache",
        format!("{:.0} ms", warm.served.as_secs_f64() * 1e3),
        "≤ 1 s",
        warm.served <= Duration::from_secs(1),
    ));
    report.row(Row::new(
        "New pod (empty local cache): start to 100 plugins answering",
        format!("{:.0} ms", pod.served.as_secs_f64() * 1e3),
        "≤ 1 s",
        pod.served <= Duration::from_secs(1),
    ));
    report.row(Row::new(
        "Compilations: cold start / warm start (100 digests)",
        format!("{} / {}", cold.compiled, warm.compiled),
        "100 / 0",
        cold.compiled == 100.0 && warm.compiled == 0.0,
    ));
    Ok(())
}

/// Resident memory with 1,000 tenants × 20 installs, every install called once.
async fn memory(bin: &Path, report: &mut Report) -> anyhow::Result<()> {
    const TENANTS: usize = 1_000;
    const PLUGINS: usize = 20;
    let site = Site::new(bin, "memory")?;
    let config = site.config("memory", "")?;
    let tenants = site.dir.join("tenants");
    std::fs::create_dir_all(&tenants)?;
    for t in 0..TENANTS {
        std::fs::write(
            tenants.join(format!("t{t:04}.toml")),
            format!(
                "id = \"t{t:04}\"\nname = \"Alliance {t}\"\n\n[[councils]]\nid = \"c{t:04}\"\nname = \"Council {t}\"\n"
            ),
        )?;
    }
    site.cli(&config, &["tenants", "apply", tenants.to_str().unwrap()])?;
    let plugins = variants(&site, "mem", PLUGINS)?;
    for (_, dir) in &plugins {
        site.cli(&config, &["plugins", "publish", dir.to_str().unwrap()])?;
    }
    let token = site
        .cli(
            &config,
            &["token", "create", "--name", "bench", "--role", "operator"],
        )?
        .trim()
        .to_string();
    // Publishing compiled them into the cache and shared them; start cold (and under a
    // fresh secrets key, so nothing shared may be loaded), so the server compiles each
    // digest itself, once, however many tenants install it.
    std::fs::remove_dir_all(site.dir.join("cache"))?;
    let config = site.config("memory-keyed", &fresh_key(&site, &config)?)?;
    let server = site.serve(&config)?;
    let idle = server.rss_mib()?;
    let client = operator(&token)?;
    let started = Instant::now();
    let installs: Vec<(String, String)> = (0..TENANTS)
        .flat_map(|t| {
            plugins
                .iter()
                .map(move |(p, _)| (format!("t{t:04}"), p.clone()))
        })
        .collect();
    let failed = futures::stream::iter(installs.iter())
        .map(|(tenant, plugin)| {
            let client = &client;
            let server = &server;
            async move {
                install(client, server, tenant, plugin, "0.1.0")
                    .await
                    .is_err() as usize
            }
        })
        .buffer_unordered(8)
        .fold(0, |n, f| async move { n + f })
        .await;
    if failed > 0 {
        bail!("{failed} installs failed");
    }
    println!(
        "{} installs in {:.1} s",
        installs.len(),
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    call_all(
        installs
            .iter()
            .map(|(t, p)| server.url(&format!("/s/{t}/c{}/{p}/", &t[1..])))
            .collect(),
        8,
    )
    .await?;
    println!(
        "{} calls in {:.1} s",
        installs.len(),
        started.elapsed().as_secs_f64()
    );
    let rss = server.rss_mib()?;
    let compiles = metric(&server, "guildhall_runtime_compiles_total").await?;
    println!(
        "resident memory: {idle:.0} MiB idle, {rss:.0} MiB with every install served; {compiles} compiled"
    );
    report.memory(TENANTS, PLUGINS, idle, rss, compiles);
    report.row(Row::new(
        "Resident memory, 1,000 tenants × 20 installs, all served",
        format!("{rss:.0} MiB"),
        "≤ 300 MiB",
        rss <= 300.0,
    ));
    server.stop()?;
    Ok(())
}
