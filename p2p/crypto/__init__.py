"""The subset of geth's ``crypto`` package that the p2p stack uses.

Keccak hashing, secp256k1 keys, 65-byte recoverable signatures ``[R || S || V]``
(V in {0, 1}), public key recovery and ECDH.

Like geth, which builds either on libsecp256k1 (cgo) or on a pure Go curve
(nocgo), this module has two backends behind one API:

* ``coincurve`` -- libsecp256k1 through cffi, the default;
* ``ecdsa`` -- the pure-Python ``ecdsa`` package, used when coincurve cannot be
  imported or when ``GETHP2P_CRYPTO_BACKEND=ecdsa`` is set.

``use_backend(name)`` switches at run time (the tests run everything on both).

Keys are small value objects: :class:`PrivateKey` holds the 32-byte secret,
:class:`PublicKey` the 64-byte ``X || Y`` encoding that devp2p calls a node ID.
"""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import hmac
import os
import secrets

import sha3 as _sha3

__all__ = [
    "keccak256", "keccak256_hash", "keccak512", "to_ecdsa", "to_ecdsa_unsafe",
    "from_ecdsa", "unmarshal_pubkey", "from_ecdsa_pub", "hex_to_ecdsa",
    "load_ecdsa", "save_ecdsa", "generate_key", "validate_signature_values",
    "pubkey_to_address", "ecrecover", "sig_to_pub", "sign", "verify_signature",
    "decompress_pubkey", "compress_pubkey", "ecdh", "PrivateKey", "PublicKey",
    "CryptoError", "use_backend", "backend_name", "available_backends",
    "SECP256K1_N", "SECP256K1_HALF_N", "SIGNATURE_LENGTH", "new_keccak256",
]

SECP256K1_P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2
SIGNATURE_LENGTH = 65  # R(32) || S(32) || V(1)


class CryptoError(ValueError):
    """Raised for invalid keys, signatures and encodings."""


# ---------------------------------------------------------------------------
# Keccak

new_keccak256 = _sha3.keccak_256
_keccak512 = _sha3.keccak_512


def keccak256(*data: bytes) -> bytes:
    """Keccak-256 (the pre-standard SHA-3 that Ethereum uses) of the concatenation."""
    d = new_keccak256()
    for b in data:
        d.update(b)
    return d.digest()


# geth returns a common.Hash here; a 32-byte bytes value serves the same purpose.
keccak256_hash = keccak256


def keccak512(*data: bytes) -> bytes:
    d = _keccak512()
    for b in data:
        d.update(b)
    return d.digest()


# ---------------------------------------------------------------------------
# Key types


class PublicKey:
    """A secp256k1 public key, stored as its 64-byte ``X || Y`` encoding."""

    __slots__ = ("raw", "_hash")

    def __init__(self, raw: bytes):
        if len(raw) != 64:
            raise CryptoError("public key must be 64 bytes, got %d" % len(raw))
        self.raw = bytes(raw)
        self._hash = None

    @property
    def x(self) -> int:
        return int.from_bytes(self.raw[:32], "big")

    @property
    def y(self) -> int:
        return int.from_bytes(self.raw[32:], "big")

    def __eq__(self, other):
        return isinstance(other, PublicKey) and other.raw == self.raw

    def __hash__(self):
        if self._hash is None:
            self._hash = hash(self.raw)
        return self._hash

    def __repr__(self):
        return "PublicKey(%s)" % self.raw.hex()


class PrivateKey:
    """A secp256k1 private key: the 32-byte secret and its public key."""

    __slots__ = ("secret", "public_key")

    def __init__(self, secret: bytes, public_key: PublicKey):
        self.secret = secret
        self.public_key = public_key

    @property
    def d(self) -> int:
        return int.from_bytes(self.secret, "big")

    def __eq__(self, other):
        return isinstance(other, PrivateKey) and hmac.compare_digest(other.secret, self.secret)

    def __hash__(self):
        return hash(self.public_key)

    def __repr__(self):
        return "PrivateKey(<secret>, pub=%s...)" % self.public_key.raw[:8].hex()


# ---------------------------------------------------------------------------
# Backends


class _CoincurveBackend:
    name = "coincurve"

    def __init__(self):
        import coincurve
        from coincurve._libsecp256k1 import ffi, lib
        from coincurve.context import GLOBAL_CONTEXT

        self._cc = coincurve
        self._ffi, self._lib, self._ctx = ffi, lib, GLOBAL_CONTEXT.ctx

    def public_from_secret(self, secret: bytes) -> bytes:
        return self._cc.PublicKey.from_valid_secret(secret).format(compressed=False)[1:]

    def sign(self, hash32: bytes, prv: PrivateKey) -> bytes:
        # Straight to libsecp256k1: coincurve.PrivateKey would first derive the
        # public key again (most keys here sign once, e.g. handshake ephemerals).
        ffi, lib = self._ffi, self._lib
        sig = ffi.new("secp256k1_ecdsa_recoverable_signature *")
        if not lib.secp256k1_ecdsa_sign_recoverable(self._ctx, sig, hash32, prv.secret, ffi.NULL, ffi.NULL):
            raise CryptoError("signing failed")
        out = ffi.new("unsigned char[64]")
        recid = ffi.new("int *")
        lib.secp256k1_ecdsa_recoverable_signature_serialize_compact(self._ctx, out, recid, sig)
        return bytes(ffi.buffer(out, 64)) + bytes((recid[0],))

    def recover(self, hash32: bytes, sig: bytes) -> bytes:
        try:
            pub = self._cc.PublicKey.from_signature_and_message(sig, hash32, hasher=None)
        except Exception as e:  # coincurve raises plain Exception/ValueError
            raise CryptoError("recovery failed: %s" % e) from None
        return pub.format(compressed=False)[1:]

    def verify(self, pub: bytes, hash32: bytes, sig64: bytes) -> bool:
        try:
            key = self._cc.PublicKey(b"\x04" + pub)
        except Exception:
            return False
        r = int.from_bytes(sig64[:32], "big")
        s = int.from_bytes(sig64[32:], "big")
        if not (0 < r < SECP256K1_N and 0 < s <= SECP256K1_HALF_N):
            return False
        der = _der_signature(r, s)
        try:
            return key.verify(der, hash32, hasher=None)
        except Exception:
            return False

    def ecdh(self, prv: PrivateKey, pub: bytes) -> bytes:
        try:
            key = self._cc.PublicKey(b"\x04" + pub)
            point = key.multiply(prv.secret)
        except Exception as e:
            raise CryptoError("invalid public key for ECDH: %s" % e) from None
        return point.format(compressed=False)[1:33]

    def decompress(self, pub33: bytes) -> bytes:
        try:
            return self._cc.PublicKey(pub33).format(compressed=False)[1:]
        except Exception as e:
            raise CryptoError("invalid compressed public key: %s" % e) from None

    def compress(self, pub: bytes) -> bytes:
        return self._cc.PublicKey(b"\x04" + pub).format(compressed=True)


class _EcdsaBackend:
    """Pure Python secp256k1 on top of the ``ecdsa`` package's point arithmetic."""

    name = "ecdsa"

    def __init__(self):
        import ecdsa
        from ecdsa import ellipticcurve, numbertheory

        self._ecdsa = ecdsa
        self._curve = ecdsa.SECP256k1
        self._g = ecdsa.SECP256k1.generator
        self._ec = ellipticcurve
        self._nt = numbertheory


    def _point(self, pub: bytes):
        x = int.from_bytes(pub[:32], "big")
        y = int.from_bytes(pub[32:], "big")
        if not _on_curve(x, y):
            raise CryptoError("invalid secp256k1 public key")
        return self._ec.PointJacobi(self._curve.curve, x, y, 1, self._curve.order)

    @staticmethod
    def _encode(point) -> bytes:
        return point.x().to_bytes(32, "big") + point.y().to_bytes(32, "big")

    def public_from_secret(self, secret: bytes) -> bytes:
        return self._encode((self._g * int.from_bytes(secret, "big")).to_affine())

    def sign(self, hash32: bytes, prv: PrivateKey) -> bytes:
        n = SECP256K1_N
        d = prv.d
        z = int.from_bytes(hash32, "big")
        # RFC 6979 nonce with HMAC-SHA256, as libsecp256k1 does without extra data.
        k_gen = self._ecdsa.rfc6979.generate_k(n, d, hashlib.sha256, hash32)
        r_point = (self._g * k_gen).to_affine()
        r = r_point.x() % n
        kinv = self._nt.inverse_mod(k_gen, n)
        s = (kinv * (z + r * d)) % n
        if r == 0 or s == 0:  # astronomically unlikely; libsecp256k1 would retry
            raise CryptoError("signing produced a zero value")
        v = (r_point.y() & 1) | (2 if r_point.x() >= n else 0)
        if s > SECP256K1_HALF_N:
            s = n - s
            v ^= 1
        return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])

    def recover(self, hash32: bytes, sig: bytes) -> bytes:
        n, p = SECP256K1_N, SECP256K1_P
        r = int.from_bytes(sig[:32], "big")
        s = int.from_bytes(sig[32:64], "big")
        v = sig[64]
        if not (0 < r < n and 0 < s < n) or v > 3:
            raise CryptoError("recovery failed: invalid signature values")
        x = r + n if v & 2 else r
        if x >= p:
            raise CryptoError("recovery failed: invalid signature values")
        alpha = (pow(x, 3, p) + 7) % p
        y = pow(alpha, (p + 1) // 4, p)
        if (y * y) % p != alpha:
            raise CryptoError("recovery failed: R is not on the curve")
        if (y & 1) != (v & 1):
            y = p - y
        big_r = self._ec.PointJacobi(self._curve.curve, x, y, 1, n)
        z = int.from_bytes(hash32, "big")
        rinv = self._nt.inverse_mod(r, n)
        q = big_r * ((s * rinv) % n) + self._g * ((-z * rinv) % n)
        q = q.to_affine()
        if q == self._ec.INFINITY or q.x() is None:
            raise CryptoError("recovery failed: point at infinity")
        return self._encode(q)

    def verify(self, pub: bytes, hash32: bytes, sig64: bytes) -> bool:
        n = SECP256K1_N
        r = int.from_bytes(sig64[:32], "big")
        s = int.from_bytes(sig64[32:], "big")
        if not (0 < r < n and 0 < s <= SECP256K1_HALF_N):
            return False
        try:
            q = self._point(pub)
        except CryptoError:
            return False
        z = int.from_bytes(hash32, "big")
        w = self._nt.inverse_mod(s, n)
        pt = (self._g * ((z * w) % n) + q * ((r * w) % n)).to_affine()
        if pt == self._ec.INFINITY:
            return False
        return pt.x() % n == r

    def ecdh(self, prv: PrivateKey, pub: bytes) -> bytes:
        q = self._point(pub)
        pt = (q * prv.d).to_affine()
        if pt == self._ec.INFINITY:
            raise CryptoError("ECDH produced the point at infinity")
        return pt.x().to_bytes(32, "big")

    def decompress(self, pub33: bytes) -> bytes:
        p = SECP256K1_P
        if pub33[0] not in (2, 3):
            raise CryptoError("invalid compressed public key prefix")
        x = int.from_bytes(pub33[1:], "big")
        if x >= p:
            raise CryptoError("invalid compressed public key")
        alpha = (pow(x, 3, p) + 7) % p
        y = pow(alpha, (p + 1) // 4, p)
        if (y * y) % p != alpha:
            raise CryptoError("invalid compressed public key: not on curve")
        if (y & 1) != (pub33[0] & 1):
            y = p - y
        return x.to_bytes(32, "big") + y.to_bytes(32, "big")

    def compress(self, pub: bytes) -> bytes:
        return bytes([2 | (pub[63] & 1)]) + pub[:32]


def _on_curve(x: int, y: int) -> bool:
    p = SECP256K1_P
    return 0 <= x < p and 0 <= y < p and (y * y - x * x * x - 7) % p == 0


def _der_int(v: int) -> bytes:
    b = v.to_bytes((v.bit_length() + 8) // 8, "big")  # leading zero keeps it positive
    return b"\x02" + bytes([len(b)]) + b


def _der_signature(r: int, s: int) -> bytes:
    body = _der_int(r) + _der_int(s)
    return b"\x30" + bytes([len(body)]) + body


_BACKENDS = {"coincurve": _CoincurveBackend, "ecdsa": _EcdsaBackend}
_instances: dict = {}


def available_backends() -> list:
    """Names of the backends that can be loaded on this machine."""
    names = []
    for name in _BACKENDS:
        try:
            _load(name)
            names.append(name)
        except ImportError:
            pass
    return names


def _load(name: str):
    if name not in _BACKENDS:
        raise CryptoError("unknown crypto backend %r (have: %s)" % (name, ", ".join(_BACKENDS)))
    if name not in _instances:
        _instances[name] = _BACKENDS[name]()
    return _instances[name]


def _default_backend():
    wanted = os.environ.get("GETHP2P_CRYPTO_BACKEND", "").strip()
    if wanted:
        return _load(wanted)
    try:
        return _load("coincurve")
    except ImportError:
        return _load("ecdsa")


_backend = _default_backend()


def backend_name() -> str:
    return _backend.name


@contextlib.contextmanager
def use_backend(name: str):
    """Run a block with the named backend, then restore the previous one."""
    global _backend
    previous = _backend
    _backend = _load(name)
    try:
        yield _backend
    finally:
        _backend = previous


# ---------------------------------------------------------------------------
# geth's crypto API


def to_ecdsa(d: bytes) -> PrivateKey:
    """Private key from its 32-byte big-endian secret (strict length)."""
    return _to_ecdsa(d, True)


def to_ecdsa_unsafe(d: bytes) -> PrivateKey | None:
    """Like to_ecdsa, but accepts short (unpadded) secrets and returns None on error."""
    try:
        return _to_ecdsa(d, False)
    except CryptoError:
        return None


def _to_ecdsa(d: bytes, strict: bool) -> PrivateKey:
    if strict and len(d) != 32:
        raise CryptoError("invalid length, need 256 bits")
    v = int.from_bytes(d, "big")
    if v >= SECP256K1_N:
        raise CryptoError("invalid private key, >=N")
    if v <= 0:
        raise CryptoError("invalid private key, zero or negative")
    secret = v.to_bytes(32, "big")
    return PrivateKey(secret, PublicKey(_backend.public_from_secret(secret)))


def from_ecdsa(priv) -> bytes | None:
    """The 32-byte secret of a private key (None for None)."""
    if priv is None:
        return None
    return priv.secret


def unmarshal_pubkey(pub: bytes) -> PublicKey:
    """Public key from the 65-byte uncompressed encoding ``0x04 || X || Y``."""
    if not pub or len(pub) != 65 or pub[0] != 4:  # None is treated like geth's nil slice
        raise CryptoError("invalid secp256k1 public key")
    x = int.from_bytes(pub[1:33], "big")
    y = int.from_bytes(pub[33:], "big")
    if not _on_curve(x, y):
        raise CryptoError("invalid secp256k1 public key")
    return PublicKey(pub[1:])


def from_ecdsa_pub(pub) -> bytes | None:
    """The 65-byte uncompressed encoding of a public key (None for None)."""
    if pub is None:
        return None
    return b"\x04" + pub.raw


def hex_to_ecdsa(hexkey: str) -> PrivateKey:
    try:
        b = binascii.unhexlify(hexkey)
    except (binascii.Error, ValueError, TypeError):
        raise CryptoError("invalid hex string") from None
    return to_ecdsa(b)


def load_ecdsa(file: str) -> PrivateKey:
    """Read a key file: the secret as 64 hex characters (extra bytes are ignored)."""
    with open(file, "rb") as fd:
        buf = fd.read(64)
    if len(buf) < 64:
        raise CryptoError("key file %s: unexpected EOF (need 64 hex characters)" % file)
    try:
        key = binascii.unhexlify(buf)
    except (binascii.Error, ValueError):
        raise CryptoError("key file %s: invalid hex" % file) from None
    return to_ecdsa(key)


def save_ecdsa(file: str, key: PrivateKey) -> None:
    """Write a key file (hex secret) readable by its owner only."""
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.secret.hex().encode())


def generate_key() -> PrivateKey:
    while True:
        d = secrets.token_bytes(32)
        v = int.from_bytes(d, "big")
        if 0 < v < SECP256K1_N:
            return to_ecdsa(d)


def validate_signature_values(v: int, r: int, s: int, homestead: bool) -> bool:
    if r < 1 or s < 1:
        return False
    if homestead and s > SECP256K1_HALF_N:
        return False
    return r < SECP256K1_N and s < SECP256K1_N and v in (0, 1)


def pubkey_to_address(p: PublicKey) -> bytes:
    return keccak256(p.raw)[12:]


def ecrecover(hash32: bytes, sig: bytes) -> bytes:
    """The 65-byte uncompressed public key that made ``sig`` over ``hash32``."""
    return b"\x04" + _recover(hash32, sig)


def sig_to_pub(hash32: bytes, sig: bytes) -> PublicKey:
    return PublicKey(_recover(hash32, sig))


def recover_node_id(hash32: bytes, sig: bytes) -> bytes:
    """The 64-byte ``X || Y`` public key (a devp2p node ID) that made ``sig``."""
    return _recover(hash32, sig)


def _recover(hash32: bytes, sig: bytes) -> bytes:
    if len(hash32) != 32:
        raise CryptoError("hash is required to be exactly 32 bytes (%d)" % len(hash32))
    if len(sig) != SIGNATURE_LENGTH:
        raise CryptoError("invalid signature length")
    if sig[64] >= 4:
        raise CryptoError("invalid signature recovery id")
    return _backend.recover(hash32, sig)


def sign(hash32: bytes, prv: PrivateKey) -> bytes:
    """Recoverable ECDSA signature ``[R || S || V]`` (V in {0, 1}, low S, RFC 6979)."""
    if len(hash32) != 32:
        raise CryptoError("hash is required to be exactly 32 bytes (%d)" % len(hash32))
    return _backend.sign(hash32, prv)


def verify_signature(pubkey: bytes, hash32: bytes, signature: bytes) -> bool:
    """Check a 64-byte ``[R || S]`` signature against a 33- or 65-byte public key."""
    if not signature or not hash32 or not pubkey:  # None is treated like geth's nil slice
        return False
    if len(signature) != 64 or len(hash32) != 32:
        return False
    if len(pubkey) == 65 and pubkey[0] == 4:
        raw = pubkey[1:]
    elif len(pubkey) == 33:
        try:
            raw = _backend.decompress(pubkey)
        except CryptoError:
            return False
    else:
        return False
    return _backend.verify(raw, hash32, signature)


def decompress_pubkey(pubkey: bytes) -> PublicKey:
    if not pubkey or len(pubkey) != 33:  # None is treated like geth's nil slice
        raise CryptoError("invalid compressed public key length")
    return PublicKey(_backend.decompress(pubkey))


def compress_pubkey(pubkey: PublicKey) -> bytes:
    return _backend.compress(pubkey.raw)


def ecdh(prv: PrivateKey, pub: PublicKey) -> bytes:
    """The X coordinate of ``prv * pub``: the shared secret ECIES and RLPx use."""
    return _backend.ecdh(prv, pub.raw)
