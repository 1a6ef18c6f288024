//! The alliance console over real HTTP, as a browser without JavaScript uses it: token
//! sign-in and its failure limit, the anti-forgery check on every form, alliances hidden
//! from each other, roles that see and do only what they may, sessions that end (sign-out,
//! a revoked token, idle and absolute timeouts, on every replica), the install flow with its
//! audit entry and its validation, `return_to` that never leaves the console, and methods
//! the pages do not take.
//!
//! Cookies are handled by hand (no cookie store), so each test says exactly what a browser
//! would hold and send.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use reqwest::Method;
use reqwest::header::HeaderMap;
use sea_orm::ConnectionTrait;
use sea_orm::prelude::TimeDateTimeWithTimeZone as OffsetDateTime;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, client_with, expect_json, hello_at};

pub(crate) const A: &str = "north-downs";
pub(crate) const B: &str = "the-marches";

/// The session cookie with the default `secure_cookies = true`.
pub(crate) const SESSION_COOKIE: &str = "__Host-guildhall-console";
/// The sign-in form's cookie with the default `secure_cookies = true`.
pub(crate) const SIGN_IN_COOKIE: &str = "__Host-guildhall-sign-in";

// ---------------------------------------------------------------------------------------
// A browser without JavaScript: cookies by hand, no redirects followed.

/// A response as the tests look at it.
#[derive(Debug)]
pub(crate) struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// The `Location` header.
    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }

    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    /// The `Set-Cookie` header that sets `name`, if any.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.split('=').next() == Some(name))
    }

    /// The anti-forgery token the page's forms carry.
    pub fn csrf(&self) -> Option<String> {
        inputs(&self.body)
            .into_iter()
            .find(|(name, _)| name == "csrf")
            .map(|(_, value)| value)
            .filter(|v| !v.is_empty())
    }

    /// The `<title>`.
    pub fn title(&self) -> String {
        between(&self.body, "<title>", "</title>")
            .map(unescape)
            .unwrap_or_default()
    }

    /// The text of the GOV.UK error summary, when the page has one.
    pub fn error_summary(&self) -> Option<String> {
        let at = self.body.find("govuk-error-summary\"")?;
        let rest = &self.body[at..];
        let end = rest.find("</ul>").unwrap_or(rest.len());
        Some(unescape(&strip_tags(&rest[..end])))
    }

    /// The links of the error summary (`#field`).
    pub fn error_links(&self) -> Vec<String> {
        let Some(at) = self.body.find("govuk-error-summary__list") else {
            return Vec::new();
        };
        let rest = &self.body[at..];
        let end = rest.find("</ul>").unwrap_or(rest.len());
        tags(&rest[..end], "a")
            .into_iter()
            .filter_map(|(_, tag)| attrs(tag).get("href").cloned())
            .collect()
    }

    /// The page's text without markup.
    pub fn text(&self) -> String {
        unescape(&strip_tags(&self.body))
    }

    /// Whether this is one of the console's GOV.UK pages.
    pub fn is_console_page(&self) -> bool {
        self.body.contains("govuk-template") && self.body.contains("Guildhall console</title>")
    }

    /// The links of the alliance's section navigation, by text.
    pub fn tenant_nav(&self) -> Vec<String> {
        let Some(at) = self.body.find(" sections\">") else {
            return Vec::new();
        };
        let rest = &self.body[at..];
        let end = rest.find("</nav>").unwrap_or(rest.len());
        rest[..end]
            .split("<a ")
            .skip(1)
            .filter_map(|a| between(a, ">", "</a>"))
            .map(|t| unescape(&strip_tags(t)).trim().to_string())
            .collect()
    }
}

/// A browser: what it holds, and the console it talks to.
#[derive(Debug, Clone)]
pub(crate) struct Visitor {
    /// `http://host:port`.
    pub base: String,
    http: reqwest::Client,
    /// The cookies held, by name.
    pub cookies: BTreeMap<String, String>,
    /// The anti-forgery token of the signed-in session, from its last page.
    pub csrf: String,
}

impl Visitor {
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into(),
            http: client_with(None),
            cookies: BTreeMap::new(),
            csrf: String::new(),
        }
    }

    /// The same browser talking to another replica.
    pub fn on(&self, base: impl Into<String>) -> Self {
        Self {
            base: base.into(),
            ..self.clone()
        }
    }

    /// The secret of the session cookie.
    pub fn session_secret(&self) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(k, _)| k.ends_with("guildhall-console"))
            .map(|(_, v)| v.as_str())
    }

    /// A request carrying the cookies held, to `path` on the console (or to a whole URL).
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut request = self.http.request(method, url);
        if !self.cookies.is_empty() {
            let header = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header("cookie", header);
        }
        request
    }

    /// Sends `request`, keeping the cookies the answer sets.
    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let response = request.send().await.expect("send");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap_or_default();
        let page = Page {
            status,
            headers,
            body,
        };
        for line in page.set_cookies() {
            let (pair, attrs) = line.split_once(';').unwrap_or((&line, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            let removed = attrs
                .split(';')
                .any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            if removed || value.is_empty() {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_string(), value.trim().to_string());
            }
        }
        if let Some(csrf) = page.csrf()
            && page.status == 200
            && page.body.contains("Sign out")
        {
            self.csrf = csrf;
        }
        page
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.request(Method::GET, path);
        self.send(request).await
    }

    /// Posts exactly `fields` as a urlencoded form.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let request = self.request(Method::POST, path).form(fields);
        self.send(request).await
    }

    /// Posts `fields` with the session's anti-forgery token, as the page's form would.
    pub async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.clone();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all).await
    }

    /// The sign-in cookie's value, fetching the sign-in page for one when none is held.
    pub async fn sign_in_csrf(&mut self) -> String {
        if let Some(v) = self.sign_in_cookie() {
            return v;
        }
        let page = self.get("/console/sign-in").await;
        assert_eq!(page.status, 200, "{}", page.body);
        self.sign_in_cookie()
            .expect("the sign-in page sets its cookie")
    }

    fn sign_in_cookie(&self) -> Option<String> {
        self.cookies
            .iter()
            .find(|(k, _)| k.ends_with("guildhall-sign-in"))
            .map(|(_, v)| v.clone())
    }

    /// Signs in with `token` through the form; returns the answer to the form.
    pub async fn sign_in_with(&mut self, token: &str, return_to: &str) -> Page {
        let csrf = self.sign_in_csrf().await;
        self.post(
            "/console/sign-in",
            &[("csrf", &csrf), ("token", token), ("return_to", return_to)],
        )
        .await
    }

    /// Loads the start page for the session's anti-forgery token.
    pub async fn refresh(&mut self) -> Page {
        let page = self.get("/console").await;
        assert_eq!(page.status, 200, "{}", page.body);
        self.csrf = page
            .csrf()
            .expect("a signed-in page carries the csrf token");
        page
    }
}

/// A browser signed in to the console at `base` with `token`.
pub(crate) async fn signed_in(base: &str, token: &str) -> Visitor {
    let mut visitor = Visitor::new(base);
    let answer = visitor.sign_in_with(token, "/console").await;
    assert_eq!(answer.status, 303, "token sign-in: {}", answer.body);
    assert_eq!(answer.location(), Some("/console"));
    assert!(visitor.session_secret().is_some(), "{:?}", answer.headers);
    visitor.refresh().await;
    visitor
}

// ---------------------------------------------------------------------------------------
// Just enough HTML reading for forms and links.

/// Undoes minijinja's HTML escaping.
pub(crate) fn unescape(text: &str) -> String {
    text.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The opening tags `<name …>` in `html`.
fn tags<'a>(html: &'a str, name: &str) -> Vec<(usize, &'a str)> {
    let open = format!("<{name}");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = html[from..].find(&open) {
        let start = from + at;
        let after = html[start + open.len()..].chars().next();
        let Some(end) = html[start..].find('>') else {
            break;
        };
        if matches!(after, Some(c) if c.is_whitespace() || c == '>') {
            out.push((start, &html[start..=start + end]));
        }
        from = start + open.len();
    }
    out
}

/// The attributes of one opening tag, unescaped.
fn attrs(tag: &str) -> BTreeMap<String, String> {
    let inner = tag
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim_end_matches('/');
    let mut out = BTreeMap::new();
    let bytes = inner.as_bytes();
    let mut i = inner.find(char::is_whitespace).unwrap_or(inner.len());
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'=' {
            i += 1;
        }
        let name = inner[start..i].to_ascii_lowercase();
        if name.is_empty() {
            i += 1;
            continue;
        }
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let quote = bytes[i];
                let from = i + 1;
                let to = inner[from..]
                    .bytes()
                    .position(|b| b == quote)
                    .map_or(inner.len(), |p| from + p);
                value = unescape(&inner[from..to]);
                i = to + 1;
            } else {
                let from = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = unescape(&inner[from..i]);
            }
        }
        out.insert(name, value);
    }
    out
}

/// `(name, value)` of every `<input>` with a name.
fn inputs(html: &str) -> Vec<(String, String)> {
    tags(html, "input")
        .into_iter()
        .filter_map(|(_, tag)| {
            let a = attrs(tag);
            Some((
                a.get("name")?.clone(),
                a.get("value").cloned().unwrap_or_default(),
            ))
        })
        .collect()
}

/// Every `href` of a link, unescaped, without its fragment.
pub(crate) fn links(html: &str) -> Vec<String> {
    tags(html, "a")
        .into_iter()
        .filter_map(|(_, tag)| attrs(tag).get("href").cloned())
        .map(|h| h.split('#').next().unwrap_or_default().to_string())
        .collect()
}

/// A form on a page.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Form {
    pub method: String,
    pub action: String,
    /// Its hidden fields.
    pub hidden: Vec<(String, String)>,
}

pub(crate) fn forms(html: &str) -> Vec<Form> {
    tags(html, "form")
        .into_iter()
        .map(|(at, tag)| {
            let a = attrs(tag);
            let body = &html[at..];
            let body = &body[..body.find("</form>").unwrap_or(body.len())];
            let hidden = tags(body, "input")
                .into_iter()
                .map(|(_, t)| attrs(t))
                .filter(|a| a.get("type").map(String::as_str) == Some("hidden"))
                .filter_map(|a| {
                    Some((
                        a.get("name")?.clone(),
                        a.get("value").cloned().unwrap_or_default(),
                    ))
                })
                .collect();
            Form {
                method: a
                    .get("method")
                    .cloned()
                    .unwrap_or_else(|| "get".into())
                    .to_lowercase(),
                action: a.get("action").cloned().unwrap_or_default(),
                hidden,
            }
        })
        .collect()
}

/// Every console page reachable by links from the start page, with its status, and every
/// form seen on the way.
pub(crate) async fn crawl(visitor: &mut Visitor) -> (BTreeMap<String, u16>, BTreeSet<Form>) {
    let mut seen = BTreeMap::new();
    let mut found = BTreeSet::new();
    let mut queue = VecDeque::from(["/console".to_string()]);
    let mut queued: BTreeSet<String> = queue.iter().cloned().collect();
    while let Some(path) = queue.pop_front() {
        if seen.len() >= 200 {
            break;
        }
        let page = visitor.get(&path).await;
        assert!(
            page.status < 500,
            "GET {path}: {}\n{}",
            page.status,
            page.body
        );
        seen.insert(path.clone(), page.status);
        let is_html = page
            .headers
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap_or_default().starts_with("text/html"));
        if !is_html {
            continue;
        }
        for form in forms(&page.body) {
            found.insert(form);
        }
        for link in links(&page.body) {
            if !link.starts_with("/console")
                || link.starts_with("/console/static")
                || link.starts_with("/console/sign-in")
                || !queued.insert(link.clone())
            {
                continue;
            }
            queue.push_back(link);
        }
    }
    (seen, found)
}

// ---------------------------------------------------------------------------------------
// The world the tests run in.

/// A test server with two alliances, `hello` 0.1.0 and 0.2.0 (which declares settings)
/// and `bin-collections` published, and an identity provider members can be bound from.
#[derive(Debug)]
pub(crate) struct World {
    pub app: TestApp,
    /// A's administrator's token, and another's.
    pub admin: String,
    pub admin2: String,
    pub officer: String,
    pub auditor: String,
    _jwks: tempfile::TempDir,
}

/// `hello` 0.2.0: the same component, declaring a setting of each kind.
pub(crate) fn hello_with_settings() -> String {
    format!(
        "{}\n[config.greeting]\ntype = \"string\"\nrequired = false\ndescription = \"How to greet people\"\n\n\
         [config.max_names]\ntype = \"integer\"\nrequired = false\ndescription = \"The most names in one greeting\"\n\n\
         [config.loud]\ntype = \"boolean\"\nrequired = false\ndescription = \"Whether to shout\"\n",
        hello_at("0.2.0")
    )
}

/// Publishes hello 0.1.0 and 0.2.0 (with settings).
pub(crate) async fn publish_hello_versions(app: &TestApp) {
    app.publish_built("hello").await;
    let hello = guildhall_test_artifacts::plugin("hello");
    let published = app
        .publish("hello", &hello_with_settings(), hello.bytes(), None)
        .await;
    expect_json(published, 201).await;
}

/// An issuer whose subjects can be bound as members (bearer tokens only, no sign-in).
fn member_issuer(dir: &std::path::Path) -> guildhall_authz::OidcIssuer {
    use base64::Engine as _;
    let key = p256::ecdsa::SigningKey::random(&mut rsa::rand_core::OsRng);
    let point = key.verifying_key().to_encoded_point(false);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
        "x": b64.encode(point.x().unwrap()), "y": b64.encode(point.y().unwrap()),
    }]});
    let path = dir.join("jwks.json");
    std::fs::write(&path, jwks.to_string()).unwrap();
    serde_json::from_value(json!({
        "id": "north-downs-idp",
        "issuer": "https://login.north-downs.example/",
        "audience": "guildhall",
        "jwks_file": path,
        "sign_in": false,
    }))
    .expect("an issuer")
}

impl World {
    pub async fn start(
        backend: Backend,
        adjust: impl FnOnce(&mut guildhall::Config),
    ) -> Option<Self> {
        let jwks = tempfile::tempdir().unwrap();
        let issuer = member_issuer(jwks.path());
        let app = TestApp::spawn_with(backend, |c| {
            c.auth.oidc = vec![issuer];
            adjust(c);
        })
        .await?;
        app.create_example_tenants().await;
        publish_hello_versions(&app).await;
        app.publish_built("bin-collections").await;
        let r = app.install_for(B, "hello", "all").await;
        assert_eq!(r.status(), 201);
        Some(Self {
            admin: app.token("tenant-admin", Some(A), None).await,
            admin2: app.token("tenant-admin", Some(A), None).await,
            officer: app.token("officer", Some(A), None).await,
            auditor: app.token("auditor", Some(A), None).await,
            app,
            _jwks: jwks,
        })
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.app.addr)
    }

    pub async fn as_(&self, token: &str) -> Visitor {
        signed_in(&self.base(), token).await
    }
}

/// The id of a `ghall_<id>_<secret>` token.
pub(crate) fn token_id(token: &str) -> &str {
    token.split('_').nth(1).expect("ghall_<id>_<secret>")
}

/// What a tenant holds, read through the API as the operator: its installs, members,
/// tokens and (when asked) its audit log; the alliances; and how many console sessions
/// exist.
pub(crate) async fn state_of(app: &TestApp, tenant: &str, with_audit: bool) -> Value {
    let read = |path: String| async move { app.get_json(&path).await };
    json!({
        "tenants": read("/api/v1/tenants".into()).await,
        "installs": read(format!("/api/v1/tenants/{tenant}/installs")).await,
        "members": read(format!("/api/v1/tenants/{tenant}/members")).await,
        "tokens": read(format!("/api/v1/tenants/{tenant}/tokens")).await,
        "audit": if with_audit { read(format!("/api/v1/tenants/{tenant}/audit?limit=1000")).await } else { Value::Null },
        "sessions": sessions(app).await,
    })
}

/// How many console sessions are recorded.
pub(crate) async fn sessions(app: &TestApp) -> i64 {
    let store = app.admin_store().await;
    let conn = store.connection();
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT COUNT(*) AS n FROM console_sessions",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// The audit entries of `tenant`.
pub(crate) async fn audit_of(app: &TestApp, tenant: &str) -> Vec<Value> {
    let page = app
        .get_json(&format!("/api/v1/tenants/{tenant}/audit?limit=1000"))
        .await;
    page["entries"].as_array().unwrap().clone()
}

/// The sha256 (hex) under which a session's secret is stored.
fn id_hash(secret: &str) -> String {
    guildhall_domain::Digest::of(secret.as_bytes()).hex()
}

/// Sets the session's recorded times behind the server's back.
async fn set_session_times(
    app: &TestApp,
    secret: &str,
    last_seen_at: Option<OffsetDateTime>,
    expires_at: Option<OffsetDateTime>,
) {
    let store = app.admin_store().await;
    let conn = store.connection();
    let backend = conn.get_database_backend();
    let p = |n: usize| {
        if backend == sea_orm::DbBackend::Postgres {
            format!("${n}")
        } else {
            "?".to_string()
        }
    };
    for (column, value) in [("last_seen_at", last_seen_at), ("expires_at", expires_at)] {
        let Some(value) = value else { continue };
        let sql = format!(
            "UPDATE console_sessions SET {column} = {} WHERE id_hash = {}",
            p(1),
            p(2)
        );
        let done = conn
            .execute_raw(sea_orm::Statement::from_sql_and_values(
                backend,
                sql,
                [value.into(), id_hash(secret).into()],
            ))
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 1, "no session row to change");
    }
}

/// The recorded session of a browser.
async fn session_row(app: &TestApp, visitor: &Visitor) -> Option<guildhall_store::SessionRecord> {
    let secret = visitor.session_secret().expect("a session cookie");
    app.store()
        .await
        .console_sessions()
        .find(&id_hash(secret))
        .await
        .unwrap()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A SQLite and a PostgreSQL test from one `async fn(Backend)`.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::helpers::Backend;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(Backend::Postgres).await;
            }
        }
    )*};
}

fn cookie_attrs(line: &str) -> BTreeSet<String> {
    line.split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

fn assert_host_only_secure_cookie(line: &str) {
    let attrs = cookie_attrs(line);
    for want in ["secure", "httponly", "samesite=lax", "path=/"] {
        assert!(attrs.contains(want), "{line} lacks {want}");
    }
    assert!(
        !attrs.iter().any(|a| a.starts_with("domain")),
        "{line} names a domain"
    );
}

// ---------------------------------------------------------------------------------------
// Token sign-in.

async fn token_sign_in(backend: Backend) {
    let Some(world) = World::start(backend, |_| {}).await else {
        return;
    };
    let base = world.base();
    let mut browser = Visitor::new(&base);

    // Nobody signed in: to the sign-in page, which remembers where they were going.
    let start = browser.get("/console").await;
    assert_eq!(start.status, 303);
    assert_eq!(start.location(), Some("/console/sign-in"));
    let deep = browser.get(&format!("/console/t/{A}/installs")).await;
    assert_eq!(deep.status, 303);
    assert_eq!(
        deep.location(),
        Some("/console/sign-in?return_to=%2Fconsole%2Ft%2Fnorth-downs%2Finstalls")
    );

    let page = browser.get("/console/sign-in").await;
    assert_eq!(page.status, 200);
    assert!(page.is_console_page(), "{}", page.body);
    for (header, value) in [("x-frame-options", "DENY"), ("cache-control", "no-store")] {
        assert_eq!(page.headers.get(header).unwrap(), value, "{header}");
    }
    let csp = page
        .headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let sign_in_cookie = page.set_cookie(SIGN_IN_COOKIE).expect("the sign-in cookie");
    assert_host_only_secure_cookie(&sign_in_cookie);
    let csrf = browser.cookies[SIGN_IN_COOKIE].clone();
    assert!(csrf.len() >= 32, "{csrf}");
    assert_eq!(
        page.csrf().as_deref(),
        Some(csrf.as_str()),
        "the form carries the cookie's value"
    );
    // Asking again keeps the same cookie.
    let again = browser.get("/console/sign-in").await;
    assert!(again.set_cookie(SIGN_IN_COOKIE).is_none());

    // A wrong token: 401, the GOV.UK error summary, nothing set, no session.
    let before = sessions(&world.app).await;
    for (token, status, message) in [
        (
            "ghall_nosuchtoken_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            401,
            "Enter a valid Guildhall token",
        ),
        ("not a token at all", 401, "Enter a valid Guildhall token"),
        ("   ", 422, "Enter your token"),
    ] {
        let refused = browser
            .post(
                "/console/sign-in",
                &[("csrf", &csrf), ("token", token), ("return_to", "/console")],
            )
            .await;
        assert_eq!(refused.status, status, "{token}: {}", refused.body);
        assert!(
            refused.set_cookies().is_empty(),
            "{:?}",
            refused.set_cookies()
        );
        let summary = refused.error_summary().expect("an error summary");
        assert!(
            summary.contains("There is a problem") && summary.contains(message),
            "{summary}"
        );
        assert_eq!(refused.error_links(), ["#token"]);
        assert!(
            refused.body.contains("govuk-input--error"),
            "the field is marked"
        );
        assert!(
            refused.title().starts_with("Error: "),
            "{}",
            refused.title()
        );
        assert!(
            !refused.body.contains(token.trim()) || token.trim().is_empty(),
            "the token is echoed back"
        );
    }
    // The other role's token of the same id with a wrong secret is as wrong.
    let id = token_id(&world.admin);
    let forged = format!("ghall_{id}_{}", "x".repeat(43));
    let refused = browser
        .post(
            "/console/sign-in",
            &[
                ("csrf", &csrf),
                ("token", &forged),
                ("return_to", "/console"),
            ],
        )
        .await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        sessions(&world.app).await,
        before,
        "a refused sign-in stores nothing"
    );

    // The right token: 303 to the console, a host-only secure session cookie, the sign-in
    // cookie removed.
    let answer = browser
        .post(
            "/console/sign-in",
            &[
                ("csrf", &csrf),
                ("token", &world.admin),
                ("return_to", "/console"),
            ],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(answer.location(), Some("/console"));
    let session = answer
        .set_cookie(SESSION_COOKIE)
        .expect("the session cookie");
    assert_host_only_secure_cookie(&session);
    let max_age: u64 = cookie_attrs(&session)
        .iter()
        .find_map(|a| a.strip_prefix("max-age=").map(|v| v.parse().unwrap()))
        .expect("a Max-Age");
    assert!(max_age > 11 * 3600 && max_age <= 12 * 3600, "{max_age}");
    let cleared = answer
        .set_cookie(SIGN_IN_COOKIE)
        .expect("the sign-in cookie is removed");
    assert!(cookie_attrs(&cleared).contains("max-age=0"), "{cleared}");
    assert!(!browser.cookies.contains_key(SIGN_IN_COOKIE));
    assert_eq!(sessions(&world.app).await, before + 1);
    let secret = browser.session_secret().unwrap().to_string();
    assert!(secret.len() >= 43);
    let row = session_row(&world.app, &browser)
        .await
        .expect("a session row");
    assert_eq!(row.subject, format!("token:{id}"));
    assert_eq!(row.token_id.as_deref(), Some(id));
    assert_ne!(row.id_hash, secret, "the secret itself is not stored");

    let home = browser.refresh().await;
    assert!(home.text().contains("Your alliances"), "{}", home.body);
    assert!(
        home.text()
            .contains(&format!("token test tenant-admin ({id})")),
        "{}",
        home.text()
    );
    let hrefs = links(&home.body);
    assert!(hrefs.contains(&format!("/console/t/{A}")), "{hrefs:?}");
    assert!(!hrefs.contains(&format!("/console/t/{B}")), "{hrefs:?}");
    // Signed in, the sign-in page sends them on.
    let on = browser
        .get("/console/sign-in?return_to=%2Fconsole%2Fcatalogue")
        .await;
    assert_eq!(on.status, 303);
    assert_eq!(on.location(), Some("/console/catalogue"));

    // Sign in where they were going.
    let mut other = Visitor::new(&base);
    let answer = other
        .sign_in_with(&world.admin2, &format!("/console/t/{A}/installs"))
        .await;
    assert_eq!(answer.status, 303);
    assert_eq!(answer.location(), Some("/console/t/north-downs/installs"));

    // The session cookie is not an API credential, and an API token is not a session.
    let api = world
        .app
        .anonymous
        .get(world.app.url(&format!("/api/v1/tenants/{A}")))
        .header("cookie", format!("{SESSION_COOKIE}={secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
    let bearer = client_with(Some(&world.admin))
        .get(world.app.url("/console"))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 303);
}

async fn sign_in_failures_are_limited(backend: Backend) {
    let Some(world) = World::start(backend, |_| {}).await else {
        return;
    };
    let mut browser = Visitor::new(world.base());
    let csrf = browser.sign_in_csrf().await;
    let mut limited = None;
    for i in 0..30 {
        let garbage = format!("garbage-{i}");
        let page = browser
            .post(
                "/console/sign-in",
                &[
                    ("csrf", &csrf),
                    ("token", &garbage),
                    ("return_to", "/console"),
                ],
            )
            .await;
        match page.status {
            401 => {}
            429 => {
                limited = Some((i, page));
                break;
            }
            other => panic!("attempt {i}: {other} {}", page.body),
        }
    }
    let (attempts, page) = limited.expect("the failure limit answers 429 within 30 attempts");
    assert!(attempts >= 5, "limited after only {attempts} failures");
    let wait: u64 = page
        .headers
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    let summary = page.error_summary().expect("an error summary");
    assert!(summary.contains("too many attempts"), "{summary}");
    assert!(page.set_cookie(SESSION_COOKIE).is_none());
    // More garbage stays refused.
    let page = browser
        .post(
            "/console/sign-in",
            &[
                ("csrf", &csrf),
                ("token", "garbage-again"),
                ("return_to", "/console"),
            ],
        )
        .await;
    assert_eq!(page.status, 429);
    // A valid token from the same address still signs in.
    let answer = browser.sign_in_with(&world.admin, "/console").await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert!(answer.set_cookie(SESSION_COOKIE).is_some());
}

// ---------------------------------------------------------------------------------------
// Forged forms.

/// A valid body for a form at `action`, without its `csrf`.
fn body_for(action: &str, hidden: &[(String, String)]) -> Vec<(String, String)> {
    let pairs: &[(&str, &str)] = if action.ends_with("/installs/bin-collections") {
        &[
            ("version", "0.1.0"),
            ("councils", "all"),
            ("config.council_name", "Tandridge"),
        ]
    } else if action.ends_with("/installs/hello") {
        &[("version", "0.1.0"), ("councils", "all")]
    } else if action.ends_with("/members") {
        &[
            ("issuer", "north-downs-idp"),
            ("sub", "mallory"),
            ("roles", "tenant-admin"),
        ]
    } else if action.ends_with("/tokens") {
        &[("name", "forged"), ("role", "tenant-admin"), ("days", "30")]
    } else {
        &[]
    };
    let mut body: Vec<(String, String)> = hidden
        .iter()
        .filter(|(k, _)| k != "csrf")
        .cloned()
        .collect();
    body.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    body
}

async fn forged_forms_change_nothing(backend: Backend) {
    let Some(world) = World::start(backend, |_| {}).await else {
        return;
    };
    let app = &world.app;
    // Something for each form to act on: hello installed, a member, tokens.
    assert_eq!(app.install_for(A, "hello", "all").await.status(), 201);
    let bound = app
        .put_json(
            &format!("/api/v1/tenants/{A}/members/alice"),
            &json!({"issuer": "north-downs-idp", "roles": ["officer"]}),
        )
        .await;
    assert_eq!(bound.status(), 201);
    let mut admin = world.as_(&world.admin).await;
    let other = world.as_(&world.admin2).await;
    assert_ne!(admin.csrf, other.csrf);

    // Every form the console shows an administrator, and those it must have.
    let (pages, found) = crawl(&mut admin).await;
    let officer_token = token_id(&world.officer);
    let mut actions: BTreeMap<String, Vec<(String, String)>> = found
        .into_iter()
        .filter(|f| f.method == "post")
        .map(|f| (f.action, f.hidden))
        .collect();
    for required in [
        "/console/sign-out".to_string(),
        format!("/console/t/{A}/installs/hello"),
        format!("/console/t/{A}/installs/hello/uninstall"),
        format!("/console/t/{A}/installs/bin-collections"),
        format!("/console/t/{A}/members"),
        format!("/console/t/{A}/tokens"),
        format!("/console/t/{A}/tokens/{officer_token}/revoke"),
    ] {
        actions.entry(required).or_default();
    }
    let shown: Vec<&String> = actions.keys().collect();
    for must in [
        "/console/sign-out",
        "/members",
        "/tokens",
        "/revoke",
        "/uninstall",
        "/installs/hello",
    ] {
        assert!(
            shown
                .iter()
                .any(|a| a.ends_with(must) || a.as_str() == must),
            "no form posting to …{must} was found on {} pages: {shown:?}",
            pages.len()
        );
    }
    println!("forms checked: {shown:?}");

    let before = state_of(app, A, true).await;
    for (action, hidden) in &actions {
        let body = body_for(action, hidden);
        let with = |csrf: Option<&str>| {
            let mut fields: Vec<(String, String)> = body.clone();
            if let Some(csrf) = csrf {
                fields.insert(0, ("csrf".into(), csrf.into()));
            }
            fields
        };
        let look_alike = format!("http://{}.evil.example", app.addr);
        type Case<'a> = (&'a str, Vec<(String, String)>, Option<&'a str>);
        let cases: Vec<Case> = vec![
            ("no csrf", with(None), None),
            ("an empty csrf", with(Some("")), None),
            ("a wrong csrf", with(Some(&"A".repeat(43))), None),
            ("another session's csrf", with(Some(&other.csrf)), None),
            (
                "a prefix of the csrf",
                with(Some(&admin.csrf[..admin.csrf.len() - 1])),
                None,
            ),
            (
                "another site's Origin",
                with(Some(&admin.csrf)),
                Some("https://evil.example"),
            ),
            ("an opaque Origin", with(Some(&admin.csrf)), Some("null")),
            (
                "a look-alike Origin",
                with(Some(&admin.csrf)),
                Some(&look_alike),
            ),
        ];
        for (case, fields, origin) in cases {
            let mut request = admin.request(Method::POST, action).form(&fields);
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            let page = admin.send(request).await;
            assert_eq!(page.status, 403, "POST {action} with {case}: {}", page.body);
            assert!(
                page.is_console_page(),
                "POST {action} with {case}: {}",
                page.body
            );
            assert!(
                page.text().contains("You cannot do this"),
                "{}",
                page.text()
            );
            assert!(page.set_cookies().is_empty(), "{:?}", page.set_cookies());
        }
        // A form body in any other encoding is refused, even with the right token.
        let csrf_pair = format!("csrf={}", admin.csrf);
        for (content_type, payload) in [
            ("text/plain", csrf_pair.clone()),
            ("application/json", json!({"csrf": admin.csrf}).to_string()),
            (
                "multipart/form-data; boundary=x",
                format!(
                    "--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n--x--\r\n",
                    admin.csrf
                ),
            ),
        ] {
            let request = admin
                .request(Method::POST, action)
                .header("content-type", content_type)
                .body(payload);
            let page = admin.send(request).await;
            assert_eq!(
                page.status, 400,
                "POST {action} as {content_type}: {}",
                page.body
            );
            assert!(page.is_console_page());
        }
        let request = admin.request(Method::POST, action).body(csrf_pair.clone());
        let page = admin.send(request).await;
        assert_eq!(
            page.status, 400,
            "POST {action} with no content type: {}",
            page.body
        );
    }
    assert_eq!(
        state_of(app, A, true).await,
        before,
        "a refused form changed something"
    );
    // The session survived the forged sign-outs.
    admin.refresh().await;

    // The same form from this site, with the session's token, goes through.
    let page = admin
        .submit(
            &format!("/console/t/{A}/members"),
            &[
                ("issuer", "north-downs-idp"),
                ("sub", "bob"),
                ("roles", "auditor"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let origin = format!("http://{}", app.addr);
    let request = admin
        .request(Method::POST, &format!("/console/t/{A}/members"))
        .header("origin", &origin)
        .form(&[
            ("csrf", admin.csrf.as_str()),
            ("issuer", "north-downs-idp"),
            ("sub", "carol"),
            ("roles", "auditor"),
        ]);
    let page = admin.send(request).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let members = app
        .get_json(&format!("/api/v1/tenants/{A}/members"))
        .await
        .to_string();
    assert!(
        members.contains("oidc:north-downs-idp:bob")
            && members.contains("oidc:north-downs-idp:carol"),
        "{members}"
    );
    assert!(!members.contains("mallory"), "{members}");

    // The sign-in form: its token is the sign-in cookie's.
    let before = state_of(app, A, true).await;
    let mut stranger = Visitor::new(world.base());
    let csrf = stranger.sign_in_csrf().await;
    let token = world.admin.as_str();
    let wrong = "B".repeat(43);
    for (case, fields, origin) in [
        ("no csrf", vec![("token", token)], None),
        (
            "a wrong csrf",
            vec![("csrf", wrong.as_str()), ("token", token)],
            None,
        ),
        (
            "a session's csrf",
            vec![("csrf", admin.csrf.as_str()), ("token", token)],
            None,
        ),
        (
            "another site's Origin",
            vec![("csrf", csrf.as_str()), ("token", token)],
            Some("https://evil.example"),
        ),
    ] {
        let mut request = stranger
            .request(Method::POST, "/console/sign-in")
            .form(&fields);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let page = stranger.send(request).await;
        assert_eq!(page.status, 403, "sign-in with {case}: {}", page.body);
        assert!(
            page.set_cookie(SESSION_COOKIE).is_none(),
            "sign-in with {case}"
        );
    }
    // Without the sign-in cookie at all, a matching csrf field proves nothing.
    let mut cookieless = Visitor::new(world.base());
    let page = cookieless
        .post("/console/sign-in", &[("csrf", &csrf), ("token", token)])
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert_eq!(state_of(app, A, true).await, before);
}

// ---------------------------------------------------------------------------------------
// Alliances and roles.

async fn alliances_are_hidden_from_each_other(backend: Backend) {
    let Some(world) = World::start(backend, |_| {}).await else {
        return;
    };
    let app = &world.app;
    let b_token = app.token("officer", Some(B), None).await;
    let mut admin = world.as_(&world.admin).await;
    let before = state_of(app, B, true).await;
    let sections = [
        "",
        "/installs",
        "/installs/hello",
        "/installs/hello/uninstall",
        "/installs/bin-collections",
        "/members",
        "/tokens",
        "/audit",
        "/usage",
        "/kpis",
        "/feedback",
    ];
    for section in sections {
        let theirs = admin.get(&format!("/console/t/{B}{section}")).await;
        let nowhere = admin
            .get(&format!("/console/t/no-such-alliance{section}"))
            .await;
        assert_eq!(theirs.status, 404, "{B}{section}: {}", theirs.body);
        assert!(theirs.is_console_page(), "{}", theirs.body);
        assert!(
            theirs.text().contains("Page not found"),
            "{}",
            theirs.text()
        );
        assert_eq!(
            (theirs.status, &theirs.body),
            (nowhere.status, &nowhere.body),
            "{section}: B's page differs from a missing alliance's"
        );
    }
    let b_revoke = format!("/console/t/{B}/tokens/{}/revoke", token_id(&b_token));
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            format!("/console/t/{B}/installs/bin-collections"),
            vec![
                ("version", "0.1.0"),
                ("councils", "all"),
                ("config.council_name", "X"),
            ],
        ),
        (
            format!("/console/t/{B}/installs/hello"),
            vec![("version", "0.2.0"), ("councils", "all")],
        ),
        (
            format!("/console/t/{B}/installs/hello"),
            vec![("version", "0.2.0"), ("councils", "some")],
        ),
        (
            format!("/console/t/{B}/installs/hello/uninstall"),
            vec![("purge_data", "true")],
        ),
        (
            format!("/console/t/{B}/members"),
            vec![
                ("issuer", "north-downs-idp"),
                ("sub", "mallory"),
                ("roles", "tenant-admin"),
            ],
        ),
        (
            format!("/console/t/{B}/members"),
            vec![("issuer", "north-downs-idp"), ("sub", "")],
        ),
        (
            format!("/console/t/{B}/tokens"),
            vec![
                ("name", "mine now"),
                ("role", "tenant-admin"),
                ("days", "30"),
            ],
        ),
        (format!("/console/t/{B}/tokens"), vec![("name", "")]),
        (b_revoke, vec![]),
        (format!("/console/t/{B}/audit/verify"), vec![]),
    ];
    for (path, fields) in &posts {
        let page = admin.submit(path, fields).await;
        assert_eq!(page.status, 404, "POST {path} {fields:?}: {}", page.body);
        assert!(page.text().contains("Page not found"));
    }
    assert_eq!(
        state_of(app, B, true).await,
        before,
        "A's administrator changed B"
    );
    // B's token still works.
    let r = client_with(Some(&b_token))
        .get(app.url(&format!("/api/v1/tenants/{B}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Nothing of B shows on A's administrator's pages.
    for path in ["/console", "/console/catalogue", "/console/catalogue/hello"] {
        let page = admin.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            !page.body.contains(&format!("/console/t/{B}")),
            "{path} links to B"
        );
        assert!(!page.text().contains("The Marches"), "{path} names B");
    }
    let plugin = admin.get("/console/catalogue/hello").await;
    assert!(
        links(&plugin.body).contains(&format!("/console/t/{A}/installs/hello")),
        "{}",
        plugin.body
    );
}

async fn roles_see_and_do_only_what_they_may(backend: Backend) {
    let Some(world) = World::start(backend, |_| {}).await else {
        return;
    };
    let app = &world.app;
    assert_eq!(
        app.install_for(A, "hello", ["tandridge"]).await.status(),
        201
    );
    let mut admin = world.as_(&world.admin).await;
    let mut officer = world.as_(&world.officer).await;
    let mut auditor = world.as_(&world.auditor).await;
    let audit_page = format!("/console/t/{A}/audit");
    let audit_built = admin.get(&audit_page).await.status == 200;
    if !audit_built {
        println!("the audit page is not there yet: its checks are skipped");
    }

    // The alliance's navigation shows only the sections each may open.
    let overview = format!("/console/t/{A}");
    let all = [
        "Overview",
        "Services",
        "Members",
        "Tokens",
        "Usage",
        "Performance",
        "Audit log",
        "Data protection",
    ];
    for (who, visitor, shown) in [
        ("tenant-admin", &mut admin, &all[..]),
        (
            "officer",
            &mut officer,
            &["Overview", "Services", "Performance"][..],
        ),
        (
            "auditor",
            &mut auditor,
            &["Overview", "Services", "Usage", "Performance", "Audit log"][..],
        ),
    ] {
        let page = visitor.get(&overview).await;
        assert_eq!(page.status, 200, "{who}: {}", page.body);
        assert_eq!(page.tenant_nav(), shown, "{who}'s sections");
        assert!(
            page.text().contains("hello 0.1.0"),
            "{who} sees the services: {}",
            page.text()
        );
        let home = visitor.get("/console").await;
        assert!(links(&home.body).contains(&overview), "{who}");
        assert!(!home.body.contains(&format!("/console/t/{B}")), "{who}");
        // No one here may see the platform's pages.
        assert!(
            !links(&home.body).contains(&"/console/platform".to_string()),
            "{who}"
        );
    }

    // Officers and auditors read services but cannot change them, members or tokens.
    let before = state_of(app, A, false).await;
    for (who, visitor) in [("officer", &mut officer), ("auditor", &mut auditor)] {
        let services = visitor.get(&format!("/console/t/{A}/installs")).await;
        assert_eq!(services.status, 200, "{who}");
        assert!(services.text().contains("hello"), "{who}");
        let hrefs = links(&services.body);
        assert!(
            !hrefs.iter().any(|h| h.contains("/installs/hello")),
            "{who} has change links: {hrefs:?}"
        );
        assert!(
            !services
                .text()
                .contains("Find a service in the catalogue to install"),
            "{who}"
        );
        let plugin = visitor.get("/console/catalogue/hello").await;
        assert_eq!(plugin.status, 200);
        assert!(
            !plugin.text().contains("Install it"),
            "{who} is offered to install"
        );
        for path in [
            format!("/console/t/{A}/members"),
            format!("/console/t/{A}/tokens"),
            format!("/console/t/{A}/installs/hello"),
            format!("/console/t/{A}/installs/hello/uninstall"),
            format!("/console/t/{A}/installs/bin-collections"),
        ] {
            let page = visitor.get(&path).await;
            assert_eq!(page.status, 403, "{who} GET {path}: {}", page.body);
            assert!(page.is_console_page());
            assert!(
                page.text().contains("You cannot do this"),
                "{}",
                page.text()
            );
            assert!(
                !page.body.contains("Create a token") && !page.body.contains("Save member"),
                "{who} {path}"
            );
        }
        for (path, fields) in [
            (
                format!("/console/t/{A}/installs/bin-collections"),
                vec![
                    ("version", "0.1.0"),
                    ("councils", "all"),
                    ("config.council_name", "X"),
                ],
            ),
            (
                format!("/console/t/{A}/installs/hello"),
                vec![("version", "0.2.0"), ("councils", "all")],
            ),
            (
                format!("/console/t/{A}/installs/hello"),
                vec![("version", "0.2.0"), ("councils", "some")],
            ),
            (format!("/console/t/{A}/installs/hello/uninstall"), vec![]),
            (
                format!("/console/t/{A}/members"),
                vec![
                    ("issuer", "north-downs-idp"),
                    ("sub", "mallory"),
                    ("roles", "tenant-admin"),
                ],
            ),
            (format!("/console/t/{A}/members"), vec![("sub", "")]),
            (
                format!("/console/t/{A}/tokens"),
                vec![("name", "mine"), ("role", "tenant-admin"), ("days", "30")],
            ),
            (format!("/console/t/{A}/tokens"), vec![("name", "")]),
            (
                format!("/console/t/{A}/tokens/{}/revoke", token_id(&world.admin)),
                vec![],
            ),
        ] {
            let page = visitor.submit(&path, &fields).await;
            assert_eq!(
                page.status, 403,
                "{who} POST {path} {fields:?}: {}",
                page.body
            );
            assert!(
                page.text().contains("You cannot do this"),
                "{}",
                page.text()
            );
        }
    }
    assert_eq!(
        state_of(app, A, false).await,
        before,
        "a refused role changed something"
    );
    // The refusals are in A's audit log as the API's would be.
    let refused: Vec<Value> = audit_of(app, A)
        .await
        .into_iter()
        .filter(|e| e["outcome"] == "403")
        .collect();
    assert!(!refused.is_empty(), "refusals are audited");
    assert!(refused.iter().all(|e| {
        e["detail"]
            .as_str()
            .unwrap()
            .contains("\"via\":\"console\"")
    }));

    // The auditor reads the audit log; the officer does not.
    if audit_built {
        let page = auditor.get(&audit_page).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.text().contains("installs.put"), "{}", page.text());
        assert_eq!(officer.get(&audit_page).await.status, 403);
    }

    // The administrator sees and uses the forms.
    let tokens = admin.get(&format!("/console/t/{A}/tokens")).await;
    assert_eq!(tokens.status, 200);
    assert!(
        tokens.text().contains("Create a token"),
        "{}",
        tokens.text()
    );
    assert!(
        forms(&tokens.body)
            .iter()
            .any(|f| f.action == format!("/console/t/{A}/tokens"))
    );
    let created = admin
        .submit(
            &format!("/console/t/{A}/tokens"),
            &[
                ("name", "website deploy"),
                ("role", "officer"),
                ("council", "tandridge"),
                ("days", "7"),
            ],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(
        created.text().contains("Token created"),
        "{}",
        created.text()
    );
    let secret = tags(&created.body, "input")
        .into_iter()
        .map(|(_, t)| attrs(t))
        .find(|a| a.get("id").map(String::as_str) == Some("new-token"))
        .and_then(|a| a.get("value").cloned())
        .filter(|v| v.starts_with("ghall_"))
        .expect("the new token is shown once");
    let listed = app
        .get_json(&format!("/api/v1/tenants/{A}/tokens"))
        .await
        .to_string();
    assert!(
        listed.contains("website deploy") && listed.contains(token_id(&secret)),
        "{listed}"
    );
    assert!(!listed.contains(&secret));
    let r = client_with(Some(&secret))
        .get(app.url(&format!("/api/v1/tenants/{A}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The page listing the tokens afterwards never shows the secret again.
    let again = admin.get(&format!("/console/t/{A}/tokens")).await;
    assert!(!again.body.contains(&secret));
    let revoked = admin
        .submit(
            &format!("/console/t/{A}/tokens/{}/revoke", token_id(&secret)),
            &[],
        )
        .await;
    assert_eq!(revoked.status, 303, "{}", revoked.body);
    assert_eq!(
        revoked.location(),
        Some("/console/t/north-downs/tokens?done=revoked")
    );
    let r = client_with(Some(&secret))
        .get(app.url(&format!("/api/v1/tenants/{A}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Form errors are shown beside the form, 422, nothing minted.
    let tokens_before = app.get_json(&format!("/api/v1/tenants/{A}/tokens")).await;
    let invalid = admin
        .submit(
            &format!("/console/t/{A}/tokens"),
            &[("name", ""), ("role", "operator"), ("days", "many")],
        )
        .await;
    assert_eq!(invalid.status, 422, "{}", invalid.body);
    let summary = invalid.error_summary().unwrap();
    assert!(summary.contains("Enter a name for the token"), "{summary}");
    assert_eq!(invalid.error_links(), ["#name", "#role", "#days"]);
    assert_eq!(
        app.get_json(&format!("/api/v1/tenants/{A}/tokens")).await,
        tokens_before
    );

    // Members: bind and remove through the form.
    let bound = admin
        .submit(
            &format!("/console/t/{A}/members"),
            &[
                ("issuer", "north-downs-idp"),
                ("sub", "alice"),
                ("roles", "officer"),
                ("council", "tandridge"),
            ],
        )
        .await;
    assert_eq!(bound.status, 303, "{}", bound.body);
    let members = app
        .get_json(&format!("/api/v1/tenants/{A}/members"))
        .await
        .to_string();
    assert!(
        members.contains("oidc:north-downs-idp:alice") && members.contains("tandridge"),
        "{members}"
    );
    let page = admin.get(&format!("/console/t/{A}/members")).await;
    assert!(page.text().contains("alice"), "{}", page.text());
    let removed = admin
        .submit(
            &format!("/console/t/{A}/members"),
            &[("subject", "oidc:north-downs-idp:alice"), ("remove", "1")],
        )
        .await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    let members = app
        .get_json(&format!("/api/v1/tenants/{A}/members"))
        .await
        .to_string();
    assert!(!members.contains("alice"), "{members}");
    let invalid = admin
        .submit(
            &format!("/console/t/{A}/members"),
            &[
                ("issuer", "north-downs-idp"),
                ("sub", "dave"),
                ("roles", "operator"),
            ],
        )
        .await;
    assert_eq!(invalid.status, 422, "{}", invalid.body);
    assert!(
        invalid
            .error_summary()
            .unwrap()
            .contains("operator is not a role in an alliance")
    );
}

// ---------------------------------------------------------------------------------------
// Sessions ending.

async fn signed_out_sessions_stay_out(backend: Backend) {
    let Some(world) = World::start(backend, |_| {}).await else {
        return;
    };
    let mut browser = world.as_(&world.admin).await;
    let stolen = browser.clone();
    let answer = browser.submit("/console/sign-out", &[]).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(answer.location(), Some("/console/sign-in?signed_out=1"));
    let cleared = answer
        .set_cookie(SESSION_COOKIE)
        .expect("the cookie is removed");
    assert!(cookie_attrs(&cleared).contains("max-age=0"), "{cleared}");
    assert!(browser.session_secret().is_none());
    let page = browser.get("/console/sign-in?signed_out=1").await;
    assert!(
        page.text().contains("You have signed out"),
        "{}",
        page.text()
    );
    assert!(
        session_row(&world.app, &stolen).await.is_none(),
        "the row is gone"
    );

    // The old cookie, replayed, is nobody.
    let mut replay = stolen.clone();
    for path in ["/console", &format!("/console/t/{A}/installs")] {
        let page = replay.get(path).await;
        assert_eq!(page.status, 303, "{path}");
        assert!(
            page.location().unwrap().starts_with("/console/sign-in"),
            "{:?}",
            page.location()
        );
    }
    let before = state_of(&world.app, A, true).await;
    let page = replay
        .submit(
            &format!("/console/t/{A}/tokens"),
            &[("name", "late"), ("role", "tenant-admin"), ("days", "1")],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(page.location().unwrap().starts_with("/console/sign-in"));
    assert_eq!(state_of(&world.app, A, true).await, before);
}

async fn revoked_tokens_end_their_sessions_on_every_replica(backend: Backend) {
    let Some(world) = World::start(backend, |_| {}).await else {
        return;
    };
    let app = &world.app;
    // A second server on the same database.
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::helpers::test_config(&app.db, dir.path());
    config.auth.oidc = app.config.auth.oidc.clone();
    let replica = guildhall::Server::start(&config).await.unwrap();
    let replica_base = format!("http://{}", replica.addr());

    // Signed in on one, the same cookie works on the other.
    let mut one = world.as_(&world.admin).await;
    let mut two = one.on(&replica_base);
    let page = two.get(&format!("/console/t/{A}")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.csrf().as_deref(), Some(one.csrf.as_str()));

    // The token is revoked through the other replica's API: the session ends on both.
    let revoke = client_with(Some(&world.admin2))
        .delete(format!(
            "{replica_base}/api/v1/tenants/{A}/tokens/{}",
            token_id(&world.admin)
        ))
        .send()
        .await
        .unwrap();
    assert!(revoke.status().is_success(), "{}", revoke.status());
    let page = one.get(&format!("/console/t/{A}/installs")).await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location(),
        Some("/console/sign-in?ended=1&return_to=%2Fconsole%2Ft%2Fnorth-downs%2Finstalls")
    );
    assert_eq!(two.get("/console").await.status, 303);
    let page = two.get("/console/sign-in?ended=1").await;
    assert!(
        page.text().contains("Your session has ended"),
        "{}",
        page.text()
    );
    assert!(
        session_row(app, &one).await.is_none(),
        "the ended session's row is deleted"
    );
    // The revoked token cannot sign in again.
    let mut again = Visitor::new(world.base());
    let page = again.sign_in_with(&world.admin, "/console").await;
    assert_eq!(page.status, 401);
    assert!(
        page.error_summary()
            .unwrap()
            .contains("This token has been revoked")
    );

    // Revoked through the console on one replica: the session using it ends on the other.
    let mut victim = signed_in(&replica_base, &world.officer).await;
    let mut admin = world.as_(&world.admin2).await;
    let page = admin
        .submit(
            &format!("/console/t/{A}/tokens/{}/revoke", token_id(&world.officer)),
            &[],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(victim.get(&format!("/console/t/{A}")).await.status, 303);

    // Signing out on one replica ends the session on the other.
    let mut on_replica = admin.on(&replica_base);
    assert_eq!(on_replica.get("/console").await.status, 200);
    assert_eq!(
        on_replica.submit("/console/sign-out", &[]).await.status,
        303
    );
    assert_eq!(admin.get("/console").await.status, 303);
    replica.shutdown();
}

async fn idle_and_old_sessions_end(backend: Backend) {
    let Some(world) = World::start(backend, |c| {
        c.console.idle_timeout_mins = 1;
        c.console.absolute_timeout_hours = 1;
    })
    .await
    else {
        return;
    };
    let app = &world.app;

    // Unused for longer than the idle timeout: ended, and the row deleted.
    let mut idle = world.as_(&world.admin).await;
    let secret = idle.session_secret().unwrap().to_string();
    set_session_times(app, &secret, Some(now() - Duration::from_secs(40)), None).await;
    assert_eq!(
        idle.get("/console").await.status,
        200,
        "40 s idle is within a minute"
    );
    set_session_times(app, &secret, Some(now() - Duration::from_secs(61)), None).await;
    let page = idle.get(&format!("/console/t/{A}")).await;
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location(),
        Some("/console/sign-in?ended=1&return_to=%2Fconsole%2Ft%2Fnorth-downs")
    );
    assert!(session_row(app, &idle).await.is_none());
    // A form posted by an idle session does nothing.
    let mut idle = world.as_(&world.admin).await;
    let secret = idle.session_secret().unwrap().to_string();
    set_session_times(app, &secret, Some(now() - Duration::from_secs(120)), None).await;
    let before = state_of(app, A, true).await;
    let page = idle
        .submit(
            &format!("/console/t/{A}/installs/hello"),
            &[("version", "0.1.0"), ("councils", "all")],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), Some("/console/sign-in?ended=1"));
    let after = state_of(app, A, true).await;
    assert_eq!(
        after["sessions"],
        before["sessions"].as_i64().unwrap() - 1,
        "the idle session is deleted"
    );
    assert_eq!(
        (&after["installs"], &after["audit"]),
        (&before["installs"], &before["audit"])
    );

    // Past its absolute end however recently used: ended.
    let mut old = world.as_(&world.admin).await;
    let row = session_row(app, &old).await.unwrap();
    let lifetime = row.expires_at - row.created_at;
    assert!(
        lifetime <= Duration::from_secs(3600) && lifetime > Duration::from_secs(3500),
        "{lifetime:?}"
    );
    let secret = old.session_secret().unwrap().to_string();
    set_session_times(
        app,
        &secret,
        Some(now()),
        Some(now() - Duration::from_secs(1)),
    )
    .await;
    let page = old.get("/console").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location(), Some("/console/sign-in?ended=1"));
    assert!(session_row(app, &old).await.is_none());
}

async fn a_session_in_use_does_not_go_idle(backend: Backend) {
    let Some(world) = World::start(backend, |c| c.console.idle_timeout_mins = 1).await else {
        return;
    };
    let app = &world.app;
    let mut browser = world.as_(&world.admin).await;
    let secret = browser.session_secret().unwrap().to_string();
    // Used 50 seconds after its last recorded use: within the idle timeout.
    set_session_times(app, &secret, Some(now() - Duration::from_secs(50)), None).await;
    assert_eq!(browser.get("/console").await.status, 200);
    // Twenty seconds pass (the recorded times move back by twenty seconds) and the person
    // uses it again: they were last active twenty seconds ago, well within a minute.
    let row = session_row(app, &browser).await.unwrap();
    set_session_times(
        app,
        &secret,
        Some(row.last_seen_at - Duration::from_secs(20)),
        None,
    )
    .await;
    let page = browser.get("/console").await;
    assert_eq!(
        page.status,
        200,
        "a session used 20 s ago was ended as idle (idle_timeout_mins = 1): {:?}",
        page.location()
    );
}

// ---------------------------------------------------------------------------------------
// Installing.

async fn install_through_the_console(backend: Backend) {
    let Some(world) = World::start(backend, |_| {}).await else {
        return;
    };
    let app = &world.app;
    let mut admin = world.as_(&world.admin).await;
    let installs = format!("/api/v1/tenants/{A}/installs");
    let form = format!("/console/t/{A}/installs/hello");

    let page = admin.get(&form).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.text().contains("Install hello"), "{}", page.text());
    assert!(
        page.text().contains("Version 0.2.0"),
        "the latest is offered"
    );
    let post = forms(&page.body)
        .into_iter()
        .find(|f| f.method == "post" && f.action == form)
        .expect("the install form");
    assert!(post.hidden.contains(&("csrf".into(), admin.csrf.clone())));
    for id in [
        "config-greeting",
        "config-max_names",
        "config-loud",
        "councils",
        "council",
    ] {
        assert!(page.body.contains(&format!("id=\"{id}\"")), "no field {id}");
    }
    let page = admin.get(&format!("{form}?version=0.1.0")).await;
    assert!(page.text().contains("Version 0.1.0") && !page.body.contains("config-greeting"));

    // Validation: each error in the summary linked to its field, 422, nothing stored.
    let nothing = app.get_json(&installs).await;
    for (fields, message, link) in [
        (
            vec![("version", "0.1.0"), ("councils", "some")],
            "Select at least one council",
            "#councils",
        ),
        (
            vec![
                ("version", "0.2.0"),
                ("councils", "all"),
                ("config.max_names", "lots"),
            ],
            "max_names must be a whole number",
            "#config-max_names",
        ),
        (
            vec![
                ("version", "0.2.0"),
                ("councils", "all"),
                ("config.loud", "maybe"),
            ],
            "Select yes or no for loud",
            "#config-loud",
        ),
        (
            vec![("version", "9.9.9"), ("councils", "all")],
            "Select a version that has been published",
            "#version",
        ),
        (
            vec![
                ("version", "0.1.0"),
                ("councils", "some"),
                ("council", "shropshire"),
            ],
            "shropshire",
            "#councils",
        ),
    ] {
        let page = admin.submit(&form, &fields).await;
        assert_eq!(page.status, 422, "{fields:?}: {}", page.body);
        assert!(page.title().starts_with("Error: "), "{}", page.title());
        let summary = page
            .error_summary()
            .unwrap_or_else(|| panic!("{fields:?}: no error summary"));
        assert!(summary.contains(message), "{fields:?}: {summary}");
        assert!(
            page.error_links().iter().any(|l| l == link),
            "{fields:?}: {:?}",
            page.error_links()
        );
        let target = &link[1..];
        assert!(
            page.body.contains(&format!("id=\"{target}\"")),
            "{link} points at nothing"
        );
        assert_eq!(page.csrf().as_deref(), Some(admin.csrf.as_str()));
    }
    // What was typed is kept.
    let page = admin
        .submit(
            &form,
            &[
                ("version", "0.2.0"),
                ("councils", "all"),
                ("config.max_names", "lots"),
                ("config.greeting", "Hiya"),
            ],
        )
        .await;
    assert!(
        page.body.contains("value=\"lots\"") && page.body.contains("value=\"Hiya\""),
        "{}",
        page.body
    );
    assert_eq!(
        app.get_json(&installs).await,
        nothing,
        "an invalid form stored something"
    );

    // Install 0.1.0 for one council.
    let page = admin
        .submit(
            &form,
            &[
                ("version", "0.1.0"),
                ("councils", "some"),
                ("council", "tandridge"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        page.location(),
        Some("/console/t/north-downs/installs/hello?done=installed")
    );
    let page = admin.get(page.location().unwrap()).await;
    assert!(
        page.text().contains("The service was installed"),
        "{}",
        page.text()
    );
    assert!(page.text().contains("Upgrade to 0.2.0"), "{}", page.text());
    let listed = app.get_json(&installs).await;
    assert_eq!(listed["installs"][0]["version"], "0.1.0", "{listed}");
    assert_eq!(
        listed["installs"][0]["councils"],
        json!(["tandridge"]),
        "{listed}"
    );
    assert_eq!(app.serve(A, "tandridge", "hello", "").await.0, 200);
    assert_eq!(app.serve(A, "mole-valley", "hello", "").await.0, 404);

    // The overview shows it against that council only.
    let page = admin.get(&format!("/console/t/{A}")).await;
    let rows: Vec<&str> = page.body.split("<tr").skip(1).collect();
    let row = |council: &str| {
        rows.iter()
            .find(|r| r.contains(council))
            .copied()
            .unwrap_or_else(|| panic!("no row for {council}"))
    };
    assert!(
        row("tandridge").contains("hello 0.1.0"),
        "{}",
        row("tandridge")
    );
    assert!(
        !row("mole-valley").contains("hello"),
        "{}",
        row("mole-valley")
    );
    let services = admin.get(&format!("/console/t/{A}/installs")).await;
    assert!(
        services.text().contains("hello 0.1.0 tandridge"),
        "{}",
        services.text()
    );

    // The audit entry is the API's, marked as made in the console.
    let entries = audit_of(app, A).await;
    let console_entry = entries
        .iter()
        .find(|e| e["action"] == "installs.put" && e["outcome"] == "201")
        .expect("an installs.put entry");
    let detail: Value = serde_json::from_str(console_entry["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["via"], "console", "{detail}");
    assert_eq!(detail["method"], "PUT");
    assert_eq!(detail["path"], "/api/v1/tenants/north-downs/installs/hello");
    assert_eq!(
        console_entry["actor"],
        format!("token:{}", token_id(&world.admin))
    );
    assert_eq!(console_entry["object"], "installs/hello");
    assert!(!console_entry["request_id"].as_str().unwrap().is_empty());
    let failed: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "installs.put" && e["outcome"] == "422")
        .collect();
    assert!(
        !failed.is_empty(),
        "the operation's refusal (unknown council) is audited"
    );
    // The same change through the API records the same action on the same object.
    let api = client_with(Some(&world.admin2))
        .put(app.url("/api/v1/tenants/north-downs/installs/hello"))
        .json(&json!({"version": "0.1.0", "councils": ["tandridge"], "config": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
    let entries = audit_of(app, A).await;
    let api_entry = entries.last().unwrap();
    assert_eq!(api_entry["action"], console_entry["action"]);
    assert_eq!(api_entry["object"], console_entry["object"]);
    let api_detail: Value = serde_json::from_str(api_entry["detail"].as_str().unwrap()).unwrap();
    assert_eq!(api_detail["path"], detail["path"]);
    assert_eq!(api_detail["method"], detail["method"]);
    assert!(api_detail.get("via").is_none(), "{api_detail}");

    // Upgrade with settings, then roll back.
    let page = admin.get(&format!("{form}?version=0.2.0")).await;
    assert!(page.body.contains("config-max_names"));
    let page = admin
        .submit(
            &form,
            &[
                ("version", "0.2.0"),
                ("councils", "all"),
                ("config.greeting", "Hiya"),
                ("config.max_names", "5"),
                ("config.loud", "true"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        page.location(),
        Some("/console/t/north-downs/installs/hello?done=saved")
    );
    let listed = app.get_json(&installs).await;
    assert_eq!(listed["installs"][0]["version"], "0.2.0");
    assert_eq!(listed["installs"][0]["councils"], "all");
    assert_eq!(
        listed["installs"][0]["config"],
        json!({"greeting": "Hiya", "max_names": 5, "loud": true})
    );
    let page = admin.get(&form).await;
    assert!(page.text().contains("Your changes were saved") || page.status == 200);
    let rollback = links(&page.body)
        .into_iter()
        .find(|l| l.ends_with("?version=0.1.0"))
        .expect("a roll back link");
    assert!(page.text().contains("Roll back to 0.1.0"));
    let page = admin.get(&rollback).await;
    assert_eq!(page.status, 200);
    let page = admin
        .submit(&form, &[("version", "0.1.0"), ("councils", "all")])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let listed = app.get_json(&installs).await;
    assert_eq!(listed["installs"][0]["version"], "0.1.0");
    assert_eq!(app.serve(A, "mole-valley", "hello", "").await.0, 200);

    // Uninstall: confirm, then gone.
    let confirm = admin.get(&format!("{form}/uninstall")).await;
    assert_eq!(confirm.status, 200);
    assert!(
        confirm
            .text()
            .contains("Are you sure you want to uninstall hello?"),
        "{}",
        confirm.text()
    );
    let page = admin.submit(&format!("{form}/uninstall"), &[]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        page.location(),
        Some("/console/t/north-downs/installs?done=uninstalled")
    );
    assert_eq!(app.get_json(&installs).await["installs"], json!([]));
    let deleted = audit_of(app, A)
        .await
        .into_iter()
        .rev()
        .find(|e| e["action"] == "installs.delete")
        .expect("installs.delete");
    assert!(
        deleted["detail"]
            .as_str()
            .unwrap()
            .contains("\"via\":\"console\"")
    );
    assert_eq!(
        admin.get(&format!("{form}/uninstall")).await.status,
        404,
        "nothing left to uninstall"
    );
    // Another alliance's install was never touched.
    assert_eq!(
        app.get_json(&format!("/api/v1/tenants/{B}/installs")).await["installs"][0]["version"],
        "0.1.0"
    );
}

// ---------------------------------------------------------------------------------------
// Redirects and methods.

async fn return_to_stays_in_the_console(backend: Backend) {
    let Some(world) = World::start(backend, |_| {}).await else {
        return;
    };
    let base = world.base();
    for evil in [
        "https://evil.example/",
        "//evil.example/console/",
        "///evil.example",
        "/\\evil.example",
        "/console\\..\\evil",
        "http://127.0.0.1:1/console/t/x",
        "javascript:alert(1)",
        "/consolex",
        "/api/v1/tenants",
        " /console/t/x",
        "",
    ] {
        let mut browser = Visitor::new(&base);
        let page = browser
            .get(&format!("/console/sign-in?return_to={}", urlencode(evil)))
            .await;
        assert_eq!(page.status, 200);
        let kept: Vec<String> = inputs(&page.body)
            .into_iter()
            .filter(|(n, _)| n == "return_to")
            .map(|(_, v)| v)
            .collect();
        assert_eq!(kept, ["/console"], "{evil:?}");
        let answer = browser.sign_in_with(&world.admin, evil).await;
        assert_eq!(answer.status, 303, "{evil:?}: {}", answer.body);
        assert_eq!(answer.location(), Some("/console"), "{evil:?}");
        // Already signed in, the sign-in page's redirect is as careful.
        let again = browser
            .get(&format!("/console/sign-in?return_to={}", urlencode(evil)))
            .await;
        assert_eq!(again.location(), Some("/console"), "{evil:?}");
    }
    // A path in the console is kept, query and all.
    let mut browser = Visitor::new(&base);
    let answer = browser
        .sign_in_with(&world.admin, "/console/catalogue?q=hello")
        .await;
    assert_eq!(answer.location(), Some("/console/catalogue?q=hello"));
}

/// `return_to` holding a control character: not a place to go, but no reason to fail.
async fn return_to_with_control_characters(backend: Backend) {
    let Some(world) = World::start(backend, |_| {}).await else {
        return;
    };
    let mut browser = Visitor::new(world.base());
    let answer = browser.sign_in_with(&world.admin, "/console/\u{1}x").await;
    assert!(
        answer.status == 303 && answer.location().is_some_and(|l| l.starts_with("/console")),
        "sign-in with return_to=/console/%01x: {} {:?} {}",
        answer.status,
        answer.location(),
        answer.body
    );
    let again = browser
        .get("/console/sign-in?return_to=%2Fconsole%2F%7Fx")
        .await;
    assert!(
        again.status == 303 && again.location().is_some_and(|l| l.starts_with("/console")),
        "signed-in GET /console/sign-in?return_to=/console/%7Fx: {} {}",
        again.status,
        again.body
    );
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn other_methods_are_refused_as_pages(backend: Backend) {
    let Some(world) = World::start(backend, |_| {}).await else {
        return;
    };
    let app = &world.app;
    let mut admin = world.as_(&world.admin).await;
    let pages = [
        "/console".to_string(),
        "/console/sign-in".to_string(),
        format!("/console/t/{A}"),
        format!("/console/t/{A}/installs"),
        format!("/console/t/{A}/installs/hello"),
        format!("/console/t/{A}/members"),
        format!("/console/t/{A}/tokens"),
        "/console/catalogue".to_string(),
        "/console/catalogue/hello".to_string(),
    ];
    // HEAD: as GET, without a body.
    for path in &pages {
        let get = admin.get(path).await;
        let request = admin.request(Method::HEAD, path);
        let head = admin.send(request).await;
        assert_eq!(head.status, get.status, "HEAD {path}");
        assert!(head.body.is_empty(), "HEAD {path} has a body");
        let mut nobody = Visitor::new(world.base());
        let request = nobody.request(Method::HEAD, path);
        let head = nobody.send(request).await;
        assert!(
            matches!(head.status, 200 | 303),
            "anonymous HEAD {path}: {}",
            head.status
        );
    }
    // Methods no page takes: 405, as a page, changing nothing.
    let before = state_of(app, A, true).await;
    for method in [Method::PUT, Method::DELETE, Method::PATCH, Method::OPTIONS] {
        for path in pages
            .iter()
            .chain([format!("/console/t/{A}/installs/hello/uninstall")].iter())
        {
            let request = admin.request(method.clone(), path).form(&[
                ("csrf", admin.csrf.as_str()),
                ("version", "0.1.0"),
                ("councils", "all"),
            ]);
            let page = admin.send(request).await;
            assert_eq!(page.status, 405, "{method} {path}: {}", page.body);
            assert!(page.is_console_page(), "{method} {path}: {:?}", page.body);
        }
    }
    assert_eq!(state_of(app, A, true).await, before);
    // GET on what only takes forms: refused, and still signed in.
    for path in [
        "/console/sign-out".to_string(),
        format!("/console/t/{A}/tokens/{}/revoke", token_id(&world.officer)),
    ] {
        let page = admin.get(&path).await;
        assert_eq!(page.status, 405, "GET {path}: {}", page.body);
    }
    assert_eq!(admin.get("/console").await.status, 200, "still signed in");
    // No such page.
    for path in [
        "/console/nowhere",
        "/console/t",
        "/console/t/",
        "/console/catalogue/no-such-plugin",
        "/console/catalogue/Not%20A%20Name",
    ] {
        let page = admin.get(path).await;
        assert_eq!(page.status, 404, "{path}: {}", page.body);
        assert!(page.is_console_page(), "{path}");
    }
    let page = admin.submit("/console/nowhere", &[]).await;
    assert_eq!(page.status, 404, "{}", page.body);
    // A form larger than any the console shows.
    let huge = "x".repeat(300 * 1024);
    let page = admin
        .submit(
            &format!("/console/t/{A}/tokens"),
            &[("name", &huge), ("role", "officer")],
        )
        .await;
    assert_eq!(page.status, 413, "{}", page.body);
    assert!(page.is_console_page());
}

/// A person who follows a link to (or reloads) an address that only takes forms gets a
/// console page saying so, as for every other method the console does not take.
async fn get_on_form_only_routes_is_a_page(backend: Backend) {
    let Some(world) = World::start(backend, |_| {}).await else {
        return;
    };
    let mut admin = world.as_(&world.admin).await;
    for path in [
        "/console/sign-out".to_string(),
        format!("/console/t/{A}/tokens/{}/revoke", token_id(&world.officer)),
    ] {
        let page = admin.get(&path).await;
        assert_eq!(page.status, 405, "GET {path}: {}", page.body);
        assert!(
            page.is_console_page(),
            "GET {path} answers 405 with {:?} (content-type {:?}), not a console page",
            page.body,
            page.headers.get("content-type")
        );
    }
}

/// A browser posting a page's form sends `Origin: null` when the page's referrer policy is
/// `no-referrer` (Fetch, "append a request `Origin` header"), and the forms guard refuses
/// `Origin: null`; so a console page must let the browser name its origin on its own forms.
/// (The browser test shows the refusal in Chromium.)
async fn pages_let_browsers_name_their_origin(backend: Backend) {
    let Some(world) = World::start(backend, |_| {}).await else {
        return;
    };
    let mut admin = world.as_(&world.admin).await;
    for path in ["/console/sign-in", "/console", "/console/catalogue"] {
        let mut page = admin.get(path).await;
        if path == "/console/sign-in" {
            page = Visitor::new(world.base()).get(path).await;
        }
        assert_eq!(page.status, 200, "{path}");
        let header = page
            .headers
            .get("referrer-policy")
            .map(|v| v.to_str().unwrap().to_string());
        let meta = tags(&page.body, "meta")
            .into_iter()
            .map(|(_, t)| attrs(t))
            .find(|a| a.get("name").map(String::as_str) == Some("referrer"))
            .and_then(|a| a.get("content").cloned());
        let policy = meta.clone().or(header.clone()).unwrap_or_default();
        assert_ne!(
            policy, "no-referrer",
            "{path}: the page's referrer policy (header {header:?}, meta {meta:?}) makes browsers post its forms with Origin: null, which the console refuses"
        );
    }
    // What such a browser sends is indeed refused.
    let page = admin
        .send(
            admin
                .request(Method::POST, "/console/sign-out")
                .header("origin", "null")
                .form(&[("csrf", admin.csrf.as_str())]),
        )
        .await;
    assert_eq!(page.status, 403);
}

/// What people and publishers type (alliance, council, plugin, token and member names) and
/// what anyone puts in an address is shown as text on every page, and no query string breaks
/// a page.
async fn hostile_text_is_shown_as_text(backend: Backend) {
    let Some(world) = World::start(backend, |_| {}).await else {
        return;
    };
    let app = &world.app;
    const MARKS: [&str; 4] = ["<script>alert", "<img src=x", "<svg onload", "<b>bold</b>"];
    let tenant = json!({"id": "markup", "name": "<script>alert('tenant')</script> & \"Co\"", "councils": [
        {"id": "imgland", "name": "<img src=x onerror=alert(1)>"},
        {"id": "plain", "name": "Plain Council"},
    ]});
    expect_json(app.post_json("/api/v1/tenants", &tenant).await, 201).await;
    let hello = guildhall_test_artifacts::plugin("hello");
    let manifest = hello
        .manifest()
        .replace("name = \"hello\"", "name = \"hello-markup\"")
        .replace(
            "description = \"Says hello from the council; the smallest possible plugin\"",
            "description = \"<script>alert('description')</script> <b>bold</b>\"",
        );
    assert!(
        manifest.contains("hello-markup") && manifest.contains("<b>bold"),
        "{manifest}"
    );
    let published = app
        .publish("hello-markup", &manifest, hello.bytes(), None)
        .await;
    expect_json(published, 201).await;
    let r = app
        .install(
            "markup",
            "hello-markup",
            "0.1.0",
            json!(["imgland"]),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let admin_token = app.token("tenant-admin", Some("markup"), None).await;
    let mut admin = world.as_(&admin_token).await;

    // Typed into forms: a token's name, a member's identifier; shown again escaped.
    let page = admin
        .submit(
            "/console/t/markup/tokens",
            &[("name", "<b>bold</b>"), ("role", "officer"), ("days", "1")],
        )
        .await;
    assert_eq!(page.status, 201, "{}", page.body);
    let page = admin
        .submit(
            "/console/t/markup/members",
            &[
                ("issuer", "north-downs-idp"),
                ("sub", "\"><script>alert('sub')</script>"),
                ("roles", "auditor"),
            ],
        )
        .await;
    assert!(page.status == 303 || page.status == 422, "{}", page.body);
    for (name, body) in [
        ("tokens", &admin.get("/console/t/markup/tokens").await.body),
        ("members answer", &page.body),
    ] {
        for mark in MARKS {
            assert!(!body.contains(mark), "{name} shows {mark} as markup");
        }
    }

    let (pages, _) = crawl(&mut admin).await;
    assert!(pages.len() >= 8, "{pages:?}");
    let garbage = "q=%3Cscript%3Ealert(9)%3C%2Fscript%3E&after=-1&limit=abc&from=2026-13-45&to=%3Cb%3Ebold%3C%2Fb%3E&basis=%3Csvg%20onload%3D1%3E&version=%3Cimg%20src%3Dx%3E&done=%3Cscript%3Ealert(1)";
    let html = |page: &Page| {
        page.headers
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/html"))
    };
    for path in pages.keys() {
        let page = admin.get(path).await;
        if !html(&page) {
            // A download (the usage CSV): not a page a browser renders.
            assert!(page.headers.get("content-disposition").is_some(), "{path}");
            continue;
        }
        for mark in MARKS {
            assert!(!page.body.contains(mark), "{path} shows {mark} as markup");
        }
        let odd = format!(
            "{path}{}{garbage}",
            if path.contains('?') { "&" } else { "?" }
        );
        let page = admin.get(&odd).await;
        assert!(
            page.status < 500,
            "GET {odd}: {}\n{}",
            page.status,
            page.body
        );
        if !html(&page) {
            continue;
        }
        for mark in MARKS
            .iter()
            .chain(&["<script>alert(9)", "<svg onload=1", "<img src=x>"])
        {
            assert!(!page.body.contains(mark), "{odd} shows {mark} as markup");
        }
        if page.status >= 400 {
            assert!(page.is_console_page(), "{odd}: {}", page.body);
        }
    }
}

both!(
    token_sign_in,
    sign_in_failures_are_limited,
    forged_forms_change_nothing,
    alliances_are_hidden_from_each_other,
    roles_see_and_do_only_what_they_may,
    signed_out_sessions_stay_out,
    revoked_tokens_end_their_sessions_on_every_replica,
    idle_and_old_sessions_end,
    a_session_in_use_does_not_go_idle,
    install_through_the_console,
    return_to_stays_in_the_console,
    return_to_with_control_characters,
    other_methods_are_refused_as_pages,
    get_on_form_only_routes_is_a_page,
    pages_let_browsers_name_their_origin,
    hostile_text_is_shown_as_text,
);

mod subject_requests;
