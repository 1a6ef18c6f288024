//! Runs a built Guildhall plugin in-process, without a server or database: the engine of
//! `guildhall plugins test`, and a library for plugin authors' own Rust tests.
//!
//! A [`Harness`] holds the plugin, prepared by the platform's own runtime with the same
//! limits, import checks and capabilities as in production, and an in-memory platform
//! behind the runtime's ports: kv, events, secrets, access rules, a citizen's session per
//! council, and canned answers to outbound HTTP requests, which it records. Requests reach
//! the plugin as the gateway passes them: the path under the plugin's root, the
//! `x-guildhall-tenant` and `x-guildhall-council` headers, no credentials or cookies.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use guildhall_harness::{Harness, TestRequest, subject};
//!
//! let harness = Harness::load("plugins/hello/dist").await?;
//! let response = harness.send(TestRequest::get("/")).await?;
//! assert_eq!(response.status, 200);
//! assert!(response.text().contains("Hello from dev"));
//!
//! let officer = subject("alice", &["officer"], None)?;
//! let posted = harness
//!     .send(TestRequest::post("/notices").caller(officer).json(&serde_json::json!({"title": "Hi"})))
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! [`scenario`] runs the language-neutral test files (`tests/*.toml`) that every plugin
//! project, whatever its language, keeps beside its source.

mod memory;
pub mod scenario;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use guildhall_domain::manifest::Manifest;
use guildhall_domain::{CouncilId, Digest, Role, Site, TenantId};
use guildhall_runtime::{CallContext, CallError, Ports, Prepared, Runtime, RuntimeConfig, edge};

pub use guildhall_domain::Caller;
pub use guildhall_runtime::OutboundRequest;
pub use memory::{Event, Recorded};

use memory::{Answer, CallSessionView, Memory, MemoryPorts, Rule, SessionStore};

/// The tenant every harness call runs in.
pub const TENANT: &str = "dev";

/// The council calls run for unless a request names another.
pub const COUNCIL: &str = "dev";

/// Why the harness could not load a plugin or run a call.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The manifest, a setting or a request is not valid.
    #[error("{0}")]
    Invalid(String),
    /// The platform refused the component, as publishing would.
    #[error("{0}")]
    Refused(String),
}

/// A caller holding `roles` (e.g. `officer`, `tenant-admin`) in the tenant, optionally
/// limited to one council, as the gateway resolves a token or sign-in.
pub fn subject(id: &str, roles: &[&str], council: Option<&str>) -> Result<Caller, HarnessError> {
    let roles = roles
        .iter()
        .map(|r| Role::parse(r).map_err(|e| HarnessError::Invalid(e.to_string())))
        .collect::<Result<_, _>>()?;
    let council = council.map(parse_council).transpose()?;
    Ok(Caller::Subject {
        id: id.to_string(),
        roles,
        council,
    })
}

/// A request to the plugin, as a resident's browser or an API client would make it.
#[derive(Debug, Clone)]
pub struct TestRequest {
    /// The method.
    pub method: http::Method,
    /// The path under the plugin's root, with its query, e.g. `/notices?page=2`.
    pub path: String,
    /// Headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Bytes,
    /// Who calls; anonymous by default.
    pub caller: Caller,
    /// The council, when not the harness's default.
    pub council: Option<String>,
    /// Form fields, sent urlencoded. As a browser submitting the plugin's own form, the
    /// session's `csrf` token is added when the last page of the citizen's session carried
    /// it (a page whose form lacks the field fails here as in production) and the fields
    /// have none.
    pub form: Option<Vec<(String, String)>>,
}

impl TestRequest {
    /// A request with `method` for `path`.
    pub fn new(method: http::Method, path: impl Into<String>) -> Self {
        let mut path = path.into();
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        Self {
            method,
            path,
            headers: http::HeaderMap::new(),
            body: Bytes::new(),
            caller: Caller::Anonymous,
            council: None,
            form: None,
        }
    }

    /// `GET path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(http::Method::GET, path)
    }

    /// `POST path`.
    pub fn post(path: impl Into<String>) -> Self {
        Self::new(http::Method::POST, path)
    }

    /// `DELETE path`.
    pub fn delete(path: impl Into<String>) -> Self {
        Self::new(http::Method::DELETE, path)
    }

    /// Sets a header; invalid names or values are ignored.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            self.headers.insert(name, value);
        }
        self
    }

    /// A JSON body.
    pub fn json(mut self, value: &serde_json::Value) -> Self {
        self.body = Bytes::from(value.to_string());
        self.header("content-type", "application/json")
    }

    /// A text body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// A urlencoded form, with the session's token added as [`TestRequest::form`] says.
    pub fn form<K: Into<String>, V: Into<String>>(
        mut self,
        fields: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.form = Some(
            fields
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// The caller.
    pub fn caller(mut self, caller: Caller) -> Self {
        self.caller = caller;
        self
    }

    /// The council.
    pub fn council(mut self, council: impl Into<String>) -> Self {
        self.council = Some(council.into());
        self
    }
}

/// The plugin's answer, or the platform's when the call failed.
#[derive(Debug, Clone)]
pub struct TestResponse {
    /// The status.
    pub status: u16,
    /// Headers.
    pub headers: http::HeaderMap,
    /// The body.
    pub body: Bytes,
    /// Why the call failed (a trap, the deadline, the memory cap…), when it did; the
    /// status is then the gateway's (502, 504 or 413).
    pub failure: Option<String>,
}

impl TestResponse {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A plugin running in-process with an in-memory platform.
pub struct Harness {
    runtime: Runtime,
    prepared: Prepared,
    memory: Arc<Memory>,
    council: CouncilId,
    config: Arc<serde_json::Value>,
    sessions: Mutex<HashMap<String, Arc<SessionStore>>>,
    /// The component cache, when the harness made a throwaway one.
    _cache: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("plugin", self.prepared.plugin())
            .field("council", &self.council)
            .finish_non_exhaustive()
    }
}

/// Where the author's tools keep compiled components between runs:
/// `$XDG_CACHE_HOME/guildhall/components` or `~/.cache/guildhall/components`, keyed by
/// digest and engine like the server's cache; created when missing.
pub fn component_cache() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let dir = base.join("guildhall").join("components");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir)
}

impl Harness {
    /// Loads the plugin in `dir`: its `plugin.toml` and the component it names (a folder
    /// `guildhall plugins build` wrote, or any publishable folder), with the platform's
    /// default limits.
    pub async fn load(dir: impl AsRef<Path>) -> Result<Self, HarnessError> {
        Self::load_with(dir, RuntimeConfig::default()).await
    }

    /// [`Harness::load`] with the runtime settings an operator's `[runtime]` gives (limits,
    /// the cache of compiled components). A relative `cache_dir` is replaced by
    /// [`component_cache`].
    pub async fn load_with(
        dir: impl AsRef<Path>,
        config: RuntimeConfig,
    ) -> Result<Self, HarnessError> {
        let dir = dir.as_ref();
        let read = |path: PathBuf| {
            std::fs::read(&path).map_err(|source| HarnessError::Read { path, source })
        };
        let manifest = read(dir.join("plugin.toml"))?;
        let manifest = String::from_utf8(manifest)
            .map_err(|_| HarnessError::Invalid("plugin.toml is not UTF-8".into()))?;
        let parsed = Manifest::from_toml(&manifest)
            .map_err(|e| HarnessError::Invalid(format!("plugin.toml: {e}")))?;
        let component = read(dir.join(&parsed.component))?;
        Self::from_parts(&manifest, component, config).await
    }

    /// A harness for a manifest's text and its component's bytes.
    pub async fn from_parts(
        manifest: &str,
        component: Vec<u8>,
        config: RuntimeConfig,
    ) -> Result<Self, HarnessError> {
        let manifest = Arc::new(
            Manifest::from_toml(manifest)
                .map_err(|e| HarnessError::Invalid(format!("plugin.toml: {e}")))?,
        );
        let memory = Arc::new(Memory::default());
        let ports = MemoryPorts(Arc::clone(&memory));
        let ports = Ports {
            kv: Arc::new(ports.clone()),
            events: Arc::new(ports.clone()),
            authorizer: Arc::new(ports.clone()),
            secrets: Arc::new(ports.clone()),
            http: Some(Arc::new(ports)),
        };
        let (cache_dir, throwaway) = match component_cache() {
            _ if config.cache_dir.is_absolute() => (config.cache_dir.clone(), None),
            Some(dir) => (dir, None),
            None => {
                let temp = tempfile::tempdir()
                    .map_err(|e| HarnessError::Invalid(format!("no cache folder: {e}")))?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let config = RuntimeConfig {
            cache_dir,
            ..config
        };
        let runtime =
            Runtime::new(config, ports).map_err(|e| HarnessError::Refused(e.to_string()))?;
        let bytes = Arc::new(component);
        // The publish checks first (size, imports against the manifest, exports), so a
        // plugin that passes here is one the catalogue accepts.
        let checked = runtime
            .check_component(&manifest, Arc::clone(&bytes))
            .await
            .map_err(|e| HarnessError::Refused(e.to_string()))?;
        let digest: Digest = *checked.digest();
        runtime.admit(checked);
        let prepared = runtime
            .prepare(Arc::clone(&manifest), digest, async || Ok(bytes))
            .await
            .map_err(|e| HarnessError::Refused(e.to_string()))?;
        let harness = Self {
            runtime,
            prepared,
            memory,
            council: CouncilId::parse(COUNCIL).expect("a valid council id"),
            config: Arc::new(serde_json::json!({})),
            sessions: Mutex::new(HashMap::new()),
            _cache: throwaway,
        };
        Ok(harness)
    }

    /// The plugin's manifest.
    pub fn manifest(&self) -> &Manifest {
        self.prepared.manifest()
    }

    /// Sets the install's configuration, checked against the manifest's `[config]` as an
    /// install is (required keys, types).
    pub fn set_config(&mut self, config: serde_json::Value) -> Result<(), HarnessError> {
        let checked = self
            .prepared
            .manifest()
            .check_config(&config)
            .map_err(|errors| {
                HarnessError::Invalid(
                    errors
                        .iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })?;
        self.config = Arc::new(checked);
        Ok(())
    }

    /// Sets the council calls run for unless a request names another.
    pub fn set_council(&mut self, council: &str) -> Result<(), HarnessError> {
        self.council = parse_council(council)?;
        Ok(())
    }

    /// Sets a declared secret, for the install (`council = None`) or one council.
    pub fn set_secret(
        &self,
        name: &str,
        value: &str,
        council: Option<&str>,
    ) -> Result<(), HarnessError> {
        if !self.manifest().secrets.contains_key(name) {
            return Err(HarnessError::Invalid(format!(
                "secret {name:?} is not declared under [secrets] in plugin.toml"
            )));
        }
        self.memory.secrets.lock().expect("secrets").insert(
            (council.map(str::to_string), name.to_string()),
            value.to_string(),
        );
        Ok(())
    }

    /// Lets callers holding `role` do `action` on `object` (`*` for any) when the plugin
    /// asks `authz`.
    pub fn allow(&self, role: &str, action: &str, object: &str) {
        self.memory.rules.lock().expect("rules").push(Rule {
            role: role.to_string(),
            action: action.to_string(),
            object: object.to_string(),
        });
    }

    /// Answers outbound `method url` requests with `response` (the first answer given for
    /// a method and URL wins). Requests with no answer fail as a refused connection.
    pub fn answer(&self, method: http::Method, url: &str, response: http::Response<Bytes>) {
        self.memory.answers.lock().expect("answers").push(Answer {
            method,
            url: url.to_string(),
            response,
        });
    }

    /// The outbound requests made so far, in order.
    pub fn outbound(&self) -> Vec<Recorded> {
        self.memory.requests.lock().expect("requests").clone()
    }

    /// The events emitted so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.memory.events.lock().expect("events").clone()
    }

    /// The value under `key` in the plugin's kv.
    pub fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        self.memory.kv().get(key).cloned()
    }

    /// Stores `value` under `key` in the plugin's kv, as if an earlier call had.
    pub fn kv_set(&self, key: &str, value: impl Into<Vec<u8>>) {
        self.memory
            .kv
            .lock()
            .expect("kv")
            .insert(key.to_string(), value.into());
    }

    /// Every key in the plugin's kv, in order.
    pub fn kv_keys(&self) -> Vec<String> {
        self.memory.kv().keys().cloned().collect()
    }

    /// The citizen's session token for `council` (default: the harness's), once a page
    /// started the session.
    pub fn csrf_token(&self, council: Option<&str>) -> Option<String> {
        let council = council.unwrap_or(self.council.as_str());
        let sessions = self.sessions.lock().expect("sessions");
        let store = sessions.get(council)?;
        let data = store.data.lock().expect("session");
        data.as_ref().map(|d| d.csrf.clone())
    }

    /// Ends the citizen's sessions, as closing the browser would.
    pub fn forget_sessions(&self) {
        self.sessions.lock().expect("sessions").clear();
    }

    fn site(&self, council: &CouncilId) -> Arc<Site> {
        let base_path = format!("/s/{TENANT}/{council}/{}", self.prepared.plugin());
        Arc::new(Site {
            tenant_name: "Development alliance".into(),
            council_name: format!("{council} council"),
            assets: "/assets/govuk-frontend/dev".into(),
            brand_stylesheet: None,
            logo: None,
            contact_url: None,
            accessibility_url: None,
            feedback_path: format!("{base_path}/_feedback"),
            base_path,
        })
    }

    /// Sends `request` to a fresh instance of the plugin, as the gateway would.
    pub async fn send(&self, request: TestRequest) -> Result<TestResponse, HarnessError> {
        let council = match &request.council {
            Some(c) => parse_council(c)?,
            None => self.council.clone(),
        };
        let mut caller = request.caller.clone();
        if let Caller::Subject {
            council: Some(limit),
            roles,
            ..
        } = &mut caller
            && limit != &council
        {
            // As the gateway: a caller limited to another council holds no roles here.
            roles.clear();
        }
        // A citizen's browser holds the session cookie; an API client with a token does not.
        let citizen = matches!(caller, Caller::Anonymous);
        let store = Arc::clone(
            self.sessions
                .lock()
                .expect("sessions")
                .entry(council.to_string())
                .or_default(),
        );
        let may_start = edge::is_safe(&request.method);
        let mut body = request.body.clone();
        let mut headers = request.headers.clone();
        let token = if citizen { store.token() } else { None };
        if let Some(fields) = &request.form {
            let mut form = form_urlencoded::Serializer::new(String::new());
            for (k, v) in fields {
                form.append_pair(k, v);
            }
            // As a browser submitting the plugin's own form: the token goes with it only
            // when the page the form came from carried it.
            if let Some(token) = &token
                && !fields.iter().any(|(k, _)| k == "csrf")
                && store.page_had_token.load(Ordering::Relaxed)
            {
                form.append_pair("csrf", token);
            }
            body = Bytes::from(form.finish());
            headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
        }
        // As the gateway: a request that is not a GET or HEAD and carries the session must
        // carry its token, or it is refused before the plugin runs.
        if let Some(token) = &token
            && self.prepared.manifest().capabilities.session
            && !may_start
            && edge::presented_token(&headers, &body).as_deref() != Some(token.as_str())
        {
            return Ok(TestResponse {
                status: 403,
                headers: http::HeaderMap::new(),
                body: Bytes::from_static(b"the form's csrf token is missing or wrong"),
                failure: Some("refused by the platform: no csrf token".into()),
            });
        }
        let mut builder = http::Request::builder()
            .method(request.method.clone())
            .uri(&request.path);
        for (name, value) in &headers {
            if edge::passed_to_plugin(name) {
                builder = builder.header(name, value);
            }
        }
        builder = builder
            .header("x-guildhall-tenant", TENANT)
            .header("x-guildhall-council", council.as_str())
            .header("x-guildhall-origin", "http://127.0.0.1");
        let http_request = builder
            .body(body)
            .map_err(|e| HarnessError::Invalid(format!("the request is not valid: {e}")))?;
        let session: Option<Arc<dyn guildhall_runtime::CallSession>> =
            (citizen && self.prepared.manifest().capabilities.session).then(|| {
                Arc::new(CallSessionView {
                    store: Arc::clone(&store),
                    may_start,
                }) as Arc<dyn guildhall_runtime::CallSession>
            });
        let call = CallContext {
            tenant: TenantId::parse(TENANT).expect("a valid tenant id"),
            council: council.clone(),
            principal: caller,
            config: Arc::clone(&self.config),
            request_id: uuid::Uuid::new_v4().to_string(),
            traceparent: None,
            site: self.site(&council),
            session,
        };
        let (result, _report) = self
            .runtime
            .handle(&self.prepared, call, http_request)
            .await;
        Ok(match result {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                edge::strip_plugin_response(&mut parts.headers);
                if citizen && let Some(token) = store.token() {
                    let carried = body.windows(token.len()).any(|w| w == token.as_bytes());
                    store.page_had_token.store(carried, Ordering::Relaxed);
                }
                TestResponse {
                    status: parts.status.as_u16(),
                    headers: parts.headers,
                    body,
                    failure: None,
                }
            }
            Err(e) => failed(e),
        })
    }

    /// Runs the declared schedule `name` once for `council` (default: the harness's):
    /// `Ok(Err(message))` when the plugin's `run` reported a failure.
    pub async fn run_schedule(
        &self,
        name: &str,
        council: Option<&str>,
    ) -> Result<Result<(), String>, HarnessError> {
        let council = match council {
            Some(c) => parse_council(c)?,
            None => self.council.clone(),
        };
        if self.manifest().schedule(name).is_none() {
            return Err(HarnessError::Invalid(format!(
                "plugin.toml declares no schedule {name:?}"
            )));
        }
        let call = CallContext {
            tenant: TenantId::parse(TENANT).expect("a valid tenant id"),
            council: council.clone(),
            principal: Caller::Anonymous,
            config: Arc::clone(&self.config),
            request_id: uuid::Uuid::new_v4().to_string(),
            traceparent: None,
            site: self.site(&council),
            session: None,
        };
        let (result, _) = self.runtime.run_schedule(&self.prepared, call, name).await;
        result.map_err(|e| HarnessError::Refused(format!("the run failed: {e}")))
    }
}

fn parse_council(council: &str) -> Result<CouncilId, HarnessError> {
    CouncilId::parse(council)
        .map_err(|e| HarnessError::Invalid(format!("council {council:?}: {e}")))
}

/// The gateway's answer to a failed call.
fn failed(e: CallError) -> TestResponse {
    let status = edge::failure_status(&e);
    let reason = e.to_string();
    TestResponse {
        status,
        headers: http::HeaderMap::new(),
        body: Bytes::from(
            serde_json::json!({"status": status, "outcome": e.kind(), "reason": reason})
                .to_string(),
        ),
        failure: Some(reason),
    }
}
