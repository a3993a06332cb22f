//! `flowkeep-sync-server`: not implemented yet (see the sync issue). It says
//! so and exits non-zero rather than pretending to serve.

use std::process::ExitCode;

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--version" || a == "-V") {
        println!("flowkeep-sync-server {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    eprintln!("flowkeep-sync-server is not implemented yet: workspace sync is planned (Automerge documents over WebSockets).");
    ExitCode::from(1)
}
