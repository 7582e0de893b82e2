//! `meshnode run` and its store, as a user meets them: no passphrase source and no terminal is a clear error that
//! creates no identity; a data directory from before the store (only `identity.key`) is migrated with the same node
//! id; the passphrase from a file and from `MESHNODE_PASSPHRASE` unlock it; a wrong one, or none, is refused with
//! the identity unchanged; the mode without passphrase warns at start.
//!
//! Invariant: every child is killed when its handle drops, every directory is a tempdir, and every wait is a poll
//! loop with a deadline.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use mesh::identity::Identity;

mod run_util;

use run_util::{wait_for, Proc, BIN};

fn run_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(["run", "--radio", "sim", "--data-dir"])
        .arg(dir)
        .args(args)
        .env_remove("MESHNODE_PASSPHRASE")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    c
}

/// Starts a node and waits for its control socket; stderr is piped.
fn start(mut cmd: Command, dir: &Path) -> Proc {
    let mut proc = Proc(cmd.stderr(Stdio::piped()).spawn().unwrap());
    let sock = dir.join("control.sock");
    wait_for("the control socket", Duration::from_secs(20), || {
        if let Ok(Some(status)) = proc.0.try_wait() {
            let mut err = String::new();
            let _ = proc.0.stderr.take().unwrap().read_to_string(&mut err);
            panic!("meshnode run exited with {status}: {err}");
        }
        UnixStream::connect(&sock).ok().map(|_| ())
    });
    proc
}

/// Stops a node with SIGTERM and returns its stderr.
fn stop(mut proc: Proc) -> String {
    let pid = proc.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = wait_for("the node to exit", Duration::from_secs(10), || {
        proc.0.try_wait().unwrap()
    });
    assert!(status.success(), "{status:?}");
    let mut err = String::new();
    proc.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

/// A run expected to fail at start: its output.
fn run_fails(mut cmd: Command) -> String {
    let out: Output = cmd.stderr(Stdio::piped()).output().unwrap();
    assert!(!out.status.success(), "meshnode run should have failed");
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn node_id(dir: &Path) -> String {
    let out = Command::new(BIN)
        .args(["ctl", "--json", "--data-dir"])
        .arg(dir)
        .arg("fingerprint")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["id"].as_str().unwrap().to_string()
}

fn passphrase_file(tmp: &Path, name: &str, text: &str) -> PathBuf {
    let path = tmp.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[test]
fn without_a_passphrase_source_or_terminal_run_says_what_to_do_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let err = run_fails(run_cmd(&dir, &[]));
    for hint in [
        "--passphrase-file",
        "MESHNODE_PASSPHRASE",
        "--no-passphrase",
    ] {
        assert!(err.contains(hint), "missing {hint}: {err}");
    }
    assert!(!dir.join("db").exists(), "no identity may be created");
}

#[test]
fn an_old_key_file_is_migrated_and_the_passphrase_is_required_from_then_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // The data directory as meshnode left it before the store: 64 plaintext bytes, mode 0600.
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("identity.key");
    std::fs::write(&key_file, [0x21u8; 64]).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let want = Identity::from_secrets([0x21; 32], [0x21; 32])
        .node_id()
        .to_string();

    let good = passphrase_file(tmp.path(), "good", "a long passphrase\n");
    let good_arg = good.display().to_string();
    let node = start(run_cmd(&dir, &["--passphrase-file", &good_arg]), &dir);
    assert_eq!(node_id(&dir), want, "the migration keeps the node id");
    assert!(!key_file.exists(), "the plaintext key file is gone");
    let log = stop(node);
    assert!(!log.contains("NO PASSPHRASE"), "{log}");

    // A wrong passphrase, or none, is refused and changes nothing.
    let bad = passphrase_file(tmp.path(), "bad", "another passphrase\n");
    let err = run_fails(run_cmd(
        &dir,
        &["--passphrase-file", &bad.display().to_string()],
    ));
    assert!(err.contains("wrong passphrase"), "{err}");
    let err = run_fails(run_cmd(&dir, &["--no-passphrase"]));
    assert!(err.contains("sealed with a passphrase"), "{err}");

    // The environment variable works as well as the file (the text without the file's newline).
    let mut cmd = run_cmd(&dir, &[]);
    cmd.env("MESHNODE_PASSPHRASE", "a long passphrase");
    let node = start(cmd, &dir);
    assert_eq!(node_id(&dir), want, "same identity after the restart");
    stop(node);
}

#[test]
fn the_mode_without_passphrase_warns_at_every_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    for _ in 0..2 {
        let log = stop(start(run_cmd(&dir, &["--no-passphrase"]), &dir));
        assert!(log.contains("NO PASSPHRASE"), "{log}");
    }
    // Once made without a passphrase, the store says how to start it when the flag is forgotten.
    let err = run_fails(run_cmd(&dir, &[]));
    assert!(err.contains("--no-passphrase"), "{err}");
    let err = run_fails(run_cmd(&dir, &["--passphrase-file", "/dev/null"]));
    assert!(err.contains("empty"), "{err}");
    let some = passphrase_file(tmp.path(), "some", "some passphrase");
    let err = run_fails(run_cmd(
        &dir,
        &["--passphrase-file", &some.display().to_string()],
    ));
    assert!(err.contains("without a passphrase"), "{err}");
}
