-- Local-first sync: samod's document storage on this device, and which
-- Automerge document holds each workflow, with the heads last projected.
CREATE TABLE sync_kv (
    key TEXT PRIMARY KEY,
    data BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE sync_docs (
    workflow_id TEXT PRIMARY KEY,
    doc_id TEXT NOT NULL UNIQUE,
    heads TEXT NOT NULL DEFAULT '[]'  -- JSON array of change hashes (hex)
);

-- Execution-log documents (one per workflow, device and month) and the
-- heads last merged from each.
CREATE TABLE sync_logs (
    log_key TEXT PRIMARY KEY,  -- '<workflow_id>/<device_id>/<YYYY-MM>'
    doc_id TEXT NOT NULL UNIQUE,
    heads TEXT NOT NULL DEFAULT '[]'
);

-- What merges left behind: values edited concurrently on several devices
-- (JSON array of {field, values}), and the rule errors of a merged config
-- that no single device wrote (JSON array of {field, code, message}).
ALTER TABLE workflows ADD COLUMN conflicts TEXT NOT NULL DEFAULT '[]';
ALTER TABLE workflows ADD COLUMN validation_errors TEXT NOT NULL DEFAULT '[]';
