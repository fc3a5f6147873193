"""Fuzzing of the discv4 packet decoder (``p2p.discover.udp.decode_packet``).

Documented behaviour: ``decode_packet`` never raises. It returns
``(packet, from_id, hash, None)`` or ``(None, ..., err)`` with ``err`` a
``DiscoverError`` (too small/too big/bad hash, ``DecodeError`` for RLP),
or a ``ValueError`` (``CryptoError`` for a bad signature).
Random bytes rarely pass the hash and signature checks, so most examples are
*signed* packets with arbitrary or mutated bodies: those reach the RLP decoder.
"""

import ipaddress
import json
import os

from hypothesis import given, example, strategies as st

from p2p import crypto
from p2p.discover import udp as udpmod
from p2p.discover.node import pubkey_id
from p2p.discover.udp import (DiscoverError, EnrRequest, EnrResponse, Findnode, Neighbors, Ping, Pong, RpcEndpoint, RpcNode,
                              decode_packet, encode_packet, headSize, maxPacketSize)

from tests.fuzz import fuzz_settings, mutated, rlp_headers, rlp_values, FUZZ

_TESTDATA = os.path.join(os.path.dirname(__file__), "..", "testdata", "discv4_packets.json")
with open(_TESTDATA) as f:
    VECTORS = json.load(f)
VECTOR_PACKETS = [bytes.fromhex(p["input"]) for p in VECTORS["packets"]]

KEY = crypto.hex_to_ecdsa(VECTORS["signer_key"])

DOCUMENTED = (DiscoverError, ValueError)


def sign_raw(ptype: int, body: bytes) -> bytes:
    """A correctly hashed and signed datagram around an arbitrary body."""
    data = bytes((ptype,)) + body
    sig = crypto.sign(crypto.keccak256(data), KEY)
    return crypto.keccak256(sig, data) + sig + data


def check(buf):
    res = decode_packet(buf)  # must not raise
    assert isinstance(res, tuple) and len(res) == 4
    packet, from_id, h, err = res
    if err is None:
        assert isinstance(packet, (Ping, Pong, Findnode, Neighbors, EnrRequest, EnrResponse))
        assert from_id is not None and len(from_id) == 64
        # Everything the handlers read must be readable too.
        if isinstance(packet, Ping):
            for e in (packet.from_, packet.to):
                assert isinstance(e, RpcEndpoint)
                e.ip  # lazy IP parse must not raise
                assert 0 <= e.udp < 1 << 16 and 0 <= e.tcp < 1 << 16
        elif isinstance(packet, Pong):
            packet.to.ip
            assert isinstance(packet.reply_tok, bytes)
        elif isinstance(packet, Findnode):
            assert len(packet.target) == 64
        elif isinstance(packet, EnrRequest):
            pass
        elif isinstance(packet, EnrResponse):
            assert isinstance(packet.reply_tok, bytes) and packet.record.signed()
            assert packet.record.node_addr() is not None
        else:
            for n in packet.nodes:
                assert isinstance(n, RpcNode)
                ip = n.ip
                assert ip is None or isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address))
                assert len(n.id) == 64
        if not isinstance(packet, EnrResponse):
            assert isinstance(packet.expiration, int) and packet.expiration >= 0
        assert packet.name()
    else:
        assert packet is None
        assert isinstance(err, DOCUMENTED), repr(err)
    return res


def test_vectors_decode():
    for buf in VECTOR_PACKETS:
        assert check(buf)[3] is None


@FUZZ
@given(st.binary(max_size=maxPacketSize + 64))
def test_fuzz_decode_packet_random_bytes(buf):
    check(buf)


@fuzz_settings(ci_examples=100)
@given(st.sampled_from(VECTOR_PACKETS).flatmap(lambda p: mutated(p)))
def test_fuzz_decode_packet_mutated_vectors(buf):
    check(buf)


@fuzz_settings(ci_examples=100)
@given(st.sampled_from(VECTOR_PACKETS).flatmap(lambda p: mutated(p[headSize:])))
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
@example(4, b"\xc2\xc0\x80")
@example(4, b"\xc4\xc2\xc0\x80\x80")
@example(1, b"\xf9\xff\xff")
@example(3, b"\xc3\x80\x80\x80")
def test_fuzz_decode_packet_signed_arbitrary_body(ptype, body):
    buf = sign_raw(ptype, body)
    if len(buf) > maxPacketSize:
        buf = buf[:maxPacketSize]
    check(buf)


@st.composite
def endpoints(draw):
    ip = draw(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)))
    return RpcEndpoint(ip, draw(st.integers(0, 65535)), draw(st.integers(0, 65535)))


@st.composite
def packets(draw):
    """Valid packets of every type with random fields (including extra list elements)."""
    exp = draw(st.integers(0, (1 << 64) - 1))
    kind = draw(st.integers(1, 4))
    if kind == 1:
        p = Ping(version=draw(st.integers(0, (1 << 64) - 1)), from_=draw(endpoints()), to=draw(endpoints()),
                 expiration=exp)
    elif kind == 2:
        p = Pong(to=draw(endpoints()), reply_tok=draw(st.binary(max_size=40)), expiration=exp)
    elif kind == 3:
        p = Findnode(target=udpmod.NodeID(draw(st.binary(min_size=64, max_size=64))), expiration=exp)
    else:
        nodes = [RpcNode(e.ip, e.udp, e.tcp, udpmod.NodeID(draw(st.binary(min_size=64, max_size=64))))
                 for e in draw(st.lists(endpoints(), max_size=udpmod.maxNeighbors))]
        p = Neighbors(nodes, exp)
    return kind, p


@fuzz_settings(ci_examples=100)
@given(packets())
def test_fuzz_encode_decode_roundtrip(kp):
    kind, p = kp
    buf, h = encode_packet(KEY, kind, p)
    assert len(buf) <= maxPacketSize
    packet, from_id, h2, err = check(buf)
    assert err is None
    assert h2 == h
    assert from_id == pubkey_id(KEY.public_key)
    assert type(packet) is type(p)
    assert packet.expiration == p.expiration


@fuzz_settings(ci_examples=100)
@given(packets().flatmap(lambda kp: mutated(encode_packet(KEY, kp[0], kp[1])[0][headSize:])))
def test_fuzz_decode_packet_resigned_mutated_packets(data):
    if not data:
        data = b"\x02"
    buf = sign_raw(data[0], data[1:])
    check(buf[:maxPacketSize + 1])


def _enr_response_body():
    from p2p import enr

    r = enr.Record()
    r.set(enr.IP("127.0.0.1"))
    r.set(enr.UDP(30303))
    enr.sign_v4(r, KEY)
    return EnrResponse(b"\x11" * 32, r).encode_body()


ENR_RESPONSE_BODY = _enr_response_body()


@fuzz_settings(ci_examples=60)
@given(mutated(ENR_RESPONSE_BODY))
@example(ENR_RESPONSE_BODY)
def test_fuzz_decode_enr_response_mutated(body):
    # EIP-868's ENRResponse carries a whole signed record: mutations reach the ENR decoder.
    check(sign_raw(udpmod.enrResponsePacket, bytes(body)))
