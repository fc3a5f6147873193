"""The ping-pong example service (geth's examples/ping-pong.go has no tests; these are ours)."""

import queue

from p2p.node import api as node_api
from p2p.peer import PeerEventTypeAdd, PeerEventTypeMsgRecv
from p2p.simulations.adapters import types
from p2p.simulations.adapters.inproc import new_sim_adapter
from p2p.simulations.examples import ping_pong


def test_ping_pong_is_registered():
    assert types.serviceFuncs["ping-pong"] is ping_pong.services["ping-pong"]


def test_ping_pong_exchange():
    services = {"ping-pong": lambda ctx: ping_pong.new_ping_pong_service(ctx.config.id, ping_interval=0.05)}
    adapter = new_sim_adapter(services)
    nodes = []
    for _ in range(2):
        conf = types.random_node_config()
        conf.services = ["ping-pong"]
        nodes.append(adapter.new_node(conf))
    for n in nodes:
        n.start(None)
    try:
        events = queue.Queue()
        sub = nodes[0].client().subscribe("admin", events, "peerEvents", decode=node_api.peer_event_from_json)
        nodes[0].client().call("admin_addPeer", nodes[1].addr().decode())
        seen = set()
        while not {ping_pong.pingMsgCode, ping_pong.pongMsgCode} <= seen:
            ev = events.get(timeout=20)
            if ev.type == PeerEventTypeAdd:
                assert ev.peer == nodes[1].id
            if ev.type == PeerEventTypeMsgRecv:
                assert ev.protocol == "ping-pong"
                seen.add(ev.msg_code)
        sub.unsubscribe()
        info = nodes[0].client().call("admin_nodeInfo")
        assert info["protocols"]["ping-pong"]["received"] >= 2
        assert nodes[0].service("ping-pong").info()["received"] >= 2
    finally:
        for n in nodes:
            n.stop()
