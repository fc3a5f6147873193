"""Peer-level errors and devp2p disconnect reasons (geth's p2p/peer_error.go).

Go lets any value with an ``Error()`` method be returned as an error, and geth
uses that for :class:`DiscReason`: the same number is both a wire value and an
error.  Python cannot make an ``IntEnum`` raisable (int and BaseException have
incompatible layouts), so this port splits the two roles:

* :class:`DiscReason` is an ``IntEnum`` with geth's numbers and strings; it is
  what goes on the wire and what ``Peer.disconnect`` takes.
* :class:`DiscReasonError` is the exception carrying one, in ``.reason``.
  Wherever geth uses a ``DiscReason`` *as an error* (a returned error, a value
  on an error channel, the argument of ``transport.close(err)``), this port
  uses ``DiscReasonError(reason)``.

:func:`disc_reason_for_error` accepts either form.
"""

from __future__ import annotations

import enum

from p2p import rlpcodec

# Peer error codes.
errInvalidMsgCode = 0
errInvalidMsg = 1

_error_to_string = {
    errInvalidMsgCode: "invalid message code",
    errInvalidMsg: "invalid message",
}


def new_peer_error(code: int, fmt: str = "", *args) -> PeerError:
    """Build a PeerError; ``fmt``/``args`` use %-formatting and extend the code's text."""
    desc = _error_to_string.get(code)
    if desc is None:
        raise ValueError("invalid error code")
    if fmt:
        desc += ": " + (fmt % args if args else fmt)
    return PeerError(code, desc)


class PeerError(Exception):
    """A protocol-level error about a peer's messages, with one of the codes above."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self):
        return self.message


class ErrProtocolReturned(Exception):
    """A sub-protocol's run function returned without an error."""

    def __init__(self, msg: str = "protocol returned"):
        super().__init__(msg)


class DiscReason(enum.IntEnum):
    """devp2p disconnect reasons, with geth's numbers."""

    DiscRequested = 0x00
    DiscNetworkError = 0x01
    DiscProtocolError = 0x02
    DiscUselessPeer = 0x03
    DiscTooManyPeers = 0x04
    DiscAlreadyConnected = 0x05
    DiscIncompatibleVersion = 0x06
    DiscInvalidIdentity = 0x07
    DiscQuitting = 0x08
    DiscUnexpectedIdentity = 0x09
    DiscSelf = 0x0A
    DiscReadTimeout = 0x0B
    DiscSubprotocolError = 0x10

    @classmethod
    def _missing_(cls, value):
        # Remote peers may send any number; keep it instead of failing.
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            member = int.__new__(cls, value)
            member._name_ = "DiscUnknown%d" % value
            member._value_ = value
            return member
        return None

    def __str__(self):
        s = _disc_reason_to_string.get(int(self))
        if s is None:
            return "unknown disconnect reason %d" % int(self)
        return s

    def __format__(self, spec):
        # "{}" and "{:>20}" give the text, numeric specs ("{:d}", "{:x}") the number
        if spec and spec[-1] in "bcdoxXn":
            return format(int(self), spec)
        return format(str(self), spec)

    def error(self) -> "DiscReasonError":
        """The exception form of this reason (geth's ``DiscReason.Error``)."""
        return DiscReasonError(self)


_disc_reason_to_string = {
    0x00: "disconnect requested",
    0x01: "network error",
    0x02: "breach of protocol",
    0x03: "useless peer",
    0x04: "too many peers",
    0x05: "already connected",
    0x06: "incompatible p2p protocol version",
    0x07: "invalid node identity",
    0x08: "client quitting",
    0x09: "unexpected identity",
    0x0A: "connected to self",
    0x0B: "read timeout",
    0x10: "subprotocol error",
}

# geth's names of the reasons, at module level, where geth has them (the enum
# members carry the same names, for DiscReason(n).name).
DiscRequested = DiscReason.DiscRequested
DiscNetworkError = DiscReason.DiscNetworkError
DiscProtocolError = DiscReason.DiscProtocolError
DiscUselessPeer = DiscReason.DiscUselessPeer
DiscTooManyPeers = DiscReason.DiscTooManyPeers
DiscAlreadyConnected = DiscReason.DiscAlreadyConnected
DiscIncompatibleVersion = DiscReason.DiscIncompatibleVersion
DiscInvalidIdentity = DiscReason.DiscInvalidIdentity
DiscQuitting = DiscReason.DiscQuitting
DiscUnexpectedIdentity = DiscReason.DiscUnexpectedIdentity
DiscSelf = DiscReason.DiscSelf
DiscReadTimeout = DiscReason.DiscReadTimeout
DiscSubprotocolError = DiscReason.DiscSubprotocolError


class DiscReasonError(Exception):
    """A DiscReason used as an error; ``str()`` is the reason's geth text."""

    def __init__(self, reason):
        self.reason = DiscReason(int(reason))
        super().__init__(str(self.reason))

    def __str__(self):
        return str(self.reason)

    def __eq__(self, other):
        if isinstance(other, DiscReasonError):
            return self.reason == other.reason
        if isinstance(other, DiscReason):
            return self.reason == other
        return NotImplemented

    def __hash__(self):
        return hash(("DiscReasonError", int(self.reason)))


def disc_reason_for_error(err) -> DiscReason:
    """Map an error (or a bare DiscReason) to the reason sent to the remote peer."""
    if isinstance(err, DiscReason):
        return err
    if isinstance(err, DiscReasonError):
        return err.reason
    if isinstance(err, ErrProtocolReturned):
        return DiscQuitting
    if isinstance(err, PeerError):
        if err.code in (errInvalidMsgCode, errInvalidMsg):
            return DiscProtocolError
        return DiscSubprotocolError
    return DiscSubprotocolError



def decode_disc_reason(payload) -> DiscReason:
    """The reason in a disconnect message's payload: the one decoder of it (peer and rlpx).

    geth decodes ``[reason]`` and keeps the zero value, DiscRequested, for what it
    cannot decode (garbage, an empty or nested list, more than a uint64); list
    elements after the reason are ignored, as geth ignores them.
    """
    try:
        it = rlpcodec.head(payload, 0, len(payload))
        # departure: forgiving-disconnect: a bare integer, not in a list, is read too
        # (some clients send it); geth reads DiscRequested
        if it[0] == rlpcodec.LIST:
            if it[2] == it[3]:
                return DiscRequested
            it = rlpcodec.head(payload, it[2], it[3])
        return DiscReason(rlpcodec.uint(it, payload, 8))
    except ValueError:  # rlpcodec.DecodeError, or a reason out of range
        return DiscRequested


def is_conn_error(err) -> bool:
    """Whether ``err`` is what a lost or misbehaving remote causes, not a bug of ours.

    Python-only: geth returns both kinds as errors and logs them alike; here the
    expected ones (network, framing, encryption and protocol errors) are logged
    quietly and anything else at error level with its traceback.
    """
    if isinstance(err, (OSError, EOFError, PeerError, DiscReasonError, ErrProtocolReturned)):
        return True
    from p2p import rlpx  # late: rlpx imports the modules that import this one

    return isinstance(err, rlpx.RLPxError)
