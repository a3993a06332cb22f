//! HTTP: `/sync` (a device credential checked before the WebSocket
//! upgrade), `/enrol` (the workspace token traded for a device credential),
//! `/devices` (the workspace's devices, for a device), `/uploads` (which
//! device brought each of some changes, see `uploads.rs`), `/healthz`,
//! `/readyz`, `/metrics` (totals only, see `metrics.rs`).
//!
//! `/enrol`, `/devices` and `/uploads` answer with one JSON text message over a
//! WebSocket, so every call a device makes rides the same connection path
//! (TLS, proxies) as sync itself and needs no second HTTP client.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{
    rejection::WebSocketUpgradeRejection, Message as WsMessage, WebSocketUpgrade,
};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use futures::{SinkExt, StreamExt};

use crate::admission::{Admission, Permit};
use crate::db::Credential;
use crate::devices::Connected;
use crate::metrics::Metrics;
use crate::{
    asks, liveness, proxy, quota, storage, token, uploads as uploaded, Db, Serve, Workspaces,
};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest WebSocket message accepted; a larger one closes that
    /// connection only.
    pub max_message_bytes: usize,
    /// Most bytes queued for one slow connection before writes fail and it
    /// is closed: one largest message and a little more (`for_messages`).
    pub max_write_buffer_bytes: usize,
    /// Most sync connections open at once, in total and to one workspace.
    pub max_connections: usize,
    pub max_connections_per_workspace: usize,
    /// How often the server pings a connection; one that has sent nothing
    /// (not even a pong) for three of these is closed, so a device that
    /// vanished (suspended laptop, dropped network) frees its place.
    pub ping_interval: std::time::Duration,
}

/// Messages up to this size are read for their changes on the connection's
/// task; larger ones (a whole document) on a blocking thread.
const INLINE_DECODE_BYTES: usize = 64 << 10;

/// Each connection's read buffer, allocated at its size and zero-filled
/// on the first read (tungstenite reads into all of it). The default,
/// 128 KiB, made 1,000 idle devices cost 125 MiB; messages are mostly a
/// few hundred bytes, and a larger one grows the buffer while it is read.
pub const READ_BUFFER_BYTES: usize = 8 << 10;

/// Room beyond one largest message in a connection's write buffer (the
/// buffer must hold a whole message, plus what is being flushed).
const WRITE_SLACK: usize = 1 << 20;

impl Limits {
    /// Limits for messages up to `max_message_bytes`, the write buffer
    /// bounded to match.
    pub fn for_messages(max_message_bytes: usize) -> Limits {
        Limits {
            max_message_bytes,
            max_write_buffer_bytes: max_message_bytes + WRITE_SLACK,
            ..Limits::default()
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 16 << 20,
            max_write_buffer_bytes: (16 << 20) + WRITE_SLACK,
            max_connections: 10_000,
            max_connections_per_workspace: 1_000,
            ping_interval: std::time::Duration::from_secs(15),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub db: Arc<Db>,
    pub workspaces: Arc<Workspaces>,
    pub limits: Limits,
    /// False while starting and once shutdown began.
    pub ready: Arc<AtomicBool>,
    /// Open connections by device, to end them when it is revoked.
    pub connected: Arc<Connected>,
    /// The connection limits' count of open connections.
    pub admission: Arc<Admission>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(db: Arc<Db>, workspaces: Arc<Workspaces>, limits: Limits) -> AppState {
        let metrics = workspaces.metrics().clone();
        AppState {
            db,
            workspaces,
            limits,
            ready: Arc::new(AtomicBool::new(false)),
            connected: Connected::new(),
            admission: Admission::new(
                limits.max_connections,
                limits.max_connections_per_workspace,
                metrics.clone(),
            ),
            metrics,
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/sync", get(sync))
        .route("/enrol", get(enrol))
        .route("/devices", get(devices))
        .route("/uploads", get(uploads))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// How long a client has to send a request's headers: a slow or stalled
/// one (never authenticated) would otherwise hold its connection, and a
/// file descriptor, for as long as it likes. It applies from the moment
/// the connection is accepted, or its TLS handshake ends (which has 10 s
/// of its own; hyper's header timeout starts only at the first byte, so a
/// client that sends nothing at all was kept for good), and again while a
/// kept-alive connection waits for its next request.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves until `shutdown` resolves; the caller then stops the workspaces.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let server = axum_server::from_tcp(listener.into_std()?)?;
    configured(server, shutdown)
        .serve(router(state).into_make_service())
        .await
}

/// `serve` over TLS: the same router behind rustls.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    state: AppState,
    config: Arc<rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let server = axum_server::from_tcp_rustls(
        listener.into_std()?,
        axum_server::tls_rustls::RustlsConfig::from_config(config),
    )?;
    configured(server, shutdown)
        .serve(router(state).into_make_service())
        .await
}

/// The one configuration of both: stops with `shutdown`, logs a failing
/// `accept`, and gives a client `HEADER_READ_TIMEOUT` for each request's
/// headers, the first one included.
fn configured<A>(
    server: axum_server::Server<std::net::SocketAddr, A>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> axum_server::Server<std::net::SocketAddr, A> {
    let mut server = server
        .handle(stopping(shutdown))
        .accept_error_handler(accept_failed)
        .first_request_timeout(HEADER_READ_TIMEOUT);
    server
        .http_builder()
        .http1()
        .header_read_timeout(Some(HEADER_READ_TIMEOUT));
    server
}

/// A failed `accept` (no address yet: the listener's, such as `EMFILE`)
/// is logged; one with an address is a single client's failed TLS
/// handshake, which is that client's business.
fn accept_failed(addr: Option<&std::net::SocketAddr>, error: &std::io::Error) {
    match addr {
        None => crate::open_files::say_accept_failed(error),
        Some(a) => {
            tracing::debug!(peer = %a, error = %error, "connection failed before its request")
        }
    }
}

/// A handle that stops the server once `shutdown` resolves.
fn stopping(
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> axum_server::Handle<std::net::SocketAddr> {
    let handle = axum_server::Handle::new();
    let on_signal = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        // Upgraded (WebSocket) connections are the repos' to end; plain
        // requests get a moment to finish.
        on_signal.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    handle
}

/// 200 while this node can serve devices: not stopping, and its database
/// answers and takes writes; 503 with the reason otherwise.
async fn ready(State(state): State<AppState>) -> Response {
    if !state.ready.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: starting or stopping\n",
        )
            .into_response();
    }
    let db = state.db.clone();
    let writable = tokio::task::spawn_blocking(move || db.writable())
        .await
        .unwrap_or_else(|_| Err("the database check did not finish".into()));
    match writable {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => {
            tracing::warn!(%why, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            )
                .into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let loaded = state.workspaces.loaded().await;
    state
        .metrics
        .workspaces_loaded
        .set(i64::try_from(loaded).unwrap_or(i64::MAX));
    if let Some(heap) = crate::memory::heap() {
        let m = &state.metrics;
        m.heap_allocated
            .set(i64::try_from(heap.allocated).unwrap_or(i64::MAX));
        m.heap_resident
            .set(i64::try_from(heap.resident).unwrap_or(i64::MAX));
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// The token from `Authorization: Bearer <t>`, else from `?token=<t>`
/// (browsers cannot set headers on WebSockets).
fn presented_token(headers: &HeaderMap, query: &HashMap<String, String>) -> Option<String> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_owned());
    bearer
        .or_else(|| query.get("token").cloned())
        .filter(|t| !t.is_empty())
}

fn refuse(status: StatusCode, why: impl Into<String>) -> Response {
    let mut why = why.into();
    why.push('\n');
    (status, why).into_response()
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What a device is told when the server's own records (devices, tokens)
/// cannot be read or written.
const STORAGE_UNAVAILABLE: &str =
    "the server cannot reach its storage right now; try again shortly";

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::Error> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "storage error");
            Err(refuse(StatusCode::SERVICE_UNAVAILABLE, STORAGE_UNAVAILABLE))
        }
        Err(_) => Err(refuse(StatusCode::SERVICE_UNAVAILABLE, STORAGE_UNAVAILABLE)),
    }
}

/// The device behind a presented credential, or the one-sentence refusal
/// the client shows its user.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<Credential, Response> {
    let Some(presented) = presented_token(headers, query) else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "missing device credential: send Authorization: Bearer <credential>",
        ));
    };
    let db = state.db.clone();
    let hash = token::hash(&presented);
    let found = blocking(move || {
        Ok((
            db.credential(&hash)?,
            db.workspace_by_token_hash(&hash)?.is_some(),
        ))
    })
    .await?;
    match found {
        (Some(c), _) if c.revoked_at.is_some() => Err(refuse(
            StatusCode::FORBIDDEN,
            format!(
                "this device ({}) was revoked in workspace {}: it can no longer sync; its local data is kept",
                c.device_id, c.workspace.name
            ),
        )),
        (Some(c), _) => Ok(c),
        (None, true) => Err(refuse(
            StatusCode::UNAUTHORIZED,
            "this is the workspace's enrolment token, not a device credential: enrol the device first \
             (`flowkeep sync join`, or `flowkeep-sync-server device add` for another client)",
        )),
        (None, false) => Err(refuse(
            StatusCode::UNAUTHORIZED,
            "unknown device credential: it was replaced by a newer enrolment of this device, or the server's data \
             was reset; join again with the workspace token",
        )),
    }
}

/// A device's request to upgrade: who it is, or the refusal it gets.
async fn authenticated_upgrade(
    state: &AppState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<(Credential, WebSocketUpgrade), Response> {
    let device = authenticate(state, headers, query).await?;
    let ws = ws.map_err(IntoResponse::into_response)?;
    Ok((device, ws))
}

async fn sync(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let (device, ws) = match authenticated_upgrade(&state, &headers, &query, ws).await {
        Ok(both) => both,
        Err(refusal) => return refusal,
    };
    if !state.ready.load(Ordering::SeqCst) {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    // Registered before anything that can take a while (the workspace's
    // load, its lease): a revocation meanwhile is not missed (see below).
    let mut revoked = state
        .connected
        .register(&device.workspace.id, &device.device_id);
    // Held by the connection's inbound stream: its place is freed when
    // the connection ends.
    let mut permit = match state.admission.admit(
        &device.workspace.id,
        &device.workspace.name,
        &device.device_id,
    ) {
        Ok(p) => p,
        Err(why) => return refuse(StatusCode::TOO_MANY_REQUESTS, why),
    };
    let (acceptor, usage, failure) = match state
        .workspaces
        .serve(&device.workspace.id, &device.workspace.name)
        .await
    {
        Ok(Serve::Here {
            acceptor,
            usage,
            failure,
        }) => (acceptor, usage, failure),
        Ok(Serve::Elsewhere { url }) => {
            return proxy_to_owner(&state, &device, &headers, &query, ws, permit, &url).await
        }
        Err(not_now) => {
            let mut refusal = refuse(StatusCode::SERVICE_UNAVAILABLE, not_now.why);
            let secs = not_now.retry_after.as_secs_f64().ceil().max(1.0) as u64;
            refusal
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
            return refusal;
        }
    };
    let (db, ws_id, dev) = (
        state.db.clone(),
        device.workspace.id.clone(),
        device.device_id.clone(),
    );
    // The credential read again once the workspace is served: revoked (or
    // replaced) while it loaded, on this node or another, it is refused now
    // rather than served until the device leaves.
    let hash = presented_token(&headers, &query).map(|t| token::hash(&t));
    let still = blocking(move || {
        db.seen(&ws_id, &dev, now_ms())?;
        match hash {
            Some(h) => db.credential(&h),
            None => Ok(None),
        }
    })
    .await;
    match still {
        Err(refusal) => return refusal,
        Ok(Some(c)) if c.revoked_at.is_none() => {}
        Ok(_) => {
            return refuse(
                StatusCode::FORBIDDEN,
                format!(
                    "this device ({}) was revoked in workspace {} (or enrolled again) while it connected",
                    device.device_id, device.workspace.name
                ),
            )
        }
    }
    let limits = state.limits;
    let (received, sent) = (state.metrics.clone(), state.metrics.clone());
    let (db, ws_id, dev) = (
        state.db.clone(),
        device.workspace.id.clone(),
        device.device_id.clone(),
    );
    // The connection is told where the workspace stands now (a header) and,
    // if the device asked, whenever that changes while it is connected.
    let room = usage.watch();
    let full = room.borrow().sentence().map(str::to_owned);
    // At its byte limit the workspace takes no change (samod is told the
    // device may only read), so none is recorded as uploaded either: the
    // `uploads` table grows only with what the workspace stores.
    let takes_changes = usage.watch();
    let room = headers.contains_key(quota::NOTICES_HEADER).then_some(room);
    let mut response = ws
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes)
        .max_write_buffer_size(limits.max_write_buffer_bytes)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| async move {
            permit.connected();
            let (sink, stream) = socket.split();
            // samod and the refusal of a too large message both write to the
            // socket: through a channel, forwarded by one task (which ends,
            // closing the socket, once both are gone).
            let (out, outgoing) = futures::channel::mpsc::channel::<WsMessage>(0);
            tokio::spawn(liveness::write_out(outgoing, sink, limits.ping_interval));
            // Closes the connection with why (a message too big, too many
            // asks for documents the workspace does not hold).
            let refusing = out.clone();
            let max_message_bytes = limits.max_message_bytes;
            let unknown_asks = Arc::new(std::sync::Mutex::new(asks::UnknownAsks::for_workspace(
                usage.max_docs(),
            )));
            let unknown_sends = Arc::new(std::sync::Mutex::new(asks::UnknownSends::for_workspace(
                usage.max_docs(),
            )));
            // Anything the device sends (a pong too) says it is there.
            let heard = Arc::new(AtomicI64::new(now_ms()));
            let silent = liveness::pinger(out.clone(), heard.clone(), limits.ping_interval);
            let silent = futures::future::select(
                Box::pin(silent),
                Box::pin(tell_limits(out.clone(), room)),
            );
            // The workspace's storage failed: what the repo holds may not be
            // stored, so the device is told why and its connection ends
            // (`storage.rs`); it sends its changes again next time.
            let mut closing = out.clone();
            let stored = failure.clone();
            let failed = async move {
                failure.wait().await;
                let _ = closing.send(close_with(1011, storage::FAILED_REASON)).await;
            };
            // The inbound side ends when the device is revoked, has gone
            // silent, or the storage failed; samod then drops the connection
            // and the socket closes.
            let mut telling = out.clone();
            let revoked = async move {
                let _ = revoked.wait_for(|r| *r).await;
                // Told why now, not only when it dials again (the id and
                // workspace it hears then; a close reason holds 123 bytes).
                let _ = telling.send(close_with(1008, REVOKED_REASON)).await;
            };
            let ended = async move {
                tokio::select! {
                    _ = revoked => {}
                    _ = silent => {}
                    _ = failed => {}
                }
            };
            let stream = stream
                .take_until(Box::pin(ended))
                .filter_map(move |m| {
                    let _open = &permit;
                    if m.is_ok() {
                        heard.store(now_ms(), Ordering::Relaxed);
                    }
                    let metrics = received.clone();
                    let stores = !matches!(*takes_changes.borrow(), quota::Room::Full(_));
                    let (db, ws_id, dev) = (db.clone(), ws_id.clone(), dev.clone());
                    let mut refusing = refusing.clone();
                    let usage = usage.clone();
                    let unknown_asks = unknown_asks.clone();
                    let unknown_sends = unknown_sends.clone();
                    async move {
                        match m {
                            Ok(axum::extract::ws::Message::Binary(b)) => {
                                metrics.messages_received.inc();
                                metrics.bytes_received.inc_by(b.len() as u64);
                                // Recorded before samod applies the message,
                                // so any device that receives a change can
                                // ask who brought it. Most messages carry no
                                // change and cost a look at their header.
                                let frame = b.to_vec();
                                let brought = if !stores {
                                    None
                                } else if frame.len() <= INLINE_DECODE_BYTES {
                                    uploaded::brought(&frame)
                                } else {
                                    let big = frame.clone();
                                    tokio::task::spawn_blocking(move || uploaded::brought(&big))
                                        .await
                                        .unwrap_or_default()
                                };
                                // Naming documents nobody has costs the
                                // server memory until the connection ends
                                // (`asks.rs`).
                                let named = match &brought {
                                    Some(b) => Some(uploaded::Named::Sent(b.document.clone())),
                                    None => uploaded::named(&frame),
                                };
                                match named {
                                    Some(uploaded::Named::Asked(doc)) if !usage.knows(&doc) => {
                                        let within = unknown_asks
                                            .lock()
                                            .unwrap_or_else(|p| p.into_inner())
                                            .note(&doc);
                                        if !within {
                                            tracing::info!(workspace = ws_id.as_str(), device = dev.as_str(), "connection closed: {}", asks::TOO_MANY_REASON);
                                            metrics.connections_cut_off.inc();
                                            let _ = refusing.send(close_with(1008, asks::TOO_MANY_REASON)).await;
                                            return Some(Err(axum::Error::new(std::io::Error::other(asks::TOO_MANY_REASON))));
                                        }
                                    }
                                    Some(uploaded::Named::Sent(doc)) if !usage.holds(&doc) => {
                                        let verdict = unknown_sends
                                            .lock()
                                            .unwrap_or_else(|p| p.into_inner())
                                            .note(&doc, Instant::now(), |d| usage.forget_stored(d));
                                        if verdict != asks::Verdict::Passes {
                                            if verdict == asks::Verdict::DroppedFirst {
                                                tracing::info!(workspace = ws_id.as_str(), device = dev.as_str(), "{}", asks::DROPPING);
                                            }
                                            metrics.messages_dropped.inc();
                                            return None;
                                        }
                                    }
                                    _ => {}
                                }
                                let mut changes = Vec::new();
                                if let Some(b) = brought {
                                    // Changes that cannot be read here cannot
                                    // be vouched for: they go no further.
                                    if !b.complete {
                                        tracing::debug!(workspace = ws_id.as_str(), device = dev.as_str(), "a sync message whose changes do not read: dropped");
                                        return None;
                                    }
                                    // A new document counts against the limit
                                    // once changes to it arrive; past the limit
                                    // the message goes no further (as the share
                                    // policy would refuse it), and nothing of it
                                    // is recorded.
                                    if !usage.admit(&b.document) {
                                        return None;
                                    }
                                    changes = b
                                        .changes
                                        .into_iter()
                                        .map(|h| (b.document.clone(), h))
                                        .collect();
                                }
                                if !changes.is_empty() {
                                    let recorded = tokio::task::spawn_blocking(move || {
                                        db.record_uploads(&ws_id, &dev, &changes, now_ms())
                                            .map_err(|e| (ws_id, e))
                                    })
                                    .await;
                                    if let Ok(Err((ws_id, e))) = recorded {
                                        tracing::warn!(workspace = ws_id.as_str(), error = %e, "cannot record who uploaded changes");
                                    }
                                }
                                Some(Ok(frame))
                            }
                            Ok(_) => None,
                            Err(e) => {
                                if let Some(close) = too_big(&e, max_message_bytes) {
                                    metrics.connections_cut_off.inc();
                                    let _ = refusing.send(close).await;
                                }
                                Some(Err(e))
                            }
                        }
                    }
                });
            // samod sends a reply once the writes of what it advertises
            // have returned, and a failed write returns as if it had
            // succeeded (`storage.rs`); it is marked failed before it
            // returns, so from then on nothing more is sent: a device never
            // sees a change the server did not store among its heads.
            let sink = out.with_flat_map(move |b: Vec<u8>| {
                let frame = (!stored.failed()).then(|| {
                    sent.messages_sent.inc();
                    sent.bytes_sent.inc_by(b.len() as u64);
                    WsMessage::Binary(b.into())
                });
                futures::stream::iter(frame.map(Ok))
            });
            let transport = samod::Transport::new(Box::pin(stream), Box::pin(sink));
            let ws_id = device.workspace.id.as_str();
            // "device connected" / "device disconnected" are the permit's.
            if acceptor.accept(transport).is_err() {
                tracing::warn!(workspace = ws_id, "repo stopped; connection dropped");
            }
        });
    // The device still syncs what the workspace has room for; it is told
    // what not, in one sentence.
    if let Some(why) = full.and_then(|w| axum::http::HeaderValue::from_str(&w).ok()) {
        response.headers_mut().insert(quota::LIMIT_HEADER, why);
    }
    response
}

/// Tells a device that asked for notices (`quota::NOTICES_HEADER`) when its
/// workspace reaches a limit, or has room again, while it is connected: the
/// header on its upgrade said only how things stood then, and a first sync
/// that fills the workspace would otherwise end with documents the server
/// did not take and no word why. Ends only once the device cannot be told.
async fn tell_limits(
    mut out: futures::channel::mpsc::Sender<WsMessage>,
    room: Option<tokio::sync::watch::Receiver<quota::Room>>,
) {
    if let Some(mut room) = room {
        // The sentence changes with every byte stored while the workspace
        // is full; a device hears only when what it may do changes.
        let mut told = std::mem::discriminant(&*room.borrow());
        while room.changed().await.is_ok() {
            let (kind, text) = {
                let now = room.borrow_and_update();
                (std::mem::discriminant(&*now), quota::notice(&now))
            };
            if kind == told {
                continue;
            }
            told = kind;
            if out.send(WsMessage::Text(text.into())).await.is_err() {
                return;
            }
        }
    }
    // No notices asked for, or the workspace's repo stopped (its connections
    // end with it).
    std::future::pending().await
}

/// The close frame that tells a device its message was over the limit, if
/// `e` is that (tungstenite's capacity error, known by its text: axum hides
/// the type).
pub(crate) fn too_big(e: &axum::Error, max_message_bytes: usize) -> Option<WsMessage> {
    let text = e.to_string();
    if !text.contains("Message too long") {
        return None;
    }
    let reason = format!(
        "a change is larger than this server accepts ({}, --max-message-bytes)",
        quota::size(max_message_bytes as u64)
    );
    Some(close_with(1009, &reason))
}

/// A close frame with `code` and `reason`, cut to the 123 bytes a close
/// frame has room for (at a character boundary): a longer one is refused by
/// the client's WebSocket library, and the reason lost.
fn close_with(code: u16, reason: &str) -> WsMessage {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    WsMessage::Close(Some(axum::extract::ws::CloseFrame {
        code,
        reason: reason[..end].into(),
    }))
}

/// Why a revoked device's open connection closes.
const REVOKED_REASON: &str =
    "this device was revoked in this workspace: it can no longer sync; its local data is kept";

/// Hands a device's connection to the node that serves its workspace.
async fn proxy_to_owner(
    state: &AppState,
    device: &Credential,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    ws: WebSocketUpgrade,
    permit: crate::admission::Permit,
    owner_url: &str,
) -> Response {
    let moving = || {
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "workspace {} is moving between sync server nodes; try again in a few seconds",
                device.workspace.name
            ),
        )
    };
    // Proxied already, or no owner to name: never a second hop.
    if headers.contains_key(proxy::PROXIED_BY) || owner_url.is_empty() {
        return moving();
    }
    let credential = presented_token(headers, query).unwrap_or_default();
    let node = state.workspaces.node();
    let owner = match proxy::dial(
        owner_url,
        &credential,
        &node.id,
        node.peer_tls.clone(),
        state.limits.max_message_bytes,
        headers.contains_key(quota::NOTICES_HEADER),
    )
    .await
    {
        Ok(dialed) => dialed,
        Err(proxy::DialFailure::Refused {
            status,
            body,
            retry_after,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut refusal = refuse(status, body);
            if let Some(after) = retry_after {
                refusal
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, after);
            }
            return refusal;
        }
        Err(proxy::DialFailure::Unreachable(why)) => {
            tracing::warn!(
                workspace = device.workspace.id.as_str(),
                owner = owner_url,
                error = why.as_str(),
                "the node serving this workspace does not answer"
            );
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the sync server node serving workspace {} does not answer; another node takes it over \
                     within {} s: try again then",
                    device.workspace.name,
                    node.lease.as_secs()
                ),
            );
        }
    };
    let metrics = state.metrics.clone();
    let limits = state.limits;
    let proxy::Dialed { owner, limit } = owner;
    let mut response = ws
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes)
        .max_write_buffer_size(limits.max_write_buffer_bytes)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| async move {
            let mut permit = permit;
            permit.connected();
            metrics.connections_proxied.inc();
            proxy::pipe(
                socket,
                owner,
                limits.max_message_bytes,
                limits.ping_interval,
            )
            .await;
            metrics.connections_proxied.dec();
            drop(permit);
        });
    if let Some(why) = limit {
        response.headers_mut().insert(quota::LIMIT_HEADER, why);
    }
    response
}

/// A device id or name as a client sends it: printable, bounded; else why not.
fn check_label(what: &str, value: Option<&String>, max: usize) -> Result<String, String> {
    let v = value.map(|v| v.trim()).unwrap_or_default();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(format!(
            "{what} is required: 1 to {max} printable characters"
        ));
    }
    Ok(v.to_owned())
}

/// Trades the workspace token for a credential of the device named in
/// `?device=<id>&name=<name>`.
async fn enrol(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Some(presented) = presented_token(&headers, &query) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "missing workspace token: send Authorization: Bearer <token>",
        );
    };
    // The token first: whoever does not hold one learns nothing, not even
    // which parameters are wanted.
    let db = state.db.clone();
    let hash = token::hash(&presented);
    let workspace = {
        let db = db.clone();
        match blocking(move || db.workspace_by_token_hash(&hash)).await {
            Ok(Some(w)) => w,
            Ok(None) => {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "unknown workspace token: check it, or ask the server's operator for the current one",
                )
            }
            Err(refusal) => return refusal,
        }
    };
    let device_id = match check_label("device", query.get("device"), 64) {
        Ok(d)
            if d.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
        {
            d
        }
        Ok(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "device must be letters, digits, '-', '_' or '.'",
            )
        }
        Err(why) => return refuse(StatusCode::BAD_REQUEST, why),
    };
    let name = match check_label("name", query.get("name"), 100) {
        Ok(n) => n,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, why),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let permit = match admit(&state, &workspace, &device_id) {
        Ok(p) => p,
        Err(refusal) => return *refusal,
    };
    if query.get("proof").map(String::as_str) == Some("1") {
        // The device sends the credential it chose (kept on its disk before
        // it asked, so a retry after a crash is the same enrolment) and the
        // one it had, if any: only that replaces its id's credential.
        return ws
            .max_message_size(64 << 10)
            .on_upgrade(move |mut socket| async move {
                let _permit = permit;
                let asked =
                    tokio::time::timeout(std::time::Duration::from_secs(10), socket.recv()).await;
                let body = match asked {
                    Ok(Some(Ok(WsMessage::Text(t)))) => match enrol_proof(t.as_str()) {
                        Ok((credential, previous)) => {
                            let (w, dev) = (workspace.clone(), device_id.clone());
                            let enrolled = tokio::task::spawn_blocking(move || {
                                db.enrol(
                                    &w.id,
                                    &dev,
                                    &name,
                                    &token::hash(&credential),
                                    previous.as_deref().map(token::hash).as_deref(),
                                    now_ms(),
                                )
                                .map(|()| credential)
                            })
                            .await;
                            match enrolled {
                                Ok(Ok(credential)) => enrolled_body(&workspace, &device_id, &credential),
                                Ok(Err(e)) => serde_json::json!({ "error": enrol_refusal(&e, &workspace.name) }),
                                Err(_) => serde_json::json!({ "error": STORAGE_UNAVAILABLE }),
                            }
                        }
                        Err(why) => serde_json::json!({ "error": why }),
                    },
                    _ => serde_json::json!({
                        "error": "send one text message: {\"credential\": \"fkd_…\", \"previous\": \"fkd_…\" or null}"
                    }),
                };
                let _ = socket.send(WsMessage::Text(body.to_string().into())).await;
                let _ = socket.close().await;
            });
    }
    // A client that shows nothing (an older one) enrols a device id not
    // enrolled yet, with a credential made here.
    let credential = token::generate_device();
    let credential_hash = token::hash(&credential);
    let (w, dev) = (workspace.clone(), device_id.clone());
    let enrolled = tokio::task::spawn_blocking(move || {
        db.enrol(&w.id, &dev, &name, &credential_hash, None, now_ms())
    })
    .await;
    match enrolled {
        Ok(Ok(())) => {}
        Ok(Err(e @ crate::Error::Revoked(_))) => {
            return refuse(StatusCode::FORBIDDEN, enrol_refusal(&e, &workspace.name))
        }
        Ok(Err(e @ crate::Error::Enrolled(_))) => {
            return refuse(StatusCode::CONFLICT, enrol_refusal(&e, &workspace.name))
        }
        _ => return refuse(StatusCode::SERVICE_UNAVAILABLE, STORAGE_UNAVAILABLE),
    }
    reply_once(
        ws,
        enrolled_body(&workspace, &device_id, &credential),
        permit,
    )
}

/// A place under the connection limits for one of the short WebSockets
/// (`/enrol`, `/devices`, `/uploads`), held until it closes: each is an
/// open file like a device's sync connection, and a device that opened
/// them without end would otherwise take the server's open files past
/// what `--max-connections` leaves room for.
fn admit(
    state: &AppState,
    workspace: &crate::db::Workspace,
    device_id: &str,
) -> Result<Permit, Box<Response>> {
    state
        .admission
        .admit(&workspace.id, &workspace.name, device_id)
        .map_err(|why| Box::new(refuse(StatusCode::TOO_MANY_REQUESTS, why)))
}

/// What an enrolled device is told (and the log's line).
fn enrolled_body(
    workspace: &crate::db::Workspace,
    device_id: &str,
    credential: &str,
) -> serde_json::Value {
    tracing::info!(
        workspace = workspace.id.as_str(),
        device = device_id,
        "device enrolled"
    );
    serde_json::json!({
        "credential": credential,
        "workspace": workspace.name,
        "device_id": device_id,
    })
}

/// Why an enrolment was refused, in one sentence for the device's user.
fn enrol_refusal(e: &crate::Error, workspace: &str) -> String {
    match e {
        crate::Error::Revoked(d) => {
            format!("device {d} was revoked in this workspace and cannot enrol again")
        }
        crate::Error::Enrolled(d) => format!(
            "device {d} is already enrolled in workspace {workspace} with another credential; \
             a device replaces its own by showing it, and the operator can revoke the id \
             (`flowkeep-sync-server device revoke`)"
        ),
        _ => STORAGE_UNAVAILABLE.to_owned(),
    }
}

/// The credential a device chose and the one it had, from its enrolment
/// message.
fn enrol_proof(text: &str) -> Result<(String, Option<String>), String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Proof {
        credential: String,
        #[serde(default)]
        previous: Option<String>,
    }
    let p: Proof = serde_json::from_str(text).map_err(|e| format!("enrolment: {e}"))?;
    let well_formed = |c: &str| {
        c.strip_prefix(token::DEVICE_PREFIX).is_some_and(|rest| {
            (32..=128).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        })
    };
    if !well_formed(&p.credential) {
        return Err("credential: fkd_ and 32 to 128 letters or digits".into());
    }
    Ok((p.credential, p.previous.filter(|c| well_formed(c))))
}

/// The workspace's devices, for one of its devices.
async fn devices(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let (device, ws) = match authenticated_upgrade(&state, &headers, &query, ws).await {
        Ok(both) => both,
        Err(refusal) => return refusal,
    };
    let permit = match admit(&state, &device.workspace, &device.device_id) {
        Ok(p) => p,
        Err(refusal) => return *refusal,
    };
    let db = state.db.clone();
    let ws_id = device.workspace.id.clone();
    let list = match blocking(move || db.devices(&ws_id)).await {
        Ok(l) => l,
        Err(refusal) => return refusal,
    };
    reply_once(
        ws,
        serde_json::json!({"workspace": device.workspace.name, "devices": list}),
        permit,
    )
}

/// Which device uploaded each of the changes a device asks about (one text
/// message `{"changes": [hash, …]}`), in its own workspace only:
/// `{"uploads": {hash: device id}}`, changes the server never recorded left
/// out.
async fn uploads(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let (device, ws) = match authenticated_upgrade(&state, &headers, &query, ws).await {
        Ok(both) => both,
        Err(refusal) => return refusal,
    };
    let permit = match admit(&state, &device.workspace, &device.device_id) {
        Ok(p) => p,
        Err(refusal) => return *refusal,
    };
    let db = state.db.clone();
    ws.max_message_size(state.limits.max_message_bytes)
        .on_upgrade(move |mut socket| async move {
            let _permit = permit;
            let asked = tokio::time::timeout(std::time::Duration::from_secs(10), socket.recv()).await;
            let body = match asked {
                Ok(Some(Ok(axum::extract::ws::Message::Text(t)))) => {
                    match asked_hashes(t.as_str()) {
                        Ok(hashes) => {
                            let ws_id = device.workspace.id.clone();
                            match tokio::task::spawn_blocking(move || db.uploaders(&ws_id, &hashes))
                                .await
                            {
                                Ok(Ok(found)) => serde_json::json!({
                                    "uploads": found
                                        .into_iter()
                                        .map(|(h, d)| (h, serde_json::Value::String(d)))
                                        .collect::<serde_json::Map<_, _>>()
                                }),
                                _ => serde_json::json!({"error": "storage unavailable"}),
                            }
                        }
                        Err(why) => serde_json::json!({ "error": why }),
                    }
                }
                _ => serde_json::json!({"error": "send one text message: {\"changes\": [change hash, …]}"}),
            };
            let _ = socket
                .send(axum::extract::ws::Message::Text(body.to_string().into()))
                .await;
            let _ = socket.close().await;
        })
}

/// The change hashes in an `/uploads` request, or why it is refused. Each
/// is checked as it is read, so a request of millions of empty or
/// malformed entries is refused at the first, not held in memory first.
fn asked_hashes(text: &str) -> Result<Vec<String>, String> {
    use serde::de::{self, Deserializer, SeqAccess, Visitor};

    struct Hashes(Vec<String>);
    impl<'de> serde::Deserialize<'de> for Hashes {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_seq(Each)
        }
    }
    struct Each;
    impl<'de> Visitor<'de> for Each {
        type Value = Hashes;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of change hashes")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Hashes, A::Error> {
            let mut out = Vec::new();
            while let Some(h) = seq.next_element::<std::borrow::Cow<'de, str>>()? {
                if !uploaded::is_change_hash(&h) {
                    return Err(de::Error::custom(format!(
                        "\"{}\" is not a change hash (64 lowercase hex digits)",
                        h.chars().take(80).collect::<String>()
                    )));
                }
                if out.len() == uploaded::MAX_ASKED {
                    return Err(de::Error::custom(format!(
                        "at most {} a request",
                        uploaded::MAX_ASKED
                    )));
                }
                out.push(h.into_owned());
            }
            Ok(Hashes(out))
        }
    }
    #[derive(serde::Deserialize)]
    struct Asked {
        changes: Hashes,
    }
    let asked: Asked = serde_json::from_str(text).map_err(|e| format!("changes: {e}"))?;
    Ok(asked.changes.0)
}

/// Upgrades, sends `body` as one text message, closes.
fn reply_once(ws: WebSocketUpgrade, body: serde_json::Value, permit: Permit) -> Response {
    ws.on_upgrade(move |mut socket| async move {
        let _permit = permit;
        let text = body.to_string();
        let _ = socket
            .send(axum::extract::ws::Message::Text(text.into()))
            .await;
        let _ = socket.close().await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_close_reason_fits_a_close_frame() {
        let WsMessage::Close(Some(frame)) = close_with(1008, &"é".repeat(100)) else {
            panic!("not a close frame")
        };
        assert!(frame.reason.len() <= 123, "{}", frame.reason.len());
        assert_eq!(frame.reason.as_str(), "é".repeat(61));
        assert!(REVOKED_REASON.len() <= 123);
    }

    #[test]
    fn an_uploads_request_is_checked_entry_by_entry() {
        let h = "a1".repeat(32);
        assert_eq!(
            asked_hashes(&format!(r#"{{"changes": ["{h}", "{h}"]}}"#)),
            Ok(vec![h.clone(), h.clone()])
        );
        let bad = asked_hashes(r#"{"changes": ["A1"]}"#).unwrap_err();
        assert!(
            bad.starts_with("changes: \"A1\" is not a change hash"),
            "{bad}"
        );
        let too_many = format!(
            r#"{{"changes": [{}]}}"#,
            vec![format!("\"{h}\""); uploaded::MAX_ASKED + 1].join(",")
        );
        let refused = asked_hashes(&too_many).unwrap_err();
        assert!(refused.contains("at most 100000 a request"), "{refused}");
        // Millions of empty entries: refused at the first.
        let empties = format!(r#"{{"changes": [{}]}}"#, vec!["\"\""; 2_000_000].join(","));
        assert!(asked_hashes(&empties)
            .unwrap_err()
            .contains("is not a change hash"));
        assert!(asked_hashes("[]").unwrap_err().starts_with("changes: "));
    }
}
