//! Automerge heads and authors: small helpers every step uses.

use super::*;

/// The document as it was at `heads` (what this device last merged).
pub(super) fn base_at(d: &Automerge, heads: &[ChangeHash]) -> Option<doc::DocState> {
    if heads.is_empty() {
        return None;
    }
    d.fork_at(heads).ok().and_then(|f| doc::read(&f).ok())
}

pub(super) fn sorted_heads(d: &Automerge) -> Vec<String> {
    sorted_hex(&d.get_heads())
}

pub(super) fn sorted_hex(heads: &[ChangeHash]) -> Vec<String> {
    let mut v: Vec<String> = heads.iter().map(|c| c.to_string()).collect();
    v.sort();
    v
}

pub(super) fn heads_of(h: &DocHandle) -> Vec<String> {
    let mut heads: Vec<String> = h
        .with_document(|d| d.get_heads())
        .iter()
        .map(|c| c.to_string())
        .collect();
    heads.sort();
    heads
}

pub(super) fn parse_heads(heads: &[String]) -> Vec<ChangeHash> {
    heads
        .iter()
        .filter_map(|h| ChangeHash::from_str(h).ok())
        .collect()
}

/// Authors of the changes after `since`, from the commit messages
/// flowkeep writes (`flowkeep:<device>:<actor>: ...`), this device excluded.
/// A message is a claim anyone with the token can write: a device id that
/// is not a UUID is recorded as `unknown`, long names are cut. Beside it,
/// the device the server saw upload the change, from `uploads`.
pub(super) fn authors_since(
    d: &Automerge,
    since: &[ChangeHash],
    own_device: &str,
    uploads: &Uploads,
) -> Vec<RemoteAuthor> {
    let mut out: Vec<RemoteAuthor> = Vec::new();
    for change in d.get_changes(since) {
        let author = match change.message().and_then(|m| m.strip_prefix("flowkeep:")) {
            Some(rest) => {
                let mut parts = rest.splitn(3, ':');
                let device = parts.next().unwrap_or_default();
                let actor = parts.next().unwrap_or_default();
                let (device_id, actor) = remote::claimed_author(device, actor);
                RemoteAuthor {
                    actor,
                    device_id: device_id.unwrap_or_else(|| "unknown".into()),
                    uploaded_by: uploads.of(&change.hash()).map(str::to_owned),
                }
            }
            // A change made by another automerge-repo client.
            None => RemoteAuthor {
                actor: format!("automerge:{}", change.actor_id()),
                device_id: "external".into(),
                uploaded_by: uploads.of(&change.hash()).map(str::to_owned),
            },
        };
        if author.device_id != own_device && !out.contains(&author) {
            out.push(author);
            if out.len() == MAX_AUTHORS {
                break;
            }
        }
    }
    out
}

/// Whether every change after `since` is one this device pushed (noted in
/// `sync_pushed` before it could reach the disk): a push whose heads a
/// crash kept from being recorded (they are recorded once its writes are on
/// disk). The projection already holds what they say; merged, they would
/// read as another device's. Known by hash, not by the commit message,
/// which another device could write.
pub(super) fn only_pushed_since(
    d: &Automerge,
    since: &[ChangeHash],
    pushed: &HashSet<ChangeHash>,
) -> bool {
    let after = d.get_changes(since);
    !after.is_empty() && after.iter().all(|c| pushed.contains(&c.hash()))
}

/// A short, fixed-size name for remote text used as a key.
pub(super) fn short_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
