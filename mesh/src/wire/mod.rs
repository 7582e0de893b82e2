//! Frames on air (PROTOCOL.md §4–§5): the fixed header every frame starts with, the table of frame kinds, and
//! the body of each kind.
//!
//! Shape: [`FrameView`] is a checked view over any `AsRef<[u8]>` that reads header fields in place (a relay checks
//! the header and decrements TTL without decoding the body); [`Header`] is the parsed header (`parse`,
//! `buffer_len`, `emit`); [`body`] holds one type per kind. Invariant: every decoder returns a value or a
//! [`WireError`] naming the reason, for any byte string; nothing here panics on input.

pub mod body;
mod header;

pub use body::{sealed_associated_data, Handshake, Sealed, UnknownSession};
pub use header::{
    authenticated_prefix, FrameView, Header, Kind, WireError, DEFAULT_TTL, HEADER_LEN,
    MAX_FRAME_LEN, MAX_TTL, VERSION,
};
