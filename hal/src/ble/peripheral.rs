//! The peripheral role over bluer (Linux): the GATT application with meshnode's one characteristic, the LE
//! advertisement, and one task per peripheral link that notifies its packets through BlueZ's `AcquireNotify`
//! socket.
//!
//! Invariant: a central's hello (first write with a new token) is the only thing that creates a peripheral link;
//! it is refused with a close value when the link limit, the MTU or the one-link-per-neighbour rule says so.
//! Writes and notifications carry the link token, so values are attributed to links even though BlueZ fans a
//! notification out to every subscribed central.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use bluer::adv::{Advertisement as BlueAdvertisement, AdvertisementHandle, Type};
use bluer::gatt::local::{
    characteristic_control, Application, ApplicationHandle, Characteristic,
    CharacteristicControlEvent, CharacteristicNotify, CharacteristicNotifyMethod,
    CharacteristicRead, CharacteristicWrite, CharacteristicWriteMethod, CharacteristicWriteRequest,
    Service,
};
use bluer::gatt::CharacteristicWriter;
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::wire::{self, Frame};
use super::{bounded, bump, BleError, LinkEntry, Shared, Stop, TOKEN_LEN};
use crate::{Advertisement, LinkDownReason, LinkId, PeerAddress, Role};

/// The bluer side of the radio.
pub(super) struct Peripheral {
    adv_tx: watch::Sender<Option<Advertisement>>,
    _app: ApplicationHandle,
}

/// The notify sockets BlueZ acquired from us, newest last.
type Writers = Arc<Mutex<Vec<Arc<CharacteristicWriter>>>>;

impl Peripheral {
    pub(super) async fn start(shared: Arc<Shared>) -> Result<Peripheral, BleError> {
        let cfg = &shared.config;
        let t = cfg.startup_timeout;
        let session = bounded("connecting to BlueZ (bluer)", t, bluer::Session::new()).await?;
        let adapter = match cfg.adapter.as_deref() {
            Some(name) => session
                .adapter(name)
                .map_err(|e| BleError::NoAdapter(format!(" named {name} ({e})")))?,
            None => bounded("finding the default adapter", t, session.default_adapter())
                .await
                .map_err(|e| match e {
                    BleError::Backend { detail, .. } => BleError::NoAdapter(format!(" ({detail})")),
                    other => other,
                })?,
        };
        let _ = shared.bluer.set(adapter.clone());
        let writers: Writers = Arc::new(Mutex::new(Vec::new()));
        let (mut control, control_handle) = characteristic_control();
        let (s_read, s_write, w_write) = (shared.clone(), shared.clone(), writers.clone());
        let app = Application {
            services: vec![Service {
                uuid: Uuid::from_u128(cfg.service_uuid),
                primary: true,
                characteristics: vec![Characteristic {
                    uuid: Uuid::from_u128(cfg.characteristic_uuid),
                    read: Some(CharacteristicRead {
                        read: true,
                        fun: Box::new(move |_req| {
                            let s = s_read.clone();
                            async move { Ok(s.lock().our_id.clone()) }.boxed()
                        }),
                        ..Default::default()
                    }),
                    write: Some(CharacteristicWrite {
                        write: true,
                        write_without_response: true,
                        method: CharacteristicWriteMethod::Fun(Box::new(move |value, req| {
                            on_write(&s_write, &w_write, &value, &req);
                            async { Ok(()) }.boxed()
                        })),
                        ..Default::default()
                    }),
                    notify: Some(CharacteristicNotify {
                        notify: true,
                        method: CharacteristicNotifyMethod::Io,
                        ..Default::default()
                    }),
                    control_handle,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let app = bounded(
            "registering the GATT application",
            t,
            adapter.serve_gatt_application(app),
        )
        .await?;
        let w = writers.clone();
        shared.spawn(async move {
            while let Some(event) = control.next().await {
                if let CharacteristicControlEvent::Notify(writer) = event {
                    let mut ws = w.lock().unwrap_or_else(|p| p.into_inner());
                    ws.retain(|w| !w.is_closed().unwrap_or(true));
                    ws.push(Arc::new(writer));
                }
            }
        });
        let (adv_tx, mut adv_rx) = watch::channel(None::<Advertisement>);
        let s = shared.clone();
        shared.spawn(async move {
            let mut handle: Option<AdvertisementHandle> = None;
            while adv_rx.changed().await.is_ok() {
                let wanted = *adv_rx.borrow_and_update();
                handle = None;
                let Some(a) = wanted else { continue };
                let uuid = Uuid::from_u128(a.service_uuid());
                let adv = BlueAdvertisement {
                    advertisement_type: Type::Peripheral,
                    service_uuids: BTreeSet::from([uuid]),
                    service_data: BTreeMap::from([(uuid, a.data().to_vec())]),
                    discoverable: Some(true),
                    ..Default::default()
                };
                match bounded(
                    "registering the advertisement",
                    s.config.startup_timeout,
                    adapter.advertise(adv),
                )
                .await
                {
                    Ok(h) => handle = Some(h),
                    Err(_) => bump(&s.counters().advertise_failures),
                }
            }
            drop(handle);
        });
        // Peripheral links' tasks need the writers; keep them reachable through the write callback's clone.
        let _ = writers;
        Ok(Peripheral { adv_tx, _app: app })
    }

    /// Advertises `adv` (replacing any running advertisement), or stops advertising.
    pub(super) fn advertise(&self, adv: Option<Advertisement>) {
        self.adv_tx.send_replace(adv);
    }
}

/// Notifies `value` through the newest open notify socket BlueZ acquired.
async fn notify(shared: &Shared, writers: &Writers, value: &[u8]) -> bool {
    let writer = {
        let mut ws = writers.lock().unwrap_or_else(|p| p.into_inner());
        ws.retain(|w| !w.is_closed().unwrap_or(true));
        ws.last().cloned()
    };
    let Some(w) = writer else {
        bump(&shared.counters().notify_without_subscriber);
        return true;
    };
    matches!(
        tokio::time::timeout(shared.config.io_timeout, w.send(value)).await,
        Ok(Ok(()))
    )
}

/// A central wrote to the characteristic: a hello, a packet or a close.
fn on_write(
    shared: &Arc<Shared>,
    writers: &Writers,
    value: &[u8],
    req: &CharacteristicWriteRequest,
) {
    let peer = PeerAddress(req.device_address.0);
    let Some(frame) = wire::parse(value) else {
        bump(&shared.counters().values_ignored);
        return;
    };
    let token = match frame {
        Frame::Close(t) | Frame::Data(t, _) => t,
    };
    let known = shared
        .lock()
        .links
        .iter()
        .find(|(_, e)| e.role == Role::Peripheral && e.peer == peer && e.token == token)
        .map(|(&id, _)| id);
    match (frame, known) {
        (Frame::Close(_), Some(link)) => {
            let quiet = Stop {
                send_close: false,
                ble_disconnect: false,
            };
            shared.end_link(link, LinkDownReason::RemoteDisconnect, quiet);
        }
        (Frame::Data(_, body), Some(link)) => shared.push(crate::RadioEvent::Packet {
            link,
            data: body.to_vec(),
        }),
        (Frame::Data(_, body), None) => hello(shared, writers, peer, token, body, req.mtu),
        (Frame::Close(_), None) => bump(&shared.counters().values_ignored),
    }
}

/// A central's first write on a new link: accept it as a peripheral link or close it.
fn hello(
    shared: &Arc<Shared>,
    writers: &Writers,
    peer: PeerAddress,
    token: [u8; TOKEN_LEN],
    body: &[u8],
    mtu: u16,
) {
    let peer_id = wire::hello_node_id(body).to_vec();
    let quiet = Stop {
        send_close: false,
        ble_disconnect: false,
    };
    // The same central with a new token: its old link is gone.
    let stale: Vec<LinkId> = shared
        .lock()
        .links
        .iter()
        .filter(|(_, e)| e.role == Role::Peripheral && e.peer == peer)
        .map(|(&id, _)| id)
        .collect();
    for link in stale {
        shared.end_link(link, LinkDownReason::Timeout, quiet);
    }
    let (refuse, rival) = {
        let st = shared.lock();
        let rival = st
            .links
            .iter()
            .find(|(_, e)| e.role == Role::Central && !peer_id.is_empty() && e.peer_id == peer_id)
            .map(|(&id, _)| id);
        let rule = rival.and_then(|_| wire::we_stay_central(&st.our_id, &peer_id));
        let refuse = st.links.len() >= shared.config.max_links
            || wire::reported_mtu(mtu).is_none()
            || rule == Some(true);
        (refuse, if rule == Some(false) { rival } else { None })
    };
    if refuse {
        bump(&shared.counters().hellos_refused);
        let (s, w) = (shared.clone(), writers.clone());
        shared.spawn(async move {
            let _ = notify(&s, &w, &wire::frame(token, &[])).await;
        });
        return;
    }
    if let Some(r) = rival {
        let keep_connection = Stop {
            send_close: true,
            ble_disconnect: false,
        };
        shared.end_link(r, LinkDownReason::LocalDisconnect, keep_connection);
    }
    let Some(att_mtu) = wire::reported_mtu(mtu) else {
        return;
    };
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(shared.config.queue_capacity.max(1));
    let (stop_tx, mut stop_rx) = oneshot::channel::<Stop>();
    let link = {
        let mut st = shared.lock();
        let link = Shared::fresh_link_id(&mut st);
        st.links.insert(
            link,
            LinkEntry {
                peer,
                role: Role::Peripheral,
                token,
                up: false,
                announced: true,
                max_payload: 0,
                tx: Some(tx),
                writable_wanted: false,
                peer_id,
                stop: Some(stop_tx),
            },
        );
        link
    };
    let (s, w) = (shared.clone(), writers.clone());
    shared.spawn(async move {
        loop {
            tokio::select! {
                // Stop first: ending a link drops its queue right after sending the stop.
                biased;
                stop = &mut stop_rx => {
                    if stop.is_ok_and(|s| s.send_close) {
                        let _ = notify(&s, &w, &wire::frame(token, &[])).await;
                    }
                    return;
                }
                packet = rx.recv() => {
                    let Some(packet) = packet else { return };
                    s.took_packet(link);
                    if !notify(&s, &w, &wire::frame(token, &packet)).await {
                        bump(&s.counters().io_failures);
                        let quiet = Stop { send_close: false, ble_disconnect: false };
                        s.end_link(link, LinkDownReason::Timeout, quiet);
                        return;
                    }
                }
            }
        }
    });
    shared.link_up(link, att_mtu);
}
