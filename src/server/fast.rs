//! The fast path: a connection whose first request is a resolve or an OFREP
//! evaluation (docs/ofrep.md#the-fast-path) is served here, request after
//! request, without hyper, axum or the middleware stack.
//!
//! Why: those are the per-request calls of gateways and services, and their
//! cost was the HTTP stack's (hyper, seven middleware layers, the allocator),
//! not the evaluation's. Here a request is a head parsed in place, a body read
//! into the connection's buffer, and an answer written into a reused buffer
//! and sent with one write.
//!
//! What to answer is the [`Responder`]'s (the API side, src/api/fast.rs): it
//! answers only what it can answer exactly as the router would (a success for
//! a bearer token, from memory). The first request it declines, or any this
//! loop cannot frame plainly (chunked, `Expect`, `Upgrade`, HTTP/1.0, a head
//! or body over the limits), goes to hyper with its bytes and everything after
//! them replayed, and hyper serves the connection from then on: every error
//! still comes from the router, answered as before.
//!
//! The limits are the connection loop's ([`ConnectionLimits`]): a head within the header
//! timeout (a kept-alive connection idles no longer), a body within the body
//! timeout, a client that stops reading is cut off after the write timeout,
//! and shutting down ends a connection between requests.

use super::limits::ConnectionLimits;
use super::outlet;
use axum::http::StatusCode;
use std::cell::RefCell;
use std::future::Future;
use std::pin::{pin, Pin};
use std::time::SystemTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

/// The request line prefixes of connections the fast path takes.
pub const PREFIXES: [&[u8]; 2] = [b"GET /api/v1/namespaces/", b"POST /ofrep/v1/evaluate/flags"];
/// A longer head goes to hyper.
const MAX_HEAD: usize = 16 * 1024;
/// Headers a request may carry; more go to hyper.
const MAX_HEADERS: usize = 64;
/// Answers of pipelined requests are sent together, up to this many bytes.
const MAX_PENDING: usize = 64 * 1024;
/// The buffers an idle connection keeps at most.
const IDLE_CAPACITY: usize = 8 * 1024;

/// One request, head parsed and body whole.
pub struct Request<'a> {
    pub method: &'a str,
    /// The request target (path and query) as sent.
    pub target: &'a str,
    pub headers: &'a [httparse::Header<'a>],
    pub body: &'a [u8],
    /// The answer closes the connection (the client asked, or the server is
    /// shutting down): it must say `connection: close`, see [`end_head`].
    pub close: bool,
}

/// Answers requests on the fast path.
pub trait Responder: Send + Sync + 'static {
    /// The largest body worth reading; a longer one goes to hyper.
    fn max_body(&self) -> usize;

    /// Appends the whole answer to `out` ([`Outcome::Answered`]), or says why not
    /// (anything appended is dropped).
    fn respond(&self, request: &Request<'_>, out: &mut Vec<u8>) -> Outcome;
}

/// What became of a request.
pub enum Outcome {
    Answered,
    /// The router answers it.
    Declined,
    /// Answerable once this completes (it fills what the answer is read from:
    /// a token seen for the first time, the catalog catching up); asked once
    /// more then, and declined if it still is not. Without this, every
    /// connection a client opened before its token was in memory would stay
    /// on hyper for good.
    Later(Pin<Box<dyn Future<Output = ()> + Send>>),
}

/// Whether the first bytes of a connection are (`Some(true)`), are not
/// (`Some(false)`) or may yet be (`None`) a request the fast path takes.
pub fn takes(buf: &[u8]) -> Option<bool> {
    let mut undecided = false;
    for prefix in PREFIXES {
        let n = buf.len().min(prefix.len());
        if buf[..n] == prefix[..n] {
            if n == prefix.len() {
                return Some(true);
            }
            undecided = true;
        }
    }
    (!undecided).then_some(false)
}

/// What the buffer holds next.
enum Step {
    /// An answered request of this many bytes; `true`: the connection closes after it.
    Answered(usize, bool),
    /// Not a whole head yet.
    Head,
    /// A whole head, not yet its whole body.
    Body,
    /// The router answers this request.
    HandOver,
    /// Ask again once this completes ([`Outcome::Later`]).
    Later(Pin<Box<dyn Future<Output = ()> + Send>>),
}

/// A connection the fast path gives up: the connection loop hands it to hyper,
/// which serves it from here on, the bytes in `buf` first.
pub(super) struct HandOver {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
    /// The deadline of a body that was being read, which it keeps.
    pub body_deadline: Option<Instant>,
}

/// Serves `stream`, whose first bytes `buf` matched [`PREFIXES`], until it
/// closes (`None`) or is to be handed to hyper. `head_deadline` is when the
/// first head must be in.
pub(super) async fn serve(
    mut stream: TcpStream,
    mut buf: Vec<u8>,
    responder: &dyn Responder,
    limits: ConnectionLimits,
    closing: &watch::Receiver<bool>,
    mut head_deadline: Instant,
) -> Option<HandOver> {
    let mut out = Vec::with_capacity(1024);
    let mut body_deadline = None;
    // The current request begins at `buf[start]`.
    let mut start = 0;
    // The current request was asked about twice ([`Outcome::Later`]).
    let mut retried = false;
    // Made once: waiting on `closing` anew for every request would register
    // a waiter every time.
    let mut stop = closing.clone();
    let mut shutting_down = pin!(async move { outlet::shutting_down(&mut stop).await });
    loop {
        let closing_now = *closing.borrow();
        let step = next(&buf[start..], responder, &mut out, closing_now, retried);
        let waiting_for = match step {
            Step::Later(ready) => {
                ready.await;
                retried = true;
                continue;
            }
            Step::Answered(len, close) => {
                start += len;
                body_deadline = None;
                retried = false;
                if close {
                    if outlet::write_all(&stream, &out, limits.write_timeout)
                        .await
                        .is_ok()
                    {
                        let _ = stream.shutdown().await;
                    }
                    return None;
                }
                if out.len() < MAX_PENDING && start < buf.len() {
                    // Pipelined: answer what is already here first.
                    continue;
                }
                if send(&stream, &mut out, limits).await.is_err() {
                    return None;
                }
                head_deadline = Instant::now() + limits.header_timeout;
                continue;
            }
            Step::HandOver => {
                send(&stream, &mut out, limits).await.ok()?;
                buf.drain(..start);
                return Some(HandOver {
                    stream,
                    buf,
                    body_deadline,
                });
            }
            // The head's deadline, once answers so far are out.
            Step::Head => None,
            Step::Body => {
                Some(*body_deadline.get_or_insert_with(|| Instant::now() + limits.body_timeout))
            }
        };
        // More bytes are needed: answers so far go out first.
        if !out.is_empty() {
            send(&stream, &mut out, limits).await.ok()?;
            head_deadline = Instant::now() + limits.header_timeout;
        }
        if start > 0 {
            buf.drain(..start);
            start = 0;
        }
        let idle = buf.is_empty();
        if idle && closing_now {
            return None;
        }
        if idle {
            // What one large body needed is not kept for the connection's life.
            buf.shrink_to(IDLE_CAPACITY);
            out.shrink_to(IDLE_CAPACITY);
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(4096);
        }
        let read = tokio::select! {
            read = tokio::time::timeout_at(
                waiting_for.unwrap_or(head_deadline),
                stream.read_buf(&mut buf),
            ) => read,
            // Shutting down: a connection between requests closes at once.
            _ = &mut shutting_down, if idle => return None,
        };
        match read {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(_)) => {}
            // A body that did not arrive in time: the router answers 408.
            Err(_) if body_deadline.is_some() => {
                return Some(HandOver {
                    stream,
                    buf,
                    body_deadline,
                });
            }
            // No head in time: closed, as hyper does.
            Err(_) => return None,
        }
    }
}

/// Writes and empties `out`.
async fn send(
    stream: &TcpStream,
    out: &mut Vec<u8>,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let written = outlet::write_all(stream, out, limits.write_timeout).await;
    out.clear();
    written
}

/// Parses the next request in `bytes` and, when it is whole, has it answered into `out`.
fn next(
    bytes: &[u8],
    responder: &dyn Responder,
    out: &mut Vec<u8>,
    closing: bool,
    retried: bool,
) -> Step {
    if bytes.is_empty() {
        return Step::Head;
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
        Ok(httparse::Status::Partial) if bytes.len() < MAX_HEAD => return Step::Head,
        _ => return Step::HandOver,
    };
    if parsed.version != Some(1) {
        return Step::HandOver;
    }
    let (Some(method), Some(target)) = (parsed.method, parsed.path) else {
        return Step::HandOver;
    };
    let mut body_len = None;
    let mut close = closing;
    for header in parsed.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("expect")
            || name.eq_ignore_ascii_case("upgrade")
        {
            return Step::HandOver;
        }
        if name.eq_ignore_ascii_case("content-length") {
            match (body_len, content_length(header.value)) {
                (None, Some(len)) if len <= responder.max_body() => body_len = Some(len),
                _ => return Step::HandOver,
            }
        } else if name.eq_ignore_ascii_case("connection") {
            // hyper's reading: any `close` token closes.
            close |= header
                .value
                .split(|b| *b == b',')
                .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
    }
    let end = head_len + body_len.unwrap_or(0);
    if bytes.len() < end {
        return Step::Body;
    }
    let request = Request {
        method,
        target,
        headers: parsed.headers,
        body: &bytes[head_len..end],
        close,
    };
    let mark = out.len();
    match responder.respond(&request, out) {
        Outcome::Answered => return Step::Answered(end, close),
        Outcome::Declined => {}
        Outcome::Later(ready) if !retried => {
            out.truncate(mark);
            return Step::Later(ready);
        }
        Outcome::Later(_) => {}
    }
    out.truncate(mark);
    Step::HandOver
}

/// A `Content-Length` value: decimal digits only (anything else goes to hyper).
fn content_length(value: &[u8]) -> Option<usize> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// The status line.
pub fn status_line(out: &mut Vec<u8>, status: StatusCode) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// One header line.
pub fn header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// What axum and hyper add after a response's own headers, in their order:
/// the body's length (none for 304 and 204), `connection: close` when the
/// connection closes, the date, and the blank line.
pub fn end_head(out: &mut Vec<u8>, status: StatusCode, body_len: usize, close: bool) {
    if !matches!(status, StatusCode::NOT_MODIFIED | StatusCode::NO_CONTENT) {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(body_len.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"date: ");
    DATE.with(|date| {
        let mut date = date.borrow_mut();
        let now = SystemTime::now();
        let second = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if date.0 != second || date.1.is_empty() {
            *date = (second, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(date.1.as_bytes());
    });
    out.extend_from_slice(b"\r\n\r\n");
}

thread_local! {
    /// The `date` value of this second, formatted once (as hyper does).
    static DATE: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_fast_path_requests_from_others() {
        assert_eq!(takes(b""), None);
        assert_eq!(takes(b"G"), None);
        assert_eq!(takes(b"P"), None);
        assert_eq!(takes(b"GET /api/v1/"), None);
        assert_eq!(takes(b"GET /api/v1/namespaces/shop"), Some(true));
        assert_eq!(takes(b"POST /ofrep/v1/evaluate/flags/app"), Some(true));
        assert_eq!(takes(b"POST /ofrep/v1/evaluate/flags HTTP/1.1"), Some(true));
        assert_eq!(takes(b"GET /healthz"), Some(false));
        assert_eq!(takes(b"GET /api/v1/watch"), Some(false));
        assert_eq!(takes(b"PUT "), Some(false));
    }

    #[test]
    fn content_lengths_are_plain_digits() {
        assert_eq!(content_length(b"0"), Some(0));
        assert_eq!(content_length(b"123"), Some(123));
        for bad in [
            &b""[..],
            b"-1",
            b"1,1",
            b" 1",
            b"1e3",
            b"99999999999999999999",
        ] {
            assert_eq!(content_length(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_head_ends_as_hyper_ends_it() {
        let mut out = Vec::new();
        status_line(&mut out, StatusCode::NOT_MODIFIED);
        end_head(&mut out, StatusCode::NOT_MODIFIED, 0, true);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 304 Not Modified\r\nconnection: close\r\ndate: "),
            "{text}"
        );
        assert!(!text.contains("content-length"));
        assert!(text.ends_with(" GMT\r\n\r\n"), "{text}");
        let mut out = Vec::new();
        status_line(&mut out, StatusCode::OK);
        end_head(&mut out, StatusCode::OK, 12, true);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "HTTP/1.1 200 OK\r\ncontent-length: 12\r\nconnection: close\r\ndate: "
            ),
            "{text}"
        );
    }
}
