//! The central role over btleplug: duty-cycled scanning, and one task per central link that connects, discovers
//! the meshnode characteristic, subscribes, says hello, then moves packets until it is stopped or the peer drops.
//!
//! Invariant: a link task owns its BLE handles; it ends only through `Shared::end_link` (which reports the one
//! `LinkDown`), and every await on BlueZ in it is bounded by a timeout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use btleplug::api::{
    Central as _, CentralEvent, Characteristic, Manager as _, Peripheral as _, ScanFilter,
    WriteType,
};
use btleplug::platform::{Adapter, Manager, Peripheral, PeripheralId};
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::wire::{self, Frame};
use super::{bounded, bump, BleError, LinkEntry, Shared, Stop, TOKEN_LEN};
use crate::{Advertisement, LinkDownReason, LinkId, PeerAddress, RadioError, RadioEvent, Role};

/// The btleplug side of the radio.
pub(super) struct Central {
    inner: Arc<Inner>,
    scan_tx: watch::Sender<bool>,
    info: String,
}

struct Inner {
    shared: Arc<Shared>,
    adapter: Adapter,
    /// btleplug's ids of the peers we heard, by address.
    ids: Mutex<HashMap<PeerAddress, PeripheralId>>,
}

/// Where a central link's packets go.
enum Sink {
    /// BlueZ's `AcquireWrite` socket (Linux): no D-Bus call per packet.
    #[cfg(target_os = "linux")]
    Acquired(bluer::gatt::CharacteristicWriter),
    /// D-Bus `WriteValue` without response, per packet.
    Dbus,
}

fn address_of(p: &Peripheral) -> PeerAddress {
    PeerAddress(p.address().into_inner())
}

impl Central {
    pub(super) async fn start(shared: Arc<Shared>) -> Result<Central, BleError> {
        let t = shared.config.startup_timeout;
        let manager = bounded("connecting to BlueZ (btleplug)", t, Manager::new()).await?;
        let adapters = bounded("listing adapters", t, manager.adapters()).await?;
        let mut chosen = None;
        for a in adapters {
            let info = bounded("reading adapter info", t, a.adapter_info()).await?;
            let wanted = shared.config.adapter.as_deref();
            if wanted.is_none_or(|w| info.split_whitespace().next() == Some(w)) {
                chosen = Some((a, info));
                break;
            }
        }
        let Some((adapter, info)) = chosen else {
            let which = shared
                .config
                .adapter
                .as_deref()
                .map(|a| format!(" named {a}"))
                .unwrap_or_default();
            return Err(BleError::NoAdapter(which));
        };
        let events = bounded("subscribing to adapter events", t, adapter.events()).await?;
        let inner = Arc::new(Inner {
            shared: shared.clone(),
            adapter,
            ids: Mutex::new(HashMap::new()),
        });
        let (scan_tx, scan_rx) = watch::channel(false);
        let i = inner.clone();
        shared.spawn(async move {
            let mut events = events;
            while let Some(event) = events.next().await {
                i.on_event(event).await;
            }
        });
        let i = inner.clone();
        shared.spawn(async move { i.scan_loop(scan_rx).await });
        Ok(Central {
            inner,
            scan_tx,
            info,
        })
    }

    pub(super) fn adapter_info(&self) -> &str {
        &self.info
    }

    pub(super) fn set_scanning(&self, on: bool) {
        self.inner.shared.lock().scanning = on;
        self.scan_tx.send_replace(on);
    }

    pub(super) fn connect(&self, peer: PeerAddress) -> Result<LinkId, RadioError> {
        let shared = &self.inner.shared;
        let mut st = shared.lock();
        // A background reconnect to this peer becomes the caller's link.
        if let Some((&id, e)) = st
            .links
            .iter_mut()
            .find(|(_, e)| e.peer == peer && e.role == Role::Central && !e.announced)
        {
            e.announced = true;
            return Ok(id);
        }
        let max = shared.config.max_links;
        if st.links.len() >= max {
            return Err(RadioError::TooManyLinks { max });
        }
        let link = Shared::fresh_link_id(&mut st);
        // One link per neighbour: when the peer is already linked to us as central and the rule says it should
        // be, this connect fails at once.
        let peer_id = st
            .peers
            .get(&peer)
            .map(|p| p.node_id.clone())
            .unwrap_or_default();
        let already = st.links.values().any(|e| {
            e.up && e.role == Role::Peripheral && !peer_id.is_empty() && e.peer_id == peer_id
        });
        if already && wire::we_stay_central(&st.our_id, &peer_id) == Some(false) {
            drop(st);
            shared.push(RadioEvent::LinkDown {
                link,
                reason: LinkDownReason::ConnectFailed,
            });
            return Ok(link);
        }
        drop(st);
        self.inner.clone().start_link(link, peer, true, 0);
        Ok(link)
    }
}

impl Inner {
    /// Puts a central link in the table and spawns its task.
    fn start_link(self: Arc<Self>, link: LinkId, peer: PeerAddress, announced: bool, retries: u32) {
        let (tx, rx) = mpsc::channel(self.shared.config.queue_capacity.max(1));
        let (stop_tx, stop_rx) = oneshot::channel();
        let token = super::random_token();
        self.shared.lock().links.insert(
            link,
            LinkEntry {
                peer,
                role: Role::Central,
                token,
                up: false,
                announced,
                max_payload: 0,
                tx: Some(tx),
                writable_wanted: false,
                peer_id: Vec::new(),
                stop: Some(stop_tx),
            },
        );
        let shared = self.shared.clone();
        shared.spawn(async move { self.run_link(link, peer, token, rx, stop_rx, retries).await });
    }

    async fn scan_loop(self: Arc<Self>, mut rx: watch::Receiver<bool>) {
        let cfg = &self.shared.config;
        let window = cfg.scan_window.min(cfg.scan_interval);
        let continuous = window >= cfg.scan_interval;
        let filter = ScanFilter {
            services: vec![Uuid::from_u128(cfg.service_uuid)],
        };
        loop {
            while !*rx.borrow_and_update() {
                if rx.changed().await.is_err() {
                    return;
                }
            }
            if let Err(e) = bounded(
                "starting a scan",
                cfg.io_timeout,
                self.adapter.start_scan(filter.clone()),
            )
            .await
            {
                bump(&self.shared.counters().io_failures);
                let _ = e;
                if wait_off(&mut rx, Some(cfg.scan_interval)).await {
                    return;
                }
                continue;
            }
            let closed = if continuous {
                wait_off(&mut rx, None).await
            } else {
                wait_off(&mut rx, Some(window)).await
            };
            let _ = bounded("stopping a scan", cfg.io_timeout, self.adapter.stop_scan()).await;
            if closed {
                return;
            }
            if !continuous
                && *rx.borrow()
                && wait_off(&mut rx, Some(cfg.scan_interval - window)).await
            {
                return;
            }
        }
    }

    async fn on_event(self: &Arc<Self>, event: CentralEvent) {
        match event {
            CentralEvent::DeviceDiscovered(id)
            | CentralEvent::ServiceDataAdvertisement { id, .. }
            | CentralEvent::ServicesAdvertisement { id, .. } => self.on_seen(id).await,
            CentralEvent::DeviceDisconnected(id) => self.on_disconnected(id).await,
            _ => {}
        }
    }

    async fn on_seen(&self, id: PeripheralId) {
        let cfg = &self.shared.config;
        if !self.shared.lock().scanning {
            return;
        }
        let Ok(p) = bounded(
            "looking up a device",
            cfg.io_timeout,
            self.adapter.peripheral(&id),
        )
        .await
        else {
            return;
        };
        let Ok(Some(props)) =
            bounded("reading device properties", cfg.io_timeout, p.properties()).await
        else {
            return;
        };
        let uuid = Uuid::from_u128(cfg.service_uuid);
        let data = props.service_data.get(&uuid);
        if data.is_none() && !props.services.contains(&uuid) {
            return;
        }
        let data = data.map(|d| &d[..d.len().min(crate::ADVERTISEMENT_DATA_MAX)]);
        let Ok(advertisement) = Advertisement::new(cfg.service_uuid, data.unwrap_or(&[])) else {
            return;
        };
        let peer = PeerAddress(props.address.into_inner());
        self.ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer, id);
        self.shared.lock().peers.entry(peer).or_default().node_id = advertisement.data().to_vec();
        let rssi = props
            .rssi
            .map(|r| r.clamp(i16::from(i8::MIN), i16::from(i8::MAX)) as i8)
            .unwrap_or(i8::MIN);
        self.shared.push(RadioEvent::Discovered {
            peer,
            rssi,
            advertisement,
        });
    }

    /// BlueZ says a device disconnected: every link with it (either role) is gone.
    async fn on_disconnected(self: &Arc<Self>, id: PeripheralId) {
        let known = self
            .ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(_, v)| **v == id)
            .map(|(k, _)| *k);
        let peer = match known {
            Some(p) => p,
            None => match bounded(
                "looking up a device",
                self.shared.config.io_timeout,
                self.adapter.peripheral(&id),
            )
            .await
            {
                Ok(p) => address_of(&p),
                Err(_) => return,
            },
        };
        self.drop_peer(peer);
    }

    fn drop_peer(self: &Arc<Self>, peer: PeerAddress) {
        let gone: Vec<(LinkId, Role)> = self
            .shared
            .lock()
            .links
            .iter()
            .filter(|(_, e)| e.peer == peer && e.up)
            .map(|(&id, e)| (id, e.role))
            .collect();
        let quiet = Stop {
            send_close: false,
            ble_disconnect: false,
        };
        for (link, role) in gone {
            if self.shared.end_link(link, LinkDownReason::Timeout, quiet) && role == Role::Central {
                self.reconnect(peer);
            }
        }
    }

    /// An up central link lost its connection without being asked to (a write failed, BlueZ closed the
    /// `AcquireWrite` socket, the notification stream ended): it goes down like a drop BlueZ reports, with the
    /// same background reconnect. Whichever of these and `DeviceDisconnected` comes first ends the link; the others
    /// find it gone, so there is one `LinkDown` and one reconnect.
    fn lost(self: &Arc<Self>, link: LinkId, peer: PeerAddress) {
        let quiet = Stop {
            send_close: false,
            ble_disconnect: false,
        };
        if self.shared.end_link(link, LinkDownReason::Timeout, quiet) {
            self.reconnect(peer);
        }
    }

    /// Starts a background reconnect to `peer` after its backoff, if the configuration allows one.
    fn reconnect(self: &Arc<Self>, peer: PeerAddress) {
        let attempts = self.shared.config.reconnect_attempts;
        if attempts == 0 {
            return;
        }
        self.shared.backoff(peer);
        bump(&self.shared.counters().reconnect_attempts);
        let next = Shared::fresh_link_id(&mut self.shared.lock());
        self.clone().start_link(next, peer, false, attempts - 1);
    }

    async fn find_peripheral(&self, peer: PeerAddress) -> Option<Peripheral> {
        let t = self.shared.config.io_timeout;
        let id = self
            .ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&peer)
            .cloned();
        if let Some(id) = id {
            if let Ok(p) = bounded("looking up a device", t, self.adapter.peripheral(&id)).await {
                return Some(p);
            }
        }
        let all = bounded("listing devices", t, self.adapter.peripherals())
            .await
            .ok()?;
        all.into_iter().find(|p| address_of(p) == peer)
    }

    /// Connects, discovers, subscribes and says hello; the established link's handles, or why not.
    async fn establish(
        &self,
        peer: PeerAddress,
        token: [u8; TOKEN_LEN],
    ) -> Result<(Peripheral, Characteristic, Sink, u16, Vec<u8>), String> {
        let cfg = &self.shared.config;
        let t = cfg.io_timeout;
        let p = self
            .find_peripheral(peer)
            .await
            .ok_or_else(|| format!("BlueZ knows no device {peer}; scan first"))?;
        let connected = bounded("is_connected", t, p.is_connected())
            .await
            .unwrap_or(false);
        if !connected {
            bounded("connecting", cfg.connect_timeout, p.connect())
                .await
                .map_err(|e| e.to_string())?;
        }
        bounded(
            "discovering services",
            cfg.connect_timeout,
            p.discover_services(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let (su, cu) = (
            Uuid::from_u128(cfg.service_uuid),
            Uuid::from_u128(cfg.characteristic_uuid),
        );
        let ch = p
            .characteristics()
            .into_iter()
            .find(|c| c.uuid == cu && c.service_uuid == su)
            .ok_or_else(|| format!("{peer} has no meshnode characteristic"))?;
        let mtu = p.mtu();
        let reported = wire::reported_mtu(mtu).ok_or_else(|| {
            format!("{peer} negotiated ATT MTU {mtu}, below the 27 meshnode needs")
        })?;
        // The peer's node id, for the one-link-per-neighbour rule (a read returns it).
        let peer_id = match bounded("reading the node id", t, p.read(&ch)).await {
            Ok(v) => v,
            Err(_) => self
                .shared
                .lock()
                .peers
                .get(&peer)
                .map(|i| i.node_id.clone())
                .unwrap_or_default(),
        };
        bounded("subscribing", t, p.subscribe(&ch))
            .await
            .map_err(|e| e.to_string())?;
        let (sink, reported) = match self.acquire_write(peer).await {
            // Every packet the runtime may send must fit one socket message, so that none takes the D-Bus way
            // (which could overtake or fall behind the socket's): the link reports the smaller MTU. A socket too
            // small for meshnode's minimum is not used.
            #[cfg(target_os = "linux")]
            Sink::Acquired(w) => match wire::mtu_for_values(w.mtu()) {
                Some(m) => (Sink::Acquired(w), reported.min(m)),
                None => (Sink::Dbus, reported),
            },
            sink => (sink, reported),
        };
        let our_id = self.shared.lock().our_id.clone();
        let hello = wire::frame(token, &wire::hello_body(&our_id));
        write(&self.shared, &p, &ch, &sink, &hello).await?;
        Ok((p, ch, sink, reported, peer_id))
    }

    #[cfg(target_os = "linux")]
    async fn acquire_write(&self, peer: PeerAddress) -> Sink {
        let cfg = &self.shared.config;
        let Some(adapter) = self.shared.bluer.get() else {
            return Sink::Dbus;
        };
        let (su, cu) = (
            Uuid::from_u128(cfg.service_uuid),
            Uuid::from_u128(cfg.characteristic_uuid),
        );
        let attempt = async {
            let device = adapter.device(bluer::Address(peer.0)).ok()?;
            for s in device.services().await.ok()? {
                if s.uuid().await.ok()? != su {
                    continue;
                }
                for c in s.characteristics().await.ok()? {
                    if c.uuid().await.ok()? == cu {
                        return c.write_io().await.ok();
                    }
                }
            }
            None
        };
        match tokio::time::timeout(cfg.io_timeout, attempt).await {
            Ok(Some(w)) => Sink::Acquired(w),
            _ => Sink::Dbus,
        }
    }

    #[cfg(not(target_os = "linux"))]
    async fn acquire_write(&self, _peer: PeerAddress) -> Sink {
        Sink::Dbus
    }

    async fn run_link(
        self: Arc<Self>,
        link: LinkId,
        peer: PeerAddress,
        token: [u8; TOKEN_LEN],
        mut rx: mpsc::Receiver<Vec<u8>>,
        mut stop_rx: oneshot::Receiver<Stop>,
        mut retries: u32,
    ) {
        let shared = self.shared.clone();
        let t = shared.config.io_timeout;
        // Connect (after any backoff), retrying in the background for reconnects.
        let (p, ch, sink, mtu, peer_id) = loop {
            let not_before = shared.lock().peers.get(&peer).and_then(|p| p.not_before);
            if let Some(at) = not_before {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = &mut stop_rx => return,
                }
            }
            let attempt = tokio::select! {
                r = self.establish(peer, token) => r,
                _ = &mut stop_rx => return,
            };
            match attempt {
                Ok(v) => break v,
                Err(_why) => {
                    shared.backoff(peer);
                    let announced = shared.lock().links.get(&link).is_some_and(|e| e.announced);
                    if announced || retries == 0 {
                        let quiet = Stop {
                            send_close: false,
                            ble_disconnect: false,
                        };
                        if announced {
                            shared.end_link(link, LinkDownReason::ConnectFailed, quiet);
                        } else {
                            shared.lock().links.remove(&link);
                        }
                        return;
                    }
                    retries -= 1;
                    bump(&shared.counters().reconnect_attempts);
                }
            }
        };
        let notifications = bounded("opening notifications", t, p.notifications()).await;
        // One link per neighbour.
        let verdict = {
            let mut st = shared.lock();
            if let Some(e) = st.links.get_mut(&link) {
                e.peer_id = peer_id.clone();
            }
            let rival = st
                .links
                .iter()
                .find(|(_, e)| {
                    e.up && e.role == Role::Peripheral
                        && !peer_id.is_empty()
                        && e.peer_id == peer_id
                })
                .map(|(&id, _)| id);
            rival.map(|r| (r, wire::we_stay_central(&st.our_id, &peer_id)))
        };
        match verdict {
            Some((_, Some(false))) => {
                bump(&shared.counters().hellos_refused);
                let _ = write(&shared, &p, &ch, &sink, &wire::frame(token, &[])).await;
                let quiet = Stop {
                    send_close: false,
                    ble_disconnect: false,
                };
                shared.end_link(link, LinkDownReason::ConnectFailed, quiet);
                return;
            }
            Some((rival, Some(true))) => {
                let close = Stop {
                    send_close: true,
                    ble_disconnect: false,
                };
                shared.end_link(rival, LinkDownReason::LocalDisconnect, close);
            }
            _ => {}
        }
        let Ok(mut notifications) = notifications else {
            bump(&shared.counters().io_failures);
            let quiet = Stop {
                send_close: false,
                ble_disconnect: false,
            };
            shared.end_link(link, LinkDownReason::ConnectFailed, quiet);
            return;
        };
        if !shared.link_up(link, mtu) {
            return;
        }
        let stop = loop {
            tokio::select! {
                // Stop first: ending a link drops its queue right after sending the stop.
                biased;
                s = &mut stop_rx => break s.ok(),
                // BlueZ closes the write socket when the connection goes; notice it before the next packet.
                () = write_closed(&sink) => {
                    self.lost(link, peer);
                    break None;
                }
                packet = rx.recv() => {
                    let Some(packet) = packet else { break None };
                    shared.took_packet(link);
                    if write(&shared, &p, &ch, &sink, &wire::frame(token, &packet)).await.is_err() {
                        bump(&shared.counters().io_failures);
                        self.lost(link, peer);
                        break None;
                    }
                }
                n = notifications.next() => {
                    let Some(n) = n else {
                        self.lost(link, peer);
                        break None;
                    };
                    if n.uuid != ch.uuid {
                        continue;
                    }
                    match wire::parse(&n.value) {
                        Some(Frame::Close(k)) if k == token => {
                            let quiet = Stop { send_close: false, ble_disconnect: false };
                            shared.end_link(link, LinkDownReason::RemoteDisconnect, quiet);
                            break None;
                        }
                        Some(Frame::Data(k, body)) if k == token => {
                            shared.push(RadioEvent::Packet { link, data: body.to_vec() });
                        }
                        Some(_) => bump(&shared.counters().foreign_notifications),
                        None => bump(&shared.counters().values_ignored),
                    }
                }
            }
        };
        if let Some(stop) = stop {
            if stop.send_close {
                let _ = write(&shared, &p, &ch, &sink, &wire::frame(token, &[])).await;
            }
            let _ = bounded("unsubscribing", t, p.unsubscribe(&ch)).await;
            let others = shared.lock().links.values().any(|e| e.peer == peer);
            if stop.ble_disconnect && !others {
                let _ = bounded("disconnecting", t, p.disconnect()).await;
            }
        }
    }
}

/// Writes one value without response, through the acquired socket when there is one; a value that goes through
/// D-Bus `WriteValue` instead is counted in `write_fallbacks`. (The link's MTU keeps every value within the
/// socket's, so on a link with a socket none should.)
async fn write(
    shared: &Shared,
    p: &Peripheral,
    ch: &Characteristic,
    sink: &Sink,
    value: &[u8],
) -> Result<(), String> {
    let t = shared.config.io_timeout;
    #[cfg(target_os = "linux")]
    if let Sink::Acquired(w) = sink {
        if value.len() <= w.mtu() {
            return match tokio::time::timeout(t, w.send(value)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("AcquireWrite socket stalled".into()),
            };
        }
    }
    let _ = sink;
    bump(&shared.counters().write_fallbacks);
    bounded("writing", t, p.write(ch, value, WriteType::WithoutResponse))
        .await
        .map_err(|e| e.to_string())
}

/// Resolves when BlueZ has closed the link's `AcquireWrite` socket (its end hung up); never for a D-Bus sink.
async fn write_closed(sink: &Sink) {
    #[cfg(target_os = "linux")]
    if let Sink::Acquired(w) = sink {
        // BlueZ never sends on this socket: readable means hung up (or an error, which ends it as well).
        loop {
            if w.closed().await.is_err() {
                return;
            }
            match w.is_closed() {
                Ok(false) => continue,
                _ => return,
            }
        }
    }
    let _ = sink;
    std::future::pending().await
}

/// Waits until scanning is switched off (true if the radio is gone) or `limit` passes (false).
async fn wait_off(rx: &mut watch::Receiver<bool>, limit: Option<Duration>) -> bool {
    let off = async {
        loop {
            if rx.changed().await.is_err() {
                return true;
            }
            if !*rx.borrow_and_update() {
                return false;
            }
        }
    };
    match limit {
        Some(l) => tokio::time::timeout(l, off).await.unwrap_or(false),
        None => off.await,
    }
}
