-- The browser sessions each user holds, so that disabling a user or changing their role or
-- environment ends every one of them (a re-enabled user's old cookies stay dead), and a user
-- holds at most a few at once (the oldest ends when one more begins).
CREATE TABLE user_sessions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The session store's id (the cookie's value).
    session_id TEXT NOT NULL UNIQUE,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX user_sessions_user ON user_sessions (user_id, id);
