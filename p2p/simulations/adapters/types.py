"""What every node adapter provides (geth's p2p/simulations/adapters/types.go).

A :class:`NodeAdapter` makes :class:`Node` objects from a :class:`NodeConfig`;
the network (p2p/simulations/network.py) drives them only through this
interface: start, stop, their RPC client, their enode address and node info.
Services are found by name: :func:`register_services` fills the registry the
exec adapter's child processes look names up in, and the sim adapter takes
its own map.

How a docker or Kubernetes adapter would fit: geth 1.8.16's ``docker.go`` is
an exec adapter whose command is ``docker run`` of an image holding the same
binary. Here it would be an ``ExecAdapter`` whose ``new_cmd`` builds
``docker run --rm -e _P2P_NODE_CONFIG=... image python -m
p2p.simulations.adapters.exec`` (a Kubernetes Job or Pod likewise), with the
child's WebSocket RPC and devp2p port published to the host; nothing above the
adapter changes. It is out of scope here.
"""

from __future__ import annotations

import json
import socket
from typing import Callable, Dict, List, Optional

from p2p import crypto
from p2p.discover.node import NodeID, hex_id, pubkey_id


class Node:
    """A node of a simulation, as the network sees it (geth's adapters.Node interface)."""

    def addr(self) -> bytes:
        """The node's address (its enode URL)."""
        raise NotImplementedError

    def client(self):
        """The node's RPC client (a :class:`p2p.node.rpc.Client`) once it runs."""
        raise NotImplementedError

    def serve_rpc(self, conn) -> None:
        """Serve RPC requests on ``conn`` (a WebSocket connection) until it closes."""
        raise NotImplementedError

    def start(self, snapshots: Optional[Dict[str, bytes]]) -> None:
        """Start the node's services, each given its snapshot if any."""
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def node_info(self):
        """A :class:`p2p.server.NodeInfo` about the node."""
        raise NotImplementedError

    def snapshots(self) -> Dict[str, bytes]:
        """Snapshots of the running services that take them (``snapshot() -> bytes``)."""
        raise NotImplementedError


class NodeAdapter:
    """Makes simulation nodes (geth's adapters.NodeAdapter interface)."""

    def name(self) -> str:
        """The adapter's name, for logs."""
        raise NotImplementedError

    def new_node(self, config: "NodeConfig") -> Node:
        raise NotImplementedError


class NodeConfig:
    """How to make one node: identity, name, services, message events, port."""

    def __init__(self, id: Optional[NodeID] = None, private_key=None, enable_msg_events: bool = False,
                 name: str = "", services: Optional[List[str]] = None, reachable: Optional[Callable] = None,
                 port: int = 0):
        self.id = id if id is not None else NodeID()
        self.private_key = private_key
        self.enable_msg_events = enable_msg_events
        self.name = name
        self.services = list(services) if services is not None else []
        # A function of a NodeID that tells whether the node may suggest that peer.
        self.reachable = reachable
        self.port = port

    def marshal_json(self) -> dict:
        """The config as geth's JSON object (``nodeConfigJSON``); the key as hex."""
        d = {
            "id": self.id.hex(),
            "private_key": "",
            "name": self.name,
            "services": list(self.services) if self.services else None,
            "enable_msg_events": self.enable_msg_events,
            "port": self.port,
        }
        if self.private_key is not None:
            d["private_key"] = crypto.from_ecdsa(self.private_key).hex()
        return d

    @classmethod
    def unmarshal_json(cls, data) -> "NodeConfig":
        """A config from geth's JSON (text, bytes or a decoded object); ValueError if malformed."""
        if isinstance(data, (str, bytes, bytearray)):
            data = json.loads(data)
        if not isinstance(data, dict):
            raise ValueError("node config must be a JSON object")
        n = cls()
        conf_id = _field(data, "id", str, "")
        if conf_id != "":
            n.id = hex_id(conf_id)
        key = _field(data, "private_key", str, "")
        if key != "":
            try:
                raw = bytes.fromhex(key)
            except ValueError:
                raise ValueError("encoding/hex: invalid private_key") from None
            n.private_key = crypto.to_ecdsa(raw)
        n.name = _field(data, "name", str, "")
        services = data.get("services")
        if services is None:
            n.services = []
        elif isinstance(services, list) and all(isinstance(s, str) for s in services):
            n.services = list(services)
        else:
            raise ValueError("json: services must be a list of strings")
        port = data.get("port", 0)
        if port is None:
            port = 0
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 0xFFFF:
            raise ValueError("json: port must be a uint16")
        n.port = port
        n.enable_msg_events = _field(data, "enable_msg_events", bool, False)
        return n

    def __repr__(self):
        return "NodeConfig(id=%s, name=%r, services=%r)" % (self.id.terminal_string(), self.name, self.services)


def _field(data: dict, key: str, typ, default):
    # Python-only: Go's json decoder type-checks each field; a null keeps the zero value.
    v = data.get(key, default)
    if v is None:
        return default
    if not isinstance(v, typ) or (typ is not bool and isinstance(v, bool)):
        raise ValueError("json: cannot unmarshal %s into field %s" % (type(v).__name__, key))
    return v


def random_node_config() -> NodeConfig:
    """A config with a fresh key, a free loopback port, and message events on."""
    key = crypto.generate_key()
    id = pubkey_id(key.public_key)
    port = assign_tcp_port()
    return NodeConfig(id=id, name="node_%s" % id.hex(), private_key=key, port=port, enable_msg_events=True)


def assign_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class ServiceContext:
    """What a service constructor gets (geth's adapters.ServiceContext).

    ``rpc_dialer`` dials other nodes' RPC (geth embeds the RPCDialer);
    ``node_context`` is the node's :class:`p2p.node.node.ServiceContext`.
    """

    def __init__(self, rpc_dialer: "RPCDialer", node_context, config: NodeConfig, snapshot: Optional[bytes] = None):
        self.rpc_dialer = rpc_dialer
        self.node_context = node_context
        self.config = config
        self.snapshot = snapshot

    def dial_rpc(self, id: NodeID):
        return self.rpc_dialer.dial_rpc(id)


class RPCDialer:
    """Dials the RPC of another node of the simulation by its ID."""

    def dial_rpc(self, id: NodeID):
        raise NotImplementedError


# A service constructor: ServiceContext -> p2p.node.node.Service (geth's ServiceFunc).
ServiceFunc = Callable[[ServiceContext], object]
Services = Dict[str, ServiceFunc]

serviceFuncs: Services = {}


def register_services(services: Services) -> None:
    """Add named services to the registry; a name registered twice is an error.

    geth also runs ``reexec.Init()`` here so that a re-executed binary starts
    its node; our exec adapter's child is ``python -m p2p.simulations.adapters.exec``
    instead, which needs no hook here.
    """
    for name, f in services.items():
        if name in serviceFuncs:
            raise ValueError("node service already exists: %r" % name)
        serviceFuncs[name] = f
