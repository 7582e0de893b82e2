//! `hal::ble` central role (btleplug) against the fake BlueZ: discovery, connect, MTU, hello, write without
//! response, notifications, a dropped peer with background reconnect, local disconnect; and, with the fake
//! offering `AcquireWrite`, the socket the central writes through: every value arrives there in order, the socket's
//! MTU bounds the link's, and BlueZ closing the socket takes the link down and reconnects.
//!
//! Invariant: each test starts and kills its own bus, mock and radio (one at a time, see `fake_bluez`); every wait
//! is bounded.
#![cfg(all(feature = "ble", target_os = "linux"))]

mod fake_bluez;

use std::os::unix::io::FromRawFd;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use fake_bluez::*;
use hal::ble::{BleRadio, MESHNODE_CHARACTERISTIC_UUID, MESHNODE_SERVICE_UUID};
use hal::{
    Advertisement, LinkDownReason, LinkId, PeerAddress, Radio, RadioErrorKind, RadioEvent, Role,
};

#[test]
fn central_discovers_connects_learns_mtu_writes_hears_and_sees_the_drop() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if skip("central_discovers_connects_learns_mtu_writes_hears_and_sees_the_drop") {
        return;
    }
    let fake = Fake::start(true);
    let svc = uuid_str(MESHNODE_SERVICE_UUID);
    let chr = uuid_str(MESHNODE_CHARACTERISTIC_UUID);
    rt().block_on(async {
        let mut radio = BleRadio::new(config()).await.unwrap();
        radio
            .start_advertising(&Advertisement::new(MESHNODE_SERVICE_UUID, &[0x01]).unwrap())
            .unwrap();
        radio.start_scanning().unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _: (String,) = fake.mock(
            "AddMeshnodePeer",
            ("hci0", PEER, svc, chr, 247u16, vec![0xabu8]),
        );
        let ev = next_event(&mut radio, Duration::from_secs(5), |e| {
            matches!(e, RadioEvent::Discovered { .. })
        })
        .await;
        let RadioEvent::Discovered {
            peer,
            advertisement,
            ..
        } = ev
        else {
            unreachable!()
        };
        assert_eq!(peer, PeerAddress(PEER_BYTES));
        assert_eq!(advertisement.data(), &[0xab]);
        assert_eq!(advertisement.service_uuid(), MESHNODE_SERVICE_UUID);

        let link = radio.connect(peer).unwrap();
        let ev = next_event(&mut radio, Duration::from_secs(10), |e| {
            matches!(e, RadioEvent::LinkUp { .. } | RadioEvent::LinkDown { .. })
        })
        .await;
        assert_eq!(
            ev,
            RadioEvent::LinkUp {
                link,
                peer,
                att_mtu: 243,
                role: Role::Central
            },
            "negotiated 247 minus the 4-byte link token"
        );
        // The hello: token, version 1, our node id.
        let (writes,): (Vec<Vec<u8>>,) = fake.mock("MeshnodeWrites", (PEER,));
        assert_eq!(writes.len(), 1, "{writes:?}");
        assert_eq!(&writes[0][4..], &[1, 0x01]);
        let token = writes[0][..4].to_vec();
        // A write without response (the mock has no AcquireWrite, so it goes through WriteValue).
        radio.send(link, b"ping").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (writes,): (Vec<Vec<u8>>,) = fake.mock("MeshnodeWrites", (PEER,));
            if writes.len() == 2 {
                assert_eq!(writes[1], [&token[..], b"ping"].concat());
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the packet was not written: {writes:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(radio.stats().write_fallbacks >= 1);
        let too_long = vec![0u8; 241];
        assert_eq!(
            radio.send(link, &too_long).unwrap_err().kind(),
            RadioErrorKind::PacketTooLong
        );
        // A notification for another central is ignored; ours becomes a packet.
        let _: () = fake.mock(
            "NotifyMeshnode",
            ("hci0", PEER, [&[9u8, 9, 9, 9][..], b"x"].concat()),
        );
        let _: () = fake.mock(
            "NotifyMeshnode",
            ("hci0", PEER, [&token[..], b"pong"].concat()),
        );
        let ev = next_event(&mut radio, Duration::from_secs(5), |e| {
            matches!(e, RadioEvent::Packet { .. })
        })
        .await;
        assert_eq!(
            ev,
            RadioEvent::Packet {
                link,
                data: b"pong".to_vec()
            }
        );
        assert_eq!(radio.stats().foreign_notifications, 1);
        // The peer drops: LinkDown, then a background reconnect brings a fresh link up.
        let _: () = fake.mock("DropMeshnodePeer", ("hci0", PEER));
        let ev = next_event(&mut radio, Duration::from_secs(5), |e| {
            matches!(e, RadioEvent::LinkDown { .. })
        })
        .await;
        assert_eq!(
            ev,
            RadioEvent::LinkDown {
                link,
                reason: LinkDownReason::Timeout
            }
        );
        let ev = next_event(&mut radio, Duration::from_secs(10), |e| {
            matches!(e, RadioEvent::LinkUp { .. })
        })
        .await;
        let RadioEvent::LinkUp {
            link: again, role, ..
        } = ev
        else {
            unreachable!()
        };
        assert_ne!(again, link);
        assert_eq!(role, Role::Central);
        // A local disconnect ends it with a close value and one LinkDown.
        radio.disconnect(again).unwrap();
        let ev = next_event(&mut radio, Duration::from_secs(5), |e| {
            matches!(e, RadioEvent::LinkDown { .. })
        })
        .await;
        assert_eq!(
            ev,
            RadioEvent::LinkDown {
                link: again,
                reason: LinkDownReason::LocalDisconnect
            }
        );
        assert_eq!(
            radio.send(again, b"late").unwrap_err().kind(),
            RadioErrorKind::NoSuchLink
        );
    });
}

/// Starts a radio (advertising id 0x01, scanning), adds the meshnode peer at `address` with characteristic MTU
/// `mtu` and, given `acquire_mtu`, `AcquireWrite` reporting that MTU; connects to it and returns the link and the
/// MTU its `LinkUp` reported.
async fn link_to_peer(
    fake: &Fake,
    radio: &mut BleRadio,
    address: &str,
    mtu: u16,
    acquire_mtu: Option<u16>,
) -> (LinkId, u16) {
    let (svc, chr) = (
        uuid_str(MESHNODE_SERVICE_UUID),
        uuid_str(MESHNODE_CHARACTERISTIC_UUID),
    );
    let _: (String,) = fake.mock(
        "AddMeshnodePeer",
        ("hci0", address, svc, chr, mtu, vec![0xabu8]),
    );
    if let Some(m) = acquire_mtu {
        let _: () = fake.mock("OfferAcquireWrite", ("hci0", address, m));
    }
    let mut bytes = [0u8; 6];
    for (b, h) in bytes.iter_mut().zip(address.split(':')) {
        *b = u8::from_str_radix(h, 16).unwrap();
    }
    let want = PeerAddress(bytes);
    next_event(
        radio,
        Duration::from_secs(5),
        |e| matches!(e, RadioEvent::Discovered { peer, .. } if *peer == want),
    )
    .await;
    let link = radio.connect(want).unwrap();
    let ev = next_event(radio, Duration::from_secs(10), |e| {
        matches!(e, RadioEvent::LinkUp { link: l, .. } | RadioEvent::LinkDown { link: l, .. } if *l == link)
    })
    .await;
    let RadioEvent::LinkUp { att_mtu, role, .. } = ev else {
        panic!(
            "the link did not come up: {ev:?}; stats {:?}",
            radio.stats()
        );
    };
    assert_eq!(role, Role::Central);
    (link, att_mtu)
}

async fn started_radio() -> BleRadio {
    let mut radio = BleRadio::new(config()).await.unwrap();
    radio
        .start_advertising(&Advertisement::new(MESHNODE_SERVICE_UUID, &[0x01]).unwrap())
        .unwrap();
    radio.start_scanning().unwrap();
    radio
}

/// The peer's end of the `AcquireWrite` socket the central holds for `address` (reads wait at most 5 s).
fn take_write_socket(fake: &Fake, address: &str) -> UnixDatagram {
    let (fd,): (dbus::arg::OwnedFd,) = fake.mock("TakeMeshnodeWriteSocket", (address,));
    let socket = unsafe { UnixDatagram::from_raw_fd(fd.into_fd()) };
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket
}

/// The next value the central wrote on the socket (one SOCK_SEQPACKET message).
fn next_value(socket: &UnixDatagram) -> Vec<u8> {
    let mut buf = vec![0u8; 1024];
    let n = socket
        .recv(&mut buf)
        .expect("nothing arrived on the AcquireWrite socket within 5 s");
    buf.truncate(n);
    buf
}

/// Sends `packet`, waiting for `Writable` (at most 5 s) while the link's queue is full.
async fn send_when_room(radio: &mut BleRadio, link: LinkId, packet: &[u8]) {
    loop {
        match radio.send(link, packet) {
            Ok(()) => return,
            Err(e) if e.kind() == RadioErrorKind::QueueFull => {
                next_event(
                    radio,
                    Duration::from_secs(5),
                    |e| matches!(e, RadioEvent::Writable { link: l } if *l == link),
                )
                .await;
            }
            Err(e) => panic!("send failed: {e}"),
        }
    }
}

/// What the central wrote to `address` through D-Bus `WriteValue`.
fn dbus_writes(fake: &Fake, address: &str) -> Vec<Vec<u8>> {
    let (writes,): (Vec<Vec<u8>>,) = fake.mock("MeshnodeWrites", (address,));
    writes
}

#[test]
fn central_writes_every_value_through_the_acquire_write_socket_in_order() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if skip("central_writes_every_value_through_the_acquire_write_socket_in_order") {
        return;
    }
    let fake = Fake::start(true);
    rt().block_on(async {
        let mut radio = started_radio().await;
        let (link, att_mtu) = link_to_peer(&fake, &mut radio, PEER, 247, Some(247)).await;
        // bluer keeps 5 bytes of BlueZ's 247 in reserve: 242-byte values, so token + 238-byte packets.
        assert_eq!(att_mtu, 241);
        let socket = take_write_socket(&fake, PEER);
        let hello = next_value(&socket);
        assert_eq!(
            &hello[4..],
            &[1, 0x01],
            "the hello: token, version 1, our id"
        );
        let token = hello[..4].to_vec();
        // 200 packets of every length from 1 to the largest, each telling its number: more than the link's queue
        // holds, so the writer runs while the runtime keeps sending.
        let packets: Vec<Vec<u8>> = (0..200u32)
            .map(|i| {
                let len = 1 + (i as usize * 37) % 238;
                let mut p = i.to_be_bytes().repeat(len.div_ceil(4));
                p.truncate(len);
                p
            })
            .chain([vec![0xee; 238]])
            .collect();
        for p in &packets {
            send_when_room(&mut radio, link, p).await;
        }
        for (i, p) in packets.iter().enumerate() {
            let v = next_value(&socket);
            assert_eq!(v, [&token[..], p].concat(), "value {i} on the socket");
        }
        assert_eq!(
            radio.send(link, &[0u8; 239]).unwrap_err().kind(),
            RadioErrorKind::PacketTooLong
        );
        assert_eq!(dbus_writes(&fake, PEER), Vec::<Vec<u8>>::new());
        let stats = radio.stats();
        assert_eq!(stats.write_fallbacks, 0, "{stats:?}");
        assert_eq!(stats.io_failures, 0, "{stats:?}");
        // A local disconnect's close value goes the same way.
        radio.disconnect(link).unwrap();
        assert_eq!(next_value(&socket), token);
    });
}

#[test]
fn central_link_mtu_is_bounded_by_the_acquire_write_mtu() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if skip("central_link_mtu_is_bounded_by_the_acquire_write_mtu") {
        return;
    }
    let fake = Fake::start(true);
    rt().block_on(async {
        let mut radio = started_radio().await;
        // The connection negotiated 247 but the socket takes 95-byte values (100 less bluer's 5): the link
        // reports 94, so packets of up to 91 bytes (+ 4 of token = 95) and no larger.
        let (link, att_mtu) = link_to_peer(&fake, &mut radio, PEER, 247, Some(100)).await;
        assert_eq!(att_mtu, 94);
        let socket = take_write_socket(&fake, PEER);
        let token = next_value(&socket)[..4].to_vec();
        assert_eq!(
            radio.send(link, &[7u8; 92]).unwrap_err().kind(),
            RadioErrorKind::PacketTooLong
        );
        radio.send(link, &[7u8; 91]).unwrap();
        assert_eq!(next_value(&socket), [&token[..], &[7u8; 91]].concat());
        assert_eq!(dbus_writes(&fake, PEER), Vec::<Vec<u8>>::new());
        assert_eq!(radio.stats().write_fallbacks, 0);

        // A socket too small for meshnode's minimum MTU (27 less 5 = 22 bytes, a 21 MTU) is not used: the link
        // keeps the connection's MTU and writes through D-Bus, each write counted.
        const OTHER: &str = "C0:11:22:33:44:66";
        let (link, att_mtu) = link_to_peer(&fake, &mut radio, OTHER, 247, Some(27)).await;
        assert_eq!(att_mtu, 243);
        radio.send(link, &[8u8; 240]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let writes = loop {
            let w = dbus_writes(&fake, OTHER);
            if w.len() == 2 || Instant::now() >= deadline {
                break w;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(
            writes.len(),
            2,
            "hello and packet through WriteValue: {writes:?}"
        );
        assert_eq!(&writes[1][4..], &[8u8; 240]);
        assert_eq!(radio.stats().write_fallbacks, 2);
    });
}

#[test]
fn central_notices_bluez_closing_the_write_socket_and_reconnects() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if skip("central_notices_bluez_closing_the_write_socket_and_reconnects") {
        return;
    }
    let fake = Fake::start(true);
    rt().block_on(async {
        let mut radio = started_radio().await;
        let (link, _) = link_to_peer(&fake, &mut radio, PEER, 247, Some(247)).await;
        let socket = take_write_socket(&fake, PEER);
        let token = next_value(&socket)[..4].to_vec();
        radio.send(link, b"before").unwrap();
        assert_eq!(next_value(&socket), [&token[..], b"before"].concat());
        // BlueZ's end goes away (as when the connection drops) while the link is idle: the link goes down
        // without waiting for a packet to fail, and the background reconnect brings up a fresh one.
        drop(socket);
        let ev = next_event(&mut radio, Duration::from_secs(5), |e| {
            matches!(e, RadioEvent::LinkDown { .. })
        })
        .await;
        assert_eq!(
            ev,
            RadioEvent::LinkDown {
                link,
                reason: LinkDownReason::Timeout
            }
        );
        assert_eq!(
            radio.send(link, b"late").unwrap_err().kind(),
            RadioErrorKind::NoSuchLink
        );
        let ev = next_event(&mut radio, Duration::from_secs(10), |e| {
            matches!(e, RadioEvent::LinkUp { .. })
        })
        .await;
        let RadioEvent::LinkUp { link: again, .. } = ev else {
            unreachable!()
        };
        assert_ne!(again, link);
        // The new link acquired a new socket, said hello with a new token and writes there.
        let socket = take_write_socket(&fake, PEER);
        let hello = next_value(&socket);
        assert_eq!(&hello[4..], &[1, 0x01]);
        assert_ne!(hello[..4], token[..]);
        radio.send(again, b"after").unwrap();
        assert_eq!(next_value(&socket), [&hello[..4], b"after"].concat());
        let stats = radio.stats();
        assert_eq!(stats.write_fallbacks, 0, "{stats:?}");
        assert_eq!(
            stats.io_failures, 0,
            "noticed by the hang-up, not a failed write: {stats:?}"
        );
        assert_eq!(stats.reconnect_attempts, 1, "{stats:?}");
        assert_eq!(dbus_writes(&fake, PEER), Vec::<Vec<u8>>::new());

        // A real drop: BlueZ closes the socket and reports the disconnection. Whichever the radio notices first
        // ends the link; there is one LinkDown and one reconnect.
        drop(socket);
        let _: () = fake.mock("DropMeshnodePeer", ("hci0", PEER));
        let mut downs = Vec::new();
        let third = loop {
            match next_event(&mut radio, Duration::from_secs(10), |e| {
                matches!(e, RadioEvent::LinkUp { .. } | RadioEvent::LinkDown { .. })
            })
            .await
            {
                RadioEvent::LinkUp { link, .. } => break link,
                down => downs.push(down),
            }
        };
        assert_eq!(
            downs,
            [RadioEvent::LinkDown {
                link: again,
                reason: LinkDownReason::Timeout
            }]
        );
        assert_ne!(third, again);
        let socket = take_write_socket(&fake, PEER);
        let hello = next_value(&socket);
        radio.send(third, b"third").unwrap();
        assert_eq!(next_value(&socket), [&hello[..4], b"third"].concat());
        // Nothing more comes about the old links.
        while let Some(e) = radio.poll_event() {
            assert!(!matches!(e, RadioEvent::LinkDown { .. }), "{e:?}");
        }
        let stats = radio.stats();
        assert_eq!(stats.reconnect_attempts, 2, "{stats:?}");
        assert_eq!(stats.write_fallbacks, 0, "{stats:?}");
    });
}
