//! The sync server on PostgreSQL, as several nodes: leases give each
//! workspace one node at a time; a device reaching another node is proxied
//! to the owner; when the owner is killed another node takes over from the
//! shared storage and devices converge. Each test starts its own PostgreSQL
//! (`pg_support`) and real server processes on 127.0.0.1.

use std::path::Path;
use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::ROOT;
use flowkeep_sync_server::cluster::Node;
use flowkeep_sync_server::db::Lease;
use flowkeep_sync_server::storage::TryStorage;
use flowkeep_sync_server::Db;
use futures::FutureExt;
use samod::storage::StorageKey;
use samod::{BackoffConfig, DocumentId, Repo};

const BIN: &str = env!("CARGO_BIN_EXE_flowkeep-sync-server");

#[path = "pg_support/mod.rs"]
mod pg_support;
#[path = "samod_client/mod.rs"]
mod samod_client;
#[path = "server_support/mod.rs"]
mod server_support;

use pg_support::Postgres;
use samod_client::{connect, create_doc, dial_connected, read_name};
use server_support::{http_get_response, Server};

fn key(parts: &[&str]) -> StorageKey {
    StorageKey::from_parts(parts.iter().copied()).unwrap()
}

#[test]
fn leases_give_each_workspace_one_node_and_pass_on_when_released_or_expired() {
    let Some(pg) = Postgres::start() else { return };
    // Two nodes start at once: the tables are created once, without error.
    let (a, b) = std::thread::scope(|s| {
        let one = s.spawn(|| Db::open_postgres(&pg.url()));
        let two = s.spawn(|| Db::open_postgres(&pg.url()));
        (one.join().unwrap().unwrap(), two.join().unwrap().unwrap())
    });
    assert!(a.is_shared());
    let minute = Duration::from_secs(60);
    let n1 = Node::new("ws://127.0.0.1:1001", minute);
    let n2 = Node::new("ws://127.0.0.1:1002", minute);

    assert_eq!(a.acquire_lease("w1", &n1).unwrap(), Lease::Mine);
    assert_eq!(
        a.acquire_lease("w1", &n1).unwrap(),
        Lease::Mine,
        "held again"
    );
    assert_eq!(
        b.acquire_lease("w1", &n2).unwrap(),
        Lease::Held {
            node_id: n1.id.clone(),
            url: n1.url.clone()
        },
        "another node is told who serves it"
    );
    assert_eq!(b.acquire_lease("w2", &n2).unwrap(), Lease::Mine);
    assert_eq!(
        a.renew_leases(&n1, &["w1".into(), "w2".into()]).unwrap(),
        vec!["w1".to_owned()],
        "a node renews only what it holds"
    );

    // Released (idle stop, shutdown): the next node takes it at once.
    a.release_lease("w1", &n1).unwrap();
    assert_eq!(b.acquire_lease("w1", &n2).unwrap(), Lease::Mine);
    assert!(matches!(
        a.acquire_lease("w1", &n1).unwrap(),
        Lease::Held { .. }
    ));

    // Expired (the holder died): taken over, and the old holder learns it.
    let short = Node::new("ws://127.0.0.1:1003", Duration::from_millis(300));
    assert_eq!(a.acquire_lease("w3", &short).unwrap(), Lease::Mine);
    assert!(matches!(
        b.acquire_lease("w3", &n2).unwrap(),
        Lease::Held { .. }
    ));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(b.acquire_lease("w3", &n2).unwrap(), Lease::Mine);
    assert!(a.renew_leases(&short, &["w3".into()]).unwrap().is_empty());

    // A node restarted at the same address takes its predecessor's leases
    // at once: the predecessor is dead, as the address is taken.
    assert_eq!(a.acquire_lease("w4", &n1).unwrap(), Lease::Mine);
    let n1_again = Node::new("ws://127.0.0.1:1001", minute);
    assert_eq!(b.acquire_lease("w4", &n1_again).unwrap(), Lease::Mine);
}

#[test]
fn workspaces_devices_and_documents_mean_the_same_on_postgres() {
    let Some(pg) = Postgres::start() else { return };
    let db = Db::open_postgres(&pg.url()).unwrap();
    let w = db.create_workspace("team", "tokenhash", 1).unwrap();
    assert!(matches!(
        db.create_workspace("team", "other", 2),
        Err(flowkeep_sync_server::Error::Conflict(_))
    ));
    assert!(matches!(
        db.create_workspace("no spaces", "x", 2),
        Err(flowkeep_sync_server::Error::Invalid(_))
    ));
    assert_eq!(
        db.workspace_by_token_hash("tokenhash").unwrap(),
        Some(w.clone())
    );
    assert_eq!(db.workspace_by_name("team").unwrap(), Some(w.clone()));
    db.enrol(&w.id, "dev-1", "laptop", "cred1", None, 10)
        .unwrap();
    db.enrol(&w.id, "dev-1", "laptop", "cred1", None, 10)
        .expect("the same enrolment again (a retry)");
    assert!(
        matches!(
            db.enrol(&w.id, "dev-1", "laptop", "stolen", None, 11),
            Err(flowkeep_sync_server::Error::Enrolled(_))
        ),
        "an enrolled id is not taken over without its credential"
    );
    assert!(matches!(
        db.enrol(&w.id, "dev-1", "laptop", "stolen", Some("guess"), 11),
        Err(flowkeep_sync_server::Error::Enrolled(_))
    ));
    assert_eq!(db.credential("cred1").unwrap().unwrap().device_id, "dev-1");
    db.enrol(&w.id, "dev-1", "laptop", "cred2", Some("cred1"), 11)
        .unwrap();
    assert_eq!(
        db.credential("cred1").unwrap(),
        None,
        "re-enrolment showing the credential replaces it"
    );
    assert_eq!(db.credential("cred2").unwrap().unwrap().device_id, "dev-1");
    db.seen(&w.id, "dev-1", 50).unwrap();
    db.seen(&w.id, "dev-1", 40).unwrap();
    assert_eq!(
        db.devices(&w.id).unwrap()[0].last_seen,
        50,
        "never goes back"
    );
    let before = db.data_version().unwrap();
    assert!(db.revoke(&w.id, "dev-1", 60).unwrap());
    assert!(!db.revoke(&w.id, "dev-1", 61).unwrap(), "already revoked");
    assert!(db.revoke(&w.id, "nobody", 61).is_err());
    assert_ne!(
        db.data_version().unwrap(),
        before,
        "a revocation is noticed"
    );
    assert_eq!(db.revoked().unwrap(), vec![(w.id.clone(), "dev-1".into())]);
    assert!(matches!(
        db.enrol(&w.id, "dev-1", "laptop", "cred3", Some("cred2"), 70),
        Err(flowkeep_sync_server::Error::Revoked(_))
    ));
    assert_eq!(db.writable(), Ok(()));

    // Who uploaded each change: the first device to send it, per workspace.
    let (h1, h2) = ("a".repeat(64), "b".repeat(64));
    let sent = |h: &str| vec![("doc1".to_owned(), h.to_owned())];
    db.record_uploads(&w.id, "dev-1", &sent(&h1), 80).unwrap();
    db.record_uploads(
        &w.id,
        "dev-2",
        &[sent(&h1), sent(&h2), sent(&h2)].concat(),
        81,
    )
    .unwrap();
    db.record_uploads("other", "dev-9", &sent(&h2), 82).unwrap();
    let mut found = db
        .uploaders(&w.id, &[h1.clone(), h2.clone(), "c".repeat(64)])
        .unwrap();
    found.sort();
    assert_eq!(
        found,
        vec![(h1.clone(), "dev-1".into()), (h2.clone(), "dev-2".into())]
    );
    assert_eq!(db.uploaders("other", &[h1]).unwrap(), vec![]);

    // Documents: each workspace under its own prefix; a range is a prefix
    // (doc10 is not under doc1).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (one, two) = (db.storage("one"), db.storage("two"));
    rt.block_on(async {
        one.try_put(key(&["doc1", "snapshot", "x"]), vec![1])
            .await
            .unwrap();
        one.try_put(key(&["doc1", "incremental", "y"]), vec![2])
            .await
            .unwrap();
        one.try_put(key(&["doc10", "snapshot", "z"]), vec![3])
            .await
            .unwrap();
        two.try_put(key(&["doc1", "snapshot", "x"]), vec![9])
            .await
            .unwrap();
        one.try_put(key(&["doc1", "snapshot", "x"]), vec![4])
            .await
            .unwrap();
        assert_eq!(
            one.try_load(key(&["doc1", "snapshot", "x"])).await.unwrap(),
            Some(vec![4])
        );
        assert_eq!(
            two.try_load(key(&["doc1", "snapshot", "x"])).await.unwrap(),
            Some(vec![9])
        );
        let range = one.try_load_range(key(&["doc1"])).await.unwrap();
        assert_eq!(range.len(), 2, "{range:?}");
        assert_eq!(range[&key(&["doc1", "incremental", "y"])], vec![2]);
        one.try_delete(key(&["doc1", "snapshot", "x"]))
            .await
            .unwrap();
        assert_eq!(
            one.try_load(key(&["doc1", "snapshot", "x"])).await.unwrap(),
            None
        );
        assert_eq!(
            two.try_load(key(&["doc1", "snapshot", "x"])).await.unwrap(),
            Some(vec![9])
        );
    });
}

#[test]
fn document_writes_asked_at_once_end_as_if_written_one_by_one_in_order() {
    let Some(pg) = Postgres::start() else { return };
    let db = Db::open_postgres(&pg.url()).unwrap();
    let (one, two) = (db.storage("one"), db.storage("two"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // As a burst of compactions asks: every call in flight at once, so
        // they are committed in batches; a key written twice, put after a
        // delete and deleted after a put. Amid them a write the database
        // refuses (text cannot hold NUL), which must not take the others of
        // its batch with it.
        let mut all = Vec::new();
        let mut bad = None;
        for d in 0..300 {
            let doc = format!("doc{d}");
            if d == 150 {
                bad = Some(one.try_put(key(&["bad\0key"]), vec![0]));
            }
            all.push(
                one.try_put(key(&[&doc, "incremental", "a"]), vec![1])
                    .boxed(),
            );
            all.push(two.try_put(key(&[&doc, "snapshot", "s"]), vec![2]).boxed());
            all.push(one.try_delete(key(&[&doc, "incremental", "a"])).boxed());
            all.push(one.try_put(key(&[&doc, "snapshot", "s"]), vec![3]).boxed());
            all.push(
                one.try_put(key(&[&doc, "snapshot", "s"]), vec![d as u8])
                    .boxed(),
            );
        }
        let (outcomes, bad) =
            futures::future::join(futures::future::join_all(all), bad.unwrap()).await;
        assert!(
            outcomes.iter().all(Result::is_ok),
            "each of the others is told it is stored"
        );
        let why = bad
            .expect_err("the refused write's caller is told")
            .to_string();
        assert!(why.starts_with("sync storage write failed"), "{why}");
        for d in [0usize, 150, 299] {
            let doc = format!("doc{d}");
            assert_eq!(
                one.try_load(key(&[&doc, "incremental", "a"]))
                    .await
                    .unwrap(),
                None
            );
            assert_eq!(
                one.try_load(key(&[&doc, "snapshot", "s"])).await.unwrap(),
                Some(vec![d as u8]),
                "the later put wins"
            );
            assert_eq!(
                two.try_load(key(&[&doc, "snapshot", "s"])).await.unwrap(),
                Some(vec![2])
            );
        }
        let all = one.try_load_range(key(&["doc1"])).await.unwrap();
        assert_eq!(all.len(), 1, "only doc1's snapshot: {all:?}");
        // Not stored (the database cannot even look such a key up).
        assert!(!matches!(
            one.try_load(key(&["bad\0key"])).await,
            Ok(Some(_))
        ));
        // A delete then a put of the same key, in one batch.
        let k = key(&["doc7", "incremental", "a"]);
        let (deleted, put) =
            futures::future::join(one.try_delete(k.clone()), one.try_put(k.clone(), vec![5])).await;
        deleted.unwrap();
        put.unwrap();
        assert_eq!(one.try_load(k).await.unwrap(), Some(vec![5]));
    });
}

fn create_workspace(pg: &Postgres, data: &Path) -> String {
    let out = std::process::Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(["--storage", &pg.url(), "workspace", "create", "team"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args([
            "--storage",
            &pg.url(),
            "device",
            "add",
            "--workspace",
            "team",
            "--name",
            "d",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_owned()
}

fn node(pg: &Postgres, data: &Path) -> Server {
    node_with(pg, data, &[])
}

fn node_with(pg: &Postgres, data: &Path, extra: &[&str]) -> Server {
    let url = pg.url();
    let mut args = vec!["--storage", &url, "--lease-seconds", "3"];
    args.extend_from_slice(extra);
    Server::start(Path::new(BIN), data, &args)
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A connection that asks for limit notices, as Flowkeep devices do, and
/// what its upgrade said about the workspace's limits.
async fn listen(url: &url::Url, token: &str) -> (Socket, Option<String>) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.as_str().into_client_request().unwrap();
    let headers = req.headers_mut();
    headers.insert("Authorization", format!("Bearer {token}").parse().unwrap());
    headers.insert("x-flowkeep-limit-notices", "1".parse().unwrap());
    let (ws, response) = tokio_tungstenite::connect_async(req).await.unwrap();
    let said = response
        .headers()
        .get("x-flowkeep-limit")
        .map(|v| v.to_str().unwrap().to_owned());
    (ws, said)
}

/// The next text message on `ws` (pings are answered on the way).
async fn next_text(ws: &mut Socket) -> String {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let text = async {
        while let Some(m) = ws.next().await {
            match m.expect("the connection failed") {
                Message::Text(t) => return t.to_string(),
                Message::Close(c) => panic!("closed before a notice: {c:?}"),
                _ => {}
            }
        }
        panic!("ended before a notice")
    };
    tokio::time::timeout(Duration::from_secs(10), text)
        .await
        .expect("a notice within 10 s")
}

fn sync_url(server: &Server) -> url::Url {
    url::Url::parse(&server.url()).unwrap()
}

fn metric(server: &Server, name: &str) -> f64 {
    let text = http_get_response(server.port, "/metrics HTTP/1.1");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

async fn set_name(repo: &Repo, id: &DocumentId, name: &str) {
    let handle = repo.find(id.clone()).await.unwrap().unwrap();
    handle.with_document(|d| {
        let mut tx = d.transaction();
        tx.put(ROOT, "name", name).unwrap();
        tx.commit();
    });
}

/// Waits until a new device connected at `url` reads `name` in the
/// document; returns how long that took.
async fn until_read(
    url: &url::Url,
    token: &str,
    id: &DocumentId,
    name: &str,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let (repo, ok) = connect(url.clone(), token).await;
        let got = match ok {
            Ok(()) => read_name(&repo, id).await,
            Err(_) => None,
        };
        repo.stop().await;
        if got.as_deref() == Some(name) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "a device at {url} did not read {name:?} within {within:?} (last: {got:?})"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_serve_one_workspace_and_a_killed_owner_is_taken_over_without_loss() {
    let Some(pg) = Postgres::start() else { return };
    let dirs = tempfile::tempdir().unwrap();
    let token = create_workspace(&pg, &dirs.path().join("admin"));
    let n1 = node(&pg, &dirs.path().join("n1"));
    let n2 = node(&pg, &dirs.path().join("n2"));

    // A device on node 1 writes; node 1 now serves the workspace.
    let (a, ok) = connect(sync_url(&n1), &token).await;
    ok.unwrap();
    let doc = create_doc(&a, "first").await;
    until_read(
        &sync_url(&n1),
        &token,
        &doc,
        "first",
        Duration::from_secs(15),
    )
    .await;

    // A device on node 2 is proxied to node 1 and sees its writes live. It
    // keeps redialling node 2 when a connection ends, as a device's watch
    // does.
    let b = Repo::build_tokio().load().await;
    let forever = BackoffConfig {
        initial_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(1),
        max_retries: None,
    };
    dial_connected(&b, sync_url(&n2), &token, forever).await;
    assert_eq!(read_name(&b, &doc).await.as_deref(), Some("first"));
    assert_eq!(metric(&n2, "flowkeep_sync_connections_proxied"), 1.0);
    assert_eq!(metric(&n1, "flowkeep_sync_workspaces_loaded"), 1.0);
    assert_eq!(
        metric(&n2, "flowkeep_sync_workspaces_loaded"),
        0.0,
        "one node serves it"
    );
    set_name(&a, &doc, "edited on node 1").await;
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if read_name(&b, &doc).await.as_deref() == Some("edited on node 1") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        seen.is_ok(),
        "node 1's edit did not reach the device on node 2"
    );
    a.stop().await;

    // Node 1 dies without a word: node 2 takes the workspace over once the
    // lease runs out (3 s), with every change node 1 had.
    let mut n1 = n1;
    n1.child.kill().unwrap();
    n1.child.wait().unwrap();
    let took = until_read(
        &sync_url(&n2),
        &token,
        &doc,
        "edited on node 1",
        Duration::from_secs(30),
    )
    .await;
    eprintln!("node 2 served the workspace {took:?} after node 1's kill -9");
    assert_eq!(metric(&n2, "flowkeep_sync_workspaces_loaded"), 1.0);

    // The device that was proxied reconnects by itself and keeps writing.
    set_name(&b, &doc, "edited on node 2").await;
    until_read(
        &sync_url(&n2),
        &token,
        &doc,
        "edited on node 2",
        Duration::from_secs(20),
    )
    .await;

    // A node started later is proxied to node 2: every device converges.
    let n3 = node(&pg, &dirs.path().join("n3"));
    until_read(
        &sync_url(&n3),
        &token,
        &doc,
        "edited on node 2",
        Duration::from_secs(20),
    )
    .await;
    b.stop().await;

    // A node that stops cleanly gives its workspaces up at once (its lease
    // had 2 to 3 s left).
    assert!(n2.terminate().success());
    let stopped_at = Instant::now();
    let (c, ok) = connect(sync_url(&n3), &token).await;
    ok.unwrap();
    assert_eq!(
        read_name(&c, &doc).await.as_deref(),
        Some("edited on node 2")
    );
    assert!(
        stopped_at.elapsed() < Duration::from_millis(1500),
        "node 3 waited for the lease instead of taking a released one: {:?}",
        stopped_at.elapsed()
    );
    assert_eq!(metric(&n3, "flowkeep_sync_workspaces_loaded"), 1.0);
    c.stop().await;
}

/// A private CA and a certificate for 127.0.0.1 signed by it: (ca, cert,
/// key) as PEM.
fn tls_material() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

#[test]
fn postgres_over_tls_is_verified_and_a_remote_database_is_never_reached_in_clear_unless_asked() {
    // Refused before any connection: a database on another machine
    // without sslmode=require (or an explicit sslmode=disable).
    let err = Db::open_postgres("postgres://sync@db.example.invalid/flowkeep")
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("sslmode=require"), "{err}");

    let (ca, cert, key) = tls_material();
    let Some(pg) = Postgres::start_tls(&cert, &key) else {
        return;
    };
    let tls_url = format!("{}?sslmode=require", pg.url());
    // The private CA is not among the system's roots: refused.
    let untrusted = Db::open_postgres_with(&tls_url, None)
        .err()
        .expect("an untrusted certificate is refused")
        .to_string();
    assert!(
        untrusted.to_lowercase().contains("certificate") || untrusted.contains("tls"),
        "{untrusted}"
    );
    // Trusted: it works, and the connection is encrypted.
    let db = Db::open_postgres_with(&tls_url, Some(&ca)).unwrap();
    db.create_workspace("team", "tokenhash", 1).unwrap();
    let mut check =
        postgres::Client::connect(&format!("{}?sslmode=disable", pg.url()), postgres::NoTls)
            .unwrap();
    let encrypted: i64 = check
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name = 'flowkeep-sync-server' AND s.ssl",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(encrypted >= 1, "the server's connections are not encrypted");
    drop(check);
    // On this machine, the default (no sslmode) stays plain as before.
    Db::open_postgres(&pg.url()).unwrap();
}

/// A node proxies to the owner over `wss://` verified against the CA given
/// with `--node-ca-file`: through a verified connection the owner answers
/// (a good credential is let in, a wrong one refused by the owner itself);
/// with the system's roots only, the owner's private certificate is not
/// trusted and the owner counts as unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_is_proxied_to_over_tls_only_with_the_ca_it_was_given() {
    use flowkeep_sync_server::proxy::{dial, DialFailure};
    use std::sync::Arc;
    let (ca, cert, key) = tls_material();
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let data = dir.path().join("owner");
    let bin = Path::new(BIN);
    server_support::create_workspace(bin, &data, "team");
    let credential = server_support::add_device(bin, &data, "team", "d");
    let owner = Server::start(
        bin,
        &data,
        &[
            "--tls-cert",
            cert_file.to_str().unwrap(),
            "--tls-key",
            key_file.to_str().unwrap(),
        ],
    );
    let url = format!("wss://127.0.0.1:{}", owner.port);
    let trusted = Arc::new(flowkeep_sync_server::tls::client_config(Some(&ca)).unwrap());

    let let_in = dial(
        &url,
        &credential,
        "node-a",
        Some(trusted.clone()),
        1 << 20,
        false,
    )
    .await;
    assert!(let_in.is_ok(), "a verified dial with a good credential");
    match dial(&url, "fkd_wrong", "node-a", Some(trusted), 1 << 20, false).await {
        Err(DialFailure::Refused { status, .. }) => assert_eq!(status, 401),
        _ => panic!("the owner's refusal should come back as it was given"),
    }
    match dial(&url, &credential, "node-a", None, 1 << 20, false).await {
        Err(DialFailure::Unreachable(why)) => {
            assert!(why.to_lowercase().contains("certificate"), "{why}")
        }
        _ => panic!("a certificate from a CA the node was not given is trusted"),
    }

    // A file that is no certificate stops the node at start, naming the flag.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let out = std::process::Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path().join("n2"))
        .args(["--listen", "127.0.0.1:0", "--node-ca-file"])
        .arg(&junk)
        .arg("serve")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("--node-ca-file") && err.contains("no PEM certificate"),
        "{err}"
    );
}

/// A workspace that reaches a limit says so to the devices connected to it,
/// whichever node they reached: at once, in a text message to those that
/// asked for notices (a node that proxies passes the owner's on), and on
/// the upgrade of those that connect later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_reached_is_told_to_devices_on_every_node() {
    let Some(pg) = Postgres::start() else { return };
    let dirs = tempfile::tempdir().unwrap();
    let token = create_workspace(&pg, &dirs.path().join("admin"));
    let limited = ["--max-docs-per-workspace", "1"];
    let n1 = node_with(&pg, &dirs.path().join("n1"), &limited);
    let n2 = node_with(&pg, &dirs.path().join("n2"), &limited);
    // Node 1 serves the workspace: a device connected there first.
    let (a, ok) = connect(sync_url(&n1), &token).await;
    ok.unwrap();
    let (mut on_owner, said) = listen(&sync_url(&n1), &token).await;
    assert_eq!(said, None, "room: nothing said");
    let (mut through_n2, said) = listen(&sync_url(&n2), &token).await;
    assert_eq!(said, None);
    assert_eq!(metric(&n2, "flowkeep_sync_connections_proxied"), 1.0);

    create_doc(&a, "the one").await;
    for ws in [&mut on_owner, &mut through_n2] {
        let notice = next_text(ws).await;
        let notice: serde_json::Value = serde_json::from_str(&notice).unwrap();
        let why = notice["limit"].as_str().unwrap_or_default();
        assert!(
            why.contains("workspace team holds 1 documents")
                && why.contains("--max-docs-per-workspace 1"),
            "{notice}"
        );
    }
    let (_, said) = listen(&sync_url(&n2), &token).await;
    assert!(
        said.is_some_and(|s| s.contains("--max-docs-per-workspace 1")),
        "a device connecting through node 2 is told on its upgrade"
    );
    a.stop().await;
}

/// The close frame `ws` gets after sending one message of `bytes` bytes.
async fn refused_for_size(ws: &mut Socket, bytes: usize) -> (u16, String) {
    use futures::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    ws.send(Message::Binary(vec![0u8; bytes].into()))
        .await
        .unwrap();
    next_close(ws).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_passed_through_another_node_hears_why_its_connection_was_closed() {
    let Some(pg) = Postgres::start() else { return };
    let dirs = tempfile::tempdir().unwrap();
    let token = create_workspace(&pg, &dirs.path().join("admin"));
    let small = ["--max-message-bytes", "65536"];
    let owner = node_with(&pg, &dirs.path().join("n1"), &small);
    let roomy = node_with(&pg, &dirs.path().join("n2"), &[]);
    let strict = node_with(&pg, &dirs.path().join("n3"), &small);
    // Node 1 serves the workspace: a device connected there first.
    let (_on_owner, _) = listen(&sync_url(&owner), &token).await;

    // Node 2 takes the message and passes it on; the owner refuses it and
    // its reason reaches the device through node 2.
    let (mut through_roomy, _) = listen(&sync_url(&roomy), &token).await;
    assert_eq!(metric(&roomy, "flowkeep_sync_connections_proxied"), 1.0);
    let (code, why) = refused_for_size(&mut through_roomy, 100_000).await;
    assert_eq!(code, 1009, "{why}");
    assert_eq!(
        why,
        "a change is larger than this server accepts (64.0 KiB, --max-message-bytes)"
    );

    // Node 3 refuses it itself, with the same sentence.
    let (mut through_strict, _) = listen(&sync_url(&strict), &token).await;
    let (code, why) = refused_for_size(&mut through_strict, 100_000).await;
    assert_eq!(code, 1009, "{why}");
    assert!(why.contains("64.0 KiB, --max-message-bytes"), "{why}");
}

/// A device passed through another node that vanishes (a laptop asleep
/// behind NAT: it neither reads nor writes) frees its place within three
/// pings, as it would on the owner: the node passing it on pings it, since
/// the owner's pings reach that node, whose client answers them whether or
/// not the device is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_passed_through_another_node_that_goes_silent_frees_its_place() {
    use futures::StreamExt;
    let Some(pg) = Postgres::start() else { return };
    let dirs = tempfile::tempdir().unwrap();
    let token = create_workspace(&pg, &dirs.path().join("admin"));
    let args = ["--ping-secs", "1", "--max-connections-per-workspace", "2"];
    let owner = node_with(&pg, &dirs.path().join("n1"), &args);
    let other = node_with(&pg, &dirs.path().join("n2"), &args);
    // Node 1 serves the workspace: a device connected there first, and it
    // answers pings throughout.
    let (mut on_owner, _) = listen(&sync_url(&owner), &token).await;
    let answering = tokio::spawn(async move { while let Some(Ok(_)) = on_owner.next().await {} });
    let (silent, _) = listen(&sync_url(&other), &token).await;
    assert_eq!(metric(&other, "flowkeep_sync_connections_proxied"), 1.0);
    let refused = samod_client::turned_away(&sync_url(&owner), &token).await;
    assert_eq!(
        refused.map(|(status, _, _)| status),
        Some(429),
        "both places taken"
    );

    let start = Instant::now();
    loop {
        match samod_client::turned_away(&sync_url(&owner), &token).await {
            None => break,
            Some((429, _, _)) if start.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Some(other) => panic!("{other:?} after {:?}", start.elapsed()),
        }
    }
    let freed_after = start.elapsed();
    assert!(
        freed_after < Duration::from_secs(10),
        "freed after {freed_after:?} (three silent pings of 1 s)"
    );
    assert_eq!(metric(&other, "flowkeep_sync_connections_proxied"), 0.0);
    assert!(!answering.is_finished(), "the device that answers stays");
    answering.abort();
    drop(silent);
}

/// Runs `sql` on the test's PostgreSQL (a blocking client, off the runtime)
/// and returns the first column of the first row, if any, as text.
fn sql(pg: &Postgres, sql: &str) -> Option<String> {
    let url = format!("{}?sslmode=disable", pg.url());
    let sql = sql.to_owned();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let rows = c.simple_query(&sql).unwrap();
        rows.into_iter().find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
    })
    .join()
    .unwrap()
}

/// The close frame `ws` gets next (messages before it are skipped).
async fn next_close(ws: &mut Socket) -> (u16, String) {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let closed = async {
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Close(Some(f))) => return (u16::from(f.code), f.reason.to_string()),
                Ok(Message::Close(None)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        panic!("the connection ended without a close frame")
    };
    tokio::time::timeout(Duration::from_secs(30), closed)
        .await
        .expect("closed within 30 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_database_refuses_a_workspaces_writes_its_devices_on_every_node_are_told() {
    let Some(pg) = Postgres::start() else { return };
    let dirs = tempfile::tempdir().unwrap();
    let token = create_workspace(&pg, &dirs.path().join("admin"));
    let n1 = node_with(&pg, &dirs.path().join("n1"), &[]);
    let n2 = node_with(&pg, &dirs.path().join("n2"), &[]);
    // Node 1 serves the workspace; another device is passed through node 2.
    let (a, ok) = connect(sync_url(&n1), &token).await;
    ok.unwrap();
    let (mut through_n2, _) = listen(&sync_url(&n2), &token).await;

    // The database refuses every write to the documents' table.
    sql(
        &pg,
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device (test)'; END $$;
         CREATE TRIGGER disk_full BEFORE INSERT OR UPDATE ON kv
           FOR EACH ROW EXECUTE FUNCTION refuse();",
    );
    let id = create_doc(&a, "refused at first").await;
    let (code, why) = next_close(&mut through_n2).await;
    assert_eq!(code, 1011, "{why}");
    assert_eq!(
        why,
        "the server could not store this workspace's changes; this device keeps them and sends them again"
    );
    assert!(metric(&n1, "flowkeep_sync_storage_failures_total") >= 1.0);
    // The workspace rests before it is loaded again: a device passed
    // through node 2 is told so, and when to ask again, as on node 1.
    let (status, retry_after, why) = samod_client::turned_away(&sync_url(&n2), &token)
        .await
        .expect("a device was let in while the workspace rests");
    assert_eq!((status, retry_after), (503, true), "{why}");
    assert!(why.contains("could not store workspace"), "{why}");

    // Room again: the device's next connection stores what it kept, and a
    // new device reads it.
    sql(&pg, "DROP TRIGGER disk_full ON kv");
    dial_connected(&a, sync_url(&n1), &token, BackoffConfig::default()).await;
    let key_part = id.to_string();
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = sql(
            &pg,
            &format!("SELECT count(*) FROM kv WHERE key LIKE '%/{key_part}/%'"),
        );
        if rows.as_deref().is_some_and(|n| n != "0") {
            break;
        }
        assert!(
            Instant::now() < until,
            "the document never reached the database"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (b, ok) = connect(sync_url(&n2), &token).await;
    ok.unwrap();
    assert_eq!(
        read_name(&b, &id).await.as_deref(),
        Some("refused at first")
    );
    a.stop().await;
    b.stop().await;
}

/// A node is ready (for a load balancer) only while its database takes
/// writes: a database made read-only, as a standby or a read-only default
/// is, makes `/readyz` say 503 and why; it is ready again once writable.
#[test]
fn a_node_whose_database_takes_no_writes_is_not_ready_and_says_why() {
    let Some(pg) = Postgres::start() else { return };
    let dirs = tempfile::tempdir().unwrap();
    create_workspace(&pg, &dirs.path().join("admin"));
    let n1 = node(&pg, &dirs.path().join("n1"));
    let readyz = || http_get_response(n1.port, "/readyz HTTP/1.1");
    assert!(readyz().starts_with("HTTP/1.1 200"), "{}", readyz());

    // Each statement alone: ALTER SYSTEM runs in no transaction block, and
    // the second connection says it may write whatever the default.
    let url = format!(
        "{}?sslmode=disable&options=-c%20default_transaction_read_only%3Doff",
        pg.url()
    );
    let set = |read_only: bool| {
        let url = url.clone();
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            c.batch_execute(if read_only {
                "ALTER SYSTEM SET default_transaction_read_only = on"
            } else {
                "ALTER SYSTEM RESET default_transaction_read_only"
            })
            .unwrap();
            c.batch_execute("SELECT pg_reload_conf()").unwrap();
        })
        .join()
        .unwrap()
    };
    let until = |what: &str, f: &dyn Fn(&str) -> bool| {
        let start = Instant::now();
        loop {
            let r = readyz();
            if f(&r) {
                return r;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "{what}: {r}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    set(true);
    let r = until("not ready once read-only", &|r| {
        r.starts_with("HTTP/1.1 503")
    });
    assert!(
        r.contains("not ready: the database takes no writes (transaction_read_only is on)"),
        "{r}"
    );
    set(false);
    until("ready again", &|r| r.starts_with("HTTP/1.1 200"));
}
