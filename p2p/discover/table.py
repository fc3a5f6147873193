"""The Kademlia node table of discovery v4 (port of geth's p2p/discover/table.go).

Known nodes are kept in buckets by log distance between their ID hash and ours.
Only the ``nBuckets`` farthest distances get a bucket; closer nodes all share
bucket 0. Each bucket keeps at most ``bucketSize`` live entries, most recently
seen first, plus a short list of replacements to use when an entry dies.

One thread, ``discover.Table.loop``, schedules the periodic work (refresh,
revalidation, copying long-lived nodes to the database) and shutdown. The
table reaches the network only through its ``Transport`` (ping, findnode,
close), so tests plug an in-memory one in.
"""

from __future__ import annotations

import bisect
import os
import queue
import random
import threading
import time

from p2p import crypto
from p2p.discover.database import NodeDB, new_node_db, nodeDBVersion
from p2p.discover.node import Node, logdist, new_node
from p2p.log import get_logger
from p2p.netutil import net as _net
from p2p.netutil.net import addr_str

log = get_logger("p2p.discover")

__all__ = [
    "alpha", "bucketSize", "maxReplacements", "hashBits", "nBuckets", "bucketMinDistance",
    "bucketIPLimit", "bucketSubnet", "tableIPLimit", "tableSubnet", "maxFindnodeFailures",
    "refreshInterval", "revalidateInterval", "copyNodesInterval", "seedMinTableTime",
    "seedCount", "seedMaxAge", "Table", "Transport", "Bucket", "new_table", "push_node", "delete_node",
    "contains", "NodesByDistance",
]

alpha = 3             # Kademlia concurrency factor
bucketSize = 16       # Kademlia bucket size
maxReplacements = 10  # size of each bucket's replacement list

# Buckets exist only for the upper 1/15 of distances: closer nodes are too
# unlikely to be worth their own buckets.
hashBits = 32 * 8
nBuckets = hashBits // 15                 # number of buckets
bucketMinDistance = hashBits - nBuckets   # log distance of the closest bucket

# IP address limits.
bucketIPLimit, bucketSubnet = 2, 24  # at most 2 addresses from the same /24
tableIPLimit, tableSubnet = 10, 24

maxFindnodeFailures = 5  # nodes exceeding this limit are dropped
refreshInterval = 30 * 60.0
revalidateInterval = 10.0
copyNodesInterval = 30.0
seedMinTableTime = 5 * 60.0
seedCount = 30
seedMaxAge = 5 * 24 * 3600.0

class Transport:
    """What the table needs from the network (implemented by ``UDP``).

    An interface, so that tests can run a table without sockets or keys. Errors
    are returned, as in geth: ``ping`` returns None or an error, ``findnode``
    returns ``(nodes, err)``.
    """

    def ping(self, toid, toaddr):
        raise NotImplementedError

    def findnode(self, toid, toaddr, target):
        raise NotImplementedError

    def close(self):
        raise NotImplementedError


class Bucket:
    """Live entries (most recently active first) and replacement candidates."""

    __slots__ = ("entries", "replacements", "ips")

    def __init__(self, ips=None):
        self.entries = []
        self.replacements = []
        self.ips = ips if ips is not None else _net.DistinctNetSet(subnet=bucketSubnet, limit=bucketIPLimit)

    def bump(self, n) -> bool:
        """Move the entry with n's ID to the front of the entries if present."""
        entries = self.entries
        nid = n.id
        for i, e in enumerate(entries):
            if e.id == nid:
                del entries[i]
                # departure: bump-keeps-entry: the entry stays (with its added_at), not n (geth 1.9.0)
                entries.insert(0, e)
                return True
        return False


def new_table(t: Transport, our_id: bytes, our_addr: tuple | None, node_db_path: str,
              bootnodes: list | None) -> "Table":
    """Create a Table over transport t and start its loop.

    ``our_addr`` is a ``(ip, port)`` tuple; an empty ``node_db_path`` gives a
    throw-away database.
    """
    db = new_node_db(node_db_path, nodeDBVersion, our_id)
    try:
        ip = our_addr[0] if our_addr else None
        port = our_addr[1] if our_addr else 0
        tab = Table(t, new_node(our_id, ip or None, port, port), db)
        tab.set_fallback_nodes(bootnodes or [])
    except Exception:
        db.close()
        raise
    tab.seed_rand()
    tab.load_seed_nodes()
    # The expirer starts after the seeds were loaded so that older nodes can
    # still be used as seeds.
    db.ensure_expirer()
    loop = threading.Thread(target=tab.loop, name="discover.Table.loop", daemon=True)
    tab._loop_thread = loop
    loop.start()
    return tab


class Table:
    def __init__(self, t: Transport, self_node: Node, db: NodeDB) -> None:
        self.mutex = threading.Lock()  # protects buckets, their content, nursery, rand
        self.buckets = [Bucket() for _ in range(nBuckets)]
        self.nursery = []               # bootstrap nodes
        self.rand = random.Random(0)    # reseeded from os.urandom periodically
        self.ips = _net.DistinctNetSet(subnet=tableSubnet, limit=tableIPLimit)
        self.db = db
        self.net = t
        self.self_node = self_node
        self.node_added_hook = None     # for tests

        self.init_done = threading.Event()
        self.closed = threading.Event()
        self._mailbox = queue.Queue()   # refreshReq / refreshDone / revalidateDone / closeReq
        self._mail_lock = threading.Lock()
        self._loop_done = False
        self._loop_thread: threading.Thread | None = None
        self._helpers = set()           # running doRevalidate / copyLiveNodes threads
        self._helpers_lock = threading.Lock()
        self._helpers_closed = False

    # -- public API -------------------------------------------------------------

    def seed_rand(self) -> None:
        b = os.urandom(8)
        with self.mutex:
            self.rand.seed(int.from_bytes(b, "big"))

    def self(self) -> Node:
        """The local node (don't modify it)."""
        return self.self_node

    def read_random_nodes(self, buf: list) -> int:
        """Fill the list ``buf`` with distinct random table nodes; returns how many."""
        if not self.is_init_done():
            return 0
        with self.mutex:
            buckets = [list(b.entries) for b in self.buckets if b.entries]
            if not buckets:
                return 0
            for i in range(len(buckets) - 1, 0, -1):
                j = self.rand.randrange(len(buckets))
                buckets[i], buckets[j] = buckets[j], buckets[i]
            # Take the head of each bucket in turn, dropping buckets that run empty.
            i = j = 0
            while i < len(buf):
                b = buckets[j]
                buf[i] = _copy_node(b[0])
                i += 1
                del b[0]
                if not b:
                    del buckets[j]
                    if not buckets:
                        break
                    j %= len(buckets)
                else:
                    j = (j + 1) % len(buckets)
            # departure: read-random-nodes-count: the count filled, not geth's i+1 (one too many)
            return i

    def close(self) -> None:
        """Stop the loop, close the transport and the node database."""
        if self.closed.is_set():
            return
        self._post(("closeReq", None))  # refused once the loop is ending: it closes anyway
        self.closed.wait()
        t = self._loop_thread
        if t is not None and t is not threading.current_thread():
            t.join()  # closed is set just before the loop returns

    def set_fallback_nodes(self, nodes: list) -> None:
        """Set the bootstrap nodes, used when the table and database are empty."""
        for n in nodes:
            try:
                n.validate_complete()
            except Exception as e:
                raise ValueError("bad bootstrap/fallback node %r (%s)" % (str(n), e)) from None
        nursery = []
        for n in nodes:
            cpy = _copy_node(n)
            # Recompute sha: the node might not come from new_node / parse_node.
            cpy.sha = crypto.keccak256(n.id)
            nursery.append(cpy)
        self.nursery = nursery

    def is_init_done(self) -> bool:
        return self.init_done.is_set()

    def resolve(self, target_id: bytes) -> Node | None:
        """Find the node with the given ID, in the table or the network; None if not found."""
        h = crypto.keccak256(target_id)
        with self.mutex:
            cl = self.closest(h, 1)
        if cl.entries and cl.entries[0].id == target_id:
            return cl.entries[0]
        for n in self.lookup(target_id):
            if n.id == target_id:
                return n
        return None

    def lookup(self, target_id: bytes, refresh_if_empty: bool = True) -> list:
        """Search the network for the nodes closest to target_id (any 64 bytes)."""
        target = crypto.keccak256(target_id)
        asked = {self.self_node.id}  # never query ourselves
        seen = set()
        reply = queue.Queue()
        pending_queries = 0
        while True:
            with self.mutex:
                result = self.closest(target, bucketSize)
            if result.entries or not refresh_if_empty:
                break
            # Nothing known (first lookup or all dropped): bootstrap and retry once.
            self.refresh().wait()
            refresh_if_empty = False

        while True:
            # Ask the alpha closest nodes not asked yet.
            for n in result.entries:
                if pending_queries >= alpha:
                    break
                if n.id not in asked:
                    asked.add(n.id)
                    pending_queries += 1
                    # Tracked like the loop's helpers: close joins it before closing the DB.
                    if not self._helper(lambda n=n: self.findnode(n, target_id, reply),
                                        "discover.Table.findnode"):
                        reply.put([])
            if pending_queries == 0:
                break  # all closest nodes were asked
            for n in reply.get():
                if n is not None and n.id not in seen:
                    seen.add(n.id)
                    result.push(n, bucketSize)
            pending_queries -= 1
        return result.entries

    def find_node(self, target_id: bytes) -> list:
        return self.lookup(target_id)

    def findnode(self, n, target_id, reply):
        r = []
        try:
            fails = self.db.find_fails(n.id, n.ip)
            r, err = self.net.findnode(n.id, n.addr(), target_id)
            if err is not None or not r:
                fails += 1
                self.db.update_find_fails(n.id, n.ip, fails)
                log.trace("Findnode failed", id=n.id, failcount=fails, err=err)
                if fails >= maxFindnodeFailures:
                    log.trace("Too many findnode failures, dropping", id=n.id, failcount=fails)
                    self.delete(n)
            elif fails > 0:
                self.db.update_find_fails(n.id, n.ip, fails - 1)
            # Keep everything: dead ones are dropped again by revalidation.
            for m in r:
                self.add(m)
        except Exception as e:  # a bug: say so, and never leave lookup() waiting
            log.error("Findnode error", id=n.id, err=repr(e), exc_info=True)
        finally:
            reply.put(r or [])

    def refresh(self) -> threading.Event:
        """Ask the loop for a refresh; the returned Event is set when it is done."""
        done = threading.Event()
        if not self._post(("refreshReq", done)):
            done.set()
        return done

    def _post(self, msg) -> bool:
        with self._mail_lock:
            if self._loop_done:
                return False
            self._mailbox.put(msg)
            return True

    # -- the loop ------------------------------------------------------------------

    def _spawn(self, target, name, *args):
        th = threading.Thread(target=target, args=args, name=name, daemon=True)
        th.start()
        return th

    def _helper(self, target, name):
        def run():
            try:
                target()
            finally:
                with self._helpers_lock:
                    self._helpers.discard(threading.current_thread())

        th = threading.Thread(target=run, name=name, daemon=True)
        with self._helpers_lock:
            if self._helpers_closed:
                return False  # the table is closing: the DB may go away under it
            self._helpers.add(th)
            # Started under the lock: the closing loop may otherwise join it
            # before it started ("cannot join thread before it is started").
            th.start()
        return True

    def loop(self):
        now = time.monotonic
        revalidate = now() + self.next_revalidate_time()  # None while a revalidation runs
        refresh = now() + refreshInterval
        copy_nodes = now() + copyNodesInterval
        waiting = [self.init_done]  # callers waiting for the running refresh
        refreshing = True           # geth: refreshDone != nil while doRefresh runs
        mailbox = self._mailbox

        def start_refresh():
            self._spawn(self._do_refresh_and_report, "discover.Table.doRefresh")

        start_refresh()
        try:
            while True:
                t = now()
                deadlines = [refresh, copy_nodes] + ([revalidate] if revalidate is not None else [])
                timeout = max(0.0, min(deadlines) - t)
                try:
                    kind, value = mailbox.get(timeout=timeout)
                except queue.Empty:
                    kind, value = None, None
                t = now()
                if kind is None:
                    if t >= refresh:  # case <-refresh.C
                        refresh = t + refreshInterval
                        self.seed_rand()
                        if not refreshing:
                            refreshing = True
                            start_refresh()
                    if revalidate is not None and t >= revalidate:  # case <-revalidate.C
                        revalidate = None
                        self._helper(self._do_revalidate_and_report, "discover.Table.doRevalidate")
                    if t >= copy_nodes:  # case <-copyNodes.C
                        copy_nodes = t + copyNodesInterval
                        self._helper(self.copy_live_nodes, "discover.Table.copyLiveNodes")
                elif kind == "refreshReq":
                    waiting.append(value)
                    if not refreshing:
                        refreshing = True
                        start_refresh()
                elif kind == "refreshDone":
                    for ev in waiting:
                        ev.set()
                    waiting = []
                    refreshing = False
                elif kind == "revalidateDone":
                    revalidate = now() + self.next_revalidate_time()
                elif kind == "closeReq":
                    break
        finally:
            if self.net is not None:
                self.net.close()
            with self._mail_lock:
                self._loop_done = True
            # Wait for a running refresh; answer the requests that came meanwhile.
            while refreshing:
                kind, value = mailbox.get()
                if kind == "refreshDone":
                    refreshing = False
                elif kind == "refreshReq":
                    waiting.append(value)
            while True:
                try:
                    kind, value = mailbox.get_nowait()
                except queue.Empty:
                    break
                if kind == "refreshReq":
                    waiting.append(value)
            for ev in waiting:
                ev.set()
            with self._helpers_lock:
                self._helpers_closed = True
                helpers = list(self._helpers)
            for th in helpers:
                th.join(5)
            self.db.close()
            self.closed.set()

    def _do_refresh_and_report(self):
        try:
            self.do_refresh()
        except Exception as e:
            log.error("Table refresh failed", err=repr(e))
        finally:
            self._mailbox.put(("refreshDone", None))

    def _do_revalidate_and_report(self):
        try:
            self.do_revalidate()
        except Exception as e:
            log.error("Table revalidation failed", err=repr(e))
        finally:
            self._post(("revalidateDone", None))

    def do_refresh(self, done=None):
        """Load seeds, look ourselves up and run a few random lookups to fill buckets."""
        try:
            # Nodes from the database that are hopefully still alive.
            self.load_seed_nodes()
            self.lookup(self.self_node.id, False)
            # Kademlia wants a lookup in the least recently used bucket, but a hash
            # preimage landing in a chosen bucket can't be made; use random targets.
            for _ in range(3):
                self.lookup(os.urandom(64), False)
        finally:
            if done is not None:
                done.set()

    def load_seed_nodes(self):
        seeds = list(self.db.query_seeds(seedCount, seedMaxAge))
        seeds.extend(self.nursery)
        for seed in seeds:
            log.debug("Found seed node in database", id=seed.id, addr=addr_str(seed.addr()),
                  age=_Age(self.db, seed.id, seed.ip))
            self.add(seed)

    def do_revalidate(self, done=None):
        """Ping the last node of a random bucket; bump it or replace/drop it."""
        try:
            last, bi = self.node_to_revalidate()
            if last is None:
                return  # all buckets empty
            err = self.net.ping(last.id, last.addr())
            if err is None:
                self._fetch_newer_record(last)
            with self.mutex:
                b = self.buckets[bi]
                if err is None:
                    log.trace("Revalidated node", b=bi, id=last.id)
                    b.bump(last)
                    return
                # No pong: take a replacement, or just delete the node.
                r = self.replace(b, last)
                if r is not None:
                    log.trace("Replaced dead node", b=bi, id=last.id, ip=last.ip, r=r.id, rip=r.ip)
                else:
                    log.trace("Removed dead node", b=bi, id=last.id, ip=last.ip)
        finally:
            if done is not None:
                done.put(None)

    def _fetch_newer_record(self, n):
        # Python-only, next to its caller do_revalidate: the node's pongs announced a
        # newer record than we hold; ask for it (geth 1.9's doRevalidate does the same).
        # departure: eip-868: revalidation fetches a node's record when its pongs show a newer seq
        request_enr = getattr(self.net, "request_enr", None)
        have = n.record.seq() if n.record is not None else 0
        if request_enr is None or n.seq <= have:
            return
        rec, err = request_enr(n)
        if err is not None:
            log.debug("ENR request failed", id=n.id, err=err)
            return
        with self.mutex:
            n.record = rec
            n.seq = max(n.seq, rec.seq())

    def update_seq(self, id, seq: int) -> None:
        """Note the record seq a node announced in a pong (EIP-868); the next
        revalidation of the node fetches the newer record."""
        with self.mutex:
            for b in self.buckets:
                for e in b.entries:
                    if e.id == id:
                        if seq > e.seq:
                            e.seq = seq
                        return

    def node_to_revalidate(self):
        """The last node of a random non-empty bucket and the bucket index, or (None, 0)."""
        with self.mutex:
            perm = list(range(len(self.buckets)))
            self.rand.shuffle(perm)
            for bi in perm:
                b = self.buckets[bi]
                if b.entries:
                    return b.entries[-1], bi
        return None, 0

    def next_revalidate_time(self) -> float:
        with self.mutex:
            return self.rand.random() * revalidateInterval

    def copy_live_nodes(self, now=None):
        """Store nodes that have been in the table for seedMinTableTime in the database."""
        if now is None:
            now = time.time()
        with self.mutex:
            for b in self.buckets:
                for n in b.entries:
                    if n.added_at is not None and now - n.added_at >= seedMinTableTime:
                        self.db.update_node(n)

    def closest(self, target: bytes, nresults: int) -> "NodesByDistance":
        """The nresults table nodes closest to target. The caller holds self.mutex."""
        # Scans every entry: simple and obviously right.
        close = NodesByDistance(target)
        for b in self.buckets:
            for n in b.entries:
                close.push(n, nresults)
        return close

    def len(self) -> int:
        return sum(len(b.entries) for b in self.buckets)

    def bucket(self, sha):
        """The bucket for a node ID hash."""
        d = logdist(self.self_node.sha, sha)
        if d <= bucketMinDistance:
            return self.buckets[0]
        return self.buckets[d - bucketMinDistance - 1]

    def add(self, n: Node) -> None:
        """Add n to its bucket if there is room, else to the bucket's replacements.

        The caller must not hold self.mutex.
        """
        if n.id == self.self_node.id:
            # departure: table-add-self: neighbors replies can list us; geth 1.8.16 added itself
            return
        with self.mutex:
            b = self.bucket(n.sha)
            if not self.bump_or_add(b, n):
                self.add_replacement(b, n)

    def add_through_ping(self, n: Node) -> None:
        """Like add, but ignored until the table is initialized, so that pinging us
        repeatedly can't fill the table."""
        if not self.is_init_done():
            return
        self.add(n)

    def stuff(self, nodes: list) -> None:
        """Add nodes to the end of their buckets if those aren't full."""
        with self.mutex:
            for n in nodes:
                if n.id == self.self_node.id:
                    continue  # don't add self
                b = self.bucket(n.sha)
                if len(b.entries) < bucketSize:
                    self.bump_or_add(b, n)

    def delete(self, node: Node) -> None:
        """Remove a (dead) node from the table."""
        with self.mutex:
            self.delete_in_bucket(self.bucket(node.sha), node)

    def add_ip(self, b, ip) -> bool:
        if ip is None or _net.is_lan(ip):
            return True
        if not self.ips.add(ip):
            log.debug("IP exceeds table limit", ip=ip)
            return False
        if not b.ips.add(ip):
            log.debug("IP exceeds bucket limit", ip=ip)
            self.ips.remove(ip)
            return False
        return True

    def remove_ip(self, b, ip):
        if ip is None or _net.is_lan(ip):
            return
        self.ips.remove(ip)
        b.ips.remove(ip)

    def add_replacement(self, b, n):
        for e in b.replacements:
            if e.id == n.id:
                return  # already in the list
        if not self.add_ip(b, n.ip):
            return
        b.replacements, removed = push_node(b.replacements, n, maxReplacements)
        if removed is not None:
            self.remove_ip(b, removed.ip)

    def replace(self, b, last):
        """Swap ``last`` for a random replacement if it is still the bucket's last entry.

        Returns the replacement, or None if last moved (it was replaced already or
        became active) or there was no replacement (then last is deleted).
        """
        if not b.entries or b.entries[-1].id != last.id:
            return None
        if not b.replacements:
            self.delete_in_bucket(b, last)
            return None
        r = b.replacements[self.rand.randrange(len(b.replacements))]
        b.replacements = delete_node(b.replacements, r)
        r.added_at = time.time()  # departure: bump-keeps-entry: a replacement enters with its time (geth 1.9.0)
        b.entries[-1] = r
        self.remove_ip(b, last.ip)
        return r

    def bump_or_add(self, b, n) -> bool:
        """Move n to the front of the bucket, or add it if there is room.

        Returns whether n is in the bucket afterwards.
        """
        if b.bump(n):
            return True
        if len(b.entries) >= bucketSize or not self.add_ip(b, n.ip):
            return False
        b.entries, _ = push_node(b.entries, n, bucketSize)
        b.replacements = delete_node(b.replacements, n)
        n.added_at = time.time()
        if self.node_added_hook is not None:
            self.node_added_hook(n)
        return True

    def delete_in_bucket(self, b, n):
        b.entries = delete_node(b.entries, n)
        self.remove_ip(b, n.ip)


class _Age:
    """Seconds since the node's last pong, computed only if the log line is written."""

    __slots__ = ("db", "id", "ip")

    def __init__(self, db, id, ip):
        self.db, self.id, self.ip = db, id, ip

    def __str__(self):
        return "%.0fs" % (time.time() - self.db.last_pong_received(self.id, self.ip))


def _copy_node(n):
    c = Node(n.ip, n.udp, n.tcp, n.id, n.sha, n.added_at)
    c.seq, c.record = n.seq, n.record
    return c


def push_node(lst, n, max_):
    """Put n at the front of lst, keeping at most max_ items: ``(list, removed)``."""
    removed = None
    lst.insert(0, n)
    if len(lst) > max_:
        removed = lst.pop()
    return lst, removed


def delete_node(lst, n):
    """Remove the entry with n's ID from lst."""
    nid = n.id
    for i, e in enumerate(lst):
        if e.id == nid:
            del lst[i]
            break
    return lst


def contains(ns, id) -> bool:
    return any(n.id == id for n in ns)


# int.from_bytes, bound once: a full table's closest() runs 15% slower without it (interleaved A/B timeit, CPython 3.11)
_from_bytes = int.from_bytes


class NodesByDistance:
    """Nodes ordered by XOR distance of their hash to ``target`` (closest first)."""

    __slots__ = ("entries", "target", "_dists", "_t")

    def __init__(self, target, entries=None):
        self.target = target
        self._t = _from_bytes(target, "big")
        self.entries = []
        self._dists = []  # distances of entries, kept in step, for bisect
        for n in entries or ():
            self.push(n, len(entries))

    def push(self, n, max_elems):
        """Insert n in order, keeping at most max_elems entries."""
        d = self._t ^ _from_bytes(n.sha, "big")
        ix = bisect.bisect_right(self._dists, d)  # first entry strictly farther
        if ix >= max_elems:
            return  # farther than all we keep
        self.entries.insert(ix, n)
        self._dists.insert(ix, d)
        if len(self.entries) > max_elems:
            self.entries.pop()
            self._dists.pop()
