"""Ethereum Node Records (EIP-778), a port of geth's p2p/enr package.

``enr.py`` holds :class:`Record`, ``entries.py`` the known keys, ``idscheme.py``
the "v4" identity scheme::

    r = Record()
    r.set(IP("127.0.0.1")); r.set(UDP(30303))
    sign_v4(r, key)
    blob = r.encode_rlp()          # at most SizeLimit (300) bytes
    r2 = Record(); r2.decode_rlp(blob)   # verifies the signature
    text(r2)                       # "enr:-IS4Q..."
"""

from p2p.enr.enr import (  # noqa: F401
    Record, RecordError, SizeLimit, errDuplicateKey, errEncodeUnsigned, errIncompletePair,
    errInvalidSig, errNoID, errNotSorted, errTooBig, parse_text, text,
)
from p2p.enr.entries import (  # noqa: F401
    ID, IDv4, IP, IP6, TCP, TCP6, UDP, UDP6, Entry, Generic, KeyError, Secp256k1, errNotFound,
    is_not_found, with_entry,
)
from p2p.enr.idscheme import (  # noqa: F401
    IdentityScheme, V4ID, find_identity_scheme, register_identity_scheme, sign_v4,
)
