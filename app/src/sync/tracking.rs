//! Which documents and logs this device syncs (`sync_docs`, `sync_logs`)
//! and the heads last merged from each.

use super::*;

impl Service {
    pub(super) fn known_docs(&self) -> Result<Vec<KnownDoc>> {
        self.tracked("SELECT workflow_id, doc_id, heads FROM sync_docs")
    }

    pub(super) fn known_logs(&self) -> Result<Vec<KnownDoc>> {
        self.tracked("SELECT log_key, doc_id, heads FROM sync_logs")
    }

    /// The tracked document of one workflow.
    pub(super) fn known_doc(&self, workflow_id: &str) -> Result<Option<KnownDoc>> {
        Ok(self
            .tracked_where(
                "SELECT workflow_id, doc_id, heads FROM sync_docs WHERE workflow_id = ?1",
                [workflow_id],
            )?
            .pop())
    }

    /// The tracked document of one run log.
    pub(super) fn known_log(&self, key: &str) -> Result<Option<KnownDoc>> {
        Ok(self
            .tracked_where(
                "SELECT log_key, doc_id, heads FROM sync_logs WHERE log_key = ?1",
                [key],
            )?
            .pop())
    }

    /// The workflow (`Ok(Some((doc, true)))`) or run log (`false`) a document
    /// id is tracked for: what changed, without reading every tracked
    /// document (a watch round with 10,000 workflows).
    pub(super) fn known_by_doc(&self, doc_id: &DocumentId) -> Result<Option<(KnownDoc, bool)>> {
        let id = doc_id.to_string();
        if let Some(d) = self
            .tracked_where(
                "SELECT workflow_id, doc_id, heads FROM sync_docs WHERE doc_id = ?1",
                [&id],
            )?
            .pop()
        {
            return Ok(Some((d, true)));
        }
        Ok(self
            .tracked_where(
                "SELECT log_key, doc_id, heads FROM sync_logs WHERE doc_id = ?1",
                [&id],
            )?
            .pop()
            .map(|d| (d, false)))
    }

    /// The ids of every workflow with a tracked document.
    pub(super) fn known_workflow_ids(&self) -> Result<HashSet<String>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT workflow_id FROM sync_docs")?;
            let ids = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<HashSet<_>>>()?;
            Ok(ids)
        })
    }

    /// Tracked documents from a `(key, doc_id, heads)` query.
    pub(super) fn tracked(&self, sql: &str) -> Result<Vec<KnownDoc>> {
        self.tracked_where(sql, ())
    }

    /// Tracked documents from a `(key, doc_id, heads)` query with
    /// parameters.
    fn tracked_where(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<KnownDoc>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(sql)?;
            let rows = stmt.query_map(params, |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (key, doc_id, heads) = row?;
                let doc_id = DocumentId::from_str(&doc_id)
                    .map_err(|_| Error::Corrupt(format!("document id {doc_id}")))?;
                out.push(KnownDoc {
                    key,
                    doc_id,
                    heads: serde_json::from_str(&heads)?,
                });
            }
            Ok(out)
        })
    }

    pub(super) fn save_log(&self, key: &str, doc_id: &DocumentId, heads: &[String]) -> Result<()> {
        self.write(|w| save_log_in(w.conn, key, doc_id, heads))
    }

    /// Remembers a change this device wrote into `doc_id` (`sync_pushed`).
    /// A failure is one to store what sync needs (`Error::SyncStorage`: a
    /// watch tries again later), and the change is then not made.
    pub(super) fn note_pushed(&self, doc_id: &DocumentId, hash: &ChangeHash) -> Result<()> {
        self.write(|w| {
            w.conn
                .prepare_cached("INSERT OR IGNORE INTO sync_pushed (doc_id, hash) VALUES (?1, ?2)")?
                .execute(params![doc_id.to_string(), hash.to_string()])?;
            Ok(())
        })
        .map_err(|e| Error::SyncStorage(format!("noting a change to send: {e}")))
    }

    /// The changes this device wrote into `doc_id` past its recorded heads.
    pub(super) fn pushed(&self, doc_id: &DocumentId) -> Result<HashSet<ChangeHash>> {
        self.read(|c| {
            let hashes: Vec<String> = c
                .prepare_cached("SELECT hash FROM sync_pushed WHERE doc_id = ?1")?
                .query_map([doc_id.to_string()], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(hashes
                .iter()
                .filter_map(|h| ChangeHash::from_str(h).ok())
                .collect())
        })
    }

    /// Records `heads` as what this device's projection reflects of the
    /// document, and forgets the pushes they cover.
    pub(super) fn save_doc(
        &self,
        workflow_id: &str,
        handle: &DocHandle,
        heads: &[String],
    ) -> Result<()> {
        let done = self.covered_pushes(handle, heads)?;
        self.write(|w| save_doc_in(w.conn, workflow_id, handle.document_id(), heads, &done))
    }

    /// The pushes noted for `handle`'s document that `heads` cover.
    pub(super) fn covered_pushes(
        &self,
        handle: &DocHandle,
        heads: &[String],
    ) -> Result<Vec<ChangeHash>> {
        let pushed = self.pushed(handle.document_id())?;
        if pushed.is_empty() {
            return Ok(Vec::new());
        }
        with_doc(handle, |d| covered_pushes(d, &parse_heads(heads), &pushed))
    }

    /// Forgets pushes noted for `doc_id`.
    pub(super) fn forget_pushes(&self, doc_id: &DocumentId, hashes: &[ChangeHash]) -> Result<()> {
        self.write(|w| forget_pushes_in(w.conn, doc_id, hashes))
    }
}

pub(super) fn save_log_in(
    c: &rusqlite::Connection,
    key: &str,
    doc_id: &DocumentId,
    heads: &[String],
) -> Result<()> {
    c.prepare_cached(
        "INSERT OR REPLACE INTO sync_logs (log_key, doc_id, heads) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![
        key,
        doc_id.to_string(),
        serde_json::to_string(heads)?
    ])?;
    Ok(())
}

pub(super) fn save_doc_in(
    c: &rusqlite::Connection,
    workflow_id: &str,
    doc_id: &DocumentId,
    heads: &[String],
    done: &[ChangeHash],
) -> Result<()> {
    c.prepare_cached(
        "INSERT OR REPLACE INTO sync_docs (workflow_id, doc_id, heads) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![
        workflow_id,
        doc_id.to_string(),
        serde_json::to_string(heads)?
    ])?;
    // A push the heads do not cover stays noted: one this copy lacks may
    // come back from the server, and must then be known as this device's.
    forget_pushes_in(c, doc_id, done)
}

pub(super) fn forget_pushes_in(
    c: &rusqlite::Connection,
    doc_id: &DocumentId,
    hashes: &[ChangeHash],
) -> Result<()> {
    let mut stmt = c.prepare_cached("DELETE FROM sync_pushed WHERE doc_id = ?1 AND hash = ?2")?;
    for h in hashes {
        stmt.execute(params![doc_id.to_string(), h.to_string()])?;
    }
    Ok(())
}

/// Adds the tracked documents a root list does not mention yet.
pub(super) fn list_missing(
    root: &DocHandle,
    list: root::List,
    tracked: &[KnownDoc],
    reported: impl Fn(&str) -> bool,
) -> Result<()> {
    let listed: std::collections::HashMap<String, String> =
        with_doc(root, |d| root::entries(d, list))?
            .into_iter()
            .collect();
    // Entries another client removed are put back; one it pointed
    // elsewhere only once this device reported it (`reported`, given the
    // entry's key), so tampering is always on record before it is repaired,
    // whenever its change arrived.
    let missing: Vec<&KnownDoc> = tracked
        .iter()
        .filter(|k| match listed.get(&k.key) {
            None => true,
            Some(url) => *url != AutomergeUrl::from(&k.doc_id).to_string() && reported(&k.key),
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    with_doc(root, |d| {
        d.transact::<_, _, String>(|tx| {
            for k in &missing {
                root::add(tx, list, &k.key, &AutomergeUrl::from(&k.doc_id).to_string())?;
            }
            Ok(())
        })
        .map_err(|f| Error::Corrupt(f.error))
    })??;
    Ok(())
}
