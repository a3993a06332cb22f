-- Schedules (config.run.schedule). A scheduled run, or a skipped
-- occurrence, records the instant it was scheduled for (Unix ms): with the
-- workflow and the device, the occurrence's key, so a second agent or a
-- restart never records it twice. Runs of other kinds keep it empty.
ALTER TABLE executions ADD COLUMN occurrence INTEGER;
CREATE UNIQUE INDEX executions_by_occurrence
    ON executions (workflow_id, occurrence, device_id) WHERE occurrence IS NOT NULL;

-- The schedule in effect per live workflow and since when (the time of the
-- event that set it as it is now): an agent counts occurrences from the
-- later of that and the last recorded one. A read table like the others,
-- rebuilt from the log.
CREATE TABLE schedules (
    workflow_id TEXT PRIMARY KEY,
    schedule TEXT NOT NULL,
    since INTEGER NOT NULL
) WITHOUT ROWID;
