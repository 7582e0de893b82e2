//! Hop-by-hop acknowledgements (PROTOCOL.md §7.10): the receiving side batches the keys of frames that arrived on a
//! link into LINK_ACK frames, the sending side keeps every frame it put on a link until that link's neighbour
//! acknowledged it and resends it when it did not.
//!
//! Three small pieces, all sans-IO: [`Rtt`] (the per-link round-trip estimate that sets the resend timeout),
//! [`AckBatch`] (keys waiting to be acknowledged on one link) and [`Unacked`] (the frames waiting for an ack, each
//! with the links it still waits on). [`crate::node::Node`] ties them to its links.
//!
//! Invariant: [`Unacked`] holds at most `max_frames` frames of at most `max_bytes` bytes in all, each on at most
//! as many links as the node has; an [`AckBatch`] holds at most [`MAX_LINK_ACK_KEYS`] keys. Nothing an ack says can
//! grow either: an ack only ever removes entries, and an ack for anything not held is counted and ignored.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::dup::FrameKey;
use super::LinkId;
use crate::link::{max_packet_len, ATT_MTU_MIN};
use crate::time::{Duration, Instant};
use crate::wire::body::{LINK_ACK_KEY_LEN, MAX_LINK_ACK_KEYS};
use crate::wire::HEADER_LEN;

/// How many keys one LINK_ACK carries on a link of ATT MTU `att_mtu`: as many as fit one SINGLE packet (22 bytes
/// of header, then 12 per key, in `att_mtu - 4` bytes), at least 1 and at most [`MAX_LINK_ACK_KEYS`]. At the
/// smallest MTU even one key takes two packets; at ATT MTU 247 one packet carries 18.
pub fn keys_per_ack(att_mtu: u16) -> usize {
    let packet = max_packet_len(att_mtu)
        .or_else(|_| max_packet_len(ATT_MTU_MIN))
        .unwrap_or(20);
    (packet.saturating_sub(1 + HEADER_LEN) / LINK_ACK_KEY_LEN).clamp(1, MAX_LINK_ACK_KEYS)
}

/// Round-trip estimate of one link, from the time a frame went out to the time its ack came back (ack delay
/// included), as RFC 6298 computes it: `SRTT`, `RTTVAR`, and `RTO = SRTT + max(1 ms, 4 RTTVAR)` clamped to the
/// configured bounds. Only frames sent once give samples (Karn's rule: the ack of a resent frame could answer
/// either copy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rtt {
    /// Smoothed round trip and its mean deviation, in milliseconds; `None` before the first sample.
    smoothed: Option<(u64, u64)>,
}

impl Rtt {
    /// Takes one round-trip sample.
    pub fn sample(&mut self, rtt: Duration) {
        let r = rtt.total_millis();
        self.smoothed = Some(match self.smoothed {
            None => (r, r / 2),
            Some((srtt, var)) => {
                let var = (3 * var + srtt.abs_diff(r)) / 4;
                let srtt = (7 * srtt + r) / 8;
                (srtt, var)
            }
        });
    }

    /// The resend timeout: `initial` before any sample, else `SRTT + max(1 ms, 4 RTTVAR)`, within `min..=max`.
    pub fn rto(&self, initial: Duration, min: Duration, max: Duration) -> Duration {
        let ms = match self.smoothed {
            None => initial.total_millis(),
            Some((srtt, var)) => srtt.saturating_add(var.saturating_mul(4).max(1)),
        };
        Duration::from_millis(ms.clamp(
            min.total_millis(),
            max.total_millis().max(min.total_millis()),
        ))
    }

    /// The smoothed round trip, once measured.
    pub fn smoothed(&self) -> Option<Duration> {
        self.smoothed.map(|(s, _)| Duration::from_millis(s))
    }
}

/// The keys of frames received on one link that still have to be acknowledged, and when the ack goes out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AckBatch {
    keys: Vec<FrameKey>,
    due: Option<Instant>,
}

impl AckBatch {
    /// Adds `key` (once: a key already waiting is not repeated). The first key of a batch sets the ack to go out
    /// `delay` from `now`. Returns true when the batch holds `capacity` keys and must go out at once.
    pub fn push(&mut self, key: FrameKey, delay: Duration, capacity: usize, now: Instant) -> bool {
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
        if self.due.is_none() {
            self.due = Some(now + delay);
        }
        self.keys.len() >= capacity.clamp(1, MAX_LINK_ACK_KEYS)
    }

    /// When the batch is due, if it holds anything.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Empties the batch and returns its keys.
    pub fn take(&mut self) -> Vec<FrameKey> {
        self.due = None;
        core::mem::take(&mut self.keys)
    }

    /// Keys waiting.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Approximate heap bytes.
    pub fn memory_bytes(&self) -> usize {
        self.keys.capacity() * core::mem::size_of::<FrameKey>()
    }
}

/// One link a held frame still waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiting {
    /// The link.
    pub link: LinkId,
    /// Sends on this link so far (1 after the first).
    pub sends: u8,
    /// When it was last sent.
    pub sent_at: Instant,
    /// When to resend (or give up) if no ack came.
    pub due: Instant,
}

/// A frame kept for resending, and the links that have not acknowledged it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Held {
    frame: Vec<u8>,
    links: Vec<Waiting>,
}

/// Why a frame could not be held for resending: it goes out once, unprotected (counted by the caller).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldFull;

/// What [`Unacked::resend`] decided for one due `(frame, link)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resend {
    /// Send this frame on the link again; the next deadline is armed.
    Send(Vec<u8>),
    /// The link used up its resends: the entry is gone (a give-up).
    GaveUp,
    /// Nothing was due for that pair (acknowledged meanwhile, or never held).
    NotDue,
}

/// Frames sent on links and not yet acknowledged, bounded in count and bytes.
#[derive(Clone, Debug, Default)]
pub struct Unacked {
    max_frames: usize,
    max_bytes: usize,
    bytes: usize,
    frames: BTreeMap<FrameKey, Held>,
}

impl Unacked {
    /// An empty table of at most `max_frames` frames and `max_bytes` frame bytes.
    pub fn new(max_frames: usize, max_bytes: usize) -> Self {
        Unacked {
            max_frames,
            max_bytes,
            bytes: 0,
            frames: BTreeMap::new(),
        }
    }

    /// Holds `frame` (key `key`) for an ack from `link`, first resend `rto` after `now`. A frame already held
    /// gains the link (or, sent again on a link it waits on, restarts that link's wait without resetting its
    /// count). A new frame that would exceed either bound is refused. Returns whether a new wait started.
    pub fn hold(
        &mut self,
        key: FrameKey,
        frame: &[u8],
        link: LinkId,
        rto: Duration,
        now: Instant,
    ) -> Result<bool, HoldFull> {
        let waiting = Waiting {
            link,
            sends: 1,
            sent_at: now,
            due: now + rto,
        };
        if let Some(h) = self.frames.get_mut(&key) {
            match h.links.iter_mut().find(|w| w.link == link) {
                Some(w) => {
                    w.sent_at = now;
                    w.due = now + rto;
                    return Ok(false);
                }
                None => h.links.push(waiting),
            }
            return Ok(true);
        }
        if self.frames.len() >= self.max_frames
            || self.bytes.saturating_add(frame.len()) > self.max_bytes
        {
            return Err(HoldFull);
        }
        self.bytes += frame.len();
        self.frames.insert(
            key,
            Held {
                frame: frame.to_vec(),
                links: alloc::vec![waiting],
            },
        );
        Ok(true)
    }

    /// The neighbour on `link` has the frame `key`: stop waiting for it there. Returns what was waiting (for a
    /// round-trip sample), or `None` when nothing was.
    pub fn ack(&mut self, key: &FrameKey, link: LinkId) -> Option<Waiting> {
        let h = self.frames.get_mut(key)?;
        let pos = h.links.iter().position(|w| w.link == link)?;
        let w = h.links.swap_remove(pos);
        if h.links.is_empty() {
            self.release(key);
        }
        Some(w)
    }

    /// Whether `key` waits for an ack from `link`.
    pub fn waits(&self, key: &FrameKey, link: LinkId) -> bool {
        self.frames
            .get(key)
            .is_some_and(|h| h.links.iter().any(|w| w.link == link))
    }

    /// Every `(frame, link)` whose deadline is at or before `now`, earliest first.
    pub fn due(&self, now: Instant) -> Vec<(FrameKey, LinkId)> {
        let mut due: Vec<(Instant, FrameKey, LinkId)> = self
            .frames
            .iter()
            .flat_map(|(k, h)| h.links.iter().map(move |w| (w.due, *k, w.link)))
            .filter(|(at, _, _)| *at <= now)
            .collect();
        due.sort_unstable();
        due.into_iter().map(|(_, k, l)| (k, l)).collect()
    }

    /// Handles one due pair: after `max_sends` sends the link gives up, else the frame is returned to send again
    /// and the next deadline armed `wait` from `now`.
    pub fn resend(
        &mut self,
        key: &FrameKey,
        link: LinkId,
        max_sends: u8,
        wait: Duration,
        now: Instant,
    ) -> Resend {
        let Some(h) = self.frames.get_mut(key) else {
            return Resend::NotDue;
        };
        let Some(pos) = h.links.iter().position(|w| w.link == link && w.due <= now) else {
            return Resend::NotDue;
        };
        let Some(w) = h.links.get_mut(pos) else {
            return Resend::NotDue;
        };
        if w.sends >= max_sends {
            h.links.swap_remove(pos);
            if h.links.is_empty() {
                self.release(key);
            }
            return Resend::GaveUp;
        }
        w.sends = w.sends.saturating_add(1);
        w.sent_at = now;
        w.due = now + wait;
        Resend::Send(h.frame.clone())
    }

    /// Sends of `key` on `link` so far (0 when it does not wait there).
    pub fn sends(&self, key: &FrameKey, link: LinkId) -> u8 {
        self.frames
            .get(key)
            .and_then(|h| h.links.iter().find(|w| w.link == link))
            .map_or(0, |w| w.sends)
    }

    /// Forgets every wait on `link` (it went down). Returns how many there were.
    pub fn remove_link(&mut self, link: LinkId) -> usize {
        let mut removed = 0;
        let mut empty = Vec::new();
        for (k, h) in self.frames.iter_mut() {
            let before = h.links.len();
            h.links.retain(|w| w.link != link);
            removed += before - h.links.len();
            if h.links.is_empty() {
                empty.push(*k);
            }
        }
        for k in empty {
            self.release(&k);
        }
        removed
    }

    /// The earliest deadline.
    pub fn next_due(&self) -> Option<Instant> {
        self.frames
            .values()
            .flat_map(|h| h.links.iter().map(|w| w.due))
            .min()
    }

    /// Waits: (frame, link) pairs not yet acknowledged.
    pub fn open_waits(&self) -> usize {
        self.frames.values().map(|h| h.links.len()).sum()
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Frame bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Approximate heap bytes.
    pub fn memory_bytes(&self) -> usize {
        self.frames
            .values()
            .map(|h| {
                core::mem::size_of::<(FrameKey, Held)>()
                    + 16
                    + h.frame.capacity()
                    + h.links.capacity() * core::mem::size_of::<Waiting>()
            })
            .sum()
    }

    fn release(&mut self, key: &FrameKey) {
        if let Some(h) = self.frames.remove(key) {
            self.bytes = self.bytes.saturating_sub(h.frame.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::NodeId;

    fn key(n: u8) -> FrameKey {
        (NodeId([n; 8]), u32::from(n))
    }

    fn ms(v: u64) -> Instant {
        Instant::from_millis(v)
    }

    #[test]
    fn keys_per_ack_fill_one_packet() {
        assert_eq!(keys_per_ack(23), 1);
        assert_eq!(keys_per_ack(247), 18);
        // 22 + 18 * 12 = 238 bytes: a SINGLE of 239 bytes, within the 244 of MTU 247.
        const { assert!(1 + HEADER_LEN + 18 * LINK_ACK_KEY_LEN <= 244) };
        const { assert!(1 + HEADER_LEN + 19 * LINK_ACK_KEY_LEN > 244) };
        assert_eq!(keys_per_ack(517), MAX_LINK_ACK_KEYS);
        assert_eq!(keys_per_ack(5), 1);
    }

    #[test]
    fn rtt_follows_rfc_6298() {
        let (init, min, max) = (
            Duration::from_millis(250),
            Duration::from_millis(50),
            Duration::from_secs(4),
        );
        let mut r = Rtt::default();
        assert_eq!(r.rto(init, min, max), init);
        r.sample(Duration::from_millis(100));
        // SRTT 100, RTTVAR 50: 100 + 200.
        assert_eq!(r.rto(init, min, max), Duration::from_millis(300));
        r.sample(Duration::from_millis(100));
        // RTTVAR 37, SRTT 100.
        assert_eq!(r.rto(init, min, max), Duration::from_millis(248));
        for _ in 0..50 {
            r.sample(Duration::from_millis(20));
        }
        assert_eq!(r.rto(init, min, max), min, "clamped to the minimum");
        assert_eq!(r.smoothed(), Some(Duration::from_millis(20)));
        r.sample(Duration::from_secs(60));
        assert_eq!(r.rto(init, min, max), max, "clamped to the maximum");
    }

    #[test]
    fn batch_holds_each_key_once_and_fills() {
        let mut b = AckBatch::default();
        let d = Duration::from_millis(10);
        assert!(!b.push(key(1), d, 3, ms(100)));
        assert!(
            !b.push(key(1), d, 3, ms(105)),
            "a repeated key is not added"
        );
        assert_eq!(b.due(), Some(ms(110)), "the first key sets the deadline");
        assert!(!b.push(key(2), d, 3, ms(106)));
        assert!(b.push(key(3), d, 3, ms(107)), "full: goes out at once");
        assert_eq!(b.take(), [key(1), key(2), key(3)]);
        assert!(b.is_empty());
        assert_eq!(b.due(), None);
    }

    #[test]
    fn ack_removes_and_frees() {
        let mut u = Unacked::new(4, 1000);
        let rto = Duration::from_millis(50);
        assert_eq!(u.hold(key(1), &[1; 100], LinkId(1), rto, ms(0)), Ok(true));
        assert_eq!(u.hold(key(1), &[1; 100], LinkId(2), rto, ms(0)), Ok(true));
        assert_eq!((u.len(), u.bytes()), (1, 100), "one frame, two links");
        assert!(u.ack(&key(1), LinkId(3)).is_none(), "not waiting there");
        let w = u.ack(&key(1), LinkId(1)).unwrap();
        assert_eq!((w.sends, w.sent_at), (1, ms(0)));
        assert!(u.waits(&key(1), LinkId(2)));
        assert!(
            u.ack(&key(1), LinkId(1)).is_none(),
            "a second ack finds nothing"
        );
        u.ack(&key(1), LinkId(2)).unwrap();
        assert!(u.is_empty());
        assert_eq!(u.bytes(), 0);
        assert_eq!(u.next_due(), None);
    }

    #[test]
    fn resends_back_off_then_give_up() {
        let mut u = Unacked::new(4, 1000);
        let f = [7u8; 30];
        u.hold(key(1), &f, LinkId(1), Duration::from_millis(50), ms(0))
            .unwrap();
        assert!(u.due(ms(49)).is_empty());
        assert_eq!(u.next_due(), Some(ms(50)));
        assert_eq!(u.due(ms(50)), [(key(1), LinkId(1))]);
        let wait = |n: u64| Duration::from_millis(50 << n);
        // Early: nothing happens.
        assert_eq!(
            u.resend(&key(1), LinkId(1), 4, wait(1), ms(10)),
            Resend::NotDue
        );
        assert_eq!(
            u.resend(&key(1), LinkId(1), 4, wait(1), ms(50)),
            Resend::Send(f.to_vec())
        );
        assert_eq!(u.next_due(), Some(ms(150)));
        assert_eq!(
            u.resend(&key(1), LinkId(1), 4, wait(2), ms(150)),
            Resend::Send(f.to_vec())
        );
        assert_eq!(
            u.resend(&key(1), LinkId(1), 4, wait(3), ms(350)),
            Resend::Send(f.to_vec())
        );
        assert_eq!(u.sends(&key(1), LinkId(1)), 4);
        assert_eq!(
            u.resend(&key(1), LinkId(1), 4, wait(4), ms(750)),
            Resend::GaveUp
        );
        assert!(u.is_empty(), "the give-up freed the frame");
        assert_eq!(u.bytes(), 0);
    }

    #[test]
    fn bounds_refuse_new_frames_but_not_new_links() {
        let mut u = Unacked::new(2, 250);
        let rto = Duration::from_millis(50);
        u.hold(key(1), &[0; 100], LinkId(1), rto, ms(0)).unwrap();
        u.hold(key(2), &[0; 100], LinkId(1), rto, ms(0)).unwrap();
        assert_eq!(
            u.hold(key(3), &[0; 10], LinkId(1), rto, ms(0)),
            Err(HoldFull),
            "frame count"
        );
        u.hold(key(2), &[0; 100], LinkId(2), rto, ms(0)).unwrap();
        u.ack(&key(1), LinkId(1)).unwrap();
        assert_eq!(
            u.hold(key(3), &[0; 151], LinkId(1), rto, ms(0)),
            Err(HoldFull),
            "bytes"
        );
        u.hold(key(3), &[0; 150], LinkId(1), rto, ms(0)).unwrap();
        assert_eq!(u.bytes(), 250);
        assert_eq!(u.remove_link(LinkId(1)), 2);
        assert_eq!((u.len(), u.bytes()), (1, 100));
        assert!(u.waits(&key(2), LinkId(2)));
        assert!(u.memory_bytes() >= 100);
    }

    #[test]
    fn sending_again_restarts_the_wait_but_keeps_the_count() {
        let mut u = Unacked::new(2, 1000);
        let rto = Duration::from_millis(50);
        u.hold(key(1), &[0; 10], LinkId(1), rto, ms(0)).unwrap();
        assert!(matches!(
            u.resend(&key(1), LinkId(1), 4, rto, ms(50)),
            Resend::Send(_)
        ));
        assert_eq!(u.hold(key(1), &[0; 10], LinkId(1), rto, ms(60)), Ok(false));
        assert_eq!(u.sends(&key(1), LinkId(1)), 2);
        assert_eq!(u.next_due(), Some(ms(110)));
    }
}
