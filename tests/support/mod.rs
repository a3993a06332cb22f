//! Helpers for tests that run the real `flowkeep` binary on a temp data dir.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub struct Flowkeep {
    pub dir: tempfile::TempDir,
}

pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
    pub fn error(&self) -> Value {
        serde_json::from_str(self.stderr.trim())
            .unwrap_or_else(|e| panic!("stderr is not JSON ({e}): {}", self.stderr))
    }
    pub fn ok(self) -> Outcome {
        assert_eq!(
            self.code, 0,
            "expected success, got {}: {}{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

impl Flowkeep {
    pub fn new() -> Flowkeep {
        Flowkeep {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn bin() -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_flowkeep"))
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("flowkeep.db")
    }

    /// `flowkeep --data-dir <tmp> <args>` as `run` starts it, for a test
    /// that sets more (its environment, its stdin).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(Self::bin());
        c.arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .env("FLOWKEEP_ACTOR", "cli-test");
        c
    }

    /// Runs `flowkeep --data-dir <tmp> <args>` (human output).
    pub fn run(&self, args: &[&str]) -> Outcome {
        to_run(self.command(args).output().expect("flowkeep runs"))
    }

    /// Runs with `--json`.
    pub fn json(&self, args: &[&str]) -> Outcome {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.run(&all)
    }

    pub fn sql_count(&self, sql: &str) -> i64 {
        rusqlite::Connection::open(self.db())
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    }

    /// Event count and every read table, to prove a failed command changed nothing.
    pub fn snapshot(&self) -> (i64, String) {
        let dump = dump_tables(
            &self.db(),
            &["workflows", "configs", "executions", "workflow_tags"],
        );
        (self.sql_count("SELECT count(*) FROM events"), dump)
    }
}

/// The rows of `tables` in the database at `db`, one line per row under a
/// `## table` heading: two equal dumps mean equal tables.
pub fn dump_tables(db: &Path, tables: &[&str]) -> String {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut dump = String::new();
    for t in tables {
        dump.push_str(&format!("## {t}\n"));
        let mut s = c
            .prepare(&format!("SELECT * FROM {t} ORDER BY 1, 2"))
            .unwrap();
        let n = s.column_count();
        let rows = s
            .query_map([], |r| {
                Ok((0..n)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap();
        for row in rows {
            dump.push_str(&row.unwrap());
            dump.push('\n');
        }
    }
    dump
}

fn to_run(out: Output) -> Outcome {
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
