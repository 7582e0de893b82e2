//! `hal::ble` start-up without Bluetooth: no system bus, and a bus without BlueZ, fail fast with advice.
//!
//! Invariant: construction never hangs; the error is `Unavailable` and names `--radio udp` and the demo.
#![cfg(all(feature = "ble", target_os = "linux"))]

mod fake_bluez;

use std::time::{Duration, Instant};

use fake_bluez::*;
use hal::ble::BleRadio;
use hal::RadioErrorKind;

#[test]
fn without_a_bus_construction_fails_fast_with_advice() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = std::env::temp_dir().join(format!("meshnode-ble-nobus-{}", std::process::id()));
    std::env::set_var(
        "DBUS_SYSTEM_BUS_ADDRESS",
        format!("unix:path={}", dir.join("no-such-socket").display()),
    );
    let start = Instant::now();
    let err = rt()
        .block_on(BleRadio::new(config()))
        .expect_err("no bus, yet a radio");
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(err.kind(), RadioErrorKind::Unavailable, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("--radio udp") && msg.contains("demo"), "{msg}");
}

#[test]
fn a_bus_without_bluez_fails_fast_with_advice() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if skip("a_bus_without_bluez_fails_fast_with_advice") {
        return;
    }
    let _fake = Fake::start(false);
    let start = Instant::now();
    let err = rt()
        .block_on(BleRadio::new(config()))
        .expect_err("no BlueZ, yet a radio");
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(err.kind(), RadioErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("bluetoothd"), "{err}");
}
