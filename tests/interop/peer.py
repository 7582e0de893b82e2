"""An independent meshnode peer over the UDP link of PROTOCOL.md Appendix A, run against a live `meshnode run`.

Usage: python3 peer.py --bin PATH/TO/meshnode [--extended] [--node-initiates] [--mtu 23] [--no-hop-acks] ...
(--bin defaults to $MESHNODE_BIN). It starts the node itself in a fresh temporary directory (data dir and logs),
on 127.0.0.1 with ports chosen by the kernel: this peer's socket binds port 0 and is the node's static peer, the
node binds port 0 too and the peer learns its address from the node's first beacon. It drives the scenario through
the radio and the node's control socket, then kills the node and removes the directory.

Exit status 0 only when every check of the scenario passed; otherwise non-zero, with the failed checks and the tail of
the node's log. Every wait has a timeout, and --timeout bounds the whole run.
"""
import argparse
import copy
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import traceback

from meshproto import *

BIN = None       # the meshnode binary (--bin)
NODE_DIR = None  # the node's data directory, inside the run's temporary directory
T0 = time.time()
LOGF = None


def log(*a):
    line = "%7.3f %s" % (time.time() - T0, " ".join(str(x) for x in a))
    print(line, flush=True)
    if LOGF:
        LOGF.write(line + "\n")
        LOGF.flush()


# ---------------------------------------------------------------- UDP datagram protocol (hal::udp docs)
MAGIC = b"MNUD"
BEACON, CONNECT, ACCEPT, REJECT, DATA, KEEPALIVE, DISCONNECT = 1, 2, 3, 4, 5, 6, 7
UDP_NAMES = {1: "BEACON", 2: "CONNECT", 3: "ACCEPT", 4: "REJECT", 5: "DATA", 6: "KEEPALIVE", 7: "DISCONNECT"}
# Not in the docs: found by sniffing the node's beacons (see report).
SERVICE_UUID = bytes.fromhex("6d6573686e6f6465800000000000b1e0")
BEACON_INTERVAL = 0.25
KEEPALIVE_INTERVAL = 0.5
KEEPALIVE_TIMEOUT = 3.0


class Peer:
    def __init__(self, args):
        self.args = args
        self.ident = Identity.generate()
        self.nick = args.nick
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", args.my_port))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        # The node's address: given (--node-port), or learnt from its first datagram (it beacons to us, its static
        # peer). Datagrams from any other address are dropped.
        self.node_addr = ("127.0.0.1", args.node_port) if args.node_port else None
        self.instance = os.urandom(8)
        self.my_mtu = args.mtu
        # link state
        self.link_up = False
        self.my_link = 7
        self.their_link = None
        self.their_instance = None
        self.att_mtu = None
        self.tx_dseq = 0           # DATA seq u32
        self.rx_dseq = None
        self.pseq = 0              # 6-bit packet seq
        self.reasm = None
        self.last_tx = 0.0
        self.last_rx = 0.0
        self.next_beacon = 0.0
        self.pending_connect = None
        # mesh state
        self.neighbour = None      # node id bound to link
        self.peers = {}            # node id -> announce info
        self.dup = {}
        self.next_hello = None
        self.next_announce = time.time() + 0.5
        # hop acks
        self.link_acks_peer = False   # has a LINK_ACK arrived on the link
        self.ack_batch = []
        self.ack_batch_deadline = None
        self.held = {}             # (src, fid) -> [frame, sends, deadline, first_sent]
        self.srtt = None
        self.rttvar = None
        self.stats = {"hop_resends": 0, "hop_giveups": 0, "acks_rx": 0, "acks_tx": 0}
        # sessions
        self.hs = {}               # (peer, sid) -> dict(noise, role, ...)
        self.sessions = {}         # peer -> dict
        self.inbox = []            # (peer, message_id, payload)
        self.acked = set()         # message ids acked to us
        self.frames_rx = []
        self.broadcasts = []
        self.channels = {}
        self.channel_msgs = []
        self.lazy_acks = False     # experiment: after negotiating, ack hellos only
        self.resend_log = []

    # ---------------- UDP layer
    def udp_send(self, typ, body=b""):
        if self.node_addr is None:
            return
        self.sock.sendto(MAGIC + bytes([1, typ]) + self.instance + body, self.node_addr)

    def send_beacon(self):
        data = self.ident.node_id
        self.udp_send(BEACON, struct.pack(">H", self.my_mtu) + SERVICE_UUID + bytes([len(data)]) + data)

    def on_datagram(self, d, addr, now):
        if self.node_addr is None and addr[0] == "127.0.0.1" and d[:4] == MAGIC:
            self.node_addr = addr
            log("udp: the node is at", "%s:%d" % addr)
        if addr != self.node_addr:
            log("udp: datagram from", addr, "(not the node) dropped")
            return
        if len(d) < 14 or d[:4] != MAGIC or d[4] != 1:
            log("udp: bad datagram", d[:16].hex())
            return
        typ, inst, body = d[5], d[6:14], d[14:]
        if typ == BEACON:
            mtu = struct.unpack(">H", body[0:2])[0]
            if not getattr(self, "_seen_beacon", False):
                self._seen_beacon = True
                log("udp: BEACON from", inst.hex(), "mtu", mtu, "uuid", body[2:18].hex(), "data",
                    body[19:19 + body[18]].hex())
            if self.args.connect_first and not self.link_up and self.pending_connect is None:
                self.pending_connect = now
                self.udp_send(CONNECT, struct.pack(">IH", self.my_link, self.my_mtu))
                log("udp: sent CONNECT src_link", self.my_link)
            return
        if typ == CONNECT:
            src_link, mtu = struct.unpack(">IH", body[:6])
            log("udp: CONNECT src_link", src_link, "mtu", mtu, "inst", inst.hex())
            if self.link_up and inst == self.their_instance and src_link == self.their_link:
                self.udp_send(ACCEPT, struct.pack(">IIH", src_link, self.my_link, self.att_mtu))
                return
            if self.link_up:
                self.udp_send(REJECT, struct.pack(">I", src_link))
                return
            self.their_link = src_link
            self.their_instance = inst
            self.att_mtu = min(mtu, self.my_mtu)
            self.udp_send(ACCEPT, struct.pack(">IIH", src_link, self.my_link, self.att_mtu))
            self.on_link_up(now, "peripheral")
            return
        if typ == ACCEPT:
            dst_link, src_link, mtu = struct.unpack(">IIH", body[:10])
            log("udp: ACCEPT dst_link", dst_link, "src_link", src_link, "mtu", mtu)
            if not self.link_up and dst_link == self.my_link:
                self.their_link = src_link
                self.their_instance = inst
                self.att_mtu = mtu
                self.on_link_up(now, "central")
            return
        if typ == REJECT:
            log("udp: REJECT", body.hex())
            self.pending_connect = None
            return
        if typ == DISCONNECT:
            log("udp: DISCONNECT", body.hex())
            self.on_link_down("remote disconnect")
            return
        if not self.link_up or inst != self.their_instance:
            log("udp: datagram type", typ, "for no link; dropped")
            return
        self.last_rx = now
        if typ == KEEPALIVE:
            return
        if typ == DATA:
            dst_link, dseq = struct.unpack(">II", body[:8])
            if dst_link != self.my_link:
                log("udp: DATA for link", dst_link, "dropped")
                return
            if self.rx_dseq is not None and dseq <= self.rx_dseq:
                log("udp: out of order DATA", dseq)
                return
            if self.rx_dseq is not None and dseq != self.rx_dseq + 1:
                log("udp: DATA gap", self.rx_dseq, "->", dseq)
            if self.rx_dseq is None:
                log("udp: first DATA seq", dseq, "dst_link", dst_link)
            self.rx_dseq = dseq
            frame = self.reasm.push(body[8:], now)
            if frame is not None:
                self.on_frame(frame, now)
            return
        log("udp: unknown type", typ)

    def on_link_up(self, now, role):
        self.link_up = True
        self.tx_dseq = 0
        self.rx_dseq = None
        self.pseq = 0
        self.reasm = Reassembler()
        self.last_rx = now
        self.last_tx = now
        log("link up as", role, "att_mtu", self.att_mtu, "their link", self.their_link)
        self.send_hello(now)

    def on_link_down(self, why):
        if self.link_up:
            log("link down:", why)
        self.link_up = False
        self.neighbour = None
        self.link_acks_peer = False
        self.held.clear()
        self.pending_connect = None

    def send_packets(self, frame, now):
        pkts, self.pseq = fragment(frame, self.att_mtu, self.pseq)
        for p in pkts:
            self.udp_send(DATA, struct.pack(">II", self.their_link, self.tx_dseq) + p)
            self.tx_dseq += 1
        self.last_tx = now
        return len(pkts)

    # ---------------- frames out
    def send_frame(self, frame, now, hold=True):
        if not self.link_up:
            log("tx: no link, frame lost", Frame(frame))
            return
        n = self.send_packets(frame, now)
        f = Frame(frame)
        log("tx:", f, "in", n, "packet(s)")
        self.dup[(f.src, f.frame_id)] = now
        if hold and self.link_acks_peer and f.kind != LINK_ACK and not self.args.no_hop_acks:
            key = (f.src, f.frame_id)
            if key in self.held:
                self.held[key][1] += 1
                self.held[key][2] = now + self.rto() * (2 ** (self.held[key][1] - 1))
            else:
                self.held[key] = [frame, 1, now + self.rto(), now]

    def rto(self):
        if self.srtt is None:
            return 0.250
        v = self.srtt + max(0.001, 4 * self.rttvar)
        return min(4.0, max(0.050, v))

    def rtt_sample(self, r):
        if self.srtt is None:
            self.srtt, self.rttvar = r, r / 2
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - r)
            self.srtt = 0.875 * self.srtt + 0.125 * r

    def fid(self):
        return struct.unpack(">I", os.urandom(4))[0]

    def send_hello(self, now):
        caps = self.args.caps
        fr = make_announce(self.ident, caps, self.nick, self.fid(), 0)
        self.last_hello = (Frame(fr).frame_id, now)
        self.send_frame(fr, now)
        self.next_hello = now + 15

    def send_announce(self, now):
        fr = make_announce(self.ident, self.args.caps, self.nick, self.fid(), 7)
        self.send_frame(fr, now)
        self.next_announce = now + 60

    # ---------------- frames in
    def on_frame(self, raw, now):
        try:
            f = check_header(raw)
        except ValueError as e:
            log("rx: header rule drop:", e, raw[:22].hex())
            return
        log("rx:", f)
        self.frames_rx.append((now, f))
        # §7.10 receive rules 1 and 2
        if f.kind == LINK_ACK:
            self.on_link_ack(f, now)
            return
        key = (f.src, f.frame_id)
        if self.lazy_acks and not (f.kind == ANNOUNCE and f.ttl == 0):
            self.resend_log.append((now, f.kind, f.frame_id))
            log("hop: (lazy) not acknowledging %08x" % f.frame_id)
        elif key in self.held:
            del self.held[key]
            log("hop: implicit ack", key[0].hex(), "%08x" % key[1])
        elif not self.args.no_hop_acks and (self.link_acks_peer or (f.kind == ANNOUNCE and f.ttl == 0)):
            if key not in self.ack_batch:
                self.ack_batch.append(key)
                if self.ack_batch_deadline is None:
                    self.ack_batch_deadline = now + 0.010
                if len(self.ack_batch) >= max(1, min(32, (self.att_mtu - 26) // 12)):
                    self.flush_acks(now)
        if f.ttl >= 1:
            if key in self.dup:
                log("rx: duplicate")
                return
            self.dup[key] = now
        if f.src == self.ident.node_id:
            return
        if f.kind == ANNOUNCE:
            try:
                info = parse_announce(auth_header(raw), f.src, f.body)
            except (ValueError, UnicodeDecodeError) as e:
                log("rx: announce refused:", e)
                return
            new = f.src not in self.peers
            self.peers[f.src] = info
            log("  announce: nick=%r caps=%04x fp=%s%s" % (info["nick"], info["caps"],
                fingerprint(info["ed_pub"], info["x_pub"]), " (hello)" if f.ttl == 0 else ""))
            if f.ttl == 0 and self.neighbour != f.src:
                self.neighbour = f.src
                log("  NeighbourUp", f.src.hex())
                self.next_announce = min(self.next_announce, now + 0.3)
            return
        if f.kind == BROADCAST:
            info = self.peers.get(f.src)
            msg, sig = f.body[:-64], f.body[-64:]
            ok = info is not None and ed_verify(info["ed_pub"], sig, b"meshnode/1 broadcast" + auth_header(raw) + msg)
            log("  BROADCAST %r signature %s" % (msg, "ok" if ok else "BAD"))
            if ok:
                self.broadcasts.append(msg)
            return
        if f.kind == CHANNEL:
            tag, nonce24, ct = f.body[:8], f.body[8:32], f.body[32:]
            for name, key in self.channels.items():
                if channel_tag(name) == tag:
                    try:
                        pt = xchacha_open(key, nonce24, ct, auth_header(raw) + tag)
                        log("  CHANNEL #%s %r" % (name, pt))
                        self.channel_msgs.append((name, pt))
                    except InvalidTag:
                        log("  CHANNEL #%s: AEAD failed" % name)
            return
        if f.dst != self.ident.node_id:
            return
        if f.kind in (HANDSHAKE_1, HANDSHAKE_2, HANDSHAKE_3):
            self.on_handshake(f, now)
        elif f.kind in (TRANSPORT, ACK, CLOSE):
            self.on_sealed(f, raw, now)
        elif f.kind == UNKNOWN_SESSION:
            log("  UNKNOWN_SESSION sid", f.body[0], "epoch_flags", f.body[1])
        elif f.kind == PEER_SYNC:
            log("  PEER_SYNC hops", f.body[0])

    def on_link_ack(self, f, now):
        if self.args.no_hop_acks:
            log("  LINK_ACK dropped (hop acks off)")
            return
        if self.neighbour is not None and f.src != self.neighbour:
            log("  LINK_ACK foreign")
            return
        if len(f.body) % 12 or not 1 <= len(f.body) // 12 <= 32:
            log("  LINK_ACK bad length")
            return
        if not self.link_acks_peer:
            log("  link acknowledges from now on")
        self.link_acks_peer = True
        self.stats["acks_rx"] += 1
        for i in range(0, len(f.body), 12):
            key = (f.body[i:i + 8], struct.unpack(">I", f.body[i + 8:i + 12])[0])
            w = self.held.pop(key, None)
            if w is not None:
                if w[1] == 1:
                    self.rtt_sample(now - w[3])
                log("  LINK_ACK acks %s %08x (sends %d)" % (key[0].hex(), key[1], w[1]))
            elif getattr(self, "last_hello", None) and key == (self.ident.node_id, self.last_hello[0]):
                self.rtt_sample(now - self.last_hello[1])
                log("  LINK_ACK acks our hello %08x, rtt %.1f ms" % (key[1], (now - self.last_hello[1]) * 1e3))
            else:
                log("  LINK_ACK key matches no wait %s %08x" % (key[0].hex(), key[1]))

    def flush_acks(self, now):
        if not self.ack_batch or not self.link_up:
            self.ack_batch = []
            self.ack_batch_deadline = None
            return
        body = b"".join(s + struct.pack(">I", fi) for s, fi in self.ack_batch[:32])
        fr = header(LINK_ACK, 0, self.fid(), self.ident.node_id, BROADCAST_ID) + body
        self.ack_batch = self.ack_batch[32:]
        self.ack_batch_deadline = None
        self.stats["acks_tx"] += 1
        self.send_frame(fr, now, hold=False)

    # ---------------- sessions (§6)
    def start_handshake(self, peer, now):
        sid = os.urandom(1)[0]
        nz = NoiseXX(True, self.ident.x_priv, prologue(self.ident.node_id, peer))
        m1 = nz.write1()
        self.hs[(peer, sid)] = dict(noise=nz, role="i", peer=peer, sid=sid, m1=m1, sends=1, next=now + 5)
        self.send_frame(header(HANDSHAKE_1, 7, self.fid(), self.ident.node_id, peer) + bytes([sid]) + m1, now)
        log("noise: HANDSHAKE_1 sent, session id", sid)
        return sid

    def establish(self, peer, sid, nz, role, peer_ed, now):
        k1, k2 = nz.split()
        ks, kr = (k1, k2) if role == "i" else (k2, k1)
        self.sessions[peer] = dict(sid=sid, role=role, ks=ks, kr=kr, send_nonce=0, send_epoch=0,
                                   recv_epoch=0, recv_key=kr, prev_key=None, seen_nonces=set(),
                                   peer_ed=peer_ed, established=now)
        log("noise: session established with", peer.hex(), "sid", sid, "role", role,
            "handshake hash", nz.h.hex()[:16])

    def check_peer_keys(self, peer, ed, rs):
        if node_id(ed, rs) != peer:
            log("noise: node_id(ed25519, rs) != peer id; handshake fails")
            return False
        info = self.peers.get(peer)
        if info and (info["ed_pub"], info["x_pub"]) != (ed, rs):
            log("noise: keys differ from the announce")
        return True

    def on_handshake(self, f, now):
        if len(f.body) < 2:
            return
        sid, msg = f.body[0], f.body[1:]
        peer = f.src
        if f.kind == HANDSHAKE_1:
            if len(msg) != 32:
                log("noise: HANDSHAKE_1 wrong length", len(msg))
                return
            st = self.hs.get((peer, sid))
            if st and st["role"] == "r" and st["m1"] == msg:
                log("noise: duplicate HANDSHAKE_1, resending same HANDSHAKE_2")
                self.send_frame(header(HANDSHAKE_2, 7, self.fid(), self.ident.node_id, peer) +
                                bytes([sid]) + st["m2"], now)
                return
            nz = NoiseXX(False, self.ident.x_priv, prologue(peer, self.ident.node_id))
            nz.read1(msg)
            m2 = nz.write2(self.ident.ed_pub)
            self.hs[(peer, sid)] = dict(noise=nz, role="r", peer=peer, sid=sid, m1=msg, m2=m2)
            self.send_frame(header(HANDSHAKE_2, 7, self.fid(), self.ident.node_id, peer) + bytes([sid]) + m2, now)
            log("noise: answered HANDSHAKE_1 sid", sid)
        elif f.kind == HANDSHAKE_2:
            st = self.hs.get((peer, sid))
            if st is None or st["role"] != "i":
                if peer in self.sessions and self.sessions[peer]["sid"] == sid and "m3" in self.sessions[peer]:
                    log("noise: HANDSHAKE_2 again: resending HANDSHAKE_3")
                    self.send_frame(header(HANDSHAKE_3, 7, self.fid(), self.ident.node_id, peer) + bytes([sid]) +
                                    self.sessions[peer]["m3"], now)
                return
            if len(msg) != 128:
                log("noise: HANDSHAKE_2 wrong length", len(msg))
                return
            nz = st["noise"]
            trial = copy.copy(nz)
            try:
                ed = trial.read2(msg)
            except InvalidTag:
                log("noise: HANDSHAKE_2 does not verify; dropped")
                return
            if not self.check_peer_keys(peer, ed, trial.rs):
                del self.hs[(peer, sid)]
                return
            m3 = trial.write3(self.ident.ed_pub)
            del self.hs[(peer, sid)]
            if self.args.early_frame:
                # §6.8: a sealed frame that overtakes HANDSHAKE_3 must be held by the responder
                self.establish(peer, sid, trial, "i", ed, now)
                self.early_mid = self.send_message(peer, b"sent before HANDSHAKE_3", now)
                log("noise: (experiment) TRANSPORT sent before HANDSHAKE_3")
            self.send_frame(header(HANDSHAKE_3, 7, self.fid(), self.ident.node_id, peer) + bytes([sid]) + m3, now)
            if not self.args.early_frame:
                self.establish(peer, sid, trial, "i", ed, now)
            self.sessions[peer]["m3"] = m3
        else:
            st = self.hs.get((peer, sid))
            if st is None or st["role"] != "r" or len(msg) != 96:
                log("noise: unexpected HANDSHAKE_3")
                return
            trial = copy.copy(st["noise"])
            try:
                ed = trial.read3(msg)
            except InvalidTag:
                log("noise: HANDSHAKE_3 does not verify; dropped")
                return
            del self.hs[(peer, sid)]
            if self.check_peer_keys(peer, ed, trial.rs):
                self.establish(peer, sid, trial, "r", ed, now)

    def seal_send(self, peer, kind, plaintext, now, padded=True):
        s = self.sessions[peer]
        n = s["send_nonce"]
        s["send_nonce"] += 1
        pt = pad(plaintext) if padded else plaintext
        fr = seal_frame(kind, 7, self.fid(), self.ident.node_id, peer, s["sid"], s["send_epoch"], padded, n,
                        s["ks"], pt)
        self.send_frame(fr, now)

    def send_message(self, peer, text: bytes, now):
        mid = struct.unpack(">Q", os.urandom(8))[0]
        self.seal_send(peer, TRANSPORT, struct.pack(">Q", mid) + text, now)
        log("msg: sent message id %016x %r" % (mid, text))
        return mid

    def on_sealed(self, f, raw, now):
        s = self.sessions.get(f.src)
        if len(f.body) < 26:
            return
        sid, ef = f.body[0], f.body[1]
        nonce = struct.unpack(">Q", f.body[2:10])[0]
        if s is None or s["sid"] != sid:
            log("sealed: no session for sid", sid, "(would answer UNKNOWN_SESSION)")
            return
        if "m3" in s:
            del s["m3"]  # first authenticated frame from the responder ends HANDSHAKE_3 resends
        ep = ef & 0x7F
        d = (ep - s["recv_epoch"]) % 128
        if d == 0:
            key = s["recv_key"]
        elif 1 <= d <= 8:
            key = s["recv_key"]
            for _ in range(d):
                key = rekey(key)
        elif d == 127 and s["prev_key"]:
            key = s["prev_key"]
        else:
            log("sealed: stale epoch")
            return
        if nonce in s["seen_nonces"] or nonce == 2 ** 64 - 1:
            log("sealed: replay")
            return
        try:
            pt = open_sealed(raw, key)
        except InvalidTag:
            log("sealed: AEAD failed")
            return
        s["seen_nonces"].add(nonce)
        if 1 <= d <= 8:
            s["prev_key"] = s["recv_key"]
            s["recv_key"] = key
            s["recv_epoch"] = ep
        if ef & 0x80:
            try:
                pt = unpad(pt)
            except ValueError:
                log("sealed: bad padding")
                return
        log("  %s opened: nonce %d epoch %d padded %s plaintext %s" % (KIND_NAMES[f.kind], nonce, ep,
                                                                       bool(ef & 0x80), pt.hex()))
        if f.kind == TRANSPORT:
            if len(pt) < 8:
                return
            mid = struct.unpack(">Q", pt[:8])[0]
            self.inbox.append((f.src, mid, pt[8:]))
            log("msg: received id %016x %r" % (mid, pt[8:]))
            self.seal_send(f.src, ACK, pt[:8], now)
            log("msg: ACK sent for %016x" % mid)
        elif f.kind == ACK:
            for i in range(0, len(pt), 8):
                mid = struct.unpack(">Q", pt[i:i + 8])[0]
                self.acked.add(mid)
                log("msg: ACK received for %016x" % mid)
        elif f.kind == CLOSE:
            log("msg: CLOSE reason", pt.hex())
            del self.sessions[f.src]

    # ---------------- driving
    def tick(self, now):
        if now >= self.next_beacon:
            self.send_beacon()
            self.next_beacon = now + BEACON_INTERVAL
        if self.pending_connect is not None and not self.link_up and now - self.pending_connect > 0.5:
            self.udp_send(CONNECT, struct.pack(">IH", self.my_link, self.my_mtu))
            self.pending_connect = now
        if self.link_up:
            if now - self.last_tx >= KEEPALIVE_INTERVAL:
                self.udp_send(KEEPALIVE, struct.pack(">I", self.their_link))
                self.last_tx = now
            if now - self.last_rx > KEEPALIVE_TIMEOUT:
                self.udp_send(DISCONNECT, struct.pack(">I", self.my_link))
                self.on_link_down("keepalive timeout")
                return
            if self.ack_batch_deadline is not None and now >= self.ack_batch_deadline:
                self.flush_acks(now)
            for key, w in list(self.held.items()):
                if now >= w[2]:
                    if w[1] >= 4:
                        log("hop: gave up on %s %08x" % (key[0].hex(), key[1]))
                        self.stats["hop_giveups"] += 1
                        del self.held[key]
                    else:
                        self.stats["hop_resends"] += 1
                        log("hop: resend %08x (send %d)" % (key[1], w[1] + 1))
                        self.send_frame(w[0], now)
            if self.next_hello and now >= self.next_hello:
                self.send_hello(now)
            if self.neighbour and now >= self.next_announce and not self.args.no_announce:
                self.send_announce(now)
            for (peer, sid), st in list(self.hs.items()):
                if st["role"] == "i" and now >= st["next"]:
                    if st["sends"] >= 4:
                        log("noise: handshake timeout")
                        del self.hs[(peer, sid)]
                    else:
                        st["sends"] += 1
                        st["next"] = now + 5
                        self.send_frame(header(HANDSHAKE_1, 7, self.fid(), self.ident.node_id, peer) +
                                        bytes([sid]) + st["m1"], now)

    def pump(self, timeout):
        end = time.time() + timeout
        while True:
            now = time.time()
            self.tick(now)
            if now >= end:
                return
            r, _, _ = select.select([self.sock], [], [], min(0.005, end - now))
            if r:
                while True:
                    try:
                        d, a = self.sock.recvfrom(4096)
                    except BlockingIOError:
                        break
                    self.on_datagram(d, a, time.time())

    def run_until(self, pred, timeout, what):
        end = time.time() + timeout
        while time.time() < end:
            self.pump(0.05)
            if pred():
                return True
        log("TIMEOUT waiting for", what)
        return False


# ---------------------------------------------------------------- the node process and its control socket
PEER = None  # the Peer: ctl() keeps its radio going while a control command runs


class Timeout(Exception):
    pass


def ctl(*args, stdin_text=None, timeout=30):
    """Runs `meshnode ctl` and returns its output; the peer's radio keeps running meanwhile (keepalives, acks)."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen([BIN, "ctl", "--data-dir", NODE_DIR] + list(args), stdout=out,
                                stderr=subprocess.STDOUT, text=True,
                                stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL)
        if stdin_text is not None:
            proc.stdin.write(stdin_text)
            proc.stdin.close()
        end = time.time() + timeout
        while proc.poll() is None:
            if time.time() >= end:
                proc.kill()
                proc.wait()
                raise Timeout("meshnode ctl %s: no answer within %d s" % (" ".join(args), timeout))
            if PEER is not None:
                PEER.pump(0.01)
            else:
                time.sleep(0.01)
        out.seek(0)
        return out.read()


def stat(name):
    """The node's counter `name` from `ctl --json stats` (whichever group counts it), or None."""
    try:
        tree = json.loads(ctl("--json", "stats"))
    except ValueError:
        return None

    def walk(v):
        if isinstance(v, dict):
            for k, x in v.items():
                if k == name and isinstance(x, int):
                    return x
                r = walk(x)
                if r is not None:
                    return r
        return None
    return walk(tree)


class Listener(threading.Thread):
    """`meshnode ctl --json listen`: the node's events, one JSON object a line."""

    def __init__(self):
        super().__init__(daemon=True)
        self.lines = []
        self.proc = subprocess.Popen([BIN, "ctl", "--data-dir", NODE_DIR, "--json", "listen"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def run(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            log("LISTEN:", line)

    def find(self, pred):
        for l in list(self.lines):
            try:
                o = json.loads(l)
            except ValueError:
                continue
            if isinstance(o, dict) and pred(o, l):
                return o
        return None

    def shows(self, p, pred, timeout, what):
        return p.run_until(lambda: self.find(pred) is not None, timeout, what)


def text_is(text):
    return lambda o, l: o.get("text") == text


def extended(p, nid, listener, results, args):
    now = time.time
    # long private messages both ways (multi-packet frames)
    long_text = ("0123456789abcdef" * 125)[:1999]
    mid = p.send_message(nid, long_text.encode(), now())
    results["long_msg_to_node_acked"] = p.run_until(lambda: mid in p.acked, 20, "ACK of long message")
    results["long_msg_to_node_shown"] = listener.shows(p, text_is(long_text), 10, "long text shown")
    ctl("send", p.ident.node_id.hex(), long_text)
    results["long_msg_from_node"] = p.run_until(lambda: any(m[2] == long_text.encode() for m in p.inbox), 20,
                                                "long message from node")
    # an unpadded message, then an epoch jump (rekey by 3) on our send direction
    s = p.sessions[nid]
    m = struct.unpack(">Q", os.urandom(8))[0]
    p.seal_send(nid, TRANSPORT, struct.pack(">Q", m) + b"unpadded text", now(), padded=False)
    results["unpadded_acked"] = p.run_until(lambda: m in p.acked, 20, "ACK of unpadded")
    s["ks"] = rekey(rekey(rekey(s["ks"])))
    s["send_epoch"] = 3
    m = struct.unpack(">Q", os.urandom(8))[0]
    p.seal_send(nid, TRANSPORT, struct.pack(">Q", m) + b"epoch three", now())
    results["epoch3_acked"] = p.run_until(lambda: m in p.acked, 20, "ACK at epoch 3")
    # a bogus session id: the node answers UNKNOWN_SESSION
    n0 = len(p.frames_rx)
    bogus = (s["sid"] + 1) % 256
    fr = seal_frame(TRANSPORT, 7, p.fid(), p.ident.node_id, nid, bogus, 5, True, 0, os.urandom(32), pad(b"x" * 9))
    p.send_frame(fr, now())
    results["unknown_session_reply"] = p.run_until(
        lambda: any(f.kind == UNKNOWN_SESSION for t, f in p.frames_rx[n0:]), 20, "UNKNOWN_SESSION")
    for t, f in p.frames_rx[n0:]:
        if f.kind == UNKNOWN_SESSION:
            log("  UNKNOWN_SESSION body", f.body.hex(), "(we sent sid %02x epoch_flags 85)" % bogus)
    # signed broadcast both ways
    p.send_frame(make_broadcast(p.ident, b"broadcast from python", p.fid()), now())
    results["broadcast_to_node_shown"] = listener.shows(p, text_is("broadcast from python"), 20, "bcast shown")
    ctl("broadcast", "broadcast from rust")
    results["broadcast_from_node_verified"] = p.run_until(lambda: b"broadcast from rust" in p.broadcasts, 20,
                                                          "node broadcast")
    # password channel both ways (default Argon2id parameters); `ctl join` answers once the node has the key
    t = time.time()
    p.channels["general"] = channel_key("general", b"correct horse battery staple")
    log("argon2id default parameters took %.2f s" % (time.time() - t))
    log("ctl join:", ctl("join", "general", stdin_text="correct horse battery staple\n", timeout=60).strip())
    p.send_frame(make_channel(p.ident.node_id, "general", p.channels["general"], p.fid(), os.urandom(24),
                              b"channel from python"), now())
    results["channel_to_node_shown"] = listener.shows(p, text_is("channel from python"), 20, "channel shown")
    ctl("broadcast", "--channel", "general", "channel from rust")
    results["channel_from_node_opened"] = p.run_until(
        lambda: ("general", b"channel from rust") in p.channel_msgs, 20, "node channel msg")
    # PEER_SYNC handing on the announce of a third identity we made up
    third = Identity.generate()
    ann = make_announce(third, 0x0002, "ghost", p.fid(), 7)
    a = Frame(ann)
    ps = header(PEER_SYNC, 0, p.fid(), p.ident.node_id, nid) + bytes([1]) + struct.pack(">H", 2) + \
        struct.pack(">I", a.frame_id) + third.node_id + a.body
    p.send_frame(ps, now())
    results["peer_sync_third_listed"] = poll(p, lambda: "ghost" in ctl("peers"), 20, "PEER_SYNC'd peer listed")
    log("ctl peers after PEER_SYNC:\n" + ctl("peers"))
    # Two announces §5.1 requires dropping. Each check waits for the node's bad-signature counter to move (the
    # node has judged the frame), then checks the announce did not enter the peers table.
    # 1. a small-order Ed25519 key (identity point, R = identity, S = 0): "verifies" any message without
    #    the strict checks
    bad0 = stat("drop_bad_signature") or 0
    A = bytes([1]) + bytes(31)
    xk = Identity.generate()
    fid_ = node_id(A, xk.x_pub)
    pre = A + xk.x_pub + struct.pack(">H", 2) + bytes([6]) + b"forged"
    fr = header(ANNOUNCE, 7, p.fid(), fid_, BROADCAST_ID) + pre + bytes([1]) + bytes(63)
    p.send_frame(fr, now())
    judged = poll(p, lambda: (stat("drop_bad_signature") or 0) > bad0, 20, "small-order announce dropped")
    results["node_rejects_small_order_announce"] = judged and "forged" not in ctl("peers")
    # 2. a non-canonical S (S + L) on an otherwise valid announce
    bad0 = stat("drop_bad_signature") or 0
    ghost2 = Identity.generate()
    fr = bytearray(make_announce(ghost2, 2, "noncanon", p.fid(), 7))
    S = int.from_bytes(fr[-32:], "little") + 2 ** 252 + 27742317777372353535851937790883648493
    fr[-32:] = S.to_bytes(32, "little")
    p.send_frame(bytes(fr), now())
    judged = poll(p, lambda: (stat("drop_bad_signature") or 0) > bad0, 20, "non-canonical S dropped")
    results["node_rejects_noncanonical_S"] = judged and "noncanon" not in ctl("peers")
    # lazy acknowledgement: say nothing about the node's next frames; it must send one of them again (§7.10)
    if p.link_acks_peer and not args.no_hop_acks:
        p.lazy_acks = True
        p.resend_log = []
        t0 = now()
        ctl("broadcast", "resend probe")

        def resent():
            ids = [fi for t, k, fi in p.resend_log]
            return len(ids) != len(set(ids))
        results["hop_resend_seen"] = p.run_until(resent, 20, "a hop-by-hop resend")
        times = ["%.0f ms" % ((t - t0) * 1000) for t, k, fi in p.resend_log]
        log("lazy: copies of unacknowledged frames at", times, [("%08x" % fi) for t, k, fi in p.resend_log])
        p.lazy_acks = False
    # CLOSE from the node (ctl close)
    log("ctl close:", ctl("close", p.ident.node_id.hex()).strip())
    results["close_received"] = p.run_until(lambda: nid not in p.sessions, 20, "CLOSE")


def poll(p, pred, timeout, what):
    """Like Peer.run_until, for conditions that cost a control command: checked every 0.2 s."""
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        p.pump(0.2)
    log("TIMEOUT waiting for", what)
    return False


def scenario(p, args, listener, results):
    """The checks; each result is True when it passed."""
    # 1. link + hello + announce
    results["link_up"] = p.run_until(lambda: p.link_up, 20, "link up")
    results["node_hello"] = p.run_until(lambda: p.neighbour is not None, 20, "node hello")
    nid = p.neighbour
    if not args.no_hop_acks:
        results["hop_acks_negotiated"] = p.run_until(lambda: p.link_acks_peer, 20, "a LINK_ACK")
    results["peers_lists_us"] = poll(p, lambda: p.ident.node_id.hex() in (out := ctl("peers")) and args.nick in out,
                                     20, "the node listing us")
    log("ctl peers:\n" + ctl("peers"))
    if nid is None:
        return
    if args.stop_after_peers:
        log("ctl send:", ctl("send", p.ident.node_id.hex(), "hello").strip())
        results["received_node_message"] = p.run_until(lambda: any(m[2] == b"hello" for m in p.inbox), 20,
                                                       "node's message")
        return
    if args.node_initiates:
        # the node starts the handshake: it has no session with us when asked to send
        log("ctl send:", ctl("send", p.ident.node_id.hex(), "hello").strip())
        results["node_initiated_session"] = p.run_until(lambda: nid in p.sessions, 20, "session")
        results["received_node_message"] = p.run_until(lambda: any(m[2] == b"hello" for m in p.inbox), 20,
                                                       "node's message")
        results["listen_shows_delivered"] = listener.shows(p, lambda o, l: o.get("event") == "delivered", 20,
                                                           "delivered event")
        mid = p.send_message(nid, args.msg.encode(), time.time())
        results["ack_of_our_message"] = p.run_until(lambda: mid in p.acked, 20, "ACK of our message")
        results["listen_shows_our_text"] = listener.shows(p, text_is(args.msg), 20, "our text shown")
    else:
        # we start the handshake and send first
        p.start_handshake(nid, time.time())
        results["session"] = p.run_until(lambda: nid in p.sessions, 20, "session")
        if args.early_frame:
            results["early_frame_acked"] = p.run_until(lambda: p.early_mid in p.acked, 20, "ACK of early frame")
        mid = p.send_message(nid, args.msg.encode(), time.time())
        results["ack_of_our_message"] = p.run_until(lambda: mid in p.acked, 20, "ACK of our message")
        results["listen_shows_our_text"] = listener.shows(p, text_is(args.msg), 20, "our text shown")
        # a message from the node to us
        log("ctl send:", ctl("send", p.ident.node_id.hex(), "hello").strip())
        results["received_node_message"] = p.run_until(lambda: any(m[2] == b"hello" for m in p.inbox), 20,
                                                       "node's message")
        results["listen_shows_delivered"] = listener.shows(p, lambda o, l: o.get("event") == "delivered", 20,
                                                           "delivered event")
    if args.extended:
        extended(p, nid, listener, results, args)
    log("ctl sessions:", ctl("sessions").strip())
    log("ctl --json stats:", ctl("--json", "stats").strip())
    log("peer stats:", p.stats)
    # clean link close
    if p.link_up:
        p.udp_send(DISCONNECT, struct.pack(">I", p.my_link))
        p.on_link_down("local disconnect")


def stop(proc, grace):
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tail(path, n):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)


def on_alarm(signum, frame):
    raise Timeout("the whole run took longer than --timeout")


def main():
    global LOGF, BIN, NODE_DIR, PEER
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.environ.get("MESHNODE_BIN"), help="the meshnode binary ($MESHNODE_BIN)")
    ap.add_argument("--work-dir", help="parent of the run's temporary directory (default: the system's)")
    ap.add_argument("--keep", action="store_true", help="keep the run's directory (node data and logs)")
    ap.add_argument("--timeout", type=int, default=120, help="seconds for the whole run before it fails")
    ap.add_argument("--no-hop-acks", action="store_true")
    ap.add_argument("--connect-first", action="store_true", help="we send CONNECT instead of waiting for it")
    ap.add_argument("--mtu", type=int, default=247)
    ap.add_argument("--node-port", type=int, default=0, help="the node's UDP port (0: the kernel picks one)")
    ap.add_argument("--my-port", type=int, default=0, help="this peer's UDP port (0: the kernel picks one)")
    ap.add_argument("--nick", default="pyindep")
    ap.add_argument("--msg", default="hello from an independent python peer \u2713")
    ap.add_argument("--node-initiates", action="store_true")
    ap.add_argument("--early-frame", action="store_true")
    ap.add_argument("--no-announce", action="store_true", help="hellos only, no mesh-wide announce")
    ap.add_argument("--caps", type=lambda s: int(s, 0), default=0x0002)
    ap.add_argument("--stop-after-peers", action="store_true")
    ap.add_argument("--extended", action="store_true", help="also probe broadcast, channel, rekey, ...")
    args = ap.parse_args()
    if not args.bin or not os.access(args.bin, os.X_OK):
        ap.error("--bin (or $MESHNODE_BIN) must name the meshnode binary; got %r" % args.bin)
    BIN = os.path.abspath(args.bin)
    run_dir = tempfile.mkdtemp(prefix="meshnode-interop-", dir=args.work_dir)
    NODE_DIR = os.path.join(run_dir, "node")
    os.makedirs(NODE_DIR, mode=0o700)
    node_log = os.path.join(run_dir, "node.log")
    LOGF = open(os.path.join(run_dir, "peer.log"), "w")
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args.timeout)
    node = listener = None
    results = {}
    error = None
    try:
        p = PEER = Peer(args)
        log("run directory", run_dir, "peer port", p.port)
        log("our node id", p.ident.node_id.hex(), "fingerprint", fingerprint(p.ident.ed_pub, p.ident.x_pub))
        with open(node_log, "w") as nl:
            node = subprocess.Popen([BIN, "run", "--radio", "udp", "--no-passphrase", "--data-dir", NODE_DIR,
                                     "--udp-bind", "127.0.0.1:%d" % args.node_port,
                                     "--udp-peer", "127.0.0.1:%d" % p.port, "--nickname", "rusty",
                                     "--log-filter", "debug"],
                                    stdout=nl, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        end = time.time() + 30
        while not os.path.exists(os.path.join(NODE_DIR, "control.sock")):
            if node.poll() is not None:
                raise RuntimeError("meshnode run exited with status %s before its control socket appeared"
                                   % node.returncode)
            if time.time() >= end:
                raise Timeout("no control socket after 30 s")
            p.pump(0.05)
        listener = Listener()
        listener.start()
        log("node status:", ctl("--json", "status").strip()[:400])
        scenario(p, args, listener, results)
        if node.poll() is not None:
            error = "meshnode run exited (status %s) during the scenario" % node.returncode
    except Exception as e:  # any failure, reported below with the checks; the node is stopped in any case
        error = "%s: %s" % (type(e).__name__, e)
        log("".join(traceback.format_exception(type(e), e, e.__traceback__)).rstrip())
    finally:
        signal.alarm(0)
        if listener:
            stop(listener.proc, 3)
        stop(node, 5)
    failed = [k for k, v in results.items() if v is not True]
    log("RESULTS:", json.dumps(results))
    if error or failed or not results:
        print("\nFAIL: %s" % "; ".join(([error] if error else []) + ["check %s failed" % k for k in failed] +
                                      ([] if results else ["no check ran"])))
        print("---- the last 80 lines of the node's log ----")
        print(tail(node_log, 80).rstrip())
        print("---- end of the node's log ----")
        code = 1
    else:
        print("\nPASS: %d checks: %s" % (len(results), ", ".join(results)))
        code = 0
    LOGF.close()
    if args.keep:
        print("kept", run_dir)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
