//! Starting and stopping a real `flowkeep-sync-server` on 127.0.0.1 with an
//! OS-chosen port, for tests of the server and of device sync.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Child,
    pub port: u16,
}

/// The secret a management command prints last: the last word of its
/// output, checked to start with `prefix`.
fn printed_secret(bin: &Path, data: &Path, args: &[&str], prefix: &str) -> String {
    let out = Command::new(bin)
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
    let text = String::from_utf8(out.stdout).unwrap();
    let secret = text
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_owned();
    assert!(secret.starts_with(prefix), "{text}");
    secret
}

pub fn create_workspace(bin: &Path, data: &Path, name: &str) -> String {
    printed_secret(bin, data, &["workspace", "create", name], "fks_")
}

/// A device credential from `device add`, for a raw client (the workspace
/// token only enrols).
pub fn add_device(bin: &Path, data: &Path, workspace: &str, name: &str) -> String {
    printed_secret(
        bin,
        data,
        &["device", "add", "--workspace", workspace, "--name", name],
        "fkd_",
    )
}

impl Server {
    /// Starts the server and waits for the address it logs.
    pub fn start(bin: &Path, data: &Path, extra: &[&str]) -> Server {
        Server::start_on(bin, data, "127.0.0.1:0", extra)
    }

    pub fn start_on(bin: &Path, data: &Path, listen: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(bin)
            .arg("--data-dir")
            .arg(data)
            .args(["--listen", listen])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let mut lines = BufReader::new(stderr).lines();
        let port = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .unwrap();
            if let Some(addr) = line.split("addr=").nth(1) {
                let addr = addr.split_whitespace().next().unwrap();
                break addr.rsplit(':').next().unwrap().parse().unwrap();
            }
        };
        // FLOWKEEP_TEST_SERVER_LOG=1 shows the server's log with a test's.
        let show = std::env::var_os("FLOWKEEP_TEST_SERVER_LOG").is_some();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if show {
                    eprintln!("server: {line}");
                }
            }
        });
        Server { child, port }
    }

    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/sync", self.port)
    }

    /// SIGTERM, and the exit status once it stopped.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < until, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET (`path_and_headers`: the request line's target and
/// version, then any headers); returns the whole response.
pub fn http_get_response(port: u16, path_and_headers: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path_and_headers}\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    let _ = s.read_to_string(&mut response);
    response
}

/// The server binary beside `flowkeep` in the same target dir.
pub fn server_bin_beside(flowkeep: &Path) -> PathBuf {
    let bin = flowkeep.with_file_name("flowkeep-sync-server");
    assert!(
        bin.exists(),
        "{} is not built: run the tests of the whole workspace (cargo test --workspace)",
        bin.display()
    );
    bin
}

/// The server's SQLite file (`sync.db` in its data dir) refusing every
/// write of a document, as a full disk would, until this connection runs
/// `DROP TRIGGER disk_full`.
pub fn refuse_document_writes(sync_db: &Path) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(sync_db).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    // In the file, not TEMP: a TEMP trigger binds only this connection.
    db.execute_batch(
        "CREATE TRIGGER disk_full BEFORE INSERT ON kv
         BEGIN SELECT RAISE(ABORT, 'database or disk is full (test)'); END;",
    )
    .unwrap();
    db
}
