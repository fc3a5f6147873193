"""Tests of the RLPx transport: twins of geth's rlpx_test.go, then bad input at the transport level."""

import io
import json
import os
import socket
import threading
import time

import pytest
import rlp

from p2p import crypto, rlpcodec
from p2p import rlpx as rlpx_mod
from p2p.crypto import ecies
from p2p.discover.node import Node, NodeID, pubkey_id
from p2p.message import Msg, expect_msg, msg_pipe, send
from p2p.peer import ProtoHandshake, baseProtocolMaxMsgSize
from p2p.peer_error import (DiscQuitting, DiscReason, DiscReasonError, DiscRequested, DiscTooManyPeers,
                            DiscInvalidIdentity, PeerError, errInvalidMsg, new_peer_error)
from p2p.protocol import Cap
from p2p.rlpx import (
    AuthMsgV4, AuthRespV4, BadMACError, EncHandshake, encAuthMsgLen, encAuthRespLen,
    PlainMessageTooLargeError, HandshakeError, ProtocolHandshakeError, RLPxError, Secrets, sskLen,
    decode_disc_reason, import_public_key, new_rlpx, new_rlpx_frame_rw, put_int24, read_handshake_msg,
    read_int24, read_protocol_handshake, seal_eip8, update_mac, xor,
)

TESTDATA = os.path.join(os.path.dirname(__file__), "testdata", "rlpx_handshake.json")
with open(TESTDATA) as _f:
    VECTORS = json.load(_f)

SHORT = 2.0  # handshake/frame timeouts for socket tests: bounded, never waited out on success


def unhex(s: str) -> bytes:
    return bytes.fromhex("".join(s.split()))


class Buffer:
    """A FIFO byte buffer like Go's bytes.Buffer (io.BytesIO shares one position for both)."""

    def __init__(self):
        self.data = bytearray()

    def write(self, b):
        self.data += b
        return len(b)

    def read(self, n=-1):
        if n is None or n < 0:
            n = len(self.data)
        out = bytes(self.data[:n])
        del self.data[:n]
        return out

    def getvalue(self):
        return bytes(self.data)


def tcp_pipe():
    """Two ends of a loopback TCP connection (geth's pipes.TCPPipe)."""
    ln = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        ln.bind(("127.0.0.1", 0))
        ln.listen(1)
        c = socket.create_connection(ln.getsockname(), timeout=5)
        s, _ = ln.accept()
    finally:
        ln.close()
    c.settimeout(None)
    return c, s


def run_pair(f0, f1, timeout=20):
    """Run f0 on a thread and f1 here; return both results, re-raising the first error."""
    box = {}

    def wrap():
        try:
            box["r0"] = f0()
        except BaseException as e:  # reported below
            box["e0"] = e

    t = threading.Thread(target=wrap, name="test.rlpx.side0", daemon=True)
    t.start()
    try:
        r1 = f1()
    finally:
        t.join(timeout)
    assert not t.is_alive(), "side 0 did not finish"
    if "e0" in box:
        raise box["e0"]
    return box.get("r0"), r1


def key_pair():
    return crypto.generate_key(), crypto.generate_key()


def handshaken_pair(snappy=False, **timeouts):
    """Two RLPx transports over loopback TCP after a completed encryption handshake."""
    prv0, prv1 = key_pair()
    fd0, fd1 = tcp_pipe()
    timeouts.setdefault("handshake_timeout", SHORT)
    c0, c1 = new_rlpx(fd0, **timeouts), new_rlpx(fd1, **timeouts)
    dest = Node(id=pubkey_id(prv1.public_key))
    id1, id0 = run_pair(lambda: c0.do_enc_handshake(prv0, dest), lambda: c1.do_enc_handshake(prv1, None))
    assert id1 == pubkey_id(prv1.public_key)
    assert id0 == pubkey_id(prv0.public_key)
    c0.rw.snappy = c1.rw.snappy = snappy
    return c0, c1


# ---------------------------------------------------------------------------
# Twins of rlpx_test.go


def test_shared_secret(crypto_backend):
    prv0, prv1 = key_pair()
    ss0 = ecies.import_ecdsa(prv0).generate_shared(ecies.import_ecdsa_public(prv1.public_key), sskLen, sskLen)
    ss1 = ecies.import_ecdsa(prv1).generate_shared(ecies.import_ecdsa_public(prv0.public_key), sskLen, sskLen)
    assert len(ss0) == 2 * sskLen
    assert ss0 == ss1


def _check_enc_handshake(token=None):
    """One handshake over a socket pair; the derived cipher and MAC states must pair up."""
    prv0, prv1 = key_pair()
    fd0, fd1 = socket.socketpair()
    c0, c1 = new_rlpx(fd0, handshake_timeout=SHORT), new_rlpx(fd1, handshake_timeout=SHORT)
    try:
        dest = Node(id=pubkey_id(prv1.public_key))
        rid1, rid0 = run_pair(lambda: c0.do_enc_handshake(prv0, dest), lambda: c1.do_enc_handshake(prv1, None))
        assert rid1 == pubkey_id(prv1.public_key), "initiator side: remote ID mismatch"
        assert rid0 == pubkey_id(prv0.public_key), "receiver side: remote ID mismatch"
        assert isinstance(rid0, NodeID)
        # each side's egress MAC and cipher stream is the other side's ingress one
        assert c0.rw.egress_mac.digest() == c1.rw.ingress_mac.digest(), "egress mac mismatch"
        assert c0.rw.ingress_mac.digest() == c1.rw.egress_mac.digest(), "ingress mac mismatch"
        assert c0.rw.egress_mac.digest() != c0.rw.ingress_mac.digest()
        block = os.urandom(48)
        assert c0.rw.enc.update(block) == c1.rw.enc.update(block), "enc cipher mismatch"
        assert c0.rw.dec.update(block) == c1.rw.dec.update(block), "dec cipher mismatch"
    finally:
        fd0.close()
        fd1.close()


def test_enc_handshake(crypto_backend):
    n = 10 if crypto_backend == "coincurve" else 2  # the pure-Python curve is slow
    for _ in range(n):
        _check_enc_handshake(None)
    for _ in range(n):
        _check_enc_handshake(os.urandom(32))  # geth passes a token it never uses; so do we


def test_protocol_handshake():
    prv0, prv1 = key_pair()
    node0 = Node(id=pubkey_id(prv0.public_key), ip="1.2.3.4", tcp=33)
    hs0 = ProtoHandshake(version=3, id=node0.id, caps=[Cap("a", 0), Cap("b", 2)])
    node1 = Node(id=pubkey_id(prv1.public_key), ip="5.6.7.8", tcp=44)
    hs1 = ProtoHandshake(version=3, id=node1.id, caps=[Cap("c", 1), Cap("d", 3)])

    fd0, fd1 = tcp_pipe()

    def dial_side():
        try:
            t = new_rlpx(fd0, handshake_timeout=SHORT)
            remid = t.do_enc_handshake(prv0, node1)
            assert remid == node1.id, "dial side remote id mismatch"
            phs = t.do_proto_handshake(hs0)
            phs.rest = []
            assert phs == hs1, "dial side proto handshake mismatch"
            t.close(DiscReasonError(DiscQuitting))
        finally:
            fd0.close()

    def listen_side():
        try:
            t = new_rlpx(fd1, handshake_timeout=SHORT)
            remid = t.do_enc_handshake(prv1, None)
            assert remid == node0.id, "listen side remote id mismatch"
            phs = t.do_proto_handshake(hs1)
            phs.rest = []
            assert phs == hs0, "listen side proto handshake mismatch"
            assert not t.rw.snappy  # version 3 peers do not compress
            expect_msg(t, 0x01, [int(DiscQuitting)])
        finally:
            fd1.close()

    run_pair(dial_side, listen_side)


def _proto_handshake_error_cases():
    return [
        (0x01, [int(DiscQuitting)], DiscReasonError(DiscQuitting)),
        (0x989898, b"\x01", ProtocolHandshakeError("expected handshake, got 989898")),
        (0x00, bytes(baseProtocolMaxMsgSize + 2), ProtocolHandshakeError("message too big")),
        (0x00, b"\x01\x02\x03", new_peer_error(errInvalidMsg, "(code 0) (size 4) ...")),
        (0x00, ProtoHandshake(version=3), DiscReasonError(DiscInvalidIdentity)),
    ]


def test_protocol_handshake_errors():
    our = ProtoHandshake(version=3, caps=[Cap("foo", 2), Cap("bar", 3)], name="quux")
    for i, (code, data, want) in enumerate(_proto_handshake_error_cases()):
        p1, p2 = msg_pipe()
        t = threading.Thread(target=_send_ignoring_close, args=(p1, code, data), name="test.rlpx.send", daemon=True)
        t.start()
        try:
            with pytest.raises(Exception) as ei:
                read_protocol_handshake(p2, our)
        finally:
            p1.close()  # unblocks a sender whose payload was never read
            t.join(5)
        err = ei.value
        assert type(err) is type(want), "test %d: got %r, want %r" % (i, err, want)
        if isinstance(want, PeerError):
            assert err.code == errInvalidMsg
            assert str(err).startswith("invalid message: (code 0) (size 4)"), str(err)
        elif isinstance(want, DiscReasonError):
            assert err.reason == want.reason
        else:
            assert str(err) == str(want)


def _send_ignoring_close(w, code, data):
    try:
        send(w, code, data)
    except Exception:
        pass  # the pipe was closed under an unread message


def test_rlpx_frame_fake():
    buf = Buffer()
    h = FakeHash(bytes([1] * 32))
    rw = new_rlpx_frame_rw(buf, Secrets(aes=crypto.keccak256(), mac=crypto.keccak256(), ingress_mac=h, egress_mac=h))

    golden = unhex("""
        00828ddae471818bb0bfa6b551d1cb42
        01010101010101010101010101010101
        ba628a4ba590cb43f7848f41c4382885
        01010101010101010101010101010101
    """)
    assert golden == bytes.fromhex(VECTORS["frame_fake_mac"]["written"])

    # the frame written for [1, 2, 3, 4] is the golden one
    send(rw, 8, [1, 2, 3, 4])
    assert buf.getvalue() == golden

    # and reading it back gives the message again
    msg = rw.read_msg()
    assert msg.size == 5
    assert msg.code == 8
    assert msg.payload.read() == unhex("C401020304")


class FakeHash:
    """A MAC state whose digest is always the same bytes and which ignores updates."""

    def __init__(self, value: bytes):
        self.value = value

    # Python hash API, used by the frame reader/writer
    def update(self, data):
        pass

    def digest(self):
        return self.value

    def copy(self):
        return self

    # geth's hash.Hash names
    def write(self, p):
        return len(p)

    def reset(self):
        pass

    def block_size(self):
        return 0

    def size(self):
        return len(self.value)

    def sum(self, b=b""):
        return bytes(b) + self.value


def _frame_rw_pair(conn0, conn1=None):
    aes_secret, mac_secret = os.urandom(16), os.urandom(16)
    egress_init, ingress_init = os.urandom(32), os.urandom(32)
    s1 = Secrets(aes=aes_secret, mac=mac_secret, egress_mac=crypto.new_keccak256(), ingress_mac=crypto.new_keccak256())
    s1.egress_mac.update(egress_init)
    s1.ingress_mac.update(ingress_init)
    rw1 = new_rlpx_frame_rw(conn0, s1)
    s2 = Secrets(aes=aes_secret, mac=mac_secret, egress_mac=crypto.new_keccak256(), ingress_mac=crypto.new_keccak256())
    s2.egress_mac.update(ingress_init)
    s2.ingress_mac.update(egress_init)
    rw2 = new_rlpx_frame_rw(conn1 if conn1 is not None else conn0, s2)
    return rw1, rw2


def test_rlpx_frame_rw():
    conn = Buffer()
    rw1, rw2 = _frame_rw_pair(conn)
    for i in range(10):
        wmsg = [b"foo", b"bar", b"test" * i]
        send(rw1, i, wmsg)
        msg = rw2.read_msg()
        assert msg.code == i
        assert msg.payload.read() == rlp.encode(wmsg)
    assert conn.getvalue() == b""


def test_handshake_forward_compatibility(crypto_backend):
    key_a = crypto.hex_to_ecdsa(VECTORS["static_key_a"])
    key_b = crypto.hex_to_ecdsa(VECTORS["static_key_b"])
    pub_a = crypto.from_ecdsa_pub(key_a.public_key)[1:]
    eph_b = crypto.hex_to_ecdsa(VECTORS["ephemeral_key_b"])
    eph_pub_b = crypto.from_ecdsa_pub(eph_b.public_key)[1:]
    nonce_a = unhex(VECTORS["nonce_a"])
    nonce_b = unhex(VECTORS["nonce_b"])
    auth_signature = unhex(VECTORS["auth_signature"])

    def rest_of(test):
        return None if test["rest"] is None else [bytes.fromhex(x) for x in test["rest"]]

    def make_auth(test):
        return AuthMsgV4(signature=auth_signature, initiator_pubkey=pub_a, nonce=nonce_a,
                         version=test["version"], rest=rest_of(test), got_plain=test["plain"])

    def make_ack(test):
        return AuthRespV4(random_pubkey=eph_pub_b, nonce=nonce_b, version=test["version"], rest=rest_of(test))

    assert len(VECTORS["auth"]) == 3 and len(VECTORS["ack"]) == 3

    # auth parsing
    for test in VECTORS["auth"]:
        data = unhex(test["input"])
        msg = AuthMsgV4()
        ciphertext = read_handshake_msg(msg, encAuthMsgLen, key_b, io.BytesIO(data))
        assert ciphertext == data, test["name"]
        assert msg == make_auth(test), test["name"]

    # ack parsing
    for test in VECTORS["ack"]:
        data = unhex(test["input"])
        msg = AuthRespV4()
        ciphertext = read_handshake_msg(msg, encAuthRespLen, key_a, io.BytesIO(data))
        assert ciphertext == data, test["name"]
        assert msg == make_ack(test), test["name"]

    # secrets derived for (Auth2, Ack2) on the recipient side
    hs = EncHandshake(initiator=False, resp_nonce=nonce_b, random_priv_key=ecies.import_ecdsa(eph_b))
    auth_ciphertext = unhex(VECTORS["auth"][1]["input"])
    auth_resp_ciphertext = unhex(VECTORS["ack"][1]["input"])
    want = VECTORS["secrets_for_auth2_ack2_as_b"]
    hs.handle_auth_msg(make_auth(VECTORS["auth"][1]), key_b)
    derived = hs.secrets(auth_ciphertext, auth_resp_ciphertext)
    assert derived.aes == unhex(want["aes"])
    assert derived.mac == unhex(want["mac"])
    derived.ingress_mac.update(b"foo")
    assert derived.ingress_mac.digest() == unhex(want["ingress_mac_after_foo"])
    assert derived.remote_id == pubkey_id(key_a.public_key)


# ---------------------------------------------------------------------------
# Handshake pieces geth tests only indirectly


def test_handshake_vectors_on_every_auth_ack_combination(crypto_backend):
    """Each auth format with each ack format derives the same secrets on both sides."""
    key_a = crypto.hex_to_ecdsa(VECTORS["static_key_a"])
    key_b = crypto.hex_to_ecdsa(VECTORS["static_key_b"])
    eph_a = crypto.hex_to_ecdsa(VECTORS["ephemeral_key_a"])
    eph_b = crypto.hex_to_ecdsa(VECTORS["ephemeral_key_b"])
    for auth in VECTORS["auth"]:
        for ack in VECTORS["ack"]:
            auth_ct, ack_ct = unhex(auth["input"]), unhex(ack["input"])
            # B, the recipient
            amsg = AuthMsgV4()
            read_handshake_msg(amsg, encAuthMsgLen, key_b, io.BytesIO(auth_ct))
            hb = EncHandshake(initiator=False, resp_nonce=unhex(VECTORS["nonce_b"]),
                              random_priv_key=ecies.import_ecdsa(eph_b))
            hb.handle_auth_msg(amsg, key_b)
            sb = hb.secrets(auth_ct, ack_ct)
            # A, the initiator
            rmsg = AuthRespV4()
            read_handshake_msg(rmsg, encAuthRespLen, key_a, io.BytesIO(ack_ct))
            ha = EncHandshake(initiator=True, remote_id=pubkey_id(key_b.public_key),
                              init_nonce=unhex(VECTORS["nonce_a"]), random_priv_key=ecies.import_ecdsa(eph_a))
            ha.handle_auth_resp(rmsg)
            sa = ha.secrets(auth_ct, ack_ct)
            assert (sa.aes, sa.mac) == (sb.aes, sb.mac), (auth["name"], ack["name"])
            assert sa.egress_mac.digest() == sb.ingress_mac.digest()
            assert sa.ingress_mac.digest() == sb.egress_mac.digest()
            if (auth["name"].startswith("Auth2"), ack["name"].startswith("Ack2")) == (True, True):
                assert sb.aes == unhex(VECTORS["secrets_for_auth2_ack2_as_b"]["aes"])


def test_seal_eip8_padding_and_roundtrip(crypto_backend):
    prv, remote = key_pair()
    h = EncHandshake(remote_pub=ecies.import_ecdsa_public(remote.public_key))
    msg = AuthRespV4(random_pubkey=os.urandom(64), nonce=os.urandom(32), version=4, rest=[b"\x05", b"\xc2\x01\x02"])
    body_len = len(msg.encode_rlp())
    sizes = set()
    rounds = 12 if crypto_backend == "coincurve" else 2
    for _ in range(rounds):
        packet = seal_eip8(msg, h)
        size = int.from_bytes(packet[:2], "big")
        assert size == len(packet) - 2
        pad = size - body_len - rlpx_mod.eciesOverhead
        assert 100 <= pad < 300
        sizes.add(size)
        got = AuthRespV4()
        assert read_handshake_msg(got, encAuthRespLen, remote, io.BytesIO(packet)) == packet
        assert got == msg
    if rounds > 2:
        assert len(sizes) > 1  # the padding length varies


@pytest.mark.parametrize("plain", [True, False])
def test_receiver_answers_in_the_format_received(plain):
    """A pre-EIP-8 auth gets a pre-EIP-8 ack; an EIP-8 auth an EIP-8 ack."""
    prv_a, prv_b = key_pair()
    h = EncHandshake(initiator=True, remote_id=pubkey_id(prv_b.public_key))
    auth = h.make_auth_msg(prv_a)
    packet = auth.seal_plain(h) if plain else seal_eip8(auth, h)
    assert (len(packet) == encAuthMsgLen) == plain
    conn = Buffer()
    conn.write(packet)
    sb = rlpx_mod.receiver_enc_handshake(conn, prv_b)
    ack = conn.read()
    assert (len(ack) == encAuthRespLen) == plain
    resp = AuthRespV4()
    read_handshake_msg(resp, encAuthRespLen, prv_a, io.BytesIO(ack))
    assert resp.rest == (None if plain else [])
    h.handle_auth_resp(resp)
    sa = h.secrets(packet, ack)
    assert sa.aes == sb.aes and sa.mac == sb.mac
    assert sb.remote_id == pubkey_id(prv_a.public_key)


def test_read_handshake_msg_rejects_bad_input():
    prv = crypto.generate_key()
    # size prefix below the pre-EIP-8 size
    with pytest.raises(HandshakeError, match="size underflow"):
        read_handshake_msg(AuthMsgV4(), encAuthMsgLen, prv, io.BytesIO(bytes(encAuthMsgLen)))
    # plausible size, undecryptable content
    junk = (400).to_bytes(2, "big") + os.urandom(400)
    with pytest.raises(HandshakeError, match="could not decrypt"):
        read_handshake_msg(AuthMsgV4(), encAuthMsgLen, prv, io.BytesIO(junk))
    # truncated input
    with pytest.raises(EOFError):
        read_handshake_msg(AuthMsgV4(), encAuthMsgLen, prv, io.BytesIO(junk[:200]))
    # an EIP-8 body that is not an RLP list
    h = EncHandshake(remote_pub=ecies.import_ecdsa_public(prv.public_key))

    class NotAList:
        def encode_rlp(self):
            return b"\xb8\xc8" + bytes(200)  # a 200-byte string

    with pytest.raises(HandshakeError, match="expected input list"):
        read_handshake_msg(AuthMsgV4(), encAuthMsgLen, prv, io.BytesIO(seal_eip8(NotAList(), h)))

    class ShortSig:
        def encode_rlp(self):
            return rlpcodec.encode_list([rlpcodec.encode_bytes(bytes(64)), rlpcodec.encode_bytes(bytes(64)),
                                         rlpcodec.encode_bytes(bytes(32)), b"\x04"])

    with pytest.raises(HandshakeError, match="too short"):
        read_handshake_msg(AuthMsgV4(), encAuthMsgLen, prv, io.BytesIO(seal_eip8(ShortSig(), h)))


def test_handle_auth_msg_rejects_bad_identity_and_signature():
    prv = crypto.generate_key()
    with pytest.raises(HandshakeError, match="bad remoteID"):
        EncHandshake().handle_auth_msg(AuthMsgV4(initiator_pubkey=bytes(64), version=4), prv)
    other = crypto.generate_key()
    bad_sig = bytes(64) + b"\x09"
    with pytest.raises(HandshakeError, match="invalid auth signature"):
        EncHandshake().handle_auth_msg(AuthMsgV4(signature=bad_sig, initiator_pubkey=other.public_key.raw), prv)
    with pytest.raises(HandshakeError, match="bad remoteID"):
        EncHandshake(initiator=True, remote_id=bytes(64)).make_auth_msg(prv)


def test_import_export_pubkey_and_xor():
    k = crypto.generate_key()
    pub = import_public_key(k.public_key.raw)
    assert pub.raw == k.public_key.raw
    assert import_public_key(b"\x04" + k.public_key.raw).raw == k.public_key.raw
    assert rlpx_mod.export_pubkey(pub) == k.public_key.raw
    with pytest.raises(HandshakeError, match="invalid public key length 63"):
        import_public_key(bytes(63))
    with pytest.raises(HandshakeError):
        import_public_key(bytes(64))  # not on the curve
    with pytest.raises(ValueError):
        rlpx_mod.export_pubkey(None)
    assert xor(b"\x0f\xf0", b"\xff\xff\x01") == b"\xf0\x0f"
    assert xor(bytes(32), bytes(range(32))) == bytes(range(32))


def test_int24_and_update_mac():
    b = bytearray(3)
    for v in (0, 1, 0x1234, 0xFFFFFF):
        put_int24(v, b)
        assert read_int24(b) == v
    assert bytes(b) == b"\xff\xff\xff"
    # update_mac: AES-ECB of the MAC digest XOR seed, fed back into the MAC
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = os.urandom(32)
    mac = crypto.new_keccak256(b"init")
    ref = mac.copy()
    seed = os.urandom(16)
    out = update_mac(mac, Cipher(algorithms.AES(key), modes.ECB()).encryptor(), seed)
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(ref.digest()[:16])
    ref.update(bytes(a ^ b for a, b in zip(ecb, seed)))
    assert out == ref.digest()[:16]
    assert mac.digest() == ref.digest()


def test_decode_disc_reason_tolerance():
    assert decode_disc_reason(rlp.encode([8])) == DiscQuitting
    assert decode_disc_reason(rlp.encode(8)) == DiscQuitting  # bare integer
    assert decode_disc_reason(rlp.encode([0x10])) == DiscReason(0x10)
    assert decode_disc_reason(rlp.encode([])) == DiscRequested  # empty list
    assert decode_disc_reason(b"") == DiscRequested
    assert decode_disc_reason(b"\xff\xff") == DiscRequested  # garbage
    assert decode_disc_reason(rlp.encode([[1]])) == DiscRequested
    assert decode_disc_reason(rlp.encode([4, b"extra"])) == DiscTooManyPeers
    assert decode_disc_reason(rlp.encode([0x42])) == DiscReason(0x42)  # unknown but kept


# ---------------------------------------------------------------------------
# Frames: bad input and limits (in memory)


def test_frame_bad_header_mac():
    conn = Buffer()
    rw1, rw2 = _frame_rw_pair(conn)
    send(rw1, 3, [b"x"])
    data = bytearray(conn.read())
    data[17] ^= 1  # header MAC
    conn.write(bytes(data))
    with pytest.raises(BadMACError, match="bad header MAC"):
        rw2.read_msg()


def test_frame_bad_frame_mac():
    for where in ("body", "mac"):
        conn = Buffer()
        rw1, rw2 = _frame_rw_pair(conn)
        send(rw1, 3, [b"hello"])
        data = bytearray(conn.read())
        data[33 if where == "body" else -1] ^= 0x80
        conn.write(bytes(data))
        with pytest.raises(BadMACError, match="bad frame MAC"):
            rw2.read_msg()


def test_frame_truncated_is_eof():
    conn = Buffer()
    rw1, rw2 = _frame_rw_pair(conn)
    send(rw1, 3, [b"hello" * 10])
    data = conn.read()
    conn.write(data[:-5])
    with pytest.raises(EOFError):
        rw2.read_msg()


class _ExplodingPayload:
    def read(self, n=-1):
        raise AssertionError("payload of an oversized message must not be read")


@pytest.mark.parametrize("snappy", [False, True])
def test_frame_write_refuses_oversized(snappy):
    conn = Buffer()
    rw1, rw2 = _frame_rw_pair(conn)
    rw1.snappy = rw2.snappy = snappy
    big = Msg(code=5, size=1 << 24, payload=_ExplodingPayload())
    with pytest.raises(RLPxError) as ei:
        rw1.write_msg(big)
    if snappy:
        assert isinstance(ei.value, PlainMessageTooLargeError)
        assert str(ei.value) == "message length >= 16MB"
    else:
        assert "overflows uint24" in str(ei.value)
    assert conn.getvalue() == b""  # nothing written, stream still in sync
    send(rw1, 6, [b"after"])
    msg = rw2.read_msg()
    assert (msg.code, msg.payload.read()) == (6, rlp.encode([b"after"]))


def test_frame_largest_message_roundtrip():
    conn = Buffer()
    rw1, rw2 = _frame_rw_pair(conn)
    payload = os.urandom(rlpx_mod.maxUint24 - 1)  # plus the 1-byte code: exactly the limit
    rw1.write_msg(Msg.from_bytes(7, payload))
    msg = rw2.read_msg()
    assert msg.code == 7 and msg.size == len(payload)
    assert msg.payload.read() == payload


def test_frame_snappy_roundtrip():
    conn = Buffer()
    rw1, rw2 = _frame_rw_pair(conn)
    rw1.snappy = rw2.snappy = True
    for code, payload in ((0x10, b"a" * 5000), (0x11, os.urandom(1000)), (0x200, b"")):
        rw1.write_msg(Msg.from_bytes(code, payload))
        if payload == b"a" * 5000:
            assert len(conn.getvalue()) < 500  # compressed on the wire
        msg = rw2.read_msg()
        assert (msg.code, msg.size, msg.payload.read()) == (code, len(payload), payload)


def _varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def test_frame_snappy_refuses_huge_declared_length_without_decompressing(monkeypatch):
    conn = Buffer()
    rw1, rw2 = _frame_rw_pair(conn)
    rw2.snappy = True  # rw1 writes raw bytes that claim to be snappy data

    def boom(*a, **k):
        raise AssertionError("decompression must not start")

    monkeypatch.setattr(rlpx_mod.snappy, "uncompress", boom)
    for claim in (1 << 30, (1 << 24)):
        rw1.write_msg(Msg.from_bytes(0x10, _varint(claim) + b"\x00" * 8))
        with pytest.raises(PlainMessageTooLargeError):
            rw2.read_msg()
    assert rlpx_mod.snappy_decoded_len(_varint(1 << 30)) == 1 << 30


def test_frame_snappy_corrupt_and_uncompressed_disconnect():
    conn = Buffer()
    rw1, rw2 = _frame_rw_pair(conn)
    rw2.snappy = True
    rw1.write_msg(Msg.from_bytes(0x10, _varint(10) + b"\xff\xff"))
    with pytest.raises(RLPxError, match="snappy: corrupt input"):
        rw2.read_msg()
    rw1.write_msg(Msg.from_bytes(0x10, b"\xff" * 11))  # unterminated varint
    with pytest.raises(RLPxError, match="snappy: corrupt input"):
        rw2.read_msg()
    # A disconnect sent uncompressed after snappy was negotiated is still understood.
    for payload in (rlp.encode([4]), rlp.encode(4)):
        rw1.write_msg(Msg.from_bytes(0x01, payload))
        msg = rw2.read_msg()
        assert msg.code == 0x01
        assert decode_disc_reason(msg.payload.read()) == DiscTooManyPeers


def test_frame_message_codes():
    conn = Buffer()
    rw1, rw2 = _frame_rw_pair(conn)
    for code in (0, 1, 0x7F, 0x80, 0xFFFF, (1 << 64) - 1):
        rw1.write_msg(Msg.from_bytes(code, b"\xc0"))
        msg = rw2.read_msg()
        assert msg.code == code and msg.payload.read() == b"\xc0"
    with pytest.raises(RLPxError):
        rw1.write_msg(Msg.from_bytes(1 << 64, b""))


# ---------------------------------------------------------------------------
# Transport level, over real loopback sockets


def test_transport_messages_both_ways_with_and_without_snappy():
    for snappy in (False, True):
        c0, c1 = handshaken_pair(snappy=snappy)
        try:
            payloads = [os.urandom(n) for n in (0, 1, 100, 1024, 70000, 300000)]

            def writer():
                for i, p in enumerate(payloads):
                    c0.write_msg(Msg.from_bytes(0x10 + i, p))

            def reader():
                got = []
                for _ in payloads:
                    m = c1.read_msg()
                    got.append((m.code, m.payload.read()))
                return got

            _, got = run_pair(writer, reader)
            assert got == [(0x10 + i, p) for i, p in enumerate(payloads)]
        finally:
            c0.close()
            c1.close()


def test_transport_garbage_instead_of_auth():
    prv = crypto.generate_key()
    for garbage in (bytes(400), (320).to_bytes(2, "big") + os.urandom(400), b"\x04\x00" + os.urandom(1100)):
        fd0, fd1 = socket.socketpair()
        try:
            c1 = new_rlpx(fd1, handshake_timeout=SHORT)
            fd0.sendall(garbage)
            t0 = time.monotonic()
            with pytest.raises(HandshakeError):
                c1.do_enc_handshake(prv, None)
            assert time.monotonic() - t0 < SHORT  # failed on the input, not by waiting
        finally:
            fd0.close()
            fd1.close()


def test_transport_truncated_auth_times_out():
    prv_a, prv_b = key_pair()
    h = EncHandshake(initiator=True, remote_id=pubkey_id(prv_b.public_key))
    packet = seal_eip8(h.make_auth_msg(prv_a), h)
    fd0, fd1 = socket.socketpair()
    try:
        c1 = new_rlpx(fd1, handshake_timeout=0.3)
        fd0.sendall(packet[:200])  # and then nothing more
        with pytest.raises(socket.timeout, match="deadline"):
            c1.do_enc_handshake(prv_b, None)
    finally:
        fd0.close()
        fd1.close()


def test_transport_truncated_auth_then_close_is_eof():
    prv_a, prv_b = key_pair()
    h = EncHandshake(initiator=True, remote_id=pubkey_id(prv_b.public_key))
    packet = seal_eip8(h.make_auth_msg(prv_a), h)
    fd0, fd1 = socket.socketpair()
    try:
        c1 = new_rlpx(fd1, handshake_timeout=SHORT)
        fd0.sendall(packet[:-10])
        fd0.shutdown(socket.SHUT_WR)
        with pytest.raises(EOFError):
            c1.do_enc_handshake(prv_b, None)
    finally:
        fd0.close()
        fd1.close()


def test_transport_initiator_gets_no_ack_times_out():
    prv_a, prv_b = key_pair()
    fd0, fd1 = socket.socketpair()
    try:
        c0 = new_rlpx(fd0, handshake_timeout=0.3)
        with pytest.raises(socket.timeout):
            c0.do_enc_handshake(prv_a, Node(id=pubkey_id(prv_b.public_key)))
        assert len(fd1.recv(4096)) > encAuthMsgLen  # the EIP-8 auth went out
    finally:
        fd0.close()
        fd1.close()


def test_transport_wrong_remote_key_fails():
    """Dialing with the wrong expected ID: the listener cannot decrypt the auth."""
    prv_a, prv_b = key_pair()
    wrong = crypto.generate_key()
    fd0, fd1 = socket.socketpair()
    c0, c1 = new_rlpx(fd0, handshake_timeout=SHORT), new_rlpx(fd1, handshake_timeout=SHORT)

    def dial():
        with pytest.raises((EOFError, OSError)):
            c0.do_enc_handshake(prv_a, Node(id=pubkey_id(wrong.public_key)))

    def listen():
        try:
            with pytest.raises(HandshakeError):
                c1.do_enc_handshake(prv_b, None)
        finally:
            c1.close()

    try:
        run_pair(dial, listen)
    finally:
        fd0.close()


def test_transport_bad_frame_mac_after_handshake():
    c0, c1 = handshaken_pair()
    try:
        # a frame of random bytes
        c0.conn.write(os.urandom(64))
        with pytest.raises(BadMACError, match="bad header MAC"):
            c1.read_msg()
    finally:
        c0.close()
        c1.close()
    # a real frame with one flipped body bit
    c0, c1 = handshaken_pair()
    try:
        real = Buffer()
        c0.rw.conn = rlpx_mod._wrap_conn(real)
        c0.write_msg(Msg.from_bytes(0x10, b"payload" * 10))
        data = bytearray(real.read())
        data[40] ^= 1
        c0.fd.sendall(bytes(data))
        with pytest.raises(BadMACError, match="bad frame MAC"):
            c1.read_msg()
    finally:
        c0.close()
        c1.close()


def test_transport_oversized_message_refused_connection_stays_usable():
    c0, c1 = handshaken_pair()
    try:
        with pytest.raises(RLPxError, match="overflows uint24"):
            c0.write_msg(Msg(code=0x10, size=(1 << 24) + 5, payload=_ExplodingPayload()))
        c0.write_msg(Msg.from_bytes(0x11, b"ok"))
        m = c1.read_msg()
        assert (m.code, m.payload.read()) == (0x11, b"ok")
    finally:
        c0.close()
        c1.close()


def test_transport_snappy_bomb_refused(monkeypatch):
    c0, c1 = handshaken_pair(snappy=True)
    try:
        monkeypatch.setattr(rlpx_mod.snappy, "uncompress", lambda *a: pytest.fail("must not decompress"))
        c0.rw.snappy = False  # send the raw claim
        c0.write_msg(Msg.from_bytes(0x10, _varint(1 << 30) + b"\x00\x01\x02"))
        with pytest.raises(PlainMessageTooLargeError):
            c1.read_msg()
    finally:
        c0.close()
        c1.close()


@pytest.mark.parametrize("payload,want", [
    (rlp.encode([int(DiscTooManyPeers)]), DiscTooManyPeers),
    (rlp.encode(int(DiscTooManyPeers)), DiscTooManyPeers),  # bare integer
    (rlp.encode([]), DiscRequested),  # empty list
])
def test_transport_disconnect_before_hello(payload, want):
    c0, c1 = handshaken_pair()
    try:
        c0.write_msg(Msg.from_bytes(0x01, payload))
        our = ProtoHandshake(version=5, name="test", id=pubkey_id(crypto.generate_key().public_key))
        with pytest.raises(DiscReasonError) as ei:
            c1.do_proto_handshake(our)
        assert ei.value.reason == want
    finally:
        c0.close()
        c1.close()


def test_transport_proto_handshake_enables_snappy():
    c0, c1 = handshaken_pair()
    id0, id1 = os.urandom(64), os.urandom(64)
    try:
        h0, h1 = run_pair(lambda: c0.do_proto_handshake(ProtoHandshake(version=5, name="a", id=id0)),
                          lambda: c1.do_proto_handshake(ProtoHandshake(version=4, name="b", id=id1)))
        assert (h0.name, bytes(h0.id)) == ("b", id1)
        assert (h1.name, bytes(h1.id)) == ("a", id0)
        assert c0.rw.snappy is False  # remote said version 4
        assert c1.rw.snappy is True
    finally:
        c0.close()
        c1.close()


def test_transport_close_sends_reason():
    c0, c1 = handshaken_pair()
    try:
        c0.close(DiscReasonError(DiscTooManyPeers))
        m = c1.read_msg()
        assert m.code == 0x01
        assert decode_disc_reason(m.payload.read()) == DiscTooManyPeers
        with pytest.raises(EOFError):
            c1.read_msg()
    finally:
        c1.close()


def test_transport_close_without_reason_sends_nothing():
    c0, c1 = handshaken_pair()
    try:
        c0.close(RuntimeError("boom"))
        with pytest.raises(EOFError):
            c1.read_msg()
    finally:
        c1.close()


def test_transport_close_wakes_blocked_reader():
    c0, c1 = handshaken_pair(frame_read_timeout=30.0)
    started = threading.Event()
    box = {}

    def reader():
        started.set()
        try:
            c1.read_msg()
        except BaseException as e:
            box["err"] = e

    t = threading.Thread(target=reader, name="test.rlpx.reader", daemon=True)
    t.start()
    try:
        assert started.wait(5)
        c1.close(None)
        t.join(5)
        assert not t.is_alive(), "close did not wake the reader"
        assert isinstance(box.get("err"), (OSError, EOFError, ValueError))
    finally:
        c0.close()


def test_transport_read_timeout():
    c0, c1 = handshaken_pair(frame_read_timeout=0.2)
    try:
        with pytest.raises(socket.timeout, match="read deadline"):
            c1.read_msg()
    finally:
        c0.close()
        c1.close()


def test_transport_read_before_handshake_is_an_error():
    fd0, fd1 = socket.socketpair()
    try:
        c = new_rlpx(fd0)
        with pytest.raises(RLPxError):
            c.read_msg()
        with pytest.raises(RLPxError):
            c.write_msg(Msg.from_bytes(1, b""))
    finally:
        fd0.close()
        fd1.close()


def test_transport_handshake_on_ecdsa_backend():
    with crypto.use_backend("ecdsa"):
        c0, c1 = handshaken_pair()
    try:
        c0.write_msg(Msg.from_bytes(0x20, b"hi"))
        m = c1.read_msg()
        assert (m.code, m.payload.read()) == (0x20, b"hi")
    finally:
        c0.close()
        c1.close()


def test_frame_rw_over_socket_many_sizes():
    """The buffered socket reader stays in sync across small, medium and buffer-sized frames."""
    import random

    rnd = random.Random(7)
    sizes = [rnd.choice((0, 1, 15, 16, 17, 100, 1000, 65535, 131000, 200000)) for _ in range(120)]
    fd0, fd1 = socket.socketpair()
    try:
        rw1, rw2 = _frame_rw_pair(fd0, fd1)

        def writer():
            for i, n in enumerate(sizes):
                rw1.write_msg(Msg.from_bytes(i, bytes([i & 0xFF]) * n))

        def reader():
            for i, n in enumerate(sizes):
                m = rw2.read_msg()
                assert (m.code, m.size) == (i, n)
                assert m.payload.read() == bytes([i & 0xFF]) * n

        run_pair(writer, reader)
    finally:
        fd0.close()
        fd1.close()


def _write_size_claim(rw, size, body):
    """A frame header with a valid MAC claiming ``size`` bytes, followed by only ``body``."""
    head = rw.enc.update(size.to_bytes(3, "big") + rlpx_mod.zeroHeader + bytes(10))
    mac = rlpx_mod.update_mac(rw.egress_mac, rw.mac_cipher, head)
    rw.conn.write(head + mac + body)


def test_frame_size_claim_allocates_as_bytes_arrive():
    """A header claiming 16 MiB backed by 1,000 bytes costs the socket reader well under 1 MiB."""
    import tracemalloc

    fd0, fd1 = socket.socketpair()
    try:
        rw1, rw2 = _frame_rw_pair(fd0, fd1)
        _write_size_claim(rw1, rlpx_mod.maxUint24, os.urandom(1000))
        fd0.shutdown(socket.SHUT_WR)
        tracemalloc.start()
        try:
            with pytest.raises(EOFError):
                rw2.read_msg()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 1 << 20, peak
    finally:
        fd0.close()
        fd1.close()


def test_frame_over_hello_limit_refused_before_the_hello():
    """Until the hello is in, a frame claiming more than a hello can hold is refused from its
    header (no body bytes are needed); a hello-sized frame is still read."""
    fd0, fd1 = socket.socketpair()
    try:
        rw1, rw2 = _frame_rw_pair(fd0, fd1)
        rw2.max_frame_size = rlpx_mod.maxHelloFrameSize
        rw1.write_msg(Msg.from_bytes(0, bytes(baseProtocolMaxMsgSize)))
        assert rw2.read_msg().size == baseProtocolMaxMsgSize
        _write_size_claim(rw1, rlpx_mod.maxHelloFrameSize + 1, b"")
        with pytest.raises(rlpx_mod.RLPxError, match="over the limit"):
            rw2.read_msg()
    finally:
        fd0.close()
        fd1.close()


def _hello_pair(monkeypatch, send_nowait=None):
    """Both handshakes over a TCP pair; returns the names of the threads rlpx started."""
    started = []
    real_thread = rlpx_mod.threading.Thread

    def thread(*args, **kw):
        started.append(kw.get("name"))
        return real_thread(*args, **kw)

    monkeypatch.setattr(rlpx_mod.threading, "Thread", thread)
    if send_nowait is not None:
        monkeypatch.setattr(rlpx_mod._SocketConn, "send_nowait", send_nowait)
    prv_a, prv_b = key_pair()
    fd0, fd1 = tcp_pipe()
    try:
        t0, t1 = new_rlpx(fd0), new_rlpx(fd1)
        hs0 = ProtoHandshake(version=5, name="a", id=pubkey_id(prv_a.public_key))
        hs1 = ProtoHandshake(version=5, name="b", id=pubkey_id(prv_b.public_key))
        run_pair(lambda: t0.do_enc_handshake(prv_a, Node(id=pubkey_id(prv_b.public_key))),
                 lambda: t1.do_enc_handshake(prv_b, None))
        their0, their1 = run_pair(lambda: t0.do_proto_handshake(hs0), lambda: t1.do_proto_handshake(hs1))
        assert (their0.name, their1.name) == ("b", "a")
    finally:
        fd0.close()
        fd1.close()
    return started


def test_proto_handshake_writes_hello_without_a_thread(monkeypatch):
    """A socket that takes the whole hello at once needs no writer thread."""
    assert "p2p.rlpx.doProtoHandshake" not in _hello_pair(monkeypatch)


def test_proto_handshake_hands_the_rest_of_the_hello_to_a_thread(monkeypatch):
    """When the socket takes only part of the hello, a thread writes the rest while the
    remote hello is read (geth's goroutine), and both handshakes complete."""
    real = rlpx_mod._SocketConn.send_nowait

    def partial(self, data):
        return real(self, memoryview(data)[:10]) if len(data) > 10 else real(self, data)

    started = _hello_pair(monkeypatch, partial)
    assert started.count("p2p.rlpx.doProtoHandshake") == 2


def test_trace_logs_every_handshake_step(caplog):
    """At trace level both sides log each handshake step with the peer's address."""
    import socket as _socket
    import threading as _threading

    from p2p import crypto as _crypto
    from p2p.discover.node import new_node, pubkey_id
    from p2p.log import TRACE
    from p2p.peer import ProtoHandshake
    from p2p import rlpx as _rlpx

    caplog.set_level(TRACE, logger="p2p.rlpx")
    ka, kb = _crypto.generate_key(), _crypto.generate_key()
    lst = _socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    a = _socket.create_connection(lst.getsockname())
    b, _ = lst.accept()
    lst.close()
    ta, tb = _rlpx.new_rlpx(a), _rlpx.new_rlpx(b)
    out = {}

    def side_b():
        tb.do_enc_handshake(kb, None)
        out["b"] = tb.do_proto_handshake(ProtoHandshake(version=5, name="b", id=pubkey_id(kb)))

    th = _threading.Thread(target=side_b)
    th.start()
    try:
        ta.do_enc_handshake(ka, new_node(pubkey_id(kb), "127.0.0.1", 1, b.getsockname()[1]))
        ta.do_proto_handshake(ProtoHandshake(version=5, name="a", id=pubkey_id(ka)))
    finally:
        th.join(10)
        ta.close(None)
        tb.close(None)
    lines = [r.getMessage() for r in caplog.records if r.levelno == TRACE]
    for step in (">> RLPx auth (EIP-8)", "<< RLPx auth", ">> RLPx ack", "<< RLPx ack",
                 "RLPx secrets derived", ">> devp2p hello", "<< devp2p hello"):
        assert any(l.startswith(step) and "addr=127.0.0.1:" in l for l in lines), (step, lines)
    assert out["b"].name == "a"
