"""Limits: N sim-adapter nodes start, connect in a ring and stop with no thread left.

200 nodes by default (about 2 s here); GETHP2P_SIM_RING=N changes the size.
"""

import os
import queue
import threading
import time

from p2p.node import api as node_api
from p2p.peer import PeerEventTypeAdd, PeerEventTypeDrop
from p2p.simulations.adapters import types
from p2p.simulations.adapters.inproc import new_sim_adapter
from p2p.simulations.examples.ping_pong import new_ping_pong_service

RING = int(os.environ.get("GETHP2P_SIM_RING", "200"))


def test_sim_ring_start_connect_stop():
    threads_before = set(threading.enumerate())
    adapter = new_sim_adapter({"ping-pong": lambda ctx: new_ping_pong_service(ctx.config.id)})
    nodes = []
    for i in range(RING):
        conf = types.random_node_config()
        conf.name = "node%03d" % i
        conf.services = ["ping-pong"]
        conf.enable_msg_events = False
        nodes.append(adapter.new_node(conf))
    t0 = time.monotonic()
    started = []
    try:
        for n in nodes:
            n.start(None)
            started.append(n)
        # one events queue for all nodes: (index, event)
        events = queue.Queue()
        subs = []
        for i, n in enumerate(nodes):
            class _Tagged:
                def __init__(self, i):
                    self.i = i

                def put_nowait(self, ev):
                    events.put((self.i, ev))

            subs.append(n.client().subscribe("admin", _Tagged(i), "peerEvents",
                                             decode=node_api.peer_event_from_json))
        for i, n in enumerate(nodes):
            n.client().call("admin_addPeer", nodes[(i + 1) % RING].addr().decode())
        want = {(i, nodes[(i + 1) % RING].id) for i in range(RING)} | {(i, nodes[i - 1].id) for i in range(RING)}
        up = set()
        deadline = time.monotonic() + 60 + RING
        while not want <= up:
            i, ev = events.get(timeout=max(0.1, deadline - time.monotonic()))
            if ev.type == PeerEventTypeAdd:
                up.add((i, ev.peer))
            elif ev.type == PeerEventTypeDrop:
                up.discard((i, ev.peer))
        connected = time.monotonic() - t0
        for i, n in enumerate(nodes):
            peers = {p["id"] for p in n.client().call("admin_peers")}
            assert peers == {nodes[(i + 1) % RING].id.hex(), nodes[i - 1].id.hex()}
        for s in subs:
            s.unsubscribe()
    finally:
        for n in started:
            n.stop()
    print("%d nodes started and ring-connected in %.1fs" % (RING, connected))
    deadline = time.monotonic() + 30
    for t in threading.enumerate():
        if t not in threads_before:
            t.join(max(0.0, deadline - time.monotonic()))
    left = [t.name for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert not left, "threads left after stopping %d nodes: %s" % (RING, left[:10])
