//! Files of the data dir are the user's alone, whatever the umask: the
//! database holds the sync token and every config value, run dirs hold
//! configs and output. Directories are created 0700 and files 0600, and
//! existing ones are tightened when opened, so an install made before this
//! (or with a loose umask) does not stay readable by others.
//!
//! The process umask is left alone: jobs keep the user's.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (0700) and whatever parents it lacks (those as the umask
/// says: they are not ours), or tightens it if it exists.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => {}
        // "File exists" alone does not say that the folder asked for is a
        // file.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Err(std::io::Error::new(
                ErrorKind::AlreadyExists,
                format!("{} is a file, not a folder", dir.display()),
            ))
        }
        Err(e) => return Err(e),
    }
    // `mode` is filtered by the umask; set it exactly.
    tighten(dir)
}

/// A new file (0600) at `path`. Fails if anything exists there, a symlink
/// included (`O_EXCL`): nothing that was already there is followed or
/// replaced.
pub fn create_new(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

/// Takes away group and other permissions of `path`, if it exists. A file
/// that belongs to someone else (EPERM) is left as it is: it is not ours to
/// change, and refusing to open would help nobody.
pub fn tighten(path: &Path) -> std::io::Result<()> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mode = meta.permissions().mode() & 0o7777;
    let want = if meta.is_dir() {
        (mode & 0o7700) | DIR_MODE
    } else {
        mode & 0o7700
    };
    if mode == want {
        return Ok(());
    }
    match std::fs::set_permissions(path, Permissions::from_mode(want)) {
        Err(e) if e.kind() == ErrorKind::PermissionDenied => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn dirs_and_files_are_private_and_existing_ones_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), Permissions::from_mode(0o755)).unwrap();
        let dir = tmp.path().join("a").join("data");
        create_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        create_dir(&dir).unwrap();

        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        create_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700, "an existing dir is tightened");

        let f = dir.join("f");
        create_new(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        assert_eq!(create_new(&f).unwrap_err().kind(), ErrorKind::AlreadyExists);
        std::fs::set_permissions(&f, Permissions::from_mode(0o644)).unwrap();
        tighten(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        std::fs::set_permissions(&f, Permissions::from_mode(0o400)).unwrap();
        tighten(&f).unwrap();
        assert_eq!(mode(&f), 0o400, "never adds permissions to a file");
        tighten(&dir.join("missing")).unwrap();
        let err = create_dir(&f).unwrap_err();
        assert!(err.to_string().contains("is a file, not a folder"), "{err}");
    }

    #[test]
    fn create_new_never_follows_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "original").unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert_eq!(
            create_new(&link).unwrap_err().kind(),
            ErrorKind::AlreadyExists
        );
        let dangling = tmp.path().join("dangling");
        std::os::unix::fs::symlink(tmp.path().join("nowhere"), &dangling).unwrap();
        assert!(create_new(&dangling).is_err());
        assert!(!tmp.path().join("nowhere").exists());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "original");
    }
}
