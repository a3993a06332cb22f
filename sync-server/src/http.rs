//! HTTP: `/sync` (token checked before the WebSocket upgrade), `/healthz`,
//! `/readyz`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::ws::{rejection::WebSocketUpgradeRejection, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::{token, Db, Workspaces};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest WebSocket message accepted; a larger one closes that
    /// connection only.
    pub max_message_bytes: usize,
    /// Most bytes queued for one slow connection before writes fail and it
    /// is closed.
    pub max_write_buffer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 16 << 20,
            max_write_buffer_bytes: 64 << 20,
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
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/sync", get(sync))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(state)
}

/// Serves until `shutdown` resolves; the caller then stops the workspaces.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn ready(State(state): State<AppState>) -> Response {
    let db = state.db.clone();
    let db_ok = tokio::task::spawn_blocking(move || db.ping())
        .await
        .unwrap_or(false);
    if state.ready.load(Ordering::SeqCst) && db_ok {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
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

async fn sync(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Some(token) = presented_token(&headers, &query) else {
        return (
            StatusCode::UNAUTHORIZED,
            "missing token: send Authorization: Bearer <token>\n",
        )
            .into_response();
    };
    let db = state.db.clone();
    let hash = token::hash(&token);
    let workspace =
        match tokio::task::spawn_blocking(move || db.workspace_by_token_hash(&hash)).await {
            Ok(Ok(Some(w))) => w,
            Ok(Ok(None)) => return (StatusCode::UNAUTHORIZED, "unknown token\n").into_response(),
            _ => return (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable\n").into_response(),
        };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    if !state.ready.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    let Some(acceptor) = state.workspaces.acceptor(&workspace.id).await else {
        return (StatusCode::SERVICE_UNAVAILABLE, "workspace unavailable\n").into_response();
    };
    let limits = state.limits;
    ws.max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes)
        .max_write_buffer_size(limits.max_write_buffer_bytes)
        .on_upgrade(move |socket| async move {
            match acceptor.accept_axum(socket, None) {
                Ok(_conn) => tracing::debug!(workspace = workspace.id.as_str(), "device connected"),
                Err(_) => tracing::warn!(
                    workspace = workspace.id.as_str(),
                    "repo stopped; connection dropped"
                ),
            }
        })
}
