//! `meshnode bench` as a user runs it: the JSON contract of the report, and the figures that are byte counts
//! rather than timings (wire efficiency, memory), which are deterministic and so can be checked here. Rates are
//! only checked for presence: speed goals are reported by the benchmark, never asserted by a timed test.

use std::process::Command;

fn bench_json() -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_meshnode"))
        .args(["bench", "--json", "--seconds", "0.05"])
        .output()
        .expect("run meshnode bench");
    assert!(
        out.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("bench --json prints a JSON array")
}

#[test]
fn json_report_has_every_figure_with_every_key() {
    let figures = bench_json();
    let mut names = vec![
        "transport_244".to_string(),
        "transport_1024".to_string(),
        "handshake".to_string(),
        "session_bytes".to_string(),
        "reassembly_bytes".to_string(),
        "store_unlock".to_string(),
        "store_bytes_10k_sent".to_string(),
        "store_bytes_10k_received".to_string(),
        "store_write_amplification".to_string(),
        "dup_cache".to_string(),
        "sim_event_queue".to_string(),
    ];
    for size in [32, 244, 1024] {
        for mtu in [23, 185, 247, 517] {
            names.push(format!("wire_efficiency_{size}_mtu{mtu}"));
        }
    }
    for name in &names {
        let f = figures
            .iter()
            .find(|f| f["name"] == name.as_str())
            .unwrap_or_else(|| panic!("missing {name}"));
        for key in ["value", "reference_value", "ratio"] {
            let v = f[key]
                .as_f64()
                .unwrap_or_else(|| panic!("{name}.{key} is not a number"));
            assert!(v.is_finite() && v > 0.0, "{name}.{key} = {v}");
        }
        assert!(
            f["unit"].as_str().is_some_and(|u| !u.is_empty()),
            "{name}.unit"
        );
        assert!(
            f["reference"].as_str().is_some_and(|u| !u.is_empty()),
            "{name}.reference"
        );
    }
    assert_eq!(figures.len(), names.len(), "unexpected extra figures");
}

#[test]
fn wire_efficiency_meets_the_goal_and_matches_the_spec() {
    let figures = bench_json();
    let eff = |size: usize, mtu: usize| {
        figures
            .iter()
            .find(|f| f["name"] == format!("wire_efficiency_{size}_mtu{mtu}").as_str())
            .unwrap()["value"]
            .as_f64()
            .unwrap()
    };
    assert!(
        eff(1024, 247) >= 0.93,
        "wire_efficiency_1024_mtu247 = {}",
        eff(1024, 247)
    );
    // PROTOCOL.md §3.5 and §5.4: 48 bytes of frame overhead, 1 byte per packet and 1 more in a frame's first.
    for size in [32usize, 244, 1024] {
        for mtu in [23usize, 185, 247, 517] {
            let frame = size + 48;
            let per_packet = mtu - 3;
            let on_air = if frame < per_packet {
                frame + 1
            } else {
                let packets = (frame + 1).div_ceil(per_packet - 1);
                frame + packets + 1
            };
            let want = size as f64 / on_air as f64;
            assert!(
                (eff(size, mtu) - want).abs() < 1e-9,
                "size {size} mtu {mtu}: {} != {want}",
                eff(size, mtu)
            );
        }
    }
}

#[test]
fn bad_arguments_get_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_meshnode"))
        .args(["bench", "--seconds", "abc"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a number of seconds"), "{err}");
}
