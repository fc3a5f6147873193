"""The in-process "sim" adapter (geth's p2p/simulations/adapters/inproc.go).

Every node is a :class:`p2p.node.node.Node` (a p2p Server and its services)
in this process. No node listens: the adapter is every server's Dialer, and
dialing a node makes a connected socket pair (``pipes.net_pipe``, or a
loopback TCP pair with ``new_tcp_adapter``) and hands one end to the
destination server's ``setup_conn``, as if it had accepted it. RPC clients
are in-process (no port either).
"""

from __future__ import annotations

import threading
from typing import Dict, Optional

from p2p import server as p2p_server
from p2p.discover.node import NodeID, new_node
from p2p.log import get_logger
from p2p.node import node as p2p_node
from p2p.node import rpc
from p2p.simulations.adapters.types import NodeAdapter, NodeConfig, RPCDialer, ServiceContext
from p2p.simulations.adapters.types import Node as AdapterNode
from p2p.simulations.pipes import net_pipe, tcp_pipe

# geth uses math.MaxInt32: no peer limit in a simulation.
_MAX_PEERS = 2**31 - 1


def new_sim_adapter(services: dict) -> SimAdapter:
    """A sim adapter whose connections are in-process socket pairs."""
    return SimAdapter(net_pipe, services)


def new_tcp_adapter(services: dict) -> SimAdapter:
    """A sim adapter whose connections are TCP connections over 127.0.0.1."""
    return SimAdapter(tcp_pipe, services)


class SimAdapter(NodeAdapter, RPCDialer):
    """Runs simulation nodes in this process, connected through socket pairs."""

    def __init__(self, pipe, services: dict):
        self.pipe = pipe
        self.mtx = threading.Lock()
        self.nodes: Dict[NodeID, "SimNode"] = {}
        self.services = dict(services)

    def name(self) -> str:
        return "sim-adapter"

    def new_node(self, config: NodeConfig) -> "SimNode":
        """A node of ``config``'s services (names from this adapter's map), not yet started."""
        with self.mtx:
            id = config.id
            if id in self.nodes:
                raise ValueError("node already exists: %s" % id.hex())
            if not config.services:
                raise ValueError("node must have at least one service")
            for service in config.services:
                if service not in self.services:
                    raise ValueError("unknown node service %r" % service)
            logger = get_logger("p2p.node").new(**{"node.id": id.terminal_string()})
            n = p2p_node.Node(p2p_node.Config(
                p2p=p2p_server.Config(
                    private_key=config.private_key,
                    max_peers=_MAX_PEERS,
                    no_discovery=True,
                    dialer=self,
                    enable_msg_events=config.enable_msg_events,
                    logger=get_logger("p2p").new(**{"node.id": id.terminal_string()}),
                ),
                logger=logger,
            ))
            sim_node = SimNode(id, config, self, n)
            self.nodes[id] = sim_node
            return sim_node

    def dial(self, dest):
        """Connect to ``dest`` (a discover.Node): one end of a fresh pipe goes to its server."""
        node = self.get_node(dest.id)
        if node is None:
            raise ConnectionError("unknown node: %s" % dest.id.hex())
        srv = node.server()
        if srv is None:
            raise ConnectionError("node not running: %s" % dest.id.hex())
        pipe1, pipe2 = self.pipe()
        # The simulated "listening": the destination server sets up its end on its own
        # thread (geth's go srv.SetupConn(pipe1, 0, nil)). _spawn puts the thread in the
        # server's set, so the server's stop waits for it.
        srv._spawn(srv.setup_conn, "p2p.Server.SetupConn", pipe1, p2p_server.ConnFlag(0), None)
        return pipe2

    def dial_rpc(self, id: NodeID) -> rpc.Client:
        """An in-process RPC client to the node ``id``."""
        node = self.get_node(id)
        if node is None:
            raise ValueError("unknown node: %s" % id.hex())
        return rpc.dial_in_proc(node.node.rpc_handler())

    def get_node(self, id: NodeID) -> Optional["SimNode"]:
        """The node with ``id``, or None (Go's second result ``ok`` is ``is not None``)."""
        with self.mtx:
            return self.nodes.get(id)


class SimNode(AdapterNode):
    """A node of the sim adapter: a p2p node in this process with an in-process RPC client."""

    def __init__(self, id: NodeID, config: NodeConfig, adapter: SimAdapter, node: p2p_node.Node):
        self.lock = threading.RLock()
        self.id = id
        self.config = config
        self.adapter = adapter
        self.node = node
        self.running: dict = {}
        self._client: Optional[rpc.Client] = None
        self._registered = False  # geth's registerOnce
        self._snapshots: Optional[Dict[str, bytes]] = None  # those of the latest start

    def addr(self) -> bytes:
        return self.node_().string().encode()

    def node_(self):
        # geth's SimNode.Node(); renamed because ``node`` is the field holding the p2p node.
        return new_node(self.id, "127.0.0.1", 30303, 30303)

    def client(self) -> rpc.Client:
        with self.lock:
            if self._client is None:
                raise RuntimeError("node not started")
            return self._client

    def serve_rpc(self, conn) -> None:
        """Serve RPC on ``conn``: a codec (read/write/close) or a ``websockets`` sync connection."""
        handler = self.node.rpc_handler()
        codec = conn if hasattr(conn, "read") and hasattr(conn, "write") else rpc.WebsocketCodec(conn)
        handler.serve_codec(codec)

    def snapshots(self) -> Dict[str, bytes]:
        with self.lock:
            services = dict(self.running)
        if not services:
            raise RuntimeError("no running services")
        snapshots = {}
        for name, service in services.items():
            snap = getattr(service, "snapshot", None)
            if snap is not None:
                snapshots[name] = snap()
        return snapshots

    def start(self, snapshots: Optional[Dict[str, bytes]] = None) -> None:
        # departure: sim-restart-snapshots: a restarted node's services get this start's snapshots
        self._snapshots = snapshots

        def new_service(name):
            def constructor(node_ctx):
                ctx = ServiceContext(self.adapter, node_ctx, self.config)
                if self._snapshots is not None:
                    ctx.snapshot = self._snapshots.get(name)
                service = self.adapter.services[name](ctx)
                with self.lock:
                    self.running[name] = service
                return service

            return constructor

        # Register the services once, so that a node stopped and started again keeps them.
        with self.lock:
            if not self._registered:
                self._registered = True
                for name in self.config.services:
                    self.node.register(new_service(name))
        self.node.start()
        client = rpc.dial_in_proc(self.node.rpc_handler())
        with self.lock:
            self._client = client

    def stop(self) -> None:
        with self.lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
        self.node.stop()

    def service(self, name: str):
        with self.lock:
            return self.running.get(name)

    def services(self) -> list:
        with self.lock:
            return list(self.running.values())

    def service_map(self) -> dict:
        with self.lock:
            return dict(self.running)

    def server(self):
        return self.node.server()

    def subscribe_events(self, ch):
        """Send the server's PeerEvents to ``ch``; the node must be running."""
        srv = self.server()
        if srv is None:
            raise RuntimeError("node not running")
        return srv.subscribe_events(ch)

    def node_info(self) -> p2p_server.NodeInfo:
        srv = self.server()
        if srv is None:
            return p2p_server.NodeInfo(id=self.id.hex(), enode=self.node_().string())
        return srv.node_info()


def set_socket_buffer(conn, socket_read_buffer: int, socket_write_buffer: int) -> None:
    """Set the kernel buffers of a Unix socket connection (other kinds are left alone)."""
    import socket

    if getattr(conn, "family", None) == socket.AF_UNIX:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, socket_read_buffer)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, socket_write_buffer)
