"""Fuzzing of the ENR decoder (``p2p.enr.Record.decode_rlp``), which reads records
from ENRResponse packets.

Documented behaviour: on bad input it raises a ``ValueError`` (``rlpcodec.DecodeError``
for bad RLP, ``RecordError``; ``enr.KeyError`` when the ``secp256k1`` key is
missing or undecodable), and leaves the record as it was; on success the
record is signed and re-encodes to the same bytes. Most examples are mutations of
validly signed records, so that they get past the size and signature checks.
"""

from hypothesis import given, strategies as st

from p2p import crypto, enr

from tests.fuzz import fuzz_settings, mutated

KEY = crypto.hex_to_ecdsa("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")


def _record(pairs):
    r = enr.Record()
    for k, v in pairs:
        r.set(enr.with_entry(k, v))
    r.set(enr.IP("127.0.0.1"))
    r.set(enr.UDP(30303))
    enr.sign_v4(r, KEY)
    return r.encode_rlp()


BASE = _record([])
DOCUMENTED = (ValueError,)


def check(buf):
    r = enr.Record()
    try:
        r.decode_rlp(buf)
    except DOCUMENTED:
        assert r.pairs == [] and not r.signed()
        return
    assert r.signed() and r.encode_rlp() == bytes(buf)
    assert len(r.node_addr()) == 32


@fuzz_settings(60)
@given(mutated(BASE))
def test_fuzz_enr_mutated(buf):
    check(bytes(buf))


@fuzz_settings()
@given(st.binary(max_size=400))
def test_fuzz_enr_random(buf):
    check(buf)


@fuzz_settings(40)
@given(st.lists(st.tuples(st.binary(min_size=1, max_size=8), st.binary(max_size=40)), max_size=4))
def test_fuzz_enr_signed_pairs(pairs):
    try:
        blob = _record(pairs)
    except ValueError:  # too big to sign
        return
    check(blob)
