"""The discovery v5 network: state machine, loop, lookups (port of geth's p2p/discv5/net.go).

:class:`Network` owns the node table, the topic table and the ticket store. One
thread, ``discv5.Network.loop``, runs geth's ``loop``: every packet, every timeout
and every request from other threads arrives in its one mailbox, and the loop
alone touches the table and the per-node state (the ``nodeNetGuts`` fields of
:class:`~p2p.discv5.node.Node`). Go's timers and tickers of that select are
deadlines the loop computes; its goroutines (lookups) are threads started
through the clock and ended before :meth:`Network.close` returns.

Every node the network talks to moves through the states of geth's state
machine: ``unknown``, ``verifyinit``, ``verifywait``, ``remoteverifywait``,
``known``, ``contested`` and ``unresponsive``. Only nodes in a state with
``can_query`` get findnode and topic queries. ``Network.nodes`` holds one object
per node ID; unlike geth's, it forgets nodes nothing refers to (unknown ones at
once, idle known and unresponsive ones outside the table in a sweep: see
``forget_if_unused``), so that fresh identities cannot grow it without bound.

Seams kept from geth: the network talks to the wire only through its
*transport* (``send_ping``, ``send_neighbours``, ``send_findnode_hash``,
``send_topic_register``, ``send_topic_nodes``, ``send``, ``local_addr``,
``close``), which :mod:`p2p.discv5.udp` implements and tests fake; and it takes
its clock (:mod:`p2p.discv5.mclock`), so the simulation tests run it on
virtual time.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from typing import Any

from p2p import crypto, rlpcodec
from p2p.discv5 import mclock
from p2p.log import TRACE, get_logger
from p2p.discv5.nodeevent_string import (
    findnodeHashPacket, findnodePacket, neighborsPacket, neighboursTimeout, pingPacket, pingTimeout,
    pongPacket, pongTimeout, topicNodesPacket, topicQueryPacket, topicRegisterPacket,
)
from p2p.discv5.node import logdist, new_node, pubkey_id
from p2p.discv5.table import alpha, bucketSize, maxFindnodeFailures, new_table, NodesByDistance
from p2p.discv5.ticket import TicketStore, pong_to_ticket, ticket_to_pong
from p2p.discv5.topic import TopicTable

log = get_logger("p2p.discv5")
_stdlog = logging.getLogger("p2p.discv5")  # for tracebacks (log.exception)

errInvalidEvent = ValueError("invalid in current state")
errNoQuery = ValueError("no pending query")

autoRefreshInterval = 1 * mclock.Hour
bucketRefreshInterval = 1 * mclock.Minute
seedCount = 30
seedMaxAge = 5 * 24 * mclock.Hour
lowPort = 1024

testTopic = "foo"

printTestImgLogs = False

maxSearchCount = 5

_statsDumpInterval = 10 * mclock.Second  # geth's statsDump ticker
maxNodesBeforeSweep = 4096  # Python-only: see Network.sweep_unused_nodes


def _udp():
    # udp.py imports this module (ListenUDP builds a Network): import it late.
    from p2p.discv5 import udp
    return udp


def _ns(d) -> int:
    """A duration from udp.py (respTimeout, expiration) in nanoseconds."""
    return d if isinstance(d, int) else int(d * mclock.Second)


class FindnodeQuery:
    __slots__ = ("remote", "target", "reply", "nresults")

    def __init__(self, remote, target, reply):
        self.remote = remote
        self.target = target
        self.reply = reply  # a clock queue: the list of nodes, or None for "no answer"
        self.nresults = 0

    def start(self, net) -> bool:
        """Send the query now if the remote can take it; False if it has to wait."""
        # queries against the local node are answered from the table
        if self.remote is net.tab.self:
            closest = net.tab.closest(crypto.keccak256(self.target), bucketSize)
            self.reply.put(closest.entries)
            return True
        if self.remote.state.can_query and self.remote.pending_neighbours is None:
            net.conn.send_findnode_hash(self.remote, self.target)
            net.timed_event(_ns(_udp().respTimeout), self.remote, neighboursTimeout)
            self.remote.pending_neighbours = self
            return True
        # an unknown node takes no queries: verify it first; the query is sent
        # when it reaches known
        if self.remote.state is unknown:
            net.transition(self.remote, verifyinit)
        return False


class TopicRegisterReq:
    __slots__ = ("add", "topic")

    def __init__(self, add, topic):
        self.add = add
        self.topic = topic


class TopicSearchReq:
    __slots__ = ("topic", "found", "lookup", "delay")

    def __init__(self, topic, found, lookup, delay):
        self.topic = topic
        self.found = found
        self.lookup = lookup
        self.delay = delay


class TopicSearchResult:
    __slots__ = ("target", "nodes")

    def __init__(self, target, nodes):
        self.target = target
        self.nodes = nodes


class TopicSearchInfo:
    __slots__ = ("lookup_chn", "period")

    def __init__(self, lookup_chn=None, period=0):
        self.lookup_chn = lookup_chn
        self.period = period


def new_network(conn, our_pubkey, db_path, netrestrict, clock=None) -> "Network":
    """A Network on transport ``conn``; ``db_path`` "<no database>" for none, "" for a temporary one.

    ``clock`` (Python-only) is :data:`mclock.System` unless a test passes a
    :class:`mclock.Simulated`.
    """
    return Network(conn, our_pubkey, db_path, netrestrict, clock)


class Network:
    """The table, the topic machinery and the protocol loop of one v5 node."""

    def __init__(self, conn, our_pubkey, db_path, netrestrict, clock=None):
        self.clock = clock if clock is not None else mclock.System
        our_id = pubkey_id(our_pubkey)

        db = None
        if db_path != "<no database>":
            from p2p.discv5.database import new_node_db
            from p2p.discv5.udp import Version
            db = new_node_db(db_path, Version, our_id)

        tab = new_table(our_id, conn.local_addr())
        self.db = db
        self.conn = conn
        self.netrestrict = netrestrict
        self.tab = tab
        self.topictab = TopicTable(db, tab.self, self.clock)
        self.ticket_store = TicketStore(self.clock)
        self.nursery = []
        self.nodes = {}  # NodeID -> Node: every node we have talked to, one object per ID
        self._sweep_at = maxNodesBeforeSweep  # see sweep_unused_nodes
        # (ev, node) -> token of the pending timeout; the deadlines are in _timeout_heap
        self.timeout_timers = {}
        self._timeout_heap = []
        self._seq = itertools.count()
        # Go keeps these two queues but never fills them
        self.slow_revalidate_queue = []
        self.fast_revalidate_queue = []
        self.send_buf = []

        # net.closed, and the one mailbox of the loop (Go's closeReq, refreshReq,
        # read, timeout, queryReq, tableOpReq, topicRegisterReq, topicSearchReq, ...)
        self.closed = self.clock.event()
        self._mailbox = self.clock.queue()
        self._req_lock = threading.Lock()
        self._closing = False
        self._threads_lock = threading.Lock()
        self._threads = []  # (thread, done event) of the goroutines the loop started
        self.clock.go(self.loop, "discv5.Network.loop")

    def close(self) -> None:
        """Stop the loop, close the transport and the database; wait for the loop's threads."""
        self.conn.close()
        if not self.closed.is_set():
            self._req("closeReq", None)
            self.closed.wait()
        with self._threads_lock:
            threads = list(self._threads)
        for t, done in threads:
            done.wait()
            if t is not threading.current_thread() and isinstance(self.clock, mclock.SystemClock):
                t.join()

    def self_node(self):
        """The local node (Go's Self; ``self`` is Python's own name)."""
        return self.tab.self

    def read_random_nodes(self, buf: list) -> int:
        """Fill ``buf`` (a list of slots) with random distinct nodes of the table."""
        res = [0]

        def op():
            res[0] = self.tab.read_random_nodes(buf)
        self.req_table_op(op)
        return res[0]

    def set_fallback_nodes(self, nodes) -> None:
        """The nodes to contact when the table and the database are empty (bootnodes)."""
        nursery = []
        for n in nodes:
            try:
                n.validate_complete()
            except Exception as e:
                raise ValueError("bad bootstrap/fallback node %r (%s)" % (str(n), e)) from None
            # a fresh copy, with sha recomputed (n may not come from new_node/parse_node)
            cpy = new_node(n.id, n.ip, n.udp, n.tcp)
            nursery.append(cpy)
        self.req_refresh(nursery)

    def resolve(self, target_id):
        """Search the network for the node with this ID; None if not found."""
        result = self._lookup(crypto.keccak256(target_id), True)
        for n in result:
            if n.id == target_id:
                return n
        return None

    def lookup(self, target_id) -> list:
        """Iterative Kademlia lookup of the nodes closest to ``target_id`` (may include us)."""
        return self._lookup(crypto.keccak256(target_id), False)

    def _lookup(self, target: bytes, stop_on_match: bool) -> list:
        asked = set()
        seen = set()
        reply = self.clock.queue()
        result = NodesByDistance(target=target)
        pending_queries = 0
        resp_timeout = _ns(_udp().respTimeout) / mclock.Second
        # start with what the local node knows
        result.push(self.tab.self, bucketSize)
        while True:
            # ask the alpha closest nodes not asked yet
            i = 0
            while i < len(result.entries) and pending_queries < alpha:
                n = result.entries[i]
                if n.id not in asked:
                    asked.add(n.id)
                    pending_queries += 1
                    self.req_query_findnode(n, target, reply)
                i += 1
            if pending_queries == 0:
                # every close node has answered or failed
                break
            # departure: discv5-lookup-stops-at-close: a lookup ends when the network has closed; geth's keeps asking (and timing out) until it runs out of nodes
            if self.closed.is_set():
                break
            try:
                nodes = reply.get(timeout=resp_timeout)
            except queue.Empty:
                # forget the pending queries and ask the next ones
                pending_queries = 0
                reply = self.clock.queue()
                continue
            for n in nodes or ():
                if n is not None and n.id not in seen:
                    seen.add(n.id)
                    result.push(n, bucketSize)
                    if stop_on_match and n.sha == target:
                        return result.entries
            pending_queries -= 1
        return result.entries

    def register_topic(self, topic, stop) -> None:
        """Advertise ``topic`` until ``stop`` is set or the network closes (blocks meanwhile).

        ``stop`` is an event of this network's clock (``net.clock.event()``).
        """
        if not self._req("topicRegisterReq", TopicRegisterReq(True, topic)):
            return
        wake = self.clock.queue()
        self.closed_on_set(lambda: wake.put("closed"))
        stop.on_set(lambda: wake.put("stop"))
        if wake.get() == "stop" and not self.closed.is_set():
            self._req("topicRegisterReq", TopicRegisterReq(False, topic))

    def search_topic(self, topic, set_period, found, lookup) -> None:
        """Search ``topic`` with the periods (ns) read from ``set_period`` until it yields None.

        Blocks until then or until the network closes. Nodes found go to
        ``found`` (put_nowait: a full bounded queue drops them, as geth's
        non-blocking send does); ``lookup`` (or None) gets, after each search
        lookup, whether the topic radius has converged. A period of 0 stops the
        search; None (Go: the channel closed) sends the last request and
        returns. ``set_period`` is a queue of this network's clock.
        """
        self.closed_on_set(lambda: set_period.put(_CLOSED))
        while True:
            delay = set_period.get()
            if delay is _CLOSED or self.closed.is_set():
                return
            ok = delay is not None
            req = TopicSearchReq(topic, found, lookup, delay if ok else 0)
            if not self._req("topicSearchReq", req):
                return
            if not ok:
                return

    def req_refresh(self, nursery):
        """Ask the loop to refresh (with a new nursery, or None); returns the refresh's done event."""
        resp = self.clock.queue()
        if not self._req("refreshReq", (nursery, resp)):
            return self.closed
        return resp.get()

    def req_query_findnode(self, n, target: bytes, reply) -> bool:
        q = FindnodeQuery(n, target, reply)
        return self._req("queryReq", q)

    def req_read_packet(self, pkt) -> None:
        """Hand an ingress packet to the loop (the transport calls this)."""
        self._req("read", pkt)

    def req_table_op(self, f) -> bool:
        """Run ``f()`` on the loop thread; False if the network is closed."""
        resp = self.clock.queue()
        if not self._req("tableOpReq", (f, resp)):
            return False
        return resp.get()

    def _req(self, kind, value) -> bool:
        """Post to the loop's mailbox unless it has stopped (Go: select with <-net.closed)."""
        with self._req_lock:
            if self._closing:
                return False
            self._mailbox.put((kind, value))
            return True

    def closed_on_set(self, fn) -> None:
        """Call ``fn()`` when the network has closed (now if it has)."""
        self.closed.on_set(fn)

    def _go(self, fn, name, *args) -> None:
        """Start one of the loop's goroutines; close() waits for it."""
        done = self.clock.event()

        def run():
            try:
                fn(*args)
            except Exception:
                _stdlog.exception("discv5 %s failed", name)
            finally:
                done.set()

        t = self.clock.go(run, name)
        with self._threads_lock:
            self._threads = [(th, d) for th, d in self._threads if not d.is_set()]
            self._threads.append((t, done))

    def loop(self) -> None:
        clock = self.clock
        now = clock.now()
        refresh_timer = now + autoRefreshInterval
        bucket_refresh_timer = now + bucketRefreshInterval  # None while its lookup runs
        refresh_done = None  # event set when the 'refresh' lookup has ended
        refresh_done_at = None  # (AbsTime, event): geth's time.AfterFunc(10s, close(done))

        # the next ticket to register
        st: dict[str, Any] = {"next_ticket": None, "next_register_time": None}

        def reset_next_ticket():
            ticket, timeout = self.ticket_store.next_filtered_ticket()
            if st["next_ticket"] != ticket:
                st["next_ticket"] = ticket
                st["next_register_time"] = None
                if ticket is not None:
                    st["next_register_time"] = clock.now() + timeout

        # registration and search lookups
        from p2p.discv5.ticket import LookupInfo
        topic_register_lookup_target = LookupInfo()
        topic_register_lookup_done = None  # generation of the running registration lookup
        register_gen = itertools.count(1)
        topic_register_lookup_tick = None  # deadline; Go drains the timer's first tick
        search_req_when_refresh_done = []
        search_info = {}
        active_search_count = 0
        topic_search_later = []  # heap of (AbsTime, seq, topic): Go's sleeping goroutines
        stats_dump = now + _statsDumpInterval

        def due(deadline, t):
            return deadline is not None and deadline <= t

        try:
            while True:
                reset_next_ticket()

                # the timers of the select: handle one that is due, else wait for
                # the mailbox until the nearest one
                t = clock.now()
                kind = value = None
                if self._timeout_heap and self._timeout_heap[0][0] <= t:
                    _, token, key = heapq.heappop(self._timeout_heap)
                    kind, value = "timeout", (key, token)
                elif due(st["next_register_time"], t):
                    kind = "nextRegisterTime"
                elif due(topic_register_lookup_tick, t):
                    kind = "topicRegisterLookupTick"
                elif topic_search_later and topic_search_later[0][0] <= t:
                    kind, value = "topicSearch", heapq.heappop(topic_search_later)[2]
                elif due(refresh_done_at and refresh_done_at[0], t):
                    refresh_done_at[1].set()
                    kind, value = "refreshDone", refresh_done_at[1]
                    refresh_done_at = None
                elif due(stats_dump, t):
                    kind = "statsDump"
                elif due(refresh_timer, t):
                    kind = "refreshTimer"
                elif due(bucket_refresh_timer, t):
                    kind = "bucketRefreshTimer"
                else:
                    deadlines = [d for d in (
                        self._timeout_heap[0][0] if self._timeout_heap else None,
                        st["next_register_time"], topic_register_lookup_tick,
                        topic_search_later[0][0] if topic_search_later else None,
                        refresh_done_at[0] if refresh_done_at else None,
                        stats_dump, refresh_timer, bucket_refresh_timer) if d is not None]
                    wait = max(0, min(deadlines) - t) / mclock.Second if deadlines else None
                    try:
                        kind, value = self._mailbox.get(timeout=wait)
                    except queue.Empty:
                        continue

                try:
                    if kind == "closeReq":
                        log.trace("<-net.closeReq")
                        break

                    # ingress packets
                    elif kind == "read":
                        pkt = value
                        n = self.intern_node(pkt)
                        prestate = n.state
                        status = "ok"
                        try:
                            self.handle(n, pkt.ev, pkt)
                        except _HandleError as e:
                            status = str(e)
                        self.forget_if_unused(n)
                        self.sweep_unused_nodes()
                        if log.is_enabled_for(TRACE):
                            log.trace("<<< (%d) %s from %s@%s: %s -> %s (%s)" % (
                                self.tab.count, pkt.ev, pkt.remote_id[:8].hex(), _addr(pkt.remote_addr),
                                prestate, n.state, status))

                    # state transition timeouts
                    elif kind == "timeout":
                        key, token = value
                        if self.timeout_timers.get(key) != token:
                            continue  # aborted or replaced
                        del self.timeout_timers[key]
                        ev, node = key
                        prestate = node.state
                        status = "ok"
                        try:
                            self.handle(node, ev, None)
                        except _HandleError as e:
                            status = str(e)
                        self.forget_if_unused(node)
                        if log.is_enabled_for(TRACE):
                            log.trace("--- (%d) %s for %s@%s: %s -> %s (%s)" % (
                                self.tab.count, ev, node.id[:8].hex(), _addr(node.addr()), prestate,
                                node.state, status))

                    # querying
                    elif kind == "queryReq":
                        q = value
                        # the lookup may hold a node that was forgotten meanwhile: the
                        # query goes to the one node object of that ID
                        q.remote = self.nodes.setdefault(q.remote.id, q.remote) \
                            if q.remote is not self.tab.self else q.remote
                        if not q.start(self):
                            NodeNetGuts.defer_query(q.remote, q)

                    # table operations of other threads
                    elif kind == "tableOpReq":
                        f, resp = value
                        try:
                            f()
                        finally:
                            resp.put(True)

                    # topic registration
                    elif kind == "topicRegisterReq":
                        req = value
                        if not req.add:
                            self.ticket_store.remove_register_topic(req.topic)
                            continue
                        self.ticket_store.add_topic(req.topic, True)
                        # idle (nothing to look up)? let the store start the new topic sooner:
                        # the radius of a new topic converges faster
                        if topic_register_lookup_target.target == bytes(32):
                            target, delay = self.ticket_store.next_register_lookup()
                            topic_register_lookup_target = target
                            topic_register_lookup_tick = clock.now() + delay

                    elif kind == "topicRegisterLookupDone":
                        gen, nodes = value
                        if gen != topic_register_lookup_done:
                            continue  # Go's abandoned channel: nobody reads it
                        self.ticket_store.register_lookup_done(
                            topic_register_lookup_target, nodes, self._ping_for_ticket)
                        target, delay = self.ticket_store.next_register_lookup()
                        topic_register_lookup_target = target
                        topic_register_lookup_tick = clock.now() + delay
                        topic_register_lookup_done = None

                    elif kind == "topicRegisterLookupTick":
                        topic_register_lookup_tick = None
                        if topic_register_lookup_target.target == bytes(32):
                            target, delay = self.ticket_store.next_register_lookup()
                            topic_register_lookup_target = target
                            topic_register_lookup_tick = clock.now() + delay
                            topic_register_lookup_done = None
                        else:
                            gen = next(register_gen)
                            topic_register_lookup_done = gen
                            self._go(self._register_lookup, "discv5.Network.loop.registerLookup",
                                     gen, topic_register_lookup_target.target)

                    elif kind == "nextRegisterTime":
                        next_ticket = st["next_ticket"]
                        st["next_register_time"] = None
                        self.ticket_store.ticket_registered(next_ticket)
                        self.conn.send_topic_register(next_ticket.t.node, next_ticket.t.topics,
                                                      next_ticket.idx, next_ticket.t.pong)

                    elif kind == "topicSearchReq":
                        req = value
                        if refresh_done is None:
                            info = search_info.get(req.topic)
                            if info is not None:
                                if req.delay == 0:
                                    del search_info[req.topic]
                                    self.ticket_store.remove_search_topic(req.topic)
                                else:
                                    info.period = req.delay
                                continue
                            if req.delay != 0:
                                search_info[req.topic] = TopicSearchInfo(req.lookup, req.delay)
                                self.ticket_store.add_search_topic(req.topic, req.found)
                                self._mailbox.put(("topicSearch", req.topic))
                        else:
                            search_req_when_refresh_done.append(req)

                    elif kind == "topicSearch":
                        topic = value
                        if active_search_count < maxSearchCount:
                            active_search_count += 1
                            target = self.ticket_store.next_search_lookup(topic)
                            self._go(self._search_lookup, "discv5.Network.loop.searchLookup", target)
                        info = search_info.get(topic)
                        period = info.period if info is not None else 0
                        if period != 0:
                            heapq.heappush(topic_search_later, (clock.now() + period, next(self._seq), topic))

                    elif kind == "topicSearchLookupDone":
                        res = value
                        active_search_count -= 1
                        info = search_info.get(res.target.topic)
                        if info is not None and info.lookup_chn is not None:
                            info.lookup_chn.put(self.ticket_store.radius[res.target.topic].converged)
                        self.ticket_store.search_lookup_done(res.target, res.nodes, self._query_topic)

                    elif kind == "statsDump":
                        stats_dump = clock.now() + _statsDumpInterval
                        tm = clock.now()
                        for topic, r in self.ticket_store.radius.items():
                            if printTestImgLogs:
                                rad = r.radius // (0xFFFFFFFFFFFFFFFF // 1000000 + 1)
                                minrad = r.min_radius // (0xFFFFFFFFFFFFFFFF // 1000000 + 1)
                                print("*R %d %s %s %d" % (tm // 1000000, topic, self.tab.self.sha[:8].hex(), rad))
                                print("*MR %d %s %s %d" % (tm // 1000000, topic, self.tab.self.sha[:8].hex(), minrad))
                        for topic, ti in self.topictab.topics.items():
                            wp = ti.wcl.next_wait_period(tm)
                            if printTestImgLogs:
                                print("*W %d %s %s %d" % (tm // 1000000, topic, self.tab.self.sha[:8].hex(), wp // 1000000))

                    # periodic and lookup-initiated refresh
                    elif kind == "refreshTimer":
                        refresh_timer = clock.now() + autoRefreshInterval
                        if refresh_done is None:
                            refresh_done = clock.event()
                            refresh_done_at = self.refresh(refresh_done)
                    elif kind == "bucketRefreshTimer":
                        bucket_refresh_timer = None
                        target = self.tab.choose_bucket_refresh_target()
                        self._go(self._bucket_refresh, "discv5.Network.loop.bucketRefresh", target)
                    elif kind == "bucketRefreshDone":
                        bucket_refresh_timer = clock.now() + bucketRefreshInterval
                    elif kind == "refreshReq":
                        new_nursery, resp = value
                        if new_nursery is not None:
                            self.nursery = new_nursery
                        if refresh_done is None:
                            refresh_done = clock.event()
                            refresh_done_at = self.refresh(refresh_done)
                        resp.put(refresh_done)
                    elif kind == "refreshDone":
                        if value is not refresh_done:
                            continue
                        log.trace("<-net.refreshDone", table_size=self.tab.count)
                        if self.tab.count != 0:
                            refresh_done = None
                            lst = search_req_when_refresh_done
                            search_req_when_refresh_done = []
                            for req in lst:
                                self._mailbox.put(("topicSearchReq", req))
                        else:
                            refresh_done = clock.event()
                            refresh_done_at = self.refresh(refresh_done)
                    else:
                        log.error("discv5 loop: unknown mailbox message", kind=kind)
                except Exception:
                    # one bad packet or event must not end the loop
                    _stdlog.exception("discv5 loop: error handling %s", kind)
        finally:
            log.trace("loop stopped")
            log.debug("shutting down")
            if self.conn is not None:
                self.conn.close()
            # pending timeouts are deadlines of this loop: they end with it
            self.timeout_timers.clear()
            self._timeout_heap = []
            if self.db is not None:
                self.db.close()
            self._stop_mailbox()
            self.closed.set()

    def _stop_mailbox(self) -> None:
        """Python-only: refuse further requests and answer the ones still queued."""
        with self._req_lock:
            self._closing = True
        while True:
            try:
                kind, value = self._mailbox.get_nowait()
            except queue.Empty:
                return
            if kind == "tableOpReq":
                value[1].put(False)
            elif kind == "refreshReq":
                value[1].put(self.closed)

    # The loop's goroutines.

    def _register_lookup(self, gen, target) -> None:
        """go func() { topicRegisterLookupDone <- net.lookup(target, false) }()"""
        nodes = self._lookup(target, False)
        self._req("topicRegisterLookupDone", (gen, nodes))

    def _search_lookup(self, target) -> None:
        nodes = self._lookup(target.target, False)
        self._req("topicSearchLookupDone", TopicSearchResult(target, nodes))

    def _bucket_refresh(self, target) -> None:
        self._lookup(target, False)
        self._req("bucketRefreshDone", None)

    def _self_lookup(self, done) -> None:
        self.lookup(self.tab.self.id)
        done.set()
        self._req("refreshDone", done)

    def _ping_for_ticket(self, n):
        """registerLookupDone's ping callback: ping ``n``; the ping's hash (or None)."""
        self.ping(n, n.addr())
        return n.ping_echo

    def _query_topic(self, n, topic):
        """searchLookupDone's query callback: a topic query to ``n`` if it can take one."""
        if n.state is not None and n.state.can_query:
            return self.conn.send(n, topicQueryPacket, _udp().TopicQuery(topic=topic, expiration=0))
        if n.state is unknown:
            self.ping(n, n.addr())
        return None

    # Everything below runs on the loop thread and may change nodes, the table
    # and the network without locks.

    def refresh(self, done):
        """Seed the table and start a self lookup; returns the fallback deadline, if any."""
        seeds = []
        if self.db is not None:
            seeds = self.db.query_seeds(seedCount, seedMaxAge / mclock.Second)
        if len(seeds) == 0:
            seeds = self.nursery
        if len(seeds) == 0:
            log.trace("no seed nodes found")
            return (self.clock.now() + 10 * mclock.Second, done)
        for n in seeds:
            log.debug("seed node", node=n)
            n = self.intern_node_from_db(n)
            if n.state is unknown:
                self.transition(n, verifyinit)
            # into the table now, so that the lookup has somewhere to start;
            # it leaves again if verification fails
            self.tab.add(n)
        # a self lookup fills the buckets
        self._go(self._self_lookup, "discv5.Network.refresh", done)
        return None

    # Node interning.

    def intern_node(self, pkt):
        host, port = pkt.remote_addr[0], pkt.remote_addr[1]
        n = self.nodes.get(pkt.remote_id)
        if n is not None:
            n.set_addr(pkt.remote_addr)
            n.tcp = port
            return n
        n = new_node(pkt.remote_id, host, port, port)
        n.state = unknown
        self.nodes[pkt.remote_id] = n
        return n

    # departure: discv5-forget-nodes: a node back in unknown that nothing refers to leaves Network.nodes; a sweep also drops idle known and unresponsive nodes outside the table
    def forget_if_unused(self, n, states=None) -> bool:
        """Drop ``n`` from ``self.nodes`` if it is in one of ``states`` and nothing refers to it.

        Python-only, next to intern_node: geth 1.8.16 never drops an entry, so
        packets from fresh identities (or neighbors replies full of fresh IDs) grow
        the map without bound. ``states`` is ``(unknown,)`` unless a sweep passes
        :data:`sweptStates`. A node is kept while it is in the table (or its
        replacements), has a pending ping (a pong timeout), timeout or query, or
        the ticket store or the topic table refers to it; if it comes back it is
        interned anew, as an unknown node that must bond again.
        """
        if n.state not in (states or (unknown,)) or self.nodes.get(n.id) is not n:
            return False
        # a pending ping has its pongTimeout (below)
        if n.deferred_queries or n.pending_neighbours is not None:
            return False
        if any((ev, n) in self.timeout_timers for ev in (pongTimeout, pingTimeout, neighboursTimeout)):
            return False
        ts = self.ticket_store
        if n in ts.nodes or n in ts.node_last_req or n in ts.queries_sent:
            return False
        self.topictab.check_delete_node(n)  # only if it has no entries and no registration wait
        if n in self.topictab.nodes:
            return False
        b = self.tab.buckets[logdist(self.tab.self.sha, n.sha)]
        if any(e is n for e in b.entries) or any(e is n for e in b.replacements):
            return False
        del self.nodes[n.id]
        return True

    def sweep_unused_nodes(self) -> None:
        """Forget every idle node once ``self.nodes`` has grown by ``maxNodesBeforeSweep``.

        Python-only (see forget_if_unused). Idle: unknown (nodes that neighbors
        replies named but nobody asked), or known or unresponsive but in neither
        the table nor its replacements (a node that bonded and went silent, or
        fell off a full replacement list), and referred to by nothing. Below the
        threshold those are kept, as geth keeps them: an unresponsive node that
        pings again is known at once, and one outside the table still gets answers
        to its queries. A forgotten one has to bond again. The next sweep waits
        until ``maxNodesBeforeSweep`` more nodes have come, so the map holds at
        most that many beyond the nodes in use (the table, the topic table's
        records, pending pings), and a pass over the nodes in use costs each
        packet at most (nodes in use) / ``maxNodesBeforeSweep`` checks.
        """
        if len(self.nodes) <= self._sweep_at:
            return
        for n in list(self.nodes.values()):
            self.forget_if_unused(n, sweptStates)
        self._sweep_at = len(self.nodes) + maxNodesBeforeSweep

    def intern_node_from_db(self, dbn):
        n = self.nodes.get(dbn.id)
        if n is not None:
            return n
        n = new_node(dbn.id, dbn.ip, dbn.udp, dbn.tcp)
        n.state = unknown
        self.nodes[n.id] = n
        return n

    def intern_node_from_neighbours(self, sender, rn):
        """The node of a neighbors entry: (node or None, error or None)."""
        if rn.id == self.tab.self.id:
            return None, ValueError("is self")
        if rn.udp <= lowPort:
            return None, ValueError("low port")
        n = self.nodes.get(rn.id)
        if n is None:
            # a node we have not seen before
            try:
                n = _udp().node_from_rpc(sender, rn)
            except Exception as e:  # a relay-IP or validation error of this entry
                return None, e
            if self.netrestrict is not None and not self.netrestrict.contains(n.ip):
                return n, ValueError("not contained in netrestrict whitelist")
            n.state = unknown
            self.nodes[n.id] = n
            return n, None
        err = None
        rn_ip = _ip(rn.ip)
        if n.ip != rn_ip or n.udp != rn.udp or n.tcp != rn.tcp:
            if n.state is known:
                # a known node keeps its address
                err = ValueError("metadata mismatch: got %s, want %s" % (_rpc_str(rn), n))
            else:
                # anyone else may move (signed ENRs will do this better)
                n.ip = rn_ip
                n.udp = rn.udp
                n.tcp = rn.tcp
        return n, err

    # State machine

    def handle(self, n, ev, pkt) -> None:
        """Feed event ``ev`` (with its packet, or None for a timeout) to ``n``'s state machine.

        Raises _HandleError (a ValueError) when the event was refused; the state
        transition has happened by then.
        """
        if pkt is not None:
            err = self.check_packet(n, ev, pkt)
            if err is not None:
                raise _HandleError(err)
            # the database expirer starts with the first good packet, so that seeds
            # can still be found among old nodes until then
            if self.db is not None:
                self.db.ensure_expirer()
        if ev == pongTimeout:
            # departure: discv5-pong-timeout-clears-echo: a ping that timed out is forgotten, so the node can be pinged again (geth 1.9.17)
            n.ping_echo = None
        if n.state is None:
            n.state = unknown
        nxt, err = n.state.handle(self, n, ev, pkt)
        self.transition(n, nxt)
        if err is not None:
            raise _HandleError(err)

    def check_packet(self, n, ev, pkt):
        # replay prevention (geth has only this much)
        if ev == pongPacket:
            if pkt.data.reply_tok != n.ping_echo:
                return ValueError("pong reply token mismatch")
            n.ping_echo = None
        # address validation: none in geth 1.8.16
        return None

    def transition(self, n, nxt) -> None:
        if n.state is not nxt:
            n.state = nxt
            if nxt.enter is not None:
                nxt.enter(self, n)

    def timed_event(self, d: int, n, ev) -> None:
        """Deliver event ``ev`` for ``n`` after ``d`` ns, unless aborted."""
        key = (ev, n)
        token = next(self._seq)
        self.timeout_timers[key] = token
        heapq.heappush(self._timeout_heap, (self.clock.now() + d, token, key))

    def abort_timed_event(self, n, ev) -> None:
        self.timeout_timers.pop((ev, n), None)

    def ping(self, n, addr) -> None:
        if n.ping_echo is not None or n.id == self.tab.self.id:
            return
        log.trace("Pinging remote node", node=n.id)
        n.ping_topics = self.ticket_store.reg_topic_set()
        n.ping_echo = self.conn.send_ping(n, addr, n.ping_topics)
        self.timed_event(_ns(_udp().respTimeout), n, pongTimeout)

    def handle_ping(self, n, pkt) -> None:
        log.trace("Handling remote ping", node=n.id)
        udp = _udp()
        ping = pkt.data
        n.tcp = ping.from_.tcp
        t = self.topictab.get_ticket(n, ping.topics)

        pong = udp.Pong(
            to=udp.make_endpoint(n.addr(), n.tcp),  # geth: "maybe use known TCP port from DB"
            reply_tok=pkt.hash,
            expiration=int(time.time() + udp.expiration),
        )
        ticket_to_pong(t, pong)
        self.conn.send(n, pongPacket, pong)

    def handle_known_pong(self, n, pkt):
        log.trace("Handling known pong", node=n.id)
        self.abort_timed_event(n, pongTimeout)
        now = self.clock.now()
        err = None
        try:
            ticket = pong_to_ticket(now, n.ping_topics or [], n, pkt)
        except ValueError as e:
            err = e
            log.trace("Failed to convert pong to ticket", err=e)
        else:
            self.ticket_store.add_ticket(now, pkt.data.reply_tok, ticket)
        n.ping_echo = None
        n.ping_topics = None
        return err

    def handle_query_event(self, n, ev, pkt):
        if ev == findnodePacket:
            target = crypto.keccak256(pkt.data.target)
            results = self.tab.closest(target, bucketSize).entries
            self.conn.send_neighbours(n, results)
            return n.state, None
        if ev == neighborsPacket:
            err = self.handle_neighbours_packet(n, pkt)
            return n.state, err
        if ev == neighboursTimeout:
            if n.pending_neighbours is not None:
                n.pending_neighbours.reply.put(None)
                n.pending_neighbours = None
            n.query_timeouts += 1
            if n.query_timeouts > maxFindnodeFailures and n.state is known:
                return contested, ValueError("too many timeouts")
            return n.state, None

        # v5
        if ev == findnodeHashPacket:
            results = self.tab.closest(pkt.data.target, bucketSize).entries
            self.conn.send_neighbours(n, results)
            return n.state, None
        if ev == topicRegisterPacket:
            regdata = pkt.data
            try:
                pong = self.check_topic_register(regdata)
            except ValueError as e:
                return n.state, ValueError("bad waiting ticket: %s" % e)
            self.topictab.use_ticket(n, pong.ticket_serial, regdata.topics, int(regdata.idx),
                                     pong.expiration, pong.wait_periods)
            return n.state, None
        if ev == topicQueryPacket:
            # geth does not check the expiration either
            topic = pkt.data.topic
            results = self.topictab.get_entries(topic)
            if topic in self.ticket_store.tickets:
                # we advertise it: we are an answer too (not in our own table)
                results.append(self.tab.self)
            if len(results) > 10:
                results = results[:10]
            h = bytes(pkt.hash[:32]).ljust(32, b"\x00")
            self.conn.send_topic_nodes(n, h, results)
            return n.state, None
        if ev == topicNodesPacket:
            p = pkt.data
            if self.ticket_store.got_topic_nodes(n, p.echo, p.nodes):
                n.query_timeouts += 1
                if n.query_timeouts > maxFindnodeFailures and n.state is known:
                    return contested, ValueError("too many timeouts")
            return n.state, None

        return n.state, errInvalidEvent

    def check_topic_register(self, data):
        """The pong (our ticket) inside a topicRegister packet; ValueError if it is not valid."""
        udp = _udp()
        pongpkt = udp.IngressPacket()
        try:
            udp.decode_packet(data.pong, pongpkt)
        except (udp.DiscoverError, crypto.CryptoError) as e:
            raise ValueError(str(e) or type(e).__name__) from None
        if pongpkt.ev != pongPacket:
            raise ValueError("is not pong packet")
        if pongpkt.remote_id != self.tab.self.id:
            raise ValueError("not signed by us")
        # every topic to register must be one we issued the ticket for
        if rlp_hash(data.topics) != pongpkt.data.topic_hash:
            raise ValueError("topic hash mismatch")
        if data.idx >= len(data.topics):
            raise ValueError("topic index out of range")
        return pongpkt.data

    def handle_neighbours_packet(self, n, pkt):
        if n.pending_neighbours is None:
            return errNoQuery
        self.abort_timed_event(n, neighboursTimeout)

        req = pkt.data
        nodes = [None] * len(req.nodes)
        for i, rn in enumerate(req.nodes):
            nn, err = self.intern_node_from_neighbours(pkt.remote_addr, rn)
            if err is not None:
                if log.is_enabled_for(logging.DEBUG):
                    log.debug("invalid neighbour (%s) from %s@%s: %s" % (rn.ip, n.id[:8].hex(),
                                                                         _addr(pkt.remote_addr), err))
                continue
            nodes[i] = nn
            # verify what we hear about at once: it fills the table quickly
            # (geth notes that this sends too many packets)
            if nn.state is unknown:
                self.transition(nn, verifyinit)
        # geth ignores a second neighbors packet of the same query
        n.pending_neighbours.reply.put(nodes)
        n.pending_neighbours = None
        # this query is done: send the next one
        NodeNetGuts.start_next_query(n, self)
        return None


_CLOSED = object()  # search_topic's wake-up when the network closes


class _HandleError(ValueError):
    """An event the state machine refused (Go: handle's error result)."""


def _ip(ip):
    from p2p.discover.node import _to_ip
    return _to_ip(ip)


def _addr(a) -> str:
    from p2p.netutil import addr_str
    return addr_str(a)


def _rpc_str(rn) -> str:
    return "{%s %s %d %d}" % (rn.id[:8].hex(), _ip(rn.ip), rn.udp, rn.tcp)


class NodeNetGuts:
    """The network-loop half of a Node (geth's nodeNetGuts, embedded in Node).

    The fields live in :class:`~p2p.discv5.node.Node` (its ``__slots__``; node.py
    cannot import this module), declared here with their types for the type
    checker; these are the methods, called as ``NodeNetGuts.defer_query(node, q)``.
    """

    sha: bytes
    state: "NodeState | None"
    ping_echo: bytes | None
    ping_topics: list | None
    deferred_queries: list[FindnodeQuery]
    pending_neighbours: FindnodeQuery | None
    query_timeouts: int

    def defer_query(self, q) -> None:
        self.deferred_queries.append(q)

    def start_next_query(self, net) -> None:
        if len(self.deferred_queries) == 0:
            return
        nextq = self.deferred_queries[0]
        if nextq.start(net):
            del self.deferred_queries[0]


class NodeState:
    __slots__ = ("name", "handle", "enter", "can_query")

    def __init__(self, name, handle, enter=None, can_query=False):
        self.name = name
        self.handle = handle  # (net, n, ev, pkt) -> (next state, error or None)
        self.enter = enter  # (net, n) -> None
        self.can_query = can_query

    def __str__(self):
        return self.name

    __repr__ = __str__


# The states (geth builds them in init()).

def _unknown_enter(net, n):
    net.tab.delete(n)
    n.ping_echo = None
    # abort active queries
    for q in n.deferred_queries:
        q.reply.put(None)
    n.deferred_queries = []
    if n.pending_neighbours is not None:
        n.pending_neighbours.reply.put(None)
        n.pending_neighbours = None
    n.query_timeouts = 0


def _unknown_handle(net, n, ev, pkt):
    if ev == pingPacket:
        net.handle_ping(n, pkt)
        net.ping(n, pkt.remote_addr)
        return verifywait, None
    return unknown, errInvalidEvent


def _verifyinit_enter(net, n):
    net.ping(n, n.addr())


def _verifyinit_handle(net, n, ev, pkt):
    if ev == pingPacket:
        net.handle_ping(n, pkt)
        return verifywait, None
    if ev == pongPacket:
        err = net.handle_known_pong(n, pkt)
        return remoteverifywait, err
    if ev == pongTimeout:
        return unknown, None
    return verifyinit, errInvalidEvent


def _verifywait_handle(net, n, ev, pkt):
    if ev == pingPacket:
        net.handle_ping(n, pkt)
        return verifywait, None
    if ev == pongPacket:
        err = net.handle_known_pong(n, pkt)
        return known, err
    if ev == pongTimeout:
        return unknown, None
    return verifywait, errInvalidEvent


def _remoteverifywait_enter(net, n):
    net.timed_event(_ns(_udp().respTimeout), n, pingTimeout)


def _remoteverifywait_handle(net, n, ev, pkt):
    if ev == pingPacket:
        net.handle_ping(n, pkt)
        return remoteverifywait, None
    if ev == pingTimeout:
        return known, None
    return remoteverifywait, errInvalidEvent


def _known_enter(net, n):
    n.query_timeouts = 0
    NodeNetGuts.start_next_query(n, net)
    # into the table; a full bucket's last node gets revalidated
    last = net.tab.add(n)
    if last is not None and last.state is known:
        # geth: "TODO: do this asynchronously"
        net.transition(last, contested)


def _known_handle(net, n, ev, pkt):
    if ev == pingPacket:
        net.handle_ping(n, pkt)
        return known, None
    if ev == pongPacket:
        err = net.handle_known_pong(n, pkt)
        return known, err
    return net.handle_query_event(n, ev, pkt)


def _contested_enter(net, n):
    net.ping(n, n.addr())


def _contested_handle(net, n, ev, pkt):
    if ev == pongPacket:
        # still alive
        err = net.handle_known_pong(n, pkt)
        return known, err
    if ev == pongTimeout:
        net.tab.delete_replace(n)
        return unresponsive, None
    if ev == pingPacket:
        net.handle_ping(n, pkt)
        return contested, None
    return net.handle_query_event(n, ev, pkt)


def _unresponsive_handle(net, n, ev, pkt):
    if ev == pingPacket:
        net.handle_ping(n, pkt)
        return known, None
    if ev == pongPacket:
        err = net.handle_known_pong(n, pkt)
        return known, err
    return net.handle_query_event(n, ev, pkt)


unknown = NodeState("unknown", _unknown_handle, _unknown_enter)
verifyinit = NodeState("verifyinit", _verifyinit_handle, _verifyinit_enter)
verifywait = NodeState("verifywait", _verifywait_handle)
remoteverifywait = NodeState("remoteverifywait", _remoteverifywait_handle, _remoteverifywait_enter)
known = NodeState("known", _known_handle, _known_enter, can_query=True)
contested = NodeState("contested", _contested_handle, _contested_enter, can_query=True)
unresponsive = NodeState("unresponsive", _unresponsive_handle, can_query=True)

# the states whose idle nodes Network.sweep_unused_nodes forgets (the others wait on a timeout)
sweptStates = (unknown, known, unresponsive)


def rlp_hash(x) -> bytes:
    """keccak256 of the RLP encoding of ``x`` (a list of topics: RLP strings)."""
    if isinstance(x, (list, tuple)):
        x = [t.encode("utf-8", "surrogateescape") if isinstance(t, str) else bytes(t) for t in x]
    return crypto.keccak256(rlpcodec.encode_raw(x))
