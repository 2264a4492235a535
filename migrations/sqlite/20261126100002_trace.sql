-- Every audit entry keeps the W3C trace id of the request that caused it;
-- NULL for older entries and for those of start-up and the command line.
ALTER TABLE audit ADD COLUMN trace_id TEXT;
-- `GET /audit?trace_id=` finds one request's entries, newest first.
CREATE INDEX audit_trace_id ON audit (trace_id, id) WHERE trace_id IS NOT NULL;
