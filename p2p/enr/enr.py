"""Ethereum Node Records, EIP-778 (port of geth's p2p/enr/enr.go).

A record is ``rlp([signature, seq, k1, v1, k2, v2, ...])``: a sequence number and
key/value pairs sorted by key, signed by an identity scheme (see ``idscheme.py``).
Keys are byte strings (``"ip"`` is accepted for ``b"ip"``); each value is kept as
its raw RLP encoding and decoded on :meth:`Record.load` by an entry type
(``entries.py``). Setting any key of a signed record bumps ``seq`` and drops the
signature: sign again before sending it.

Decoding (:meth:`Record.decode_rlp`) verifies the signature, so a decoded
``Record`` is always signed and valid.
"""

from __future__ import annotations

import base64
import bisect

from p2p import rlpcodec
from p2p.enr.entries import ID, KeyError, _key, errNotFound

SizeLimit = 300  # the largest encoded record, in bytes


class RecordError(ValueError):
    """An invalid, unsigned or oversize record. The ``err*`` values are sentinels."""


errNoID = RecordError("unknown or unspecified identity scheme")
errInvalidSig = RecordError("invalid signature")
errNotSorted = RecordError("record key/value pairs are not sorted by key")
errDuplicateKey = RecordError("record contains duplicate key")
errIncompletePair = RecordError("record contains incomplete k/v pair")
errTooBig = RecordError("record bigger than %d bytes" % SizeLimit)
errEncodeUnsigned = RecordError("can't encode unsigned record")


class Record:
    """A node record; ``Record()`` is the empty, unsigned record with seq 0."""

    __slots__ = ("_seq", "signature", "raw", "pairs")

    def __init__(self):
        self._seq = 0
        self.signature = None  # bytes once signed (or decoded)
        self.raw = None        # the RLP encoding, set together with the signature
        self.pairs = []        # [(key bytes, raw RLP value)] sorted by key

    def copy(self) -> "Record":
        # Go copies the struct by assignment (`cpy := *r`); pairs are never mutated in place.
        c = Record()
        c._seq, c.signature, c.raw, c.pairs = self._seq, self.signature, self.raw, self.pairs
        return c

    def __eq__(self, other):
        return (isinstance(other, Record) and self._seq == other._seq and self.signature == other.signature
                and self.raw == other.raw and self.pairs == other.pairs)

    def __repr__(self):
        return "Record(seq=%d, %s%s)" % (self._seq, ", ".join(k.decode("latin-1") for k, _ in self.pairs),
                                         "" if self.signed() else ", unsigned")

    def signed(self) -> bool:
        """Whether the record carries a (valid) signature."""
        return self.signature is not None

    def seq(self) -> int:
        return self._seq

    def set_seq(self, s: int) -> None:
        """Set the sequence number; this drops the signature."""
        self.signature = None
        self.raw = None
        self._seq = s

    def load(self, e):
        """The value of entry ``e`` (an entry type such as ``UDP``, or ``with_entry(k, sedes)``).

        Raises :class:`KeyError` (the enr one): ``is_not_found(err)`` tells a missing key
        from a value that does not decode.
        """
        k = _key(e)
        i = self._search(k)
        if i < len(self.pairs) and self.pairs[i][0] == k:
            try:
                return e.decode_rlp(self.pairs[i][1])
            except Exception as err:  # whatever the entry's decoder (or a caller's sedes) raises
                raise KeyError(k, err) from None
        raise KeyError(k, errNotFound)

    def set(self, e) -> None:
        """Add or replace entry ``e``; a signed record gets seq + 1 and loses its signature."""
        blob = e.encode_rlp()
        k = _key(e)
        self._invalidate()
        pairs = list(self.pairs)
        i = self._search(k)
        if i < len(pairs) and pairs[i][0] == k:
            pairs[i] = (k, blob)
        else:
            pairs.insert(i, (k, blob))
        self.pairs = pairs

    def _search(self, k: bytes) -> int:
        # Python-only: sort.Search over the sorted keys, shared by load and set.
        return bisect.bisect_left([p[0] for p in self.pairs], k)

    def _invalidate(self) -> None:
        if self.signature is not None:
            self._seq += 1
        self.signature = None
        self.raw = None

    def encode_rlp(self) -> bytes:
        """The record's RLP encoding; only a signed record can be encoded."""
        if not self.signed():
            raise errEncodeUnsigned
        return self.raw

    def decode_rlp(self, raw: bytes) -> None:
        """Replace this record by the one encoded in ``raw``, after verifying its signature.

        ``raw`` must be exactly one RLP list; on any error this record is unchanged.
        """
        if len(raw) > SizeLimit:
            raise errTooBig
        raw = bytes(raw)
        # The container, read by the one strict codec (Go reads it from an rlp.Stream).
        top = rlpcodec.head(raw, 0, len(raw))
        if top[0] != rlpcodec.LIST:
            raise rlpcodec.DecodeError("rlp: expected input list for enr.Record")
        if top[3] != len(raw):
            raise rlpcodec.DecodeError("rlp: input contains more than one value")
        items = rlpcodec.split(raw, top[2], top[3])
        dec = Record()
        dec.raw = raw
        if len(items) < 2:
            raise rlpcodec.DecodeError("rlp: too few elements for enr.Record")
        dec.signature = rlpcodec.string(items[0], raw)
        dec._seq = rlpcodec.uint(items[1], raw, 8)
        prevkey = None
        pairs = []
        for j in range(2, len(items), 2):
            k = rlpcodec.string(items[j], raw)
            if j + 1 >= len(items):
                raise errIncompletePair
            if prevkey is not None:
                if k == prevkey:
                    raise errDuplicateKey
                if k < prevkey:
                    raise errNotSorted
            pairs.append((k, rlpcodec.raw(items[j + 1], raw)))
            prevkey = k
        dec.pairs = pairs
        _, scheme = dec._id_scheme()
        if scheme is None:
            raise errNoID
        scheme.verify(dec, dec.signature)
        self._seq, self.signature, self.raw, self.pairs = dec._seq, dec.signature, dec.raw, dec.pairs

    def node_addr(self):
        """The node address under the record's identity scheme, or None (unknown scheme)."""
        _, scheme = self._id_scheme()
        if scheme is None:
            return None
        return scheme.node_addr(self)

    def set_sig(self, idscheme: str, sig: bytes) -> None:
        """Attach ``sig`` after checking it with ``idscheme`` and the size limit.

        A record whose ``id`` is missing or differs from ``idscheme`` is a bug in the
        signing code, so that raises an AssertionError-like RuntimeError (Go panics).
        """
        id_, s = self._id_scheme()
        if s is None:
            raise RuntimeError(str(errNoID))
        if id_ != idscheme:
            raise RuntimeError("identity scheme mismatch in Sign: record has %s, want %s" % (id_, idscheme))
        s.verify(self, sig)
        raw = self._encode(sig)
        self.signature, self.raw = sig, raw

    def append_elements(self, lst: list) -> list:
        """``lst`` + [seq, k1, v1, ...] with the values as raw RLP (what is signed)."""
        lst.append(rlpcodec.encode_uint(self._seq))
        for k, v in self.pairs:
            lst.append(rlpcodec.encode_bytes(k))
            lst.append(v)
        return lst

    def _encode(self, sig: bytes) -> bytes:
        raw = _rlp_list(self.append_elements([rlpcodec.encode_bytes(sig)]))
        if len(raw) > SizeLimit:
            raise errTooBig
        return raw

    def _id_scheme(self):
        from p2p.enr.idscheme import find_identity_scheme  # idscheme imports this module

        try:
            id_ = self.load(ID)
        except KeyError:
            return "", None
        return str(id_), find_identity_scheme(str(id_))


def _rlp_list(encoded_items: list) -> bytes:
    # Python-only: a list of items that are RLP already (Go's []interface{} of RawValues).
    return rlpcodec.encode_list(encoded_items)


# departure: enr-text-form: records print and parse as "enr:<base64url>" (EIP-778 text form)
def text(r: Record) -> str:
    """The EIP-778 text form of a signed record: ``enr:`` + unpadded base64url of its RLP."""
    return "enr:" + base64.urlsafe_b64encode(r.encode_rlp()).rstrip(b"=").decode("ascii")


def parse_text(s: str) -> Record:
    """Decode and verify a record in text form (``enr:...``)."""
    if not s.startswith("enr:"):
        raise RecordError("missing 'enr:' prefix")
    body = s[4:]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError as e:
        raise RecordError("invalid base64: %s" % e) from None
    r = Record()
    r.decode_rlp(raw)
    return r
