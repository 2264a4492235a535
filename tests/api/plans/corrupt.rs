//! A plan's words are read as their types: a state, guard status or transition action outside
//! them is a corrupt row and answers 500, never a guess. The checks and triggers that keep the
//! rows valid are switched off to write what graycast never writes.

use super::*;

#[tokio::test]
async fn corrupt_plan_words_are_errors_not_defaults() {
    let app = app().await;
    let mut paused = Vec::new();
    for key in ["state.json", "guard.json", "action.json"] {
        config(&app, key).await;
        let lane = start(&app, key, json!({"version": 2, "template": "linear"})).await;
        // A paused plan is left alone by the scheduler: nothing rewrites the rows below.
        let (status, body) = app
            .post_json(&lane_path(key, &lane["id"], "/plan/pause"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        plan(&app, key, &lane).await;
        paused.push((key, lane["id"].as_i64().unwrap()));
    }

    let pool = crate::common::database(&app.database_url).await;
    let mut conn = pool.acquire().await.unwrap();
    crate::common::switch_off_rules(&mut conn).await;
    if !crate::common::on_postgres() {
        sqlx::query("DROP TRIGGER IF EXISTS plan_transitions_no_update")
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    for ((key, lane), sql) in paused.iter().zip([
        "UPDATE lane_plans SET state = 'stalled' WHERE lane_id = $1",
        "UPDATE plan_guards SET status = 'dozing' WHERE lane_id = $1",
        "UPDATE plan_transitions SET action = 'leap' WHERE lane_id = $1",
    ]) {
        let updated = sqlx::query(sql)
            .bind(lane)
            .execute(&mut *conn)
            .await
            .unwrap();
        assert!(updated.rows_affected() > 0, "{sql}");
        let (status, body) = app.get_json(&lane_path(key, &json!(lane), "/plan")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{sql}: {body}");
        assert_eq!(body["error"]["code"], "internal", "{sql}: {body}");
    }
    // The lane listing shows each lane's plan state, so it fails too.
    let (status, body) = app.get_json(&lanes("state.json")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
}
