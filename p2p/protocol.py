"""Sub-protocol descriptions and capabilities (geth's p2p/protocol.go)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional

if TYPE_CHECKING:  # peer imports this module
    from p2p.discover.node import NodeID
    from p2p.message import MsgReadWriter
    from p2p.peer import Peer


class Protocol:
    """A devp2p sub-protocol implementation.

    ``run(peer, rw)`` is called on its own thread once the protocol has been
    negotiated with a peer; it must fully consume every message payload it
    reads from ``rw``.  The peer connection is closed when ``run`` returns.
    It returns (or raises) the error that ended it; returning None means the
    protocol simply finished.  ``node_info()`` and ``peer_info(id)`` are
    optional metadata hooks; ``peer_info`` returning None means the
    protocol's own handshake is still running.
    """

    __slots__ = ("name", "version", "length", "run", "node_info", "peer_info")

    def __init__(
        self,
        name: str = "",
        version: int = 0,
        length: int = 0,
        run: Optional[Callable[["Peer", "MsgReadWriter"], Optional[BaseException]]] = None,
        node_info: Optional[Callable[[], Any]] = None,
        peer_info: Optional[Callable[["NodeID"], Any]] = None,
    ) -> None:
        self.name = name
        self.version = version
        self.length = length
        self.run = run
        self.node_info = node_info
        self.peer_info = peer_info

    def cap(self) -> "Cap":
        return Cap(self.name, self.version)

    def __repr__(self):
        return "Protocol(%s/%d, length=%d)" % (self.name, self.version, self.length)


class Cap(NamedTuple):
    """A peer capability: a protocol name and version.

    As a tuple it RLP-encodes as ``[name, version]`` (geth's ``Cap.RlpData``)
    and orders by name, then version (geth's ``capsByNameAndVersion``).
    """

    name: str
    version: int

    def rlp_data(self) -> list:
        return [self.name, self.version]

    def __str__(self):
        return "%s/%d" % (self.name, self.version)

    @classmethod
    def from_rlp(cls, item) -> "Cap":
        """Build a Cap from its decoded RLP form ``[name, version, ...]``."""
        if not isinstance(item, (list, tuple)) or len(item) < 2:
            raise ValueError("invalid capability %r" % (item,))
        name, version = item[0], item[1]
        if not isinstance(name, bytes) or not isinstance(version, bytes):
            raise ValueError("invalid capability %r" % (item,))
        return cls(name.decode("utf-8", "replace"), int.from_bytes(version, "big"))


def caps_by_name_and_version(caps):
    """Sort capabilities in place by name, then version."""
    caps.sort()
    return caps
