"""Differential fuzzing of ``p2p.rlpcodec`` against pyrlp.

The codec claims to be strict in exactly the ways pyrlp's strict mode is. Every
test here feeds the same input to the codec and to a reference built from
pyrlp (``rlp.decode(..., strict=True)``, its ``big_endian_int`` and ``Binary``
sedes) and requires the same value or an error from both; the codec's only
documented error is ``rlpcodec.DecodeError``. Inputs are random bytes, random
headers followed by random bytes, and valid encodings mutated by
``tests.fuzz.mutated``.

The typed readers take the first item of their input and ignore what follows
(as geth's packet decoders do); their reference is pyrlp's ``consume_item``,
which reads the first item, plus a check that the item fits in the input. List
elements kept raw (a packet's ``rest``) get their headers checked, not their
insides, as in geth (``rlp.RawValue``); their reference is pyrlp's header reader.
"""

import time

import pytest
import rlp
from hypothesis import example, given, strategies as st
from rlp.codec import consume_item, consume_length_prefix
from rlp.sedes import big_endian_int

from p2p import rlpcodec
from p2p.discover import udp as udpmod
from tests.fuzz import FUZZ, mutated, rlp_headers, rlp_values

ERR = "error"


def _codec(fn, *args):
    try:
        return fn(*args)
    except rlpcodec.DecodeError:
        return ERR


def _pyrlp_strict(data):
    try:
        return rlp.decode(data, strict=True)
    except rlp.DecodingError:
        return ERR


def _pyrlp_first(data):
    """The first item of ``data`` as pyrlp reads it, or ERR (also when it overruns the input)."""
    try:
        item, _, end = consume_item(data, 0)
    except (rlp.DecodingError, IndexError):
        return ERR
    if end > len(data):
        return ERR
    # pyrlp slices without a bounds check, so an item deeper inside may claim more
    # bytes than its list holds; re-decoding the item strictly catches that.
    return _pyrlp_strict(data[:end])


def _pyrlp_elements(data):
    """The raw elements of the list that starts ``data``, with only their headers checked.

    geth keeps list elements it does not decode (the ``Rest`` of a packet) as raw
    values, checking their headers but not their insides; so do the typed readers.
    pyrlp's own header reader gives the reference.
    """
    try:
        _, typ, length, pos = consume_length_prefix(data, 0)
        if typ is not list or pos + length > len(data):
            return ERR
        end, out = pos + length, []
        while pos < end:
            _, _, n, s = consume_length_prefix(data, pos)
            if s + n > end:
                return ERR
            out.append(data[pos:s + n])
            pos = s + n
        return out
    except (rlp.DecodingError, IndexError):
        return ERR


def _ref_uint(v, maxbytes):
    if v is ERR or isinstance(v, list) or len(v) > maxbytes:
        return ERR
    try:
        return big_endian_int.deserialize(v)
    except rlp.DeserializationError:
        return ERR


def _ref_endpoint(v):
    if v is ERR or not isinstance(v, list) or len(v) != 3 or isinstance(v[0], list):
        return ERR
    udp, tcp = _ref_uint(v[1], 2), _ref_uint(v[2], 2)
    if ERR in (udp, tcp):
        return ERR
    return (v[0], udp, tcp)


def _ref_ping(data):
    """A discv4 ping body: [version, from, to, expiration, ...rest] (rest as raw items)."""
    el = _pyrlp_elements(data)
    if el is ERR or len(el) < 4:
        return ERR
    v = [_pyrlp_strict(e) for e in el[:4]]
    out = (_ref_uint(v[0], 8), _ref_endpoint(v[1]), _ref_endpoint(v[2]), _ref_uint(v[3], 8))
    return ERR if ERR in out else out + (list(el[4:]),)


def _first_item(fn):
    def run(data):
        it = rlpcodec.head(data, 0, len(data))
        return fn(it, data)
    return run


def _ping_general(data):
    it = rlpcodec.head(data, 0, len(data))
    f = rlpcodec.fields(it, data, 4, True)
    return (rlpcodec.uint(f[0], data, 8), rlpcodec.endpoint(f[1], data),
            rlpcodec.endpoint(f[2], data), rlpcodec.uint(f[3], data, 8),
            [rlpcodec.raw(x, data) for x in f[4:]])


def _ping_body():
    ep = udpmod.RpcEndpoint(udpmod._addr_ip(("127.0.0.1", 0)), 30303, 30303)
    to = udpmod.RpcEndpoint(udpmod._addr_ip(("::1", 0)), 1, 0)
    return udpmod.Ping(4, ep, to, int(time.time()) + 20).encode_body()


PING = _ping_body()
SEQ_PING = udpmod.Ping(4, udpmod.RpcEndpoint(udpmod._addr_ip(("127.0.0.1", 0)), 30303, 30303),
                       udpmod.RpcEndpoint(udpmod._addr_ip(("127.0.0.1", 0)), 1, 0), int(time.time()) + 20,
                       [rlpcodec.encode_uint(7)]).encode_body()
SHORT_PING = udpmod.Ping(4, udpmod.RpcEndpoint(None, 0, 0), udpmod.RpcEndpoint(None, 127, 128), 1).encode_body()

arbitrary = st.one_of(
    st.binary(max_size=120),
    st.tuples(rlp_headers(), st.binary(max_size=80)).map(lambda t: t[0] + t[1]),
    rlp_values.map(rlp.encode).flatmap(mutated),
)
pings = st.one_of(st.sampled_from((PING, SEQ_PING, SHORT_PING)).flatmap(mutated), arbitrary)


# ---------------------------------------------------------------------------
# The whole grammar


@FUZZ
@given(arbitrary)
@example(b"")
@example(b"\x81\x05")           # single byte wrapped in a string header
@example(b"\xb8\x05abcde")      # long form for a short length
@example(b"\xb9\x00\x38" + bytes(56))  # length with a leading zero byte
@example(b"\xc2\x82\x01")       # item overruns its list
@example(b"\xc1\x80\x80")       # trailing byte after the value
@example(b"\xc3\xc2\xc1\xc0")   # nested lists
def test_decode_matches_pyrlp_strict(data):
    assert _codec(rlpcodec.decode, data) == _pyrlp_strict(data)


@FUZZ
@given(rlp_values)
def test_encode_matches_pyrlp(value):
    enc = rlpcodec.encode_raw(value)
    assert enc == rlp.encode(value)
    assert rlpcodec.decode(enc) == value


# Leaves of every kind encode_raw takes: bytes, str (any code point), unsigned ints, bools.
_mixed_values = st.recursive(
    st.one_of(st.binary(max_size=70), st.text(max_size=30), st.integers(0, 2**80), st.booleans()),
    lambda children: st.one_of(st.lists(children, max_size=6), st.tuples(children, children)),
    max_leaves=10,
)


@FUZZ
@given(_mixed_values)
def test_encode_mixed_values_matches_pyrlp(value):
    try:
        want = rlp.encode(value)
    except UnicodeEncodeError:  # a str with lone surrogates: neither can write it
        with pytest.raises(UnicodeEncodeError):
            rlpcodec.encode(value)
        return
    assert rlpcodec.encode_raw(value) == want
    assert rlpcodec.encode(value) == want


@FUZZ
@given(st.one_of(st.integers(0, 2**64), st.integers(0, 2**600)))
def test_encode_uint_matches_pyrlp(v):
    enc = rlpcodec.encode_uint(v)
    assert enc == rlp.encode(v)
    assert _codec(_first_item(lambda it, b: rlpcodec.uint(it, b, 80)), enc) == v


def test_decode_deep_nesting_does_not_recurse():
    data = b"\xc0"
    for _ in range(3000):
        data = rlpcodec.encode_list([data])
    value = rlpcodec.decode(data)
    depth = 0
    while value:
        value = value[0]
        depth += 1
    assert depth == 3000


# ---------------------------------------------------------------------------
# The typed readers: first item only, values as pyrlp's sedes give them


@FUZZ
@given(arbitrary, st.sampled_from((1, 2, 8)))
@example(b"\x00", 8)            # zero as a single byte: not canonical
@example(b"\x82\x00\x01", 8)    # leading zero byte
@example(b"\x89" + bytes([1]) * 9, 8)  # too long for uint64
def test_uint_matches_pyrlp(data, maxbytes):
    got = _codec(_first_item(lambda it, b: rlpcodec.uint(it, b, maxbytes)), data)
    assert got == _ref_uint(_pyrlp_first(data), maxbytes)


@FUZZ
@given(arbitrary)
@example(b"\x81\x7f")
@example(b"\x88" + bytes([0xFF]) * 8)
def test_uint_prefix_matches_pyrlp(data):
    got = _codec(rlpcodec.uint_prefix, data, len(data))
    first = _pyrlp_first(data)
    want = _ref_uint(first, 8)
    if got is ERR:
        assert want is ERR
    else:
        assert got[0] == want
        assert got[1] == len(rlp.encode(first))


@FUZZ
@given(arbitrary)
def test_string_and_raw_match_pyrlp(data):
    first = _pyrlp_first(data)
    want = ERR if first is ERR or isinstance(first, list) else first
    assert _codec(_first_item(rlpcodec.string), data) == want
    if first is not ERR:
        assert _codec(_first_item(rlpcodec.raw), data) == rlp.encode(first)


@FUZZ
@given(arbitrary, st.integers(0, 4), st.booleans())
def test_fields_match_pyrlp(data, n, tail):
    el = _pyrlp_elements(data)
    want = ERR if el is ERR or len(el) < n or (len(el) > n and not tail) else el
    got = _codec(_first_item(lambda it, b: [rlpcodec.raw(x, b) for x in rlpcodec.fields(it, b, n, tail)]),
                 data)
    assert got == want


@FUZZ
@given(st.one_of(st.sampled_from((PING, SHORT_PING)).flatmap(
    lambda p: st.just(rlp.encode(rlp.decode(p)[1]))).flatmap(mutated), arbitrary))
def test_endpoint_matches_pyrlp(data):
    got = _codec(_first_item(rlpcodec.endpoint), data)
    assert got == _ref_endpoint(_pyrlp_first(data))


@FUZZ
@given(pings)
@example(PING)
@example(SHORT_PING)
def test_ping_matches_pyrlp(data):
    want = _ref_ping(data)
    assert _codec(_ping_general, data) == want
    # The fast path gives None (take the general path) or what the general path gives.
    fast = _codec(rlpcodec.ping_fast, data, 0, len(data)) if data else None
    if fast is not None:
        assert fast == want
        if fast is not ERR:
            # The fast path takes only pings without a rest or with one integer (EIP-868's seq).
            assert len(_pyrlp_elements(data)) in (4, 5)


def test_ping_fast_path_is_taken():
    assert rlpcodec.ping_fast(PING, 0, len(PING)) == _ping_general(PING)
    assert rlpcodec.ping_fast(SEQ_PING, 0, len(SEQ_PING)) == _ping_general(SEQ_PING)
    # A one-byte expiration is not the usual shape: the general path reads it.
    assert rlpcodec.ping_fast(SHORT_PING, 0, len(SHORT_PING)) is None
