//! `flowkeep-sync-server`: serve workspaces, or manage them.

// Gives freed memory back to the OS, which glibc's malloc did not under a
// steady stream of edits (flowkeep_sync_server::memory says what was measured).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use flowkeep_sync_server::{
    cluster, devices, serve, serve_tls, tls, token, AppState, Db, Limits, Workspaces,
};

#[derive(Parser)]
#[command(
    name = "flowkeep-sync-server",
    version,
    about = "Sync server for Flowkeep workspaces"
)]
struct Cli {
    /// Where the server keeps its database (default: the platform data dir).
    #[arg(long, global = true, env = "FLOWKEEP_SYNC_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Where workspaces, devices and documents are kept: `sqlite` (the
    /// default: a file in the data dir) or a `postgres://user@host/db` URL
    /// that several server processes can share.
    #[arg(long, global = true, env = "FLOWKEEP_SYNC_STORAGE")]
    storage: Option<String>,
    /// A CA certificate (PEM) to trust for PostgreSQL over TLS
    /// (`sslmode=require` in the URL), beside the system's roots.
    #[arg(
        long,
        global = true,
        env = "FLOWKEEP_SYNC_STORAGE_CA_FILE",
        value_name = "PEM"
    )]
    storage_ca_file: Option<PathBuf>,
    /// With shared storage: the URL the other nodes reach this one at
    /// (`ws://host:port`; default: the --listen address).
    #[arg(long, global = true, env = "FLOWKEEP_SYNC_ADVERTISE_URL")]
    advertise_url: Option<String>,
    /// With shared storage: a CA certificate (PEM) to trust, beside the
    /// system's roots, when proxying to another node at a wss:// URL.
    #[arg(
        long,
        global = true,
        env = "FLOWKEEP_SYNC_NODE_CA_FILE",
        value_name = "PEM"
    )]
    node_ca_file: Option<PathBuf>,
    /// With shared storage: seconds a node's hold on a workspace lasts
    /// unrenewed, so how long a dead node's workspaces wait for another.
    #[arg(long, global = true, env = "FLOWKEEP_SYNC_LEASE_SECONDS", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(3..=3600))]
    lease_seconds: u64,
    /// Address to listen on. Only loopback unless you choose otherwise.
    #[arg(
        long,
        global = true,
        env = "FLOWKEEP_SYNC_LISTEN",
        default_value = "127.0.0.1:7780"
    )]
    listen: SocketAddr,
    /// Largest WebSocket message accepted, in bytes (4 KiB to 1 GiB).
    #[arg(long, global = true, env = "FLOWKEEP_SYNC_MAX_MESSAGE_BYTES", default_value_t = 16 << 20,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(4096..=1 << 30))]
    max_message_bytes: usize,
    /// Most devices connected at once, over all workspaces.
    #[arg(
        long,
        global = true,
        env = "FLOWKEEP_SYNC_MAX_CONNECTIONS",
        default_value_t = 10_000
    )]
    max_connections: usize,
    /// Most devices connected to one workspace at once.
    #[arg(
        long,
        global = true,
        env = "FLOWKEEP_SYNC_MAX_CONNECTIONS_PER_WORKSPACE",
        default_value_t = 1_000
    )]
    max_connections_per_workspace: usize,
    /// Seconds between pings to each connection; one silent for three is
    /// closed (a device that vanished frees its place).
    #[arg(long, env = "FLOWKEEP_SYNC_PING_SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    ping_secs: u64,
    /// Most documents (workflows, run logs) one workspace may hold; past
    /// it the server takes no new ones.
    #[arg(
        long,
        global = true,
        env = "FLOWKEEP_SYNC_MAX_DOCS_PER_WORKSPACE",
        default_value_t = 100_000
    )]
    max_docs_per_workspace: u64,
    /// Most bytes one workspace may store; past it the server takes no
    /// more changes (devices still receive).
    #[arg(
        long,
        global = true,
        env = "FLOWKEEP_SYNC_MAX_BYTES_PER_WORKSPACE",
        default_value_t = 1 << 30
    )]
    max_bytes_per_workspace: u64,
    /// Stop a workspace's repo after this many seconds without devices.
    #[arg(long, global = true, default_value_t = 60)]
    idle_seconds: u64,
    /// Unload a document from memory after this many seconds without a
    /// message about it (sync or presence; its devices stay connected, and
    /// the next change loads it again). 0 keeps every document a device used in memory
    /// until its workspace has no devices (one asked for and found nowhere
    /// still goes after 2 s).
    #[arg(long, global = true, env = "FLOWKEEP_SYNC_DOC_IDLE_SECONDS",
          default_value_t = flowkeep_sync_server::workspaces::DOC_IDLE.as_secs())]
    doc_idle_seconds: u64,
    /// Serve TLS (wss://, https://) with this certificate chain (PEM).
    #[arg(
        long,
        global = true,
        env = "FLOWKEEP_SYNC_TLS_CERT",
        requires = "tls_key"
    )]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        global = true,
        env = "FLOWKEEP_SYNC_TLS_KEY",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Create and list workspaces.
    #[command(subcommand)]
    Workspace(WorkspaceCmd),
    /// List, add and revoke the devices of a workspace.
    #[command(subcommand)]
    Device(DeviceCmd),
}

#[derive(Subcommand)]
enum DeviceCmd {
    /// A workspace's devices: id, name, first and last seen, revoked.
    List {
        #[arg(long)]
        workspace: String,
    },
    /// Enrol a device that cannot enrol itself (a headless or JS
    /// automerge-repo client) and print its credential (shown once).
    Add {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        name: String,
    },
    /// Shut a device out at once: its credential stops working and its open
    /// connections are closed. The other devices keep syncing.
    Revoke {
        #[arg(long)]
        workspace: String,
        /// The device id `device list` shows (also --device).
        #[arg(required_unless_present = "device")]
        device_id: Option<String>,
        #[arg(long, conflicts_with = "device_id")]
        device: Option<String>,
    },
}

#[derive(Subcommand)]
enum WorkspaceCmd {
    /// Create a workspace and print its token (shown once).
    Create {
        name: String,
    },
    List,
    /// Replace a workspace's token; the old one stops working.
    RotateToken {
        name: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let dir = match cli.data_dir.clone() {
        Some(d) => d,
        None => dirs::data_dir()
            .context("no data dir on this system; pass --data-dir")?
            .join("flowkeep-sync"),
    };
    let db = Arc::new(match cli.storage.as_deref() {
        Some(url) if !url.is_empty() && url != "sqlite" => {
            // Not the URL in the message: it may hold a password.
            let ca = match &cli.storage_ca_file {
                Some(p) => Some(
                    std::fs::read_to_string(p)
                        .with_context(|| format!("reading --storage-ca-file {}", p.display()))?,
                ),
                None => None,
            };
            Db::open_storage_with(Some(url), &dir, ca.as_deref())
                .context("opening the --storage database")?
        }
        _ => {
            Db::open(&dir.join("sync.db")).with_context(|| format!("opening {}", dir.display()))?
        }
    });
    match cli.command {
        Some(Command::Workspace(WorkspaceCmd::Create { name })) => {
            let token = token::generate();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis() as i64;
            let ws = db.create_workspace(&name, &token::hash(&token), now)?;
            println!("Created workspace {} (id {}).", ws.name, ws.id);
            println!("Its token is shown only now; devices need it to sync. Token:");
            println!("{token}");
            Ok(())
        }
        Some(Command::Workspace(WorkspaceCmd::List)) => {
            for w in db.workspaces()? {
                println!("{}  {}", w.id, w.name);
            }
            Ok(())
        }
        Some(Command::Workspace(WorkspaceCmd::RotateToken { name })) => {
            let token = token::generate();
            if !db.rotate_token(&name, &token::hash(&token))? {
                anyhow::bail!("no workspace named {name}");
            }
            println!("New token for {name}:");
            println!("{token}");
            Ok(())
        }
        Some(Command::Device(cmd)) => device(&db, &dir, cmd),
        None | Some(Command::Serve) => run_server(cli, db, &dir),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn show_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

fn device(db: &Db, dir: &std::path::Path, cmd: DeviceCmd) -> anyhow::Result<()> {
    let workspace = |name: &str| {
        db.workspace_by_name(name)?.ok_or_else(|| {
            anyhow::anyhow!("no workspace named {name}: `workspace list` shows them")
        })
    };
    match cmd {
        DeviceCmd::List { workspace: name } => {
            let w = workspace(&name)?;
            let devices = db.devices(&w.id)?;
            println!(
                "{:<38} {:<24} {:<24} {:<24} STATUS",
                "DEVICE", "NAME", "FIRST SEEN", "LAST SEEN"
            );
            for d in &devices {
                let status = match d.revoked_at {
                    Some(t) => format!("revoked {}", show_time(t)),
                    None => "active".to_owned(),
                };
                println!(
                    "{:<38} {:<24} {:<24} {:<24} {status}",
                    d.device_id,
                    d.name,
                    show_time(d.first_seen),
                    show_time(d.last_seen)
                );
            }
            let active = devices.iter().filter(|d| d.revoked_at.is_none()).count();
            println!("{} device(s) in {}, {active} active", devices.len(), w.name);
            Ok(())
        }
        DeviceCmd::Add {
            workspace: name,
            name: device_name,
        } => {
            let w = workspace(&name)?;
            let device_id = format!("device-{}", token::random_hex(8));
            let credential = token::generate_device();
            db.enrol(
                &w.id,
                &device_id,
                &device_name,
                &token::hash(&credential),
                None,
                now_ms(),
            )?;
            println!("Added device {device_id} ({device_name}) to {}.", w.name);
            println!("Its credential is shown only now (Authorization: Bearer, or ?token=):");
            println!("{credential}");
            Ok(())
        }
        DeviceCmd::Revoke {
            workspace: name,
            device_id,
            device,
        } => {
            let w = workspace(&name)?;
            let id = device_id.or(device).unwrap_or_default();
            if !db.revoke(&w.id, &id, now_ms())? {
                println!("{id} was already revoked in {}.", w.name);
                return Ok(());
            }
            match devices::notify_revoked(dir) {
                Some(_) => println!("Revoked {id} in {}; the running server closed its connections.", w.name),
                None => println!(
                    "Revoked {id} in {}. No server is running on this data dir; the device is refused when it next connects.",
                    w.name
                ),
            }
            Ok(())
        }
    }
}

fn run_server(cli: Cli, db: Arc<Db>, dir: &std::path::Path) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            // samod logs each document's sync at info: an operator wants one
            // line per connection (ours), so samod's own come at warn unless
            // RUST_LOG asks for them.
            // automerge logs every document that fails to load at error
            // (an `instrument(err)` span): here those are what devices
            // send, each already refused with the message.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,samod=warn,samod_core=warn,automerge=off".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for people: logs collected from a pipe stay plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    #[cfg(unix)]
    match flowkeep_sync_server::open_files::raise() {
        Ok(limit) => {
            if limit.now > limit.was {
                tracing::info!(
                    was = limit.was,
                    now = limit.now,
                    "raised the limit on open files"
                );
            }
            if !limit.fits(cli.max_connections) {
                tracing::warn!(
                    open_files = limit.now,
                    max_connections = cli.max_connections,
                    "this process may hold {} files open (ulimit -n), too few for --max-connections {}: \
                     once it holds that many, new devices wait unanswered until one disconnects. \
                     Raise the limit (systemd LimitNOFILE=, ulimit -Hn) or lower --max-connections",
                    limit.now,
                    cli.max_connections,
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read or raise the limit on open files"),
    }
    if let Err(e) = flowkeep_sync_server::memory::return_freed_pages_sooner() {
        tracing::warn!(error = %e, "memory freed by the server may stay resident for a while");
    }
    let rt = flowkeep_sync_server::runtime::build()?;
    rt.block_on(async move {
        let listener = flowkeep_sync_server::listener::bind(cli.listen)
            .with_context(|| format!("cannot listen on {}", cli.listen))?;
        // The port the OS chose for `:0`, not 0: other nodes dial it.
        let bound = listener.local_addr()?;
        let node_url = match (
            &cli.advertise_url,
            cluster::default_url(bound, cli.tls_cert.is_some()),
        ) {
            (Some(u), _) if u.starts_with("ws://") || u.starts_with("wss://") => u.clone(),
            (Some(u), _) => anyhow::bail!(
                "--advertise-url {u} must be a ws:// or wss:// URL (host and port, no path)"
            ),
            (None, Some(u)) => u,
            (None, None) if db.is_shared() => anyhow::bail!(
                "--advertise-url is needed with shared --storage when listening on {}: \
                 the other nodes must know where to reach this one (e.g. ws://10.0.0.5:7780)",
                bound
            ),
            (None, None) => format!("ws://localhost:{}", bound.port()),
        };
        // A loopback address reaches this node from this machine only; two
        // machines advertising the same one would each take the other's
        // workspaces as their own (a lease is this node's again at its own
        // address) and pass devices on to themselves.
        if db.is_shared() && cluster::is_loopback_url(&node_url) {
            tracing::warn!(
                advertise_url = node_url.as_str(),
                "nodes reach this node at a loopback address: fine for nodes on this machine only; \
                 with nodes on other machines give --advertise-url an address they reach"
            );
        }
        // Built once: the system's roots are read from disk.
        let node_ca = match &cli.node_ca_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .with_context(|| format!("reading --node-ca-file {}", p.display()))?,
            ),
            None => None,
        };
        let peer_tls = tls::client_config(node_ca.as_deref()).with_context(|| match &cli.node_ca_file {
            Some(p) => format!("--node-ca-file {}", p.display()),
            None => "TLS to other nodes".to_owned(),
        })?;
        let node = cluster::Node::new(&node_url, Duration::from_secs(cli.lease_seconds))
            .with_peer_tls(peer_tls);
        let quota = flowkeep_sync_server::quota::Quota {
            max_docs: cli.max_docs_per_workspace,
            max_bytes: cli.max_bytes_per_workspace,
        };
        let doc_idle = (cli.doc_idle_seconds > 0).then(|| Duration::from_secs(cli.doc_idle_seconds));
        let workspaces = Workspaces::with_limits(db.clone(), node.clone(), quota, doc_idle);
        let ready = Arc::new(AtomicBool::new(false));
        let limits = Limits {
            max_connections: cli.max_connections,
            max_connections_per_workspace: cli.max_connections_per_workspace,
            ping_interval: std::time::Duration::from_secs(cli.ping_secs),
            ..Limits::for_messages(cli.max_message_bytes)
        };
        let state = AppState {
            ready: ready.clone(),
            ..AppState::new(db.clone(), workspaces.clone(), limits)
        };
        let tls = match (&cli.tls_cert, &cli.tls_key) {
            (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
            _ => None,
        };
        tracing::info!(
            addr = %listener.local_addr()?,
            tls = tls.is_some(),
            storage = if db.is_shared() { "postgres" } else { "sqlite" },
            "listening"
        );
        if db.is_shared() {
            tracing::info!(node = node.id.as_str(), url = node.url.as_str(), "serving as one node of several");
        }
        let leases = tokio::spawn(workspaces.clone().keep_leases());
        if tls.is_none() && !cli.listen.ip().is_loopback() {
            tracing::warn!(
                "serving plain ws:// on a non-loopback address: tokens and data cross the network in clear \
                 unless a TLS proxy is in front (or pass --tls-cert/--tls-key)"
            );
        }
        let revocations = tokio::spawn(
            state
                .connected
                .clone()
                .watch_revocations(db.clone(), Duration::from_millis(500)),
        );
        let admin = {
            let serving = state
                .connected
                .clone()
                .serve_admin(db, dir.join(devices::ADMIN_SOCKET));
            tokio::spawn(async move {
                if let Err(e) = serving.await {
                    tracing::warn!(error = %e, "no admin socket: `device revoke` takes effect within half a second");
                }
            })
        };
        let reaper = {
            let workspaces = workspaces.clone();
            let idle = Duration::from_secs(cli.idle_seconds);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    workspaces.reap_idle(idle).await;
                }
            })
        };
        ready.store(true, Ordering::SeqCst);
        let shutdown_ready = ready.clone();
        let shutdown = async move {
            shutdown_signal().await;
            shutdown_ready.store(false, Ordering::SeqCst);
            tracing::info!("shutting down");
        };
        match tls {
            Some(config) => serve_tls(listener, state, config, shutdown).await?,
            None => serve(listener, state, shutdown).await?,
        }
        reaper.abort();
        leases.abort();
        revocations.abort();
        admin.abort();
        let _ = std::fs::remove_file(dir.join(devices::ADMIN_SOCKET));
        // Repos write what they hold before stopping.
        workspaces.stop_all().await;
        tracing::info!("stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
