//! Citizens' sessions, the platform's feedback page and alliances' brands, over HTTP, on
//! SQLite and PostgreSQL, tried the way an attacker would: copied cookies, cookies renamed
//! for another council, tenant or plugin, posts without the token or with another
//! session's, methods other than POST, a plugin planting the platform's cookie.
//!
//! `fixture-session-probe` exposes its session over HTTP (`plugins/fixtures/session-probe`).

use base64::Engine as _;
use guildhall_domain::{CouncilId, PluginName, TenantId};
use guildhall_store::SessionKey;
use reqwest::header::{ACCEPT, CONTENT_TYPE, COOKIE, SET_COOKIE};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, expect_json, expect_problem, status_and_text};

const PROBE: &str = "fixture-session-probe";
const T: &str = "north-downs";
const C: &str = "tandridge";

crate::on_both_databases!(
    sessions_belong_to_one_citizen_council_plugin_and_tenant,
    posts_without_the_sessions_token_never_reach_the_plugin,
    sessions_are_capped_and_end,
    feedback_is_a_page_and_json_still_works,
    brands_reach_the_pages_and_bad_ones_change_nothing,
    a_journey_posted_many_times_at_once_sends_one_report,
);

/// The cookie a plugin's sessions use for one council of one tenant (the server runs with
/// the default, `Secure`, `__Host-` cookies).
fn cookie_name(tenant: &str, council: &str, plugin: &str) -> String {
    format!("__Host-guildhall.{tenant}.{council}.{plugin}")
}

/// The value of the `Set-Cookie` for `name`, if the response sets one ("" for a removal).
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (pair, _) = v.split_once(';').unwrap_or((v, ""));
            let (n, value) = pair.split_once('=')?;
            (n == name).then(|| value.to_string())
        })
}

/// A browser: one citizen holding the cookies the platform set for them.
pub(crate) struct Citizen<'a> {
    app: &'a TestApp,
    cookies: Vec<(String, String)>,
}

impl<'a> Citizen<'a> {
    pub(crate) fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let value = value.to_str().unwrap();
            let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
            let (name, secret) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !attributes.contains("Max-Age=0") {
                self.cookies.push((name.to_string(), secret.to_string()));
            }
        }
    }

    pub(crate) async fn send(&mut self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let request = if self.cookies.is_empty() {
            request
        } else {
            request.header(COOKIE, self.cookie_header())
        };
        let response = request.send().await.expect("request");
        self.keep(&response);
        response
    }

    pub(crate) async fn get(&mut self, path: &str) -> (u16, String) {
        let request = self.app.anonymous.get(self.app.url(path));
        status_and_text(self.send(request).await).await
    }

    pub(crate) async fn post_form(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let request = self.app.anonymous.post(self.app.url(path)).form(form);
        self.send(request).await
    }

    fn secret(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
}

fn probe(tenant: &str, council: &str, path: &str) -> String {
    format!("/s/{tenant}/{council}/{PROBE}/{path}")
}

async fn with_probe(app: &TestApp) {
    app.create_example_tenants().await;
    app.publish_built(PROBE).await;
    for tenant in [T, "the-marches"] {
        let response = app.install_for(tenant, PROBE, "all").await;
        assert!(response.status().is_success(), "install in {tenant}");
    }
}

/// Every stored session's key, read as the database's owner (behind every wall).
async fn session_hashes(app: &TestApp) -> Vec<String> {
    let store = app.admin_store().await;
    let db = store.connection();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT id_hash FROM citizen_sessions ORDER BY id_hash",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get::<String>("", "id_hash").unwrap())
        .collect()
}

/// The sha256 (hex) the store keeps for a secret.
fn hashed(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

async fn sessions_belong_to_one_citizen_council_plugin_and_tenant(app: TestApp) {
    with_probe(&app).await;
    // report-a-problem keeps sessions too: a second plugin for the copied cookie.
    app.install_reports(T).await;

    let mut alice = Citizen::new(&app);
    assert_eq!(
        alice.get(&probe(T, C, "get/answer")).await,
        (404, "none".into())
    );
    assert!(alice.cookies.is_empty(), "reading starts no session");
    assert_eq!(alice.get(&probe(T, C, "set/answer/42")).await.0, 200);
    let name = cookie_name(T, C, PROBE);
    let secret = alice.secret(&name).expect("the session's cookie");
    assert_eq!(
        alice.get(&probe(T, C, "get/answer")).await,
        (200, "42".into())
    );

    // The database holds the secret's hash, never the secret.
    assert_eq!(session_hashes(&app).await, vec![hashed(&secret)]);

    // Another citizen sees nothing of Alice's and keeps their own.
    let mut bob = Citizen::new(&app);
    assert_eq!(bob.get(&probe(T, C, "get/answer")).await.0, 404);
    assert_eq!(bob.get(&probe(T, C, "set/answer/7")).await.0, 200);
    assert_eq!(bob.get(&probe(T, C, "get/answer")).await, (200, "7".into()));
    assert_eq!(
        alice.get(&probe(T, C, "get/answer")).await,
        (200, "42".into())
    );

    // Alice's secret copied into the cookie of another council, tenant or plugin finds
    // nothing there, and the platform tells the browser to drop it.
    for (tenant, council, plugin, path) in [
        (T, "mole-valley", PROBE, "get/answer"),
        ("the-marches", "shropshire", PROBE, "get/answer"),
        (T, C, "report-a-problem", ""),
    ] {
        let other = cookie_name(tenant, council, plugin);
        let response = app
            .anonymous
            .get(app.url(&format!("/s/{tenant}/{council}/{plugin}/{path}")))
            .header(COOKIE, format!("{other}={secret}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            set_cookie(&response, &other).as_deref(),
            Some(""),
            "{tenant}/{council}/{plugin}: the copied cookie is removed"
        );
        if plugin == PROBE {
            assert_eq!(status_and_text(response).await, (404, "none".into()));
        }
    }
    // The cookie named for Tandridge, sent to Mole Valley's address, is not Mole Valley's.
    let response = app
        .anonymous
        .get(app.url(&probe(T, "mole-valley", "get/answer")))
        .header(COOKIE, format!("{name}={secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_text(response).await, (404, "none".into()));
    // Nothing was created by those requests.
    assert_eq!(session_hashes(&app).await.len(), 2);

    // A plugin never plants a cookie: not the platform's, not its own.
    let response = app
        .anonymous
        .get(app.url(&probe(T, C, &format!("plant-cookie/{name}"))))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get(SET_COOKIE).is_none());
}

async fn posts_without_the_sessions_token_never_reach_the_plugin(app: TestApp) {
    with_probe(&app).await;
    let mut alice = Citizen::new(&app);
    let (status, token) = alice.get(&probe(T, C, "token")).await;
    assert_eq!(status, 200);
    assert_eq!(token.len(), 43);
    let mut bob = Citizen::new(&app);
    let (_, bobs_token) = bob.get(&probe(T, C, "token")).await;

    // Without the token, with a wrong one, with another session's, or with the token in
    // the wrong place: 403 before the plugin runs, so nothing is stored.
    for form in [
        vec![("value", "forged")],
        vec![("value", "forged"), ("csrf", "")],
        vec![("value", "forged"), ("csrf", &token[..42])],
        vec![("value", "forged"), ("csrf", bobs_token.as_str())],
    ] {
        let response = alice.post_form(&probe(T, C, "set/answer"), &form).await;
        expect_problem(response, 403).await;
    }
    let response = alice
        .send(
            app.anonymous
                .post(app.url(&probe(T, C, "set/answer")))
                .json(&json!({"value": "forged", "csrf": token})),
        )
        .await;
    expect_problem(response, 403).await;
    for method in [
        reqwest::Method::PUT,
        reqwest::Method::PATCH,
        reqwest::Method::DELETE,
        reqwest::Method::OPTIONS,
    ] {
        let response = alice
            .send(
                app.anonymous
                    .request(method.clone(), app.url(&probe(T, C, "set/answer"))),
            )
            .await;
        assert_eq!(response.status(), 403, "{method}");
    }
    assert_eq!(alice.get(&probe(T, C, "get/answer")).await.0, 404);

    // A browser asking for a page gets the GOV.UK page, still 403.
    let response = alice
        .send(
            app.anonymous
                .post(app.url(&probe(T, C, "set/answer")))
                .header(ACCEPT, "text/html,application/xhtml+xml")
                .form(&[("value", "forged")]),
        )
        .await;
    assert_eq!(response.status(), 403);
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    assert!(
        page.contains("Sorry, there is a problem with this form"),
        "{page}"
    );
    assert!(page.contains("Tandridge District Council"), "{page}");

    // With the token, in the form or the header, the post reaches the plugin.
    let response = alice
        .post_form(
            &probe(T, C, "set/answer"),
            &[("value", "yes"), ("csrf", &token)],
        )
        .await;
    assert_eq!(status_and_text(response).await, (200, "stored".into()));
    assert_eq!(
        alice.get(&probe(T, C, "get/answer")).await,
        (200, "yes".into())
    );
    // Answers for a session are never cached.
    let response = alice
        .send(app.anonymous.get(app.url(&probe(T, C, "get/answer"))))
        .await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let response = alice
        .send(
            app.anonymous
                .post(app.url(&probe(T, C, "clear")))
                .header("x-csrf-token", &token),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(alice.get(&probe(T, C, "get/answer")).await.0, 404);
    assert_eq!(alice.get(&probe(T, C, "token")).await, (200, token.clone()));

    // A post with a cookie for no live session: "ended", and the cookie is removed.
    let name = cookie_name(T, C, PROBE);
    let unknown = "A".repeat(43);
    let response = app
        .anonymous
        .post(app.url(&probe(T, C, "set/answer")))
        .header(COOKIE, format!("{name}={unknown}"))
        .form(&[("value", "x"), ("csrf", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(set_cookie(&response, &name).as_deref(), Some(""));
    let problem = expect_problem(response, 403).await;
    assert!(
        problem["detail"].as_str().unwrap().contains("ended"),
        "{problem}"
    );

    // A post without any cookie reaches the plugin with no session: it cannot start one.
    let response = app
        .anonymous
        .post(app.url(&probe(T, C, "set/answer")))
        .form(&[("value", "x")])
        .send()
        .await
        .unwrap();
    assert!(response.headers().get(SET_COOKIE).is_none());
    assert_eq!(status_and_text(response).await, (409, "NoSession".into()));
    assert_eq!(
        session_hashes(&app).await.len(),
        2,
        "only Alice's and Bob's sessions exist"
    );
}

async fn sessions_are_capped_and_end(app: TestApp) {
    with_probe(&app).await;
    let mut alice = Citizen::new(&app);
    let (status, body) = alice.get(&probe(T, C, "big/70000")).await;
    assert_eq!((status, body.as_str()), (409, "TooLarge(65536)"));
    assert_eq!(alice.get(&probe(T, C, "big/60000")).await.0, 200);
    assert_eq!(alice.get(&probe(T, C, "set/answer/42")).await.0, 200);
    let (status, body) = alice.get(&probe(T, C, "big/65600")).await;
    assert_eq!((status, body.as_str()), (409, "TooLarge(65536)"));
    assert_eq!(
        alice.get(&probe(T, C, "get/answer")).await,
        (200, "42".into())
    );
    let (_, token) = alice.get(&probe(T, C, "token")).await;

    // Unused past the idle timeout (30 minutes by default), the session ends with its data.
    let name = cookie_name(T, C, PROBE);
    let secret = alice.secret(&name).unwrap();
    let store = app.store().await;
    let scope = store
        .scope(&TenantId::parse(T).unwrap())
        .await
        .unwrap()
        .unwrap();
    let (council, plugin) = (
        CouncilId::parse(C).unwrap(),
        PluginName::parse(PROBE).unwrap(),
    );
    let id_hash = hashed(&secret);
    let key = SessionKey {
        council: &council,
        plugin: &plugin,
        id_hash: &id_hash,
    };
    store
        .citizen_sessions(&scope)
        .touch(
            key,
            time::OffsetDateTime::now_utc() - time::Duration::minutes(31),
        )
        .await
        .unwrap();
    let response = app
        .anonymous
        .post(app.url(&probe(T, C, "set/answer")))
        .header(COOKIE, format!("{name}={secret}"))
        .header(ACCEPT, "text/html")
        .form(&[("value", "late"), ("csrf", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(set_cookie(&response, &name).as_deref(), Some(""));
    let page = response.text().await.unwrap();
    assert!(page.contains("Your session has ended"), "{page}");
    assert!(
        session_hashes(&app).await.is_empty(),
        "the ended session is deleted"
    );
    let (status, _) = alice.get(&probe(T, C, "get/answer")).await;
    assert_eq!(status, 404);
}

async fn feedback_is_a_page_and_json_still_works(app: TestApp) {
    with_probe(&app).await;
    let path = format!("/s/{T}/{C}/{PROBE}/_feedback");
    let response = app.anonymous.get(app.url(&path)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    for expected in [
        "Give feedback on this service",
        "name=\"rating\"",
        "name=\"comment\"",
        "Tandridge District Council",
        "North Downs Shared Services",
    ] {
        assert!(page.contains(expected), "{expected}: {page}");
    }
    // A missing rating: the form again, with GOV.UK's error summary; nothing stored.
    let response = app
        .anonymous
        .post(app.url(&path))
        .form(&[("comment", "<script>alert(1)</script>")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let page = response.text().await.unwrap();
    assert!(page.contains("govuk-error-summary"), "{page}");
    assert!(
        page.contains("Select how you felt about the service"),
        "{page}"
    );
    assert!(page.contains("<title>Error: "), "{page}");
    assert!(!page.contains("<script>alert(1)"), "the comment is escaped");
    assert!(
        page.contains("&lt;script&gt;alert(1)"),
        "the comment is shown back"
    );
    for rating in ["0", "6", "five", "4.5"] {
        let response = app
            .anonymous
            .post(app.url(&path))
            .form(&[("rating", rating)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{rating}");
    }
    // Another site's form is refused: browsers say where a form came from.
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://elsewhere.example"),
        ("origin", "null"),
    ] {
        let response = app
            .anonymous
            .post(app.url(&path))
            .header(name, value)
            .form(&[("rating", "5")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{name}: {value}");
    }
    // This site's own page posts with its origin.
    let same_origin = format!("http://{}", app.addr);
    // A good form: stored, then the thank-you page.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .post(app.url(&path))
        .header("origin", same_origin.as_str())
        .header("sec-fetch-site", "same-origin")
        .form(&[
            ("rating", "4"),
            ("comment", "Quick to use"),
            ("csrf", "ignored"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, format!("{path}?sent=1"));
    let (status, page) =
        status_and_text(app.anonymous.get(app.url(&location)).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(page.contains("Thank you for your feedback"), "{page}");
    // JSON as before.
    let response = app
        .anonymous
        .post(app.url(&path))
        .json(&json!({"rating": 2, "comment": "Slow"}))
        .send()
        .await
        .unwrap();
    expect_json(response, 201).await;
    let comments = app.get_json(&format!("/api/v1/tenants/{T}/feedback")).await;
    let texts: Vec<&str> = comments["comments"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["comment"].as_str())
        .collect();
    assert!(
        texts.contains(&"Quick to use") && texts.contains(&"Slow"),
        "{comments}"
    );
    // Not installed for the council, or no such plugin: 404 either way.
    for other in [
        format!("/s/{T}/{C}/hello/_feedback"),
        format!("/s/nowhere/{C}/{PROBE}/_feedback"),
    ] {
        let response = app.anonymous.get(app.url(&other)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{other}");
    }
}

fn svg_data_url(svg: &str) -> String {
    format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

async fn brands_reach_the_pages_and_bad_ones_change_nothing(app: TestApp) {
    with_probe(&app).await;
    let logo = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 10 10\"><rect width=\"10\" height=\"10\"/></svg>";
    let brand = json!({
        "colour": "#00703C",
        "contact_url": "https://www.northdowns.example/contact",
        "accessibility_url": "https://www.northdowns.example/accessibility",
        "logo": svg_data_url(logo),
    });
    let record = expect_json(
        app.put_json(&format!("/api/v1/tenants/{T}/brand"), &brand)
            .await,
        200,
    )
    .await;
    let logo_path = record["brand"]["logo"].as_str().unwrap().to_string();
    assert_eq!(record["brand"]["colour"], "#00703c");
    assert!(logo_path.starts_with("/assets/brand/logos/"), "{record}");

    // Tandridge keeps the alliance's logo and links but has its own colour.
    let council = json!({"name": "Tandridge District Council", "brand": {"colour": "#1d70b8"}});
    let response = app
        .put_json(&format!("/api/v1/tenants/{T}/councils/{C}"), &council)
        .await;
    expect_json(response, 200).await;
    // Pages are re-resolved within the watcher's interval.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let site = app.get_json(&probe(T, C, "site")).await;
    assert_eq!(site["council_name"], "Tandridge District Council");
    assert_eq!(site["tenant_name"], "North Downs Shared Services");
    assert_eq!(site["brand_stylesheet"], "/assets/brand/colours/1d70b8.css");
    assert_eq!(site["logo"], logo_path.as_str());
    assert_eq!(
        site["contact_url"],
        "https://www.northdowns.example/contact"
    );
    assert_eq!(site["base_path"], format!("/s/{T}/{C}/{PROBE}"));
    assert_eq!(
        site["feedback_path"],
        format!("/s/{T}/{C}/{PROBE}/_feedback")
    );
    assert!(
        site["assets"]
            .as_str()
            .unwrap()
            .starts_with("/assets/govuk-frontend/")
    );
    let other = app.get_json(&probe(T, "mole-valley", "site")).await;
    assert_eq!(
        other["brand_stylesheet"],
        "/assets/brand/colours/00703c.css"
    );

    // The assets the pages link.
    let response = app.anonymous.get(app.url(&logo_path)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[CONTENT_TYPE], "image/svg+xml");
    assert!(
        response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert_eq!(response.text().await.unwrap(), logo);
    let (status, css) = status_and_text(
        app.anonymous
            .get(app.url("/assets/brand/colours/1d70b8.css"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(css.contains("#1d70b8"), "{css}");
    for bad in [
        "/assets/brand/colours/1D70B8.css",
        "/assets/brand/colours/1d70b8;}body{x.css",
        "/assets/brand/logos/0000",
        "/assets/brand/logos/0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        let response = app.anonymous.get(app.url(bad)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{bad}");
    }
    let (_, page) = {
        let response = app
            .anonymous
            .get(app.url(&format!("/s/{T}/{C}/{PROBE}/_feedback")))
            .send()
            .await
            .unwrap();
        status_and_text(response).await
    };
    // MiniJinja's HTML escaping writes `/` as `&#x2f;`, which browsers read as `/`.
    let page = page.replace("&#x2f;", "/");
    for expected in [
        logo_path.as_str(),
        "/assets/brand/colours/1d70b8.css",
        "https://www.northdowns.example/accessibility",
    ] {
        assert!(page.contains(expected), "{expected}: {page}");
    }

    // Bad brands: 422 naming the field, and nothing changes.
    let before = app.get_json(&format!("/api/v1/tenants/{T}")).await;
    for (bad, field) in [
        (json!({"colour": "red"}), "brand.colour"),
        (
            json!({"contact_url": "javascript:alert(1)"}),
            "brand.contact_url",
        ),
        (
            json!({"accessibility_url": "http://insecure.example"}),
            "brand.accessibility_url",
        ),
        (
            json!({"logo": svg_data_url("<html><script>alert(1)</script></html>")}),
            "brand.logo",
        ),
        (json!({"logo": "data:text/html;base64,PGI+"}), "brand.logo"),
        (
            json!({"logo": "https://elsewhere.example/logo.svg"}),
            "brand.logo",
        ),
        (
            json!({"logo": "/assets/brand/logos/1111111111111111111111111111111111111111111111111111111111111111"}),
            "brand.logo",
        ),
    ] {
        let response = app
            .put_json(&format!("/api/v1/tenants/{T}/brand"), &bad)
            .await;
        let problem = expect_problem(response, 422).await;
        assert_eq!(problem["errors"][0]["field"], field, "{bad}: {problem}");
    }
    let response = app
        .put_json(
            &format!("/api/v1/tenants/{T}/brand"),
            &json!({"colour": "#00703c", "font": "x"}),
        )
        .await;
    assert!(response.status().is_client_error());
    assert_eq!(app.get_json(&format!("/api/v1/tenants/{T}")).await, before);

    // Round trip: the record's brand put back unchanged keeps the logo.
    let response = app
        .put_json(&format!("/api/v1/tenants/{T}/brand"), &before["brand"])
        .await;
    let again = expect_json(response, 200).await;
    assert_eq!(again["brand"], before["brand"]);

    // Who may: an officer may not brand the alliance; another tenant's admin sees 404.
    let officer = app.token("officer", Some(T), None).await;
    let response = app
        .client_for(&officer)
        .put(app.url(&format!("/api/v1/tenants/{T}/brand")))
        .json(&json!({"colour": "#000000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let stranger = app.token("tenant-admin", Some("the-marches"), None).await;
    let response = app
        .client_for(&stranger)
        .put(app.url(&format!("/api/v1/tenants/{T}/brand")))
        .json(&json!({"colour": "#000000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let value: Value = app.get_json(&format!("/api/v1/tenants/{T}")).await;
    assert_eq!(value["brand"]["colour"], "#00703c");

    // A tenant file that changes only the alliance's brand is served at once too.
    let store = app.store().await;
    let before = store.revision().await.unwrap();
    let mut spec: guildhall_domain::tenant::TenantSpec = toml::from_str(
        &std::fs::read_to_string(crate::helpers::repo_root().join("tenants/north-downs.toml"))
            .unwrap(),
    )
    .unwrap();
    spec.brand.colour = Some("#d4351c".into());
    spec.councils.clear();
    store.tenants().apply(&[spec]).await.unwrap();
    assert!(
        store.revision().await.unwrap() > before,
        "the revision moved"
    );
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let other = app.get_json(&probe(T, "mole-valley", "site")).await;
    assert_eq!(
        other["brand_stylesheet"],
        "/assets/brand/colours/d4351c.css"
    );
}

/// The hidden `csrf` field of a page.
pub(crate) fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with the token");
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// A citizen answers report-a-problem's questions, then the check-answers form is posted
/// eight times at once (a double click, a retried request, two tabs): one report is filed,
/// and every post ends at the confirmation.
async fn a_journey_posted_many_times_at_once_sends_one_report(app: TestApp) {
    app.create_example_tenants().await;
    app.install_reports(T).await;
    let base = format!("/s/{T}/{C}/report-a-problem");
    let mut alice = Citizen::new(&app);
    let (status, page) = alice.get(&format!("{base}/where")).await;
    assert_eq!(status, 200, "{page}");
    let token = csrf_of(&page);
    for (path, form) in [
        (
            "where",
            vec![("service", "pothole"), ("location", "Station Road East")],
        ),
        (
            "describe",
            vec![("description", "A deep pothole by the bus stop")],
        ),
        ("details", vec![]),
    ] {
        let mut form = form;
        form.push(("csrf", token.as_str()));
        let response = alice.post_form(&format!("{base}/{path}"), &form).await;
        assert_eq!(
            response.status(),
            303,
            "{path}: {}",
            response.text().await.unwrap()
        );
    }
    let cookie = alice.cookie_header();
    let posts = (0..8).map(|_| {
        app.anonymous
            .post(app.url(&format!("{base}/check-answers")))
            .header(COOKIE, cookie.as_str())
            .form(&[("csrf", token.as_str())])
            .send()
    });
    for response in futures::future::join_all(posts).await {
        let response = response.unwrap();
        assert_eq!(response.status(), 303);
        assert!(
            response.headers()["location"]
                .to_str()
                .unwrap()
                .ends_with("/confirmation"),
            "every post ends at the confirmation"
        );
    }
    let requests = app.get_json(&format!("{base}/requests.json")).await;
    assert_eq!(
        requests.as_array().map(Vec::len),
        Some(1),
        "one report for one journey: {requests}"
    );
}
