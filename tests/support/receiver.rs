//! A notification receiver for the tests: an HTTP server on a free loopback port that answers
//! every POST to `/hook` with the status the test sets, and keeps what it got.

// Each test crate uses part of it.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

/// One request the receiver got.
#[derive(Clone)]
pub struct Got {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Got {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }
}

/// A receiver on a free loopback port: answers every POST with `status`, keeps what it got.
pub struct Receiver {
    pub url: String,
    pub status: Arc<AtomicU16>,
    got: Arc<Mutex<Vec<Got>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start(status: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let status = Arc::new(AtomicU16::new(status));
        let got = Arc::new(Mutex::new(Vec::new()));
        let (s, g) = (status.clone(), got.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (s, g) = (s.clone(), g.clone());
                async move {
                    g.lock().unwrap().push(Got { headers, body });
                    StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap()
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            status,
            got,
            task,
        }
    }

    pub fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }

    /// The `n`-th request (from 1), once it came.
    pub async fn nth(&self, n: usize) -> Got {
        let got = self.got.clone();
        super::eventually::eventually(&format!("delivery {n} at the receiver"), || {
            let got = got.clone();
            async move { got.lock().unwrap().get(n - 1).cloned() }
        })
        .await
    }

    /// Everything it got so far.
    pub fn all(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }
}
