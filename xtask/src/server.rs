//! Guildhall servers for measurement: a data folder, the CLI to fill it, `serve` as a
//! process.

use std::io::Read as _;
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
        self.config_with(name, Log::Warn, &self.dir.join("cache"), extra)
    }

    /// Writes `<name>.toml`: the folder's database, `log`, the compile cache in `cache_dir`,
    /// plus `extra`. Compiled components are shared through the database as on PostgreSQL
    /// (`runtime.share_compiled` is `auto`, off on SQLite): the scale section's new pod is a
    /// second server on the same database.
    pub fn config_with(
        &self,
        name: &str,
        log: Log,
        cache_dir: &Path,
        extra: &str,
    ) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(format!("{name}.toml"));
        let log = match log {
            // The address is logged at info by `guildhall::server`; nothing else is.
            Log::Warn => "[log]\nfilter = \"warn,guildhall::server=info\"\n\n",
            Log::Default => "",
        };
        let text = format!(
            "[database]\nurl = \"sqlite://{}?mode=rwc\"\nmax_connections = 16\n\n\
             {log}[runtime]\ncache_dir = \"{}\"\nshare_compiled = \"on\"\n\n{extra}\n",
            self.dir.join("g.db").display(),
            cache_dir.display(),
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

/// How much a server logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Log {
    /// Warnings only (and the listening address): no line per request.
    Warn,
    /// The configuration's default, `info`: one line per request.
    Default,
}

/// A running `guildhall serve`; killed when dropped.
///
/// Its stderr goes to `<folder>/<config name>.log`, opened for appending, as an operator
/// would redirect it (`2>>guildhall.log`, or a container runtime's log file): not to
/// `/dev/null`, which would make every log write free, and not to a pipe the harness
/// reads, which would put the harness's reading in the measurement.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub addr: String,
    pub started: Instant,
    log: PathBuf,
}

impl Server {
    fn start(bin: &Path, dir: &Path, config: &Path) -> anyhow::Result<Self> {
        let name = config.file_stem().context("a config file name")?;
        let log = dir.join(name).with_extension("log");
        // A fresh file, then appended to: the harness may truncate it between runs.
        std::fs::File::create(&log)?;
        let stderr = std::fs::OpenOptions::new().append(true).open(&log)?;
        let started = Instant::now();
        let mut child = Command::new(bin)
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .env_remove("GUILDHALL_LOG__FILTER")
            .arg("--config")
            .arg(config)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("cannot start guildhall serve")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            // The whole line: it may be half written.
            if let Some(line) = text
                .split_inclusive('\n')
                .find(|l| l.contains("address=") && l.ends_with('\n'))
            {
                let at = line.find("address=").expect("found above");
                let addr = line[at + 8..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                return Ok(Self {
                    child,
                    addr,
                    started,
                    log,
                });
            }
            if Instant::now() > deadline || child.try_wait()?.is_some() {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "guildhall serve did not report its address; its log ({}):\n{text}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The lines the server logged since the last call, once its log writer has caught up;
    /// empties the log (as `logrotate`'s `copytruncate` does).
    pub fn take_log_lines(&self) -> anyhow::Result<u64> {
        // The server writes its log from a queue on a thread of its own: wait until the
        // file stops growing.
        let mut len = std::fs::metadata(&self.log)?.len();
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let now = std::fs::metadata(&self.log)?.len();
            if now == len {
                break;
            }
            len = now;
        }
        let mut file = std::fs::File::open(&self.log)?;
        let mut buf = vec![0; 1 << 16];
        let mut lines = 0;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .open(&self.log)?
            .set_len(0)?;
        Ok(lines)
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

/// Installs `plugin` at `version` for every council of `tenant`, with no settings.
pub async fn install(
    client: &reqwest::Client,
    server: &Server,
    tenant: &str,
    plugin: &str,
    version: &str,
) -> anyhow::Result<()> {
    install_with(
        client,
        server,
        tenant,
        plugin,
        version,
        serde_json::json!({}),
    )
    .await
}

/// Installs `plugin` at `version` for every council of `tenant` with the settings `config`.
pub async fn install_with(
    client: &reqwest::Client,
    server: &Server,
    tenant: &str,
    plugin: &str,
    version: &str,
    config: serde_json::Value,
) -> anyhow::Result<()> {
    let response = client
        .put(server.url(&format!("/api/v1/tenants/{tenant}/installs/{plugin}")))
        .json(&serde_json::json!({"version": version, "councils": "all", "config": config}))
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
    metric_where(server, name, "").await
}

/// Reads a counter from `/metrics`, summed over the label sets that contain `label` (e.g.
/// `cache="disk"`; every label set when empty).
pub async fn metric_where(server: &Server, name: &str, label: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(server.url("/metrics")).await?.text().await?;
    Ok(sum_samples(&text, name, label))
}

/// The sum of the samples of `name` in Prometheus text whose labels contain `label`.
fn sum_samples(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name).is_some_and(|rest| {
                rest.starts_with(['{', ' ']) && (label.is_empty() || rest.contains(label))
            })
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_the_samples_of_a_counter_by_label() {
        let text = r#"# HELP guildhall_runtime_cache_hits_total Compiled components found
# TYPE guildhall_runtime_cache_hits_total counter
guildhall_runtime_cache_hits_total{cache="memory"} 3
guildhall_runtime_cache_hits_total{cache="disk"} 100
guildhall_runtime_cache_hits_total{cache="shared"} 7
guildhall_runtime_compiles_total 2
guildhall_runtime_compiles_total_other 5
http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="429",http_route="/s/{tenant}/{council}/{plugin}/"} 41
http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="200",http_route="/s/{tenant}/{council}/{plugin}/"} 9000
"#;
        let hits = "guildhall_runtime_cache_hits_total";
        assert_eq!(sum_samples(text, hits, ""), 110.0);
        assert_eq!(sum_samples(text, hits, "cache=\"disk\""), 100.0);
        assert_eq!(sum_samples(text, hits, "cache=\"shared\""), 7.0);
        assert_eq!(
            sum_samples(text, "guildhall_runtime_compiles_total", ""),
            2.0
        );
        assert_eq!(
            sum_samples(
                text,
                "http_server_request_duration_seconds_count",
                "http_response_status_code=\"429\""
            ),
            41.0
        );
    }

    /// A stand-in for `guildhall serve`: logs its address (and a few lines) to stderr.
    #[test]
    fn finds_the_address_in_the_log_and_counts_its_lines() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("xtask-server-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bin = dir.join("fake-guildhall");
        std::fs::write(
            &bin,
            "#!/bin/sh\n\
             echo 'INFO guildhall::server: listening address=127.0.0.1:4321' >&2\n\
             echo 'INFO request' >&2\necho 'INFO request' >&2\nexec sleep 30\n",
        )
        .unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = dir.join("fake.toml");
        std::fs::write(&config, "").unwrap();
        let server = Server::start(&bin, &dir, &config).unwrap();
        assert_eq!(server.addr, "127.0.0.1:4321");
        assert_eq!(server.log, dir.join("fake.log"));
        assert_eq!(server.take_log_lines().unwrap(), 3);
        assert_eq!(server.take_log_lines().unwrap(), 0);
        drop(server);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
