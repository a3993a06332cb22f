//! Connects to the sync server with this device's credential in the
//! `Authorization` header, over TLS for `wss://`. A refusal (401/403, a
//! connection limit (429), a certificate that is not trusted) is a permanent
//! failure of that dial, so it fails fast with the server's sentence instead
//! of retrying forever (`sync watch` dials again after a 429).

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use samod::{DialError, Dialer, Transport};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

/// Also used by the sync bench and tests to drive raw clients.
pub struct TokenDialer {
    pub url: url::Url,
    /// The device credential (or, for `/enrol`, the workspace token).
    pub token: String,
    /// Trust for `wss://`; `None` uses the system's roots.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// What the server said about this workspace's limits when it last
    /// accepted this dialer (`x-flowkeep-limit`): that it takes no new
    /// documents, or no changes at all. One sentence for the user.
    pub limit: Limit,
}

/// Where a dialer keeps the server's sentence about the workspace's limits.
#[derive(Clone, Default)]
pub struct Limit(Arc<std::sync::Mutex<Said>>);

#[derive(Default)]
struct Said {
    /// What the server says now: each connection says it again.
    now: Option<String>,
    /// The last sentence it said since the last `take_for_round`. A
    /// connection the server closed (it could not store a change) is
    /// dialled again at once and that new connection says nothing yet, so
    /// `now` alone would lose why a round's documents went unconfirmed.
    heard: Option<String>,
    /// Why the server last turned a dial away for now (an HTTP 5xx with
    /// its sentence); cleared by a dial it accepts.
    unavailable: Option<String>,
    /// The server closed a connection this round because it could not
    /// store the workspace's changes (close code 1011): what it confirmed
    /// in the round may have been held in its memory only.
    unstored: bool,
}

impl Limit {
    fn said(&self) -> std::sync::MutexGuard<'_, Said> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the server says now about the workspace's limits.
    pub fn now(&self) -> Option<String> {
        self.said().now.clone()
    }

    /// Whether the server said anything about a limit since the round
    /// began (or says so now).
    pub fn heard(&self) -> bool {
        let said = self.said();
        said.now.is_some() || said.heard.is_some()
    }

    /// A round begins: what was heard before it (on a connection since
    /// closed) does not explain this one.
    pub fn begin_round(&self) {
        let mut said = self.said();
        said.heard = said.now.clone();
        said.unstored = false;
    }

    /// Whether the server said this round that it could not store the
    /// workspace's changes.
    pub fn unstored(&self) -> bool {
        self.said().unstored
    }

    /// What a round that left `unconfirmed` documents tells the user: what
    /// the server says now, or, when documents went unconfirmed, the last
    /// thing it said during the round. The next round starts afresh.
    pub fn take_for_round(&self, unconfirmed: usize) -> Option<String> {
        let mut said = self.said();
        let heard = said.heard.take();
        said.unstored = false;
        match &said.now {
            Some(now) => Some(now.clone()),
            None if unconfirmed > 0 => heard,
            None => None,
        }
    }

    /// Why the server turned this device's last dial away for now, in its
    /// words (`cannot take this device right now (HTTP 503): …`, to follow
    /// "the sync server at <address>"); `None` if it did not answer at all
    /// (or took the dial).
    pub fn unavailable(&self) -> Option<String> {
        self.said().unavailable.clone()
    }

    fn note_unavailable(&self, why: Option<String>) {
        self.said().unavailable = why;
    }

    /// Keeps what the server says now.
    fn note(&self, said: Option<String>) {
        let mut slot = self.said();
        // A refused message is sent again on every connection: its sentence
        // outlives a reconnect, and a workspace with room again.
        if said.is_some() || !slot.now.as_deref().is_some_and(is_too_big) {
            slot.now = said;
        }
        if slot.now.is_some() {
            slot.heard = slot.now.clone();
        }
    }
}

/// The header a sync server sets on an accepted connection to a workspace
/// that is at one of its limits.
const LIMIT_HEADER: &str = "x-flowkeep-limit";

/// Asks the server to say, in a text message, when the workspace reaches a
/// limit while this device is connected (`{"limit": sentence}`, or
/// `{"limit": null}` once there is room again): a first sync that fills it
/// learns why the server did not take everything in that same sync.
const NOTICES_HEADER: &str = "x-flowkeep-limit-notices";

/// Why the server (or its certificate) was not accepted; never retried.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The server said no: its one-sentence reason.
    #[error("the sync server refused this device (HTTP {status}): {reason}")]
    Server { status: u16, reason: String },
    #[error("{0}")]
    Certificate(String),
}

impl Refused {
    /// The server is at a connection limit: a place may free up, so a
    /// watch waits and tries again; a one-off sync says why and stops.
    pub fn is_busy(&self) -> bool {
        matches!(self, Refused::Server { status: 429, .. })
    }
}

impl Dialer for TokenDialer {
    type Error = Refused;

    fn url(&self) -> url::Url {
        self.url.clone()
    }

    fn connect(&self) -> BoxFuture<'static, Result<Transport, DialError<Refused>>> {
        let (url, token, tls) = (self.url.clone(), self.token.clone(), self.tls.clone());
        let limit = self.limit.clone();
        Box::pin(async move {
            match open_patiently(&url, &token, tls).await {
                Ok((ws, response)) => {
                    let said = response
                        .headers()
                        .get(LIMIT_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    limit.note_unavailable(None);
                    limit.note(said);
                    let (sink, stream) = ws.split();
                    let stream = stream.filter_map(move |m| {
                        let limit = limit.clone();
                        async move { received(m, &limit) }
                    });
                    let sink = sink.with(|b: Vec<u8>| async move {
                        Ok::<_, tungstenite::Error>(Message::Binary(b.into()))
                    });
                    Ok(Transport::new(Box::pin(stream), Box::pin(sink)))
                }
                Err(Failure::Refused(r)) => Err(DialError::PermanentFailure(r)),
                Err(Failure::Unavailable(u)) => {
                    limit.note_unavailable(Some(u.to_string()));
                    Err(DialError::transient(u))
                }
                Err(Failure::Transient(e)) => {
                    limit.note_unavailable(None);
                    Err(DialError::transient(e))
                }
            }
        })
    }
}

/// What reaches samod of a message from the server; what the server says
/// about this device's workspace (close reasons, limit notices) is kept in
/// `limit`.
fn received(
    m: Result<Message, tungstenite::Error>,
    limit: &Limit,
) -> Option<Result<Vec<u8>, tungstenite::Error>> {
    match m {
        Ok(Message::Binary(b)) => Some(Ok(b.to_vec())),
        Ok(Message::Close(Some(frame))) if frame.code == CloseCode::Size => {
            limit.note(Some(too_big_sentence(&frame.reason)));
            None
        }
        // The server could not store the workspace's changes (or hit
        // another fault): its reason, until the next connection says
        // otherwise.
        Ok(Message::Close(Some(frame))) if frame.code == CloseCode::Error => {
            let said = Some(printable(&frame.reason)).filter(|r| !r.is_empty());
            limit.note(said);
            limit.said().unstored = true;
            None
        }
        // The server ended the connection for what this device sent (too
        // many asks for documents the workspace does not hold), or the
        // device was revoked: said now, not only by the next dial; the
        // next connection clears it, the round keeps it.
        Ok(Message::Close(Some(frame))) if frame.code == CloseCode::Policy => {
            let reason = printable(&frame.reason);
            limit.note(Some(format!(
                "the sync server ended the connection: {}",
                if reason.is_empty() {
                    "it refused what this device sent"
                } else {
                    &reason
                }
            )));
            None
        }
        Ok(Message::Text(text)) => {
            if let Some(said) = limit_notice(&text) {
                limit.note(said);
            }
            None
        }
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    }
}

/// The server's limit notice in a text message: `Some(Some(sentence))` at
/// a limit, `Some(None)` with room again, `None` for any other text (which
/// is ignored). The sentence is the server's text: shown cut and without
/// control characters.
fn limit_notice(text: &str) -> Option<Option<String>> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    match v.as_object()?.get("limit")? {
        serde_json::Value::Null => Some(None),
        serde_json::Value::String(s) => Some(Some(printable(s)).filter(|s| !s.is_empty())),
        _ => None,
    }
}

/// At most 300 characters of `s`, control characters left out.
pub(super) fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect::<String>()
        .trim()
        .to_owned()
}

const TOO_BIG: &str = "the sync server closed the connection: ";

/// The server's reason for closing on a message over its size limit, as
/// the user reads it (cut, and without control characters: it is the
/// server's text).
fn too_big_sentence(reason: &str) -> String {
    let reason = printable(reason);
    let reason = if reason.is_empty() {
        "a message was larger than it accepts"
    } else {
        &reason
    };
    format!("{TOO_BIG}{reason}")
}

fn is_too_big(sentence: &str) -> bool {
    sentence.starts_with(TOO_BIG)
}

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) enum Failure {
    Refused(Refused),
    /// The server answered, but cannot take this device right now.
    Unavailable(Unavailable),
    Transient(tungstenite::Error),
}

/// The server turned a dial away for now (HTTP 5xx: shutting down, its
/// storage out of reach): its sentence, for the user. A later dial may get
/// in, so it is retried.
#[derive(Debug, thiserror::Error)]
#[error("cannot take this device right now (HTTP {status}): {reason}")]
pub(crate) struct Unavailable {
    status: u16,
    reason: String,
    /// When the server asked to be asked again (`Retry-After`, seconds).
    retry_after: Option<std::time::Duration>,
}

/// The longest pause a server may ask for (`Retry-After`) that a dial
/// waits out rather than failing: a workspace resting after a storage
/// failure asks for 1–8 s, and a `sync now` had better wait than say "try
/// again".
const WAIT_AT_MOST: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens a WebSocket to `url` with `Authorization: Bearer <token>`.
pub(crate) async fn open(
    url: &url::Url,
    token: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<Socket, Failure> {
    Ok(open_patiently(url, token, tls).await?.0)
}

/// `open_with_response`, tried once more after a short pause the server
/// asked for (`WAIT_AT_MOST`).
async fn open_patiently(
    url: &url::Url,
    token: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<(Socket, tungstenite::handshake::client::Response), Failure> {
    match open_with_response(url, token, tls.clone()).await {
        Err(Failure::Unavailable(u)) => match u.retry_after.filter(|w| *w <= WAIT_AT_MOST) {
            Some(pause) => {
                tokio::time::sleep(pause).await;
                open_with_response(url, token, tls).await
            }
            None => Err(Failure::Unavailable(u)),
        },
        other => other,
    }
}

/// `open`, with the server's answer to the upgrade.
async fn open_with_response(
    url: &url::Url,
    token: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<(Socket, tungstenite::handshake::client::Response), Failure> {
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(Failure::Transient)?;
    let value = tungstenite::http::HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|e| Failure::Transient(tungstenite::Error::HttpFormat(e.into())))?;
    req.headers_mut().insert("Authorization", value);
    req.headers_mut().insert(
        NOTICES_HEADER,
        tungstenite::http::HeaderValue::from_static("1"),
    );
    let connector = match (url.scheme(), tls) {
        ("wss", Some(cfg)) => Some(Connector::Rustls(cfg)),
        _ => None,
    };
    match tokio_tungstenite::connect_async_tls_with_config(req, None, false, connector).await {
        Ok(both) => Ok(both),
        Err(tungstenite::Error::Http(r)) if matches!(r.status().as_u16(), 401 | 403 | 429) => {
            let reason = r
                .body()
                .as_deref()
                // Shown in `sync status` and the app's header: cut, and no
                // control characters, whatever the server sent.
                .map(|b| printable(&String::from_utf8_lossy(b)))
                .filter(|b| !b.is_empty())
                .unwrap_or_else(|| "no reason given".to_owned());
            Err(Failure::Refused(Refused::Server {
                status: r.status().as_u16(),
                reason,
            }))
        }
        Err(tungstenite::Error::Http(r)) if r.status().is_server_error() => {
            Err(Failure::Unavailable(Unavailable {
                status: r.status().as_u16(),
                reason: server_sentence(&r),
                retry_after: r
                    .headers()
                    .get(tungstenite::http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok())
                    .map(std::time::Duration::from_secs),
            }))
        }
        Err(e) => match certificate_problem(&e, url) {
            Some(why) => Err(Failure::Refused(Refused::Certificate(why))),
            None => Err(Failure::Transient(e)),
        },
    }
}

/// What a server error answer says: our server's plain-text sentence, or
/// (from a proxy's HTML page, say) only the status's name.
fn server_sentence(r: &tungstenite::http::Response<Option<Vec<u8>>>) -> String {
    let plain = r
        .headers()
        .get(tungstenite::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/plain"));
    let said = r
        .body()
        .as_deref()
        .filter(|_| plain)
        .map(|b| printable(&String::from_utf8_lossy(b)))
        .filter(|s| !s.is_empty());
    said.unwrap_or_else(|| {
        r.status()
            .canonical_reason()
            .unwrap_or("no reason given")
            .to_owned()
    })
}

/// Why a dial to `server` did not get in: the server's own sentence when
/// it turned the dial away (`unavailable`), or that it did not answer.
pub(crate) fn not_in(server: &str, unavailable: Option<String>) -> String {
    match unavailable {
        Some(why) => format!("the sync server at {server} {why}"),
        None => format!("cannot reach the sync server at {server}"),
    }
}

/// A sentence for a TLS failure that retrying cannot fix.
fn certificate_problem(e: &tungstenite::Error, url: &url::Url) -> Option<String> {
    use rustls::{CertificateError, Error as TlsError};
    let host = url.host_str().unwrap_or("?");
    let tls = match e {
        tungstenite::Error::Tls(tungstenite::error::TlsError::Rustls(t)) => t,
        tungstenite::Error::Io(io) => io.get_ref()?.downcast_ref::<TlsError>()?,
        _ => return None,
    };
    let why = match tls {
        TlsError::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
            "the server's certificate is not trusted (unknown issuer): if {host} uses a private CA, pass its certificate with --ca-file"
        ),
        TlsError::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the server's certificate is not valid for {host}: connect with the host name (or IP) the certificate was issued for"
        ),
        TlsError::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "the server's certificate has expired".to_owned(),
        TlsError::InvalidCertificate(other) => {
            format!("the server's certificate was refused: {other:?}")
        }
        other => format!("TLS with {host} failed: {other}"),
    };
    Some(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_notice_is_kept_as_the_servers_sentence_and_cleared_with_room_again() {
        let limit = Limit::default();
        let said = limit_notice(
            r#"{"limit":"workspace team holds 3 documents\u0007, this server's limit"}"#,
        );
        assert_eq!(
            said,
            Some(Some(
                "workspace team holds 3 documents, this server's limit".to_owned()
            )),
            "control characters are dropped"
        );
        limit.note(said.unwrap());
        assert!(limit.now().is_some());
        limit.note(limit_notice(r#"{"limit":null}"#).unwrap());
        assert_eq!(limit.now(), None);
    }

    #[test]
    fn other_text_is_not_a_notice_and_a_long_sentence_is_cut() {
        assert_eq!(limit_notice("hello"), None);
        assert_eq!(limit_notice(r#"{"other":1}"#), None);
        assert_eq!(limit_notice(r#"{"limit":"   "}"#), Some(None));
        let long = format!(r#"{{"limit":"{}"}}"#, "x".repeat(5000));
        assert_eq!(limit_notice(&long).unwrap().unwrap().len(), 300);
    }

    #[test]
    fn a_connection_the_server_ended_for_what_this_device_sent_says_why_until_the_next_one() {
        use tokio_tungstenite::tungstenite::protocol::CloseFrame;
        let limit = Limit::default();
        limit.begin_round();
        let closed = Message::Close(Some(CloseFrame {
            code: CloseCode::Policy,
            reason: "asked for more documents the workspace does not hold\u{7}".into(),
        }));
        assert!(received(Ok(closed), &limit).is_none());
        assert_eq!(
            limit.now().as_deref(),
            Some("the sync server ended the connection: asked for more documents the workspace does not hold")
        );
        // The next connection says nothing: cleared, though the round that
        // left documents unconfirmed still says why.
        limit.note(None);
        assert_eq!(limit.now(), None);
        assert!(limit
            .take_for_round(1)
            .is_some_and(|s| s.contains("asked for more documents")));
        assert!(!limit.unstored());
        // Sync messages still reach samod.
        assert_eq!(
            received(Ok(Message::Binary(vec![1, 2].into())), &limit)
                .unwrap()
                .unwrap(),
            vec![1, 2]
        );
    }

    #[test]
    fn room_again_does_not_clear_a_refused_message() {
        let limit = Limit::default();
        limit.note(Some(too_big_sentence("message over --max-message-bytes")));
        limit.note(None);
        assert!(limit.now().as_deref().is_some_and(is_too_big));
    }

    /// A server on loopback that refuses its first dial with a 503 asking
    /// for `retry_after` s, then accepts the WebSocket.
    async fn resting_then_open(retry_after: u64) -> url::Url {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url =
            url::Url::parse(&format!("ws://{}/sync", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            let (mut first, _) = listener.accept().await.unwrap();
            let mut asked = Vec::new();
            let mut buf = [0u8; 1024];
            while !asked.windows(4).any(|w| w == b"\r\n\r\n") {
                match first.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => asked.extend_from_slice(&buf[..n]),
                }
            }
            let body = "the workspace rests\n";
            let answer = format!(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Retry-After: {retry_after}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            first.write_all(answer.as_bytes()).await.unwrap();
            drop(first);
            let (second, _) = listener.accept().await.unwrap();
            let _ws = tokio_tungstenite::accept_async(second).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        });
        url
    }

    #[tokio::test]
    async fn a_short_pause_the_server_asks_for_is_waited_out() {
        let url = resting_then_open(1).await;
        let started = std::time::Instant::now();
        assert!(open(&url, "t", None).await.is_ok());
        assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_long_pause_is_not_waited_for_and_the_servers_sentence_kept() {
        let url = resting_then_open(60).await;
        match open(&url, "t", None).await {
            Err(Failure::Unavailable(u)) => assert_eq!(
                u.to_string(),
                "cannot take this device right now (HTTP 503): the workspace rests"
            ),
            _ => panic!("not refused for now"),
        }
    }

    #[test]
    fn a_round_left_unconfirmed_keeps_what_the_server_said_before_a_reconnect() {
        let limit = Limit::default();
        let stored = "the server could not store this workspace's changes".to_owned();
        // Closed with the reason, then dialled again: the new connection
        // says nothing.
        limit.note(Some(stored.clone()));
        limit.note(None);
        assert_eq!(limit.now(), None);
        assert!(limit.heard());
        assert_eq!(limit.take_for_round(2), Some(stored.clone()));
        // The next round starts afresh.
        assert!(!limit.heard());
        assert!(!limit.unstored());
        assert_eq!(limit.take_for_round(2), None);
        // A round the server confirmed all of says what it says now.
        limit.note(Some(stored));
        limit.note(None);
        assert_eq!(limit.take_for_round(0), None);
    }
}
