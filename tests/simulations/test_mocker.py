"""Twin of geth's p2p/simulations/mocker_test.go, then each mocker on its own."""

from __future__ import annotations

import http.client
import json
import queue
import threading
import time
import urllib.parse

from p2p.simulations.events import EventTypeNode
from p2p.simulations.http import Client, SubscribeOpts
from p2p.simulations import mocker
from p2p.simulations.mocker import connect_nodes_in_ring, get_mocker_list, lookup_mocker

from tests.simulations.test_http import _TestServer


def _post_form(url, path, form=None):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        body = urllib.parse.urlencode(form or {}).encode()
        conn.request("POST", path, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
        res = conn.getresponse()
        return res.status, res.read()
    finally:
        conn.close()


def test_mocker():
    s = _TestServer()
    try:
        client = Client(s.url)
        client.start_network()
        try:
            mockerlist = client.get("/mocker")
            assert len(mockerlist) >= 1

            node_count = 10
            events = queue.Queue(maxsize=10)
            sub = client.subscribe_network(events, SubscribeOpts())
            done = threading.Event()
            failure = []

            def watch():
                # every node up, then (nodeCount-1)*2 connection events
                nodemap = set()
                nodes_complete = False
                conn_count = 0
                deadline = time.monotonic() + 60
                while True:
                    try:
                        event = events.get(timeout=max(0.01, deadline - time.monotonic()))
                    except queue.Empty:
                        failure.append("Timeout waiting for nodes being started up!")
                        done.set()
                        return
                    if event.node is not None and event.node.up:
                        nodemap.add(event.node.config.id)
                        if len(nodemap) == node_count:
                            nodes_complete = True
                    elif event.conn is not None and nodes_complete:
                        conn_count += 1
                        if conn_count == (node_count - 1) * 2:
                            done.set()
                            return

            t = threading.Thread(target=watch, name="test.mocker.watch")
            t.start()
            try:
                mockertype = mockerlist[-1]
                if "probabilistic" in mockerlist:
                    mockertype = "probabilistic"
                status, _ = _post_form(s.url, "/mocker/start", {"mocker-type": mockertype, "node-count": node_count})
                assert status == 200
                t.join(90)
                assert not t.is_alive()
            finally:
                sub.unsubscribe()
                t.join()
            assert not failure, failure[0]

            nodes_info = client.get_nodes()
            assert len(nodes_info) == node_count

            status, _ = _post_form(s.url, "/mocker/stop")
            assert status == 200

            status, _ = _post_form(s.url, "/reset")
            assert status == 200
            assert client.get_nodes() == []
        finally:
            client.stop_network()
    finally:
        s.close()


# ---------------------------------------------------------------------------
# Python only


def test_mocker_list_and_lookup():
    assert set(get_mocker_list()) == {"startStop", "probabilistic", "boot"}
    assert lookup_mocker("boot") is mocker.boot
    assert lookup_mocker("nope") is None


def test_connect_nodes_in_ring():
    s = _TestServer()
    try:
        q = queue.Queue()
        sub = s.network.events().subscribe(q)
        try:
            ids = connect_nodes_in_ring(s.network, 4)
            assert len(ids) == 4
            want = {frozenset((ids[i], ids[(i + 1) % 4])) for i in range(4)}
            up = set()
            deadline = time.monotonic() + 30
            while up != want:
                ev = q.get(timeout=max(0.01, deadline - time.monotonic()))
                if ev.conn is not None and ev.conn.up and not ev.control:
                    up.add(frozenset((ev.conn.one, ev.conn.other)))
        finally:
            sub.unsubscribe()
    finally:
        s.close()


def test_start_stop_mocker(monkeypatch):
    """startStop stops a node and starts it again; setting quit ends it at once."""
    monkeypatch.setattr(mocker, "startStopInterval", 0.05)
    monkeypatch.setattr(mocker, "startStopDowntime", 0.05)
    s = _TestServer()
    quit = threading.Event()
    try:
        q = queue.Queue()
        sub = s.network.events().subscribe(q)
        t = threading.Thread(target=mocker.start_stop, args=(s.network, quit, 3), name="test.startStop")
        t.start()
        try:
            seen = []  # (id, up) of the control node events after the ring is built
            deadline = time.monotonic() + 30
            while True:
                ev = q.get(timeout=max(0.01, deadline - time.monotonic()))
                if ev.type == EventTypeNode and not ev.control and ev.node.up:
                    seen.append(ev.node.id())
                if len(seen) > 3:  # a fourth "up": a node came back after being stopped
                    break
        finally:
            quit.set()
            t.join(30)
            assert not t.is_alive()
            sub.unsubscribe()
    finally:
        s.close()


def test_probabilistic_mocker_small_network_ends():
    """departure mocker-range: a 3-node network (geth indexes node 9) runs and ends on quit."""
    s = _TestServer()
    quit = threading.Event()
    try:
        t = threading.Thread(target=mocker.probabilistic, args=(s.network, quit, 3), name="test.probabilistic")
        t.start()
        q = queue.Queue()
        sub = s.network.events().subscribe(q)
        try:
            deadline = time.monotonic() + 30
            ups = 0
            while ups < 3:
                ev = q.get(timeout=max(0.01, deadline - time.monotonic()))
                if ev.conn is not None and ev.conn.up and not ev.control:
                    ups += 1
        finally:
            sub.unsubscribe()
            quit.set()
            t.join(30)
            assert not t.is_alive()
    finally:
        s.close()


def test_mocker_start_stop_over_http_json():
    s = _TestServer()
    try:
        status, body = _post_form(s.url, "/mocker/start", {"mocker-type": "boot", "node-count": "2"})
        assert status == 200
        status, body = _post_form(s.url, "/mocker/stop")
        assert status == 200
        status, body = _post_form(s.url, "/mocker/stop")
        assert status == 500 and json.loads(body)["error"] == "stop channel not initialized"
    finally:
        s.close()
