//! Admission by each tenant's share when the server is saturated: a tenant flooding the
//! gateway, first with CPU-bound calls and then with whatever else it can send (light
//! calls, `HEAD`, a plugin it does not have, uploads, made-up tenants' paths), is refused
//! its surplus with 429 and `Retry-After` (after a short wait for its share, parked), while
//! a quiet tenant is served every time. The assertions are on statuses and counts only.

use futures::StreamExt;

use crate::helpers::{Backend, TestApp, expect_problem};

/// The flooding tenant and one of its councils.
const FLOODER: &str = "/s/north-downs/tandridge";
/// The quiet tenant's `hello`.
const QUIET: &str = "/s/the-marches/shropshire/hello/";
/// Calls in flight at which the server counts as saturated: a lone tenant's share, and more
/// than a tenant with another holds. Two is also at most the calls per core a tenant may
/// have when the worker threads are busy, so the flooder's share is the same whether they
/// are or not.
const SATURATION: usize = 2;
/// The flooder's CPU-bound calls.
const LOOPS: usize = 24;

async fn fair_app() -> TestApp {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.runtime.saturation_calls = Some(SATURATION);
        // How long a call over its tenant's share waits for it before 429.
        c.runtime.tenant_queue_timeout_ms = 200;
        // The flooder's infinite loops hold their places until this deadline.
        c.runtime.default_timeout_ms = 5_000;
    })
    .await
    .expect("SQLite is always available");
    app.create_example_tenants().await;
    app.publish_built("hello").await;
    app.publish_built("fixture-infinite-loop").await;
    for (tenant, plugin) in [
        ("the-marches", "hello"),
        ("north-downs", "hello"),
        ("north-downs", "fixture-infinite-loop"),
    ] {
        let response = app.install_for(tenant, plugin, "all").await;
        assert_eq!(response.status(), 201, "{tenant} {plugin}");
    }
    app
}

/// What the flooder sends once its CPU-bound calls hold its share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Get,
    Head,
    MissingPlugin,
    Upload,
    MadeUpTenant,
}

const KINDS: [Kind; 5] = [
    Kind::Get,
    Kind::Head,
    Kind::MissingPlugin,
    Kind::Upload,
    Kind::MadeUpTenant,
];

/// What a request got: its status and, for a 429, its `Retry-After` and problem detail (none
/// for `HEAD`, which has no body).
type Answer = (u16, Option<String>, Option<String>);

/// One request of `kind`.
async fn send(app: &TestApp, kind: Kind, i: usize) -> Answer {
    let client = &app.anonymous;
    let request = match kind {
        Kind::Get => client.get(app.url(&format!("{FLOODER}/hello/?i={i}"))),
        Kind::Head => client.head(app.url(&format!("{FLOODER}/hello/"))),
        Kind::MissingPlugin => client.get(app.url(&format!("{FLOODER}/no-such-plugin/{i}"))),
        Kind::Upload => client
            .post(app.url(&format!("{FLOODER}/hello/")))
            .body("a small form"),
        Kind::MadeUpTenant => client.get(app.url(&format!("/s/made-up-{i}/tandridge/hello/"))),
    };
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let detail = if status == 429 && kind != Kind::Head {
        let problem = expect_problem(response, 429).await;
        Some(problem["detail"].as_str().unwrap().to_string())
    } else {
        None
    };
    (status, retry, detail)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_tenant_gets_429_for_its_surplus_and_a_quiet_one_is_served() {
    let app = fair_app().await;
    // Both tenants served once: the server knows them (and has the plugins prepared).
    for path in [format!("{FLOODER}/hello/"), QUIET.to_string()] {
        assert_eq!(app.get_anonymous(&path).await.0, 200, "{path}");
    }

    // The flooder's CPU-bound calls, all at once: it holds the whole server alone, so it
    // gets its share, and the rest wait for it and are refused.
    let loops: Vec<_> = (0..LOOPS)
        .map(|i| {
            let client = app.anonymous.clone();
            let url = app.url(&format!("{FLOODER}/fixture-infinite-loop/?i={i}"));
            tokio::spawn(async move {
                let response = client.get(url).send().await.expect("the server answers");
                let retry = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                (response.status().as_u16(), retry)
            })
        })
        .collect();
    let (refused_tx, mut refused_rx) = tokio::sync::mpsc::unbounded_channel();
    let loops: Vec<_> = loops
        .into_iter()
        .map(|call| {
            let refused = refused_tx.clone();
            tokio::spawn(async move {
                let outcome = call.await.unwrap();
                if outcome.0 == 429 {
                    let _ = refused.send(());
                }
                outcome
            })
        })
        .collect();
    drop(refused_tx);
    // Refusals come back after their short wait; the admitted loops run to their deadline.
    // Once the refusals are in, the flooder holds its share.
    for _ in 0..LOOPS - SATURATION {
        refused_rx
            .recv()
            .await
            .expect("refusals for the calls beyond the share");
    }

    // Meanwhile the quiet tenant calls, one call at a time, with and without a body.
    let quiet = {
        let client = app.anonymous.clone();
        let url = app.url(QUIET);
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..30 {
                let request = if i % 3 == 0 {
                    client.post(&url).body("a small form")
                } else {
                    client.get(&url)
                };
                statuses.push(request.send().await.expect("the server answers").status());
            }
            statuses
        })
    };
    // And the flooder sends everything else it can, sixteen at a time.
    let flood: Vec<(Kind, Answer)> =
        futures::stream::iter((0..200).map(|i| (KINDS[i % KINDS.len()], i)))
            .map(|(kind, i)| {
                let app = &app;
                async move { (kind, send(app, kind, i).await) }
            })
            .buffer_unordered(16)
            .collect()
            .await;

    let quiet = quiet.await.unwrap();
    assert!(
        quiet.iter().all(|s| *s == 200),
        "the quiet tenant was refused or failed: {quiet:?}"
    );

    for kind in KINDS {
        let answers: Vec<_> = flood.iter().filter(|(k, _)| *k == kind).collect();
        let refused: Vec<_> = answers
            .iter()
            .filter(|(_, (status, _, _))| *status == 429)
            .collect();
        // Sent while the loops hold the flooder's share, they wait for it and are refused;
        // the loops may end before the last ones on a slow machine, and those are answered
        // as usual.
        for (_, (status, retry, detail)) in &answers {
            let usual = match kind {
                Kind::Get | Kind::Head | Kind::Upload => 200,
                Kind::MissingPlugin | Kind::MadeUpTenant => 404,
            };
            assert!(
                *status == 429 || *status == usual,
                "{kind:?}: {status} {detail:?}"
            );
            if *status == 429 {
                assert_eq!(retry.as_deref(), Some("1"), "{kind:?}: a refusal says when");
            }
        }
        if kind != Kind::MadeUpTenant {
            // Made-up names share one count, which may or may not be at its share.
            assert!(!refused.is_empty(), "{kind:?}: none refused: {answers:?}");
        }
        for (_, (_, _, detail)) in refused {
            let Some(detail) = detail else {
                assert_eq!(kind, Kind::Head, "only HEAD answers carry no problem");
                continue;
            };
            // One text for every tenant, real or made up: no counts, nothing that tells a
            // tenant this server has served from one it has not.
            assert_eq!(
                detail,
                "the platform is saturated and this alliance's calls hold their fair share \
                 of it; retry shortly",
                "{kind:?}"
            );
        }
    }

    // The CPU-bound calls: those admitted ran to their deadline, no more than the share.
    let mut loop_statuses = Vec::new();
    for call in loops {
        let (status, retry) = call.await.unwrap();
        if status == 429 {
            assert_eq!(retry.as_deref(), Some("1"));
        }
        loop_statuses.push(status);
    }
    let ran = loop_statuses.iter().filter(|s| **s == 504).count();
    let refused = loop_statuses.iter().filter(|s| **s == 429).count();
    assert!(
        (1..=SATURATION).contains(&ran) && ran + refused == LOOPS,
        "{loop_statuses:?}"
    );

    // The share is not a ban: with its calls ended, the flooder is served again.
    for kind in [Kind::Get, Kind::Head, Kind::Upload] {
        assert_eq!(send(&app, kind, 0).await.0, 200, "{kind:?}");
    }
    assert_eq!(send(&app, Kind::MissingPlugin, 0).await.0, 404);
    assert_eq!(app.get("/healthz").await.status(), 200);
}
