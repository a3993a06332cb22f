//! `flowkeep`: one binary, three front ends over the one command table:
//! the CLI (`cli/`), the local HTTP API that serves the web UI (`http/`),
//! and the desktop window (`app/`, cargo feature `native`). `ui_runs.rs` is
//! what the two UI front ends share (runs started from the UI, background
//! sync, calling the table by name).

#[cfg(feature = "native")]
mod app;
mod cli;
mod follow;
mod follow_output;
mod http;
mod ui_runs;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use flowkeep_app::{Service, StoreOptions};

use cli::{printable, render, Cli, Failure, Rendered};

/// Flowkeep's libraries log through `tracing`: their warnings reach stderr
/// (`RUST_LOG` changes what is shown, e.g. `RUST_LOG=flowkeep_app=debug`).
/// Other crates' logs stay off unless asked for: what goes wrong there
/// reaches the user as Flowkeep's own error. With `--json`, stderr carries
/// only the JSON error, so logs are off unless `RUST_LOG` is set.
fn logging(json: bool) {
    use std::io::IsTerminal;
    let default = if json {
        "off"
    } else {
        "off,flowkeep_app=warn,flowkeep_store=warn,flowkeep_core=warn,flowkeep=warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let json = cli.json;
    logging(json);

    match run(cli) {
        Ok(Some(out)) => {
            let mut stdout = std::io::stdout().lock();
            let written = if json {
                writeln!(stdout, "{}", out.json)
            } else if out.text.is_empty() {
                Ok(())
            } else {
                write!(stdout, "{}", printable(&out.text))
            };
            // A closed pipe (`| head`) is not an error worth a message.
            let _ = written.and_then(|_| stdout.flush());
            ExitCode::from(out.exit)
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(failure) => {
            let body = failure.body();
            if json {
                eprintln!(
                    "{}",
                    serde_json::to_string(&body).expect("error body serializes")
                );
            } else {
                eprint!("{}", printable(&render::error(&body)));
            }
            ExitCode::from(body.code.exit_code() as u8)
        }
    }
}

/// A command line clap cannot read: its message as clap prints it, or
/// with `--json` the one JSON error shape (`code` "usage", the argument
/// named in `fields`), so a script reads every failure the same way.
/// Exit 2 either way; help and version go to stdout as usual.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue};
    let wants_json = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    if !wants_json || !e.use_stderr() {
        e.exit();
    }
    let text = e.to_string();
    let message = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_owned();
    let field = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg.split_whitespace().next().map(str::to_owned),
        _ => None,
    };
    let fields: Vec<serde_json::Value> = field
        .map(|f| serde_json::json!({"field": f, "code": "usage", "message": message}))
        .into_iter()
        .collect();
    eprintln!(
        "{}",
        serde_json::json!({"code": "usage", "message": message, "fields": fields})
    );
    ExitCode::from(2)
}

fn run(cli: Cli) -> Result<Option<Rendered>, Failure> {
    let command = match cli.command {
        Some(c) => c,
        None if cfg!(feature = "native") && has_display() => cli::Command::App,
        None => {
            // A usage error, as clap reports a missing command, with the help.
            use clap::CommandFactory;
            eprint!("{}", Cli::command().render_help());
            std::process::exit(2);
        }
    };
    let data_dir = data_dir(cli.data_dir)?;
    let svc = open(&data_dir)?;
    match command {
        cli::Command::Ui { port, no_open } => {
            http::serve(svc, &data_dir, port.unwrap_or(0), cli.json, !no_open)
                .map_err(Failure::Other)?;
            Ok(None)
        }
        cli::Command::App => app(svc),
        cli::Command::Agent { cmd } => cli::agent::agent(svc, &data_dir, cmd, cli.json),
        command => cli::handle(&svc, command, cli.json),
    }
}

fn has_display() -> bool {
    std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
}

#[cfg(feature = "native")]
fn app(svc: Service) -> Result<Option<Rendered>, Failure> {
    app::run_app(svc).map_err(Failure::Other)?;
    Ok(None)
}

#[cfg(not(feature = "native"))]
fn app(_svc: Service) -> Result<Option<Rendered>, Failure> {
    Err(Failure::Other(anyhow::anyhow!(
        "this flowkeep was built without the desktop window (cargo feature `native`, see the README); \
         `flowkeep ui` serves the same app to your browser"
    )))
}

fn data_dir(flag: Option<PathBuf>) -> Result<PathBuf, Failure> {
    if let Some(d) = flag {
        return Ok(d);
    }
    dirs::data_dir().map(|d| d.join("flowkeep")).ok_or_else(|| {
        Failure::Other(anyhow::anyhow!(
            "no data directory on this system; pass --data-dir or set FLOWKEEP_DATA_DIR"
        ))
    })
}

/// Who this process acts for: `FLOWKEEP_ACTOR` when set (refused, not
/// cleaned, when it is not one plain line), else the login name.
fn actor() -> Result<String, Failure> {
    if let Some(given) = std::env::var_os("FLOWKEEP_ACTOR").filter(|v| !v.is_empty()) {
        let given = given.to_string_lossy();
        return flowkeep_core::actor::check("FLOWKEEP_ACTOR", &given).map_err(Failure::from);
    }
    Ok(["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find_map(|name| flowkeep_core::actor::from_system(&name))
        .unwrap_or_else(|| "unknown".to_owned()))
}

fn open(data_dir: &std::path::Path) -> Result<Service, Failure> {
    let actor = actor()?;
    let path = data_dir.join("flowkeep.db");
    Service::open(
        &path,
        StoreOptions {
            actor,
            ..Default::default()
        },
    )
    .map(|svc| {
        // FLOWKEEP_KEYCHAIN=off keeps the secrets key in its file (a
        // server without a desktop session, tests).
        if std::env::var("FLOWKEEP_KEYCHAIN").is_ok_and(|v| v == "off") {
            svc
        } else {
            svc.with_keychain(data_dir)
        }
    })
    .map_err(|e| {
        Failure::Other(anyhow::anyhow!(
            "cannot open the database at {}: {e}",
            path.display()
        ))
    })
}
