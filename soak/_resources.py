"""Resource snapshots for the soak scripts: threads, open fds, RSS."""

import os
import sys
import threading


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# Short-lived helper threads that come and go on their own timers (a revalidation
# ping every few seconds): not counted, they are not leaks.
TRANSIENT = ("discover.Table.doRefresh", "discover.Table.doRevalidate", "discover.Table.copyLiveNodes",
             "discover.Table.findnode", "discover.checkClockDrift")


def long_lived_threads() -> int:
    return sum(1 for t in threading.enumerate() if not t.name.startswith(TRANSIENT))


def snapshot() -> dict:
    return {
        "threads": long_lived_threads(),
        "fds": len(os.listdir("/proc/self/fd")),
        "rss_kib": rss_kib(),
    }


def fmt(s: dict) -> str:
    return "threads=%d fds=%d rss=%.1f MiB" % (s["threads"], s["fds"], s["rss_kib"] / 1024)


def compare(name: str, start: dict, end: dict, rss_tolerance_mib: float) -> bool:
    """Print both snapshots; True if threads and fds are back and RSS grew at most the tolerance."""
    grow = (end["rss_kib"] - start["rss_kib"]) / 1024
    ok = end["threads"] == start["threads"] and end["fds"] == start["fds"] and grow <= rss_tolerance_mib
    print("%s start: %s" % (name, fmt(start)))
    print("%s end:   %s" % (name, fmt(end)))
    print("%s: threads %+d, fds %+d, rss %+.1f MiB (tolerance %.0f MiB) -> %s" % (
        name, end["threads"] - start["threads"], end["fds"] - start["fds"], grow, rss_tolerance_mib,
        "OK" if ok else "FAIL"))
    sys.stdout.flush()
    return ok


def wait_threads(expected: int, timeout: float = 10.0) -> None:
    """Give exiting threads up to ``timeout`` to end (joins with timeouts, no sleeps)."""
    import time

    deadline = time.monotonic() + timeout
    while long_lived_threads() > expected and time.monotonic() < deadline:
        for t in threading.enumerate():
            if t is not threading.main_thread() and t is not threading.current_thread():
                t.join(0.05)
                if long_lived_threads() <= expected:
                    return
