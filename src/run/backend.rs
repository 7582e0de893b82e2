//! The radio backends `meshnode run` can drive, behind one enum: UDP (socket readiness through `AsyncFd`), BLE (the
//! backend's `Notify`), and `sim` — this node as node 0 of an in-process simulated line of three, whose other two
//! nodes ("sim-1", "sim-2") answer every private message with `echo: <text>`, paced to the real clock.
//!
//! Invariant: the runtime reaches every radio only through [`Backend::with_radio`], [`Backend::process`] and
//! [`Backend::next_deadline`]; the backend never blocks the loop, and `process` is cheap when nothing is due.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use hal::sim::{LinkParams, Medium, MediumConfig, SimInstant, Topology};
use hal::udp::UdpRadio;
use hal::Radio;
use mesh::identity::Identity;
use mesh::node::{Event, MessageKind, Node, NodeConfig};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

use super::driver::NodeDriver;
use super::Clock;

/// The simulated peers of `--radio sim`.
pub struct SimPeers {
    medium: Medium,
    peers: Vec<NodeDriver>,
    ready: Vec<usize>,
}

/// One radio backend.
#[allow(clippy::large_enum_variant)] // one per process, never moved in a hot path
pub enum Backend {
    /// `--radio udp`.
    Udp {
        /// Its socket's readiness. Declared before `radio` so it is dropped (deregistered) before the socket closes.
        fd: AsyncFd<RawFd>,
        /// The radio.
        radio: UdpRadio,
    },
    /// `--radio ble`.
    Ble {
        /// The radio.
        radio: Box<hal::ble::BleRadio>,
        /// Signalled when it has events.
        signal: Arc<Notify>,
    },
    /// `--radio sim`.
    Sim(Box<SimPeers>),
}

impl Backend {
    /// A UDP backend (needs a tokio runtime with I/O enabled).
    pub fn udp(config: hal::udp::UdpConfig) -> Result<Backend, String> {
        let radio = UdpRadio::new(config).map_err(|e| format!("UDP radio: {e}"))?;
        // `with_interest` is deprecated because a raw fd carries no ownership; here the socket is owned by `radio`,
        // which lives in the same variant and outlives `fd` (field order), so the registration never outlives it.
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(radio.as_raw_fd(), tokio::io::Interest::READABLE)
            .map_err(|e| format!("UDP radio: cannot watch the socket: {e}"))?;
        Ok(Backend::Udp { radio, fd })
    }

    /// A BLE backend; fails within the configured start-up timeout when Bluetooth is missing.
    pub async fn ble(config: hal::ble::BleConfig) -> Result<Backend, String> {
        let radio = hal::ble::BleRadio::new(config)
            .await
            .map_err(|e| format!("Bluetooth LE radio: {e}"))?;
        tracing::info!(adapter = radio.adapter_info(), "Bluetooth adapter ready");
        let signal = radio.event_signal();
        Ok(Backend::Ble {
            radio: Box::new(radio),
            signal,
        })
    }

    /// The `sim` backend: a line of three simulated nodes; ours is node 0.
    pub fn sim(node_config: &NodeConfig, clock: &Clock) -> Result<Backend, String> {
        let topology = Topology::line(3, LinkParams::default()).map_err(|e| e.to_string())?;
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).map_err(|e| format!("OS RNG failed: {e}"))?;
        let mut rng = rand_chacha::ChaCha20Rng::from_seed(seed);
        let medium = Medium::new(MediumConfig::default(), topology, rng.next_u64())
            .map_err(|e| e.to_string())?;
        let mut sim = SimPeers {
            medium,
            peers: Vec::new(),
            ready: Vec::new(),
        };
        for i in 1..3 {
            let identity = Identity::generate(&mut rng);
            let mut config = node_config.clone();
            config.nickname = format!("sim-{i}");
            // The simulated peers live only as long as this process: nothing of theirs is stored.
            config.session.persist = false;
            let mut s = [0u8; 32];
            rng.fill_bytes(&mut s);
            let node = Node::new(identity, config, s, clock.now());
            let mut driver = NodeDriver::new(node, 256);
            let Some(mut radio) = sim.medium.radio(i) else {
                return Err("simulated medium lost a node".into());
            };
            driver
                .start(&mut radio)
                .map_err(|e| format!("simulated radio: {e}"))?;
            sim.peers.push(driver);
        }
        Ok(Backend::Sim(Box::new(sim)))
    }

    /// Lends our radio to `f`.
    pub fn with_radio<T>(&mut self, f: impl FnOnce(&mut dyn Radio) -> T) -> Option<T> {
        match self {
            Backend::Udp { radio, .. } => Some(f(radio)),
            Backend::Ble { radio, .. } => Some(f(radio.as_mut())),
            Backend::Sim(sim) => sim.medium.radio(0).map(|mut r| f(&mut r)),
        }
    }

    /// Runs the backend's timers up to `now` (and, for `sim`, the simulated peers).
    pub fn process(&mut self, clock: &Clock) {
        match self {
            Backend::Udp { radio, .. } => radio.process(std::time::Instant::now()),
            Backend::Ble { .. } => {}
            Backend::Sim(sim) => sim.process(clock),
        }
    }

    /// When the backend next needs `process`, as a point on the tokio clock.
    pub fn next_deadline(&self, clock: &Clock) -> Option<tokio::time::Instant> {
        match self {
            Backend::Udp { radio, .. } => radio.next_deadline().map(tokio::time::Instant::from_std),
            Backend::Ble { .. } => None,
            Backend::Sim(sim) => {
                let medium = sim
                    .medium
                    .next_wakeup()
                    .map(|t| clock.after_start(t.as_micros().div_ceil(1_000)));
                let nodes = sim.peers.iter().filter_map(|p| p.node.poll_timeout()).min();
                [medium, nodes]
                    .into_iter()
                    .flatten()
                    .min()
                    .map(|t| clock.to_tokio(t))
            }
        }
    }

    /// Resolves when the radio signals new input (never, for `sim`: it is driven by deadlines).
    pub async fn ready(&self) {
        match self {
            Backend::Udp { fd, .. } => {
                if let Ok(mut guard) = fd.readable().await {
                    guard.clear_ready();
                }
            }
            Backend::Ble { signal, .. } => signal.notified().await,
            Backend::Sim(_) => std::future::pending().await,
        }
    }

    /// The backend's own counters, for `ctl stats`.
    pub fn stats(&self) -> RadioStats {
        match self {
            Backend::Udp { radio, .. } => RadioStats::Udp(*radio.stats()),
            Backend::Ble { radio, .. } => RadioStats::Ble(radio.stats()),
            Backend::Sim(sim) => RadioStats::Sim(sim.medium.total_stats()),
        }
    }
}

/// A radio's counters, by backend. Serialised as the backend's counters alone (every one a number): which
/// backend it is, `ctl stats` says beside it (`radio_kind`).
#[derive(Clone, Debug, serde::Serialize)]
#[serde(untagged)]
pub enum RadioStats {
    /// `--radio udp`: see [`hal::udp::UdpStats`].
    Udp(hal::udp::UdpStats),
    /// `--radio ble`: see [`hal::ble::BleStats`].
    Ble(hal::ble::BleStats),
    /// `--radio sim`: the whole simulated medium (this node and its two echo peers), see [`hal::sim::NodeStats`].
    Sim(hal::sim::NodeStats),
}

impl SimPeers {
    fn process(&mut self, clock: &Clock) {
        let now = clock.now();
        self.medium
            .advance(SimInstant::from_millis(clock.since_start_ms(now)));
        self.medium.take_ready(&mut self.ready);
        for (i, driver) in self.peers.iter_mut().enumerate() {
            let Some(mut radio) = self.medium.radio(i + 1) else {
                continue;
            };
            while let Some(event) = radio.poll_event() {
                driver.on_radio_event(event, &mut radio, now);
            }
            driver.on_time(now);
            while let Some(event) = driver.node.poll_event() {
                if let Event::MessageReceived {
                    from,
                    kind: MessageKind::Private,
                    payload,
                    ..
                } = event
                {
                    let mut reply = b"echo: ".to_vec();
                    reply.extend_from_slice(&payload);
                    let _ = driver.node.send(from, &reply, now);
                }
            }
            driver.drain_actions(&mut radio);
        }
    }
}
