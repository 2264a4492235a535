-- Subscribers (instances) as the push hub sees them: who watches a namespace
-- and environment, with which labels, since when, and per config key the
-- version served to it and what it last reported. Kept after disconnecting
-- for the retention period (`connected = 0`), then pruned.

CREATE TABLE instances (
    namespace    TEXT NOT NULL,
    env          TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    -- JSON object of the labels given on the latest connect.
    labels       TEXT NOT NULL DEFAULT '{}',
    connected    INTEGER NOT NULL DEFAULT 0 CHECK (connected IN (0, 1)),
    connected_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_seen    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (namespace, env, client_id)
);
CREATE INDEX instances_last_seen ON instances (connected, last_seen);

CREATE TABLE instance_configs (
    namespace   TEXT NOT NULL,
    env         TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    key         TEXT NOT NULL,
    -- The version (and lane) the watch stream last handed to the instance.
    served      INTEGER,
    lane        INTEGER,
    -- The last version the instance reported as applied.
    applied     INTEGER,
    -- The last report: its version, `applied` or `failed`, and message.
    reported    INTEGER,
    status      TEXT CHECK (status IN ('applied', 'failed')),
    message     TEXT,
    reported_at TEXT,
    PRIMARY KEY (namespace, env, client_id, key),
    FOREIGN KEY (namespace, env, client_id)
        REFERENCES instances (namespace, env, client_id) ON DELETE CASCADE
);
