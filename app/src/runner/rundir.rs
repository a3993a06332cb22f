//! Each run gets `runs/<run-id>/` in the data dir: `config.json` (what
//! the child reads from FLOWKEEP_CONFIG), `output.log` (stdout and stderr as
//! they arrived) and, while the run is alive, `lock`, held with an OS file
//! lock by the process supervising the run. The kernel drops the lock when
//! that process dies, however it dies, which is how a crashed run is told
//! from a live one in another process.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use flowkeep_store::private;

pub(crate) struct RunDir {
    pub path: PathBuf,
    lock: Option<File>,
}

/// `runs/<id>` for an execution id that is a UUID, else `None`. Ids can come
/// from another device; a path is never built from one that is not a
/// parsed UUID, so `../x` or `/etc` can never name a directory here.
pub(crate) fn path_of(runs: &Path, run_id: &str) -> Option<PathBuf> {
    let id = uuid::Uuid::parse_str(run_id).ok()?;
    Some(runs.join(id.hyphenated().to_string()))
}

fn not_a_uuid(run_id: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!(
            "run id {:?} is not a UUID",
            run_id.chars().take(64).collect::<String>()
        ),
    )
}

/// The job's config with its secrets in clear, while it runs.
pub(crate) const JOB_CONFIG: &str = "job-config.json";

impl RunDir {
    /// Creates the directory with its lock already held: it is prepared
    /// under a temporary name and renamed, so nobody ever sees the final
    /// directory without a held lock.
    pub(crate) fn create(
        runs: &Path,
        run_id: &str,
        config: &serde_json::Value,
    ) -> std::io::Result<RunDir> {
        let path = path_of(runs, run_id).ok_or_else(|| not_a_uuid(run_id))?;
        private::create_dir(runs)?;
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        private::create_dir(&tmp)?;
        let lock = private::create_new(&tmp.join("lock"))?;
        lock.try_lock()
            .map_err(|e| std::io::Error::other(format!("cannot lock the run directory: {e}")))?;
        let mut cfg = private::create_new(&tmp.join("config.json"))?;
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

    /// Writes what the job reads when its config holds secrets: the values
    /// in clear, beside the masked `config.json` kept as the record. It
    /// lives only while the run does (removed at release, and by recovery
    /// after a crash).
    pub(crate) fn write_job_config(&self, config: &serde_json::Value) -> std::io::Result<PathBuf> {
        let p = self.path.join(JOB_CONFIG);
        let mut f = private::create_new(&p)?;
        f.write_all(serde_json::to_string_pretty(config)?.as_bytes())?;
        f.sync_all()?;
        Ok(p)
    }

    pub(crate) fn log_path(&self) -> PathBuf {
        self.path.join("output.log")
    }

    /// The job has ended: the config with its secrets in clear goes at
    /// once, whatever happens to the run's record next (it may fail: the
    /// run deleted or finished by hand meanwhile).
    pub(crate) fn discard_job_config(&self) {
        let _ = fs::remove_file(self.path.join(JOB_CONFIG));
    }

    /// The run is recorded as finished: let go of the lock and remove it.
    pub(crate) fn release(mut self) {
        self.discard_job_config();
        if let Some(lock) = self.lock.take() {
            let _ = lock.unlock();
        }
        let _ = fs::remove_file(self.path.join("lock"));
    }
}

impl Drop for RunDir {
    /// However the run's supervision ends (an error on the way, a panic),
    /// secrets in clear do not outlive it on disk.
    fn drop(&mut self) {
        self.discard_job_config();
    }
}

/// Whether the run whose directory this is was abandoned: it has a lock
/// file nobody holds. A run without a directory was not started by the
/// runner (`exec start`) and is not ours to judge; nor is an id that is not
/// a UUID.
pub(crate) fn is_abandoned(runs: &Path, run_id: &str) -> bool {
    let Some(dir) = path_of(runs, run_id) else {
        return false;
    };
    if !dir.is_dir() {
        return false;
    }
    !is_locked(&dir)
}

/// Whether a live process holds the lock of the run in `dir`.
fn is_locked(dir: &Path) -> bool {
    match OpenOptions::new().write(true).open(dir.join("lock")) {
        Ok(f) => match f.try_lock() {
            Ok(()) => {
                let _ = f.unlock();
                false
            }
            Err(_) => true,
        },
        // A run directory without a lock: the runner died between finishing
        // and recording, or the file was removed by hand. Either way nobody
        // supervises the run.
        Err(_) => false,
    }
}

/// Removes the lock file of an abandoned run.
pub(crate) fn remove_lock(runs: &Path, run_id: &str) {
    if let Some(dir) = path_of(runs, run_id) {
        let _ = fs::remove_file(dir.join("lock"));
    }
}

/// Removes the directory of a deleted run, unless a live process still
/// supervises it (its lock is held): that one removes nothing of a run it is
/// writing to, and the directory stays. Ids that are not UUIDs are skipped.
pub(crate) fn remove(runs: &Path, run_id: &str) -> std::io::Result<()> {
    let Some(dir) = path_of(runs, run_id) else {
        return Ok(());
    };
    // `symlink_metadata`: a symlink planted in runs/ is removed, never followed.
    match fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() => {
            if is_locked(&dir) {
                return Ok(());
            }
            fs::remove_dir_all(&dir)
        }
        Ok(_) => fs::remove_file(&dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const E1: &str = "0190a000-0000-7000-8000-000000000001";
    const E2: &str = "0190a000-0000-7000-8000-000000000002";

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_held_lock_is_alive_a_released_or_dropped_one_is_abandoned() {
        let runs = tempfile::tempdir().unwrap();
        let runs = runs.path().join("runs");
        assert!(!is_abandoned(&runs, "0190a000-0000-7000-8000-00000000000f"));
        let dir = RunDir::create(&runs, E1, &serde_json::json!({"n": 1})).unwrap();
        assert!(!is_abandoned(&runs, E1), "held by this process");
        assert_eq!(
            fs::read_to_string(dir.config_path()).unwrap(),
            "{\n  \"n\": 1\n}"
        );
        // Private whatever the umask.
        assert_eq!(
            (
                mode(&runs),
                mode(&dir.path),
                mode(&dir.config_path()),
                mode(&dir.path.join("lock"))
            ),
            (0o700, 0o700, 0o600, 0o600)
        );
        drop(dir); // like a crash: the lock is gone with the handle
        assert!(is_abandoned(&runs, E1));
        let dir = RunDir::create(&runs, E2, &serde_json::json!({})).unwrap();
        dir.release();
        assert!(is_abandoned(&runs, E2), "released and removed");
        assert!(!runs.join(format!("{E2}.tmp")).exists());
    }

    #[test]
    fn paths_are_only_built_from_uuids() {
        let tmp = tempfile::tempdir().unwrap();
        let runs = tmp.path().join("data").join("runs");
        fs::create_dir_all(&runs).unwrap();
        // A victim beside the data dir, as `../../victim` would name it.
        let victim = tmp.path().join("victim");
        fs::create_dir_all(&victim).unwrap();
        fs::write(victim.join("lock"), "").unwrap();
        for bad in ["../../victim", "/etc", "", "x", "..", "e1"] {
            assert_eq!(path_of(&runs, bad), None, "{bad:?}");
            assert!(!is_abandoned(&runs, bad));
            remove_lock(&runs, bad);
            remove(&runs, bad).unwrap();
            assert!(RunDir::create(&runs, bad, &serde_json::json!({})).is_err());
        }
        assert!(
            victim.join("lock").exists(),
            "nothing outside runs/ touched"
        );
        // Other spellings of a UUID name the same, canonical directory.
        let upper = E1.to_uppercase();
        assert_eq!(path_of(&runs, &upper), Some(runs.join(E1)));
        assert_eq!(path_of(&runs, &format!("{{{E1}}}")), Some(runs.join(E1)));
    }

    #[test]
    fn remove_deletes_finished_runs_and_spares_live_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let runs = tmp.path().join("runs");
        let live = RunDir::create(&runs, E1, &serde_json::json!({})).unwrap();
        RunDir::create(&runs, E2, &serde_json::json!({}))
            .unwrap()
            .release();
        remove(&runs, E2).unwrap();
        assert!(!runs.join(E2).exists());
        remove(&runs, E2).unwrap(); // already gone: fine
        remove(&runs, E1).unwrap();
        assert!(
            live.path.exists(),
            "a run still supervised keeps its directory"
        );
        live.release();
        remove(&runs, E1).unwrap();
        assert!(!runs.join(E1).exists());
        // A symlink in its place is removed, its target left alone.
        let target = tmp.path().join("target");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("keep"), "").unwrap();
        std::os::unix::fs::symlink(&target, runs.join(E1)).unwrap();
        remove(&runs, E1).unwrap();
        assert!(!runs.join(E1).exists() && target.join("keep").exists());
    }
}
