"""Tests for p2p/metrics.py."""

import socket
import threading

import pytest

from p2p import metrics


@pytest.fixture
def enabled(monkeypatch):
    monkeypatch.setattr(metrics, "Enabled", True)


def test_disabled_returns_the_conn_itself(monkeypatch):
    monkeypatch.setattr(metrics, "Enabled", False)
    a, b = socket.socketpair()
    try:
        assert metrics.new_metered_conn(a, True) is a
    finally:
        a.close()
        b.close()


def test_metered_conn_counts_bytes_and_connections(enabled):
    a, b = socket.socketpair()
    try:
        in_conns = metrics.ingressConnectMeter.count()
        out_conns = metrics.egressConnectMeter.count()
        in_bytes = metrics.ingressTrafficMeter.count()
        out_bytes = metrics.egressTrafficMeter.count()
        ma = metrics.new_metered_conn(a, True)
        mb = metrics.new_metered_conn(b, False)
        assert metrics.ingressConnectMeter.count() == in_conns + 1
        assert metrics.egressConnectMeter.count() == out_conns + 1

        ma.sendall(b"hello")
        assert mb.send(b"abc") == 3
        assert metrics.egressTrafficMeter.count() == out_bytes + 8
        got = b""
        while len(got) < 5:
            got += mb.recv(16)
        assert got == b"hello"
        buf = bytearray(3)
        n = 0
        while n < 3:
            n += ma.recv_into(memoryview(buf)[n:], 3 - n)
        assert bytes(buf) == b"abc"
        assert metrics.ingressTrafficMeter.count() == in_bytes + 8
        # other attributes are the socket's
        assert ma.fileno() == a.fileno()
        assert ma.getsockname() == a.getsockname()
    finally:
        a.close()
        b.close()


def test_meter_is_thread_safe():
    m = metrics.Meter()
    threads = [threading.Thread(target=lambda: [m.mark(1) for _ in range(1000)], name="test.mark") for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert m.count() == 4000


def test_meter_rate_mean_uses_clock():
    now = [100.0]
    m = metrics.Meter(clock=lambda: now[0])
    m.mark(50)
    assert m.rate_mean() == 0.0
    now[0] = 110.0
    assert m.rate_mean() == 5.0


def test_counter_and_registry():
    c = metrics.Counter()
    c.inc(3)
    c.dec()
    assert c.count() == 2
    c.clear()
    assert c.count() == 0
    assert metrics.new_registered_meter("p2p/InboundTraffic") is metrics.ingressTrafficMeter
    assert metrics.new_registered_meter("test/x") is metrics.new_registered_meter("test/x")
