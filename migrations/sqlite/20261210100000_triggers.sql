-- Trigger URLs (docs/api.md, "Triggers"): an alerting system calls `POST /hooks/{token}` to
-- abort lanes, pause plans or roll back one config (or every config of a namespace in an
-- environment, without `key`). Only the token's SHA-256 is kept; the token is shown once.
CREATE TABLE triggers (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace_id  INTEGER NOT NULL REFERENCES namespaces (id),
    env_id        INTEGER NOT NULL REFERENCES environments (id),
    -- A config's key, or NULL: every config of the namespace in the environment. A key, not a
    -- config's id: a deleted config created again is the same config to whoever set up the alert.
    key           TEXT,
    action        TEXT NOT NULL CHECK (action IN ('abort-lanes', 'pause-plans', 'rollback')),
    description   TEXT NOT NULL DEFAULT '',
    token_hash    TEXT NOT NULL UNIQUE,
    enabled       INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_fired_at TEXT,
    fired         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX triggers_scope ON triggers (namespace_id, env_id, id);
