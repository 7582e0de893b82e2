//! Helpers for the multi-process tests: child processes killed on drop, bounded polling waits, free loopback
//! ports, starting `meshnode run`, `meshnode ctl --json` calls and `ctl listen` streams.
//!
//! Invariant: every child is killed when its handle drops, and every wait is a poll loop with a deadline.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_meshnode");

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn free_ports(n: usize) -> Vec<u16> {
    let sockets: Vec<UdpSocket> = (0..n)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    sockets
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect()
}

pub fn start(dir: &Path, args: &[String]) -> Proc {
    start_in(None, dir, args)
}

/// `meshnode run` inside the network namespace `netns` (through `ip netns exec`, which execs the node in place, so
/// killing the child kills the node), or in this process's namespace.
pub fn start_in(netns: Option<&str>, dir: &Path, args: &[String]) -> Proc {
    start_with(netns, dir, args, "warn", Stdio::null())
}

/// `meshnode run` with its log filter `filter` and its stderr (the log) going to `stderr`.
pub fn start_with(
    netns: Option<&str>,
    dir: &Path,
    args: &[String],
    filter: &str,
    stderr: impl Into<Stdio>,
) -> Proc {
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, BIN]);
            c
        }
        None => Command::new(BIN),
    };
    let child = command
        .arg("run")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("RUST_LOG", filter)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let proc = Proc(child);
    let sock = dir.join("control.sock");
    wait_for("the control socket", Duration::from_secs(10), || {
        UnixStream::connect(&sock).ok().map(|_| ())
    });
    proc
}

/// How node `i` of the line protects its identity: node 2 with a passphrase file beside its data directory, the
/// others without a passphrase.
pub fn unlock_args(dir: &Path, i: usize) -> Vec<String> {
    if i == 2 {
        let file = dir.with_extension("passphrase");
        std::fs::write(&file, "line node two\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        vec!["--passphrase-file".into(), file.display().to_string()]
    } else {
        vec!["--no-passphrase".into()]
    }
}

pub fn udp_node(dir: &Path, ports: &[u16], i: usize) -> Proc {
    start(dir, &udp_args(dir, ports, i, &format!("n{i}")))
}

/// The flags of node `i` of a line on loopback (neighbours `i - 1` and `i + 1`), announcing `nickname`.
pub fn udp_args(dir: &Path, ports: &[u16], i: usize, nickname: &str) -> Vec<String> {
    let mut args: Vec<String> = unlock_args(dir, i);
    args.extend([
        "--radio".into(),
        "udp".into(),
        "--nickname".into(),
        nickname.into(),
        "--udp-bind".into(),
        format!("127.0.0.1:{}", ports[i]),
    ]);
    for j in [i.wrapping_sub(1), i + 1] {
        if let Some(p) = ports.get(j) {
            args.push("--udp-peer".into());
            args.push(format!("127.0.0.1:{p}"));
        }
    }
    args
}

/// Runs `meshnode ctl --json ...`; returns (success, stdout JSON or null, stderr).
pub fn ctl(dir: &Path, args: &[&str]) -> (bool, serde_json::Value, String) {
    let out = Command::new(BIN)
        .arg("ctl")
        .arg("--json")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let value = serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null);
    (
        out.status.success(),
        value,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Runs `meshnode ctl --json ...` with `input` on its stdin (how scripts give a channel password: never argv);
/// returns (success, stdout JSON or null, stderr).
pub fn ctl_with_stdin(dir: &Path, args: &[&str], input: &str) -> (bool, serde_json::Value, String) {
    let mut child = Command::new(BIN)
        .arg("ctl")
        .arg("--json")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let value = serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null);
    (
        out.status.success(),
        value,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

pub fn node_id(dir: &Path) -> String {
    let (ok, v, err) = ctl(dir, &["fingerprint"]);
    assert!(ok, "{err}");
    v["id"].as_str().unwrap().to_string()
}

pub fn knows(dir: &Path, id: &str) -> bool {
    let (ok, v, _) = ctl(dir, &["peers"]);
    ok && v
        .as_array()
        .is_some_and(|a| a.iter().any(|p| p["id"] == id))
}

/// The lines `r` yields, each mapped by `f` (lines it maps to `None` are skipped), on a channel fed by a thread that
/// ends with the stream or when the receiver is dropped.
pub fn forward_lines<T: Send + 'static>(
    r: impl std::io::Read + Send + 'static,
    f: impl Fn(String) -> Option<T> + Send + 'static,
) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { return };
            if let Some(v) = f(line) {
                if tx.send(v).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// `ctl listen --json` as a child whose lines arrive on a channel.
pub fn listen(dir: &Path) -> (Proc, mpsc::Receiver<serde_json::Value>) {
    let mut child = Command::new(BIN)
        .args(["ctl", "--json", "--data-dir"])
        .arg(dir)
        .arg("listen")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = forward_lines(child.stdout.take().unwrap(), |line| {
        serde_json::from_str::<serde_json::Value>(&line).ok()
    });
    // `ctl --json listen` prints {"event":"listening"} once the node has subscribed it: only then is no event
    // missed, so callers may start sending.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "ctl listen did not subscribe within 30 s");
        if let Ok(v) = rx.recv_timeout(left) {
            if v["event"] == "listening" {
                break;
            }
        }
    }
    (Proc(child), rx)
}

pub fn expect_message(rx: &mpsc::Receiver<serde_json::Value>, text: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no message {text:?} within {limit:?}");
        if let Ok(v) = rx.recv_timeout(left) {
            if v["event"] == "message" && v["text"] == text {
                return;
            }
        }
    }
}

/// Every event `rx` yields up to and including the first one `pred` accepts; fails after `limit`.
pub fn events_until(
    rx: &mpsc::Receiver<serde_json::Value>,
    what: &str,
    limit: Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no {what} within {limit:?}; events seen: {seen:?}"
        );
        if let Ok(v) = rx.recv_timeout(left) {
            let done = pred(&v);
            seen.push(v);
            if done {
                return seen;
            }
        }
    }
}

pub fn send_until_heard(
    from: &Path,
    to_id: &str,
    rx: &mpsc::Receiver<serde_json::Value>,
    text: &str,
) {
    let (ok, v, err) = ctl(from, &["send", &to_id[..6], text]);
    assert!(ok, "send failed: {err}");
    assert_eq!(v["to"], to_id);
    expect_message(rx, text, Duration::from_secs(20));
}

/// The node's count of sessions established since it started (`ctl stats`).
pub fn sessions_established(dir: &Path) -> u64 {
    let (ok, v, err) = ctl(dir, &["stats"]);
    assert!(ok, "{err}");
    v["node"]["sessions_established"].as_u64().unwrap()
}
