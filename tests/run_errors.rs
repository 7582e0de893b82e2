//! `meshnode run` reports a fatal error on exactly one stderr line: a plain line before logging is set up, one log
//! line (text or JSON) after, and a plain line again when the log filter hides errors.

use std::net::UdpSocket;
use std::process::Command;

mod run_util;
use run_util::BIN;

/// Runs `meshnode run` with a fresh data directory and `args`; returns its stderr lines. It must fail.
fn run_failing(args: &[&str], config: Option<&str>) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(BIN);
    command
        .arg("run")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--no-passphrase", "--radio", "udp"])
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("MESHNODE_PASSPHRASE");
    if let Some(text) = config {
        let file = dir.path().join("meshnode.toml");
        std::fs::write(&file, text).unwrap();
        command.arg("--config").arg(file);
    }
    let out = command.output().unwrap();
    assert!(!out.status.success());
    String::from_utf8(out.stderr)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn mentioning<'a>(lines: &'a [String], needle: &str) -> Vec<&'a String> {
    lines.iter().filter(|l| l.contains(needle)).collect()
}

#[test]
fn a_configuration_error_is_one_plain_line() {
    let lines = run_failing(
        &[],
        Some("[runtime]\nlisten_buffer = 9223372036854775807\n"),
    );
    assert_eq!(
        lines,
        vec!["meshnode run: [runtime] listen_buffer must be at most 65536".to_string()]
    );
}

#[test]
fn a_start_error_after_logging_is_one_log_line() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let bind = taken.local_addr().unwrap().to_string();
    let lines = run_failing(&["--udp-bind", &bind], None);
    let hits = mentioning(&lines, "is in use");
    assert_eq!(hits.len(), 1, "{lines:#?}");
    assert!(hits[0].contains("ERROR"), "{lines:#?}");

    let lines = run_failing(&["--udp-bind", &bind, "--log-json"], None);
    for line in &lines {
        serde_json::from_str::<serde_json::Value>(line).expect("every stderr line is JSON");
    }
    let hits = mentioning(&lines, "is in use");
    assert_eq!(hits.len(), 1, "{lines:#?}");
    let v: serde_json::Value = serde_json::from_str(hits[0]).unwrap();
    assert_eq!(v["level"], "ERROR", "{v}");

    // A filter that hides errors still gets the one line, plainly.
    let lines = run_failing(&["--udp-bind", &bind, "--log-filter", "off"], None);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].starts_with("meshnode run: ") && lines[0].contains("is in use"));
    drop(taken);
}
