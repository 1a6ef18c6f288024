//! Guildhall servers for measurement: a data folder, the CLI to fill it, `serve` as a
//! process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::run;

/// A data folder with its configuration file.
#[derive(Debug)]
pub struct Site {
    pub bin: PathBuf,
    pub dir: PathBuf,
}

impl Site {
    /// A fresh folder under `<target>/bench/<name>` with a SQLite database.
    pub fn new(bin: &Path, name: &str) -> anyhow::Result<Self> {
        let dir = crate::target_dir().join("bench").join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            bin: bin.to_path_buf(),
            dir,
        })
    }

    /// Writes `<name>.toml`: the database and cache in the folder, request logging off
    /// (warnings only) for every route alike, plus `extra`.
    pub fn config(&self, name: &str, extra: &str) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(format!("{name}.toml"));
        let text = format!(
            "[database]\nurl = \"sqlite://{}?mode=rwc\"\nmax_connections = 16\n\n\
             [log]\nfilter = \"warn\"\n\n[runtime]\ncache_dir = \"{}\"\n\n{extra}\n",
            self.dir.join("g.db").display(),
            self.dir.join("cache").display(),
        );
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// Runs a `guildhall` command with `config` and returns its stdout.
    pub fn cli(&self, config: &Path, args: &[&str]) -> anyhow::Result<String> {
        run(Command::new(&self.bin)
            .current_dir(&self.dir)
            .env_remove("RUST_LOG")
            .arg("--config")
            .arg(config)
            .args(args))
    }

    /// `guildhall serve` on a free loopback port.
    pub fn serve(&self, config: &Path) -> anyhow::Result<Server> {
        Server::start(&self.bin, &self.dir, config)
    }

    /// Tenants from `tenants/`, the operator token, and `hello` published.
    pub fn standard(&self, config: &Path) -> anyhow::Result<String> {
        let tenants = crate::repo().join("tenants");
        self.cli(config, &["tenants", "apply", tenants.to_str().unwrap()])?;
        let hello = guildhall_test_artifacts::plugin("hello");
        self.cli(config, &["plugins", "publish", hello.dir.to_str().unwrap()])?;
        Ok(self
            .cli(
                config,
                &["token", "create", "--name", "bench", "--role", "operator"],
            )?
            .trim()
            .to_string())
    }
}

/// A running `guildhall serve`; killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub addr: String,
    pub started: Instant,
}

impl Server {
    fn start(bin: &Path, dir: &Path, config: &Path) -> anyhow::Result<Self> {
        let started = Instant::now();
        let mut child = Command::new(bin)
            .current_dir(dir)
            .env_remove("RUST_LOG")
            // The address is logged at info; everything else stays at the file's level.
            .env("GUILDHALL_LOG__FILTER", "warn,guildhall::server=info")
            .arg("--config")
            .arg(config)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start guildhall serve")?;
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find("address=")
                    && let Some(tx) = tx.take()
                {
                    let addr = line[at + 8..]
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                bail!("guildhall serve did not report its address");
            }
        };
        Ok(Self {
            child,
            addr,
            started,
        })
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, in MiB (Linux).
    pub fn rss_mib(&self) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .context("no VmRSS")?;
        Ok(kib / 1024.0)
    }

    /// Stops with SIGTERM and waits, as Kubernetes does.
    pub fn stop(mut self) -> anyhow::Result<()> {
        run(Command::new("kill").args(["-TERM", &self.pid().to_string()]))?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that sends the operator token.
pub fn operator(token: &str) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse()?,
    );
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(64)
        .build()?)
}

/// Installs `plugin` at `version` for every council of `tenant`.
pub async fn install(
    client: &reqwest::Client,
    server: &Server,
    tenant: &str,
    plugin: &str,
    version: &str,
) -> anyhow::Result<()> {
    let response = client
        .put(server.url(&format!("/api/v1/tenants/{tenant}/installs/{plugin}")))
        .json(&serde_json::json!({"version": version, "councils": "all", "config": {}}))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!(
            "installing {plugin} for {tenant}: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// Reads a counter from `/metrics` (summed over its label sets).
pub async fn metric(server: &Server, name: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(server.url("/metrics")).await?.text().await?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}
