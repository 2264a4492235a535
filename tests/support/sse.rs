//! A small server-sent events client over a real TCP connection (reqwest's streaming
//! body), for the watch and instances streams: the SDK's own parser
//! ([`graycast::client::sse::SseParser`]) reads the bytes. Shared by every test binary.
#![allow(dead_code)]

use futures_util::stream::{BoxStream, StreamExt};
use graycast::client::sse::{SseFrame, SseParser};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// How long a test waits for an expected event before failing.
pub const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// `event:` (`message` when absent); `comment` for a `:` line.
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

impl From<SseFrame> for SseEvent {
    fn from(frame: SseFrame) -> Self {
        match frame {
            SseFrame::Event(e) => Self {
                event: e.event,
                id: e.id,
                data: e.data,
            },
            SseFrame::Comment(text) => Self {
                event: "comment".into(),
                id: None,
                data: text,
            },
        }
    }
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
    }

    pub fn id(&self) -> i64 {
        self.id
            .as_deref()
            .expect("event has an id")
            .parse()
            .unwrap()
    }
}

pub struct SseStream {
    body: BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    parser: SseParser,
    pending: std::collections::VecDeque<SseEvent>,
}

/// Opens `url` with `token` (and `Last-Event-ID`), asserting 200 and the SSE content type.
pub async fn open(url: &str, token: &str, last_event_id: Option<i64>) -> SseStream {
    let response = request(url, token, last_event_id).await;
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    from_response(response)
}

pub async fn request(url: &str, token: &str, last_event_id: Option<i64>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(url).bearer_auth(token);
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id.to_string());
    }
    request.send().await.expect("request")
}

pub fn from_response(response: reqwest::Response) -> SseStream {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(content_type, "text/event-stream");
    SseStream {
        body: response.bytes_stream().boxed(),
        parser: SseParser::new(),
        pending: Default::default(),
    }
}

impl SseStream {
    /// The next event or comment, or `None` when the stream ended or `within` passed.
    pub async fn next_within(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()??;
            let chunk = chunk.ok()?;
            self.pending
                .extend(self.parser.feed(&chunk).into_iter().map(SseEvent::from));
        }
    }

    /// The next event (comments skipped); fails the test after [`PATIENCE`].
    pub async fn next_event(&mut self) -> SseEvent {
        loop {
            let event = self
                .next_within(PATIENCE)
                .await
                .expect("an event arrives before the stream ends or times out");
            if event.event != "comment" {
                return event;
            }
        }
    }

    /// Events until (and including) the first for which `done` holds.
    pub async fn until(&mut self, mut done: impl FnMut(&SseEvent) -> bool) -> Vec<SseEvent> {
        let mut seen = Vec::new();
        loop {
            let event = self.next_event().await;
            let stop = done(&event);
            seen.push(event);
            if stop {
                return seen;
            }
        }
    }

    /// The events (comments left out) before the stream's `: synced`, which
    /// ends what a watch stream is owed on connect.
    pub async fn until_synced(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        loop {
            let event = self
                .next_within(PATIENCE)
                .await
                .expect("the stream says it is synced");
            match (event.event.as_str(), event.data.as_str()) {
                ("comment", "synced") => return events,
                ("comment", _) => {}
                _ => events.push(event),
            }
        }
    }

    /// Whether the stream ends (rather than staying open) within [`PATIENCE`].
    pub async fn ends(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if self.next_within(left).await.is_none() {
                return tokio::time::Instant::now() < deadline;
            }
        }
    }
}
