-- The compare guard (issue 29): a fourth guard kind, and the numbers of each comparison kept
-- beside its reading (`details`, JSON: both medians, the ratio, U, the p-value, the counts).
ALTER TABLE plan_guards DROP CONSTRAINT plan_guards_kind_check;
ALTER TABLE plan_guards ADD CONSTRAINT plan_guards_kind_check
    CHECK (kind IN ('reports', 'prometheus', 'webhook', 'compare'));
ALTER TABLE plan_guards ADD COLUMN details TEXT COLLATE "C";
ALTER TABLE plan_evaluations DROP CONSTRAINT plan_evaluations_kind_check;
ALTER TABLE plan_evaluations ADD CONSTRAINT plan_evaluations_kind_check
    CHECK (kind IN ('reports', 'prometheus', 'webhook', 'compare'));
ALTER TABLE plan_evaluations ADD COLUMN details TEXT COLLATE "C";
