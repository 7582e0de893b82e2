//! The receiving half of a link direction: joins packets back into frames by the rules of PROTOCOL.md §3.3.
//!
//! [`Reassembler::push`] takes one packet and the current time and applies the rules in the spec's order. A
//! SINGLE is delivered as a slice of the packet itself (no copy); a multi-packet frame is assembled in one
//! buffer of `max_frame_len` bytes, allocated once on the first FIRST and reused for every later frame, and
//! delivered as a slice of it (valid until the next call).
//!
//! Invariant: at most one partial frame exists; the buffer never holds more than `max_frame_len` bytes (each
//! fragment is checked against the limit before it is copied), so memory per link direction is bounded by
//! [`ReassemblyConfig::memory_bytes`]; every frame started is delivered, or dropped and counted once in
//! [`ReassemblyStats`] with its reason, or is the one open partial frame.

use core::mem::size_of;

use alloc::vec::Vec;

use super::{parse_packet, LinkError, PacketKind, MAX_FRAME_LEN, SEQ_MODULUS};
use crate::time::{Duration, Instant};

/// How long a partial frame may stay open after its FIRST packet (PROTOCOL.md §3.3 rules 0 and 4).
pub const DEFAULT_REASSEMBLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Bounds of a [`Reassembler`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// The longest frame accepted; longer ones are dropped as [`LinkError::TooLong`]. Values above
    /// [`MAX_FRAME_LEN`] are lowered to it.
    pub max_frame_len: usize,
    /// Time from a FIRST packet after which its partial frame is dropped as [`LinkError::TimedOut`]. With
    /// [`Duration::ZERO`] no multi-packet frame can complete.
    pub timeout: Duration,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            max_frame_len: MAX_FRAME_LEN,
            timeout: DEFAULT_REASSEMBLY_TIMEOUT,
        }
    }
}

impl ReassemblyConfig {
    /// The upper bound of the memory one [`Reassembler`] with this configuration uses: its own size plus a frame
    /// buffer of `max_frame_len` (at most [`MAX_FRAME_LEN`]) bytes. With the defaults on a 64-bit target this
    /// is 4096 + 160 bytes (88 of the 160 are counters). The [`Fragmenter`](super::Fragmenter) of the other
    /// direction adds 1 byte.
    pub const fn memory_bytes(&self) -> usize {
        size_of::<Reassembler>() + self.clamped_max_frame_len()
    }

    const fn clamped_max_frame_len(&self) -> usize {
        if self.max_frame_len > MAX_FRAME_LEN {
            MAX_FRAME_LEN
        } else {
            self.max_frame_len
        }
    }
}

/// What happened to the packets pushed into a [`Reassembler`]. Frame counters: every frame started is counted
/// once more when it is delivered or dropped, so `started == delivered + frames_dropped() + (partial open)`.
/// Packet counters: `packets` counts every push; `malformed_packets` and `orphan_packets` those dropped alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ReassemblyStats {
    /// Packets pushed.
    pub packets: u64,
    /// Frames begun: SINGLE and FIRST packets that passed rule 1.
    pub started: u64,
    /// Frames delivered.
    pub delivered: u64,
    /// Sequence gaps seen (each one or more lost packets), whether or not a partial frame was open.
    pub gaps: u64,
    /// Partial frames dropped because of a sequence gap.
    pub dropped_gap: u64,
    /// Partial frames dropped because a FIRST or SINGLE arrived.
    pub dropped_interrupted: u64,
    /// Partial frames dropped because of a malformed packet.
    pub dropped_malformed: u64,
    /// Frames (partial, or a FIRST or SINGLE by itself) dropped for exceeding `max_frame_len`.
    pub dropped_too_long: u64,
    /// Partial frames dropped on expiry.
    pub dropped_timed_out: u64,
    /// Packets dropped as malformed (rules 1 and 6).
    pub malformed_packets: u64,
    /// MIDDLE or LAST packets dropped with no partial frame open (rule 5).
    pub orphan_packets: u64,
}

impl ReassemblyStats {
    /// Adds `other`'s counters to these (saturating), e.g. to total a node's links.
    pub fn add(&mut self, other: &ReassemblyStats) {
        let ReassemblyStats {
            packets,
            started,
            delivered,
            gaps,
            dropped_gap,
            dropped_interrupted,
            dropped_malformed,
            dropped_too_long,
            dropped_timed_out,
            malformed_packets,
            orphan_packets,
        } = *other;
        for (mine, theirs) in [
            (&mut self.packets, packets),
            (&mut self.started, started),
            (&mut self.delivered, delivered),
            (&mut self.gaps, gaps),
            (&mut self.dropped_gap, dropped_gap),
            (&mut self.dropped_interrupted, dropped_interrupted),
            (&mut self.dropped_malformed, dropped_malformed),
            (&mut self.dropped_too_long, dropped_too_long),
            (&mut self.dropped_timed_out, dropped_timed_out),
            (&mut self.malformed_packets, malformed_packets),
            (&mut self.orphan_packets, orphan_packets),
        ] {
            *mine = mine.saturating_add(theirs);
        }
    }

    /// Frames started and then dropped, for any reason.
    pub const fn frames_dropped(&self) -> u64 {
        self.dropped_gap
            + self.dropped_interrupted
            + self.dropped_malformed
            + self.dropped_too_long
            + self.dropped_timed_out
    }
}

/// The open partial frame: bytes so far are in the reassembler's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Partial {
    /// N from the FIRST packet.
    count: u8,
    /// Packets appended so far, 1..count.
    received: u8,
    expires_at: Instant,
}

/// Reassembles the packets of one link direction. Create a fresh one when the link comes up; drop it when the
/// link goes down.
#[derive(Clone, Debug)]
pub struct Reassembler {
    config: ReassemblyConfig,
    /// Next expected sequence number; unknown until the first well-formed packet.
    expected_seq: Option<u8>,
    partial: Option<Partial>,
    /// The partial frame's bytes, or the last delivered multi-packet frame. Capacity 0 or `max_frame_len`.
    buf: Vec<u8>,
    stats: ReassemblyStats,
}

impl Default for Reassembler {
    fn default() -> Self {
        Reassembler::new(ReassemblyConfig::default())
    }
}

/// Why the partial frame was dropped, for the counters.
#[derive(Clone, Copy)]
enum DropReason {
    Gap,
    Interrupted,
    Malformed,
    TooLong,
    TimedOut,
}

impl Reassembler {
    /// A reassembler for a link that just came up. `config.max_frame_len` above [`MAX_FRAME_LEN`] is lowered to
    /// it. Allocates nothing until the first multi-packet frame.
    pub fn new(config: ReassemblyConfig) -> Self {
        let config = ReassemblyConfig {
            max_frame_len: config.clamped_max_frame_len(),
            ..config
        };
        Reassembler {
            config,
            expected_seq: None,
            partial: None,
            buf: Vec::new(),
            stats: ReassemblyStats::default(),
        }
    }

    /// The configuration in force (after clamping).
    pub const fn config(&self) -> &ReassemblyConfig {
        &self.config
    }

    /// The counters so far.
    pub const fn stats(&self) -> &ReassemblyStats {
        &self.stats
    }

    /// The memory bound of this reassembler: see [`ReassemblyConfig::memory_bytes`].
    pub const fn memory_bytes(&self) -> usize {
        self.config.memory_bytes()
    }

    /// Heap bytes held now: 0 before the first multi-packet frame, then `max_frame_len`.
    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }

    /// True while a partial frame is open.
    pub const fn has_partial(&self) -> bool {
        self.partial.is_some()
    }

    /// When the open partial frame expires; `None` if there is none. The runtime calls
    /// [`Reassembler::remove_expired`] at or after that instant.
    pub fn expires_at(&self) -> Option<Instant> {
        self.partial.map(|p| p.expires_at)
    }

    /// Drops the partial frame if `now >= expires_at` (rule 0); returns true if it did.
    pub fn remove_expired(&mut self, now: Instant) -> bool {
        match self.partial {
            Some(p) if now >= p.expires_at => {
                self.drop_partial(DropReason::TimedOut);
                true
            }
            _ => false,
        }
    }

    /// Processes one packet received at `now` (PROTOCOL.md §3.3, rules 0 to 8 in order).
    ///
    /// - `Ok(Some(frame))`: the packet completed a frame (a SINGLE, or the LAST of a run). The slice borrows the
    ///   packet or the reassembler and is valid until the next call; losses before it are in the counters.
    /// - `Ok(None)`: the packet was added to a partial frame and nothing was lost.
    /// - `Err(e)`: something was dropped. [`LinkError::Malformed`], [`LinkError::Orphan`] and
    ///   [`LinkError::TooLong`] mean the packet itself was dropped (with any partial frame). Otherwise the packet
    ///   was accepted and opened or continued a frame, and `e` is why what came before was lost:
    ///   [`LinkError::TimedOut`], [`LinkError::Gap`] or [`LinkError::Interrupted`].
    pub fn push<'a>(
        &'a mut self,
        packet: &'a [u8],
        now: Instant,
    ) -> Result<Option<&'a [u8]>, LinkError> {
        self.stats.packets += 1;
        let mut lost = None;
        // Rule 0.
        if self.remove_expired(now) {
            lost = Some(LinkError::TimedOut);
        }

        // Rule 1. The expected sequence number is left as it was.
        let parsed = match parse_packet(packet) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.stats.malformed_packets += 1;
                self.drop_partial(DropReason::Malformed);
                return Err(e);
            }
        };

        // Rule 2.
        if let Some(expected) = self.expected_seq {
            if parsed.seq != expected {
                self.stats.gaps += 1;
                self.drop_partial(DropReason::Gap);
                lost = lost.or(Some(LinkError::Gap));
            }
        }
        self.expected_seq = Some((parsed.seq + 1) % SEQ_MODULUS);

        let fragment = parsed.fragment;
        match parsed.kind {
            // Rule 3.
            PacketKind::Single => {
                // A delivery is reported even if something was lost before it; the counters keep the loss.
                self.drop_partial(DropReason::Interrupted);
                self.stats.started += 1;
                if fragment.len() > self.config.max_frame_len {
                    self.stats.dropped_too_long += 1;
                    return Err(LinkError::TooLong);
                }
                self.stats.delivered += 1;
                Ok(Some(fragment))
            }
            // Rule 4.
            PacketKind::First => {
                if self.drop_partial(DropReason::Interrupted) {
                    lost = Some(LinkError::Interrupted);
                }
                self.stats.started += 1;
                if fragment.len() > self.config.max_frame_len {
                    self.stats.dropped_too_long += 1;
                    return Err(LinkError::TooLong);
                }
                self.buf.clear();
                if self.buf.capacity() < self.config.max_frame_len {
                    self.buf.reserve_exact(self.config.max_frame_len);
                }
                self.buf.extend_from_slice(fragment);
                self.partial = Some(Partial {
                    count: parsed.count,
                    received: 1,
                    expires_at: now + self.config.timeout,
                });
                lost.map_or(Ok(None), Err)
            }
            PacketKind::Middle | PacketKind::Last => {
                // Rule 5.
                let Some(mut partial) = self.partial else {
                    self.stats.orphan_packets += 1;
                    return Err(LinkError::Orphan);
                };
                // Rule 6: this packet is number `received + 1` of `count`.
                let is_nth = partial.received.saturating_add(1) == partial.count;
                let is_last = parsed.kind == PacketKind::Last;
                if is_nth != is_last {
                    self.stats.malformed_packets += 1;
                    self.drop_partial(DropReason::Malformed);
                    return Err(LinkError::Malformed);
                }
                // Rule 7.
                if self.buf.len().saturating_add(fragment.len()) > self.config.max_frame_len {
                    self.drop_partial(DropReason::TooLong);
                    return Err(LinkError::TooLong);
                }
                // Rule 8.
                self.buf.extend_from_slice(fragment);
                partial.received += 1;
                if is_last {
                    self.partial = None;
                    self.stats.delivered += 1;
                    Ok(Some(self.buf.as_slice()))
                } else {
                    self.partial = Some(partial);
                    lost.map_or(Ok(None), Err)
                }
            }
        }
    }

    /// Drops the open partial frame, if any, counting it under `reason`; returns true if there was one.
    fn drop_partial(&mut self, reason: DropReason) -> bool {
        if self.partial.take().is_none() {
            return false;
        }
        self.buf.clear();
        let counter = match reason {
            DropReason::Gap => &mut self.stats.dropped_gap,
            DropReason::Interrupted => &mut self.stats.dropped_interrupted,
            DropReason::Malformed => &mut self.stats.dropped_malformed,
            DropReason::TooLong => &mut self.stats.dropped_too_long,
            DropReason::TimedOut => &mut self.stats.dropped_timed_out,
        };
        *counter += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::Fragmenter;
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    const T0: Instant = Instant::from_millis(1_000);

    #[test]
    fn stats_add_every_counter_and_saturate() {
        let one = ReassemblyStats {
            packets: 1,
            started: 2,
            delivered: 3,
            gaps: 4,
            dropped_gap: 5,
            dropped_interrupted: 6,
            dropped_malformed: 7,
            dropped_too_long: 8,
            dropped_timed_out: 9,
            malformed_packets: 10,
            orphan_packets: u64::MAX,
        };
        let mut sum = one;
        sum.add(&one);
        assert_eq!(
            sum,
            ReassemblyStats {
                packets: 2,
                started: 4,
                delivered: 6,
                gaps: 8,
                dropped_gap: 10,
                dropped_interrupted: 12,
                dropped_malformed: 14,
                dropped_too_long: 16,
                dropped_timed_out: 18,
                malformed_packets: 20,
                orphan_packets: u64::MAX,
            }
        );
    }

    fn frame(len: usize, salt: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(7) ^ salt).collect()
    }

    /// The packets of `frame` at `mtu`, each as its own Vec.
    fn packets(tx: &mut Fragmenter, frame: &[u8], mtu: u16) -> Vec<Vec<u8>> {
        tx.fragment(frame, mtu)
            .unwrap()
            .map(|p| {
                let mut v = Vec::new();
                p.append_to(&mut v);
                v
            })
            .collect()
    }

    fn push_owned(
        rx: &mut Reassembler,
        packet: &[u8],
        now: Instant,
    ) -> Result<Option<Vec<u8>>, LinkError> {
        rx.push(packet, now).map(|f| f.map(<[u8]>::to_vec))
    }

    fn check_books(rx: &Reassembler) {
        let s = rx.stats();
        assert_eq!(
            s.started,
            s.delivered + s.frames_dropped() + u64::from(rx.has_partial()),
            "{s:?}"
        );
    }

    #[test]
    fn single_and_multi_roundtrip() {
        let mut tx = Fragmenter::new();
        let mut rx = Reassembler::default();
        for (len, mtu) in [
            (1, 23),
            (19, 23),
            (20, 23),
            (50, 23),
            (4096, 23),
            (513, 517),
            (514, 517),
            (4096, 517),
        ] {
            let f = frame(len, len as u8);
            let ps = packets(&mut tx, &f, mtu);
            let (last, head) = ps.split_last().unwrap();
            for p in head {
                assert_eq!(rx.push(p, T0), Ok(None));
            }
            assert_eq!(push_owned(&mut rx, last, T0), Ok(Some(f)));
        }
        assert_eq!(rx.stats().delivered, 8);
        assert_eq!(rx.stats().frames_dropped(), 0);
        assert!(rx.heap_bytes() <= MAX_FRAME_LEN);
        check_books(&rx);
    }

    #[test]
    fn gap_drops_partial_then_processes_the_packet() {
        let mut tx = Fragmenter::new();
        let mut rx = Reassembler::default();
        let a = packets(&mut tx, &frame(50, 1), 23);
        let b = packets(&mut tx, &frame(5, 2), 23);
        assert_eq!(rx.push(&a[0], T0), Ok(None));
        // a[1] lost; a[2] arrives after the gap and is an orphan.
        assert_eq!(rx.push(&a[2], T0), Err(LinkError::Orphan));
        assert_eq!(rx.stats().dropped_gap, 1);
        assert_eq!(rx.stats().gaps, 1);
        // The next frame continues the sequence and is delivered.
        assert_eq!(push_owned(&mut rx, &b[0], T0), Ok(Some(frame(5, 2))));
        // A gap with nothing open, followed by a FIRST, is reported and the FIRST opens a frame.
        let _lost = packets(&mut tx, &frame(3, 3), 23);
        let c = packets(&mut tx, &frame(30, 4), 23);
        assert_eq!(rx.push(&c[0], T0), Err(LinkError::Gap));
        assert!(rx.has_partial());
        assert_eq!(push_owned(&mut rx, &c[1], T0), Ok(Some(frame(30, 4))));
        // A gap then a SINGLE: delivered.
        let _lost = packets(&mut tx, &frame(3, 5), 23);
        let d = packets(&mut tx, &frame(3, 6), 23);
        assert_eq!(push_owned(&mut rx, &d[0], T0), Ok(Some(frame(3, 6))));
        assert_eq!(rx.stats().gaps, 3);
        check_books(&rx);
    }

    #[test]
    fn interrupted_by_first_and_single() {
        let mut rx = Reassembler::default();
        assert_eq!(rx.push(&[0x80, 3, 1, 2], T0), Ok(None));
        assert_eq!(rx.push(&[0x81, 2, 9], T0), Err(LinkError::Interrupted));
        assert_eq!(push_owned(&mut rx, &[0xc2, 7], T0), Ok(Some(vec![7])));
        assert_eq!(rx.stats().dropped_interrupted, 2);
        assert_eq!(rx.push(&[0x43, 1], T0), Err(LinkError::Orphan));
        check_books(&rx);
    }

    #[test]
    fn position_rules() {
        let mut rx = Reassembler::default();
        // LAST too early.
        assert_eq!(rx.push(&[0x80, 3, 1], T0), Ok(None));
        assert_eq!(rx.push(&[0x41, 2], T0), Err(LinkError::Malformed));
        assert!(!rx.has_partial());
        // MIDDLE in the N-th position.
        assert_eq!(rx.push(&[0x82, 2, 1], T0), Ok(None));
        assert_eq!(rx.push(&[0x03, 2], T0), Err(LinkError::Malformed));
        assert_eq!(rx.stats().dropped_malformed, 2);
        assert_eq!(rx.stats().malformed_packets, 2);
        // A malformed packet by rule 1 drops the partial frame and keeps the expected sequence number.
        assert_eq!(rx.push(&[0x84, 2, 1], T0), Ok(None));
        assert_eq!(rx.push(&[0x85, 1, 1], T0), Err(LinkError::Malformed));
        assert_eq!(rx.push(&[], T0), Err(LinkError::Malformed));
        assert_eq!(push_owned(&mut rx, &[0xc5, 4], T0), Ok(Some(vec![4])));
        assert_eq!(rx.stats().gaps, 0);
        check_books(&rx);
    }

    #[test]
    fn too_long_is_checked_before_copying() {
        let cfg = ReassemblyConfig {
            max_frame_len: 30,
            ..ReassemblyConfig::default()
        };
        let mut rx = Reassembler::new(cfg);
        let mut tx = Fragmenter::new();
        let ok = frame(30, 1);
        for p in packets(&mut tx, &ok, 23) {
            let _ = push_owned(&mut rx, &p, T0);
        }
        assert_eq!(rx.stats().delivered, 1);
        let big = packets(&mut tx, &frame(31, 2), 23);
        assert_eq!(rx.push(&big[0], T0), Ok(None));
        let len_before = rx.buf.len();
        assert_eq!(rx.push(&big[1], T0), Err(LinkError::TooLong));
        assert_eq!(len_before, 18);
        assert!(rx.buf.is_empty());
        assert_eq!(rx.heap_bytes(), 30);
        // A SINGLE and a FIRST whose own fragment is over the limit.
        let single = packets(
            &mut Fragmenter::starting_at(tx.next_seq()),
            &frame(31, 3),
            247,
        );
        assert_eq!(rx.push(&single[0], T0), Err(LinkError::TooLong));
        let mut first = vec![0x80 | ((tx.next_seq() + 1) % 64), 2];
        first.extend_from_slice(&[0; 31]);
        assert_eq!(rx.push(&first, T0), Err(LinkError::TooLong));
        assert_eq!(rx.stats().dropped_too_long, 3);
        check_books(&rx);
    }

    #[test]
    fn max_frame_len_is_clamped() {
        let rx = Reassembler::new(ReassemblyConfig {
            max_frame_len: 1 << 20,
            ..ReassemblyConfig::default()
        });
        assert_eq!(rx.config().max_frame_len, MAX_FRAME_LEN);
        assert_eq!(rx.memory_bytes(), MAX_FRAME_LEN + size_of::<Reassembler>());
        assert_eq!(
            rx.memory_bytes(),
            ReassemblyConfig::default().memory_bytes()
        );
        assert_eq!(rx.heap_bytes(), 0);
        // PROTOCOL.md §3.4 promises a fixed state under 200 bytes besides the frame buffer.
        assert!(size_of::<Reassembler>() < 200);
    }

    #[test]
    fn timeout_with_literal_times() {
        let mut rx = Reassembler::default();
        assert_eq!(rx.expires_at(), None);
        assert_eq!(
            rx.push(&[0x80, 3, 1], Instant::from_millis(10_000)),
            Ok(None)
        );
        assert_eq!(rx.expires_at(), Some(Instant::from_millis(15_000)));
        assert!(!rx.remove_expired(Instant::from_millis(14_999)));
        assert_eq!(rx.push(&[0x01, 2], Instant::from_millis(14_999)), Ok(None));
        // The timeout runs from the FIRST packet, not from the latest one.
        assert_eq!(rx.expires_at(), Some(Instant::from_millis(15_000)));
        assert!(rx.remove_expired(Instant::from_millis(15_000)));
        assert_eq!(rx.expires_at(), None);
        assert!(!rx.remove_expired(Instant::from_millis(20_000)));
        assert_eq!(rx.stats().dropped_timed_out, 1);

        // Expiry is also applied on push, before the packet: the LAST is then an orphan.
        assert_eq!(
            rx.push(&[0x82, 2, 1], Instant::from_millis(20_000)),
            Ok(None)
        );
        assert_eq!(
            rx.push(&[0x43, 2], Instant::from_millis(25_000)),
            Err(LinkError::Orphan)
        );
        assert_eq!(rx.stats().dropped_timed_out, 2);
        // An expired partial frame followed by a FIRST: reported as timed out, the FIRST opens a frame.
        assert_eq!(
            rx.push(&[0x84, 2, 1], Instant::from_millis(30_000)),
            Ok(None)
        );
        assert_eq!(
            rx.push(&[0x85, 2, 1], Instant::from_millis(35_000)),
            Err(LinkError::TimedOut)
        );
        assert_eq!(
            push_owned(&mut rx, &[0x46, 2], Instant::from_millis(39_999)),
            Ok(Some(vec![1, 2]))
        );
        check_books(&rx);
    }

    #[test]
    fn first_packet_sets_the_expected_sequence() {
        let mut rx = Reassembler::default();
        // Any sequence number is accepted first: the link may have lost its opening packets.
        assert_eq!(push_owned(&mut rx, &[0xc0 | 40, 1], T0), Ok(Some(vec![1])));
        assert_eq!(push_owned(&mut rx, &[0xc0 | 41, 2], T0), Ok(Some(vec![2])));
        assert_eq!(rx.stats().gaps, 0);
        // Wrap from 63 to 0.
        let mut rx = Reassembler::default();
        assert_eq!(rx.push(&[0x80 | 63, 2, 1], T0), Ok(None));
        assert_eq!(push_owned(&mut rx, &[0x40, 2], T0), Ok(Some(vec![1, 2])));
    }

    #[test]
    fn sixty_four_losses_are_invisible_to_sequence_numbers() {
        // §3.3: only a loss of a multiple of 64 packets hides a gap; the packet count still has to match.
        let mut rx = Reassembler::default();
        assert_eq!(rx.push(&[0x80, 3, 1], T0), Ok(None));
        assert_eq!(rx.push(&[0x01, 2], T0), Ok(None));
        // 64 packets lost; the LAST of another frame with seq 2 completes the frame.
        assert_eq!(push_owned(&mut rx, &[0x42, 3], T0), Ok(Some(vec![1, 2, 3])));
    }
}
