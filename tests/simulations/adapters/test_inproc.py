"""Twins of geth's adapters/inproc_test.go (the pipes), and the sim adapter itself."""

import queue
import threading

import pytest

from p2p.discover.node import new_node
from p2p.node import api as node_api
from p2p.node.node import Service
from p2p.peer import PeerEventTypeAdd, PeerEventTypeDrop
from p2p.protocol import Protocol
from p2p.simulations.adapters import types
from p2p.simulations.adapters.inproc import new_sim_adapter, new_tcp_adapter
from p2p.simulations.pipes import net_pipe, tcp_pipe


def _uvarint_msg(i: int, size: int) -> bytes:
    # Go's binary.PutUvarint into a zeroed buffer of size bytes
    out = bytearray(size)
    n = 0
    while True:
        b = i & 0x7F
        i >>= 7
        if i:
            out[n] = b | 0x80
            n += 1
        else:
            out[n] = b
            break
    return bytes(out)


def _read_full(conn, size):
    buf = b""
    while len(buf) < size:
        chunk = conn.recv(size - len(buf))
        assert chunk, "connection closed early"
        buf += chunk
    return buf


def _run(fn, timeout=5.0):
    # geth's goroutine + select with time.After(5 * time.Second): "test timeout"
    errors = []

    def body():
        try:
            fn()
        except BaseException as e:  # re-raised on the test's thread
            errors.append(e)

    t = threading.Thread(target=body, name="test.pipe")
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "test timeout"
    if errors:
        raise errors[0]


def test_tcp_pipe():
    c1, c2 = tcp_pipe()
    msgs, size = 50, 1024

    def body():
        for i in range(msgs):
            c1.sendall(_uvarint_msg(i, size))
        for i in range(msgs):
            assert _read_full(c2, size) == _uvarint_msg(i, size)

    try:
        _run(body)
    finally:
        c1.close()
        c2.close()


def test_tcp_pipe_bidirections():
    c1, c2 = tcp_pipe()
    msgs, size = 50, 7

    def body():
        for i in range(msgs):
            c1.sendall(b"ping %02d" % i)
        for i in range(msgs):
            assert _read_full(c2, size) == b"ping %02d" % i
            c2.sendall(b"pong %02d" % i)
        for i in range(msgs):
            assert _read_full(c1, size) == b"pong %02d" % i

    try:
        _run(body)
    finally:
        c1.close()
        c2.close()


def test_net_pipe():
    c1, c2 = net_pipe()
    msgs, size = 50, 1024

    def writer():
        for i in range(msgs):
            c1.sendall(_uvarint_msg(i, size))

    def body():
        w = threading.Thread(target=writer, name="test.pipe.writer")
        w.start()
        for i in range(msgs):
            assert _read_full(c2, size) == _uvarint_msg(i, size)
        w.join()

    try:
        _run(body)
    finally:
        c1.close()
        c2.close()


def test_net_pipe_bidirections():
    c1, c2 = net_pipe()
    msgs, size = 1000, 8
    errors = []

    def writer():
        for i in range(msgs):
            c1.sendall(b"ping %03d" % i)

    def pong_reader():
        try:
            for i in range(msgs):
                assert _read_full(c1, size) == b"pong %03d" % i
        except BaseException as e:
            errors.append(e)

    def body():
        w = threading.Thread(target=writer, name="test.pipe.writer")
        r = threading.Thread(target=pong_reader, name="test.pipe.reader")
        w.start()
        r.start()
        for i in range(msgs):
            assert _read_full(c2, size) == b"ping %03d" % i
            c2.sendall(b"pong %03d" % i)
        w.join()
        r.join()
        if errors:
            raise errors[0]

    try:
        _run(body)
    finally:
        c1.close()
        c2.close()


# ---------------------------------------------------------------------------
# Python-only: the sim adapter running nodes.


def _noop_run(peer, rw):
    # Read until the connection ends: a protocol that just keeps the peer up.
    while True:
        msg = rw.read_msg()
        msg.discard()


class _TestService(Service):
    def __init__(self, ctx):
        self.ctx = ctx
        self.started = threading.Event()

    def protocols(self):
        return [Protocol(name="test", version=1, length=1, run=_noop_run)]

    def start(self, server):
        self.started.set()

    def snapshot(self):
        return b"snap:" + self.ctx.config.name.encode()


def _wait_event(ch, want_type, timeout=20.0):
    while True:
        ev = ch.get(timeout=timeout)
        if ev.type == want_type:
            return ev


@pytest.fixture(params=["pipe", "tcp"])
def adapter(request):
    make = new_sim_adapter if request.param == "pipe" else new_tcp_adapter
    return make({"test": _TestService})


def test_sim_adapter_connect_and_events(adapter):
    nodes = []
    for i in range(2):
        conf = types.random_node_config()
        conf.name = "node%d" % i
        conf.services = ["test"]
        nodes.append(adapter.new_node(conf))
    for n in nodes:
        n.start(None)
    try:
        assert nodes[0].service("test").started.is_set()
        events = queue.Queue()
        sub = nodes[0].client().subscribe("admin", events, "peerEvents", decode=node_api.peer_event_from_json)
        assert nodes[0].client().call("admin_addPeer", nodes[1].addr().decode()) is True
        ev = _wait_event(events, PeerEventTypeAdd)
        assert ev.peer == nodes[1].id

        peers = nodes[0].client().call("admin_peers")
        assert [p["id"] for p in peers] == [nodes[1].id.hex()]
        assert peers[0]["caps"] == ["test/1"]
        assert set(peers[0]["network"]) == {"localAddress", "remoteAddress", "inbound", "trusted", "static"}
        info = nodes[1].client().call("admin_nodeInfo")
        assert info["id"] == nodes[1].id.hex()
        assert set(info) == {"id", "name", "enode", "ip", "ports", "listenAddr", "protocols"}
        assert set(info["ports"]) == {"discovery", "listener"}

        assert nodes[0].client().call("admin_removePeer", nodes[1].addr().decode()) is True
        ev = _wait_event(events, PeerEventTypeDrop)
        assert ev.peer == nodes[1].id
        sub.unsubscribe()
        assert nodes[0].snapshots() == {"test": b"snap:node0"}
    finally:
        for n in nodes:
            n.stop()


def test_sim_adapter_restart_node(adapter):
    conf = types.random_node_config()
    conf.services = ["test"]
    n = adapter.new_node(conf)
    n.start(None)
    first = n.service("test")
    n.stop()
    with pytest.raises(RuntimeError):
        n.client()
    assert n.node_info().id == conf.id.hex()
    n.start({"test": b"x"})
    try:
        assert n.service("test") is not first
        assert n.service("test").ctx.snapshot == b"x"
        assert n.client().call("admin_nodeInfo")["id"] == conf.id.hex()
    finally:
        n.stop()


def test_sim_adapter_new_node_errors():
    adapter = new_sim_adapter({"test": _TestService})
    conf = types.random_node_config()
    with pytest.raises(ValueError, match="at least one service"):
        adapter.new_node(conf)
    conf.services = ["nope"]
    with pytest.raises(ValueError, match="unknown node service"):
        adapter.new_node(conf)
    conf.services = ["test"]
    adapter.new_node(conf)
    with pytest.raises(ValueError, match="already exists"):
        adapter.new_node(conf)


def test_sim_adapter_dial_unknown_or_stopped():
    adapter = new_sim_adapter({"test": _TestService})
    conf = types.random_node_config()
    conf.services = ["test"]
    n = adapter.new_node(conf)
    with pytest.raises(ConnectionError, match="not running"):
        adapter.dial(n.node_())
    other = types.random_node_config()
    with pytest.raises(ConnectionError, match="unknown node"):
        adapter.dial(new_node(other.id, "127.0.0.1", 30303, 30303))


def test_rpc_errors_over_sim_client():
    adapter = new_sim_adapter({"test": _TestService})
    conf = types.random_node_config()
    conf.services = ["test"]
    n = adapter.new_node(conf)
    n.start(None)
    try:
        from p2p.node.rpc import RPCError

        with pytest.raises(RPCError, match="invalid enode") as e:
            n.client().call("admin_addPeer", "enode://nonsense")
        assert e.value.code == -32000
        with pytest.raises(RPCError, match="does not exist") as e:
            n.client().call("admin_nope")
        assert e.value.code == -32601
        with pytest.raises(RPCError) as e:
            n.client().call("admin_nodeInfo", 1, 2)
        assert e.value.code == -32602
    finally:
        n.stop()


def test_sim_node_serve_rpc_over_websocket():
    # What the HTTP API's GET /nodes/:node/rpc does: hand a WebSocket connection to serve_rpc.
    from websockets.sync.server import serve

    from p2p.node import rpc

    adapter = new_sim_adapter({"test": _TestService})
    conf = types.random_node_config()
    conf.services = ["test"]
    n = adapter.new_node(conf)
    n.start(None)
    ws = serve(n.serve_rpc, "127.0.0.1", 0)
    t = threading.Thread(target=ws.serve_forever, name="test.ws")
    t.start()
    try:
        port = ws.socket.getsockname()[1]
        c = rpc.dial_websocket("ws://127.0.0.1:%d" % port)
        try:
            assert c.call("admin_nodeInfo")["id"] == conf.id.hex()
        finally:
            c.close()
    finally:
        ws.shutdown()
        t.join()
        n.stop()
