"""Churn on loopback: discovery tables heal when a third of the network vanishes.

30 discovery nodes bootstrap from one bootnode and converge; 10 are closed
without any goodbye (discv4 has none); revalidation, driven by calling
``Table.do_revalidate`` (not by waiting for its timer), removes them from the
survivors' tables; then new nodes join and old nodes' lookups find them.
The pong timeout is shortened through the module parameter so a dead node
costs 0.15 s, not 0.5 s. No fixed sleeps: every wait has a condition and a deadline.
"""

import threading
import time

import pytest

from p2p import crypto
from p2p.discover import udp as udpmod
from tests.helpers import run_parallel

N_NODES = 30
N_DEAD = 10
N_NEW = 5


def start_node(bootnodes=()):
    conn = udpmod.UDPConn.listen("127.0.0.1", 0)
    return udpmod.listen_udp(conn, udpmod.Config(private_key=crypto.generate_key(), bootnodes=list(bootnodes)))


def parallel(fn, items, timeout=30):
    run_parallel(fn, items, timeout, name="test.churn.parallel")


def known_ids(tab):
    with tab.mutex:
        return {n.id for b in tab.buckets for n in b.entries}


@pytest.fixture
def short_resp_timeout(monkeypatch):
    monkeypatch.setattr(udpmod, "respTimeout", 0.15)


def test_churn_dead_nodes_are_revalidated_away_and_new_nodes_found(short_resp_timeout):
    boot = start_node()
    nodes = [boot]
    try:
        assert boot.init_done.wait(10)
        nodes += [start_node([boot.self()]) for _ in range(N_NODES - 1)]
        for t in nodes:
            assert t.init_done.wait(20)
        # One more refresh everywhere now that the bootnode knows the whole network.
        parallel(lambda t: t.refresh().wait(20), nodes)
        ids = {t.self().id for t in nodes}
        sizes = [len(known_ids(t)) for t in nodes]
        assert all(known_ids(t) <= ids for t in nodes)
        assert sum(sizes) / len(sizes) >= 0.7 * (N_NODES - 1), sizes

        # A third of the network disappears without a word (never the bootnode,
        # so the newcomers below have somewhere to start).
        dead = nodes[1::3][:N_DEAD]
        alive = [t for t in nodes if t not in dead]
        dead_ids = {t.self().id for t in dead}
        parallel(lambda t: t.close(), dead)
        assert any(known_ids(t) & dead_ids for t in alive)

        # Revalidate each survivor until no dead node is left in its buckets.
        def heal(t):
            deadline = time.monotonic() + 15
            while known_ids(t) & dead_ids:
                assert time.monotonic() < deadline, "dead nodes still in %s" % t.self().id.hex()[:8]
                t.do_revalidate()

        parallel(heal, alive)
        for t in alive:
            assert not known_ids(t) & dead_ids
            # Live nodes survived revalidation (they answered their pings).
            assert known_ids(t), "revalidation emptied a table"
        assert sum(len(known_ids(t)) for t in alive) / len(alive) >= 0.5 * (len(alive) - 1)

        # Newcomers join through a survivor and are found by old nodes' lookups.
        entry = alive[1].self()
        new = [start_node([entry]) for _ in range(N_NEW)]
        nodes += new
        for t in new:
            assert t.init_done.wait(20)

        def find(i):
            searcher, target = alive[(3 * i + 2) % len(alive)], new[i].self()
            for _ in range(3):  # a lost UDP packet on a busy machine costs one lookup
                if any(n.id == target.id for n in searcher.lookup(target.id)):
                    break
            found = searcher.resolve(target.id)
            assert found is not None and found.id == target.id and found.udp == target.udp

        parallel(find, range(N_NEW))
    finally:
        parallel(lambda t: t.close(), nodes)
    assert not any(th.name.startswith("discover.") for th in threading.enumerate())


# ---------------------------------------------------------------------------
# Server level: dead static nodes are not hammered (dial history)


class CountingDialer:
    """Delegates to the real TCP dialer and records every attempt's time per node ID."""

    def __init__(self):
        from p2p import dial

        self.real = dial.TCPDialer(timeout=5.0)
        self.cond = threading.Condition()
        self.attempts = {}

    def dial(self, dest):
        with self.cond:
            self.attempts.setdefault(dest.id, []).append(time.monotonic())
            self.cond.notify_all()
        return self.real.dial(dest)

    def wait(self, pred, timeout=20):
        with self.cond:
            assert self.cond.wait_for(lambda: pred(self.attempts), timeout), self.attempts


def _dead_tcp_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there any more: connections are refused
    return port


def test_churn_server_dial_history_spaces_redials_of_dead_static_nodes(monkeypatch):
    import ipaddress

    from p2p import dial
    from p2p.discover.node import new_node, pubkey_id
    from p2p.server import Config, Server

    expiry = 0.4
    monkeypatch.setattr(dial, "dialHistoryExpiration", expiry)
    alive = Server(Config(private_key=crypto.generate_key(), max_peers=5, no_discovery=True,
                          listen_addr="127.0.0.1:0", name="alive"))
    alive.start()
    dead = [new_node(pubkey_id(crypto.generate_key().public_key), ipaddress.ip_address("127.0.0.1"),
                     0, _dead_tcp_port()) for _ in range(3)]
    dialer = CountingDialer()
    srv = Server(Config(private_key=crypto.generate_key(), max_peers=5, no_discovery=True,
                        listen_addr="127.0.0.1:0", name="dialer", dialer=dialer,
                        static_nodes=dead + [alive.self()]))
    import queue

    events = queue.Queue()
    sub = srv.subscribe_events(events)
    try:
        srv.start()
        ev = events.get(timeout=20)
        assert ev.type == "add" and ev.peer == alive.self().id
        # Each dead node is retried, but only once its history entry expired.
        dialer.wait(lambda a: all(len(a.get(n.id, ())) >= 3 for n in dead))
        with dialer.cond:
            for n in dead:
                times = dialer.attempts[n.id]
                gaps = [b - a for a, b in zip(times, times[1:])]
                assert all(g >= expiry * 0.9 for g in gaps), gaps
            # The live static node was dialed once and stayed connected: no redials.
            assert len(dialer.attempts[alive.self().id]) == 1
        assert srv.peer_count() == 1
    finally:
        sub.unsubscribe()
        srv.stop()
        alive.stop()
