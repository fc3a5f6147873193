"""Tests for p2p/message.py (twins of geth's message_test.go, plus more)."""

import io
import queue
import threading

import pytest
import rlp

from p2p.message import (
    EofSignal,
    ErrPipeClosed,
    Msg,
    MsgEventer,
    expect_msg,
    msg_pipe,
    new_msg_eventer,
    send,
    send_items,
)
from p2p.peer import PeerEventTypeMsgRecv, PeerEventTypeMsgSend
from p2p.peer_error import PeerError, errInvalidMsg

WAIT = 5.0


def _go(fn, *args, name="test.go"):
    """Run fn on a thread; returns (thread, result queue holding its return value or exception)."""
    out = queue.Queue(maxsize=1)

    def run():
        try:
            out.put(fn(*args))
        except BaseException as e:  # handed to the test thread
            out.put(e)

    t = threading.Thread(target=run, name=name, daemon=True)
    t.start()
    return t, out


def test_example_msg_pipe():
    rw1, rw2 = msg_pipe()

    def writer():
        send(rw1, 8, [b"\x00\x00"])
        send(rw1, 5, [b"\x01\x01"])
        rw1.close()

    t, _ = _go(writer)
    got = []
    while True:
        try:
            msg = rw2.read_msg()
        except ErrPipeClosed:
            break
        data = msg.decode()
        got.append("msg: %d, %s" % (msg.code, data[0].hex()))
    t.join(WAIT)
    assert got == ["msg: 8, 0000", "msg: 5, 0101"]


def test_msg_pipe_unblock_write():
    for _ in range(100):
        rw1, rw2 = msg_pipe()
        t, out = _go(send_items, rw1, 1)
        rw2.close()
        err = out.get(timeout=WAIT)  # the write must unblock
        assert isinstance(err, ErrPipeClosed), "wrong error: %r" % (err,)
        t.join(WAIT)


def test_msg_pipe_concurrent_close():
    rw1, rw2 = msg_pipe()
    threads = [threading.Thread(target=rw1.close, name="test.close") for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    with pytest.raises(ErrPipeClosed):
        rw2.read_msg()
    with pytest.raises(ErrPipeClosed):
        send_items(rw1, 1)


def test_eof_signal():
    # Nothing to read: the first read signals at once.
    eof = threading.Event()
    sig = EofSignal(io.BytesIO(b""), 0, eof)
    assert sig.read(10) == b""
    assert eof.is_set(), "EOF not signaled"

    # The count is reached while the reader still has data: signalled.
    eof = threading.Event()
    sig = EofSignal(io.BytesIO(b"aaaaaaaa"), 4, eof)
    assert sig.read(10) == b"aaaa"
    assert eof.is_set(), "EOF not signaled"

    # The reader runs dry before the count: signalled at the short read.
    eof = threading.Event()
    sig = EofSignal(io.BytesIO(b"aaaa"), 999, eof)
    assert sig.read(10) == b"aaaa"
    assert sig.read(10) == b""
    assert eof.is_set(), "EOF not signaled"

    # Neither the count reached nor the reader dry: no signal yet.
    eof = threading.Event()
    sig = EofSignal(io.BytesIO(b"a" * 21), 999, eof)
    assert sig.read(10) == b"a" * 10
    assert not eof.is_set(), "unexpected EOF signal"


def test_eof_signal_fires_once():
    calls = []

    class Once:
        def set(self):
            calls.append(1)

    sig = EofSignal(io.BytesIO(b"abc"), 3, Once())
    assert sig.read() == b"abc"
    assert sig.read() == b""
    assert sig.read(5) == b""
    assert calls == [1]


def test_msg_pipe_close_wakes_blocked_reader():
    rw1, rw2 = msg_pipe()
    t, out = _go(rw2.read_msg)
    rw1.close()
    assert isinstance(out.get(timeout=WAIT), ErrPipeClosed)
    t.join(WAIT)


def test_msg_pipe_write_waits_for_payload_consumption():
    rw1, rw2 = msg_pipe()
    t, out = _go(send_items, rw1, 7, b"hello", 42)
    msg = rw2.read_msg()
    assert msg.code == 7
    # The message has been taken but not consumed: the writer cannot have returned.
    assert out.empty()
    assert len(msg.payload.read(1)) == 1  # partly read: still not consumed
    assert out.empty()
    msg.discard()
    assert out.get(timeout=WAIT) is None
    t.join(WAIT)
    rw1.close()


def test_msg_pipe_close_while_waiting_for_consumption():
    rw1, rw2 = msg_pipe()
    t, out = _go(send_items, rw1, 1, b"x")
    msg = rw2.read_msg()
    assert msg.size > 0
    rw2.close()
    # geth: a delivered message counts as written even if the pipe closes before it is read.
    assert out.get(timeout=WAIT) is None
    t.join(WAIT)


def test_msg_pipe_zero_size_write_returns_after_read():
    rw1, rw2 = msg_pipe()
    t, out = _go(rw1.write_msg, Msg(3, 0, io.BytesIO(b"")))
    msg = rw2.read_msg()
    assert (msg.code, msg.size) == (3, 0)
    assert out.get(timeout=WAIT) is None  # nothing to consume
    t.join(WAIT)
    rw1.close()


def test_msg_pipe_full_duplex_and_concurrent_writers():
    rw1, rw2 = msg_pipe()
    n = 20
    writers = [_go(send_items, rw1, i, i) for i in range(n)]
    back = _go(send_items, rw2, 99, b"back")
    got = set()
    for _ in range(n):
        msg = rw2.read_msg()
        assert rlp.sedes.big_endian_int.deserialize(msg.decode()[0]) == msg.code
        got.add(msg.code)
    assert got == set(range(n))
    expect_msg(rw1, 99, [b"back"])
    for t, out in writers + [back]:
        assert out.get(timeout=WAIT) is None
        t.join(WAIT)
    rw1.close()


def test_msg_decode_and_str():
    msg = Msg.from_bytes(9, rlp.encode([b"ab", 5]))
    assert str(msg) == "msg #9 (%d bytes)" % msg.size
    assert msg.decode() == [b"ab", b"\x05"]


def test_msg_decode_invalid_is_peer_error():
    msg = Msg.from_bytes(0x11, b"\xc5\x01")  # list header claims more than there is
    with pytest.raises(PeerError) as ei:
        msg.decode()
    assert ei.value.code == errInvalidMsg
    assert str(ei.value).startswith("invalid message: (code 11) (size 2)")


def test_msg_decode_short_payload():
    msg = Msg(1, 10, io.BytesIO(b"\xc0"))
    with pytest.raises(PeerError):
        msg.decode()


def test_msg_decode_with_sedes():
    msg = Msg.from_bytes(1, rlp.encode([1, 2, 3]))
    assert msg.decode(rlp.sedes.CountableList(rlp.sedes.big_endian_int)) == (1, 2, 3)


def test_msg_payload_bytes_is_zero_copy():
    data = rlp.encode([b"x" * 1000])
    msg = Msg.from_bytes(1, data)
    assert msg.payload_bytes() is data
    assert msg.payload_bytes() == b""


def test_msg_discard():
    msg = Msg.from_bytes(1, b"\x01\x02\x03")
    msg.discard()
    assert msg.payload.read() == b""


def test_send_items_encodes_a_list():
    rw1, rw2 = msg_pipe()
    t, out = _go(send_items, rw1, 4, "foo", 1, [b"a"])
    msg = rw2.read_msg()
    assert msg.payload.read() == rlp.encode(["foo", 1, [b"a"]])
    assert out.get(timeout=WAIT) is None
    t.join(WAIT)
    rw1.close()


def test_expect_msg_mismatches():
    cases = [
        (5, [1], 6, [1], "message code mismatch: got 5, expected 6"),
        (5, [1], 5, [1, 2], "message size mismatch"),
        (5, [1], 5, [2], "message payload mismatch"),
    ]
    for code, content, want_code, want_content, text in cases:
        rw1, rw2 = msg_pipe()
        t, out = _go(send, rw1, code, content)
        with pytest.raises(ValueError) as ei:
            expect_msg(rw2, want_code, want_content)
        assert text in str(ei.value)
        rw2.close()
        out.get(timeout=WAIT)
        t.join(WAIT)


def test_expect_msg_nil_content_discards():
    rw1, rw2 = msg_pipe()
    t, out = _go(send_items, rw1, 5, b"anything")
    expect_msg(rw2, 5, None)
    assert out.get(timeout=WAIT) is None  # discarding consumed the payload
    t.join(WAIT)
    rw1.close()


class _ListFeed:
    def __init__(self):
        self.events = []

    def send(self, ev):
        self.events.append(ev)
        return 1


def test_msg_eventer():
    rw1, rw2 = msg_pipe()
    feed = _ListFeed()
    peer_id = b"\x01" * 64
    ev = new_msg_eventer(rw1, feed, peer_id, "test")
    assert isinstance(ev, MsgEventer)

    t, out = _go(send_items, ev, 3, b"abc")
    msg = rw2.read_msg()
    msg.discard()
    assert out.get(timeout=WAIT) is None
    t.join(WAIT)

    t, out = _go(send_items, rw2, 4, 1, 2)
    msg = ev.read_msg()
    msg.discard()
    assert out.get(timeout=WAIT) is None
    t.join(WAIT)

    sent, recv = feed.events
    assert (sent.type, sent.peer, sent.protocol, sent.msg_code) == (PeerEventTypeMsgSend, peer_id, "test", 3)
    assert sent.msg_size == len(rlp.encode([b"abc"]))
    assert (recv.type, recv.protocol, recv.msg_code, recv.msg_size) == (PeerEventTypeMsgRecv, "test", 4, 3)

    ev.close()  # closes the wrapped pipe
    with pytest.raises(ErrPipeClosed):
        rw2.read_msg()
    assert len(feed.events) == 2


def test_msg_eventer_no_event_on_error():
    rw1, rw2 = msg_pipe()
    feed = _ListFeed()
    ev = new_msg_eventer(rw1, feed, b"\x00" * 64, "x")
    rw2.close()
    with pytest.raises(ErrPipeClosed):
        send_items(ev, 1)
    with pytest.raises(ErrPipeClosed):
        ev.read_msg()
    assert feed.events == []


def test_message_module_does_not_import_peer():
    # PeerEvent lives in message.py: posting message events needs nothing from peer.py
    # (the old message.py <-> peer.py import cycle).
    import subprocess
    import sys

    code = ("import sys, queue\n"
            "from p2p import message\n"
            "from p2p.event import Feed\n"
            "a, b = message.msg_pipe()\n"
            "ev = message.new_msg_eventer(a, Feed(), b'\\x01' * 64, 'test')\n"
            "assert 'p2p.peer' not in sys.modules, 'p2p.peer imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
