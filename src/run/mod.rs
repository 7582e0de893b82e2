//! `meshnode run`: the long-running node. Resolves the configuration ([`config`]), opens or creates the identity
//! ([`identity_store`]), sets up logging, starts the radio ([`backend`]) and the control socket ([`control`]), and
//! drives the node loop ([`runtime`]) on a current-thread tokio runtime until SIGINT or SIGTERM.
//!
//! Invariant: every failure before the loop starts is reported as one [`RunError`] that says what to do, and the
//! process exits non-zero; after a signal the loop closes sessions and links, the control socket file is removed,
//! and the process exits 0.

pub mod backend;
pub mod config;
pub mod control;
pub mod driver;
pub mod identity_store;
pub mod runtime;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use mesh::node::{Node, NodeConfig};
use mesh::time::Instant;
use tokio::sync::{broadcast, mpsc, Semaphore};

pub use config::RunArgs;
use config::{LogFormat, RadioKind, Settings};

/// Node time: milliseconds since the process started, on the monotonic clock tokio also uses.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: tokio::time::Instant,
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Self {
        Clock {
            start: tokio::time::Instant::now(),
        }
    }

    /// The node's `now`.
    pub fn now(&self) -> Instant {
        let ms = self.start.elapsed().as_millis();
        Instant::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// A node instant as a point on the tokio clock.
    pub fn to_tokio(self, t: Instant) -> tokio::time::Instant {
        self.start + std::time::Duration::from_millis(t.total_millis())
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
    /// Identity.
    #[error(transparent)]
    Identity(#[from] identity_store::IdentityError),
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
}

/// Turns a `Debug` rendering of a counters struct (`Name { a: 1, b: 2 }`) into a JSON object of numbers, so every
/// backend's counters reach `ctl stats` without a serde dependency in `mesh` or `hal`.
pub fn debug_counters(debug: &str) -> serde_json::Value {
    let inner = debug
        .split_once('{')
        .and_then(|(_, rest)| rest.rsplit_once('}'))
        .map(|(inner, _)| inner);
    let Some(inner) = inner else {
        return serde_json::Value::String(debug.to_string());
    };
    let mut map = serde_json::Map::new();
    for field in inner.split(',') {
        if let Some((k, v)) = field.split_once(':') {
            let v = v.trim();
            let value = v
                .parse::<u64>()
                .map(serde_json::Value::from)
                .unwrap_or_else(|_| serde_json::Value::String(v.to_string()));
            map.insert(k.trim().to_string(), value);
        }
    }
    serde_json::Value::Object(map)
}

fn init_logging(settings: &Settings) -> Result<(), RunError> {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log_filter)
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
    Ok(())
}

/// `meshnode run`.
pub fn main(args: &RunArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("meshnode run: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &RunArgs) -> Result<(), RunError> {
    let settings = Settings::load(args)?;
    init_logging(&settings)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    runtime.block_on(run_async(settings))
}

async fn run_async(settings: Settings) -> Result<(), RunError> {
    let (identity, created) = identity_store::load_or_create(&settings.data_dir)?;
    let key_path = settings.data_dir.join(identity_store::IDENTITY_FILE);
    if created {
        tracing::info!(path = %key_path.display(), "created a new identity");
    }
    tracing::warn!(path = %key_path.display(),
        "the identity key is stored unencrypted (mode 0600); an Argon2id-wrapped key store is planned");
    let node_id = identity.node_id();
    let fingerprint = identity.public().fingerprint().to_string();
    tracing::info!(id = %node_id, fingerprint = %fingerprint, nickname = %settings.nickname,
        radio = settings.radio.name(), hop_acks = settings.hop_acks, data_dir = %settings.data_dir.display(),
        "meshnode starting");

    let clock = Clock::new();
    let mut node_config = NodeConfig::default();
    node_config.nickname = settings.nickname.clone();
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
    let node = Node::new(identity, node_config, seed, clock.now());
    let mut driver = driver::NodeDriver::new(node, settings.link_backlog);
    backend
        .with_radio(|radio| driver.start(radio))
        .unwrap_or_else(|| Err(hal::RadioError::Unavailable("no radio".into())))
        .map_err(|e| RunError::Radio(format!("cannot start advertising and scanning: {e}")))?;
    if let backend::Backend::Udp { radio, .. } = &backend {
        tracing::info!(bind = %radio.local_addr(), peers = ?settings.udp.static_peers, "UDP radio up");
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
        },
    ));

    let main_loop = runtime::Loop {
        driver,
        backend,
        clock,
        events: events_tx,
        fingerprint,
        radio_name: settings.radio.name(),
        events_published: 0,
        calls_answered: 0,
    };
    main_loop.run(calls_rx, shutdown).await;
    server.abort();
    tracing::info!("meshnode stopped");
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_counters_become_numbers() {
        let v = debug_counters("Stats { a: 1, b_c: 22 }");
        assert_eq!(v["a"], 1);
        assert_eq!(v["b_c"], 22);
        assert_eq!(debug_counters("plain"), serde_json::json!("plain"));
    }
}
