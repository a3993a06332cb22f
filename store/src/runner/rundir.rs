//! Each run gets `runs/<execution-id>/` in the data dir: `config.json` (what
//! the child reads from FLOWKEEP_CONFIG), `output.log` (stdout and stderr as
//! they arrived) and, while the run is alive, `lock`, held with an OS file
//! lock by the process supervising the run. The kernel drops the lock when
//! that process dies, however it dies, which is how a crashed run is told
//! from a live one in another process.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub(crate) struct RunDir {
    pub path: PathBuf,
    lock: Option<File>,
}

impl RunDir {
    /// Creates the directory with its lock already held: it is prepared
    /// under a temporary name and renamed, so nobody ever sees the final
    /// directory without a held lock.
    pub(crate) fn create(
        runs: &Path,
        execution_id: &str,
        config: &serde_json::Value,
    ) -> std::io::Result<RunDir> {
        fs::create_dir_all(runs)?;
        let tmp = runs.join(format!("{execution_id}.tmp"));
        let path = runs.join(execution_id);
        fs::create_dir_all(&tmp)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(tmp.join("lock"))?;
        lock.try_lock()
            .map_err(|e| std::io::Error::other(format!("cannot lock the run directory: {e}")))?;
        let mut cfg = File::create(tmp.join("config.json"))?;
        cfg.write_all(serde_json::to_string_pretty(config)?.as_bytes())?;
        cfg.sync_all()?;
        fs::rename(&tmp, &path)?;
        Ok(RunDir {
            path,
            lock: Some(lock),
        })
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.path.join("config.json")
    }

    pub(crate) fn log_path(&self) -> PathBuf {
        self.path.join("output.log")
    }

    /// The run is recorded as finished: let go of the lock and remove it.
    pub(crate) fn release(mut self) {
        if let Some(lock) = self.lock.take() {
            let _ = lock.unlock();
        }
        let _ = fs::remove_file(self.path.join("lock"));
    }
}

/// Whether the run whose directory this is was abandoned: it has a lock
/// file nobody holds. A run without a directory was not started by the
/// runner (`exec start`) and is not ours to judge.
pub(crate) fn is_abandoned(runs: &Path, execution_id: &str) -> bool {
    let dir = runs.join(execution_id);
    if !dir.is_dir() {
        return false;
    }
    match OpenOptions::new().write(true).open(dir.join("lock")) {
        Ok(f) => match f.try_lock() {
            Ok(()) => {
                let _ = f.unlock();
                true
            }
            Err(_) => false,
        },
        // A run directory without a lock: the runner died between finishing
        // and recording, or the file was removed by hand. Either way nobody
        // supervises the run.
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_alive_a_released_or_dropped_one_is_abandoned() {
        let runs = tempfile::tempdir().unwrap();
        assert!(!is_abandoned(runs.path(), "never-started"));
        let dir = RunDir::create(runs.path(), "e1", &serde_json::json!({"n": 1})).unwrap();
        assert!(!is_abandoned(runs.path(), "e1"), "held by this process");
        assert_eq!(
            fs::read_to_string(dir.config_path()).unwrap(),
            "{\n  \"n\": 1\n}"
        );
        drop(dir); // like a crash: the lock is gone with the handle
        assert!(is_abandoned(runs.path(), "e1"));
        let dir = RunDir::create(runs.path(), "e2", &serde_json::json!({})).unwrap();
        dir.release();
        assert!(is_abandoned(runs.path(), "e2"), "released and removed");
        assert!(!runs.path().join("e2.tmp").exists());
    }
}
