"""Twins of geth's p2p/simulations/network_test.go, then the Network's own behaviour."""

from __future__ import annotations

import queue
import threading

import pytest

from p2p.discover.node import NodeID
from p2p.simulations.adapters import types as adapters
from p2p.simulations.adapters.inproc import new_sim_adapter
from p2p.simulations.events import EventTypeConn, EventTypeNode, control_event, new_event
from p2p.simulations.network import Conn, Msg, Network, NetworkConfig, Node, Snapshot, conn_label, new_network
from p2p.simulations.simulation import Context, Expectation, Step, new_simulation

from tests.simulations.test_http import new_test_service


def _network():
    adapter = new_sim_adapter({"test": new_test_service})
    return new_network(adapter, NetworkConfig(default_service="test"))


def test_network_simulation():
    """20 nodes in a ring: every node has two peers, and the snapshot holds the ring."""
    network = _network()
    try:
        node_count = 20
        ids = []
        for _ in range(node_count):
            conf = adapters.random_node_config()
            node = network.new_node_with_config(conf)
            network.start(node.id())
            ids.append(node.id())

        def action(ctx):
            for i, id in enumerate(ids):
                network.connect(id, ids[(i + 1) % len(ids)])

        def check(ctx, id):
            err = ctx.err()
            if err is not None:
                raise err
            node = network.get_node(id)
            if node is None:
                raise ValueError("unknown node: %s" % id)
            peer_count = node.client().call("test_peerCount")
            if peer_count < 2:
                return False
            if peer_count == 2:
                return True
            raise ValueError("unexpected peerCount: %d" % peer_count)

        ctx = Context(timeout=60)
        trigger = queue.Queue()
        stop = threading.Event()
        t = threading.Thread(target=trigger_checks, args=(ctx, stop, ids, trigger, 0.1), name="test.triggerChecks")
        t.start()
        try:
            result = new_simulation(network).run(ctx, Step(action=action, trigger=trigger,
                                                           expect=Expectation(nodes=ids, check=check)))
        finally:
            stop.set()
            t.join()
        assert result.error is None, "simulation failed: %s" % result.error
        assert set(result.passes) == set(ids)
        assert result.started_at <= result.finished_at
        assert any(e.type == EventTypeConn and e.conn.up and not e.control for e in result.network_events)

        snap = network.snapshot()
        assert len(snap.nodes) == node_count
        assert len(snap.conns) == node_count
        for i, id in enumerate(ids):
            conn = snap.conns[i]
            assert conn.one == id, "conn[%d].one" % i
            assert conn.other == ids[(i + 1) % len(ids)], "conn[%d].other" % i
    finally:
        network.shutdown()


def trigger_checks(ctx: Context, stop: threading.Event, ids, trigger: queue.Queue, interval: float) -> None:
    """Every ``interval`` seconds, ask for a check of every node, until the context or ``stop`` ends."""
    while not stop.wait(interval) and not ctx.done():
        for id in ids:
            trigger.put(id)


# ---------------------------------------------------------------------------
# Python only


def _events(network):
    q = queue.Queue()
    return q, network.events().subscribe(q)


def _next(q, pred, timeout=20.0):
    while True:
        ev = q.get(timeout=timeout)
        if pred(ev):
            return ev


def test_network_node_lifecycle_events():
    network = _network()
    q, sub = _events(network)
    try:
        conf = adapters.random_node_config()
        conf.name = "alice"
        node = network.new_node_with_config(conf)
        assert conf.services == ["test"]  # the default service
        ev = q.get(timeout=5)
        assert (ev.type, ev.control, ev.node.up, ev.node.id()) == (EventTypeNode, True, False, conf.id)
        with pytest.raises(ValueError, match="already exists"):
            network.new_node_with_config(conf)
        other = adapters.random_node_config()
        other.name = "alice"
        with pytest.raises(ValueError, match='name "alice" already exists'):
            network.new_node_with_config(other)

        network.start(node.id())
        ev = q.get(timeout=5)
        assert (ev.type, ev.control, ev.node.up) == (EventTypeNode, False, True)
        with pytest.raises(ValueError, match="already up"):
            network.start(node.id())
        assert network.get_node_by_name("alice") is node
        assert network.get_node(conf.id) is node
        assert network.get_nodes() == [node]
        assert node.node_info().name == "alice"

        network.stop(node.id())
        # the control event and the watcher's own "down", as in geth; the node is stopped
        # outside the lock (departure sim-stop-unlocked), so they may come in either order
        evs = [q.get(timeout=5), q.get(timeout=5)]
        assert sorted((ev.control, ev.node.up) for ev in evs) == [(False, False), (True, False)]
        with pytest.raises(ValueError, match="already down"):
            network.stop(node.id())
        # and up again: a restart is not marked down by the old watcher
        network.start(node.id())
        assert network.get_node(conf.id).up
        with pytest.raises(ValueError, match="does not exist"):
            network.start(NodeID(b"\x01" * 64))
    finally:
        sub.unsubscribe()
        network.shutdown()


def test_network_connect_disconnect_and_messages():
    network = _network()
    q, sub = _events(network)
    try:
        ids = []
        for _ in range(2):
            node = network.new_node_with_config(adapters.random_node_config())
            network.start(node.id())
            ids.append(node.id())
        with pytest.raises(ValueError, match="refusing to connect to self"):
            network.connect(ids[0], ids[0])
        network.connect(ids[0], ids[1])
        _next(q, lambda e: e.type == EventTypeConn and e.conn.up and not e.control)
        # random_node_config turns message events on: the handshakes show up as msg events
        msg = _next(q, lambda e: e.msg is not None and e.msg.protocol == "test")
        assert {msg.msg.one, msg.msg.other} == set(ids)
        with pytest.raises(ValueError, match="already connected"):
            network.connect(ids[1], ids[0])
        assert network.get_conn(ids[1], ids[0]) is network.get_conn(ids[0], ids[1])
        network.disconnect(ids[0], ids[1])
        _next(q, lambda e: e.type == EventTypeConn and not e.conn.up and not e.control)
        with pytest.raises(ValueError, match="already disconnected"):
            network.disconnect(ids[0], ids[1])
        # a disconnect lifts the dial ban at once; picking the pair again starts a new one
        assert network.init_conn(ids[1], ids[0]) is network.get_conn(ids[0], ids[1])
        with pytest.raises(ValueError, match="recently attempted"):
            network.init_conn(ids[0], ids[1])
    finally:
        sub.unsubscribe()
        network.shutdown()


def test_network_connect_needs_nodes_up():
    network = _network()
    try:
        a = network.new_node_with_config(adapters.random_node_config())
        b = network.new_node_with_config(adapters.random_node_config())
        network.start(a.id())
        with pytest.raises(ValueError, match="nodes not up"):
            network.connect(a.id(), b.id())
        with pytest.raises(ValueError, match="does not exist"):
            network.connect(a.id(), NodeID(b"\x02" * 64))
        with pytest.raises(ValueError, match="does not exist"):
            network.disconnect(NodeID(b"\x02" * 64), b.id())
        with pytest.raises(ValueError, match="already disconnected"):
            network.disconnect(a.id(), b.id())  # the failed connect left a model of the pair
    finally:
        network.shutdown()


def test_network_snapshot_json_round_trip():
    network = _network()
    try:
        ids = []
        for _ in range(3):
            node = network.new_node_with_config(adapters.random_node_config())
            network.start(node.id())
            ids.append(node.id())
        q, sub = _events(network)
        network.connect(ids[0], ids[1])
        _next(q, lambda e: e.type == EventTypeConn and e.conn.up and not e.control)
        sub.unsubscribe()
        network.stop(ids[2])
        snap = network.snapshot()
        d = snap.to_dict()
        assert [n["node"]["up"] for n in d["nodes"]] == [True, True, False]
        assert d["nodes"][0]["node"]["config"]["id"] == ids[0].hex()
        assert set(d["nodes"][0]["node"]) == {"info", "config", "up"}
        back = Snapshot.from_dict(d)
        assert [n.node.config.id for n in back.nodes] == ids
        assert [(c.one, c.other, c.up) for c in back.conns] == [(ids[0], ids[1], True)]
        assert back.nodes[0].snapshots == snap.nodes[0].snapshots
        for bad in ({"nodes": 1}, {"nodes": [{"node": {}}]}, {"conns": [{"one": "zz"}]}, [],
                    {"nodes": [{"node": {"config": {}}, "snapshots": {"test": "!!"}}]}):
            with pytest.raises(ValueError):
                Snapshot.from_dict(bad)
    finally:
        network.shutdown()


def test_network_reset_and_shutdown_end_threads():
    network = _network()
    node = network.new_node_with_config(adapters.random_node_config())
    network.start(node.id())
    network.reset()  # departure reset-stops-nodes
    assert network.get_nodes() == [] and network.conns == []
    assert node.node.server() is None
    network.shutdown()  # the conftest checks that every thread has ended


def test_network_subscribe_executes_control_events():
    """Control events replayed into Subscribe rebuild a network (geth's executeControlEvent)."""
    src = _network()
    dst = _network()
    q, sub = _events(src)
    events = queue.Queue()
    t = threading.Thread(target=dst.subscribe, args=(events,), name="test.Network.Subscribe")
    t.start()
    try:
        a = src.new_node_with_config(adapters.random_node_config())
        ev = q.get(timeout=5)
        assert ev.control
        # the creation event says "down"; a node event with up=true creates and starts
        up = control_event(Node(config=a.config, up=True))
        events.put(up)
        deadline = 20.0
        dq, dsub = _events(dst)
        try:
            _next(dq, lambda e: e.type == EventTypeNode and e.node.up, deadline)
        finally:
            dsub.unsubscribe()
        assert dst.get_node(a.id()).up
        events.put(new_event(Msg(one=a.id(), other=a.id())))  # not a control event: ignored
    finally:
        sub.unsubscribe()
        src.shutdown()
        dst.shutdown()  # ends Subscribe
        t.join(10)
        assert not t.is_alive()


def test_conn_label_and_strings():
    a, b = NodeID(b"\x01" * 64), NodeID(b"\x02" * 64)
    assert conn_label(a, b) == conn_label(b, a) == "%s-%s" % (a, b)
    c = Conn(one=a, other=b, up=True)
    assert str(c) == "Conn %s->%s" % (a.terminal_string(), b.terminal_string())
    m = Msg(one=a, other=b, protocol="test", code=3)
    assert str(m) == "Msg(3) %s->%s" % (a.terminal_string(), b.terminal_string())
    ev = new_event(m)
    assert str(ev) == "<msg-event> nodes: %s->%s proto: test, code: 3, received: false" % (
        a.terminal_string(), b.terminal_string())
    assert Network.from_dict({"id": "x", "nodes": None, "conns": [c.to_dict()]}).conns == [c]
