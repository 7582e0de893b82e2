//! Password channels (PROTOCOL.md §7.9): a channel key derived with Argon2id from a channel name and password, and
//! CHANNEL frames (PROTOCOL.md §5.6) sealed and opened with it.
//!
//! Invariant: [`open_frame`] returns plaintext only when the frame is a valid CHANNEL frame of this key's channel
//! and its XChaCha20-Poly1305 tag verifies over the authenticated header and channel tag; every other input gives a
//! [`ChannelError`] naming the reason, never garbage and never a panic. Key bytes and Argon2 working memory are
//! zeroized when dropped, and `Debug` never shows a key. Randomness (the per-frame nonce) comes from the caller's
//! `RngCore + CryptoRng`.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// One 1 KiB block of Argon2 working memory, for [`ChannelKey::derive_with_memory`].
pub use argon2::Block;
use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::Aead;
use chacha20poly1305::aead::{AeadInPlace, KeyInit, Payload};
use chacha20poly1305::XChaCha20Poly1305;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::identity::NodeId;
use crate::wire::body::{CHANNEL_FIXED_LEN, CHANNEL_NONCE_LEN, CHANNEL_TAG_LEN, TAG_LEN};
use crate::wire::{
    channel_associated_data, channel_tag, decode, encode, Body, Header, Kind, WireError,
    HEADER_LEN, MAX_FRAME_LEN, MAX_TTL,
};

/// Domain separation label of the channel salt, 23 ASCII bytes without terminator (PROTOCOL.md §7.9).
pub const CHANNEL_SALT_LABEL: &[u8] = b"meshnode/1 channel-salt";
/// Length of the Argon2id salt: the first 16 bytes of the salt digest.
pub const CHANNEL_SALT_LEN: usize = 16;
/// Length of a channel key.
pub const CHANNEL_KEY_LEN: usize = 32;
/// Longest channel name, in bytes of UTF-8 (the shortest is 1).
pub const MAX_CHANNEL_NAME_LEN: usize = 32;
/// Longest channel password, in bytes (the shortest is 1).
pub const MAX_CHANNEL_PASSWORD_LEN: usize = 1024;
/// Longest plaintext of one CHANNEL frame: 4096 - 22 - 32 - 16 = 4026 bytes (PROTOCOL.md §7.9).
pub const MAX_CHANNEL_PLAINTEXT_LEN: usize =
    MAX_FRAME_LEN - HEADER_LEN - CHANNEL_FIXED_LEN - TAG_LEN;

/// Why a channel key could not be derived, or a channel frame could not be sealed or opened.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelError {
    /// The channel name is empty.
    EmptyName,
    /// The channel name is longer than [`MAX_CHANNEL_NAME_LEN`] bytes; carries its length.
    NameTooLong(usize),
    /// The channel name contains a control character; carries it.
    NameControlCharacter(char),
    /// The password is empty.
    EmptyPassword,
    /// The password is longer than [`MAX_CHANNEL_PASSWORD_LEN`] bytes; carries its length.
    PasswordTooLong(usize),
    /// Argon2id refused these parameters.
    InvalidParams(ChannelParams),
    /// The allocator could not provide Argon2id's working memory; carries the KiB asked for.
    OutOfMemory(u32),
    /// The message is longer than [`MAX_CHANNEL_PLAINTEXT_LEN`] bytes; carries its length.
    MessageTooLong(usize),
    /// A frame could not be built with this header (TTL above 15, broadcast source).
    InvalidHeader(WireError),
    /// The frame is malformed (PROTOCOL.md §4–§5).
    Malformed(WireError),
    /// The frame is valid but not of kind CHANNEL; carries its kind code.
    NotChannelFrame(u8),
    /// The frame belongs to another channel: its tag is not the tag of `channel`, this key's channel.
    OtherChannel {
        /// The channel of the key that was tried.
        channel: String,
    },
    /// The tag matches but the AEAD does not verify: another password, or a forged or damaged frame.
    WrongPassword {
        /// The channel of the key that was tried.
        channel: String,
    },
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::EmptyName => f.write_str("the channel name is empty"),
            ChannelError::NameTooLong(len) => write!(
                f,
                "the channel name is {len} bytes long; at most {MAX_CHANNEL_NAME_LEN} bytes of UTF-8 are allowed"
            ),
            ChannelError::NameControlCharacter(c) => write!(
                f,
                "the channel name contains the control character U+{:04X}; use printable characters only",
                u32::from(*c)
            ),
            ChannelError::EmptyPassword => f.write_str("the channel password is empty"),
            ChannelError::PasswordTooLong(len) => write!(
                f,
                "the channel password is {len} bytes long; at most {MAX_CHANNEL_PASSWORD_LEN} bytes are allowed"
            ),
            ChannelError::InvalidParams(p) => write!(
                f,
                "Argon2id parameters m = {} KiB, t = {}, p = {} are out of range (need t >= 1, \
                 1 <= p < 2^24 and m >= 8 * p KiB)",
                p.memory_kib, p.iterations, p.parallelism
            ),
            ChannelError::OutOfMemory(kib) => write!(
                f,
                "not enough memory to derive the channel key: Argon2id needs {kib} KiB"
            ),
            ChannelError::MessageTooLong(len) => write!(
                f,
                "the message is {len} bytes long; a channel message holds at most {MAX_CHANNEL_PLAINTEXT_LEN} bytes"
            ),
            ChannelError::InvalidHeader(e) => write!(f, "cannot build a channel frame: {e}"),
            ChannelError::Malformed(e) => write!(f, "malformed frame: {e}"),
            ChannelError::NotChannelFrame(code) => {
                write!(f, "not a CHANNEL frame (kind {code:#04x})")
            }
            ChannelError::OtherChannel { channel } => write!(
                f,
                "the frame belongs to another channel, not #{channel} (its channel tag differs)"
            ),
            ChannelError::WrongPassword { channel } => write!(
                f,
                "cannot read a message on channel #{channel}: wrong password, or the sender uses another one"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ChannelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ChannelError::InvalidHeader(e) | ChannelError::Malformed(e) => Some(e),
            _ => None,
        }
    }
}

/// Argon2id cost parameters. [`ChannelParams::DEFAULT`] is what interoperating nodes use (PROTOCOL.md §7.9); other
/// values make keys no other node derives, and exist for tests and demonstrations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChannelParams {
    /// Memory `m`, in KiB (1 KiB Argon2 blocks).
    pub memory_kib: u32,
    /// Passes over memory `t`.
    pub iterations: u32,
    /// Lanes `p`.
    pub parallelism: u32,
}

impl ChannelParams {
    /// m = 19456 KiB (19 MiB), t = 2, p = 1: OWASP's recommended minimum for Argon2id.
    pub const DEFAULT: ChannelParams = ChannelParams {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };

    /// Parameters `m` KiB, `t` passes, `p` lanes (checked when a key is derived).
    pub const fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Self {
        ChannelParams {
            memory_kib,
            iterations,
            parallelism,
        }
    }

    /// How many 1 KiB Argon2 blocks a derivation with these parameters works in (what
    /// [`ChannelKey::derive_with_memory`] needs), or [`ChannelError::InvalidParams`].
    pub fn block_count(self) -> Result<usize, ChannelError> {
        argon_params(self).map(|p| p.block_count())
    }
}

impl Default for ChannelParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The Argon2id salt of channel `name`: `SHA-256("meshnode/1 channel-salt" || name)[0..16]`. The name is not checked.
pub fn channel_salt(name: &str) -> [u8; CHANNEL_SALT_LEN] {
    let mut h = Sha256::new();
    h.update(CHANNEL_SALT_LABEL);
    h.update(name.as_bytes());
    let digest: [u8; 32] = h.finalize().into();
    let mut salt = [0u8; CHANNEL_SALT_LEN];
    salt.copy_from_slice(&digest[..CHANNEL_SALT_LEN]);
    salt
}

/// Checks a channel name: 1..=32 bytes of UTF-8, no control characters.
pub fn validate_channel_name(name: &str) -> Result<(), ChannelError> {
    if name.is_empty() {
        return Err(ChannelError::EmptyName);
    }
    if name.len() > MAX_CHANNEL_NAME_LEN {
        return Err(ChannelError::NameTooLong(name.len()));
    }
    match name.chars().find(|c| c.is_control()) {
        Some(c) => Err(ChannelError::NameControlCharacter(c)),
        None => Ok(()),
    }
}

fn check_inputs(name: &str, password: &[u8]) -> Result<(), ChannelError> {
    validate_channel_name(name)?;
    if password.is_empty() {
        return Err(ChannelError::EmptyPassword);
    }
    if password.len() > MAX_CHANNEL_PASSWORD_LEN {
        return Err(ChannelError::PasswordTooLong(password.len()));
    }
    Ok(())
}

fn argon_params(params: ChannelParams) -> Result<Params, ChannelError> {
    Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(CHANNEL_KEY_LEN),
    )
    .map_err(|_| ChannelError::InvalidParams(params))
}

/// Working memory for one derivation with `params`, allocated fallibly and wiped when dropped.
pub fn alloc_memory(params: ChannelParams) -> Result<Zeroizing<Vec<Block>>, ChannelError> {
    let block_count = params.block_count()?;
    let mut blocks: Zeroizing<Vec<Block>> = Zeroizing::new(Vec::new());
    blocks
        .try_reserve_exact(block_count)
        .map_err(|_| ChannelError::OutOfMemory(params.memory_kib))?;
    blocks.resize(block_count, Block::default());
    Ok(blocks)
}

/// The key of one password channel, with the channel's name and tag. Zeroized on drop; `Debug` shows the name only.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ChannelKey {
    key: [u8; CHANNEL_KEY_LEN],
    name: String,
    tag: [u8; CHANNEL_TAG_LEN],
}

impl ChannelKey {
    /// Derives the key of channel `name` from `password` with the interoperable [`ChannelParams::DEFAULT`]
    /// (PROTOCOL.md §7.9). Takes about as long as Argon2id over 19 MiB with two passes: call it once per join, not
    /// per message.
    pub fn derive(name: &str, password: &[u8]) -> Result<ChannelKey, ChannelError> {
        Self::derive_with(name, password, ChannelParams::DEFAULT)
    }

    /// As [`Self::derive`] with other Argon2id parameters: for tests and demonstrations only, since the parameters
    /// are not on air and other nodes use the defaults. Allocates its own working memory (fallibly) and wipes it.
    pub fn derive_with(
        name: &str,
        password: &[u8],
        params: ChannelParams,
    ) -> Result<ChannelKey, ChannelError> {
        check_inputs(name, password)?;
        // Our own working memory, so that a device without 19 MiB gets an error instead of an allocation failure.
        let mut blocks = alloc_memory(params)?;
        Self::derive_with_memory(name, password, params, &mut blocks)
    }

    /// As [`Self::derive_with`], with Argon2id's working memory provided by the caller, so that a caller deriving
    /// many keys can reuse one buffer instead of allocating 19 MiB each time. `memory` must hold at least
    /// [`ChannelParams::block_count`] blocks (else [`ChannelError::OutOfMemory`]); only that many are used, so the
    /// key is the same whatever the buffer's length. Every block used is zeroized before this returns, success or
    /// not: the buffer held password-derived state.
    pub fn derive_with_memory(
        name: &str,
        password: &[u8],
        params: ChannelParams,
        memory: &mut [Block],
    ) -> Result<ChannelKey, ChannelError> {
        check_inputs(name, password)?;
        let argon_params = argon_params(params)?;
        let block_count = argon_params.block_count();
        // Exactly `block_count` blocks: argon2 0.5 mixes the slice's length into the addresses it computes, so a
        // longer slice would give another key.
        let blocks = memory
            .get_mut(..block_count)
            .ok_or(ChannelError::OutOfMemory(params.memory_kib))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params);
        let mut key = Zeroizing::new([0u8; CHANNEL_KEY_LEN]);
        let result = argon.hash_password_into_with_memory(
            password,
            &channel_salt(name),
            &mut key[..],
            &mut *blocks,
        );
        for block in blocks.iter_mut() {
            block.zeroize();
        }
        result.map_err(|_| ChannelError::InvalidParams(params))?;
        Ok(ChannelKey {
            key: *key,
            name: name.to_string(),
            tag: channel_tag(name),
        })
    }

    /// A channel key from its 32 bytes, for a key already derived (or a test vector). Checks the name.
    pub fn from_bytes(name: &str, key: [u8; CHANNEL_KEY_LEN]) -> Result<ChannelKey, ChannelError> {
        validate_channel_name(name)?;
        Ok(ChannelKey {
            key,
            name: name.to_string(),
            tag: channel_tag(name),
        })
    }

    /// The key bytes. Secret: do not log or store them in the clear.
    pub fn as_bytes(&self) -> &[u8; CHANNEL_KEY_LEN] {
        &self.key
    }

    /// The channel name, without the `#` user interfaces show.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The channel tag that names this channel on air (PROTOCOL.md §5.6).
    pub fn tag(&self) -> [u8; CHANNEL_TAG_LEN] {
        self.tag
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.key.into())
    }
}

impl fmt::Debug for ChannelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelKey")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Builds a complete CHANNEL frame (PROTOCOL.md §5.6, §7.9) on `key`'s channel: header from `src` to broadcast with
/// `frame_id` and `ttl`, channel tag, a fresh random 24-byte nonce from `rng`, and `plaintext` sealed with
/// XChaCha20-Poly1305 under the channel key with the authenticated header and tag as associated data.
///
/// Fails with [`ChannelError::MessageTooLong`] above [`MAX_CHANNEL_PLAINTEXT_LEN`] bytes and
/// [`ChannelError::InvalidHeader`] for a TTL above 15 or a broadcast `src`.
pub fn seal_frame<R: RngCore + CryptoRng>(
    key: &ChannelKey,
    src: NodeId,
    frame_id: u32,
    ttl: u8,
    plaintext: &[u8],
    rng: &mut R,
) -> Result<Vec<u8>, ChannelError> {
    if plaintext.len() > MAX_CHANNEL_PLAINTEXT_LEN {
        return Err(ChannelError::MessageTooLong(plaintext.len()));
    }
    if ttl > MAX_TTL {
        return Err(ChannelError::InvalidHeader(WireError::BadTtl(ttl)));
    }
    let header = Header {
        kind: Kind::Channel,
        ttl,
        frame_id,
        src,
        dst: NodeId::BROADCAST,
    };
    let mut nonce = [0u8; CHANNEL_NONCE_LEN];
    rng.fill_bytes(&mut nonce);

    let mut body = Vec::with_capacity(CHANNEL_FIXED_LEN + plaintext.len() + TAG_LEN);
    body.extend_from_slice(&key.tag);
    body.extend_from_slice(&nonce);
    let mut frame = encode(&header, &body).map_err(ChannelError::InvalidHeader)?;
    let ad = channel_associated_data(&frame).map_err(ChannelError::InvalidHeader)?;

    let start = frame.len();
    frame.extend_from_slice(plaintext);
    let tag = key
        .cipher()
        .encrypt_in_place_detached(&nonce.into(), &ad, &mut frame[start..])
        .map_err(|_| ChannelError::MessageTooLong(plaintext.len()))?;
    frame.extend_from_slice(&tag);
    Ok(frame)
}

/// Opens a CHANNEL frame with `key`: checks the frame (PROTOCOL.md §4.3, §5.6), that its channel tag is `key`'s
/// ([`ChannelError::OtherChannel`] otherwise) and that the AEAD verifies ([`ChannelError::WrongPassword`]
/// otherwise), and returns the plaintext. The TTL is the only byte not covered.
pub fn open_frame(key: &ChannelKey, frame: &[u8]) -> Result<Vec<u8>, ChannelError> {
    let (header, body) = decode(frame).map_err(ChannelError::Malformed)?;
    let Body::Channel(channel) = body else {
        return Err(ChannelError::NotChannelFrame(header.kind.code()));
    };
    if channel.channel_tag != key.tag {
        return Err(ChannelError::OtherChannel {
            channel: key.name.clone(),
        });
    }
    let ad = channel_associated_data(frame).map_err(ChannelError::Malformed)?;
    key.cipher()
        .decrypt(
            &channel.nonce.into(),
            Payload {
                msg: channel.ciphertext_and_tag,
                aad: &ad,
            },
        )
        .map_err(|_| ChannelError::WrongPassword {
            channel: key.name.clone(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    const CHEAP: ChannelParams = ChannelParams::new(64, 1, 1);

    #[test]
    fn names_are_checked() {
        assert_eq!(validate_channel_name(""), Err(ChannelError::EmptyName));
        assert_eq!(validate_channel_name(&"a".repeat(32)), Ok(()));
        assert_eq!(
            validate_channel_name(&"a".repeat(33)),
            Err(ChannelError::NameTooLong(33))
        );
        // 11 three-byte characters: 11 characters but 33 bytes.
        assert_eq!(
            validate_channel_name(&"€".repeat(11)),
            Err(ChannelError::NameTooLong(33))
        );
        assert_eq!(validate_channel_name("café ☕"), Ok(()));
        assert_eq!(
            validate_channel_name("gen\neral"),
            Err(ChannelError::NameControlCharacter('\n'))
        );
        assert_eq!(
            validate_channel_name("x\u{7f}"),
            Err(ChannelError::NameControlCharacter('\u{7f}'))
        );
        assert_eq!(
            validate_channel_name("x\u{85}"),
            Err(ChannelError::NameControlCharacter('\u{85}'))
        );
    }

    #[test]
    fn passwords_and_params_are_checked() {
        assert_eq!(
            ChannelKey::derive_with("general", b"", CHEAP).unwrap_err(),
            ChannelError::EmptyPassword
        );
        let long = [b'p'; MAX_CHANNEL_PASSWORD_LEN + 1];
        assert_eq!(
            ChannelKey::derive_with("general", &long, CHEAP).unwrap_err(),
            ChannelError::PasswordTooLong(1025)
        );
        assert!(ChannelKey::derive_with("general", &long[..1024], CHEAP).is_ok());
        assert_eq!(
            ChannelKey::derive_with("", b"pw", CHEAP).unwrap_err(),
            ChannelError::EmptyName
        );
        for bad in [
            ChannelParams::new(7, 1, 1),
            ChannelParams::new(64, 0, 1),
            ChannelParams::new(64, 1, 0),
            ChannelParams::new(64, 1, 9),
        ] {
            assert_eq!(
                ChannelKey::derive_with("general", b"pw", bad).unwrap_err(),
                ChannelError::InvalidParams(bad)
            );
        }
    }

    #[test]
    fn caller_memory_gives_the_same_key_is_reused_and_is_wiped() {
        let expected = ChannelKey::derive_with("general", b"pw", CHEAP).unwrap();
        let needed = CHEAP.block_count().unwrap();
        assert_eq!(needed, 64);
        // A longer buffer than needed: only the first `needed` blocks count, so the key is the same.
        let mut memory = alloc_memory(ChannelParams::new(128, 1, 1)).unwrap();
        for password in [&b"pw"[..], b"other", b"pw"] {
            let key =
                ChannelKey::derive_with_memory("general", password, CHEAP, &mut memory).unwrap();
            assert_eq!(key.as_bytes() == expected.as_bytes(), password == b"pw");
            assert!(memory.iter().all(|b| b.as_ref().iter().all(|w| *w == 0)));
        }
        let mut short = alloc_memory(ChannelParams::new(32, 1, 1)).unwrap();
        assert_eq!(
            ChannelKey::derive_with_memory("general", b"pw", CHEAP, &mut short).unwrap_err(),
            ChannelError::OutOfMemory(64)
        );
        assert_eq!(
            ChannelKey::derive_with_memory("general", b"", CHEAP, &mut memory).unwrap_err(),
            ChannelError::EmptyPassword
        );
        assert_eq!(
            ChannelParams::new(7, 1, 1).block_count(),
            Err(ChannelError::InvalidParams(ChannelParams::new(7, 1, 1)))
        );
    }

    #[test]
    fn debug_redacts_the_key() {
        let key = ChannelKey::from_bytes("general", [0x5a; 32]).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("<redacted>") && shown.contains("general"));
        assert!(!shown.contains("5a") && !shown.contains("90"));
    }

    #[test]
    fn messages_name_the_problem() {
        let wrong = ChannelError::WrongPassword {
            channel: "general".to_string(),
        };
        assert_eq!(
            format!("{wrong}"),
            "cannot read a message on channel #general: wrong password, or the sender uses another one"
        );
        assert!(format!("{}", ChannelError::NameTooLong(40)).contains("at most 32 bytes"));
        assert!(format!("{}", ChannelError::NameControlCharacter('\t')).contains("U+0009"));
        assert!(format!("{}", ChannelError::MessageTooLong(5000)).contains("4026"));
    }

    #[test]
    fn seal_refuses_bad_inputs() {
        let key = ChannelKey::from_bytes("general", [1; 32]).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let src = NodeId([1; 8]);
        let max = [0u8; MAX_CHANNEL_PLAINTEXT_LEN];
        let frame = seal_frame(&key, src, 1, 7, &max, &mut rng).unwrap();
        assert_eq!(frame.len(), MAX_FRAME_LEN);
        assert_eq!(open_frame(&key, &frame).unwrap(), max);
        let over = [0u8; MAX_CHANNEL_PLAINTEXT_LEN + 1];
        assert_eq!(
            seal_frame(&key, src, 1, 7, &over, &mut rng),
            Err(ChannelError::MessageTooLong(MAX_CHANNEL_PLAINTEXT_LEN + 1))
        );
        assert_eq!(
            seal_frame(&key, src, 1, 16, b"x", &mut rng),
            Err(ChannelError::InvalidHeader(WireError::BadTtl(16)))
        );
        assert_eq!(
            seal_frame(&key, NodeId::BROADCAST, 1, 7, b"x", &mut rng),
            Err(ChannelError::InvalidHeader(WireError::BroadcastSource))
        );
        let empty = seal_frame(&key, src, 2, 7, b"", &mut rng).unwrap();
        assert_eq!(empty.len(), HEADER_LEN + CHANNEL_FIXED_LEN + TAG_LEN);
        assert_eq!(open_frame(&key, &empty).unwrap(), b"");
    }
}
