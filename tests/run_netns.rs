//! `meshnode run --radio udp` as a field test runs it: three processes in three network namespaces, each finding
//! its neighbours by broadcast beacons on the subnet of the interface it was given (`--udp-interface`), none told
//! another's address except where two subnets meet. The namespaces are joined in a line by two veth pairs, so the
//! ends can only talk through the middle node, which relays:
//!
//! ```text
//! ns0 [10.213.8.1/24] ---- [10.213.8.2/24] ns1 [10.213.9.1/24] ---- [10.213.9.2/24] ns2
//! ```
//!
//! The middle node broadcasts on its first subnet and lists the far end's address as a static peer on the second
//! (one `--udp-interface` per node); it hears both subnets since it binds 0.0.0.0.
//!
//! Invariant: namespace and interface names are unique to this process; the namespaces are deleted and every node
//! killed when the test ends, passes or fails; every wait has a deadline. Without root or `ip netns` the test is
//! skipped with a loud message, not failed.

use std::path::PathBuf;
use std::time::Duration;

#[path = "../hal/tests/netns_common/mod.rs"]
mod netns_common;
mod run_util;

use netns_common::{ip, Namespaces};
use run_util::*;

#[test]
fn three_namespaces_discover_by_interface_and_relay_across_the_middle() {
    let tag = std::process::id();
    let ns: Vec<String> = (0..3).map(|i| format!("mnr{tag}n{i}")).collect();
    let guard = match Namespaces::create(&ns) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("\n*** SKIPPED run_netns: cannot create network namespaces ({e}) ***\n");
            return;
        }
    };
    // Interface names: at most 15 bytes.
    let dev = |x: &str| format!("mnr{tag}{x}");
    let (a0, a1, b1, b2) = (dev("a"), dev("b"), dev("c"), dev("d"));
    let setup: Vec<Vec<&str>> = vec![
        vec!["link", "add", &a0, "type", "veth", "peer", "name", &a1],
        vec!["link", "add", &b1, "type", "veth", "peer", "name", &b2],
        vec!["link", "set", &a0, "netns", &ns[0]],
        vec!["link", "set", &a1, "netns", &ns[1]],
        vec!["link", "set", &b1, "netns", &ns[1]],
        vec!["link", "set", &b2, "netns", &ns[2]],
        vec!["-n", &ns[0], "addr", "add", "10.213.8.1/24", "dev", &a0],
        vec!["-n", &ns[1], "addr", "add", "10.213.8.2/24", "dev", &a1],
        vec!["-n", &ns[1], "addr", "add", "10.213.9.1/24", "dev", &b1],
        vec!["-n", &ns[2], "addr", "add", "10.213.9.2/24", "dev", &b2],
        vec!["-n", &ns[0], "link", "set", &a0, "up"],
        vec!["-n", &ns[1], "link", "set", &a1, "up"],
        vec!["-n", &ns[1], "link", "set", &b1, "up"],
        vec!["-n", &ns[2], "link", "set", &b2, "up"],
    ];
    for args in &setup {
        ip(args).unwrap();
    }

    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let paths: Vec<PathBuf> = dirs.iter().map(|d| d.path().join("data")).collect();
    let node_args = |i: usize, iface: &str, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "--no-passphrase",
            "--radio",
            "udp",
            "--nickname",
            &format!("ns{i}"),
            "--udp-interface",
            iface,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let _nodes = [
        start_in(Some(&ns[0]), &paths[0], &node_args(0, &a0, &[])),
        start_in(
            Some(&ns[1]),
            &paths[1],
            &node_args(1, &a1, &["--udp-peer", "10.213.9.2:7700"]),
        ),
        start_in(Some(&ns[2]), &paths[2], &node_args(2, &b2, &[])),
    ];
    let ids: Vec<String> = paths.iter().map(|p| node_id(p)).collect();

    // The ends learn each other only through the middle node; then a message crosses both subnets each way.
    wait_for(
        "the ends to learn each other",
        Duration::from_secs(30),
        || (knows(&paths[0], &ids[2]) && knows(&paths[2], &ids[0])).then_some(()),
    );
    let (ok, v, err) = ctl(&paths[0], &["peers"]);
    assert!(ok, "{err}");
    let far = v
        .as_array()
        .and_then(|a| a.iter().find(|p| p["id"] == ids[2]).cloned())
        .unwrap();
    assert_eq!(far["hops"], 2, "{far}");
    let (_l2, rx2) = listen(&paths[2]);
    send_until_heard(&paths[0], &ids[2], &rx2, "across two subnets");
    let (_l0, rx0) = listen(&paths[0]);
    send_until_heard(&paths[2], &ids[0], &rx0, "and back");
    drop(guard);
}
