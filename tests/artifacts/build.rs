//! Builds every plugin in `plugins/` (its own workspace) for `wasm32-wasip2` in release
//! mode, the way wasmtime builds its test programs, and lays each one out as a publishable
//! folder: `plugin.toml` next to the component it names.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The guest target: `rust-toolchain.toml` names it, but rustup adds a toolchain's targets
/// only when it installs the toolchain, so a machine that already had 1.95.0 may lack it.
const TARGET: &str = "wasm32-wasip2";

/// Adds [`TARGET`] through rustup when the toolchain building this lacks it (rustup's
/// proxy sets `RUSTUP_TOOLCHAIN`, so `rustup` acts on the same toolchain), and says what to
/// do when there is no rustup to ask.
fn ensure_wasm_target() {
    let installed = match Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
    {
        Ok(output) if output.status.success() => String::from_utf8_lossy(&output.stdout)
            .lines()
            .any(|line| line.trim() == TARGET),
        _ => panic!(
            "the plugins are built for {TARGET}, and rustup, which would add that target, \
             cannot be run. Install Rust with rustup (https://rustup.rs), or add the \
             {TARGET} standard library to this toolchain another way"
        ),
    };
    if installed {
        return;
    }
    println!("cargo:warning=adding the {TARGET} target with rustup (once)");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .expect("run rustup target add");
    assert!(
        status.success(),
        "`rustup target add {TARGET}` failed; run it by hand and build again"
    );
}

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let plugins = root.join("plugins");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    // OUT_DIR is <target>/<profile>/build/<pkg>-<hash>/out; keep the plugins' own target
    // folder beside the profiles so it survives rebuilds of this crate.
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .map(|t| t.join("wasm-plugins"))
        .unwrap_or_else(|| out_dir.join("wasm-plugins"));

    // Every crate of the plugins' workspace (each Rust folder but the build output), so a
    // new example is rebuilt when it changes without being listed here. The JavaScript and
    // Python plugins, with their installed packages, are not this build's.
    let mut watched: Vec<PathBuf> = std::fs::read_dir(&plugins)
        .expect("the plugins folder")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| !not_built_here(path))
        .collect();
    watched.sort();
    for path in watched {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        root.join("core/runtime/wit").display()
    );

    ensure_wasm_target();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&plugins)
        .args([
            "build",
            "--release",
            "--workspace",
            "--target",
            "wasm32-wasip2",
            "--locked",
        ])
        .env("CARGO_TARGET_DIR", &target_dir)
        // Flags meant for the host build must not leak into the guest build.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_MAKEFLAGS")
        // The guest build has its own target folder; a shared build folder would be locked
        // by the build that runs this script.
        .env_remove("CARGO_BUILD_BUILD_DIR");
    let status = cmd.status().expect("run cargo to build plugins/");
    if !status.success() {
        panic!("building plugins/ for wasm32-wasip2 failed; the compiler's messages are above");
    }

    let wasm_dir = target_dir.join("wasm32-wasip2/release");
    let layout = out_dir.join("plugins");
    let mut entries = Vec::new();
    for dir in plugin_dirs(&plugins) {
        let text = std::fs::read_to_string(dir.join("plugin.toml")).unwrap();
        let component = manifest_value(&text, "component")
            .unwrap_or_else(|| panic!("{}: no component key", dir.display()));
        let name = manifest_value(&text, "name")
            .unwrap_or_else(|| panic!("{}: no name key", dir.display()));
        let built = wasm_dir.join(&component);
        assert!(
            built.exists(),
            "{} was not built (plugin {name})",
            built.display()
        );
        let dest = layout.join(&name);
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::copy(dir.join("plugin.toml"), dest.join("plugin.toml")).unwrap();
        std::fs::copy(&built, dest.join(&component)).unwrap();
        entries.push((name, dest, component));
    }
    entries.sort();
    let mut code = String::from(
        "/// Every plugin built from `plugins/`: (name, folder, component file name).\npub const PLUGINS: &[(&str, &str, &str)] = &[\n",
    );
    for (name, dest, component) in &entries {
        code.push_str(&format!(
            "    ({name:?}, {:?}, {component:?}),\n",
            dest.display().to_string()
        ));
    }
    code.push_str("];\n");
    std::fs::write(out_dir.join("artifacts.rs"), code).unwrap();
}

/// A top-level string value of a manifest, e.g. `component = "hello.wasm"`. The build
/// script has no TOML parser, and these keys are always simple strings.
fn manifest_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Folders under `plugins/` (one level, and under `plugins/fixtures/`) with a `plugin.toml`.
/// Folders of `plugins/` this build does not build: the build output, the JavaScript and
/// Python plugins (with their installed packages), and the new-project template, whose
/// names are placeholders.
fn not_built_here(path: &Path) -> bool {
    const OTHERS: [&str; 4] = ["target", "js", "python", "rust-template"];
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| OTHERS.contains(&name))
}

fn plugin_dirs(plugins: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for base in [plugins.to_path_buf(), plugins.join("fixtures")] {
        let Ok(entries) = std::fs::read_dir(&base) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.join("plugin.toml").exists() && !not_built_here(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}
