//! The plugin author's loop, run as an author runs it: `guildhall plugins new`, `build`,
//! `test` and `publish` from a clean folder for each language, then the published plugin
//! answering through the gateway; `guildhall dev` serving a project, reloading after an
//! edit, riding out a broken edit and stopping on Ctrl-C; and scenarios that fail when a
//! plugin's behaviour is broken on purpose.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

/// Where the nested language builds keep their output between runs: outside the target
/// folder the running `cargo test` holds locked.
fn builds_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("author-builds")
}

/// `guildhall …` as an author runs it in `dir`, with builds kept in [`builds_dir`].
pub(crate) fn author(dir: &Path) -> Command {
    let mut cmd = guildhall(dir);
    cmd.env("CARGO_TARGET_DIR", builds_dir())
        // One compiler job: the other test thread may be timing requests meanwhile.
        .env("CARGO_BUILD_JOBS", "1")
        .env("GUILDHALL_RUNTIME__POOLING_INSTANCES", "0")
        // `plugins test` and `dev` run calls under this deadline; these tests check answers,
        // and a busy machine can hold a JavaScript or Python call past the default 2 s.
        .env("GUILDHALL_RUNTIME__DEFAULT_TIMEOUT_MS", "10000")
        // The harness and `dev` keep compiled components here, as an author's machine would.
        .env("XDG_CACHE_HOME", builds_dir().join("cache"));
    cmd
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let output: Output = cmd.output().expect("run guildhall");
    let (stdout, stderr) = text(&output);
    (output.status.success(), stdout, stderr)
}

/// Replaces `from` with `to` in `file`, which must hold it.
pub(crate) fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", file.display());
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}

/// `guildhall plugins publish` in `dir` into `app`'s catalogue, with the server's engine
/// settings and component cache, so the server finds what publishing compiled.
fn publish_into(app: &TestApp, dir: &Path) -> Command {
    let mut cmd = author(dir);
    cmd.env("GUILDHALL_DATABASE__URL", app.db.url.expose())
        .env(
            "GUILDHALL_RUNTIME__CACHE_DIR",
            &app.config.runtime.cache_dir,
        )
        .env(
            "GUILDHALL_RUNTIME__POOLING_INSTANCES",
            app.config.runtime.pooling_instances.to_string(),
        )
        .args(["plugins", "publish"]);
    cmd
}

/// What a language's template is, how to break it, and what it answers when installed.
struct Template {
    lang: &'static str,
    /// The source file and an edit that breaks what the template's scenario checks.
    source: &'static str,
    from: &'static str,
    to: &'static str,
    /// What the broken build's scenario run reports.
    failure: &'static str,
    /// The install's settings, and what its start page then answers for tandridge.
    config: fn() -> serde_json::Value,
    answer: &'static str,
}

const RUST: Template = Template {
    lang: "rust",
    source: "src/lib.rs",
    from: "\"{greeting} from {}!\"",
    to: "\"{greeting} to {}!\"",
    failure: "body.message is \"Hello to dev!\", expected \"Hello from dev!\"",
    config: || json!({"greeting": "Welcome"}),
    answer: "{\"message\":\"Welcome from tandridge!\",\"visits\":1}",
};

const JS: Template = Template {
    lang: "js",
    source: "src/index.js",
    from: "increment('visits', 1)",
    to: "increment('visits', 2)",
    failure: "does not contain \"Visits: 42\"",
    config: || json!({}),
    answer: "Hello from tandridge (north-downs)! Visits: 1",
};

const PYTHON: Template = Template {
    lang: "python",
    source: "app.py",
    from: "increment(\"visits\")",
    to: "increment(\"visits\", 2)",
    failure: "does not contain \"visited 42 times\"",
    config: || json!({}),
    answer: "Hello from tandridge (north-downs)! This page has been visited 1 time.",
};

/// `plugins new` → `plugins test` → a broken edit fails `plugins test` → `plugins publish`
/// of the project folder → install → the gateway answers.
async fn new_test_publish_serve(template: Template) {
    let work = tempfile::tempdir().unwrap();
    let name = format!("parking-{}", template.lang);
    let (ok, stdout, stderr) =
        run(author(work.path()).args(["plugins", "new", &name, "--lang", template.lang]));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("created the "), "{stdout}");
    let project = work.path().join(&name);
    assert!(project.join("plugin.toml").is_file());
    assert!(project.join("tests").is_dir());

    // A second project of the same name, or a name no plugin can have, is refused.
    let (ok, _, stderr) =
        run(author(work.path()).args(["plugins", "new", &name, "--lang", template.lang]));
    assert!(!ok && stderr.contains("exists already"), "{stderr}");
    let (ok, _, stderr) =
        run(author(work.path()).args(["plugins", "new", "Bad_Name", "--lang", template.lang]));
    assert!(!ok && stderr.contains("cannot name a plugin"), "{stderr}");

    // The template's own scenarios pass on the first build.
    let (ok, stdout, stderr) = run(author(&project).args(["plugins", "test"]));
    assert!(ok, "plugins test failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("0 failed"), "{stdout}");
    assert!(project.join("dist/plugin.toml").is_file());

    // Broken on purpose, the scenario fails and says where.
    let source = project.join(template.source);
    let original = std::fs::read_to_string(&source).unwrap();
    edit(&source, template.from, template.to);
    let (ok, stdout, _) = run(author(&project).args(["plugins", "test"]));
    assert!(!ok, "a broken plugin passed its tests:\n{stdout}");
    assert!(stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.contains(template.failure), "{stdout}");
    std::fs::write(&source, original).unwrap();
    let (ok, _, stderr) = run(author(&project).args(["plugins", "build"]));
    assert!(ok, "{stderr}");

    // Publishing the project folder builds it and publishes the build.
    let app = gateway_app().await;
    app.create_example_tenants().await;
    let (ok, stdout, stderr) = run(publish_into(&app, work.path()).arg(&project));
    assert!(ok, "publish failed:\n{stdout}\n{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&format!("{name} 0.1.0 sha256:")) && l.ends_with(" published")),
        "{stdout}"
    );
    let response = app
        .install(
            "north-downs",
            &name,
            "0.1.0",
            json!("all"),
            (template.config)(),
        )
        .await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let (status, body) = app.serve("north-downs", "tandridge", &name, "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(template.answer), "{body}");
}

#[tokio::test]
async fn a_rust_plugin_goes_from_new_to_the_gateway() {
    new_test_publish_serve(RUST).await;
}

#[tokio::test]
async fn a_javascript_plugin_goes_from_new_to_the_gateway() {
    new_test_publish_serve(JS).await;
}

#[tokio::test]
async fn a_python_plugin_goes_from_new_to_the_gateway() {
    new_test_publish_serve(PYTHON).await;
}

/// Copies `plugins/<lang>` (the SDK and the examples, without installed packages or build
/// output) to `into`, so the examples build where their relative imports still hold.
fn copy_examples(lang: &str, into: &Path) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap().flatten() {
            let name = entry.file_name();
            let skip = ["node_modules", ".venv", "dist", ".guildhall", "__pycache__"];
            if skip.iter().any(|s| name == *s) {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                copy(&path, &to.join(&name));
            } else {
                std::fs::copy(&path, to.join(&name)).unwrap();
            }
        }
    }
    let dest = into.join(lang);
    copy(&repo_root().join("plugins").join(lang), &dest);
    dest
}

/// The JavaScript or Python examples, built from source by `plugins publish`: their own
/// scenarios pass, and they answer through the gateway as the Rust examples do, each
/// council's data kept apart and officers' writes checked.
async fn examples_answer_through_the_gateway(lang: &str, suffix: &str) {
    let work = tempfile::tempdir().unwrap();
    let examples = copy_examples(lang, work.path());
    let app = gateway_app().await;
    app.create_example_tenants().await;
    for example in ["hello", "noticeboard"] {
        let project = examples.join(example);
        let (ok, stdout, stderr) = run(author(&project).args(["plugins", "test"]));
        assert!(
            ok,
            "{lang} {example}: plugins test failed:\n{stdout}\n{stderr}"
        );
        let (ok, stdout, stderr) = run(publish_into(&app, &project).arg("."));
        assert!(ok, "{lang} {example}: publish failed:\n{stdout}\n{stderr}");
        let plugin = format!("{example}-{suffix}");
        let councils = json!(["tandridge", "mole-valley"]);
        let response = app
            .install("north-downs", &plugin, "0.1.0", councils, json!({}))
            .await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    }

    let hello = format!("hello-{suffix}");
    let (status, body) = app.serve("north-downs", "tandridge", &hello, "").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "Hello from tandridge (north-downs)!")
    );
    let (status, body) = app
        .serve("north-downs", "mole-valley", &hello, "any/path")
        .await;
    assert_eq!(
        (status, body.as_str()),
        (200, "Hello from mole-valley (north-downs)!")
    );
    // A council the install does not name gets the gateway's 404.
    let (status, _) = app
        .serve("north-downs", "reigate-banstead", &hello, "")
        .await;
    assert_eq!(status, 404);

    let board = format!("noticeboard-{suffix}");
    let url =
        |council: &str, path: &str| app.url(&format!("/s/north-downs/{council}/{board}{path}"));
    let notice = json!({"title": "Road closed", "body": "High Street, Monday to Friday"});
    let anonymous = app
        .anonymous
        .post(url("tandridge", "/notices"))
        .json(&notice);
    assert_eq!(status_of(anonymous).await, 401);
    let auditor = app.client_as("auditor", Some("north-downs"), None).await;
    assert_eq!(
        status_of(auditor.post(url("tandridge", "/notices")).json(&notice)).await,
        403
    );
    // An officer of another council cannot post to this one.
    let other = app
        .client_as("officer", Some("north-downs"), Some("mole-valley"))
        .await;
    assert_eq!(
        status_of(other.post(url("tandridge", "/notices")).json(&notice)).await,
        403
    );
    let officer = app
        .client_as("officer", Some("north-downs"), Some("tandridge"))
        .await;
    let posted = officer
        .post(url("tandridge", "/notices"))
        .json(&notice)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 201);
    assert_eq!(posted.headers()["location"], "/notices/1");
    let bad = officer
        .post(url("tandridge", "/notices"))
        .json(&json!({"title": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert_eq!(bad.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = bad.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("title"),
        "{problem}"
    );
    let list = fetch_json(app.anonymous.get(url("tandridge", "/notices"))).await;
    assert_eq!(list["notices"][0]["title"], "Road closed", "{list}");
    assert_eq!(list["notices"].as_array().unwrap().len(), 1, "{list}");
    // The other council's board is its own.
    let theirs = fetch_json(app.anonymous.get(url("mole-valley", "/notices"))).await;
    assert_eq!(theirs["notices"], json!([]), "{theirs}");
    assert_eq!(
        status_of(officer.delete(url("tandridge", "/notices/1"))).await,
        204
    );
    assert_eq!(
        status_of(app.anonymous.get(url("tandridge", "/notices/1"))).await,
        404
    );
    // The events went to the tenant's audit log.
    let audit = app
        .get_json("/api/v1/tenants/north-downs/audit?limit=100")
        .await;
    let text = audit.to_string();
    assert!(
        text.contains("notice.posted") && text.contains("notice.removed"),
        "{text}"
    );

    // Broken on purpose, letting auditors post, the example's own scenario fails there.
    if lang == "python" {
        let project = examples.join("noticeboard");
        edit(
            &project.join("app.py"),
            "WRITERS = (\"officer\", \"tenant-admin\")",
            "WRITERS = (\"officer\", \"tenant-admin\", \"auditor\")",
        );
        let (ok, stdout, _) = run(author(&project).args(["plugins", "test"]));
        assert!(!ok, "a broken noticeboard passed its scenario:\n{stdout}");
        assert!(
            stdout.contains("FAIL  a subject without a writing role may not post")
                && stdout.contains("status 201"),
            "{stdout}"
        );
    }
}

#[tokio::test]
async fn the_javascript_examples_answer_through_the_gateway() {
    examples_answer_through_the_gateway("js", "js").await;
}

#[tokio::test]
async fn the_python_examples_answer_through_the_gateway() {
    examples_answer_through_the_gateway("python", "py").await;
}

/// A server for the published plugins. Its plugin deadline is the default's five times over,
/// not the tests' one second: these tests check what the plugins answer, and a JavaScript or
/// Python call on a machine busy with the other tests' builds can take longer than a second.
async fn gateway_app() -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, |c| c.runtime.default_timeout_ms = 10_000)
        .await
        .unwrap()
}

/// A `guildhall dev` process and the lines it prints.
struct Dev {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Dev {
    fn start(project: &Path) -> Self {
        let mut child = author(project)
            .args(["dev", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    if tx.send(line.unwrap_or_default()).is_err() {
                        break;
                    }
                }
            });
        }
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`; returns it.
    fn wait_for(&mut self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    let _ = self.child.kill();
                    panic!(
                        "guildhall dev never printed {needle:?}; it printed:\n{}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn get_json(url: &str) -> serde_json::Value {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.json().await.unwrap()
}

#[tokio::test]
async fn guildhall_dev_serves_reloads_after_an_edit_and_stops_on_ctrl_c() {
    let work = tempfile::tempdir().unwrap();
    let (ok, _, stderr) =
        run(author(work.path()).args(["plugins", "new", "dev-loop", "--lang", "rust"]));
    assert!(ok, "{stderr}");
    let project = work.path().join("dev-loop");
    let mut dev = Dev::start(&project);
    let serving = dev.wait_for("serving dev-loop at ", Duration::from_secs(300));
    let url = serving
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    assert!(url.ends_with("/s/dev/dev/dev-loop/"), "{serving}");
    // dev.toml's settings, and the council's kv counting.
    let first = get_json(&url).await;
    assert_eq!(first["message"], "Hello from dev!", "{first}");
    assert_eq!(first["visits"], 1);

    // An edit is rebuilt and served without a version bump, and the data stays.
    edit(
        &project.join("src/lib.rs"),
        "\"{greeting} from {}!\"",
        "\"{greeting} at {}!\"",
    );
    dev.wait_for("reloaded: dev-loop 0.1.0-dev.2", Duration::from_secs(300));
    let second = get_json(&url).await;
    assert_eq!(second["message"], "Hello at dev!", "{second}");
    assert_eq!(second["visits"], 2);

    // A build that fails keeps the last one serving.
    edit(
        &project.join("src/lib.rs"),
        "struct Plugin;",
        "struct Plugin",
    );
    dev.wait_for(
        "build failed, still serving the last build",
        Duration::from_secs(300),
    );
    let third = get_json(&url).await;
    assert_eq!(third["message"], "Hello at dev!", "{third}");

    // Ctrl-C stops it cleanly.
    let status = Command::new("kill")
        .args(["-INT", &dev.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    dev.wait_for("stopping", Duration::from_secs(30));
    let exit = dev.child.wait().unwrap();
    assert!(
        exit.success(),
        "guildhall dev exited with {exit}:\n{}",
        dev.seen.join("\n")
    );
    assert!(
        reqwest::get(&url).await.is_err(),
        "still serving after Ctrl-C"
    );
}

#[test]
fn project_commands_outside_a_project_say_what_to_do() {
    let empty = tempfile::tempdir().unwrap();
    for args in [&["plugins", "build"][..], &["plugins", "test"], &["dev"]] {
        let (ok, _, stderr) = run(author(empty.path()).args(args));
        assert!(!ok, "{args:?}");
        assert!(
            stderr.contains("has no plugin.toml") && stderr.contains("guildhall plugins new"),
            "{args:?}: {stderr}"
        );
    }
    // A project with no build has nothing to publish, and publishing builds nothing.
    let (ok, _, stderr) =
        run(author(empty.path()).args(["plugins", "new", "unbuilt", "--lang", "js"]));
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = run(author(empty.path()).args(["plugins", "publish", "unbuilt"]));
    assert!(!ok && stderr.contains("no build to publish"), "{stderr}");
    assert!(
        !empty.path().join("unbuilt/node_modules").exists(),
        "publishing ran npm"
    );
    // Names no language's package can have.
    let (ok, _, stderr) =
        run(author(empty.path()).args(["plugins", "new", "9lives", "--lang", "rust"]));
    assert!(
        !ok && stderr.contains("start it with a lower-case letter"),
        "{stderr}"
    );
    // A folder with a manifest but no language's project files.
    std::fs::write(empty.path().join("plugin.toml"), "name = \"x\"\n").unwrap();
    let (ok, _, stderr) = run(author(empty.path()).args(["plugins", "build"]));
    assert!(
        !ok && stderr.contains("is not a plugin project"),
        "{stderr}"
    );
}
