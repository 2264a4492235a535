//! Start-up failures of the real binary say what failed: the address, the
//! database URL, the migration; never the opaque message of the API error.

use crate::common::eventually;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_graycast");

/// Runs `graycast serve` with `args` and waits (with a deadline) for it to exit.
async fn serve_fails(args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(args)
        .env("GRAYCAST_ADMIN_PASSWORD", "admin-password")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let exited = eventually("the server to exit", || {
        let status = child.try_wait().unwrap();
        async move { status }
    })
    .await;
    let output = child.wait_with_output().unwrap();
    assert!(
        !exited.success(),
        "exit status {exited:?}, stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn a_taken_address_fails_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("graycast.db").display());
    let out = serve_fails(&["--listen", &addr, "--database-url", &db]).await;
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "could not listen on {addr}: Address already in use"
        )),
        "{err}"
    );
    assert!(!err.contains("Something went wrong"), "{err}");
}

#[tokio::test]
async fn an_unusable_database_fails_naming_its_url() {
    let dir = tempfile::tempdir().unwrap();
    // A directory cannot be opened as a database file.
    let directory = format!("sqlite://{}", dir.path().display());
    // Nor can a database live below a regular file.
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "not a directory").unwrap();
    let below_file = format!("sqlite://{}/graycast.db", file.display());
    for (url, what) in [
        (directory.as_str(), "could not open the database"),
        (below_file.as_str(), "could not create the directory"),
    ] {
        let out = serve_fails(&["--listen", "127.0.0.1:0", "--database-url", url]).await;
        let err = stderr(&out);
        assert!(err.contains(what), "{url}: {err}");
        assert!(err.contains(&format!("{url:?}")), "{url}: {err}");
    }
}

#[tokio::test]
async fn a_database_url_of_another_engine_is_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_graycast"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            "mysql://localhost/x",
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // A server that took the URL as a file path would serve on: killed when the wait ends.
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("the server refuses to start instead of serving")
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unsupported database URL \"mysql://localhost/x\"")
            && err.contains("sqlite://"),
        "{err}"
    );
    let created: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(created.is_empty(), "nothing is created: {created:?}");
}

#[tokio::test]
async fn a_failed_migration_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    // Some other program's database: a `users` table the first migration cannot create.
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE users (name TEXT)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let db = format!("sqlite://{}", path.display());
    let out = serve_fails(&["--listen", "127.0.0.1:0", "--database-url", &db]).await;
    let err = stderr(&out);
    assert!(
        err.contains(&format!("could not migrate the database {db:?}")),
        "{err}"
    );
}
