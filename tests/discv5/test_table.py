"""Tests for p2p.discv5.table (twins of geth's p2p/discv5/table_test.go, then extras).

geth's TestTable_pingReplace is commented out in 1.8.16 (the v5 table does no
pinging), so it has no twin; pingRecorder stays as geth has it.
"""

import random

from hypothesis import given, settings, strategies as st

from p2p import crypto
from p2p.discv5 import table as tabmod
from p2p.discv5.node import Node, NodeID, distcmp, hash_at_distance
from p2p.discv5.table import Bucket, NodesByDistance, bucketSize, nBuckets, new_table
from p2p.discv5.udp import errTimeout


class NullTransport:
    """A transport that sends nothing (geth's nullTransport)."""

    def send_ping(self, remote, remote_addr):
        return b"\x01"

    def send_pong(self, remote, ping_hash):
        pass

    def send_findnode(self, remote, target):
        pass

    def send_neighbours(self, remote, nodes):
        pass

    def local_addr(self):
        return ("0.0.0.0", 0)

    def close(self):
        pass


def test_bucket_bump_no_duplicates():
    rnd = random.Random(1000)
    for _ in range(1000):
        # a random list of nodes: the content of the bucket, and random bump positions
        n = rnd.randrange(bucketSize - 1) + 1
        nodes = [node_at_distance(bytes(32), 200, rnd) for _ in range(n)]
        bumps = [rnd.randrange(len(nodes)) for _ in range(rnd.randrange(100))]
        b = Bucket(list(nodes))
        for i, pos in enumerate(bumps):
            b.bump(b.entries[pos])
            assert not has_duplicates(b.entries), "bucket has duplicates after %d/%d bumps" % (i + 1, len(bumps))


def fill_bucket(tab, ld, rnd=random):
    """Insert nodes into bucket ld until it is full; the last one (IDs don't match hashes)."""
    b = tab.buckets[ld]
    while len(b.entries) < bucketSize:
        b.entries.append(node_at_distance(tab.self.sha, ld, rnd))
    return b.entries[bucketSize - 1]


def node_at_distance(base, ld, rnd=random):
    """A node with logdist(base, n.sha) == ld; its ID does not correspond to n.sha."""
    sha = hash_at_distance(base, ld, rnd)
    return Node(id=NodeID(sha + bytes(32)), sha=sha)  # a unique ID all the same


def new_ping_recorder():
    return PingRecorder()


class PingRecorder:
    """Records pings and answers as told (geth's pingRecorder)."""

    def __init__(self):
        self.responding = {}
        self.pinged = {}

    def findnode(self, toid, toaddr, target):
        raise AssertionError("findnode called on pingRecorder")

    def close(self):
        pass

    def waitping(self, from_):
        return None  # remote always pings

    def ping(self, toid, toaddr):
        self.pinged[toid] = True
        if self.responding.get(toid):
            return None
        return errTimeout


def quickcfg():
    return settings(max_examples=300, deadline=None)


@st.composite
def close_test(draw):
    """A table (self), a target and N (geth's closeTest.Generate)."""
    self_id = NodeID(draw(st.binary(min_size=64, max_size=64)))
    target = draw(st.binary(min_size=32, max_size=32))
    n = draw(st.integers(0, bucketSize - 1))
    ids = draw(st.lists(st.binary(min_size=64, max_size=64), max_size=50))
    return self_id, target, [Node(id=NodeID(i)) for i in ids], n


@quickcfg()
@given(close_test())
def test_table_closest(t):
    self_id, target, all_nodes, n = t
    # for any node table, Target and N
    tab = new_table(self_id, ("0.0.0.0", 0))
    tab.stuff(all_nodes)
    # check that closest(Target, N) returns nodes
    result = tab.closest(target, n).entries
    assert not has_duplicates(result), "result contains duplicates"
    assert sorted_by_distance_to(target, result), "result is not sorted by distance to target"
    # check that the number of results is min(N, tablen)
    want_n = min(n, tab.count)
    assert len(result) == want_n
    if not result:
        return
    # check that the result nodes have minimum distance to target.
    farthest = result[-1].sha
    for b in tab.buckets:
        for e in b.entries:
            if contains(result, e.id):
                continue
            assert distcmp(target, e.sha, farthest) >= 0, "table contains a closer node not in result"


def test_table_read_random_nodes_get_all():
    rnd = random.Random(200)
    for _ in range(200):
        buf = [None] * rnd.randrange(1000)
        tab = new_table(NodeID(), ("0.0.0.0", 0))
        for _ in range(len(buf)):
            ld = rnd.randrange(len(tab.buckets))
            tab.stuff([node_at_distance(tab.self.sha, ld, rnd)])
        got_n = tab.read_random_nodes(buf)
        assert got_n == tab.count, "wrong number of nodes"
        assert not has_duplicates(buf[:got_n]), "result contains duplicates"


def has_duplicates(nodes):
    seen = set()
    for i, e in enumerate(nodes):
        assert e is not None, "nil *Node at %d" % i
        if e.id in seen:
            return True
        seen.add(e.id)
    return False


def sorted_by_distance_to(distbase, nodes):
    last = None
    for i, e in enumerate(nodes):
        if i > 0 and distcmp(distbase, e.sha, last) < 0:
            return False
        last = e.sha
    return True


def contains(ns, id):
    return any(n.id == id for n in ns)


def gen(draw, strategy):
    """A random value of a strategy (geth's gen wraps quick.Value)."""
    return draw(strategy)


def newkey():
    return crypto.generate_key()


# ---------------------------------------------------------------------------
# Extras


def _table():
    return new_table(NodeID(bytes(63) + b"\x01"), ("127.0.0.1", 30303))


def test_new_table():
    tab = _table()
    assert len(tab.buckets) == nBuckets == 257
    assert (str(tab.self.ip), tab.self.udp, tab.self.tcp) == ("127.0.0.1", 30303, 30303)
    assert tab.count == 0 and tab.choose_bucket_refresh_target() != tab.self.sha


def test_add_bump_replace_and_delete_replace():
    rnd = random.Random(7)
    tab = _table()
    added = []
    tab.node_added_hook = added.append
    assert tab.add(Node(id=tab.self.id)) is None and tab.count == 0  # self is never added
    last = None
    nodes = [node_at_distance(tab.self.sha, 200, rnd) for _ in range(bucketSize)]
    for n in nodes:
        assert tab.add(n) is None
    assert tab.count == bucketSize and added == nodes
    b = tab.buckets[200]
    assert b.entries[0] is nodes[-1] and b.entries[-1] is nodes[0]  # newest first
    # bumping an existing node moves it to the front
    assert tab.add(nodes[0]) is None and b.entries[0] is nodes[0] and tab.count == bucketSize
    # a full bucket: the newcomer waits in the replacements, the last entry is returned
    extra = [node_at_distance(tab.self.sha, 200, rnd) for _ in range(bucketSize + 2)]
    for x in extra:
        last = tab.add(x)
        assert last is b.entries[-1]
    assert b.replacements == extra[2:]  # at most bucketSize replacements, oldest dropped
    # delete_replace refills from the newest replacement
    victim = b.entries[-1]
    tab.delete_replace(victim)
    assert not contains(b.entries, victim.id) and b.entries[0] is extra[-1]
    assert tab.count == bucketSize and len(b.replacements) == bucketSize - 1
    tab.delete(b.entries[0])
    assert tab.count == bucketSize - 1
    tab.delete(victim)  # not there: nothing happens
    assert tab.count == bucketSize - 1


def test_stuff_skips_self_duplicates_and_full_buckets():
    rnd = random.Random(8)
    tab = _table()
    full = [node_at_distance(tab.self.sha, 100, rnd) for _ in range(bucketSize + 3)]
    tab.stuff(full + [full[0], Node(id=tab.self.id)])
    assert tab.count == bucketSize and tab.buckets[100].entries == full[:bucketSize]


def test_read_random_nodes_fills_buf():
    rnd = random.Random(9)
    tab = _table()
    for ld in range(240, 257):
        tab.stuff([node_at_distance(tab.self.sha, ld, rnd) for _ in range(3)])
    buf = [None] * 10
    assert tab.read_random_nodes(buf) == 10  # geth says 11 here (see DEPARTURES.md)
    assert not has_duplicates(buf)
    assert tab.read_random_nodes([]) == 0
    assert new_table(NodeID(), ("0.0.0.0", 0)).read_random_nodes([None]) == 0


def test_choose_bucket_refresh_target_distance(monkeypatch):
    rnd = random.Random(10)
    tab = _table()
    near = node_at_distance(tab.self.sha, 250, rnd)
    tab.stuff([near])
    prefix = int.from_bytes(tab.self.sha[:8], "big")
    dist = int.from_bytes(near.sha[:8], "big") ^ prefix
    # entry 0 is the table's one node: the target is closer to us than twice its distance
    monkeypatch.setattr(tabmod, "rand_uint", lambda max: 0)
    for _ in range(50):
        t = tab.choose_bucket_refresh_target()
        assert len(t) == 32
        assert int.from_bytes(t[:8], "big") ^ prefix < dist
    # entry 1 is past the table's nodes: any distance (the whole 64-bit range)
    monkeypatch.setattr(tabmod, "rand_uint", lambda max: max - 1)
    far = [int.from_bytes(tab.choose_bucket_refresh_target()[:8], "big") ^ prefix for _ in range(50)]
    assert max(far) >= dist


def test_nodes_by_distance_push():
    target = bytes(32)
    nodes = [Node(id=NodeID(bytes([i]) * 64), sha=bytes(31) + bytes([i])) for i in (5, 1, 9, 3, 7)]
    h = NodesByDistance(target=target)
    for n in nodes:
        h.push(n, 3)
    assert [n.sha[-1] for n in h.entries] == [1, 3, 5]
    assert isinstance(tabmod.rand_uint(1), int) and tabmod.rand_uint(1) == 0 and tabmod.rand_uint64n(0) == 0
    assert all(0 <= tabmod.rand_uint(3) < 3 for _ in range(20))


def _distcmp_push(entries, target, n, max_elems):
    """geth's nodesByDistance.push as written: sort.Search with distcmp, append, slide.

    (The implementation this module had before push bisected on int distances.)
    """
    lo, hi = 0, len(entries)
    while lo < hi:
        mid = (lo + hi) // 2
        if distcmp(target, entries[mid].sha, n.sha) > 0:
            hi = mid
        else:
            lo = mid + 1
    if len(entries) < max_elems:
        entries.append(n)
    if lo < len(entries):
        entries.insert(lo, n)
        entries.pop()


def _distcmp_closest(tab, target, nresults):
    entries = []
    for b in tab.buckets:
        for n in b.entries:
            _distcmp_push(entries, target, n, nresults)
    return entries


def _tied_table(rnd):
    """A table with nodes spread over many buckets, some of them sharing a hash (ties)."""
    tab = _table()
    for _ in range(rnd.randrange(1, 120)):
        ld = rnd.choice((rnd.randrange(nBuckets), 256, 255, 254, 253))
        b = tab.buckets[ld]
        if len(b.entries) >= bucketSize:
            continue
        if b.entries and rnd.random() < 0.3:
            twin = rnd.choice(b.entries)  # same hash, another ID: the same distance to any target
            n = Node(id=NodeID(rnd.randbytes(64)), sha=twin.sha)
        else:
            n = node_at_distance(tab.self.sha, ld, rnd)
        b.entries.append(n)
        tab.count += 1
    return tab


def test_closest_same_as_distcmp_push():
    rnd = random.Random(11)
    for _ in range(150):
        tab = _tied_table(rnd)
        nodes = [n for b in tab.buckets for n in b.entries]
        targets = [rnd.randbytes(32), tab.self.sha, rnd.choice(nodes).sha,
                   hash_at_distance(rnd.choice(nodes).sha, rnd.randrange(1, 12), rnd)]
        for target in targets:
            for nresults in (0, 1, bucketSize, rnd.randrange(tab.count + 1), tab.count,
                             tab.count + 1, tab.count + 20):
                want = _distcmp_closest(tab, target, nresults)
                got = tab.closest(target, nresults)
                assert [id(n) for n in got.entries] == [id(n) for n in want], (target.hex(), nresults)
                assert len(got.entries) == min(nresults, tab.count)
                assert got.target == target


_tie_pool = [bytes(31) + bytes([i]) for i in (0, 1, 2, 3, 0x80, 0xff)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_tie_pool), max_size=30), st.sampled_from(_tie_pool + [bytes([0xff]) * 32]),
       st.integers(0, 34))
def test_nodes_by_distance_push_ties_as_distcmp(shas, target, max_elems):
    # Few distinct hashes: most pushes tie with an entry; the tied newcomer goes after it.
    nodes = [Node(id=NodeID(bytes([i]) * 64), sha=sha) for i, sha in enumerate(shas)]
    h, want = NodesByDistance(target=target), []
    for n in nodes:
        h.push(n, max_elems)
        _distcmp_push(want, target, n, max_elems)
        assert [id(e) for e in h.entries] == [id(e) for e in want]
    assert len(h.entries) == min(max_elems, len(nodes))


def test_nodes_by_distance_push_after_given_entries():
    # entries handed to the constructor (already in order) are kept, and pushes go on from them
    rnd = random.Random(12)
    target = rnd.randbytes(32)
    nodes = [Node(id=NodeID(rnd.randbytes(64)), sha=rnd.randbytes(32)) for _ in range(40)]
    want = []
    for n in nodes[:10]:
        _distcmp_push(want, target, n, bucketSize)
    given_entries = list(want)
    h = NodesByDistance(entries=given_entries, target=target)
    assert h.entries is given_entries
    for n in nodes[10:]:
        h.push(n, bucketSize)
        _distcmp_push(want, target, n, bucketSize)
    assert [id(e) for e in h.entries] == [id(e) for e in want] and len(want) == bucketSize
