//! Finding a network interface's IPv4 subnet, so a node can be told `--udp-interface wlan0` instead of working out
//! the directed broadcast address of its subnet by hand.

use std::net::{Ipv4Addr, SocketAddr};

use crate::RadioError;

/// The IPv4 configuration of one network interface, as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceIpv4 {
    /// The interface's name (`wlan0`, `eth0`, a veth end, ...).
    pub name: String,
    /// Its (first) IPv4 address.
    pub address: Ipv4Addr,
    /// The subnet's prefix length, from the netmask.
    pub prefix_len: u8,
    /// The subnet's directed broadcast address (address with every host bit set; the broadcast address the kernel
    /// reports is not used, since `ip addr add` without `brd` leaves it unset or wrong).
    pub broadcast: Ipv4Addr,
}

impl InterfaceIpv4 {
    /// The address beacons are broadcast to on this interface's subnet, at `port`.
    pub fn broadcast_at(&self, port: u16) -> SocketAddr {
        SocketAddr::from((self.broadcast, port))
    }
}

/// One interface address as read from the kernel, before it is judged usable.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Candidate {
    name: String,
    up: bool,
    loopback: bool,
    address: Option<Ipv4Addr>,
    netmask: Option<Ipv4Addr>,
    /// `IFF_BROADCAST`: the link can broadcast (point-to-point links cannot).
    can_broadcast: bool,
}

/// The IPv4 subnet of the interface called `name`.
///
/// Fails with `InvalidArgument` when no interface has that name (the error lists those that have IPv4), when it
/// has no IPv4 address, is down, is a loopback, or has no broadcast address (point-to-point links): each error
/// says what to use instead.
pub fn interface_ipv4(name: &str) -> Result<InterfaceIpv4, RadioError> {
    choose(name, &candidates()?)
}

#[cfg(unix)]
fn candidates() -> Result<Vec<Candidate>, RadioError> {
    use nix::net::if_::InterfaceFlags;

    let v4 = |s: Option<nix::sys::socket::SockaddrStorage>| {
        s.and_then(|s| s.as_sockaddr_in().map(|a| a.ip()))
    };
    let addrs = nix::ifaddrs::getifaddrs()
        .map_err(|e| RadioError::Unavailable(format!("cannot list the network interfaces: {e}")))?;
    Ok(addrs
        .map(|a| Candidate {
            up: a.flags.contains(InterfaceFlags::IFF_UP),
            loopback: a.flags.contains(InterfaceFlags::IFF_LOOPBACK),
            address: v4(a.address),
            netmask: v4(a.netmask),
            can_broadcast: a.flags.contains(InterfaceFlags::IFF_BROADCAST),
            name: a.interface_name,
        })
        .collect())
}

#[cfg(not(unix))]
fn candidates() -> Result<Vec<Candidate>, RadioError> {
    Err(RadioError::InvalidArgument(
        "finding an interface's subnet by name is supported on Linux and other Unix systems only: give the \
         broadcast address itself (--udp-broadcast, e.g. 192.168.1.255:7000)"
            .to_string(),
    ))
}

fn choose(name: &str, candidates: &[Candidate]) -> Result<InterfaceIpv4, RadioError> {
    let invalid = |m: String| Err(RadioError::InvalidArgument(m));
    let named: Vec<&Candidate> = candidates.iter().filter(|c| c.name == name).collect();
    if named.is_empty() {
        let mut known: Vec<&str> = candidates
            .iter()
            .filter(|c| c.address.is_some())
            .map(|c| c.name.as_str())
            .collect();
        known.dedup();
        let known = if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        };
        return invalid(format!(
            "no network interface is called {name:?}; interfaces with an IPv4 address: {known} (`ip -4 addr` lists them)"
        ));
    }
    let Some(c) = named.iter().find(|c| c.address.is_some()) else {
        return invalid(format!(
            "interface {name} has no IPv4 address: the UDP radio speaks IPv4 only (`ip -4 addr show {name}`)"
        ));
    };
    if c.loopback {
        return invalid(format!(
            "interface {name} is a loopback, which cannot broadcast: list the other nodes with --udp-peer instead"
        ));
    }
    if !c.up {
        return invalid(format!(
            "interface {name} is down: bring it up (`ip link set {name} up`) and start again"
        ));
    }
    let (Some(address), Some(netmask)) = (c.address, c.netmask) else {
        return invalid(format!("interface {name} reports no netmask"));
    };
    if !c.can_broadcast {
        return invalid(format!(
            "interface {name} cannot broadcast (a point-to-point link?): list the other nodes with --udp-peer"
        ));
    }
    // The kernel keeps netmasks contiguous; count the leading ones.
    let prefix_len = u32::from(netmask).leading_ones() as u8;
    let broadcast = match super::subnet_broadcast(address, prefix_len, 0) {
        Ok(SocketAddr::V4(b)) => *b.ip(),
        _ => {
            return invalid(format!(
                "interface {name} has a /{prefix_len} subnet, too small for a broadcast address: list the other \
                 nodes with --udp-peer"
            ))
        }
    };
    Ok(InterfaceIpv4 {
        name: name.to_string(),
        address,
        prefix_len,
        broadcast,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(name: &str, addr: Option<[u8; 4]>, can_broadcast: bool) -> Candidate {
        Candidate {
            name: name.to_string(),
            up: true,
            loopback: false,
            address: addr.map(Ipv4Addr::from),
            netmask: addr.map(|_| Ipv4Addr::new(255, 255, 255, 0)),
            can_broadcast,
        }
    }

    fn message(r: Result<InterfaceIpv4, RadioError>) -> String {
        match r {
            Err(RadioError::InvalidArgument(m)) => m,
            other => panic!("expected an argument error, got {other:?}"),
        }
    }

    #[test]
    fn picks_the_ipv4_entry_of_the_named_interface() {
        let list = [
            cand("eth0", None, true), // its link-layer / IPv6 entry
            cand("eth0", Some([10, 7, 0, 5]), true),
            cand("wlan0", Some([192, 168, 1, 9]), true),
        ];
        let i = choose("eth0", &list).unwrap();
        assert_eq!(i.address, Ipv4Addr::new(10, 7, 0, 5));
        assert_eq!(i.prefix_len, 24);
        assert_eq!(i.broadcast_at(7000), "10.7.0.255:7000".parse().unwrap());
    }

    #[test]
    fn every_unusable_interface_is_explained() {
        let mut lo = cand("lo", Some([127, 0, 0, 1]), false);
        lo.loopback = true;
        let mut down = cand("eth1", Some([10, 1, 0, 1]), true);
        down.up = false;
        let mut tiny = cand("p2p", Some([10, 2, 0, 1]), true);
        tiny.netmask = Some(Ipv4Addr::new(255, 255, 255, 254));
        let list = [
            lo,
            down,
            cand("v6only", None, true),
            cand("ppp0", Some([10, 64, 0, 2]), false),
            tiny,
            cand("wlan0", Some([192, 168, 1, 9]), true),
        ];
        let m = message(choose("wlan9", &list));
        assert!(
            m.contains("no network interface is called \"wlan9\""),
            "{m}"
        );
        assert!(m.contains("lo, eth1, ppp0, p2p, wlan0"), "{m}");
        assert!(message(choose("lo", &list)).contains("loopback"));
        assert!(message(choose("eth1", &list)).contains("is down"));
        assert!(message(choose("v6only", &list)).contains("no IPv4 address"));
        assert!(message(choose("ppp0", &list)).contains("cannot broadcast"));
        assert!(message(choose("p2p", &list)).contains("/31 subnet"));
        assert!(message(choose("x", &[])).contains("with an IPv4 address: none"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_kernels_loopback_is_found_and_refused() {
        // Every Linux network namespace has `lo`; reading it proves the kernel query works here.
        let all = candidates().unwrap();
        assert!(all.iter().any(|c| c.name == "lo"), "{all:?}");
        // Refused whether it is up with 127.0.0.1 (a loopback) or down without an address (a fresh namespace).
        assert!(matches!(
            interface_ipv4("lo"),
            Err(RadioError::InvalidArgument(_))
        ));
    }
}
