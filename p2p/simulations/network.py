"""A simulated p2p network: nodes, the connections between them, and its events.

The twin of geth's p2p/simulations/network.go. A :class:`Network` owns one
node adapter (``adapters.inproc.SimAdapter`` runs every node in this process,
``adapters.exec.ExecAdapter`` every node in a process of its own) and keeps
the model of the network: which nodes exist and are up, which pairs are
connected. It drives the nodes over their RPC API (``admin_addPeer``,
``admin_removePeer``) and learns what happens from each node's
``admin_peerEvents`` subscription, emitting :class:`~p2p.simulations.events.Event`
values on its feed.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import queue
import threading
import time
from typing import Dict, List, Optional

from p2p.discover.node import NodeID, hex_id
from p2p.event import Feed
from p2p.log import get_logger
from p2p.node.api import node_info_to_json, peer_event_from_json
from p2p.peer import PeerEvent, PeerEventTypeAdd, PeerEventTypeDrop, PeerEventTypeMsgRecv, PeerEventTypeMsgSend
from p2p.server import NodeInfo
from p2p.simulations.adapters.types import NodeConfig
from p2p.simulations.events import EventTypeConn, EventTypeMsg, EventTypeNode, control_event, new_event

__all__ = [
    "DialBanTimeout", "NetworkConfig", "Network", "new_network", "Node", "Conn", "Msg",
    "conn_label", "Snapshot", "NodeSnapshot",
]

log = get_logger("simulations")

# How many nodes Network.shutdown stops at the same time (an exec child takes about a second).
shutdownWorkers = 16

# How long after a connection attempt (or a disconnect) the same pair may not be dialed again.
DialBanTimeout = 0.2


@dataclasses.dataclass
class NetworkConfig:
    """What a network is created with: its ID and the service of nodes that name none."""

    id: str = ""
    default_service: str = ""


def new_network(node_adapter, conf: NetworkConfig) -> "Network":
    """A network using ``node_adapter`` to make its nodes (geth's NewNetwork)."""
    return Network(node_adapter, conf)


class Network:
    """A simulation network: a collection of nodes and the connections between them.

    Geth embeds NetworkConfig in Network; here it is the ``network_config``
    field, with ``id`` and ``default_service`` read through to it.
    """

    def __init__(self, node_adapter, conf: NetworkConfig):
        self.network_config = dataclasses.replace(conf)
        self.nodes: List[Node] = []
        self.node_map: Dict[NodeID, int] = {}
        self.conns: List[Conn] = []
        self.conn_map: Dict[str, int] = {}
        self.node_adapter = node_adapter
        self._events = Feed()  # geth's events field; events() returns it
        self.lock = threading.Lock()
        self.quitc = threading.Event()
        # Python only: the watchPeerEvents threads (node ID -> (thread, subscription)),
        # so that stop and shutdown can end them, and the queues Subscribe reads.
        self._watchers: Dict[NodeID, tuple] = {}
        self._watchers_lock = threading.Lock()
        self._subscribers: List[queue.Queue] = []

    @property
    def id(self) -> str:
        return self.network_config.id

    @property
    def default_service(self) -> str:
        return self.network_config.default_service

    def events(self) -> Feed:
        """The network's output feed of events."""
        return self._events

    def new_node_with_config(self, conf: NodeConfig) -> "Node":
        """Add a node made from ``conf``; ValueError if its ID or name is taken."""
        with self.lock:
            if conf.reachable is None:
                def reachable(other_id, conf=conf):
                    try:
                        self.init_conn(conf.id, other_id)
                    except ValueError:
                        if bytes(conf.id) < bytes(other_id):
                            return False
                    return True

                conf.reachable = reachable

            if self._get_node(conf.id) is not None:
                raise ValueError('node with ID "%s" already exists' % conf.id.hex())
            if self._get_node_by_name(conf.name) is not None:
                raise ValueError('node with name "%s" already exists' % conf.name)

            if not conf.services:
                conf.services = [self.default_service]

            adapter_node = self.node_adapter.new_node(conf)
            node = Node(node=adapter_node, config=conf)
            log.trace("node %s created" % conf.id.hex())
            self.node_map[conf.id] = len(self.nodes)
            self.nodes.append(node)

            self._events.send(control_event(node))
            return node

    def config(self) -> NetworkConfig:
        return self.network_config

    def start_all(self) -> None:
        """Start every node that is down."""
        for node in list(self.nodes):
            if node.up:
                continue
            self.start(node.id())

    def stop_all(self) -> None:
        """Stop every node that is up."""
        for node in list(self.nodes):
            if not node.up:
                continue
            self.stop(node.id())

    def start(self, id: NodeID) -> None:
        """Start the node ``id``; ValueError if it does not exist or is up."""
        self._start_with_snapshots(id, None)

    def _start_with_snapshots(self, id: NodeID, snapshots: Optional[Dict[str, bytes]]) -> None:
        with self.lock:
            node = self._get_node(id)
            down = node is not None and not node.up
        if down:
            self._join_watcher(id)  # Python only: an old run's watcher must not mark the new run down
        with self.lock:
            node = self._get_node(id)
            if node is None:
                raise ValueError("node %s does not exist" % id.hex())
            if node.up:
                raise ValueError("node %s already up" % id.hex())
            log.trace("starting node %s: %s using %s" % (id.hex(), node.up, self.node_adapter.name()))
            try:
                node.start(snapshots)
            except Exception as e:
                log.warn("start up failed: %s" % e)
                raise
            node.up = True
            log.info("started node %s: %s" % (id.hex(), node.up))

            self._events.send(new_event(node))

            try:
                client = node.client()
            except Exception as e:
                raise ValueError("error getting rpc client  for node %s: %s" % (id.hex(), e)) from e
            events = _Mailbox()
            try:
                sub = client.subscribe("admin", events, "peerEvents", decode=peer_event_from_json)
            except Exception as e:
                raise ValueError("error getting peer events for node %s: %s" % (id.hex(), e)) from e
            t = threading.Thread(target=self._watch_peer_events, args=(id, events, sub),
                                 name="simulations.Network.watchPeerEvents", daemon=True)
            with self._watchers_lock:
                self._watchers[id] = (t, sub)
            t.start()

    def _watch_peer_events(self, id: NodeID, events: "_Mailbox", sub) -> None:
        # Go selects on the events channel and sub.Err(); a helper thread turns the
        # end of the subscription into a message in the same mailbox.
        errw = threading.Thread(target=_forward_err, args=(sub, events),
                                name="simulations.Network.watchPeerEvents.err", daemon=True)
        errw.start()
        try:
            while True:
                kind, value = events.get()
                if kind == "err":
                    if value is not None:
                        log.error("error getting peer events for node %s" % id.hex(), err=value)
                    return
                try:
                    event = _peer_event(value)
                except (TypeError, ValueError, KeyError) as e:
                    log.error("bad peer event from node %s" % id.hex(), err=e)
                    continue
                peer = event.peer
                try:
                    if event.type == PeerEventTypeAdd:
                        self.did_connect(id, peer)
                    elif event.type == PeerEventTypeDrop:
                        self.did_disconnect(id, peer)
                    elif event.type == PeerEventTypeMsgSend:
                        self.did_send(id, peer, event.protocol, event.msg_code)
                    elif event.type == PeerEventTypeMsgRecv:
                        self.did_receive(peer, id, event.protocol, event.msg_code)
                except ValueError as e:
                    # geth ignores the errors of the Did* calls; they are worth a trace line
                    log.trace("peer event not applied", node=id.terminal_string(), err=e)
        except Exception as e:  # a bug here must not leave the node marked up silently
            log.error("watchPeerEvents failed", node=id, err=e, exc_info=True)
        finally:
            sub.unsubscribe()
            errw.join()
            # assume the node is now down
            with self.lock:
                node = self._get_node(id)
                if node is None:
                    log.error("Can not find node for id", id=id)
                else:
                    node.up = False
                    self._events.send(new_event(node))

    def _join_watcher(self, id: NodeID) -> None:
        # Python only: wait for the watchPeerEvents thread of an earlier run of ``id``.
        with self._watchers_lock:
            w = self._watchers.pop(id, None)
        if w is not None and w[0] is not threading.current_thread():
            w[0].join()

    def _end_watcher(self, id: NodeID) -> None:
        # Python only: a stopped node's watcher ends now rather than whenever its
        # RPC subscription notices, so a quick restart cannot be marked down by it.
        with self._watchers_lock:
            w = self._watchers.get(id)
        if w is not None:
            w[1].unsubscribe()
        self._join_watcher(id)

    def stop(self, id: NodeID) -> None:
        """Stop the node ``id``; ValueError if it does not exist or is down."""
        with self.lock:
            node = self._get_node(id)
            if node is None:
                raise ValueError("node %s does not exist" % id.hex())
            if not node.up:
                raise ValueError("node %s already down" % id.hex())
            # departure: sim-stop-unlocked: the node is stopped without holding the network's lock
            node.up = False
        try:
            node.stop()
        except Exception:
            with self.lock:
                node.up = True
            raise
        log.info("stop node %s: %s" % (id.hex(), node.up))
        self._events.send(control_event(node))
        self._end_watcher(id)

    def connect(self, one_id: NodeID, other_id: NodeID) -> None:
        """Connect two nodes: ``admin_addPeer`` on ``one`` with ``other``'s enode URL."""
        log.debug("connecting %s to %s" % (one_id.hex(), other_id.hex()))
        conn = self.init_conn(one_id, other_id)
        client = conn._one.client()
        self._events.send(control_event(conn))
        client.call("admin_addPeer", conn._other.addr().decode())

    def disconnect(self, one_id: NodeID, other_id: NodeID) -> None:
        """Disconnect two nodes: ``admin_removePeer`` on ``one`` with ``other``'s enode URL."""
        conn = self.get_conn(one_id, other_id)
        if conn is None:
            raise ValueError("connection between %s and %s does not exist" % (one_id.hex(), other_id.hex()))
        if not conn.up:
            raise ValueError("%s and %s already disconnected" % (one_id.hex(), other_id.hex()))
        client = conn._one.client()
        self._events.send(control_event(conn))
        client.call("admin_removePeer", conn._other.addr().decode())

    def did_connect(self, one: NodeID, other: NodeID) -> None:
        """Record that ``one`` connected to ``other``."""
        with self.lock:
            try:
                conn = self._get_or_create_conn(one, other)
            except ValueError:
                raise ValueError("connection between %s and %s does not exist" % (one.hex(), other.hex())) from None
            if conn.up:
                raise ValueError("%s and %s already connected" % (one.hex(), other.hex()))
            conn.up = True
            self._events.send(new_event(conn))

    def did_disconnect(self, one: NodeID, other: NodeID) -> None:
        """Record that ``one`` disconnected from ``other``."""
        with self.lock:
            conn = self._get_conn(one, other)
            if conn is None:
                raise ValueError("connection between %s and %s does not exist" % (one.hex(), other.hex()))
            if not conn.up:
                raise ValueError("%s and %s already disconnected" % (one.hex(), other.hex()))
            conn.up = False
            conn.initiated = time.monotonic() - DialBanTimeout
            self._events.send(new_event(conn))

    def did_send(self, sender: NodeID, receiver: NodeID, proto: str, code: int) -> None:
        """Record that ``sender`` sent a message to ``receiver``."""
        msg = Msg(one=sender, other=receiver, protocol=proto, code=code, received=False)
        self._events.send(new_event(msg))

    def did_receive(self, sender: NodeID, receiver: NodeID, proto: str, code: int) -> None:
        """Record that ``receiver`` received a message from ``sender``."""
        msg = Msg(one=sender, other=receiver, protocol=proto, code=code, received=True)
        self._events.send(new_event(msg))

    def get_node(self, id: NodeID) -> Optional["Node"]:
        with self.lock:
            return self._get_node(id)

    def get_node_by_name(self, name: str) -> Optional["Node"]:
        with self.lock:
            return self._get_node_by_name(name)

    def get_nodes(self) -> List["Node"]:
        with self.lock:
            return list(self.nodes)

    def _get_node(self, id: NodeID) -> Optional["Node"]:
        i = self.node_map.get(id)
        if i is None:
            return None
        return self.nodes[i]

    def _get_node_by_name(self, name: str) -> Optional["Node"]:
        for node in self.nodes:
            if node.config.name == name:
                return node
        return None

    def get_conn(self, one_id: NodeID, other_id: NodeID) -> Optional["Conn"]:
        """The connection between the two nodes, whichever of them dialed."""
        with self.lock:
            return self._get_conn(one_id, other_id)

    def get_or_create_conn(self, one_id: NodeID, other_id: NodeID) -> "Conn":
        with self.lock:
            return self._get_or_create_conn(one_id, other_id)

    def _get_or_create_conn(self, one_id: NodeID, other_id: NodeID) -> "Conn":
        conn = self._get_conn(one_id, other_id)
        if conn is not None:
            return conn
        one = self._get_node(one_id)
        if one is None:
            raise ValueError("node %s does not exist" % one_id.hex())
        other = self._get_node(other_id)
        if other is None:
            raise ValueError("node %s does not exist" % other_id.hex())
        conn = Conn(one=one_id, other=other_id, _one=one, _other=other)
        label = conn_label(one_id, other_id)
        self.conn_map[label] = len(self.conns)
        self.conns.append(conn)
        return conn

    def _get_conn(self, one_id: NodeID, other_id: NodeID) -> Optional["Conn"]:
        i = self.conn_map.get(conn_label(one_id, other_id))
        if i is None:
            return None
        return self.conns[i]

    def init_conn(self, one_id: NodeID, other_id: NodeID) -> "Conn":
        """The connection model for the pair, made ready to dial.

        ValueError if the two are one node, already connected, tried less than
        DialBanTimeout ago, or not both up. The order of the two does not matter.
        Like geth this uses the simulation as an oracle: a node is not told to
        dial a peer that has just tried to dial it.
        """
        with self.lock:
            if one_id == other_id:
                raise ValueError("refusing to connect to self %s" % one_id.hex())
            conn = self._get_or_create_conn(one_id, other_id)
            if conn.up:
                raise ValueError("%s and %s already connected" % (one_id.hex(), other_id.hex()))
            if time.monotonic() - conn.initiated < DialBanTimeout:
                raise ValueError("connection between %s and %s recently attempted" % (one_id.hex(), other_id.hex()))
            try:
                conn._nodes_up()
            except ValueError as e:
                log.trace("nodes not up: %s" % e)
                raise ValueError("nodes not up: %s" % e) from None
            log.debug("InitConn - connection initiated")
            conn.initiated = time.monotonic()
            return conn

    def shutdown(self) -> None:
        """Stop every node and end the network's threads."""
        todo: queue.SimpleQueue = queue.SimpleQueue()
        for node in list(self.nodes):
            todo.put(node)

        def stop_nodes():
            while True:
                try:
                    node = todo.get_nowait()
                except queue.Empty:
                    return
                log.debug("stopping node %s" % node.id().terminal_string())
                try:
                    node.stop()
                except Exception as e:
                    log.warn("error stopping node %s" % node.id().terminal_string(), err=e)

        # departure: shutdown-parallel: up to shutdownWorkers nodes stop at once (geth stops them one by one)
        workers = [threading.Thread(target=stop_nodes, name="simulations.Network.Shutdown", daemon=True)
                   for _ in range(min(shutdownWorkers, len(self.nodes)))]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        self.quitc.set()
        with self.lock:
            subscribers = list(self._subscribers)
        for q in subscribers:
            q.put(None)  # wakes Subscribe, as closing quitc does in geth
        # Python only: the watchers end with their nodes' subscriptions; wait for them.
        with self._watchers_lock:
            watchers = list(self._watchers.values())
            self._watchers.clear()
        for t, sub in watchers:
            sub.unsubscribe()
            if t is not threading.current_thread():
                t.join()

    def reset(self) -> None:
        """Stop the running nodes, then forget every node and connection."""
        # departure: reset-stops-nodes: geth forgets running nodes without stopping them (they leak)
        for node in self.get_nodes():
            if node.up:
                try:
                    self.stop(node.id())
                except Exception as e:
                    log.warn("error stopping node %s" % node.id().terminal_string(), err=e)
        with self.lock:
            self.conn_map = {}
            self.node_map = {}
            self.nodes = []
            self.conns = []

    def snapshot(self) -> "Snapshot":
        """The network as it is now: nodes (with their services' state) and connections."""
        with self.lock:
            snap = Snapshot(nodes=[], conns=[])
            for node in self.nodes:
                ns = NodeSnapshot(node=_copy_node(node))
                snap.nodes.append(ns)
                if not node.up:
                    continue
                ns.snapshots = node.snapshots()
            for conn in self.conns:
                # departure: snapshot-up-conns: only connections that are up (geth 1.8.16 takes all, and Load redials them)
                if conn.up:
                    snap.conns.append(dataclasses.replace(conn))
            return snap

    def load(self, snap: "Snapshot") -> None:
        """Create the snapshot's nodes, start those that were up, connect its connections."""
        for n in snap.nodes:
            self.new_node_with_config(n.node.config)
            if not n.node.up:
                continue
            self._start_with_snapshots(n.node.config.id, n.snapshots)
        for conn in snap.conns:
            one, other = self.get_node(conn.one), self.get_node(conn.other)
            if one is None or other is None or not one.up or not other.up:
                # a connection to a node that is down would make the load fail
                continue
            self.connect(conn.one, conn.other)

    def subscribe(self, events: queue.Queue) -> None:
        """Read events from ``events`` and carry out the control events, until shutdown.

        ``None`` in the queue ends the loop, as a closed channel does in geth.
        """
        with self.lock:
            self._subscribers.append(events)
        try:
            while not self.quitc.is_set():
                event = events.get()
                if event is None or self.quitc.is_set():
                    return
                if event.control:
                    self._execute_control_event(event)
        finally:
            with self.lock:
                self._subscribers.remove(events)

    def _execute_control_event(self, event) -> None:
        log.trace("execute control event", type=event.type, event=event)
        if event.type == EventTypeNode:
            try:
                self._execute_node_event(event)
            except ValueError as e:
                log.error("error executing node event", event=event, err=e)
        elif event.type == EventTypeConn:
            try:
                self._execute_conn_event(event)
            except ValueError as e:
                log.error("error executing conn event", event=event, err=e)
        elif event.type == EventTypeMsg:
            log.warn("ignoring control msg event")

    def _execute_node_event(self, e) -> None:
        if not e.node.up:
            self.stop(e.node.id())
            return
        self.new_node_with_config(e.node.config)
        self.start(e.node.id())

    def _execute_conn_event(self, e) -> None:
        if e.conn.up:
            self.connect(e.conn.one, e.conn.other)
        else:
            self.disconnect(e.conn.one, e.conn.other)

    # Go's encoding/json of Network (NetworkConfig's fields inline, then nodes and conns).
    def to_dict(self) -> dict:
        with self.lock:
            d = {"id": self.id}
            if self.default_service:
                d["default_service"] = self.default_service
            # Go's nil slices encode as null: a network with no nodes has "nodes": null
            d["nodes"] = [n.to_dict() for n in self.nodes] or None
            d["conns"] = [c.to_dict() for c in self.conns] or None
            return d

    @classmethod
    def from_dict(cls, d: dict) -> "Network":
        """A network model decoded from JSON (no adapter: its nodes cannot be started)."""
        if not isinstance(d, dict):
            raise ValueError("network: want a JSON object")
        net = cls(None, NetworkConfig(id=_str(d.get("id", "")), default_service=_str(d.get("default_service", ""))))
        for nd in d.get("nodes") or []:
            node = Node.from_dict(nd)
            if node.config is not None:
                net.node_map[node.config.id] = len(net.nodes)
            net.nodes.append(node)
        for cd in d.get("conns") or []:
            conn = Conn.from_dict(cd)
            net.conn_map[conn_label(conn.one, conn.other)] = len(net.conns)
            net.conns.append(conn)
        return net


class _Mailbox:
    """The watchPeerEvents loop's one mailbox: peer events arrive through put()."""

    __slots__ = ("_q",)

    def __init__(self):
        self._q = queue.SimpleQueue()

    def put(self, item, block=True, timeout=None):  # what the RPC subscription delivers
        self._q.put(("event", item))

    put_nowait = put

    def post(self, kind, value):
        self._q.put((kind, value))

    def get(self):
        return self._q.get()


def _forward_err(sub, mailbox: _Mailbox) -> None:
    # The end of the subscription (sub.Err() in geth's select) as a mailbox message.
    mailbox.post("err", sub.err().get())


def _peer_event(value) -> PeerEvent:
    """A PeerEvent from what the RPC subscription delivers (the object or its JSON)."""
    if isinstance(value, PeerEvent):
        ev = value
    elif isinstance(value, dict):
        ev = PeerEvent(type=value["type"], peer=value.get("peer"), error=value.get("error", ""),
                       protocol=value.get("protocol", ""), msg_code=value.get("msg_code"),
                       msg_size=value.get("msg_size"))
    else:
        raise TypeError("peer event: unexpected %s" % type(value).__name__)
    peer = ev.peer
    if isinstance(peer, str):
        peer = hex_id(peer)
    elif not isinstance(peer, NodeID):
        peer = NodeID(bytes(peer))
    return dataclasses.replace(ev, type=str(ev.type), peer=peer)


class Node:
    """An adapter's node as the network tracks it: its config and whether it is up.

    Geth embeds adapters.Node; the methods of the adapter's node (addr, client,
    serve_rpc, start, stop, snapshots) are reached through ``self.node``.
    """

    __slots__ = ("node", "config", "up")

    def __init__(self, node=None, config: Optional[NodeConfig] = None, up: bool = False):
        self.node = node
        self.config = config
        self.up = up

    def __getattr__(self, name):
        # the embedded adapters.Node's methods
        if name.startswith("__"):
            raise AttributeError(name)
        node = object.__getattribute__(self, "node")
        if node is None:
            raise AttributeError("%s (the node has no adapter node)" % name)
        return getattr(node, name)

    def __copy__(self):
        return Node(node=self.node, config=self.config, up=self.up)

    def id(self) -> NodeID:
        return self.config.id

    def __str__(self):
        return "Node %s" % self.id().terminal_string()

    def node_info(self) -> Optional[NodeInfo]:
        """The node's NodeInfo with the network's name for it (None before it has a node)."""
        if self.node is None:
            return None
        info = self.node.node_info()
        info.name = self.config.name
        return info

    def marshal_json(self) -> bytes:
        """Geth's JSON of a node: ``info`` (if any), ``config``, ``up``."""
        return json.dumps(self.to_dict()).encode()

    def to_dict(self) -> dict:
        d = {}
        info = self.node_info()
        if info is not None:
            d["info"] = node_info_to_json(info)
        if self.config is not None:
            d["config"] = self.config.marshal_json()
        d["up"] = self.up
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Node":
        if not isinstance(d, dict):
            raise ValueError("node: want a JSON object")
        conf = None
        if d.get("config") is not None:
            conf = NodeConfig.unmarshal_json(d["config"])
        return cls(config=conf, up=bool(d.get("up", False)))


def _copy_node(node: Node) -> Node:
    return Node(node=node.node, config=node.config, up=node.up)


@dataclasses.dataclass
class Conn:
    """A connection between two nodes: ``one`` dialed ``other``."""

    one: NodeID = dataclasses.field(default_factory=NodeID)
    other: NodeID = dataclasses.field(default_factory=NodeID)
    up: bool = False
    # when the pair was last picked to dial (time.monotonic()); Go's zero time is long ago
    initiated: float = dataclasses.field(default=float("-inf"), compare=False, repr=False)
    _one: Optional[Node] = dataclasses.field(default=None, compare=False, repr=False)
    _other: Optional[Node] = dataclasses.field(default=None, compare=False, repr=False)

    def _nodes_up(self) -> None:
        """ValueError unless both nodes are up."""
        if not self._one.up:
            raise ValueError("one %s is not up" % self.one.hex())
        if not self._other.up:
            raise ValueError("other %s is not up" % self.other.hex())

    def __str__(self):
        return "Conn %s->%s" % (self.one.terminal_string(), self.other.terminal_string())

    def to_dict(self) -> dict:
        return {"one": self.one.hex(), "other": self.other.hex(), "up": self.up}

    @classmethod
    def from_dict(cls, d: dict) -> "Conn":
        if not isinstance(d, dict):
            raise ValueError("conn: want a JSON object")
        return cls(one=_node_id(d.get("one")), other=_node_id(d.get("other")), up=bool(d.get("up", False)))


@dataclasses.dataclass
class Msg:
    """A devp2p message sent from ``one`` to ``other``."""

    one: NodeID = dataclasses.field(default_factory=NodeID)
    other: NodeID = dataclasses.field(default_factory=NodeID)
    protocol: str = ""
    code: int = 0
    received: bool = False

    def __str__(self):
        return "Msg(%d) %s->%s" % (self.code, self.one.terminal_string(), self.other.terminal_string())

    def to_dict(self) -> dict:
        return {"one": self.one.hex(), "other": self.other.hex(), "protocol": self.protocol,
                "code": self.code, "received": self.received}

    @classmethod
    def from_dict(cls, d: dict) -> "Msg":
        if not isinstance(d, dict):
            raise ValueError("msg: want a JSON object")
        code = d.get("code", 0)
        if not isinstance(code, int) or isinstance(code, bool) or code < 0:
            raise ValueError("msg: code is not an unsigned integer")
        return cls(one=_node_id(d.get("one")), other=_node_id(d.get("other")),
                   protocol=_str(d.get("protocol", "")), code=code, received=bool(d.get("received", False)))


def conn_label(source: NodeID, target: NodeID) -> str:
    """The same string for a pair of nodes, whichever is given first."""
    if bytes(source) > bytes(target):
        first, second = target, source
    else:
        first, second = source, target
    return "%s-%s" % (first.hex(), second.hex())


@dataclasses.dataclass
class Snapshot:
    """A network's state at one time, enough to rebuild it with :meth:`Network.load`."""

    nodes: List["NodeSnapshot"] = dataclasses.field(default_factory=list)
    conns: List[Conn] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        d = {}
        if self.nodes:
            d["nodes"] = [n.to_dict() for n in self.nodes]
        if self.conns:
            d["conns"] = [c.to_dict() for c in self.conns]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Snapshot":
        if not isinstance(d, dict):
            raise ValueError("snapshot: want a JSON object")
        nodes, conns = d.get("nodes") or [], d.get("conns") or []
        if not isinstance(nodes, list) or not isinstance(conns, list):
            raise ValueError("snapshot: nodes and conns must be lists")
        snap = cls(nodes=[NodeSnapshot.from_dict(n) for n in nodes], conns=[Conn.from_dict(c) for c in conns])
        for n in snap.nodes:
            if n.node.config is None:
                raise ValueError("snapshot: a node has no config")
        return snap


@dataclasses.dataclass
class NodeSnapshot:
    """One node of a snapshot, with what its services' Snapshot methods returned."""

    node: Node = dataclasses.field(default_factory=Node)
    snapshots: Optional[Dict[str, bytes]] = None

    def to_dict(self) -> dict:
        d = {"node": self.node.to_dict()}
        if self.snapshots:
            # Go encodes []byte as base64
            d["snapshots"] = {k: base64.b64encode(v).decode() for k, v in self.snapshots.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "NodeSnapshot":
        if not isinstance(d, dict):
            raise ValueError("node snapshot: want a JSON object")
        snaps = d.get("snapshots")
        if snaps is not None:
            if not isinstance(snaps, dict):
                raise ValueError("node snapshot: snapshots must be an object")
            try:
                snaps = {_str(k): base64.b64decode(_str(v) or "", validate=True) for k, v in snaps.items()}
            except (ValueError, TypeError) as e:
                raise ValueError("node snapshot: %s" % e) from None
        return cls(node=Node.from_dict(d.get("node") or {}), snapshots=snaps)


def _str(v) -> str:
    if not isinstance(v, str):
        raise ValueError("want a JSON string, got %s" % type(v).__name__)
    return v


def _node_id(v) -> NodeID:
    if not isinstance(v, str):
        raise ValueError("node ID: want a hex string")
    return hex_id(v)
