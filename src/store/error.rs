//! [`StoreError`]: every way opening, unlocking or writing the store can fail, each with the path at fault and
//! what to do about it.
//!
//! Invariant: no variant carries a secret; the damaged-store variants always name the way out (restore a backup,
//! or move the directory away and become a new node), because meshnode never replaces a store by itself.

use std::path::PathBuf;

use super::key::KeyError;
use super::value::ValueError;

/// What the way out of a damaged store says; shared by every variant that needs it.
const WAY_OUT: &str = "meshnode has not replaced it. Restore the data directory from a backup (with the node \
stopped); or move the database away (e.g. `mv DB DB.damaged`) and start again to become a NEW node: a new node id, \
which peers see as a different node (sessions and pins for the old id are useless): tell them its new fingerprint";

fn way_out(db: &std::path::Path) -> String {
    WAY_OUT.replace("DB", &db.display().to_string())
}

/// Why the store could not be opened, unlocked or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory could not be created or inspected.
    #[error("cannot prepare data directory {path}: {source} (check it is writable by this user)")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Another process holds the data directory's lock.
    #[error("another meshnode is already running with data directory {dir} (it holds the lock file {lock} there); stop it or use another --data-dir", lock = super::LOCK_FILE)]
    Locked {
        /// The data directory.
        dir: PathBuf,
    },
    /// A file operation failed (not a sign of damage: permissions, a full disk, ...).
    #[error("cannot {what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database is damaged: it does not open, a value does not decode, a tree or record is missing.
    #[error("the meshnode database {path} is damaged: {detail}. {}", way_out(.path))]
    Corrupt {
        /// The database directory.
        path: PathBuf,
        /// What is wrong, naming the tree and key when known.
        detail: String,
    },
    /// The database was written by a newer meshnode.
    #[error("the meshnode database {path} has schema version {found}, but this meshnode reads up to version {supported}: run the newer meshnode that wrote it, or restore a backup made with this version")]
    TooNew {
        /// The database directory.
        path: PathBuf,
        /// The schema version found.
        found: u32,
        /// The newest this build reads.
        supported: u32,
    },
    /// The passphrase does not open the identity. Nothing was written.
    #[error("wrong passphrase for the identity in {path}: nothing was changed; start again with the right passphrase (it cannot be recovered: without it this node's identity is lost, and the only way on is to move the directory away and start as a NEW node)")]
    WrongPassphrase {
        /// The database directory.
        path: PathBuf,
    },
    /// The identity is sealed with a passphrase but none was given.
    #[error("the identity in {path} is sealed with a passphrase: give it with --passphrase-file FILE, the MESHNODE_PASSPHRASE environment variable, or at the prompt on a terminal")]
    PassphraseNeeded {
        /// The database directory.
        path: PathBuf,
    },
    /// A passphrase was given for a store made without one.
    #[error("the identity in {path} was stored without a passphrase (--no-passphrase) and is not sealed: start with --no-passphrase (or no_passphrase = true in the config); adding a passphrase to an existing store is not supported yet")]
    NotSealed {
        /// The database directory.
        path: PathBuf,
    },
    /// The pre-database key file and the database hold different identities.
    #[error("{file} holds node {file_id} but the database {db} holds node {db_id}: meshnode will not choose between two identities. Keep the one you want: move {file} away to keep {db_id}, or move {db} away to migrate {file_id} into a new database")]
    IdentityConflict {
        /// The old key file.
        file: PathBuf,
        /// The database directory.
        db: PathBuf,
        /// The node id in the key file.
        file_id: String,
        /// The node id in the database.
        db_id: String,
    },
    /// The pre-database key file has the wrong size.
    #[error("identity file {path} has {len} bytes, expected 64: it is damaged or not a meshnode key; restore it from a backup, or move it away to start as a NEW node")]
    LegacyKeyLength {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// Others can read the pre-database key file.
    #[error("identity file {path} has mode {mode:o}: others can read the node's secret keys; run `chmod 600 {path}` and start again")]
    LegacyKeyPermissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// A pin whose keys do not own the node id it is stored under.
    #[error("the keys given for node {id} belong to node {owner}: a pin must be stored under the id its keys own")]
    PinMismatch {
        /// The id asked for.
        id: String,
        /// The id the keys own.
        owner: String,
    },
    /// The node keeps as many channels as it can join; another one is refused. Nothing was written.
    #[error("this node already keeps {limit} joined channels, the most it can: leave one (`meshnode ctl leave CHANNEL`) before joining another")]
    TooManyChannels {
        /// The bound.
        limit: usize,
    },
    /// A stored channel that cannot be read back (a value that does not decode, a sealed key that does not open, a
    /// name that is not a valid channel name). Only that channel is affected: the rest of the store is usable.
    #[error("the stored channel {channel} in {path} is damaged ({detail}), so it is not joined: join it again (`meshnode ctl join CHANNEL`) to replace the record, or leave it (`meshnode ctl leave CHANNEL`) to remove it")]
    DamagedChannel {
        /// The database directory.
        path: PathBuf,
        /// The channel's name as stored (its key in tree `channels`; hex when not text).
        channel: String,
        /// What is wrong.
        detail: String,
    },
    /// Making or using the storage key failed (RNG, memory, parameters).
    #[error("{0}")]
    Key(#[from] KeyError),
    /// A database operation failed after a successful open.
    #[error("database error in {path}: {detail}")]
    Database {
        /// The database directory.
        path: PathBuf,
        /// sled's message.
        detail: String,
    },
}

impl StoreError {
    /// A value in `tree` under `key` that does not decode.
    pub(super) fn bad_value(
        path: &std::path::Path,
        tree: &str,
        key: &[u8],
        e: ValueError,
    ) -> StoreError {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("tree `{tree}`, key {}: {e}", show_key(key)),
        }
    }
}

/// A key for messages: text when it is printable ASCII, hex otherwise.
pub(super) fn show_key(key: &[u8]) -> String {
    if !key.is_empty() && key.iter().all(|b| b.is_ascii_graphic()) {
        format!("`{}`", String::from_utf8_lossy(key))
    } else {
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        format!("0x{hex}")
    }
}
