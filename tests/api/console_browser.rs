//! The console with a real identity provider: `tests/browser/oidc-provider.mjs` (the npm
//! `oidc-provider` on loopback, accounts alice with a second factor, bob with a password
//! only, carol with a hardware key).
//!
//! - Over plain HTTP (Node.js only): the authorization code flow through the console's
//!   sign-in routes, the refusals of a replayed, cancelled or foreign answer, and
//!   `require_mfa`.
//! - In Chromium (`tests/browser/console-journeys.mjs`): the journeys people make, axe on
//!   every page each role reaches with JavaScript on and off, an install and a subject
//!   access request with the keyboard alone, and screenshots.
//!
//! Missing Node.js, Chromium or the kit's packages fail these tests with the command that
//! installs them; they are never skipped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use guildhall::config::Listen;
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::browser_kit::{INSTALL, browser_dir, require_chromium, require_node};
use crate::console::{SESSION_COOKIE, SIGN_IN_COOKIE, Visitor, links, publish_hello_versions};
use crate::helpers::{Backend, TestApp, expect_json, repo_root};

const CLIENT_ID: &str = "guildhall-console";
const CLIENT_SECRET: &str = "console-test-secret-0123456789";
const ISSUER_ID: &str = "test-op";
const DISPLAY_NAME: &str = "Test identity provider";
const A: &str = "north-downs";

/// A port nothing listens on now, for a server whose address must be known before its
/// configuration is written.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn callback(port: u16) -> String {
    format!("http://127.0.0.1:{port}/console/sign-in/callback")
}

/// `oidc-provider.mjs` running as a child process.
#[derive(Debug)]
pub(crate) struct Provider {
    child: Child,
    pub issuer: String,
    log: Arc<Mutex<String>>,
}

impl Provider {
    /// Starts the provider with one client whose redirect URIs are `redirect_uris`.
    pub fn start(redirect_uris: &[String]) -> Self {
        require_node();
        let mut child = Command::new("node")
            .arg(browser_dir().join("oidc-provider.mjs"))
            .current_dir(browser_dir())
            .env("OIDC_CLIENT_ID", CLIENT_ID)
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_REDIRECT_URI", redirect_uris.join(" "))
            .env("OIDC_PORT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start oidc-provider.mjs: {e}. {INSTALL}"));
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(issuer) = line.strip_prefix("OIDC_READY ") {
                    tx.send(issuer.trim().to_string()).ok();
                }
            }
        });
        // Generous: the provider makes an RSA key at start, and on a loaded two-core
        // machine (Chromium journeys running beside it) that has taken over 30 s.
        let issuer = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(issuer) => issuer,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "oidc-provider.mjs did not print OIDC_READY within 120 s:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        Self { child, issuer, log }
    }

    /// `[[auth.oidc]]` for this provider.
    pub fn issuer_config(&self, require_mfa: bool) -> guildhall_authz::OidcIssuer {
        serde_json::from_value(json!({
            "id": ISSUER_ID,
            "issuer": self.issuer,
            "audience": CLIENT_ID,
            "jwks_url": format!("{}/jwks", self.issuer),
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "display_name": DISPLAY_NAME,
            "sign_in": true,
            "require_mfa": require_mfa,
        }))
        .expect("an issuer")
    }

    /// What the provider wrote to stderr.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A console on `port` (SQLite) that offers sign-in through `provider`.
async fn console_on(
    port: u16,
    provider: &Provider,
    require_mfa: bool,
    token_sign_in: Option<bool>,
) -> TestApp {
    let issuer = provider.issuer_config(require_mfa);
    TestApp::spawn_with(Backend::Sqlite, |c| {
        c.listen = Listen(SocketAddr::from(([127, 0, 0, 1], port)));
        c.console.public_url = Some(format!("http://127.0.0.1:{port}"));
        c.console.token_sign_in = token_sign_in;
        c.auth.oidc = vec![issuer];
    })
    .await
    .expect("SQLite is always available")
}

/// An alliance of two councils, another alliance, hello 0.1.0 and 0.2.0 published, and
/// `sub` at the provider bound as tenant-admin of the first.
async fn alliance(app: &TestApp, admins: &[&str]) {
    for tenant in [
        json!({"id": A, "name": "North Downs Shared Services", "councils": [
            {"id": "tandridge", "name": "Tandridge District Council", "gss_code": "E07000215"},
            {"id": "mole-valley", "name": "Mole Valley District Council", "gss_code": "E07000210"},
        ]}),
        json!({"id": "the-marches", "name": "The Marches Digital Partnership", "councils": [
            {"id": "shropshire", "name": "Shropshire Council"},
        ]}),
    ] {
        expect_json(app.post_json("/api/v1/tenants", &tenant).await, 201).await;
    }
    publish_hello_versions(app).await;
    for sub in admins {
        let bound = app
            .put_json(
                &format!("/api/v1/tenants/{A}/members/{sub}"),
                &json!({"issuer": ISSUER_ID, "roles": ["tenant-admin"]}),
            )
            .await;
        expect_json(bound, 201).await;
    }
}

/// Follows a sign-in from the console's start link through the provider's login form as
/// `user`; returns the URL the provider sends the browser back to. `cancel` presses Cancel
/// instead.
async fn through_provider(
    browser: &mut Visitor,
    start: &str,
    user: &str,
    password: &str,
    cancel: bool,
) -> String {
    let go = browser.get(start).await;
    assert_eq!(go.status, 303, "{start}: {}", go.body);
    let authorize = reqwest::Url::parse(go.location().unwrap()).expect("an absolute URL");
    let query: std::collections::BTreeMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(
        query["redirect_uri"].ends_with("/console/sign-in/callback"),
        "{query:?}"
    );
    assert!(
        query["state"].len() >= 32 && query["nonce"].len() >= 32,
        "{query:?}"
    );
    let cookie = go.set_cookie(SIGN_IN_COOKIE).expect("the sign-in cookie");
    assert!(
        cookie.starts_with(&format!("{SIGN_IN_COOKIE}={};", query["state"])),
        "the browser holds the state: {cookie}"
    );
    let redirect_uri = query["redirect_uri"].clone();
    let mut url = authorize;
    for _ in 0..12 {
        let page = browser.get(url.as_str()).await;
        if (300..400).contains(&page.status) {
            let next = url.join(page.location().unwrap()).unwrap();
            if next.as_str().starts_with(&redirect_uri) {
                return next.to_string();
            }
            url = next;
            continue;
        }
        assert_eq!(page.status, 200, "{url}: {}", page.body);
        let form = crate::console::forms(&page.body)
            .into_iter()
            .find(|f| f.method == "post")
            .unwrap_or_else(|| panic!("no login form at {url}: {}", page.body));
        let action = url.join(&form.action).unwrap();
        let fields: Vec<(&str, &str)> = if cancel {
            vec![("cancel", "yes")]
        } else {
            vec![("login", user), ("password", password)]
        };
        let answer = browser.post(action.as_str(), &fields).await;
        assert!(
            (300..400).contains(&answer.status),
            "login: {} {}",
            answer.status,
            answer.body
        );
        url = action.join(answer.location().unwrap()).unwrap();
        if url.as_str().starts_with(&redirect_uri) {
            return url.to_string();
        }
    }
    panic!("the provider never sent the browser back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_provider_sign_in_over_http() {
    let (port, strict_port) = (free_port(), free_port());
    let provider = Provider::start(&[callback(port), callback(strict_port)]);
    let app = console_on(port, &provider, false, None).await;
    alliance(&app, &["alice"]).await;
    let base = format!("http://127.0.0.1:{port}");

    // The sign-in page offers the provider; with a provider, token sign-in is off.
    let mut browser = Visitor::new(&base);
    let page = browser
        .get("/console/sign-in?return_to=%2Fconsole%2Ft%2Fnorth-downs")
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.text()
            .contains(&format!("Sign in with {DISPLAY_NAME}")),
        "{}",
        page.text()
    );
    assert!(
        !page.body.contains("name=\"token\""),
        "a token form is offered"
    );
    let start = links(&page.body)
        .into_iter()
        .find(|l| l.starts_with(&format!("/console/sign-in/oidc/{ISSUER_ID}")))
        .expect("a link to the provider");
    assert_eq!(
        start,
        "/console/sign-in/oidc/test-op?return_to=%2Fconsole%2Ft%2Fnorth-downs"
    );
    let operator = app.token("operator", None, None).await;
    let refused = browser.sign_in_with(&operator, "/console").await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.text().contains("switched off"),
        "{}",
        refused.text()
    );
    assert!(refused.set_cookie(SESSION_COOKIE).is_none());
    let nowhere = browser.get("/console/sign-in/oidc/no-such-provider").await;
    assert_eq!(nowhere.status, 404);

    // alice signs in and lands where she was going.
    let back = through_provider(&mut browser, &start, "alice", "alice-password", false).await;
    let landed = browser.get(&back).await;
    assert_eq!(landed.status, 303, "{}\n{}", landed.body, provider.log());
    assert_eq!(landed.location(), Some("/console/t/north-downs"));
    let session = landed.set_cookie(SESSION_COOKIE).expect("a session");
    for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attr), "{session}");
    }
    assert!(
        !browser.cookies.contains_key(SIGN_IN_COOKIE),
        "the sign-in cookie is removed"
    );
    let page = browser.get("/console/t/north-downs").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.text().contains("alice (test-op)"), "{}", page.text());
    assert_eq!(page.tenant_nav().len(), 8, "{:?}", page.tenant_nav());

    // The same answer again (the browser's back button, or someone who saw the URL).
    let again = browser.get(&back).await;
    assert_eq!(again.status, 401, "{}", again.body);
    assert!(
        again.error_summary().unwrap().contains("already been used"),
        "{}",
        again.text()
    );
    assert!(again.set_cookie(SESSION_COOKIE).is_none());
    // Still signed in as before.
    assert_eq!(browser.get("/console").await.status, 200);

    // An answer taken to another browser does not sign that browser in.
    let mut victim = Visitor::new(&base);
    let page = victim.get("/console/sign-in").await;
    let start = links(&page.body)
        .into_iter()
        .find(|l| l.contains("/sign-in/oidc/"))
        .unwrap();
    let back = through_provider(&mut victim, &start, "alice", "alice-password", false).await;
    let mut thief = Visitor::new(&base);
    let stolen = thief.get(&back).await;
    assert_eq!(stolen.status, 401, "{}", stolen.body);
    assert!(
        stolen.error_summary().unwrap().contains("another browser"),
        "{}",
        stolen.text()
    );
    assert!(thief.session_secret().is_none());

    // Cancelling at the provider.
    let mut cancels = Visitor::new(&base);
    let back = through_provider(&mut cancels, "/console/sign-in/oidc/test-op", "", "", true).await;
    assert!(back.contains("error=access_denied"), "{back}");
    let page = cancels.get(&back).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(
        page.error_summary()
            .unwrap()
            .contains("did not sign you in"),
        "{}",
        page.text()
    );
    assert!(cancels.session_secret().is_none());

    // Answers the console never asked for.
    for query in ["", "?code=abc", "?state=abc&code=abc", "?state=&code=abc"] {
        let mut stranger = Visitor::new(&base);
        let page = stranger
            .get(&format!("/console/sign-in/callback{query}"))
            .await;
        assert_eq!(page.status, 401, "{query}: {}", page.body);
        assert!(page.error_summary().is_some());
        assert!(stranger.session_secret().is_none());
    }

    // bob has no role anywhere: signed in, he sees no alliance.
    let mut bob = Visitor::new(&base);
    let back = through_provider(
        &mut bob,
        "/console/sign-in/oidc/test-op",
        "bob",
        "bob-password",
        false,
    )
    .await;
    assert_eq!(bob.get(&back).await.status, 303);
    let page = bob.get("/console").await;
    assert_eq!(page.status, 200);
    assert!(
        page.text()
            .contains("You do not hold a role in any alliance yet"),
        "{}",
        page.text()
    );
    assert_eq!(bob.get("/console/t/north-downs").await.status, 404);

    // alice's membership withdrawn: her session stays, her access goes at once.
    let removed = app
        .put_json(
            &format!("/api/v1/tenants/{A}/members/oidc:test-op:alice"),
            &json!({"roles": []}),
        )
        .await;
    assert_eq!(removed.status(), 204);
    assert_eq!(browser.get("/console/t/north-downs").await.status, 404);

    // With require_mfa, bob (a password only) is refused and alice (with a code) is not.
    let strict = console_on(strict_port, &provider, true, None).await;
    alliance(&strict, &["alice", "bob"]).await;
    let strict_base = format!("http://127.0.0.1:{strict_port}");
    let mut bob = Visitor::new(&strict_base);
    let back = through_provider(
        &mut bob,
        "/console/sign-in/oidc/test-op",
        "bob",
        "bob-password",
        false,
    )
    .await;
    let page = bob.get(&back).await;
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(
        page.error_summary()
            .unwrap()
            .contains("requires a second factor"),
        "{}",
        page.text()
    );
    assert!(bob.session_secret().is_none());
    let mut alice = Visitor::new(&strict_base);
    let back = through_provider(
        &mut alice,
        "/console/sign-in/oidc/test-op",
        "alice",
        "alice-password",
        false,
    )
    .await;
    assert_eq!(alice.get(&back).await.status, 303);
    assert_eq!(alice.get("/console/t/north-downs").await.status, 200);
    // carol's hardware key is a second factor too.
    let mut carol = Visitor::new(&strict_base);
    let back = through_provider(
        &mut carol,
        "/console/sign-in/oidc/test-op",
        "carol",
        "carol-password",
        false,
    )
    .await;
    assert_eq!(carol.get(&back).await.status, 303);
}

/// Each identity-provider sign-in a browser begins writes a row until the provider answers;
/// a client asking for the redirect in a loop is stopped at the limit, and its rows with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_starts_are_limited_per_client() {
    let port = free_port();
    let provider = Provider::start(&[callback(port)]);
    let app = console_on(port, &provider, false, None).await;
    let base = format!("http://127.0.0.1:{port}");
    let mut flood = Visitor::new(&base);
    let start = format!("/console/sign-in/oidc/{ISSUER_ID}");
    let limit = guildhall_console::Console::SIGN_IN_STARTS_PER_MINUTE;
    for i in 0..limit {
        let page = flood.get(&start).await;
        assert_eq!(page.status, 303, "start {i}: {}", page.body);
    }
    let refused = flood.get(&start).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.headers.contains_key("retry-after"));
    assert!(
        refused.body.contains("too many attempts"),
        "{}",
        refused.body
    );
    let store = app.admin_store().await;
    let conn = store.connection();
    let pending = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT COUNT(*) AS n FROM console_sign_ins",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(pending, i64::from(limit), "rows written past the limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn console_journeys_in_chromium() {
    let chromium = require_chromium();
    require_node();
    let started = Instant::now();
    let port = free_port();
    let provider = Provider::start(&[callback(port)]);
    let app = console_on(port, &provider, true, Some(true)).await;
    alliance(&app, &["alice"]).await;
    let officer = app.token("officer", Some(A), None).await;
    let auditor = app.token("auditor", Some(A), None).await;
    let dpo = app.token("data-protection-officer", Some(A), None).await;
    let operator = app.token("operator", None, None).await;
    let base = format!("http://127.0.0.1:{port}");
    let screenshots = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target"))
        .join("console-screenshots");

    let run = tokio::process::Command::new("node")
        .arg(browser_dir().join("console-journeys.mjs"))
        .current_dir(browser_dir())
        .env("BASE_URL", &base)
        .env("TENANT", A)
        .env("COUNCILS", "tandridge,mole-valley")
        .env("OTHER_TENANT", "the-marches")
        .env("PROVIDER_NAME", DISPLAY_NAME)
        .env("OFFICER_TOKEN", &officer)
        .env("AUDITOR_TOKEN", &auditor)
        .env("DPO_TOKEN", &dpo)
        .env("OPERATOR_TOKEN", &operator)
        .env("SCREENSHOT_DIR", &screenshots)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(900), run)
        .await
        .expect("the journeys finish within 15 minutes")
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{chromium}\n{stdout}");
    if !stderr.trim().is_empty() {
        println!("stderr:\n{stderr}");
    }
    println!(
        "console journeys took {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        screenshots.display()
    );
    assert!(
        output.status.success(),
        "console-journeys.mjs failed ({}):\n{stdout}\n{stderr}\nprovider:\n{}",
        output.status,
        provider.log()
    );
}
