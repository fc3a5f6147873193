"""Twins of geth's p2p/simulations/http_test.go, then the API's bad-input answers.

The test service (three protocols doing empty-message handshakes, and a
``test`` RPC namespace with a counter, a state and an ``events``
subscription) is geth's; test_network.py and test_mocker.py use it too.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import queue
import socket
import threading
import time
import urllib.parse

import pytest

from p2p.discover.node import NodeID, must_hex_id
from p2p.event import Feed
from p2p.message import expect_msg, send
from p2p.node import rpc
from p2p.node.node import API, Service
from p2p.protocol import Protocol
from p2p.simulations.adapters import types as adapters
from p2p.simulations.adapters.inproc import new_sim_adapter
from p2p.simulations.events import Event, EventTypeConn, EventTypeMsg, EventTypeNode
from p2p.simulations.http import Client, ClientError, ListeningServer, MsgFilter, Server, SubscribeOpts
from p2p.simulations.network import Conn, Network, NetworkConfig, Node


def new_test_service(ctx: adapters.ServiceContext) -> "TestService":
    return TestService(ctx.config.id, ctx.snapshot)


class TestService(Service):
    """Protocols and APIs for testing nodes of a simulation network."""

    __test__ = False  # not a pytest class

    def __init__(self, id: NodeID, snapshot):
        self.id = id
        self.peer_count = 0  # peers that completed the test handshakes
        self._count_lock = threading.Lock()
        self.peers = {}
        self.peers_mtx = threading.Lock()
        self.state = snapshot  # bytes, for the snapshot tests

    def peer(self, id: NodeID) -> "TestPeer":
        with self.peers_mtx:
            peer = self.peers.get(id)
            if peer is None:
                peer = TestPeer()
                self.peers[id] = peer
            return peer

    def protocols(self):
        return [
            Protocol(name="test", version=1, length=3, run=self.run_test),
            Protocol(name="dum", version=1, length=1, run=self.run_dum),
            Protocol(name="prb", version=1, length=1, run=self.run_prb),
        ]

    def apis(self):
        return [API(namespace="test", version="1.0", service=TestAPI(self))]

    def start(self, server):
        pass

    def stop(self):
        pass

    def handshake(self, rw, code: int) -> None:
        """Send and expect an empty message with ``code``, both at once."""
        errc = queue.Queue(maxsize=2)

        def do(fn):
            try:
                fn()
                errc.put(None)
            except Exception as e:
                errc.put(e)

        threads = [threading.Thread(target=do, args=(lambda: send(rw, code, []),), name="testService.handshake.send"),
                   threading.Thread(target=do, args=(lambda: expect_msg(rw, code, []),),
                                    name="testService.handshake.expect")]
        for t in threads:
            t.start()
        try:
            for _ in range(2):
                err = errc.get()
                if err is not None:
                    raise err
        finally:
            for t in threads:
                t.join()

    def run_test(self, p, rw):
        peer = self.peer(p.id())
        # three handshakes with three codes, for the message event and filter tests
        try:
            self.handshake(rw, 2)
            self.handshake(rw, 1)
            self.handshake(rw, 0)
        finally:
            # the other protocols may go on (geth's goroutines wait forever if this fails;
            # here they go on and fail on the closed connection, so the peer can end)
            peer.test_ready.set()
        with self._count_lock:
            self.peer_count += 1
        try:
            while True:  # until the peer is dropped
                rw.read_msg().discard()
        finally:
            with self._count_lock:
                self.peer_count -= 1

    def run_dum(self, p, rw):
        peer = self.peer(p.id())
        peer.test_ready.wait()
        try:
            self.handshake(rw, 0)
        finally:
            peer.dum_ready.set()
        while True:
            rw.read_msg().discard()

    def run_prb(self, p, rw):
        peer = self.peer(p.id())
        peer.dum_ready.wait()
        self.handshake(rw, 0)
        while True:
            rw.read_msg().discard()

    def snapshot(self) -> bytes:
        return self.state or b""


class TestPeer:
    __test__ = False

    def __init__(self):
        self.test_ready = threading.Event()
        self.dum_ready = threading.Event()


class TestAPI:
    """The ``test`` RPC namespace: peer count, a counter with events, a state."""

    __test__ = False

    def __init__(self, svc: TestService):
        self._svc = svc
        self.counter = 0
        self._lock = threading.Lock()
        self.feed = Feed()

    def peer_count(self) -> int:
        return self._svc.peer_count

    def get(self) -> int:
        with self._lock:
            return self.counter

    def add(self, delta: int) -> None:
        with self._lock:
            self.counter += delta
        self.feed.send(delta)

    def get_state(self) -> str:
        return base64.b64encode(self._svc.state or b"").decode()  # Go's JSON of []byte

    def set_state(self, state: str) -> None:
        self._svc.state = base64.b64decode(state)

    @rpc.subscription
    def events(self, notifier):
        rpc_sub = notifier.create_subscription()
        events = queue.Queue()
        sub = self.feed.subscribe(events)

        def wake():
            rpc_sub.err().wait()
            events.put(None)

        def forward():
            try:
                while True:
                    ev = events.get()
                    if ev is None:
                        return
                    notifier.notify(rpc_sub.id, ev)
            except rpc.ClientQuitError:
                return
            finally:
                sub.unsubscribe()

        notifier.go(wake, "TestAPI.Events.wake")
        notifier.go(forward, "TestAPI.Events")
        return rpc_sub


testServices = {"test": new_test_service}


class _TestServer:
    """A network on the sim adapter served over HTTP on loopback (geth's httptest.Server)."""

    def __init__(self):
        self.network = Network(new_sim_adapter(testServices), NetworkConfig(default_service="test"))
        self.api = Server(self.network)
        self.http = ListeningServer(self.api, "127.0.0.1:0")
        self.url = self.http.url

    def close(self):
        self.http.close()
        self.network.shutdown()


@pytest.fixture
def servers():
    made = []

    def make():
        s = _TestServer()
        made.append(s)
        return s

    yield make
    for s in reversed(made):
        s.close()


def test_http_server(servers):
    """testHTTPServer itself: a server with an empty network answers."""
    s = servers()
    net = Client(s.url).get_network()
    assert net.nodes == [] and net.conns == []


def test_http_network(servers):
    s = servers()
    network = s.network
    client = Client(s.url)
    events = queue.Queue()
    sub = client.subscribe_network(events, SubscribeOpts())
    try:
        got = client.get_network()
        assert got.id == network.id

        node_ids = start_test_network(client)

        x = ExpectEvents(events, sub)
        x.expect(
            x.node_event(node_ids[0], False),
            x.node_event(node_ids[1], False),
            x.node_event(node_ids[0], True),
            x.node_event(node_ids[1], True),
            x.conn_event(node_ids[0], node_ids[1], False),
            x.conn_event(node_ids[0], node_ids[1], True),
        )
    finally:
        sub.unsubscribe()

    # reconnect with current=true: the existing nodes and conns come first
    events = queue.Queue()
    sub = client.subscribe_network(events, SubscribeOpts(current=True))
    try:
        x = ExpectEvents(events, sub)
        x.expect(
            x.node_event(node_ids[0], True),
            x.node_event(node_ids[1], True),
            x.conn_event(node_ids[0], node_ids[1], True),
        )
    finally:
        sub.unsubscribe()


def start_test_network(client: Client):
    """Create two nodes, check they are listed, start them and connect the first to the second."""
    node_count = 2
    node_ids = []
    for _ in range(node_count):
        config = adapters.random_node_config()
        node = client.create_node(config)
        node_ids.append(node.id)

    nodes = client.get_nodes()
    assert len(nodes) == node_count
    for i, node_id in enumerate(node_ids):
        assert nodes[i].id == node_id
        assert client.get_node(node_id).id == node_id

    for node_id in node_ids:
        client.start_node(node_id)

    for i in range(node_count - 1):
        client.connect_node(node_ids[i], node_ids[i + 1])
    return node_ids


class ExpectEvents:
    """Reads events from a subscription's queue and compares them with expected ones."""

    def __init__(self, events: queue.Queue, sub, timeout: float = 30.0):
        self.events = events
        self.sub = sub
        self.timeout = timeout

    def node_event(self, id: str, up: bool) -> Event:
        return Event(type=EventTypeNode, node=Node(config=adapters.NodeConfig(id=must_hex_id(id)), up=up))

    def conn_event(self, one: str, other: str, up: bool) -> Event:
        return Event(type=EventTypeConn, conn=Conn(one=must_hex_id(one), other=must_hex_id(other), up=up))

    def _next(self, deadline: float) -> Event:
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "timed out waiting for expected events"
            try:
                return self.events.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if self.sub.err().closed:
                    err = self.sub.err().get()
                    pytest.fail("network stream closed unexpectedly: %s" % err)

    def expect_msgs(self, expected: dict) -> None:
        actual = {}
        deadline = time.monotonic() + self.timeout
        while True:
            event = self._next(deadline)
            if event.type != EventTypeMsg or event.msg.received:
                continue
            f = MsgFilter(proto=event.msg.protocol, code=event.msg.code)
            actual[f] = actual.get(f, 0) + 1
            assert actual[f] <= expected.get(f, 0), "received too many msgs for filter: %s" % (f,)
            if actual == expected:
                return

    def expect(self, *events: Event) -> None:
        deadline = time.monotonic() + self.timeout
        for i, expected in enumerate(events):
            event = self._next(deadline)
            assert event.type == expected.type, "event %d: type %s, want %s (%s)" % (i, event.type, expected.type, event)
            if expected.type == EventTypeNode:
                assert event.node is not None
                assert event.node.id() == expected.node.id(), "node event %d" % i
                assert event.node.up == expected.node.up, "node event %d: up=%s" % (i, event.node.up)
            elif expected.type == EventTypeConn:
                assert event.conn is not None
                assert event.conn.one == expected.conn.one, "conn event %d: one" % i
                assert event.conn.other == expected.conn.other, "conn event %d: other" % i
                assert event.conn.up == expected.conn.up, "conn event %d: up=%s" % (i, event.conn.up)


def test_http_node_rpc(servers):
    s = servers()
    client = Client(s.url)
    node = client.create_node(adapters.random_node_config())
    client.start_node(node.id)

    rpc_client1 = client.rpc_client(node.id)
    rpc_client2 = client.rpc_client(node.id)
    try:
        events = queue.Queue()
        sub = rpc_client1.subscribe("test", events, "events")
        try:
            rpc_client2.call("test_add", 10)
            assert rpc_client2.call("test_get") == 10
            assert events.get(timeout=10) == 10
        finally:
            sub.unsubscribe()
    finally:
        rpc_client1.close()
        rpc_client2.close()


def test_http_snapshot(servers):
    s = servers()
    client = Client(s.url)
    node_count = 2
    nodes = []
    for _ in range(node_count):
        node = client.create_node(adapters.random_node_config())
        client.start_node(node.id)
        nodes.append(node)
    client.connect_node(nodes[0].id, nodes[1].id)
    _wait_conns_up(client, 1)

    states = []
    for node in nodes:
        c = client.rpc_client(node.id)
        try:
            state = os.urandom(8).hex()
            c.call("test_setState", base64.b64encode(state.encode()).decode())
            states.append(state)
        finally:
            c.close()

    snap = client.create_snapshot()
    for i, state in enumerate(states):
        assert snap.nodes[i].snapshots["test"] == state.encode()

    # another network
    s2 = servers()
    client = Client(s2.url)
    events = queue.Queue()
    sub = client.subscribe_network(events, SubscribeOpts())
    try:
        client.load_snapshot(snap)

        net = client.get_network()
        assert len(net.nodes) == node_count
        for i, node in enumerate(nodes):
            assert net.nodes[i].id().hex() == node.id
        assert len(net.conns) == 1
        conn = net.conns[0]
        assert conn.one.hex() == nodes[0].id
        assert conn.other.hex() == nodes[1].id

        for i, node in enumerate(nodes):
            c = client.rpc_client(node.id)
            try:
                state = base64.b64decode(c.call("test_getState"))
            finally:
                c.close()
            assert state == states[i].encode()

        x = ExpectEvents(events, sub)
        x.expect(
            x.node_event(nodes[0].id, False),
            x.node_event(nodes[0].id, True),
            x.node_event(nodes[1].id, False),
            x.node_event(nodes[1].id, True),
            x.conn_event(nodes[0].id, nodes[1].id, False),
            x.conn_event(nodes[0].id, nodes[1].id, True),
        )
    finally:
        sub.unsubscribe()


def _wait_conns_up(client: Client, n: int, timeout: float = 30.0):
    """Wait (on the event stream, not by polling) until ``n`` connections are up."""
    events = queue.Queue()
    sub = client.subscribe_network(events, SubscribeOpts(current=True))
    try:
        up = set()
        deadline = time.monotonic() + timeout
        while len(up) < n:
            ev = events.get(timeout=max(0.01, deadline - time.monotonic()))
            if ev.conn is not None:
                key = frozenset((ev.conn.one, ev.conn.other))
                if ev.conn.up:
                    up.add(key)
                else:
                    up.discard(key)
    finally:
        sub.unsubscribe()


def test_msg_filter_pass_multiple(servers):
    s = servers()
    client = Client(s.url)
    events = queue.Queue()
    sub = client.subscribe_network(events, SubscribeOpts(filter="prb:0-test:0"))
    try:
        start_test_network(client)
        ExpectEvents(events, sub).expect_msgs({MsgFilter("test", 0): 2, MsgFilter("prb", 0): 2})
    finally:
        sub.unsubscribe()


def test_msg_filter_pass_wildcard(servers):
    s = servers()
    client = Client(s.url)
    events = queue.Queue()
    sub = client.subscribe_network(events, SubscribeOpts(filter="prb:0,2-test:*"))
    try:
        start_test_network(client)
        ExpectEvents(events, sub).expect_msgs({
            MsgFilter("test", 2): 2,
            MsgFilter("test", 1): 2,
            MsgFilter("test", 0): 2,
            MsgFilter("prb", 0): 2,
        })
    finally:
        sub.unsubscribe()


def test_msg_filter_pass_single(servers):
    s = servers()
    client = Client(s.url)
    events = queue.Queue()
    sub = client.subscribe_network(events, SubscribeOpts(filter="dum:0"))
    try:
        start_test_network(client)
        ExpectEvents(events, sub).expect_msgs({MsgFilter("dum", 0): 2})
    finally:
        sub.unsubscribe()


def test_msg_filter_fail_bad_params(servers):
    s = servers()
    client = Client(s.url)
    events = queue.Queue()
    for f in ("foo:", "bzz:aa", "invalid"):
        with pytest.raises(ClientError) as e:
            client.subscribe_network(events, SubscribeOpts(filter=f))
        assert e.value.status == 400


# ---------------------------------------------------------------------------
# Python only: what p2psim does, bad input, CORS, and the event stream's lifetime.


def test_p2psim_steps_round_trip(servers):
    """The steps p2psim takes: 4 nodes, start, connect 0-1 1-2 2-3, list, events with
    current=true, disconnect 1-2, snapshot, load it into a fresh server: the same network."""
    s = servers()
    client = Client(s.url)
    names = ["node%02d" % i for i in range(4)]
    ids = []
    for name in names:
        conf = adapters.random_node_config()
        conf.name = name
        info = client.create_node(conf)
        assert info.name == name
        ids.append(info.id)
    for name in names:
        client.start_node(name)  # by name, as p2psim does
    for a, b in ((0, 1), (1, 2), (2, 3)):
        client.connect_node(names[a], names[b])
    _wait_conns_up(client, 3)

    listed = client.get_nodes()
    assert [n.name for n in listed] == names
    assert [n.id for n in listed] == ids
    assert all(set(n.protocols) == {"test", "dum", "prb"} for n in listed)

    events = queue.Queue()
    sub = client.subscribe_network(events, SubscribeOpts(current=True))
    try:
        x = ExpectEvents(events, sub)
        x.expect(*[x.node_event(i, True) for i in ids],
                 *[x.conn_event(ids[a], ids[b], True) for a, b in ((0, 1), (1, 2), (2, 3))])
        client.disconnect_node(names[1], names[2])
        x.expect(x.conn_event(ids[1], ids[2], True),  # the control event: the state it acts on
                 x.conn_event(ids[1], ids[2], False))
    finally:
        sub.unsubscribe()

    snap = client.create_snapshot()
    # departure snapshot-up-conns: the connection that went down is not in the snapshot
    assert [(c.one.hex(), c.other.hex(), c.up) for c in snap.conns] == [
        (ids[0], ids[1], True), (ids[2], ids[3], True)]

    s2 = servers()
    client2 = Client(s2.url)
    client2.load_snapshot(snap)
    _wait_conns_up(client2, 2)
    a, b = client.get_network(), client2.get_network()
    assert [(n.id(), n.config.name, n.up) for n in a.nodes] == [(n.id(), n.config.name, n.up) for n in b.nodes]
    up = lambda net: sorted((c.one, c.other) for c in net.conns if c.up)  # noqa: E731
    assert up(a) == up(b) == sorted([(must_hex_id(ids[0]), must_hex_id(ids[1])),
                                     (must_hex_id(ids[2]), must_hex_id(ids[3]))])


def _raw(url, method, path, body=b"", headers=None):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        return res.status, dict(res.getheaders()), res.read()
    finally:
        conn.close()


def _json_error(body):
    d = json.loads(body)
    assert isinstance(d["error"], str) and d["error"]
    assert "Traceback" not in d["error"]
    return d["error"]


def test_http_bad_input(servers):
    s = servers()
    url = s.url
    # bad JSON: 400 with a JSON message
    for path in ("/nodes", "/snapshot"):
        for body in (b"{", b"[1,", b"\xff\xfe", b'{"nodes": 5}' if path == "/snapshot" else b'{"id": "zz"}',
                     b"null", b'"x"'):
            status, headers, data = _raw(url, "POST", path, body, {"Content-Type": "application/json"})
            assert status == 400, (path, body, status, data)
            assert headers["Content-Type"] == "application/json"
            _json_error(data)
    # unknown nodes: 404
    bogus = "ab" * 64
    for method, path in (("GET", "/nodes/nope"), ("GET", "/nodes/" + bogus), ("POST", "/nodes/nope/start"),
                         ("POST", "/nodes/nope/stop"), ("POST", "/nodes/nope/conn/other"),
                         ("DELETE", "/nodes/nope/conn/other"), ("GET", "/nodes/nope/rpc"), ("GET", "/nowhere")):
        status, _, data = _raw(url, method, path)
        assert status == 404, (method, path, status)
        _json_error(data)
    # a known node, an unknown peer: 404
    conf = adapters.random_node_config()
    conf.name = "n1"
    Client(url).create_node(conf)
    status, _, data = _raw(url, "POST", "/nodes/n1/conn/nope")
    assert status == 404
    # wrong methods: 405 with Allow
    for method, path in (("DELETE", "/"), ("PUT", "/nodes"), ("GET", "/start"), ("PATCH", "/nodes/n1"),
                         ("GET", "/mocker/start"), ("PUT", "/snapshot")):
        status, headers, data = _raw(url, method, path)
        assert status == 405, (method, path, status)
        assert "Allow" in headers
        _json_error(data)
    # mocker form errors: 400
    for form in ("mocker-type=nope&node-count=3", "mocker-type=boot&node-count=x", "mocker-type=boot&node-count=0",
                 "mocker-type=boot"):
        status, _, data = _raw(url, "POST", "/mocker/start", form.encode(),
                               {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 400, (form, status)
        _json_error(data)
    status, _, data = _raw(url, "POST", "/mocker/stop")
    assert status == 500
    # errors of the network: 500 with the message
    status, _, data = _raw(url, "POST", "/nodes/n1/stop")
    assert status == 500 and "already down" in _json_error(data)
    status, _, data = _raw(url, "POST", "/nodes", json.dumps({"name": "n1"}).encode())
    assert status == 500 and "already exists" in _json_error(data)
    # a node config with an id but no key: 400
    status, _, data = _raw(url, "POST", "/nodes", json.dumps({"id": conf.id.hex()}).encode())
    assert status == 400
    # rpc of a node that is not running, and a plain GET on the rpc route
    status, _, data = _raw(url, "GET", "/nodes/n1/rpc")
    assert status == 400
    # a body claiming more than the limit is refused before it is read
    status, _, data = _raw(url, "POST", "/snapshot", b"", {"Content-Length": str(1 << 40)})
    assert status == 413
    # a malformed request line gets JSON too
    u = urllib.parse.urlsplit(url)
    sock = socket.create_connection((u.hostname, u.port), 10)
    try:
        sock.sendall(b"NONSENSE\r\n\r\n")
        data = b""
        while True:  # the server closes the connection after the answer
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.") and b" 400 " in data.split(b"\r\n")[0]
        assert b'{"error"' in data
    finally:
        sock.close()
    # the server still works
    assert [n.name for n in Client(url).get_nodes()] == ["n1"]


def test_http_cors(servers):
    s = servers()
    status, headers, _ = _raw(s.url, "OPTIONS", "/nodes/anything")
    assert status == 200
    assert headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Access-Control-Allow-Methods"] == "GET, POST, PUT, DELETE, OPTIONS"
    status, headers, body = _raw(s.url, "GET", "/", headers={"Accept": "application/json"})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "*"
    assert json.loads(body) == {"id": "", "default_service": "test", "nodes": None, "conns": None}
    status, headers, _ = _raw(s.url, "GET", "/nodes/nope")
    assert status == 404 and headers["Access-Control-Allow-Origin"] == "*"


def test_http_ui_negotiation(servers):
    s = servers()
    status, headers, body = _raw(s.url, "GET", "/", headers={"Accept": "text/html,application/xhtml+xml,*/*"})
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b"<html" in body.lower()
    status, headers, body2 = _raw(s.url, "GET", "/ui/")
    assert status == 200 and body2 == body
    status, headers, js = _raw(s.url, "GET", "/ui/app.js")
    assert status == 200 and "javascript" in headers["Content-Type"]
    for path in ("/ui/../http.py", "/ui/%2e%2e/http.py", "/ui/nope.js"):
        status, _, _ = _raw(s.url, "GET", path)
        assert status == 404, path


def test_http_mocker_form(servers):
    """The mocker started and stopped through its form, boot on 3 nodes."""
    s = servers()
    client = Client(s.url)
    assert set(client.get("/mocker")) == {"startStop", "probabilistic", "boot"}
    events = queue.Queue()
    sub = client.subscribe_network(events, SubscribeOpts())
    try:
        status, _, _ = _raw(s.url, "POST", "/mocker/start", b"mocker-type=boot&node-count=3",
                            {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200
        status, _, data = _raw(s.url, "POST", "/mocker/start", b"mocker-type=boot&node-count=3",
                               {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 500 and "already running" in _json_error(data)
        up = set()
        deadline = time.monotonic() + 30
        while len(up) < 3:
            ev = events.get(timeout=max(0.01, deadline - time.monotonic()))
            if ev.conn is not None and ev.conn.up and not ev.control:
                up.add(frozenset((ev.conn.one, ev.conn.other)))
    finally:
        sub.unsubscribe()
    status, _, _ = _raw(s.url, "POST", "/mocker/stop")
    assert status == 200
    assert len(client.get_nodes()) == 3


def _wait_streams(api: Server, pred, what: str, timeout: float = 10.0) -> None:
    """Wait until ``pred(number of open streams)`` holds; the server notifies every change."""
    with api._streams_cond:
        assert api._streams_cond.wait_for(lambda: pred(len(api._streams)), timeout), what


def test_http_events_client_gone_frees_subscription(servers):
    """A client that disconnects from /events frees its feed subscription and thread."""
    s = servers()
    feed = s.network.events()

    def subscribers():
        with feed._mu:
            return len(feed._send_cases) + len(feed._inbox)

    base = subscribers()
    u = urllib.parse.urlsplit(s.url)
    socks = []
    for _ in range(3):
        sock = socket.create_connection((u.hostname, u.port), 10)
        sock.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1024)
        assert head.startswith(b"HTTP/1.1 200")
        socks.append(sock)
    _wait_streams(s.api, lambda n: n == 3, "three streams")  # registered after the headers
    assert subscribers() == base + 3
    for sock in socks:
        sock.close()
    # no event is sent: the server notices the closed sockets by itself; a stream leaves
    # the set only after its feed subscription has ended
    _wait_streams(s.api, lambda n: n == 0, "streams not ended")
    assert subscribers() == base


def test_http_events_client_unsubscribe(servers):
    """Our client's unsubscribe ends its reader thread and the server's stream."""
    s = servers()
    client = Client(s.url)
    events = queue.Queue(maxsize=1)  # a full queue must not keep the reader alive
    sub = client.subscribe_network(events, SubscribeOpts())
    client.create_node(adapters.random_node_config())
    client.create_node(adapters.random_node_config())
    sub.unsubscribe()
    assert sub.err().get(timeout=5) is None
    _wait_streams(s.api, lambda n: n == 0, "the server's stream did not end")


def test_http_events_slow_client_is_cut(servers, monkeypatch):
    """departure sse-slow-client: a stream past maxQueuedEvents ends with an error event."""
    from p2p.simulations import http as simhttp

    monkeypatch.setattr(simhttp, "maxQueuedEvents", 5)
    s = servers()
    u = urllib.parse.urlsplit(s.url)
    sock = socket.create_connection((u.hostname, u.port), 10)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        _wait_streams(s.api, lambda n: n == 1, "the stream")
        with s.api._streams_lock:
            stream = next(iter(s.api._streams))
        ev = stream._events
        # holding the buffer's lock keeps the handler from draining it: 10 events overflow 5
        with ev._cond:
            for _ in range(10):
                ev.put(Event(type=EventTypeMsg))
        data = b""
        deadline = time.monotonic() + 10
        while b"event: error" not in data:
            assert time.monotonic() < deadline
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        assert b"event: error" in data and b"too many events" in data
    finally:
        sock.close()


def test_http_exec_adapter_rpc_route(tmp_path):
    """The API over the exec adapter: a child-process node started, asked over /nodes/:node/rpc, stopped."""
    import p2p.simulations.examples.ping_pong  # noqa: F401  (registers ping-pong for the children)
    from p2p.simulations.adapters.exec import new_exec_adapter

    network = Network(new_exec_adapter(str(tmp_path)), NetworkConfig(default_service="ping-pong"))
    http_server = ListeningServer(Server(network), "127.0.0.1:0")
    try:
        client = Client(http_server.url)
        conf = adapters.random_node_config()
        conf.name = "child"
        client.create_node(conf)
        client.start_node("child")
        info = client.get_node("child")
        assert info.id == conf.id.hex() and "ping-pong" in info.protocols
        c = client.rpc_client("child")
        try:
            assert c.call("admin_nodeInfo")["id"] == conf.id.hex()
        finally:
            c.close()
        client.stop_node("child")
        assert not client.get_network().nodes[0].up
    finally:
        http_server.close()
        network.shutdown()
