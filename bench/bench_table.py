"""Figures for the discovery table (p2p/discover/table.py).

* Lookups in a simulated network of 1,000 and 10,000 nodes. As in geth's table
  tests, the Table talks to an in-process transport: its ``findnode`` answers
  from a precomputed network instead of the wire. Node IDs are random 64-byte
  strings (not real public keys: nothing is signed or recovered), their hashes
  computed once. Each simulated node knows up to ``bucketSize`` nodes of every
  log distance to itself (what a full Kademlia table holds) and answers a
  findnode with the ``bucketSize`` of those closest to the target.
  Figures: lookups/s (limit: lookups/s if only the simulated answers cost
  time), ms per lookup, findnode requests and discv4 packets per lookup
  (one findnode, and neighbors replies of ``maxNeighbors`` nodes each), and
  how many of the network's true ``bucketSize`` closest nodes the lookup found.
* Memory per table entry: tracemalloc over filling every bucket of a table
  (entries and replacements: the Node objects, their IDs, hashes and IPs and
  the table's bookkeeping), divided by the nodes added; the limit shown is
  the size of the two byte strings every entry must hold (ID and hash).
"""

import bisect
import gc
import heapq
import ipaddress
import os
import random
import sys
import threading
import time
import tracemalloc

from p2p import crypto
from p2p.discover.node import Node, NodeID, hash_at_distance
from p2p.discover.table import bucketMinDistance, bucketSize, maxReplacements, nBuckets, new_table
from p2p.discover.udp import maxNeighbors

_LOOPBACK = ipaddress.IPv4Address("127.0.0.1")
_from_bytes = int.from_bytes


class SimNetwork:
    """``n`` nodes with random IDs; each knows a Kademlia table's worth of the others."""

    def __init__(self, n, seed=1):
        rng = random.Random(seed)
        ids = [NodeID(rng.randbytes(64)) for _ in range(n)]
        shas = [crypto.keccak256(i) for i in ids]
        # The simulated nodes sorted by hash: the nodes sharing a prefix with a given
        # hash are a contiguous slice, found by bisection.
        order = sorted(range(n), key=lambda i: shas[i])
        self.ids = [ids[i] for i in order]
        self.shas = [shas[i] for i in order]
        self.keys = [_from_bytes(s, "big") for s in self.shas]
        self.index = {nid: i for i, nid in enumerate(self.ids)}
        self._known = {}

    def node(self, i):
        """A fresh Node for simulated node i (as a neighbors packet decoder would make)."""
        return Node(_LOOPBACK, 30303, 30303, self.ids[i], self.shas[i])

    def known(self, i):
        """Indexes of the nodes simulated node i knows: up to bucketSize per log distance."""
        k = self._known.get(i)
        if k is None:
            k = self._known[i] = self.table_of(self.keys[i], exclude=i)
        return k

    def table_of(self, x, exclude=None):
        keys = self.keys
        out = []
        for p in range(256):
            shift = 255 - p
            lo = ((x >> shift) ^ 1) << shift       # sibling subtree at prefix length p
            a = bisect.bisect_left(keys, lo)
            b = bisect.bisect_left(keys, lo + (1 << shift))
            if b - a > bucketSize:
                # Any bucketSize nodes of the subtree will do: take them evenly spaced.
                out.extend(range(a, b, (b - a) // bucketSize)[:bucketSize])
            else:
                out.extend(range(a, b))
            # Stop once x's own subtree holds nothing but x.
            own_lo = (x >> shift) << shift
            c = bisect.bisect_left(keys, own_lo)
            d = bisect.bisect_left(keys, own_lo + (1 << shift))
            if d - c - (1 if exclude is not None else 0) <= 0:
                break
        return [j for j in out if j != exclude]

    def closest(self, candidates, t, n=bucketSize):
        keys = self.keys
        return sorted(candidates, key=lambda j: keys[j] ^ t)[:n]

    def true_closest(self, t, n=bucketSize):
        keys = self.keys
        return heapq.nsmallest(n, range(len(keys)), key=lambda j: keys[j] ^ t)


class SimTransport:
    """The Table's transport: findnode answers from a SimNetwork; ping always succeeds."""

    def __init__(self, net):
        self.net = net
        self.lock = threading.Lock()
        self.findnodes = 0
        self.neighbors_packets = 0
        self.busy = 0.0  # seconds spent answering

    def findnode(self, toid, toaddr, target):
        t0 = time.perf_counter()
        net = self.net
        i = net.index[toid]
        t = _from_bytes(crypto.keccak256(target), "big")
        res = [net.node(j) for j in net.closest(net.known(i), t)]
        dt = time.perf_counter() - t0
        with self.lock:
            self.findnodes += 1
            self.neighbors_packets += max(1, -(-len(res) // maxNeighbors))
            self.busy += dt
        return res, None

    def ping(self, toid, toaddr):
        return None

    def close(self):
        pass


def bench_lookups(report, n, lookups, seed=1):
    net = SimNetwork(n, seed)
    tr = SimTransport(net)
    rng = random.Random(seed + 1)
    self_id = NodeID(rng.randbytes(64))
    tab = new_table(tr, self_id, None, "", None)
    try:
        tab.init_done.wait(10)
        # Our table starts as full as a bootstrapped node's: its own Kademlia view.
        own = net.table_of(_from_bytes(crypto.keccak256(self_id), "big"))
        tab.stuff([net.node(j) for j in own])
        targets = [NodeID(rng.randbytes(64)) for _ in range(lookups)]
        for t in targets[:2]:  # warm-up: simulated nodes' views, LevelDB
            tab.lookup(t)
        tr.findnodes = tr.neighbors_packets = 0
        tr.busy = 0.0
        found = 0
        elapsed = cpu = 0.0
        for t in targets:
            t0, c0 = time.perf_counter(), time.process_time()
            res = tab.lookup(t)
            elapsed += time.perf_counter() - t0
            cpu += time.process_time() - c0
            want = {net.ids[j] for j in net.true_closest(_from_bytes(crypto.keccak256(t), "big"))}
            found += sum(1 for r in res if r.id in want)
        table_entries = tab.len()
    finally:
        tab.close()
    g = "table"
    label = "%dk nodes" % (n // 1000) if n >= 1000 else "%d nodes" % n
    report.add(g, "lookups/s, %s" % label, lookups / elapsed, "lookups/s",
               limit=lookups / tr.busy if tr.busy else None, limit_name="sim answers only")
    report.add(g, "lookup time, %s" % label, 1000.0 * elapsed / lookups, "ms")
    # CPU time of all threads (lookup, its findnode helpers, the simulated answers):
    # what a lookup costs when the machine is shared.
    report.add(g, "lookup CPU time (incl. sim answers), %s" % label, 1000.0 * cpu / lookups, "ms",
               limit=1000.0 * tr.busy / lookups, limit_name="sim answers only")
    report.add(g, "findnode requests per lookup, %s" % label, tr.findnodes / lookups, "msgs")
    report.add(g, "lookup packets (findnode+neighbors), %s" % label,
               (tr.findnodes + tr.neighbors_packets) / lookups, "packets")
    report.add(g, "true %d closest found, %s" % (bucketSize, label),
               100.0 * found / (lookups * bucketSize), "%")
    return table_entries


def _nodes_for_all_buckets(self_sha, rng, per_bucket):
    """Nodes at every bucket's distance: per_bucket each, with distinct /24s."""
    out = []
    k = 0
    for d in range(bucketMinDistance + 1, 257):
        for _ in range(per_bucket):
            sha = hash_at_distance(self_sha, d, rng)
            k += 1
            ip = ipaddress.IPv4Address(bytes((11, (k >> 8) & 0xFF, k & 0xFF, 1)))  # never dialed
            out.append(Node(ip, 30303, 30303, NodeID(sha + rng.randbytes(32)), sha))
    return out


def bench_memory(report, seed=3):
    rng = random.Random(seed)
    tab = new_table(NullTransport(), NodeID(rng.randbytes(64)), None, "", None)
    try:
        tab.init_done.wait(10)
        self_sha = tab.self().sha
        per_bucket = bucketSize + maxReplacements
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        nodes = _nodes_for_all_buckets(self_sha, rng, per_bucket)
        for nd in nodes:
            tab.add(nd)
        del nodes
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        with tab.mutex:
            held = sum(len(b.entries) + len(b.replacements) for b in tab.buckets)
        # Only allocations still alive in the table count (the snapshots' diff).
        stats = after.compare_to(before, "filename")
        grown = sum(s.size_diff for s in stats
                    if not s.traceback[0].filename.endswith("tracemalloc.py"))
        assert held == nBuckets * per_bucket, held
    finally:
        tab.close()
    sample = Node(_LOOPBACK, 0, 0, NodeID(bytes(64)), bytes(32))
    data = sys.getsizeof(sample.id) + sys.getsizeof(sample.sha)
    report.add("table", "memory per table entry (%d held)" % held, grown / held, "bytes",
               limit=float(data), limit_name="ID+hash objects")


class NullTransport:  # a do-nothing transport
    def findnode(self, toid, toaddr, target):
        return [], None

    def ping(self, toid, toaddr):
        return None

    def close(self):
        pass


def run(report, sizes=((1000, 60), (10000, 60))):
    for n, lookups in sizes:
        bench_lookups(report, n, lookups)
    bench_memory(report)


if __name__ == "__main__":
    from bench.__main__ import Report

    run(Report(verbose=True), sizes=((1000, 20), (10000, 20)) if os.environ.get("QUICK") else ((1000, 60), (10000, 60)))
