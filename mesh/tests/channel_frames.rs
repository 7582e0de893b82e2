//! Sealing and opening CHANNEL frames (PROTOCOL.md §5.6, §7.9) end to end: round trips, wrong passwords, another
//! channel's frames, and tampering with every byte.
//!
//! Invariant: `open_frame` gives back the sealed plaintext for the right key and an error otherwise; it never
//! returns other bytes. Keys use cheap Argon2id parameters and RNGs fixed seeds, so every run is the same.

use mesh::channel::{open_frame, seal_frame, ChannelError, ChannelKey, ChannelParams};
use mesh::identity::NodeId;
use mesh::wire::{encode, Header, Kind, WireError, HEADER_LEN};
use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const CHEAP: ChannelParams = ChannelParams::new(64, 1, 1);
const SRC: NodeId = NodeId([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
/// Byte 1 of a frame: the TTL, which relays change and nothing authenticates.
const TTL_OFFSET: usize = 1;

fn key(name: &str, password: &[u8]) -> ChannelKey {
    ChannelKey::derive_with(name, password, CHEAP).unwrap()
}

fn seal(key: &ChannelKey, plaintext: &[u8], seed: u64) -> Vec<u8> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    seal_frame(key, SRC, 0x0102_0304, 7, plaintext, &mut rng).unwrap()
}

#[test]
fn round_trip_and_fresh_nonces() {
    let k = key("general", b"hunter2 hunter2");
    let joined = key("general", b"hunter2 hunter2");
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let a = seal_frame(&k, SRC, 1, 7, b"hello", &mut rng).unwrap();
    let b = seal_frame(&k, SRC, 1, 7, b"hello", &mut rng).unwrap();
    assert_ne!(a, b, "each frame draws its own nonce");
    assert_eq!(a.len(), HEADER_LEN + 32 + 5 + 16);
    assert_eq!(open_frame(&joined, &a).unwrap(), b"hello");
    assert_eq!(open_frame(&joined, &b).unwrap(), b"hello");
}

#[test]
fn wrong_password_is_reported_as_such() {
    let frame = seal(&key("general", b"right password"), b"secret plans", 2);
    let err = open_frame(&key("general", b"wrong password"), &frame).unwrap_err();
    assert_eq!(
        err,
        ChannelError::WrongPassword {
            channel: "general".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "cannot read a message on channel #general: wrong password, or the sender uses another one"
    );
}

#[test]
fn another_channels_frame_is_a_tag_mismatch() {
    let frame = seal(&key("random", b"same password"), b"hi", 3);
    let err = open_frame(&key("general", b"same password"), &frame).unwrap_err();
    assert_eq!(
        err,
        ChannelError::OtherChannel {
            channel: "general".into()
        }
    );
    assert!(err.to_string().contains("another channel, not #general"));
}

#[test]
fn ttl_is_the_only_unauthenticated_byte() {
    let k = key("general", b"pw pw pw");
    let frame = seal(&k, b"tamper with me", 4);
    for i in (0..frame.len()).filter(|&i| i != TTL_OFFSET) {
        for flip in [0x01u8, 0x80] {
            let mut bad = frame.clone();
            bad[i] ^= flip;
            assert!(
                open_frame(&k, &bad).is_err(),
                "byte {i} flipped with {flip:#x} was accepted"
            );
        }
    }
    // Any valid TTL opens (relays decrement it); one above 15 is refused by the header rules.
    for ttl in 0..=15 {
        let mut relayed = frame.clone();
        relayed[TTL_OFFSET] = ttl;
        assert_eq!(open_frame(&k, &relayed).unwrap(), b"tamper with me");
    }
    let mut bad_ttl = frame.clone();
    bad_ttl[TTL_OFFSET] = 16;
    assert_eq!(
        open_frame(&k, &bad_ttl),
        Err(ChannelError::Malformed(WireError::BadTtl(16)))
    );
    // Truncation and extension are refused too.
    assert!(open_frame(&k, &frame[..frame.len() - 1]).is_err());
    let mut longer = frame.clone();
    longer.push(0);
    assert!(open_frame(&k, &longer).is_err());
}

#[test]
fn other_frames_are_refused_with_their_reason() {
    let k = key("general", b"pw pw pw");
    assert_eq!(
        open_frame(&k, &[0u8; 10]),
        Err(ChannelError::Malformed(WireError::Truncated))
    );
    let header = Header {
        kind: Kind::UnknownSession,
        ttl: 7,
        frame_id: 1,
        src: SRC,
        dst: NodeId([9; 8]),
    };
    let frame = encode(&header, &[1, 2]).unwrap();
    assert_eq!(
        open_frame(&k, &frame),
        Err(ChannelError::NotChannelFrame(0x09))
    );
    // A CHANNEL body too short for tag, nonce and AEAD tag.
    let mut short = seal(&k, b"", 5);
    short.pop();
    assert_eq!(
        open_frame(&k, &short),
        Err(ChannelError::Malformed(WireError::Truncated))
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, rng_seed: proptest::test_runner::RngSeed::Fixed(7), ..ProptestConfig::default() })]

    /// Any plaintext up to a few hundred bytes survives a round trip, and no other key opens it.
    #[test]
    fn any_plaintext_round_trips(plaintext in proptest::collection::vec(any::<u8>(), 0..300), seed in any::<u64>()) {
        let k = ChannelKey::from_bytes("general", [0x44; 32]).unwrap();
        let frame = seal(&k, &plaintext, seed);
        prop_assert_eq!(open_frame(&k, &frame).unwrap(), plaintext);
        let other = ChannelKey::from_bytes("general", [0x45; 32]).unwrap();
        let is_wrong_password = matches!(open_frame(&other, &frame), Err(ChannelError::WrongPassword { .. }));
        prop_assert!(is_wrong_password);
    }
}
