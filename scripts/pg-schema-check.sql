-- Checks the PostgreSQL schema (migrations/postgres) does what the SQLite one does: every
-- trigger refuses exactly what SQLite's refuses, with the same message, and allows the rest; the
-- defaults write SQLite's formats; the audit search finds what FTS5 finds.
-- Run it on a freshly migrated database; it changes nothing (one transaction, rolled back):
--   psql "$URL" -v ON_ERROR_STOP=1 -f scripts/pg-schema-check.sql
-- Any failed expectation raises, so psql exits non-zero.
\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
BEGIN;

-- `statement` must fail with the schema's SQLSTATE (GC001) and exactly `message`.
CREATE FUNCTION pg_temp.refused(statement text, message text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RAISE EXCEPTION 'expected % to be refused with "%"; it succeeded', statement, message;
EXCEPTION WHEN SQLSTATE 'GC001' THEN
    IF SQLERRM <> message THEN
        RAISE EXCEPTION '% was refused with "%", expected "%"', statement, SQLERRM, message;
    END IF;
END
$$;

-- `statement` must change exactly `rows` rows.
CREATE FUNCTION pg_temp.allowed(statement text, rows integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    changed integer;
BEGIN
    EXECUTE statement;
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed <> rows THEN
        RAISE EXCEPTION '% changed % rows, expected %', statement, changed, rows;
    END IF;
END
$$;

CREATE FUNCTION pg_temp.expect(ok boolean, what text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION 'failed: %', what;
    END IF;
END
$$;

-- The ids of the audit entries `query` (a tsquery) matches, in id order.
CREATE FUNCTION pg_temp.found(query tsquery) RETURNS bigint[]
LANGUAGE sql AS $$
    SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM audit WHERE search @@ query
$$;

-- Times: SQLite's strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), UTC whatever the session's time zone.
DO $$
DECLARE
    t text;
BEGIN
    SET LOCAL TimeZone = 'America/New_York';
    PERFORM pg_temp.expect(rfc3339('2026-01-02 03:04:05.006789+00') = '2026-01-02T03:04:05.006Z',
                           'rfc3339 writes UTC with milliseconds, truncated');
    PERFORM pg_temp.expect(rfc3339('2026-07-02 05:04:05.1+02') = '2026-07-02T03:04:05.100Z',
                           'rfc3339 converts to UTC and pads the milliseconds');
    INSERT INTO namespaces (name) VALUES ('check') RETURNING created_at INTO t;
    PERFORM pg_temp.expect(t ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$', 'default time format: ' || t);
    PERFORM pg_temp.expect(abs(extract(epoch FROM t::timestamptz - clock_timestamp())) < 5,
                           'default time is now, in UTC: ' || t);
END
$$;

-- Salts: 16 lower-case hex digits, drawn per config unless given.
DO $$
DECLARE
    a text := random_lane_salt();
    b text := random_lane_salt();
    drawn text;
    given text;
BEGIN
    PERFORM pg_temp.expect(a ~ '^[0-9a-f]{16}$' AND b ~ '^[0-9a-f]{16}$', 'salt format: ' || a);
    PERFORM pg_temp.expect(a <> b, 'two salts differ');
    INSERT INTO environments (name) VALUES ('check');
    INSERT INTO configs (namespace_id, env_id, key, format, latest_version)
    SELECT n.id, e.id, 'a', 'json', 1 FROM namespaces n, environments e
     WHERE n.name = 'check' AND e.name = 'check'
    RETURNING next_lane_salt INTO drawn;
    PERFORM pg_temp.expect(drawn ~ '^[0-9a-f]{16}$', 'a new config draws its next lane salt');
    INSERT INTO configs (namespace_id, env_id, key, format, latest_version, next_lane_salt)
    SELECT n.id, e.id, 'b', 'json', 1, '00000000000000ab' FROM namespaces n, environments e
     WHERE n.name = 'check' AND e.name = 'check'
    RETURNING next_lane_salt INTO given;
    PERFORM pg_temp.expect(given = '00000000000000ab', 'a given next lane salt is kept');
END
$$;

-- Environments get the built-in templates; the default template must exist and stay.
DO $$
DECLARE
    env bigint := (SELECT id FROM environments WHERE name = 'check');
BEGIN
    PERFORM pg_temp.expect(
        (SELECT array_agg(name ORDER BY name) FROM rollout_templates
          WHERE env_id = env AND builtin = 1 AND created_by = 'graycast') = '{canary,linear}',
        'a new environment gets the built-in templates');
    PERFORM pg_temp.refused(format('UPDATE environments SET default_template = %L WHERE id = %s', 'nope', env),
                            'the default template must be a template of the environment');
    PERFORM pg_temp.allowed(format('UPDATE environments SET default_template = %L WHERE id = %s', 'canary', env), 1);
    PERFORM pg_temp.allowed(format('UPDATE environments SET name = %L WHERE id = %s', 'check', env), 1);
    PERFORM pg_temp.refused(format('DELETE FROM rollout_templates WHERE env_id = %s AND name = %L', env, 'canary'),
                            'the default template of an environment cannot be deleted');
    PERFORM pg_temp.allowed(format('DELETE FROM rollout_templates WHERE env_id = %s AND name = %L', env, 'linear'), 1);
    PERFORM pg_temp.allowed(format('UPDATE environments SET default_template = NULL WHERE id = %s', env), 1);
    PERFORM pg_temp.allowed(format('DELETE FROM rollout_templates WHERE env_id = %s AND name = %L', env, 'canary'), 1);
END
$$;

-- Configs, versions, release events, lanes, plans and transitions.
DO $$
DECLARE
    config bigint := (SELECT id FROM configs WHERE key = 'a');
    event bigint;
    lane bigint;
    closed bigint;
BEGIN
    INSERT INTO versions (config_id, version, content, checksum, author)
    VALUES (config, 1, '{}', 'c1', 'check'), (config, 2, '{"a":1}', 'c2', 'check');
    PERFORM pg_temp.refused(format('UPDATE versions SET message = %L WHERE config_id = %s', 'x', config),
                            'versions are immutable');
    PERFORM pg_temp.refused(format('DELETE FROM versions WHERE config_id = %s', config), 'versions are immutable');
    PERFORM pg_temp.refused('TRUNCATE versions CASCADE', 'versions are immutable');

    INSERT INTO release_events (config_id, kind, version, actor)
    VALUES (config, 'publish', 1, 'check') RETURNING id INTO event;
    PERFORM pg_temp.refused(format('UPDATE release_events SET message = %L WHERE id = %s', 'x', event),
                            'release events are append-only');
    PERFORM pg_temp.refused(format('DELETE FROM release_events WHERE id = %s', event),
                            'release events are append-only');
    PERFORM pg_temp.refused('TRUNCATE release_events CASCADE', 'release events are append-only');

    INSERT INTO lanes (config_id, version, percentage_bp, salt, created_by)
    VALUES (config, 2, 500, 'aaaaaaaaaaaaaaaa', 'check') RETURNING id INTO lane;
    PERFORM pg_temp.allowed(format('UPDATE lanes SET percentage_bp = 2500 WHERE id = %s', lane), 1);
    PERFORM pg_temp.allowed(format('UPDATE lanes SET salt = %L WHERE id = %s', 'aaaaaaaaaaaaaaaa', lane), 1);
    PERFORM pg_temp.refused(format('UPDATE lanes SET salt = %L WHERE id = %s', 'bbbbbbbbbbbbbbbb', lane),
                            'a lane''s salt never changes');
    PERFORM pg_temp.refused(format('DELETE FROM lanes WHERE id = %s', lane), 'lanes are kept as history');
    PERFORM pg_temp.refused('TRUNCATE lanes CASCADE', 'lanes are kept as history');

    INSERT INTO lane_plans (lane_id, plan, step_started_at, created_by)
    VALUES (lane, '{}', 0, 'check');
    PERFORM pg_temp.allowed(format('UPDATE lane_plans SET step = 1 WHERE lane_id = %s', lane), 1);
    PERFORM pg_temp.allowed(format('UPDATE lane_plans SET state = %L, paused_at = 1 WHERE lane_id = %s', 'paused', lane), 1);
    PERFORM pg_temp.allowed(format('UPDATE lane_plans SET state = %L, paused_at = NULL WHERE lane_id = %s', 'completed', lane), 1);
    PERFORM pg_temp.refused(format('UPDATE lane_plans SET reason = %L WHERE lane_id = %s', 'x', lane),
                            'a completed or aborted plan cannot change');

    INSERT INTO plan_transitions (lane_id, action, actor, step, state, percentage_bp, release_event)
    VALUES (lane, 'complete', 'check', 1, 'completed', 10000, event);
    PERFORM pg_temp.refused(format('UPDATE plan_transitions SET reason = %L WHERE lane_id = %s', 'x', lane),
                            'plan transitions are append-only');
    PERFORM pg_temp.refused(format('DELETE FROM plan_transitions WHERE lane_id = %s', lane),
                            'plan transitions are append-only');
    PERFORM pg_temp.refused('TRUNCATE plan_transitions', 'plan transitions are append-only');

    PERFORM pg_temp.allowed(
        format('UPDATE lanes SET status = %L, closed_at = rfc3339_now(), closed_by = %s WHERE id = %s',
               'promoted', event, lane), 1);
    PERFORM pg_temp.refused(format('UPDATE lanes SET percentage_bp = 0 WHERE id = %s', lane),
                            'closed lanes cannot change');
    -- Both rules apply; SQLite answers with the closed one too.
    PERFORM pg_temp.refused(format('UPDATE lanes SET salt = %L WHERE id = %s', 'bbbbbbbbbbbbbbbb', lane),
                            'closed lanes cannot change');
    INSERT INTO lanes (config_id, version, percentage_bp, salt, status, created_by)
    VALUES (config, 1, 0, 'cccccccccccccccc', 'aborted', 'check') RETURNING id INTO closed;
    PERFORM pg_temp.refused(format('UPDATE lanes SET selector = %L WHERE id = %s', 'a = 1', closed),
                            'closed lanes cannot change');

    PERFORM pg_temp.allowed(format('UPDATE configs SET latest_version = 2 WHERE id = %s', config), 1);
    PERFORM pg_temp.refused(format('DELETE FROM configs WHERE id = %s', config),
                            'configs are kept as history; set deleted_at instead');
    PERFORM pg_temp.refused('TRUNCATE configs CASCADE', 'configs are kept as history; set deleted_at instead');
    PERFORM pg_temp.allowed(format('UPDATE configs SET deleted_at = rfc3339_now() WHERE id = %s', config), 1);
    PERFORM pg_temp.refused(format('UPDATE configs SET latest_version = 3 WHERE id = %s', config),
                            'deleted configs cannot change');
    -- The key is unique among live configs only.
    INSERT INTO configs (namespace_id, env_id, key, format, latest_version)
    SELECT namespace_id, env_id, key, format, 1 FROM configs WHERE id = config;
    BEGIN
        INSERT INTO configs (namespace_id, env_id, key, format, latest_version)
        SELECT namespace_id, env_id, key, format, 1 FROM configs WHERE id = config;
        RAISE EXCEPTION 'failed: a second live config with the same key was accepted';
    EXCEPTION WHEN unique_violation THEN
        NULL;
    END;
END
$$;

-- Integers that are booleans take 0 and 1 only.
DO $$
BEGIN
    BEGIN
        INSERT INTO instances (namespace, env, client_id, connected) VALUES ('check', 'check', 'c', 2);
        RAISE EXCEPTION 'failed: instances.connected = 2 was accepted';
    EXCEPTION WHEN check_violation THEN
        NULL;
    END;
    BEGIN
        INSERT INTO users (username, password_hash, role, disabled) VALUES ('check', 'h', 'admin', 2);
        RAISE EXCEPTION 'failed: users.disabled = 2 was accepted';
    EXCEPTION WHEN check_violation THEN
        NULL;
    END;
    INSERT INTO instances (namespace, env, client_id, connected, node) VALUES ('check', 'check', 'c', 1, 'n1');
    INSERT INTO instance_configs (namespace, env, client_id, key, served) VALUES ('check', 'check', 'c', 'a', 1);
    PERFORM pg_temp.allowed($q$DELETE FROM instances WHERE client_id = 'c'$q$, 1);
    PERFORM pg_temp.expect(NOT EXISTS (SELECT 1 FROM instance_configs WHERE client_id = 'c'),
                           'an instance''s configs go with it');
END
$$;

-- The audit trail: append-only, times never decrease, and the full-text search.
DO $$
DECLARE
    a bigint;
    b bigint;
    c bigint;
    last_at text;
BEGIN
    INSERT INTO audit (actor, action, namespace, env, key, details)
    VALUES ('alice', 'config.update', 'payments', 'prod', 'db.url',
            '{"message":"Rolled back the HOTFIX release"}') RETURNING id INTO a;
    INSERT INTO audit (actor, action, namespace, env, key, details)
    VALUES ('bob', 'release.promote', 'search', 'staging', 'feature-flags',
            '{"note":"Cafés are running, ÉCOLE naïve"}') RETURNING id INTO b;
    INSERT INTO audit (actor, action, namespace, env, key, details)
    VALUES ('carol-ops', 'lane.create', 'payments', 'staging', NULL, '{}') RETURNING id, at INTO c, last_at;

    PERFORM pg_temp.refused(format('UPDATE audit SET actor = %L WHERE id = %s', 'x', a), 'audit entries are append-only');
    PERFORM pg_temp.refused(format('DELETE FROM audit WHERE id = %s', a), 'audit entries are append-only');
    PERFORM pg_temp.refused('TRUNCATE audit', 'audit entries are append-only');
    PERFORM pg_temp.refused(
        format('INSERT INTO audit (at, actor, action) VALUES (%L, %L, %L)', '2000-01-01T00:00:00.000Z', 'x', 'x'),
        'audit entries must not be older than the previous entry');
    PERFORM pg_temp.allowed(format('INSERT INTO audit (at, actor, action) VALUES (%L, %L, %L)', last_at, 'dave', 'token.create'), 1);

    -- Words: all required, any column, case-folded, not stemmed; only the last is a prefix.
    PERFORM pg_temp.expect(pg_temp.found(audit_search_words('hotfix')) = ARRAY[a], 'a word');
    PERFORM pg_temp.expect(pg_temp.found(audit_search_words('HotFix')) = ARRAY[a], 'case is folded');
    PERFORM pg_temp.expect(pg_temp.found(audit_search_words('payments')) = ARRAY[a, c], 'a word in the target');
    PERFORM pg_temp.expect(pg_temp.found(audit_search_words('hotfix prod')) = ARRAY[a], 'two words');
    PERFORM pg_temp.expect(pg_temp.found(audit_search_words('hotfix staging')) = '{}', 'every word is required');
    PERFORM pg_temp.expect(pg_temp.found(audit_search_words('hotf')) = ARRAY[a], 'the last word is a prefix');
    PERFORM pg_temp.expect(pg_temp.found(audit_search_words('release hotf')) = ARRAY[a], 'a prefix after a word');
    PERFORM pg_temp.expect(pg_temp.found(audit_search_words('hotf release')) = '{}', 'an earlier word is no prefix');
    PERFORM pg_temp.expect(pg_temp.found(audit_search_words('rolled')) = ARRAY[a], 'an inflected word');
    PERFORM pg_temp.expect(pg_temp.found(audit_search_words('roll back')) = '{}', 'no stemming: roll is not rolled');
    PERFORM pg_temp.expect(pg_temp.found(audit_search_words('run cafes')) = '{}', 'no stemming: run is not running');
    PERFORM pg_temp.expect(pg_temp.found(audit_search_words('running cafes')) = ARRAY[b], 'diacritics are removed (Cafés)');
    PERFORM pg_temp.expect(pg_temp.found(audit_search_words('école naive')) = ARRAY[b], 'diacritics are removed (ÉCOLE, naïve)');
    -- A term with punctuation is a phrase of its words, in order, within one column.
    PERFORM pg_temp.expect(pg_temp.found(audit_search_words('db.url')) = ARRAY[a], 'a phrase');
    PERFORM pg_temp.expect(pg_temp.found(audit_search_words('url/db')) = '{}', 'a phrase keeps its order');
    PERFORM pg_temp.expect(pg_temp.found(audit_search_words('feature-fl')) = ARRAY[b], 'a phrase ending in a prefix');
    PERFORM pg_temp.expect(pg_temp.found(audit_search_words('alice-config')) = '{}', 'a phrase does not span columns');
    PERFORM pg_temp.expect(pg_temp.found(audit_search_words('payments/prod/db.url')) = ARRAY[a], 'a whole target');
    -- Search syntax is plain text; terms without a word are dropped.
    PERFORM pg_temp.expect(pg_temp.found(audit_search_words('hotfix & | ! :* ( <->')) = ARRAY[a], 'operators are text');
    PERFORM pg_temp.expect(pg_temp.found(audit_search_words('say "hi" OR NEAR(')) = '{}', 'FTS5 syntax is text');
    PERFORM pg_temp.expect(audit_search_words('  - * ') IS NULL AND audit_search_words('') IS NULL,
                           'no word, no query');
    -- Narrowing by column (A actor, B action, C target).
    PERFORM pg_temp.expect(pg_temp.found(audit_search_phrase('alice', 'A', false)) = ARRAY[a], 'an actor');
    PERFORM pg_temp.expect(pg_temp.found(audit_search_phrase('alice', 'B', false)) = '{}', 'not an action');
    PERFORM pg_temp.expect(pg_temp.found(audit_search_phrase('release', 'B', false)) = ARRAY[b],
                           'an action word, not the same word in details');
    PERFORM pg_temp.expect(pg_temp.found(audit_search_phrase('carol-ops', 'A', false)) = ARRAY[c], 'an actor phrase');
    PERFORM pg_temp.expect(pg_temp.found(audit_search_phrase('staging', 'C', false)) = ARRAY[b, c], 'a target word');
    PERFORM pg_temp.expect(
        pg_temp.found(audit_search_words('rolled') && audit_search_phrase('payments', 'C', false)) = ARRAY[a],
        'words and a narrowing together');
    PERFORM pg_temp.expect(audit_search_phrase('-', 'A', false) IS NULL, 'no word, no phrase');
END
$$;

-- The search uses the GIN index.
DO $$
DECLARE
    plan text;
BEGIN
    SET LOCAL enable_seqscan = off;
    EXECUTE $q$EXPLAIN (FORMAT JSON) SELECT id FROM audit WHERE search @@ audit_search_words('hotf')$q$ INTO plan;
    PERFORM pg_temp.expect(plan LIKE '%"Index Name": "audit_search"%', 'the audit search uses its index: ' || plan);
END
$$;

-- The tables of section 8: their defaults.
DO $$
DECLARE
    started text;
    beat text;
BEGIN
    INSERT INTO nodes (id, address) VALUES ('n1', '127.0.0.1:1') RETURNING started_at, heartbeat_at INTO started, beat;
    PERFORM pg_temp.expect(started ~ '^\d{4}-.*Z$' AND beat >= started, 'a node''s times default to now');
    INSERT INTO leases (name, holder, expires_at) VALUES ('plan_scheduler', 'n1', rfc3339(clock_timestamp() + interval '15 s'));
    PERFORM pg_temp.expect((SELECT expires_at > rfc3339_now() FROM leases), 'a lease expires later');
    INSERT INTO login_attempts (source, username) VALUES ('127.0.0.1', NULL), ('127.0.0.1', 'alice');
    PERFORM pg_temp.expect((SELECT count(*) FROM login_attempts WHERE source = '127.0.0.1' AND at <= rfc3339_now()) = 2,
                           'login attempts are timed now');
END
$$;

ROLLBACK;
\echo 'pg-schema-check: all checks passed'
