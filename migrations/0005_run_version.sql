-- What each run ran: the workflow's revision it started from and a hash of
-- the effective config (core::run::config_hash). Runs recorded before this
-- keep both empty.
ALTER TABLE executions ADD COLUMN workflow_revision INTEGER;
ALTER TABLE executions ADD COLUMN config_hash TEXT;
