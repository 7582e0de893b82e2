//! The `Radio` trait and the values that cross it: commands in, `RadioEvent`s out, `RadioError`s with a `kind()`.
//!
//! Invariant: a radio moves opaque packets of at most `ATT_MTU - 3` bytes over links, in order per link direction,
//! possibly losing some; it never looks inside them. Every `LinkId` that a radio hands out (from `connect` or in a
//! `LinkUp`) is ended by exactly one `LinkDown`.
//!
//! # Shape
//!
//! The trait is non-blocking and poll-shaped so that the same node code drives it under the virtual-time simulator
//! (`hal::sim`) and under tokio with a real backend:
//!
//! 1. commands (`start_scanning`, `connect`, `send`, ...) return at once; their effects arrive later as events;
//! 2. [`Radio::poll_event`] drains the events the radio has ready, `None` when there are none for now;
//! 3. the caller waits (virtual time: `Medium::next_wakeup`; tokio: a notification from the backend) and polls again.
//!
//! Sending is flow-controlled per link: each link has a bounded send queue (a controller's buffer). A full queue
//! makes [`Radio::send`] fail with [`RadioErrorKind::QueueFull`]; the packet was not taken, and a
//! [`RadioEvent::Writable`] for that link follows once there is room again. A packet longer than the link's
//! `ATT_MTU - 3` fails with [`RadioErrorKind::PacketTooLong`]; the runtime sizes packets from the `att_mtu` of
//! [`RadioEvent::LinkUp`].
//!
//! # How the backends map onto it
//!
//! - **sim** (`hal::sim`, now): one `Medium` holds every node's radio; `Medium::radio(i)` lends node `i`'s
//!   radio as a `SimRadio` that implements this trait.
//! - **btleplug, central role** ([`crate::ble`]): `start_scanning` → `Central::start_scan` filtered by the meshnode service
//!   UUID; each `CentralEvent::DeviceDiscovered`/`ServiceDataAdvertisement` → `Discovered`; `connect` → a task that
//!   connects, discovers services, subscribes to the packet characteristic and reads the MTU, then `LinkUp` with
//!   role `Central`; notifications → `Packet`; `send` → write without response (the bounded queue is the task's
//!   channel); a disconnect event or a failed connect → `LinkDown`.
//! - **bluer, peripheral role** ([`crate::ble`], Linux): `start_advertising` → an LE advertisement carrying the service UUID and the
//!   service data; a central's first write or subscription → `LinkUp` with role `Peripheral` and the MTU BlueZ
//!   negotiated; GATT characteristic writes from that central → `Packet`; `send` → notify on the characteristic
//!   (through `AcquireNotify` for throughput); the central going away → `LinkDown`.
//! - **udp** ([`crate::udp`]): one socket per process; "advertising" is a periodic beacon datagram and scanning listens for
//!   them; a link is a peer address with a configured MTU; a keepalive timeout → `LinkDown` with
//!   [`LinkDownReason::Timeout`]; loss and delay are applied in the application.
//!
//! An async backend bridges to this shape without blocking: its tasks push events into a bounded channel (drops
//! counted) that `poll_event` drains with `try_recv`, and commands are `try_send`s into the tasks' bounded command
//! channels (full → `QueueFull`). The runtime awaits a notification (e.g. `tokio::sync::Notify`) signalled by the
//! tasks, or its own timer, before it polls again.

use core::fmt;

/// Most bytes of service data an [`Advertisement`] carries: a legacy advertisement has 31 bytes, of which the
/// flags take 3 and a 128-bit service-data header 18, leaving 10.
pub const ADVERTISEMENT_DATA_MAX: usize = 10;

/// Names one link on one radio. Link ids are per radio: the two ends of a link may know it by different ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u32);

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link {}", self.0)
    }
}

/// The radio address of a peer (a BLE device address, a UDP endpoint's index, a simulated node).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerAddress(pub [u8; 6]);

impl fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// Which side of a BLE connection this radio is on. The central writes packets, the peripheral notifies them;
/// above the radio both directions behave alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// This radio initiated the connection.
    Central,
    /// A central connected to this radio while it advertised.
    Peripheral,
}

/// What a radio advertises and what a scanner reports: a 128-bit service UUID and up to
/// [`ADVERTISEMENT_DATA_MAX`] bytes of service data (meshnode puts a short node id there).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Advertisement {
    service_uuid: u128,
    len: u8,
    data: [u8; ADVERTISEMENT_DATA_MAX],
}

impl Advertisement {
    /// An advertisement of `service_uuid` with `data` as service data.
    ///
    /// Fails with [`RadioErrorKind::InvalidArgument`] when `data` is longer than [`ADVERTISEMENT_DATA_MAX`].
    pub fn new(service_uuid: u128, data: &[u8]) -> Result<Self, RadioError> {
        if data.len() > ADVERTISEMENT_DATA_MAX {
            return Err(RadioError::InvalidArgument(format!(
                "advertisement data of {} bytes exceeds {ADVERTISEMENT_DATA_MAX}",
                data.len()
            )));
        }
        let mut buf = [0u8; ADVERTISEMENT_DATA_MAX];
        buf[..data.len()].copy_from_slice(data);
        // data.len() <= ADVERTISEMENT_DATA_MAX (10), so it fits a u8.
        Ok(Self {
            service_uuid,
            len: data.len() as u8,
            data: buf,
        })
    }

    /// The advertised service UUID; a scanner compares it with the one it looks for.
    pub fn service_uuid(&self) -> u128 {
        self.service_uuid
    }

    /// The advertised service data.
    pub fn data(&self) -> &[u8] {
        self.data.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

impl fmt::Debug for Advertisement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Advertisement")
            .field("service_uuid", &format_args!("{:032x}", self.service_uuid))
            .field("data", &self.data())
            .finish()
    }
}

/// Why a link went down, as far as the radio can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LinkDownReason {
    /// This radio was told to `disconnect` the link.
    LocalDisconnect,
    /// The peer closed the link.
    RemoteDisconnect,
    /// Nothing was heard from the peer for too long (BLE supervision timeout, UDP keepalive timeout): it went out
    /// of range, crashed, or the medium dropped the link.
    Timeout,
    /// A `connect` did not produce a link (peer not reachable, not advertising, or out of connection slots).
    ConnectFailed,
    /// This radio itself was reset (adapter power cycle, a crashed node in the simulator): every link is gone.
    RadioReset,
}

/// Something the radio reports; drained with [`Radio::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RadioEvent {
    /// While scanning: an advertiser was heard.
    Discovered {
        /// Its address, to pass to [`Radio::connect`].
        peer: PeerAddress,
        /// Received signal strength in dBm.
        rssi: i8,
        /// What it advertised.
        advertisement: Advertisement,
    },
    /// A link is up; packets may be sent on it.
    LinkUp {
        /// The link's id on this radio.
        link: LinkId,
        /// The peer at the other end.
        peer: PeerAddress,
        /// The link's negotiated ATT MTU (23..=517); packets carry at most `att_mtu - 3` bytes.
        att_mtu: u16,
        /// Which side of the connection this radio is on.
        role: Role,
    },
    /// A link is gone (or a connect failed); packets still queued or in flight on it are lost.
    LinkDown {
        /// The link's id on this radio; it is not used again for another link.
        link: LinkId,
        /// Why.
        reason: LinkDownReason,
    },
    /// A packet arrived on a link.
    Packet {
        /// The link it arrived on.
        link: LinkId,
        /// Its bytes, opaque to the radio.
        data: Vec<u8>,
    },
    /// A link whose send queue was full (a `send` failed with `QueueFull`) has room again.
    Writable {
        /// The link.
        link: LinkId,
    },
}

/// What the runtime should do about a [`RadioError`], without knowing the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RadioErrorKind {
    /// The radio is off, reset or crashed: retry after a delay or give up; nothing was done.
    Unavailable,
    /// The link's send queue is full: keep the packet and wait for [`RadioEvent::Writable`].
    QueueFull,
    /// No link with this id is up on this radio: forget the link.
    NoSuchLink,
    /// The packet is longer than the link's `ATT_MTU - 3`: a fragmentation bug in the caller.
    PacketTooLong,
    /// The radio has as many links as it can hold: disconnect one before connecting.
    TooManyLinks,
    /// The call was malformed (empty packet, advertisement too long, unknown address): a bug in the caller.
    InvalidArgument,
    /// The backend failed in its own way (D-Bus, socket): log it; the radio may need a restart.
    Backend,
}

/// A failed radio command; [`RadioError::kind`] says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RadioError {
    /// The radio cannot take commands now.
    #[error("radio unavailable: {0}")]
    Unavailable(String),
    /// The link's send queue is full; a `Writable` event follows.
    #[error("send queue of {link} is full ({capacity} packets); wait for Writable")]
    QueueFull {
        /// The link.
        link: LinkId,
        /// Its queue's capacity in packets.
        capacity: usize,
    },
    /// No link with this id is up.
    #[error("no {0} is up on this radio")]
    NoSuchLink(LinkId),
    /// The packet does not fit one GATT write or notification on this link.
    #[error("packet of {len} bytes exceeds {max} bytes (ATT MTU - 3) on {link}")]
    PacketTooLong {
        /// The link.
        link: LinkId,
        /// The packet's length.
        len: usize,
        /// The most the link carries.
        max: usize,
    },
    /// The radio holds its maximum number of links.
    #[error("radio already holds its maximum of {max} links")]
    TooManyLinks {
        /// The limit.
        max: usize,
    },
    /// The call was malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A backend-specific failure.
    #[error("radio backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl RadioError {
    /// What the runtime should do about this error.
    pub fn kind(&self) -> RadioErrorKind {
        match self {
            RadioError::Unavailable(_) => RadioErrorKind::Unavailable,
            RadioError::QueueFull { .. } => RadioErrorKind::QueueFull,
            RadioError::NoSuchLink(_) => RadioErrorKind::NoSuchLink,
            RadioError::PacketTooLong { .. } => RadioErrorKind::PacketTooLong,
            RadioError::TooManyLinks { .. } => RadioErrorKind::TooManyLinks,
            RadioError::InvalidArgument(_) => RadioErrorKind::InvalidArgument,
            RadioError::Backend(_) => RadioErrorKind::Backend,
        }
    }
}

/// The packet check every backend's [`Radio::send`] makes, so they refuse the same packets with the same errors:
/// a packet is non-empty and at most `max` bytes (the link's ATT MTU minus 3, less any backend framing).
pub fn check_packet(link: LinkId, packet: &[u8], max: usize) -> Result<(), RadioError> {
    if packet.is_empty() {
        return Err(RadioError::InvalidArgument(format!(
            "empty packet on {link}"
        )));
    }
    if packet.len() > max {
        return Err(RadioError::PacketTooLong {
            link,
            len: packet.len(),
            max,
        });
    }
    Ok(())
}

/// One node's radio: commands return at once, their effects arrive as events from [`Radio::poll_event`].
///
/// Call order: set up scanning and/or advertising; on `Discovered`, `connect`; on `LinkUp`, `send` packets of at
/// most `att_mtu - 3` bytes; on `QueueFull`, wait for `Writable`; on `LinkDown`, forget the link. Poll events until
/// `None` each time the backend signals (or virtual time advances).
pub trait Radio {
    /// Start reporting advertisers as [`RadioEvent::Discovered`]. Starting twice is harmless.
    fn start_scanning(&mut self) -> Result<(), RadioError>;

    /// Stop reporting advertisers. Stopping when not scanning is harmless.
    fn stop_scanning(&mut self) -> Result<(), RadioError>;

    /// Advertise `advertisement` and accept connections from centrals (reported as `LinkUp` with role
    /// [`Role::Peripheral`]). Replaces any advertisement already running.
    fn start_advertising(&mut self, advertisement: &Advertisement) -> Result<(), RadioError>;

    /// Stop advertising; links already up stay up. Stopping when not advertising is harmless.
    fn stop_advertising(&mut self) -> Result<(), RadioError>;

    /// Start connecting to `peer` as central. The returned link id later gets `LinkUp` (role
    /// [`Role::Central`]) or `LinkDown` with [`LinkDownReason::ConnectFailed`].
    fn connect(&mut self, peer: PeerAddress) -> Result<LinkId, RadioError>;

    /// Close `link` (or abandon a connect in progress). Both ends then get a `LinkDown`: this radio with
    /// [`LinkDownReason::LocalDisconnect`], the peer with [`LinkDownReason::RemoteDisconnect`].
    fn disconnect(&mut self, link: LinkId) -> Result<(), RadioError>;

    /// Queue one packet of 1..=`att_mtu - 3` bytes on `link`. Packets on one link arrive in the order sent, or
    /// not at all. A full queue fails with [`RadioErrorKind::QueueFull`] and is followed by `Writable`.
    fn send(&mut self, link: LinkId, packet: &[u8]) -> Result<(), RadioError>;

    /// The next ready event, or `None` until the backend signals or time advances.
    fn poll_event(&mut self) -> Option<RadioEvent>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertisement_bounds() {
        let a = Advertisement::new(7, &[1, 2, 3]).unwrap();
        assert_eq!(a.service_uuid(), 7);
        assert_eq!(a.data(), &[1, 2, 3]);
        let full = Advertisement::new(7, &[9; ADVERTISEMENT_DATA_MAX]).unwrap();
        assert_eq!(full.data().len(), ADVERTISEMENT_DATA_MAX);
        let err = Advertisement::new(7, &[9; ADVERTISEMENT_DATA_MAX + 1]).unwrap_err();
        assert_eq!(err.kind(), RadioErrorKind::InvalidArgument);
        assert!(err.to_string().contains("11 bytes"), "{err}");
    }

    #[test]
    fn error_kinds_and_messages() {
        let e = RadioError::QueueFull {
            link: LinkId(4),
            capacity: 8,
        };
        assert_eq!(e.kind(), RadioErrorKind::QueueFull);
        assert_eq!(
            e.to_string(),
            "send queue of link 4 is full (8 packets); wait for Writable"
        );
        let e = RadioError::PacketTooLong {
            link: LinkId(1),
            len: 21,
            max: 20,
        };
        assert_eq!(e.kind(), RadioErrorKind::PacketTooLong);
        assert_eq!(
            RadioError::NoSuchLink(LinkId(2)).kind(),
            RadioErrorKind::NoSuchLink
        );
        assert_eq!(
            RadioError::TooManyLinks { max: 3 }.kind(),
            RadioErrorKind::TooManyLinks
        );
        assert_eq!(
            RadioError::Unavailable("off".into()).kind(),
            RadioErrorKind::Unavailable
        );
        let io = std::io::Error::other("bus gone");
        assert_eq!(
            RadioError::Backend(Box::new(io)).kind(),
            RadioErrorKind::Backend
        );
    }

    #[test]
    fn displays() {
        assert_eq!(
            PeerAddress([0x02, 0, 0, 0, 0x01, 0xff]).to_string(),
            "02:00:00:00:01:ff"
        );
        assert_eq!(LinkId(9).to_string(), "link 9");
    }
}
