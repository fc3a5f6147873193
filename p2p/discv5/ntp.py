"""SNTP clock-drift check of discovery v5 (port of geth's p2p/discv5/ntp.go).

geth's discv5 carries a copy of discover's ntp.go; nothing in discv5 calls it (v5
packets carry expirations, but the Network has no timeout counter that would run
the check). The port keeps the function for the reader. The SNTP exchange is v4's
:func:`p2p.discover.ntp.sntp_drift` (the same code in geth); the check uses v5's
``driftThreshold`` and logger.
"""

from __future__ import annotations

from p2p.discover import ntp as _v4ntp
from p2p.log import get_logger

__all__ = ["ntpChecks", "check_clock_drift", "sntp_drift"]

log = get_logger("p2p.discv5")

ntpChecks = 3  # number of measurements that are averaged


def check_clock_drift(server=None, measurements: int = ntpChecks, threshold: float | None = None,
                      timeout: float = 5.0):
    """Measure the clock drift and warn if it exceeds ``threshold`` seconds (v5's driftThreshold).

    ``server`` defaults to ``(ntpPool, 123)`` of :mod:`p2p.discover.ntp`, read when the
    check runs. Returns the drift in seconds, or None if the server was not reached.
    """
    if server is None:
        server = (_v4ntp.ntpPool, _v4ntp.NTP_PORT)
    if threshold is None:
        from p2p.discv5.udp import driftThreshold as threshold  # geth keeps it in udp.go
    try:
        drift = sntp_drift(measurements, server=server, timeout=timeout)
    except (OSError, ValueError) as err:
        log.debug("NTP sanity check failed: %s" % err)
        return None
    if drift < -threshold or drift > threshold:
        warning = "System clock seems off by %.3fs, which can prevent network connectivity" % drift
        separator = "-" * len(warning)
        log.warn(separator)
        log.warn(warning)
        log.warn("Please enable network time synchronisation in system settings")
        log.warn(separator)
    else:
        log.debug("Sanity NTP check reported %.6fs drift, all ok" % drift)
    return drift


# The SNTP measurement itself: v4's, which is the same Go code.
sntp_drift = _v4ntp.sntp_drift
