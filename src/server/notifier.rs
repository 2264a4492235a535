//! Notification deliveries (docs/api.md, "Notification channels").
//!
//! A delivery row is written in the same transaction as the audit entry it tells of
//! (`db::audit::record`), so nothing is sent for a change that did not commit and nothing is
//! lost to a crash or restart. This task, on the node that holds the rollout lease (one per
//! cluster), sends what is due: a JSON or Slack message, signed with the channel's secret like
//! GitHub's and Stripe's webhooks (`X-Graycast-Timestamp`, `X-Graycast-Signature-256:
//! sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`), through the outbound policy, within
//! [`ATTEMPT_TIMEOUT`]. A receiver that does not answer 2xx is tried again with a growing pause
//! ([`backoff_ms`]) until 24 hours after the event; then the delivery is given up as `failed`.
//! Each delivery is claimed before it is sent, so even two senders (a lease changing hands)
//! never send one twice at once. Nothing here is on a release's path.

use crate::model::{AuditEntry, ChannelFormat, DeliveryStatus};
use crate::server::clock::timestamp;
use crate::server::db::channels::{self as rows, Attempt, Due};
use crate::server::probe::{self, Sent};
use crate::server::Core;
use crate::Result;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long after its event a delivery is retried.
pub const GIVE_UP_AFTER_MS: i64 = 24 * 3_600_000;
/// The largest message sent; a bigger entry is sent without its details.
pub const MAX_BODY: usize = 64 * 1024;
/// Ended deliveries are kept this long for the Deliveries page.
pub const KEEP_ENDED_MS: i64 = 7 * 24 * 3_600_000;
/// Deliveries sent at once.
const BATCH: i64 = 16;
/// How often the sender looks for due deliveries (it also wakes on [`Notifier::wake`]).
const TICK: Duration = Duration::from_millis(500);
/// How long a claim keeps other senders off a delivery (longer than an attempt).
const CLAIM_MS: i64 = 60_000;

/// The pause after the `attempts`-th failed attempt: 30 s, doubling, at most an hour.
pub fn backoff_ms(attempts: i64) -> i64 {
    let doublings = attempts.clamp(1, 8) - 1;
    (30_000_i64 << doublings).min(3_600_000)
}

/// `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The sender's handle in the [`Core`]: wakes it when a delivery was just made due.
#[derive(Default)]
pub struct Notifier {
    wake: tokio::sync::Notify,
}

impl Notifier {
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// Starts the sender; it ends when the server begins to shut down.
pub fn spawn(core: &Arc<Core>) {
    let weak = Arc::downgrade(core);
    let mut closing = core.closing.subscribe();
    tokio::spawn(async move {
        let mut purged_at: Option<i64> = None;
        loop {
            let Some(core) = weak.upgrade() else {
                return;
            };
            if *closing.borrow() {
                return;
            }
            if core.scheduler.drives_plans() {
                if let Err(e) = send_due(&core).await {
                    tracing::error!(error = e.detail(), "cannot send notifications");
                }
                let now = core.clock.now_ms();
                if purged_at.is_none_or(|at| now - at > 3_600_000) {
                    purged_at = Some(now);
                    if let Err(e) = rows::purge(&core.db, timestamp(now - KEEP_ENDED_MS)).await {
                        tracing::warn!(error = %e, "cannot forget old notification deliveries");
                    }
                }
            }
            let notifier = core.notifier.clone();
            let clock = core.clock.clone();
            drop(core);
            tokio::select! {
                _ = clock.sleep(TICK) => {}
                _ = notifier.wake.notified() => {}
                _ = closing.changed() => {}
            }
        }
    });
}

/// Sends the deliveries due now (a batch at a time, concurrently); how many were attempted.
pub async fn send_due(core: &Arc<Core>) -> Result<usize> {
    let mut attempted = 0;
    loop {
        let now = core.clock.now();
        let due = rows::due(&core.db, now, BATCH).await?;
        if due.is_empty() {
            return Ok(attempted);
        }
        let mut claimed = Vec::new();
        for d in due {
            let until = timestamp(now.unix_ms() + CLAIM_MS);
            if rows::claim(&core.db, d.id, now, until).await? {
                claimed.push(d);
            }
        }
        if claimed.is_empty() {
            return Ok(attempted);
        }
        attempted += claimed.len();
        let sends = claimed.into_iter().map(|d| send_one(core, d));
        for result in futures_util::future::join_all(sends).await {
            result?;
        }
    }
}

/// One attempt of one claimed delivery, recorded.
async fn send_one(core: &Arc<Core>, d: Due) -> Result<()> {
    let outcome = match message(core, &d).await {
        Ok(body) => {
            let ts = core.clock.now_ms() / 1000;
            let mut headers = vec![
                ("X-Graycast-Event", d.event.clone()),
                ("X-Graycast-Delivery", d.id.to_string()),
                ("X-Graycast-Timestamp", ts.to_string()),
            ];
            if !d.secret.is_empty() {
                headers.push(("X-Graycast-Signature-256", signature(&d.secret, ts, &body)));
            }
            probe::deliver(&core.prober, &d.url, &headers, body, ATTEMPT_TIMEOUT).await
        }
        Err(e) => Sent::Failed(format!("cannot write the message: {}", e.detail())),
    };
    let at = core.clock.now();
    let attempts = d.attempts + 1;
    let (http_status, error) = match &outcome {
        Sent::Status(code) if (200..300).contains(code) => (Some(i64::from(*code)), None),
        Sent::Status(code) => (
            Some(i64::from(*code)),
            Some(format!("the receiver answered {code}")),
        ),
        Sent::Failed(why) => (None, Some(why.clone())),
    };
    let (status, next) = match &error {
        None => (DeliveryStatus::Delivered, None),
        Some(_) => {
            let next = at.unix_ms() + backoff_ms(attempts);
            if next > d.created_at.unix_ms() + GIVE_UP_AFTER_MS {
                (DeliveryStatus::Failed, None)
            } else {
                (DeliveryStatus::Pending, Some(timestamp(next)))
            }
        }
    };
    let error = error.map(|e| match status {
        DeliveryStatus::Failed => format!("gave up after 24 hours of attempts: {e}"),
        _ => e,
    });
    core.metrics.notification(status.as_str());
    rows::attempted(
        &core.db,
        d.id,
        Attempt {
            at,
            status,
            next,
            http_status,
            error: error.as_deref(),
        },
    )
    .await?;
    Ok(())
}

/// The message of a delivery, in its channel's format, at most [`MAX_BODY`] bytes.
async fn message(core: &Core, d: &Due) -> Result<Vec<u8>> {
    let channel = rows::get(&core.db, d.channel_id).await?;
    let name = channel.map(|c| c.name).unwrap_or_default();
    let told = match d.audit_id {
        None => Told::test(&name),
        Some(id) => {
            let entry = crate::server::db::audit::entry(&core.db, id)
                .await?
                .ok_or_else(|| crate::Error::internal(format!("audit entry {id} is gone")))?;
            Told::of(core, entry).await?
        }
    };
    let body = told.body(d, core.config.public_url.as_deref(), true);
    let body = if body.len() > MAX_BODY {
        told.body(d, core.config.public_url.as_deref(), false)
    } else {
        body
    };
    Ok(body)
}

/// What a delivery tells: the entry, its sentence, where to look, and the change in lines.
struct Told {
    entry: Option<AuditEntry>,
    sentence: String,
    /// `shop/prod/app.json` or the environment, if the entry is about one.
    subject: Option<String>,
    /// Dashboard paths: the config, the change request.
    config_path: Option<String>,
    request_path: Option<String>,
    /// `(from, to, added, removed)` for a release between two versions.
    diff: Option<(i64, i64, usize, usize)>,
}

impl Told {
    fn test(channel: &str) -> Self {
        Told {
            entry: None,
            sentence: format!(
                "A test message from graycast for the channel {}: deliveries reach you.",
                crate::error::quoted(channel)
            ),
            subject: None,
            config_path: None,
            request_path: None,
            diff: None,
        }
    }

    async fn of(core: &Core, entry: AuditEntry) -> Result<Self> {
        let sentence = crate::app::sentences::audit_sentence(&entry)
            .unwrap_or_else(|| format!("{} {}", entry.actor, entry.action));
        let subject = match (&entry.namespace, &entry.env, &entry.key) {
            (Some(ns), Some(env), Some(key)) => Some(format!("{ns}/{env}/{key}")),
            (_, Some(env), None) => Some(env.clone()),
            _ => None,
        };
        let config_path = match (&entry.namespace, &entry.env, &entry.key) {
            (Some(ns), Some(env), Some(key)) => Some(path(&["ns", ns, env, key])),
            _ => None,
        };
        let request_path = entry
            .details
            .get("change_request")
            .and_then(Value::as_i64)
            .map(|id| format!("/requests/{id}"));
        let diff = diff_summary(core, &entry).await;
        Ok(Told {
            entry: Some(entry),
            sentence,
            subject,
            config_path,
            request_path,
            diff,
        })
    }

    /// The message as bytes; `details: false` leaves the entry's details out (too big).
    fn body(&self, d: &Due, public_url: Option<&str>, details: bool) -> Vec<u8> {
        let link = |p: &Option<String>| {
            p.as_ref()
                .map(|p| format!("{}{p}", public_url.unwrap_or_default()))
        };
        let config = link(&self.config_path);
        let request = link(&self.request_path);
        let diff = self.diff.map(|(from, to, added, removed)| {
            json!({"from": from, "to": to, "added": added, "removed": removed,
                   "summary": diff_words(from, to, added, removed)})
        });
        let value = match d.format {
            ChannelFormat::Json => {
                let mut entry = self.entry.as_ref().map(|e| json!(e));
                if !details {
                    if let Some(Value::Object(e)) = entry.as_mut() {
                        e.insert("details".into(), json!({"omitted": "too large to send"}));
                    }
                }
                json!({
                    "delivery": d.id,
                    "event": d.event,
                    "test": self.entry.is_none(),
                    "sentence": self.sentence,
                    "subject": self.subject,
                    "entry": entry,
                    "diff": diff,
                    "links": {"config": config, "change_request": request},
                })
            }
            ChannelFormat::Slack => self.slack(config.or(request), public_url.is_some()),
        };
        value.to_string().into_bytes()
    }

    /// A Slack incoming-webhook message: the sentence, the config (linked when the server
    /// knows its public URL) and the change in lines.
    fn slack(&self, link: Option<String>, absolute: bool) -> Value {
        let sentence = slack_escape(&self.sentence);
        let subject = self.subject.as_deref().map(slack_escape);
        let head = match (subject, link.filter(|_| absolute)) {
            (Some(s), Some(url)) => format!("*<{url}|{s}>*"),
            (Some(s), None) => format!("*{s}*"),
            (None, _) => "*graycast*".to_string(),
        };
        let mut blocks = vec![json!({
            "type": "section",
            "text": {"type": "mrkdwn", "text": format!("{head}\n{sentence}")},
        })];
        if let Some((from, to, added, removed)) = self.diff {
            blocks.push(json!({
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": diff_words(from, to, added, removed)}],
            }));
        }
        // The notification text is markup too: escaped like the blocks.
        json!({"text": sentence, "blocks": blocks})
    }
}

/// `v2 → v3: 4 lines added, 1 removed`.
fn diff_words(from: i64, to: i64, added: usize, removed: usize) -> String {
    let lines = |n: usize| if n == 1 { "line" } else { "lines" };
    format!(
        "v{from} → v{to}: {added} {} added, {removed} removed",
        lines(added)
    )
}

/// Slack's mrkdwn treats `&`, `<` and `>` as markup.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `/ns/shop/prod/app.json` with each segment percent-encoded.
fn path(segments: &[&str]) -> String {
    let mut url = reqwest::Url::parse("http://x/").expect("a valid base");
    url.path_segments_mut()
        .expect("an http URL has a path")
        .extend(segments);
    url.path().to_string()
}

/// For an entry that moved a config from one version to another (`version`,
/// `previous_version` in its details): the versions and the lines added and removed.
async fn diff_summary(core: &Core, entry: &AuditEntry) -> Option<(i64, i64, usize, usize)> {
    let to = entry.details.get("version")?.as_i64()?;
    let from = entry.details.get("previous_version")?.as_i64()?;
    let path = crate::model::ConfigPath::new(
        entry.namespace.clone()?,
        entry.env.clone()?,
        entry.key.clone()?,
    );
    let config = crate::server::db::configs::find(&core.db, &path)
        .await
        .ok()??;
    let content = |n| crate::server::db::configs::version(&core.db, config.id, n);
    let old = content(from).await.ok()??;
    let new = content(to).await.ok()??;
    let diff = crate::domain::diff::diff_lines_within(
        &old.content,
        &new.content,
        Some(core.config.diff_timeout),
    );
    Some((from, to, diff.added, diff.removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_githubs() {
        // echo -n '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'It'"'"'s a Secret to Everybody'
        assert_eq!(
            signature("It's a Secret to Everybody", 1_700_000_000, br#"{"a":1}"#),
            "sha256=51538ab6f6314bb1f45de59d49edd93447bd4ca11fd52ee2fc1bb150735de0c6"
        );
    }

    #[test]
    fn the_pause_doubles_to_an_hour() {
        assert_eq!(backoff_ms(1), 30_000);
        assert_eq!(backoff_ms(2), 60_000);
        assert_eq!(backoff_ms(7), 1_920_000);
        assert_eq!(backoff_ms(8), 3_600_000);
        assert_eq!(backoff_ms(100), 3_600_000);
    }

    #[test]
    fn slack_markup_is_escaped_and_paths_encoded() {
        assert_eq!(slack_escape("a <b> & c"), "a &lt;b&gt; &amp; c");
        assert_eq!(
            path(&["ns", "shop", "prod", "a b.json"]),
            "/ns/shop/prod/a%20b.json"
        );
        assert_eq!(diff_words(2, 3, 1, 0), "v2 → v3: 1 line added, 0 removed");
    }
}
