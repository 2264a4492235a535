-- Change governance (issue 28): protected environments, change requests bound to what was
-- approved, scheduled changes and break-glass overrides.

-- n >= 1: widening actions in the environment need n approvals; 0: unprotected.
ALTER TABLE environments ADD COLUMN approvals INTEGER NOT NULL DEFAULT 0 CHECK (approvals >= 0);

CREATE TABLE change_requests (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    config_id        INTEGER NOT NULL REFERENCES configs (id),
    namespace        TEXT NOT NULL,
    env              TEXT NOT NULL,
    key              TEXT NOT NULL,
    action           TEXT NOT NULL,
    -- The exact body the action runs with (JSON), naming a version number, never "latest".
    body             TEXT NOT NULL,
    message          TEXT NOT NULL DEFAULT '',
    author           TEXT NOT NULL,
    status           TEXT NOT NULL,
    approvals_needed INTEGER NOT NULL,
    apply_at         TEXT,
    -- What it puts live (JSON), the blast radius then (JSON) and the plan (JSON or NULL).
    diff             TEXT NOT NULL,
    preview          TEXT,
    plan             TEXT,
    -- What the approvals are bound to (JSON): stable version, active lanes, version checksum.
    snapshot         TEXT NOT NULL,
    -- Why it ended: a rejection's comment, what went stale, why it expired.
    reason           TEXT,
    ended_by         TEXT,
    ended_at         TEXT,
    release_event    INTEGER,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX change_requests_status ON change_requests (status, apply_at);
CREATE INDEX change_requests_env ON change_requests (env, id);

CREATE TABLE change_approvals (
    change_request INTEGER NOT NULL REFERENCES change_requests (id),
    approver       TEXT NOT NULL,
    comment        TEXT NOT NULL DEFAULT '',
    at             TEXT NOT NULL,
    PRIMARY KEY (change_request, approver)
);

-- Release events are append-only: the approvers of the change request an event applied are
-- written beside it, in the same transaction.
CREATE TABLE release_approvals (
    release_event  INTEGER PRIMARY KEY REFERENCES release_events (id),
    change_request INTEGER NOT NULL REFERENCES change_requests (id),
    approved_by    TEXT NOT NULL
);

-- Break glass: an admin's change applied without the approvals, until another releaser
-- reviews it.
CREATE TABLE overrides (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    config_id      INTEGER NOT NULL REFERENCES configs (id),
    namespace      TEXT NOT NULL,
    env            TEXT NOT NULL,
    key            TEXT NOT NULL,
    action         TEXT NOT NULL,
    change_request INTEGER REFERENCES change_requests (id),
    actor          TEXT NOT NULL,
    reason         TEXT NOT NULL,
    at             TEXT NOT NULL,
    reviewed_by    TEXT,
    reviewed_at    TEXT
);
CREATE INDEX overrides_unreviewed ON overrides (reviewed_at, id);
