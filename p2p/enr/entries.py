"""The known record entries (port of geth's p2p/enr/entries.go).

An entry type has a key (``ENR_KEY``), encodes its value with ``encode_rlp()``
and decodes one with the class method ``decode_rlp(raw)``: ``r.set(UDP(30303))``
stores a value, ``r.load(UDP)`` returns ``UDP(30303)``. Ports are ints, the
identity scheme name is a str, IPs are their bytes (like Go's ``net.IP``), and
``Secp256k1`` is a public key. :func:`with_entry` wraps any other key and value.
"""

from __future__ import annotations

import ipaddress

from p2p import crypto, rlpcodec


def _key(e) -> bytes:
    # Python-only: keys are bytes on the wire; entry types may name them as str.
    k = e.enr_key()
    return k.encode("latin-1") if isinstance(k, str) else bytes(k)


def _string(raw: bytes) -> bytes:
    # Python-only: the one RLP string that is all of raw (geth's rlp.DecodeBytes into []byte).
    raw = bytes(raw)
    return rlpcodec.string(rlpcodec.one(raw), raw)


class Entry:
    """What a record entry provides (Go's ``Entry`` interface)."""

    ENR_KEY = ""

    @classmethod
    def enr_key(cls):
        return cls.ENR_KEY


class Generic(Entry):
    """Any key and value: set with any RLP value, load with a sedes (or None for raw items).

    The sedes is anything with ``deserialize(item)``, a pyrlp sedes for instance;
    values that are not bytes, ints and lists go to pyrlp (see ``rlpcodec.encode``).
    """

    __slots__ = ("key", "value")

    def __init__(self, key, value):
        self.key = key
        self.value = value

    def enr_key(self):
        return self.key

    def encode_rlp(self) -> bytes:
        return rlpcodec.encode(self.value)

    def decode_rlp(self, raw: bytes):
        item = rlpcodec.decode(raw, strict=True)
        return self.value.deserialize(item) if hasattr(self.value, "deserialize") else item


def with_entry(k, v) -> Generic:
    """An entry for key ``k``: ``v`` is the value to set, or for load the sedes to decode with."""
    return Generic(k, v)


class _Port(int, Entry):
    # The four port entries share this body (Go declares each as its own uint16 type).

    def encode_rlp(self) -> bytes:
        return rlpcodec.encode_uint(int(self))

    @classmethod
    def decode_rlp(cls, raw: bytes):
        return cls(rlpcodec.uint(rlpcodec.one(raw), raw, 2))


class TCP(_Port):
    """The ``tcp`` key: the node's TCP (RLPx) port."""

    ENR_KEY = "tcp"


# departure: enr-ip6-entries: tcp6, udp6 and ip6 entries from EIP-778 (geth 1.9.0 entries.go)
class TCP6(_Port):
    """The ``tcp6`` key: the node's IPv6-specific TCP port."""

    ENR_KEY = "tcp6"


class UDP(_Port):
    """The ``udp`` key: the node's UDP (discovery) port."""

    ENR_KEY = "udp"


class UDP6(_Port):
    """The ``udp6`` key: the node's IPv6-specific UDP port."""

    ENR_KEY = "udp6"


class ID(str, Entry):
    """The ``id`` key: the name of the identity scheme."""

    ENR_KEY = "id"

    def encode_rlp(self) -> bytes:
        return rlpcodec.encode_bytes(self.encode("latin-1"))

    @classmethod
    def decode_rlp(cls, raw: bytes):
        return cls(_string(raw).decode("latin-1"))


IDv4 = ID("v4")  # the default identity scheme


class IP(bytes, Entry):
    """The ``ip`` key: the node's IP address as 4 or 16 bytes (an IPv4 one is sent as 4)."""

    ENR_KEY = "ip"

    def __new__(cls, ip=b""):
        if isinstance(ip, str):
            ip = ipaddress.ip_address(ip)
        if isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            ip = ip.packed
        return super().__new__(cls, ip)

    def encode_rlp(self) -> bytes:
        b = bytes(self)
        if len(b) == 16 and b[:12] == b"\x00" * 10 + b"\xff\xff":  # net.IP.To4
            b = b[12:]
        return rlpcodec.encode_bytes(b)

    @classmethod
    def decode_rlp(cls, raw: bytes):
        b = _string(raw)
        if len(b) != 4 and len(b) != 16:
            raise ValueError("invalid IP address, want 4 or 16 bytes: %s" % b.hex())
        return cls(b)

    def address(self):
        """The address as an ``ipaddress`` object."""
        return ipaddress.ip_address(bytes(self))


class IP6(IP):
    """The ``ip6`` key: the node's IPv6 address (16 bytes)."""

    ENR_KEY = "ip6"

    @classmethod
    def decode_rlp(cls, raw: bytes):
        b = _string(raw)
        if len(b) != 16:
            raise ValueError("invalid IPv6 address, want 16 bytes: %s" % b.hex())
        return cls(b)


class Secp256k1(crypto.PublicKey, Entry):
    """The ``secp256k1`` key: the node's public key, sent compressed (33 bytes)."""

    __slots__ = ()
    ENR_KEY = "secp256k1"

    def __init__(self, pub):
        super().__init__(pub.raw if isinstance(pub, crypto.PublicKey) else pub)

    def encode_rlp(self) -> bytes:
        return rlpcodec.encode_bytes(crypto.compress_pubkey(self))

    @classmethod
    def decode_rlp(cls, raw: bytes):
        return cls(crypto.decompress_pubkey(_string(raw)))


class KeyError(ValueError):  # noqa: A001 - Go's name; it is enr.KeyError, not the builtin
    """An error about one key: missing (``is_not_found``) or a value that does not decode.

    A ValueError, as all bad input is: a decoded record whose ``secp256k1`` key is
    missing fails verification with this error.
    """

    def __init__(self, key, err):
        super().__init__(key, err)
        self.key = key
        self.err = err

    def __str__(self):
        key = self.key.decode("latin-1") if isinstance(self.key, bytes) else self.key
        if self.err is errNotFound:
            return "missing ENR key %r" % key
        return "ENR key %r: %s" % (key, self.err)

    def __eq__(self, other):
        return isinstance(other, KeyError) and (self.key, self.err) == (other.key, other.err)

    __hash__ = Exception.__hash__


errNotFound = LookupError("no such key in record")


def is_not_found(err) -> bool:
    """Whether ``err`` says that a key is missing from a record."""
    return isinstance(err, KeyError) and err.err is errNotFound
