//! Issue 14 (point 8): what the dashboard's diff page asks of the REST API.

use crate::common::{config_path, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_diff_can_hide_whitespace_only_changes() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.config("shop", "prod", "app.yaml", "yaml", "a:\n  b: 1\n  c: 2\n")
        .await;
    app.save("shop", "prod", "app.yaml", "a:\n    b: 1\n    c: 3\n", 1)
        .await;
    let diff = |query: &'static str| {
        let path = config_path("shop", "prod", "app.yaml", query);
        let app = &app;
        async move { app.get_json(&path).await }
    };
    let (status, all) = diff("/diff?from=1&to=2").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!((&all["added"], &all["removed"]), (&json!(2), &json!(2)));
    let (status, hidden) = diff("/diff?from=1&to=2&ignore_whitespace=true").await;
    assert_eq!(status, StatusCode::OK, "{hidden}");
    assert_eq!(
        (&hidden["added"], &hidden["removed"]),
        (&json!(1), &json!(1))
    );
    // Equal rows still show each side's own text.
    assert_eq!(
        hidden["rows"][1],
        json!({"tag": "equal", "left_no": 2, "left": "  b: 1", "right_no": 2, "right": "    b: 1"})
    );
    assert_eq!(hidden["rows"][2]["tag"], "replace");
    // The cached plain diff is not what the option answers, nor the other way round.
    let (_, again) = diff("/diff?from=1&to=2").await;
    assert_eq!(again, all);
}

/// The server builds a page once: each of its resources is fetched and sent to the browser
/// once. (The layout's Suspense used to dry-resolve the `<Outlet />`, which built the page
/// again each time: the HTML came from the last build, the browser hydrated with the first
/// build's data, and a change in between — a plan aborting while its page loaded — made the
/// page panic while hydrating.)
#[tokio::test]
async fn a_page_is_built_once_on_the_server() {
    let app = spawn_app().await;
    app.namespace("shop").await;
    app.config("shop", "prod", "app.json", "json", "{\"a\": 1}\n")
        .await;
    for path in ["/ns/shop/prod/app.json", "/ns/shop/prod", "/"] {
        let page = app.admin.get(app.url(path)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{path}");
        let html = page.text().await.unwrap();
        let ids: Vec<u32> = html
            .match_indices("__RESOLVED_RESOURCES[")
            .map(|(at, _)| {
                let rest = &html[at + "__RESOLVED_RESOURCES[".len()..];
                rest[..rest.find(']').unwrap()].parse().unwrap()
            })
            .collect();
        assert!(ids.len() >= 2, "{path}: the page sends its data: {ids:?}");
        // The signed-in user is resource 0; a page built twice sends its own resources again
        // under new ids, so its namespaces list (or its config) would appear twice.
        let copies = html.matches("\\\"namespace\\\":\\\"shop\\\"").count()
            + html.matches("\\\"name\\\":\\\"shop\\\"").count();
        assert_eq!(copies, 1, "{path}: each resource once: {ids:?}\n{html}");
    }
}
