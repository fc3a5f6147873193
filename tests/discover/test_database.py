"""Tests for p2p.discover.database (twins of geth's database_test.go, plus extras)."""

import ipaddress
import os
import random
import threading
import time

import plyvel
import pytest
import rlp
from hypothesis import given, settings, strategies as st

from p2p.discover import database
from p2p.discover.database import (
    decode_node, encode_node, make_key, new_node_db, nodeDBNodeExpiration,
    nodeDBVersion, put_varint, split_key, varint,
)
from p2p.discover.node import NodeID, must_hex_id, new_node

TAIL = ("d9d65c4552b5eb43d5ad55a2ee3f56c6cbc1c64a5c8d659f51fcd51bace243"
        "51232b8d7821617d2b29b54b81cdefb9b3e9c37d7fd5f63270bcc9e1a6f6a439")


def hid(prefix):
    return must_hex_id("0x" + prefix + TAIL)


NODE_DB_KEY_TESTS = [
    (NodeID(), "version", bytes([0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e])),
    (hid("1d"), ":v4",
     bytes([0x6e, 0x3a]) + bytes(hid("1d")) + bytes([0x3a, 0x76, 0x34])),
]


def test_node_db_keys():
    for i, (id, field, key) in enumerate(NODE_DB_KEY_TESTS):
        assert make_key(id, field) == key, "make test %d" % i
        sid, sfield = split_key(key)
        assert sid == id, "split test %d: id mismatch" % i
        assert sfield == field, "split test %d: field mismatch" % i


@pytest.fixture
def memdb():
    db = new_node_db("", nodeDBVersion, NodeID())
    yield db
    db.close()


@pytest.fixture
def memdb_factory():
    """Opens in-memory databases (under the knobs set at the time), closed at the end."""
    dbs = []

    def open_db():
        dbs.append(new_node_db("", nodeDBVersion, NodeID()))
        return dbs[-1]
    yield open_db
    for db in dbs:
        db.close()


def test_node_db_int64(memdb):
    tests = [(b"\x01", 1), (b"\x02", 2), (b"\x03", 3)]
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

    ip = node.ip
    assert memdb.last_ping_received(node.id, ip) == 0
    memdb.update_last_ping_received(node.id, ip, inst)
    assert memdb.last_ping_received(node.id, ip) == int(inst)

    assert memdb.last_pong_received(node.id, ip) == 0
    memdb.update_last_pong_received(node.id, ip, inst)
    assert memdb.last_pong_received(node.id, ip) == int(inst)

    assert memdb.find_fails(node.id, ip) == 0
    memdb.update_find_fails(node.id, ip, num)
    assert memdb.find_fails(node.id, ip) == num

    assert memdb.node(node.id) is None
    memdb.update_node(node)
    stored = memdb.node(node.id)
    assert stored is not None
    assert stored == node
    assert (stored.ip, stored.udp, stored.tcp, stored.id, stored.sha) == \
        (node.ip, node.udp, node.tcp, node.id, node.sha)


def _seed_query_nodes(now):
    return [
        # too old a pong
        (new_node(hid("84"), bytes([127, 0, 0, 3]), 30303, 30303), now - 3 * 3600),
        # the local node
        (new_node(hid("57"), bytes([127, 0, 0, 3]), 30303, 30303), now - 4),
        # these should be returned
        (new_node(hid("22"), bytes([127, 0, 0, 1]), 30303, 30303), now - 2),
        (new_node(hid("44"), bytes([127, 0, 0, 2]), 30303, 30303), now - 3),
        (new_node(hid("e2"), bytes([127, 0, 0, 3]), 30303, 30303), now - 1),
    ]


def test_node_db_seed_query():
    now = time.time()
    seeds_in = _seed_query_nodes(now)
    db = new_node_db("", nodeDBVersion, seeds_in[1][0].id)
    try:
        for node, pong in seeds_in:
            db.update_node(node)
            db.update_last_pong_received(node.id, node.ip, pong)
        seeds = db.query_seeds(len(seeds_in) * 2, 3600.0, now=now, rand=random.Random(1))
        have = {s.id for s in seeds}
        want = {n.id for n, _ in seeds_in[2:]}
        assert len(seeds) == len(want)
        assert have == want
    finally:
        db.close()


def test_node_db_persistency(tmp_path):
    path = str(tmp_path / "database")
    test_key, test_int = b"somekey", 314

    db = new_node_db(path, nodeDBVersion, NodeID())
    db.store_int64(test_key, test_int)
    db.close()

    db = new_node_db(path, nodeDBVersion, NodeID())
    assert db.fetch_int64(test_key) == test_int
    db.close()

    db = new_node_db(path, nodeDBVersion + 1, NodeID())
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
        memdb.update_last_pong_received(node.id, node.ip, pong)
    memdb.expire_nodes(now=now)
    for i, (node, _, exp) in enumerate(nodes):
        got = memdb.node(node.id)
        assert (got is None) == exp, "node %d: expiration mismatch" % i


def test_node_db_self_expiration():
    now = time.time()
    nodes = _expiration_nodes(now)
    self_id = next(n.id for n, _, exp in nodes if not exp)
    db = new_node_db("", nodeDBVersion, self_id)
    try:
        for node, pong, _ in nodes:
            db.update_node(node)
            db.update_last_pong_received(node.id, node.ip, pong)
        db.expire_nodes(now=now)
        assert db.node(self_id) is None, "self not evacuated"
    finally:
        db.close()


# ---------------------------------------------------------------------------
# Extras


def test_memory_db_removed_on_close():
    db = new_node_db("", nodeDBVersion, NodeID())
    tmp = db._tmpdir
    assert tmp and os.path.isdir(tmp)
    db.close()
    assert not os.path.exists(tmp)
    db.close()  # idempotent
    assert db.node(hid("01")) is None  # reads after close: no crash


def test_expirer_thread_stops_on_close():
    db = new_node_db("", nodeDBVersion, NodeID())
    db.ensure_expirer()
    db.ensure_expirer()  # only one thread
    names = [t.name for t in threading.enumerate() if t.name == "discover.nodeDB.expirer"]
    assert len(names) == 1
    t = db._expirer_thread
    db.close()
    assert not t.is_alive()


def test_delete_node_removes_all_fields(memdb):
    a = new_node(hid("01"), "127.0.0.1", 1, 2)
    b = new_node(hid("02"), "127.0.0.2", 1, 2)
    for n in (a, b):
        memdb.update_node(n)
        memdb.update_last_ping_received(n.id, n.ip, 100)
        memdb.update_last_pong_received(n.id, n.ip, 200)
        memdb.update_find_fails(n.id, n.ip, 3)
    memdb.delete_node(a.id)
    assert memdb.node(a.id) is None
    assert memdb.last_ping_received(a.id, a.ip) == 0
    assert memdb.last_pong_received(a.id, a.ip) == 0
    assert memdb.find_fails(a.id, a.ip) == 0
    assert memdb.node(b.id) == b
    assert memdb.last_pong_received(b.id, b.ip) == 200
    assert memdb.find_fails(b.id, b.ip) == 3


def test_has_bond(memdb):
    id, ip = hid("01"), "127.0.0.1"
    assert not memdb.has_bond(id, ip, now=1000000.0)
    memdb.update_last_pong_received(id, ip, 1000000.0)
    assert memdb.has_bond(id, ip, now=1000000.0 + nodeDBNodeExpiration - 1)
    assert not memdb.has_bond(id, ip, now=1000000.0 + nodeDBNodeExpiration + 1)
    # The endpoint proof is for one address: the same key at another IP is not bonded.
    assert not memdb.has_bond(id, "127.0.0.2", now=1000000.0 + 1)


def test_node_rlp_layout_ipv4_ipv6_incomplete():
    n4 = new_node(hid("01"), "10.0.0.1", 30301, 30303)
    assert rlp.decode(encode_node(n4)) == [bytes([10, 0, 0, 1]), (30301).to_bytes(2, "big"),
                                           (30303).to_bytes(2, "big"), bytes(n4.id)]
    n6 = new_node(hid("02"), "2001:db8::1", 1, 0)
    assert decode_node(encode_node(n6)) == n6
    assert len(rlp.decode(encode_node(n6))[0]) == 16
    assert rlp.decode(encode_node(n6))[2] == b""
    ninc = new_node(hid("03"), None, 0, 0)
    back = decode_node(encode_node(ninc))
    assert back.incomplete() and back == ninc


def test_bad_node_record_is_dropped(memdb):
    id = hid("01")
    memdb.lvl.put(make_key(id, ":discover"), b"\xc3\x01\x02\x03")  # 3 items only
    assert memdb.node(id) is None
    memdb.lvl.put(make_key(id, ":discover"), b"\xff\xff")  # not RLP
    assert memdb.node(id) is None
    good = new_node(hid("02"), "127.0.0.1", 5, 5)
    memdb.update_node(good)
    seeds = memdb.query_seeds(4, 1e12, now=0, rand=random.Random(2))
    assert seeds == [good]


def test_version_key_and_corrupt_version(tmp_path):
    path = str(tmp_path / "db")
    db = new_node_db(path, 7, NodeID())
    assert db.lvl.get(b"version") == put_varint(7)
    db.update_node(new_node(hid("01"), "127.0.0.1", 1, 1))
    db.close()
    raw = plyvel.DB(path)
    raw.put(b"version", b"garbage")
    raw.close()
    db = new_node_db(path, 7, NodeID())
    try:
        assert db.node(hid("01")) is None  # wiped
        assert db.lvl.get(b"version") == put_varint(7)
    finally:
        db.close()


def test_query_seeds_max_count(memdb):
    now = 10_000_000
    rng = random.Random(3)
    ids = []
    for i in range(30):
        id = NodeID(bytes(rng.getrandbits(8) for _ in range(64)))
        ids.append(id)
        memdb.update_node(new_node(id, "127.0.0.1", 1000 + i, 1000 + i))
        memdb.update_last_pong_received(id, "127.0.0.1", now)
    seeds = memdb.query_seeds(10, 60, now=now, rand=rng)
    assert 0 < len(seeds) <= 10
    assert len({s.id for s in seeds}) == len(seeds)
    assert all(s.id in ids for s in seeds)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1))
def test_varint_roundtrip(n):
    b = put_varint(n)
    assert varint(b) == (n, len(b))


def test_varint_go_vectors():
    # values from Go's binary.PutVarint
    assert put_varint(0) == b"\x00"
    assert put_varint(-1) == b"\x01"
    assert put_varint(1) == b"\x02"
    assert put_varint(63) == b"\x7e"
    assert put_varint(-65) == b"\x81\x01"
    assert put_varint(314) == b"\xf4\x04"
    assert varint(b"") == (0, 0)
    assert varint(b"\x80")[1] == 0


def test_corrupted_database_is_recovered(tmp_path):
    # geth opens a corrupted LevelDB with RecoverFile; here plyvel.repair_db does it.
    import glob
    path = str(tmp_path / "db")
    db = new_node_db(path, nodeDBVersion, NodeID())
    n = new_node(hid("01"), "127.0.0.1", 30303, 30303)
    db.update_node(n)
    db.close()
    manifest = glob.glob(os.path.join(path, "MANIFEST-*"))[0]
    with open(manifest, "wb") as f:
        f.write(b"garbage" * 10)
    with pytest.raises(plyvel.CorruptionError):
        plyvel.DB(path).close()
    db = new_node_db(path, nodeDBVersion, NodeID())
    try:
        assert db.node(n.id) == n
    finally:
        db.close()


def test_node_db_item_keys_per_ip():
    """geth 1.9's layout: n:<id>:v4:<16-byte ip>:<field>; IPv4 is stored IPv4-mapped."""
    import ipaddress

    from p2p.discover.database import node_item_key, split_node_item_key, local_item_key

    id = hid("1d")
    key = node_item_key(id, "127.0.0.1", "lastpong")
    assert key == b"n:" + bytes(id) + b":v4:" + bytes(10) + b"\xff\xff\x7f\x00\x00\x01" + b":lastpong"
    assert split_node_item_key(key) == (id, ipaddress.ip_address("127.0.0.1"), "lastpong")
    key6 = node_item_key(id, "::1", "findfail")
    assert split_node_item_key(key6) == (id, ipaddress.ip_address("::1"), "findfail")
    assert split_node_item_key(make_key(id, ":v4")) == (id, None, "")
    assert local_item_key(id, "seq") == b"local:" + bytes(id) + b":seq"


def test_node_db_version_bump_wipes_old_layout(tmp_path):
    """A database of the 1.8 layout (version 5) is wiped when opened, as geth does on a version change."""
    path = str(tmp_path / "db")
    old = new_node_db(path, 5, NodeID())
    old.lvl.put(b"n:" + bytes(hid("01")) + b":discover:lastpong", put_varint(123))
    old.close()
    db = new_node_db(path, nodeDBVersion, NodeID())
    try:
        assert nodeDBVersion > 5
        assert list(db.lvl.iterator(include_value=False)) == [b"version"]
    finally:
        db.close()


def test_node_db_expiration_per_ip(memdb):
    """A node stays while a pong from any of its addresses is recent."""
    now = time.time()
    n = new_node(hid("01"), "127.0.0.1", 30303, 30303)
    memdb.update_node(n)
    memdb.update_last_pong_received(n.id, "127.0.0.1", now - 2 * nodeDBNodeExpiration)
    memdb.update_last_pong_received(n.id, "127.0.0.2", now - 10)
    memdb.expire_nodes(now=now)
    assert memdb.node(n.id) == n
    memdb.update_last_pong_received(n.id, "127.0.0.2", now - 2 * nodeDBNodeExpiration)
    memdb.expire_nodes(now=now)
    assert memdb.node(n.id) is None


def _items(db, id):
    return sorted(db.lvl.iterator(prefix=make_key(id, ""), include_value=False))


def test_node_db_expiration_ping_only(memdb):
    """An ID that only ever pinged (no node record, no pong) goes once its last ping is
    older than nodeDBNodeExpiration; before that it stays. Old main (and geth, which
    keeps any ID without a pong) never removed it."""
    now = time.time()
    young, old = hid("01"), hid("02")
    memdb.update_last_ping_received(young, "127.0.0.1", now - nodeDBNodeExpiration + 60)
    memdb.update_last_ping_received(old, "127.0.0.1", now - nodeDBNodeExpiration - 60)
    memdb.update_last_ping_received(old, "127.0.0.2", now - 2 * nodeDBNodeExpiration)
    memdb.expire_nodes(now=now)
    assert memdb.last_ping_received(young, "127.0.0.1") > 0
    assert _items(memdb, old) == []
    memdb.expire_nodes(now=now + 120)
    assert _items(memdb, young) == []


def test_node_db_expiration_without_node_record(memdb):
    """An ID with a pong but no node record (bonded, never in the table for long) goes
    with all its items once its pong is old (geth 1.9.0's expireNodes); old main only
    looked at IDs with a node record."""
    now = time.time()
    id = hid("01")
    memdb.update_last_ping_received(id, "127.0.0.1", now - 10)
    memdb.update_last_pong_received(id, "127.0.0.1", now - nodeDBNodeExpiration - 60)
    memdb.update_find_fails(id, "127.0.0.1", 2)
    memdb.expire_nodes(now=now)
    assert _items(memdb, id) == []


def test_node_db_expiration_old_address(memdb):
    """A node with a recent pong keeps its record and that address; the items of an
    address whose pong is old, or that has neither a pong nor a recent ping (a findnode
    failure count only), go (geth 1.9.0 for the first, departure nodedb-expire-unponged
    for the second)."""
    now = time.time()
    n = new_node(hid("01"), "127.0.0.1", 30303, 30303)
    memdb.update_node(n)
    memdb.update_last_pong_received(n.id, "127.0.0.1", now - 10)
    memdb.update_last_ping_received(n.id, "127.0.0.1", now - 10)
    memdb.update_last_pong_received(n.id, "127.0.0.2", now - nodeDBNodeExpiration - 60)
    memdb.update_last_ping_received(n.id, "127.0.0.2", now - 10)
    memdb.update_find_fails(n.id, "127.0.0.3", 4)
    memdb.update_last_ping_received(n.id, "127.0.0.4", now - 10)  # pinged lately, no pong yet
    memdb.expire_nodes(now=now)
    assert memdb.node(n.id) == n
    assert memdb.last_pong_received(n.id, "127.0.0.1") > 0
    assert memdb.last_ping_received(n.id, "127.0.0.1") > 0
    assert memdb.last_pong_received(n.id, "127.0.0.2") == 0
    assert memdb.last_ping_received(n.id, "127.0.0.2") == 0
    assert memdb.find_fails(n.id, "127.0.0.3") == 0
    assert memdb.last_ping_received(n.id, "127.0.0.4") > 0
    assert len(_items(memdb, n.id)) == 4


def test_node_db_expiration_keeps_other_keys(memdb):
    """The expirer touches only node items (our record's seq stays); node keys it
    cannot parse do not stop it, and go with the rest of their ID."""
    now = time.time()
    memdb.store_local_seq(hid("01"), 5)
    odd = b"n:" + bytes(hid("02")) + b":v4:short"
    memdb.lvl.put(odd, b"x")
    memdb.lvl.put(b"n:tiny", b"x")
    memdb.update_last_ping_received(hid("03"), "127.0.0.1", now - 2 * nodeDBNodeExpiration)
    memdb.expire_nodes(now=now)
    assert memdb.local_seq(hid("01")) == 5
    assert _items(memdb, hid("03")) == []
    assert memdb.lvl.get(odd) is None and memdb.lvl.get(b"n:tiny") is None


def test_local_seq(memdb):
    id = hid("01")
    assert memdb.local_seq(id) == 0
    memdb.store_local_seq(id, 7)
    assert memdb.local_seq(id) == 7


class _CountingLvl:
    """A plyvel DB that counts puts (plyvel's own objects take no new attributes)."""

    def __init__(self, lvl):
        self.lvl = lvl
        self.puts = 0

    def get(self, key):
        return self.lvl.get(key)

    def put(self, key, value):
        self.puts += 1
        self.lvl.put(key, value)


def test_last_ping_written_once_per_second(memdb):
    # Python-only: a second ping within the same second stores nothing new, so it is
    # not written again; a later second, or an earlier one, is.
    id, ip = hid("1d"), ipaddress.ip_address("10.0.0.1")
    memdb.lvl = counting = _CountingLvl(memdb.lvl)
    try:
        memdb.update_last_ping_received(id, ip, 1000.2)
        memdb.update_last_ping_received(id, ip, 1000.9)
        assert counting.puts == 1
        assert memdb.last_ping_received(id, ip) == 1000
        memdb.update_last_ping_received(id, ip, 1001.0)
        memdb.update_last_ping_received(id, ip, 999.0)  # geth stores what it is given
        assert counting.puts == 3
        assert memdb.last_ping_received(id, ip) == 999
        # Another address of the same ID has its own key.
        memdb.update_last_ping_received(id, ipaddress.ip_address("10.0.0.2"), 999.0)
        assert counting.puts == 4
    finally:
        memdb.lvl = counting.lvl


# -- the bond limit per address block (departure nodedb-bond-ip-limit) ------------------

LIMIT = 4


def _ids(n, seed=0):
    rng = random.Random(seed)
    return [NodeID(rng.getrandbits(512).to_bytes(64, "big")) for _ in range(n)]


@pytest.fixture
def limited(monkeypatch):
    """A small limit; the databases opened under it see it (it is read at open)."""
    monkeypatch.setattr(database, "nodeDBBondIPLimit", LIMIT)
    return LIMIT


def _stored_ids(db):
    return {key[2:66] for key in db.lvl.iterator(prefix=b"n:", include_value=False)}


def test_bond_limit_per_ipv4_slash24(limited, memdb_factory):
    """At most LIMIT IDs get per-address items in one /24: further IDs' ping, pong and
    findfail writes return False and store nothing; the admitted IDs keep writing (at
    other addresses of the /24 too); another /24 has its own LIMIT."""
    db = memdb_factory()
    ids = _ids(LIMIT + 3)
    now = int(time.time())
    for i, id in enumerate(ids[:LIMIT]):
        assert db.update_last_pong_received(id, "203.0.113.%d" % i, now)
    for id in ids[LIMIT:]:
        assert not db.update_last_pong_received(id, "203.0.113.200", now)
        assert not db.update_last_ping_received(id, "203.0.113.200", now)
        assert not db.update_find_fails(id, "203.0.113.200", 1)
        assert not db.has_bond(id, "203.0.113.200")
    assert _stored_ids(db) == {bytes(id) for id in ids[:LIMIT]}
    # Admitted IDs are not limited: updates, and another address in the same /24.
    assert db.update_last_ping_received(ids[0], "203.0.113.0", now + 1)
    assert db.update_last_pong_received(ids[0], "203.0.113.99", now + 1)
    assert db.update_find_fails(ids[1], "203.0.113.1", 2)
    assert db.has_bond(ids[0], "203.0.113.99")
    # Another /24 (and the same IDs there) is counted apart.
    for id in ids[LIMIT:]:
        assert db.update_last_pong_received(id, "203.0.114.1", now)
    assert db.has_bond(ids[LIMIT], "203.0.114.1")
    assert not db.has_bond(ids[LIMIT], "203.0.113.1")


def test_bond_limit_ipv6_slash56(limited, memdb_factory):
    """IPv6 addresses are limited per /56: two /64s of one /56 share the limit,
    the next /56 has its own."""
    db = memdb_factory()
    ids = _ids(LIMIT + 1)
    now = int(time.time())
    for i, id in enumerate(ids[:LIMIT]):
        assert db.update_last_pong_received(id, "2001:db8:0:%x::1" % i, now)  # 4 /64s of 2001:db8::/56
    assert not db.update_last_pong_received(ids[LIMIT], "2001:db8:0:ff::1", now)
    assert db.update_last_pong_received(ids[LIMIT], "2001:db8:0:100::1", now)  # the next /56


def test_bond_limit_exempts_lan(limited, monkeypatch, memdb_factory):
    """LAN and loopback addresses are not limited (as the table's IP limits), unless
    nodeDBBondLimitLAN is set when the database is opened."""
    ids = _ids(LIMIT + 2)
    now = int(time.time())
    db = memdb_factory()
    for id in ids:
        assert db.update_last_pong_received(id, "127.0.0.1", now)
        assert db.update_last_pong_received(id, "192.168.1.7", now)
    assert db._bonds == {}
    monkeypatch.setattr(database, "nodeDBBondLimitLAN", True)
    db = memdb_factory()
    assert [db.update_last_pong_received(id, "127.0.0.1", now) for id in ids] == \
        [True] * LIMIT + [False] * 2


def test_bond_limit_index_rebuilt_at_open(limited, tmp_path):
    """A reopened database reads its blocks back: the limit still holds for new IDs,
    admitted IDs still write; entries of LAN and addressless nodes are not indexed."""
    path = str(tmp_path / "db")
    ids = _ids(LIMIT + 1)
    now = int(time.time())
    db = new_node_db(path, nodeDBVersion, NodeID())
    try:
        for id in ids[:LIMIT]:
            assert db.update_last_pong_received(id, "198.51.100.1", now)
            db.update_node(new_node(id, ipaddress.ip_address("198.51.100.1"), 30303, 30303))
        db.update_last_pong_received(ids[LIMIT], "10.0.0.1", now)
        db.update_last_pong_received(ids[LIMIT], None, now)
        db.store_local_seq(ids[0], 5)
        before = {k: set(v) for k, v in db._bonds.items()}
    finally:
        db.close()
    db = new_node_db(path, nodeDBVersion, NodeID())
    try:
        assert db._bonds == before
        assert list(db._bonds.values()) == [{bytes(id) for id in ids[:LIMIT]}]
        assert not db.update_last_ping_received(ids[LIMIT], "198.51.100.2", now)
        assert db.update_last_ping_received(ids[0], "198.51.100.2", now)
    finally:
        db.close()


def test_bond_limit_freed_by_expiry_and_delete(limited, memdb_factory):
    """The expirer's and delete_node's deletions free their IDs' places; an ID keeps
    its place while it has an item left in the block (a second address there)."""
    db = memdb_factory()
    ids = _ids(LIMIT + 2)
    now = int(time.time())
    old = now - nodeDBNodeExpiration - 60
    assert db.update_last_pong_received(ids[0], "203.0.113.1", old)
    assert db.update_last_pong_received(ids[1], "203.0.113.2", old)
    assert db.update_last_pong_received(ids[1], "203.0.113.3", now)  # keeps ids[1] in
    for id in ids[2:LIMIT]:
        assert db.update_last_pong_received(id, "203.0.113.4", now)
    assert not db.update_last_pong_received(ids[LIMIT], "203.0.113.9", now)
    db.expire_nodes(now=now)
    assert db.last_pong_received(ids[1], "203.0.113.2") == 0
    assert db.has_bond(ids[1], "203.0.113.3")
    assert db.update_last_pong_received(ids[LIMIT], "203.0.113.9", now)  # ids[0]'s place
    assert not db.update_last_pong_received(ids[LIMIT + 1], "203.0.113.9", now)
    db.delete_node(ids[1])
    assert db.update_last_pong_received(ids[LIMIT + 1], "203.0.113.9", now)  # ids[1]'s place
    db.expire_nodes(now=now + 2 * nodeDBNodeExpiration)
    assert db._bonds == {} and _stored_ids(db) == set()


def test_bond_limit_concurrent_writers(limited, memdb_factory):
    """Writers on several threads never get more than LIMIT IDs into a block."""
    db = memdb_factory()
    ids = _ids(40)
    now = int(time.time())
    results = []

    def write(chunk):
        results.extend(db.update_last_pong_received(id, "203.0.113.1", now) for id in chunk)

    threads = [threading.Thread(target=write, args=(ids[i::4],), name="test.write") for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == LIMIT
    assert len(_stored_ids(db)) == LIMIT
