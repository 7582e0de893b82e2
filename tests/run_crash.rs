//! Crash test of persistence (PROTOCOL.md §6.11): two `meshnode run --radio udp` processes exchange private messages
//! in both directions while one of them is killed with SIGKILL 20 times, at moments chosen by a seeded RNG (after a
//! random number of sends, so a message is in flight), and started again each time from its data directory.
//!
//! Every datagram between them passes a relay in this test that keeps a copy, so the test proves from what crossed
//! the link that no (key, nonce) pair was used twice: frames are reassembled from the captured packets, each
//! handshake of a session id starts a new key generation, and every sealed frame's nonce must be new within its
//! sender, receiver, session id and generation.
//!
//! Afterwards: every message either side accepted was delivered, and none twice. For messages to the stable node the
//! proof is its listener, which never stops. For messages to the killed node, the sender's `delivered` event proves
//! the receiver stored the delivery before acknowledging it, and no listener of any of its incarnations saw a
//! message twice. The killed node's store opened cleanly at every start.
//!
//! Radio drops: the relay cuts the link (everything lost, both ways, until both ends time the link out) right after
//! the first packet of a fragmented frame, and right after a HANDSHAKE_1; when it lets traffic through again the
//! message gets through once and is acknowledged.

mod run_util;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use hal::udp::wire::{decode, Message};
use mesh::link::Reassembler;
use mesh::time::Instant as MeshInstant;
use mesh::wire::{FrameView, Sealed};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use run_util::*;

const KILLS: usize = 20;

/// One use of a nonce: sender, receiver, session id, handshake generation, nonce.
type NonceUse = ([u8; 8], [u8; 8], u8, u32, u64);

/// Datagrams seen by the relay: (from the stable node?, bytes).
type Capture = Arc<Mutex<Vec<(bool, Vec<u8>)>>>;

/// What the relay does with the next datagrams: a radio drop is everything lost until the test lifts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// Forward everything.
    Pass,
    /// Forward up to and including the first packet that opens a fragmented frame, then drop everything.
    CutAfterFirstFragment,
    /// Forward up to and including the first HANDSHAKE_1, then drop everything.
    CutAfterHandshake1,
    /// Drop everything.
    Cut,
}

impl Rule {
    /// Whether `datagram` passes, and the rule after it.
    fn apply(self, datagram: &[u8]) -> (bool, Rule) {
        let packet = match decode(datagram) {
            Ok(d) => match d.message {
                Message::Data { payload, .. } => Some(payload),
                _ => None,
            },
            Err(_) => None,
        };
        let header = packet.as_ref().and_then(|p| p.first()).copied();
        let kind = packet.as_ref().and_then(|p| p.get(1)).map(|b| b & 0x1f);
        // Packet types (PROTOCOL.md §3.1): FIRST is 0b10 in the top two bits, SINGLE 0b11.
        let first = header.is_some_and(|h| h >> 6 == 0b10);
        let handshake_1 = header.is_some_and(|h| h >> 6 == 0b11) && kind == Some(0x03);
        match self {
            Rule::Cut => (false, Rule::Cut),
            Rule::CutAfterFirstFragment if first => (true, Rule::Cut),
            Rule::CutAfterHandshake1 if handshake_1 => (true, Rule::Cut),
            other => (true, other),
        }
    }
}

/// Forwards datagrams between the two nodes by its [`Rule`] and keeps a copy of each one forwarded. `a` talks to
/// `xa`, `b` to `xb`.
struct Relay {
    stop: Arc<AtomicBool>,
    rule: Arc<Mutex<Rule>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn start(
        xa: UdpSocket,
        xb: UdpSocket,
        a: SocketAddr,
        b: SocketAddr,
        capture: Capture,
    ) -> Relay {
        let stop = Arc::new(AtomicBool::new(false));
        let rule = Arc::new(Mutex::new(Rule::Pass));
        let mut threads = Vec::new();
        for (from_a, rx, tx, to) in [
            (true, xa.try_clone().unwrap(), xb.try_clone().unwrap(), b),
            (false, xb, xa, a),
        ] {
            let (stop, capture, rule) =
                (Arc::clone(&stop), Arc::clone(&capture), Arc::clone(&rule));
            rx.set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, _)) = rx.recv_from(&mut buf) {
                        let pass = {
                            let mut r = rule.lock().unwrap();
                            let (pass, next) = r.apply(&buf[..n]);
                            *r = next;
                            pass
                        };
                        if pass {
                            capture.lock().unwrap().push((from_a, buf[..n].to_vec()));
                            let _ = tx.send_to(&buf[..n], to);
                        }
                    }
                }
            }));
        }
        Relay {
            stop,
            rule,
            threads,
        }
    }

    fn set(&self, rule: Rule) {
        *self.rule.lock().unwrap() = rule;
    }

    fn rule(&self) -> Rule {
        *self.rule.lock().unwrap()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn node(dir: &Path, bind: u16, peer: u16, name: &str, unlock: &[String]) -> Proc {
    let mut args: Vec<String> = unlock.to_vec();
    args.extend([
        "--radio".into(),
        "udp".into(),
        "--nickname".into(),
        name.into(),
        "--udp-bind".into(),
        format!("127.0.0.1:{bind}"),
        "--udp-peer".into(),
        format!("127.0.0.1:{peer}"),
    ]);
    start(dir, &args)
}

/// Sends `text` from `dir` to the peer `to`; the message id when the node accepted it.
fn send(dir: &Path, to: &str, text: &str) -> Option<String> {
    let (ok, v, _) = ctl(dir, &["send", &to[..8], text]);
    ok.then(|| v["id"].as_str().unwrap().to_string())
}

/// Everything received on `rx` so far.
fn drain(rx: &mpsc::Receiver<serde_json::Value>, into: &mut Vec<serde_json::Value>) {
    while let Ok(v) = rx.try_recv() {
        into.push(v);
    }
}

/// Proves from the captured datagrams that no sealed frame reused a nonce under one key.
fn assert_no_nonce_reused(capture: &[(bool, Vec<u8>)]) -> usize {
    // Per direction and per (sender instance, receiver link): a reassembler.
    let mut reassemblers: BTreeMap<(bool, u64, u32), Reassembler> = BTreeMap::new();
    // Key generation per (src, dst, session id): a new one starts with each new HANDSHAKE_1 of that session id,
    // told apart by its ephemeral key (resends of one handshake, end to end or hop by hop, carry the same).
    let mut generation: BTreeMap<([u8; 8], [u8; 8], u8), u32> = BTreeMap::new();
    let mut ephemerals: BTreeSet<Vec<u8>> = BTreeSet::new();
    // Each nonce use and the frame it sealed (without the TTL): a hop-by-hop resend repeats the same frame, which is
    // not a reuse; a different frame under the same key and nonce is.
    let mut used: BTreeMap<NonceUse, Vec<u8>> = BTreeMap::new();
    let mut sealed = 0;
    for (i, (from_a, bytes)) in capture.iter().enumerate() {
        let Ok(d) = decode(bytes) else { continue };
        let Message::Data {
            dst_link,
            payload: packet,
            ..
        } = d.message
        else {
            continue;
        };
        let r = reassemblers
            .entry((*from_a, d.instance, dst_link))
            .or_insert_with(|| Reassembler::new(Default::default()));
        let Ok(Some(frame)) = r.push(&packet, MeshInstant::from_millis(i as u64)) else {
            continue;
        };
        let Ok(view) = FrameView::new_checked(frame) else {
            continue;
        };
        let (src, dst) = (view.src().0, view.dst().0);
        match view.kind_code() {
            0x03 => {
                let body = view.body();
                let sid = body.first().copied().unwrap_or(0);
                let mut id = src.to_vec();
                id.extend_from_slice(&dst);
                id.extend_from_slice(body);
                if ephemerals.insert(id) {
                    for (s, d) in [(src, dst), (dst, src)] {
                        *generation.entry((s, d, sid)).or_default() += 1;
                    }
                }
            }
            0x06..=0x08 => {
                let s = Sealed::parse(view.body()).unwrap();
                let g = generation
                    .get(&(src, dst, s.session_id))
                    .copied()
                    .unwrap_or(0);
                let mut without_ttl = vec![frame[0]];
                without_ttl.extend_from_slice(&frame[2..]);
                let first = used
                    .entry((src, dst, s.session_id, g, s.nonce))
                    .or_insert_with(|| {
                        sealed += 1;
                        without_ttl.clone()
                    });
                assert!(
                    *first == without_ttl,
                    "nonce {} reused for another frame from {:02x?} to {:02x?} on session {} (datagram {i})",
                    s.nonce,
                    src,
                    dst,
                    s.session_id
                );
            }
            _ => {}
        }
    }
    sealed
}

#[test]
fn a_node_killed_twenty_times_under_traffic_loses_nothing_and_never_reuses_a_nonce() {
    let secret = tempfile::tempdir().unwrap();
    let pass = secret.path().join("passphrase");
    std::fs::write(&pass, "killed many times\n").unwrap();
    std::fs::set_permissions(&pass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let b_unlock = vec!["--passphrase-file".to_string(), pass.display().to_string()];
    let a_unlock = vec!["--no-passphrase".to_string()];
    let mut p = pair(["steady", "crashy"], [&a_unlock, &b_unlock]);
    let (pa, pb) = (p.paths[0].clone(), p.paths[1].clone());
    let (ida, idb) = (p.ids[0].clone(), p.ids[1].clone());
    let mut b = p.procs.pop().unwrap();
    let (_la, rx_a) = listen(&pa);
    let mut events_a = Vec::new();
    let mut events_b = Vec::new();
    let mut sent_to_b: BTreeMap<String, String> = BTreeMap::new(); // id -> text
    let mut sent_to_a: BTreeSet<String> = BTreeSet::new(); // texts
    let mut rng = ChaCha8Rng::seed_from_u64(0x6372_6173);
    let mut n = 0;
    for kill in 0..KILLS {
        wait_for(
            "the restarted node to hear the other",
            Duration::from_secs(20),
            || knows(&pb, &ida).then_some(()),
        );
        let (lb, rx_b) = listen(&pb);
        let sends = 1 + (rng.next_u32() % 6) as usize;
        for _ in 0..sends {
            n += 1;
            let text = format!("a{n}");
            if let Some(id) = send(&pa, &idb, &text) {
                sent_to_b.insert(id, text);
            }
            let text = format!("b{n}");
            if send(&pb, &ida, &text).is_some() {
                sent_to_a.insert(text);
            }
        }
        // SIGKILL now, with the last messages still in flight.
        drop(lb);
        drain(&rx_b, &mut events_b);
        drop(b);
        drain(&rx_b, &mut events_b);
        b = node(&pb, p.ports[1], p.relay_ports[1], "crashy", &b_unlock);
        let (ok, _, err) = ctl(&pb, &["status"]);
        assert!(
            ok,
            "the store did not open cleanly after kill {kill}: {err}"
        );
    }
    // Let everything accepted arrive: every message to A heard, every message to B acknowledged.
    let (_lb, rx_b) = listen(&pb);
    wait_for("every message delivered", Duration::from_secs(120), || {
        drain(&rx_a, &mut events_a);
        drain(&rx_b, &mut events_b);
        let heard: BTreeSet<&str> = events_a
            .iter()
            .filter(|e| e["event"] == "message")
            .filter_map(|e| e["text"].as_str())
            .collect();
        let confirmed: BTreeSet<&str> = events_a
            .iter()
            .filter(|e| e["event"] == "delivered")
            .filter_map(|e| e["id"].as_str())
            .collect();
        (sent_to_a.iter().all(|t| heard.contains(t.as_str()))
            && sent_to_b.keys().all(|id| confirmed.contains(id.as_str())))
        .then_some(())
    });
    drain(&rx_b, &mut events_b);
    // Nothing delivered twice, on either side.
    for (events, who) in [
        (&events_a, "the steady node"),
        (&events_b, "the killed node"),
    ] {
        let mut seen = BTreeSet::new();
        for e in events.iter().filter(|e| e["event"] == "message") {
            let text = e["text"].as_str().unwrap();
            assert!(seen.insert(text.to_string()), "{who} got {text:?} twice");
        }
    }
    assert!(
        sent_to_b.len() >= 2 * KILLS && sent_to_a.len() >= 2 * KILLS,
        "too little traffic: {} and {} messages",
        sent_to_b.len(),
        sent_to_a.len()
    );
    let capture = std::mem::take(&mut *p.capture.lock().unwrap());
    let sealed = assert_no_nonce_reused(&capture);
    assert!(sealed > 2 * KILLS, "only {sealed} sealed frames captured");
    eprintln!(
        "{KILLS} kills: {} messages to the killed node, {} from it, {sealed} sealed frames checked, {} datagrams",
        sent_to_b.len(),
        sent_to_a.len(),
        capture.len()
    );
}

/// Two nodes joined through a relay: node 0 binds `ports[0]` and talks to the relay's `relay_ports[0]`, node 1
/// likewise.
struct Pair {
    relay: Relay,
    capture: Capture,
    _dirs: Vec<tempfile::TempDir>,
    paths: [std::path::PathBuf; 2],
    procs: Vec<Proc>,
    ids: [String; 2],
    ports: Vec<u16>,
    relay_ports: [u16; 2],
}

/// Starts two nodes named `names`, unlocked with `unlock`, through a relay, and waits until they know each other.
fn pair(names: [&str; 2], unlock: [&[String]; 2]) -> Pair {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let paths = [dirs[0].path().join("data"), dirs[1].path().join("data")];
    let ports = free_ports(2);
    let (xa, xb) = (
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    let relay_ports = [
        xa.local_addr().unwrap().port(),
        xb.local_addr().unwrap().port(),
    ];
    let capture: Capture = Arc::default();
    let relay = Relay::start(
        xa,
        xb,
        format!("127.0.0.1:{}", ports[0]).parse().unwrap(),
        format!("127.0.0.1:{}", ports[1]).parse().unwrap(),
        Arc::clone(&capture),
    );
    let procs: Vec<Proc> = (0..2)
        .map(|i| node(&paths[i], ports[i], relay_ports[i], names[i], unlock[i]))
        .collect();
    let ids = [node_id(&paths[0]), node_id(&paths[1])];
    wait_for(
        "the nodes to know each other",
        Duration::from_secs(20),
        || (knows(&paths[0], &ids[1]) && knows(&paths[1], &ids[0])).then_some(()),
    );
    Pair {
        relay,
        capture,
        _dirs: dirs,
        paths,
        procs,
        ids,
        ports,
        relay_ports,
    }
}

fn links(dir: &Path) -> u64 {
    let (ok, v, _) = ctl(dir, &["status"]);
    if ok {
        v["links"].as_u64().unwrap_or(0)
    } else {
        0
    }
}

/// Cuts the link by `rule` while `text` goes from the left node to the right one, waits until both ends saw the
/// link go down, lifts the cut, and checks that `text` arrives once and is acknowledged.
fn radio_drop_during(p: &Pair, rule: Rule, text: &str) {
    let (_l1, rx1) = listen(&p.paths[1]);
    let (_l0, rx0) = listen(&p.paths[0]);
    p.relay.set(rule);
    let id = send(&p.paths[0], &p.ids[1], text).expect("the message is accepted");
    wait_for("the relay to cut the link", Duration::from_secs(20), || {
        (p.relay.rule() == Rule::Cut).then_some(())
    });
    wait_for(
        "both ends to lose the link",
        Duration::from_secs(20),
        || (links(&p.paths[0]) == 0 && links(&p.paths[1]) == 0).then_some(()),
    );
    p.relay.set(Rule::Pass);
    let (mut got, mut acked) = (Vec::new(), Vec::new());
    wait_for(
        "the message after the drop",
        Duration::from_secs(60),
        || {
            drain(&rx1, &mut got);
            drain(&rx0, &mut acked);
            let heard = got
                .iter()
                .any(|e| e["event"] == "message" && e["text"] == text);
            let confirmed = acked
                .iter()
                .any(|e| e["event"] == "delivered" && e["id"] == id.as_str());
            (heard && confirmed).then_some(())
        },
    );
    drain(&rx1, &mut got);
    let copies = got
        .iter()
        .filter(|e| e["event"] == "message" && e["text"] == text)
        .count();
    assert_eq!(copies, 1, "delivered {copies} times");
    assert_no_nonce_reused(&p.capture.lock().unwrap());
}

#[test]
fn a_radio_drop_in_the_middle_of_a_fragmented_frame_loses_nothing() {
    let unlock = ["--no-passphrase".to_string()];
    let p = pair(["left", "right"], [&unlock, &unlock]);
    // A session first, so that the long message is one sealed frame of several packets.
    {
        let (_l, rx) = listen(&p.paths[1]);
        send(&p.paths[0], &p.ids[1], "warm-up").expect("accepted");
        let mut events = Vec::new();
        wait_for("the warm-up message", Duration::from_secs(20), || {
            drain(&rx, &mut events);
            events.iter().any(|e| e["text"] == "warm-up").then_some(())
        });
    }
    let before = [
        sessions_established(&p.paths[0]),
        sessions_established(&p.paths[1]),
    ];
    radio_drop_during(&p, Rule::CutAfterFirstFragment, &"x".repeat(900));
    // The session is end to end: the link went down and up under it, and it carried on with no new handshake.
    let after = [
        sessions_established(&p.paths[0]),
        sessions_established(&p.paths[1]),
    ];
    assert_eq!(before, after);
}

#[test]
fn a_radio_drop_during_a_handshake_loses_nothing() {
    let unlock = ["--no-passphrase".to_string()];
    let p = pair(["left", "right"], [&unlock, &unlock]);
    radio_drop_during(&p, Rule::CutAfterHandshake1, "through a broken handshake");
}
