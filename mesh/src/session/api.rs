//! The value types of the session layer's public API: what [`super::Sessions`] returns, emits and counts.
//!
//! Invariant: these types carry no secret (plaintext is the application's own data, fingerprints are public);
//! [`SessionError`] is the one error enum of the layer and every variant says why.

use alloc::vec::Vec;
use core::fmt;

use super::handshake::HandshakeFailure;
use crate::identity::{Fingerprint, NodeId, PublicIdentity};
use crate::time::Duration;
use crate::wire::{Kind, WireError};

/// What [`super::Sessions::send`] did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// Sealed; the frame is waiting in `poll_transmit`.
    Sent,
    /// Waiting for a session (a handshake or renewal is in progress).
    Queued,
}

/// A frame to put on air.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// The destination node (the routing layer picks the next hop).
    pub to: NodeId,
    /// The complete frame: header then body.
    pub frame: Vec<u8>,
}

/// A message accepted from a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// The peer it came from (authenticated by the session).
    pub from: NodeId,
    /// TRANSPORT or ACK.
    pub kind: Kind,
    /// The plaintext, unpadded.
    pub plaintext: Vec<u8>,
}

/// Which side ended a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseOrigin {
    /// This node.
    Local,
    /// The peer, by an authenticated CLOSE.
    Remote,
}

/// The reason byte of CLOSE (PROTOCOL.md §5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// 0: closed by the user (also any unknown value).
    User,
    /// 1: replaced by a newer session.
    Replaced,
    /// 2: evicted from a full session table.
    Evicted,
    /// 3: node shutting down.
    Shutdown,
}

impl CloseReason {
    /// The wire byte.
    pub fn code(self) -> u8 {
        match self {
            CloseReason::User => 0,
            CloseReason::Replaced => 1,
            CloseReason::Evicted => 2,
            CloseReason::Shutdown => 3,
        }
    }

    /// From the wire byte; unknown values read as `User`.
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => CloseReason::Replaced,
            2 => CloseReason::Evicted,
            3 => CloseReason::Shutdown,
            _ => CloseReason::User,
        }
    }
}

/// Why a session expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryReason {
    /// Reached `max_age` and the renewal failed.
    Age,
    /// Reached `max_messages` and the renewal failed.
    Messages,
    /// No frame either way for `idle_timeout`.
    Idle,
}

/// Which direction of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// What this node sends.
    Send,
    /// What this node receives.
    Receive,
}

/// Something the application may want to know or show.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A first session with `peer` is ready.
    Established {
        /// The peer.
        peer: NodeId,
        /// Its keys as authenticated.
        remote: PublicIdentity,
    },
    /// A direction moved to a new key epoch.
    Rekeyed {
        /// The peer.
        peer: NodeId,
        /// Which direction.
        direction: Direction,
        /// The new absolute epoch.
        epoch: u32,
    },
    /// A renewal handshake started.
    RenewalStarted {
        /// The peer.
        peer: NodeId,
    },
    /// A renewal completed: sending moved to the new session.
    Renewed {
        /// The peer.
        peer: NodeId,
    },
    /// A session expired and was erased.
    Expired {
        /// The peer.
        peer: NodeId,
        /// Which limit.
        reason: ExpiryReason,
    },
    /// A session was closed.
    Closed {
        /// The peer.
        peer: NodeId,
        /// Who closed it.
        by: CloseOrigin,
        /// Why.
        reason: CloseReason,
    },
    /// A handshake presented keys other than the pinned ones (PROTOCOL.md §6.7). No session; see `trust`.
    UntrustedIdentity {
        /// The peer.
        peer: NodeId,
        /// Fingerprint of the pinned keys.
        pinned: Fingerprint,
        /// Fingerprint of the keys presented.
        presented: Fingerprint,
    },
    /// A sealed frame on a known session failed authentication.
    DecryptFailed {
        /// The claimed source.
        peer: NodeId,
    },
    /// A handshake ended without a session.
    HandshakeFailed {
        /// The peer.
        peer: NodeId,
        /// Why.
        reason: HandshakeFailure,
    },
}

/// Figures of one session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionStats {
    /// Session id.
    pub session_id: u8,
    /// Time since establishment.
    pub age: Duration,
    /// Send epoch.
    pub tx_epoch: u32,
    /// Receive epoch.
    pub rx_epoch: u32,
    /// TRANSPORT frames sent plus accepted (§6.9).
    pub messages: u64,
    /// Sealed frames sent.
    pub tx_frames: u64,
    /// Plaintext bytes sent.
    pub tx_bytes: u64,
    /// Sealed frames accepted.
    pub rx_frames: u64,
    /// Plaintext bytes accepted.
    pub rx_bytes: u64,
    /// The session reached a hard limit and no longer sends.
    pub hard_limit: bool,
}

/// Why an operation or a frame was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// The frame is malformed (PROTOCOL.md §4–§5).
    Wire(WireError),
    /// The frame is addressed to another node.
    NotForUs,
    /// The frame's kind is not handled by sessions.
    NotSessionKind,
    /// `send` accepts only TRANSPORT and ACK.
    InvalidKind,
    /// The peer is this node or the broadcast address.
    InvalidPeer,
    /// The message does not fit in one frame.
    MessageTooLong,
    /// The peer's queue is full.
    QueueFull,
    /// Every peer slot is in a handshake (§6.10).
    TableFull,
    /// `max_handshakes` are in progress.
    TooManyHandshakes,
    /// The peer's HANDSHAKE_1 token bucket is empty.
    RateLimited,
    /// A crossed HANDSHAKE_1 lost to ours (§6.8).
    CrossedHandshake,
    /// A handshake message that matches no handshake in progress.
    UnexpectedHandshake,
    /// A handshake failed.
    Handshake(HandshakeFailure),
    /// A sealed frame for a `(peer, session id)` with no session.
    UnknownSession,
    /// A sealed frame for a session whose handshake has not completed here.
    HandshakeIncomplete,
    /// Epoch neither current, ahead by at most 8, nor previous in grace.
    StaleEpoch,
    /// Nonce more than 1024 below the highest accepted.
    TooOld,
    /// Nonce already accepted.
    Replay,
    /// AEAD authentication failed.
    Decrypt,
    /// Padding without its 0x80 marker.
    BadPadding,
    /// The send nonce counter is exhausted.
    NonceExhausted,
    /// No session or state with that peer.
    NoSession,
    /// `trust` without a rejected identity to adopt.
    NothingToTrust,
    /// A stored session whose keys are not those pinned for its peer.
    UntrustedIdentity,
    /// A stored session for a peer that already has a session or a handshake.
    AlreadyEstablished,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Wire(e) => write!(f, "malformed frame: {e}"),
            SessionError::NotForUs => f.write_str("frame addressed to another node"),
            SessionError::NotSessionKind => f.write_str("frame kind not handled by sessions"),
            SessionError::InvalidKind => f.write_str("only TRANSPORT and ACK can be sent"),
            SessionError::InvalidPeer => f.write_str("peer is this node or broadcast"),
            SessionError::MessageTooLong => f.write_str("message does not fit in one frame"),
            SessionError::QueueFull => f.write_str("peer queue full"),
            SessionError::TableFull => f.write_str("session table full"),
            SessionError::TooManyHandshakes => f.write_str("too many handshakes in progress"),
            SessionError::RateLimited => f.write_str("handshake rate limit"),
            SessionError::CrossedHandshake => f.write_str("crossed handshake ignored"),
            SessionError::UnexpectedHandshake => f.write_str("unexpected handshake message"),
            SessionError::Handshake(r) => write!(f, "handshake failed: {r}"),
            SessionError::UnknownSession => f.write_str("unknown session"),
            SessionError::HandshakeIncomplete => f.write_str("handshake not complete"),
            SessionError::StaleEpoch => f.write_str("stale key epoch"),
            SessionError::TooOld => f.write_str("nonce too old"),
            SessionError::Replay => f.write_str("replayed nonce"),
            SessionError::Decrypt => f.write_str("authentication failed"),
            SessionError::BadPadding => f.write_str("bad padding"),
            SessionError::NonceExhausted => f.write_str("nonce counter exhausted"),
            SessionError::NoSession => f.write_str("no session with that peer"),
            SessionError::NothingToTrust => f.write_str("no rejected identity to trust"),
            SessionError::UntrustedIdentity => {
                f.write_str("stored session keys differ from the peer's pinned keys")
            }
            SessionError::AlreadyEstablished => {
                f.write_str("the peer already has a session or a handshake in progress")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SessionError {}

impl From<WireError> for SessionError {
    fn from(e: WireError) -> Self {
        SessionError::Wire(e)
    }
}

/// How many frames or operations were refused, per reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct DropCounters {
    /// Malformed frames.
    pub wire: u64,
    /// Addressed elsewhere or of another kind.
    pub misdirected: u64,
    /// Refused `send` calls (queue full, too long, bad kind or peer).
    pub send_refused: u64,
    /// Table full.
    pub table_full: u64,
    /// Handshake limits (per-peer rate or global count).
    pub rate_limited: u64,
    /// Crossed or unexpected handshake messages.
    pub handshake_ignored: u64,
    /// Failed handshakes.
    pub handshake_failed: u64,
    /// Unknown sessions (an UNKNOWN_SESSION may have been sent).
    pub unknown_session: u64,
    /// Frames for a handshake not yet complete here.
    pub handshake_incomplete: u64,
    /// Stale epochs.
    pub stale_epoch: u64,
    /// Nonces too old.
    pub too_old: u64,
    /// Replays.
    pub replay: u64,
    /// AEAD failures.
    pub decrypt: u64,
    /// Bad padding.
    pub bad_padding: u64,
    /// Frames or events lost because nobody polled them.
    pub output_overflow: u64,
    /// Everything else.
    pub other: u64,
}

impl DropCounters {
    pub(crate) fn count(&mut self, e: SessionError) {
        let c = match e {
            SessionError::Wire(_) => &mut self.wire,
            SessionError::NotForUs | SessionError::NotSessionKind => &mut self.misdirected,
            SessionError::InvalidKind
            | SessionError::InvalidPeer
            | SessionError::MessageTooLong
            | SessionError::QueueFull => &mut self.send_refused,
            SessionError::TableFull => &mut self.table_full,
            SessionError::TooManyHandshakes | SessionError::RateLimited => &mut self.rate_limited,
            SessionError::CrossedHandshake | SessionError::UnexpectedHandshake => {
                &mut self.handshake_ignored
            }
            SessionError::Handshake(_) => &mut self.handshake_failed,
            SessionError::UnknownSession => &mut self.unknown_session,
            SessionError::HandshakeIncomplete => &mut self.handshake_incomplete,
            SessionError::StaleEpoch => &mut self.stale_epoch,
            SessionError::TooOld => &mut self.too_old,
            SessionError::Replay => &mut self.replay,
            SessionError::Decrypt => &mut self.decrypt,
            SessionError::BadPadding => &mut self.bad_padding,
            _ => &mut self.other,
        };
        *c = c.saturating_add(1);
    }
}
