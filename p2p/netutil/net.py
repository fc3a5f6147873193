"""IP address helpers for the p2p stack (port of geth's p2p/netutil/net.go).

Addresses are ``ipaddress.IPv4Address`` / ``IPv6Address`` objects; every function
here also accepts a string or packed bytes (4 or 16 bytes, geth's ``net.IP``).
IPv4-mapped IPv6 addresses are treated as IPv4, as Go's ``ip.To4()`` does.
"""

from __future__ import annotations

import ipaddress

__all__ = [
    "Netlist", "ParseError", "parse_netlist", "parse_cidr", "is_lan", "is_special_network",
    "check_relay_ip", "same_net", "DistinctNetSet", "to_ip", "addr_str",
    "errInvalid", "errUnspecified", "errSpecial", "errLoopback", "errLAN",
]

_ADDR_TYPES = (ipaddress.IPv4Address, ipaddress.IPv6Address)


def to_ip(ip):
    """Normalise ``ip`` (ipaddress object, str or packed bytes) to an ipaddress object.

    Returns None for None, empty bytes and anything that is not an IP address.
    """
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if isinstance(ip, ipaddress.IPv6Address):
        m = ip.ipv4_mapped
        return ip if m is None else m
    if ip is None:
        return None
    if isinstance(ip, (bytes, bytearray, memoryview)):
        n = len(ip)
        if n == 4:
            return ipaddress.IPv4Address(bytes(ip))
        if n == 16:
            return to_ip(ipaddress.IPv6Address(bytes(ip)))
        return None
    if isinstance(ip, str):
        if "%" in ip:
            return None
        try:
            return to_ip(ipaddress.ip_address(ip))
        except ValueError:
            return None
    return None


def addr_str(addr) -> str:
    """The one ``host:port`` formatter for log lines and peer info (Go's net.JoinHostPort).

    Python-only: Go values print themselves, Python's socket addresses are tuples.
    ``addr`` is a socket address ``(host, port, ...)`` (IPv6 hosts get brackets, a None
    host prints as ``<nil>``), or a socket, or a stream holding one in ``.sock``, whose
    remote address is used (``<closed>`` when it has none). Other values print with str().
    """
    if not isinstance(addr, tuple):
        sock = getattr(addr, "sock", addr)
        if not hasattr(sock, "getpeername"):
            return "" if addr is None else str(addr)
        try:
            addr = sock.getpeername()
        except (OSError, ValueError, TypeError):
            return "<closed>"
        if not isinstance(addr, tuple):
            return str(addr)
    if len(addr) < 2:
        return str(addr)
    host = "<nil>" if addr[0] is None else str(addr[0])
    if ":" in host:
        return "[%s]:%d" % (host, addr[1])
    return "%s:%d" % (host, addr[1])


class ParseError(ValueError):
    """Go's ``net.ParseError``: ``invalid <type>: <text>``."""

    def __init__(self, type_, text):
        super().__init__("invalid %s: %s" % (type_, text))
        self.type = type_
        self.text = text

    def __eq__(self, other):
        return isinstance(other, ParseError) and (self.type, self.text) == (other.type, other.text)

    __hash__ = ValueError.__hash__


def parse_cidr(s: str):
    """Go's ``net.ParseCIDR`` (network part only): host bits are masked off."""
    addr, slash, bits = s.partition("/")
    if not slash or not bits.isascii() or not bits.isdigit() or len(bits) > 3 or "%" in addr:
        raise ParseError("CIDR address", s)
    try:
        ip = ipaddress.ip_address(addr)
        net = ipaddress.ip_network("%s/%s" % (ip, int(bits)), strict=False)
    except ValueError:
        raise ParseError("CIDR address", s) from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None and int(bits) >= 96:
        # Go stores ::ffff:a.b.c.d/n as an IPv4 network of n-96 bits.
        net = ipaddress.ip_network("%s/%d" % (ip.ipv4_mapped, int(bits) - 96), strict=False)
    return net


def _init():
    """Fill the LAN and special-network lists (Go's package init)."""
    # RFC 5735, RFC 5156 and the IANA special-purpose address registries.
    for c in ("0.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"):
        lan4.add(c)
    for c in ("fe80::/10", "fc00::/7"):
        lan6.add(c)
    for c in ("192.0.0.0/29", "192.0.0.9/32", "192.0.0.170/32", "192.0.0.171/32", "192.0.2.0/24",
              "192.31.196.0/24", "192.52.193.0/24", "192.88.99.0/24", "192.175.48.0/24",
              "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "255.255.255.255/32"):
        special4.add(c)
    for c in ("100::/64", "2001::/32", "2001:1::1/128", "2001:2::/48", "2001:3::/32",
              "2001:4:112::/48", "2001:5::/32", "2001:10::/28", "2001:20::/28", "2001:db8::/32",
              "2002::/16"):
        special6.add(c)


def parse_netlist(s: str) -> Netlist:
    """Parse a comma-separated list of CIDR masks; whitespace is ignored."""
    s = s.replace(" ", "").replace("\n", "").replace("\t", "")
    lst = Netlist()
    for mask in s.split(","):
        if mask == "":
            continue
        lst.append(parse_cidr(mask))
    return lst


class Netlist(list):
    """A list of IP networks (``ipaddress.ip_network`` objects)."""

    def marshal_toml(self) -> list:
        return [str(n) for n in self]

    @classmethod
    def unmarshal_toml(cls, masks) -> "Netlist":
        return cls(parse_cidr(m) for m in masks)

    def add(self, cidr: str) -> None:
        """Append a network given in CIDR notation; ParseError if invalid."""
        self.append(parse_cidr(cidr))

    def contains(self, ip) -> bool:
        """Whether ``ip`` lies in any of the networks."""
        ip = to_ip(ip)
        if ip is None:
            return False
        for net in self:
            if ip in net:
                return True
        return False

    def __str__(self):
        return ", ".join(str(n) for n in self)


lan4, lan6, special4, special6 = Netlist(), Netlist(), Netlist(), Netlist()
_init()


class _RangeIndex:
    """Integer (network, mask) pairs bucketed by the leading bits of the address.

    A lookup checks only the networks that share the address's first byte (IPv4)
    or first 16 bits (IPv6), plus the few networks wider than that.
    """

    __slots__ = ("shift", "buckets", "wide")

    def __init__(self, lst, size, keybits):
        self.shift = size - keybits
        self.buckets = {}
        wide = []
        for n in lst:
            pair = (int(n.network_address), int(n.netmask))
            if n.prefixlen >= keybits:
                self.buckets.setdefault(pair[0] >> self.shift, []).append(pair)
            else:
                wide.append(pair)
        self.wide = tuple(wide)

    def contains(self, v):
        bucket = self.buckets.get(v >> self.shift)
        if bucket is not None:
            for net, mask in bucket:
                if v & mask == net:
                    return True
        for net, mask in self.wide:
            if v & mask == net:
                return True
        return False


_lan = {4: _RangeIndex(lan4, 32, 8).contains, 6: _RangeIndex(lan6, 128, 16).contains}
_special = {4: _RangeIndex(special4, 32, 8).contains, 6: _RangeIndex(special6, 128, 16).contains}


# Address classes as integer tests: ipaddress's is_loopback & co. are slow properties.
def _loopback(v, version):
    return (v >> 24) == 127 if version == 4 else v == 1


def _multicast(v, version):
    return (v >> 28) == 0xE if version == 4 else (v >> 120) == 0xFF


def is_lan(ip) -> bool:
    """Whether ``ip`` is a loopback or local-network (private, link-local) address."""
    ip = to_ip(ip)
    if ip is None:
        return False
    v, version = int(ip), ip.version
    return _loopback(v, version) or _lan[version](v)


def is_special_network(ip) -> bool:
    """Whether ``ip`` is multicast or in a special-purpose network (test nets, broadcast...)."""
    ip = to_ip(ip)
    if ip is None:
        return False
    v, version = int(ip), ip.version
    return _multicast(v, version) or _special[version](v)


class RelayIPError(ValueError):
    """Why an address relayed by another node was rejected."""


errInvalid = RelayIPError("invalid IP")
errUnspecified = RelayIPError("zero address")
errSpecial = RelayIPError("special network")
errLoopback = RelayIPError("loopback address from non-loopback host")
errLAN = RelayIPError("LAN address from WAN host")


def check_relay_ip(sender, addr):
    """Check whether ``addr``, relayed to us by ``sender``, is acceptable.

    Like geth, this returns the error value (one of ``errInvalid``, ``errUnspecified``,
    ``errSpecial``, ``errLoopback``, ``errLAN``) or None if the address is fine; callers
    that want an exception raise it themselves. No exception is raised on this hot path.
    """
    addr = to_ip(addr)
    if addr is None:
        return errInvalid
    v, version = int(addr), addr.version
    if v == 0:
        return errUnspecified
    if _multicast(v, version) or _special[version](v):
        return errSpecial
    loopback = _loopback(v, version)
    if loopback or _lan[version](v):
        sender = to_ip(sender)
        if sender is None:
            return errLoopback if loopback else errLAN
        sv, sversion = int(sender), sender.version
        if loopback and not _loopback(sv, sversion):
            return errLoopback
        if not (_loopback(sv, sversion) or _lan[sversion](sv)):
            return errLAN
    return None


def same_net(bits: int, ip, other) -> bool:
    """Whether the first ``bits`` bits of both addresses are equal (same family only)."""
    ip, other = to_ip(ip), to_ip(other)
    if ip is None or other is None or ip.version != other.version:
        return False
    size = ip.max_prefixlen
    if bits > size:
        # geth compares nothing beyond the address length (and fails for a partial byte)
        return bits // 8 <= size // 8 and int(ip) == int(other)
    shift = size - bits
    return (int(ip) >> shift) == (int(other) >> shift)


class DistinctNetSet:
    """Tracks IPs, allowing at most ``limit`` of them per ``subnet``-bit prefix."""

    __slots__ = ("subnet", "limit", "members")

    def __init__(self, subnet: int = 0, limit: int = 0):
        self.subnet = subnet   # how many leading bits make two IPs "the same subnet"
        self.limit = limit     # at most this many IPs per such subnet
        self.members = {}      # (version, prefix) -> count

    def add(self, ip) -> bool:
        """Add ``ip``; False (and no change) if its subnet is already full."""
        key = self._key(ip)
        n = self.members.get(key, 0)
        if n < self.limit:
            self.members[key] = n + 1
            return True
        return False

    def remove(self, ip) -> None:
        key = self._key(ip)
        n = self.members.get(key)
        if n is not None:
            if n == 1:
                del self.members[key]
            else:
                self.members[key] = n - 1

    def contains(self, ip) -> bool:
        """Whether an IP of the same subnet as ``ip`` is in the set."""
        return self._key(ip) in self.members

    __contains__ = contains

    def len(self) -> int:
        """The number of tracked IPs."""
        return sum(self.members.values())

    __len__ = len

    def _key(self, ip):
        ip = to_ip(ip)
        if ip is None:
            return (0, 0, 0)
        size = ip.max_prefixlen
        bits = self.subnet if self.subnet < size else size
        return (ip.version, bits, int(ip) >> (size - bits))

    def __str__(self):
        parts = []
        for key in sorted(self.members):
            version, bits, prefix = key
            size = 32 if version == 4 else 128
            if version == 0:
                continue
            ip = (ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address)(prefix << (size - bits))
            parts.append("%s\u00d7%d" % (ip, self.members[key]))
        return "{" + " ".join(parts) + "}"
