//! A device's credential: the workspace token is only an enrolment secret,
//! traded once at `/enrol` for a credential of this device id, which is all
//! this device keeps. The server can then list devices and revoke one
//! without touching the others. `/devices` lists them for a device; `ask`
//! calls any such endpoint (`/uploads` too) with the credential.

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::dialer::{self, Failure};
use super::*;

/// Workspace tokens start with this.
const WORKSPACE_TOKEN_PREFIX: &str = "fks_";
/// Device credentials start with this.
const DEVICE_CREDENTIAL_PREFIX: &str = "fkd_";

/// A new device credential: the prefix and 32 random bytes in hex.
fn new_credential() -> Result<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b)
        .map_err(|e| Error::Unavailable(format!("no randomness for a device credential: {e}")))?;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("{DEVICE_CREDENTIAL_PREFIX}{hex}"))
}

/// A device of the workspace, as the server lists it.
#[derive(Debug, Clone, serde::Deserialize, Serialize, ts_rs::TS)]
pub struct SyncDevice {
    pub device_id: String,
    pub name: String,
    /// Unix ms.
    pub first_seen: i64,
    pub last_seen: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, serde::Deserialize, Serialize, ts_rs::TS)]
pub struct SyncDevices {
    pub workspace: String,
    /// This device's id, to find it in the list.
    pub this_device: String,
    pub devices: Vec<SyncDevice>,
}

impl SyncService<'_> {
    /// `settings` holding a device credential: when it still holds the
    /// workspace token (a first sync, or a device set up before
    /// credentials), enrols this device and keeps only the credential.
    pub(super) async fn enrolled(&self, mut s: Settings) -> Result<Settings> {
        if !s.token.starts_with(WORKSPACE_TOKEN_PREFIX) {
            return Ok(s);
        }
        let mut url = endpoint(&s.server, "enrol")?;
        url.query_pairs_mut()
            .append_pair("device", self.device_id())
            .append_pair("name", &device_name())
            .append_pair("proof", "1");
        // This device chooses its credential (kept before it asks: a retry
        // after a crash is the same enrolment) and shows the one it had, if
        // any, which is what lets it replace its own: whoever else holds the
        // workspace token cannot take this device's id over.
        let chosen = match self.meta(META_ENROLLING)?.filter(|c| !c.is_empty()) {
            Some(c) => c,
            None => {
                let c = new_credential()?;
                self.set_meta(&[(META_ENROLLING, &c)])?;
                c
            }
        };
        let previous = self
            .meta(META_TOKEN)?
            .filter(|t| t.starts_with(DEVICE_CREDENTIAL_PREFIX));
        let proof = serde_json::json!({"credential": chosen, "previous": previous});
        let reply = exchange(&url, &s.token, &s, Some(proof.to_string())).await?;
        if let Some(why) = reply.get("error").and_then(|e| e.as_str()) {
            return Err(Error::Unavailable(format!(
                "the sync server did not enrol this device: {}",
                super::dialer::printable(why)
            )));
        }
        let credential = reply
            .get("credential")
            .and_then(|c| c.as_str())
            .filter(|c| *c == chosen)
            .ok_or_else(|| {
                Error::Unavailable("the sync server sent no device credential".into())
            })?;
        s.token = credential.to_owned();
        // Kept at once: a session that fails later must not enrol again.
        self.set_meta(&[(META_TOKEN, &s.token), (META_ENROLLING, "")])?;
        tracing::info!(device = self.device_id(), "enrolled with the sync server");
        Ok(s)
    }

    /// The workspace's devices, as the server lists them.
    pub fn devices(&self) -> Result<SyncDevices> {
        let Some(s) = self.sync_settings()? else {
            return Err(not_configured());
        };
        let rt = runtime()?;
        let result = rt.block_on(async {
            let s = self.enrolled(s).await?;
            let reply = ask(&s, "devices", None).await?;
            let workspace = reply["workspace"].as_str().unwrap_or_default().to_owned();
            let devices: Vec<SyncDevice> = serde_json::from_value(reply["devices"].clone())
                .map_err(|e| {
                    Error::Unavailable(format!("the sync server's device list does not read: {e}"))
                })?;
            Ok(SyncDevices {
                workspace,
                this_device: self.device_id().to_owned(),
                devices,
            })
        });
        rt.shutdown_timeout(Duration::from_secs(1));
        result
    }
}

pub(super) fn not_configured() -> Error {
    Error::invalid(
        "sync",
        "not_configured",
        "this device does not sync yet: `flowkeep sync init --server URL --token T` or `flowkeep sync join JOIN --token T`",
    )
}

/// `name` beside the sync URL: `wss://h/x/sync` → `wss://h/x/enrol`.
fn endpoint(server: &str, name: &str) -> Result<url::Url> {
    let sync = check_server(server)?;
    sync.join(name)
        .map_err(|e| Error::invalid("server", "format", e.to_string()))
}

/// This machine's name, to tell devices apart in lists.
fn device_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .map(|h| {
            h.chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect::<String>()
        })
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| "flowkeep device".to_owned())
}

/// Asks the server's endpoint `name` (beside the sync URL) with this
/// device's credential: `request` sent as one text message, if any, and the
/// one JSON message it answers with.
pub(super) async fn ask(s: &Settings, name: &str, request: Option<String>) -> Result<Value> {
    let url = endpoint(&s.server, name)?;
    exchange(&url, &s.token, s, request).await
}

/// Connects, sends `request` if any, reads the one JSON message the server
/// answers with.
async fn exchange(
    url: &url::Url,
    token: &str,
    s: &Settings,
    request: Option<String>,
) -> Result<Value> {
    check_transport(url, s.allow_insecure)?;
    let tls = s.tls()?;
    let call = async {
        let mut ws = match dialer::open(url, token, tls).await {
            Ok(ws) => ws,
            Err(Failure::Refused(r)) => return Err(Error::Unavailable(r.to_string())),
            Err(Failure::Unavailable(u)) => {
                return Err(Error::Unavailable(dialer::not_in(
                    &s.server,
                    Some(u.to_string()),
                )))
            }
            Err(Failure::Transient(e)) => {
                return Err(Error::Unavailable(format!(
                    "cannot reach the sync server at {}: {e}",
                    s.server
                )))
            }
        };
        if let Some(request) = request {
            ws.send(Message::Text(request.into()))
                .await
                .map_err(|e| Error::Unavailable(format!("the sync server went away: {e}")))?;
        }
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Text(t)) => {
                    return serde_json::from_str(t.as_str()).map_err(|e| {
                        Error::Unavailable(format!("the sync server's answer does not read: {e}"))
                    })
                }
                Ok(_) => continue,
                Err(e) => {
                    return Err(Error::Unavailable(format!(
                        "the sync server went away: {e}"
                    )))
                }
            }
        }
        Err(Error::Unavailable(
            "the sync server closed without answering".into(),
        ))
    };
    tokio::time::timeout(CONNECT_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            Err(Error::Unavailable(format!(
                "the sync server at {} did not answer in time",
                s.server
            )))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_sit_beside_the_sync_url() {
        assert_eq!(
            endpoint("wss://h:1/sync", "enrol").unwrap().as_str(),
            "wss://h:1/enrol"
        );
        assert_eq!(
            endpoint("wss://h/team/sync", "devices").unwrap().as_str(),
            "wss://h/team/devices"
        );
    }
}
