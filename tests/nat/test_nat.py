"""Tests for p2p/nat/nat.py (geth's nat_test.go and more)."""

import ipaddress
import logging
import queue
import threading

import pytest

from p2p import nat
from p2p.nat import natpmp, natupnp
from p2p.nat.nat import ExtIP, NATError, parse_addr_listing, start_autodisc

from tests.nat.fakes import WAIT, FakePMP, RecordingInterface, SilentUDP
from tests.nat.test_natupnp import full_igd


def test_auto_disc_race():
    # Many threads call an AutoDisc whose discovery is still running; all
    # get the same answer once it ends.
    release = threading.Event()

    def doit():
        release.wait(WAIT)
        return ExtIP("33.44.55.66")

    ad = start_autodisc("thing", doit)
    results = queue.Queue()

    def call():
        try:
            results.put((ad.external_ip(), None))
        except Exception as err:
            results.put((None, err))

    threads = [threading.Thread(target=call) for _ in range(50)]
    for t in threads:
        t.start()
    assert str(ad) == "thing"  # still discovering
    release.set()
    want = ipaddress.IPv4Address("33.44.55.66")
    for i in range(50):
        ip, err = results.get(timeout=2 * WAIT)
        assert err is None, "result %d: unexpected error: %s" % (i, err)
        assert ip == want, "result %d: got IP %s, want %s" % (i, ip, want)
    for t in threads:
        t.join(WAIT)
    assert str(ad) == "ExtIP(33.44.55.66)"


def test_autodisc_nothing_found():
    ad = start_autodisc("thing", lambda: None)
    with pytest.raises(NATError, match="no thing router discovered"):
        ad.external_ip()
    with pytest.raises(NATError, match="no thing router discovered"):
        ad.add_mapping("tcp", 1, 1, "x", 60)
    with pytest.raises(NATError, match="no thing router discovered"):
        ad.delete_mapping("tcp", 1, 1)
    assert str(ad) == "thing"


def test_autodisc_discovery_error():
    def doit():
        raise OSError("network is down")

    ad = start_autodisc("thing", doit)
    with pytest.raises(NATError, match="no thing router discovered"):
        ad.external_ip()


@pytest.mark.parametrize("make", [
    lambda ssdp, pmp: nat.Any(ssdp_addr=ssdp.addr, pmp_gateways=["127.0.0.1"], pmp_port=pmp.port, timeout=0.3),
    lambda ssdp, pmp: nat.parse("any", ssdp_addr=ssdp.addr, pmp_gateways=["127.0.0.1"], pmp_port=pmp.port,
                                timeout=0.3),
], ids=["Any", "parse-any"])
def test_any_probes_on_first_use(make):
    """Issue 9 item 6: making the Interface sends nothing; the first call discovers (geth's once.Do in wait)."""
    with FakePMP(external_ip="198.51.100.9") as fake, SilentUDP() as ssdp:
        before = set(threading.enumerate())
        m = make(ssdp, fake)
        started = [t.name for t in set(threading.enumerate()) - before]
        assert started == [], "the constructor started probing: %s" % started
        assert fake.requests.empty() and ssdp.received.empty()
        assert str(m) == "UPnP or NAT-PMP"
        assert m.external_ip() == ipaddress.IPv4Address("198.51.100.9")  # waits for discovery
        assert not fake.requests.empty()
        assert str(m) == "NAT-PMP(127.0.0.1)"


def test_autodisc_discovers_once_for_concurrent_callers():
    calls = []
    release = threading.Event()

    def doit():
        calls.append(1)
        release.wait(WAIT)
        return ExtIP("1.2.3.4")

    ad = start_autodisc("thing", doit)
    assert calls == []
    results = queue.Queue()
    threads = [threading.Thread(target=lambda: results.put(ad.external_ip())) for _ in range(5)]
    for t in threads:
        t.start()
    release.set()
    for _ in threads:
        assert results.get(timeout=WAIT) == ipaddress.IPv4Address("1.2.3.4")
    for t in threads:
        t.join(WAIT)
    assert calls == [1]


def test_autodisc_forwards_to_found():
    rec = RecordingInterface()
    ad = start_autodisc("thing", lambda: rec)
    ad.add_mapping("TCP", 1, 2, "n", 60)
    ad.delete_mapping("TCP", 1, 2)
    assert rec.next_call() == ("add", "TCP", 1, 2, "n", 60)
    assert rec.next_call() == ("delete", "TCP", 1, 2)
    assert ad.external_ip() == "203.0.113.9"
    assert str(ad) == "Recording"


# ---------------------------------------------------------------------------
# parse


@pytest.mark.parametrize("spec", ["", "none", "off", "NONE", "Off", "none:1.2.3.4"])
def test_parse_none(spec):
    assert nat.parse(spec) is None


@pytest.mark.parametrize("spec,want", [
    ("extip:77.12.33.4", "77.12.33.4"),
    ("ExtIP:77.12.33.4", "77.12.33.4"),
    ("ip:10.0.0.1", "10.0.0.1"),
    ("extip:::ffff:1.2.3.4", "1.2.3.4"),
    ("extip:2001:db8::1", "2001:db8::1"),
])
def test_parse_extip(spec, want):
    m = nat.parse(spec)
    assert isinstance(m, ExtIP)
    assert m.external_ip() == ipaddress.ip_address(want)
    assert str(m) == "ExtIP(%s)" % want


@pytest.mark.parametrize("spec,msg", [
    ("extip", "missing IP address"),
    ("ip", "missing IP address"),
    ("extip:", "invalid IP address"),
    ("extip:1.2.3", "invalid IP address"),
    ("extip:300.1.1.1", "invalid IP address"),
    ("extip:example.com", "invalid IP address"),
    ("pmp:gateway", "invalid IP address"),
    ("pmp:fe80::1%eth0", "invalid IP address"),
    ("foo", 'unknown mechanism "foo"'),
    ("FOO:1.2.3.4", 'unknown mechanism "FOO"'),
    ("stun", 'unknown mechanism "stun"'),
])
def test_parse_errors(spec, msg):
    with pytest.raises(ValueError) as ei:
        nat.parse(spec)
    assert str(ei.value) == msg


@pytest.mark.parametrize("spec", ["pmp:192.168.0.1", "natpmp:192.168.0.1", "NAT-PMP:192.168.0.1"])
def test_parse_pmp_with_gateway(spec):
    # A gateway given by the user is used as is: nothing is sent yet.
    m = nat.parse(spec)
    assert isinstance(m, natpmp.PMP)
    assert m.gw == ipaddress.IPv4Address("192.168.0.1")
    assert m.c.port == natpmp.NATPMP_PORT
    assert str(m) == "NAT-PMP(192.168.0.1)"


@pytest.mark.parametrize("spec,what", [
    ("any", "UPnP or NAT-PMP"), ("auto", "UPnP or NAT-PMP"), ("on", "UPnP or NAT-PMP"), ("ANY", "UPnP or NAT-PMP"),
    ("upnp", "UPnP"), ("UPnP", "UPnP"), ("pmp", "NAT-PMP"), ("natpmp", "NAT-PMP"), ("nat-pmp", "NAT-PMP"),
])
def test_parse_autodisc(spec, what):
    # Discovery is pointed at loopback sockets that never answer.
    with SilentUDP() as ssdp, SilentUDP() as pmp_gw:
        m = nat.parse(spec, ssdp_addr=ssdp.addr, pmp_gateways=["127.0.0.1"], pmp_port=pmp_gw.addr[1], timeout=0.05)
        assert isinstance(m, nat.AutoDisc)
        assert str(m) == what
        with pytest.raises(NATError, match="no %s router discovered" % what):
            m.external_ip()


# ---------------------------------------------------------------------------
# map


def test_map_refresh_and_delete():
    rec = RecordingInterface()
    quit = threading.Event()
    t = threading.Thread(target=nat.map, args=(rec, quit, "tcp", 30303, 30304, "ethereum p2p"),
                         kwargs={"update_interval": 0.005, "lifetime": 77})
    t.start()
    add = ("add", "tcp", 30303, 30304, "ethereum p2p", 77)
    assert rec.next_call() == add
    assert rec.next_call() == add  # refreshed
    assert rec.next_call() == add
    quit.set()
    t.join(WAIT)
    assert not t.is_alive()
    calls = []
    while not rec.calls.empty():
        calls.append(rec.calls.get_nowait())
    assert calls[-1] == ("delete", "tcp", 30303, 30304)
    assert all(c == add for c in calls[:-1])


def test_map_defaults():
    # geth's 20-minute lifetime; with quit already set: one add, one delete.
    rec = RecordingInterface()
    quit = threading.Event()
    quit.set()
    nat.map(rec, quit, "udp", 1, 2, "n")
    assert rec.next_call() == ("add", "udp", 1, 2, "n", 20 * 60)
    assert rec.next_call() == ("delete", "udp", 1, 2)
    assert rec.calls.empty()
    assert nat.MAP_TIMEOUT == 20 * 60 and nat.MAP_UPDATE_INTERVAL == 15 * 60


def test_map_survives_errors(caplog):
    caplog.set_level(logging.DEBUG, logger="p2p.nat")
    rec = RecordingInterface(add_error=NATError("gateway says no"), delete_error=OSError("gone"))
    quit = threading.Event()
    t = threading.Thread(target=nat.map, args=(rec, quit, "tcp", 5, 5, "n"), kwargs={"update_interval": 0.005})
    t.start()
    assert rec.next_call()[0] == "add"
    assert rec.next_call()[0] == "add"  # kept refreshing after the error
    quit.set()
    t.join(WAIT)
    assert not t.is_alive()
    assert "Couldn't add port mapping" in caplog.text and "gateway says no" in caplog.text
    assert "Couldn't delete port mapping" in caplog.text
    assert "Mapped network port" not in caplog.text


def test_map_logs_success(caplog):
    caplog.set_level(logging.DEBUG, logger="p2p.nat")
    quit = threading.Event()
    quit.set()
    nat.map(ExtIP("1.2.3.4"), quit, "tcp", 30303, 30303, "p")
    assert "Mapped network port" in caplog.text and "interface=ExtIP(1.2.3.4)" in caplog.text
    assert "Deleting port mapping" in caplog.text


# ---------------------------------------------------------------------------
# ExtIP, Any


def test_ext_ip():
    m = ExtIP("1.2.3.4")
    assert m.external_ip() == ipaddress.IPv4Address("1.2.3.4")
    assert m.add_mapping("tcp", 1, 1, "x", 60) is None
    assert m.delete_mapping("tcp", 1, 1) is None
    assert m == ExtIP(ipaddress.IPv4Address("1.2.3.4")) and m != ExtIP("1.2.3.5")
    with pytest.raises(ValueError):
        ExtIP(None)
    with pytest.raises(ValueError):
        ExtIP("nope")


def test_any_finds_upnp():
    with full_igd() as dev, SilentUDP() as pmp_gw:
        m = nat.Any(ssdp_addr=dev.ssdp_addr, pmp_gateways=["127.0.0.1"], pmp_port=pmp_gw.addr[1], timeout=0.5)
        assert m.external_ip() == ipaddress.IPv4Address("203.0.113.7")
        assert str(m) == "UPNP IGDv1-IP1"
        assert isinstance(m.found, natupnp.UPnP)
        m.add_mapping("tcp", 30303, 30303, "p2p", 60)
        assert dev.wait_action("AddPortMapping")["NewExternalPort"] == "30303"


def test_any_finds_pmp():
    with FakePMP(external_ip="198.51.100.9") as fake, SilentUDP() as ssdp:
        m = nat.Any(ssdp_addr=ssdp.addr, pmp_gateways=["127.0.0.1"], pmp_port=fake.port, timeout=0.3)
        assert m.external_ip() == ipaddress.IPv4Address("198.51.100.9")
        assert str(m) == "NAT-PMP(127.0.0.1)"
        m.add_mapping("udp", 30301, 30301, "disc", 60)
        assert fake.next_mapping() == ("udp", 30301, 30301, 60)


def test_pmp_autodiscovered():
    with FakePMP() as fake:
        m = nat.PMP(gateways=["127.0.0.2", "127.0.0.1"], port=fake.port, timeout=0.5)
        assert m.external_ip() == ipaddress.IPv4Address("198.51.100.7")
        assert str(m) == "NAT-PMP(127.0.0.1)"


# ---------------------------------------------------------------------------
# interface addresses


def test_interface_addrs_has_loopback():
    addrs = nat.interface_addrs()
    assert any(ipaddress.IPv4Address("127.0.0.1") in a.network for a in addrs if a.version == 4)


def test_parse_addr_listing_ip():
    text = ("1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n"
            "2: eth0    inet 192.168.1.5/24 brd 192.168.1.255 scope global eth0\n"
            "2: eth0    inet6 fe80::1/64 scope link \\       valid_lft forever\n")
    assert parse_addr_listing(text) == [ipaddress.ip_interface(a) for a in
                                            ("127.0.0.1/8", "192.168.1.5/24", "fe80::1/64")]


def test_parse_addr_listing_ifconfig():
    text = ("en0: flags=8863<UP> mtu 1500\n"
            "\tinet6 fe80::1c%en0 prefixlen 64 secured scopeid 0x4\n"
            "\tinet 10.0.1.7 netmask 0xffffff00 broadcast 10.0.1.255\n")
    assert parse_addr_listing(text) == [ipaddress.ip_interface("10.0.1.7/24"),
                                            ipaddress.ip_interface("fe80::1c/64")]
