-- Flowkeep schema v1: the seed's three read tables (columns kept, more added),
-- the event log they are projected from, and the indexes the queries need.

CREATE TABLE workflows (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    version TEXT,
    config TEXT,  -- JSON config document
    created_at INTEGER,
    updated_at INTEGER,
    tags TEXT NOT NULL DEFAULT '[]',  -- JSON array, mirrored in workflow_tags
    deleted INTEGER NOT NULL DEFAULT 0,
    revision INTEGER NOT NULL DEFAULT 0  -- stream version of the last event
);

CREATE TABLE executions (
    id TEXT PRIMARY KEY,
    workflow_id TEXT,
    status TEXT,
    output TEXT,  -- JSON
    started_at INTEGER,
    completed_at INTEGER,
    duration_ms INTEGER,
    exit_code INTEGER,
    error TEXT,
    trigger TEXT,
    device_id TEXT,
    FOREIGN KEY (workflow_id) REFERENCES workflows(id)
);

CREATE TABLE configs (
    id TEXT PRIMARY KEY,  -- '<workflow_id>/<key>'
    workflow_id TEXT,
    key TEXT,
    value TEXT,  -- JSON
    type TEXT,
    FOREIGN KEY (workflow_id) REFERENCES workflows(id)
);

CREATE TABLE workflow_tags (
    tag TEXT NOT NULL,
    workflow_id TEXT NOT NULL REFERENCES workflows(id),
    PRIMARY KEY (tag, workflow_id)
) WITHOUT ROWID;

CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    stream_id TEXT NOT NULL,
    stream_version INTEGER NOT NULL,
    kind TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    payload TEXT NOT NULL,
    actor TEXT NOT NULL,
    device_id TEXT NOT NULL,
    origin TEXT NOT NULL DEFAULT 'local',
    recorded_at INTEGER NOT NULL,
    change_hashes TEXT,  -- Automerge change hashes of document edits (sync issue)
    UNIQUE (stream_id, stream_version)
);

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE INDEX workflows_by_name ON workflows (deleted, name COLLATE NOCASE, id);
CREATE INDEX workflows_by_created ON workflows (deleted, created_at, id);
CREATE INDEX workflows_by_updated ON workflows (deleted, updated_at, id);
CREATE INDEX configs_by_workflow ON configs (workflow_id, key);
CREATE INDEX workflow_tags_by_workflow ON workflow_tags (workflow_id);
CREATE INDEX executions_by_workflow ON executions (workflow_id, started_at, id);
CREATE INDEX executions_by_workflow_status ON executions (workflow_id, status, started_at, id);
CREATE INDEX executions_by_status ON executions (status, started_at, id);
CREATE INDEX executions_by_start ON executions (started_at, id);
