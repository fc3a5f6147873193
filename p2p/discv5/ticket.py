"""Tickets, the ticket store and topic radius estimation (port of geth's p2p/discv5/ticket.go).

A registrar answers every ping with a pong carrying a *ticket*: a serial number,
a hash of the pinged topics and, for each topic, a wait period. The registrant
keeps the tickets (``TicketStore``) in one-minute buckets of the time they
become usable and, when one is due, sends it back in a ``topicRegister`` packet.

Which registrars to ask is decided per topic by ``TopicRadius``: it learns how
far (XOR distance of the first 64 bits from the topic hash) the topic's
advertisements reach, from the wait periods of tickets (a long wait means "close
to the topic, busy") and the answers to topic queries, and aims lookups inside
that radius.

Times are ``AbsTime`` (int nanoseconds) of the store's clock, durations are int
nanoseconds, wire times are seconds.
"""

from __future__ import annotations

import math
import os
import random

from p2p import crypto
from p2p.discv5 import mclock
from p2p.log import get_logger
from p2p.discv5.table import rand_uint, rand_uint64n

log = get_logger("p2p.discv5")

ticketTimeBucketLen = mclock.Minute
timeWindow = 10  # * ticketTimeBucketLen
wantTicketsInWindow = 10
collectFrequency = mclock.Second * 30
registerFrequency = mclock.Second * 60
maxCollectDebt = 10
maxRegisterDebt = 5
keepTicketConst = mclock.Minute * 10
keepTicketExp = mclock.Minute * 5
targetWaitTime = mclock.Minute * 10
topicQueryTimeout = mclock.Second * 5
topicQueryResend = mclock.Minute
# topic radius detection
maxRadius = 0xFFFFFFFFFFFFFFFF
radiusTC = mclock.Minute * 20
radiusBucketsPerBit = 8
minSlope = 1
minPeakSize = 40
maxNoAdjust = 20
lookupWidth = 8
minRightSum = 20
searchForceQuery = 4

_U64 = 0xFFFFFFFFFFFFFFFF


def _prefix(h: bytes) -> int:
    """binary.BigEndian.Uint64(h[:8])"""
    return int.from_bytes(h[:8], "big")


def time_bucket(t: int) -> int:
    """The timeBucket (absolute minute) of an AbsTime."""
    return t // ticketTimeBucketLen


class Ticket:
    """A registration ticket.

    ``reg_time[i]`` is the local AbsTime at which ``topics[i]`` may be registered.
    ``node``, ``ref_cnt`` and ``pong`` are used by the registrant only.
    """

    __slots__ = ("topics", "reg_time", "serial", "issue_time", "node", "ref_cnt", "pong")

    def __init__(self, topics=(), reg_time=(), serial=0, issue_time=0, node=None, pong=b""):
        self.topics = list(topics)
        self.reg_time = list(reg_time)
        self.serial = serial
        self.issue_time = issue_time
        self.node = node
        self.ref_cnt = 0
        self.pong = pong

    def find_idx(self, topic) -> int:
        """The index of ``topic`` in the ticket, -1 if absent."""
        for i, tt in enumerate(self.topics):
            if tt == topic:
                return i
        return -1


class TicketRef:
    """One topic of a ticket."""

    __slots__ = ("t", "idx")

    def __init__(self, t: Ticket, idx: int):
        self.t = t
        self.idx = idx

    def __eq__(self, other):  # Go compares the struct: same ticket, same index
        return isinstance(other, TicketRef) and self.t is other.t and self.idx == other.idx

    def __hash__(self):
        return hash((id(self.t), self.idx))

    def topic(self):
        return self.t.topics[self.idx]

    def topic_reg_time(self) -> int:
        return self.t.reg_time[self.idx]

    def wait_time(self) -> int:
        return self.t.reg_time[self.idx] - self.t.issue_time


def pong_to_ticket(local_time: int, topics, node, p) -> Ticket:
    """The ticket in pong packet ``p`` (an ingress packet); ValueError if it does not match ``topics``."""
    from p2p.discv5.net import rlp_hash  # net.py imports this module

    pong = p.data
    wps = pong.wait_periods
    if len(topics) != len(wps):
        raise ValueError("bad wait period list: got %d values, want %d" % (len(wps), len(topics)))
    if rlp_hash(topics) != pong.topic_hash:
        raise ValueError("bad topic hash")
    t = Ticket(topics=topics, reg_time=[0] * len(wps), issue_time=local_time, node=node, pong=p.raw_data)
    # wait periods (seconds) become local absolute times
    for i, wp in enumerate(wps):
        t.reg_time[i] = local_time + mclock.Second * wp
    return t


def ticket_to_pong(t: Ticket, pong) -> None:
    from p2p.discv5.net import rlp_hash  # net.py imports this module

    pong.expiration = (t.issue_time // mclock.Second) & _U64
    pong.topic_hash = rlp_hash(t.topics)
    pong.ticket_serial = t.serial
    pong.wait_periods = [((reg_time - t.issue_time) // mclock.Second) & 0xFFFFFFFF for reg_time in t.reg_time]


class SearchTopic:
    __slots__ = ("found_chn",)

    def __init__(self, found_chn=None):
        self.found_chn = found_chn


class SentQuery:
    __slots__ = ("sent", "lookup")

    def __init__(self, sent, lookup):
        self.sent = sent
        self.lookup = lookup


class TopicTickets:
    __slots__ = ("buckets", "next_lookup", "next_reg")

    def __init__(self):
        self.buckets = {}  # timeBucket -> [TicketRef]
        self.next_lookup = 0
        self.next_reg = 0


class TicketStore:
    """The registrant's side: radius estimators, tickets, pending topic queries.

    Owned by the Network loop (not thread-safe). Nodes are dict keys by object,
    as geth keys them by ``*Node`` (the Network interns one per ID).
    """

    def __init__(self, clock=None):
        self.clock = clock if clock is not None else mclock.System
        # radius estimator and target generator of every searched or registered topic
        self.radius = {}  # Topic -> TopicRadius
        # tickets by usable minute, for the topics being registered
        self.tickets = {}  # Topic -> TopicTickets

        self.reg_queue = []  # registration round robin
        self.reg_set = {}  # what reg_queue holds (dict: ordered set)

        self.nodes = {}  # node -> Ticket
        self.node_last_req = {}  # node -> ReqInfo

        self.last_bucket_fetched = 0
        self.next_ticket_cached = None
        self.next_ticket_reg = 0

        self.search_topic_map = {}  # Topic -> SearchTopic
        self.next_topic_query_cleanup = 0
        self.queries_sent = {}  # node -> {hash: SentQuery}

    def add_topic(self, topic, register: bool) -> None:
        """Track ``topic``; collect tickets for it too if ``register``."""
        log.trace("Adding discovery topic", topic=topic, register=register)
        if self.radius.get(topic) is None:
            self.radius[topic] = new_topic_radius(topic, self.clock)
        if register and self.tickets.get(topic) is None:
            self.tickets[topic] = TopicTickets()

    def add_search_topic(self, t, found_chn) -> None:
        self.add_topic(t, False)
        st = self.search_topic_map.get(t)
        if st is None or st.found_chn is None:
            self.search_topic_map[t] = SearchTopic(found_chn)

    def remove_search_topic(self, t) -> None:
        st = self.search_topic_map.get(t)
        if st is not None and st.found_chn is not None:
            del self.search_topic_map[t]

    def remove_register_topic(self, topic) -> None:
        """Drop every ticket of ``topic``."""
        log.trace("Removing discovery topic", topic=topic)
        if self.tickets.get(topic) is None:
            log.warn("Removing non-existent discovery topic", topic=topic)
            return
        for lst in self.tickets[topic].buckets.values():
            for ref in lst:
                ref.t.ref_cnt -= 1
                if ref.t.ref_cnt == 0:
                    self.nodes.pop(ref.t.node, None)
                    self.node_last_req.pop(ref.t.node, None)
        del self.tickets[topic]

    def reg_topic_set(self) -> list:
        return list(self.tickets)

    def next_register_lookup(self):
        """The next lookup for ticket collection and the delay before it: (LookupInfo, ns)."""
        # queue new (or dropped) topics, in iteration order
        for topic in self.tickets:
            if topic not in self.reg_set:
                self.reg_queue.append(topic)
                self.reg_set[topic] = None
        # take the first queued topic that still exists and wants tickets
        while self.reg_queue:
            topic = self.reg_queue.pop(0)
            self.reg_set.pop(topic, None)

            if self.tickets.get(topic) is None:
                continue
            if self.tickets[topic].next_lookup < self.clock.now():
                nxt, delay = self.radius[topic].next_target(False), 100 * mclock.Millisecond
                log.trace("Found discovery topic to register", topic=topic, target=nxt.target, delay=delay)
                return nxt, delay
        # nothing to collect tickets for now
        delay = 40 * mclock.Second
        log.trace("No topic found to register", delay=delay)
        return LookupInfo(), delay

    def next_search_lookup(self, topic):
        tr = self.radius[topic]
        target = tr.next_target(tr.radius_lookup_cnt >= searchForceQuery)
        if target.radius_lookup:
            tr.radius_lookup_cnt += 1
        else:
            tr.radius_lookup_cnt = 0
        return target

    def tickets_in_window(self, topic) -> list:
        """The tickets of ``topic`` usable in the next ``timeWindow`` buckets."""
        if self.tickets.get(topic) is None:
            log.warn("Listing non-existing discovery tickets", topic=topic)
            return []
        tickets = []
        buckets = self.tickets[topic].buckets
        for idx in range(timeWindow):
            tickets.extend(buckets.get(self.last_bucket_fetched + idx, ()))
        log.trace("Retrieved discovery registration tickets", topic=topic, frm=self.last_bucket_fetched,
                  tickets=len(tickets))
        return tickets

    def remove_excess_tickets(self, t) -> None:
        tickets = self.tickets_in_window(t)
        if len(tickets) <= wantTicketsInWindow:
            return
        tickets.sort(key=TicketRef.wait_time)  # sort.Sort(ticketRefByWaitTime(tickets))
        for r in tickets[wantTicketsInWindow:]:
            self.remove_ticket_ref(r)

    def add_ticket_ref(self, r: TicketRef) -> None:
        topic = r.t.topics[r.idx]
        tickets = self.tickets.get(topic)
        if tickets is None:
            log.warn("Adding ticket to non-existent topic", topic=topic)
            return
        bucket = time_bucket(r.t.reg_time[r.idx])
        tickets.buckets.setdefault(bucket, []).append(r)
        r.t.ref_cnt += 1

        lo = self.clock.now() - collectFrequency * maxCollectDebt
        if tickets.next_lookup < lo:
            tickets.next_lookup = lo
        tickets.next_lookup += collectFrequency

    def next_filtered_ticket(self):
        """Like next_registerable_ticket, dropping tickets due before the topic's next_reg."""
        now = self.clock.now()
        while True:
            ticket, wait = self.next_registerable_ticket()
            if ticket is None:
                return ticket, wait
            log.trace("Found discovery ticket to register", node=ticket.t.node, serial=ticket.t.serial, wait=wait)

            reg_time = now + wait
            topic = ticket.t.topics[ticket.idx]
            if self.tickets.get(topic) is not None and reg_time >= self.tickets[topic].next_reg:
                return ticket, wait
            self.remove_ticket_ref(ticket)

    def ticket_registered(self, ref: TicketRef) -> None:
        now = self.clock.now()

        topic = ref.t.topics[ref.idx]
        tickets = self.tickets[topic]
        lo = now - registerFrequency * maxRegisterDebt
        if lo > tickets.next_reg:
            tickets.next_reg = lo
        tickets.next_reg += registerFrequency
        self.tickets[topic] = tickets

        self.remove_ticket_ref(ref)

    def next_registerable_ticket(self):
        """The next ticket to use and the time (ns) until it is due: (TicketRef or None, ns).

        A wait <= 0 means "use it now". A ticket with several topics can come
        back more than once.
        """
        now = self.clock.now()
        if self.next_ticket_cached is not None:
            return self.next_ticket_cached, self.next_ticket_cached.topic_reg_time() - now

        bucket = self.last_bucket_fetched
        while True:
            empty = True  # no tickets at all
            next_ticket = None
            for tickets in self.tickets.values():
                if len(tickets.buckets) != 0:
                    empty = False
                    for ref in tickets.buckets.get(bucket, ()):
                        if next_ticket is None or ref.topic_reg_time() < next_ticket.topic_reg_time():
                            next_ticket = ref
            if empty:
                return None, 0
            if next_ticket is not None:
                self.next_ticket_cached = next_ticket
                return next_ticket, next_ticket.topic_reg_time() - now
            self.last_bucket_fetched = bucket
            bucket += 1

    def remove_ticket_ref(self, ref: TicketRef) -> None:
        log.trace("Removing discovery ticket reference", node=ref.t.node, serial=ref.t.serial)

        # next_registerable_ticket must look again
        self.next_ticket_cached = None

        topic = ref.topic()
        tickets = self.tickets.get(topic)

        if tickets is None:
            log.trace("Removing tickets from unknown topic", topic=topic)
            return
        bucket = time_bucket(ref.t.reg_time[ref.idx])
        lst = tickets.buckets.get(bucket, [])
        idx = -1
        for i, bt in enumerate(lst):
            if bt.t is ref.t:
                idx = i
                break
        if idx == -1:
            raise AssertionError("ticket reference not in its bucket")  # geth: panic(nil)
        del lst[idx]
        if lst:
            tickets.buckets[bucket] = lst
        else:
            tickets.buckets.pop(bucket, None)
        ref.t.ref_cnt -= 1
        if ref.t.ref_cnt == 0:
            self.nodes.pop(ref.t.node, None)
            self.node_last_req.pop(ref.t.node, None)

    def register_lookup_done(self, lookup, nodes, ping) -> None:
        """Ping the nodes a ticket-collection lookup found closest (``ping(n)`` returns the ping hash)."""
        now = self.clock.now()
        for i, n in enumerate(nodes):
            if i == 0 or (_prefix(n.sha) ^ _prefix(lookup.target)) < self.radius[lookup.topic].min_radius:
                if lookup.radius_lookup:
                    last_req = self.node_last_req.get(n)
                    if last_req is None or now - last_req.time > radiusTC:
                        self.node_last_req[n] = ReqInfo(ping(n), lookup, now)
                else:
                    if self.nodes.get(n) is None:
                        self.node_last_req[n] = ReqInfo(ping(n), lookup, now)

    def search_lookup_done(self, lookup, nodes, query) -> None:
        """Send topic queries to the nodes a search lookup found (``query(n, topic)`` returns its hash or None)."""
        now = self.clock.now()
        for i, n in enumerate(nodes):
            if i == 0 or (_prefix(n.sha) ^ _prefix(lookup.target)) < self.radius[lookup.topic].min_radius:
                if lookup.radius_lookup:
                    last_req = self.node_last_req.get(n)
                    if last_req is None or now - last_req.time > radiusTC:
                        self.node_last_req[n] = ReqInfo(None, lookup, now)
                if self.can_query_topic(n, lookup.topic):
                    h = query(n, lookup.topic)
                    if h is not None:
                        self.add_topic_query(bytes(h), n, lookup)

    def adjust_with_ticket(self, now: int, target_hash: bytes, t: Ticket) -> None:
        for i, topic in enumerate(t.topics):
            tt = self.radius.get(topic)
            if tt is not None:
                tt.adjust_with_ticket(now, target_hash, TicketRef(t, i))

    def add_ticket(self, local_time: int, ping_hash: bytes, ticket: Ticket) -> None:
        log.trace("Adding discovery ticket", node=ticket.node, serial=ticket.serial)

        last_req = self.node_last_req.get(ticket.node)
        if not (last_req is not None and ping_hash == last_req.ping_hash):
            return
        self.adjust_with_ticket(local_time, last_req.lookup.target, ticket)

        if last_req.lookup.radius_lookup or self.nodes.get(ticket.node) is not None:
            return

        topic = last_req.lookup.topic
        topic_idx = ticket.find_idx(topic)
        if topic_idx == -1:
            return

        bucket = time_bucket(local_time)
        if self.last_bucket_fetched == 0 or bucket < self.last_bucket_fetched:
            self.last_bucket_fetched = bucket

        if topic in self.tickets:
            wait = ticket.reg_time[topic_idx] - local_time
            rnd = random.expovariate(1.0)
            if rnd > 10:
                rnd = 10
            if wait < keepTicketConst + keepTicketExp * rnd:
                # keep it: this topic will be registered with it
                self.add_ticket_ref(TicketRef(ticket, topic_idx))

        if ticket.ref_cnt > 0:
            self.next_ticket_cached = None
            self.nodes[ticket.node] = ticket

    def get_node_ticket(self, node):
        t = self.nodes.get(node)
        log.trace("Retrieving node ticket", node=node, serial=None if t is None else t.serial)
        return t

    def can_query_topic(self, node, topic) -> bool:
        qq = self.queries_sent.get(node)
        if qq is not None:
            now = self.clock.now()
            for sq in qq.values():
                if sq.lookup.topic == topic and sq.sent > now - topicQueryResend:
                    return False
        return True

    def add_topic_query(self, h: bytes, node, lookup) -> None:
        now = self.clock.now()
        qq = self.queries_sent.get(node)
        if qq is None:
            qq = {}
            self.queries_sent[node] = qq
        qq[h] = SentQuery(now, lookup)
        self.cleanup_topic_queries(now)

    def cleanup_topic_queries(self, now: int) -> None:
        if self.next_topic_query_cleanup > now:
            return
        exp = now - topicQueryResend
        for n, qq in list(self.queries_sent.items()):
            for h, q in list(qq.items()):
                if q.sent < exp:
                    del qq[h]
            if len(qq) == 0:
                del self.queries_sent[n]
        self.next_topic_query_cleanup = now + topicQueryTimeout

    def got_topic_nodes(self, frm, h: bytes, nodes) -> bool:
        """Take a topicNodes reply; True if it answers no pending query (counts as a timeout)."""
        from p2p.discv5.node import new_node  # node.py is below this module

        now = self.clock.now()
        qq = self.queries_sent.get(frm)
        if qq is None:
            return True
        q = qq.get(bytes(h))
        if q is None or now > q.sent + topicQueryTimeout:
            return True
        inside = 1.0 if len(nodes) > 0 else 0.0
        self.radius[q.lookup.topic].adjust(now, q.lookup.target, frm.sha, inside)
        st = self.search_topic_map.get(q.lookup.topic)
        chn = st.found_chn if st is not None else None
        if chn is None:
            return False
        for node in nodes:
            ip = node.ip
            if ip is None or ip.is_unspecified or ip.is_loopback:
                ip = frm.ip
            n = new_node(node.id, ip, node.udp, node.tcp)
            if not _try_put(chn, n):
                return False
        return False


def _try_put(chn, item) -> bool:
    """Go's `select { case chn <- item: default: }` on a found-channel (a queue.Queue or anything with put_nowait)."""
    try:
        chn.put_nowait(item)
        return True
    except Exception:  # queue.Full; a bounded channel drops what does not fit
        return False


class LookupInfo:
    __slots__ = ("target", "topic", "radius_lookup")

    def __init__(self, target: bytes = bytes(32), topic="", radius_lookup: bool = False):
        self.target = target
        self.topic = topic
        self.radius_lookup = radius_lookup

    def __eq__(self, other):
        return (isinstance(other, LookupInfo) and self.target == other.target
                and self.topic == other.topic and self.radius_lookup == other.radius_lookup)

    def __repr__(self):
        return "LookupInfo(%s, %r, %s)" % (self.target[:8].hex(), self.topic, self.radius_lookup)


class ReqInfo:
    __slots__ = ("ping_hash", "lookup", "time")

    def __init__(self, ping_hash, lookup, time):
        self.ping_hash = ping_hash
        self.lookup = lookup
        self.time = time


# topicRadiusEvent
trOutside = 0
trInside = 1
trNoAdjust = 2
trCount = 3


class TopicRadiusBucket:
    __slots__ = ("weights", "last_time", "value", "lookup_sent")

    def __init__(self):
        self.weights = [0.0] * trCount
        self.last_time = 0
        self.value = 0.0
        self.lookup_sent = {}  # target hash -> AbsTime

    def update(self, now: int) -> None:
        from p2p.discv5.udp import respTimeout

        if now == self.last_time:
            return
        exp = math.exp(-(now - self.last_time) / radiusTC)
        for i, w in enumerate(self.weights):
            self.weights[i] = w * exp
        self.last_time = now

        for target, tm in list(self.lookup_sent.items()):
            if now - tm > _ns(respTimeout):
                self.weights[trNoAdjust] += 1
                del self.lookup_sent[target]

    def adjust(self, now: int, inside: float) -> None:
        self.update(now)
        if inside <= 0:
            self.weights[trOutside] += 1
        elif inside >= 1:
            self.weights[trInside] += 1
        else:
            self.weights[trInside] += inside
            self.weights[trOutside] += 1 - inside


def _ns(d) -> int:
    """A udp.py duration in nanoseconds."""
    return d if isinstance(d, int) else int(d * mclock.Second)


def new_topic_radius(t, clock=None) -> TopicRadius:
    topic_hash = crypto.keccak256(t.encode("utf-8", "surrogateescape") if isinstance(t, str) else bytes(t))
    return TopicRadius(t, _prefix(topic_hash), clock if clock is not None else mclock.System)


class TopicRadius:
    __slots__ = ("topic", "topic_hash_prefix", "radius", "min_radius", "buckets",
                 "converged", "radius_lookup_cnt", "clock")

    def __init__(self, topic, topic_hash_prefix, clock):
        self.topic = topic
        self.topic_hash_prefix = topic_hash_prefix
        self.radius = maxRadius
        self.min_radius = maxRadius
        self.buckets = []
        self.converged = False
        self.radius_lookup_cnt = 0
        self.clock = clock

    def get_bucket_idx(self, addr_hash: bytes) -> int:
        prefix = _prefix(addr_hash)
        log2 = 0.0
        if prefix != self.topic_hash_prefix:
            log2 = math.log2(float(prefix ^ self.topic_hash_prefix))
        bucket = int((64 - log2) * radiusBucketsPerBit)
        mx = 64 * radiusBucketsPerBit - 1
        if bucket > mx:
            return mx
        if bucket < 0:
            return 0
        return bucket

    def target_for_bucket(self, bucket: int) -> bytes:
        lo = math.pow(2, 64 - (bucket + 1) / radiusBucketsPerBit)
        hi = math.pow(2, 64 - bucket / radiusBucketsPerBit)
        a = _f2u64(lo)
        b = rand_uint64n(_f2u64(hi - lo))
        xor = a + b
        if xor > _U64:  # Go: the uint64 sum wrapped
            xor = _U64
        prefix = self.topic_hash_prefix ^ xor
        return prefix.to_bytes(8, "big") + global_rand_read(24)

    def is_in_radius(self, addr_hash: bytes) -> bool:
        dist = _prefix(addr_hash) ^ self.topic_hash_prefix
        return dist < self.radius

    def choose_lookup_bucket(self, a: int, b: int) -> int:
        if a < 0:
            a = 0
        if a > b:
            return -1
        c = 0
        for i in range(a, b + 1):
            if i >= len(self.buckets) or self.buckets[i].weights[trNoAdjust] < maxNoAdjust:
                c += 1
        if c == 0:
            return -1
        rnd = rand_uint(c)
        for i in range(a, b + 1):
            if i >= len(self.buckets) or self.buckets[i].weights[trNoAdjust] < maxNoAdjust:
                if rnd == 0:
                    return i
                rnd -= 1
        raise AssertionError("unreachable")  # geth: panic(nil)

    def need_more_lookups(self, a: int, b: int, max_value: float) -> bool:
        mx = 0.0
        if a < 0:
            a = 0
        if b >= len(self.buckets):
            b = len(self.buckets) - 1
            if self.buckets[b].value > mx:
                mx = self.buckets[b].value
        if b >= a:
            for i in range(a, b + 1):
                if self.buckets[i].value > mx:
                    mx = self.buckets[i].value
        return max_value - mx < minPeakSize

    def recalc_radius(self):
        """(radius, radius_lookup): the radius if converged, and the bucket still to probe or -1."""
        radius = 0
        max_bucket = 0
        max_value = 0.0
        now = self.clock.now()
        v = 0.0
        for b in self.buckets:
            b.update(now)
            v += b.weights[trOutside] - b.weights[trInside]
            b.value = v
        slope_cross = -1
        for i, b in enumerate(self.buckets):
            v = b.value
            if v < float(i) * minSlope:
                slope_cross = i
                break
            if v > max_value:
                max_value = v
                max_bucket = i + 1

        min_rad_bucket = len(self.buckets)
        s = 0.0
        while min_rad_bucket > 0 and s < minRightSum:
            min_rad_bucket -= 1
            b = self.buckets[min_rad_bucket]
            s += b.weights[trInside] + b.weights[trOutside]
        self.min_radius = _f2u64(math.pow(2, 64 - min_rad_bucket / radiusBucketsPerBit))

        lookup_left = -1
        if self.need_more_lookups(0, max_bucket - lookupWidth - 1, max_value):
            lookup_left = self.choose_lookup_bucket(max_bucket - lookupWidth, max_bucket - 1)
        lookup_right = -1
        if slope_cross != max_bucket and (min_rad_bucket <= max_bucket or
                                          self.need_more_lookups(max_bucket + lookupWidth, len(self.buckets) - 1, max_value)):
            while len(self.buckets) <= max_bucket + lookupWidth:
                self.buckets.append(TopicRadiusBucket())
            lookup_right = self.choose_lookup_bucket(max_bucket, max_bucket + lookupWidth - 1)
        if lookup_left == -1:
            radius_lookup = lookup_right
        elif lookup_right == -1:
            radius_lookup = lookup_left
        elif rand_uint(2) == 0:
            radius_lookup = lookup_left
        else:
            radius_lookup = lookup_right

        if radius_lookup == -1:
            # no probing needed for now: settle on a radius
            self.converged = True
            rad = max_bucket
            if min_rad_bucket < rad:
                rad = min_rad_bucket
            radius = _U64
            if rad > 0:
                radius = _f2u64(math.pow(2, 64 - rad / radiusBucketsPerBit))
            self.radius = radius

        return radius, radius_lookup

    def next_target(self, force_regular: bool):
        if not force_regular:
            _, radius_lookup = self.recalc_radius()
            if radius_lookup != -1:
                target = self.target_for_bucket(radius_lookup)
                self.buckets[radius_lookup].lookup_sent[target] = self.clock.now()
                return LookupInfo(target, self.topic, True)

        rad_ext = self.radius // 2
        if rad_ext > maxRadius - self.radius:
            rad_ext = maxRadius - self.radius
        rnd = (rand_uint64n(self.radius) + rand_uint64n(2 * rad_ext)) & _U64
        if rnd > rad_ext:
            rnd -= rad_ext
        else:
            rnd = rad_ext - rnd

        prefix = self.topic_hash_prefix ^ rnd
        target = prefix.to_bytes(8, "big") + global_rand_read(24)
        return LookupInfo(target, self.topic, False)

    def adjust_with_ticket(self, now: int, target_hash: bytes, t: TicketRef) -> None:
        wait = t.t.reg_time[t.idx] - t.t.issue_time
        inside = wait / targetWaitTime - 0.5
        if inside > 1:
            inside = 1.0
        if inside < 0:
            inside = 0.0
        self.adjust(now, target_hash, t.t.node.sha, inside)

    def adjust(self, now: int, target_hash: bytes, addr_hash: bytes, inside: float) -> None:
        bucket = self.get_bucket_idx(addr_hash)
        if bucket >= len(self.buckets):
            return
        self.buckets[bucket].adjust(now, inside)
        self.buckets[bucket].lookup_sent.pop(target_hash, None)


def global_rand_read(n: int) -> bytes:
    """n random bytes (geth fills them from math/rand, for Go 1.5)."""
    return os.urandom(n)


def _f2u64(f: float) -> int:
    """Go's uint64(f) on amd64 for the non-negative floats used here.

    The one out-of-range value is 2^64 (min_radius when no bucket has weight):
    amd64 converts it to 0, so geth's min_radius is then 0 ("only the closest
    node"), and so is ours.
    """
    i = int(f)
    return i if i <= _U64 else 0
