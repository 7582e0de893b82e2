//! The peers table (who announced itself, PROTOCOL.md §7.2) and the route table (reverse paths, §7.5).
//!
//! Invariant: both tables hold at most their configured number of entries; when full, the entry heard from
//! longest ago is evicted and counted. A route is only ever a link that a frame from its destination arrived on,
//! it lives `route_lifetime` from that frame, and it is dropped when its link goes down or when it stops being
//! confirmed by return traffic.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::vec::Vec;

use super::LinkId;
use crate::identity::{NodeId, PublicIdentity};
use crate::time::{Duration, Instant};

/// What this node knows about a peer from its verified announces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its keys (their node id is the peer's id).
    pub public: PublicIdentity,
    /// Announced nickname.
    pub nickname: String,
    /// Announced capability bits.
    pub capabilities: u16,
    /// When its last announce (or hello) arrived.
    pub last_heard: Instant,
    /// Hops of that announce.
    pub hops: u8,
    /// Another id announced the same nickname first.
    pub nickname_conflict: bool,
    /// Frame id and signature of the last verified announce, so it can be handed on (PEER_SYNC, PROTOCOL.md
    /// §7.2). Unchanged announces that were not verified never replace it.
    pub proof: AnnounceProof,
}

/// What, besides the announced content, re-creates a verified announce: its frame id and signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceProof {
    /// The announce's frame id (the signature covers it).
    pub frame_id: u32,
    /// Its Ed25519 signature.
    pub signature: [u8; 64],
}

/// What [`Peers::update`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerUpdate {
    /// The peer was not in the table.
    pub appeared: bool,
    /// The nickname is already held by this other id.
    pub conflict_with: Option<NodeId>,
    /// A peer evicted to make room.
    pub evicted: Option<NodeId>,
}

/// Bounded table of announced peers.
///
/// `by_heard` orders the entries by `last_heard` (one `(last_heard, id)` per entry, kept in step with `map`), so
/// expiry, eviction of the least recent and the next deadline cost a logarithm, not a scan of the table.
/// `holders` lists the entries that hold their nickname (non-empty, not flagged) as `(nickname hash, id)`, so the
/// nickname rule looks at the few entries with that hash, in id order, instead of every entry.
#[derive(Clone, Debug, Default)]
pub struct Peers {
    max: usize,
    map: BTreeMap<NodeId, Peer>,
    by_heard: BTreeSet<(Instant, NodeId)>,
    holders: BTreeSet<(u64, NodeId)>,
    evictions: u64,
}

impl Peers {
    /// An empty table of at most `max` peers.
    pub fn new(max: usize) -> Self {
        Peers {
            max,
            map: BTreeMap::new(),
            by_heard: BTreeSet::new(),
            holders: BTreeSet::new(),
            evictions: 0,
        }
    }

    /// Refreshes the entry of `id` if it holds exactly this content (keys, nickname, capabilities) and its
    /// nickname is not flagged: only `last_heard` and `hops` change. Returns whether it did. A `true` answer means
    /// [`Peers::update`] would have changed nothing else, since an unflagged entry already holds its nickname.
    pub fn refresh_identical(
        &mut self,
        id: NodeId,
        public: &PublicIdentity,
        nickname: &str,
        capabilities: u16,
        hops: u8,
        now: Instant,
    ) -> bool {
        let Some(entry) = self.map.get_mut(&id) else {
            return false;
        };
        if entry.public != *public
            || entry.capabilities != capabilities
            || entry.nickname != nickname
            || entry.nickname_conflict
        {
            return false;
        }
        let heard = entry.last_heard.max(now);
        if heard != entry.last_heard {
            self.by_heard.remove(&(entry.last_heard, id));
            self.by_heard.insert((heard, id));
            entry.last_heard = heard;
        }
        entry.hops = hops;
        true
    }

    /// The entry of `id`.
    pub fn get(&self, id: &NodeId) -> Option<&Peer> {
        self.map.get(id)
    }

    /// Every entry.
    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &Peer)> {
        self.map.iter()
    }

    /// Every entry, most recently heard first.
    pub fn most_recent(&self) -> impl Iterator<Item = (&NodeId, &Peer)> {
        self.by_heard
            .iter()
            .rev()
            .filter_map(|(_, id)| self.map.get_key_value(id))
    }

    /// Records a verified announce from `id`. The nickname rule (PROTOCOL.md §7.2): the first id heard with a
    /// nickname holds it; a different id announcing the same non-empty nickname is flagged, not refused.
    #[allow(clippy::too_many_arguments)] // one verified announce, taken apart
    pub fn update(
        &mut self,
        id: NodeId,
        public: PublicIdentity,
        nickname: &str,
        capabilities: u16,
        proof: AnnounceProof,
        hops: u8,
        now: Instant,
    ) -> PeerUpdate {
        // The first other id, in id order, that holds this nickname unflagged.
        let conflict_with = if nickname.is_empty() {
            None
        } else {
            let hash = nickname_hash(nickname);
            self.holders
                .range((hash, NodeId([0; 8]))..=(hash, NodeId([0xff; 8])))
                .map(|&(_, other)| other)
                .find(|other| {
                    *other != id
                        && self
                            .map
                            .get(other)
                            .is_some_and(|p| p.nickname == nickname && !p.nickname_conflict)
                })
        };
        let mut evicted = None;
        let appeared = !self.map.contains_key(&id);
        if appeared && self.map.len() >= self.max {
            if let Some((_, old)) = self.by_heard.pop_first() {
                if let Some(p) = self.map.remove(&old) {
                    self.forget_holder(old, &p);
                }
                self.evictions = self.evictions.saturating_add(1);
                evicted = Some(old);
            }
        }
        if self.max == 0 {
            return PeerUpdate {
                appeared: false,
                conflict_with,
                evicted,
            };
        }
        let entry = self.map.entry(id).or_insert_with(|| Peer {
            public,
            nickname: String::new(),
            capabilities,
            last_heard: now,
            hops,
            nickname_conflict: false,
            proof,
        });
        if !entry.nickname.is_empty() && !entry.nickname_conflict {
            self.holders.remove(&(nickname_hash(&entry.nickname), id));
        }
        entry.public = public;
        entry.proof = proof;
        if entry.nickname != nickname {
            entry.nickname = String::from(nickname);
        }
        entry.capabilities = capabilities;
        if !appeared {
            self.by_heard.remove(&(entry.last_heard, id));
        }
        entry.last_heard = entry.last_heard.max(now);
        self.by_heard.insert((entry.last_heard, id));
        entry.hops = hops;
        entry.nickname_conflict = conflict_with.is_some();
        if !nickname.is_empty() && !entry.nickname_conflict {
            self.holders.insert((nickname_hash(nickname), id));
        }
        PeerUpdate {
            appeared,
            conflict_with,
            evicted,
        }
    }

    /// Removes and returns every peer not heard for `timeout`.
    pub fn remove_stale(&mut self, timeout: Duration, now: Instant) -> Vec<NodeId> {
        let mut gone = Vec::new();
        while let Some(&(heard, id)) = self.by_heard.first() {
            if heard + timeout > now {
                break;
            }
            self.by_heard.pop_first();
            if let Some(p) = self.map.remove(&id) {
                self.forget_holder(id, &p);
            }
            gone.push(id);
        }
        gone
    }

    /// The earliest instant a peer goes stale.
    pub fn next_expiry(&self, timeout: Duration) -> Option<Instant> {
        self.by_heard.first().map(|(heard, _)| *heard + timeout)
    }

    /// Peers evicted from the full table.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Approximate heap bytes.
    pub fn memory_bytes(&self) -> usize {
        self.map
            .values()
            .map(|p| {
                core::mem::size_of::<(NodeId, Peer)>()
                    + core::mem::size_of::<(Instant, NodeId)>()
                    + 32
                    + p.nickname.capacity()
            })
            .sum::<usize>()
            + self.holders.len() * core::mem::size_of::<(u64, NodeId)>()
    }

    /// Drops the removed entry `id` from `holders` if it held its nickname.
    fn forget_holder(&mut self, id: NodeId, p: &Peer) {
        if !p.nickname.is_empty() && !p.nickname_conflict {
            self.holders.remove(&(nickname_hash(&p.nickname), id));
        }
    }
}

/// FNV-1a of a nickname: only narrows the entries [`Peers::update`] compares, so collisions cost time, not
/// correctness.
fn nickname_hash(nickname: &str) -> u64 {
    nickname.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A reverse path to a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The link the destination's frames arrive on.
    pub link: LinkId,
    /// Hops to the destination, from the TTL of the frame that taught the route.
    pub hops: u8,
    /// When the route is forgotten.
    pub expires: Instant,
    /// A frame expecting an answer went out on this route; the route is broken unless a frame from the
    /// destination arrives before this instant.
    pub confirm_by: Option<Instant>,
}

impl Route {
    /// Neither expired nor past its confirmation deadline at `now`: the one rule for [`Routes::lookup`] and
    /// [`Routes::usable`].
    fn usable(&self, now: Instant) -> bool {
        self.expires > now && self.confirm_by.is_none_or(|t| t > now)
    }
}

/// Bounded table of reverse paths.
#[derive(Clone, Debug, Default)]
pub struct Routes {
    max: usize,
    map: BTreeMap<NodeId, Route>,
    /// No route expires before this instant (a lower bound: routes only get later expiries), so
    /// `remove_expired` scans the table only when something can actually have expired.
    earliest_expiry: Option<Instant>,
    evictions: u64,
    learned: u64,
    broken: u64,
}

impl Routes {
    /// An empty table of at most `max` routes.
    pub fn new(max: usize) -> Self {
        Routes {
            max,
            ..Routes::default()
        }
    }

    /// Learns (or refreshes) the route to `dst` from a new frame of `dst` that arrived on `link` with `hops`.
    /// A fresh frame from `dst` on the route's link confirms the route. An existing route over another link with
    /// fewer hops is kept, unless it awaits confirmation: then the link the destination's frame actually came
    /// over replaces it (that frame proves nothing about the other link).
    pub fn learn(&mut self, dst: NodeId, link: LinkId, hops: u8, lifetime: Duration, now: Instant) {
        let expires = now + lifetime;
        self.earliest_expiry = Some(self.earliest_expiry.map_or(expires, |e| e.min(expires)));
        if let Some(r) = self.map.get_mut(&dst) {
            // A frame over another link says nothing about this route: a shorter one is kept only while it is
            // not awaiting confirmation (else the answer arriving elsewhere would confirm the wrong route).
            if r.expires > now && r.link != link && r.hops < hops && r.confirm_by.is_none() {
                return;
            }
            *r = Route {
                link,
                hops,
                expires,
                confirm_by: None,
            };
            return;
        }
        if self.max == 0 {
            return;
        }
        if self.map.len() >= self.max {
            let oldest = self
                .map
                .iter()
                .min_by_key(|(_, r)| r.expires)
                .map(|(k, _)| *k);
            if let Some(old) = oldest {
                self.map.remove(&old);
                self.evictions = self.evictions.saturating_add(1);
            }
        }
        self.learned = self.learned.saturating_add(1);
        self.map.insert(
            dst,
            Route {
                link,
                hops,
                expires,
                confirm_by: None,
            },
        );
    }

    /// The link to send a frame for `dst` on, if a usable route exists. `expects_answer` arms the confirmation
    /// deadline `confirm` from now when none is armed. A route whose deadline passed without an answer is
    /// removed (counted as broken) and `None` returned, so the caller floods.
    pub fn lookup(
        &mut self,
        dst: &NodeId,
        expects_answer: bool,
        confirm: Duration,
        now: Instant,
    ) -> Option<LinkId> {
        let r = self.map.get_mut(dst)?;
        if !r.usable(now) {
            let unconfirmed = r.confirm_by.is_some_and(|t| t <= now);
            self.map.remove(dst);
            if unconfirmed {
                self.broken = self.broken.saturating_add(1);
            }
            return None;
        }
        if expects_answer && r.confirm_by.is_none() {
            r.confirm_by = Some(now + confirm);
        }
        Some(r.link)
    }

    /// Whether a usable route to `dst` exists (one [`Routes::lookup`] would return): known, not expired and not
    /// past its confirmation deadline (§7.5). No side effects.
    pub fn usable(&self, dst: &NodeId, now: Instant) -> bool {
        self.map.get(dst).is_some_and(|r| r.usable(now))
    }

    /// The route to `dst` without side effects.
    pub fn get(&self, dst: &NodeId) -> Option<&Route> {
        self.map.get(dst)
    }

    /// Forgets every route over `link`.
    pub fn remove_link(&mut self, link: LinkId) {
        self.map.retain(|_, r| r.link != link);
    }

    /// Forgets expired routes.
    pub fn remove_expired(&mut self, now: Instant) {
        if self.earliest_expiry.is_none_or(|e| e > now) {
            return;
        }
        self.map.retain(|_, r| r.expires > now);
        self.earliest_expiry = self.map.values().map(|r| r.expires).min();
    }

    /// Routes evicted from the full table.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Routes learned.
    pub fn learned(&self) -> u64 {
        self.learned
    }

    /// Routes dropped for lack of an answer.
    pub fn broken(&self) -> u64 {
        self.broken
    }

    /// Approximate heap bytes.
    pub fn memory_bytes(&self) -> usize {
        self.map.len() * (core::mem::size_of::<(NodeId, Route)>() + 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROOF: AnnounceProof = AnnounceProof {
        frame_id: 7,
        signature: [9; 64],
    };

    fn pk(n: u8) -> PublicIdentity {
        PublicIdentity {
            ed25519: [n; 32],
            x25519: [n; 32],
        }
    }

    #[test]
    fn second_id_with_same_nickname_is_flagged() {
        let mut p = Peers::new(4);
        let t = Instant::from_millis(0);
        let a = p.update(NodeId([1; 8]), pk(1), "ann", 0, PROOF, 1, t);
        assert!(a.appeared && a.conflict_with.is_none());
        let b = p.update(NodeId([2; 8]), pk(2), "ann", 0, PROOF, 2, t);
        assert_eq!(b.conflict_with, Some(NodeId([1; 8])));
        assert!(p.get(&NodeId([2; 8])).is_some_and(|x| x.nickname_conflict));
        assert!(p.get(&NodeId([1; 8])).is_some_and(|x| !x.nickname_conflict));
    }

    proptest::proptest! {
        #[test]
        fn nickname_rule_matches_a_scan_of_the_table(
            max in 0usize..8,
            ops in proptest::collection::vec((0u8..10, 0usize..4, 0u64..40, proptest::bool::ANY), 1..200),
        ) {
            let nicknames = ["", "ann", "bob", "cy"];
            let mut p = Peers::new(max);
            let mut now = 0u64;
            for (n, nick, step, expire) in ops {
                now += step;
                let t = Instant::from_millis(now);
                if expire {
                    p.remove_stale(Duration::from_millis(60), t);
                    continue;
                }
                let (id, nickname) = (NodeId([n; 8]), nicknames[nick]);
                // The rule as PROTOCOL.md §7.2 states it: the first other id, in id order, holding it unflagged.
                let expected = if nickname.is_empty() {
                    None
                } else {
                    p.iter()
                        .filter(|(other, q)| **other != id && q.nickname == nickname && !q.nickname_conflict)
                        .map(|(other, _)| *other)
                        .next()
                };
                let u = p.update(id, pk(n), nickname, 0, PROOF, 1, t);
                proptest::prop_assert_eq!(u.conflict_with, expected);
                if max > 0 {
                    proptest::prop_assert_eq!(
                        p.get(&id).map(|q| q.nickname_conflict),
                        Some(expected.is_some())
                    );
                }
            }
        }
    }

    #[test]
    fn full_peers_evicts_least_recent() {
        let mut p = Peers::new(1);
        p.update(
            NodeId([1; 8]),
            pk(1),
            "a",
            0,
            PROOF,
            1,
            Instant::from_millis(0),
        );
        let u = p.update(
            NodeId([2; 8]),
            pk(2),
            "b",
            0,
            PROOF,
            1,
            Instant::from_millis(5),
        );
        assert_eq!(u.evicted, Some(NodeId([1; 8])));
        assert_eq!(p.evictions(), 1);
        let gone = p.remove_stale(Duration::from_secs(1), Instant::from_millis(1_005));
        assert_eq!(gone, [NodeId([2; 8])]);
    }

    #[test]
    fn an_answer_over_another_link_replaces_a_route_in_doubt() {
        let mut r = Routes::new(8);
        let d = NodeId([9; 8]);
        let (c, life) = (Duration::from_secs(1), Duration::from_secs(60));
        // A 1-hop route (a forged src can teach one) and the real 2-hop path.
        r.learn(d, LinkId(3), 1, life, Instant::from_millis(0));
        r.learn(d, LinkId(4), 2, life, Instant::from_millis(10));
        assert_eq!(r.get(&d).map(|x| x.link), Some(LinkId(3)), "shorter kept");
        // A handshake goes out on it and awaits an answer; the answer comes over link 4.
        let t = Instant::from_millis(100);
        assert_eq!(r.lookup(&d, true, c, t), Some(LinkId(3)));
        r.learn(d, LinkId(4), 2, life, Instant::from_millis(120));
        let route = r.get(&d).copied().unwrap();
        assert_eq!(
            (route.link, route.hops, route.confirm_by),
            (LinkId(4), 2, None)
        );
        // Confirmed routes are not displaced by longer paths.
        r.learn(d, LinkId(5), 3, life, Instant::from_millis(130));
        assert_eq!(r.get(&d).map(|x| x.link), Some(LinkId(4)));
    }

    #[test]
    fn unanswered_route_breaks() {
        let mut r = Routes::new(8);
        let d = NodeId([9; 8]);
        let t = Instant::from_millis(0);
        r.learn(d, LinkId(3), 2, Duration::from_secs(60), t);
        let c = Duration::from_secs(1);
        assert_eq!(r.lookup(&d, true, c, t), Some(LinkId(3)));
        assert_eq!(
            r.lookup(&d, true, c, Instant::from_millis(500)),
            Some(LinkId(3))
        );
        assert_eq!(r.lookup(&d, true, c, Instant::from_millis(1_000)), None);
        assert_eq!(r.broken(), 1);
        r.learn(
            d,
            LinkId(4),
            3,
            Duration::from_secs(60),
            Instant::from_millis(1_100),
        );
        assert_eq!(
            r.lookup(&d, false, c, Instant::from_millis(1_200)),
            Some(LinkId(4))
        );
        r.remove_link(LinkId(4));
        assert!(r.get(&d).is_none());
    }
}
