//! Bodies of each frame kind (PROTOCOL.md §5): one type per kind with `parse` from the body bytes and
//! `buffer_len` / `emit` back, borrowing variable-length parts from the frame instead of copying them. ANNOUNCE
//! and BROADCAST also carry their Ed25519 signing and verification here, since what is signed is defined by the
//! body layout.
//!
//! Invariant: `parse` accepts exactly the byte strings PROTOCOL.md allows and returns a [`WireError`] naming the
//! reason for anything else; it never panics and never allocates. Signing and verification build the signed
//! message from the parsed fields, so a body that parses re-creates byte for byte what its sender signed.

use alloc::vec::Vec;

use sha2::{Digest, Sha256};

use super::header::{Header, Kind, WireError, HEADER_LEN, MAX_TTL};
use crate::identity::{verify_signature, Identity, NodeId, PublicIdentity};

/// Bytes of the fixed fields of a sealed body: session id, epoch/flags, nonce.
pub const SEALED_FIXED_LEN: usize = 10;
/// Poly1305 tag length.
pub const TAG_LEN: usize = 16;
/// Length of the associated data of a sealed frame (PROTOCOL.md §5.4): the first 32 bytes without the TTL.
pub const SEALED_AD_LEN: usize = HEADER_LEN + SEALED_FIXED_LEN - 1;
/// The nonce value reserved for REKEY; never valid in a frame (PROTOCOL.md §6.4).
pub const RESERVED_NONCE: u64 = u64::MAX;
/// Bit 7 of `epoch_flags`: the plaintext is padded (PROTOCOL.md §6.6).
pub const FLAG_PADDED: u8 = 0x80;
/// Epochs travel modulo this (bits 6..0 of `epoch_flags`).
pub const EPOCH_MODULUS: u8 = 128;

/// HANDSHAKE_1/2/3 body (PROTOCOL.md §5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handshake<'a> {
    /// Session id chosen by the initiator.
    pub session_id: u8,
    /// The Noise message.
    pub noise: &'a [u8],
}

impl<'a> Handshake<'a> {
    /// The largest Noise message meshnode sends (message 2, 128 bytes) with room for future payload fields.
    pub const MAX_NOISE_LEN: usize = 512;

    /// Parses a handshake body.
    pub fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        let (&session_id, noise) = body.split_first().ok_or(WireError::Truncated)?;
        if noise.is_empty() {
            return Err(WireError::Truncated);
        }
        if noise.len() > Self::MAX_NOISE_LEN {
            return Err(WireError::TooLong);
        }
        Ok(Handshake { session_id, noise })
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        1 + self.noise.len()
    }

    /// Writes the body into `buf[..self.buffer_len()]`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0] = self.session_id;
        buf[1..1 + self.noise.len()].copy_from_slice(self.noise);
    }
}

/// TRANSPORT / ACK / CLOSE body (PROTOCOL.md §5.4), before decryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sealed<'a> {
    /// Session id.
    pub session_id: u8,
    /// Key epoch modulo [`EPOCH_MODULUS`].
    pub epoch: u8,
    /// PADDED flag.
    pub padded: bool,
    /// Explicit nonce.
    pub nonce: u64,
    /// Ciphertext followed by the 16-byte tag.
    pub ciphertext_and_tag: &'a [u8],
}

impl<'a> Sealed<'a> {
    /// Parses a sealed body. The ciphertext may be empty; the tag may not.
    pub fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        if body.len() < SEALED_FIXED_LEN + TAG_LEN {
            return Err(WireError::Truncated);
        }
        let mut nonce = [0u8; 8];
        nonce.copy_from_slice(&body[2..10]);
        let nonce = u64::from_be_bytes(nonce);
        if nonce == RESERVED_NONCE {
            return Err(WireError::BadField);
        }
        Ok(Sealed {
            session_id: body[0],
            epoch: body[1] & !FLAG_PADDED,
            padded: body[1] & FLAG_PADDED != 0,
            nonce,
            ciphertext_and_tag: &body[SEALED_FIXED_LEN..],
        })
    }

    /// The `epoch_flags` byte.
    pub fn epoch_flags(&self) -> u8 {
        (self.epoch % EPOCH_MODULUS) | if self.padded { FLAG_PADDED } else { 0 }
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        SEALED_FIXED_LEN + self.ciphertext_and_tag.len()
    }

    /// Writes the whole body (fixed fields, ciphertext and tag) into `buf[..self.buffer_len()]`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        Self::emit_fixed(self.session_id, self.epoch, self.padded, self.nonce, buf);
        buf[SEALED_FIXED_LEN..self.buffer_len()].copy_from_slice(self.ciphertext_and_tag);
    }

    /// Writes the fixed fields (session id, epoch/flags, nonce) into `buf[..SEALED_FIXED_LEN]`; the caller
    /// encrypts in place after them.
    ///
    /// # Panics
    /// If `buf` is shorter than [`SEALED_FIXED_LEN`].
    pub fn emit_fixed(session_id: u8, epoch: u8, padded: bool, nonce: u64, buf: &mut [u8]) {
        buf[0] = session_id;
        buf[1] = (epoch % EPOCH_MODULUS) | if padded { FLAG_PADDED } else { 0 };
        buf[2..10].copy_from_slice(&nonce.to_be_bytes());
    }
}

/// The associated data of a sealed frame (PROTOCOL.md §5.4): byte 0 and bytes 2..32 of the frame.
pub fn sealed_associated_data(frame: &[u8]) -> Result<[u8; SEALED_AD_LEN], WireError> {
    let mut ad = [0u8; SEALED_AD_LEN];
    super::header::authenticated_prefix(frame, HEADER_LEN + SEALED_FIXED_LEN, &mut ad)?;
    Ok(ad)
}

/// UNKNOWN_SESSION body (PROTOCOL.md §5.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownSession {
    /// The session id that could not be placed.
    pub session_id: u8,
    /// The `epoch_flags` byte copied from that frame.
    pub epoch_flags: u8,
}

impl UnknownSession {
    /// Exact body length.
    pub const LEN: usize = 2;

    /// Parses the body: exactly 2 bytes.
    pub fn parse(body: &[u8]) -> Result<Self, WireError> {
        match body {
            [session_id, epoch_flags] => Ok(UnknownSession {
                session_id: *session_id,
                epoch_flags: *epoch_flags,
            }),
            [] | [_] => Err(WireError::Truncated),
            _ => Err(WireError::TrailingBytes),
        }
    }

    /// Bytes the body takes: always [`Self::LEN`].
    pub const fn buffer_len(&self) -> usize {
        Self::LEN
    }

    /// Writes the body into `buf[..2]`.
    ///
    /// # Panics
    /// If `buf` is shorter than 2 bytes.
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0] = self.session_id;
        buf[1] = self.epoch_flags;
    }
}

/// Splits `N` bytes off the front of `bytes`, or reports [`WireError::Truncated`].
fn take<const N: usize>(bytes: &[u8]) -> Result<(&[u8; N], &[u8]), WireError> {
    bytes.split_first_chunk::<N>().ok_or(WireError::Truncated)
}

/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Domain separation label of announce signatures (PROTOCOL.md §5.1), 19 ASCII bytes, no terminator.
pub const ANNOUNCE_LABEL: &[u8] = b"meshnode/1 announce";
/// Domain separation label of broadcast signatures (PROTOCOL.md §5.2), 20 ASCII bytes, no terminator.
pub const BROADCAST_LABEL: &[u8] = b"meshnode/1 broadcast";
/// Longest nickname in an announce, in bytes of UTF-8.
pub const MAX_NICKNAME_LEN: usize = 32;
/// Longest broadcast message, in bytes (the shortest is 1).
pub const MAX_BROADCAST_LEN: usize = 1024;
/// Capability bit 0: the node relays frames.
pub const CAP_RELAY: u16 = 0x0001;
/// Capability bit 1: the node accepts private sessions.
pub const CAP_SESSIONS: u16 = 0x0002;
/// Bytes of an announce body before the nickname: two keys, capabilities, nickname length.
pub const ANNOUNCE_FIXED_LEN: usize = 32 + 32 + 2 + 1;
/// Length of the authenticated header (PROTOCOL.md §4.4): the header without its TTL byte.
pub const AUTHENTICATED_HEADER_LEN: usize = HEADER_LEN - 1;
/// Length of a channel tag.
pub const CHANNEL_TAG_LEN: usize = 8;
/// Length of an XChaCha20-Poly1305 nonce.
pub const CHANNEL_NONCE_LEN: usize = 24;
/// Bytes of a channel body before the ciphertext: tag and nonce.
pub const CHANNEL_FIXED_LEN: usize = CHANNEL_TAG_LEN + CHANNEL_NONCE_LEN;
/// Length of the associated data of a CHANNEL frame (PROTOCOL.md §5.6): authenticated header and channel tag.
pub const CHANNEL_AD_LEN: usize = AUTHENTICATED_HEADER_LEN + CHANNEL_TAG_LEN;
/// Domain separation label of channel tags (PROTOCOL.md §5.6).
const CHANNEL_TAG_LABEL: &[u8] = b"meshnode/1 channel-tag";

/// The longest message any signature covers: a broadcast of [`MAX_BROADCAST_LEN`] bytes. An announce needs at most
/// 19 + 21 + 67 + 32 = 139 bytes.
const MAX_SIGNED_LEN: usize = BROADCAST_LABEL.len() + AUTHENTICATED_HEADER_LEN + MAX_BROADCAST_LEN;

/// The authenticated header of `header` (PROTOCOL.md §4.4): byte 0 and bytes 2..22 as emitted.
pub fn authenticated_header(header: &Header) -> [u8; AUTHENTICATED_HEADER_LEN] {
    let mut full = [0u8; HEADER_LEN];
    header.emit(&mut full);
    let mut out = [0u8; AUTHENTICATED_HEADER_LEN];
    let (first, rest) = out.split_at_mut(1);
    first.copy_from_slice(&full[..1]);
    rest.copy_from_slice(&full[2..]);
    out
}

/// The check shared by signed kinds: `header.src` is the node id of `signer` ([`WireError::IdMismatch`]), then the
/// Ed25519 signature over `msg` verifies ([`WireError::BadSignature`]). The id check comes first: it is cheap.
fn verify_signed(
    header: &Header,
    signer: &PublicIdentity,
    msg: &SignedMessage,
    signature: &[u8; 64],
) -> Result<(), WireError> {
    if header.src != signer.node_id() {
        return Err(WireError::IdMismatch);
    }
    if verify_signature(signer, msg.as_bytes(), signature) {
        Ok(())
    } else {
        Err(WireError::BadSignature)
    }
}

/// A signed message assembled on the stack (no allocation), at most [`MAX_SIGNED_LEN`] bytes.
struct SignedMessage {
    buf: [u8; MAX_SIGNED_LEN],
    len: usize,
}

impl SignedMessage {
    /// `label || authenticated header || parts...`, or [`WireError::TooLong`] if it cannot be what a valid frame
    /// signs.
    fn new(label: &[u8], header: &Header, parts: &[&[u8]]) -> Result<Self, WireError> {
        let mut msg = SignedMessage {
            buf: [0u8; MAX_SIGNED_LEN],
            len: 0,
        };
        msg.push(label)?;
        msg.push(&authenticated_header(header))?;
        for part in parts {
            msg.push(part)?;
        }
        Ok(msg)
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        let end = self
            .len
            .checked_add(bytes.len())
            .ok_or(WireError::TooLong)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(WireError::TooLong)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// The header of a frame a node originates to everyone, after checking the TTL.
fn broadcast_header(
    kind: Kind,
    identity: &Identity,
    frame_id: u32,
    ttl: u8,
) -> Result<Header, WireError> {
    if ttl > MAX_TTL {
        return Err(WireError::BadTtl(ttl));
    }
    Ok(Header {
        kind,
        ttl,
        frame_id,
        src: identity.node_id(),
        dst: NodeId::BROADCAST,
    })
}

/// Header and body written into one new frame buffer.
fn frame_bytes(header: &Header, body_len: usize, emit_body: impl FnOnce(&mut [u8])) -> Vec<u8> {
    let mut frame = alloc::vec![0u8; HEADER_LEN + body_len];
    let (head, body) = frame.split_at_mut(HEADER_LEN);
    header.emit(head);
    emit_body(body);
    frame
}

/// ANNOUNCE body (PROTOCOL.md §5.1): who a node is, signed by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Announce<'a> {
    /// The node's two public keys; the header's `src` must be their node id.
    pub public: PublicIdentity,
    /// Capability bits ([`CAP_RELAY`], [`CAP_SESSIONS`]); reserved bits are kept as received.
    pub capabilities: u16,
    /// Nickname, at most [`MAX_NICKNAME_LEN`] bytes of UTF-8.
    pub nickname: &'a str,
    /// Ed25519 signature over `"meshnode/1 announce" || authenticated header || body without signature`.
    pub signature: [u8; SIGNATURE_LEN],
}

impl<'a> Announce<'a> {
    /// Parses an announce body: fixed fields, nickname (≤ 32 bytes, valid UTF-8), signature, nothing after.
    /// Does not verify the signature: see [`Self::verify`].
    pub fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        let (ed25519, rest) = take::<32>(body)?;
        let (x25519, rest) = take::<32>(rest)?;
        let (caps, rest) = take::<2>(rest)?;
        let (&[nick_len], rest) = take::<1>(rest)?;
        let nick_len = usize::from(nick_len);
        if nick_len > MAX_NICKNAME_LEN {
            return Err(WireError::TooLong);
        }
        let (nick, rest) = rest
            .split_at_checked(nick_len)
            .ok_or(WireError::Truncated)?;
        let (signature, rest) = take::<SIGNATURE_LEN>(rest)?;
        if !rest.is_empty() {
            return Err(WireError::TrailingBytes);
        }
        let nickname = core::str::from_utf8(nick).map_err(|_| WireError::BadField)?;
        Ok(Announce {
            public: PublicIdentity {
                ed25519: *ed25519,
                x25519: *x25519,
            },
            capabilities: u16::from_be_bytes(*caps),
            nickname,
            signature: *signature,
        })
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        ANNOUNCE_FIXED_LEN + self.nickname.len() + SIGNATURE_LEN
    }

    /// Writes the body, signature included, into `buf[..self.buffer_len()]`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Self::buffer_len`]. A nickname over [`MAX_NICKNAME_LEN`] bytes gives a body
    /// receivers refuse ([`Self::sign_frame`] refuses to build one).
    pub fn emit(&self, buf: &mut [u8]) {
        let n = self.nickname.len();
        buf[..32].copy_from_slice(&self.public.ed25519);
        buf[32..64].copy_from_slice(&self.public.x25519);
        buf[64..66].copy_from_slice(&self.capabilities.to_be_bytes());
        buf[66] = u8::try_from(n).unwrap_or(u8::MAX);
        buf[ANNOUNCE_FIXED_LEN..ANNOUNCE_FIXED_LEN + n].copy_from_slice(self.nickname.as_bytes());
        buf[ANNOUNCE_FIXED_LEN + n..ANNOUNCE_FIXED_LEN + n + SIGNATURE_LEN]
            .copy_from_slice(&self.signature);
    }

    /// The message the signature covers, for the frame with `header`.
    fn signed_message(&self, header: &Header) -> Result<SignedMessage, WireError> {
        let nick_len = u8::try_from(self.nickname.len()).map_err(|_| WireError::TooLong)?;
        SignedMessage::new(
            ANNOUNCE_LABEL,
            header,
            &[
                &self.public.ed25519,
                &self.public.x25519,
                &self.capabilities.to_be_bytes(),
                &[nick_len],
                self.nickname.as_bytes(),
            ],
        )
    }

    /// Checks an announce received in a frame with `header`: the source is the node id of the announced keys
    /// ([`WireError::IdMismatch`]) and the signature verifies ([`WireError::BadSignature`]).
    pub fn verify(&self, header: &Header) -> Result<(), WireError> {
        let msg = self.signed_message(header)?;
        verify_signed(header, &self.public, &msg, &self.signature)
    }

    /// Builds a complete signed ANNOUNCE frame from `identity`: source its node id, destination broadcast.
    /// Fails with [`WireError::TooLong`] for a nickname over [`MAX_NICKNAME_LEN`] bytes and
    /// [`WireError::BadTtl`] for a TTL over [`MAX_TTL`].
    pub fn sign_frame(
        identity: &Identity,
        frame_id: u32,
        ttl: u8,
        capabilities: u16,
        nickname: &str,
    ) -> Result<Vec<u8>, WireError> {
        if nickname.len() > MAX_NICKNAME_LEN {
            return Err(WireError::TooLong);
        }
        let header = broadcast_header(Kind::Announce, identity, frame_id, ttl)?;
        let mut announce = Announce {
            public: *identity.public(),
            capabilities,
            nickname,
            signature: [0u8; SIGNATURE_LEN],
        };
        announce.signature = identity.sign(announce.signed_message(&header)?.as_bytes());
        Ok(frame_bytes(&header, announce.buffer_len(), |b| {
            announce.emit(b)
        }))
    }
}

/// Bytes of a PEER_SYNC body before the embedded announce body: hops, age, frame id, peer.
pub const PEER_SYNC_FIXED_LEN: usize = 1 + 2 + 4 + 8;

/// PEER_SYNC body (PROTOCOL.md §5.7): a known peer's last verified ANNOUNCE, handed on one link to a new neighbour
/// so that it learns the mesh without waiting for the next round of announces. The embedded announce keeps its
/// originator's frame id and signature; the sync itself is not authenticated (like a TTL, hops and age are a
/// neighbour's claim).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerSync<'a> {
    /// The sender's hop count to the peer, 1..=[`MAX_TTL`].
    pub hops: u8,
    /// Seconds since the sender last heard the peer (saturating).
    pub age_s: u16,
    /// Frame id of the embedded announce.
    pub frame_id: u32,
    /// The peer: `src` of the embedded announce.
    pub peer: NodeId,
    /// The announce body, signature included.
    pub announce: Announce<'a>,
}

impl<'a> PeerSync<'a> {
    /// Parses a PEER_SYNC body: hops in 1..=15, then a whole announce body. Does not verify the signature: see
    /// [`Self::verify`].
    pub fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        let (&[hops], rest) = take::<1>(body)?;
        let (age, rest) = take::<2>(rest)?;
        let (frame_id, rest) = take::<4>(rest)?;
        let (peer, rest) = take::<8>(rest)?;
        if hops == 0 || hops > MAX_TTL {
            return Err(WireError::BadField);
        }
        let peer = NodeId(*peer);
        if peer.is_broadcast() {
            return Err(WireError::BroadcastSource);
        }
        Ok(PeerSync {
            hops,
            age_s: u16::from_be_bytes(*age),
            frame_id: u32::from_be_bytes(*frame_id),
            peer,
            announce: Announce::parse(rest)?,
        })
    }

    /// The header the embedded announce was signed with: ANNOUNCE from `peer` to everyone with `frame_id` (the
    /// TTL, which no signature covers, is 0 here).
    pub fn announce_header(&self) -> Header {
        Header {
            kind: Kind::Announce,
            ttl: 0,
            frame_id: self.frame_id,
            src: self.peer,
            dst: NodeId::BROADCAST,
        }
    }

    /// Checks the embedded announce as if it had arrived on its own ([`Announce::verify`]).
    pub fn verify(&self) -> Result<(), WireError> {
        self.announce.verify(&self.announce_header())
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        PEER_SYNC_FIXED_LEN + self.announce.buffer_len()
    }

    /// Writes the body into `buf[..self.buffer_len()]`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0] = self.hops;
        buf[1..3].copy_from_slice(&self.age_s.to_be_bytes());
        buf[3..7].copy_from_slice(&self.frame_id.to_be_bytes());
        buf[7..15].copy_from_slice(&self.peer.0);
        self.announce
            .emit(&mut buf[PEER_SYNC_FIXED_LEN..self.buffer_len()]);
    }
}

/// BROADCAST body (PROTOCOL.md §5.2): a public message signed by its originator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Broadcast<'a> {
    /// The message, 1..=[`MAX_BROADCAST_LEN`] bytes (chat sends UTF-8; the protocol does not check it).
    pub message: &'a [u8],
    /// Ed25519 signature over `"meshnode/1 broadcast" || authenticated header || message`.
    pub signature: [u8; SIGNATURE_LEN],
}

impl<'a> Broadcast<'a> {
    /// Parses a broadcast body: the message is everything before the last [`SIGNATURE_LEN`] bytes. Does not
    /// verify the signature: see [`Self::verify`].
    pub fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        let (message, signature) = body
            .split_last_chunk::<SIGNATURE_LEN>()
            .ok_or(WireError::Truncated)?;
        if message.is_empty() {
            return Err(WireError::Truncated);
        }
        if message.len() > MAX_BROADCAST_LEN {
            return Err(WireError::TooLong);
        }
        Ok(Broadcast {
            message,
            signature: *signature,
        })
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        self.message.len() + SIGNATURE_LEN
    }

    /// Writes the body into `buf[..self.buffer_len()]`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        let n = self.message.len();
        buf[..n].copy_from_slice(self.message);
        buf[n..n + SIGNATURE_LEN].copy_from_slice(&self.signature);
    }

    /// Checks a broadcast received in a frame with `header` against the keys of its claimed sender (from that
    /// node's announce): `header.src` must be their node id ([`WireError::IdMismatch`]) and the signature must
    /// verify ([`WireError::BadSignature`]).
    pub fn verify(&self, header: &Header, sender: &PublicIdentity) -> Result<(), WireError> {
        let msg = SignedMessage::new(BROADCAST_LABEL, header, &[self.message])?;
        verify_signed(header, sender, &msg, &self.signature)
    }

    /// Builds a complete signed BROADCAST frame from `identity`: source its node id, destination broadcast.
    /// Fails with [`WireError::BadField`] for an empty message, [`WireError::TooLong`] for one over
    /// [`MAX_BROADCAST_LEN`] bytes and [`WireError::BadTtl`] for a TTL over [`MAX_TTL`].
    pub fn sign_frame(
        identity: &Identity,
        frame_id: u32,
        ttl: u8,
        message: &[u8],
    ) -> Result<Vec<u8>, WireError> {
        if message.is_empty() {
            return Err(WireError::BadField);
        }
        if message.len() > MAX_BROADCAST_LEN {
            return Err(WireError::TooLong);
        }
        let header = broadcast_header(Kind::Broadcast, identity, frame_id, ttl)?;
        let msg = SignedMessage::new(BROADCAST_LABEL, &header, &[message])?;
        let broadcast = Broadcast {
            message,
            signature: identity.sign(msg.as_bytes()),
        };
        Ok(frame_bytes(&header, broadcast.buffer_len(), |b| {
            broadcast.emit(b)
        }))
    }
}

/// The tag that names a password channel on air (PROTOCOL.md §5.6):
/// `SHA-256("meshnode/1 channel-tag" || name)[0..8]`.
pub fn channel_tag(name: &str) -> [u8; CHANNEL_TAG_LEN] {
    let mut h = Sha256::new();
    h.update(CHANNEL_TAG_LABEL);
    h.update(name.as_bytes());
    let digest: [u8; 32] = h.finalize().into();
    let mut tag = [0u8; CHANNEL_TAG_LEN];
    tag.copy_from_slice(&digest[..CHANNEL_TAG_LEN]);
    tag
}

/// CHANNEL body (PROTOCOL.md §5.6), before decryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel<'a> {
    /// Which channel: [`channel_tag`] of its name.
    pub channel_tag: [u8; CHANNEL_TAG_LEN],
    /// XChaCha20-Poly1305 nonce, random per frame.
    pub nonce: [u8; CHANNEL_NONCE_LEN],
    /// Ciphertext followed by the 16-byte tag.
    pub ciphertext_and_tag: &'a [u8],
}

impl<'a> Channel<'a> {
    /// Parses a channel body. The ciphertext may be empty; the tag may not.
    pub fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        let (channel_tag, rest) = take::<CHANNEL_TAG_LEN>(body)?;
        let (nonce, ciphertext_and_tag) = take::<CHANNEL_NONCE_LEN>(rest)?;
        if ciphertext_and_tag.len() < TAG_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Channel {
            channel_tag: *channel_tag,
            nonce: *nonce,
            ciphertext_and_tag,
        })
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        CHANNEL_FIXED_LEN + self.ciphertext_and_tag.len()
    }

    /// Writes the body into `buf[..self.buffer_len()]`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        buf[..CHANNEL_TAG_LEN].copy_from_slice(&self.channel_tag);
        buf[CHANNEL_TAG_LEN..CHANNEL_FIXED_LEN].copy_from_slice(&self.nonce);
        buf[CHANNEL_FIXED_LEN..self.buffer_len()].copy_from_slice(self.ciphertext_and_tag);
    }
}

/// The associated data of a CHANNEL frame (PROTOCOL.md §5.6): byte 0 and bytes 2..30 of the frame, i.e. the
/// authenticated header followed by the channel tag. `frame` needs only those first 30 bytes.
pub fn channel_associated_data(frame: &[u8]) -> Result<[u8; CHANNEL_AD_LEN], WireError> {
    let mut ad = [0u8; CHANNEL_AD_LEN];
    super::header::authenticated_prefix(frame, HEADER_LEN + CHANNEL_TAG_LEN, &mut ad)?;
    Ok(ad)
}

/// Bytes of one key in a LINK_ACK body: `src` (8) and `frame_id` (4, big-endian) of an acknowledged frame.
pub const LINK_ACK_KEY_LEN: usize = 12;
/// The most keys one LINK_ACK carries (PROTOCOL.md §5.8).
pub const MAX_LINK_ACK_KEYS: usize = 32;

/// LINK_ACK body (PROTOCOL.md §5.8): the `(src, frame_id)` keys of frames received on the link the ack travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkAck<'a> {
    /// 1..=[`MAX_LINK_ACK_KEYS`] keys of [`LINK_ACK_KEY_LEN`] bytes each, as received.
    keys: &'a [u8],
}

impl<'a> LinkAck<'a> {
    /// Parses a LINK_ACK body: a whole number of keys, at least one and at most [`MAX_LINK_ACK_KEYS`].
    pub fn parse(body: &'a [u8]) -> Result<Self, WireError> {
        if body.is_empty() || body.len() % LINK_ACK_KEY_LEN != 0 {
            return Err(WireError::Truncated);
        }
        if body.len() / LINK_ACK_KEY_LEN > MAX_LINK_ACK_KEYS {
            return Err(WireError::TooLong);
        }
        Ok(LinkAck { keys: body })
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.keys.len() / LINK_ACK_KEY_LEN
    }

    /// Never true for a parsed body.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys, in order: `(src, frame_id)`.
    pub fn keys(&self) -> impl Iterator<Item = (NodeId, u32)> + 'a {
        self.keys.chunks_exact(LINK_ACK_KEY_LEN).filter_map(|k| {
            let (src, id) = k.split_first_chunk::<8>()?;
            let id: [u8; 4] = id.try_into().ok()?;
            Some((NodeId(*src), u32::from_be_bytes(id)))
        })
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        self.keys.len()
    }

    /// Writes the body into `buf[..self.buffer_len()]`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        buf[..self.keys.len()].copy_from_slice(self.keys);
    }

    /// Builds a complete LINK_ACK frame: TTL 0, source `src`, destination broadcast, acknowledging `keys`
    /// (1..=[`MAX_LINK_ACK_KEYS`], else [`WireError::BadField`] / [`WireError::TooLong`]).
    pub fn frame(src: NodeId, frame_id: u32, keys: &[(NodeId, u32)]) -> Result<Vec<u8>, WireError> {
        if keys.is_empty() {
            return Err(WireError::BadField);
        }
        if keys.len() > MAX_LINK_ACK_KEYS {
            return Err(WireError::TooLong);
        }
        if src.is_broadcast() {
            return Err(WireError::BroadcastSource);
        }
        let header = Header {
            kind: Kind::LinkAck,
            ttl: 0,
            frame_id,
            src,
            dst: NodeId::BROADCAST,
        };
        Ok(frame_bytes(&header, keys.len() * LINK_ACK_KEY_LEN, |b| {
            for (chunk, (id, fid)) in b.chunks_exact_mut(LINK_ACK_KEY_LEN).zip(keys) {
                chunk[..8].copy_from_slice(&id.0);
                chunk[8..].copy_from_slice(&fid.to_be_bytes());
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_round_trip_and_limits() {
        let noise = [7u8; 32];
        let hs = Handshake {
            session_id: 9,
            noise: &noise,
        };
        let mut buf = [0xa5u8; 33];
        hs.emit(&mut buf);
        assert_eq!(buf[0], 9);
        assert_eq!(Handshake::parse(&buf).unwrap(), hs);
        assert_eq!(Handshake::parse(&[]), Err(WireError::Truncated));
        assert_eq!(Handshake::parse(&[1]), Err(WireError::Truncated));
        let long = [0u8; Handshake::MAX_NOISE_LEN + 2];
        assert_eq!(Handshake::parse(&long), Err(WireError::TooLong));
    }

    #[test]
    fn sealed_fields_and_reserved_nonce() {
        let mut body = [0u8; SEALED_FIXED_LEN + TAG_LEN + 3];
        Sealed::emit_fixed(4, 130, true, 0x0102_0304_0506_0708, &mut body);
        assert_eq!(&body[..10], &[4, 0x82, 1, 2, 3, 4, 5, 6, 7, 8]);
        let s = Sealed::parse(&body).unwrap();
        assert_eq!(
            (s.session_id, s.epoch, s.padded, s.nonce),
            (4, 2, true, 0x0102_0304_0506_0708)
        );
        assert_eq!(s.ciphertext_and_tag.len(), TAG_LEN + 3);
        assert_eq!(s.epoch_flags(), 0x82);
        Sealed::emit_fixed(4, 0, false, u64::MAX, &mut body);
        assert_eq!(Sealed::parse(&body), Err(WireError::BadField));
        assert_eq!(
            Sealed::parse(&body[..SEALED_FIXED_LEN + TAG_LEN - 1]),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn unknown_session_is_exactly_two_bytes() {
        assert_eq!(
            UnknownSession::parse(&[3, 5]),
            Ok(UnknownSession {
                session_id: 3,
                epoch_flags: 5
            })
        );
        assert_eq!(UnknownSession::parse(&[3]), Err(WireError::Truncated));
        assert_eq!(
            UnknownSession::parse(&[3, 5, 0]),
            Err(WireError::TrailingBytes)
        );
    }

    fn announce_body(nick_len: u8, nick: &[u8]) -> alloc::vec::Vec<u8> {
        let mut body = alloc::vec![0u8; ANNOUNCE_FIXED_LEN];
        body[66] = nick_len;
        body.extend_from_slice(nick);
        body.extend_from_slice(&[0u8; SIGNATURE_LEN]);
        body
    }

    #[test]
    fn announce_nickname_limits() {
        let ok = announce_body(32, &[b'a'; 32]);
        let a = Announce::parse(&ok).unwrap();
        assert_eq!(a.nickname.len(), 32);
        assert_eq!(a.buffer_len(), ok.len());
        let mut buf = alloc::vec![0xa5u8; ok.len()];
        a.emit(&mut buf);
        assert_eq!(buf, ok);
        assert_eq!(
            Announce::parse(&announce_body(0, &[])).unwrap().nickname,
            ""
        );
        assert_eq!(
            Announce::parse(&announce_body(33, &[b'a'; 33])),
            Err(WireError::TooLong)
        );
        assert_eq!(
            Announce::parse(&announce_body(2, &[0xc3, 0x28])),
            Err(WireError::BadField)
        );
        assert_eq!(
            Announce::parse(&ok[..ok.len() - 1]),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn broadcast_message_limits() {
        let mut body = alloc::vec![b'x'; MAX_BROADCAST_LEN + SIGNATURE_LEN];
        assert_eq!(
            Broadcast::parse(&body).unwrap().message.len(),
            MAX_BROADCAST_LEN
        );
        body.push(b'x');
        assert_eq!(Broadcast::parse(&body), Err(WireError::TooLong));
        assert_eq!(
            Broadcast::parse(&body[..SIGNATURE_LEN + 1])
                .unwrap()
                .message,
            b"x"
        );
        assert_eq!(
            Broadcast::parse(&body[..SIGNATURE_LEN]),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn channel_body_and_tag() {
        let body = [7u8; CHANNEL_FIXED_LEN + TAG_LEN];
        let c = Channel::parse(&body).unwrap();
        assert_eq!(c.ciphertext_and_tag.len(), TAG_LEN);
        let mut buf = [0xa5u8; CHANNEL_FIXED_LEN + TAG_LEN];
        c.emit(&mut buf);
        assert_eq!(buf, body);
        assert_eq!(
            Channel::parse(&body[..body.len() - 1]),
            Err(WireError::Truncated)
        );
        assert_ne!(channel_tag("general"), channel_tag("General"));
    }

    #[test]
    fn link_ack_keys_and_limits() {
        let keys = [(NodeId([1; 8]), 0x0102_0304), (NodeId([2; 8]), 5)];
        let frame = LinkAck::frame(NodeId([9; 8]), 77, &keys).unwrap();
        assert_eq!(frame.len(), HEADER_LEN + 24);
        assert_eq!(frame[0], 0x2c);
        assert_eq!(frame[1], 0);
        let ack = LinkAck::parse(&frame[HEADER_LEN..]).unwrap();
        assert_eq!(ack.len(), 2);
        assert_eq!(ack.keys().collect::<Vec<_>>(), keys);
        let mut buf = [0xa5u8; 24];
        ack.emit(&mut buf);
        assert_eq!(&buf[..], &frame[HEADER_LEN..]);
        assert_eq!(LinkAck::parse(&[]), Err(WireError::Truncated));
        assert_eq!(LinkAck::parse(&[0; 13]), Err(WireError::Truncated));
        assert_eq!(LinkAck::parse(&[0; 11]), Err(WireError::Truncated));
        let max = [0u8; MAX_LINK_ACK_KEYS * LINK_ACK_KEY_LEN];
        assert_eq!(LinkAck::parse(&max).unwrap().len(), MAX_LINK_ACK_KEYS);
        let over = [0u8; (MAX_LINK_ACK_KEYS + 1) * LINK_ACK_KEY_LEN];
        assert_eq!(LinkAck::parse(&over), Err(WireError::TooLong));
        assert_eq!(
            LinkAck::frame(NodeId([9; 8]), 1, &[]),
            Err(WireError::BadField)
        );
        let many = [(NodeId([1; 8]), 1); MAX_LINK_ACK_KEYS + 1];
        assert_eq!(
            LinkAck::frame(NodeId([9; 8]), 1, &many),
            Err(WireError::TooLong)
        );
        assert_eq!(
            LinkAck::frame(NodeId::BROADCAST, 1, &keys),
            Err(WireError::BroadcastSource)
        );
    }

    #[test]
    fn associated_data_is_first_32_bytes_without_ttl() {
        let mut frame = [0u8; 60];
        for (i, b) in frame.iter_mut().enumerate() {
            *b = i as u8;
        }
        let ad = sealed_associated_data(&frame).unwrap();
        assert_eq!(ad[0], 0);
        assert_eq!(&ad[1..], &frame[2..32]);
        assert!(sealed_associated_data(&frame[..31]).is_err());
    }
}
