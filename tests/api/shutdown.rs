//! Process lifecycle: the default configuration serves, and SIGTERM drains in-flight
//! requests before a clean exit.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::Duration;

use crate::helpers::{cli_operator_token, serve_process};

fn sigterm(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sigterm_finishes_in_flight_requests_then_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, logs) = serve_process(dir.path(), &[]);

    // The defaults serve: SQLite in ./data, healthy and ready.
    let mut probe = TcpStream::connect(&addr).unwrap();
    probe
        .write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    probe.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(dir.path().join("data/guildhall.db").exists());

    let token = cli_operator_token(dir.path(), &[]);

    // Start a request and send only half of its body, so it is in flight.
    let body = br#"{"id": "north-downs", "name": "North Downs Shared Services"}"#;
    let (first, rest) = body.split_at(20);
    let mut stream = TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "POST /api/v1/tenants HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(first).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    sigterm(&child);
    std::thread::sleep(Duration::from_millis(500));

    // New connections are refused while the old request is still allowed to finish.
    assert!(
        TcpStream::connect(&addr).is_err(),
        "the listener should be closed"
    );
    stream.write_all(rest).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");

    let status = child.wait().unwrap();
    let logs = logs.join().unwrap();
    assert!(status.success(), "exit status {status}; logs:\n{logs}");
    assert!(
        logs.contains("draining in-flight requests") && logs.contains("stopped"),
        "{logs}"
    );
}
