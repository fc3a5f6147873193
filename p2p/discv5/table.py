"""The Kademlia table of discovery v5 (port of geth's p2p/discv5/table.go).

Unlike v4's table, v5's is plain data: the ``Network`` loop owns it and is the only
thread that touches it (no lock, no transport; the state machine in net.py does the
pinging). Nodes live in ``nBuckets`` buckets by the logarithmic distance of their
``sha`` to ours; a full bucket keeps newcomers in its replacement list.
"""

from __future__ import annotations

import os
from bisect import bisect_right

from p2p.discv5.node import logdist, new_node

__all__ = [
    "alpha", "bucketSize", "hashBits", "nBuckets", "maxFindnodeFailures",
    "Table", "Bucket", "new_table", "rand_uint", "rand_uint64n", "NodesByDistance",
]

alpha = 3          # Kademlia concurrency factor
bucketSize = 16    # Kademlia bucket size
hashBits = 32 * 8
nBuckets = hashBits + 1  # number of buckets

maxFindnodeFailures = 5


def new_table(our_id, our_addr) -> "Table":
    """The table of the node ``our_id`` at the socket address ``our_addr``."""
    return Table(new_node(our_id, our_addr[0], our_addr[1], our_addr[1]))


printTable = False


class Table:
    """geth's discv5 ``Table``: the buckets and our own node."""

    __slots__ = ("count", "buckets", "node_added_hook", "self")

    def __init__(self, self_node):
        self.count = 0                   # number of nodes
        self.buckets = [Bucket() for _ in range(nBuckets)]  # known nodes by distance
        self.node_added_hook = None      # for testing
        self.self = self_node            # the local node

    def choose_bucket_refresh_target(self) -> bytes:
        """A random target for a refresh lookup.

        A random node of the table is picked, and the target is drawn at less than twice
        its distance from us (on the first 64 bits), so that closer buckets get refreshed
        more often, in proportion to how nodes are spread over the buckets.
        """
        entries = 0
        if printTable:
            print()
        for i, b in enumerate(self.buckets):
            entries += len(b.entries)
            if printTable:
                for e in b.entries:
                    print(i, e.state, "%s:%d" % e.addr(), e.id.hex(), e.sha.hex())

        prefix = int.from_bytes(self.self.sha[0:8], "big")
        dist = 0xFFFFFFFFFFFFFFFF
        entry = rand_uint(entries + 1)
        for b in self.buckets:
            if entry < len(b.entries):
                n = b.entries[entry]
                dist = int.from_bytes(n.sha[0:8], "big") ^ prefix
                break
            entry -= len(b.entries)

        ddist = 0xFFFFFFFFFFFFFFFF
        if (dist + dist) & 0xFFFFFFFFFFFFFFFF > dist:  # Go's uint64 overflow test
            ddist = dist
        target_prefix = prefix ^ rand_uint64n(ddist)
        return target_prefix.to_bytes(8, "big") + os.urandom(24)

    def read_random_nodes(self, buf: list) -> int:
        """Fill ``buf`` with distinct random nodes of the table; the number written.

        The nodes are the table's own objects (geth's ``&(*b[0])`` is the same pointer).
        """
        buckets = [list(b.entries) for b in self.buckets if b.entries]
        if not buckets:
            return 0
        # Shuffle the buckets.
        for i in range(len(buckets) - 1, 0, -1):
            j = rand_uint(i)
            buckets[i], buckets[j] = buckets[j], buckets[i]
        # Move the head of each bucket into buf, dropping buckets that run empty.
        i = j = 0
        while i < len(buf):
            b = buckets[j]
            buf[i] = b[0]
            buckets[j] = b[1:]
            if len(b) == 1:
                del buckets[j]
            if not buckets:
                break
            i, j = i + 1, (j + 1) % len(buckets)
        # departure: read-random-nodes-count: the number of nodes written, not geth's i+1 (one too many when buf fills up)
        return min(i + 1, len(buf))

    def closest(self, target: bytes, nresults: int) -> "NodesByDistance":
        """The ``nresults`` nodes of the table closest to ``target``."""
        close = NodesByDistance(target=target)
        for b in self.buckets:
            if b.entries:  # most of the 257 are empty: skipping them is 5-6% of a full table's call
                for n in b.entries:
                    close.push(n, nresults)
        return close

    def add(self, n):
        """Add n to its bucket; a node to revalidate if the bucket is full.

        Returns None when n is in the bucket now (new, or bumped to the front), or the
        bucket's last entry when n went to the replacement list.
        """
        if n.id == self.self.id:
            return None
        b = self.buckets[logdist(self.self.sha, n.sha)]
        if b.bump(n):
            return None  # n exists in b
        if len(b.entries) < bucketSize:
            b.add_front(n)
            self.count += 1
            if self.node_added_hook is not None:
                self.node_added_hook(n)
            return None
        # b has no space left: add n to the replacements, revalidate the last entry.
        b.replacements.append(n)
        if len(b.replacements) > bucketSize:
            del b.replacements[0]
        return b.entries[-1]

    def stuff(self, nodes) -> None:
        """Add nodes at the end of their buckets, where there is room."""
        for n in nodes:
            if n.id == self.self.id:
                continue  # don't add self
            bucket = self.buckets[logdist(self.self.sha, n.sha)]
            if any(e.id == n.id for e in bucket.entries):
                continue  # already in bucket
            if len(bucket.entries) < bucketSize:
                bucket.entries.append(n)
                self.count += 1
                if self.node_added_hook is not None:
                    self.node_added_hook(n)

    def delete(self, node) -> None:
        """Remove a node from the table: failed or unbonded peers."""
        bucket = self.buckets[logdist(self.self.sha, node.sha)]
        for i, e in enumerate(bucket.entries):
            if e.id == node.id:
                del bucket.entries[i]
                self.count -= 1
                return

    def delete_replace(self, node) -> None:
        """Remove a node and refill its bucket from the replacements."""
        b = self.buckets[logdist(self.self.sha, node.sha)]
        i = 0
        while i < len(b.entries):
            if b.entries[i].id == node.id:
                del b.entries[i]
                self.count -= 1
            else:
                i += 1
        # geth TODO kept: the replacement could be chosen at random.
        if len(b.entries) < bucketSize and b.replacements:
            b.add_front(b.replacements.pop())
            self.count += 1


class Bucket:
    """Nodes ordered by last activity: the most recently active one is first."""

    __slots__ = ("entries", "replacements")

    def __init__(self, entries=None):
        self.entries = entries if entries is not None else []
        self.replacements = []

    def add_front(self, n) -> None:
        self.entries.insert(0, n)

    def bump(self, n) -> bool:
        """Move the entry with n's ID to the front (as n); False if there is none."""
        for i, e in enumerate(self.entries):
            if e.id == n.id:
                del self.entries[i]
                self.entries.insert(0, n)
                return True
        return False


def rand_uint(max: int) -> int:
    """A random integer in [0, max) from crypto randomness (0 when max < 2)."""
    if max < 2:
        return 0
    return int.from_bytes(os.urandom(4), "big") % max


def rand_uint64n(max: int) -> int:
    """A random integer in [0, max) from crypto randomness (0 when max < 2)."""
    if max < 2:
        return 0
    return int.from_bytes(os.urandom(8), "big") % max


# int.from_bytes, bound once: a full table's closest() is 16% faster with it
# (interleaved bench.timing.cpu_rates, CPython 3.11), as in p2p/discover/table.py.
_from_bytes = int.from_bytes


class NodesByDistance:
    """A list of nodes, ordered by distance to ``target`` (closest first).

    Each entry's XOR distance to the target is kept beside it as an int, so that
    push bisects on ints instead of comparing hashes byte string by byte string
    (geth's ``distcmp`` per probe): a full table's closest() is about 5x faster.
    """

    __slots__ = ("entries", "target", "_t", "_dists")

    def __init__(self, entries=None, target=bytes(32)):
        self.entries = entries if entries is not None else []  # already in order
        self.target = target
        t = self._t = _from_bytes(target, "big")
        self._dists = [t ^ _from_bytes(n.sha, "big") for n in self.entries]  # in step with entries

    def push(self, n, max_elems: int) -> None:
        """Insert n in order, keeping at most max_elems entries.

        The same list as geth's push (which appends and slides) for every caller,
        each of which passes one max_elems per list: the early return is geth's
        "farther than all the nodes we keep" case once the list is full.
        """
        d = self._t ^ _from_bytes(n.sha, "big")
        ix = bisect_right(self._dists, d)  # sort.Search: the first entry farther than n
        if ix >= max_elems:
            return  # farther than all we keep
        self.entries.insert(ix, n)
        self._dists.insert(ix, d)
        if len(self.entries) > max_elems:
            self.entries.pop()
            self._dists.pop()
