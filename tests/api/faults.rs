//! Faults: the server killed in the middle of a publish, PostgreSQL restarted under load,
//! and a connection pool held by slow statements. Each must lose no acknowledged write,
//! leave nothing half done, and answer 503 with `Retry-After` rather than fail or hang.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, TransactionTrait};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestDb, cli_operator_token, client_with, serve_process};

/// A PostgreSQL cluster of the test's own, on its own port, so it can be restarted without
/// disturbing the shared server other tests use. It runs the machine's PostgreSQL binaries.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect(
                "PostgreSQL's server binaries in /usr/lib/postgresql (Debian's postgresql package)",
            )
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("pg_ctl").exists())
            .max()
            .expect("pg_ctl under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let cluster = Self { dir, bin, port };
        // PostgreSQL refuses to run as root; the machine's `postgres` user runs it then.
        if is_root() {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(cluster.dir.path()));
        }
        run(&mut cluster.pg(
            "initdb",
            &[
                "-D",
                &cluster.data(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        ));
        cluster.pg_ctl(&["start"]);
        cluster
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A PostgreSQL program, as the `postgres` user when the test runs as root.
    fn pg(&self, program: &str, args: &[&str]) -> Command {
        let program = self.bin.join(program);
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        command.args(args).current_dir(self.dir.path());
        command
    }

    fn pg_ctl(&self, action: &[&str]) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("postgres.log").display().to_string();
        let mut args = vec![
            "-D",
            &self.data(),
            "-l",
            &log,
            "-o",
            &options,
            "-w",
            "-t",
            "30",
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
        args.extend(action.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&mut self.pg("pg_ctl", &args));
    }

    /// Stops PostgreSQL as a crash would (`immediate`: no checkpoint, crash recovery at
    /// start) and starts it again; returns once it accepts connections.
    fn crash_and_restart(&self) {
        self.pg_ctl(&["-m", "immediate", "restart"]);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .pg("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn run(command: &mut Command) {
    let output = command.output().expect("run a PostgreSQL program");
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Writes councils `w{writer}-{n}` until stopped; returns each write's council and status
/// (0 when the connection itself failed).
async fn write_councils(
    app_url: String,
    client: reqwest::Client,
    writer: usize,
    stop: Arc<AtomicBool>,
) -> Vec<(String, u16)> {
    let mut done = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let council = format!("w{writer}-{n}");
        n += 1;
        let status = client
            .put(format!(
                "{app_url}/api/v1/tenants/north-downs/councils/{council}"
            ))
            .json(&json!({"name": format!("Council {council}")}))
            .send()
            .await
            .map_or(0, |r| r.status().as_u16());
        done.push((council, status));
        if status != 201 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    done
}

/// The tenant's audit chain verifies end to end.
async fn audit_chain_holds(app: &TestApp, tenant: &str) {
    let store = app.store().await;
    let scope = store
        .scope(&guildhall_domain::TenantId::parse(tenant).unwrap())
        .await
        .unwrap()
        .expect("the tenant exists");
    let verification = store.audit(&scope).verify().await.unwrap();
    assert!(verification.broken.is_none(), "{verification:?}");
    assert!(verification.entries > 0);
}

/// PostgreSQL crashes and restarts while four writers add councils: every write is either
/// acknowledged (201) or refused with 503, none is a 500; every acknowledged council is there
/// afterwards; and the server is ready again within 5 seconds of PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_loses_no_acknowledged_write() {
    let postgres = Arc::new(PrivatePostgres::start());
    let db = TestDb::on_postgres(postgres.url()).await;
    let app = TestApp::spawn_on(db, |c| c.database.acquire_timeout_ms = 1000).await;
    app.create_example_tenants().await;
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            tokio::spawn(write_councils(
                app.url(""),
                app.client.clone(),
                w,
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cluster = postgres.clone();
    tokio::task::spawn_blocking(move || cluster.crash_and_restart())
        .await
        .unwrap();
    // pg_ctl returned: PostgreSQL accepts connections. The server has 5 s to be ready.
    let back = Instant::now();
    loop {
        let status = app
            .anonymous
            .get(app.url("/readyz"))
            .send()
            .await
            .map_or(0, |r| r.status().as_u16());
        if status == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "not ready {:?} after PostgreSQL came back ({status})",
            back.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready_after = back.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut writes = Vec::new();
    for writer in writers {
        writes.extend(writer.await.unwrap());
    }
    let acknowledged: Vec<&str> = writes
        .iter()
        .filter(|(_, s)| *s == 201)
        .map(|(c, _)| c.as_str())
        .collect();
    let refused = writes.iter().filter(|(_, s)| *s == 503).count();
    for (council, status) in &writes {
        assert!(
            *status == 201 || *status == 503,
            "{council}: {status}; every write is acknowledged or refused with 503"
        );
    }
    let tenant = app.get_json("/api/v1/tenants/north-downs").await;
    let stored: Vec<&str> = tenant["councils"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    for council in &acknowledged {
        assert!(stored.contains(council), "acknowledged {council} was lost");
    }
    // Writes succeed again after the restart.
    let after = app
        .put_json(
            "/api/v1/tenants/north-downs/councils/after-restart",
            &json!({"name": "After"}),
        )
        .await;
    assert_eq!(after.status(), 201);
    audit_chain_holds(&app, "north-downs").await;
    println!(
        "{} writes: {} acknowledged, {refused} refused with 503; ready {ready_after:?} after PostgreSQL",
        writes.len(),
        acknowledged.len()
    );
}

/// Slow statements hold every pooled connection (a table locked from outside): requests
/// answer 503 with `Retry-After` within the acquire and statement timeouts instead of
/// hanging, and all is well once the lock goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_held_by_slow_statements_answers_503_with_retry_after() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let admin_url = db.admin_url.expose().to_string();
    let app = TestApp::spawn_on(db, |c| {
        c.database.max_connections = 2;
        c.database.acquire_timeout_ms = 500;
        c.database.statement_timeout_ms = 1500;
    })
    .await;
    app.create_example_tenants().await;
    let outside = Database::connect(&admin_url).await.unwrap();
    let lock = outside.begin().await.unwrap();
    lock.execute_unprepared("LOCK TABLE councils IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = Instant::now();
    let requests = (0..6).map(|_| {
        let request = app.client.get(app.url("/api/v1/tenants/north-downs"));
        async move { tokio::time::timeout(Duration::from_secs(10), request.send()).await }
    });
    let answers = futures::future::join_all(requests).await;
    let took = started.elapsed();
    for answer in answers {
        let response = answer
            .expect("a request hung on an exhausted pool")
            .unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "2");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["status"], 503, "{problem}");
        assert!(problem["request_id"].is_string(), "{problem}");
    }
    // Bounded by the statement timeout plus the acquire timeout, with room for a slow
    // machine; without the timeouts the requests would wait for the lock.
    assert!(took < Duration::from_secs(6), "{took:?}");
    lock.rollback().await.unwrap();
    let tenant = app.get_json("/api/v1/tenants/north-downs").await;
    assert_eq!(tenant["id"], "north-downs");
}

/// Kills the server with SIGKILL `delay` after a publish starts and starts it again on the
/// same database: the version is there whole (and serves) or not at all, and no component
/// blob is left without a version.
async fn kill_mid_publish(
    db: &TestDb,
    dir: &Path,
    env: &[(&'static str, String)],
    delay: Duration,
) -> Duration {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let env = env.as_slice();
    let (mut child, addr, _) = serve_process(dir, env);
    let token = cli_operator_token(dir, env);
    let client = client_with(Some(&token));
    let hello = guildhall_test_artifacts::plugin("hello");
    let form = reqwest::multipart::Form::new()
        .text("manifest", hello.manifest())
        .part(
            "component",
            reqwest::multipart::Part::bytes(hello.bytes()).file_name("component.wasm"),
        );
    let sent = Instant::now();
    let publish = tokio::spawn(
        client
            .post(format!("http://{addr}/api/v1/plugins/hello/versions"))
            .multipart(form)
            .send(),
    );
    let answered = tokio::time::timeout(delay, async {
        while !publish.is_finished() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .is_ok();
    let took = sent.elapsed();
    child.kill().unwrap();
    child.wait().unwrap();
    let acknowledged = matches!(publish.await.unwrap(), Ok(r) if r.status() == 201);
    assert!(acknowledged || !answered, "the publish failed on its own");

    let (mut child, addr, _) = serve_process(dir, env);
    let listed: Value = client
        .get(format!("http://{addr}/api/v1/plugins"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let published = listed.to_string().contains("\"hello\"");
    assert!(
        published || !acknowledged,
        "an acknowledged publish was lost (killed after {delay:?})"
    );
    let admin = Database::connect(db.admin_url.expose()).await.unwrap();
    let orphans = admin
        .query_one_raw(sea_orm::Statement::from_string(
            admin.get_database_backend(),
            "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM component_blobs b WHERE NOT EXISTS \
             (SELECT 1 FROM plugin_versions v WHERE v.digest = b.digest)",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(
        orphans, 0,
        "a blob without a version (killed after {delay:?})"
    );
    if published {
        // Whole: it installs and serves from the artefact the killed server may have cached.
        let version: Value = client
            .get(format!("http://{addr}/api/v1/plugins/hello/versions/0.1.0"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(version["version"], "0.1.0", "{version}");
        let tenant =
            json!({"id": "probe", "name": "Probe", "councils": [{"id": "one", "name": "One"}]});
        client
            .post(format!("http://{addr}/api/v1/tenants"))
            .json(&tenant)
            .send()
            .await
            .unwrap();
        let installed = client
            .put(format!("http://{addr}/api/v1/tenants/probe/installs/hello"))
            .json(&json!({"version": "0.1.0", "councils": "all", "config": {}}))
            .send()
            .await
            .unwrap();
        assert!(installed.status().is_success(), "{}", installed.status());
        let served = client
            .get(format!("http://{addr}/s/probe/one/hello/"))
            .send()
            .await
            .unwrap();
        assert_eq!(served.status(), 200, "killed after {delay:?}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    println!("killed {took:?} into a publish: acknowledged {acknowledged}, published {published}");
    took
}

async fn killed_mid_publish_leaves_no_half_version(backend: Backend) {
    // A publish left alone sets the scale: the kills land from early in the upload to the
    // moment of the answer, most of them in the compile and the transaction at its end.
    let whole = {
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let env = process_env(&db, dir.path());
        kill_mid_publish(&db, dir.path(), &env, Duration::from_secs(30)).await
    };
    for fraction in [0.2, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0] {
        let db = TestDb::new(backend)
            .await
            .expect("the database was there a moment ago");
        let dir = tempfile::tempdir().unwrap();
        let env = process_env(&db, dir.path());
        kill_mid_publish(&db, dir.path(), &env, whole.mul_f64(fraction)).await;
    }
}

/// The environment a server process runs with on `db`, caching in `dir`.
fn process_env(db: &TestDb, dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("GUILDHALL_DATABASE__URL", db.url.expose().to_string()),
        (
            "GUILDHALL_DATABASE__ADMIN_URL",
            db.admin_url.expose().to_string(),
        ),
        (
            "GUILDHALL_RUNTIME__CACHE_DIR",
            dir.join("cache").display().to_string(),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_publish_leaves_no_half_version_on_sqlite() {
    killed_mid_publish_leaves_no_half_version(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_publish_leaves_no_half_version_on_postgres() {
    killed_mid_publish_leaves_no_half_version(Backend::Postgres).await;
}
