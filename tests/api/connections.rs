//! The connection loop (src/server/listen.rs): watch streams on the lean
//! responder, everything else on hyper — checked on the wire, over raw TCP.

use crate::common::sse::PATIENCE;
use crate::common::{spawn_app, spawn_app_with, TestApp};
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const NS: &str = "shop";
const ENV: &str = "prod";

/// A namespace with `app.json` released at version 1, and a subscriber token.
async fn released_config(app: &TestApp) -> String {
    app.namespace(NS).await;
    app.config(NS, ENV, "app.json", "json", r#"{"pool": 1}"#)
        .await;
    app.release(NS, ENV, "app.json", 1, "").await;
    app.token("watcher", "subscriber", Some(NS), Some(ENV))
        .await
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// A new connection with `request` sent on it.
async fn send(app: &TestApp, request: impl AsRef<[u8]>) -> TcpStream {
    let mut stream = connect(app).await;
    stream.write_all(request.as_ref()).await.unwrap();
    stream
}

fn watch_request(token: &str, client_id: &str, version: &str) -> String {
    format!(
        "GET /api/v1/watch?namespace={NS}&env={ENV}&client_id={client_id} {version}\r\n\
         Host: localhost\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
}

/// Reads until `done` holds for what was read (or fails after [`PATIENCE`]).
async fn read_until(stream: &mut TcpStream, seen: &mut Vec<u8>, done: impl Fn(&[u8]) -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done(seen) {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("timed out; read so far: {}", String::from_utf8_lossy(seen)))
            .expect("read");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(seen));
        seen.extend_from_slice(&buf[..n]);
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn head_of(bytes: &[u8]) -> String {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase()
}

async fn connected(app: &TestApp, client_id: &str) -> Option<bool> {
    let (status, list) = app
        .get_json(&format!("/api/v1/namespaces/{NS}/envs/{ENV}/instances"))
        .await;
    assert!(status.is_success());
    list["instances"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|i| i["client_id"] == client_id)
        .map(|i| i["connected"] == Value::Bool(true))
}

async fn wait_connected(app: &TestApp, client_id: &str, want: bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while connected(app, client_id).await != Some(want) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{client_id} never became connected={want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_watch_stream_is_chunked_server_sent_events_on_a_connection_of_its_own() {
    let app = spawn_app().await;
    let token = released_config(&app).await;
    let mut stream = send(&app, watch_request(&token, "pod-1", "HTTP/1.1")).await;
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, |s| contains(s, "\r\n\r\n")).await;
    let head = head_of(&seen);
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(
        head.contains("\r\ncontent-type: text/event-stream"),
        "{head}"
    );
    assert!(head.contains("\r\ntransfer-encoding: chunked"), "{head}");
    assert!(head.contains("\r\ncache-control: no-cache"), "{head}");
    assert!(head.contains("\r\ndate: "), "{head}");
    // The lean responder serves one request per connection and says so.
    assert!(head.contains("\r\nconnection: close"), "{head}");
    // The first event arrives as one chunk: size line, the event, CRLF.
    read_until(&mut stream, &mut seen, |s| contains(s, "\n\n\r\n")).await;
    let body = String::from_utf8_lossy(&seen[head_of(&seen).len() + 4..]).to_string();
    let (size, rest) = body.split_once("\r\n").expect("a chunk size line");
    let size = usize::from_str_radix(size, 16).expect("hex chunk size");
    let event = &rest[..size];
    assert!(event.starts_with("event: config\nid: "), "{event}");
    assert!(event.ends_with("\n\n"), "{event}");
    assert_eq!(&rest[size..size + 2], "\r\n");
    assert!(event.contains(r#""version":1"#), "{event}");

    // A release arrives as the next chunk, on the same connection.
    app.save(NS, ENV, "app.json", r#"{"pool": 2}"#, 1).await;
    app.release(NS, ENV, "app.json", 2, "").await;
    read_until(&mut stream, &mut seen, |s| contains(s, r#""version":2"#)).await;

    // Closing the socket ends the subscription at once, not at the next write.
    wait_connected(&app, "pod-1", true).await;
    drop(stream);
    wait_connected(&app, "pod-1", false).await;
}

#[tokio::test]
async fn a_refused_watch_gets_a_complete_error_response() {
    let app = spawn_app().await;
    released_config(&app).await;
    let mut stream = send(&app, watch_request("not-a-token", "pod-1", "HTTP/1.1")).await;
    let mut seen = Vec::new();
    stream.read_to_end(&mut seen).await.unwrap();
    let head = head_of(&seen);
    assert!(head.starts_with("http/1.1 401 "), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("content-length")
        .parse()
        .unwrap();
    let body = &seen[head.len() + 4..];
    assert_eq!(body.len(), length);
    let error: Value = serde_json::from_slice(body).expect("a JSON error");
    assert_eq!(error["error"]["code"], "unauthorized");
}

#[tokio::test]
async fn a_malformed_watch_head_is_refused() {
    let app = spawn_app().await;
    let mut stream = send(
        &app,
        b"GET /api/v1/watch?namespace=a HTTP/1.1\r\nBad Header\r\n\r\n",
    )
    .await;
    let mut seen = Vec::new();
    stream.read_to_end(&mut seen).await.unwrap();
    assert!(
        head_of(&seen).starts_with("http/1.1 400 "),
        "{}",
        head_of(&seen)
    );
}

#[tokio::test]
async fn http_1_0_watch_streams_end_with_the_connection() {
    let app = spawn_app().await;
    let token = released_config(&app).await;
    let mut stream = send(&app, watch_request(&token, "pod-10", "HTTP/1.0")).await;
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, |s| contains(s, "\n\n")).await;
    let head = head_of(&seen);
    assert!(head.starts_with("http/1.0 200 ok\r\n"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    read_until(&mut stream, &mut seen, |s| contains(s, r#""version":1"#)).await;
    let body = String::from_utf8_lossy(&seen[head.len() + 4..]).to_string();
    assert!(body.starts_with("event: config\n"), "{body}");
}

#[tokio::test]
async fn other_requests_keep_their_connection_and_may_watch_after() {
    let app = spawn_app().await;
    let token = released_config(&app).await;
    let mut stream = connect(&app).await;
    // Two requests on one kept-alive connection, the second a watch: hyper serves both.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, |s| contains(s, "\r\n\r\nok")).await;
    assert!(head_of(&seen).starts_with("http/1.1 200 ok"));
    seen.clear();
    stream
        .write_all(watch_request(&token, "pod-2", "HTTP/1.1").as_bytes())
        .await
        .unwrap();
    read_until(&mut stream, &mut seen, |s| contains(s, r#""version":1"#)).await;
    let head = head_of(&seen);
    assert!(head.starts_with("http/1.1 200 ok"), "{head}");
    assert!(head.contains("content-type: text/event-stream"), "{head}");
}

#[tokio::test]
async fn a_request_split_across_packets_is_read_whole() {
    let app = spawn_app().await;
    let token = released_config(&app).await;
    let request = watch_request(&token, "pod-3", "HTTP/1.1");
    let mut stream = connect(&app).await;
    // Byte by byte through the decision point, then the rest.
    for byte in request.as_bytes()[..24].iter() {
        stream.write_all(&[*byte]).await.unwrap();
        stream.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stream.write_all(&request.as_bytes()[24..]).await.unwrap();
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, |s| contains(s, r#""version":1"#)).await;
    assert!(head_of(&seen).contains("connection: close"));
    // And a plain request split the same way reaches hyper intact.
    let mut stream = connect(&app).await;
    for byte in b"GET /heal" {
        stream.write_all(&[*byte]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stream
        .write_all(b"thz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, |s| contains(s, "\r\n\r\nok")).await;
}

/// Reads until the server closes the connection (or fails after [`PATIENCE`]).
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let mut buf = [0u8; 4096];
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "still open after {PATIENCE:?}; read so far: {}",
                    String::from_utf8_lossy(&seen)
                )
            });
        match read {
            Ok(0) | Err(_) => return seen,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn a_trickled_body_is_cut_off_after_the_body_timeout() {
    let app = spawn_app_with(|c| c.body_timeout = Duration::from_secs(1)).await;
    let stream = send(
        &app,
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
    )
    .await;
    let started = tokio::time::Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    // One byte every 100 ms: the body would take 100 s to arrive.
    let trickle = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if writer.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let mut answer = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let mut buf = [0u8; 4096];
        match tokio::time::timeout_at(deadline, reader.read(&mut buf)).await {
            Err(_) => panic!("the trickled request is still open after {PATIENCE:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
        }
    }
    trickle.abort();
    assert!(started.elapsed() >= Duration::from_millis(900));
    let head = head_of(&answer);
    assert!(head.starts_with("http/1.1 408 "), "{head}");
    assert!(contains(&answer, "request_timeout"));
}

#[tokio::test]
async fn connections_over_the_limit_are_answered_503_and_closed_at_once() {
    const LIMIT: usize = 8;
    let app = spawn_app_with(|c| c.max_connections = LIMIT).await;
    // Slow clients that never finish their head hold every place (the admin
    // client's kept-alive connection may hold one of them).
    let mut slow = Vec::new();
    for _ in 0..LIMIT {
        slow.push(send(&app, "GET /healthz HTTP/1.1\r\nHo").await);
    }
    let mut refused = send(&app, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let answer = read_to_close(&mut refused).await;
    let head = head_of(&answer);
    assert!(head.starts_with("http/1.1 503 "), "{head}");
    assert!(head.contains("retry-after: "), "{head}");
    // The slow clients leave: their places are free again.
    drop(slow);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let mut stream = send(
            &app,
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        let answer = read_to_close(&mut stream).await;
        if head_of(&answer).starts_with("http/1.1 200 ") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_slow_head_and_an_idle_kept_alive_connection_are_closed_after_the_header_timeout() {
    let app = spawn_app_with(|c| c.header_timeout = Duration::from_secs(1)).await;
    let started = tokio::time::Instant::now();
    let mut slow = send(&app, "GET /healthz HTTP/1.1\r\nHo").await;
    let answer = read_to_close(&mut slow).await;
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(!contains(&answer, "200 OK"));
    // Past the first request, on hyper: an idle connection is closed too.
    let mut idle = send(&app, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let answer = read_to_close(&mut idle).await;
    assert!(head_of(&answer).starts_with("http/1.1 200 "));
}

#[tokio::test]
async fn a_watch_second_on_a_kept_alive_connection_is_cut_off_when_the_client_stops_reading() {
    let app = spawn_app_with(|c| c.write_timeout = Duration::from_secs(1)).await;
    let token = released_config(&app).await;
    // A small receive window, so the server's writes back up quickly.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket
        .connect(app.base.trim_start_matches("http://").parse().unwrap())
        .await
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    read_until(&mut stream, &mut seen, |s| contains(s, "\r\n\r\nok")).await;
    seen.clear();
    stream
        .write_all(watch_request(&token, "pod-stuck", "HTTP/1.1").as_bytes())
        .await
        .unwrap();
    read_until(&mut stream, &mut seen, |s| contains(s, r#""version":1"#)).await;
    wait_connected(&app, "pod-stuck", true).await;
    // The client stops reading. Large releases fill the kernel's buffers,
    // then hyper's, then the hub's queue for the stream, which drops the
    // subscriber (the instance shows disconnected).
    let mut version = 1;
    while connected(&app, "pod-stuck").await != Some(false) {
        assert!(version < 200, "the stuck stream was never dropped");
        let big = format!(r#"{{"pad": "{}", "v": {version}}}"#, "x".repeat(256 * 1024));
        app.save(NS, ENV, "app.json", &big, version).await;
        version += 1;
        app.release(NS, ENV, "app.json", version, "").await;
    }
    // The stream has ended, but its last bytes cannot go out: hyper has been
    // waiting on the full socket since before the drop. By three write
    // timeouts later the server has given up on the connection.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rest = read_to_close(&mut stream).await;
    assert!(
        !contains(&rest, "\r\n0\r\n\r\n"),
        "cut off, not ended as if complete"
    );
}

/// Bare-LF line ends (which hyper accepts) as the first request on a connection: a watch
/// request, a resolve for the fast path and any other request are each answered at once,
/// not left waiting for CRLF CRLF until the header timeout.
#[tokio::test]
async fn a_first_request_with_bare_lf_line_ends_is_answered_on_every_path() {
    let app = spawn_app_with(|c| c.header_timeout = Duration::from_secs(600)).await;
    let token = released_config(&app).await;
    let requests = [
        format!(
            "GET /api/v1/watch?namespace={NS}&env={ENV}&client_id=pod-lf HTTP/1.1\n\
             Host: localhost\nAuthorization: Bearer {token}\n\n"
        ),
        format!(
            "GET /api/v1/namespaces/{NS}/envs/{ENV}/configs/app.json/resolve?client_id=pod-lf \
             HTTP/1.1\nHost: localhost\nAuthorization: Bearer {token}\n\n"
        ),
        "GET /healthz HTTP/1.1\nHost: localhost\n\n".to_string(),
    ];
    for request in requests {
        let mut stream = send(&app, &request).await;
        let mut seen = Vec::new();
        read_until(&mut stream, &mut seen, |s| contains(s, "\r\n\r\n")).await;
        let head = head_of(&seen);
        assert!(head.starts_with("http/1.1 200 "), "{request:?}: {head}");
    }
}
