//! `flowkeep-sync-server`: serve workspaces, or manage them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use flowkeep_sync_server::{serve, token, AppState, Db, Limits, Workspaces};

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
    /// Address to listen on. Only loopback unless you choose otherwise.
    #[arg(
        long,
        global = true,
        env = "FLOWKEEP_SYNC_LISTEN",
        default_value = "127.0.0.1:7780"
    )]
    listen: SocketAddr,
    /// Largest WebSocket message accepted, in bytes.
    #[arg(long, global = true, env = "FLOWKEEP_SYNC_MAX_MESSAGE_BYTES", default_value_t = 16 << 20)]
    max_message_bytes: usize,
    /// Stop a workspace's repo after this many seconds without devices.
    #[arg(long, global = true, default_value_t = 60)]
    idle_seconds: u64,
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
    let db = Arc::new(
        Db::open(&dir.join("sync.db")).with_context(|| format!("opening {}", dir.display()))?,
    );
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
        None | Some(Command::Serve) => run_server(cli, db),
    }
}

fn run_server(cli: Cli, db: Arc<Db>) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for people: logs collected from a pipe stay plain.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let workspaces = Workspaces::new(db.clone());
        let ready = Arc::new(AtomicBool::new(false));
        let limits = Limits {
            max_message_bytes: cli.max_message_bytes,
            ..Limits::default()
        };
        let state = AppState {
            db,
            workspaces: workspaces.clone(),
            limits,
            ready: ready.clone(),
        };
        let listener = tokio::net::TcpListener::bind(cli.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cli.listen))?;
        tracing::info!(addr = %listener.local_addr()?, "listening");
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
        serve(listener, state, async move {
            shutdown_signal().await;
            shutdown_ready.store(false, Ordering::SeqCst);
            tracing::info!("shutting down");
        })
        .await?;
        reaper.abort();
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
