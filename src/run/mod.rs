//! `meshnode run`: the long-running node. Resolves the configuration ([`config`]), sets up logging, opens the store
//! in the data directory and unlocks the identity with the passphrase ([`passphrase`], [`meshnode::store`]), starts
//! the radio ([`backend`]) and the control socket ([`control`]), and drives the node loop ([`runtime`]) on a
//! current-thread tokio runtime until SIGINT or SIGTERM.
//!
//! Invariant: every failure before the loop starts is reported as one [`RunError`] that says what to do, and the
//! process exits non-zero; after a signal the loop closes sessions and links, the control socket file is removed,
//! and the process exits 0.

pub mod backend;
pub mod config;
pub mod control;
pub mod driver;
pub mod events;
pub mod passphrase;
pub mod runtime;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use mesh::node::{Node, NodeConfig};
use mesh::time::Instant;
use meshnode::store::{Origin, Protection, SealedStore, StoreError, Unlocked};
use tokio::sync::{broadcast, mpsc, Semaphore};

pub use config::RunArgs;
use config::{LogFormat, RadioKind, Settings};

/// Node time: wall-clock milliseconds since the Unix epoch as read once at start, advanced by the monotonic clock
/// tokio also uses. Sessions at rest store instants of this clock (PROTOCOL.md §6.11), so it must continue across
/// restarts: a session's age keeps running while the node is down. A wall clock set back between two runs makes
/// stored sessions look younger by that much (their message limits still hold); one set forward ages them.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: tokio::time::Instant,
    origin_ms: u64,
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Self {
        let origin_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Clock {
            start: tokio::time::Instant::now(),
            origin_ms,
        }
    }

    /// Milliseconds since this process started.
    pub fn uptime_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The node's `now`.
    pub fn now(&self) -> Instant {
        Instant::from_millis(self.origin_ms.saturating_add(self.uptime_ms()))
    }

    /// Milliseconds from this process's start to `t` (0 for earlier instants): the time base of the simulated
    /// medium of `--radio sim`.
    pub fn since_start_ms(&self, t: Instant) -> u64 {
        t.total_millis().saturating_sub(self.origin_ms)
    }

    /// The node instant `ms` milliseconds after this process started.
    pub fn after_start(&self, ms: u64) -> Instant {
        Instant::from_millis(self.origin_ms.saturating_add(ms))
    }

    /// A node instant as a point on the tokio clock.
    pub fn to_tokio(self, t: Instant) -> tokio::time::Instant {
        self.start + std::time::Duration::from_millis(self.since_start_ms(t))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// Why `meshnode run` could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Configuration.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The store: opening, unlocking, damage.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The passphrase.
    #[error(transparent)]
    Passphrase(#[from] passphrase::PassphraseError),
    /// Control socket.
    #[error(transparent)]
    Control(#[from] control::ControlError),
    /// Logging.
    #[error("invalid log filter {0:?}: use RUST_LOG syntax, e.g. info or meshnode=debug,hal=info")]
    LogFilter(String),
    /// The radio.
    #[error("{0}")]
    Radio(String),
    /// The tokio runtime or a signal handler.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    /// The node's state could not be stored while running.
    #[error("{0}")]
    StoreWrite(String),
}

fn init_logging(settings: &Settings) -> Result<(), RunError> {
    let filter =
        tracing_subscriber::EnvFilter::try_new(config::effective_log_filter(&settings.log_filter))
            .map_err(|_| RunError::LogFilter(settings.log_filter.clone()))?;
    // Colours only on a terminal: under systemd the journal, or a redirected file, would store escape codes.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let result = match settings.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // Already initialised (tests): keep the existing subscriber.
    let _ = result;
    LOGGING.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Set once logging is initialised: from then on a fatal error goes to the log.
static LOGGING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `meshnode run`.
///
/// A fatal error is printed exactly once on stderr: as a log line (text or JSON, as configured) once logging is
/// set up and its filter lets errors through, else as a plain `meshnode run: ...` line (configuration errors,
/// which come before the log exists, or a filter such as `off`).
pub fn main(args: &RunArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if LOGGING.load(std::sync::atomic::Ordering::Relaxed)
                && tracing::enabled!(tracing::Level::ERROR)
            {
                tracing::error!("{e}");
            } else {
                eprintln!("meshnode run: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(args: &RunArgs) -> Result<(), RunError> {
    let settings = Settings::load(args)?;
    init_logging(&settings)?;
    // Before the runtime: the unlock is blocking work (Argon2id) and may prompt on the terminal.
    let unlocked = open_store(&settings)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    runtime.block_on(run_async(settings, unlocked))
}

/// Opens the store (taking the data directory's lock first, so a second node is refused before any prompt),
/// gets the passphrase, unlocks, and says how the identity is protected.
fn open_store(settings: &Settings) -> Result<Unlocked, RunError> {
    let sealed = SealedStore::open(&settings.data_dir)?;
    let db = sealed.db_path().to_path_buf();
    let state = sealed.state();
    let unlock = passphrase::obtain(&settings.passphrase, state, &db)?;
    let started = std::time::Instant::now();
    let unlocked = sealed.unlock(unlock)?;
    let took_ms = started.elapsed().as_millis();
    unlocked
        .store
        .set_max_peer_records(settings.max_peer_records);
    match unlocked.origin {
        Origin::Created => tracing::info!(db = %db.display(), "created a new identity"),
        Origin::Migrated => {
            tracing::info!(db = %db.display(), "moved the identity from identity.key into the database (same node id)")
        }
        Origin::Opened => {}
    }
    match unlocked.store.protection() {
        Protection::Passphrase(params) => {
            tracing::info!(db = %db.display(), kdf = %params, took_ms, "identity unlocked")
        }
        Protection::None => tracing::warn!(db = %db.display(),
            "NO PASSPHRASE: this node's secret keys are stored unprotected. Anyone who can read {} or a backup of \
             it can impersonate this node. To protect a node, create it with a passphrase (--passphrase-file, \
             MESHNODE_PASSPHRASE or the prompt).", db.display()),
    }
    Ok(unlocked)
}

async fn run_async(settings: Settings, unlocked: Unlocked) -> Result<(), RunError> {
    let Unlocked {
        store, identity, ..
    } = unlocked;
    let node_id = identity.node_id();
    let fingerprint = identity.public().fingerprint().to_string();
    tracing::info!(id = %node_id, fingerprint = %fingerprint, nickname = %settings.nickname,
        radio = settings.radio.name(), hop_acks = settings.hop_acks, data_dir = %settings.data_dir.display(),
        "meshnode starting");

    let clock = Clock::new();
    let mut node_config = NodeConfig::default();
    node_config.nickname = settings.nickname.clone();
    node_config.session.persist = true;
    let seen_lifetime = node_config.route.seen_lifetime.total_millis();
    let stored = store.load_node_state(clock.now(), seen_lifetime, settings.resume_sessions)?;
    let pins = store.load_pins()?;
    node_config.route.hop_acks = settings.hop_acks;
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)
        .map_err(|e| RunError::Radio(format!("the OS random number generator failed: {e}")))?;

    // Signals first: a SIGTERM during a slow radio start-up still stops us cleanly.
    let shutdown = shutdown_signal().map_err(RunError::Runtime)?;

    let mut backend = match settings.radio {
        RadioKind::Udp => backend::Backend::udp(settings.udp.clone()).map_err(RunError::Radio)?,
        RadioKind::Ble => backend::Backend::ble(settings.ble.clone())
            .await
            .map_err(RunError::Radio)?,
        RadioKind::Sim => backend::Backend::sim(&node_config, &clock).map_err(RunError::Radio)?,
    };
    let mut node = Node::new(identity, node_config, seed, clock.now());
    restore(&mut node, &pins, &stored, clock.now());
    drop(stored);
    let store = Arc::new(store);
    let mut driver = driver::NodeDriver::new(node, settings.link_backlog);
    driver.set_persister(Box::new(StorePersister {
        store: Arc::clone(&store),
        clock,
        seen_lifetime_ms: seen_lifetime,
        seen_since_prune: 0,
    }));
    backend
        .with_radio(|radio| driver.start(radio))
        .unwrap_or_else(|| Err(hal::RadioError::Unavailable("no radio".into())))
        .map_err(|e| RunError::Radio(format!("cannot start advertising and scanning: {e}")))?;
    if let backend::Backend::Udp { radio, .. } = &backend {
        let broadcast = settings
            .udp
            .broadcast
            .map_or_else(|| "none".to_string(), |b| b.to_string());
        tracing::info!(bind = %radio.local_addr(), peers = ?settings.udp.static_peers, %broadcast, "UDP radio up");
    }

    let (listener, socket_path) = control::bind(&settings.data_dir)?;
    let _socket_guard = SocketGuard(socket_path.clone());
    tracing::info!(socket = %socket_path.display(), "control socket ready");
    let (calls_tx, calls_rx) = mpsc::channel(settings.control_queue);
    let (events_tx, _) = broadcast::channel(settings.listen_buffer);
    let server = tokio::spawn(control::serve(
        listener,
        control::ServerParts {
            calls: calls_tx,
            events: events_tx.clone(),
            slots: Arc::new(Semaphore::new(settings.max_control_clients)),
            refusals: Arc::new(Semaphore::new(control::MAX_REFUSALS)),
        },
    ));

    let main_loop = runtime::Loop {
        driver,
        backend,
        store,
        clock,
        events: events_tx,
        fingerprint,
        radio_name: settings.radio.name(),
        events_published: 0,
        calls_answered: 0,
        fatal: None,
    };
    let outcome = main_loop.run(calls_rx, shutdown).await;
    server.abort();
    outcome.map_err(RunError::StoreWrite)?;
    tracing::info!("meshnode stopped");
    Ok(())
}

/// Hands the node what it stored before it stopped: pins first, then sessions (resumed without a handshake),
/// unacknowledged messages and delivered message ids. What the node refuses is logged and left out.
fn restore(
    node: &mut Node,
    pins: &[(mesh::identity::NodeId, mesh::identity::PublicIdentity)],
    stored: &meshnode::store::state::NodeState,
    now: mesh::time::Instant,
) {
    let pinned = node.import_pins(pins);
    let mut sessions = 0;
    for s in &stored.sessions {
        match node.restore_session(s, now) {
            Ok(()) => sessions += 1,
            Err(e) => tracing::warn!(peer = %s.peer_id(), "stored session not resumed: {e}"),
        }
    }
    let mut messages = 0;
    for (to, id, payload, expires) in &stored.outbox {
        match node.restore_message(*to, *id, payload, *expires) {
            Ok(()) => messages += 1,
            Err(e) => tracing::warn!(peer = %to, "stored message not restored: {e}"),
        }
    }
    for (from, id, at) in &stored.seen {
        node.restore_seen(*from, *id, *at);
    }
    tracing::info!(
        pins = pinned,
        sessions,
        messages,
        delivered_ids = stored.seen.len(),
        expired_ids = stored.seen_pruned,
        "state restored from the store"
    );
}

/// Delivered-message ids written between two prunings of the `seen` tree.
const SEEN_PRUNE_EVERY: usize = 512;

/// The driver's way into the store; it also keeps the `seen` tree to about one `seen_lifetime` of traffic.
struct StorePersister {
    store: Arc<meshnode::store::Store>,
    clock: Clock,
    seen_lifetime_ms: u64,
    seen_since_prune: usize,
}

impl driver::Persister for StorePersister {
    fn persist(&mut self, records: &[mesh::node::Persist]) -> Result<(), String> {
        self.store
            .apply_node_records(records)
            .map_err(|e| e.to_string())?;
        self.seen_since_prune += records
            .iter()
            .filter(|r| matches!(r, mesh::node::Persist::Seen { .. }))
            .count();
        if self.seen_since_prune >= SEEN_PRUNE_EVERY {
            self.seen_since_prune = 0;
            // Old ids only cost space: a failure here is logged, never fatal.
            match self
                .store
                .prune_seen(self.clock.now(), self.seen_lifetime_ms)
            {
                Ok(n) => tracing::debug!(deleted = n, "expired delivered-message ids pruned"),
                Err(e) => tracing::warn!("cannot prune delivered-message ids: {e}"),
            }
        }
        Ok(())
    }
}

/// Removes the control socket file when dropped.
struct SocketGuard(PathBuf);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Resolves on SIGINT or SIGTERM with the signal's name.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    })
}
