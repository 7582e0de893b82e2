//! Transport of an established session (PROTOCOL.md §5.4, §6.3–§6.6): per-direction keys with epochs and REKEY,
//! explicit nonces, ChaCha20-Poly1305 with the frame's associated data, padding, and the replay window.
//!
//! Invariant: sealing writes the frame once into one buffer and encrypts in place (one allocation per message,
//! no other copy of the payload); opening changes no state (replay window, epoch, previous key, counters)
//! unless the AEAD succeeded. The send nonce never reaches the reserved value 2^64 - 1. Keys are zeroized on
//! drop and `Debug` prints `<redacted>`.

use alloc::vec::Vec;
use core::fmt;

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce, Tag};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::replay::{ReplayError, ReplayWindow};
use crate::time::{Duration, Instant};
use crate::wire::body::{EPOCH_MODULUS, RESERVED_NONCE, SEALED_FIXED_LEN, TAG_LEN};
use crate::wire::{sealed_associated_data, Header, Sealed, HEADER_LEN};

/// How many epochs ahead a receiver derives keys for (PROTOCOL.md §6.5).
pub const MAX_EPOCH_SKIP: u8 = 8;
/// Bytes a sealed frame adds to its (padded) plaintext: header, fixed fields, tag.
pub const SEALED_OVERHEAD: usize = HEADER_LEN + SEALED_FIXED_LEN + TAG_LEN;

/// A 32-byte ChaCha20-Poly1305 key. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct Key(pub [u8; 32]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// The Noise 96-bit nonce for a counter: 4 zero bytes then the little-endian counter (PROTOCOL.md §6.4).
pub fn aead_nonce(n: u64) -> Nonce {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&n.to_le_bytes());
    Nonce::from(nonce)
}

/// Noise `REKEY(k)` = `ENCRYPT(k, 2^64 - 1, empty, 32 zero bytes)[0..32]` (PROTOCOL.md §6.5).
pub fn rekey(key: &Key) -> Key {
    let cipher = ChaCha20Poly1305::new(&key.0.into());
    let mut block = [0u8; 32];
    // Encrypting 32 bytes cannot exceed the AEAD's length limit; on the impossible error the all-zero block
    // would still be a deterministic, peer-agreed key, so no panic path is needed.
    let _ = cipher.encrypt_in_place_detached(&aead_nonce(RESERVED_NONCE), &[], &mut block);
    let next = Key(block);
    block.zeroize();
    next
}

/// Why a sealed frame was not opened. Every variant leaves the session unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// The epoch is neither current, up to 8 ahead, nor the previous one in its grace.
    StaleEpoch,
    /// The nonce is more than 1024 below the highest accepted.
    TooOld,
    /// The nonce was already accepted.
    Replay,
    /// The AEAD tag did not verify.
    Decrypt,
    /// PADDED is set but the plaintext lacks the 0x80 marker.
    BadPadding,
}

impl From<ReplayError> for OpenError {
    fn from(e: ReplayError) -> Self {
        match e {
            ReplayError::TooOld => OpenError::TooOld,
            ReplayError::Replay => OpenError::Replay,
        }
    }
}

/// The send half of a session.
pub struct Sender {
    cipher: ChaCha20Poly1305,
    key: Key,
    epoch: u32,
    nonce: u64,
    epoch_started: Instant,
    in_epoch: u64,
    /// Every nonce below this may be in use (a durable reservation when sessions are persisted).
    reserved: u64,
    /// Nonces reserved at a time; 0 when nothing is persisted.
    block: u64,
}

/// The send half's state at rest (PROTOCOL.md §6.11).
#[derive(Clone, PartialEq, Eq)]
pub struct SenderState {
    /// Key of the current epoch.
    pub key: Key,
    /// Absolute epoch.
    pub epoch: u32,
    /// When the epoch began.
    pub epoch_started: Instant,
    /// Frames sealed in it.
    pub in_epoch: u64,
    /// Nonces below this may have been used: a restored sender starts here.
    pub reserved: u64,
}

/// The receive half's state at rest (PROTOCOL.md §6.11).
#[derive(Clone, PartialEq, Eq)]
pub struct ReceiverState {
    /// Key of the current epoch.
    pub key: Key,
    /// Absolute epoch.
    pub epoch: u32,
    /// The highest nonce accepted: a restored receiver refuses it and everything below.
    pub highest: Option<u64>,
}

/// The receive half of a session.
pub struct Receiver {
    cipher: ChaCha20Poly1305,
    key: Key,
    epoch: u32,
    previous: Option<(ChaCha20Poly1305, Instant)>,
    window: ReplayWindow,
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("key", &"<redacted>")
            .field("epoch", &self.epoch)
            .field("nonce", &self.nonce)
            .finish()
    }
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("key", &"<redacted>")
            .field("epoch", &self.epoch)
            .field("highest_nonce", &self.window.highest())
            .finish()
    }
}

/// The padded length of a `len`-byte message (PROTOCOL.md §6.6): the smallest bucket holding `len + 1`, or a
/// multiple of the largest. `None` when padding is off (no buckets).
pub fn padded_len(len: usize, buckets: &[usize]) -> Option<usize> {
    let need = len.checked_add(1)?;
    if let Some(b) = buckets.iter().copied().filter(|&b| b >= need).min() {
        return Some(b);
    }
    let largest = buckets.iter().copied().max().filter(|&b| b > 0)?;
    need.div_ceil(largest).checked_mul(largest)
}

/// Strips ISO/IEC 7816-4 padding: trailing zeros, then one 0x80. Returns the message length.
pub fn unpadded_len(plaintext: &[u8]) -> Option<usize> {
    let end = plaintext.iter().rposition(|&b| b != 0)?;
    (plaintext.get(end) == Some(&0x80)).then_some(end)
}

impl Sender {
    /// The send half for a Split() key at epoch 0.
    pub fn new(key: Key, now: Instant) -> Self {
        Sender {
            cipher: ChaCha20Poly1305::new(&key.0.into()),
            key,
            epoch: 0,
            nonce: 0,
            epoch_started: now,
            in_epoch: 0,
            reserved: 0,
            block: 0,
        }
    }

    /// Reserves nonces `block` at a time from now on (0: no reservations, nothing is persisted).
    pub fn set_reservation_block(&mut self, block: u64) {
        self.block = block;
    }

    /// Nonces below this may be in use.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    /// The state to store; with the reservation that covers every nonce sealed so far.
    pub fn state(&self) -> SenderState {
        SenderState {
            key: self.key.clone(),
            epoch: self.epoch,
            epoch_started: self.epoch_started,
            in_epoch: self.in_epoch,
            reserved: self.reserved.max(self.nonce),
        }
    }

    /// A sender resumed from `state`: its next nonce is the first one past the stored reservation, so no nonce
    /// sealed before the state was stored, or after it and before a crash, is ever sealed again.
    pub fn restore(state: &SenderState, block: u64) -> Self {
        Sender {
            cipher: ChaCha20Poly1305::new(&state.key.0.into()),
            key: state.key.clone(),
            epoch: state.epoch,
            nonce: state.reserved,
            epoch_started: state.epoch_started,
            in_epoch: state.in_epoch,
            reserved: state.reserved,
            block,
        }
    }

    /// Absolute epoch of the send direction.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// When the current send epoch began, and frames sealed in it.
    pub fn epoch_clock(&self) -> (Instant, u64) {
        (self.epoch_started, self.in_epoch)
    }

    /// Sets the next nonce (vectors and tests; a session never moves it backwards).
    pub fn set_nonce(&mut self, nonce: u64) {
        self.nonce = self.nonce.max(nonce);
    }

    /// Moves to the next epoch (PROTOCOL.md §6.5). The nonce counter continues.
    pub fn rekey(&mut self, now: Instant) {
        self.key = rekey(&self.key);
        self.cipher = ChaCha20Poly1305::new(&self.key.0.into());
        self.epoch = self.epoch.wrapping_add(1);
        self.epoch_started = now;
        self.in_epoch = 0;
    }

    /// Seals `plaintext` into a complete frame: `header` (its kind decides TRANSPORT/ACK/CLOSE), the fixed fields,
    /// the padded plaintext encrypted in place, the tag. One allocation. `None` when the nonces are exhausted or
    /// the frame would exceed the maximum frame size.
    pub fn seal(
        &mut self,
        header: &Header,
        session_id: u8,
        plaintext: &[u8],
        buckets: &[usize],
    ) -> Option<Vec<u8>> {
        if self.nonce == RESERVED_NONCE {
            return None;
        }
        if self.block > 0 && self.nonce >= self.reserved {
            // A new block: whoever persists this session stores it before the frame goes on air.
            self.reserved = self.nonce.saturating_add(self.block);
        }
        let body_len = padded_len(plaintext.len(), buckets).unwrap_or(plaintext.len());
        let padded = body_len != plaintext.len();
        let total = SEALED_OVERHEAD.checked_add(body_len)?;
        if total > crate::wire::MAX_FRAME_LEN {
            return None;
        }
        let start = HEADER_LEN + SEALED_FIXED_LEN;
        let mut frame = Vec::with_capacity(total);
        frame.resize(start, 0);
        header.emit(&mut frame);
        Sealed::emit_fixed(
            session_id,
            (self.epoch % u32::from(EPOCH_MODULUS)) as u8,
            padded,
            self.nonce,
            frame.get_mut(HEADER_LEN..)?,
        );
        frame.extend_from_slice(plaintext);
        if padded {
            frame.push(0x80);
            frame.resize(start + body_len, 0);
        }
        let ad = sealed_associated_data(&frame).ok()?;
        let tag = self
            .cipher
            .encrypt_in_place_detached(&aead_nonce(self.nonce), &ad, frame.get_mut(start..)?)
            .ok()?;
        frame.extend_from_slice(&tag);
        self.nonce += 1;
        self.in_epoch += 1;
        Some(frame)
    }
}

impl Receiver {
    /// The receive half for a Split() key at epoch 0.
    pub fn new(key: Key) -> Self {
        Receiver {
            cipher: ChaCha20Poly1305::new(&key.0.into()),
            key,
            epoch: 0,
            previous: None,
            window: ReplayWindow::new(),
        }
    }

    /// Absolute epoch of the receive direction.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The highest nonce accepted.
    pub fn highest(&self) -> Option<u64> {
        self.window.highest()
    }

    /// The state to store.
    pub fn state(&self) -> ReceiverState {
        ReceiverState {
            key: self.key.clone(),
            epoch: self.epoch,
            highest: self.window.highest(),
        }
    }

    /// A receiver resumed from `state`: nonces up to the stored highest are refused (they may have been accepted
    /// before the state was stored or after it); the previous epoch's key is not kept.
    pub fn restore(state: &ReceiverState) -> Self {
        Receiver {
            cipher: ChaCha20Poly1305::new(&state.key.0.into()),
            key: state.key.clone(),
            epoch: state.epoch,
            previous: None,
            window: ReplayWindow::restored(state.highest),
        }
    }

    /// Opens the sealed frame `frame` (already header-checked, kind sealed). Returns the plaintext, unpadded.
    /// On any error nothing in `self` has changed.
    pub fn open(
        &mut self,
        frame: &[u8],
        sealed: &Sealed<'_>,
        epoch_grace: Duration,
        now: Instant,
    ) -> Result<Vec<u8>, OpenError> {
        self.window.will_accept(sealed.nonce)?;
        let ad = sealed_associated_data(frame).map_err(|_| OpenError::Decrypt)?;
        let split = sealed
            .ciphertext_and_tag
            .len()
            .checked_sub(TAG_LEN)
            .ok_or(OpenError::Decrypt)?;
        let (ct, tag) = sealed.ciphertext_and_tag.split_at(split);
        let tag = Tag::from_slice(tag);
        let nonce = aead_nonce(sealed.nonce);
        let mut buf = Vec::from(ct);
        let current = (self.epoch % u32::from(EPOCH_MODULUS)) as u8;
        let d = sealed.epoch.wrapping_sub(current) % EPOCH_MODULUS;
        // Which key opened it; the state change is decided after the plaintext checks.
        let mut advance: Option<(Key, Key)> = None;
        match d {
            0 => self
                .cipher
                .decrypt_in_place_detached(&nonce, &ad, &mut buf, tag)
                .map_err(|_| OpenError::Decrypt)?,
            1..=MAX_EPOCH_SKIP => {
                let mut before = self.key.clone();
                let mut ahead = rekey(&before);
                for _ in 1..d {
                    before = ahead;
                    ahead = rekey(&before);
                }
                ChaCha20Poly1305::new(&ahead.0.into())
                    .decrypt_in_place_detached(&nonce, &ad, &mut buf, tag)
                    .map_err(|_| OpenError::Decrypt)?;
                advance = Some((before, ahead));
            }
            127 => match &self.previous {
                Some((cipher, until)) if now < *until => cipher
                    .decrypt_in_place_detached(&nonce, &ad, &mut buf, tag)
                    .map_err(|_| OpenError::Decrypt)?,
                _ => return Err(OpenError::StaleEpoch),
            },
            _ => return Err(OpenError::StaleEpoch),
        }
        if sealed.padded {
            let Some(len) = unpadded_len(&buf) else {
                buf.zeroize();
                return Err(OpenError::BadPadding);
            };
            buf.truncate(len);
        }
        // Authenticated: now, and only now, change state.
        self.window.mark(sealed.nonce);
        if let Some((before, ahead)) = advance {
            self.previous = Some((ChaCha20Poly1305::new(&before.0.into()), now + epoch_grace));
            self.cipher = ChaCha20Poly1305::new(&ahead.0.into());
            self.key = ahead;
            self.epoch = self.epoch.wrapping_add(u32::from(d));
        }
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::NodeId;
    use crate::wire::{FrameView, Kind};

    fn header(kind: Kind) -> Header {
        Header {
            kind,
            ttl: 7,
            frame_id: 1,
            src: NodeId([1; 8]),
            dst: NodeId([2; 8]),
        }
    }

    fn open(r: &mut Receiver, frame: &[u8], now: Instant) -> Result<Vec<u8>, OpenError> {
        let view = FrameView::new_checked(frame).unwrap();
        let sealed = Sealed::parse(view.body()).unwrap();
        r.open(frame, &sealed, Duration::from_secs(30), now)
    }

    #[test]
    fn padding_buckets_and_strict_unpadding() {
        let b = [32, 64, 128, 256, 512, 1024];
        assert_eq!(padded_len(0, &b), Some(32));
        assert_eq!(padded_len(31, &b), Some(32));
        assert_eq!(padded_len(32, &b), Some(64));
        assert_eq!(padded_len(1023, &b), Some(1024));
        assert_eq!(padded_len(1024, &b), Some(2048));
        assert_eq!(padded_len(5, &[]), None);
        assert_eq!(unpadded_len(&[1, 2, 0x80, 0, 0]), Some(2));
        assert_eq!(unpadded_len(&[0x80]), Some(0));
        assert_eq!(unpadded_len(&[1, 2, 0, 0]), None);
        assert_eq!(unpadded_len(&[0, 0]), None);
        assert_eq!(unpadded_len(&[]), None);
    }

    #[test]
    fn seal_open_round_trip_padded_and_not() {
        for buckets in [&[][..], &[32, 64][..]] {
            let mut s = Sender::new(Key([7; 32]), Instant::ZERO);
            let mut r = Receiver::new(Key([7; 32]));
            for len in [0usize, 1, 31, 32, 100] {
                let msg: Vec<u8> = (0..len as u8).collect();
                let f = s.seal(&header(Kind::Transport), 3, &msg, buckets).unwrap();
                assert_eq!(open(&mut r, &f, Instant::ZERO).unwrap(), msg);
            }
        }
    }

    #[test]
    fn rekeyed_sender_is_followed_and_previous_epoch_has_grace() {
        let mut s = Sender::new(Key([9; 32]), Instant::ZERO);
        let mut r = Receiver::new(Key([9; 32]));
        let old = s.seal(&header(Kind::Transport), 1, b"old", &[]).unwrap();
        for _ in 0..3 {
            s.rekey(Instant::ZERO);
        }
        let new = s.seal(&header(Kind::Transport), 1, b"new", &[]).unwrap();
        assert_eq!(open(&mut r, &new, Instant::from_secs(1)).unwrap(), b"new");
        assert_eq!(r.epoch(), 3);
        // The frame of epoch 0 is 3 behind: stale, even in grace (only epoch 2 is kept).
        assert_eq!(
            open(&mut r, &old, Instant::from_secs(1)),
            Err(OpenError::StaleEpoch)
        );
        let mut s2 = Sender::new(Key([9; 32]), Instant::ZERO);
        s2.rekey(Instant::ZERO);
        s2.rekey(Instant::ZERO);
        s2.nonce = 10;
        let late = s2.seal(&header(Kind::Transport), 1, b"late", &[]).unwrap();
        assert_eq!(
            open(&mut r, &late, Instant::from_secs(31)),
            Err(OpenError::StaleEpoch)
        );
        assert_eq!(open(&mut r, &late, Instant::from_secs(5)).unwrap(), b"late");
    }

    #[test]
    fn nine_epochs_ahead_is_stale_and_failure_changes_nothing() {
        let mut s = Sender::new(Key([9; 32]), Instant::ZERO);
        let mut r = Receiver::new(Key([9; 32]));
        for _ in 0..9 {
            s.rekey(Instant::ZERO);
        }
        let f = s.seal(&header(Kind::Transport), 1, b"x", &[]).unwrap();
        assert_eq!(open(&mut r, &f, Instant::ZERO), Err(OpenError::StaleEpoch));
        let mut wrong = Sender::new(Key([8; 32]), Instant::ZERO);
        wrong.rekey(Instant::ZERO);
        let f = wrong.seal(&header(Kind::Transport), 1, b"x", &[]).unwrap();
        assert_eq!(open(&mut r, &f, Instant::ZERO), Err(OpenError::Decrypt));
        assert_eq!((r.epoch(), r.window.highest()), (0, None));
    }

    #[test]
    fn nonce_never_reaches_reserved_value() {
        let mut s = Sender::new(Key([1; 32]), Instant::ZERO);
        s.nonce = RESERVED_NONCE - 1;
        assert!(s.seal(&header(Kind::Ack), 1, b"", &[]).is_some());
        assert!(s.seal(&header(Kind::Ack), 1, b"", &[]).is_none());
    }

    #[test]
    fn debug_is_redacted() {
        let s = Sender::new(Key([0xab; 32]), Instant::ZERO);
        let shown = alloc::format!(
            "{s:?} {:?} {:?}",
            Receiver::new(Key([0xab; 32])),
            Key([0xab; 32])
        );
        assert!(
            shown.contains("<redacted>") && !shown.contains("ab, ab") && !shown.contains("171")
        );
    }
}
