//! Test helpers for `hal::ble` against a fake BlueZ: python-dbusmock's `bluez5` template plus
//! `meshnode_gatt.py` on a private D-Bus bus that each test starts and kills itself (socket in its own temporary
//! directory).
//!
//! Invariant: every wait is bounded; tests hold `SERIAL` (the radio finds the bus through the process-wide
//! `DBUS_SYSTEM_BUS_ADDRESS`, which libdbus reads once per process, so every fake bus of one test binary listens on
//! the same socket path, one at a time); without `dbus-daemon` or python3-dbusmock the tests say loudly what they
//! skipped and return.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dbus::arg::{RefArg, Variant};
use dbus::blocking::Connection;
use hal::ble::{BleConfig, BleRadio};
use hal::{Radio, RadioEvent};

pub static SERIAL: Mutex<()> = Mutex::new(());
pub const PEER: &str = "C0:11:22:33:44:55";
pub const PEER_BYTES: [u8; 6] = [0xc0, 0x11, 0x22, 0x33, 0x44, 0x55];

pub fn uuid_str(u: u128) -> String {
    let h = format!("{u:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// One logged mock call: timestamp and arguments.
pub type MockCall = (u64, Vec<Variant<Box<dyn RefArg>>>);

/// Which of the tools the fake needs are missing, if any.
pub fn missing_tools() -> Option<String> {
    let daemon = Command::new("dbus-daemon")
        .arg("--version")
        .stdout(Stdio::null())
        .status();
    if !daemon.is_ok_and(|s| s.success()) {
        return Some("`dbus-daemon` not found (Debian package `dbus`)".into());
    }
    let mock = Command::new("/usr/bin/python3")
        .args(["-c", "import dbusmock"])
        .stderr(Stdio::null())
        .status();
    if !mock.is_ok_and(|s| s.success()) {
        return Some(
            "/usr/bin/python3 cannot import dbusmock (Debian package `python3-dbusmock`)".into(),
        );
    }
    None
}

pub fn skip(test: &str) -> bool {
    match missing_tools() {
        Some(why) => {
            eprintln!(
                "\n!!!!!!!! SKIPPED hal::ble fake-BlueZ test `{test}`: {why}. Install with \
                 `apt-get install -y dbus python3-dbusmock` to run it. !!!!!!!!\n"
            );
            true
        }
        None => false,
    }
}

/// A private bus, optionally with the fake BlueZ on it; killed and removed on drop.
pub struct Fake {
    dir: PathBuf,
    address: String,
    daemon_pid: Option<u32>,
    mock: Option<Child>,
    conn: Option<Connection>,
}

impl Fake {
    pub fn start(with_bluez: bool) -> Fake {
        // The same path for every fake of this process (libdbus keeps the first system bus address it read);
        // the previous fake removed its directory when it was dropped.
        let dir = std::env::temp_dir().join(format!("meshnode-ble-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let address = format!("unix:path={}", dir.join("bus").display());
        let out = Command::new("dbus-daemon")
            .args([
                "--session",
                &format!("--address={address}"),
                "--fork",
                "--print-pid=1",
            ])
            .output()
            .unwrap();
        let pid = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u32>()
            .ok();
        let mut fake = Fake {
            dir,
            address: address.clone(),
            daemon_pid: pid,
            mock: None,
            conn: None,
        };
        assert!(pid.is_some(), "dbus-daemon did not start: {out:?}");
        std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", &address);
        let mut ch = dbus::channel::Channel::open_private(&address).unwrap();
        ch.register().unwrap();
        let conn = Connection::from(ch);
        if with_bluez {
            let child = Command::new("/usr/bin/python3")
                .args(["-m", "dbusmock", "--system", "--template", "bluez5"])
                .env("DBUS_SYSTEM_BUS_ADDRESS", &address)
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            fake.mock = Some(child);
            let bus = conn.with_proxy(
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                Duration::from_secs(2),
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let (owned,): (bool,) = bus
                    .method_call("org.freedesktop.DBus", "NameHasOwner", ("org.bluez",))
                    .unwrap();
                if owned {
                    break;
                }
                assert!(Instant::now() < deadline, "the bluez5 mock did not start");
                std::thread::sleep(Duration::from_millis(50));
            }
            let template =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fake_bluez/meshnode_gatt.py");
            let root = conn.with_proxy("org.bluez", "/", Duration::from_secs(5));
            let no_params: HashMap<String, Variant<Box<dyn RefArg>>> = HashMap::new();
            let _: () = root
                .method_call(
                    "org.freedesktop.DBus.Mock",
                    "AddTemplate",
                    (template.to_string_lossy().to_string(), no_params),
                )
                .unwrap();
            let _: (String,) = root
                .method_call("org.bluez.Mock", "AddAdapter", ("hci0", "meshnode-test"))
                .unwrap();
            let _: () = root
                .method_call("org.bluez.Mock", "AddPeripheralManagers", ("hci0",))
                .unwrap();
        }
        fake.conn = Some(conn);
        fake
    }

    pub fn conn(&self) -> &Connection {
        self.conn.as_ref().unwrap()
    }

    pub fn mock<R: dbus::arg::ReadAll, A: dbus::arg::AppendAll>(&self, method: &str, args: A) -> R {
        self.conn()
            .with_proxy("org.bluez", "/", Duration::from_secs(5))
            .method_call("org.bluez.Mock", method, args)
            .unwrap()
    }

    /// Calls of `method` logged on the adapter object.
    pub fn adapter_calls(&self, method: &str) -> Vec<MockCall> {
        let (calls,): (Vec<MockCall>,) = self
            .conn()
            .with_proxy("org.bluez", "/org/bluez/hci0", Duration::from_secs(5))
            .method_call("org.freedesktop.DBus.Mock", "GetMethodCalls", (method,))
            .unwrap();
        calls
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.conn = None;
        if let Some(mut m) = self.mock.take() {
            let _ = m.kill();
            let _ = m.wait();
        }
        if let Some(pid) = self.daemon_pid {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = &self.address;
    }
}

pub fn config() -> BleConfig {
    BleConfig {
        scan_interval: Duration::from_millis(200),
        scan_window: Duration::from_millis(200),
        reconnect_backoff: Duration::from_millis(100),
        reconnect_attempts: 1,
        ..BleConfig::default()
    }
}

/// The next event matching `want` within `limit`, skipping others.
pub async fn next_event(
    radio: &mut BleRadio,
    limit: Duration,
    mut want: impl FnMut(&RadioEvent) -> bool,
) -> RadioEvent {
    let signal = radio.event_signal();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        while let Some(e) = radio.poll_event() {
            if want(&e) {
                return e;
            }
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(
            !left.is_zero(),
            "no matching event within {limit:?}; stats {:?}",
            radio.stats()
        );
        let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), signal.notified()).await;
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
