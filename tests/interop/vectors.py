"""Reproduces every golden vector of PROTOCOL.md §8 with meshproto.py, from the document's text alone.

Usage: python3 vectors.py PATH/TO/mesh/PROTOCOL.md

Exit status 0 only when every vector in the document is reproduced byte for byte, every §8.2 packet vector
reassembles into its frame, and the self-checks pass. A vector this script does not know how to compute is a
failure too: a vector added to PROTOCOL.md needs its computation added here, from the text that defines it.
"""
import struct
import sys

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from meshproto import (ACK, ANNOUNCE, BROADCAST_ID, CLOSE, HANDSHAKE_1, HANDSHAKE_2, HANDSHAKE_3, LINK_ACK,
                       PEER_SYNC, PROTOCOL_NAME, TRANSPORT, UNKNOWN_SESSION, Identity, NoiseXX, Reassembler,
                       auth_header, channel_key, channel_salt, channel_tag, fragment, header, id_digest,
                       make_announce, make_broadcast, make_channel, pad, parse_announce, parse_vectors, prologue,
                       rekey, seal_frame)

ident = Identity(b"\x01" * 32, b"\x02" * 32)
OTHER = bytes.fromhex("1122334455667788")
THIRD = bytes.fromhex("99aabbccddeef001")
K42 = b"\x42" * 32


def chacha_keystream(key, n):
    """The ChaCha20 keystream (RFC 8439 block function, 20 rounds) with this key, nonce 0, block counter 0."""
    enc = Cipher(algorithms.ChaCha20(key, b"\x00" * 16), mode=None).encryptor()
    return enc.update(b"\x00" * n)


def frames_and_identity(out):
    """§8.1."""
    out["identity_ed25519_public"] = ident.ed_pub
    out["identity_x25519_public"] = ident.x_pub
    out["node_id"] = ident.node_id
    out["fingerprint"] = id_digest(ident.ed_pub, ident.x_pub)[:10]
    out["header_transport"] = header(TRANSPORT, 7, 0x01020304, OTHER, THIRD)
    ann = make_announce(ident, 3, "alice", 0x0a0b0c0d, 7)
    out["announce"] = ann
    out["broadcast"] = make_broadcast(ident, b"hello mesh", 0x0a0b0c0e, 7)
    out["handshake_1"] = header(HANDSHAKE_1, 7, 0x01020304, ident.node_id, OTHER) + b"\x2a" + bytes(range(32))
    out["transport"] = seal_frame(TRANSPORT, 7, 0x01020304, ident.node_id, OTHER, 0x2a, 0, False, 5, K42, b"hello")
    out["rekey_key_epoch1"] = rekey(K42)
    out["unknown_session"] = header(UNKNOWN_SESSION, 7, 0x05060708, OTHER, ident.node_id) + b"\x2a\x81"
    out["channel_tag_general"] = channel_tag("general")
    out["channel"] = make_channel(ident.node_id, "general", b"\x33" * 32, 0x0a0b0c0f, bytes(range(0x10, 0x28)),
                                  b"hi all")
    out["peer_sync"] = header(PEER_SYNC, 0, 0x05060709, OTHER, THIRD) + bytes([2]) + struct.pack(">H", 30) + \
        struct.pack(">I", 0x0a0b0c0d) + ident.node_id + ann[22:]
    out["link_ack"] = header(LINK_ACK, 0, 0x0a0b0c11, ident.node_id, BROADCAST_ID) + OTHER + \
        struct.pack(">I", 0x01020304) + THIRD + struct.pack(">I", 0x05060708)
    out["hello"] = make_announce(ident, 3, "alice", 0x0a0b0c12, 0)


PACKET_VECTORS = [("packet_single", bytes(range(10)), 247, 5),
                  ("packets_mtu23_frame50", bytes(range(50)), 23, 0),
                  ("packets_mtu23_frame19", bytes(range(19)), 23, 0),
                  ("packets_mtu23_frame20", bytes(range(20)), 23, 0),
                  ("packets_mtu23_seq62_frame40", bytes(range(40)), 23, 62)]


def packets(out):
    """§8.2: the packets of one frame, concatenated."""
    for name, frame, mtu, seq in PACKET_VECTORS:
        out[name] = b"".join(fragment(frame, mtu, seq)[0])


def sessions(out):
    """§8.3: sealed frames, padding, and a whole Noise XX handshake."""
    out["session_transport_epoch1"] = seal_frame(TRANSPORT, 7, 0x01020304, OTHER, THIRD, 5, 1, False, 300,
                                                 rekey(K42), b"meshnode")
    for kind, name, fid, nonce, message in [
            (TRANSPORT, "session_transport", 0x0a0b0c13, 6, b"forty bytes of text fill the 64 bucket.."),
            (ACK, "session_ack", 0x0a0b0c14, 7, struct.pack(">QQ", 1, 0x0102030405060708)),
            (CLOSE, "session_close", 0x0a0b0c15, 8, b"\x00")]:
        pt = pad(message)
        out[name + "_plaintext"] = pt
        out[name if kind != TRANSPORT else "session_transport_padded"] = \
            seal_frame(kind, 7, fid, ident.node_id, OTHER, 0x2a, 0, True, nonce, K42, pt)
    out["session_transport_padded_plaintext"] = out.pop("session_transport_plaintext")

    resp = Identity(b"\x03" * 32, b"\x04" * 32)
    out["noise_responder_ed25519_public"] = resp.ed_pub
    out["noise_responder_x25519_public"] = resp.x_pub
    out["noise_responder_node_id"] = resp.node_id
    out["noise_h_initial"] = PROTOCOL_NAME  # exactly 32 bytes: used as h without hashing
    pro = prologue(ident.node_id, resp.node_id)
    out["noise_prologue"] = pro

    # The ephemeral keys as the text says meshnode drew them (informative there, reproduced here): a session layer's
    # ChaCha20 keystream from its seed; the initiator spends 4 bytes on the session id before the handshake seed.
    ks_i = chacha_keystream(b"\x0a" * 32, 36)
    sid = struct.unpack("<I", ks_i[:4])[0] & 0xFF
    e_i = chacha_keystream(ks_i[4:36], 32)
    e_r = chacha_keystream(chacha_keystream(b"\x0b" * 32, 32), 32)
    out["noise_initiator_ephemeral_private"] = e_i
    out["noise_responder_ephemeral_private"] = e_r

    ini = NoiseXX(True, ident.x_priv, pro, e=X25519PrivateKey.from_private_bytes(e_i))
    res = NoiseXX(False, resp.x_priv, pro, e=X25519PrivateKey.from_private_bytes(e_r))
    m1 = ini.write1()
    res.read1(m1)
    m2 = res.write2(resp.ed_pub)
    if ini.read2(m2) != resp.ed_pub or ini.rs != resp.x_pub:
        raise AssertionError("noise: the initiator does not read the responder's keys from message 2")
    m3 = ini.write3(ident.ed_pub)
    if res.read3(m3) != ident.ed_pub or res.rs != ident.x_pub:
        raise AssertionError("noise: the responder does not read the initiator's keys from message 3")
    if ini.h != res.h or ini.split() != res.split():
        raise AssertionError("noise: the two sides end with different h or transport keys")
    i_id, r_id = ident.node_id, resp.node_id
    s = bytes([sid])
    out["noise_handshake_1"] = header(HANDSHAKE_1, 7, 0x21dac736, i_id, r_id) + s + m1
    out["noise_handshake_2"] = header(HANDSHAKE_2, 7, 0xa810e6bd, r_id, i_id) + s + m2
    out["noise_handshake_3"] = header(HANDSHAKE_3, 7, 0x8e706711, i_id, r_id) + s + m3
    out["noise_handshake_hash"] = ini.h
    k_i2r, k_r2i = ini.split()
    out["noise_k_i2r"] = k_i2r
    out["noise_k_r2i"] = k_r2i
    out["noise_transport_i2r"] = seal_frame(TRANSPORT, 7, 0xbaac6b7c, i_id, r_id, sid, 0, True, 0, k_i2r,
                                            pad(b"hello responder"))
    out["noise_transport_r2i"] = seal_frame(TRANSPORT, 7, 0x5210fffc, r_id, i_id, sid, 0, True, 0, k_r2i,
                                            pad(b"hello initiator"))


def channels(out):
    """§8.4."""
    pw = b"correct horse battery staple"
    out["channel_salt_general"] = channel_salt("general")
    kc = channel_key("general", pw, m=64, t=1, p=1)
    out["channel_key_cheap"] = kc
    out["channel_key_default"] = channel_key("general", pw)
    out["channel_frame"] = make_channel(ident.node_id, "general", kc, 0x0a0b0c10, chacha_keystream(b"\x07" * 32, 24),
                                        b"meet at the north gate")


def routing_plaintexts(out):
    """§8.5."""
    out["transport_plaintext"] = bytes.fromhex("0102030405060708") + b"hi"
    out["ack_plaintext"] = struct.pack(">QQ", 1, 0x0102030405060708)


def reassembly_failures():
    """§8.2 says the packets must also reassemble back into the frame."""
    bad = []
    for name, frame, mtu, seq in PACKET_VECTORS:
        pkts, _ = fragment(frame, mtu, seq)
        r = Reassembler()
        got = [r.push(p, 0.0) for p in pkts]
        if not (got[-1] == frame and all(g is None for g in got[:-1])):
            bad.append(name)
    return bad


def self_checks():
    """A handshake between two instances of this code with random keys, and the announce vector parsed back."""
    a, b = Identity.generate(), Identity.generate()
    pro = prologue(a.node_id, b.node_id)
    i, r = NoiseXX(True, a.x_priv, pro), NoiseXX(False, b.x_priv, pro)
    m1 = i.write1()
    r.read1(m1)
    m2 = r.write2(b.ed_pub)
    assert i.read2(m2) == b.ed_pub
    m3 = i.write3(a.ed_pub)
    assert r.read3(m3) == a.ed_pub
    assert (len(m1), len(m2), len(m3)) == (32, 128, 96) and i.split() == r.split()


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: python3 vectors.py PATH/TO/mesh/PROTOCOL.md")
    with open(sys.argv[1], encoding="utf-8") as f:
        doc = parse_vectors(f.read())
    if not doc:
        sys.exit("FAIL: no `vector:` blocks found in %s" % sys.argv[1])
    mine = {}
    for part in (frames_and_identity, packets, sessions, channels, routing_plaintexts):
        part(mine)
    failures = []
    for name, want in doc.items():
        got = mine.get(name)
        if got is None:
            print("%-36s NOT COMPUTED" % name)
            failures.append("%s: vector in PROTOCOL.md that vectors.py does not compute (add it here)" % name)
        elif got == want:
            print("%-36s OK  (%d bytes)" % (name, len(want)))
        else:
            print("%-36s MISMATCH\n   want %s\n   got  %s" % (name, want.hex(), got.hex()))
            failures.append("%s: differs from PROTOCOL.md" % name)
    for name in sorted(set(mine) - set(doc)):
        failures.append("%s: computed here but no longer in PROTOCOL.md (renamed or removed?)" % name)
    for name in reassembly_failures():
        failures.append("%s: the packets do not reassemble into the frame" % name)
    try:
        self_checks()
        f = doc.get("announce")
        if f is not None and parse_announce(auth_header(f), f[6:14], f[22:])["nick"] != "alice":
            failures.append("announce: parses back with another nickname")
    except (AssertionError, ValueError) as e:
        failures.append("self-check: %r" % e)
    print("%d/%d vectors reproduced" % (sum(1 for n in doc if mine.get(n) == doc[n]), len(doc)))
    if failures:
        print("FAIL: %d problem(s):" % len(failures))
        for f in failures:
            print("  - " + f)
        sys.exit(1)
    print("PASS: every PROTOCOL.md §8 vector reproduced independently")


if __name__ == "__main__":
    main()
