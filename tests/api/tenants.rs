//! Tenants and councils over HTTP: creation, reads, council upserts, and bad input that
//! must change nothing.

use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, expect_problem};
use crate::on_both_databases;

on_both_databases!(create_read_and_update, bad_input_changes_nothing);

fn north_downs() -> Value {
    json!({
        "id": "north-downs",
        "name": "North Downs Shared Services",
        "share_adoption": true,
        "councils": [
            {"id": "tandridge", "name": "Tandridge District Council", "gss_code": "E07000215"},
            {"id": "mole-valley", "name": "Mole Valley District Council"}
        ]
    })
}

async fn create_read_and_update(app: TestApp) {
    let response = app.post_json("/api/v1/tenants", &north_downs()).await;
    assert_eq!(
        response.headers()["location"],
        "/api/v1/tenants/north-downs"
    );
    let created = expect_json(response, 201).await;
    assert_eq!(created["id"], "north-downs");
    assert_eq!(created["councils"].as_array().unwrap().len(), 2);

    let list = app.get_json("/api/v1/tenants").await;
    assert_eq!(list["tenants"].as_array().unwrap().len(), 1);

    let one = app.get_json("/api/v1/tenants/north-downs").await;
    let ids: Vec<&str> = one["councils"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["mole-valley", "tandridge"]);

    // A new council is created, then updated, then unchanged.
    let path = "/api/v1/tenants/north-downs/councils/epsom-ewell";
    let response = app
        .put_json(path, &json!({"name": "Epsom and Ewell"}))
        .await;
    assert_eq!(response.status(), 201);
    let response = app
        .put_json(
            path,
            &json!({"name": "Epsom and Ewell Borough Council", "gss_code": "E07000208"}),
        )
        .await;
    let council = expect_json(response, 200).await;
    assert_eq!(council["name"], "Epsom and Ewell Borough Council");
    assert_eq!(council["gss_code"], "E07000208");
    let response = app
        .put_json(
            path,
            &json!({"name": "Epsom and Ewell Borough Council", "gss_code": "E07000208"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let one = app.get_json("/api/v1/tenants/north-downs").await;
    assert_eq!(one["councils"].as_array().unwrap().len(), 3);

    let problem = expect_problem(app.post_json("/api/v1/tenants", &north_downs()).await, 409).await;
    assert!(problem["detail"].as_str().unwrap().contains("north-downs"));

    let problem = expect_problem(app.get("/api/v1/tenants/south-downs").await, 404).await;
    assert!(problem["detail"].as_str().unwrap().contains("south-downs"));
    expect_problem(
        app.put_json(
            "/api/v1/tenants/south-downs/councils/x1",
            &json!({"name": "X"}),
        )
        .await,
        404,
    )
    .await;
}

/// Writes `head` on a fresh connection and returns whatever the server answers.
async fn raw_exchange(addr: std::net::SocketAddr, head: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("the server answers before the body arrives")
        .unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

async fn bad_input_changes_nothing(app: TestApp) {
    assert_eq!(
        app.post_json("/api/v1/tenants", &north_downs())
            .await
            .status(),
        201
    );
    let before = app.get_json("/api/v1/tenants").await;

    // Malformed JSON.
    let response = app
        .client
        .post(app.url("/api/v1/tenants"))
        .header("content-type", "application/json")
        .body("{\"id\": \"x")
        .send()
        .await
        .unwrap();
    expect_problem(response, 400).await;

    // Not JSON at all.
    let response = app
        .client
        .post(app.url("/api/v1/tenants"))
        .body("id=x")
        .send()
        .await
        .unwrap();
    let problem = expect_problem(response, 415).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("application/json")
    );

    // A body over the limit is refused from its Content-Length, before it is read; the
    // client sends only the head, as a client honouring the early answer would.
    let answer = raw_exchange(
        app.addr,
        "POST /api/v1/tenants HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2097152\r\n\r\n{",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");

    // A bad tenant id, a bad council id, an unknown field, a duplicate council.
    let mut bad_id = north_downs();
    bad_id["id"] = json!("South Downs");
    let problem = expect_problem(app.post_json("/api/v1/tenants", &bad_id).await, 422).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("invalid tenant id"),
        "{problem}"
    );

    let mut unknown = north_downs();
    unknown["colour"] = json!("green");
    let problem = expect_problem(app.post_json("/api/v1/tenants", &unknown).await, 422).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`"),
        "{problem}"
    );

    let mut duplicate = north_downs();
    duplicate["id"] = json!("south-downs");
    duplicate["councils"][1]["id"] = json!("tandridge");
    let problem = expect_problem(app.post_json("/api/v1/tenants", &duplicate).await, 422).await;
    assert_eq!(problem["errors"][0]["field"], "councils[1].id", "{problem}");

    let problem = expect_problem(
        app.put_json(
            "/api/v1/tenants/north-downs/councils/Bad_Id",
            &json!({"name": "X"}),
        )
        .await,
        400,
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("invalid council id"),
        "{problem}"
    );
    expect_problem(
        app.put_json(
            "/api/v1/tenants/north-downs/councils/new-one",
            &json!({"name": ""}),
        )
        .await,
        422,
    )
    .await;
    expect_problem(
        app.put_json(
            "/api/v1/tenants/north-downs/councils/new-one",
            &json!({"name": "N", "gss": "E1"}),
        )
        .await,
        422,
    )
    .await;

    let after = app.get_json("/api/v1/tenants").await;
    assert_eq!(before, after, "a rejected request changed the database");
    assert!(app.get("/api/v1/tenants/south-downs").await.status() == 404);
}
