//! Bodies of each frame kind (PROTOCOL.md §5): one type per kind with `parse` from the body bytes and
//! `buffer_len` / `emit` back, borrowing variable-length parts from the frame instead of copying them.
//!
//! Invariant: `parse` accepts exactly the byte strings PROTOCOL.md allows and returns a [`WireError`] naming the
//! reason for anything else; it never panics and never allocates.

use super::header::{WireError, HEADER_LEN};

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

    /// Writes the body into `buf[..2]`.
    ///
    /// # Panics
    /// If `buf` is shorter than 2 bytes.
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0] = self.session_id;
        buf[1] = self.epoch_flags;
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
