"""The node database of discovery v5 (port of geth's p2p/discv5/database.go).

v5 keeps its own LevelDB (plyvel), with geth's v5 key layout:

* ``version``                          -- zig-zag varint of the database version
* ``n:<64-byte id>:discover``          -- RLP ``[ip, udp, tcp, id]`` of the node
* ``n:<id>:discover:lastping``         -- varint Unix time of our last ping to it
* ``n:<id>:discover:lastpong``         -- varint Unix time of its last pong
* ``n:<id>:discover:findfail``         -- varint count of failed findnode requests
* ``n:<id>:discover:localendpoint``    -- RLP endpoint we last told it is ours
* ``n:<id>:tickets``                   -- 4+4 bytes big endian: tickets issued, used
* ``n:<id>:tickets:time``              -- varint Unix time the counters were written
  (Python-only, so that the expirer can drop them: departure ``discv5-ticket-counters-expire``)

An empty path gives an "in memory" database: a LevelDB in a temporary directory
removed on close, so there is one code path. Times are Unix seconds (ints), as geth
stores them; functions that need the current time take it as an optional ``now``.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import threading
import time

import plyvel

from p2p import rlpcodec
# Go's encoding/binary varints, which v4's database already reproduces.
from p2p.discover.database import put_varint, varint
from p2p.discv5.node import Node, NodeID, new_node
from p2p.discv5.udp import DecodeError, RpcEndpoint, RpcNode, node_to_rpc
from p2p.log import get_logger

__all__ = [
    "NodeDB", "new_node_db", "make_key", "split_key", "next_node", "nodeDBNilNodeID",
    "nodeDBNodeExpiration", "nodeDBCleanupCycle", "nodeDBVersionKey", "nodeDBItemPrefix",
    "nodeDBDiscoverRoot", "nodeDBDiscoverPing", "nodeDBDiscoverPong", "nodeDBDiscoverFindFails",
    "nodeDBDiscoverLocalEndpoint", "nodeDBTopicRegTickets", "nodeDBTopicRegTicketsTime",
]

log = get_logger("p2p.discv5")

nodeDBNilNodeID = NodeID()          # stands for "no node": its keys are the bare field
nodeDBNodeExpiration = 24 * 3600.0  # seconds after which an unseen node is dropped
nodeDBCleanupCycle = 3600.0         # seconds between runs of the expirer

# Schema layout of the node database
nodeDBVersionKey = b"version"  # version of the database, to flush it when it changes
nodeDBItemPrefix = b"n:"       # prefix of node entries

nodeDBDiscoverRoot = ":discover"
nodeDBDiscoverPing = nodeDBDiscoverRoot + ":lastping"
nodeDBDiscoverPong = nodeDBDiscoverRoot + ":lastpong"
nodeDBDiscoverFindFails = nodeDBDiscoverRoot + ":findfail"
nodeDBDiscoverLocalEndpoint = nodeDBDiscoverRoot + ":localendpoint"
nodeDBTopicRegTickets = ":tickets"
nodeDBTopicRegTicketsTime = nodeDBTopicRegTickets + ":time"  # Python-only, see expire_nodes

_ID_LEN = 64


def new_node_db(path: str, version: int, self_id) -> "NodeDB":
    """Open (or create) the node database at ``path``; "" gives an in-memory one."""
    if not path:
        return new_memory_node_db(self_id)
    return new_persistent_node_db(path, version, self_id)


def new_memory_node_db(self_id) -> "NodeDB":
    """A database that lives until it is closed (geth uses goleveldb's memory storage)."""
    tmp = tempfile.mkdtemp(prefix="discv5-nodedb-")
    try:
        db = plyvel.DB(tmp, create_if_missing=True)
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return NodeDB(db, self_id, tmpdir=tmp)


def new_persistent_node_db(path: str, version: int, self_id) -> "NodeDB":
    """Open the LevelDB at ``path``, flushing it if it holds another version's nodes."""
    try:
        db = plyvel.DB(path, create_if_missing=True, max_open_files=64)
    except plyvel.CorruptionError:
        plyvel.repair_db(path)  # geth's leveldb.RecoverFile
        db = plyvel.DB(path, create_if_missing=True, max_open_files=64)
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
        return new_persistent_node_db(path, version, self_id)
    return NodeDB(db, self_id)


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
    if len(id) != _ID_LEN:  # geth copies what there is into a zero ID
        id = id + bytes(_ID_LEN - len(id))
    return NodeID(id), item[_ID_LEN:].decode("utf-8", "replace")


class NodeDB:
    """geth's ``nodeDB``: node records and their ping/pong/findnode/ticket bookkeeping."""

    def __init__(self, lvl, self_id, tmpdir=None):
        self.lvl = lvl                        # the plyvel.DB
        self.self = NodeID(self_id) if self_id is not None else nodeDBNilNodeID
        self._tmpdir = tmpdir                 # removed on close (in-memory databases)
        self._runner_lock = threading.Lock()  # sync.Once of the expirer
        self._expirer_thread = None
        self.quit = threading.Event()
        self._closed = False

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

    def store_rlp(self, key: bytes, val) -> None:
        """Store a Node or an RpcEndpoint as geth's rlp encodes it."""
        if isinstance(val, Node):
            val = node_to_rpc(val)  # the same list: [ip, udp, tcp, id]
        self.lvl.put(key, val.encode())

    def fetch_rlp(self, key: bytes, typ):
        """The value of type ``typ`` (RpcNode, RpcEndpoint) stored under ``key``.

        Raises KeyError if there is none, DecodeError (logged) if it does not decode.
        """
        try:
            blob = self.lvl.get(key)
        except RuntimeError:  # database closed
            blob = None
        if blob is None:
            raise KeyError("leveldb: not found")
        try:
            return _decode_bytes(blob, typ)
        except DecodeError as err:
            log.warn("key %s (%s) %s" % (key.hex(), typ.__name__, err))
            raise

    def node(self, id) -> Node | None:
        """The stored node with the given ID, or None."""
        try:
            rn = self.fetch_rlp(make_key(id, nodeDBDiscoverRoot), RpcNode)
        except (KeyError, DecodeError):
            return None
        return new_node(rn.id, rn.ip, rn.udp, rn.tcp)

    def update_node(self, node: Node) -> None:
        """Insert or replace a node record."""
        self.store_rlp(make_key(node.id, nodeDBDiscoverRoot), node)

    def delete_node(self, id) -> None:
        """Delete every entry of a node."""
        with self.lvl.write_batch() as wb:
            with self.lvl.iterator(prefix=make_key(id, ""), include_value=False) as it:
                for key in it:
                    wb.delete(key)

    def ensure_expirer(self) -> None:
        """Start the expirer thread, once. Called after the first successful bond."""
        with self._runner_lock:
            if self._expirer_thread is not None or self._closed:
                return
            self._expirer_thread = threading.Thread(target=self.expirer,
                                                    name="discv5.nodeDB.expirer", daemon=True)
            self._expirer_thread.start()

    def expirer(self):
        """The expirer thread: expire_nodes every nodeDBCleanupCycle until close."""
        while not self.quit.wait(nodeDBCleanupCycle):  # the ticker is the wait's timeout
            try:
                self.expire_nodes()
            except plyvel.Error as err:
                log.error("Failed to expire nodedb items: %s" % err)

    def expire_nodes(self, now: float | None = None) -> None:
        """Delete nodes whose last pong is older than nodeDBNodeExpiration (and self).

        Also (departure discv5-ticket-counters-expire) the ticket counters of nodes
        that have not changed them for nodeDBNodeExpiration: v5 writes no node
        records, so geth never expires them, one key per identity that ever
        registered. Every ticket issued before then has expired, so no replay
        protection is lost.
        """
        if now is None:
            now = time.time()
        threshold = now - nodeDBNodeExpiration
        expired, tickets, fresh_tickets = [], [], set()
        with self.lvl.iterator() as it:
            for key, value in it:
                if self.quit.is_set():
                    return
                id, field = split_key(key)
                if field == nodeDBTopicRegTickets:
                    tickets.append(id)
                elif field == nodeDBTopicRegTicketsTime:
                    t, read = varint(value)
                    if read > 0 and t > threshold:
                        fresh_tickets.add(id)
                if field != nodeDBDiscoverRoot:
                    continue
                if id != self.self and self.last_pong(id) > threshold:
                    continue
                expired.append(id)
        for id in expired:
            self.delete_node(id)
        # Counters without a time were written before the time was kept: as old as that.
        with self.lvl.write_batch() as wb:
            for id in tickets:
                if id not in fresh_tickets:
                    wb.delete(make_key(id, nodeDBTopicRegTickets))
                    wb.delete(make_key(id, nodeDBTopicRegTicketsTime))

    def last_ping(self, id) -> int:
        """Unix time of our last ping to the node, asking it to bond (0 if never)."""
        return self.fetch_int64(make_key(id, nodeDBDiscoverPing))

    def update_last_ping(self, id, instance: float) -> None:
        self.store_int64(make_key(id, nodeDBDiscoverPing), int(instance))

    def last_pong(self, id) -> int:
        """Unix time of the node's last successful contact (0 if never)."""
        return self.fetch_int64(make_key(id, nodeDBDiscoverPong))

    def update_last_pong(self, id, instance: float) -> None:
        self.store_int64(make_key(id, nodeDBDiscoverPong), int(instance))

    def find_fails(self, id) -> int:
        """Number of findnode failures since bonding."""
        return self.fetch_int64(make_key(id, nodeDBDiscoverFindFails))

    def update_find_fails(self, id, fails: int) -> None:
        self.store_int64(make_key(id, nodeDBDiscoverFindFails), fails)

    def local_endpoint(self, id) -> RpcEndpoint | None:
        """The local endpoint we last told the node, or None."""
        try:
            return self.fetch_rlp(make_key(id, nodeDBDiscoverLocalEndpoint), RpcEndpoint)
        except (KeyError, DecodeError):
            return None

    def update_local_endpoint(self, id, ep: RpcEndpoint) -> None:
        self.store_rlp(make_key(id, nodeDBDiscoverLocalEndpoint), ep)

    def query_seeds(self, n: int, max_age: float, now: float | None = None, rand=None) -> list:
        """Up to ``n`` random nodes that ponged within ``max_age`` seconds (self excluded)."""
        if now is None:
            now = time.time()
        rng = rand or _urandom
        nodes = []
        id = bytearray(_ID_LEN)
        with self.lvl.iterator() as it:
            seeks = 0
            while len(nodes) < n and seeks < n * 5:
                seeks += 1
                # Seek to a random entry; the first byte moves on by a random amount each
                # time, so that all nodes of a very small database get hit.
                ctr = id[0]
                id[:] = rng.getrandbits(_ID_LEN * 8).to_bytes(_ID_LEN, "big")
                id[0] = (ctr + id[0] % 16) & 0xFF
                it.seek(make_key(bytes(id), nodeDBDiscoverRoot))
                node = next_node(it)
                if node is None:
                    id[0] = 0
                    continue  # iterator exhausted
                if node.id == self.self:
                    continue
                if now - self.last_pong(node.id) > max_age:
                    continue
                if any(x.id == node.id for x in nodes):
                    continue  # duplicate
                nodes.append(node)
        return nodes

    def fetch_topic_reg_tickets(self, id):
        """``(issued, used)``: the topic registration tickets of a node, (0, 0) if unknown."""
        try:
            blob = self.lvl.get(make_key(id, nodeDBTopicRegTickets))
        except RuntimeError:
            blob = None
        if blob is None or len(blob) != 8:
            return 0, 0
        return int.from_bytes(blob[0:4], "big"), int.from_bytes(blob[4:8], "big")

    def update_topic_reg_tickets(self, id, issued: int, used: int, now: float | None = None) -> None:
        blob = (issued & 0xFFFFFFFF).to_bytes(4, "big") + (used & 0xFFFFFFFF).to_bytes(4, "big")
        with self.lvl.write_batch() as wb:
            wb.put(make_key(id, nodeDBTopicRegTickets), blob)
            # departure: discv5-ticket-counters-expire: when they were written, for expire_nodes
            wb.put(make_key(id, nodeDBTopicRegTicketsTime), put_varint(int(time.time() if now is None else now)))

    def close(self) -> None:
        """Stop the expirer and close the database (removing an in-memory one)."""
        with self._runner_lock:
            if self._closed:
                return
            self._closed = True
            expirer = self._expirer_thread
        self.quit.set()
        if expirer is not None:
            expirer.join()
        self.lvl.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)


def next_node(it):
    """The next node record at or after the iterator's position, or None."""
    for key, value in it:
        id, field = split_key(key)
        if field != nodeDBDiscoverRoot:
            continue
        try:
            rn = _decode_bytes(value, RpcNode)
        except DecodeError as err:
            log.warn("invalid node %s: %s" % (id.hex(), err))
            continue
        return new_node(rn.id, rn.ip, rn.udp, rn.tcp)
    return None


def _decode_bytes(blob: bytes, typ):
    # geth's rlp.DecodeBytes: exactly one value, of the struct's shape.
    try:
        it = rlpcodec.head(blob, 0, len(blob))
        if it[3] != len(blob):
            raise DecodeError("rlp: input contains more than one value")
        return typ.decode(blob, it)
    except rlpcodec.DecodeError as err:
        raise DecodeError(str(err)) from None


_urandom = random.SystemRandom()  # crypto/rand, as geth reads the seed positions
