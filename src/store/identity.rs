//! The identity at rest: tree `identity`, key `keys`, one [`IdentityRecord`].
//!
//! The record holds the public keys and node id in the clear (so a store can be checked and named before it is
//! unlocked), where the storage key comes from, and the 64 secret bytes sealed with XChaCha20-Poly1305 under that
//! key. The associated data binds the blob to this tree and key, the record version, the node id and both public
//! keys: a blob moved to another record, or a record whose public half was edited, does not open.
//!
//! With a passphrase the key is Argon2id(passphrase, salt) and the salt and parameters are stored here. Without one
//! (`--no-passphrase`) a random key is stored here beside the blob. That is no protection at all, exactly like a
//! plaintext file; we still seal, so that both modes share one record format and one code path, and so that session
//! keys are sealed the same way in both modes (they only ever see a [`StorageKey`]).
//!
//! Invariant: unsealing writes nothing; it succeeds only if the blob opens and the secret bytes give exactly the
//! stored public keys.

use std::path::Path;

use mesh::identity::{Identity, NodeId};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::key::{self, associated_data, KdfParams, KeyError, Passphrase, StorageKey, SALT_LEN};
use super::legacy::Secrets;
use super::value::Record;
use super::{Protection, StoreError, Unlock};

/// The record's key in tree `identity`.
pub(super) const IDENTITY_KEY: &[u8] = b"keys";

/// Where the storage key comes from.
#[derive(Clone, Serialize, Deserialize)]
pub(super) enum KeySource {
    /// Argon2id of the passphrase.
    Passphrase {
        /// The Argon2id salt.
        salt: [u8; SALT_LEN],
        /// The Argon2id parameters.
        params: KdfParams,
    },
    /// No passphrase: the key itself, stored beside the blob.
    Stored {
        /// The key.
        key: [u8; key::KEY_LEN],
    },
}

impl Drop for KeySource {
    fn drop(&mut self) {
        if let KeySource::Stored { key } = self {
            key.zeroize();
        }
    }
}

/// Tree `identity`, key `keys`, version 1.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct IdentityRecord {
    /// The node id the keys make.
    pub node_id: [u8; 8],
    /// Ed25519 public key.
    pub ed25519: [u8; 32],
    /// X25519 public key.
    pub x25519: [u8; 32],
    /// Where the storage key comes from.
    pub key: KeySource,
    /// `nonce || ciphertext || tag` of the 64 secret bytes.
    pub sealed: Vec<u8>,
}

impl Record for IdentityRecord {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "identity record";
}

impl IdentityRecord {
    /// The node id stored in the record.
    pub fn node_id(&self) -> NodeId {
        NodeId(self.node_id)
    }

    /// How the record is protected.
    pub fn protection(&self) -> Protection {
        match &self.key {
            KeySource::Passphrase { params, .. } => Protection::Passphrase(*params),
            KeySource::Stored { .. } => Protection::None,
        }
    }

    fn ad(&self) -> Vec<u8> {
        associated_data(
            "identity",
            &[
                b"identity",
                IDENTITY_KEY,
                &[Self::VERSION],
                &self.node_id,
                &self.ed25519,
                &self.x25519,
            ],
        )
    }

    /// Seals `secrets` for a new store: derives the key (Argon2id with fresh salt and `params`, or a random stored
    /// key) and returns the record and the key.
    pub fn seal(
        secrets: &Secrets,
        unlock: &Unlock,
        params: KdfParams,
    ) -> Result<(IdentityRecord, StorageKey), StoreError> {
        let identity = secrets.identity();
        let public = *identity.public();
        let (source, storage_key) = match unlock {
            Unlock::Passphrase(passphrase) => {
                let salt = key::random_salt()?;
                let k = StorageKey::derive(passphrase, &salt, params)?;
                (KeySource::Passphrase { salt, params }, k)
            }
            Unlock::NoPassphrase => {
                let k = StorageKey::random()?;
                (
                    KeySource::Stored {
                        key: *k.to_stored(),
                    },
                    k,
                )
            }
        };
        let mut record = IdentityRecord {
            node_id: identity.node_id().0,
            ed25519: public.ed25519,
            x25519: public.x25519,
            key: source,
            sealed: Vec::new(),
        };
        record.sealed = storage_key.seal(&record.ad(), &secrets.0[..])?;
        Ok((record, storage_key))
    }

    /// Unseals the identity with what the user gave. Writes nothing.
    pub fn unseal(&self, unlock: &Unlock, db: &Path) -> Result<(Identity, StorageKey), StoreError> {
        let storage_key = match (&self.key, unlock) {
            (KeySource::Passphrase { salt, params }, Unlock::Passphrase(p)) => {
                derive_checked(p, salt, *params, db)?
            }
            (KeySource::Passphrase { .. }, Unlock::NoPassphrase) => {
                return Err(StoreError::PassphraseNeeded {
                    path: db.to_path_buf(),
                })
            }
            (KeySource::Stored { key }, Unlock::NoPassphrase) => StorageKey::from_stored(*key),
            (KeySource::Stored { .. }, Unlock::Passphrase(_)) => {
                return Err(StoreError::NotSealed {
                    path: db.to_path_buf(),
                })
            }
        };
        let plain = match storage_key.open(&self.ad(), &self.sealed) {
            Ok(p) => p,
            Err(KeyError::Open) if matches!(self.key, KeySource::Passphrase { .. }) => {
                return Err(StoreError::WrongPassphrase {
                    path: db.to_path_buf(),
                })
            }
            Err(e) => {
                return Err(StoreError::Corrupt {
                    path: db.to_path_buf(),
                    detail: format!(
                        "tree `identity`, key `keys`: the sealed secret keys do not open ({e})"
                    ),
                })
            }
        };
        let mut bytes = Zeroizing::new([0u8; 64]);
        if plain.len() != bytes.len() {
            return Err(StoreError::Corrupt {
                path: db.to_path_buf(),
                detail: format!(
                    "tree `identity`, key `keys`: the sealed secret keys are {} bytes, not 64",
                    plain.len()
                ),
            });
        }
        bytes.copy_from_slice(&plain);
        let identity = Secrets(bytes).identity();
        let public = identity.public();
        if public.ed25519 != self.ed25519
            || public.x25519 != self.x25519
            || identity.node_id().0 != self.node_id
        {
            return Err(StoreError::Corrupt {
                path: db.to_path_buf(),
                detail: "tree `identity`, key `keys`: the secret keys do not match the stored public keys".into(),
            });
        }
        Ok((identity, storage_key))
    }

    /// The record's own consistency, checked at open (before any passphrase): the node id is the one the public
    /// keys make, and stored Argon2id parameters are within bounds.
    pub fn check(&self, db: &Path) -> Result<(), StoreError> {
        let public = mesh::identity::PublicIdentity {
            ed25519: self.ed25519,
            x25519: self.x25519,
        };
        let corrupt = |detail: String| StoreError::Corrupt {
            path: db.to_path_buf(),
            detail: format!("tree `identity`, key `keys`: {detail}"),
        };
        if public.node_id().0 != self.node_id {
            return Err(corrupt(format!(
                "the node id {} is not the one its public keys make ({})",
                NodeId(self.node_id),
                public.node_id()
            )));
        }
        if let KeySource::Passphrase { params, .. } = &self.key {
            params.check().map_err(|e| corrupt(e.to_string()))?;
        }
        Ok(())
    }
}

/// Derives the key from stored parameters; parameters out of bounds mean a damaged record, not a user error.
fn derive_checked(
    passphrase: &Passphrase,
    salt: &[u8; SALT_LEN],
    params: KdfParams,
    db: &Path,
) -> Result<StorageKey, StoreError> {
    StorageKey::derive(passphrase, salt, params).map_err(|e| match e {
        KeyError::BadParams(_) => StoreError::Corrupt {
            path: db.to_path_buf(),
            detail: format!("tree `identity`, key `keys`: {e}"),
        },
        other => StoreError::Key(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::value::{decode, encode};

    fn pass(s: &str) -> Unlock {
        Unlock::Passphrase(Passphrase::new(Zeroizing::new(s.as_bytes().to_vec())).unwrap())
    }

    fn secrets() -> Secrets {
        Secrets(Zeroizing::new([7u8; 64]))
    }

    #[test]
    fn sealed_record_round_trips_through_the_encoding() {
        let (record, _) =
            IdentityRecord::seal(&secrets(), &pass("pw"), KdfParams::INSECURE_FOR_TESTS).unwrap();
        let bytes = encode(&record).unwrap();
        assert_eq!(bytes[0], 1);
        let back: IdentityRecord = decode(&bytes).unwrap();
        back.check(Path::new("db")).unwrap();
        let (identity, _) = back.unseal(&pass("pw"), Path::new("db")).unwrap();
        assert_eq!(identity.node_id(), secrets().identity().node_id());
        assert!(matches!(
            back.protection(),
            Protection::Passphrase(KdfParams::INSECURE_FOR_TESTS)
        ));
    }

    #[test]
    fn wrong_passphrase_and_wrong_mode_are_typed() {
        let db = Path::new("db");
        let (sealed, _) =
            IdentityRecord::seal(&secrets(), &pass("pw"), KdfParams::INSECURE_FOR_TESTS).unwrap();
        assert!(matches!(
            sealed.unseal(&pass("nope"), db),
            Err(StoreError::WrongPassphrase { .. })
        ));
        assert!(matches!(
            sealed.unseal(&Unlock::NoPassphrase, db),
            Err(StoreError::PassphraseNeeded { .. })
        ));
        let (open, _) =
            IdentityRecord::seal(&secrets(), &Unlock::NoPassphrase, KdfParams::DEFAULT).unwrap();
        assert!(matches!(open.protection(), Protection::None));
        assert!(matches!(
            open.unseal(&pass("pw"), db),
            Err(StoreError::NotSealed { .. })
        ));
        open.unseal(&Unlock::NoPassphrase, db).unwrap();
    }

    #[test]
    fn swapped_or_edited_records_do_not_open() {
        let db = Path::new("db");
        let unlock = Unlock::NoPassphrase;
        let (a, _) = IdentityRecord::seal(&secrets(), &unlock, KdfParams::DEFAULT).unwrap();
        let (b, _) = IdentityRecord::seal(
            &Secrets(Zeroizing::new([9u8; 64])),
            &unlock,
            KdfParams::DEFAULT,
        )
        .unwrap();
        // b's blob under a's key source and public half: does not open.
        let mut swapped = a.clone();
        swapped.sealed = b.sealed.clone();
        assert!(matches!(
            swapped.unseal(&unlock, db),
            Err(StoreError::Corrupt { .. })
        ));
        // a's public half edited to b's (with a consistent node id): the check passes, the blob does not open.
        let mut edited = a.clone();
        edited.ed25519 = b.ed25519;
        edited.x25519 = b.x25519;
        edited.node_id = b.node_id;
        edited.check(db).unwrap();
        assert!(edited.unseal(&unlock, db).is_err());
        // A node id that the keys do not make is caught before any unlock.
        let mut lying = a.clone();
        lying.node_id = [0; 8];
        assert!(lying.check(db).is_err());
    }

    #[test]
    fn hostile_parameters_are_refused_as_damage() {
        let (mut record, _) =
            IdentityRecord::seal(&secrets(), &pass("pw"), KdfParams::INSECURE_FOR_TESTS).unwrap();
        if let KeySource::Passphrase { params, .. } = &mut record.key {
            params.memory_kib = u32::MAX;
        }
        let err = record.check(Path::new("db")).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        let err = record.unseal(&pass("pw"), Path::new("db")).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    }
}
