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

pub(super) fn heads_of(h: &DocHandle) -> Result<Vec<String>> {
    with_doc(h, |d| sorted_heads(d))
}

pub(super) fn parse_heads(heads: &[String]) -> Vec<ChangeHash> {
    heads
        .iter()
        .filter_map(|h| ChangeHash::from_str(h).ok())
        .collect()
}

/// Authors of the changes after `since`, from the commit messages
/// flowkeep writes (`flowkeep:<device>:<actor>: ...`), this device excluded
/// (unless another device uploaded a change claiming it).
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
        // A change claiming this device is left out, unless the server saw
        // another device upload it: then the claim is false, and shown.
        let uploaded_elsewhere = author
            .uploaded_by
            .as_deref()
            .is_some_and(|by| by != own_device);
        if (author.device_id != own_device || uploaded_elsewhere) && !out.contains(&author) {
            out.push(author);
            if out.len() == MAX_AUTHORS {
                break;
            }
        }
    }
    out
}

/// `since` carried past the changes this device pushed on top of it (noted
/// in `sync_pushed` before they could reach the disk): a push whose heads a
/// crash kept from being recorded, or one a crash kept off this disk after
/// it was sent, now back from the server. The projection already holds what
/// they say; merged, they would read as another device's. Known by hash,
/// not by the commit message, which another device could write. Returns the
/// heads to merge from, and whether nothing but such pushes came after
/// `since`.
pub(super) fn past_own_pushes(
    d: &Automerge,
    since: &[ChangeHash],
    pushed: &HashSet<ChangeHash>,
) -> (Vec<ChangeHash>, bool) {
    if since.is_empty() || pushed.is_empty() {
        return (since.to_vec(), false);
    }
    let after = d.get_changes(since);
    let later: HashSet<ChangeHash> = after.iter().map(|c| c.hash()).collect();
    // A push counts if all it depends on is at `since` or another such push
    // (one written over changes not merged yet does not).
    let mut own: HashSet<ChangeHash> = HashSet::new();
    loop {
        let grown = own.len();
        for c in &after {
            let on_top = c
                .deps()
                .iter()
                .all(|h| !later.contains(h) || own.contains(h));
            if pushed.contains(&c.hash()) && on_top {
                own.insert(c.hash());
            }
        }
        if own.len() == grown {
            break;
        }
    }
    let covered: HashSet<&ChangeHash> = after
        .iter()
        .filter(|c| own.contains(&c.hash()))
        .flat_map(|c| c.deps())
        .collect();
    let heads = since
        .iter()
        .chain(&own)
        .filter(|h| !covered.contains(h))
        .copied()
        .collect();
    (heads, !after.is_empty() && own.len() == after.len())
}

/// Pushes noted here that this copy of the document lacks: sent by a
/// process whose write of them a crash (or a full disk) kept off this disk.
/// The server may have them.
pub(super) fn missing_pushes(d: &Automerge, pushed: &HashSet<ChangeHash>) -> Vec<ChangeHash> {
    pushed
        .iter()
        .filter(|h| d.get_change_meta_by_hash(h).is_none())
        .copied()
        .collect()
}

/// Pushes noted here that `heads` cover: nothing more to know of them.
pub(super) fn covered_pushes(
    d: &Automerge,
    heads: &[ChangeHash],
    pushed: &HashSet<ChangeHash>,
) -> Vec<ChangeHash> {
    if pushed.is_empty() {
        return Vec::new();
    }
    let later: HashSet<ChangeHash> = d.get_changes(heads).iter().map(|c| c.hash()).collect();
    pushed
        .iter()
        .filter(|h| !later.contains(*h) && d.get_change_meta_by_hash(h).is_some())
        .copied()
        .collect()
}

/// Makes a change on a copy of `d` (same actor where it can) as it is, or as it was at
/// `at` (the change then concurrent with what came after), hands its hash
/// to `note`, and only then brings it into `d`. samod sends and stores what
/// `d` holds once the caller lets go of it, so every change of this
/// device's there is one it can know as its own (`past_own_pushes`,
/// `missing_pushes`), even one a crash keeps off this disk after it was
/// sent; if `note` fails (a full disk), nothing was made.
pub(super) fn commit_noted(
    d: &mut Automerge,
    at: Option<&[ChangeHash]>,
    opts: CommitOptions,
    change: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> std::result::Result<(), String>,
    note: impl FnOnce(&ChangeHash) -> Result<()>,
) -> Result<Option<ChangeHash>> {
    let actor = d.get_actor().clone();
    let mut copy = match at {
        None => d.fork(),
        Some(heads) => d
            .fork_at(heads)
            .map_err(|e| Error::Corrupt(e.to_string()))?,
    };
    // A copy that lacks a change of this actor's would give the new one a
    // sequence number already taken, which `d` refuses: it keeps the fresh
    // actor `fork_at` gave it.
    let lacks_own =
        at.is_some_and(|heads| d.get_changes_meta(heads).iter().any(|c| *c.actor == actor));
    if !lacks_own {
        copy.set_actor(actor);
    }
    let done = copy
        .transact_with(|_| opts, change)
        .map_err(|f| Error::Corrupt(f.error))?;
    let Some(hash) = done.hash else {
        return Ok(None);
    };
    note(&hash)?;
    d.merge(&mut copy)
        .map_err(|e| Error::Corrupt(e.to_string()))?;
    Ok(Some(hash))
}

/// A short, fixed-size name for remote text used as a key.
pub(super) fn short_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::{transaction::Transactable, ROOT};

    fn put(d: &mut Automerge, key: &str, value: i64) -> ChangeHash {
        let mut tx = d.transaction();
        tx.put(ROOT, key, value).unwrap();
        tx.commit().0.unwrap()
    }

    #[test]
    fn pushes_on_top_of_the_recorded_heads_are_merged_already_and_what_came_after_them_is_not() {
        let mut d = Automerge::new();
        let since = vec![put(&mut d, "b", 1)];
        let mut other = d.fork();
        let mine = put(&mut d, "b", 2);
        let pushed: HashSet<ChangeHash> = [mine].into();
        assert_eq!(past_own_pushes(&d, &since, &pushed), (vec![mine], true));

        // Another device's change beside it: merged from past the push.
        let theirs = put(&mut other, "a", 5);
        d.merge(&mut other).unwrap();
        assert_eq!(past_own_pushes(&d, &since, &pushed), (vec![mine], false));
        let base = d.fork_at(&[mine]).unwrap();
        assert!(base.get_change_meta_by_hash(&theirs).is_none());

        // A push written over that change (not merged yet) is not on top of
        // the heads: merging from past it would skip the other device's.
        let over = put(&mut d, "b", 3);
        let pushed: HashSet<ChangeHash> = [mine, over].into();
        assert_eq!(past_own_pushes(&d, &since, &pushed), (vec![mine], false));
    }

    #[test]
    fn nothing_noted_or_nothing_recorded_leaves_the_heads_as_they_are() {
        let mut d = Automerge::new();
        let first = put(&mut d, "b", 1);
        let second = put(&mut d, "b", 2);
        assert_eq!(
            past_own_pushes(&d, &[first], &HashSet::new()),
            (vec![first], false)
        );
        assert_eq!(
            past_own_pushes(&d, &[], &[first, second].into()),
            (vec![], false)
        );
    }

    #[test]
    fn a_push_this_copy_lacks_is_missing_and_not_covered_until_it_is_here_and_behind_the_heads() {
        let mut d = Automerge::new();
        put(&mut d, "b", 1);
        let mut sent = d.fork();
        let lost = put(&mut sent, "b", 2);
        let pushed: HashSet<ChangeHash> = [lost].into();
        assert_eq!(missing_pushes(&d, &pushed), vec![lost]);
        assert!(covered_pushes(&d, &d.get_heads(), &pushed).is_empty());

        let before = d.get_heads();
        d.merge(&mut sent).unwrap();
        assert!(missing_pushes(&d, &pushed).is_empty());
        assert!(
            covered_pushes(&d, &before, &pushed).is_empty(),
            "here, past the heads"
        );
        assert_eq!(covered_pushes(&d, &d.get_heads(), &pushed), vec![lost]);
    }

    fn commit_at(d: &mut Automerge, at: Option<&[ChangeHash]>, value: i64) -> ChangeHash {
        let mut noted = None;
        let put = |tx: &mut automerge::transaction::Transaction<'_>| {
            tx.put(ROOT, "b", value).map_err(|e| e.to_string())
        };
        let note = |h: &ChangeHash| {
            noted = Some(*h);
            Ok(())
        };
        let made = commit_noted(d, at, CommitOptions::default(), put, note).unwrap();
        assert_eq!(made, noted, "noted before it was made");
        made.unwrap()
    }

    #[test]
    fn a_change_made_at_earlier_heads_is_concurrent_with_what_came_after_and_counted_as_own() {
        let mut d = Automerge::new();
        let since = vec![put(&mut d, "b", 1)];
        let mut other = d.fork();
        put(&mut other, "a", 5);
        d.merge(&mut other).unwrap();

        let mine = commit_at(&mut d, Some(&since), 2);
        let change = d.get_change_meta_by_hash(&mine).unwrap();
        assert_eq!(change.deps, since, "made where the heads were");
        assert_eq!(*change.actor, *d.get_actor(), "by this copy's actor");
        let (heads, only_own) = past_own_pushes(&d, &since, &[mine].into());
        assert_eq!((heads, only_own), (vec![mine], false));
    }

    #[test]
    fn a_change_made_where_this_actor_has_more_takes_another_actor_rather_than_its_number() {
        let mut d = Automerge::new();
        let since = vec![put(&mut d, "b", 1)];
        let later = put(&mut d, "b", 2);

        let mine = commit_at(&mut d, Some(&since), 3);
        let change = d.get_change_meta_by_hash(&mine).unwrap();
        assert_ne!(*change.actor, *d.get_actor());
        assert_eq!(change.deps, since);
        assert_eq!(sorted_heads(&d), sorted_hex(&[later, mine]));
    }
}
