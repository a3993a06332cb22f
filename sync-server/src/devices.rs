//! Devices' open connections, so a revoked device is shut out at once: each
//! connection's inbound stream ends when its device is revoked, and samod
//! then drops the connection. `device revoke` runs as another process: it
//! tells the running server through a Unix socket in the data dir (private
//! to the user, like the database) and returns once the server closed the
//! device's connections. As a backstop the server also looks every moment
//! whether another process wrote to the database (SQLite's `data_version`)
//! and then reads the revoked devices.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::Db;

/// `(workspace id, device id)`.
type Key = (String, String);

#[derive(Default)]
pub struct Connected {
    devices: Mutex<HashMap<Key, watch::Sender<bool>>>,
}

impl Connected {
    pub fn new() -> Arc<Connected> {
        Arc::new(Connected::default())
    }

    /// A receiver that turns `true` when the device is revoked.
    pub fn register(&self, workspace_id: &str, device_id: &str) -> watch::Receiver<bool> {
        let mut devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        devices
            .entry((workspace_id.to_owned(), device_id.to_owned()))
            .or_insert_with(|| watch::channel(false).0)
            .subscribe()
    }

    /// Ends the connections of these devices; returns how many devices had
    /// any open.
    pub fn revoke(&self, revoked: &[(String, String)]) -> usize {
        let mut devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        let mut n = 0;
        for key in revoked {
            if let Some(tx) = devices.remove(key) {
                if tx.receiver_count() > 0 {
                    n += 1;
                    tracing::info!(
                        workspace = key.0,
                        device = key.1,
                        "revoked device disconnected"
                    );
                }
                let _ = tx.send(true);
            }
        }
        // Forget devices whose connections are all gone.
        devices.retain(|_, tx| tx.receiver_count() > 0);
        n
    }

    /// Every `every`, when another process wrote to the database, ends the
    /// connections of revoked devices. Runs until the task is aborted.
    pub async fn watch_revocations(self: Arc<Self>, db: Arc<Db>, every: Duration) {
        let mut seen = None;
        loop {
            let db2 = db.clone();
            let check = tokio::task::spawn_blocking(move || {
                let version = db2.data_version()?;
                let revoked = match seen {
                    Some(v) if v == version => None,
                    _ => Some(db2.revoked()?),
                };
                Ok::<_, crate::Error>((version, revoked))
            })
            .await;
            if let Ok(Ok((version, revoked))) = check {
                seen = Some(version);
                if let Some(revoked) = revoked {
                    self.revoke(&revoked);
                }
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// The admin socket's name in the server's data dir.
pub const ADMIN_SOCKET: &str = "admin.sock";
const REVOKED: &str = "revoked\n";

impl Connected {
    /// Listens on `path` for `device revoke` telling that devices were
    /// revoked: reads them from the database and ends their connections
    /// before answering. Runs until the task is aborted.
    pub async fn serve_admin(
        self: Arc<Self>,
        db: Arc<Db>,
        path: std::path::PathBuf,
    ) -> std::io::Result<()> {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        // A socket left by a server that died: nobody answers on it.
        let _ = std::fs::remove_file(&path);
        let listener = tokio::net::UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        loop {
            let (stream, _) = listener.accept().await?;
            let (this, db) = (self.clone(), db.clone());
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                let mut read = BufReader::new(read);
                if read.read_line(&mut line).await.is_err() || line != REVOKED {
                    let _ = write.write_all(b"error unknown request\n").await;
                    return;
                }
                let closed = match tokio::task::spawn_blocking(move || db.revoked()).await {
                    Ok(Ok(revoked)) => this.revoke(&revoked),
                    _ => {
                        let _ = write.write_all(b"error storage unavailable\n").await;
                        return;
                    }
                };
                let _ = write.write_all(format!("ok {closed}\n").as_bytes()).await;
            });
        }
    }
}

/// Tells a server running on `data_dir` that devices were revoked; returns
/// how many devices had connections it closed, or `None` when no server
/// runs there.
pub fn notify_revoked(data_dir: &std::path::Path) -> Option<usize> {
    use std::io::{BufRead, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(data_dir.join(ADMIN_SOCKET)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    stream.write_all(REVOKED.as_bytes()).ok()?;
    let mut line = String::new();
    std::io::BufReader::new(stream).read_line(&mut line).ok()?;
    line.trim().strip_prefix("ok ")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoking_one_device_ends_only_its_connections() {
        let c = Connected::new();
        let a1 = c.register("w", "a");
        let a2 = c.register("w", "a");
        let b = c.register("w", "b");
        let other_ws = c.register("v", "a");
        assert_eq!(c.revoke(&[("w".into(), "a".into())]), 1);
        assert!(*a1.borrow() && *a2.borrow());
        assert!(!*b.borrow() && !*other_ws.borrow());
        // Unknown or already revoked: nothing to end.
        assert_eq!(
            c.revoke(&[("w".into(), "a".into()), ("w".into(), "zz".into())]),
            0
        );
    }
}
