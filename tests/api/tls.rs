//! Issue 13, point 14: the agent and the SDK talk TLS (rustls) to a server behind a TLS endpoint
//! with a private CA, and refuse plain `http://` to a server off loopback unless told otherwise.
//!
//! The endpoint is a rustls acceptor in this test that passes the bytes on to the real server
//! (as a TLS-terminating load balancer would), with a certificate for `localhost` and
//! `127.0.0.1` issued by a CA made here.

use crate::common::{eventually, spawn_app, TestApp};
use graycast::client::{Client, ClientError, Update, WatchOptions, Watcher};
use graycast::domain::Context;
use graycast::model::{ReportStatus, Resolved};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

const BIN: &str = env!("CARGO_BIN_EXE_graycast");
const PATIENCE: Duration = Duration::from_secs(60);

/// A TLS endpoint on a free loopback port in front of `upstream`.
struct TlsProxy {
    /// `https://127.0.0.1:<port>`
    base: String,
    /// The private CA that issued the endpoint's certificate (PEM).
    ca_pem: String,
    /// Completed TLS handshakes: each is a connection that went through TLS.
    handshakes: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tls_proxy(upstream: String) -> TlsProxy {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "graycast test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    let handshakes = Arc::new(AtomicUsize::new(0));
    let counted = handshakes.clone();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, upstream, counted) =
                (acceptor.clone(), upstream.clone(), counted.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let Ok(mut server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
            });
        }
    });
    TlsProxy {
        base,
        ca_pem,
        handshakes,
        task,
    }
}

/// The server with namespace `shop`, config `app.txt` released at version 1, a subscriber
/// token, and a TLS endpoint in front of it.
async fn setup() -> (TestApp, String, TlsProxy) {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.config("shop", "prod", "app.txt", "text", "one").await;
    app.release("shop", "prod", "app.txt", 1, "").await;
    let token = app
        .token("sub", "subscriber", Some("shop"), Some("prod"))
        .await;
    let upstream = app.base.trim_start_matches("http://").to_string();
    let proxy = tls_proxy(upstream).await;
    (app, token, proxy)
}

/// What the instances list says about `client_id`'s `app.txt`.
async fn instance_config(app: &TestApp, client_id: &str) -> Option<Value> {
    let (_, list) = app
        .get_json("/api/v1/namespaces/shop/envs/prod/instances")
        .await;
    list["instances"]
        .as_array()?
        .iter()
        .find(|i| i["client_id"] == client_id)
        .map(|i| i["configs"]["app.txt"].clone())
}

async fn next_config(watcher: &mut Watcher) -> Resolved {
    match tokio::time::timeout(PATIENCE, watcher.next()).await {
        Ok(Some(Update::Config { config, .. })) => config,
        other => panic!("expected a config event, got {other:?}"),
    }
}

#[tokio::test]
async fn sdk_resolves_watches_and_reports_over_tls_with_a_private_ca() {
    let (app, token, proxy) = setup().await;
    let context = Context::from([("client_id".to_string(), "pod-1".to_string())]);

    // Without the private CA the server's certificate is not trusted.
    let untrusting = Client::new(&proxy.base, &token).unwrap();
    let refused = untrusting
        .resolve("shop", "prod", "app.txt", &context)
        .await
        .unwrap_err();
    assert!(matches!(refused, ClientError::Http(_)), "{refused}");
    assert_eq!(proxy.handshakes.load(Ordering::SeqCst), 0);

    let client = Client::builder(&proxy.base, &token)
        .ca_cert_pem(proxy.ca_pem.clone())
        .build()
        .unwrap();
    let resolved = client
        .resolve("shop", "prod", "app.txt", &context)
        .await
        .unwrap()
        .expect("version 1 resolves");
    assert_eq!((resolved.version, resolved.content.as_str()), (1, "one"));

    let mut watcher = client.watch(WatchOptions::new("shop", "prod", "pod-1"));
    assert_eq!(next_config(&mut watcher).await.version, 1);
    app.save("shop", "prod", "app.txt", "two", 1).await;
    app.release("shop", "prod", "app.txt", 2, "").await;
    let pushed = next_config(&mut watcher).await;
    assert_eq!((pushed.version, pushed.content.as_str()), (2, "two"));

    watcher
        .report("app.txt", 2, ReportStatus::Applied, None)
        .await
        .unwrap();
    eventually("the report in the instances list", || async {
        let c = instance_config(&app, "pod-1").await?;
        (c["applied"] == 2).then_some(())
    })
    .await;
    assert!(
        proxy.handshakes.load(Ordering::SeqCst) >= 2,
        "the requests and the stream went through TLS"
    );
}

/// Issue 17, point 6: a node whose certificate is not trusted (here: issued by another CA)
/// is a TLS failure like a dead node: the client moves on to the next URL of its list.
#[tokio::test]
async fn a_tls_failure_moves_the_client_to_the_next_server() {
    let (app, token, trusted) = setup().await;
    let stranger = tls_proxy(app.base.trim_start_matches("http://").to_string()).await;
    let client = Client::builder_many(&[&stranger.base, &trusted.base], &token)
        .ca_cert_pem(trusted.ca_pem.clone())
        .build()
        .unwrap();
    let context = Context::from([("client_id".to_string(), "pod-1".to_string())]);
    let resolved = client
        .resolve("shop", "prod", "app.txt", &context)
        .await
        .unwrap()
        .expect("version 1 resolves");
    assert_eq!(resolved.version, 1);
    assert_eq!(client.server(), trusted.base);
    assert_eq!(stranger.handshakes.load(Ordering::SeqCst), 0);

    let watching = Client::builder_many(&[&stranger.base, &trusted.base], &token)
        .ca_cert_pem(trusted.ca_pem.clone())
        .build()
        .unwrap();
    let mut watcher = watching.watch(WatchOptions::new("shop", "prod", "pod-2"));
    assert_eq!(next_config(&mut watcher).await.version, 1);
    assert_eq!(watching.server(), trusted.base);
    assert_eq!(stranger.handshakes.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn agent_syncs_a_directory_over_tls_with_ca_cert() {
    let (app, token, proxy) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &proxy.ca_pem).unwrap();
    let files = dir.path().join("files");
    let agent = |extra: &[&str]| {
        let mut command = tokio::process::Command::new(BIN);
        command
            .arg("agent")
            .args(["--server", &proxy.base])
            .args([
                "--namespace",
                "shop",
                "--env",
                "prod",
                "--client-id",
                "agent-1",
            ])
            .arg("--dir")
            .arg(&files)
            .args(extra)
            .env("GRAYCAST_TOKEN", &token)
            .env("GRAYCAST_CA_CERT", &ca_file)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        command
    };

    // --once through TLS, the CA given by GRAYCAST_CA_CERT.
    let once = tokio::time::timeout(PATIENCE, agent(&["--once"]).output())
        .await
        .expect("agent --once finishes")
        .unwrap();
    assert!(
        once.status.success(),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
    assert_eq!(read(&files.join("app.txt")), "one");

    // Watching: a new release reaches the file, and the report reaches the server.
    let mut watching = agent(&[]).spawn().unwrap();
    app.save("shop", "prod", "app.txt", "two", 1).await;
    app.release("shop", "prod", "app.txt", 2, "").await;
    eventually("app.txt to be version 2", || async {
        (read(&files.join("app.txt")) == "two").then_some(())
    })
    .await;
    eventually("applied 2 in the instances list", || async {
        let c = instance_config(&app, "agent-1").await?;
        (c["status"] == "applied" && c["applied"] == 2).then_some(())
    })
    .await;
    watching.kill().await.unwrap();
    assert!(proxy.handshakes.load(Ordering::SeqCst) >= 2);
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test]
async fn plain_http_off_loopback_is_refused_before_any_connection() {
    // `.invalid` names never resolve (RFC 6761): nothing could be reached even by mistake.
    for base in ["http://graycast.invalid:8080", "http://localhost.invalid"] {
        let refused = Client::new(base, "gc_x").err().expect("refused");
        let message = refused.to_string();
        assert!(
            message.contains("https://") && message.contains("--insecure"),
            "{base}: {message}"
        );
        // Allowed explicitly, it builds (building connects to nothing).
        Client::builder(base, "gc_x")
            .insecure(true)
            .build()
            .unwrap();
    }
    for base in [
        "http://127.0.0.1:9",
        "http://127.8.9.10:9",
        "http://[::1]:9",
        "http://localhost:9",
    ] {
        Client::new(base, "gc_x").unwrap();
    }

    // The agent says so and stops before touching its directory or the network.
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    let output = tokio::time::timeout(
        PATIENCE,
        tokio::process::Command::new(BIN)
            .arg("agent")
            .args(["--server", "http://graycast.invalid:8080"])
            .args(["--namespace", "shop", "--env", "prod", "--token", "gc_x"])
            .arg("--dir")
            .arg(&files)
            .env_remove("GRAYCAST_INSECURE")
            .output(),
    )
    .await
    .expect("the agent exits at once")
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--insecure"), "{stderr}");
    assert!(!files.exists(), "the refusal comes before anything else");

    // A CA file without a PEM certificate is refused, also before anything else.
    let bad_ca = dir.path().join("ca.pem");
    std::fs::write(&bad_ca, "not a certificate").unwrap();
    let output = tokio::process::Command::new(BIN)
        .arg("agent")
        .args(["--server", "https://graycast.invalid"])
        .args(["--namespace", "shop", "--env", "prod", "--token", "gc_x"])
        .arg("--ca-cert")
        .arg(&bad_ca)
        .arg("--dir")
        .arg(&files)
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PEM"), "{stderr}");
    assert!(!files.exists());
}
