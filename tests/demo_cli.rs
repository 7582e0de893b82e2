//! `meshnode demo --fast` as a user runs it (virtual time, no sleeping): it exits 0, shows each stage live and
//! ends with a summary in which every expected delivery happened.

use std::process::Command;

#[test]
fn fast_demo_succeeds_and_shows_every_stage() {
    let out = Command::new(env!("CARGO_BIN_EXE_meshnode"))
        .args(["demo", "--fast"])
        .output()
        .expect("run meshnode demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed (seed 7):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for stage in [
        "link up",
        "neighbour",
        "discovery",
        "handshake",
        "fragmented into",
        "DELIVERED",
        "broadcast",
        "(6/6)",
        "rekey",
        "renewed",
        "LINK DROP",
        "recovered",
        "summary",
        "RESULT: every expected delivery happened",
    ] {
        assert!(
            stdout.contains(stage),
            "demo output lacks {stage:?}:\n{stdout}"
        );
    }
    assert!(!stdout.contains("MISSING"), "{stdout}");
    // The message sent during the drop arrives after the link is back.
    assert!(stdout.contains("delivered 6/6"), "{stdout}");
}

#[test]
fn demo_rejects_a_bad_speed() {
    let out = Command::new(env!("CARGO_BIN_EXE_meshnode"))
        .args(["demo", "--speed", "0"])
        .output()
        .expect("run meshnode demo");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("speed"));
}
