"""The discovery v5 wire protocol over UDP (port of geth's p2p/discv5/udp.go).

A packet is ``"temporary discovery v5" || signature(65) || type(1) || rlp(body)``.
The signature covers ``keccak256(type || body)``; the sender's node ID is recovered
from it. A packet's hash, which replies echo, is ``keccak256(signature || type ||
body)``. Unlike v4 there is no hash at the front, only the fixed prefix.

The :class:`UDP` transport is what the ``Network`` (net.py) sends through: geth's
``transport`` interface is ``send_ping``, ``send_neighbours``, ``send_findnode_hash``,
``send_topic_register``, ``send_topic_nodes``, ``send``, ``local_addr`` and ``close``.
Received packets go to the network as :class:`IngressPacket` through
``net.req_read_packet(pkt)``.

Packet bodies are the classes :class:`Ping` ... :class:`TopicNodes`, named after geth's
structs, with their fields in snake_case. Topics travel as RLP strings; here they are
``str`` (any byte string decodes, through UTF-8 with ``surrogateescape``, and encodes
back to the same bytes), so the topic module's ``Topic`` type can be a ``str``.

Decoding is strict the way geth's ``rlp`` package is: canonical sizes and integers,
exact lengths for hashes and node IDs, no extra elements where geth's struct has no
``rlp:"tail"`` field; bytes after the body's one RLP item are ignored, as geth's
stream decoder ignores them. Every malformed packet raises :class:`DiscoverError`
(:class:`DecodeError` for the body) or ``crypto.CryptoError`` for a bad signature.
"""

from __future__ import annotations

import threading
import time
import traceback

from p2p import crypto, metrics, rlpcodec
from p2p.discv5.metrics import egressTrafficMeter, ingressTrafficMeter
from p2p.discv5.node import NodeID, _to_ip, new_node, recover_node_id
from p2p.discv5.nodeevent_string import (
    NodeEvent, findnodeHashPacket, findnodePacket, neighborsPacket, pingPacket, pongPacket,
    topicNodesPacket, topicQueryPacket, topicRegisterPacket,
)
from p2p.log import get_logger
from p2p.netutil.error import is_temporary_error
from p2p.netutil.net import addr_str, check_relay_ip
from p2p.rlpcodec import encode_bytes, encode_list, encode_uint

log = get_logger("p2p.discv5")

__all__ = [
    "Version", "DiscoverError", "DecodeError", "errPacketTooSmall", "errBadPrefix", "errTimeout",
    "respTimeout", "expiration", "driftThreshold",
    "Ping", "Pong", "Findnode", "FindnodeHash", "Neighbors", "TopicRegister", "TopicQuery",
    "TopicNodes", "RpcNode", "RpcEndpoint",
    "versionPrefix", "versionPrefixSize", "sigSize", "headSize", "maxNeighbors", "maxTopicNodes",
    "make_endpoint", "node_from_rpc", "node_to_rpc", "IngressPacket", "Conn", "UDP",
    "listen_udp", "encode_packet", "decode_packet", "maxPacketSize",
]

Version = 4


class DiscoverError(Exception):
    """An error of the v5 wire protocol. The module-level ``err*`` values are sentinels."""


class DecodeError(DiscoverError):
    """A packet body that is not what geth's rlp decoder accepts (message as geth's)."""


# Errors (compared by identity, as geth's sentinel errors are).
errPacketTooSmall = DiscoverError("too small")
errBadPrefix = DiscoverError("bad prefix")
errTimeout = DiscoverError("RPC timeout")

# Timeouts, in seconds.
respTimeout = 0.5
expiration = 20.0

driftThreshold = 10.0  # allowed clock drift before the user is warned


# ---------------------------------------------------------------------------
# RPC structures


class _Packet:
    """Field-wise equality and a readable repr for the packet structs (Python-only)."""

    __slots__ = ()

    def __eq__(self, other):
        return type(other) is type(self) and all(
            getattr(self, f) == getattr(other, f) for f in self.__slots__)

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join(
            "%s=%r" % (f, getattr(self, f)) for f in self.__slots__))


class Ping(_Packet):
    """geth's ``ping``; v5 adds the topics the sender asks tickets for."""

    __slots__ = ("version", "from_", "to", "expiration", "topics", "rest")

    def __init__(self, version=Version, from_=None, to=None, expiration=0, topics=None, rest=None):
        self.version = version
        self.from_ = from_ if from_ is not None else RpcEndpoint()  # 'from' is a keyword
        self.to = to if to is not None else RpcEndpoint()
        self.expiration = expiration
        self.topics = topics if topics is not None else []
        self.rest = rest if rest is not None else []  # raw RLP of extra elements

    def encode_body(self) -> bytes:
        return encode_list((encode_uint(self.version), self.from_.encode(), self.to.encode(),
                          encode_uint(self.expiration), _enc_topics(self.topics), *self.rest))

    @classmethod
    def decode_body(cls, buf, it):
        f = _fields(buf, it, "discv5.ping")
        p = cls(_uint(buf, f[0], 64, "uint"), RpcEndpoint.decode(buf, f[1]),
                RpcEndpoint.decode(buf, f[2]), _uint(buf, f[3], 64, "uint64"),
                _topics(buf, f[4]))
        p.rest = _raw_tail(buf, f, 5)
        return p


class Pong(_Packet):
    """geth's ``pong``: the reply to a ping, with the ticket fields of v5.

    ``to`` mirrors the ping's UDP envelope address (how a node behind NAT learns its
    external address); ``reply_tok`` is the ping's hash.
    """

    __slots__ = ("to", "reply_tok", "expiration", "topic_hash", "ticket_serial", "wait_periods",
                 "rest")

    def __init__(self, to=None, reply_tok=b"", expiration=0, topic_hash=bytes(32), ticket_serial=0,
                 wait_periods=None, rest=None):
        self.to = to if to is not None else RpcEndpoint()
        self.reply_tok = reply_tok
        self.expiration = expiration
        self.topic_hash = topic_hash
        self.ticket_serial = ticket_serial
        self.wait_periods = wait_periods if wait_periods is not None else []
        self.rest = rest if rest is not None else []

    def encode_body(self) -> bytes:
        return encode_list((self.to.encode(), encode_bytes(self.reply_tok), encode_uint(self.expiration),
                          encode_bytes(self.topic_hash), encode_uint(self.ticket_serial),
                          encode_list([encode_uint(w) for w in self.wait_periods]), *self.rest))

    @classmethod
    def decode_body(cls, buf, it):
        f = _fields(buf, it, "discv5.pong")
        p = cls(RpcEndpoint.decode(buf, f[0]), _bytes(buf, f[1], "[]uint8"),
                _uint(buf, f[2], 64, "uint64"), _array(buf, f[3], 32, "common.Hash"),
                _uint(buf, f[4], 32, "uint32"),
                [_uint(buf, w, 32, "uint32") for w in _list(buf, f[5], "[]uint32")])
        p.rest = _raw_tail(buf, f, 6)
        return p


class Findnode(_Packet):
    """geth's ``findnode``: a query for the nodes closest to ``target`` (a NodeID)."""

    __slots__ = ("target", "expiration", "rest")

    def __init__(self, target=None, expiration=0, rest=None):
        self.target = target if target is not None else NodeID()  # need not be a real key
        self.expiration = expiration
        self.rest = rest if rest is not None else []

    def encode_body(self) -> bytes:
        return encode_list((encode_bytes(self.target), encode_uint(self.expiration), *self.rest))

    @classmethod
    def decode_body(cls, buf, it):
        f = _fields(buf, it, "discv5.findnode")
        p = cls(NodeID(_array(buf, f[0], 64, "discv5.NodeID")), _uint(buf, f[1], 64, "uint64"))
        p.rest = _raw_tail(buf, f, 2)
        return p


class FindnodeHash(_Packet):
    """geth's ``findnodeHash``: findnode for a 32-byte target in the hash space."""

    __slots__ = ("target", "expiration", "rest")

    def __init__(self, target=bytes(32), expiration=0, rest=None):
        self.target = target
        self.expiration = expiration
        self.rest = rest if rest is not None else []

    def encode_body(self) -> bytes:
        return encode_list((encode_bytes(self.target), encode_uint(self.expiration), *self.rest))

    @classmethod
    def decode_body(cls, buf, it):
        f = _fields(buf, it, "discv5.findnodeHash")
        p = cls(_array(buf, f[0], 32, "common.Hash"), _uint(buf, f[1], 64, "uint64"))
        p.rest = _raw_tail(buf, f, 2)
        return p


class Neighbors(_Packet):
    """geth's ``neighbors``: the reply to findnode and findnodeHash."""

    __slots__ = ("nodes", "expiration", "rest")

    def __init__(self, nodes=None, expiration=0, rest=None):
        self.nodes = nodes if nodes is not None else []
        self.expiration = expiration
        self.rest = rest if rest is not None else []

    def encode_body(self) -> bytes:
        return encode_list((encode_list([n.encode() for n in self.nodes]), encode_uint(self.expiration),
                          *self.rest))

    @classmethod
    def decode_body(cls, buf, it):
        f = _fields(buf, it, "discv5.neighbors")
        p = cls([RpcNode.decode(buf, n) for n in _list(buf, f[0], "[]discv5.rpcNode")],
                _uint(buf, f[1], 64, "uint64"))
        p.rest = _raw_tail(buf, f, 2)
        return p


class TopicRegister(_Packet):
    """geth's ``topicRegister``: topics to register, the one chosen, and the pong ticket."""

    __slots__ = ("topics", "idx", "pong")

    def __init__(self, topics=None, idx=0, pong=b""):
        self.topics = topics if topics is not None else []
        self.idx = idx
        self.pong = pong  # the whole pong packet that carried the ticket

    def encode_body(self) -> bytes:
        return encode_list((_enc_topics(self.topics), encode_uint(self.idx), encode_bytes(self.pong)))

    @classmethod
    def decode_body(cls, buf, it):
        f = _fields(buf, it, "discv5.topicRegister")
        return _end(f, 3, cls(_topics(buf, f[0]), _uint(buf, f[1], 64, "uint"), _bytes(buf, f[2], "[]uint8")))


class TopicQuery(_Packet):
    """geth's ``topicQuery``: who has registered ``topic``?"""

    __slots__ = ("topic", "expiration")

    def __init__(self, topic="", expiration=0):
        self.topic = topic
        self.expiration = expiration

    def encode_body(self) -> bytes:
        return encode_list((encode_bytes(_topic_bytes(self.topic)), encode_uint(self.expiration)))

    @classmethod
    def decode_body(cls, buf, it):
        f = _fields(buf, it, "discv5.topicQuery")
        return _end(f, 2, cls(_topic(buf, f[0]), _uint(buf, f[1], 64, "uint64")))


class TopicNodes(_Packet):
    """geth's ``topicNodes``: the reply to topicQuery; ``echo`` is the query's hash."""

    __slots__ = ("echo", "nodes")

    def __init__(self, echo=bytes(32), nodes=None):
        self.echo = echo
        self.nodes = nodes if nodes is not None else []

    def encode_body(self) -> bytes:
        return encode_list((encode_bytes(self.echo), encode_list([n.encode() for n in self.nodes])))

    @classmethod
    def decode_body(cls, buf, it):
        f = _fields(buf, it, "discv5.topicNodes")
        return _end(f, 2, cls(_array(buf, f[0], 32, "common.Hash"),
                              [RpcNode.decode(buf, n) for n in _list(buf, f[1], "[]discv5.rpcNode")]))


class RpcNode(_Packet):
    """geth's ``rpcNode``: a node as neighbors and topicNodes carry it.

    ``ip`` is an ipaddress object, or None when the wire had no 4- or 16-byte address
    (geth keeps any byte string as a net.IP; only those two lengths are addresses).
    """

    __slots__ = ("ip", "udp", "tcp", "id")

    def __init__(self, ip=None, udp=0, tcp=0, id=None):
        self.ip = ip
        self.udp = udp  # discovery port
        self.tcp = tcp  # RLPx port
        self.id = id if id is not None else NodeID()

    def encode(self) -> bytes:
        return encode_list((encode_bytes(_ip_bytes(self.ip)), encode_uint(self.udp), encode_uint(self.tcp),
                          encode_bytes(self.id)))

    @classmethod
    def decode(cls, buf, it):
        f = _fields(buf, it, "discv5.rpcNode")
        return _end(f, 4, cls(_ip(_bytes(buf, f[0], "net.IP")), _uint(buf, f[1], 16, "uint16"),
                              _uint(buf, f[2], 16, "uint16"), NodeID(_array(buf, f[3], 64, "discv5.NodeID"))))


class RpcEndpoint(_Packet):
    """geth's ``rpcEndpoint``: an IP with UDP (discovery) and TCP (RLPx) ports."""

    __slots__ = ("ip", "udp", "tcp")

    def __init__(self, ip=None, udp=0, tcp=0):
        self.ip = ip
        self.udp = udp
        self.tcp = tcp

    def encode(self) -> bytes:
        return encode_list((encode_bytes(_ip_bytes(self.ip)), encode_uint(self.udp), encode_uint(self.tcp)))

    @classmethod
    def decode(cls, buf, it):
        f = _fields(buf, it, "discv5.rpcEndpoint")
        return _end(f, 3, cls(_ip(_bytes(buf, f[0], "net.IP")), _uint(buf, f[1], 16, "uint16"),
                              _uint(buf, f[2], 16, "uint16")))

    def equal(self, e2) -> bool:
        return self.udp == e2.udp and self.tcp == e2.tcp and self.ip == e2.ip


# RLP encoding of the shapes above: p2p.rlpcodec's encoders (geth's rlp package does it
# by reflection).


def _topic_bytes(t) -> bytes:
    """A topic's wire bytes (topics are str; see the module docstring)."""
    return t.encode("utf-8", "surrogateescape") if isinstance(t, str) else bytes(t)


def _enc_topics(topics) -> bytes:
    """The RLP list of topics (also what geth's ``rlpHash(topics)`` hashes)."""
    return encode_list([encode_bytes(_topic_bytes(t)) for t in topics])


def _ip_bytes(ip) -> bytes:
    return b"" if ip is None else ip.packed


def _ip(b):
    n = len(b)
    if n == 4 or n == 16:
        return _to_ip(b)
    return None


versionPrefix = b"temporary discovery v5"
versionPrefixSize = len(versionPrefix)
sigSize = 520 // 8
headSize = versionPrefixSize + sigSize  # space of the packet frame data
maxPacketSize = 1280                    # discovery packets are at most this big


def _max_nodes(packet) -> int:
    # How many largest-possible rpcNodes fit in one packet below 1280 bytes.
    biggest = RpcNode(_to_ip(b"\x01" * 16), 0xFFFF, 0xFFFF, NodeID())
    n = 0
    while True:
        packet.nodes.append(biggest)
        if headSize + len(packet.encode_body()) + 1 >= maxPacketSize:
            return n
        n += 1


# Neighbors and topicNodes replies are split over several packets to stay below 1280 bytes.
maxNeighbors = _max_nodes(Neighbors(expiration=2 ** 64 - 1))
maxTopicNodes = _max_nodes(TopicNodes())


def make_endpoint(addr, tcp_port: int) -> RpcEndpoint:
    """The endpoint of a socket address ``(host, port)`` with the given TCP port."""
    return RpcEndpoint(_to_ip(addr[0].split("%", 1)[0]), addr[1], tcp_port)


def node_from_rpc(sender, rn: RpcNode):
    """The Node for an entry relayed by ``sender``; raises ValueError if it is not acceptable."""
    err = check_relay_ip(_to_ip(sender[0].split("%", 1)[0]), rn.ip)
    if err is not None:
        raise err
    n = new_node(rn.id, rn.ip, rn.udp, rn.tcp)
    n.validate_complete()
    return n


def node_to_rpc(n) -> RpcNode:
    return RpcNode(n.ip, n.udp, n.tcp, n.id)


class IngressPacket:
    """A received packet on its way to the network loop (geth's ``ingressPacket``)."""

    __slots__ = ("remote_id", "remote_addr", "ev", "hash", "data", "raw_data")

    def __init__(self, remote_id=None, remote_addr=None, ev=None, hash=None, data=None, raw_data=None):
        self.remote_id = remote_id      # NodeID recovered from the signature
        self.remote_addr = remote_addr  # socket address (host, port) it came from
        self.ev = ev                    # its NodeEvent (the packet type)
        self.hash = hash                # keccak256 of everything after the prefix
        self.data = data                # one of the packet structs above
        self.raw_data = raw_data        # the whole packet

    def __repr__(self):
        return "IngressPacket(%s from %s)" % (self.ev, addr_str(self.remote_addr))


class Conn:
    """The socket the transport reads and writes (geth's ``conn`` interface).

    ``read_from_udp()`` blocks for one datagram and returns ``(data, addr)``, and raises
    once ``close()`` was called; ``write_to_udp(b, addr)`` sends one; ``local_addr()``
    is the bound ``(ip, port)``. :class:`p2p.discover.udp.UDPConn` implements it over a
    socket, the server's ``sharedUDPConn`` over the packets discovery v4 passes on.
    """

    def read_from_udp(self):
        raise NotImplementedError

    def write_to_udp(self, b, addr):
        raise NotImplementedError

    def close(self):
        raise NotImplementedError

    def local_addr(self):
        raise NotImplementedError


def listen_udp(priv, conn, realaddr, node_db_path, netrestrict=None):
    """Start discovery v5 on ``conn``: the running Network (geth's ``ListenUDP``).

    ``realaddr`` is the address announced to others, ``node_db_path`` the node
    database's directory ("" for a temporary one, ``"<no database>"`` for none).
    """
    from p2p.discv5.net import new_network  # net.py imports this module

    transport = _listen_udp(priv, conn, realaddr)
    net = new_network(transport, priv.public_key, node_db_path, netrestrict)
    log.info("UDP listener up", net=net.tab.self)
    transport.net = net
    t = threading.Thread(target=transport.read_loop, name="discv5.udp.readLoop", daemon=True)
    transport._read_thread = t
    t.start()
    return net


def _listen_udp(priv, conn, realaddr):
    """The transport alone (geth's ``listenUDP``), for tests and listen_udp."""
    return UDP(conn, priv, make_endpoint(realaddr, realaddr[1]))


class UDP:
    """The v5 RPC transport (geth's unexported ``udp`` type), the Network's ``transport``."""

    def __init__(self, conn, priv, our_endpoint, nat=None):
        self.conn = conn
        self.priv = priv
        self.our_endpoint = our_endpoint
        self.nat = nat
        self.net = None             # the Network, set by listen_udp
        self._read_thread = None    # Python-only: joined by close

    def local_addr(self):
        return self.conn.local_addr()

    def close(self):
        """Close the conn, which ends the read loop (joined unless called from it)."""
        self.conn.close()
        t = self._read_thread
        if t is not None and t is not threading.current_thread():
            t.join(5)

    def send(self, remote, ptype, data):
        """Send ``data`` (a packet struct of type ``ptype``) to ``remote``; the packet's hash."""
        hash_, _ = self.send_packet(remote.id, remote.addr(), ptype, data)
        return hash_

    def send_ping(self, remote, toaddr, topics):
        hash_, _ = self.send_packet(remote.id, toaddr, pingPacket, Ping(
            version=Version,
            from_=self.our_endpoint,
            to=make_endpoint(toaddr, toaddr[1]),  # geth TODO kept: the known TCP port could be used
            expiration=int(time.time() + expiration),
            topics=topics,
        ))
        return hash_

    def send_findnode(self, remote, target):
        self.send_packet(remote.id, remote.addr(), findnodePacket, Findnode(
            target=target, expiration=int(time.time() + expiration)))

    def send_neighbours(self, remote, results):
        # At most maxNeighbors per packet, to stay below 1280 bytes.
        p = Neighbors(expiration=int(time.time() + expiration))
        for i, result in enumerate(results):
            p.nodes.append(node_to_rpc(result))
            if len(p.nodes) == maxNeighbors or i == len(results) - 1:
                self.send_packet(remote.id, remote.addr(), neighborsPacket, p)
                p.nodes = []

    def send_findnode_hash(self, remote, target):
        self.send_packet(remote.id, remote.addr(), findnodeHashPacket, FindnodeHash(
            target=target, expiration=int(time.time() + expiration)))

    def send_topic_register(self, remote, topics, idx, pong):
        self.send_packet(remote.id, remote.addr(), topicRegisterPacket, TopicRegister(
            topics=topics, idx=idx, pong=pong))

    def send_topic_nodes(self, remote, query_hash, nodes):
        p = TopicNodes(echo=query_hash)
        sent = False
        self_ip = self.net.tab.self.ip
        for result in nodes:
            if result.ip == self_ip or check_relay_ip(remote.ip, result.ip) is None:
                p.nodes.append(node_to_rpc(result))
            if len(p.nodes) == maxTopicNodes:
                self.send_packet(remote.id, remote.addr(), topicNodesPacket, p)
                p.nodes = []
                sent = True
        if not sent or p.nodes:
            self.send_packet(remote.id, remote.addr(), topicNodesPacket, p)

    def send_packet(self, toid, toaddr, ptype, req):
        """Encode, sign and send one packet: ``(hash, err)``; err is None or the error."""
        try:
            packet, hash_ = encode_packet(self.priv, ptype, req)
        except ValueError as err:  # a value the wire cannot carry (negative, too big)
            log.error("Could not encode packet: %s" % err)
            return None, err
        log.trace(">>> %s to %s@%s" % (NodeEvent(ptype), toid[:8].hex(), addr_str(toaddr)))
        try:
            nbytes = self.conn.write_to_udp(packet, toaddr)
        except OSError as err:
            log.trace("UDP send failed: %s" % err)
            return hash_, err
        if metrics.Enabled:
            egressTrafficMeter.mark(nbytes if isinstance(nbytes, int) else len(packet))
        return hash_, None

    def read_loop(self):
        """Read datagrams and hand each to the network loop until the conn is closed."""
        try:
            while True:
                try:
                    data, from_ = self.conn.read_from_udp()
                except Exception as err:  # whatever the conn raises once closed
                    if is_temporary_error(err):
                        log.debug("Temporary read error: %s" % err)
                        continue
                    log.debug("Read error: %s" % err)
                    return
                if metrics.Enabled:
                    ingressTrafficMeter.mark(len(data))
                # geth reads into a 1280-byte buffer: a bigger datagram is cut there
                # (and then fails its signature or its RLP).
                try:
                    self.handle_packet(from_, data[:maxPacketSize])
                except Exception as err:  # a bug must not end the read loop
                    log.error("Discovery v5 packet handler failed", addr=addr_str(from_), err=repr(err),
                              trace=traceback.format_exc())
        finally:
            self.conn.close()

    def handle_packet(self, from_, buf):
        """Decode one datagram and pass it to the network; the error (or None)."""
        pkt = IngressPacket(remote_addr=from_)
        try:
            decode_packet(buf, pkt)
        except (DiscoverError, crypto.CryptoError) as err:
            # A sentinel error would keep this frame (and the packet) alive through its traceback.
            err.__traceback__ = None
            log.debug("Bad packet from %s: %s" % (addr_str(from_), err))
            return err
        self.net.req_read_packet(pkt)
        return None


def encode_packet(priv, ptype, req):
    """Frame and sign ``req`` as a packet of type ``ptype``: ``(packet, hash)``."""
    body = bytes((ptype,)) + req.encode_body()
    sig = crypto.sign(crypto.keccak256(body), priv)
    return versionPrefix + sig + body, crypto.keccak256(sig, body)


_packet_types = {
    pingPacket: Ping, pongPacket: Pong, findnodePacket: Findnode, neighborsPacket: Neighbors,
    findnodeHashPacket: FindnodeHash, topicRegisterPacket: TopicRegister,
    topicQueryPacket: TopicQuery, topicNodesPacket: TopicNodes,
}


def decode_packet(buffer, pkt: IngressPacket) -> None:
    """Check, recover and decode a packet into ``pkt``.

    Raises DiscoverError (errPacketTooSmall, errBadPrefix, DecodeError) or
    crypto.CryptoError. As in geth, ``pkt`` keeps what was filled in before an error
    of the body (the sender's ID, the hash, the event).
    """
    if len(buffer) < headSize + 1:
        raise errPacketTooSmall
    buf = bytes(buffer)  # a copy: the caller may reuse its buffer
    if buf[:versionPrefixSize] != versionPrefix:
        raise errBadPrefix
    from_id = recover_node_id(crypto.keccak256(buf[headSize:]), buf[versionPrefixSize:headSize])
    pkt.raw_data = buf
    pkt.hash = crypto.keccak256(buf[versionPrefixSize:])
    pkt.remote_id = from_id
    ptype = buf[headSize]
    pkt.ev = NodeEvent(ptype)
    cls = _packet_types.get(ptype)
    if cls is None:
        raise DecodeError("unknown packet type: %d" % ptype)
    try:
        pkt.data = cls.decode_body(buf, _head(buf, headSize + 1, len(buf)))
    except rlpcodec.DecodeError as err:
        raise DecodeError(str(err)) from None


# RLP decoding (Python-only: geth's rlp.Stream does it by reflection). p2p.rlpcodec reads
# the items, (kind, start, payload start, payload end) over the packet; lists are split
# only when their fields are read, so no input builds more than one small tuple per
# byte it holds. The readers below add geth's typed checks and its type names.

_BYTE, _LIST = rlpcodec.BYTE, rlpcodec.LIST


def _head(buf, pos, end):
    if pos >= end:
        raise DecodeError("EOF")  # what geth's stream says for an empty body
    return rlpcodec.head(buf, pos, end)


def _split(buf, it):
    return rlpcodec.split(buf, it[2], it[3])


class _Fields(list):
    """The elements of a struct's list; a missing one is geth's "too few elements"."""

    __slots__ = ("name",)

    def __getitem__(self, i):
        if type(i) is int and i >= len(self):
            raise DecodeError("rlp: too few elements for %s" % self.name)
        return list.__getitem__(self, i)


def _fields(buf, it, name):
    """The elements of a struct's list, to be read in field order.

    geth decodes field by field, so the fields are read (and fail) in order and a
    missing one fails when it is reached; extra ones fail after the last field, as
    geth's ListEnd does (checked by :func:`_end`).
    """
    if it[0] != _LIST:
        raise DecodeError("rlp: expected input list for %s" % name)
    f = _Fields(_split(buf, it))
    f.name = name
    return f


def _end(f, n, value):
    if len(f) > n:
        raise DecodeError("rlp: input list has too many elements for %s" % f.name)
    return value


def _list(buf, it, name):
    if it[0] != _LIST:
        raise DecodeError("rlp: expected input list for %s" % name)
    return _split(buf, it)


def _bytes(buf, it, name) -> bytes:
    if it[0] == _LIST:
        raise DecodeError("rlp: expected input string or byte for %s" % name)
    return buf[it[2]:it[3]]


def _array(buf, it, n, name) -> bytes:
    b = _bytes(buf, it, name)
    if len(b) != n:
        raise DecodeError("rlp: input string too %s for %s" % ("short" if len(b) < n else "long", name))
    return b


def _uint(buf, it, bits, name) -> int:
    kind, _, ps, pe = it
    if kind == _LIST:
        raise DecodeError("rlp: expected input string or byte for %s" % name)
    if kind == _BYTE:
        if buf[ps] == 0:
            raise DecodeError("rlp: non-canonical integer (leading zero bytes) for %s" % name)
        return buf[ps]
    if pe - ps > bits // 8:
        raise DecodeError("rlp: input string too long for %s" % name)
    if pe > ps and buf[ps] == 0:
        raise DecodeError("rlp: non-canonical integer (leading zero bytes) for %s" % name)
    return int.from_bytes(buf[ps:pe], "big")


def _topic(buf, it) -> str:
    return _bytes(buf, it, "discv5.Topic").decode("utf-8", "surrogateescape")


def _topics(buf, it):
    return [_topic(buf, t) for t in _list(buf, it, "[]discv5.Topic")]


def _raw_tail(buf, f, n):
    return [buf[it[1]:it[3]] for it in list.__getitem__(f, slice(n, None))]
