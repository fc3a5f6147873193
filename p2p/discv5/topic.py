"""The topic table of discovery v5 (port of geth's p2p/discv5/topic.go).

A node that serves topic discovery keeps, for each topic, the nodes that have
registered ("advertised") it. The table is bounded: at most ``maxEntriesPerTopic``
entries per topic (the oldest registration of that topic goes first) and
``maxEntries`` in all (an entry of the least recently *requested* topic goes
first). Registrations need a ticket issued by this node (``get_ticket``) whose
wait period has elapsed (``use_ticket``); the wait period of each topic grows
with its registration rate (``WaitControlLoop``), which keeps the rate of
incoming registrations near ``wcTargetRegInterval`` per topic.

Times are ``AbsTime`` (int nanoseconds) from the clock the table was given.
"""

from __future__ import annotations

import math
import random

from p2p.discv5 import mclock
from p2p.log import get_logger

log = get_logger("p2p.discv5")

maxEntries = 10000
maxEntriesPerTopic = 50
# Python-only: at most this many NodeInfos without entries (see TopicTable.get_or_new_node)
maxIdleNodeInfos = maxEntries

fallbackRegistrationExpiry = 1 * mclock.Hour

# Go's `type Topic string`: topics are str here; on the wire they are RLP strings.
Topic = str


class TopicEntry:
    __slots__ = ("topic", "fifo_idx", "node", "expire")

    def __init__(self, topic, fifo_idx, node, expire):
        self.topic = topic
        self.fifo_idx = fifo_idx
        self.node = node
        self.expire = expire


class TopicInfo:
    __slots__ = ("entries", "fifo_head", "fifo_tail", "rq_item", "wcl")

    def __init__(self, rq_item):
        self.entries = {}  # fifo index -> TopicEntry
        self.fifo_head = 0
        self.fifo_tail = 0
        self.rq_item = rq_item
        self.wcl = WaitControlLoop()

    def get_fifo_tail(self) -> TopicEntry:
        """Remove and return the oldest entry of the FIFO (it must not be empty)."""
        while self.entries.get(self.fifo_tail) is None:
            self.fifo_tail += 1
        tail = self.entries[self.fifo_tail]
        self.fifo_tail += 1
        return tail


class NodeInfo:
    __slots__ = ("entries", "last_issued_ticket", "last_used_ticket", "no_reg_until")

    def __init__(self, issued=0, used=0):
        self.entries = {}  # Topic -> TopicEntry
        self.last_issued_ticket = issued
        self.last_used_ticket = used
        # no ticket newer than last_used_ticket is accepted before this AbsTime
        self.no_reg_until = 0


class TopicTable:
    """Registrations held by this node. Not thread-safe: the Network loop owns it.

    ``nodes`` is keyed by the node object, as geth keys it by ``*Node``: the
    Network interns one object per node ID. ``idle`` lists, oldest first, the
    nodes whose NodeInfo holds no entry (only ticket counters and a
    no-registration deadline); at most ``maxIdleNodeInfos`` of them are kept.
    """

    def __init__(self, db, self_node, clock=None):
        self.db = db
        self.self = self_node
        self.clock = clock if clock is not None else mclock.System
        self.nodes = {}  # node -> NodeInfo
        self.idle = {}  # node -> None: the nodes of NodeInfos without entries, oldest first
        self.topics = {}  # Topic -> TopicInfo
        self.global_entries = 0
        self.requested = TopicRequestQueue()
        self.request_cnt = 0
        self.last_garbage_collection = 0

    def get_or_new_topic(self, topic) -> TopicInfo:
        ti = self.topics.get(topic)
        if ti is None:
            rq_item = TopicRequestQueueItem(topic, self.request_cnt)
            ti = TopicInfo(rq_item)
            self.topics[topic] = ti
            _heap_push(self.requested, rq_item)
        elif ti.rq_item.index < 0:
            _heap_push(self.requested, ti.rq_item)  # back from least_requested's parking
        return ti

    def check_delete_topic(self, topic) -> None:
        ti = self.topics.get(topic)
        if ti is None:
            return
        if len(ti.entries) == 0 and ti.wcl.has_minimum_wait_period(self.clock.now()):
            del self.topics[topic]
            if ti.rq_item.index >= 0:
                _heap_remove(self.requested, ti.rq_item.index)

    def get_or_new_node(self, node) -> NodeInfo:
        n = self.nodes.get(node)
        if n is None:
            issued = used = 0
            if self.db is not None:
                issued, used = self.db.fetch_topic_reg_tickets(node.id)
            n = NodeInfo(issued, used)
            self.nodes[node] = n
            self.idle[node] = None
            # departure: discv5-topic-idle-nodeinfos: beyond maxIdleNodeInfos NodeInfos without entries, the oldest is dropped before its no-registration timeout
            while len(self.idle) > maxIdleNodeInfos:
                oldest = next(iter(self.idle))
                del self.idle[oldest]
                del self.nodes[oldest]
        return n

    def check_delete_node(self, node) -> None:
        n = self.nodes.get(node)
        if n is not None and len(n.entries) == 0 and n.no_reg_until < self.clock.now():
            del self.nodes[node]
            self.idle.pop(node, None)

    def store_ticket_counters(self, node) -> None:
        n = self.get_or_new_node(node)
        if self.db is not None:
            self.db.update_topic_reg_tickets(node.id, n.last_issued_ticket, n.last_used_ticket)

    def get_entries(self, topic) -> list:
        self.collect_garbage()

        te = self.topics.get(topic)
        if te is None:
            return []
        nodes = [e.node for e in te.entries.values()]
        self.request_cnt += 1
        if te.rq_item.index >= 0:
            self.requested.update(te.rq_item, self.request_cnt)
        else:
            te.rq_item.priority = self.request_cnt
        return nodes

    def add_entry(self, node, topic) -> None:
        n = self.get_or_new_node(node)
        # A node holds one registration per topic; a new one replaces the old ones.
        for e in list(n.entries.values()):
            self.delete_entry(e)
        # deleting may have dropped the NodeInfo: fetch it again
        n = self.get_or_new_node(node)

        tm = self.clock.now()
        te = self.get_or_new_topic(topic)

        if len(te.entries) == maxEntriesPerTopic:
            self.delete_entry(te.get_fifo_tail())

        if self.global_entries == maxEntries:
            self.delete_entry(self.least_requested())  # the table is full, so not None

        fifo_idx = te.fifo_head
        te.fifo_head += 1
        entry = TopicEntry(topic, fifo_idx, node, tm + fallbackRegistrationExpiry)
        te.entries[fifo_idx] = entry
        n.entries[topic] = entry
        self.idle.pop(node, None)
        self.global_entries += 1
        te.wcl.registered(tm)

    def least_requested(self):
        """Remove and return the oldest entry of the least requested topic."""
        while self.requested.len() > 0:
            ti = self.topics.get(self.requested[0].topic)
            if ti is None:
                _heap_pop(self.requested)
                continue
            if not ti.entries:
                # departure: discv5-topic-empty-fifo: an emptied topic that is kept (its wait period is above the minimum) leaves the request queue until it has an entry again; geth 1.8.16 picks it and loops forever in getFifoTail
                _heap_pop(self.requested)
                continue
            return ti.get_fifo_tail()
        return None

    def delete_entry(self, e: TopicEntry) -> None:
        """Remove ``e``, which must be in the table."""
        ne = self.nodes[e.node].entries
        del ne[e.topic]
        if len(ne) == 0:
            self.check_delete_node(e.node)
            if e.node in self.nodes:
                self.idle[e.node] = None  # kept for its no-registration timeout: idle from now
        te = self.topics[e.topic]
        del te.entries[e.fifo_idx]
        if len(te.entries) == 0:
            self.check_delete_topic(e.topic)
        self.global_entries -= 1

    def use_ticket(self, node, serial_no, topics, idx, issue_time, wait_periods) -> bool:
        """Register ``topics[idx]`` for ``node`` if its ticket is valid now.

        ``topics`` and ``wait_periods`` have the same length and ``idx`` is in
        range (checked by the caller, Network.check_topic_register).
        """
        log.trace("Using discovery ticket", serial=serial_no, topics=topics, waits=wait_periods)
        self.collect_garbage()

        n = self.get_or_new_node(node)
        if serial_no < n.last_used_ticket:
            return False

        tm = self.clock.now()
        if serial_no > n.last_used_ticket and tm < n.no_reg_until:
            return False
        if serial_no != n.last_used_ticket:
            n.last_used_ticket = serial_no
            n.no_reg_until = tm + no_reg_timeout()

        curr_time = tm // mclock.Second
        reg_time = issue_time + wait_periods[idx]
        rel_time = curr_time - reg_time
        # a second of margin at both ends of the window
        if -1 <= rel_time <= regTimeWindow + 1:
            # departure: discv5-ticket-counters-on-registration: the counters go to the database when a registration is accepted, not for every ticket issued or used
            self.store_ticket_counters(node)
            e = n.entries.get(topics[idx])
            if e is None:
                self.add_entry(node, topics[idx])
            else:
                # an active entry keeps its FIFO place; only its expiry moves
                e.expire = tm + fallbackRegistrationExpiry
            return True

        return False

    def get_ticket(self, node, topics):
        from p2p.discv5.ticket import Ticket  # ticket.py imports this module

        self.collect_garbage()

        now = self.clock.now()
        n = self.get_or_new_node(node)
        n.last_issued_ticket = (n.last_issued_ticket + 1) & 0xFFFFFFFF  # uint32
        # (geth stores the counters here: see use_ticket)

        tic = Ticket(topics=list(topics), reg_time=[0] * len(topics),
                     serial=n.last_issued_ticket, issue_time=now)
        for i, topic in enumerate(topics):
            ti = self.topics.get(topic)
            if ti is not None:
                wait_period = ti.wcl.wait_period
            else:
                wait_period = minWaitPeriod
            tic.reg_time[i] = now + wait_period
        return tic

    def collect_garbage(self) -> None:
        tm = self.clock.now()
        if tm - self.last_garbage_collection < gcInterval:
            return
        self.last_garbage_collection = tm

        for node, n in list(self.nodes.items()):
            for e in list(n.entries.values()):
                if e.expire <= tm:
                    self.delete_entry(e)
            self.check_delete_node(node)

        for topic in list(self.topics):
            self.check_delete_topic(topic)


gcInterval = mclock.Minute

minWaitPeriod = mclock.Minute
regTimeWindow = 10  # seconds
avgnoRegTimeout = mclock.Minute * 10
# the intended mean interval between two registrations of one topic
wcTargetRegInterval = mclock.Minute * 10 // maxEntriesPerTopic
wcTimeConst = mclock.Minute * 10


class WaitControlLoop:
    """Per-topic wait period: it starts at ``minWaitPeriod`` with the first registration."""

    __slots__ = ("last_incoming", "wait_period")

    def __init__(self):
        self.last_incoming = 0
        self.wait_period = 0

    def registered(self, tm: int) -> None:
        self.wait_period = self.next_wait_period(tm)
        self.last_incoming = tm

    def next_wait_period(self, tm: int) -> int:
        period = tm - self.last_incoming
        wp = int(self.wait_period * math.exp((wcTargetRegInterval - period) / wcTimeConst))
        if wp < minWaitPeriod:
            wp = minWaitPeriod
        return wp

    def has_minimum_wait_period(self, now: int) -> bool:
        # geth reads mclock.Now() here; the table passes its own clock's time
        return self.next_wait_period(now) == minWaitPeriod


def no_reg_timeout() -> int:
    e = random.expovariate(1.0)
    if e > 100:
        e = 100
    return int(avgnoRegTimeout * e)


class TopicRequestQueueItem:
    __slots__ = ("topic", "priority", "index")

    def __init__(self, topic, priority, index=0):
        self.topic = topic
        self.priority = priority
        self.index = index


class TopicRequestQueue(list):
    """A min-heap of TopicRequestQueueItem by priority (Go's heap.Interface)."""

    def len(self) -> int:
        return len(self)

    def less(self, i: int, j: int) -> bool:
        return self[i].priority < self[j].priority

    def swap(self, i: int, j: int) -> None:
        self[i], self[j] = self[j], self[i]
        self[i].index = i
        self[j].index = j

    def push(self, item) -> None:
        item.index = len(self)
        self.append(item)

    def pop(self):  # type: ignore[override]  # heap.Interface's Pop: the last item
        item = list.pop(self)
        item.index = -1
        return item

    def update(self, item, priority: int) -> None:
        item.priority = priority
        _heap_fix(self, item.index)


# Go's container/heap over the interface above (heapq cannot track indices).

def _heap_up(h, j):
    while True:
        i = (j - 1) // 2
        if j <= 0 or i == j or not h.less(j, i):
            break
        h.swap(i, j)
        j = i


def _heap_down(h, i0, n):
    i = i0
    while True:
        j1 = 2 * i + 1
        if j1 >= n or j1 < 0:
            break
        j = j1
        j2 = j1 + 1
        if j2 < n and h.less(j2, j1):
            j = j2
        if not h.less(j, i):
            break
        h.swap(i, j)
        i = j
    return i > i0


def _heap_push(h, x):
    h.push(x)
    _heap_up(h, h.len() - 1)


def _heap_pop(h):
    n = h.len() - 1
    h.swap(0, n)
    _heap_down(h, 0, n)
    return h.pop()


def _heap_remove(h, i):
    n = h.len() - 1
    if n != i:
        h.swap(i, n)
        if not _heap_down(h, i, n):
            _heap_up(h, i)
    return h.pop()


def _heap_fix(h, i):
    if not _heap_down(h, i, h.len()):
        _heap_up(h, i)
