//! The node's identity on disk: `<data-dir>/identity.key`, 64 bytes (Ed25519 secret then X25519 secret) drawn from
//! the OS RNG on first run, mode 0600.
//!
//! Invariant: an existing key file is only ever read, never overwritten; a file of the wrong size or readable by
//! others is refused with a message saying what to do. The file is plaintext for now (an Argon2id-wrapped store
//! is the next step); the runtime says so in a warning at start.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use mesh::identity::Identity;

/// The key file's name inside the data directory.
pub const IDENTITY_FILE: &str = "identity.key";
/// Its exact length.
pub const IDENTITY_LEN: usize = 64;

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The data directory could not be created or secured.
    #[error("cannot prepare data directory {path}: {source} (check it is writable by this user)")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Reading or writing the key file failed.
    #[error("cannot {what} identity file {path}: {source}")]
    Io {
        /// read / create / write.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key file has the wrong size.
    #[error("identity file {path} has {len} bytes, expected {IDENTITY_LEN}: it is damaged or not a meshnode key; restore it from a backup, or move it away to start as a new node")]
    BadLength {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// Others can read the key file.
    #[error("identity file {path} has mode {mode:o}: others can read the node's secret keys; run `chmod 600 {path}` and start again")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The OS RNG failed.
    #[error("the operating system's random number generator failed: {0}")]
    Rng(String),
}

/// Creates `dir` (mode 0700) if missing.
pub fn prepare_data_dir(dir: &Path) -> Result<(), IdentityError> {
    let err = |source| IdentityError::DataDir {
        path: dir.to_path_buf(),
        source,
    };
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(err)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

/// Loads the identity from `dir`, creating it on first run. Returns the identity and whether it was created.
pub fn load_or_create(dir: &Path) -> Result<(Identity, bool), IdentityError> {
    prepare_data_dir(dir)?;
    let path = dir.join(IDENTITY_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            let mode = fs::metadata(&path)
                .map_err(|source| IdentityError::Io {
                    what: "inspect",
                    path: path.clone(),
                    source,
                })?
                .permissions()
                .mode()
                & 0o777;
            if mode & 0o077 != 0 {
                return Err(IdentityError::Permissions { path, mode });
            }
            Ok((from_bytes(&bytes, &path)?, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; IDENTITY_LEN];
            getrandom::getrandom(&mut secret).map_err(|e| IdentityError::Rng(e.to_string()))?;
            let identity = from_bytes(&secret, &path)?;
            let io = |what, source| IdentityError::Io {
                what,
                path: path.clone(),
                source,
            };
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| io("create", e))?;
            file.write_all(&secret).map_err(|e| io("write", e))?;
            file.sync_all().map_err(|e| io("write", e))?;
            secret.fill(0);
            Ok((identity, true))
        }
        Err(source) => Err(IdentityError::Io {
            what: "read",
            path,
            source,
        }),
    }
}

fn from_bytes(bytes: &[u8], path: &Path) -> Result<Identity, IdentityError> {
    let bad = || IdentityError::BadLength {
        path: path.to_path_buf(),
        len: bytes.len(),
    };
    if bytes.len() != IDENTITY_LEN {
        return Err(bad());
    }
    let mut ed = [0u8; 32];
    let mut x = [0u8; 32];
    ed.copy_from_slice(bytes.get(..32).ok_or_else(bad)?);
    x.copy_from_slice(bytes.get(32..).ok_or_else(bad)?);
    let identity = Identity::from_secrets(ed, x);
    ed.fill(0);
    x.fill(0);
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_loaded_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (a, created) = load_or_create(&data).unwrap();
        assert!(created);
        let mode = fs::metadata(data.join(IDENTITY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            fs::metadata(&data).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let (b, created) = load_or_create(&data).unwrap();
        assert!(!created);
        assert_eq!(a.node_id(), b.node_id());
    }

    #[test]
    fn damaged_or_exposed_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(IDENTITY_FILE);
        fs::write(&path, [1u8; 10]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let err = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("10 bytes"), "{err}");
        fs::write(&path, [1u8; 64]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}
