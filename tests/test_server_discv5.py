"""Discovery v4 and v5 on one UDP socket: the unhandled queue and the Server's sharedUDPConn.

Python-only tests (geth has none for this path).
"""

import queue
import threading

import pytest

from p2p import crypto
from p2p.discover import udp as v4udp
from p2p.discv5 import udp as v5udp
from p2p.server import SharedUDPConn


class ReusedBufferConn:
    """A conn whose reads return views of one reused buffer, as geth's read loop does."""

    def __init__(self, datagrams):
        self.buf = bytearray(1280)
        self.datagrams = list(datagrams)
        self.closed = threading.Event()
        self.drained = threading.Event()  # set once every datagram was read
        self.wrote = []

    def read_from_udp(self):
        if self.datagrams:
            d, addr = self.datagrams.pop(0)
            self.buf[:len(d)] = d
            return memoryview(self.buf)[:len(d)], addr
        self.drained.set()
        self.closed.wait()
        raise OSError("use of closed network connection")

    def write_to_udp(self, b, addr):
        self.wrote.append((bytes(b), addr))
        return len(b)

    def close(self):
        self.closed.set()

    def local_addr(self):
        return ("127.0.0.1", 30303)


def _v5_packets(n):
    key = crypto.generate_key()
    return [v5udp.encode_packet(key, 7, v5udp.TopicQuery("t%d" % i, 0))[0] for i in range(n)], key


def _start_v4(conn, unhandled):
    cfg = v4udp.Config(private_key=crypto.generate_key(), unhandled=unhandled)
    return v4udp.listen_udp(conn, cfg)


def test_unhandled_gets_copies_not_views_of_the_read_buffer():
    packets, _ = _v5_packets(5)
    conn = ReusedBufferConn([(p, ("127.0.0.1", 1000 + i)) for i, p in enumerate(packets)])
    unhandled = queue.Queue(maxsize=100)
    tab = _start_v4(conn, unhandled)
    try:
        got = [unhandled.get(timeout=10) for _ in packets]
    finally:
        tab.close()
    # The reader went on over the same buffer: each packet must still be itself.
    assert [g.data for g in got] == packets
    assert all(isinstance(g.data, bytes) for g in got)
    assert [g.addr for g in got] == [("127.0.0.1", 1000 + i) for i in range(5)]
    for g in got:
        pkt = v5udp.IngressPacket()
        v5udp.decode_packet(g.data, pkt)


def test_unhandled_full_queue_drops():
    packets, _ = _v5_packets(6)
    conn = ReusedBufferConn([(p, ("127.0.0.1", 1)) for p in packets])
    unhandled = queue.Queue(maxsize=2)
    tab = _start_v4(conn, unhandled)
    try:
        first = unhandled.get(timeout=10)
        assert conn.drained.wait(10)  # the reader has seen every datagram
    finally:
        tab.close()
    rest = []
    while True:
        p = unhandled.get(timeout=5)
        if p is None:  # v4 closed the stream
            break
        rest.append(p)
    assert first.data == packets[0]
    assert 1 <= len(rest) <= 2  # the others were dropped, as geth's select with default does


def test_shared_conn_reads_the_queue_and_writes_the_socket():
    conn = ReusedBufferConn([])
    unhandled = queue.Queue(maxsize=4)
    s = SharedUDPConn(conn, unhandled)
    unhandled.put(v4udp.ReadPacket(b"abc", ("127.0.0.1", 5)))
    assert s.read_from_udp() == (b"abc", ("127.0.0.1", 5))
    s.write_to_udp(b"x", ("127.0.0.1", 6))
    assert conn.wrote == [(b"x", ("127.0.0.1", 6))]
    assert s.local_addr() == ("127.0.0.1", 30303)
    unhandled.put(None)  # v4 ended
    with pytest.raises(OSError, match="Connection was closed"):
        s.read_from_udp()


def test_shared_conn_close_wakes_the_reader_and_leaves_the_socket():
    conn = ReusedBufferConn([])
    unhandled = queue.Queue(maxsize=2)
    s = SharedUDPConn(conn, unhandled)
    unhandled.put(v4udp.ReadPacket(b"a", ("127.0.0.1", 5)))
    unhandled.put(v4udp.ReadPacket(b"b", ("127.0.0.1", 5)))  # full
    errs = queue.Queue()

    def reader():
        try:
            while True:
                s.read_from_udp()
        except OSError as e:
            errs.put(e)

    s.close()
    t = threading.Thread(target=reader, name="test.sharedUDPConn.reader", daemon=True)
    t.start()
    assert "closed" in str(errs.get(timeout=10))
    t.join(5)
    assert not conn.closed.is_set()  # v4's socket stays open
