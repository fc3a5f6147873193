"""JSON-RPC 2.0 over WebSocket and in process: calls, errors, subscriptions, shutdown.

The port's own tests (geth's rpc package is not ported, only what simulations use).
"""

import json
import queue
import threading

import pytest
from websockets.sync.client import connect

from p2p.node import rpc


class _Echo:
    def __init__(self):
        self.feeds = []

    def echo(self, x):
        return x

    def add_numbers(self, a, b=1):
        return a + b

    def fail(self):
        raise ValueError("it failed")

    def raw_bytes(self):
        return b"\x01\x02"

    @rpc.subscription
    def ticks(self, notifier, n):
        sub = notifier.create_subscription()

        def produce():
            for i in range(n):
                notifier.notify(sub.id, {"i": i})  # held back until the id is answered
            sub.err().wait()

        notifier.go(produce, "test.ticks")
        return sub


@pytest.fixture
def server():
    s = rpc.Server()
    s.register_name("test", _Echo())
    ws = rpc.WebsocketServer(s)
    yield s, ws
    ws.stop()
    s.stop()


@pytest.fixture(params=["ws", "inproc"])
def client(request, server):
    s, ws = server
    c = rpc.dial_websocket(ws.endpoint()) if request.param == "ws" else rpc.dial_in_proc(s)
    yield c
    c.close()


def test_rpc_names():
    assert rpc.rpc_name("node_info") == "nodeInfo"
    assert rpc.rpc_name("add_peer") == "addPeer"
    assert rpc.rpc_name("peers") == "peers"


def test_websocket_endpoint_is_loopback(server):
    assert server[1].endpoint().startswith("ws://127.0.0.1:")


def test_call(client):
    assert client.call("test_echo", {"a": [1, "x"]}) == {"a": [1, "x"]}
    assert client.call("test_addNumbers", 2) == 3
    assert client.call("test_addNumbers", 2, 5) == 7
    assert client.call("test_rawBytes") == "0x0102"


def test_call_errors(client):
    with pytest.raises(rpc.RPCError) as e:
        client.call("test_nope")
    assert e.value.code == rpc.methodNotFoundCode
    assert str(e.value) == "the method test_nope does not exist/is not available"
    with pytest.raises(rpc.RPCError) as e:
        client.call("test_addNumbers", 1, 2, 3)
    assert e.value.code == rpc.invalidParamsCode
    with pytest.raises(rpc.RPCError) as e:
        client.call("test_fail")
    assert (e.value.code, str(e.value)) == (rpc.callbackErrorCode, "it failed")
    with pytest.raises(rpc.RPCError) as e:
        client.call("test_ticks", 1)  # a subscription is not a plain method
    assert e.value.code == rpc.methodNotFoundCode


def test_subscription_delivers_in_order_after_the_id(client):
    ch = queue.Queue()
    sub = client.subscribe("test", ch, "ticks", 50)
    assert sub.id.startswith("0x")
    assert [ch.get(timeout=10)["i"] for _ in range(50)] == list(range(50))
    sub.unsubscribe()
    assert sub.err().get(timeout=1) is None  # ended without error


def test_unknown_subscription(client):
    with pytest.raises(rpc.RPCError) as e:
        client.subscribe("test", queue.Queue(), "nothing")
    assert e.value.code == rpc.methodNotFoundCode
    with pytest.raises(rpc.RPCError):
        client.call("test_unsubscribe", "0x1234")


def _raw(ws_url, text):
    with connect(ws_url) as ws:
        ws.send(text)
        return json.loads(ws.recv(timeout=10))


@pytest.mark.parametrize("text, code", [
    ("{", rpc.parseErrorCode),
    ("[]", rpc.invalidRequestCode),
    ('{"jsonrpc": "1.0", "id": 1, "method": "test_echo"}', rpc.invalidRequestCode),
    ('{"jsonrpc": "2.0", "id": 1, "method": 5}', rpc.invalidRequestCode),
    ('{"jsonrpc": "2.0", "id": 1, "method": "test_echo", "params": {"x": 1}}', rpc.invalidParamsCode),
    ('"just a string"', rpc.invalidRequestCode),
])
def test_bad_requests_get_json_errors(server, text, code):
    answer = _raw(server[1].endpoint(), text)
    assert answer["jsonrpc"] == "2.0"
    assert answer["error"]["code"] == code


def test_batch(server):
    answer = _raw(server[1].endpoint(), json.dumps([
        {"jsonrpc": "2.0", "id": 1, "method": "test_echo", "params": [1]},
        {"jsonrpc": "2.0", "method": "test_echo", "params": [2]},  # a notification: no answer
        {"jsonrpc": "2.0", "id": 3, "method": "test_nope"},
    ]))
    assert [a["id"] for a in answer] == [1, 3]
    assert answer[0]["result"] == 1 and answer[1]["error"]["code"] == rpc.methodNotFoundCode


def test_oversized_request_is_refused(server):
    from websockets.exceptions import ConnectionClosed

    with connect(server[1].endpoint(), max_size=None) as ws:
        try:
            ws.send("x" * (rpc.maxRequestContentLength + 1))
            ws.recv(timeout=10)
        except ConnectionClosed as err:
            assert err.rcvd is not None and err.rcvd.code == 1009  # message too big
        else:
            raise AssertionError("the server took a message over its limit")


def test_server_stop_ends_client_and_its_subscriptions():
    s = rpc.Server()
    s.register_name("test", _Echo())
    ws = rpc.WebsocketServer(s)
    c = rpc.dial_websocket(ws.endpoint())
    ch = queue.Queue()
    sub = c.subscribe("test", ch, "ticks", 0)
    ws.stop()
    s.stop()
    assert isinstance(sub.err().get(timeout=10), rpc.ClientQuitError)  # lost, not closed by us
    with pytest.raises(rpc.ClientQuitError):
        c.call("test_echo", 1)
    c.close()


def test_client_close_fails_pending_calls():
    s = rpc.Server()
    started, release = threading.Event(), threading.Event()

    class Slow:
        def wait(self):
            started.set()
            release.wait(10)
            return 1

    s.register_name("slow", Slow())
    c = rpc.dial_in_proc(s)
    errs = []

    def call():
        try:
            c.call("slow_wait")
        except rpc.ClientQuitError as e:
            errs.append(e)

    t = threading.Thread(target=call)
    t.start()
    assert started.wait(10)
    closer = threading.Thread(target=c.close)
    closer.start()
    t.join(10)
    release.set()
    closer.join(10)
    assert errs and not t.is_alive() and not closer.is_alive()
    s.stop()


def test_register_name_needs_methods():
    with pytest.raises(ValueError):
        rpc.Server().register_name("x", object())


def test_subscriptions_per_connection_are_bounded(server):
    c = rpc.dial_websocket(server[1].endpoint())
    try:
        subs = [c.subscribe("test", queue.Queue(), "ticks", 0) for _ in range(rpc.maxSubscriptionsPerConn)]
        with pytest.raises(rpc.RPCError, match="too many subscriptions"):
            c.subscribe("test", queue.Queue(), "ticks", 0)
        subs[0].unsubscribe()
        c.subscribe("test", queue.Queue(), "ticks", 0)  # room again
    finally:
        c.close()


def test_subscribe_as_notification_makes_nothing(server):
    s, ws = server
    with connect(ws.endpoint()) as conn:
        conn.send(json.dumps({"jsonrpc": "2.0", "method": "test_subscribe", "params": ["ticks", 3]}))
        conn.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "test_echo", "params": [1]}))
        assert json.loads(conn.recv(timeout=10)) == {"jsonrpc": "2.0", "id": 1, "result": 1}


def test_dial_websocket_raises_no_deprecation_warning(recwarn):
    """The client uses websockets' current API: no DeprecationWarning while it is used and closed."""
    import warnings

    warnings.simplefilter("always")
    s = rpc.Server()
    s.register_name("test", _Echo())
    ws = rpc.WebsocketServer(s)
    try:
        c = rpc.dial_websocket(ws.endpoint(), origin="http://127.0.0.1")
        assert c.call("test_echo", 1) == 1
        c.close()
    finally:
        ws.stop()
        s.stop()
    deprecations = [str(w.message) for w in recwarn.list if issubclass(w.category, DeprecationWarning)]
    assert deprecations == []
