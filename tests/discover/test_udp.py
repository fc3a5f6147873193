"""Twins of geth's p2p/discover/udp_test.go, the discv4 packet vectors, and more."""

import heapq
import ipaddress
import json
import os
import queue
import random
import socket
import threading
import time

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from p2p import crypto
from p2p.discover import udp as udpmod
from p2p.discover.node import NodeID, must_parse_node, pubkey_id, must_hex_id
from p2p.discover.table import bucketSize, NodesByDistance
from p2p.discover.udp import (
    Ping, Pong, Findnode, Neighbors, RpcEndpoint, RpcNode, Pending,
    pingPacket, pongPacket, findnodePacket, neighborsPacket,
    errExpired, errUnsolicitedReply, errUnknownNode, errTimeout, errClockWarp, errClosed,
    errPacketTooSmall, errBadHash, errPacketTooBig, DecodeError,
    encode_packet, decode_packet, maxNeighbors, node_to_rpc, macSize, headSize,
)

from .test_table import node_at_distance


class UdpTest:
    """geth's udpTest: a udp transport on a DgramPipe and a remote key to send from."""

    def __init__(self):
        self.pipe = newpipe()
        self.localkey = crypto.generate_key()
        self.remotekey = crypto.generate_key()
        self.remoteaddr = ("10.0.1.99", 30303)
        self.sent = []
        self.clock_checks = queue.Queue()
        self.table, self.udp = udpmod.new_udp(self.pipe, udpmod.Config(private_key=self.localkey))
        self.udp.check_clock_drift = lambda: self.clock_checks.put(True)
        # Let the initial refresh finish so that the table sends no unexpected findnode.
        assert self.table.init_done.wait(5)

    def packet_in(self, want_error, ptype, data):
        """Handle a packet as if the remote had sent it to the transport."""
        enc, _ = udpmod.encode_packet(self.remotekey, ptype, data)
        self.sent.append(enc)
        err = self.udp.handle_packet(self.remoteaddr, enc)
        if err is not want_error:
            self.errorf("error mismatch: got %r, want %r", err, want_error)
        return err

    def wait_packet_out(self, want_type):
        """Wait for the transport to send a packet of want_type: ``(packet, hash)``."""
        dgram = self.pipe.wait_packet_out()
        p, _, h, err = udpmod.decode_packet(dgram)
        if err is not None:
            self.errorf("sent packet decode error: %r", err)
        if type(p) is not want_type:
            self.errorf("sent packet type mismatch: got %s, want %s", type(p).__name__,
                        want_type.__name__)
        return p, h

    def errorf(self, fmt, *args):
        raise AssertionError(fmt % args)



@pytest.fixture
def udp_test():
    t = UdpTest()
    try:
        yield t
    finally:
        t.table.close()


TESTDATA = os.path.join(os.path.dirname(__file__), "..", "testdata", "discv4_packets.json")

future_exp = int(time.time() + 10 * 3600)
test_target = NodeID(bytes([0, 1] * 8) + bytes(48))
test_remote = RpcEndpoint(ipaddress.ip_address("1.1.1.1"), 1, 2)
test_local_announced = RpcEndpoint(ipaddress.ip_address("2.2.2.2"), 3, 4)
test_local = RpcEndpoint(ipaddress.ip_address("3.3.3.3"), 5, 6)


def test_udp_packet_errors(udp_test):
    t = udp_test
    t.packet_in(errExpired, pingPacket, Ping(4, test_remote, test_local_announced, 0))
    t.packet_in(errUnsolicitedReply, pongPacket, Pong(reply_tok=b"", expiration=future_exp))
    t.packet_in(errUnknownNode, findnodePacket, Findnode(expiration=future_exp))
    t.packet_in(errUnsolicitedReply, neighborsPacket, Neighbors(expiration=future_exp))


def test_udp_ping_timeout(udp_test):
    toaddr = ("1.2.3.4", 2222)
    toid = NodeID(bytes([1, 2, 3, 4]) + bytes(60))
    assert udp_test.udp.ping(toid, toaddr) is errTimeout


def test_udp_response_timeouts(udp_test):
    # Many pendings; those with ptype <= 128 get no reply and must time out, the
    # others get a reply within the timeout window and must complete.
    t = udp_test
    rnd = random.Random(1)
    n_reqs = 120
    results = queue.Queue()
    ip = ipaddress.ip_address("10.0.0.1")

    class Tagged:  # an errc that tags what it receives
        def __init__(self, tag):
            self.tag = tag

        def put(self, err):
            results.put((self.tag, err))

    nil_err, timeout_err = Tagged("n"), Tagged("t")
    # As in geth, each reply is scheduled when its request is registered (time.AfterFunc
    # there), so registrations, replies and timeouts interleave.
    schedule = []  # heap of (due, seq, from, ptype)
    cond = threading.Condition()
    adding_done = [False]
    unmatched = []
    stop = threading.Event()

    def replier():  # deliver the replies at their due times
        while not stop.is_set():
            with cond:
                if not schedule:
                    if adding_done[0]:
                        return
                    cond.wait(0.5)
                    continue
                due = schedule[0][0]
                wait = due - time.monotonic()
                if wait > 0:
                    cond.wait(wait)
                    continue
                _, _, frm, ptype = heapq.heappop(schedule)
            if not t.udp.handle_reply(frm, ip, ptype, None):
                unmatched.append(frm)

    th = threading.Thread(target=replier, name="test.replier")
    th.start()
    try:
        n_timeouts = 0
        for i in range(n_reqs):
            p = Pending(NodeID(i.to_bytes(8, "big") + bytes(56)), ip, rnd.randrange(255), lambda r: (True, True))
            if p.ptype <= 128:
                p.errc = timeout_err
                n_timeouts += 1
                assert t.udp._post(("addpending", p))
            else:
                p.errc = nil_err
                assert t.udp._post(("addpending", p))
                with cond:
                    heapq.heappush(schedule, (time.monotonic() + rnd.random() * 0.06, i, p.from_, p.ptype))
                    cond.notify()
        with cond:
            adding_done[0] = True
            cond.notify()
        n_timeouts_recv = n_nil = 0
        for _ in range(n_reqs):
            kind, err = results.get(timeout=20)
            if kind == "t":
                assert err is errTimeout
                n_timeouts_recv += 1
            else:
                assert err is None
                n_nil += 1
        assert n_timeouts_recv == n_timeouts
        assert n_nil == n_reqs - n_timeouts
        assert unmatched == []
        # More than ntpFailureThreshold timeouts in a row trigger a clock check.
        assert t.clock_checks.get(timeout=5) is True
    finally:
        stop.set()
        th.join(5)


def test_udp_findnode_timeout(udp_test):
    toaddr = ("1.2.3.4", 2222)
    toid = NodeID(bytes([1, 2, 3, 4]) + bytes(60))
    target = NodeID(bytes([4, 5, 6, 7]) + bytes(60))
    result, err = udp_test.udp.findnode(toid, toaddr, target)
    assert err is errTimeout
    assert result == []


def test_udp_findnode(udp_test):
    t = udp_test
    # Put a few nodes in the table, without overflowing any bucket.
    target_hash = crypto.keccak256(test_target)
    nodes = NodesByDistance(target_hash)
    for i in range(bucketSize):
        nodes.push(node_at_distance(t.table.self().sha, i + 2), bucketSize)
    t.table.stuff(nodes.entries)
    # Bond with the remote node: findnode is refused otherwise.
    t.table.db.update_last_pong_received(pubkey_id(t.remotekey.public_key), t.remoteaddr[0], time.time())

    t.packet_in(None, findnodePacket, Findnode(test_target, future_exp))
    with t.table.mutex:
        expected = t.table.closest(target_hash, bucketSize).entries
    assert len(expected) == bucketSize

    def wait_neighbors(want):
        p, _ = t.wait_packet_out(Neighbors)
        assert [n.id for n in p.nodes] == [n.id for n in want]
        assert [n.ip for n in p.nodes] == [n.ip for n in want]

    wait_neighbors(expected[:maxNeighbors])
    wait_neighbors(expected[maxNeighbors:])


def test_udp_findnode_multi_reply(udp_test):
    t = udp_test
    rid = pubkey_id(t.remotekey.public_key)
    t.table.db.update_last_ping_received(rid, t.remoteaddr[0], time.time())

    resultc = queue.Queue(1)
    th = threading.Thread(target=lambda: resultc.put(t.udp.findnode(rid, t.remoteaddr, test_target)),
                          name="test.findnode")
    th.start()
    try:
        # Once the findnode is out, the transport waits for the reply.
        p, _ = t.wait_packet_out(Findnode)
        assert p.target == test_target

        # The reply comes as two packets.
        lst = [
            must_parse_node("enode://ba85011c70bcc5c04d8607d3a0ed29aa6179c092cbdda10d5d32684fb33ed01bd94f588ca8f91ac48318087dcb02eaf36773a7a453f0eedd6742af668097b29c@10.0.1.16:30303?discport=30304"),
            must_parse_node("enode://81fa361d25f157cd421c60dcc28d8dac5ef6a89476633339c5df30287474520caca09627da18543d9079b5b288698b542d56167aa5c09111e55acdbbdf2ef799@10.0.1.16:30303"),
            must_parse_node("enode://9bffefd833d53fac8e652415f4973bee289e8b1a5c6c4cbe70abf817ce8a64cee11b823b66a987f51aaa9fba0d6a91b3e6bf0d5a5d1042de8e9eeea057b217f8@10.0.1.36:30301?discport=17"),
            must_parse_node("enode://1b5b4aa662d7cb44a7221bfba67302590b643028197a7d5214790f3bac7aaa4a3241be9e83c09cf1f6c69d007c634faae3dc1b1221793e8446c0b3a09de65960@10.0.1.16:30303"),
        ]
        rpclist = [node_to_rpc(n) for n in lst]
        t.packet_in(None, neighborsPacket, Neighbors(rpclist[:2], future_exp))
        t.packet_in(None, neighborsPacket, Neighbors(rpclist[2:], future_exp))

        # All sent neighbors come back, except the one with a low port.
        result, err = resultc.get(timeout=5)
        assert result == lst[:2] + lst[3:]
    finally:
        th.join(5)


def test_udp_successful_ping(udp_test):
    t = udp_test
    added = queue.Queue()
    t.table.node_added_hook = added.put

    # The remote side sends a ping to start the exchange. Its outcome is collected
    # and checked here: an assertion inside the thread would only be a warning.
    outcome = queue.Queue(1)

    def ping_in():
        try:
            outcome.put(t.packet_in(None, pingPacket, Ping(4, test_remote, test_local_announced, future_exp)))
        except BaseException as e:  # noqa: BLE001 - re-raised in the test
            outcome.put(e)

    th = threading.Thread(target=ping_in, name="test.packetIn")
    th.start()
    try:
        # The ping is answered...
        p, _ = t.wait_packet_out(Pong)
        assert p.reply_tok == t.sent[0][:macSize]
        # ...with the UDP envelope address of the ping and the TCP port it announced.
        assert p.to == RpcEndpoint(ipaddress.ip_address(t.remoteaddr[0]), t.remoteaddr[1], test_remote.tcp)

        # The remote is unknown, so the table pings back.
        p, h = t.wait_packet_out(Ping)
        assert p.from_ == t.udp.our_endpoint
        assert p.to == RpcEndpoint(ipaddress.ip_address(t.remoteaddr[0]), t.remoteaddr[1], 0)
        t.packet_in(None, pongPacket, Pong(reply_tok=h, expiration=future_exp))

        # The pong gets the node added to the table.
        n = added.get(timeout=2)
        assert n.id == pubkey_id(t.remotekey.public_key)
        assert n.ip == ipaddress.ip_address(t.remoteaddr[0])
        assert n.udp == t.remoteaddr[1]
        assert n.tcp == test_remote.tcp
    finally:
        th.join(5)
    assert outcome.get(timeout=5) is None  # the ping was handled without error


def test_udp_waitping_matches_later_ping_only(udp_test):
    # Python-only: the ping handler skips the reply loop while no waitping is registered;
    # a waitping registered before a ping still gets it, one registered after does not.
    t = udp_test
    rid = pubkey_id(t.remotekey.public_key)
    rip = ipaddress.ip_address(t.remoteaddr[0])
    t.packet_in(None, pingPacket, Ping(4, test_remote, test_local_announced, future_exp))
    late = t.udp.pending(rid, rip, pingPacket, lambda p: (True, True))
    other = t.udp.pending(NodeID(b"\x05" * 64), rip, pingPacket, lambda p: (True, True))
    assert late.get(timeout=5) is errTimeout  # the ping came before it
    assert other.get(timeout=5) is errTimeout
    assert t.udp._ping_waiters == 0
    waiting = t.udp.pending(rid, rip, pingPacket, lambda p: (True, True))
    other = t.udp.pending(NodeID(b"\x05" * 64), rip, pingPacket, lambda p: (True, True))
    t.packet_in(None, pingPacket, Ping(4, test_remote, test_local_announced, future_exp))
    assert waiting.get(timeout=5) is None
    assert other.get(timeout=5) is errTimeout  # a ping from another key is not its ping
    assert t.udp._ping_waiters == 0


def _vectors():
    with open(TESTDATA) as f:
        return json.load(f)


def _endpoint(d):
    return RpcEndpoint(ipaddress.ip_address(d["ip"]), d["udp"], d["tcp"])


def _want_packet(v):
    rest = [bytes.fromhex(r) for r in v["rest"]]
    if v["type"] == "ping":
        return Ping(v["version"], _endpoint(v["from"]), _endpoint(v["to"]), v["expiration"], rest)
    if v["type"] == "pong":
        return Pong(_endpoint(v["to"]), bytes.fromhex(v["reply_tok"]), v["expiration"], rest)
    if v["type"] == "findnode":
        return Findnode(must_hex_id(v["target"]), v["expiration"], rest)
    assert v["type"] == "neighbors"
    return Neighbors([RpcNode(ipaddress.ip_address(n["ip"]), n["udp"], n["tcp"], must_hex_id(n["id"]))
                      for n in v["nodes"]], v["expiration"], rest)


def test_forward_compatibility(crypto_backend):
    vectors = _vectors()
    want_id = pubkey_id(crypto.hex_to_ecdsa(vectors["signer_key"]).public_key)
    assert len(vectors["packets"]) >= 6
    for v in vectors["packets"]:
        packet, nodeid, h, err = decode_packet(bytes.fromhex(v["input"]))
        assert err is None, "did not accept packet %s: %r" % (v["input"], err)
        assert packet == _want_packet(v)
        assert packet.rest == [bytes.fromhex(r) for r in v["rest"]]
        assert nodeid == want_id
        assert h == bytes.fromhex(v["input"])[:macSize]


def newpipe():
    return DgramPipe()


class DgramPipe:
    """A fake UDP conn: writes are queued, reads block until close."""

    def __init__(self, local=("3.3.3.3", 5)):
        self.cond = threading.Condition()
        self.closed = False
        self.queue = []
        self.local = local

    def write_to_udp(self, b, addr):
        with self.cond:
            if self.closed:
                raise OSError("closed")
            self.queue.append(bytes(b))
            self.cond.notify_all()
        return len(b)

    def read_from_udp(self):
        with self.cond:
            self.cond.wait_for(lambda: self.closed)
        raise OSError("use of closed network connection")

    def close(self):
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def local_addr(self):
        return self.local

    def wait_packet_out(self, timeout=5.0):
        with self.cond:
            if not self.cond.wait_for(lambda: self.queue, timeout):
                raise AssertionError("no packet sent within %s s" % timeout)
            return self.queue.pop(0)


# ---------------------------------------------------------------------------
# Beyond geth's tests


def _sample_packets():
    ip4, ip6 = ipaddress.ip_address("10.1.2.3"), ipaddress.ip_address("2001:db8::1")
    return [
        (pingPacket, Ping(4, RpcEndpoint(ip4, 30303, 30304), RpcEndpoint(ip6, 1, 0), future_exp)),
        (pongPacket, Pong(RpcEndpoint(ip6, 65535, 65535), os.urandom(32), future_exp, [b"\x01"])),
        (findnodePacket, Findnode(NodeID(os.urandom(64)), 2 ** 64 - 1)),
        (neighborsPacket, Neighbors([RpcNode(ip4, 30303, 30303, NodeID(os.urandom(64))),
                                     RpcNode(ip6, 1025, 0, NodeID(os.urandom(64)))], future_exp)),
        (neighborsPacket, Neighbors([], future_exp)),
    ]


def test_encode_decode_roundtrip(crypto_backend):
    key = crypto.generate_key()
    for ptype, p in _sample_packets():
        packet, h = encode_packet(key, ptype, p)
        assert len(packet) <= 1280
        assert packet[:macSize] == h == crypto.keccak256(packet[macSize:])
        got, from_id, h2, err = decode_packet(packet)
        assert err is None
        assert got == p and h2 == h
        assert from_id == pubkey_id(key.public_key)


def test_max_neighbors_fits_packet():
    # geth's computed value for IPv6-sized entries.
    assert maxNeighbors == 12
    key = crypto.generate_key()
    biggest = RpcNode(ipaddress.ip_address("ffff::ffff"), 65535, 65535, NodeID(b"\xff" * 64))
    packet, _ = encode_packet(key, neighborsPacket, Neighbors([biggest] * maxNeighbors, 2 ** 64 - 1))
    assert len(packet) < 1280
    packet, _ = encode_packet(key, neighborsPacket, Neighbors([biggest] * (maxNeighbors + 1), 2 ** 64 - 1))
    assert len(packet) >= 1280


def _resign(key, body):
    """Frame an arbitrary body (type byte + payload) with a valid signature and hash."""
    sig = crypto.sign(crypto.keccak256(body), key)
    return crypto.keccak256(sig, body) + sig + body


@pytest.mark.parametrize("body,why", [
    (b"\x01", "EOF"),                                           # type only
    (b"\x01\xc0", "too few elements"),                          # empty ping
    (b"\x01\x80", "expected input list"),                       # string, not list
    (b"\x01\xc5\x04\xc0\xc0\x84", "size exceeds"),              # truncated list
    (b"\x03\xc3\x81\x05\x01", "non-canonical size"),            # 0x05 as 0x81 0x05
    (b"\x02\xc6\xc3\x80\x01\x02\x80\x00", "non-canonical integer"),  # 0x00 as uint
    (b"\x03\xc4\x82\xab\xcd\x01", "too short"),                 # findnode target too short
    (b"\x01\xcb\x04\xc4\x80\x01\x02\x03\xc3\x80\x01\x02\x01", "too many elements"),
    (b"\x01\xd3\x04\xc3\x80\x01\x02\xc3\x80\x01\x02\x89\x01\x00\x00\x00\x00\x00\x00\x00\x00",
     "too long for uint64"),
    (b"\x04\xc3\x80\x01\x02", "expected input list"),           # neighbors nodes not a list
    (b"\x09\xc0", "unknown type: 9"),
])
def test_decode_packet_bad_bodies(body, why):
    key = crypto.generate_key()
    packet, from_id, h, err = decode_packet(_resign(key, body))
    assert packet is None
    assert isinstance(err, DecodeError) and why in str(err), err
    assert from_id == pubkey_id(key.public_key)  # recovered before the body is parsed


def test_decode_packet_frame_errors():
    key = crypto.generate_key()
    good, _ = encode_packet(key, pingPacket, _sample_packets()[0][1])
    assert decode_packet(good[:headSize])[3] is errPacketTooSmall
    assert decode_packet(b"")[3] is errPacketTooSmall
    bad = bytearray(good)
    bad[0] ^= 1
    assert decode_packet(bytes(bad))[3] is errBadHash
    bad = bytearray(good)
    bad[-1] ^= 1  # body changed: hash no longer matches
    assert decode_packet(bytes(bad))[3] is errBadHash
    assert decode_packet(good + bytes(1281 - len(good)))[3] is errPacketTooBig
    # A signature with an invalid recovery id, correctly hashed.
    sig = bytearray(good[macSize:headSize])
    sig[64] = 7
    body = good[headSize:]
    forged = crypto.keccak256(bytes(sig), body) + bytes(sig) + body
    p, from_id, h, err = decode_packet(forged)
    assert p is None and isinstance(err, crypto.CryptoError)
    # Trailing bytes after the RLP list are ignored (EIP-8), as are bytearray inputs.
    padded = _resign(key, good[headSize:] + b"\xff\xff\x00")
    p, from_id, _, err = decode_packet(bytearray(padded))
    assert err is None and p == _sample_packets()[0][1]


def test_unhandled_packets_are_passed_on():
    pipe = DgramPipe()
    unhandled = queue.Queue(10)
    key = crypto.generate_key()
    tab, t = udpmod.new_udp(pipe, udpmod.Config(private_key=key, unhandled=unhandled))
    try:
        assert tab.init_done.wait(5)
        garbage = b"\x00" * 200
        assert t.handle_packet(("127.0.0.1", 5555), garbage) is errBadHash
    finally:
        tab.close()
    # The read loop ends on close and marks the end of the stream with None.
    assert unhandled.get(timeout=5) is None


def test_udp_clock_warp_drops_pending(udp_test):
    t = udp_test
    fake = [1000.0]
    t.udp.clock = lambda: fake[0]
    ip = ipaddress.ip_address("10.0.0.1")
    warped = t.udp.pending(NodeID(b"\x01" * 64), ip, pongPacket, lambda p: (True, True))
    # Make sure the loop has the pending registered, then turn the clock back.
    assert t.udp.handle_reply(NodeID(b"\x02" * 64), ip, pongPacket, None) is False
    fake[0] -= 10.0
    # Any loop iteration now sees a deadline too far ahead and drops it.
    t.udp.pending(NodeID(b"\x03" * 64), ip, pongPacket, lambda p: (True, True))
    assert warped.get(timeout=5) is errClockWarp


def test_udp_pending_after_close(udp_test):
    t = udp_test
    ip = ipaddress.ip_address("10.0.0.1")
    errc = t.udp.pending(NodeID(b"\x01" * 64), ip, pongPacket, lambda p: (True, True))
    t.table.close()
    assert errc.get(timeout=5) is errClosed
    assert t.udp.ping(NodeID(b"\x01" * 64), ("127.0.0.1", 1)) is errClosed
    assert t.udp.handle_reply(NodeID(b"\x01" * 64), ip, pongPacket, None) is False


def test_udp_findnode_needs_bond_then_answers(udp_test):
    # Endpoint proof: findnode is only answered once the remote has ponged us.
    t = udp_test
    rid = pubkey_id(t.remotekey.public_key)
    t.packet_in(errUnknownNode, findnodePacket, Findnode(test_target, future_exp))
    t.table.db.update_last_pong_received(rid, t.remoteaddr[0], time.time())
    t.packet_in(None, findnodePacket, Findnode(test_target, future_exp))
    p, _ = t.wait_packet_out(Neighbors)
    assert p.nodes == []  # empty table: one empty reply


def test_udpconn_close_wakes_reader():
    c = udpmod.UDPConn.listen("127.0.0.1", 0)
    result = queue.Queue()

    def reader():
        try:
            result.put(c.read_from_udp())
        except OSError as e:
            result.put(e)

    th = threading.Thread(target=reader, name="test.reader")
    th.start()
    # Make sure the reader works before closing: a datagram gets through.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.sendto(b"hello", c.local_addr())
        data, addr = result.get(timeout=5)
        assert data == b"hello" and addr[0] == "127.0.0.1"
        th.join(5)
        th = threading.Thread(target=reader, name="test.reader")
        th.start()
        c.close()
        assert isinstance(result.get(timeout=5), OSError)
        th.join(5)
        assert not th.is_alive()
    finally:
        s.close()
        c.close()


def test_listen_udp_on_socket_closes_cleanly():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    key = crypto.generate_key()
    tab = udpmod.listen_udp(s, udpmod.Config(private_key=key))
    try:
        assert tab.self().id == pubkey_id(key.public_key)
        assert tab.self().udp == s.getsockname()[1]
        assert str(tab.self().ip) == "127.0.0.1"
    finally:
        tab.close()
    names = {th.name for th in threading.enumerate()}
    assert "discover.udp.readLoop" not in names and "discover.udp.loop" not in names


def test_udp_first_refresh_contacts_bootnodes():
    # The table's first refresh starts while new_udp is still wiring things up; its
    # findnode to the bootnode must still go out (after the bonding ping).
    from p2p.discover.node import new_node

    pipe = newpipe()
    bootkey = crypto.generate_key()
    boot = new_node(pubkey_id(bootkey.public_key), "10.9.9.9", 30303, 30303)
    tab, t = udpmod.new_udp(pipe, udpmod.Config(private_key=crypto.generate_key(), bootnodes=[boot]))
    try:
        dgram = pipe.wait_packet_out()
        p, _, _, err = decode_packet(dgram)
        assert err is None and isinstance(p, Ping)
        assert p.to == RpcEndpoint(ipaddress.ip_address("10.9.9.9"), 30303, 0)
    finally:
        tab.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ptype=st.sampled_from([pingPacket, pongPacket, findnodePacket, neighborsPacket]),
       body=st.binary(max_size=200), data=st.data())
def test_decode_body_fuzz(ptype, body, data):
    # Arbitrary bodies, and valid bodies with a byte changed or cut short, either
    # decode or fail with DecodeError: no other exception escapes the parser.
    valid = dict(_sample_packets_by_type())[ptype].encode_body()
    choice = data.draw(st.integers(0, 2))
    if choice == 1:
        i = data.draw(st.integers(0, len(valid) - 1))
        body = valid[:i] + bytes([data.draw(st.integers(0, 255))]) + valid[i + 1:]
    elif choice == 2:
        body = valid[:data.draw(st.integers(0, len(valid)))]
    buf = bytes(98) + body
    try:
        p = udpmod._decode_body(ptype, buf, 98)
    except DecodeError:
        return
    assert p.ptype == ptype
    # What decodes re-encodes to an equal packet.
    again = udpmod._decode_body(ptype, bytes(98) + p.encode_body(), 98)
    assert again == p


def _sample_packets_by_type():
    seen = {}
    for ptype, p in _sample_packets():
        seen.setdefault(ptype, p)
    return seen.items()


def test_udp_traffic_meters_count_packets_when_enabled(monkeypatch):
    """Sent and received datagrams are metered (for the demo's progress lines)."""
    import socket as _socket

    from p2p import crypto, metrics
    from p2p.discover import udp as udp_mod

    monkeypatch.setattr(metrics, "Enabled", True)
    out0 = udp_mod._egress_packets.count()
    in0 = udp_mod._ingress_packets.count()
    key = crypto.generate_key()
    tab = udp_mod.listen_udp(udp_mod.UDPConn.listen("127.0.0.1", 0), udp_mod.Config(private_key=key))
    client = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        client.bind(("127.0.0.1", 0))
        client.settimeout(5)
        ckey = crypto.generate_key()
        ping = udp_mod.Ping(4, udp_mod.make_endpoint(client.getsockname(), 0),
                            udp_mod.make_endpoint(tab.self().addr(), 0), int(__import__("time").time()) + 20)
        packet, _ = udp_mod.encode_packet(ckey, udp_mod.pingPacket, ping)
        client.sendto(packet, tab.self().addr())
        client.recvfrom(2048)  # the pong
    finally:
        client.close()
        tab.close()
    assert udp_mod._ingress_packets.count() >= in0 + 1
    assert udp_mod._egress_packets.count() >= out0 + 1
