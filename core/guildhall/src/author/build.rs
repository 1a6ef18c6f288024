//! `guildhall plugins build [DIR]`: the language's build, the publish checks, and the
//! publishable folder `DIR/dist/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::Context;
use guildhall_domain::manifest::Manifest;

use super::{Lang, Wit};
use crate::config::Config;

/// What `build` writes, for the caller to report or serve.
#[derive(Debug)]
pub(crate) struct Built {
    /// The publishable folder: plugin.toml and the component.
    pub(crate) dist: PathBuf,
    /// The manifest.
    pub(crate) manifest: Manifest,
}

/// How to build.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BuildOptions {
    /// Print nothing but errors (the build tools' own output still shows).
    pub(crate) quiet: bool,
}

/// Builds the project in `dir` (the working folder by default) and checks the result as
/// publishing would.
pub(crate) async fn build(
    config: &Config,
    dir: Option<&Path>,
    options: BuildOptions,
) -> anyhow::Result<Built> {
    let dir = super::project_dir(dir)?;
    let lang = Lang::detect(&dir)?;
    let manifest_path = dir.join("plugin.toml");
    let manifest_text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("cannot read {}", manifest_path.display()))?;
    let manifest = Manifest::from_toml(&manifest_text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", manifest_path.display()))?;
    manifest
        .validate(&config.runtime.caps())
        .map_err(|errors| {
            anyhow::anyhow!(
                "{}: {}",
                manifest_path.display(),
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?;
    if manifest.component.contains(['/', '\\']) || manifest.component.starts_with('.') {
        anyhow::bail!(
            "{}: component: must be a file name (the build writes it into dist/)",
            manifest_path.display()
        );
    }
    let started = std::time::Instant::now();
    // The language's tools run for seconds to minutes: off the async runtime's threads, so
    // a server in this process (`guildhall dev`) keeps answering meanwhile.
    let component = {
        let (dir, manifest) = (dir.clone(), manifest.clone());
        tokio::task::spawn_blocking(move || match lang {
            Lang::Rust => build_rust(&dir),
            Lang::Js => build_js(&dir, &manifest),
            Lang::Python => build_python(&dir, &manifest),
        })
        .await
        .context("the build stopped")??
    };
    let bytes = std::fs::read(&component)
        .with_context(|| format!("cannot read the built component {}", component.display()))?;
    let size = bytes.len();
    check(config, &manifest, bytes.clone()).await?;
    let dist = dir.join("dist");
    std::fs::create_dir_all(&dist).with_context(|| format!("cannot create {}", dist.display()))?;
    super::write_if_changed(&dist.join("plugin.toml"), manifest_text.as_bytes())?;
    super::write_if_changed(&dist.join(&manifest.component), &bytes)?;
    if !options.quiet {
        println!(
            "built {} {} ({}, {:.1} MiB) in {:.1} s: {} is ready to publish",
            manifest.name,
            manifest.version,
            lang.name(),
            size as f64 / (1 << 20) as f64,
            started.elapsed().as_secs_f64(),
            dist.display()
        );
    }
    Ok(Built { dist, manifest })
}

/// The publish checks: size, compilation, imports against the declared capabilities,
/// schedules' export, the HTTP handler.
async fn check(config: &Config, manifest: &Manifest, bytes: Vec<u8>) -> anyhow::Result<()> {
    let runtime = guildhall_runtime::Runtime::for_publishing(
        config.runtime.clone(),
        guildhall_runtime::Ports::unavailable(),
    )
    .context("cannot start the plugin compiler")?;
    let checked = runtime
        .check_component(manifest, Arc::new(bytes))
        .await
        .map_err(|e| anyhow::anyhow!("the component would be refused at publish: {e}"))?;
    // Kept in the author's cache of compiled components, so testing, serving and
    // publishing this build do not compile it again.
    runtime.admit(checked);
    Ok(())
}

/// Runs `command`, its output going to ours, and names it when it fails.
fn run(mut command: Command, what: &str) -> anyhow::Result<()> {
    let status = command
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {what}"))?;
    if !status.success() {
        anyhow::bail!("{what} failed ({status})");
    }
    Ok(())
}

/// `cargo build --release --target wasm32-wasip2`; the component is the `cdylib` cargo
/// reports building (wherever `CARGO_TARGET_DIR` puts it).
fn build_rust(dir: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(&cargo)
        .current_dir(dir)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo (install Rust with rustup: https://rustup.rs)")?;
    // Diagnostics come as JSON messages whose rendered text cargo prints to stderr.
    let mut component = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let is_cdylib = message["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"));
        if !is_cdylib {
            continue;
        }
        if let Some(files) = message["filenames"].as_array() {
            component = files
                .iter()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"))
                .map(PathBuf::from);
        }
    }
    if !output.status.success() {
        anyhow::bail!(
            "cargo build failed ({}); if the wasm32-wasip2 target is missing, run \
             `rustup target add wasm32-wasip2`",
            output.status
        );
    }
    component.context(
        "cargo built no cdylib: a plugin's Cargo.toml has `[lib] crate-type = [\"cdylib\"]`",
    )
}

/// The folder of the generated WIT: the platform's packages under `deps/`, and the world
/// the plugin's manifest allows as `world.wit`. `wasi` is the WASI 0.2 release the
/// toolchain's own runtime is built against, which the interfaces are named with.
fn write_wit(dir: &Path, manifest: &Manifest, wasi: &str) -> anyhow::Result<PathBuf> {
    let wit = dir.join(".guildhall").join("wit");
    let rename = |text: &str| text.replace(WASI_VERSION, wasi);
    for path in Wit::iter() {
        let file = Wit::get(&path).expect("an embedded file is listed");
        let target = match path.strip_prefix("deps/") {
            Some(rest) => wit.join("deps").join(rest),
            None => wit.join("deps").join("guildhall").join(path.as_ref()),
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let text = std::str::from_utf8(&file.data).context("the platform's WIT is UTF-8")?;
        super::write_if_changed(&target, rename(text).as_bytes())?;
    }
    super::write_if_changed(&wit.join("world.wit"), rename(&world(manifest)).as_bytes())?;
    Ok(wit)
}

/// The version of `guildhall:platform` the binary speaks, and of the WASI in its WIT.
const PLATFORM: &str = "guildhall:platform";
const PLATFORM_VERSION: &str = "0.1.0";
const WASI_VERSION: &str = "0.2.12";

/// The world a plugin is built against: the platform interfaces its manifest declares and
/// nothing else, so a toolchain that imports its whole world (componentize-js and
/// componentize-py both do) imports only what the platform will link.
pub(crate) fn world(manifest: &Manifest) -> String {
    let mut lines: Vec<String> = guildhall_runtime::platform_imports(manifest)
        .into_iter()
        .filter(|(_, declared)| *declared)
        .map(|(interface, _)| format!("  import {interface}@{};", version_of(interface)))
        .collect();
    lines.push(format!(
        "  export wasi:http/incoming-handler@{WASI_VERSION};"
    ));
    if !manifest.schedules.is_empty() {
        lines.push(format!("  export {PLATFORM}/scheduled@{PLATFORM_VERSION};"));
    }
    format!(
        "// Written by `guildhall plugins build` from plugin.toml: the platform's interfaces\n\
         // this plugin declares, and nothing else.\npackage local:plugin;\n\nworld plugin {{\n{}\n}}\n",
        lines.join("\n")
    )
}

/// The version an interface is imported at: the platform's or WASI's.
fn version_of(interface: &str) -> &'static str {
    if interface.starts_with(PLATFORM) {
        PLATFORM_VERSION
    } else {
        WASI_VERSION
    }
}

/// How a manifest declares each platform interface, for messages.
fn how_to_declare(interface: &str) -> String {
    match interface {
        "secrets" => "declare the secrets it reads under [secrets]".to_string(),
        other => format!("add `{other} = true` under [capabilities]"),
    }
}

/// Refuses source that imports a platform interface the manifest does not declare, with
/// the line to add, before a toolchain fails on it with a message of its own.
fn check_source_imports(source: &str, manifest: &Manifest, file: &Path) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for (interface, declared) in guildhall_runtime::platform_imports(manifest) {
        let Some(name) = interface.strip_prefix(&format!("{PLATFORM}/")) else {
            continue;
        };
        if !declared && source.contains(&format!("{interface}@")) {
            missing.push(format!("{interface} ({})", how_to_declare(name)));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "{} uses what plugin.toml does not declare: {}",
        file.display(),
        missing.join(", ")
    )
}

/// A tool from the project's own packages, installing them first when they are missing.
fn node_tool(dir: &Path, tool: &str) -> anyhow::Result<PathBuf> {
    let bin = dir.join("node_modules").join(".bin").join(tool);
    // The packages are installed again when the lock file changes.
    let lock = Inputs::of(&[&dir.join("package-lock.json"), &dir.join("package.json")]);
    let installed = dir.join("node_modules").join(".guildhall-lock");
    if bin.exists() && lock.unchanged_at(&installed) {
        return Ok(bin);
    }
    let mut npm = Command::new("npm");
    npm.current_dir(dir)
        .args(if dir.join("package-lock.json").is_file() {
            ["ci", "--no-audit", "--no-fund"]
        } else {
            ["install", "--no-audit", "--no-fund"]
        });
    run(
        npm,
        "npm (installing the project's build tools; Node.js 20 or later and npm are needed)",
    )?;
    lock.write_to(&installed)?;
    if !bin.exists() {
        anyhow::bail!(
            "{} is missing after installing the packages: package.json's devDependencies \
             need {tool}",
            bin.display()
        );
    }
    Ok(bin)
}

/// The WASI release componentize-js's JavaScript engine is built against.
const COMPONENTIZE_JS_WASI: &str = "0.2.10";

/// Bundles `src/index.js` (or `.ts`) with esbuild, leaving the platform's modules to the
/// component, and makes the component with componentize-js against the manifest's world.
fn build_js(dir: &Path, manifest: &Manifest) -> anyhow::Result<PathBuf> {
    let entry = ["src/index.js", "src/index.ts", "src/index.mjs"]
        .into_iter()
        .map(|e| dir.join(e))
        .find(|e| e.is_file())
        .with_context(|| format!("{} has no src/index.js", dir.display()))?;
    let esbuild = node_tool(dir, "esbuild")?;
    let componentize = node_tool(dir, "componentize-js")?;
    let wit = write_wit(dir, manifest, COMPONENTIZE_JS_WASI)?;
    let out = dir.join(".guildhall");
    let bundle = out.join("bundle.js");
    let mut bundler = Command::new(esbuild);
    bundler
        .current_dir(dir)
        .arg(&entry)
        .args([
            "--bundle",
            "--format=esm",
            "--platform=neutral",
            "--target=es2022",
            "--external:guildhall:*",
            "--external:wasi:*",
            "--log-level=warning",
        ])
        .arg(format!("--outfile={}", bundle.display()));
    run(bundler, "esbuild")?;
    let source = std::fs::read_to_string(&bundle)?;
    check_source_imports(&source, manifest, &entry)?;
    let component = out.join(&manifest.component);
    let inputs = Inputs::of(&[
        &bundle,
        &wit.join("world.wit"),
        &dir.join("package-lock.json"),
    ]);
    if inputs.unchanged(&component) {
        return Ok(component);
    }
    let mut build = Command::new(componentize);
    build
        .current_dir(dir)
        .arg(&bundle)
        .arg("--wit")
        .arg(&wit)
        .args(["--world-name", "plugin"]);
    if manifest.capabilities.outbound_http.is_empty() {
        // fetch() needs the outgoing handler, which only outbound_http links.
        build.args(["--disable", "http"]);
    }
    build.arg("-o").arg(&component);
    inputs.make(&component, build, "componentize-js")
}

/// What a component was made from: componentize-js and componentize-py make a different
/// component from the same sources each time, so a build whose inputs have not changed
/// keeps the last component (and its compiled form in the cache) instead of making one.
struct Inputs(String);

impl Inputs {
    /// The sha256 of the files (a missing file counts as empty) and of this binary's
    /// version.
    fn of(files: &[&Path]) -> Self {
        use sha2::Digest as _;
        let mut hash = sha2::Sha256::new();
        hash.update(env!("CARGO_PKG_VERSION"));
        for file in files {
            hash.update(file.to_string_lossy().as_bytes());
            hash.update(std::fs::read(file).unwrap_or_default());
        }
        Self(hex::encode(hash.finalize()))
    }

    fn stamp(component: &Path) -> PathBuf {
        component.with_extension("inputs")
    }

    /// Whether `component` exists and was made from these inputs.
    fn unchanged(&self, component: &Path) -> bool {
        component.is_file() && self.unchanged_at(&Self::stamp(component))
    }

    /// Whether the stamp file `stamp` records these inputs.
    fn unchanged_at(&self, stamp: &Path) -> bool {
        std::fs::read_to_string(stamp).is_ok_and(|s| s.trim() == self.0)
    }

    fn write_to(&self, stamp: &Path) -> anyhow::Result<()> {
        std::fs::write(stamp, &self.0).with_context(|| format!("cannot write {}", stamp.display()))
    }

    /// Runs `tool` (named `what`), which makes `component`, and records these inputs as
    /// what it was made from. The old record goes first: a tool that fails halfway leaves
    /// no record for its output.
    fn make(&self, component: &Path, tool: Command, what: &str) -> anyhow::Result<PathBuf> {
        let _ = std::fs::remove_file(Self::stamp(component));
        run(tool, what)?;
        self.write_to(&Self::stamp(component))?;
        Ok(component.to_path_buf())
    }
}

/// componentize-py from the project's `.venv`, made from `requirements.txt` when missing.
fn componentize_py(dir: &Path) -> anyhow::Result<PathBuf> {
    let bin = dir.join(".venv").join("bin").join("componentize-py");
    if bin.exists() {
        return Ok(bin);
    }
    let mut venv = Command::new("python3");
    venv.current_dir(dir).args(["-m", "venv", ".venv"]);
    run(
        venv,
        "python3 -m venv .venv (Python 3.10 or later with venv is needed)",
    )?;
    let mut pip = Command::new(dir.join(".venv").join("bin").join("pip"));
    pip.current_dir(dir)
        .args(["install", "--quiet", "--disable-pip-version-check"]);
    if dir.join("requirements.txt").is_file() {
        pip.args(["--require-hashes", "-r", "requirements.txt"]);
    } else {
        pip.arg(format!("componentize-py=={COMPONENTIZE_PY}"));
    }
    run(pip, "pip (installing componentize-py into .venv)")?;
    if !bin.exists() {
        anyhow::bail!(
            "{} is missing after pip install: requirements.txt needs componentize-py",
            bin.display()
        );
    }
    Ok(bin)
}

/// The componentize-py release the templates pin.
const COMPONENTIZE_PY: &str = "0.25.1";

/// Makes the component from `app.py` with componentize-py against the manifest's world;
/// the SDK compiled into this binary is on the module path after the project, so a project
/// may keep its own copy.
fn build_python(dir: &Path, manifest: &Manifest) -> anyhow::Result<PathBuf> {
    let componentize = componentize_py(dir)?;
    let wit = write_wit(dir, manifest, WASI_VERSION)?;
    let out = dir.join(".guildhall");
    let sdk = out.join("python");
    super::write_embedded::<super::PythonSdk>(&sdk.join("guildhall"), &|t: &str| t.to_string())?;
    let component = out.join(&manifest.component);
    let mut files = python_sources(dir, &sdk);
    files.push(wit.join("world.wit"));
    files.push(dir.join("requirements.txt"));
    let inputs = Inputs::of(&files.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    if inputs.unchanged(&component) {
        return Ok(component);
    }
    let mut build = Command::new(componentize);
    build
        .current_dir(dir)
        .arg("-d")
        .arg(&wit)
        .args(["-w", "plugin", "componentize", "app", "-p"])
        .arg(dir)
        .arg("-p")
        .arg(&sdk)
        .arg("-o")
        .arg(&component);
    inputs.make(&component, build, "componentize-py")
}

/// The project's Python files (outside its tools and build output) and those of the SDK
/// the build puts on the module path, in path order.
fn python_sources(dir: &Path, sdk: &Path) -> Vec<PathBuf> {
    [dir, sdk]
        .into_iter()
        .flat_map(super::source_files)
        .map(|(path, _)| path)
        .filter(|path| path.extension().is_some_and(|e| e == "py"))
        .collect()
}
