//! Connections: one writer (every write is `BEGIN IMMEDIATE`) and a small
//! pool of read-only readers, all in WAL mode.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::checkpointer::{Checkpointer, BACKSTOP_PAGES};
use crate::{migrate, private, Error, Result};

/// How hard a commit tries to survive power loss. `Normal` (WAL +
/// synchronous=NORMAL) never loses a committed change to a process crash;
/// `Full` also survives an OS crash or power cut, at about a quarter of the
/// commit rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    #[default]
    Normal,
    Full,
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Who is making changes; recorded on every event.
    pub actor: String,
    pub durability: Durability,
    /// Most read connections kept open at once.
    pub max_readers: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            actor: "local".to_owned(),
            durability: Durability::Normal,
            max_readers: 4,
        }
    }
}

pub struct Db {
    writer: Mutex<Connection>,
    /// `None` for an in-memory database, whose readers use the writer.
    readers: Option<Readers>,
    checkpointer: Option<Checkpointer>,
}

struct Readers {
    path: std::path::PathBuf,
    idle: Mutex<Vec<Connection>>,
    max: usize,
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl Db {
    pub fn open(path: &Path, opts: &StoreOptions) -> Result<Db> {
        make_private(path)?;
        let mut writer = Connection::open(path)?;
        configure_writer(&writer, opts.durability)?;
        migrate::migrate(&mut writer)?;
        writer.pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES)?;
        Ok(Db {
            writer: Mutex::new(writer),
            readers: Some(Readers {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
                max: opts.max_readers.max(1),
            }),
            checkpointer: Some(Checkpointer::start(path)),
        })
    }

    pub fn open_in_memory() -> Result<Db> {
        let mut writer = Connection::open_in_memory()?;
        configure_writer(&writer, Durability::Normal)?;
        migrate::migrate(&mut writer)?;
        Ok(Db {
            writer: Mutex::new(writer),
            readers: None,
            checkpointer: None,
        })
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction: all of it commits, or
    /// (on any error) none of it.
    pub fn write<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::from)?;
        let out = f(&tx)?;
        tx.commit().map_err(Error::from)?;
        drop(conn);
        if let Some(c) = &self.checkpointer {
            c.notify();
        }
        Ok(out)
    }

    /// Copies the WAL back into the database file now, so that the next
    /// write starts it again from its beginning; returns when done (at once
    /// in memory). A long run of large writes (a prune) calls this between
    /// its transactions: the checkpoint's sync of the database file then
    /// never overlaps one of its commits, and the WAL never grows to the
    /// backstop, where a commit checkpoints it (hundreds of ms, holding the
    /// write lock).
    pub fn checkpoint_now(&self) {
        let Some(c) = &self.checkpointer else {
            return;
        };
        // The bulk of it, holding no lock: other writers go on appending.
        c.checkpoint_now();
        // What they appended meanwhile (little: quick to copy and sync),
        // holding the write lock so that nothing is appended after it. The
        // WAL starts again only when a write begins with every frame copied
        // back; with writes every few milliseconds that moment rarely comes
        // by itself. Busy (a checkpoint running elsewhere) is harmless.
        let conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }

    pub fn read<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let Some(readers) = &self.readers else {
            let conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            return f(&conn);
        };
        let conn = readers.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => open_reader(&readers.path)?,
        };
        let out = f(&conn);
        let mut idle = readers.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < readers.max {
            idle.push(conn);
        }
        out
    }
}

/// The data dir 0700; the database file 0600, created here before SQLite
/// opens it because SQLite gives `-wal` and `-shm` the database file's mode;
/// existing files tightened, so an older install becomes private too.
fn make_private(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        private::create_dir(dir)?;
    }
    match private::create_new(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e.into()),
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        private::tighten(Path::new(&p))?;
    }
    Ok(())
}

fn configure_writer(conn: &Connection, durability: Durability) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let sync = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    tune_cache(conn, WRITER_CACHE_KIB)?;
    Ok(())
}

/// SQLite's default page cache is 2 MiB; with a million executions every
/// index insert then re-reads pages through the kernel.
const WRITER_CACHE_KIB: i64 = 64 * 1024;
const READER_CACHE_KIB: i64 = 16 * 1024;
const MMAP_BYTES: i64 = 1 << 30;

fn tune_cache(conn: &Connection, cache_kib: i64) -> Result<()> {
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    tune_cache(&conn, READER_CACHE_KIB)?;
    Ok(conn)
}
