//! `hal::ble` peripheral role (bluer) against the fake BlueZ, with the test playing bluetoothd: the advertisement
//! and GATT application are registered; GetManagedObjects, ReadValue, AcquireNotify and WriteValue on the
//! application's characteristic drive a link up, carry packets both ways and close it.
//!
//! Invariant: the test starts and kills its own bus, mock and radio (see `fake_bluez`); every wait is bounded.
#![cfg(all(feature = "ble", target_os = "linux"))]

mod fake_bluez;

use std::collections::HashMap;
use std::os::unix::io::FromRawFd;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use dbus::arg::{RefArg, Variant};
use fake_bluez::*;
use hal::ble::{BleRadio, MESHNODE_CHARACTERISTIC_UUID, MESHNODE_SERVICE_UUID};
use hal::{Advertisement, LinkDownReason, PeerAddress, Radio, RadioEvent, Role};

type Options = HashMap<&'static str, Variant<Box<dyn RefArg>>>;

fn options(mtu: u16) -> Options {
    options_for(PEER, mtu)
}

/// WriteValue / AcquireNotify options as bluetoothd sends them for the central at `address`.
fn options_for(address: &str, mtu: u16) -> Options {
    let dev =
        dbus::Path::new(format!("/org/bluez/hci0/dev_{}", address.replace(':', "_"))).unwrap();
    let mut o: Options = HashMap::new();
    o.insert("device", Variant(Box::new(dev)));
    o.insert("mtu", Variant(Box::new(mtu)));
    o.insert("link", Variant(Box::new("LE".to_string())));
    o.insert("type", Variant(Box::new("command".to_string())));
    o
}

#[test]
fn peripheral_registers_advertisement_and_gatt_application_and_serves_a_central() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if skip("peripheral_registers_advertisement_and_gatt_application_and_serves_a_central") {
        return;
    }
    let fake = Fake::start(true);
    rt().block_on(async {
        let mut radio = BleRadio::new(config()).await.unwrap();
        radio
            .start_advertising(&Advertisement::new(MESHNODE_SERVICE_UUID, &[0x42, 0x43]).unwrap())
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while fake.adapter_calls("RegisterAdvertisement").is_empty() {
            assert!(Instant::now() < deadline, "no advertisement registered");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let apps = fake.adapter_calls("RegisterApplication");
        assert_eq!(apps.len(), 1);
        let app_path = apps[0].1[0].0.as_str().unwrap().to_string();

        // Play bluetoothd: find the application's owner and read its objects.
        let conn = fake.conn();
        let bus = conn.with_proxy(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            Duration::from_secs(2),
        );
        let (names,): (Vec<String>,) = bus
            .method_call("org.freedesktop.DBus", "ListNames", ())
            .unwrap();
        type Objects = HashMap<
            dbus::Path<'static>,
            HashMap<String, HashMap<String, Variant<Box<dyn RefArg>>>>,
        >;
        let mut found = None;
        for name in names.iter().filter(|n| n.starts_with(':')) {
            let p = conn.with_proxy(name.as_str(), app_path.as_str(), Duration::from_secs(2));
            let r: Result<(Objects,), _> = p.method_call(
                "org.freedesktop.DBus.ObjectManager",
                "GetManagedObjects",
                (),
            );
            if let Ok((objects,)) = r {
                if !objects.is_empty() {
                    found = Some((name.clone(), objects));
                    break;
                }
            }
        }
        let (owner, objects) = found.expect("nobody serves the registered application");
        let char_path = objects
            .iter()
            .find(|(_, ifaces)| {
                ifaces
                    .get("org.bluez.GattCharacteristic1")
                    .is_some_and(|props| {
                        props
                            .get("UUID")
                            .and_then(|u| u.0.as_str().map(str::to_string))
                            == Some(uuid_str(MESHNODE_CHARACTERISTIC_UUID))
                    })
            })
            .map(|(p, _)| p.clone())
            .expect("no meshnode characteristic in the application");
        assert!(objects
            .values()
            .any(|i| i.get("org.bluez.GattService1").is_some_and(|p| {
                p.get("UUID").and_then(|u| u.0.as_str().map(str::to_string))
                    == Some(uuid_str(MESHNODE_SERVICE_UUID))
            })));
        let ch = conn.with_proxy(owner.as_str(), char_path, Duration::from_secs(5));
        let iface = "org.bluez.GattCharacteristic1";
        let (id,): (Vec<u8>,) = ch.method_call(iface, "ReadValue", (options(247),)).unwrap();
        assert_eq!(
            id,
            vec![0x42, 0x43],
            "a read returns the advertised node id"
        );
        let (fd, _mtu): (dbus::arg::OwnedFd, u16) = ch
            .method_call(iface, "AcquireNotify", (options(247),))
            .unwrap();
        // SAFETY: the fd was just received and is owned by nobody else.
        #[allow(unsafe_code)]
        let notify_socket = unsafe { UnixDatagram::from_raw_fd(fd.into_fd()) };
        notify_socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;

        let token = [7u8, 7, 7, 7];
        let hello = [&token[..], &[1, 0x50]].concat();
        let _: () = ch
            .method_call(iface, "WriteValue", (hello, options(247)))
            .unwrap();
        let ev = next_event(&mut radio, Duration::from_secs(5), |e| {
            matches!(e, RadioEvent::LinkUp { .. })
        })
        .await;
        let RadioEvent::LinkUp {
            link,
            peer,
            att_mtu,
            role,
        } = ev
        else {
            unreachable!()
        };
        assert_eq!(
            (peer, att_mtu, role),
            (PeerAddress(PEER_BYTES), 243, Role::Peripheral)
        );
        let _: () = ch
            .method_call(
                iface,
                "WriteValue",
                ([&token[..], b"data"].concat(), options(247)),
            )
            .unwrap();
        let ev = next_event(&mut radio, Duration::from_secs(5), |e| {
            matches!(e, RadioEvent::Packet { .. })
        })
        .await;
        assert_eq!(
            ev,
            RadioEvent::Packet {
                link,
                data: b"data".to_vec()
            }
        );

        radio.send(link, b"back").unwrap();
        let mut buf = [0u8; 512];
        let n = recv(&notify_socket, &mut buf)
            .await
            .expect("no notification on the AcquireNotify socket");
        assert_eq!(&buf[..n], [&token[..], b"back"].concat().as_slice());

        // A hello with a tiny MTU is refused with a close value.
        let _: () = ch
            .method_call(
                iface,
                "WriteValue",
                (
                    [&[1u8, 2, 3, 4][..], &[1]].concat(),
                    options_for("C0:99:99:99:99:99", 23),
                ),
            )
            .unwrap();
        let n = recv(&notify_socket, &mut buf)
            .await
            .expect("no close for the refused hello");
        assert_eq!(&buf[..n], &[1, 2, 3, 4]);

        radio.disconnect(link).unwrap();
        let ev = next_event(&mut radio, Duration::from_secs(5), |e| {
            matches!(e, RadioEvent::LinkDown { .. })
        })
        .await;
        assert_eq!(
            ev,
            RadioEvent::LinkDown {
                link,
                reason: LinkDownReason::LocalDisconnect
            }
        );
        let n = recv(&notify_socket, &mut buf)
            .await
            .expect("no close value after disconnect");
        assert_eq!(&buf[..n], &token);
        radio.stop_advertising().unwrap();
        drop(radio);
    });
}

/// One datagram from the notify socket, waiting at most 5 s.
async fn recv(socket: &UnixDatagram, buf: &mut [u8]) -> std::io::Result<usize> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match socket.recv(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            r => return r,
        }
    }
}
