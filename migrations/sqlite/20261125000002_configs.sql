-- Namespaces, configs, their immutable versions, the append-only release
-- events, and full-text search over the audit trail.

CREATE TABLE namespaces (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- One config per (namespace, environment, key): environments are isolated.
-- `latest_version` and `stable_version` are the current pointers; the history
-- behind them is in `versions` and `release_events`, which never change.
CREATE TABLE configs (
    id             INTEGER PRIMARY KEY,
    namespace_id   INTEGER NOT NULL REFERENCES namespaces (id),
    env_id         INTEGER NOT NULL REFERENCES environments (id),
    key            TEXT NOT NULL,
    format         TEXT NOT NULL CHECK (format IN ('json', 'yaml', 'toml', 'properties', 'text')),
    latest_version INTEGER NOT NULL,
    stable_version INTEGER,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (namespace_id, env_id, key)
);
CREATE INDEX configs_env ON configs (env_id, namespace_id);

CREATE TABLE versions (
    config_id  INTEGER NOT NULL REFERENCES configs (id),
    version    INTEGER NOT NULL CHECK (version >= 1),
    content    TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    message    TEXT NOT NULL DEFAULT '',
    author     TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (config_id, version)
);

CREATE TRIGGER versions_no_update BEFORE UPDATE ON versions
BEGIN
    SELECT RAISE(ABORT, 'versions are immutable');
END;
CREATE TRIGGER versions_no_delete BEFORE DELETE ON versions
BEGIN
    SELECT RAISE(ABORT, 'versions are immutable');
END;

-- Every change to what is live. The AUTOINCREMENT id is the one global,
-- never-reused sequence that subscribers resume from (SSE `Last-Event-ID`).
CREATE TABLE release_events (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    config_id        INTEGER NOT NULL REFERENCES configs (id),
    kind             TEXT NOT NULL,
    version          INTEGER NOT NULL,
    previous_version INTEGER,
    lane             INTEGER,
    actor            TEXT NOT NULL,
    message          TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX release_events_config ON release_events (config_id, id);

CREATE TRIGGER release_events_no_update BEFORE UPDATE ON release_events
BEGIN
    SELECT RAISE(ABORT, 'release events are append-only');
END;
CREATE TRIGGER release_events_no_delete BEFORE DELETE ON release_events
BEGIN
    SELECT RAISE(ABORT, 'release events are append-only');
END;

-- Audit filters by namespace and environment walk these instead of the whole trail.
CREATE INDEX audit_namespace ON audit (namespace, id);
CREATE INDEX audit_env ON audit (env, id);

-- Full-text search over the audit trail: an external-content FTS5 index whose
-- content is this view (rowid = audit.id). The audit trail is append-only, so
-- one AFTER INSERT trigger keeps the index complete.
CREATE VIEW audit_search_source AS
SELECT id,
       actor,
       action,
       coalesce(namespace, '') || '/' || coalesce(env, '') || '/' || coalesce(key, '') AS target,
       details
FROM audit;

CREATE VIRTUAL TABLE audit_search USING fts5 (
    actor,
    action,
    target,
    details,
    content = 'audit_search_source',
    content_rowid = 'id'
);

CREATE TRIGGER audit_search_insert AFTER INSERT ON audit
BEGIN
    INSERT INTO audit_search (rowid, actor, action, target, details)
    VALUES (
        new.id,
        new.actor,
        new.action,
        coalesce(new.namespace, '') || '/' || coalesce(new.env, '') || '/' || coalesce(new.key, ''),
        new.details
    );
END;

INSERT INTO audit_search (audit_search) VALUES ('rebuild');
