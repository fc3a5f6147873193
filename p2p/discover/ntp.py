"""SNTP clock-drift check (port of geth's p2p/discover/ntp.go).

Discovery packets carry expiration times, so a node whose clock is far off sees
every packet as expired. When replies keep timing out, udp runs
:func:`check_clock_drift`, which asks an NTP server for the time a few times and
warns if the local clock is more than ``driftThreshold`` seconds off.

The server address is a parameter (geth hard-codes pool.ntp.org) so tests can
point it at a fake SNTP server on loopback.
"""

from __future__ import annotations

import os
import socket
import time

from p2p.log import get_logger

__all__ = ["ntpPool", "ntpChecks", "NTP_PORT", "check_clock_drift", "sntp_drift"]

log = get_logger("p2p.discover")

# The NTP server asked for the current time. GETHP2P_NTP_POOL overrides it (the
# test suite sets 127.0.0.1 so that nodes it starts as subprocesses stay on loopback).
ntpPool = os.environ.get("GETHP2P_NTP_POOL") or "pool.ntp.org"
ntpChecks = 3             # number of measurements that are averaged
NTP_PORT = 123
_NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01
_REPLY_TIMEOUT = 5.0

# Request: a 48-byte packet with only the first byte set,
# version 3 (bits 3-5) and mode 3 = client (bits 0-2).
_REQUEST = bytes([3 << 3 | 3]) + bytes(47)


def check_clock_drift(server=None, measurements: int = ntpChecks,
                      threshold: float | None = None, timeout: float = _REPLY_TIMEOUT):
    """Measure the clock drift and log a warning if it exceeds ``threshold`` seconds.

    ``server`` defaults to ``(ntpPool, NTP_PORT)``, read when the check runs, so a
    program that must stay off the network (the demo) can point ``ntpPool`` elsewhere.
    Returns the drift in seconds, or None if the server could not be reached.
    """
    if server is None:
        server = (ntpPool, NTP_PORT)
    if threshold is None:
        from p2p.discover.udp import driftThreshold as threshold  # geth keeps it in udp.go
    try:
        drift = sntp_drift(measurements, server=server, timeout=timeout)
    except (OSError, ValueError) as err:
        log.debug("NTP sanity check failed", err=err)
        return None
    if drift < -threshold or drift > threshold:
        log.warn("System clock seems off by %.3fs, which can prevent network connectivity" % drift)
        log.warn("Please enable network time synchronisation in system settings.")
    else:
        log.debug("NTP sanity check done", drift="%.6fs" % drift)
    return drift


def sntp_drift(measurements: int, server=None, timeout: float = _REPLY_TIMEOUT,
               clock=time.time) -> float:
    """Ask ``server`` for the time ``measurements + 2`` times; the average drift in seconds.

    The highest and lowest measurements are dropped as outliers. A positive result
    means the local clock is ahead of the server's. Raises OSError (socket errors,
    timeouts) or ValueError (short reply).
    """
    host, port = server if server is not None else (ntpPool, NTP_PORT)
    family, _, _, _, addr = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0]
    drifts = []
    for _ in range(measurements + 2):
        with socket.socket(family, socket.SOCK_DGRAM) as conn:
            conn.connect(addr)
            conn.settimeout(timeout)
            sent = clock()
            conn.send(_REQUEST)
            reply = conn.recv(48)
            elapsed = clock() - sent
        if len(reply) < 48:
            raise ValueError("short SNTP reply (%d bytes)" % len(reply))
        # Transmit timestamp: seconds and 32-bit fraction since 1900.
        sec = int.from_bytes(reply[40:44], "big")
        frac = int.from_bytes(reply[44:48], "big")
        t = sec - _NTP_EPOCH_OFFSET + frac / 4294967296.0
        # The server is assumed to have answered half way through the round trip.
        drifts.append(sent - t + elapsed / 2)
    drifts.sort()
    return sum(drifts[1:-1]) / measurements
