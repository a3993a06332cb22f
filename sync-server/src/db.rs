//! The server's data: workspaces (with hashed tokens), devices (with hashed
//! credentials), the key/value blobs samod stores for every workspace, which
//! device uploaded each change (`uploads.rs`) and, when several nodes share
//! it, who serves which workspace. In a SQLite file
//! in the data dir (the embedded default, `sqlite.rs`) or in PostgreSQL
//! (`--storage postgres://…`, `pg.rs`), with the same meaning in both.

mod pg;
mod pg_writes;
mod sqlite;

use std::path::Path;

pub use pg::{Lease, PgStorage};

use crate::storage::WorkspaceStorage;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("PostgreSQL error: {0}")]
    Postgres(#[from] postgres::Error),
    #[error("a workspace named \"{0}\" already exists")]
    Conflict(String),
    #[error("invalid workspace name \"{0}\": use 1 to 64 letters, digits, - or _")]
    Invalid(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The device id was revoked in this workspace; it cannot enrol again.
    #[error("device {0} was revoked in this workspace")]
    Revoked(String),
    /// The device id is enrolled with another credential, and the enrolment
    /// did not show it: taking the id over is not for whoever holds the
    /// workspace token.
    #[error("device {0} is already enrolled in this workspace with another credential")]
    Enrolled(String),
    #[error("no workspace named \"{0}\"")]
    NoWorkspace(String),
    #[error("no device {device} in workspace {workspace}")]
    NoDevice { workspace: String, device: String },
    #[error("--storage {0}")]
    BadStorage(String),
}

/// A device enrolled in a workspace, as `device list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Device {
    pub device_id: String,
    pub name: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub revoked_at: Option<i64>,
}

/// Who a device credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub workspace: Workspace,
    pub device_id: String,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

pub struct Db {
    backend: Backend,
}

enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(pg::Pg),
}

/// Calls the same method on whichever backend holds the data.
macro_rules! both {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {
        match &$self.backend {
            Backend::Sqlite(b) => b.$method($($arg),*),
            Backend::Postgres(b) => b.$method($($arg),*),
        }
    };
}

impl Db {
    /// Opens (creating if needed) the SQLite database at `path`. Its
    /// directory is made 0700 and the file (with `-wal` and `-shm`) 0600,
    /// whatever the umask; existing ones are tightened.
    pub fn open(path: &Path) -> Result<Db, Error> {
        Ok(Db {
            backend: Backend::Sqlite(sqlite::Sqlite::open(path)?),
        })
    }

    /// Connects to PostgreSQL at `url` (`postgres://user@host:port/db`) and
    /// creates the tables if they are missing.
    pub fn open_postgres(url: &str) -> Result<Db, Error> {
        Db::open_postgres_with(url, None)
    }

    /// PostgreSQL, trusting `ca_pem` beside the system's roots for TLS
    /// (`sslmode=require`).
    pub fn open_postgres_with(url: &str, ca_pem: Option<&str>) -> Result<Db, Error> {
        Ok(Db {
            backend: Backend::Postgres(pg::Pg::open_with(url, ca_pem)?),
        })
    }

    /// `--storage`: nothing for SQLite in `data_dir`, or a `postgres://`
    /// URL.
    pub fn open_storage(storage: Option<&str>, data_dir: &Path) -> Result<Db, Error> {
        Db::open_storage_with(storage, data_dir, None)
    }

    /// `open_storage` with a CA (PEM) to trust for PostgreSQL over TLS.
    pub fn open_storage_with(
        storage: Option<&str>,
        data_dir: &Path,
        ca_pem: Option<&str>,
    ) -> Result<Db, Error> {
        match storage {
            None | Some("") | Some("sqlite") => Db::open(&data_dir.join("sync.db")),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Db::open_postgres_with(url, ca_pem)
            }
            Some(_) => Err(Error::BadStorage(
                "must be `sqlite` (the default, a file in the data dir) or a postgres:// URL"
                    .into(),
            )),
        }
    }

    /// True when several server processes may share this data (PostgreSQL):
    /// each workspace is then served by the node holding its lease.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    pub fn create_workspace(
        &self,
        name: &str,
        token_hash: &str,
        now: i64,
    ) -> Result<Workspace, Error> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(Error::Invalid(name.to_owned()));
        }
        let id = crate::token::random_hex(8);
        both!(self.create_workspace(&id, name, token_hash, now))
    }

    pub fn workspace_by_token_hash(&self, token_hash: &str) -> Result<Option<Workspace>, Error> {
        both!(self.workspace_by_token_hash(token_hash))
    }

    pub fn workspaces(&self) -> Result<Vec<Workspace>, Error> {
        both!(self.workspaces())
    }

    /// Replaces a workspace's token (the old one stops working).
    pub fn rotate_token(&self, name: &str, token_hash: &str) -> Result<bool, Error> {
        both!(self.rotate_token(name, token_hash))
    }

    pub fn workspace_by_name(&self, name: &str) -> Result<Option<Workspace>, Error> {
        both!(self.workspace_by_name(name))
    }

    /// Enrols `device_id` in a workspace with a new credential (given
    /// hashed). A device id already enrolled keeps its credential unless
    /// the enrolment shows it (`previous_hash`: a device that joins again
    /// replaces its own) or is the same one again (a retry); otherwise it is
    /// refused (`Enrolled`), and so is a revoked one (`Revoked`).
    pub fn enrol(
        &self,
        workspace_id: &str,
        device_id: &str,
        name: &str,
        credential_hash: &str,
        previous_hash: Option<&str>,
        now: i64,
    ) -> Result<(), Error> {
        both!(self.enrol(
            workspace_id,
            device_id,
            name,
            credential_hash,
            previous_hash,
            now
        ))
    }

    pub fn credential(&self, credential_hash: &str) -> Result<Option<Credential>, Error> {
        both!(self.credential(credential_hash))
    }

    /// Records that a device connected now.
    pub fn seen(&self, workspace_id: &str, device_id: &str, now: i64) -> Result<(), Error> {
        both!(self.seen(workspace_id, device_id, now))
    }

    /// A workspace's devices, oldest first.
    pub fn devices(&self, workspace_id: &str) -> Result<Vec<Device>, Error> {
        both!(self.devices(workspace_id))
    }

    /// Revokes a device (its credential stops working); false when it was
    /// already revoked.
    pub fn revoke(&self, workspace_id: &str, device_id: &str, now: i64) -> Result<bool, Error> {
        both!(self.revoke(workspace_id, device_id, now))
    }

    /// Every revoked device, as `(workspace id, device id)`.
    pub fn revoked(&self) -> Result<Vec<(String, String)>, Error> {
        both!(self.revoked())
    }

    /// A number that changes when another process may have revoked a device
    /// (SQLite's `data_version`; in PostgreSQL the count of revoked devices,
    /// as a revocation is never undone), so the revoked list is read only
    /// then.
    pub fn data_version(&self) -> Result<i64, Error> {
        both!(self.data_version())
    }

    /// Records that `device_id` uploaded these changes (`(document id,
    /// change hash)`); a change already recorded keeps its first uploader.
    pub fn record_uploads(
        &self,
        workspace_id: &str,
        device_id: &str,
        changes: &[(String, String)],
        now: i64,
    ) -> Result<(), Error> {
        if changes.is_empty() {
            return Ok(());
        }
        both!(self.record_uploads(workspace_id, device_id, changes, now))
    }

    /// The device that uploaded each of `hashes` in this workspace, for
    /// those the server recorded: `(change hash, device id)`.
    pub fn uploaders(
        &self,
        workspace_id: &str,
        hashes: &[String],
    ) -> Result<Vec<(String, String)>, Error> {
        both!(self.uploaders(workspace_id, hashes))
    }

    /// samod's storage for one workspace: keys under `ws/<workspace-id>`,
    /// so no workspace reads another's documents.
    pub fn storage(&self, workspace_id: &str) -> WorkspaceStorage {
        match &self.backend {
            Backend::Sqlite(b) => WorkspaceStorage::Sqlite(b.storage(workspace_id)),
            Backend::Postgres(b) => WorkspaceStorage::Postgres(b.storage(workspace_id)),
        }
    }

    /// Whether the database answers and takes writes; if not, why (for
    /// `/readyz`: a load balancer sends devices elsewhere).
    pub fn writable(&self) -> Result<(), String> {
        both!(self.writable())
    }

    /// Takes or renews this node's lease on a workspace (PostgreSQL only;
    /// with SQLite this process is the only node): `Lease::Mine`, or who
    /// holds it.
    pub fn acquire_lease(
        &self,
        workspace_id: &str,
        node: &crate::cluster::Node,
    ) -> Result<Lease, Error> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(Lease::Mine),
            Backend::Postgres(b) => b.acquire_lease(workspace_id, node),
        }
    }

    /// Renews this node's leases on `workspace_ids`; returns those it still
    /// holds (one that expired and was taken by another node is missing).
    pub fn renew_leases(
        &self,
        node: &crate::cluster::Node,
        workspace_ids: &[String],
    ) -> Result<Vec<String>, Error> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(workspace_ids.to_vec()),
            Backend::Postgres(b) => b.renew_leases(node, workspace_ids),
        }
    }

    /// Gives up this node's lease on a workspace (its repo stopped), so the
    /// next device's node takes it at once.
    pub fn release_lease(
        &self,
        workspace_id: &str,
        node: &crate::cluster::Node,
    ) -> Result<(), Error> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(()),
            Backend::Postgres(b) => b.release_lease(workspace_id, node),
        }
    }
}
