//! Building the job's command so that it does not outlive `flowkeep`.
//!
//! If `flowkeep` itself is killed (SIGKILL, a crash), nothing can stop the
//! job, and it would keep running with nobody recording it. Linux can send
//! the job a signal when its parent dies (PR_SET_PDEATHSIG), but that must be
//! set in the child between fork and exec, which takes `unsafe` here. So the
//! job is started through util-linux's `setpriv --pdeathsig TERM`, which sets
//! it and then execs the job (same process, same process group). Without
//! setpriv the job starts directly, as before.
//!
//! setpriv only reports a missing program after it started, so the program
//! is looked up here first, the way `Command` would, to keep the error
//! "cannot start `prog`: No such file or directory".

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const SETPRIV: &[&str] = &["/usr/bin/setpriv", "/bin/setpriv"];

/// The command for `program args…`; `env` (the job's whole environment)
/// and `cwd` are what the job gets, used here to find the program.
pub(crate) fn command(
    program: &str,
    args: &[String],
    env: &[(OsString, OsString)],
    cwd: Option<&str>,
) -> std::io::Result<Command> {
    let Some(setpriv) = SETPRIV.iter().map(Path::new).find(|p| p.is_file()) else {
        let mut cmd = Command::new(program);
        cmd.args(args);
        return Ok(cmd);
    };
    let resolved = resolve(program, env, cwd)?;
    let mut cmd = Command::new(setpriv);
    cmd.args(["--pdeathsig", "TERM", "--"])
        .arg(resolved)
        .args(args);
    Ok(cmd)
}

/// `program` as the OS would find it: a path (relative to `cwd`), or the
/// first executable file of that name on the job's `PATH`.
fn resolve(
    program: &str,
    env: &[(OsString, OsString)],
    cwd: Option<&str>,
) -> std::io::Result<PathBuf> {
    let not_found = || std::io::Error::from(std::io::ErrorKind::NotFound);
    if program.contains('/') {
        let path = match cwd {
            Some(dir) if !program.starts_with('/') => Path::new(dir).join(program),
            _ => PathBuf::from(program),
        };
        return if path.is_file() {
            Ok(path)
        } else {
            Err(not_found())
        };
    }
    let path_var: OsString = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    std::env::split_paths(&path_var)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
        .ok_or_else(not_found)
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_like_the_os_finds_them() {
        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("job.sh");
        std::fs::write(&job, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&job, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = vec![(OsString::from("PATH"), dir.path().as_os_str().to_owned())];
        assert_eq!(resolve("job.sh", &path, None).unwrap(), job);
        assert_eq!(
            resolve("./job.sh", &[], Some(dir.path().to_str().unwrap())).unwrap(),
            dir.path().join("./job.sh")
        );
        assert_eq!(resolve(job.to_str().unwrap(), &[], None).unwrap(), job);
        assert_eq!(
            resolve("nope", &path, None).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
        // Not executable: not a program on PATH.
        std::fs::set_permissions(&job, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(resolve("job.sh", &path, None).is_err());
        assert!(resolve("/no/such/program", &[], None).is_err());
    }
}
