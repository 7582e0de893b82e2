//! Golden vectors of PROTOCOL.md §8.1 (identity and frames) and §8.3 (sessions: a whole Noise XX handshake, sealed
//! frames), checked byte for byte against this implementation.
//!
//! Each vector is recomputed here from the inputs stated under it in PROTOCOL.md, and each frame vector is then
//! deconstructed, constructed into a buffer pre-filled with 0xa5, parsed and emitted back, truncated and
//! malformed. The handshake vectors come out of two real `Sessions` and are recomputed a second time by a Noise XX
//! written here from the Noise specification alone, from the stated keys. Invariant: a change to the wire format,
//! the signing, the handshake or the AEAD construction fails here until the document is changed with it.
//! `cargo test -p mesh --test protocol_vectors -- --ignored --nocapture` prints the blocks as they belong in
//! PROTOCOL.md.

mod common;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, XChaCha20Poly1305};
use curve25519_dalek::montgomery::MontgomeryPoint;
use mesh::identity::{Identity, NodeId};
use mesh::node::MessageId;
use mesh::node::{Action, LinkId, Node, NodeConfig};
use mesh::route::reliable::encode_ack;
use mesh::session::{
    padded_len, seal_with_key, unpadded_len, Key, SessionConfig, SessionRecord, Sessions,
    NOISE_PARAMS, PROLOGUE_LABEL,
};
use mesh::time::Instant;
use mesh::wire::body::{CAP_RELAY, CAP_SESSIONS, SEALED_FIXED_LEN, TAG_LEN};
use mesh::wire::{
    channel_associated_data, channel_tag, decode, encode, encode_body, sealed_associated_data,
    Announce, Body, Broadcast, Channel, FrameView, Handshake, Header, Kind, LinkAck, PeerSync,
    Sealed, UnknownSession, WireError, HEADER_LEN,
};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

const PEER: NodeId = NodeId([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
const SESSION_KEY: [u8; 32] = [0x42; 32];
const CHANNEL_KEY: [u8; 32] = [0x33; 32];

fn identity() -> Identity {
    Identity::from_secrets([0x01; 32], INITIATOR_X25519_SECRET)
}

fn channel_nonce() -> [u8; 24] {
    core::array::from_fn(|i| 0x10 + i as u8)
}

/// ChaCha20-Poly1305 exactly as PROTOCOL.md §6.4: nonce `00 00 00 00 || LE u64(n)`.
fn noise_encrypt(key: &[u8; 32], n: u64, ad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&n.to_le_bytes());
    ChaCha20Poly1305::new(key.into())
        .encrypt(
            &nonce.into(),
            Payload {
                msg: plaintext,
                aad: ad,
            },
        )
        .unwrap()
}

fn noise_decrypt(key: &[u8; 32], n: u64, ad: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&n.to_le_bytes());
    ChaCha20Poly1305::new(key.into())
        .decrypt(
            &nonce.into(),
            Payload {
                msg: ciphertext,
                aad: ad,
            },
        )
        .ok()
}

fn channel_decrypt(frame: &[u8]) -> Option<Vec<u8>> {
    let (_, body) = decode(frame).ok()?;
    let Body::Channel(c) = body else { return None };
    let ad = channel_associated_data(frame).ok()?;
    XChaCha20Poly1305::new(&CHANNEL_KEY.into())
        .decrypt(
            &c.nonce.into(),
            Payload {
                msg: c.ciphertext_and_tag,
                aad: &ad,
            },
        )
        .ok()
}

fn transport_header() -> Header {
    Header {
        kind: Kind::Transport,
        ttl: 7,
        frame_id: 0x0102_0304,
        src: identity().node_id(),
        dst: PEER,
    }
}

fn handshake_1_header() -> Header {
    Header {
        kind: Kind::Handshake1,
        ..transport_header()
    }
}

fn unknown_session_header() -> Header {
    Header {
        kind: Kind::UnknownSession,
        ttl: 7,
        frame_id: 0x0506_0708,
        src: PEER,
        dst: identity().node_id(),
    }
}

fn channel_header() -> Header {
    Header {
        kind: Kind::Channel,
        ttl: 7,
        frame_id: 0x0a0b_0c0f,
        src: identity().node_id(),
        dst: NodeId::BROADCAST,
    }
}

fn computed_announce() -> Vec<u8> {
    Announce::sign_frame(
        &identity(),
        0x0a0b_0c0d,
        7,
        CAP_RELAY | CAP_SESSIONS,
        "alice",
    )
    .unwrap()
}

fn computed_broadcast() -> Vec<u8> {
    Broadcast::sign_frame(&identity(), 0x0a0b_0c0e, 7, b"hello mesh").unwrap()
}

fn computed_handshake_1() -> Vec<u8> {
    let noise: Vec<u8> = (0u8..32).collect();
    let body = Handshake {
        session_id: 0x2a,
        noise: &noise,
    };
    encode_body(&handshake_1_header(), &Body::Handshake(body)).unwrap()
}

/// A TRANSPORT frame sealed as the session layer must: header and fixed fields first, then the AEAD over the
/// plaintext with the first 32 bytes (minus TTL) as associated data.
fn computed_transport() -> Vec<u8> {
    let mut fixed = [0u8; SEALED_FIXED_LEN];
    Sealed::emit_fixed(0x2a, 0, false, 5, &mut fixed);
    let mut frame = encode(&transport_header(), &fixed).unwrap();
    let ad = sealed_associated_data(&frame).unwrap();
    frame.extend(noise_encrypt(&SESSION_KEY, 5, &ad, b"hello"));
    frame
}

/// REKEY (PROTOCOL.md §6.5): ENCRYPT(k, 2^64 - 1, empty ad, 32 zero bytes)[0..32].
fn computed_rekey_key_epoch1() -> Vec<u8> {
    let mut out = noise_encrypt(&SESSION_KEY, u64::MAX, &[], &[0u8; 32]);
    out.truncate(32);
    out
}

fn computed_unknown_session() -> Vec<u8> {
    let body = UnknownSession {
        session_id: 0x2a,
        epoch_flags: 0x81,
    };
    encode_body(&unknown_session_header(), &Body::UnknownSession(body)).unwrap()
}

fn computed_channel() -> Vec<u8> {
    let mut frame = encode(&channel_header(), &channel_tag("general")).unwrap();
    frame.extend_from_slice(&channel_nonce());
    let ad = channel_associated_data(&frame).unwrap();
    let sealed = XChaCha20Poly1305::new(&CHANNEL_KEY.into())
        .encrypt(
            &channel_nonce().into(),
            Payload {
                msg: b"hi all",
                aad: &ad,
            },
        )
        .unwrap();
    frame.extend(sealed);
    frame
}

/// The two frames the `link_ack` vector acknowledges.
fn link_ack_keys() -> [(NodeId, u32); 2] {
    [
        (PEER, 0x0102_0304),
        (
            NodeId([0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xf0, 0x01]),
            0x0506_0708,
        ),
    ]
}

fn computed_link_ack() -> Vec<u8> {
    LinkAck::frame(identity().node_id(), 0x0a0b_0c11, &link_ack_keys()).unwrap()
}

fn computed_header_transport() -> Vec<u8> {
    let header = Header {
        kind: Kind::Transport,
        ttl: 7,
        frame_id: 0x0102_0304,
        src: PEER,
        dst: NodeId([0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xf0, 0x01]),
    };
    let mut buf = vec![0xa5; HEADER_LEN];
    header.emit(&mut buf);
    buf
}

const SYNC_DST: NodeId = NodeId([0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xf0, 0x01]);

fn peer_sync_header() -> Header {
    Header {
        kind: Kind::PeerSync,
        ttl: 0,
        frame_id: 0x0506_0709,
        src: PEER,
        dst: SYNC_DST,
    }
}

/// PEER_SYNC from `PEER` to `SYNC_DST` handing on the `announce` vector: hops 2, heard 30 s ago.
fn computed_peer_sync() -> Vec<u8> {
    let announce_frame = computed_announce();
    let Ok((h, Body::Announce(announce))) = decode(&announce_frame) else {
        panic!("the announce vector decodes");
    };
    let body = PeerSync {
        hops: 2,
        age_s: 30,
        frame_id: h.frame_id,
        peer: h.src,
        announce,
    };
    encode_body(&peer_sync_header(), &Body::PeerSync(body)).unwrap()
}

/// Every §8.1 and §8.3 vector, computed from its inputs.
fn computed() -> Vec<(&'static str, Vec<u8>)> {
    let id = identity();
    let mut v = vec![
        ("identity_ed25519_public", id.public().ed25519.to_vec()),
        ("identity_x25519_public", id.public().x25519.to_vec()),
        ("node_id", id.node_id().0.to_vec()),
        ("fingerprint", id.public().fingerprint().0.to_vec()),
        ("header_transport", computed_header_transport()),
        ("announce", computed_announce()),
        ("broadcast", computed_broadcast()),
        ("handshake_1", computed_handshake_1()),
        ("transport", computed_transport()),
        ("rekey_key_epoch1", computed_rekey_key_epoch1()),
        ("unknown_session", computed_unknown_session()),
        ("channel_tag_general", channel_tag("general").to_vec()),
        ("channel", computed_channel()),
        ("peer_sync", computed_peer_sync()),
        ("link_ack", computed_link_ack()),
        ("hello", computed_hello()),
    ];
    v.extend(computed_sealed());
    v.extend(computed_noise());
    v
}

#[test]
#[ignore = "prints the vector blocks for PROTOCOL.md"]
fn print_vectors() {
    for (name, bytes) in computed() {
        println!("```\nvector: {name}");
        for line in bytes.chunks(32) {
            println!("{}", hex::encode(line));
        }
        println!("```\n");
    }
}

#[test]
fn every_vector_matches_the_document() {
    for (name, bytes) in computed() {
        assert_eq!(
            hex::encode(common::vector(name)),
            hex::encode(&bytes),
            "vector {name}"
        );
    }
}

#[test]
fn identity_vectors_and_fingerprint_text() {
    let id = identity();
    let fp = common::vector("fingerprint");
    assert_eq!(&fp[..8], &common::vector("node_id")[..]);
    let shown = id.public().fingerprint().to_string();
    let want = hex::encode(&fp);
    let grouped: Vec<&str> = (0..5).map(|i| &want[4 * i..4 * i + 4]).collect();
    assert_eq!(shown, grouped.join(" "));
}

#[test]
fn header_transport_vector() {
    let v = common::vector("header_transport");
    assert_eq!(
        hex::encode(&v),
        concat!("2607", "01020304", "1122334455667788", "99aabbccddeef001")
    );
    let view = FrameView::new_checked(&v[..]).unwrap();
    let h = Header::parse(&view).unwrap();
    assert_eq!(
        (h.kind, h.ttl, h.frame_id, h.src),
        (Kind::Transport, 7, 0x0102_0304, PEER)
    );
    for len in 0..v.len() {
        assert_eq!(
            FrameView::new_checked(&v[..len]).unwrap_err(),
            WireError::Truncated
        );
    }
}

#[test]
fn announce_vector() {
    let v = common::vector("announce");
    let id = identity();
    // Deconstruct.
    let (h, body) = decode(&v).unwrap();
    let Body::Announce(a) = body else {
        panic!("not an announce: {body:?}")
    };
    assert_eq!(
        h,
        Header {
            kind: Kind::Announce,
            ttl: 7,
            frame_id: 0x0a0b_0c0d,
            src: id.node_id(),
            dst: NodeId::BROADCAST
        }
    );
    assert_eq!(a.public, *id.public());
    assert_eq!(a.capabilities, 0x0003);
    assert_eq!(a.nickname, "alice");
    assert_eq!(a.verify(&h), Ok(()));
    assert_eq!(v.len(), HEADER_LEN + 67 + 5 + 64);
    // Construct into a buffer pre-filled with 0xa5.
    let mut buf = vec![0xa5; HEADER_LEN + a.buffer_len()];
    h.emit(&mut buf);
    a.emit(&mut buf[HEADER_LEN..]);
    assert_eq!(buf, v);
    // Parse then emit.
    assert_eq!(encode_body(&h, &body).unwrap(), v);
    // Truncated: never a valid announce.
    for len in 0..v.len() {
        assert!(decode(&v[..len]).is_err(), "prefix {len} decoded");
    }
    // Malformed.
    let nick_len_at = HEADER_LEN + 66;
    let mut m = v.clone();
    m[nick_len_at] = 33;
    assert_eq!(decode(&m).unwrap_err(), WireError::TooLong);
    let mut m = v.clone();
    m[nick_len_at] = 6;
    assert_eq!(decode(&m).unwrap_err(), WireError::Truncated);
    let mut m = v.clone();
    m[nick_len_at] = 4;
    assert_eq!(decode(&m).unwrap_err(), WireError::TrailingBytes);
    let mut m = v.clone();
    m[nick_len_at + 1] = 0xff; // not UTF-8
    assert_eq!(decode(&m).unwrap_err(), WireError::BadField);
    let mut m = v.clone();
    m[nick_len_at + 1] = b'A'; // still UTF-8, no longer signed
    let (h2, Body::Announce(a2)) = decode(&m).unwrap() else {
        panic!()
    };
    assert_eq!(a2.verify(&h2), Err(WireError::BadSignature));
    let mut m = v.clone();
    m[6] ^= 1; // another source id
    let (h2, Body::Announce(a2)) = decode(&m).unwrap() else {
        panic!()
    };
    assert_eq!(a2.verify(&h2), Err(WireError::IdMismatch));
    let mut m = v.clone();
    m[1] = 3; // a relay lowered the TTL: still valid
    let (h2, Body::Announce(a2)) = decode(&m).unwrap() else {
        panic!()
    };
    assert_eq!(a2.verify(&h2), Ok(()));
    assert_eq!(
        Announce::sign_frame(&id, 1, 7, 0, "0123456789abcdef0123456789abcdefX"),
        Err(WireError::TooLong)
    );
    assert_eq!(
        Announce::sign_frame(&id, 1, 16, 0, "a"),
        Err(WireError::BadTtl(16))
    );
}

#[test]
fn broadcast_vector() {
    let v = common::vector("broadcast");
    let id = identity();
    let (h, body) = decode(&v).unwrap();
    let Body::Broadcast(b) = body else {
        panic!("not a broadcast: {body:?}")
    };
    assert_eq!(
        (h.kind, h.frame_id, h.src, h.dst),
        (
            Kind::Broadcast,
            0x0a0b_0c0e,
            id.node_id(),
            NodeId::BROADCAST
        )
    );
    assert_eq!(b.message, b"hello mesh");
    assert_eq!(b.verify(&h, id.public()), Ok(()));
    let mut buf = vec![0xa5; HEADER_LEN + b.buffer_len()];
    h.emit(&mut buf);
    b.emit(&mut buf[HEADER_LEN..]);
    assert_eq!(buf, v);
    assert_eq!(encode_body(&h, &body).unwrap(), v);
    // Truncated: an error, or a shorter message that no longer verifies.
    for len in 0..v.len() {
        match decode(&v[..len]) {
            Err(_) => {}
            Ok((h2, Body::Broadcast(b2))) => {
                assert_eq!(b2.verify(&h2, id.public()), Err(WireError::BadSignature))
            }
            Ok(other) => panic!("prefix {len} decoded as {other:?}"),
        }
    }
    // Malformed.
    assert_eq!(
        decode(&v[..HEADER_LEN + 64]).unwrap_err(),
        WireError::Truncated
    );
    let other = Identity::from_secrets([0x05; 32], [0x06; 32]);
    assert_eq!(b.verify(&h, other.public()), Err(WireError::IdMismatch));
    let mut m = v.clone();
    m[HEADER_LEN] ^= 0x20;
    let (h2, Body::Broadcast(b2)) = decode(&m).unwrap() else {
        panic!()
    };
    assert_eq!(b2.verify(&h2, id.public()), Err(WireError::BadSignature));
    let mut long = v[..HEADER_LEN].to_vec();
    long.extend(vec![b'x'; 1025 + 64]);
    assert_eq!(decode(&long).unwrap_err(), WireError::TooLong);
    assert_eq!(
        Broadcast::sign_frame(&id, 1, 7, &[]),
        Err(WireError::BadField)
    );
    assert_eq!(
        Broadcast::sign_frame(&id, 1, 7, &[b'x'; 1025]),
        Err(WireError::TooLong)
    );
    let max = Broadcast::sign_frame(&id, 1, 7, &[b'x'; 1024]).unwrap();
    let (h3, Body::Broadcast(b3)) = decode(&max).unwrap() else {
        panic!()
    };
    assert_eq!(b3.verify(&h3, id.public()), Ok(()));
}

#[test]
fn handshake_1_vector() {
    let v = common::vector("handshake_1");
    let (h, body) = decode(&v).unwrap();
    assert_eq!(h, handshake_1_header());
    let Body::Handshake(hs) = body else {
        panic!("{body:?}")
    };
    assert_eq!(hs.session_id, 0x2a);
    assert_eq!(hs.noise, (0u8..32).collect::<Vec<_>>());
    let mut buf = vec![0xa5; HEADER_LEN + hs.buffer_len()];
    h.emit(&mut buf);
    hs.emit(&mut buf[HEADER_LEN..]);
    assert_eq!(buf, v);
    for len in 0..HEADER_LEN + 2 {
        assert_eq!(decode(&v[..len]).unwrap_err(), WireError::Truncated);
    }
    let mut m = v.clone();
    m[0] = 0x24; // HANDSHAKE_2: the same body layout
    assert_eq!(decode(&m).unwrap().0.kind, Kind::Handshake2);
    m[14..22].fill(0xff);
    assert_eq!(decode(&m).unwrap_err(), WireError::BadDestination);
}

#[test]
fn transport_vector_is_the_section_6_4_aead() {
    let v = common::vector("transport");
    let (h, body) = decode(&v).unwrap();
    assert_eq!(h, transport_header());
    let Body::Sealed(s) = body else {
        panic!("{body:?}")
    };
    assert_eq!(
        (s.session_id, s.epoch, s.padded, s.nonce),
        (0x2a, 0, false, 5)
    );
    assert_eq!(v.len(), 48 + 5);
    let ad = sealed_associated_data(&v).unwrap();
    assert_eq!(ad[0], v[0]);
    assert_eq!(&ad[1..], &v[2..32]);
    assert_eq!(
        noise_decrypt(&SESSION_KEY, s.nonce, &ad, s.ciphertext_and_tag).as_deref(),
        Some(&b"hello"[..])
    );
    let mut buf = vec![0xa5; HEADER_LEN + s.buffer_len()];
    h.emit(&mut buf);
    s.emit(&mut buf[HEADER_LEN..]);
    assert_eq!(buf, v);
    assert_eq!(encode_body(&h, &body).unwrap(), v);
    for len in 0..HEADER_LEN + SEALED_FIXED_LEN + TAG_LEN {
        assert_eq!(decode(&v[..len]).unwrap_err(), WireError::Truncated);
    }
    // The TTL is outside the AD; every other byte of the first 32 is inside it.
    let mut m = v.clone();
    m[1] = 2;
    let ad2 = sealed_associated_data(&m).unwrap();
    assert!(noise_decrypt(&SESSION_KEY, 5, &ad2, &m[32..]).is_some());
    for i in (0..32).filter(|&i| i != 1) {
        let mut m = v.clone();
        m[i] ^= 0x04;
        let ad2 = sealed_associated_data(&m).unwrap();
        assert!(
            noise_decrypt(&SESSION_KEY, 5, &ad2, &m[32..]).is_none(),
            "byte {i}"
        );
    }
    let mut m = v.clone();
    m[24..32].fill(0xff);
    assert_eq!(decode(&m).unwrap_err(), WireError::BadField);
}

#[test]
fn rekey_vector() {
    let k1: [u8; 32] = common::vector("rekey_key_epoch1").try_into().unwrap();
    assert_ne!(k1, SESSION_KEY);
    assert_eq!(computed_rekey_key_epoch1(), k1);
}

#[test]
fn unknown_session_vector() {
    let v = common::vector("unknown_session");
    let (h, body) = decode(&v).unwrap();
    assert_eq!(h, unknown_session_header());
    assert_eq!(
        body,
        Body::UnknownSession(UnknownSession {
            session_id: 0x2a,
            epoch_flags: 0x81
        })
    );
    let mut buf = vec![0xa5; HEADER_LEN + 2];
    h.emit(&mut buf);
    UnknownSession::parse(&v[HEADER_LEN..])
        .unwrap()
        .emit(&mut buf[HEADER_LEN..]);
    assert_eq!(buf, v);
    for len in 0..v.len() {
        assert_eq!(decode(&v[..len]).unwrap_err(), WireError::Truncated);
    }
    let mut m = v.clone();
    m.push(0);
    assert_eq!(decode(&m).unwrap_err(), WireError::TrailingBytes);
}

#[test]
fn peer_sync_vector() {
    let v = common::vector("peer_sync");
    let Ok((h, Body::PeerSync(sync))) = decode(&v) else {
        panic!("peer_sync decodes as PEER_SYNC");
    };
    assert_eq!(h, peer_sync_header());
    assert_eq!((sync.hops, sync.age_s), (2, 30));
    assert_eq!(sync.peer, identity().node_id());
    assert_eq!(sync.announce.nickname, "alice");
    // The embedded announce is the `announce` vector's body, and it verifies as that frame did.
    assert_eq!(
        &v[HEADER_LEN + 15..],
        &common::vector("announce")[HEADER_LEN..]
    );
    assert_eq!(sync.verify(), Ok(()));
    // What the sync claims beside the announce is not signed; what the announce says is.
    let mut forged = v.clone();
    forged[HEADER_LEN + 3] ^= 1; // the announce's frame id
    let Ok((_, Body::PeerSync(f))) = decode(&forged) else {
        panic!("still decodes");
    };
    assert_eq!(f.verify(), Err(WireError::BadSignature));
    let mut other_peer = v.clone();
    other_peer[HEADER_LEN + 7] ^= 1; // the peer id
    let Ok((_, Body::PeerSync(f))) = decode(&other_peer) else {
        panic!("still decodes");
    };
    assert_eq!(f.verify(), Err(WireError::IdMismatch));
    // Link-local: any TTL but 0 is refused; hops must be 1..=15; nothing may follow the announce.
    let mut travelling = v.clone();
    travelling[1] = 1;
    assert_eq!(decode(&travelling).unwrap_err(), WireError::LinkLocalTtl(1));
    for bad_hops in [0u8, 16, 255] {
        let mut m = v.clone();
        m[HEADER_LEN] = bad_hops;
        assert_eq!(decode(&m).unwrap_err(), WireError::BadField);
    }
    let mut m = v.clone();
    m.push(0);
    assert_eq!(decode(&m).unwrap_err(), WireError::TrailingBytes);
    for len in 0..v.len() {
        assert!(decode(&v[..len]).is_err());
    }
}

#[test]
fn channel_vector() {
    let v = common::vector("channel");
    let (h, body) = decode(&v).unwrap();
    assert_eq!(h, channel_header());
    let Body::Channel(c) = body else {
        panic!("{body:?}")
    };
    assert_eq!(c.channel_tag, channel_tag("general"));
    assert_eq!(
        &c.channel_tag[..],
        &common::vector("channel_tag_general")[..]
    );
    assert_eq!(c.nonce, channel_nonce());
    assert_eq!(channel_decrypt(&v).as_deref(), Some(&b"hi all"[..]));
    let mut buf = vec![0xa5; HEADER_LEN + c.buffer_len()];
    h.emit(&mut buf);
    c.emit(&mut buf[HEADER_LEN..]);
    assert_eq!(buf, v);
    assert_eq!(encode_body(&h, &body).unwrap(), v);
    for len in 0..HEADER_LEN + 32 + TAG_LEN {
        assert_eq!(decode(&v[..len]).unwrap_err(), WireError::Truncated);
    }
    // Every byte but the TTL is authenticated (header and tag through the AD, nonce through the AEAD).
    for i in (0..v.len()).filter(|&i| i != 1) {
        let mut m = v.clone();
        m[i] ^= 0x01;
        assert!(channel_decrypt(&m).is_none(), "byte {i}");
    }
    let mut m = v.clone();
    m[1] = 1;
    assert!(channel_decrypt(&m).is_some());
    assert!(Channel::parse(&v[HEADER_LEN..HEADER_LEN + 47]).is_err());
}

#[test]
fn link_ack_vector() {
    let v = common::vector("link_ack");
    let (h, body) = decode(&v).unwrap();
    assert_eq!(
        h,
        Header {
            kind: Kind::LinkAck,
            ttl: 0,
            frame_id: 0x0a0b_0c11,
            src: identity().node_id(),
            dst: NodeId::BROADCAST
        }
    );
    let Body::LinkAck(ack) = body else {
        panic!("not a LINK_ACK: {body:?}")
    };
    assert_eq!(ack.keys().collect::<Vec<_>>(), link_ack_keys());
    assert_eq!(v.len(), HEADER_LEN + 2 * 12);
    // Construct into a buffer pre-filled with 0xa5, and parse then emit.
    let mut buf = vec![0xa5; HEADER_LEN + ack.buffer_len()];
    h.emit(&mut buf);
    ack.emit(&mut buf[HEADER_LEN..]);
    assert_eq!(buf, v);
    assert_eq!(encode_body(&h, &body).unwrap(), v);
    // One SINGLE packet at ATT MTU 247 (§3.1).
    assert_eq!(mesh::link::packet_count(v.len(), 247), Ok(1));
    // Truncated: only whole keys make a LINK_ACK, and at least one.
    for len in 0..v.len() {
        let ok = len > HEADER_LEN && (len - HEADER_LEN) % 12 == 0;
        assert_eq!(decode(&v[..len]).is_ok(), ok, "prefix {len}");
    }
    // Malformed: link-local, so any TTL but 0 is refused; a unicast destination is refused.
    for ttl in 1..=15 {
        let mut m = v.clone();
        m[1] = ttl;
        assert_eq!(decode(&m).unwrap_err(), WireError::LinkLocalTtl(ttl));
    }
    let mut m = v.clone();
    m[14..22].copy_from_slice(&PEER.0);
    assert_eq!(decode(&m).unwrap_err(), WireError::BadDestination);
    let mut m = v.clone();
    m.extend_from_slice(&[0; 12 * 30]);
    assert_eq!(decode(&m).map(|(_, b)| b.buffer_len()), Ok(32 * 12));
    m.extend_from_slice(&[0; 12]);
    assert_eq!(decode(&m).unwrap_err(), WireError::TooLong);
}

#[test]
fn vector_names_are_unique_lowercase_words() {
    let vectors = common::protocol_vectors();
    let mut names: Vec<&str> = vectors.iter().map(|(n, _)| n.as_str()).collect();
    for n in &names {
        assert!(
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "vector name `{n}` is not [a-z0-9_]+"
        );
    }
    let count = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), count, "a vector name appears twice");
}

/// The RFC 8439 §2.3 ChaCha20 block function: 64 keystream bytes for `key`, `counter` and a 12-byte `nonce`.
fn chacha20_block(key: &[u8; 32], counter: u32, nonce: &[u8; 12]) -> [u8; 64] {
    fn qr(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
        s[a] = s[a].wrapping_add(s[b]);
        s[d] = (s[d] ^ s[a]).rotate_left(16);
        s[c] = s[c].wrapping_add(s[d]);
        s[b] = (s[b] ^ s[c]).rotate_left(12);
        s[a] = s[a].wrapping_add(s[b]);
        s[d] = (s[d] ^ s[a]).rotate_left(8);
        s[c] = s[c].wrapping_add(s[d]);
        s[b] = (s[b] ^ s[c]).rotate_left(7);
    }
    let word = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap());
    let mut init = [0u32; 16];
    init[..4].copy_from_slice(&[0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]);
    for i in 0..8 {
        init[4 + i] = word(&key[4 * i..4 * i + 4]);
    }
    init[12] = counter;
    for i in 0..3 {
        init[13 + i] = word(&nonce[4 * i..4 * i + 4]);
    }
    let mut s = init;
    for _ in 0..10 {
        qr(&mut s, 0, 4, 8, 12);
        qr(&mut s, 1, 5, 9, 13);
        qr(&mut s, 2, 6, 10, 14);
        qr(&mut s, 3, 7, 11, 15);
        qr(&mut s, 0, 5, 10, 15);
        qr(&mut s, 1, 6, 11, 12);
        qr(&mut s, 2, 7, 8, 13);
        qr(&mut s, 3, 4, 9, 14);
    }
    let mut out = [0u8; 64];
    for i in 0..16 {
        out[4 * i..4 * i + 4].copy_from_slice(&s[i].wrapping_add(init[i]).to_le_bytes());
    }
    out
}

/// PROTOCOL.md §8.4 states the `channel_frame` nonce as the first 24 bytes of the plain ChaCha20 keystream (key
/// `07` × 32, nonce 0, counter 0), so an implementation without meshnode's RNG reproduces it.
#[test]
fn channel_frame_nonce_is_the_chacha20_keystream() {
    // RFC 8439 §2.3.2 test vector first, so the block function above is the standard one.
    let key: [u8; 32] = core::array::from_fn(|i| i as u8);
    let nonce = [0, 0, 0, 9, 0, 0, 0, 0x4a, 0, 0, 0, 0];
    assert_eq!(
        hex::encode(&chacha20_block(&key, 1, &nonce)[..16]),
        "10f1e7e4d13b5915500fdd1fa32071c4"
    );
    let frame = common::vector("channel_frame");
    let stream = chacha20_block(&[0x07; 32], 0, &[0; 12]);
    assert_eq!(&frame[HEADER_LEN + 8..HEADER_LEN + 32], &stream[..24]);
}

/// PROTOCOL.md §5.7: the embedded announce of the `peer_sync` vector verifies over `"meshnode/1 announce"`, then the
/// 21 bytes `21 || frame_id || peer || ff × 8`, then the announce body before its signature.
#[test]
fn peer_sync_announce_is_signed_over_the_stated_header_bytes() {
    let v = common::vector("peer_sync");
    let body = &v[HEADER_LEN..];
    let (frame_id, peer, announce) = (&body[3..7], &body[7..15], &body[15..]);
    let (signed_body, signature) = announce.split_at(announce.len() - 64);
    let mut msg = b"meshnode/1 announce".to_vec();
    msg.push(0x21);
    msg.extend_from_slice(frame_id);
    msg.extend_from_slice(peer);
    msg.extend_from_slice(&[0xff; 8]);
    msg.extend_from_slice(signed_body);
    let key = ed25519_dalek::VerifyingKey::from_bytes(&announce[..32].try_into().unwrap()).unwrap();
    let sig = ed25519_dalek::Signature::from_bytes(signature.try_into().unwrap());
    assert!(key.verify_strict(&msg, &sig).is_ok());
}

// ---------------------------------------------------------------------------------------------------------------
// §8.1 hello

/// The link-local hello of §7.1 from the §8.1 identity: ANNOUNCE, TTL 0, nickname `alice`, the default
/// capabilities, frame id 0x0a0b0c12.
fn computed_hello() -> Vec<u8> {
    Announce::sign_frame(
        &identity(),
        0x0a0b_0c12,
        0,
        CAP_RELAY | CAP_SESSIONS,
        "alice",
    )
    .unwrap()
}

#[test]
fn hello_vector_is_what_a_node_sends_when_a_link_comes_up() {
    let v = common::vector("hello");
    let (h, body) = decode(&v).unwrap();
    let Body::Announce(a) = body else {
        panic!("not an announce: {body:?}")
    };
    assert_eq!(
        h,
        Header {
            kind: Kind::Announce,
            ttl: 0,
            frame_id: 0x0a0b_0c12,
            src: identity().node_id(),
            dst: NodeId::BROADCAST
        }
    );
    assert_eq!((a.capabilities, a.nickname), (0x0003, "alice"));
    assert_eq!(a.verify(&h), Ok(()));
    // Only the TTL differs from the `announce` vector's header; the frame id is in the signature.
    assert_eq!(v.len(), common::vector("announce").len());
    // A real node with this identity and nickname sends exactly this construction (its frame id is random) as one
    // SINGLE packet on the link that came up.
    let mut config = NodeConfig::default();
    config.nickname = "alice".into();
    assert_eq!(config.capabilities, CAP_RELAY | CAP_SESSIONS);
    let mut node = Node::new(identity(), config, [0x0c; 32], Instant::ZERO);
    node.link_up(LinkId(0), 247, Instant::ZERO);
    let packet = std::iter::from_fn(|| node.poll_action())
        .find_map(|a| match a {
            Action::Transmit {
                link: LinkId(0),
                packet,
            } => Some(packet),
            _ => None,
        })
        .expect("a hello on the new link");
    assert_eq!(packet[0] >> 6, 0b11, "a SINGLE packet");
    let frame = &packet[1..];
    let frame_id = u32::from_be_bytes(frame[2..6].try_into().unwrap());
    let rebuilt = Announce::sign_frame(&identity(), frame_id, 0, 0x0003, "alice").unwrap();
    assert_eq!(frame, &rebuilt[..]);
    assert_eq!(frame[..2], [0x21, 0x00]);
}

// ---------------------------------------------------------------------------------------------------------------
// §8.3 sealed frames with padding: TRANSPORT, ACK, CLOSE

/// The §8.3 padded TRANSPORT message: 40 bytes, so 41 with the 0x80 marker, padded to the 64-byte bucket.
const PADDED_MESSAGE: &[u8] = b"forty bytes of text fill the 64 bucket..";

/// `(name, kind, frame id, nonce, message)` of the §8.3 sealed vectors, all under the key `42` x 32 at epoch 0
/// from the §8.1 identity to `PEER`, session id 0x2a, with the default padding buckets.
fn sealed_cases() -> [(&'static str, Kind, u32, u64, Vec<u8>); 3] {
    [
        (
            "session_transport_padded",
            Kind::Transport,
            0x0a0b_0c13,
            6,
            PADDED_MESSAGE.to_vec(),
        ),
        (
            "session_ack",
            Kind::Ack,
            0x0a0b_0c14,
            7,
            encode_ack(&[MessageId(1), MessageId(0x0102_0304_0506_0708)]),
        ),
        ("session_close", Kind::Close, 0x0a0b_0c15, 8, vec![0x00]),
    ]
}

fn padded(message: &[u8]) -> Vec<u8> {
    let len = padded_len(message.len(), &SessionConfig::default().padding_buckets).unwrap();
    let mut p = message.to_vec();
    p.push(0x80);
    p.resize(len, 0);
    p
}

fn sealed_header(kind: Kind, frame_id: u32) -> Header {
    Header {
        kind,
        ttl: 7,
        frame_id,
        src: identity().node_id(),
        dst: PEER,
    }
}

fn computed_sealed() -> Vec<(&'static str, Vec<u8>)> {
    let buckets = SessionConfig::default().padding_buckets;
    let mut out = Vec::new();
    for (name, kind, frame_id, nonce, message) in sealed_cases() {
        let frame = seal_with_key(
            Key(SESSION_KEY),
            0,
            nonce,
            &sealed_header(kind, frame_id),
            0x2a,
            &message,
            &buckets,
        )
        .unwrap();
        let plaintext_name = match name {
            "session_transport_padded" => "session_transport_padded_plaintext",
            "session_ack" => "session_ack_plaintext",
            _ => "session_close_plaintext",
        };
        out.push((plaintext_name, padded(&message)));
        out.push((name, frame));
    }
    out
}

#[test]
fn sealed_vectors_pad_and_open_as_section_6_6_says() {
    assert_eq!(PADDED_MESSAGE.len(), 40);
    for (name, kind, frame_id, nonce, message) in sealed_cases() {
        let v = common::vector(name);
        let plaintext = common::vector(&format!("{name}_plaintext"));
        // The padding rule: message, 0x80, zeros up to the smallest bucket that holds message + 1.
        let bucket = [32, 64, 128, 256, 512, 1024]
            .into_iter()
            .find(|&b| b > message.len())
            .unwrap();
        assert_eq!(plaintext.len(), bucket, "{name}");
        assert_eq!(&plaintext[..message.len()], &message[..], "{name}");
        assert_eq!(plaintext[message.len()], 0x80, "{name}");
        assert!(plaintext[message.len() + 1..].iter().all(|&b| b == 0));
        assert_eq!(unpadded_len(&plaintext), Some(message.len()), "{name}");
        // The frame: PADDED bit set, epoch 0, the stated nonce; opens with the bare AEAD of §6.4.
        let (h, body) = decode(&v).unwrap();
        assert_eq!(h, sealed_header(kind, frame_id), "{name}");
        let Body::Sealed(s) = body else {
            panic!("{body:?}")
        };
        assert_eq!(
            (s.session_id, s.epoch, s.padded, s.nonce),
            (0x2a, 0, true, nonce)
        );
        assert_eq!(v[23], 0x80, "{name}: epoch_flags");
        assert_eq!(v.len(), 48 + bucket, "{name}");
        let ad = sealed_associated_data(&v).unwrap();
        assert_eq!(
            noise_decrypt(&SESSION_KEY, nonce, &ad, s.ciphertext_and_tag).as_deref(),
            Some(&plaintext[..]),
            "{name}"
        );
        let mut buf = vec![0xa5; HEADER_LEN + s.buffer_len()];
        h.emit(&mut buf);
        s.emit(&mut buf[HEADER_LEN..]);
        assert_eq!(buf, v);
    }
    assert_eq!(
        common::vector("session_ack_plaintext")[..16],
        common::vector("ack_plaintext")[..]
    );
}

// ---------------------------------------------------------------------------------------------------------------
// §8.3 Noise XX handshake

/// The responder of the handshake vectors (the initiator is the §8.1 identity).
fn responder() -> Identity {
    Identity::from_secrets([0x03; 32], RESPONDER_X25519_SECRET)
}

/// The static Noise keys: each identity's X25519 secret.
const INITIATOR_X25519_SECRET: [u8; 32] = [0x02; 32];
const RESPONDER_X25519_SECRET: [u8; 32] = [0x04; 32];

/// The seeds of the two `Sessions` that ran the handshake; they only explain where the ephemeral keys, session id
/// and frame ids of the vectors came from.
const INITIATOR_SEED: [u8; 32] = [0x0a; 32];
const RESPONDER_SEED: [u8; 32] = [0x0b; 32];
const I2R_MESSAGE: &[u8] = b"hello responder";
const R2I_MESSAGE: &[u8] = b"hello initiator";

/// What two real `Sessions` put on air and keep.
struct SessionRun {
    frames: [Vec<u8>; 5],
    k_i2r: [u8; 32],
    k_r2i: [u8; 32],
}

fn epoch0_keys(s: &mut Sessions) -> ([u8; 32], [u8; 32]) {
    let snap = std::iter::from_fn(|| s.poll_persist())
        .filter_map(|r| match r {
            SessionRecord::Snapshot(snap) => Some(snap),
            _ => None,
        })
        .last()
        .expect("a snapshot of the established session");
    assert_eq!((snap.tx_epoch, snap.rx_epoch), (0, 0));
    (snap.tx_key, snap.rx_key)
}

/// Runs the handshake between two real `Sessions` (default configuration, persistence on only to read the keys
/// back; it changes nothing on air): the initiator's first message is queued, so it leaves right behind
/// HANDSHAKE_3; the responder answers once established.
fn session_run() -> SessionRun {
    let mut cfg = SessionConfig::default();
    cfg.persist = true;
    let t = Instant::ZERO;
    let mut a = Sessions::new(identity(), cfg.clone(), INITIATOR_SEED);
    let mut b = Sessions::new(responder(), cfg, RESPONDER_SEED);
    let (ia, ib) = (a.node_id(), b.node_id());
    a.send(ib, Kind::Transport, I2R_MESSAGE, t).unwrap();
    let out = |s: &mut Sessions| -> Vec<Vec<u8>> {
        std::iter::from_fn(|| s.poll_transmit())
            .map(|o| o.frame)
            .collect()
    };
    let [h1] = <[_; 1]>::try_from(out(&mut a)).unwrap();
    b.handle_frame(&h1, t).unwrap();
    let [h2] = <[_; 1]>::try_from(out(&mut b)).unwrap();
    a.handle_frame(&h2, t).unwrap();
    let [h3, t_i2r] = <[_; 2]>::try_from(out(&mut a)).unwrap();
    b.handle_frame(&h3, t).unwrap();
    let got = b.handle_frame(&t_i2r, t).unwrap().unwrap();
    assert_eq!((got.from, &got.plaintext[..]), (ia, I2R_MESSAGE));
    b.send(ia, Kind::Transport, R2I_MESSAGE, t).unwrap();
    let [t_r2i] = <[_; 1]>::try_from(out(&mut b)).unwrap();
    let got = a.handle_frame(&t_r2i, t).unwrap().unwrap();
    assert_eq!((got.from, &got.plaintext[..]), (ib, R2I_MESSAGE));
    let (a_tx, a_rx) = epoch0_keys(&mut a);
    let (b_tx, b_rx) = epoch0_keys(&mut b);
    assert_eq!((a_tx, a_rx), (b_rx, b_tx));
    SessionRun {
        frames: [h1, h2, h3, t_i2r, t_r2i],
        k_i2r: a_tx,
        k_r2i: a_rx,
    }
}

fn prologue() -> Vec<u8> {
    let mut p = PROLOGUE_LABEL.to_vec();
    p.extend_from_slice(&identity().node_id().0);
    p.extend_from_slice(&responder().node_id().0);
    p
}

/// The first `n` bytes of the ChaCha20 keystream under `key` (nonce 0, counters from 0).
fn keystream(key: &[u8; 32], n: usize) -> Vec<u8> {
    (0..n.div_ceil(64) as u32)
        .flat_map(|c| chacha20_block(key, c, &[0; 12]))
        .take(n)
        .collect()
}

/// The ephemeral private keys as meshnode draws them (informative in PROTOCOL.md §8.3; the keys are the inputs):
/// the session layer's RNG is the ChaCha20 keystream under its seed; the initiator takes 4 bytes for the session id,
/// then 32 bytes as the handshake's own seed; the responder takes 32 bytes as the handshake's seed; each handshake's
/// ephemeral private key is the first 32 bytes of the keystream under that handshake seed.
fn derived_ephemerals() -> ([u8; 32], [u8; 32]) {
    let ks = keystream(&INITIATOR_SEED, 36);
    let hs_i: [u8; 32] = ks[4..36].try_into().unwrap();
    let hs_r: [u8; 32] = keystream(&RESPONDER_SEED, 32).try_into().unwrap();
    // The same through rand_chacha, the RNG meshnode uses.
    let mut r = ChaCha20Rng::from_seed(INITIATOR_SEED);
    let _ = r.next_u32();
    let mut seed = [0u8; 32];
    r.fill_bytes(&mut seed);
    assert_eq!(seed, hs_i);
    (
        keystream(&hs_i, 32).try_into().unwrap(),
        keystream(&hs_r, 32).try_into().unwrap(),
    )
}

fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(key);
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    for p in parts {
        inner.update(p);
    }
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Noise's HKDF with two outputs (§4.3 of the Noise specification).
fn hkdf2(ck: &[u8; 32], ikm: &[u8]) -> ([u8; 32], [u8; 32]) {
    let temp = hmac_sha256(ck, &[ikm]);
    let o1 = hmac_sha256(&temp, &[&[1]]);
    let o2 = hmac_sha256(&temp, &[&o1, &[2]]);
    (o1, o2)
}

/// Noise's SymmetricState with its CipherState (§5.1–§5.2 of the Noise specification).
struct Symmetric {
    ck: [u8; 32],
    h: [u8; 32],
    k: Option<[u8; 32]>,
    n: u64,
}

impl Symmetric {
    /// A protocol name of exactly 32 bytes is `h` as it is (no hash); `ck = h`.
    fn new(name: &[u8]) -> Self {
        let h: [u8; 32] = name.try_into().unwrap();
        Symmetric {
            ck: h,
            h,
            k: None,
            n: 0,
        }
    }
    fn mix_hash(&mut self, data: &[u8]) {
        self.h = Sha256::new()
            .chain_update(self.h)
            .chain_update(data)
            .finalize()
            .into();
    }
    fn mix_key(&mut self, ikm: &[u8]) {
        let (ck, k) = hkdf2(&self.ck, ikm);
        self.ck = ck;
        self.k = Some(k);
        self.n = 0;
    }
    fn encrypt_and_hash(&mut self, plaintext: &[u8]) -> Vec<u8> {
        let ct = match self.k {
            Some(k) => noise_encrypt(&k, self.n, &self.h, plaintext),
            None => plaintext.to_vec(),
        };
        self.n += 1;
        self.mix_hash(&ct);
        ct
    }
}

fn x25519_public(private: &[u8; 32]) -> [u8; 32] {
    MontgomeryPoint::mul_base_clamped(*private).0
}

fn x25519(private: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
    MontgomeryPoint(*public).mul_clamped(*private).0
}

/// Noise XX from the stated inputs alone: the three messages, `h` after message 3 and the two Split() keys.
struct NoiseXx {
    messages: [Vec<u8>; 3],
    h: [u8; 32],
    k1: [u8; 32],
    k2: [u8; 32],
}

fn noise_xx(e_i: &[u8; 32], e_r: &[u8; 32]) -> NoiseXx {
    let (ini, res) = (identity(), responder());
    let (s_i, s_r) = (INITIATOR_X25519_SECRET, RESPONDER_X25519_SECRET);
    let mut st = Symmetric::new(NOISE_PARAMS.as_bytes());
    st.mix_hash(&prologue());
    // -> e (payload empty)
    let e_i_pub = x25519_public(e_i);
    st.mix_hash(&e_i_pub);
    let mut m1 = e_i_pub.to_vec();
    m1.extend(st.encrypt_and_hash(&[]));
    // <- e, ee, s, es (payload: the responder's Ed25519 key)
    let e_r_pub = x25519_public(e_r);
    st.mix_hash(&e_r_pub);
    let mut m2 = e_r_pub.to_vec();
    st.mix_key(&x25519(e_r, &e_i_pub));
    m2.extend(st.encrypt_and_hash(&x25519_public(&s_r)));
    st.mix_key(&x25519(&s_r, &e_i_pub));
    m2.extend(st.encrypt_and_hash(&res.public().ed25519));
    // -> s, se (payload: the initiator's Ed25519 key)
    let mut m3 = st.encrypt_and_hash(&x25519_public(&s_i));
    st.mix_key(&x25519(&s_i, &e_r_pub));
    m3.extend(st.encrypt_and_hash(&ini.public().ed25519));
    let (k1, k2) = hkdf2(&st.ck, &[]);
    NoiseXx {
        messages: [m1, m2, m3],
        h: st.h,
        k1,
        k2,
    }
}

fn computed_noise() -> Vec<(&'static str, Vec<u8>)> {
    let run = session_run();
    let (e_i, e_r) = derived_ephemerals();
    let res = responder();
    let [h1, h2, h3, t_i2r, t_r2i] = run.frames;
    // `h` after message 3 is not exposed by meshnode: it is the Noise computation above, whose messages are
    // checked against meshnode's frames (every AEAD tag in them covers the `h` of its moment).
    let xx = noise_xx(&e_i, &e_r);
    vec![
        (
            "noise_responder_ed25519_public",
            res.public().ed25519.to_vec(),
        ),
        (
            "noise_responder_x25519_public",
            res.public().x25519.to_vec(),
        ),
        ("noise_responder_node_id", res.node_id().0.to_vec()),
        ("noise_h_initial", NOISE_PARAMS.as_bytes().to_vec()),
        ("noise_prologue", prologue()),
        ("noise_initiator_ephemeral_private", e_i.to_vec()),
        ("noise_responder_ephemeral_private", e_r.to_vec()),
        ("noise_handshake_1", h1),
        ("noise_handshake_2", h2),
        ("noise_handshake_3", h3),
        ("noise_handshake_hash", xx.h.to_vec()),
        ("noise_k_i2r", run.k_i2r.to_vec()),
        ("noise_k_r2i", run.k_r2i.to_vec()),
        ("noise_transport_i2r", t_i2r),
        ("noise_transport_r2i", t_r2i),
    ]
}

/// snow's default resolver with an RNG that must not be used: the ephemeral keys are fixed.
struct FixedResolver;

struct NoRandom;

impl snow::types::Random for NoRandom {
    fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), snow::Error> {
        panic!("the ephemeral keys of the vectors are fixed; nothing else is random")
    }
}

impl snow::resolvers::CryptoResolver for FixedResolver {
    fn resolve_rng(&self) -> Option<Box<dyn snow::types::Random>> {
        Some(Box::new(NoRandom))
    }
    fn resolve_dh(&self, c: &snow::params::DHChoice) -> Option<Box<dyn snow::types::Dh>> {
        snow::resolvers::DefaultResolver.resolve_dh(c)
    }
    fn resolve_hash(&self, c: &snow::params::HashChoice) -> Option<Box<dyn snow::types::Hash>> {
        snow::resolvers::DefaultResolver.resolve_hash(c)
    }
    fn resolve_cipher(
        &self,
        c: &snow::params::CipherChoice,
    ) -> Option<Box<dyn snow::types::Cipher>> {
        snow::resolvers::DefaultResolver.resolve_cipher(c)
    }
}

#[test]
fn noise_handshake_vectors_reproduce_from_the_stated_inputs() {
    let key = |name: &str| -> [u8; 32] { common::vector(name).try_into().unwrap() };
    let (e_i, e_r) = (
        key("noise_initiator_ephemeral_private"),
        key("noise_responder_ephemeral_private"),
    );
    // The stated ephemerals are the ones meshnode drew from its seeded RNGs.
    assert_eq!(derived_ephemerals(), (e_i, e_r));
    assert_eq!(
        common::vector("noise_h_initial"),
        b"Noise_XX_25519_ChaChaPoly_SHA256"
    );
    assert_eq!(NOISE_PARAMS.len(), 32);
    let p = common::vector("noise_prologue");
    assert_eq!(p.len(), 13 + 8 + 8);
    assert_eq!(&p[..13], b"meshnode/1 XX");
    assert_eq!(&p[13..21], &common::vector("node_id")[..]);
    assert_eq!(&p[21..], &common::vector("noise_responder_node_id")[..]);

    // The Noise messages inside the frames are what Noise XX computes from the stated keys alone.
    let xx = noise_xx(&e_i, &e_r);
    let (ia, ib) = (identity().node_id(), responder().node_id());
    let mut session_id = None;
    for (i, (kind, src, dst)) in [
        (Kind::Handshake1, ia, ib),
        (Kind::Handshake2, ib, ia),
        (Kind::Handshake3, ia, ib),
    ]
    .into_iter()
    .enumerate()
    {
        let v = common::vector(&format!("noise_handshake_{}", i + 1));
        let (h, body) = decode(&v).unwrap();
        assert_eq!((h.kind, h.ttl, h.src, h.dst), (kind, 7, src, dst));
        let Body::Handshake(hs) = body else {
            panic!("{body:?}")
        };
        assert_eq!(*session_id.get_or_insert(hs.session_id), hs.session_id);
        assert_eq!(hs.noise, &xx.messages[i][..], "message {}", i + 1);
        assert_eq!(hs.noise.len(), [32, 128, 96][i]);
    }
    assert_eq!(
        &common::vector("noise_handshake_1")[23..],
        &x25519_public(&e_i)
    );
    assert_eq!(
        &common::vector("noise_handshake_2")[23..55],
        &x25519_public(&e_r)
    );
    assert_eq!(xx.h, key("noise_handshake_hash"));
    // The first Split() output is initiator to responder; meshnode's keys are these.
    assert_eq!((xx.k1, xx.k2), (key("noise_k_i2r"), key("noise_k_r2i")));

    // snow, the Noise library meshnode runs, agrees on `h` given the same ephemerals.
    fn build<'a>(s: &'a [u8], e: &'a [u8], p: &'a [u8]) -> snow::Builder<'a> {
        snow::Builder::with_resolver(NOISE_PARAMS.parse().unwrap(), Box::new(FixedResolver))
            .local_private_key(s)
            .unwrap()
            .prologue(p)
            .unwrap()
            .fixed_ephemeral_key_for_testing_only(e)
    }
    let mut ini = build(&INITIATOR_X25519_SECRET, &e_i, &p)
        .build_initiator()
        .unwrap();
    let mut res = build(&RESPONDER_X25519_SECRET, &e_r, &p)
        .build_responder()
        .unwrap();
    let mut buf = [0u8; 256];
    let mut scratch = [0u8; 256];
    let n = ini.write_message(&[], &mut buf).unwrap();
    res.read_message(&buf[..n], &mut scratch).unwrap();
    let n = res
        .write_message(&responder().public().ed25519, &mut buf)
        .unwrap();
    ini.read_message(&buf[..n], &mut scratch).unwrap();
    let n = ini
        .write_message(&identity().public().ed25519, &mut buf)
        .unwrap();
    assert_eq!(&buf[..n], &xx.messages[2][..]);
    res.read_message(&buf[..n], &mut scratch).unwrap();
    assert_eq!(ini.get_handshake_hash(), &xx.h[..]);
    assert_eq!(res.get_handshake_hash(), &xx.h[..]);

    // The first TRANSPORT frame each way: session id of the handshake, epoch 0, nonce 0, padded to 32 bytes.
    for (name, k, src, dst, message) in [
        ("noise_transport_i2r", xx.k1, ia, ib, I2R_MESSAGE),
        ("noise_transport_r2i", xx.k2, ib, ia, R2I_MESSAGE),
    ] {
        let v = common::vector(name);
        let (h, body) = decode(&v).unwrap();
        assert_eq!(
            (h.kind, h.ttl, h.src, h.dst),
            (Kind::Transport, 7, src, dst)
        );
        let Body::Sealed(s) = body else {
            panic!("{body:?}")
        };
        assert_eq!(
            (Some(s.session_id), s.epoch, s.padded, s.nonce),
            (session_id, 0, true, 0)
        );
        let ad = sealed_associated_data(&v).unwrap();
        let plaintext = noise_decrypt(&k, 0, &ad, s.ciphertext_and_tag).unwrap();
        assert_eq!(plaintext, padded(message), "{name}");
    }
}
