//! `UdpRadio`: one meshnode radio per process over one non-blocking UDP socket, behaving like a BLE radio: beacons
//! in place of advertising, links with an ATT MTU and a role, bounded paced send queues, keepalive timeouts.
//!
//! Invariant: every datagram read is counted once in `UdpStats::accepted` or in one `dropped_*` counter and never
//! panics the radio; every `LinkId` handed out (by `connect` or in a `LinkUp`) ends with exactly one `LinkDown`;
//! packets of one link direction are delivered in order or dropped (never reordered); all timer logic runs at a
//! `now` passed in, which never goes back.
//!
//! # Addresses
//!
//! IPv4 only. A peer's [`PeerAddress`] is its IPv4 address then its port, big-endian ([`peer_address`],
//! [`socket_address`]): the address its datagrams come from. Neighbours come from the static peer list and, when
//! [`UdpConfig::broadcast`] is set, from beacons broadcast on the subnet ([`subnet_broadcast`]); to hear broadcasts
//! a node binds `0.0.0.0:PORT` with the same port as the others. Loopback cannot broadcast: loopback runs list
//! every node in `static_peers` (a node's own address there is harmless: its own datagrams are dropped).
//!
//! # Datagram protocol, version 1
//!
//! `mesh/PROTOCOL.md`, Appendix A, specifies this protocol for other implementations (with meshnode's service
//! UUID, beacon data and timer defaults); this section is the radio's own account of it.
//!
//! Every datagram is a 14-byte header then a body; integers are big-endian.
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `"MNUD"` ([`wire::MAGIC`]) |
//! | 4 | version, 1 |
//! | 5 | type |
//! | 6..14 | sender instance: a random `u64` fresh for every radio (tells restarts apart, breaks ties) |
//!
//! | type | body | meaning |
//! |---|---|---|
//! | 1 BEACON | mtu u16, service uuid u128, len u8, data\[len ≤ 10\] | "I advertise this and offer this ATT MTU" |
//! | 2 CONNECT | src_link u32, mtu u16 | "open a link to my end `src_link`" (retried every keepalive interval) |
//! | 3 ACCEPT | dst_link u32, src_link u32, mtu u16 | "your `dst_link` is up, my end is `src_link`, ATT MTU `mtu`" |
//! | 4 REJECT | dst_link u32 | "no link for your connect `dst_link`" |
//! | 5 DATA | dst_link u32, seq u32, packet\[1..=mtu-3\] | one packet for the receiver's `dst_link` |
//! | 6 KEEPALIVE | dst_link u32 | "link `dst_link` is alive" (sent after a keepalive interval without traffic) |
//! | 7 DISCONNECT | src_link u32 | "I closed my end `src_link`" (link or connect in progress) |
//!
//! Rules:
//!
//! - **Hostile input.** Wrong magic, another version, an unknown type, a truncated or over-long datagram, a field
//!   out of range, a link id this radio does not have, or a sender that is not that link's peer (address and
//!   instance): the datagram is dropped and counted in [`UdpStats`]; nothing else happens.
//! - **Discovery.** While advertising, a beacon goes every `beacon_interval` to each static peer and to the
//!   broadcast address. While scanning, each beacon heard is one `Discovered` with rssi [`RSSI`].
//! - **Connect.** The acceptor takes a CONNECT when it advertises and has a free link slot, creates its end
//!   (role `Peripheral`, ATT MTU = min of both offers), raises `LinkUp` and answers ACCEPT; the initiator's end
//!   comes up (role `Central`) on the ACCEPT. Otherwise it answers REJECT (`ConnectFailed`). A connect unanswered
//!   for `keepalive_timeout` fails with `ConnectFailed`. A repeated CONNECT is answered with the same ACCEPT.
//! - **One link per pair.** `connect` to a peer this radio already has a link with fails at once (`LinkDown`
//!   `ConnectFailed` on the returned id); a CONNECT from a peer already linked is rejected. When both connect at
//!   once, the radio with the lower instance id stays `Central`; the other's connect ends in `ConnectFailed` and
//!   it accepts the winner's CONNECT (advertising or not), raising `LinkUp` as `Peripheral` first. A CONNECT from a
//!   linked peer's address with a new instance means the peer restarted: the old link goes down (`Timeout`).
//! - **Data.** Sequence numbers count from 0 per link direction. A packet older than the last delivered is dropped
//!   (`dropped_out_of_order`); a gap is counted (`packets_missing`) and delivery goes on: in order or not at all.
//! - **Link down.** Nothing heard on a link for `keepalive_timeout` → `Timeout`; a DISCONNECT → `RemoteDisconnect`;
//!   `disconnect` → `LocalDisconnect`. A radio that drops a link itself (local or timeout) sends DISCONNECT.
//!   Dropping a `UdpRadio` sends nothing, like a crash: its peers see `Timeout`; disconnect first to close cleanly.
//!
//! # Queues and pacing
//!
//! Each link has a send queue of `queue_capacity` packets that drains one packet per `tx_interval`; a packet sent
//! to an idle link leaves at once. A `send` to a full queue fails with `QueueFull` and a `Writable` follows when a
//! packet leaves. If the socket cannot take a data datagram now it stays queued and is retried.
//!
//! # Time and driving it from an async runtime
//!
//! All timer logic runs in [`UdpRadio::process`] at a `now` the caller passes in (clamped so it never goes back);
//! [`Radio::poll_event`] is [`UdpRadio::poll_event_at`] with `Instant::now()`, and commands use the later of the
//! radio's time and the real clock. Tests drive `poll_event_at` with instants in the future to fire timers
//! without sleeping. A tokio runtime waits on the socket's readiness and the next deadline, never busy-polling:
//!
//! ```text
//! let fd = AsyncFd::with_interest(radio.as_raw_fd(), Interest::READABLE)?; // RawFd: AsRawFd
//! loop {
//!     while let Some(event) = radio.poll_event() { node.handle(event, &mut radio); }
//!     let deadline = radio.next_deadline(); // None: only the socket or a command can wake us
//!     tokio::select! {
//!         guard = fd.readable() => guard?.clear_ready(), // then loop: poll_event reads the socket dry
//!         _ = sleep_until_opt(deadline) => {}
//!         cmd = commands.recv() => node.command(cmd, &mut radio),
//!     }
//! }
//! ```
//!
//! `poll_event` reads at most a bounded batch per call and stops while the event queue is full; `next_deadline`
//! then returns the radio's current time so the loop polls again at once instead of waiting for readiness.

mod config;
mod iface;
mod receive;
pub mod wire;

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

pub use config::{
    peer_address, socket_address, subnet_broadcast, UdpConfig, UdpStats, MAX_INTERVAL,
    MAX_STATIC_PEERS,
};
pub use iface::{interface_ipv4, InterfaceIpv4};

use crate::{
    gatt_payload_len, Advertisement, LinkDownReason, LinkId, PeerAddress, Radio, RadioError,
    RadioEvent,
};
use wire::Message;

/// The signal strength every `Discovered` reports, in dBm: UDP has no radio signal.
pub const RSSI: i8 = -50;

/// Datagrams read per `process` call at most, so one busy socket cannot starve the caller.
const READ_BUDGET: usize = 64;

/// How long a data datagram the socket refused waits before it is retried.
const RETRY_BLOCKED: Duration = Duration::from_millis(1);

/// Where a link stands.
#[derive(Clone, Copy, Debug)]
enum State {
    /// CONNECT sent, no ACCEPT yet.
    Connecting {
        deadline: Instant,
        next_retry: Instant,
    },
    Up,
}

/// One link as this radio knows it.
#[derive(Debug)]
struct Link {
    peer: SocketAddrV4,
    /// The peer radio's instance; known once the link is up.
    peer_instance: Option<u64>,
    /// The peer's id for this link; known once the link is up.
    remote: Option<u32>,
    state: State,
    att_mtu: u16,
    last_heard: Instant,
    last_sent: Instant,
    tx_seq: u32,
    rx_next: u32,
    queue: VecDeque<Vec<u8>>,
    next_tx: Instant,
    writable_wanted: bool,
}

impl Link {
    /// A link to `peer` in `state`, with fresh sequence numbers, an empty queue and its clocks at `now`.
    fn new(
        peer: SocketAddrV4,
        peer_instance: Option<u64>,
        remote: Option<u32>,
        state: State,
        att_mtu: u16,
        now: Instant,
    ) -> Self {
        Link {
            peer,
            peer_instance,
            remote,
            state,
            att_mtu,
            last_heard: now,
            last_sent: now,
            tx_seq: 0,
            rx_next: 0,
            queue: VecDeque::new(),
            next_tx: now,
            writable_wanted: false,
        }
    }
}

/// A meshnode radio over one UDP socket; see the module docs for the protocol and how to drive it.
#[derive(Debug)]
pub struct UdpRadio {
    config: UdpConfig,
    socket: UdpSocket,
    local: SocketAddrV4,
    instance: u64,
    now: Instant,
    scanning: bool,
    advertising: Option<Advertisement>,
    next_beacon: Instant,
    static_peers: Vec<SocketAddrV4>,
    broadcast: Option<SocketAddrV4>,
    links: BTreeMap<u32, Link>,
    next_link_id: u32,
    events: VecDeque<RadioEvent>,
    stats: UdpStats,
    more_input: bool,
    rx_buf: Vec<u8>,
    tx_buf: Vec<u8>,
    scratch: Vec<u32>,
}

/// Only IPv4 peers are accepted by validation; others would be a bug, mapped to an unusable address.
fn v4(addr: SocketAddr) -> Option<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Some(a),
        SocketAddr::V6(_) => None,
    }
}

/// A random instance id, different for every radio of every process.
fn fresh_instance() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(t);
    h.finish()
}

impl UdpRadio {
    /// Validates `config`, binds its address and returns an idle radio (not scanning, not advertising).
    ///
    /// Fails with `InvalidArgument` for a bad configuration, `Unavailable` when the address cannot be bound (in
    /// use, not local, privileged), `Backend` when the socket cannot be set up.
    pub fn new(config: UdpConfig) -> Result<Self, RadioError> {
        config.validate()?;
        let bind = config.bind;
        let socket = UdpSocket::bind(bind).map_err(|e| bind_error(bind, &e))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| RadioError::Backend(Box::new(e)))?;
        if config.broadcast.is_some() {
            socket
                .set_broadcast(true)
                .map_err(|e| RadioError::Backend(Box::new(e)))?;
        }
        let local = socket.local_addr().ok().and_then(v4).ok_or_else(|| {
            RadioError::Unavailable(format!("{bind} did not bind an IPv4 socket"))
        })?;
        let now = Instant::now();
        Ok(UdpRadio {
            static_peers: config.static_peers.iter().filter_map(|p| v4(*p)).collect(),
            broadcast: config.broadcast.and_then(v4),
            config,
            socket,
            local,
            instance: fresh_instance(),
            now,
            scanning: false,
            advertising: None,
            next_beacon: now,
            links: BTreeMap::new(),
            next_link_id: 0,
            events: VecDeque::new(),
            stats: UdpStats::default(),
            more_input: false,
            rx_buf: vec![0; wire::MAX_DATAGRAM + 1],
            tx_buf: Vec::with_capacity(wire::MAX_DATAGRAM),
            scratch: Vec::new(),
        })
    }

    /// The address the socket is bound to (with the port picked when the configuration said 0).
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    /// This radio's instance id, carried in every datagram; the lower one wins a simultaneous connect.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// The configuration the radio was built with.
    pub fn config(&self) -> &UdpConfig {
        &self.config
    }

    /// The radio's counters.
    pub fn stats(&self) -> &UdpStats {
        &self.stats
    }

    /// Events waiting to be polled.
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// The radio's time: the latest `now` it has run at.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Adds `addr` to the static peer list (beacons go there from the next beacon on); already listed is harmless.
    ///
    /// Fails with `InvalidArgument` for an address without port, IPv6, or a full list.
    pub fn add_static_peer(&mut self, addr: SocketAddr) -> Result<(), RadioError> {
        let mut peers = self.config.static_peers.clone();
        if peers.contains(&addr) {
            return Ok(());
        }
        peers.push(addr);
        UdpConfig {
            static_peers: peers,
            ..UdpConfig::default()
        }
        .validate()?;
        self.config.static_peers.push(addr);
        self.static_peers.extend(v4(addr));
        Ok(())
    }

    /// Moves the radio's time to `now` (if later) and returns it.
    fn at(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }

    /// The radio's time brought up to the real clock, for commands.
    fn clock(&mut self) -> Instant {
        self.at(Instant::now())
    }

    /// Reads what the socket holds (a bounded batch) and runs every timer due at `now`: beacons, connect retries
    /// and failures, keepalives, timeouts, queue drains.
    pub fn process(&mut self, now: Instant) {
        let now = self.at(now);
        self.read_socket(now);
        self.run_timers(now);
    }

    /// The next ready event after processing at `now` if none was waiting; the injectable-time form of
    /// [`Radio::poll_event`].
    pub fn poll_event_at(&mut self, now: Instant) -> Option<RadioEvent> {
        if self.events.is_empty() {
            self.process(now);
        }
        self.events.pop_front()
    }

    /// When [`UdpRadio::process`] next has timer work; the radio's own time when events are waiting or the socket
    /// was not read dry; `None` when only a datagram or a command can make anything happen.
    pub fn next_deadline(&self) -> Option<Instant> {
        if !self.events.is_empty() || self.more_input {
            return Some(self.now);
        }
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if self.advertising.is_some() {
            consider(self.next_beacon);
        }
        for l in self.links.values() {
            match l.state {
                State::Connecting {
                    deadline,
                    next_retry,
                } => consider(deadline.min(next_retry)),
                State::Up => {
                    consider(l.last_heard + self.config.keepalive_timeout);
                    consider(l.last_sent + self.config.keepalive_interval);
                    if !l.queue.is_empty() {
                        consider(l.next_tx);
                    }
                }
            }
        }
        next
    }

    /// Queues a `Packet` or `Discovered` unless the event queue is full (then counts it); true if queued.
    fn push_droppable(&mut self, event: RadioEvent) -> bool {
        if self.events.len() >= self.config.event_queue_capacity {
            self.stats.events_dropped += 1;
            return false;
        }
        self.events.push_back(event);
        true
    }

    fn alloc_id(&mut self) -> u32 {
        // Ids are not reused: 2^32 links outlive any process.
        let id = self.next_link_id;
        self.next_link_id = self.next_link_id.wrapping_add(1);
        id
    }

    /// Removes link `id`, counts its queued packets lost and raises `LinkDown`; `notify` tells the peer.
    fn tear_down(&mut self, id: u32, reason: LinkDownReason, notify: bool) {
        let Some(l) = self.links.remove(&id) else {
            return;
        };
        self.stats.packets_lost_link_down += l.queue.len() as u64;
        self.stats.links_down += 1;
        if notify {
            self.send_message(l.peer, &Message::Disconnect { src_link: id });
        }
        self.events.push_back(RadioEvent::LinkDown {
            link: LinkId(id),
            reason,
        });
    }

    /// Encodes and sends one control datagram; a refusal is counted, not retried.
    fn send_message(&mut self, to: SocketAddrV4, message: &Message) -> bool {
        wire::encode(self.instance, message, &mut self.tx_buf);
        match self.socket.send_to(&self.tx_buf, to) {
            Ok(_) => true,
            Err(_) => {
                self.stats.send_errors += 1;
                false
            }
        }
    }

    fn run_timers(&mut self, now: Instant) {
        if let Some(advertisement) = self.advertising {
            if now >= self.next_beacon {
                self.next_beacon = now + self.config.beacon_interval;
                let beacon = Message::Beacon {
                    att_mtu: self.config.att_mtu,
                    advertisement,
                };
                let targets: Vec<SocketAddrV4> = self
                    .static_peers
                    .iter()
                    .copied()
                    .chain(self.broadcast)
                    .collect();
                for to in targets {
                    self.send_message(to, &beacon);
                }
            }
        }
        let mut ids = core::mem::take(&mut self.scratch);
        ids.clear();
        ids.extend(self.links.keys().copied());
        let (interval, timeout) = (
            self.config.keepalive_interval,
            self.config.keepalive_timeout,
        );
        for &id in &ids {
            let Some(l) = self.links.get_mut(&id) else {
                continue;
            };
            match l.state {
                State::Connecting {
                    deadline,
                    next_retry,
                } => {
                    if now >= deadline {
                        self.tear_down(id, LinkDownReason::ConnectFailed, true);
                    } else if now >= next_retry {
                        l.state = State::Connecting {
                            deadline,
                            next_retry: now + interval,
                        };
                        let (peer, att_mtu) = (l.peer, self.config.att_mtu);
                        self.send_message(
                            peer,
                            &Message::Connect {
                                src_link: id,
                                att_mtu,
                            },
                        );
                    }
                }
                State::Up => {
                    if now.saturating_duration_since(l.last_heard) >= timeout {
                        self.tear_down(id, LinkDownReason::Timeout, true);
                        continue;
                    }
                    self.drain(id, now);
                    let Some(l) = self.links.get_mut(&id) else {
                        continue;
                    };
                    if now.saturating_duration_since(l.last_sent) >= interval {
                        l.last_sent = now;
                        let peer = l.peer;
                        if let Some(dst_link) = l.remote {
                            self.send_message(peer, &Message::Keepalive { dst_link });
                        }
                    }
                }
            }
        }
        self.scratch = ids;
    }

    /// Sends the packets of link `id` that are due at `now`, raising `Writable` when a refused `send` has room.
    fn drain(&mut self, id: u32, now: Instant) {
        let tx_interval = self.config.tx_interval;
        loop {
            let Some(l) = self.links.get_mut(&id) else {
                return;
            };
            let (Some(dst_link), State::Up) = (l.remote, l.state) else {
                return;
            };
            if l.next_tx > now {
                return;
            }
            let Some(payload) = l.queue.pop_front() else {
                return;
            };
            let message = Message::Data {
                dst_link,
                seq: l.tx_seq,
                payload,
            };
            wire::encode(self.instance, &message, &mut self.tx_buf);
            match self.socket.send_to(&self.tx_buf, l.peer) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.stats.send_errors += 1;
                    if let Message::Data { payload, .. } = message {
                        l.queue.push_front(payload);
                    }
                    l.next_tx = now + RETRY_BLOCKED.max(tx_interval);
                    return;
                }
                // Any other error loses the packet as the air would; the peer sees a gap.
                sent => {
                    if sent.is_err() {
                        self.stats.send_errors += 1;
                    }
                    l.tx_seq = l.tx_seq.wrapping_add(1);
                    l.last_sent = now;
                    l.next_tx += tx_interval;
                    if core::mem::take(&mut l.writable_wanted) {
                        self.events
                            .push_back(RadioEvent::Writable { link: LinkId(id) });
                    }
                }
            }
        }
    }
}

/// A bind failure, saying what to do about it.
fn bind_error(addr: SocketAddr, e: &io::Error) -> RadioError {
    RadioError::Unavailable(match e.kind() {
        io::ErrorKind::AddrInUse => {
            format!("address {addr} is in use: pick another port with --udp-bind (or [udp] bind) or stop the process holding it")
        }
        io::ErrorKind::AddrNotAvailable => format!(
            "address {addr} is not an address of this machine: listen on one of its addresses or on 0.0.0.0"
        ),
        io::ErrorKind::PermissionDenied => {
            format!("binding {addr} is not permitted: use a port above 1023")
        }
        _ => format!("cannot bind {addr}: {e}"),
    })
}

#[cfg(unix)]
impl std::os::fd::AsRawFd for UdpRadio {
    /// The socket's descriptor, to wait for readability (e.g. tokio `AsyncFd`); do not read from it directly.
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.socket.as_raw_fd()
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for UdpRadio {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl Radio for UdpRadio {
    fn start_scanning(&mut self) -> Result<(), RadioError> {
        self.scanning = true;
        Ok(())
    }

    fn stop_scanning(&mut self) -> Result<(), RadioError> {
        self.scanning = false;
        Ok(())
    }

    fn start_advertising(&mut self, advertisement: &Advertisement) -> Result<(), RadioError> {
        let now = self.clock();
        self.advertising = Some(*advertisement);
        self.next_beacon = now;
        Ok(())
    }

    fn stop_advertising(&mut self) -> Result<(), RadioError> {
        self.advertising = None;
        Ok(())
    }

    fn connect(&mut self, peer: PeerAddress) -> Result<LinkId, RadioError> {
        let now = self.clock();
        let addr = socket_address(peer);
        let ip = addr.ip();
        if addr.port() == 0 || ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
            return Err(RadioError::InvalidArgument(format!(
                "{peer} ({addr}) is not a UDP endpoint: connect to an address a Discovered event reported"
            )));
        }
        if addr == self.local {
            return Err(RadioError::InvalidArgument(format!(
                "{addr} is this radio's own address"
            )));
        }
        if self.links.values().any(|l| l.peer == addr) {
            // One link per pair: this connect fails at once.
            let id = self.alloc_id();
            self.stats.links_down += 1;
            self.events.push_back(RadioEvent::LinkDown {
                link: LinkId(id),
                reason: LinkDownReason::ConnectFailed,
            });
            return Ok(LinkId(id));
        }
        if self.links.len() >= self.config.max_links {
            return Err(RadioError::TooManyLinks {
                max: self.config.max_links,
            });
        }
        let id = self.alloc_id();
        let (interval, timeout, att_mtu) = (
            self.config.keepalive_interval,
            self.config.keepalive_timeout,
            self.config.att_mtu,
        );
        self.links.insert(
            id,
            Link::new(
                addr,
                None,
                None,
                State::Connecting {
                    deadline: now + timeout,
                    next_retry: now + interval,
                },
                att_mtu,
                now,
            ),
        );
        self.send_message(
            addr,
            &Message::Connect {
                src_link: id,
                att_mtu,
            },
        );
        Ok(LinkId(id))
    }

    fn disconnect(&mut self, link: LinkId) -> Result<(), RadioError> {
        if !self.links.contains_key(&link.0) {
            return Err(RadioError::NoSuchLink(link));
        }
        self.tear_down(link.0, LinkDownReason::LocalDisconnect, true);
        Ok(())
    }

    fn send(&mut self, link: LinkId, packet: &[u8]) -> Result<(), RadioError> {
        let now = self.clock();
        let capacity = self.config.queue_capacity;
        let Some(l) = self
            .links
            .get_mut(&link.0)
            .filter(|l| matches!(l.state, State::Up))
        else {
            return Err(RadioError::NoSuchLink(link));
        };
        let max = gatt_payload_len(l.att_mtu);
        crate::radio::check_packet(link, packet, max)?;
        if l.queue.len() >= capacity {
            l.writable_wanted = true;
            self.stats.rejected_queue_full += 1;
            return Err(RadioError::QueueFull { link, capacity });
        }
        if l.queue.is_empty() && l.next_tx < now {
            // An idle link earns no burst credit.
            l.next_tx = now;
        }
        l.queue.push_back(packet.to_vec());
        self.stats.packets_sent += 1;
        self.drain(link.0, now);
        Ok(())
    }

    fn poll_event(&mut self) -> Option<RadioEvent> {
        self.poll_event_at(Instant::now())
    }
}
