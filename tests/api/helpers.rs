//! Test support: a real server on port 0 with its own fresh database, SQLite or PostgreSQL,
//! and a way to run the real binary as a separate process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use guildhall::Config;
use guildhall::config::Listen;
use guildhall_store::{DatabaseUrl, PoolOptions, Store};
use sea_orm::ConnectionTrait;

/// The environment variable that names a PostgreSQL server for the PostgreSQL half of the
/// storage tests, e.g. `postgres://postgres@127.0.0.1:5432/test`. Each test creates and
/// drops its own database on that server.
pub const POSTGRES_ENV: &str = "TEST_POSTGRES_URL";

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database that is removed when dropped.
#[derive(Debug)]
pub struct TestDb {
    /// What the server connects as: on PostgreSQL an ordinary role that row-level
    /// security applies to.
    pub url: DatabaseUrl,
    /// The owner's connection, for migrations and for looking behind the API.
    pub admin_url: DatabaseUrl,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDb {
    /// A fresh database, or `None` (with a message) when PostgreSQL was asked for but no
    /// server is named.
    pub async fn new(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("guildhall.db").display()
                );
                Some(Self {
                    url: DatabaseUrl::new(url.clone()),
                    admin_url: DatabaseUrl::new(url),
                    _dir: Some(dir),
                    postgres: None,
                })
            }
            Backend::Postgres => {
                let Some(server) = postgres_server() else {
                    println!("skipped: PostgreSQL half not run because {POSTGRES_ENV} is not set");
                    return None;
                };
                Some(Self::on_postgres(server).await)
            }
        }
    }

    /// A fresh database on the PostgreSQL server at `server` (a URL naming a superuser).
    pub async fn on_postgres(server: String) -> Self {
        let name = format!("guildhall_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Store::connect(&DatabaseUrl::new(server.clone()), &PoolOptions::default())
            .await
            .expect("connect to the PostgreSQL server named in TEST_POSTGRES_URL");
        admin
            .connection()
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create a test database");
        // The server's role: LOGIN only, so row-level security applies to it.
        admin
            .connection()
            .execute_unprepared(&format!(
                "DO $$ BEGIN CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS; \
                 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            ))
            .await
            .expect("create the application role");
        admin.close().await.ok();
        Self {
            url: DatabaseUrl::new(with_user(&with_database(&server, &name), APP_ROLE)),
            admin_url: DatabaseUrl::new(with_database(&server, &name)),
            _dir: None,
            postgres: Some((server, name)),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((server, name)) = self.postgres.take() else {
            return;
        };
        // Dropping runs outside any async context the test may be in, on its own thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let admin = Store::connect(&DatabaseUrl::new(server), &PoolOptions::default())
                    .await
                    .ok()?;
                admin
                    .connection()
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .ok()?;
                admin.close().await.ok()
            })
        })
        .join();
    }
}

/// The PostgreSQL role test servers connect as.
pub const APP_ROLE: &str = "guildhall_app";

/// Replaces the user in a PostgreSQL URL (trust authentication: no password).
fn with_user(url: &str, user: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let host = match rest.find('@') {
        Some(at) if rest[..at].find('/').is_none() => &rest[at + 1..],
        _ => rest,
    };
    format!("{}{user}@{host}", &url[..scheme_end])
}

fn postgres_server() -> Option<String> {
    std::env::var(POSTGRES_ENV).ok().filter(|s| !s.is_empty())
}

/// Replaces the database name in a PostgreSQL URL.
fn with_database(server: &str, name: &str) -> String {
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (server, None),
    };
    let authority_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// The configuration tests run servers with: port 0, the test database, a private
/// component cache, and a one-second plugin deadline so hostile plugins end quickly.
pub fn test_config(db: &TestDb, dir: &Path) -> Config {
    let mut config = Config {
        listen: Listen(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..Config::default()
    };
    config.database.url = db.url.clone();
    config.database.admin_url = Some(db.admin_url.clone());
    config.database.max_connections = 5;
    config.http.shutdown_grace_secs = 2;
    config.runtime.cache_dir = dir.join("cache");
    config.runtime.default_timeout_ms = 1_000;
    config.runtime.pooling_instances = 100;
    // Replicas of one database share the key install secrets are sealed with.
    config.secrets.key = test_secrets_key(db).to_string();
    config
}

/// The secrets key of every server on `db`: one per test process, the same for each of its
/// replicas.
pub fn test_secrets_key(_db: &TestDb) -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(guildhall_store::Keyring::generate_key)
}

/// A running in-process server with its own database.
#[derive(Debug)]
pub struct TestApp {
    pub addr: SocketAddr,
    /// Sends the operator token minted at start.
    pub client: reqwest::Client,
    /// Sends no credentials.
    pub anonymous: reqwest::Client,
    pub db: TestDb,
    /// The configuration the server runs with.
    pub config: Config,
    _dir: tempfile::TempDir,
    server: Option<guildhall::Server>,
}

impl TestApp {
    /// Starts a server on a fresh database; `None` when the backend is not available.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts a server whose configuration `adjust` may change first.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<Self> {
        let db = TestDb::new(backend).await?;
        Some(Self::spawn_on(db, adjust).await)
    }

    /// Starts a server on `db`, whose configuration `adjust` may change first.
    pub async fn spawn_on(db: TestDb, adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = test_config(&db, dir.path());
        adjust(&mut config);
        let server = guildhall::Server::start(&config)
            .await
            .expect("start the server");
        let operator_token = mint_token(&db.url, "operator", None, None).await;
        Self {
            addr: server.addr(),
            client: client_with(Some(&operator_token)),
            anonymous: client_with(None),
            db,
            config,
            _dir: dir,
            server: Some(server),
        }
    }

    /// Stops the server gracefully (as on SIGTERM) and starts a new one on the same
    /// database and configuration, on a new port.
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
            server.wait().await.expect("the server stops cleanly");
        }
        let server = guildhall::Server::start(&self.config)
            .await
            .expect("restart the server");
        self.addr = server.addr();
        self.server = Some(server);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        let response = self.get(path).await;
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.expect("JSON body")
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// Publishes a plugin built from `plugins/` over HTTP, as its folder holds it.
    pub async fn publish_artifact(
        &self,
        artifact: &guildhall_test_artifacts::Artifact,
    ) -> reqwest::Response {
        self.publish(artifact.name, &artifact.manifest(), artifact.bytes(), None)
            .await
    }

    /// Publishes raw parts over HTTP.
    pub async fn publish(
        &self,
        name: &str,
        manifest: &str,
        component: Vec<u8>,
        signature: Option<&str>,
    ) -> reqwest::Response {
        self.publish_with(&self.client, name, manifest, component, signature)
            .await
    }

    /// Publishes raw parts over HTTP as the caller `client` authenticates.
    pub async fn publish_with(
        &self,
        client: &reqwest::Client,
        name: &str,
        manifest: &str,
        component: Vec<u8>,
        signature: Option<&str>,
    ) -> reqwest::Response {
        let mut form = reqwest::multipart::Form::new()
            .text("manifest", manifest.to_string())
            .part(
                "component",
                reqwest::multipart::Part::bytes(component).file_name("component.wasm"),
            );
        if let Some(signature) = signature {
            form = form.text("signature", signature.to_string());
        }
        client
            .post(self.url(&format!("/api/v1/plugins/{name}/versions")))
            .multipart(form)
            .send()
            .await
            .expect("POST publish")
    }

    /// Publishes a plugin built from `plugins/`.
    pub async fn publish_built(&self, name: &str) -> serde_json::Value {
        let response = self
            .publish_artifact(&guildhall_test_artifacts::plugin(name))
            .await;
        let status = response.status();
        let body: serde_json::Value = response.json().await.expect("JSON");
        assert!(status.is_success(), "publishing {name}: {status} {body}");
        body
    }

    /// Publishes report-a-problem and installs it in `tenant` for every council, with one
    /// service, "Pothole".
    pub async fn install_reports(&self, tenant: &str) {
        self.publish_built("report-a-problem").await;
        let installed = self
            .install(
                tenant,
                "report-a-problem",
                "0.1.0",
                serde_json::json!("all"),
                serde_json::json!({"services": pothole_services("Pothole")}),
            )
            .await;
        assert_eq!(
            installed.status(),
            201,
            "installing report-a-problem in {tenant}"
        );
    }

    /// Creates the example tenants from `tenants/` over HTTP.
    pub async fn create_example_tenants(&self) {
        for file in ["north-downs", "the-marches", "broads-digital"] {
            let text =
                std::fs::read_to_string(repo_root().join(format!("tenants/{file}.toml"))).unwrap();
            let value: toml::Value = toml::from_str(&text).unwrap();
            let json = serde_json::to_value(value).unwrap();
            let response = self.post_json("/api/v1/tenants", &json).await;
            assert_eq!(response.status(), 201, "{file}");
        }
    }

    /// Installs a plugin version for some councils (`"all"` or a list) with config.
    pub async fn install(
        &self,
        tenant: &str,
        plugin: &str,
        version: &str,
        councils: serde_json::Value,
        config: serde_json::Value,
    ) -> reqwest::Response {
        self.put_json(
            &format!("/api/v1/tenants/{tenant}/installs/{plugin}"),
            &serde_json::json!({"version": version, "councils": councils, "config": config}),
        )
        .await
    }

    /// Installs version 0.1.0 of `plugin` with an empty configuration for `councils`:
    /// `"all"` or a list of council ids.
    pub async fn install_for(
        &self,
        tenant: &str,
        plugin: &str,
        councils: impl Into<serde_json::Value>,
    ) -> reqwest::Response {
        self.install(
            tenant,
            plugin,
            "0.1.0",
            councils.into(),
            serde_json::json!({}),
        )
        .await
    }

    /// What a citizen (no credentials) gets from `GET /s/{tenant}/{council}/{plugin}/{path}`:
    /// the status and the body as text.
    pub async fn serve(
        &self,
        tenant: &str,
        council: &str,
        plugin: &str,
        path: &str,
    ) -> (u16, String) {
        let url = self.url(&format!("/s/{tenant}/{council}/{plugin}/{path}"));
        status_and_text(self.anonymous.get(url).send().await.expect("GET")).await
    }

    /// What a citizen gets from `GET path`: the status and the body as text.
    pub async fn get_anonymous(&self, path: &str) -> (u16, String) {
        status_and_text(
            self.anonymous
                .get(self.url(path))
                .send()
                .await
                .expect("GET"),
        )
        .await
    }

    pub async fn put_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .json(body)
            .send()
            .await
            .expect("PUT")
    }

    /// A second handle on this app's database as the server's role, for looking behind
    /// the API through the repositories.
    pub async fn store(&self) -> Store {
        Store::connect(&self.db.url, &PoolOptions::default())
            .await
            .expect("connect")
    }

    /// A handle as the database owner, for raw statements behind every wall.
    pub async fn admin_store(&self) -> Store {
        Store::connect(&self.db.admin_url, &PoolOptions::default())
            .await
            .expect("connect as owner")
    }

    /// Mints a token with `role` (in `tenant`, limited to `council`) straight through the
    /// access-control crate, as `guildhall token create` does.
    pub async fn token(&self, role: &str, tenant: Option<&str>, council: Option<&str>) -> String {
        mint_token(&self.db.url, role, tenant, council).await
    }

    /// A client that sends `token`.
    pub fn client_for(&self, token: &str) -> reqwest::Client {
        client_with(Some(token))
    }

    /// A client that sends a new token with `role` (in `tenant`, limited to `council`).
    pub async fn client_as(
        &self,
        role: &str,
        tenant: Option<&str>,
        council: Option<&str>,
    ) -> reqwest::Client {
        self.client_for(&self.token(role, tenant, council).await)
    }
}

/// A client that sends `token` as its bearer credential, or nothing.
pub fn client_with(token: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        // The server closes a connection idle for `server.keep_alive_idle_secs` (60 s): a
        // client that kept it longer could send its next request as the server closes it
        // (a reset), as tests that build plugins between requests would.
        .pool_idle_timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Mints a token on the database at `url`.
pub async fn mint_token(
    url: &DatabaseUrl,
    role: &str,
    tenant: Option<&str>,
    council: Option<&str>,
) -> String {
    let store = Store::connect(url, &PoolOptions::default())
        .await
        .expect("connect");
    let authz =
        guildhall_authz::Authz::new(store.clone(), guildhall_authz::Oidc::new(&[]).unwrap())
            .await
            .expect("load access control");
    let tenant = tenant.map(|t| guildhall_domain::TenantId::parse(t).unwrap());
    let council = council.map(|c| guildhall_domain::CouncilId::parse(c).unwrap());
    let (token, _) = authz
        .create_token(guildhall_authz::TokenRequest {
            name: &format!("test {role}"),
            role: guildhall_domain::Role::parse(role).unwrap(),
            tenant: tenant.as_ref(),
            council: council.as_ref(),
            days: 1,
            created_by: "test",
        })
        .await
        .expect("mint a token");
    store.close().await.ok();
    token
}

/// Mints an operator token with the real binary, as an operator would for a new install.
pub fn cli_operator_token(dir: &Path, env: &[(&str, &str)]) -> String {
    let output = guildhall(dir)
        .args([
            "token",
            "create",
            "--name",
            "test operator",
            "--role",
            "operator",
        ])
        .envs(env.iter().copied())
        .output()
        .expect("run guildhall token create");
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "token create failed: {stderr}");
    stdout.trim().to_string()
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.shutdown();
        }
    }
}

/// The secret part of a `ghall_<id>_<secret>` token. The secret is base64url and may itself
/// contain `_`, so it is everything after the second separator.
pub fn token_secret(token: &str) -> &str {
    token
        .splitn(3, '_')
        .nth(2)
        .expect("a ghall_<id>_<secret> token")
}

/// The status of a response and its body as text.
pub async fn status_and_text(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    (status, response.text().await.expect("a text body"))
}

/// Asserts that a response has this status, and returns its body as text.
pub async fn expect_text(response: reqwest::Response, status: u16) -> String {
    let (actual, body) = status_and_text(response).await;
    assert_eq!(actual, status, "{body}");
    body
}

/// Asserts that a response has this status, and returns its JSON body.
pub async fn expect_json(response: reqwest::Response, status: u16) -> serde_json::Value {
    let body = expect_text(response, status).await;
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Sends `request` and returns the status of the response.
pub async fn status_of(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.expect("send").status().as_u16()
}

/// Sends `request` and returns its JSON body, whatever the status.
pub async fn fetch_json(request: reqwest::RequestBuilder) -> serde_json::Value {
    let response = request.send().await.expect("send");
    response.json().await.expect("a JSON body")
}

/// Report-a-problem's configuration of one Open311 service, a pothole called `name`.
pub fn pothole_services(name: &str) -> serde_json::Value {
    serde_json::json!([{"service_code": "pothole", "service_name": name,
        "description": "A hole", "metadata": false, "type": "realtime", "keywords": "road",
        "group": "highways"}])
}

/// The manifest of the built `hello` plugin, which is at 0.1.0, moved to `version`.
pub fn hello_at(version: &str) -> String {
    let manifest = guildhall_test_artifacts::plugin("hello").manifest();
    let out = manifest.replace("version = \"0.1.0\"", &format!("version = \"{version}\""));
    assert!(version == "0.1.0" || out != manifest, "hello is at 0.1.0");
    out
}

/// Asserts that a response is problem+json with this status, and returns the problem.
pub async fn expect_problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert_eq!(content_type, "application/problem+json");
    let request_id = response
        .headers()
        .get("x-request-id")
        .expect("an x-request-id header")
        .to_str()
        .unwrap()
        .to_string();
    let path = response.url().path().to_string();
    let problem: serde_json::Value = response.json().await.expect("problem body");
    assert_eq!(problem["status"], status, "{problem}");
    // Every problem names the request it answers, wherever in the server it was made.
    assert_eq!(problem["request_id"], request_id.as_str(), "{problem}");
    assert_eq!(problem["instance"], path.as_str(), "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:guildhall:problem:")
    );
    assert!(
        problem["title"].is_string() && problem["detail"].is_string(),
        "{problem}"
    );
    problem
}

/// Generates a SQLite and a PostgreSQL test from one `async fn(TestApp)`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::helpers::{Backend, TestApp};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = TestApp::spawn(Backend::Sqlite).await.expect("SQLite is always available");
                super::$name(app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = TestApp::spawn(Backend::Postgres).await {
                    super::$name(app).await;
                }
            }
        }
    )*};
}

/// The `guildhall` binary under test.
pub fn guildhall_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| PathBuf::from(env!("CARGO_BIN_EXE_guildhall-under-test")))
}

/// A `guildhall` command in `dir` with no inherited `GUILDHALL_` configuration.
pub fn guildhall(dir: &Path) -> Command {
    let mut cmd = Command::new(guildhall_bin());
    cmd.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("GUILDHALL_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Output of a finished command as text, for assertions.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The repository root, for example files such as `tenants/`.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// Starts `guildhall serve` as a process on a free port in `dir` with extra environment
/// variables; returns the process, its address and a thread collecting its log.
pub fn serve_process(
    dir: &Path,
    env: &[(&str, &str)],
) -> (std::process::Child, String, std::thread::JoinHandle<String>) {
    use std::io::{BufRead, BufReader};
    let mut child = guildhall(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .envs(env.iter().copied())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if let Some(at) = line.find("address=")
                && let Some(tx) = tx.take()
            {
                let addr = line[at + 8..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_string();
                tx.send(addr).ok();
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let addr = match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(addr) => addr,
        Err(e) => {
            let _ = child.kill();
            let status = child.wait().ok();
            let log = reader.join().unwrap_or_default();
            panic!("the server did not report its address ({e}, {status:?}):\n{log}");
        }
    };
    (child, addr, reader)
}
