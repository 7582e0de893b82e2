//! `meshnode ctl`: a client of a running node's control socket (`<data-dir>/control.sock`). Sends one JSON request
//! line, prints the answer as a table for people or as JSON with `--json`; `listen` prints events until interrupted.
//!
//! Invariant: channel passwords never appear on the command line: they are read from a no-echo prompt when stdin is a
//! terminal, else from the first line of stdin. Exit codes: 0 done, 1 the node answered with an error or the request
//! was invalid (with `--json` also `{"ok":false,"error":...}` on stdout), 2 the node is unreachable or the
//! connection was lost (`listen` included: the node stopped); a usage error is clap's 2. Output to a closed pipe
//! ends quietly with 0. Every string people read that came from other nodes or from the node (texts, nicknames,
//! error messages) has its control and bidirectional-formatting characters shown as escapes (`\n`, `\x1b`,
//! `\u{202e}`); `--json` output is exact.

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
    /// Peers known from their announces. STATE is the end-to-end session: none, handshaking, established or
    /// renewing. A `!` after a nickname: another node announces the same nickname, so name these peers by id.
    Peers,
    /// Peers with an end-to-end session or a handshake in progress (STATE handshaking, established, renewing; `!`
    /// as in `peers`).
    Sessions,
    /// Send a private message to a peer: a full 16-hex-digit id (always that node, even one not known yet: the
    /// message then waits until it appears), or a nickname or id prefix that matches exactly one peer.
    Send {
        /// Full id, nickname or id prefix.
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

/// `meshnode ctl`. Exit codes: 0 done (also when stdout is a pipe closed early, as by `| head`), 1 the node
/// answered with an error or the request was invalid, 2 the node is unreachable or the connection was lost.
pub fn main(args: &CtlArgs) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let code = match run(args, &mut out) {
        Ok(()) => 0,
        Err(failure) => report(failure, args.json, &mut out),
    };
    ExitCode::from(code)
}

/// Why `ctl` did not finish its work.
#[derive(Debug)]
enum Failure {
    /// The node answered with an error, or the request was invalid before it was sent (exit 1).
    Refused(String),
    /// The node could not be reached, or the connection was lost (exit 2).
    Unreachable(String),
    /// Writing the output failed; a closed pipe (EPIPE) ends quietly with exit 0.
    Output(std::io::Error),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Output(e)
    }
}

/// Tells the user about `failure` and returns the exit code. With `--json` a refusal is also
/// `{"ok":false,"error":...}` on stdout; nothing here panics when stdout or stderr is closed.
fn report(failure: Failure, json: bool, out: &mut dyn Write) -> u8 {
    match failure {
        Failure::Refused(msg) => {
            if json {
                let _ = writeln!(out, "{}", json!({"ok": false, "error": msg}));
                let _ = out.flush();
            }
            warn(&msg);
            1
        }
        Failure::Unreachable(msg) => {
            warn(&msg);
            2
        }
        Failure::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Failure::Output(e) => {
            warn(&format!("cannot write the output: {e}"));
            1
        }
    }
}

/// `meshnode ctl: <msg>` on stderr, with control characters escaped (messages may quote nicknames), ignoring a
/// closed stderr.
fn warn(msg: &str) {
    let _ = writeln!(std::io::stderr(), "meshnode ctl: {}", escape(msg));
}

fn run(args: &CtlArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let request = build_request(&args.command).map_err(Failure::Refused)?;
    let dir = args
        .data_dir
        .clone()
        .or_else(crate::run::config::default_data_dir)
        .ok_or_else(|| Failure::Refused("no data directory: pass --data-dir DIR".into()))?;
    let path = dir.join(SOCKET_FILE);
    let stream = UnixStream::connect(&path).map_err(|e| {
        Failure::Unreachable(format!(
            "cannot reach the node at {}: {e} (is `meshnode run --data-dir {}` running, and may this user open the socket?)",
            path.display(),
            dir.display()
        ))
    })?;
    let listen = matches!(args.command, CtlCommand::Listen);
    if !listen {
        // Joining derives an Argon2id key on the node: allow for a slow machine.
        let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    }
    let (answer, mut reader) = exchange(stream, &request)?;
    if answer["ok"] != json!(true) {
        let msg = answer["error"].as_str().unwrap_or("unknown error");
        return Err(Failure::Refused(msg.to_string()));
    }
    let result = &answer["result"];
    if listen {
        // The node subscribed this connection before answering: from here on no event is missed. Scripts read
        // this first line to know when it is safe to act.
        if args.json {
            writeln!(out, "{}", json!({"event": "listening"}))?;
            out.flush()?;
        } else {
            let _ = writeln!(
                std::io::stderr(),
                "listening for messages and events (Ctrl-C to stop)"
            );
        }
        loop {
            match read_json_line(&mut reader) {
                Ok(Some(event)) if args.json => writeln!(out, "{event}")?,
                Ok(Some(event)) => writeln!(out, "{}", describe_event(&event))?,
                Ok(None) => {
                    return Err(Failure::Unreachable(
                        "the node closed the connection (it stopped or restarted); no more events"
                            .into(),
                    ))
                }
                Err(e) => return Err(Failure::Unreachable(e)),
            }
            out.flush()?;
        }
    }
    if args.json {
        writeln!(out, "{result}")?;
    } else {
        print_human(out, &args.command, result)?;
    }
    out.flush()?;
    Ok(())
}

/// Sends `request` and reads the answer line. When sending fails the answer is read all the same: a node that
/// refuses the connection (every slot taken) has written why before closing, and that is what the user needs.
fn exchange(
    stream: UnixStream,
    request: &Value,
) -> Result<(Value, BufReader<UnixStream>), Failure> {
    let mut writer = stream
        .try_clone()
        .map_err(|e| Failure::Unreachable(format!("socket: {e}")))?;
    let sent = writer.write_all(format!("{request}\n").as_bytes());
    let mut reader = BufReader::new(stream);
    match (read_json_line(&mut reader), sent) {
        (Ok(Some(answer)), _) => Ok((answer, reader)),
        (_, Err(e)) => Err(Failure::Unreachable(format!(
            "cannot send the request: {e} (the node closed the connection)"
        ))),
        (Ok(None), Ok(())) => Err(Failure::Unreachable(
            "the node closed the connection without answering".into(),
        )),
        (Err(e), Ok(())) => Err(Failure::Unreachable(e)),
    }
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

/// Whether `c` must not reach a terminal as it is: control characters (C0, DEL, C1), the line and paragraph
/// separators, and the bidirectional formatting characters (which reorder what follows them on the line).
fn unsafe_for_terminal(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `text` safe to print on a terminal: every character [`unsafe_for_terminal`] shown as a visible escape (`\n`,
/// `\r`, `\t`, `\x1b`, `\u{202e}`), everything else as it is. Everything people read from other nodes (texts,
/// nicknames, channel names) and from the node goes through this; `--json` output is exact instead (JSON escapes).
fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(unsafe_for_terminal) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_for_terminal(c) && (c as u32) < 0x80 => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if unsafe_for_terminal(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// [`s`], escaped for a terminal.
fn cell(v: &Value) -> String {
    escape(&s(v)).into_owned()
}

/// Width of the NICKNAME column: the longest nickname a node announces is 32 bytes, so at most 32 characters.
const NICK_WIDTH: usize = 32;

fn print_human(out: &mut dyn Write, cmd: &CtlCommand, result: &Value) -> std::io::Result<()> {
    match cmd {
        CtlCommand::Peers | CtlCommand::Sessions => {
            let rows = result.as_array().cloned().unwrap_or_default();
            if rows.is_empty() {
                return writeln!(out, "(none)");
            }
            // The column after NICKNAME holds `!` when another node announces the same nickname.
            writeln!(
                out,
                "{:<16}  {:<NICK_WIDTH$}   {:>4}  {:<11}  {:>6}  FINGERPRINT",
                "ID", "NICKNAME", "HOPS", "STATE", "HEARD"
            )?;
            for r in rows {
                let conflict = if r["nickname_conflict"] == json!(true) {
                    '!'
                } else {
                    ' '
                };
                writeln!(
                    out,
                    "{:<16}  {:<NICK_WIDTH$} {conflict}  {:>4}  {:<11}  {:>5}s  {}",
                    cell(&r["id"]),
                    cell(&r["nickname"]),
                    cell(&r["hops"]),
                    cell(&r["state"]),
                    cell(&r["last_heard_s"]),
                    cell(&r["fingerprint"])
                )?;
            }
            Ok(())
        }
        CtlCommand::Stats => print_map(out, "", result),
        _ => match result {
            Value::Object(map) => {
                for (k, v) in map.iter().filter(|(_, v)| !v.is_null()) {
                    writeln!(out, "{:<12} {}", escape(k), cell(v))?;
                }
                Ok(())
            }
            other => writeln!(out, "{}", cell(other)),
        },
    }
}

fn print_map(out: &mut dyn Write, prefix: &str, v: &Value) -> std::io::Result<()> {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                print_map(out, &key, v)?;
            }
            Ok(())
        }
        other => writeln!(out, "{:<40} {}", escape(prefix), cell(other)),
    }
}

/// One readable line for an event object (the shapes are documented in `run::events`); an event this client does
/// not know is shown with its JSON. Escaped for a terminal: texts and nicknames come from other nodes.
fn describe_event(e: &Value) -> String {
    let line = describe_known(e).unwrap_or_else(|| format!("{}: {e}", s(&e["event"])));
    escape(&line).into_owned()
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
    fn control_and_bidi_characters_are_shown_escaped() {
        assert_eq!(escape("plain text, é ü 日本 👍"), "plain text, é ü 日本 👍");
        assert_eq!(escape("a\tb\r\nc\u{0}\u{7f}"), r"a\tb\r\nc\x00\x7f");
        assert_eq!(
            escape("\u{1b}[31mred\u{1b}]0;title\u{7}"),
            r"\x1b[31mred\x1b]0;title\x07"
        );
        assert_eq!(escape("\u{9b}31m"), r"\u{9b}31m");
        for c in ['\u{2028}', '\u{2029}', '\u{200e}', '\u{200f}', '\u{61c}']
            .into_iter()
            .chain('\u{202a}'..='\u{202e}')
            .chain('\u{2066}'..='\u{2069}')
        {
            let raw = format!("x{c}y");
            assert_eq!(escape(&raw), format!("x\\u{{{:x}}}y", c as u32));
        }
    }

    fn peer_row(nickname: &str, conflict: bool) -> Value {
        json!({"id": "0102030405060708", "nickname": nickname, "hops": 2, "session": true, "state": "established",
            "last_heard_s": 7, "fingerprint": "aaaa-bbbb-cccc-dddd-eeee", "nickname_conflict": conflict})
    }

    fn human(cmd: &CtlCommand, result: &Value) -> String {
        let mut out = Vec::new();
        print_human(&mut out, cmd, result).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_peers_table_fits_long_nicknames_and_marks_conflicts() {
        let long = "ü".repeat(16); // 32 bytes, 16 characters
        let rows = json!([
            peer_row(&"n".repeat(32), false),
            peer_row(&long, true),
            peer_row("evil\n\u{1b}[2J", false),
        ]);
        let table = human(&CtlCommand::Peers, &rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(
            lines[0].contains(" STATE ") && !lines[0].contains("SESSION"),
            "{table}"
        );
        // Every column after NICKNAME starts at the same character offset.
        let hops_col = lines[0].find("HOPS").unwrap();
        for l in &lines[1..] {
            let chars: Vec<char> = l.chars().collect();
            let rest: String = chars[hops_col..].iter().collect();
            assert!(
                rest.trim_start().starts_with("2  established"),
                "{l:?} in\n{table}"
            );
        }
        assert!(lines[1].contains(&"n".repeat(32)), "{table}");
        assert!(
            lines[2].contains(&format!("{long}{} !", " ".repeat(16))),
            "{table}"
        );
        assert!(
            !lines[1].contains('!') && !lines[3].contains('!'),
            "{table}"
        );
        assert!(lines[3].contains(r"evil\n\x1b[2J"), "{table}");
        assert!(!table.contains('\u{1b}'), "{table}");
    }

    #[test]
    fn answers_printed_for_people_escape_what_came_from_the_node() {
        let text = human(
            &CtlCommand::Status,
            &json!({"id": "0102030405060708", "nickname": "a\u{202e}b"}),
        );
        assert!(text.contains(r"a\u{202e}b"), "{text}");
        let text = human(
            &CtlCommand::Stats,
            &json!({"radio_kind": "x\ny", "node": {"n": 1}}),
        );
        assert!(text.contains(r"x\ny") && text.contains("node.n"), "{text}");
    }

    /// A writer whose reader went away, as stdout under `| head -1`.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn a_closed_pipe_ends_output_quietly_with_success() {
        let rows = json!([peer_row("a", false)]);
        for cmd in [CtlCommand::Peers, CtlCommand::Stats, CtlCommand::Status] {
            let e = print_human(&mut ClosedPipe, &cmd, &rows).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
            assert_eq!(report(Failure::from(e), false, &mut ClosedPipe), 0);
        }
        // An error answer still exits 1 when its JSON cannot be written.
        assert_eq!(
            report(Failure::Refused("no".into()), true, &mut ClosedPipe),
            1
        );
        assert_eq!(
            report(Failure::Unreachable("gone".into()), true, &mut ClosedPipe),
            2
        );
        let other = std::io::Error::other("disk full");
        assert_eq!(report(Failure::Output(other), false, &mut ClosedPipe), 1);
    }

    #[test]
    fn an_error_answer_is_json_on_stdout_with_json() {
        let mut out = Vec::new();
        assert_eq!(
            report(Failure::Refused("bad \"x\"".into()), true, &mut out),
            1
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, json!({"ok": false, "error": "bad \"x\""}));
        let mut out = Vec::new();
        assert_eq!(report(Failure::Refused("bad".into()), false, &mut out), 1);
        assert_eq!(
            report(Failure::Unreachable("gone".into()), true, &mut out),
            2
        );
        assert!(out.is_empty());
    }

    #[test]
    fn a_refused_connection_reports_the_nodes_reason_not_a_broken_pipe() {
        let (client, mut node) = UnixStream::pair().unwrap();
        node.write_all(b"{\"ok\":false,\"error\":\"too many control connections open\"}\n")
            .unwrap();
        drop(node);
        let (answer, _) = exchange(client, &json!({"cmd": "status"})).unwrap();
        assert_eq!(answer["error"], "too many control connections open");
        // Closed without a word: the connection was lost.
        let (client, node) = UnixStream::pair().unwrap();
        drop(node);
        let e = exchange(client, &json!({"cmd": "status"})).unwrap_err();
        assert!(matches!(e, Failure::Unreachable(_)), "{e:?}");
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
        let hostile = json!({"event": "message", "from": "0102030405060708", "nickname": "ev\u{1b}[2Jil\n",
            "kind": "private", "channel": null, "id": "0000000000000001", "text": "a\nb\r\u{1b}]0;x\u{7}\u{202e}c\u{2028}"});
        let line = describe_event(&hostile);
        assert_eq!(
            line,
            r"[private] ev\x1b[2Jil\n (0102030405060708): a\nb\r\x1b]0;x\x07\u{202e}c\u{2028}"
        );
        let lagged = json!({"event": "lagged", "missed": 3});
        assert!(describe_known(&lagged).unwrap().contains("missed 3"));
        let future = json!({"event": "from_the_future", "x": 1});
        assert!(describe_known(&future).is_none());
        assert!(describe_event(&future).starts_with("from_the_future: "));
    }
}
