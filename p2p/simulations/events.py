"""Events a simulation network emits (geth's p2p/simulations/events.go).

An :class:`Event` says that a node was created, started or stopped, that a
connection between two nodes went up or down, or that a devp2p message went
from one node to another. ``control`` is true for the events the network
emits when it is told to do something (create, stop, connect, disconnect),
false for what it observes happening (a node came up, a peer was added).

The JSON shape is geth's: ``{"type": "node"|"conn"|"msg", "time": RFC 3339,
"control": bool, "node"|"conn"|"msg": {...}}``.
"""

from __future__ import annotations

import copy
import datetime
import re
import time

__all__ = [
    "EventType", "EventTypeNode", "EventTypeConn", "EventTypeMsg",
    "Event", "new_event", "control_event", "format_time", "parse_time",
]

# Go's `type EventType string`: the event types are plain strings.
EventType = str

EventTypeNode: EventType = "node"
EventTypeConn: EventType = "conn"
EventTypeMsg: EventType = "msg"


def new_event(v) -> "Event":
    """An event for ``v`` (a Node, Conn or Msg), holding a copy of it as it is now."""
    from p2p.simulations.network import Conn, Msg, Node

    event = Event(time=time.time_ns())
    if isinstance(v, Node):
        event.type = EventTypeNode
        event.node = copy.copy(v)
    elif isinstance(v, Conn):
        event.type = EventTypeConn
        event.conn = copy.copy(v)
    elif isinstance(v, Msg):
        event.type = EventTypeMsg
        event.msg = copy.copy(v)
    else:
        raise TypeError("invalid event type: %s" % type(v).__name__)
    return event


def control_event(v) -> "Event":
    """Like :func:`new_event`, marked as the result of a controlled action."""
    event = new_event(v)
    event.control = True
    return event


class Event:
    """One network event; exactly one of node, conn and msg is set."""

    __slots__ = ("type", "time", "control", "node", "conn", "msg")

    def __init__(self, type: EventType = "", time: int = 0, control: bool = False,
                 node=None, conn=None, msg=None):
        self.type = type
        self.time = time  # nanoseconds since the epoch (Go's time.Time, to the nanosecond)
        self.control = control
        self.node = node
        self.conn = conn
        self.msg = msg

    def __str__(self):
        if self.type == EventTypeNode:
            return "<node-event> id: %s up: %s" % (self.node.id().terminal_string(), _go_bool(self.node.up))
        if self.type == EventTypeConn:
            return "<conn-event> nodes: %s->%s up: %s" % (
                self.conn.one.terminal_string(), self.conn.other.terminal_string(), _go_bool(self.conn.up))
        if self.type == EventTypeMsg:
            return "<msg-event> nodes: %s->%s proto: %s, code: %d, received: %s" % (
                self.msg.one.terminal_string(), self.msg.other.terminal_string(),
                self.msg.protocol, self.msg.code, _go_bool(self.msg.received))
        return ""

    # Go's encoding/json does these by reflection over the struct tags.
    def to_dict(self) -> dict:
        """The event as geth's JSON object (absent parts left out, as omitempty)."""
        d = {"type": self.type, "time": format_time(self.time), "control": self.control}
        if self.node is not None:
            d["node"] = self.node.to_dict()
        if self.conn is not None:
            d["conn"] = self.conn.to_dict()
        if self.msg is not None:
            d["msg"] = self.msg.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Event":
        """An event from geth's JSON object; ValueError if it is malformed."""
        from p2p.simulations.network import Conn, Msg, Node  # network imports this module

        if not isinstance(d, dict):
            raise ValueError("event: want a JSON object, got %s" % type(d).__name__)
        typ = d.get("type", "")
        if not isinstance(typ, str):
            raise ValueError("event: type is not a string")
        ev = cls(type=typ, control=bool(d.get("control", False)))
        if d.get("time"):
            ev.time = parse_time(d["time"])
        if d.get("node") is not None:
            ev.node = Node.from_dict(d["node"])
        if d.get("conn") is not None:
            ev.conn = Conn.from_dict(d["conn"])
        if d.get("msg") is not None:
            ev.msg = Msg.from_dict(d["msg"])
        return ev


def _go_bool(b) -> str:
    return "true" if b else "false"


# Go marshals time.Time as RFC 3339 with nanoseconds, trailing zeros trimmed.
def format_time(ns: int) -> str:
    """``ns`` (nanoseconds since the epoch) as Go's RFC3339Nano in UTC."""
    secs, frac = divmod(int(ns), 1_000_000_000)
    base = datetime.datetime.fromtimestamp(secs, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        base += ("." + "%09d" % frac).rstrip("0")
    return base + "Z"


_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$")


def parse_time(s) -> int:
    """Nanoseconds since the epoch from an RFC 3339 time; ValueError if it is not one."""
    if not isinstance(s, str):
        raise ValueError("time: want an RFC 3339 string")
    m = _RFC3339.match(s)
    if m is None:
        raise ValueError("time: cannot parse %r as RFC 3339" % s)
    y, mo, d, h, mi, sec = (int(m.group(i)) for i in range(1, 7))
    frac = int((m.group(7) or "").ljust(9, "0") or 0)
    offset = 0
    if m.group(9):
        offset = (int(m.group(10)) * 60 + int(m.group(11))) * 60
        if m.group(9) == "-":
            offset = -offset
    try:
        dt = datetime.datetime(y, mo, d, h, mi, sec, tzinfo=datetime.timezone.utc)
    except ValueError as e:
        raise ValueError("time: %s" % e) from None
    return (int(dt.timestamp()) - offset) * 1_000_000_000 + frac
