//! The plugin author's loop: `guildhall plugins new|build|test` and `guildhall dev`.
//!
//! A plugin project is a folder with `plugin.toml` and a language's project files: Rust
//! (`Cargo.toml`), JavaScript (`package.json`) or Python (`app.py`). `build` runs the
//! language's own toolchain, checks the component against the manifest exactly as
//! publishing does, and writes the publishable folder `dist/` (plugin.toml and the
//! component); `test` runs the project's `tests/*.toml` scenarios in-process through
//! [`guildhall_harness`]; `dev` serves the plugin on a throwaway platform and rebuilds it
//! when its sources change.
//!
//! The templates, the SDKs and the WIT are compiled into the binary, so `plugins new`
//! makes a project that needs nothing but its language's package registry.

mod build;
mod dev;
mod new;
mod test;

use std::path::{Path, PathBuf};

use anyhow::Context;

pub(crate) use build::{BuildOptions, build};
pub(crate) use dev::dev;
pub(crate) use new::new;
pub(crate) use test::test;

/// The languages a plugin can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// Rust, built with cargo for `wasm32-wasip2`.
    Rust,
    /// JavaScript, built with componentize-js through jco.
    Js,
    /// Python, built with componentize-py.
    Python,
}

impl Lang {
    /// The project's language, from its files.
    fn detect(dir: &Path) -> anyhow::Result<Self> {
        if dir.join("Cargo.toml").is_file() {
            Ok(Lang::Rust)
        } else if dir.join("package.json").is_file() {
            Ok(Lang::Js)
        } else if dir.join("app.py").is_file() {
            Ok(Lang::Python)
        } else {
            anyhow::bail!(
                "{} is not a plugin project: it has no Cargo.toml (Rust), package.json \
                 (JavaScript) or app.py (Python)",
                dir.display()
            )
        }
    }

    fn name(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Js => "JavaScript",
            Lang::Python => "Python",
        }
    }
}

/// The folder a project command works on: `dir`, or the working folder.
fn project_dir(dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::current_dir()?,
    };
    if !dir.join("plugin.toml").is_file() {
        anyhow::bail!(
            "{} has no plugin.toml; run this in a plugin project (make one with \
             `guildhall plugins new NAME --lang rust|js|python`)",
            dir.display()
        );
    }
    // The build tools run in the project, so every path handed to them is absolute.
    std::path::absolute(&dir).with_context(|| format!("cannot resolve {}", dir.display()))
}

/// Folders of a project that hold its tools and build output rather than its sources.
const NOT_SOURCES: [&str; 8] = [
    "dist",
    "target",
    "node_modules",
    ".venv",
    ".guildhall",
    ".git",
    "__pycache__",
    ".pytest_cache",
];

/// Every file under `dir` outside [`NOT_SOURCES`], with its metadata, in path order.
fn source_files(dir: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_dir() {
                files.push((entry.path(), meta));
            } else if !NOT_SOURCES.iter().any(|n| entry.file_name() == *n) {
                pending.push(entry.path());
            }
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

/// The folder to publish for `dir`: `dir` itself when it holds the component its
/// plugin.toml names, else a project's `dist/` as `plugins build` wrote it.
pub(crate) fn publishable(dir: &Path) -> anyhow::Result<PathBuf> {
    let holds_component = |d: &Path| {
        std::fs::read_to_string(d.join("plugin.toml"))
            .ok()
            .and_then(|text| guildhall_domain::manifest::Manifest::from_toml(&text).ok())
            .is_some_and(|m| d.join(&m.component).is_file())
    };
    if holds_component(dir) || Lang::detect(dir).is_err() {
        // A folder that is not a project is published as it is (or refused, naming what
        // it lacks).
        return Ok(dir.to_path_buf());
    }
    let dist = dir.join("dist");
    if holds_component(&dist) {
        return Ok(dist);
    }
    anyhow::bail!(
        "{} is a plugin project with no build to publish: run `guildhall plugins build` \
         there first (publishing runs no build tool)",
        dir.display()
    )
}

/// The WIT of the platform (`guildhall:platform` and the WASI packages it uses).
#[derive(rust_embed::RustEmbed)]
#[folder = "../runtime/wit/"]
struct Wit;

/// The Rust SDK (with the WIT), copied into new Rust projects as `sdk/`.
#[derive(rust_embed::RustEmbed)]
#[folder = "../../plugins/sdk/"]
#[exclude = "target/*"]
struct RustSdk;

/// The JavaScript SDK, copied into new JavaScript projects as `guildhall/`.
#[derive(rust_embed::RustEmbed)]
#[folder = "../../plugins/js/sdk/"]
#[exclude = "node_modules/*"]
struct JsSdk;

/// The Python SDK (the `guildhall` package).
#[derive(rust_embed::RustEmbed)]
#[folder = "../../plugins/python/sdk/guildhall/"]
#[exclude = "*__pycache__*"]
pub(crate) struct PythonSdk;

/// The new-project templates.
#[derive(rust_embed::RustEmbed)]
#[folder = "../../plugins/rust-template/"]
#[exclude = "target/*"]
struct RustTemplate;

#[derive(rust_embed::RustEmbed)]
#[folder = "../../plugins/js/template/"]
#[exclude = "node_modules/*"]
#[exclude = "dist/*"]
struct JsTemplate;

#[derive(rust_embed::RustEmbed)]
#[folder = "../../plugins/python/template/"]
#[exclude = "*__pycache__*"]
#[exclude = ".venv/*"]
#[exclude = "dist/*"]
struct PythonTemplate;

/// Writes every file of an embedded folder under `dest`, passing text through `edit`.
fn write_embedded<E: rust_embed::RustEmbed>(
    dest: &Path,
    edit: &dyn Fn(&str) -> String,
) -> anyhow::Result<()> {
    for path in E::iter() {
        let file = E::get(&path).expect("an embedded file is listed");
        let target = dest.join(path.as_ref());
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let bytes = match std::str::from_utf8(&file.data) {
            Ok(text) => edit(text).into_bytes(),
            Err(_) => file.data.into_owned(),
        };
        write_if_changed(&target, &bytes)?;
    }
    Ok(())
}

/// Writes `bytes` to `path` unless it holds them already, so file watchers and build
/// tools see no change where there is none.
fn write_if_changed(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    std::fs::write(path, bytes).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}
