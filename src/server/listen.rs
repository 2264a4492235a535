//! The connection loop: every connection is served by hyper, except one
//! whose first request is `GET /api/v1/watch`, which gets a lean responder.
//!
//! Why: a watch stream is one long-lived connection per subscriber. hyper 1.x
//! gives every HTTP/1 connection an 8 KiB read buffer and an 8 KiB write
//! buffer for its whole life (a constant, no setting), 16 KiB per subscriber
//! before any graycast state. The lean responder reads the request head into
//! a buffer it frees once the head is parsed, passes the request through the
//! same router (authentication, metrics, the watch handler: nothing is
//! duplicated) with the socket attached as an [`Outlet`], writes the response
//! head, and hands the stream to [`outlet::run`]: from then on the push hub
//! writes each event straight into the socket. An idle stream holds its
//! socket, its task and the hub's record of it, nothing more.
//!
//! A connection whose first request is a resolve or an OFREP evaluation goes
//! to the fast path (src/server/fast.rs), which hands it to hyper at the first
//! request it does not answer. Everything else, including a watch request
//! that comes second on a reused connection, is plain hyper with the bytes
//! already read replayed first.
//!
//! Every connection is bounded in time and number ([`ConnectionLimits`]): the request
//! head and the request body must arrive in time, a client that stops reading
//! is cut off whichever path serves it, and connections over the limit are
//! answered 503 and closed at once.

use crate::server::fast::{self, Responder};
use crate::server::limits::{BodyTimeout, ConnectionLimits};
use crate::server::outlet::{self, Live, Outlet};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};
use axum::response::Response;
use axum::Router;
use http_body_util::BodyExt;
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

/// The request line prefix the lean responder takes.
const WATCH: &[u8] = b"GET /api/v1/watch";
/// A watch request head larger than this goes to hyper, which refuses it (431).
const MAX_HEAD: usize = 16 * 1024;
/// Headers a watch request may carry.
const MAX_HEADERS: usize = 64;
/// Sent to a connection over [`ConnectionLimits::max_connections`] before it is closed.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
retry-after: 5\r\ncontent-length: 41\r\nconnection: close\r\n\r\n\
Too many connections; try again shortly.\n";

/// Raises the soft limit on open files to the hard limit: every connection
/// is a file descriptor, and the usual soft default (1024) would cap the
/// server far below [`ConnectionLimits::max_connections`]. Returns the limit now in force.
#[cfg(unix)]
pub fn raise_open_file_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    #[allow(clippy::unnecessary_cast)] // `rlim_t` is not `u64` on every Unix.
    Ok(limit.rlim_cur as u64)
}

/// Accepts connections until `closing` turns true, then waits for every
/// connection to finish (watch streams end on `closing`; hyper connections
/// finish the request in flight).
/// Requests the fast path takes are answered by `fast` when given
/// (src/server/fast.rs), everything else by `router`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    fast: Option<Arc<dyn Responder>>,
    limits: ConnectionLimits,
    closing: watch::Receiver<bool>,
) -> io::Result<()> {
    // Each connection task holds a receiver; `closed()` completes when all are gone.
    let (alive, _) = watch::channel(());
    let open = Arc::new(AtomicUsize::new(0));
    let mut stop = closing.clone();
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = outlet::shutting_down(&mut stop) => break,
        };
        if open.fetch_add(1, Ordering::AcqRel) >= limits.max_connections {
            open.fetch_sub(1, Ordering::AcqRel);
            refuse(&stream);
            continue;
        }
        let counted = Counted(open.clone());
        let router = router.clone();
        let fast = fast.clone();
        let closing = closing.clone();
        let alive = alive.subscribe();
        tokio::spawn(async move {
            connection(stream, remote, router, fast, limits, closing).await;
            drop(alive);
            drop(counted);
        });
    }
    drop(listener);
    alive.closed().await;
    Ok(())
}

/// Answers a connection over the limit with [`OVER_CAPACITY`], without
/// waiting for anything: a flood costs an accept, a send and a close each.
fn refuse(stream: &TcpStream) {
    let socket = socket2::SockRef::from(stream);
    // Plain calls on the new socket: its send buffer is empty.
    let _ = socket.send(OVER_CAPACITY);
    let _ = socket.shutdown(std::net::Shutdown::Write);
    // What the client already sent is read, so closing sends no reset that
    // could overtake the answer.
    let mut sink = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
    let _ = socket.recv_with_flags(&mut sink, libc::MSG_DONTWAIT);
}

/// One open connection, counted in `serve`'s total until dropped.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    router: Router,
    fast: Option<Arc<dyn Responder>>,
    limits: ConnectionLimits,
    closing: watch::Receiver<bool>,
) {
    // Events are small writes that must leave at once.
    let _ = stream.set_nodelay(true);
    let mut stop = closing.clone();
    let head_deadline = tokio::time::Instant::now() + limits.header_timeout;
    let read = tokio::select! {
        read = tokio::time::timeout_at(head_deadline, first_request(&stream)) => match read {
            Ok(Ok(read)) => read,
            Ok(Err(_)) | Err(_) => return,
        },
        // Shutting down: a connection that has not sent a request yet is simply closed.
        _ = outlet::shutting_down(&mut stop) => return,
    };
    match read {
        FirstRequest::Watch { head, end } => {
            let lean = lean_watch(stream, remote, router, &head[..end], limits, closing);
            if let Err(e) = lean.await {
                tracing::debug!(error = %e, "watch connection ended");
            }
        }
        FirstRequest::Fast(prefix) => match fast {
            Some(responder) => {
                let served = fast::serve(
                    stream,
                    prefix,
                    responder.as_ref(),
                    limits,
                    &closing,
                    head_deadline,
                );
                if let Some(rest) = served.await {
                    let (stream, buf, deadline) = (rest.stream, rest.buf, rest.body_deadline);
                    hyper_connection(stream, buf, remote, router, limits, closing, deadline).await
                }
            }
            None => hyper_connection(stream, prefix, remote, router, limits, closing, None).await,
        },
        FirstRequest::Other(prefix) => {
            hyper_connection(stream, prefix, remote, router, limits, closing, None).await
        }
    }
}

enum FirstRequest {
    /// A watch request: its head is `head[..end]`.
    Watch { head: Vec<u8>, end: usize },
    /// A request for the fast path ([`fast::PREFIXES`]): the bytes read so far.
    Fast(Vec<u8>),
    /// Anything else: the bytes read so far, for hyper.
    Other(Vec<u8>),
}

/// Reads until it is known whether the first request is a watch request or
/// one for the fast path, and for a watch request until its head is complete.
async fn first_request(stream: &TcpStream) -> io::Result<FirstRequest> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let decided = watch_prefix(&buf);
        if decided == Some(false) {
            match fast::takes(&buf) {
                Some(true) => return Ok(FirstRequest::Fast(buf)),
                Some(false) => return Ok(FirstRequest::Other(buf)),
                None => {}
            }
        }
        if decided == Some(true) {
            if let Some(end) = head_end(&buf) {
                return Ok(FirstRequest::Watch { head: buf, end });
            }
            if buf.len() >= MAX_HEAD {
                // Let hyper answer 431 as it would for any request.
                return Ok(FirstRequest::Other(buf));
            }
        }
        if buf.capacity() - buf.len() < 512 {
            buf.reserve(buf.capacity().min(MAX_HEAD));
        }
        stream.readable().await?;
        match stream.try_read_buf(&mut buf) {
            Ok(0) if buf.is_empty() => return Err(io::ErrorKind::UnexpectedEof.into()),
            // Half a request and then EOF: hyper answers or closes.
            Ok(0) => return Ok(FirstRequest::Other(buf)),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// `Some(true)`: the request line is a watch request; `Some(false)`: it is
/// not; `None`: not enough bytes yet.
fn watch_prefix(buf: &[u8]) -> Option<bool> {
    let n = buf.len().min(WATCH.len());
    if buf[..n] != WATCH[..n] {
        return Some(false);
    }
    match buf.get(WATCH.len()) {
        None => None,
        // `/api/v1/watch?…` or `/api/v1/watch HTTP/1.1`, not `/api/v1/watchers`.
        Some(b'?') | Some(b' ') => Some(true),
        Some(_) => Some(false),
    }
}

/// Where the request head in `buf` ends, as httparse (hyper's parser) finds it: bare-LF line
/// ends too, which a search for CRLF CRLF would wait for until the header timeout. A head
/// httparse refuses ends where the bytes do: [`parse_head`] then answers 400.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::Request::new(&mut headers).parse(buf) {
        Ok(httparse::Status::Complete(len)) => Some(len),
        Ok(httparse::Status::Partial) => None,
        Err(_) => Some(buf.len()),
    }
}

/// Parses a request head into a bodiless request.
fn parse_head(head: &[u8]) -> Result<Request, StatusCode> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(StatusCode::BAD_REQUEST),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        }
        Err(_) => return Err(StatusCode::BAD_REQUEST),
    }
    let uri: Uri = parsed
        .path
        .unwrap_or("/")
        .parse()
        .map_err(|_| StatusCode::BAD_REQUEST)?;
    let version = match parsed.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let mut request = Request::new(Body::empty());
    *request.method_mut() = Method::GET;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    let map = request.headers_mut();
    for h in parsed.headers.iter() {
        let name =
            HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| StatusCode::BAD_REQUEST)?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| StatusCode::BAD_REQUEST)?;
        map.append(name, value);
    }
    // A watch request has no body; one announced cannot be told apart from
    // the next request, so it is refused like a malformed head.
    let has_body = map.contains_key(header::TRANSFER_ENCODING)
        || map
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if has_body {
        return Err(StatusCode::BAD_REQUEST);
    }
    Ok(request)
}

/// Serves one watch request on `stream`, then closes it.
async fn lean_watch(
    stream: TcpStream,
    remote: SocketAddr,
    router: Router,
    head: &[u8],
    limits: ConnectionLimits,
    closing: watch::Receiver<bool>,
) -> io::Result<()> {
    let write_timeout = limits.write_timeout;
    let mut request = match parse_head(head) {
        Ok(request) => request,
        Err(status) => {
            let response = Response::builder()
                .status(status)
                .body(Body::from("malformed request head\n"))
                .expect("static response");
            return write_response(&stream, Version::HTTP_11, response, write_timeout).await;
        }
    };
    let version = request.version();
    // HTTP/1.0 has no chunks: the body then ends where the connection does.
    let outlet = Arc::new(
        Outlet::new(stream, version == Version::HTTP_11).with_write_timeout(write_timeout),
    );
    request.extensions_mut().insert(ConnectInfo(remote));
    request.extensions_mut().insert(outlet.clone());
    let Ok(mut response) = router.oneshot(request).await;
    match response
        .extensions_mut()
        .remove::<LiveHandoff>()
        .and_then(|h| h.take())
    {
        Some(live) => {
            let head = response_head(version, response.status(), response.headers(), None);
            outlet::write_all(outlet.socket(), &head, write_timeout).await?;
            drop(head);
            drop(response);
            outlet::run(outlet, live, closing).await
        }
        None => write_response(outlet.socket(), version, response, write_timeout).await,
    }
}

/// The status line and headers of `response`; `length` is the body's when
/// known, else the body is chunked (HTTP/1.1) or ends with the connection.
fn response_head(
    version: Version,
    status: StatusCode,
    headers: &HeaderMap,
    length: Option<usize>,
) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(if version == Version::HTTP_10 {
        b"HTTP/1.0 "
    } else {
        b"HTTP/1.1 "
    });
    head.extend_from_slice(status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if name == header::CONNECTION
            || name == header::TRANSFER_ENCODING
            || name == header::CONTENT_LENGTH
        {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"date: ");
    head.extend_from_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
    head.extend_from_slice(b"\r\n");
    match length {
        Some(len) => head.extend_from_slice(format!("content-length: {len}\r\n").as_bytes()),
        None if version == Version::HTTP_11 => {
            head.extend_from_slice(b"transfer-encoding: chunked\r\n")
        }
        None => {}
    }
    // One request per lean connection: the stream's end is the connection's.
    head.extend_from_slice(b"connection: close\r\n\r\n");
    head
}

/// Writes a complete `response` (an error: the event stream goes through
/// [`outlet::run`]) with its length, then closes.
async fn write_response(
    stream: &TcpStream,
    version: Version,
    response: Response,
    write_timeout: Duration,
) -> io::Result<()> {
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| io::Error::other(e.to_string()))?
        .to_bytes();
    let response = Response::from_parts(parts, ());
    let head = response_head(
        version,
        response.status(),
        response.headers(),
        Some(body.len()),
    );
    outlet::write_all(stream, &head, write_timeout).await?;
    outlet::write_all(stream, &body, write_timeout).await
}

/// Set by the watch handler on its response when it served a lean
/// connection's request: the stream continues in [`outlet::run`].
#[derive(Clone)]
pub struct LiveHandoff(Arc<Mutex<Option<Live>>>);

impl LiveHandoff {
    pub fn new(live: Live) -> Self {
        Self(Arc::new(Mutex::new(Some(live))))
    }

    fn take(&self) -> Option<Live> {
        self.0.lock().expect("handoff lock").take()
    }
}

/// A connection for hyper, with the bytes already read replayed first;
/// `body_deadline`, when given, bounds the first request's body (one the
/// fast path began to read).
async fn hyper_connection(
    stream: TcpStream,
    prefix: Vec<u8>,
    remote: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    mut closing: watch::Receiver<bool>,
    body_deadline: Option<tokio::time::Instant>,
) {
    let io = TokioIo::new(Prefixed {
        prefix,
        pos: 0,
        inner: stream,
        write_timeout: limits.write_timeout,
        stalled: None,
    });
    let body_timeout = limits.body_timeout;
    let first_deadline = body_deadline.map(|d| Arc::new(Mutex::new(Some(d))));
    let service = router.map_request(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        let deadline = first_deadline
            .as_ref()
            .and_then(|first| first.lock().expect("deadline lock").take())
            .unwrap_or_else(|| tokio::time::Instant::now() + body_timeout);
        request.map(|body| {
            if body.is_end_stream() {
                Body::new(body)
            } else {
                Body::new(Deadline {
                    inner: body,
                    deadline,
                    timeout: body_timeout,
                    sleep: None,
                })
            }
        })
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut conn = pin!(builder.serve_connection(io, TowerToHyperService::new(service)));
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = outlet::shutting_down(&mut closing), if !shutting_down => {
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// A request body that fails with [`BodyTimeout`] unless it ends by
/// `deadline`: a client trickling its body holds the connection no longer.
struct Deadline {
    inner: Incoming,
    deadline: tokio::time::Instant,
    timeout: Duration,
    /// Armed the first time the body is waited for.
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl hyper::body::Body for Deadline {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(this.timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `inner`, with `prefix[pos..]` read first; a write that cannot go out for
/// `write_timeout` (the client stopped reading) fails.
struct Prefixed {
    prefix: Vec<u8>,
    pos: usize,
    inner: TcpStream,
    write_timeout: Duration,
    /// Running while the socket is full; reset by any progress.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Prefixed {
    /// Passes a write's outcome on, timing how long the socket stays full.
    fn stall<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let timeout = self.write_timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.pos < this.prefix.len() {
            let n = buf.remaining().min(this.prefix.len() - this.pos);
            buf.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.stall(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.stall(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_watch_requests_from_others() {
        assert_eq!(watch_prefix(b""), None);
        assert_eq!(watch_prefix(b"GET /api/v1/wa"), None);
        assert_eq!(watch_prefix(b"GET /api/v1/watch"), None);
        assert_eq!(watch_prefix(b"GET /api/v1/watch?namespace=a"), Some(true));
        assert_eq!(watch_prefix(b"GET /api/v1/watch HTTP/1.1\r\n"), Some(true));
        assert_eq!(watch_prefix(b"GET /api/v1/watchers"), Some(false));
        assert_eq!(watch_prefix(b"POST /api/v1/watch"), Some(false));
        assert_eq!(
            watch_prefix(b"GET /"),
            None,
            "could still become a watch request"
        );
        assert_eq!(watch_prefix(b"GET /healthz"), Some(false));
        assert_eq!(watch_prefix(b"G"), None);
        assert_eq!(watch_prefix(b"X"), Some(false));
    }

    #[test]
    fn the_over_capacity_answer_is_complete() {
        let text = std::str::from_utf8(OVER_CAPACITY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
    }

    #[test]
    fn parses_a_watch_head() {
        let head = b"GET /api/v1/watch?namespace=shop&env=prod HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nLast-Event-ID: 7\r\n\r\n";
        let request = parse_head(head).unwrap();
        assert_eq!(request.uri().path(), "/api/v1/watch");
        assert_eq!(request.uri().query(), Some("namespace=shop&env=prod"));
        assert_eq!(request.headers()["last-event-id"], "7");
        assert_eq!(request.version(), Version::HTTP_11);
        let with_body = b"GET /api/v1/watch HTTP/1.1\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(parse_head(with_body).unwrap_err(), StatusCode::BAD_REQUEST);
        assert_eq!(
            parse_head(b"GET /api/v1/watch HTTP/1.1\r\nBad Header\r\n\r\n").unwrap_err(),
            StatusCode::BAD_REQUEST
        );
    }
}
