//! Frames on air (PROTOCOL.md §4–§5): the fixed header every frame starts with, the table of frame kinds, and
//! the body of each kind.
//!
//! Shape: [`FrameView`] is a checked view over any `AsRef<[u8]>` that reads header fields in place (a relay checks
//! the header and decrements TTL without decoding the body); [`Header`] is the parsed header (`parse`,
//! `buffer_len`, `emit`); [`body`] holds one type per kind, with the signing of ANNOUNCE and BROADCAST; [`decode`]
//! checks a whole frame and returns its header and [`Body`], [`encode`] builds one. Invariant: every decoder returns a value or a
//! [`WireError`] naming the reason, for any byte string; nothing here panics on input.

pub mod body;
mod frame;
mod header;

pub use body::{
    authenticated_header, channel_associated_data, channel_tag, sealed_associated_data, Announce,
    Broadcast, Channel, Handshake, LinkAck, PeerSync, Sealed, UnknownSession,
};
pub use frame::{decode, encode, encode_body, Body};
pub use header::{
    authenticated_prefix, FrameView, Header, Kind, WireError, DEFAULT_TTL, HEADER_LEN,
    MAX_FRAME_LEN, MAX_TTL, VERSION,
};
