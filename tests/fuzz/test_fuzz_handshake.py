"""Fuzzing of the RLPx encryption handshake decoders (auth and ack, both formats).

Documented errors: ``RLPxError`` (``HandshakeError`` for bad size prefix,
undecryptable packet, bad RLP, bad key or signature) and ``EOFError`` when the
stream ends before the announced size. The receiver path is the whole of
``receiver_enc_handshake`` (read, ``decode_plain``/``decode_rlp``,
``handle_auth_msg``, answer); the initiator path is ``read_handshake_msg`` of an
ack plus ``handle_auth_resp``.

Random bytes never pass the ECIES MAC, so most examples encrypt arbitrary or
mutated plaintexts to the receiver's key: pre-EIP-8 (exactly 194/97 bytes,
``decode_plain``) and EIP-8 (size prefix authenticated, arbitrary RLP body).
"""

import io
import json
import os

import rlp
from hypothesis import example, given, strategies as st

from p2p import crypto
from p2p.crypto import ecies
from p2p.discover.node import pubkey_id
from p2p.rlpx import (authMsgLen, authRespLen, eciesOverhead, encAuthMsgLen, encAuthRespLen,
                      AuthMsgV4, AuthRespV4, EncHandshake, RLPxError, read_handshake_msg,
                      receiver_enc_handshake)

from tests.fuzz import FUZZ, fuzz_settings, mutated, rlp_headers, rlp_values

_TESTDATA = os.path.join(os.path.dirname(__file__), "..", "testdata", "rlpx_handshake.json")
with open(_TESTDATA) as f:
    VECTORS = json.load(f)

KEY_A = crypto.hex_to_ecdsa(VECTORS["static_key_a"])  # initiator
KEY_B = crypto.hex_to_ecdsa(VECTORS["static_key_b"])  # receiver
PUB_A = ecies.import_ecdsa_public(KEY_A.public_key)
PUB_B = ecies.import_ecdsa_public(KEY_B.public_key)
AUTH_VECTORS = [bytes.fromhex(t["input"]) for t in VECTORS["auth"]]
ACK_VECTORS = [bytes.fromhex(t["input"]) for t in VECTORS["ack"]]

DOCUMENTED = (RLPxError, EOFError)

# The stream never blocks: reads past the end return b"" (EOF), so no example can hang.


class Conn:
    """A fake connection: reads come from ``data``, writes are collected."""

    def __init__(self, data):
        self.r = io.BytesIO(data)
        self.written = bytearray()

    def read(self, n):
        return self.r.read(n)

    def write(self, b):
        self.written += b
        return len(b)


def run_receiver(data):
    conn = Conn(data)
    try:
        s = receiver_enc_handshake(conn, KEY_B)
    except DOCUMENTED:
        assert not conn.written  # nothing is answered to a bad auth
        return None
    # Accepted: the secrets must be complete and an ack was written.
    assert len(s.aes) == 32 and len(s.mac) == 32 and len(s.remote_id) == 64
    assert len(conn.written) >= encAuthRespLen
    return s


def run_initiator(data):
    msg = AuthRespV4()
    try:
        read_handshake_msg(msg, encAuthRespLen, KEY_A, io.BytesIO(data))
        h = EncHandshake(initiator=True)
        h.handle_auth_resp(msg)
    except DOCUMENTED:
        return None
    assert len(msg.random_pubkey) == 64 and len(msg.nonce) == 32
    assert isinstance(msg.version, int)
    return msg


def eip8(pub, body, size=None):
    """An EIP-8 packet around ``body``; ``size`` overrides the (authenticated) prefix."""
    body = body or b"\x00"  # ECIES cannot encrypt an empty message
    n = len(body) + eciesOverhead if size is None else size
    prefix = (n & 0xFFFF).to_bytes(2, "big")
    return prefix + ecies.encrypt(pub, body, None, prefix)


def test_vectors_accepted():
    for v in AUTH_VECTORS:
        assert run_receiver(v) is not None
    for v in ACK_VECTORS:
        assert run_initiator(v) is not None


@FUZZ
@given(st.binary(max_size=600))
@example(b"")
@example(b"\x04" * encAuthMsgLen)
@example(b"\xff\xff" + bytes(encAuthMsgLen))  # EIP-8 prefix claiming 64 KiB, then EOF
def test_fuzz_auth_random_bytes(data):
    run_receiver(data)
    run_initiator(data)


@fuzz_settings(ci_examples=100)
@given(st.sampled_from(AUTH_VECTORS).flatmap(mutated))
def test_fuzz_auth_mutated_vectors(data):
    run_receiver(data)


@fuzz_settings(ci_examples=100)
@given(st.sampled_from(ACK_VECTORS).flatmap(mutated))
def test_fuzz_ack_mutated_vectors(data):
    run_initiator(data)


@fuzz_settings(ci_examples=100)
@given(st.binary(min_size=authMsgLen, max_size=authMsgLen))
def test_fuzz_auth_plain_arbitrary_plaintext(plain):
    # Correctly encrypted pre-EIP-8 auth with arbitrary content: signature/key checks decide.
    run_receiver(ecies.encrypt(PUB_B, plain))


@fuzz_settings(ci_examples=100)
@given(st.binary(min_size=authRespLen, max_size=authRespLen))
def test_fuzz_ack_plain_arbitrary_plaintext(plain):
    run_initiator(ecies.encrypt(PUB_A, plain))


def _auth_body_valid_shape(draw):
    """An auth RLP list with fields of random size/type and random extras."""
    fields = [
        draw(st.one_of(st.binary(min_size=65, max_size=65), st.binary(max_size=70), rlp_values)),
        draw(st.one_of(st.just(KEY_A.public_key.raw), st.binary(min_size=64, max_size=64), rlp_values)),
        draw(st.one_of(st.binary(min_size=32, max_size=32), rlp_values)),
        draw(st.one_of(st.integers(0, (1 << 64) - 1).map(lambda v: v.to_bytes((v.bit_length() + 7) // 8, "big")),
                       st.binary(max_size=10), rlp_values)),
    ]
    k = draw(st.integers(0, 4))
    fields = fields[:k] + [draw(rlp_values)] if k < 4 and draw(st.booleans()) else fields
    fields += draw(st.lists(rlp_values, max_size=3))
    return rlp.encode(fields)


@st.composite
def eip8_bodies(draw):
    return draw(st.one_of(
        st.composite(lambda d: _auth_body_valid_shape(d))(),
        rlp_values.map(rlp.encode),
        st.binary(max_size=300),
        st.tuples(rlp_headers(), st.binary(max_size=80)).map(lambda t: t[0] + t[1]),
    )) + bytes(draw(st.integers(0, 120)))  # padding


@fuzz_settings(ci_examples=100)
@given(eip8_bodies())
@example(b"")
@example(b"\xc0")
@example(b"\xc4\x80\x80\x80\x80")
def test_fuzz_auth_eip8_arbitrary_body(body):
    run_receiver(eip8(PUB_B, body))


@fuzz_settings(ci_examples=100)
@given(eip8_bodies())
@example(b"\xc3\x80\x80\x80")
def test_fuzz_ack_eip8_arbitrary_body(body):
    run_initiator(eip8(PUB_A, body))


@fuzz_settings(ci_examples=100)
@given(eip8_bodies(), st.integers(0, 0xFFFF), st.integers(0, 400))
@example(b"\xc0", 0xFFFF, 0)
@example(b"\xc0", 0, 0)
def test_fuzz_eip8_size_prefix_mismatch(body, size, cut):
    # The announced size disagrees with the packet (or the stream is cut): an
    # error or EOF, never a hang; at most 64 KiB is ever requested from the stream.
    pkt = eip8(PUB_B, body, size)
    run_receiver(pkt[:len(pkt) - cut] if cut else pkt)


class CountingStream(io.BytesIO):
    """Records the largest single read request (bounded allocation check)."""

    max_request = 0

    def read(self, n=-1):
        self.max_request = max(self.max_request, n)
        return super().read(n)


@FUZZ
@given(st.binary(min_size=2, max_size=2))
def test_eip8_size_prefix_bounds_reads(prefix):
    s = CountingStream(prefix + bytes(encAuthMsgLen))
    try:
        read_handshake_msg(AuthMsgV4(), encAuthMsgLen, KEY_B, s)
    except DOCUMENTED:
        pass
    assert s.max_request <= 0xFFFF + 2


@st.composite
def valid_auth_variants(draw):
    """A correctly signed auth from A to B whose version and extra elements vary (EIP-8)."""
    h = EncHandshake(initiator=True, remote_id=pubkey_id(KEY_B.public_key))
    msg = h.make_auth_msg(KEY_A)
    msg.version = draw(st.integers(0, (1 << 64) - 1))
    msg.rest = [rlp.encode(v) for v in draw(st.lists(rlp_values, max_size=3))]
    return msg.encode_rlp() + bytes(draw(st.integers(100, 300)))  # the padding seal_eip8 adds


@fuzz_settings(ci_examples=60)
@given(valid_auth_variants())
def test_fuzz_auth_eip8_forward_compatible(body):
    # Any version and any extra list elements must be accepted (EIP-8).
    assert run_receiver(eip8(PUB_B, body)) is not None
