"""Fuzzing of the discovery v5 ticket path: topicRegister packets and pong tickets.

A registrar decodes the pong embedded in a ``topicRegister`` packet
(``Network.check_topic_register``) and hands its fields to the topic table
(``TopicTable.use_ticket``); a registrant turns a pong into a ticket
(``ticket.pong_to_ticket``). Documented behaviour:

- ``check_topic_register`` returns the pong or raises ValueError, on any input;
- ``use_ticket`` returns a bool for any serial, issue time and wait periods (tickets
  with absurd times register nothing), and the table's limits hold;
- ``pong_to_ticket`` returns a Ticket or raises ValueError.
"""

from types import SimpleNamespace

from hypothesis import given, strategies as st

from p2p import crypto
from p2p.discv5 import mclock
from p2p.discv5.net import Network, rlp_hash
from p2p.discv5.node import Node, NodeID, pubkey_id
from p2p.discv5.nodeevent_string import pongPacket, pingPacket
from p2p.discv5.ticket import Ticket, pong_to_ticket
from p2p.discv5.topic import TopicTable, maxEntries, maxEntriesPerTopic
from p2p.discv5.udp import IngressPacket, Pong, TopicRegister, encode_packet

from tests.fuzz import fuzz_settings, mutated

KEY = crypto.hex_to_ecdsa("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")
OTHER = crypto.hex_to_ecdsa("45a915e4d060149eb4365960e6a7a45f334393093061116b197e3240065ff2d8")
SELF = SimpleNamespace(tab=SimpleNamespace(self=Node(id=pubkey_id(KEY))))

topics_st = st.lists(st.text(max_size=12), max_size=12)
u32 = st.integers(0, 2 ** 32 - 1)
u64 = st.integers(0, 2 ** 64 - 1)


def _signed_pong(draw_topics, waits, serial, expiration, key=KEY, ptype=pongPacket):
    p = Pong(reply_tok=b"\x01" * 32, expiration=expiration, topic_hash=rlp_hash(draw_topics),
             ticket_serial=serial, wait_periods=waits)
    packet, _ = encode_packet(key, ptype, p)
    return packet


class FakeClock:
    def __init__(self, t):
        self.t = t

    def now(self):
        return self.t


@st.composite
def register_packets(draw):
    topics = draw(topics_st)
    reg_topics = topics if draw(st.booleans()) else draw(topics_st)
    waits = draw(st.lists(u32, max_size=len(topics) + 2))
    key = draw(st.sampled_from([KEY, KEY, OTHER]))
    ptype = draw(st.sampled_from([pongPacket, pongPacket, pingPacket]))
    pong = _signed_pong(topics, waits, draw(u32), draw(u64), key, ptype)
    if draw(st.booleans()):
        pong = draw(mutated(pong))
    return TopicRegister(topics=reg_topics, idx=draw(st.integers(0, 2 ** 64 - 1) | st.integers(0, 16)), pong=pong)


def _check_register(tab, node, data):
    try:
        pong = Network.check_topic_register(SELF, data)
    except ValueError:
        return None
    assert isinstance(pong, Pong)
    assert data.idx < len(data.topics)
    if len(pong.wait_periods) != len(data.topics):
        return None  # a pong we never sign: ticket_to_pong gives one wait period per topic
    ok = tab.use_ticket(node, pong.ticket_serial, data.topics, int(data.idx), pong.expiration, pong.wait_periods)
    assert isinstance(ok, bool)
    return ok


@fuzz_settings(60)
@given(st.lists(register_packets(), max_size=8), st.integers(0, 2 ** 62))
def test_fuzz_topic_register(packets, now):
    tab = TopicTable(None, SELF.tab.self, FakeClock(now))
    node = Node(id=NodeID(b"\x02" * 64))
    for data in packets:
        _check_register(tab, node, data)
    assert tab.global_entries <= maxEntries
    for ti in tab.topics.values():
        assert len(ti.entries) <= maxEntriesPerTopic


@fuzz_settings(60)
@given(topics_st, st.lists(u32, max_size=14), u32, u64, st.integers(0, 2 ** 62))
def test_fuzz_absurd_ticket_times_register_nothing_early(topics, waits, serial, issue, now):
    """A ticket whose window is not now never registers, whatever its numbers."""
    if not topics or len(waits) != len(topics):
        return
    tab = TopicTable(None, SELF.tab.self, FakeClock(now))
    node = Node(id=NodeID(b"\x03" * 64))
    ok = tab.use_ticket(node, serial, topics, 0, issue, waits)
    rel = now // mclock.Second - (issue + waits[0])
    assert ok == (-1 <= rel <= 11)


@fuzz_settings(60)
@given(topics_st, topics_st, st.lists(u32, max_size=14), st.booleans())
def test_fuzz_pong_to_ticket(pinged, hashed, waits, same):
    p = IngressPacket(data=Pong(topic_hash=rlp_hash(pinged if same else hashed), wait_periods=waits), raw_data=b"x")
    try:
        t = pong_to_ticket(10 * mclock.Hour, pinged, Node(), p)
    except ValueError:
        return
    assert isinstance(t, Ticket)
    assert len(t.reg_time) == len(t.topics) == len(pinged)
    for rt, w in zip(t.reg_time, waits):
        assert rt - t.issue_time == w * mclock.Second
