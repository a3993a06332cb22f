//! One agent per data directory: `agent.lock` beside the database, held
//! with an OS file lock by the running agent (the kernel lets go when it
//! dies, however it dies) and holding its process id for `agent status`.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::Result;

/// The held lock; dropping it lets the next agent in.
pub struct AgentLock {
    _file: File,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AgentStatus {
    pub running: bool,
    /// The running agent's process id.
    pub pid: Option<u32>,
    pub lock_file: PathBuf,
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("agent.lock")
}

fn open(data_dir: &Path) -> Result<File> {
    let p = path(data_dir);
    if !p.exists() {
        // Private like every file of the data dir.
        drop(flowkeep_store::private::create_new(&p).or_else(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                File::open(&p)
            } else {
                Err(e)
            }
        })?);
    }
    Ok(std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&p)?)
}

impl AgentLock {
    /// Takes the lock, waiting while another agent holds it (calling
    /// `waiting` once with its pid) until it does or `stop` is set (`None`).
    pub fn acquire(
        data_dir: &Path,
        stop: &AtomicBool,
        waiting: impl FnOnce(Option<u32>),
    ) -> Result<Option<AgentLock>> {
        let mut file = open(data_dir)?;
        let mut waiting = Some(waiting);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    if let Some(w) = waiting.take() {
                        w(read_pid(&mut file));
                    }
                    if stop.load(Ordering::Relaxed) {
                        return Ok(None);
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
            }
        }
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        file.flush()?;
        Ok(Some(AgentLock { _file: file }))
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

/// Whether an agent runs for this data directory.
pub fn status(data_dir: &Path) -> Result<AgentStatus> {
    let lock_file = path(data_dir);
    if !lock_file.exists() {
        return Ok(AgentStatus {
            running: false,
            pid: None,
            lock_file,
        });
    }
    let mut file = open(data_dir)?;
    let running = matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock));
    let pid = if running { read_pid(&mut file) } else { None };
    Ok(AgentStatus {
        running,
        pid,
        lock_file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_agent_holds_the_lock_and_status_sees_it() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!status(dir.path()).unwrap().running);
        let stop = AtomicBool::new(false);
        let held = AgentLock::acquire(dir.path(), &stop, |_| panic!("free"))
            .unwrap()
            .unwrap();
        let s = status(dir.path()).unwrap();
        assert!(s.running);
        assert_eq!(s.pid, Some(std::process::id()));
        // A second one waits; told to stop, it gives up without the lock.
        stop.store(true, Ordering::Relaxed);
        let mut told = None;
        let second = AgentLock::acquire(dir.path(), &stop, |pid| told = Some(pid)).unwrap();
        assert!(second.is_none());
        assert_eq!(told, Some(Some(std::process::id())));
        drop(held);
        assert!(!status(dir.path()).unwrap().running);
    }
}
