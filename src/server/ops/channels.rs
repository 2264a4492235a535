//! Notification channels (docs/api.md, "Notification channels"): admins say where release,
//! lane, rollout and change-request events are delivered; `server::notifier` sends them. A
//! channel limited to a namespace or an environment is made and seen by the admins whose
//! limits cover it. Its secret is never shown back, and its URL only with the last path
//! segment cut short (a Slack webhook's URL is itself a secret).

use crate::domain::audit::AuditAction;
use crate::domain::notify::{self, ChannelFormat, MAX_EVENTS, PATTERNS};
use crate::model::{Channel, Delivery, DeliveryPage, NewChannel, Role, Scope};
use crate::server::auth::Actor;
use crate::server::db::{self, audit::NewEntry, channels::ChannelRow};
use crate::server::Core;
use crate::{Error, Result};
use serde_json::json;

/// At most this many channels.
pub const MAX_CHANNELS: i64 = 50;
pub const MAX_NAME_CHARS: usize = 64;
pub const MAX_URL_CHARS: usize = 2048;
/// A signing secret's length, in characters.
pub const SECRET_CHARS: std::ops::RangeInclusive<usize> = 16..=256;
/// Test messages of one channel waiting at once.
pub const MAX_PENDING_TESTS: usize = 5;
/// A page of deliveries: by default and at most.
pub const DEFAULT_PAGE: i64 = 20;
pub const MAX_PAGE: i64 = 100;

fn scope(row: &ChannelRow) -> Scope<'_> {
    Scope {
        namespace: row.namespace.as_deref(),
        env: row.env.as_deref(),
    }
}

/// 403 unless `actor` is an admin whose limits cover a channel of `scope`.
fn require_admin(actor: &Actor, scope: Scope<'_>) -> Result<()> {
    actor.require(Role::Admin, scope)?;
    if !actor.covers(scope) {
        return Err(Error::forbidden(format!(
            "You are limited to {}: a channel of yours must be limited to it too (give its \
             namespace and env).",
            actor.limits().unwrap_or_default()
        )));
    }
    Ok(())
}

/// The URL as shown: no user or password, no query, the last path segment cut to 4
/// characters (`https://hooks.slack.com/services/T0/B0/abcd…`).
pub fn shown_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return "…".into();
    };
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    parsed.set_query(None);
    parsed.set_fragment(None);
    let segments: Vec<String> = parsed
        .path_segments()
        .map(|s| s.map(str::to_string).collect())
        .unwrap_or_default();
    let mut cut_short = false;
    if let Some((last, rest)) = segments.split_last().filter(|(l, _)| !l.is_empty()) {
        let cut: String = last.chars().take(4).collect();
        cut_short = cut.len() < last.len();
        parsed.set_path(&format!("{}/{cut}", rest.join("/")));
    }
    // Without a query or fragment the path ends the URL: the mark goes there, unencoded.
    let mut shown = parsed.to_string();
    if cut_short {
        shown.push('…');
    }
    shown
}

async fn shown(conn: &mut db::Conn, row: ChannelRow) -> Result<Channel> {
    let pending = db::channels::pending(&mut *conn, row.id).await?;
    let last = db::channels::last_ended(&mut *conn, row.id).await?;
    Ok(Channel {
        id: row.id,
        url: shown_url(&row.url),
        events: row.patterns(),
        signed: !row.secret.is_empty(),
        name: row.name,
        format: row.format,
        namespace: row.namespace,
        env: row.env,
        created_by: row.created_by,
        created_at: row.created_at,
        pending,
        last,
    })
}

/// The new channel checked: 400 naming the first field that is wrong.
async fn check(state: &Core, conn: &mut db::Conn, new: &NewChannel) -> Result<Vec<String>> {
    let name = new.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(Error::invalid(
            "name",
            format!("Give the channel a name of 1 to {MAX_NAME_CHARS} characters."),
        ));
    }
    if new.url.chars().count() > MAX_URL_CHARS {
        return Err(Error::invalid(
            "url",
            format!("The url is longer than {MAX_URL_CHARS} characters."),
        ));
    }
    let url = reqwest::Url::parse(new.url.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            Error::invalid(
                "url",
                "The url must be an http:// or https:// URL with a host.",
            )
        })?;
    if state.prober.admit(&url).await.is_err() {
        return Err(Error::invalid("url", crate::server::probe::policy::DENIED));
    }
    match (new.format, new.secret.as_deref().unwrap_or("")) {
        (ChannelFormat::Slack, "") => {}
        (_, secret) if SECRET_CHARS.contains(&secret.chars().count()) => {}
        (ChannelFormat::Json, "") => {
            return Err(Error::invalid(
                "secret",
                format!(
                    "A json channel needs a secret of {} to {} characters to sign its \
                     deliveries with (e.g. `openssl rand -hex 32`).",
                    SECRET_CHARS.start(),
                    SECRET_CHARS.end()
                ),
            ))
        }
        _ => {
            return Err(Error::invalid(
                "secret",
                format!(
                    "The secret must have {} to {} characters.",
                    SECRET_CHARS.start(),
                    SECRET_CHARS.end()
                ),
            ))
        }
    }
    if new.events.len() > MAX_EVENTS {
        return Err(Error::invalid(
            "events",
            format!("A channel takes at most {MAX_EVENTS} event patterns."),
        ));
    }
    let mut events: Vec<String> = Vec::new();
    for (i, pattern) in new.events.iter().enumerate() {
        let pattern = pattern.trim();
        if notify::pattern_actions(pattern).is_none() {
            return Err(Error::invalid(
                &format!("events[{i}]"),
                format!(
                    "events[{i}] {} names no event; use {PATTERNS}.",
                    crate::error::quoted(pattern)
                ),
            ));
        }
        if !events.iter().any(|e| e == pattern) {
            events.push(pattern.to_string());
        }
    }
    if let Some(ns) = &new.namespace {
        if db::namespaces::id_of(&mut *conn, ns).await?.is_none() {
            return Err(Error::invalid(
                "namespace",
                format!("There is no namespace {}.", crate::error::quoted(ns)),
            ));
        }
    }
    if let Some(env) = &new.env {
        if db::templates::environment(&mut *conn, env).await?.is_none() {
            return Err(Error::invalid(
                "env",
                format!("There is no environment {}.", crate::error::quoted(env)),
            ));
        }
    }
    Ok(events)
}

/// `POST /api/v1/notification-channels` (admin whose limits cover the channel's).
#[tracing::instrument(skip_all)]
pub async fn create(state: &Core, actor: &Actor, new: NewChannel) -> Result<Channel> {
    require_admin(
        actor,
        Scope {
            namespace: new.namespace.as_deref(),
            env: new.env.as_deref(),
        },
    )?;
    let mut tx = db::begin_write(&state.db).await?;
    let events = check(state, &mut tx, &new).await?;
    if db::channels::count(&mut *tx).await? >= MAX_CHANNELS {
        return Err(Error::conflict(format!(
            "There are {MAX_CHANNELS} channels, the most there may be; delete one first."
        )));
    }
    let now = state.clock.now();
    let events_json = serde_json::to_string(&events).expect("strings serialize");
    let row = db::channels::insert(
        &mut tx,
        db::channels::NewChannelRow {
            name: new.name.trim(),
            url: new.url.trim(),
            secret: new.secret.as_deref().unwrap_or(""),
            format: new.format,
            events: &events_json,
            namespace: new.namespace.as_deref(),
            env: new.env.as_deref(),
            created_by: &actor.name,
            created_at: now,
        },
    )
    .await
    .map_err(|e| {
        if db::is_unique_violation(&e) {
            Error::conflict(format!(
                "There is a channel named {} already.",
                crate::error::quoted(new.name.trim())
            ))
            .on_field("name")
        } else {
            e.into()
        }
    })?;
    let channel = shown(&mut tx, row).await?;
    record(&mut tx, state, actor, AuditAction::ChannelCreate, &channel).await?;
    tx.commit().await?;
    Ok(channel)
}

/// `GET /api/v1/notification-channels` (admin): the channels the caller's limits cover,
/// oldest first (at most [`MAX_CHANNELS`]).
#[tracing::instrument(skip_all)]
pub async fn list(state: &Core, actor: &Actor) -> Result<Vec<Channel>> {
    actor.require(Role::Admin, Scope::ANY)?;
    let mut conn = state.db.acquire().await?;
    let rows = db::channels::list(&mut *conn).await?;
    let mut out = Vec::new();
    for row in rows.into_iter().filter(|r| actor.covers(scope(r))) {
        out.push(shown(&mut conn, row).await?);
    }
    Ok(out)
}

/// The channel `id` if the caller may see it; 404 as for a channel that is not there.
async fn find(conn: &mut db::Conn, actor: &Actor, id: i64) -> Result<ChannelRow> {
    actor.require(Role::Admin, Scope::ANY)?;
    db::channels::get(&mut *conn, id)
        .await?
        .filter(|r| actor.covers(scope(r)))
        .ok_or_else(|| Error::not_found(format!("There is no notification channel {id}.")))
}

/// `GET /api/v1/notification-channels/{id}` (admin).
pub async fn get(state: &Core, actor: &Actor, id: i64) -> Result<Channel> {
    let mut conn = state.db.acquire().await?;
    let row = find(&mut conn, actor, id).await?;
    shown(&mut conn, row).await
}

/// `DELETE /api/v1/notification-channels/{id}` (admin): the channel and its deliveries,
/// pending ones too.
#[tracing::instrument(skip_all)]
pub async fn delete(state: &Core, actor: &Actor, id: i64) -> Result<Channel> {
    let mut tx = db::begin_write(&state.db).await?;
    let row = find(&mut tx, actor, id).await?;
    require_admin(actor, scope(&row))?;
    let channel = shown(&mut tx, row).await?;
    db::channels::delete(&mut tx, id).await?;
    record(&mut tx, state, actor, AuditAction::ChannelDelete, &channel).await?;
    tx.commit().await?;
    Ok(channel)
}

/// `POST /api/v1/notification-channels/{id}/test` (admin): a test message, sent like any
/// delivery (signed, retried); the delivery to follow on the Deliveries page.
#[tracing::instrument(skip_all)]
pub async fn test(state: &Core, actor: &Actor, id: i64) -> Result<Delivery> {
    let mut tx = db::begin_write(&state.db).await?;
    let row = find(&mut tx, actor, id).await?;
    let waiting = db::channels::deliveries(&mut *tx, id, None, MAX_PAGE)
        .await?
        .into_iter()
        .filter(|d| d.event == "test" && d.status == crate::model::DeliveryStatus::Pending)
        .count();
    if waiting >= MAX_PENDING_TESTS {
        return Err(Error::conflict(format!(
            "{} has {waiting} test messages waiting already; see its deliveries.",
            row.name
        )));
    }
    let delivery =
        db::channels::insert_delivery(&mut tx, id, None, "test", state.clock.now()).await?;
    tx.commit().await?;
    state.notifier.wake();
    Ok(delivery)
}

/// `GET /api/v1/notification-channels/{id}/deliveries?before=&limit=` (admin), newest first.
pub async fn deliveries(
    state: &Core,
    actor: &Actor,
    id: i64,
    before: Option<i64>,
    limit: Option<i64>,
) -> Result<DeliveryPage> {
    let mut conn = state.db.acquire().await?;
    find(&mut conn, actor, id).await?;
    let limit = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let mut deliveries = db::channels::deliveries(&mut *conn, id, before, limit + 1).await?;
    let more = deliveries.len() as i64 > limit;
    deliveries.truncate(limit as usize);
    let next_before = more.then(|| deliveries.last().map(|d| d.id)).flatten();
    Ok(DeliveryPage {
        deliveries,
        next_before,
    })
}

/// `GET /api/v1/notification-channels/{id}/deliveries/{delivery}` (admin).
pub async fn delivery(state: &Core, actor: &Actor, id: i64, delivery: i64) -> Result<Delivery> {
    let mut conn = state.db.acquire().await?;
    find(&mut conn, actor, id).await?;
    db::channels::delivery(&mut *conn, id, delivery)
        .await?
        .ok_or_else(|| Error::not_found(format!("Channel {id} has no delivery {delivery}.")))
}

async fn record(
    tx: &mut db::Tx<'_>,
    state: &Core,
    actor: &Actor,
    action: AuditAction,
    channel: &Channel,
) -> Result<()> {
    let mut entry = NewEntry::new(&actor.name, action).details(json!({
        "id": channel.id, "name": channel.name, "url": channel.url, "format": channel.format,
        "events": channel.events, "signed": channel.signed,
    }));
    if let Some(ns) = &channel.namespace {
        entry = entry.namespace(ns);
    }
    if let Some(env) = &channel.env {
        entry = entry.env(env);
    }
    db::audit::record(tx, state.clock.now(), entry).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_secrets() {
        assert_eq!(
            shown_url("https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX"),
            "https://hooks.slack.com/services/T000/B000/XXXX…"
        );
        assert_eq!(
            shown_url("http://u:p@127.0.0.1:9000/hook?token=abc#x"),
            "http://127.0.0.1:9000/hook"
        );
        assert_eq!(shown_url("http://h/"), "http://h/");
    }
}
