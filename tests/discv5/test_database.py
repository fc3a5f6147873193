"""Tests for p2p.discv5.database (twins of geth's p2p/discv5/database_test.go, then extras)."""

import glob
import os
import random
import threading
import time

import plyvel
import pytest

from p2p.discv5 import database as dbmod
from p2p.discv5.database import (
    make_key, new_node_db, nodeDBNodeExpiration, nodeDBTopicRegTickets, nodeDBTopicRegTicketsTime,
    split_key,
)
from p2p.discv5.node import NodeID, must_hex_id, new_node, node_fields
from p2p.discv5.udp import RpcEndpoint, Version

TAIL = ("d9d65c4552b5eb43d5ad55a2ee3f56c6cbc1c64a5c8d659f51fcd51bace243"
        "51232b8d7821617d2b29b54b81cdefb9b3e9c37d7fd5f63270bcc9e1a6f6a439")


def hid(prefix):
    return must_hex_id("0x" + prefix + TAIL)


nodeDBKeyTests = [
    (NodeID(), "version", bytes([0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e])),
    (hid("1d"), ":discover",
     bytes([0x6e, 0x3a]) + bytes(hid("1d")) + bytes([0x3a, 0x64, 0x69, 0x73, 0x63, 0x6f, 0x76, 0x65, 0x72])),
]


def test_node_db_keys():
    for i, (id, field, key) in enumerate(nodeDBKeyTests):
        assert make_key(id, field) == key, "make test %d" % i
        sid, sfield = split_key(key)
        assert sid == id, "split test %d: id mismatch" % i
        assert sfield == field, "split test %d: field mismatch" % i


nodeDBInt64Tests = [(b"0x01", 1), (b"0x02", 2), (b"0x03", 3)]


@pytest.fixture
def memdb():
    db = new_node_db("", Version, NodeID())
    yield db
    db.close()


def test_node_db_int64(memdb):
    tests = nodeDBInt64Tests
    for i in range(len(tests)):
        memdb.store_int64(tests[i][0], tests[i][1])
        for j in range(len(tests)):
            num = memdb.fetch_int64(tests[j][0])
            if j <= i:
                assert num == tests[j][1], "test %d, item %d" % (i, j)
            else:
                assert num == 0, "test %d, item %d" % (i, j)


def test_node_db_fetch_store(memdb):
    node = new_node(hid("1d"), bytes([192, 168, 0, 1]), 30303, 30303)
    inst = time.time()
    num = 314

    assert memdb.last_ping(node.id) == 0
    memdb.update_last_ping(node.id, inst)
    assert memdb.last_ping(node.id) == int(inst)

    assert memdb.last_pong(node.id) == 0
    memdb.update_last_pong(node.id, inst)
    assert memdb.last_pong(node.id) == int(inst)

    assert memdb.find_fails(node.id) == 0
    memdb.update_find_fails(node.id, num)
    assert memdb.find_fails(node.id) == num

    assert memdb.node(node.id) is None
    memdb.update_node(node)
    stored = memdb.node(node.id)
    assert stored is not None
    assert node_fields(stored) == node_fields(node)


def _seed_query_nodes(now):
    return [
        # This one should not be in the result set because its last pong time is too far in the past.
        (new_node(hid("84"), bytes([127, 0, 0, 3]), 30303, 30303), now - 3 * 3600),
        # This one shouldn't be in the result set because its id is the same as the local node's.
        (new_node(hid("57"), bytes([127, 0, 0, 3]), 30303, 30303), now - 4),
        # These should be in the result set.
        (new_node(hid("22"), bytes([127, 0, 0, 1]), 30303, 30303), now - 2),
        (new_node(hid("44"), bytes([127, 0, 0, 2]), 30303, 30303), now - 3),
        (new_node(hid("e2"), bytes([127, 0, 0, 3]), 30303, 30303), now - 1),
    ]


def test_node_db_seed_query():
    now = time.time()
    seeds_in = _seed_query_nodes(now)
    db = new_node_db("", Version, seeds_in[1][0].id)
    try:
        for node, pong in seeds_in:
            db.update_node(node)
            db.update_last_pong(node.id, pong)
        seeds = db.query_seeds(len(seeds_in) * 2, 3600.0, now=now)
        have = {s.id for s in seeds}
        want = {n.id for n, _ in seeds_in[2:]}
        assert len(seeds) == len(want)
        assert have == want
    finally:
        db.close()


def test_node_db_persistency(tmp_path):
    path = str(tmp_path / "database")
    test_key, test_int = b"somekey", 314

    db = new_node_db(path, Version, NodeID())
    db.store_int64(test_key, test_int)
    db.close()

    db = new_node_db(path, Version, NodeID())
    assert db.fetch_int64(test_key) == test_int
    db.close()

    db = new_node_db(path, Version + 1, NodeID())
    assert db.fetch_int64(test_key) == 0
    db.close()


def _expiration_nodes(now):
    return [
        (new_node(hid("01"), bytes([127, 0, 0, 1]), 30303, 30303), now - nodeDBNodeExpiration + 60, False),
        (new_node(hid("02"), bytes([127, 0, 0, 2]), 30303, 30303), now - nodeDBNodeExpiration - 60, True),
    ]


def test_node_db_expiration(memdb):
    now = time.time()
    nodes = _expiration_nodes(now)
    for node, pong, _ in nodes:
        memdb.update_node(node)
        memdb.update_last_pong(node.id, pong)
    memdb.expire_nodes(now=now)
    for i, (node, _, exp) in enumerate(nodes):
        got = memdb.node(node.id)
        assert (got is None) == exp, "node %d: expiration mismatch" % i


def test_node_db_self_expiration():
    now = time.time()
    nodes = _expiration_nodes(now)
    self_id = next(n.id for n, _, exp in nodes if not exp)
    db = new_node_db("", Version, self_id)
    try:
        for node, pong, _ in nodes:
            db.update_node(node)
            db.update_last_pong(node.id, pong)
        db.expire_nodes(now=now)
        assert db.node(self_id) is None, "self not evacuated"
    finally:
        db.close()


# ---------------------------------------------------------------------------
# Extras


def test_local_endpoint(memdb):
    id = hid("01")
    assert memdb.local_endpoint(id) is None
    ep = RpcEndpoint(new_node(id, "10.1.2.3", 1, 1).ip, 30301, 30303)
    memdb.update_local_endpoint(id, ep)
    assert memdb.local_endpoint(id) == ep
    # geth's rlp layout: [ip, udp, tcp]
    assert memdb.lvl.get(make_key(id, ":discover:localendpoint")) == bytes.fromhex("cb840a01020382765d82765f")
    memdb.lvl.put(make_key(id, ":discover:localendpoint"), b"\xc3\x80\x80")  # too few fields
    assert memdb.local_endpoint(id) is None


def test_topic_reg_tickets(memdb):
    id = hid("01")
    assert memdb.fetch_topic_reg_tickets(id) == (0, 0)
    memdb.update_topic_reg_tickets(id, 7, 2 ** 32 - 1)
    assert memdb.fetch_topic_reg_tickets(id) == (7, 2 ** 32 - 1)
    key = make_key(id, nodeDBTopicRegTickets)
    assert key == b"n:" + bytes(id) + b":tickets"
    assert memdb.lvl.get(key) == bytes.fromhex("00000007ffffffff")
    memdb.lvl.put(key, b"\x01\x02\x03")  # not 8 bytes: as if none
    assert memdb.fetch_topic_reg_tickets(id) == (0, 0)


# departure: discv5-ticket-counters-expire: the test
def test_topic_reg_tickets_expire(memdb):
    """Ticket counters last nodeDBNodeExpiration after their last write, then the expirer drops them.

    v5 writes no node records, so geth's expirer never looks at these keys: every
    identity that ever registered would leave one for good.
    """
    now = 1_700_000_000
    old, recent, legacy, other = hid("01"), hid("02"), hid("03"), hid("04")
    memdb.update_topic_reg_tickets(old, 3, 2, now=now - nodeDBNodeExpiration - 10)
    memdb.update_topic_reg_tickets(recent, 5, 4, now=now - 60)
    memdb.lvl.put(make_key(legacy, nodeDBTopicRegTickets), bytes(8))  # written without a time
    n = new_node(other, "10.0.0.4", 30303, 30303)
    memdb.update_node(n)
    memdb.update_last_pong(other, now - 10)
    memdb.expire_nodes(now=now)
    assert memdb.fetch_topic_reg_tickets(old) == (0, 0)
    assert memdb.lvl.get(make_key(old, nodeDBTopicRegTicketsTime)) is None
    assert memdb.lvl.get(make_key(legacy, nodeDBTopicRegTickets)) is None
    assert memdb.fetch_topic_reg_tickets(recent) == (5, 4)
    assert memdb.node(other) is not None  # the rest is as before
    memdb.expire_nodes(now=now + nodeDBNodeExpiration)
    assert memdb.fetch_topic_reg_tickets(recent) == (0, 0)
    assert [k for k in memdb.lvl.iterator(include_value=False) if b":tickets" in k] == []


def test_node_record_layout(memdb):
    n = new_node(hid("01"), "10.0.0.1", 30301, 30303)
    memdb.update_node(n)
    assert memdb.lvl.get(make_key(n.id, ":discover")) == (
        bytes.fromhex("f84d840a00000182765d82765fb840") + bytes(n.id))
    n6 = new_node(hid("02"), "2001:db8::1", 1, 0)
    memdb.update_node(n6)
    assert node_fields(memdb.node(n6.id)) == node_fields(n6)
    ninc = new_node(hid("03"), None, 0, 0)
    memdb.update_node(ninc)
    assert memdb.node(ninc.id).incomplete()


def test_bad_node_records_are_skipped(memdb, caplog):
    id = hid("01")
    memdb.lvl.put(make_key(id, ":discover"), b"\xc3\x01\x02\x03")  # 3 items only
    assert memdb.node(id) is None
    memdb.lvl.put(make_key(id, ":discover"), b"\xff\xff")  # not RLP
    assert memdb.node(id) is None
    good = new_node(hid("02"), "127.0.0.1", 5, 5)
    memdb.update_node(good)
    memdb.lvl.put(make_key(good.id, ":discover") + b"x", b"")  # another field: skipped
    trailing = new_node(hid("03"), "127.0.0.1", 6, 6)
    memdb.update_node(trailing)
    memdb.lvl.put(make_key(trailing.id, ":discover"), memdb.lvl.get(make_key(trailing.id, ":discover")) + b"\x00")
    assert memdb.node(trailing.id) is None  # geth's DecodeBytes: one value only
    seeds = memdb.query_seeds(4, 1e12, now=0, rand=random.Random(2))
    assert [s.id for s in seeds] == [good.id]


def test_delete_node_removes_all_fields(memdb):
    a = new_node(hid("01"), "127.0.0.1", 1, 2)
    b = new_node(hid("02"), "127.0.0.2", 1, 2)
    for n in (a, b):
        memdb.update_node(n)
        memdb.update_last_ping(n.id, 100)
        memdb.update_last_pong(n.id, 200)
        memdb.update_find_fails(n.id, 3)
        memdb.update_topic_reg_tickets(n.id, 1, 1)
    memdb.delete_node(a.id)
    assert memdb.node(a.id) is None
    assert (memdb.last_ping(a.id), memdb.last_pong(a.id), memdb.find_fails(a.id)) == (0, 0, 0)
    assert memdb.fetch_topic_reg_tickets(a.id) == (0, 0)
    assert memdb.node(b.id) is not None and memdb.last_pong(b.id) == 200


def test_memory_db_removed_on_close():
    db = new_node_db("", Version, NodeID())
    tmp = db._tmpdir
    assert tmp and os.path.isdir(tmp)
    db.close()
    assert not os.path.exists(tmp)
    db.close()  # idempotent
    assert db.node(hid("01")) is None  # reads after close: nothing, no crash
    assert db.fetch_topic_reg_tickets(hid("01")) == (0, 0)


def test_expirer_thread_stops_on_close():
    db = new_node_db("", Version, NodeID())
    db.ensure_expirer()
    db.ensure_expirer()  # only one thread
    assert [t.name for t in threading.enumerate()].count("discv5.nodeDB.expirer") == 1
    t = db._expirer_thread
    db.close()
    assert not t.is_alive()


def test_corrupted_database_is_recovered(tmp_path):
    # geth opens a corrupted LevelDB with RecoverFile; here plyvel.repair_db does it.
    path = str(tmp_path / "db")
    db = new_node_db(path, Version, NodeID())
    n = new_node(hid("01"), "127.0.0.1", 30303, 30303)
    db.update_node(n)
    db.close()
    manifest = glob.glob(os.path.join(path, "MANIFEST-*"))[0]
    with open(manifest, "wb") as f:
        f.write(b"garbage" * 10)
    with pytest.raises(plyvel.CorruptionError):
        plyvel.DB(path).close()
    db = new_node_db(path, Version, NodeID())
    try:
        assert node_fields(db.node(n.id)) == node_fields(n)
    finally:
        db.close()


def test_v5_and_v4_databases_are_separate_types():
    # The v5 package keeps its own database and node type, as in geth.
    from p2p.discover import database as v4db
    assert dbmod.NodeDB is not v4db.NodeDB
