"""ECIES on secp256k1, as geth's ``crypto/ecies`` package does it for RLPx.

The scheme (SEC 1, 5.1, with geth's choices):

* an ephemeral key pair ``R`` is drawn and the shared secret ``z`` is the X
  coordinate of ``r * K_B`` (ECDH, through :func:`p2p.crypto.ecdh`, so both
  crypto backends are used the same way);
* the NIST SP 800-56 concatenation KDF with SHA-256 stretches ``z || s1`` into
  an AES-128 key ``Ke`` and a MAC key seed; the MAC key is ``SHA-256(seed)``;
* the message is encrypted with AES-128-CTR under a random IV;
* the tag is HMAC-SHA-256 over ``IV || ciphertext || s2``.

The wire form is ``0x04 || R.X || R.Y || IV || ciphertext || tag``
(65 + 16 + len(m) + 32 bytes).

Keys: :class:`PublicKey` and :class:`PrivateKey` here are subclasses of the
:mod:`p2p.crypto` key types that also carry their :class:`ECIESParams`, so an
ECIES key can be handed straight to ``crypto.sign`` or ``crypto.ecdh``. Every
function also accepts plain :mod:`p2p.crypto` keys (the secp256k1 parameters
are assumed then), which is what geth's ``ImportECDSA`` would give.

geth's sentinel errors are exception classes with the same names, all
subclasses of :class:`ECIESError` (itself a :class:`p2p.crypto.CryptoError`).
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from p2p import crypto

__all__ = [
    "ECIESError", "ErrImport", "ErrInvalidCurve", "ErrInvalidParams",
    "ErrInvalidPublicKey", "ErrSharedKeyIsPointAtInfinity", "ErrSharedKeyTooBig",
    "ErrKeyDataTooLong", "ErrSharedTooLong", "ErrInvalidMessage",
    "ErrUnsupportedECDHAlgorithm", "ErrUnsupportedECIESParameters",
    "PublicKey", "PrivateKey", "import_ecdsa", "import_ecdsa_public",
    "generate_key", "max_shared_key_length", "generate_shared", "inc_counter",
    "concat_kdf", "message_tag", "generate_iv", "sym_encrypt", "sym_decrypt",
    "encrypt", "decrypt", "ECIESParams", "ECIES_AES128_SHA256", "ECIES_AES256_SHA256",
    "ECIES_AES256_SHA384", "ECIES_AES256_SHA512", "DEFAULT_CURVE", "params_from_curve",
    "add_params_for_curve", "OVERHEAD",
]


# ---------------------------------------------------------------------------
# Errors (geth's package-level error values become exception classes)


class ECIESError(crypto.CryptoError):
    """Base class of the ECIES errors; ``str()`` is geth's message."""

    message = "ecies: error"

    def __init__(self, *args):
        super().__init__(*(args or (self.message,)))


class ErrImport(ECIESError):
    message = "ecies: failed to import key"


class ErrInvalidCurve(ECIESError):
    message = "ecies: invalid elliptic curve"


class ErrInvalidParams(ECIESError):
    message = "ecies: invalid ECIES parameters"


class ErrInvalidPublicKey(ECIESError):
    message = "ecies: invalid public key"


class ErrSharedKeyIsPointAtInfinity(ECIESError):
    message = "ecies: shared key is point at infinity"


class ErrSharedKeyTooBig(ECIESError):
    message = "ecies: shared key params are too big"


class ErrKeyDataTooLong(ECIESError):
    message = "ecies: can't supply requested key data"


class ErrSharedTooLong(ECIESError):
    message = "ecies: shared secret is too long"


class ErrInvalidMessage(ECIESError):
    message = "ecies: invalid message"


class ErrUnsupportedECDHAlgorithm(ECIESError):
    message = "ecies: unsupported ECDH algorithm"


class ErrUnsupportedECIESParameters(ECIESError):
    message = "ecies: unsupported ECIES parameters"


# ---------------------------------------------------------------------------
# Parameters (params.go)


class ECIESParams:
    """Symmetric cipher and MAC choices of one ECIES flavour.

    ``hash`` is a hashlib constructor, ``hash_algo`` its name, ``cipher`` maps
    a key to a ``cryptography`` block cipher algorithm object.
    """

    __slots__ = ("hash", "hash_algo", "cipher", "block_size", "key_len", "hash_size")

    def __init__(self, hash, hash_algo, cipher, block_size, key_len):
        self.hash = hash
        self.hash_algo = hash_algo
        self.cipher = cipher
        self.block_size = block_size
        self.key_len = key_len
        self.hash_size = hash().digest_size

    def __repr__(self):
        return "ECIESParams(AES%d, %s)" % (self.key_len * 8, self.hash_algo.upper())


_AES_BLOCK_SIZE = 16

ECIES_AES128_SHA256 = ECIESParams(hashlib.sha256, "sha256", algorithms.AES, _AES_BLOCK_SIZE, 16)
ECIES_AES256_SHA256 = ECIESParams(hashlib.sha256, "sha256", algorithms.AES, _AES_BLOCK_SIZE, 32)
ECIES_AES256_SHA384 = ECIESParams(hashlib.sha384, "sha384", algorithms.AES, _AES_BLOCK_SIZE, 32)
ECIES_AES256_SHA512 = ECIESParams(hashlib.sha512, "sha512", algorithms.AES, _AES_BLOCK_SIZE, 32)

# Only secp256k1 exists in this port; curves are named by strings.
DEFAULT_CURVE = "secp256k1"
_CURVE_BITS = {"secp256k1": 256}

_params_from_curve = {DEFAULT_CURVE: ECIES_AES128_SHA256}


def add_params_for_curve(curve: str, params: ECIESParams) -> None:
    _params_from_curve[curve] = params


def params_from_curve(curve: str) -> ECIESParams | None:
    """The recommended parameters for a curve name, or None if unknown."""
    return _params_from_curve.get(curve)


# Bytes ECIES adds to a message with the secp256k1 parameters: R, IV, tag.
OVERHEAD = 65 + _AES_BLOCK_SIZE + 32


# ---------------------------------------------------------------------------
# Keys (ecies.go)


class PublicKey(crypto.PublicKey):
    """An ECIES public key: a :class:`p2p.crypto.PublicKey` plus its parameters."""

    __slots__ = ("params",)

    curve = DEFAULT_CURVE

    def __init__(self, raw: bytes, params: ECIESParams = None):
        super().__init__(raw)
        self.params = params

    def export_ecdsa(self) -> crypto.PublicKey:
        """The plain :mod:`p2p.crypto` public key."""
        return crypto.PublicKey(self.raw)

    def __repr__(self):
        return "ecies.PublicKey(%s)" % self.raw.hex()


def import_ecdsa_public(pub: crypto.PublicKey) -> PublicKey:
    """An ECIES public key for a :mod:`p2p.crypto` public key."""
    if pub is None:
        raise ErrImport()
    return PublicKey(pub.raw, params_from_curve(DEFAULT_CURVE))


class PrivateKey(crypto.PrivateKey):
    """An ECIES private key; ``public_key`` is an ecies :class:`PublicKey`."""

    public_key: PublicKey

    __slots__ = ()

    curve = DEFAULT_CURVE

    @property
    def params(self) -> ECIESParams | None:
        return getattr(self.public_key, "params", None)

    def export_ecdsa(self) -> crypto.PrivateKey:
        """The plain :mod:`p2p.crypto` private key."""
        return crypto.PrivateKey(self.secret, self.public_key.export_ecdsa())

    # geth's API has these two as methods; the work is done by the module functions
    # of the same names, which stand at the methods' places in ecies.go's order.
    def generate_shared(self, pub, sk_len: int, mac_len: int) -> bytes:
        return generate_shared(self, pub, sk_len, mac_len)

    def decrypt(self, c: bytes, s1: bytes = None, s2: bytes = None) -> bytes:
        return decrypt(self, c, s1, s2)

    def __repr__(self):
        return "ecies.PrivateKey(<secret>, pub=%s...)" % self.public_key.raw[:8].hex()


def import_ecdsa(prv: crypto.PrivateKey) -> PrivateKey:
    """An ECIES private key for a :mod:`p2p.crypto` private key."""
    if prv is None:
        raise ErrImport()
    return PrivateKey(prv.secret, import_ecdsa_public(prv.public_key))


def generate_key(rand=None, curve: str = DEFAULT_CURVE, params: ECIESParams = None) -> PrivateKey:
    """A fresh key pair. ``rand(n) -> bytes`` is the entropy source (default os.urandom)."""
    if curve not in _CURVE_BITS:
        raise ErrInvalidCurve()
    if params is None:
        params = params_from_curve(curve)
    read = rand or os.urandom
    n = crypto.SECP256K1_N
    while True:
        secret = read(32)
        if len(secret) != 32:
            raise ECIESError("ecies: short read from entropy source")
        if 0 < int.from_bytes(secret, "big") < n:
            break
    k = crypto.to_ecdsa(secret)
    return PrivateKey(k.secret, PublicKey(k.public_key.raw, params))


def max_shared_key_length(pub) -> int:
    """The largest ``sk_len + mac_len`` the curve of ``pub`` can provide."""
    return (_CURVE_BITS[getattr(pub, "curve", DEFAULT_CURVE)] + 7) // 8


def generate_shared(prv, pub, sk_len: int, mac_len: int) -> bytes:
    """ECDH: the X coordinate of ``prv * pub``, ``sk_len + mac_len`` bytes long."""
    if getattr(prv, "curve", DEFAULT_CURVE) != getattr(pub, "curve", DEFAULT_CURVE):
        raise ErrInvalidCurve()
    n = sk_len + mac_len
    if n > max_shared_key_length(pub):
        raise ErrSharedKeyTooBig()
    try:
        x = crypto.ecdh(prv, pub)
    except crypto.CryptoError:
        raise ErrInvalidPublicKey() from None
    # geth left-pads X to n bytes; ecdh already gives 32 big-endian bytes.
    # (For n < 32 geth would panic; keeping the low-order bytes is the sane reading.)
    return x if n == 32 else x[32 - n:]


# ---------------------------------------------------------------------------
# KDF, MAC, symmetric cipher


def inc_counter(ctr: bytearray) -> None:
    """Increment a 4-byte big-endian counter in place (wrapping around)."""
    for i in (3, 2, 1, 0):
        ctr[i] = (ctr[i] + 1) & 0xFF
        if ctr[i] != 0:
            return


_BIG_2_TO_32_M1 = (1 << 32) - 1


def concat_kdf(hash, z: bytes, s1: bytes | None, kd_len: int) -> bytes:
    """NIST SP 800-56 concatenation KDF (section 5.8.1); ``hash`` is a hashlib constructor.

    geth sizes its loop with the hash's block size, which yields at least as many
    blocks as needed for the lengths it uses; here the count is exact (the output
    is the same prefix).
    """
    if s1 is None:
        s1 = b""
    size = hash().digest_size
    reps = (kd_len + size - 1) // size
    if reps > _BIG_2_TO_32_M1:
        raise ErrKeyDataTooLong()
    if reps == 1:  # the only case RLPx hits: one hash call, no counter object
        return hash(b"\x00\x00\x00\x01" + z + s1).digest()[:kd_len]
    counter = bytearray(b"\x00\x00\x00\x01")
    k = bytearray()
    for _ in range(reps):
        h = hash(counter)
        h.update(z)
        h.update(s1)
        k += h.digest()
        inc_counter(counter)
    return bytes(k[:kd_len])


def message_tag(hash, km: bytes, msg: bytes | memoryview, shared: bytes | None) -> bytes:
    """HMAC of ``msg || shared`` under ``km`` (SEC 1, 3.5)."""
    mac = hmac.new(km, msg, hash)
    if shared:
        mac.update(shared)
    return mac.digest()


def generate_iv(params: ECIESParams, rand=None) -> bytes:
    """A random IV of the cipher's block size."""
    iv = (rand or os.urandom)(params.block_size)
    if len(iv) != params.block_size:
        raise ECIESError("ecies: short read from entropy source")
    return iv


def sym_encrypt(rand, params: ECIESParams, key: bytes, m: bytes) -> bytes:
    """CTR-mode encryption: returns ``IV || ciphertext``."""
    iv = generate_iv(params, rand)
    enc = Cipher(params.cipher(key), modes.CTR(iv)).encryptor()
    return iv + enc.update(m)  # CTR has no final block: finalize() adds nothing


def sym_decrypt(params: ECIESParams, key: bytes, ct) -> bytes:
    """CTR-mode decryption of ``IV || ciphertext``."""
    bs = params.block_size
    mv = memoryview(ct)
    dec = Cipher(params.cipher(key), modes.CTR(bytes(mv[:bs]))).decryptor()
    return dec.update(mv[bs:])


def _derive_keys(params: ECIESParams, z: bytes, s1: bytes | None):
    key_len = params.key_len
    k = concat_kdf(params.hash, z, s1, key_len + key_len)
    return k[:key_len], params.hash(k[key_len:]).digest()


# ---------------------------------------------------------------------------
# Encrypt / Decrypt


def encrypt(pub, m: bytes, s1: bytes = None, s2: bytes = None, rand=None) -> bytes:
    """Encrypt ``m`` to ``pub`` (SEC 1, 5.1).

    ``s1`` goes into the key derivation, ``s2`` into the MAC; neither is part of
    the output. ``rand(n) -> bytes`` is the entropy source (default os.urandom).
    Returns ``0x04 || R || IV || ciphertext || tag``.
    """
    params = getattr(pub, "params", None)
    if params is None:
        params = params_from_curve(getattr(pub, "curve", DEFAULT_CURVE))
        if params is None:
            raise ErrUnsupportedECIESParameters()
    if not m:
        # geth returns a nil ciphertext and no error here; an explicit error is clearer.
        raise ErrInvalidMessage("ecies: cannot encrypt an empty message")
    r = generate_key(rand, params=params)
    z = generate_shared(r, pub, params.key_len, params.key_len)
    ke, km = _derive_keys(params, z, s1)
    em = sym_encrypt(rand, params, ke, m)
    d = message_tag(params.hash, km, em, s2)
    return b"".join((b"\x04", r.public_key.raw, em, d))


def decrypt(prv, c: bytes, s1: bytes = None, s2: bytes = None) -> bytes:
    """Decrypt an ECIES ciphertext with ``prv``; raises an :class:`ECIESError` subclass."""
    if not c:
        raise ErrInvalidMessage()
    params = getattr(prv.public_key, "params", None)
    if params is None:
        params = params_from_curve(getattr(prv, "curve", DEFAULT_CURVE))
        if params is None:
            raise ErrUnsupportedECIESParameters()
    h_len = params.hash_size
    first = c[0]
    if first not in (2, 3, 4):
        raise ErrInvalidPublicKey()
    r_len = (_CURVE_BITS[getattr(prv, "curve", DEFAULT_CURVE)] + 7) // 4
    if len(c) < r_len + h_len + 1:
        raise ErrInvalidMessage()
    if first != 4:  # like elliptic.Unmarshal, only the uncompressed form is accepted
        raise ErrInvalidPublicKey()
    m_start = r_len
    m_end = len(c) - h_len
    mv = memoryview(c)
    try:
        r = crypto.PublicKey(bytes(mv[1:r_len]))
    except crypto.CryptoError:
        raise ErrInvalidPublicKey() from None
    # generate_shared validates R (off-curve points give ErrInvalidPublicKey).
    z = generate_shared(prv, r, params.key_len, params.key_len)
    ke, km = _derive_keys(params, z, s1)
    em = mv[m_start:m_end]
    d = message_tag(params.hash, km, em, s2)
    if not hmac.compare_digest(bytes(mv[m_end:]), d):
        raise ErrInvalidMessage()
    if len(em) < params.block_size:
        # departure: ecies-short-message: an authentic message shorter than an IV is an error (geth panics)
        raise ErrInvalidMessage()
    return sym_decrypt(params, ke, em)
