"""Node discovery v4 wire protocol over UDP (port of geth's p2p/discover/udp.go).

Packets are ``hash(32) || signature(65) || type(1) || rlp(body)``: the signature
covers ``keccak256(type || body)`` and the hash covers everything after it. The
sender's node ID is recovered from the signature.

Threads (goroutines in geth):

* ``discover.udp.loop`` owns the list of pending replies: requests register a
  matcher with :meth:`UDP.pending`, the read loop hands replies to it through
  :meth:`UDP.handle_reply`, and matchers expire after ``respTimeout``.
* ``discover.udp.readLoop`` reads datagrams from the ``Conn`` and dispatches them
  to the ``handle`` method of their packet type. Closing the conn wakes a blocked read.

Decoding is the hot path: the RLP body is read by :mod:`p2p.rlpcodec` (the one
fast, strict codec, shared with RLPx) straight into the packet objects.

Beyond geth 1.8.16 (each place marked with a departure comment, listed in docs/DEPARTURES.md),
the node defends itself as geth's conformance suite expects of a node today:
reply matchers say whether a reply is theirs (geth 1.8.22), the endpoint proof
is per node ID and IP, the node has a signed record (EIP-778) whose seq rides in
ping and pong and which it sends on ENRRequest (EIP-868, geth 1.9), and a ping
flood from one key and address draws one ping back at a time.
"""

from __future__ import annotations

import collections
import functools
import ipaddress
import queue
import socket
import threading
import time

from p2p import crypto, enr, metrics, rlpcodec
from p2p.discover.database import nodeDBNodeExpiration
from p2p.discover.node import NodeID, new_node, pubkey_id, recover_node_id, _to_ip
from p2p.discover.table import bucketSize, new_table
from p2p.log import get_logger
from p2p.netutil.error import is_temporary_error
from p2p.netutil.net import addr_str, check_relay_ip
from p2p.rlpcodec import encode_bytes, encode_list, encode_uint

log = get_logger("p2p.discover")

# Discovery traffic meters (counted only when metrics.Enabled, as in geth).
_ingress_packets = metrics.new_registered_meter("discover/ingress/packets")
_ingress_bytes = metrics.new_registered_meter("discover/ingress")
_egress_packets = metrics.new_registered_meter("discover/egress/packets")
_egress_bytes = metrics.new_registered_meter("discover/egress")

__all__ = [
    "errPacketTooSmall", "errBadHash", "errExpired", "errUnsolicitedReply", "errUnknownNode",
    "errTimeout", "errClockWarp", "errClosed", "errPacketTooBig", "maxPacketSize", "DiscoverError", "DecodeError",
    "respTimeout", "expiration", "ntpFailureThreshold", "ntpWarningCooldown", "driftThreshold",
    "pingPacket", "pongPacket", "findnodePacket", "neighborsPacket", "enrRequestPacket", "enrResponsePacket",
    "Ping", "Pong", "Findnode", "Neighbors", "EnrRequest", "EnrResponse", "RpcNode", "RpcEndpoint",
    "make_endpoint", "node_to_rpc", "Pending", "Reply", "ReadPacket", "Config", "Conn", "UDPConn",
    "listen_udp", "new_udp", "UDP", "encode_packet", "decode_packet", "expired", "seq_from_tail",
    "macSize", "sigSize", "headSize", "maxNeighbors",
]


class DiscoverError(Exception):
    """An error of the discovery protocol. The module-level ``err*`` values are sentinels."""


class DecodeError(DiscoverError):
    """A malformed packet body (bad RLP or wrong field shapes)."""


# Errors (compared by identity, like geth's sentinel errors).
errPacketTooSmall = DiscoverError("too small")
errBadHash = DiscoverError("bad hash")
errExpired = DiscoverError("expired")
errUnsolicitedReply = DiscoverError("unsolicited reply")
errUnknownNode = DiscoverError("unknown node")
errTimeout = DiscoverError("RPC timeout")
errClockWarp = DiscoverError("reply deadline too far in the future")
errClosed = DiscoverError("socket closed")
errPacketTooBig = DiscoverError("too big")  # departure: oversize-datagram: rejected whole, not truncated

# Timeouts, in seconds.
respTimeout = 0.5
expiration = 20.0

ntpFailureThreshold = 32      # continuous timeouts after which the clock is checked
ntpWarningCooldown = 10 * 60  # minimum time between two NTP warnings
driftThreshold = 10.0         # allowed clock drift before warning

# RPC packet types (zero is reserved).
pingPacket = 1
pongPacket = 2
findnodePacket = 3
neighborsPacket = 4
# departure: eip-868: ENRRequest/ENRResponse and the record seq in ping and pong (geth 1.9.0)
enrRequestPacket = 5
enrResponsePacket = 6


# ---------------------------------------------------------------------------
# RPC structures. The packet types (Ping, Pong, ...) follow decode_packet below,
# where Go has their handle methods; endpoints and nodes are here.


class _LazyIP:
    """``ip`` is parsed from its wire bytes only when first read (decoding is hot)."""

    __slots__ = ()

    @property
    def ip(self):
        raw = self._raw
        if raw is not None:
            self._ip = _ip(raw)
            self._raw = None
        return self._ip

    @ip.setter
    def ip(self, value):
        self._ip = value
        self._raw = None


class RpcEndpoint(_LazyIP):
    """An IP address with UDP (discovery) and TCP (RLPx) ports."""

    __slots__ = ("_ip", "_raw", "udp", "tcp")

    def __init__(self, ip=None, udp=0, tcp=0):
        self._ip = ip    # IPv4Address / IPv6Address, or None when absent/invalid
        self._raw = None
        self.udp = udp
        self.tcp = tcp

    def __eq__(self, other):
        return (isinstance(other, RpcEndpoint) and self.ip == other.ip
                and self.udp == other.udp and self.tcp == other.tcp)

    def __repr__(self):
        return "RpcEndpoint(%s, udp=%d, tcp=%d)" % (self.ip, self.udp, self.tcp)


class RpcNode(_LazyIP):
    """A node as carried in a neighbors packet."""

    __slots__ = ("_ip", "_raw", "udp", "tcp", "id")

    def __init__(self, ip=None, udp=0, tcp=0, id=None):
        self._ip = ip
        self._raw = None
        self.udp = udp
        self.tcp = tcp
        self.id = id if id is not None else NodeID()

    def __eq__(self, other):
        return (isinstance(other, RpcNode) and self.ip == other.ip and self.udp == other.udp
                and self.tcp == other.tcp and self.id == other.id)

    def __repr__(self):
        return "RpcNode(%s, udp=%d, tcp=%d, id=%s)" % (self.ip, self.udp, self.tcp, self.id[:8].hex())


def make_endpoint(addr, tcp_port: int) -> RpcEndpoint:
    """The endpoint for a socket address ``(host, port)`` and a TCP port."""
    return RpcEndpoint(_addr_ip(addr), addr[1], tcp_port)


def _addr_ip(addr):
    """The IP of a socket address tuple as an ipaddress object (IPv4-mapped -> IPv4)."""
    return _host_ip(addr[0])


@functools.lru_cache(maxsize=4096)
def _host_ip(host):
    # Parsing an address string costs microseconds and every packet needs it;
    # the objects are immutable, so a cache of recent senders is safe.
    if "%" in host:
        host = host.split("%", 1)[0]
    return _to_ip(ipaddress.ip_address(host))


def node_to_rpc(n) -> RpcNode:
    return RpcNode(n.ip, n.udp, n.tcp, n.id)


class Pending:
    """A reply matcher the loop keeps until its request is done (geth's ``pending``).

    It matches replies by sender ID, sender IP and packet type. ``callback(packet)``
    returns ``(matched, request_done)``: whether the reply belongs to this request,
    and whether the request needs no more replies. ``errc`` then receives None, or
    an error if the request was not done before the deadline.
    """

    # departure: matcher-shape: callbacks say "mine" and "done" apart, matched by ID and IP (geth 1.8.22, PR 18963)
    __slots__ = ("from_", "ip", "ptype", "deadline", "callback", "errc", "done", "on_done")

    def __init__(self, from_, ip, ptype, callback, errc=None, on_done=None):
        self.done = False
        self.from_ = from_
        self.ip = ip
        self.ptype = ptype
        self.deadline = 0.0
        self.callback = callback
        self.errc = errc if errc is not None else queue.Queue(maxsize=1)
        self.on_done = on_done  # Python-only: called once the request is over, whatever the outcome

    def finish(self, err) -> None:
        # Python-only: every way a matcher ends goes through here (errc, then the hook).
        self.done = True
        self.errc.put(err)
        if self.on_done is not None:
            self.on_done()


class Reply:
    __slots__ = ("from_", "ip", "ptype", "data", "matched")

    def __init__(self, from_, ip, ptype, data, matched):
        self.from_ = from_
        self.ip = ip
        self.ptype = ptype
        self.data = data
        self.matched = matched  # Queue(maxsize=1): whether a pending request matched


class ReadPacket:
    """A packet the discovery protocol could not handle, passed on to ``Config.unhandled``."""

    __slots__ = ("data", "addr")

    def __init__(self, data, addr):
        self.data = data
        self.addr = addr


class Config:
    """Table settings. ``private_key`` is required, the rest optional."""

    def __init__(self, private_key=None, announce_addr=None, node_db_path="", net_restrict=None,
                 bootnodes=None, unhandled=None):
        self.private_key = private_key
        self.announce_addr = announce_addr  # (ip, port) announced in the DHT
        self.node_db_path = node_db_path    # "" for a throw-away database
        self.net_restrict = net_restrict    # netutil.Netlist whitelist
        self.bootnodes = bootnodes or []
        self.unhandled = unhandled          # queue.Queue of ReadPacket; None ends the stream


class Conn:
    """The socket the protocol reads and writes (geth's ``conn`` interface).

    ``read_from_udp()`` blocks for one datagram and returns ``(data, addr)``; it
    must raise once ``close()`` was called (waking a blocked reader).
    ``write_to_udp(b, addr)`` sends one datagram. ``local_addr()`` is the bound
    ``(ip, port)``. :class:`UDPConn` implements it over a socket; tests use a pipe.
    """

    def read_from_udp(self):
        raise NotImplementedError

    def write_to_udp(self, b, addr):
        raise NotImplementedError

    def close(self):
        raise NotImplementedError

    def local_addr(self):
        raise NotImplementedError


class UDPConn(Conn):
    """The ``conn`` interface over a real UDP socket (geth's *net.UDPConn).

    ``close`` shuts the socket down first so that a thread blocked in
    ``read_from_udp`` wakes up and sees the socket closed.
    """

    # Discovery packets are at most 1280 bytes; read more so that oversize ones
    # are seen whole (and rejected) rather than cut.
    read_size = 2048

    def __init__(self, sock):
        self.sock = sock
        self._closed = False
        self._laddr = sock.getsockname()[:2]

    @classmethod
    def listen(cls, host="127.0.0.1", port=0):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_DGRAM)
        try:
            s.bind((host, port))
        except OSError:
            s.close()
            raise
        return cls(s)

    def read_from_udp(self):
        """Block for one datagram: ``(data, addr)``; raises OSError once closed."""
        data, addr = self.sock.recvfrom(self.read_size)
        if addr is None or self._closed:  # woken by shutdown
            raise OSError("use of closed network connection")
        return data, addr

    def write_to_udp(self, b, addr) -> int:
        return self.sock.sendto(b, addr)

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # unconnected UDP reports ENOTCONN but still wakes readers
        self.sock.close()

    def local_addr(self):
        return self._laddr


def listen_udp(c, cfg: Config):
    """Start discovery on ``c`` (a conn, or a bound UDP socket); returns the Table."""
    tab, _ = new_udp(c, cfg)
    log.info("UDP listener up", node=tab.self())
    return tab


def new_udp(c, cfg: Config):
    """Start discovery on ``c``: ``(Table, udp)``."""
    if isinstance(c, socket.socket):
        c = UDPConn(c)
    t = UDP(c, cfg.private_key, cfg.net_restrict)
    realaddr = c.local_addr()
    if cfg.announce_addr is not None:
        realaddr = cfg.announce_addr
    # geth TODO kept: the TCP port is assumed equal to the UDP port.
    t.our_endpoint = make_endpoint(realaddr, realaddr[1])
    try:
        tab = new_table(t, pubkey_id(cfg.private_key.public_key), realaddr, cfg.node_db_path,
                        cfg.bootnodes)
    except Exception:
        c.close()
        raise
    t.tab = tab
    t._init_local_record()
    t._tab_ready.set()
    t._start(cfg.unhandled)
    return tab, t


class UDP:
    """The discovery v4 RPC protocol (geth's unexported ``udp`` type; it is the Table's transport)."""

    def __init__(self, conn, priv, netrestrict=None):
        self.conn = conn
        self.netrestrict = netrestrict
        self.priv = priv
        self.our_endpoint = None
        self.tab = None  # the Table (embedded in geth)
        # The table's first refresh may call findnode before new_udp has stored the
        # table here (geth has the same window); findnode waits for this.
        self._tab_ready = threading.Event()
        self.closing = threading.Event()
        self._mailbox = queue.Queue()  # addpending / gotreply / closing
        self._mail_lock = threading.Lock()
        self._loop_done = False
        self._ping_waiters = 0  # ping matchers posted and not yet removed; under _mail_lock
        self.clock = time.monotonic  # deadline clock; tests may replace it
        self.check_clock_drift = None  # defaults to p2p.discover.ntp.check_clock_drift
        self._threads = []
        self._clock_check = None  # the running clock-check thread, joined on close
        # The local node record (EIP-778) and its lock; see local_record().
        self._record_lock = threading.Lock()
        self._record = None
        self._seq_rlp = encode_uint(0)  # our record's seq as RLP, for the ping/pong tail
        # departure: ping-back-once: one ping back at a time per sender key and address
        self._pingbacks = set()
        self._pingbacks_lock = threading.Lock()

    def _start(self, unhandled):
        # Python-only: newUDP's two `go` statements.
        for target, name, args in ((self.loop, "discover.udp.loop", ()),
                                   (self.read_loop, "discover.udp.readLoop", (unhandled,))):
            th = threading.Thread(target=target, args=args, name=name, daemon=True)
            self._threads.append(th)
            th.start()

    def node_from_rpc(self, sender, rn):
        """The Node for a neighbors entry from ``sender``: ``(node, err)``."""
        if rn.udp <= 1024:
            return None, DiscoverError("low port")
        if rn.ip is None:
            return None, DiscoverError("invalid IP")
        err = check_relay_ip(_addr_ip(sender), rn.ip)
        if err is not None:
            return None, err
        if self.netrestrict is not None and not self.netrestrict.contains(rn.ip):
            return None, DiscoverError("not contained in netrestrict whitelist")
        n = new_node(rn.id, rn.ip, rn.udp, rn.tcp)
        try:
            n.validate_complete()
        except ValueError as e:
            return n, e
        return n, None

    def close(self):
        if self.closing.is_set():
            return
        self.closing.set()
        self._mailbox.put(("closing", None))
        self.conn.close()
        # departure: udp-close-waits: close waits for both loops to end (a TODO in geth)
        me = threading.current_thread()
        for th in self._threads:
            if th is not me:
                th.join(5)
        clock_check = self._clock_check
        if clock_check is not None and clock_check is not me:
            clock_check.join(5)

    # -- the local record (EIP-778/868; geth 1.9 keeps it in enode.LocalNode) --

    def _init_local_record(self):
        # Python-only: the record starts one above the seq stored for our ID, so that
        # a restarted node's record is newer than any record it sent before.
        db = self.tab.db
        self_id = self.tab.self().id
        with self._record_lock:
            self._sign_record(db.local_seq(self_id) + 1)

    def _sign_record(self, seq):
        # Python-only: (re)sign our record with the current endpoint; holds _record_lock.
        r = enr.Record()
        ep = self.our_endpoint
        if ep.ip is not None and not ep.ip.is_unspecified:
            r.set(enr.IP(ep.ip) if ep.ip.version == 4 else enr.IP6(ep.ip))
        r.set(enr.TCP(ep.tcp))
        r.set(enr.UDP(ep.udp))
        r.set_seq(seq)
        enr.sign_v4(r, self.priv)
        self._record = r
        self._seq_rlp = encode_uint(seq)
        self.tab.db.store_local_seq(self.tab.self().id, seq)

    def local_record(self) -> enr.Record:
        """Our signed node record (ip, tcp, udp, secp256k1)."""
        with self._record_lock:
            return self._record

    def update_endpoint(self, addr, tcp_port: int) -> bool:
        """Announce a new endpoint (e.g. the NAT's external IP); bumps the record's seq.

        Returns whether anything changed.
        """
        ep = make_endpoint(addr, tcp_port)
        with self._record_lock:
            if ep == self.our_endpoint:
                return False
            self.our_endpoint = ep
            self._sign_record(self._record.seq() + 1)
        log.info("Local node record updated", seq=self._record.seq(), addr=addr_str(addr))
        return True

    # -- requests -----------------------------------------------------------

    def ping(self, toid, toaddr):
        """Send a ping and wait for the pong; returns None or an error."""
        return self.send_ping(toid, toaddr, None).get()

    def send_ping(self, toid, toaddr, callback, on_done=None):
        """Send a ping; ``callback`` runs when its pong arrives. Returns the errc queue."""
        try:
            req = Ping(4, self.our_endpoint, make_endpoint(toaddr, 0),  # geth TODO: known TCP port
                       int(time.time() + expiration), [self._seq_rlp])
            packet, hash_ = encode_packet(self.priv, pingPacket, req)
        except Exception as e:  # noqa: BLE001 - handed to the caller, as geth's errc
            errc = queue.Queue(maxsize=1)
            errc.put(e)
            if on_done is not None:
                on_done()
            return errc

        def match(p):
            # Only a pong that carries the hash of this ping answers it.
            matched = p.reply_tok == hash_
            if matched:
                # EIP-868: note the seq of the peer's record before the ping returns.
                self.tab.update_seq(toid, seq_from_tail(p.rest))
                if callback is not None:
                    callback()
            return matched, matched

        errc = self.pending(toid, _addr_ip(toaddr), pongPacket, match, on_done)
        self.write(toaddr, req.name(), packet)
        return errc

    def waitping(self, from_, ip):
        return self.pending(from_, ip, pingPacket, lambda p: (True, True)).get()

    def findnode(self, toid, toaddr, target):
        """Ask for the neighbors of target; waits for up to bucketSize nodes. ``(nodes, err)``."""
        self._tab_ready.wait(10)
        self._ensure_bond(toid, toaddr)

        nodes = []
        nreceived = [0]

        def match(reply):
            for rn in reply.nodes:
                nreceived[0] += 1
                n, err = self.node_from_rpc(toaddr, rn)
                if err is not None:
                    log.trace("Invalid neighbor node received", ip=rn.ip, addr=addr_str(toaddr), err=err)
                    continue
                nodes.append(n)
            return True, nreceived[0] >= bucketSize

        errc = self.pending(toid, _addr_ip(toaddr), neighborsPacket, match)
        self.send(toaddr, findnodePacket, Findnode(target, int(time.time() + expiration)))
        return nodes, errc.get()

    def _ensure_bond(self, toid, toaddr):
        # Python-only, next to its callers findnode and request_enr: a node that hasn't
        # seen our ping lately has forgotten our endpoint proof and would ignore the
        # request, so get pinged by it first.
        if time.time() - self.tab.db.last_ping_received(toid, _addr_ip(toaddr)) > nodeDBNodeExpiration:
            self.ping(toid, toaddr)
            self.waitping(toid, _addr_ip(toaddr))

    def request_enr(self, n):
        """Ask node ``n`` for its record (EIP-868): ``(record, err)``; the record is verified.

        geth 1.9's RequestENR: the reply must carry the hash of our request, the
        record must be signed by ``n``'s key and name an IP that ``n``'s address
        may relay.
        """
        self._tab_ready.wait(10)
        addr = n.addr()
        self._ensure_bond(n.id, addr)
        req = EnrRequest(int(time.time() + expiration))
        try:
            packet, hash_ = encode_packet(self.priv, enrRequestPacket, req)
        except Exception as e:  # noqa: BLE001 - handed to the caller
            return None, e
        got = []

        def match(r):
            matched = r.reply_tok == hash_
            if matched:
                got.append(r)
            return matched, matched

        errc = self.pending(n.id, n.ip, enrResponsePacket, match)
        self.write(addr, req.name(), packet)
        err = errc.get()
        if err is not None:
            return None, err
        rec = got[0].record
        if rec.node_addr() != crypto.keccak256(n.id):
            return None, DiscoverError("invalid ID in response record")
        try:
            ip = rec.load(enr.IP).address()
        except ValueError:
            ip = None
        if ip is not None:
            err = check_relay_ip(n.ip, _to_ip(ip))
            if err is not None:
                return None, DiscoverError("invalid IP in response record: %s" % err)
        return rec, None

    def pending(self, id, ip, ptype, callback, on_done=None):
        """Register a reply matcher with the loop; returns its errc queue."""
        p = Pending(id, ip, ptype, callback, on_done=on_done)
        if not self._post(("addpending", p)):
            p.finish(errClosed)
        return p.errc

    def handle_reply(self, from_, from_ip, ptype, req, wait=True) -> bool:
        """Hand a reply to the loop; returns whether a pending request matched.

        With ``wait=False`` the result isn't waited for (and False is returned):
        the ping handler doesn't need it and saves a thread round trip.
        """
        if not wait and ptype == pingPacket and not self._ping_waiters:
            # No waitping is registered: nothing could match, so the loop isn't woken
            # (the hand-off cost 22-27 us of node CPU per ping, a fifth of a pong).
            return False
        matched = queue.Queue(maxsize=1) if wait else None
        if not self._post(("gotreply", Reply(from_, from_ip, ptype, req, matched))):
            return False
        return matched.get() if wait else False

    def _post(self, msg) -> bool:
        # The select on t.closing in geth: a message is only queued while the loop runs.
        with self._mail_lock:
            if self._loop_done or self.closing.is_set():
                return False
            if msg[0] == "addpending" and msg[1].ptype == pingPacket:
                self._ping_waiters += 1
            self._mailbox.put(msg)
            return True

    # -- the pending-reply loop ----------------------------------------------

    def loop(self):
        # geth keeps one list in deadline order and scans it for every reply. Here
        # the same order lives in a deque (deadlines only grow, so expiry pops from
        # the front) and an index by (sender, IP, type) finds the matchers of a reply.
        plist = collections.deque()
        index = {}
        cont_timeouts = 0  # consecutive timeouts, for the clock drift check
        ntp_warn_time = None
        mailbox = self._mailbox

        def clock():
            return self.clock()  # looked up each time so tests can swap the clock

        def remove(p):
            p.done = True
            key = (p.from_, p.ip, p.ptype)
            lst = index.get(key)
            if lst is not None:
                try:
                    lst.remove(p)
                except ValueError:
                    return
                if not lst:
                    del index[key]
                if p.ptype == pingPacket:
                    with self._mail_lock:
                        self._ping_waiters -= 1

        try:
            while True:
                # resetTimeout: the nearest deadline, dropping ones too far ahead
                # (they appear when the clock jumps backwards).
                timeout = None
                if plist:
                    now = clock()
                    while plist:
                        p = plist[0]
                        if p.done:
                            plist.popleft()
                            continue
                        dist = p.deadline - now
                        if dist < 2 * respTimeout:
                            timeout = max(dist, 0.0)
                            break
                        plist.popleft()
                        remove(p)
                        p.finish(errClockWarp)
                try:
                    kind, value = mailbox.get(timeout=timeout)
                except queue.Empty:
                    kind, value = "timeout", None

                if kind == "closing":
                    break
                elif kind == "addpending":
                    value.deadline = clock() + respTimeout
                    plist.append(value)
                    key = (value.from_, value.ip, value.ptype)
                    lst = index.get(key)
                    if lst is None:
                        index[key] = [value]
                    else:
                        lst.append(value)
                elif kind == "gotreply":
                    r = value
                    matched = False  # whether any matcher took the reply as its own
                    lst = index.get((r.from_, r.ip, r.ptype))
                    if lst:
                        cont_timeouts = 0
                        for p in list(lst):
                            try:
                                ok, request_done = p.callback(r.data)
                            except Exception as err:  # a bug in a callback must not end the loop
                                log.error("Reply callback failed", ptype=r.ptype, err=repr(err), exc_info=True)
                                remove(p)
                                p.finish(err)
                                continue
                            matched = matched or ok
                            # A matcher stays until its callback reports that all
                            # replies arrived (neighbors may come in several packets).
                            if request_done:
                                remove(p)
                                p.finish(None)
                    if r.matched is not None:
                        r.matched.put(matched)
                elif kind == "timeout":
                    now = clock()
                    while plist and (plist[0].done or now >= plist[0].deadline):
                        p = plist.popleft()
                        if not p.done:
                            remove(p)
                            p.finish(errTimeout)
                            cont_timeouts += 1
                    # Many timeouts in a row: maybe our clock is off, check it.
                    if cont_timeouts > ntpFailureThreshold:
                        if ntp_warn_time is None or time.monotonic() - ntp_warn_time >= ntpWarningCooldown:
                            ntp_warn_time = time.monotonic()
                            self._start_clock_check()
                        cont_timeouts = 0
        except Exception as err:  # only a bug gets here: say so, and fail what waits
            log.error("Discovery reply loop failed", err=repr(err), exc_info=True)
            raise
        finally:
            with self._mail_lock:
                self._loop_done = True
            for p in plist:
                if not p.done:
                    p.finish(errClosed)
            # Answer whatever was queued before the loop stopped.
            while True:
                try:
                    kind, value = mailbox.get_nowait()
                except queue.Empty:
                    break
                if kind == "addpending":
                    value.finish(errClosed)
                elif kind == "gotreply" and value.matched is not None:
                    value.matched.put(False)

    def _start_clock_check(self):
        # Python-only: the loop's `go checkClockDrift()`, with the thread kept for close.
        fn = self.check_clock_drift
        if fn is None:
            from p2p.discover.ntp import check_clock_drift as fn
        prev = self._clock_check
        if prev is not None and prev.is_alive():
            return
        th = threading.Thread(target=fn, name="discover.checkClockDrift", daemon=True)
        self._clock_check = th
        th.start()

    # -- sending --------------------------------------------------------------

    def send(self, toaddr, ptype, req):
        try:
            packet, hash_ = encode_packet(self.priv, ptype, req)
        except Exception as e:  # noqa: BLE001 - returned, as geth's error
            return None, e
        return hash_, self.write(toaddr, req.name(), packet)

    def write(self, toaddr, what, packet):
        err = None
        try:
            self.conn.write_to_udp(packet, toaddr)
        except OSError as e:
            err = e
        else:
            if metrics.Enabled:
                _egress_packets.mark(1)
                _egress_bytes.mark(len(packet))
        log.trace(">> " + what, addr=addr_str(toaddr), err=err)
        return err

    # -- receiving ------------------------------------------------------------

    def read_loop(self, unhandled):
        try:
            while True:
                try:
                    data, from_ = self.conn.read_from_udp()
                except Exception as err:  # noqa: BLE001 - sorted below, as geth does
                    if self.closing.is_set():
                        log.debug("UDP read error", err=err)
                        return
                    if is_temporary_error(err):
                        log.debug("Temporary UDP read error", err=err)
                        continue
                    log.debug("UDP read error", err=err)
                    return
                if metrics.Enabled:
                    _ingress_packets.mark(1)
                    _ingress_bytes.mark(len(data))
                try:
                    err = self.handle_packet(from_, data)
                except Exception as e:  # a bug must not kill the node
                    log.error("Discovery packet handler failed", addr=addr_str(from_), err=repr(e), exc_info=True)
                    err = e
                if err is not None and unhandled is not None:
                    try:
                        # departure: unhandled-copy: the packet's own bytes, never a view of a reused read buffer
                        unhandled.put_nowait(ReadPacket(bytes(data), from_))
                    except queue.Full:
                        pass
        finally:
            self.conn.close()
            if unhandled is not None:
                try:
                    unhandled.put(None, timeout=1)  # close(unhandled)
                except queue.Full:
                    pass

    def handle_packet(self, from_, buf):
        packet, from_id, hash_, err = decode_packet(buf)
        if err is not None:
            log.debug("Bad discv4 packet", addr=addr_str(from_), err=err)
            return err
        err = packet.handle(self, from_, from_id, hash_)
        if err is None:
            log.trace("<< " + packet.name(), addr=addr_str(from_))
        else:
            log.debug("<< " + packet.name(), addr=addr_str(from_), err=err)
        return err

    def _ping_back(self, from_id, from_, n, ping_time):
        # Python-only, next to its caller Ping.handle: ping a node that pinged us and
        # is not bonded, at most once at a time per key and address.
        key = (from_id, from_)
        with self._pingbacks_lock:
            if key in self._pingbacks:
                return
            self._pingbacks.add(key)
        from_ip = _addr_ip(from_)

        def bonded():
            # The sender answered from its address: its ping (at ping_time) now counts,
            # so that our findnode/ENR requests to it need no ping first.
            # departure: nodedb-bond-ip-limit: a bond beyond the limit of its address block is not recorded
            if self.tab.db.update_last_ping_received(from_id, from_ip, ping_time):
                self.tab.add_through_ping(n)

        def done():
            with self._pingbacks_lock:
                self._pingbacks.discard(key)

        self.send_ping(from_id, from_, bonded, on_done=done)


macSize = 256 // 8
sigSize = 520 // 8
headSize = macSize + sigSize  # space of the packet frame data
maxPacketSize = 1280          # discovery packets are at most this big


def _compute_max_neighbors():
    # Go's init(): neighbors replies are split to stay below 1280 bytes; find how
    # many largest-possible entries fit.
    biggest = _enc_rpc_node(RpcNode(ipaddress.IPv6Address(b"\x01" * 16), 0xFFFF, 0xFFFF, NodeID()))
    exp = encode_uint(2 ** 64 - 1)
    n = 0
    while True:
        if headSize + len(encode_list((encode_list([biggest] * (n + 1)), exp))) + 1 >= 1280:
            return n
        n += 1


def _ip_bytes(ip) -> bytes:
    return b"" if ip is None else ip.packed


def _enc_endpoint(e: RpcEndpoint) -> bytes:
    return encode_list((encode_bytes(_ip_bytes(e.ip)), encode_uint(e.udp), encode_uint(e.tcp)))


def _enc_rpc_node(n: RpcNode) -> bytes:
    return encode_list((encode_bytes(_ip_bytes(n.ip)), encode_uint(n.udp), encode_uint(n.tcp),
                        encode_bytes(n.id)))


maxNeighbors = _compute_max_neighbors()


def encode_packet(priv, ptype, req):
    """Sign and frame a packet: returns ``(packet, hash)``."""
    body = bytes((ptype,)) + req.encode_body()
    sig = crypto.sign(crypto.keccak256(body), priv)
    # The hash covers signature and body; it doesn't protect anything by itself.
    h = crypto.keccak256(sig, body)
    return b"".join((h, sig, body)), h


def decode_packet(buf):
    """Check, recover and parse a datagram: ``(packet, from_id, hash, err)``.

    ``err`` is None on success; on failure ``packet`` is None and ``from_id`` /
    ``hash`` are set as far as they were computed (as in geth).
    """
    n = len(buf)
    if n < headSize + 1:
        return None, None, None, errPacketTooSmall
    if n > maxPacketSize:
        # geth reads into a 1280-byte buffer, so a bigger datagram is cut and fails
        # the hash check; we read it whole and reject it explicitly.
        return None, None, None, errPacketTooBig
    if type(buf) is not bytes:
        buf = bytes(buf)
    mv = memoryview(buf)
    h = buf[:macSize]
    if crypto.new_keccak256(mv[macSize:]).digest() != h:
        return None, None, None, errBadHash
    try:
        from_id = recover_node_id(crypto.new_keccak256(mv[headSize:]).digest(), buf[macSize:headSize])
    except (crypto.CryptoError, ValueError) as e:
        return None, None, h, e
    ptype = buf[headSize]
    if ptype not in _packet_types:
        return None, from_id, h, DecodeError("unknown type: %d" % ptype)
    try:
        req = _decode_body(ptype, buf, headSize + 1)
    except (DecodeError, ValueError) as e:
        return None, from_id, h, e
    return req, from_id, h, None


def _ip(b):
    # geth keeps any byte string as net.IP; only 4- and 16-byte ones are addresses.
    n = len(b)
    if n == 4:
        return ipaddress.IPv4Address(b)
    if n == 16:
        return _to_ip(ipaddress.IPv6Address(b))
    return None


def _endpoint(raw_ip, udp_port, tcp_port):
    # An endpoint as rlpcodec.endpoint reads it; the IP is parsed when first used.
    ep = object.__new__(RpcEndpoint)
    ep._raw = raw_ip
    ep._ip = None
    ep.udp = udp_port
    ep.tcp = tcp_port
    return ep


def _node_id(it, buf):
    b = rlpcodec.string(it, buf)
    if len(b) != 64:
        raise rlpcodec.DecodeError("rlp: input string too %s for [64]uint8" % ("short" if len(b) < 64 else "long"))
    return NodeID(b)


def _decode_body(ptype, buf, start):
    """The packet of type ``ptype`` whose RLP body starts at ``buf[start]``."""
    try:
        return _decode_fields(ptype, buf, start)
    except rlpcodec.DecodeError as e:
        raise DecodeError(str(e)) from None


def _decode_fields(ptype, buf, start):
    # Each packet is made with object.__new__ and given every field here: no __init__ to run.
    end = len(buf)
    if ptype == pingPacket and start < end:
        f = rlpcodec.ping_fast(buf, start, end)
        if f is not None:
            p = object.__new__(Ping)
            p.version = f[0]
            p.from_ = _endpoint(*f[1])
            p.to = _endpoint(*f[2])
            p.expiration = f[3]
            p.rest = f[4]
            return p
    # Only the first item counts: bytes after it are ignored (EIP-8).
    top = rlpcodec.head(buf, start, end)
    if ptype == pingPacket:
        f = rlpcodec.fields(top, buf, 4, True)
        p = object.__new__(Ping)
        p.version = rlpcodec.uint(f[0], buf, 8)
        p.from_ = _endpoint(*rlpcodec.endpoint(f[1], buf))
        p.to = _endpoint(*rlpcodec.endpoint(f[2], buf))
        p.expiration = rlpcodec.uint(f[3], buf, 8)
    elif ptype == pongPacket:
        f = rlpcodec.fields(top, buf, 3, True)
        p = object.__new__(Pong)
        p.to = _endpoint(*rlpcodec.endpoint(f[0], buf))
        p.reply_tok = rlpcodec.string(f[1], buf)
        p.expiration = rlpcodec.uint(f[2], buf, 8)
    elif ptype == findnodePacket:
        f = rlpcodec.fields(top, buf, 2, True)
        p = object.__new__(Findnode)
        p.target = _node_id(f[0], buf)
        p.expiration = rlpcodec.uint(f[1], buf, 8)
    elif ptype == neighborsPacket:
        f = rlpcodec.fields(top, buf, 2, True)
        lst = f[0]
        if lst[0] != rlpcodec.LIST:
            raise rlpcodec.DecodeError("rlp: expected input list")
        nodes = []
        for nit in rlpcodec.split(buf, lst[2], lst[3]):
            nf = rlpcodec.fields(nit, buf, 4, False)
            n = object.__new__(RpcNode)
            n._raw = rlpcodec.string(nf[0], buf)
            n._ip = None
            n.udp = rlpcodec.uint(nf[1], buf, 2)
            n.tcp = rlpcodec.uint(nf[2], buf, 2)
            n.id = _node_id(nf[3], buf)
            nodes.append(n)
        p = object.__new__(Neighbors)
        p.nodes = nodes
        p.expiration = rlpcodec.uint(f[1], buf, 8)
    elif ptype == enrRequestPacket:
        f = rlpcodec.fields(top, buf, 1, True)
        p = object.__new__(EnrRequest)
        p.expiration = rlpcodec.uint(f[0], buf, 8)
    else:  # enrResponsePacket
        f = rlpcodec.fields(top, buf, 2, True)
        p = object.__new__(EnrResponse)
        p.reply_tok = rlpcodec.string(f[0], buf)
        rec = enr.Record()
        try:
            rec.decode_rlp(rlpcodec.raw(f[1], buf))
        except ValueError as e:
            raise rlpcodec.DecodeError("invalid record: %s" % e) from None
        p.record = rec
    n = p._nfields
    p.rest = [rlpcodec.raw(it, buf) for it in f[n:]] if len(f) > n else []
    return p


# ---------------------------------------------------------------------------
# The packet types, with their handlers in Go's order (geth: methods of the
# packet structs). Every packet keeps unknown trailing list elements in ``rest``
# (their raw RLP encodings) for forward compatibility (EIP-8); EIP-868 puts the
# sender's record seq there in ping and pong.


class _Packet:
    __slots__ = ()

    def __eq__(self, other):
        return type(other) is type(self) and all(
            getattr(self, f) == getattr(other, f) for f in self.__slots__)

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join(
            "%s=%r" % (f, getattr(self, f)) for f in self.__slots__))


class Ping(_Packet):
    __slots__ = ("version", "from_", "to", "expiration", "rest")
    ptype = pingPacket
    _nfields = 4

    def __init__(self, version=4, from_=None, to=None, expiration=0, rest=None):
        self.version = version
        self.from_ = from_ if from_ is not None else RpcEndpoint()  # 'from' is a keyword
        self.to = to if to is not None else RpcEndpoint()
        self.expiration = expiration
        self.rest = rest if rest is not None else []

    def encode_body(self):
        return encode_list((encode_uint(self.version), _enc_endpoint(self.from_),
                            _enc_endpoint(self.to), encode_uint(self.expiration), *self.rest))

    def handle(self, t, from_, from_id, mac):
        if expired(self.expiration):
            return errExpired
        t.send(from_, pongPacket, Pong(make_endpoint(from_, self.from_.tcp), mac,
                                       int(time.time() + expiration), [t._seq_rlp]))
        from_ip = _addr_ip(from_)
        t.handle_reply(from_id, from_ip, pingPacket, self, wait=False)  # for waitping

        # Before adding the node make sure it has our pong recently, so that its
        # findnode requests will be accepted later.
        n = new_node(from_id, from_ip, from_[1], self.from_.tcp)
        db = t.tab.db
        now = time.time()
        if now - db.last_pong_received(from_id, from_ip) > nodeDBNodeExpiration:
            # departure: lastping-after-pong: an unbonded sender's ping is written only once it answers our ping back
            t._ping_back(from_id, from_, n, now)
        else:
            t.tab.add_through_ping(n)
            db.update_last_ping_received(from_id, from_ip, now)
        return None

    def name(self):
        return "PING/v4"


class Pong(_Packet):
    __slots__ = ("to", "reply_tok", "expiration", "rest")
    ptype = pongPacket
    _nfields = 3

    def __init__(self, to=None, reply_tok=b"", expiration=0, rest=None):
        # 'to' mirrors the UDP envelope address of the ping, so the pinger learns
        # its external address; reply_tok is the hash of the ping packet.
        self.to = to if to is not None else RpcEndpoint()
        self.reply_tok = reply_tok
        self.expiration = expiration
        self.rest = rest if rest is not None else []

    def encode_body(self):
        return encode_list((_enc_endpoint(self.to), encode_bytes(self.reply_tok),
                            encode_uint(self.expiration), *self.rest))

    def handle(self, t, from_, from_id, mac):
        if expired(self.expiration):
            return errExpired
        from_ip = _addr_ip(from_)
        if not t.handle_reply(from_id, from_ip, pongPacket, self):
            return errUnsolicitedReply
        t.tab.db.update_last_pong_received(from_id, from_ip, time.time())
        return None

    def name(self):
        return "PONG/v4"


class Findnode(_Packet):
    __slots__ = ("target", "expiration", "rest")
    ptype = findnodePacket
    _nfields = 2

    def __init__(self, target=None, expiration=0, rest=None):
        self.target = target if target is not None else NodeID()  # need not be a real key
        self.expiration = expiration
        self.rest = rest if rest is not None else []

    def encode_body(self):
        return encode_list((encode_bytes(self.target), encode_uint(self.expiration), *self.rest))

    def handle(self, t, from_, from_id, mac):
        if expired(self.expiration):
            return errExpired
        from_ip = _addr_ip(from_)
        # departure: endpoint-proof-per-ip: the bond counts for the ID and IP that ponged (geth 1.8.22/1.9.0)
        if not t.tab.db.has_bond(from_id, from_ip):
            # Without an endpoint proof (a recent pong from this address) we don't
            # answer: otherwise a spoofed source address would let anyone aim our
            # much larger neighbors replies at a victim.
            return errUnknownNode
        target = crypto.keccak256(self.target)
        with t.tab.mutex:
            closest = t.tab.closest(target, bucketSize).entries
        p = Neighbors([], int(time.time() + expiration))
        sent = False
        # Split the reply so that each packet stays below 1280 bytes.
        for n in closest:
            if check_relay_ip(from_ip, n.ip) is None:
                p.nodes.append(node_to_rpc(n))
            if len(p.nodes) == maxNeighbors:
                t.send(from_, neighborsPacket, p)
                p.nodes = []
                sent = True
        if p.nodes or not sent:
            t.send(from_, neighborsPacket, p)
        return None

    def name(self):
        return "FINDNODE/v4"


class Neighbors(_Packet):
    __slots__ = ("nodes", "expiration", "rest")
    ptype = neighborsPacket
    _nfields = 2

    def __init__(self, nodes=None, expiration=0, rest=None):
        self.nodes = nodes if nodes is not None else []
        self.expiration = expiration
        self.rest = rest if rest is not None else []

    def encode_body(self):
        return encode_list((encode_list([_enc_rpc_node(n) for n in self.nodes]),
                            encode_uint(self.expiration), *self.rest))

    def handle(self, t, from_, from_id, mac):
        if expired(self.expiration):
            return errExpired
        if not t.handle_reply(from_id, _addr_ip(from_), neighborsPacket, self):
            return errUnsolicitedReply
        return None

    def name(self):
        return "NEIGHBORS/v4"


class EnrRequest(_Packet):
    """EIP-868's ENRRequest: ``[expiration]`` (geth 1.9's enrRequestV4)."""

    __slots__ = ("expiration", "rest")
    ptype = enrRequestPacket
    _nfields = 1

    def __init__(self, expiration=0, rest=None):
        self.expiration = expiration
        self.rest = rest if rest is not None else []

    def encode_body(self):
        return encode_list((encode_uint(self.expiration), *self.rest))

    def handle(self, t, from_, from_id, mac):
        if expired(self.expiration):
            return errExpired
        if not t.tab.db.has_bond(from_id, _addr_ip(from_)):
            return errUnknownNode  # as findnode: no reply to an unproven address
        t.send(from_, enrResponsePacket, EnrResponse(mac, t.local_record()))
        return None

    def name(self):
        return "ENRREQUEST/v4"


class EnrResponse(_Packet):
    """EIP-868's ENRResponse: ``[request-hash, record]`` (geth 1.9's enrResponseV4)."""

    __slots__ = ("reply_tok", "record", "rest")
    ptype = enrResponsePacket
    _nfields = 2

    def __init__(self, reply_tok=b"", record=None, rest=None):
        self.reply_tok = reply_tok
        self.record = record  # a verified enr.Record
        self.rest = rest if rest is not None else []

    def encode_body(self):
        return encode_list((encode_bytes(self.reply_tok), self.record.encode_rlp(), *self.rest))

    def handle(self, t, from_, from_id, mac):
        if not t.handle_reply(from_id, _addr_ip(from_), enrResponsePacket, self):
            return errUnsolicitedReply
        return None

    def name(self):
        return "ENRRESPONSE/v4"


_packet_types = {pingPacket: Ping, pongPacket: Pong, findnodePacket: Findnode,
                 neighborsPacket: Neighbors, enrRequestPacket: EnrRequest,
                 enrResponsePacket: EnrResponse}


def expired(ts) -> bool:
    """Whether the expiration ``ts`` (a uint64 on the wire) is in the past.

    As in Go, which converts it to int64 first: a value of 2**63 or more is
    negative, hence in the past.
    """
    if ts >= 1 << 63:
        ts -= 1 << 64
    return ts < time.time()


def seq_from_tail(tail) -> int:
    """The record seq that EIP-868 puts first in the tail of ping and pong (0 if none)."""
    if not tail:
        return 0
    try:
        return rlpcodec.uint(rlpcodec.head(tail[0], 0, len(tail[0])), tail[0], 8)
    except rlpcodec.DecodeError:
        return 0
