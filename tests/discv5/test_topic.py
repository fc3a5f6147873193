"""Twins of geth's p2p/discv5/topic_test.go, and the limits of the topic table.

geth's only test here is TestTopicRadius (the radius estimator of ticket.go
converging on a synthetic wait-time landscape). The tests after it check what
topic.go promises and geth did not test: a flood of registrations cannot grow
the table past ``maxEntriesPerTopic`` per topic and ``maxEntries`` in all, and
per-node bookkeeping is dropped again once it has expired, or (departure
discv5-topic-idle-nodeinfos) once more than ``maxIdleNodeInfos`` records hold no entry.
"""

import random
import threading

from p2p.discv5 import mclock
from p2p.discv5.node import Node, NodeID
from p2p.discv5.ticket import Ticket, TicketRef, maxRadius, new_topic_radius, targetWaitTime
from p2p.discv5 import topic as topicmod
from p2p.discv5.topic import (
    TopicTable, fallbackRegistrationExpiry, gcInterval, maxEntries, maxEntriesPerTopic, minWaitPeriod,
)


def test_topic_radius():
    now = mclock.now()
    topic = "qwerty"
    rad = new_topic_radius(topic)
    target_rad = maxRadius // 100

    def wait_fn(addr: bytes) -> int:
        prefix = int.from_bytes(addr[:8], "big")
        dist = prefix ^ rad.topic_hash_prefix
        rel_dist = dist / target_rad
        rel_time = (1 - rel_dist / 2) * 2
        if rel_time < 0:
            rel_time = 0
        return int(targetWaitTime * rel_time)

    bcnt = 0
    cnt = 0
    total = 0.0
    while cnt < 100:
        addr = rad.next_target(False).target
        wait = wait_fn(addr)
        ticket = Ticket(topics=[topic], reg_time=[wait], node=Node(sha=addr))
        rad.adjust_with_ticket(now, addr, TicketRef(ticket, 0))
        if rad.radius != maxRadius:
            cnt += 1
            total += rad.radius
        else:
            bcnt += 1
            assert bcnt <= 500, "Radius did not converge in 500 iterations"
    avg_rel = total / cnt / target_rad
    assert 0.95 <= avg_rel <= 1.05, "Average/target ratio is too far from 1 (%s)" % avg_rel


class FakeClock:
    """A clock the test moves by hand (the table only reads now())."""

    def __init__(self, t=10 * mclock.Hour):
        self.t = t

    def now(self):
        return self.t


def _node(i: int) -> Node:
    return Node(id=NodeID(i.to_bytes(64, "big")))


def _flood(tab, clock, regs, idx=0, step=mclock.Millisecond // 2):
    """Tickets for all of ``regs`` (node, topics) at once, then all used when valid: the results."""
    tickets = [(node, topics, tab.get_ticket(node, topics)) for node, topics in regs]
    clock.t = max(t.reg_time[idx] for _, _, t in tickets)
    out = []
    for node, topics, t in tickets:
        clock.t += step
        waits = [(rt - t.issue_time) // mclock.Second for rt in t.reg_time]
        out.append(tab.use_ticket(node, t.serial, topics, idx, t.issue_time // mclock.Second, waits))
    return out


def test_topic_table_registration_needs_a_waited_ticket():
    clock = FakeClock()
    tab = TopicTable(None, _node(0), clock)
    n = _node(1)
    t = tab.get_ticket(n, ["chat"])
    assert t.reg_time[0] - t.issue_time == minWaitPeriod
    waits = [minWaitPeriod // mclock.Second]
    # too early: the wait period has not passed
    assert not tab.use_ticket(n, t.serial, ["chat"], 0, t.issue_time // mclock.Second, waits)
    assert tab.get_entries("chat") == []
    # in the window
    clock.t = t.reg_time[0]
    assert tab.use_ticket(n, t.serial, ["chat"], 0, t.issue_time // mclock.Second, waits)
    assert tab.get_entries("chat") == [n]
    # an older serial is refused
    assert not tab.use_ticket(n, t.serial - 1, ["chat"], 0, t.issue_time // mclock.Second, waits)


def test_topic_table_flood_stays_within_limits():
    """20,000 registrations over 40 topics from 20,000 nodes: the limits hold throughout."""
    random.seed(7)
    clock = FakeClock()
    tab = TopicTable(None, _node(0), clock)
    topics = ["t%d" % i for i in range(40)]
    registered = 0
    for r in range(20):
        batch = [(_node(1 + r * 1000 + k), [topics[k % len(topics)]]) for k in range(1000)]
        registered += sum(_flood(tab, clock, batch))
        assert tab.global_entries <= maxEntries
        for ti in tab.topics.values():
            assert len(ti.entries) <= maxEntriesPerTopic
        assert tab.global_entries == sum(len(ti.entries) for ti in tab.topics.values())
    assert registered > maxEntriesPerTopic * len(topics)  # the flood did hit the caps
    assert tab.global_entries == maxEntriesPerTopic * len(topics)


def test_topic_table_global_limit_evicts_least_requested():
    """More topics than maxEntries allows: the total stays at maxEntries, the requested topic keeps its entries."""
    random.seed(8)
    clock = FakeClock()
    tab = TopicTable(None, _node(0), clock)
    ntopics = maxEntries // maxEntriesPerTopic + 20
    regs = [(_node(1 + k * maxEntriesPerTopic + m), ["topic%d" % k])
            for k in range(ntopics) for m in range(maxEntriesPerTopic)]
    tickets = [(node, topics, tab.get_ticket(node, topics)) for node, topics in regs]
    clock.t = max(t.reg_time[0] for _, _, t in tickets)
    for j, (node, topics, t) in enumerate(tickets):
        clock.t += mclock.Millisecond // 2
        waits = [(rt - t.issue_time) // mclock.Second for rt in t.reg_time]
        assert tab.use_ticket(node, t.serial, topics, 0, t.issue_time // mclock.Second, waits)
        if j % maxEntriesPerTopic == maxEntriesPerTopic - 1:
            tab.get_entries("topic0")  # searchers keep asking for topic0
        assert tab.global_entries <= maxEntries
    assert tab.global_entries == maxEntries
    assert len(tab.get_entries("topic0")) == maxEntriesPerTopic


def test_topic_table_forgets_expired_entries_and_nodes():
    """Entries expire after fallbackRegistrationExpiry; node records go once their timeout has passed."""
    random.seed(9)
    clock = FakeClock()
    tab = TopicTable(None, _node(0), clock)
    _flood(tab, clock, [(_node(i), ["chat"]) for i in range(1, 3001)])
    assert len(tab.get_entries("chat")) == maxEntriesPerTopic
    assert len(tab.nodes) > maxEntriesPerTopic  # the no-registration timeouts of recent nodes
    # geth caps noRegTimeout at 100 * avgnoRegTimeout (1000 minutes)
    clock.t += fallbackRegistrationExpiry + 1000 * mclock.Minute + gcInterval
    assert tab.get_entries("chat") == []
    assert len(tab.nodes) == 0
    assert tab.global_entries == 0
    assert "chat" not in tab.topics and len(tab.requested) == 0


def _idle_consistent(tab) -> bool:
    """``tab.idle`` lists exactly the nodes whose record holds no entry."""
    return set(tab.idle) == {node for node, n in tab.nodes.items() if not n.entries}


# departure: discv5-topic-idle-nodeinfos: the cap on records without entries
def test_topic_table_idle_node_infos_are_capped(monkeypatch):
    """Records without entries beyond maxIdleNodeInfos go, oldest first; records with entries stay.

    geth 1.8.16 keeps the record of every node that used a ticket until its
    no-registration timeout (10 minutes on average, up to 1000), entry or not.
    """
    random.seed(11)
    monkeypatch.setattr(topicmod, "maxIdleNodeInfos", 20)
    clock = FakeClock()
    tab = TopicTable(None, _node(0), clock)
    registered = [_node(i) for i in range(1, 11)]
    assert all(_flood(tab, clock, [(n, ["chat"]) for n in registered]))
    # 100 nodes use their tickets before the wait period: refused, but each leaves a record
    early = [_node(i) for i in range(100, 200)]
    for n in early:
        t = tab.get_ticket(n, ["chat"])
        waits = [(rt - t.issue_time) // mclock.Second for rt in t.reg_time]
        assert not tab.use_ticket(n, t.serial, ["chat"], 0, t.issue_time // mclock.Second, waits)
        assert len(tab.idle) <= 20
        assert _idle_consistent(tab)
    assert all(tab.nodes[n].no_reg_until > clock.now() for n in early[-20:])  # geth would keep all 100
    assert set(tab.idle) == set(early[-20:])  # the newest stay
    assert all(n in tab.nodes and tab.nodes[n].entries for n in registered)
    assert sorted(n.id for n in tab.get_entries("chat")) == sorted(n.id for n in registered)
    # a dropped node registers again with a fresh ticket
    assert early[0] not in tab.nodes
    assert _flood(tab, clock, [(early[0], ["chat"])])[0]
    assert early[0] in tab.get_entries("chat") and early[0] not in tab.idle
    # entries that expire leave records that are idle (kept for their timeout) or gone
    clock.t += fallbackRegistrationExpiry + gcInterval
    assert tab.get_entries("chat") == []
    assert _idle_consistent(tab) and len(tab.idle) <= 20 + len(registered) + 1


# departure: discv5-topic-idle-nodeinfos: the attack test of the topic table's records
def test_topic_register_flood_from_fresh_identities_is_capped(crypto_backend, monkeypatch):
    """Fresh identities bond over loopback UDP, send a topicRegister before their ticket's wait, go silent.

    The victim refuses each registration but starts the identity's no-registration
    timeout, so geth 1.8.16 keeps its record (and with it the node) for 10 minutes on
    average: a flood builds one record per identity (a minute of it here builds about
    42,000, see docs/DEPARTURES.md). Here the records without entries stay within
    maxIdleNodeInfos (50 for the test) throughout, and the victim still bonds with
    and serves a newcomer. geth also writes each identity's ticket counters to the node
    database (with an in-memory one, as the bootnode has, that is memory too), where
    nothing ever expires them; here only accepted registrations write them
    (departure discv5-ticket-counters-on-registration), so the flood writes nothing.
    """
    from tests.discv5.flood import Flooder, flood, start_victim

    N, cap = 200, 50
    monkeypatch.setattr(topicmod, "maxIdleNodeInfos", cap)
    net = start_victim("")  # a temporary node database
    fl = Flooder(net.tab.self)
    seen = []  # len(topictab.nodes) after every packet (the loop considers a sweep then)
    try:
        sweep = net.sweep_unused_nodes

        def sweep_and_record():
            seen.append(len(net.topictab.nodes))
            sweep()

        net.sweep_unused_nodes = sweep_and_record
        threads = set(threading.enumerate())
        assert flood(net, fl, n=N, topic="flood") == N
        # no thread per identity (the database's expirer starts with the first good packet)
        assert [t.name for t in set(threading.enumerate()) - threads] in ([], ["discv5.nodeDB.expirer"])
        # a newcomer bonds and is served (the victim reads one socket in order: by the
        # time it answers, it has handled every packet of the flood)
        k = fl.identity()
        assert fl.bond(k, ["flood"]) is not None
        assert fl.findnode(k), "the victim did not answer a findnode of the newcomer"
        infos = []
        net.req_table_op(lambda: infos.append(list(net.topictab.nodes.values())))
        assert max(seen) <= cap, "the topic table held %d records (cap %d)" % (max(seen), cap)
        # the registrations did arrive: the records are the newcomer's (a ticket, not
        # used) and those of the last identities of the flood, which used theirs
        assert len(infos[0]) == cap and not any(n.entries for n in infos[0])
        assert sum(n.last_used_ticket != 0 for n in infos[0]) == cap - 1
        keys = []
        net.req_table_op(lambda: keys.extend(net.db.lvl.iterator(include_value=False)))
        assert keys == [], "%d keys in the node database after the flood" % len(keys)
    finally:
        fl.close()
        net.close()


# departure: discv5-ticket-counters-on-registration: the test
def test_topic_table_stores_ticket_counters_of_accepted_registrations():
    """Tickets issued, or used too early, write nothing; an accepted registration stores the counters.

    A table opened later on the same database (a restart, or a record that was
    dropped) refuses tickets older than the last one used.
    """
    from p2p.discv5.database import new_memory_node_db

    random.seed(5)
    db = new_memory_node_db(_node(0).id)
    try:
        clock = FakeClock()
        tab = TopicTable(db, _node(0), clock)
        n = _node(1)
        t1 = tab.get_ticket(n, ["chat"])
        t2 = tab.get_ticket(n, ["chat"])
        assert db.fetch_topic_reg_tickets(n.id) == (0, 0)
        waits = [(rt - t2.issue_time) // mclock.Second for rt in t2.reg_time]
        assert not tab.use_ticket(n, t2.serial, ["chat"], 0, t2.issue_time // mclock.Second, waits)  # too early
        assert db.fetch_topic_reg_tickets(n.id) == (0, 0)
        clock.t = t2.reg_time[0]
        assert tab.use_ticket(n, t2.serial, ["chat"], 0, t2.issue_time // mclock.Second, waits)
        assert db.fetch_topic_reg_tickets(n.id) == (2, 2)
        again = TopicTable(db, _node(0), clock)
        waits1 = [(rt - t1.issue_time) // mclock.Second for rt in t1.reg_time]
        assert not again.use_ticket(n, t1.serial, ["chat"], 0, t1.issue_time // mclock.Second, waits1)
        assert again.get_ticket(n, ["chat"]).serial == 3
    finally:
        db.close()
