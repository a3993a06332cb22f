//! Who may call the local API. A request must come from this server's own
//! page (`Host` and, when sent, `Origin` name 127.0.0.1:<port>), and carry
//! either the per-launch token (`Authorization: Bearer`, or `?token=` on
//! the first page load) or the session cookie that first load set.
//!
//! The cookie is derived from a secret kept 0600 in the data dir, so a tab
//! opened before `flowkeep ui` restarted on the same data dir keeps working
//! while the launch token still changes every launch. It is HttpOnly (no
//! script reads it) and SameSite=Strict (no other site's request carries
//! it).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use axum::http::{header, HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

/// The file in the data dir that holds the session secret.
const SECRET_FILE: &str = "ui-session.key";

pub struct Auth {
    token: String,
    port: u16,
    cookie_name: String,
    cookie_value: String,
    /// What the browser `flowkeep ui` opens is given instead of the launch
    /// token: the opener's command line, which every user of the machine
    /// can read (`/proc/*/cmdline`), then holds a code that works once, for
    /// the first page load, and then no more.
    opener_code: std::sync::Mutex<Option<String>>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("the OS random source works");
    hex(&buf)
}

/// Compares without an early exit, so timing does not tell how much matched.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The session secret of a data dir: read, or made (0600) on first use.
fn secret(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join(SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => {
            restrict(&path)?;
            return Ok(s.trim().to_owned());
        }
        Ok(_) => std::fs::remove_file(&path)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let s = random_hex(32);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(&path) {
        Ok(mut f) => {
            f.write_all(s.as_bytes())?;
            f.sync_all()?;
            Ok(s)
        }
        // Another `flowkeep ui` on this data dir made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(&path)?.trim().to_owned())
        }
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn restrict(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict(_: &Path) -> std::io::Result<()> {
    Ok(())
}

impl Auth {
    pub fn new(data_dir: &Path, token: String, port: u16) -> std::io::Result<Auth> {
        let secret = secret(data_dir)?;
        let derive = |what: &str| hex(&Sha256::digest(format!("{what}:{secret}").as_bytes()));
        // Cookies ignore the port: each data dir has its own cookie name, so
        // two `flowkeep ui`s on one machine do not replace each other's.
        Ok(Auth {
            token,
            port,
            cookie_name: format!("flowkeep_{}", &derive("name")[..12]),
            cookie_value: derive("session"),
            opener_code: std::sync::Mutex::new(Some(random_hex(16))),
        })
    }

    /// The one-use code for the page the browser is opened at.
    pub fn opener_code(&self) -> Option<String> {
        self.opener_code
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether `query` carries the opener's code, which this uses up.
    pub fn redeem(&self, query: &HashMap<String, String>) -> bool {
        let Some(given) = query.get("code") else {
            return false;
        };
        let mut code = self.opener_code.lock().unwrap_or_else(|p| p.into_inner());
        match code.as_deref() {
            Some(c) if same_secret(given, c) => {
                *code = None;
                true
            }
            _ => false,
        }
    }

    /// `Host` must name this server; `Origin`, when sent, must be this server.
    pub fn same_origin(&self, headers: &HeaderMap) -> bool {
        let port = self.port;
        let ours = |v: &str| v == format!("127.0.0.1:{port}") || v == format!("localhost:{port}");
        let host_ok = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(ours);
        let origin_ok = match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
            None => true,
            Some(o) => o.strip_prefix("http://").is_some_and(ours),
        };
        host_ok && origin_ok
    }

    /// The launch token, from the header or the query.
    pub fn has_token(&self, headers: &HeaderMap, query: &HashMap<String, String>) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned)
            .or_else(|| query.get("token").cloned())
            .is_some_and(|p| same_secret(&p, &self.token))
    }

    /// This data dir's session cookie.
    pub fn has_cookie(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(name, value)| name == self.cookie_name && same_secret(value, &self.cookie_value))
    }

    pub fn allowed(&self, headers: &HeaderMap, query: &HashMap<String, String>) -> bool {
        self.has_token(headers, query) || self.has_cookie(headers)
    }

    /// The cookie a page load with the right token gets.
    pub fn set_cookie(&self) -> HeaderValue {
        let v = format!(
            // No Max-Age: it lasts while the browser runs (a tab left open
            // outlives a restart of `flowkeep ui`), not a year, since a
            // browser sends it to every port of 127.0.0.1.
            "{}={}; Path=/; HttpOnly; SameSite=Strict",
            self.cookie_name, self.cookie_value
        );
        HeaderValue::from_str(&v).expect("hex and ASCII only")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_opener_code_works_once() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Auth::new(dir.path(), "t1".repeat(16), 7000).unwrap();
        let code = auth.opener_code().unwrap();
        let with = |c: &str| HashMap::from([("code".to_owned(), c.to_owned())]);
        assert!(!auth.redeem(&with("0".repeat(32).as_str())));
        assert!(auth.redeem(&with(&code)));
        assert!(!auth.redeem(&with(&code)), "used up");
        assert_eq!(auth.opener_code(), None);
        assert!(
            !auth.allowed(&headers(&[]), &with(&code)),
            "never a credential for the API"
        );
    }

    #[test]
    fn the_cookie_survives_a_new_launch_token_and_nothing_else_passes() {
        let dir = tempfile::tempdir().unwrap();
        let first = Auth::new(dir.path(), "t1".repeat(16), 7000).unwrap();
        let cookie = first.set_cookie().to_str().unwrap().to_owned();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        assert!(
            !cookie.contains("Max-Age") && !cookie.contains("Expires"),
            "a session cookie"
        );
        let pair = cookie.split(';').next().unwrap().to_owned();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let again = Auth::new(dir.path(), "t2".repeat(16), 7001).unwrap();
        let none = HashMap::new();
        assert!(again.allowed(
            &headers(&[(header::COOKIE, &format!("a=b; {pair}"))]),
            &none
        ));
        assert!(!again.allowed(&headers(&[]), &none));
        let forged = format!("{}=00", pair.split('=').next().unwrap());
        assert!(!again.allowed(&headers(&[(header::COOKIE, &forged)]), &none));
        let old_token = format!("Bearer {}", "t1".repeat(16));
        assert!(!again.allowed(&headers(&[(header::AUTHORIZATION, &old_token)]), &none));
        let token = HashMap::from([("token".to_owned(), "t2".repeat(16))]);
        assert!(again.allowed(&headers(&[]), &token));

        let other = tempfile::tempdir().unwrap();
        let elsewhere = Auth::new(other.path(), "t3".repeat(16), 7002).unwrap();
        assert!(
            !elsewhere.allowed(&headers(&[(header::COOKIE, &pair)]), &none),
            "another data dir's cookie"
        );
    }

    #[test]
    fn only_this_servers_own_origin_passes() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Auth::new(dir.path(), "t".repeat(32), 7000).unwrap();
        let ok = |h: &[(header::HeaderName, &str)]| auth.same_origin(&headers(h));
        assert!(ok(&[(header::HOST, "127.0.0.1:7000")]));
        assert!(ok(&[
            (header::HOST, "localhost:7000"),
            (header::ORIGIN, "http://localhost:7000")
        ]));
        assert!(!ok(&[(header::HOST, "evil.example:7000")]));
        assert!(!ok(&[
            (header::HOST, "127.0.0.1:7000"),
            (header::ORIGIN, "http://evil.example")
        ]));
        assert!(!ok(&[]));
    }
}
