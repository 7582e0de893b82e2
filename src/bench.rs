//! `meshnode bench`: the protocol core's figures against reference implementations, measured side by side in one
//! run (PROTOCOL.md and the README name the goals). Throughput figures alternate rounds of ours and the reference
//! and report the median round of each, so machine noise hits both alike. Memory figures are measured with the
//! counting allocator (heap bytes live) plus the inline size of the structures.
//!
//! Every figure has `ratio = value / reference_value`. For rates higher is better; for bytes and milliseconds lower
//! is better.

use std::hint::black_box;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

/// Options of `meshnode bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Print a JSON array of figures instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Seconds spent measuring each throughput figure (ours and the reference share it).
    #[arg(long, default_value_t = 2.0, value_parser = parse_seconds)]
    pub seconds: f64,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds (try 2 or 0.5)"))?;
    if !(0.01..=600.0).contains(&v) {
        return Err(format!(
            "{v} s is out of range: give 0.01 to 600 seconds per figure"
        ));
    }
    Ok(v)
}

/// One line of the report.
#[derive(Serialize, Debug, Clone)]
pub struct Figure {
    /// Figure name, e.g. `transport_244`.
    pub name: String,
    /// Our measured value.
    pub value: f64,
    /// Unit of `value` and `reference_value`.
    pub unit: &'static str,
    /// What the reference is.
    pub reference: &'static str,
    /// The reference's value, measured in the same run (or a fixed ideal, as the name of the reference says).
    pub reference_value: f64,
    /// `value / reference_value`.
    pub ratio: f64,
}

impl Figure {
    pub(crate) fn new(
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
        reference: &'static str,
        reference_value: f64,
    ) -> Self {
        let ratio = if reference_value > 0.0 {
            value / reference_value
        } else {
            0.0
        };
        Figure {
            name: name.into(),
            value,
            unit,
            reference,
            reference_value,
            ratio,
        }
    }
}

/// Rounds per throughput figure and side.
const ROUNDS: usize = 5;

/// Runs `op` repeatedly for about `budget` and returns operations per second.
fn rate(budget: StdDuration, mut op: impl FnMut()) -> f64 {
    // Calibrate a batch that takes about 1/20 of the budget, so the clock is read rarely.
    let mut batch = 1u64;
    loop {
        let t = StdInstant::now();
        for _ in 0..batch {
            op();
        }
        if t.elapsed() * 20 >= budget || batch >= 1 << 30 {
            break;
        }
        batch *= 2;
    }
    let start = StdInstant::now();
    let mut ops = 0u64;
    while start.elapsed() < budget {
        for _ in 0..batch {
            op();
        }
        ops += batch;
    }
    ops as f64 / start.elapsed().as_secs_f64()
}

/// Alternates rounds of `ours` and `reference`; returns the median rate of each.
fn side_by_side(seconds: f64, mut ours: impl FnMut(), mut reference: impl FnMut()) -> (f64, f64) {
    let per_round = StdDuration::from_secs_f64(seconds / (2 * ROUNDS) as f64);
    let (mut a, mut b) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    for _ in 0..ROUNDS {
        a.push(rate(per_round, &mut ours));
        b.push(rate(per_round, &mut reference));
    }
    (median(&mut a), median(&mut b))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The reference for the transport figures: bare ChaCha20-Poly1305 (the crate snow uses) sealing and opening a
/// message of the same size, in place in a reused buffer, with the same 31 bytes of associated data: no framing,
/// no fragmentation, no allocation.
struct BareAead {
    cipher: ChaCha20Poly1305,
    message: Vec<u8>,
    buf: Vec<u8>,
    ad: [u8; 31],
    counter: u64,
}

impl BareAead {
    fn new(size: usize) -> Self {
        BareAead {
            cipher: ChaCha20Poly1305::new(&[0x42u8; 32].into()),
            message: (0..size).map(|i| i as u8).collect(),
            buf: Vec::with_capacity(size),
            ad: [7; 31],
            counter: 0,
        }
    }

    fn seal_open(&mut self) {
        self.counter += 1;
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&self.counter.to_le_bytes());
        self.buf.clear();
        self.buf.extend_from_slice(&self.message);
        let tag = self
            .cipher
            .encrypt_in_place_detached(&nonce.into(), &self.ad, &mut self.buf)
            .expect("seal");
        self.cipher
            .decrypt_in_place_detached(&nonce.into(), &self.ad, &mut self.buf, &tag)
            .expect("open");
        black_box(&self.buf);
    }
}

/// A snow RNG source for the bare-snow reference: a seeded ChaCha20 stream per handshake state.
struct SeededResolver {
    seed: std::cell::Cell<u64>,
}

struct SnowRng(ChaCha20Rng);

impl snow::types::Random for SnowRng {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

impl snow::resolvers::CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn snow::types::Random>> {
        let s = self.seed.get();
        self.seed.set(s.wrapping_add(1));
        Some(Box::new(SnowRng(ChaCha20Rng::seed_from_u64(s))))
    }
    fn resolve_dh(&self, choice: &snow::params::DHChoice) -> Option<Box<dyn snow::types::Dh>> {
        snow::resolvers::DefaultResolver.resolve_dh(choice)
    }
    fn resolve_hash(
        &self,
        choice: &snow::params::HashChoice,
    ) -> Option<Box<dyn snow::types::Hash>> {
        snow::resolvers::DefaultResolver.resolve_hash(choice)
    }
    fn resolve_cipher(
        &self,
        choice: &snow::params::CipherChoice,
    ) -> Option<Box<dyn snow::types::Cipher>> {
        snow::resolvers::DefaultResolver.resolve_cipher(choice)
    }
}

/// The reference for the handshake figure: a complete `Noise_XX_25519_ChaChaPoly_SHA256` handshake with bare
/// snow (both sides, three messages, into transport mode), with the same payloads as ours.
struct BareSnow {
    seed: u64,
    keys: [[u8; 32]; 2],
    buf: Vec<u8>,
    payload: Vec<u8>,
}

impl BareSnow {
    fn new() -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut keys = [[0u8; 32]; 2];
        rng.fill_bytes(&mut keys[0]);
        rng.fill_bytes(&mut keys[1]);
        BareSnow {
            seed: 0,
            keys,
            buf: vec![0u8; 1024],
            payload: vec![0u8; 1024],
        }
    }

    fn handshake(&mut self) {
        black_box(self.handshake_states());
    }

    /// One handshake; returns both ends' transport states.
    fn handshake_states(&mut self) -> (snow::TransportState, snow::TransportState) {
        let params: snow::params::NoiseParams = "Noise_XX_25519_ChaChaPoly_SHA256"
            .parse()
            .expect("noise params");
        let resolver = |seed| {
            Box::new(SeededResolver {
                seed: std::cell::Cell::new(seed),
            })
        };
        self.seed = self.seed.wrapping_add(2);
        let prologue = [0u8; 29];
        let mut i = snow::Builder::with_resolver(params.clone(), resolver(self.seed))
            .local_private_key(&self.keys[0])
            .and_then(|b| b.prologue(&prologue))
            .and_then(|b| b.build_initiator())
            .expect("initiator");
        let mut r = snow::Builder::with_resolver(params, resolver(self.seed + 1))
            .local_private_key(&self.keys[1])
            .and_then(|b| b.prologue(&prologue))
            .and_then(|b| b.build_responder())
            .expect("responder");
        let ed = [9u8; 32];
        let n = i.write_message(&[], &mut self.buf).expect("m1");
        r.read_message(&self.buf[..n], &mut self.payload)
            .expect("m1 read");
        let n = r.write_message(&ed, &mut self.buf).expect("m2");
        i.read_message(&self.buf[..n], &mut self.payload)
            .expect("m2 read");
        let n = i.write_message(&ed, &mut self.buf).expect("m3");
        r.read_message(&self.buf[..n], &mut self.payload)
            .expect("m3 read");
        (
            i.into_transport_mode().expect("i"),
            r.into_transport_mode().expect("r"),
        )
    }
}

/// `reassembly_bytes`: memory of one link (both directions' state: a Reassembler at its configured bounds holding
/// a partial frame of the maximum size, and a Fragmenter), measured as heap bytes live plus inline size.
fn reassembly_bytes() -> Figure {
    use mesh::link::{Fragmenter, Reassembler, ReassemblyConfig};
    let config = ReassemblyConfig::default();
    let frame = vec![0x5au8; config.max_frame_len];
    let mut reassembler = Reassembler::new(config);
    let mut fragmenter = Fragmenter::new();
    // Open a partial frame of the maximum size: everything but its last packet, at the smallest MTU.
    let packets: Vec<Vec<u8>> = match fragmenter.fragment(&frame, mesh::link::ATT_MTU_MIN) {
        Ok(packets) => packets
            .map(|p| {
                let mut v = Vec::new();
                p.append_to(&mut v);
                v
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let scratch = crate::alloc_count::live_bytes();
    let now = mesh::time::Instant::ZERO;
    for p in &packets[..packets.len().saturating_sub(1)] {
        let _ = reassembler.push(p, now);
    }
    let heap = crate::alloc_count::live_bytes() - scratch;
    let inline = std::mem::size_of::<Reassembler>() + std::mem::size_of::<Fragmenter>();
    black_box((&reassembler, &fragmenter));
    Figure::new(
        "reassembly_bytes",
        (heap + inline) as f64,
        "bytes",
        "one buffer of the maximum frame size (4096)",
        mesh::wire::MAX_FRAME_LEN as f64,
    )
}

use hal::sim::EventQueue;
use mesh::identity::{Identity, NodeId};
use mesh::link::{Fragmenter, Reassembler};
use mesh::route::dup::{DupCache, FrameKey};
use mesh::session::{SessionConfig, Sessions};
use mesh::time::{Duration, Instant};
use mesh::wire::Kind;

/// A session configuration for measuring transport alone: default rekeying (every 250 messages) stays on, but the
/// session limits are lifted so that no renewal handshake lands inside the measurement, and padding is off.
fn transport_config() -> SessionConfig {
    let mut cfg = SessionConfig::default();
    cfg.max_messages = u64::MAX / 2;
    cfg.max_age = Duration::from_secs(1 << 40);
    cfg.idle_timeout = Duration::from_secs(1 << 40);
    cfg.padding_buckets.clear();
    cfg
}

fn identities() -> (Identity, Identity) {
    let mut rng = ChaCha20Rng::seed_from_u64(0x6d65_7368);
    (Identity::generate(&mut rng), Identity::generate(&mut rng))
}

/// Two session layers with an established session from `a` to `b`, pumped in memory.
struct Pair {
    a: Sessions,
    b: Sessions,
    b_id: NodeId,
    now: Instant,
}

impl Pair {
    fn new(cfg: SessionConfig, seed: u64) -> Result<Self, String> {
        let (ia, ib) = identities();
        let b_id = ib.node_id();
        let mut seeds = ChaCha20Rng::seed_from_u64(seed);
        let (mut sa, mut sb) = ([0u8; 32], [0u8; 32]);
        seeds.fill_bytes(&mut sa);
        seeds.fill_bytes(&mut sb);
        Pair::establish(
            Sessions::new(ia, cfg.clone(), sa),
            Sessions::new(ib, cfg, sb),
            b_id,
        )
    }

    /// `a` sends a first message to `b` (id `b_id`), which starts the handshake; both sides are pumped until
    /// quiet, and both must then hold an established session.
    fn establish(a: Sessions, b: Sessions, b_id: NodeId) -> Result<Self, String> {
        let a_id = a.node_id();
        let mut pair = Pair {
            a,
            b,
            b_id,
            now: Instant::ZERO,
        };
        pair.a
            .send(b_id, Kind::Transport, b"hello", pair.now)
            .map_err(|e| format!("first send: {e}"))?;
        pair.pump()?;
        if !(pair.a.is_established(&b_id) && pair.b.is_established(&a_id)) {
            return Err("the handshake did not complete".into());
        }
        Ok(pair)
    }

    /// Delivers every pending frame both ways until both sides are quiet.
    fn pump(&mut self) -> Result<usize, String> {
        let mut delivered = 0;
        for _ in 0..64 {
            let mut moved = false;
            while let Some(out) = self.a.poll_transmit() {
                moved = true;
                if self
                    .b
                    .handle_frame(&out.frame, self.now)
                    .map_err(|e| format!("b: {e}"))?
                    .is_some()
                {
                    delivered += 1;
                }
            }
            while let Some(out) = self.b.poll_transmit() {
                moved = true;
                self.a
                    .handle_frame(&out.frame, self.now)
                    .map_err(|e| format!("a: {e}"))?;
            }
            while self.a.poll_event().is_some() {}
            while self.b.poll_event().is_some() {}
            if !moved {
                return Ok(delivered);
            }
        }
        Err("frames kept flowing after 64 rounds".into())
    }
}

/// Our transport pipeline: seal in the session layer, fragment at ATT MTU 247, reassemble, open.
struct OurTransport {
    pair: Pair,
    message: Vec<u8>,
    fragmenter: Fragmenter,
    reassembler: Reassembler,
    packet: Vec<u8>,
}

const BENCH_MTU: u16 = 247;

impl OurTransport {
    fn new(size: usize) -> Result<Self, String> {
        Ok(OurTransport {
            pair: Pair::new(transport_config(), 11)?,
            message: (0..size).map(|i| i as u8).collect(),
            fragmenter: Fragmenter::new(),
            reassembler: Reassembler::default(),
            packet: vec![0u8; mesh::link::MAX_PACKET_LEN],
        })
    }

    fn send_one(&mut self) -> Result<(), String> {
        let p = &mut self.pair;
        p.a.send(p.b_id, Kind::Transport, &self.message, p.now)
            .map_err(|e| format!("send: {e}"))?;
        let out = p.a.poll_transmit().ok_or("no frame after send")?;
        let packets = self
            .fragmenter
            .fragment(&out.frame, BENCH_MTU)
            .map_err(|e| format!("fragment: {e}"))?;
        let mut got = 0;
        for packet in packets {
            let n = packet
                .write_to(&mut self.packet)
                .ok_or("packet buffer too small")?;
            if let Some(frame) = self
                .reassembler
                .push(&self.packet[..n], p.now)
                .map_err(|e| format!("reassemble: {e}"))?
            {
                let delivered =
                    p.b.handle_frame(frame, p.now)
                        .map_err(|e| format!("open: {e}"))?;
                got += delivered.map_or(0, |d| d.plaintext.len());
            }
        }
        if got != self.message.len() {
            return Err(format!("delivered {got} bytes of {}", self.message.len()));
        }
        while p.a.poll_event().is_some() {}
        while p.b.poll_event().is_some() {}
        Ok(())
    }
}

fn transport(size: usize, seconds: f64) -> Result<Figure, String> {
    let mut ours = OurTransport::new(size)?;
    ours.send_one()?; // fail loudly before timing if the pipeline is broken
    let mut reference = BareAead::new(size);
    let mut failure = None;
    let (value, reference_value) = side_by_side(
        seconds,
        || {
            if let Err(e) = ours.send_one() {
                failure.get_or_insert(e);
            }
        },
        || reference.seal_open(),
    );
    if let Some(e) = failure {
        return Err(format!("transport_{size}: {e}"));
    }
    Ok(Figure::new(
        format!("transport_{size}"),
        value,
        "messages/s",
        "bare chacha20poly1305 seal+open in place",
        reference_value,
    ))
}

/// One complete handshake through the session layer: two fresh nodes, A sends, both sides pump until A and B
/// are established.
fn our_handshake(
    ia: &Identity,
    ib: &Identity,
    cfg: &SessionConfig,
    seed: u64,
) -> Result<(), String> {
    let mut sa = [0u8; 32];
    sa[..8].copy_from_slice(&seed.to_le_bytes());
    let mut sb = sa;
    sb[31] = 1;
    let pair = Pair::establish(
        Sessions::new(ia.clone(), cfg.clone(), sa),
        Sessions::new(ib.clone(), cfg.clone(), sb),
        ib.node_id(),
    )?;
    black_box(&pair.a);
    Ok(())
}

fn handshake(seconds: f64) -> Result<Figure, String> {
    let (ia, ib) = identities();
    let cfg = SessionConfig::default();
    let mut seed = 0u64;
    our_handshake(&ia, &ib, &cfg, seed)?;
    let mut failure = None;
    let mut reference = BareSnow::new();
    let (value, reference_value) = side_by_side(
        seconds,
        || {
            seed += 1;
            if let Err(e) = our_handshake(&ia, &ib, &cfg, seed) {
                failure.get_or_insert(e);
            }
        },
        || reference.handshake(),
    );
    if let Some(e) = failure {
        return Err(format!("handshake: {e}"));
    }
    Ok(Figure::new(
        "handshake",
        value,
        "handshakes/s",
        "bare snow XX, both sides",
        reference_value,
    ))
}

/// `wire_efficiency_<size>_mtu<mtu>`: a real private message of `size` bytes sealed by the session layer (no
/// padding), split by the real fragmenter; plaintext bytes over the bytes of all GATT values it took.
fn wire_efficiency() -> Result<Vec<Figure>, String> {
    let mut pair = Pair::new(transport_config(), 21)?;
    let mut figures = Vec::new();
    for size in [32usize, 244, 1024] {
        let message = vec![0x33u8; size];
        pair.a
            .send(pair.b_id, Kind::Transport, &message, pair.now)
            .map_err(|e| format!("send: {e}"))?;
        let out = pair.a.poll_transmit().ok_or("no frame after send")?;
        for mtu in [23u16, 185, 247, 517] {
            let on_air: usize = Fragmenter::new()
                .fragment(&out.frame, mtu)
                .map_err(|e| format!("fragment: {e}"))?
                .map(|p| p.len())
                .sum();
            figures.push(Figure::new(
                format!("wire_efficiency_{size}_mtu{mtu}"),
                size as f64 / on_air as f64,
                "plaintext/on-air",
                "ideal: plaintext only",
                1.0,
            ));
        }
    }
    Ok(figures)
}

/// How many sessions the memory figures average over.
const MEMORY_SESSIONS: usize = 32;

/// `session_bytes`: what one more established session costs a node. One node (A) opens sessions to 32 peers;
/// each peer is dropped once its handshake is done, so the counting allocator's growth between A alone and A
/// with 32 sessions is A's own (session keys, replay windows, table entries, kept handshake messages, grown
/// queues), divided by 32. The reference is the same count for bare snow's initiator-side transport state.
fn session_bytes() -> Result<Figure, String> {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let cfg = SessionConfig::default();
    let peers: Vec<Identity> = (0..MEMORY_SESSIONS)
        .map(|_| Identity::generate(&mut rng))
        .collect();
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let mut a = Sessions::new(Identity::generate(&mut rng), cfg.clone(), seed);
    let before = crate::alloc_count::live_bytes();
    for ib in &peers {
        rng.fill_bytes(&mut seed);
        a = Pair::establish(
            a,
            Sessions::new(ib.clone(), cfg.clone(), seed),
            ib.node_id(),
        )?
        .a;
    }
    let ours =
        crate::alloc_count::live_bytes().saturating_sub(before) as f64 / MEMORY_SESSIONS as f64;
    black_box(&a);

    let mut snow_ref = BareSnow::new();
    let mut states = Vec::with_capacity(MEMORY_SESSIONS);
    let before = crate::alloc_count::live_bytes();
    for _ in 0..MEMORY_SESSIONS {
        states.push(snow_ref.handshake_states().0);
    }
    let heap = crate::alloc_count::live_bytes().saturating_sub(before);
    let reference = (heap + MEMORY_SESSIONS * std::mem::size_of::<snow::TransportState>()) as f64
        / MEMORY_SESSIONS as f64;
    black_box(&states);
    Ok(Figure::new(
        "session_bytes",
        ours,
        "bytes",
        "bare snow TransportState (initiator side)",
        reference,
    ))
}

/// `store_unlock`: milliseconds from a closed store to an unlocked identity, as `meshnode run` does it at every
/// start: open the sled database (lock, checks, schema), Argon2id of the passphrase with the parameters new stores
/// use ([`KdfParams::DEFAULT`]), open the sealed identity. The reference is bare Argon2id with the same parameters,
/// so the ratio shows what the store adds to the key derivation. Median of up to 9 rounds (`--seconds` × 2.5).
fn store_unlock(seconds: f64) -> Result<Figure, String> {
    use crate::store::{key::random_salt, KdfParams, Passphrase, StorageKey, Store, Unlock};
    let passphrase = || {
        Passphrase::new(zeroize::Zeroizing::new(
            b"correct horse battery staple".to_vec(),
        ))
        .map_err(|e| e.to_string())
    };
    let dir = std::env::temp_dir().join(format!("meshnode-bench-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let result = (|| {
        drop(Store::open(&dir, Unlock::Passphrase(passphrase()?)).map_err(|e| e.to_string())?);
        let rounds = ((seconds * 2.5).round() as usize).clamp(1, 9);
        let salt = random_salt().map_err(|e| e.to_string())?;
        let (mut ours, mut reference) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let p = passphrase()?;
            let t = StdInstant::now();
            let unlocked = Store::open(&dir, Unlock::Passphrase(p)).map_err(|e| e.to_string())?;
            ours.push(t.elapsed().as_secs_f64() * 1e3);
            drop(black_box(unlocked));
            let p = passphrase()?;
            let t = StdInstant::now();
            let key =
                StorageKey::derive(&p, &salt, KdfParams::DEFAULT).map_err(|e| e.to_string())?;
            reference.push(t.elapsed().as_secs_f64() * 1e3);
            drop(black_box(key));
        }
        Ok::<_, String>((median(&mut ours), median(&mut reference)))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    let (ours, reference) = result?;
    Ok(Figure::new(
        "store_unlock",
        ours,
        "ms",
        "bare Argon2id, m = 64 MiB, t = 3, p = 1",
        reference,
    ))
}

/// The reference for `dup_cache`: the duplicate cache as it was before its hash index, a `BTreeMap` from frame key
/// to expiry beside the same insertion-order queue, with the same rules.
struct BTreeDupCache {
    capacity: usize,
    lifetime: Duration,
    expiry: std::collections::BTreeMap<FrameKey, Instant>,
    order: std::collections::VecDeque<(FrameKey, Instant)>,
}

impl BTreeDupCache {
    fn new(capacity: usize, lifetime: Duration) -> Self {
        BTreeDupCache {
            capacity,
            lifetime,
            expiry: std::collections::BTreeMap::new(),
            order: std::collections::VecDeque::new(),
        }
    }

    fn insert(&mut self, key: FrameKey, now: Instant) -> bool {
        while let Some(&(old, at)) = self.order.front() {
            if at > now {
                break;
            }
            self.order.pop_front();
            if self.expiry.get(&old) == Some(&at) {
                self.expiry.remove(&old);
            }
        }
        if self.expiry.get(&key).is_some_and(|&e| e > now) {
            return false;
        }
        while self.expiry.len() >= self.capacity {
            match self.order.pop_front() {
                Some((old, at)) => {
                    if self.expiry.get(&old) == Some(&at) {
                        self.expiry.remove(&old);
                    }
                }
                None => break,
            }
        }
        let expires = now + self.lifetime;
        self.expiry.insert(key, expires);
        self.order.push_back((key, expires));
        true
    }
}

/// Sighting `step` of the stream a relay's duplicate cache sees in a dense mesh: frames from 500 sources, each heard
/// 9 times (once per neighbour), copies of 16 frames interleaved, one sighting every 250 µs.
fn sighting(step: u64) -> (FrameKey, Instant) {
    let frame = (step / 144) * 16 + step % 16;
    let source = (frame % 500).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let key = (
        NodeId(source.to_be_bytes()),
        (frame as u32).wrapping_mul(0x2545_f491),
    );
    (key, Instant::from_millis(step / 4))
}

/// `dup_cache`: sightings/s through a node's duplicate cache at its default bounds (1024 frames, 120 s), full and
/// evicting, against the `BTreeMap` design it replaced.
fn dup_cache(seconds: f64) -> Figure {
    let r = mesh::route::RouteConfig::default();
    let mut ours = DupCache::with_seed(r.dup_capacity, r.dup_lifetime, &[7; 32]);
    let mut reference = BTreeDupCache::new(r.dup_capacity, r.dup_lifetime);
    let (mut a, mut b) = (0u64, 0u64);
    let (value, reference_value) = side_by_side(
        seconds,
        || {
            let (key, now) = sighting(a);
            black_box(ours.insert(key, now));
            a += 1;
        },
        || {
            let (key, now) = sighting(b);
            black_box(reference.insert(key, now));
            b += 1;
        },
    );
    Figure::new(
        "dup_cache",
        value,
        "sightings/s",
        "BTreeMap + insertion queue (the previous design)",
        reference_value,
    )
}

/// Events pending in the `sim_event_queue` figure: about what a 500-node flood keeps in flight.
const QUEUED_EVENTS: u64 = 50_000;

/// A payload the size of a simulated medium action.
type Payload = [u64; 6];

/// `sim_event_queue`: events/s through the simulated medium's event queue holding 50 000 events, each pop
/// followed by a push up to 20 ms later (a packet's departure or arrival), against `std`'s binary heap ordered by
/// the same (time, sequence) keys.
fn sim_event_queue(seconds: f64) -> Figure {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    // The same pseudo-random delays for both: xorshift64 from one seed.
    fn delay(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state % 20_000
    }
    let mut ours: EventQueue<Payload> = EventQueue::new();
    let mut reference: BinaryHeap<Reverse<(u64, u64, Payload)>> = BinaryHeap::new();
    let (mut seq_a, mut rng_a, mut seq_b, mut rng_b) = (0u64, 0x5eedu64, 0u64, 0x5eedu64);
    for _ in 0..QUEUED_EVENTS {
        seq_a += 1;
        ours.push((delay(&mut rng_a), seq_a), [seq_a; 6]);
        seq_b += 1;
        reference.push(Reverse((delay(&mut rng_b), seq_b, [seq_b; 6])));
    }
    let (value, reference_value) = side_by_side(
        seconds,
        || {
            if let Some(e) = ours.pop() {
                seq_a += 1;
                let at = e.key.0 + delay(&mut rng_a);
                ours.push((at, seq_a), black_box(e.value));
            }
        },
        || {
            if let Some(Reverse((at, _, payload))) = reference.pop() {
                seq_b += 1;
                let at = at + delay(&mut rng_b);
                reference.push(Reverse((at, seq_b, black_box(payload))));
            }
        },
    );
    Figure::new(
        "sim_event_queue",
        value,
        "events/s",
        "std BinaryHeap by (time, sequence)",
        reference_value,
    )
}

/// Runs every figure and prints the report.
pub fn run(args: &BenchArgs) -> Result<(), String> {
    let mut figures = vec![
        transport(244, args.seconds)?,
        transport(1024, args.seconds)?,
        handshake(args.seconds)?,
    ];
    figures.extend(wire_efficiency()?);
    figures.push(session_bytes()?);
    figures.push(reassembly_bytes());
    figures.push(store_unlock(args.seconds)?);
    figures.extend(crate::bench_store::store_traffic()?);
    figures.push(dup_cache(args.seconds));
    figures.push(sim_event_queue(args.seconds));
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&figures).map_err(|e| e.to_string())?
        );
    } else {
        println!(
            "{:<28} {:>14} {:>14} {:>7}  {:<18} reference",
            "figure", "ours", "reference", "ratio", "unit"
        );
        for f in &figures {
            println!(
                "{:<28} {:>14} {:>14} {:>7.3}  {:<18} {}",
                f.name,
                format_value(f.value),
                format_value(f.reference_value),
                f.ratio,
                f.unit,
                f.reference
            );
        }
    }
    Ok(())
}

fn format_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}
