//! Golden vectors of PROTOCOL.md §8.4 (channels), checked byte for byte: salt, Argon2id keys with cheap and with
//! the default parameters, and a sealed CHANNEL frame made with a fixed RNG seed.
//!
//! Invariant: a change to the channel key derivation or to the sealing fails here until PROTOCOL.md changes with
//! it. The keys were also cross-checked against the Argon2 reference implementation when the vectors were written.

mod common;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::XChaCha20Poly1305;
use mesh::channel::{
    channel_salt, open_frame, seal_frame, ChannelKey, ChannelParams, CHANNEL_SALT_LABEL,
};
use mesh::identity::Identity;
use mesh::wire::{channel_associated_data, channel_tag, decode, Body, Kind};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const NAME: &str = "general";
const PASSWORD: &[u8] = b"correct horse battery staple";
const CHEAP: ChannelParams = ChannelParams::new(64, 1, 1);
const PLAINTEXT: &[u8] = b"meet at the north gate";

fn cheap_key() -> ChannelKey {
    ChannelKey::derive_with(NAME, PASSWORD, CHEAP).unwrap()
}

#[test]
fn salt_vector() {
    assert_eq!(CHANNEL_SALT_LABEL.len(), 23);
    assert_eq!(
        channel_salt(NAME).to_vec(),
        common::vector("channel_salt_general")
    );
}

#[test]
fn cheap_key_vector_and_determinism() {
    let key = cheap_key();
    assert_eq!(key.as_bytes().to_vec(), common::vector("channel_key_cheap"));
    assert_eq!(key.as_bytes(), cheap_key().as_bytes());
    assert_eq!((key.name(), key.tag()), (NAME, channel_tag(NAME)));
    // Every input changes the key: name, password, each parameter.
    let others = [
        ChannelKey::derive_with("General", PASSWORD, CHEAP).unwrap(),
        ChannelKey::derive_with(NAME, b"correct horse battery stapler", CHEAP).unwrap(),
        ChannelKey::derive_with(NAME, PASSWORD, ChannelParams::new(72, 1, 1)).unwrap(),
        ChannelKey::derive_with(NAME, PASSWORD, ChannelParams::new(64, 2, 1)).unwrap(),
        ChannelKey::derive_with(NAME, PASSWORD, ChannelParams::new(64, 1, 2)).unwrap(),
    ];
    for other in &others {
        assert_ne!(other.as_bytes(), key.as_bytes());
    }
}

#[test]
fn default_params_are_the_documented_ones() {
    assert_eq!(ChannelParams::DEFAULT, ChannelParams::new(19456, 2, 1));
    assert_eq!(ChannelParams::default(), ChannelParams::DEFAULT);
}

#[test]
fn channel_frame_vector() {
    let key = cheap_key();
    let src = Identity::from_secrets([0x01; 32], [0x02; 32]).node_id();
    let mut rng = ChaCha20Rng::from_seed([0x07; 32]);
    let frame = seal_frame(&key, src, 0x0a0b_0c10, 7, PLAINTEXT, &mut rng).unwrap();
    let expected = common::vector("channel_frame");
    assert_eq!(hex::encode(&frame), hex::encode(&expected));

    // Deconstruct it independently of `open_frame`: header, tag, nonce, then the AEAD of PROTOCOL.md §5.6.
    let (header, body) = decode(&expected).unwrap();
    assert_eq!(
        (header.kind, header.ttl, header.frame_id, header.src),
        (Kind::Channel, 7, 0x0a0b_0c10, src)
    );
    assert!(header.dst.is_broadcast());
    let Body::Channel(c) = body else {
        panic!("not a channel body")
    };
    assert_eq!(c.channel_tag, channel_tag(NAME));
    assert_eq!(
        hex::encode(c.nonce),
        "f400927857aaf64114f561baacb379708c79a1dc1476ab57"
    );
    let ad = channel_associated_data(&expected).unwrap();
    let plain = XChaCha20Poly1305::new(key.as_bytes().into())
        .decrypt(
            &c.nonce.into(),
            Payload {
                msg: c.ciphertext_and_tag,
                aad: &ad,
            },
        )
        .unwrap();
    assert_eq!(plain, PLAINTEXT);
    assert_eq!(open_frame(&key, &expected).unwrap(), PLAINTEXT);
}

#[test]
fn section_8_1_channel_vector_opens() {
    // The §8.1 `channel` vector (key 33 × 32, plaintext "hi all") opens with a key made from those bytes.
    let key = ChannelKey::from_bytes(NAME, [0x33; 32]).unwrap();
    assert_eq!(
        open_frame(&key, &common::vector("channel")).unwrap(),
        b"hi all"
    );
}
