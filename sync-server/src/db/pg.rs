//! The server's data in PostgreSQL, for several nodes sharing one database:
//! the same tables as the SQLite file plus `leases` (which node serves which
//! workspace). Calls are blocking (the `postgres` crate) and run on tokio's
//! blocking pool, like SQLite's; connections are pooled.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postgres::{Client, NoTls};
use samod::storage::StorageKey;

use flowkeep_samod_sqlite::group_commit::GroupCommit;
use flowkeep_samod_sqlite::Error as StorageError;

use super::pg_writes::{self, PgWrite};
use super::{Credential, Device, Error, Workspace};
use crate::cluster::Node;

/// Idle connections kept for the next call.
const POOL_IDLE: usize = 16;

// `COLLATE "C"`: keys compare byte by byte, so a key range is a prefix.
// Timestamps are Unix milliseconds, as in SQLite; lease expiry uses the
// database's clock, so nodes' clocks need not agree.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS workspaces (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
    device_id TEXT NOT NULL,
    name TEXT NOT NULL,
    credential_hash TEXT NOT NULL UNIQUE,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    revoked_at BIGINT,
    PRIMARY KEY (workspace_id, device_id)
);
CREATE INDEX IF NOT EXISTS devices_revoked ON devices (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS kv (
    key TEXT COLLATE "C" PRIMARY KEY,
    data BYTEA NOT NULL
);
-- The device whose authenticated connection first brought each change.
CREATE TABLE IF NOT EXISTS uploads (
    workspace_id TEXT NOT NULL,
    change_hash TEXT NOT NULL,
    document_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, change_hash)
);
-- One row per workspace served right now: the node serving it, where the
-- other nodes reach it, and until when (renewed while it serves).
CREATE TABLE IF NOT EXISTS leases (
    workspace_id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    node_url TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
"#;

/// Who serves a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// This node: it loads the workspace and serves its devices.
    Mine,
    /// Another live node, reachable at `url`.
    Held { node_id: String, url: String },
}

#[derive(Clone)]
pub struct Pg {
    inner: Arc<Pool>,
}

pub(super) struct Pool {
    config: postgres::Config,
    /// TLS when the URL says `sslmode=require`.
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    idle: Mutex<Vec<Client>>,
    /// Every workspace's document writes on this node, committed together.
    writes: Arc<GroupCommit<PgWrite>>,
}

impl Pool {
    fn connect(&self) -> Result<Client, postgres::Error> {
        match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(NoTls),
        }
    }

    fn checkout(&self) -> Result<Client, Error> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(c) if !c.is_closed() => Ok(c),
            _ => Ok(self.connect()?),
        }
    }

    /// Runs `f` on a pooled connection. A connection that broke (the
    /// database restarted) is dropped and `f` runs once more on a new one.
    fn with<T>(
        &self,
        mut f: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, Error> {
        let mut client = self.checkout()?;
        let mut result = f(&mut client);
        if result.is_err() && client.is_closed() {
            client = self.connect()?;
            result = f(&mut client);
        }
        if !client.is_closed() {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < POOL_IDLE {
                idle.push(client);
            }
        }
        Ok(result?)
    }

    /// [`Pool::with`], tried up to `tries` times over a few seconds while
    /// the database is unreachable or restarting, on the calling thread. A
    /// call the database refuses (bad data, a constraint) fails at once.
    pub(super) fn retrying<T>(
        &self,
        what: &str,
        tries: u32,
        mut f: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, Error> {
        let mut wait = Duration::from_millis(100);
        let mut n = 1;
        loop {
            match self.with(&mut f) {
                Ok(v) => return Ok(v),
                Err(e) if n >= tries || !passing(&e) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "sync storage {what} failed; trying again");
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(2));
                    n += 1;
                }
            }
        }
    }
}

/// Whether every host of the URL is this machine (a Unix socket, localhost
/// or a loopback address).
fn on_this_machine(config: &postgres::Config) -> bool {
    config.get_hosts().iter().all(|h| match h {
        postgres::config::Host::Unix(_) => true,
        postgres::config::Host::Tcp(name) => {
            name == "localhost"
                || name
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
    })
}

/// rustls (ring) trusting the system's roots and `ca_pem`.
fn tls_connector(ca_pem: Option<&str>) -> Result<tokio_postgres_rustls::MakeRustlsConnect, Error> {
    let config = crate::tls::client_config(ca_pem)
        .map_err(|e| Error::BadStorage(format!("--storage-ca-file: {e}")))?;
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Each blocking client owns a small runtime, which must not be
        // dropped on an async worker thread.
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|p| p.into_inner()));
        if !idle.is_empty() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}

/// Whether `e` may pass if the call is made again: no connection, or the
/// database shutting down, starting, out of resources or asking for a
/// retry (SQLSTATE classes 08, 40, 53, 57, 58); not a refusal of the call.
pub(super) fn passing(e: &Error) -> bool {
    match e {
        Error::Postgres(pe) => pe.code().is_none_or(|c| {
            ["08", "40", "53", "57", "58"]
                .iter()
                .any(|class| c.code().starts_with(class))
        }),
        _ => false,
    }
}

fn workspace(r: &postgres::Row) -> Workspace {
    Workspace {
        id: r.get(0),
        name: r.get(1),
        created_at: r.get(2),
    }
}

fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
}

impl Pg {
    /// Opens the shared storage. Data crosses the network in clear only when
    /// asked: a database that is not on this machine needs `sslmode=require`
    /// (TLS, the certificate verified against the system's roots and
    /// `ca_pem`) or an explicit `sslmode=disable`.
    pub fn open_with(url: &str, ca_pem: Option<&str>) -> Result<Pg, Error> {
        // The URL may hold a password: never repeat it in an error.
        let mut config: postgres::Config = url.parse().map_err(|_| {
            Error::BadStorage(
                "is not a valid postgres:// URL (postgres://user[:password]@host[:port]/database)"
                    .into(),
            )
        })?;
        config.connect_timeout(Duration::from_secs(5));
        if config.get_application_name().is_none() {
            config.application_name("flowkeep-sync-server");
        }
        let tls = match config.get_ssl_mode() {
            postgres::config::SslMode::Require => Some(tls_connector(ca_pem)?),
            postgres::config::SslMode::Disable => None,
            _ if on_this_machine(&config) => None,
            _ => {
                return Err(Error::BadStorage(
                    "names a database on another machine: add sslmode=require to the URL for TLS                      (verified against the system's roots and --storage-ca-file), or sslmode=disable                      to send workspaces and documents in clear"
                        .into(),
                ))
            }
        };
        if ca_pem.is_some() && tls.is_none() {
            return Err(Error::BadStorage(
                "--storage-ca-file is for TLS: add sslmode=require to the URL".into(),
            ));
        }
        let pg = Pg {
            inner: Arc::new_cyclic(|pool| Pool {
                config,
                tls,
                idle: Mutex::new(Vec::new()),
                writes: pg_writes::writes(pool.clone()),
            }),
        };
        let with_tls = pg.inner.tls.is_some();
        pg.with(|c| {
            let mut tx = c.transaction()?;
            // Two nodes starting at once must not both create the tables.
            tx.execute("SELECT pg_advisory_xact_lock(77800001)", &[])?;
            tx.batch_execute(SCHEMA)?;
            tx.commit()
        })
        .map_err(|e| match e {
            // The handshake's reason (an unknown issuer, a wrong name) is
            // in the error's sources: say it.
            Error::Postgres(pe) if with_tls && pe.as_db_error().is_none() => {
                let mut why = pe.to_string();
                let mut source = std::error::Error::source(&pe);
                while let Some(s) = source {
                    why.push_str(&format!(": {s}"));
                    source = s.source();
                }
                Error::BadStorage(format!(
                    "cannot connect with TLS ({why}); is the database's CA among the system's roots or in --storage-ca-file?"
                ))
            }
            other => other,
        })?;
        Ok(pg)
    }

    /// Runs `f` on a pooled connection (see [`Pool::with`]).
    fn with<T>(
        &self,
        f: impl FnMut(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, Error> {
        self.inner.with(f)
    }

    pub fn create_workspace(
        &self,
        id: &str,
        name: &str,
        token_hash: &str,
        now: i64,
    ) -> Result<Workspace, Error> {
        let r = self.with(|c| {
            c.execute(
                "INSERT INTO workspaces (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)",
                &[&id, &name, &token_hash, &now],
            )
        });
        match r {
            Ok(_) => Ok(Workspace {
                id: id.to_owned(),
                name: name.to_owned(),
                created_at: now,
            }),
            Err(Error::Postgres(e)) if is_unique_violation(&e) => {
                Err(Error::Conflict(name.to_owned()))
            }
            Err(e) => Err(e),
        }
    }

    pub fn workspace_by_token_hash(&self, token_hash: &str) -> Result<Option<Workspace>, Error> {
        let row = self.with(|c| {
            c.query_opt(
                "SELECT id, name, created_at FROM workspaces WHERE token_hash = $1",
                &[&token_hash],
            )
        })?;
        Ok(row.as_ref().map(workspace))
    }

    pub fn workspaces(&self) -> Result<Vec<Workspace>, Error> {
        let rows = self.with(|c| {
            c.query(
                "SELECT id, name, created_at FROM workspaces ORDER BY name",
                &[],
            )
        })?;
        Ok(rows.iter().map(workspace).collect())
    }

    pub fn rotate_token(&self, name: &str, token_hash: &str) -> Result<bool, Error> {
        let n = self.with(|c| {
            c.execute(
                "UPDATE workspaces SET token_hash = $2 WHERE name = $1",
                &[&name, &token_hash],
            )
        })?;
        Ok(n == 1)
    }

    pub fn workspace_by_name(&self, name: &str) -> Result<Option<Workspace>, Error> {
        let row = self.with(|c| {
            c.query_opt(
                "SELECT id, name, created_at FROM workspaces WHERE name = $1",
                &[&name],
            )
        })?;
        Ok(row.as_ref().map(workspace))
    }

    pub fn enrol(
        &self,
        workspace_id: &str,
        device_id: &str,
        name: &str,
        credential_hash: &str,
        previous_hash: Option<&str>,
        now: i64,
    ) -> Result<(), Error> {
        // The WHERE keeps a revoked device revoked, and an enrolled one's
        // credential its own unless shown, even when two enrolments race:
        // then no row is written, and it is refused below.
        let n = self.with(|c| {
            c.execute(
                "INSERT INTO devices (workspace_id, device_id, name, credential_hash, first_seen, last_seen)
                 VALUES ($1, $2, $3, $4, $5, $5)
                 ON CONFLICT (workspace_id, device_id) DO UPDATE
                 SET name = EXCLUDED.name, credential_hash = EXCLUDED.credential_hash, last_seen = EXCLUDED.last_seen
                 WHERE devices.revoked_at IS NULL
                   AND (devices.credential_hash = EXCLUDED.credential_hash OR devices.credential_hash = $6)",
                &[&workspace_id, &device_id, &name, &credential_hash, &now, &previous_hash],
            )
        })?;
        if n == 1 {
            return Ok(());
        }
        let revoked = self.with(|c| {
            c.query_opt(
                "SELECT revoked_at FROM devices WHERE workspace_id = $1 AND device_id = $2",
                &[&workspace_id, &device_id],
            )
        })?;
        match revoked.map(|r| r.get::<_, Option<i64>>(0)) {
            Some(Some(_)) => Err(Error::Revoked(device_id.to_owned())),
            _ => Err(Error::Enrolled(device_id.to_owned())),
        }
    }

    pub fn credential(&self, credential_hash: &str) -> Result<Option<Credential>, Error> {
        let row = self.with(|c| {
            c.query_opt(
                "SELECT w.id, w.name, w.created_at, d.device_id, d.revoked_at
                 FROM devices d JOIN workspaces w ON w.id = d.workspace_id
                 WHERE d.credential_hash = $1",
                &[&credential_hash],
            )
        })?;
        Ok(row.map(|r| Credential {
            workspace: workspace(&r),
            device_id: r.get(3),
            revoked_at: r.get(4),
        }))
    }

    pub fn seen(&self, workspace_id: &str, device_id: &str, now: i64) -> Result<(), Error> {
        self.with(|c| {
            c.execute(
                "UPDATE devices SET last_seen = GREATEST(last_seen, $3) WHERE workspace_id = $1 AND device_id = $2",
                &[&workspace_id, &device_id, &now],
            )
        })?;
        Ok(())
    }

    pub fn devices(&self, workspace_id: &str) -> Result<Vec<Device>, Error> {
        let rows = self.with(|c| {
            c.query(
                "SELECT device_id, name, first_seen, last_seen, revoked_at FROM devices
                 WHERE workspace_id = $1 ORDER BY first_seen, device_id",
                &[&workspace_id],
            )
        })?;
        Ok(rows
            .iter()
            .map(|r| Device {
                device_id: r.get(0),
                name: r.get(1),
                first_seen: r.get(2),
                last_seen: r.get(3),
                revoked_at: r.get(4),
            })
            .collect())
    }

    pub fn revoke(&self, workspace_id: &str, device_id: &str, now: i64) -> Result<bool, Error> {
        let (changed, exists) = self.with(|c| {
            let n = c.execute(
                "UPDATE devices SET revoked_at = $3 WHERE workspace_id = $1 AND device_id = $2 AND revoked_at IS NULL",
                &[&workspace_id, &device_id, &now],
            )?;
            let exists = n == 1
                || c.query_opt(
                    "SELECT 1 FROM devices WHERE workspace_id = $1 AND device_id = $2",
                    &[&workspace_id, &device_id],
                )?
                .is_some();
            Ok((n == 1, exists))
        })?;
        if !exists {
            return Err(Error::NoDevice {
                workspace: workspace_id.to_owned(),
                device: device_id.to_owned(),
            });
        }
        Ok(changed)
    }

    pub fn record_uploads(
        &self,
        workspace_id: &str,
        device_id: &str,
        changes: &[(String, String)],
        now: i64,
    ) -> Result<(), Error> {
        let (documents, hashes): (Vec<&str>, Vec<&str>) = changes
            .iter()
            .map(|(d, h)| (d.as_str(), h.as_str()))
            .unzip();
        self.with(|c| {
            c.execute(
                "INSERT INTO uploads (workspace_id, change_hash, document_id, device_id, received_at)
                 SELECT $1, h, d, $4, $5 FROM unnest($2::text[], $3::text[]) AS t(h, d)
                 ON CONFLICT (workspace_id, change_hash) DO NOTHING",
                &[&workspace_id, &hashes, &documents, &device_id, &now],
            )
        })?;
        Ok(())
    }

    pub fn uploaders(
        &self,
        workspace_id: &str,
        hashes: &[String],
    ) -> Result<Vec<(String, String)>, Error> {
        let rows = self.with(|c| {
            c.query(
                "SELECT change_hash, device_id FROM uploads
                 WHERE workspace_id = $1 AND change_hash = ANY($2)",
                &[&workspace_id, &hashes],
            )
        })?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub fn revoked(&self) -> Result<Vec<(String, String)>, Error> {
        let rows = self.with(|c| {
            c.query(
                "SELECT workspace_id, device_id FROM devices WHERE revoked_at IS NOT NULL",
                &[],
            )
        })?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub fn data_version(&self) -> Result<i64, Error> {
        let row = self.with(|c| {
            c.query_one(
                "SELECT count(*) FROM devices WHERE revoked_at IS NOT NULL",
                &[],
            )
        })?;
        Ok(row.get(0))
    }

    pub fn storage(&self, workspace_id: &str) -> PgStorage {
        PgStorage {
            pg: self.clone(),
            prefix: format!("ws/{workspace_id}"),
        }
    }

    pub fn writable(&self) -> Result<(), String> {
        // A standby (say, after a failover that left this node on the old
        // primary's replica) or a read-only default answers every read and
        // refuses every write.
        let row = self
            .with(|c| {
                c.query_one(
                    "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')",
                    &[],
                )
            })
            .map_err(|e| format!("the database does not answer: {e}"))?;
        let (in_recovery, read_only): (bool, String) = (row.get(0), row.get(1));
        if in_recovery {
            return Err("the database is a standby in recovery: it takes no writes".into());
        }
        if read_only == "on" {
            return Err("the database takes no writes (transaction_read_only is on)".into());
        }
        Ok(())
    }

    pub fn acquire_lease(&self, workspace_id: &str, node: &Node) -> Result<Lease, Error> {
        let secs = node.lease.as_secs_f64();
        self.with(|c| loop {
            // Ours already, expired, or left by an earlier process at our own
            // address (it died: we are bound to that address now).
            let taken = c.query_opt(
                "INSERT INTO leases (workspace_id, node_id, node_url, expires_at)
                 VALUES ($1, $2, $3, clock_timestamp() + make_interval(secs => $4))
                 ON CONFLICT (workspace_id) DO UPDATE
                 SET node_id = EXCLUDED.node_id, node_url = EXCLUDED.node_url, expires_at = EXCLUDED.expires_at
                 WHERE leases.node_id = EXCLUDED.node_id OR leases.node_url = EXCLUDED.node_url
                    OR leases.expires_at < clock_timestamp()
                 RETURNING node_id",
                &[&workspace_id, &node.id, &node.url, &secs],
            )?;
            if taken.is_some() {
                return Ok(Lease::Mine);
            }
            let holder = c.query_opt(
                "SELECT node_id, node_url FROM leases WHERE workspace_id = $1",
                &[&workspace_id],
            )?;
            // None: released between the two statements; take it now.
            if let Some(r) = holder {
                return Ok(Lease::Held {
                    node_id: r.get(0),
                    url: r.get(1),
                });
            }
        })
    }

    pub fn renew_leases(
        &self,
        node: &Node,
        workspace_ids: &[String],
    ) -> Result<Vec<String>, Error> {
        let secs = node.lease.as_secs_f64();
        let ids = workspace_ids.to_vec();
        let rows = self.with(|c| {
            c.query(
                "UPDATE leases SET expires_at = clock_timestamp() + make_interval(secs => $2)
                 WHERE node_id = $1 AND workspace_id = ANY($3) RETURNING workspace_id",
                &[&node.id, &secs, &ids],
            )
        })?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub fn release_lease(&self, workspace_id: &str, node: &Node) -> Result<(), Error> {
        self.with(|c| {
            c.execute(
                "DELETE FROM leases WHERE workspace_id = $1 AND node_id = $2",
                &[&workspace_id, &node.id],
            )
        })?;
        Ok(())
    }
}

/// samod's storage for one workspace in the `kv` table, keys under
/// `ws/<workspace-id>`. Writes go through the node's group commit
/// (`pg_writes.rs`). A call is tried again for a few seconds while the
/// database restarts; then its error is returned (through samod's
/// `Storage`, which cannot report one, it is logged).
#[derive(Clone)]
pub struct PgStorage {
    pg: Pg,
    prefix: String,
}

impl PgStorage {
    fn full(&self, key: &StorageKey) -> String {
        let parts: Vec<&str> = key.into_iter().map(|s| s.as_str()).collect();
        format!("{}/{}", self.prefix, parts.join("/"))
    }

    fn strip(&self, full: &str) -> Option<StorageKey> {
        let rest = full.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        StorageKey::from_parts(rest.split('/')).ok()
    }

    fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        tries: u32,
        f: impl FnMut(&mut Client) -> Result<T, postgres::Error> + Send + 'static,
    ) -> impl Future<Output = Result<T, StorageError>> + Send {
        let pg = self.pg.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                pg.inner
                    .retrying(what, tries, f)
                    .map_err(|e| StorageError::Failed {
                        what,
                        reason: e.to_string(),
                    })
            })
            .await
            .unwrap_or(Err(StorageError::Dropped))
        }
    }

    /// Every key of the workspace (relative to it) with the size of its
    /// data, without reading the data.
    pub fn sizes(&self) -> impl Future<Output = Result<Vec<(String, u64)>, StorageError>> + Send {
        let p = self.prefix.clone();
        self.run("sizes", 3, move |c| {
            let rows = c.query(
                "SELECT key, octet_length(data)::BIGINT FROM kv WHERE key >= $1 AND key < $2",
                &[&format!("{p}/"), &format!("{p}0")],
            )?;
            Ok(rows
                .iter()
                .map(|r| {
                    let k: String = r.get(0);
                    let n: i64 = r.get(1);
                    (k[p.len() + 1..].to_owned(), n.max(0) as u64)
                })
                .collect::<Vec<_>>())
        })
    }

    /// The data at `key`, `None` if nothing is stored there.
    pub fn try_load(
        &self,
        key: StorageKey,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StorageError>> + Send {
        let k = self.full(&key);
        self.run("load", 3, move |c| {
            Ok(c.query_opt("SELECT data FROM kv WHERE key = $1", &[&k])?
                .map(|r| r.get::<_, Vec<u8>>(0)))
        })
    }

    /// Every key equal to `prefix` or under it, with its data.
    pub fn try_load_range(
        &self,
        prefix: StorageKey,
    ) -> impl Future<Output = Result<HashMap<StorageKey, Vec<u8>>, StorageError>> + Send {
        let p = self.full(&prefix).trim_end_matches('/').to_owned();
        let this = self.clone();
        let fut = self.run("load_range", 3, move |c| {
            // Every key equal to `p` or below `p/` ('0' sorts right after '/').
            let rows = c.query(
                "SELECT key, data FROM kv WHERE key = $1 OR (key >= $2 AND key < $3)",
                &[&p, &format!("{p}/"), &format!("{p}0")],
            )?;
            Ok(rows
                .into_iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, Vec<u8>>(1)))
                .collect::<Vec<_>>())
        });
        async move {
            Ok(fut
                .await?
                .into_iter()
                .filter_map(|(k, v)| Some((this.strip(&k)?, v)))
                .collect())
        }
    }

    /// Stores `data` at `key` through the node's group commit; queued when
    /// called, so writes are stored in the order asked.
    pub fn try_put(
        &self,
        key: StorageKey,
        data: Vec<u8>,
    ) -> impl Future<Output = Result<(), StorageError>> + Send + 'static {
        let key = self.full(&key);
        self.pg.inner.writes.submit(PgWrite::Put { key, data })
    }

    /// Removes `key` (queued as `try_put`).
    pub fn try_delete(
        &self,
        key: StorageKey,
    ) -> impl Future<Output = Result<(), StorageError>> + Send + 'static {
        let key = self.full(&key);
        self.pg.inner.writes.submit(PgWrite::Delete { key })
    }
}
