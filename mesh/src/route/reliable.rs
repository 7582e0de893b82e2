//! End-to-end reliability of private messages (PROTOCOL.md §7.6–§7.8): the inner plaintext formats of TRANSPORT
//! and ACK, the sender's outbox with retries and exponential backoff, and the receiver's seen-set.
//!
//! Invariant: a message accepted by `Node::send` stays in the [`Outbox`] until it is acknowledged, expires, or is
//! evicted from a full outbox (each reported once); the [`SeenSet`] remembers at most `per_peer` ids per peer for
//! at most `lifetime`, for at most `max_peers` peers, so exactly-once delivery costs bounded memory.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use super::MessageId;
use crate::identity::NodeId;
use crate::time::{Duration, Instant};

/// Bytes of a message id on the wire.
pub const MESSAGE_ID_LEN: usize = 8;
/// The most ids one ACK plaintext carries.
pub const MAX_ACK_IDS: usize = 32;

/// TRANSPORT plaintext: `message_id (u64 BE) || payload`.
pub fn encode_transport(id: MessageId, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MESSAGE_ID_LEN + payload.len());
    out.extend_from_slice(&id.0.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Splits a TRANSPORT plaintext into id and payload; `None` if shorter than the id.
pub fn decode_transport(plaintext: &[u8]) -> Option<(MessageId, &[u8])> {
    let (id, payload) = plaintext.split_first_chunk::<MESSAGE_ID_LEN>()?;
    Some((MessageId(u64::from_be_bytes(*id)), payload))
}

/// ACK plaintext: the acknowledged ids, each u64 BE, 1..=[`MAX_ACK_IDS`] of them.
pub fn encode_ack(ids: &[MessageId]) -> Vec<u8> {
    ids.iter()
        .take(MAX_ACK_IDS)
        .flat_map(|id| id.0.to_be_bytes())
        .collect()
}

/// The ids of an ACK plaintext; `None` if empty, not a multiple of 8 bytes, or over [`MAX_ACK_IDS`] ids.
pub fn decode_ack(plaintext: &[u8]) -> Option<Vec<MessageId>> {
    if plaintext.is_empty()
        || plaintext.len() % MESSAGE_ID_LEN != 0
        || plaintext.len() / MESSAGE_ID_LEN > MAX_ACK_IDS
    {
        return None;
    }
    let ids = plaintext
        .chunks_exact(MESSAGE_ID_LEN)
        .filter_map(|c| <[u8; MESSAGE_ID_LEN]>::try_from(c).ok())
        .map(|b| MessageId(u64::from_be_bytes(b)))
        .collect();
    Some(ids)
}

/// Where a message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutState {
    /// Sent `attempts` times; the next resend is at `next_retry`.
    InFlight {
        /// Sends so far.
        attempts: u32,
        /// When to resend.
        next_retry: Instant,
    },
    /// Waiting for the peer to (re)appear.
    Waiting,
}

/// An accepted, unacknowledged private message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutMessage {
    /// The peer.
    pub to: NodeId,
    /// Its id.
    pub id: MessageId,
    /// The application payload.
    pub payload: Vec<u8>,
    /// When `DeliveryFailed(Expired)` is due.
    pub expires: Instant,
    /// Where it stands.
    pub state: OutState,
}

/// Retry schedule: the wait after attempt `n` (1-based) is `ack_timeout * factor^(n-1)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Wait after the first send.
    pub ack_timeout: Duration,
    /// Growth per attempt.
    pub factor: u32,
    /// Sends before the message waits for its peer to reappear.
    pub max_attempts: u32,
    /// Cap of the wait.
    pub max_wait: Duration,
}

impl Backoff {
    /// The wait after `attempts` sends.
    pub fn wait_after(&self, attempts: u32) -> Duration {
        let exp = attempts.saturating_sub(1).min(16);
        let mult = u64::from(self.factor.max(1)).saturating_pow(exp);
        Duration::from_millis(self.ack_timeout.total_millis().saturating_mul(mult))
            .min(self.max_wait)
    }
}

/// Every accepted, unacknowledged private message, in acceptance order.
#[derive(Clone, Debug, Default)]
pub struct Outbox {
    capacity: usize,
    messages: VecDeque<OutMessage>,
}

impl Outbox {
    /// An empty outbox of at most `capacity` messages.
    pub fn new(capacity: usize) -> Self {
        Outbox {
            capacity,
            messages: VecDeque::new(),
        }
    }

    /// Accepts a message. When full, evicts and returns the oldest waiting message, or else the oldest one.
    /// With capacity 0 the message itself comes back.
    pub fn push(&mut self, msg: OutMessage) -> Option<OutMessage> {
        if self.capacity == 0 {
            return Some(msg);
        }
        let mut evicted = None;
        if self.messages.len() >= self.capacity {
            let pos = self
                .messages
                .iter()
                .position(|m| m.state == OutState::Waiting)
                .unwrap_or(0);
            evicted = self.messages.remove(pos);
        }
        self.messages.push_back(msg);
        evicted
    }

    /// Removes the message `id` to `to` on acknowledgement.
    pub fn ack(&mut self, to: NodeId, id: MessageId) -> bool {
        match self.messages.iter().position(|m| m.to == to && m.id == id) {
            Some(pos) => self.messages.remove(pos).is_some(),
            None => false,
        }
    }

    /// Removes and returns messages whose lifetime has passed.
    pub fn take_expired(&mut self, now: Instant) -> Vec<OutMessage> {
        let mut out = Vec::new();
        let mut kept = VecDeque::with_capacity(self.messages.len());
        for m in self.messages.drain(..) {
            if m.expires <= now {
                out.push(m);
            } else {
                kept.push_back(m);
            }
        }
        self.messages = kept;
        out
    }

    /// Messages whose retry is due: resent ones come back as `(to, id, payload)` with their attempt counted;
    /// those that used their last attempt move to `Waiting` instead.
    pub fn take_retries(
        &mut self,
        backoff: &Backoff,
        now: Instant,
    ) -> Vec<(NodeId, MessageId, Vec<u8>)> {
        let mut out = Vec::new();
        for m in self.messages.iter_mut() {
            if let OutState::InFlight {
                attempts,
                next_retry,
            } = m.state
            {
                if next_retry > now {
                    continue;
                }
                if attempts >= backoff.max_attempts {
                    m.state = OutState::Waiting;
                    continue;
                }
                let attempts = attempts.saturating_add(1);
                m.state = OutState::InFlight {
                    attempts,
                    next_retry: now + backoff.wait_after(attempts),
                };
                out.push((m.to, m.id, m.payload.clone()));
            }
        }
        out
    }

    /// The peer `to` is present again: its waiting messages restart with a first attempt now. Returns them.
    pub fn wake(
        &mut self,
        to: NodeId,
        backoff: &Backoff,
        now: Instant,
    ) -> Vec<(MessageId, Vec<u8>)> {
        let mut out = Vec::new();
        for m in self.messages.iter_mut() {
            if m.to == to && m.state == OutState::Waiting {
                m.state = OutState::InFlight {
                    attempts: 1,
                    next_retry: now + backoff.wait_after(1),
                };
                out.push((m.id, m.payload.clone()));
            }
        }
        out
    }

    /// Messages to `to` waiting for their ACK (sent, not yet given up to `Waiting`).
    pub fn in_flight_to(&self, to: NodeId) -> usize {
        self.messages
            .iter()
            .filter(|m| m.to == to && matches!(m.state, OutState::InFlight { .. }))
            .count()
    }

    /// The peer `to` has just become reachable again (PROTOCOL.md §7.7, early resends): its messages waiting for
    /// an ACK, oldest first and at most `max`, are resent now instead of at their retry instant. A message with a
    /// send left takes its next scheduled send now: the attempt is counted and the backoff continues from now. A
    /// message whose sends are used up is resent once more and keeps its schedule (it moves to `Waiting` at its
    /// retry instant, as before). Returns the messages to resend, and how many in flight to `to` were left out
    /// by `max`.
    pub fn resend_now(
        &mut self,
        to: NodeId,
        max: usize,
        backoff: &Backoff,
        now: Instant,
    ) -> (Vec<(MessageId, Vec<u8>)>, usize) {
        let mut out = Vec::new();
        let mut left = 0;
        for m in self.messages.iter_mut().filter(|m| m.to == to) {
            let OutState::InFlight { attempts, .. } = m.state else {
                continue;
            };
            if out.len() >= max {
                left += 1;
                continue;
            }
            if attempts < backoff.max_attempts {
                let attempts = attempts.saturating_add(1);
                m.state = OutState::InFlight {
                    attempts,
                    next_retry: now + backoff.wait_after(attempts),
                };
            }
            out.push((m.id, m.payload.clone()));
        }
        (out, left)
    }

    /// The earliest retry or expiry.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.messages
            .iter()
            .map(|m| match m.state {
                OutState::InFlight { next_retry, .. } => next_retry.min(m.expires),
                OutState::Waiting => m.expires,
            })
            .min()
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Approximate heap bytes.
    pub fn memory_bytes(&self) -> usize {
        self.messages
            .iter()
            .map(|m| core::mem::size_of::<OutMessage>() + m.payload.capacity())
            .sum()
    }
}

/// Per-peer memory of delivered message ids.
#[derive(Clone, Debug, Default)]
pub struct SeenSet {
    per_peer: usize,
    max_peers: usize,
    lifetime: Duration,
    map: BTreeMap<NodeId, VecDeque<(MessageId, Instant)>>,
    evictions: u64,
}

impl SeenSet {
    /// An empty set.
    pub fn new(per_peer: usize, max_peers: usize, lifetime: Duration) -> Self {
        SeenSet {
            per_peer,
            max_peers,
            lifetime,
            map: BTreeMap::new(),
            evictions: 0,
        }
    }

    /// Records `id` from `peer`; `true` if it was not seen (deliver it), `false` for a repeat.
    pub fn insert(&mut self, peer: NodeId, id: MessageId, now: Instant) -> bool {
        if let Some(q) = self.map.get_mut(&peer) {
            while q.front().is_some_and(|(_, at)| *at <= now) {
                q.pop_front();
            }
            if q.iter().any(|(seen, _)| *seen == id) {
                return false;
            }
        } else if self.map.len() >= self.max_peers {
            let oldest = self
                .map
                .iter()
                .min_by_key(|(_, q)| q.back().map(|(_, at)| *at))
                .map(|(k, _)| *k);
            if let Some(old) = oldest {
                self.map.remove(&old);
                self.evictions = self.evictions.saturating_add(1);
            }
        }
        if self.per_peer == 0 || self.max_peers == 0 {
            return true;
        }
        let q = self.map.entry(peer).or_default();
        if q.len() >= self.per_peer {
            q.pop_front();
            self.evictions = self.evictions.saturating_add(1);
        }
        q.push_back((id, now + self.lifetime));
        true
    }

    /// Drops expired ids and empty peers.
    pub fn remove_expired(&mut self, now: Instant) {
        for q in self.map.values_mut() {
            while q.front().is_some_and(|(_, at)| *at <= now) {
                q.pop_front();
            }
        }
        self.map.retain(|_, q| !q.is_empty());
    }

    /// Ids forgotten early because a bound was reached.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Approximate heap bytes.
    pub fn memory_bytes(&self) -> usize {
        self.map
            .values()
            .map(|q| 48 + q.capacity() * core::mem::size_of::<(MessageId, Instant)>())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        ack_timeout: Duration::from_secs(2),
        factor: 2,
        max_attempts: 3,
        max_wait: Duration::from_secs(60),
    };

    fn msg(to: u8, id: u64, state: OutState) -> OutMessage {
        OutMessage {
            to: NodeId([to; 8]),
            id: MessageId(id),
            payload: alloc::vec![id as u8],
            expires: Instant::from_secs(100),
            state,
        }
    }

    #[test]
    fn plaintexts_round_trip_and_reject_bad_lengths() {
        let t = encode_transport(MessageId(0x0102030405060708), b"hi");
        assert_eq!(t, [1, 2, 3, 4, 5, 6, 7, 8, b'h', b'i']);
        assert_eq!(
            decode_transport(&t),
            Some((MessageId(0x0102030405060708), &b"hi"[..]))
        );
        assert_eq!(decode_transport(&[1, 2, 3]), None);
        let a = encode_ack(&[MessageId(1), MessageId(2)]);
        assert_eq!(
            decode_ack(&a),
            Some(alloc::vec![MessageId(1), MessageId(2)])
        );
        assert_eq!(decode_ack(&[]), None);
        assert_eq!(decode_ack(&[0; 9]), None);
        assert_eq!(decode_ack(&[0; 8 * 33]), None);
    }

    #[test]
    fn retries_back_off_then_wait_then_wake() {
        let mut o = Outbox::new(4);
        let t0 = Instant::from_secs(0);
        o.push(msg(
            1,
            7,
            OutState::InFlight {
                attempts: 1,
                next_retry: t0 + B.wait_after(1),
            },
        ));
        assert_eq!(o.next_deadline(), Some(Instant::from_secs(2)));
        assert!(o.take_retries(&B, Instant::from_millis(1_999)).is_empty());
        assert_eq!(o.take_retries(&B, Instant::from_secs(2)).len(), 1);
        assert_eq!(o.next_deadline(), Some(Instant::from_secs(6)));
        assert_eq!(o.take_retries(&B, Instant::from_secs(6)).len(), 1);
        assert_eq!(o.next_deadline(), Some(Instant::from_secs(14)));
        assert!(o.take_retries(&B, Instant::from_secs(14)).is_empty());
        assert_eq!(o.next_deadline(), Some(Instant::from_secs(100)));
        assert_eq!(o.wake(NodeId([1; 8]), &B, Instant::from_secs(20)).len(), 1);
        assert!(o.ack(NodeId([1; 8]), MessageId(7)));
        assert!(o.is_empty());
    }

    #[test]
    fn resend_now_takes_the_next_send_early_and_is_bounded() {
        let mut o = Outbox::new(8);
        let t0 = Instant::from_secs(0);
        let inflight = |attempts, at| OutState::InFlight {
            attempts,
            next_retry: Instant::from_secs(at),
        };
        o.push(msg(1, 1, inflight(1, 2)));
        o.push(msg(1, 2, inflight(3, 14)));
        o.push(msg(1, 3, OutState::Waiting));
        o.push(msg(2, 4, inflight(1, 2)));
        o.push(msg(1, 5, inflight(1, 2)));
        assert_eq!(o.in_flight_to(NodeId([1; 8])), 3);
        let (sent, left) = o.resend_now(NodeId([1; 8]), 2, &B, t0 + Duration::from_millis(500));
        assert_eq!(sent.iter().map(|(id, _)| id.0).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(left, 1, "the cap leaves message 5 to its timer");
        // Message 1 took its second send now: its next retry is the second wait (4 s) from now.
        assert_eq!(
            o.messages[0].state,
            OutState::InFlight {
                attempts: 2,
                next_retry: Instant::from_millis(4_500)
            }
        );
        // Message 2 had no send left (max_attempts 3): resent once more, schedule unchanged.
        assert_eq!(o.messages[1].state, inflight(3, 14));
        // Waiting messages and other peers' are untouched.
        assert_eq!(o.messages[2].state, OutState::Waiting);
        assert_eq!(o.messages[3].state, inflight(1, 2));
        assert_eq!(o.messages[4].state, inflight(1, 2));
    }

    #[test]
    fn full_outbox_evicts_waiting_first_and_expiry_reports() {
        let mut o = Outbox::new(2);
        let inflight = OutState::InFlight {
            attempts: 1,
            next_retry: Instant::from_secs(2),
        };
        assert!(o.push(msg(1, 1, inflight)).is_none());
        assert!(o.push(msg(1, 2, OutState::Waiting)).is_none());
        assert_eq!(
            o.push(msg(1, 3, inflight)).map(|m| m.id),
            Some(MessageId(2))
        );
        assert_eq!(o.take_expired(Instant::from_secs(100)).len(), 2);
    }

    #[test]
    fn seen_set_delivers_once_and_forgets_after_lifetime() {
        let mut s = SeenSet::new(2, 1, Duration::from_secs(10));
        let p = NodeId([3; 8]);
        let t = Instant::from_secs(1);
        assert!(s.insert(p, MessageId(1), t));
        assert!(!s.insert(p, MessageId(1), t));
        assert!(s.insert(p, MessageId(1), Instant::from_secs(11)));
        assert!(s.insert(NodeId([4; 8]), MessageId(1), t));
        assert_eq!(s.evictions(), 1);
    }
}
