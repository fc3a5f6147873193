"""Tests for p2p.discv5.node (twins of geth's p2p/discv5/node_test.go, then extras)."""

import ipaddress
import random

import pytest
from hypothesis import given, settings, strategies as st

from p2p import crypto
from p2p.discv5.node import (
    Node, NodeID, distcmp, hash_at_distance, hex_id, logdist, must_hex_id, must_parse_node,
    new_node, node_fields, parse_node, pubkey_id, recover_node_id,
)

HEXID = ("1dd9d65c4552b5eb43d5ad55a2ee3f56c6cbc1c64a5c8d659f51fcd51bace243"
         "51232b8d7821617d2b29b54b81cdefb9b3e9c37d7fd5f63270bcc9e1a6f6a439")
ID = must_hex_id(HEXID)


def test_example_new_node():
    n1 = new_node(ID, "2001:db8:3c4d:15::abcd:ef12", 52150, 30303)
    assert str(n1) == "enode://" + HEXID + "@[2001:db8:3c4d:15::abcd:ef12]:30303?discport=52150"
    assert not n1.incomplete()
    n2 = new_node(ID, None, 0, 0)
    assert str(n2) == "enode://" + HEXID
    assert n2.incomplete()


parseNodeTests = [
    ("http://foobar", 'invalid URL scheme, want "enode"', None),
    ("enode://01010101@123.124.125.126:3", "invalid node ID (wrong length, want 128 hex chars)", None),
    # Complete nodes with IP address.
    ("enode://" + HEXID + "@hostname:3", "invalid IP address", None),
    ("enode://" + HEXID + "@127.0.0.1:foo", "invalid port", None),
    ("enode://" + HEXID + "@127.0.0.1:3?discport=foo", "invalid discport in query", None),
    ("enode://" + HEXID + "@127.0.0.1:52150", None,
     new_node(must_hex_id("0x" + HEXID), bytes([0x7f, 0, 0, 1]), 52150, 52150)),
    ("enode://" + HEXID + "@[::]:52150", None,
     new_node(must_hex_id("0x" + HEXID), "::", 52150, 52150)),
    ("enode://" + HEXID + "@[2001:db8:3c4d:15::abcd:ef12]:52150", None,
     new_node(must_hex_id("0x" + HEXID), "2001:db8:3c4d:15::abcd:ef12", 52150, 52150)),
    ("enode://" + HEXID + "@127.0.0.1:52150?discport=22334", None,
     new_node(must_hex_id("0x" + HEXID), bytes([0x7f, 0, 0, 1]), 22334, 52150)),
    # Incomplete nodes with no address.
    (HEXID, None, new_node(must_hex_id("0x" + HEXID), None, 0, 0)),
    ("enode://" + HEXID, None, new_node(must_hex_id("0x" + HEXID), None, 0, 0)),
    # Invalid URLs
    ("01010101", "invalid node ID (wrong length, want 128 hex chars)", None),
    ("enode://01010101", "invalid node ID (wrong length, want 128 hex chars)", None),
    # Errors of the URL parser itself come through.
    ("://foo", "parse ://foo: missing protocol scheme", None),
]


@pytest.mark.parametrize("rawurl,want_error,want_result", parseNodeTests)
def test_parse_node(rawurl, want_error, want_result):
    if want_error:
        with pytest.raises(ValueError) as exc:
            parse_node(rawurl)
        assert str(exc.value) == want_error
    else:
        n = parse_node(rawurl)
        assert isinstance(n, Node)
        assert node_fields(n) == node_fields(want_result)
        assert n.sha == crypto.keccak256(ID)
        # The network loop's fields start empty, as Go's zero nodeNetGuts.
        assert (n.state, n.ping_echo, n.ping_topics, n.deferred_queries,
                n.pending_neighbours, n.query_timeouts) == (None, None, None, [], None, 0)


def test_node_string():
    checked = 0
    for rawurl, want_error, want in parseNodeTests:
        if not want_error and rawurl.startswith("enode://"):
            assert want.string() == rawurl
            checked += 1
    assert checked == 5


def test_hex_id():
    ref = NodeID(bytes(39) + bytes([128, 106, 217, 182, 31, 165, 174, 1, 67, 7, 235, 220, 150, 66,
                                    83, 173, 205, 159, 44, 10, 57, 42, 161, 26, 188]))
    id1 = must_hex_id("0x000000000000000000000000000000000000000000000000000000000000000000000000000000806ad9b61fa5ae014307ebdc964253adcd9f2c0a392aa11abc")
    id2 = must_hex_id("000000000000000000000000000000000000000000000000000000000000000000000000000000806ad9b61fa5ae014307ebdc964253adcd9f2c0a392aa11abc")
    assert id1 == ref
    assert id2 == ref


def test_node_id_recover(crypto_backend):
    prv = crypto.generate_key()
    h = bytes(32)
    sig = crypto.sign(h, prv)
    pub = pubkey_id(prv.public_key)
    recpub = recover_node_id(h, sig)
    assert isinstance(recpub, NodeID)
    assert pub == recpub
    assert pub.pubkey() == prv.public_key


def test_node_id_pubkey_bad():
    with pytest.raises(crypto.CryptoError, match="id is invalid secp256k1 curve point"):
        NodeID().pubkey()


def quickcfg():
    """Property-test settings (Go's quick.Config: MaxCount 5000, scaled down for make test)."""
    return settings(max_examples=500, deadline=None)


@st.composite
def generate(draw):
    """A NodeID whose bytes after a random index are random, the rest zero (NodeID.Generate)."""
    m = draw(st.integers(0, 63))
    tail = draw(st.binary(min_size=63 - m, max_size=63 - m))
    return NodeID(bytes(m + 1) + tail)


hashes = st.binary(min_size=32, max_size=32)


def _distcmp_big(target, a, b):
    t = int.from_bytes(target, "big")
    xa, xb = t ^ int.from_bytes(a, "big"), t ^ int.from_bytes(b, "big")
    return (xa > xb) - (xa < xb)


@quickcfg()
@given(hashes, hashes, hashes)
def test_node_id_distcmp(target, a, b):
    assert distcmp(target, a, b) == _distcmp_big(target, a, b)


def test_node_id_distcmp_equal():
    base = bytes(range(16)) + bytes(16)
    x = bytes(range(15, -1, -1)) + bytes(16)
    assert distcmp(base, x, x) == 0


def _logdist_big(a, b):
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_length()


@quickcfg()
@given(hashes, hashes)
def test_node_id_logdist(a, b):
    assert logdist(a, b) == _logdist_big(a, b)


def test_node_id_logdist_equal():
    x = bytes(range(16)) + bytes(16)
    assert logdist(x, x) == 0


def test_node_id_hash_at_distance():
    rnd = random.Random(5000)
    for i in range(5000):
        a = rnd.randbytes(32)
        dist = rnd.randrange(256)
        result = hash_at_distance(a, dist, rnd)
        assert logdist(result, a) == dist, "#%d: a=%s result=%s" % (i, a.hex(), result.hex())


# ---------------------------------------------------------------------------
# Extras


@quickcfg()
@given(generate(), generate())
def test_generated_ids_distances(a, b):
    ha, hb = crypto.keccak256(a), crypto.keccak256(b)
    assert logdist(ha, hb) == _logdist_big(ha, hb)
    assert distcmp(ha, ha, hb) == (0 if a == b else -1)


def test_node_id_text_forms():
    assert str(ID) == HEXID
    assert ID.terminal_string() == HEXID[:16]
    assert repr(ID) == 'hex_id("%s")' % HEXID
    assert hex_id("0x" + HEXID) == ID
    with pytest.raises(ValueError, match="encoding/hex: odd length hex string"):
        hex_id("abc")
    with pytest.raises(ValueError, match="wrong length, want 64 bytes"):
        NodeID(b"\x01")


def test_node_text_roundtrip():
    n = parse_node("enode://" + HEXID + "@127.0.0.1:52150?discport=22334")
    text = n.marshal_text()
    assert text == ("enode://" + HEXID + "@127.0.0.1:52150?discport=22334").encode()
    assert node_fields(Node.unmarshal_text(text)) == node_fields(n)
    with pytest.raises(ValueError, match="invalid node URL: invalid IP address"):
        must_parse_node("enode://" + HEXID + "@hostname:3")


def test_node_addr_set_addr_addr_equal():
    n = new_node(ID, "::ffff:127.0.0.1", 30301, 30303)
    assert n.ip == ipaddress.IPv4Address("127.0.0.1")   # IPv4-mapped becomes IPv4 (To4)
    assert n.addr() == ("127.0.0.1", 30301)
    assert n.addr_equal(("127.0.0.1", 30301))
    assert n.addr_equal(("::ffff:127.0.0.1", 30301))
    assert not n.addr_equal(("127.0.0.1", 30303))
    n.set_addr(("::1", 4000))
    assert (n.ip, n.udp, n.tcp) == (ipaddress.IPv6Address("::1"), 4000, 30303)
    assert not new_node(ID, None, 0, 0).addr_equal(("127.0.0.1", 0))


def test_nodes_compare_by_identity():
    a = new_node(ID, "127.0.0.1", 1, 1)
    b = new_node(ID, "127.0.0.1", 1, 1)
    assert a != b and a == a
    assert len({a, b}) == 2
    assert node_fields(a) == node_fields(b)


@pytest.mark.parametrize("ip,udp,tcp,msg", [
    (None, 1, 1, "incomplete node"),
    ("127.0.0.1", 0, 1, "missing UDP port"),
    ("127.0.0.1", 1, 0, "missing TCP port"),
    ("224.0.0.1", 1, 1, r"invalid IP \(multicast/unspecified\)"),
    ("0.0.0.0", 1, 1, r"invalid IP \(multicast/unspecified\)"),
])
def test_validate_complete_errors(ip, udp, tcp, msg):
    with pytest.raises(ValueError, match=msg):
        new_node(ID, ip, udp, tcp).validate_complete()


def test_validate_complete(crypto_backend):
    key = crypto.generate_key()
    new_node(pubkey_id(key), "127.0.0.1", 1, 1).validate_complete()
    with pytest.raises(crypto.CryptoError):
        new_node(NodeID(), "127.0.0.1", 1, 1).validate_complete()

