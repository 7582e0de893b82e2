//! Whole frames: [`decode`] checks a frame's header and parses the body its kind names, and [`encode`] /
//! [`encode_body`] build a frame from a header and a body.
//!
//! Invariant: `decode` returns a [`Header`] that passed every rule of PROTOCOL.md §4.3 together with a [`Body`]
//! whose variant matches the header's kind, or a [`WireError`]; it never panics and never allocates. Signatures
//! and AEADs are not checked here: the signed bodies offer `verify`, the sealed ones belong to their keys' owners.

use alloc::vec::Vec;

use super::body::{
    Announce, Broadcast, Channel, Handshake, LinkAck, PeerSync, Sealed, UnknownSession,
};
use super::header::{FrameView, Header, Kind, WireError, HEADER_LEN, MAX_FRAME_LEN};

/// The parsed body of a frame of a known kind; which handshake message or which sealed kind it is comes from
/// [`Header::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body<'a> {
    /// ANNOUNCE (§5.1).
    Announce(Announce<'a>),
    /// BROADCAST (§5.2).
    Broadcast(Broadcast<'a>),
    /// HANDSHAKE_1, HANDSHAKE_2 or HANDSHAKE_3 (§5.3).
    Handshake(Handshake<'a>),
    /// TRANSPORT, ACK or CLOSE (§5.4).
    Sealed(Sealed<'a>),
    /// UNKNOWN_SESSION (§5.5).
    UnknownSession(UnknownSession),
    /// CHANNEL (§5.6).
    Channel(Channel<'a>),
    /// PEER_SYNC (§5.7).
    PeerSync(PeerSync<'a>),
    /// LINK_ACK (§5.8).
    LinkAck(LinkAck<'a>),
}

impl Body<'_> {
    /// True when this body is the layout of frames of `kind`.
    pub fn fits(&self, kind: Kind) -> bool {
        match self {
            Body::Announce(_) => kind == Kind::Announce,
            Body::Broadcast(_) => kind == Kind::Broadcast,
            Body::Handshake(_) => kind.is_handshake(),
            Body::Sealed(_) => kind.is_sealed(),
            Body::UnknownSession(_) => kind == Kind::UnknownSession,
            Body::Channel(_) => kind == Kind::Channel,
            Body::PeerSync(_) => kind == Kind::PeerSync,
            Body::LinkAck(_) => kind == Kind::LinkAck,
        }
    }

    /// Bytes the body takes.
    pub fn buffer_len(&self) -> usize {
        match self {
            Body::Announce(b) => b.buffer_len(),
            Body::Broadcast(b) => b.buffer_len(),
            Body::Handshake(b) => b.buffer_len(),
            Body::Sealed(b) => b.buffer_len(),
            Body::UnknownSession(b) => b.buffer_len(),
            Body::Channel(b) => b.buffer_len(),
            Body::PeerSync(b) => b.buffer_len(),
            Body::LinkAck(b) => b.buffer_len(),
        }
    }

    /// Writes the body into `buf[..self.buffer_len()]`.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Self::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) {
        match self {
            Body::Announce(b) => b.emit(buf),
            Body::Broadcast(b) => b.emit(buf),
            Body::Handshake(b) => b.emit(buf),
            Body::Sealed(b) => b.emit(buf),
            Body::UnknownSession(b) => b.emit(buf),
            Body::Channel(b) => b.emit(buf),
            Body::PeerSync(b) => b.emit(buf),
            Body::LinkAck(b) => b.emit(buf),
        }
    }
}

/// Decodes a whole frame: length bounds, header rules (PROTOCOL.md §4.3), then the body of the header's kind.
/// A frame of an unknown kind gives [`WireError::UnknownKind`] once its header passes the other checks (relays
/// forward those with [`FrameView`]).
pub fn decode(frame: &[u8]) -> Result<(Header, Body<'_>), WireError> {
    let header = Header::parse(&FrameView::new_checked(frame)?)?;
    let body = frame.get(HEADER_LEN..).ok_or(WireError::Truncated)?;
    let body = match header.kind {
        Kind::Announce => Body::Announce(Announce::parse(body)?),
        Kind::Broadcast => Body::Broadcast(Broadcast::parse(body)?),
        Kind::Handshake1 | Kind::Handshake2 | Kind::Handshake3 => {
            Body::Handshake(Handshake::parse(body)?)
        }
        Kind::Transport | Kind::Ack | Kind::Close => Body::Sealed(Sealed::parse(body)?),
        Kind::UnknownSession => Body::UnknownSession(UnknownSession::parse(body)?),
        Kind::Channel => Body::Channel(Channel::parse(body)?),
        Kind::PeerSync => Body::PeerSync(PeerSync::parse(body)?),
        Kind::LinkAck => Body::LinkAck(LinkAck::parse(body)?),
        Kind::Unknown(code) => return Err(WireError::UnknownKind(code)),
    };
    Ok((header, body))
}

/// Builds a frame from `header` and already-encoded `body` bytes. Refuses what receivers would refuse for the
/// header alone (TTL, addressing rules of PROTOCOL.md §4.3, except that an unknown kind is allowed so tests and
/// tools can make frames for relays) and frames over [`MAX_FRAME_LEN`]. The body is not checked.
pub fn encode(header: &Header, body: &[u8]) -> Result<Vec<u8>, WireError> {
    if body.len() > MAX_FRAME_LEN - HEADER_LEN {
        return Err(WireError::TooLong);
    }
    let mut frame = alloc::vec![0u8; HEADER_LEN];
    header.emit(&mut frame);
    match Header::parse(&FrameView::new_checked(&frame[..])?) {
        Ok(_) | Err(WireError::UnknownKind(_)) => {}
        Err(e) => return Err(e),
    }
    frame.extend_from_slice(body);
    Ok(frame)
}

/// Builds a frame from `header` and a parsed `body`, which must fit the header's kind ([`WireError::BadField`]
/// otherwise). Otherwise as [`encode`].
pub fn encode_body(header: &Header, body: &Body<'_>) -> Result<Vec<u8>, WireError> {
    if !body.fits(header.kind) {
        return Err(WireError::BadField);
    }
    if body.buffer_len() > MAX_FRAME_LEN - HEADER_LEN {
        return Err(WireError::TooLong);
    }
    let mut bytes = alloc::vec![0u8; body.buffer_len()];
    body.emit(&mut bytes);
    encode(header, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::NodeId;

    const A: NodeId = NodeId([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
    const B: NodeId = NodeId([0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xf0, 0x01]);

    fn header(kind: Kind, dst: NodeId) -> Header {
        Header {
            kind,
            ttl: 7,
            frame_id: 1,
            src: A,
            dst,
        }
    }

    #[test]
    fn decode_dispatches_on_kind() {
        let us = Body::UnknownSession(UnknownSession {
            session_id: 1,
            epoch_flags: 2,
        });
        let h = header(Kind::UnknownSession, B);
        let frame = encode_body(&h, &us).unwrap();
        assert_eq!(frame.len(), HEADER_LEN + 2);
        assert_eq!(decode(&frame).unwrap(), (h, us));
    }

    #[test]
    fn encode_refuses_bad_headers_and_mismatched_bodies() {
        let us = Body::UnknownSession(UnknownSession {
            session_id: 1,
            epoch_flags: 2,
        });
        assert_eq!(
            encode_body(&header(Kind::Transport, B), &us),
            Err(WireError::BadField)
        );
        assert_eq!(
            encode(&header(Kind::Announce, B), &[]),
            Err(WireError::BadDestination)
        );
        let mut h = header(Kind::Transport, B);
        h.ttl = 16;
        assert_eq!(encode(&h, &[]), Err(WireError::BadTtl(16)));
        let h = header(Kind::Transport, B);
        assert_eq!(
            encode(&h, &[0; MAX_FRAME_LEN - HEADER_LEN + 1]),
            Err(WireError::TooLong)
        );
        assert_eq!(
            encode(&h, &[0; MAX_FRAME_LEN - HEADER_LEN]).unwrap().len(),
            MAX_FRAME_LEN
        );
        let unknown = encode(&header(Kind::Unknown(0x1f), B), &[1, 2]).unwrap();
        assert_eq!(decode(&unknown), Err(WireError::UnknownKind(0x1f)));
    }
}
