//! A raw samod client of the sync server, as a JS automerge-repo client or
//! another device would be: dials with a device credential, creates and
//! reads documents.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{Automerge, ReadDoc, ROOT};
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use samod::{BackoffConfig, DialError, Dialer, DocumentId, Repo, Transport};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

/// Dials with `Authorization: Bearer`, giving up at once on 401.
pub struct TokenDialer {
    pub url: url::Url,
    pub token: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the server refused the token")]
pub struct Refused;

/// The upgrade request to `url` with `token` as the bearer.
fn bearer_request(
    url: &url::Url,
    token: &str,
) -> Result<tungstenite::handshake::client::Request, DialError<Refused>> {
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(DialError::transient)?;
    req.headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    Ok(req)
}

impl Dialer for TokenDialer {
    type Error = Refused;
    fn url(&self) -> url::Url {
        self.url.clone()
    }
    fn connect(&self) -> BoxFuture<'static, Result<Transport, DialError<Refused>>> {
        let (url, token) = (self.url.clone(), self.token.clone());
        Box::pin(async move {
            let req = bearer_request(&url, &token)?;
            match tokio_tungstenite::connect_async(req).await {
                Ok((ws, _)) => Ok(transport(ws)),
                Err(tungstenite::Error::Http(r)) if r.status() == 401 => {
                    Err(DialError::PermanentFailure(Refused))
                }
                Err(e) => Err(DialError::transient(e)),
            }
        })
    }
}

pub fn transport<S>(ws: tokio_tungstenite::WebSocketStream<S>) -> Transport
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sink, stream) = ws.split();
    let stream = binaries(stream);
    let sink = sink
        .with(|b: Vec<u8>| async move { Ok::<_, tungstenite::Error>(Message::Binary(b.into())) });
    Transport::new(Box::pin(stream), Box::pin(sink))
}

/// A device that stops reading: once `stall` is set, what the server sends
/// stays in the socket (a receive buffer of 4 KiB), which is never read
/// again, while the connection stays open and the repo can still write.
pub async fn connect_stalling(url: url::Url, token: &str) -> (Repo, Arc<AtomicBool>) {
    let stall = Arc::new(AtomicBool::new(false));
    let repo = Repo::build_tokio().load().await;
    let dialer = repo
        .dial(
            BackoffConfig {
                max_retries: Some(2),
                ..BackoffConfig::default()
            },
            Arc::new(StallingDialer {
                url,
                token: token.to_owned(),
                stall: stall.clone(),
            }),
        )
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), dialer.established())
        .await
        .unwrap()
        .unwrap();
    (repo, stall)
}

struct StallingDialer {
    url: url::Url,
    token: String,
    stall: Arc<AtomicBool>,
}

impl Dialer for StallingDialer {
    type Error = Refused;
    fn url(&self) -> url::Url {
        self.url.clone()
    }
    fn connect(&self) -> BoxFuture<'static, Result<Transport, DialError<Refused>>> {
        let (url, token, stall) = (self.url.clone(), self.token.clone(), self.stall.clone());
        Box::pin(async move {
            let req = bearer_request(&url, &token)?;
            let addr = format!(
                "{}:{}",
                url.host_str().unwrap_or_default(),
                url.port().unwrap_or(80)
            );
            let addr: std::net::SocketAddr = addr.parse().map_err(DialError::transient)?;
            let socket = tokio::net::TcpSocket::new_v4().map_err(DialError::transient)?;
            socket
                .set_recv_buffer_size(4096)
                .map_err(DialError::transient)?;
            let tcp = socket.connect(addr).await.map_err(DialError::transient)?;
            let (ws, _) = tokio_tungstenite::client_async(req, tcp)
                .await
                .map_err(DialError::transient)?;
            let (sink, stream) = ws.split();
            let mut stream = binaries(stream).boxed();
            // Stalled, it answers Pending without asking to be woken: the
            // socket is not read again.
            let stream = futures::stream::poll_fn(move |cx| {
                if stall.load(Ordering::SeqCst) {
                    return std::task::Poll::Pending;
                }
                stream.poll_next_unpin(cx)
            });
            let sink = sink.with(|b: Vec<u8>| async move {
                Ok::<_, tungstenite::Error>(Message::Binary(b.into()))
            });
            Ok(Transport::new(Box::pin(stream), Box::pin(sink)))
        })
    }
}

/// The binary messages of a socket, as samod reads them.
fn binaries<S>(
    stream: futures::stream::SplitStream<tokio_tungstenite::WebSocketStream<S>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, tungstenite::Error>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    stream.filter_map(|m| async move {
        match m {
            Ok(Message::Binary(b)) => Some(Ok(b.to_vec())),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        }
    })
}

/// A repo dialled to `url` with `token`, once the connection is up (or why
/// it is not, after two retries).
pub async fn connect(url: url::Url, token: &str) -> (Repo, Result<(), String>) {
    let repo = Repo::build_tokio().load().await;
    let backoff = BackoffConfig {
        max_retries: Some(2),
        ..BackoffConfig::default()
    };
    let dialer = repo
        .dial(
            backoff,
            Arc::new(TokenDialer {
                url,
                token: token.to_owned(),
            }),
        )
        .unwrap();
    let established = tokio::time::timeout(Duration::from_secs(10), dialer.established()).await;
    let result = match established {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    };
    (repo, result)
}

/// Dials the server from `repo` with `token` and waits (10 s at most)
/// until the connection is up.
pub async fn dial_connected(repo: &Repo, url: url::Url, token: &str, backoff: BackoffConfig) {
    let dialer = repo
        .dial(
            backoff,
            Arc::new(TokenDialer {
                url,
                token: token.to_owned(),
            }),
        )
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), dialer.established())
        .await
        .unwrap()
        .unwrap();
}

pub async fn create_doc(repo: &Repo, name: &str) -> DocumentId {
    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    tx.put(ROOT, "name", name).unwrap();
    tx.commit();
    let handle = repo.create(doc).await.unwrap();
    handle.document_id().clone()
}

pub async fn read_name(repo: &Repo, id: &DocumentId) -> Option<String> {
    let found = tokio::time::timeout(Duration::from_secs(10), repo.find(id.clone()))
        .await
        .ok()?
        .ok()??;
    found.with_document(|d| {
        d.get(ROOT, "name")
            .ok()
            .flatten()
            .map(|(v, _)| v.as_str().unwrap_or_default().to_owned())
    })
}

/// A dial the server turns away: its status, whether it said when to ask
/// again (`Retry-After`), and its sentence; `None` if it let the dial in.
pub async fn turned_away(url: &url::Url, token: &str) -> Option<(u16, bool, String)> {
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tungstenite::Error::Http(r)) => Some((
            r.status().as_u16(),
            r.headers().contains_key("retry-after"),
            String::from_utf8_lossy(r.body().as_deref().unwrap_or_default()).into_owned(),
        )),
        Err(e) => panic!("the dial failed: {e}"),
        Ok(_) => None,
    }
}
