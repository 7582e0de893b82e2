//! Fragmentation of frames into GATT-sized packets and their reassembly, per link direction (PROTOCOL.md §3).
//!
//! A link (one GATT connection) has two directions; each direction has one [`Fragmenter`] on the sending side
//! and one [`Reassembler`] on the receiving side. Both are plain state machines with no clock and no I/O: packets
//! go out as borrowed [`Packet`]s the radio copies into its write or notification, and come in as byte slices
//! with the current [`Instant`](crate::time::Instant).
//!
//! Link lifecycle: when a link goes down, the runtime drops its `Fragmenter` and `Reassembler`; when a link
//! comes up (including a reconnection to the same neighbour), it makes fresh ones. Sequence numbers therefore
//! start at 0 on every new link, and no partial frame ever survives a reconnection.
//!
//! Invariant: for any byte string handed to [`Reassembler::push`], nothing here panics, no frame longer than the
//! configured `max_frame_len` (at most [`MAX_FRAME_LEN`]) is ever delivered or buffered, and memory per link
//! direction stays within [`ReassemblyConfig::memory_bytes`]. Every packet a [`Fragmenter`] emits is at most
//! `att_mtu - 3` bytes and costs exactly the overhead of §3.5.

mod fragment;
mod reassemble;

use core::fmt;

pub use crate::wire::MAX_FRAME_LEN;
pub use fragment::{Fragmenter, Packet, Packets};
pub use reassemble::{Reassembler, ReassemblyConfig, ReassemblyStats, DEFAULT_REASSEMBLY_TIMEOUT};

/// The smallest ATT MTU a BLE link may have (Core spec Vol 3 Part F §3.2.8).
pub const ATT_MTU_MIN: u16 = 23;
/// The largest ATT MTU (Core spec Vol 3 Part F §3.2.9).
pub const ATT_MTU_MAX: u16 = 517;
/// Bytes of ATT header (opcode + handle) in a Write Without Response or a Handle Value Notification.
pub const ATT_HEADER_LEN: u16 = 3;
/// The largest packet any node sends: `ATT_MTU_MAX - ATT_HEADER_LEN`.
pub const MAX_PACKET_LEN: usize = (ATT_MTU_MAX - ATT_HEADER_LEN) as usize;
/// Sequence numbers count modulo this (6 bits).
pub const SEQ_MODULUS: u8 = 64;

/// Header byte bits 7..6: the packet type.
const TYPE_SHIFT: u32 = 6;
/// Header byte bits 5..0: the sequence number.
const SEQ_MASK: u8 = SEQ_MODULUS - 1;

/// The four packet types of PROTOCOL.md §3.1 (bits 7..6 of the header byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// `0b00`: a packet that is neither first nor last of a multi-packet frame.
    Middle,
    /// `0b01`: the last packet of a multi-packet frame.
    Last,
    /// `0b10`: the first packet of a frame of N >= 2 packets; carries N in a second header byte.
    First,
    /// `0b11`: a whole frame in one packet.
    Single,
}

impl PacketKind {
    /// The 2-bit type code.
    pub const fn code(self) -> u8 {
        match self {
            PacketKind::Middle => 0b00,
            PacketKind::Last => 0b01,
            PacketKind::First => 0b10,
            PacketKind::Single => 0b11,
        }
    }

    /// The type in bits 7..6 of a header byte; every value is a valid type.
    pub const fn from_header_byte(byte: u8) -> PacketKind {
        match byte >> TYPE_SHIFT {
            0b00 => PacketKind::Middle,
            0b01 => PacketKind::Last,
            0b10 => PacketKind::First,
            _ => PacketKind::Single,
        }
    }

    /// Header length in bytes: 2 for FIRST (type/seq byte + packet count), 1 otherwise.
    pub const fn header_len(self) -> usize {
        match self {
            PacketKind::First => 2,
            _ => 1,
        }
    }
}

/// The first header byte of a packet of type `kind` with sequence number `seq` (taken modulo 64).
pub(crate) const fn header_byte(kind: PacketKind, seq: u8) -> u8 {
    (kind.code() << TYPE_SHIFT) | (seq & SEQ_MASK)
}

/// A packet whose header passed rule 1 of PROTOCOL.md §3.3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ParsedPacket<'p> {
    pub(crate) kind: PacketKind,
    pub(crate) seq: u8,
    /// N for FIRST (2..=255); 0 for the other types.
    pub(crate) count: u8,
    /// The fragment, never empty.
    pub(crate) fragment: &'p [u8],
}

/// Splits a packet into header fields and fragment: rule 1 of PROTOCOL.md §3.3. An empty packet, a FIRST without
/// its count byte or with N < 2, and a packet with an empty fragment are [`LinkError::Malformed`].
pub(crate) fn parse_packet(packet: &[u8]) -> Result<ParsedPacket<'_>, LinkError> {
    let (&byte0, rest) = packet.split_first().ok_or(LinkError::Malformed)?;
    let kind = PacketKind::from_header_byte(byte0);
    let seq = byte0 & SEQ_MASK;
    let (count, fragment) = match kind {
        PacketKind::First => {
            let (&count, fragment) = rest.split_first().ok_or(LinkError::Malformed)?;
            if count < 2 {
                return Err(LinkError::Malformed);
            }
            (count, fragment)
        }
        _ => (0, rest),
    };
    if fragment.is_empty() {
        return Err(LinkError::Malformed);
    }
    Ok(ParsedPacket {
        kind,
        seq,
        count,
        fragment,
    })
}

/// Why a frame could not be fragmented, or why the reassembler dropped a packet or a partial frame. Each
/// variant is counted separately (see [`ReassemblyStats`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LinkError {
    /// Sending: a frame of 0 bytes (frames are 1..=[`MAX_FRAME_LEN`] bytes).
    EmptyFrame,
    /// Sending: a frame longer than [`MAX_FRAME_LEN`].
    FrameTooLong,
    /// Sending: an ATT MTU outside [`ATT_MTU_MIN`]..=[`ATT_MTU_MAX`]; rejected rather than clamped, because
    /// packets sized for a wrong MTU would be cut or refused by the peer's ATT layer.
    MtuOutOfRange,
    /// Receiving: an empty packet, a FIRST without count byte or with N < 2, an empty fragment, a MIDDLE in the
    /// N-th position or a LAST not in it (rules 1 and 6). The packet and any partial frame are dropped.
    Malformed,
    /// Receiving: packets were lost (rule 2); the partial frame, if any, was dropped. The packet itself was
    /// processed unless another error says otherwise.
    Gap,
    /// Receiving: a FIRST or SINGLE arrived while a partial frame was open (rules 3, 4); the partial frame was
    /// dropped and the packet accepted.
    Interrupted,
    /// Receiving: a MIDDLE or LAST with no partial frame open (rule 5); the packet was dropped.
    Orphan,
    /// Receiving: the fragment would take the frame over `max_frame_len` (rules 3, 4, 7); the packet and the partial
    /// frame were dropped before any byte was copied.
    TooLong,
    /// Receiving: the partial frame was not completed before its `expires_at` (rule 0) and was dropped.
    TimedOut,
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkError::EmptyFrame => "empty frame",
            LinkError::FrameTooLong => "frame longer than the protocol maximum",
            LinkError::MtuOutOfRange => "ATT MTU outside 23..=517",
            LinkError::Malformed => "malformed packet",
            LinkError::Gap => "packets lost (sequence gap)",
            LinkError::Interrupted => "partial frame interrupted by a new frame",
            LinkError::Orphan => "packet of a frame whose start was not received",
            LinkError::TooLong => "reassembled frame would exceed the maximum frame length",
            LinkError::TimedOut => "partial frame timed out",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for LinkError {}

/// The largest packet on a link with ATT MTU `att_mtu`: `att_mtu - 3`, 20..=514 bytes.
pub const fn max_packet_len(att_mtu: u16) -> Result<usize, LinkError> {
    if att_mtu < ATT_MTU_MIN || att_mtu > ATT_MTU_MAX {
        return Err(LinkError::MtuOutOfRange);
    }
    Ok((att_mtu - ATT_HEADER_LEN) as usize)
}

/// How many packets a frame of `frame_len` bytes takes at ATT MTU `att_mtu` (PROTOCOL.md §3.5): 1 if it fits
/// in one packet after the 1-byte header, else `1 + ceil((frame_len - (P - 2)) / (P - 1))` with `P = att_mtu - 3`.
pub const fn packet_count(frame_len: usize, att_mtu: u16) -> Result<usize, LinkError> {
    let p = match max_packet_len(att_mtu) {
        Ok(p) => p,
        Err(e) => return Err(e),
    };
    if frame_len == 0 {
        return Err(LinkError::EmptyFrame);
    }
    if frame_len > MAX_FRAME_LEN {
        return Err(LinkError::FrameTooLong);
    }
    if frame_len < p {
        return Ok(1);
    }
    let rest = frame_len - (p - 2);
    Ok(1 + rest.div_ceil(p - 1))
}

/// Packet bytes a frame of `frame_len` bytes costs at ATT MTU `att_mtu`: the frame plus 1 byte for a single-packet
/// frame, plus N + 1 bytes for N >= 2 packets (§3.5). Counts what the packets carry as GATT values; the 3-byte ATT
/// header of each packet and the link layer below it are not included.
pub const fn on_air_len(frame_len: usize, att_mtu: u16) -> Result<usize, LinkError> {
    match packet_count(frame_len, att_mtu) {
        Ok(1) => Ok(frame_len + 1),
        Ok(n) => Ok(frame_len + n + 1),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_byte_layout() {
        assert_eq!(header_byte(PacketKind::Single, 5), 0xc5);
        assert_eq!(header_byte(PacketKind::First, 0), 0x80);
        assert_eq!(header_byte(PacketKind::Middle, 63), 0x3f);
        assert_eq!(header_byte(PacketKind::Last, 64), 0x40);
        for b in 0..=255u8 {
            let kind = PacketKind::from_header_byte(b);
            assert_eq!(header_byte(kind, b), b);
        }
    }

    #[test]
    fn parse_rule_one() {
        assert_eq!(parse_packet(&[]), Err(LinkError::Malformed));
        assert_eq!(parse_packet(&[0x80]), Err(LinkError::Malformed));
        assert_eq!(parse_packet(&[0x80, 1, 0xaa]), Err(LinkError::Malformed));
        assert_eq!(parse_packet(&[0x80, 0, 0xaa]), Err(LinkError::Malformed));
        assert_eq!(parse_packet(&[0x80, 2]), Err(LinkError::Malformed));
        assert_eq!(parse_packet(&[0xc0]), Err(LinkError::Malformed));
        assert_eq!(parse_packet(&[0x00]), Err(LinkError::Malformed));
        assert_eq!(parse_packet(&[0x40]), Err(LinkError::Malformed));
        let p = parse_packet(&[0x87, 255, 1, 2]).unwrap();
        assert_eq!(
            (p.kind, p.seq, p.count, p.fragment),
            (PacketKind::First, 7, 255, &[1u8, 2][..])
        );
        let p = parse_packet(&[0x7f, 9]).unwrap();
        assert_eq!(
            (p.kind, p.seq, p.fragment),
            (PacketKind::Last, 63, &[9u8][..])
        );
    }

    #[test]
    fn mtu_bounds_are_rejected_not_clamped() {
        assert_eq!(max_packet_len(22), Err(LinkError::MtuOutOfRange));
        assert_eq!(max_packet_len(518), Err(LinkError::MtuOutOfRange));
        assert_eq!(max_packet_len(23), Ok(20));
        assert_eq!(max_packet_len(517), Ok(MAX_PACKET_LEN));
    }

    #[test]
    fn counts_and_overhead() {
        // MTU 23: 19 bytes fit a SINGLE; 20 need FIRST (18) + LAST (2).
        assert_eq!(packet_count(19, 23), Ok(1));
        assert_eq!(on_air_len(19, 23), Ok(20));
        assert_eq!(packet_count(20, 23), Ok(2));
        assert_eq!(on_air_len(20, 23), Ok(23));
        assert_eq!(packet_count(18 + 19, 23), Ok(2));
        assert_eq!(packet_count(18 + 19 + 1, 23), Ok(3));
        assert_eq!(packet_count(50, 23), Ok(3));
        // §3.4: the largest frame at the smallest MTU.
        assert_eq!(packet_count(MAX_FRAME_LEN, 23), Ok(216));
        assert_eq!(on_air_len(MAX_FRAME_LEN, 23), Ok(MAX_FRAME_LEN + 217));
        assert_eq!(packet_count(513, 517), Ok(1));
        assert_eq!(packet_count(514, 517), Ok(2));
        assert_eq!(packet_count(MAX_FRAME_LEN, 517), Ok(8));
        assert_eq!(packet_count(0, 23), Err(LinkError::EmptyFrame));
        assert_eq!(
            packet_count(MAX_FRAME_LEN + 1, 23),
            Err(LinkError::FrameTooLong)
        );
        assert_eq!(on_air_len(10, 22), Err(LinkError::MtuOutOfRange));
    }

    #[test]
    fn packet_count_fits_a_byte_at_every_mtu() {
        for mtu in ATT_MTU_MIN..=ATT_MTU_MAX {
            let n = packet_count(MAX_FRAME_LEN, mtu).unwrap();
            assert!(n <= 255, "mtu {mtu}: {n} packets");
        }
    }

    #[test]
    fn errors_display() {
        for e in [
            LinkError::EmptyFrame,
            LinkError::FrameTooLong,
            LinkError::MtuOutOfRange,
            LinkError::Malformed,
            LinkError::Gap,
            LinkError::Interrupted,
            LinkError::Orphan,
            LinkError::TooLong,
            LinkError::TimedOut,
        ] {
            let mut s = alloc::string::String::new();
            fmt::write(&mut s, format_args!("{e}")).unwrap();
            assert!(!s.is_empty());
        }
    }
}
