//! The UDP backend's plain values: its configuration with validation, its counters, and the mapping between IPv4
//! socket addresses and `PeerAddress`es.
//!
//! Invariant: a `UdpConfig` that `validate` accepted has an IPv4 bind address, usable peer and broadcast
//! addresses, an offered ATT MTU in 23..=517, a keepalive timeout longer than the keepalive interval and every bound
//! at least 1, so the radio never divides by zero, never spins on a zero interval and never builds an unusable link.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use crate::{PeerAddress, RadioError, ATT_MTU_MAX, ATT_MTU_MIN};

/// The longest interval or timeout accepted: it keeps every deadline the radio computes representable.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3_600);

/// Most addresses a static peer list may hold (beacons go to each of them every `beacon_interval`).
pub const MAX_STATIC_PEERS: usize = 1_024;

/// How a [`super::UdpRadio`] binds, whom it beacons to and how its links behave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpConfig {
    /// The IPv4 address and port to bind; port 0 picks a free one. Use `0.0.0.0:PORT` to hear subnet
    /// broadcasts (a socket bound to a unicast address does not receive them).
    pub bind: SocketAddr,
    /// Addresses beacons are sent to, whether or not anyone listens there (loopback runs list every node here).
    pub static_peers: Vec<SocketAddr>,
    /// A directed broadcast address (e.g. `10.0.0.255:7000`, see [`subnet_broadcast`]) beacons are also sent to;
    /// every node of the subnet must listen on that port. Loopback cannot broadcast: leave `None` there.
    pub broadcast: Option<SocketAddr>,
    /// The ATT MTU this radio offers (23..=517); a link uses the smaller of both ends' offers.
    pub att_mtu: u16,
    /// A link that sent nothing for this long sends a keepalive; a connect is retried this often.
    pub keepalive_interval: Duration,
    /// A link that heard nothing for this long goes down with `Timeout`; a connect unanswered this long fails
    /// with `ConnectFailed`. Must exceed `keepalive_interval` (2-3× is usual).
    pub keepalive_timeout: Duration,
    /// Packets a link's send queue holds waiting to leave; more fail with `QueueFull`.
    pub queue_capacity: usize,
    /// Pacing: one packet leaves a link's queue every `tx_interval` (1.25 ms by default, like a BLE connection
    /// moving ~6 packets per 7.5 ms event). Zero sends at once.
    pub tx_interval: Duration,
    /// While advertising, a beacon goes to every static peer and the broadcast address this often.
    pub beacon_interval: Duration,
    /// Links this radio holds at most (connecting or up).
    pub max_links: usize,
    /// Events held unpolled; while full the radio stops reading its socket, and packets that still do not fit
    /// are dropped and counted.
    pub event_queue_capacity: usize,
}

impl Default for UdpConfig {
    /// Loopback on a free port, no peers, ATT MTU 247, keepalive every 500 ms with a 3 s timeout, 16-packet
    /// queues paced at 1.25 ms, a beacon every 250 ms, 8 links, 4096 events.
    fn default() -> Self {
        UdpConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            static_peers: Vec::new(),
            broadcast: None,
            att_mtu: 247,
            keepalive_interval: Duration::from_millis(500),
            keepalive_timeout: Duration::from_secs(3),
            queue_capacity: 16,
            tx_interval: Duration::from_micros(1_250),
            beacon_interval: Duration::from_millis(250),
            max_links: 8,
            event_queue_capacity: 4_096,
        }
    }
}

fn invalid(message: String) -> RadioError {
    RadioError::InvalidArgument(message)
}

impl UdpConfig {
    /// Checks every field; the error says which one is wrong and what to use instead.
    pub fn validate(&self) -> Result<(), RadioError> {
        let SocketAddr::V4(_) = self.bind else {
            return Err(invalid(format!(
                "bind address {} is IPv6: the UDP radio speaks IPv4 only, listen on e.g. 0.0.0.0:{}",
                self.bind,
                self.bind.port()
            )));
        };
        if self.static_peers.len() > MAX_STATIC_PEERS {
            return Err(invalid(format!(
                "{} static peers exceed the limit of {MAX_STATIC_PEERS}: use broadcast discovery instead",
                self.static_peers.len()
            )));
        }
        for peer in &self.static_peers {
            check_peer(*peer, "static peer")?;
        }
        if let Some(b) = self.broadcast {
            check_peer(b, "broadcast address")?;
        }
        if !(ATT_MTU_MIN..=ATT_MTU_MAX).contains(&self.att_mtu) {
            return Err(invalid(format!(
                "ATT MTU {} is outside {ATT_MTU_MIN}..={ATT_MTU_MAX}: offer e.g. 247",
                self.att_mtu
            )));
        }
        let intervals = [
            ("keepalive_interval", self.keepalive_interval),
            ("keepalive_timeout", self.keepalive_timeout),
            ("beacon_interval", self.beacon_interval),
        ];
        for (name, value) in intervals {
            if value < Duration::from_millis(1) {
                return Err(invalid(format!("{name} must be at least 1 ms")));
            }
        }
        for (name, value) in intervals
            .into_iter()
            .chain([("tx_interval", self.tx_interval)])
        {
            if value > MAX_INTERVAL {
                return Err(invalid(format!(
                    "{name} of {value:?} exceeds the limit of one hour"
                )));
            }
        }
        if self.keepalive_timeout <= self.keepalive_interval {
            return Err(invalid(format!(
                "keepalive_timeout {:?} must exceed keepalive_interval {:?} (make it 2-3 times as long)",
                self.keepalive_timeout, self.keepalive_interval
            )));
        }
        let bounds = [
            ("queue_capacity", self.queue_capacity),
            ("max_links", self.max_links),
            ("event_queue_capacity", self.event_queue_capacity),
        ];
        for (name, value) in bounds {
            if value == 0 {
                return Err(invalid(format!("{name} must be at least 1")));
            }
        }
        Ok(())
    }
}

/// A peer or broadcast address must be IPv4, with a port and a specified address.
fn check_peer(addr: SocketAddr, what: &str) -> Result<SocketAddrV4, RadioError> {
    match addr {
        SocketAddr::V4(v4) if v4.port() != 0 && !v4.ip().is_unspecified() => Ok(v4),
        SocketAddr::V4(_) => Err(invalid(format!(
            "{what} {addr} has no port or no address: give both, e.g. 127.0.0.1:7000"
        ))),
        SocketAddr::V6(_) => Err(invalid(format!(
            "{what} {addr} is IPv6: the UDP radio speaks IPv4 only"
        ))),
    }
}

/// The directed broadcast address of the subnet `address`/`prefix_len` at `port`, e.g. 10.7.0.1/24 → 10.7.0.255.
///
/// Fails with `InvalidArgument` for a prefix longer than 30 bits (no broadcast address) or above 32.
pub fn subnet_broadcast(
    address: Ipv4Addr,
    prefix_len: u8,
    port: u16,
) -> Result<SocketAddr, RadioError> {
    if prefix_len > 30 {
        return Err(invalid(format!(
            "a /{prefix_len} subnet has no broadcast address: use a prefix of 30 bits or fewer, or static peers"
        )));
    }
    let host_bits = u32::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
    let b = Ipv4Addr::from(u32::from(address) | host_bits);
    Ok(SocketAddr::from((b, port)))
}

/// The `PeerAddress` of a UDP endpoint: its IPv4 address then its port, big-endian.
pub fn peer_address(addr: SocketAddrV4) -> PeerAddress {
    let [a, b, c, d] = addr.ip().octets();
    let [p, q] = addr.port().to_be_bytes();
    PeerAddress([a, b, c, d, p, q])
}

/// The UDP endpoint a `PeerAddress` names (the inverse of [`peer_address`]).
pub fn socket_address(peer: PeerAddress) -> SocketAddrV4 {
    let [a, b, c, d, p, q] = peer.0;
    SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), u16::from_be_bytes([p, q]))
}

/// Counters of one UDP radio. Every datagram read from the socket is counted in `datagrams_received` and then in
/// exactly one of `accepted` or the `dropped_*` counters, so `datagrams_received == accepted + dropped()`.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct UdpStats {
    /// Datagrams read from the socket.
    pub datagrams_received: u64,
    /// Datagrams decoded and acted on (including harmless duplicates and beacons heard while not scanning).
    pub accepted: u64,
    /// Dropped: not starting with the protocol's magic (stray traffic).
    pub dropped_bad_magic: u64,
    /// Dropped: another protocol version.
    pub dropped_bad_version: u64,
    /// Dropped: shorter than their header or body.
    pub dropped_truncated: u64,
    /// Dropped: an unknown message type.
    pub dropped_unknown_type: u64,
    /// Dropped: longer than the protocol allows, or a packet longer than its link's ATT MTU - 3.
    pub dropped_oversize: u64,
    /// Dropped: a field out of range (ATT MTU, advertisement length, empty packet).
    pub dropped_bad_field: u64,
    /// Dropped: for a link this radio does not have, or from an address or instance that is not its peer.
    pub dropped_unknown_link: u64,
    /// Dropped: this radio's own datagrams (its broadcast beacons, or itself in the static list).
    pub dropped_own: u64,
    /// Dropped: a data packet older than one already delivered on its link (duplicate or reordered).
    pub dropped_out_of_order: u64,
    /// Packets never received on a link: gaps in its sequence numbers (lost on the way).
    pub packets_missing: u64,
    /// Packets accepted by `send`.
    pub packets_sent: u64,
    /// Packets delivered as `Packet` events.
    pub packets_received: u64,
    /// Packets still queued when their link went down.
    pub packets_lost_link_down: u64,
    /// `send` calls refused because the link's queue was full (the packet was not taken).
    pub rejected_queue_full: u64,
    /// Events dropped because the event queue was full (only `Packet` and `Discovered` are ever dropped).
    pub events_dropped: u64,
    /// Datagrams the socket refused to send (buffer full or a network error); control datagrams are lost, data
    /// stays queued and is retried.
    pub send_errors: u64,
    /// Socket read errors other than "nothing to read".
    pub recv_errors: u64,
    /// Connects that arrived while this radio was connecting to the same peer, resolved by the tie-break.
    pub connect_collisions: u64,
    /// Connects this radio refused (not advertising, too many links, already linked to that peer).
    pub connects_rejected: u64,
    /// Links that came up (either role).
    pub links_up: u64,
    /// `LinkDown` events raised, failed connects included.
    pub links_down: u64,
}

impl UdpStats {
    /// Every datagram dropped, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_bad_magic
            + self.dropped_bad_version
            + self.dropped_truncated
            + self.dropped_unknown_type
            + self.dropped_oversize
            + self.dropped_bad_field
            + self.dropped_unknown_link
            + self.dropped_own
            + self.dropped_out_of_order
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RadioErrorKind;

    #[test]
    fn default_is_valid_and_each_bad_field_is_named() {
        UdpConfig::default().validate().unwrap();
        let cases: Vec<(UdpConfig, &str)> = vec![
            (
                UdpConfig {
                    bind: "[::1]:0".parse().unwrap(),
                    ..UdpConfig::default()
                },
                "IPv6",
            ),
            (
                UdpConfig {
                    static_peers: vec!["127.0.0.1:0".parse().unwrap()],
                    ..UdpConfig::default()
                },
                "static peer 127.0.0.1:0",
            ),
            (
                UdpConfig {
                    broadcast: Some("0.0.0.0:7000".parse().unwrap()),
                    ..UdpConfig::default()
                },
                "broadcast address",
            ),
            (
                UdpConfig {
                    att_mtu: 22,
                    ..UdpConfig::default()
                },
                "ATT MTU 22",
            ),
            (
                UdpConfig {
                    att_mtu: 518,
                    ..UdpConfig::default()
                },
                "ATT MTU 518",
            ),
            (
                UdpConfig {
                    beacon_interval: Duration::ZERO,
                    ..UdpConfig::default()
                },
                "beacon_interval",
            ),
            (
                UdpConfig {
                    keepalive_timeout: Duration::from_millis(500),
                    ..UdpConfig::default()
                },
                "must exceed keepalive_interval",
            ),
            (
                UdpConfig {
                    queue_capacity: 0,
                    ..UdpConfig::default()
                },
                "queue_capacity",
            ),
            (
                UdpConfig {
                    max_links: 0,
                    ..UdpConfig::default()
                },
                "max_links",
            ),
            (
                UdpConfig {
                    static_peers: vec!["127.0.0.1:9".parse().unwrap(); MAX_STATIC_PEERS + 1],
                    ..UdpConfig::default()
                },
                "static peers exceed",
            ),
        ];
        for (config, needle) in cases {
            let err = config.validate().unwrap_err();
            assert_eq!(err.kind(), RadioErrorKind::InvalidArgument);
            assert!(err.to_string().contains(needle), "{err} lacks {needle}");
        }
    }

    #[test]
    fn broadcast_of_subnets() {
        let a = Ipv4Addr::new(10, 7, 0, 1);
        assert_eq!(
            subnet_broadcast(a, 24, 7000).unwrap(),
            "10.7.0.255:7000".parse().unwrap()
        );
        assert_eq!(
            subnet_broadcast(a, 0, 1).unwrap(),
            "255.255.255.255:1".parse().unwrap()
        );
        assert_eq!(
            subnet_broadcast(a, 30, 1).unwrap(),
            "10.7.0.3:1".parse().unwrap()
        );
        assert!(subnet_broadcast(a, 31, 1).is_err());
        assert!(subnet_broadcast(a, 40, 1).is_err());
    }

    #[test]
    fn peer_addresses_round_trip() {
        let s: SocketAddrV4 = "192.168.1.20:40001".parse().unwrap();
        let p = peer_address(s);
        assert_eq!(p.to_string(), "c0:a8:01:14:9c:41");
        assert_eq!(socket_address(p), s);
    }
}
