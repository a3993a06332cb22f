-- Workspace settings (the global retention policy, ...), projected from
-- settings.updated events. One row per setting path, value as JSON.
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
