//! meshnode radio abstraction: it moves opaque packets over links and reports link events. It knows nothing of
//! frames, sessions or routing (no dependency on the protocol core); the node runtime feeds what it reports into the
//! protocol state machine and hands the packets that machine produces back to it.
//!
//! Invariant: everything here is backend-neutral; a packet is at most `ATT_MTU - 3` bytes of a link whose ATT MTU is
//! in [`ATT_MTU_MIN`]..=[`ATT_MTU_MAX`], and packets of one link direction arrive in order or not at all.
//!
//! # The trait
//!
//! [`Radio`] is one small, non-blocking, poll-shaped trait: commands (`start_scanning`, `start_advertising`,
//! `connect`, `disconnect`, `send`, ...) return at once and their effects arrive as [`RadioEvent`]s from
//! [`Radio::poll_event`] (`Discovered`, `LinkUp`, `LinkDown`, `Packet`, `Writable`). Failures are [`RadioError`]s
//! whose [`RadioError::kind`] tells the runtime what to do without knowing the backend (wait for `Writable` on
//! `QueueFull`, forget the link on `NoSuchLink`, ...). The [`radio`] module documents the contract and how each
//! backend maps onto it.
//!
//! # Backends
//!
//! Each backend is a module behind a cargo feature, and the node runtime is written once, generic over `Radio`.
//!
//! - `sim` (feature `sim`, on by default): a deterministic simulated BLE medium holding every node's radio, in
//!   virtual time with seeded randomness: explicit or random geometric topology, per-link loss, latency, jitter,
//!   ATT MTU and bounded queues, scheduled link drops and node crashes. It drives hundreds of nodes in one process
//!   and has no async runtime.
//! - `udp` (feature `udp`, on by default): one process per node, each with its own UDP socket (loopback or network
//!   namespaces): beacons to a static peer list or the subnet broadcast address in place of advertising, links
//!   with an ATT MTU (min of both offers) and a role, paced bounded send queues, keepalive timeouts for link loss,
//!   and a small versioned datagram protocol that counts and drops anything it does not accept. Time is injectable
//!   for tests; an async runtime waits on its socket's fd and `next_deadline`.
//! - `ble` (feature `ble`, on by default): btleplug in the central role and, on Linux, bluer in the peripheral
//!   role (GATT server + advertising) over BlueZ, bridged from their async tasks through bounded queues; libdbus
//!   is built from vendored source. `hal::ble` documents how a tokio runtime drives it and what a fake BlueZ
//!   cannot verify.
//!
//! # ATT MTU
//!
//! The constants below are the facts the protocol core's fragmentation is sized by: a packet travels as one GATT
//! Write Without Response or Handle Value Notification, whose payload is the link's ATT MTU minus a 3-byte header.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "ble")]
pub mod ble;
pub mod radio;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(feature = "udp")]
pub mod udp;

pub use radio::{
    check_packet, Advertisement, LinkDownReason, LinkId, PeerAddress, Radio, RadioError,
    RadioErrorKind, RadioEvent, Role, ADVERTISEMENT_DATA_MAX,
};

/// The smallest ATT MTU a BLE link may have (Core spec Vol 3 Part F §3.2.8).
pub const ATT_MTU_MIN: u16 = 23;
/// The largest ATT MTU (Core spec Vol 3 Part F §3.2.9).
pub const ATT_MTU_MAX: u16 = 517;
/// Bytes of ATT header in a Write Without Response / Handle Value Notification (opcode + handle).
pub const ATT_HEADER_LEN: u16 = 3;

/// The payload one GATT write or notification carries on a link with ATT MTU `att_mtu`, clamped to the valid range.
pub fn gatt_payload_len(att_mtu: u16) -> usize {
    usize::from(att_mtu.clamp(ATT_MTU_MIN, ATT_MTU_MAX) - ATT_HEADER_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_bounds() {
        assert_eq!(gatt_payload_len(23), 20);
        assert_eq!(gatt_payload_len(247), 244);
        assert_eq!(gatt_payload_len(517), 514);
        assert_eq!(gatt_payload_len(5), 20);
        assert_eq!(gatt_payload_len(9000), 514);
    }
}
