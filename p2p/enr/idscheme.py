"""Identity schemes and the "v4" scheme (port of geth's p2p/enr/idscheme.go).

An identity scheme verifies a record's signature and derives the node address
from it. "v4" signs ``keccak256(rlp([seq, k, v, ...]))`` with secp256k1 (the
64-byte ``R || S``, no recovery id) and its node address is the Keccak-256 of
the 64-byte public key, i.e. of the discovery v4 node ID.
"""

from __future__ import annotations

import threading

from p2p import crypto, rlpcodec
from p2p.enr.enr import RecordError, _rlp_list, errInvalidSig
from p2p.enr.entries import ID, Secp256k1, Entry

_schemes = {}  # the registry of known identity schemes (a sync.Map in Go)
_schemes_lock = threading.Lock()


class IdentityScheme:
    """What a scheme provides: ``verify(r, sig)`` raises on a bad signature; ``node_addr(r)``."""

    def verify(self, r, sig: bytes) -> None:
        raise NotImplementedError

    def node_addr(self, r) -> bytes:
        raise NotImplementedError


def register_identity_scheme(name: str, scheme: IdentityScheme) -> None:
    """Add a scheme to the registry; a name can be registered once."""
    with _schemes_lock:
        if name in _schemes:
            raise RuntimeError("identity scheme " + name + " already registered")
        _schemes[name] = scheme


def find_identity_scheme(name: str):
    """The scheme registered under ``name``, or None."""
    return _schemes.get(name)


def init():
    # Go's init(): the v4 scheme is known from import on.
    register_identity_scheme("v4", V4ID())


def sign_v4(r, privkey: crypto.PrivateKey) -> None:
    """Sign ``r`` with the v4 scheme (setting ``id`` and ``secp256k1``); ``r`` is unchanged on error."""
    cpy = r.copy()
    cpy.set(ID("v4"))
    cpy.set(Secp256k1(privkey.public_key))
    h = crypto.keccak256(_rlp_list(cpy.append_elements([])))
    sig = crypto.sign(h, privkey)[:64]  # without the recovery id
    cpy.set_sig("v4", sig)
    r._seq, r.signature, r.raw, r.pairs = cpy._seq, cpy.signature, cpy.raw, cpy.pairs


class _S256Raw(bytes, Entry):
    """The ``secp256k1`` entry left compressed (verification needs no decompression)."""

    ENR_KEY = "secp256k1"

    @classmethod
    def decode_rlp(cls, raw: bytes):
        return cls(rlpcodec.string(rlpcodec.head(raw, 0, len(raw)), raw))


class V4ID(IdentityScheme):
    """The "v4" identity scheme (secp256k1 and Keccak-256)."""

    def verify(self, r, sig: bytes) -> None:
        entry = r.load(_S256Raw)
        if len(entry) != 33:
            raise RecordError("invalid public key")
        h = crypto.keccak256(_rlp_list(r.append_elements([])))
        if not crypto.verify_signature(entry, h, sig):
            raise errInvalidSig

    def node_addr(self, r):
        try:
            pubkey = r.load(Secp256k1)
        except ValueError:  # missing or undecodable: no address, as in Go
            return None
        return crypto.keccak256(pubkey.raw)


init()
