"""The persistent node database of discovery v4 (port of geth's p2p/discover/database.go).

Nodes seen by discovery, and when they last pinged / ponged us, are kept in a
LevelDB (plyvel). The bookkeeping is per node ID *and IP* (the endpoint proof is
for one address), with the key layout of geth 1.9's p2p/enode/nodedb.go:

* ``version``                          -- zig-zag varint of the database version
* ``n:<64-byte id>:v4``                -- RLP ``[ip, udp, tcp, id]`` of the node
* ``n:<id>:v4:<16-byte ip>:lastping``  -- varint Unix time of the last ping received
* ``n:<id>:v4:<16-byte ip>:lastpong``  -- varint Unix time of the last pong received
* ``n:<id>:v4:<16-byte ip>:findfail``  -- varint count of failed findnode requests
* ``local:<id>:seq``                   -- the sequence number of our own node record

IPv4 addresses are stored in their 16-byte IPv4-mapped form (Go's ``To16``).

Nothing stays longer than ``nodeDBNodeExpiration`` after the last pong (or, for an
address that never ponged, the last ping): the expirer, run every
``nodeDBCleanupCycle``, removes the rest. The ping handler writes ``lastping`` only
for bonded senders, so a sender that never answers leaves nothing here.

Senders that do answer are bounded per address block, as the table bounds its
entries per /24: at most ``nodeDBBondIPLimit`` distinct node IDs have per-address
items (lastping, lastpong, findfail) in one IPv4 /24 (``nodeDBBondSubnet``) or one
IPv6 /56 (``nodeDBBondSubnet6``). A write for a further ID in a full block is
refused (the update methods return False) and stores nothing; LAN addresses
(``netutil.is_lan``) are exempt unless ``nodeDBBondLimitLAN`` is set when the
database is opened. The in-memory index behind it (block -> IDs with items there)
is read from the database at open and kept in step by every write and deletion:
it holds one entry per (ID, block) with items in the database, so at most
``nodeDBBondIPLimit`` IDs per block (more only where a database written before the
limit held more, until they expire) and never more entries than the database
holds per-address items.

An empty path gives an "in memory" database: a LevelDB in a temporary directory
that is removed on close, so there is only one code path.

Times are Unix seconds (ints), as geth stores them. Functions that need the
current time take it as an optional ``now`` argument.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import threading
import time

import ipaddress

import plyvel

from p2p import rlpcodec
from p2p.discover.node import Node, NodeID, _to_ip
from p2p.log import get_logger
from p2p.netutil.net import is_lan

__all__ = [
    "NodeDB", "new_node_db", "make_key", "split_key", "node_item_key", "split_node_item_key",
    "local_item_key", "nodeDBNilNodeID", "nodeDBNodeExpiration",
    "nodeDBCleanupCycle", "nodeDBVersion", "nodeDBVersionKey", "nodeDBItemPrefix",
    "nodeDBDiscoverRoot", "nodeDBDiscoverPing", "nodeDBDiscoverPong", "nodeDBDiscoverFindFails",
    "nodeDBLocalPrefix", "nodeDBLocalSeq", "encode_node", "decode_node",
    "nodeDBBondIPLimit", "nodeDBBondSubnet", "nodeDBBondSubnet6", "nodeDBBondLimitLAN",
]

log = get_logger("p2p.discover")

nodeDBNilNodeID = NodeID()          # stands for "no node": its keys are the bare field
nodeDBNodeExpiration = 24 * 3600.0  # seconds after which an unseen node is dropped
nodeDBCleanupCycle = 3600.0         # seconds between runs of the expirer
# departure: nodedb-bond-ip-limit: at most nodeDBBondIPLimit IDs with bond records per /24 (IPv6 /56)
nodeDBBondIPLimit = 64    # IDs with per-address items per address block (the table keeps 10 per /24)
nodeDBBondSubnet = 24     # IPv4 prefix length of a block
nodeDBBondSubnet6 = 56    # IPv6 prefix length of a block: the usual delegation to one customer
nodeDBBondLimitLAN = False  # True limits LAN addresses too (tests); read when a database is opened
# departure: nodedb-per-ip: bookkeeping per ID and IP in geth 1.9's key layout, version bumped
nodeDBVersion = 6  # 5 had the keys of geth 1.8 (per ID only); an old database is wiped

nodeDBVersionKey = b"version"
nodeDBItemPrefix = b"n:"
nodeDBLocalPrefix = b"local:"

nodeDBDiscoverRoot = ":v4"
# Fields stored per ID and IP: the full key is node_item_key(id, ip, field).
nodeDBDiscoverPing = "lastping"
nodeDBDiscoverPong = "lastpong"
nodeDBDiscoverFindFails = "findfail"
# Fields of our own node, keyed by ID only: local_item_key(id, field).
nodeDBLocalSeq = "seq"

_ROOT_B = nodeDBDiscoverRoot.encode()
_ID_LEN = 64
# Offsets in a per-address key n:<id>:v4:<ip16>:<field>.
_IP_START = len(nodeDBItemPrefix) + _ID_LEN + len(_ROOT_B) + 1
_IP_END = _IP_START + 16


# ---------------------------------------------------------------------------
# Varints (Go's encoding/binary PutVarint / Varint: zig-zag, then LEB128)


def put_varint(n: int) -> bytes:
    ux = (n << 1) ^ (n >> 63)  # zig-zag for int64
    ux &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while ux >= 0x80:
        out.append((ux & 0x7F) | 0x80)
        ux >>= 7
    out.append(ux)
    return bytes(out)


def varint(buf: bytes):
    """Decode a zig-zag varint: ``(value, bytes read)``; read <= 0 on error, as in Go."""
    x = 0
    s = 0
    for i, b in enumerate(buf):
        if i >= 10:
            return 0, -(i + 1)  # overflow
        if b < 0x80:
            if i == 9 and b > 1:
                return 0, -(i + 1)
            ux = x | (b << s)
            v = ux >> 1
            if ux & 1:
                v = ~v
            return v, i + 1
        x |= (b & 0x7F) << s
        s += 7
    return 0, 0


# ---------------------------------------------------------------------------
# Node records


def encode_node(node: Node) -> bytes:
    """RLP of a node as geth stores it: ``[ip (4/16 bytes or empty), udp, tcp, id]``."""
    ip = node.ip.packed if node.ip is not None else b""
    return rlpcodec.encode_raw([ip, node.udp, node.tcp, bytes(node.id)])


def _decode_uint16(b: bytes) -> int:
    if len(b) > 2 or (len(b) > 0 and b[0] == 0):
        raise ValueError("invalid uint16 %r" % b)
    return int.from_bytes(b, "big")


def decode_node(blob: bytes) -> Node:
    """Inverse of encode_node; raises ValueError (rlpcodec.DecodeError for bad RLP) on bad input."""
    items = rlpcodec.decode(blob)
    if not isinstance(items, list) or len(items) < 4:
        raise ValueError("node record must be a list of 4 items")
    ip, udp, tcp, id = items[:4]
    if not all(isinstance(x, bytes) for x in (ip, udp, tcp, id)):
        raise ValueError("node record items must be strings")
    if len(id) != _ID_LEN:
        raise ValueError("invalid node ID length %d" % len(id))
    return Node(_to_ip(ip), _decode_uint16(udp), _decode_uint16(tcp), NodeID(id))


# ---------------------------------------------------------------------------
# The database


def new_node_db(path: str, version: int, self_id) -> "NodeDB":
    """Open (or create) the node database at ``path``; "" gives an in-memory one."""
    if not path:
        return _new_memory_node_db(self_id)
    return _new_persistent_node_db(path, version, self_id)


def _new_memory_node_db(self_id) -> "NodeDB":
    # geth uses goleveldb's memory storage; a temporary directory keeps one code path.
    tmp = tempfile.mkdtemp(prefix="nodedb-")
    try:
        db = plyvel.DB(tmp, create_if_missing=True)
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return NodeDB(db, self_id, tmpdir=tmp)


def _new_persistent_node_db(path: str, version: int, self_id) -> "NodeDB":
    try:
        db = plyvel.DB(path, create_if_missing=True, max_open_files=64)
    except plyvel.CorruptionError:
        plyvel.repair_db(path)
        db = plyvel.DB(path, create_if_missing=True, max_open_files=64)
    # The stored nodes belong to one protocol version: flush them all on a mismatch.
    current_ver = put_varint(version)
    blob = db.get(nodeDBVersionKey)
    if blob is None:
        try:
            db.put(nodeDBVersionKey, current_ver)
        except Exception:
            db.close()
            raise
    elif blob != current_ver:
        db.close()
        shutil.rmtree(path)
        return _new_persistent_node_db(path, version, self_id)
    return NodeDB(db, self_id)


# ---------------------------------------------------------------------------
# Keys


def make_key(id: bytes, field: str) -> bytes:
    """The database key of ``field`` for node ``id`` (the bare field for the nil ID)."""
    if id == nodeDBNilNodeID:
        return field.encode()
    return nodeDBItemPrefix + bytes(id) + field.encode()


def split_key(key: bytes):
    """Inverse of make_key: ``(NodeID, field)``."""
    if not key.startswith(nodeDBItemPrefix):
        return nodeDBNilNodeID, key.decode("utf-8", "replace")
    item = key[len(nodeDBItemPrefix):]
    id = item[:_ID_LEN]
    if len(id) != _ID_LEN:
        return nodeDBNilNodeID, key.decode("utf-8", "replace")
    return NodeID(id), item[_ID_LEN:].decode("utf-8", "replace")


_zeroIP = bytes(16)


def _ip16(ip) -> bytes:
    # Go's IP.To16: an IPv4 address becomes its IPv4-mapped IPv6 form.
    if isinstance(ip, (bytes, bytearray)):
        ip = ipaddress.ip_address(bytes(ip))
    elif isinstance(ip, str):
        ip = ipaddress.ip_address(ip)
    if ip is None:
        return _zeroIP  # a node without an address (tests, incomplete nodes): geth 1.9's zeroIP
    if ip.version == 4:
        return b"\x00" * 10 + b"\xff\xff" + ip.packed
    return ip.packed


def node_item_key(id, ip, field: str) -> bytes:
    """The key of a per-address field: ``n:<id>:v4:<ip16>:<field>`` (geth 1.9's nodeItemKey)."""
    return b":".join((make_key(id, nodeDBDiscoverRoot), _ip16(ip), field.encode()))


_v4Mapped = b"\x00" * 10 + b"\xff\xff"


def _bond_block(ip16: bytes, limit_lan: bool):
    # Python-only, for the bond limit: the address block of a 16-byte address, or None
    # for an exempt one (no address, or LAN unless limit_lan).
    if ip16 == _zeroIP or (not limit_lan and is_lan(ip16)):
        return None
    if ip16[:12] == _v4Mapped:
        return ip16[:12 + nodeDBBondSubnet // 8]
    return ip16[:nodeDBBondSubnet6 // 8]


def split_node_item_key(key: bytes):
    """Inverse of node_item_key: ``(NodeID, ip, field)``; ip and field are None/"" for a node key."""
    id, rest = split_key(key)
    item = key[len(nodeDBItemPrefix) + _ID_LEN:]
    if rest == nodeDBDiscoverRoot or not item.startswith(nodeDBDiscoverRoot.encode() + b":"):
        return id, None, ""
    item = item[len(nodeDBDiscoverRoot) + 1:]
    if len(item) < 17:
        return id, None, ""  # too short for an address and a field: not ours
    ip = _to_ip(ipaddress.IPv6Address(item[:16]))
    return id, ip, item[17:].decode("utf-8", "replace")


def local_item_key(id, field: str) -> bytes:
    """The key of a field of our own node: ``local:<id>:<field>``."""
    return nodeDBLocalPrefix + bytes(id) + b":" + field.encode()


class NodeDB:
    """geth's ``nodeDB``: node records and their ping/pong/findnode bookkeeping."""

    def __init__(self, lvl, self_id, tmpdir=None):
        self.lvl = lvl                       # the plyvel.DB
        self.self = NodeID(self_id) if self_id is not None else nodeDBNilNodeID
        self._tmpdir = tmpdir                # removed on close (in-memory databases)
        self._runner_lock = threading.Lock()  # sync.Once for the expirer
        self._expirer_thread = None
        self._quit = threading.Event()
        self._closed = False
        # The bond limit: address block -> IDs with per-address items there.
        self._bond_ip_limit = nodeDBBondIPLimit
        self._bond_limit_lan = nodeDBBondLimitLAN
        self._bonds = {}
        self._bonds_lock = threading.Lock()  # held around every per-address write and deletion
        self._index_bonds()

    # -- integers --------------------------------------------------------

    def fetch_int64(self, key: bytes) -> int:
        """The varint stored under ``key``, 0 if missing or malformed."""
        try:
            blob = self.lvl.get(key)
        except RuntimeError:  # database closed
            return 0
        if blob is None:
            return 0
        val, read = varint(blob)
        if read <= 0:
            return 0
        return val

    def store_int64(self, key: bytes, n: int) -> None:
        self.lvl.put(key, put_varint(int(n)))

    # -- the bond limit (Python-only, for the per-address writes and deletions) --

    def _index_bonds(self) -> None:
        # Read the blocks of all per-address keys: the index starts as the database is.
        with self.lvl.iterator(prefix=nodeDBItemPrefix, include_value=False) as it:
            for key in it:
                if len(key) > _IP_END and key[_IP_START - 1:_IP_START] == b":" \
                        and key[_IP_START - 1 - len(_ROOT_B):_IP_START - 1] == _ROOT_B:
                    block = _bond_block(key[_IP_START:_IP_END], self._bond_limit_lan)
                    if block is not None:
                        self._bonds.setdefault(block, set()).add(key[2:2 + _ID_LEN])

    def _store_item(self, id, ip, field: str, blob: bytes) -> bool:
        # A per-address write, refused (False, nothing written) for a new ID in a full block.
        ip16 = _ip16(ip)
        key = b":".join((make_key(id, nodeDBDiscoverRoot), ip16, field.encode()))
        block = _bond_block(ip16, self._bond_limit_lan)
        if block is None:
            self.lvl.put(key, blob)
            return True
        id = bytes(id)
        with self._bonds_lock:
            ids = self._bonds.get(block)
            if ids is not None and id not in ids and len(ids) >= self._bond_ip_limit:
                return False
            self.lvl.put(key, blob)
            if ids is None:
                self._bonds[block] = {id}
            else:
                ids.add(id)
        return True

    def _unindex_bonds(self, id: bytes, blocks: set) -> None:
        # After a deletion of id's items in blocks (bonds lock held): drop id from the
        # blocks where none of its per-address items is left.
        if not blocks:
            return
        left = set()
        with self.lvl.iterator(prefix=make_key(id, nodeDBDiscoverRoot + ":"), include_value=False) as it:
            for key in it:
                if len(key) > _IP_END:
                    left.add(_bond_block(key[_IP_START:_IP_END], self._bond_limit_lan))
        for block in blocks - left:
            ids = self._bonds.get(block)
            if ids is not None:
                ids.discard(id)
                if not ids:
                    del self._bonds[block]

    def _key_block(self, key: bytes):
        # The block of a per-address key, None for other keys and exempt addresses.
        _, ip, _ = split_node_item_key(key)
        if ip is None:
            return None
        return _bond_block(key[_IP_START:_IP_END], self._bond_limit_lan)

    # -- nodes -----------------------------------------------------------

    def node(self, id) -> Node | None:
        """The stored node with the given ID, or None."""
        try:
            blob = self.lvl.get(make_key(id, nodeDBDiscoverRoot))
        except RuntimeError:
            return None
        if blob is None:
            return None
        try:
            return decode_node(blob)
        except Exception as err:
            log.error("Failed to decode node RLP", err=err)
            return None

    def update_node(self, node: Node) -> None:
        """Insert or replace a node record."""
        self.lvl.put(make_key(node.id, nodeDBDiscoverRoot), encode_node(node))

    def delete_node(self, id) -> None:
        """Delete every entry of a node."""
        prefix = make_key(id, "")
        blocks = set()
        with self._bonds_lock:
            with self.lvl.write_batch() as wb:
                with self.lvl.iterator(prefix=prefix, include_value=False) as it:
                    for key in it:
                        wb.delete(key)
                        block = self._key_block(key)
                        if block is not None:
                            blocks.add(block)
            self._unindex_bonds(bytes(id), blocks)

    # -- expiry ----------------------------------------------------------

    def ensure_expirer(self) -> None:
        """Start the expirer thread, once. Call it after the table is seeded."""
        with self._runner_lock:
            if self._expirer_thread is not None or self._closed:
                return
            self._expirer_thread = threading.Thread(target=self.expirer,
                                                    name="discover.nodeDB.expirer", daemon=True)
            self._expirer_thread.start()

    def expirer(self):
        """The expirer thread: expire_nodes every nodeDBCleanupCycle until close."""
        # The ticker is the timeout of the quit Event's wait.
        while not self._quit.wait(nodeDBCleanupCycle):
            try:
                self.expire_nodes()
            except Exception as err:
                log.error("Failed to expire nodedb items", err=err)

    def expire_nodes(self, now: float | None = None) -> None:
        """Delete what is known of nodes not heard from within nodeDBNodeExpiration (and self).

        geth 1.9's rule: the items of an address whose last pong is older than that go,
        and a node goes with all its items once none of its addresses has a recent pong.
        An address or node that never ponged goes once its last ping is older too.
        """
        if now is None:
            now = time.time()
        threshold = now - nodeDBNodeExpiration
        start = len(nodeDBItemPrefix)
        group_id, group = None, []
        # Keys sort by ID, so each node's items come in one run.
        with self.lvl.iterator(prefix=nodeDBItemPrefix) as it:
            for key, value in it:
                if self._quit.is_set():
                    return
                id = key[start:start + _ID_LEN]
                if id != group_id:
                    if group:
                        self._expire_node_items(group_id, group, threshold)
                    group_id, group = id, []
                group.append((key, value))
        if group and not self._quit.is_set():
            self._expire_node_items(group_id, group, threshold)

    def _expire_node_items(self, id: bytes, items: list, threshold: float) -> None:
        # Python-only, for expire_nodes: the decision on one node's run of items.
        pongs, pings = {}, {}  # ip -> the time stored for it
        for key, value in items:
            _, ip, field = split_node_item_key(key)
            if field == nodeDBDiscoverPong or field == nodeDBDiscoverPing:
                t, read = varint(value)
                (pongs if field == nodeDBDiscoverPong else pings)[ip] = t if read > 0 else 0
        youngest_pong = max(pongs.values(), default=0)
        youngest_ping = max(pings.values(), default=0)
        # departure: nodedb-expire-unponged: a node or address without a pong goes once its last ping is old
        if youngest_pong > 0:
            drop_all = youngest_pong <= threshold
        else:
            drop_all = youngest_ping <= threshold
        if id == self.self:
            drop_all = True
        blocks = set()
        with self._bonds_lock:
            with self.lvl.write_batch() as wb:
                for key, _ in items:
                    _, ip, _ = split_node_item_key(key)
                    if not drop_all:
                        if ip is None:
                            continue  # the node record stays with the node
                        t = pongs.get(ip)
                        if t is None:
                            t = pings.get(ip, 0)
                        if t > threshold:
                            continue
                    wb.delete(key)
                    if ip is not None:
                        block = _bond_block(key[_IP_START:_IP_END], self._bond_limit_lan)
                        if block is not None:
                            blocks.add(block)
            self._unindex_bonds(id, blocks)

    # -- bookkeeping -----------------------------------------------------

    def last_ping_received(self, id, ip) -> int:
        """Unix time of the last ping from the node at ``ip`` (0 if never)."""
        return self.fetch_int64(node_item_key(id, ip, nodeDBDiscoverPing))

    def update_last_ping_received(self, id, ip, instance: float) -> bool:
        """Store the time of a ping; False (nothing stored) if ip's block is full of other IDs."""
        key = node_item_key(id, ip, nodeDBDiscoverPing)
        blob = put_varint(int(instance))
        if self.lvl.get(key) == blob:
            # Another ping within the same second: the same bytes are stored already, and a
            # put (a journal write) per ping from a bonded flooder cost 5% of the node's CPU.
            return True
        return self._store_item(id, ip, nodeDBDiscoverPing, blob)

    def last_pong_received(self, id, ip) -> int:
        """Unix time of the last pong from the node at ``ip`` (0 if never)."""
        return self.fetch_int64(node_item_key(id, ip, nodeDBDiscoverPong))

    def has_bond(self, id, ip, now: float | None = None) -> bool:
        """Whether the node at ``ip`` answered a ping within nodeDBNodeExpiration."""
        if now is None:
            now = time.time()
        return now - self.last_pong_received(id, ip) < nodeDBNodeExpiration

    def update_last_pong_received(self, id, ip, instance: float) -> bool:
        """Store the time of a pong; False (nothing stored) if ip's block is full of other IDs."""
        return self._store_item(id, ip, nodeDBDiscoverPong, put_varint(int(instance)))

    def find_fails(self, id, ip) -> int:
        """Number of findnode requests the node at ``ip`` failed to answer in a row."""
        return self.fetch_int64(node_item_key(id, ip, nodeDBDiscoverFindFails))

    def update_find_fails(self, id, ip, fails: int) -> bool:
        """Store the failure count; False (nothing stored) if ip's block is full of other IDs."""
        return self._store_item(id, ip, nodeDBDiscoverFindFails, put_varint(int(fails)))

    def local_seq(self, id) -> int:
        """The stored sequence number of our own record (0 if none); geth 1.9's localSeq."""
        return self.fetch_int64(local_item_key(id, nodeDBLocalSeq))

    def store_local_seq(self, id, n: int) -> None:
        self.store_int64(local_item_key(id, nodeDBLocalSeq), n)

    # -- seeds -----------------------------------------------------------

    def query_seeds(self, n: int, max_age: float, now: float | None = None, rand=None) -> list:
        """Up to ``n`` random nodes that ponged within ``max_age`` seconds (self excluded)."""
        if now is None:
            now = time.time()
        rng = rand or random
        nodes = []
        seen = set()
        id = bytearray(_ID_LEN)
        with self.lvl.iterator() as it:
            seeks = 0
            while len(nodes) < n and seeks < n * 5:
                seeks += 1
                # Seek to a random entry. The first byte moves forward by a random amount
                # each time so that very small databases get all their nodes hit.
                ctr = id[0]
                id[:] = rng.getrandbits(_ID_LEN * 8).to_bytes(_ID_LEN, "big")
                id[0] = (ctr + id[0] % 16) & 0xFF
                it.seek(make_key(bytes(id), nodeDBDiscoverRoot))
                node = _next_node(it)
                if node is None:
                    id[0] = 0
                    continue  # iterator exhausted
                if node.id == self.self:
                    continue
                if node.ip is None or now - self.last_pong_received(node.id, node.ip) > max_age:
                    continue
                if node.id in seen:
                    continue  # duplicate
                seen.add(node.id)
                nodes.append(node)
        return nodes

    # -- lifecycle -------------------------------------------------------

    def close(self) -> None:
        """Stop the expirer and close the database (removing an in-memory one)."""
        with self._runner_lock:
            if self._closed:
                return
            self._closed = True
            expirer = self._expirer_thread
        self._quit.set()
        if expirer is not None:
            expirer.join()
        self.lvl.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _next_node(it):
    """The next node record at or after the iterator's position, or None."""
    for key, value in it:
        id, field = split_key(key)
        if field != nodeDBDiscoverRoot:
            continue
        try:
            return decode_node(value)
        except Exception as err:
            log.warn("Failed to decode node RLP", id=id, err=err)
            continue
    return None

