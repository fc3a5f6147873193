"""The devp2p server: listens, dials, runs both handshakes and keeps the peer set.

Twin of geth's ``p2p/server.go`` (mid-2018). The functions come in the same order
as in Go. ``Server.run`` is one mailbox loop: the Go channels it selects on
(``quit``, ``addstatic``, ``removestatic``, ``addtrusted``, ``removetrusted``,
``peerOp``, ``taskdone``, ``posthandshake``, ``addpeer``, ``delpeer``) are the
message kinds of ``Server._mailbox``.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, List, Optional

from p2p import dial as _dial
from p2p import peer_error
from p2p.discover.node import Node, new_node, pubkey_id
from p2p.event import Feed, Subscription
from p2p.log import TRACE, Logger, get_logger
from p2p.metrics import new_metered_conn
from p2p.netutil import addr_str, is_temporary_error
from p2p.crypto import PrivateKey
from p2p.dial import NodeDialer
from p2p.nat.nat import Interface as NATInterface
from p2p.netutil.net import Netlist
from p2p.peer import (
    Peer,
    PeerEvent,
    PeerEventTypeAdd,
    PeerEventTypeDrop,
    PeerInfo,
    ProtoHandshake,
    baseProtocolVersion,
    count_matching_protocols,
    new_peer,
)
from p2p.peer_error import is_conn_error
from p2p.protocol import Protocol

if TYPE_CHECKING:  # for the annotation only: _start imports discovery when it runs it
    from p2p.discover.table import Table

defaultDialTimeout = 15.0

# At most this many dials at once, and (unless configured) this many inbound
# handshakes at once; one peer slot in defaultDialRatio may be dialed.
maxActiveDialTasks = 16
defaultMaxPendingPeers = 50
defaultDialRatio = 3

# Longest a connection may sit idle / take to write one message (seconds).
frameReadTimeout = 30.0
frameWriteTimeout = 20.0

# How long stop() waits for a thread it joins before giving up on it.
_JOIN_TIMEOUT = 10.0


class ServerStoppedError(Exception):
    """Returned to handshakes that raced with Server.stop."""


errServerStopped = ServerStoppedError("server stopped")

# The connection flags live in dial.py (the dialer creates them); geth declares
# them in server.go, so they are named here too, under geth's names.
ConnFlag = _dial.ConnFlag
dynDialedConn = ConnFlag.dynDialedConn
staticDialedConn = ConnFlag.staticDialedConn
inboundConn = ConnFlag.inboundConn
trustedConn = ConnFlag.trustedConn

# Back-off between retries of a temporary accept error (seconds): doubled on each
# failure in a row, up to the maximum.
_acceptRetryMin = 0.005
_acceptRetryMax = 1.0


@dataclass
class Config:
    """Server options; none may change while the server runs."""

    # secp256k1 private key of this node (required).
    private_key: Optional[PrivateKey] = None
    # Most peers connected at once; must be > 0 to accept anyone.
    max_peers: int = 0
    # Most inbound connections in the handshake phase; 0 means 50.
    max_pending_peers: int = 0
    # 1/dial_ratio of the peer slots may be dialed; 0 means 3.
    dial_ratio: int = 0
    # Disables the discv4 UDP listener and table.
    no_discovery: bool = False
    # Runs topic discovery (discv5) too, on the same UDP port as discv4 (or alone).
    discovery_v5: bool = False
    # Node name sent in the devp2p hello.
    name: str = ""
    # Nodes used to join the discovery network.
    bootstrap_nodes: List[Node] = field(default_factory=list)
    # discv5 nodes (p2p.discv5.node.Node) used to join the topic discovery network.
    bootstrap_nodes_v5: List[Any] = field(default_factory=list)
    # Nodes kept connected at all times.
    static_nodes: List[Node] = field(default_factory=list)
    # Nodes always allowed in, even above max_peers.
    trusted_nodes: List[Node] = field(default_factory=list)
    # A netutil.Netlist: when set, only these networks are dialed / accepted.
    net_restrict: Optional[Netlist] = None
    # Path of the node database ("" keeps it in a temporary directory).
    node_database: str = ""
    # Sub-protocols (p2p.protocol.Protocol) offered to every peer.
    protocols: List[Protocol] = field(default_factory=list)
    # "host:port" to listen on (TCP, and UDP for discovery). Port 0 picks a free
    # port; start() writes the real address back. "" disables listening.
    listen_addr: str = ""
    # A p2p.nat interface used to map the listening ports, or None.
    nat: Optional[NATInterface] = None
    # A NodeDialer (object with dial(node) -> socket); None means a TCPDialer made by
    # start(), whose connects in progress stop() aborts (a dialer passed here is yours).
    dialer: Optional[NodeDialer] = None
    # Never dial out.
    no_dial: bool = False
    # Emit PeerEvents for every message sent and received.
    enable_msg_events: bool = False
    # A p2p.log.Logger; None means get_logger("p2p").
    logger: Optional[Logger] = None


def split_host_port(addr: str):
    """Split "host:port", "[v6]:port" or ":port" into (host, int port)."""
    if addr.startswith("["):
        end = addr.find("]")
        if end < 0 or addr[end + 1:end + 2] != ":":
            raise ValueError("invalid listen address %r" % addr)
        host, port = addr[1:end], addr[end + 2:]
    else:
        host, sep, port = addr.rpartition(":")
        if not sep:
            raise ValueError("invalid listen address %r: missing port" % addr)
        if ":" in host:
            raise ValueError("invalid listen address %r: IPv6 hosts need brackets" % addr)
    try:
        p = int(port)
    except ValueError:
        raise ValueError("invalid port in listen address %r" % addr) from None
    if not 0 <= p <= 65535:
        raise ValueError("port out of range in listen address %r" % addr)
    return host, p


def _family_for(host: str):
    if not host:
        return socket.AF_INET, "0.0.0.0"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        # A host name: resolve it once.
        info = socket.getaddrinfo(host, None, 0, socket.SOCK_STREAM)
        fam, _, _, _, sa = info[0]
        return fam, sa[0]
    return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), str(ip)


@dataclass
class PeerDrop:
    peer: Any
    err: Any
    requested: bool  # the remote side asked for the disconnect


class _Quit:
    """``srv.quit``: an Event (set, is_set, wait, clear) whose condition also carries
    the answers run gives to callers waiting in a :class:`_Reply`, so that such a
    wait ends when the server quits (Go: ``select { case <-c.cont: case <-srv.quit: }``).
    """

    __slots__ = ("cond", "_flag")

    def __init__(self):
        self.cond = threading.Condition(threading.Lock())
        self._flag = False

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        with self.cond:
            self._flag = True
            self.cond.notify_all()

    def clear(self) -> None:
        with self.cond:
            self._flag = False

    def wait(self, timeout: Optional[float] = None) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self._flag, timeout)


class _Reply:
    """One answer from run (Go's unbuffered ``conn.cont`` and ``peerOpDone`` channels).

    ``get`` returns the answer, or errServerStopped once quit is set first.
    """

    __slots__ = ("_quit", "_set", "_value")

    def __init__(self, quit: _Quit):
        self._quit = quit
        self._set = False
        self._value = None

    def put(self, value) -> None:
        with self._quit.cond:
            self._value = value
            self._set = True
            self._quit.cond.notify_all()

    def get(self, timeout: Optional[float] = None):
        q = self._quit
        with q.cond:
            q.cond.wait_for(lambda: self._set or q._flag, timeout)
            if self._set:
                self._set = False
                return self._value
        return errServerStopped


class Conn:
    """A network connection plus what the two handshakes learn about it.

    Go embeds the transport; here the transport methods are forwarded.
    """

    __slots__ = ("fd", "transport", "flags", "cont", "id", "caps", "name")

    def __init__(self, fd, transport, flags, cont=None, id=None, caps=None, name=""):
        self.fd = fd
        self.transport = transport
        self.flags = ConnFlag(flags)
        # The run loop answers each checkpoint here (error or None); a _Reply tied to
        # the server's quit, made by setup_conn (or by checkpoint when missing).
        self.cont = cont
        self.id = id  # known after the encryption handshake
        self.caps = caps or []  # known after the protocol handshake
        self.name = name  # known after the protocol handshake

    # -- the transport, as Go's embedded interface --
    def do_enc_handshake(self, prv, dial_dest):
        return self.transport.do_enc_handshake(prv, dial_dest)

    def do_proto_handshake(self, our):
        return self.transport.do_proto_handshake(our)

    def read_msg(self):
        return self.transport.read_msg()

    def write_msg(self, msg):
        return self.transport.write_msg(msg)

    def close(self, err):
        self.transport.close(err)

    def __str__(self):
        s = str(self.flags)
        if self.id is not None:
            s += " " + _id_hex(self.id)
        s += " " + addr_str(self.fd)
        return s

    def is_(self, f) -> bool:
        """Go's conn.is (``is`` is a Python keyword)."""
        return self.flags & f != 0

    def set(self, f, val: bool) -> None:
        if val:
            self.flags = self.flags | f
        else:
            self.flags = self.flags & ~f


def _id_hex(id) -> str:
    return bytes(id).hex()


class Transport:
    """What Server needs from a connection's transport (rlpx.new_rlpx, or a fake).

    ``read_msg``/``write_msg`` may only be used after the encryption handshake.
    """

    def do_enc_handshake(self, prv, dial_dest):  # -> NodeID
        raise NotImplementedError

    def do_proto_handshake(self, our):  # -> ProtoHandshake
        raise NotImplementedError

    def read_msg(self):
        raise NotImplementedError

    def write_msg(self, msg):
        raise NotImplementedError

    def close(self, err):
        raise NotImplementedError


def _default_new_transport(fd):
    from p2p import rlpx  # imported late: rlpx imports the peer/message layer

    return rlpx.new_rlpx(fd)


class SharedUDPConn:
    """The UDP socket as discovery v5 sees it when v4 runs on it too (geth's sharedUDPConn).

    v4 reads the socket and passes what it cannot decode to the ``unhandled`` queue
    (``ReadPacket``, or None when it stops); v5 reads from that queue and writes to
    the socket itself.
    """

    def __init__(self, conn, unhandled):
        self.conn = conn            # the discover.udp.UDPConn v4 reads
        self.unhandled = unhandled  # queue.Queue of ReadPacket, bounded: v4 drops when it is full

    def read_from_udp(self):
        packet = self.unhandled.get()
        if packet is None:
            raise OSError("Connection was closed")
        return packet.data, packet.addr

    def write_to_udp(self, b, addr):
        return self.conn.write_to_udp(b, addr)

    def local_addr(self):
        return self.conn.local_addr()

    def close(self):
        """Wake v5's reader: the socket itself is v4's to close.

        geth's Close does nothing and the reader ends when v4 closes the channel;
        here closing also ends it (dropping what is still queued), so v5 can be
        closed first.
        """
        while True:
            try:
                self.unhandled.get_nowait()
            except queue.Empty:
                break
        try:
            self.unhandled.put_nowait(None)
        except queue.Full:  # v4 refilled it meanwhile; its own None ends the stream
            pass


class Server:
    """Manages all peer connections.

    Go embeds Config in Server; here the options live in ``self.config`` and
    reading ``srv.max_peers`` (etc.) falls through to it.
    """

    def __init__(self, config: Optional[Config] = None,
                 new_transport: Optional[Callable[[socket.socket], Any]] = None,
                 new_peer_hook: Optional[Callable[[Peer], None]] = None, **kw: Any):
        if config is None:
            config = Config(**kw)
        elif kw:
            raise TypeError("pass either a Config or keyword options, not both")
        self.config = config
        # Test hooks: fake transports, and a look at each new Peer.
        self.new_transport = new_transport
        self.new_peer_hook = new_peer_hook

        self.lock = threading.Lock()  # guards running (and start/stop)
        self.running = False

        self.ntab: Optional[Table] = None
        self.discv5 = None  # the discv5 Network when discovery_v5 is set (geth's DiscV5)
        self.listener = None
        self.our_handshake = None
        self.last_lookup = None  # monotonic time of the last discovery lookup (dial.py)

        self.quit = _Quit()
        self._mailbox: "queue.Queue" = queue.Queue()
        # Set when run no longer takes messages; guarded by _post_lock so a
        # message is either taken by run or refused to its sender.
        self._post_lock = threading.Lock()
        self._closed = True
        self.peer_feed = Feed()
        self.log = config.logger or get_logger("p2p")

        self._udp = None  # the discovery socket (owned by the table once started)
        self._ext_ip = None  # NAT external IP, if any
        self._loop_threads: List[threading.Thread] = []  # run, listenLoop, nat.map
        self._aux_lock = threading.Lock()
        self._aux_threads = set()  # dial tasks, inbound setups, peers
        self._pending_fds = set()  # connections inside the handshakes
        self._slots = None  # listen_loop's handshake slots (a queue of tokens)
        # At most this many handshakes compute at once (departure handshake-compute-slots).
        self._compute_slots = _ComputeSlots(os.cpu_count() or 1)
        self._own_dialer = None  # the TCPDialer start() made (stop() aborts its connects)

    def __getattr__(self, name):
        # Only called for attributes Server does not have: the embedded Config.
        cfg = self.__dict__.get("config")
        if cfg is not None and name in Config.__dataclass_fields__:
            return getattr(cfg, name)
        raise AttributeError(name)

    # -- mailbox helpers --------------------------------------------------

    def _post(self, kind, value) -> bool:
        """Hand a message to run; False once run has stopped taking them (<-quit)."""
        with self._post_lock:
            if self._closed:
                return False
            self._mailbox.put((kind, value))
            return True

    def _spawn(self, target, name, *args):
        t = threading.Thread(target=self._aux_run, args=(target, args), name=name, daemon=True)
        with self._aux_lock:
            self._aux_threads.add(t)
        t.start()
        return t

    def _aux_run(self, target, args):
        try:
            target(*args)
        finally:
            with self._aux_lock:
                self._aux_threads.discard(threading.current_thread())

    # -- public API -------------------------------------------------------

    def peers(self) -> List[Peer]:
        """All connected peers (none once the server is stopping)."""
        ps: List[Peer] = []
        done = _Reply(self.quit)
        if self._post("peerOp", (lambda peers: ps.extend(peers.values()), done)):
            if done.get() is errServerStopped:
                return []
        return ps

    def peer_count(self) -> int:
        """The number of connected peers."""
        count = [0]
        done = _Reply(self.quit)

        def op(peers):
            count[0] = len(peers)

        if self._post("peerOp", (op, done)):
            if done.get() is errServerStopped:
                return 0
        return count[0]

    def add_peer(self, node: Node) -> None:
        """Connect to node and keep it connected (re-dialed after drops)."""
        self._post("addstatic", node)

    def remove_peer(self, node: Node) -> None:
        """Stop keeping node connected and disconnect it."""
        self._post("removestatic", node)

    def add_trusted_peer(self, node: Node) -> None:
        """Always let node connect, even when the peer slots are full (geth 1.8.16)."""
        self._post("addtrusted", node)

    def remove_trusted_peer(self, node: Node) -> None:
        """Undo add_trusted_peer: node counts against the limits again."""
        self._post("removetrusted", node)

    def subscribe_events(self, ch: "queue.Queue[PeerEvent]") -> Subscription:
        """Send PeerEvents to ch (a queue.Queue); returns the Subscription."""
        return self.peer_feed.subscribe(ch)

    def self(self) -> Node:
        """This node's endpoint: ID, (external) IP, ports."""
        with self.lock:
            if not self.running:
                return _empty_node()
            return self.make_self(self.listener, self.ntab)

    def make_self(self, listener, ntab):
        if ntab is None:
            nid = pubkey_id(self.config.private_key.public_key)
            if listener is None:
                return new_node(nid, self._ext_ip or "0.0.0.0", 0, 0)
            host, port = listener.getsockname()[:2]
            return new_node(nid, self._ext_ip or host, 0, port)
        return ntab.self()

    def stop(self) -> None:
        """Terminate the server and all peer connections; returns once they are closed."""
        with self.lock:
            if not self.running:
                return
            self.running = False
            if self.listener is not None:
                # shutdown wakes the thread blocked in accept (close alone does not on Linux)
                _shutdown(self.listener)
            self.quit.set()
            self._mailbox.put(("quit", None))
            self._wake_listen_loop()
        # departure: dial-abort-on-stop: connects in progress are aborted instead of waited for
        if self._own_dialer is not None:
            self._own_dialer.close()
        # Wake handshakes blocked reading their sockets.
        with self._aux_lock:
            pending = list(self._pending_fds)
        for fd in pending:
            _shutdown(fd)
        for t in self._loop_threads:
            t.join(_JOIN_TIMEOUT)
        while True:
            with self._aux_lock:
                rest = [t for t in self._aux_threads if t is not threading.current_thread()]
            if not rest:
                break
            for t in rest:
                t.join(_JOIN_TIMEOUT)
                if t.is_alive():
                    self.log.warn("Thread did not stop", name=t.name)
                    with self._aux_lock:
                        self._aux_threads.discard(t)
        if self.listener is not None:
            self.listener.close()

    def _wake_listen_loop(self):
        slots = self._slots
        if slots is not None:
            slots.put_nowait(None)

    def start(self) -> None:
        """Start the server. A stopped server cannot be started again."""
        with self.lock:
            if self.running:
                raise RuntimeError("server already running")
            self.running = True
            try:
                self._start()
            except BaseException:
                self.running = False
                self._cleanup_failed_start()
                raise

    def _start(self):
        cfg = self.config
        self.log.info("Starting P2P networking")
        if cfg.private_key is None:
            raise ValueError("Server.private_key must be set to a non-nil key")
        if self.new_transport is None:
            self.new_transport = _default_new_transport
        if cfg.dialer is None:
            cfg.dialer = self._own_dialer = _dial.TCPDialer(timeout=defaultDialTimeout)
        self.quit.clear()
        self._mailbox = queue.Queue()

        # Bind the TCP listener first so that, with port 0, discovery can take
        # the same port number over UDP (geth binds them separately).
        listener = None
        with_udp = not cfg.no_discovery or cfg.discovery_v5
        if cfg.listen_addr != "":
            listener, udp = self._bind(cfg.listen_addr, with_udp)
        elif with_udp:
            # Like geth: discovery without a TCP listener gets any free UDP port.
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                udp.bind(("0.0.0.0", 0))
            except BaseException:
                udp.close()
                raise
        else:
            udp = None
        self.listener = listener
        self._udp = udp

        if cfg.nat is not None:
            try:
                ext = cfg.nat.external_ip()
            except Exception as err:  # a gateway that does not answer: no external IP
                self.log.debug("Could not get external IP", err=err)
                ext = None
            if ext is not None:
                self._ext_ip = str(ext)

        realaddr = None
        if udp is not None:
            host, port = udp.getsockname()[:2]
            realaddr = (host, port)
            if cfg.nat is not None:
                if not ipaddress.ip_address(host).is_loopback:
                    self._go_loop(_nat_map, "nat.Map", cfg.nat, self.quit, "udp", port, port,
                                  "ethereum discovery")
                if self._ext_ip is not None:
                    realaddr = (self._ext_ip, port)

        conn = sconn = unhandled = None
        if udp is not None:
            from p2p.discover import udp as discover_udp

            conn = discover_udp.UDPConn(udp)
        if not cfg.no_discovery and cfg.discovery_v5:
            unhandled = queue.Queue(maxsize=100)
            sconn = SharedUDPConn(conn, unhandled)

        if not cfg.no_discovery:
            dcfg = discover_udp.Config(
                private_key=cfg.private_key,
                announce_addr=realaddr,
                node_db_path=cfg.node_database,
                net_restrict=cfg.net_restrict,
                bootnodes=list(cfg.bootstrap_nodes),
                unhandled=unhandled,
            )
            self.ntab = discover_udp.listen_udp(conn, dcfg)
            self._udp = None  # the table owns (and closes) it now

        if cfg.discovery_v5:
            from p2p.discv5 import udp as discv5_udp

            # geth passes "" here too (its node database path is commented out).
            self.discv5 = discv5_udp.listen_udp(cfg.private_key, sconn if sconn is not None else conn,
                                                realaddr, "", cfg.net_restrict)
            self._udp = None  # alone, v5 owns (and closes) it now
            self.discv5.set_fallback_nodes(list(cfg.bootstrap_nodes_v5))

        dyn_peers = self.max_dialed_conns()
        dialer = _dial.new_dial_state(list(cfg.static_nodes), list(cfg.bootstrap_nodes), self.ntab,
                                      dyn_peers, cfg.net_restrict)

        self.our_handshake = ProtoHandshake(
            version=baseProtocolVersion,
            name=cfg.name,
            caps=[p.cap() for p in cfg.protocols],
            listen_port=0,
            id=pubkey_id(cfg.private_key.public_key),
        )
        if listener is not None:
            self.start_listening()
        if cfg.no_dial and cfg.listen_addr == "":
            self.log.warn("P2P server will be useless, neither dialing nor listening")

        with self._post_lock:
            self._closed = False
        self._go_loop(self.run, "p2p.Server.run", dialer)

    def _go_loop(self, target, name, *args):
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._loop_threads.append(t)
        t.start()

    def _cleanup_failed_start(self):
        self.quit.set()
        if self.ntab is not None:
            self.ntab.close()
            self.ntab = None
        if self.discv5 is not None:
            self.discv5.close()
            self.discv5 = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self.listener is not None:
            _shutdown(self.listener)
        for t in self._loop_threads:
            t.join(_JOIN_TIMEOUT)
        if self.listener is not None:
            self.listener.close()

    def _bind(self, listen_addr, with_udp):
        """Bind TCP on listen_addr and, if asked, UDP on the same port number."""
        host, port = split_host_port(listen_addr)
        fam, ip = _family_for(host)
        attempts = 20 if port == 0 else 1
        for i in range(attempts):
            tcp = socket.socket(fam, socket.SOCK_STREAM)
            try:
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind((ip, port))
                tcp.listen(_max_listener_backlog())
            except BaseException:
                tcp.close()
                raise
            if not with_udp:
                return tcp, None
            real_port = tcp.getsockname()[1]
            udp = socket.socket(fam, socket.SOCK_DGRAM)
            try:
                udp.bind((ip, real_port))
                return tcp, udp
            except OSError as err:
                udp.close()
                tcp.close()
                if err.errno != errno.EADDRINUSE or i == attempts - 1:
                    raise
        raise OSError("could not bind")  # not reached

    def start_listening(self):
        laddr = self.listener.getsockname()
        self.config.listen_addr = addr_str(laddr)
        self._go_loop(self.listen_loop, "p2p.Server.listenLoop")
        if self.config.nat is not None and not ipaddress.ip_address(laddr[0]).is_loopback:
            self._go_loop(_nat_map, "nat.Map", self.config.nat, self.quit, "tcp", laddr[1], laddr[1],
                          "ethereum p2p")

    # -- the main loop ----------------------------------------------------

    def run(self, dialstate):
        peers = {}
        inbound_count = 0
        trusted = {n.id for n in self.config.trusted_nodes}
        running_tasks = []
        queued_tasks = []
        log = self.log

        def del_task(t):
            for i, rt in enumerate(running_tasks):
                if rt is t:
                    del running_tasks[i]
                    break

        def start_tasks(ts):
            i = 0
            while len(running_tasks) < maxActiveDialTasks and i < len(ts):
                t = ts[i]
                log.trace("New dial task", task=t)
                self._spawn(self._run_task, "p2p.Server.run.task", t)
                running_tasks.append(t)
                i += 1
            return ts[i:]

        def schedule_tasks():
            queued_tasks[:] = start_tasks(queued_tasks)
            if len(running_tasks) < maxActiveDialTasks:
                nt = dialstate.new_tasks(len(running_tasks) + len(queued_tasks), peers, time.monotonic())
                queued_tasks.extend(start_tasks(list(nt)))

        mailbox = self._mailbox
        kind = value = None
        try:
            while True:
                try:
                    schedule_tasks()
                except Exception as err:  # the dialer failed: no new dials this round
                    log.error("Scheduling dial tasks failed", err=err, exc_info=err)
                kind, value = mailbox.get()
                if kind == "quit":
                    break
                try:
                    if kind == "addstatic":
                        log.trace("Adding static node", node=value)
                        dialstate.add_static(value)
                    elif kind == "removestatic":
                        log.trace("Removing static node", node=value)
                        dialstate.remove_static(value)
                        p = peers.get(value.id)
                        if p is not None:
                            p.disconnect(peer_error.DiscRequested)
                    elif kind == "addtrusted":
                        log.trace("Adding trusted node", node=value)
                        trusted.add(value.id)
                        p = peers.get(value.id)
                        if p is not None:  # a connected peer gets the flag at once
                            p.rw.set(trustedConn, True)
                    elif kind == "removetrusted":
                        log.trace("Removing trusted node", node=value)
                        trusted.discard(value.id)
                        p = peers.get(value.id)
                        if p is not None:
                            p.rw.set(trustedConn, False)
                    elif kind == "peerOp":
                        op, done = value
                        op(peers)
                        done.put(None)
                    elif kind == "taskdone":
                        log.trace("Dial task done", task=value)
                        del_task(value)
                        dialstate.task_done(value, time.monotonic())
                    elif kind == "posthandshake":
                        c = value
                        if c.id in trusted:
                            # Trusted peers get the flag before the MaxPeers check.
                            c.flags = c.flags | trustedConn
                        c.cont.put(self.enc_handshake_checks(peers, inbound_count, c))
                    elif kind == "addpeer":
                        c = value
                        err = self.proto_handshake_checks(peers, inbound_count, c)
                        if err is None:
                            p = new_peer(c, self.config.protocols)
                            if self.config.enable_msg_events:
                                p.events = self.peer_feed
                            name = truncate_name(c.name)
                            log.debug("Adding p2p peer", name=name, addr=addr_str(c.fd), peers=len(peers) + 1)
                            self._spawn(self.run_peer, "p2p.Server.runPeer", p)
                            peers[c.id] = p
                            if p.inbound():
                                inbound_count += 1
                        # Dial tasks end after the peer is added or refused: reply last.
                        c.cont.put(err)
                    elif kind == "delpeer":
                        pd = value
                        # Removed before logging, so that a failing log line cannot keep the slot.
                        peers.pop(pd.peer.id(), None)
                        if pd.peer.inbound():
                            inbound_count -= 1
                        d = time.monotonic() - getattr(pd.peer, "created", time.monotonic())
                        pd.peer.log.debug("Removing p2p peer", duration="%.3fs" % d, peers=len(peers),
                                          req=pd.requested, err=pd.err)
                except Exception as err:
                    # A bug in handling one message: answer its sender (a connection
                    # gets the error and closes) and go on with the next one.
                    log.error("Server loop failed on a message", kind=kind, err=err, exc_info=err)
                    self._refuse(kind, value, err)
                kind = value = None
        except BaseException as err:
            # The loop itself cannot go on: shut the server down cleanly instead of
            # leaving every caller waiting for a loop that is gone.
            self.quit.set()
            if self.listener is not None:
                _shutdown(self.listener)
            self._wake_listen_loop()
            if kind is not None:
                self._refuse(kind, value)
            try:
                log.error("Server loop failed, stopping the server", err=err, exc_info=err)
            except BaseException:  # noqa: S110 - logging is what failed; the shutdown goes on
                pass

        log.trace("P2P networking is spinning down")
        try:
            if self.ntab is not None:
                self.ntab.close()
            if self.discv5 is not None:
                self.discv5.close()
        except Exception as err:
            log.error("Closing discovery failed", err=err, exc_info=err)
        for p in peers.values():
            p.disconnect(peer_error.DiscQuitting)
        # Wait for the peers to end; refuse everything else still arriving.
        while peers:
            kind, value = mailbox.get()
            if kind == "delpeer":
                value.peer.log.trace("<-delpeer (spindown)", remainingTasks=len(running_tasks))
                peers.pop(value.peer.id(), None)
            else:
                self._refuse(kind, value)
        with self._post_lock:
            self._closed = True
        while True:
            try:
                kind, value = mailbox.get_nowait()
            except queue.Empty:
                break
            self._refuse(kind, value)

    def _refuse(self, kind, value, err=None):
        """Answer a message run will not handle (after quit, or when handling it failed)."""
        if kind in ("posthandshake", "addpeer"):
            value.cont.put(errServerStopped if err is None else err)
        elif kind == "peerOp":
            value[1].put(None)

    def _run_task(self, t):
        try:
            t.do(self)
        except Exception as err:  # a task must never kill the loop's bookkeeping
            self.log.error("Dial task failed", task=t, err=err)
        self._post("taskdone", t)

    def proto_handshake_checks(self, peers, inbound_count, c):
        if self.config.protocols and count_matching_protocols(self.config.protocols, c.caps) == 0:
            return _disc_error(peer_error.DiscUselessPeer)
        # The peer set may have changed since the first check: repeat it.
        return self.enc_handshake_checks(peers, inbound_count, c)

    def enc_handshake_checks(self, peers, inbound_count, c):
        if not c.is_(trustedConn | staticDialedConn) and len(peers) >= self.config.max_peers:
            return _disc_error(peer_error.DiscTooManyPeers)
        if not c.is_(trustedConn) and c.is_(inboundConn) and inbound_count >= self.max_inbound_conns():
            return _disc_error(peer_error.DiscTooManyPeers)
        if c.id in peers:
            return _disc_error(peer_error.DiscAlreadyConnected)
        if c.id == self._our_id():
            return _disc_error(peer_error.DiscSelf)
        return None

    def _our_id(self):
        if self.our_handshake is not None:
            return self.our_handshake.id
        return pubkey_id(self.config.private_key.public_key)

    def max_inbound_conns(self) -> int:
        return self.config.max_peers - self.max_dialed_conns()

    def max_dialed_conns(self) -> int:
        if self.config.no_discovery or self.config.no_dial:
            return 0
        r = self.config.dial_ratio or defaultDialRatio
        return self.config.max_peers // r

    def listen_loop(self):
        self.log.info("RLPx listener up", self_node=self.make_self(self.listener, self.ntab))
        tokens = self.config.max_pending_peers if self.config.max_pending_peers > 0 else defaultMaxPendingPeers
        # Unbounded: besides the tokens it holds stop's wake-ups, and a returned token must
        # never block a worker (a second wake-up after a crash would fill a bounded queue).
        slots: "queue.Queue" = queue.Queue()
        for _ in range(tokens):
            slots.put(None)
        self._slots = slots
        if self.quit.is_set():
            return
        # departure: handshake-workers: accepted connections go to up to `tokens` long-lived
        # threads instead of one new thread each (a thread start cost more than a junk handshake)
        work: "queue.Queue" = queue.Queue()
        workers = 0
        idle = _Counter()
        try:
            while True:
                # Take a handshake slot before accepting.
                slots.get()
                if self.quit.is_set():
                    return
                fd, addr = self._accept()
                if fd is None:
                    return
                if self.config.net_restrict is not None and not self.config.net_restrict.contains(
                        ipaddress.ip_address(addr[0].split("%")[0])):
                    self.log.debug("Rejected conn (not whitelisted in NetRestrict)", addr=addr_str(addr))
                    fd.close()
                    slots.put(None)
                    continue
                fd = new_metered_conn(fd, True)
                self.log.trace("Accepted connection", addr=_RemoteAddr(addr))
                # An idle worker is reserved here, when the connection is queued: counted
                # when it takes the connection instead, one worker could be handed two
                # and the second would wait behind the first's handshake.
                if idle.take():
                    work.put(fd)
                else:
                    workers += 1
                    self._spawn(self._setup_inbound, "p2p.Server.listenLoop.SetupConn", fd, work,
                                slots, idle)
        finally:
            for _ in range(workers):
                work.put(None)

    def _accept(self):
        """Accept one connection, retrying temporary errors; (None, None) once the listener is gone."""
        delay = 0.0
        while True:
            try:
                return self.listener.accept()
            except OSError as err:
                if self.quit.is_set():
                    return None, None
                if not _temporary_accept_error(err):
                    self.log.debug("Read error", err=err)
                    return None, None
                # departure: accept-backoff: geth retries at once; we wait a little (and
                # also retry ENOBUFS/ENOMEM) so that fd exhaustion is not a busy loop
                delay = min(max(delay * 2, _acceptRetryMin), _acceptRetryMax)
                self.log.debug("Temporary read error", err=err, retry="%.3fs" % delay)
                if self.quit.wait(delay):
                    return None, None

    def _setup_inbound(self, fd, work, slots, idle):
        # fd: the connection this worker was started for; then the ones queued for it.
        while fd is not None:
            try:
                self.setup_conn(fd, inboundConn, None)
            except Exception as err:  # a bug: that connection is closed, the worker goes on
                self.log.error("Setting up inbound connection failed", err=err, exc_info=err)
                _shutdown(fd)
                fd.close()
            # Idle before the slot is returned, so the next accepted connection finds it.
            idle.add(1)
            slots.put(None)
            fd = work.get()

    def setup_conn(self, fd: socket.socket, flags: ConnFlag, dial_dest: Optional[Node]) -> Optional[BaseException]:
        """Run both handshakes on fd and add it as a peer; returns the error or None."""
        c = Conn(fd, self.new_transport(fd), flags, cont=_Reply(self.quit))
        # departure: handshake-compute-slots: at most cpu_count() handshakes compute at once; a socket wait frees the slot
        set_gate = getattr(c.transport, "set_wait_gate", None)
        gate = self._compute_slots if set_gate is not None else None
        with self._aux_lock:
            self._pending_fds.add(fd)
        try:
            if gate is not None:
                set_gate(gate)
                gate.enter()
            try:
                err = self._setup_conn(c, flags, dial_dest)
            finally:
                if gate is not None:
                    gate.leave()
                    set_gate(None)
        finally:
            with self._aux_lock:
                self._pending_fds.discard(fd)
        if err is not None:
            try:
                c.close(err)
            except Exception as cerr:  # closing a dead socket must not hide err
                self.log.trace("Close failed", err=cerr)
            self.log.trace("Setting up connection failed", id=c.id, err=err)
        return err

    def _setup_conn(self, c, flags, dial_dest):
        # Connections still pending from before stop() must not start handshakes.
        with self.lock:
            running = self.running
        if not running:
            return errServerStopped
        try:
            c.id = c.do_enc_handshake(self.config.private_key, dial_dest)
        except Exception as err:
            if is_conn_error(err):
                self.log.trace("Failed RLPx handshake", addr=_RemoteAddr(c.fd), conn=c.flags, err=err)
            else:
                self.log.error("RLPx handshake failed with a bug", addr=_RemoteAddr(c.fd), conn=c.flags,
                               err=err, exc_info=err)
            return err
        clog = self.log.new(id=c.id, addr=_RemoteAddr(c.fd, self.log.is_enabled_for(TRACE)), conn=c.flags)
        if dial_dest is not None and c.id != dial_dest.id:
            clog.trace("Dialed identity mismatch", want=dial_dest.id)
            return _disc_error(peer_error.DiscUnexpectedIdentity)
        err = self.checkpoint(c, "posthandshake")
        if err is not None:
            clog.trace("Rejected peer before protocol handshake", err=err)
            return err
        try:
            phs = c.do_proto_handshake(self.our_handshake)
        except Exception as err:
            if is_conn_error(err):
                clog.trace("Failed proto handshake", err=err)
            else:
                clog.error("Protocol handshake failed with a bug", err=err, exc_info=err)
            return err
        if phs.id != c.id:
            clog.trace("Wrong devp2p handshake identity", err=phs.id)
            return _disc_error(peer_error.DiscUnexpectedIdentity)
        c.caps, c.name = phs.caps, phs.name
        err = self.checkpoint(c, "addpeer")
        if err is not None:
            clog.trace("Rejected peer", err=err)
            return err
        # run has launched run_peer for it.
        clog.trace("connection set up", inbound=dial_dest is None)
        return None

    def checkpoint(self, c, stage):
        """Send c to run for the checks of stage ("posthandshake" or "addpeer").

        Returns run's verdict, or errServerStopped once the server quits.
        """
        if c.cont is None:
            c.cont = _Reply(self.quit)
        if not self._post(stage, c):
            return errServerStopped
        return c.cont.get()

    def run_peer(self, p):
        if self.new_peer_hook is not None:
            self.new_peer_hook(p)
        self.peer_feed.send(PeerEvent(type=PeerEventTypeAdd, peer=p.id()))
        remote_requested, err = p.run()
        self.peer_feed.send(PeerEvent(type=PeerEventTypeDrop, peer=p.id(), error=str(err)))
        # run waits for every live peer's delpeer, so this is never refused.
        self._mailbox.put(("delpeer", PeerDrop(p, err, remote_requested)))

    def node_info(self) -> "NodeInfo":
        """A summary of this node: ID, name, enode URL, ports, protocols."""
        node = self.self()
        info = NodeInfo(
            name=self.config.name,
            enode=str(node),
            id=_id_hex(node.id),
            ip=str(node.ip),
            listen_addr=self.config.listen_addr,
        )
        info.ports["discovery"] = int(node.udp)
        info.ports["listener"] = int(node.tcp)
        if self.discv5 is not None:
            info.discv5 = str(self.discv5.self_node())
        for proto in self.config.protocols:
            if proto.name not in info.protocols:
                query = getattr(proto, "node_info", None)
                info.protocols[proto.name] = query() if query is not None else "unknown"
        return info

    def peers_info(self) -> List[PeerInfo]:
        """PeerInfo of every connected peer, sorted by node ID."""
        infos = [p.info() for p in self.peers() if p is not None]
        infos.sort(key=lambda i: i.id)
        return infos


def truncate_name(s: str) -> str:
    if len(s) > 20:
        return s[:20] + "..."
    return s


@dataclass
class NodeInfo:
    """What Server.node_info reports about this node."""

    id: str = ""
    name: str = ""
    enode: str = ""
    ip: str = ""
    ports: dict = field(default_factory=lambda: {"discovery": 0, "listener": 0})
    listen_addr: str = ""
    protocols: dict = field(default_factory=dict)
    # Python-only: the discv5 node URL when discovery_v5 runs (geth's NodeInfo has no v5 entry).
    discv5: str = ""


class _RemoteAddr:
    """A connection's ``host:port`` for log context, formatted only if a line is written.

    Python-only: Go's RemoteAddr is a stored value; ours is a getpeername per call, which
    every connection paid for its logger even with trace logging off. ``now`` formats it
    at once (while the socket still has its peer), for when trace lines will be written.
    """

    __slots__ = ("_src", "_text")

    def __init__(self, src, now: bool = False):
        self._src = src
        self._text = addr_str(src) if now else None

    def __str__(self) -> str:
        if self._text is None:
            self._text = addr_str(self._src)
        return self._text


class _ComputeSlots:
    """Slots for the handshakes that compute (Python-only, departure handshake-compute-slots).

    Go runs at most GOMAXPROCS goroutines at once; Python threads all want the one
    interpreter lock, which libsecp256k1's cffi calls and every socket call release:
    with as many handshakes running as connections in flight, the lock moves between
    them at each such call (a futex wake and a context switch each time). A handshake
    holds a slot while it computes; the RLPx socket gives it back around each wait for
    the network (``RLPx.set_wait_gate``), so silent and slow connections hold none.
    ``leave`` in a thread without a slot does nothing (the hello writer shares the socket).
    """

    __slots__ = ("_sem", "_held")

    def __init__(self, n: int):
        self._sem = threading.Semaphore(n)
        self._held = threading.local()

    def enter(self) -> None:
        self._sem.acquire()
        self._held.slot = True

    def leave(self) -> bool:
        """Give this thread's slot back; False if it held none."""
        held = self._held
        if not getattr(held, "slot", False):
            return False
        held.slot = False
        self._sem.release()
        return True


class _Counter:
    """How many handshake workers are free: workers add, listen_loop takes (reserves) one."""

    __slots__ = ("_lock", "value")

    def __init__(self):
        self._lock = threading.Lock()
        self.value = 0

    def add(self, n: int) -> None:
        with self._lock:
            self.value += n

    def take(self) -> bool:
        """Reserve one free worker; False if none is free."""
        with self._lock:
            if self.value == 0:
                return False
            self.value -= 1
            return True


def _temporary_accept_error(err) -> bool:
    """Whether accept() may work again later (Go's Temporary(), plus out of buffers/memory)."""
    return is_temporary_error(err) or getattr(err, "errno", None) in (errno.ENOBUFS, errno.ENOMEM)


def _max_listener_backlog() -> int:
    """The system's largest accept queue (Go's net.maxListenerBacklog reads the same file)."""
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            n = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return socket.SOMAXCONN
    if n <= 0:
        return socket.SOMAXCONN
    return min(n, 65535)  # the kernel keeps it in 16 bits; Go clamps it the same way


def _shutdown(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _nat_map(m, quit, protocol, extport, intport, name):
    from p2p.nat import nat

    nat.map(m, quit, protocol, extport, intport, name)


def _empty_node():
    return Node(ip=ipaddress.ip_address("0.0.0.0"))


def _disc_error(reason):
    # A DiscReason used as an error travels as DiscReasonError (see peer_error.py).
    return peer_error.DiscReasonError(reason)
