//! The real `flowkeep-sync-server` binary on 127.0.0.1 (OS-chosen port),
//! driven by samod clients over WebSockets: auth before any document moves,
//! workspace isolation, frame limits, graceful shutdown, persistence.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use samod::{BackoffConfig, DocumentId, Repo};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

const BIN: &str = env!("CARGO_BIN_EXE_flowkeep-sync-server");

#[path = "samod_client/mod.rs"]
mod samod_client;
#[path = "server_support/mod.rs"]
mod server_support;
use samod_client::{create_doc, dial_connected, read_name};
use server_support::Server as RealServer;

fn create_workspace(data: &Path, name: &str) -> String {
    server_support::create_workspace(Path::new(BIN), data, name)
}

fn add_device(data: &Path, workspace: &str, name: &str) -> String {
    server_support::add_device(Path::new(BIN), data, workspace, name)
}

fn server_cmd(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

/// The real server, with a samod-friendly URL.
struct Server(RealServer);

impl Server {
    fn start(data: &Path, extra: &[&str]) -> Server {
        Server(RealServer::start(Path::new(BIN), data, extra))
    }
    fn url(&self) -> url::Url {
        url::Url::parse(&self.0.url()).unwrap()
    }
    fn terminate(self) -> std::process::ExitStatus {
        self.0.terminate()
    }
}

impl std::ops::Deref for Server {
    type Target = RealServer;
    fn deref(&self) -> &RealServer {
        &self.0
    }
}

fn http_get_response(port: u16, path_and_headers: &str) -> String {
    server_support::http_get_response(port, path_and_headers)
}

/// A plain HTTP/1.1 GET; returns the status code.
fn http_get(port: u16, path_and_headers: &str) -> u16 {
    http_get_response(port, path_and_headers)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

async fn client(server: &Server, token: &str) -> (Repo, Result<(), String>) {
    samod_client::connect(server.url(), token).await
}

/// Waits until another client of the workspace can read the document.
async fn wait_visible(server: &Server, token: &str, id: &DocumentId, name: &str) {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let (repo, ok) = client(server, token).await;
        ok.unwrap();
        let got = read_name(&repo, id).await;
        repo.stop().await;
        if got.as_deref() == Some(name) {
            return;
        }
        assert!(
            Instant::now() < until,
            "document never became visible to another device"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_isolation_limits_shutdown_and_persistence() {
    let data = tempfile::tempdir().unwrap();
    let enrol_a = create_workspace(data.path(), "alpha");
    create_workspace(data.path(), "beta");
    // Raw clients present device credentials; the workspace token enrols.
    let token_a = add_device(data.path(), "alpha", "device a");
    let token_b = add_device(data.path(), "beta", "device b");
    // Names are unique; the token is not stored.
    let dup = Command::new(BIN)
        .arg("--data-dir")
        .arg(data.path())
        .args(["workspace", "create", "alpha"])
        .output()
        .unwrap();
    assert!(!dup.status.success());
    let db = std::fs::read(data.path().join("sync.db")).unwrap();
    for secret in [&enrol_a, &token_a] {
        assert!(
            !String::from_utf8_lossy(&db).contains(secret.as_str()),
            "tokens and credentials are stored hashed"
        );
    }

    let server = Server::start(data.path(), &["--max-message-bytes", "1048576"]);
    assert_eq!(http_get(server.port, "/healthz HTTP/1.1"), 200);
    assert_eq!(http_get(server.port, "/readyz HTTP/1.1"), 200);

    // Refused before any upgrade: no token, a wrong token.
    let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
    assert_eq!(
        http_get(server.port, &format!("/sync HTTP/1.1\r\n{upgrade}")),
        401
    );
    assert_eq!(
        http_get(
            server.port,
            &format!("/sync?token=fks_nope HTTP/1.1\r\n{upgrade}")
        ),
        401
    );
    assert_eq!(
        http_get(
            server.port,
            &format!("/sync HTTP/1.1\r\nAuthorization: Bearer wrong\r\n{upgrade}")
        ),
        401
    );
    let (_r, refused) = client(&server, "fks_0000").await;
    assert!(
        refused.unwrap_err().contains("refused the token"),
        "a wrong token fails at once, not after retries"
    );
    // The workspace token itself does not sync: it only enrols.
    assert_eq!(
        http_get(
            server.port,
            &format!("/sync HTTP/1.1\r\nAuthorization: Bearer {enrol_a}\r\n{upgrade}")
        ),
        401
    );

    // Two devices of workspace alpha share a document through the server.
    let (a1, ok) = client(&server, &token_a).await;
    ok.unwrap();
    let doc = create_doc(&a1, "shared plan").await;
    wait_visible(&server, &token_a, &doc, "shared plan").await;
    // The query parameter works too (browser clients).
    let mut url = server.url();
    url.set_query(Some(&format!("token={token_a}")));
    let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .expect("?token= is accepted");
    drop(ws);

    // Beta knows the document id and still gets nothing.
    let (b, ok) = client(&server, &token_b).await;
    ok.unwrap();
    assert_eq!(
        read_name(&b, &doc).await,
        None,
        "another workspace's document is unavailable"
    );
    b.stop().await;

    // An oversized message closes that connection only.
    let mut req = server.url().as_str().into_client_request().unwrap();
    req.headers_mut().insert(
        "Authorization",
        format!("Bearer {token_a}").parse().unwrap(),
    );
    let (mut big, _) = tokio_tungstenite::connect_async(req.clone()).await.unwrap();
    let _ = big.send(Message::Binary(vec![0u8; 4 << 20].into())).await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(m) = big.next().await {
            if m.is_err() || matches!(m, Ok(Message::Close(_))) {
                return true;
            }
        }
        true
    })
    .await;
    assert_eq!(closed, Ok(true), "the oversized connection was closed");
    // A malformed (non-CBOR) message: that connection closes, the server lives.
    let (mut bad, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let _ = bad
        .send(Message::Binary(
            b"\xff\x00 not a samod message".to_vec().into(),
        ))
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(5), bad.next()).await;
    assert_eq!(http_get(server.port, "/healthz HTTP/1.1"), 200);
    wait_visible(&server, &token_a, &doc, "shared plan").await;
    a1.stop().await;

    // SIGTERM: a clean exit; the document survives into the next run.
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    let server = Server::start(data.path(), &[]);
    wait_visible(&server, &token_a, &doc, "shared plan").await;
    // kill -9 right after a device synced a new document. The server may
    // not have written it yet (the protocol has no "persisted" ack), but
    // the device keeps it and sends it again when the server is back: after
    // a restart on the same address, another device gets it.
    let port = server.port;
    let repo = Repo::build_tokio().load().await;
    let keep_trying = BackoffConfig {
        initial_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        max_retries: None,
    };
    dial_connected(&repo, server.url(), &token_a, keep_trying).await;
    let second = create_doc(&repo, "written before a crash").await;
    wait_visible(&server, &token_a, &second, "written before a crash").await;
    drop(server); // SIGKILL
    let server = Server(RealServer::start_on(
        Path::new(BIN),
        data.path(),
        &format!("127.0.0.1:{port}"),
        &[],
    ));
    wait_visible(&server, &token_a, &second, "written before a crash").await;
    // And the first document, written before a clean stop, is there too.
    wait_visible(&server, &token_a, &doc, "shared plan").await;
    repo.stop().await;
    server.terminate();
}

/// One message from a one-shot endpoint (`/enrol`, `/devices`), or the
/// refusal's status and body.
async fn ask(url: &str, token: &str) -> Result<serde_json::Value, (u16, String)> {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok((mut ws, _)) => loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(t.as_str()).unwrap()),
                Some(Ok(_)) => continue,
                other => panic!("no answer from {url}: {other:?}"),
            }
        },
        Err(tungstenite::Error::Http(r)) => Err((
            r.status().as_u16(),
            String::from_utf8_lossy(r.body().as_deref().unwrap_or_default()).into_owned(),
        )),
        Err(e) => panic!("{url}: {e}"),
    }
}

/// An enrolment as Flowkeep devices make it (of a device named laptop):
/// the credential they chose, and the one they had.
async fn enrol_with(
    base: &str,
    device: &str,
    token: &str,
    credential: &str,
    previous: Option<&str>,
) -> serde_json::Value {
    let url = format!("{base}/enrol?device={device}&name=laptop&proof=1");
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let proof = serde_json::json!({"credential": credential, "previous": previous});
    ws.send(Message::Text(proof.to_string().into()))
        .await
        .unwrap();
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("no answer to the enrolment: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_device_enrols_for_its_own_credential_and_a_revoked_one_is_shut_out_at_once() {
    let data = tempfile::tempdir().unwrap();
    let enrol = create_workspace(data.path(), "team");
    let server = Server::start(data.path(), &[]);
    let base = format!("ws://127.0.0.1:{}", server.port);

    // Without a valid token, no more is said than that (not which
    // parameters are missing).
    for auth in ["", "\r\nAuthorization: Bearer fks_not-a-token"] {
        assert_eq!(
            http_get(server.port, &format!("/enrol HTTP/1.1{auth}")),
            401,
            "{auth:?}"
        );
    }

    // The workspace token buys one credential per device id.
    let a = ask(&format!("{base}/enrol?device=dev-a&name=laptop"), &enrol)
        .await
        .unwrap();
    let b = ask(&format!("{base}/enrol?device=dev-b&name=desktop"), &enrol)
        .await
        .unwrap();
    let (cred_a, cred_b) = (
        a["credential"].as_str().unwrap().to_owned(),
        b["credential"].as_str().unwrap().to_owned(),
    );
    assert!(cred_a.starts_with("fkd_") && cred_a != cred_b);
    // Whoever else holds the workspace token cannot take an enrolled id
    // over: not without a proof, not with a made-up one.
    let (status, why) = ask(&format!("{base}/enrol?device=dev-a&name=thief"), &enrol)
        .await
        .unwrap_err();
    assert_eq!(status, 409, "{why}");
    assert!(why.contains("already enrolled"), "{why}");
    let thief = format!("fkd_{}", "7".repeat(64));
    let said = enrol_with(
        &base,
        "dev-a",
        &enrol,
        &thief,
        Some(&format!("fkd_{}", "8".repeat(64))),
    )
    .await;
    assert!(
        said["error"]
            .as_str()
            .unwrap_or_default()
            .contains("already enrolled"),
        "{said}"
    );
    // The device itself replaces its own by showing it; the old one stops
    // working.
    let renewed = format!("fkd_{}", "9".repeat(64));
    let said = enrol_with(&base, "dev-a", &enrol, &renewed, Some(&cred_a)).await;
    assert_eq!(said["credential"], renewed.as_str(), "{said}");
    assert_eq!(
        ask(&format!("{base}/devices"), &cred_a)
            .await
            .unwrap_err()
            .0,
        401
    );
    let cred_a = renewed;
    // A wrong token, or a device id that is not one, enrols nothing.
    let (status, why) = ask(&format!("{base}/enrol?device=dev-c&name=x"), "fks_wrong")
        .await
        .unwrap_err();
    assert_eq!(status, 401, "{why}");
    assert!(why.contains("unknown workspace token"), "{why}");
    let (status, why) = ask(&format!("{base}/enrol?device=a%2Fb&name=x"), &enrol)
        .await
        .unwrap_err();
    assert_eq!(status, 400, "{why}");
    assert!(why.contains("device"), "{why}");

    // A device sees the workspace's devices; so does the operator.
    let listed = ask(&format!("{base}/devices"), &cred_a).await.unwrap();
    let ids: Vec<&str> = listed["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["dev-a", "dev-b"]);
    let out = server_cmd(data.path(), &["device", "list", "--workspace", "team"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("dev-a") && text.contains("laptop") && text.contains("2 device(s)"),
        "{text}"
    );

    // Both devices connected; revoking B closes B's connection, not A's.
    let (repo_a, ok) = client(&server, &cred_a).await;
    ok.unwrap();
    let mut req = server.url().as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {cred_b}").parse().unwrap());
    let (mut ws_b, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let out = server_cmd(
        data.path(),
        &["device", "revoke", "--workspace", "team", "dev-b"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("closed its connections"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws_b.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    // Closed, and told why at once (not only when it dials again).
    let frame = closed
        .expect("the revoked device's open connection was closed")
        .expect("with a reason");
    assert_eq!(u16::from(frame.code), 1008, "{frame:?}");
    assert!(frame.reason.contains("was revoked"), "{frame:?}");
    let doc = create_doc(&repo_a, "still syncing").await;
    wait_visible(&server, &cred_a, &doc, "still syncing").await;

    // B is refused from now on, saying why; its id cannot enrol again.
    let (status, why) = ask(&format!("{base}/devices"), &cred_b).await.unwrap_err();
    assert_eq!(status, 403, "{why}");
    assert!(why.contains("revoked"), "{why}");
    let (status, why) = ask(&format!("{base}/enrol?device=dev-b&name=again"), &enrol)
        .await
        .unwrap_err();
    assert_eq!(status, 403, "{why}");
    assert!(why.contains("revoked"), "{why}");
    // An unknown device id: a clear error, nothing changed.
    let out = server_cmd(
        data.path(),
        &["device", "revoke", "--workspace", "team", "dev-zz"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no device dev-zz"));
    repo_a.stop().await;
    server.terminate();
}

type RawSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A device's WebSocket upgrade to `/sync`: `Ok` once in (the socket is
/// kept open while the value lives), or the refusal's status and body.
async fn upgrade(server: &Server, token: &str) -> Result<RawSocket, (u16, String)> {
    upgrade_to(&server.url(), token).await
}

async fn upgrade_to(url: &url::Url, token: &str) -> Result<RawSocket, (u16, String)> {
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(r)) => Err((
            r.status().as_u16(),
            String::from_utf8_lossy(r.body().as_deref().unwrap_or_default()).into_owned(),
        )),
        Err(e) => panic!("upgrade failed: {e}"),
    }
}

/// Upgrades as soon as a place under the connection limits is free: a
/// refusal (429) is tried again until `within` has passed, then fails the
/// test like any other.
async fn upgrade_when_free(server: &Server, token: &str, within: Duration) -> RawSocket {
    let start = Instant::now();
    loop {
        match upgrade(server, token).await {
            Ok(ws) => return ws,
            Err((429, _)) if start.elapsed() < within => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("still refused after {:?}: {e:?}", start.elapsed()),
        }
    }
}

/// The value of an unlabelled sample in Prometheus text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limits_refuse_the_next_device_with_why_and_metrics_count_what_is_open() {
    let data = tempfile::tempdir().unwrap();
    create_workspace(data.path(), "team");
    create_workspace(data.path(), "other");
    let a = add_device(data.path(), "team", "a");
    let b = add_device(data.path(), "team", "b");
    let c = add_device(data.path(), "other", "c");
    let server = Server::start(
        data.path(),
        &[
            "--max-connections-per-workspace",
            "1",
            "--max-connections",
            "2",
        ],
    );

    let first = upgrade(&server, &a)
        .await
        .expect("the first device of team gets in");
    let (status, why) = upgrade(&server, &b)
        .await
        .expect_err("a second device of team is refused");
    assert_eq!(status, 429);
    assert!(
        why.contains("workspace team already has 1 devices connected")
            && why.contains("--max-connections-per-workspace 1"),
        "{why}"
    );
    // Another workspace has its own place, up to the server's total.
    let _other = upgrade(&server, &c)
        .await
        .expect("a device of another workspace gets in");

    let metrics = http_get_response(server.port, "/metrics HTTP/1.1");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics
            .to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "flowkeep_sync_connections"),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "flowkeep_sync_connections_refused_total"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "flowkeep_sync_workspaces_loaded"),
        Some(2.0),
        "{metrics}"
    );
    // The allocator's view: what live objects hold, within what it keeps.
    let allocated = sample(&metrics, "flowkeep_sync_heap_allocated_bytes").unwrap_or(0.0);
    let resident = sample(&metrics, "flowkeep_sync_heap_resident_bytes").unwrap_or(0.0);
    assert!(
        allocated > 64.0 * 1024.0 && allocated <= resident,
        "heap allocated {allocated}, resident {resident}\n{metrics}"
    );
    // Credentials, workspace names and device ids never appear there.
    for secret in ["team", "other", a.as_str()] {
        assert!(!metrics.contains(secret), "/metrics shows {secret}");
    }

    // The first device leaves: its place is free again.
    drop(first);
    drop(upgrade_when_free(&server, &b, Duration::from_secs(10)).await);
    assert!(server.terminate().success());
}

/// The server as an operator runs it (no RUST_LOG), its log in a file,
/// started by `sh` after `shell` (such as `ulimit -n 64`); killed however
/// the test ends.
struct LoggedServer {
    child: std::process::Child,
    log_path: std::path::PathBuf,
    port: u16,
}

impl LoggedServer {
    fn start(data: &Path, shell: &str, extra: &[&str]) -> LoggedServer {
        let log_path = data.join("server.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("{shell}\nexec \"$0\" \"$@\""))
            .arg(BIN)
            .arg("--data-dir")
            .arg(data)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut server = LoggedServer {
            child,
            log_path,
            port: 0,
        };
        let start = Instant::now();
        server.port = loop {
            if let Some(addr) = server.log().split("addr=").nth(1) {
                let addr = addr.split_whitespace().next().unwrap().to_owned();
                break addr.rsplit(':').next().unwrap().parse().unwrap();
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no address logged: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_log_has_one_line_per_connection_not_one_per_document() {
    let data = tempfile::tempdir().unwrap();
    create_workspace(data.path(), "team");
    let token = add_device(data.path(), "team", "a");
    // As an operator runs it: no RUST_LOG.
    let server = LoggedServer::start(data.path(), "", &[]);
    let read_log = || server.log();
    let port = server.port;
    let server_url = url::Url::parse(&format!("ws://127.0.0.1:{port}/sync")).unwrap();
    let before = read_log().lines().count();

    // One device connects, writes 50 documents, and leaves.
    let repo = Repo::build_tokio().load().await;
    dial_connected(&repo, server_url.clone(), &token, BackoffConfig::default()).await;
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(create_doc(&repo, &format!("doc {i}")).await);
    }
    // Every document reached the server (its storage holds 50 more).
    let db = data.path().join("sync.db");
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let docs: i64 = conn
            .query_row(
                // ws/<16 hex workspace id>/<document id>/…
                "SELECT count(DISTINCT substr(key, 21, instr(substr(key, 21), '/') - 1)) \
                 FROM kv WHERE key LIKE 'ws/%/%/%'",
                [],
                |r| r.get(0),
            )
            .unwrap_or(0);
        if docs >= 50 {
            break;
        }
        assert!(
            Instant::now() < until,
            "the server stored only {docs} documents"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    repo.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let text = read_log();
    let new: Vec<&str> = text.lines().skip(before).collect();
    // Connected, repo loaded, disconnected, and samod's own lines on how
    // the connection ended (a reset when the client just goes): a handful,
    // whatever the number of documents (54 lines at samod's info level).
    assert!(
        new.len() <= 8,
        "50 documents wrote {} log lines: {new:#?}",
        new.len()
    );
    let count = |what: &str| new.iter().filter(|l| l.contains(what)).count();
    assert_eq!(count("device connected"), 1, "{new:#?}");
    assert_eq!(count("device disconnected"), 1, "{new:#?}");
    assert_eq!(count("ERROR"), 0, "a device leaving is no error: {new:#?}");

    // One that goes without a closing handshake is none either.
    let before_reset = read_log().lines().count();
    drop(upgrade_to(&server_url, &token).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let text = read_log();
    let reset: Vec<&str> = text.lines().skip(before_reset).collect();
    assert!(
        reset.iter().any(|l| l.contains("device disconnected")),
        "{reset:#?}"
    );
    assert!(!reset.iter().any(|l| l.contains("ERROR")), "{reset:#?}");

    // A dial turned away before its WebSocket opens (here: the workspace
    // rests after its storage failed) is not a device that came and went.
    let _refusing = server_support::refuse_document_writes(&db);
    let before = read_log().lines().count();
    let repo = Repo::build_tokio().load().await;
    let dialer = repo
        .dial(
            BackoffConfig::default(),
            std::sync::Arc::new(samod_client::TokenDialer {
                url: server_url.clone(),
                token: token.clone(),
            }),
        )
        .unwrap();
    match tokio::time::timeout(Duration::from_secs(10), dialer.established()).await {
        Ok(Ok(_)) => {}
        _ => panic!("the device could not connect: {}", read_log()),
    }
    create_doc(&repo, "not stored").await;
    let until = Instant::now() + Duration::from_secs(10);
    while !read_log().contains("workspace storage failed") {
        assert!(Instant::now() < until, "no storage failure: {}", read_log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Its redials during the rest are turned away too; none after it.
    dialer.close();
    repo.stop().await;
    match samod_client::turned_away(&server_url, &token).await {
        Some((status, retry_after, why)) => {
            assert_eq!((status, retry_after), (503, true), "{why}")
        }
        None => panic!("a dial during the rest was let in: {}", read_log()),
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = read_log();
    let new: Vec<&str> = text.lines().skip(before).collect();
    let count = |what: &str| new.iter().filter(|l| l.contains(what)).count();
    assert_eq!(count("device connected"), 1, "{new:#?}");
    assert_eq!(count("device disconnected"), 1, "{new:#?}");
    assert_eq!(count("workspace storage failed"), 1, "{new:#?}");
}

/// A device counts the changes it sees in the server's heads as stored, so
/// the server shows a change as its own only once it is: when the write
/// fails, no reply that carries the change leaves the server (samod's
/// `with_sync_after_storage`, our patch; upstream replied before writing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_shows_a_device_its_change_only_once_it_is_stored() {
    use automerge::transaction::Transactable;
    let data = tempfile::tempdir().unwrap();
    create_workspace(data.path(), "team");
    let token = add_device(data.path(), "team", "writer");
    let server = Server::start(data.path(), &[]);
    let (repo, ok) = client(&server, &token).await;
    ok.unwrap();
    let mut doc = automerge::Automerge::new();
    doc.transact::<_, _, automerge::AutomergeError>(|tx| tx.put(automerge::ROOT, "name", "stored"))
        .unwrap();
    let handle = repo.create(doc).await.unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    let conn = loop {
        if let Some(conn) = handle.peers().0.keys().next() {
            break *conn;
        }
        assert!(
            Instant::now() < until,
            "the document never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    tokio::time::timeout(Duration::from_secs(10), handle.they_have_our_changes(conn))
        .await
        .expect("a change the server can store is acknowledged");

    let _refusing = server_support::refuse_document_writes(&data.path().join("sync.db"));
    let (_, mut updates) = handle.peers();
    handle.with_document(|d| {
        d.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(automerge::ROOT, "name", "not stored")
        })
        .unwrap()
    });
    let unstored = handle.with_document(|d| d.get_heads());
    // Everything the server says until well after the failure (it closes
    // the connection; the device dials again and is turned away while the
    // workspace rests).
    let watch = async {
        while let Some(states) = updates.next().await {
            for state in states.values() {
                let claimed = state
                    .their_heads
                    .as_ref()
                    .is_some_and(|heads| unstored.iter().all(|h| heads.contains(h)));
                assert!(
                    !claimed,
                    "the server showed a change it did not store: {state:?}"
                );
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), watch).await;
    let metrics = http_get_response(server.port, "/metrics HTTP/1.1");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("flowkeep_sync_storage_failures_total ") && !l.ends_with(" 0")),
        "the write did not fail: {metrics}"
    );
    repo.stop().await;
}

/// The server announces nothing: a device that joins a workspace holding
/// many documents is sent only the ones it asks for, and a document one
/// device changes reaches the devices that use it. (What keeps a join cheap
/// however many documents the workspace holds; the load generator
/// `cargo bench -p flowkeep-sync-server --bench fanout` measures it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_device_is_sent_only_the_documents_it_asks_for() {
    let data = tempfile::tempdir().unwrap();
    create_workspace(data.path(), "team");
    let token = add_device(data.path(), "team", "writer");
    let server = Server::start(data.path(), &[]);
    let (writer, ok) = client(&server, &token).await;
    ok.unwrap();
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(create_doc(&writer, &format!("doc {i}")).await);
    }
    // Every document is on the server before the second device joins.
    wait_visible(&server, &token, &ids[29], "doc 29").await;

    // The joining device keeps what it receives in a database we can count.
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch("CREATE TABLE kv (key TEXT PRIMARY KEY, data BLOB NOT NULL)")
        .unwrap();
    let conn = std::sync::Arc::new(std::sync::Mutex::new(conn));
    let stored_docs = |conn: &std::sync::Arc<std::sync::Mutex<rusqlite::Connection>>| -> i64 {
        conn.lock()
            .unwrap()
            .query_row(
                "SELECT count(DISTINCT substr(key, 1, instr(key, '/') - 1)) FROM kv WHERE key LIKE '%/%'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    let reader = Repo::build_tokio()
        .with_storage(flowkeep_samod_sqlite::SqliteStorage::new(
            conn.clone(),
            "kv",
            "",
        ))
        .load()
        .await;
    dial_connected(&reader, server.url(), &token, BackoffConfig::default()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        stored_docs(&conn),
        0,
        "the server announced documents nobody asked for"
    );

    assert_eq!(read_name(&reader, &ids[7]).await.as_deref(), Some("doc 7"));
    let handle = writer.find(ids[7].clone()).await.unwrap().unwrap();
    handle.with_document(|d| {
        use automerge::transaction::Transactable;
        let mut tx = d.transaction();
        tx.put(automerge::ROOT, "name", "doc 7, edited").unwrap();
        tx.commit();
    });
    let until = Instant::now() + Duration::from_secs(10);
    while read_name(&reader, &ids[7]).await.as_deref() != Some("doc 7, edited") {
        assert!(
            Instant::now() < until,
            "an edit did not reach the device using the document"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    reader.stop().await;
    assert_eq!(stored_docs(&conn), 1, "only the document it asked for");
    writer.stop().await;
}

/// The upgrade response's `x-flowkeep-limit` sentence for a device.
async fn limit_said(server: &Server, token: &str) -> Option<String> {
    let mut req = server.url().as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse().unwrap());
    let (_ws, response) = tokio_tungstenite::connect_async(req).await.unwrap();
    response
        .headers()
        .get("x-flowkeep-limit")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Whether a new device reads `name` in the document within a few seconds.
async fn reads_within(server: &Server, token: &str, id: &DocumentId, name: &str) -> bool {
    let until = Instant::now() + Duration::from_secs(4);
    loop {
        let (repo, ok) = client(server, token).await;
        ok.unwrap();
        let got = read_name(&repo, id).await;
        repo.stop().await;
        if got.as_deref() == Some(name) {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn rename(repo: &Repo, id: &DocumentId, name: &str) {
    let handle = repo.find(id.clone()).await.unwrap().unwrap();
    handle.with_document(|d| {
        use automerge::transaction::Transactable;
        let mut tx = d.transaction();
        tx.put(automerge::ROOT, "name", name).unwrap();
        tx.commit();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_at_its_document_limit_takes_no_new_document_and_says_why() {
    let data = tempfile::tempdir().unwrap();
    create_workspace(data.path(), "team");
    let token = add_device(data.path(), "team", "d");
    let server = Server::start(data.path(), &["--max-docs-per-workspace", "3"]);
    assert_eq!(
        limit_said(&server, &token).await,
        None,
        "room: nothing said"
    );
    let (a, ok) = client(&server, &token).await;
    ok.unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(create_doc(&a, &format!("doc {i}")).await);
        wait_visible(&server, &token, &ids[i], &format!("doc {i}")).await;
    }
    let fourth = create_doc(&a, "doc 3").await;
    assert!(
        !reads_within(&server, &token, &fourth, "doc 3").await,
        "a fourth document was taken past --max-docs-per-workspace 3"
    );
    // What the workspace did not take is not recorded as uploaded either.
    let uploads: i64 = rusqlite::Connection::open(data.path().join("sync.db"))
        .unwrap()
        .query_row(
            "SELECT count(*) FROM uploads WHERE document_id = ?1",
            [fourth.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(uploads, 0, "the refused document's changes were recorded");
    let why = limit_said(&server, &token).await.expect("a device is told");
    assert!(
        why.contains("workspace team holds 3 documents")
            && why.contains("--max-docs-per-workspace 3"),
        "{why}"
    );
    // The documents it holds still take changes.
    rename(&a, &ids[1], "doc 1, edited").await;
    assert!(reads_within(&server, &token, &ids[1], "doc 1, edited").await);
    a.stop().await;
}

/// Text of `len` bytes that does not compress.
fn incompressible(len: usize) -> String {
    let mut text = String::new();
    let mut x: u64 = 7;
    while text.len() < len {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        text.push_str(&format!("{x:016x}"));
    }
    text
}

/// A connection's read buffer is small (8 KiB); a document a hundred
/// times larger still goes up in one message and comes down to another
/// device whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_far_larger_than_the_read_buffer_syncs_both_ways() {
    let data = tempfile::tempdir().unwrap();
    create_workspace(data.path(), "team");
    let token = add_device(data.path(), "team", "d");
    let server = Server::start(data.path(), &[]);
    let (a, ok) = client(&server, &token).await;
    ok.unwrap();
    let large = incompressible(800 << 10);
    let id = create_doc(&a, &large).await;
    wait_visible(&server, &token, &id, &large).await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_at_its_byte_limit_takes_no_change_but_still_serves_what_it_has() {
    let data = tempfile::tempdir().unwrap();
    create_workspace(data.path(), "team");
    let token = add_device(data.path(), "team", "d");
    let server = Server::start(data.path(), &["--max-bytes-per-workspace", "4000"]);
    let (a, ok) = client(&server, &token).await;
    ok.unwrap();
    let small = create_doc(&a, "small").await;
    wait_visible(&server, &token, &small, "small").await;
    // Incompressible, so that it stores more than the limit.
    let big = incompressible(6000);
    let large = create_doc(&a, &big).await;
    wait_visible(&server, &token, &large, &big).await;
    let why = limit_said(&server, &token).await.expect("a device is told");
    assert!(why.contains("--max-bytes-per-workspace 4000"), "{why}");
    rename(&a, &small, "small, edited").await;
    assert!(
        !reads_within(&server, &token, &small, "small, edited").await,
        "a change was taken past --max-bytes-per-workspace"
    );
    assert!(
        reads_within(&server, &token, &small, "small").await,
        "what it has is still served"
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_goes_silent_is_dropped_and_its_place_freed_while_one_that_answers_pings_stays(
) {
    let data = tempfile::tempdir().unwrap();
    create_workspace(data.path(), "team");
    let a = add_device(data.path(), "team", "a");
    let b = add_device(data.path(), "team", "b");
    let server = Server::start(
        data.path(),
        &["--max-connections-per-workspace", "1", "--ping-secs", "1"],
    );
    // A vanished device: connected, then never reads (so never answers a
    // ping) and never writes, like a laptop whose lid closed.
    let silent = upgrade(&server, &a).await.expect("a gets in");
    assert!(
        matches!(upgrade(&server, &b).await, Err((429, _))),
        "the place is taken"
    );
    let start = Instant::now();
    let mut answering = upgrade_when_free(&server, &b, Duration::from_secs(15)).await;
    let freed_after = start.elapsed();
    assert!(
        freed_after >= Duration::from_secs(2) && freed_after < Duration::from_secs(10),
        "freed after {freed_after:?} (three silent pings of 1 s)"
    );
    drop(silent);
    // One that reads (and so answers pings) is kept well past that.
    let kept = tokio::time::timeout(Duration::from_secs(6), async {
        while let Some(m) = answering.next().await {
            if m.is_err() || matches!(m, Ok(tungstenite::Message::Close(_))) {
                return false;
            }
        }
        false
    })
    .await;
    assert!(kept.is_err(), "an answering device was dropped");
}

/// The short WebSockets (`/enrol`, `/devices`, `/uploads`) hold a place
/// under the connection limits while they are open, like a sync
/// connection: each is an open file, and a device that opened them without
/// end would otherwise take the server past what its limits leave room for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_requests_count_against_the_connection_limits_while_open() {
    let data = tempfile::tempdir().unwrap();
    let token = create_workspace(data.path(), "team");
    let a = add_device(data.path(), "team", "a");
    let b = add_device(data.path(), "team", "b");
    let server = Server::start(data.path(), &["--max-connections-per-workspace", "1"]);
    let at = |path: &str| {
        let mut url = server.url();
        url.set_path(path);
        url
    };
    // An uploads request waits (up to 10 s) for its question: open, it
    // holds the workspace's one place.
    let asking = upgrade_to(&at("/uploads"), &a)
        .await
        .expect("a's uploads request gets in");
    let (status, why) = upgrade(&server, &b)
        .await
        .expect_err("no place for b's sync connection");
    assert_eq!(status, 429);
    assert!(why.contains("--max-connections-per-workspace 1"), "{why}");
    drop(asking);
    // Closed, its place is free again.
    let _synced = upgrade_when_free(&server, &b, Duration::from_secs(10)).await;
    // Now b's sync connection holds it: the others are refused with why.
    let (status, why) = upgrade_to(&at("/devices"), &a)
        .await
        .expect_err("no place for a's devices request");
    assert_eq!(status, 429);
    assert!(
        why.contains("workspace team already has 1 devices connected"),
        "{why}"
    );
    let mut enrol = at("/enrol");
    enrol.set_query(Some("device=c&name=c&proof=1"));
    let (status, _) = upgrade_to(&enrol, &token)
        .await
        .expect_err("no place for an enrolment");
    assert_eq!(status, 429);
}

/// `len` bytes no compression shrinks, different for each `seed`.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Connections open on the server now, from `/metrics`.
fn connections(server: &Server) -> f64 {
    let text = http_get_response(server.port, "/metrics HTTP/1.1");
    sample(&text, "flowkeep_sync_connections").unwrap_or(-1.0)
}

/// A device that keeps its connection open but reads nothing more (a
/// process stuck, a peer that stopped draining its socket) while another
/// device writes to a document it asked for: the server's writes to it
/// stall, and it is closed within three pings and the time its last
/// message takes at the slowest link taken, rather than holding its place
/// (and all the server queues for it) for as long as it keeps the socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_stops_reading_is_closed_and_what_was_queued_for_it_dropped() {
    let data = tempfile::tempdir().unwrap();
    create_workspace(data.path(), "team");
    let w = add_device(data.path(), "team", "writer");
    let s = add_device(data.path(), "team", "stuck");
    let server = Server::start(data.path(), &["--ping-secs", "4"]);
    let (writer, ok) = client(&server, &w).await;
    ok.unwrap();
    let id = create_doc(&writer, "start").await;
    wait_visible(&server, &s, &id, "start").await;
    let (stuck, stall) = samod_client::connect_stalling(server.url(), &s).await;
    assert_eq!(read_name(&stuck, &id).await.as_deref(), Some("start"));
    assert_eq!(connections(&server), 2.0);
    stall.store(true, std::sync::atomic::Ordering::SeqCst);

    // Far more than its socket takes while it reads nothing (the server's
    // send buffer grows to 4 MiB here), at once: the writes to it stall
    // before it has been silent for three pings (after which a connection
    // whose writes still flow is closed anyway).
    let handle = writer.find(id.clone()).await.unwrap().unwrap();
    let start = Instant::now();
    for i in 0..100 {
        handle.with_document(|d| {
            use automerge::transaction::Transactable;
            let mut tx = d.transaction();
            tx.put(automerge::ROOT, "blob", random_bytes(64 << 10, i))
                .unwrap();
            tx.put(automerge::ROOT, "name", format!("edit {i}"))
                .unwrap();
            tx.commit();
        });
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    eprintln!("written in {:?}", start.elapsed());
    let closed_after = loop {
        if connections(&server) == 1.0 {
            break start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the device that reads nothing is still connected after {:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("closed after {closed_after:?}");
    // The one left is the writer's.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        writer.connected_peers().0.len(),
        1,
        "the writer stays connected"
    );
    assert_eq!(connections(&server), 1.0);
    writer.stop().await;
    stuck.stop().await;
}

/// The server's count of documents in memory, from `/metrics`.
fn documents_loaded(server: &Server) -> Option<f64> {
    let metrics = http_get_response(server.port, "/metrics HTTP/1.1");
    sample(&metrics, "flowkeep_sync_documents_loaded")
}

async fn until_documents_loaded(server: &Server, want: f64, what: &str) {
    let until = Instant::now() + Duration::from_secs(15);
    while documents_loaded(server) != Some(want) {
        assert!(
            Instant::now() < until,
            "{what}: documents loaded {:?}, wanted {want}",
            documents_loaded(server)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn until_name(repo: &Repo, id: &DocumentId, name: &str, what: &str) {
    let until = Instant::now() + Duration::from_secs(15);
    while read_name(repo, id).await.as_deref() != Some(name) {
        assert!(Instant::now() < until, "{what}: never saw {name:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A server that unloads documents idle for a second, and the credentials
/// of two devices of its workspace.
fn unloading_after_a_second(data: &Path) -> (Server, String, String) {
    create_workspace(data, "team");
    let (ta, tb) = (
        add_device(data, "team", "laptop"),
        add_device(data, "team", "desktop"),
    );
    (Server::start(data, &["--doc-idle-seconds", "1"]), ta, tb)
}

/// A document no device has synced for `--doc-idle-seconds` leaves the
/// server's memory while its devices stay connected; the next change loads
/// it again and still reaches every device that used it, either way, and
/// edits that land just as it is being unloaded are neither lost nor stuck.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_document_leaves_memory_and_the_next_edit_still_reaches_every_device_using_it() {
    let data = tempfile::tempdir().unwrap();
    let (server, ta, tb) = unloading_after_a_second(data.path());
    let (a, ok) = client(&server, &ta).await;
    ok.unwrap();
    let (b, ok) = client(&server, &tb).await;
    ok.unwrap();
    let id = create_doc(&a, "first").await;
    until_name(&b, &id, "first", "the second device opens it").await;

    until_documents_loaded(&server, 0.0, "idle with both devices connected").await;
    rename(&a, &id, "after a rest").await;
    until_name(&b, &id, "after a rest", "an edit to an unloaded document").await;
    until_documents_loaded(&server, 0.0, "idle again").await;
    rename(&b, &id, "and back").await;
    until_name(&a, &id, "and back", "the other way").await;

    // Edits from both sides around the moment the document goes idle.
    // Each waits for the other device to see it, so that none is concurrent
    // with the next (which would leave either as the name).
    let mut last = String::new();
    for i in 0..8u64 {
        let (from, to) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let name = format!("edit {i}");
        rename(from, &id, &name).await;
        until_name(to, &id, &name, "an edit around the idle moment").await;
        last = name;
        tokio::time::sleep(Duration::from_millis(800 + 70 * i)).await;
    }
    until_name(&a, &id, &last, "the laptop converges").await;
    until_name(&b, &id, &last, "the desktop converges").await;
    a.stop().await;
    b.stop().await;

    // What was acknowledged while loading and unloading is on disk.
    assert!(server.terminate().success());
    let server = Server::start(data.path(), &[]);
    wait_visible(&server, &ta, &id, &last).await;
    assert!(server.terminate().success());
}

/// A device that asks for a document the server does not have (a typo, a
/// stranger's id) does not leave it in the server's memory either, and when
/// another device later brings that document, the one that asked gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_nobody_has_does_not_stay_in_memory_and_reaches_who_asked_once_it_exists() {
    let data = tempfile::tempdir().unwrap();
    let (server, ta, tb) = unloading_after_a_second(data.path());
    // A document made offline: the server has never seen its id.
    let offline = Repo::build_tokio().load().await;
    let id = create_doc(&offline, "made offline").await;

    let (a, ok) = client(&server, &ta).await;
    ok.unwrap();
    assert_eq!(read_name(&a, &id).await, None, "nobody has it yet");
    until_documents_loaded(&server, 0.0, "a document found nowhere").await;

    // The device that made it connects and sends it; the one that asked,
    // still connected, is sent it.
    dial_connected(&offline, server.url(), &tb, BackoffConfig::default()).await;
    let until = Instant::now() + Duration::from_secs(15);
    while read_name(&a, &id).await.as_deref() != Some("made offline") {
        assert!(Instant::now() < until, "the device that asked never got it");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    offline.stop().await;
    a.stop().await;
    assert!(server.terminate().success());
}

/// A client that never finishes its request's headers (a slow-loris) is
/// cut off after a few seconds, not kept with its connection for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "still open after 30 s");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "cut off after {:?}",
        start.elapsed()
    );
    // One that sends nothing at all (over TLS, the handshake has 10 s too).
    let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let start = Instant::now();
    let read = tokio::time::timeout(Duration::from_secs(30), silent.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "a silent client still connected after 30 s");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "cut off after {:?}",
        start.elapsed()
    );
}

/// Connections held open by clients that have not finished a request
/// (each one file descriptor in the server).
async fn hold_connections(port: u16, n: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut held = Vec::new();
    for _ in 0..n {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        held.push(s);
    }
    held
}

/// A request on a new connection while `held` are open: answered, or
/// `None` when not within 3 s.
async fn answered_beside(port: u16) -> Option<String> {
    let ask = tokio::task::spawn_blocking(move || {
        server_support::http_get_response(port, "/healthz HTTP/1.1\r\nHost: x\r\nConnection: close")
    });
    tokio::time::timeout(Duration::from_secs(3), ask)
        .await
        .ok()
        .map(|r| r.unwrap())
}

/// A shell's default limit of open files (often 1,024) is far below the
/// server's connection limit; the server raises it to what the system
/// allows, so a device past the low limit is still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_limit_on_open_files_is_raised_to_what_the_system_allows() {
    let hard: u64 = String::from_utf8(
        Command::new("sh")
            .args(["-c", "ulimit -Hn"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap_or(u64::MAX);
    assert!(
        hard >= 400,
        "this test needs a hard limit of 400 open files or more, not {hard}"
    );
    let data = tempfile::tempdir().unwrap();
    let server = LoggedServer::start(data.path(), "ulimit -Sn 64", &[]);
    assert!(
        server.log().contains("raised the limit on open files") && server.log().contains("was=64"),
        "{}",
        server.log()
    );
    let _held = hold_connections(server.port, 200).await;
    let answer = answered_beside(server.port).await;
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.starts_with("HTTP/1.1 200")),
        "not answered beside 200 open connections: {answer:?}\n{}",
        server.log()
    );
}

/// When even the hard limit is too low, the operator is told at start,
/// and once (not every 50 ms) when devices are left waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_that_cannot_be_raised_is_said_at_start_and_when_devices_wait() {
    let data = tempfile::tempdir().unwrap();
    let server = LoggedServer::start(data.path(), "ulimit -n 64", &["--max-connections", "1000"]);
    let log = server.log();
    assert!(
        log.contains("too few for --max-connections 1000")
            && log.contains("may hold 64 files open"),
        "{log}"
    );
    let _held = hold_connections(server.port, 100).await;
    assert_eq!(answered_beside(server.port).await, None, "{}", server.log());
    let until = Instant::now() + Duration::from_secs(5);
    while !server.log().contains("cannot accept connections") {
        assert!(Instant::now() < until, "not said: {}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let said = server.log().matches("cannot accept connections").count();
    assert_eq!(said, 1, "{}", server.log());
    assert!(server.log().contains("ulimit -n"), "{}", server.log());
}

/// An automerge-repo message (a CBOR map of text keys).
fn wire(fields: &[(&str, WireValue)]) -> Vec<u8> {
    let mut e = minicbor::Encoder::new(Vec::new());
    e.map(fields.len() as u64).unwrap();
    for (k, v) in fields {
        e.str(k).unwrap();
        match v {
            WireValue::Text(t) => e.str(t).unwrap(),
            WireValue::Texts(ts) => {
                e.array(ts.len() as u64).unwrap();
                for t in ts {
                    e.str(t).unwrap();
                }
                &mut e
            }
            WireValue::Bytes(b) => e.bytes(b).unwrap(),
        };
    }
    e.into_writer()
}

enum WireValue {
    Text(String),
    Texts(Vec<String>),
    Bytes(Vec<u8>),
}

/// The `senderId` of an automerge-repo message.
fn sender_of(frame: &[u8]) -> Option<String> {
    field_of(frame, "senderId")
}

/// A text field of an automerge-repo message.
fn field_of(frame: &[u8], field: &str) -> Option<String> {
    read_field(frame, field, |d| d.str().ok().map(str::to_owned))
}

/// The `data` of an automerge-repo message.
fn data_of(frame: &[u8]) -> Option<Vec<u8>> {
    read_field(frame, "data", |d| d.bytes().ok().map(<[u8]>::to_vec))
}

/// A field of an automerge-repo message (a CBOR map), read by `read`.
fn read_field<T>(
    frame: &[u8],
    field: &str,
    read: impl FnOnce(&mut minicbor::Decoder) -> Option<T>,
) -> Option<T> {
    let mut d = minicbor::Decoder::new(frame);
    let n = d.map().ok()??;
    for _ in 0..n {
        if d.str().ok()? == field {
            return read(&mut d);
        }
        d.skip().ok()?;
    }
    None
}
/// A device speaking automerge-repo's protocol by hand, joined, and what
/// it can say about documents.
async fn asking_peer(server: &Server, token: &str) -> (RawSocket, Asker) {
    use automerge::sync::SyncDoc;
    use WireValue::*;
    let mut ws = upgrade(server, token).await.unwrap();
    let me = "peer-asking".to_owned();
    ws.send(Message::Binary(
        wire(&[
            ("type", Text("join".into())),
            ("senderId", Text(me.clone())),
            ("supportedProtocolVersions", Texts(vec!["1".into()])),
        ])
        .into(),
    ))
    .await
    .unwrap();
    let server = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => break sender_of(&b).expect("a peer message"),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no peer message: {other:?}"),
        }
    };
    let empty = automerge::Automerge::new()
        .generate_sync_message(&mut automerge::sync::State::new())
        .unwrap()
        .encode();
    (ws, Asker { me, server, empty })
}

struct Asker {
    me: String,
    server: String,
    /// A sync message from a document with nothing in it.
    empty: Vec<u8>,
}

impl Asker {
    /// A message of a kind (`request`, `sync`) about a document, with
    /// nothing of it.
    fn message(&self, kind: &str, doc: &str) -> Message {
        self.with_data(kind, doc, self.empty.clone())
    }

    fn with_data(&self, kind: &str, doc: &str, data: Vec<u8>) -> Message {
        use WireValue::*;
        Message::Binary(
            wire(&[
                ("type", Text(kind.into())),
                ("documentId", Text(doc.into())),
                ("senderId", Text(self.me.clone())),
                ("targetId", Text(self.server.clone())),
                ("data", Bytes(data)),
            ])
            .into(),
        )
    }
}

/// The `i`th of a series of made-up document ids.
fn made_up(i: u32) -> String {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&i.to_be_bytes());
    id[4] = 0xa5;
    DocumentId::try_from(id.to_vec()).unwrap().to_string()
}

/// A device asking for documents nobody has does not make the server hold
/// them for `--doc-idle-seconds` (five minutes by default; one device asking
/// for made-up ids took a server to gigabytes): each is let go within
/// seconds, while the device stays connected and is still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_asked_for_and_found_nowhere_leave_memory_within_seconds() {
    const ASKS: u32 = 300;
    // The default idle time, and none (documents kept while used).
    for extra in [&[][..], &["--doc-idle-seconds", "0"][..]] {
        let data = tempfile::tempdir().unwrap();
        create_workspace(data.path(), "team");
        let token = add_device(data.path(), "team", "d");
        let server = Server::start(data.path(), extra);
        let (mut ws, asker) = asking_peer(&server, &token).await;
        for i in 0..ASKS {
            ws.send(asker.message("request", &made_up(i)))
                .await
                .unwrap();
        }
        unavailable_answers(&mut ws, ASKS).await;
        until_documents_loaded(&server, 0.0, &format!("found nowhere, {extra:?}")).await;
        // Still connected, and answered again.
        ws.send(asker.message("request", &made_up(0)))
            .await
            .unwrap();
        ws.send(asker.message("request", &made_up(ASKS)))
            .await
            .unwrap();
        unavailable_answers(&mut ws, 2).await;
    }
}

/// A document id is a few dozen characters at most; bs58 decodes in time
/// that grows with the square of the length (256 KiB took 14 s here), and
/// samod decoded whatever a device sent while it held its workspace's lock:
/// one message with a megabyte-long id held every device of the workspace
/// for minutes, and the server's worker threads that waited on that lock.
/// It is refused at once, its connection closed, and the workspace goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_with_an_over_long_document_id_is_refused_and_the_workspace_goes_on() {
    let data = tempfile::tempdir().unwrap();
    create_workspace(data.path(), "team");
    let token = add_device(data.path(), "team", "d");
    let server = Server::start(data.path(), &[]);
    let (mut ws, asker) = asking_peer(&server, &token).await;
    ws.send(asker.message("sync", &"z".repeat(1 << 20)))
        .await
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection is closed");

    let (repo, ok) = client(&server, &token).await;
    ok.unwrap();
    let doc = create_doc(&repo, "still syncing").await;
    wait_visible(&server, &token, &doc, "still syncing").await;
    repo.stop().await;
}

/// A device that asks for documents nobody has and leaves at once leaves
/// none of them in memory (a document still being looked for when its only
/// asker left refused to unload for as long as the server ran).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_asked_for_by_a_device_that_left_at_once_leave_memory() {
    let data = tempfile::tempdir().unwrap();
    create_workspace(data.path(), "team");
    let token = add_device(data.path(), "team", "d");
    let server = Server::start(data.path(), &[]);
    for round in 0..3u32 {
        let (mut ws, asker) = asking_peer(&server, &token).await;
        for i in 0..200 {
            ws.send(asker.message("request", &made_up(round * 1_000 + i)))
                .await
                .unwrap();
        }
        // Gone while the server works through them.
        drop(ws);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    until_documents_loaded(&server, 0.0, "asked for by devices that left").await;
}

/// A connection that asks for more documents its workspace does not hold
/// than the workspace may hold is sending made-up ids (each costs the
/// server memory while it lasts): it is closed, saying why. Asking for a
/// document the workspace holds, or the same one again, does not count,
/// and neither do the first messages about a device's own new documents
/// (`sync`, with nothing of them yet: a device with more new documents than
/// the limit was closed over and over).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_asking_for_more_made_up_documents_than_a_workspace_holds_is_closed() {
    const LIMIT: u32 = 1_200;
    assert!(u64::from(LIMIT) > flowkeep_sync_server::asks::MIN_ASKS);
    let data = tempfile::tempdir().unwrap();
    create_workspace(data.path(), "team");
    let token = add_device(data.path(), "team", "d");
    let (server, a, held) = holding_one(data.path(), LIMIT, &token).await;
    let (ws, asker) = asking_peer(&server, &token).await;
    let (mut to_server, mut from_server) = ws.split();
    // Sent while the answers are read (a device that does not read what
    // the server sends is cut off).
    let held_id = held.to_string();
    let sending = tokio::spawn(async move {
        for i in 0..LIMIT + 300 {
            to_server
                .send(asker.message("sync", &made_up(100_000 + i)))
                .await
                .unwrap();
        }
        for i in 0..LIMIT {
            to_server
                .send(asker.message("request", &made_up(i)))
                .await
                .unwrap();
            if i % 100 == 0 {
                to_server
                    .send(asker.message("request", &held_id))
                    .await
                    .unwrap();
            }
            if i % 2 == 0 {
                to_server
                    .send(asker.message("request", &made_up(i / 2)))
                    .await
                    .unwrap();
            }
        }
        (to_server, asker)
    });
    // Every ask answered: the connection stayed open.
    let mut unanswered: HashSet<String> = (0..LIMIT).map(made_up).collect();
    let until = Instant::now() + Duration::from_secs(60);
    while !unanswered.is_empty() {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, from_server.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => {
                if type_of(&b).as_deref() == Some("doc-unavailable") {
                    unanswered.remove(&field_of(&b, "documentId").unwrap_or_default());
                }
            }
            Ok(Some(Ok(Message::Close(frame)))) => panic!("closed early: {frame:?}"),
            Ok(Some(Ok(_))) => {}
            other => panic!("{} asks unanswered, then {other:?}", unanswered.len()),
        }
    }
    let (mut to_server, asker) = sending.await.unwrap();
    to_server
        .send(asker.message("request", &made_up(LIMIT)))
        .await
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match from_server.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await
    .expect("closed after one more")
    .expect("with a reason");
    assert_eq!(u16::from(closed.code), 1008, "{closed:?}");
    assert!(
        closed.reason.contains("--max-docs-per-workspace"),
        "{closed:?}"
    );
    let metrics = http_get_response(server.port, "/metrics HTTP/1.1");
    assert_eq!(
        sample(&metrics, "flowkeep_sync_connections_cut_off_total"),
        Some(1.0),
        "{metrics}"
    );
    // The device syncs as before on a new connection.
    let id = create_doc(&a, "still syncing").await;
    wait_visible(&server, &token, &id, "still syncing").await;
    a.stop().await;
}

/// A server limited to `limit` documents per workspace, holding one
/// ("held") that the device of `token` created (it stays connected) and a
/// new connection read back.
async fn holding_one(data: &Path, limit: u32, token: &str) -> (Server, Repo, DocumentId) {
    let server = Server::start(data, &["--max-docs-per-workspace", &limit.to_string()]);
    let (a, ok) = client(&server, token).await;
    ok.unwrap();
    let held = create_doc(&a, "held").await;
    wait_visible(&server, token, &held, "held").await;
    (server, a, held)
}

/// Reads until `n` answers say a document is unavailable.
async fn unavailable_answers(ws: &mut RawSocket, n: u32) {
    let until = Instant::now() + Duration::from_secs(30);
    let mut unavailable = 0;
    while unavailable < n {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => {
                unavailable += u32::from(type_of(&b).as_deref() == Some("doc-unavailable"))
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("{unavailable} of {n} answered, then {other:?}"),
        }
    }
}

/// The `type` of an automerge-repo message.
fn type_of(frame: &[u8]) -> Option<String> {
    field_of(frame, "type")
}

/// A device's first message about a document of its own names the changes
/// it holds and carries none of them (automerge sends changes once it
/// knows what the other side has). One that then never sends them does not
/// make the server hold the document while the connection lasts (the
/// server kept every such made-up document until the device left): each
/// is let go within seconds, and a change the device sends later still
/// arrives and is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_a_device_names_but_never_sends_leave_memory_and_arrive_when_it_sends_them() {
    const NAMED: u32 = 300;
    let data = tempfile::tempdir().unwrap();
    create_workspace(data.path(), "team");
    let token = add_device(data.path(), "team", "d");
    let other = add_device(data.path(), "team", "e");
    let server = Server::start(data.path(), &[]);
    let (mut ws, asker) = asking_peer(&server, &token).await;
    let mut first = None;
    for i in 0..NAMED {
        let mut own = OwnDocument::new(&format!("named {i}"));
        ws.send(asker.with_data("sync", &made_up(i), own.hello()))
            .await
            .unwrap();
        if i == 0 {
            first = Some(own);
        }
    }
    // The server answers each with what it has (nothing): the device would
    // now send its changes.
    let answers = sync_answers(&mut ws, (0..NAMED).map(made_up)).await;
    until_documents_loaded(&server, 0.0, "named and never sent").await;

    // The device sends the first document's change after all.
    let change = first.unwrap().change(&answers[&made_up(0)]);
    ws.send(asker.with_data("sync", &made_up(0), change))
        .await
        .unwrap();
    let id: DocumentId = made_up(0).parse().unwrap();
    wait_visible(&server, &other, &id, "named 0").await;
}

/// A device that sends only a change whose parent it never sends (it waits
/// in automerge's queue on the server, which is never saved) does not make
/// the server hold the document either: it leaves memory within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_sent_only_changes_whose_parents_never_came_leave_memory() {
    use automerge::transaction::Transactable;
    const SENT: u32 = 100;
    let data = tempfile::tempdir().unwrap();
    create_workspace(data.path(), "team");
    let token = add_device(data.path(), "team", "d");
    let server = Server::start(data.path(), &[]);
    let (mut ws, asker) = asking_peer(&server, &token).await;
    let docs: Vec<String> = (0..SENT).map(|i| made_up(200_000 + i)).collect();
    for doc_id in &docs {
        let mut doc = automerge::Automerge::new();
        for v in [1, 2] {
            let mut tx = doc.transaction();
            tx.put(automerge::ROOT, "v", v).unwrap();
            tx.commit();
        }
        let mut second = doc.get_changes(&[]).last().unwrap().clone();
        assert_eq!(second.deps().len(), 1);
        let orphan = automerge::sync::Message {
            heads: doc.get_heads(),
            need: vec![],
            have: vec![],
            changes: vec![second.bytes().to_vec()].into(),
            flags: None,
            version: automerge::sync::MessageVersion::V1,
        };
        ws.send(asker.with_data("sync", doc_id, orphan.encode()))
            .await
            .unwrap();
    }
    sync_answers(&mut ws, docs).await;
    until_documents_loaded(&server, 0.0, "only changes whose parents never came").await;
}

/// A document of the hand-driven device's own, with one change.
struct OwnDocument {
    doc: automerge::Automerge,
    state: automerge::sync::State,
}

impl OwnDocument {
    fn new(name: &str) -> OwnDocument {
        use automerge::transaction::Transactable;
        let mut doc = automerge::Automerge::new();
        let mut tx = doc.transaction();
        tx.put(automerge::ROOT, "name", name).unwrap();
        tx.commit();
        OwnDocument {
            doc,
            state: automerge::sync::State::new(),
        }
    }

    /// The first sync message: it names the change and carries none.
    fn hello(&mut self) -> Vec<u8> {
        use automerge::sync::SyncDoc;
        let hello = self.doc.generate_sync_message(&mut self.state).unwrap();
        assert!(hello.changes.is_empty() && hello.heads.len() == 1);
        hello.encode()
    }

    /// The message carrying the change, once the server answered `hello`.
    fn change(mut self, answer: &[u8]) -> Vec<u8> {
        use automerge::sync::SyncDoc;
        let answer = automerge::sync::Message::decode(answer).unwrap();
        self.doc
            .receive_sync_message(&mut self.state, answer)
            .unwrap();
        let change = self.doc.generate_sync_message(&mut self.state).unwrap();
        assert_eq!(change.changes.len(), 1, "{change:?}");
        change.encode()
    }
}

/// Reads until the server has sent a `sync` message about each of `docs`;
/// the first about each document it sent one about meanwhile (`docs` or
/// not), by document.
async fn sync_answers(
    ws: &mut (impl futures::Stream<Item = Result<Message, tungstenite::Error>> + Unpin),
    docs: impl IntoIterator<Item = String>,
) -> std::collections::HashMap<String, Vec<u8>> {
    let mut waiting: HashSet<String> = docs.into_iter().collect();
    let mut answers = std::collections::HashMap::new();
    let until = Instant::now() + Duration::from_secs(30);
    while !waiting.is_empty() {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) if type_of(&b).as_deref() == Some("sync") => {
                let doc = field_of(&b, "documentId").unwrap_or_default();
                waiting.remove(&doc);
                answers
                    .entry(doc)
                    .or_insert_with(|| data_of(&b).expect("sync data"));
            }
            Ok(Some(Ok(Message::Close(frame)))) => panic!("closed: {frame:?}"),
            Ok(Some(Ok(_))) => {}
            other => panic!("{} unanswered, then {other:?}", waiting.len()),
        }
    }
    answers
}

/// A connection that names more documents of its own than the workspace
/// may hold, without sending them, has its `sync` messages about further
/// ones dropped (each named one costs the server memory while the
/// connection lasts, and it cannot be told from a device about to send
/// them, so it is not closed): its other documents keep syncing, and once
/// the workspace takes one of those named, one more passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncs_naming_more_unheld_documents_than_a_workspace_holds_are_dropped_not_closed() {
    const LIMIT: u32 = flowkeep_sync_server::asks::MIN_ASKS as u32;
    let data = tempfile::tempdir().unwrap();
    create_workspace(data.path(), "team");
    let token = add_device(data.path(), "team", "d");
    let other = add_device(data.path(), "team", "e");
    let (server, a, held) = holding_one(data.path(), LIMIT, &other).await;
    let (ws, asker) = asking_peer(&server, &token).await;
    let (mut to_server, mut from_server) = ws.split();
    let mut first = OwnDocument::new("named 0");
    let hellos: Vec<_> = (1..LIMIT)
        .map(|i| (made_up(i), OwnDocument::new(&format!("named {i}")).hello()))
        .collect();
    to_server
        .send(asker.with_data("sync", &made_up(0), first.hello()))
        .await
        .unwrap();
    let sending = tokio::spawn(async move {
        for (doc, hello) in hellos {
            to_server
                .send(asker.with_data("sync", &doc, hello))
                .await
                .unwrap();
        }
        (to_server, asker)
    });
    let mut answers = sync_answers(&mut from_server, (0..LIMIT).map(made_up)).await;
    let (mut to_server, asker) = sending.await.unwrap();
    let dropped = || {
        let metrics = http_get_response(server.port, "/metrics HTTP/1.1");
        sample(&metrics, "flowkeep_sync_messages_dropped_total")
    };
    assert_eq!(dropped(), Some(0.0));

    // One more goes unanswered; the held document is still served on the
    // same connection.
    to_server
        .send(asker.with_data("sync", &made_up(LIMIT), OwnDocument::new("past").hello()))
        .await
        .unwrap();
    to_server
        .send(asker.message("request", &held.to_string()))
        .await
        .unwrap();
    // Never answered: not before the held one, nor by the end (below).
    let got = sync_answers(&mut from_server, [held.to_string()]).await;
    assert!(!got.contains_key(&made_up(LIMIT)), "answered");
    assert_eq!(dropped(), Some(1.0));

    // The workspace takes the first named document; a second later one
    // more passes.
    let change = first.change(&answers.remove(&made_up(0)).unwrap());
    to_server
        .send(asker.with_data("sync", &made_up(0), change))
        .await
        .unwrap();
    let id: DocumentId = made_up(0).parse().unwrap();
    wait_visible(&server, &other, &id, "named 0").await;
    tokio::time::sleep(flowkeep_sync_server::asks::LOOK_AGAIN_AFTER).await;
    to_server
        .send(asker.with_data(
            "sync",
            &made_up(LIMIT + 1),
            OwnDocument::new("next").hello(),
        ))
        .await
        .unwrap();
    let got = sync_answers(&mut from_server, [made_up(LIMIT + 1)]).await;
    assert!(!got.contains_key(&made_up(LIMIT)), "answered late");
    assert_eq!(dropped(), Some(1.0));
    a.stop().await;
}

/// A device that asks for documents nobody has takes no place under the
/// document limit (they were counted for five minutes, so one device could
/// fill it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_for_documents_nobody_has_takes_no_place_under_the_document_limit() {
    let data = tempfile::tempdir().unwrap();
    create_workspace(data.path(), "team");
    let token = add_device(data.path(), "team", "d");
    let server = Server::start(data.path(), &["--max-docs-per-workspace", "3"]);

    // Sixty asks, three per connection (a connection that asks for more
    // documents the workspace does not hold than it may hold is closed:
    // `a_connection_asking_for_more_made_up_documents_than_a_workspace_holds_is_closed`).
    for c in 0..20 {
        let (mut ws, asker) = asking_peer(&server, &token).await;
        for i in 0..3 {
            ws.send(asker.message("request", &made_up(c * 3 + i)))
                .await
                .unwrap();
        }
        unavailable_answers(&mut ws, 3).await;
    }
    // A device still stores three new documents: none of the asked-for
    // ones holds a place.
    let (a, ok) = client(&server, &token).await;
    ok.unwrap();
    for i in 0..3 {
        let id = create_doc(&a, &format!("doc {i}")).await;
        wait_visible(&server, &token, &id, &format!("doc {i}")).await;
    }
    a.stop().await;
}
