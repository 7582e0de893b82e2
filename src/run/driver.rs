//! `NodeDriver`: one `mesh::Node` glued to one radio — the link policy (advertise, scan, connect to meshnode
//! advertisers, retry with a pause), radio events turned into node inputs, and node actions put on the air with a
//! bounded per-link backlog while a radio queue is full.
//!
//! Invariant: the driver never blocks and never reads a clock (every call carries `now`); each link's backlog holds
//! at most `backlog_limit` packets and every packet it drops is counted in [`DriverStats`]. The radio is borrowed
//! per call (`&mut dyn Radio`), so the same driver serves the UDP, BLE and simulated backends.

use std::collections::{BTreeMap, HashMap, VecDeque};

use hal::{Advertisement, LinkDownReason, PeerAddress, Radio, RadioErrorKind, RadioEvent};
use mesh::node::{Action, LinkId, Node, Persist};
use mesh::time::{Duration, Instant};

/// The 128-bit service UUID every meshnode advertises (the BLE GATT service; UDP beacons carry it too).
pub const SERVICE_UUID: u128 = 0x6d65_7368_6e6f_6465_8000_0000_0000_b1e0;

/// How long after a failed or lost link the driver waits before connecting to that peer again.
const RECONNECT_PAUSE: Duration = Duration::from_millis(1_000);

/// Where a node's records go (PROTOCOL.md §6.11): `persist` writes a batch and returns only once it is durable.
pub trait Persister {
    /// Stores `records`, in order, durably. An error stops the node: nothing that depends on them may go on air.
    fn persist(&mut self, records: &[Persist]) -> Result<(), String>;
}

/// What the driver counted.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct DriverStats {
    /// Links that came up.
    pub links_up: u64,
    /// Links that went down.
    pub links_down: u64,
    /// Connects started.
    pub connects: u64,
    /// Packets handed to the radio.
    pub packets_sent: u64,
    /// Packets parked in a backlog because the radio queue was full.
    pub packets_backlogged: u64,
    /// Packets dropped because a link's backlog was full.
    pub backlog_drops: u64,
    /// Packets dropped because the radio refused them for good (no such link, too long, backend error).
    pub send_errors: u64,
    /// Radio commands (scan, advertise, connect) that failed.
    pub command_errors: u64,
    /// Batches of node records made durable.
    pub persist_batches: u64,
    /// Records in them.
    pub persist_records: u64,
}

/// A link as the driver tracks it.
#[derive(Debug)]
struct LinkEntry {
    peer: PeerAddress,
    up: bool,
    backlog: VecDeque<Vec<u8>>,
}

/// One node and its link policy.
pub struct NodeDriver {
    /// The protocol core.
    pub node: Node,
    links: BTreeMap<u32, LinkEntry>,
    by_peer: HashMap<PeerAddress, u32>,
    retry_after: HashMap<PeerAddress, Instant>,
    backlog_limit: usize,
    stats: DriverStats,
    persister: Option<Box<dyn Persister>>,
    pending: Vec<Persist>,
    persist_error: Option<String>,
}

impl NodeDriver {
    /// A driver for `node`, holding at most `backlog_limit` packets per busy link.
    pub fn new(node: Node, backlog_limit: usize) -> Self {
        NodeDriver {
            node,
            links: BTreeMap::new(),
            by_peer: HashMap::new(),
            retry_after: HashMap::new(),
            backlog_limit: backlog_limit.max(1),
            stats: DriverStats::default(),
            persister: None,
            pending: Vec::new(),
            persist_error: None,
        }
    }

    /// Stores the node's records through `persister` from now on.
    pub fn set_persister(&mut self, persister: Box<dyn Persister>) {
        self.persister = Some(persister);
    }

    /// Why storing failed, if it did: the node must stop (it transmits nothing after the failure).
    pub fn persist_error(&self) -> Option<&str> {
        self.persist_error.as_deref()
    }

    /// Counters.
    pub fn stats(&self) -> DriverStats {
        self.stats
    }

    /// Links up now.
    pub fn links_up(&self) -> usize {
        self.links.values().filter(|l| l.up).count()
    }

    /// Starts advertising this node's id and scanning for others. Errors are returned: at start they are fatal.
    pub fn start(&mut self, radio: &mut dyn Radio) -> Result<(), hal::RadioError> {
        let id = self.node.node_id();
        let ad = Advertisement::new(SERVICE_UUID, id.as_bytes())?;
        radio.start_advertising(&ad)?;
        radio.start_scanning()?;
        Ok(())
    }

    /// Feeds one radio event to the node (and acts on discoveries).
    pub fn on_radio_event(&mut self, event: RadioEvent, radio: &mut dyn Radio, now: Instant) {
        match event {
            RadioEvent::Discovered {
                peer,
                advertisement,
                ..
            } => self.on_discovered(peer, &advertisement, radio, now),
            RadioEvent::LinkUp {
                link,
                peer,
                att_mtu,
                role,
            } => {
                tracing::debug!(link = link.0, %peer, att_mtu, ?role, "link up");
                if let Some(old) = self.by_peer.insert(peer, link.0) {
                    if old != link.0 {
                        // The radio keeps one link per peer; a stale pending entry is forgotten.
                        if let Some(e) = self.links.get(&old) {
                            if !e.up {
                                self.links.remove(&old);
                            }
                        }
                    }
                }
                self.links.insert(
                    link.0,
                    LinkEntry {
                        peer,
                        up: true,
                        backlog: VecDeque::new(),
                    },
                );
                self.stats.links_up = self.stats.links_up.saturating_add(1);
                self.node.link_up(LinkId(link.0), att_mtu, now);
            }
            RadioEvent::LinkDown { link, reason } => {
                if let Some(entry) = self.links.remove(&link.0) {
                    if self.by_peer.get(&entry.peer) == Some(&link.0) {
                        self.by_peer.remove(&entry.peer);
                    }
                    if !matches!(reason, LinkDownReason::LocalDisconnect) {
                        self.retry_after.insert(entry.peer, now + RECONNECT_PAUSE);
                    }
                    if entry.up {
                        tracing::debug!(link = link.0, peer = %entry.peer, ?reason, "link down");
                        self.stats.links_down = self.stats.links_down.saturating_add(1);
                        self.node.link_down(LinkId(link.0), now);
                    }
                }
            }
            RadioEvent::Packet { link, data } => {
                self.node.handle_packet(LinkId(link.0), &data, now);
            }
            RadioEvent::Writable { link } => self.flush(link.0, radio),
        }
    }

    fn on_discovered(
        &mut self,
        peer: PeerAddress,
        ad: &Advertisement,
        radio: &mut dyn Radio,
        now: Instant,
    ) {
        if ad.service_uuid() != SERVICE_UUID || ad.data() == self.node.node_id().as_bytes() {
            return;
        }
        if self.by_peer.contains_key(&peer) {
            return;
        }
        if let Some(t) = self.retry_after.get(&peer) {
            if now < *t {
                return;
            }
            self.retry_after.remove(&peer);
        }
        match radio.connect(peer) {
            Ok(link) => {
                self.stats.connects = self.stats.connects.saturating_add(1);
                self.by_peer.insert(peer, link.0);
                self.links.entry(link.0).or_insert(LinkEntry {
                    peer,
                    up: false,
                    backlog: VecDeque::new(),
                });
            }
            Err(e) => {
                self.stats.command_errors = self.stats.command_errors.saturating_add(1);
                self.retry_after.insert(peer, now + RECONNECT_PAUSE);
                tracing::debug!(%peer, error = %e, "connect refused");
            }
        }
    }

    /// Puts every packet the node has ready on the air (or in a backlog). Records come before the packets that
    /// follow them: they are stored in one batch, durably, before the next packet goes out, and before the caller
    /// publishes events. After a storage failure nothing more is transmitted.
    pub fn drain_actions(&mut self, radio: &mut dyn Radio) {
        while let Some(action) = self.node.poll_action() {
            match action {
                Action::Transmit { link, packet } => {
                    if self.flush_records() {
                        self.transmit(link.0, packet, radio);
                    } else {
                        self.stats.send_errors = self.stats.send_errors.saturating_add(1);
                    }
                }
                Action::Persist(record) => self.pending.push(record),
                other => tracing::warn!(?other, "node action this runtime does not perform"),
            }
        }
        self.flush_records();
    }

    /// Stores the pending records; false when they could not be (then, and ever after, nothing may go on air).
    fn flush_records(&mut self) -> bool {
        if self.persist_error.is_some() {
            return false;
        }
        if self.pending.is_empty() {
            return true;
        }
        let Some(persister) = self.persister.as_mut() else {
            tracing::warn!(
                records = self.pending.len(),
                "node records with no store configured; dropped"
            );
            self.pending.clear();
            return true;
        };
        match persister.persist(&self.pending) {
            Ok(()) => {
                self.stats.persist_batches = self.stats.persist_batches.saturating_add(1);
                self.stats.persist_records = self
                    .stats
                    .persist_records
                    .saturating_add(self.pending.len() as u64);
                self.pending.clear();
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot store the node's state; stopping before anything depends on it");
                self.persist_error = Some(e);
                false
            }
        }
    }

    fn transmit(&mut self, link: u32, packet: Vec<u8>, radio: &mut dyn Radio) {
        let Some(entry) = self.links.get_mut(&link) else {
            self.stats.send_errors = self.stats.send_errors.saturating_add(1);
            return;
        };
        if !entry.backlog.is_empty() {
            Self::park(entry, packet, self.backlog_limit, &mut self.stats);
            return;
        }
        match radio.send(hal::LinkId(link), &packet) {
            Ok(()) => self.stats.packets_sent = self.stats.packets_sent.saturating_add(1),
            Err(e) if e.kind() == RadioErrorKind::QueueFull => {
                Self::park(entry, packet, self.backlog_limit, &mut self.stats);
            }
            Err(e) => {
                self.stats.send_errors = self.stats.send_errors.saturating_add(1);
                tracing::debug!(link, error = %e, "packet dropped by the radio");
            }
        }
    }

    fn park(entry: &mut LinkEntry, packet: Vec<u8>, limit: usize, stats: &mut DriverStats) {
        if entry.backlog.len() >= limit {
            stats.backlog_drops = stats.backlog_drops.saturating_add(1);
            return;
        }
        entry.backlog.push_back(packet);
        stats.packets_backlogged = stats.packets_backlogged.saturating_add(1);
    }

    fn flush(&mut self, link: u32, radio: &mut dyn Radio) {
        let Some(entry) = self.links.get_mut(&link) else {
            return;
        };
        while let Some(packet) = entry.backlog.pop_front() {
            match radio.send(hal::LinkId(link), &packet) {
                Ok(()) => self.stats.packets_sent = self.stats.packets_sent.saturating_add(1),
                Err(e) if e.kind() == RadioErrorKind::QueueFull => {
                    entry.backlog.push_front(packet);
                    return;
                }
                Err(_) => {
                    self.stats.send_errors = self.stats.send_errors.saturating_add(1);
                }
            }
        }
    }

    /// Runs the node's timers if due.
    pub fn on_time(&mut self, now: Instant) {
        if self.node.poll_timeout().is_some_and(|t| t <= now) {
            self.node.handle_timeout(now);
        }
    }

    /// Closes every link on the radio (used at shutdown, after the node said goodbye).
    pub fn disconnect_all(&mut self, radio: &mut dyn Radio) {
        let _ = radio.stop_advertising();
        let _ = radio.stop_scanning();
        for link in self.links.keys() {
            let _ = radio.disconnect(hal::LinkId(*link));
        }
    }
}
