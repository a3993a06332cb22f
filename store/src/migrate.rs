//! Embedded, numbered migrations tracked in `PRAGMA user_version`, each
//! applied in its own transaction.

use rusqlite::Connection;

use crate::Result;

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// Applies the migrations this database has not seen. Returns how many ran.
pub(crate) fn migrate(conn: &mut Connection) -> Result<usize> {
    let current: usize =
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if current > MIGRATIONS.len() {
        return Err(crate::Error::Corrupt(format!(
            "the database is at schema version {current}, newer than this flowkeep ({}); upgrade flowkeep",
            MIGRATIONS.len()
        )));
    }
    let mut applied = 0;
    loop {
        // Re-read the version inside the write lock: another process may have
        // migrated between our first look and now.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: usize =
            tx.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
        let Some((_name, sql)) = MIGRATIONS.get(version) else {
            return Ok(applied);
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (version + 1) as i64)?;
        tx.commit()?;
        applied += 1;
    }
}
