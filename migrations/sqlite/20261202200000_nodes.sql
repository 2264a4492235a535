-- Several nodes on one database (the specification, section 8). On SQLite there is one node,
-- yet the tables are the same on both engines (migrations/postgres has their twins), so the
-- queries are too.

-- Every graycast node sharing the database, and when it last said it is alive. A node that
-- stops heartbeating for 15 s has its instances marked disconnected by the others.
CREATE TABLE nodes (
    -- Drawn by the node when it starts (a restarted node is a new node).
    id           TEXT NOT NULL PRIMARY KEY,
    started_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    heartbeat_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    -- The address the node serves on, for the operator's eyes; NULL when unknown.
    address      TEXT
);

-- Work that exactly one node may do at a time (the plan scheduler: name 'plan_scheduler'):
-- the holder renews `expires_at`; once it has passed, another node may take the lease.
CREATE TABLE leases (
    name       TEXT NOT NULL PRIMARY KEY,
    -- The holding node's id.
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- Sign-ins counted against the login throttle, shared by every node: one row per attempt,
-- written before its password is verified, deleted when it succeeds or is not verified,
-- pruned once older than the throttle's window.
CREATE TABLE login_attempts (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The address counted: IPv4 as is, IPv6 by its /64 (the throttle's source key).
    source   TEXT NOT NULL,
    -- The username tried; NULL for a name no user can have (counted by source only).
    username TEXT,
    at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX login_attempts_source ON login_attempts (source, at);
CREATE INDEX login_attempts_username ON login_attempts (username, source, at)
    WHERE username IS NOT NULL;
CREATE INDEX login_attempts_at ON login_attempts (at);

-- The node serving an instance's watch stream; NULL for rows from before this migration.
ALTER TABLE instances ADD COLUMN node TEXT;
CREATE INDEX instances_node ON instances (node, connected);
