//! Node counters summed over a node's incarnations (a crashed node's `Node` is gone, its counts are kept) and over
//! many nodes: the part of `mesh::node::NodeStats` that `simulate` and `demo` report, drops by reason included.
//!
//! Invariant: `add` and `merge` are generated from one field list, so they can never disagree.

use mesh::node::NodeStats;

/// Counters of a node summed over its incarnations, or of many nodes: the `NodeStats` the reports use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatsSum {
    /// Packets emitted.
    pub packets_out: u64,
    /// Frames relayed.
    pub relayed: u64,
    /// Managed relays suppressed.
    pub suppressed: u64,
    /// Duplicate frames.
    pub duplicates: u64,
    /// Handshakes started.
    pub handshakes: u64,
    /// Sessions established.
    pub sessions_established: u64,
    /// Rekeys.
    pub rekeys: u64,
    /// Renewals.
    pub renewals: u64,
    /// Private message resends.
    pub retries: u64,
    /// Frames dropped: wire errors.
    pub drop_wire: u64,
    /// Packets/frames dropped by reassembly.
    pub drop_link: u64,
    /// Frames refused by the session layer.
    pub drop_session: u64,
    /// TTL ran out.
    pub ttl_expired: u64,
    /// Own frames coming back.
    pub drop_own: u64,
    /// Bad signatures.
    pub drop_bad_signature: u64,
    /// Packets on unknown links.
    pub drop_unknown_link: u64,
    /// Relay queue full.
    pub drop_relay_queue: u64,
    /// Pending broadcasts dropped.
    pub drop_pending_broadcast: u64,
    /// Duplicate private messages suppressed.
    pub duplicate_messages: u64,
    /// Outbox evictions.
    pub outbox_drops: u64,
    /// Outbox expiries.
    pub outbox_expired: u64,
    /// Outbox flushes after a peer reappeared.
    pub outbox_flushed: u64,
    /// Private messages resent ahead of their retry instant (peer reachable again, or its session replaced).
    pub early_resends: u64,
    /// Handshake messages resent ahead of their retry instant.
    pub early_handshakes: u64,
    /// Early resends held back by the per-peer gap or the per-peer size limit.
    pub early_resends_limited: u64,
    /// Node events dropped.
    pub events_dropped: u64,
    /// Node actions dropped.
    pub actions_dropped: u64,
    /// Peers evicted.
    pub peer_evictions: u64,
    /// Routes evicted.
    pub route_evictions: u64,
    /// Unicast frames sent on a learned route.
    pub routed_unicast: u64,
    /// LINK_ACK frames sent.
    pub hop_acks_sent: u64,
    /// Frames resent hop by hop.
    pub hop_resends: u64,
    /// Frames acknowledged by a copy from the neighbour.
    pub hop_implicit_acks: u64,
    /// Frames given up on a link after their last resend.
    pub hop_gave_up: u64,
    /// Frames sent unprotected because the resend hold was full.
    pub hop_unheld: u64,
    /// Waits dropped with their link.
    pub hop_link_gone: u64,
    /// Acknowledged keys that matched nothing held.
    pub hop_ack_unmatched: u64,
    /// LINK_ACK frames dropped: acknowledgements off here.
    pub drop_hop_ack_off: u64,
    /// LINK_ACK frames dropped: not from the link's neighbour.
    pub drop_hop_ack_foreign: u64,
    /// Sealed frames that arrived before their session's HANDSHAKE_3, dropped unopened.
    pub drop_early: u64,
}

/// Defines `add` (one node's `NodeStats`) and `merge` (another sum) over the same field list, so the two can
/// never disagree.
macro_rules! sum_fields {
    ($($f:ident),* $(,)?) => {
        impl StatsSum {
            /// Adds one node's counters.
            pub fn add(&mut self, s: &NodeStats) {
                $(self.$f += s.$f;)*
            }

            /// Adds another sum.
            pub fn merge(&mut self, o: &StatsSum) {
                $(self.$f += o.$f;)*
            }
        }
    };
}

sum_fields!(
    packets_out,
    relayed,
    suppressed,
    duplicates,
    handshakes,
    sessions_established,
    rekeys,
    renewals,
    retries,
    drop_wire,
    drop_link,
    drop_session,
    ttl_expired,
    drop_own,
    drop_bad_signature,
    drop_unknown_link,
    drop_relay_queue,
    drop_pending_broadcast,
    duplicate_messages,
    outbox_drops,
    outbox_expired,
    outbox_flushed,
    early_resends,
    early_handshakes,
    early_resends_limited,
    events_dropped,
    actions_dropped,
    peer_evictions,
    route_evictions,
    routed_unicast,
    hop_acks_sent,
    hop_resends,
    hop_implicit_acks,
    hop_gave_up,
    hop_unheld,
    hop_link_gone,
    hop_ack_unmatched,
    drop_hop_ack_off,
    drop_hop_ack_foreign,
    drop_early
);

impl StatsSum {
    /// Drops by reason, as (name, count), for reports.
    pub fn drops(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("wire", self.drop_wire),
            ("link", self.drop_link),
            ("session", self.drop_session),
            ("ttl_expired", self.ttl_expired),
            ("own", self.drop_own),
            ("bad_signature", self.drop_bad_signature),
            ("unknown_link", self.drop_unknown_link),
            ("relay_queue", self.drop_relay_queue),
            ("pending_broadcast", self.drop_pending_broadcast),
            ("outbox_full", self.outbox_drops),
            ("outbox_expired", self.outbox_expired),
            ("node_events", self.events_dropped),
            ("node_actions", self.actions_dropped),
            ("hop_gave_up", self.hop_gave_up),
            ("hop_unheld", self.hop_unheld),
            ("hop_link_gone", self.hop_link_gone),
            ("hop_ack_unmatched", self.hop_ack_unmatched),
            ("hop_ack_off", self.drop_hop_ack_off),
            ("hop_ack_foreign", self.drop_hop_ack_foreign),
            ("early_sealed", self.drop_early),
        ]
    }
}
