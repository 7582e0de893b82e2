//! `meshnode demo`: seven real nodes on the simulated medium (no Bluetooth needed), paced in real time, with short
//! limits so that in about twenty seconds one watches discovery, handshakes, fragmented private messages crossing
//! five hops, a broadcast, rekeys, a session renewal, a radio link dropping and the mesh recovering. Live progress
//! lines while it runs, a summary table at the end; exit status 0 only when every expected delivery happened.
//!
//! Invariant: the demo is deterministic (fixed seed, no loss) and its script is data (`script()`): what is sent,
//! when, and which deliveries are expected; the checks at the end compare events against that script only.
//!
//! Topology (ATT MTU 23 on alice–bob and erin–frank, so private messages fragment into 20-byte packets there):
//!
//! ```text
//! alice ── bob ── carol ── dave ── erin ── frank
//!                           │
//!                         grace
//! ```

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::time::Duration as StdDuration;

use hal::sim::{LinkParams, MediumConfig, SimInstant, Topology};
use mesh::identity::NodeId;
use mesh::node::{Event, MessageKind, NodeConfig};
use mesh::session::SessionEvent;
use mesh::time::Duration;

use crate::simnet::{NetConfig, NetEventKind, SimNet};

/// Options of `meshnode demo`.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Virtual seconds per real second (2 = twice as fast).
    #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
    pub speed: f64,
    /// Run in virtual time without sleeping (for tests); the output is the same.
    #[arg(long)]
    pub fast: bool,
    /// Seed of identities and the medium.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a speed factor (try 1 or 4)"))?;
    if !(0.1..=1000.0).contains(&v) {
        return Err(format!("speed {v} is outside 0.1..=1000"));
    }
    Ok(v)
}

/// The demo's nodes, by index.
pub const NAMES: [&str; 7] = ["alice", "bob", "carol", "dave", "erin", "frank", "grace"];
const ALICE: usize = 0;
const CAROL: usize = 2;
const DAVE: usize = 3;
const FRANK: usize = 5;
const GRACE: usize = 6;

/// When the carol–dave link drops, and when the two may reconnect.
const DROP_AT_MS: u64 = 11_000;
const HEAL_AT_MS: u64 = 14_000;
/// When the run ends.
const END_MS: u64 = 23_000;

/// One scripted message.
#[derive(Clone, Debug)]
struct Step {
    at_ms: u64,
    from: usize,
    /// `None`: broadcast.
    to: Option<usize>,
    len: usize,
    what: &'static str,
}

/// The script: what is sent and when (virtual milliseconds).
fn script() -> Vec<Step> {
    let mut s = vec![
        Step {
            at_ms: 4_000,
            from: ALICE,
            to: Some(FRANK),
            len: 300,
            what: "first private message: handshake, then 5 hops, fragmented at MTU 23",
        },
        Step {
            at_ms: 5_500,
            from: GRACE,
            to: None,
            len: 40,
            what: "broadcast to everyone",
        },
    ];
    for k in 0..5 {
        s.push(Step {
            at_ms: 6_500 + k * 700,
            from: ALICE,
            to: Some(FRANK),
            len: 120,
            what: "more private messages: rekey after 4",
        });
    }
    s.push(Step {
        at_ms: 12_000,
        from: ALICE,
        to: Some(FRANK),
        len: 200,
        what: "sent while carol–dave is down: waits, arrives after recovery",
    });
    s.push(Step {
        at_ms: 18_500,
        from: FRANK,
        to: Some(ALICE),
        len: 250,
        what: "reply frank → alice on the renewed session",
    });
    s.push(Step {
        at_ms: 19_500,
        from: GRACE,
        to: Some(ALICE),
        len: 80,
        what: "grace → alice, 4 hops",
    });
    s
}

/// The node configuration of the demo: short intervals and session limits so everything happens in ~20 s.
pub fn demo_node_config() -> NodeConfig {
    let mut c = NodeConfig::default();
    let r = &mut c.route;
    r.hello_interval = Duration::from_secs(2);
    r.neighbour_timeout = Duration::from_secs(6);
    r.announce_interval = Duration::from_secs(4);
    r.announce_jitter = Duration::from_millis(500);
    r.announce_soon = Duration::from_millis(500);
    r.announce_min_gap = Duration::from_secs(1);
    r.peer_timeout = Duration::from_secs(30);
    r.ack_timeout = Duration::from_millis(800);
    r.ack_backoff_factor = 1;
    r.max_attempts = 12;
    let s = &mut c.session;
    s.rekey_after_messages = 4;
    s.max_messages = 20;
    s.max_age = Duration::from_secs(15);
    s.handshake_retry = Duration::from_secs(1);
    s.handshake_refill = Duration::from_millis(200);
    c
}

/// The demo's medium and topology.
fn topology() -> Topology {
    let mut t = Topology::new(NAMES.len());
    let small = LinkParams {
        att_mtu: 23,
        ..LinkParams::default()
    };
    let big = LinkParams::default();
    let edges = [
        (0, 1, small),
        (1, 2, big),
        (2, 3, big),
        (3, 4, big),
        (4, 5, small),
        (3, 6, big),
    ];
    for (a, b, p) in edges {
        // The edges above are valid by construction.
        let _ = t.add_edge(a, b, p);
    }
    t
}

/// The state the progress lines and the summary need.
struct Watch {
    ids: HashMap<NodeId, usize>,
    links_shown: BTreeSet<(usize, usize)>,
    sessions_shown: BTreeSet<(usize, usize)>,
    peers_complete: BTreeSet<usize>,
    peer_counts: Vec<BTreeSet<usize>>,
    /// (step, receiver) → delivery time ms, hops.
    delivered: HashMap<(usize, usize), (u64, Option<u8>)>,
    /// step → time sent, packets on the first link.
    sent: HashMap<usize, (u64, u64)>,
    handshakes: u64,
    rekeys: u64,
    renewals: u64,
    link_drops: u64,
    dropped_pair_up_again_ms: Option<u64>,
    out: String,
}

fn name(i: usize) -> &'static str {
    NAMES.get(i).copied().unwrap_or("?")
}

fn ts(at: SimInstant) -> String {
    format!("[{:>6.2}s]", at.as_micros() as f64 / 1e6)
}

fn tag_of(payload: &[u8]) -> Option<usize> {
    let rest = payload.strip_prefix(b"demo")?;
    let end = rest.iter().position(|&b| b == b':')?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

impl Watch {
    fn line(&mut self, at: SimInstant, text: impl AsRef<str>) {
        let l = format!("{} {}", ts(at), text.as_ref());
        println!("{l}");
        self.out.push_str(&l);
        self.out.push('\n');
    }

    fn absorb(&mut self, net: &mut SimNet, steps: &[Step]) {
        for e in net.take_events() {
            let i = e.node;
            match e.kind {
                NetEventKind::LinkUp { peer, att_mtu } => {
                    let pair = (i.min(peer), i.max(peer));
                    if self.links_shown.insert(pair) {
                        let again = if self.link_drops > 0 && pair == (CAROL, DAVE) {
                            self.dropped_pair_up_again_ms = Some(e.at.as_micros() / 1000);
                            "  (recovered: reconnected after the drop)"
                        } else {
                            ""
                        };
                        self.line(
                            e.at,
                            format!(
                                "link up        {} ⇄ {} (ATT MTU {att_mtu}){again}",
                                name(pair.0),
                                name(pair.1)
                            ),
                        );
                    }
                }
                NetEventKind::LinkDown {
                    peer,
                    reason,
                    was_up: true,
                } => {
                    let pair = (i.min(peer), i.max(peer));
                    if self.links_shown.remove(&pair) {
                        self.link_drops += 1;
                        self.line(
                            e.at,
                            format!(
                                "LINK DROP      {} ⇹ {} ({reason:?}); the mesh is cut in two",
                                name(pair.0),
                                name(pair.1)
                            ),
                        );
                    }
                }
                NetEventKind::Node(Event::NeighbourUp { peer, .. }) => {
                    if let Some(&j) = self.ids.get(&peer) {
                        self.line(
                            e.at,
                            format!("neighbour      {} verified {}'s hello", name(i), name(j)),
                        );
                    }
                }
                NetEventKind::Node(Event::PeerAppeared { peer, .. }) => {
                    if let Some(&j) = self.ids.get(&peer) {
                        self.peer_counts[i].insert(j);
                        if self.peer_counts[i].len() == NAMES.len() - 1
                            && self.peers_complete.insert(i)
                        {
                            self.line(
                                e.at,
                                format!(
                                    "discovery      {} knows all {} peers from their signed announces",
                                    name(i),
                                    NAMES.len() - 1
                                ),
                            );
                        }
                    }
                }
                NetEventKind::Node(Event::Session(ev)) => self.session_event(e.at, i, ev),
                NetEventKind::Node(Event::MessageReceived {
                    from,
                    kind,
                    payload,
                    ..
                }) => {
                    let Some(k) = tag_of(&payload) else { continue };
                    let Some(step) = steps.get(k) else { continue };
                    let sender = self.ids.get(&from).copied();
                    let at_ms = e.at.as_micros() / 1000;
                    let hops = net
                        .node(i)
                        .and_then(|n| n.peers().into_iter().find(|p| p.id == from))
                        .map(|p| p.hops);
                    if self.delivered.contains_key(&(k, i)) {
                        continue;
                    }
                    self.delivered.insert((k, i), (at_ms, hops));
                    let latency = at_ms.saturating_sub(self.sent.get(&k).map_or(at_ms, |s| s.0));
                    let hop_text = hops.map_or(String::new(), |h| format!(", {h} hops"));
                    match kind {
                        MessageKind::Broadcast => {
                            let got = self.delivered.keys().filter(|(s, _)| *s == k).count();
                            self.line(
                                e.at,
                                format!(
                                    "broadcast      {}'s broadcast reached {} ({got}/{}){hop_text}, {latency} ms",
                                    name(step.from),
                                    name(i),
                                    NAMES.len() - 1
                                ),
                            );
                        }
                        _ => self.line(
                            e.at,
                            format!(
                                "DELIVERED      #{k} {} → {}: {} B private{hop_text}, {latency} ms after send",
                                sender.map_or("?", name),
                                name(i),
                                payload.len()
                            ),
                        ),
                    }
                }
                NetEventKind::Node(Event::DeliveryFailed { to, reason, .. }) => {
                    let j = self.ids.get(&to).copied().map_or("?", name);
                    self.line(
                        e.at,
                        format!(
                            "FAILED         {} gave up a message to {j}: {reason:?}",
                            name(i)
                        ),
                    );
                }
                _ => {}
            }
        }
    }

    fn session_event(&mut self, at: SimInstant, i: usize, ev: SessionEvent) {
        match ev {
            SessionEvent::Established { peer, .. } => {
                let Some(&j) = self.ids.get(&peer) else {
                    return;
                };
                if self.sessions_shown.insert((i.min(j), i.max(j))) {
                    self.handshakes += 1;
                    self.line(
                        at,
                        format!(
                            "handshake      Noise XX done: {} ⇄ {} share an end-to-end session",
                            name(i),
                            name(j)
                        ),
                    );
                }
            }
            SessionEvent::Rekeyed {
                peer,
                direction,
                epoch,
            } => {
                let j = self.ids.get(&peer).copied().map_or("?", name);
                self.rekeys += 1;
                self.line(
                    at,
                    format!(
                        "rekey          {} ↔ {j}: {direction:?} key now epoch {epoch}",
                        name(i)
                    ),
                );
            }
            SessionEvent::RenewalStarted { peer } => {
                let j = self.ids.get(&peer).copied().map_or("?", name);
                self.line(
                    at,
                    format!(
                        "renewal        {} starts a fresh handshake with {j} (limit at 80 %)",
                        name(i)
                    ),
                );
            }
            SessionEvent::Renewed { peer } => {
                let j = self.ids.get(&peer).copied().map_or("?", name);
                self.renewals += 1;
                self.line(
                    at,
                    format!(
                        "renewed        {} ↔ {j}: sending moved to the new session",
                        name(i)
                    ),
                );
            }
            _ => {}
        }
    }
}

/// Runs the demo and returns its printed log and whether every check passed.
pub fn run_demo(args: &DemoArgs) -> Result<(String, bool), String> {
    let medium = MediumConfig {
        scan_interval: StdDuration::from_millis(300),
        ..MediumConfig::default()
    };
    let config = NetConfig {
        node: demo_node_config(),
        link_limit: 4,
        seed: args.seed,
        ..NetConfig::default()
    };
    let mut net = SimNet::new(medium, topology(), config).map_err(|e| e.to_string())?;
    net.partition(
        SimInstant::from_millis(DROP_AT_MS),
        SimInstant::from_millis(HEAL_AT_MS),
        CAROL,
        DAVE,
    )
    .map_err(|e| e.to_string())?;
    if !args.fast {
        net.set_pacing(Some(args.speed));
    }
    let steps = script();
    let mut w = Watch {
        ids: (0..net.len()).map(|i| (net.node_id(i), i)).collect(),
        links_shown: BTreeSet::new(),
        sessions_shown: BTreeSet::new(),
        peers_complete: BTreeSet::new(),
        peer_counts: vec![BTreeSet::new(); NAMES.len()],
        delivered: HashMap::new(),
        sent: HashMap::new(),
        handshakes: 0,
        rekeys: 0,
        renewals: 0,
        link_drops: 0,
        dropped_pair_up_again_ms: None,
        out: String::new(),
    };
    w.line(
        net.now(),
        format!(
            "meshnode demo: {} nodes on the simulated medium, {}",
            NAMES.len(),
            if args.fast {
                "virtual time (--fast)".to_string()
            } else {
                format!("paced at {}× real time", args.speed)
            }
        ),
    );
    w.line(
        net.now(),
        "topology: alice ─23─ bob ── carol ── dave ── erin ─23─ frank, grace ── dave (23 = ATT MTU 23)",
    );
    let mut next = 0;
    let tick = StdDuration::from_millis(50);
    let end = SimInstant::from_millis(END_MS);
    while net.now() < end {
        let mut until = (net.now() + tick).min(end);
        if let Some(step) = steps.get(next) {
            until = until.min(SimInstant::from_millis(step.at_ms));
        }
        net.run_until(until);
        w.absorb(&mut net, &steps);
        while let Some(step) = steps.get(next) {
            if SimInstant::from_millis(step.at_ms) > net.now() {
                break;
            }
            let k = next;
            next += 1;
            send_step(&mut net, &mut w, k, step);
        }
        if net.now() == SimInstant::from_millis(DROP_AT_MS) {
            w.line(
                net.now(),
                "fault          the carol–dave radio link is dropped for 3 s",
            );
        }
    }
    w.absorb(&mut net, &steps);
    let ok = summary(&net, &mut w, &steps);
    Ok((w.out, ok))
}

fn send_step(net: &mut SimNet, w: &mut Watch, k: usize, step: &Step) {
    let mut payload = format!("demo{k}:").into_bytes();
    payload.resize(step.len, b'~');
    let before = net.medium().node_stats(step.from).map_or(0, |s| s.sent) + net.stats().backlogged;
    let r = match step.to {
        Some(to) => {
            let peer = net.node_id(to);
            net.send(step.from, peer, &payload)
        }
        None => net.broadcast(step.from, &payload),
    };
    let after = net.medium().node_stats(step.from).map_or(0, |s| s.sent) + net.stats().backlogged;
    let packets = after - before;
    w.sent.insert(k, (net.now().as_micros() / 1000, packets));
    let at = net.now();
    let target = step.to.map_or("everyone", name);
    let has_session = step.to.is_none_or(|to| {
        w.sessions_shown
            .contains(&(step.from.min(to), step.from.max(to)))
    });
    match r {
        Ok(_) => {
            let how = if !has_session {
                format!("no session yet: starts a Noise handshake, {packets} packets on air; the message waits")
            } else if packets == 0 {
                "queued: no route to the peer right now".to_string()
            } else if step.to.is_some() {
                format!("encrypted, fragmented into {packets} packets on the first link")
            } else {
                format!("signed, {packets} packet(s) on each link")
            };
            w.line(
                at,
                format!(
                    "send           #{k} {} → {target}: {} B ({how}) — {}",
                    name(step.from),
                    step.len,
                    step.what
                ),
            );
        }
        Err(e) => w.line(
            at,
            format!(
                "send           #{k} {} → {target} REFUSED: {e}",
                name(step.from)
            ),
        ),
    }
}

/// Prints the summary table; returns whether every check passed.
fn summary(net: &SimNet, w: &mut Watch, steps: &[Step]) -> bool {
    let mut s = String::new();
    let mut missing: Vec<String> = Vec::new();
    let _ = writeln!(s, "\nsummary");
    let _ = writeln!(
        s,
        "  {:<3} {:<16} {:>6} {:>9} {:>9} {:>8} {:>5}  status",
        "#", "message", "bytes", "sent", "arrived", "latency", "hops"
    );
    for (k, step) in steps.iter().enumerate() {
        let sent = w.sent.get(&k).map_or(0, |s| s.0);
        let receivers: Vec<usize> = match step.to {
            Some(to) => vec![to],
            None => (0..NAMES.len()).filter(|&i| i != step.from).collect(),
        };
        let got: Vec<&(u64, Option<u8>)> = receivers
            .iter()
            .filter_map(|r| w.delivered.get(&(k, *r)))
            .collect();
        let label = match step.to {
            Some(to) => format!("{} → {}", name(step.from), name(to)),
            None => format!("{} → all", name(step.from)),
        };
        let last = got.iter().map(|d| d.0).max();
        let hops = got.iter().filter_map(|d| d.1).max();
        let status = if got.len() == receivers.len() {
            format!("delivered {}/{}", got.len(), receivers.len())
        } else {
            let lacking: Vec<&str> = receivers
                .iter()
                .filter(|r| !w.delivered.contains_key(&(k, **r)))
                .map(|r| name(*r))
                .collect();
            missing.push(format!(
                "#{k} {label} not delivered to {}",
                lacking.join(", ")
            ));
            format!("MISSING at {}", lacking.join(", "))
        };
        let _ = writeln!(
            s,
            "  {:<3} {:<16} {:>6} {:>8.2}s {:>9} {:>8} {:>5}  {}",
            k,
            label,
            step.len,
            sent as f64 / 1e3,
            last.map_or("-".to_string(), |t| format!("{:.2}s", t as f64 / 1e3)),
            last.map_or("-".to_string(), |t| format!(
                "{} ms",
                t.saturating_sub(sent)
            )),
            hops.map_or("-".to_string(), |h| h.to_string()),
            status
        );
    }
    let totals = net.totals();
    let medium = net.medium().total_stats();
    let recovered = w.dropped_pair_up_again_ms;
    let checks: Vec<(&str, bool, String)> = vec![
        (
            "handshakes completed",
            w.handshakes >= 2,
            format!(
                "{} session pairs ({} handshakes started)",
                w.handshakes, totals.handshakes
            ),
        ),
        ("rekeys", w.rekeys >= 1, format!("{}", w.rekeys)),
        (
            "session renewals",
            w.renewals >= 1,
            format!("{}", w.renewals),
        ),
        (
            "radio link drops",
            w.link_drops >= 1,
            format!("{}", w.link_drops),
        ),
        (
            "recovery (carol–dave back up)",
            recovered.is_some(),
            recovered.map_or("never".to_string(), |t| {
                format!("at {:.2}s", t as f64 / 1e3)
            }),
        ),
    ];
    let _ = writeln!(s);
    for (what, ok, value) in &checks {
        let _ = writeln!(
            s,
            "  {:<32} {:<28} {}",
            what,
            value,
            if *ok { "ok" } else { "MISSING" }
        );
        if !ok {
            missing.push(format!("no {what}"));
        }
    }
    let _ = writeln!(
        s,
        "  {:<32} {} packets on air, {} relayed frames, {} retries, {} lost to the drop",
        "traffic", medium.sent, totals.relayed, totals.retries, medium.lost_link_down
    );
    let ok = missing.is_empty();
    if ok {
        let _ = writeln!(
            s,
            "\nRESULT: every expected delivery happened ({} messages).",
            steps.len()
        );
    } else {
        let _ = writeln!(s, "\nRESULT: FAILED, missing:");
        for m in &missing {
            let _ = writeln!(s, "  - {m}");
        }
    }
    print!("{s}");
    w.out.push_str(&s);
    ok
}

/// Runs `meshnode demo`.
pub fn run(args: &DemoArgs) -> Result<(), String> {
    let (_, ok) = run_demo(args)?;
    if ok {
        Ok(())
    } else {
        Err("not every expected delivery happened (see the summary above)".into())
    }
}
