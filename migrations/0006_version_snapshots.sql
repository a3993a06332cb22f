-- A cache for time travel: a workflow's version (core::versions::
-- WorkflowVersion as JSON) at every 500th revision, written by the
-- projection, so reading a past version replays at most 499 events. Never
-- the source of truth: a rebuild empties and refills it from the log.
CREATE TABLE version_snapshots (
    workflow_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    -- When the event of this revision was recorded (Unix ms).
    recorded_at INTEGER NOT NULL,
    version TEXT NOT NULL,
    PRIMARY KEY (workflow_id, revision)
) WITHOUT ROWID;
