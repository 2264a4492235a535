-- Rollout plans (the specification, section 6): a lane's plan and where it is, its guards' latest
-- readings, every distinct evaluation, its transitions; rollout templates per environment and
-- an environment's default template.

-- One plan per lane, for the lane's life. The plan is the API's JSON (every default filled in);
-- holds are wall-clock time: `step_started_at` and `paused_at` are milliseconds since the epoch,
-- so a restart mid-hold continues with the time the hold had left.
CREATE TABLE lane_plans (
    lane_id         INTEGER PRIMARY KEY REFERENCES lanes (id),
    plan            TEXT NOT NULL,
    template        TEXT,
    state           TEXT NOT NULL DEFAULT 'running'
                    CHECK (state IN ('running', 'paused', 'completed', 'aborted')),
    step            INTEGER NOT NULL DEFAULT 0 CHECK (step >= 0),
    step_started_at INTEGER NOT NULL,
    -- Set exactly while paused (resume moves the step's start by the time spent paused).
    paused_at       INTEGER,
    -- The release event that put the lane at the current step's percentage: the reports guard
    -- waits until what the hub delivered for it is recorded.
    step_event      INTEGER,
    -- Why it paused, aborted or completed; what a running plan waits for.
    reason          TEXT,
    waiting_for     TEXT,
    created_by      TEXT NOT NULL,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CHECK ((state = 'paused') = (paused_at IS NOT NULL))
);
CREATE INDEX lane_plans_state ON lane_plans (state);

-- A finished plan is history.
CREATE TRIGGER lane_plans_final BEFORE UPDATE ON lane_plans
WHEN old.state IN ('completed', 'aborted')
BEGIN
    SELECT RAISE(ABORT, 'a completed or aborted plan cannot change');
END;

-- Each guard's latest reading; `streak` counts consecutive bad values of a polled guard.
CREATE TABLE plan_guards (
    lane_id      INTEGER NOT NULL REFERENCES lane_plans (lane_id),
    guard        INTEGER NOT NULL CHECK (guard >= 0),
    kind         TEXT NOT NULL CHECK (kind IN ('reports', 'prometheus', 'webhook')),
    status       TEXT NOT NULL CHECK (status IN ('passing', 'failing', 'no_data')),
    value        REAL,
    message      TEXT NOT NULL,
    streak       INTEGER NOT NULL DEFAULT 0 CHECK (streak >= 0),
    -- NULL until first evaluated.
    evaluated_at TEXT,
    PRIMARY KEY (lane_id, guard)
);

-- Guard evaluations. A row is a run of identical outcomes (status, value, message) of one
-- guard at one step, from `at` to `last_at`, `count` of them: nothing is lost, yet a guard that
-- reads the same every second for a week is one row. Rows per plan are capped in the code.
CREATE TABLE plan_evaluations (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    lane_id INTEGER NOT NULL REFERENCES lane_plans (lane_id),
    step    INTEGER NOT NULL,
    guard   INTEGER NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('reports', 'prometheus', 'webhook')),
    status  TEXT NOT NULL CHECK (status IN ('passing', 'failing', 'no_data')),
    value   REAL,
    message TEXT NOT NULL,
    at      TEXT NOT NULL,
    last_at TEXT NOT NULL,
    count   INTEGER NOT NULL DEFAULT 1 CHECK (count >= 1)
);
CREATE INDEX plan_evaluations_lane ON plan_evaluations (lane_id, guard, id);

-- Every change of a plan's state or step, append-only.
CREATE TABLE plan_transitions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    lane_id       INTEGER NOT NULL REFERENCES lane_plans (lane_id),
    at            TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    action        TEXT NOT NULL
                  CHECK (action IN ('start', 'advance', 'pause', 'resume', 'complete', 'abort')),
    actor         TEXT NOT NULL,
    from_step     INTEGER,
    step          INTEGER NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('running', 'paused', 'completed', 'aborted')),
    percentage_bp INTEGER NOT NULL CHECK (percentage_bp BETWEEN 0 AND 10000),
    reason        TEXT,
    release_event INTEGER REFERENCES release_events (id),
    forced        INTEGER NOT NULL DEFAULT 0 CHECK (forced IN (0, 1))
);
CREATE INDEX plan_transitions_lane ON plan_transitions (lane_id, id);
CREATE TRIGGER plan_transitions_no_update BEFORE UPDATE ON plan_transitions
BEGIN
    SELECT RAISE(ABORT, 'plan transitions are append-only');
END;
CREATE TRIGGER plan_transitions_no_delete BEFORE DELETE ON plan_transitions
BEGIN
    SELECT RAISE(ABORT, 'plan transitions are append-only');
END;

-- Named plans per environment (the API's JSON, checked when read). `builtin` ones ship with
-- graycast; every environment gets them when it is created.
CREATE TABLE rollout_templates (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    env_id     INTEGER NOT NULL REFERENCES environments (id),
    name       TEXT NOT NULL,
    plan       TEXT NOT NULL,
    builtin    INTEGER NOT NULL DEFAULT 0 CHECK (builtin IN (0, 1)),
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (env_id, name)
);

-- The template the dashboard preselects in an environment (a name of its templates).
ALTER TABLE environments ADD COLUMN default_template TEXT;

CREATE TRIGGER environments_default_template_exists
BEFORE UPDATE OF default_template ON environments
WHEN new.default_template IS NOT NULL
 AND NOT EXISTS (SELECT 1 FROM rollout_templates t
                  WHERE t.env_id = new.id AND t.name = new.default_template)
BEGIN
    SELECT RAISE(ABORT, 'the default template must be a template of the environment');
END;

CREATE TRIGGER rollout_templates_default_kept BEFORE DELETE ON rollout_templates
WHEN EXISTS (SELECT 1 FROM environments e
              WHERE e.id = old.env_id AND e.default_template = old.name)
BEGIN
    SELECT RAISE(ABORT, 'the default template of an environment cannot be deleted');
END;

-- The built-in templates (domain::plan::builtin_templates; a unit test keeps the two equal):
-- canary = 5 %, 25 %, 100 %, 10 min each, then promote; linear = 20 % steps every 6 min,
-- holding at 100 %.
CREATE TABLE builtin_rollout_templates (
    name TEXT PRIMARY KEY,
    plan TEXT NOT NULL
);
INSERT INTO builtin_rollout_templates (name, plan) VALUES
('canary', '{"steps":[{"percentage":5.0,"hold_secs":600},{"percentage":25.0,"hold_secs":600},{"percentage":100.0,"hold_secs":600}],"guards":[],"on_failure":"abort","no_data":"wait","finish":"promote"}'),
('linear', '{"steps":[{"percentage":20.0,"hold_secs":360},{"percentage":40.0,"hold_secs":360},{"percentage":60.0,"hold_secs":360},{"percentage":80.0,"hold_secs":360},{"percentage":100.0,"hold_secs":360}],"guards":[],"on_failure":"abort","no_data":"wait","finish":"hold"}');

INSERT INTO rollout_templates (env_id, name, plan, builtin, created_by)
SELECT e.id, b.name, b.plan, 1, 'graycast' FROM environments e, builtin_rollout_templates b;

CREATE TRIGGER environments_get_builtin_templates AFTER INSERT ON environments
BEGIN
    INSERT INTO rollout_templates (env_id, name, plan, builtin, created_by)
    SELECT new.id, b.name, b.plan, 1, 'graycast' FROM builtin_rollout_templates b;
END;
