//! The server's SQLite file (the embedded default): workspaces (with hashed
//! tokens), devices (with hashed credentials) and the key/value blobs samod
//! stores for every workspace (`kv`, through `flowkeep-samod-sqlite`).

use std::path::Path;
use std::sync::{Arc, Mutex};

use flowkeep_samod_sqlite::SqliteStorage;

use rusqlite::{params, Connection, OptionalExtension};

use super::{Credential, Device, Error, Workspace};

pub struct Sqlite {
    conn: Arc<Mutex<Connection>>,
    /// samod's `kv` table; every workspace's storage is this one under its
    /// prefix, so writes of all workspaces are committed together.
    kv: SqliteStorage,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS workspaces (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
-- One credential per device: the workspace token only enrols. A revoked
-- device keeps its row (revoked_at) so its id cannot enrol again.
CREATE TABLE IF NOT EXISTS devices (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    device_id TEXT NOT NULL,
    name TEXT NOT NULL,
    credential_hash TEXT NOT NULL UNIQUE,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    revoked_at INTEGER,
    PRIMARY KEY (workspace_id, device_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS devices_revoked ON devices (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    data BLOB NOT NULL
) WITHOUT ROWID;
-- The device whose authenticated connection first brought each change.
CREATE TABLE IF NOT EXISTS uploads (
    workspace_id TEXT NOT NULL,
    change_hash TEXT NOT NULL,
    document_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, change_hash)
) WITHOUT ROWID;
";

/// The directory 0700, the database file created 0600 before SQLite opens
/// it (SQLite gives `-wal` and `-shm` the database file's mode), and
/// existing ones stripped of group and other permissions. A file owned by
/// someone else (EPERM) is left alone.
fn make_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Some(up) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(up)?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        tighten(dir)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        // `mode` is filtered by the umask; set it exactly.
        Ok(f) => f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?,
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        Err(_) => {}
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        tighten(Path::new(&p))?;
    }
    Ok(())
}

fn tighten(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mode = meta.permissions().mode() & 0o7777;
    let want = if meta.is_dir() {
        (mode & 0o7700) | 0o700
    } else {
        mode & 0o7700
    };
    if mode == want {
        return Ok(());
    }
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(want)) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(()),
        other => other,
    }
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path`. Its directory is
    /// made 0700 and the file (with `-wal` and `-shm`) 0600, whatever the
    /// umask; existing ones are tightened. It holds every workspace's
    /// documents.
    pub fn open(path: &Path) -> Result<Sqlite, Error> {
        make_private(path)?;
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // A committed put survives a crash of the server process.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        let conn = Arc::new(Mutex::new(conn));
        Ok(Sqlite {
            kv: SqliteStorage::new(conn.clone(), "kv", ""),
            conn,
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn create_workspace(
        &self,
        id: &str,
        name: &str,
        token_hash: &str,
        now: i64,
    ) -> Result<Workspace, Error> {
        let conn = self.conn();
        match conn.execute(
            "INSERT INTO workspaces (id, name, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, name, token_hash, now],
        ) {
            Ok(_) => Ok(Workspace {
                id: id.to_owned(),
                name: name.to_owned(),
                created_at: now,
            }),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(Error::Conflict(name.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn workspace_by_token_hash(&self, token_hash: &str) -> Result<Option<Workspace>, Error> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, name, created_at FROM workspaces WHERE token_hash = ?1",
                [token_hash],
                |r| {
                    Ok(Workspace {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        created_at: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn workspaces(&self) -> Result<Vec<Workspace>, Error> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT id, name, created_at FROM workspaces ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok(Workspace {
                id: r.get(0)?,
                name: r.get(1)?,
                created_at: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Replaces a workspace's token (the old one stops working).
    pub fn rotate_token(&self, name: &str, token_hash: &str) -> Result<bool, Error> {
        let n = self.conn().execute(
            "UPDATE workspaces SET token_hash = ?2 WHERE name = ?1",
            params![name, token_hash],
        )?;
        Ok(n == 1)
    }

    pub fn workspace_by_name(&self, name: &str) -> Result<Option<Workspace>, Error> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, name, created_at FROM workspaces WHERE name = ?1",
                [name],
                |r| {
                    Ok(Workspace {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        created_at: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Enrols `device_id` in a workspace with a new credential (given
    /// hashed). A device that enrols again (re-joined, reinstalled) gets the
    /// new credential and its old one stops working; a revoked one is
    /// refused.
    pub fn enrol(
        &self,
        workspace_id: &str,
        device_id: &str,
        name: &str,
        credential_hash: &str,
        previous_hash: Option<&str>,
        now: i64,
    ) -> Result<(), Error> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let known: Option<(Option<i64>, String)> = tx
            .query_row(
                "SELECT revoked_at, credential_hash FROM devices WHERE workspace_id = ?1 AND device_id = ?2",
                params![workspace_id, device_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match known {
            Some((Some(_), _)) => return Err(Error::Revoked(device_id.to_owned())),
            Some((None, held))
                if held != credential_hash && previous_hash != Some(held.as_str()) =>
            {
                return Err(Error::Enrolled(device_id.to_owned()))
            }
            _ => {}
        }
        tx.execute(
            "INSERT INTO devices (workspace_id, device_id, name, credential_hash, first_seen, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT (workspace_id, device_id) DO UPDATE
             SET name = excluded.name, credential_hash = excluded.credential_hash, last_seen = excluded.last_seen",
            params![workspace_id, device_id, name, credential_hash, now],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn credential(&self, credential_hash: &str) -> Result<Option<Credential>, Error> {
        Ok(self
            .conn()
            .query_row(
                "SELECT w.id, w.name, w.created_at, d.device_id, d.revoked_at
                 FROM devices d JOIN workspaces w ON w.id = d.workspace_id
                 WHERE d.credential_hash = ?1",
                [credential_hash],
                |r| {
                    Ok(Credential {
                        workspace: Workspace {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            created_at: r.get(2)?,
                        },
                        device_id: r.get(3)?,
                        revoked_at: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    /// Records that a device connected now.
    pub fn seen(&self, workspace_id: &str, device_id: &str, now: i64) -> Result<(), Error> {
        self.conn()
            .prepare_cached(
                "UPDATE devices SET last_seen = max(last_seen, ?3) WHERE workspace_id = ?1 AND device_id = ?2",
            )?
            .execute(params![workspace_id, device_id, now])?;
        Ok(())
    }

    pub fn record_uploads(
        &self,
        workspace_id: &str,
        device_id: &str,
        changes: &[(String, String)],
        now: i64,
    ) -> Result<(), Error> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO uploads (workspace_id, change_hash, document_id, device_id, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (document, hash) in changes {
                stmt.execute(params![workspace_id, hash, document, device_id, now])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn uploaders(
        &self,
        workspace_id: &str,
        hashes: &[String],
    ) -> Result<Vec<(String, String)>, Error> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT device_id FROM uploads WHERE workspace_id = ?1 AND change_hash = ?2",
        )?;
        let mut out = Vec::new();
        for h in hashes {
            if let Some(device) = stmt
                .query_row(params![workspace_id, h], |r| r.get::<_, String>(0))
                .optional()?
            {
                out.push((h.clone(), device));
            }
        }
        Ok(out)
    }

    /// A workspace's devices, oldest first.
    pub fn devices(&self, workspace_id: &str) -> Result<Vec<Device>, Error> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT device_id, name, first_seen, last_seen, revoked_at FROM devices
             WHERE workspace_id = ?1 ORDER BY first_seen, device_id",
        )?;
        let rows = stmt.query_map([workspace_id], |r| {
            Ok(Device {
                device_id: r.get(0)?,
                name: r.get(1)?,
                first_seen: r.get(2)?,
                last_seen: r.get(3)?,
                revoked_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Revokes a device (its credential stops working); false when it was
    /// already revoked.
    pub fn revoke(&self, workspace_id: &str, device_id: &str, now: i64) -> Result<bool, Error> {
        let conn = self.conn();
        let n = conn.execute(
            "UPDATE devices SET revoked_at = ?3 WHERE workspace_id = ?1 AND device_id = ?2 AND revoked_at IS NULL",
            params![workspace_id, device_id, now],
        )?;
        if n == 1 {
            return Ok(true);
        }
        let exists: bool = conn.query_row(
            "SELECT count(*) > 0 FROM devices WHERE workspace_id = ?1 AND device_id = ?2",
            params![workspace_id, device_id],
            |r| r.get(0),
        )?;
        if exists {
            Ok(false)
        } else {
            Err(Error::NoDevice {
                workspace: workspace_id.to_owned(),
                device: device_id.to_owned(),
            })
        }
    }

    /// Every revoked device, as `(workspace id, device id)`.
    pub fn revoked(&self) -> Result<Vec<(String, String)>, Error> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT workspace_id, device_id FROM devices WHERE revoked_at IS NOT NULL",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// SQLite's `data_version`: changes when another connection (another
    /// process, such as `device revoke`) committed to the file.
    pub fn data_version(&self) -> Result<i64, Error> {
        Ok(self
            .conn()
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// samod's storage for one workspace: the `kv` table under
    /// `ws/<workspace-id>`, so no workspace reads another's documents.
    pub fn storage(&self, workspace_id: &str) -> SqliteStorage {
        self.kv.with_prefix(&format!("ws/{workspace_id}"))
    }

    pub fn writable(&self) -> Result<(), String> {
        let c = self.conn();
        c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
            .map_err(|e| format!("the database does not answer: {e}"))?;
        // SQLite opens a file it may not write read-only, without a word.
        match c.is_readonly(rusqlite::MAIN_DB) {
            Ok(false) => Ok(()),
            Ok(true) => Err("the database file is open read-only: it takes no writes".into()),
            Err(e) => Err(format!("the database does not answer: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_first_device_to_upload_a_change_is_kept_per_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let db = Sqlite::open(&dir.path().join("sync.db")).unwrap();
        let (h1, h2) = ("a".repeat(64), "b".repeat(64));
        let sent = |h: &str| vec![("doc1".to_owned(), h.to_owned())];
        db.record_uploads("w", "dev-1", &sent(&h1), 1).unwrap();
        db.record_uploads("w", "dev-2", &[sent(&h1), sent(&h2), sent(&h2)].concat(), 2)
            .unwrap();
        db.record_uploads("other", "dev-9", &sent(&h2), 3).unwrap();
        let mut found = db
            .uploaders("w", &[h1.clone(), h2.clone(), "c".repeat(64)])
            .unwrap();
        found.sort();
        assert_eq!(
            found,
            vec![(h1.clone(), "dev-1".into()), (h2.clone(), "dev-2".into())]
        );
        assert_eq!(db.uploaders("other", &[h1]).unwrap(), vec![]);
    }

    #[test]
    fn the_data_is_private_and_an_existing_install_is_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("server").join("data");
        let path = dir.join("sync.db");
        let db = Sqlite::open(&path).unwrap();
        db.create_workspace("w1", "team", "hash", 1).unwrap();
        let wal = dir.join("sync.db-wal");
        let shm = dir.join("sync.db-shm");
        assert!(wal.exists() && shm.exists());
        assert_eq!(
            (mode(&dir), mode(&path), mode(&wal), mode(&shm)),
            (0o700, 0o600, 0o600, 0o600)
        );
        // Loosened while the server has it open (as an older version left it).
        for (p, m) in [(&dir, 0o755), (&path, 0o644), (&wal, 0o644), (&shm, 0o644)] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        }
        let _again = Sqlite::open(&path).unwrap();
        drop(db);
        assert_eq!(
            (mode(&dir), mode(&path), mode(&wal), mode(&shm)),
            (0o700, 0o600, 0o600, 0o600)
        );
    }
}
