-- The changes this device wrote into a workflow's document and has not yet
-- recorded heads past (a push's heads are recorded once its write is on
-- disk). A crash in between leaves them past the recorded heads; the next
-- merge recognises them here, not by the commit message another device
-- could forge, and takes them as merged. Rows go when heads are recorded.
CREATE TABLE sync_pushed (
    doc_id TEXT NOT NULL,
    hash TEXT NOT NULL,  -- change hash (hex)
    PRIMARY KEY (doc_id, hash)
) WITHOUT ROWID;
