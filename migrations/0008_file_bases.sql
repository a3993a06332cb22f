-- Workflows as files: what each workflow's file said at its last export or
-- import here (its spec as JSON), the base of the next import's three-way
-- merge. Local to this device, not derived from the log (an export writes
-- no event), so not a read table and not rebuilt.
CREATE TABLE file_bases (
    workflow_id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
