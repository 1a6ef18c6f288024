//! The command line as a user runs it: a real process in a fresh folder.

use crate::helpers::{Backend, TestDb, guildhall, repo_root, text};

fn apply_twice_prints_unchanged(db: &TestDb, dir: &std::path::Path) {
    let tenants = repo_root().join("tenants");
    let first = guildhall(dir)
        .env("GUILDHALL_DATABASE__URL", db.url.expose())
        .env("GUILDHALL_DATABASE__ADMIN_URL", db.admin_url.expose())
        .args(["tenants", "apply"])
        .arg(&tenants)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&first);
    assert!(first.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "broads-digital: created",
            "north-downs: created",
            "the-marches: created"
        ],
        "{stderr}"
    );
    let second = guildhall(dir)
        .env("GUILDHALL_DATABASE__URL", db.url.expose())
        .env("GUILDHALL_DATABASE__ADMIN_URL", db.admin_url.expose())
        .args(["tenants", "apply"])
        .arg(&tenants)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&second);
    assert!(second.status.success(), "{stderr}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "broads-digital: unchanged",
            "north-downs: unchanged",
            "the-marches: unchanged"
        ]
    );

    // Editing one file updates that tenant only.
    let edited = dir.join("edited");
    std::fs::create_dir_all(&edited).unwrap();
    let text_nd = std::fs::read_to_string(tenants.join("north-downs.toml")).unwrap();
    std::fs::write(
        edited.join("north-downs.toml"),
        text_nd.replace(
            "Epsom and Ewell Borough Council",
            "Epsom & Ewell Borough Council",
        ),
    )
    .unwrap();
    std::fs::copy(
        tenants.join("the-marches.toml"),
        edited.join("the-marches.toml"),
    )
    .unwrap();
    let third = guildhall(dir)
        .env("GUILDHALL_DATABASE__URL", db.url.expose())
        .env("GUILDHALL_DATABASE__ADMIN_URL", db.admin_url.expose())
        .args(["tenants", "apply"])
        .arg(&edited)
        .output()
        .unwrap();
    assert_eq!(
        text(&third).0.lines().collect::<Vec<_>>(),
        ["north-downs: updated", "the-marches: unchanged"]
    );

    let list = guildhall(dir)
        .env("GUILDHALL_DATABASE__URL", db.url.expose())
        .env("GUILDHALL_DATABASE__ADMIN_URL", db.admin_url.expose())
        .args(["tenants", "list"])
        .output()
        .unwrap();
    let (stdout, _) = text(&list);
    assert!(list.status.success());
    assert!(
        stdout.contains("north-downs") && stdout.contains("Epsom & Ewell"),
        "{stdout}"
    );
}

#[tokio::test]
async fn tenants_apply_is_idempotent_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    apply_twice_prints_unchanged(&db, dir.path());
}

#[tokio::test]
async fn tenants_apply_is_idempotent_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    if let Some(db) = TestDb::new(Backend::Postgres).await {
        apply_twice_prints_unchanged(&db, dir.path());
    }
}

#[test]
fn an_invalid_file_names_file_and_field_and_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants");
    std::fs::create_dir(&tenants).unwrap();
    std::fs::copy(
        repo_root().join("tenants/north-downs.toml"),
        tenants.join("a-good.toml"),
    )
    .unwrap();
    std::fs::write(
        tenants.join("b-bad.toml"),
        "id = \"south-downs\"\nname = \"South Downs\"\n\n[[councils]]\nid = \"lewes\"\nname = \"Lewes\"\n\n[[councils]]\nid = \"lewes\"\nname = \"Lewes again\"\n",
    )
    .unwrap();
    let out = guildhall(dir.path())
        .args(["tenants", "apply", "tenants"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("b-bad.toml"), "{stderr}");
    assert!(stderr.contains("councils[1].id"), "{stderr}");
    assert!(
        stderr.contains("duplicate council id \"lewes\""),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    // Nothing was written: not even the database file.
    assert!(!dir.path().join("data/guildhall.db").exists());

    std::fs::write(
        tenants.join("b-bad.toml"),
        "id = \"south-downs\"\nname = \"S\"\ncolour = \"green\"\n",
    )
    .unwrap();
    let out = guildhall(dir.path())
        .args(["tenants", "apply", "tenants"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("b-bad.toml") && stderr.contains("colour"),
        "{stderr}"
    );
}

#[test]
fn unknown_configuration_keys_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = guildhall(dir.path())
        .env("GUILDHALL_NOPE", "1")
        .arg("serve")
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("GUILDHALL_NOPE") && stderr.contains("`nope`"),
        "{stderr}"
    );

    std::fs::write(
        dir.path().join("guildhall.toml"),
        "[http]\nshutdown_grace = 3\n",
    )
    .unwrap();
    let out = guildhall(dir.path()).arg("serve").output().unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("http.shutdown_grace") && stderr.contains("guildhall.toml"),
        "{stderr}"
    );

    let out = guildhall(dir.path())
        .args(["serve", "--config", "missing.toml"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("missing.toml does not exist"), "{stderr}");
}

#[test]
fn help_explains_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = guildhall(dir.path()).arg("--help").output().unwrap();
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    for command in ["serve", "migrate", "tenants"] {
        assert!(stdout.contains(command), "{stdout}");
    }
    let out = guildhall(dir.path()).arg("migrate").output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("database schema is current"), "{stdout}");
    assert!(
        dir.path().join("data/guildhall.db").exists(),
        "the default SQLite file"
    );
}

#[test]
fn plugins_publish_from_a_folder_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let hello = guildhall_test_artifacts::plugin("hello");
    let run = || {
        guildhall(dir.path())
            .env("GUILDHALL_RUNTIME__POOLING_INSTANCES", "0")
            .args(["plugins", "publish"])
            .arg(&hello.dir)
            .output()
            .unwrap()
    };
    let first = run();
    let (stdout, stderr) = text(&first);
    assert!(first.status.success(), "{stderr}");
    assert!(
        stdout.starts_with("hello 0.1.0 sha256:") && stdout.trim_end().ends_with(" published"),
        "{stdout}"
    );
    let second = run();
    let (stdout, _) = text(&second);
    assert!(stdout.trim_end().ends_with(" unchanged"), "{stdout}");

    // A folder whose component imports more than its manifest declares.
    let bad = guildhall_test_artifacts::plugin("fixture-undeclared-kv");
    let out = guildhall(dir.path())
        .env("GUILDHALL_RUNTIME__POOLING_INSTANCES", "0")
        .args(["plugins", "publish"])
        .arg(&bad.dir)
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    let reason = stderr.trim().lines().last().unwrap_or_default();
    assert!(
        reason.starts_with("error: ") && reason.contains("guildhall:platform/kv"),
        "{stderr}"
    );
}

/// Every leaf key of the effective configuration, dotted (`runtime.outbound.timeout_ms`).
fn leaf_keys(prefix: &str, value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::Table(table) if !table.is_empty() || prefix.is_empty() => {
            for (key, value) in table {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaf_keys(&path, value, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

#[test]
fn config_check_and_show_and_the_operations_guide_covers_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = guildhall(dir.path())
        .args(["config", "check"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), "configuration is valid");

    std::fs::write(
        dir.path().join("bad.toml"),
        "[runtime]\ndefault_memory_mib = 512\n",
    )
    .unwrap();
    let out = guildhall(dir.path())
        .args(["--config", "bad.toml", "config", "check"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("runtime.default_memory_mib"), "{stderr}");

    let out = guildhall(dir.path())
        .env(
            "GUILDHALL_DATABASE__URL",
            "postgres://app:hunter2@db/guildhall",
        )
        .env(
            "GUILDHALL_SECRETS__KEY",
            "c2VjcmV0cy1rZXktaHVudGVyMi0xMjM0NTY3ODkwYWI=",
        )
        .args(["config", "show"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert!(
        !stdout.contains("c2VjcmV0cy1rZXktaHVudGVyMi0xMjM0NTY3ODkwYWI="),
        "{stdout}"
    );
    assert!(stdout.contains("(hidden)"), "{stdout}");
    let shown: toml::Value = toml::from_str(&stdout).unwrap();
    let mut keys = Vec::new();
    leaf_keys("", &shown, &mut keys);
    assert!(
        keys.contains(&"runtime.outbound.allow_cidrs".to_string()),
        "{keys:?}"
    );
    let guide = std::fs::read_to_string(repo_root().join("docs/operations.md")).unwrap();
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !guide.contains(&format!("`{k}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/operations.md does not document {missing:?}"
    );
}

/// Copies a built plugin's folder (plugin.toml and component) into `to`.
fn copy_plugin(artifact: &guildhall_test_artifacts::Artifact, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::write(to.join("plugin.toml"), artifact.manifest()).unwrap();
    let component = artifact.component.file_name().unwrap();
    std::fs::copy(&artifact.component, to.join(component)).unwrap();
}

#[test]
fn keys_generate_sign_register_and_publish_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = guildhall(dir.path())
            .env("GUILDHALL_RUNTIME__POOLING_INSTANCES", "0")
            .args(args)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        (out.status.success(), stdout, stderr)
    };
    let key = dir.path().join("alice.key");
    let key_arg = key.to_str().unwrap();
    let (ok, stdout, stderr) = run(&["keys", "generate", "--out", key_arg]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("SHA256:"), "{stdout}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the private key is readable by others");
    }
    let (ok, _, _) = run(&["keys", "generate", "--out", key_arg]);
    assert!(!ok, "an existing key was overwritten");
    let public = format!("@{}.pub", key.display());
    let (ok, stdout, stderr) = run(&[
        "keys",
        "register",
        "--subject",
        "token:alice",
        "--name",
        "laptop",
        "--public-key",
        &public,
    ]);
    assert!(ok && stdout.contains("registered"), "{stdout}{stderr}");

    // Sign a copy of hello and publish it as a new name owned by token:alice.
    let hello = guildhall_test_artifacts::plugin("hello");
    let plugin = dir.path().join("hello");
    copy_plugin(&hello, &plugin);
    let plugin_arg = plugin.to_str().unwrap();
    let (ok, stdout, stderr) = run(&["plugins", "sign", plugin_arg, "--key", key_arg]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.starts_with("hello 0.1.0 signed with SHA256:"),
        "{stdout}"
    );
    let (ok, stdout, stderr) = run(&["plugins", "publish", plugin_arg, "--owner", "token:alice"]);
    assert!(ok, "{stderr}");
    assert!(stdout.trim_end().ends_with(" published"), "{stdout}");
    let (ok, stdout, _) = run(&["plugins", "owners", "list", "hello"]);
    assert!(ok);
    assert_eq!(stdout.trim(), "token:alice");

    // A new version whose manifest changed after signing: the old signature is refused.
    let manifest = std::fs::read_to_string(plugin.join("plugin.toml")).unwrap();
    std::fs::write(
        plugin.join("plugin.toml"),
        manifest.replace("version = \"0.1.0\"", "version = \"0.2.0\""),
    )
    .unwrap();
    let (ok, _, stderr) = run(&["plugins", "publish", plugin_arg]);
    assert!(!ok);
    assert!(stderr.contains("bad signature"), "{stderr}");
    // Bob's key, registered to bob, does not sign alice's plugin.
    let bob = dir.path().join("bob.key");
    let bob_arg = bob.to_str().unwrap();
    assert!(run(&["keys", "generate", "--out", bob_arg]).0);
    let bob_public = format!("@{}.pub", bob.display());
    assert!(
        run(&[
            "keys",
            "register",
            "--subject",
            "token:bob",
            "--name",
            "k",
            "--public-key",
            &bob_public
        ])
        .0
    );
    assert!(run(&["plugins", "sign", plugin_arg, "--key", bob_arg]).0);
    let (ok, _, stderr) = run(&["plugins", "publish", plugin_arg]);
    assert!(!ok);
    assert!(stderr.contains("bad signature"), "{stderr}");
    // Signed again by alice, 0.2.0 publishes.
    assert!(run(&["plugins", "sign", plugin_arg, "--key", key_arg]).0);
    let (ok, stdout, stderr) = run(&["plugins", "publish", plugin_arg]);
    assert!(ok, "{stderr}");
    assert!(stdout.starts_with("hello 0.2.0 "), "{stdout}");
    let (ok, stdout, _) = run(&["keys", "list", "--subject", "token:alice"]);
    assert!(ok && stdout.starts_with("laptop SHA256:"), "{stdout}");
}

/// Six `tenants apply` of one folder at once on a fresh database: every process succeeds
/// (they migrate and grant one at a time), each tenant is reported created by exactly one
/// of them and unchanged by the rest, and the tenants end as the files declare.
fn concurrent_applies_each_create_once(db: &TestDb, dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let mut command = guildhall(dir);
        command
            .env("GUILDHALL_DATABASE__URL", db.url.expose())
            .env("GUILDHALL_DATABASE__ADMIN_URL", db.admin_url.expose())
            .args(args);
        command
    };
    let tenants = repo_root().join("tenants");
    let tenants = tenants.to_str().unwrap();
    let children: Vec<_> = (0..6)
        .map(|_| {
            run(&["tenants", "apply", tenants])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut created = std::collections::BTreeMap::<String, usize>::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        let (stdout, stderr) = text(&output);
        assert!(
            output.status.success(),
            "a concurrent apply failed: {stderr}"
        );
        for line in stdout.lines() {
            let (tenant, what) = line.split_once(": ").expect("tenant: outcome");
            assert!(what == "created" || what == "unchanged", "{line}");
            *created.entry(tenant.to_string()).or_default() += usize::from(what == "created");
        }
    }
    assert_eq!(
        created.into_iter().collect::<Vec<_>>(),
        [
            ("broads-digital".to_string(), 1),
            ("north-downs".to_string(), 1),
            ("the-marches".to_string(), 1)
        ]
    );
    let again = run(&["tenants", "apply", tenants]).output().unwrap();
    assert!(text(&again).0.lines().all(|l| l.ends_with(": unchanged")));
}

#[tokio::test]
async fn concurrent_tenants_apply_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new(Backend::Sqlite).await.unwrap();
    concurrent_applies_each_create_once(&db, dir.path());
}

#[tokio::test]
async fn concurrent_tenants_apply_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    if let Some(db) = TestDb::new(Backend::Postgres).await {
        concurrent_applies_each_create_once(&db, dir.path());
    }
}
