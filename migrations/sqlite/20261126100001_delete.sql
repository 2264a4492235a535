-- Deleting a config (the specification, section 3): the row stays, marked
-- `deleted_at`, so its versions, release events and lanes keep their config
-- and stay history; the key may then be created again from version 1, as a
-- new row. So the key is unique among live configs only: SQLite cannot drop a
-- table's UNIQUE constraint, hence the table is rebuilt.
--
-- The migration runs in one transaction with foreign keys on. Deferring them
-- lets the old table go while versions, release events and lanes still point
-- at its ids; re-inserting every row under the same name and ids settles each
-- of those references again before the commit checks them.
PRAGMA defer_foreign_keys = ON;

CREATE TABLE configs_before_delete AS SELECT * FROM configs;
DROP TABLE configs;

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
    next_lane_salt TEXT,
    -- When the config was deleted; NULL while it is live.
    deleted_at     TEXT
);

INSERT INTO configs (id, namespace_id, env_id, key, format, latest_version, stable_version,
                     created_at, updated_at, next_lane_salt)
SELECT id, namespace_id, env_id, key, format, latest_version, stable_version,
       created_at, updated_at, next_lane_salt
  FROM configs_before_delete;
DROP TABLE configs_before_delete;

-- One live config per (namespace, environment, key); deleted ones stay beside it.
CREATE UNIQUE INDEX configs_live_key ON configs (namespace_id, env_id, key) WHERE deleted_at IS NULL;
CREATE INDEX configs_env ON configs (env_id, namespace_id);

CREATE TRIGGER configs_draw_next_lane_salt AFTER INSERT ON configs
WHEN new.next_lane_salt IS NULL
BEGIN
    UPDATE configs SET next_lane_salt = lower(hex(randomblob(8))) WHERE id = new.id;
END;

-- A deleted config is history, like its versions and release events.
CREATE TRIGGER configs_deleted_are_final BEFORE UPDATE ON configs
WHEN old.deleted_at IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'deleted configs cannot change');
END;
CREATE TRIGGER configs_no_delete BEFORE DELETE ON configs
BEGIN
    SELECT RAISE(ABORT, 'configs are kept as history; set deleted_at instead');
END;
