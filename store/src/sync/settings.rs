//! Where this device syncs (server, token, root document), kept in `meta`,
//! and what `sync init`, `sync join` and `sync status` do with it.

use super::*;

impl Service {
    pub(super) fn meta(&self, key: &str) -> Result<Option<String>> {
        self.read(|c| event_log::meta_get(c, key))
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

    pub(super) fn settings(&self) -> Result<Option<Settings>> {
        let (Some(server), Some(token)) = (self.meta(META_SERVER)?, self.meta(META_TOKEN)?) else {
            return Ok(None);
        };
        Ok(Some(Settings {
            server,
            token,
            root: self.meta(META_ROOT)?,
        }))
    }

    /// Starts a workspace on the server from this device's workflows.
    pub fn sync_init(&self, server: &str, token: &str) -> Result<SyncReport> {
        check_server(server)?;
        let token = check_token(token)?;
        if let Some(s) = self.settings()? {
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
        };
        self.session(s)
    }

    /// Joins a workspace another device started, and receives everything.
    pub fn sync_join(&self, join: &str, token: &str) -> Result<SyncReport> {
        let bad = || {
            Error::invalid(
                "join",
                "format",
                format!("expected {JOIN_PREFIX}ws://host:port/sync#automerge:..., got \"{join}\""),
            )
        };
        let rest = join.trim().strip_prefix(JOIN_PREFIX).ok_or_else(bad)?;
        let (server, root) = rest.split_once('#').ok_or_else(bad)?;
        check_server(server)?;
        AutomergeUrl::from_str(root).map_err(|_| bad())?;
        let token = check_token(token)?;
        if let Some(s) = self.settings()? {
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
        };
        self.session(s)
    }

    /// Server, last sync, pending local changes, rejections (`sync_status`).
    pub fn sync_status(
        &self,
        mut input: flowkeep_core::commands::GetSyncStatus,
    ) -> Result<SyncStatus> {
        input.check()?;
        let s = self.settings()?;
        let synced: i64 = self
            .meta(META_SEQ)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let pending: i64 = self.read(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM events WHERE seq > ?1 AND origin = 'local'
                 AND kind IN ('workflow.created', 'workflow.updated', 'config.updated', 'workflow.deleted')",
                [synced],
                |r| r.get(0),
            )?)
        })?;
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
            configured: s.as_ref().is_some_and(|s| s.root.is_some()),
            join: s
                .as_ref()
                .and_then(|s| Some(join_string(&s.server, s.root.as_ref()?))),
            token_fingerprint: s.as_ref().map(|s| fingerprint(&s.token)),
            server: s.map(|s| s.server),
            last_sync: self.meta(META_LAST)?.and_then(|v| v.parse().ok()),
            pending_local_changes: pending as u64,
            rejected,
            rejections,
        })
    }

    /// Records a successful sync: settings, time, and the local events sent.
    pub(super) fn mark_synced(&self, settings: &Settings, join: &str, seq: i64) -> Result<()> {
        let now = chrono::Utc::now().timestamp_millis().to_string();
        let root = join.rsplit('#').next().unwrap_or_default().to_owned();
        self.set_meta(&[
            (META_SERVER, &settings.server),
            (META_TOKEN, &settings.token),
            (META_ROOT, &root),
            (META_LAST, &now),
            (META_SEQ, &seq.to_string()),
        ])
    }

    pub(super) fn max_seq(&self) -> Result<i64> {
        self.read(
            |c| Ok(c.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))?),
        )
    }
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
