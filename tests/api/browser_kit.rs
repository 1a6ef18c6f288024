//! The browser kit the console's and citizens' browser tests share: Node.js 20 or later,
//! Debian's Chromium, and the npm packages of `tests/browser` (installed from its lock file
//! when missing). Missing pieces fail the tests with the command that installs them; they
//! are never skipped.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::repo_root;

/// What to run when a piece of the kit is missing.
pub(crate) const INSTALL: &str = "Install Node.js 20 or later and Chromium (Debian: `apt-get install nodejs npm chromium`), \
     then the kit's packages: `npm ci --prefix tests/browser --no-audit --no-fund`";

/// The npm packages the kit's scripts import.
const PACKAGES: [&str; 3] = ["oidc-provider", "playwright-core", "axe-core"];

/// `tests/browser`.
pub(crate) fn browser_dir() -> PathBuf {
    repo_root().join("tests").join("browser")
}

/// Node.js 20 or later with the kit's packages (installed from the lock file when missing,
/// one install at a time across tests and test processes); fails the test, naming the
/// command that installs what is missing.
pub(crate) fn require_node() {
    let output = Command::new("node")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| {
            panic!("the browser tests need Node.js, which cannot be run ({e}). {INSTALL}")
        });
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        output.status.success() && major >= 20,
        "the browser tests need Node.js 20 or later, not {version:?}. {INSTALL}"
    );
    let installed = |package: &str| {
        browser_dir()
            .join("node_modules")
            .join(package)
            .join("package.json")
            .exists()
    };
    if !PACKAGES.iter().all(|p| installed(p)) {
        // `npm ci` begins by deleting node_modules: one install at a time.
        let lock = std::fs::File::open(browser_dir().join("package-lock.json"))
            .unwrap_or_else(|e| panic!("tests/browser/package-lock.json: {e}"));
        lock.lock().expect("lock tests/browser/package-lock.json");
        if !PACKAGES.iter().all(|p| installed(p)) {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(browser_dir())
                .status()
                .unwrap_or_else(|e| {
                    panic!("cannot run npm to install the browser kit ({e}). {INSTALL}")
                });
            assert!(
                status.success(),
                "npm ci in tests/browser failed. {INSTALL}"
            );
        }
    }
    for package in PACKAGES {
        assert!(installed(package), "{package} is missing. {INSTALL}");
    }
}

/// The Chromium the kit launches (`$CHROMIUM`, or Debian's); fails the test when it does
/// not run. Answers its version.
pub(crate) fn require_chromium() -> String {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let output = Command::new(&chromium)
        .args(["--headless", "--no-sandbox", "--version"])
        .output()
        .unwrap_or_else(|e| {
            panic!("the browser tests need Chromium at {chromium} (or $CHROMIUM), which cannot be run ({e}). {INSTALL}")
        });
    assert!(
        output.status.success(),
        "{chromium} --version failed: {}. {INSTALL}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A journey script (`tests/browser/*.mjs`) running under Node: its progress (stderr) is
/// echoed as it comes, so a journey that hangs shows where; its stdout is its JSON summary.
/// Dropping it kills the script, so a panic in between leaves no browser behind.
pub(crate) struct Script {
    name: String,
    child: std::process::Child,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Script {
    /// Starts `node tests/browser/{name} {base}` with `env`.
    pub(crate) fn start(name: &str, base: &str, env: &[(&str, String)]) -> Self {
        let mut command = Command::new("node");
        command
            .arg(browser_dir().join(name))
            .arg(base)
            .current_dir(browser_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}. {INSTALL}"));
        let mut out = child.stdout.take().expect("stdout");
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut out, &mut text).ok();
            text
        });
        let err = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufRead::lines(std::io::BufReader::new(err)).map_while(Result::ok) {
                // Chromium's own log lines, which playwright passes on when it fails.
                if !line.trim_start().starts_with("[pid=") {
                    println!("    {line}");
                }
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        Self {
            name: name.to_string(),
            child,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// Waits for the script (killing it after `limit`); answers its status, stdout and
    /// stderr. The server keeps answering meanwhile: this waits asynchronously.
    pub(crate) async fn finish(
        mut self,
        limit: Duration,
    ) -> (std::process::ExitStatus, String, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for node") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let status = self.child.wait().expect("wait for node");
                let stderr = Self::collect(&mut self.stderr);
                panic!(
                    "{} did not finish within {limit:?} ({status}):\n{stderr}",
                    self.name
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let stdout = Self::collect(&mut self.stdout);
        let stderr = Self::collect(&mut self.stderr);
        (status, stdout, stderr)
    }

    fn collect(reader: &mut Option<std::thread::JoinHandle<String>>) -> String {
        reader
            .take()
            .and_then(|r| r.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
