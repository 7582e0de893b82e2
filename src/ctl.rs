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
    /// Peers with an established end-to-end session.
    Sessions,
    /// Send a private message to a peer (id prefix or nickname).
    Send {
        /// Id prefix or nickname.
        peer: String,
        /// The text.
        text: String,
    },
    /// Send a signed message to every node.
    Broadcast {
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
    /// Counters of the node, the link policy and the radio.
    Stats,
    /// Print incoming messages and events until interrupted.
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
        CtlCommand::Broadcast { text } => json!({"cmd": "broadcast", "text": text}),
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
                "{:<16}  {:<20}  {:>4}  {:<7}  {:>6}  FINGERPRINT",
                "ID", "NICKNAME", "HOPS", "SESSION", "HEARD"
            );
            for r in rows {
                println!(
                    "{:<16}  {:<20}  {:>4}  {:<7}  {:>5}s  {}",
                    s(&r["id"]),
                    s(&r["nickname"]),
                    s(&r["hops"]),
                    if r["session"] == json!(true) {
                        "yes"
                    } else {
                        "no"
                    },
                    s(&r["last_heard_s"]),
                    s(&r["fingerprint"])
                );
            }
        }
        CtlCommand::Stats => print_map("", result),
        _ => match result {
            Value::Object(map) => {
                for (k, v) in map {
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

fn describe_event(e: &Value) -> String {
    let who = |id: &Value, nick: &Value| {
        let n = s(nick);
        if n.is_empty() {
            s(id)
        } else {
            format!("{n} ({})", s(id))
        }
    };
    match e["event"].as_str().unwrap_or("") {
        "message" => {
            let kind = match e["kind"].as_str() {
                Some("channel") => format!("#{}", s(&e["channel"])),
                Some(k) => k.to_string(),
                None => String::new(),
            };
            format!(
                "[{kind}] {}: {}",
                who(&e["from"], &e["nickname"]),
                s(&e["text"])
            )
        }
        "delivered" => format!("delivered {} to {}", s(&e["id"]), s(&e["to"])),
        "delivery_failed" => format!(
            "NOT delivered {} to {} ({})",
            s(&e["id"]),
            s(&e["to"]),
            s(&e["reason"])
        ),
        "peer_appeared" => format!("peer appeared: {}", who(&e["peer"], &e["nickname"])),
        "peer_gone" => format!("peer gone: {}", s(&e["peer"])),
        "lagged" => format!(
            "(missed {} events: this listener fell behind)",
            s(&e["missed"])
        ),
        other => format!("{other}: {e}"),
    }
}
