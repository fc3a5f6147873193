"""Tests for p2p.discv5.nodeevent_string (geth has none for its generated file)."""

from p2p.discv5 import nodeevent_string


def test_node_event_string():
    assert str(nodeevent_string.pongTimeout) == "pongTimeout"
    assert str(nodeevent_string.pingTimeout) == "pingTimeout"
    assert str(nodeevent_string.neighboursTimeout) == "neighboursTimeout"
    # The generated String knows only the timeouts; packet types print as numbers.
    assert str(nodeevent_string.pingPacket) == "nodeEvent(1)"
    assert str(nodeevent_string.topicNodesPacket) == "nodeEvent(8)"
    assert str(nodeevent_string.NodeEvent(267)) == "nodeEvent(267)"
