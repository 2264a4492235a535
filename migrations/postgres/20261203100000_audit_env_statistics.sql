-- The planner assumes filters are independent: for `env = 'dev' AND action = 'auth.login'` it
-- expects a third of the logins to be in `dev` (tens of thousands of rows in a large trail),
-- so walking the primary key backwards looks cheapest, and it reads the whole trail to find
-- that there are none (logins, token and namespace actions have no environment). Joint
-- statistics of the environment with each filter it pairs with tell it which combinations
-- exist, so it starts from the `(env, …, id)` index when a combination is rare or absent.
-- They are filled by ANALYZE (autovacuum runs it as the trail grows).
CREATE STATISTICS audit_env_action_stats (mcv, dependencies) ON env, action FROM audit;
CREATE STATISTICS audit_env_namespace_stats (mcv, dependencies) ON env, namespace FROM audit;
CREATE STATISTICS audit_env_actor_stats (mcv, dependencies) ON env, actor FROM audit;
ANALYZE audit;
