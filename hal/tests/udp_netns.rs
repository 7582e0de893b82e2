//! Broadcast discovery across two network namespaces joined by a veth pair: each namespace runs one node (this
//! test binary re-run in a helper mode through `ip netns exec`), with no static peers, so the nodes can only find
//! each other by subnet-broadcast beacons (one finds its broadcast address from its interface's name, as `--udp-interface`
//! does); they then connect and exchange one packet each way.
//!
//! Invariant: the namespaces (and so the veth pair) have names unique to this process and are deleted when the test
//! ends, passes or fails; nodes run under a deadline and are killed past it. Without root or `ip netns` the test is
//! skipped with a loud message, not failed.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hal::udp::{interface_ipv4, peer_address, subnet_broadcast, UdpConfig, UdpRadio};
use hal::{Advertisement, LinkDownReason, Radio, RadioEvent};

mod netns_common;
use netns_common::{ip, Namespaces};

const PORT: u16 = 47_123;
const SERVICE: u128 = 0x6d65_7368_6e6f_6465_0000_0000_0000_0003;
const HELPER_ENV: &str = "MESHNODE_UDP_NETNS_NODE";

#[test]
fn beacons_broadcast_across_namespaces_discover_and_connect() {
    let tag = std::process::id();
    let (na, nb) = (format!("mnu{tag}a"), format!("mnu{tag}b"));
    let (va, vb) = (format!("mnu{tag}x"), format!("mnu{tag}y"));
    let guard = match Namespaces::create(&[na.clone(), nb.clone()]) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("\n*** SKIPPED udp_netns: cannot create network namespaces ({e}) ***\n");
            return;
        }
    };
    let setup = [
        vec!["link", "add", &va, "type", "veth", "peer", "name", &vb],
        vec!["link", "set", &va, "netns", &na],
        vec!["link", "set", &vb, "netns", &nb],
        vec!["-n", &na, "addr", "add", "10.213.7.1/24", "dev", &va],
        vec!["-n", &nb, "addr", "add", "10.213.7.2/24", "dev", &vb],
        vec!["-n", &na, "link", "set", &va, "up"],
        vec!["-n", &nb, "link", "set", &vb, "up"],
        vec!["-n", &na, "link", "set", "lo", "up"],
        vec!["-n", &nb, "link", "set", "lo", "up"],
    ];
    for args in &setup {
        ip(args).unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    let exe = exe.to_str().unwrap();
    let mut children = Vec::new();
    // Node 1 finds its broadcast address from its interface's name, node 2 computes it from address and prefix.
    for (ns, me, peer, dev) in [
        (&na, 1, "10.213.7.2", va.as_str()),
        (&nb, 2, "10.213.7.1", ""),
    ] {
        let child = Command::new("ip")
            .args(["netns", "exec", ns, exe])
            .args(["--exact", "netns_node_helper", "--ignored", "--nocapture"])
            .env(HELPER_ENV, format!("{me},10.213.7.{me},{peer},{dev}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        children.push(child);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut outputs = Vec::new();
    for mut child in children {
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        outputs.push(child.wait_with_output().unwrap());
    }
    for out in &outputs {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("udp-netns-ok"),
            "node failed: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(line) = stdout.lines().find(|l| l.starts_with("udp-netns-ok")) {
            eprintln!("{line}");
        }
    }
    drop(guard);
}

/// One node of the test above, run inside a namespace; does nothing when run any other way.
#[test]
#[ignore = "helper: run inside a network namespace by beacons_broadcast_across_namespaces_discover_and_connect"]
fn netns_node_helper() {
    let Ok(spec) = std::env::var(HELPER_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split(',').collect();
    let me: u8 = parts[0].parse().unwrap();
    let my_ip: Ipv4Addr = parts[1].parse().unwrap();
    let peer_ip: Ipv4Addr = parts[2].parse().unwrap();
    let broadcast = if parts[3].is_empty() {
        subnet_broadcast(my_ip, 24, PORT).unwrap()
    } else {
        let found = interface_ipv4(parts[3]).unwrap();
        assert_eq!((found.address, found.prefix_len), (my_ip, 24), "{found:?}");
        found.broadcast_at(PORT)
    };
    assert_eq!(broadcast, SocketAddr::from(([10, 213, 7, 255], PORT)));
    let config = UdpConfig {
        bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, PORT)),
        broadcast: Some(broadcast),
        beacon_interval: Duration::from_millis(20),
        ..UdpConfig::default()
    };
    let mut radio = UdpRadio::new(config).unwrap();
    radio
        .start_advertising(&Advertisement::new(SERVICE, &[me]).unwrap())
        .unwrap();
    radio.start_scanning().unwrap();
    let peer = peer_address(std::net::SocketAddrV4::new(peer_ip, PORT));
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut link, mut connecting, mut got) = (None, false, false);
    while !(link.is_some() && got) {
        assert!(
            Instant::now() < deadline,
            "node {me}: no link or packet in time"
        );
        while let Some(event) = radio.poll_event() {
            match event {
                RadioEvent::Discovered {
                    peer: p,
                    advertisement,
                    ..
                } if p == peer && !connecting && link.is_none() => {
                    assert_eq!(advertisement.data(), &[3 - me]);
                    connecting = true;
                    radio.connect(p).unwrap();
                }
                RadioEvent::LinkUp {
                    link: l, peer: p, ..
                } => {
                    assert_eq!(p, peer);
                    link = Some(l);
                    radio.send(l, &[me; 8]).unwrap();
                }
                RadioEvent::Packet { data, .. } => {
                    assert_eq!(data, vec![3 - me; 8]);
                    got = true;
                }
                // The losing side of a simultaneous connect, or a connect after the peer's got through.
                RadioEvent::LinkDown {
                    reason: LinkDownReason::ConnectFailed,
                    ..
                } => {}
                other @ RadioEvent::LinkDown { .. } => panic!("node {me}: {other:?}"),
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    println!("udp-netns-ok node={me} stats={:?}", radio.stats());
}
