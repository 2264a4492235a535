//! The `graycast` binary: serve from any directory, graceful shutdown,
//! `token create` and `user create` on the database.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_graycast");

#[tokio::test]
async fn token_and_user_create_work_on_the_database_and_serve_honours_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cli.db").display());

    let out = Command::new(BIN)
        .args([
            "token",
            "create",
            "--name",
            "ci",
            "--role",
            "releaser",
            "--env",
            "prod",
            "--database-url",
            &db,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("gc_"), "{token}");

    let mut child = Command::new(BIN)
        .args([
            "user",
            "create",
            "--username",
            "grace",
            "--role",
            "editor",
            "--database-url",
            &db,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"grace-password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bad = Command::new(BIN)
        .args([
            "token",
            "create",
            "--name",
            "x",
            "--role",
            "root",
            "--database-url",
            &db,
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown role"));

    // Serve from an unrelated working directory; the token and user work.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut server = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &db])
        .current_dir(elsewhere.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let base = first.split_whitespace().last().unwrap().to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{first}");

    let client = reqwest::Client::new();
    let me: serde_json::Value = client
        .get(format!("{base}/api/v1/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["actor"]["role"], "releaser");
    assert_eq!(me["actor"]["env"], "prod");
    let login = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({ "username": "grace", "password": "grace-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);

    // SIGTERM: the server finishes and exits successfully.
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
}

#[test]
fn first_serve_without_a_password_prints_a_generated_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let mut server = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &db])
        .env_remove("GRAYCAST_ADMIN_PASSWORD")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let _url = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    assert!(
        second.contains("created user admin with password"),
        "{second}"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}
