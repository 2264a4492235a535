-- The audit search with the environment and one other filter (the dashboard's environment
-- switcher, a reader limited to one environment): the newest matches in order straight from
-- one index, even when the two never meet (`env=dev` with `action=auth.login`, whose entries
-- have no environment), which a single filter's index cannot do without reading all of its
-- entries. See src/server/db/audit_pg.rs.
CREATE INDEX audit_env_action ON audit (env, action, id);
CREATE INDEX audit_env_namespace ON audit (env, namespace, id);
CREATE INDEX audit_env_actor ON audit (env, actor, id);
