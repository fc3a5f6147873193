"""Tests for p2p.discover.node (twins of geth's node_test.go, plus extras)."""

import ipaddress

import pytest
from hypothesis import given, settings, strategies as st

from p2p import crypto
from p2p.discover.node import (
    Node, NodeID, bytes_id, distcmp, hash_at_distance, hex_id, logdist, must_hex_id,
    must_parse_node, new_node, parse_node, pubkey_id, recover_node_id, split_host_port,
)

HEXID = ("1dd9d65c4552b5eb43d5ad55a2ee3f56c6cbc1c64a5c8d659f51fcd51bace243"
         "51232b8d7821617d2b29b54b81cdefb9b3e9c37d7fd5f63270bcc9e1a6f6a439")
ID = must_hex_id(HEXID)


def test_example_new_node():
    n1 = new_node(ID, "2001:db8:3c4d:15::abcd:ef12", 52150, 30303)
    assert str(n1) == ("enode://" + HEXID + "@[2001:db8:3c4d:15::abcd:ef12]:30303?discport=52150")
    assert not n1.incomplete()
    n2 = new_node(ID, None, 0, 0)
    assert str(n2) == "enode://" + HEXID
    assert n2.incomplete()


PARSE_NODE_TESTS = [
    ("http://foobar", 'invalid URL scheme, want "enode"', None),
    ("enode://01010101@123.124.125.126:3", "invalid node ID (wrong length, want 128 hex chars)", None),
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
    (HEXID, None, new_node(must_hex_id("0x" + HEXID), None, 0, 0)),
    ("enode://" + HEXID, None, new_node(must_hex_id("0x" + HEXID), None, 0, 0)),
    ("01010101", "invalid node ID (wrong length, want 128 hex chars)", None),
    ("enode://01010101", "invalid node ID (wrong length, want 128 hex chars)", None),
    ("://foo", "parse ://foo: missing protocol scheme", None),
]


@pytest.mark.parametrize("rawurl,want_error,want_result", PARSE_NODE_TESTS)
def test_parse_node(rawurl, want_error, want_result):
    if want_error:
        with pytest.raises(ValueError) as exc:
            parse_node(rawurl)
        assert str(exc.value) == want_error
    else:
        n = parse_node(rawurl)
        assert n == want_result
        assert n.ip == want_result.ip and n.udp == want_result.udp and n.tcp == want_result.tcp
        assert n.sha == crypto.keccak256(ID)


def test_node_string():
    checked = 0
    for rawurl, want_error, want in PARSE_NODE_TESTS:
        if not want_error and rawurl.startswith("enode://"):
            assert want.string() == rawurl
            checked += 1
    assert checked == 5


def test_hex_id():
    ref = NodeID(bytes(39) + bytes([128, 106, 217, 182, 31, 165, 174, 1, 67, 7, 235, 220, 150, 66, 83,
                                    173, 205, 159, 44, 10, 57, 42, 161, 26, 188]))
    id1 = must_hex_id("0x000000000000000000000000000000000000000000000000000000000000000000000000000000806ad9b61fa5ae014307ebdc964253adcd9f2c0a392aa11abc")
    id2 = must_hex_id("000000000000000000000000000000000000000000000000000000000000000000000000000000806ad9b61fa5ae014307ebdc964253adcd9f2c0a392aa11abc")
    assert id1 == ref
    assert id2 == ref


def test_node_id_text_encoding():
    ref = NodeID(bytes([
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x10,
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x20,
        0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x30,
        0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x40,
        0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x50,
        0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x60,
        0x61, 0x62, 0x63, 0x64,
    ]))
    hexs = ("0102030405060708091011121314151617181920212223242526272829303132"
            "3334353637383940414243444546474849505152535455565758596061626364")
    text = ref.marshal_text()
    assert text == hexs.encode()
    assert NodeID.unmarshal_text(text) == ref


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
    with pytest.raises(crypto.CryptoError, match="invalid secp256k1 curve point"):
        NodeID().pubkey()


def quickcfg():
    """Property-test settings (Go's quick.Config with MaxCount 5000, scaled down)."""
    return settings(max_examples=500, deadline=None)


@st.composite
def generate(draw):
    """A NodeID with a random number of leading zero bytes (Go's NodeID.Generate)."""
    m = draw(st.integers(0, 63))
    tail = draw(st.binary(min_size=63 - m, max_size=63 - m))
    return NodeID(bytes(m + 1) + tail)


hashes = st.binary(min_size=32, max_size=32)


def _distcmp_big(target, a, b):
    t = int.from_bytes(target, "big")
    xa, xb = t ^ int.from_bytes(a, "big"), t ^ int.from_bytes(b, "big")
    return (xa > xb) - (xa < xb)


def _distcmp_bytewise(target, a, b):
    # geth's byte-by-byte loop, as an independent reference.
    for t, x, y in zip(target, a, b):
        da, db = x ^ t, y ^ t
        if da > db:
            return 1
        if da < db:
            return -1
    return 0


@quickcfg()
@given(hashes, hashes, hashes)
def test_node_id_distcmp(target, a, b):
    assert distcmp(target, a, b) == _distcmp_bytewise(target, a, b)
    assert distcmp(target, a, b) == _distcmp_big(target, a, b)


def test_node_id_distcmp_equal():
    base = bytes(range(16)) + bytes(16)
    x = bytes(range(15, -1, -1)) + bytes(16)
    assert distcmp(base, x, x) == 0


def _logdist_bytewise(a, b):
    lz = 0
    for x, y in zip(a, b):
        v = x ^ y
        if v == 0:
            lz += 8
        else:
            lz += 8 - v.bit_length()
            break
    return len(a) * 8 - lz


@quickcfg()
@given(hashes, hashes)
def test_node_id_logdist(a, b):
    assert logdist(a, b) == _logdist_bytewise(a, b)


def test_node_id_logdist_equal():
    x = bytes(range(16)) + bytes(16)
    assert logdist(x, x) == 0


@quickcfg()
@given(hashes, st.integers(min_value=0, max_value=256))
def test_node_id_hash_at_distance(a, dist):
    result = hash_at_distance(a, dist)
    assert len(result) == 32
    assert logdist(result, a) == dist


# ---------------------------------------------------------------------------
# Extras


def test_node_id_basics():
    id = must_hex_id(HEXID)
    assert len(id) == 64 and isinstance(id, bytes)
    assert str(id) == HEXID
    assert id.terminal_string() == HEXID[:16]
    assert repr(id) == id.go_string() == 'hex_id("%s")' % HEXID
    assert eval(repr(id), {"hex_id": hex_id}) == id
    assert bytes_id(bytes(id)) == id
    with pytest.raises(ValueError, match="wrong length, want 64 bytes"):
        bytes_id(b"\x01" * 63)
    with pytest.raises(ValueError, match="odd length"):
        hex_id("abc")
    with pytest.raises(ValueError, match="invalid byte: U\\+0067 'g'"):
        hex_id("gg")
    # usable as a dict key, equal to its bytes
    assert {id: 1}[NodeID(bytes(id))] == 1


def test_node_text_marshal():
    n = must_parse_node("enode://" + HEXID + "@10.3.58.6:30303?discport=30301")
    assert n.ip == ipaddress.ip_address("10.3.58.6")
    assert (n.tcp, n.udp) == (30303, 30301)
    assert n.addr() == ("10.3.58.6", 30301)
    assert Node.unmarshal_text(n.marshal_text()) == n
    with pytest.raises(ValueError, match="^invalid node URL: invalid IP address$"):
        must_parse_node("enode://" + HEXID + "@example.org:1")


def test_parse_node_ipv4_mapped_and_case():
    n = parse_node("enode://" + HEXID.upper() + "@[::ffff:1.2.3.4]:5")
    assert n.ip == ipaddress.IPv4Address("1.2.3.4")
    assert n.ip.version == 4
    assert str(n) == "enode://" + HEXID + "@1.2.3.4:5"
    n2 = new_node(ID, bytes(10) + b"\xff\xff" + bytes([9, 8, 7, 6]), 1, 1)
    assert n2.ip == ipaddress.IPv4Address("9.8.7.6")


@pytest.mark.parametrize("rawurl,err", [
    ("enode://" + HEXID + "@127.0.0.1", "invalid host: address 127.0.0.1: missing port in address"),
    ("enode://" + HEXID + "@127.0.0.1:70000", "invalid port"),
    ("enode://" + HEXID + "@127.0.0.1:+3", "invalid port"),
    ("enode://" + HEXID + "@[fe80::1%eth0]:3", "invalid IP address"),
    ("enode://" + HEXID + "@127.0.0.1:3?discport=99999", "invalid discport in query"),
    ("enode://127.0.0.1:3", "does not contain node ID"),
    ("enode:" + HEXID + "@127.0.0.1:3", "does not contain node ID"),
    ("enode://zz@127.0.0.1:3", "invalid node ID (encoding/hex: invalid byte: U+007A 'z')"),
    ("enode://" + HEXID + ":pw@127.0.0.1:3", "invalid node ID (encoding/hex: odd length hex string)"),
    ("enode://" + HEXID + ":p@127.0.0.1:3", "invalid node ID (encoding/hex: invalid byte: U+003A ':')"),
])
def test_parse_node_more_errors(rawurl, err):
    with pytest.raises(ValueError) as exc:
        parse_node(rawurl)
    assert str(exc.value) == err


def test_split_host_port():
    assert split_host_port("[::1]:80") == ("::1", "80")
    assert split_host_port(":30301") == ("", "30301")
    with pytest.raises(ValueError, match="too many colons"):
        split_host_port("::1:80")


def test_validate_complete():
    prv = crypto.generate_key()
    good = new_node(pubkey_id(prv.public_key), "127.0.0.1", 30303, 30303)
    good.validate_complete()
    cases = [
        (new_node(good.id, None, 0, 0), "incomplete node"),
        (new_node(good.id, "127.0.0.1", 0, 1), "missing UDP port"),
        (new_node(good.id, "127.0.0.1", 1, 0), "missing TCP port"),
        (new_node(good.id, "224.0.0.1", 1, 1), "invalid IP (multicast/unspecified)"),
        (new_node(good.id, "::", 1, 1), "invalid IP (multicast/unspecified)"),
        (new_node(NodeID(), "127.0.0.1", 1, 1), "id is invalid secp256k1 curve point"),
    ]
    for n, err in cases:
        with pytest.raises(ValueError) as exc:
            n.validate_complete()
        assert str(exc.value) == err


def test_node_equality_and_sha():
    a = new_node(ID, "10.0.0.1", 1, 2)
    b = new_node(ID, ipaddress.ip_address("10.0.0.1"), 1, 2)
    assert a == b and hash(a) == hash(b)
    assert a != new_node(ID, "10.0.0.1", 1, 3)
    assert a.sha == crypto.keccak256(ID)
    assert a.added_at is None


@quickcfg()
@given(generate(), generate(), generate())
def test_node_id_distcmp_on_generated_ids(target, a, b):
    # Go's generator makes IDs with long common zero prefixes: the cases that matter for buckets.
    ta, tb = crypto.keccak256(a), crypto.keccak256(b)
    assert distcmp(target[:32], ta, tb) == _distcmp_bytewise(target[:32], ta, tb)
    assert logdist(a, b) == _logdist_bytewise(a, b)
    assert distcmp(a, b, b) == 0
