-- Freeze windows per environment (docs/api.md, "Freeze windows"): while one is in force,
-- widening actions are refused and running plans hold. One-off windows are `[starts_at,
-- ends_at)`; weekly ones are wall times in an IANA time zone, resolved by the server.
CREATE TABLE freeze_windows (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    env_id     INTEGER NOT NULL REFERENCES environments (id),
    reason     TEXT NOT NULL,
    starts_at  TEXT,
    ends_at    TEXT,
    from_day   TEXT CHECK (from_day IN ('monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday')),
    from_time  TEXT,
    to_day     TEXT CHECK (to_day IN ('monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday')),
    to_time    TEXT,
    time_zone  TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- Exactly one kind: one-off (both instants) or weekly (every weekly field).
    CHECK ((starts_at IS NOT NULL AND ends_at IS NOT NULL AND from_day IS NULL AND from_time IS NULL
            AND to_day IS NULL AND to_time IS NULL AND time_zone IS NULL)
        OR (starts_at IS NULL AND ends_at IS NULL AND from_day IS NOT NULL AND from_time IS NOT NULL
            AND to_day IS NOT NULL AND to_time IS NOT NULL AND time_zone IS NOT NULL))
);
CREATE INDEX freeze_windows_env ON freeze_windows (env_id);
