"""Traffic and connection meters of the networking layer (geth's p2p/metrics.go).

geth uses its ``metrics`` package (go-metrics); this port carries the small
part it needs: a thread-safe :class:`Meter` and a name -> meter registry.
As in geth, metering is off unless ``metrics.Enabled`` is set to True before
connections are made (geth's ``--metrics`` flag).
"""

from __future__ import annotations

import threading
import time
from typing import Dict

# geth's metrics.Enabled; off by default.
Enabled = False


class Counter:
    """A thread-safe integer counter."""

    __slots__ = ("_lock", "_count")

    def __init__(self):
        self._lock = threading.Lock()
        self._count = 0

    def inc(self, n: int = 1) -> None:
        with self._lock:
            self._count += n

    def dec(self, n: int = 1) -> None:
        with self._lock:
            self._count -= n

    def count(self) -> int:
        return self._count

    def clear(self) -> None:
        with self._lock:
            self._count = 0


class Meter:
    """Counts events (bytes, connections) and gives their mean rate since creation."""

    __slots__ = ("_lock", "_count", "_start", "_clock")

    def __init__(self, clock=time.monotonic):
        self._lock = threading.Lock()
        self._count = 0
        self._clock = clock
        self._start = clock()

    def mark(self, n: int) -> None:
        with self._lock:
            self._count += n

    def count(self) -> int:
        return self._count

    def rate_mean(self) -> float:
        """Events per second since the meter was created."""
        elapsed = self._clock() - self._start
        return self._count / elapsed if elapsed > 0 else 0.0


registry: Dict[str, Meter] = {}
_registry_lock = threading.Lock()


def new_registered_meter(name: str) -> Meter:
    """The meter registered under ``name``, created on first use."""
    with _registry_lock:
        m = registry.get(name)
        if m is None:
            m = registry[name] = Meter()
        return m


ingressConnectMeter = new_registered_meter("p2p/InboundConnects")
ingressTrafficMeter = new_registered_meter("p2p/InboundTraffic")
egressConnectMeter = new_registered_meter("p2p/OutboundConnects")
egressTrafficMeter = new_registered_meter("p2p/OutboundTraffic")


class MeteredConn:
    """Wraps a socket and meters the bytes read from and written to it.

    Reads (``recv``, ``recv_into``) mark the ingress traffic meter, writes
    (``send``, ``sendall``) the egress one; every other attribute is the
    wrapped socket's.
    """

    __slots__ = ("conn",)

    def __init__(self, conn):
        self.conn = conn

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = self.conn.recv(bufsize, flags)
        ingressTrafficMeter.mark(len(data))
        return data

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:
        n = self.conn.recv_into(buffer, nbytes, flags)
        ingressTrafficMeter.mark(n)
        return n

    def send(self, data, flags: int = 0) -> int:
        n = self.conn.send(data, flags)
        egressTrafficMeter.mark(n)
        return n

    def sendall(self, data, flags: int = 0) -> None:
        self.conn.sendall(data, flags)
        egressTrafficMeter.mark(len(data))

    def __getattr__(self, name):
        return getattr(self.conn, name)

    def __repr__(self):
        return "MeteredConn(%r)" % (self.conn,)


def new_metered_conn(conn, ingress: bool):
    """Count a new connection and wrap it for traffic metering (``conn`` itself if disabled)."""
    if not Enabled:
        return conn
    if ingress:
        ingressConnectMeter.mark(1)
    else:
        egressConnectMeter.mark(1)
    return MeteredConn(conn)
