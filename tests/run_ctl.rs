//! Multi-process tests of `meshnode ctl` as a script uses it: password channels end to end (`join` with the
//! password on stdin, `broadcast --channel`, what `ctl --json listen` and the human `ctl listen` show on members,
//! on a member with the wrong password and on a node that did not join), the error for an unjoined channel, joined
//! channels surviving `kill -9` (and a left one staying left), and the schema of `ctl --json stats`. Four UDP nodes
//! in a line on loopback, 0 - 1 - 2 - 3 (two for the restart test).
//!
//! Invariant: every child is killed when its handle drops, every directory is a tempdir, and every wait is a poll
//! loop with a deadline. Absence is checked against a later message that took the same path: once it arrived,
//! anything the earlier one caused has been shown.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod run_util;

use run_util::*;

const WAIT: Duration = Duration::from_secs(20);

fn join(dir: &std::path::Path, channel: &str, password: &str) {
    let (ok, v, err) = ctl_with_stdin(dir, &["join", channel], &format!("{password}\n"));
    assert!(ok, "join failed: {err}");
    assert_eq!(v["channel"], channel);
}

fn is_text(v: &serde_json::Value, text: &str) -> bool {
    v["event"] == "message" && v["text"] == text
}

/// `ctl listen` without `--json`: its stdout lines on a channel, once it said on stderr that it listens.
fn listen_human(dir: &std::path::Path) -> (Proc, mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .args(["ctl", "--data-dir"])
        .arg(dir)
        .arg("listen")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let stdout = child.stdout.take().unwrap();
    let proc = Proc(child);
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.contains("listening"), "{first}");
    (proc, forward_lines(stdout, Some))
}

#[test]
fn channel_members_read_broadcasts_and_nobody_else_does() {
    let t0 = Instant::now();
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let paths: Vec<PathBuf> = dirs.iter().map(|d| d.path().join("data")).collect();
    let ports = free_ports(4);
    let _nodes: Vec<Proc> = (0..4).map(|i| udp_node(&paths[i], &ports, i)).collect();
    let ids: Vec<String> = paths.iter().map(|p| node_id(p)).collect();
    wait_for("the ends of the line to know each other", WAIT, || {
        (knows(&paths[0], &ids[3]) && knows(&paths[0], &ids[2]) && knows(&paths[3], &ids[0]))
            .then_some(())
    });

    // Nodes 0 and 2 join with the password, node 3 with another one, node 1 (in the middle, relaying) not at all.
    join(&paths[0], "general", "correct horse");
    join(&paths[2], "general", "correct horse");
    join(&paths[3], "general", "battery staple");
    let listeners: Vec<_> = paths.iter().map(|p| listen(p)).collect();
    let (_human, human) = listen_human(&paths[0]);

    let (ok, v, err) = ctl(
        &paths[0],
        &["broadcast", "--channel", "general", "hello channel"],
    );
    assert!(ok, "{err}");
    assert_eq!(v["channel"], "general");
    assert_eq!(v["id"].as_str().map(str::len), Some(16), "{v}");

    // A member reads it, with the channel and the sender named.
    let seen = events_until(
        &listeners[2].1,
        "the channel message at node 2",
        WAIT,
        |v| is_text(v, "hello channel"),
    );
    let msg = seen.last().unwrap();
    assert_eq!(msg["kind"], "channel", "{msg}");
    assert_eq!(msg["channel"], "general", "{msg}");
    assert_eq!(msg["from"], ids[0], "{msg}");
    assert_eq!(msg["nickname"], "n0", "{msg}");
    // A member with another password learns that it cannot read it, and nothing of the text.
    let seen = events_until(&listeners[3].1, "channel_unreadable at node 3", WAIT, |v| {
        v["event"] == "channel_unreadable"
    });
    let unreadable = seen.last().unwrap();
    assert_eq!(unreadable["channel"], "general", "{unreadable}");
    assert_eq!(unreadable["from"], ids[0], "{unreadable}");
    assert!(
        !seen.iter().any(|v| is_text(v, "hello channel")),
        "{seen:?}"
    );

    // And back the other way, seen on the human listener as one line naming the channel.
    let (ok, _, err) = ctl(&paths[2], &["broadcast", "--channel", "general", "reply"]);
    assert!(ok, "{err}");
    events_until(&listeners[0].1, "the reply at node 0", WAIT, |v| {
        is_text(v, "reply") && v["channel"] == "general"
    });
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = human
            .recv_timeout(left)
            .expect("no human line for the reply");
        if line.contains("reply") {
            assert_eq!(line, format!("[#general] n2 ({}): reply", ids[2]));
            break;
        }
    }

    // Node 1 never joined: sending there is refused with what to do, and nothing goes on air.
    let (ok, _, err) = ctl(
        &paths[1],
        &["broadcast", "--channel", "general", "not joined"],
    );
    assert!(!ok, "an unjoined channel must be refused");
    assert!(
        err.contains("run `meshnode ctl join general` first") && err.contains("nothing was sent"),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["ctl", "--data-dir"])
        .arg(&paths[1])
        .args(["broadcast", "--channel", "general", "not joined"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");

    // A signed broadcast from node 1 after its refused attempt: its neighbours show it after anything the attempt
    // could have sent on the same links.
    let (ok, _, err) = ctl(&paths[1], &["broadcast", "after the refusal"]);
    assert!(ok, "{err}");
    for i in [0, 2] {
        let seen = events_until(&listeners[i].1, "node 1's broadcast", WAIT, |v| {
            is_text(v, "after the refusal")
        });
        assert!(!seen.iter().any(|v| is_text(v, "not joined")), "{seen:?}");
    }
    // A signed broadcast from node 0 after both channel messages: node 1 relayed them, but shows neither.
    let (ok, _, err) = ctl(&paths[0], &["broadcast", "last"]);
    assert!(ok, "{err}");
    let seen = events_until(&listeners[1].1, "node 0's broadcast at node 1", WAIT, |v| {
        is_text(v, "last")
    });
    assert!(
        !seen
            .iter()
            .any(|v| v["event"] == "message" && v["kind"] != "broadcast"),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|v| v["event"] == "channel_unreadable"),
        "{seen:?}"
    );
    eprintln!("channel test took {:?}", t0.elapsed());
}

#[test]
fn stats_are_an_object_of_numbers() {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let paths: Vec<PathBuf> = dirs.iter().map(|d| d.path().join("data")).collect();
    let ports = free_ports(2);
    let _nodes: Vec<Proc> = (0..2).map(|i| udp_node(&paths[i], &ports, i)).collect();
    let ids: Vec<String> = paths.iter().map(|p| node_id(p)).collect();
    wait_for("the nodes to know each other", WAIT, || {
        (knows(&paths[0], &ids[1]) && knows(&paths[1], &ids[0])).then_some(())
    });

    // Status names this node, nickname included; naming this node as a peer is refused.
    let (ok, v, err) = ctl(&paths[0], &["status"]);
    assert!(ok, "{err}");
    assert_eq!(
        (v["id"].as_str(), v["nickname"].as_str()),
        (Some(ids[0].as_str()), Some("n0"))
    );
    let (ok, _, err) = ctl(&paths[0], &["send", "n0", "to myself"]);
    assert!(!ok && err.contains("that is this node"), "{err}");

    let (ok, v, err) = ctl(&paths[0], &["stats"]);
    assert!(ok, "{err}");
    assert!(v.is_object(), "{v}");
    for group in [
        "node",
        "session_drops",
        "reassembly",
        "driver",
        "radio",
        "store",
    ] {
        let map = v[group]
            .as_object()
            .unwrap_or_else(|| panic!("{group}: {v}"));
        assert!(!map.is_empty(), "{group}");
        for (k, x) in map {
            assert!(x.is_u64(), "{group}.{k} is {x}");
        }
    }
    assert_eq!(v["radio_kind"], "udp");
    for k in ["events_published", "control_calls", "memory_bytes"] {
        assert!(v[k].is_u64(), "{k}: {v}");
    }
    // A few counters that must have moved once two nodes found each other.
    for (group, key) in [
        ("node", "packets_in"),
        ("node", "frames_in"),
        ("reassembly", "packets"),
        ("reassembly", "delivered"),
        ("radio", "datagrams_received"),
        ("radio", "packets_sent"),
        ("driver", "links_up"),
    ] {
        let n = v[group][key]
            .as_u64()
            .unwrap_or_else(|| panic!("{group}.{key} missing: {v}"));
        assert!(n > 0, "{group}.{key} = {n}");
    }
    assert!(v["node"]["sessions_established"].is_u64());
    assert!(v["session_drops"]["replay"].is_u64());

    // The human table reads the same values.
    let out = Command::new(BIN)
        .args(["ctl", "--data-dir"])
        .arg(&paths[0])
        .arg("stats")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    for row in ["node.packets_in", "radio.datagrams_received", "radio_kind"] {
        assert!(
            table.lines().any(|l| l.starts_with(row)),
            "{row} missing from\n{table}"
        );
    }
    assert!(!table.contains('{'), "{table}");
}

fn sim_node(dir: &std::path::Path) -> Proc {
    start(
        dir,
        &["--radio".into(), "sim".into(), "--no-passphrase".into()],
    )
}

/// `meshnode ctl ARGS` (no `--json` unless given) with `input` on stdin: (exit code, stdout, stderr).
fn ctl_raw(dir: &std::path::Path, args: &[&str], input: &str) -> (Option<i32>, String, String) {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(["ctl", "--data-dir"])
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn sigterm(node: &mut Proc) {
    let pid = node.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    wait_for("the node to exit", WAIT, || node.0.try_wait().unwrap());
}

/// A node that announces another node's id as its nickname gets nothing meant for that id: a full id always means
/// that id. Line: 0 (the real node) - 1 (the sender) - 2 (the impostor).
#[test]
fn a_nickname_equal_to_another_nodes_id_captures_nothing() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let paths: Vec<PathBuf> = dirs.iter().map(|d| d.path().join("data")).collect();
    let ports = free_ports(3);
    let _real = start(&paths[0], &udp_args(&paths[0], &ports, 0, "n0"));
    let real = node_id(&paths[0]);
    let _sender = start(&paths[1], &udp_args(&paths[1], &ports, 1, "n1"));
    let _impostor = start(&paths[2], &udp_args(&paths[2], &ports, 2, &real));
    let impostor = node_id(&paths[2]);
    wait_for("the sender to know both", WAIT, || {
        let (ok, v, _) = ctl(&paths[1], &["peers"]);
        let peers = v.as_array().cloned().unwrap_or_default();
        (ok && peers.iter().any(|p| p["id"] == real)
            && peers
                .iter()
                .any(|p| p["id"] == impostor && p["nickname"] == real))
        .then_some(())
    });
    let (_l0, rx0) = listen(&paths[0]);
    let (_l2, rx2) = listen(&paths[2]);

    let (ok, v, err) = ctl(&paths[1], &["send", &real, "for the real node"]);
    assert!(ok, "{err}");
    assert_eq!(v["to"], real, "{v}");
    assert_eq!(v["queued"], false, "{v}");
    expect_message(&rx0, "for the real node", WAIT);
    // The impostor shows a later message sent to it by id, and not the earlier one.
    let (ok, v, err) = ctl(&paths[1], &["send", &impostor, "for the impostor"]);
    assert!(ok, "{err}");
    assert_eq!(v["to"], impostor, "{v}");
    let seen = events_until(&rx2, "the impostor's own message", WAIT, |v| {
        is_text(v, "for the impostor")
    });
    assert!(
        !seen.iter().any(|v| is_text(v, "for the real node")),
        "{seen:?}"
    );

    // This node, an over-long id and an unknown full id (queued, and said so).
    let sender = node_id(&paths[1]);
    let (ok, _, err) = ctl(&paths[1], &["send", &sender, "x"]);
    assert!(!ok && err.contains("that is this node"), "{err}");
    let (ok, _, err) = ctl(&paths[1], &["send", &format!("{real}0"), "x"]);
    assert!(!ok && err.contains("node ids are 16 hex digits"), "{err}");
    let (ok, v, err) = ctl(&paths[1], &["send", "0123456789abcdef", "later"]);
    assert!(ok, "{err}");
    assert_eq!(v["queued"], true, "{v}");
    let (code, out, err) = ctl_raw(&paths[1], &["send", "0123456789abcdef", "later"], "");
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("will be delivered when the peer appears"),
        "{out}"
    );
}

/// `ctl listen` tells when the node goes away instead of ending as if all was well.
#[test]
fn listen_says_when_the_node_stops_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let mut node = sim_node(&path);
    let mut child = Proc(
        Command::new(BIN)
            .args(["ctl", "--data-dir"])
            .arg(&path)
            .arg("listen")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stderr = BufReader::new(child.0.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.contains("listening"), "{first}");
    sigterm(&mut node);
    let status = wait_for("ctl listen to exit", WAIT, || child.0.try_wait().unwrap());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert_eq!(status.code(), Some(2), "{rest}");
    assert!(rest.contains("closed the connection"), "{rest}");
}

/// The node's log at `info` names messages (sender, kind, id, length) but never holds their text.
#[test]
fn the_info_log_holds_no_message_text() {
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let paths: Vec<PathBuf> = dirs.iter().map(|d| d.path().join("data")).collect();
    let ports = free_ports(2);
    let _n0 = udp_node(&paths[0], &ports, 0);
    let log_path = dirs[1].path().join("node.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut n1 = start_with(
        None,
        &paths[1],
        &udp_args(&paths[1], &ports, 1, "n1"),
        "info",
        log,
    );
    let ids: Vec<String> = paths.iter().map(|p| node_id(p)).collect();
    wait_for("the nodes to know each other", WAIT, || {
        (knows(&paths[0], &ids[1]) && knows(&paths[1], &ids[0])).then_some(())
    });
    let (_l, rx) = listen(&paths[1]);
    send_until_heard(&paths[0], &ids[1], &rx, "private-marker-5e1f");
    let (ok, _, err) = ctl(&paths[0], &["broadcast", "broadcast-marker-9c2d"]);
    assert!(ok, "{err}");
    expect_message(&rx, "broadcast-marker-9c2d", WAIT);
    sigterm(&mut n1);
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        !log.contains("marker"),
        "message text in the info log:\n{log}"
    );
    let events: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"event\":\"message\""))
        .collect();
    assert_eq!(events.len(), 2, "{log}");
    assert!(
        events.iter().all(|l| l.contains("\"bytes\":")),
        "{events:?}"
    );
}

/// `ctl ... | head -1`: output to a pipe nobody reads ends quietly with exit 0.
#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let _node = sim_node(&path);
    for json in [false, true] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut args = vec!["ctl", "--data-dir", path.to_str().unwrap()];
        if json {
            args.push("--json");
        }
        args.push("stats");
        let out = Command::new(BIN)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "json {json}: {err}");
        assert!(err.is_empty(), "json {json}: {err}");
    }
}

/// Exit 0: done; 1: the node answered with an error or the request was invalid; 2: the node is unreachable.
/// With `--json` an error is `{"ok":false,"error":...}` on stdout; an unreachable node is reported on stderr.
#[test]
fn exit_codes_tell_an_error_from_an_unreachable_node() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    // No node yet.
    let (code, out, err) = ctl_raw(&path, &["--json", "status"], "");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        out.is_empty() && err.contains("cannot reach the node"),
        "{out} {err}"
    );
    // An empty password is refused before the node is asked.
    for json in [false, true] {
        let args: &[&str] = if json {
            &["--json", "join", "general"]
        } else {
            &["join", "general"]
        };
        let (code, out, err) = ctl_raw(&path, args, "\n");
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("empty password"), "{err}");
        if json {
            let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
            assert_eq!(v["ok"], false, "{out}");
            assert!(
                v["error"].as_str().unwrap().contains("empty password"),
                "{out}"
            );
        }
    }
    let _node = sim_node(&path);
    let (code, out, err) = ctl_raw(&path, &["--json", "send", "nobody", "x"], "");
    assert_eq!(code, Some(1), "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["ok"], false, "{out}");
    assert!(
        v["error"].as_str().unwrap().contains("no known peer"),
        "{out}"
    );
    let (code, out, err) = ctl_raw(&path, &["send", "nobody", "x"], "");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        out.is_empty() && err.contains("no known peer"),
        "{out} {err}"
    );
    let (code, _, err) = ctl_raw(&path, &["status", "--frobnicate"], "");
    assert_eq!(code, Some(2), "clap's usage error: {err}");
}

/// A node with every control slot taken says so to the next client, which shows that answer.
#[test]
fn a_refused_connection_shows_the_nodes_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let config = dir.path().join("node.toml");
    std::fs::write(&config, "[runtime]\nmax_control_clients = 1\n").unwrap();
    let _node = start(
        &path,
        &[
            "--radio".into(),
            "sim".into(),
            "--no-passphrase".into(),
            "--config".into(),
            config.display().to_string(),
        ],
    );
    // `start` connected once to see the socket: retry until this connection holds the one slot (it is answered).
    let _held = wait_for("the slot", WAIT, || {
        use std::io::Write;
        let mut s = std::os::unix::net::UnixStream::connect(path.join("control.sock")).ok()?;
        s.set_read_timeout(Some(WAIT)).unwrap();
        writeln!(s, r#"{{"cmd":"status"}}"#).ok()?;
        let mut line = String::new();
        BufReader::new(s.try_clone().unwrap())
            .read_line(&mut line)
            .ok()?;
        line.contains("\"ok\":true").then_some(s)
    });
    for _ in 0..5 {
        let (code, _, err) = ctl_raw(&path, &["status"], "");
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("too many control connections"), "{err}");
        assert!(!err.contains("Broken pipe"), "{err}");
    }
}

/// Kills a node with SIGKILL (no goodbye, no final flush) and waits until it is gone.
fn kill_hard(mut node: Proc) {
    node.0.kill().unwrap();
    node.0.wait().unwrap();
}

/// Broadcasts on `channel` from `from` until `rx` shows one of them (links come back up after a restart).
fn channel_until_heard(
    from: &std::path::Path,
    channel: &str,
    rx: &mpsc::Receiver<serde_json::Value>,
    text: &str,
) {
    let deadline = Instant::now() + WAIT;
    for attempt in 0.. {
        assert!(
            Instant::now() < deadline,
            "{text:?} never heard on #{channel}"
        );
        let t = format!("{text} {attempt}");
        let (ok, v, err) = ctl(from, &["broadcast", "--channel", channel, &t]);
        assert!(ok, "{err}");
        assert_eq!(v["channel"], channel);
        let until = Instant::now() + Duration::from_secs(2);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            if let Ok(v) = rx.recv_timeout(left) {
                if v["event"] == "message" && v["channel"] == channel {
                    let got = v["text"].as_str().unwrap_or_default();
                    if got.starts_with(text) {
                        return;
                    }
                }
            }
        }
    }
}

#[test]
fn joined_channels_survive_a_kill_and_a_left_one_stays_left() {
    let t0 = Instant::now();
    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let paths: Vec<PathBuf> = dirs.iter().map(|d| d.path().join("data")).collect();
    let ports = free_ports(2);
    let node0 = udp_node(&paths[0], &ports, 0);
    let mut node1 = udp_node(&paths[1], &ports, 1);
    let ids: Vec<String> = paths.iter().map(|p| node_id(p)).collect();
    wait_for("the nodes to know each other", WAIT, || {
        (knows(&paths[0], &ids[1]) && knows(&paths[1], &ids[0])).then_some(())
    });

    // Several joins at once on node 0 (they queue for the one key worker) and one on node 1.
    let joins: Vec<_> = ["general", "a", "b", "c", "d"]
        .into_iter()
        .map(|ch| {
            let dir = paths[0].clone();
            std::thread::spawn(move || join(&dir, ch, "correct horse"))
        })
        .collect();
    for j in joins {
        j.join().unwrap();
    }
    join(&paths[1], "general", "correct horse");

    // kill -9, restart: node 1 is still a member without joining again, both ways.
    kill_hard(node1);
    node1 = udp_node(&paths[1], &ports, 1);
    let (_l1, rx1) = listen(&paths[1]);
    let (_l0, rx0) = listen(&paths[0]);
    channel_until_heard(&paths[0], "general", &rx1, "to the restarted node");
    channel_until_heard(&paths[1], "general", &rx0, "from the restarted node");

    // Left, killed, restarted: not joined, and saying so.
    let (ok, v, err) = ctl(&paths[1], &["leave", "general"]);
    assert!(ok, "{err}");
    assert_eq!(v["channel"], "general");
    kill_hard(node1);
    let _node1 = udp_node(&paths[1], &ports, 1);
    let (ok, _, err) = ctl(&paths[1], &["broadcast", "--channel", "general", "gone"]);
    assert!(!ok, "a channel left before the restart must stay left");
    assert!(err.contains("has not joined channel"), "{err}");
    let (ok, _, err) = ctl(&paths[1], &["leave", "general"]);
    assert!(!ok && err.contains("not joined"), "{err}");
    drop(node0);
    eprintln!("channel persistence test took {:?}", t0.elapsed());
}
