//! `meshnode ctl`: a client of a running node's control socket (`<data-dir>/control.sock`). Sends one JSON request
//! line, prints the answer as a table for people or as JSON with `--json`; `listen` prints events until interrupted.
//!
//! Invariant: channel passwords never appear on the command line: they are read from a no-echo prompt when stdin is a
//! terminal, else from the first line of stdin. An error answer exits 1, an unreachable node exits 2.

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};

use crate::run::control::SOCKET_FILE;

/// `meshnode ctl` flags.
#[derive(clap::Args, Debug)]
pub struct CtlArgs {
    /// The node's data directory [default: $HOME/.local/share/meshnode].
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Print the node's JSON answer instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to ask.
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// `meshnode ctl` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum CtlCommand {
    /// This node: id, fingerprint, radio, links, peers, sessions.
    Status,
    /// Peers known from their announces.
    Peers,
    /// Peers with an end-to-end session or a handshake in progress (state handshaking, established, renewing).
    Sessions,
    /// Send a private message to a peer (id prefix or nickname).
    Send {
        /// Id prefix or nickname.
        peer: String,
        /// The text.
        text: String,
    },
    /// Send a signed message to every node, or with --channel to the members of a joined password channel.
    Broadcast {
        /// Send on this joined channel (see `join`) instead of a signed broadcast to everybody.
        #[arg(long, value_name = "NAME")]
        channel: Option<String>,
        /// The text.
        text: String,
    },
    /// Join a password channel (password from a prompt, or stdin when not a terminal).
    Join {
        /// Channel name.
        channel: String,
    },
    /// Leave a channel.
    Leave {
        /// Channel name.
        channel: String,
    },
    /// Accept a peer's new keys after a key change was refused.
    Trust {
        /// Id prefix or nickname.
        peer: String,
    },
    /// Close the session with a peer, or every session with --all.
    Close {
        /// Id prefix or nickname.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        peer: Option<String>,
        /// Close every session.
        #[arg(long)]
        all: bool,
    },
    /// This node's id and key fingerprint (compare it out of band).
    Fingerprint,
    /// Counters of the node, the link policy, the radio and the store (with --json: groups of numbers).
    Stats,
    /// Print incoming messages and events until interrupted: one line each, or with --json one object each (the
    /// shapes are listed in README.md, "The control interface").
    Listen,
}

/// `meshnode ctl`.
pub fn main(args: &CtlArgs) -> ExitCode {
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("meshnode ctl: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &CtlArgs) -> Result<ExitCode, String> {
    let request = build_request(&args.command)?;
    let dir = args
        .data_dir
        .clone()
        .or_else(crate::run::config::default_data_dir)
        .ok_or("no data directory: pass --data-dir DIR")?;
    let path = dir.join(SOCKET_FILE);
    let stream = UnixStream::connect(&path).map_err(|e| {
        format!(
            "cannot reach the node at {}: {e} (is `meshnode run --data-dir {}` running, and may this user open the socket?)",
            path.display(),
            dir.display()
        )
    })?;
    let listen = matches!(args.command, CtlCommand::Listen);
    if !listen {
        // Joining derives an Argon2id key on the node: allow for a slow machine.
        let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    }
    let mut writer = stream.try_clone().map_err(|e| format!("socket: {e}"))?;
    writer
        .write_all(format!("{request}\n").as_bytes())
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut reader = BufReader::new(stream);
    let answer =
        read_json_line(&mut reader)?.ok_or("the node closed the connection without answering")?;
    if answer["ok"] != json!(true) {
        let msg = answer["error"].as_str().unwrap_or("unknown error");
        if args.json {
            println!("{answer}");
        }
        eprintln!("meshnode ctl: {msg}");
        return Ok(ExitCode::FAILURE);
    }
    let result = &answer["result"];
    if listen {
        // The node subscribed this connection before answering: from here on no event is missed. Scripts read
        // this first line to know when it is safe to act.
        if args.json {
            println!("{}", json!({"event": "listening"}));
            let _ = std::io::stdout().flush();
        } else {
            eprintln!("listening for messages and events (Ctrl-C to stop)");
        }
        while let Some(event) = read_json_line(&mut reader)? {
            if args.json {
                println!("{event}");
            } else {
                println!("{}", describe_event(&event));
            }
            let _ = std::io::stdout().flush();
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.json {
        println!("{result}");
    } else {
        print_human(&args.command, result);
    }
    Ok(ExitCode::SUCCESS)
}

fn read_json_line(reader: &mut impl BufRead) -> Result<Option<Value>, String> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => Ok(None),
        Ok(_) => serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| format!("the node sent an unreadable answer: {e}")),
        Err(e) => Err(format!("reading the answer failed: {e}")),
    }
}

fn build_request(cmd: &CtlCommand) -> Result<Value, String> {
    Ok(match cmd {
        CtlCommand::Status => json!({"cmd": "status"}),
        CtlCommand::Peers => json!({"cmd": "peers"}),
        CtlCommand::Sessions => json!({"cmd": "sessions"}),
        CtlCommand::Fingerprint => json!({"cmd": "fingerprint"}),
        CtlCommand::Stats => json!({"cmd": "stats"}),
        CtlCommand::Listen => json!({"cmd": "listen"}),
        CtlCommand::Send { peer, text } => json!({"cmd": "send", "peer": peer, "text": text}),
        CtlCommand::Broadcast {
            text,
            channel: None,
        } => json!({"cmd": "broadcast", "text": text}),
        CtlCommand::Broadcast {
            text,
            channel: Some(channel),
        } => json!({"cmd": "broadcast", "text": text, "channel": channel}),
        CtlCommand::Join { channel } => {
            let password = read_password(channel)?;
            json!({"cmd": "join", "channel": channel, "password": password})
        }
        CtlCommand::Leave { channel } => json!({"cmd": "leave", "channel": channel}),
        CtlCommand::Trust { peer } => json!({"cmd": "trust", "peer": peer}),
        CtlCommand::Close { peer: Some(p), .. } => json!({"cmd": "close", "peer": p}),
        CtlCommand::Close { peer: None, .. } => json!({"cmd": "close", "all": true}),
    })
}

fn read_password(channel: &str) -> Result<String, String> {
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("password for channel {channel}: "))
            .map_err(|e| format!("cannot read the password: {e}"))?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        return Err("empty password: type the channel's password (or pipe it on stdin)".into());
    }
    Ok(password)
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn print_human(cmd: &CtlCommand, result: &Value) {
    match cmd {
        CtlCommand::Peers | CtlCommand::Sessions => {
            let rows = result.as_array().cloned().unwrap_or_default();
            if rows.is_empty() {
                println!("(none)");
                return;
            }
            println!(
                "{:<16}  {:<20}  {:>4}  {:<11}  {:>6}  FINGERPRINT",
                "ID", "NICKNAME", "HOPS", "SESSION", "HEARD"
            );
            for r in rows {
                println!(
                    "{:<16}  {:<20}  {:>4}  {:<11}  {:>5}s  {}",
                    s(&r["id"]),
                    s(&r["nickname"]),
                    s(&r["hops"]),
                    s(&r["state"]),
                    s(&r["last_heard_s"]),
                    s(&r["fingerprint"])
                );
            }
        }
        CtlCommand::Stats => print_map("", result),
        _ => match result {
            Value::Object(map) => {
                for (k, v) in map.iter().filter(|(_, v)| !v.is_null()) {
                    println!("{k:<12} {}", s(v));
                }
            }
            other => println!("{}", s(other)),
        },
    }
}

fn print_map(prefix: &str, v: &Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                print_map(&key, v);
            }
        }
        other => println!("{prefix:<40} {}", s(other)),
    }
}

/// One readable line for an event object (the shapes are documented in `run::events`); an event this client does
/// not know is shown with its JSON.
fn describe_event(e: &Value) -> String {
    describe_known(e).unwrap_or_else(|| format!("{}: {e}", s(&e["event"])))
}

fn describe_known(e: &Value) -> Option<String> {
    // "alice (0123456789abcdef)", or the id alone when no nickname is known.
    let who = |id: &str, nick: &str| {
        let (id, n) = (s(&e[id]), s(&e[nick]));
        if n.is_empty() {
            id
        } else {
            format!("{n} ({id})")
        }
    };
    let peer = || who("peer", "nickname");
    let field = |k: &str| s(&e[k]);
    Some(match e["event"].as_str()? {
        "message" => {
            let kind = match e["kind"].as_str()? {
                "channel" => format!("#{}", field("channel")),
                k => k.to_string(),
            };
            format!("[{kind}] {}: {}", who("from", "nickname"), field("text"))
        }
        "delivered" => format!("delivered {} to {}", field("id"), who("to", "nickname")),
        "delivery_failed" => format!(
            "NOT delivered {} to {}: {}",
            field("id"),
            who("to", "nickname"),
            match e["reason"].as_str()? {
                "expired" => "no acknowledgement before it expired",
                "outbox_full" => "dropped from the full outbox for a newer message",
                "refused" => "refused for good (is the peer's identity trusted? see `meshnode ctl trust`)",
                _ => return None,
            }
        ),
        "peer_appeared" => format!("peer appeared: {}", peer()),
        "peer_gone" => format!("peer gone: {}", peer()),
        "neighbour_up" => format!("neighbour up on link {}: {}", field("link"), peer()),
        "neighbour_down" => format!("neighbour down on link {}: {}", field("link"), peer()),
        "channel_unreadable" => format!(
            "[#{}] a message from {} could not be opened: it was sealed with another password than the one this \
             node joined with",
            field("channel"),
            who("from", "nickname")
        ),
        "nickname_conflict" => format!(
            "nickname conflict: {} claims {:?}, already announced by {}",
            field("peer"),
            field("nickname"),
            who("holder", "holder_nickname")
        ),
        "session_established" => format!(
            "session established with {}, fingerprint {}",
            peer(),
            field("fingerprint")
        ),
        "session_rekeyed" => format!(
            "session with {} rekeyed: {} key now at epoch {}",
            peer(),
            field("direction"),
            field("epoch")
        ),
        "session_renewal_started" => format!("session with {}: renewal started", peer()),
        "session_renewed" => format!("session with {} renewed", peer()),
        "session_expired" => format!(
            "session with {} expired: {}",
            peer(),
            match e["reason"].as_str()? {
                "age" => "it reached its age limit",
                "messages" => "it reached its message limit",
                "idle" => "nothing was sent or received for too long",
                _ => return None,
            }
        ),
        "session_closed" => format!(
            "session with {} closed by {} ({})",
            peer(),
            match e["by"].as_str()? {
                "local" => "this node",
                "remote" => "the peer",
                _ => return None,
            },
            match e["reason"].as_str()? {
                "user" => "by request",
                "replaced" => "replaced by a newer session",
                "evicted" => "evicted from a full session table",
                "shutdown" => "shutting down",
                _ => return None,
            }
        ),
        "untrusted_identity" => format!(
            "REFUSED {}: pinned fingerprint {}, presented {}. {}",
            peer(),
            field("pinned"),
            field("presented"),
            field("hint")
        ),
        "decrypt_failed" => format!(
            "a sealed frame claiming to come from {} failed authentication and was dropped",
            peer()
        ),
        "handshake_failed" => format!(
            "handshake with {} failed: {}",
            peer(),
            match e["reason"].as_str()? {
                "noise" => "a Noise message was rejected",
                "rejected" => "a forged or corrupted handshake message was dropped",
                "node_id_mismatch" => "its keys do not own its node id",
                "untrusted" => "its keys differ from the pinned ones (see `meshnode ctl trust`)",
                "pin_store_full" => "the pin store is full",
                "timeout" => "no answer after every retry",
                "unexpected_message" => "an unexpected handshake message",
                _ => return None,
            }
        ),
        "lagged" => format!(
            "(missed {} events: this listener fell behind)",
            field("missed")
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh::identity::NodeId;

    fn parse(args: &[&str]) -> CtlArgs {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            ctl: CtlArgs,
        }
        Cli::try_parse_from(std::iter::once("ctl").chain(args.iter().copied()))
            .unwrap()
            .ctl
    }

    #[test]
    fn broadcast_on_a_channel_asks_for_it() {
        let args = parse(&["broadcast", "--channel", "general", "hello all"]);
        assert_eq!(
            build_request(&args.command).unwrap(),
            json!({"cmd": "broadcast", "text": "hello all", "channel": "general"})
        );
        let args = parse(&["broadcast", "hello"]);
        assert_eq!(
            build_request(&args.command).unwrap(),
            json!({"cmd": "broadcast", "text": "hello"})
        );
    }

    #[test]
    fn every_event_reads_as_one_line() {
        let nick = |id: NodeId| {
            if id.0[0] % 2 == 0 {
                "alice".to_string()
            } else {
                String::new()
            }
        };
        for event in crate::run::events::every_event() {
            let v = crate::run::events::event_json(&event, &nick);
            let line = describe_known(&v).unwrap_or_else(|| panic!("no human line for {v}"));
            assert!(
                !line.contains('\n') && !line.contains("\"event\""),
                "{line}"
            );
            if v["kind"] == "channel" {
                assert!(line.starts_with("[#general] "), "{line}");
                assert!(line.ends_with(": on general"), "{line}");
            }
        }
        let lagged = json!({"event": "lagged", "missed": 3});
        assert!(describe_known(&lagged).unwrap().contains("missed 3"));
        let future = json!({"event": "from_the_future", "x": 1});
        assert!(describe_known(&future).is_none());
        assert!(describe_event(&future).starts_with("from_the_future: "));
    }
}
