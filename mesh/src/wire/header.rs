//! The 22-byte frame header (PROTOCOL.md §4) and the frame kind table.
//!
//! Invariant: [`FrameView::new_checked`] guarantees that every getter can index the buffer without panicking;
//! [`Header::parse`] additionally checks version, kind and addressing rules, so a `Header` always describes a
//! frame this node may act on or relay.

use core::fmt;

use crate::identity::{NodeId, NODE_ID_LEN};

/// The protocol version this code speaks (the top 3 bits of byte 0).
pub const VERSION: u8 = 1;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 22;
/// The largest frame any node sends or reassembles (PROTOCOL.md §3.4).
pub const MAX_FRAME_LEN: usize = 4096;
/// TTL a node puts on frames it originates (PROTOCOL.md §4.3).
pub const DEFAULT_TTL: u8 = 7;
/// The largest TTL a node accepts; frames above it are clamped by relays and refused by [`Header::parse`].
pub const MAX_TTL: u8 = 15;

mod field {
    use core::ops::Range;
    pub const VERSION_KIND: usize = 0;
    pub const TTL: usize = 1;
    pub const FRAME_ID: Range<usize> = 2..6;
    pub const SRC: Range<usize> = 6..14;
    pub const DST: Range<usize> = 14..22;
    pub const BODY: usize = 22;
}

/// Why a frame was refused. Each variant is counted separately by the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WireError {
    /// Shorter than the header, or shorter than its kind's fixed fields.
    Truncated,
    /// Longer than [`MAX_FRAME_LEN`] or than a field's limit.
    TooLong,
    /// A version this node does not speak.
    UnsupportedVersion(u8),
    /// Kind 0 is reserved; it never appears on air.
    ReservedKind,
    /// A kind this node does not know; relays may still forward it (PROTOCOL.md §4.2).
    UnknownKind(u8),
    /// TTL above [`MAX_TTL`].
    BadTtl(u8),
    /// A link-local kind (PEER_SYNC, LINK_ACK) with a TTL other than 0.
    LinkLocalTtl(u8),
    /// The source is the broadcast address.
    BroadcastSource,
    /// A kind that must be broadcast was addressed to one node, or the reverse, or a frame is addressed to its
    /// own source.
    BadDestination,
    /// A body field is out of its range (e.g. nickname length, invalid UTF-8, a reserved value).
    BadField,
    /// Bytes left over after the body of a fixed-size kind.
    TrailingBytes,
    /// An Ed25519 signature (ANNOUNCE, BROADCAST) does not verify over the bytes PROTOCOL.md §5.1/§5.2 name.
    BadSignature,
    /// The source node id is not the id of the keys that sign for it (PROTOCOL.md §2.2).
    IdMismatch,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => f.write_str("frame truncated"),
            WireError::TooLong => f.write_str("frame or field too long"),
            WireError::UnsupportedVersion(v) => write!(f, "unsupported protocol version {v}"),
            WireError::ReservedKind => f.write_str("reserved frame kind 0"),
            WireError::UnknownKind(k) => write!(f, "unknown frame kind {k:#04x}"),
            WireError::BadTtl(t) => write!(f, "TTL {t} above the maximum {MAX_TTL}"),
            WireError::LinkLocalTtl(t) => {
                write!(f, "link-local frame kind with TTL {t} (must be 0)")
            }
            WireError::BroadcastSource => f.write_str("source is the broadcast address"),
            WireError::BadDestination => f.write_str("destination not allowed for this frame kind"),
            WireError::BadField => f.write_str("body field out of range"),
            WireError::TrailingBytes => f.write_str("trailing bytes after body"),
            WireError::BadSignature => f.write_str("signature does not verify"),
            WireError::IdMismatch => f.write_str("source id does not match the signing keys"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for WireError {}

/// Frame kinds (PROTOCOL.md §4.2). One table; [`Kind::Unknown`] keeps what a newer node may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// 0x01: a node's identity, nickname and capabilities, signed.
    Announce,
    /// 0x02: a public message to every node, signed.
    Broadcast,
    /// 0x03: Noise XX message 1 (→ e).
    Handshake1,
    /// 0x04: Noise XX message 2 (← e, ee, s, es).
    Handshake2,
    /// 0x05: Noise XX message 3 (→ s, se).
    Handshake3,
    /// 0x06: an encrypted private message.
    Transport,
    /// 0x07: an encrypted end-to-end acknowledgement.
    Ack,
    /// 0x08: an encrypted session close.
    Close,
    /// 0x09: "I have no session with that id" hint (unauthenticated).
    UnknownSession,
    /// 0x0a: a message sealed with a password channel key.
    Channel,
    /// 0x0b: a known peer's signed announce handed to a new neighbour (link-local, TTL 0).
    PeerSync,
    /// 0x0c: link-local acknowledgement of frames received on a link (PROTOCOL.md §5.8, §7.10); TTL always 0.
    LinkAck,
    /// Any other value in 0x0d..=0x1f.
    Unknown(u8),
}

impl Kind {
    /// The kind for a 5-bit code. Code 0 is reserved and gives `None`.
    pub fn from_code(code: u8) -> Option<Kind> {
        Some(match code & 0x1f {
            0x00 => return None,
            0x01 => Kind::Announce,
            0x02 => Kind::Broadcast,
            0x03 => Kind::Handshake1,
            0x04 => Kind::Handshake2,
            0x05 => Kind::Handshake3,
            0x06 => Kind::Transport,
            0x07 => Kind::Ack,
            0x08 => Kind::Close,
            0x09 => Kind::UnknownSession,
            0x0a => Kind::Channel,
            0x0b => Kind::PeerSync,
            0x0c => Kind::LinkAck,
            other => Kind::Unknown(other),
        })
    }

    /// The 5-bit code.
    pub fn code(self) -> u8 {
        match self {
            Kind::Announce => 0x01,
            Kind::Broadcast => 0x02,
            Kind::Handshake1 => 0x03,
            Kind::Handshake2 => 0x04,
            Kind::Handshake3 => 0x05,
            Kind::Transport => 0x06,
            Kind::Ack => 0x07,
            Kind::Close => 0x08,
            Kind::UnknownSession => 0x09,
            Kind::Channel => 0x0a,
            Kind::PeerSync => 0x0b,
            Kind::LinkAck => 0x0c,
            Kind::Unknown(c) => c & 0x1f,
        }
    }

    /// True for kinds that go to every node (destination must be broadcast).
    pub fn is_broadcast(self) -> bool {
        matches!(
            self,
            Kind::Announce | Kind::Broadcast | Kind::Channel | Kind::LinkAck
        )
    }

    /// True for kinds that only ever travel one link: they must carry TTL 0, so no relay ever forwards them.
    pub fn is_link_local(self) -> bool {
        matches!(self, Kind::PeerSync | Kind::LinkAck)
    }

    /// True for kinds sealed with a session key (TRANSPORT, ACK, CLOSE share one body layout).
    pub fn is_sealed(self) -> bool {
        matches!(self, Kind::Transport | Kind::Ack | Kind::Close)
    }

    /// True for the three handshake messages.
    pub fn is_handshake(self) -> bool {
        matches!(self, Kind::Handshake1 | Kind::Handshake2 | Kind::Handshake3)
    }
}

/// A checked read/write view of a frame in a buffer.
#[derive(Clone, Debug)]
pub struct FrameView<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> FrameView<T> {
    /// Wraps `buffer` without checking it; getters may panic on a short buffer. Prefer [`Self::new_checked`].
    pub const fn new_unchecked(buffer: T) -> Self {
        FrameView { buffer }
    }

    /// Wraps `buffer` after checking that it holds a whole header and no more than [`MAX_FRAME_LEN`] bytes.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let view = Self::new_unchecked(buffer);
        view.check_len()?;
        Ok(view)
    }

    /// Checks the length bounds that make every getter safe.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            Err(WireError::Truncated)
        } else if len > MAX_FRAME_LEN {
            Err(WireError::TooLong)
        } else {
            Ok(())
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Protocol version (top 3 bits of byte 0).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION_KIND] >> 5
    }

    /// Raw 5-bit kind code.
    pub fn kind_code(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION_KIND] & 0x1f
    }

    /// Remaining hops.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Frame id (duplicate suppression together with the source).
    pub fn frame_id(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::FRAME_ID];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Source node.
    pub fn src(&self) -> NodeId {
        let mut id = [0u8; NODE_ID_LEN];
        id.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        NodeId(id)
    }

    /// Destination node or [`NodeId::BROADCAST`].
    pub fn dst(&self) -> NodeId {
        let mut id = [0u8; NODE_ID_LEN];
        id.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        NodeId(id)
    }

    /// The kind-specific bytes after the header.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[field::BODY..]
    }

    /// The whole frame.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> FrameView<T> {
    /// Sets the TTL (the only field a relay changes; it is outside the authenticated data).
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Decrements the TTL in place for relaying. Returns the new TTL, or `None` (and changes nothing) when the
    /// frame must not be relayed any further (TTL 0 or 1).
    pub fn decrement_ttl(&mut self) -> Option<u8> {
        let ttl = self.ttl().min(MAX_TTL);
        if ttl <= 1 {
            return None;
        }
        self.set_ttl(ttl - 1);
        Some(ttl - 1)
    }
}

/// The bytes of a frame that end-to-end authentication covers: byte 0 and bytes 2.. up to `end`, i.e. everything
/// except the TTL (PROTOCOL.md §4.4). `end` is where the sealed or signed part starts. Writes into `out` and
/// returns the number of bytes written; `out` must hold `end - 1` bytes.
pub fn authenticated_prefix(frame: &[u8], end: usize, out: &mut [u8]) -> Result<usize, WireError> {
    if end < HEADER_LEN || end > frame.len() {
        return Err(WireError::Truncated);
    }
    let n = end - 1;
    if out.len() < n {
        return Err(WireError::TooLong);
    }
    out[0] = frame[0];
    out[1..n].copy_from_slice(&frame[2..end]);
    Ok(n)
}

/// The parsed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// Frame kind.
    pub kind: Kind,
    /// Remaining hops, 0..=[`MAX_TTL`].
    pub ttl: u8,
    /// Frame id, random per originated frame.
    pub frame_id: u32,
    /// Originating node.
    pub src: NodeId,
    /// Destination node, or broadcast.
    pub dst: NodeId,
}

impl Header {
    /// Parses and validates the header of `view`: version, kind, TTL and addressing rules (PROTOCOL.md §4.3).
    /// An unknown kind is reported as [`WireError::UnknownKind`] after the other checks pass, so a relay can
    /// decide to forward it.
    pub fn parse<T: AsRef<[u8]>>(view: &FrameView<T>) -> Result<Header, WireError> {
        view.check_len()?;
        if view.version() != VERSION {
            return Err(WireError::UnsupportedVersion(view.version()));
        }
        let kind = Kind::from_code(view.kind_code()).ok_or(WireError::ReservedKind)?;
        let ttl = view.ttl();
        if ttl > MAX_TTL {
            return Err(WireError::BadTtl(ttl));
        }
        let (src, dst) = (view.src(), view.dst());
        if src.is_broadcast() {
            return Err(WireError::BroadcastSource);
        }
        if src == dst {
            return Err(WireError::BadDestination);
        }
        if let Kind::Unknown(code) = kind {
            return Err(WireError::UnknownKind(code));
        }
        if kind.is_broadcast() != dst.is_broadcast() {
            return Err(WireError::BadDestination);
        }
        if kind.is_link_local() && ttl != 0 {
            return Err(WireError::LinkLocalTtl(ttl));
        }
        Ok(Header {
            kind,
            ttl,
            frame_id: view.frame_id(),
            src,
            dst,
        })
    }

    /// Bytes the header takes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into the first [`HEADER_LEN`] bytes of `buf`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`HEADER_LEN`]: callers size their buffers with [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        buf[field::VERSION_KIND] = (VERSION << 5) | self.kind.code();
        buf[field::TTL] = self.ttl;
        buf[field::FRAME_ID].copy_from_slice(&self.frame_id.to_be_bytes());
        buf[field::SRC].copy_from_slice(&self.src.0);
        buf[field::DST].copy_from_slice(&self.dst.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: NodeId = NodeId([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
    const B: NodeId = NodeId([0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xf0, 0x01]);

    // PROTOCOL.md §4.1 example: a TRANSPORT header, TTL 7, frame id 0x01020304, from A to B.
    static TRANSPORT_HEADER: [u8; 22] = [
        0x26, 0x07, 0x01, 0x02, 0x03, 0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99,
        0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xf0, 0x01,
    ];

    fn transport_header() -> Header {
        Header {
            kind: Kind::Transport,
            ttl: 7,
            frame_id: 0x0102_0304,
            src: A,
            dst: B,
        }
    }

    #[test]
    fn deconstruct() {
        let view = FrameView::new_checked(&TRANSPORT_HEADER[..]).unwrap();
        assert_eq!(view.version(), 1);
        assert_eq!(view.kind_code(), 0x06);
        assert_eq!(view.ttl(), 7);
        assert_eq!(view.frame_id(), 0x0102_0304);
        assert_eq!(view.src(), A);
        assert_eq!(view.dst(), B);
        assert!(view.body().is_empty());
    }

    #[test]
    fn construct_into_prefilled_buffer() {
        let mut buf = [0xa5u8; 22];
        transport_header().emit(&mut buf);
        assert_eq!(buf, TRANSPORT_HEADER);
    }

    #[test]
    fn parse_emit_round_trip() {
        let view = FrameView::new_checked(&TRANSPORT_HEADER[..]).unwrap();
        let header = Header::parse(&view).unwrap();
        assert_eq!(header, transport_header());
        let mut buf = [0u8; HEADER_LEN];
        header.emit(&mut buf);
        assert_eq!(buf, TRANSPORT_HEADER);
    }

    #[test]
    fn truncated_and_too_long() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                FrameView::new_checked(&TRANSPORT_HEADER[..len]).unwrap_err(),
                WireError::Truncated
            );
        }
        let big = [0u8; MAX_FRAME_LEN + 1];
        assert_eq!(
            FrameView::new_checked(&big[..]).unwrap_err(),
            WireError::TooLong
        );
    }

    #[test]
    fn malformed_headers_are_refused_with_reasons() {
        let check = |mutate: fn(&mut [u8; 22]), want: WireError| {
            let mut b = TRANSPORT_HEADER;
            mutate(&mut b);
            assert_eq!(
                Header::parse(&FrameView::new_checked(&b[..]).unwrap()),
                Err(want)
            );
        };
        check(|b| b[0] = 0x46, WireError::UnsupportedVersion(2));
        check(|b| b[0] = 0x20, WireError::ReservedKind);
        check(|b| b[0] = 0x3f, WireError::UnknownKind(0x1f));
        check(|b| b[1] = 16, WireError::BadTtl(16));
        // LINK_ACK (to broadcast) is link-local: any TTL but 0 is refused.
        check(
            |b| {
                b[0] = 0x2c;
                b[14..22].fill(0xff)
            },
            WireError::LinkLocalTtl(7),
        );
        check(|b| b[6..14].fill(0xff), WireError::BroadcastSource);
        check(|b| b[14..22].fill(0xff), WireError::BadDestination); // unicast kind to broadcast
        check(|b| b[0] = 0x22, WireError::BadDestination); // broadcast kind to one node
        check(|b| b[0] = 0x2b, WireError::LinkLocalTtl(7)); // PEER_SYNC must not travel
        check(
            |b| {
                let src: [u8; 8] = b[6..14].try_into().unwrap();
                b[14..22].copy_from_slice(&src)
            },
            WireError::BadDestination,
        );
    }

    #[test]
    fn kind_table_round_trips() {
        for code in 0u8..32 {
            match Kind::from_code(code) {
                None => assert_eq!(code, 0),
                Some(kind) => assert_eq!(kind.code(), code),
            }
        }
    }

    #[test]
    fn ttl_decrements_in_place_and_stops_at_one() {
        let mut b = TRANSPORT_HEADER;
        let mut view = FrameView::new_checked(&mut b[..]).unwrap();
        assert_eq!(view.decrement_ttl(), Some(6));
        view.set_ttl(1);
        assert_eq!(view.decrement_ttl(), None);
        assert_eq!(view.ttl(), 1);
        view.set_ttl(200);
        assert_eq!(view.decrement_ttl(), Some(MAX_TTL - 1));
    }

    #[test]
    fn authenticated_prefix_skips_ttl() {
        let mut out = [0u8; 21];
        let n = authenticated_prefix(&TRANSPORT_HEADER, HEADER_LEN, &mut out).unwrap();
        assert_eq!(n, 21);
        assert_eq!(out[0], 0x26);
        assert_eq!(&out[1..], &TRANSPORT_HEADER[2..]);
        let mut other = TRANSPORT_HEADER;
        other[1] = 3;
        let mut out2 = [0u8; 21];
        authenticated_prefix(&other, HEADER_LEN, &mut out2).unwrap();
        assert_eq!(out, out2);
        assert!(authenticated_prefix(&TRANSPORT_HEADER, 23, &mut out).is_err());
    }
}
