"""Fuzzing of the discovery v5 packet decoder (``p2p.discv5.udp.decode_packet``).

Documented behaviour: ``decode_packet(buf, pkt)`` fills ``pkt`` and returns None, or
raises ``DiscoverError`` (too small, bad prefix, ``DecodeError`` for the body) or
``crypto.CryptoError`` (a signature that recovers no key). Nothing else, no hang, and
no value bigger than the datagram justifies: every list it returns has at most one
element per byte received. The transport's ``handle_packet`` (what the read loop calls)
never raises on any input.

Random bytes rarely carry the prefix, so most examples are *signed* packets with
arbitrary or mutated bodies, which reach the RLP decoder: wrong prefixes, bad
signatures, broken RLP, huge topic lists, pongs with absurd ticket wait periods.
"""

import ipaddress
import json
import os

from hypothesis import example, given, strategies as st

from p2p import crypto, rlpcodec
from p2p.discv5 import udp as v5udp
from p2p.discv5.node import NodeID, _to_ip, pubkey_id
from p2p.discv5.udp import (
    DiscoverError, Findnode, FindnodeHash, IngressPacket, Neighbors, Ping, Pong, RpcEndpoint, RpcNode,
    TopicNodes, TopicQuery, TopicRegister, decode_packet, encode_packet, headSize, maxNeighbors,
    maxPacketSize, maxTopicNodes, versionPrefix,
)

from tests.fuzz import fuzz_settings, mutated, rlp_headers, rlp_values, FUZZ

_TESTDATA = os.path.join(os.path.dirname(__file__), "..", "testdata", "discv5_packets.json")
with open(_TESTDATA) as f:
    VECTORS = json.load(f)
VECTOR_PACKETS = [bytes.fromhex(p["packet"]) for p in VECTORS["packets"]]
VECTOR_INPUTS = VECTOR_PACKETS + [bytes.fromhex(d["input"]) for d in VECTORS["decode"]]

KEY = crypto.hex_to_ecdsa(VECTORS["key"])
KEY_ID = pubkey_id(KEY)

DOCUMENTED = (DiscoverError, crypto.CryptoError)
_IP = (ipaddress.IPv4Address, ipaddress.IPv6Address)


def sign_raw(ptype: int, body: bytes) -> bytes:
    """A correctly framed and signed datagram around an arbitrary body."""
    data = bytes((ptype,)) + body
    return versionPrefix + crypto.sign(crypto.keccak256(data), KEY) + data


def _u(v, bits):
    assert isinstance(v, int) and 0 <= v < 1 << bits


def _check_endpoint(e):
    assert isinstance(e, RpcEndpoint)
    assert e.ip is None or isinstance(e.ip, _IP)
    _u(e.udp, 16), _u(e.tcp, 16)


def _check_node(n):
    assert isinstance(n, RpcNode)
    assert n.ip is None or isinstance(n.ip, _IP)
    _u(n.udp, 16), _u(n.tcp, 16)
    assert isinstance(n.id, NodeID) and len(n.id) == 64


def _check_topics(topics, limit):
    assert isinstance(topics, list) and len(topics) <= limit
    for t in topics:
        assert isinstance(t, str)
        t.encode("utf-8", "surrogateescape")  # goes back to its wire bytes


def check(buf):
    """Decode ``buf``: the packet, or None after one of the documented errors."""
    pkt = IngressPacket()
    try:
        res = decode_packet(buf, pkt)
    except DOCUMENTED:
        return None
    assert res is None
    n = len(buf)
    p = pkt.data
    assert isinstance(pkt.remote_id, NodeID) and len(pkt.hash) == 32 and pkt.raw_data == bytes(buf)
    assert pkt.ev == buf[headSize]
    if isinstance(p, Ping):
        _u(p.version, 64), _u(p.expiration, 64)
        _check_endpoint(p.from_), _check_endpoint(p.to)
        _check_topics(p.topics, n)
    elif isinstance(p, Pong):
        _check_endpoint(p.to)
        assert isinstance(p.reply_tok, bytes) and len(p.topic_hash) == 32
        _u(p.expiration, 64), _u(p.ticket_serial, 32)
        assert len(p.wait_periods) <= n
        for w in p.wait_periods:
            _u(w, 32)
    elif isinstance(p, (Findnode, FindnodeHash)):
        assert len(p.target) == (64 if isinstance(p, Findnode) else 32)
        _u(p.expiration, 64)
    elif isinstance(p, (Neighbors, TopicNodes)):
        assert len(p.nodes) <= n // 67  # an rpcNode takes at least 67 bytes on the wire
        for x in p.nodes:
            _check_node(x)
        if isinstance(p, TopicNodes):
            assert len(p.echo) == 32
        else:
            _u(p.expiration, 64)
    elif isinstance(p, TopicRegister):
        _check_topics(p.topics, n)
        _u(p.idx, 64)
        assert isinstance(p.pong, bytes) and len(p.pong) <= n
    else:
        assert isinstance(p, TopicQuery)
        _check_topics([p.topic], 1)
        _u(p.expiration, 64)
    if hasattr(p, "rest"):
        assert sum(len(r) for r in p.rest) <= n
    return p


def test_vectors_decode():
    for buf in VECTOR_PACKETS:
        assert check(buf) is not None
    assert sum(check(b) is None for b in VECTOR_INPUTS) > 40  # geth's rejections are ours


@FUZZ
@given(st.binary(max_size=maxPacketSize + 64))
def test_fuzz_decode_packet_random_bytes(buf):
    check(buf)


@FUZZ
@given(st.binary(max_size=maxPacketSize))
def test_fuzz_decode_packet_prefixed_random_bytes(rest):
    # The right prefix, then anything: a bad signature, or a random sender and body.
    check(versionPrefix + rest)


@fuzz_settings(ci_examples=100)
@given(st.sampled_from(VECTOR_INPUTS).flatmap(lambda p: mutated(p)))
def test_fuzz_decode_packet_mutated_vectors(buf):
    # Mutations anywhere: in the prefix (wrong prefix), the signature, or the body.
    check(buf)


@fuzz_settings(ci_examples=100)
@given(st.sampled_from(VECTOR_INPUTS).flatmap(lambda p: mutated(p[headSize:])))
def test_fuzz_decode_packet_resigned_mutated_vectors(data):
    # Mutate type + RLP body, then sign again: the mutation reaches the decoder.
    if not data:
        data = b"\x01"
    check(sign_raw(data[0], data[1:]))


@fuzz_settings(ci_examples=100)
@given(st.integers(0, 255), st.one_of(
    st.binary(max_size=200),
    rlp_values.map(lambda v: __import__("rlp").encode(v)),
    st.tuples(rlp_headers(), st.binary(max_size=64)).map(lambda t: t[0] + t[1]),
))
@example(1, b"")
@example(1, b"\xf9\xff\xff")
@example(2, b"\xc0")
@example(6, b"\xc3\xc0\x80\x80")
@example(7, b"\xc2\x80\x80")
@example(8, b"\xe2\xa0" + bytes(32) + b"\xc0")
def test_fuzz_decode_packet_signed_arbitrary_body(ptype, body):
    check(sign_raw(ptype, body)[:maxPacketSize])


def _list(items):
    return rlpcodec.encode_list(items)


@fuzz_settings(ci_examples=60)
@given(st.integers(0, 1200), st.binary(min_size=0, max_size=3), st.sampled_from((1, 6)))
def test_fuzz_huge_topic_lists(count, topic, ptype):
    # A ping or topicRegister whose topic list fills the datagram: one value per byte at most.
    topics = _list([rlpcodec.encode_bytes(topic)] * count)
    ep = RpcEndpoint(None, 0, 0).encode()
    if ptype == 1:
        body = _list([b"\x04", ep, ep, b"\x01", topics])
    else:
        body = _list([topics, b"\x80", b"\x80"])
    buf = sign_raw(ptype, body)
    p = check(buf[:maxPacketSize])
    if len(buf) <= maxPacketSize:
        assert p is not None and len(p.topics) == count


@fuzz_settings(ci_examples=60)
@given(st.lists(st.one_of(st.integers(0, (1 << 32) - 1), st.integers(1 << 32, 1 << 70)), max_size=300),
       st.integers(0, (1 << 40)), st.integers(0, (1 << 70)))
@example([0xFFFFFFFF] * 250, 0xFFFFFFFF, (1 << 64) - 1)
def test_fuzz_pong_absurd_ticket_times(waits, serial, exp):
    # Wait periods and serials out of uint32, expirations out of uint64: errors, not values.
    body = _list([RpcEndpoint(None, 0, 0).encode(), rlpcodec.encode_bytes(b""), rlpcodec.encode_uint(exp),
                  rlpcodec.encode_bytes(bytes(32)), rlpcodec.encode_uint(serial),
                  _list([rlpcodec.encode_uint(w) for w in waits])])
    buf = sign_raw(2, body)
    p = check(buf[:maxPacketSize])
    in_range = all(w < 1 << 32 for w in waits) and serial < 1 << 32 and exp < 1 << 64
    if len(buf) <= maxPacketSize:
        assert (p is not None) == in_range
        if p is not None:
            assert p.wait_periods == waits and p.ticket_serial == serial


@st.composite
def endpoints(draw):
    ip = draw(st.one_of(st.none(), st.ip_addresses(v=4), st.ip_addresses(v=6)))
    ip = _to_ip(ip)  # an IPv4-mapped address comes back as IPv4 (geth's To4)
    return RpcEndpoint(ip, draw(st.integers(0, 65535)), draw(st.integers(0, 65535)))


def _ids(draw):
    return NodeID(draw(st.binary(min_size=64, max_size=64)))


topics_st = st.lists(st.binary(max_size=20).map(lambda b: b.decode("utf-8", "surrogateescape")), max_size=8)


@st.composite
def packets(draw):
    """Valid packets of every type with random fields."""
    exp = draw(st.integers(0, (1 << 64) - 1))
    kind = draw(st.integers(1, 8))
    rest = draw(st.lists(rlp_values.map(lambda v: __import__("rlp").encode(v)), max_size=2))
    if kind == 1:
        p = Ping(draw(st.integers(0, (1 << 64) - 1)), draw(endpoints()), draw(endpoints()), exp,
                 draw(topics_st), rest)
    elif kind == 2:
        p = Pong(draw(endpoints()), draw(st.binary(max_size=40)), exp, draw(st.binary(min_size=32, max_size=32)),
                 draw(st.integers(0, (1 << 32) - 1)), draw(st.lists(st.integers(0, (1 << 32) - 1), max_size=8)),
                 rest)
    elif kind == 3:
        p = Findnode(_ids(draw), exp, rest)
    elif kind == 4:
        nodes = [RpcNode(e.ip, e.udp, e.tcp, _ids(draw)) for e in draw(st.lists(endpoints(), max_size=maxNeighbors))]
        p = Neighbors(nodes, exp, rest)
    elif kind == 5:
        p = FindnodeHash(draw(st.binary(min_size=32, max_size=32)), exp, rest)
    elif kind == 6:
        p = TopicRegister(draw(topics_st), draw(st.integers(0, (1 << 64) - 1)), draw(st.binary(max_size=300)))
    elif kind == 7:
        p = TopicQuery(draw(topics_st.map(lambda t: t[0] if t else "")), exp)
    else:
        nodes = [RpcNode(e.ip, e.udp, e.tcp, _ids(draw)) for e in draw(st.lists(endpoints(), max_size=maxTopicNodes))]
        p = TopicNodes(draw(st.binary(min_size=32, max_size=32)), nodes)
    return kind, p


@fuzz_settings(ci_examples=100)
@given(packets())
def test_fuzz_encode_decode_roundtrip(kp):
    kind, p = kp
    buf, h = encode_packet(KEY, kind, p)
    got = check(buf)
    assert got == p
    pkt = IngressPacket()
    decode_packet(buf, pkt)
    assert pkt.hash == h and pkt.remote_id == KEY_ID


@fuzz_settings(ci_examples=100)
@given(packets().flatmap(lambda kp: mutated(encode_packet(KEY, kp[0], kp[1])[0][headSize:])))
def test_fuzz_decode_packet_resigned_mutated_packets(data):
    if not data:
        data = b"\x02"
    check(sign_raw(data[0], data[1:])[:maxPacketSize])


class _Net:
    def __init__(self):
        self.got = []

    def req_read_packet(self, pkt):
        self.got.append(pkt)


class _NoConn:
    def local_addr(self):
        return ("127.0.0.1", 30303)

    def close(self):
        pass


@fuzz_settings(ci_examples=100)
@given(st.one_of(st.binary(max_size=maxPacketSize),
                 st.sampled_from(VECTOR_INPUTS).flatmap(lambda p: mutated(p))))
def test_fuzz_handle_packet_never_raises(buf):
    # What the read loop does with every datagram: the documented error, or one packet on.
    t = v5udp._listen_udp(KEY, _NoConn(), ("127.0.0.1", 30303))
    t.net = _Net()
    err = t.handle_packet(("127.0.0.1", 1), buf)
    if err is None:
        assert len(t.net.got) == 1
    else:
        assert isinstance(err, DOCUMENTED) and not t.net.got


@fuzz_settings(ci_examples=60)
@given(st.lists(st.integers(0, (1 << 32) - 1), min_size=0, max_size=40),
       st.lists(topics_st.map(lambda t: t[0] if t else "x"), min_size=0, max_size=40),
       st.integers(0, 1 << 62), st.booleans())
@example([0xFFFFFFFF] * 3, ["a", "b", "c"], 0, True)
def test_fuzz_pong_to_ticket_absurd_wait_periods(waits, topics, local_time, right_hash):
    # A decoded pong becomes a ticket (ticket.py): any uint32 wait period gives a time, the
    # wrong list length or topic hash the documented ValueError, and the ticket goes back
    # into a pong unchanged.
    from p2p.discv5 import mclock
    from p2p.discv5.net import rlp_hash
    from p2p.discv5.ticket import pong_to_ticket, ticket_to_pong, time_bucket

    th = rlp_hash(topics) if right_hash else bytes(32)
    buf, _ = encode_packet(KEY, 2, Pong(RpcEndpoint(None, 0, 0), b"", 0, th, 1, waits))
    if len(buf) > maxPacketSize:
        return
    pkt = IngressPacket()
    decode_packet(buf, pkt)
    try:
        t = pong_to_ticket(local_time, topics, None, pkt)
    except ValueError:
        assert len(topics) != len(waits) or not right_hash or rlp_hash(topics) != th
        return
    assert len(topics) == len(waits) and right_hash
    for w, rt in zip(waits, t.reg_time):
        assert rt == local_time + w * mclock.Second
        assert time_bucket(rt) - time_bucket(local_time) <= (w + 60) // 60 + 1
    back = Pong()
    ticket_to_pong(t, back)
    assert back.wait_periods == waits and back.topic_hash == th
