//! A real OpenFeature client: the server SDK with its OFREP provider
//! (tests/ofrep-node) evaluates configs and agrees with `resolve`, and sees a
//! release on its next evaluation.

use super::{gray_lanes, resolved, shop};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The Node client, one context in and one result out per line.
struct Provider {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Provider {
    fn start(base: &str, token: &str, key: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ofrep-node");
        assert!(
            dir.join("node_modules/@openfeature/ofrep-provider")
                .is_dir(),
            "tests/ofrep-node/node_modules is missing: run scripts/bootstrap.sh test"
        );
        let mut child = Command::new("node")
            .arg(dir.join("evaluate.mjs"))
            .args([base, token, "shop", "prod", key])
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs (scripts/bootstrap.sh test installs the toolchain)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            stdin,
            stdout,
        }
    }

    async fn evaluate(&mut self, context: &Value) -> Value {
        self.stdin
            .write_all(format!("{context}\n").as_bytes())
            .await
            .unwrap();
        let read = tokio::time::timeout(crate::common::PATIENCE, self.stdout.next_line());
        let line = read
            .await
            .expect("the Node client answers in time")
            .unwrap()
            .expect("the Node client exited early");
        serde_json::from_str(&line).unwrap()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[tokio::test]
async fn the_openfeature_ofrep_provider_agrees_with_resolve() {
    let (app, _) = shop().await;
    let contexts = gray_lanes(&app).await;
    // A token without limits: the scope rides in the X-Graycast headers.
    let token = app.token("node", "subscriber", None, None).await;
    let mut provider = Provider::start(&app.base, &token, "app.json");
    // Every fourth context, and pod-7 (targeted).
    let sample = contexts
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 4 == 0 || *i == 7);
    for (_, context) in sample {
        let (version, lane, content) = resolved(&app, "app.json", context).await;
        let got = provider.evaluate(context).await;
        assert_eq!(got["errorCode"], Value::Null, "{context}: {got}");
        assert_eq!(got["variant"], format!("v{version}"), "{context}: {got}");
        assert_eq!(
            got["value"],
            serde_json::from_str::<Value>(&content).unwrap()
        );
        assert_eq!(got["metadata"]["version"], version);
        assert_eq!(
            got["metadata"].get("lane").cloned().unwrap_or(Value::Null),
            lane
        );
        let reason = match (lane.is_null(), context["targetingKey"] == "pod-7") {
            (true, _) => "DEFAULT",
            (false, true) => "TARGETING_MATCH",
            (false, false) => "SPLIT",
        };
        assert_eq!(got["reason"], reason, "{context}: {got}");
    }
    // An unknown key: the code default, with the error the provider maps.
    let mut missing = Provider::start(&app.base, &token, "missing.json");
    let got = missing.evaluate(&json!({ "targetingKey": "pod-1" })).await;
    assert_eq!(got["value"], json!({ "default": true }), "{got}");
    assert_eq!(got["errorCode"], "FLAG_NOT_FOUND", "{got}");
}

#[tokio::test]
async fn the_provider_sees_a_release_on_its_next_evaluation() {
    let (app, token) = shop().await;
    let mut provider = Provider::start(&app.base, &token, "app.json");
    let context = json!({ "targetingKey": "pod-1" });
    let got = provider.evaluate(&context).await;
    assert_eq!(
        (&got["variant"], &got["value"]),
        (&json!("v1"), &json!({"v": 1})),
        "{got}"
    );
    assert_eq!(got["reason"], "STATIC");
    app.save("shop", "prod", "app.json", r#"{"v":2}"#, 1).await;
    app.release("shop", "prod", "app.json", 2, "next").await;
    let got = provider.evaluate(&context).await;
    assert_eq!(
        (&got["variant"], &got["value"]),
        (&json!("v2"), &json!({"v": 2})),
        "{got}"
    );
}
