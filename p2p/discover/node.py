"""Node identities and enode URLs for discovery v4 (port of geth's p2p/discover/node.go).

A :class:`NodeID` is the 64-byte ``X || Y`` encoding of a node's secp256k1 public
key. A :class:`Node` is a host on the network: an IP address, UDP (discovery) and
TCP (RLPx) ports, and its ID. ``sha`` caches ``keccak256(id)``, the point in the
Kademlia key space used for all distance computations.
"""

from __future__ import annotations

import binascii
import builtins
import ipaddress
import random
import re

from p2p import crypto
from p2p.netutil.net import to_ip

# The address types a node's ``ip`` holds (IPv4-mapped addresses become IPv4).
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

__all__ = [
    "NodeIDBits", "NodeID", "Node", "new_node", "parse_node", "must_parse_node",
    "bytes_id", "must_bytes_id", "hex_id", "must_hex_id",
    "pubkey_id", "recover_node_id", "distcmp", "logdist", "hash_at_distance",
    "split_host_port",
]

NodeIDBits = 512
_ID_LEN = NodeIDBits // 8



def _to_ip(ip):
    """Normalise an address given as ipaddress object, str or packed bytes.

    IPv4-mapped IPv6 addresses become IPv4 (geth's ``ip.To4()``). ``None`` and
    empty bytes mean "no address".
    """
    if ip is None:
        return None
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if isinstance(ip, ipaddress.IPv6Address):
        m = ip.ipv4_mapped
        return m if m is not None else ip
    if isinstance(ip, (bytes, bytearray, memoryview)):
        if len(ip) == 0:
            return None
        if len(ip) == 4:
            return ipaddress.IPv4Address(bytes(ip))
        if len(ip) == 16:
            return _to_ip(ipaddress.IPv6Address(bytes(ip)))
        raise ValueError("invalid IP length %d" % len(ip))
    if isinstance(ip, str):
        parsed = to_ip(ip)
        if parsed is None:
            raise ValueError("invalid IP address %r" % ip)
        return parsed
    raise TypeError("unsupported IP type %r" % type(ip).__name__)


def new_node(id: bytes, ip, udp_port: int, tcp_port: int) -> "Node":
    """A node with the given ID, address and ports (``ip=None`` for an incomplete node)."""
    if not isinstance(id, NodeID):
        id = NodeID(id)
    return Node(_to_ip(ip), udp_port, tcp_port, id)


class Node:
    """A host on the network. Fields should be treated as read-only."""

    __slots__ = ("ip", "udp", "tcp", "id", "sha", "added_at", "seq", "record")

    def __init__(self, ip: IPAddress | None = None, udp: int = 0, tcp: int = 0, id: bytes | None = None,
                 sha: bytes | None = None, added_at: float | None = None) -> None:
        self.ip = ip            # IPv4Address / IPv6Address, None for incomplete nodes
        self.udp = udp          # discovery port
        self.tcp = tcp          # RLPx port
        self.id: NodeID = id if id is not None else NodeID()  # type: ignore[assignment]  # any 64 bytes
        # keccak256(id); tests may set it to place a node at a chosen distance.
        self.sha = sha if sha is not None else crypto.keccak256(self.id)
        self.added_at = added_at  # time (seconds) the node was added to the table
        self.seq = 0              # the highest record seq the node announced (EIP-868 pongs)
        self.record = None        # its node record (p2p.enr.Record), once fetched

    def addr(self) -> tuple:
        """The UDP endpoint as a socket address tuple ``(ip string, port)``."""
        return (str(self.ip), self.udp)

    def incomplete(self) -> bool:
        """True for nodes with no IP address."""
        return self.ip is None

    def validate_complete(self) -> None:
        """Raise ValueError unless this is a valid complete node."""
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
        """The enode URL (see :func:`parse_node` for the format)."""
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

    def __eq__(self, other):
        if not isinstance(other, Node):
            return NotImplemented
        return (self.id == other.id and self.ip == other.ip and self.udp == other.udp
                and self.tcp == other.tcp and self.sha == other.sha)

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    def __hash__(self):
        return hash(self.id)


_incomplete_node_url = re.compile(r"(?i)^(?:enode://)?([0-9a-f]+)$")


def parse_node(rawurl: str) -> Node:
    """Parse an enode URL, raising ValueError with geth's messages.

    Incomplete nodes are ``enode://<hex id>`` or just ``<hex id>``. Complete nodes
    are ``enode://<hex id>@<ip>:<tcp port>[?discport=<udp port>]``; host names are
    not allowed, only IP addresses.
    """
    m = _incomplete_node_url.match(rawurl)
    if m is not None:
        try:
            id = hex_id(m.group(1))
        except ValueError as e:
            raise ValueError("invalid node ID (%s)" % e) from None
        return new_node(id, None, 0, 0)
    return _parse_complete(rawurl)


def _get_scheme(rawurl):
    # Go's url.getscheme: returns (scheme, rest) or raises for a leading colon.
    for i, c in enumerate(rawurl):
        if c.isascii() and c.isalpha():
            continue
        if c.isascii() and (c.isdigit() or c in "+-."):
            if i == 0:
                return "", rawurl
            continue
        if c == ":":
            if i == 0:
                raise ValueError("parse %s: missing protocol scheme" % rawurl)
            return rawurl[:i], rawurl[i + 1:]
        return "", rawurl
    return "", rawurl


def split_host_port(hostport: str):
    """Go's ``net.SplitHostPort``: ``(host, port)``, raising ValueError with Go's text."""

    def err(why):
        return ValueError("address %s: %s" % (hostport, why))

    j = k = 0
    i = hostport.rfind(":")
    if i < 0:
        raise err("missing port in address")
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise err("missing ']' in address")
        if end + 1 == len(hostport):
            raise err("missing port in address")
        if end + 1 != i:
            if hostport[end + 1] == ":":
                raise err("too many colons in address")
            raise err("missing port in address")
        host = hostport[1:end]
        j, k = 1, end + 1
    else:
        host = hostport[:i]
        if ":" in host:
            raise err("too many colons in address")
    if "[" in hostport[j:]:
        raise err("unexpected '[' in address")
    if "]" in hostport[k:]:
        raise err("unexpected ']' in address")
    return host, hostport[i + 1:]


def _parse_uint16(s):
    if not s or not s.isascii() or not s.isdigit():
        raise ValueError(s)
    v = int(s)
    if v > 0xFFFF:
        raise ValueError(s)
    return v


def _query_get(query, key):
    # First value of ``key`` in a URL query string, "" if absent (Go's Values.Get).
    from urllib.parse import unquote_plus

    for part in query.replace(";", "&").split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        if unquote_plus(k) == key:
            return unquote_plus(v)
    return ""


def _parse_complete(rawurl: str) -> Node:
    id, ip, udp_port, tcp_port = parse_enode_url(rawurl, hex_id)
    return Node(ip, udp_port, tcp_port, id)


def parse_enode_url(rawurl: str, parse_id) -> tuple:
    """(id, ip, udp port, tcp port) of a complete enode URL; discover and discv5 share it.

    A small subset of Go's url.Parse, enough to keep its behaviour for enode URLs;
    ``parse_id`` turns the hex user part into the caller's node ID type.
    """
    rest = rawurl.split("#", 1)[0]
    scheme, rest = _get_scheme(rest)
    if scheme.lower() != "enode":
        raise ValueError('invalid URL scheme, want "enode"')
    rest, _, query = rest.partition("?")
    if not rest.startswith("//"):
        raise ValueError("does not contain node ID")
    authority = rest[2:]
    slash = authority.find("/")
    if slash >= 0:
        authority = authority[:slash]
    at = authority.rfind("@")
    if at < 0:
        raise ValueError("does not contain node ID")
    user, host = authority[:at], authority[at + 1:]
    try:
        id = parse_id(user)
    except ValueError as e:
        raise ValueError("invalid node ID (%s)" % e) from None
    try:
        h, port = split_host_port(host)
    except ValueError as e:
        raise ValueError("invalid host: %s" % e) from None
    ip = to_ip(h)
    if ip is None:
        raise ValueError("invalid IP address")
    try:
        tcp_port = _parse_uint16(port)
    except ValueError:
        raise ValueError("invalid port") from None
    udp_port = tcp_port
    discport = _query_get(query, "discport")
    if discport != "":
        try:
            udp_port = _parse_uint16(discport)
        except ValueError:
            raise ValueError("invalid discport in query") from None
    return id, ip, udp_port, tcp_port


def must_parse_node(rawurl: str) -> Node:
    """parse_node, raising ValueError("invalid node URL: ...") (Go panics)."""
    try:
        return parse_node(rawurl)
    except ValueError as e:
        raise ValueError("invalid node URL: %s" % e) from None


class NodeID(bytes):
    """The 64-byte public key of a node; prints as hex."""

    __slots__ = ()

    def __new__(cls, b=bytes(_ID_LEN)):
        if len(b) != _ID_LEN:
            raise ValueError("wrong length, want %d bytes" % _ID_LEN)
        return super().__new__(cls, b)

    # Annotations in this class say builtins.bytes: here the name bytes is this method.
    def bytes(self) -> builtins.bytes:
        return bytes(self)

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

    def marshal_text(self) -> builtins.bytes:
        return self.hex().encode()

    @classmethod
    def unmarshal_text(cls, text) -> "NodeID":
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("ascii", "replace")
        return hex_id(text)

    def pubkey(self) -> crypto.PublicKey:
        """The public key this ID encodes; raises CryptoError if not on the curve."""
        x = int.from_bytes(self[:32], "big")
        y = int.from_bytes(self[32:], "big")
        if not crypto._on_curve(x, y):
            raise crypto.CryptoError("id is invalid secp256k1 curve point")
        return crypto.PublicKey(bytes(self))


def bytes_id(b) -> NodeID:
    """NodeID from 64 bytes (geth's BytesID); ValueError on the wrong length."""
    return NodeID(b)




def must_bytes_id(b) -> NodeID:
    return NodeID(b)


def _hex_decode(s: str) -> bytes:
    # Go's hex.DecodeString, with its error messages.
    if len(s) % 2 == 1:
        raise ValueError("encoding/hex: odd length hex string")
    try:
        return binascii.unhexlify(s)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        for c in s:
            if c not in "0123456789abcdefABCDEF":
                raise ValueError("encoding/hex: invalid byte: U+%04X %r" % (ord(c), c)) from None
        raise


def hex_id(s: str) -> NodeID:
    """NodeID from 128 hex characters, optionally prefixed with 0x."""
    if s.startswith("0x"):
        s = s[2:]
    b = _hex_decode(s)
    if len(b) != _ID_LEN:
        raise ValueError("wrong length, want %d hex chars" % (_ID_LEN * 2))
    return NodeID(b)


def must_hex_id(s: str) -> NodeID:
    return hex_id(s)


def pubkey_id(pub) -> NodeID:
    """The NodeID of a public key (a PrivateKey is accepted too)."""
    if isinstance(pub, crypto.PrivateKey):
        pub = pub.public_key
    raw = pub.raw
    if len(raw) != _ID_LEN:
        raise ValueError("need %d bit pubkey, got %d bits" % ((_ID_LEN + 1) * 8, (len(raw) + 1) * 8))
    return NodeID(raw)


def recover_node_id(hash32: bytes, sig: bytes) -> NodeID:
    """The ID of the key that signed ``hash32``; raises CryptoError."""
    return NodeID(crypto.recover_node_id(hash32, sig))


# int.from_bytes, bound once: logdist (each table add) runs 23-26% slower without it (interleaved A/B timeit, py3.11)
_from_bytes = int.from_bytes


def distcmp(target: bytes, a: bytes, b: bytes) -> int:
    """-1 if a is closer to target than b, 1 if b is closer, 0 if equal (XOR metric)."""
    t = _from_bytes(target, "big")
    da = t ^ _from_bytes(a, "big")
    db = t ^ _from_bytes(b, "big")
    return (da > db) - (da < db)


def logdist(a: bytes, b: bytes) -> int:
    """The logarithmic distance log2(a ^ b): the bit length of the XOR."""
    return (_from_bytes(a, "big") ^ _from_bytes(b, "big")).bit_length()


def hash_at_distance(a: bytes, n: int, rand=random) -> bytes:
    """A random hash b with ``logdist(a, b) == n``."""
    if n == 0:
        return bytes(a)
    # Flip bit n-1 (counting from the least significant), randomize those below it.
    v = _from_bytes(a, "big") ^ (1 << (n - 1))
    low = (1 << (n - 1)) - 1
    v = (v & ~low) | (rand.getrandbits(n - 1) if n > 1 else 0)
    return v.to_bytes(len(a), "big")
