//! The layout before the database (what meshnode stored until the store existed): `<data-dir>/identity.key`, the
//! node's 64 secret bytes (Ed25519 seed, then X25519 scalar) in plaintext, mode 0600.
//!
//! Opening a data directory that has this file migrates the identity into the database (same node id), and only
//! once the database is flushed and read back is the file overwritten with zeros, synced and removed.
//!
//! Invariant: the file is validated (size, permissions) exactly as the old code did before anything is written; its
//! bytes are wiped from memory when dropped.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mesh::identity::{Identity, NodeId};
use zeroize::Zeroizing;

use super::files;
use super::StoreError;

/// The old key file's name inside the data directory.
pub const LEGACY_KEY_FILE: &str = "identity.key";
/// Its exact length.
const LEGACY_KEY_LEN: usize = 64;

/// The secret bytes of an identity: Ed25519 seed then X25519 scalar. Wiped when dropped.
pub(super) struct Secrets(pub Zeroizing<[u8; LEGACY_KEY_LEN]>);

impl Secrets {
    /// 64 fresh bytes from the OS RNG.
    pub fn random() -> Result<Secrets, StoreError> {
        let mut s = Zeroizing::new([0u8; LEGACY_KEY_LEN]);
        getrandom::getrandom(&mut s[..])
            .map_err(|e| StoreError::Key(super::key::KeyError::Rng(e.to_string())))?;
        Ok(Secrets(s))
    }

    /// The identity these bytes are.
    pub fn identity(&self) -> Identity {
        let mut ed = Zeroizing::new([0u8; 32]);
        let mut x = Zeroizing::new([0u8; 32]);
        ed.copy_from_slice(&self.0[..32]);
        x.copy_from_slice(&self.0[32..]);
        Identity::from_secrets(*ed, *x)
    }
}

/// The old key file of a data directory, read and checked.
pub(super) struct LegacyKey {
    /// Where it is.
    pub path: PathBuf,
    /// Its bytes.
    pub secrets: Secrets,
    /// The node id they make.
    pub node_id: NodeId,
}

/// Reads `<dir>/identity.key` if it exists.
pub(super) fn read(dir: &Path) -> Result<Option<LegacyKey>, StoreError> {
    let path = dir.join(LEGACY_KEY_FILE);
    let io = |what, source| StoreError::Io {
        what,
        path: path.clone(),
        source,
    };
    let mut file = match fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("read identity file", e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| io("inspect identity file", e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(StoreError::LegacyKeyPermissions { path, mode });
    }
    if meta.len() != LEGACY_KEY_LEN as u64 {
        return Err(StoreError::LegacyKeyLength {
            path,
            len: meta.len(),
        });
    }
    let mut secrets = Secrets(Zeroizing::new([0u8; LEGACY_KEY_LEN]));
    file.read_exact(&mut secrets.0[..])
        .map_err(|e| io("read identity file", e))?;
    // One more byte means the file grew between the check and the read.
    let mut extra = [0u8; 1];
    if file
        .read(&mut extra)
        .map_err(|e| io("read identity file", e))?
        != 0
    {
        return Err(StoreError::LegacyKeyLength {
            path,
            len: LEGACY_KEY_LEN as u64 + 1,
        });
    }
    let node_id = secrets.identity().node_id();
    Ok(Some(LegacyKey {
        path,
        secrets,
        node_id,
    }))
}

/// Overwrites the old key file with zeros, syncs it and removes it. On flash and copy-on-write file systems the old
/// blocks may survive the overwrite; the README says so.
pub(super) fn wipe(path: &Path) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        what: "wipe the old identity file",
        path: path.to_path_buf(),
        source,
    };
    match OpenOptions::new().write(true).open(path) {
        Ok(mut f) => {
            f.write_all(&[0u8; LEGACY_KEY_LEN]).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    }
    files::remove_file(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_key(dir: &Path, bytes: &[u8], mode: u32) {
        let path = dir.join(LEGACY_KEY_FILE);
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_good_file_gives_the_same_node_id_as_before() {
        let tmp = tempfile::tempdir().unwrap();
        let mut bytes = [0u8; 64];
        bytes[..32].fill(1);
        bytes[32..].fill(2);
        write_key(tmp.path(), &bytes, 0o600);
        let key = read(tmp.path()).unwrap().unwrap();
        assert_eq!(
            key.node_id,
            Identity::from_secrets([1; 32], [2; 32]).node_id()
        );
        wipe(&key.path).unwrap();
        assert!(!key.path.exists());
        assert!(read(tmp.path()).unwrap().is_none());
    }

    #[test]
    fn damaged_or_exposed_files_are_refused_as_before() {
        let tmp = tempfile::tempdir().unwrap();
        write_key(tmp.path(), &[1u8; 10], 0o600);
        let err = read(tmp.path()).err().unwrap().to_string();
        assert!(err.contains("10 bytes"), "{err}");
        write_key(tmp.path(), &[1u8; 64], 0o644);
        let err = read(tmp.path()).err().unwrap().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }
}
