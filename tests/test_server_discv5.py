"""Discovery v4 and v5 on one UDP socket: the unhandled queue and the Server's sharedUDPConn.

Python-only tests (geth has none for this path).
"""

import queue
import threading

import pytest

from p2p import crypto
from p2p.discover import udp as v4udp
from p2p.discv5 import udp as v5udp
from p2p.discv5.node import new_node, pubkey_id
from p2p.discv5.nodeevent_string import pongPacket
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


# ---------------------------------------------------------------------------
# A Server running discovery v5, beside v4 on one port or alone.


class _V5Client:
    """A bare v5 transport on loopback that records what it receives (no Network)."""

    def __init__(self):
        import threading as _th

        self.key = crypto.generate_key()
        self.conn = v4udp.UDPConn.listen("127.0.0.1", 0)
        self.t = v5udp._listen_udp(self.key, self.conn, self.conn.local_addr())
        self.got = queue.Queue()
        self.t.net = self
        self.tab = type("Tab", (), {"self": new_node(pubkey_id(self.key), "127.0.0.1",
                                                      self.conn.local_addr()[1], self.conn.local_addr()[1])})()
        th = _th.Thread(target=self.t.read_loop, name="discv5.udp.readLoop", daemon=True)
        self.t._read_thread = th
        th.start()

    def req_read_packet(self, pkt):
        self.got.put(pkt)

    def ping(self, node):
        return self.t.send_ping(node, node.addr(), [])

    def wait(self, ev, timeout=20):
        while True:
            pkt = self.got.get(timeout=timeout)
            if pkt.ev == ev:
                return pkt

    def close(self):
        self.t.close()


def _v4_ping(id, port):
    """Ping node ``id`` at 127.0.0.1:port over discovery v4 from a fresh node: None if it ponged."""
    conn = v4udp.UDPConn.listen("127.0.0.1", 0)
    tab, t = v4udp.new_udp(conn, v4udp.Config(private_key=crypto.generate_key()))
    try:
        return t.ping(id, ("127.0.0.1", port))
    finally:
        tab.close()


def _server(**kw):
    from p2p.server import Config, Server

    srv = Server(Config(private_key=crypto.generate_key(), listen_addr="127.0.0.1:0", max_peers=10, **kw))
    srv.start()
    return srv


def _udp_port(srv):
    return srv.discv5.self_node().udp


def test_server_v4_and_v5_on_one_port(crypto_backend, caplog):
    import logging

    srv = _server(discovery_v5=True)
    client = _V5Client()
    try:
        port = _udp_port(srv)
        assert srv.ntab is not None and srv.discv5 is not None
        assert srv.self().udp == port  # one UDP port for both
        with caplog.at_level(logging.DEBUG):
            # v5: a ping from an unknown node gets a pong carrying its hash
            me = srv.discv5.self_node()
            h = client.ping(me)
            pong = client.wait(pongPacket)
            assert pong.remote_id == me.id and pong.data.reply_tok == h
            # v4 still answers on the same port
            assert _v4_ping(srv.self().id, port) is None
        # The v5 packets went through v4's decoder first: at debug, and only there.
        v4_bad = [r for r in caplog.records if r.name == "p2p.discover" and "Bad discv4 packet" in r.getMessage()]
        assert v4_bad and all(r.levelno == logging.DEBUG for r in v4_bad)
        assert not [r for r in caplog.records if r.name.startswith("p2p.discover") and r.levelno > logging.INFO]
        info = srv.node_info()
        assert info.discv5 == str(me) and info.discv5.startswith("enode://" + me.id.hex() + "@")
    finally:
        client.close()
        srv.stop()
    assert srv.discv5.closed.is_set()


def test_server_v5_alone(crypto_backend):
    srv = _server(discovery_v5=True, no_discovery=True)
    client = _V5Client()
    try:
        assert srv.ntab is None and srv.discv5 is not None
        me = srv.discv5.self_node()
        h = client.ping(me)
        assert client.wait(pongPacket).data.reply_tok == h
        err = _v4_ping(srv.self().id, me.udp)  # nobody speaks v4 there
        assert err is v4udp.errTimeout
    finally:
        client.close()
        srv.stop()


def test_server_v5_bootstrap_nodes(crypto_backend):
    boot = _server(discovery_v5=True, no_discovery=True)
    try:
        added = queue.Queue()
        # The bootnode's table tells when a node has bonded with it (the hook runs in its loop).
        boot.discv5.tab.node_added_hook = added.put
        srv = _server(discovery_v5=True, bootstrap_nodes_v5=[boot.discv5.self_node()])
        try:
            want = srv.discv5.self_node()
            while True:
                n = added.get(timeout=60)
                if n.id == want.id:
                    break
            assert n.udp == want.udp
            # and a lookup there now finds us
            found = boot.discv5.resolve(want.id)
            assert found is not None and found.id == want.id
        finally:
            srv.stop()
    finally:
        boot.stop()


def test_server_v5_bad_bootstrap_node_fails_start():
    from p2p.discv5.node import NodeID, new_node as new_v5_node
    from p2p.server import Config, Server

    srv = Server(Config(private_key=crypto.generate_key(), listen_addr="127.0.0.1:0", discovery_v5=True,
                        bootstrap_nodes_v5=[new_v5_node(NodeID(), "127.0.0.1", 0, 0)]))
    with pytest.raises(ValueError):
        srv.start()
    assert srv.discv5 is None and not srv.running
