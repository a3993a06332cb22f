//! A throwaway PostgreSQL for tests of the sync server's shared storage:
//! Debian's `initdb` and `pg_ctl` (package `postgresql`, which
//! `scripts/test.sh` installs), a cluster in a temp dir listening on
//! 127.0.0.1 at an OS-chosen port, stopped and removed on drop. As root it
//! runs as the `postgres` user (PostgreSQL refuses to run as root).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    pub port: u16,
}

/// `initdb`'s directory: on PATH, else the newest under
/// /usr/lib/postgresql.
fn find_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p).find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
    });
    on_path.or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| Some(e.ok()?.path().join("bin")))
            .filter(|d| d.join("initdb").is_file())
            .collect();
        versions.sort_by_key(|d| {
            d.parent()
                .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
                .unwrap_or(0)
        });
        versions.pop()
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Postgres {
    /// A running PostgreSQL, or `None` (with a line saying so) when it is
    /// not installed and `FLOWKEEP_SKIP_POSTGRES_TESTS=1` says that is
    /// known; without that a missing PostgreSQL fails the test.
    pub fn start() -> Option<Postgres> {
        Postgres::start_with(None, false)
    }

    /// Like `start`, serving TLS with this certificate and key (PEM).
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Option<Postgres> {
        Postgres::start_with(Some((cert_pem, key_pem)), false)
    }

    /// Like `start`, with every commit flushed to disk as a real database
    /// does (tests skip that, for speed): for benches.
    pub fn start_durable() -> Option<Postgres> {
        Postgres::start_with(None, true)
    }

    fn start_with(tls: Option<(&str, &str)>, durable: bool) -> Option<Postgres> {
        let Some(bin) = find_bin() else {
            if std::env::var("FLOWKEEP_SKIP_POSTGRES_TESTS").as_deref() == Ok("1") {
                eprintln!("skipped: PostgreSQL is not installed (initdb, pg_ctl)");
                return None;
            }
            panic!(
                "PostgreSQL is not installed (no initdb/pg_ctl): apt-get install postgresql, \
                 or run `bash scripts/test.sh`, which installs it"
            );
        };
        let dir = tempfile::tempdir().unwrap();
        let as_postgres = nix_is_root();
        if as_postgres {
            let status = Command::new("chown")
                .args(["postgres:"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown to the postgres user failed");
        }
        let pg = Postgres {
            dir,
            bin,
            as_postgres,
            port: free_port(),
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {}",
            pg.port,
            pg.dir.path().display()
        );
        if !durable {
            options.push_str(" -c fsync=off");
        }
        if let Some((cert, key)) = tls {
            use std::os::unix::fs::PermissionsExt;
            let (c, k) = (
                pg.dir.path().join("server.crt"),
                pg.dir.path().join("server.key"),
            );
            std::fs::write(&c, cert).unwrap();
            std::fs::write(&k, key).unwrap();
            // PostgreSQL refuses a key others can read.
            std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).unwrap();
            if as_postgres {
                let status = Command::new("chown")
                    .arg("postgres:")
                    .arg(&c)
                    .arg(&k)
                    .status()
                    .unwrap();
                assert!(status.success(), "chown of the TLS files failed");
            }
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                c.display(),
                k.display()
            ));
        }
        let log = pg.dir.path().join("pg.log");
        pg.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "30",
                "-o",
                &options,
                "start",
            ],
        );
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self.command(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn nix_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args([
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .output();
    }
}
