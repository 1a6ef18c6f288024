//! Start-up with many plugins, memory with many tenants, and compile-once.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::bail;
use futures::StreamExt;

use crate::report::{Report, Row};
use crate::server::{Server, Site, install, metric, operator};

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

/// Time from process start to ready, and to every one of 100 plugins answering, with the
/// precompiled cache cold and warm.
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

    let measure = |label: &'static str| {
        let site = &site;
        let config = &config;
        let urls = &urls;
        async move {
            let server = site.serve(config)?;
            let ready = ready(&server).await?;
            call_all(urls.iter().map(|u| server.url(u)).collect(), 4).await?;
            let served = server.started.elapsed();
            let compiles = metric(&server, "guildhall_runtime_compiles_total").await?;
            let from_disk = metric(&server, "guildhall_runtime_cache_hits_total").await?;
            println!(
                "{label}: ready in {:.0} ms, all 100 answered in {:.0} ms, {compiles} compiled",
                ready.as_secs_f64() * 1e3,
                served.as_secs_f64() * 1e3
            );
            server.stop()?;
            anyhow::Ok((ready, served, compiles, from_disk))
        }
    };
    std::fs::remove_dir_all(site.dir.join("cache"))?;
    let cold = measure("cold cache").await?;
    let warm = measure("warm cache").await?;
    report.startup(cold, warm);
    report.row(Row::new(
        "Start to 100 plugins answering, warm cache",
        format!("{:.0} ms", warm.1.as_secs_f64() * 1e3),
        "≤ 1 s",
        warm.1 <= Duration::from_secs(1),
    ));
    report.row(Row::new(
        "Compilations: cold start / warm start (100 digests)",
        format!("{} / {}", cold.2, warm.2),
        "100 / 0",
        cold.2 == 100.0 && warm.2 == 0.0,
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
    // Publishing compiled them into the cache; start cold, so the server compiles each
    // digest itself, once, however many tenants install it.
    std::fs::remove_dir_all(site.dir.join("cache"))?;
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
