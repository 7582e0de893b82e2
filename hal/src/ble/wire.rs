//! The framing meshnode puts on its GATT characteristic, and the one-link-per-neighbour rule: pure functions, no
//! I/O, so they are unit-tested without BlueZ.
//!
//! Invariant: every value on the characteristic, in both directions, starts with the link's 4-byte token chosen by
//! the central; a value of exactly the token is the "close this link" signal; the first write with a new token is
//! the central's hello (token + the central's advertised node id); every later value is token + one packet.
//!
//! Why a token: BlueZ's GATT server API cannot address a notification to one central (a `Value` change or a write
//! to the `AcquireNotify` socket reaches every subscribed central), so each central keeps only the notifications
//! that carry its own token. The token also tells a peripheral which writes belong to which link.

use std::cmp::Ordering;

/// Bytes of link token at the start of every value on the characteristic.
pub const TOKEN_LEN: usize = 4;

/// What a value received on the characteristic is, once its token is known.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Exactly the token: the sender closed this link.
    Close([u8; TOKEN_LEN]),
    /// Token and a non-empty body (a hello's node id, or a packet).
    Data([u8; TOKEN_LEN], &'a [u8]),
}

/// Splits a received value; `None` when it is shorter than a token (counted and ignored by the caller).
pub fn parse(value: &[u8]) -> Option<Frame<'_>> {
    let (token, body) = value.split_first_chunk::<TOKEN_LEN>()?;
    if body.is_empty() {
        Some(Frame::Close(*token))
    } else {
        Some(Frame::Data(*token, body))
    }
}

/// First byte of a hello's body (a format version), so that a hello is never a bare token.
pub const HELLO_VERSION: u8 = 1;

/// The body of a central's hello: [`HELLO_VERSION`] then the central's advertised node id.
pub fn hello_body(node_id: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + node_id.len());
    v.push(HELLO_VERSION);
    v.extend_from_slice(node_id);
    v
}

/// The node id in a hello's body (empty for an unknown version).
pub fn hello_node_id(body: &[u8]) -> &[u8] {
    match body.split_first() {
        Some((&HELLO_VERSION, id)) => id,
        _ => &[],
    }
}

/// `token` followed by `body` (empty body: the close signal).
pub fn frame(token: [u8; TOKEN_LEN], body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(TOKEN_LEN + body.len());
    v.extend_from_slice(&token);
    v.extend_from_slice(body);
    v
}

/// The ATT MTU a link reports to the runtime when BlueZ negotiated `negotiated`: the token takes 4 bytes of every
/// value, so the runtime sees an MTU 4 smaller. `None` when that falls below the ATT minimum of 23 (a link whose
/// negotiated MTU is under 27 is refused).
pub fn reported_mtu(negotiated: u16) -> Option<u16> {
    let m = negotiated
        .min(crate::ATT_MTU_MAX)
        .checked_sub(TOKEN_LEN as u16)?;
    (m >= crate::ATT_MTU_MIN).then_some(m)
}

/// The ATT MTU a link reports to the runtime when every value must also fit in `value_max` bytes (the size of
/// one message on BlueZ's `AcquireWrite` socket): the largest packet plus the token must fit, so the runtime sees
/// `value_max - TOKEN_LEN + 3` at most. `None` when that falls below the ATT minimum of 23.
pub fn mtu_for_values(value_max: usize) -> Option<u16> {
    let m = value_max
        .checked_sub(TOKEN_LEN)?
        .saturating_add(usize::from(crate::ATT_HEADER_LEN))
        .min(usize::from(crate::ATT_MTU_MAX));
    let m = u16::try_from(m).ok()?;
    (m >= crate::ATT_MTU_MIN).then_some(m)
}

/// The one-link-per-neighbour rule when two nodes connect to each other: the node whose advertised id is smaller
/// is the central. `Some(true)`: the link where we are central is the one to keep; `Some(false)`: keep the link
/// where the peer is central; `None`: no rule applies (an id is empty or both are equal), keep both.
pub fn we_stay_central(our_id: &[u8], peer_id: &[u8]) -> Option<bool> {
    if our_id.is_empty() || peer_id.is_empty() {
        return None;
    }
    match our_id.cmp(peer_id) {
        Ordering::Less => Some(true),
        Ordering::Greater => Some(false),
        Ordering::Equal => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_frame() {
        assert_eq!(parse(&[1, 2, 3]), None);
        assert_eq!(parse(&[1, 2, 3, 4]), Some(Frame::Close([1, 2, 3, 4])));
        let v = frame([9, 8, 7, 6], &[5]);
        assert_eq!(parse(&v), Some(Frame::Data([9, 8, 7, 6], &[5][..])));
        assert_eq!(frame([1, 1, 1, 1], &[]).len(), TOKEN_LEN);
        assert_eq!(hello_node_id(&hello_body(&[7, 7])), &[7, 7]);
        assert_eq!(hello_node_id(&hello_body(&[])), &[] as &[u8]);
        assert_eq!(hello_node_id(&[9, 1]), &[] as &[u8]);
    }

    #[test]
    fn mtu_accounting() {
        assert_eq!(reported_mtu(23), None);
        assert_eq!(reported_mtu(26), None);
        assert_eq!(reported_mtu(27), Some(23));
        assert_eq!(reported_mtu(247), Some(243));
        assert_eq!(reported_mtu(600), Some(513));
        // A socket message of 242 bytes (bluer's view of BlueZ's 247) carries token + 238-byte packets.
        assert_eq!(mtu_for_values(242), Some(241));
        assert_eq!(crate::gatt_payload_len(241) + TOKEN_LEN, 242);
        assert_eq!(mtu_for_values(24), Some(23));
        assert_eq!(mtu_for_values(23), None);
        assert_eq!(mtu_for_values(3), None);
        assert_eq!(mtu_for_values(100_000), Some(517));
    }

    #[test]
    fn duplicate_rule_is_antisymmetric() {
        assert_eq!(we_stay_central(&[1], &[2]), Some(true));
        assert_eq!(we_stay_central(&[2], &[1]), Some(false));
        assert_eq!(we_stay_central(&[2], &[2]), None);
        assert_eq!(we_stay_central(&[], &[2]), None);
    }
}
