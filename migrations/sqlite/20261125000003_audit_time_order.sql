-- Audit times never decrease along ids (the insert clamps `at` to the previous
-- entry's, and this trigger guards it), so a time range in an audit search is
-- also an id range, found through this index.
CREATE INDEX audit_at ON audit (at);

CREATE TRIGGER audit_at_never_decreases BEFORE INSERT ON audit
WHEN new.at < (SELECT at FROM audit ORDER BY id DESC LIMIT 1)
BEGIN
    SELECT RAISE(ABORT, 'audit entries must not be older than the previous entry');
END;
