//! Load generator for the sync server, as its own process: many samod
//! devices in this process against a server process, with the server's CPU
//! and memory read from /proc. Prints a table.
//!
//!   cargo bench -p flowkeep-sync-server --bench fanout -- [fanout|spread|soak] [options]
//!
//! - `fanout` (default): a writer puts `--docs` documents (1,000) into one
//!   workspace, `--clients` devices (200) join it at once and open one of
//!   them, then the writer edits it: how long until every device sees the
//!   edit. Against our server and, when Node.js and `tests/js-interop`'s
//!   packages are there (`npm ci` in it), the JS reference server
//!   (`tests/js-interop/reference-server.mjs`), back to back.
//! - `spread`: `--devices` (1,000) across `--workspaces` (300), `--hot`
//!   (200) of them on one workspace; a writer per workspace edits; edit
//!   latency over all devices. Our server only (the reference has no
//!   workspaces).
//! - `soak`: `spread` kept editing for `--seconds` (600), rounds `--pause`
//!   (2) seconds apart, while `--churn` (2) devices leave per round and
//!   as many new ones join; the server's RSS, live heap and allocator
//!   resident memory every minute and the RSS's growth after the first.
//!   Ours, then the JS reference in the same way (its devices use one
//!   document each, all on its one repo).
//!
//! - `idle`: a writer puts `--docs` documents (1,000) of `--edits` changes
//!   (50) each into one workspace and a second device opens them all; both
//!   stay connected while the documents go idle (`--doc-idle` seconds, 20,
//!   passed to the server's `--doc-idle-seconds`): documents in memory, live
//!   heap and RSS in use, idle, and after one more edit to each (which
//!   loads it again; its latency against an edit to a loaded document).
//!
//! `--ours` runs only our server, `--reference` (soak) only the reference.
//! `FLOWKEEP_BENCH_SERVER_WRAP` runs our server under a profiler (see
//! `start_ours`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{Automerge, ReadDoc, ROOT};
use futures::StreamExt;
use samod::{BackoffConfig, DocHandle, DocumentId, Repo};

#[path = "fanout/idle.rs"]
mod idle;

#[path = "../../tests/samod_client/mod.rs"]
mod samod_client;
use samod_client::TokenDialer;

const BIN: &str = env!("CARGO_BIN_EXE_flowkeep-sync-server");

struct Args {
    mode: String,
    clients: usize,
    docs: usize,
    devices: usize,
    workspaces: usize,
    hot: usize,
    seconds: u64,
    churn: usize,
    edits: usize,
    doc_idle: u64,
    pause: u64,
    only_ours: bool,
    only_reference: bool,
}

fn args() -> Args {
    let mut a = Args {
        mode: "fanout".into(),
        clients: 200,
        docs: 1000,
        devices: 1000,
        workspaces: 300,
        hot: 200,
        seconds: 600,
        churn: 2,
        edits: 50,
        doc_idle: 20,
        pause: 2,
        only_ours: false,
        only_reference: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |d: &mut usize| {
            if let Some(v) = it.next().and_then(|v| v.parse().ok()) {
                *d = v;
            }
        };
        match arg.as_str() {
            "fanout" | "spread" | "soak" | "idle" => a.mode = arg,
            "--clients" => num(&mut a.clients),
            "--docs" => num(&mut a.docs),
            "--devices" => num(&mut a.devices),
            "--workspaces" => num(&mut a.workspaces),
            "--hot" => num(&mut a.hot),
            "--seconds" => {
                let mut s = a.seconds as usize;
                num(&mut s);
                a.seconds = s as u64;
            }
            "--churn" => num(&mut a.churn),
            "--edits" => num(&mut a.edits),
            "--doc-idle" => {
                let mut s = a.doc_idle as usize;
                num(&mut s);
                a.doc_idle = s as u64;
            }
            "--pause" => {
                let mut s = a.pause as usize;
                num(&mut s);
                a.pause = s as u64;
            }
            "--ours" => a.only_ours = true,
            "--reference" => a.only_reference = true,
            _ => {} // `--bench` from cargo
        }
    }
    a
}

/// A server process and how to reach it.
struct Server {
    child: Child,
    port: u16,
    name: &'static str,
    /// Device credential per workspace (ours), or none (the reference).
    credentials: Vec<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn url(&self) -> url::Url {
        let path = if self.name == "ours" { "/sync" } else { "" };
        url::Url::parse(&format!("ws://127.0.0.1:{}{path}", self.port)).unwrap()
    }

    fn credential(&self, workspace: usize) -> String {
        self.credentials.get(workspace).cloned().unwrap_or_default()
    }

    /// CPU seconds (user + system) the process has used.
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name, which is in parentheses.
        let rest = stat.rsplit(')').next().unwrap_or_default();
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // utime and stime are fields 14 and 15 (11 and 12 after the name).
        (ticks(11) + ticks(12)) / 100.0
    }

    /// Resident memory now and at its peak, in MiB.
    fn rss_mib(&self) -> (f64, f64) {
        (self.status_mib("VmRSS:"), self.status_mib("VmHWM:"))
    }

    /// The live heap our server reports at /metrics, in MiB.
    fn heap_mib(&self) -> Option<f64> {
        Some(self.metric("flowkeep_sync_heap_allocated_bytes")? / 1024.0 / 1024.0)
    }

    /// What the allocator keeps resident for our server (/metrics), in MiB:
    /// the live heap plus partly used pages, freed pages not yet returned and
    /// its own metadata.
    fn allocator_resident_mib(&self) -> Option<f64> {
        Some(self.metric("flowkeep_sync_heap_resident_bytes")? / 1024.0 / 1024.0)
    }

    /// A figure our server reports at /metrics.
    fn metric(&self, name: &str) -> Option<f64> {
        use std::io::{Read, Write};
        if self.name != "ours" {
            return None;
        }
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        tcp.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        tcp.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        tcp.read_to_string(&mut text).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
    }

    /// Threads the process has now.
    fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.child.id()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// A memory figure from /proc/PID/status, in MiB.
    fn status_mib(&self, key: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    }
}

fn printed_secret(data: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(args)
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

fn wait_for_line(child: &mut Child, prefix: &str) -> String {
    use std::io::BufRead;
    let stream: Box<dyn std::io::Read + Send> = match child.stderr.take() {
        Some(e) if prefix == "addr=" => Box::new(e),
        _ => Box::new(child.stdout.take().unwrap()),
    };
    let mut lines = std::io::BufReader::new(stream).lines();
    loop {
        let line = lines.next().expect("server exited").unwrap();
        if let Some(rest) = line.split(prefix).nth(1) {
            let found = rest.split_whitespace().next().unwrap().to_owned();
            std::thread::spawn(move || for _ in lines {});
            return found;
        }
    }
}

fn start_ours(workspaces: usize, extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut credentials = Vec::new();
    for w in 0..workspaces {
        let name = format!("w{w}");
        printed_secret(dir.path(), &["workspace", "create", &name]);
        credentials.push(printed_secret(
            dir.path(),
            &["device", "add", "--workspace", &name, "--name", "load"],
        ));
    }
    // FLOWKEEP_BENCH_SERVER_WRAP="heaptrack -o /tmp/server" runs the server
    // under a profiler (the CPU and RSS columns then measure the wrapper).
    let wrap = std::env::var("FLOWKEEP_BENCH_SERVER_WRAP").unwrap_or_default();
    let mut wrap = wrap.split_whitespace();
    let mut child = match wrap.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(wrap).arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    let mut child = child
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--max-connections-per-workspace",
            "10000",
        ])
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr = wait_for_line(&mut child, "addr=");

    let port = addr.rsplit(':').next().unwrap().parse().unwrap();
    Server {
        child,
        port,
        name: "ours",
        credentials,
        _dir: Some(dir),
    }
}

fn reference_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/js-interop");
    let ok = dir.join("node_modules/@automerge/automerge-repo").is_dir()
        && Command::new("node").arg("--version").output().is_ok();
    ok.then_some(dir)
}

fn start_reference(dir: &Path) -> Server {
    let mut child = Command::new("node")
        .arg(dir.join("reference-server.mjs"))
        .arg("0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let port = wait_for_line(&mut child, "listening ").parse().unwrap();
    Server {
        child,
        port,
        name: "JS reference",
        credentials: Vec::new(),
        _dir: None,
    }
}

async fn device(server: &Server, workspace: usize) -> Repo {
    let backoff = BackoffConfig {
        initial_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(5),
        max_retries: None,
    };
    connected(server.url(), server.credential(workspace), backoff).await
}

/// A new device connected to `url` with `token` (waiting up to two minutes
/// for the connection).
async fn connected(url: url::Url, token: String, backoff: BackoffConfig) -> Repo {
    let repo = Repo::build_tokio().load().await;
    let dialer = repo
        .dial(backoff, Arc::new(TokenDialer { url, token }))
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(120), dialer.established()).await;
    repo
}

async fn create(repo: &Repo, value: &str) -> DocHandle {
    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    tx.put(ROOT, "value", value).unwrap();
    tx.commit();
    repo.create(doc).await.unwrap()
}

fn value(h: &DocHandle) -> Option<String> {
    h.with_document(|d| {
        d.get(ROOT, "value")
            .ok()
            .flatten()
            .map(|(v, _)| v.as_str().map(str::to_owned).unwrap_or_default())
    })
}

fn set(h: &DocHandle, v: &str) {
    h.with_document(|d| {
        let mut tx = d.transaction();
        tx.put(ROOT, "value", v).unwrap();
        tx.commit();
    });
}

/// Finds a document, asking again until it arrives (the server may not
/// have it yet, or be busy).
async fn open(repo: &Repo, id: &DocumentId, within: Duration) -> Option<DocHandle> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if let Ok(Ok(Some(h))) =
            tokio::time::timeout(Duration::from_secs(30), repo.find(id.clone())).await
        {
            return Some(h);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// A table cell for a figure in MiB that only our server reports.
fn mib_cell(mib: Option<f64>) -> String {
    mib.map_or("-".into(), |m| format!("{m:.0} MiB"))
}

/// Waits until `h` says `want`; how long after `since` that was.
async fn until_value(
    h: DocHandle,
    want: String,
    since: Instant,
    within: Duration,
) -> Option<Duration> {
    let mut changes = h.changes();
    let deadline = tokio::time::sleep(within);
    tokio::pin!(deadline);
    loop {
        if value(&h).as_deref() == Some(want.as_str()) {
            return Some(since.elapsed());
        }
        tokio::select! {
            _ = changes.next() => {}
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = &mut deadline => return None,
        }
    }
}

fn pct(sorted: &[Duration], p: f64) -> String {
    if sorted.is_empty() {
        return "-".into();
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    format!("{:.0} ms", sorted[i].as_secs_f64() * 1000.0)
}

struct Row {
    server: &'static str,
    joined: usize,
    join: Vec<Duration>,
    edit: Vec<Duration>,
    expected: usize,
    cpu: f64,
    rss: (f64, f64),
    wall: Duration,
}

fn print_rows(title: &str, rows: &[Row]) {
    println!("\n{title}");
    println!(
        "| server | devices that saw the edit | join p50 / p99 | last edit p50 / p99 | server CPU | server RSS now / peak | wall |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        let (mut j, mut e) = (r.join.clone(), r.edit.clone());
        j.sort();
        e.sort();
        println!(
            "| {} | {} of {} (joined {}) | {} / {} | {} / {} | {:.1} s | {:.0} / {:.0} MiB | {:.1} s |",
            r.server,
            e.len(),
            r.expected,
            r.joined,
            pct(&j, 0.5),
            pct(&j, 0.99),
            pct(&e, 0.5),
            pct(&e, 0.99),
            r.cpu,
            r.rss.0,
            r.rss.1,
            r.wall.as_secs_f64()
        );
    }
}

async fn fanout(server: &Server, clients: usize, docs: usize) -> Row {
    let wall = Instant::now();
    let writer = device(server, 0).await;
    let hot = create(&writer, "first").await;
    let mut last = None;
    for i in 0..docs {
        last = Some(create(&writer, &format!("doc {i}")).await);
    }
    // The server has them all once another device can open the last one.
    let check = device(server, 0).await;
    let last_id = last
        .map(|h| h.document_id().clone())
        .unwrap_or(hot.document_id().clone());
    assert!(
        open(&check, &last_id, Duration::from_secs(120))
            .await
            .is_some(),
        "{}: the seeded documents never reached the server",
        server.name
    );
    check.stop().await;

    let cpu0 = server.cpu_seconds();
    let started = Instant::now();
    let mut joins = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let url_id = hot.document_id().clone();
        let s = (server.url(), server.credential(0));
        joins.spawn(async move {
            let t = Instant::now();
            let repo = Repo::build_tokio().load().await;
            let dialer = repo
                .dial(
                    BackoffConfig {
                        initial_delay: Duration::from_millis(500),
                        max_delay: Duration::from_secs(5),
                        max_retries: None,
                    },
                    Arc::new(TokenDialer {
                        url: s.0,
                        token: s.1,
                    }),
                )
                .unwrap();
            let _ = tokio::time::timeout(Duration::from_secs(60), dialer.established()).await;
            let h = open(&repo, &url_id, Duration::from_secs(60)).await;
            (repo, h, t.elapsed())
        });
    }
    let mut joined = Vec::new();
    let mut join_times = Vec::new();
    while let Some(r) = joins.join_next().await {
        let (repo, h, took) = r.unwrap();
        if let Some(h) = h {
            join_times.push(took);
            joined.push((repo, h));
        } else {
            repo.stop().await;
        }
    }
    let _ = started;
    // A few edits, then the last one everybody must see.
    for i in 0..5 {
        set(&hot, &format!("edit {i}"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let marker = format!("last {}", std::process::id());
    let since = Instant::now();
    set(&hot, &marker);
    let mut waits = tokio::task::JoinSet::new();
    for (_, h) in &joined {
        waits.spawn(until_value(
            h.clone(),
            marker.clone(),
            since,
            Duration::from_secs(60),
        ));
    }
    let mut edit = Vec::new();
    while let Some(r) = waits.join_next().await {
        if let Ok(Some(d)) = r {
            edit.push(d);
        }
    }
    let cpu = server.cpu_seconds() - cpu0;
    let rss = server.rss_mib();
    let joined_n = joined.len();
    for (repo, _) in joined {
        repo.stop().await;
    }
    writer.stop().await;
    Row {
        server: server.name,
        joined: joined_n,
        join: join_times,
        edit,
        expected: clients,
        cpu,
        rss,
        wall: wall.elapsed(),
    }
}

/// Devices spread over workspaces (`hot` of them on workspace 0); each
/// workspace's first device writes one document the others open. Returns
/// the devices' handles grouped by workspace, writer first.
async fn spread_setup(
    server: &Server,
    devices: usize,
    workspaces: usize,
    hot: usize,
) -> Vec<Vec<(Repo, DocHandle)>> {
    let mut groups: Vec<Vec<(Repo, DocHandle)>> = Vec::new();
    for w in 0..workspaces {
        let writer = device(server, w).await;
        let h = create(&writer, "first").await;
        groups.push(vec![(writer, h)]);
    }
    let rest = devices.saturating_sub(workspaces);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..rest {
        let w = if i < hot.saturating_sub(1) {
            0
        } else {
            1 + i % (workspaces - 1).max(1)
        };
        let w = w.min(workspaces - 1);
        let id = groups[w][0].1.document_id().clone();
        let (url, token) = (server.url(), server.credential(w));
        tasks.spawn(async move {
            let (repo, h) = join(url, token, id).await;
            (w, repo, h)
        });
        // Not all at once: devices of a team do not start in the same ms.
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    while let Some(r) = tasks.join_next().await {
        let (w, repo, h) = r.unwrap();
        match h {
            Some(h) => groups[w].push((repo, h)),
            None => repo.stop().await,
        }
    }
    groups
}

/// A new device that joins a workspace and opens its document.
async fn join(url: url::Url, token: String, id: DocumentId) -> (Repo, Option<DocHandle>) {
    let repo = connected(url, token, BackoffConfig::default()).await;
    let h = open(&repo, &id, Duration::from_secs(120)).await;
    (repo, h)
}

/// One edit by each workspace's writer; how long until each other device
/// of the workspace sees it.
async fn spread_round(groups: &[Vec<(Repo, DocHandle)>], round: usize) -> Vec<Duration> {
    let mut waits = tokio::task::JoinSet::new();
    for (w, g) in groups.iter().enumerate() {
        let marker = format!("round {round} of {w}");
        let since = Instant::now();
        set(&g[0].1, &marker);
        for (_, h) in &g[1..] {
            waits.spawn(until_value(
                h.clone(),
                marker.clone(),
                since,
                Duration::from_secs(30),
            ));
        }
    }
    let mut out = Vec::new();
    while let Some(r) = waits.join_next().await {
        if let Ok(Some(d)) = r {
            out.push(d);
        }
    }
    out
}

async fn spread(a: &Args) {
    let server = start_ours(a.workspaces, &[]);
    let wall = Instant::now();
    let groups = spread_setup(&server, a.devices, a.workspaces, a.hot).await;
    let joined: usize = groups.iter().map(Vec::len).sum();
    let cpu0 = server.cpu_seconds();
    let mut edit = Vec::new();
    for round in 0..3 {
        edit.extend(spread_round(&groups, round).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let row = Row {
        server: server.name,
        joined,
        join: Vec::new(),
        expected: 3 * (joined - groups.len()),
        edit,
        cpu: server.cpu_seconds() - cpu0,
        rss: server.rss_mib(),
        wall: wall.elapsed(),
    };
    print_rows(
        &format!(
            "spread: {} devices across {} workspaces ({} on one), one edit per workspace, 3 rounds",
            a.devices, a.workspaces, a.hot
        ),
        &[row],
    );
    for g in groups {
        for (repo, _) in g {
            repo.stop().await;
        }
    }
}

async fn soak(a: &Args) {
    if !a.only_reference {
        soak_on(a, &start_ours(a.workspaces, &[])).await;
    }
    match reference_dir() {
        Some(dir) if !a.only_ours => soak_on(a, &start_reference(&dir)).await,
        _ => {}
    }
}

async fn soak_on(a: &Args, server: &Server) {
    let mut groups = spread_setup(server, a.devices, a.workspaces, a.hot).await;
    let joined: usize = groups.iter().map(Vec::len).sum();
    println!(
        "\nsoak, {}: {joined} devices across {} workspaces, one edit per workspace every {} s, \
         {} devices leave and {} join per round, {} s",
        server.name, a.workspaces, a.pause, a.churn, a.churn, a.seconds
    );
    println!(
        "| minute | edits seen | edit p50 / p99 | devices replaced | server threads | server RSS | live heap | allocator resident | RSS vs minute 1 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    // Every device but the writers, in turn, is the next to leave.
    let seats: Vec<(usize, usize)> = groups
        .iter()
        .enumerate()
        .flat_map(|(w, g)| (1..g.len()).map(move |i| (w, i)))
        .collect();
    let started = Instant::now();
    let (mut round, mut minute, mut replaced) = (0, 1, 0);
    let mut first_rss = None;
    let mut window = Vec::new();
    while started.elapsed() < Duration::from_secs(a.seconds) {
        let mut arriving = Vec::new();
        for k in 0..a.churn.min(seats.len()) {
            let (w, i) = seats[(round * a.churn + k) % seats.len()];
            let id = groups[w][0].1.document_id().clone();
            let (url, token) = (server.url(), server.credential(w));
            arriving.push((w, i, tokio::spawn(join(url, token, id))));
        }
        window.extend(spread_round(&groups, round).await);
        for (w, i, arrival) in arriving {
            match arrival.await {
                Ok((repo, Some(h))) => {
                    let (left, _) = std::mem::replace(&mut groups[w][i], (repo, h));
                    left.stop().await;
                    replaced += 1;
                }
                Ok((repo, None)) => repo.stop().await,
                Err(_) => {}
            }
        }
        round += 1;
        tokio::time::sleep(Duration::from_secs(a.pause)).await;
        if started.elapsed() >= Duration::from_secs(60 * minute) {
            let rss = server.rss_mib().0;
            let base = *first_rss.get_or_insert(rss);
            window.sort();
            println!(
                "| {minute} | {} | {} / {} | {replaced} | {} | {:.0} MiB | {} | {} | {:+.1}% |",
                window.len(),
                pct(&window, 0.5),
                pct(&window, 0.99),
                server.threads(),
                rss,
                mib_cell(server.heap_mib()),
                mib_cell(server.allocator_resident_mib()),
                (rss / base - 1.0) * 100.0
            );
            window.clear();
            minute += 1;
        }
    }
    for g in groups {
        for (repo, _) in g {
            repo.stop().await;
        }
    }
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        match a.mode.as_str() {
            "spread" => spread(&a).await,
            "soak" => soak(&a).await,
            "idle" => idle::idle(&a).await,
            _ => {
                let mut rows = Vec::new();
                let ours = start_ours(1, &[]);
                rows.push(fanout(&ours, a.clients, a.docs).await);
                drop(ours);
                match reference_dir() {
                    Some(dir) if !a.only_ours => {
                        let reference = start_reference(&dir);
                        rows.push(fanout(&reference, a.clients, a.docs).await);
                    }
                    Some(_) => {}
                    None => {
                        println!("(no JS reference: needs node and `npm ci` in tests/js-interop)")
                    }
                }
                print_rows(
                    &format!(
                        "fanout: {} devices join one workspace holding {} documents, then one edit",
                        a.clients, a.docs
                    ),
                    &rows,
                );
            }
        }
    });
}
