"""Tests for p2p.discover.ntp against a fake SNTP server on loopback."""

import logging
import socket
import threading

import pytest

from p2p.discover import ntp

NTP_EPOCH_OFFSET = 2208988800


class FakeSNTPServer:
    """Answers SNTP client requests on 127.0.0.1 with a clock shifted by ``offset`` seconds."""

    def __init__(self, offset=0.0, reply_len=48, clock=None):
        import time
        self.offset = offset
        self.reply_len = reply_len
        self.clock = clock or time.time
        self.requests = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.addr = self.sock.getsockname()
        self.thread = threading.Thread(target=self._serve, name="test.FakeSNTPServer", daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            data, addr = self.sock.recvfrom(512)
            if data == b"quit":
                return
            self.requests.append(data)
            t = self.clock() + self.offset + NTP_EPOCH_OFFSET
            sec = int(t)
            frac = int((t - sec) * 4294967296.0)
            reply = bytearray(48)
            reply[0] = 0x1C  # version 3, mode 4 (server)
            reply[40:44] = sec.to_bytes(4, "big")
            reply[44:48] = frac.to_bytes(4, "big")
            self.sock.sendto(bytes(reply[: self.reply_len]), addr)

    def close(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"quit", self.addr)
        self.thread.join(5)
        self.sock.close()


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(level=1)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def logrecords():
    """Records of the p2p.discover logger (independent of propagation settings)."""
    lg = logging.getLogger("p2p.discover")
    h = _Records()
    old = lg.level
    lg.setLevel(logging.DEBUG)
    lg.addHandler(h)
    yield h
    lg.removeHandler(h)
    lg.setLevel(old)


@pytest.fixture
def server_factory():
    servers = []

    def make(**kw):
        s = FakeSNTPServer(**kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def test_sntp_drift_measures_offset(server_factory):
    srv = server_factory(offset=-100.0)  # server 100 s behind: our clock is 100 s ahead
    drift = ntp.sntp_drift(3, server=srv.addr)
    assert 99.0 < drift < 101.0
    assert len(srv.requests) == 5  # measurements + 2
    for req in srv.requests:
        assert len(req) == 48 and req[0] == 0x1B and req[1:] == bytes(47)


def test_sntp_drift_in_sync_with_fixed_clock(server_factory):
    # Both sides read the same fake clock: the drift is exactly half the (zero) round trip.
    clock = lambda: 1_600_000_000.5  # noqa: E731
    srv = server_factory(offset=0.0, clock=clock)
    drift = ntp.sntp_drift(3, server=srv.addr, clock=clock)
    assert abs(drift) < 1e-6


def test_sntp_drift_drops_outliers():
    # With a scripted clock the average is exact: sorted drifts minus both extremes.
    values = iter([0.0, 0.0] * 5)
    replies = [10.0, -50.0, 12.0, 500.0, 14.0]  # server times (unix), one per measurement
    srv_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv_sock.bind(("127.0.0.1", 0))

    def serve():
        for t in replies:
            _, addr = srv_sock.recvfrom(64)
            sec = int(t + NTP_EPOCH_OFFSET)
            reply = bytes(40) + sec.to_bytes(4, "big") + bytes(4)
            srv_sock.sendto(reply, addr)

    th = threading.Thread(target=serve, name="test.sntp.serve", daemon=True)
    th.start()
    try:
        drift = ntp.sntp_drift(3, server=srv_sock.getsockname(), clock=lambda: next(values))
    finally:
        th.join(5)
        srv_sock.close()
    # drifts = 0 - t: -10, 50, -12, -500, -14 -> drop -500 and 50 -> (-14-12-10)/3
    assert drift == pytest.approx(-12.0)


def test_check_clock_drift_warns(server_factory, logrecords):
    srv = server_factory(offset=3600.0)
    drift = ntp.check_clock_drift(server=srv.addr, threshold=10.0)
    assert drift is not None and drift < -3590
    assert any("System clock seems off" in r.getMessage() for r in logrecords.records)


def test_check_clock_drift_ok(server_factory, logrecords):
    srv = server_factory(offset=0.0)
    drift = ntp.check_clock_drift(server=srv.addr, threshold=10.0)
    assert drift is not None and abs(drift) < 10.0
    assert not any("System clock seems off" in r.getMessage() for r in logrecords.records)
    assert any("NTP sanity check done" in r.getMessage() for r in logrecords.records)


def test_check_clock_drift_short_reply(server_factory):
    srv = server_factory(reply_len=20)
    assert ntp.check_clock_drift(server=srv.addr, threshold=10.0) is None
    with pytest.raises(ValueError, match="short SNTP reply"):
        ntp.sntp_drift(1, server=srv.addr)


def test_check_clock_drift_no_server():
    # Nothing listens on this port: the request times out or is refused; no exception.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    addr = s.getsockname()
    try:
        assert ntp.check_clock_drift(server=addr, threshold=10.0, timeout=0.2) is None
    finally:
        s.close()


def test_check_clock_drift_reads_the_pool_when_it_runs(monkeypatch):
    """The default server is ntpPool as it is at call time (the demo points it at loopback)."""
    from p2p.discover import ntp as ntp_mod

    seen = []

    def fake_sntp(measurements, server=None, timeout=None, clock=None):
        seen.append(server)
        return 0.0

    monkeypatch.setattr(ntp_mod, "sntp_drift", fake_sntp)
    monkeypatch.setattr(ntp_mod, "ntpPool", "127.0.0.1")
    assert ntp_mod.check_clock_drift(threshold=10) == 0.0
    assert seen == [("127.0.0.1", ntp_mod.NTP_PORT)]
