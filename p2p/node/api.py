"""The admin RPC API of a node (the part of geth's node/api.go that simulations use).

``admin_addPeer``, ``admin_removePeer`` and the ``admin_peerEvents``
subscription (geth's PrivateAdminAPI) and ``admin_peers``, ``admin_nodeInfo``
(PublicAdminAPI), with geth's JSON result shapes; plus the JSON codecs of
NodeInfo and PeerEvent both ends of the RPC share.
"""

from __future__ import annotations

import queue

from p2p.discover.node import hex_id, parse_node
from p2p.log import get_logger
from p2p.node import rpc
from p2p.peer import PeerEvent, PeerEventType
from p2p.server import NodeInfo

log = get_logger("p2p.node")


class PrivateAdminAPI:
    """Peer management of a node (``admin`` namespace)."""

    def __init__(self, node):
        self._node = node

    def add_peer(self, url: str) -> bool:
        """Connect to the enode ``url`` and keep it connected."""
        server = self._running_server()
        server.add_peer(_parse_enode(url))
        return True

    def remove_peer(self, url: str) -> bool:
        """Disconnect the enode ``url`` and stop keeping it connected."""
        server = self._running_server()
        server.remove_peer(_parse_enode(url))
        return True

    @rpc.subscription
    def peer_events(self, notifier: rpc.Notifier) -> rpc.Subscription:
        """A subscription to the server's peer events (add, drop, msgsend, msgrecv)."""
        server = self._running_server()
        rpc_sub = notifier.create_subscription()
        events: "queue.Queue" = queue.Queue()  # the producer's one mailbox
        sub = server.subscribe_events(events)

        def forward():
            try:
                while True:
                    ev = events.get()
                    if ev is None:
                        return
                    try:
                        notifier.notify(rpc_sub.id, ev)
                    except rpc.ClientQuitError:
                        return
            finally:
                sub.unsubscribe()

        # rpcSub.Err() and notifier.Closed() of geth's select, as a message in the mailbox
        rpc_sub.on_done(lambda: events.put(None))
        notifier.go(forward, "node.PrivateAdminAPI.PeerEvents")
        return rpc_sub

    def _running_server(self):
        server = self._node.server()
        if server is None:
            from p2p.node.node import ErrNodeStopped

            raise ErrNodeStopped
        return server


class PublicAdminAPI:
    """Read-only information about a node (``admin`` namespace)."""

    def __init__(self, node):
        self._node = node

    def peers(self) -> list:
        """PeerInfo of every connected peer, as geth's JSON."""
        server = self._node.server()
        if server is None:
            from p2p.node.node import ErrNodeStopped

            raise ErrNodeStopped
        return [p.to_dict() for p in server.peers_info()]

    def node_info(self) -> dict:
        """This node's NodeInfo, as geth's JSON."""
        server = self._node.server()
        if server is None:
            from p2p.node.node import ErrNodeStopped

            raise ErrNodeStopped
        return node_info_to_json(server.node_info())


def _parse_enode(url):
    if not isinstance(url, str):
        raise rpc.RPCError(rpc.invalidParamsCode, "invalid enode: not a string")
    try:
        return parse_node(url)
    except ValueError as err:
        raise rpc.RPCError(rpc.callbackErrorCode, "invalid enode: %s" % err) from None


def node_info_to_json(info: NodeInfo) -> dict:
    """NodeInfo with geth's JSON field names (``listenAddr``)."""
    return {
        "id": info.id,
        "name": info.name,
        "enode": info.enode,
        "ip": info.ip,
        "ports": {"discovery": int(info.ports.get("discovery", 0)), "listener": int(info.ports.get("listener", 0))},
        "listenAddr": info.listen_addr,
        "protocols": rpc.to_json_value(info.protocols),
    }


def node_info_from_json(d: dict) -> NodeInfo:
    """The NodeInfo a peer's ``admin_nodeInfo`` answered; ValueError on a malformed answer."""
    if not isinstance(d, dict):
        raise ValueError("node info is not an object")
    ports = d.get("ports") or {}
    if not isinstance(ports, dict):
        raise ValueError("node info ports is not an object")
    return NodeInfo(
        id=str(d.get("id", "")),
        name=str(d.get("name", "")),
        enode=str(d.get("enode", "")),
        ip=str(d.get("ip", "")),
        ports={"discovery": int(ports.get("discovery", 0)), "listener": int(ports.get("listener", 0))},
        listen_addr=str(d.get("listenAddr", "")),
        protocols=dict(d.get("protocols") or {}),
    )


def peer_event_from_json(d: dict) -> PeerEvent:
    """A PeerEvent from geth's JSON (``type``, ``peer``, ``error``, ``protocol``, ``msg_code``, ``msg_size``)."""
    if not isinstance(d, dict):
        raise ValueError("peer event is not an object")
    return PeerEvent(
        type=PeerEventType(d.get("type")),
        peer=hex_id(d.get("peer", "")),
        error=str(d.get("error", "")),
        protocol=str(d.get("protocol", "")),
        msg_code=d.get("msg_code"),
        msg_size=d.get("msg_size"),
    )
