//! `meshnode simulate --json` as a user runs it: one object per relay policy with the documented keys, ratios in
//! 0..1 and both policies on the same scenario. Small and in virtual time; speed is reported, never asserted.

use std::process::Command;

fn simulate(args: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_meshnode"))
        .arg("simulate")
        .args(args)
        .output()
        .expect("run meshnode simulate");
    assert!(
        out.status.success(),
        "simulate {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("simulate --json prints a JSON array")
}

#[test]
fn json_has_one_object_per_policy_with_every_key() {
    let args = [
        "--nodes",
        "12",
        "--topology",
        "grid",
        "--loss",
        "0.05",
        "--seed",
        "3",
        "--duration",
        "5",
        "--broadcasts",
        "3",
        "--unicasts",
        "6",
        "--json",
    ];
    let reports = simulate(&args);
    assert_eq!(reports.len(), 2, "seed 3: {reports:?}");
    let policies: Vec<&str> = reports
        .iter()
        .filter_map(|r| r["policy"].as_str())
        .collect();
    assert_eq!(policies, ["naive", "managed"]);
    for r in &reports {
        for key in [
            "policy",
            "nodes",
            "broadcast_delivery",
            "unicast_delivery",
            "transmissions",
            "latency_p50_ms",
            "latency_p99_ms",
            "wall_seconds",
            "handshakes",
            "rekeys",
            "renewals",
            "drops",
            "peak_memory_bytes",
        ] {
            assert!(r.get(key).is_some(), "seed 3: key {key} missing in {r}");
        }
        assert_eq!(r["nodes"], 12);
        for ratio in ["broadcast_delivery", "unicast_delivery"] {
            let v = r[ratio].as_f64().expect("number");
            assert!((0.0..=1.0).contains(&v), "seed 3: {ratio} = {v}");
        }
        // Rounded: ratios to 5 places, milliseconds and seconds to 3 (no 85.45899999999999).
        for (key, places) in [
            ("broadcast_delivery", 5),
            ("unicast_delivery", 5),
            ("latency_p50_ms", 3),
            ("latency_p90_ms", 3),
            ("latency_p99_ms", 3),
            ("transmissions_per_delivery", 3),
            ("wall_seconds", 3),
        ] {
            let text = r[key].to_string();
            let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
            assert!(decimals <= places, "seed 3: {key} = {text}");
        }
        assert_eq!(r["topology"], "grid");
        assert!(r["transmissions"].as_u64().expect("count") > 0);
        assert!(r["latency_p50_ms"].as_f64() <= r["latency_p99_ms"].as_f64());
    }
    // Same scenario: the same topology for both.
    assert_eq!(reports[0]["edges"], reports[1]["edges"]);
}

#[test]
fn simulate_is_deterministic_per_seed() {
    let args = [
        "--nodes",
        "8",
        "--topology",
        "line",
        "--loss",
        "0.1",
        "--seed",
        "9",
        "--duration",
        "3",
        "--broadcasts",
        "2",
        "--unicasts",
        "3",
        "--policy",
        "managed",
        "--json",
    ];
    let (a, b) = (simulate(&args), simulate(&args));
    for key in [
        "transmissions",
        "broadcast_delivery",
        "unicast_delivery",
        "latency_p99_ms",
    ] {
        assert_eq!(a[0][key], b[0][key], "seed 9: {key} differs between runs");
    }
}

#[test]
fn text_report_names_the_topology_as_typed_and_keeps_the_goals_to_their_scenario() {
    let out = Command::new(env!("CARGO_BIN_EXE_meshnode"))
        .args([
            "simulate",
            "--nodes",
            "10",
            "--topology",
            "random",
            "--loss",
            "0.05",
            "--seed",
            "4",
            "--duration",
            "3",
            "--broadcasts",
            "2",
            "--unicasts",
            "3",
        ])
        .output()
        .expect("run meshnode simulate");
    assert!(out.status.success());
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stdout.contains("10 nodes, random topology"), "{stdout}");
    assert!(stderr.contains("10 nodes, random topology"), "{stderr}");
    assert!(!stdout.contains("Random") && !stderr.contains("Random"));
    // The goals are defined for 100 nodes at 10 % loss: not printed for this scenario.
    assert!(!stdout.contains("goals"), "{stdout}");
}

#[test]
fn bad_loss_is_refused_with_a_reason() {
    let out = Command::new(env!("CARGO_BIN_EXE_meshnode"))
        .args(["simulate", "--loss", "1.5"])
        .output()
        .expect("run meshnode simulate");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loss"));
}
