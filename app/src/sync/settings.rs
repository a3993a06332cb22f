//! Where this device syncs (server, token, root document), kept in `meta`,
//! and what `sync init`, `sync join` and `sync status` do with it.

use super::*;

impl Service {
    pub(super) fn meta(&self, key: &str) -> Result<Option<String>> {
        self.read(|c| Ok(event_log::meta_get(c, key)?))
    }

    pub(super) fn set_meta(&self, pairs: &[(&str, &str)]) -> Result<()> {
        self.write(|w| {
            for (k, v) in pairs {
                w.conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                    params![k, v],
                )?;
            }
            Ok(())
        })
    }

    /// Sets (or clears) the flag `prefix` + id for each id: what a push
    /// could not place yet (`META_PUSH_PENDING`, `META_RUNS_PENDING`).
    pub(super) fn set_meta_flags<'a>(
        &self,
        prefix: &str,
        ids: impl IntoIterator<Item = &'a str>,
        on: bool,
    ) -> Result<()> {
        let keys: Vec<String> = ids.into_iter().map(|id| format!("{prefix}{id}")).collect();
        if keys.is_empty() {
            return Ok(());
        }
        self.write(|w| {
            let sql = if on {
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, '1')"
            } else {
                "DELETE FROM meta WHERE key = ?1"
            };
            let mut stmt = w.conn.prepare_cached(sql)?;
            for key in &keys {
                stmt.execute([key])?;
            }
            Ok(())
        })
    }

    pub(super) fn sync_settings(&self) -> Result<Option<Settings>> {
        let (Some(server), Some(token)) = (self.meta(META_SERVER)?, self.meta(META_TOKEN)?) else {
            return Ok(None);
        };
        Ok(Some(Settings {
            server,
            token,
            root: self.meta(META_ROOT)?,
            allow_insecure: self.meta(META_INSECURE)?.as_deref() == Some("1"),
            ca_pem: self.meta(META_CA)?.filter(|p| !p.is_empty()),
        }))
    }

    /// Remembers why a sync could not reach or was refused by the server,
    /// or could not store what it synced (in its copy of the documents or
    /// in the database) or process a document, for `sync status` and the app's header; other
    /// errors are the caller's to show.
    pub(super) fn note_sync_error(&self, e: &Error) {
        let message = match e {
            Error::Unavailable(message) => message.clone(),
            Error::SyncStorage(_) | Error::SyncDocument(_) => e.to_string(),
            Error::Database(inner) => format!("this device's database failed: {inner}"),
            _ => return,
        };
        self.note_sync_message(message);
    }

    fn note_sync_message(&self, message: String) {
        if let Err(e) = self.set_meta(&[(META_ERROR, &sync_error_json(message))]) {
            tracing::warn!(error = %e, "could not record the sync error");
        }
    }

    /// Says in `sync status` (as its `last_error`) which documents the
    /// sync under way goes on without.
    pub(super) fn note_passed_over(&self, ids: &[String]) {
        if let Some(message) = passed_over_sentence(ids) {
            let written = self.set_meta(&[
                (META_ERROR, &sync_error_json(message)),
                (META_PASSED_OVER, &passed_over_json(ids)),
            ]);
            if let Err(e) = written {
                tracing::warn!(error = %e, "could not record the sync error");
            }
        }
    }

    /// The documents the last sync went on without, as it recorded them.
    pub(super) fn passed_over(&self) -> Result<Vec<String>> {
        Ok(self
            .meta(META_PASSED_OVER)?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default())
    }

    /// Records a successful sync: settings, time, and the local events sent;
    /// the last error cleared, or, when it went on without some documents
    /// (`passed_over`), which, until a sync leaves none out.
    pub(super) fn mark_synced(
        &self,
        settings: &Settings,
        join: &str,
        seq: i64,
        passed_over: &[String],
    ) -> Result<()> {
        let now = chrono::Utc::now().timestamp_millis().to_string();
        let error = passed_over_sentence(passed_over)
            .map(sync_error_json)
            .unwrap_or_default();
        let root = join.rsplit('#').next().unwrap_or_default().to_owned();
        self.set_meta(&[
            (META_SERVER, &settings.server),
            (META_TOKEN, &settings.token),
            (META_ROOT, &root),
            (META_LAST, &now),
            (META_SEQ, &seq.to_string()),
            (
                META_INSECURE,
                if settings.allow_insecure { "1" } else { "0" },
            ),
            (META_CA, settings.ca_pem.as_deref().unwrap_or_default()),
            (META_ERROR, &error),
            (META_PASSED_OVER, &passed_over_json(passed_over)),
        ])
    }

    pub(super) fn max_seq(&self) -> Result<i64> {
        self.read(
            |c| Ok(c.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))?),
        )
    }
}

impl SyncService<'_> {
    /// Starts a workspace on the server from this device's workflows.
    pub fn init(&self, server: &str, token: &str) -> Result<SyncReport> {
        self.sync()
            .init_with(server, token, &SyncOptions::default())
    }

    /// `sync_init` with how to connect (`--allow-insecure`, `--ca-file`).
    pub fn init_with(&self, server: &str, token: &str, opts: &SyncOptions) -> Result<SyncReport> {
        check_transport(&check_server(server)?, opts.allow_insecure)?;
        check_options(opts)?;
        let token = check_token(token)?;
        if let Some(s) = self.sync_settings()? {
            if s.root.is_some() {
                return Err(Error::Conflict(format!(
                    "this device already syncs with {}; its join string is in `flowkeep sync status`",
                    s.server
                )));
            }
        }
        let s = Settings {
            server: server.to_owned(),
            token: token.to_owned(),
            root: None,
            allow_insecure: opts.allow_insecure,
            ca_pem: opts.ca_pem.clone(),
        };
        self.session(s)
    }

    /// Joins a workspace another device started, and receives everything.
    pub fn join(&self, join: &str, token: &str) -> Result<SyncReport> {
        self.sync().join_with(join, token, &SyncOptions::default())
    }

    /// `sync_join` with how to connect (`--allow-insecure`, `--ca-file`).
    pub fn join_with(&self, join: &str, token: &str, opts: &SyncOptions) -> Result<SyncReport> {
        check_options(opts)?;
        let bad = || {
            Error::invalid(
                "join",
                "format",
                format!("expected {JOIN_PREFIX}ws://host:port/sync#automerge:..., got \"{join}\""),
            )
        };
        let rest = join.trim().strip_prefix(JOIN_PREFIX).ok_or_else(bad)?;
        let (server, root) = rest.split_once('#').ok_or_else(bad)?;
        check_transport(&check_server(server)?, opts.allow_insecure)?;
        AutomergeUrl::from_str(root).map_err(|_| bad())?;
        let token = check_token(token)?;
        if let Some(s) = self.sync_settings()? {
            if s.root.as_deref().is_some_and(|r| r != root) {
                return Err(Error::Conflict(format!(
                    "this device already syncs another workspace with {}",
                    s.server
                )));
            }
        }
        let s = Settings {
            server: server.to_owned(),
            token: token.to_owned(),
            root: Some(root.to_owned()),
            allow_insecure: opts.allow_insecure,
            ca_pem: opts.ca_pem.clone(),
        };
        self.session(s)
    }

    /// Server, last sync, pending local changes, rejections (`sync_status`).
    pub fn status(&self, mut input: flowkeep_core::commands::GetSyncStatus) -> Result<SyncStatus> {
        input.check()?;
        let s = self.sync_settings()?;
        let synced: i64 = self
            .meta(META_SEQ)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let configured = s.as_ref().is_some_and(|s| s.root.is_some());
        // Nothing waits to be sent where nothing is sent; counting would
        // read the whole log (the open UI asks every second).
        let pending: i64 = if !configured {
            0
        } else {
            self.read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM events WHERE seq > ?1 AND origin = 'local'
                 AND kind IN ('workflow.created', 'workflow.updated', 'config.updated', 'workflow.deleted', 'workflow.restored')",
                [synced],
                |r| r.get(0),
            )?)
            })?
        };
        let (rejected, rejections) = self.read(|c| {
            // The stream's own index answers both: no scan of the log.
            let n: i64 = c.query_row(
                "SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = ?1",
                [REJECTIONS],
                |r| r.get(0),
            )?;
            let mut stmt = c.prepare(
                "SELECT kind, schema_version, payload, recorded_at FROM events
                 WHERE stream_id = ?1 ORDER BY stream_version DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(rusqlite::params![REJECTIONS, LATEST_REJECTIONS], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?;
            let mut latest = Vec::new();
            for row in rows {
                let (kind, version, payload, at) = row?;
                if let Ok(Event::RemoteRejected(p)) = Event::decode(&kind, version, &payload) {
                    latest.push(SyncRejection {
                        at,
                        what: p.what,
                        document: p.document,
                        subject: p.subject,
                        device_id: p.device_id,
                        reason: p.reason,
                    });
                }
            }
            Ok((n as u64, latest))
        })?;
        Ok(SyncStatus {
            configured,
            device_id: self.device_id().to_owned(),
            join: s
                .as_ref()
                .and_then(|s| Some(join_string(&s.server, s.root.as_ref()?))),
            token_fingerprint: s.as_ref().map(|s| fingerprint(&s.token)),
            server: s.map(|s| s.server),
            last_sync: self.meta(META_LAST)?.and_then(|v| v.parse().ok()),
            pending_local_changes: pending as u64,
            rejected,
            rejections,
            last_error: self
                .meta(META_ERROR)?
                .and_then(|e| serde_json::from_str(&e).ok()),
            server_limit: self.meta(META_SERVER_LIMIT)?.filter(|l| !l.is_empty()),
            unconfirmed: self
                .meta(META_UNCONFIRMED)?
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
        })
    }

    /// Keeps what the server said about the workspace's limits on its last
    /// connection, for `sync status` and the app's header.
    pub(super) fn note_server_limit(&self, said: Option<&str>) {
        if let Err(e) = self.set_meta(&[(META_SERVER_LIMIT, said.unwrap_or_default())]) {
            tracing::warn!(error = %e, "could not record the server's limit");
        }
    }

    /// Keeps how many documents the server had not confirmed when a sync
    /// ended, for `sync status` and the app's header.
    pub(super) fn note_unconfirmed(&self, n: usize) {
        if let Err(e) = self.set_meta(&[(META_UNCONFIRMED, &n.to_string())]) {
            tracing::warn!(error = %e, "could not record the documents not confirmed");
        }
    }

    /// Trusts a private CA (PEM) for this device's `wss://` server from now
    /// on (`sync now --ca-file`).
    pub fn set_ca(&self, ca_pem: &str) -> Result<()> {
        tls::check_ca_pem(ca_pem)?;
        self.set_meta(&[(META_CA, ca_pem)])
    }
}

/// `message` as `sync status` reads it back, stamped now.
fn sync_error_json(message: String) -> String {
    let error = SyncError {
        at: chrono::Utc::now().timestamp_millis(),
        message,
    };
    serde_json::to_string(&error).unwrap_or_default()
}

/// `ids` as `META_PASSED_OVER` keeps them: empty when there are none.
fn passed_over_json(ids: &[String]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    serde_json::to_string(ids).unwrap_or_default()
}

/// A first look at the token, for telling tokens apart.
pub(super) fn fingerprint(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

pub(super) fn join_string(server: &str, root: &str) -> String {
    format!("{JOIN_PREFIX}{server}#{root}")
}

pub(super) fn check_server(server: &str) -> Result<url::Url> {
    match url::Url::parse(server) {
        Ok(u) if matches!(u.scheme(), "ws" | "wss") && u.has_host() => Ok(u),
        _ => Err(Error::invalid(
            "server",
            "format",
            format!("\"{server}\" is not a ws:// or wss:// URL"),
        )),
    }
}

fn check_options(opts: &SyncOptions) -> Result<()> {
    if let Some(pem) = &opts.ca_pem {
        tls::check_ca_pem(pem)?;
    }
    Ok(())
}

/// The credential and every config value travel over this connection:
/// plain `ws://` is only for this machine (loopback), or where the user
/// said so; `wss://` (TLS) is for everything else.
pub(super) fn check_transport(url: &url::Url, allow_insecure: bool) -> Result<()> {
    match url.scheme() {
        "ws" if !allow_insecure && !is_loopback(url) => Err(Error::invalid(
            "server",
            "insecure",
            format!(
                "ws:// to {} is insecure: the credential and every config value would cross the network \
                 in clear text. Use wss:// (TLS), a server on this machine, or pass --allow-insecure on a \
                 network you control",
                url.host_str().unwrap_or("?")
            ),
        )),
        _ => Ok(()),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

pub(super) fn check_token(token: &str) -> Result<&str> {
    let token = token.trim();
    if token.is_empty() {
        return Err(Error::invalid(
            "token",
            "required",
            "the workspace token is required",
        ));
    }
    Ok(token)
}

/// The ids flagged under `prefix` (`Service::set_meta_flags`).
pub(super) fn meta_flags(c: &rusqlite::Connection, prefix: &str) -> Result<Vec<String>> {
    let keys = c
        .prepare("SELECT key FROM meta WHERE key >= ?1 AND key < ?1 || '~'")?
        .query_map([prefix], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(keys
        .into_iter()
        .map(|k| k[prefix.len()..].to_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(server: &str, allow: bool) -> std::result::Result<(), String> {
        check_transport(&check_server(server).unwrap(), allow).map_err(|e| e.to_string())
    }

    #[test]
    fn plain_ws_is_for_this_machine_unless_allowed() {
        for local in [
            "ws://127.0.0.1:7780/sync",
            "ws://127.8.9.1/sync",
            "ws://[::1]:7780/sync",
            "ws://localhost:7780/sync",
        ] {
            assert_eq!(check(local, false), Ok(()), "{local}");
        }
        for remote in [
            "ws://192.0.2.1:7780/sync",
            "ws://sync.example.com/sync",
            "ws://[2001:db8::1]/sync",
            "ws://localhost.example.com/sync",
        ] {
            let e = check(remote, false).unwrap_err();
            assert!(
                e.contains("insecure") && e.contains("--allow-insecure"),
                "{e}"
            );
            assert_eq!(check(remote, true), Ok(()), "{remote}");
        }
    }

    #[test]
    fn wss_goes_anywhere() {
        assert_eq!(check("wss://sync.example.com/sync", false), Ok(()));
        assert_eq!(check("wss://127.0.0.1:7780/sync", false), Ok(()));
    }
}
