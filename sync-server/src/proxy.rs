//! A device that reaches a node which does not serve its workspace is
//! proxied to the node that does: this node opens a WebSocket to the owner's
//! `/sync` with the device's own credential (the owner checks it again and
//! counts the connection against its limits), then passes binary messages
//! both ways, and the owner's limit notices down, until either side ends.
//! Only the owner's answer decides: a refusal there (revoked, full) reaches
//! the device as it was given, and so does what it says about the
//! workspace's limits.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as AxumMessage, WebSocket};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::http::now_ms;
use crate::liveness;

/// Marks a proxied request, so that a node which is not the owner either
/// (ownership moved meanwhile) refuses it instead of proxying again.
pub const PROXIED_BY: &str = "x-flowkeep-proxied-by";

/// How long the owner gets to answer.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

pub type Upstream = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// Why the owner could not be reached through this node.
pub enum DialFailure {
    /// The owner answered with a refusal: pass it on (with when to ask
    /// again, if it said).
    Refused {
        status: u16,
        body: String,
        retry_after: Option<tungstenite::http::HeaderValue>,
    },
    /// The owner did not answer (it died, or is unreachable from here).
    Unreachable(String),
}

/// The owner's connection, and its sentence about the workspace's limits
/// (`quota::LIMIT_HEADER`) for the device.
pub struct Dialed {
    pub owner: Upstream,
    pub limit: Option<tungstenite::http::HeaderValue>,
}

/// Opens the owner's `/sync` (at `owner_url`, `ws://host:port` or
/// `wss://…`, verified with `tls`, or the system's roots when None) for the
/// device whose credential is `credential`, asking for limit notices if
/// the device did.
pub async fn dial(
    owner_url: &str,
    credential: &str,
    this_node: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
    max_message_bytes: usize,
    notices: bool,
) -> Result<Dialed, DialFailure> {
    let url = format!("{}/sync", owner_url.trim_end_matches('/'));
    let unreachable = |e: &dyn std::fmt::Display| DialFailure::Unreachable(e.to_string());
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| unreachable(&e))?;
    let bearer = tungstenite::http::HeaderValue::from_str(&format!("Bearer {credential}"))
        .map_err(|e| unreachable(&e))?;
    req.headers_mut().insert("Authorization", bearer);
    if let Ok(v) = tungstenite::http::HeaderValue::from_str(this_node) {
        req.headers_mut().insert(PROXIED_BY, v);
    }
    if notices {
        req.headers_mut().insert(
            crate::quota::NOTICES_HEADER,
            tungstenite::http::HeaderValue::from_static("1"),
        );
    }
    let connector = if url.starts_with("wss://") {
        let config = match tls {
            Some(c) => c,
            None => Arc::new(crate::tls::client_config(None).map_err(|e| unreachable(&e))?),
        };
        Some(Connector::Rustls(config))
    } else {
        None
    };
    let config = tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(crate::http::READ_BUFFER_BYTES)
        .max_message_size(Some(max_message_bytes))
        .max_frame_size(Some(max_message_bytes));
    let dialing =
        tokio_tungstenite::connect_async_tls_with_config(req, Some(config), true, connector);
    match tokio::time::timeout(DIAL_TIMEOUT, dialing).await {
        Ok(Ok((owner, response))) => Ok(Dialed {
            owner,
            limit: response.headers().get(crate::quota::LIMIT_HEADER).cloned(),
        }),
        Ok(Err(tungstenite::Error::Http(r))) => Err(DialFailure::Refused {
            status: r.status().as_u16(),
            retry_after: r
                .headers()
                .get(tungstenite::http::header::RETRY_AFTER)
                .cloned(),
            body: r
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).trim().to_owned())
                .unwrap_or_default(),
        }),
        Ok(Err(e)) => Err(unreachable(&e)),
        Err(_) => Err(DialFailure::Unreachable(format!(
            "no answer within {} s",
            DIAL_TIMEOUT.as_secs()
        ))),
    }
}

/// Passes binary messages between the device and the owner, and the
/// owner's text messages (limit notices) down, until either side closes or
/// fails, then closes the other. Why a connection ends reaches the device
/// as if it were connected to the owner: the owner's close frame (a message
/// over its size limit, its storage failing) is passed on, and a message
/// over this node's own limit is refused with the same sentence.
///
/// The device's liveness is judged here, as the owner judges its own
/// devices (`liveness`): the owner's pings reach this node, whose client
/// answers them whether or not the device is there, so this node pings the
/// device every `every`, and ends the pipe when it is silent for three
/// pings or takes nothing; the owner then sees the connection close.
pub async fn pipe(device: WebSocket, owner: Upstream, max_message_bytes: usize, every: Duration) {
    let (to_device, mut from_device) = device.split();
    let (mut to_owner, mut from_owner) = owner.split();
    let (out, outgoing) = futures::channel::mpsc::channel::<AxumMessage>(0);
    let writer = tokio::spawn(liveness::write_out(outgoing, to_device, every));
    let heard = Arc::new(AtomicI64::new(now_ms()));
    let up = async {
        loop {
            let m = from_device.next().await;
            if matches!(m, Some(Ok(_))) {
                heard.store(now_ms(), Ordering::Relaxed);
            }
            match m {
                Some(Ok(AxumMessage::Binary(b))) => {
                    if to_owner.send(Message::Binary(b)).await.is_err() {
                        return None;
                    }
                }
                Some(Ok(AxumMessage::Close(_))) | None => return None,
                Some(Ok(_)) => continue,
                Some(Err(e)) => return crate::http::too_big(&e, max_message_bytes),
            }
        }
    };
    let mut down_out = out.clone();
    let down = async {
        loop {
            let m = match from_owner.next().await {
                Some(Ok(Message::Binary(b))) => AxumMessage::Binary(b),
                Some(Ok(Message::Text(t))) => AxumMessage::Text(t.as_str().into()),
                Some(Ok(Message::Close(frame))) => {
                    return frame.map(|f| {
                        AxumMessage::Close(Some(CloseFrame {
                            code: f.code.into(),
                            reason: f.reason.as_str().into(),
                        }))
                    })
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            };
            if down_out.send(m).await.is_err() {
                return None;
            }
        }
    };
    let last_word = tokio::select! {
        said = up => said,
        said = down => said,
        _ = liveness::pinger(out.clone(), heard.clone(), every) => None,
    };
    let mut out = out;
    if let Some(close) = last_word {
        let _ = out.send(close).await;
    }
    // The writer closes the device's side once every sender is gone (or
    // has already given up on it).
    drop(out);
    drop(down_out);
    let _ = to_owner.close().await;
    let _ = writer.await;
}
