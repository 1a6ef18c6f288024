//! The browser kit the console's and citizens' browser tests share: Node.js 20 or later,
//! Debian's Chromium, and the npm packages of `tests/browser` (installed from its lock file
//! when missing). Missing pieces fail the tests with the command that installs them; they
//! are never skipped.

use std::path::PathBuf;
use std::process::Command;

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
