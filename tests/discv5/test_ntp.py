"""Tests for p2p.discv5.ntp against a fake SNTP server on loopback (geth has none)."""

import logging

import pytest

from p2p.discv5 import ntp
from tests.discover.test_ntp import FakeSNTPServer


@pytest.fixture
def server():
    s = FakeSNTPServer(offset=3600.0)
    yield s
    s.close()


def test_check_clock_drift_warns_with_v5_threshold(server, caplog):
    with caplog.at_level(logging.DEBUG, logger="p2p.discv5"):
        drift = ntp.check_clock_drift(server=server.addr)
    assert drift is not None and drift < -3590
    msgs = [r.getMessage() for r in caplog.records if r.name == "p2p.discv5"]
    assert any("System clock seems off" in m for m in msgs)
    assert len(server.requests) == ntp.ntpChecks + 2


def test_check_clock_drift_within_threshold(server, caplog):
    with caplog.at_level(logging.DEBUG, logger="p2p.discv5"):
        drift = ntp.check_clock_drift(server=server.addr, threshold=7200.0)
    assert drift is not None
    assert any("all ok" in r.getMessage() for r in caplog.records if r.name == "p2p.discv5")


def test_check_clock_drift_unreachable():
    # Nothing listens on the port: a timeout or refusal is reported as None.
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    addr = s.getsockname()
    s.close()
    assert ntp.check_clock_drift(server=addr, timeout=0.5) is None
