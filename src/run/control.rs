//! The control socket of `meshnode run`: `<data-dir>/control.sock`, mode 0600, speaking newline-delimited JSON.
//!
//! # Protocol
//!
//! A client writes one request per line and reads one response line per request:
//!
//! ```text
//! -> {"cmd":"send","peer":"alice","text":"hello"}
//! <- {"ok":true,"result":{"to":"0a1b2c3d4e5f6071","id":"5f2c..."}}
//! -> {"cmd":"frobnicate"}
//! <- {"ok":false,"error":"bad request: unknown variant `frobnicate`, expected one of ..."}
//! ```
//!
//! Requests (`cmd` and its fields): `status`, `peers`, `sessions`, `fingerprint`, `stats`, `listen`,
//! `send {peer, text}`, `broadcast {text}` (signed, to every node), `broadcast {text, channel}` (sealed for a joined
//! password channel; refused with advice to run `meshnode ctl join <channel>` when it is not joined, and then
//! nothing is sent), `join {channel, password}`, `leave {channel}`, `trust {peer}`, `close {peer}` or
//! `close {all: true}`. A `peer` is a full 16-hex-digit id (always that id, known or not), or a nickname or an id
//! prefix (see [`resolve_peer`]); an ambiguous one is an error listing the candidates. `send` answers
//! `{to, id, queued}` (`queued` true, with a `note`, when the peer is not known yet: the message waits in the
//! outbox until it appears), `broadcast` `{id, channel}` (`channel` null for a signed broadcast);
//! `stats` answers an object of counter groups (`node`, `driver`, `radio`, `store`, each an object of numbers) with
//! `radio_kind`, `events_published`, `control_calls` and `memory_bytes` (see [`super::runtime::Stats`]).
//! After `listen` is answered, the server writes one event object per line (shapes in [`super::events`];
//! `{"event":"lagged","missed":N}` when the client fell behind) until the client disconnects. A line longer than
//! [`MAX_LINE`] bytes, invalid JSON, an unknown command or field is answered with an error object and changes
//! nothing.
//!
//! Connections: at most `[runtime] max_control_clients` at once; one more is answered with an error line and
//! closed. A connection that is not listening and sends no complete request for [`IDLE_TIMEOUT`] is answered with
//! an error line and closed, so idle clients cannot hold every slot.
//!
//! Invariant: requests reach the node loop only through a bounded channel; a request that fails validation never
//! reaches it; passwords are used to derive the channel key here (off the node loop, on the one channel-key worker of
//! [`kdf`]) and never logged; the socket
//! file is removed when the server stops, and a stale one is replaced only after checking nobody answers on it.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mesh::identity::NodeId;
use mesh::node::ChannelKey;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, oneshot, Semaphore};

pub mod kdf;

/// The socket's file name inside the data directory.
pub const SOCKET_FILE: &str = "control.sock";
/// Longest request line accepted, in bytes.
pub const MAX_LINE: usize = 64 * 1024;
/// How long a connection that is not listening may wait before completing a request line.
pub const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A request as a client writes it.
#[derive(Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// This node: id, nickname, radio, links, counts.
    Status {},
    /// Peers known from announces.
    Peers {},
    /// Peers with an established session.
    Sessions {},
    /// This node's id and fingerprint.
    Fingerprint {},
    /// Counters.
    Stats {},
    /// Stream events.
    Listen {},
    /// A private message.
    Send {
        /// Id prefix or nickname.
        peer: String,
        /// The text.
        text: String,
    },
    /// A signed message to everybody, or with `channel` a message on that joined password channel.
    Broadcast {
        /// The text.
        text: String,
        /// A joined channel to send on instead (absent or `null`: a signed broadcast).
        #[serde(default)]
        channel: Option<String>,
    },
    /// Join a password channel.
    Join {
        /// Its name.
        channel: String,
        /// Its password (never logged).
        password: String,
    },
    /// Leave a channel.
    Leave {
        /// Its name.
        channel: String,
    },
    /// Accept a peer's changed keys.
    Trust {
        /// Id prefix or nickname.
        peer: String,
    },
    /// Close one session or all.
    Close {
        /// Id prefix or nickname.
        #[serde(default)]
        peer: Option<String>,
        /// Close every session.
        #[serde(default)]
        all: bool,
    },
}

/// What the node loop is asked to do (validated; a join already carries its derived key).
pub enum Command {
    /// See [`Request::Status`].
    Status,
    /// See [`Request::Peers`].
    Peers,
    /// See [`Request::Sessions`].
    Sessions,
    /// See [`Request::Fingerprint`].
    Fingerprint,
    /// See [`Request::Stats`].
    Stats,
    /// See [`Request::Send`].
    Send {
        /// Peer spec.
        peer: String,
        /// Text.
        text: String,
    },
    /// See [`Request::Broadcast`] without a channel.
    Broadcast {
        /// Text.
        text: String,
    },
    /// See [`Request::Broadcast`] with a channel (its name valid).
    SendChannel {
        /// Channel name.
        channel: String,
        /// Text.
        text: String,
    },
    /// See [`Request::Join`].
    Join {
        /// The derived key.
        key: ChannelKey,
    },
    /// See [`Request::Leave`].
    Leave {
        /// Channel name.
        channel: String,
    },
    /// See [`Request::Trust`].
    Trust {
        /// Peer spec.
        peer: String,
    },
    /// Close one session.
    Close {
        /// Peer spec.
        peer: String,
    },
    /// Close every session.
    CloseAll,
}

/// The loop's answer: a JSON result or an error message.
pub type Reply = Result<Value, String>;

/// One request on its way to the node loop.
pub struct Call {
    /// What to do.
    pub command: Command,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Reply>,
}

/// Why the control socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Another process answers on the socket.
    #[error("another meshnode is already running with data directory {0} (its control socket answers); stop it or use another --data-dir")]
    Live(PathBuf),
    /// Binding or securing the socket failed.
    #[error("cannot open control socket {path}: {source}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// Parses one request line.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    serde_json::from_slice(line).map_err(|e| format!("bad request: {e}"))
}

/// Resolves a peer named by `spec` among `candidates` (the known peers, with their nicknames); `this` is this
/// node's id and nickname (`""` when it has none).
///
/// A full 16-hex-digit id always means that id, known or not (a message to a peer not known yet waits in the
/// outbox until it appears), so nobody can capture messages meant for an id by announcing it as a nickname.
/// Anything else is matched against nicknames (exactly) and ids (as a hex prefix): one candidate is the answer,
/// several are an error listing them. This node is never an answer: naming it is an error that says so.
pub fn resolve_peer(
    spec: &str,
    this: (NodeId, &str),
    candidates: &[(NodeId, String)],
) -> Result<NodeId, String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err("empty peer name: give an id prefix or a nickname".into());
    }
    let is_hex = spec.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex && spec.len() > 16 {
        return Err(format!(
            "{spec:?} has {} hex digits: node ids are 16 hex digits",
            spec.len()
        ));
    }
    let self_error = || {
        format!(
            "{spec:?} is {}: that is this node; give another peer",
            this.0
        )
    };
    if let Some(id) = parse_full_id(spec) {
        return if id == this.0 {
            Err(self_error())
        } else {
            Ok(id)
        };
    }
    let lower = spec.to_ascii_lowercase();
    let mut matches: Vec<(NodeId, &str)> = Vec::new();
    for (id, nick) in candidates {
        let hit = nick == spec || (is_hex && id.to_string().starts_with(&lower));
        if hit && *id != this.0 && !matches.iter().any(|(m, _)| m == id) {
            matches.push((*id, nick));
        }
    }
    let is_self = (!this.1.is_empty() && this.1 == spec)
        || (is_hex && this.0.to_string().starts_with(&lower));
    match (matches.as_slice(), is_self) {
        ([(id, _)], false) => Ok(*id),
        ([], true) => Err(self_error()),
        ([], false) => Err(format!(
            "no known peer matches {spec:?}: run `meshnode ctl peers`, or give the full 16-digit id"
        )),
        (many, _) => {
            // Nicknames come from the network: quoted with their control characters escaped.
            let mut list: Vec<String> = many
                .iter()
                .map(|(id, n)| {
                    if n.is_empty() {
                        id.to_string()
                    } else {
                        format!("{id} ({n:?})")
                    }
                })
                .collect();
            if is_self {
                list.push(format!("{} (this node)", this.0));
            }
            Err(format!(
                "{spec:?} is ambiguous: it matches {}; give the full 16-digit id",
                list.join(", ")
            ))
        }
    }
}

fn parse_full_id(spec: &str) -> Option<NodeId> {
    if spec.len() != 16 {
        return None;
    }
    let mut id = [0u8; 8];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(spec.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(NodeId(id))
}

/// Binds the socket in `dir`, replacing a stale file left by a crash (after checking nobody answers on it).
pub fn bind(dir: &Path) -> Result<(UnixListener, PathBuf), ControlError> {
    let path = dir.join(SOCKET_FILE);
    let err = |source| ControlError::Bind {
        path: path.clone(),
        source,
    };
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Err(ControlError::Live(dir.to_path_buf()));
        }
        tracing::warn!(path = %path.display(), "replacing a stale control socket (a previous run did not stop cleanly)");
        std::fs::remove_file(&path).map_err(err)?;
    }
    let listener = UnixListener::bind(&path).map_err(err)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok((listener, path))
}

/// Shared state of the server's connection tasks.
#[derive(Clone)]
pub struct ServerParts {
    /// Into the node loop.
    pub calls: mpsc::Sender<Call>,
    /// Event lines from the node loop.
    pub events: broadcast::Sender<Arc<str>>,
    /// Connection slots.
    pub slots: Arc<Semaphore>,
    /// Connections being refused politely (an explanation, then a short drain) at once; more are closed at once.
    pub refusals: Arc<Semaphore>,
}

/// Connections refused politely at the same time, at most (each holds a descriptor for up to half a second).
pub const MAX_REFUSALS: usize = 8;

/// Accepts connections until the listener fails or the task is aborted.
pub async fn serve(listener: UnixListener, parts: ServerParts) {
    serve_with(listener, parts, IDLE_TIMEOUT).await;
}

/// [`serve`] with connections closed after `idle` without a complete request.
async fn serve_with(listener: UnixListener, parts: ServerParts, idle: std::time::Duration) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let parts = parts.clone();
                match parts.slots.clone().try_acquire_owned() {
                    Ok(permit) => {
                        tokio::spawn(async move {
                            connection(stream, parts, idle).await;
                            drop(permit);
                        });
                    }
                    Err(_) => match parts.refusals.clone().try_acquire_owned() {
                        Ok(permit) => {
                            tokio::spawn(async move {
                                refuse(stream).await;
                                drop(permit);
                            });
                        }
                        // Refusing politely is bounded too: beyond it, a connection is closed at once.
                        Err(_) => drop(stream),
                    },
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Tells a client that every slot is taken, then reads (and drops) what it sent for a moment before closing:
/// closing with its request unread would reset the connection, and the client could lose the explanation.
async fn refuse(mut stream: UnixStream) {
    let line = error_line(&format!(
        "too many control connections open (idle ones are closed after {} s, `ctl listen` ones stay); close one \
         and retry",
        IDLE_TIMEOUT.as_secs()
    ));
    if stream.write_all(line.as_bytes()).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 1024];
    let drain = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), drain).await;
}

fn error_line(message: &str) -> String {
    format!("{}\n", json!({"ok": false, "error": message}))
}

fn ok_line(result: Value) -> String {
    format!("{}\n", json!({"ok": true, "result": result}))
}

async fn connection(stream: UnixStream, parts: ServerParts, idle: std::time::Duration) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    // A request line may hold a channel password: wiped after each request and when the connection ends.
    let mut line = zeroize::Zeroizing::new(Vec::new());
    loop {
        zeroize::Zeroize::zeroize(&mut *line);
        let limit = u64::try_from(MAX_LINE)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let mut limited = (&mut reader).take(limit);
        match tokio::time::timeout(idle, limited.read_until(b'\n', &mut line)).await {
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(_)) => {}
            Err(_) => {
                let msg = format!(
                    "no complete request within {} s; closing the connection (idle connections would hold the \
                     node's control slots)",
                    idle.as_secs()
                );
                let _ = write.write_all(error_line(&msg).as_bytes()).await;
                return;
            }
        }
        if line.len() > MAX_LINE {
            let msg = format!("request longer than {MAX_LINE} bytes; closing the connection");
            let _ = write.write_all(error_line(&msg).as_bytes()).await;
            return;
        }
        let answer = match parse_request(&line) {
            Err(e) => error_line(&e),
            Ok(Request::Listen {}) => {
                let mut rx = parts.events.subscribe();
                if write
                    .write_all(ok_line(json!("listening")).as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
                stream_events(&mut rx, &mut write, &mut reader).await;
                return;
            }
            Ok(req) => {
                // A join's key derivation can take seconds: if the client gives up and goes meanwhile, the work is
                // dropped (a derivation not started yet is skipped), so nothing happens that it was told failed.
                let work = async {
                    match into_command(req).await {
                        Err(e) => error_line(&e),
                        Ok(command) => call(&parts, command).await,
                    }
                };
                tokio::pin!(work);
                let mut watching = true;
                loop {
                    tokio::select! {
                        answer = &mut work => break answer,
                        seen = reader.fill_buf(), if watching => match seen {
                            Ok([]) | Err(_) => return,
                            // A pipelined next request: the client is still there; it is read after this answer.
                            Ok(_) => watching = false,
                        },
                    }
                }
            }
        };
        if write.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn call(parts: &ServerParts, command: Command) -> String {
    let (tx, rx) = oneshot::channel();
    if parts.calls.try_send(Call { command, reply: tx }).is_err() {
        return error_line("the node is busy (control queue full) or stopping; retry");
    }
    match rx.await {
        Ok(Ok(v)) => ok_line(v),
        Ok(Err(e)) => error_line(&e),
        Err(_) => error_line("the node stopped before answering"),
    }
}

async fn stream_events(
    rx: &mut broadcast::Receiver<Arc<str>>,
    write: &mut tokio::net::unix::OwnedWriteHalf,
    reader: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
) {
    let mut sink = [0u8; 256];
    loop {
        tokio::select! {
            ev = rx.recv() => {
                let line = match ev {
                    Ok(line) => format!("{line}\n"),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        format!("{}\n", json!({"event": "lagged", "missed": n}))
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if write.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
            }
            // The client closing its end ends the stream; anything it writes is ignored.
            n = reader.read(&mut sink) => {
                if !matches!(n, Ok(k) if k > 0) {
                    return;
                }
            }
        }
    }
}

/// Validates a request and turns it into a command (deriving a channel key off the node loop).
async fn into_command(req: Request) -> Result<Command, String> {
    Ok(match req {
        Request::Status {} => Command::Status,
        Request::Peers {} => Command::Peers,
        Request::Sessions {} => Command::Sessions,
        Request::Fingerprint {} => Command::Fingerprint,
        Request::Stats {} => Command::Stats,
        Request::Listen {} => return Err("listen is handled by the connection".into()),
        Request::Send { peer, text } => {
            check_text(&text)?;
            Command::Send { peer, text }
        }
        Request::Broadcast { text, channel } => {
            check_text(&text)?;
            match channel {
                None => Command::Broadcast { text },
                Some(channel) => {
                    check_channel_name(&channel)?;
                    Command::SendChannel { channel, text }
                }
            }
        }
        Request::Join { channel, password } => {
            check_channel_name(&channel)?;
            if password.is_empty() {
                return Err("empty channel password: give the channel's password".into());
            }
            // On the one channel-key worker (see `kdf`): one 19 MiB buffer however many joins run.
            let password = zeroize::Zeroizing::new(password);
            let worker = kdf::shared().map_err(|e| e.to_string())?;
            let key = worker
                .derive(channel, password)
                .await
                .map_err(|e| e.to_string())?;
            let done = worker.stats();
            tracing::debug!(
                derivations = done.derivations.load(std::sync::atomic::Ordering::Relaxed),
                buffers = done
                    .buffer_allocations
                    .load(std::sync::atomic::Ordering::Relaxed),
                "channel key derived"
            );
            Command::Join { key }
        }
        Request::Leave { channel } => Command::Leave { channel },
        Request::Trust { peer } => Command::Trust { peer },
        Request::Close { peer, all } => match (peer, all) {
            (Some(peer), false) => Command::Close { peer },
            (None, true) => Command::CloseAll,
            _ => return Err("close needs exactly one of a peer or all=true".into()),
        },
    })
}

fn check_channel_name(channel: &str) -> Result<(), String> {
    mesh::channel::validate_channel_name(channel)
        .map_err(|e| format!("invalid channel name {channel:?}: {e}"))
}

fn check_text(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("empty message: give some text".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8, rest: u8) -> NodeId {
        NodeId([b, rest, 0, 0, 0, 0, 0, 1])
    }

    #[test]
    fn requests_parse_and_bad_ones_are_explained() {
        assert!(matches!(
            parse_request(br#"{"cmd":"send","peer":"ab","text":"hi"}"#),
            Ok(Request::Send { .. })
        ));
        assert!(matches!(
            parse_request(br#"{"cmd":"close","all":true}"#),
            Ok(Request::Close { all: true, .. })
        ));
        let e = parse_request(br#"{"cmd":"frob"}"#).err().unwrap();
        assert!(e.contains("frob"), "{e}");
        let e = parse_request(br#"{"cmd":"send","peer":"a"}"#)
            .err()
            .unwrap();
        assert!(e.contains("text"), "{e}");
        let e = parse_request(br#"{"cmd":"status","x":1}"#).err().unwrap();
        assert!(e.contains('x'), "{e}");
        assert!(parse_request(b"not json").is_err());
        assert!(parse_request(b"").is_err());
    }

    const ME: NodeId = NodeId([0xee, 0xee, 0, 0, 0, 0, 0, 9]);

    #[test]
    fn peers_resolve_by_prefix_or_nickname_and_ambiguity_lists_candidates() {
        let c = vec![
            (id(0xab, 0x01), "alice".to_string()),
            (id(0xab, 0x02), "bob".to_string()),
            (id(0x12, 0x00), String::new()),
        ];
        let me = (ME, "me");
        assert_eq!(resolve_peer("alice", me, &c), Ok(id(0xab, 0x01)));
        assert_eq!(resolve_peer("AB02", me, &c), Ok(id(0xab, 0x02)));
        assert_eq!(resolve_peer("12", me, &c), Ok(id(0x12, 0)));
        let e = resolve_peer("ab", me, &c).unwrap_err();
        assert!(
            e.contains("alice") && e.contains("bob") && e.contains("ambiguous"),
            "{e}"
        );
        let e = resolve_peer("zz", me, &c).unwrap_err();
        assert!(e.contains("no known peer"), "{e}");
        assert_eq!(
            resolve_peer("0102030405060708", me, &c),
            Ok(NodeId([1, 2, 3, 4, 5, 6, 7, 8]))
        );
        assert!(resolve_peer("", me, &c).is_err());
    }

    #[test]
    fn a_full_id_means_that_id_even_when_another_peer_uses_it_as_nickname() {
        let real = NodeId([0xa9, 0x55, 0xe2, 0xfc, 0x12, 0x12, 0x2e, 0xe7]);
        let impostor = id(0x33, 0x01);
        let c = vec![
            (impostor, "a955e2fc12122ee7".to_string()),
            (real, "n0".to_string()),
        ];
        let me = (ME, "");
        assert_eq!(resolve_peer("a955e2fc12122ee7", me, &c), Ok(real));
        assert_eq!(resolve_peer("A955E2FC12122EE7", me, &c), Ok(real));
        // Without the real node known, the full id still means it (queued), never the impostor.
        assert_eq!(resolve_peer("a955e2fc12122ee7", me, &c[..1]), Ok(real));
        // The impostor is reachable by its own id.
        assert_eq!(resolve_peer("3301", me, &c), Ok(impostor));
    }

    #[test]
    fn a_nickname_that_is_also_an_id_prefix_is_ambiguous() {
        let c = vec![
            (id(0xab, 0x01), "cafe".to_string()),
            (id(0xca, 0xfe), "bob".to_string()),
            (id(0x11, 0x01), "dup".to_string()),
            (id(0x22, 0x01), "dup".to_string()),
        ];
        let me = (ME, "");
        let e = resolve_peer("cafe", me, &c).unwrap_err();
        assert!(e.contains("ambiguous"), "{e}");
        assert!(
            e.contains(&id(0xab, 1).to_string()) && e.contains(&id(0xca, 0xfe).to_string()),
            "{e}"
        );
        let e = resolve_peer("dup", me, &c).unwrap_err();
        assert!(e.contains("ambiguous"), "{e}");
        assert!(
            e.contains(&id(0x11, 1).to_string()) && e.contains(&id(0x22, 1).to_string()),
            "{e}"
        );
        // A nickname with control characters is listed escaped, never raw.
        let c = vec![
            (id(0x11, 0x01), "a\n\u{1b}[31m".to_string()),
            (id(0x11, 0x02), String::new()),
        ];
        let e = resolve_peer("11", me, &c).unwrap_err();
        assert!(!e.contains('\n') && !e.contains('\u{1b}'), "{e}");
    }

    #[test]
    fn this_node_and_over_long_ids_are_refused_with_reasons() {
        let c = vec![(id(0xab, 0x01), "alice".to_string())];
        let me = (ME, "me");
        for spec in ["eeee000000000009", "EEEE000000000009", "me", "eeee"] {
            let e = resolve_peer(spec, me, &c).unwrap_err();
            assert!(e.contains("that is this node"), "{spec}: {e}");
        }
        // This node is listed among the candidates of an ambiguous name.
        let c2 = vec![(id(0xee, 0x01), "x".to_string())];
        let e = resolve_peer("ee", me, &c2).unwrap_err();
        assert!(e.contains("ambiguous") && e.contains("this node"), "{e}");
        let e = resolve_peer("eeee0000000000091", me, &c).unwrap_err();
        assert!(e.contains("node ids are 16 hex digits"), "{e}");
        // A 16-character nickname that is not hex is a nickname.
        let c3 = vec![(id(0x44, 0x01), "not-an-id-at-all".to_string())];
        assert_eq!(
            resolve_peer("not-an-id-at-all", me, &c3),
            Ok(id(0x44, 0x01))
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn close_needs_one_target_and_join_checks_inputs() {
        assert!(into_command(Request::Close {
            peer: None,
            all: false
        })
        .await
        .is_err());
        assert!(into_command(Request::Close {
            peer: Some("a".into()),
            all: true
        })
        .await
        .is_err());
        assert!(into_command(Request::Join {
            channel: "x".into(),
            password: String::new()
        })
        .await
        .is_err());
        assert!(into_command(Request::Send {
            peer: "a".into(),
            text: String::new()
        })
        .await
        .is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn broadcast_with_a_channel_becomes_a_channel_message() {
        let req = parse_request(br#"{"cmd":"broadcast","text":"hi","channel":"general"}"#).unwrap();
        match into_command(req).await {
            Ok(Command::SendChannel { channel, text }) => {
                assert_eq!((channel.as_str(), text.as_str()), ("general", "hi"));
            }
            _ => panic!("not a channel message"),
        }
        for line in [
            &br#"{"cmd":"broadcast","text":"hi"}"#[..],
            br#"{"cmd":"broadcast","text":"hi","channel":null}"#,
        ] {
            let req = parse_request(line).unwrap();
            assert!(matches!(
                into_command(req).await,
                Ok(Command::Broadcast { text }) if text == "hi"
            ));
        }
        let e = parse_request(br#"{"cmd":"broadcast","text":"hi","channel":7}"#)
            .err()
            .unwrap();
        assert!(e.starts_with("bad request"), "{e}");
        for channel in ["", "a\nb"] {
            let e = into_command(Request::Broadcast {
                text: "hi".into(),
                channel: Some(channel.to_string()),
            })
            .await
            .err()
            .unwrap();
            assert!(e.contains("invalid channel name"), "{e}");
        }
        let e = into_command(Request::Broadcast {
            text: String::new(),
            channel: Some("general".into()),
        })
        .await
        .err()
        .unwrap();
        assert!(e.contains("empty message"), "{e}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_idle_connection_is_closed_with_a_reason_and_frees_its_slot() {
        let dir = tempfile::tempdir().unwrap();
        let (listener, path) = bind(dir.path()).unwrap();
        let (calls, mut calls_rx) = mpsc::channel(4);
        let (events, _) = broadcast::channel(4);
        let parts = ServerParts {
            calls,
            events,
            slots: Arc::new(Semaphore::new(1)),
            refusals: Arc::new(Semaphore::new(MAX_REFUSALS)),
        };
        let slots = Arc::clone(&parts.slots);
        let server = tokio::spawn(serve_with(
            listener,
            parts,
            std::time::Duration::from_millis(200),
        ));
        let answerer = tokio::spawn(async move {
            while let Some(call) = calls_rx.recv().await {
                let _ = call.reply.send(Ok(json!("fine")));
            }
        });
        let bounded = std::time::Duration::from_secs(10);
        // An idle connection (half a request, no newline) takes the only slot, then is told why it is closed.
        let mut idle = UnixStream::connect(&path).await.unwrap();
        idle.write_all(br#"{"cmd":"sta"#).await.unwrap();
        let mut text = String::new();
        tokio::time::timeout(bounded, idle.read_to_string(&mut text))
            .await
            .expect("the idle connection was never closed")
            .unwrap();
        assert!(text.contains("no complete request within"), "{text}");
        // Its slot is free again: a new client is served.
        let deadline = tokio::time::Instant::now() + bounded;
        while slots.available_permits() == 0 {
            assert!(tokio::time::Instant::now() < deadline, "slot never freed");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let mut c = UnixStream::connect(&path).await.unwrap();
        c.write_all(b"{\"cmd\":\"status\"}\n").await.unwrap();
        let mut r = BufReader::new(c);
        let mut line = String::new();
        tokio::time::timeout(bounded, r.read_line(&mut line))
            .await
            .unwrap()
            .unwrap();
        assert!(line.contains("\"ok\":true"), "{line}");
        // A listening connection is never closed for being idle.
        r.get_mut()
            .write_all(b"{\"cmd\":\"listen\"}\n")
            .await
            .unwrap();
        line.clear();
        r.read_line(&mut line).await.unwrap();
        assert!(line.contains("listening"), "{line}");
        line.clear();
        let more = tokio::time::timeout(
            std::time::Duration::from_millis(600),
            r.read_line(&mut line),
        )
        .await;
        assert!(more.is_err(), "a listener was closed: {line:?}");
        // While it holds the only slot, the next client is told so (and can read it after sending its request).
        let mut extra = UnixStream::connect(&path).await.unwrap();
        let _ = extra.write_all(b"{\"cmd\":\"status\"}\n").await;
        let mut text = String::new();
        tokio::time::timeout(bounded, extra.read_to_string(&mut text))
            .await
            .unwrap()
            .unwrap();
        assert!(text.contains("too many control connections"), "{text}");
        server.abort();
        answerer.abort();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn stale_socket_is_replaced_and_live_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SOCKET_FILE);
        std::fs::write(&path, b"").unwrap();
        let (listener, p) = bind(dir.path()).unwrap();
        assert_eq!(p, path);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let err = bind(dir.path()).err().unwrap();
        assert!(matches!(err, ControlError::Live(_)), "{err}");
        drop(listener);
    }
}
