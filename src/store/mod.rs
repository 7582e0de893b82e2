//! The node's store: one sled database per data directory, holding the identity sealed at rest, the peers it
//! knows, and (filled by the runtime) sessions, nonce reservations, the outbox, received message ids and the
//! password channels joined.
//!
//! # On disk
//!
//! ```text
//! <data-dir>/            0700
//!   lock                 0600  advisory lock held while a node has the store open (a second one is refused)
//!   db/                  0700  the sled database (its files 0600)
//!   db.creating          0600  only while a new database is being written; found at open = an interrupted
//!                              creation, whose identity was never used: it is removed and creation starts over
//!   identity.key               only before the database existed (plaintext, 64 bytes): migrated, then wiped
//!   control.sock         0600  the control socket of `meshnode run` (not part of the store)
//! ```
//!
//! Every value is a version byte followed by postcard ([`value`]). Trees, keys and values:
//!
//! | tree | key | value (record version) |
//! |---|---|---|
//! | `meta` | `schema` | schema version, `u32` (v1): 2 since `channels` was added; see [`schema`] |
//! | `meta` | `created_at` | Unix seconds when the store was created, `u64` (v1) |
//! | `meta` | `node_id` | this node's id, 8 bytes (v1); must equal the identity record's |
//! | `identity` | `keys` | public keys and node id in clear, key source (Argon2id salt and parameters, or the stored key of a store without passphrase), secret keys sealed with XChaCha20-Poly1305 (v1) |
//! | `peers` | peer node id (8 bytes) | pin (keys, trusted by user, pinned at), nickname, first and last seen (v1); see [`peers`] |
//! | `sessions` | peer node id (8 bytes) | the session's transport keys and counters, sealed with [`StorageKey::seal`], associated data `associated_data("session", &[b"sessions", key, &[version]])`; see [`state`] |
//! | `nonces` | peer node id (8 bytes) | the highest send nonce reserved for the session with that peer; written and flushed before any nonce above the previous reservation goes on air; see [`state`] |
//! | `outbox` | destination (8) ‖ message id (8, big-endian) | expiry and payload sealed with the storage key; see [`state`] |
//! | `seen` | sender node id (8) ‖ message id (8, big-endian) | delivery time; pruned by age; makes delivery exactly-once across restarts; see [`state`] |
//! | `channels` (schema 2) | channel name (UTF-8, 1..=32 bytes) | the channel key derived from the password (never the password), sealed with [`StorageKey::seal`], associated data `associated_data("channel", &[b"channels", name, &[1]])` (v1); at most the node's `max_channels` records; see [`channels`] |
//!
//! Every tree of a schema version is created with the database (or by the migration to that version), so a
//! missing tree is damage, not an old layout.
//!
//! # Opening
//!
//! [`SealedStore::open`] takes the lock, opens the database (or notes that there is none yet, or an old
//! `identity.key`), runs the schema migrations and checks the identity record, all without a passphrase;
//! [`SealedStore::state`] then says what unlocking needs, and [`SealedStore::unlock`] gives the [`Store`] and the
//! [`Identity`]. [`Store::open`] does both.
//!
//! Invariant: the store never starts afresh over data it cannot read. A database that does not open, lacks a
//! tree or a record, or holds a value that does not decode is a [`StoreError::Corrupt`] naming the path and the
//! way out; a wrong passphrase is [`StoreError::WrongPassphrase`] and writes nothing. Multi-key invariants are
//! written in one transaction; the identity and pins are flushed before the node uses them.

pub mod channels;
mod error;
mod files;
mod identity;
pub mod key;
mod legacy;
pub mod peers;
pub mod schema;
pub mod state;
pub mod value;

#[cfg(test)]
mod tests;

use std::fs;
use std::path::{Path, PathBuf};

use mesh::identity::{Identity, NodeId};
use sled::Transactional;

pub use channels::MAX_STORED_CHANNELS;
pub use error::StoreError;
pub use key::{associated_data, KdfParams, Passphrase, PassphraseError, StorageKey};
pub use legacy::LEGACY_KEY_FILE;
pub use peers::{PeerRecord, PeerStats, Pin};
pub use schema::CURRENT_SCHEMA;

use identity::{IdentityRecord, IDENTITY_KEY};
use legacy::{LegacyKey, Secrets};
use value::{decode, encode, Record};

/// The database directory inside the data directory.
pub const DB_DIR: &str = "db";
/// The lock file inside the data directory.
pub const LOCK_FILE: &str = "lock";
/// Present only while a new database is being written.
pub const CREATING_MARKER: &str = "db.creating";

/// sled's page cache bound: the store holds little, and a Raspberry Pi has little memory.
const CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// The trees of the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TreeName {
    /// Schema version, creation time, node id.
    Meta = 0,
    /// The sealed identity.
    Identity = 1,
    /// Pins, nicknames, first and last seen.
    Peers = 2,
    /// Sealed session state.
    Sessions = 3,
    /// Nonce reservations.
    Nonces = 4,
    /// Messages waiting for delivery.
    Outbox = 5,
    /// Received message ids (exactly-once delivery across restarts).
    Seen = 6,
    /// Joined password channels, their keys sealed (schema 2).
    Channels = 7,
}

impl TreeName {
    /// Every tree, in index order.
    pub const ALL: [TreeName; 8] = [
        TreeName::Meta,
        TreeName::Identity,
        TreeName::Peers,
        TreeName::Sessions,
        TreeName::Nonces,
        TreeName::Outbox,
        TreeName::Seen,
        TreeName::Channels,
    ];

    /// The tree's name in sled.
    pub fn name(self) -> &'static str {
        match self {
            TreeName::Meta => "meta",
            TreeName::Identity => "identity",
            TreeName::Peers => "peers",
            TreeName::Sessions => "sessions",
            TreeName::Nonces => "nonces",
            TreeName::Outbox => "outbox",
            TreeName::Seen => "seen",
            TreeName::Channels => "channels",
        }
    }

    /// The schema version that added the tree: a database of an older version lacks it until migrated.
    pub fn since(self) -> u32 {
        match self {
            TreeName::Channels => 2,
            _ => 1,
        }
    }
}

/// The open trees, indexed by [`TreeName`].
pub struct Trees([sled::Tree; 8]);

impl Trees {
    fn open(db: &sled::Db, path: &Path) -> Result<Trees, StoreError> {
        let open = |t: TreeName| {
            db.open_tree(t.name())
                .map_err(|e| sled_open_error(path, "open a tree of", e))
        };
        Ok(Trees([
            open(TreeName::Meta)?,
            open(TreeName::Identity)?,
            open(TreeName::Peers)?,
            open(TreeName::Sessions)?,
            open(TreeName::Nonces)?,
            open(TreeName::Outbox)?,
            open(TreeName::Seen)?,
            open(TreeName::Channels)?,
        ]))
    }

    /// One tree.
    pub fn get(&self, t: TreeName) -> &sled::Tree {
        &self.0[t as usize]
    }

    /// Every tree, in [`TreeName`] order: `trees.all().transaction(|v| ...)` writes to several atomically, with
    /// `v[TreeName::X as usize]`.
    pub fn all(&self) -> &[sled::Tree] {
        &self.0
    }
}

/// Meta keys.
const META_CREATED_AT: &[u8] = b"created_at";
const META_NODE_ID: &[u8] = b"node_id";

/// `meta/created_at`, version 1.
#[derive(serde::Serialize, serde::Deserialize)]
struct CreatedAt(u64);
impl Record for CreatedAt {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "creation time";
}

/// `meta/node_id`, version 1.
#[derive(serde::Serialize, serde::Deserialize)]
struct MetaNodeId([u8; 8]);
impl Record for MetaNodeId {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "node id";
}

/// How to unlock (or, for a new store, protect) the identity.
#[derive(Debug)]
pub enum Unlock {
    /// Seal or unseal with Argon2id of this passphrase.
    Passphrase(Passphrase),
    /// No passphrase: the key is stored beside the identity, which is then as exposed as a plaintext file.
    NoPassphrase,
}

/// How a store's identity is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protection {
    /// Sealed under Argon2id of a passphrase with these parameters.
    Passphrase(KdfParams),
    /// No passphrase.
    None,
}

/// What a data directory holds before unlocking, i.e. what the unlock will do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreState {
    /// Nothing yet: a new identity will be made and protected as the unlock says.
    New,
    /// Only the pre-database `identity.key`: it will be migrated (same node id) and protected as the unlock says.
    LegacyKeyFile(NodeId),
    /// A database whose identity is protected as this says.
    Existing(NodeId, Protection),
}

/// Where the identity of an unlocked store came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Made now.
    Created,
    /// Migrated from the pre-database `identity.key`, which is gone.
    Migrated,
    /// Read from the database.
    Opened,
}

/// A store whose database is open (and locked) but whose identity is not unlocked yet.
pub struct SealedStore {
    data_dir: PathBuf,
    db_path: PathBuf,
    legacy: Option<LegacyKey>,
    existing: Option<Existing>,
    // Last: the lock is released only after the database is closed.
    lock: files::DirLock,
}

struct Existing {
    trees: Trees,
    db: sled::Db,
    record: IdentityRecord,
}

/// An unlocked store with the identity it holds.
pub struct Unlocked {
    /// The store.
    pub store: Store,
    /// The node's identity.
    pub identity: Identity,
    /// Where it came from.
    pub origin: Origin,
}

/// The open, unlocked store.
pub struct Store {
    data_dir: PathBuf,
    db_path: PathBuf,
    // Trees before the database: sled wants every handle gone before the database closes.
    trees: Trees,
    db: sled::Db,
    key: StorageKey,
    node_id: NodeId,
    protection: Protection,
    peer_bound: peers::PeerBound,
    _lock: files::DirLock,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("db", &self.db_path)
            .field("node_id", &self.node_id)
            .field("protection", &self.protection)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Maps an error from opening sled (or a tree) to what it means for the user.
fn sled_open_error(path: &Path, what: &'static str, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(source) if source.kind() == std::io::ErrorKind::PermissionDenied => {
            StoreError::Io {
                what,
                path: path.to_path_buf(),
                source,
            }
        }
        sled::Error::Io(source) if source.to_string().contains("could not acquire lock") => {
            StoreError::Locked {
                dir: path.parent().unwrap_or(path).to_path_buf(),
            }
        }
        sled::Error::Io(source) => StoreError::Io {
            what,
            path: path.to_path_buf(),
            source,
        },
        sled::Error::Corruption { .. } => StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: "sled found corrupted data in it".into(),
        },
        other => StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("sled cannot read it ({other})"),
        },
    }
}

/// How long [`open_sled`] waits for sled's own file lock to come free.
const SLED_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens sled at `path`. sled 0.34 can panic on some damaged files instead of returning an error: that panic is
/// caught here and reported as damage (its message may still be printed by the panic hook).
///
/// Callers hold the data directory's lock already, so no other node has this database: if sled still finds its
/// file locked, the holder is an earlier handle of this process whose drop sled's IO threads have not finished yet
/// (they keep the file open for a few milliseconds after the last handle goes). That is waited out, for at most
/// [`SLED_LOCK_WAIT`], instead of being reported as a second node.
fn open_sled(path: &Path) -> Result<sled::Db, StoreError> {
    let config = sled::Config::new().path(path).cache_capacity(CACHE_BYTES);
    let deadline = std::time::Instant::now() + SLED_LOCK_WAIT;
    loop {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open())) {
            Ok(Ok(db)) => return Ok(db),
            Ok(Err(sled::Error::Io(e)))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Ok(Err(e)) => return Err(sled_open_error(path, "open database", e)),
            Err(_) => {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail: "sled stopped while reading it".into(),
                })
            }
        }
    }
}

impl SealedStore {
    /// Opens the store in `data_dir` (creating the directory, mode 0700, if missing) without unlocking it: takes
    /// the lock, opens and migrates an existing database and checks its identity record. Needs no passphrase.
    pub fn open(data_dir: &Path) -> Result<SealedStore, StoreError> {
        files::prepare_data_dir(data_dir)?;
        let lock = files::lock(data_dir)?;
        let db_path = data_dir.join(DB_DIR);
        let marker = data_dir.join(CREATING_MARKER);
        if marker.exists() {
            // A creation was interrupted: the identity in it was never handed out (an old identity.key, if any,
            // is still there), so starting the creation over loses nothing.
            tracing::warn!(path = %db_path.display(), "removing a database whose creation was interrupted");
            match fs::remove_dir_all(&db_path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(StoreError::Io {
                        what: "remove the unfinished database",
                        path: db_path,
                        source,
                    })
                }
            }
            files::remove_file(&marker)?;
        }
        let legacy = legacy::read(data_dir)?;
        let existing = match fs::symlink_metadata(&db_path) {
            Ok(_) => Some(open_existing(&db_path)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(StoreError::Io {
                    what: "inspect",
                    path: db_path,
                    source,
                })
            }
        };
        if let (Some(old), Some(ex)) = (&legacy, &existing) {
            if old.node_id != ex.record.node_id() {
                return Err(StoreError::IdentityConflict {
                    file: old.path.clone(),
                    db: db_path,
                    file_id: old.node_id.to_string(),
                    db_id: ex.record.node_id().to_string(),
                });
            }
        }
        Ok(SealedStore {
            data_dir: data_dir.to_path_buf(),
            db_path,
            legacy,
            existing,
            lock,
        })
    }

    /// What the directory holds, so the caller knows whether it is asking for a new passphrase or an existing one.
    pub fn state(&self) -> StoreState {
        match (&self.existing, &self.legacy) {
            (Some(ex), _) => StoreState::Existing(ex.record.node_id(), ex.record.protection()),
            (None, Some(old)) => StoreState::LegacyKeyFile(old.node_id),
            (None, None) => StoreState::New,
        }
    }

    /// The database directory.
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// Unlocks with `unlock`; a new store (or a migrated `identity.key`) gets [`KdfParams::DEFAULT`].
    pub fn unlock(self, unlock: Unlock) -> Result<Unlocked, StoreError> {
        self.unlock_with(unlock, KdfParams::DEFAULT)
    }

    /// As [`Self::unlock`], with the Argon2id parameters a NEW store is sealed with (an existing store uses its
    /// own, stored ones).
    pub fn unlock_with(self, unlock: Unlock, params: KdfParams) -> Result<Unlocked, StoreError> {
        let SealedStore {
            data_dir,
            db_path,
            lock,
            legacy,
            existing,
        } = self;
        match existing {
            Some(Existing { trees, db, record }) => {
                let (identity, key) = record.unseal(&unlock, &db_path)?;
                if let Some(old) = legacy {
                    // A migration that stopped after the database was written: same identity, finish it.
                    legacy::wipe(&old.path)?;
                    tracing::info!(path = %old.path.display(), "removed the old identity file, already migrated");
                }
                // Counted once here (sled's `len` walks the tree), then kept up to date by the peers code.
                let peer_count = trees.get(TreeName::Peers).len();
                let store = Store {
                    data_dir,
                    db_path,
                    trees,
                    db,
                    key,
                    node_id: identity.node_id(),
                    protection: record.protection(),
                    peer_bound: peers::PeerBound::new(peer_count),
                    _lock: lock,
                };
                Ok(Unlocked {
                    store,
                    identity,
                    origin: Origin::Opened,
                })
            }
            None => {
                let (secrets, origin) = match &legacy {
                    Some(old) => (Secrets(old.secrets.0.clone()), Origin::Migrated),
                    None => (Secrets::random()?, Origin::Created),
                };
                let (store, identity) = create(data_dir, db_path, lock, &secrets, &unlock, params)?;
                if let Some(old) = legacy {
                    legacy::wipe(&old.path)?;
                    tracing::info!(path = %old.path.display(), db = %store.db_path.display(),
                        "migrated the identity into the database and wiped the old identity file");
                }
                Ok(Unlocked {
                    store,
                    identity,
                    origin,
                })
            }
        }
    }
}

/// Opens an existing database: sled, every tree present, schema migrated, identity record and meta consistent.
fn open_existing(db_path: &Path) -> Result<Existing, StoreError> {
    let db = open_sled(db_path)?;
    let corrupt = |detail: String| StoreError::Corrupt {
        path: db_path.to_path_buf(),
        detail,
    };
    // The trees this database must have are those of its schema version: a newer tree is created (empty) when
    // the trees are opened, then the migration steps bring the version up.
    let names = db.tree_names();
    let has = |t: TreeName| {
        names
            .iter()
            .any(|have| have.as_ref() == t.name().as_bytes())
    };
    let found = if has(TreeName::Meta) {
        let meta = db
            .open_tree(TreeName::Meta.name())
            .map_err(|e| sled_open_error(db_path, "open a tree of", e))?;
        schema::read_version_in(&meta, db_path)?
    } else {
        1
    };
    if found > CURRENT_SCHEMA {
        // Refused before anything (even an empty tree) is created in it.
        return Err(StoreError::TooNew {
            path: db_path.to_path_buf(),
            found,
            supported: CURRENT_SCHEMA,
        });
    }
    let missing: Vec<&str> = TreeName::ALL
        .iter()
        .filter(|t| t.since() <= found.max(1) && !has(**t))
        .map(|t| t.name())
        .collect();
    if !missing.is_empty() {
        let (s, are) = if missing.len() == 1 {
            ("", "is")
        } else {
            ("s", "are")
        };
        return Err(corrupt(format!(
            "tree{s} {} {are} missing",
            missing.join(", ")
        )));
    }
    let trees = Trees::open(&db, db_path)?;
    schema::migrate(&trees, db_path, schema::MIGRATIONS, CURRENT_SCHEMA)?;
    let get = |t: TreeName, key: &[u8]| -> Result<Option<sled::IVec>, StoreError> {
        trees.get(t).get(key).map_err(|e| StoreError::Database {
            path: db_path.to_path_buf(),
            detail: e.to_string(),
        })
    };
    let record_bytes = get(TreeName::Identity, IDENTITY_KEY)?
        .ok_or_else(|| corrupt("tree `identity` has no identity record".into()))?;
    let record: IdentityRecord = decode(&record_bytes)
        .map_err(|e| StoreError::bad_value(db_path, "identity", IDENTITY_KEY, e))?;
    record.check(db_path)?;
    let meta_id = get(TreeName::Meta, META_NODE_ID)?
        .ok_or_else(|| corrupt("tree `meta` has no node id".into()))?;
    let meta_id: MetaNodeId =
        decode(&meta_id).map_err(|e| StoreError::bad_value(db_path, "meta", META_NODE_ID, e))?;
    if meta_id.0 != record.node_id {
        return Err(corrupt(format!(
            "tree `meta` names node {} but the identity record is node {}",
            NodeId(meta_id.0),
            record.node_id()
        )));
    }
    files::make_private(db_path)?;
    Ok(Existing { trees, db, record })
}

/// Writes a new database for `secrets`: the marker first, then every tree, meta and the identity record in one
/// transaction, flushed and read back, then the marker goes.
fn create(
    data_dir: PathBuf,
    db_path: PathBuf,
    lock: files::DirLock,
    secrets: &Secrets,
    unlock: &Unlock,
    params: KdfParams,
) -> Result<(Store, Identity), StoreError> {
    // The slow part (Argon2id) before anything touches the disk.
    let (record, key) = IdentityRecord::seal(secrets, unlock, params)?;
    let identity = secrets.identity();
    let marker = data_dir.join(CREATING_MARKER);
    files::create_marker(&marker)?;
    fs::create_dir(&db_path).map_err(|source| StoreError::Io {
        what: "create",
        path: db_path.clone(),
        source,
    })?;
    let db = open_sled(&db_path)?;
    let trees = Trees::open(&db, &db_path)?;
    let db_err = |e: sled::Error| StoreError::Database {
        path: db_path.clone(),
        detail: e.to_string(),
    };
    let enc = |r: Result<zeroize::Zeroizing<Vec<u8>>, value::ValueError>, key: &[u8]| {
        r.map_err(|e| StoreError::bad_value(&db_path, "meta", key, e))
    };
    let schema = enc(
        encode(&schema::SchemaVersion(CURRENT_SCHEMA)),
        schema::SCHEMA_KEY,
    )?;
    let created = enc(encode(&CreatedAt(unix_now())), META_CREATED_AT)?;
    let node_id = enc(encode(&MetaNodeId(record.node_id)), META_NODE_ID)?;
    let record_bytes = enc(encode(&record), IDENTITY_KEY)?;
    let result: Result<(), sled::transaction::TransactionError<()>> =
        (trees.get(TreeName::Meta), trees.get(TreeName::Identity)).transaction(|(meta, ident)| {
            meta.insert(schema::SCHEMA_KEY, &schema[..])?;
            meta.insert(META_CREATED_AT, &created[..])?;
            meta.insert(META_NODE_ID, &node_id[..])?;
            ident.insert(IDENTITY_KEY, &record_bytes[..])?;
            Ok(())
        });
    result.map_err(|e| match e {
        sled::transaction::TransactionError::Storage(e) => db_err(e),
        sled::transaction::TransactionError::Abort(()) => StoreError::Database {
            path: db_path.clone(),
            detail: "the creation transaction aborted".into(),
        },
    })?;
    db.flush().map_err(db_err)?;
    let back = trees
        .get(TreeName::Identity)
        .get(IDENTITY_KEY)
        .map_err(db_err)?;
    if back.as_deref() != Some(&record_bytes[..]) {
        return Err(StoreError::Database {
            path: db_path.clone(),
            detail: "the identity record read back differs from the one written".into(),
        });
    }
    files::make_private(&db_path)?;
    files::sync_dir(&data_dir)?;
    files::remove_file(&marker)?;
    let store = Store {
        data_dir,
        db_path,
        trees,
        db,
        key,
        node_id: identity.node_id(),
        protection: record.protection(),
        peer_bound: peers::PeerBound::new(0),
        _lock: lock,
    };
    Ok((store, identity))
}

impl Store {
    /// Opens the store in `data_dir` and unlocks it: [`SealedStore::open`] then [`SealedStore::unlock`].
    pub fn open(data_dir: &Path, unlock: Unlock) -> Result<Unlocked, StoreError> {
        SealedStore::open(data_dir)?.unlock(unlock)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The database directory.
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// How the identity is protected.
    pub fn protection(&self) -> Protection {
        self.protection
    }

    /// The key that seals secrets at rest (the identity's; session keys use it too).
    pub fn storage_key(&self) -> &StorageKey {
        &self.key
    }

    /// One tree, for the records other modules keep (see the table in this module's documentation).
    pub fn tree(&self, t: TreeName) -> &sled::Tree {
        self.trees.get(t)
    }

    /// Every tree, for writes to several in one transaction.
    pub fn trees(&self) -> &Trees {
        &self.trees
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(|e| self.db_error(e))
    }

    /// When the store was created, Unix seconds.
    pub fn created_at(&self) -> Result<u64, StoreError> {
        let bytes = self
            .tree(TreeName::Meta)
            .get(META_CREATED_AT)
            .map_err(|e| self.db_error(e))?
            .ok_or_else(|| StoreError::Corrupt {
                path: self.db_path.clone(),
                detail: "tree `meta` has no creation time".into(),
            })?;
        decode::<CreatedAt>(&bytes)
            .map(|c| c.0)
            .map_err(|e| StoreError::bad_value(&self.db_path, "meta", META_CREATED_AT, e))
    }

    pub(crate) fn db_error(&self, e: sled::Error) -> StoreError {
        StoreError::Database {
            path: self.db_path.clone(),
            detail: e.to_string(),
        }
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An unlocked store in `dir` with a fixed passphrase and cheap Argon2id parameters, for the store's unit tests.
#[cfg(test)]
pub(crate) fn open_for_tests(dir: &Path) -> Store {
    let pass = Passphrase::new(zeroize::Zeroizing::new(b"correct horse".to_vec())).unwrap();
    SealedStore::open(dir)
        .unwrap()
        .unlock_with(Unlock::Passphrase(pass), KdfParams::INSECURE_FOR_TESTS)
        .unwrap()
        .store
}
