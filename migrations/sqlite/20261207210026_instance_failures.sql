-- An instance's last failure per config, kept until it applies that version or a newer one
-- (the last report alone forgets it once the instance is back on stable).
ALTER TABLE instance_configs ADD COLUMN failed INTEGER;
ALTER TABLE instance_configs ADD COLUMN failed_message TEXT;
ALTER TABLE instance_configs ADD COLUMN failed_at TEXT;
