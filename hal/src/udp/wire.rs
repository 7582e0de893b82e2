//! The UDP backend's datagram format: encoding and decoding of the six message types (see the module docs of
//! `hal::udp` for the protocol they implement).
//!
//! Invariant: `decode` reads only through bounds-checked slices and returns a typed [`Malformed`] for every input
//! it does not accept, so any byte string from the network yields `Ok` or `Err`, never a panic; `encode` of a
//! `Message` that `decode` returned gives back the same bytes.

use crate::{Advertisement, ADVERTISEMENT_DATA_MAX, ATT_HEADER_LEN, ATT_MTU_MAX, ATT_MTU_MIN};

/// The four bytes every meshnode UDP datagram starts with.
pub const MAGIC: [u8; 4] = *b"MNUD";
/// The protocol version this backend speaks; datagrams of any other version are dropped and counted.
pub const VERSION: u8 = 1;
/// Bytes before a message's body: magic (4), version (1), type (1), sender instance (8).
pub const HEADER_LEN: usize = 14;
/// The longest datagram of this protocol: a data message carrying `ATT_MTU_MAX - 3` bytes.
pub const MAX_DATAGRAM: usize = HEADER_LEN + 8 + (ATT_MTU_MAX - ATT_HEADER_LEN) as usize;

const TYPE_BEACON: u8 = 1;
const TYPE_CONNECT: u8 = 2;
const TYPE_ACCEPT: u8 = 3;
const TYPE_REJECT: u8 = 4;
const TYPE_DATA: u8 = 5;
const TYPE_KEEPALIVE: u8 = 6;
const TYPE_DISCONNECT: u8 = 7;

/// One decoded message; link ids are the raw `u32`s of the radios' `LinkId`s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// "I am advertising this, and offer this ATT MTU."
    Beacon {
        /// The ATT MTU the sender offers.
        att_mtu: u16,
        /// What it advertises.
        advertisement: Advertisement,
    },
    /// "Please open a link; my end is `src_link`."
    Connect {
        /// The initiator's link id.
        src_link: u32,
        /// The ATT MTU the initiator offers.
        att_mtu: u16,
    },
    /// "Your link `dst_link` is up; my end is `src_link`, at ATT MTU `att_mtu` (min of both offers)."
    Accept {
        /// The initiator's link id.
        dst_link: u32,
        /// The acceptor's link id.
        src_link: u32,
        /// The agreed ATT MTU.
        att_mtu: u16,
    },
    /// "No link for your connect `dst_link`."
    Reject {
        /// The initiator's link id.
        dst_link: u32,
    },
    /// One packet on the receiver's link `dst_link`, the `seq`th of its direction.
    Data {
        /// The receiver's link id.
        dst_link: u32,
        /// Sequence number within the link direction, from 0, wrapping.
        seq: u32,
        /// The packet, 1..=att_mtu-3 bytes.
        payload: Vec<u8>,
    },
    /// "Link `dst_link` is still alive."
    Keepalive {
        /// The receiver's link id.
        dst_link: u32,
    },
    /// "I closed my end `src_link`" (of an established link or a connect in progress).
    Disconnect {
        /// The sender's link id.
        src_link: u32,
    },
}

/// A decoded datagram: who sent it (the sender's random instance id) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// The sending radio's instance id, fresh for every `UdpRadio`.
    pub instance: u64,
    /// The message.
    pub message: Message,
}

/// Why a datagram was not accepted by the decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// It does not start with [`MAGIC`]: not ours.
    BadMagic,
    /// Ours, but of another protocol version.
    BadVersion,
    /// Shorter than its header or its type's body.
    Truncated,
    /// A type byte this version does not know.
    UnknownType,
    /// Longer than [`MAX_DATAGRAM`] or than its type's body.
    Oversize,
    /// A field out of range: an ATT MTU outside 23..=517, advertisement data too long, an empty packet.
    BadField,
}

/// Reads fixed-size fields from the front of a slice, failing with `Truncated` past its end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, Malformed> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Malformed> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn mtu(&mut self) -> Result<u16, Malformed> {
        let m = self.u16()?;
        if (ATT_MTU_MIN..=ATT_MTU_MAX).contains(&m) {
            Ok(m)
        } else {
            Err(Malformed::BadField)
        }
    }

    /// Succeeds only when every byte was read.
    fn end(&self) -> Result<(), Malformed> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Malformed::Oversize)
        }
    }
}

/// Decodes one datagram, checking magic, version, type, lengths and field ranges.
pub fn decode(bytes: &[u8]) -> Result<Datagram, Malformed> {
    if bytes.len() > MAX_DATAGRAM {
        return Err(Malformed::Oversize);
    }
    let mut r = Reader(bytes);
    if r.array::<4>().map_err(|_| Malformed::BadMagic)? != MAGIC {
        return Err(Malformed::BadMagic);
    }
    if r.u8()? != VERSION {
        return Err(Malformed::BadVersion);
    }
    let kind = r.u8()?;
    let instance = u64::from_be_bytes(r.array()?);
    let message = match kind {
        TYPE_BEACON => {
            let att_mtu = r.mtu()?;
            let uuid = u128::from_be_bytes(r.array()?);
            let len = usize::from(r.u8()?);
            if len > ADVERTISEMENT_DATA_MAX {
                return Err(Malformed::BadField);
            }
            let data = r.take(len)?;
            let advertisement = Advertisement::new(uuid, data).map_err(|_| Malformed::BadField)?;
            Message::Beacon {
                att_mtu,
                advertisement,
            }
        }
        TYPE_CONNECT => Message::Connect {
            src_link: r.u32()?,
            att_mtu: r.mtu()?,
        },
        TYPE_ACCEPT => Message::Accept {
            dst_link: r.u32()?,
            src_link: r.u32()?,
            att_mtu: r.mtu()?,
        },
        TYPE_REJECT => Message::Reject { dst_link: r.u32()? },
        TYPE_DATA => {
            let dst_link = r.u32()?;
            let seq = r.u32()?;
            let payload = r.take(r.0.len())?;
            if payload.is_empty() {
                return Err(Malformed::BadField);
            }
            Message::Data {
                dst_link,
                seq,
                payload: payload.to_vec(),
            }
        }
        TYPE_KEEPALIVE => Message::Keepalive { dst_link: r.u32()? },
        TYPE_DISCONNECT => Message::Disconnect { src_link: r.u32()? },
        _ => return Err(Malformed::UnknownType),
    };
    r.end()?;
    Ok(Datagram { instance, message })
}

/// Encodes `message` from the radio with instance id `instance` into `out` (cleared first).
pub fn encode(instance: u64, message: &Message, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    let kind = match message {
        Message::Beacon { .. } => TYPE_BEACON,
        Message::Connect { .. } => TYPE_CONNECT,
        Message::Accept { .. } => TYPE_ACCEPT,
        Message::Reject { .. } => TYPE_REJECT,
        Message::Data { .. } => TYPE_DATA,
        Message::Keepalive { .. } => TYPE_KEEPALIVE,
        Message::Disconnect { .. } => TYPE_DISCONNECT,
    };
    out.push(kind);
    out.extend_from_slice(&instance.to_be_bytes());
    match message {
        Message::Beacon {
            att_mtu,
            advertisement,
        } => {
            out.extend_from_slice(&att_mtu.to_be_bytes());
            out.extend_from_slice(&advertisement.service_uuid().to_be_bytes());
            let data = advertisement.data();
            // An Advertisement holds at most ADVERTISEMENT_DATA_MAX (10) bytes.
            out.push(data.len() as u8);
            out.extend_from_slice(data);
        }
        Message::Connect { src_link, att_mtu } => {
            out.extend_from_slice(&src_link.to_be_bytes());
            out.extend_from_slice(&att_mtu.to_be_bytes());
        }
        Message::Accept {
            dst_link,
            src_link,
            att_mtu,
        } => {
            out.extend_from_slice(&dst_link.to_be_bytes());
            out.extend_from_slice(&src_link.to_be_bytes());
            out.extend_from_slice(&att_mtu.to_be_bytes());
        }
        Message::Reject { dst_link } | Message::Keepalive { dst_link } => {
            out.extend_from_slice(&dst_link.to_be_bytes());
        }
        Message::Data {
            dst_link,
            seq,
            payload,
        } => {
            out.extend_from_slice(&dst_link.to_be_bytes());
            out.extend_from_slice(&seq.to_be_bytes());
            out.extend_from_slice(payload);
        }
        Message::Disconnect { src_link } => out.extend_from_slice(&src_link.to_be_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(m: Message) {
        let mut buf = Vec::new();
        encode(0x0102_0304_0506_0708, &m, &mut buf);
        assert!(buf.len() <= MAX_DATAGRAM);
        let d = decode(&buf).unwrap();
        assert_eq!(d.instance, 0x0102_0304_0506_0708);
        assert_eq!(d.message, m);
        // Every strict prefix is refused (a data message is valid down to a one-byte packet).
        let shortest = match m {
            Message::Data { .. } => HEADER_LEN + 9,
            _ => buf.len(),
        };
        for n in 0..shortest {
            assert!(decode(&buf[..n]).is_err(), "prefix of {n} bytes accepted");
        }
        buf.push(0);
        if !matches!(m, Message::Data { .. }) {
            assert_eq!(decode(&buf), Err(Malformed::Oversize));
        }
    }

    #[test]
    fn every_type_round_trips() {
        let advertisement = Advertisement::new(7, &[1, 2, 3]).unwrap();
        round_trip(Message::Beacon {
            att_mtu: 247,
            advertisement,
        });
        round_trip(Message::Connect {
            src_link: 3,
            att_mtu: 23,
        });
        round_trip(Message::Accept {
            dst_link: 3,
            src_link: 9,
            att_mtu: 517,
        });
        round_trip(Message::Reject { dst_link: 1 });
        round_trip(Message::Data {
            dst_link: 4,
            seq: u32::MAX,
            payload: vec![0xaa; 514],
        });
        round_trip(Message::Keepalive { dst_link: 8 });
        round_trip(Message::Disconnect { src_link: 8 });
    }

    #[test]
    fn header_faults_are_told_apart() {
        let mut buf = Vec::new();
        encode(1, &Message::Keepalive { dst_link: 2 }, &mut buf);
        assert_eq!(decode(b"hello"), Err(Malformed::BadMagic));
        assert_eq!(decode(b""), Err(Malformed::BadMagic));
        let mut v = buf.clone();
        v[4] = 2;
        assert_eq!(decode(&v), Err(Malformed::BadVersion));
        let mut t = buf.clone();
        t[5] = 99;
        assert_eq!(decode(&t), Err(Malformed::UnknownType));
        assert_eq!(decode(&buf[..10]), Err(Malformed::Truncated));
        assert_eq!(decode(&vec![0; MAX_DATAGRAM + 1]), Err(Malformed::Oversize));
    }

    #[test]
    fn out_of_range_fields_are_refused() {
        let mut buf = Vec::new();
        encode(
            1,
            &Message::Connect {
                src_link: 0,
                att_mtu: 23,
            },
            &mut buf,
        );
        let n = buf.len();
        buf[n - 2..].copy_from_slice(&22u16.to_be_bytes());
        assert_eq!(decode(&buf), Err(Malformed::BadField));
        buf[n - 2..].copy_from_slice(&518u16.to_be_bytes());
        assert_eq!(decode(&buf), Err(Malformed::BadField));
        let mut empty = Vec::new();
        encode(
            1,
            &Message::Data {
                dst_link: 0,
                seq: 0,
                payload: vec![],
            },
            &mut empty,
        );
        assert_eq!(decode(&empty), Err(Malformed::BadField));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decode_of_a_valid_header_never_panics(kind in 0u8..10, tail in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut bytes = MAGIC.to_vec();
            bytes.push(VERSION);
            bytes.push(kind);
            bytes.extend_from_slice(&tail);
            if let Ok(d) = decode(&bytes) {
                let mut again = Vec::new();
                encode(d.instance, &d.message, &mut again);
                prop_assert_eq!(again, bytes);
            }
        }
    }
}
