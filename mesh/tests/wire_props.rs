//! Property tests of the frame codec: decoding never panics, encode/decode round-trips every kind, signed frames
//! do not survive a flipped bit, and truncation never yields anything but an error or a shorter valid frame.
//!
//! Invariant: all randomness comes from proptest's deterministic runner and fixed key seeds; no test sleeps.

use mesh::identity::{Identity, NodeId, PublicIdentity};
use mesh::wire::{
    decode, encode_body, Announce, Body, Broadcast, Channel, Handshake, Header, Kind, LinkAck,
    Sealed, UnknownSession, WireError, HEADER_LEN, MAX_TTL,
};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

/// A body with owned parts, from which a borrowing [`Body`] is made.
#[derive(Clone, Debug)]
enum OwnedBody {
    Announce {
        ed25519: [u8; 32],
        x25519: [u8; 32],
        capabilities: u16,
        nickname: String,
        signature: [u8; 64],
    },
    Broadcast {
        message: Vec<u8>,
        signature: [u8; 64],
    },
    Handshake {
        session_id: u8,
        noise: Vec<u8>,
    },
    Sealed {
        session_id: u8,
        epoch: u8,
        padded: bool,
        nonce: u64,
        ciphertext_and_tag: Vec<u8>,
    },
    UnknownSession {
        session_id: u8,
        epoch_flags: u8,
    },
    Channel {
        channel_tag: [u8; 8],
        nonce: [u8; 24],
        ciphertext_and_tag: Vec<u8>,
    },
    /// 1..=32 keys of 12 bytes.
    LinkAck {
        keys: Vec<u8>,
    },
}

impl OwnedBody {
    fn body(&self) -> Body<'_> {
        match self {
            OwnedBody::Announce {
                ed25519,
                x25519,
                capabilities,
                nickname,
                signature,
            } => Body::Announce(Announce {
                public: PublicIdentity {
                    ed25519: *ed25519,
                    x25519: *x25519,
                },
                capabilities: *capabilities,
                nickname,
                signature: *signature,
            }),
            OwnedBody::Broadcast { message, signature } => Body::Broadcast(Broadcast {
                message,
                signature: *signature,
            }),
            OwnedBody::Handshake { session_id, noise } => Body::Handshake(Handshake {
                session_id: *session_id,
                noise,
            }),
            OwnedBody::Sealed {
                session_id,
                epoch,
                padded,
                nonce,
                ciphertext_and_tag,
            } => Body::Sealed(Sealed {
                session_id: *session_id,
                epoch: *epoch,
                padded: *padded,
                nonce: *nonce,
                ciphertext_and_tag,
            }),
            OwnedBody::UnknownSession {
                session_id,
                epoch_flags,
            } => Body::UnknownSession(UnknownSession {
                session_id: *session_id,
                epoch_flags: *epoch_flags,
            }),
            OwnedBody::Channel {
                channel_tag,
                nonce,
                ciphertext_and_tag,
            } => Body::Channel(Channel {
                channel_tag: *channel_tag,
                nonce: *nonce,
                ciphertext_and_tag,
            }),
            OwnedBody::LinkAck { keys } => {
                Body::LinkAck(LinkAck::parse(keys).expect("strategy makes whole keys"))
            }
        }
    }
}

fn bytes<const N: usize>() -> impl Strategy<Value = [u8; N]> {
    prop::collection::vec(any::<u8>(), N).prop_map(|v| v.try_into().unwrap())
}

/// A nickname of at most 32 bytes of UTF-8 (up to 8 characters of up to 4 bytes).
fn nickname() -> impl Strategy<Value = String> {
    "\\PC{0,8}".prop_filter("at most 32 bytes", |s| s.len() <= 32)
}

/// A kind with a body of its layout.
fn kind_and_body() -> impl Strategy<Value = (Kind, OwnedBody)> {
    prop_oneof![
        (
            bytes::<32>(),
            bytes::<32>(),
            any::<u16>(),
            nickname(),
            bytes::<64>()
        )
            .prop_map(|(ed25519, x25519, capabilities, nickname, signature)| (
                Kind::Announce,
                OwnedBody::Announce {
                    ed25519,
                    x25519,
                    capabilities,
                    nickname,
                    signature
                }
            )),
        (prop::collection::vec(any::<u8>(), 1..=1024), bytes::<64>()).prop_map(
            |(message, signature)| (Kind::Broadcast, OwnedBody::Broadcast { message, signature })
        ),
        (
            prop::sample::select(vec![Kind::Handshake1, Kind::Handshake2, Kind::Handshake3]),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 1..=512)
        )
            .prop_map(|(kind, session_id, noise)| (
                kind,
                OwnedBody::Handshake { session_id, noise }
            )),
        (
            prop::sample::select(vec![Kind::Transport, Kind::Ack, Kind::Close]),
            any::<u8>(),
            0u8..128,
            any::<bool>(),
            0..u64::MAX,
            prop::collection::vec(any::<u8>(), 16..=300)
        )
            .prop_map(
                |(kind, session_id, epoch, padded, nonce, ciphertext_and_tag)| (
                    kind,
                    OwnedBody::Sealed {
                        session_id,
                        epoch,
                        padded,
                        nonce,
                        ciphertext_and_tag
                    }
                )
            ),
        (any::<u8>(), any::<u8>()).prop_map(|(session_id, epoch_flags)| (
            Kind::UnknownSession,
            OwnedBody::UnknownSession {
                session_id,
                epoch_flags
            }
        )),
        (
            bytes::<8>(),
            bytes::<24>(),
            prop::collection::vec(any::<u8>(), 16..=300)
        )
            .prop_map(|(channel_tag, nonce, ciphertext_and_tag)| (
                Kind::Channel,
                OwnedBody::Channel {
                    channel_tag,
                    nonce,
                    ciphertext_and_tag
                }
            )),
        (1usize..=32)
            .prop_flat_map(|n| prop::collection::vec(any::<u8>(), n * 12))
            .prop_map(|keys| (Kind::LinkAck, OwnedBody::LinkAck { keys })),
    ]
}

/// A node id that is not the broadcast address.
fn node_id() -> impl Strategy<Value = NodeId> {
    bytes::<8>()
        .prop_filter("not broadcast", |b| *b != [0xff; 8])
        .prop_map(NodeId)
}

/// A valid header of `kind`: broadcast kinds go to everyone, the others to a node other than the source;
/// link-local kinds carry TTL 0.
fn header(kind: Kind) -> impl Strategy<Value = Header> {
    (0..=MAX_TTL, any::<u32>(), node_id(), node_id())
        .prop_filter("dst != src", |(_, _, src, dst)| src != dst)
        .prop_map(move |(ttl, frame_id, src, dst)| Header {
            kind,
            ttl: if kind.is_link_local() { 0 } else { ttl },
            frame_id,
            src,
            dst: if kind.is_broadcast() {
                NodeId::BROADCAST
            } else {
                dst
            },
        })
}

fn valid_frame() -> impl Strategy<Value = (Header, OwnedBody)> {
    kind_and_body().prop_flat_map(|(kind, body)| (header(kind), Just(body)))
}

/// A signed ANNOUNCE or BROADCAST frame and the sender's public keys.
fn signed_frame() -> impl Strategy<Value = (Vec<u8>, PublicIdentity)> {
    (
        any::<bool>(),
        any::<u8>(),
        any::<u32>(),
        0..=MAX_TTL,
        any::<u16>(),
        nickname(),
        prop::collection::vec(any::<u8>(), 1..=64),
    )
        .prop_map(|(announce, seed, frame_id, ttl, caps, nick, message)| {
            let id = Identity::from_secrets([seed; 32], [seed.wrapping_add(1); 32]);
            let frame = if announce {
                Announce::sign_frame(&id, frame_id, ttl, caps, &nick).unwrap()
            } else {
                Broadcast::sign_frame(&id, frame_id, ttl, &message).unwrap()
            };
            (frame, *id.public())
        })
}

/// True when `frame` decodes as a signed kind whose signature checks out for `sender`.
fn verifies(frame: &[u8], sender: &PublicIdentity) -> bool {
    match decode(frame) {
        Ok((h, Body::Announce(a))) => a.verify(&h).is_ok() && a.public == *sender,
        Ok((h, Body::Broadcast(b))) => b.verify(&h, sender).is_ok(),
        _ => false,
    }
}

/// `cases` runs from a fixed seed, so every run of the suite checks the same inputs.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(0x6d65_7368),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(20_000))]

    #[test]
    fn decode_arbitrary_bytes_never_panics(frame in prop::collection::vec(any::<u8>(), 0..=4200)) {
        let _ = decode(&frame);
    }

    /// Random bodies behind a plausible header reach the body parsers far more often than fully random bytes.
    #[test]
    fn decode_arbitrary_body_never_panics(
        kind in 1u8..=0x1f,
        ttl in 0u8..=16,
        dst_broadcast in any::<bool>(),
        body in prop::collection::vec(any::<u8>(), 0..=1200),
    ) {
        let mut frame = vec![0x20 | kind, ttl, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8];
        frame.extend_from_slice(&if dst_broadcast { [0xff; 8] } else { [9; 8] });
        frame.extend_from_slice(&body);
        if let Ok((h, b)) = decode(&frame) {
            prop_assert!(b.fits(h.kind));
            prop_assert_eq!(HEADER_LEN + b.buffer_len(), frame.len());
        }
    }
}

proptest! {
    #![proptest_config(config(2_000))]

    #[test]
    fn encode_then_decode_is_identity((header, owned) in valid_frame()) {
        let body = owned.body();
        let frame = encode_body(&header, &body).unwrap();
        prop_assert_eq!(frame.len(), HEADER_LEN + body.buffer_len());
        let (h, b) = decode(&frame).unwrap();
        prop_assert_eq!(h, header);
        prop_assert_eq!(b, body);
        prop_assert_eq!(encode_body(&h, &b).unwrap(), frame);
    }

    #[test]
    fn truncation_gives_an_error_or_a_shorter_valid_frame(
        (header, owned) in valid_frame(),
        cut in any::<prop::sample::Index>(),
    ) {
        let frame = encode_body(&header, &owned.body()).unwrap();
        let len = cut.index(frame.len());
        match decode(&frame[..len]) {
            Err(_) => {}
            Ok((h, b)) => {
                prop_assert_eq!(h, header);
                prop_assert_eq!(encode_body(&h, &b).unwrap(), &frame[..len]);
            }
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn a_flipped_bit_breaks_a_signed_frame((frame, sender) in signed_frame(), bit in any::<prop::sample::Index>()) {
        prop_assert!(verifies(&frame, &sender));
        let bit = bit.index(frame.len() * 8);
        let mut m = frame.clone();
        m[bit / 8] ^= 1 << (bit % 8);
        if bit / 8 == 1 {
            // The TTL is the one byte relays change (PROTOCOL.md §4.4): valid up to MAX_TTL, refused above.
            let ttl = m[1];
            prop_assert_eq!(verifies(&m, &sender), ttl <= MAX_TTL);
            if ttl > MAX_TTL {
                prop_assert_eq!(decode(&m).unwrap_err(), WireError::BadTtl(ttl));
            }
        } else {
            prop_assert!(!verifies(&m, &sender), "bit {} still verifies", bit);
        }
    }
}

/// Every single-bit flip outside the TTL of one announce and one broadcast, exhaustively.
#[test]
fn every_bit_of_fixed_signed_frames_is_covered() {
    let id = Identity::from_secrets([0x01; 32], [0x02; 32]);
    for frame in [
        Announce::sign_frame(&id, 0x0a0b_0c0d, 7, 3, "alice").unwrap(),
        Broadcast::sign_frame(&id, 0x0a0b_0c0e, 7, b"hello mesh").unwrap(),
    ] {
        assert!(verifies(&frame, id.public()));
        for bit in 0..frame.len() * 8 {
            if bit / 8 == 1 {
                continue;
            }
            let mut m = frame.clone();
            m[bit / 8] ^= 1 << (bit % 8);
            assert!(!verifies(&m, id.public()), "bit {bit} still verifies");
        }
    }
}
