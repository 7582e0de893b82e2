"""An independent implementation of the meshnode protocol v1, written from mesh/PROTOCOL.md alone.

Python 3 standard library + the `cryptography` package; Noise XX, XChaCha20 and strict Ed25519 checks are written here
by hand from their specifications. Used by vectors.py (PROTOCOL.md §8) and peer.py (a live peer over Appendix A).
"""
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization
from cryptography.exceptions import InvalidSignature, InvalidTag

RAW = serialization.Encoding.Raw
PUBRAW = serialization.PublicFormat.Raw
PRIVRAW = serialization.PrivateFormat.Raw
NOENC = serialization.NoEncryption()

BROADCAST_ID = b"\xff" * 8

# §4.2 kinds
ANNOUNCE, BROADCAST, HANDSHAKE_1, HANDSHAKE_2, HANDSHAKE_3 = 1, 2, 3, 4, 5
TRANSPORT, ACK, CLOSE, UNKNOWN_SESSION, CHANNEL, PEER_SYNC, LINK_ACK = 6, 7, 8, 9, 10, 11, 12
KIND_NAMES = {1: "ANNOUNCE", 2: "BROADCAST", 3: "HANDSHAKE_1", 4: "HANDSHAKE_2", 5: "HANDSHAKE_3",
              6: "TRANSPORT", 7: "ACK", 8: "CLOSE", 9: "UNKNOWN_SESSION", 10: "CHANNEL",
              11: "PEER_SYNC", 12: "LINK_ACK"}
VERSION = 1
MAX_FRAME_LEN = 4096


# ---------------------------------------------------------------- §2 identity
class Identity:
    def __init__(self, ed_seed: bytes, x_secret: bytes):
        self.ed_priv = Ed25519PrivateKey.from_private_bytes(ed_seed)
        self.ed_pub = self.ed_priv.public_key().public_bytes(RAW, PUBRAW)
        self.x_priv = X25519PrivateKey.from_private_bytes(x_secret)
        self.x_secret = x_secret
        self.x_pub = self.x_priv.public_key().public_bytes(RAW, PUBRAW)
        self.node_id = node_id(self.ed_pub, self.x_pub)

    @classmethod
    def generate(cls):
        while True:
            ident = cls(os.urandom(32), os.urandom(32))
            if ident.node_id != BROADCAST_ID:
                return ident

    def sign(self, msg: bytes) -> bytes:
        return self.ed_priv.sign(msg)


def id_digest(ed_pub: bytes, x_pub: bytes) -> bytes:
    return hashlib.sha256(b"meshnode/1 node-id" + ed_pub + x_pub).digest()


def node_id(ed_pub: bytes, x_pub: bytes) -> bytes:
    return id_digest(ed_pub, x_pub)[:8]


def fingerprint(ed_pub: bytes, x_pub: bytes) -> str:
    h = id_digest(ed_pub, x_pub)[:10].hex()
    return " ".join(h[i:i + 4] for i in range(0, 20, 4))


_P = 2 ** 255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_L = 2 ** 252 + 27742317777372353535851937790883648493


def _decode_point(b: bytes):
    y = int.from_bytes(b, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= _P:
        return None  # non-canonical y
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * pow(2, (_P - 1) // 4, _P) % _P
    if (x * x - x2) % _P:
        return None
    if x == 0 and sign:
        return None
    if (x & 1) != sign:
        x = _P - x
    return (x, y)


def _add(a, b):
    (x1, y1), (x2, y2) = a, b
    t = _D * x1 * x2 * y1 * y2 % _P
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, _P - 2, _P) % _P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, _P - 2, _P) % _P
    return (x3, y3)


def small_order(b: bytes) -> bool:
    """True if the encoding is not a valid point or the point has order dividing 8."""
    pt = _decode_point(b)
    if pt is None:
        return True
    for _ in range(3):
        pt = _add(pt, pt)
    return pt == (0, 1)


def ed_verify(pub: bytes, sig: bytes, msg: bytes) -> bool:
    # `cryptography` (OpenSSL) checks S < L but accepts small-order A and R: §5.1's strict checks are added here.
    if len(sig) != 64 or small_order(pub) or small_order(sig[:32]) or int.from_bytes(sig[32:], "little") >= _L:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)
        return True
    except (InvalidSignature, ValueError):
        return False


# ---------------------------------------------------------------- §4 frames
def header(kind: int, ttl: int, frame_id: int, src: bytes, dst: bytes) -> bytes:
    return bytes([(VERSION << 5) | kind, ttl]) + struct.pack(">I", frame_id) + src + dst


def auth_header(frame: bytes) -> bytes:
    """§4.4: byte 0 and bytes 2..22."""
    return frame[0:1] + frame[2:22]


class Frame:
    __slots__ = ("raw", "version", "kind", "ttl", "frame_id", "src", "dst", "body")

    def __init__(self, raw: bytes):
        self.raw = raw
        self.version = raw[0] >> 5
        self.kind = raw[0] & 0x1F
        self.ttl = raw[1]
        self.frame_id = struct.unpack(">I", raw[2:6])[0]
        self.src = raw[6:14]
        self.dst = raw[14:22]
        self.body = raw[22:]

    def __repr__(self):
        return "<%s ttl=%d fid=%08x %s->%s body=%d>" % (KIND_NAMES.get(self.kind, self.kind), self.ttl,
                                                         self.frame_id, self.src.hex(), self.dst.hex(),
                                                         len(self.body))


def check_header(raw: bytes):
    """§4.3 header rules; returns a Frame or raises ValueError(reason)."""
    if len(raw) < 22 or len(raw) > MAX_FRAME_LEN:
        raise ValueError("length")
    f = Frame(raw)
    if f.version != 1:
        raise ValueError("version")
    if f.kind == 0:
        raise ValueError("kind 0")
    if f.ttl > 15:
        raise ValueError("ttl")
    if f.src == BROADCAST_ID:
        raise ValueError("src broadcast")
    if f.dst == f.src:
        raise ValueError("dst == src")
    bcast_kinds = (ANNOUNCE, BROADCAST, CHANNEL, LINK_ACK)
    if f.kind in bcast_kinds and f.dst != BROADCAST_ID:
        raise ValueError("dst must be broadcast")
    if f.kind in (3, 4, 5, 6, 7, 8, 9, 11) and f.dst == BROADCAST_ID:
        raise ValueError("dst must be one node")
    if f.kind in (PEER_SYNC, LINK_ACK) and f.ttl != 0:
        raise ValueError("link-local ttl")
    return f


# §5.1
def announce_body(ident: Identity, caps: int, nick: str, hdr: bytes) -> bytes:
    n = nick.encode()
    assert len(n) <= 32
    pre = ident.ed_pub + ident.x_pub + struct.pack(">H", caps) + bytes([len(n)]) + n
    sig = ident.sign(b"meshnode/1 announce" + auth_header(hdr) + pre)
    return pre + sig


def make_announce(ident, caps, nick, frame_id, ttl):
    hdr = header(ANNOUNCE, ttl, frame_id, ident.node_id, BROADCAST_ID)
    return hdr + announce_body(ident, caps, nick, hdr)


def parse_announce(auth_hdr21: bytes, src: bytes, body: bytes):
    if len(body) < 67 + 64:
        raise ValueError("short")
    ed, xp = body[0:32], body[32:64]
    caps = struct.unpack(">H", body[64:66])[0]
    n = body[66]
    if n > 32 or len(body) != 67 + n + 64:
        raise ValueError("length")
    nick = body[67:67 + n].decode("utf-8")
    if node_id(ed, xp) != src:
        raise ValueError("src is not node id of keys")
    if not ed_verify(ed, body[67 + n:], b"meshnode/1 announce" + auth_hdr21 + body[:67 + n]):
        raise ValueError("bad signature")
    return dict(ed_pub=ed, x_pub=xp, caps=caps, nick=nick)


def make_broadcast(ident, msg: bytes, frame_id, ttl=7):
    hdr = header(BROADCAST, ttl, frame_id, ident.node_id, BROADCAST_ID)
    return hdr + msg + ident.sign(b"meshnode/1 broadcast" + auth_header(hdr) + msg)


# §5.4 / §6.4
def aead_nonce(n: int) -> bytes:
    return b"\x00" * 4 + struct.pack("<Q", n)


def seal_frame(kind, ttl, frame_id, src, dst, session_id, epoch, padded, nonce, key, plaintext):
    hdr = header(kind, ttl, frame_id, src, dst)
    fixed = bytes([session_id, (0x80 if padded else 0) | (epoch & 0x7F)]) + struct.pack(">Q", nonce)
    ad = auth_header(hdr) + fixed
    return hdr + fixed + ChaCha20Poly1305(key).encrypt(aead_nonce(nonce), plaintext, ad)


def open_sealed(raw: bytes, key: bytes) -> bytes:
    ad = auth_header(raw) + raw[22:32]
    nonce = struct.unpack(">Q", raw[24:32])[0]
    return ChaCha20Poly1305(key).decrypt(aead_nonce(nonce), raw[32:], ad)


def rekey(k: bytes) -> bytes:
    return ChaCha20Poly1305(k).encrypt(aead_nonce(2 ** 64 - 1), b"\x00" * 32, b"")[:32]


def pad(msg: bytes, buckets=(32, 64, 128, 256, 512, 1024)) -> bytes:
    need = len(msg) + 1
    for b in buckets:
        if need <= b:
            size = b
            break
    else:
        big = buckets[-1]
        size = -(-need // big) * big
    return msg + b"\x80" + b"\x00" * (size - need)


def unpad(p: bytes) -> bytes:
    s = p.rstrip(b"\x00")
    if not s or s[-1] != 0x80:
        raise ValueError("bad padding")
    return s[:-1]


# ---------------------------------------------------------------- §5.6 / §7.9 channels, XChaCha20
def _rotl(v, c):
    return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))


def _qr(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = _rotl(s[b] ^ s[c], 7)


def hchacha20(key: bytes, n16: bytes) -> bytes:
    s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574] + list(struct.unpack("<8I", key)) + \
        list(struct.unpack("<4I", n16))
    for _ in range(10):
        _qr(s, 0, 4, 8, 12); _qr(s, 1, 5, 9, 13); _qr(s, 2, 6, 10, 14); _qr(s, 3, 7, 11, 15)
        _qr(s, 0, 5, 10, 15); _qr(s, 1, 6, 11, 12); _qr(s, 2, 7, 8, 13); _qr(s, 3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def xchacha_seal(key, nonce24, pt, ad):
    return ChaCha20Poly1305(hchacha20(key, nonce24[:16])).encrypt(b"\x00" * 4 + nonce24[16:], pt, ad)


def xchacha_open(key, nonce24, ct, ad):
    return ChaCha20Poly1305(hchacha20(key, nonce24[:16])).decrypt(b"\x00" * 4 + nonce24[16:], ct, ad)


def channel_tag(name: str) -> bytes:
    return hashlib.sha256(b"meshnode/1 channel-tag" + name.encode()).digest()[:8]


def channel_salt(name: str) -> bytes:
    return hashlib.sha256(b"meshnode/1 channel-salt" + name.encode()).digest()[:16]


def argon2id(password: bytes, salt: bytes, m: int, t: int, p: int, length: int = 32) -> bytes:
    """Argon2id version 0x13 (RFC 9106), from whichever implementation this Python has: `cryptography` 44 or later,
    else argon2-cffi (Debian's python3-argon2), else the C library libargon2 through ctypes."""
    try:
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
        return Argon2id(salt=salt, length=length, iterations=t, lanes=p, memory_cost=m).derive(password)
    except ImportError:
        pass
    try:
        from argon2.low_level import Type, hash_secret_raw
        return hash_secret_raw(password, salt, time_cost=t, memory_cost=m, parallelism=p, hash_len=length,
                               type=Type.ID, version=0x13)
    except ImportError:
        pass
    lib = _libargon2()
    if lib is None:
        raise ImportError("no Argon2id: needs cryptography >= 44, argon2-cffi or libargon2")
    import ctypes
    out = ctypes.create_string_buffer(length)
    rc = lib.argon2id_hash_raw(t, m, p, password, len(password), salt, len(salt), out, length)
    if rc != 0:
        raise ValueError("argon2id_hash_raw failed: %d" % rc)
    return out.raw


def _libargon2():
    import ctypes
    import ctypes.util
    for name in (ctypes.util.find_library("argon2"), "libargon2.so.1"):
        if name:
            try:
                lib = ctypes.CDLL(name)
            except OSError:
                continue
            f = lib.argon2id_hash_raw
            f.argtypes = [ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t,
                          ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
            f.restype = ctypes.c_int
            return lib
    return None


def channel_key(name, password: bytes, m=19456, t=2, p=1):
    """§7.9: Argon2id of the password, salt channel_salt(name), m KiB, t passes, p lanes, 32 bytes."""
    return argon2id(password, channel_salt(name), m, t, p)


def make_channel(src, name, key, frame_id, nonce24, pt, ttl=7):
    hdr = header(CHANNEL, ttl, frame_id, src, BROADCAST_ID)
    tag = channel_tag(name)
    return hdr + tag + nonce24 + xchacha_seal(key, nonce24, pt, auth_header(hdr) + tag)


# ---------------------------------------------------------------- §3 packets
SINGLE, FIRST, MIDDLE, LAST = 0b11, 0b10, 0b00, 0b01


def fragment(frame: bytes, att_mtu: int, seq: int):
    """Returns (packets, next_seq)."""
    if not (1 <= len(frame) <= MAX_FRAME_LEN):
        raise ValueError("frame length")
    if not (23 <= att_mtu <= 517):
        raise ValueError("mtu")
    P = att_mtu - 3
    L = len(frame)
    out = []
    if L <= P - 1:
        out.append(bytes([(SINGLE << 6) | seq]) + frame)
        return out, (seq + 1) % 64
    N = 1 + -(-(L - (P - 2)) // (P - 1))
    out.append(bytes([(FIRST << 6) | seq, N]) + frame[:P - 2])
    seq = (seq + 1) % 64
    pos = P - 2
    for i in range(1, N):
        chunk = frame[pos:pos + P - 1]
        pos += len(chunk)
        t = LAST if i == N - 1 else MIDDLE
        out.append(bytes([(t << 6) | seq]) + chunk)
        seq = (seq + 1) % 64
    assert pos == L
    return out, seq


class Reassembler:
    """§3.3, one link direction."""

    def __init__(self, max_frame_len=MAX_FRAME_LEN, timeout=5.0):
        self.expected = None
        self.partial = None  # (buf, N, k, expires)
        self.max = max_frame_len
        self.timeout = timeout
        self.drops = {}

    def _drop(self, why):
        self.drops[why] = self.drops.get(why, 0) + 1

    def push(self, pkt: bytes, now: float):
        if self.partial and now >= self.partial[3]:
            self.partial = None
            self._drop("timed out")
        if not pkt:
            self.partial = None
            self._drop("malformed")
            return None
        t, seq = pkt[0] >> 6, pkt[0] & 0x3F
        if (t == FIRST and (len(pkt) < 2 or pkt[1] < 2)) or (t == FIRST and len(pkt) == 2) or \
                (t != FIRST and len(pkt) == 1):
            if self.partial:
                self._drop("malformed")
            self.partial = None
            self._drop("malformed")
            return None
        if self.expected is not None and seq != self.expected:
            if self.partial:
                self._drop("gap")
            self.partial = None
        self.expected = (seq + 1) % 64
        if t == SINGLE:
            if self.partial:
                self._drop("interrupted")
                self.partial = None
            frag = pkt[1:]
            if len(frag) > self.max:
                self._drop("too long")
                return None
            return frag
        if t == FIRST:
            if self.partial:
                self._drop("interrupted")
                self.partial = None
            frag = pkt[2:]
            if len(frag) > self.max:
                self._drop("too long")
                return None
            self.partial = [bytearray(frag), pkt[1], 1, now + self.timeout]
            return None
        if self.partial is None:
            self._drop("orphan")
            return None
        frag = pkt[1:]
        k = self.partial[2] + 1
        N = self.partial[1]
        if (t == MIDDLE and k == N) or (t == LAST and k != N):
            self.partial = None
            self._drop("malformed")
            return None
        if len(self.partial[0]) + len(frag) > self.max:
            self.partial = None
            self._drop("too long")
            return None
        self.partial[0] += frag
        self.partial[2] = k
        if t == LAST:
            buf = bytes(self.partial[0])
            self.partial = None
            return buf
        return None


# ---------------------------------------------------------------- §6 Noise XX
PROTOCOL_NAME = b"Noise_XX_25519_ChaChaPoly_SHA256"


def _hmac(k, d):
    return hmac.new(k, d, hashlib.sha256).digest()


def hkdf2(ck, ikm):
    tk = _hmac(ck, ikm)
    o1 = _hmac(tk, b"\x01")
    o2 = _hmac(tk, o1 + b"\x02")
    return o1, o2


def x25519(priv: X25519PrivateKey, pub: bytes) -> bytes:
    return priv.exchange(X25519PublicKey.from_public_bytes(pub))


class NoiseXX:
    """Noise_XX_25519_ChaChaPoly_SHA256 (revision 34) handshake state."""

    def __init__(self, initiator: bool, s: X25519PrivateKey, prologue: bytes, e: X25519PrivateKey = None):
        self.initiator = initiator
        self.s = s
        self.s_pub = s.public_key().public_bytes(RAW, PUBRAW)
        self.e = e or X25519PrivateKey.generate()
        self.e_pub = self.e.public_key().public_bytes(RAW, PUBRAW)
        name = PROTOCOL_NAME
        self.h = name if len(name) == 32 else (name + b"\x00" * 32)[:32] if len(name) < 32 else \
            hashlib.sha256(name).digest()
        self.ck = self.h
        self.k = None
        self.n = 0
        self.re = None
        self.rs = None
        self.mix_hash(prologue)

    def mix_hash(self, d):
        self.h = hashlib.sha256(self.h + d).digest()

    def mix_key(self, ikm):
        self.ck, tk = hkdf2(self.ck, ikm)
        self.k = tk
        self.n = 0

    def enc_hash(self, pt):
        if self.k is None:
            ct = pt
        else:
            ct = ChaCha20Poly1305(self.k).encrypt(aead_nonce(self.n), pt, self.h)
            self.n += 1
        self.mix_hash(ct)
        return ct

    def dec_hash(self, ct):
        if self.k is None:
            pt = ct
        else:
            pt = ChaCha20Poly1305(self.k).decrypt(aead_nonce(self.n), ct, self.h)
            self.n += 1
        self.mix_hash(ct)
        return pt

    # message 1: -> e
    def write1(self, payload=b""):
        self.mix_hash(self.e_pub)
        return self.e_pub + self.enc_hash(payload)

    def read1(self, m):
        self.re = m[:32]
        self.mix_hash(self.re)
        return self.dec_hash(m[32:])

    # message 2: <- e, ee, s, es
    def write2(self, payload):
        out = self.e_pub
        self.mix_hash(self.e_pub)
        self.mix_key(x25519(self.e, self.re))
        out += self.enc_hash(self.s_pub)
        self.mix_key(x25519(self.s, self.re))
        return out + self.enc_hash(payload)

    def read2(self, m):
        self.re = m[:32]
        self.mix_hash(self.re)
        self.mix_key(x25519(self.e, self.re))
        self.rs = self.dec_hash(m[32:80])
        self.mix_key(x25519(self.e, self.rs))
        return self.dec_hash(m[80:])

    # message 3: -> s, se
    def write3(self, payload):
        out = self.enc_hash(self.s_pub)
        self.mix_key(x25519(self.s, self.re))
        return out + self.enc_hash(payload)

    def read3(self, m):
        self.rs = self.dec_hash(m[:48])
        self.mix_key(x25519(self.e, self.rs))
        return self.dec_hash(m[48:])

    def split(self):
        k1, k2 = hkdf2(self.ck, b"")
        return k1, k2  # k_i2r, k_r2i


def prologue(init_id: bytes, resp_id: bytes) -> bytes:
    return b"meshnode/1 XX" + init_id + resp_id


# ---------------------------------------------------------------- §8 vector parsing
def parse_vectors(md_text: str):
    """Fenced blocks whose first line is `vector: NAME`; hex, whitespace ignored."""
    vecs = {}
    lines = md_text.split("\n")
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            j = i + 1
            block = []
            while j < len(lines) and not lines[j].startswith("```"):
                block.append(lines[j])
                j += 1
            if block and block[0].startswith("vector:"):
                name = block[0].split(":", 1)[1].strip()
                vecs[name] = bytes.fromhex("".join("".join(block[1:]).split()))
            i = j + 1
        else:
            i += 1
    return vecs
