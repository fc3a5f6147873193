"""Tests for p2p/peer_error.py: disconnect reasons and peer errors."""

import pytest
import rlp

from p2p import peer_error as pe
from p2p.peer_error import (
    DiscReason,
    DiscReasonError,
    ErrProtocolReturned,
    PeerError,
    disc_reason_for_error,
    errInvalidMsg,
    errInvalidMsgCode,
    new_peer_error,
)

GETH_REASONS = [
    ("DiscRequested", 0x00, "disconnect requested"),
    ("DiscNetworkError", 0x01, "network error"),
    ("DiscProtocolError", 0x02, "breach of protocol"),
    ("DiscUselessPeer", 0x03, "useless peer"),
    ("DiscTooManyPeers", 0x04, "too many peers"),
    ("DiscAlreadyConnected", 0x05, "already connected"),
    ("DiscIncompatibleVersion", 0x06, "incompatible p2p protocol version"),
    ("DiscInvalidIdentity", 0x07, "invalid node identity"),
    ("DiscQuitting", 0x08, "client quitting"),
    ("DiscUnexpectedIdentity", 0x09, "unexpected identity"),
    ("DiscSelf", 0x0A, "connected to self"),
    ("DiscReadTimeout", 0x0B, "read timeout"),
    ("DiscSubprotocolError", 0x10, "subprotocol error"),
]


@pytest.mark.parametrize("name,number,text", GETH_REASONS)
def test_disc_reason_numbers_and_strings(name, number, text):
    r = getattr(pe, name)
    assert r is DiscReason(number) is getattr(DiscReason, name)
    assert int(r) == number
    assert str(r) == text
    assert "%s" % r == text and "{}".format(r) == text and f"{r:>40}" == "%40s" % text
    assert "%d" % r == str(number) and f"{r:d}" == str(number) and f"{r:02x}" == "%02x" % number
    assert str(DiscReasonError(r)) == text
    assert rlp.encode([r]) == rlp.encode([number])


@pytest.mark.parametrize("number", [0x0C, 0x0F, 0x11, 0x20, 255])
def test_unknown_disc_reason(number):
    r = DiscReason(number)
    assert int(r) == number
    assert str(r) == "unknown disconnect reason %d" % number
    assert DiscReasonError(number).reason == number


def test_disc_reason_error_is_raisable():
    with pytest.raises(DiscReasonError) as ei:
        raise pe.DiscTooManyPeers.error()
    assert ei.value.reason is pe.DiscTooManyPeers
    assert ei.value == DiscReasonError(4)
    assert ei.value == pe.DiscTooManyPeers
    assert ei.value != DiscReasonError(5)


def test_new_peer_error():
    e = new_peer_error(errInvalidMsgCode, "%d", 17)
    assert (e.code, str(e)) == (errInvalidMsgCode, "invalid message code: 17")
    e = new_peer_error(errInvalidMsg, "")
    assert (e.code, str(e)) == (errInvalidMsg, "invalid message")
    with pytest.raises(ValueError):
        new_peer_error(99, "x")


def test_disc_reason_for_error():
    assert disc_reason_for_error(pe.DiscTooManyPeers) is pe.DiscTooManyPeers
    assert disc_reason_for_error(DiscReasonError(pe.DiscSelf)) is pe.DiscSelf
    assert disc_reason_for_error(ErrProtocolReturned()) is pe.DiscQuitting
    assert str(ErrProtocolReturned()) == "protocol returned"
    assert disc_reason_for_error(new_peer_error(errInvalidMsgCode)) is pe.DiscProtocolError
    assert disc_reason_for_error(new_peer_error(errInvalidMsg)) is pe.DiscProtocolError
    assert disc_reason_for_error(PeerError(7, "other")) is pe.DiscSubprotocolError
    assert disc_reason_for_error(EOFError()) is pe.DiscSubprotocolError
    assert disc_reason_for_error(ValueError("x")) is pe.DiscSubprotocolError


# ---------------------------------------------------------------------------
# decode_disc_reason: the one decoder of a disconnect payload (issue 9, item 5)


@pytest.mark.parametrize("payload,want", [
    (rlp.encode([8]), pe.DiscQuitting),
    (rlp.encode([0x10]), pe.DiscSubprotocolError),
    (rlp.encode([4, b"extra"]), pe.DiscTooManyPeers),  # geth ignores the rest of the list
    (rlp.encode([0x42]), DiscReason(0x42)),  # unknown, kept
    (rlp.encode([]), pe.DiscRequested),  # geth: too few elements, zero value
    (b"", pe.DiscRequested),
    (b"\xff\xff", pe.DiscRequested),  # garbage
    (rlp.encode([[1]]), pe.DiscRequested),  # nested list
    (rlp.encode([b"\x00\x04"]), pe.DiscRequested),  # leading zero: not a canonical integer
    (b"\xc2\x81\x05", pe.DiscRequested),  # a byte below 0x80 in a string header
    (rlp.encode([2 ** 64]), pe.DiscRequested),  # more than a uint64
    (rlp.encode(8), pe.DiscQuitting),  # departure forgiving-disconnect: geth reads DiscRequested
])
def test_decode_disc_reason(payload, want):
    assert pe.decode_disc_reason(payload) == want


def test_one_disc_reason_decoder():
    from p2p import rlpx

    assert rlpx.decode_disc_reason is pe.decode_disc_reason


@pytest.mark.parametrize("payload,want", [
    (rlp.encode([4]), "too many peers"),
    (rlp.encode([b"\x00\x04"]), "disconnect requested"),  # the old peer decoder read 4 here
    (rlp.encode([2 ** 70]), "disconnect requested"),  # and a reason beyond uint64 here
])
def test_peer_reads_disconnect_like_rlpx(payload, want):
    """A live peer over loopback reads a disconnect's reason with the same decoder as rlpx."""
    import io
    import queue
    import socket

    from p2p.message import Msg
    from p2p.peer import PeerEventTypeAdd, PeerEventTypeDrop, discMsg
    from p2p.server import split_host_port
    from tests.test_server import WAIT, new_test_transport, random_id, start_test_server

    remid = random_id()
    srv = start_test_server(remid, None)
    events = queue.Queue()
    sub = srv.subscribe_events(events)
    c = None
    try:
        host, port = split_host_port(srv.listen_addr)
        c = socket.create_connection((host, port), timeout=WAIT)
        assert events.get(timeout=WAIT).type == PeerEventTypeAdd
        new_test_transport(remid, c).write_msg(Msg(discMsg, len(payload), io.BytesIO(payload)))
        ev = events.get(timeout=WAIT)
        assert ev.type == PeerEventTypeDrop and ev.error == want
    finally:
        sub.unsubscribe()
        srv.stop()
        if c is not None:
            c.close()
