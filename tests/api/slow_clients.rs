//! Slow and greedy clients over raw TCP: trickled uploads, heads sent a byte at a time,
//! idle keep-alive connections and too many connections from one address hold a
//! connection each, never a tenant's share of the platform.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::{Backend, TestApp, hello_at};

/// A server on SQLite with `hello` installed for every council of `north-downs`.
async fn app_with(adjust: impl FnOnce(&mut guildhall::Config)) -> TestApp {
    let app = TestApp::spawn_with(Backend::Sqlite, adjust).await.unwrap();
    app.create_example_tenants().await;
    app.publish_built("hello").await;
    let response = app.install_for("north-downs", "hello", "all").await;
    assert_eq!(response.status(), 201);
    app
}

/// Reads one response (head and a `content-length` body) or whatever arrives before the
/// peer closes; `None` when the connection closed or failed with nothing read.
async fn read_response(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut buffer = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
            let text = String::from_utf8_lossy(&buffer);
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if buffer.len() >= end + 4 + length {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(within, read).await;
    (!buffer.is_empty()).then(|| String::from_utf8_lossy(&buffer).into_owned())
}

/// Whether the server has closed the connection: a read ends with nothing (or a reset)
/// within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(within, stream.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// A request for `/healthz` that keeps the connection open.
const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n";

/// One upload that declares a kilobyte and sends a byte every 700 ms; returns the status
/// line it was answered with, the whole answer and how long that took.
async fn trickle(addr: SocketAddr, path: &str) -> (String, String, Duration) {
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: text/plain\r\n\
         content-length: 1000\r\n\r\n"
    );
    trickle_after(addr, head.into_bytes()).await
}

/// Sends `start` (a request's head and the start of its body), then a byte every 700 ms
/// of a body that never ends; returns the status line it was answered with, the whole
/// answer and how long that took.
async fn trickle_after(addr: SocketAddr, start: Vec<u8>) -> (String, String, Duration) {
    let started = Instant::now();
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(&start).await.unwrap();
    let dribble = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(700)).await;
            if writer.write_all(b"x").await.is_err() {
                break;
            }
        }
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), reader.read_to_end(&mut answer)).await;
    let elapsed = started.elapsed();
    dribble.abort();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.lines().next().unwrap_or_default().to_string();
    (status, answer, elapsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trickled_uploads_get_408_while_the_tenants_citizens_are_served() {
    // Without reading bodies before admission, 64 of these would hold every slot of the
    // tenant's share and the rest would fill its queue.
    let app = app_with(|c| c.server.body_read_timeout_secs = 3).await;
    let path = "/s/north-downs/tandridge/hello/";
    let tricklers: Vec<_> = (0..100)
        .map(|_| tokio::spawn(trickle(app.addr, path)))
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    for round in 0..8 {
        let started = Instant::now();
        let url = app.url(&format!("/s/north-downs/mole-valley/hello/?round={round}"));
        let response = if round % 2 == 0 {
            app.anonymous.get(url).send().await.unwrap()
        } else {
            app.anonymous
                .post(url)
                .body("a small form")
                .send()
                .await
                .unwrap()
        };
        assert_eq!(response.status(), 200, "round {round}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a citizen waited {:?} behind the trickled uploads",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let mut answers = Vec::new();
    for trickler in tricklers {
        answers.push(trickler.await.unwrap());
    }
    for (status, answer, elapsed) in &answers {
        assert_eq!(status, "HTTP/1.1 408 Request Timeout", "{answer}");
        assert!(
            answer.contains("application/problem+json"),
            "not problem+json: {answer}"
        );
        assert!(
            *elapsed >= Duration::from_millis(2_900) && *elapsed < Duration::from_millis(4_500),
            "answered after {elapsed:?} with a 3 s deadline"
        );
    }
    // The tenant is fine afterwards, and its queue never filled.
    assert_eq!(app.get(path).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_and_idle_connections_are_closed() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.server.header_read_timeout_secs = 1;
        c.server.keep_alive_idle_secs = 2;
    })
    .await
    .unwrap();

    // Half a request line, then nothing: cut after the header timeout.
    let started = Instant::now();
    let mut half = TcpStream::connect(app.addr).await.unwrap();
    half.write_all(b"GET /heal").await.unwrap();
    assert!(closed_within(&mut half, Duration::from_secs(4)).await);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(1_800),
        "{took:?}"
    );

    // A head trickled a header line at a time never completes: the clock runs from its
    // first byte, however busy the connection looks.
    let started = Instant::now();
    let mut trickled = TcpStream::connect(app.addr).await.unwrap();
    trickled
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\n")
        .await
        .unwrap();
    let mut cut = false;
    for i in 0..20 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if trickled
            .write_all(format!("x-padding-{i}: y\r\n").as_bytes())
            .await
            .is_err()
        {
            cut = true;
            break;
        }
    }
    assert!(cut || closed_within(&mut trickled, Duration::from_millis(500)).await);
    assert!(
        started.elapsed() < Duration::from_millis(2_500),
        "{:?}",
        started.elapsed()
    );

    // A keep-alive connection is served, then closed once idle for two seconds.
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(HEALTH).await.unwrap();
    let answer = read_response(&mut idle, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let started = Instant::now();
    assert!(closed_within(&mut idle, Duration::from_secs(4)).await);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1_800) && took < Duration::from_millis(3_000),
        "{took:?}"
    );
    // A connection that never sends anything is idle from the start.
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(4)).await);

    // A request that takes its time but keeps within the limits is still served.
    let mut patient = TcpStream::connect(app.addr).await.unwrap();
    patient
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    patient.write_all(b"host: test\r\n\r\n").await.unwrap();
    let answer = read_response(&mut patient, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// A connection to the server from `source` (a loopback address of this machine).
async fn connect_from(source: [u8; 4], server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("bind a loopback source address");
    socket.connect(server).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_connection_cap_is_refused_and_others_are_not() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.server.max_connections_per_client = 4;
    })
    .await
    .unwrap();
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = connect_from([127, 0, 0, 1], app.addr).await;
        stream.write_all(HEALTH).await.unwrap();
        let answer = read_response(&mut stream, Duration::from_secs(2))
            .await
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        held.push(stream);
    }
    // The fifth from the same address is closed unanswered.
    let mut fifth = connect_from([127, 0, 0, 1], app.addr).await;
    let _ = fifth.write_all(HEALTH).await;
    assert_eq!(
        read_response(&mut fifth, Duration::from_secs(2)).await,
        None
    );
    // Another address is served meanwhile.
    let mut other = connect_from([127, 0, 0, 2], app.addr).await;
    other.write_all(HEALTH).await.unwrap();
    let answer = read_response(&mut other, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Closing one gives the first address its place back.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = connect_from([127, 0, 0, 1], app.addr).await;
    again.write_all(HEALTH).await.unwrap();
    let answer = read_response(&mut again, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// The start of a multipart upload of a new version of `hello` by the holder of `token`:
/// the manifest, then the head of a 100 kB component part whose bytes the caller trickles.
fn upload_start(token: &str) -> Vec<u8> {
    let boundary = "guildhall-trickle";
    let body = format!(
        "--{boundary}\r\ncontent-disposition: form-data; name=\"manifest\"\r\n\r\n{}\r\n\
         --{boundary}\r\ncontent-disposition: form-data; name=\"component\"; \
         filename=\"hello.wasm\"\r\ncontent-type: application/wasm\r\n\r\n\0asm",
        hello_at("0.3.0")
    );
    let length = body.len() + 100_000;
    let mut start = format!(
        "POST /api/v1/plugins/hello/versions HTTP/1.1\r\nhost: test\r\n\
         authorization: Bearer {token}\r\n\
         content-type: multipart/form-data; boundary={boundary}\r\n\
         content-length: {length}\r\n\r\n"
    );
    start.push_str(&body);
    start.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trickled_plugin_uploads_get_408_at_the_request_deadline() {
    // The catalogue's uploads are API requests: the request deadline bounds them.
    let app = app_with(|c| {
        c.server.body_read_timeout_secs = 2;
        c.server.request_timeout_secs = 3;
    })
    .await;
    let token = app.token("operator", None, None).await;
    let tricklers: Vec<_> = (0..10)
        .map(|_| tokio::spawn(trickle_after(app.addr, upload_start(&token))))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Meanwhile the server serves everyone else: the API, the services, and an upload that
    // arrives in one piece.
    for round in 0..4 {
        let started = Instant::now();
        assert_eq!(
            app.get("/api/v1/plugins").await.status(),
            200,
            "round {round}"
        );
        let service = app.get("/s/north-downs/tandridge/hello/").await;
        assert_eq!(service.status(), 200, "round {round}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a caller waited {:?} beside the trickled uploads",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let hello = guildhall_test_artifacts::plugin("hello");
    let published = app
        .publish("hello", &hello_at("0.2.0"), hello.bytes(), None)
        .await;
    assert_eq!(published.status(), 201);

    for trickler in tricklers {
        let (status, answer, elapsed) = trickler.await.unwrap();
        assert_eq!(status, "HTTP/1.1 408 Request Timeout", "{answer}");
        assert!(
            answer.contains("application/problem+json"),
            "not problem+json: {answer}"
        );
        assert!(
            elapsed >= Duration::from_millis(2_900) && elapsed < Duration::from_millis(4_500),
            "answered after {elapsed:?} with a 3 s request deadline"
        );
    }
    // Nothing of the trickled uploads was published, and the server is fine afterwards.
    let versions = app.get_json("/api/v1/plugins/hello").await;
    let listed: Vec<&str> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["0.2.0", "0.1.0"]);
    assert_eq!(app.get("/healthz").await.status(), 200);
}
