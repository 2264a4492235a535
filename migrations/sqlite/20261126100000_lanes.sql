-- Gray lanes (the specification, section 2). A lane belongs to one config and serves
-- one of its versions; closed lanes (promoted or aborted) stay as history.

CREATE TABLE lanes (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    config_id     INTEGER NOT NULL REFERENCES configs (id),
    version       INTEGER NOT NULL,
    -- Canonical selector text ("" matches everything).
    selector      TEXT NOT NULL DEFAULT '',
    -- JSON array of stickiness values that always match.
    targets       TEXT NOT NULL DEFAULT '[]',
    percentage_bp INTEGER NOT NULL CHECK (percentage_bp BETWEEN 0 AND 10000),
    stickiness    TEXT NOT NULL DEFAULT 'client_id',
    salt          TEXT NOT NULL,
    priority      INTEGER NOT NULL DEFAULT 0,
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'promoted', 'aborted')),
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    closed_at     TEXT,
    -- The release event that closed the lane (orders history exactly).
    closed_by     INTEGER REFERENCES release_events (id),
    FOREIGN KEY (config_id, version) REFERENCES versions (config_id, version)
);
CREATE INDEX lanes_config ON lanes (config_id, status, priority, id);

-- The salt fixes every stickiness value's bucket; changing it would reshuffle
-- who is inside the lane, so the database refuses it.
CREATE TRIGGER lanes_salt_never_changes BEFORE UPDATE OF salt ON lanes
WHEN new.salt IS NOT old.salt
BEGIN
    SELECT RAISE(ABORT, 'a lane''s salt never changes');
END;

-- A closed lane is history.
CREATE TRIGGER lanes_closed_are_final BEFORE UPDATE ON lanes
WHEN old.status <> 'active'
BEGIN
    SELECT RAISE(ABORT, 'closed lanes cannot change');
END;
CREATE TRIGGER lanes_no_delete BEFORE DELETE ON lanes
BEGIN
    SELECT RAISE(ABORT, 'lanes are kept as history');
END;

-- The salt the config's next lane will get, drawn in advance so that a preview
-- (or an explanation) of an unsaved lane shows exactly whom the lane will hit
-- once created. Creating a lane takes it and draws the next one.
ALTER TABLE configs ADD COLUMN next_lane_salt TEXT;
UPDATE configs SET next_lane_salt = lower(hex(randomblob(8)));
CREATE TRIGGER configs_draw_next_lane_salt AFTER INSERT ON configs
WHEN new.next_lane_salt IS NULL
BEGIN
    UPDATE configs SET next_lane_salt = lower(hex(randomblob(8))) WHERE id = new.id;
END;
