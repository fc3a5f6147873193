"""NAT traversal: port mapping with UPnP, NAT-PMP or a fixed external IP (geth's p2p/nat).

The public names of :mod:`p2p.nat.nat` are re-exported here, so callers write
``p2p.nat.parse("any")`` and ``p2p.nat.map(m, quit, "tcp", 30303, 30303, "ethereum p2p")``.
"""

from p2p.nat.nat import (  # noqa: F401
    MAP_TIMEOUT,
    MAP_UPDATE_INTERVAL,
    PMP,
    Any,
    ExtIP,
    Interface,
    NATError,
    UPnP,
    AutoDisc,
    interface_addrs,
    map,
    parse,
    start_autodisc,
)
from p2p.nat.natpmp import potential_gateways  # noqa: F401

# `map` is reachable as p2p.nat.map but left out of __all__ so that
# `from p2p.nat import *` never shadows the builtin.
__all__ = [
    "MAP_TIMEOUT", "MAP_UPDATE_INTERVAL", "PMP", "Any", "ExtIP",
    "Interface", "NATError", "UPnP", "AutoDisc", "interface_addrs", "parse", "potential_gateways", "start_autodisc",
]
