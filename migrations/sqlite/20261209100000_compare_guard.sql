-- The compare guard (issue 29): a fourth guard kind, and the numbers of each comparison kept
-- beside its reading (`details`, JSON: both medians, the ratio, U, the p-value, the counts).
-- SQLite cannot change a CHECK: both tables are made again with their rows.
CREATE TABLE plan_guards_next (
    lane_id      INTEGER NOT NULL REFERENCES lane_plans (lane_id),
    guard        INTEGER NOT NULL CHECK (guard >= 0),
    kind         TEXT NOT NULL CHECK (kind IN ('reports', 'prometheus', 'webhook', 'compare')),
    status       TEXT NOT NULL CHECK (status IN ('passing', 'failing', 'no_data')),
    value        REAL,
    message      TEXT NOT NULL,
    streak       INTEGER NOT NULL DEFAULT 0 CHECK (streak >= 0),
    -- NULL until first evaluated.
    evaluated_at TEXT,
    details      TEXT,
    PRIMARY KEY (lane_id, guard)
);
INSERT INTO plan_guards_next (lane_id, guard, kind, status, value, message, streak, evaluated_at)
    SELECT lane_id, guard, kind, status, value, message, streak, evaluated_at FROM plan_guards;
DROP TABLE plan_guards;
ALTER TABLE plan_guards_next RENAME TO plan_guards;

CREATE TABLE plan_evaluations_next (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    lane_id INTEGER NOT NULL REFERENCES lane_plans (lane_id),
    step    INTEGER NOT NULL,
    guard   INTEGER NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('reports', 'prometheus', 'webhook', 'compare')),
    status  TEXT NOT NULL CHECK (status IN ('passing', 'failing', 'no_data')),
    value   REAL,
    message TEXT NOT NULL,
    at      TEXT NOT NULL,
    last_at TEXT NOT NULL,
    count   INTEGER NOT NULL DEFAULT 1 CHECK (count >= 1),
    details TEXT
);
INSERT INTO plan_evaluations_next (id, lane_id, step, guard, kind, status, value, message, at, last_at, count)
    SELECT id, lane_id, step, guard, kind, status, value, message, at, last_at, count FROM plan_evaluations;
DROP TABLE plan_evaluations;
ALTER TABLE plan_evaluations_next RENAME TO plan_evaluations;
CREATE INDEX plan_evaluations_lane ON plan_evaluations (lane_id, guard, id);
