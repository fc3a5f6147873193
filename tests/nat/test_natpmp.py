"""Tests for p2p/nat/natpmp.py against a fake NAT-PMP router on 127.0.0.1.

geth has no natpmp_test.go; these cover the RFC 6886 client, the PMP
Interface, discovery and the gateway guessing.
"""

import ipaddress
import logging
import struct
import threading

import pytest

from p2p import nat
from p2p.nat import natpmp
from p2p.nat.natpmp import Client, PMPError, discover_pmp, PMP, potential_gateways

from tests.nat.fakes import WAIT, FakePMP, SilentUDP, closed_udp_port

FAST = dict(initial_timeout=0.02, tries=4)  # quick retransmissions for tests


def client(fake, **kw):
    return Client("127.0.0.1", fake.port, **{**FAST, **kw})


def test_external_address():
    with FakePMP(external_ip="198.51.100.7") as fake:
        res = client(fake).get_external_address()
        assert res.external_ip_address == ipaddress.IPv4Address("198.51.100.7")
        assert res.seconds_since_start_of_epoch > 1000
        assert fake.requests.get(timeout=WAIT) == b"\x00\x00"


def test_map_request_encoding():
    with FakePMP() as fake:
        c = client(fake)
        res = c.add_port_mapping("TCP", 30303, 30304, 1200)
        assert res.internal_port == 30303 and res.mapped_external_port == 30304
        assert res.port_mapping_lifetime_in_seconds == 1200
        raw = fake.requests.get(timeout=WAIT)
        assert raw == struct.pack("!BBHHHI", 0, 2, 0, 30303, 30304, 1200)
        c.add_port_mapping("udp", 30301, 30301, 60)
        assert fake.requests.get(timeout=WAIT)[:2] == b"\x00\x01"


def test_pmp_interface():
    with FakePMP(external_ip="198.51.100.8") as fake:
        m = PMP(ipaddress.IPv4Address("127.0.0.1"), client(fake))
        assert str(m) == "NAT-PMP(127.0.0.1)"
        assert m.external_ip() == ipaddress.IPv4Address("198.51.100.8")
        m.add_mapping("TCP", 30303, 30305, "ethereum p2p", 20 * 60)
        # Internal port first in the request, as RFC 6886 lays it out.
        assert fake.next_mapping() == ("tcp", 30305, 30303, 1200)
        m.delete_mapping("TCP", 30303, 30305)
        # Unmapping: external port 0, lifetime 0.
        assert fake.next_mapping() == ("tcp", 30305, 0, 0)
        with pytest.raises(nat.NATError, match="lifetime must not be <= 0"):
            m.add_mapping("udp", 1, 1, "x", 0)


def test_pmp_refused():
    with FakePMP(result_code=2) as fake:
        m = PMP(ipaddress.IPv4Address("127.0.0.1"), client(fake))
        with pytest.raises(PMPError) as ei:
            m.add_mapping("udp", 30303, 30303, "p2p", 60)
        assert ei.value.code == 2
        assert "not authorized or refused" in str(ei.value) and "127.0.0.1" in str(ei.value)
        assert isinstance(ei.value, nat.NATError)
        with pytest.raises(PMPError, match="result code 2"):
            m.external_ip()


@pytest.mark.parametrize("code,text", [(1, "unsupported version"), (3, "network failure"),
                                       (4, "out of resources"), (5, "unsupported opcode"),
                                       (77, "unknown result code")])
def test_result_codes(code, text):
    with FakePMP(result_code=code) as fake:
        with pytest.raises(PMPError, match=text):
            client(fake).get_external_address()


def test_retransmits_until_answered():
    with FakePMP(drop=2) as fake:
        res = client(fake).get_external_address()
        assert res.external_ip_address == ipaddress.IPv4Address("198.51.100.7")
        # Two sends were dropped; the third was answered.
        for _ in range(3):
            assert fake.requests.get(timeout=WAIT) == b"\x00\x00"


def test_ignores_malformed_responses():
    with FakePMP(garbage=True) as fake:
        assert client(fake).get_external_address().external_ip_address == ipaddress.IPv4Address("198.51.100.7")
        assert client(fake).add_port_mapping("tcp", 1000, 1000, 10).mapped_external_port == 1000


def test_no_answer():
    with SilentUDP() as silent:
        c = Client("127.0.0.1", silent.addr[1], initial_timeout=0.01, tries=3)
        with pytest.raises(nat.NATError, match="did not answer"):
            c.get_external_address()
        for _ in range(3):  # every try was sent
            assert silent.received.get(timeout=WAIT) == b"\x00\x00"


def test_total_timeout_bounds_tries():
    with SilentUDP() as silent:
        c = Client("127.0.0.1", silent.addr[1], timeout=0.05, initial_timeout=0.02, tries=1000)
        with pytest.raises(nat.NATError, match="did not answer"):
            c.get_external_address()


def test_connection_refused():
    c = Client("127.0.0.1", closed_udp_port(), initial_timeout=0.5, tries=2)
    with pytest.raises(nat.NATError):
        c.get_external_address()


def test_bad_arguments():
    with pytest.raises(ValueError):
        Client("not-an-ip")
    c = Client("127.0.0.1", closed_udp_port())
    with pytest.raises(ValueError, match="unknown protocol"):
        c.add_port_mapping("sctp", 1, 1, 1)
    with pytest.raises(ValueError, match="out of range"):
        c.add_port_mapping("tcp", 70000, 1, 1)


def test_discover_pmp():
    with FakePMP() as fake, SilentUDP() as silent:
        # A router that answers is found; a silent one is not.
        found = discover_pmp(gateways=["127.0.0.1"], port=fake.port, timeout=0.5, **FAST)
        assert isinstance(found, PMP)
        assert str(found) == "NAT-PMP(127.0.0.1)"
        assert found.external_ip() == ipaddress.IPv4Address("198.51.100.7")
        assert discover_pmp(gateways=["127.0.0.1"], port=silent.addr[1], timeout=0.1) is None
    assert discover_pmp(gateways=[], port=1) is None


def test_discover_pmp_first_answer_wins():
    with FakePMP() as fake:
        # 127.0.0.2 .. 127.0.0.4 have nothing on the port; 127.0.0.1 has the router.
        found = discover_pmp(gateways=["127.0.0.2", "127.0.0.3", "127.0.0.1", "127.0.0.4"],
                             port=fake.port, timeout=0.5)
        assert found is not None and found.gw == ipaddress.IPv4Address("127.0.0.1")


def test_pmp_map_refresh_and_delete():
    with FakePMP() as fake:
        m = nat.parse("pmp:127.0.0.1", pmp_port=fake.port)
        assert str(m) == "NAT-PMP(127.0.0.1)"
        quit = threading.Event()
        t = threading.Thread(target=nat.map, args=(m, quit, "udp", 30301, 30302, "ethereum discovery"),
                             kwargs={"update_interval": 0.02})
        t.start()
        assert fake.next_mapping() == ("udp", 30302, 30301, nat.MAP_TIMEOUT)
        assert fake.next_mapping() == ("udp", 30302, 30301, nat.MAP_TIMEOUT)  # refreshed
        quit.set()
        t.join(WAIT)
        assert not t.is_alive()
        last = None
        while not fake.mappings.empty():
            last = fake.mappings.get_nowait()
        assert last == ("udp", 30302, 0, 0)  # deleted on quit


def test_pmp_map_refused_is_logged(caplog):
    caplog.set_level(logging.DEBUG, logger="p2p.nat")
    with FakePMP(result_code=4) as fake:
        m = PMP(ipaddress.IPv4Address("127.0.0.1"), client(fake))
        quit = threading.Event()
        quit.set()  # add once, then delete at once
        nat.map(m, quit, "tcp", 30303, 30303, "p2p")
        assert fake.next_mapping() == ("tcp", 30303, 30303, nat.MAP_TIMEOUT)
        assert fake.next_mapping() == ("tcp", 30303, 0, 0)
    assert "Couldn't add port mapping" in caplog.text and "out of resources" in caplog.text
    assert "Couldn't delete port mapping" in caplog.text


def test_potential_gateways():
    addrs = [ipaddress.ip_interface(a) for a in (
        "127.0.0.1/8", "10.1.2.3/8", "172.20.5.6/16", "192.168.1.37/24", "192.168.1.99/24",
        "8.8.8.8/24", "172.32.0.5/16", "fe80::1/64", "192.168.77.200/30")]
    assert potential_gateways(addrs) == [ipaddress.IPv4Address(a) for a in (
        "10.0.0.1", "172.20.0.1", "192.168.1.1", "192.168.77.201")]


def test_potential_gateways_of_host():
    # Whatever this host has, every guess is x.x.x.1-style and private.
    for gw in potential_gateways():
        assert gw.version == 4 and gw.packed[3] & 1
        assert gw in natpmp.lan10 or gw in natpmp.lan176 or gw in natpmp.lan192
