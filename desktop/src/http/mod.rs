//! `flowkeep ui`: the local HTTP API (`POST /api/<command>` over the one
//! command table), the page, and its live changes (`GET /api/events`) on
//! 127.0.0.1. Every API request needs the per-launch token or the session
//! cookie the first page load got (`session.rs`); a request whose `Host` or
//! `Origin` is not this server is refused, so another site cannot reach the
//! API through DNS rebinding or a cross-site request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use flowkeep_app::Service;
use flowkeep_core::{ErrorBody, ErrorCode};

use crate::ui_runs::UiRuns;

mod assets;
mod live;
mod output;
mod session;

#[derive(Clone)]
struct Api {
    svc: Arc<Service>,
    runs: Arc<UiRuns>,
    auth: Arc<session::Auth>,
    live: live::Live,
    /// Set when the server stops: long streams end with it.
    stop: Arc<AtomicBool>,
}

fn random_token() -> String {
    let mut buf = [0u8; 24];
    getrandom::fill(&mut buf).expect("the OS random source works");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Serves until Ctrl-C or SIGTERM; prints the URL (with its token) first.
pub fn serve(
    svc: Service,
    data_dir: &std::path::Path,
    port: u16,
    json: bool,
    open: bool,
) -> anyhow::Result<()> {
    let svc = Arc::new(svc);
    let runs = Arc::new(UiRuns::new(svc.clone()));
    let token = random_token();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let sync_thread = crate::ui_runs::background_sync(&svc, &stop);
    rt.block_on(async {
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        let port = listener.local_addr()?.port();
        let auth = session::Auth::new(data_dir, token.clone(), port)
            .map_err(|e| anyhow::anyhow!("cannot keep the UI session secret in {}: {e}", data_dir.display()))?;
        let url = format!("http://127.0.0.1:{port}/?token={token}");
        if json {
            println!(
                "{}",
                serde_json::json!({"url": url, "port": port, "token": token, "sync": sync_thread.is_some()})
            );
        } else {
            println!("Flowkeep is at {url}");
            println!(
                "(only this machine can reach it; the token changes every launch; Ctrl-C stops)"
            );
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        if open {
            // Not the launch token: a code that works for one page load.
            match auth.opener_code() {
                Some(code) => open_browser(&format!("http://127.0.0.1:{port}/?code={code}")),
                None => open_browser(&url),
            }
        }
        let api = Api {
            live: live::Live::start(svc.clone(), stop.clone())?,
            stop: stop.clone(),
            svc,
            runs: runs.clone(),
            auth: Arc::new(auth),
        };
        let app = Router::new()
            .route("/", get(asset))
            .route("/favicon.svg", get(asset))
            .route("/assets/{*path}", get(asset))
            // The app's own URLs (a workflow, a run): the page, which reads
            // the path itself.
            .route("/workflows", get(page))
            .route("/workflows/{*path}", get(page))
            .route("/runs", get(page))
            .route("/runs/{*path}", get(page))
            .route("/api/events", get(events))
            .route("/api/runs/{id}/output", get(run_output))
            .route("/api/export", get(export))
            .route("/api/{command}", post(command))
            .with_state(api);
        let stop_signal = stop.clone();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                while !stop_signal.load(Ordering::SeqCst) {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            })
            .await?;
        anyhow::Ok(())
    })?;
    stop.store(true, Ordering::SeqCst);
    // Runs still going are cancelled and recorded so, not left `running`.
    runs.stop_all();
    if let Some(t) = sync_thread {
        let _ = t.join();
    }
    Ok(())
}

/// Opens the page in the desktop's browser; the URL printed above is the
/// fallback when there is none (a server, a container, SSH).
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let spawned = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if spawned.is_err() {
        eprintln!("flowkeep: could not start {opener}; open the address above in a browser");
    }
}

fn error(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body = ErrorBody {
        code,
        message: message.to_owned(),
        fields: vec![],
    };
    (status, axum::Json(body)).into_response()
}

fn guard(
    api: &Api,
    headers: &HeaderMap,
    query: &std::collections::HashMap<String, String>,
) -> Option<Response> {
    if !api.auth.same_origin(headers) {
        return Some(error(
            StatusCode::FORBIDDEN,
            ErrorCode::InvalidInput,
            "this API only answers its own page on 127.0.0.1",
        ));
    }
    if !api.auth.allowed(headers, query) {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidInput,
            "missing or wrong token: open the URL flowkeep ui printed",
        ));
    }
    None
}

/// `GET /api/events`: live changes (see `live.rs`).
async fn events(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Some(refused) = guard(&api, &headers, &query) {
        return refused;
    }
    let svc = api.svc.clone();
    match blocking(move || svc.latest_seq()).await {
        Ok(seq) => api.live.stream(seq),
        Err(refused) => refused,
    }
}

/// A run's output as it is written (`output.rs`).
async fn run_output(
    State(api): State<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Some(refused) = guard(&api, &headers, &query) {
        return refused;
    }
    let from = match query.get("from").map(|f| f.parse::<u64>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidInput,
                "from: must be a byte offset (a whole number, 0 or more)",
            )
        }
    };
    match output::read(&api.svc, &id, from).await {
        Ok(first) => output::stream(api.svc.clone(), id, first, api.stop.clone()),
        Err(e) => store_error(e),
    }
}

/// A path of the app itself (`/workflows/<ID>`, ...): the page.
async fn page(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let redeemed = redeem(&api, "/", &headers, &query);
    let first = first_page(&api, "/", &headers, &query, redeemed).await;
    respond_with(&api, "/", &headers, &query, first, redeemed)
}

/// Whether this page load carries the code the opened browser was given
/// (then used up), from this server's own origin.
fn redeem(
    api: &Api,
    path: &str,
    headers: &HeaderMap,
    query: &std::collections::HashMap<String, String>,
) -> bool {
    path == "/" && api.auth.same_origin(headers) && api.auth.redeem(query)
}

/// The workflow list's first page (the app's default query), for a page
/// load that may read it: written into the page so that its first render
/// needs no request. JSON in a data block, with every `<` escaped so
/// nothing in a name can end the block.
async fn first_page(
    api: &Api,
    path: &str,
    headers: &HeaderMap,
    query: &std::collections::HashMap<String, String>,
    redeemed: bool,
) -> Option<String> {
    let allowed = redeemed || api.auth.allowed(headers, query);
    if path != "/" || !api.auth.same_origin(headers) || !allowed {
        return None;
    }
    let svc = api.svc.clone();
    let page = tokio::task::spawn_blocking(move || {
        flowkeep_app::call::<flowkeep_app::commands::ListWorkflowsCmd>(
            &svc,
            flowkeep_core::commands::ListWorkflows {
                limit: Some(FIRST_PAGE_ROWS),
                ..Default::default()
            },
        )
    })
    .await
    .ok()?
    .ok()?;
    Some(serde_json::to_string(&page).ok()?.replace('<', "\\u003c"))
}

/// Rows in the app's first page of workflows (`askFirstPageEarly`).
const FIRST_PAGE_ROWS: u32 = 50;

/// The built UI. Its files hold no data, so they need no token (the page
/// takes the token from its URL and sends it with every API call); `Host`
/// is still checked so a rebinding site cannot even load them.
async fn asset(
    State(api): State<Api>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let redeemed = redeem(&api, uri.path(), &headers, &query);
    let first = first_page(&api, uri.path(), &headers, &query, redeemed).await;
    respond_with(&api, uri.path(), &headers, &query, first, redeemed)
}

/// A built file. A load with the launch token also gets the session cookie,
/// in its own response, so the page works on after a restart.
fn respond_with(
    api: &Api,
    path: &str,
    headers: &HeaderMap,
    query: &std::collections::HashMap<String, String>,
    first_page: Option<String>,
    redeemed: bool,
) -> Response {
    if !api.auth.same_origin(headers) {
        return error(
            StatusCode::FORBIDDEN,
            ErrorCode::InvalidInput,
            "this server only answers 127.0.0.1",
        );
    }
    let Some((bytes, content_type)) = assets::get(path) else {
        return error(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such file");
    };
    let bytes: std::borrow::Cow<'static, [u8]> = match first_page {
        Some(json) => assets::with_data_block(bytes, "flowkeep-first-page", &json).into(),
        None => bytes.into(),
    };
    let cache = if path.starts_with("/assets/") {
        // File names carry a content hash.
        "public, max-age=31536000, immutable"
    } else {
        "no-store"
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
            // The page URL carries the token: never send it elsewhere.
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        bytes,
    )
        .into_response();
    if redeemed || api.auth.has_token(headers, query) {
        response
            .headers_mut()
            .insert(header::SET_COOKIE, api.auth.set_cookie());
    }
    response
}

/// `GET /api/export?format=csv|json|ndjson&workflow_id=&status=&since=&until=`:
/// the runs a filter matches, as a file download.
async fn export(
    State(api): State<Api>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Some(refused) = guard(&api, &headers, &query) {
        return refused;
    }
    let mut input = serde_json::Map::new();
    for key in ["workflow_id", "status"] {
        if let Some(v) = query.get(key) {
            input.insert(key.to_owned(), v.clone().into());
        }
    }
    for key in ["since", "until"] {
        if let Some(v) = query.get(key) {
            match v.parse::<i64>() {
                Ok(n) => input.insert(key.to_owned(), n.into()),
                Err(_) => {
                    return invalid(
                        key,
                        "integer",
                        format!("{key} must be milliseconds since the epoch, got {v:?}"),
                    )
                }
            };
        }
    }
    let filter: flowkeep_core::commands::RunFilter =
        match serde_json::from_value(serde_json::Value::Object(input)) {
            Ok(f) => f,
            Err(e) => return invalid("query", "invalid_input", e.to_string()),
        };
    let format = match query.get("format").map(String::as_str).unwrap_or("json") {
        "json" => flowkeep_core::commands::ExportFormat::Json,
        "ndjson" => flowkeep_core::commands::ExportFormat::Ndjson,
        "csv" => flowkeep_core::commands::ExportFormat::Csv,
        other => {
            return invalid(
                "format",
                "one_of",
                format!("format must be json, ndjson or csv, got {other:?}"),
            )
        }
    };
    let svc = api.svc.clone();
    // Exports are built in memory: fine for the hundred thousands of runs
    // measured (about 30 MB of CSV); the CLI streams to a file for more.
    let result = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        svc.runs()
            .export(&filter, format, &mut out, &mut |_| Ok(()))
            .map(|_| out)
    })
    .await;
    match result {
        Ok(Ok(body)) => {
            let (mime, ext) = match format {
                flowkeep_core::commands::ExportFormat::Json => ("application/json", "json"),
                flowkeep_core::commands::ExportFormat::Ndjson => ("application/x-ndjson", "ndjson"),
                flowkeep_core::commands::ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
            };
            (
                [
                    (header::CONTENT_TYPE, mime.to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"flowkeep-runs.{ext}\""),
                    ),
                ],
                body,
            )
                .into_response()
        }
        Ok(Err(e)) => store_error(e),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "the export panicked",
        ),
    }
}

fn invalid(field: &str, code: &str, message: String) -> Response {
    let body = ErrorBody {
        code: ErrorCode::InvalidInput,
        message: message.clone(),
        fields: vec![flowkeep_core::FieldError::new(field, code, message)],
    };
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
}

fn store_error(e: flowkeep_app::Error) -> Response {
    let body = e.body();
    let status = match body.code {
        ErrorCode::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
        // Input that cannot be used at all (wrong shape, a junk cursor, a
        // limit that overflows): the request itself is bad.
        ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::NotApproved => StatusCode::FORBIDDEN,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, axum::Json(body)).into_response()
}

/// Runs a service call off the async threads; its failure (or a panic) is
/// already the response to send.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, flowkeep_app::Error> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(store_error(e)),
        Err(_) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "the request panicked",
        )),
    }
}

async fn command(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Some(refused) = guard(&api, &headers, &query) {
        return refused;
    }
    if name == "commands" {
        return axum::Json(flowkeep_app::COMMANDS).into_response();
    }
    let input: serde_json::Value = if body.is_empty() {
        serde_json::json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                let body = ErrorBody {
                    code: ErrorCode::InvalidInput,
                    message: format!("the request body is not JSON: {e}"),
                    fields: vec![flowkeep_core::FieldError::new(
                        "body",
                        "json",
                        e.to_string(),
                    )],
                };
                return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
            }
        }
    };
    let svc = api.svc.clone();
    let runs = api.runs.clone();
    match blocking(move || crate::ui_runs::call(&svc, &runs, &name, input)).await {
        Ok(value) => axum::Json(value).into_response(),
        Err(refused) => refused,
    }
}
