//! Who brought a change, as the server saw it. A change's commit message
//! names the device that made it, a claim any device of the workspace can
//! write; the server records which authenticated device uploaded each
//! change, and `/uploads` answers for the changes this device merges. A
//! merge records that device beside the claimed one (`RemoteAuthor::
//! uploaded_by`).
//!
//! Asked once per round for every change the round's merges take, and by a
//! watch once per document its push has to merge first (until the server
//! fails to answer in that push). When the server does not answer (an
//! older server, out of reach), the merge goes on with the claim alone:
//! attestation never holds up sync.

use std::collections::HashMap;

use super::*;

/// Most change hashes asked in one request (the server's limit).
const MAX_ASKED: usize = 100_000;

/// How long a round waits for the answer before merging without it.
const ASK_TIMEOUT: Duration = Duration::from_secs(3);

/// The uploader of each change the server answered for.
#[derive(Debug, Default)]
pub(super) struct Uploads {
    found: HashMap<ChangeHash, String>,
    /// The server did not answer (all or part): not worth asking again at
    /// once.
    unanswered: bool,
}

impl Uploads {
    pub(super) fn of(&self, change: &ChangeHash) -> Option<&str> {
        self.found.get(change).map(String::as_str)
    }

    pub(super) fn unanswered(&self) -> bool {
        self.unanswered
    }

    /// The server's answer: only changes that were asked, only device ids
    /// of a plain shape (they are shown and stored here).
    fn read(reply: &Value, asked: &HashSet<ChangeHash>) -> Uploads {
        let mut out = HashMap::new();
        if let Some(map) = reply.get("uploads").and_then(Value::as_object) {
            for (hash, device) in map {
                let (Ok(hash), Some(device)) = (ChangeHash::from_str(hash), device.as_str()) else {
                    continue;
                };
                if asked.contains(&hash) && is_device_id(device) {
                    out.insert(hash, device.to_owned());
                }
            }
        }
        Uploads {
            found: out,
            unanswered: false,
        }
    }
}

/// A device id as the server hands them out: a flowkeep device's UUID, or
/// `device-<hex>` for one added on the server.
fn is_device_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The changes in `d` after `since`, to ask about: all of them, since a
/// commit message claiming this device is a claim like any other (a change
/// that says it was made here but was uploaded by another device is one to
/// know about).
pub(super) fn to_ask(d: &Automerge, since: &[ChangeHash]) -> Vec<ChangeHash> {
    d.get_changes(since).iter().map(|c| c.hash()).collect()
}

impl SyncService<'_> {
    /// The uploader of each of `changes`, as far as the server knows;
    /// empty (and a warning in the log) when it does not answer.
    pub(super) async fn uploads(&self, s: &Settings, changes: Vec<ChangeHash>) -> Uploads {
        if changes.is_empty() {
            return Uploads::default();
        }
        let asked: HashSet<ChangeHash> = changes.into_iter().collect();
        let mut found = HashMap::new();
        let mut unanswered = false;
        let all: Vec<&ChangeHash> = asked.iter().collect();
        for part in all.chunks(MAX_ASKED) {
            let request = serde_json::json!({
                "changes": part.iter().map(|h| h.to_string()).collect::<Vec<_>>()
            });
            let reply = tokio::time::timeout(
                ASK_TIMEOUT,
                enrol::ask(s, "uploads", Some(request.to_string())),
            )
            .await;
            match reply {
                Ok(Ok(reply)) if reply.get("error").is_none() => {
                    found.extend(Uploads::read(&reply, &asked).found);
                }
                Ok(Ok(reply)) => {
                    tracing::warn!(error = %reply["error"], "the sync server did not say who uploaded changes");
                    unanswered = true;
                    break;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "the sync server did not say who uploaded changes");
                    unanswered = true;
                    break;
                }
                Err(_) => {
                    tracing::warn!("the sync server did not say in time who uploaded changes");
                    unanswered = true;
                    break;
                }
            }
        }
        Uploads { found, unanswered }
    }

    /// `uploads` for the changes of every document in `docs` since its
    /// heads last merged here.
    pub(super) async fn uploads_since(
        &self,
        s: &Settings,
        docs: &[(&DocHandle, Vec<ChangeHash>)],
    ) -> Uploads {
        let mut changes: Vec<ChangeHash> = Vec::new();
        for (h, since) in docs {
            // A document the engine failed on is nobody's to ask about: its
            // merge, next, is passed over (`SyncRepo::pass_over`).
            if let Ok(c) = with_doc(h, |d| to_ask(d, since)) {
                changes.extend(c);
            }
        }
        self.uploads(s, changes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;

    fn doc() -> (Automerge, ChangeHash, ChangeHash) {
        let mut d = Automerge::new();
        let mut hashes = Vec::new();
        for (msg, v) in [
            ("flowkeep:me:alice: name", "a"),
            ("flowkeep:other:bob: name", "b"),
        ] {
            d.transact_with::<_, _, automerge::AutomergeError, _>(
                |_| CommitOptions::default().with_message(msg),
                |tx| tx.put(automerge::ROOT, "name", v),
            )
            .unwrap();
            hashes.push(d.get_heads()[0]);
        }
        (d, hashes[0], hashes[1])
    }

    #[test]
    fn every_change_after_since_is_asked_about_whatever_its_message_claims() {
        let (d, mine, theirs) = doc();
        assert_eq!(to_ask(&d, &[]), vec![mine, theirs]);
        assert_eq!(to_ask(&d, &[theirs]), Vec::<ChangeHash>::new());
        assert_eq!(to_ask(&d, &[mine]), vec![theirs]);
    }

    #[test]
    fn an_answer_is_kept_only_for_what_was_asked_and_plain_device_ids() {
        let (_, mine, theirs) = doc();
        let asked: HashSet<ChangeHash> = [theirs].into_iter().collect();
        let reply = serde_json::json!({"uploads": {
            theirs.to_string(): "device-0a1b",
            mine.to_string(): "device-ffff",
            "not a hash": "device-1",
        }});
        let u = Uploads::read(&reply, &asked);
        assert_eq!(u.of(&theirs), Some("device-0a1b"));
        assert_eq!(u.of(&mine), None, "not asked");

        let reply = serde_json::json!({"uploads": {theirs.to_string(): "../etc\u{1b}[31m"}});
        assert_eq!(Uploads::read(&reply, &asked).of(&theirs), None);
        let reply = serde_json::json!({"uploads": {theirs.to_string(): 5}});
        assert_eq!(Uploads::read(&reply, &asked).of(&theirs), None);
        assert_eq!(
            Uploads::read(&serde_json::json!([]), &asked).of(&theirs),
            None
        );
    }
}
