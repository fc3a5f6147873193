"""Suite-wide guards: loopback-only networking and no leaked threads."""

import ipaddress
import os
import socket
import threading

import pytest

from p2p import crypto

# ---------------------------------------------------------------------------
# Loopback guard: a test that tries to send to (or connect to) any address but
# 127.0.0.0/8 or ::1 fails instead of touching the network.


class NonLoopbackError(AssertionError):
    pass


def _check_addr(addr):
    if not isinstance(addr, tuple):
        return  # AF_UNIX paths and the like
    host = addr[0]
    if isinstance(host, bytes):
        host = host.decode()
    if host in ("localhost",):
        return
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        raise NonLoopbackError("test tried to reach non-IP host %r" % (host,))
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not ip.is_loopback:
        raise NonLoopbackError("test tried to reach %s: only loopback is allowed" % host)


_orig = {}


def _install_guard():
    cls = socket.socket
    _orig["connect"] = cls.connect
    _orig["connect_ex"] = cls.connect_ex
    _orig["sendto"] = cls.sendto

    def connect(self, addr):
        _check_addr(addr)
        return _orig["connect"](self, addr)

    def connect_ex(self, addr):
        _check_addr(addr)
        return _orig["connect_ex"](self, addr)

    def sendto(self, data, *args):
        _check_addr(args[-1])
        return _orig["sendto"](self, data, *args)

    cls.connect = connect
    cls.connect_ex = connect_ex
    cls.sendto = sendto


_install_guard()

# Nodes the tests start as subprocesses inherit this: their clock check (after many
# discovery timeouts) asks 127.0.0.1 instead of pool.ntp.org.
os.environ["GETHP2P_NTP_POOL"] = "127.0.0.1"


# ---------------------------------------------------------------------------
# Thread-leak check: every thread a test starts must have ended when it returns.

LEAK_GRACE_SECONDS = 5.0


@pytest.fixture(autouse=True)
def no_leaked_threads(request):
    before = set(threading.enumerate())
    yield
    if request.node.get_closest_marker("allow_thread_leak"):
        return
    import time

    deadline = time.monotonic() + LEAK_GRACE_SECONDS
    leaked = []
    for t in threading.enumerate():
        if t in before or t is threading.current_thread():
            continue
        t.join(max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            leaked.append(t.name)
    assert not leaked, "threads still running after the test: %s" % ", ".join(sorted(leaked))


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_thread_leak: skip the thread-leak check")


# ---------------------------------------------------------------------------
# Crypto backends: tests that take the `crypto_backend` fixture run once per backend.


@pytest.fixture(params=crypto.available_backends())
def crypto_backend(request):
    with crypto.use_backend(request.param):
        yield request.param
