//! The routing layer's golden vectors of PROTOCOL.md §8.5: inner plaintexts of TRANSPORT and ACK.

mod common;

use mesh::node::MessageId;
use mesh::route::reliable::{decode_ack, decode_transport, encode_ack, encode_transport};

#[test]
fn transport_plaintext_matches_the_spec() {
    let v = common::vector("transport_plaintext");
    assert_eq!(encode_transport(MessageId(0x0102_0304_0506_0708), b"hi"), v);
    assert_eq!(
        decode_transport(&v),
        Some((MessageId(0x0102_0304_0506_0708), &b"hi"[..]))
    );
}

#[test]
fn ack_plaintext_matches_the_spec() {
    let v = common::vector("ack_plaintext");
    let ids = [MessageId(1), MessageId(0x0102_0304_0506_0708)];
    assert_eq!(encode_ack(&ids), v);
    assert_eq!(decode_ack(&v), Some(ids.to_vec()));
}
