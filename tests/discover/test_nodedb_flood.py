"""A ping flood from fresh identities against discovery v4's node database, over loopback.

A key costs an attacker a key generation and a signature, so it can ping from a new
identity every time. geth (1.8.16, and geth master still) records ``lastping`` for every
valid ping, bonded or not, and its expirer only ever removes IDs with a pong (1.9 and
later) or with a node record (1.8.16): an identity that only pinged stays on disk for
good, about 100 bytes of LevelDB per ping.

The node here is a real discovery node (``listen_udp`` on 127.0.0.1, a LevelDB on disk).
The attacker is one UDP socket that sends each ping with a fresh key and answers
nothing: not the node's pongs, not its pings back. The tests count the database items
(and bytes: key + value lengths) of the flooding identities after the flood, after the
expirer ran with a ``now`` two expirations ahead, and after a restart; meanwhile an
honest node (another of ours) bonds, and its records must be stored and kept.

Waiting is on conditions, never on sleeps: the pongs of each burst of pings, a sentinel
ping (the node handles datagrams in order, so its pong means every earlier ping has
been handled), and a ping from the node to a silent address (the node's reply matchers
time out in deadline order, so when that ping has timed out every ping back to the
flood has too).

``make test`` floods with FLOOD_IDS identities on both crypto backends;
``python -m tests.discover.test_nodedb_flood --ids 10000`` (in ``make soak``) prints the
figures for a bigger flood.
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import os
import selectors
import socket
import sys
import tempfile
import threading
import time
import tracemalloc


from p2p import crypto
from p2p.discover import database
from p2p.discover import udp as udpmod
from p2p.discover.database import (
    make_key, new_node_db, nodeDBItemPrefix, nodeDBNodeExpiration, nodeDBVersion,
)
from p2p.discover.node import pubkey_id
from p2p.discover.table import seedMinTableTime
from p2p.discover.udp import (
    Findnode, Neighbors, Ping, Pong, RpcEndpoint, neighborsPacket, pingPacket,
    pongPacket,
)
from tests.discover.test_conformance import RemoteNode

WAIT = 30.0           # upper bound for one condition on a loaded machine
FLOOD_IDS = 300       # fresh identities per flood in make test
BURST = 50            # pings sent before waiting for their pongs (the node's socket buffer holds them)
MAX_FLOOD_ITEMS = 0   # database items a flooding identity that never answers may leave
# Bytes of Python heap the flood may leave behind. What it leaves (tracemalloc) is the
# capacity of two empty hash tables, the ping-back set and the reply loop's index: Python
# does not shrink them, and they were as big as the most ping backs outstanding at once
# (at most the pings handled in one respTimeout), not as the flood is long. 300 keys
# leave about 40 KB.
MAX_HEAP_GROWTH = 256 * 1024
# The threads a discovery node starts on its own timers, whatever the traffic: a table
# refresh (with up to alpha = 3 findnode queries), revalidation, copying live nodes, and
# the clock check after ntpFailureThreshold reply timeouts in a row; at most 7 per node.
BOUNDED_THREADS = {"discover.Table.doRefresh", "discover.Table.findnode", "discover.Table.doRevalidate",
                   "discover.Table.copyLiveNodes", "discover.checkClockDrift"}
MAX_NEW_THREADS = 2 * 7  # the node under test and the honest node


def start_node(db_path: str, key=None, host="127.0.0.1", **cfg):
    """A discovery node on ``host`` (loopback) with its database at ``db_path``."""
    key = key or crypto.generate_key()
    tab = udpmod.listen_udp(udpmod.UDPConn.listen(host, 0),
                            udpmod.Config(private_key=key, node_db_path=db_path, **cfg))
    tab.net.check_clock_drift = lambda: None  # never ask an NTP server from a test
    assert tab.init_done.wait(WAIT)
    return tab


def db_usage(db, ids=None):
    """``(items, bytes)`` of the node database's per-node items (all, or of ``ids`` only)."""
    items = size = 0
    prefixes = [nodeDBItemPrefix] if ids is None else [make_key(id, "") for id in ids]
    for prefix in prefixes:
        for key, value in db.lvl.iterator(prefix=prefix):
            items += 1
            size += len(key) + len(value)
    return items, size


def dir_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))


class Flooder:
    """One UDP socket on 127.0.0.1 that pings the node with a fresh key per ping.

    It reads what the node sends (pongs, pings back) only to know its pings were
    handled, and answers nothing. Keys and packets are made before the flood.
    """

    def __init__(self, node, n: int, host="127.0.0.1"):
        self.node_addr = node.self().addr()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, 0))
        self.addr = self.sock.getsockname()
        self.keys = [crypto.generate_key() for _ in range(n)]
        self.ids = [pubkey_id(k.public_key) for k in self.keys]
        self.pings_back = 0
        self._serial = 0

    def close(self):
        self.sock.close()

    def _ping(self, key):
        # A different `to` TCP port per ping gives every ping its own hash.
        self._serial += 1
        ip = ipaddress.ip_address(self.addr[0])
        to = RpcEndpoint(ipaddress.ip_address(self.node_addr[0]), self.node_addr[1], self._serial & 0xFFFF)
        req = Ping(4, RpcEndpoint(ip, self.addr[1], self.addr[1]), to, int(time.time()) + 3600)
        return udpmod.encode_packet(key, pingPacket, req)

    def _await_pongs(self, want: set, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while want:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(2048)
            except socket.timeout:
                return
            # The flood only needs the reply tokens: the body is read without recovering
            # the node's key (a recovery costs 2 ms on the pure-Python backend).
            p = udpmod._decode_body(data[udpmod.headSize], data, udpmod.headSize + 1)
            if isinstance(p, Pong):
                want.discard(p.reply_tok)
            elif isinstance(p, Ping):
                self.pings_back += 1

    def flood(self, on_burst=None) -> None:
        """Ping once from every key, in bursts; each burst's pongs are waited for.

        A ping whose pong did not come (a datagram dropped under load) is sent again.
        """
        for start in range(0, len(self.keys), BURST):
            keys = self.keys[start:start + BURST]
            for _ in range(5):
                want = {}
                for k in keys:
                    pkt, h = self._ping(k)
                    want[h] = k
                    self.sock.sendto(pkt, self.node_addr)
                pending = set(want)
                self._await_pongs(pending, WAIT / 5)
                keys = [want[h] for h in pending]
                if not keys:
                    break
            assert not keys, "%d pings of a burst got no pong" % len(keys)
            if on_burst is not None:
                on_burst()
        self.sentinel()

    def sentinel(self) -> None:
        """Ping again from the first key: once its pong is in, every earlier ping was handled."""
        pkt, h = self._ping(self.keys[0])
        self.sock.sendto(pkt, self.node_addr)
        want = {h}
        self._await_pongs(want, WAIT)
        assert not want, "no pong to the sentinel ping"


class AnsweringFlooder(Flooder):
    """A flood whose identities do answer: each pings from its own socket, and pongs the
    node's ping back, so it is bonded as an honest node is (for the figures in main)."""

    def flood(self, on_burst=None) -> None:
        socks = []
        try:
            for _ in range(BURST):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", 0))
            for start in range(0, len(self.keys), BURST):
                self._burst(list(zip(socks, self.keys[start:start + BURST])))
        finally:
            for s in socks:
                s.close()
        self.sentinel()

    def _burst(self, pairs) -> None:
        sel = selectors.DefaultSelector()
        owed = {}  # socket -> [key, pong missing, ping back missing]
        try:
            for s, k in pairs:
                addr = s.getsockname()
                ip = ipaddress.ip_address(addr[0])
                to = RpcEndpoint(ipaddress.ip_address(self.node_addr[0]), self.node_addr[1], 0)
                req = Ping(4, RpcEndpoint(ip, addr[1], addr[1]), to, int(time.time()) + 3600)
                pkt, _ = udpmod.encode_packet(k, pingPacket, req)
                s.sendto(pkt, self.node_addr)
                owed[s] = [k, True, True]
                sel.register(s, selectors.EVENT_READ)
            deadline = time.monotonic() + WAIT
            while any(o[1] or o[2] for o in owed.values()) and time.monotonic() < deadline:
                for ev, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
                    s = ev.fileobj
                    data, _ = s.recvfrom(2048)
                    p, _, h, err = udpmod.decode_packet(data)
                    assert err is None, err
                    o = owed[s]
                    if isinstance(p, Pong):
                        o[1] = False
                    elif isinstance(p, Ping):
                        self.pings_back += 1
                        o[2] = False
                        addr = s.getsockname()
                        ep = RpcEndpoint(ipaddress.ip_address(addr[0]), addr[1], addr[1])
                        pong, _ = udpmod.encode_packet(o[0], pongPacket, Pong(ep, h, int(time.time()) + 20))
                        s.sendto(pong, self.node_addr)
        finally:
            sel.close()


def pings_back_done(node) -> None:
    """Wait until every ping back sent so far has timed out (see the module docstring)."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        silent.bind(("127.0.0.1", 0))
        id = pubkey_id(crypto.generate_key().public_key)
        assert node.net.ping(id, silent.getsockname()) is udpmod.errTimeout
    finally:
        silent.close()


def bond_honest(node, honest) -> None:
    """``honest`` pings ``node`` and answers its ping back, as our nodes do; then it asks
    ``node`` for neighbors, which ``node`` answers only once the bond is complete (it
    lists ``honest`` itself; fewer than bucketSize nodes end the request by timeout)."""
    assert honest.net.ping(node.self().id, node.self().addr()) is None
    for _ in range(5):
        nodes, err = honest.net.findnode(node.self().id, node.self().addr(), honest.self().id)
        if any(n.id == honest.self().id for n in nodes):
            return
    raise AssertionError("the honest node never got neighbors: %s" % err)


def honest_records(db, n):
    return (db.last_ping_received(n.id, n.ip), db.last_pong_received(n.id, n.ip), db.node(n.id))


def test_ping_flood_from_fresh_identities_leaves_nothing(crypto_backend, tmp_path):
    """FLOOD_IDS pings, each from a fresh key, none of whose senders ever answers: at most
    MAX_FLOOD_ITEMS database items per identity are left, the node's Python heap and
    thread count stay flat, and an honest node that bonds in the middle of the flood
    has its lastping, lastpong and (once it has been in the table for seedMinTableTime)
    node record stored; they survive a restart, and the expirer run two expirations
    later removes everything. Old main kept a lastping per identity (300 items, 30,000
    bytes per flood), which no expirer run removed."""
    path = str(tmp_path / "nodes")
    key = crypto.generate_key()
    node = start_node(path, key)
    honest = start_node("")
    flooder = Flooder(node, FLOOD_IDS)
    try:
        before_items, _ = db_usage(node.db)
        added = []
        node.node_added_hook = added.append
        gc.collect()
        threads_before = set(threading.enumerate())
        new_threads = set()
        bursts = [0]

        def on_burst():
            new_threads.update(set(threading.enumerate()) - threads_before)
            bursts[0] += 1
            if bursts[0] == FLOOD_IDS // BURST // 2:
                bond_honest(node, honest)  # an honest node bonds in the middle of the flood
                # The node record is written for nodes seedMinTableTime in the table.
                node.copy_live_nodes(now=time.time() + seedMinTableTime + 1)

        # The heap is measured on one backend: under tracemalloc the pure-Python
        # backend's key recoveries are 8x slower, and the Python code is the same.
        heap = crypto.backend_name() == crypto.available_backends()[0]
        if heap:
            tracemalloc.start()
        try:
            heap_before = tracemalloc.get_traced_memory()[0]
            flooder.flood(on_burst)
            pings_back_done(node)
            gc.collect()
            heap_growth = tracemalloc.get_traced_memory()[0] - heap_before
        finally:
            tracemalloc.stop()
        new_threads.update(set(threading.enumerate()) - threads_before)
        items, size = db_usage(node.db, flooder.ids)
        print("\nflood of %d identities: %d items, %d bytes in the node database; %d pings back; "
              "heap %s; threads started meanwhile: %s"
              % (FLOOD_IDS, items, size, flooder.pings_back,
                 "%+d bytes" % heap_growth if heap else "not measured",
                 sorted(t.name for t in new_threads)))
        assert flooder.pings_back >= FLOOD_IDS  # the node did ping every new sender back
        assert items <= MAX_FLOOD_ITEMS * FLOOD_IDS, "flood left %d items (%d bytes)" % (items, size)
        # No thread per ping: only the nodes' own timers started any meanwhile.
        assert {t.name for t in new_threads} <= BOUNDED_THREADS and len(new_threads) <= MAX_NEW_THREADS
        assert heap_growth < MAX_HEAP_GROWTH, heap_growth
        assert not node.net._pingbacks  # every ping back's entry went with its matcher

        # The honest node is bonded both ways, in the table, and its records are stored.
        h = honest.self()
        last_ping, last_pong, _ = honest_records(node.db, h)
        assert last_ping > 0 and last_pong > 0
        assert honest.db.has_bond(node.self().id, node.self().ip)
        assert {n.id for n in added} == {h.id}  # the table took it, and nothing of the flood
        assert node.db.node(h.id) == h
        assert db_usage(node.db)[0] - before_items == db_usage(node.db, [h.id])[0] == 3
        honest.close()  # its revalidation pings would renew lastping meanwhile
        kept = honest_records(node.db, h)
    finally:
        flooder.close()
        node.close()
        honest.close()

    # A restart keeps the honest node's records and finds nothing of the flood.
    db = new_node_db(path, nodeDBVersion, pubkey_id(key.public_key))
    try:
        assert honest_records(db, h) == kept
        assert db_usage(db, flooder.ids)[0] <= MAX_FLOOD_ITEMS * FLOOD_IDS
        db.expire_nodes(now=time.time() + 2 * nodeDBNodeExpiration)
        assert db_usage(db) == (0, 0)
    finally:
        db.close()


def test_ping_only_identities_expire(crypto_backend, tmp_path):
    """Identities that pinged and never answered are gone once the expirer runs an
    expiration later, even in a database where their lastping was written (by an older
    version, or by geth's rule); the honest node's records are not touched while fresh.
    On old main the expirer never removed an ID without a node record."""
    node = start_node(str(tmp_path / "nodes"))
    honest = start_node("")
    flooder = Flooder(node, 20)
    try:
        flooder.flood()
        pings_back_done(node)
        # As geth writes it for every ping: what an older database holds.
        for id in flooder.ids:
            node.db.update_last_ping_received(id, flooder.addr[0], time.time())
        bond_honest(node, honest)
        h = honest.self()
        node.db.expire_nodes(now=time.time() + 60)
        assert db_usage(node.db, flooder.ids)[0] == len(flooder.ids)
        assert node.db.last_pong_received(h.id, h.ip) > 0
        node.db.expire_nodes(now=time.time() + nodeDBNodeExpiration + 60)
        assert db_usage(node.db, flooder.ids) == (0, 0)
        assert db_usage(node.db, [h.id]) == (0, 0)  # its pong is as old now
    finally:
        flooder.close()
        node.close()
        honest.close()


BOND_LIMIT = 16  # nodeDBBondIPLimit in the bond limit test


def bonded_ids(db, ids) -> set:
    """Which of ``ids`` have any item in the database."""
    return {id for id in ids if db_usage(db, [id])[0]}


def test_answering_flood_is_limited_per_block(crypto_backend, tmp_path, monkeypatch):
    """FLOOD_IDS fresh keys on 127.0.0.1 that all answer the node's pings back, with the
    LAN exemption off and a bond limit of BOND_LIMIT: only BOND_LIMIT of them leave items
    (lastping and lastpong); the others get their pongs and pings back but stay unbonded,
    out of the table, and their findnode goes unanswered. An honest node on 127.0.1.1
    (another /24) bonds and is served meanwhile. After a restart the limit still holds
    (the index is read back from the database); the expirer frees the places. On old
    main every key left its two items (600 items, 60,000 bytes)."""
    monkeypatch.setattr(database, "nodeDBBondIPLimit", BOND_LIMIT)
    monkeypatch.setattr(database, "nodeDBBondLimitLAN", True)
    path = str(tmp_path / "nodes")
    key = crypto.generate_key()
    node = start_node(path, key)
    honest = start_node("", host="127.0.1.1")
    flooder = AnsweringFlooder(node, FLOOD_IDS)
    late = None
    try:
        added = []
        node.node_added_hook = added.append
        flooder.flood()
        pings_back_done(node)
        assert flooder.pings_back >= FLOOD_IDS  # every key was pinged back, and answered
        kept = bonded_ids(node.db, flooder.ids)
        items, size = db_usage(node.db, flooder.ids)
        print("\nanswering flood of %d identities, limit %d: %d bonded, %d items, %d bytes"
              % (FLOOD_IDS, BOND_LIMIT, len(kept), items, size))
        assert len(kept) == BOND_LIMIT and items == 2 * BOND_LIMIT
        assert {n.id for n in added} <= kept  # the refused ones did not enter the table

        # A refused key is answered but unbonded: its findnode gets no neighbors.
        late = RemoteNode(node)
        late.ping()
        while True:
            p, ph = late.recv()
            if isinstance(p, Ping):  # the ping back: answer it, as an honest node does
                late.send(pongPacket, Pong(late.endpoint(), ph, int(time.time()) + 20))
                break
        late.send(udpmod.findnodePacket, Findnode(late.id, int(time.time()) + 20))
        assert not any(isinstance(p, Neighbors) for p, _ in late.sentinel())
        assert db_usage(node.db, [late.id]) == (0, 0)

        # Another /24 has its own places: the honest node bonds and is served.
        bond_honest(node, honest)
        h = honest.self()
        assert str(h.ip) == "127.0.1.1"
        assert node.db.has_bond(h.id, h.ip) and node.db.last_ping_received(h.id, h.ip) > 0
    finally:
        if late is not None:
            late.close()
        flooder.close()
        node.close()
        honest.close()

    # After a restart the index is read back: new keys on 127.0.0.1 stay refused...
    node = start_node(path, key)
    more = AnsweringFlooder(node, 5)
    again = None
    try:
        more.flood()
        pings_back_done(node)
        assert bonded_ids(node.db, more.ids) == set()
        assert bonded_ids(node.db, flooder.ids) == kept
        # ...until the expirer has removed the old bonds.
        node.db.expire_nodes(now=time.time() + 2 * nodeDBNodeExpiration)
        assert db_usage(node.db) == (0, 0)
        again = AnsweringFlooder(node, 5)
        again.flood()
        pings_back_done(node)
        assert bonded_ids(node.db, again.ids) == set(again.ids)
    finally:
        more.close()
        if again is not None:
            again.close()
        node.close()


def _count(peer, cls):
    # How many packets of type cls the node sent to peer (a test_conformance.RemoteNode).
    return sum(isinstance(p, cls) for p, _, _ in peer.received)


def test_unanswered_ping_back_costs_one_ping_before_a_query(crypto_backend):
    """A peer that pinged the node but did not answer its ping back leaves nothing in the
    database; when the node later queries it, it pings it first (one extra ping, as
    for a peer it never heard from), and then sends its findnode."""
    node = start_node("")
    peer = RemoteNode(node)
    try:
        peer.ping()
        seen = set()
        while not {"Pong", "Ping"} <= seen:  # the pong, and the ping back we leave unanswered
            p, _ = peer.recv()
            seen.add(type(p).__name__)
        assert _count(peer, Pong) == 1
        pings_back_done(node)  # the ping back timed out unanswered
        assert db_usage(node.db, [peer.id]) == (0, 0)

        result = []
        q = threading.Thread(target=lambda: result.append(
            node.net.findnode(peer.id, peer.addr, peer.id)), name="test.findnode")
        q.start()
        try:
            # Answer as a geth node would: pong the ping, ping back, answer the findnode.
            p, ph = peer.recv()
            assert isinstance(p, Ping)
            peer.send(pongPacket, Pong(peer.endpoint(), ph, int(time.time()) + 20))
            peer.ping()
            while True:
                p, _ = peer.recv()
                if isinstance(p, Findnode):
                    break
                assert isinstance(p, Pong), p  # the pong to our ping, no second ping back
            peer.send(neighborsPacket, Neighbors([], int(time.time()) + 20))
        finally:
            q.join(WAIT)
        assert not q.is_alive()
        assert result[0][1] in (None, udpmod.errTimeout)  # an empty neighbors list ends by timeout
        assert _count(peer, Ping) == 2  # the unanswered ping back, then one before the query
        assert node.db.last_pong_received(peer.id, peer.addr[0]) > 0
        assert node.db.last_ping_received(peer.id, peer.addr[0]) > 0
    finally:
        peer.close()
        node.close()


def test_bonded_peer_queries_add_no_round_trip(crypto_backend):
    """Once another of our nodes pinged the node and answered its ping back, the node's
    findnode and ENR requests to it go out without a ping first (as in geth)."""
    node = start_node("")
    honest = start_node("")
    try:
        bond_honest(node, honest)
        pings = []
        real_ping = node.net.ping
        node.net.ping = lambda toid, toaddr: pings.append(toid) or real_ping(toid, toaddr)
        h = honest.self()
        nodes, _ = node.net.findnode(h.id, h.addr(), node.self().id)
        assert [n.id for n in nodes] == [node.self().id]  # honest's table holds the node
        rec, err = node.net.request_enr(h)
        assert err is None and rec.seq() == honest.net.local_record().seq()
        assert pings == []
    finally:
        node.close()
        honest.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.discover.test_nodedb_flood",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--ids", type=int, default=10000, help="fresh identities in the flood")
    ap.add_argument("--answer", action="store_true",
                    help="the identities answer the pings back (bond), as honest nodes do")
    ap.add_argument("--lan-exempt", action="store_true",
                    help="exempt loopback from the bond limit per address block, as LAN addresses "
                         "are by default (without it the flood stands for one public address)")
    args = ap.parse_args(argv)
    database.nodeDBBondLimitLAN = not args.lan_exempt
    with tempfile.TemporaryDirectory(prefix="nodedb-flood-") as tmp:
        path = os.path.join(tmp, "nodes")
        node = start_node(path)
        flooder = (AnsweringFlooder if args.answer else Flooder)(node, args.ids)
        try:
            threads_before = threading.active_count()
            t0 = time.monotonic()
            flooder.flood()
            took = time.monotonic() - t0
            pings_back_done(node)
            items, size = db_usage(node.db, flooder.ids)
            bonded = sum(1 for id in flooder.ids if node.db.last_pong_received(id, "127.0.0.1"))
            node.db.lvl.compact_range()
            disk = dir_size(path)
            threads_after = threading.active_count()
            node.db.expire_nodes(now=time.time() + nodeDBNodeExpiration - 60)
            kept_items, _ = db_usage(node.db, flooder.ids)
            node.db.expire_nodes(now=time.time() + 2 * nodeDBNodeExpiration)
            expired_items, expired_size = db_usage(node.db, flooder.ids)
        finally:
            flooder.close()
            node.close()
    per = 1000.0 / args.ids
    print("flood: %d fresh identities%s in %.1f s (%.0f pings/s), %d pings back, %d bonded" % (
        args.ids, " that answer" if args.answer else "", took, args.ids / took,
        flooder.pings_back, bonded))
    print("after the flood: %d items, %d bytes (%.0f items, %.0f bytes per 1,000 pings); "
          "LevelDB directory after compaction %d bytes" % (items, size, items * per, size * per, disk))
    print("after expire_nodes(now + %.0f s - 60 s): %d items" % (nodeDBNodeExpiration, kept_items))
    print("after expire_nodes(now + 2 x %.0f s): %d items, %d bytes" % (
        nodeDBNodeExpiration, expired_items, expired_size))
    print("threads %d -> %d" % (threads_before, threads_after))
    if args.answer:
        limit = 2 * (args.ids if args.lan_exempt else min(args.ids, database.nodeDBBondIPLimit))
    else:
        limit = MAX_FLOOD_ITEMS * args.ids
    ok = items <= limit and expired_items == 0 and threads_after == threads_before
    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
