-- Notification channels (docs/api.md, "Notification channels"): where release, lane, rollout
-- and change-request events are delivered, signed, after their change commits. A delivery row
-- is written in the same transaction as the audit entry it tells of, so a crash or restart
-- loses none; the node holding the rollout lease sends them, retrying for 24 hours.
CREATE TABLE notification_channels (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL UNIQUE,
    url        TEXT NOT NULL,
    -- The HMAC key; empty: deliveries are not signed (Slack).
    secret     TEXT NOT NULL DEFAULT '',
    format     TEXT NOT NULL CHECK (format IN ('json', 'slack')),
    -- The event filter as a JSON array of patterns; [] is every event.
    events     TEXT NOT NULL DEFAULT '[]',
    namespace  TEXT,
    env        TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE notification_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id      INTEGER NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
    -- The audit entry it tells of. No foreign key: the audit table stands alone, guarded
    -- only by its append-only rules (scripts/pg-schema-check.sql checks them).
    audit_id        INTEGER,
    event           TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    next_attempt_at TEXT,
    -- While a node sends it: until when no other node may (a sender that died frees it then).
    claimed_until   TEXT,
    last_attempt_at TEXT,
    last_status     INTEGER,
    last_error      TEXT,
    delivered_at    TEXT
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (status, next_attempt_at);
CREATE INDEX notification_deliveries_channel ON notification_deliveries (channel_id, id);
