"""Discovery over real UDP sockets on 127.0.0.1: bootstrapping and bad input."""

import logging
import os
import queue
import socket
import threading
import time

import pytest

from p2p import crypto
from p2p.discover import udp as udpmod
from p2p.discover.udp import Ping, RpcEndpoint, pingPacket, encode_packet

N_NODES = 30


def _start_node(bootnodes=(), host="127.0.0.1"):
    key = crypto.generate_key()
    conn = udpmod.UDPConn.listen(host, 0)
    tab = udpmod.listen_udp(conn, udpmod.Config(private_key=key, bootnodes=list(bootnodes)))
    # Many timeouts in a row start an NTP check against pool.ntp.org: not in tests.
    tab.net.check_clock_drift = lambda: None
    return tab


def _close_all(tabs):
    # Close in parallel: each close waits for its node's threads.
    ths = [threading.Thread(target=t.close, name="test.close") for t in tabs]
    for th in ths:
        th.start()
    for th in ths:
        th.join(10)


def _parallel(fn, items):
    ths = [threading.Thread(target=fn, args=(it,), name="test.parallel") for it in items]
    for th in ths:
        th.start()
    for th in ths:
        th.join(60)


def test_network_bootstrap_30_nodes():
    boot = _start_node()
    tabs = []
    try:
        assert boot.init_done.wait(10)
        bootnode = boot.self()
        for _ in range(N_NODES - 1):
            tabs.append(_start_node([bootnode]))
        nodes = [boot] + tabs
        # Every node's first refresh (seeded with the bootnode) must finish.
        for t in nodes:
            assert t.init_done.wait(30)
        # Refresh everyone once more now that the bootnode knows the whole network
        # (the timers would do it after 30 minutes).
        _parallel(lambda t: t.refresh().wait(30), nodes)

        ids = {t.self().id for t in nodes}
        for t in nodes:
            with t.mutex:
                known = {n.id for b in t.buckets for n in b.entries}
            assert t.self().id not in known
            assert known <= ids
        # Buckets hold 16 nodes, so a node can't always keep all 29 others; most
        # must be there. Under load, replies miss the 500 ms deadline, so a refresh
        # may end with a few nodes unknown (and five missed findnode replies drop a
        # node): wait on the tables' add hook (bounded) until they are filled,
        # asking the smallest tables to refresh again when nothing moves.
        sizes = _wait_tables(nodes, lambda sizes: (min(sizes) >= (N_NODES - 1) // 2
                                                   and sum(sizes) / len(sizes) >= 0.75 * (N_NODES - 1)),
                             timeout=90)
        # Lookups through the network find other nodes. A lookup can only find the
        # target once other tables hold it, so first wait until half the other
        # nodes know it. The target is the node most tables hold: a node that came
        # late can be left out of every full bucket (16 entries) for good, and no
        # amount of waiting makes half the network know it. Each lookup sends a
        # dozen findnodes with 500 ms deadlines, and when the machine is busy some
        # miss them, so the searchers take turns until one lookup finds it
        # (bounded); then resolve, which may need a lookup of its own, the same way.
        target = max((t.self() for t in tabs[3:]), key=lambda n: _known_by(nodes, n.id))
        _wait_tables(nodes, lambda sizes: _known_by(nodes, target.id) >= (N_NODES - 1) // 2, timeout=60)
        found, searcher = _retry(60, lambda s: next((n for n in s.lookup(target.id) if n.id == target.id), None),
                                 tabs[:3])
        assert found is not None, "lookups never found the target; table sizes %s" % sizes
        assert found.udp == target.udp and found.ip == target.ip
        resolved, _ = _retry(60, lambda s: s.resolve(target.id), [searcher])
        assert resolved is not None and resolved.id == target.id, "resolve never found the target"
    finally:
        _close_all([boot] + tabs)
    names = {th.name for th in threading.enumerate()}
    assert not any(n.startswith("discover.") for n in names), names


def _known_by(nodes, id):
    count = 0
    for t in nodes:
        if t.self().id == id:
            continue
        with t.mutex:
            count += any(n.id == id for b in t.buckets for n in b.entries)
    return count


def _table_sizes(nodes):
    sizes = []
    for t in nodes:
        with t.mutex:
            sizes.append(sum(len(b.entries) for b in t.buckets))
    return sizes


def _wait_tables(nodes, pred, timeout):
    """Wait until ``pred(table sizes)`` holds; returns the sizes.

    Each table's add hook bumps a generation counter under a Condition; the tables
    are read outside that Condition (a hook runs under its table's mutex). When
    nothing was added for 5 s, the three smallest tables refresh (the timers would
    do it after 30 minutes); refresh() only starts one.
    """
    cond = threading.Condition()
    gen = [0]

    def hook(n):
        with cond:
            gen[0] += 1
            cond.notify_all()

    for t in nodes:
        t.node_added_hook = hook
    deadline = time.monotonic() + timeout
    try:
        while True:
            with cond:
                seen = gen[0]
            sizes = _table_sizes(nodes)
            if pred(sizes):
                return sizes
            left = deadline - time.monotonic()
            assert left > 0, "tables not filled after %s s: sizes %s" % (timeout, sizes)
            with cond:
                moved = cond.wait_for(lambda: gen[0] != seen, timeout=min(left, 5.0))
            if not moved:
                for _, i in sorted((n, i) for i, n in enumerate(sizes))[:3]:
                    nodes[i].refresh()
    finally:
        for t in nodes:
            t.node_added_hook = None


def _retry(timeout, attempt, tabs):
    """Call ``attempt(tab)`` with each of ``tabs`` in turn until it returns something, or ``timeout`` s pass.

    Returns (result, tab) or (None, None).
    """
    deadline = time.monotonic() + timeout
    i = 0
    while time.monotonic() < deadline:
        tab = tabs[i % len(tabs)]
        i += 1
        r = attempt(tab)
        if r is not None:
            return r, tab
    return None, None


def _ping_and_wait_pong(sock, key, node_addr, timeout=5.0):
    port = sock.getsockname()[1]
    ep = RpcEndpoint(udpmod._addr_ip(("127.0.0.1", 0)), port, port)
    pkt, h = encode_packet(key, pingPacket, Ping(4, ep, RpcEndpoint(ep.ip, node_addr[1], 0),
                                                 int(time.time()) + 20))
    sock.sendto(pkt, node_addr)
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        data, _ = sock.recvfrom(2048)
        p, from_id, _, err = udpmod.decode_packet(data)
        if err is None and isinstance(p, udpmod.Pong) and p.reply_tok == h:
            return p


def test_network_malformed_datagrams_are_dropped(caplog):
    caplog.set_level(logging.DEBUG, logger="p2p.discover")
    tab = _start_node()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        assert tab.init_done.wait(10)
        addr = tab.self().addr()
        key = crypto.generate_key()
        good, _ = encode_packet(key, pingPacket, Ping(4, RpcEndpoint(udpmod._addr_ip(addr), 1, 1),
                                                      RpcEndpoint(udpmod._addr_ip(addr), 1, 0),
                                                      int(time.time()) + 20))

        def resign(body):
            sig = crypto.sign(crypto.keccak256(body), key)
            return crypto.keccak256(sig, body) + sig + body

        bad_sig = bytearray(good[32:97])
        bad_sig[64] = 9
        bad = {
            "random": os.urandom(300),
            "truncated": good[:50],
            "empty": b"",
            "bad hash": bytes([good[0] ^ 0xFF]) + good[1:],
            "bad signature": crypto.keccak256(bytes(bad_sig), good[97:]) + bytes(bad_sig) + good[97:],
            "broken rlp": resign(b"\x01\xc9\x04\xc0"),
            "unknown type": resign(b"\x07\xc0"),
            "oversize": resign(good[97:] + bytes(1500)),
            "huge": os.urandom(9000),
        }
        # Let the node ping us back after the good ping: answer nothing, it's fine.
        caplog.clear()
        for data in bad.values():
            sock.sendto(data, addr)
        # The node is still fine: a valid ping right after gets its pong. The read
        # loop handles datagrams in order, so all the bad ones were seen by then.
        pong = _ping_and_wait_pong(sock, key, addr)
        assert pong.to.udp == sock.getsockname()[1]
        lines = [r.getMessage() for r in caplog.records
                 if r.levelno == logging.DEBUG and "Bad discv4 packet" in r.getMessage()]
        assert len(lines) == len(bad), lines
        for why in ("too small", "bad hash", "too big", "unknown type: 7", "recovery"):
            assert any(why in line for line in lines), (why, lines)
    finally:
        sock.close()
        tab.close()


def test_network_many_pings_pongs():
    # Several clients ping one node at once; every ping gets its pong.
    tab = _start_node()
    try:
        assert tab.init_done.wait(10)
        addr = tab.self().addr()
        errors = queue.Queue()

        def client(_):
            key = crypto.generate_key()
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            try:
                for _ in range(10):
                    _ping_and_wait_pong(s, key, addr)
            except Exception as e:
                errors.put(e)
            finally:
                s.close()

        _parallel(client, range(4))
        assert errors.empty(), errors.get()
    finally:
        tab.close()


def _ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
def test_network_ipv6_bootstrap():
    a = _start_node(host="::1")
    b = None
    try:
        assert a.init_done.wait(10)
        assert str(a.self().ip) == "::1"
        b = _start_node([a.self()], host="::1")
        assert b.init_done.wait(10)
        # b learned a from its bootnode list; a learns b from b's ping, once b has
        # answered a's ping back (that may still be under way: the hook sees it).
        added = queue.Queue()
        a.node_added_hook = added.put
        with b.mutex:
            assert any(n.id == a.self().id for bk in b.buckets for n in bk.entries)
        with a.mutex:
            known = any(n.id == b.self().id for bk in a.buckets for n in bk.entries)
        if not known:
            assert added.get(timeout=5).id == b.self().id
        found = a.resolve(b.self().id)
        assert found is not None and found.ip == b.self().ip and found.udp == b.self().udp
    finally:
        _close_all([t for t in (a, b) if t is not None])
