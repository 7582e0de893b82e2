//! `hal::ble` central role (btleplug) against the fake BlueZ: discovery, connect, MTU, hello, write without
//! response, notifications, a dropped peer with background reconnect, local disconnect.
//!
//! Invariant: one radio per test binary (see `fake_bluez`); every wait is bounded.
#![cfg(all(feature = "ble", target_os = "linux"))]

mod fake_bluez;

use std::time::{Duration, Instant};

use fake_bluez::*;
use hal::ble::{BleRadio, MESHNODE_CHARACTERISTIC_UUID, MESHNODE_SERVICE_UUID};
use hal::{Advertisement, LinkDownReason, PeerAddress, Radio, RadioErrorKind, RadioEvent, Role};

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
