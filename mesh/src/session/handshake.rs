//! One Noise XX handshake (PROTOCOL.md §6.1–§6.3) driven through `snow` with a seeded RNG: the explicit stages of
//! each role, the payload and node-id checks, and the Split() keys.
//!
//! Invariant: a [`Handshake`] moves forward only (`mem::replace` on [`Stage`]); any failure leaves it in
//! [`Stage::Failed`] and yields no keys. Keys come out only after the peer's static key, its Ed25519 key and the
//! node id in the frame header agree (§2.2). Split keys are zeroized on drop; `Debug` prints `<redacted>`.
//! `snow` zeroizes its own key material (its DH and cipher types clear on drop).

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;
use core::{fmt, mem};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use snow::HandshakeState;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::transport::Key;
use crate::identity::{Identity, NodeId, PublicIdentity};
use crate::time::Instant;
use crate::wire::Kind;

/// The Noise protocol name (PROTOCOL.md §6.1).
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_SHA256";
/// The prologue label (PROTOCOL.md §6.1).
pub const PROLOGUE_LABEL: &[u8] = b"meshnode/1 XX";
/// Noise message lengths (PROTOCOL.md §6.2).
pub const MESSAGE_LENS: [usize; 3] = [32, 128, 96];

/// Why a handshake ended without a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeFailure {
    /// A Noise message did not verify or had the wrong length or payload.
    Noise,
    /// A message 2 or 3 that did not verify was dropped; the handshake goes on unchanged (snow restores its
    /// state after a failed read), so a forged message cannot abort it.
    Rejected,
    /// The keys presented do not own the node id in the frame header (§6.2).
    NodeIdMismatch,
    /// The peer presented keys other than its pin (§6.7); see the `UntrustedIdentity` event.
    Untrusted,
    /// The pin store is full, so the peer could not be pinned.
    PinStoreFull,
    /// No answer after every retry (§6.8).
    Timeout,
    /// A message arrived that this stage does not expect.
    UnexpectedMessage,
}

impl fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandshakeFailure::Noise => "noise message rejected",
            HandshakeFailure::Rejected => "forged or corrupted handshake message dropped",
            HandshakeFailure::NodeIdMismatch => "keys do not own the node id",
            HandshakeFailure::Untrusted => "keys differ from the pinned identity",
            HandshakeFailure::PinStoreFull => "pin store full",
            HandshakeFailure::Timeout => "no answer after every retry",
            HandshakeFailure::UnexpectedMessage => "unexpected handshake message",
        })
    }
}

/// The two transport keys of a finished handshake, already oriented for this node.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SplitKeys {
    /// Encrypts what this node sends.
    pub send: Key,
    /// Decrypts what this node receives.
    pub recv: Key,
}

impl fmt::Debug for SplitKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SplitKeys(<redacted>)")
    }
}

/// snow's RNG for one handshake: ChaCha20 seeded from the session layer's seeded RNG.
struct SeededRandom(ChaCha20Rng);

impl Random for SeededRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

/// Delegates every primitive to snow's default resolver, except the RNG.
#[derive(Zeroize, ZeroizeOnDrop)]
struct SeededResolver {
    seed: [u8; 32],
}

impl CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SeededRandom(ChaCha20Rng::from_seed(self.seed))))
    }
    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }
    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }
    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

/// Where a handshake is.
pub enum Stage {
    /// Initiator, message 1 sent; waits for message 2.
    AwaitSecond(Box<HandshakeState>),
    /// Responder, message 2 sent; waits for message 3. Keeps what rebuilds the state (see [`Replay`]).
    AwaitThird(Box<HandshakeState>, Box<Replay>),
    /// Finished (keys taken) or failed; the state is gone.
    Over,
}

/// What the responder needs to rebuild its state exactly as it was after sending message 2: the seed of its
/// ephemeral key and message 1. snow restores only part of its state when a read fails (not the cipher key that
/// message 3 starts with), so after a forged message 3 the responder rebuilds instead of aborting.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Replay {
    seed: [u8; 32],
    first: Vec<u8>,
}

/// Builds the responder's state for message 1 `first` and writes message 2: a pure function of its inputs.
fn respond_state(
    local: &Identity,
    peer: NodeId,
    first: &[u8],
    seed: [u8; 32],
) -> Result<(Box<HandshakeState>, Vec<u8>), HandshakeFailure> {
    if first.len() != MESSAGE_LENS[0] {
        return Err(HandshakeFailure::Noise);
    }
    let mut hs = build(local, peer, local.node_id(), seed, false)?;
    let mut payload = [0u8; 64];
    hs.read_message(first, &mut payload)
        .map_err(|_| HandshakeFailure::Noise)?;
    let mut msg = vec![0u8; 256];
    let n = hs
        .write_message(&local.public().ed25519, &mut msg)
        .map_err(|_| HandshakeFailure::Noise)?;
    msg.truncate(n);
    Ok((Box::new(hs), msg))
}

impl fmt::Debug for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::AwaitSecond(_) => "AwaitSecond(<redacted>)",
            Stage::AwaitThird(..) => "AwaitThird(<redacted>)",
            Stage::Over => "Over",
        })
    }
}

/// A handshake in progress with one peer.
#[derive(Debug)]
pub struct Handshake {
    /// The peer.
    pub peer: NodeId,
    /// Session id chosen by the initiator.
    pub session_id: u8,
    /// True when this node sent HANDSHAKE_1.
    pub initiator: bool,
    stage: Stage,
    /// The Noise message this node last sent (1 or 2), for retransmission with a fresh frame id.
    pub last_sent: Vec<u8>,
    /// When to resend `last_sent` (initiator) or give up (responder).
    pub next_retry: Instant,
    /// Resends done so far.
    pub retries: u32,
}

fn prologue(initiator: NodeId, responder: NodeId) -> Vec<u8> {
    let mut p = Vec::with_capacity(PROLOGUE_LABEL.len() + 16);
    p.extend_from_slice(PROLOGUE_LABEL);
    p.extend_from_slice(initiator.as_bytes());
    p.extend_from_slice(responder.as_bytes());
    p
}

fn build(
    local: &Identity,
    initiator: NodeId,
    responder: NodeId,
    seed: [u8; 32],
    as_initiator: bool,
) -> Result<HandshakeState, HandshakeFailure> {
    let params = NOISE_PARAMS.parse().map_err(|_| HandshakeFailure::Noise)?;
    let prologue = prologue(initiator, responder);
    let builder = snow::Builder::with_resolver(params, Box::new(SeededResolver { seed }))
        .local_private_key(local.x25519_secret())
        .and_then(|b| b.prologue(&prologue))
        .map_err(|_| HandshakeFailure::Noise)?;
    if as_initiator {
        builder.build_initiator()
    } else {
        builder.build_responder()
    }
    .map_err(|_| HandshakeFailure::Noise)
}

/// Reads the peer's static key and Ed25519 payload, and checks they own `peer` (§6.2).
fn remote_identity(
    hs: &HandshakeState,
    payload: &[u8],
    peer: NodeId,
) -> Result<PublicIdentity, HandshakeFailure> {
    let ed25519: [u8; 32] = payload.try_into().map_err(|_| HandshakeFailure::Noise)?;
    let x25519: [u8; 32] = hs
        .get_remote_static()
        .and_then(|s| s.try_into().ok())
        .ok_or(HandshakeFailure::Noise)?;
    let keys = PublicIdentity { ed25519, x25519 };
    if keys.node_id() != peer {
        return Err(HandshakeFailure::NodeIdMismatch);
    }
    Ok(keys)
}

fn split(hs: &mut HandshakeState, initiator: bool) -> SplitKeys {
    let (mut i2r, mut r2i) = hs.dangerously_get_raw_split();
    let keys = if initiator {
        SplitKeys {
            send: Key(i2r),
            recv: Key(r2i),
        }
    } else {
        SplitKeys {
            send: Key(r2i),
            recv: Key(i2r),
        }
    };
    i2r.zeroize();
    r2i.zeroize();
    keys
}

impl Handshake {
    /// What a resend of this handshake's last message carries: its kind, the session id and the message.
    pub fn last_message(&self) -> (Kind, u8, Vec<u8>) {
        let kind = if self.initiator {
            Kind::Handshake1
        } else {
            Kind::Handshake2
        };
        (kind, self.session_id, self.last_sent.clone())
    }

    /// Starts a handshake as initiator: builds message 1.
    pub fn initiate(
        local: &Identity,
        peer: NodeId,
        session_id: u8,
        seed: [u8; 32],
        now: Instant,
        retry: crate::time::Duration,
    ) -> Result<Self, HandshakeFailure> {
        let mut hs = build(local, local.node_id(), peer, seed, true)?;
        let mut msg = vec![0u8; 64];
        let n = hs
            .write_message(&[], &mut msg)
            .map_err(|_| HandshakeFailure::Noise)?;
        msg.truncate(n);
        Ok(Handshake {
            peer,
            session_id,
            initiator: true,
            stage: Stage::AwaitSecond(Box::new(hs)),
            last_sent: msg,
            next_retry: now + retry,
            retries: 0,
        })
    }

    /// Answers message 1 as responder: builds message 2 carrying this node's Ed25519 key.
    pub fn respond(
        local: &Identity,
        peer: NodeId,
        session_id: u8,
        first: &[u8],
        seed: [u8; 32],
        now: Instant,
        retry: crate::time::Duration,
    ) -> Result<Self, HandshakeFailure> {
        let (hs, msg) = respond_state(local, peer, first, seed)?;
        let replay = Box::new(Replay {
            seed,
            first: first.to_vec(),
        });
        Ok(Handshake {
            peer,
            session_id,
            initiator: false,
            stage: Stage::AwaitThird(hs, replay),
            last_sent: msg,
            next_retry: now + retry,
            retries: 0,
        })
    }

    /// True while the handshake can still make progress.
    #[cfg(test)]
    pub fn is_live(&self) -> bool {
        !matches!(self.stage, Stage::Over)
    }

    /// Initiator: reads message 2, checks the responder's keys own its id, and writes message 3. The caller checks
    /// the pin before sending message 3 and using the keys.
    pub fn read_second(
        &mut self,
        local: &Identity,
        second: &[u8],
    ) -> Result<(PublicIdentity, Vec<u8>, SplitKeys), HandshakeFailure> {
        let Stage::AwaitSecond(mut hs) = mem::replace(&mut self.stage, Stage::Over) else {
            return Err(HandshakeFailure::UnexpectedMessage);
        };
        let mut payload = [0u8; 128];
        let read = match second.len() == MESSAGE_LENS[1] {
            true => hs.read_message(second, &mut payload).ok(),
            false => None,
        };
        let Some(n) = read else {
            self.stage = Stage::AwaitSecond(hs);
            return Err(HandshakeFailure::Rejected);
        };
        let remote = remote_identity(&hs, payload.get(..n).unwrap_or(&[]), self.peer)?;
        let mut third = vec![0u8; 256];
        let m = hs
            .write_message(&local.public().ed25519, &mut third)
            .map_err(|_| HandshakeFailure::Noise)?;
        third.truncate(m);
        let keys = split(&mut hs, true);
        Ok((remote, third, keys))
    }

    /// Responder: reads message 3 and checks the initiator's keys own its id.
    pub fn read_third(
        &mut self,
        local: &Identity,
        third: &[u8],
    ) -> Result<(PublicIdentity, SplitKeys), HandshakeFailure> {
        let Stage::AwaitThird(mut hs, replay) = mem::replace(&mut self.stage, Stage::Over) else {
            return Err(HandshakeFailure::UnexpectedMessage);
        };
        let mut payload = [0u8; 128];
        let read = match third.len() == MESSAGE_LENS[2] {
            true => hs.read_message(third, &mut payload).ok(),
            false => None,
        };
        let Some(n) = read else {
            // A failed read may have left snow's cipher state changed: rebuild the state after message 2.
            let (rebuilt, second) = respond_state(local, self.peer, &replay.first, replay.seed)?;
            if second != self.last_sent {
                return Err(HandshakeFailure::Noise);
            }
            self.stage = Stage::AwaitThird(rebuilt, replay);
            return Err(HandshakeFailure::Rejected);
        };
        let remote = remote_identity(&hs, payload.get(..n).unwrap_or(&[]), self.peer)?;
        Ok((remote, split(&mut hs, false)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Duration;

    fn ids() -> (Identity, Identity) {
        (
            Identity::from_secrets([1; 32], [2; 32]),
            Identity::from_secrets([3; 32], [4; 32]),
        )
    }

    #[test]
    fn a_message_that_does_not_verify_leaves_the_handshake_usable() {
        let (a, b) = ids();
        let t = Instant::ZERO;
        let r = Duration::from_secs(5);
        let mut i = Handshake::initiate(&a, b.node_id(), 7, [5; 32], t, r).unwrap();
        let mut s = Handshake::respond(&b, a.node_id(), 7, &i.last_sent, [6; 32], t, r).unwrap();
        for flip in [0, 40, MESSAGE_LENS[1] - 1] {
            let mut forged = s.last_sent.clone();
            forged[flip] ^= 1;
            assert_eq!(
                i.read_second(&a, &forged).unwrap_err(),
                HandshakeFailure::Rejected,
                "byte {flip}"
            );
            assert!(i.is_live());
        }
        assert_eq!(
            i.read_second(&a, &[0; 3]).unwrap_err(),
            HandshakeFailure::Rejected
        );
        let (_, third, ki) = i.read_second(&a, &s.last_sent).unwrap();
        let mut forged = third.clone();
        forged[70] ^= 1;
        assert_eq!(
            s.read_third(&b, &forged).unwrap_err(),
            HandshakeFailure::Rejected
        );
        let (_, kr) = s.read_third(&b, &third).unwrap();
        assert_eq!(ki.send, kr.recv);
    }

    #[test]
    fn xx_round_trip_gives_matching_keys_and_identities() {
        let (a, b) = ids();
        let t = Instant::ZERO;
        let r = Duration::from_secs(5);
        let mut i = Handshake::initiate(&a, b.node_id(), 7, [5; 32], t, r).unwrap();
        assert_eq!(i.last_sent.len(), MESSAGE_LENS[0]);
        let mut s = Handshake::respond(&b, a.node_id(), 7, &i.last_sent, [6; 32], t, r).unwrap();
        assert_eq!(s.last_sent.len(), MESSAGE_LENS[1]);
        let (b_pub, third, ki) = i.read_second(&a, &s.last_sent).unwrap();
        assert_eq!(&b_pub, b.public());
        assert_eq!(third.len(), MESSAGE_LENS[2]);
        let (a_pub, kr) = s.read_third(&b, &third).unwrap();
        assert_eq!(&a_pub, a.public());
        assert_eq!(ki.send, kr.recv);
        assert_eq!(ki.recv, kr.send);
        assert_ne!(ki.send, ki.recv);
        assert!(!i.is_live() && !s.is_live());
        assert!(alloc::format!("{ki:?}{i:?}").contains("<redacted>"));
    }

    #[test]
    fn wrong_header_id_or_prologue_fails() {
        let (a, b) = ids();
        let t = Instant::ZERO;
        let r = Duration::from_secs(5);
        // The initiator believes it talks to someone else: the prologue differs, so message 2 does not verify.
        // Like a forgery it is dropped and the handshake keeps waiting (its retries then time it out).
        let mut i = Handshake::initiate(&a, NodeId([9; 8]), 1, [5; 32], t, r).unwrap();
        let s = Handshake::respond(&b, a.node_id(), 1, &i.last_sent, [6; 32], t, r).unwrap();
        for _ in 0..2 {
            assert_eq!(
                i.read_second(&a, &s.last_sent).unwrap_err(),
                HandshakeFailure::Rejected
            );
            assert!(i.is_live());
        }
    }

    #[test]
    fn seeded_rng_is_deterministic() {
        let (a, b) = ids();
        let t = Instant::ZERO;
        let r = Duration::from_secs(5);
        let x = Handshake::initiate(&a, b.node_id(), 1, [5; 32], t, r).unwrap();
        let y = Handshake::initiate(&a, b.node_id(), 1, [5; 32], t, r).unwrap();
        let z = Handshake::initiate(&a, b.node_id(), 1, [6; 32], t, r).unwrap();
        assert_eq!(x.last_sent, y.last_sent);
        assert_ne!(x.last_sent, z.last_sent);
    }
}
