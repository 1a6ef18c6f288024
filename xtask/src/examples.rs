//! Every example plugin through the gateway: the Rust examples as `plugins/` builds them,
//! and the JavaScript and Python examples built from source by `guildhall plugins build`
//! with the tools their projects pin (npm and a Python virtual environment, as CI's
//! `tests/api/author.rs` builds them).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::BenchArgs;
use crate::http::{COUNCIL, EXPECTED, TENANT, Target, measure, path_str};
use crate::report::Report;
use crate::server::{Site, install_with, operator};

/// An example: its plugin name, the settings it is installed with, the path measured (a
/// cheap GET: its start page, or what a visitor reads first) and what that path is.
struct Example {
    plugin: &'static str,
    config: serde_json::Value,
    path: &'static str,
    what: &'static str,
}

fn examples() -> Vec<Example> {
    vec![
        Example {
            plugin: "hello",
            config: json!({}),
            path: "",
            what: "the reference",
        },
        Example {
            plugin: "bin-collections",
            config: json!({"council_name": "Tandridge District Council"}),
            path: "",
            what: "start page",
        },
        Example {
            plugin: "report-a-problem",
            config: json!({"services": [{"service_code": "pothole", "service_name": "Pothole",
                "description": "A hole in the road", "metadata": false, "type": "realtime",
                "keywords": "road", "group": "highways"}]}),
            path: "",
            what: "start page",
        },
        Example {
            plugin: "garden-waste",
            config: json!({
                "eligible_postcodes": ["RH8"],
                "price_per_bin_pence": 4500,
                "confirmation_template_id": "1b0a0c3e-8f5e-4c55-9b0e-1c2d3e4f5a6b",
                "reminder_template_id": "2c1b1d4f-9a6f-4d66-8c1f-2d3e4f5a6b7c",
            }),
            path: "",
            what: "start page",
        },
        Example {
            plugin: "hello-js",
            config: json!({}),
            path: "",
            what: "hello, JavaScript",
        },
        Example {
            plugin: "noticeboard-js",
            config: json!({}),
            path: "notices",
            what: "notices (none), JavaScript",
        },
        Example {
            plugin: "hello-py",
            config: json!({}),
            path: "",
            what: "hello, Python",
        },
        Example {
            plugin: "noticeboard-py",
            config: json!({}),
            path: "notices",
            what: "notices (none), Python",
        },
    ]
}

/// Copies `from` into `to` without installed packages or build output, leaving those in
/// `to` (so npm and pip install once per machine, not once per run).
fn copy_sources(from: &Path, to: &Path) -> anyhow::Result<()> {
    const SKIP: [&str; 5] = ["node_modules", ".venv", "dist", ".guildhall", "__pycache__"];
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if SKIP.iter().any(|s| name == *s) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_sources(&path, &to.join(&name))?;
        } else {
            std::fs::copy(&path, to.join(&name))?;
        }
    }
    Ok(())
}

/// Builds the JavaScript and Python examples with `guildhall plugins build` in
/// `<target>/bench/example-builds/<lang>/` (a copy of `plugins/<lang>`, where the
/// examples' relative imports of their SDK hold) and returns their project folders.
fn build_other_languages(bin: &Path) -> anyhow::Result<Vec<PathBuf>> {
    crate::which("node", "Node.js 20 or later builds the JavaScript examples")?;
    crate::which("npm", "npm installs the JavaScript examples' build tools")?;
    crate::which(
        "python3",
        "Python 3.10 or later with venv builds the Python examples",
    )?;
    let builds = crate::target_dir().join("bench").join("example-builds");
    let mut projects = Vec::new();
    for lang in ["js", "python"] {
        let dir = builds.join(lang);
        copy_sources(&crate::repo().join("plugins").join(lang), &dir)?;
        for example in ["hello", "noticeboard"] {
            let project = dir.join(example);
            println!("guildhall plugins build {}", project.display());
            crate::run(
                Command::new(bin)
                    .current_dir(&project)
                    .env_remove("RUST_LOG")
                    // The author's compile cache, kept with the builds.
                    .env("XDG_CACHE_HOME", builds.join("cache"))
                    .args(["plugins", "build"]),
            )?;
            projects.push(project);
        }
    }
    Ok(projects)
}

/// Each example through the gateway at `args.connections`, in rounds like the throughput
/// comparison (metering on, logging at `warn`), `hello` among them for reference.
pub async fn run(bin: &Path, args: &BenchArgs, report: &mut Report) -> anyhow::Result<()> {
    let projects = build_other_languages(bin)?;
    let site = Site::new(bin, "examples")?;
    let config = site.config("examples", "")?;
    let token = site.standard(&config)?;
    for name in ["bin-collections", "report-a-problem", "garden-waste"] {
        let built = guildhall_test_artifacts::plugin(name);
        site.cli(&config, &["plugins", "publish", path_str(&built.dir)?])?;
    }
    for project in &projects {
        // Publishes the project's dist/, as `plugins build` wrote it.
        site.cli(&config, &["plugins", "publish", path_str(project)?])?;
    }
    let server = site.serve(&config)?;
    let client = operator(&token)?;
    let examples = examples();
    for example in &examples {
        install_with(
            &client,
            &server,
            TENANT,
            example.plugin,
            "0.1.0",
            example.config.clone(),
        )
        .await?;
    }
    let mut targets: Vec<Target> = examples
        .iter()
        .map(|e| {
            Target::guildhall(
                e.plugin,
                format!("`{}` GET /{}: {}", e.plugin, e.path, e.what),
                &server,
                &format!("/s/{TENANT}/{COUNCIL}/{}/{}", e.plugin, e.path),
            )
        })
        .collect();
    for target in targets.iter().filter(|t| t.name.starts_with("hello")) {
        let got = crate::http::body(&target.url, &[]).await?;
        if got != EXPECTED {
            anyhow::bail!("{} answered {got:?}, not {EXPECTED:?}", target.name);
        }
    }
    measure(&mut targets, None, args).await?;
    // Failures are findings here (a slow example past its deadline, say): the table shows
    // them rather than stopping the run.
    report.examples(args, targets.iter().map(Target::measured).collect());
    drop(targets);
    server.stop()?;
    Ok(())
}
