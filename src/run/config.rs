//! `meshnode run` configuration: the TOML file (every field optional, documented in
//! `scripts/meshnode.example.toml`), the command-line flags that override it, and the resolved [`Settings`].
//!
//! Invariant: [`Settings::resolve`] either returns settings every later step can use as they are (a data directory,
//! a valid radio choice, a parsed UDP configuration) or a [`ConfigError`] that names the file or flag at fault;
//! unknown keys in the file are errors, so a misspelt option is never silently ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::passphrase::PassphraseSource;

/// Which radio backend drives the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RadioKind {
    /// Bluetooth LE through BlueZ (Linux) / the platform stack.
    Ble,
    /// One process per node over UDP (loopback or a LAN).
    Udp,
    /// An in-process simulated line of three nodes: this one and two echo nodes.
    Sim,
}

impl RadioKind {
    /// The name used in files, flags and logs.
    pub fn name(self) -> &'static str {
        match self {
            RadioKind::Ble => "ble",
            RadioKind::Udp => "udp",
            RadioKind::Sim => "sim",
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The TOML file as written. Every field is optional; see `scripts/meshnode.example.toml`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Nickname announced to the mesh (at most 32 bytes).
    pub nickname: Option<String>,
    /// Where the store (identity, peers, ...) and the control socket live.
    pub data_dir: Option<PathBuf>,
    /// A file holding the passphrase that seals the identity.
    pub passphrase_file: Option<PathBuf>,
    /// `true`: store the identity without a passphrase (unprotected).
    pub no_passphrase: Option<bool>,
    /// `ble`, `udp` or `sim`.
    pub radio: Option<RadioKind>,
    /// Logging.
    #[serde(default)]
    pub log: LogFile,
    /// The UDP radio.
    #[serde(default)]
    pub udp: UdpFile,
    /// The Bluetooth LE radio.
    #[serde(default)]
    pub ble: BleFile,
    /// The runtime's own bounds.
    #[serde(default)]
    pub runtime: RuntimeFile,
    /// The store's bounds.
    #[serde(default)]
    pub store: StoreFile,
    /// Protocol choices of the node.
    #[serde(default)]
    pub mesh: MeshFile,
}

/// `[store]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoreFile {
    /// Peers remembered at most (nickname, first and last seen); beyond it the unpinned one heard of longest ago
    /// is forgotten. Pins are never forgotten this way.
    pub max_peer_records: Option<usize>,
    /// Resume stored sessions after a restart without a handshake (default true). Off: every restart starts
    /// sessions afresh (stored ones are deleted); the outbox and delivered ids are kept either way.
    pub resume_sessions: Option<bool>,
}

/// `[mesh]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MeshFile {
    /// Hop-by-hop acknowledgements and resends on every link (PROTOCOL.md §7.10). Default: on for `udp` and
    /// `sim`, whose links lose packets; off for `ble`, whose link layer already retransmits every packet.
    pub hop_acks: Option<bool>,
}

/// `[log]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogFile {
    /// `RUST_LOG`-style filter, e.g. `info` or `meshnode=debug,hal=info`.
    pub filter: Option<String>,
    /// `text` or `json`.
    pub format: Option<LogFormat>,
}

/// The UDP port a node listens on when `--udp-interface` (or `[udp] interface`) is given without a bind address:
/// every node of a subnet must use the same port to hear each other's broadcast beacons.
pub const DEFAULT_UDP_PORT: u16 = 7700;

/// `[udp]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UdpFile {
    /// Local address to bind, e.g. `0.0.0.0:7700`.
    pub bind: Option<SocketAddr>,
    /// Peers to beacon to and accept links from, e.g. `["192.168.1.20:7700"]`.
    pub static_peers: Option<Vec<SocketAddr>>,
    /// Subnet broadcast address for discovery, e.g. `192.168.1.255:7700`.
    pub broadcast: Option<SocketAddr>,
    /// Network interface whose subnet to discover peers on, e.g. `wlan0` (instead of `broadcast`).
    pub interface: Option<String>,
    /// ATT MTU this node offers (23..=517).
    pub att_mtu: Option<u16>,
    /// Links at most.
    pub max_links: Option<usize>,
    /// Keepalive timeout in milliseconds (a silent link is dropped after it).
    pub keepalive_timeout_ms: Option<u64>,
}

/// `[ble]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BleFile {
    /// Adapter name, e.g. `hci0`; the first adapter when absent.
    pub adapter: Option<String>,
    /// Links at most (central plus peripheral).
    pub max_links: Option<usize>,
    /// Start-up timeout in milliseconds: how long to wait for D-Bus / BlueZ / the adapter.
    pub startup_timeout_ms: Option<u64>,
}

/// `[runtime]`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuntimeFile {
    /// Packets held per link while the radio's queue is full; beyond it they are dropped and counted.
    pub link_backlog: Option<usize>,
    /// Events buffered per `ctl listen` client; a slower client misses events and is told how many.
    pub listen_buffer: Option<usize>,
    /// Control requests waiting for the node loop, at most.
    pub control_queue: Option<usize>,
    /// Control connections open at once, at most.
    pub max_control_clients: Option<usize>,
}

/// Flags of `meshnode run`; each overrides the file.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct RunArgs {
    /// TOML configuration file (see scripts/meshnode.example.toml).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory: the store (sealed identity, peers, ...) and the control socket [default:
    /// $HOME/.local/share/meshnode].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Read the passphrase that seals the identity from FILE (one trailing newline is ignored). Without it:
    /// $MESHNODE_PASSPHRASE, then the config file, then a prompt on a terminal.
    #[arg(long, value_name = "FILE", conflicts_with = "no_passphrase")]
    pub passphrase_file: Option<PathBuf>,
    /// Store the identity without a passphrase: anyone who can read the data directory can impersonate the node.
    #[arg(long)]
    pub no_passphrase: bool,
    /// Radio backend [default: ble].
    #[arg(long, value_enum)]
    pub radio: Option<RadioKind>,
    /// Nickname announced to the mesh.
    #[arg(long)]
    pub nickname: Option<String>,
    /// UDP: local address to bind (e.g. 127.0.0.1:7700).
    #[arg(long, value_name = "ADDR")]
    pub udp_bind: Option<SocketAddr>,
    /// UDP: a static peer (repeat the flag for several); replaces the file's list.
    #[arg(long = "udp-peer", value_name = "ADDR")]
    pub udp_peers: Vec<SocketAddr>,
    /// UDP: subnet broadcast address for discovery (e.g. 192.168.1.255:7700). Beacons go to that port only:
    /// discovery finds just the nodes listening on it, so bind every node to the same port.
    #[arg(long, value_name = "ADDR", conflicts_with = "udp_interface")]
    pub udp_broadcast: Option<SocketAddr>,
    /// UDP: discover peers on this network interface's subnet (e.g. wlan0); binds 0.0.0.0:7700 unless
    /// --udp-bind says otherwise. Beacons go to the subnet's broadcast address at this node's own port, so only
    /// nodes listening on the same port find each other: give every node the same port.
    #[arg(long, value_name = "NAME")]
    pub udp_interface: Option<String>,
    /// BLE: adapter name (e.g. hci0).
    #[arg(long, value_name = "NAME")]
    pub ble_adapter: Option<String>,
    /// Log filter, RUST_LOG syntax [default: $RUST_LOG, else the file's, else info]. A debug or trace default
    /// that does not name sled gets sled=info added (the store's page-cache noise); write sled=debug to see it.
    #[arg(long, value_name = "FILTER")]
    pub log_filter: Option<String>,
    /// Log one JSON object per line instead of human-readable text.
    #[arg(long)]
    pub log_json: bool,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown / mistyped keys.
    #[error(
        "config file {path} is invalid: {message}(see scripts/meshnode.example.toml for every key)"
    )]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// No data directory was given and none could be derived.
    #[error("no data directory: pass --data-dir DIR or set data_dir in the config file (HOME is not set)")]
    NoDataDir,
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// Everything `meshnode run` needs, resolved from defaults, the file and the flags (in that order).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Nickname announced.
    pub nickname: String,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Where the passphrase comes from.
    pub passphrase: PassphraseSource,
    /// The radio backend.
    pub radio: RadioKind,
    /// Log filter.
    pub log_filter: String,
    /// Log format.
    pub log_format: LogFormat,
    /// UDP radio configuration (used with `--radio udp`).
    pub udp: hal::udp::UdpConfig,
    /// BLE radio configuration (used with `--radio ble`).
    pub ble: hal::ble::BleConfig,
    /// Packets held per link while the radio is busy.
    pub link_backlog: usize,
    /// Events buffered per listener.
    pub listen_buffer: usize,
    /// Control requests queued for the loop.
    pub control_queue: usize,
    /// Control connections at once.
    pub max_control_clients: usize,
    /// Peer records the store keeps.
    pub max_peer_records: usize,
    /// Resume stored sessions at start.
    pub resume_sessions: bool,
    /// Hop-by-hop acknowledgements on the node's links.
    pub hop_acks: bool,
}

// Upper bounds of the file's numeric keys. Each sizes memory, a queue, a set of permits or a deadline; a value
// beyond it is refused at start rather than allowed to abort the node later (a huge channel capacity panics in
// tokio, a huge buffer fails to allocate). They are far above any useful setting and are listed in
// scripts/meshnode.example.toml.

/// `[runtime] link_backlog` at most (packets per link).
pub const MAX_LINK_BACKLOG: usize = 65_536;
/// `[runtime] listen_buffer` at most (events per `ctl listen` client; allocated up front per node).
pub const MAX_LISTEN_BUFFER: usize = 65_536;
/// `[runtime] control_queue` at most (control requests waiting for the loop).
pub const MAX_CONTROL_QUEUE: usize = 4_096;
/// `[runtime] max_control_clients` at most (control connections, each a file descriptor).
pub const MAX_CONTROL_CLIENTS: usize = 1_024;
/// `[store] max_peer_records` at most.
pub const MAX_PEER_RECORDS: usize = 1_048_576;
/// `[udp] max_links` at most (as many as static peers may be listed).
pub const MAX_UDP_LINKS: usize = hal::udp::MAX_STATIC_PEERS;
/// `[ble] max_links` at most (controllers hold far fewer connections).
pub const MAX_BLE_LINKS: usize = 64;
/// `[udp] keepalive_timeout_ms` and `[ble] startup_timeout_ms` at most: one hour.
pub const MAX_TIMEOUT_MS: u64 = 3_600_000;

/// `value` if it lies in `min..=max`, else the error naming `key` (`[section] name`) and the bound it broke.
fn within<T: PartialOrd + std::fmt::Display>(
    key: &str,
    value: T,
    min: T,
    max: T,
) -> Result<T, ConfigError> {
    if value < min {
        Err(ConfigError::Invalid(format!(
            "{key} must be at least {min}"
        )))
    } else if value > max {
        Err(ConfigError::Invalid(format!("{key} must be at most {max}")))
    } else {
        Ok(value)
    }
}

/// The longest control socket path, in bytes: a Unix socket address holds its path in `sun_path` (108 bytes on
/// Linux, 104 on the BSDs and macOS) with a terminating NUL.
pub fn max_socket_path_len() -> usize {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        107
    } else {
        103
    }
}

/// Refuses a data directory whose control socket path (`DIR/control.sock`) would not fit in a Unix socket
/// address, before anything is created in it or unlocked: binding the socket is the last step of the start.
fn check_socket_path(data_dir: &Path) -> Result<(), ConfigError> {
    let socket = data_dir.join(super::control::SOCKET_FILE);
    let len = socket.as_os_str().len();
    let max = max_socket_path_len();
    // The standard library knows the platform's real limit; the constant above only words the message.
    if len > max || std::os::unix::net::SocketAddr::from_pathname(&socket).is_err() {
        return Err(ConfigError::Invalid(format!(
            "data directory {} is too long: its control socket path {} is {len} bytes and Unix socket paths hold \
             at most {max}; choose a data directory of at most {} bytes with --data-dir (or data_dir in the \
             config file)",
            data_dir.display(),
            socket.display(),
            max - (len - data_dir.as_os_str().len()),
        )));
    }
    Ok(())
}

/// The filter logging uses for the filter `written`: `written` itself, plus `sled=info` when it turns debug or
/// trace on for every target without naming `sled`. The store's database logs every page-cache step at debug,
/// which would drown the node's own lines; a filter that names sled (e.g. `debug,sled=debug`) gets what it asks.
pub fn effective_log_filter(written: &str) -> String {
    let directives = || written.split(',').map(str::trim).filter(|d| !d.is_empty());
    let names_sled = directives().any(|d| {
        let target = d.split(['=', '[']).next().unwrap_or("");
        target == "sled" || target.starts_with("sled::")
    });
    let verbose_default =
        directives().any(|d| d.eq_ignore_ascii_case("debug") || d.eq_ignore_ascii_case("trace"));
    if verbose_default && !names_sled {
        format!("{written},sled=info")
    } else {
        written.to_string()
    }
}

/// The default data directory: `$HOME/.local/share/meshnode`.
pub fn default_data_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share/meshnode"))
}

/// Parses a config file's text; `path` is only for messages.
pub fn parse_file(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

impl Settings {
    /// Reads the file named by `--config` (if any) and resolves it with the flags.
    pub fn load(args: &RunArgs) -> Result<Settings, ConfigError> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                parse_file(&text, path)?
            }
            None => FileConfig::default(),
        };
        let env_filter = std::env::var("RUST_LOG").ok();
        let env_passphrase = std::env::var_os(super::passphrase::ENV_VAR).is_some();
        Settings::resolve(file, args, env_filter, env_passphrase)
    }

    /// Defaults, then the file, then the flags (`RUST_LOG` sits between the file and `--log-filter`, and
    /// `MESHNODE_PASSPHRASE`, when `env_passphrase` says it is set, between the file and the passphrase flags).
    pub fn resolve(
        file: FileConfig,
        args: &RunArgs,
        env_filter: Option<String>,
        env_passphrase: bool,
    ) -> Result<Settings, ConfigError> {
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .or_else(default_data_dir)
            .ok_or(ConfigError::NoDataDir)?;
        check_socket_path(&data_dir)?;
        let passphrase = match (
            &args.passphrase_file,
            args.no_passphrase,
            env_passphrase,
            file.passphrase_file,
            file.no_passphrase.unwrap_or(false),
        ) {
            (Some(path), _, _, _, _) => PassphraseSource::File(path.clone()),
            (None, true, _, _, _) => PassphraseSource::NoPassphrase,
            (None, false, true, _, _) => PassphraseSource::Env,
            (None, false, false, Some(_), true) => {
                return Err(ConfigError::Invalid(
                    "passphrase_file and no_passphrase = true exclude each other: keep one".into(),
                ))
            }
            (None, false, false, Some(path), false) => PassphraseSource::File(path),
            (None, false, false, None, true) => PassphraseSource::NoPassphrase,
            (None, false, false, None, false) => PassphraseSource::Prompt,
        };
        let nickname = args.nickname.clone().or(file.nickname).unwrap_or_default();
        if nickname.len() > 32 {
            return Err(ConfigError::Invalid(format!(
                "nickname {nickname:?} is {} bytes: at most 32 are announced, choose a shorter one",
                nickname.len()
            )));
        }
        let radio = args.radio.or(file.radio).unwrap_or(RadioKind::Ble);
        let log_filter = args
            .log_filter
            .clone()
            .or(env_filter.filter(|s| !s.is_empty()))
            .or(file.log.filter)
            .unwrap_or_else(|| "info".to_string());
        let log_format = if args.log_json {
            LogFormat::Json
        } else {
            file.log.format.unwrap_or(LogFormat::Text)
        };

        let mut udp = hal::udp::UdpConfig::default();
        // The command line's choice of discovery replaces the file's, whichever form either takes.
        let (broadcast, interface) = if args.udp_broadcast.is_some() || args.udp_interface.is_some()
        {
            (args.udp_broadcast, args.udp_interface.clone())
        } else if file.udp.broadcast.is_some() && file.udp.interface.is_some() {
            return Err(ConfigError::Invalid(
                "[udp] has both broadcast and interface: keep one (interface finds the broadcast address itself)"
                    .to_string(),
            ));
        } else {
            (file.udp.broadcast, file.udp.interface.clone())
        };
        if interface.is_some() {
            udp.bind = SocketAddr::from(([0, 0, 0, 0], DEFAULT_UDP_PORT));
        }
        if let Some(bind) = args.udp_bind.or(file.udp.bind) {
            udp.bind = bind;
        }
        if !args.udp_peers.is_empty() {
            udp.static_peers = args.udp_peers.clone();
        } else if let Some(peers) = file.udp.static_peers {
            udp.static_peers = peers;
        }
        udp.broadcast = broadcast.or(udp.broadcast);
        // Only a `udp` node looks at the machine's interfaces: a typo there must not stop a `ble` node.
        if let (Some(name), RadioKind::Udp) = (&interface, radio) {
            let found = hal::udp::interface_ipv4(name)
                .map_err(|e| ConfigError::Invalid(format!("udp interface: {e}")))?;
            udp.broadcast = Some(found.broadcast_at(udp.bind.port()));
        }
        if let Some(mtu) = file.udp.att_mtu {
            udp.att_mtu = mtu;
        }
        if let Some(n) = file.udp.max_links {
            udp.max_links = within("[udp] max_links", n, 1, MAX_UDP_LINKS)?;
        }
        if let Some(ms) = file.udp.keepalive_timeout_ms {
            let ms = within("[udp] keepalive_timeout_ms", ms, 1, MAX_TIMEOUT_MS)?;
            udp.keepalive_timeout = Duration::from_millis(ms);
        }
        if radio == RadioKind::Udp {
            udp.validate()
                .map_err(|e| ConfigError::Invalid(format!("[udp] configuration: {e}")))?;
        }

        let mut ble = hal::ble::BleConfig::default();
        ble.adapter = args
            .ble_adapter
            .clone()
            .or(file.ble.adapter)
            .or(ble.adapter);
        if let Some(n) = file.ble.max_links {
            ble.max_links = within("[ble] max_links", n, 1, MAX_BLE_LINKS)?;
        }
        if let Some(ms) = file.ble.startup_timeout_ms {
            let ms = within("[ble] startup_timeout_ms", ms, 1, MAX_TIMEOUT_MS)?;
            ble.startup_timeout = Duration::from_millis(ms);
        }

        let bound = |name: &str, v: Option<usize>, max: usize, default: usize| match v {
            Some(n) => within(&format!("[runtime] {name}"), n, 1, max),
            None => Ok(default),
        };
        Ok(Settings {
            nickname,
            data_dir,
            passphrase,
            radio,
            log_filter,
            log_format,
            udp,
            ble,
            link_backlog: bound(
                "link_backlog",
                file.runtime.link_backlog,
                MAX_LINK_BACKLOG,
                256,
            )?,
            listen_buffer: bound(
                "listen_buffer",
                file.runtime.listen_buffer,
                MAX_LISTEN_BUFFER,
                256,
            )?,
            control_queue: bound(
                "control_queue",
                file.runtime.control_queue,
                MAX_CONTROL_QUEUE,
                64,
            )?,
            max_control_clients: bound(
                "max_control_clients",
                file.runtime.max_control_clients,
                MAX_CONTROL_CLIENTS,
                16,
            )?,
            max_peer_records: match file.store.max_peer_records {
                Some(n) => within("[store] max_peer_records", n, 1, MAX_PEER_RECORDS)?,
                None => meshnode::store::peers::DEFAULT_MAX_PEER_RECORDS,
            },
            resume_sessions: file.store.resume_sessions.unwrap_or(true),
            // A BLE link loses a packet only with the link itself: acknowledging every frame would cost
            // airtime for nothing. UDP datagrams and the simulated medium do lose packets.
            hop_acks: file.mesh.hop_acks.unwrap_or(radio != RadioKind::Ble),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../scripts/meshnode.example.toml");

    #[test]
    fn example_file_parses_and_resolves() {
        let file = parse_file(EXAMPLE, Path::new("example")).unwrap();
        assert_eq!(file.radio, Some(RadioKind::Udp));
        let s = Settings::resolve(file, &RunArgs::default(), None, false).unwrap();
        assert_eq!(s.nickname, "kitchen-pi");
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/meshnode"));
        assert_eq!(s.udp.static_peers.len(), 1);
        assert_eq!(s.log_filter, "info");
        assert_eq!(s.max_peer_records, 4096);
        assert!(s.hop_acks);
        assert_eq!(
            s.passphrase,
            PassphraseSource::File(PathBuf::from("/etc/meshnode/passphrase"))
        );
    }

    #[test]
    fn passphrase_source_flags_then_env_then_file_then_prompt() {
        let none = FileConfig::default();
        let resolve = |file: &FileConfig, args: &RunArgs, env: bool| {
            Settings::resolve(file.clone(), args, None, env).map(|s| s.passphrase)
        };
        let args = RunArgs {
            data_dir: Some("/tmp/d".into()),
            ..RunArgs::default()
        };
        assert_eq!(
            resolve(&none, &args, false).unwrap(),
            PassphraseSource::Prompt
        );
        assert_eq!(resolve(&none, &args, true).unwrap(), PassphraseSource::Env);
        let in_file = parse_file("passphrase_file = \"/p\"\n", Path::new("f")).unwrap();
        assert_eq!(
            resolve(&in_file, &args, false).unwrap(),
            PassphraseSource::File("/p".into())
        );
        assert_eq!(
            resolve(&in_file, &args, true).unwrap(),
            PassphraseSource::Env
        );
        let unprotected = parse_file("no_passphrase = true\n", Path::new("f")).unwrap();
        assert_eq!(
            resolve(&unprotected, &args, false).unwrap(),
            PassphraseSource::NoPassphrase
        );
        let flag = RunArgs {
            passphrase_file: Some("/q".into()),
            ..args.clone()
        };
        assert_eq!(
            resolve(&unprotected, &flag, true).unwrap(),
            PassphraseSource::File("/q".into())
        );
        let no = RunArgs {
            no_passphrase: true,
            ..args.clone()
        };
        assert_eq!(
            resolve(&in_file, &no, true).unwrap(),
            PassphraseSource::NoPassphrase
        );
        let both = parse_file(
            "passphrase_file = \"/p\"\nno_passphrase = true\n",
            Path::new("f"),
        )
        .unwrap();
        let err = resolve(&both, &args, false).unwrap_err().to_string();
        assert!(err.contains("exclude each other"), "{err}");
    }

    #[test]
    fn hop_acks_follow_the_radio_unless_set() {
        let args = RunArgs {
            data_dir: Some("/tmp/d".into()),
            ..RunArgs::default()
        };
        let resolve = |text: &str| {
            let file = parse_file(text, Path::new("f")).unwrap();
            Settings::resolve(file, &args, None, false)
                .unwrap()
                .hop_acks
        };
        assert!(!resolve("radio = \"ble\"\n"));
        assert!(resolve("radio = \"udp\"\n"));
        assert!(resolve("radio = \"sim\"\n"));
        assert!(resolve("radio = \"ble\"\n[mesh]\nhop_acks = true\n"));
        assert!(!resolve("radio = \"udp\"\n[mesh]\nhop_acks = false\n"));
    }

    #[test]
    fn udp_interface_finds_the_broadcast_address_or_says_why_not() {
        let args = RunArgs {
            data_dir: Some("/tmp/d".into()),
            ..RunArgs::default()
        };
        let resolve = |text: &str, args: &RunArgs| {
            let file = parse_file(text, Path::new("f")).unwrap();
            Settings::resolve(file, args, None, false).map_err(|e| e.to_string())
        };
        let err = resolve(
            "radio = \"udp\"\n[udp]\ninterface = \"no-such-if0\"\n",
            &args,
        )
        .unwrap_err();
        assert!(
            err.contains("no network interface is called \"no-such-if0\""),
            "{err}"
        );
        // The loopback cannot broadcast (or has no address at all in a fresh namespace): refused either way.
        assert!(resolve("radio = \"udp\"\n[udp]\ninterface = \"lo\"\n", &args).is_err());
        // A BLE node does not look at the interfaces.
        assert!(resolve(
            "radio = \"ble\"\n[udp]\ninterface = \"no-such-if0\"\n",
            &args
        )
        .is_ok());
        let err = resolve(
            "radio = \"udp\"\n[udp]\ninterface = \"eth0\"\nbroadcast = \"10.0.0.255:7700\"\n",
            &args,
        )
        .unwrap_err();
        assert!(err.contains("keep one"), "{err}");
        // A broadcast address on the command line replaces the file's interface.
        let flag = RunArgs {
            udp_broadcast: Some("10.9.0.255:7700".parse().unwrap()),
            udp_bind: Some("0.0.0.0:7700".parse().unwrap()),
            ..args.clone()
        };
        let s = resolve(
            "radio = \"udp\"\n[udp]\ninterface = \"no-such-if0\"\n",
            &flag,
        )
        .unwrap();
        assert_eq!(s.udp.broadcast, Some("10.9.0.255:7700".parse().unwrap()));
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let err = parse_file("nick = \"x\"\n", Path::new("f.toml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("f.toml") && msg.contains("nick"), "{msg}");
    }

    #[test]
    fn flags_override_file_and_env_sits_between() {
        let file = parse_file(EXAMPLE, Path::new("example")).unwrap();
        let args = RunArgs {
            data_dir: Some(PathBuf::from("/tmp/x")),
            radio: Some(RadioKind::Sim),
            nickname: Some("n2".into()),
            udp_peers: vec!["127.0.0.1:9".parse().unwrap()],
            log_json: true,
            ..RunArgs::default()
        };
        let s = Settings::resolve(file.clone(), &args, Some("debug".into()), false).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(s.radio, RadioKind::Sim);
        assert_eq!(s.nickname, "n2");
        assert_eq!(s.udp.static_peers, vec!["127.0.0.1:9".parse().unwrap()]);
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.log_filter, "debug");
        let args = RunArgs {
            log_filter: Some("trace".into()),
            ..args
        };
        let s = Settings::resolve(file, &args, Some("debug".into()), false).unwrap();
        assert_eq!(s.log_filter, "trace");
    }

    #[test]
    fn huge_sizes_are_refused_naming_key_and_bound() {
        let args = RunArgs {
            data_dir: Some("/tmp/d".into()),
            ..RunArgs::default()
        };
        let huge = "9223372036854775807";
        let cases = [
            ("runtime", "link_backlog", MAX_LINK_BACKLOG as u64),
            ("runtime", "listen_buffer", MAX_LISTEN_BUFFER as u64),
            ("runtime", "control_queue", MAX_CONTROL_QUEUE as u64),
            ("runtime", "max_control_clients", MAX_CONTROL_CLIENTS as u64),
            ("store", "max_peer_records", MAX_PEER_RECORDS as u64),
            ("udp", "max_links", MAX_UDP_LINKS as u64),
            ("udp", "keepalive_timeout_ms", MAX_TIMEOUT_MS),
            ("ble", "max_links", MAX_BLE_LINKS as u64),
            ("ble", "startup_timeout_ms", MAX_TIMEOUT_MS),
        ];
        for radio in ["udp", "ble", "sim"] {
            for (section, key, max) in cases {
                let resolve = |value: &str| {
                    let text = format!("radio = \"{radio}\"\n[{section}]\n{key} = {value}\n");
                    let file = parse_file(&text, Path::new("f")).unwrap();
                    Settings::resolve(file, &args, None, false).map_err(|e| e.to_string())
                };
                let err = resolve(huge).unwrap_err();
                assert_eq!(err, format!("[{section}] {key} must be at most {max}"));
                let err = resolve(&(max + 1).to_string()).unwrap_err();
                assert_eq!(err, format!("[{section}] {key} must be at most {max}"));
                let err = resolve("0").unwrap_err();
                assert_eq!(err, format!("[{section}] {key} must be at least 1"));
                // The bound itself is accepted.
                resolve(&max.to_string()).unwrap();
            }
        }
    }

    #[test]
    fn data_dir_too_long_for_the_control_socket_is_refused_early() {
        let max = max_socket_path_len();
        let fits = "/".to_string() + &"d".repeat(max - 1 - "/control.sock".len());
        let args = |dir: &str| RunArgs {
            data_dir: Some(dir.into()),
            ..RunArgs::default()
        };
        Settings::resolve(FileConfig::default(), &args(&fits), None, false).unwrap();
        let long = fits.clone() + "x";
        let err = Settings::resolve(FileConfig::default(), &args(&long), None, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("at most {max}"))
                && err.contains(&format!("at most {} bytes with --data-dir", fits.len())),
            "{err}"
        );
    }

    #[test]
    fn sled_is_kept_at_info_unless_named() {
        assert_eq!(effective_log_filter("debug"), "debug,sled=info");
        assert_eq!(
            effective_log_filter("TRACE,hal=info"),
            "TRACE,hal=info,sled=info"
        );
        assert_eq!(effective_log_filter("debug,sled=debug"), "debug,sled=debug");
        assert_eq!(
            effective_log_filter("debug,sled::pagecache=trace"),
            "debug,sled::pagecache=trace"
        );
        // Not more verbose than info for every target: sled is already quiet, and `off` stays off.
        for quiet in ["info", "warn", "off", "meshnode=debug,hal=debug"] {
            assert_eq!(effective_log_filter(quiet), quiet);
        }
    }

    #[test]
    fn bad_values_are_refused_with_reasons() {
        let file = parse_file("radio = \"udp\"\n[udp]\natt_mtu = 5\n", Path::new("f")).unwrap();
        let args = RunArgs {
            data_dir: Some("/tmp/d".into()),
            ..RunArgs::default()
        };
        let err = Settings::resolve(file, &args, None, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ATT MTU 5"), "{err}");
        let file = parse_file("[runtime]\nlink_backlog = 0\n", Path::new("f")).unwrap();
        let err = Settings::resolve(file, &args, None, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("link_backlog"), "{err}");
        let err = parse_file("radio = \"wifi\"\n", Path::new("f")).unwrap_err();
        assert!(err.to_string().contains("wifi"), "{err}");
    }
}
