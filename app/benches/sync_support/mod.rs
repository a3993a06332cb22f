//! What the sync benches share: the real server binary on a loopback port
//! the OS picks, a device on a temp dir, percentiles.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use flowkeep_app::{Service, StoreOptions};

pub fn server_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("flowkeep-sync-server");
    assert!(
        bin.exists(),
        "build the server first: cargo build --release -p flowkeep-sync-server ({} missing)",
        bin.display()
    );
    bin
}

pub struct Server {
    pub child: std::process::Child,
    pub url: String,
    pub token: String,
    /// A credential from `device add`, shared by the raw fan-out clients.
    pub credential: String,
    _dir: tempfile::TempDir,
}

pub fn start_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let bin = server_bin();
    // The secret each management command prints on its last line.
    let printed = |args: &[&str]| {
        let out = Command::new(&bin)
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .trim()
            .to_owned()
    };
    let token = printed(&["workspace", "create", "bench"]);
    let credential = printed(&["device", "add", "--workspace", "bench", "--name", "fan-out"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(&bin)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Server {
        child,
        url: format!("ws://127.0.0.1:{port}/sync"),
        token,
        credential,
        _dir: dir,
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

pub fn device(dir: &tempfile::TempDir, name: &str) -> Service {
    Service::open(
        &dir.path().join("flowkeep.db"),
        StoreOptions {
            actor: name.into(),
            ..Default::default()
        },
    )
    .unwrap()
}

pub fn pct(mut v: Vec<Duration>, p: usize) -> f64 {
    v.sort();
    v[(v.len() * p / 100).min(v.len() - 1)].as_secs_f64() * 1e3
}
