"""Node identities and node URLs for discovery v5 (port of geth's p2p/discv5/node.go).

The v5 package has its own node type, separate from :mod:`p2p.discover.node`, as in
geth. Besides the address and the ID, a v5 :class:`Node` carries the state that the
``Network`` loop keeps per node (geth's ``nodeNetGuts``, embedded in ``Node``): the
state machine's state, the last ping's hash and topics, the deferred findnode queries.
Only the network loop touches those fields.

Nodes compare and hash by identity, like the ``*Node`` pointers geth keys its maps
with (``map[*Node]*ticket``, ``timeoutEvent{ev, node}``); the network keeps one object
per node ID. Tests compare fields with :func:`node_fields`.
"""

from __future__ import annotations

import random
import re

from p2p import crypto
# Go's url.Parse, net.SplitHostPort, net.ParseIP and hex.DecodeString, as the v4
# node module already reproduces them (one copy of the standard library's rules).
from p2p.discover.node import (
    _hex_decode, _to_ip, parse_enode_url,
)

__all__ = [
    "Node", "NodeID", "new_node", "parse_node", "must_parse_node", "hex_id", "must_hex_id",
    "pubkey_id", "recover_node_id", "distcmp", "logdist", "hash_at_distance", "node_fields",
    "nodeIDBits",
]


def new_node(id, ip, udp_port: int, tcp_port: int) -> "Node":
    """A node with the given ID, address and ports (``ip=None`` for an incomplete node)."""
    if not isinstance(id, NodeID):
        id = NodeID(id)
    return Node(_to_ip(ip), udp_port, tcp_port, id)


class Node:
    """A host on the network: IP, UDP and TCP ports, ID, and the network loop's state.

    ``ip``, ``udp``, ``tcp`` and ``id`` should be treated as read-only outside the
    network loop (geth's "public fields may not be modified").
    """

    __slots__ = ("ip", "udp", "tcp", "id",
                 # nodeNetGuts (net.go): owned by the Network loop.
                 "sha", "state", "ping_echo", "ping_topics", "deferred_queries",
                 "pending_neighbours", "query_timeouts")

    def __init__(self, ip=None, udp=0, tcp=0, id=None, sha=None):
        self.ip = ip        # IPv4Address / IPv6Address, None for an incomplete node
        self.udp = udp      # discovery port
        self.tcp = tcp      # RLPx port
        self.id = id if id is not None else NodeID()
        # keccak256(id); tests may set another value to put a node at a chosen distance.
        self.sha = sha if sha is not None else crypto.keccak256(self.id)
        self.state = None               # the node's nodeState in the network's state machine
        self.ping_echo = None           # hash of the last ping we sent it
        self.ping_topics = None         # topics sent in that ping
        self.deferred_queries = []      # findnode queries that cannot be sent yet
        self.pending_neighbours = None  # the query waiting for its neighbors reply
        self.query_timeouts = 0

    def addr(self):
        """The UDP endpoint as a socket address ``(ip string, port)``."""
        return (str(self.ip), self.udp)

    def set_addr(self, a) -> None:
        """Take the IP and UDP port of the socket address ``a``."""
        self.ip = _to_ip(a[0])
        self.udp = a[1]

    def addr_equal(self, a) -> bool:
        """True if the socket address ``a`` is this node's UDP endpoint."""
        return self.udp == a[1] and self.ip is not None and self.ip == _to_ip(a[0])

    def incomplete(self) -> bool:
        """True for nodes with no IP address."""
        return self.ip is None

    def validate_complete(self) -> None:
        """Raise ValueError (CryptoError for a bad key) unless this is a valid complete node."""
        if self.incomplete():
            raise ValueError("incomplete node")
        if self.udp == 0:
            raise ValueError("missing UDP port")
        if self.tcp == 0:
            raise ValueError("missing TCP port")
        if self.ip.is_multicast or self.ip.is_unspecified:
            raise ValueError("invalid IP (multicast/unspecified)")
        self.id.pubkey()  # on the curve?

    def string(self) -> str:
        """The node URL (see :func:`parse_node` for the forms)."""
        if self.ip is None:
            return "enode://" + self.id.hex()
        if self.ip.version == 6:
            host = "[%s]:%d" % (self.ip.compressed, self.tcp)
        else:
            host = "%s:%d" % (self.ip, self.tcp)
        s = "enode://%s@%s" % (self.id.hex(), host)
        if self.udp != self.tcp:
            s += "?discport=%d" % self.udp
        return s

    __str__ = string

    def __repr__(self):
        return "Node(%s)" % self.string()

    def marshal_text(self) -> bytes:
        return self.string().encode()

    @classmethod
    def unmarshal_text(cls, text) -> "Node":
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", "replace")
        return parse_node(text)


incompleteNodeURL = re.compile(r"(?i)^(?:enode://)?([0-9a-f]+)$")


def parse_node(rawurl: str) -> Node:
    """Parse a node designator, raising ValueError with geth's messages.

    Incomplete nodes (only the public key) are ``enode://<hex id>`` or ``<hex id>``.
    Complete nodes are ``enode://<hex id>@<ip>:<tcp port>[?discport=<udp port>]``;
    the host must be an IP address (no DNS names). The UDP (discovery) port is the
    TCP port unless ``discport`` says otherwise.
    """
    m = incompleteNodeURL.match(rawurl)
    if m is not None:
        try:
            id = hex_id(m.group(1))
        except ValueError as e:
            raise ValueError("invalid node ID (%s)" % e) from None
        return new_node(id, None, 0, 0)
    return parse_complete(rawurl)


def parse_complete(rawurl: str) -> Node:
    """The complete form of :func:`parse_node` (the URL parsing is discover's)."""
    id, ip, udp_port, tcp_port = parse_enode_url(rawurl, hex_id)
    return new_node(id, ip, udp_port, tcp_port)


def must_parse_node(rawurl: str) -> Node:
    """parse_node, raising ValueError("invalid node URL: ...") where Go panics."""
    try:
        return parse_node(rawurl)
    except ValueError as e:
        raise ValueError("invalid node URL: %s" % e) from None


nodeIDBits = 512


class NodeID(bytes):
    """The 64-byte marshaled public key of a node; prints as hex."""

    __slots__ = ()

    def __new__(cls, b=bytes(nodeIDBits // 8)):
        if len(b) != nodeIDBits // 8:
            raise ValueError("wrong length, want %d bytes" % (nodeIDBits // 8))
        return super().__new__(cls, b)

    def string(self) -> str:
        return self.hex()

    __str__ = string

    def go_string(self) -> str:
        """Python syntax that rebuilds this ID (Go's GoString)."""
        return 'hex_id("%s")' % self.hex()

    __repr__ = go_string

    def terminal_string(self) -> str:
        """Short hex prefix for log lines."""
        return self[:8].hex()

    def pubkey(self) -> crypto.PublicKey:
        """The public key this ID encodes; raises CryptoError if it is not on the curve."""
        x = int.from_bytes(self[:32], "big")
        y = int.from_bytes(self[32:], "big")
        if not crypto._on_curve(x, y):
            raise crypto.CryptoError("id is invalid secp256k1 curve point")
        return crypto.PublicKey(bytes(self))

    def must_pubkey(self) -> crypto.PublicKey:
        """pubkey, for IDs known to be valid (Go panics where this raises)."""
        return self.pubkey()


def hex_id(s: str) -> NodeID:
    """NodeID from 128 hex characters, optionally prefixed with 0x."""
    if s.startswith("0x"):
        s = s[2:]
    b = _hex_decode(s)
    if len(b) != nodeIDBits // 8:
        raise ValueError("wrong length, want %d hex chars" % (nodeIDBits // 4))
    return NodeID(b)


def must_hex_id(s: str) -> NodeID:
    """hex_id for IDs known to be valid (Go panics where this raises)."""
    return hex_id(s)


def pubkey_id(pub) -> NodeID:
    """The NodeID of a public key (a PrivateKey is accepted too)."""
    if isinstance(pub, crypto.PrivateKey):
        pub = pub.public_key
    raw = pub.raw
    if len(raw) != nodeIDBits // 8:
        raise ValueError("need %d bit pubkey, got %d bits" % (nodeIDBits + 8, (len(raw) + 1) * 8))
    return NodeID(raw)


def recover_node_id(hash32: bytes, sig: bytes) -> NodeID:
    """The ID of the key that signed ``hash32`` with ``sig``; raises CryptoError."""
    return NodeID(crypto.recover_node_id(hash32, sig))


# int.from_bytes, bound once: distcmp, so the table's closest(), runs 24-25% slower without it (interleaved A/B, py3.11)
_from_bytes = int.from_bytes


def distcmp(target: bytes, a: bytes, b: bytes) -> int:
    """-1 if a is closer to target than b, 1 if b is closer, 0 if equal (XOR metric)."""
    t = _from_bytes(target, "big")
    da = t ^ _from_bytes(a, "big")
    db = t ^ _from_bytes(b, "big")
    return (da > db) - (da < db)


def logdist(a: bytes, b: bytes) -> int:
    """The logarithmic distance log2(a ^ b): the bit length of the XOR.

    Go counts leading zeros with its ``lzcount`` table; ``int.bit_length`` is the
    same number.
    """
    return (_from_bytes(a, "big") ^ _from_bytes(b, "big")).bit_length()


def hash_at_distance(a: bytes, n: int, rand=random) -> bytes:
    """A random hash b with ``logdist(a, b) == n``, built as geth's discv5 builds it.

    Bit ``n - 1`` (from the least significant) is flipped and the bytes after the
    one holding it are random; the lower bits of that byte are kept.
    """
    if n == 0:
        return bytes(a)
    b = bytearray(a)
    pos = len(a) - n // 8 - 1
    bit = (1 << ((n % 8) - 1)) & 0xFF if n % 8 else 0
    if bit == 0:
        pos += 1
        bit = 0x80
    b[pos] = (a[pos] & ~bit & 0xFF) | (~a[pos] & bit & 0xFF)
    for i in range(pos + 1, len(a)):
        b[i] = rand.randrange(255)  # Go's rand.Intn(255): 0..254
    return bytes(b)


def node_fields(n: Node):
    """The address, ID and distance key of a node, for comparing two nodes by value.

    Python-only (tests): Go compares nodes with reflect.DeepEqual; here nodes compare
    by identity, as Go's pointers do in the network's maps.
    """
    return (n.ip, n.udp, n.tcp, n.id, n.sha)

