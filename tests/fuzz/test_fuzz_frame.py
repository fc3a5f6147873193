"""Fuzzing of RLPx framing (``RLPXFrameRW.read_msg``), hello and disconnect decoding.

Documented errors of ``read_msg``: ``RLPxError`` (``BadMACError`` for a bad
header or frame MAC, RLP errors in the message code, snappy errors,
``PlainMessageTooLargeError``) and ``EOFError`` for a stream cut mid-frame.
``read_protocol_handshake`` adds ``ProtocolHandshakeError`` (an RLPxError),
``DiscReasonError`` (the peer sent a disconnect) and ``PeerError`` (a hello
that doesn't decode: ``errInvalidMsg``). ``decode_disc_reason`` never raises.

Three input families: random bytes and mutated valid frames read with valid
secrets (mostly MAC failures, as they must be), and frames whose header and
content are arbitrary but *correctly encrypted and MACed*, which reach the
size, message-code, snappy and RLP decoding behind the MAC.
"""

import json
import os

import rlp
import snappy
from hypothesis import example, given, strategies as st

from p2p import crypto
from p2p.message import Msg
from p2p.peer import ProtoHandshake
from p2p.peer_error import DiscReason, DiscReasonError, PeerError
from p2p.rlpx import (RLPxError, Secrets, decode_disc_reason, new_rlpx_frame_rw, read_protocol_handshake)

from tests.fuzz import FUZZ, fuzz_settings, mutated, rlp_headers, rlp_values  # noqa: F401

DOCUMENTED = (RLPxError, EOFError)
HELLO_DOCUMENTED = (RLPxError, EOFError, DiscReasonError, PeerError)

_TESTDATA = os.path.join(os.path.dirname(__file__), "..", "testdata", "devp2p_hello.json")
with open(_TESTDATA) as f:
    HELLO = json.load(f)
HELLO_PAYLOAD = bytes.fromhex(HELLO["payload"])

AES, MAC = bytes(range(32)), bytes(range(32, 64))
EGRESS_INIT, INGRESS_INIT = b"e" * 32, b"i" * 32


def secrets(initiator: bool) -> Secrets:
    s = Secrets(aes=AES, mac=MAC, egress_mac=crypto.new_keccak256(), ingress_mac=crypto.new_keccak256())
    a, b = (EGRESS_INIT, INGRESS_INIT) if initiator else (INGRESS_INIT, EGRESS_INIT)
    s.egress_mac.update(a)
    s.ingress_mac.update(b)
    return s


class Buffer:
    """A FIFO byte stream; reading past the end is EOF (never blocks)."""

    def __init__(self, data=b""):
        self.data = bytearray(data)
        self.max_request = 0

    def write(self, b):
        self.data += b
        return len(b)

    def read(self, n):
        self.max_request = max(self.max_request, n)
        out = bytes(self.data[:n])
        del self.data[:n]
        return out


def pair(snappy_on=False):
    """(writer, reader) frame RWs with matching secrets over one buffer."""
    buf = Buffer()
    w = new_rlpx_frame_rw(buf, secrets(True))
    r = new_rlpx_frame_rw(buf, secrets(False))
    w.snappy = r.snappy = snappy_on
    return w, r, buf


def raw_frame(w, header: bytes, content: bytes) -> bytes:
    """Encrypt and MAC an arbitrary 16-byte header and content like ``write_msg`` does.

    ``content`` is padded to 16 bytes; the header's size field may disagree with it.
    """
    enc, mac_enc, egress = w.enc.update, w.mac_cipher.update, w.egress_mac
    hct = enc(header)
    egress.update(bytes(x ^ y for x, y in zip(mac_enc(egress.digest()[:16]), hct)))
    hmac_ = egress.digest()[:16]
    content += bytes(-len(content) & 15)
    ct = enc(content)
    egress.update(ct)
    seed = egress.digest()[:16]
    egress.update(bytes(x ^ y for x, y in zip(mac_enc(seed), seed)))
    w._egress_sum = egress.digest()
    return hct + hmac_ + ct + egress.digest()[:16]


def read_all(r, buf, limit=8):
    """Read messages until an error; returns the messages read. Bounded: each read consumes input."""
    msgs = []
    for _ in range(limit):
        try:
            msg = r.read_msg()
        except DOCUMENTED:
            return msgs
        data = msg.payload.read()
        assert len(data) == msg.size
        assert msg.code >= 0
        msgs.append((msg.code, data))
        if not buf.data:
            break
    return msgs


def valid_stream(msgs, snappy_on=False):
    w, r, buf = pair(snappy_on)
    for code, payload in msgs:
        w.write_msg(Msg.from_bytes(code, payload))
    data = bytes(buf.data)
    return data


messages = st.lists(st.tuples(st.integers(0, 300), st.binary(max_size=100)), min_size=1, max_size=3)


@FUZZ
@given(st.binary(max_size=300), st.booleans())
def test_fuzz_frame_random_bytes(data, snappy_on):
    _, r, buf = pair(snappy_on)
    buf.write(data)
    assert read_all(r, buf) == []  # random bytes never pass the header MAC


@fuzz_settings(ci_examples=100)
@given(st.tuples(messages, st.booleans()).flatmap(
    lambda t: st.tuples(st.just(t[0]), st.just(t[1]), mutated(valid_stream(t[0], t[1])))))
def test_fuzz_frame_mutated_valid_stream(t):
    msgs, snappy_on, data = t
    _, r, buf = pair(snappy_on)
    buf.write(data)
    got = read_all(r, buf)
    # Whatever was read before the mutation is a prefix of what was sent.
    assert got == [(c, p) for c, p in msgs][:len(got)]


@fuzz_settings(ci_examples=100)
@given(st.integers(0, (1 << 24) - 1), st.binary(min_size=13, max_size=13), st.one_of(
    st.binary(max_size=200),
    rlp_values.map(rlp.encode),
    st.tuples(rlp_headers(), st.binary(max_size=40)).map(lambda t: t[0] + t[1]),
    st.tuples(st.integers(0, 127), st.binary(max_size=100)).map(lambda t: bytes((t[0],)) + snappy.compress(t[1])),
), st.booleans())
@example(0, bytes(13), b"", False)
@example(0, bytes(13), b"", True)
@example(1, bytes(13), b"\x89", False)
@example(2, bytes(13), b"\x81\x05", False)
@example(9, bytes(13), b"\x88" + bytes(8), False)
@example(5, bytes(13), b"\x01\xff\xff\xff\xff\x0f", True)
@example(6, bytes(13), b"\x01\x80\x80\x80\x80\x7f", True)
def test_fuzz_frame_authenticated_arbitrary_content(fsize, header_rest, content, snappy_on):
    # The header and content are arbitrary but properly encrypted and MACed: the
    # decoder behind the MAC sees them. A size larger than the content that
    # follows is an EOF (the stream ends), and the reader never asks for more
    # than the 24-bit size allows.
    w, r, buf = pair(snappy_on)
    header = fsize.to_bytes(3, "big") + header_rest
    buf.write(raw_frame(w, header, content))
    for code, data in read_all(r, buf, limit=1):
        if not snappy_on:
            assert len(data) <= fsize
    assert buf.max_request <= (1 << 24) + 16


@fuzz_settings(ci_examples=100)
@given(st.integers(0, 300), st.binary(max_size=2000), st.booleans())
def test_fuzz_frame_roundtrip(code, payload, snappy_on):
    w, r, buf = pair(snappy_on)
    w.write_msg(Msg.from_bytes(code, payload))
    msg = r.read_msg()
    assert msg.code == code and msg.payload.read() == payload
    assert not buf.data


# ---------------------------------------------------------------------------
# Hello (protocol handshake) and disconnect


class OneMsg:
    """A MsgReadWriter that yields one message (read_protocol_handshake's input)."""

    def __init__(self, code, payload):
        self.msg = Msg.from_bytes(code, payload)

    def read_msg(self):
        m, self.msg = self.msg, None
        if m is None:
            raise EOFError("EOF")
        return m


OUR = ProtoHandshake(version=5, name="fuzz", caps=[], listen_port=0, id=bytes(range(64)))


def check_hello(code, payload):
    try:
        hs = read_protocol_handshake(OneMsg(code, payload), OUR)
    except HELLO_DOCUMENTED as e:
        if isinstance(e, DiscReasonError):
            assert isinstance(e.reason, DiscReason)
        return None
    assert isinstance(hs, ProtoHandshake)
    assert isinstance(hs.version, int) and isinstance(hs.name, str) and len(hs.id) == 64
    assert any(hs.id)
    for c in hs.caps:
        assert isinstance(c.name, str) and isinstance(c.version, int)
    str(hs.caps)  # what the server logs
    return hs


def test_hello_vector_accepted():
    hs = check_hello(0, HELLO_PAYLOAD)
    assert hs is not None and hs.version == HELLO["version"]


@st.composite
def hello_shaped(draw):
    """Hello-like RLP lists with each field of a random type."""
    def f(good):
        return draw(st.one_of(good, rlp_values))
    items = [
        f(st.integers(0, 1 << 70).map(lambda v: v.to_bytes((v.bit_length() + 7) // 8, "big"))),
        f(st.text(max_size=20).map(str.encode)),
        f(st.lists(st.tuples(st.binary(max_size=8), st.binary(max_size=9)).map(list), max_size=4)),
        f(st.binary(max_size=3)),
        f(st.binary(min_size=64, max_size=64)),
    ]
    items = items[:draw(st.integers(0, 5))] + draw(st.lists(rlp_values, max_size=2))
    return rlp.encode(items)


@fuzz_settings(ci_examples=100)
@given(st.sampled_from((0, 0, 0, 1, 2, 16)), st.one_of(
    hello_shaped(),
    mutated(HELLO_PAYLOAD),
    st.binary(max_size=200),
    rlp_values.map(rlp.encode),
    st.tuples(rlp_headers(), st.binary(max_size=40)).map(lambda t: t[0] + t[1]),
))
@example(0, b"")
@example(0, b"\xc0")
@example(1, b"")
@example(1, b"\xc1\xc0")
@example(0, b"\xc0" * 200)
@example(0, b"\xf8" + b"\xff")
def test_fuzz_hello(code, payload):
    check_hello(code, payload)


def test_hello_deep_nesting():
    # Deeply nested lists must fail as an invalid message, not blow the stack.
    payload = b""
    for _ in range(5000):
        payload = rlp_len_prefix_list(payload)
    check_hello(0, payload)


def rlp_len_prefix_list(body):
    n = len(body)
    if n < 56:
        return bytes((0xC0 + n,)) + body
    ln = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0xF7 + len(ln),)) + ln + body


@fuzz_settings(ci_examples=60)
@given(hello_shaped(), st.booleans())
def test_fuzz_hello_over_frames(payload, snappy_on):
    # The hello as it arrives: a frame read by read_protocol_handshake.
    w, r, buf = pair(snappy_on)
    w.write_msg(Msg.from_bytes(0, payload))
    try:
        read_protocol_handshake(r, OUR)
    except HELLO_DOCUMENTED:
        pass


@fuzz_settings(ci_examples=100)
@given(st.one_of(st.binary(max_size=40), rlp_values.map(rlp.encode),
                 st.integers(0, 1 << 80).map(lambda v: rlp.encode([v]))))
@example(b"")
@example(b"\xc0")
@example(b"\xc1\x10")
@example(b"\xc1\xc0")
@example(b"\xc9\x88" + b"\xff" * 8)
@example(b"\x81")
def test_fuzz_decode_disc_reason(payload):
    reason = decode_disc_reason(payload)  # never raises
    assert isinstance(reason, DiscReason)
    # As a hello substitute it always surfaces as a DiscReasonError.
    try:
        read_protocol_handshake(OneMsg(1, payload), OUR)
    except DiscReasonError as e:
        assert e.reason == reason
    else:
        raise AssertionError("disconnect did not raise")


# ---------------------------------------------------------------------------
# The socket path (``_SocketConn``: one reusable buffer, a separate one for big frames)


def _socket_read_all(data, snappy_on, limit=8):
    import socket

    a, b = socket.socketpair()
    try:
        a.sendall(data)
        a.shutdown(socket.SHUT_WR)  # EOF after the data: reads never block
        r = new_rlpx_frame_rw(b, secrets(False))
        r.snappy = snappy_on
        msgs = []
        for _ in range(limit):
            try:
                msg = r.read_msg()
            except DOCUMENTED:
                break
            payload = msg.payload.read()
            assert len(payload) == msg.size
            msgs.append((msg.code, payload))
        return msgs
    finally:
        a.close()
        b.close()


@fuzz_settings(ci_examples=60)
@given(st.tuples(messages, st.booleans()).flatmap(
    lambda t: st.tuples(st.just(t[0]), st.just(t[1]), mutated(valid_stream(t[0], t[1])))))
def test_fuzz_frame_mutated_valid_stream_over_socket(t):
    msgs, snappy_on, data = t
    got = _socket_read_all(data, snappy_on)
    assert got == list(msgs)[:len(got)]


@fuzz_settings(ci_examples=60)
@given(st.integers(0, (1 << 24) - 1), st.binary(max_size=300), st.booleans())
@example((1 << 24) - 1, b"", False)  # biggest claim, nothing follows: EOF, no hang
@example((1 << 17) + 1, b"\x01", False)  # just past the reusable buffer
def test_fuzz_frame_authenticated_size_over_socket(fsize, content, snappy_on):
    w, _, _ = pair(snappy_on)
    data = raw_frame(w, fsize.to_bytes(3, "big") + bytes(13), content)
    for code, payload in _socket_read_all(data, snappy_on, limit=1):
        assert snappy_on or len(payload) <= fsize
