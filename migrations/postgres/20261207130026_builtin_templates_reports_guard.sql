-- No evidence, no promotion (issue 26): a plan that finishes by promoting needs a reports guard
-- with min_instances of at least 1, and the built-in templates carry it (domain::plan::
-- builtin_templates; a unit test keeps the two equal). Every environment's built-in copies
-- follow; they are graycast's own (no one edits them), so they are replaced as they are.
-- Templates people made and plans already running are left as they were: a template that
-- breaks the rule is refused when a lane starts from it, and a running plan is judged by the
-- rule when it would promote (it waits for evidence instead).
UPDATE builtin_rollout_templates SET plan =
'{"steps":[{"percentage":5.0,"hold_secs":600},{"percentage":25.0,"hold_secs":600},{"percentage":100.0,"hold_secs":600}],"guards":[{"kind":"reports","max_failed":0,"max_failed_ratio":0.0,"min_applied_ratio":1.0,"min_instances":1}],"on_failure":"abort","no_data":"wait","finish":"promote"}'
WHERE name = 'canary';
UPDATE builtin_rollout_templates SET plan =
'{"steps":[{"percentage":20.0,"hold_secs":360},{"percentage":40.0,"hold_secs":360},{"percentage":60.0,"hold_secs":360},{"percentage":80.0,"hold_secs":360},{"percentage":100.0,"hold_secs":360}],"guards":[{"kind":"reports","max_failed":0,"max_failed_ratio":0.0,"min_applied_ratio":1.0,"min_instances":1}],"on_failure":"abort","no_data":"wait","finish":"hold"}'
WHERE name = 'linear';
UPDATE rollout_templates
   SET plan = (SELECT b.plan FROM builtin_rollout_templates b WHERE b.name = rollout_templates.name)
 WHERE builtin = 1 AND name IN (SELECT name FROM builtin_rollout_templates);
