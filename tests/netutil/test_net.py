"""Tests for p2p.netutil.net (twins of geth's net_test.go, plus extras)."""

import ipaddress

import pytest
from hypothesis import given, settings, strategies as st

from p2p import netutil
from p2p.netutil.net import (
    DistinctNetSet, Netlist, ParseError, check_relay_ip, errLAN, errLoopback, errSpecial,
    errUnspecified, errInvalid, is_lan, is_special_network, parse_netlist, same_net,
)

N = ipaddress.ip_network


@pytest.mark.parametrize("inp,want_err,want_list", [
    ("", None, []),
    ("127.0.0.0/8", None, [N("127.0.0.0/8")]),
    ("127.0.0.0/44", ParseError("CIDR address", "127.0.0.0/44"), None),
    ("127.0.0.0/16, 23.23.23.23/24,", None, [N("127.0.0.0/16"), N("23.23.23.0/24")]),
])
def test_parse_netlist(inp, want_err, want_list):
    if want_err is not None:
        with pytest.raises(ParseError) as exc:
            parse_netlist(inp)
        assert exc.value == want_err
        assert str(exc.value) == "invalid CIDR address: 127.0.0.0/44"
    else:
        lst = parse_netlist(inp)
        assert isinstance(lst, Netlist)
        assert list(lst) == want_list


def test_nil_net_list_contains():
    check_contains(Netlist().contains, [], ["1.2.3.4"])


def test_is_lan():
    check_contains(is_lan,
                   ["0.0.0.0", "0.2.0.8", "127.0.0.1", "10.0.1.1", "10.22.0.3", "172.31.252.251",
                    "192.168.1.4", "fe80::f4a1:8eff:fec5:9d9d", "febf::ab32:2233", "fc00::4"],
                   ["192.0.2.1", "1.0.0.0", "172.32.0.1", "fec0::2233"])


def test_is_special_network():
    check_contains(is_special_network,
                   ["192.0.2.1", "192.0.2.44", "2001:db8:85a3:8d3:1319:8a2e:370:7348",
                    "255.255.255.255", "224.0.0.22", "ff05::1:3"],
                   ["192.0.3.1", "1.0.0.0", "172.32.0.1", "fec0::2233"])


def check_contains(fn, inc, exc):
    for s in inc:
        assert fn(parse_ip(s)), "returned false for included address %s" % s
        assert fn(s) and fn(parse_ip(s).packed)  # str and packed forms too
    for s in exc:
        assert not fn(parse_ip(s)), "returned true for excluded address %s" % s


def parse_ip(s):
    """An address from a test table; a typo in the table fails loudly."""
    ip = netutil.to_ip(s)
    if ip is None:
        raise ValueError("invalid " + s)
    return ip


@pytest.mark.parametrize("sender,addr,want", [
    ("127.0.0.1", "0.0.0.0", errUnspecified),
    ("192.168.0.1", "0.0.0.0", errUnspecified),
    ("23.55.1.242", "0.0.0.0", errUnspecified),
    ("127.0.0.1", "255.255.255.255", errSpecial),
    ("192.168.0.1", "255.255.255.255", errSpecial),
    ("23.55.1.242", "255.255.255.255", errSpecial),
    ("192.168.0.1", "127.0.2.19", errLoopback),
    ("23.55.1.242", "192.168.0.1", errLAN),
    ("127.0.0.1", "127.0.2.19", None),
    ("127.0.0.1", "192.168.0.1", None),
    ("127.0.0.1", "23.55.1.242", None),
    ("192.168.0.1", "192.168.0.1", None),
    ("192.168.0.1", "23.55.1.242", None),
    ("23.55.1.242", "23.55.1.242", None),
])
def test_check_relay_ip(sender, addr, want):
    assert check_relay_ip(parse_ip(sender), parse_ip(addr)) is want


def test_check_relay_ip_invalid():
    assert check_relay_ip("127.0.0.1", b"\x01\x02\x03") is errInvalid
    assert check_relay_ip("127.0.0.1", None) is errInvalid
    assert str(errLAN) == "LAN address from WAN host"
    # packed 4- and 16-byte forms (what discovery packets carry)
    assert check_relay_ip(b"\x17\x37\x01\xf2", bytes([10, 0, 0, 1])) is errLAN
    assert check_relay_ip(b"\x17\x37\x01\xf2", bytes(10) + b"\xff\xff" + bytes([1, 2, 3, 4])) is None


@pytest.mark.parametrize("ip,other,bits,want", [
    ("0.0.0.0", "0.0.0.0", 32, True),
    ("0.0.0.0", "0.0.0.1", 0, True),
    ("0.0.0.0", "0.0.0.1", 31, True),
    ("0.0.0.0", "0.0.0.1", 32, False),
    ("0.33.0.1", "0.34.0.2", 8, True),
    ("0.33.0.1", "0.34.0.2", 13, True),
    ("0.33.0.1", "0.34.0.2", 15, False),
])
def test_same_net(ip, other, bits, want):
    assert same_net(bits, parse_ip(ip), parse_ip(other)) is want


def test_example_same_net():
    assert same_net(24, bytes([127, 0, 0, 1]), bytes([127, 0, 0, 3])) is True
    assert same_net(24, bytes([127, 3, 0, 1]), bytes([127, 5, 0, 3])) is False
    assert same_net(8, "10.0.0.1", "::ffff:10.1.1.1") is True  # mapped = IPv4
    assert same_net(8, "10.0.0.1", "a00::1") is False           # families differ


def test_distinct_net_set():
    ops = [
        ("add", "127.0.0.1", False),
        ("add", "127.0.0.2", False),
        ("add", "127.0.0.3", True),
        ("add", "127.32.0.1", False),
        ("add", "127.32.0.2", False),
        ("add", "127.32.0.3", True),
        ("add", "127.33.0.1", True),
        ("add", "127.34.0.1", False),
        ("add", "127.34.0.2", False),
        ("add", "127.34.0.3", True),
        ("remove", "127.0.0.1", False),
        ("add", "127.0.0.3", False),
        ("add", "127.0.0.3", True),
    ]
    s = DistinctNetSet(subnet=15, limit=2)
    for op, ip, fails in ops:
        if op == "add":
            assert s.add(ipaddress.ip_address(ip)) is (not fails), "add(%s)" % ip
        else:
            s.remove(ipaddress.ip_address(ip))
    assert s.len() == len(s) == 6
    assert s.contains("127.1.255.255")
    assert not s.contains("127.2.0.0")
    assert str(s) == "{127.0.0.0\u00d72 127.32.0.0\u00d72 127.34.0.0\u00d72}"


ips = st.one_of(st.binary(min_size=4, max_size=4), st.binary(min_size=16, max_size=16))


@settings(max_examples=200, deadline=None)
@given(st.lists(ips, max_size=30))
def test_distinct_net_set_add_remove(ip_list):
    s = DistinctNetSet(limit=3, subnet=2)
    for ip in ip_list:
        s.add(ip)
    for ip in ip_list:
        s.remove(ip)
    assert s.len() == 0


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 140), ips, ips)
def test_same_net_matches_bytewise(bits, a, b):
    # geth's byte-wise implementation as the reference
    def ref(bits, ip, other):
        a4 = netutil.to_ip(ip).version == 4
        b4 = netutil.to_ip(other).version == 4
        if a4 != b4:
            return False
        ip, other = netutil.to_ip(ip).packed, netutil.to_ip(other).packed
        nb = bits // 8
        mask = (~(0xFF >> (bits % 8))) & 0xFF
        if mask != 0 and nb < len(ip) and ip[nb] & mask != other[nb] & mask:
            return False
        return nb <= len(ip) and ip[:nb] == other[:nb]
    assert same_net(bits, a, b) == ref(bits, a, b)


def test_netlist_add_marshal():
    lst = Netlist()
    lst.add("10.0.0.0/8")
    lst.add("fe80::1/10")
    assert lst.contains("10.255.0.1") and lst.contains("fe80::abcd")
    assert not lst.contains("11.0.0.1") and not lst.contains("::1")
    assert lst.marshal_toml() == ["10.0.0.0/8", "fe80::/10"]
    assert Netlist.unmarshal_toml(lst.marshal_toml()) == lst
    assert str(lst) == "10.0.0.0/8, fe80::/10"
    for bad in ("10.0.0.0", "10.0.0.0/x", "10.0.0.0/255.0.0.0", "host/8"):
        with pytest.raises(ParseError):
            lst.add(bad)


def test_package_reexports():
    assert netutil.check_relay_ip is check_relay_ip
    assert netutil.is_temporary_error is not None


@settings(max_examples=400, deadline=None)
@given(ips)
def test_fast_classes_match_netlists(raw):
    # The bucketed integer index must agree with plain Netlist membership and ipaddress.
    from p2p.netutil import net
    ip = netutil.to_ip(raw)
    lan_ref = ip.is_loopback or (net.lan4 if ip.version == 4 else net.lan6).contains(ip)
    special_ref = ip.is_multicast or (net.special4 if ip.version == 4 else net.special6).contains(ip)
    assert is_lan(ip) == lan_ref
    assert is_special_network(ip) == special_ref
    for sender in ("127.0.0.1", "10.1.2.3", "23.55.1.242", "::1", "fe80::1", "2a00::1"):
        s = netutil.to_ip(sender)
        if ip.is_unspecified:
            want = errUnspecified
        elif special_ref:
            want = errSpecial
        elif ip.is_loopback and not s.is_loopback:
            want = errLoopback
        elif lan_ref and not is_lan(s):
            want = errLAN
        else:
            want = None
        assert check_relay_ip(s, ip) is want


@pytest.mark.parametrize("addr", ["10.0.0.1", "172.16.5.4", "fe80::1", "fc00::1", "0.1.2.3"])
def test_lan_sources(addr):
    assert is_lan(addr)
    assert check_relay_ip("23.55.1.242", addr) is errLAN
    assert check_relay_ip("10.9.9.9", addr) is None


@pytest.mark.parametrize("addr,want", [
    (("127.0.0.1", 30303), "127.0.0.1:30303"),
    (("::1", 30303, 0, 0), "[::1]:30303"),
    ((ipaddress.ip_address("10.0.0.1"), 1), "10.0.0.1:1"),
    ((ipaddress.ip_address("fe80::1"), 2), "[fe80::1]:2"),
    ((None, 0), "<nil>:0"),
    ("127.0.0.1:5", "127.0.0.1:5"),
    (None, ""),
])
def test_addr_str(addr, want):
    assert netutil.addr_str(addr) == want


def test_addr_str_socket():
    import socket
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    c = socket.create_connection(srv.getsockname())
    a, _ = srv.accept()
    try:
        assert netutil.addr_str(c) == "127.0.0.1:%d" % srv.getsockname()[1]

        class Stream:
            sock = a
        assert netutil.addr_str(Stream()) == "%s:%d" % c.getsockname()
        c.close()
        assert netutil.addr_str(c) == "<closed>"
    finally:
        for s in (a, c, srv):
            s.close()
