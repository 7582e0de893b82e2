//! `meshnode bench` figures of the store under traffic: two real nodes with persistence on exchange 10 000 private
//! messages over an in-memory link, and every `Action::Persist` batch goes into a real sled store exactly as
//! `meshnode run` writes it (one transaction and one flush per batch, before the next packet).
//!
//! Figures: the database size on disk afterwards, for the sender and the receiver, against the bytes of the records
//! still live (reference); and the write amplification, bytes the process handed to the operating system while
//! writing (`wchar` of `/proc/self/io`) per byte of key and value the store wrote in its transactions, against 1.

use mesh::identity::Identity;
use mesh::node::{Action, LinkId, Node, NodeConfig, Persist};
use mesh::time::{Duration, Instant};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::bench::Figure;
use crate::store::{Store, Unlock};

/// Messages sent.
const MESSAGES: usize = 10_000;
/// Payload bytes per message (a short chat line).
const PAYLOAD: usize = 48;

/// Bytes the process has written through system calls so far (`wchar`), if the kernel says.
fn written_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                dir_bytes(&p)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            }
        })
        .sum()
}

struct Side {
    node: Node,
    store: Store,
    pending: Vec<Persist>,
    logical: u64,
}

impl Side {
    fn flush(&mut self) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.logical += self
            .store
            .apply_node_records(&self.pending)
            .map_err(|e| e.to_string())?;
        self.pending.clear();
        Ok(())
    }

    /// Drains actions; returns the packets to deliver to the other side (stored records first).
    fn drain(&mut self) -> Result<Vec<Vec<u8>>, String> {
        let mut out = Vec::new();
        while let Some(a) = self.node.poll_action() {
            match a {
                Action::Transmit { packet, .. } => {
                    self.flush()?;
                    out.push(packet);
                }
                Action::Persist(p) => self.pending.push(p),
                _ => {}
            }
        }
        self.flush()?;
        while self.node.poll_event().is_some() {}
        Ok(out)
    }
}

fn open_store(dir: &std::path::Path) -> Result<Store, String> {
    Store::open(dir, Unlock::NoPassphrase)
        .map(|u| u.store)
        .map_err(|e| e.to_string())
}

/// The three store figures.
pub fn store_traffic() -> Result<Vec<Figure>, String> {
    let base = std::env::temp_dir().join(format!("meshnode-bench-traffic-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let result = run(&base);
    let _ = std::fs::remove_dir_all(&base);
    result
}

fn run(base: &std::path::Path) -> Result<Vec<Figure>, String> {
    let (da, db) = (base.join("sender"), base.join("receiver"));
    let mut rng = ChaCha20Rng::seed_from_u64(0x5354_4f52);
    let config = || {
        let mut c = NodeConfig::default();
        c.session.persist = true;
        c
    };
    let mut now = Instant::from_millis(1_000);
    let (ia, ib) = (Identity::generate(&mut rng), Identity::generate(&mut rng));
    let b_id = ib.node_id();
    let mut a = Side {
        node: Node::new(ia, config(), [1; 32], now),
        store: open_store(&da)?,
        pending: Vec::new(),
        logical: 0,
    };
    let mut b = Side {
        node: Node::new(ib, config(), [2; 32], now),
        store: open_store(&db)?,
        pending: Vec::new(),
        logical: 0,
    };
    let link = LinkId(0);
    a.node.link_up(link, 247, now);
    b.node.link_up(link, 247, now);
    let before = written_bytes();
    let payload = vec![b'x'; PAYLOAD];
    let exchange = |a: &mut Side, b: &mut Side, now: Instant| -> Result<(), String> {
        for _ in 0..64 {
            let to_b = a.drain()?;
            let to_a = b.drain()?;
            if to_b.is_empty() && to_a.is_empty() {
                return Ok(());
            }
            for p in to_b {
                b.node.handle_packet(link, &p, now);
            }
            for p in to_a {
                a.node.handle_packet(link, &p, now);
            }
        }
        Ok(())
    };
    exchange(&mut a, &mut b, now)?;
    now = now + Duration::from_secs(2);
    a.node.handle_timeout(now);
    b.node.handle_timeout(now);
    exchange(&mut a, &mut b, now)?;
    for _ in 0..MESSAGES {
        now = now + Duration::from_millis(50);
        a.node
            .send(b_id, &payload, now)
            .map_err(|e| format!("send: {e}"))?;
        exchange(&mut a, &mut b, now)?;
        for side in [&mut a, &mut b] {
            if side.node.poll_timeout().is_some_and(|t| t <= now) {
                side.node.handle_timeout(now);
            }
        }
    }
    exchange(&mut a, &mut b, now)?;
    let written = match (before, written_bytes()) {
        (Some(x), Some(y)) => y.saturating_sub(x),
        _ => 0,
    };
    let logical = a.logical + b.logical;
    a.store.flush().map_err(|e| e.to_string())?;
    b.store.flush().map_err(|e| e.to_string())?;
    let live = |s: &Store| -> u64 {
        use crate::store::TreeName;
        [
            TreeName::Sessions,
            TreeName::Nonces,
            TreeName::Outbox,
            TreeName::Seen,
        ]
        .iter()
        .map(|t| {
            s.tree(*t)
                .iter()
                .flatten()
                .map(|(k, v)| (k.len() + v.len()) as u64)
                .sum::<u64>()
        })
        .sum()
    };
    let (live_a, live_b) = (live(&a.store), live(&b.store));
    drop(a);
    drop(b);
    Ok(vec![
        Figure::new(
            "store_bytes_10k_sent",
            dir_bytes(&da) as f64,
            "bytes on disk",
            "bytes of live records",
            live_a as f64,
        ),
        Figure::new(
            "store_bytes_10k_received",
            dir_bytes(&db) as f64,
            "bytes on disk",
            "bytes of live records",
            live_b as f64,
        ),
        Figure::new(
            "store_write_amplification",
            if logical > 0 {
                written as f64 / logical as f64
            } else {
                0.0
            },
            "bytes written/record",
            "1 (each record byte written once)",
            1.0,
        ),
    ])
}
