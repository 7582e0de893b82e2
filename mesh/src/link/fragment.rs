//! The sending half of a link direction: splits frames into packets (PROTOCOL.md §3.1, §3.2, §3.5).
//!
//! [`Fragmenter::fragment`] checks the frame and the MTU, reserves the frame's sequence numbers and returns
//! [`Packets`], an iterator of borrowed [`Packet`]s (header bytes inline, fragment borrowed from the frame). No
//! allocation and no copy happens here: the radio writes `header() || fragment()` into its own buffer, or
//! [`Packet::write_to`] copies it into a reusable scratch buffer.
//!
//! Invariant: the packets of one call are exactly `packet_count(frame.len(), att_mtu)` packets, each at most
//! `att_mtu - 3` bytes, with consecutive sequence numbers starting at the counter's value before the call, every
//! one but the last filled to the maximum, and their fragments concatenate to the frame.

use alloc::vec::Vec;

use super::{header_byte, max_packet_len, packet_count, LinkError, PacketKind, SEQ_MODULUS};

/// The sequence counter of one link direction (sending side). Create a fresh one when the link comes up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fragmenter {
    next_seq: u8,
}

impl Fragmenter {
    /// A fragmenter for a link that just came up: the first packet carries sequence number 0.
    pub const fn new() -> Self {
        Fragmenter { next_seq: 0 }
    }

    /// A fragmenter whose next packet carries `seq` (taken modulo 64). For tests and golden vectors; a real link
    /// starts at 0 ([`Fragmenter::new`]).
    pub const fn starting_at(seq: u8) -> Self {
        Fragmenter {
            next_seq: seq % SEQ_MODULUS,
        }
    }

    /// The sequence number the next packet will carry.
    pub const fn next_seq(&self) -> u8 {
        self.next_seq
    }

    /// Splits `frame` (1..=[`MAX_FRAME_LEN`](super::MAX_FRAME_LEN) bytes) into packets for a link with ATT MTU
    /// `att_mtu` (23..=517, rejected outside). The frame's sequence numbers are consumed now, whether or not
    /// every packet is then sent: a packet not sent is a loss the receiver detects as a gap.
    pub fn fragment<'f>(
        &mut self,
        frame: &'f [u8],
        att_mtu: u16,
    ) -> Result<Packets<'f>, LinkError> {
        let payload = max_packet_len(att_mtu)?;
        let count = packet_count(frame.len(), att_mtu)?;
        // §3.4: at most 216 packets for a 4096-byte frame at MTU 23, so the count fits a byte.
        let count = u8::try_from(count).map_err(|_| LinkError::FrameTooLong)?;
        let first_seq = self.next_seq;
        self.next_seq = ((u16::from(first_seq) + u16::from(count)) % u16::from(SEQ_MODULUS)) as u8;
        Ok(Packets {
            rest: frame,
            payload,
            seq: first_seq,
            index: 0,
            count,
        })
    }
}

/// The packets of one frame, in sending order. Borrows the frame; allocates nothing.
#[derive(Clone, Debug)]
pub struct Packets<'f> {
    /// The part of the frame not yet yielded.
    rest: &'f [u8],
    /// Maximum packet length, `att_mtu - 3`.
    payload: usize,
    /// Sequence number of the next packet.
    seq: u8,
    /// Index of the next packet, 0-based.
    index: u8,
    /// Number of packets of the frame.
    count: u8,
}

impl<'f> Iterator for Packets<'f> {
    type Item = Packet<'f>;

    fn next(&mut self) -> Option<Packet<'f>> {
        if self.index >= self.count {
            return None;
        }
        let index = self.index;
        self.index += 1;
        let (kind, take) = if self.count == 1 {
            (PacketKind::Single, self.rest.len())
        } else if index == 0 {
            (PacketKind::First, self.payload - 2)
        } else if self.index == self.count {
            (PacketKind::Last, self.rest.len())
        } else {
            (PacketKind::Middle, self.payload - 1)
        };
        let (fragment, rest) = self.rest.split_at_checked(take)?;
        self.rest = rest;
        let seq = self.seq;
        self.seq = (seq + 1) % SEQ_MODULUS;
        Some(Packet {
            header: [header_byte(kind, seq), self.count],
            kind,
            fragment,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::from(self.count - self.index.min(self.count));
        (n, Some(n))
    }
}

impl ExactSizeIterator for Packets<'_> {}

/// One packet: a 1- or 2-byte header and a fragment borrowed from the frame. Never empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'f> {
    /// Byte 0: type and sequence number; byte 1: N, meaningful only for FIRST.
    header: [u8; 2],
    kind: PacketKind,
    fragment: &'f [u8],
}

impl<'f> Packet<'f> {
    /// The packet type.
    pub const fn kind(&self) -> PacketKind {
        self.kind
    }

    /// The 6-bit sequence number.
    pub const fn seq(&self) -> u8 {
        self.header[0] & (SEQ_MODULUS - 1)
    }

    /// The header bytes: 2 for FIRST (type/seq, N), 1 otherwise.
    pub fn header(&self) -> &[u8] {
        let (header, _) = self.header.split_at(self.kind.header_len().min(2));
        header
    }

    /// The fragment of the frame this packet carries.
    pub const fn fragment(&self) -> &'f [u8] {
        self.fragment
    }

    /// Total packet length: header plus fragment.
    pub const fn len(&self) -> usize {
        self.kind.header_len() + self.fragment.len()
    }

    /// Always false: a packet has a header and a non-empty fragment.
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// Copies the packet into the start of `out` and returns its length, or `None` (copying nothing) if `out` is
    /// shorter than [`Packet::len`]. A `[u8; MAX_PACKET_LEN]` scratch buffer fits every packet.
    pub fn write_to(&self, out: &mut [u8]) -> Option<usize> {
        let len = self.len();
        let out = out.get_mut(..len)?;
        // Byte stores for the header rather than a variable-length copy: this runs once per packet.
        let fragment_out = match (self.kind, out) {
            (PacketKind::First, [h0, h1, rest @ ..]) => {
                *h0 = self.header[0];
                *h1 = self.header[1];
                rest
            }
            (PacketKind::First, _) => return None,
            (_, [h0, rest @ ..]) => {
                *h0 = self.header[0];
                rest
            }
            (_, []) => return None,
        };
        fragment_out.copy_from_slice(self.fragment);
        Some(len)
    }

    /// Appends the packet to `out`.
    pub fn append_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.header());
        out.extend_from_slice(self.fragment);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{on_air_len, MAX_FRAME_LEN, MAX_PACKET_LEN};
    use super::*;
    use alloc::vec;

    fn frame(len: usize) -> Vec<u8> {
        (0..len).map(|i| i as u8).collect()
    }

    fn concat(packets: Packets<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        for p in packets {
            p.append_to(&mut out);
        }
        out
    }

    #[test]
    fn single_packet() {
        let f = frame(10);
        let mut tx = Fragmenter::starting_at(5);
        let packets: Vec<_> = tx.fragment(&f, 247).unwrap().collect();
        assert_eq!(packets.len(), 1);
        assert_eq!(packets[0].kind(), PacketKind::Single);
        assert_eq!(packets[0].header(), &[0xc5]);
        assert_eq!(packets[0].fragment(), &f[..]);
        assert_eq!(tx.next_seq(), 6);
    }

    #[test]
    fn three_packets_at_mtu_23() {
        let f = frame(50);
        let mut tx = Fragmenter::new();
        let packets: Vec<_> = tx.fragment(&f, 23).unwrap().collect();
        let headers: Vec<&[u8]> = packets.iter().map(|p| p.header()).collect();
        assert_eq!(headers, vec![&[0x80, 3][..], &[0x01][..], &[0x42][..]]);
        let lens: Vec<usize> = packets.iter().map(|p| p.len()).collect();
        assert_eq!(lens, vec![20, 20, 14]);
        assert_eq!(tx.next_seq(), 3);
    }

    #[test]
    fn edge_of_one_packet() {
        for mtu in [23u16, 247, 517] {
            let p = usize::from(mtu - 3);
            let mut tx = Fragmenter::new();
            let fits = frame(p - 1);
            let packets: Vec<_> = tx.fragment(&fits, mtu).unwrap().collect();
            assert_eq!(packets.len(), 1);
            assert_eq!(packets[0].len(), p);
            let over = frame(p);
            let packets: Vec<_> = tx.fragment(&over, mtu).unwrap().collect();
            assert_eq!(packets.len(), 2);
            assert_eq!(packets[0].len(), p);
            assert_eq!(packets[1].fragment().len(), 2);
            assert_eq!(tx.next_seq(), 3);
        }
    }

    #[test]
    fn sequence_wraps() {
        let f = frame(40);
        let mut tx = Fragmenter::starting_at(62);
        let seqs: Vec<u8> = tx.fragment(&f, 23).unwrap().map(|p| p.seq()).collect();
        assert_eq!(seqs, vec![62, 63, 0]);
        assert_eq!(tx.next_seq(), 1);
        assert_eq!(Fragmenter::starting_at(64 + 3).next_seq(), 3);
    }

    #[test]
    fn every_length_at_the_edge_mtus() {
        for mtu in [23u16, 24, 100, 516, 517] {
            let mut tx = Fragmenter::new();
            for len in 1..=MAX_FRAME_LEN {
                let f = frame(len);
                let before = tx.next_seq();
                let packets = tx.fragment(&f, mtu).unwrap();
                let n = packets.len();
                assert_eq!(Ok(n), packet_count(len, mtu));
                let mut frag = Vec::with_capacity(len);
                let mut total = 0;
                for (i, p) in packets.enumerate() {
                    assert!(p.len() <= usize::from(mtu - 3));
                    if i + 1 < n {
                        assert_eq!(p.len(), usize::from(mtu - 3), "only the last may be short");
                    }
                    assert_eq!(usize::from(p.seq()), (usize::from(before) + i) % 64);
                    frag.extend_from_slice(p.fragment());
                    total += p.len();
                }
                assert_eq!(frag, f);
                assert_eq!(Ok(total), on_air_len(len, mtu));
            }
        }
    }

    #[test]
    fn rejects_bad_input_without_consuming_sequence_numbers() {
        let mut tx = Fragmenter::starting_at(9);
        assert_eq!(tx.fragment(&[], 23).err(), Some(LinkError::EmptyFrame));
        let big = frame(MAX_FRAME_LEN + 1);
        assert_eq!(tx.fragment(&big, 23).err(), Some(LinkError::FrameTooLong));
        assert_eq!(tx.fragment(&[1], 22).err(), Some(LinkError::MtuOutOfRange));
        assert_eq!(tx.fragment(&[1], 518).err(), Some(LinkError::MtuOutOfRange));
        assert_eq!(tx.next_seq(), 9);
    }

    #[test]
    fn write_to_scratch() {
        let f = frame(600);
        let mut tx = Fragmenter::new();
        let mut scratch = [0u8; MAX_PACKET_LEN];
        let mut joined = Vec::new();
        for p in tx.fragment(&f, 517).unwrap() {
            let n = p.write_to(&mut scratch).unwrap();
            joined.extend_from_slice(&scratch[..n]);
        }
        assert_eq!(joined, concat(Fragmenter::new().fragment(&f, 517).unwrap()));
        let p = Fragmenter::new()
            .fragment(&f[..5], 23)
            .unwrap()
            .next()
            .unwrap();
        assert_eq!(p.write_to(&mut [0u8; 5]), None);
        assert_eq!(p.write_to(&mut [0u8; 6]), Some(6));
    }

    #[test]
    fn size_hint_counts_down() {
        let f = frame(100);
        let mut packets = Fragmenter::new().fragment(&f, 23).unwrap();
        assert_eq!(packets.len(), 6);
        packets.next();
        assert_eq!(packets.len(), 5);
        assert_eq!(packets.by_ref().count(), 5);
        assert_eq!(packets.next(), None);
    }
}
