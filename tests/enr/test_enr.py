"""Twins of geth's p2p/enr/enr_test.go, plus EIP-778's example record and the text form.

Every test that signs or verifies runs on both crypto backends.
"""

import os
import random

import pytest
import rlp
from rlp.sedes import CountableList, big_endian_int

from p2p import crypto
from p2p.enr import (
    ID, IP, IP6, TCP, TCP6, UDP, UDP6, KeyError, Record, Secp256k1, SizeLimit, errDuplicateKey,
    errEncodeUnsigned, errIncompletePair, errInvalidSig, errNoID, errNotFound, errNotSorted, errTooBig,
    is_not_found, parse_text, sign_v4, text, with_entry,
)

PRIVKEY_HEX = "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291"


@pytest.fixture
def privkey(crypto_backend):
    return crypto.hex_to_ecdsa(PRIVKEY_HEX)


def random_string(n):
    return os.urandom(n)


def test_get_set_id():
    r = Record()
    r.set(ID("someid"))
    assert r.load(ID) == ID("someid")


def test_get_set_ip4():
    r = Record()
    r.set(IP(bytes([192, 168, 0, 3])))
    assert r.load(IP) == IP(bytes([192, 168, 0, 3]))


def test_get_set_ip6():
    ip = IP(bytes([0x20, 0x01, 0x48, 0x60, 0, 0, 0x20, 0x01, 0, 0, 0, 0, 0, 0, 0x00, 0x68]))
    r = Record()
    r.set(ip)
    assert r.load(IP) == ip


def test_get_set_udp():
    r = Record()
    r.set(UDP(30309))
    assert r.load(UDP) == UDP(30309)


def test_get_set_secp256k1(privkey):
    r = Record()
    sign_v4(r, privkey)
    pk = r.load(Secp256k1)
    assert pk == privkey.public_key


def test_load_errors():
    r = Record()
    ip4 = IP(bytes([127, 0, 0, 1]))
    r.set(ip4)

    # A missing key.
    with pytest.raises(KeyError) as ei:
        r.load(UDP)
    assert is_not_found(ei.value)
    assert ei.value == KeyError(b"udp", errNotFound)

    # A value that does not decode as the wanted type.
    with pytest.raises(KeyError) as ei:
        r.load(with_entry(ip4.enr_key(), CountableList(big_endian_int)))
    assert ei.value.key == b"ip"
    assert ei.value.err is not None
    assert not is_not_found(ei.value)


@pytest.mark.parametrize("inp,want", [
    ([("a", 1), ("c", 2), ("b", 3)], [("a", 1), ("b", 3), ("c", 2)]),
    ([("a", 1), ("c", 2), ("b", 3), ("d", 4), ("a", 5), ("bb", 6)],
     [("a", 5), ("b", 3), ("bb", 6), ("c", 2), ("d", 4)]),
    ([("c", 2), ("b", 3), ("d", 4), ("a", 5), ("bb", 6)],
     [("a", 5), ("b", 3), ("bb", 6), ("c", 2), ("d", 4)]),
])
def test_sorted_get_and_set(inp, want):
    r = Record()
    for k, v in inp:
        r.set(with_entry(k, v))
    got = [(r.pairs[i][0].decode(), r.load(with_entry(w[0], big_endian_int))) for i, w in enumerate(want)]
    assert got == want


def test_dirty(privkey):
    r = Record()
    assert not r.signed()
    with pytest.raises(type(errEncodeUnsigned)) as ei:
        r.encode_rlp()
    assert ei.value is errEncodeUnsigned

    sign_v4(r, privkey)
    assert r.signed()
    r.encode_rlp()

    r.set_seq(3)
    assert not r.signed()
    with pytest.raises(type(errEncodeUnsigned)) as ei:
        r.encode_rlp()
    assert ei.value is errEncodeUnsigned


def test_get_set_overwrite():
    r = Record()
    r.set(IP(bytes([192, 168, 0, 3])))
    r.set(IP(bytes([192, 168, 0, 4])))
    assert r.load(IP) == IP(bytes([192, 168, 0, 4]))


def test_sign_encode_and_decode(privkey):
    r = Record()
    r.set(UDP(30303))
    r.set(IP(bytes([127, 0, 0, 1])))
    sign_v4(r, privkey)

    blob = r.encode_rlp()
    r2 = Record()
    r2.decode_rlp(blob)
    assert r2 == r
    assert r2.encode_rlp() == blob


def test_node_addr(privkey):
    r = Record()
    assert r.node_addr() is None
    sign_v4(r, privkey)
    assert r.node_addr().hex() == "a448f24c6d18e575453db13171562b71999873db5b286df957af199ec94617f7"


PY_RECORD = bytes.fromhex(
    "f884b8407098ad865b00a582051940cb9cf36836572411a47278783077011599ed5cd16b76f2635f4e234738f30813a8"
    "9eb9137e3e3df5266e3a1f11df72ecf1145ccb9c01826964827634826970847f00000189736563703235366b31a103ca"
    "634cae0d49acb401d8a4c6b6fe8c55b70d115bf400769cc1400f3258cd31388375647082765f")


def test_python_interop(crypto_backend):
    r = Record()
    r.decode_rlp(PY_RECORD)
    assert r.seq() == 1
    assert r.node_addr().hex() == "a448f24c6d18e575453db13171562b71999873db5b286df957af199ec94617f7"
    assert r.load(IP) == IP(bytes([127, 0, 0, 1]))
    assert r.load(UDP) == UDP(30303)


def test_record_too_big(privkey):
    r = Record()
    key = random_string(10)
    r.set(with_entry(key, random_string(SizeLimit)))
    with pytest.raises(type(errTooBig)) as ei:
        sign_v4(r, privkey)
    assert ei.value is errTooBig

    r.set(with_entry(key, random_string(100)))
    sign_v4(r, privkey)


def test_sign_encode_and_decode_random(privkey):
    r = Record()
    pairs = {}
    for _ in range(10):
        key = random_string(7)
        value = random.getrandbits(32)
        pairs[key] = value
        r.set(with_entry(key, value))
    sign_v4(r, privkey)
    r.encode_rlp()
    for k, v in pairs.items():
        assert r.load(with_entry(k, big_endian_int)) == v, k


# ---------------------------------------------------------------------------
# Not in geth 1.8.16's tests.

# EIP-778's example record (devp2p enr.md): IPv4 127.0.0.1, UDP 30303, signed with PRIVKEY_HEX.
EIP778_TEXT = ("enr:-IS4QHCYrYZbAKWCBRlAy5zzaDZXJBGkcnh4MHcBFZntXNFrdvJjX04jRzjzCBOonrkTfj499SZuOh8R33Ls8RRcy5wBgmlk"
               "gnY0gmlwhH8AAAGJc2VjcDI1NmsxoQPKY0yuDUmstAHYpMa2_oxVtw0RW_QAdpzBQA8yWM0xOIN1ZHCCdl8")
EIP778_NODE_ID = "a448f24c6d18e575453db13171562b71999873db5b286df957af199ec94617f7"


def test_eip778_example_record(crypto_backend):
    r = parse_text(EIP778_TEXT)
    assert r.seq() == 1
    assert r.node_addr().hex() == EIP778_NODE_ID
    assert r.load(ID) == "v4"
    assert r.load(IP).address().compressed == "127.0.0.1"
    assert r.load(UDP) == 30303
    assert r.load(Secp256k1) == crypto.hex_to_ecdsa(PRIVKEY_HEX).public_key
    # Re-encoding gives the same bytes and the same text.
    assert r.encode_rlp() == PY_RECORD
    assert text(r) == EIP778_TEXT


def test_eip778_example_record_resigned(privkey):
    # Signing the same content with the same key reproduces the example byte for byte
    # (secp256k1 signatures here are deterministic, RFC 6979).
    r = Record()
    r.set(IP("127.0.0.1"))
    r.set(UDP(30303))
    r.set_seq(1)
    sign_v4(r, privkey)
    assert text(r) == EIP778_TEXT


def test_ipv6_entries():
    r = Record()
    r.set(IP6("::1"))
    r.set(TCP6(30304))
    r.set(UDP6(30305))
    r.set(TCP(30303))
    assert r.load(IP6).address().compressed == "::1"
    assert (r.load(TCP6), r.load(UDP6), r.load(TCP)) == (30304, 30305, 30303)
    assert [k for k, _ in r.pairs] == [b"ip6", b"tcp", b"tcp6", b"udp6"]


def test_ip_encodes_ipv4_mapped_as_4_bytes():
    r = Record()
    r.set(IP("::ffff:10.0.0.1"))
    assert r.pairs[0][1] == rlp.encode(bytes([10, 0, 0, 1]))


def _signed_elements(privkey, elements):
    """An RLP record of ``elements`` (after the signature), with a valid v4 signature of them."""
    payload = b"".join(elements)
    h = crypto.keccak256(rlp.codec.length_prefix(len(payload), 0xC0) + payload)
    sig = crypto.sign(h, privkey)[:64]
    body = rlp.encode(sig) + payload
    return rlp.codec.length_prefix(len(body), 0xC0) + body


def _v4_pairs(privkey, *extra):
    pairs = [(b"id", rlp.encode(b"v4")), (b"secp256k1", rlp.encode(crypto.compress_pubkey(privkey.public_key)))]
    pairs += extra
    return pairs


def _elements(seq, pairs):
    out = [rlp.encode(seq)]
    for k, v in pairs:
        out += [rlp.encode(k), v]
    return out


def test_decode_errors(privkey):
    def dec(blob):
        r = Record()
        before = (r.seq(), r.pairs)
        try:
            r.decode_rlp(blob)
        except Exception:
            assert (r.seq(), r.pairs) == before  # unchanged on error
            raise
        return r

    good = _signed_elements(privkey, _elements(1, _v4_pairs(privkey)))
    dec(good)

    unsorted = sorted(_v4_pairs(privkey, (b"udp", rlp.encode(1))), key=lambda p: p[0], reverse=True)
    with pytest.raises(type(errNotSorted)) as ei:
        dec(_signed_elements(privkey, _elements(1, unsorted)))
    assert ei.value is errNotSorted

    dup = _v4_pairs(privkey, (b"udp", rlp.encode(1)), (b"udp", rlp.encode(2)))
    with pytest.raises(type(errDuplicateKey)) as ei:
        dec(_signed_elements(privkey, _elements(1, dup)))
    assert ei.value is errDuplicateKey

    incomplete = _elements(1, _v4_pairs(privkey)) + [rlp.encode(b"zzz")]
    with pytest.raises(type(errIncompletePair)) as ei:
        dec(_signed_elements(privkey, incomplete))
    assert ei.value is errIncompletePair

    noid = [(b"secp256k1", rlp.encode(crypto.compress_pubkey(privkey.public_key)))]
    with pytest.raises(type(errNoID)) as ei:
        dec(_signed_elements(privkey, _elements(1, noid)))
    assert ei.value is errNoID

    unknown_scheme = [(b"id", rlp.encode(b"v9"))]
    with pytest.raises(type(errNoID)):
        dec(_signed_elements(privkey, _elements(1, unknown_scheme)))

    # A valid signature over different content.
    tampered = bytearray(good)
    tampered[-1] ^= 1
    with pytest.raises(type(errInvalidSig)) as ei:
        dec(bytes(tampered))
    assert ei.value is errInvalidSig

    with pytest.raises(type(errTooBig)) as ei:
        dec(b"\xf9\x01\x2d" + b"\x00" * 301)
    assert ei.value is errTooBig

    for bad in (b"", b"\x80", b"\xc0", rlp.encode([b"sig"]), rlp.encode([b"sig", b"\x00\x01"]),
                rlp.encode([b"sig", b"\x01" * 9]), rlp.encode([[b"sig"], b"\x01"]),
                good + b"\x00", good[:-1], b"\xc2\x81\x05\x01"):
        with pytest.raises(ValueError):  # rlpcodec.DecodeError or a record error
            dec(bad)


def test_secp256k1_entry_must_be_33_bytes(privkey):
    long_key = [(b"id", rlp.encode(b"v4")), (b"secp256k1", rlp.encode(b"\x04" + privkey.public_key.raw))]
    with pytest.raises(ValueError, match="invalid public key"):
        Record().decode_rlp(_signed_elements(privkey, _elements(1, long_key)))


def test_set_on_signed_record_bumps_seq(privkey):
    r = Record()
    sign_v4(r, privkey)
    assert r.seq() == 0
    r.set(UDP(1))
    assert r.seq() == 1 and not r.signed()
    r.set(TCP(1))  # unsigned: no second bump
    assert r.seq() == 1


def test_parse_text_errors(crypto_backend):
    for bad in ("", "enr", "enode://abc", "enr:***", "enr:" + EIP778_TEXT[4:-4]):
        with pytest.raises(ValueError):
            parse_text(bad)
