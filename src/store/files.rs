//! The store's files outside sled: the data directory (0700), the lock that keeps a second process out, the
//! permissions of sled's files (directories 0700, files 0600) and durable renames and removals.
//!
//! Invariant: a [`DirLock`] is held for as long as a store is open; every file the store creates is private to the
//! user, whatever the umask.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use fs2::FileExt;

use super::StoreError;

/// Creates `dir` (mode 0700) if missing; warns when an existing one is open to others.
pub(super) fn prepare_data_dir(dir: &Path) -> Result<(), StoreError> {
    let err = |source| StoreError::DataDir {
        path: dir.to_path_buf(),
        source,
    };
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(path = %dir.display(), mode = format!("{mode:o}"),
                    "the data directory is open to other users; its files are private (0600), but `chmod 700` it");
            }
            Ok(())
        }
        Ok(_) => Err(err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "it exists and is not a directory",
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(err)?;
            // The mode above is filtered by the umask; say it exactly.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)
        }
        Err(e) => Err(err(e)),
    }
}

/// An exclusive advisory lock on `<data-dir>/lock`, released when dropped (or when the process dies).
#[derive(Debug)]
pub(super) struct DirLock {
    _file: File,
}

/// Takes the data directory's lock, or says who holds it.
pub(super) fn lock(dir: &Path) -> Result<DirLock, StoreError> {
    let path = dir.join(super::LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|source| StoreError::Io {
            what: "open the lock file",
            path: path.clone(),
            source,
        })?;
    match file.try_lock_exclusive() {
        Ok(()) => Ok(DirLock { _file: file }),
        Err(e) if e.kind() == fs2::lock_contended_error().kind() => Err(StoreError::Locked {
            dir: dir.to_path_buf(),
        }),
        Err(source) => Err(StoreError::Io {
            what: "lock",
            path,
            source,
        }),
    }
}

/// Makes every directory under `root` (and `root`) 0700 and every file 0600. sled creates its files with the
/// process umask; the data directory (0700) already keeps others out, this makes the files say so too.
pub(super) fn make_private(root: &Path) -> Result<(), StoreError> {
    let io = |path: &Path, source| StoreError::Io {
        what: "set permissions on",
        path: path.to_path_buf(),
        source,
    };
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(|e| io(&dir, e))?;
        for entry in fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
            let entry = entry.map_err(|e| io(&dir, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| io(&path, e))?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                    .map_err(|e| io(&path, e))?;
            }
        }
    }
    Ok(())
}

/// Makes a directory entry change (create, rename, remove) in `dir` durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StoreError::Io {
            what: "sync directory",
            path: dir.to_path_buf(),
            source,
        })
}

/// Creates an empty marker file durably.
pub(super) fn create_marker(path: &Path) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        what: "create",
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.sync_all().map_err(io)?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Removes a file durably; a missing file is fine.
pub(super) fn remove_file(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StoreError::Io {
                what: "remove",
                path: path.to_path_buf(),
                source,
            })
        }
    }
    match path.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_dir_is_created_private_and_locked_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        prepare_data_dir(&dir).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let held = lock(&dir).unwrap();
        let err = lock(&dir).unwrap_err();
        assert!(matches!(err, StoreError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("already running"), "{err}");
        drop(held);
        lock(&dir).unwrap();
        assert_eq!(
            fs::metadata(dir.join(super::super::LOCK_FILE))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
    }

    #[test]
    fn a_file_where_the_directory_should_be_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        fs::write(&path, b"x").unwrap();
        let err = prepare_data_dir(&path).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
    }

    #[test]
    fn make_private_reaches_every_file() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("db");
        fs::create_dir_all(root.join("blobs")).unwrap();
        fs::write(root.join("conf"), b"x").unwrap();
        fs::write(root.join("blobs/1"), b"x").unwrap();
        fs::set_permissions(root.join("conf"), fs::Permissions::from_mode(0o644)).unwrap();
        make_private(&root).unwrap();
        for (p, want) in [
            ("", 0o700),
            ("blobs", 0o700),
            ("conf", 0o600),
            ("blobs/1", 0o600),
        ] {
            let mode = fs::metadata(root.join(p)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, want, "{p}");
        }
    }
}
