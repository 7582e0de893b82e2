//! The storage key: what seals secrets at rest (the identity now, session keys next).
//!
//! With a passphrase the key is Argon2id(passphrase, 16-byte random salt, [`KdfParams`]); the salt and the
//! parameters are stored beside the sealed identity, so stores made with other parameters still open. Without a
//! passphrase it is 32 random bytes stored beside the identity (see `identity.rs` for why). Either way
//! [`StorageKey::seal`] is XChaCha20-Poly1305 with a fresh random 24-byte nonce, and the caller's associated data
//! (build it with [`associated_data`]) binds each blob to where it belongs, so blobs cannot be swapped.
//!
//! Invariant: key bytes, passphrases and Argon2 working memory are zeroized when dropped and never printed
//! (`Debug` shows `<redacted>`); no input (stored parameters, blobs) can make these functions panic.

use std::fmt;

use argon2::{Algorithm, Argon2, Block, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of the storage key.
pub const KEY_LEN: usize = 32;
/// Length of the Argon2id salt.
pub const SALT_LEN: usize = 16;
/// Length of the XChaCha20 nonce in front of every sealed blob.
pub const NONCE_LEN: usize = 24;
/// Length of the Poly1305 tag at the end of every sealed blob.
pub const TAG_LEN: usize = 16;
/// Longest passphrase accepted, in bytes.
pub const MAX_PASSPHRASE_LEN: usize = 1024;

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory `m`, in KiB.
    pub memory_kib: u32,
    /// Passes `t`.
    pub iterations: u32,
    /// Lanes `p`.
    pub parallelism: u32,
}

impl KdfParams {
    /// m = 64 MiB, t = 3, p = 1: what new stores use. RFC 9106's second recommended option is m = 64 MiB, t = 3,
    /// p = 4; the argon2 crate computes lanes one after another, so more lanes would not make our unlock faster
    /// while an attacker's hardware runs them in parallel: we keep one. 64 MiB fits a Raspberry Pi 4 with 1 GB at
    /// start-up, and the unlock is paid once per start (the README gives the measured time).
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };

    /// m = 64 KiB, t = 1, p = 1: for tests only. A store made with these is as good as unprotected.
    #[doc(hidden)]
    pub const INSECURE_FOR_TESTS: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    /// Largest memory accepted from a stored record (1 GiB): a damaged or hostile record cannot make the unlock
    /// allocate without bound.
    pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
    /// Most passes accepted from a stored record.
    pub const MAX_ITERATIONS: u32 = 64;
    /// Most lanes accepted from a stored record.
    pub const MAX_PARALLELISM: u32 = 16;

    /// Checks the bounds above and Argon2's own rules (m ≥ 8·p, t ≥ 1, p ≥ 1).
    pub fn check(&self) -> Result<Params, KeyError> {
        let in_bounds = self.memory_kib <= Self::MAX_MEMORY_KIB
            && (1..=Self::MAX_ITERATIONS).contains(&self.iterations)
            && (1..=Self::MAX_PARALLELISM).contains(&self.parallelism);
        if !in_bounds {
            return Err(KeyError::BadParams(*self));
        }
        Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(KEY_LEN),
        )
        .map_err(|_| KeyError::BadParams(*self))
    }
}

impl fmt::Display for KdfParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Argon2id m = {} KiB, t = {}, p = {}",
            self.memory_kib, self.iterations, self.parallelism
        )
    }
}

/// Why a key could not be made or a blob not sealed or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Rng(String),
    /// Argon2id parameters outside the accepted bounds.
    #[error("{0} is outside what meshnode accepts (m ≤ {max_m} KiB, 1 ≤ t ≤ {max_t}, 1 ≤ p ≤ {max_p}, m ≥ 8·p)",
        max_m = KdfParams::MAX_MEMORY_KIB, max_t = KdfParams::MAX_ITERATIONS, max_p = KdfParams::MAX_PARALLELISM)]
    BadParams(KdfParams),
    /// Argon2id's working memory could not be allocated.
    #[error("not enough memory to unlock: Argon2id needs {0} KiB")]
    OutOfMemory(u32),
    /// The blob is shorter than a nonce and a tag.
    #[error("a sealed value of {0} bytes is too short to be one (at least {min} bytes)", min = NONCE_LEN + TAG_LEN)]
    Short(usize),
    /// Authentication failed: another key (a wrong passphrase), other associated data, or altered bytes.
    #[error("the sealed value does not open with this key: wrong passphrase, or the value was altered or moved")]
    Open,
    /// Sealing failed (cannot happen for blobs below 256 GiB).
    #[error("sealing failed")]
    Seal,
}

/// A passphrase. Wiped when dropped; `Debug` never shows it.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<Vec<u8>>);

/// Why bytes are not a usable passphrase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PassphraseError {
    /// Zero bytes.
    #[error("the passphrase is empty: give a non-empty one, or choose --no-passphrase explicitly")]
    Empty,
    /// Longer than [`MAX_PASSPHRASE_LEN`].
    #[error("the passphrase is {0} bytes long: at most {MAX_PASSPHRASE_LEN} are accepted")]
    TooLong(usize),
}

impl Passphrase {
    /// A passphrase from its bytes (taken, and wiped on every error path too).
    pub fn new(bytes: Zeroizing<Vec<u8>>) -> Result<Passphrase, PassphraseError> {
        if bytes.is_empty() {
            return Err(PassphraseError::Empty);
        }
        if bytes.len() > MAX_PASSPHRASE_LEN {
            return Err(PassphraseError::TooLong(bytes.len()));
        }
        Ok(Passphrase(bytes))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// The key that seals secrets at rest. Zeroized on drop; `Debug` never shows it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct StorageKey([u8; KEY_LEN]);

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StorageKey(<redacted>)")
    }
}

impl StorageKey {
    /// Argon2id(`passphrase`, `salt`) with `params`. Takes as long as the parameters say (the README gives the
    /// figure for [`KdfParams::DEFAULT`]); the working memory is allocated fallibly and wiped afterwards.
    pub fn derive(
        passphrase: &Passphrase,
        salt: &[u8; SALT_LEN],
        params: KdfParams,
    ) -> Result<StorageKey, KeyError> {
        let argon_params = params.check()?;
        let block_count = argon_params.block_count();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
        let mut blocks: Zeroizing<Vec<Block>> = Zeroizing::new(Vec::new());
        blocks
            .try_reserve_exact(block_count)
            .map_err(|_| KeyError::OutOfMemory(params.memory_kib))?;
        blocks.resize(block_count, Block::default());
        let mut key = StorageKey([0u8; KEY_LEN]);
        argon
            .hash_password_into_with_memory(
                passphrase.as_bytes(),
                salt,
                &mut key.0,
                &mut blocks[..],
            )
            .map_err(|_| KeyError::BadParams(params))?;
        Ok(key)
    }

    /// A key of 32 random bytes (the store without a passphrase).
    pub fn random() -> Result<StorageKey, KeyError> {
        let mut key = StorageKey([0u8; KEY_LEN]);
        getrandom::getrandom(&mut key.0).map_err(|e| KeyError::Rng(e.to_string()))?;
        Ok(key)
    }

    /// The key stored beside the identity of a store without a passphrase.
    pub(super) fn from_stored(bytes: [u8; KEY_LEN]) -> StorageKey {
        StorageKey(bytes)
    }

    /// The bytes, to store them beside the identity of a store without a passphrase.
    pub(super) fn to_stored(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(self.0)
    }

    /// Seals `plaintext`: `nonce (24) || ciphertext || tag (16)`, the nonce fresh from the OS RNG. `ad` must say
    /// what the blob is and where it belongs (see [`associated_data`]); [`Self::open`] needs the same `ad`.
    pub fn seal(&self, ad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(|e| KeyError::Rng(e.to_string()))?;
        let ciphertext = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: ad,
                },
            )
            .map_err(|_| KeyError::Seal)?;
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        Ok(blob)
    }

    /// Opens a blob made by [`Self::seal`] with the same `ad`. The plaintext is wiped when dropped.
    pub fn open(&self, ad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if blob.len() < NONCE_LEN + TAG_LEN {
            return Err(KeyError::Short(blob.len()));
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: ad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| KeyError::Open)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.0.into())
    }
}

/// Associated data for a sealed blob: `"meshnode/store"`, then `purpose` and each part, each preceded by its
/// length as a 4-byte big-endian number, so no two different lists give the same bytes. Use the tree, the record's
/// key and the record's version as parts, so that a blob copied to another key, tree or version does not open.
pub fn associated_data(purpose: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut ad = b"meshnode/store".to_vec();
    for part in std::iter::once(purpose.as_bytes()).chain(parts.iter().copied()) {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        ad.extend_from_slice(&len.to_be_bytes());
        ad.extend_from_slice(part);
    }
    ad
}

/// A fresh random salt.
pub fn random_salt() -> Result<[u8; SALT_LEN], KeyError> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::getrandom(&mut salt).map_err(|e| KeyError::Rng(e.to_string()))?;
    Ok(salt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(s: &str) -> Passphrase {
        Passphrase::new(Zeroizing::new(s.as_bytes().to_vec())).unwrap()
    }

    #[test]
    fn derivation_is_deterministic_and_depends_on_every_input() {
        let p = KdfParams::INSECURE_FOR_TESTS;
        let k = |s: &str, salt: u8, params: KdfParams| {
            StorageKey::derive(&pass(s), &[salt; SALT_LEN], params)
                .unwrap()
                .0
        };
        assert_eq!(k("a", 1, p), k("a", 1, p));
        assert_ne!(k("a", 1, p), k("b", 1, p));
        assert_ne!(k("a", 1, p), k("a", 2, p));
        let p2 = KdfParams { iterations: 2, ..p };
        assert_ne!(k("a", 1, p), k("a", 1, p2));
    }

    #[test]
    fn argon2id_matches_the_reference_implementation() {
        // Argon2id v1.3, 32-byte output, password "password", salt "somesaltsomesalt", computed with the reference
        // implementation (Debian's `argon2` 0~20171227):
        // `echo -n password | argon2 somesaltsomesalt -id -t 1 -k 64 -p 1 -l 32 -r`.
        let key = StorageKey::derive(
            &pass("password"),
            b"somesaltsomesalt",
            KdfParams::INSECURE_FOR_TESTS,
        )
        .unwrap();
        assert_eq!(
            hex(&key.0),
            "e793d64ef75d58f503d4631b2b149f7f80127c5f3993d89b1c9b781e51d0b413"
        );
    }

    #[test]
    fn default_parameters_are_what_the_readme_says() {
        // `echo -n password | argon2 somesaltsomesalt -id -t 3 -k 65536 -p 1 -l 32 -r`
        let key =
            StorageKey::derive(&pass("password"), b"somesaltsomesalt", KdfParams::DEFAULT).unwrap();
        assert_eq!(
            hex(&key.0),
            "7664ad4ba1a3c999fcdd0991ffc2270f78302d2383233db5e7befc85d1bb1819"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn seal_open_round_trip_and_every_mismatch_fails() {
        let key = StorageKey::random().unwrap();
        let other = StorageKey::random().unwrap();
        let ad = associated_data("test", &[b"k1", &[1]]);
        let blob = key.seal(&ad, b"secret").unwrap();
        assert_eq!(blob.len(), NONCE_LEN + 6 + TAG_LEN);
        assert_eq!(&key.open(&ad, &blob).unwrap()[..], b"secret");
        assert!(matches!(other.open(&ad, &blob), Err(KeyError::Open)));
        let ad2 = associated_data("test", &[b"k2", &[1]]);
        assert!(matches!(key.open(&ad2, &blob), Err(KeyError::Open)));
        let mut flipped = blob.clone();
        flipped[NONCE_LEN] ^= 1;
        assert!(matches!(key.open(&ad, &flipped), Err(KeyError::Open)));
        assert!(matches!(
            key.open(&ad, &blob[..39]),
            Err(KeyError::Short(39))
        ));
        // Two seals of the same plaintext differ (fresh nonces).
        assert_ne!(blob, key.seal(&ad, b"secret").unwrap());
    }

    #[test]
    fn associated_data_is_unambiguous() {
        assert_ne!(
            associated_data("a", &[b"bc"]),
            associated_data("a", &[b"b", b"c"])
        );
        assert_ne!(associated_data("ab", &[]), associated_data("a", &[b"b"]));
    }

    #[test]
    fn params_out_of_bounds_are_refused_before_allocating() {
        for bad in [
            KdfParams {
                memory_kib: u32::MAX,
                ..KdfParams::DEFAULT
            },
            KdfParams {
                iterations: 0,
                ..KdfParams::DEFAULT
            },
            KdfParams {
                parallelism: 0,
                ..KdfParams::DEFAULT
            },
            KdfParams {
                memory_kib: 4,
                iterations: 1,
                parallelism: 1,
            },
        ] {
            let err = StorageKey::derive(&pass("x"), &[0; SALT_LEN], bad).unwrap_err();
            assert!(matches!(err, KeyError::BadParams(_)), "{err}");
        }
        assert!(KdfParams::DEFAULT.check().is_ok());
    }

    #[test]
    fn secrets_are_redacted_and_passphrases_checked() {
        let key = StorageKey::random().unwrap();
        assert_eq!(format!("{key:?}"), "StorageKey(<redacted>)");
        assert_eq!(format!("{:?}", pass("hunter2")), "Passphrase(<redacted>)");
        assert_eq!(
            Passphrase::new(Zeroizing::new(Vec::new())).unwrap_err(),
            PassphraseError::Empty
        );
        assert_eq!(
            Passphrase::new(Zeroizing::new(vec![b'a'; MAX_PASSPHRASE_LEN + 1])).unwrap_err(),
            PassphraseError::TooLong(MAX_PASSPHRASE_LEN + 1)
        );
    }
}
