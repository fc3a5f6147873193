"""Names of the network's events (port of geth's generated p2p/discv5/nodeevent_string.go).

geth's ``stringer`` output names only the timeout events (264, 265, 266); a packet
type prints as ``nodeEvent(<n>)``, as it does in geth's trace logs.

The ``nodeEvent`` type and its values are declared in net.go; they live here so that
``udp`` (which tags packets with them) and ``net`` (whose state machine dispatches on
them) share one definition without importing each other.
"""

from __future__ import annotations

__all__ = [
    "NodeEvent", "pingPacket", "pongPacket", "findnodePacket", "neighborsPacket",
    "findnodeHashPacket", "topicRegisterPacket", "topicQueryPacket", "topicNodesPacket",
    "pongTimeout", "pingTimeout", "neighboursTimeout",
]

_nodeEvent_name = "pongTimeoutpingTimeoutneighboursTimeout"
_nodeEvent_index = (0, 11, 22, 39)


class NodeEvent(int):
    """An event of a node's state machine: a packet type (1..8) or a timeout (264..266)."""

    __slots__ = ()

    def string(self) -> str:
        i = self - 264
        if i < 0 or i >= len(_nodeEvent_index) - 1:
            return "nodeEvent(%d)" % int(self)
        return _nodeEvent_name[_nodeEvent_index[i]:_nodeEvent_index[i + 1]]

    __str__ = string
    __repr__ = string


# Packet types: the first byte after a packet's signature (net.go's const block).
pingPacket = NodeEvent(1)
pongPacket = NodeEvent(2)
findnodePacket = NodeEvent(3)
neighborsPacket = NodeEvent(4)
findnodeHashPacket = NodeEvent(5)
topicRegisterPacket = NodeEvent(6)
topicQueryPacket = NodeEvent(7)
topicNodesPacket = NodeEvent(8)

# Events that are not packets, numbered above the one-byte packet range.
pongTimeout = NodeEvent(264)
pingTimeout = NodeEvent(265)
neighboursTimeout = NodeEvent(266)
