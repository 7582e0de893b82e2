//! Who a node is: its static keys, the node id derived from them, and the fingerprint people compare.
//!
//! A node owns two long-term keys: an X25519 key (its Noise static key) and an Ed25519 key (signs announces and
//! broadcasts). Its [`NodeId`] is the first 8 bytes of `SHA-256("meshnode/1 node-id" || ed25519_pub || x25519_pub)`
//! (PROTOCOL.md §2.2), so a node cannot claim another node's id without a second preimage of that hash, and the full
//! keys are additionally pinned on first use by the session layer.
//!
//! Invariant: secret key bytes are zeroized on drop and never printed: `Debug` shows `<redacted>`.

use core::fmt;

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of a node id on the wire.
pub const NODE_ID_LEN: usize = 8;

/// Domain separation label for node ids (PROTOCOL.md §2.2).
const NODE_ID_LABEL: &[u8] = b"meshnode/1 node-id";

/// The 8-byte address of a node in frames. `ff ff ff ff ff ff ff ff` is the broadcast address.
///
/// Ordered byte by byte, as the array is; compared as one big-endian integer (the same order), since node ids
/// key every table a node searches per frame and a byte-wise comparison is a `memcmp` call.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId(pub [u8; NODE_ID_LEN]);

impl Ord for NodeId {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        u64::from_be_bytes(self.0).cmp(&u64::from_be_bytes(other.0))
    }
}

impl PartialOrd for NodeId {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl NodeId {
    /// The broadcast destination: every node.
    pub const BROADCAST: NodeId = NodeId([0xff; NODE_ID_LEN]);

    /// True for the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; NODE_ID_LEN] {
        &self.0
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The public half of a node's identity: what peers learn and pin.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicIdentity {
    /// Ed25519 verifying key (signs announces and broadcasts).
    pub ed25519: [u8; 32],
    /// X25519 static key (the Noise `s`).
    pub x25519: [u8; 32],
}

impl PublicIdentity {
    /// The node id these keys own (PROTOCOL.md §2.2).
    pub fn node_id(&self) -> NodeId {
        let digest = self.digest();
        let mut id = [0u8; NODE_ID_LEN];
        id.copy_from_slice(&digest[..NODE_ID_LEN]);
        NodeId(id)
    }

    /// The short fingerprint people compare out of band: the first 10 bytes of the node-id digest as five
    /// groups of four hex digits, e.g. `3f1a 9c0e 77b2 0d41 e5c8` (80 bits).
    pub fn fingerprint(&self) -> Fingerprint {
        let digest = self.digest();
        let mut fp = [0u8; 10];
        fp.copy_from_slice(&digest[..10]);
        Fingerprint(fp)
    }

    fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(NODE_ID_LABEL);
        h.update(self.ed25519);
        h.update(self.x25519);
        h.finalize().into()
    }
}

impl fmt::Debug for PublicIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicIdentity({} fp {})",
            self.node_id(),
            self.fingerprint()
        )
    }
}

/// A short, human-comparable digest of a [`PublicIdentity`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 10]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, pair) in self.0.chunks(2).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            for b in pair {
                write!(f, "{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A node's secret keys. Zeroized on drop; `Debug` never shows them.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Identity {
    ed25519_secret: [u8; 32],
    x25519_secret: [u8; 32],
    #[zeroize(skip)]
    public: PublicIdentity,
}

impl Identity {
    /// A fresh identity from a cryptographic RNG.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut ed = [0u8; 32];
        let mut x = [0u8; 32];
        rng.fill_bytes(&mut ed);
        rng.fill_bytes(&mut x);
        let id = Self::from_secrets(ed, x);
        ed.zeroize();
        x.zeroize();
        id
    }

    /// An identity from stored secret bytes (Ed25519 seed, X25519 scalar). The X25519 scalar is clamped when used,
    /// as X25519 specifies.
    pub fn from_secrets(ed25519_secret: [u8; 32], x25519_secret: [u8; 32]) -> Self {
        let signing = ed25519_dalek::SigningKey::from_bytes(&ed25519_secret);
        let ed_pub = signing.verifying_key().to_bytes();
        let x_pub = curve25519_dalek::MontgomeryPoint::mul_base_clamped(x25519_secret).to_bytes();
        Identity {
            ed25519_secret,
            x25519_secret,
            public: PublicIdentity {
                ed25519: ed_pub,
                x25519: x_pub,
            },
        }
    }

    /// The public half.
    pub fn public(&self) -> &PublicIdentity {
        &self.public
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.public.node_id()
    }

    /// The X25519 static secret, for the Noise handshake only.
    pub(crate) fn x25519_secret(&self) -> &[u8; 32] {
        &self.x25519_secret
    }

    /// The secret bytes, for sealing at rest by the store. Callers must zeroize what they copy.
    pub fn secret_bytes(&self) -> ([u8; 32], [u8; 32]) {
        (self.ed25519_secret, self.x25519_secret)
    }

    /// Signs `message` with the Ed25519 key.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        let signing = ed25519_dalek::SigningKey::from_bytes(&self.ed25519_secret);
        signing.sign(message).to_bytes()
    }
}

/// Checks an Ed25519 signature made by `public` (strict verification: no malleable signatures).
pub fn verify_signature(public: &PublicIdentity, message: &[u8], signature: &[u8; 64]) -> bool {
    #[cfg(feature = "std")]
    {
        shared_verdicts::verdict(public, message, signature, || {
            verify_strict(public, message, signature)
        })
    }
    #[cfg(not(feature = "std"))]
    {
        verify_strict(public, message, signature)
    }
}

fn verify_strict(public: &PublicIdentity, message: &[u8], signature: &[u8; 64]) -> bool {
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&public.ed25519) else {
        return false;
    };
    let sig = ed25519_dalek::Signature::from_bytes(signature);
    key.verify_strict(message, &sig).is_ok()
}

/// Lets every node running on the calling thread share signature verdicts, remembering the last `capacity` of them
/// (std only; `0` turns sharing off and frees the memory).
///
/// For runtimes that run many nodes in one thread, the simulator above all: every node verifies the same flooded
/// announce or broadcast, so in a mesh of n nodes each signature is checked n times. With sharing on, the first
/// check's verdict answers the others. A verdict is keyed by SHA-256 of everything the check reads (the Ed25519
/// key, the signature and the signed bytes), so a remembered answer is exactly the answer a fresh check would give.
/// A node on its own gains nothing: its duplicate cache already drops repeats of a frame.
#[cfg(feature = "std")]
pub fn share_verdicts_on_this_thread(capacity: usize) {
    shared_verdicts::set_capacity(capacity);
}

#[cfg(feature = "std")]
mod shared_verdicts {
    use std::cell::RefCell;
    use std::collections::{HashMap, VecDeque};

    use sha2::{Digest, Sha256};

    use super::PublicIdentity;

    /// Domain separation of verdict keys.
    const LABEL: &[u8] = b"meshnode verdict";

    /// The last `capacity` verdicts, oldest first in `order`.
    struct Verdicts {
        capacity: usize,
        map: HashMap<[u8; 32], bool>,
        order: VecDeque<[u8; 32]>,
    }

    std::thread_local! {
        static VERDICTS: RefCell<Option<Verdicts>> = const { RefCell::new(None) };
    }

    pub(super) fn set_capacity(capacity: usize) {
        let _ = VERDICTS.try_with(|v| {
            let mut v = v.borrow_mut();
            match v.as_mut() {
                _ if capacity == 0 => *v = None,
                Some(cache) => {
                    cache.capacity = capacity;
                    while cache.order.len() > capacity {
                        if let Some(old) = cache.order.pop_front() {
                            cache.map.remove(&old);
                        }
                    }
                }
                None => {
                    *v = Some(Verdicts {
                        capacity,
                        map: HashMap::new(),
                        order: VecDeque::new(),
                    })
                }
            }
        });
    }

    /// The verdict on `signature`, from the shared verdicts when sharing is on and it is there, else from `check`.
    pub(super) fn verdict(
        public: &PublicIdentity,
        message: &[u8],
        signature: &[u8; 64],
        check: impl FnOnce() -> bool,
    ) -> bool {
        let on = VERDICTS.try_with(|v| v.borrow().is_some()).unwrap_or(false);
        if !on {
            return check();
        }
        let key: [u8; 32] = Sha256::new()
            .chain_update(LABEL)
            .chain_update(public.ed25519)
            .chain_update(signature)
            .chain_update(message)
            .finalize()
            .into();
        let known = VERDICTS
            .try_with(|v| v.borrow().as_ref().and_then(|c| c.map.get(&key).copied()))
            .ok()
            .flatten();
        if let Some(verdict) = known {
            return verdict;
        }
        let verdict = check();
        let _ = VERDICTS.try_with(|v| {
            if let Some(cache) = v.borrow_mut().as_mut() {
                if cache.order.len() >= cache.capacity {
                    if let Some(old) = cache.order.pop_front() {
                        cache.map.remove(&old);
                    }
                }
                cache.map.insert(key, verdict);
                cache.order.push_back(key);
            }
        });
        verdict
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("public", &self.public)
            .field("secrets", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use rand_chacha::rand_core::SeedableRng;

    /// The checks PROTOCOL.md §5.1 names: a signature a plain RFC 8032 verifier accepts for every message (the
    /// identity point as key and as R, S = 0) is refused, and so is a valid signature whose S is not reduced.
    #[test]
    fn strict_verification_refuses_small_order_keys_and_unreduced_s() {
        let id = Identity::from_secrets([1; 32], [2; 32]);
        let msg = b"meshnode/1 announce test";
        let good = id.sign(msg);
        assert!(verify_signature(id.public(), msg, &good));
        // Identity point (y = 1) as key and as R, S = 0: [0]B = R + [k]A holds for any k.
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        let weak = PublicIdentity {
            ed25519: identity_point,
            ..*id.public()
        };
        let mut forged = [0u8; 64];
        forged[..32].copy_from_slice(&identity_point);
        assert!(!verify_signature(&weak, msg, &forged));
        assert!(!verify_signature(&weak, b"any other message", &forged));
        // S + L: the same signature with an unreduced scalar.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut unreduced = good;
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(unreduced[32 + i]) + u16::from(L[i]) + carry;
            unreduced[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        assert!(!verify_signature(id.public(), msg, &unreduced));
    }

    #[test]
    fn node_ids_order_as_their_bytes() {
        let ids = [
            [0u8; 8],
            [0, 0, 0, 0, 0, 0, 0, 1],
            [0, 1, 0, 0, 0, 0, 0, 0],
            [1, 0, 0, 0, 0, 0, 0, 0],
            [0xff; 8],
        ];
        for a in ids {
            for b in ids {
                assert_eq!(NodeId(a).cmp(&NodeId(b)), a.cmp(&b));
            }
        }
    }

    #[test]
    fn node_id_is_derived_from_both_keys() {
        let a = Identity::from_secrets([1; 32], [2; 32]);
        let b = Identity::from_secrets([1; 32], [3; 32]);
        let c = Identity::from_secrets([4; 32], [2; 32]);
        assert_ne!(a.node_id(), b.node_id());
        assert_ne!(a.node_id(), c.node_id());
        assert_eq!(
            a.node_id(),
            Identity::from_secrets([1; 32], [2; 32]).node_id()
        );
        assert!(!a.node_id().is_broadcast());
    }

    #[test]
    fn x25519_public_matches_rfc7748() {
        // RFC 7748 §6.1, Alice's key pair.
        let sk: [u8; 32] =
            hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap()
                .try_into()
                .unwrap();
        let id = Identity::from_secrets([0; 32], sk);
        assert_eq!(
            hex::encode(id.public().x25519),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
    }

    #[test]
    fn signatures_verify_and_reject_tampering() {
        let id = Identity::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(7));
        let sig = id.sign(b"hello mesh");
        assert!(verify_signature(id.public(), b"hello mesh", &sig));
        assert!(!verify_signature(id.public(), b"hello mesH", &sig));
        let other = Identity::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(8));
        assert!(!verify_signature(other.public(), b"hello mesh", &sig));
    }

    #[test]
    fn debug_redacts_secrets_and_fingerprint_is_grouped() {
        let id = Identity::from_secrets([9; 32], [9; 32]);
        let shown = format!("{id:?}");
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains("0909"));
        let fp = format!("{}", id.public().fingerprint());
        assert_eq!(fp.len(), 24);
        assert_eq!(fp.split(' ').count(), 5);
    }
}
