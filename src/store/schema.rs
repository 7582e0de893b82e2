//! The schema version of the database and the migrations between versions, run at open.
//!
//! Tree `meta`, key `schema`, holds the version as a [`SchemaVersion`] record. Schema 1 is the first database
//! schema; schema 2 adds tree `channels` (see [`MIGRATIONS`]; `mod.rs` describes the trees and records). What came
//! before it is not a database but a plaintext
//! `identity.key`; that step needs the passphrase, so it runs at unlock (`legacy.rs`), not here.
//!
//! A migration from version `n` to `n + 1` reads what it needs and returns the writes to make; [`migrate`] applies
//! them together with the new version number in ONE sled transaction over every tree, then flushes. A crash leaves
//! either the old version with the old data or the new version with the new data; a failing step changes nothing.
//!
//! Invariant: a database is used only at exactly [`CURRENT_SCHEMA`]; one written by a newer meshnode is refused
//! ([`StoreError::TooNew`]), never rewritten; a missing or undecodable version is damage ([`StoreError::Corrupt`]).

use std::path::Path;

use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::value::{decode, encode, Record};
use super::{StoreError, TreeName, Trees};

/// The schema this build writes and reads.
pub const CURRENT_SCHEMA: u32 = 2;

/// The key of the schema version in tree `meta`.
pub(super) const SCHEMA_KEY: &[u8] = b"schema";

/// Tree `meta`, key `schema`, version 1: the schema version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaVersion(pub u32);

impl Record for SchemaVersion {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "schema version";
}

/// One write a migration asks for: `value` `None` removes the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// The tree.
    pub tree: TreeName,
    /// The key.
    pub key: Vec<u8>,
    /// The new value, or `None` to remove.
    pub value: Option<Vec<u8>>,
}

/// A step from schema `from` to `from + 1`.
pub struct Migration {
    /// The version it starts from.
    pub from: u32,
    /// What it does, for the log.
    pub what: &'static str,
    /// Reads the trees (at version `from`) and returns the writes that make them version `from + 1`.
    pub step: fn(&Trees, &Path) -> Result<Vec<Write>, StoreError>,
}

/// The migrations of this build, in order.
///
/// - 1 → 2: adds tree `channels` (joined password channels). The tree itself is created empty when the trees are
///   opened, before the migrations run (a crash between the two leaves an empty extra tree at version 1, which the
///   next open migrates the same way); the step has nothing to rewrite, and only the version changes.
pub const MIGRATIONS: &[Migration] = &[Migration {
    from: 1,
    what: "add tree `channels` (joined password channels)",
    step: add_channels_tree,
}];

fn add_channels_tree(_trees: &Trees, _db: &Path) -> Result<Vec<Write>, StoreError> {
    Ok(Vec::new())
}

/// Reads the schema version in `meta`.
pub(super) fn read_version(trees: &Trees, db: &Path) -> Result<u32, StoreError> {
    read_version_in(trees.get(TreeName::Meta), db)
}

/// Reads the schema version in the tree `meta`.
pub(super) fn read_version_in(meta: &sled::Tree, db: &Path) -> Result<u32, StoreError> {
    let bytes = meta
        .get(SCHEMA_KEY)
        .map_err(|e| StoreError::Database {
            path: db.to_path_buf(),
            detail: e.to_string(),
        })?
        .ok_or_else(|| StoreError::Corrupt {
            path: db.to_path_buf(),
            detail: "tree `meta` has no schema version".into(),
        })?;
    decode::<SchemaVersion>(&bytes)
        .map(|v| v.0)
        .map_err(|e| StoreError::bad_value(db, "meta", SCHEMA_KEY, e))
}

/// Brings the database from its version to `target` with `steps`, one transaction per step. Returns the version
/// found at open.
pub(super) fn migrate(
    trees: &Trees,
    db: &Path,
    steps: &[Migration],
    target: u32,
) -> Result<u32, StoreError> {
    let found = read_version(trees, db)?;
    if found > target {
        return Err(StoreError::TooNew {
            path: db.to_path_buf(),
            found,
            supported: target,
        });
    }
    if found == 0 {
        return Err(StoreError::Corrupt {
            path: db.to_path_buf(),
            detail: "tree `meta` says schema version 0, which no meshnode writes".into(),
        });
    }
    let mut version = found;
    while version < target {
        let step = steps
            .iter()
            .find(|m| m.from == version)
            .ok_or_else(|| StoreError::Corrupt {
                path: db.to_path_buf(),
                detail: format!(
                    "schema version {version} has no migration to {} in this meshnode",
                    version + 1
                ),
            })?;
        tracing::info!(from = version, to = version + 1, what = step.what, path = %db.display(),
            "migrating the database");
        let writes = (step.step)(trees, db)?;
        apply(trees, db, &writes, version + 1)?;
        version += 1;
    }
    Ok(found)
}

/// Applies `writes` and sets the schema version to `new_version` in one transaction over every tree, then flushes.
fn apply(trees: &Trees, db: &Path, writes: &[Write], new_version: u32) -> Result<(), StoreError> {
    let version_bytes = encode(&SchemaVersion(new_version))
        .map_err(|e| StoreError::bad_value(db, "meta", SCHEMA_KEY, e))?;
    let result: Result<(), TransactionError<StoreError>> = trees.all().transaction(|views| {
        for w in writes {
            let Some(view) = views.get(w.tree as usize) else {
                return Err(ConflictableTransactionError::Abort(StoreError::Database {
                    path: db.to_path_buf(),
                    detail: format!("no tree {:?}", w.tree),
                }));
            };
            match &w.value {
                Some(v) => view.insert(&w.key[..], &v[..])?,
                None => view.remove(&w.key[..])?,
            };
        }
        if let Some(meta) = views.get(TreeName::Meta as usize) {
            meta.insert(SCHEMA_KEY, &version_bytes[..])?;
        }
        Ok(())
    });
    result.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Database {
            path: db.to_path_buf(),
            detail: e.to_string(),
        },
    })?;
    trees
        .get(TreeName::Meta)
        .flush()
        .map(|_| ())
        .map_err(|e| StoreError::Database {
            path: db.to_path_buf(),
            detail: e.to_string(),
        })
}
