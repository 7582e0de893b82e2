//! Where `meshnode run` gets the passphrase that unlocks (or, for a new node, protects) the identity.
//!
//! Sources, first match wins: `--passphrase-file FILE` or `--no-passphrase` on the command line; the
//! `MESHNODE_PASSPHRASE` environment variable; `passphrase_file` or `no_passphrase = true` in the config file; a
//! no-echo prompt when stdin is a terminal (asked twice for a new identity). Never argv: a command line is visible
//! to every user of the machine. Without any of them, and without a terminal, `run` stops and says what to do.
//!
//! Invariant: passphrase bytes live only in [`Passphrase`] / `Zeroizing` buffers (wiped on drop) and are never
//! logged; a file is read with a bound, so a hostile path (a device, a huge file) cannot exhaust memory.

use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use meshnode::store::{
    key::MAX_PASSPHRASE_LEN, Passphrase, PassphraseError as Invalid, Protection, StoreState, Unlock,
};
use zeroize::Zeroizing;

/// The environment variable that may hold the passphrase.
pub const ENV_VAR: &str = "MESHNODE_PASSPHRASE";

/// Where the passphrase comes from, as resolved from flags, environment and file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PassphraseSource {
    /// Read it from this file (one trailing newline is not part of it).
    File(PathBuf),
    /// Read it from [`ENV_VAR`].
    Env,
    /// No passphrase: the identity is stored unprotected.
    NoPassphrase,
    /// Ask on the terminal, if stdin is one.
    Prompt,
}

/// Why no passphrase could be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PassphraseError {
    /// The passphrase file could not be read.
    #[error("cannot read passphrase file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The passphrase file's content is not a usable passphrase.
    #[error("passphrase file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: Invalid,
    },
    /// The environment variable's content is not a usable passphrase.
    #[error("{ENV_VAR}: {0}")]
    Env(Invalid),
    /// The typed passphrase is not usable.
    #[error("{0}")]
    Typed(Invalid),
    /// The two passphrases typed for a new identity differ.
    #[error("the two passphrases typed differ; nothing was created, start again")]
    Mismatch,
    /// Reading from the terminal failed.
    #[error("cannot read the passphrase from the terminal: {0}")]
    Terminal(std::io::Error),
    /// Nothing to get a passphrase from.
    #[error("no passphrase for the identity in {db}, and stdin is not a terminal to ask for one. Give it with --passphrase-file FILE (or passphrase_file in the config file) or the {ENV_VAR} environment variable; or, to store the identity unprotected, choose --no-passphrase (or no_passphrase = true)")]
    NoSource {
        /// The database directory.
        db: PathBuf,
    },
    /// The store has no passphrase but the mode was not chosen.
    #[error("the identity in {db} is stored without a passphrase: start with --no-passphrase (or no_passphrase = true in the config file) to confirm")]
    UnsealedNeedsFlag {
        /// The database directory.
        db: PathBuf,
    },
}

/// What to unlock `db` with, given where the passphrase comes from and what the store holds.
pub fn obtain(
    source: &PassphraseSource,
    state: StoreState,
    db: &Path,
) -> Result<Unlock, PassphraseError> {
    match source {
        PassphraseSource::NoPassphrase => Ok(Unlock::NoPassphrase),
        PassphraseSource::File(path) => read_file(path).map(Unlock::Passphrase),
        PassphraseSource::Env => {
            let bytes = Zeroizing::new(std::env::var_os(ENV_VAR).unwrap_or_default().into_vec());
            Passphrase::new(bytes)
                .map(Unlock::Passphrase)
                .map_err(PassphraseError::Env)
        }
        PassphraseSource::Prompt => {
            if let StoreState::Existing(_, Protection::None) = state {
                return Err(PassphraseError::UnsealedNeedsFlag {
                    db: db.to_path_buf(),
                });
            }
            if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                return Err(PassphraseError::NoSource {
                    db: db.to_path_buf(),
                });
            }
            prompt(state, db).map(Unlock::Passphrase)
        }
    }
}

/// Reads a passphrase file: at most [`MAX_PASSPHRASE_LEN`] bytes plus a line ending, which is dropped.
pub fn read_file(path: &Path) -> Result<Passphrase, PassphraseError> {
    let read_err = |source| PassphraseError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    if let Ok(meta) = file.metadata() {
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_file() && mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"),
                "the passphrase file is readable by other users: `chmod 600` it");
        }
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_PASSPHRASE_LEN + 3));
    file.take(MAX_PASSPHRASE_LEN as u64 + 3)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    strip_line_ending(&mut bytes);
    Passphrase::new(bytes).map_err(|reason| PassphraseError::File {
        path: path.to_path_buf(),
        reason,
    })
}

/// Drops one trailing `\n` or `\r\n` (editors and `echo` add one).
fn strip_line_ending(bytes: &mut Zeroizing<Vec<u8>>) {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
}

/// Asks on the terminal: once for an existing identity, twice for a new one.
fn prompt(state: StoreState, db: &Path) -> Result<Passphrase, PassphraseError> {
    let ask = |text: String| {
        rpassword::prompt_password(text)
            .map(|s| Zeroizing::new(s.into_bytes()))
            .map_err(PassphraseError::Terminal)
    };
    match state {
        StoreState::Existing(id, _) => {
            let typed = ask(format!("passphrase of node {id} ({}): ", db.display()))?;
            Passphrase::new(typed).map_err(PassphraseError::Typed)
        }
        StoreState::New | StoreState::LegacyKeyFile(_) => {
            let first = ask(format!(
                "new passphrase to protect this node's identity in {}: ",
                db.display()
            ))?;
            let first = Passphrase::new(first).map_err(PassphraseError::Typed)?;
            let second = ask("the same passphrase again: ".to_string())?;
            if second.as_slice() != first.as_bytes() {
                return Err(PassphraseError::Mismatch);
            }
            Ok(first)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unlock_bytes(u: Unlock) -> Vec<u8> {
        match u {
            Unlock::Passphrase(p) => p.as_bytes().to_vec(),
            Unlock::NoPassphrase => panic!("expected a passphrase"),
        }
    }

    #[test]
    fn files_lose_one_line_ending_and_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p");
        let db = dir.path().join("db");
        for (content, want) in [
            (&b"secret\n"[..], &b"secret"[..]),
            (b"secret\r\n", b"secret"),
            (b"secret", b"secret"),
            (b"two\n\n", b"two\n"),
        ] {
            std::fs::write(&f, content).unwrap();
            let u = obtain(&PassphraseSource::File(f.clone()), StoreState::New, &db).unwrap();
            assert_eq!(unlock_bytes(u), want);
        }
        std::fs::write(&f, b"\n").unwrap();
        let err = read_file(&f).unwrap_err().to_string();
        assert!(
            err.contains("empty") && err.contains(&*f.to_string_lossy()),
            "{err}"
        );
        std::fs::write(&f, vec![b'a'; 5000]).unwrap();
        let err = read_file(&f).unwrap_err().to_string();
        assert!(err.contains("at most 1024"), "{err}");
        let err = read_file(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read passphrase file"), "{err}");
        // A device that never ends is read with a bound.
        let err = read_file(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(err.contains("at most"), "{err}");
    }

    #[test]
    fn an_unsealed_store_needs_the_explicit_flag() {
        let db = Path::new("/d/db");
        let id = mesh::identity::NodeId([1; 8]);
        let err = obtain(
            &PassphraseSource::Prompt,
            StoreState::Existing(id, Protection::None),
            db,
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("--no-passphrase"), "{err}");
        assert!(matches!(
            obtain(&PassphraseSource::NoPassphrase, StoreState::New, db).unwrap(),
            Unlock::NoPassphrase
        ));
    }
}
