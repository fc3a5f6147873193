"""Classifying socket errors (port of geth's p2p/netutil/error.go and toobig_*.go).

Read loops use these to decide whether an error is worth retrying (a timeout, an
interrupted call, a datagram too large for the buffer) or means the socket is gone.
"""

from __future__ import annotations

import errno
import socket

__all__ = ["is_temporary_error", "is_timeout", "is_packet_too_big"]

# The errno values Go's syscall.Errno reports as Temporary() (timeouts included).
_TEMPORARY_ERRNOS = frozenset(
    e for e in (
        errno.EINTR, errno.EMFILE, errno.ENFILE, errno.ECONNRESET, errno.ECONNABORTED,
        errno.EAGAIN, errno.EWOULDBLOCK, errno.ETIMEDOUT,
    )
)
_TIMEOUT_ERRNOS = frozenset((errno.EAGAIN, errno.EWOULDBLOCK, errno.ETIMEDOUT))
_WSAEMSGSIZE = 10040  # Windows reports a too-large datagram as this error


def is_timeout(err) -> bool:
    """Whether ``err`` is a timeout (socket timeout, EAGAIN, ETIMEDOUT)."""
    if isinstance(err, (socket.timeout, TimeoutError)):
        return True
    timeout = getattr(err, "timeout", None)
    if callable(timeout):
        return bool(timeout())
    return isinstance(err, OSError) and err.errno in _TIMEOUT_ERRNOS


def is_temporary_error(err) -> bool:
    """Whether ``err`` is a temporary condition after which reading can go on.

    True for timeouts, interrupted calls, fd exhaustion, connection resets, errors
    that say so through a ``temporary()`` method (Go's ``Temporary()``), and
    datagrams that were too big.
    """
    if err is None:
        return False
    temporary = getattr(err, "temporary", None)
    if callable(temporary) and temporary():
        return True
    if isinstance(err, (socket.timeout, TimeoutError, InterruptedError)):
        return True
    if isinstance(err, OSError) and err.errno in _TEMPORARY_ERRNOS:
        return True
    return is_packet_too_big(err)


def is_packet_too_big(err) -> bool:
    """Whether ``err`` says a datagram was too large (EMSGSIZE / WSAEMSGSIZE)."""
    if not isinstance(err, OSError):
        return False
    return err.errno == errno.EMSGSIZE or getattr(err, "winerror", None) == _WSAEMSGSIZE
