//! Real Bluetooth LE (feature `ble`): [`BleRadio`] implements [`crate::Radio`] with btleplug in the central role
//! and, on Linux, bluer in the peripheral role (LE advertisement + a GATT service), both over BlueZ's D-Bus API.
//!
//! Invariant: nothing here blocks or panics on what D-Bus or the air delivers. Every start-up call is bounded by
//! [`BleConfig::startup_timeout`]; every queue is bounded and counts what it drops ([`BleStats`]); every `LinkId`
//! handed out (by `connect` or in a `LinkUp`) gets exactly one `LinkDown`, and link lifecycle events are never
//! dropped (only `Discovered` and `Packet` are, when the event queue is full).
//!
//! # Driving it from tokio
//!
//! Construction is async: `BleRadio::new(config).await` must run inside the node's tokio runtime (current-thread
//! or multi-thread); the radio spawns its tasks there with `tokio::spawn`, so that runtime must keep running while
//! the radio lives. The trait methods are plain non-blocking calls (they never await). Tasks push events into a
//! bounded queue and signal [`BleRadio::event_signal`] (a `tokio::sync::Notify`, which keeps one permit so no
//! wake-up is lost); the runtime loop is:
//!
//! ```ignore
//! let signal = radio.event_signal();
//! loop {
//!     while let Some(event) = radio.poll_event() { /* feed the node; send its packets with radio.send */ }
//!     tokio::select! { _ = signal.notified() => {}, _ = tokio::time::sleep(node_timeout) => {} }
//! }
//! ```
//!
//! Dropping the radio aborts its tasks, unregisters the advertisement and the GATT application and leaves BlueZ
//! connections to BlueZ.
//!
//! # Without Bluetooth
//!
//! With no D-Bus system bus, no `bluetoothd` (no `org.bluez` on the bus), a `bluetoothd` that never answers, or no
//! adapter, [`BleRadio::new`] fails within `startup_timeout` (5 s by default) with a [`BleError`] that says what is
//! missing and suggests `--radio udp` or `meshnode demo`; its [`BleError::kind`] is
//! [`RadioErrorKind::Unavailable`]. (Unbounded, btleplug would wait 30 s and
//! bluer up to 120 s for a name owner that never answers.)
//!
//! # On the air
//!
//! - **Peripheral (bluer, Linux only).** At start-up the radio registers a GATT application with one primary
//!   service ([`BleConfig::service_uuid`]) holding one characteristic ([`BleConfig::characteristic_uuid`]):
//!   write-without-response (and write) for centrals' packets, notify through BlueZ's `AcquireNotify` socket
//!   (no D-Bus call per notification), read (returns this node's advertised id). Centrals' writes arrive as one
//!   D-Bus `WriteValue` call each, on purpose: `bluetoothd` keeps a single `AcquireWrite` socket per server
//!   characteristic, shared by every central and opened with the first writer's address and MTU
//!   (`chrc_write_cb` in BlueZ's `src/gatt-database.c`), so on that socket a value no longer says which central
//!   sent it, a larger-MTU central's values would be cut to the first one's MTU, and disconnections could not be
//!   matched to links. `WriteValue` carries the device and its MTU with every value. `start_advertising` registers an
//!   LE advertisement with the service UUID and the node id as service data.
//! - **Central (btleplug, every platform).** Scanning uses a service-UUID filter and a duty cycle
//!   ([`BleConfig::scan_window`] on, the rest of [`BleConfig::scan_interval`] off). `connect` connects, discovers
//!   services, reads the ATT MTU, subscribes to notifications (they arrive as D-Bus `PropertiesChanged` on the
//!   characteristic's `Value`, through btleplug; the central does not use `AcquireNotify`) and writes a hello. On
//!   Linux it first asks BlueZ for an `AcquireWrite` socket (through bluer) and writes every value there; the
//!   link's MTU is bounded so that every packet fits one socket message (bluer keeps 5 bytes of BlueZ's MTU in
//!   reserve), so no packet takes the D-Bus way and overtakes or trails the socket's. Without a socket (BlueZ
//!   refuses, or its MTU is below meshnode's minimum) each value goes through D-Bus `WriteValue` without response,
//!   counted in [`BleStats::write_fallbacks`]. BlueZ closing the socket takes the link down at once, as a drop.
//! - **Framing.** BlueZ's GATT server cannot address a notification to one central, so every value carries a
//!   4-byte link token chosen by the central (module `wire`): the runtime sees an ATT MTU 4 below the negotiated
//!   one, a central link with an `AcquireWrite` socket at most 6 below the socket's MTU as BlueZ reports it (241
//!   for 247), and links that negotiate less than 27 are refused.
//! - **One link per neighbour.** When two nodes connect to each other, the one whose advertised id (the
//!   advertisement's service data) is smaller stays central; the other link is closed with a token-only "close"
//!   value, without dropping the BLE connection both links share. Equal or empty ids keep both links.
//! - **Limits and reconnects.** [`BleConfig::max_links`] bounds central plus peripheral links (`connect` fails
//!   with `TooManyLinks`; extra hellos are closed). A central link that drops without being asked to (BlueZ
//!   reports the disconnection, a write fails, BlueZ closes the write socket, the notification stream ends) goes
//!   down with `Timeout` and is reconnected in the background with exponential backoff ([`BleConfig::reconnect_backoff`], up to
//!   [`BleConfig::reconnect_attempts`] tries); a success is reported as a fresh `LinkUp`, failures are only counted.
//!   A `connect` to a peer that is backing off starts after the remaining backoff.
//!
//! # macOS and Windows
//!
//! There bluer and libdbus are not built: the radio is central only (btleplug on CoreBluetooth / WinRT) and
//! `start_advertising` fails with `Unavailable`. This builds in principle but has not been compiled or run on
//! those platforms.
//!
//! # What stays unverified without a radio
//!
//! The tests run against python-dbusmock's `bluez5` template on a private bus, so they check our D-Bus
//! conversation with BlueZ, not BlueZ or the air: real advertising and scanning (duty cycle, RSSI, service data
//! reaching a scanner through a controller), connection establishment and supervision timeouts, the MTU BlueZ
//! really negotiates, `AcquireWrite` / `AcquireNotify` sockets opened by a real `bluetoothd` (the fake's
//! `AcquireWrite` is a socket pair the test reads, so what a real `bluetoothd` reports as the socket's MTU, the
//! largest value it then passes on without cutting it, and when it closes the socket are taken from BlueZ's
//! documentation; server-side `AcquireNotify` fan-out to several centrals in particular), throughput (the central
//! still receives each notification as a D-Bus signal, and the peripheral each write as a D-Bus call), two nodes
//! connecting to each other over one shared ACL connection, adapter power cycles, and any behaviour on macOS /
//! Windows.

mod central;
#[cfg(target_os = "linux")]
mod peripheral;
mod wire;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::AbortHandle;

use crate::{
    gatt_payload_len, Advertisement, LinkDownReason, LinkId, PeerAddress, Radio, RadioError,
    RadioErrorKind, RadioEvent, Role,
};

pub use wire::TOKEN_LEN;

/// meshnode's GATT service UUID, advertised by every node: `6d657368-6e6f-6465-8000-00000000b1e0`
/// ("meshnode" in ASCII, then a fixed tail).
pub const MESHNODE_SERVICE_UUID: u128 = 0x6d65_7368_6e6f_6465_8000_0000_0000_b1e0;

/// The one characteristic in that service that packets travel on: `6d657368-6e6f-6465-8000-00000000b1e1`.
pub const MESHNODE_CHARACTERISTIC_UUID: u128 = 0x6d65_7368_6e6f_6465_8000_0000_0000_b1e1;

/// Settings of a [`BleRadio`].
#[derive(Clone, Debug)]
pub struct BleConfig {
    /// BlueZ adapter to use (`"hci0"`); `None`: the first one BlueZ lists.
    pub adapter: Option<String>,
    /// Service UUID to scan for and serve.
    pub service_uuid: u128,
    /// Characteristic UUID packets travel on.
    pub characteristic_uuid: u128,
    /// Bound on every start-up call (bus connection, adapter lookup, GATT registration).
    pub startup_timeout: Duration,
    /// Bound on connecting, discovering services and subscribing to one peer.
    pub connect_timeout: Duration,
    /// Bound on one D-Bus write or notification.
    pub io_timeout: Duration,
    /// Most links (central plus peripheral) at once.
    pub max_links: usize,
    /// Packets each link's send queue holds before `send` fails with `QueueFull`.
    pub queue_capacity: usize,
    /// `Discovered` and `Packet` events held before new ones are dropped (counted).
    pub event_capacity: usize,
    /// Scan duty cycle: scan for `scan_window` out of every `scan_interval` (equal: scan continuously).
    pub scan_interval: Duration,
    /// See `scan_interval`; clamped to it.
    pub scan_window: Duration,
    /// First delay before reconnecting a dropped central link; doubles per failed try, capped at 64 times.
    pub reconnect_backoff: Duration,
    /// Background reconnect tries after a drop (0: never reconnect on our own).
    pub reconnect_attempts: u32,
}

impl Default for BleConfig {
    fn default() -> Self {
        BleConfig {
            adapter: None,
            service_uuid: MESHNODE_SERVICE_UUID,
            characteristic_uuid: MESHNODE_CHARACTERISTIC_UUID,
            startup_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(2),
            max_links: 7,
            queue_capacity: 16,
            event_capacity: 1024,
            scan_interval: Duration::from_secs(2),
            scan_window: Duration::from_secs(1),
            reconnect_backoff: Duration::from_millis(500),
            reconnect_attempts: 5,
        }
    }
}

/// Why the Bluetooth LE radio could not start or failed; each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BleError {
    /// No D-Bus system bus to reach BlueZ on.
    #[error("no D-Bus system bus ({0}); Bluetooth LE needs BlueZ on the system bus: start dbus and bluetoothd, or run without Bluetooth with `--radio udp` or `meshnode demo`")]
    NoSystemBus(String),
    /// The bus has no `org.bluez` (bluetoothd not running).
    #[error("BlueZ (bluetoothd) is not running on the system bus ({0}); start bluetoothd, or run without Bluetooth with `--radio udp` or `meshnode demo`")]
    NoBluez(String),
    /// BlueZ did not answer in time.
    #[error("BlueZ did not answer {what} within {secs:.1} s; check that bluetoothd is healthy, or run without Bluetooth with `--radio udp` or `meshnode demo`")]
    NotAnswering {
        /// The call that timed out.
        what: &'static str,
        /// The timeout in seconds.
        secs: f64,
    },
    /// BlueZ lists no (matching) adapter.
    #[error("no Bluetooth adapter{0}; plug one in or power it on (`bluetoothctl power on`), or run without Bluetooth with `--radio udp` or `meshnode demo`")]
    NoAdapter(String),
    /// BlueZ or D-Bus refused a call.
    #[error("Bluetooth backend call {what} failed: {detail}")]
    Backend {
        /// The call.
        what: &'static str,
        /// What the backend said.
        detail: String,
    },
}

impl BleError {
    /// What the runtime should do: `Unavailable` when Bluetooth is missing, `Backend` when a call failed.
    pub fn kind(&self) -> RadioErrorKind {
        match self {
            BleError::Backend { .. } => RadioErrorKind::Backend,
            _ => RadioErrorKind::Unavailable,
        }
    }

    /// Classifies a failed start-up call from its message (btleplug and bluer only give strings for these).
    pub(crate) fn classify(what: &'static str, detail: String) -> BleError {
        let d = detail.to_ascii_lowercase();
        if d.contains("system_bus_socket")
            || d.contains("failed to connect to socket")
            || d.contains("dbus_system_bus_address")
            || d.contains("no such file or directory")
        {
            BleError::NoSystemBus(detail)
        } else if d.contains("serviceunknown") || d.contains("was not provided by any") {
            BleError::NoBluez(detail)
        } else {
            BleError::Backend { what, detail }
        }
    }
}

impl From<BleError> for RadioError {
    fn from(e: BleError) -> Self {
        match e.kind() {
            RadioErrorKind::Unavailable => RadioError::Unavailable(e.to_string()),
            _ => RadioError::Backend(Box::new(e)),
        }
    }
}

/// Runs a start-up call bounded by `limit`; a timeout becomes [`BleError::NotAnswering`].
pub(crate) async fn bounded<T, E: std::fmt::Display>(
    what: &'static str,
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, BleError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(BleError::classify(what, e.to_string())),
        Err(_) => Err(BleError::NotAnswering {
            what,
            secs: limit.as_secs_f64(),
        }),
    }
}

/// Counters of what the radio dropped, refused or worked around; a snapshot from [`BleRadio::stats`].
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BleStats {
    /// `Discovered` / `Packet` events dropped because the event queue was full.
    pub events_dropped: u64,
    /// Values on the characteristic shorter than a token, or for a link we do not know.
    pub values_ignored: u64,
    /// Notifications that carried another central's token (the peripheral notifies every central).
    pub foreign_notifications: u64,
    /// Packets that could not be notified because no central had acquired the notify socket.
    pub notify_without_subscriber: u64,
    /// Central writes that went through D-Bus `WriteValue` (one per value) because the link has no `AcquireWrite`
    /// socket (BlueZ refused it, or its MTU was below meshnode's minimum).
    pub write_fallbacks: u64,
    /// Writes or notifications that failed (the link is then taken down).
    pub io_failures: u64,
    /// Background reconnect tries started.
    pub reconnect_attempts: u64,
    /// Hellos closed by the connection limit or the one-link-per-neighbour rule.
    pub hellos_refused: u64,
    /// Advertisement registrations that failed.
    pub advertise_failures: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    events_dropped: AtomicU64,
    values_ignored: AtomicU64,
    foreign_notifications: AtomicU64,
    notify_without_subscriber: AtomicU64,
    write_fallbacks: AtomicU64,
    io_failures: AtomicU64,
    reconnect_attempts: AtomicU64,
    hellos_refused: AtomicU64,
    advertise_failures: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// How a link's task should end.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stop {
    /// Send the token-only close value to the peer.
    pub send_close: bool,
    /// Also drop the BLE connection (central role; only when no other link uses it).
    pub ble_disconnect: bool,
}

/// One link (or connect attempt) in the table.
pub(crate) struct LinkEntry {
    pub peer: PeerAddress,
    pub role: Role,
    pub token: [u8; TOKEN_LEN],
    pub up: bool,
    /// False for a background reconnect nobody has been told of: it ends without a `LinkDown`.
    pub announced: bool,
    pub max_payload: usize,
    pub tx: Option<mpsc::Sender<Vec<u8>>>,
    pub writable_wanted: bool,
    pub peer_id: Vec<u8>,
    pub stop: Option<oneshot::Sender<Stop>>,
}

/// What the radio knows of a peer it heard or linked with.
#[derive(Default)]
pub(crate) struct PeerInfo {
    /// Its advertised node id.
    pub node_id: Vec<u8>,
    /// Earliest moment a new connect may start, and the backoff delay that led there.
    pub not_before: Option<tokio::time::Instant>,
    pub backoff: Duration,
    pub failures: u32,
}

pub(crate) struct State {
    pub next_link: u32,
    pub links: HashMap<LinkId, LinkEntry>,
    pub peers: HashMap<PeerAddress, PeerInfo>,
    pub our_id: Vec<u8>,
    pub scanning: bool,
}

/// Everything the radio's tasks share.
pub(crate) struct Shared {
    pub config: BleConfig,
    state: Mutex<State>,
    events: Mutex<VecDeque<RadioEvent>>,
    signal: Arc<Notify>,
    counters: Counters,
    tasks: Mutex<Vec<AbortHandle>>,
    /// bluer's adapter, set by the peripheral side, used by the central side for `AcquireWrite`.
    #[cfg(target_os = "linux")]
    pub bluer: std::sync::OnceLock<bluer::Adapter>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues an event; `Discovered` and `Packet` are dropped (counted) when the queue is full.
    pub fn push(&self, event: RadioEvent) {
        let lossy = matches!(
            event,
            RadioEvent::Discovered { .. } | RadioEvent::Packet { .. }
        );
        {
            let mut q = self.events.lock().unwrap_or_else(|p| p.into_inner());
            if lossy && q.len() >= self.config.event_capacity {
                bump(&self.counters.events_dropped);
                return;
            }
            q.push_back(event);
        }
        self.signal.notify_one();
    }

    pub fn spawn(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(fut).abort_handle();
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    pub fn fresh_link_id(state: &mut State) -> LinkId {
        let id = LinkId(state.next_link);
        state.next_link = state.next_link.wrapping_add(1);
        id
    }

    /// Removes `link`, stops its task with `stop`, and reports `LinkDown { reason }` if it was announced.
    /// Returns the peer and whether it was an up central link (for reconnects).
    pub fn end_link(&self, link: LinkId, reason: LinkDownReason, stop: Stop) -> bool {
        let entry = self.lock().links.remove(&link);
        let Some(mut entry) = entry else {
            return false;
        };
        if let Some(s) = entry.stop.take() {
            let _ = s.send(stop);
        }
        if entry.announced {
            self.push(RadioEvent::LinkDown { link, reason });
        }
        true
    }

    /// Marks a link up and reports `LinkUp`; false if it was ended meanwhile.
    pub fn link_up(&self, link: LinkId, att_mtu: u16) -> bool {
        let (peer, role) = {
            let mut st = self.lock();
            let Some(e) = st.links.get_mut(&link) else {
                return false;
            };
            e.up = true;
            e.announced = true;
            e.max_payload = gatt_payload_len(att_mtu);
            let (peer, role) = (e.peer, e.role);
            if let Some(p) = st.peers.get_mut(&peer) {
                p.failures = 0;
                p.backoff = Duration::ZERO;
            }
            (peer, role)
        };
        self.push(RadioEvent::LinkUp {
            link,
            peer,
            att_mtu,
            role,
        });
        true
    }

    /// Called by a link's writer after taking a packet: room again, so a refused `send` gets its `Writable`.
    pub fn took_packet(&self, link: LinkId) {
        let wanted = self
            .lock()
            .links
            .get_mut(&link)
            .map(|e| std::mem::take(&mut e.writable_wanted))
            .unwrap_or(false);
        if wanted {
            self.push(RadioEvent::Writable { link });
        }
    }

    /// Records a failed try for `peer` and returns the delay before the next one.
    pub fn backoff(&self, peer: PeerAddress) -> Duration {
        let base = self.config.reconnect_backoff;
        let mut st = self.lock();
        let p = st.peers.entry(peer).or_default();
        p.failures = p.failures.saturating_add(1);
        p.backoff = if p.backoff.is_zero() {
            base
        } else {
            (p.backoff * 2).min(base * 64)
        };
        p.not_before = Some(tokio::time::Instant::now() + p.backoff);
        p.backoff
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }
}

/// A random link token (from the OS-seeded hasher state: unpredictability is not needed, only distinctness).
pub(crate) fn random_token() -> [u8; TOKEN_LEN] {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    let v = h.finish().to_le_bytes();
    [v[0], v[1], v[2], v[3]]
}

/// Real Bluetooth LE radio: btleplug central + (Linux) bluer peripheral. See the module docs.
pub struct BleRadio {
    shared: Arc<Shared>,
    central: central::Central,
    #[cfg(target_os = "linux")]
    peripheral: peripheral::Peripheral,
}

impl std::fmt::Debug for BleRadio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BleRadio")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl BleRadio {
    /// Connects to BlueZ, picks the adapter, registers the GATT application (Linux) and starts the event tasks.
    /// Must be awaited inside the tokio runtime that will drive the radio. Fails within
    /// `config.startup_timeout` per call when Bluetooth is missing (see [`BleError`]).
    pub async fn new(config: BleConfig) -> Result<BleRadio, BleError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_link: 0,
                links: HashMap::new(),
                peers: HashMap::new(),
                our_id: Vec::new(),
                scanning: false,
            }),
            events: Mutex::new(VecDeque::new()),
            signal: Arc::new(Notify::new()),
            counters: Counters::default(),
            tasks: Mutex::new(Vec::new()),
            #[cfg(target_os = "linux")]
            bluer: std::sync::OnceLock::new(),
            config,
        });
        let central = central::Central::start(shared.clone()).await?;
        #[cfg(target_os = "linux")]
        let peripheral = peripheral::Peripheral::start(shared.clone()).await?;
        Ok(BleRadio {
            shared,
            central,
            #[cfg(target_os = "linux")]
            peripheral,
        })
    }

    /// Signalled whenever an event is queued; await `notified()` and then drain [`Radio::poll_event`].
    pub fn event_signal(&self) -> Arc<Notify> {
        self.shared.signal.clone()
    }

    /// A snapshot of the radio's counters.
    pub fn stats(&self) -> BleStats {
        let c = &self.shared.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BleStats {
            events_dropped: g(&c.events_dropped),
            values_ignored: g(&c.values_ignored),
            foreign_notifications: g(&c.foreign_notifications),
            notify_without_subscriber: g(&c.notify_without_subscriber),
            write_fallbacks: g(&c.write_fallbacks),
            io_failures: g(&c.io_failures),
            reconnect_attempts: g(&c.reconnect_attempts),
            hellos_refused: g(&c.hellos_refused),
            advertise_failures: g(&c.advertise_failures),
        }
    }

    /// The BlueZ adapter the radio uses (`"hci0"`), as far as the central side can tell.
    pub fn adapter_info(&self) -> &str {
        self.central.adapter_info()
    }
}

impl Drop for BleRadio {
    fn drop(&mut self) {
        let tasks =
            std::mem::take(&mut *self.shared.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            t.abort();
        }
    }
}

impl Radio for BleRadio {
    fn start_scanning(&mut self) -> Result<(), RadioError> {
        self.central.set_scanning(true);
        Ok(())
    }

    fn stop_scanning(&mut self) -> Result<(), RadioError> {
        self.central.set_scanning(false);
        Ok(())
    }

    fn start_advertising(&mut self, advertisement: &Advertisement) -> Result<(), RadioError> {
        self.shared.lock().our_id = advertisement.data().to_vec();
        #[cfg(target_os = "linux")]
        {
            self.peripheral.advertise(Some(*advertisement));
            Ok(())
        }
        #[cfg(not(target_os = "linux"))]
        Err(RadioError::Unavailable(
            "the peripheral role (advertising, GATT server) needs BlueZ on Linux; here the radio is central only"
                .into(),
        ))
    }

    fn stop_advertising(&mut self) -> Result<(), RadioError> {
        #[cfg(target_os = "linux")]
        self.peripheral.advertise(None);
        Ok(())
    }

    fn connect(&mut self, peer: PeerAddress) -> Result<LinkId, RadioError> {
        self.central.connect(peer)
    }

    fn disconnect(&mut self, link: LinkId) -> Result<(), RadioError> {
        let role = self.shared.lock().links.get(&link).map(|e| e.role);
        match role {
            None => Err(RadioError::NoSuchLink(link)),
            Some(role) => {
                let stop = Stop {
                    send_close: true,
                    ble_disconnect: role == Role::Central,
                };
                self.shared
                    .end_link(link, LinkDownReason::LocalDisconnect, stop);
                Ok(())
            }
        }
    }

    fn send(&mut self, link: LinkId, packet: &[u8]) -> Result<(), RadioError> {
        let mut st = self.shared.lock();
        let Some(e) = st.links.get_mut(&link).filter(|e| e.up) else {
            return Err(RadioError::NoSuchLink(link));
        };
        crate::radio::check_packet(link, packet, e.max_payload)?;
        let Some(tx) = e.tx.as_ref() else {
            return Err(RadioError::NoSuchLink(link));
        };
        match tx.try_send(packet.to_vec()) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                e.writable_wanted = true;
                Err(RadioError::QueueFull {
                    link,
                    capacity: self.shared.config.queue_capacity,
                })
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(RadioError::NoSuchLink(link)),
        }
    }

    fn poll_event(&mut self) -> Option<RadioEvent> {
        self.shared
            .events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_start_up_failures() {
        let e = BleError::classify(
            "connect",
            "Failed to connect to socket /run/dbus/system_bus_socket: No such file or directory"
                .into(),
        );
        assert!(matches!(e, BleError::NoSystemBus(_)), "{e}");
        assert_eq!(e.kind(), RadioErrorKind::Unavailable);
        assert!(e.to_string().contains("--radio udp"), "{e}");
        let e = BleError::classify(
            "adapters",
            "org.freedesktop.DBus.Error.ServiceUnknown: The name org.bluez was not provided by any .service files"
                .into(),
        );
        assert!(matches!(e, BleError::NoBluez(_)), "{e}");
        let e = BleError::classify("x", "something odd".into());
        assert_eq!(e.kind(), RadioErrorKind::Backend);
        let r: RadioError = BleError::NoAdapter(String::new()).into();
        assert_eq!(r.kind(), RadioErrorKind::Unavailable);
    }

    #[test]
    fn uuids_spell_meshnode() {
        let u = uuid::Uuid::from_u128(MESHNODE_SERVICE_UUID).to_string();
        assert_eq!(u, "6d657368-6e6f-6465-8000-00000000b1e0");
    }
}
