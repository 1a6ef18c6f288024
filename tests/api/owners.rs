//! The crates.io owner model, tried as an attacker would: a second publisher (with the
//! first one's `publisher` field copied) cannot publish into, sign for or yank another's
//! plugin; a co-owner can until removed; owners are principals of the platform, never role
//! names or users of a provider limited to some tenants; signatures bind name, version,
//! manifest and component to an owner's key and are checked before anything is compiled; a
//! refused upload leaves nothing behind.

use guildhall_domain::manifest::Manifest;
use guildhall_domain::signing::{self, SecretKey};
use guildhall_domain::{Digest, PluginName};
use guildhall_store::{Actor, NewVersion, PublishError, Published};
use serde_json::json;

use crate::access::Idp;
use crate::helpers::{
    Backend, TestApp, expect_json, expect_problem, fetch_json, hello_at, status_of,
};
use crate::on_both_databases;

on_both_databases!(
    only_owners_publish_and_yank,
    signatures_must_come_from_an_owners_key,
    concurrent_first_publishes_have_one_owner,
    a_refused_upload_leaves_nothing_behind
);

/// A publisher's client and its subject.
struct Publisher {
    client: reqwest::Client,
    subject: String,
}

async fn publisher(app: &TestApp) -> Publisher {
    let client = app.client_as("publisher", None, None).await;
    let keys = fetch_json(client.get(app.url("/api/v1/publisher-keys"))).await;
    let subject = keys["subject"].as_str().unwrap().to_string();
    assert!(subject.starts_with("token:"), "{keys}");
    Publisher { client, subject }
}

async fn publish_as(
    app: &TestApp,
    client: &reqwest::Client,
    manifest: &str,
    component: Vec<u8>,
    signature: Option<&str>,
) -> reqwest::Response {
    let name = Manifest::from_toml(manifest).unwrap().name;
    app.publish_with(client, name.as_str(), manifest, component, signature)
        .await
}

/// Signs the statement of `manifest` and `component` with `key`.
fn sign(key: &SecretKey, manifest: &str, component: &[u8]) -> String {
    let m = Manifest::from_toml(manifest).unwrap();
    key.sign(&signing::statement(
        &m.name,
        &m.version,
        &Digest::of(manifest.as_bytes()),
        &Digest::of(component),
    ))
}

/// Publishes `manifest` with hello's component, signed by `key` over that manifest.
async fn publish_signed(
    app: &TestApp,
    client: &reqwest::Client,
    manifest: &str,
    key: &SecretKey,
) -> reqwest::Response {
    let bytes = guildhall_test_artifacts::plugin("hello").bytes();
    let signature = sign(key, manifest, &bytes);
    publish_as(app, client, manifest, bytes, Some(&signature)).await
}

async fn register_key(app: &TestApp, who: &Publisher, name: &str, key: &SecretKey) -> u16 {
    status_of(
        who.client
            .put(app.url(&format!("/api/v1/publisher-keys/{name}")))
            .json(&json!({"public_key": key.public().to_base64()})),
    )
    .await
}

async fn versions(app: &TestApp) -> Vec<String> {
    app.get_json("/api/v1/plugins/hello").await["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| format!("{}:{}", v["version"].as_str().unwrap(), v["yanked"]))
        .collect()
}

async fn only_owners_publish_and_yank(app: TestApp) {
    let hello = guildhall_test_artifacts::plugin("hello");
    let a = publisher(&app).await;
    let b = publisher(&app).await;
    assert_ne!(a.subject, b.subject);
    let created = publish_as(&app, &a.client, &hello_at("0.1.0"), hello.bytes(), None).await;
    assert_eq!(created.status(), 201);
    let owners = app.get_json("/api/v1/plugins/hello/owners").await;
    assert_eq!(owners["owners"].as_array().unwrap().len(), 1, "{owners}");
    assert_eq!(owners["owners"][0]["subject"], a.subject.as_str());

    // B copies A's manifest (the same `publisher` display name) into a new version.
    let problem = expect_problem(
        publish_as(&app, &b.client, &hello_at("0.2.0"), hello.bytes(), None).await,
        403,
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("not an owner"),
        "{problem}"
    );
    // B can neither yank A's version nor make itself an owner nor remove A.
    let yank = |who: &Publisher, version: &str| {
        who.client
            .post(app.url(&format!("/api/v1/plugins/hello/versions/{version}/yank")))
            .send()
    };
    expect_problem(yank(&b, "0.1.0").await.unwrap(), 403).await;
    let owner_url = |s: &str| app.url(&format!("/api/v1/plugins/hello/owners/{s}"));
    expect_problem(
        b.client.put(owner_url(&b.subject)).send().await.unwrap(),
        403,
    )
    .await;
    expect_problem(
        b.client.delete(owner_url(&a.subject)).send().await.unwrap(),
        403,
    )
    .await;
    assert_eq!(versions(&app).await, ["0.1.0:false"]);

    // A adds B: B publishes and yanks.
    let added = a.client.put(owner_url(&b.subject)).send().await.unwrap();
    assert_eq!(added.status(), 201);
    assert_eq!(
        status_of(a.client.put(owner_url(&b.subject))).await,
        200,
        "adding again changes nothing"
    );
    let published = publish_as(&app, &b.client, &hello_at("0.2.0"), hello.bytes(), None).await;
    assert_eq!(published.status(), 201);
    assert_eq!(yank(&b, "0.2.0").await.unwrap().status(), 200);

    // A removes B: B's rights end at once.
    let removed = a.client.delete(owner_url(&b.subject)).send().await.unwrap();
    assert_eq!(removed.status(), 200);
    expect_problem(
        publish_as(&app, &b.client, &hello_at("0.3.0"), hello.bytes(), None).await,
        403,
    )
    .await;
    expect_problem(yank(&b, "0.1.0").await.unwrap(), 403).await;
    assert_eq!(versions(&app).await, ["0.2.0:true", "0.1.0:false"]);

    // The last owner cannot leave; removing a non-owner is 404.
    expect_problem(
        a.client.delete(owner_url(&a.subject)).send().await.unwrap(),
        409,
    )
    .await;
    expect_problem(
        a.client.delete(owner_url(&b.subject)).send().await.unwrap(),
        404,
    )
    .await;

    // An operator manages any plugin's owners and may yank.
    assert_eq!(status_of(app.client.put(owner_url(&b.subject))).await, 201);
    assert_eq!(
        status_of(app.client.delete(owner_url(&b.subject))).await,
        200
    );
    assert_eq!(
        status_of(
            app.client
                .post(app.url("/api/v1/plugins/hello/versions/0.1.0/yank"))
        )
        .await,
        200
    );
    expect_problem(app.get("/api/v1/plugins/nothing/owners").await, 404).await;
    expect_problem(
        app.client
            .put(app.url("/api/v1/plugins/nothing/owners/token:x"))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    // Every ownership change is on the platform's audit chain, refused ones too.
    let store = app.store().await;
    let actions: Vec<String> = store
        .platform_audit()
        .list(0, 500)
        .await
        .unwrap()
        .into_iter()
        .map(|e| format!("{} {}", e.action, e.outcome))
        .collect();
    assert!(
        actions.contains(&"catalogue.owners.add 201".to_string()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"catalogue.owners.add 403".to_string()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"catalogue.owners.remove 409".to_string()),
        "{actions:?}"
    );
}

async fn signatures_must_come_from_an_owners_key(app: TestApp) {
    let hello = guildhall_test_artifacts::plugin("hello");
    let bytes = hello.bytes();
    let a = publisher(&app).await;
    let b = publisher(&app).await;
    let ka = SecretKey::from_seed([1; 32]);
    let kb = SecretKey::from_seed([2; 32]);
    assert_eq!(register_key(&app, &a, "laptop", &ka).await, 201);
    assert_eq!(register_key(&app, &a, "laptop", &ka).await, 200);
    assert_eq!(register_key(&app, &b, "laptop", &kb).await, 201);
    // B cannot claim A's public key.
    assert_eq!(register_key(&app, &b, "stolen", &ka).await, 409);
    let bad = b
        .client
        .put(app.url("/api/v1/publisher-keys/x"))
        .json(&json!({"public_key": "AAAA"}))
        .send()
        .await
        .unwrap();
    expect_problem(bad, 422).await;

    let v1 = hello_at("0.1.0");
    // B's key does not sign A's plugin, even over the right statement.
    let problem = expect_problem(publish_signed(&app, &a.client, &v1, &kb).await, 422).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("bad signature"),
        "{problem}"
    );
    // A's key over another version's or another manifest's statement does not count.
    let v2 = hello_at("0.2.0");
    let other_manifest = format!("{v1}\n# edited after signing\n");
    for statement in [&v2, &other_manifest] {
        let signature = sign(&ka, statement, &bytes);
        expect_problem(
            publish_as(&app, &a.client, &v1, bytes.clone(), Some(&signature)).await,
            422,
        )
        .await;
    }
    expect_problem(
        publish_as(&app, &a.client, &v1, bytes.clone(), Some("not base64!")).await,
        422,
    )
    .await;
    assert!(
        app.get_json("/api/v1/plugins").await["plugins"]
            .as_array()
            .unwrap()
            .is_empty(),
        "a refused signature published something"
    );

    let signed = publish_signed(&app, &a.client, &v1, &ka).await;
    let version = expect_json(signed, 201).await;
    assert_eq!(version["signature"]["status"], "verified");
    assert_eq!(
        version["signature"]["key"],
        ka.public().fingerprint().as_str()
    );
    assert_eq!(
        version["signature"]["manifest_sha256"],
        Digest::of(v1.as_bytes()).to_string().as_str()
    );

    // B, not an owner, signing with its own key: refused for ownership first.
    expect_problem(publish_signed(&app, &b.client, &v2, &kb).await, 403).await;
    // As a co-owner, B's key signs.
    let owner_url = app.url(&format!("/api/v1/plugins/hello/owners/{}", b.subject));
    assert_eq!(status_of(a.client.put(&owner_url)).await, 201);
    let signed = publish_signed(&app, &b.client, &v2, &kb).await;
    assert_eq!(signed.status(), 201);
    // Removed again, B's key no longer signs even what A uploads.
    assert_eq!(status_of(a.client.delete(&owner_url)).await, 200);
    let v3 = hello_at("0.3.0");
    expect_problem(publish_signed(&app, &a.client, &v3, &kb).await, 422).await;
    // Keys can be listed and removed by their holder only.
    let listed = fetch_json(a.client.get(app.url("/api/v1/publisher-keys"))).await;
    assert_eq!(
        listed["keys"][0]["fingerprint"],
        ka.public().fingerprint().as_str()
    );
    expect_problem(
        b.client
            .delete(app.url("/api/v1/publisher-keys/nothing"))
            .send()
            .await
            .unwrap(),
        404,
    )
    .await;
    assert_eq!(
        status_of(a.client.delete(app.url("/api/v1/publisher-keys/laptop"))).await,
        200
    );
    expect_problem(publish_signed(&app, &a.client, &v3, &ka).await, 422).await;
}

/// Many first publishes of one name at once, straight into the store (so they really
/// meet in the database): exactly one owner, the winner's.
async fn concurrent_first_publishes_have_one_owner(app: TestApp) {
    let hello = guildhall_test_artifacts::plugin("hello");
    let text = hello.manifest();
    let manifest = Manifest::from_toml(&text).unwrap();
    let bytes = hello.bytes();
    let store = app.store().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        let (manifest, bytes, text) = (manifest.clone(), bytes.clone(), text.clone());
        tasks.push(tokio::spawn(async move {
            let subject = format!("token:racer-{i}");
            let result = store
                .catalogue()
                .publish(NewVersion {
                    manifest: &manifest,
                    digest: Digest::of(&bytes),
                    bytes: &bytes,
                    manifest_sha256: Digest::of(text.as_bytes()),
                    signature: None,
                    actor: Actor {
                        subject: &subject,
                        operator: false,
                    },
                })
                .await;
            (subject, result)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (subject, Ok(Published::Created(_))) => winners.push(subject),
            (_, Err(PublishError::NotOwner { .. })) => {}
            (subject, other) => panic!("{subject}: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let owners = store
        .owners()
        .subjects(&PluginName::parse("hello").unwrap())
        .await
        .unwrap();
    assert_eq!(owners, winners);
}

/// Components the server has compiled since it started, from `/metrics`.
async fn compiles(app: &TestApp) -> u64 {
    let text = app
        .anonymous
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| {
            l.strip_prefix("guildhall_runtime_compiles_total")
                .is_some_and(|rest| rest.starts_with([' ', '{']))
        })
        .and_then(|l| l.split_whitespace().last())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no guildhall_runtime_compiles_total in /metrics:\n{text}"))
        as u64
}

fn cache_files(app: &TestApp) -> usize {
    std::fs::read_dir(&app.config.runtime.cache_dir)
        .map(|d| d.count())
        .unwrap_or(0)
}

async fn a_refused_upload_leaves_nothing_behind(app: TestApp) {
    let a = publisher(&app).await;
    let b = publisher(&app).await;
    let hello = guildhall_test_artifacts::plugin("hello");
    assert_eq!(
        publish_as(&app, &a.client, &hello_at("0.1.0"), hello.bytes(), None)
            .await
            .status(),
        201
    );
    let store = app.store().await;
    let blobs = store.catalogue().blob_count().await.unwrap();
    let files = cache_files(&app);
    let before = app.get_json("/api/v1/plugins").await;

    // Compiles, then fails the import check: its compile must not stay cached.
    let compiled = compiles(&app).await;
    let undeclared = guildhall_test_artifacts::plugin("fixture-undeclared-kv");
    expect_problem(
        publish_as(
            &app,
            &a.client,
            &undeclared.manifest(),
            undeclared.bytes(),
            None,
        )
        .await,
        422,
    )
    .await;
    assert_eq!(
        compiles(&app).await,
        compiled + 1,
        "the import check compiles"
    );
    let compiled = compiled + 1;
    // Bytes this server has never seen, so any check after a compile would compile them.
    let panic = guildhall_test_artifacts::plugin("fixture-panic").bytes();
    let v9 = hello_at("0.9.0");
    // A non-owner's upload of new bytes is refused before compiling.
    expect_problem(
        publish_as(&app, &b.client, &v9, panic.clone(), None).await,
        403,
    )
    .await;
    // Bad signatures are refused before compiling too: one that is not a signature, one by
    // a key nobody registered over the right statement, and one by the owner's own key over
    // another version's statement.
    let ka = SecretKey::from_seed([7; 32]);
    assert_eq!(register_key(&app, &a, "laptop", &ka).await, 201);
    let stranger = SecretKey::from_seed([8; 32]);
    for signature in [
        "A".repeat(88),
        sign(&stranger, &v9, &panic),
        sign(&ka, &hello_at("0.9.9"), &panic),
    ] {
        let problem = expect_problem(
            publish_as(&app, &a.client, &v9, panic.clone(), Some(&signature)).await,
            422,
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "signature", "{problem}");
    }
    assert_eq!(
        compiles(&app).await,
        compiled,
        "a refused signature or owner compiled the upload"
    );
    expect_problem(
        publish_as(
            &app,
            &a.client,
            &hello_at("0.9.1"),
            b"\0asm\x0d\0\x01\0junk".to_vec(),
            None,
        )
        .await,
        422,
    )
    .await;

    assert_eq!(
        cache_files(&app),
        files,
        "a refused upload left a compiled artefact on disk"
    );
    assert_eq!(store.catalogue().blob_count().await.unwrap(), blobs);
    assert_eq!(app.get_json("/api/v1/plugins").await, before);
    assert!(
        store
            .owners()
            .subjects(&PluginName::parse("fixture-undeclared-kv").unwrap())
            .await
            .unwrap()
            .is_empty()
    );

    // The same bytes, rightly signed, are compiled once and published.
    let signature = sign(&ka, &v9, &panic);
    expect_json(
        publish_as(&app, &a.client, &v9, panic, Some(&signature)).await,
        201,
    )
    .await;
    assert_eq!(compiles(&app).await, compiled + 1);
}

async fn require_signatures(backend: Backend) {
    let operator_key = SecretKey::from_seed([5; 32]);
    let Some(app) = TestApp::spawn_with(backend, |c| {
        c.catalogue.require_signatures = true;
        c.catalogue
            .trusted_keys
            .insert("platform-2026".into(), operator_key.public().to_base64());
    })
    .await
    else {
        return;
    };
    let hello = guildhall_test_artifacts::plugin("hello");
    let bytes = hello.bytes();
    let v1 = hello_at("0.1.0");
    let a = publisher(&app).await;
    let problem = expect_problem(
        publish_as(&app, &a.client, &v1, bytes.clone(), None).await,
        422,
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("requires"),
        "{problem}"
    );
    assert_eq!(problem["errors"][0]["field"], "signature");
    // The operator's trusted key signs only for plugins `cli:operator` owns.
    expect_problem(
        publish_signed(&app, &a.client, &v1, &operator_key).await,
        422,
    )
    .await;
    let ka = SecretKey::from_seed([6; 32]);
    assert_eq!(register_key(&app, &a, "ci", &ka).await, 201);
    let signed = publish_signed(&app, &a.client, &v1, &ka).await;
    assert_eq!(signed.status(), 201);
    // Even an operator cannot publish unsigned into it.
    expect_problem(
        publish_as(&app, &app.client, &hello_at("0.2.0"), bytes.clone(), None).await,
        422,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_signatures_refuses_unsigned_sqlite() {
    require_signatures(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_signatures_refuses_unsigned_postgres() {
    require_signatures(Backend::Postgres).await;
}

/// Only a principal that can act on the platform becomes an owner: a token, a user of an
/// identity provider that serves every tenant, or the command line. Role names and other
/// strings that name nobody are refused, and so are users of a provider limited to some
/// tenants (they never hold a platform role) or of no configured provider.
async fn only_principals_of_the_platform_become_owners(backend: Backend) {
    let open = Idp::new();
    let council = Idp::new();
    let Some(app) = TestApp::spawn_with(backend, |c| {
        c.auth.oidc = vec![
            guildhall_authz::OidcIssuer {
                id: "open".into(),
                issuer: "https://open.example/".into(),
                ..open.issuer()
            },
            guildhall_authz::OidcIssuer {
                id: "council".into(),
                issuer: "https://council.example/".into(),
                tenants: vec!["north-downs".into()],
                ..council.issuer()
            },
        ];
    })
    .await
    else {
        return;
    };
    let hello = guildhall_test_artifacts::plugin("hello");
    let a = publisher(&app).await;
    let created = publish_as(&app, &a.client, &hello_at("0.1.0"), hello.bytes(), None).await;
    assert_eq!(created.status(), 201);
    let owner_url = |s: &str| app.url(&format!("/api/v1/plugins/hello/owners/{s}"));
    let before = app.get_json("/api/v1/plugins/hello/owners").await;

    let mut refused = vec![
        "*",
        "anonymous",
        "someone",
        "cli:someone",
        "token:",
        "token:a:b",
    ];
    let roles: Vec<String> = guildhall_domain::Role::ALL
        .iter()
        .flat_map(|r| [r.as_str().to_string(), r.casbin_name().to_string()])
        .collect();
    refused.extend(roles.iter().map(String::as_str));
    refused.extend([
        // A provider limited to one tenant, one that is not configured, and broken forms.
        "oidc:council:carol",
        "oidc:nowhere:carol",
        "oidc:open:",
        "oidc::carol",
        "oidc:Open:carol",
    ]);
    for subject in refused {
        // Neither the owner nor an operator can make them owners.
        for client in [&a.client, &app.client] {
            let problem =
                expect_problem(client.put(owner_url(subject)).send().await.unwrap(), 422).await;
            assert_eq!(
                problem["errors"][0]["field"], "subject",
                "{subject}: {problem}"
            );
        }
    }
    assert_eq!(app.get_json("/api/v1/plugins/hello/owners").await, before);
    // Someone who may not manage the owners learns nothing about the subject.
    let b = publisher(&app).await;
    expect_problem(
        b.client.put(owner_url("operator")).send().await.unwrap(),
        403,
    )
    .await;
    expect_problem(
        b.client
            .put(owner_url("oidc:council:carol"))
            .send()
            .await
            .unwrap(),
        403,
    )
    .await;

    // Principals of the platform are added, and removed again.
    let accepted = [
        "oidc:open:dave",
        "oidc:open:role:operator",
        "token:0123456789abcdef",
        "cli:operator",
    ];
    for subject in accepted {
        assert_eq!(
            status_of(a.client.put(owner_url(subject))).await,
            201,
            "{subject}"
        );
    }
    let owners = app.get_json("/api/v1/plugins/hello/owners").await;
    let listed: Vec<&str> = owners["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["subject"].as_str().unwrap())
        .collect();
    for subject in accepted {
        assert!(listed.contains(&subject), "{subject} not in {owners}");
    }
    for subject in accepted {
        assert_eq!(
            status_of(a.client.delete(owner_url(subject))).await,
            200,
            "{subject}"
        );
    }
    assert_eq!(app.get_json("/api/v1/plugins/hello/owners").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_principals_of_the_platform_become_owners_sqlite() {
    only_principals_of_the_platform_become_owners(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_principals_of_the_platform_become_owners_postgres() {
    only_principals_of_the_platform_become_owners(Backend::Postgres).await;
}
