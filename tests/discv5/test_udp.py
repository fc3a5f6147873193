"""Tests for p2p.discv5.udp (twins of geth's p2p/discv5/udp_test.go, then extras).

The wire vectors in ``tests/testdata/discv5_packets.json`` were made with geth's own
code: a throwaway test file added to a copy of go-ethereum v1.8.16's ``p2p/discv5``
(outside this repository, built with Debian's golang-go 1.19 in GOPATH mode) called
``encodePacket`` with the key ``b71c71a6...f291`` of geth's udp_test.go on the packet
values rebuilt below (``packets``), and ``decodePacket`` on signed bodies (``decode``)
recording geth's error or its re-encoding (``rlp.EncodeToBytes(pkt.data)``) and the
sender. The forward-compatibility inputs are geth's v4 ``testPackets`` of
TestForwardCompatibility with the v5 prefix in place of the v4 hash (the signature
covers only type and body, so it still holds).
"""

import ipaddress
import json
import os
import queue
import re
import threading

import pytest

from p2p import crypto
from p2p.discv5 import udp as v5udp
from p2p.discv5.node import NodeID, must_hex_id, new_node, pubkey_id
from p2p.discv5.nodeevent_string import (
    findnodeHashPacket, findnodePacket, neighborsPacket, pingPacket, pongPacket, topicNodesPacket,
    topicQueryPacket, topicRegisterPacket,
)
from p2p.discv5.udp import (
    DecodeError, DiscoverError, Findnode, FindnodeHash, IngressPacket, Neighbors, Ping, Pong,
    RpcEndpoint, RpcNode, TopicNodes, TopicQuery, TopicRegister, decode_packet, encode_packet,
    errBadPrefix, errPacketTooSmall, headSize, maxNeighbors, maxTopicNodes, versionPrefix,
)

with open(os.path.join(os.path.dirname(os.path.dirname(__file__)), "testdata", "discv5_packets.json")) as f:
    VECTORS = json.load(f)

TESTKEY = crypto.hex_to_ecdsa(VECTORS["key"])
IP = ipaddress.ip_address

# shared test variables
testLocal = RpcEndpoint(IP("3.3.3.3"), 5, 6)


def _decode(data):
    pkt = IngressPacket()
    decode_packet(data, pkt)
    return pkt


def _encode_data(pkt):
    # What geth's rlp.EncodeToBytes(pkt.data) gives: the body without the type byte.
    return pkt.data.encode_body()


# geth's testPackets (v4), re-framed for v5: the outcome geth 1.8.16's decodePacket gives.
def test_forward_compatibility(crypto_backend):
    want_id = pubkey_id(TESTKEY)
    cases = [v for v in VECTORS["decode"] if v["name"].startswith("forward_compat_")]
    assert len(cases) == 6
    for v in cases:
        data = bytes.fromhex(v["input"])
        if v["error"]:
            # v4 pings lack the topic list, the v4 pong's tail is no topic hash.
            with pytest.raises(DecodeError) as exc:
                _decode(data)
            assert _base(str(exc.value)) == _base(v["error"]), v["name"]
            continue
        pkt = _decode(data)
        assert pkt.remote_id == want_id
        assert pkt.ev == v["type"]
        assert _encode_data(pkt).hex() == v["data"], v["name"]
    # The findnode and neighbors of geth's list decode to the values it lists.
    fn = _decode(bytes.fromhex(cases[4]["input"])).data
    assert fn == Findnode(
        must_hex_id("ca634cae0d49acb401d8a4c6b6fe8c55b70d115bf400769cc1400f3258cd31387574077f301b421bc84df7266c44e9e6d569fc56be00812904767bf5ccd1fc7f"),
        1136239445, [bytes([0x82, 0x99, 0x99]), bytes([0x83, 0x99, 0x99, 0x99])])
    nb = _decode(bytes.fromhex(cases[5]["input"])).data
    assert [(str(n.ip), n.udp, n.tcp) for n in nb.nodes] == [
        ("99.33.22.55", 4444, 4445), ("1.2.3.4", 1, 1), ("2001:db8:3c4d:15::abcd:ef12", 3333, 3333),
        ("2001:db8:85a3:8d3:1319:8a2e:370:7348", 999, 1000)]
    assert nb.expiration == 1136239445 and nb.rest == [b"\x01", b"\x02", b"\x03"]
    # The ping with a list in its tail reads that list as its topics.
    assert _decode(bytes.fromhex(cases[2]["input"])).data.topics == ["\x01", "\x02", "\x03", "\x04", "\x05"]


def newpipe():
    return DgramPipe()


class DgramPipe:
    """A fake UDP socket: it queues every datagram sent (geth's dgramPipe)."""

    def __init__(self):
        self.mu = threading.Lock()
        self.cond = threading.Condition(self.mu)
        self.closing = threading.Event()
        self.closed = False
        self.queue = []

    def write_to_udp(self, b, to):
        msg = bytes(b)
        with self.mu:
            if self.closed:
                raise OSError("closed")
            self.queue.append((msg, to))
            self.cond.notify()
        return len(b)

    def read_from_udp(self):
        """Hangs until the pipe is closed."""
        self.closing.wait()
        raise EOFError("EOF")

    def close(self):
        with self.mu:
            if not self.closed:
                self.closing.set()
                self.closed = True

    def local_addr(self):
        return (str(testLocal.ip), testLocal.udp)

    def wait_packet_out(self, timeout=10):
        with self.mu:
            if not self.cond.wait_for(lambda: self.queue, timeout):
                raise AssertionError("no packet sent within %ss" % timeout)
            return self.queue.pop(0)


# ---------------------------------------------------------------------------
# Extras: the wire against geth's encodings.

_exp = 1136239445
_ids = [must_hex_id(h) for h in (
    "3155e1427f85f10a5c9a7755877748041af1bcd8d474ec065eb33df57a97babf54bfd2103575fa829115d224c523596b401065a97f74010610fce76382c0bf32",
    "312c55512422cf9b8a4097e9a6ad79402e87a15ae909a4bfefa22398f03d20951933beea1e4dfa6f968212385e829f04c2d314fc2d4e255e0d3bc08792b069db",
    "38643200b172dcfef857492156971f0e6aa2c538d8b74010f8e140811d53b98c765dd2d96126051913f44582e8c199ad7c6d6819e9a56483f637feaac9448aac",
    "8dcab8618c3253b558d459da53bd8fa68935a719aff8b811197101a4b2b47dd2d47295286fc00cc081bb542d760717d1bdd6bec2c37cd72eca367d6dd3b9df73",
)]
_nodes = [
    RpcNode(IP("99.33.22.55"), 4444, 4445, _ids[0]),
    RpcNode(IP("1.2.3.4"), 1, 1, _ids[1]),
    RpcNode(IP("2001:db8:3c4d:15::abcd:ef12"), 3333, 3333, _ids[2]),
    RpcNode(IP("2001:db8:85a3:8d3:1319:8a2e:370:7348"), 999, 1000, _ids[3]),
]
_hash1 = bytes.fromhex("fbc914b16819237dcd8801d7e53f69e9719adecb3cc0e790c57e91ca4461c954")
_hash2 = bytes.fromhex("c969a58f6f9095004c0177a6b47f451530cab38966a25cca5cb58f055542124e")
_topic_hash = bytes.fromhex(VECTORS["topicHash_foo_bar"])
_pong = Pong(RpcEndpoint(IP("2001:db8:85a3:8d3:1319:8a2e:370:7348"), 2222, 33338), _hash1, _exp,
             _topic_hash, 7, [0, 1, 4294967295])


def _packets():
    pong_enc, _ = encode_packet(TESTKEY, pongPacket, _pong)
    return {
        "ping": (pingPacket, Ping(4, RpcEndpoint(IP("127.0.0.1"), 3322, 5544),
                                  RpcEndpoint(IP("::1"), 2222, 3333), _exp, ["foo", "bar"])),
        "ping_no_topics_rest": (pingPacket, Ping(
            555, RpcEndpoint(IP("2001:db8:3c4d:15::abcd:ef12"), 3322, 5544),
            RpcEndpoint(IP("2001:db8:85a3:8d3:1319:8a2e:370:7348"), 2222, 33338), _exp, [],
            [bytes([0xC5, 1, 2, 3, 4, 5]), b"\x06"])),
        "ping_binary_topic": (pingPacket, Ping(4, RpcEndpoint(None, 0, 0), RpcEndpoint(IP("127.0.0.1"), 1, 0),
                                               0, [b"\xff\xfe".decode("utf-8", "surrogateescape"), ""])),
        "pong": (pongPacket, _pong),
        "findnode": (findnodePacket, Findnode(_ids[0], _exp)),
        "neighbors": (neighborsPacket, Neighbors(list(_nodes), _exp)),
        "neighbors_empty": (neighborsPacket, Neighbors([], 2 ** 64 - 1)),
        "findnodeHash": (findnodeHashPacket, FindnodeHash(_hash2, _exp)),
        "topicRegister": (topicRegisterPacket, TopicRegister(["foo", "bar"], 1, pong_enc)),
        "topicQuery": (topicQueryPacket, TopicQuery("foo", _exp)),
        "topicNodes": (topicNodesPacket, TopicNodes(_hash1, _nodes[:2])),
        "topicNodes_empty": (topicNodesPacket, TopicNodes(_hash2, [])),
    }


def test_packet_encodings_match_geth(crypto_backend):
    packets = _packets()
    assert [v["name"] for v in VECTORS["packets"]] == list(packets)
    for v in VECTORS["packets"]:
        ptype, req = packets[v["name"]]
        assert ptype == v["type"]
        packet, h = encode_packet(TESTKEY, ptype, req)
        assert packet.hex() == v["packet"], v["name"]
        assert h.hex() == v["hash"], v["name"]


def test_packet_decodings_match_geth(crypto_backend):
    packets = _packets()
    want_id = pubkey_id(TESTKEY)
    for v in VECTORS["packets"]:
        pkt = _decode(bytes.fromhex(v["packet"]))
        assert pkt.remote_id == want_id
        assert pkt.ev == v["type"]
        assert pkt.hash.hex() == v["hash"]
        assert pkt.raw_data.hex() == v["packet"]
        assert pkt.data == packets[v["name"]][1], v["name"]


def test_topic_hash_matches_geth():
    # geth's rlpHash(topics): keccak256 of the RLP list of topic strings.
    assert crypto.keccak256(v5udp._enc_topics(["foo", "bar"])) == _topic_hash


def test_max_nodes_match_geth():
    assert maxNeighbors == VECTORS["maxNeighbors"] == 12
    assert maxTopicNodes == VECTORS["maxTopicNodes"] == 12


def _base(msg):
    # geth's message without its ", decoding into (...)" and " for <type>" details;
    # an element too big for its list is too big for the input too (the list's end
    # is the limit rlpcodec checks).
    msg = msg.split(", decoding into", 1)[0]
    msg = msg.replace("rlp: element is larger than containing list", "rlp: value size exceeds available input length")
    return re.sub(r" for \S+$", "", msg)


# Both reject these, with another message: geth's field-by-field decoder meets another
# error first than ours (which checks each list's element headers before its fields),
# or (ping_list_too_long: a size header cut short) p2p.rlpcodec words it "unexpected EOF".
_OTHER_FIRST_ERROR = {"noncanonical_single_byte_in_id", "long_string_short", "ping_list_too_long"}


def test_decoder_agrees_with_geth(crypto_backend):
    want_id = pubkey_id(TESTKEY)
    checked = 0
    for v in VECTORS["decode"]:
        data = bytes.fromhex(v["input"])
        pkt = IngressPacket()
        if v["error"]:
            with pytest.raises((DiscoverError, crypto.CryptoError)) as exc:
                decode_packet(data, pkt)
            if v["name"] not in _OTHER_FIRST_ERROR and isinstance(exc.value, DiscoverError):
                assert _base(str(exc.value)) == _base(v["error"]), v["name"]
        else:
            decode_packet(data, pkt)
            assert pkt.remote_id == want_id, v["name"]
            assert pkt.ev == v["type"], v["name"]
            if v["name"] == "ping_ip_5_bytes":
                # geth keeps the 5 bytes as a net.IP that is no address; here it is None.
                assert pkt.data.from_ == RpcEndpoint(None, 3322, 5544)
                pkt.data.from_.ip = IP("127.0.0.1")
                assert _encode_data(pkt).hex() == v["data"].replace("857f00000101", "847f000001").replace("ec04cc", "eb04cb")
            else:
                assert _encode_data(pkt).hex() == v["data"], v["name"]
        checked += 1
    assert checked == len(VECTORS["decode"]) > 60


def test_decode_framing_errors(crypto_backend):
    valid = bytes.fromhex(VECTORS["packets"][0]["packet"])
    with pytest.raises(DiscoverError) as exc:
        _decode(valid[:headSize])
    assert exc.value is errPacketTooSmall
    with pytest.raises(DiscoverError) as exc:
        _decode(b"temporary discovery v4" + valid[len(versionPrefix):])
    assert exc.value is errBadPrefix
    # A flipped body bit still recovers some key: the packet then comes from another node.
    flipped = bytearray(valid)
    flipped[-1] ^= 1
    try:
        pkt = _decode(bytes(flipped))
    except crypto.CryptoError:
        pass
    else:
        assert pkt.remote_id != pubkey_id(TESTKEY)


def test_decode_copies_the_buffer():
    buf = bytearray(bytes.fromhex(VECTORS["packets"][0]["packet"]))
    pkt = _decode(buf)
    raw = bytes(buf)
    buf[:] = bytes(len(buf))
    assert pkt.raw_data == raw and isinstance(pkt.raw_data, bytes)


# ---------------------------------------------------------------------------
# Extras: the transport over a pipe.


class FakeNet:
    """What the transport needs of the Network: its table's self node and req_read_packet."""

    def __init__(self, self_node):
        self.tab = type("Tab", (), {"self": self_node})()
        self.read = queue.Queue()

    def req_read_packet(self, pkt):
        self.read.put(pkt)


def _transport(crypto_backend=None):
    pipe = newpipe()
    key = crypto.generate_key()
    t = v5udp._listen_udp(key, pipe, pipe.local_addr())
    t.net = FakeNet(new_node(pubkey_id(key), "3.3.3.3", 5, 5))
    return t, pipe, key


def _remote():
    key = crypto.generate_key()
    return new_node(pubkey_id(key), "127.0.0.1", 30303, 30304), key


def test_send_ping_fields(crypto_backend):
    t, pipe, key = _transport()
    remote, _ = _remote()
    h = t.send_ping(remote, ("127.0.0.2", 4000), ["foo"])
    data, to = pipe.wait_packet_out()
    assert to == ("127.0.0.2", 4000)
    pkt = _decode(data)
    assert pkt.hash == h and pkt.remote_id == pubkey_id(key) and pkt.ev == pingPacket
    p = pkt.data
    assert p.version == 4 and p.topics == ["foo"]
    assert p.from_ == RpcEndpoint(IP("3.3.3.3"), 5, 5)   # our endpoint
    assert p.to == RpcEndpoint(IP("127.0.0.2"), 4000, 4000)
    assert p.expiration > 1136239445


def test_send_neighbours_chunks(crypto_backend):
    t, pipe, _ = _transport()
    remote, _ = _remote()
    nodes = [new_node(pubkey_id(crypto.generate_key()), "10.0.0.%d" % (i + 1), 30303, 30303)
             for i in range(maxNeighbors + 3)]
    t.send_neighbours(remote, nodes)
    first = _decode(pipe.wait_packet_out()[0]).data
    second = _decode(pipe.wait_packet_out()[0]).data
    assert len(first.nodes) == maxNeighbors and len(second.nodes) == 3
    assert [n.id for n in first.nodes + second.nodes] == [n.id for n in nodes]
    t.send_neighbours(remote, [])
    with pipe.mu:
        assert pipe.queue == []  # nothing to send, nothing sent (as geth)


def test_send_topic_nodes_filters_and_chunks(crypto_backend):
    t, pipe, _ = _transport()
    remote, _ = _remote()  # on loopback: loopback and LAN results may be relayed to it
    public = new_node(pubkey_id(crypto.generate_key()), "8.8.8.8", 1, 1)
    unspecified = new_node(pubkey_id(crypto.generate_key()), "0.0.0.0", 1, 1)
    echo = bytes(range(32))
    t.send_topic_nodes(remote, echo, [public, unspecified])
    p = _decode(pipe.wait_packet_out()[0]).data
    assert p.echo == echo and [n.id for n in p.nodes] == [public.id]
    # Nothing to relay still answers, with an empty list.
    t.send_topic_nodes(remote, echo, [])
    assert _decode(pipe.wait_packet_out()[0]).data == TopicNodes(echo, [])
    many = [new_node(pubkey_id(crypto.generate_key()), "8.8.4.%d" % i, 1, 1) for i in range(maxTopicNodes)]
    t.send_topic_nodes(remote, echo, many)
    assert len(_decode(pipe.wait_packet_out()[0]).data.nodes) == maxTopicNodes
    with pipe.mu:
        assert pipe.queue == []  # exactly full: one packet, no empty second one


def test_send_other_packets(crypto_backend):
    t, pipe, _ = _transport()
    remote, _ = _remote()
    t.send_findnode(remote, _ids[0])
    t.send_findnode_hash(remote, _hash2)
    t.send_topic_register(remote, ["a", "b"], 1, b"pong")
    h = t.send(remote, topicQueryPacket, TopicQuery("a", 99))
    got = [_decode(pipe.wait_packet_out()[0]) for _ in range(4)]
    assert [p.ev for p in got] == [findnodePacket, findnodeHashPacket, topicRegisterPacket, topicQueryPacket]
    assert got[0].data.target == _ids[0] and got[1].data.target == _hash2
    assert got[2].data == TopicRegister(["a", "b"], 1, b"pong")
    assert got[3].data == TopicQuery("a", 99) and got[3].hash == h


def test_send_after_close_reports_the_error(crypto_backend):
    t, pipe, _ = _transport()
    remote, _ = _remote()
    t.close()
    h, err = t.send_packet(remote.id, remote.addr(), pingPacket, Ping())
    assert h is not None and isinstance(err, OSError)


def test_handle_packet_passes_good_packets_on(crypto_backend):
    t, pipe, _ = _transport()
    packet = bytes.fromhex(VECTORS["packets"][4]["packet"])
    assert t.handle_packet(("127.0.0.1", 9), packet) is None
    pkt = t.net.read.get(timeout=1)
    assert pkt.remote_addr == ("127.0.0.1", 9) and pkt.ev == findnodePacket
    err = t.handle_packet(("127.0.0.1", 9), b"\x00" * 100)
    assert err is errBadPrefix and t.net.read.empty()


def test_read_loop_ends_on_close():
    t, pipe, _ = _transport()
    th = threading.Thread(target=t.read_loop, name="discv5.udp.readLoop", daemon=True)
    t._read_thread = th
    th.start()
    t.close()
    assert not th.is_alive()


class ScriptedConn(DgramPipe):
    """A pipe whose reads return the given datagrams, then block until closed."""

    def __init__(self, datagrams):
        super().__init__()
        self.datagrams = list(datagrams)

    def read_from_udp(self):
        if self.datagrams:
            d = self.datagrams.pop(0)
            if isinstance(d, Exception):
                raise d
            return d
        return super().read_from_udp()


class _Temporary(OSError):
    def temporary(self):
        return True


def test_read_loop_survives_bad_packets_and_temporary_errors(crypto_backend, caplog):
    good = bytes.fromhex(VECTORS["packets"][0]["packet"])
    huge = good[:headSize] + b"\x01" + b"\xff" * 2000   # cut at 1280 bytes as geth's read buffer cuts it
    conn = ScriptedConn([(b"junk", ("127.0.0.1", 1)), _Temporary("try again"), (huge, ("127.0.0.1", 2)),
                         (good, ("127.0.0.1", 3))])
    t = v5udp._listen_udp(TESTKEY, conn, conn.local_addr())
    t.net = FakeNet(new_node(pubkey_id(TESTKEY), "3.3.3.3", 5, 5))
    th = threading.Thread(target=t.read_loop, name="discv5.udp.readLoop", daemon=True)
    t._read_thread = th
    th.start()
    pkt = t.net.read.get(timeout=10)
    assert pkt.remote_addr == ("127.0.0.1", 3) and pkt.ev == pingPacket
    t.close()
    assert not th.is_alive()
    assert t.net.read.empty()


def test_read_loop_survives_a_failing_handler(crypto_backend, caplog):
    good = bytes.fromhex(VECTORS["packets"][0]["packet"])

    class Boom(FakeNet):
        def __init__(self, self_node):
            super().__init__(self_node)
            self.calls = 0

        def req_read_packet(self, pkt):
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("bug")
            super().req_read_packet(pkt)

    conn = ScriptedConn([(good, ("127.0.0.1", 1)), (good, ("127.0.0.1", 2))])
    t = v5udp._listen_udp(TESTKEY, conn, conn.local_addr())
    t.net = Boom(new_node(pubkey_id(TESTKEY), "3.3.3.3", 5, 5))
    th = threading.Thread(target=t.read_loop, name="discv5.udp.readLoop", daemon=True)
    t._read_thread = th
    with caplog.at_level("ERROR"):
        th.start()
        assert t.net.read.get(timeout=10).remote_addr == ("127.0.0.1", 2)
    t.close()
    assert any("packet handler failed" in r.getMessage() and "RuntimeError" in r.getMessage()
               for r in caplog.records)


def test_node_from_rpc():
    key = crypto.generate_key()
    rn = RpcNode(IP("10.0.0.1"), 30303, 30303, pubkey_id(key))
    n = v5udp.node_from_rpc(("10.0.0.2", 1), rn)
    assert (str(n.ip), n.udp, n.tcp, n.id) == ("10.0.0.1", 30303, 30303, rn.id)
    with pytest.raises(ValueError):
        v5udp.node_from_rpc(("8.8.8.8", 1), rn)   # LAN address relayed by a public node
    with pytest.raises(ValueError):
        v5udp.node_from_rpc(("10.0.0.2", 1), RpcNode(None, 1, 1, rn.id))  # no valid IP
    with pytest.raises(ValueError):
        v5udp.node_from_rpc(("10.0.0.2", 1), RpcNode(IP("10.0.0.1"), 1, 1, NodeID()))  # not a key
    assert v5udp.node_to_rpc(n) == rn


def test_make_endpoint_and_equal():
    e = v5udp.make_endpoint(("::ffff:127.0.0.1", 3), 4)
    assert e == RpcEndpoint(IP("127.0.0.1"), 3, 4)
    assert e.equal(RpcEndpoint(IP("127.0.0.1"), 3, 4))
    assert not e.equal(RpcEndpoint(IP("127.0.0.1"), 3, 5))
    assert v5udp.make_endpoint(("fe80::1%eth0", 3), 3).ip == IP("fe80::1")


def test_handle_packet_keeps_no_frames_alive():
    # errBadPrefix is one object: a traceback left on it would hold the handler's frames.
    t, pipe, _ = _transport()
    assert t.handle_packet(("127.0.0.1", 9), b"\x00" * 100) is errBadPrefix
    assert errBadPrefix.__traceback__ is None
