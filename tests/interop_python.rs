//! Interoperability with an independent implementation: `tests/interop/` holds a meshnode peer written in Python from
//! mesh/PROTOCOL.md alone (see its README.md). These tests run it against this build: `vectors.py` reproduces every
//! golden vector of PROTOCOL.md §8 from the text, and `peer.py` runs live scenarios against `meshnode run --radio udp`
//! (link, hello, hop acks, Noise XX both ways, messages, and with `--extended` broadcasts, channels, rekey, PEER_SYNC,
//! strict signatures, hop resends and CLOSE). So the specification, the Python peer and the node cannot drift apart
//! without one of them failing.
//!
//! Invariant: every script runs in its own process group under a hard deadline and the group is killed past it (the
//! peer's node process with it); each run's files live in a temporary directory removed on drop. The peer picks its
//! UDP ports at run time (port 0), so parallel runs never collide. Without a Python 3 that has the `cryptography`
//! package and an Argon2id (`tests/interop/deps.py` says which is missing), the tests are skipped with a loud
//! message, not failed; `scripts/test` installs the packages when it can and lists the tests as not run otherwise.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_meshnode");
/// The peer's own limit for a whole scenario (it fails with its report past it) ...
const SCENARIO_SECONDS: u64 = 60;
/// ... and the hard one: the script's process group is killed past it.
const HARD_LIMIT: Duration = Duration::from_secs(SCENARIO_SECONDS + 30);

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// The first of `$MESHNODE_PYTHON`, `python3` and `/usr/bin/python3` that has what the scripts need, or why none has.
fn python() -> Result<String, String> {
    let mut candidates: Vec<String> = std::env::var("MESHNODE_PYTHON").into_iter().collect();
    candidates.extend(["python3".to_string(), "/usr/bin/python3".to_string()]);
    let mut why = Vec::new();
    for py in candidates {
        match Command::new(&py)
            .arg(interop_dir().join("deps.py"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .output()
        {
            Ok(out) if out.status.success() => return Ok(py),
            Ok(out) => why.push(format!(
                "{py}: {}",
                String::from_utf8_lossy(&out.stdout).trim()
            )),
            Err(e) => why.push(format!("{py}: {e}")),
        }
    }
    Err(why.join("; "))
}

fn python_or_skip(test: &str) -> Option<String> {
    match python() {
        Ok(py) => Some(py),
        Err(why) => {
            eprintln!(
                "\n*** SKIPPED interop_python::{test}: no Python 3 with the cryptography package and an Argon2id \
                 ({why}); install python3-cryptography and python3-argon2 ***\n"
            );
            None
        }
    }
}

/// Runs `python script args..` in its own process group, killing the group past `HARD_LIMIT`; panics with the
/// script's whole output unless it exits 0.
fn run_script(py: &str, script: &str, args: &[&str]) {
    let work = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(py);
    cmd.arg(interop_dir().join(script))
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .env("TMPDIR", work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let what = format!("{script} {}", args.join(" "));
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
    let pid = child.id() as libc::pid_t;
    // Drain both pipes on threads so a chatty script never blocks on a full pipe.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > HARD_LIMIT {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The whole group: the script and anything it started (the node, `ctl listen`) that is still there.
    // SAFETY: kill(2) on a process group this test created; ESRCH when it is already gone is fine.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    if status.is_none() {
        let _ = child.wait();
    }
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    let elapsed = started.elapsed();
    match status {
        Some(s) if s.success() => eprintln!("{what}: passed in {elapsed:.1?}"),
        Some(s) => panic!(
            "{what} failed ({s}) after {elapsed:.1?}\n---- stdout ----\n{out}\n---- stderr ----\n{err}"
        ),
        None => panic!(
            "{what} killed: still running after {HARD_LIMIT:?}\n---- stdout ----\n{out}\n---- stderr ----\n{err}"
        ),
    }
}

fn peer(test: &str, extra: &[&str]) {
    let Some(py) = python_or_skip(test) else {
        return;
    };
    let timeout = SCENARIO_SECONDS.to_string();
    let mut args = vec!["--bin", BIN, "--timeout", &timeout];
    args.extend_from_slice(extra);
    run_script(&py, "peer.py", &args);
}

#[test]
fn python_reproduces_every_protocol_vector() {
    let Some(py) = python_or_skip("python_reproduces_every_protocol_vector") else {
        return;
    };
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("mesh/PROTOCOL.md");
    run_script(&py, "vectors.py", &[doc.to_str().unwrap()]);
}

/// We open the handshake; hop-by-hop acknowledgement on; ATT MTU 247.
#[test]
fn python_peer_handshakes_and_messages_with_hop_acks() {
    peer("python_peer_handshakes_and_messages_with_hop_acks", &[]);
}

/// Long messages, unpadded and rekeyed frames, UNKNOWN_SESSION, broadcasts and a channel both ways, PEER_SYNC,
/// announces strict Ed25519 must refuse, a hop resend, CLOSE.
#[test]
fn python_peer_extended_scenario() {
    peer("python_peer_extended_scenario", &["--extended"]);
}

/// The node opens the handshake, over the smallest ATT MTU (every frame in many packets).
#[test]
fn python_peer_node_initiates_at_mtu_23() {
    peer(
        "python_peer_node_initiates_at_mtu_23",
        &["--node-initiates", "--mtu", "23"],
    );
}
