//! The workspace's secret keys, as text: one key per line as `<key id>
//! <base64>`, the first the one new values are sealed with; older keys stay
//! so values sealed before a rotation (or synced from a device that has not
//! caught up) still open.
//!
//! Kept in the OS keychain when one answers (the Secret Service on Linux,
//! through `keyring`; Keychain on macOS), under the service `flowkeep` and
//! the data dir's path; otherwise in `secrets.keys` in the data dir (0600),
//! with a warning. A file left from before is moved into the keychain once
//! one answers.

use std::path::PathBuf;
use std::sync::Mutex;

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use flowkeep_core::secret::{parts, PREFIX};

use crate::{Error, Result};

pub type Key = [u8; 32];

/// A key and its id (the first 8 hex digits of its SHA-256).
#[derive(Clone)]
pub struct Keyed {
    pub id: String,
    pub key: Key,
}

pub struct Keys {
    /// `None`: kept in memory only (an in-memory database).
    path: Option<PathBuf>,
    /// The keychain entry's user name (the data dir), when the keychain is
    /// to be tried.
    keychain: Option<String>,
    loaded: Mutex<Option<Vec<Keyed>>>,
    /// When `loaded` was read last.
    read_at: Mutex<Option<std::time::Instant>>,
    /// Where the keys are kept, once known.
    kept_in: Mutex<Option<String>>,
}

/// The keychain entry's service name.
const SERVICE: &str = "flowkeep";

/// Runs a keychain call on a thread of its own: the Secret Service client
/// blocks on its own executor, which must not run inside a caller's async
/// runtime (the local HTTP API).
fn keychain<T: Send + 'static>(
    user: &str,
    f: impl FnOnce(&keyring::Entry) -> keyring::Result<T> + Send + 'static,
) -> keyring::Result<T> {
    let user = user.to_owned();
    std::thread::spawn(move || f(&keyring::Entry::new(SERVICE, &user)?))
        .join()
        .unwrap_or_else(|_| {
            Err(keyring::Error::PlatformFailure(
                "the keychain call panicked".into(),
            ))
        })
}

fn parse(text: &str, from: &str) -> Result<Vec<Keyed>> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let key = line
            .split_whitespace()
            .nth(1)
            .and_then(decode)
            .ok_or_else(|| Error::Secret(format!("{from} holds a line that is not a key")))?;
        out.push(Keyed {
            id: key_id(&key),
            key,
        });
    }
    Ok(out)
}

fn render(keys: &[Keyed]) -> String {
    let mut text =
        String::from("# Flowkeep secret keys: the first seals new values. Keep this private.\n");
    for k in keys {
        text.push_str(&format!("{} {}\n", k.id, encode(&k.key)));
    }
    text
}

pub fn key_id(key: &Key) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(key)
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// A new random key.
pub fn generate() -> Result<Key> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)
        .map_err(|e| Error::Secret(format!("no randomness for a key: {e}")))?;
    Ok(key)
}

/// A key written as text (for `secrets key` / `sync join --secrets-key`).
pub fn encode(key: &Key) -> String {
    b64().encode(key)
}

pub fn decode(text: &str) -> Option<Key> {
    b64().decode(text.trim()).ok()?.try_into().ok()
}

impl Keys {
    pub fn new(path: Option<PathBuf>) -> Keys {
        Keys {
            path,
            keychain: None,
            loaded: Mutex::new(None),
            read_at: Mutex::new(None),
            kept_in: Mutex::new(None),
        }
    }

    /// Tries the OS keychain first (entry user name: `user`, the data dir).
    pub fn with_keychain(mut self, user: String) -> Keys {
        self.keychain = Some(user);
        self
    }

    /// Where the keys are kept: "the OS keychain" or the file's path.
    pub fn kept_in(&self) -> Option<String> {
        self.kept_in
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_kept_in(&self, s: String) {
        *self.kept_in.lock().unwrap_or_else(|p| p.into_inner()) = Some(s);
    }

    /// `f` over the keys as this process last read them: reading a key
    /// needs no trip to the keychain each time.
    fn with<T>(&self, f: impl FnOnce(&mut Vec<Keyed>) -> Result<T>) -> Result<T> {
        let mut guard = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(self.read()?);
            self.mark_read();
        }
        f(guard.as_mut().expect("loaded"))
    }

    /// `f` over the keys as they are stored now: another process (`secrets
    /// key --add` beside a running app) may have changed them since this
    /// one read them, and a change written over an older list would lose
    /// what it added.
    fn with_fresh<T>(&self, f: impl FnOnce(&mut Vec<Keyed>) -> Result<T>) -> Result<T> {
        let mut guard = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        *guard = Some(self.read()?);
        self.mark_read();
        f(guard.as_mut().expect("loaded"))
    }

    fn mark_read(&self) {
        *self.read_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::time::Instant::now());
    }

    /// Whether the keys were read within the last second (a value sealed
    /// with a key this device lacks is not worth a keychain call each).
    fn read_lately(&self) -> bool {
        self.read_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(1))
    }

    /// Left in the data dir once the keys moved into the keychain: a later
    /// process that finds the keychain not answering (a session without
    /// one, a locked keyring) then knows the keys exist and refuses, rather
    /// than taking "no keys" for an answer and making a new one.
    fn marker(&self) -> Option<PathBuf> {
        let path = self.path.as_ref()?;
        let mut m = path.as_os_str().to_owned();
        m.push(".in-keychain");
        Some(PathBuf::from(m))
    }

    fn read(&self) -> Result<Vec<Keyed>> {
        let file = self.read_file()?;
        if let Some(user) = &self.keychain {
            match keychain(user, |e| e.get_password()) {
                Ok(text) => {
                    self.set_kept_in("the OS keychain".into());
                    let mut keys = parse(&text, "the keychain entry")?;
                    // Keys a process without the keychain kept in the file
                    // meanwhile join them, not the other way round.
                    let stray: Vec<Keyed> = file
                        .into_iter()
                        .filter(|f| !keys.iter().any(|k| k.id == f.id))
                        .collect();
                    if !stray.is_empty() {
                        keys.extend(stray);
                        self.write(&keys)?;
                    }
                    return Ok(keys);
                }
                Err(keyring::Error::NoEntry) => {}
                Err(e) => {
                    if self.marker().is_some_and(|m| m.exists()) {
                        return Err(Error::Secret(format!(
                            "this data dir's secret key is in the OS keychain, which does not answer now ({e}); \
                             unlock it, or run where it answers, and try again"
                        )));
                    }
                    tracing::debug!("no OS keychain: {e}");
                }
            }
        }
        // Into the keychain, if one answers now.
        if self.keychain.is_some() && !file.is_empty() {
            self.write(&file)?;
        }
        Ok(file)
    }

    fn read_file(&self) -> Result<Vec<Keyed>> {
        let Some(path) = &self.path else {
            return Ok(vec![]);
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e.into()),
        };
        self.set_kept_in(path.display().to_string());
        parse(&text, &path.display().to_string())
    }

    fn write(&self, keys: &[Keyed]) -> Result<()> {
        let text = render(keys);
        if let Some(user) = &self.keychain {
            let t = text.clone();
            match keychain(user, move |e| e.set_password(&t)) {
                Ok(()) => {
                    if let Some(m) = self.marker() {
                        if !m.exists() {
                            use std::io::Write;
                            let mut f = flowkeep_store::private::create_new(&m)?;
                            f.write_all(b"The secret keys of this data dir are in the OS keychain (service flowkeep).\n")?;
                            f.sync_all()?;
                        }
                    }
                    if let Some(p) = &self.path {
                        let _ = std::fs::remove_file(p);
                    }
                    self.set_kept_in("the OS keychain".into());
                    return Ok(());
                }
                Err(e) => {
                    if let Some(p) = &self.path {
                        tracing::warn!(
                            file = %p.display(),
                            "no OS keychain answered ({e}); the secret key is kept in a private file instead"
                        );
                    }
                }
            }
        }
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".partial");
        let tmp = PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        {
            use std::io::Write;
            let mut f = flowkeep_store::private::create_new(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        self.set_kept_in(path.display().to_string());
        Ok(())
    }

    /// The key new values are sealed with, made on first use.
    pub fn current(&self) -> Result<Keyed> {
        if let Some(k) = self.with(|keys| Ok(keys.first().cloned()))? {
            return Ok(k);
        }
        self.with_fresh(|keys| {
            // The keys went into the keychain, which this process does not
            // ask (FLOWKEEP_KEYCHAIN=off): a key made here would seal values
            // nothing else opens.
            if keys.is_empty() && self.keychain.is_none() && self.marker().is_some_and(|m| m.exists()) {
                return Err(Error::Secret(
                    "this data dir's secret keys are in the OS keychain, which this process does not ask \
                     (FLOWKEEP_KEYCHAIN=off): turn it back on, or add the key here with \
                     `flowkeep secrets key --add KEY`"
                        .into(),
                ));
            }
            if keys.is_empty() {
                let key = generate()?;
                keys.push(Keyed {
                    id: key_id(&key),
                    key,
                });
                self.write(keys)?;
                tracing::info!(
                    kept_in = %self.kept_in().unwrap_or_else(|| "memory".into()),
                    "made this workspace's secret key"
                );
            }
            Ok(keys[0].clone())
        })
    }

    /// The current key, if there is one yet (without making it).
    pub fn current_if_any(&self) -> Result<Option<Keyed>> {
        self.with(|keys| Ok(keys.first().cloned()))
    }

    /// Adds a key; `current` makes it the one that seals from now on.
    pub fn add(&self, key: Key, current: bool) -> Result<Keyed> {
        self.with_fresh(|keys| {
            let k = Keyed {
                id: key_id(&key),
                key,
            };
            keys.retain(|x| x.id != k.id);
            if current {
                keys.insert(0, k.clone());
            } else {
                keys.push(k.clone());
            }
            self.write(keys)?;
            Ok(k)
        })
    }

    /// The key `id`, read again from where keys are kept when this process
    /// does not know it (another process may have added it since).
    fn find(&self, id: &str) -> Result<Option<Keyed>> {
        let found = |keys: &mut Vec<Keyed>| Ok(keys.iter().find(|k| k.id == id).cloned());
        match self.with(found)? {
            Some(k) => Ok(Some(k)),
            None if self.read_lately() => Ok(None),
            None => self.with_fresh(found),
        }
    }

    /// Seals clear text under the current key (a fresh nonce each time).
    pub fn seal(&self, plain: &str) -> Result<String> {
        let k = self.current()?;
        seal_with(&k, plain)
    }

    /// Opens a sealed value; `Unavailable` when this device lacks its key.
    pub fn open(&self, sealed: &str) -> std::result::Result<String, Unavailable> {
        let Some((kid, payload)) = parts(sealed) else {
            return Err(Unavailable::Damaged);
        };
        let Ok(Some(k)) = self.find(kid) else {
            return Err(Unavailable::NoKey(kid.to_owned()));
        };
        let bytes = b64().decode(payload).map_err(|_| Unavailable::Damaged)?;
        if bytes.len() < 24 {
            return Err(Unavailable::Damaged);
        }
        let (nonce, ct) = bytes.split_at(24);
        let cipher = XChaCha20Poly1305::new((&k.key).into());
        let plain = cipher
            .decrypt(XNonce::from_slice(nonce), ct)
            .map_err(|_| Unavailable::Damaged)?;
        String::from_utf8(plain).map_err(|_| Unavailable::Damaged)
    }
}

pub fn seal_with(k: &Keyed, plain: &str) -> Result<String> {
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut nonce)
        .map_err(|e| Error::Secret(format!("no randomness for a nonce: {e}")))?;
    let cipher = XChaCha20Poly1305::new((&k.key).into());
    let ct = cipher
        .encrypt(XNonce::from_slice(&nonce), plain.as_bytes())
        .map_err(|_| Error::Secret("sealing a secret failed".into()))?;
    let mut bytes = nonce.to_vec();
    bytes.extend(ct);
    Ok(format!("{PREFIX}{}:{}", k.id, b64().encode(bytes)))
}

/// Why a sealed value does not open here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// Sealed with a key this device does not have.
    NoKey(String),
    /// Not a value this version seals, or altered.
    Damaged,
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::NoKey(kid) => write!(
                f,
                "secret not available on this device (sealed with key {kid}; add it with `flowkeep secrets key --add`)"
            ),
            Unavailable::Damaged => write!(f, "secret not available: the sealed value is damaged"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_another_process_added_is_kept_and_used_by_one_that_read_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.keys");
        // The app: read the keys (none yet) and keeps them.
        let app = Keys::new(Some(path.clone()));
        assert!(app.current_if_any().unwrap().is_none());
        // The CLI beside it: the workspace's key, added.
        let cli = Keys::new(Some(path.clone()));
        let workspace = cli.add(generate().unwrap(), true).unwrap();
        let from_elsewhere = seal_with(&workspace, "synced").unwrap();
        // The app opens a value sealed with it, and seals with it rather
        // than making a key of its own over it.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(app.open(&from_elsewhere).as_deref(), Ok("synced"));
        let sealed_by_app = app.seal("typed in the app").unwrap();
        let stored = Keys::new(Some(path));
        assert_eq!(stored.current().unwrap().id, workspace.id);
        assert_eq!(
            stored.open(&sealed_by_app).as_deref(),
            Ok("typed in the app")
        );
        assert_eq!(stored.open(&from_elsewhere).as_deref(), Ok("synced"));
    }

    #[test]
    fn without_the_keychain_no_key_is_made_beside_the_one_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.keys");
        // What a process that moved the keys into the keychain leaves.
        std::fs::write(dir.path().join("secrets.keys.in-keychain"), "").unwrap();
        let keys = Keys::new(Some(path.clone()));
        let refused = keys.seal("x").unwrap_err().to_string();
        assert!(refused.contains("in the OS keychain"), "{refused}");
        assert!(!path.exists(), "no key made");
        // The key added here by hand is used.
        let k = keys.add(generate().unwrap(), true).unwrap();
        assert_eq!(keys.current().unwrap().id, k.id);
    }

    #[test]
    fn keys_made_apart_are_all_kept_whichever_writes_last() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.keys");
        let a = Keys::new(Some(path.clone()));
        let b = Keys::new(Some(path.clone()));
        a.current_if_any().unwrap();
        let first = b.add(generate().unwrap(), true).unwrap();
        let second = a.add(generate().unwrap(), false).unwrap();
        let stored = Keys::new(Some(path));
        for k in [first, second] {
            assert!(stored.find(&k.id).unwrap().is_some(), "key {} lost", k.id);
        }
    }

    #[test]
    fn a_sealed_value_opens_with_its_key_only_and_never_seals_the_same_twice() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::new(Some(dir.path().join("secrets.keys")));
        let a = keys.seal("hunter2").unwrap();
        let b = keys.seal("hunter2").unwrap();
        assert_ne!(a, b, "a fresh nonce per write");
        assert!(!a.contains("hunter2"));
        assert_eq!(keys.open(&a).unwrap(), "hunter2");
        // Read back from the file by another instance.
        let again = Keys::new(Some(dir.path().join("secrets.keys")));
        assert_eq!(again.open(&b).unwrap(), "hunter2");
        // Another workspace's key cannot open it.
        let other = Keys::new(None);
        assert!(matches!(other.open(&a), Err(Unavailable::NoKey(_))));
        // Tampering is caught.
        let mut bad = a.clone();
        bad.replace_range(bad.len() - 6..bad.len() - 4, "AA");
        assert_eq!(keys.open(&bad), Err(Unavailable::Damaged));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("secrets.keys"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
